/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: our SPQR braid record (lib/spqr/braid.c). Whatever loads
 * serializes back to the same bytes; the braid then takes a send and a
 * receive of its own message, and still serializes to a record that loads. */
#include <stdlib.h>
#include <string.h>

#include <sotto/error.h>

#include "spqr/braid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct sotto__braid b, c;
  static uint8_t out[16384];
  struct sotto__spqr_msg m;
  uint8_t chunk[32], sec[32];
  uint64_t se;
  size_t n = 0;
  int hs;

  if (sotto__braid_deserialize(&b, data, size) != 0) return 0;
  if (sotto__braid_serialized_size(&b) != size) abort();
  if (sotto__braid_serialize(&b, out, sizeof out, &n) != 0 || n != size ||
      memcmp(out, data, size) != 0)
    abort();
  c = b;
  if (sotto__braid_send(&b, &m, chunk, &hs, sec, &se) == 0) {
    (void)sotto__braid_recv(&c, &m, &hs, sec, &se);
    if (sotto__braid_serialize(&c, out, sizeof out, &n) != 0) abort();
    if (sotto__braid_deserialize(&c, out, n) != 0) abort();
  }
  if (sotto__braid_serialize(&b, out, sizeof out, &n) != 0) abort();
  if (sotto__braid_deserialize(&b, out, n) != 0) abort();
  sotto__braid_clear(&b);
  sotto__braid_clear(&c);
  return 0;
}

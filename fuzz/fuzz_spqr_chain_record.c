/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: our SPQR chain record (lib/spqr/chain.c). Whatever loads
 * serializes back to the same bytes; the chain then takes a send and a few
 * receives, and its new record loads again. */
#include <stdlib.h>
#include <string.h>

#include <sotto/error.h>

#include "spqr/chain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void roundtrip(const struct sotto__spqr_chain *c) {
  size_t n = sotto__spqr_chain_serialized_size(c), len = 0;
  uint8_t *b = malloc(n ? n : 1);
  struct sotto__spqr_chain d;
  if (b == NULL || sotto__spqr_chain_serialize(c, b, n, &len) != 0 || len != n) abort();
  if (sotto__spqr_chain_deserialize(&d, b, n) != 0) abort();
  sotto__spqr_chain_clear(&d);
  free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto__spqr_chain c;
  uint8_t *b, key[32];
  size_t n, len = 0;
  uint32_t idx;

  if (sotto__spqr_chain_deserialize(&c, data, size) != 0) return 0;
  n = sotto__spqr_chain_serialized_size(&c);
  b = malloc(n ? n : 1);
  if (b == NULL || sotto__spqr_chain_serialize(&c, b, n, &len) != 0 || len != size ||
      memcmp(b, data, size) != 0)
    abort();
  free(b);
  /* Operations may fail (a cleared sending half, a counter at its end), but
   * must leave a record that loads. */
  (void)sotto__spqr_chain_send_key(&c, c.current_epoch, &idx, key);
  roundtrip(&c);
  if (c.n_links > 0) {
    uint32_t ctr = c.links[c.n_links - 1].recv.ctr;
    (void)sotto__spqr_chain_recv_key(&c, c.current_epoch, ctr + 3, key);
    (void)sotto__spqr_chain_recv_key(&c, c.current_epoch, ctr + 1, key);
    (void)sotto__spqr_chain_recv_key(&c, c.current_epoch, ctr + 1, key);
    if (ctr > 0) (void)sotto__spqr_chain_recv_key(&c, c.current_epoch, ctr, key);
  }
  roundtrip(&c);
  sotto__spqr_chain_clear(&c);
  return 0;
}

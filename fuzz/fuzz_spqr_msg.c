/* SPDX-License-Identifier: Apache-2.0 */
/* Fuzz target: the SPQR v1 message parser (lib/spqr/msg.c), the pq_ratchet
 * field of a SignalMessage. Whatever parses writes back to bytes that parse
 * to the same fields, and the chunk lies inside the input. */
#include <stdlib.h>
#include <string.h>

#include "spqr/msg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto__spqr_msg m, m2;
  uint8_t out[SOTTO_SPQR_MSG_MAX_LEN];
  size_t used = 0, used2 = 0, n;

  if (sotto__spqr_msg_parse(&m, &used, data, size) != 0) return 0;
  if (used == 0 || used > size || m.epoch == 0) abort();
  if (m.has_chunk && (m.chunk < data || m.chunk + SOTTO_SPQR_CHUNK_LEN > data + used)) abort();
  n = sotto__spqr_msg_write(out, sizeof out, &m);
  if (n == 0 || n > used) abort(); /* ours is minimal: never longer than what we read */
  if (sotto__spqr_msg_parse(&m2, &used2, out, n) != 0 || used2 != n) abort();
  if (m2.epoch != m.epoch || m2.index != m.index || m2.type != m.type ||
      m2.has_chunk != m.has_chunk)
    abort();
  if (m.has_chunk &&
      (m2.chunk_index != m.chunk_index || memcmp(m2.chunk, m.chunk, SOTTO_SPQR_CHUNK_LEN) != 0))
    abort();
  return 0;
}

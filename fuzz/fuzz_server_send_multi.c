/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_send_multi.c: libFuzzer target for the SEND_MULTI request and
 * its answer. A request that parses has 1..SOTTO_SRV_MAX_DEVICES envelopes
 * with strictly increasing device ids and re-encodes to the same bytes; the
 * answer parser (the input read as an answer) never reports more ids than
 * it was given room for. proto.c is compiled in directly (the libFuzzer
 * build of fuzz/ links libsotto only). */
#include "proto.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct sotto_srv_send_multi m;
  static uint8_t out[SOTTO_SRV_MAX_FRAME];
  uint64_t ids[SOTTO_SRV_MAX_DEVICES], ts;
  struct sotto__wr w;
  size_t i, n = 0;
  if (sotto__srv_parse_sent_multi(data, size, &ts, ids, 4, &n) == 0 && (n == 0 || n > 4)) abort();
  if (sotto__srv_parse_send_multi(data, size, 65536, &m) != 0) return 0;
  if (m.n == 0 || m.n > SOTTO_SRV_MAX_DEVICES) abort();
  for (i = 0; i < m.n; i++) {
    if (m.e[i].body_len == 0 || m.e[i].body_len > 65536) abort();
    if (i > 0 && m.e[i].device_id <= m.e[i - 1].device_id) abort();
  }
  sotto__wr_init(&w, out, sizeof out);
  sotto__srv_put_send_multi(&w, &m);
  if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
  return 0;
}

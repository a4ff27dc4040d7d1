/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_send.c: libFuzzer target for the sotto-server SEND request parser.
 * A successful parse is re-encoded and must give back the input bytes
 * (the encoding is canonical). proto.c is compiled in directly because the
 * libFuzzer build of fuzz/ links libsotto only. */
#include "proto.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto_srv_send m;
  uint8_t *out;
  struct sotto__wr w;
  if (sotto__srv_parse_send(data, size, 65536, &m) != 0) return 0;
  if (m.body_len == 0 || m.body_len > 65536) abort();
  if ((out = malloc(size)) == NULL) return 0;
  sotto__wr_init(&w, out, size);
  sotto__srv_put_str8(&w, m.username.p, m.username.len);
  sotto__wr_u32be(&w, m.device_id);
  sotto__wr_u8(&w, m.type);
  sotto__wr_u32be(&w, (uint32_t)m.body_len);
  sotto__wr_bytes(&w, m.body, m.body_len);
  if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
  free(out);
  return 0;
}

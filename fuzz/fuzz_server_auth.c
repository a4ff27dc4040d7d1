/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_auth.c: libFuzzer target for the sotto-server AUTH request parser.
 * A successful parse is re-encoded and must give back the input bytes
 * (the encoding is canonical). proto.c is compiled in directly because the
 * libFuzzer build of fuzz/ links libsotto only. */
#include "proto.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto_srv_auth m;
  uint8_t out[128];
  struct sotto__wr w;
  if (sotto__srv_parse_auth(data, size, &m) != 0) return 0;
  if (!sotto__srv_username_ok(m.username.p, m.username.len)) abort();
  sotto__wr_init(&w, out, sizeof out);
  sotto__srv_put_str8(&w, m.username.p, m.username.len);
  sotto__wr_u32be(&w, m.device_id);
  sotto__wr_bytes(&w, m.secret, SOTTO_SRV_SECRET_LEN);
  if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
  return 0;
}

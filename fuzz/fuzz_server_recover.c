/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_recover.c: libFuzzer target for the sotto-server RECOVER and
 * SET_RECOVERY request parsers. A successful RECOVER parse is re-encoded and
 * must give back the input bytes (the encoding is canonical). proto.c is
 * compiled in directly because the libFuzzer build of fuzz/ links libsotto
 * only. */
#include <stdlib.h>

#include "proto.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto_srv_recover m;
  const uint8_t *code;
  uint8_t out[600];
  struct sotto__wr w;
  if (sotto__srv_parse_set_recovery(data, size, &code) == 0 && size != SOTTO_SRV_RECOVERY_LEN) abort();
  if (sotto__srv_parse_recover(data, size, &m) != 0) return 0;
  if (!sotto__srv_username_ok(m.username.p, m.username.len)) abort();
  sotto__wr_init(&w, out, sizeof out);
  sotto__srv_put_str8(&w, m.username.p, m.username.len);
  sotto__wr_bytes(&w, m.code, SOTTO_SRV_RECOVERY_LEN);
  sotto__srv_put_blob16(&w, m.identity.p, m.identity.len);
  if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
  return 0;
}

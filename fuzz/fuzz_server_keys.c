/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_keys.c: libFuzzer target for the sotto-server KEYS_UPLOAD request parser.
 * A successful parse is re-encoded and must give back the input bytes
 * (the encoding is canonical). proto.c is compiled in directly because the
 * libFuzzer build of fuzz/ links libsotto only. */
#include "proto.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct sotto_srv_keys m;
  static uint8_t out[SOTTO_SRV_MAX_FRAME + 1024];
  struct sotto__wr w;
  if (sotto__srv_parse_keys(data, size, &m) != 0) return 0;
  if (m.n_ec > SOTTO_SRV_MAX_KEYS_PER_UPLOAD || m.n_kem > SOTTO_SRV_MAX_KEYS_PER_UPLOAD) abort();
  sotto__wr_init(&w, out, sizeof out);
  sotto__srv_put_keys(&w, &m);
  if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
  return 0;
}

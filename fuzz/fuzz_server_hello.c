/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_hello.c: libFuzzer target for the sotto-server HELLO request parser.
 * A successful parse is re-encoded and must give back the input bytes
 * (the encoding is canonical: the features byte only when not 0). proto.c is compiled in directly because the
 * libFuzzer build of fuzz/ links libsotto only. */
#include "proto.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto_srv_hello m;
  uint8_t out[3];
  struct sotto__wr w;
  if (sotto__srv_parse_hello(data, size, &m) != 0 || m.version != SOTTO_SRV_VERSION) return 0;
  sotto__wr_init(&w, out, sizeof out);
  sotto__srv_put_hello_req(&w, m.version, m.features);
  if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
  return 0;
}

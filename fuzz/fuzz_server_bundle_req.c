/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_bundle_req.c: libFuzzer target for the sotto-server BUNDLE and DEVICES request parser.
 * A successful parse is re-encoded and must give back the input bytes
 * (the encoding is canonical). proto.c is compiled in directly because the
 * libFuzzer build of fuzz/ links libsotto only. */
#include "proto.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto_srv_target m;
  uint8_t out[64];
  struct sotto__wr w;
  if (sotto__srv_parse_devices_req(data, size, &m) == 0 && !sotto__srv_username_ok(m.username.p, m.username.len))
    abort();
  if (sotto__srv_parse_bundle_req(data, size, &m) != 0) return 0;
  sotto__wr_init(&w, out, sizeof out);
  sotto__srv_put_str8(&w, m.username.p, m.username.len);
  sotto__wr_u32be(&w, m.device_id);
  if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
  return 0;
}

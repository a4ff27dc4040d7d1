/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_push.c: libFuzzer target for the sotto-server client-side MSG push, ERR/CLOSE and BUNDLE/DEVICES answer parser
 * (DEVICES with and without the last-seen days).
 * A successful parse is re-encoded and must give back the input bytes
 * (the encoding is canonical). proto.c is compiled in directly because the
 * libFuzzer build of fuzz/ links libsotto only. */
#include "proto.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Parse results are only collected: the target checks memory safety. */
static int sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct sotto_srv_env env;
  struct sotto_srv_bundle b;
  struct sotto_srv_err e;
  uint32_t ids[SOTTO_SRV_MAX_DEVICES];
  size_t n;
  static uint8_t out[SOTTO_SRV_MAX_FRAME + 1024];
  struct sotto__wr w;
  sink |= sotto__srv_parse_err(data, size, &e);
  sink |= sotto__srv_parse_devices(data, size, ids, SOTTO_SRV_MAX_DEVICES, &n);
  {
    uint32_t days[SOTTO_SRV_MAX_DEVICES];
    int has;
    if (sotto__srv_parse_devices_seen(data, size, ids, days, SOTTO_SRV_MAX_DEVICES, &n, &has) == 0) {
      if (n > SOTTO_SRV_MAX_DEVICES || (has != 0 && has != 1)) abort();
      sotto__wr_init(&w, out, sizeof out);
      sotto__srv_put_devices(&w, ids, n);
      if (has) sotto__srv_put_devices_days(&w, days, n);
      if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
    }
  }
  if (sotto__srv_parse_env(data, size, &env) == 0) {
    sotto__wr_init(&w, out, sizeof out);
    sotto__srv_put_env(&w, &env);
    if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
  }
  if (sotto__srv_parse_bundle(data, size, &b) == 0) {
    sotto__wr_init(&w, out, sizeof out);
    sotto__srv_put_bundle(&w, &b);
    if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
  }
  return 0;
}

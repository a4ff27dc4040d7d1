/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_devlist.c: libFuzzer target for the DEVLIST_PUT request and
 * DEVLIST_GET answer (blob16 signed device list), as the server reads them:
 * the frame's shape, then the list (sotto_devlist_parse). A frame that
 * parses re-encodes to the same bytes; its list is within the limit.
 * proto.c is compiled in directly (the libFuzzer build links libsotto only). */
#include "proto.c"

#include <sodium.h>
#include <stdlib.h>

#include <sotto/devlist.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t out[SOTTO_SRV_MAX_DEVLIST + 2];
  struct sotto_devlist l;
  struct sotto__wr w;
  const uint8_t *list;
  size_t len;
  if (sodium_init() < 0) abort();
  if (sotto__srv_parse_devlist(data, size, &list, &len) != 0) return 0;
  if (len == 0 || len > SOTTO_SRV_MAX_DEVLIST) abort();
  sotto__wr_init(&w, out, sizeof out);
  sotto__srv_put_devlist(&w, list, len);
  if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
  if (sotto_devlist_parse(&l, list, len) == 0 && (l.n == 0 || l.n > SOTTO_DEVLIST_MAX_DEVICES)) abort();
  return 0;
}

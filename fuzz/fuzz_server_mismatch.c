/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_mismatch.c: libFuzzer target for an ERR answer as a client
 * that set HELLO features bit 2 (MISMATCH_LIST) reads it: `u16 code, str8
 * reason`, and for code 30 optionally `blob16 list`, the recipient's newest
 * signed device list (sotto__srv_parse_err_list), then the list itself
 * (sotto_devlist_parse), as the client checks it before resending.
 * Invariants: a list only with code 30 and within SOTTO_SRV_MAX_DEVLIST; an
 * answer that parses re-encodes to the same bytes (reasons up to the
 * server's SOTTO_SRV_MAX_ERRMSG); a list that parses has 1..16 devices.
 * proto.c is compiled in directly (the libFuzzer build links libsotto only). */
#include "proto.c"

#include <sodium.h>
#include <stdlib.h>

#include <sotto/devlist.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t out[3 + 255 + 2 + SOTTO_SRV_MAX_DEVLIST];
  static char msg[256];
  struct sotto_srv_err e;
  struct sotto_devlist l;
  struct sotto__wr w;
  const uint8_t *list = NULL;
  size_t len = 0;
  if (sodium_init() < 0) abort();
  if (sotto__srv_parse_err_list(data, size, &e, &list, &len) != 0) {
    if (list || len) abort(); /* nothing handed out on failure */
    return 0;
  }
  if ((list == NULL) != (len == 0)) abort();
  if (list && (e.code != SOTTO_SRV_E_MISMATCHED_DEVICES || len > SOTTO_SRV_MAX_DEVLIST)) abort();
  /* the old parser reads exactly the answers without a list */
  {
    struct sotto_srv_err o;
    if ((sotto__srv_parse_err(data, size, &o) == 0) != (list == NULL)) abort();
  }
  if (e.msg.len <= SOTTO_SRV_MAX_ERRMSG) {
    memcpy(msg, e.msg.p, e.msg.len);
    msg[e.msg.len] = 0;
    if (strlen(msg) == e.msg.len) { /* put_err takes a C string */
      sotto__wr_init(&w, out, sizeof out);
      if (list) sotto__srv_put_err_list(&w, e.code, msg, list, len);
      else sotto__srv_put_err(&w, e.code, msg);
      if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
    }
  }
  if (list && sotto_devlist_parse(&l, list, len) == 0 && (l.n == 0 || l.n > SOTTO_DEVLIST_MAX_DEVICES)) abort();
  return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_server_notice.c: the NOTICE push (proto.h, "Server notices"), what
 * a server says of its own about expired envelopes: the payload parser,
 * the body parser, and the encoder round trip.
 * Invariants: a parsed notice has a known kind, count >= 1 and >= the
 * listed items, at most SOTTO_SRV_NOTICE_MAX_ITEMS items, an empty or valid
 * peer name, and re-encodes to exactly the bytes it came from; nothing
 * reads out of bounds (ASan). proto.c is compiled in directly because the
 * libFuzzer build of fuzz/ links libsotto only. */
#include "proto.c"

#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t out[16 + SOTTO_SRV_NOTICE_MAX_BODY];
  struct sotto_srv_notice n, b;
  struct sotto__wr w;
  uint8_t body[SOTTO_SRV_NOTICE_MAX_BODY];
  if (sotto__srv_parse_notice_body(data, size, &b) == 0) {
    if (b.count == 0 || b.count < b.n_items || b.n_items > SOTTO_SRV_NOTICE_MAX_ITEMS) abort();
    if (b.peer.len && !sotto__srv_username_ok(b.peer.p, b.peer.len)) abort();
  }
  if (sotto__srv_parse_notice(data, size, &n) != 0) return 0;
  if (n.kind != SOTTO_SRV_NOTICE_EXPIRED_SENT && n.kind != SOTTO_SRV_NOTICE_EXPIRED_RECEIVED) abort();
  sotto__wr_init(&w, body, sizeof body);
  sotto__srv_put_notice_body(&w, &n);
  if (w.err) abort();
  {
    size_t bl = w.len;
    sotto__wr_init(&w, out, sizeof out);
    sotto__srv_put_notice(&w, n.id, n.timestamp_ms, body, bl);
  }
  if (w.err || w.len != size || memcmp(out, data, size) != 0) abort();
  return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_redis_link.c: the replies cluster mode reads from Redis for link
 * slots (server/link_reply.h). The first input byte picks the step (mod
 * SOTTO_LINK_STEPS), the rest is RESP as it comes off the socket, turned
 * into replies by hiredis's own reader (what the server uses), each parsed
 * for that step. Invariants of a parsed reply: the result in its step's
 * range; the borrowed bytes inside the reply and within the protocol's cap
 * for their state; a consumed slot is a replied one with a 32-hex-digit
 * address hash; nothing read out of bounds (ASan); the reader bounded as
 * the server's (link_reply.h: no 4 GB element table from an array header
 * alone). Without hiredis (no
 * cluster mode in this build) the target only checks its input length. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef SOTTO_FUZZ_HIREDIS
#include "link_reply.h"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef SOTTO_FUZZ_HIREDIS
static void check(int step, const redisReply *r) {
  struct sotto_link_reply lr;
  size_t i;
  if (sotto__link_reply_parse(step, r, &lr) != 0) {
    const uint8_t *z = (const uint8_t *)&lr;
    for (i = 0; i < sizeof lr; i++)
      if (z[i]) abort(); /* zeroed on failure */
    return;
  }
  switch (step) {
    case SOTTO_LINK_RESERVE:
      if (lr.result != 1 && lr.result != -1) abort();
      break;
    case SOTTO_LINK_OPEN:
    case SOTTO_LINK_REPLY:
    case SOTTO_LINK_RELEASE:
      if (lr.result != 0 && lr.result != 1) abort();
      break;
    case SOTTO_LINK_PUT:
      if (lr.result && (lr.len < 1 || lr.len > SOTTO_SRV_LINK_MAX_KEYS || lr.data != r->str)) abort();
      if (!lr.result && r->type != REDIS_REPLY_NIL) abort();
      break;
    case SOTTO_LINK_GET:
      if (!lr.result) {
        if (r->type != REDIS_REPLY_NIL) abort();
        break;
      }
      if (lr.state > 2 || (lr.state == 0 && lr.len) || (lr.state == 1 && lr.len > SOTTO_SRV_LINK_MAX_BLOB) ||
          (lr.state == 2 && lr.len > SOTTO_SRV_LINK_MAX_REPLY) || lr.len != r->element[1]->len ||
          (lr.len && memcmp(lr.data, r->element[1]->str, lr.len) != 0))
        abort();
      if (lr.done && (lr.state != 2 || strlen(lr.addr) != SOTTO_LINK_ADDR_HEX)) abort();
      break;
    default:
      abort();
  }
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
#ifdef SOTTO_FUZZ_HIREDIS
  redisReader *rd;
  void *r = NULL;
  int step, n;
  if (size < 1) return 0;
  step = data[0] % SOTTO_LINK_STEPS;
  if ((rd = redisReaderCreate()) == NULL) return 0;
  if (sotto__redis_reader_bound(rd) != 0) abort(); /* as the server's readers */
  if (redisReaderFeed(rd, (const char *)data + 1, size - 1) == REDIS_OK) {
    /* every complete reply in the input, at most a few */
    for (n = 0; n < 8 && redisReaderGetReply(rd, &r) == REDIS_OK && r; n++) {
      check(step, r);
      freeReplyObject(r);
      r = NULL;
    }
  }
  redisReaderFree(rd);
#else
  if (size > (4u << 20)) abort();
#endif
  return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* link_reply.h: the replies Redis gives to the link-slot steps of cluster
 * mode (srv_cluster.c, "link slots across the cluster"), parsed before any
 * of it is used. Redis is trusted infrastructure, but what it hands over is
 * checked anyway: the reply's type and shape for the step, every length
 * against the protocol's caps, the state a digit 0..2, the opener's address
 * hash exactly 32 lowercase hex digits. Header-only so that the fuzz target
 * (fuzz/fuzz_redis_link.c, RESP bytes through hiredis's own reader) tests
 * exactly this code. The parsed result borrows from the reply. */
#ifndef SOTTO_SERVER_LINK_REPLY_H
#define SOTTO_SERVER_LINK_REPLY_H

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "proto.h"

#define SOTTO_LINK_ADDR_HEX 32 /* the opener's address hash: 16 bytes in hex */

/* hiredis (0.14) allocates an array reply's element table from the count
 * in its header, before any element has arrived: "*498480644" alone made
 * it ask for 4 GB (found by fuzz_redis_link). Every reader the server uses
 * (and the fuzz target's) gets this bound instead: no reply the server
 * expects has more than 4 elements, so an array of more than
 * SOTTO_REDIS_MAX_ELEMENTS is a protocol error (the reader fails, the node
 * treats Redis as down and says so). Memory then follows the bytes Redis
 * actually sent. */
#define SOTTO_REDIS_MAX_ELEMENTS 64

static redisReplyObjectFunctions sotto__redis_fns __attribute__((unused));
static void *(*sotto__redis_make_array)(const redisReadTask *, int) __attribute__((unused));

static __attribute__((unused)) void *sotto__redis_array(const redisReadTask *t, int n) {
  if (n < 0 || n > SOTTO_REDIS_MAX_ELEMENTS) return NULL; /* the reader reports it and stops */
  return sotto__redis_make_array(t, n);
}

static __attribute__((unused)) void sotto__redis_fns_init(void) {
  redisReader *t = redisReaderCreate(); /* hiredis's own functions, to wrap */
  if (t && t->fn && t->fn->createArray) {
    sotto__redis_fns = *t->fn;
    sotto__redis_make_array = t->fn->createArray;
    sotto__redis_fns.createArray = sotto__redis_array;
  }
  if (t) redisReaderFree(t);
}

/* 0 with rd's arrays bounded, or -1 (do not use the reader). */
static inline int sotto__redis_reader_bound(redisReader *rd) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  if (pthread_once(&once, sotto__redis_fns_init) != 0 || !rd || !sotto__redis_make_array) return -1;
  rd->fn = &sotto__redis_fns;
  return 0;
}

/* Which script (or command) the reply answers. */
enum sotto_link_step {
  SOTTO_LINK_RESERVE = 0, /* a place in a counting set: 1 taken, -1 the set is full */
  SOTTO_LINK_OPEN,        /* the slot: 1 made, 0 the hash exists (a code collision) */
  SOTTO_LINK_PUT,         /* nil: no waiting slot; else the new device's keys */
  SOTTO_LINK_GET,         /* nil: no slot; else {state, bytes} or {state, bytes, '1', addr} */
  SOTTO_LINK_REPLY,       /* 1 stored, 0 the slot is not provisioned */
  SOTTO_LINK_RELEASE,     /* ZREM: 0 or 1 */
  SOTTO_LINK_STEPS
};

struct sotto_link_reply {
  int result;        /* RESERVE, OPEN, REPLY, RELEASE: the number; PUT, GET: 1 found, 0 nil */
  uint8_t state;     /* GET: SOTTO_SRV_LINK_WAITING / _PROVISIONED / _REPLIED */
  const char *data;  /* PUT: the keys; GET: the blob (state 1) or the reply (state 2) */
  size_t len;
  int done;          /* GET: the reply was handed to its account and the slot deleted */
  char addr[SOTTO_LINK_ADDR_HEX + 1]; /* GET with done: the opener's address hash */
};

static inline int sotto__link_int(const redisReply *r, long long lo, long long hi, int *out) {
  if (!r || r->type != REDIS_REPLY_INTEGER || r->integer < lo || r->integer > hi) return -1;
  *out = (int)r->integer;
  return 0;
}

static inline int sotto__link_str(const redisReply *r, size_t lo, size_t hi) {
  return r && r->type == REDIS_REPLY_STRING && r->len >= lo && r->len <= hi && (r->len == 0 || r->str) ? 0 : -1;
}

static inline int sotto__link_reply_fill(int step, const redisReply *r, struct sotto_link_reply *out) {
  size_t i, max;
  if (!r) return -1;
  switch (step) {
    case SOTTO_LINK_RESERVE:
      if (sotto__link_int(r, -1, 1, &out->result) || out->result == 0) return -1;
      return 0;
    case SOTTO_LINK_OPEN:
      return sotto__link_int(r, 0, 1, &out->result);
    case SOTTO_LINK_REPLY:
      return sotto__link_int(r, 0, 1, &out->result);
    case SOTTO_LINK_RELEASE:
      return sotto__link_int(r, 0, 1, &out->result);
    case SOTTO_LINK_PUT:
      if (r->type == REDIS_REPLY_NIL) return 0;
      if (sotto__link_str(r, 1, SOTTO_SRV_LINK_MAX_KEYS)) return -1;
      out->result = 1;
      out->data = r->str;
      out->len = r->len;
      return 0;
    case SOTTO_LINK_GET:
      if (r->type == REDIS_REPLY_NIL) return 0;
      if (r->type != REDIS_REPLY_ARRAY || !r->element || (r->elements != 2 && r->elements != 4)) return -1;
      for (i = 0; i < r->elements; i++)
        if (sotto__link_str(r->element[i], 0, SOTTO_SRV_LINK_MAX_BLOB)) return -1;
      if (r->element[0]->len != 1 || r->element[0]->str[0] < '0' || r->element[0]->str[0] > '2') return -1;
      out->state = (uint8_t)(r->element[0]->str[0] - '0');
      max = out->state == SOTTO_SRV_LINK_PROVISIONED ? SOTTO_SRV_LINK_MAX_BLOB
            : out->state == SOTTO_SRV_LINK_REPLIED   ? SOTTO_SRV_LINK_MAX_REPLY
                                                     : 0;
      if (r->element[1]->len > max) return -1;
      if (r->elements == 4) {
        /* Consumed: only a replied slot, and the opener's address hash. */
        const redisReply *a = r->element[3];
        if (out->state != SOTTO_SRV_LINK_REPLIED || r->element[2]->len != 1 || r->element[2]->str[0] != '1' ||
            a->len != SOTTO_LINK_ADDR_HEX)
          return -1;
        for (i = 0; i < SOTTO_LINK_ADDR_HEX; i++)
          if (!((a->str[i] >= '0' && a->str[i] <= '9') || (a->str[i] >= 'a' && a->str[i] <= 'f'))) return -1;
        memcpy(out->addr, a->str, SOTTO_LINK_ADDR_HEX);
        out->done = 1;
      }
      out->result = 1;
      out->data = r->element[1]->len ? r->element[1]->str : "";
      out->len = r->element[1]->len;
      return 0;
    default:
      return -1;
  }
}

/* 0 with *out filled, or -1 (a reply that does not fit the step: the
 * caller refuses the request, ERR(internal), and counts it) with *out
 * zeroed. */
static inline int sotto__link_reply_parse(int step, const redisReply *r, struct sotto_link_reply *out) {
  memset(out, 0, sizeof *out);
  if (sotto__link_reply_fill(step, r, out) == 0) return 0;
  memset(out, 0, sizeof *out);
  return -1;
}

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* srv_expire.c: the expiry run and the notices it leaves (docs/server.md,
 * "Expired envelopes"; docs/protocol-server.md, "Server notices").
 *
 * Envelopes older than the queue age are deleted in the batch's
 * transaction. Before that, the ones that will go are listed (sender,
 * sender device, recipient, id, time; no bodies) and summed per pair
 * (sender device, recipient device). After the delete, the server queues
 * notices of its own (sender "", which no account can be):
 *  - to the sender's device: "count envelopes of yours to RECIPIENT expired
 *    unread", listing the first SOTTO_SRV_NOTICE_MAX_ITEMS server ids and
 *    times (what its SEND answers said, for its outbox);
 *  - to the recipient's device: "count envelopes from SENDER expired before
 *    you fetched them".
 * Bounds, so that an expiry of any size makes few notices: one notice per
 * pair and run; per sender device at most EXP_PER_USER notices per run (the
 * last one sums up every further recipient, peer ""), and the same per
 * recipient device; at most EXP_MAX_PAIRS pairs and EXP_SCAN_MAX envelopes
 * listed per run (past them the counts are lower bounds, logged). Notices
 * are small (at most SOTTO_SRV_NOTICE_MAX_BODY bytes), count against no
 * sender's quota (their sender is ""), never produce notices themselves
 * when they expire, and are queued only for devices that still exist. */
#include <stdlib.h>
#include <string.h>

#include "srv_internal.h"

#define EXP_MAX_PAIRS 4096
#define EXP_SCAN_MAX 200000 /* rows a run lists (PostgreSQL holds them in one result: ~20 MB at most) */
#define EXP_PER_USER 4

struct pair {
  char sender[SOTTO_STORE_USER_MAX + 1], recipient[SOTTO_STORE_USER_MAX + 1];
  uint32_t sender_device, device_id;
  int64_t devkey;
  uint32_t count;
  uint8_t n;
  struct sotto_srv_notice_item items[SOTTO_SRV_NOTICE_MAX_ITEMS];
};

struct scan {
  struct pair *p;
  size_t n;
  int64_t listed, lost; /* envelopes listed; envelopes past EXP_MAX_PAIRS */
};

static int scan_cb(void *ctx, const struct sotto_store_expiring *e) {
  struct scan *x = ctx;
  struct pair *p = x->n ? &x->p[x->n - 1] : NULL;
  x->listed++;
  if (!p || p->devkey != e->devkey || p->sender_device != e->sender_device || strcmp(p->sender, e->sender) != 0) {
    if (x->n == EXP_MAX_PAIRS || strlen(e->sender) > SOTTO_STORE_USER_MAX ||
        strlen(e->recipient) > SOTTO_STORE_USER_MAX) {
      x->lost++;
      return 0;
    }
    p = &x->p[x->n++];
    memset(p, 0, sizeof *p);
    snprintf(p->sender, sizeof p->sender, "%s", e->sender);
    snprintf(p->recipient, sizeof p->recipient, "%s", e->recipient);
    p->sender_device = e->sender_device;
    p->device_id = e->device_id;
    p->devkey = e->devkey;
  }
  if (p->count < UINT32_MAX) p->count++;
  if (p->n < SOTTO_SRV_NOTICE_MAX_ITEMS) {
    p->items[p->n].id = (uint64_t)e->id;
    p->items[p->n].timestamp_ms = (uint64_t)e->timestamp_ms;
    p->n++;
  }
  return 0;
}

/* Queues one notice for devkey; *max_id raised to its id. */
static int notice_put(struct srv *s, int64_t devkey, uint32_t device_id, const struct sotto_srv_notice *m,
                      int64_t now, int64_t *max_id) {
  uint8_t body[SOTTO_SRV_NOTICE_MAX_BODY];
  struct sotto__wr w;
  struct sotto_store_env e;
  int rc;
  sotto__wr_init(&w, body, sizeof body);
  sotto__srv_put_notice_body(&w, m);
  if (w.err) return SOTTO_ERR_INTERNAL;
  memset(&e, 0, sizeof e);
  e.sender = "";
  e.device_id = device_id;
  e.type = 0;
  e.timestamp_ms = now;
  e.body = body;
  e.body_len = w.len;
  if ((rc = s->store.ops->msg_insert(s->store.impl, devkey, &e)) != 0) return rc;
  if (e.id > *max_id) *max_id = e.id;
  return 0;
}

static void set_peer(struct sotto_srv_notice *m, const char *peer) {
  m->peer.p = (const uint8_t *)peer;
  m->peer.len = strlen(peer);
}

/* Per group of pairs (one sender device, or one recipient device): up to
 * EXP_PER_USER pairs get a notice each; with more, the first
 * EXP_PER_USER - 1 do and the rest share one summary (peer ""). */
static int by_recipient(const void *a, const void *b) {
  const struct pair *x = *(const struct pair *const *)a, *y = *(const struct pair *const *)b;
  return x->devkey < y->devkey ? -1 : x->devkey > y->devkey ? 1 : 0;
}

int sotto__srv_expire_run(struct srv *s, int64_t before_ms, int64_t *deleted, int64_t *notices, int64_t *max_id) {
  const struct sotto_store_ops *ops = s->store.ops;
  struct scan x;
  struct pair **order = NULL;
  int64_t now = sotto__srv_now_ms();
  size_t i, j;
  int rc;
  *deleted = *notices = 0;
  memset(&x, 0, sizeof x);
  if ((x.p = malloc(EXP_MAX_PAIRS * sizeof *x.p)) == NULL) return SOTTO_ERR_NOMEM;
  if ((rc = ops->expire_scan(s->store.impl, before_ms, EXP_SCAN_MAX, scan_cb, &x)) != 0 ||
      (rc = ops->expire(s->store.impl, before_ms, deleted)) != 0)
    goto out;
  if (x.lost || x.listed == EXP_SCAN_MAX)
    sotto__srv_log(0, "expire_notices_capped", "pairs=%zu listed=%lld unlisted=%lld", x.n, (long long)x.listed,
                   (long long)x.lost);
  /* To the senders: pairs come grouped by sender device already. */
  for (i = 0; i < x.n; i = j) {
    struct sotto_store_device d;
    struct sotto_srv_notice m;
    uint32_t rest = 0, k = 0;
    int many;
    for (j = i; j < x.n && x.p[j].sender_device == x.p[i].sender_device && strcmp(x.p[j].sender, x.p[i].sender) == 0;
         j++) {
    }
    many = j - i > EXP_PER_USER;
    rc = ops->device_route(s->store.impl, x.p[i].sender, x.p[i].sender_device, &d);
    if (rc == 1) continue; /* the sender's device is gone: nobody to tell */
    if (rc != 0) goto out;
    for (; i < j; i++, k++) {
      if (many && k + 1 >= EXP_PER_USER) {
        rest += x.p[i].count;
        continue;
      }
      memset(&m, 0, sizeof m);
      m.kind = SOTTO_SRV_NOTICE_EXPIRED_SENT;
      set_peer(&m, x.p[i].recipient);
      m.count = x.p[i].count;
      m.n_items = x.p[i].n;
      memcpy(m.items, x.p[i].items, sizeof m.items);
      if ((rc = notice_put(s, d.devkey, x.p[i].sender_device, &m, now, max_id)) != 0) goto out;
      ++*notices;
    }
    if (rest) {
      memset(&m, 0, sizeof m);
      m.kind = SOTTO_SRV_NOTICE_EXPIRED_SENT;
      set_peer(&m, "");
      m.count = rest;
      if ((rc = notice_put(s, d.devkey, x.p[i - 1].sender_device, &m, now, max_id)) != 0) goto out;
      ++*notices;
    }
  }
  /* To the recipients: grouped by recipient device. */
  if (x.n && (order = malloc(x.n * sizeof *order)) == NULL) {
    rc = SOTTO_ERR_NOMEM;
    goto out;
  }
  for (i = 0; i < x.n; i++) order[i] = &x.p[i];
  if (x.n) qsort(order, x.n, sizeof *order, by_recipient);
  for (i = 0; i < x.n; i = j) {
    struct sotto_srv_notice m;
    uint32_t rest = 0, k = 0;
    int r, many;
    for (j = i; j < x.n && order[j]->devkey == order[i]->devkey; j++) {
    }
    many = j - i > EXP_PER_USER;
    if ((r = ops->device_exists(s->store.impl, order[i]->devkey)) < 0) {
      rc = r;
      goto out;
    }
    if (r == 0) continue;
    for (; i < j; i++, k++) {
      if (many && k + 1 >= EXP_PER_USER) {
        rest += order[i]->count;
        continue;
      }
      memset(&m, 0, sizeof m);
      m.kind = SOTTO_SRV_NOTICE_EXPIRED_RECEIVED;
      set_peer(&m, order[i]->sender);
      m.count = order[i]->count;
      m.n_items = order[i]->n;
      memcpy(m.items, order[i]->items, sizeof m.items);
      if ((rc = notice_put(s, order[i]->devkey, order[i]->device_id, &m, now, max_id)) != 0) goto out;
      ++*notices;
    }
    if (rest) {
      memset(&m, 0, sizeof m);
      m.kind = SOTTO_SRV_NOTICE_EXPIRED_RECEIVED;
      set_peer(&m, "");
      m.count = rest;
      if ((rc = notice_put(s, order[i - 1]->devkey, order[i - 1]->device_id, &m, now, max_id)) != 0) goto out;
      ++*notices;
    }
  }
out:
  free(order);
  free(x.p);
  return rc;
}

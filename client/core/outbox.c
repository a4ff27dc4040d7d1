/* SPDX-License-Identifier: Apache-2.0 */
/* outbox.c: the outbox, delivery and read receipts, decryption-retry
 * requests (session healing), gap notices, session reset (outbox.h,
 * docs/client.md "Outbox, receipts and session healing").
 *
 * Nothing here trusts a count from the network: a receipt names at most
 * CONTENT_MAX_RECEIPTS texts and each is looked up by name; a retry request
 * resends at most RETRY_MAX_RESEND texts that are in our own outbox, for at
 * most one request per peer per RETRY_WINDOW_S; and our own retry requests
 * (each costs a bundle fetch and a new session) go only to contacts with a
 * pinned key and a session, one per peer per window and at most
 * RETRY_MAX_PER_WINDOW per client object per window. */
#include "outbox.h"

#include <sodium.h>
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "contact.h"
#include "convo.h"
#include "messaging.h"
#include "record.h"

#define OB_RESEND 1u /* the recipient asked again for it */
#define OB_QUEUED 2u /* never handed to the server */
/* Bits 2-3: times a retry request marked it for resending (at most
 * RETRY_MAX_RESENDS_PER_TEXT in its life). */
#define OB_RESENT_SHIFT 2
#define OB_RESENT_MASK (3u << OB_RESENT_SHIFT)
#define OB_ENT_LEN 21
#define RCPT_ENT_LEN 9
#define RETRY_VERSION 1
#define NAME_LEN 96

struct ob_ent {
  uint64_t seq;
  uint32_t len;
  uint8_t flags;
  uint64_t ts; /* the text's timestamp (ms): its age without loading it */
};
struct ob {
  struct ob_ent e[OUTBOX_MAX];
  size_t n;
};

static int ob_load(struct store *st, struct ob *o) {
  struct rec_rd r;
  uint8_t *v;
  size_t n, i;
  int rc = store_get(st, "outbox", &v, &n);
  o->n = 0;
  if (rc <= 0) return rc;
  if (n % OB_ENT_LEN || n / OB_ENT_LEN > OUTBOX_MAX) {
    store_free_value(v, n);
    return STORE_E_CORRUPT;
  }
  rec_rd_init(&r, v, n);
  for (i = 0; i < n / OB_ENT_LEN; i++) {
    rec_get_u64(&r, &o->e[i].seq);
    rec_get_u32(&r, &o->e[i].len);
    rec_get_u8(&r, &o->e[i].flags);
    rec_get_u64(&r, &o->e[i].ts);
  }
  o->n = n / OB_ENT_LEN;
  rc = rec_rd_end(&r) ? STORE_E_CORRUPT : 0;
  store_free_value(v, n);
  return rc;
}

static int ob_save(struct store *st, const struct ob *o) {
  struct rec_wr w;
  size_t i;
  int rc;
  if (o->n == 0) return store_del(st, "outbox");
  rec_wr_init(&w, OB_ENT_LEN * OUTBOX_MAX);
  for (i = 0; i < o->n; i++) {
    rec_put_u64(&w, o->e[i].seq);
    rec_put_u32(&w, o->e[i].len);
    rec_put_u8(&w, o->e[i].flags);
    rec_put_u64(&w, o->e[i].ts);
  }
  rc = rec_wr_ok(&w) ? STORE_E_IO : store_put(st, "outbox", w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

static void ob_remove(struct ob *o, size_t i) {
  memmove(&o->e[i], &o->e[i + 1], (o->n - i - 1) * sizeof o->e[0]);
  o->n--;
}

static long ob_find(const struct ob *o, uint64_t seq) {
  size_t i;
  for (i = 0; i < o->n; i++)
    if (o->e[i].seq == seq) return (long)i;
  return -1;
}

/* Removes seq from the stored outbox (inside a transaction). */
static int ob_drop(struct store *st, uint64_t seq) {
  struct ob *o = malloc(sizeof *o);
  long i;
  int rc;
  if (!o) return STORE_E_IO;
  if ((rc = ob_load(st, o)) == 0 && (i = ob_find(o, seq)) >= 0) {
    ob_remove(o, (size_t)i);
    rc = ob_save(st, o);
  }
  free(o);
  return rc;
}

static void delivery_event(struct sc_client *c, const struct msg *m, int reason, const char *detail) {
  struct sc_event ev;
  memset(&ev, 0, sizeof ev);
  ev.kind = SC_EV_DELIVERY;
  ev.state = m->reason;
  ev.reason = reason;
  ev.seq = m->seq;
  ev.peer = m->peer;
  ev.detail = detail;
  ev.timestamp_ms = m->ts;
  ev.server_id = m->server_id;
  ev.text = m->text;
  ev.text_len = m->text_len;
  sc__emit(c, &ev);
}

/* Rank of a state: a receipt may raise it, never lower it; a late receipt
 * beats "failed" and "expired" (it did arrive). */
static int rank(int state) {
  switch (state) {
    case SC_STATE_READ:
      return 4;
    case SC_STATE_DELIVERED:
      return 3;
    case SC_STATE_FAILED:
    case SC_STATE_EXPIRED:
      return 2;
    case SC_STATE_SENT:
      return 1;
    default:
      return 0;
  }
}

/* Inside a transaction: sets the state of our text seq (and its server id
 * when sid != 0), emits SC_EV_DELIVERY when it changed. Final states leave
 * the outbox. 1 if changed, 0 if not, or STORE_E_*. */
static int set_state(struct sc_client *c, uint64_t seq, int state, int reason, const char *detail,
                     uint64_t sid, uint64_t sts) {
  struct msg *m = calloc(1, sizeof *m);
  int rc;
  if (!m) return STORE_E_IO;
  if ((rc = msglog_get(c->st, seq, m)) != 0 || m->dir != MSG_OUT) {
    rc = rc ? rc : 0;
    goto out;
  }
  /* "sent" (again, after a resend: the new envelope's id) never lowers a
   * state a receipt raised; anything else only raises. */
  if (state == SC_STATE_SENT ? rank(m->reason) > rank(SC_STATE_SENT) : rank(state) <= rank(m->reason)) {
    rc = 0;
    goto out;
  }
  m->reason = (uint8_t)state;
  if (sid) {
    m->server_id = sid;
    m->server_ts = sts;
  }
  if ((rc = msglog_update(c->st, m)) != 0) goto out;
  if (state != SC_STATE_SENT && state != SC_STATE_QUEUED && (rc = ob_drop(c->st, seq)) != 0) goto out;
  delivery_event(c, m, reason, detail);
  rc = 1;
out:
  msg_clear(m);
  free(m);
  return rc;
}

static void ots_name(char out[NAME_LEN], const char *prefix, const char *peer, uint64_t ts) {
  snprintf(out, NAME_LEN, "%s/%s/%llu", prefix, peer, (unsigned long long)ts);
}

int outbox_add(struct sc_client *c, struct msg *m) {
  struct ob *o = malloc(sizeof *o);
  char rn[NAME_LEN];
  uint8_t b[8];
  uint64_t bytes = 0;
  size_t i;
  int rc, track = 1;
  if (!o) return STORE_E_IO;
  if ((rc = ob_load(c->st, o)) != 0) goto out;
  for (i = 0; i < o->n; i++) bytes += o->e[i].len;
  /* Full: the oldest text already handed to the server is given up (it
   * stays in the history as "failed"); queued ones are never pushed out. */
  while (track && (o->n >= OUTBOX_MAX || bytes + m->text_len > OUTBOX_MAX_BYTES)) {
    for (i = 0; i < o->n && (o->e[i].flags & OB_QUEUED); i++) {
    }
    if (i == o->n) {
      /* Only queued texts: a new queued one is refused; one the server took
       * already is logged without a place in the outbox (no resend). */
      if (m->reason == SC_STATE_QUEUED) {
        rc = SC_ERR_OUTBOX_FULL;
        goto out;
      }
      track = 0;
      break;
    }
    if ((rc = set_state(c, o->e[i].seq, SC_STATE_FAILED, SC_R_OUTBOX_FULL, NULL, 0, 0)) < 0 ||
        (rc = ob_drop(c->st, o->e[i].seq)) != 0 || (rc = ob_load(c->st, o)) != 0)
      goto out;
    for (bytes = 0, i = 0; i < o->n; i++) bytes += o->e[i].len;
  }
  if ((rc = msglog_add(c->st, c->acct, m, 0)) != 0) goto out;
  for (i = 0; i < 8; i++) b[i] = (uint8_t)(m->seq >> (56 - 8 * i));
  ots_name(rn, "ots", m->peer, m->ts);
  if ((rc = store_put(c->st, rn, b, sizeof b)) != 0 || !track) goto out;
  o->e[o->n].seq = m->seq;
  o->e[o->n].len = (uint32_t)m->text_len;
  o->e[o->n].flags = m->reason == SC_STATE_QUEUED ? OB_QUEUED : 0;
  o->e[o->n].ts = m->ts;
  o->n++;
  rc = ob_save(c->st, o);
out:
  free(o);
  return rc;
}

int outbox_transcript(struct sc_client *c, const char *peer, const struct content *ct) {
  struct msg *m = calloc(1, sizeof *m);
  char rn[NAME_LEN];
  uint8_t b[8];
  size_t i;
  int rc;
  if (!m || !(m->text = malloc(ct->text_len + 1))) {
    free(m);
    return STORE_E_IO;
  }
  memcpy(m->text, ct->text, ct->text_len);
  m->text[ct->text_len] = 0;
  m->text_len = ct->text_len;
  m->dir = MSG_OUT;
  m->reason = SC_STATE_SENT;
  snprintf(m->peer, sizeof m->peer, "%s", peer);
  m->ts = ct->ts;
  m->device = c->env_device;
  convo_out_row(c, m, ct); /* a reply, a disappearing text: as on that device */
  if ((rc = msglog_add(c->st, c->acct, m, 1)) == 0) {
    /* the recipient's receipts reach every device of ours: this one too */
    for (i = 0; i < 8; i++) b[i] = (uint8_t)(m->seq >> (56 - 8 * i));
    ots_name(rn, "ots", peer, m->ts);
    rc = store_put(c->st, rn, b, sizeof b);
  }
  msg_clear(m);
  free(m);
  return rc;
}

int outbox_forget(struct sc_client *c, const struct msg *m) {
  char rn[NAME_LEN];
  int rc;
  if (m->dir != MSG_OUT || m->group[0]) return 0;
  if ((rc = ob_drop(c->st, m->seq)) != 0) return rc;
  ots_name(rn, "ots", m->peer, m->ts);
  return store_del(c->st, rn);
}

int outbox_receipt(struct sc_client *c, const char *peer, const struct content *ct) {
  char rn[NAME_LEN];
  size_t i;
  int rc = 0;
  for (i = 0; i < ct->n_receipts && rc >= 0; i++) {
    struct rec_rd r;
    uint64_t seq = 0;
    uint8_t *v;
    size_t n;
    /* Only the recipient's own receipts count: the name holds the peer. */
    ots_name(rn, "ots", peer, ct->receipts[i]);
    if ((rc = store_get(c->st, rn, &v, &n)) <= 0) continue;
    rec_rd_init(&r, v, n);
    rec_get_u64(&r, &seq);
    rc = rec_rd_end(&r) ? STORE_E_CORRUPT : 0;
    store_free_value(v, n);
    if (rc == 0)
      rc = set_state(c, seq, ct->receipt_type == RECEIPT_READ ? SC_STATE_READ : SC_STATE_DELIVERED, SC_R_NONE,
                     NULL, 0, 0);
  }
  return rc < 0 ? rc : 0;
}

/* ---- who we owe something ------------------------------------------------------ */

/* "owed": the peers with receipts owed or a retry request waiting (n x
 * str16 name, at most OWED_MAX), so that a flush reads one record instead
 * of scanning the store. */
#define OWED_MAX 256
struct owed {
  char v[OWED_MAX][SC_USER_MAX + 1];
  size_t n;
};

static int owed_load(struct store *st, struct owed *o) {
  struct rec_rd r;
  uint8_t *v;
  size_t n;
  int rc;
  o->n = 0;
  if ((rc = store_get(st, "owed", &v, &n)) <= 0) return rc;
  rec_rd_init(&r, v, n);
  while (sotto__rd_left(&r.r) && o->n < OWED_MAX && rec_get_cstr(&r, o->v[o->n], sizeof o->v[0]) == 0) o->n++;
  rc = rec_rd_end(&r) ? STORE_E_CORRUPT : 0;
  store_free_value(v, n);
  return rc;
}

static int owed_save(struct store *st, const struct owed *o) {
  struct rec_wr w;
  size_t i;
  int rc;
  if (o->n == 0) return store_del(st, "owed");
  rec_wr_init(&w, OWED_MAX * (SC_USER_MAX + 2));
  for (i = 0; i < o->n; i++) rec_put_str16(&w, o->v[i], strlen(o->v[i]));
  rc = rec_wr_ok(&w) ? STORE_E_IO : store_put(st, "owed", w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

/* Inside a transaction: peer is owed something. A full list drops the
 * oldest name (what it was owed stays stored, sent with its next message). */
static int owed_add(struct sc_client *c, const char *peer) {
  struct owed *o = malloc(sizeof *o);
  size_t i;
  int rc;
  if (!o) return STORE_E_IO;
  if ((rc = owed_load(c->st, o)) == 0) {
    for (i = 0; i < o->n && strcmp(o->v[i], peer) != 0; i++) {
    }
    if (i == o->n) {
      if (o->n == OWED_MAX) {
        memmove(o->v, o->v + 1, (o->n - 1) * sizeof o->v[0]);
        o->n--;
      }
      snprintf(o->v[o->n++], sizeof o->v[0], "%s", peer);
      rc = owed_save(c->st, o);
    }
  }
  free(o);
  c->flush_wanted = 1;
  return rc;
}

/* ---- receipts we owe ------------------------------------------------------------ */

struct rcpt {
  uint64_t ts[RCPT_MAX_PENDING];
  uint8_t type[RCPT_MAX_PENDING];
  size_t n;
};

static int rcpt_load(struct store *st, const char *peer, struct rcpt *p) {
  char rn[NAME_LEN];
  struct rec_rd r;
  uint8_t *v;
  size_t n, i;
  int rc;
  p->n = 0;
  snprintf(rn, sizeof rn, "rcpt/%s", peer);
  if ((rc = store_get(st, rn, &v, &n)) <= 0) return rc;
  if (n % RCPT_ENT_LEN || n / RCPT_ENT_LEN > RCPT_MAX_PENDING) {
    store_free_value(v, n);
    return STORE_E_CORRUPT;
  }
  rec_rd_init(&r, v, n);
  for (i = 0; i < n / RCPT_ENT_LEN; i++) {
    rec_get_u64(&r, &p->ts[i]);
    rec_get_u8(&r, &p->type[i]);
  }
  p->n = n / RCPT_ENT_LEN;
  store_free_value(v, n);
  return 0;
}

static int rcpt_save(struct store *st, const char *peer, const struct rcpt *p) {
  char rn[NAME_LEN];
  struct rec_wr w;
  size_t i;
  int rc;
  snprintf(rn, sizeof rn, "rcpt/%s", peer);
  if (p->n == 0) return store_del(st, rn);
  rec_wr_init(&w, RCPT_ENT_LEN * RCPT_MAX_PENDING);
  for (i = 0; i < p->n; i++) {
    rec_put_u64(&w, p->ts[i]);
    rec_put_u8(&w, p->type[i]);
  }
  rc = rec_wr_ok(&w) ? STORE_E_IO : store_put(st, rn, w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

/* Owes peer a receipt of type for ts ("read" replaces "delivered"). */
static int rcpt_add(struct sc_client *c, const char *peer, uint64_t ts, uint8_t type) {
  struct rcpt *p = malloc(sizeof *p);
  size_t i;
  int rc;
  if (!p) return STORE_E_IO;
  if ((rc = rcpt_load(c->st, peer, p)) != 0) goto out;
  for (i = 0; i < p->n; i++)
    if (p->ts[i] == ts) break;
  if (i < p->n) {
    if (p->type[i] >= type) goto out;
    p->type[i] = type;
  } else {
    if (p->n == RCPT_MAX_PENDING) {
      memmove(p->ts, p->ts + 1, (p->n - 1) * sizeof p->ts[0]);
      memmove(p->type, p->type + 1, (p->n - 1) * sizeof p->type[0]);
      p->n--;
    }
    p->ts[p->n] = ts;
    p->type[p->n++] = type;
  }
  if ((rc = rcpt_save(c->st, peer, p)) == 0) rc = owed_add(c, peer);
out:
  free(p);
  return rc;
}

static void in_name(char rn[NAME_LEN], const char *peer, uint64_t ts, const uint8_t *text, size_t len) {
  uint8_t h[8];
  crypto_generichash(h, sizeof h, text, len, NULL, 0);
  snprintf(rn, NAME_LEN, "in/%s/%llu/%02x%02x%02x%02x%02x%02x%02x%02x", peer, (unsigned long long)ts, h[0], h[1],
           h[2], h[3], h[4], h[5], h[6], h[7]);
}

int outbox_forget_in(struct sc_client *c, const struct msg *m) {
  char rn[NAME_LEN];
  if (m->dir != MSG_IN || m->group[0] || (m->mflags & (MSGF_EDITED | MSGF_DELETED))) return 0;
  in_name(rn, m->peer, m->ts, (const uint8_t *)m->text, m->text_len);
  return store_del(c->st, rn);
}

int outbox_seen_text(struct sc_client *c, const char *peer, const struct content *ct, int *dup) {
  char rn[NAME_LEN];
  uint8_t *v;
  size_t n;
  int rc;
  /* A resent copy has the same timestamp and text: both name it. */
  in_name(rn, peer, ct->ts, ct->text, ct->text_len);
  if ((rc = store_get(c->st, rn, &v, &n)) < 0) return rc;
  if (rc == 1) store_free_value(v, n);
  *dup = rc == 1;
  return *dup ? 0 : store_put(c->st, rn, (const uint8_t *)"", 0);
}

int outbox_arrived(struct sc_client *c, const char *peer, const struct content *ct, int *dup) {
  int rc = outbox_seen_text(c, peer, ct, dup);
  return rc ? rc : rcpt_add(c, peer, ct->ts, RECEIPT_DELIVERED);
}

static int read_receipts_on(struct store *st) {
  uint8_t *v;
  size_t n;
  int rc = store_get(st, "cfg/read_receipts", &v, &n);
  if (rc <= 0) return rc;
  rc = n == 1 && v[0] == 1;
  store_free_value(v, n);
  return rc;
}

int outbox_owe_held(struct sc_client *c, const char *peer, uint64_t ts, int shown) {
  int rc = shown ? read_receipts_on(c->st) : 0;
  if (rc < 0) return rc;
  return rcpt_add(c, peer, ts, rc == 1 ? RECEIPT_READ : RECEIPT_DELIVERED);
}

int outbox_shown(struct sc_client *c, const char *peer, uint64_t ts) {
  int rc = read_receipts_on(c->st);
  if (rc <= 0) return rc;
  return rcpt_add(c, peer, ts, RECEIPT_READ);
}

int sc_set_read_receipts(struct sc_client *c, int on) {
  uint8_t v = on ? 1 : 0;
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if ((rc = sc__begin(c)) || (rc = store_put(c->st, "cfg/read_receipts", &v, 1)) ||
      (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  return 0;
}

int sc_read_receipts(int *on, struct sc_client *c) {
  int rc;
  *on = 0;
  if ((rc = sc__need_open(c))) return rc;
  if ((rc = read_receipts_on(c->st)) < 0) return sc__store_error(c, rc);
  *on = rc;
  return 0;
}

/* ---- retry requests -------------------------------------------------------------- */

/* "retry/PEER": u8 version | u64 last request (s) | u8 pending | u64 server
 * id | u64 server time | u32 quiet | u64 last acted on (s). */
struct retry_rec {
  uint64_t last_req, sid, sts, last_acted;
  uint8_t pending;
  uint32_t quiet;
};

static int retry_load(struct store *st, const char *peer, struct retry_rec *r) {
  char rn[NAME_LEN];
  struct rec_rd rd;
  uint8_t *v, ver = 0;
  size_t n;
  int rc;
  memset(r, 0, sizeof *r);
  snprintf(rn, sizeof rn, "retry/%s", peer);
  if ((rc = store_get(st, rn, &v, &n)) <= 0) return rc;
  rec_rd_init(&rd, v, n);
  rec_get_u8(&rd, &ver);
  rec_get_u64(&rd, &r->last_req);
  rec_get_u8(&rd, &r->pending);
  rec_get_u64(&rd, &r->sid);
  rec_get_u64(&rd, &r->sts);
  rec_get_u32(&rd, &r->quiet);
  rec_get_u64(&rd, &r->last_acted);
  rc = rec_rd_end(&rd) || ver != RETRY_VERSION ? STORE_E_CORRUPT : 0;
  store_free_value(v, n);
  return rc;
}

static int retry_save(struct store *st, const char *peer, const struct retry_rec *r) {
  char rn[NAME_LEN];
  struct rec_wr w;
  int rc;
  snprintf(rn, sizeof rn, "retry/%s", peer);
  rec_wr_init(&w, 64);
  rec_put_u8(&w, RETRY_VERSION);
  rec_put_u64(&w, r->last_req);
  rec_put_u8(&w, r->pending);
  rec_put_u64(&w, r->sid);
  rec_put_u64(&w, r->sts);
  rec_put_u32(&w, r->quiet);
  rec_put_u64(&w, r->last_acted);
  rc = rec_wr_ok(&w) ? STORE_E_IO : store_put(st, rn, w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

/* A logged event with a count and a server id. */
static int log_ev(struct sc_client *c, int kind, int reason, const char *peer, uint64_t count, uint64_t sid) {
  struct msg *m = calloc(1, sizeof *m);
  int rc;
  if (!m) return STORE_E_IO;
  m->dir = MSG_EVENT;
  m->kind = (uint8_t)kind;
  m->reason = (uint8_t)reason;
  snprintf(m->peer, sizeof m->peer, "%s", peer);
  m->ts = sc_now_ms();
  m->count = count;
  m->server_id = sid;
  m->text = (char *)"";
  rc = msglog_add(c->st, c->acct, m, 1);
  free(m);
  return rc;
}

static int in_window(uint64_t then, uint64_t now) {
  return then && now >= then && now - then < RETRY_WINDOW_S;
}

/* 1 if peer is a contact with a pinned key and a session record, 0 if not. */
static int known_peer(struct sc_client *c, const char *peer) {
  struct contact who;
  char rn[NAME_LEN];
  uint8_t *v;
  size_t n;
  int rc;
  if ((rc = contact_load(c->st, peer, &who)) <= 0) return rc;
  if (!who.has_key) return 0;
  snprintf(rn, sizeof rn, "session/%s", peer);
  if ((rc = store_get(c->st, rn, &v, &n)) == 1) store_free_value(v, n);
  return rc;
}

int heal_failed(struct sc_client *c, const char *peer, uint64_t sid, int reason, const char *detail,
                const char *held_rec) {
  struct retry_rec r;
  char rn[NAME_LEN];
  uint64_t now = sc__now_s();
  int rc, ask, known;
  (void)reason;
  (void)detail;
  if ((rc = sc__begin(c))) return rc;
  if ((rc = retry_load(c->st, peer, &r)) < 0) goto fail;
  /* Only a contact we have a pinned key and a session with is asked: a
   * stranger's garbage costs no bundle fetch, pins no key by first use and
   * tells it nothing (not even that we are online). */
  if ((known = known_peer(c, peer)) < 0) {
    rc = known;
    goto fail;
  }
  if (!known) {
    store_rollback(c->st);
    return 1;
  }
  if (!in_window(c->retries_since, now)) {
    c->retries_since = now;
    c->retries_run = 0;
  }
  ask = !in_window(r.last_req, now) && c->retries_run < RETRY_MAX_PER_WINDOW;
  if (!ask && !(in_window(r.last_req, now) && r.quiet < RETRY_QUIET_MAX)) {
    store_rollback(c->st);
    return 1; /* past the bounds: dropped as unreadable by the caller */
  }
  if (ask) {
    /* A fresh session from a new bundle (the old state stays archived),
     * and in it the request naming this envelope (outbox_flush sends it). */
    r.last_req = now;
    r.pending = 1;
    r.sid = sid;
    r.sts = c->env_server_ts;
    r.quiet = 0;
    snprintf(rn, sizeof rn, "rekey/%s", peer);
    if ((rc = store_put(c->st, rn, (const uint8_t *)"", 0)) || (rc = owed_add(c, peer)) ||
        (rc = log_ev(c, SC_EV_RETRY_REQUESTED, SC_R_NONE, peer, 0, sid)))
      goto fail;
  } else {
    r.quiet++; /* covered by the request already made: everything after it is resent */
  }
  if ((rc = retry_save(c->st, peer, &r)) || (rc = msglog_mark_seen(c->st, sid, 0)) ||
      (held_rec && (rc = store_del(c->st, held_rec))) || (rc = account_save(c->st, c->acct)) ||
      (rc = store_commit(c->st)))
    goto fail;
  if (ask) {
    c->retries_run++;
    c->flush_wanted = 1;
  }
  return 0;
fail:
  store_rollback(c->st);
  return rc;
}

int outbox_retry(struct sc_client *c, const char *peer, const struct content *ct) {
  struct ob *o = malloc(sizeof *o);
  struct msg *m = calloc(1, sizeof *m);
  struct retry_rec r;
  uint64_t now = sc__now_s(), n = 0;
  size_t i;
  int rc;
  if (!o || !m) {
    rc = STORE_E_IO;
    goto out;
  }
  if ((rc = retry_load(c->st, peer, &r)) < 0) goto out;
  if (in_window(r.last_acted, now)) {
    rc = 0; /* one request acted on per window: a flood resends nothing more */
    goto out;
  }
  r.last_acted = now;
  if ((rc = ob_load(c->st, o)) != 0) goto out;
  for (i = 0; i < o->n && n < RETRY_MAX_RESEND; i++) {
    if ((rc = msglog_get(c->st, o->e[i].seq, m)) != 0) goto out;
    if (strcmp(m->peer, peer) == 0 && m->reason == SC_STATE_SENT && m->server_id >= ct->retry_server_id) {
      unsigned times = (o->e[i].flags & OB_RESENT_MASK) >> OB_RESENT_SHIFT;
      if (o->e[i].flags & OB_RESEND) {
        n++; /* marked already, not sent yet */
      } else if (times < RETRY_MAX_RESENDS_PER_TEXT) {
        /* Each text is resent a bounded number of times in its life: a
         * contact that never sends receipts cannot make us resend it forever. */
        o->e[i].flags = (uint8_t)((o->e[i].flags & ~OB_RESENT_MASK) | OB_RESEND | ((times + 1) << OB_RESENT_SHIFT));
        n++;
      }
    }
    msg_clear(m);
  }
  if ((rc = ob_save(c->st, o)) || (rc = retry_save(c->st, peer, &r)) ||
      (rc = log_ev(c, SC_EV_RESENT, SC_R_NONE, peer, n, ct->retry_server_id)))
    goto out;
  c->flush_wanted = 1;
out:
  if (m) msg_clear(m);
  free(m);
  free(o);
  return rc;
}

/* ---- gaps ------------------------------------------------------------------------- */

int heal_gap(struct sc_client *c, const char *peer, int type, size_t before, size_t after) {
  char rn[NAME_LEN];
  uint8_t *v, b[4];
  uint32_t open = 0;
  size_t n;
  int rc;
  if (after == before) return 0;
  snprintf(rn, sizeof rn, "gap/%s", peer);
  if ((rc = store_get(c->st, rn, &v, &n)) < 0) return rc;
  if (rc == 1) {
    if (n == 4) open = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
    store_free_value(v, n);
  }
  if (after > before) {
    /* Message keys were skipped: messages before this one never came. */
    uint64_t k = after - before;
    open = open + k > 0xffff ? 0xffff : open + (uint32_t)k;
    if ((rc = log_ev(c, SC_EV_GAP, SC_R_NONE, peer, k, 0))) return rc;
  } else {
    /* A stored skipped key was used: a missing one arrived late. A new
     * session (a PreKey message) drops no key of the old one. */
    if (type != SOTTO_MSG_SIGNAL || open == 0) return 0;
    open--;
    if ((rc = log_ev(c, SC_EV_GAP_FILLED, SC_R_NONE, peer, 1, 0))) return rc;
  }
  if (open == 0) return store_del(c->st, rn);
  b[0] = (uint8_t)(open >> 24);
  b[1] = (uint8_t)(open >> 16);
  b[2] = (uint8_t)(open >> 8);
  b[3] = (uint8_t)open;
  return store_put(c->st, rn, b, 4);
}

/* ---- sending what waits ------------------------------------------------------------ */

/* A failure that may pass and concerns every send (the link, the server's
 * limits on us, the local store): the flush stops, the rest waits. */
static int conn_failure(int rc);
int outbox_conn_failure(int rc) { return conn_failure(rc); }
static int conn_failure(int rc) {
  return rc == SC_ERR_UNREACHABLE || rc == SC_ERR_TIMEOUT || rc == SC_ERR_CONNECTION_LOST ||
         rc == SC_ERR_TLS || rc == SC_ERR_SHUTDOWN || rc == SC_ERR_SERVER_BUSY || rc == SC_ERR_DISPLACED ||
         rc == SC_ERR_NOT_CONNECTED || rc == SC_ERR_RATE_LIMITED || rc == SC_ERR_BUSY || rc == SC_ERR_STORE ||
         rc == SC_ERR_NOMEM || rc == SC_ERR_PROTOCOL;
}

/* A failure that may pass and concerns one recipient (their queue is full,
 * another sotto changed the session meanwhile, the server serves a device
 * list of theirs that does not verify or is older than one seen, a device
 * key that is not the listed one, a device set it refused twice): that item
 * waits, the flush goes on with the others. */
static int peer_failure(int rc) {
  return rc == SC_ERR_QUEUE_FULL || rc == SC_ERR_CONFLICT || rc == SC_ERR_DEVLIST_INVALID ||
         rc == SC_ERR_DEVLIST_ROLLBACK || rc == SC_ERR_DEVICE_KEY || rc == SC_ERR_DEVICE_MISMATCH ||
         rc == SC_ERR_KT_PENDING;
}

static int commit_state(struct sc_client *c, uint64_t seq, int state, int reason, const char *detail,
                        uint64_t sid, uint64_t sts) {
  int rc;
  if ((rc = sc__begin(c)) || (rc = set_state(c, seq, state, reason, detail, sid, sts)) < 0 ||
      (rc = ob_drop(c->st, seq)) != 0 || (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    return rc < 0 ? rc : STORE_E_IO;
  }
  return 0;
}

static int flush_texts(struct sc_client *c) {
  struct ob *o = malloc(sizeof *o);
  struct msg *m = calloc(1, sizeof *m);
  uint64_t now = sc__now_s();
  size_t i;
  int rc;
  if (!o || !m) {
    free(o);
    free(m);
    return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  }
  if ((rc = ob_load(c->st, o)) != 0) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  for (i = 0; i < o->n; i++) {
    struct content ct;
    int was_queued = o->e[i].flags & OB_QUEUED;
    /* Only a text to give up or to send is loaded. */
    if (o->e[i].ts / 1000 + OUTBOX_MAX_AGE_S >= now && !(o->e[i].flags & (OB_QUEUED | OB_RESEND))) continue;
    if ((rc = msglog_get(c->st, o->e[i].seq, m)) != 0) {
      rc = sc__store_error(c, rc);
      goto out;
    }
    if (o->e[i].ts / 1000 + OUTBOX_MAX_AGE_S < now) {
      if ((rc = commit_state(c, m->seq, SC_STATE_FAILED, SC_R_TOO_OLD, NULL, 0, 0))) {
        rc = sc__store_error(c, rc);
        goto out;
      }
    } else if (o->e[i].flags & (OB_QUEUED | OB_RESEND)) {
      memset(&ct, 0, sizeof ct);
      ct.kind = CONTENT_TEXT;
      ct.ts = m->ts; /* the same timestamp: receipts and the recipient's dedup match it */
      ct.text = (const uint8_t *)m->text;
      ct.text_len = m->text_len;
      convo_resend_content(&ct, m); /* a reply or a disappearing text keeps its kind */
      /* A queued text goes as the user's send would (a key change fails it,
       * said); a resend goes only where the user's sends already go. */
      c->flags = was_queued ? 0 : DELIVER_CONTROL;
      rc = deliver_pairwise(c, &c->k, m->peer, &ct);
      c->flags = 0;
      if (rc == SC_ERR_RATE_LIMITED && !was_queued) {
        /* A resend the server's send rate refused: only this resend is given
         * up (the text stays sent, waiting for its receipt); the flush goes on. */
        struct ob *cur = malloc(sizeof *cur);
        long j;
        if (!cur) {
          rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
          goto out;
        }
        if ((rc = sc__begin(c)) == 0 && (rc = ob_load(c->st, cur)) == 0) {
          if ((j = ob_find(cur, m->seq)) >= 0) cur->e[j].flags &= (uint8_t)~OB_RESEND;
          if ((rc = ob_save(c->st, cur)) == 0) rc = store_commit(c->st);
        }
        if (rc) store_rollback(c->st);
        free(cur);
        if (rc) {
          rc = sc__store_error(c, rc);
          goto out;
        }
        msg_clear(m);
        continue;
      }
      if (rc && conn_failure(rc)) goto out;
      if (rc && peer_failure(rc)) {
        /* Waits for the next flush. */
      } else if (rc && !was_queued &&
                 (rc == SC_ERR_KEY_CHANGED_UNCONFIRMED || rc == SC_ERR_IDENTITY_CHANGED)) {
        /* Waits, marked, until the user confirms the key (send --yes, verify). */
      } else if (rc) {
        char why[sizeof c->errdetail];
        snprintf(why, sizeof why, "%s", c->errdetail);
        if ((rc = commit_state(c, m->seq, SC_STATE_FAILED, SC_R_NONE, why, 0, 0))) {
          rc = sc__store_error(c, rc);
          goto out;
        }
      } else {
        struct ob *cur = malloc(sizeof *cur);
        long j;
        if (!cur) {
          rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
          goto out;
        }
        if ((rc = sc__begin(c)) == 0 && (rc = ob_load(c->st, cur)) == 0) {
          if ((j = ob_find(cur, m->seq)) >= 0) cur->e[j].flags &= (uint8_t)OB_RESENT_MASK; /* keeps the count */
          if ((rc = ob_save(c->st, cur)) == 0 &&
              (rc = set_state(c, m->seq, SC_STATE_SENT, SC_R_NONE, NULL, c->sent_id, c->sent_ts)) >= 0)
            rc = store_commit(c->st);
        }
        if (rc) store_rollback(c->st);
        free(cur);
        if (rc) {
          rc = sc__store_error(c, rc);
          goto out;
        }
      }
    }
    msg_clear(m);
  }
  rc = 0;
out:
  msg_clear(m);
  free(m);
  free(o);
  return rc;
}

/* The retry request waiting for peer, if any. 0, or an SC_ERR_* (a
 * connection failure: it waits). */
static int flush_retry(struct sc_client *c, const char *peer) {
  struct retry_rec r;
  struct content ct;
  int rc;
  if ((rc = retry_load(c->st, peer, &r)) < 0) return sc__store_error(c, rc);
  if (!r.pending) return 0;
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_RETRY;
  ct.ts = sc_now_ms();
  ct.retry_server_id = r.sid;
  ct.retry_server_ts = r.sts;
  c->flags = DELIVER_CONTROL;
  rc = deliver_pairwise(c, &c->k, peer, &ct);
  c->flags = 0;
  if (rc && conn_failure(rc)) return rc;
  if (rc && peer_failure(rc)) return 1; /* waits */
  /* Sent, or refused for good (a key the user has not confirmed): a new
   * failure asks again after the window. */
  if ((rc = sc__begin(c)) || (rc = retry_load(c->st, peer, &r)) < 0) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  r.pending = 0;
  if ((rc = retry_save(c->st, peer, &r)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  return 0;
}

/* The receipts owed to peer: one RECEIPT per type with up to
 * CONTENT_MAX_RECEIPTS timestamps each. 0, or an SC_ERR_* (a connection
 * failure: they wait). */
static int flush_receipts(struct sc_client *c, const char *peer, struct rcpt *p, struct content *ct) {
  size_t j, k, sent[2] = {0, 0};
  int rc = 0, type;
  if ((rc = rcpt_load(c->st, peer, p)) != 0) return sc__store_error(c, rc);
  for (type = RECEIPT_DELIVERED; type <= RECEIPT_READ && !rc; type++) {
    size_t done = 0;
    while (done < p->n && !rc) {
      memset(ct, 0, sizeof *ct);
      ct->kind = CONTENT_RECEIPT;
      ct->ts = sc_now_ms();
      ct->receipt_type = (uint8_t)type;
      for (j = done; j < p->n && ct->n_receipts < CONTENT_MAX_RECEIPTS; j++)
        if (p->type[j] == type) ct->receipts[ct->n_receipts++] = p->ts[j];
      done = j;
      if (ct->n_receipts == 0) break;
      c->flags = DELIVER_CONTROL; /* never to a key the user has not confirmed */
      rc = deliver_pairwise(c, &c->k, peer, ct);
      c->flags = 0;
      if (rc && peer_failure(rc)) return 1; /* waits, all of them */
      if (rc && !conn_failure(rc)) rc = 0;  /* refused for good: dropped */
      if (!rc) sent[type - 1] = done;
    }
  }
  if (rc) return rc;
  /* What was sent goes; a receipt owed meanwhile (another process) or a
   * "read" that replaced a "delivered" since stays for the next flush. */
  {
    struct rcpt *now = malloc(sizeof *now);
    if (!now) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
    if ((rc = sc__begin(c)) == 0 && (rc = rcpt_load(c->st, peer, now)) == 0) {
      size_t w = 0;
      for (k = 0; k < now->n; k++) {
        int was = 0;
        for (j = 0; j < p->n && !was; j++) was = p->ts[j] == now->ts[k] && p->type[j] == now->type[k];
        if (!was) {
          now->ts[w] = now->ts[k];
          now->type[w++] = now->type[k];
        }
      }
      now->n = w;
      rc = rcpt_save(c->st, peer, now);
      if (!rc) rc = store_commit(c->st);
    }
    if (rc) store_rollback(c->st);
    free(now);
  }
  (void)sent;
  return rc ? sc__store_error(c, rc) : 0;
}

/* Retry requests and receipts, peer by peer (the "owed" list). */
static int flush_owed(struct sc_client *c) {
  struct owed *o = malloc(sizeof *o), *cur = malloc(sizeof *cur);
  struct rcpt *p = malloc(sizeof *p);
  struct content *ct = calloc(1, sizeof *ct);
  uint8_t served_ok[OWED_MAX];
  size_t i, j, done = 0;
  int rc = 0;
  if (!o || !cur || !p || !ct) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = owed_load(c->st, o)) != 0) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  for (i = 0; i < o->n && !rc; i++) {
    served_ok[i] = 0;
    if ((rc = flush_retry(c, o->v[i])) < 0 || (rc == 0 && (rc = flush_receipts(c, o->v[i], p, ct)) < 0))
      break;
    served_ok[i] = rc == 0;
    done = i + 1;
    rc = 0;
  }
  /* The peers served leave the list, unless something was owed to them
   * meanwhile (by another process on this home). */
  if (done && sc__begin(c) == 0) {
    int wrc = owed_load(c->st, cur);
    if (wrc == 0) {
      size_t w = 0, k;
      for (k = 0; k < cur->n && !wrc; k++) {
        struct retry_rec r;
        int served = 0;
        for (j = 0; j < done && !served; j++) served = served_ok[j] && strcmp(cur->v[k], o->v[j]) == 0;
        if (served && (wrc = rcpt_load(c->st, cur->v[k], p)) == 0 &&
            (wrc = retry_load(c->st, cur->v[k], &r)) == 0)
          served = p->n == 0 && !r.pending;
        if (!served) memcpy(cur->v[w++], cur->v[k], sizeof cur->v[0]);
      }
      cur->n = w;
      wrc = owed_save(c->st, cur);
    }
    if (wrc || store_commit(c->st)) store_rollback(c->st);
  }
out:
  free(o);
  free(cur);
  free(p);
  free(ct);
  return rc;
}

int outbox_flush(struct sc_client *c) {
  int rc;
  if (c->flushing || !c->k.net) return 0;
  c->flushing = 1;
  c->flush_wanted = 0;
  if ((rc = flush_texts(c)) == 0 && (rc = convo_flush(c)) == 0) rc = flush_owed(c); /* convo.c: queued changes */
  c->flushing = 0;
  return rc;
}

int sc_outbox_flush(struct sc_client *c) {
  int rc, opened;
  if ((rc = sc__acquire(c, &opened))) return rc;
  rc = outbox_flush(c);
  sc__release(c, opened);
  return rc;
}

int outbox_expired(struct sc_client *c, const char *peer, uint64_t server_id) {
  struct ob *o;
  struct msg *m;
  size_t i;
  int rc = 0, found = 0;
  if (!server_id) return 1;
  if (!(o = malloc(sizeof *o)) || !(m = calloc(1, sizeof *m))) {
    free(o);
    return STORE_E_IO;
  }
  if ((rc = ob_load(c->st, o))) goto out;
  for (i = 0; i < o->n && !found; i++) {
    if ((rc = msglog_get(c->st, o->e[i].seq, m))) goto out;
    if (m->server_id == server_id && (!peer || strcmp(m->peer, peer) == 0)) {
      found = 1;
      if ((rc = set_state(c, m->seq, SC_STATE_EXPIRED, SC_R_NONE, NULL, 0, 0)) < 0 || (rc = ob_drop(c->st, m->seq)))
        goto out;
    }
    msg_clear(m);
  }
  rc = found ? 0 : 1;
out:
  msg_clear(m);
  free(o);
  free(m);
  return rc;
}

int sc_outbox_expired(struct sc_client *c, uint64_t server_id) {
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if ((rc = sc__begin(c))) return sc__store_error(c, rc);
  if ((rc = outbox_expired(c, NULL, server_id)) < 0 || (rc == 0 && (rc = store_commit(c->st)) != 0)) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  if (rc == 1) {
    store_rollback(c->st);
    return sc__fail(c, SC_ERR_NO_SUCH_MESSAGE, "no message of ours with server id %llu waits for a receipt",
                    (unsigned long long)server_id);
  }
  return 0;
}

int sc_session_reset(struct sc_client *c, const char *user, unsigned flags) {
  struct content ct;
  char rn[NAME_LEN];
  int rc, opened;
  if ((rc = sc__need_open(c))) return rc;
  if (!sc_username_ok(user)) return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", user ? user : "");
  if (c->acct->username[0] && strcmp(user, c->acct->username) == 0)
    return sc__fail(c, SC_ERR_SELF, "you have no session with yourself");
  if ((rc = sc__acquire(c, &opened))) return rc;
  snprintf(rn, sizeof rn, "rekey/%s", user);
  if ((rc = sc__begin(c)) || (rc = store_put(c->st, rn, (const uint8_t *)"", 0)) ||
      (rc = log_ev(c, SC_EV_SESSION_RESET, SC_R_BY_US, user, 0, 0)) || (rc = account_save(c->st, c->acct)) ||
      (rc = store_commit(c->st))) {
    store_rollback(c->st);
    sc__release(c, opened);
    return sc__store_error(c, rc);
  }
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_SESSION_RESET;
  ct.ts = sc_now_ms();
  c->flags = flags;
  rc = deliver_pairwise(c, &c->k, user, &ct);
  c->flags = 0;
  sc__release(c, opened);
  if (rc) return rc;
  return inbox_flush_unshown(c);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* srv_handlers.c: the request handlers of sotto-server.
 *
 * One table entry per request type says in which connection state the
 * request is allowed and what it does at each step:
 *   parse   once, when the frame arrives, from the op's own copy of the
 *           payload into op->req (every later step reads op->req);
 *   admit   on the I/O thread, before it is queued: rate limits;
 *   exec    on the store thread, inside the batch's transaction;
 *   answer  on the I/O thread after the commit: the OK payload;
 *   fanout  after the commit: pushes to other connections.
 * Adding a request type is one parse function in proto.c and one entry
 * here. HELLO and PING never touch the store and are answered in place. */
#define _GNU_SOURCE
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_internal.h"

/* The store's limits hold what the wire allows. */
_Static_assert(SOTTO_STORE_USER_MAX >= SOTTO_SRV_USER_MAX, "usernames fit the store");
_Static_assert(SOTTO_STORE_MAX_IDENTITY >= SOTTO_SRV_MAX_IDENTITY, "identity keys fit the store");
_Static_assert(SOTTO_STORE_MAX_KEY_BLOB >= SOTTO_SRV_MAX_KEY_BLOB, "key blobs fit the store");
_Static_assert(SOTTO_STORE_MAX_KEYS_PUT >= SOTTO_SRV_MAX_KEYS_PER_UPLOAD, "an upload fits one keys_put");
_Static_assert(SOTTO_STORE_MAX_DEVLIST >= SOTTO_SRV_MAX_DEVLIST && SOTTO_SRV_MAX_DEVLIST >= SOTTO_DEVLIST_MAX_LEN,
               "a signed device list fits the wire and the store");
_Static_assert(SOTTO_STORE_MAX_DEVLIST_IDS >= SOTTO_DEVLIST_MAX_DEVICES &&
                   SOTTO_DEVLIST_MAX_DEVICES >= SOTTO_SRV_MAX_DEVICES,
               "a list names every device an account can have");

enum {
  H_UNAUTH = 1,     /* allowed before AUTH (REGISTER, AUTH) */
  H_AUTHED = 2,     /* allowed after AUTH */
  H_STORES = 4,     /* stores more: refused while the disk is full */
  H_DEVICE = 8,     /* acts for the calling device: refused once it was removed */
  H_TOO_LARGE = 16, /* a parse result of SOTTO_ERR_TOO_LARGE is answered, not closed */
  H_ONE_WRITE = 32, /* exec writes with at most one statement (no savepoint needed: store.h, txn_alive) */
};

struct srv_handler {
  uint8_t type;
  uint8_t flags;
  int (*parse)(const struct srv *s, struct op *o);
  int (*admit)(struct srv *s, struct conn *c, struct op *o);
  int (*exec)(struct srv *s, struct op *o);
  void (*answer)(struct srv *s, struct op *o, struct sotto__wr *w);
  void (*fanout)(struct srv *s, struct op *o, struct conn *r);
};

static void hash_secret(uint8_t out[32], const uint8_t secret[SOTTO_SRV_SECRET_LEN]) {
  crypto_hash_sha256(out, secret, SOTTO_SRV_SECRET_LEN);
}

static void cstr(char *dst, const struct sotto_srv_str *s) {
  memcpy(dst, s->p, s->len);
  dst[s->len] = 0;
}

/* ---- parse ---------------------------------------------------------------------- */

static int parse_none(const struct srv *s, struct op *o) {
  (void)s;
  return o->len ? SOTTO_ERR_MALFORMED : 0;
}
static int parse_register(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_register(o->data, o->len, &o->req.reg);
}
static int parse_auth(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_auth(o->data, o->len, &o->req.auth);
}
/* The wire's key table becomes the store's (pointers into o->data). */
static void key_of(struct sotto_store_key *k, const struct sotto_srv_blob_id *b) {
  k->id = b->id;
  k->p = b->p;
  k->len = b->len;
}

static int parse_keys(const struct srv *s, struct op *o) {
  struct sotto_srv_keys m;
  struct sotto_store_keys *k;
  size_t i;
  int rc;
  (void)s;
  if ((rc = sotto__srv_parse_keys(o->data, o->len, &m)) != 0) return rc;
  if ((k = o->req.keys = malloc(sizeof *o->req.keys)) == NULL) return SOTTO_ERR_NOMEM;
  k->has_signed = (m.flags & SOTTO_SRV_KEYS_SIGNED) != 0;
  k->has_last_resort = (m.flags & SOTTO_SRV_KEYS_LAST_RESORT) != 0;
  key_of(&k->signed_prekey, &m.signed_prekey);
  key_of(&k->last_resort, &m.last_resort);
  k->n_ec = m.n_ec;
  k->n_kem = m.n_kem;
  for (i = 0; i < m.n_ec; i++) key_of(&k->ec[i], &m.ec[i]);
  for (i = 0; i < m.n_kem; i++) key_of(&k->kem[i], &m.kem[i]);
  return 0;
}
static int parse_bundle(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_bundle_req(o->data, o->len, &o->req.target);
}
static int parse_devices(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_devices_req(o->data, o->len, &o->req.target);
}
/* DEVICES: the last-seen days go only to the account's own devices (and
 * only to a client that said in HELLO that it reads them): who else would
 * learn when bob's laptop was last online. Decided here, on the loop
 * thread, where the connection is ours to read. */
static int parse_devices_only(const struct srv *s, struct op *o) {
  int rc = parse_devices(s, o);
  const struct sotto_srv_str *t = &o->req.target.username;
  if (rc == 0 && (o->c->features & SOTTO_SRV_FEAT_LAST_SEEN) && t->len == strlen(o->c->user) &&
      memcmp(t->p, o->c->user, t->len) == 0)
    o->with_days = 1;
  return rc;
}
static int parse_send(const struct srv *s, struct op *o) {
  return sotto__srv_parse_send(o->data, o->len, s->cfg->max_message, &o->req.send);
}
static int parse_send_multi(const struct srv *s, struct op *o) {
  if ((o->req.multi = malloc(sizeof *o->req.multi)) == NULL) return SOTTO_ERR_NOMEM;
  return sotto__srv_parse_send_multi(o->data, o->len, s->cfg->max_message, o->req.multi);
}
static int parse_ack(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_ack(o->data, o->len, &o->req.ack);
}
static int parse_epoch(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_epoch(o->data, o->len, &o->req.epoch);
}
static int parse_remove(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_device_remove(o->data, o->len, &o->req.device_id);
}

static int parse_device_identity(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_device_identity(o->data, o->len, &o->req.ik);
}

static int parse_set_recovery(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_set_recovery(o->data, o->len, &o->req.code);
}
static int parse_kt_none(const struct srv *s, struct op *o) {
  (void)s;
  return o->len ? SOTTO_ERR_MALFORMED : 0;
}
static int parse_kt_search(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_kt_search_req(o->data, o->len, &o->req.kt_user);
}
static int parse_kt_consistency(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_kt_consistency_req(o->data, o->len, &o->req.kt_size);
}
static int parse_kt_updates(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_kt_updates_req(o->data, o->len, &o->req.kt_rng);
}
static int parse_kt_versions(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_kt_versions_req(o->data, o->len, &o->req.kt_ver);
}
static int parse_kt_cosign(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_kt_cosign_req(o->data, o->len, &o->req.kt_cosign);
}
static int parse_recover(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_recover(o->data, o->len, &o->req.recover);
}
/* DEVLIST_PUT: the frame's shape here (a bad one closes the connection);
 * the list's signatures too, on the I/O thread and once, so that exec only
 * compares: a list that does not verify is answered ERR(32), not closed. */
static int parse_devlist_put(const struct srv *s, struct op *o) {
  struct srv_devlist *d;
  int rc;
  (void)s;
  if ((d = o->req.devlist = calloc(1, sizeof *d)) == NULL) return SOTTO_ERR_NOMEM;
  if ((rc = sotto__srv_parse_devlist(o->data, o->len, &d->raw, &d->raw_len)) != 0) return rc;
  d->rc = sotto_devlist_parse(&d->l, d->raw, d->raw_len);
  return 0;
}

/* ---- admit ---------------------------------------------------------------------- */

static int admit_register(struct srv *s, struct conn *c, struct op *o) {
  (void)o;
  return sotto__srv_limit_register(s, c);
}
static int admit_auth(struct srv *s, struct conn *c, struct op *o) {
  int code = sotto__srv_limit_auth(s, c, &o->req.auth);
  if (code) return code;
  c->state = S_AUTHING;
  return 0;
}
static int admit_bundle(struct srv *s, struct conn *c, struct op *o) {
  int no_otk = 0, code = sotto__srv_limit_bundle(s, c, &o->req.target, &no_otk);
  o->no_otk = (uint8_t)no_otk;
  return code;
}
static int admit_send(struct srv *s, struct conn *c, struct op *o) {
  (void)o;
  return sotto__srv_limit_send(s, c);
}
static int admit_send_multi(struct srv *s, struct conn *c, struct op *o) {
  if (c->version < 2) return SOTTO_SRV_E_OLD_PROTOCOL;
  o->with_list = (c->features & SOTTO_SRV_FEAT_MISMATCH_LIST) != 0;
  return admit_send(s, c, o);
}

/* KT_*: public (heads and proofs), before or after AUTH; a budget per
 * address; refused at once on a server without --kt. */
static int admit_kt(struct srv *s, struct conn *c, struct op *o) {
  (void)o;
  if (!s->kt) return SOTTO_SRV_E_NOT_FOUND;
  return sotto__srv_limit_kt(s, c);
}

static int admit_device_change(struct srv *s, struct conn *c, struct op *o) {
  (void)o;
  return sotto__srv_limit_device_change(s, c);
}

/* Multi-device requests need a client of protocol version 2. A list
 * upload costs its signature checks: it spends the device-change budget. */
static int admit_devlist_put(struct srv *s, struct conn *c, struct op *o) {
  if (c->version < 2) return SOTTO_SRV_E_OLD_PROTOCOL;
  return admit_device_change(s, c, o);
}
static int admit_devlist_get(struct srv *s, struct conn *c, struct op *o) {
  (void)s;
  (void)o;
  return c->version < 2 ? SOTTO_SRV_E_OLD_PROTOCOL : 0;
}

/* ---- exec (store thread, inside the transaction) ------------------------------------ */

/* It reads the configuration, the op and the identity of the op's
 * connection (set at AUTH, before any op that uses it existed), and writes
 * only the op. */

static int exec_register(struct srv *s, struct op *o) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  const struct sotto_srv_register *m = &o->req.reg;
  char user[SOTTO_SRV_USER_MAX + 1], canon[SOTTO_SRV_USER_MAX + 1];
  uint8_t h[32];
  int64_t acc;
  int rc;
  if (!sotto__srv_username_new_ok(m->username.p, m->username.len)) {
    o->code = SOTTO_SRV_E_BAD_USERNAME;
    return 0;
  }
  cstr(user, &m->username);
  sotto__srv_username_canon(m->username.p, m->username.len, canon);
  /* A name whose account was deleted is held for the quarantine, so that
   * its contacts learn it is gone before anyone else can take it. */
  if ((rc = ops->name_held(st, canon, sotto__srv_now_ms())) < 0) return rc;
  if (rc == 1) {
    o->code = SOTTO_SRV_E_QUARANTINED;
    return 0;
  }
  /* ... and while envelopes a deleted account of this name sent still wait
   * in others' queues (kept: their recipients still get them). They name
   * their sender by username: a new owner would get their expiry notices
   * (whom the old owner wrote to, and when) and have their bytes counted as
   * its own (quota, requisition report). Free once they are delivered or
   * expired. (A name in use is TAKEN, below.) */
  {
    int64_t queued = 0;
    struct sotto_store_account a;
    if ((rc = ops->sender_bytes(st, user, &queued)) != 0) return rc;
    if (queued > 0 && (rc = ops->account_get(st, user, &a)) < 0) return rc;
    if (queued > 0 && rc == 1) {
      o->code = SOTTO_SRV_E_QUARANTINED;
      return 0;
    }
  }
  /* --kt with kt-pending-max: refused when that many names wait for the log */
  if ((rc = sotto__srv_kt_register(s, user, canon, 0, &o->code)) != 0 || o->code) return rc;
  rc = ops->account_create(st, user, canon, m->identity.p, m->identity.len, sotto__srv_today(), &acc);
  if (rc == SOTTO_ERR_DUPLICATE) {
    o->code = SOTTO_SRV_E_TAKEN;
    return 0;
  }
  if (rc) return rc;
  randombytes_buf(o->secret, sizeof o->secret);
  hash_secret(h, o->secret);
  rc = ops->device_add(st, acc, h, sotto__srv_today(), (uint32_t)s->cfg->max_devices, &o->dev);
  if (rc) return rc < 0 && rc != SOTTO_ERR_TOO_LARGE ? rc : SOTTO_ERR_STORE;
  o->device_id = o->dev.device_id;
  return sotto__srv_kt_register(s, user, canon, 1, &o->code); /* the mark: logged after the commit */
}

static int exec_add_device(struct srv *s, struct op *o) {
  uint8_t h[32];
  int rc;
  randombytes_buf(o->secret, sizeof o->secret);
  hash_secret(h, o->secret);
  rc = s->store.ops->device_add(s->store.impl, o->c->account_id, h, sotto__srv_today(),
                                (uint32_t)s->cfg->max_devices, &o->dev);
  if (rc == SOTTO_ERR_TOO_LARGE) {
    o->code = SOTTO_SRV_E_TOO_MANY_DEVICES;
    return 0;
  }
  if (rc) return rc;
  o->device_id = o->dev.device_id;
  return 0;
}

static int exec_auth(struct srv *s, struct op *o) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  const struct sotto_srv_auth *m = &o->req.auth;
  char user[SOTTO_SRV_USER_MAX + 1];
  uint8_t h[32];
  int rc;
  cstr(user, &m->username);
  rc = ops->device_lookup(st, user, m->device_id, &o->dev);
  if (rc < 0) return rc;
  /* One hash and a constant-time compare; an unknown device costs the
   * same hash so that probing names is not cheaper than guessing. */
  hash_secret(h, m->secret);
  if (rc == 1) {
    o->code = SOTTO_SRV_E_AUTH;
    sodium_memzero(h, sizeof h);
    return 0;
  }
  if (sodium_memcmp(h, o->dev.secret_hash, 32) == 0) {
    /* The current secret: a previous one kept by ROTATE_SECRET goes now. */
    if (o->dev.has_prev && (rc = ops->device_secret_confirm(st, o->dev.devkey)) != 0) {
      sodium_memzero(h, sizeof h);
      return rc;
    }
  } else if (!o->dev.has_prev || sodium_memcmp(h, o->dev.prev_hash, 32) != 0) {
    o->code = SOTTO_SRV_E_AUTH;
    sodium_memzero(h, sizeof h);
    return 0;
  } else {
    /* The secret ROTATE_SECRET replaced: its answer may never have arrived
     * (an in-doubt commit, a lost connection); valid until the new one is
     * used. The connection remembers which one it proved. */
    memcpy(o->dev.secret_hash, o->dev.prev_hash, 32);
  }
  sodium_memzero(h, sizeof h);
  sodium_memzero(o->dev.prev_hash, sizeof o->dev.prev_hash);
  if (o->dev.last_seen_day != sotto__srv_today() &&
      (rc = ops->device_seen(st, o->dev.devkey, sotto__srv_today())) != 0)
    return rc;
  return ops->keys_count(st, o->dev.devkey, &o->ec, &o->kem);
}

static int exec_keys(struct srv *s, struct op *o) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  const struct sotto_store_keys *k = o->req.keys;
  int64_t devkey = o->c->devkey;
  int rc = ops->keys_count(st, devkey, &o->ec, &o->kem);
  if (rc) return rc;
  /* Stored one-time keys are capped per device, so an authenticated client
   * cannot grow the database without bound. */
  if (o->ec + (int64_t)k->n_ec > SOTTO_SRV_MAX_STORED_KEYS ||
      o->kem + (int64_t)k->n_kem > SOTTO_SRV_MAX_STORED_KEYS) {
    o->code = SOTTO_SRV_E_TOO_LARGE;
    return 0;
  }
  if ((rc = ops->keys_put(st, devkey, k)) != 0) return rc;
  return ops->keys_count(st, devkey, &o->ec, &o->kem);
}

static int exec_bundle(struct srv *s, struct op *o) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  char user[SOTTO_SRV_USER_MAX + 1];
  struct sotto_store_device d;
  int rc;
  cstr(user, &o->req.target.username);
  if ((rc = sotto__srv_kt_pending(s, &s->store, user)) != 0) { /* not in the log yet (srv_kt.c) */
    if (rc == 1) o->code = SOTTO_SRV_E_KT_PENDING;
    return rc == 1 ? 0 : rc;
  }
  if ((rc = ops->device_lookup(st, user, o->req.target.device_id, &d)) < 0) return rc;
  if (rc == 1) {
    o->code = SOTTO_SRV_E_NOT_FOUND;
    return 0;
  }
  if ((o->bundle = calloc(1, sizeof *o->bundle)) == NULL) return SOTTO_ERR_NOMEM;
  if ((rc = ops->bundle_take(st, d.devkey, !o->no_otk, o->bundle)) < 0) return rc;
  if (rc == 1) {
    o->code = SOTTO_SRV_E_NO_KEYS;
    return 0;
  }
  o->target_devkey = d.devkey;
  return ops->keys_count(st, d.devkey, &o->ec, &o->kem);
}

/* DEVICES, for the batch (exec_devices) and the read pool (pool_devices)
 * alike, so both answer the same: the ids, and with o->with_days each
 * device's last-seen day (days since 1970-01-01 UTC, written at most once a
 * day per device by AUTH). */
int sotto__srv_target_own(const struct conn *c, const struct sotto_srv_str *target) {
  char a[SOTTO_SRV_USER_MAX + 1], b[SOTTO_SRV_USER_MAX + 1];
  size_t ul = strlen(c->user);
  if (!c->user[0] || target->len > SOTTO_SRV_USER_MAX || ul > SOTTO_SRV_USER_MAX) return 0;
  sotto__srv_username_canon((const uint8_t *)c->user, ul, a);
  sotto__srv_username_canon(target->p, target->len, b);
  return strcmp(a, b) == 0;
}

/* DEVICES (store thread or a read pool worker): the account's device ids.
 * Another account's while its name is not in the log yet: ERR 44 (checked
 * after the read: a mark goes only once the name is logged). */
int sotto__srv_devices_read(struct srv *s, struct sotto_store *st, struct op *o) {
  char user[SOTTO_SRV_USER_MAX + 1];
  int64_t days[SOTTO_SRV_MAX_DEVICES];
  size_t i;
  int rc;
  cstr(user, &o->req.target.username);
  if ((rc = st->ops->devices_list(st->impl, user, o->ids, o->with_days ? days : NULL, SOTTO_SRV_MAX_DEVICES,
                                  &o->n_ids)) != 0)
    return rc;
  if (!o->own && (rc = sotto__srv_kt_pending(s, st, user)) != 0) {
    o->n_ids = 0;
    if (rc == 1) o->code = SOTTO_SRV_E_KT_PENDING;
    return rc == 1 ? 0 : rc;
  }
  if (o->n_ids == 0) o->code = SOTTO_SRV_E_NOT_FOUND;
  for (i = 0; o->with_days && i < o->n_ids; i++) o->days[i] = days[i] < 0 || days[i] > UINT32_MAX ? 0 : (uint32_t)days[i];
  return 0;
}

static int exec_devices(struct srv *s, struct op *o) {
  o->own = (uint8_t)sotto__srv_target_own(o->c, &o->req.target.username);
  return sotto__srv_devices_read(s, &s->store, o);
}

/* The quotas of one envelope of body_len bytes from c to device d (its
 * counters as the open transaction sees them), with `pending` bytes this
 * request already admitted to other devices: 0 with *code 0 (room), 0 with
 * *code the refusal, or a store error. */
static int send_quota(struct srv *s, struct conn *c, const struct sotto_store_device *d, size_t body_len,
                      int64_t pending, int *code) {
  const struct sotto_store_ops *ops = s->store.ops;
  const struct sotto_srv_config *g = s->cfg;
  void *st = s->store.impl;
  int64_t mine = 0, total = 0;
  int rc;
  *code = 0;
  /* Quotas, most specific first, so that the error is true for who gets
   * it: this sender's share of the recipient's queue (one account cannot
   * fill it), then the queue itself (count and bytes), then everything this
   * account has waiting (one account cannot fill the disk), then the
   * server's storage. The share is only counted when the queue holds enough
   * envelopes for it to matter. */
  if (d->queue_count >= g->max_queue_per_sender) {
    if ((rc = ops->sender_count(st, d->devkey, c->user, &mine)) != 0) return rc;
    if (mine >= g->max_queue_per_sender) {
      *code = SOTTO_SRV_E_QUEUE_SHARE;
      return 0;
    }
  }
  if (d->queue_count >= g->max_queue) {
    /* The server's own notices (sender "", srv_expire.c) take no room from
     * senders: a third party cannot fill a queue with them. */
    int64_t notes = 0;
    if ((rc = ops->sender_count(st, d->devkey, "", &notes)) != 0) return rc;
    if (d->queue_count - notes >= g->max_queue) {
      *code = SOTTO_SRV_E_QUEUE_FULL;
      return 0;
    }
  }
  if (d->queue_bytes + (int64_t)body_len > g->max_queue_bytes) {
    *code = SOTTO_SRV_E_QUEUE_FULL;
    return 0;
  }
  if ((rc = ops->sender_bytes(st, c->user, &mine)) != 0) return rc;
  if (mine + pending + (int64_t)body_len > g->max_sender_bytes) {
    *code = SOTTO_SRV_E_SENDER_QUOTA;
    return 0;
  }
  if ((rc = ops->total_bytes(st, &total)) != 0) return rc;
  if (total + pending + (int64_t)body_len > g->max_store_bytes) {
    *code = SOTTO_SRV_E_STORAGE_FULL;
    return 0;
  }
  return 0;
}

static int exec_send(struct srv *s, struct op *o) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  const struct sotto_srv_send *m = &o->req.send;
  struct conn *c = o->c;
  char user[SOTTO_SRV_USER_MAX + 1];
  struct sotto_store_device d;
  struct sotto_store_env e;
  int rc;
  cstr(user, &m->username);
  if ((rc = sotto__srv_kt_pending(s, &s->store, user)) != 0) { /* not in the log yet (srv_kt.c) */
    if (rc == 1) o->code = SOTTO_SRV_E_KT_PENDING;
    return rc == 1 ? 0 : rc;
  }
  if ((rc = ops->device_route(st, user, m->device_id, &d)) < 0) return rc;
  if (rc == 1) {
    o->code = SOTTO_SRV_E_NOT_FOUND;
    return 0;
  }
  /* An account with a signed device list receives only on the devices it
   * lists: a device row the account's devices did not sign gets nothing. */
  {
    uint32_t listed[SOTTO_DEVLIST_MAX_DEVICES];
    size_t n_listed = 0, i;
    if ((rc = ops->devlist_ids(st, user, listed, SOTTO_DEVLIST_MAX_DEVICES, &n_listed)) < 0) return rc;
    if (rc == 0) {
      for (i = 0; i < n_listed && listed[i] != m->device_id; i++) {
      }
      if (i == n_listed) {
        o->code = SOTTO_SRV_E_MISMATCHED_DEVICES;
        return 0;
      }
    }
  }
  if ((rc = send_quota(s, c, &d, m->body_len, 0, &o->code)) != 0 || o->code) return rc;
  e.sender = c->user;
  e.sender_device = c->device_id;
  e.device_id = m->device_id;
  e.type = m->type;
  e.timestamp_ms = sotto__srv_now_ms();
  e.body = m->body;
  e.body_len = m->body_len;
  e.id_out = &o->msg_id; /* a shared store writes it when it learns it (by COMMIT) */
  o->msg_id = 0;
  if ((rc = ops->msg_insert(st, d.devkey, &e)) != 0) return rc;
  if (e.id) o->msg_id = e.id;
  o->ts = e.timestamp_ms;
  o->target_devkey = d.devkey;
  return 0;
}

/* ERR(30) to a SEND_MULTI: for a client that set FEAT_MISMATCH_LIST the
 * answer carries the recipient's newest signed list, the same bytes as a
 * DEVLIST_GET answer (blob16 list), read in this transaction, so that a
 * stale sender catches up in one round trip. An account without a list
 * (its device rows are the set): the bare ERR(30). */
static int mismatch(struct srv *s, struct op *o, const char *user) {
  uint32_t ver = 0;
  size_t len = 0;
  int rc;
  o->code = SOTTO_SRV_E_MISMATCHED_DEVICES;
  if (!o->with_list) return 0;
  free(o->kt_out);
  o->kt_len = 0;
  if ((o->kt_out = malloc(SOTTO_SRV_MAX_DEVLIST + 2)) == NULL) return SOTTO_ERR_NOMEM;
  rc = s->store.ops->devlist_get(s->store.impl, user, &ver, o->kt_out + 2, SOTTO_SRV_MAX_DEVLIST, &len);
  if (rc < 0) return rc;
  if (rc == 1 || len == 0) {
    free(o->kt_out);
    o->kt_out = NULL;
    return 0;
  }
  o->kt_out[0] = (uint8_t)(len >> 8);
  o->kt_out[1] = (uint8_t)len;
  o->kt_len = len + 2;
  return 0;
}

/* SEND_MULTI: one envelope to every device of the recipient's newest signed
 * list (or, for an account without a list, every device row), all or none.
 * A set of device ids that is not exactly that set is refused with ERR(30)
 * before anything is stored; with FEAT_MISMATCH_LIST the ERR carries the
 * newest list (mismatch above), else the sender fetches it (DEVLIST_GET);
 * either way it verifies it and sends again. Every quota is checked for
 * every envelope (with the bytes of the ones before it) before the first is
 * stored. */
static int exec_send_multi(struct srv *s, struct op *o) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  const struct sotto_srv_send_multi *m = o->req.multi;
  struct conn *c = o->c;
  char user[SOTTO_SRV_USER_MAX + 1];
  struct sotto_store_device d[SOTTO_SRV_MAX_DEVICES];
  uint32_t want[SOTTO_SRV_MAX_DEVICES];
  size_t n_want = 0, i;
  int64_t pending = 0;
  int rc;
  o->msg_id = 0; /* a retried batch runs exec again */
  o->n_multi = 0;
  cstr(user, &m->username);
  if ((rc = sotto__srv_kt_pending(s, &s->store, user)) != 0) { /* not in the log yet (srv_kt.c) */
    if (rc == 1) o->code = SOTTO_SRV_E_KT_PENDING;
    return rc == 1 ? 0 : rc;
  }
  if ((rc = ops->devlist_ids(st, user, want, SOTTO_SRV_MAX_DEVICES, &n_want)) < 0) return rc;
  if (rc == 1 && (rc = ops->devices_list(st, user, want, NULL, SOTTO_SRV_MAX_DEVICES, &n_want)) != 0) return rc;
  if (n_want == 0) {
    o->code = SOTTO_SRV_E_NOT_FOUND;
    return 0;
  }
  /* both sets are in increasing order (the parser and the stores see to it) */
  if (n_want != m->n) return mismatch(s, o, user);
  for (i = 0; i < m->n; i++)
    if (want[i] != m->e[i].device_id) return mismatch(s, o, user);
  for (i = 0; i < m->n; i++) {
    if ((rc = ops->device_route(st, user, m->e[i].device_id, &d[i])) < 0) return rc;
    if (rc == 1) return mismatch(s, o, user); /* listed but gone (removed, the list not yet renewed) */
    if ((rc = send_quota(s, c, &d[i], m->e[i].body_len, pending, &o->code)) != 0 || o->code) return rc;
    pending += (int64_t)m->e[i].body_len;
  }
  o->ts = sotto__srv_now_ms();
  for (i = 0; i < m->n; i++) {
    struct sotto_store_env e;
    e.sender = c->user;
    e.sender_device = c->device_id;
    e.device_id = m->e[i].device_id;
    e.type = m->e[i].type;
    e.timestamp_ms = o->ts;
    e.body = m->e[i].body;
    e.body_len = m->e[i].body_len;
    if ((rc = ops->msg_insert(st, d[i].devkey, &e)) != 0) return rc;
    o->gone[i] = d[i].devkey; /* the targets of the fan-out */
    o->multi_ids[i] = e.id;
    if (e.id > o->msg_id) o->msg_id = e.id;
  }
  o->n_multi = m->n;
  return 0;
}

static int exec_epoch(struct srv *s, struct op *o) {
  /* o->ts: the epoch before */
  int rc = s->store.ops->device_epoch_raise(s->store.impl, o->c->devkey, (int64_t)o->req.epoch, &o->ts);
  return rc == 1 ? SOTTO_ERR_STORE : rc;
}

static int exec_ack(struct srv *s, struct op *o) {
  int found, rc;
  if (o->req.ack > INT64_MAX) return 0;
  rc = s->store.ops->msg_delete(s->store.impl, o->c->devkey, (int64_t)o->req.ack, &found);
  o->deleted = (uint8_t)(rc == 0 && found);
  return rc;
}

/* A new secret for the calling device; the old one stops working when this
 * commits (a stolen secret is not permanent access). */
static int exec_rotate(struct srv *s, struct op *o) {
  uint8_t h[32];
  int rc;
  randombytes_buf(o->secret, sizeof o->secret);
  hash_secret(h, o->secret);
  /* The secret this connection proved stays valid until the new one is
   * used once (store.h, device_secret). */
  rc = s->store.ops->device_secret(s->store.impl, o->c->devkey, h, o->c->auth_hash);
  sodium_memzero(h, sizeof h);
  o->device_id = o->c->device_id;
  return rc;
}

static int exec_remove(struct srv *s, struct op *o) {
  struct conn *c = o->c;
  uint32_t id = o->req.device_id;
  int rc;
  /* Device 1 (the first, from REGISTER) may remove any other device; any
   * device may remove itself; device 1 itself stays. */
  if (id == 1 || (c->device_id != 1 && id != c->device_id)) {
    o->code = SOTTO_SRV_E_FORBIDDEN;
    return 0;
  }
  if ((rc = s->store.ops->device_remove(s->store.impl, c->account_id, id, &o->target_devkey)) < 0) return rc;
  if (rc == 1) o->code = SOTTO_SRV_E_NOT_FOUND;
  o->device_id = id;
  return 0;
}

/* Removes every device of the account (keys and queues) and records their
 * device keys in o->gone, so that their connections are closed after the
 * commit. */
static int remove_all_devices(struct srv *s, struct op *o, const char *user, int64_t account_id) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  uint32_t ids[SOTTO_SRV_MAX_DEVICES];
  size_t n = 0, i;
  int rc;
  if ((rc = ops->devices_list(st, user, ids, NULL, SOTTO_SRV_MAX_DEVICES, &n)) != 0) return rc;
  o->n_gone = 0;
  for (i = 0; i < n; i++) {
    int64_t devkey = 0;
    if ((rc = ops->device_remove(st, account_id, ids[i], &devkey)) < 0) return rc;
    if (rc == 0) o->gone[o->n_gone++] = devkey;
  }
  return 0;
}

/* UNREGISTER: device 1 deletes the whole account; the name is held for the
 * quarantine (username-quarantine-days). */
static int exec_unregister(struct srv *s, struct op *o) {
  struct conn *c = o->c;
  char canon[SOTTO_SRV_USER_MAX + 1];
  int64_t hold_ms;
  int rc;
  if (c->device_id != 1) {
    o->code = SOTTO_SRV_E_FORBIDDEN;
    return 0;
  }
  if ((rc = remove_all_devices(s, o, c->user, c->account_id)) != 0 ||
      (rc = s->store.ops->devlist_clear(s->store.impl, c->account_id)) != 0 ||
      (rc = sotto__srv_blob_account_gone(s, c->account_id)) != 0)
    return rc;
  sotto__srv_username_canon((const uint8_t *)c->user, strlen(c->user), canon);
  hold_ms = s->cfg->quarantine_s ? s->cfg->quarantine_s * 1000 : s->cfg->quarantine_days * 86400 * 1000;
  return s->store.ops->account_delete(s->store.impl, c->account_id, canon, sotto__srv_now_ms() + hold_ms);
}

/* SET_RECOVERY: device 1 sets the account's recovery code (the server
 * keeps its SHA-256 only). */
static int exec_set_recovery(struct srv *s, struct op *o) {
  uint8_t h[32];
  int rc;
  if (o->c->device_id != 1) {
    o->code = SOTTO_SRV_E_FORBIDDEN;
    return 0;
  }
  crypto_hash_sha256(h, o->req.code, SOTTO_SRV_RECOVERY_LEN);
  rc = s->store.ops->recovery_set(s->store.impl, o->c->account_id, h);
  sodium_memzero(h, sizeof h);
  return rc;
}

/* RECOVER: the owner of a name who lost every device re-registers it with
 * a new identity by the recovery code. Every old device (keys, queue) goes,
 * the identity key is replaced, the code is used up, and a new device 1
 * gets fresh credentials. A wrong code or an unknown name is one opaque
 * answer, after the same hash. */
static int exec_recover(struct srv *s, struct op *o) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  const struct sotto_srv_recover *m = &o->req.recover;
  char user[SOTTO_SRV_USER_MAX + 1];
  uint8_t want[32], got[32];
  int64_t acc = 0;
  int rc, has = 0;
  cstr(user, &m->username);
  memset(want, 0, sizeof want);
  if ((rc = ops->recovery_get(st, user, &acc, want, &has)) < 0) return rc;
  crypto_hash_sha256(got, m->code, SOTTO_SRV_RECOVERY_LEN);
  if (rc == 1 || !has || sodium_memcmp(got, want, 32) != 0) {
    sodium_memzero(got, sizeof got);
    o->code = SOTTO_SRV_E_RECOVERY;
    return 0;
  }
  sodium_memzero(got, sizeof got);
  if ((rc = remove_all_devices(s, o, user, acc)) != 0 || (rc = ops->devlist_clear(st, acc)) != 0 ||
      (rc = ops->account_identity(st, acc, m->identity.p, m->identity.len)) != 0 ||
      (rc = ops->recovery_set(st, acc, NULL)) != 0)
    return rc;
  randombytes_buf(o->secret, sizeof o->secret);
  crypto_hash_sha256(got, o->secret, sizeof o->secret);
  rc = ops->device_add(st, acc, got, sotto__srv_today(), (uint32_t)s->cfg->max_devices, &o->dev);
  sodium_memzero(got, sizeof got);
  if (rc) return rc < 0 && rc != SOTTO_ERR_TOO_LARGE ? rc : SOTTO_ERR_STORE;
  o->device_id = o->dev.device_id;
  return 0;
}

/* DEVLIST_PUT (docs/multi-device.md): device 1 stores the account's next
 * signed device list. It must verify (parse did that), be this account's
 * (name, and the account key = the registered identity key), list device 1
 * under the account key, name only existing device rows, and have a version
 * above the stored one. The server checks what it can, but clients trust
 * only the signatures. */
static int exec_devlist_put(struct srv *s, struct op *o) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  const struct srv_devlist *d = o->req.devlist;
  const struct sotto_devlist *l = &d->l;
  struct conn *c = o->c;
  struct sotto_store_account acc;
  uint32_t rows[SOTTO_SRV_MAX_DEVICES], ids[SOTTO_DEVLIST_MAX_DEVICES], cur = 0;
  uint8_t *tmp;
  size_t n_rows = 0, i, k, tl = 0;
  int rc;
  if (c->device_id != 1) {
    o->code = SOTTO_SRV_E_FORBIDDEN;
    return 0;
  }
  o->code = SOTTO_SRV_E_DEVLIST_INVALID;
  if (d->rc != 0 || strcmp(l->username, c->user) != 0) return 0;
  if ((rc = ops->account_get(st, c->user, &acc)) < 0) return rc;
  if (rc == 1 || acc.identity_len < 33 || acc.identity[0] != 0x05 ||
      sodium_memcmp(acc.identity + 1, l->account_key, 32) != 0)
    return 0;
  if (l->dev[0].device_id != 1 || sodium_memcmp(l->dev[0].device_key, l->account_key, 32) != 0) return 0;
  if (l->n > (unsigned)s->cfg->max_devices) return 0;
  if ((rc = ops->devices_list(st, c->user, rows, NULL, SOTTO_SRV_MAX_DEVICES, &n_rows)) != 0) return rc;
  for (i = 0; i < l->n; i++) {
    for (k = 0; k < n_rows && rows[k] != l->dev[i].device_id; k++) {
    }
    if (k == n_rows) return 0;
    ids[i] = l->dev[i].device_id;
  }
  if ((tmp = malloc(SOTTO_STORE_MAX_DEVLIST)) == NULL) return SOTTO_ERR_NOMEM;
  rc = ops->devlist_get(st, c->user, &cur, tmp, SOTTO_STORE_MAX_DEVLIST, &tl);
  free(tmp);
  if (rc < 0) return rc;
  if (rc == 0 && l->version <= cur) {
    o->code = SOTTO_SRV_E_DEVLIST_STALE;
    return 0;
  }
  o->code = 0;
  return ops->devlist_put(st, c->account_id, l->version, ids, l->n, d->raw, d->raw_len, sotto__srv_now_ms());
}

/* DEVICE_IDENTITY (docs/multi-device.md): a linked device sets its own
 * identity key, once, before it publishes pre-keys; BUNDLE hands it out
 * from then on. Device 1's identity key is the account key: it may only
 * name that one (no write). Setting the same key again is a no-op (a retry
 * after a lost answer); another key once one is set is refused ERR(18). */
static int exec_device_identity(struct srv *s, struct op *o) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  struct conn *c = o->c;
  uint8_t cur[SOTTO_STORE_MAX_IDENTITY];
  size_t cl = 0;
  int rc;
  const struct sotto_srv_str *ik = &o->req.ik;
  if (c->device_id == 1) {
    struct sotto_store_account acc;
    if ((rc = ops->account_get(st, c->user, &acc)) < 0) return rc;
    /* The key (0x05 || 32 bytes) must be the account key. */
    if (rc == 1 || acc.identity_len < SOTTO_SRV_DEVICE_IDENTITY_MIN ||
        sodium_memcmp(acc.identity, ik->p, SOTTO_SRV_DEVICE_IDENTITY_MIN) != 0)
      o->code = SOTTO_SRV_E_FORBIDDEN;
    return 0;
  }
  if ((rc = ops->device_identity_get(st, c->devkey, cur, sizeof cur, &cl)) < 0) return rc;
  if (rc == 0) {
    if (cl != ik->len || sodium_memcmp(cur, ik->p, cl) != 0) o->code = SOTTO_SRV_E_STATE;
    return 0;
  }
  return ops->device_identity_set(st, c->devkey, ik->p, ik->len);
}

/* DEVLIST_GET: the newest signed list of a username, as stored. */
static int exec_devlist_get(struct srv *s, struct op *o) {
  char user[SOTTO_SRV_USER_MAX + 1];
  uint32_t ver = 0;
  size_t len = 0;
  int rc;
  cstr(user, &o->req.target.username);
  if ((rc = sotto__srv_kt_pending(s, &s->store, user)) != 0) { /* not in the log yet (srv_kt.c) */
    if (rc == 1) o->code = SOTTO_SRV_E_KT_PENDING;
    return rc == 1 ? 0 : rc;
  }
  if ((o->kt_out = malloc(SOTTO_SRV_MAX_DEVLIST + 2)) == NULL) return SOTTO_ERR_NOMEM;
  rc = s->store.ops->devlist_get(s->store.impl, user, &ver, o->kt_out + 2, SOTTO_SRV_MAX_DEVLIST, &len);
  if (rc < 0) return rc;
  if (rc == 1) {
    o->code = SOTTO_SRV_E_NOT_FOUND;
    return 0;
  }
  o->kt_out[0] = (uint8_t)(len >> 8);
  o->kt_out[1] = (uint8_t)len;
  o->kt_len = len + 2;
  return 0;
}

/* ---- answer (after the commit) ------------------------------------------------------- */

static void answer_secret(struct srv *s, struct op *o, struct sotto__wr *w) {
  if (o->type == SOTTO_SRV_ROTATE_SECRET) {
    /* Answered on this connection: a further ROTATE_SECRET on it keeps the
     * new secret (the one the client now holds) as the previous one. */
    hash_secret(o->c->auth_hash, o->secret);
    sotto__srv_log(1, "rotate_secret", "%s", "devices=1");
  }
  if (o->type == SOTTO_SRV_RECOVER) sotto__srv_log(1, "recover", "devices_removed=%zu", o->n_gone);
  if (o->type == SOTTO_SRV_REGISTER) {
    s->m.registrations++;
    sotto__srv_log(1, "register", "devices=1");
  }
  sotto__srv_put_creds(w, o->device_id, o->secret);
}

static void answer_counts(struct srv *s, struct op *o, struct sotto__wr *w) {
  (void)s;
  sotto__srv_put_counts(w, (uint32_t)o->ec, (uint32_t)o->kem);
}

static void answer_bundle(struct srv *s, struct op *o, struct sotto__wr *w) {
  struct sotto_srv_bundle b;
  const struct sotto_store_bundle *sb = o->bundle;
  s->m.bundles++;
  b.identity.p = sb->identity;
  b.identity.len = sb->identity_len;
  b.signed_prekey.id = sb->spk_id;
  b.signed_prekey.p = sb->spk;
  b.signed_prekey.len = sb->spk_len;
  b.has_ec = sb->has_ec;
  b.ec.id = sb->ec_id;
  b.ec.p = sb->ec;
  b.ec.len = sb->ec_len;
  b.kem_kind = sb->kem_kind;
  b.kem.id = sb->kem_id;
  b.kem.p = sb->kem;
  b.kem.len = sb->kem_len;
  sotto__srv_put_bundle(w, &b);
}

static void answer_devices(struct srv *s, struct op *o, struct sotto__wr *w) {
  (void)s;
  sotto__srv_put_devices(w, o->ids, o->n_ids);
  if (o->with_days) sotto__srv_put_devices_days(w, o->days, o->n_ids);
}

static void answer_send(struct srv *s, struct op *o, struct sotto__wr *w) {
  sotto__srv_put_sent(w, (uint64_t)o->msg_id, (uint64_t)o->ts);
  s->m.msgs_in++;
}

static void answer_send_multi(struct srv *s, struct op *o, struct sotto__wr *w) {
  uint64_t ids[SOTTO_SRV_MAX_DEVICES];
  size_t i;
  for (i = 0; i < o->n_multi; i++) ids[i] = (uint64_t)o->multi_ids[i];
  sotto__srv_put_sent_multi(w, (uint64_t)o->ts, ids, o->n_multi);
  s->m.msgs_in += o->n_multi;
}

static void answer_ack(struct srv *s, struct op *o, struct sotto__wr *w) {
  (void)o;
  (void)w;
  s->m.acks++;
}

static void answer_remove(struct srv *s, struct op *o, struct sotto__wr *w) {
  (void)s;
  (void)o;
  (void)w;
  sotto__srv_log(1, "device_remove", "%s", "devices=1");
}

static void answer_none(struct srv *s, struct op *o, struct sotto__wr *w) {
  (void)w;
  if (o->type == SOTTO_SRV_UNREGISTER) sotto__srv_log(1, "unregister", "devices_removed=%zu", o->n_gone);
  (void)s;
}

static void answer_kt(struct srv *s, struct op *o, struct sotto__wr *w) {
  (void)s;
  sotto__wr_bytes(w, o->kt_out, o->kt_len);
}

static void answer_epoch(struct srv *s, struct op *o, struct sotto__wr *w) {
  (void)s;
  sotto__srv_put_epoch_ok(w, (uint64_t)o->ts);
}

/* ---- fanout (after the commit, to the target device's live connection) ------------- */

/* The removed device's live connection goes (after its own OK, if it removed
 * itself). */
static void fanout_remove(struct srv *s, struct op *o, struct conn *r) {
  (void)o;
  sotto__srv_devmap_del(s, r);
  r->state = S_UNAUTH; /* no further pushes; conn_drop counts it back */
  s->n_unauth++;
  sotto__srv_conn_close_with(s, r, SOTTO_SRV_E_DEVICE_REMOVED);
}

/* UNREGISTER and RECOVER: the live connections of every removed device go
 * (the caller's after its own OK); in cluster mode a device connected to
 * another node is closed there (srv_cluster.c). */
static void close_gone(struct srv *s, struct op *o) {
  size_t i;
  for (i = 0; i < o->n_gone; i++) {
    struct conn *r = sotto__srv_devmap_get(s, o->gone[i]);
    if (r && !r->dead)
      fanout_remove(s, o, r);
    else if (s->cl)
      sotto__srv_cluster_gone(s, o->gone[i]);
  }
}

static void fanout_bundle(struct srv *s, struct op *o, struct conn *r) {
  if ((o->ec < SOTTO_SRV_KEYS_LOW || o->kem < SOTTO_SRV_KEYS_LOW) &&
      sotto__srv_keys_low_due(s, o->target_devkey))
    sotto__srv_push_keys_low(r, o->ec, o->kem);
  sotto__srv_flush_later(s, r);
}

static void fanout_send(struct srv *s, struct op *o, struct conn *r) {
  const struct sotto_srv_send *m = &o->req.send;
  struct sotto_store_env e;
  if (!r->backlog) {
    if (r->wlen - r->woff > WBUF_PUSH_MAX) {
      /* Slow reader: stop pushing, page from the store from where it is. */
      sotto__srv_backlog_add(s, r);
      return;
    }
    e.id = o->msg_id;
    e.sender = o->c->user;
    e.sender_device = o->c->device_id;
    e.device_id = m->device_id;
    e.type = m->type;
    e.timestamp_ms = o->ts;
    e.body = m->body;
    e.body_len = m->body_len;
    sotto__srv_push_env(s, r, &e);
  }
  sotto__srv_flush_later(s, r);
}

/* SEND_MULTI: each target's live connection pages the new envelope from the
 * store (in id order, like a slow reader), here or, in cluster mode, on its
 * node (srv_cluster.c, as for a SEND). */
static void fanout_multi(struct srv *s, struct op *o) {
  size_t i;
  for (i = 0; i < o->n_multi; i++) {
    struct conn *r = sotto__srv_devmap_get(s, o->gone[i]);
    if (r && r->dead) r = NULL;
    if (s->cl) {
      uint8_t type = o->type;
      int64_t t = o->target_devkey;
      o->type = SOTTO_SRV_SEND;
      o->target_devkey = o->gone[i];
      (void)sotto__srv_cluster_fanout(s, o, r);
      o->type = type;
      o->target_devkey = t;
    } else if (r) {
      if (!r->backlog) sotto__srv_backlog_add(s, r);
      sotto__srv_flush_later(s, r);
    }
  }
}

/* ---- the table ------------------------------------------------------------------------ */

static const struct srv_handler handlers[] = {
    {SOTTO_SRV_REGISTER, H_UNAUTH | H_STORES, parse_register, admit_register, exec_register, answer_secret,
     NULL},
    {SOTTO_SRV_AUTH, H_UNAUTH, parse_auth, admit_auth, exec_auth, answer_counts, NULL},
    {SOTTO_SRV_ADD_DEVICE, H_AUTHED | H_STORES | H_DEVICE, parse_none, admit_device_change, exec_add_device,
     answer_secret, NULL},
    {SOTTO_SRV_ROTATE_SECRET, H_AUTHED | H_DEVICE, parse_none, admit_device_change, exec_rotate, answer_secret,
     NULL},
    {SOTTO_SRV_DEVICE_REMOVE, H_AUTHED | H_DEVICE, parse_remove, admit_device_change, exec_remove,
     answer_remove, fanout_remove},
    {SOTTO_SRV_KEYS_UPLOAD, H_AUTHED | H_STORES | H_DEVICE | H_TOO_LARGE, parse_keys, NULL, exec_keys,
     answer_counts, NULL},
    {SOTTO_SRV_BUNDLE, H_AUTHED, parse_bundle, admit_bundle, exec_bundle, answer_bundle, fanout_bundle},
    {SOTTO_SRV_DEVICES, H_AUTHED, parse_devices_only, NULL, exec_devices, answer_devices, NULL},
    {SOTTO_SRV_SEND, H_AUTHED | H_STORES | H_TOO_LARGE | H_ONE_WRITE, parse_send, admit_send, exec_send,
     answer_send, fanout_send},
    {SOTTO_SRV_SEND_MULTI, H_AUTHED | H_STORES | H_TOO_LARGE, parse_send_multi, admit_send_multi, exec_send_multi,
     answer_send_multi, NULL},
    {SOTTO_SRV_ACK, H_AUTHED | H_ONE_WRITE, parse_ack, NULL, exec_ack, answer_ack, NULL},
    {SOTTO_SRV_EPOCH, H_AUTHED, parse_epoch, NULL, exec_epoch, answer_epoch, NULL},
    {SOTTO_SRV_UNREGISTER, H_AUTHED | H_DEVICE, parse_none, NULL, exec_unregister, answer_none, NULL},
    {SOTTO_SRV_SET_RECOVERY, H_AUTHED | H_DEVICE, parse_set_recovery, NULL, exec_set_recovery, answer_none, NULL},
    {SOTTO_SRV_RECOVER, H_UNAUTH | H_STORES, parse_recover, admit_register, exec_recover, answer_secret, NULL},
    {SOTTO_SRV_KT_HEAD, H_UNAUTH | H_AUTHED, parse_kt_none, admit_kt, sotto__srv_kt_exec, answer_kt, NULL},
    {SOTTO_SRV_KT_SEARCH, H_UNAUTH | H_AUTHED, parse_kt_search, admit_kt, sotto__srv_kt_exec, answer_kt, NULL},
    {SOTTO_SRV_KT_SEARCH_LIST, H_UNAUTH | H_AUTHED, parse_kt_search, admit_kt, sotto__srv_kt_exec, answer_kt, NULL},
    {SOTTO_SRV_KT_CONSISTENCY, H_UNAUTH | H_AUTHED, parse_kt_consistency, admit_kt, sotto__srv_kt_exec, answer_kt,
     NULL},
    {SOTTO_SRV_KT_UPDATES, H_UNAUTH | H_AUTHED, parse_kt_updates, admit_kt, sotto__srv_kt_exec, answer_kt, NULL},
    {SOTTO_SRV_KT_VERSIONS, H_UNAUTH | H_AUTHED, parse_kt_versions, admit_kt, sotto__srv_kt_exec, answer_kt, NULL},
    {SOTTO_SRV_KT_CONFIG, H_UNAUTH | H_AUTHED, parse_kt_none, admit_kt, sotto__srv_kt_exec, answer_kt, NULL},
    {SOTTO_SRV_KT_COSIGN, H_UNAUTH | H_AUTHED, parse_kt_cosign, admit_kt, sotto__srv_kt_exec, answer_kt, NULL},
    {SOTTO_SRV_DEVLIST_PUT, H_AUTHED | H_STORES | H_DEVICE, parse_devlist_put, admit_devlist_put, exec_devlist_put,
     answer_none, NULL},
    {SOTTO_SRV_DEVLIST_GET, H_AUTHED, parse_devices, admit_devlist_get, exec_devlist_get, answer_kt, NULL},
    {SOTTO_SRV_DEVICE_IDENTITY, H_AUTHED | H_STORES | H_DEVICE, parse_device_identity,
     admit_devlist_get, exec_device_identity, answer_none, NULL},
    /* attachments (srv_blob.c): the OK payload is made by exec, like KT's */
    {SOTTO_SRV_BLOB_CREATE, H_AUTHED | H_STORES | H_TOO_LARGE, sotto__srv_blob_parse, sotto__srv_blob_admit,
     sotto__srv_blob_exec, sotto__srv_blob_answer, NULL},
    {SOTTO_SRV_BLOB_PUT, H_AUTHED | H_STORES | H_TOO_LARGE, sotto__srv_blob_parse, sotto__srv_blob_admit,
     sotto__srv_blob_exec, sotto__srv_blob_answer, NULL},
    {SOTTO_SRV_BLOB_STAT, H_AUTHED, sotto__srv_blob_parse, sotto__srv_blob_admit, sotto__srv_blob_exec, sotto__srv_blob_answer,
     NULL},
    {SOTTO_SRV_BLOB_COMMIT, H_AUTHED, sotto__srv_blob_parse, sotto__srv_blob_admit, sotto__srv_blob_exec,
     sotto__srv_blob_answer, NULL},
    {SOTTO_SRV_BLOB_GET, H_AUTHED, sotto__srv_blob_parse, sotto__srv_blob_admit, sotto__srv_blob_exec, sotto__srv_blob_answer,
     NULL},
    {SOTTO_SRV_BLOB_DONE, H_AUTHED, sotto__srv_blob_parse, sotto__srv_blob_admit, sotto__srv_blob_exec, sotto__srv_blob_answer,
     NULL},
    {SOTTO_SRV_BLOB_FETCHES, H_AUTHED, sotto__srv_blob_parse, sotto__srv_blob_admit, sotto__srv_blob_exec,
     sotto__srv_blob_answer, NULL},
};

static const struct srv_handler *handler_for(uint8_t type) {
  size_t i;
  for (i = 0; i < sizeof handlers / sizeof handlers[0]; i++)
    if (handlers[i].type == type) return &handlers[i];
  return NULL;
}

int sotto__srv_op_one_write(const struct op *o) {
  return (o->h->flags & H_ONE_WRITE) != 0;
}

int sotto__srv_op_exec(struct srv *s, struct op *o) {
  /* The disk filled up and the reserve was given back for deletes: what
   * would store more waits until there is room again (ACKs go on). */
  if (s->space_low && (o->h->flags & H_STORES)) {
    o->code = SOTTO_SRV_E_STORAGE_FULL;
    return 0;
  }
  /* A device removed while some of its requests were queued (in the same
   * TLS record as the removal, or the next batch, formed before the removal's
   * answers closed its connections), or whose connection a race left open
   * (an AUTH read just before the removal committed): every request that
   * needs a device is refused, and the connection is closed with
   * DEVICE_REMOVED after the answer (sotto__srv_op_answer), so nothing is
   * done for, or left attached to, an account or device key that no longer
   * exists (blobs, one-time keys taken, device lists read). The row must
   * still be this connection's account and device: a device key freed by a
   * removal may name another device now (the SQLite store reuses none since
   * AUTOINCREMENT, but older databases may). Not checked: the KT requests
   * (public, served without AUTH too) and ACK (it deletes from the
   * device's own queue, gone with it; ACKs are frequent and on PostgreSQL
   * the check is a query). */
  if ((o->h->flags & H_AUTHED) && !(o->h->flags & H_UNAUTH) && o->type != SOTTO_SRV_ACK) {
    int r = s->store.ops->device_is(s->store.impl, o->c->devkey, o->c->account_id, o->c->device_id);
    if (r < 0) return r;
    if (r == 0) {
      o->code = SOTTO_SRV_E_DEVICE_REMOVED;
      return 0;
    }
  }
  return o->h->exec(s, o);
}

void sotto__srv_note_removed(struct srv *s, int64_t devkey) {
  s->removed_ring[s->removals % SRV_REMOVED_RING] = devkey;
  s->removals++;
}

/* 1 if devkey was removed since the I/O thread's removal count was gen, 0
 * if not, -1 if it cannot tell (more removals than the ring holds). */
static int removed_since(const struct srv *s, uint64_t gen, int64_t devkey) {
  uint64_t i;
  if (s->removals == gen) return 0;
  if (s->removals - gen > SRV_REMOVED_RING) return -1;
  for (i = gen; i < s->removals; i++)
    if (s->removed_ring[i % SRV_REMOVED_RING] == devkey) return 1;
  return 0;
}

void sotto__srv_op_answer(struct srv *s, struct op *o, int failed) {
  struct conn *c = o->c;
  struct sotto__wr w;
  if (c->dead) return;
  if (o->type == SOTTO_SRV_AUTH) {
    /* Its device removed after the AUTH read the row (the read pool's
     * snapshot, or another node's commit told through Redis): refused as
     * the read after the removal would have been; "retry later" where the
     * removals since were too many to tell. */
    int gone = failed || o->code ? 0 : removed_since(s, o->rm_gen, o->dev.devkey);
    if (gone) o->code = gone > 0 ? SOTTO_SRV_E_AUTH : SOTTO_SRV_E_RATE;
    sotto__srv_limit_auth_done(s, c, !failed && o->code == SOTTO_SRV_E_AUTH);
    if (failed || o->code) {
      if (!failed) s->m.auth_fail++;
      c->state = S_UNAUTH;
    } else {
      char user[SOTTO_SRV_USER_MAX + 1];
      s->m.auth_ok++;
      cstr(user, &o->req.auth.username);
      sotto__srv_authed(s, c, &o->dev, user);
    }
  }
  if (!failed && o->code == SOTTO_SRV_E_MISMATCHED_DEVICES && o->type == SOTTO_SRV_SEND_MULTI && o->kt_out) {
    sotto__srv_send_err_list(s, c, o->req_id, o->code, o->kt_out + 2, o->kt_len - 2);
    return;
  }
  if (!failed && o->code == SOTTO_SRV_E_DEVICE_REMOVED && c->state == S_AUTHED && (o->h->flags & H_AUTHED)) {
    /* this connection's device is gone (sotto__srv_op_exec): answered, then closed */
    sotto__srv_send_err(s, c, o->req_id, o->code);
    fanout_remove(s, o, c);
    return;
  }
  if (failed || o->code) {
    sotto__srv_send_err(s, c, o->req_id, failed ? SOTTO_SRV_E_INTERNAL : o->code);
    return;
  }
  if (sotto__srv_frame_begin(c, &w, 64 + SOTTO_SRV_MAX_IDENTITY + 3 * (SOTTO_SRV_MAX_KEY_BLOB + 8) + o->kt_len) != 0)
    return;
  o->h->answer(s, o, &w);
  sotto__srv_frame_end(c, &w, SOTTO_SRV_OK, o->req_id);
  /* A device that authenticates with few keys left is told (KEYS_LOW push). */
  if (o->type == SOTTO_SRV_AUTH && (o->ec < SOTTO_SRV_KEYS_LOW || o->kem < SOTTO_SRV_KEYS_LOW) &&
      sotto__srv_keys_low_due(s, c->devkey))
    sotto__srv_push_keys_low(c, o->ec, o->kem);
}

/* After commit: live pushes and key-low notices to other connections. */
void sotto__srv_op_fanout(struct srv *s, struct op *o) {
  struct conn *r;
  if (o->type == SOTTO_SRV_SEND_MULTI) {
    if (!o->code) fanout_multi(s, o);
    return;
  }
  if (!o->code && o->n_gone) {
    size_t i;
    for (i = 0; i < o->n_gone; i++) sotto__srv_note_removed(s, o->gone[i]);
    close_gone(s, o);
    return;
  }
  if (!o->code && o->type == SOTTO_SRV_DEVICE_REMOVE && o->target_devkey)
    sotto__srv_note_removed(s, o->target_devkey);
  if (o->code || !o->h->fanout || !o->target_devkey) return;
  if ((r = sotto__srv_devmap_get(s, o->target_devkey)) != NULL && r->dead) r = NULL;
  if (s->cl && sotto__srv_cluster_fanout(s, o, r)) return; /* other nodes (srv_cluster.c) */
  if (r) o->h->fanout(s, o, r);
}

/* ---- frames --------------------------------------------------------------------------- */

static void hello(struct srv *s, struct conn *c, const struct sotto_srv_frame *f) {
  struct sotto_srv_hello h;
  struct sotto__wr w;
  if (f->type != SOTTO_SRV_HELLO || sotto__srv_parse_hello(f->p, f->len, &h) != 0) {
    sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
    return;
  }
  if (h.version < SOTTO_SRV_VERSION_MIN || h.version > SOTTO_SRV_VERSION) {
    sotto__srv_send_err(s, c, f->req_id, SOTTO_SRV_E_VERSION);
    sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_VERSION);
    return;
  }
  if (sotto__srv_frame_begin(c, &w, 10) != 0) return;
  /* The answer names the client's own version: the server speaks it. */
  sotto__srv_put_hello_ok(&w, h.version, (uint32_t)s->cfg->max_frame, (uint32_t)s->cfg->max_message);
  sotto__srv_frame_end(c, &w, SOTTO_SRV_OK, f->req_id);
  c->features = h.features;
  c->version = h.version;
  c->state = S_UNAUTH;
}

void sotto__srv_handle_frame(struct srv *s, struct conn *c, const uint8_t *body, size_t len) {
  struct sotto_srv_frame f;
  const struct srv_handler *h;
  struct op *o;
  int64_t now_us;
  int rc;
  if (sotto__srv_frame_parse(body, len, &f) != 0) {
    sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
    return;
  }
  /* One clock read per frame: its arrival (the op's t_in_us, the SEND
   * rate limit's time) */
  now_us = sotto__srv_mono_us();
  c->last_rx_ms = now_us / 1000;
  if (f.type == SOTTO_SRV_PING && c->state != S_HELLO) {
    if (f.len)
      sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
    else
      sotto__srv_send_simple(c, SOTTO_SRV_OK, f.req_id, NULL, 0);
    return;
  }
  if (c->state == S_HELLO) {
    hello(s, c, &f);
    return;
  }
  /* ROTATION: the certificate rotation chain, before or after AUTH (a
   * client whose pin is older asks before it sends credentials). Bytes in
   * memory (a statement prepared while the server runs is picked up within
   * a second): no store, nothing to spend. */
  if (f.type == SOTTO_SRV_ROTATION && c->state != S_AUTHING) {
    if (f.len) {
      sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
    } else {
      sotto__srv_rotation_refresh(s);
      sotto__srv_send_simple(c, SOTTO_SRV_OK, f.req_id, s->rot, s->rot_len);
    }
    return;
  }
  if (c->state == S_AUTHING) {
    sotto__srv_send_err(s, c, f.req_id, SOTTO_SRV_E_STATE);
    return;
  }
  /* LINK_*: slots in memory, answered in place (srv_link.c). */
  if (sotto__srv_link_frame(s, c, &f)) return;
  h = handler_for(f.type);
  if (!h && c->state == S_AUTHED && f.type == SOTTO_SRV_HELLO) {
    sotto__srv_send_err(s, c, f.req_id, SOTTO_SRV_E_STATE);
    return;
  }
  if (!h) {
    sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
    return;
  }
  if (!(h->flags & (c->state == S_AUTHED ? H_AUTHED : H_UNAUTH))) {
    /* Known but not now: before AUTH "not authenticated", after it "wrong state". */
    sotto__srv_send_err(s, c, f.req_id, c->state == S_AUTHED ? SOTTO_SRV_E_STATE : SOTTO_SRV_E_NOT_AUTHED);
    return;
  }
  if ((o = sotto__srv_op_alloc(c, &f, now_us)) == NULL) {
    sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_INTERNAL);
    return;
  }
  o->h = h;
  o->rm_gen = s->removals;
  if ((rc = h->parse(s, o)) != 0) {
    sotto__srv_op_discard(o);
    if (rc == SOTTO_ERR_NOMEM)
      sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_INTERNAL);
    else if (rc == SOTTO_ERR_TOO_LARGE && (h->flags & H_TOO_LARGE))
      sotto__srv_send_err(s, c, f.req_id, SOTTO_SRV_E_TOO_LARGE);
    else
      sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
    return;
  }
  if (h->admit && (rc = h->admit(s, c, o)) != 0) {
    sotto__srv_op_discard(o);
    sotto__srv_send_err(s, c, f.req_id, rc);
    /* Past the failed-login budget the connection goes too. */
    if (rc == SOTTO_SRV_E_AUTH_RATE) sotto__srv_conn_close_with(s, c, SOTTO_SRV_E_AUTH_RATE);
    return;
  }
  /* key transparency: a new name's VRF output here on the I/O thread, not
   * on the store thread (srv_kt.c) */
  if (f.type == SOTTO_SRV_REGISTER && s->kt) sotto__srv_kt_precompute(s, o);
  if (sotto__srv_pool_take(s, o)) return; /* a read the pool answers (srv_pool.c) */
  /* attachments: a PUT to a blob this connection already opened through
   * the batch, or a GET of one it already read through it, goes to the
   * blob writer (srv_blob.c) */
  if ((f.type == SOTTO_SRV_BLOB_PUT || f.type == SOTTO_SRV_BLOB_GET) && sotto__srv_blob_fast(s, c, o)) return;
  sotto__srv_op_enqueue(s, o);
}

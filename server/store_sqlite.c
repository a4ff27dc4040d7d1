/* SPDX-License-Identifier: Apache-2.0 */
/* store_sqlite.c: the embedded store backend (SQLite, WAL, synchronous=NORMAL).
 *
 * One database file DIR/sotto.db holds accounts, devices, pre-keys and the
 * per-device queues. What is deliberately NOT stored: IP addresses, contact
 * lists, a log of delivered messages, anything about a message once it has
 * been acknowledged (secure_delete overwrites its cells). Statements are
 * prepared once at open and reused. */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

enum {
  Q_ACC_INS,
  Q_ACC_GET,
  Q_DEV_MAX,
  Q_DEV_INS,
  Q_DEV_LOOKUP,
  Q_DEV_SEEN,
  Q_DEV_LIST,
  Q_DEV_ITER,
  Q_SPK_PUT,
  Q_LR_PUT,
  Q_OT_PUT,
  Q_OT_COUNT,
  Q_SPK_GET,
  Q_OT_FIRST,
  Q_OT_DEL,
  Q_LR_GET,
  Q_MSG_INS,
  Q_QUEUE_ADD,
  Q_MSG_LEN,
  Q_MSG_DEL,
  Q_MSG_FETCH,
  Q_MSG_EXPIRE,
  Q_QUEUE_RECOUNT,
  Q_QUEUE_TOTAL,
  Q_MSG_MAX,
  Q_BEGIN,
  Q_COMMIT,
  Q_ROLLBACK,
  Q_COUNT
};

static const char *const sql_text[Q_COUNT] = {
    [Q_ACC_INS] = "INSERT INTO accounts(username, identity, created_day) VALUES(?1, ?2, ?3)",
    [Q_ACC_GET] = "SELECT id, created_day, identity FROM accounts WHERE username = ?1",
    [Q_DEV_MAX] = "SELECT count(*), coalesce(max(device_id), 0) FROM devices WHERE account_id = ?1",
    [Q_DEV_INS] = "INSERT INTO devices(account_id, device_id, secret_hash, created_day, last_seen_day)"
                  " VALUES(?1, ?2, ?3, ?4, ?4)",
    [Q_DEV_LOOKUP] = "SELECT d.devkey, d.account_id, d.device_id, d.secret_hash, d.created_day,"
                     " d.last_seen_day, d.queue_count, d.queue_bytes FROM devices d JOIN accounts a"
                     " ON a.id = d.account_id WHERE a.username = ?1 AND d.device_id = ?2",
    [Q_DEV_SEEN] = "UPDATE devices SET last_seen_day = ?2 WHERE devkey = ?1",
    [Q_DEV_LIST] = "SELECT d.device_id FROM devices d JOIN accounts a ON a.id = d.account_id"
                   " WHERE a.username = ?1 ORDER BY d.device_id",
    [Q_DEV_ITER] = "SELECT d.devkey, d.account_id, d.device_id, d.created_day, d.last_seen_day,"
                   " d.queue_count, d.queue_bytes,"
                   " (SELECT key_id FROM signed_prekeys s WHERE s.devkey = d.devkey),"
                   " (SELECT count(*) FROM onetime o WHERE o.devkey = d.devkey AND o.kind = 0),"
                   " (SELECT count(*) FROM onetime o WHERE o.devkey = d.devkey AND o.kind = 1),"
                   " (SELECT count(*) FROM last_resort l WHERE l.devkey = d.devkey),"
                   " (SELECT blob FROM signed_prekeys s WHERE s.devkey = d.devkey)"
                   " FROM devices d WHERE d.account_id = ?1 ORDER BY d.device_id",
    [Q_SPK_PUT] = "INSERT OR REPLACE INTO signed_prekeys(devkey, key_id, blob) VALUES(?1, ?2, ?3)",
    [Q_LR_PUT] = "INSERT OR REPLACE INTO last_resort(devkey, key_id, blob) VALUES(?1, ?2, ?3)",
    [Q_OT_PUT] = "INSERT OR REPLACE INTO onetime(devkey, kind, key_id, blob) VALUES(?1, ?2, ?3, ?4)",
    [Q_OT_COUNT] = "SELECT count(*) FROM onetime WHERE devkey = ?1 AND kind = ?2",
    [Q_SPK_GET] = "SELECT s.key_id, s.blob, a.identity FROM signed_prekeys s JOIN devices d"
                  " ON d.devkey = s.devkey JOIN accounts a ON a.id = d.account_id WHERE s.devkey = ?1",
    [Q_OT_FIRST] = "SELECT key_id, blob FROM onetime WHERE devkey = ?1 AND kind = ?2"
                   " ORDER BY key_id LIMIT 1",
    [Q_OT_DEL] = "DELETE FROM onetime WHERE devkey = ?1 AND kind = ?2 AND key_id = ?3",
    [Q_LR_GET] = "SELECT key_id, blob FROM last_resort WHERE devkey = ?1",
    [Q_MSG_INS] = "INSERT INTO messages(devkey, sender, sender_device, device_id, type, ts, body)"
                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_QUEUE_ADD] = "UPDATE devices SET queue_count = queue_count + ?2, queue_bytes = queue_bytes + ?3"
                    " WHERE devkey = ?1",
    /* Two plain statements rather than DELETE ... RETURNING, which builds and
     * drops an ephemeral table on every call (about a third of the delete). */
    [Q_MSG_LEN] = "SELECT length(body) FROM messages WHERE id = ?2 AND devkey = ?1",
    [Q_MSG_DEL] = "DELETE FROM messages WHERE id = ?2 AND devkey = ?1",
    [Q_MSG_FETCH] = "SELECT id, sender, sender_device, device_id, type, ts, body FROM messages"
                    " WHERE devkey = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    [Q_MSG_EXPIRE] = "DELETE FROM messages WHERE ts < ?1",
    [Q_QUEUE_RECOUNT] = "UPDATE devices SET"
                        " queue_count = (SELECT count(*) FROM messages m WHERE m.devkey = devices.devkey),"
                        " queue_bytes = (SELECT coalesce(sum(length(body)), 0) FROM messages m"
                        " WHERE m.devkey = devices.devkey)",
    [Q_QUEUE_TOTAL] = "SELECT coalesce(sum(queue_count), 0), coalesce(sum(queue_bytes), 0) FROM devices",
    [Q_MSG_MAX] = "SELECT coalesce(max(id), 0) FROM messages",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS accounts(id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE,"
    " identity BLOB NOT NULL, created_day INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS devices(devkey INTEGER PRIMARY KEY, account_id INTEGER NOT NULL,"
    " device_id INTEGER NOT NULL, secret_hash BLOB NOT NULL, created_day INTEGER NOT NULL,"
    " last_seen_day INTEGER NOT NULL, queue_count INTEGER NOT NULL DEFAULT 0,"
    " queue_bytes INTEGER NOT NULL DEFAULT 0, UNIQUE(account_id, device_id));"
    "CREATE TABLE IF NOT EXISTS signed_prekeys(devkey INTEGER PRIMARY KEY, key_id INTEGER NOT NULL,"
    " blob BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS last_resort(devkey INTEGER PRIMARY KEY, key_id INTEGER NOT NULL,"
    " blob BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS onetime(devkey INTEGER NOT NULL, kind INTEGER NOT NULL,"
    " key_id INTEGER NOT NULL, blob BLOB NOT NULL, PRIMARY KEY(devkey, kind, key_id)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS messages(id INTEGER PRIMARY KEY AUTOINCREMENT,"
    " devkey INTEGER NOT NULL, sender TEXT NOT NULL, sender_device INTEGER NOT NULL,"
    " device_id INTEGER NOT NULL, type INTEGER NOT NULL, ts INTEGER NOT NULL, body BLOB NOT NULL);"
    "CREATE INDEX IF NOT EXISTS messages_queue ON messages(devkey, id);"
    "CREATE INDEX IF NOT EXISTS messages_ts ON messages(ts);";

/* The routing cache (device_route, used by SEND) and the queue counters.
 *
 * Every SEND used to run a join (username -> account -> device) and every
 * SEND and ACK an UPDATE of the device row's queue counters. Now:
 *  - an entry per device that messages are sent to holds its devkey and its
 *    committed queue counters, found by (username, device id): the mapping
 *    never changes (accounts and devices are never deleted or renamed);
 *  - the counter changes of the open transaction are summed per device (an
 *    entry without committed counters is made for a device only acked to)
 *    and written with one UPDATE per device at commit; device_lookup and
 *    device_route add them, so that the queue limit sees them.
 * The database stays authoritative: after a rollback or an expiry recount
 * the whole cache is dropped and refilled from the database on demand. It is
 * bounded (DC_MAX entries; emptied at the start of a transaction when over). */
#define DC_BUCKETS 4096
#define DC_MAX 65536

struct dcache {
  int64_t devkey;
  int64_t n, bytes;   /* committed counters, valid once in the name index */
  int64_t dn, dbytes; /* this transaction's changes */
  uint32_t device_id, nhash;
  uint8_t dirty, ulen;
  char user[SOTTO_SRV_USER_MAX + 1];
  struct dcache *knext, *nnext, *dnext; /* by devkey, by name, changed in this transaction */
};

struct sq {
  sqlite3 *db;
  sqlite3_stmt *q[Q_COUNT];
  struct dcache *bykey[DC_BUCKETS], *byname[DC_BUCKETS];
  struct dcache *dirty;
  size_t dc_n;
};

static uint32_t dc_key_hash(int64_t devkey) {
  return (uint32_t)((uint64_t)devkey * 0x9E3779B97F4A7C15ull >> 52);
}

static uint32_t dc_name_hash(const char *user, size_t ulen, uint32_t device_id) {
  uint32_t h = 2166136261u ^ device_id;
  size_t i;
  for (i = 0; i < ulen; i++) h = (h ^ (uint8_t)user[i]) * 16777619u;
  return h;
}

static struct dcache *dc_by_key(struct sq *s, int64_t devkey) {
  struct dcache *e;
  for (e = s->bykey[dc_key_hash(devkey) % DC_BUCKETS]; e; e = e->knext)
    if (e->devkey == devkey) return e;
  return NULL;
}

static struct dcache *dc_by_name(struct sq *s, const char *user, size_t ulen, uint32_t device_id,
                                 uint32_t h) {
  struct dcache *e;
  for (e = s->byname[h % DC_BUCKETS]; e; e = e->nnext)
    if (e->nhash == h && e->device_id == device_id && e->ulen == ulen && memcmp(e->user, user, ulen) == 0)
      return e;
  return NULL;
}

static void dc_clear(struct sq *s) {
  size_t i;
  for (i = 0; i < DC_BUCKETS; i++)
    while (s->bykey[i]) {
      struct dcache *e = s->bykey[i];
      s->bykey[i] = e->knext;
      free(e);
    }
  memset(s->byname, 0, sizeof s->byname);
  s->dirty = NULL;
  s->dc_n = 0;
}

/* The entry of devkey, created (without committed counters) if needed. */
static struct dcache *dc_get(struct sq *s, int64_t devkey) {
  struct dcache *e = dc_by_key(s, devkey);
  uint32_t b = dc_key_hash(devkey) % DC_BUCKETS;
  if (e) return e;
  if ((e = calloc(1, sizeof *e)) == NULL) return NULL;
  e->devkey = devkey;
  e->knext = s->bykey[b];
  s->bykey[b] = e;
  s->dc_n++;
  return e;
}

/* Adds to a device's counters in the open transaction. */
static int dc_add(struct sq *s, int64_t devkey, int64_t n, int64_t bytes) {
  struct dcache *e = dc_get(s, devkey);
  if (!e) return SOTTO_ERR_NOMEM;
  e->dn += n;
  e->dbytes += bytes;
  if (!e->dirty) {
    e->dirty = 1;
    e->dnext = s->dirty;
    s->dirty = e;
  }
  return 0;
}

/* Fetches a prepared statement, reset and with bindings cleared. */
static sqlite3_stmt *stmt(struct sq *s, int which) {
  sqlite3_stmt *st = s->q[which];
  sqlite3_reset(st);
  sqlite3_clear_bindings(st);
  return st;
}

static int step_done(sqlite3_stmt *st) {
  int rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static void copy_blob(sqlite3_stmt *st, int col, uint8_t *dst, size_t cap, size_t *len) {
  size_t n = (size_t)sqlite3_column_bytes(st, col);
  const void *p = sqlite3_column_blob(st, col);
  if (n > cap) n = cap; /* cannot happen: inputs were capped before insert */
  if (n && p) memcpy(dst, p, n);
  *len = n;
}

static int queue_add(struct sq *s, int64_t devkey, int64_t n, int64_t bytes);

static int sq_begin(void *v) {
  struct sq *s = v;
  if (s->dc_n > DC_MAX) dc_clear(s);
  return step_done(stmt(s, Q_BEGIN));
}

/* Writes the summed queue counters, then commits; only once the commit
 * succeeded do the cached committed counters move. */
static int sq_commit(void *v) {
  struct sq *s = v;
  struct dcache *e;
  for (e = s->dirty; e; e = e->dnext)
    if ((e->dn || e->dbytes) && queue_add(s, e->devkey, e->dn, e->dbytes) != 0) return SOTTO_ERR_STORE;
  if (step_done(stmt(s, Q_COMMIT)) != 0) return SOTTO_ERR_STORE;
  while ((e = s->dirty) != NULL) {
    s->dirty = e->dnext;
    e->n += e->dn;
    e->bytes += e->dbytes;
    e->dn = e->dbytes = 0;
    e->dirty = 0;
  }
  return 0;
}

static void sq_rollback(void *v) {
  dc_clear(v);
  (void)step_done(stmt(v, Q_ROLLBACK));
}

static void sq_close(void *v) {
  struct sq *s = v;
  int i;
  if (!s) return;
  for (i = 0; i < Q_COUNT; i++) sqlite3_finalize(s->q[i]);
  sqlite3_close(s->db);
  dc_clear(s);
  free(s);
}

static int sq_account_create(void *v, const char *user, const uint8_t *ik, size_t ik_len, int64_t day,
                             int64_t *account_id) {
  struct sq *s = v;
  sqlite3_stmt *st = stmt(s, Q_ACC_INS);
  int rc;
  sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, ik, (int)ik_len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, day);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_CONSTRAINT) return SOTTO_ERR_DUPLICATE;
  if (rc != SQLITE_DONE) return SOTTO_ERR_STORE;
  *account_id = sqlite3_last_insert_rowid(s->db);
  return 0;
}

static int sq_account_get(void *v, const char *user, struct sotto_store_account *out) {
  sqlite3_stmt *st = stmt(v, Q_ACC_GET);
  int rc;
  sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    out->account_id = sqlite3_column_int64(st, 0);
    out->created_day = sqlite3_column_int64(st, 1);
    copy_blob(st, 2, out->identity, sizeof out->identity, &out->identity_len);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : SOTTO_ERR_STORE;
}

static int sq_device_add(void *v, int64_t account_id, const uint8_t secret_hash[32], int64_t day,
                         uint32_t max_devices, struct sotto_store_device *out) {
  struct sq *s = v;
  sqlite3_stmt *st = stmt(s, Q_DEV_MAX);
  int64_t count, maxid;
  sqlite3_bind_int64(st, 1, account_id);
  if (sqlite3_step(st) != SQLITE_ROW) {
    sqlite3_reset(st);
    return SOTTO_ERR_STORE;
  }
  count = sqlite3_column_int64(st, 0);
  maxid = sqlite3_column_int64(st, 1);
  sqlite3_reset(st);
  if (count >= max_devices || maxid >= 0x7FFFFFFF) return SOTTO_ERR_TOO_LARGE;
  st = stmt(s, Q_DEV_INS);
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, maxid + 1);
  sqlite3_bind_blob(st, 3, secret_hash, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 4, day);
  if (step_done(st) != 0) return SOTTO_ERR_STORE;
  memset(out, 0, sizeof *out);
  out->devkey = sqlite3_last_insert_rowid(s->db);
  out->account_id = account_id;
  out->device_id = (uint32_t)(maxid + 1);
  memcpy(out->secret_hash, secret_hash, 32);
  out->created_day = out->last_seen_day = day;
  return 0;
}

static int sq_device_lookup(void *v, const char *user, uint32_t device_id, struct sotto_store_device *out) {
  sqlite3_stmt *st = stmt(v, Q_DEV_LOOKUP);
  int rc;
  sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, device_id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    size_t n;
    out->devkey = sqlite3_column_int64(st, 0);
    out->account_id = sqlite3_column_int64(st, 1);
    out->device_id = (uint32_t)sqlite3_column_int64(st, 2);
    memset(out->secret_hash, 0, 32);
    copy_blob(st, 3, out->secret_hash, 32, &n);
    out->created_day = sqlite3_column_int64(st, 4);
    out->last_seen_day = sqlite3_column_int64(st, 5);
    out->queue_count = sqlite3_column_int64(st, 6);
    out->queue_bytes = sqlite3_column_int64(st, 7);
  }
  sqlite3_reset(st);
  if (rc == SQLITE_ROW) {
    const struct dcache *e = dc_by_key(v, out->devkey);
    if (e) {
      out->queue_count += e->dn;
      out->queue_bytes += e->dbytes;
    }
  }
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : SOTTO_ERR_STORE;
}

/* device_lookup for routing: devkey, device id and queue counters only,
 * from the cache when the device is in it. */
static int sq_device_route(void *v, const char *user, uint32_t device_id, struct sotto_store_device *out) {
  struct sq *s = v;
  size_t ulen = strlen(user);
  uint32_t h = dc_name_hash(user, ulen, device_id);
  struct dcache *e = dc_by_name(s, user, ulen, device_id, h);
  int rc;
  if (!e) {
    if (ulen > SOTTO_SRV_USER_MAX) return 1;
    if ((rc = sq_device_lookup(s, user, device_id, out)) != 0) return rc;
    if ((e = dc_get(s, out->devkey)) == NULL) return SOTTO_ERR_NOMEM;
    /* The row holds the committed counters (changes are only written at
     * commit); device_lookup added this transaction's on top. */
    e->n = out->queue_count - e->dn;
    e->bytes = out->queue_bytes - e->dbytes;
    e->device_id = device_id;
    e->nhash = h;
    e->ulen = (uint8_t)ulen;
    memcpy(e->user, user, ulen + 1);
    e->nnext = s->byname[h % DC_BUCKETS];
    s->byname[h % DC_BUCKETS] = e;
    return 0;
  }
  memset(out, 0, sizeof *out);
  out->devkey = e->devkey;
  out->device_id = e->device_id;
  out->queue_count = e->n + e->dn;
  out->queue_bytes = e->bytes + e->dbytes;
  return 0;
}

static int sq_device_seen(void *v, int64_t devkey, int64_t day) {
  sqlite3_stmt *st = stmt(v, Q_DEV_SEEN);
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_int64(st, 2, day);
  return step_done(st);
}

static int sq_devices_list(void *v, const char *user, uint32_t *ids, size_t max, size_t *n) {
  sqlite3_stmt *st = stmt(v, Q_DEV_LIST);
  int rc;
  *n = 0;
  sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max) ids[(*n)++] = (uint32_t)sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static int sq_devices_iter(void *v, int64_t account_id, sotto_store_dev_cb cb, void *ctx) {
  sqlite3_stmt *st = stmt(v, Q_DEV_ITER);
  int rc;
  sqlite3_bind_int64(st, 1, account_id);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct sotto_store_device d;
    memset(&d, 0, sizeof d);
    d.devkey = sqlite3_column_int64(st, 0);
    d.account_id = sqlite3_column_int64(st, 1);
    d.device_id = (uint32_t)sqlite3_column_int64(st, 2);
    d.created_day = sqlite3_column_int64(st, 3);
    d.last_seen_day = sqlite3_column_int64(st, 4);
    d.queue_count = sqlite3_column_int64(st, 5);
    d.queue_bytes = sqlite3_column_int64(st, 6);
    struct sotto_store_devinfo info;
    info.spk_id = (uint32_t)sqlite3_column_int64(st, 7);
    info.spk = sqlite3_column_type(st, 7) != SQLITE_NULL ? sqlite3_column_blob(st, 11) : NULL;
    info.spk_len = (size_t)sqlite3_column_bytes(st, 11);
    info.ec_count = sqlite3_column_int64(st, 8);
    info.kem_count = sqlite3_column_int64(st, 9);
    info.has_last_resort = sqlite3_column_int64(st, 10) > 0;
    if (cb(ctx, &d, &info) != 0) break;
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static int put_blob_id(struct sq *s, int which, int64_t devkey, int kind, const struct sotto_srv_blob_id *b) {
  sqlite3_stmt *st = stmt(s, which);
  int col = 2;
  sqlite3_bind_int64(st, 1, devkey);
  if (kind >= 0) sqlite3_bind_int(st, col++, kind);
  sqlite3_bind_int64(st, col++, b->id);
  sqlite3_bind_blob(st, col, b->p, (int)b->len, SQLITE_STATIC);
  return step_done(st);
}

static int sq_keys_put(void *v, int64_t devkey, const struct sotto_srv_keys *k) {
  struct sq *s = v;
  int rc = 0;
  uint16_t i;
  if (k->flags & SOTTO_SRV_KEYS_SIGNED) rc |= put_blob_id(s, Q_SPK_PUT, devkey, -1, &k->signed_prekey);
  if (k->flags & SOTTO_SRV_KEYS_LAST_RESORT) rc |= put_blob_id(s, Q_LR_PUT, devkey, -1, &k->last_resort);
  for (i = 0; i < k->n_ec && rc == 0; i++) rc = put_blob_id(s, Q_OT_PUT, devkey, 0, &k->ec[i]);
  for (i = 0; i < k->n_kem && rc == 0; i++) rc = put_blob_id(s, Q_OT_PUT, devkey, 1, &k->kem[i]);
  return rc ? SOTTO_ERR_STORE : 0;
}

static int count_kind(struct sq *s, int64_t devkey, int kind, int64_t *n) {
  sqlite3_stmt *st = stmt(s, Q_OT_COUNT);
  int rc;
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_int(st, 2, kind);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *n = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : SOTTO_ERR_STORE;
}

static int sq_keys_count(void *v, int64_t devkey, int64_t *ec, int64_t *kem) {
  int rc = count_kind(v, devkey, 0, ec);
  return rc ? rc : count_kind(v, devkey, 1, kem);
}

/* Takes the lowest-id one-time key of a kind: returns 1 if none is left. */
static int take_onetime(struct sq *s, int64_t devkey, int kind, uint32_t *id, uint8_t *buf, size_t *len) {
  sqlite3_stmt *st = stmt(s, Q_OT_FIRST);
  int rc;
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_int(st, 2, kind);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *id = (uint32_t)sqlite3_column_int64(st, 0);
    copy_blob(st, 1, buf, SOTTO_SRV_MAX_KEY_BLOB, len);
  }
  sqlite3_reset(st);
  if (rc == SQLITE_DONE) return 1;
  if (rc != SQLITE_ROW) return SOTTO_ERR_STORE;
  st = stmt(s, Q_OT_DEL);
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_int(st, 2, kind);
  sqlite3_bind_int64(st, 3, *id);
  return step_done(st);
}

static int sq_bundle_take(void *v, int64_t devkey, struct sotto_srv_bundle_buf *out) {
  struct sq *s = v;
  sqlite3_stmt *st = stmt(s, Q_SPK_GET);
  int rc;
  sqlite3_bind_int64(st, 1, devkey);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    out->spk_id = (uint32_t)sqlite3_column_int64(st, 0);
    copy_blob(st, 1, out->spk, sizeof out->spk, &out->spk_len);
    copy_blob(st, 2, out->identity, sizeof out->identity, &out->identity_len);
  }
  sqlite3_reset(st);
  if (rc == SQLITE_DONE) return 1;
  if (rc != SQLITE_ROW) return SOTTO_ERR_STORE;

  rc = take_onetime(s, devkey, 0, &out->ec_id, out->ec, &out->ec_len);
  if (rc < 0) return rc;
  out->has_ec = rc == 0;
  rc = take_onetime(s, devkey, 1, &out->kem_id, out->kem, &out->kem_len);
  if (rc < 0) return rc;
  out->kem_kind = rc == 0 ? 1 : 0;
  if (!out->kem_kind) {
    /* KEM one-time keys exhausted: fall back to the last-resort key. */
    st = stmt(s, Q_LR_GET);
    sqlite3_bind_int64(st, 1, devkey);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      out->kem_kind = 2;
      out->kem_id = (uint32_t)sqlite3_column_int64(st, 0);
      copy_blob(st, 1, out->kem, sizeof out->kem, &out->kem_len);
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SOTTO_ERR_STORE;
  }
  return 0;
}

static int queue_add(struct sq *s, int64_t devkey, int64_t n, int64_t bytes) {
  sqlite3_stmt *st = stmt(s, Q_QUEUE_ADD);
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_int64(st, 2, n);
  sqlite3_bind_int64(st, 3, bytes);
  return step_done(st);
}

static int sq_msg_insert(void *v, int64_t devkey, struct sotto_store_env *e) {
  struct sq *s = v;
  sqlite3_stmt *st = stmt(s, Q_MSG_INS);
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_text(st, 2, e->sender, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, e->sender_device);
  sqlite3_bind_int64(st, 4, e->device_id);
  sqlite3_bind_int(st, 5, e->type);
  sqlite3_bind_int64(st, 6, e->timestamp_ms);
  sqlite3_bind_blob(st, 7, e->body, (int)e->body_len, SQLITE_STATIC);
  if (step_done(st) != 0) return SOTTO_ERR_STORE;
  e->id = sqlite3_last_insert_rowid(s->db);
  return dc_add(s, devkey, 1, (int64_t)e->body_len);
}

static int sq_msg_delete(void *v, int64_t devkey, int64_t id, int *found) {
  struct sq *s = v;
  sqlite3_stmt *st = stmt(s, Q_MSG_LEN);
  int rc;
  int64_t bytes = 0;
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_int64(st, 2, id);
  rc = sqlite3_step(st);
  *found = rc == SQLITE_ROW;
  if (rc == SQLITE_ROW) bytes = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SOTTO_ERR_STORE;
  if (!*found) return 0;
  st = stmt(s, Q_MSG_DEL);
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_int64(st, 2, id);
  if (step_done(st) != 0) return SOTTO_ERR_STORE;
  return dc_add(s, devkey, -1, -bytes);
}

static int sq_msg_fetch(void *v, int64_t devkey, int64_t after_id, int limit, sotto_store_env_cb cb,
                        void *ctx) {
  sqlite3_stmt *st = stmt(v, Q_MSG_FETCH);
  int rc;
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_int64(st, 2, after_id);
  sqlite3_bind_int(st, 3, limit);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct sotto_store_env e;
    e.id = sqlite3_column_int64(st, 0);
    e.sender = (const char *)sqlite3_column_text(st, 1);
    e.sender_device = (uint32_t)sqlite3_column_int64(st, 2);
    e.device_id = (uint32_t)sqlite3_column_int64(st, 3);
    e.type = (uint8_t)sqlite3_column_int(st, 4);
    e.timestamp_ms = sqlite3_column_int64(st, 5);
    e.body = sqlite3_column_blob(st, 6);
    e.body_len = (size_t)sqlite3_column_bytes(st, 6);
    if (!e.sender) e.sender = "";
    if (cb(ctx, &e) != 0) break;
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static int sq_expire(void *v, int64_t before_ms, int64_t *deleted) {
  struct sq *s = v;
  sqlite3_stmt *st = stmt(s, Q_MSG_EXPIRE);
  sqlite3_bind_int64(st, 1, before_ms);
  if (step_done(st) != 0) return SOTTO_ERR_STORE;
  *deleted = sqlite3_changes64(s->db);
  /* Rare (a timer): recount instead of tracking every deleted row. The
   * recount includes this transaction's inserts and deletes, so the pending
   * counters are dropped rather than added on top. */
  if (*deleted > 0) {
    dc_clear(s);
    return step_done(stmt(s, Q_QUEUE_RECOUNT));
  }
  return 0;
}

static int sq_queue_total(void *v, int64_t *count, int64_t *bytes) {
  sqlite3_stmt *st = stmt(v, Q_QUEUE_TOTAL);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *count = sqlite3_column_int64(st, 0);
    *bytes = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : SOTTO_ERR_STORE;
}

static int sq_max_msg_id(void *v, int64_t *id) {
  sqlite3_stmt *st = stmt(v, Q_MSG_MAX);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *id = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : SOTTO_ERR_STORE;
}

static const struct sotto_store_ops sqlite_ops = {
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .close = sq_close,
    .account_create = sq_account_create,
    .account_get = sq_account_get,
    .device_add = sq_device_add,
    .device_lookup = sq_device_lookup,
    .device_route = sq_device_route,
    .device_seen = sq_device_seen,
    .devices_list = sq_devices_list,
    .devices_iter = sq_devices_iter,
    .keys_put = sq_keys_put,
    .keys_count = sq_keys_count,
    .bundle_take = sq_bundle_take,
    .msg_insert = sq_msg_insert,
    .msg_delete = sq_msg_delete,
    .msg_fetch = sq_msg_fetch,
    .expire = sq_expire,
    .queue_total = sq_queue_total,
    .max_msg_id = sq_max_msg_id,
};

int sotto__store_sqlite_open(struct sotto_store *st, const char *dir) {
  struct sq *s;
  char path[4096];
  int i;
  if (snprintf(path, sizeof path, "%s/sotto.db", dir) >= (int)sizeof path) return SOTTO_ERR_USAGE;
  if ((s = calloc(1, sizeof *s)) == NULL) return SOTTO_ERR_NOMEM;
  if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL) !=
      SQLITE_OK)
    goto fail;
  sqlite3_busy_timeout(s->db, 5000);
  /* WAL + NORMAL: a commit survives a process crash (the WAL is written
   * before COMMIT returns); secure_delete overwrites acknowledged messages. */
  if (sqlite3_exec(s->db,
                   "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA secure_delete=ON;"
                   " PRAGMA foreign_keys=OFF;",
                   NULL, NULL, NULL) != SQLITE_OK)
    goto fail;
  if (sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK) goto fail;
  for (i = 0; i < Q_COUNT; i++)
    if (sqlite3_prepare_v3(s->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL) != SQLITE_OK) {
      fprintf(stderr, "level=error event=sql_prepare err=\"%s\"\n", sqlite3_errmsg(s->db));
      goto fail;
    }
  st->ops = &sqlite_ops;
  st->impl = s;
  return 0;
fail:
  sq_close(s);
  return SOTTO_ERR_STORE;
}

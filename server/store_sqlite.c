/* SPDX-License-Identifier: Apache-2.0 */
/* store_sqlite.c: the embedded store backend (SQLite, WAL, synchronous=NORMAL).
 *
 * One database file DIR/sotto.db holds accounts, devices, pre-keys and the
 * per-device queues. What is deliberately NOT stored: IP addresses, contact
 * lists, a log of delivered messages, anything about a message once it has
 * been acknowledged (secure_delete overwrites its cells). Statements are
 * prepared once at open and reused. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto.h" /* sotto__srv_username_canon, for databases made before accounts.canon */
#include "store.h"

enum {
  Q_ACC_INS,
  Q_ACC_HIGH,
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
  Q_MSG_EXPIRING,
  Q_QUEUE_RECOUNT,
  Q_QUEUE_TOTAL,
  Q_MSG_MAX,
  Q_EPOCH_GET,
  Q_EPOCH_SET,
  Q_BEGIN,
  Q_COMMIT,
  Q_ROLLBACK,
  Q_SAVEPOINT,
  Q_RELEASE,
  Q_ROLLBACK_TO,
  Q_ACC_CANON,
  Q_SENDER_COUNT,
  Q_DEV_FIND,
  Q_DEV_DEL_MSGS,
  Q_DEV_DEL_OT,
  Q_DEV_DEL_SPK,
  Q_DEV_DEL_LR,
  Q_DEV_DEL,
  Q_DEV_SECRET,
  Q_DEV_CONFIRM,
  Q_DEV_EXISTS,
  Q_DEV_IS,
  Q_SENDER_SUMS,
  Q_DEVLIST_IDS,
  Q_KT_VALUE_PUT,
  Q_KT_VALUE_GET,
  Q_COUNT
};

static const char *const sql_text[Q_COUNT] = {
    /* An account id is never given twice (see account_high in the schema). */
    [Q_ACC_INS] = "INSERT INTO accounts(id, username, identity, created_day, canon) VALUES("
                  "max(coalesce((SELECT id FROM account_high WHERE one = 1), 0),"
                  " coalesce((SELECT max(id) FROM accounts), 0)) + 1, ?1, ?2, ?3, ?4)",
    [Q_ACC_HIGH] = "INSERT OR REPLACE INTO account_high(one, id) VALUES(1, ?1)",
    [Q_ACC_GET] = "SELECT id, created_day, identity FROM accounts WHERE username = ?1",
    [Q_DEV_MAX] = "SELECT count(*), coalesce(max(device_id), 0) FROM devices WHERE account_id = ?1",
    [Q_DEV_INS] = "INSERT INTO devices(account_id, device_id, secret_hash, created_day, last_seen_day)"
                  " VALUES(?1, ?2, ?3, ?4, ?4)",
    [Q_DEV_LOOKUP] = "SELECT d.devkey, d.account_id, d.device_id, d.secret_hash, d.created_day,"
                     " d.last_seen_day, d.queue_count, d.queue_bytes, d.prev_secret_hash FROM devices d"
                     " JOIN accounts a ON a.id = d.account_id WHERE a.username = ?1 AND d.device_id = ?2",
    [Q_DEV_SEEN] = "UPDATE devices SET last_seen_day = ?2 WHERE devkey = ?1",
    [Q_DEV_LIST] = "SELECT d.device_id, d.last_seen_day FROM devices d JOIN accounts a ON a.id = d.account_id"
                   " WHERE a.username = ?1 ORDER BY d.device_id",
    [Q_DEV_ITER] = "SELECT d.devkey, d.account_id, d.device_id, d.created_day, d.last_seen_day,"
                   " d.queue_count, d.queue_bytes,"
                   " (SELECT key_id FROM signed_prekeys s WHERE s.devkey = d.devkey),"
                   " (SELECT count(*) FROM onetime o WHERE o.devkey = d.devkey AND o.kind = 0),"
                   " (SELECT count(*) FROM onetime o WHERE o.devkey = d.devkey AND o.kind = 1),"
                   " (SELECT count(*) FROM last_resort l WHERE l.devkey = d.devkey),"
                   " (SELECT blob FROM signed_prekeys s WHERE s.devkey = d.devkey), d.epoch"
                   " FROM devices d WHERE d.account_id = ?1 ORDER BY d.device_id",
    [Q_SPK_PUT] = "INSERT OR REPLACE INTO signed_prekeys(devkey, key_id, blob) VALUES(?1, ?2, ?3)",
    [Q_LR_PUT] = "INSERT OR REPLACE INTO last_resort(devkey, key_id, blob) VALUES(?1, ?2, ?3)",
    [Q_OT_PUT] = "INSERT OR REPLACE INTO onetime(devkey, kind, key_id, blob) VALUES(?1, ?2, ?3, ?4)",
    [Q_OT_COUNT] = "SELECT count(*) FROM onetime WHERE devkey = ?1 AND kind = ?2",
    [Q_SPK_GET] = "SELECT s.key_id, s.blob, coalesce(d.identity, a.identity) FROM signed_prekeys s JOIN devices d"
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
    [Q_MSG_LEN] = "SELECT length(body), sender FROM messages WHERE id = ?2 AND devkey = ?1",
    [Q_MSG_DEL] = "DELETE FROM messages WHERE id = ?2 AND devkey = ?1",
    [Q_MSG_FETCH] = "SELECT id, sender, sender_device, device_id, type, ts, body FROM messages"
                    " WHERE devkey = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    [Q_MSG_EXPIRE] = "DELETE FROM messages WHERE ts < ?1",
    [Q_MSG_EXPIRING] = "SELECT m.id, m.devkey, m.device_id, a.username, m.sender, m.sender_device, m.ts"
                       " FROM messages m JOIN devices d ON d.devkey = m.devkey JOIN accounts a ON a.id = d.account_id"
                       " WHERE m.ts < ?1 AND m.sender <> '' ORDER BY m.sender, m.sender_device, m.devkey, m.id"
                       " LIMIT ?2",
    [Q_QUEUE_RECOUNT] = "UPDATE devices SET"
                        " queue_count = (SELECT count(*) FROM messages m WHERE m.devkey = devices.devkey),"
                        " queue_bytes = (SELECT coalesce(sum(length(body)), 0) FROM messages m"
                        " WHERE m.devkey = devices.devkey)",
    [Q_QUEUE_TOTAL] = "SELECT coalesce(sum(queue_count), 0), coalesce(sum(queue_bytes), 0) FROM devices",
    [Q_MSG_MAX] = "SELECT coalesce(max(id), 0) FROM messages",
    [Q_EPOCH_GET] = "SELECT epoch FROM devices WHERE devkey = ?1",
    [Q_EPOCH_SET] = "UPDATE devices SET epoch = max(epoch, ?2) WHERE devkey = ?1",
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVEPOINT] = "SAVEPOINT op",
    [Q_RELEASE] = "RELEASE op",
    [Q_ROLLBACK_TO] = "ROLLBACK TO op",
    [Q_ACC_CANON] = "SELECT 1 FROM accounts WHERE canon = ?1",
    [Q_SENDER_COUNT] = "SELECT count(*) FROM messages WHERE devkey = ?1 AND sender = ?2",
    [Q_DEV_FIND] = "SELECT devkey, queue_bytes FROM devices WHERE account_id = ?1 AND device_id = ?2",
    [Q_DEV_DEL_MSGS] = "DELETE FROM messages WHERE devkey = ?1",
    [Q_DEV_DEL_OT] = "DELETE FROM onetime WHERE devkey = ?1",
    [Q_DEV_DEL_SPK] = "DELETE FROM signed_prekeys WHERE devkey = ?1",
    [Q_DEV_DEL_LR] = "DELETE FROM last_resort WHERE devkey = ?1",
    [Q_DEV_DEL] = "DELETE FROM devices WHERE devkey = ?1",
    [Q_DEV_SECRET] = "UPDATE devices SET secret_hash = ?2, prev_secret_hash = ?3 WHERE devkey = ?1",
    [Q_DEV_CONFIRM] = "UPDATE devices SET prev_secret_hash = NULL WHERE devkey = ?1 AND prev_secret_hash IS NOT NULL",
    [Q_DEV_EXISTS] = "SELECT 1 FROM devices WHERE devkey = ?1",
    [Q_DEV_IS] = "SELECT 1 FROM devices WHERE devkey = ?1 AND account_id = ?2 AND device_id = ?3",
    [Q_SENDER_SUMS] = "SELECT sender, sum(length(body)) FROM messages GROUP BY sender",
    [Q_DEVLIST_IDS] = "SELECT l.ids FROM devlists l WHERE l.account_id ="
                      " (SELECT id FROM accounts WHERE username = ?1) ORDER BY l.version DESC LIMIT 1",
    /* key transparency: each logged REGISTER reads one and writes two */
    [Q_KT_VALUE_PUT] = "INSERT OR REPLACE INTO kt_values(label, version, value, opening) VALUES(?1, ?2, ?3, ?4)",
    [Q_KT_VALUE_GET] = "SELECT version, value, opening FROM kt_values WHERE label = ?1",
};

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS accounts(id INTEGER PRIMARY KEY, username TEXT NOT NULL UNIQUE,"
    " identity BLOB NOT NULL, created_day INTEGER NOT NULL);"
    /* The highest account id ever given. accounts.id alone (INTEGER PRIMARY
     * KEY, no AUTOINCREMENT) gave a deleted newest account's id to the next
     * one, which then owned what still named the old id (its blobs: quota,
     * the requisition report). Stores made before this table get the
     * highest id anything still names at their first open. */
    "CREATE TABLE IF NOT EXISTS account_high(one INTEGER PRIMARY KEY CHECK(one = 1), id INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS devices(devkey INTEGER PRIMARY KEY AUTOINCREMENT, account_id INTEGER NOT NULL,"
    " device_id INTEGER NOT NULL, secret_hash BLOB NOT NULL, created_day INTEGER NOT NULL,"
    " last_seen_day INTEGER NOT NULL, queue_count INTEGER NOT NULL DEFAULT 0,"
    " queue_bytes INTEGER NOT NULL DEFAULT 0, epoch INTEGER NOT NULL DEFAULT 0, UNIQUE(account_id, device_id));"
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
    "CREATE INDEX IF NOT EXISTS messages_ts ON messages(ts);"
    "CREATE TABLE IF NOT EXISTS held_names(canon TEXT PRIMARY KEY, until_ms INTEGER NOT NULL);"
    "CREATE TABLE IF NOT EXISTS recovery(account_id INTEGER PRIMARY KEY, hash BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS kt_entries(idx INTEGER PRIMARY KEY, head BLOB NOT NULL, upd BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS kt_values(label TEXT PRIMARY KEY, version INTEGER NOT NULL,"
    " value BLOB NOT NULL, opening BLOB NOT NULL);"
    /* each configured witness's newest accepted cosignature (srv_kt.c) */
    "CREATE TABLE IF NOT EXISTS kt_cosigs(witness BLOB PRIMARY KEY, size INTEGER NOT NULL, head BLOB NOT NULL,"
    " cosig BLOB NOT NULL) WITHOUT ROWID;"
    /* signed device lists (docs/multi-device.md): every version, ids as u32 big-endian */
    "CREATE TABLE IF NOT EXISTS devlists(account_id INTEGER NOT NULL, version INTEGER NOT NULL,"
    " ms INTEGER NOT NULL, ids BLOB NOT NULL, list BLOB NOT NULL, PRIMARY KEY(account_id, version))"
    " WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS blobs(id BLOB PRIMARY KEY, account_id INTEGER NOT NULL, size INTEGER NOT NULL,"
    " fetches INTEGER NOT NULL, committed INTEGER NOT NULL DEFAULT 0, created_ms INTEGER NOT NULL,"
    " expires_ms INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE INDEX IF NOT EXISTS blobs_account ON blobs(account_id);"
    "CREATE INDEX IF NOT EXISTS blobs_expires ON blobs(expires_ms);"
    /* the devices that said BLOB_DONE, each counted once (at most the
     * blob's declared fetches: the blob and these rows go at the last) */
    "CREATE TABLE IF NOT EXISTS blob_fetches(id BLOB NOT NULL, account_id INTEGER NOT NULL,"
    " device_id INTEGER NOT NULL, PRIMARY KEY(id, account_id, device_id)) WITHOUT ROWID;";

/* The routing cache (device_route, used by SEND) and the queue counters.
 *
 * Every SEND used to run a join (username -> account -> device) and every
 * SEND and ACK an UPDATE of the device row's queue counters. Now:
 *  - an entry per device that messages are sent to holds its devkey and its
 *    committed queue counters, found by (username, device id): the mapping
 *    changes only when a device row goes, always through device_remove,
 *    which drops the entry (dc_forget); an account is deleted (UNREGISTER)
 *    or recovered (RECOVER) only after each of its devices went that way,
 *    and accounts are never renamed;
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
  /* device_is found the row (devkey, is_account, is_device): a device row
   * goes only through device_remove, which drops the entry (dc_forget) */
  uint8_t is_known;
  uint32_t is_device;
  int64_t is_account;
  char user[SOTTO_STORE_USER_MAX + 1];
  struct dcache *knext, *nnext, *dnext; /* by devkey, by name, changed in this transaction */
};

/* devlist_ids by username (every SEND asks it for its recipient): the
 * newest list's ids, or that there is none, in the open transaction's view.
 * Slot hash(username) % DL_SLOTS, overwritten by another name; valid while
 * its gen is the store's dl_gen, which every write that can change an
 * answer moves on (devlist_put, devlist_clear, account_create,
 * account_delete) and so do rollback and rollback_to. Allocated on first
 * use (the writer only), about 360 KiB. */
#define DL_SLOTS 4096

struct dlcache {
  uint64_t gen; /* 0: empty */
  uint32_t ids[SOTTO_STORE_MAX_DEVLIST_IDS];
  uint8_t n, none, ulen; /* none: the query found no list (devlist_ids' 1) */
  char user[SOTTO_STORE_USER_MAX + 1];
};

/* Per-sender counts of a queue (max-queue-per-sender): filled from the
 * database on first use for a (device, sender) pair, then kept by inserts
 * and deletes; always the open transaction's view, so emptied on rollback
 * and by expiry and device removal. Bounded like the routing cache. */
struct scache {
  int64_t devkey, n;
  char sender[SOTTO_STORE_USER_MAX + 1];
  struct scache *next;
};

/* What an ACK needs to know of the envelope it deletes (its size and sender,
 * for the queue counters and the per-sender sums), kept from the INSERT so
 * that the delete is one statement instead of a SELECT and a DELETE: slot
 * id % MC_SLOTS, overwritten by a later id (that envelope then takes the
 * SELECT path). An entry is trusted only together with the DELETE's own
 * result: the row (id, devkey) was there and is gone. Ids can come back
 * only after a rollback (sqlite_sequence is rolled back too), which empties
 * the table; an entry goes (zeroed) with its envelope. Allocated on the
 * first insert (the writer only), about 1 MiB. */
#define MC_SLOTS 16384

struct mcache {
  int64_t id, devkey, len;
  char sender[SOTTO_STORE_USER_MAX + 1];
};

/* Ciphertext bytes queued per sender account (max-sender-bytes), in the
 * open transaction's view: built from the database at open and after a
 * rollback, an expiry or a device removal; kept by inserts and deletes. One
 * entry per account that has envelopes waiting. */
struct sq {
  sqlite3 *db;
  struct sotto__sums sb;
  sqlite3_stmt *q[Q_COUNT];
  struct dcache *bykey[DC_BUCKETS], *byname[DC_BUCKETS];
  struct dcache *dirty;
  size_t dc_n;
  struct scache *sc[DC_BUCKETS];
  size_t sc_n;
  struct mcache *mc; /* MC_SLOTS entries, or NULL */
  struct dlcache *dl; /* DL_SLOTS entries, or NULL */
  uint64_t dl_gen;    /* >= 1 */
  /* Ciphertext bytes in all queues: committed, and this transaction's
   * change (max-store-bytes is checked against both). */
  int64_t total, txn_bytes;
  int full; /* the last commit failed on a full disk (the rollback clears SQLite's own code) */
  /* Inside a request's savepoint: the counter changes (routing cache,
   * per-sender counts and sums, txn_bytes) of each envelope inserted or
   * deleted, so that rollback_to undoes them with the rows (a SEND_MULTI
   * whose third insert failed had its first two counted at commit). */
  struct undo *ul;
  size_t ul_n, ul_cap;
  int in_sp;
};

struct undo {
  int64_t devkey, n, bytes;
  char sender[SOTTO_STORE_USER_MAX + 1];
};

static uint32_t sc_hash(int64_t devkey, const char *sender) {
  uint32_t h = 2166136261u ^ (uint32_t)devkey ^ (uint32_t)((uint64_t)devkey >> 32);
  for (; *sender; sender++) h = (h ^ (uint8_t)*sender) * 16777619u;
  return h % DC_BUCKETS;
}

static struct scache *sc_find(struct sq *s, int64_t devkey, const char *sender) {
  struct scache *e;
  for (e = s->sc[sc_hash(devkey, sender)]; e; e = e->next)
    if (e->devkey == devkey && strcmp(e->sender, sender) == 0) return e;
  return NULL;
}

static void sc_clear(struct sq *s) {
  size_t i;
  for (i = 0; i < DC_BUCKETS; i++)
    while (s->sc[i]) {
      struct scache *e = s->sc[i];
      s->sc[i] = e->next;
      free(e);
    }
  s->sc_n = 0;
}

static sqlite3_stmt *stmt(struct sq *s, int which);

static int sb_reload(struct sq *s) {
  sqlite3_stmt *st;
  int rc;
  sotto__sums_clear(&s->sb);
  st = stmt(s, Q_SENDER_SUMS);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    if (sotto__sums_add(&s->sb, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int64(st, 1)) != 0) {
      rc = SQLITE_NOMEM;
      break;
    }
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static int sq_sender_bytes(void *v, const char *sender, int64_t *bytes) {
  struct sq *s = v;
  *bytes = sotto__sums_get(&s->sb, sender);
  return 0;
}

/* A counted envelope from sender came (+1) or went (-1). */
static void sc_bump(struct sq *s, int64_t devkey, const char *sender, int d) {
  struct scache *e = sender ? sc_find(s, devkey, sender) : NULL;
  if (e) e->n += d;
}

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

static int total_reload(struct sq *s);

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
  s->txn_bytes += bytes;
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

/* A full disk (or file system): SQLITE_FULL, or an I/O error from ENOSPC. */
static int is_full(sqlite3 *db) {
  return sqlite3_errcode(db) == SQLITE_FULL || sqlite3_system_errno(db) == ENOSPC;
}

static int sq_begin(void *v) {
  struct sq *s = v;
  if (s->dc_n > DC_MAX) dc_clear(s);
  if (s->sc_n > DC_MAX) sc_clear(s);
  s->txn_bytes = 0;
  s->full = 0;
  return step_done(stmt(s, Q_BEGIN));
}

static int sq_savepoint(void *v) {
  struct sq *s = v;
  s->ul_n = 0;
  s->in_sp = 1;
  return step_done(stmt(v, Q_SAVEPOINT));
}

static int sq_release(void *v) {
  struct sq *s = v;
  s->ul_n = 0;
  s->in_sp = 0;
  return step_done(stmt(v, Q_RELEASE));
}

static void mc_clear(struct sq *s);
static void sc_bump(struct sq *s, int64_t devkey, const char *sender, int d);
static int dc_add(struct sq *s, int64_t devkey, int64_t n, int64_t bytes);

static int sq_rollback_to(void *v) {
  struct sq *s = v;
  int rc = step_done(stmt(v, Q_ROLLBACK_TO));
  /* the counters of the envelopes the savepoint's rows held, undone
   * (newest first; each entry exists: made by the change it undoes) */
  while (s->ul_n > 0) {
    const struct undo *u = &s->ul[--s->ul_n];
    sc_bump(s, u->devkey, u->sender, (int)-u->n);
    if (rc == 0 && sotto__sums_add(&s->sb, u->sender, -u->bytes) != 0) rc = SOTTO_ERR_NOMEM;
    if (rc == 0) rc = dc_add(s, u->devkey, -u->n, -u->bytes);
  }
  s->in_sp = 0;
  mc_clear(v); /* ids inserted since the savepoint may come again */
  s->dl_gen++;
  return rc ? rc : step_done(stmt(v, Q_RELEASE));
}
/* SQLite undoes a failed statement alone (its statement journal), except
 * that a full disk, an I/O error or no memory may roll back the whole
 * transaction: then autocommit is back on. */
static int sq_txn_alive(void *v) {
  struct sq *s = v;
  return sqlite3_get_autocommit(s->db) ? SOTTO_ERR_STORE : 0;
}

/* Checkpoint and truncate the WAL: the frames written by the inserts of
 * envelopes that are now deleted go with it. With a reader in the WAL the
 * checkpoint cannot finish now; the next one will. */
static void sq_wal_truncate(void *v) {
  struct sq *s = v;
  (void)sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
}

/* Writes the summed queue counters, then commits; only once the commit
 * succeeded do the cached committed counters move. */
static int sq_commit(void *v) {
  struct sq *s = v;
  struct dcache *e;
  for (e = s->dirty; e; e = e->dnext)
    if ((e->dn || e->dbytes) && queue_add(s, e->devkey, e->dn, e->dbytes) != 0) {
      s->full = is_full(s->db);
      return SOTTO_ERR_STORE;
    }
  if (step_done(stmt(s, Q_COMMIT)) != 0) {
    s->full = is_full(s->db);
    return SOTTO_ERR_STORE;
  }
  s->total += s->txn_bytes;
  s->txn_bytes = 0;
  while ((e = s->dirty) != NULL) {
    s->dirty = e->dnext;
    e->n += e->dn;
    e->bytes += e->dbytes;
    e->dn = e->dbytes = 0;
    e->dirty = 0;
  }
  return 0;
}

static void mc_clear(struct sq *s) {
  if (s->mc) memset(s->mc, 0, MC_SLOTS * sizeof *s->mc);
}

static void sq_rollback(void *v) {
  ((struct sq *)v)->ul_n = 0;
  ((struct sq *)v)->in_sp = 0;
  ((struct sq *)v)->dl_gen++;
  dc_clear(v);
  sc_clear(v);
  mc_clear(v);
  (void)step_done(stmt(v, Q_ROLLBACK));
  (void)total_reload(v);
}

static void sq_close(void *v) {
  struct sq *s = v;
  int i;
  if (!s) return;
  for (i = 0; i < Q_COUNT; i++) sqlite3_finalize(s->q[i]);
  sqlite3_close(s->db);
  dc_clear(s);
  sc_clear(s);
  sotto__sums_clear(&s->sb);
  mc_clear(s);
  free(s->ul);
  free(s->mc);
  if (s->dl) memset(s->dl, 0, DL_SLOTS * sizeof *s->dl);
  free(s->dl);
  free(s);
}

static int sq_account_create(void *v, const char *user, const char *canon, const uint8_t *ik, size_t ik_len,
                             int64_t day, int64_t *account_id) {
  struct sq *s = v;
  sqlite3_stmt *st = stmt(s, Q_ACC_CANON);
  int rc;
  s->dl_gen++; /* devlist_ids' cache */
  /* Look-alike names are one name: refused like a taken one. */
  sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_ROW) return SOTTO_ERR_DUPLICATE;
  if (rc != SQLITE_DONE) return SOTTO_ERR_STORE;
  st = stmt(s, Q_ACC_INS);
  sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, ik, (int)ik_len, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, day);
  sqlite3_bind_text(st, 4, canon, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_CONSTRAINT) return SOTTO_ERR_DUPLICATE;
  if (rc != SQLITE_DONE) return SOTTO_ERR_STORE;
  *account_id = sqlite3_last_insert_rowid(s->db);
  st = stmt(s, Q_ACC_HIGH);
  sqlite3_bind_int64(st, 1, *account_id);
  return step_done(st) == 0 ? 0 : SOTTO_ERR_STORE;
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
    memset(out->prev_hash, 0, 32);
    out->has_prev = sqlite3_column_type(st, 8) == SQLITE_BLOB && sqlite3_column_bytes(st, 8) == 32;
    if (out->has_prev) copy_blob(st, 8, out->prev_hash, 32, &n);
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

static int sq_device_epoch_raise(void *v, int64_t devkey, int64_t epoch, int64_t *old) {
  sqlite3_stmt *st = stmt(v, Q_EPOCH_GET);
  int rc;
  sqlite3_bind_int64(st, 1, devkey);
  rc = sqlite3_step(st);
  *old = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_reset(st);
  if (rc != SQLITE_ROW) return rc == SQLITE_DONE ? 1 : SOTTO_ERR_STORE;
  if (epoch <= *old) return 0;
  st = stmt(v, Q_EPOCH_SET);
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_int64(st, 2, epoch);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
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
    if (ulen > SOTTO_STORE_USER_MAX) return 1;
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

static int sq_devices_list(void *v, const char *user, uint32_t *ids, int64_t *days, size_t max, size_t *n) {
  sqlite3_stmt *st = stmt(v, Q_DEV_LIST);
  int rc;
  *n = 0;
  sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW && *n < max) {
    if (days) days[*n] = sqlite3_column_int64(st, 1);
    ids[(*n)++] = (uint32_t)sqlite3_column_int64(st, 0);
  }
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
    info.epoch = sqlite3_column_int64(st, 12);
    if (cb(ctx, &d, &info) != 0) break;
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static int put_blob_id(struct sq *s, int which, int64_t devkey, int kind, const struct sotto_store_key *b) {
  sqlite3_stmt *st = stmt(s, which);
  int col = 2;
  sqlite3_bind_int64(st, 1, devkey);
  if (kind >= 0) sqlite3_bind_int(st, col++, kind);
  sqlite3_bind_int64(st, col++, b->id);
  sqlite3_bind_blob(st, col, b->p, (int)b->len, SQLITE_STATIC);
  return step_done(st);
}

static int sq_keys_put(void *v, int64_t devkey, const struct sotto_store_keys *k) {
  struct sq *s = v;
  int rc = 0;
  size_t i;
  if (k->has_signed) rc |= put_blob_id(s, Q_SPK_PUT, devkey, -1, &k->signed_prekey);
  if (k->has_last_resort) rc |= put_blob_id(s, Q_LR_PUT, devkey, -1, &k->last_resort);
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
    copy_blob(st, 1, buf, SOTTO_STORE_MAX_KEY_BLOB, len);
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

static int sq_bundle_take(void *v, int64_t devkey, int onetime, struct sotto_store_bundle *out) {
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

  rc = onetime ? take_onetime(s, devkey, 0, &out->ec_id, out->ec, &out->ec_len) : 1;
  if (rc < 0) return rc;
  out->has_ec = rc == 0;
  rc = onetime ? take_onetime(s, devkey, 1, &out->kem_id, out->kem, &out->kem_len) : 1;
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

/* An envelope of sender in devkey's queue counted (n = 1, bytes) or
 * uncounted (n = -1, -bytes); inside a savepoint, noted for rollback_to. */
static int counted(struct sq *s, int64_t devkey, const char *sender, int64_t n, int64_t bytes) {
  if (s->in_sp) {
    struct undo *u;
    if (s->ul_n == s->ul_cap) {
      size_t cap = s->ul_cap ? s->ul_cap * 2 : 64;
      struct undo *p = realloc(s->ul, cap * sizeof *p);
      if (!p) return SOTTO_ERR_NOMEM;
      s->ul = p;
      s->ul_cap = cap;
    }
    u = &s->ul[s->ul_n++];
    u->devkey = devkey;
    u->n = n;
    u->bytes = bytes;
    snprintf(u->sender, sizeof u->sender, "%s", sender);
  }
  sc_bump(s, devkey, sender, (int)n);
  if (sotto__sums_add(&s->sb, sender, bytes) != 0) return SOTTO_ERR_NOMEM;
  return dc_add(s, devkey, n, bytes);
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
  if (!s->mc) s->mc = calloc(MC_SLOTS, sizeof *s->mc);
  if (s->mc && strlen(e->sender) <= SOTTO_STORE_USER_MAX) {
    struct mcache *m = &s->mc[(uint64_t)e->id % MC_SLOTS];
    m->id = e->id;
    m->devkey = devkey;
    m->len = (int64_t)e->body_len;
    memcpy(m->sender, e->sender, strlen(e->sender) + 1);
  }
  return counted(s, devkey, e->sender, 1, (int64_t)e->body_len);
}

static int sq_msg_delete(void *v, int64_t devkey, int64_t id, int *found) {
  struct sq *s = v;
  struct mcache *m = s->mc ? &s->mc[(uint64_t)id % MC_SLOTS] : NULL;
  sqlite3_stmt *st;
  int rc;
  int64_t bytes = 0;
  char sender[SOTTO_STORE_USER_MAX + 1] = "";
  if (m && m->id == id && m->devkey == devkey) {
    /* Inserted by this process: one DELETE, whose change count says
     * whether the envelope was still there. */
    st = stmt(s, Q_MSG_DEL);
    sqlite3_bind_int64(st, 1, devkey);
    sqlite3_bind_int64(st, 2, id);
    if (step_done(st) != 0) return SOTTO_ERR_STORE;
    *found = sqlite3_changes(s->db) == 1;
    if (!*found) return 0;
    bytes = m->len;
    memcpy(sender, m->sender, sizeof sender);
    memset(m, 0, sizeof *m);
    return counted(s, devkey, sender, -1, -bytes);
  }
  st = stmt(s, Q_MSG_LEN);
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_int64(st, 2, id);
  rc = sqlite3_step(st);
  *found = rc == SQLITE_ROW;
  if (rc == SQLITE_ROW) {
    const char *snd = (const char *)sqlite3_column_text(st, 1);
    bytes = sqlite3_column_int64(st, 0);
    if (snd && strlen(snd) <= SOTTO_STORE_USER_MAX) memcpy(sender, snd, strlen(snd) + 1);
  }
  sqlite3_reset(st);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SOTTO_ERR_STORE;
  if (!*found) return 0;
  st = stmt(s, Q_MSG_DEL);
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_int64(st, 2, id);
  if (step_done(st) != 0) return SOTTO_ERR_STORE;
  if (m && m->id == id) memset(m, 0, sizeof *m);
  return counted(s, devkey, sender, -1, -bytes);
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

static int sq_expire_scan(void *v, int64_t before_ms, int64_t limit, sotto_store_expiring_cb cb, void *ctx) {
  sqlite3_stmt *st = stmt(v, Q_MSG_EXPIRING);
  int rc, r = 0;
  sqlite3_bind_int64(st, 1, before_ms);
  sqlite3_bind_int64(st, 2, limit);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct sotto_store_expiring e;
    e.id = sqlite3_column_int64(st, 0);
    e.devkey = sqlite3_column_int64(st, 1);
    e.device_id = (uint32_t)sqlite3_column_int64(st, 2);
    e.recipient = (const char *)sqlite3_column_text(st, 3);
    e.sender = (const char *)sqlite3_column_text(st, 4);
    e.sender_device = (uint32_t)sqlite3_column_int64(st, 5);
    e.timestamp_ms = sqlite3_column_int64(st, 6);
    if (!e.recipient || !e.sender) continue;
    if ((r = cb(ctx, &e)) != 0) break;
  }
  sqlite3_reset(st);
  if (r) return r;
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
    sc_clear(s);
    if (step_done(stmt(s, Q_QUEUE_RECOUNT)) != 0) return SOTTO_ERR_STORE;
    /* The recount is this transaction's view: it becomes the total, with
     * nothing pending on top. */
    if (total_reload(s) != 0) return SOTTO_ERR_STORE;
  }
  return 0;
}

/* total = every queue's bytes as the connection sees them now. */
static int total_reload(struct sq *s) {
  sqlite3_stmt *st = stmt(s, Q_QUEUE_TOTAL);
  int rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) s->total = sqlite3_column_int64(st, 1);
  sqlite3_reset(st);
  s->txn_bytes = 0;
  if (rc != SQLITE_ROW) return SOTTO_ERR_STORE;
  return sb_reload(s);
}

static int sq_total_bytes(void *v, int64_t *bytes) {
  struct sq *s = v;
  *bytes = s->total + s->txn_bytes;
  return 0;
}

static int sq_sender_count(void *v, int64_t devkey, const char *sender, int64_t *n) {
  struct sq *s = v;
  struct scache *e = sc_find(s, devkey, sender);
  sqlite3_stmt *st;
  int rc;
  if (e) {
    *n = e->n;
    return 0;
  }
  if (strlen(sender) > SOTTO_STORE_USER_MAX) return SOTTO_ERR_USAGE;
  st = stmt(s, Q_SENDER_COUNT);
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_text(st, 2, sender, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) *n = sqlite3_column_int64(st, 0);
  sqlite3_reset(st);
  if (rc != SQLITE_ROW) return SOTTO_ERR_STORE;
  if ((e = calloc(1, sizeof *e)) == NULL) return SOTTO_ERR_NOMEM;
  e->devkey = devkey;
  e->n = *n;
  memcpy(e->sender, sender, strlen(sender) + 1);
  e->next = s->sc[sc_hash(devkey, sender)];
  s->sc[sc_hash(devkey, sender)] = e;
  s->sc_n++;
  return 0;
}

/* Drops the routing-cache entry of a removed device (its pending counter
 * changes go with its row). */
static void dc_forget(struct sq *s, int64_t devkey) {
  struct dcache **pp, *e = dc_by_key(s, devkey);
  if (!e) return;
  for (pp = &s->bykey[dc_key_hash(devkey) % DC_BUCKETS]; *pp; pp = &(*pp)->knext)
    if (*pp == e) {
      *pp = e->knext;
      break;
    }
  for (pp = &s->byname[e->nhash % DC_BUCKETS]; *pp; pp = &(*pp)->nnext)
    if (*pp == e) {
      *pp = e->nnext;
      break;
    }
  for (pp = &s->dirty; *pp; pp = &(*pp)->dnext)
    if (*pp == e) {
      *pp = e->dnext;
      break;
    }
  free(e);
  s->dc_n--;
}

static int sq_device_remove(void *v, int64_t account_id, uint32_t device_id, int64_t *devkey) {
  struct sq *s = v;
  sqlite3_stmt *st = stmt(s, Q_DEV_FIND);
  static const int dels[] = {Q_DEV_DEL_MSGS, Q_DEV_DEL_OT, Q_DEV_DEL_SPK, Q_DEV_DEL_LR, Q_DEV_DEL};
  const struct dcache *e;
  int64_t bytes = 0;
  size_t i;
  int rc;
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, device_id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *devkey = sqlite3_column_int64(st, 0);
    bytes = sqlite3_column_int64(st, 1);
  }
  sqlite3_reset(st);
  if (rc == SQLITE_DONE) return 1;
  if (rc != SQLITE_ROW) return SOTTO_ERR_STORE;
  for (i = 0; i < sizeof dels / sizeof dels[0]; i++) {
    st = stmt(s, dels[i]);
    sqlite3_bind_int64(st, 1, *devkey);
    if (step_done(st) != 0) return SOTTO_ERR_STORE;
  }
  /* Its queue leaves the total (committed bytes and this transaction's). */
  if ((e = dc_by_key(s, *devkey)) != NULL) bytes += e->dbytes;
  s->txn_bytes -= bytes;
  dc_forget(s, *devkey);
  sc_clear(s);
  return sb_reload(s);
}

static int sq_device_exists(void *v, int64_t devkey) {
  sqlite3_stmt *st = stmt(v, Q_DEV_EXISTS);
  int rc;
  sqlite3_bind_int64(st, 1, devkey);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  return rc == SQLITE_ROW;
}

/* Asked for every SEND: a row found is remembered in the routing cache
 * (dcache.is_*) until device_remove drops the entry or a rollback or the
 * cache's bound empties the cache; an absent row is always looked up. */
static int sq_device_is(void *v, int64_t devkey, int64_t account_id, uint32_t device_id) {
  struct sq *s = v;
  struct dcache *e = dc_by_key(s, devkey);
  sqlite3_stmt *st;
  int rc;
  if (e && e->is_known && e->is_account == account_id && e->is_device == device_id) return 1;
  st = stmt(s, Q_DEV_IS);
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_int64(st, 2, account_id);
  sqlite3_bind_int64(st, 3, device_id);
  rc = sqlite3_step(st);
  sqlite3_reset(st);
  if (rc == SQLITE_ROW && (e = dc_get(s, devkey)) != NULL) { /* no memory: not remembered */
    e->is_known = 1;
    e->is_account = account_id;
    e->is_device = device_id;
  }
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : -1;
}

static int sq_device_secret(void *v, int64_t devkey, const uint8_t secret_hash[32], const uint8_t prev_hash[32]) {
  sqlite3_stmt *st = stmt(v, Q_DEV_SECRET);
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_blob(st, 2, secret_hash, 32, SQLITE_STATIC);
  if (prev_hash)
    sqlite3_bind_blob(st, 3, prev_hash, 32, SQLITE_STATIC);
  else
    sqlite3_bind_null(st, 3);
  return step_done(st);
}

static int sq_device_secret_confirm(void *v, int64_t devkey) {
  sqlite3_stmt *st = stmt(v, Q_DEV_CONFIRM);
  sqlite3_bind_int64(st, 1, devkey);
  return step_done(st);
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

static int sq_id_floor(void *v, int64_t floor) {
  struct sq *s = v;
  char sql[256];
  /* sqlite_sequence holds AUTOINCREMENT's high-water mark; the next id is
   * max(it, max(id)) + 1. */
  snprintf(sql, sizeof sql,
           "INSERT INTO sqlite_sequence(name, seq) SELECT 'messages', 0 WHERE NOT EXISTS "
           "(SELECT 1 FROM sqlite_sequence WHERE name = 'messages');"
           "UPDATE sqlite_sequence SET seq = max(seq, %lld) WHERE name = 'messages';",
           (long long)floor);
  return sqlite3_exec(s->db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : SOTTO_ERR_STORE;
}

static int sq_disk_full(void *v) {
  struct sq *s = v;
  return s->full || is_full(s->db);
}

static void sq_journal_limit(void *v, int64_t bytes) {
  struct sq *s = v;
  int64_t pages = bytes / 4096;
  if (pages < 16) pages = 16;
  if (pages > 1000) pages = 1000; /* SQLite's default; more buys nothing */
  (void)sqlite3_wal_autocheckpoint(s->db, (int)pages);
}

/* Account deletion and recovery: rare requests, so their statements are
 * prepared on each call rather than kept. */
static int one_shot(struct sq *s, const char *sql, sqlite3_stmt **st) {
  return sqlite3_prepare_v2(s->db, sql, -1, st, NULL) == SQLITE_OK ? 0 : SOTTO_ERR_STORE;
}

static int sq_account_delete(void *v, int64_t account_id, const char *canon, int64_t until_ms) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  s->dl_gen++; /* devlist_ids' cache */
  if (one_shot(s, "DELETE FROM recovery WHERE account_id = ?1", &st)) return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, account_id);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  /* which blobs its devices fetched: nothing of a deleted account that no
   * report could show */
  if (rc || one_shot(s, "DELETE FROM blob_fetches WHERE account_id = ?1", &st)) return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, account_id);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  if (rc || one_shot(s, "DELETE FROM accounts WHERE id = ?1", &st)) return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, account_id);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  if (rc || one_shot(s, "INSERT OR REPLACE INTO held_names(canon, until_ms) VALUES(?1, ?2)", &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, until_ms);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

static int sq_name_held(void *v, const char *canon, int64_t now_ms) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  if (one_shot(s, "DELETE FROM held_names WHERE until_ms <= ?1", &st)) return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, now_ms);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  if (rc || one_shot(s, "SELECT 1 FROM held_names WHERE canon = ?1", &st)) return SOTTO_ERR_STORE;
  sqlite3_bind_text(st, 1, canon, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static int sq_recovery_set(void *v, int64_t account_id, const uint8_t hash[32]) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  if (one_shot(s, hash ? "INSERT OR REPLACE INTO recovery(account_id, hash) VALUES(?1, ?2)"
                       : "DELETE FROM recovery WHERE account_id = ?1",
               &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, account_id);
  if (hash) sqlite3_bind_blob(st, 2, hash, 32, SQLITE_STATIC);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

static int sq_recovery_get(void *v, const char *user, int64_t *account_id, uint8_t hash[32], int *has) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  *has = 0;
  if (one_shot(s, "SELECT a.id, r.hash FROM accounts a LEFT JOIN recovery r ON r.account_id = a.id"
                  " WHERE a.username = ?1",
               &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *account_id = sqlite3_column_int64(st, 0);
    if (sqlite3_column_type(st, 1) == SQLITE_BLOB && sqlite3_column_bytes(st, 1) == 32) {
      memcpy(hash, sqlite3_column_blob(st, 1), 32);
      *has = 1;
    }
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : SOTTO_ERR_STORE;
}

/* ---- key transparency (srv_kt.c) ---- */

static int sq_kt_entry_put(void *v, int64_t idx, const uint8_t *head, size_t head_len, const uint8_t *update,
                           size_t update_len) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  if (update_len > INT_MAX || one_shot(s, "INSERT INTO kt_entries(idx, head, upd) VALUES(?1, ?2, ?3)", &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, idx);
  sqlite3_bind_blob(st, 2, head, (int)head_len, SQLITE_STATIC);
  sqlite3_bind_blob(st, 3, update_len ? update : (const void *)"", (int)update_len, SQLITE_STATIC);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

static int sq_kt_entries_iter(void *v, int64_t first, int64_t limit,
                              int (*cb)(void *ctx, int64_t idx, const uint8_t *head, size_t head_len,
                                        const uint8_t *update, size_t update_len),
                              void *ctx) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc, r = 0;
  if (one_shot(s, "SELECT idx, head, upd FROM kt_entries WHERE idx >= ?1 ORDER BY idx LIMIT ?2", &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, first);
  sqlite3_bind_int64(st, 2, limit);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const uint8_t *h = sqlite3_column_blob(st, 1), *u = sqlite3_column_blob(st, 2);
    size_t hl = (size_t)sqlite3_column_bytes(st, 1), ul = (size_t)sqlite3_column_bytes(st, 2);
    if ((r = cb(ctx, sqlite3_column_int64(st, 0), h ? h : (const uint8_t *)"", hl, u ? u : (const uint8_t *)"",
                ul)) != 0)
      break;
  }
  sqlite3_finalize(st);
  if (r) return r;
  return rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static int sq_kt_value_put(void *v, const char *label, uint32_t version, const uint8_t *value, size_t len,
                           const uint8_t opening[16]) {
  struct sq *s = v;
  sqlite3_stmt *st;
  if (len > SOTTO_STORE_KT_MAX_VALUE) return SOTTO_ERR_STORE;
  st = stmt(s, Q_KT_VALUE_PUT);
  sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, version);
  sqlite3_bind_blob(st, 3, len ? value : (const void *)"", (int)len, SQLITE_STATIC);
  sqlite3_bind_blob(st, 4, opening, 16, SQLITE_STATIC);
  return step_done(st);
}

static int sq_kt_value_get(void *v, const char *label, uint32_t *version, uint8_t *value, size_t *len,
                           uint8_t opening[16]) {
  struct sq *s = v;
  sqlite3_stmt *st = stmt(s, Q_KT_VALUE_GET);
  int rc;
  sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    int64_t ver = sqlite3_column_int64(st, 0);
    size_t vl = (size_t)sqlite3_column_bytes(st, 1);
    if (ver < 0 || ver > 0x7FFFFFFF || vl > SOTTO_STORE_KT_MAX_VALUE || sqlite3_column_bytes(st, 2) != 16) {
      sqlite3_reset(st);
      return SOTTO_ERR_STORE;
    }
    *version = (uint32_t)ver;
    *len = vl;
    if (vl) memcpy(value, sqlite3_column_blob(st, 1), vl);
    memcpy(opening, sqlite3_column_blob(st, 2), 16);
  }
  sqlite3_reset(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : SOTTO_ERR_STORE;
}

static int sq_kt_value_del(void *v, const char *label) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  if (one_shot(s, "DELETE FROM kt_values WHERE label = ?1", &st)) return SOTTO_ERR_STORE;
  sqlite3_bind_text(st, 1, label, -1, SQLITE_STATIC);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

static int sq_kt_labels_iter(void *v, const char *lo, const char *hi, int64_t limit,
                             int (*cb)(void *ctx, const char *label, const uint8_t *value, size_t len), void *ctx) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc, r = 0;
  if (one_shot(s, "SELECT label, value FROM kt_values WHERE label >= ?1 AND label < ?2 ORDER BY label LIMIT ?3",
               &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
  sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 3, limit);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *l = (const char *)sqlite3_column_text(st, 0);
    const uint8_t *val = sqlite3_column_blob(st, 1);
    if (!l) continue;
    if ((r = cb(ctx, l, val ? val : (const uint8_t *)"", (size_t)sqlite3_column_bytes(st, 1))) != 0) break;
  }
  sqlite3_finalize(st);
  if (r) return r;
  return rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static int sq_kt_cosig_put(void *v, const uint8_t pk[32], uint64_t size, const uint8_t *head, size_t head_len,
                           const uint8_t *cosig, size_t cosig_len) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  if (size > INT64_MAX || head_len > 4096 || cosig_len > 4096 ||
      one_shot(s,
               "INSERT INTO kt_cosigs(witness, size, head, cosig) VALUES(?1, ?2, ?3, ?4)"
               " ON CONFLICT(witness) DO UPDATE SET size = excluded.size, head = excluded.head,"
               " cosig = excluded.cosig WHERE kt_cosigs.size <= excluded.size",
               &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_blob(st, 1, pk, 32, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, (int64_t)size);
  sqlite3_bind_blob(st, 3, head, (int)head_len, SQLITE_STATIC);
  sqlite3_bind_blob(st, 4, cosig, (int)cosig_len, SQLITE_STATIC);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

static int sq_kt_cosigs_iter(void *v,
                             int (*cb)(void *ctx, const uint8_t *pk, size_t pk_len, const uint8_t *head,
                                       size_t head_len, const uint8_t *cosig, size_t cosig_len),
                             void *ctx) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc, r = 0;
  if (one_shot(s, "SELECT witness, head, cosig FROM kt_cosigs ORDER BY witness LIMIT 256", &st))
    return SOTTO_ERR_STORE;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const uint8_t *pk = sqlite3_column_blob(st, 0), *h = sqlite3_column_blob(st, 1), *c = sqlite3_column_blob(st, 2);
    if (!pk || !h || !c) continue;
    if ((r = cb(ctx, pk, (size_t)sqlite3_column_bytes(st, 0), h, (size_t)sqlite3_column_bytes(st, 1), c,
                (size_t)sqlite3_column_bytes(st, 2))) != 0)
      break;
  }
  sqlite3_finalize(st);
  if (r) return r;
  return rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static int sq_accounts_iter(void *v, int (*cb)(void *ctx, const char *user, const uint8_t *ik, size_t ik_len),
                            void *ctx) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc, r = 0;
  if (one_shot(s, "SELECT username, identity FROM accounts ORDER BY id", &st)) return SOTTO_ERR_STORE;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    const char *u = (const char *)sqlite3_column_text(st, 0);
    const uint8_t *ik = sqlite3_column_blob(st, 1);
    size_t il = (size_t)sqlite3_column_bytes(st, 1);
    if (!u || !ik || il > SOTTO_SRV_MAX_IDENTITY) continue;
    if ((r = cb(ctx, u, ik, il)) != 0) break;
  }
  sqlite3_finalize(st);
  if (r) return r;
  return rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static int sq_device_identity_get(void *v, int64_t devkey, uint8_t *buf, size_t cap, size_t *len) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc = 1;
  if (one_shot(s, "SELECT identity FROM devices WHERE devkey = ?1", &st)) return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, devkey);
  switch (sqlite3_step(st)) {
  case SQLITE_ROW: {
    const void *p = sqlite3_column_blob(st, 0);
    size_t n = (size_t)sqlite3_column_bytes(st, 0);
    if (sqlite3_column_type(st, 0) == SQLITE_NULL) break;
    if (!p || n == 0 || n > cap || n > SOTTO_STORE_MAX_IDENTITY) {
      rc = SOTTO_ERR_STORE;
      break;
    }
    memcpy(buf, p, n);
    *len = n;
    rc = 0;
    break;
  }
  case SQLITE_DONE:
    break;
  default:
    rc = SOTTO_ERR_STORE;
  }
  sqlite3_finalize(st);
  return rc;
}

static int sq_device_identity_set(void *v, int64_t devkey, const uint8_t *ik, size_t ik_len) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  if (ik_len == 0 || ik_len > SOTTO_STORE_MAX_IDENTITY) return SOTTO_ERR_STORE;
  if (one_shot(s, "UPDATE devices SET identity = ?2 WHERE devkey = ?1", &st)) return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, devkey);
  sqlite3_bind_blob(st, 2, ik, (int)ik_len, SQLITE_STATIC);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

static int sq_account_identity(void *v, int64_t account_id, const uint8_t *ik, size_t ik_len) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  if (one_shot(s, "UPDATE accounts SET identity = ?2 WHERE id = ?1", &st)) return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_blob(st, 2, ik, (int)ik_len, SQLITE_STATIC);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

/* ---- signed device lists (docs/multi-device.md) ---- */

static int ids_decode(const uint8_t *p, size_t len, uint32_t *ids, size_t max, size_t *n) {
  size_t i;
  if (len % 4 || len / 4 > max) return SOTTO_ERR_STORE;
  for (i = 0; i < len / 4; i++)
    ids[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  *n = len / 4;
  return 0;
}

static int sq_devlist_put(void *v, int64_t account_id, uint32_t version, const uint32_t *ids, size_t n,
                          const uint8_t *list, size_t len, int64_t ms) {
  struct sq *s = v;
  uint8_t b[4 * SOTTO_STORE_MAX_DEVLIST_IDS];
  sqlite3_stmt *st;
  size_t i;
  int rc;
  s->dl_gen++; /* devlist_ids' cache */
  if (n > SOTTO_STORE_MAX_DEVLIST_IDS || len == 0 || len > SOTTO_STORE_MAX_DEVLIST) return SOTTO_ERR_STORE;
  for (i = 0; i < n; i++) {
    b[4 * i] = (uint8_t)(ids[i] >> 24);
    b[4 * i + 1] = (uint8_t)(ids[i] >> 16);
    b[4 * i + 2] = (uint8_t)(ids[i] >> 8);
    b[4 * i + 3] = (uint8_t)ids[i];
  }
  if (one_shot(s, "INSERT INTO devlists(account_id, version, ms, ids, list) VALUES(?1, ?2, ?3, ?4, ?5)", &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, account_id);
  sqlite3_bind_int64(st, 2, version);
  sqlite3_bind_int64(st, 3, ms);
  sqlite3_bind_blob(st, 4, n ? (const void *)b : "", (int)(4 * n), SQLITE_STATIC);
  sqlite3_bind_blob(st, 5, list, (int)len, SQLITE_STATIC);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

static int sq_devlist_get(void *v, const char *user, uint32_t *version, uint8_t *buf, size_t cap, size_t *len) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  if (one_shot(s, "SELECT l.version, l.list FROM devlists l JOIN accounts a ON a.id = l.account_id"
                  " WHERE a.username = ?1 ORDER BY l.version DESC LIMIT 1",
               &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    int64_t ver = sqlite3_column_int64(st, 0);
    size_t l = (size_t)sqlite3_column_bytes(st, 1);
    if (ver < 1 || ver > 0xFFFFFFFFll || l == 0 || l > cap || l > SOTTO_STORE_MAX_DEVLIST) {
      sqlite3_finalize(st);
      return SOTTO_ERR_STORE;
    }
    *version = (uint32_t)ver;
    memcpy(buf, sqlite3_column_blob(st, 1), l);
    *len = l;
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : SOTTO_ERR_STORE;
}

static int sq_devlist_get_version(void *v, const char *user, uint32_t version, uint8_t *buf, size_t cap,
                                  size_t *len) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  if (one_shot(s, "SELECT l.list FROM devlists l JOIN accounts a ON a.id = l.account_id"
                  " WHERE a.username = ?1 AND l.version = ?2",
               &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, version);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    size_t l = (size_t)sqlite3_column_bytes(st, 0);
    if (l == 0 || l > cap || l > SOTTO_STORE_MAX_DEVLIST) {
      sqlite3_finalize(st);
      return SOTTO_ERR_STORE;
    }
    memcpy(buf, sqlite3_column_blob(st, 0), l);
    *len = l;
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : SOTTO_ERR_STORE;
}

static int sq_devlist_ids(void *v, const char *user, uint32_t *ids, size_t max, size_t *n) {
  struct sq *s = v;
  sqlite3_stmt *st;
  struct dlcache *c = NULL;
  uint32_t all[SOTTO_STORE_MAX_DEVLIST_IDS];
  size_t ulen = strlen(user), k = 0;
  int rc;
  if (ulen <= SOTTO_STORE_USER_MAX) {
    if (!s->dl) s->dl = calloc(DL_SLOTS, sizeof *s->dl); /* no memory: no cache */
    if (s->dl) c = &s->dl[dc_name_hash(user, ulen, 0) % DL_SLOTS];
  }
  if (c && c->gen == s->dl_gen && c->ulen == ulen && memcmp(c->user, user, ulen) == 0) {
    if (c->none) return 1;
    if (c->n > max) return SOTTO_ERR_STORE; /* as ids_decode */
    memcpy(ids, c->ids, c->n * sizeof ids[0]);
    *n = c->n;
    return 0;
  }
  st = stmt(s, Q_DEVLIST_IDS);
  sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    rc = ids_decode(sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), all, SOTTO_STORE_MAX_DEVLIST_IDS,
                    &k);
    sqlite3_reset(st);
    if (rc != 0) return rc;
    if (c) {
      c->gen = s->dl_gen;
      c->none = 0;
      c->n = (uint8_t)k;
      memcpy(c->ids, all, k * sizeof all[0]);
      c->ulen = (uint8_t)ulen;
      memcpy(c->user, user, ulen);
    }
    if (k > max) return SOTTO_ERR_STORE;
    memcpy(ids, all, k * sizeof ids[0]);
    *n = k;
    return 0;
  }
  sqlite3_reset(st);
  if (rc != SQLITE_DONE) return SOTTO_ERR_STORE;
  if (c) {
    c->gen = s->dl_gen;
    c->none = 1;
    c->n = 0;
    c->ulen = (uint8_t)ulen;
    memcpy(c->user, user, ulen);
  }
  return 1;
}

static int sq_devlist_iter(void *v, int64_t account_id,
                           int (*cb)(void *ctx, uint32_t version, int64_t ms, const uint32_t *ids, size_t n),
                           void *ctx) {
  struct sq *s = v;
  uint32_t ids[SOTTO_STORE_MAX_DEVLIST_IDS];
  sqlite3_stmt *st;
  size_t n;
  int rc, r = 0;
  if (one_shot(s, "SELECT version, ms, ids FROM devlists WHERE account_id = ?1 ORDER BY version", &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, account_id);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    if ((r = ids_decode(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), ids,
                        SOTTO_STORE_MAX_DEVLIST_IDS, &n)) != 0 ||
        (r = cb(ctx, (uint32_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1), ids, n)) != 0)
      break;
  }
  sqlite3_finalize(st);
  if (r) return r;
  return rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static int sq_devlist_clear(void *v, int64_t account_id) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  s->dl_gen++; /* devlist_ids' cache */
  if (one_shot(s, "DELETE FROM devlists WHERE account_id = ?1", &st)) return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, account_id);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

/* ---- blobs (attachments, srv_blob.c): a few requests per upload or download,
 * so their statements are prepared on each call too ---- */

static int sq_blob_step(struct sq *s, const char *sql, const uint8_t *id, int64_t a, int64_t b) {
  sqlite3_stmt *st;
  int rc;
  if (one_shot(s, sql, &st)) return SOTTO_ERR_STORE;
  if (id) sqlite3_bind_blob(st, 1, id, SOTTO_STORE_BLOB_ID, SQLITE_STATIC);
  else sqlite3_bind_int64(st, 1, a);
  sqlite3_bind_int64(st, 2, b);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

static int sq_blob_create(void *v, const struct sotto_store_blob *b) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  if (one_shot(s, "INSERT INTO blobs(id, account_id, size, fetches, committed, created_ms, expires_ms)"
                  " VALUES(?1, ?2, ?3, ?4, 0, ?5, ?6)",
               &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_blob(st, 1, b->id, SOTTO_STORE_BLOB_ID, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, b->account_id);
  sqlite3_bind_int64(st, 3, b->size);
  sqlite3_bind_int64(st, 4, b->fetches_left);
  sqlite3_bind_int64(st, 5, b->created_ms);
  sqlite3_bind_int64(st, 6, b->expires_ms);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  sqlite3_finalize(st);
  return rc;
}

static void sq_blob_row(sqlite3_stmt *st, struct sotto_store_blob *b) {
  if (sqlite3_column_bytes(st, 0) == SOTTO_STORE_BLOB_ID) memcpy(b->id, sqlite3_column_blob(st, 0), SOTTO_STORE_BLOB_ID);
  b->account_id = sqlite3_column_int64(st, 1);
  b->size = sqlite3_column_int64(st, 2);
  b->fetches_left = sqlite3_column_int64(st, 3);
  b->committed = sqlite3_column_int(st, 4) != 0;
  b->created_ms = sqlite3_column_int64(st, 5);
  b->expires_ms = sqlite3_column_int64(st, 6);
}

#define SQ_BLOB_COLS "id, account_id, size, fetches, committed, created_ms, expires_ms"

static int sq_blob_get(void *v, const uint8_t *id, struct sotto_store_blob *out) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  if (one_shot(s, "SELECT " SQ_BLOB_COLS " FROM blobs WHERE id = ?1", &st)) return SOTTO_ERR_STORE;
  sqlite3_bind_blob(st, 1, id, SOTTO_STORE_BLOB_ID, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) sq_blob_row(st, out);
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? 1 : SOTTO_ERR_STORE;
}

static int sq_blob_commit(void *v, const uint8_t *id) {
  return sq_blob_step(v, "UPDATE blobs SET committed = 1 WHERE id = ?1 AND ?2 = 0", id, 0, 0);
}

static int sq_blob_delete(void *v, const uint8_t *id) {
  int rc = sq_blob_step(v, "DELETE FROM blob_fetches WHERE id = ?1 AND ?2 = 0", id, 0, 0);
  return rc ? rc : sq_blob_step(v, "DELETE FROM blobs WHERE id = ?1 AND ?2 = 0", id, 0, 0);
}

/* fetches_left of blob id becomes left (the row and its devices deleted at 0). */
static int sq_blob_left(void *v, const uint8_t *id, int64_t left) {
  if (left == 0) return sq_blob_delete(v, id);
  return sq_blob_step(v, "UPDATE blobs SET fetches = ?2 WHERE id = ?1", id, 0, left);
}

static int sq_blob_fetched(void *v, const uint8_t *id, int64_t account_id, uint32_t device_id, int64_t *left) {
  struct sq *s = v;
  struct sotto_store_blob b;
  sqlite3_stmt *st;
  int rc = sq_blob_get(v, id, &b), added;
  if (rc) return rc;
  /* Once per device: a repeat finds its row and counts nothing. */
  if (one_shot(s, "INSERT OR IGNORE INTO blob_fetches(id, account_id, device_id) VALUES(?1, ?2, ?3)", &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_blob(st, 1, id, SOTTO_STORE_BLOB_ID, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, account_id);
  sqlite3_bind_int64(st, 3, (int64_t)device_id);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
  added = sqlite3_changes(s->db) > 0;
  sqlite3_finalize(st);
  if (rc) return rc;
  *left = b.fetches_left > 0 ? b.fetches_left - added : 0;
  if (!added && *left > 0) return 0;
  return sq_blob_left(v, id, *left);
}

static int sq_blob_set_fetches(void *v, const uint8_t *id, int64_t fetches, int64_t *left) {
  struct sq *s = v;
  struct sotto_store_blob b;
  sqlite3_stmt *st;
  int64_t counted = 0;
  int rc = sq_blob_get(v, id, &b);
  if (rc) return rc;
  if (one_shot(s, "SELECT count(*) FROM blob_fetches WHERE id = ?1", &st)) return SOTTO_ERR_STORE;
  sqlite3_bind_blob(st, 1, id, SOTTO_STORE_BLOB_ID, SQLITE_STATIC);
  rc = sqlite3_step(st) == SQLITE_ROW ? 0 : SOTTO_ERR_STORE;
  if (rc == 0) counted = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  if (rc) return rc;
  *left = fetches > counted ? fetches - counted : 0;
  return sq_blob_left(v, id, *left);
}

static int sq_blob_fetches_iter(void *v, int64_t account_id,
                                int (*cb)(void *ctx, const uint8_t *id, uint32_t device_id), void *ctx) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc, r = 0;
  if (one_shot(s, "SELECT id, device_id FROM blob_fetches WHERE account_id = ?1 ORDER BY device_id, id", &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, account_id);
  while (r == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW)
    if (sqlite3_column_bytes(st, 0) == SOTTO_STORE_BLOB_ID)
      r = cb(ctx, sqlite3_column_blob(st, 0), (uint32_t)sqlite3_column_int64(st, 1));
  sqlite3_finalize(st);
  if (r) return r;
  return rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static int sq_blob_usage(void *v, int64_t account_id, int64_t *count, int64_t *bytes) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  if (one_shot(s, "SELECT count(*), coalesce(sum(size), 0) FROM blobs WHERE account_id = ?1", &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, account_id);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    *count = sqlite3_column_int64(st, 0);
    *bytes = sqlite3_column_int64(st, 1);
  }
  sqlite3_finalize(st);
  return rc == SQLITE_ROW ? 0 : SOTTO_ERR_STORE;
}

static int sq_blob_expired(void *v, int64_t now_ms, uint8_t *ids, size_t max, size_t *n) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc;
  size_t i;
  *n = 0;
  if (one_shot(s, "SELECT id FROM blobs WHERE expires_ms <= ?1 ORDER BY expires_ms LIMIT ?2", &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, now_ms);
  sqlite3_bind_int64(st, 2, (int64_t)max);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW)
    if (sqlite3_column_bytes(st, 0) == SOTTO_STORE_BLOB_ID && *n < max)
      memcpy(ids + SOTTO_STORE_BLOB_ID * (*n)++, sqlite3_column_blob(st, 0), SOTTO_STORE_BLOB_ID);
  sqlite3_finalize(st);
  if (rc != SQLITE_DONE) return SOTTO_ERR_STORE;
  for (i = 0; i < *n; i++)
    if ((rc = sq_blob_delete(v, ids + SOTTO_STORE_BLOB_ID * i)) != 0) return rc;
  return 0;
}

static int sq_blob_iter(void *v, int64_t account_id, int (*cb)(void *ctx, const struct sotto_store_blob *b),
                        void *ctx) {
  struct sq *s = v;
  sqlite3_stmt *st;
  int rc, crc = 0;
  if (one_shot(s, "SELECT " SQ_BLOB_COLS " FROM blobs WHERE account_id = ?1 ORDER BY created_ms", &st))
    return SOTTO_ERR_STORE;
  sqlite3_bind_int64(st, 1, account_id);
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    struct sotto_store_blob b;
    memset(&b, 0, sizeof b);
    sq_blob_row(st, &b);
    if ((crc = cb(ctx, &b)) != 0) break;
  }
  sqlite3_finalize(st);
  if (crc) return crc;
  return rc == SQLITE_DONE ? 0 : SOTTO_ERR_STORE;
}

static const struct sotto_store_ops sqlite_ops = {
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .close = sq_close,
    .savepoint = sq_savepoint,
    .release = sq_release,
    .txn_alive = sq_txn_alive,
    .rollback_to = sq_rollback_to,
    .wal_truncate = sq_wal_truncate,
    .disk_full = sq_disk_full,
    .journal_limit = sq_journal_limit,
    .device_remove = sq_device_remove,
    .device_secret = sq_device_secret,
    .device_secret_confirm = sq_device_secret_confirm,
    .device_exists = sq_device_exists,
    .device_is = sq_device_is,
    .sender_count = sq_sender_count,
    .total_bytes = sq_total_bytes,
    .sender_bytes = sq_sender_bytes,
    .account_create = sq_account_create,
    .account_get = sq_account_get,
    .device_add = sq_device_add,
    .device_lookup = sq_device_lookup,
    .device_epoch_raise = sq_device_epoch_raise,
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
    .expire_scan = sq_expire_scan,
    .queue_total = sq_queue_total,
    .max_msg_id = sq_max_msg_id,
    .id_floor = sq_id_floor,
    .account_delete = sq_account_delete,
    .name_held = sq_name_held,
    .recovery_set = sq_recovery_set,
    .kt_entry_put = sq_kt_entry_put,
    .kt_entries_iter = sq_kt_entries_iter,
    .kt_value_put = sq_kt_value_put,
    .kt_value_get = sq_kt_value_get,
    .accounts_iter = sq_accounts_iter,
    .kt_cosig_put = sq_kt_cosig_put,
    .kt_value_del = sq_kt_value_del,
    .kt_labels_iter = sq_kt_labels_iter,
    .kt_cosigs_iter = sq_kt_cosigs_iter,
    .blob_create = sq_blob_create,
    .blob_get = sq_blob_get,
    .blob_commit = sq_blob_commit,
    .blob_fetched = sq_blob_fetched,
    .blob_set_fetches = sq_blob_set_fetches,
    .blob_delete = sq_blob_delete,
    .blob_usage = sq_blob_usage,
    .blob_expired = sq_blob_expired,
    .blob_iter = sq_blob_iter,
    .blob_fetches_iter = sq_blob_fetches_iter,
    .recovery_get = sq_recovery_get,
    .account_identity = sq_account_identity,
    .device_identity_get = sq_device_identity_get,
    .device_identity_set = sq_device_identity_set,
    .devlist_put = sq_devlist_put,
    .devlist_get = sq_devlist_get,
    .devlist_get_version = sq_devlist_get_version,
    .devlist_ids = sq_devlist_ids,
    .devlist_iter = sq_devlist_iter,
    .devlist_clear = sq_devlist_clear,
};

/* Adds accounts.canon (the canonical form of the username, see
 * sotto__srv_username_canon) to databases made before it existed and fills
 * it in; new names are checked against it. Idempotent. */
static int canon_migrate(struct sq *s) {
  sqlite3_stmt *q = NULL, *u = NULL;
  int rc = SOTTO_ERR_STORE, has = 0;
  if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM pragma_table_info('accounts') WHERE name = 'canon'", -1, &q, NULL) !=
      SQLITE_OK)
    return SOTTO_ERR_STORE;
  has = sqlite3_step(q) == SQLITE_ROW;
  sqlite3_finalize(q);
  q = NULL;
  if (!has && sqlite3_exec(s->db, "ALTER TABLE accounts ADD COLUMN canon TEXT", NULL, NULL, NULL) != SQLITE_OK)
    return SOTTO_ERR_STORE;
  if (sqlite3_exec(s->db, "CREATE INDEX IF NOT EXISTS accounts_canon ON accounts(canon)", NULL, NULL, NULL) !=
      SQLITE_OK)
    return SOTTO_ERR_STORE;
  if (sqlite3_prepare_v2(s->db, "SELECT id, username FROM accounts WHERE canon IS NULL", -1, &q, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(s->db, "UPDATE accounts SET canon = ?2 WHERE id = ?1", -1, &u, NULL) != SQLITE_OK)
    goto out;
  for (;;) {
    char canon[SOTTO_STORE_USER_MAX + 1];
    const unsigned char *name;
    int r = sqlite3_step(q);
    if (r == SQLITE_DONE) break;
    if (r != SQLITE_ROW) goto out;
    name = sqlite3_column_text(q, 1);
    if (!name || (size_t)sqlite3_column_bytes(q, 1) > SOTTO_STORE_USER_MAX) continue;
    sotto__srv_username_canon(name, (size_t)sqlite3_column_bytes(q, 1), canon);
    sqlite3_reset(u);
    sqlite3_bind_int64(u, 1, sqlite3_column_int64(q, 0));
    sqlite3_bind_text(u, 2, canon, -1, SQLITE_TRANSIENT);
    if (sqlite3_step(u) != SQLITE_DONE) goto out;
  }
  rc = 0;
out:
  sqlite3_finalize(q);
  sqlite3_finalize(u);
  return rc;
}

/* No memory statistics: with them every sqlite3_malloc and sqlite3_free
 * takes a global mutex (pthread_mutex_lock/unlock were about 6 % of the store
 * thread under load). Possible only before SQLite initializes itself, so
 * this runs before the first open (a later call fails harmlessly); the
 * server opens its stores on the main thread before the store thread starts. */
static void sq_global_init(void) {
  (void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int sotto__store_sqlite_check(const char *dir, char *why, size_t why_len) {
  char path[4096];
  struct stat st;
  sqlite3 *db = NULL;
  sqlite3_stmt *q = NULL;
  int rc = SOTTO_ERR_STORE, r;
  sq_global_init();
  if (snprintf(path, sizeof path, "%s/sotto.db", dir) >= (int)sizeof path) {
    snprintf(why, why_len, "data directory path too long");
    return SOTTO_ERR_USAGE;
  }
  if (stat(path, &st) != 0) return 0; /* no database yet: a new server */
  if (!S_ISREG(st.st_mode)) {
    snprintf(why, why_len, "%s is not a regular file", path);
    return SOTTO_ERR_STORE;
  }
  if (st.st_size == 0) {
    /* SQLite would take an empty file as a new database: every account
     * gone, every name free again. */
    snprintf(why, why_len,
             "%s is empty (0 bytes), not a database: starting would lose every account. Restore it from a "
             "backup, or remove it to start a new, empty server",
             path);
    return SOTTO_ERR_STORE;
  }
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &q, NULL) != SQLITE_OK) {
    snprintf(why, why_len, "%s is not a readable SQLite database (%s): restore it from a backup", path,
             db ? sqlite3_errmsg(db) : "cannot open");
    goto out;
  }
  r = sqlite3_step(q);
  if (r != SQLITE_ROW || strcmp((const char *)sqlite3_column_text(q, 0), "ok") != 0) {
    snprintf(why, why_len, "%s failed its integrity check (%s): restore it from a backup", path,
             r == SQLITE_ROW ? (const char *)sqlite3_column_text(q, 0) : sqlite3_errmsg(db));
    goto out;
  }
  rc = 0;
out:
  sqlite3_finalize(q);
  sqlite3_close(db);
  return rc;
}

static int64_t count_rows(sqlite3 *db, const char *sql) {
  sqlite3_stmt *q = NULL;
  int64_t n = -1;
  if (sqlite3_prepare_v2(db, sql, -1, &q, NULL) == SQLITE_OK && sqlite3_step(q) == SQLITE_ROW)
    n = sqlite3_column_int64(q, 0);
  sqlite3_finalize(q);
  return n;
}

int sotto__store_sqlite_backup(const char *dir, const char *dest_dir, int64_t *accounts, int64_t *queued, char *why,
                               size_t why_len) {
  char src_path[4096], dst_path[4096];
  sqlite3 *src = NULL, *dst = NULL;
  sqlite3_backup *b;
  sqlite3_stmt *q = NULL;
  int rc = SOTTO_ERR_STORE, created = 0, fd;
  struct stat stb;
  if (snprintf(src_path, sizeof src_path, "%s/sotto.db", dir) >= (int)sizeof src_path ||
      snprintf(dst_path, sizeof dst_path, "%s/sotto.db", dest_dir) >= (int)sizeof dst_path) {
    snprintf(why, why_len, "path too long");
    return SOTTO_ERR_STORE;
  }
  if (stat(src_path, &stb) != 0 || stb.st_size == 0) {
    snprintf(why, why_len, "%s does not exist or is empty: nothing to back up", src_path);
    return SOTTO_ERR_STORE;
  }
  /* Read-only: the server (if one runs) keeps writing; the backup reads one
   * snapshot (a read transaction in WAL mode) and never blocks it. */
  if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    snprintf(why, why_len, "cannot open %s: %s", src_path, src ? sqlite3_errmsg(src) : "no memory");
    goto out;
  }
  sqlite3_busy_timeout(src, 5000);
  if ((fd = open(dst_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
    snprintf(why, why_len, "cannot create %s: %s", dst_path, strerror(errno));
    goto out;
  }
  close(fd);
  created = 1;
  if (sqlite3_open_v2(dst_path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    snprintf(why, why_len, "cannot open %s: %s", dst_path, dst ? sqlite3_errmsg(dst) : "no memory");
    goto out;
  }
  /* Freed pages of the copy hold no old envelopes: the source runs with
   * secure_delete, and the copy is written page by page from it. */
  if ((b = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
    snprintf(why, why_len, "cannot start the backup: %s", sqlite3_errmsg(dst));
    goto out;
  }
  {
    int r = sqlite3_backup_step(b, -1);
    sqlite3_backup_finish(b);
    if (r != SQLITE_DONE) {
      snprintf(why, why_len, "backup failed: %s", sqlite3_errstr(r));
      goto out;
    }
  }
  if (sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &q, NULL) != SQLITE_OK || sqlite3_step(q) != SQLITE_ROW ||
      strcmp((const char *)sqlite3_column_text(q, 0), "ok") != 0) {
    snprintf(why, why_len, "the copy %s failed its integrity check", dst_path);
    goto out;
  }
  *accounts = count_rows(dst, "SELECT count(*) FROM accounts");
  *queued = count_rows(dst, "SELECT count(*) FROM messages");
  if (*accounts < 0 || *queued < 0) {
    snprintf(why, why_len, "the copy %s cannot be read back", dst_path);
    goto out;
  }
  rc = 0;
out:
  sqlite3_finalize(q);
  if (dst) sqlite3_close(dst);
  if (src) sqlite3_close(src);
  if (rc == 0) {
    if ((fd = open(dst_path, O_RDONLY | O_CLOEXEC)) < 0 || fsync(fd) != 0) {
      snprintf(why, why_len, "cannot sync %s: %s", dst_path, strerror(errno));
      rc = SOTTO_ERR_STORE;
    }
    if (fd >= 0) close(fd);
  }
  if (rc != 0 && created) {
    char side[4200];
    unlink(dst_path);
    snprintf(side, sizeof side, "%s-journal", dst_path);
    unlink(side);
  }
  return rc;
}

int sotto__store_sqlite_open(struct sotto_store *st, const char *dir) {
  struct sq *s;
  char path[4096];
  int i;
  if (snprintf(path, sizeof path, "%s/sotto.db", dir) >= (int)sizeof path) return SOTTO_ERR_USAGE;
  sq_global_init();
  if ((s = calloc(1, sizeof *s)) == NULL) return SOTTO_ERR_NOMEM;
  s->dl_gen = 1;
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
  if (canon_migrate(s) != 0) goto fail;
  /* A store made before account_high: the highest account id anything
   * still names (a deleted newest account's blobs, the devices that fetched
   * blobs), so that no id still named goes to a new account. */
  if (sqlite3_exec(s->db,
                   "INSERT OR IGNORE INTO account_high(one, id) SELECT 1, max("
                   "coalesce((SELECT max(id) FROM accounts), 0), coalesce((SELECT max(account_id) FROM blobs), 0),"
                   " coalesce((SELECT max(account_id) FROM blob_fetches), 0),"
                   " coalesce((SELECT max(account_id) FROM devlists), 0),"
                   " coalesce((SELECT max(account_id) FROM devices), 0))",
                   NULL, NULL, NULL) != SQLITE_OK)
    goto fail;
  /* Databases made before the device epoch existed get the column. */
  if (sqlite3_exec(s->db, "SELECT epoch FROM devices LIMIT 0", NULL, NULL, NULL) != SQLITE_OK &&
      sqlite3_exec(s->db, "ALTER TABLE devices ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0", NULL, NULL, NULL) !=
          SQLITE_OK)
    goto fail;
  /* And the previous secret hash (ROTATE_SECRET, store.h). */
  if (sqlite3_exec(s->db, "SELECT prev_secret_hash FROM devices LIMIT 0", NULL, NULL, NULL) != SQLITE_OK &&
      sqlite3_exec(s->db, "ALTER TABLE devices ADD COLUMN prev_secret_hash BLOB", NULL, NULL, NULL) != SQLITE_OK)
    goto fail;
  /* And a device's own identity key (DEVICE_IDENTITY; NULL: the account's). */
  if (sqlite3_exec(s->db, "SELECT identity FROM devices LIMIT 0", NULL, NULL, NULL) != SQLITE_OK &&
      sqlite3_exec(s->db, "ALTER TABLE devices ADD COLUMN identity BLOB", NULL, NULL, NULL) != SQLITE_OK)
    goto fail;
  for (i = 0; i < Q_COUNT; i++)
    if (sqlite3_prepare_v3(s->db, sql_text[i], -1, SQLITE_PREPARE_PERSISTENT, &s->q[i], NULL) != SQLITE_OK) {
      fprintf(stderr, "level=error event=sql_prepare err=\"%s\"\n", sqlite3_errmsg(s->db));
      goto fail;
    }
  if (total_reload(s) != 0) goto fail;
  st->ops = &sqlite_ops;
  st->impl = s;
  st->flags = SOTTO_STORE_SOLE_WRITER; /* DATA/sotto.lock, taken by the server */
  st->backend = "sqlite";
  st->fresh = count_rows(s->db, "SELECT count(*) FROM (SELECT 1 FROM accounts LIMIT 1)") == 0;
  return 0;
fail:
  sq_close(s);
  return SOTTO_ERR_STORE;
}

static int sq_backend_open(struct sotto_store *st, const char *dir, int mode, char *why, size_t why_len) {
  if (mode & SOTTO_STORE_OPEN_SHARED) {
    snprintf(why, why_len, "a SQLite store cannot be shared by several nodes: --cluster needs a PostgreSQL store");
    return SOTTO_ERR_USAGE;
  }
  if (sotto__store_sqlite_open(st, dir) == 0) return 0;
  snprintf(why, why_len, "cannot open the database in %s (is the directory writable?)", dir);
  return SOTTO_ERR_STORE;
}

const struct sotto_store_backend sotto__store_sqlite_backend = {
    .name = "sqlite",
    .check = sotto__store_sqlite_check,
    .open = sq_backend_open,
    .migrate = NULL,
};

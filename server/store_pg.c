/* SPDX-License-Identifier: Apache-2.0 */
/* store_pg.c: the PostgreSQL store backend (libpq).
 *
 * The same interface and the same promise as store_sqlite.c: every write of
 * a batch is one transaction, and the server answers only after COMMIT
 * returned (synchronous_commit is forced on for the session, so COMMIT means
 * the WAL record is on disk). Every statement is prepared once with typed
 * parameters and run with bound binary parameters: no SQL is ever built
 * from input.
 *
 * Round trips are what PostgreSQL costs, so the connection runs in libpq's
 * pipeline mode: the control statements of the group commit (BEGIN,
 * SAVEPOINT, RELEASE) are queued and go out in front of the next real
 * statement, in one round trip with it; counter updates ride in the same
 * statement as the insert or delete that causes them (data-modifying WITH).
 * A SEND costs two round trips (route, insert), an ACK one.
 *
 * Envelope ids come from the sequence sotto_msg_ids in blocks of 1024 (one
 * round trip per block). The server is the only writer (an advisory lock
 * held by the writer connection; store.h, "Single-process assumptions"), so
 * ids increase in commit order. In shared mode (cluster) several nodes
 * write: ids are taken by the insert statement itself, after its devices'
 * rows are locked, so they increase in commit order per device (store.h,
 * "Shared mode"). Per-sender queued bytes and the store total
 * are kept in memory from the open transaction's view, like SQLite's.
 *
 * Schema versions live in the table sotto_schema; `sotto-server migrate`
 * applies the missing steps, each in one transaction, and the server refuses
 * a schema that is missing, older or newer. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <libpq-fe.h>
#include <poll.h>
#include <time.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store.h"

#define PG_SCHEMA_VERSION 9
#define PG_KT_LOCK_KEY 0x736f74746f4bLL /* "sotto" + 'K': the key-transparency log's append lock */
#define PG_LOCK_KEY 0x736f74746f01LL /* "sotto" + 1: the sole-writer advisory lock */
#define PG_ID_BLOCK 1024             /* INCREMENT of sotto_msg_ids */
#define PG_SHARED_SUMS_MS 5000       /* shared mode: how stale the per-sender sums may get */
#define PG_MAX_PARAMS 10
#define PG_CTL_MAX 8
/* How long one round trip may take before the connection is given up (and
 * made again at the next use): a PostgreSQL that stalls without closing
 * (stopped, partitioned, a lock that never comes) must not hold the
 * server's threads. The reader runs on the I/O thread (backlog pages,
 * metrics), so its bound is short. statement_timeout, a second less, lets
 * PostgreSQL itself cancel a slow statement first and keep the connection. */
#define PG_WAIT_WRITER_MS 15000
#define PG_WAIT_READER_MS 4000

/* Each migration step, in order: step i brings the schema to version i + 1. */
static const char *const migrations[PG_SCHEMA_VERSION] = {
    /* 1: accounts, devices, pre-keys, queues */
    "CREATE TABLE accounts(id bigserial PRIMARY KEY, username text NOT NULL UNIQUE, canon text NOT NULL "
    "UNIQUE,"
    " identity bytea NOT NULL, created_day bigint NOT NULL);"
    "CREATE TABLE devices(devkey bigserial PRIMARY KEY, account_id bigint NOT NULL REFERENCES accounts(id),"
    " device_id bigint NOT NULL, secret_hash bytea NOT NULL, created_day bigint NOT NULL,"
    " last_seen_day bigint NOT NULL, queue_count bigint NOT NULL DEFAULT 0, queue_bytes bigint NOT NULL "
    "DEFAULT 0,"
    " epoch bigint NOT NULL DEFAULT 0, UNIQUE(account_id, device_id));"
    "CREATE TABLE signed_prekeys(devkey bigint PRIMARY KEY, key_id bigint NOT NULL, blob bytea NOT NULL);"
    "CREATE TABLE last_resort(devkey bigint PRIMARY KEY, key_id bigint NOT NULL, blob bytea NOT NULL);"
    "CREATE TABLE onetime(devkey bigint NOT NULL, kind smallint NOT NULL, key_id bigint NOT NULL,"
    " blob bytea NOT NULL, PRIMARY KEY(devkey, kind, key_id));"
    "CREATE SEQUENCE sotto_msg_ids INCREMENT BY 1024;"
    /* Keyed by (devkey, id): the queue order, and the only unique index an
     * insert has to maintain (ids come from the sequence, unique anyway). */
    "CREATE TABLE messages(id bigint NOT NULL, devkey bigint NOT NULL, sender text NOT NULL,"
    " sender_device bigint NOT NULL, device_id bigint NOT NULL, type smallint NOT NULL, ts bigint NOT NULL,"
    " body bytea NOT NULL, PRIMARY KEY(devkey, id));"
    /* Ciphertext does not compress: do not try. */
    "ALTER TABLE messages ALTER COLUMN body SET STORAGE EXTERNAL;"

    "CREATE INDEX messages_ts ON messages(ts);",
    /* 2: unregistered names held for a quarantine; recovery code hashes */
    "CREATE TABLE held_names(canon text PRIMARY KEY, until_ms bigint NOT NULL);"
    "CREATE TABLE recovery(account_id bigint PRIMARY KEY REFERENCES accounts(id), hash bytea NOT NULL);",
    /* 3: the cluster's id high-water mark (shared mode, store.h). No longer
     * written: ids are ordered per device by the devices' row locks now
     * (export still reads it, as a lower bound of the ids handed out). */
    "CREATE TABLE sotto_msg_hwm(one boolean PRIMARY KEY DEFAULT true CHECK(one), id bigint NOT NULL);"
    "INSERT INTO sotto_msg_hwm(id) SELECT CASE WHEN is_called THEN last_value + 1023 ELSE 0 END"
    " FROM sotto_msg_ids;",
    /* 4: the secret hash a ROTATE_SECRET replaced, valid until the first
     * AUTH with the new secret (store.h, device_secret). */
    "ALTER TABLE devices ADD COLUMN prev_secret_hash bytea;",
    /* 5: signed device lists (docs/multi-device.md), every version of each
     * account's list with its device ids (u32 big-endian) */
    "CREATE TABLE devlists(account_id bigint NOT NULL REFERENCES accounts(id), version bigint NOT NULL,"
    " ms bigint NOT NULL, ids bytea NOT NULL, list bytea NOT NULL, PRIMARY KEY(account_id, version));",
    /* 6: attachment blobs (srv_blob.c): metadata only, the ciphertext is in
     * files under DATA/blobs */
    "CREATE TABLE blobs(id bytea PRIMARY KEY, account_id bigint NOT NULL, size bigint NOT NULL,"
    " fetches bigint NOT NULL, committed smallint NOT NULL DEFAULT 0, created_ms bigint NOT NULL,"
    " expires_ms bigint NOT NULL);"
    "CREATE INDEX blobs_account ON blobs(account_id);"
    "CREATE INDEX blobs_expires ON blobs(expires_ms);",
    /* 7: a linked device's own identity key (DEVICE_IDENTITY; NULL: the
     * account's, as device 1 and every device made before it) */
    "ALTER TABLE devices ADD COLUMN identity bytea;",
    /* 8: the key-transparency log (srv_kt.c; docs/key-transparency.md):
     * its entries (signed head and update, numbered from 0), each label's
     * newest logged version with its value and opening, and each witness's
     * newest accepted cosignature (with the tree size it covers) */
    "CREATE TABLE kt_entries(idx bigint PRIMARY KEY CHECK(idx >= 0), head bytea NOT NULL, upd bytea NOT NULL);"
    "ALTER TABLE kt_entries ALTER COLUMN upd SET STORAGE EXTERNAL;"
    "CREATE TABLE kt_values(label text PRIMARY KEY, version bigint NOT NULL, value bytea NOT NULL,"
    " opening bytea NOT NULL);"
    "CREATE TABLE kt_cosigs(witness bytea PRIMARY KEY, size bigint NOT NULL, head bytea NOT NULL,"
    " cosig bytea NOT NULL);",
    /* 9: the devices that said BLOB_DONE for a blob, each counted once (at
     * most the blob's declared fetches: they go with the blob) */
    "CREATE TABLE blob_fetches(id bytea NOT NULL, account_id bigint NOT NULL, device_id bigint NOT NULL,"
    " PRIMARY KEY(id, account_id, device_id));",
};

enum {
  Q_ACC_INS,
  Q_ACC_GET,
  Q_DEV_MAX,
  Q_DEV_INS,
  Q_DEV_LOOKUP,
  Q_DEV_ROUTE,
  Q_DEV_SEEN,
  Q_DEV_LIST,
  Q_DEV_ITER,
  Q_SPK_PUT,
  Q_LR_PUT,
  Q_OT_PUT,
  Q_OT_COUNT,
  Q_SPK_GET,
  Q_OT_TAKE,
  Q_LR_GET,
  Q_MSG_INS,
  Q_MSG_DEL,
  Q_MSG_FETCH,
  Q_MSG_EXPIRE,
  Q_MSG_EXPIRING,
  Q_QUEUE_TOTAL,
  Q_MSG_MAX,
  Q_EPOCH,
  Q_SENDER_COUNT,
  Q_SENDER_SUMS,
  Q_DEV_FIND,
  Q_DEV_DEL,
  Q_DEV_SECRET,
  Q_DEV_CONFIRM,
  Q_DEV_EXISTS,
  Q_DEV_IS,
  Q_ID_BLOCK,
  Q_ID_FLOOR,
  Q_BLOB_INS,
  Q_BLOB_GET,
  Q_BLOB_COMMIT,
  Q_BLOB_DEL,
  Q_BLOB_FETCHED,
  Q_BLOB_SET_FETCHES,
  Q_BLOB_USAGE,
  Q_BLOB_EXPIRED,
  Q_BLOB_ITER,
  Q_BLOB_FETCHES_ITER,
  Q_ACC_DEL,
  Q_HOLD_PUT,
  Q_HOLD_EXPIRE,
  Q_HOLD_GET,
  Q_REC_PUT,
  Q_REC_DEL,
  Q_REC_GET,
  Q_ACC_IDENTITY,
  Q_DEV_IDENT_GET,
  Q_DEV_IDENT_SET,
  /* shared mode: per-device id order (store.h, "Shared mode") */
  Q_DEV_LOCK,
  Q_MSG_INS_SHARED,
  Q_DEVLIST_PUT,
  Q_DEVLIST_GET,
  Q_DEVLIST_GET_VER,
  Q_DEVLIST_IDS,
  Q_DEVLIST_ITER,
  Q_DEVLIST_CLEAR,
  /* key transparency (srv_kt.c) */
  Q_KT_ENTRY_PUT,
  Q_KT_ENTRIES,
  Q_KT_VALUE_PUT,
  Q_KT_VALUE_GET,
  Q_KT_VALUE_DEL,
  Q_KT_LABELS,
  Q_KT_LOCK,
  Q_KT_COSIG_PUT,
  Q_KT_COSIGS,
  Q_ACC_ITER,
  Q_SENDER_COUNT_PEND,
  Q_COUNT
};

/* Parameter types, one letter each: i bigint, t text, b bytea; capitals
 * are arrays of them. */
static const struct {
  const char *types, *sql;
} sql[Q_COUNT] = {
    [Q_ACC_INS] = {"ttbi",
                   "INSERT INTO accounts(username, canon, identity, created_day) VALUES($1, $2, $3, $4)"
                   " ON CONFLICT DO NOTHING RETURNING id"},
    [Q_ACC_GET] = {"t", "SELECT id, created_day, identity FROM accounts WHERE username = $1"},
    [Q_DEV_MAX] = {"i",
                   "SELECT count(*), coalesce(max(device_id), 0)::bigint FROM devices WHERE account_id = $1"},
    [Q_DEV_INS] = {"iibi",
                   "INSERT INTO devices(account_id, device_id, secret_hash, created_day, last_seen_day)"
                   " VALUES($1, $2, $3, $4, $4) RETURNING devkey"},
    [Q_DEV_LOOKUP] = {"ti",
                      "SELECT d.devkey, d.account_id, d.device_id, d.secret_hash, d.created_day,"
                      " d.last_seen_day, d.queue_count, d.queue_bytes, d.prev_secret_hash FROM devices d"
                      " JOIN accounts a ON a.id = d.account_id WHERE a.username = $1 AND d.device_id = $2"},
    /* With the account's newest device list (NULL: none), which the SEND
     * that asks for the route reads next (pg_devlist_ids): one round trip
     * for both. */
    [Q_DEV_ROUTE] = {"ti",
                     "SELECT d.devkey, d.queue_count, d.queue_bytes, (SELECT l.ids FROM devlists l"
                     " WHERE l.account_id = a.id ORDER BY l.version DESC LIMIT 1) FROM devices d JOIN accounts a"
                     " ON a.id = d.account_id WHERE a.username = $1 AND d.device_id = $2"},
    /* Only when the day changed: an unchanged row is not locked (a cluster
     * node's inserts to that device need not wait for this transaction). */
    [Q_DEV_SEEN] = {"ii", "UPDATE devices SET last_seen_day = $2 WHERE devkey = $1 AND last_seen_day < $2"},
    [Q_DEV_LIST] = {"t",
                    "SELECT d.device_id, d.last_seen_day FROM devices d JOIN accounts a ON a.id = d.account_id"
                    " WHERE a.username = $1 ORDER BY d.device_id LIMIT 1000"},
    [Q_DEV_ITER] = {"i",
                    "SELECT d.devkey, d.account_id, d.device_id, d.created_day, d.last_seen_day,"
                    " d.queue_count, d.queue_bytes, s.key_id,"
                    " (SELECT count(*) FROM onetime o WHERE o.devkey = d.devkey AND o.kind = 0),"
                    " (SELECT count(*) FROM onetime o WHERE o.devkey = d.devkey AND o.kind = 1),"
                    " (SELECT count(*) FROM last_resort l WHERE l.devkey = d.devkey), s.blob, d.epoch"
                    " FROM devices d LEFT JOIN signed_prekeys s ON s.devkey = d.devkey"
                    " WHERE d.account_id = $1 ORDER BY d.device_id"},
    [Q_SPK_PUT] = {"iib",
                   "INSERT INTO signed_prekeys(devkey, key_id, blob) VALUES($1, $2, $3)"
                   " ON CONFLICT (devkey) DO UPDATE SET key_id = EXCLUDED.key_id, blob = EXCLUDED.blob"},
    [Q_LR_PUT] = {"iib",
                  "INSERT INTO last_resort(devkey, key_id, blob) VALUES($1, $2, $3)"
                  " ON CONFLICT (devkey) DO UPDATE SET key_id = EXCLUDED.key_id, blob = EXCLUDED.blob"},
    [Q_OT_PUT] = {"iiib",
                  "INSERT INTO onetime(devkey, kind, key_id, blob) VALUES($1, $2, $3, $4)"
                  " ON CONFLICT (devkey, kind, key_id) DO UPDATE SET blob = EXCLUDED.blob"},
    [Q_OT_COUNT] = {"i",
                    "SELECT count(*) FILTER (WHERE kind = 0), count(*) FILTER (WHERE kind = 1)"
                    " FROM onetime WHERE devkey = $1"},
    [Q_SPK_GET] = {"i",
                   "SELECT s.key_id, s.blob, coalesce(d.identity, a.identity) FROM signed_prekeys s JOIN devices d"
                   " ON d.devkey = s.devkey JOIN accounts a ON a.id = d.account_id WHERE s.devkey = $1"},
    [Q_OT_TAKE] = {"ii",
                   "DELETE FROM onetime WHERE (devkey, kind, key_id) = (SELECT devkey, kind, key_id"
                   " FROM onetime WHERE devkey = $1 AND kind = $2 ORDER BY key_id LIMIT 1 FOR UPDATE SKIP LOCKED)"
                   " RETURNING key_id, blob"},
    [Q_LR_GET] = {"i", "SELECT key_id, blob FROM last_resort WHERE devkey = $1"},
    /* Every envelope of a batch in one statement (arrays bound in binary),
     * with the queue counters of their devices. */
    [Q_MSG_INS] =
        {"IITIIIIB",
         "WITH m AS (INSERT INTO messages(id, devkey, sender, sender_device, device_id, type, ts, body)"
         " SELECT * FROM unnest($1, $2, $3, $4, $5, $6, $7, $8)"
         " RETURNING devkey, octet_length(body)::bigint AS n),"
         " g AS (SELECT devkey, count(*) AS c, sum(n) AS b FROM m GROUP BY devkey)"
         " UPDATE devices d SET queue_count = d.queue_count + g.c, queue_bytes = d.queue_bytes + g.b"
         " FROM g WHERE d.devkey = g.devkey"},
    /* Every ACK of a batch in one statement: the deleted envelopes' device,
     * size and sender come back for the sums. */
    [Q_MSG_DEL] =
        {"II",
         "WITH k AS (SELECT * FROM unnest($1, $2) AS k(devkey, id)),"
         " m AS (DELETE FROM messages USING k WHERE messages.devkey = k.devkey AND messages.id = k.id"
         " RETURNING messages.devkey, octet_length(messages.body)::bigint AS n, messages.sender),"
         " g AS (SELECT devkey, count(*) AS c, sum(n) AS b FROM m GROUP BY devkey),"
         " u AS (UPDATE devices d SET queue_count = d.queue_count - g.c,"
         " queue_bytes = d.queue_bytes - g.b FROM g WHERE d.devkey = g.devkey)"
         " SELECT devkey, n, sender FROM m"},
    [Q_MSG_FETCH] = {"iii",
                     "SELECT id, sender, sender_device, device_id, type, ts, body FROM messages"
                     " WHERE devkey = $1 AND id > $2 ORDER BY id LIMIT $3"},
    [Q_MSG_EXPIRE] = {"i",
                      "WITH m AS (DELETE FROM messages WHERE ts < $1 RETURNING devkey,"
                      " octet_length(body)::bigint AS n),"
                      " g AS (SELECT devkey, count(*) AS c, sum(n) AS b FROM m GROUP BY devkey),"
                      " u AS (UPDATE devices d SET queue_count = d.queue_count - g.c,"
                      " queue_bytes = d.queue_bytes - g.b FROM g WHERE d.devkey = g.devkey)"
                      " SELECT count(*) FROM m"},
    [Q_MSG_EXPIRING] = {"ii",
                        "SELECT m.id, m.devkey, m.device_id, a.username, m.sender, m.sender_device, m.ts"
                        " FROM messages m JOIN devices d ON d.devkey = m.devkey"
                        " JOIN accounts a ON a.id = d.account_id WHERE m.ts < $1 AND m.sender <> ''"
                        " ORDER BY m.sender, m.sender_device, m.devkey, m.id LIMIT $2"},
    [Q_QUEUE_TOTAL] = {"",
                       "SELECT coalesce(sum(queue_count), 0)::bigint, coalesce(sum(queue_bytes), 0)::bigint"
                       " FROM devices"},
    /* At least every id handed out so far (the last block's end): no index
     * on id alone is kept, and the horizon only needs an upper bound of what
     * is committed (store.h). */
    [Q_MSG_MAX] = {"", "SELECT CASE WHEN is_called THEN last_value + 1023 ELSE 0 END::bigint FROM sotto_msg_ids"},
    [Q_EPOCH] = {"ii",
                 "UPDATE devices d SET epoch = GREATEST(d.epoch, $2) FROM (SELECT epoch FROM devices"
                 " WHERE devkey = $1 FOR UPDATE) o WHERE d.devkey = $1 RETURNING o.epoch"},
    [Q_SENDER_COUNT] = {"it", "SELECT count(*) FROM messages WHERE devkey = $1 AND sender = $2"},
    /* Shared mode: the same count without sending the transaction's deferred
     * writes first (which would lock their devices early, out of the lock
     * order): the envelopes it is about to delete ($3) are left out here, and
     * the ones it is about to insert are counted in memory (pg_sender_count). */
    [Q_SENDER_COUNT_PEND] = {"itI",
                             "SELECT count(*) FROM messages WHERE devkey = $1 AND sender = $2 AND id <> ALL($3)"},
    [Q_SENDER_SUMS] = {"", "SELECT sender, sum(octet_length(body))::bigint FROM messages GROUP BY sender"},
    [Q_DEV_FIND] = {"ii", "SELECT devkey, queue_bytes FROM devices WHERE account_id = $1 AND device_id = $2"},
    [Q_DEV_DEL] = {"i",
                   "WITH a AS (DELETE FROM messages WHERE devkey = $1 RETURNING sender,"
                   " octet_length(body)::bigint AS n), b AS (DELETE FROM onetime"
                   " WHERE devkey = $1), c AS (DELETE FROM signed_prekeys WHERE devkey = $1),"
                   " e AS (DELETE FROM last_resort WHERE devkey = $1), f AS (DELETE FROM devices"
                   " WHERE devkey = $1) SELECT sender, sum(n)::bigint FROM a GROUP BY sender"},
    [Q_DEV_SECRET] = {"ibb", "UPDATE devices SET secret_hash = $2, prev_secret_hash = $3 WHERE devkey = $1"},
    [Q_DEV_CONFIRM] = {"i",
                       "UPDATE devices SET prev_secret_hash = NULL WHERE devkey = $1 AND prev_secret_hash IS NOT NULL"},
    [Q_DEV_EXISTS] = {"i", "SELECT 1 FROM devices WHERE devkey = $1"},
    [Q_DEV_IS] = {"iii", "SELECT 1 FROM devices WHERE devkey = $1 AND account_id = $2 AND device_id = $3"},
    [Q_ID_BLOCK] = {"", "SELECT nextval('sotto_msg_ids')"},
    /* Raises the sequence so that the next block starts above $1 (never lowers it). */
    [Q_ID_FLOOR] = {"i",
                    "SELECT setval('sotto_msg_ids', $1) FROM sotto_msg_ids"
                    " WHERE NOT is_called OR last_value + 1023 < $1"},
    /* with it, which blobs its devices fetched (blob_fetches): nothing of a
     * deleted account that no report could show */
    [Q_ACC_DEL] = {"i", "WITH r AS (DELETE FROM recovery WHERE account_id = $1), f AS (DELETE FROM blob_fetches"
                        " WHERE account_id = $1) DELETE FROM accounts WHERE id = $1"},
    [Q_HOLD_PUT] = {"ti",
                    "INSERT INTO held_names(canon, until_ms) VALUES($1, $2)"
                    " ON CONFLICT (canon) DO UPDATE SET until_ms = EXCLUDED.until_ms"},
    [Q_HOLD_EXPIRE] = {"i", "DELETE FROM held_names WHERE until_ms <= $1"},
    [Q_HOLD_GET] = {"t", "SELECT 1 FROM held_names WHERE canon = $1"},
    /* blobs (srv_blob.c) */
    [Q_BLOB_INS] = {"biiiii",
                    "INSERT INTO blobs(id, account_id, size, fetches, committed, created_ms, expires_ms)"
                    " VALUES($1, $2, $3, $4, 0, $5, $6)"},
    [Q_BLOB_GET] = {"b", "SELECT id, account_id, size, fetches, committed, created_ms, expires_ms FROM blobs"
                         " WHERE id = $1"},
    [Q_BLOB_COMMIT] = {"b", "UPDATE blobs SET committed = 1 WHERE id = $1"},
    [Q_BLOB_DEL] = {"b", "WITH f AS (DELETE FROM blob_fetches WHERE id = $1) DELETE FROM blobs WHERE id = $1"},
    /* Once per device: a repeat inserts nothing and counts nothing. */
    [Q_BLOB_FETCHED] = {"bii",
                        "WITH ins AS (INSERT INTO blob_fetches(id, account_id, device_id)"
                        " SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM blobs WHERE id = $1)"
                        " ON CONFLICT DO NOTHING RETURNING 1)"
                        " UPDATE blobs SET fetches = GREATEST(fetches - (SELECT count(*) FROM ins), 0) WHERE id = $1"
                        " RETURNING fetches"},
    [Q_BLOB_SET_FETCHES] = {"bi",
                            "UPDATE blobs SET fetches = GREATEST($2 - (SELECT count(*) FROM blob_fetches f"
                            " WHERE f.id = $1), 0) WHERE id = $1 RETURNING fetches"},
    [Q_BLOB_USAGE] = {"i", "SELECT count(*), coalesce(sum(size), 0)::bigint FROM blobs WHERE account_id = $1"},
    [Q_BLOB_EXPIRED] = {"ii",
                        "WITH d AS (DELETE FROM blobs WHERE id IN (SELECT id FROM blobs WHERE expires_ms <= $1"
                        " ORDER BY expires_ms LIMIT $2) RETURNING id),"
                        " f AS (DELETE FROM blob_fetches WHERE id IN (SELECT id FROM d))"
                        " SELECT id FROM d"},
    [Q_BLOB_ITER] = {"i", "SELECT id, account_id, size, fetches, committed, created_ms, expires_ms FROM blobs"
                          " WHERE account_id = $1 ORDER BY created_ms"},
    [Q_BLOB_FETCHES_ITER] = {"i", "SELECT id, device_id FROM blob_fetches WHERE account_id = $1"
                                  " ORDER BY device_id, id"},
    [Q_REC_PUT] = {"ib",
                   "INSERT INTO recovery(account_id, hash) VALUES($1, $2)"
                   " ON CONFLICT (account_id) DO UPDATE SET hash = EXCLUDED.hash"},
    [Q_REC_DEL] = {"i", "DELETE FROM recovery WHERE account_id = $1"},
    [Q_REC_GET] = {"t",
                   "SELECT a.id, r.hash FROM accounts a LEFT JOIN recovery r ON r.account_id = a.id"
                   " WHERE a.username = $1"},
    [Q_ACC_IDENTITY] = {"ib", "UPDATE accounts SET identity = $2 WHERE id = $1"},
    [Q_DEV_IDENT_GET] = {"i", "SELECT identity FROM devices WHERE devkey = $1"},
    [Q_DEV_IDENT_SET] = {"ib", "UPDATE devices SET identity = $2 WHERE devkey = $1"},
    /* Shared mode. The device rows a statement of envelope inserts and
     * deletes is about to change, locked in devkey order (so two nodes'
     * statements wait for each other instead of deadlocking), held to
     * COMMIT; sent in the same round trip just before the statements. */
    [Q_DEV_LOCK] = {"I",
                    "SELECT count(*) FROM (SELECT 1 FROM devices WHERE devkey = ANY($1)"
                    " ORDER BY devkey FOR UPDATE) l"},
    /* Shared mode: the envelopes' ids are taken here, after their devices'
     * rows are locked (Q_DEV_LOCK just before): one block (nextval, an
     * INCREMENT of 1024 >= W_MAX_ROWS) for the statement, row i gets
     * base + i - 1. So the ids of one device's envelopes increase in commit
     * order whatever node commits them. */
    [Q_MSG_INS_SHARED] =
        {"ITIIIIB",
         "WITH b AS (SELECT nextval('sotto_msg_ids') AS base),"
         " m AS (INSERT INTO messages(id, devkey, sender, sender_device, device_id, type, ts, body)"
         " SELECT b.base + u.o - 1, u.d, u.s, u.sd, u.di, u.t, u.ts, u.body FROM b,"
         " unnest($1, $2, $3, $4, $5, $6, $7) WITH ORDINALITY AS u(d, s, sd, di, t, ts, body, o)"
         " RETURNING devkey, octet_length(body)::bigint AS n),"
         " g AS (SELECT devkey, count(*) AS c, sum(n) AS b FROM m GROUP BY devkey),"
         " u AS (UPDATE devices d SET queue_count = d.queue_count + g.c, queue_bytes = d.queue_bytes + g.b"
         " FROM g WHERE d.devkey = g.devkey)"
         " SELECT base FROM b"},
    [Q_DEVLIST_PUT] = {"iiibb", "INSERT INTO devlists(account_id, version, ms, ids, list) VALUES($1, $2, $3, $4, $5)"},
    [Q_DEVLIST_GET] = {"t",
                       "SELECT l.version, l.list FROM devlists l JOIN accounts a ON a.id = l.account_id"
                       " WHERE a.username = $1 ORDER BY l.version DESC LIMIT 1"},
    [Q_DEVLIST_GET_VER] = {"ti",
                           "SELECT l.list FROM devlists l JOIN accounts a ON a.id = l.account_id"
                           " WHERE a.username = $1 AND l.version = $2"},
    [Q_DEVLIST_IDS] = {"t",
                       "SELECT l.ids FROM devlists l JOIN accounts a ON a.id = l.account_id"
                       " WHERE a.username = $1 ORDER BY l.version DESC LIMIT 1"},
    [Q_DEVLIST_ITER] = {"i", "SELECT version, ms, ids FROM devlists WHERE account_id = $1 ORDER BY version"},
    [Q_DEVLIST_CLEAR] = {"i", "DELETE FROM devlists WHERE account_id = $1"},
    /* key transparency (srv_kt.c): entries are written by the holder of
     * the append lock only (Q_KT_LOCK), in the transaction of the values
     * they log */
    [Q_KT_ENTRY_PUT] = {"ibb", "INSERT INTO kt_entries(idx, head, upd) VALUES($1, $2, $3)"},
    [Q_KT_ENTRIES] = {"ii", "SELECT idx, head, upd FROM kt_entries WHERE idx >= $1 ORDER BY idx LIMIT $2"},
    [Q_KT_VALUE_PUT] = {"tibb",
                        "INSERT INTO kt_values(label, version, value, opening) VALUES($1, $2, $3, $4)"
                        " ON CONFLICT (label) DO UPDATE SET version = EXCLUDED.version, value = EXCLUDED.value,"
                        " opening = EXCLUDED.opening"},
    [Q_KT_VALUE_GET] = {"t", "SELECT version, value, opening FROM kt_values WHERE label = $1"},
    [Q_KT_VALUE_DEL] = {"t", "DELETE FROM kt_values WHERE label = $1"},
    [Q_KT_LABELS] = {"tti", "SELECT label, value FROM kt_values WHERE label COLLATE \"C\" >= $1 AND label COLLATE \"C\" < $2"
                     " ORDER BY label COLLATE \"C\" LIMIT $3"},
    [Q_KT_LOCK] = {"i", "SELECT pg_advisory_xact_lock($1)"},
    /* A cosignature of a smaller tree never replaces one of a larger tree
     * (two nodes may accept one witness's cosignatures in either order). */
    [Q_KT_COSIG_PUT] = {"bibb",
                        "INSERT INTO kt_cosigs(witness, size, head, cosig) VALUES($1, $2, $3, $4)"
                        " ON CONFLICT (witness) DO UPDATE SET size = EXCLUDED.size, head = EXCLUDED.head,"
                        " cosig = EXCLUDED.cosig WHERE kt_cosigs.size <= EXCLUDED.size"},
    [Q_KT_COSIGS] = {"", "SELECT witness, head, cosig FROM kt_cosigs ORDER BY witness LIMIT 256"},
    [Q_ACC_ITER] = {"ti", "SELECT username, identity FROM accounts WHERE username > $1 ORDER BY username LIMIT $2"},
};

enum { CTL_BEGIN, CTL_SAVEPOINT, CTL_RELEASE, CTL_ROLLBACK_TO, CTL_ORDER_SHARED, CTL_ORDER_EXCL };
/* The order lock's key (PG_ORDER_KEY) is spelled out in the last two. */
static const char *const ctl_sql[] = {"BEGIN", "SAVEPOINT op", "RELEASE op", "ROLLBACK TO op",
                                      "SELECT pg_advisory_xact_lock_shared(126922532351747)",
                                      "SELECT pg_advisory_xact_lock(126922532351747)"};
#define PG_ORDER_KEY 126922532351747LL /* "sotto" + 3: the cluster-wide lock order */
_Static_assert(PG_ORDER_KEY == PG_LOCK_KEY + 2, "the order lock's key follows the migrate lock's");


/* The routing cache: (username, device id) -> devkey and the device's queue
 * counters, committed (n, bytes) and this transaction's changes (dn,
 * dbytes); single writer (store.h). Emptied on rollback, expiry and device
 * removal; bounded (DC_MAX, emptied at the start of a transaction when over). */
#define DC_BUCKETS 4096
#define DC_MAX 65536
struct dent {
  int64_t devkey, n, bytes, dn, dbytes;
  uint32_t device_id, nhash;
  uint8_t ulen, dirty;
  char user[SOTTO_STORE_USER_MAX + 1];
  struct dent *knext, *nnext, *dnext;
};

/* What each query sent since the last sync is, so that finish() knows what
 * its result means. */
enum { K_CTL, K_SYNC, K_INS, K_DEL };
struct sent {
  uint8_t kind;
  int64_t devkey;
  size_t ids_from, ids_n; /* shared K_INS: which of pg.idp its ids go to */
};

/* One column of a binary one-dimensional array parameter (array_send
 * format): a 20-byte header filled in at the end, then per element a 4-byte
 * length and the bytes. */
struct col {
  uint8_t *p;
  size_t len, cap;
};

#define W_COLS 8
#define DL_MAX 64 /* device lists kept for one transaction */
#define UP_MAX 1024 /* device updates deferred in one transaction (up_defer) */
#define W_MAX_ROWS 1024               /* a batch's writes go out in statements of at most this many rows */
#define W_MAX_BYTES (4 * 1024 * 1024) /* or this many bytes */

struct pg {
  PGconn *conn;
  int mode;
  int shared;                  /* SOTTO_STORE_OPEN_SHARED: other nodes write too (store.h) */
  struct sotto_store_ops ops_shared; /* shared: pg_ops with the cluster's horizon (pg_open) */
  int64_t sums_at;             /* shared: when the sums were last read from the database (mono ms) */
  int ctl[PG_CTL_MAX], n_ctl; /* control statements waiting for the next round trip */
  struct sent *sent;          /* queries sent since the last sync */
  size_t n_sent, cap_sent;
  int full;                    /* the last failure was a full disk (SQLSTATE 53100) */
  int broken;                  /* a deferred statement failed: the transaction cannot commit */
  int dead;                    /* a wait timed out: the connection is dropped and made again */
  int sp_want, sp_on, op_bare; /* savepoint asked for, sent; deferred writes outside one */
  int64_t id_next, id_end;     /* the block of envelope ids in hand */
  int64_t lock_sent_us;        /* shared: when the round trip that locks the devices went out (0: none) */
  int64_t lock_us;             /* shared: how long that round trip took (lock_wait_us) */
  int64_t n_rtt;               /* round trips so far (round_trips) */
  struct sotto__sums sb;
  int64_t total, txn_bytes;
  struct dent *bykey[DC_BUCKETS], *byname[DC_BUCKETS], *dirty;
  size_t dc_n;
  /* SENDs and ACKs of the open transaction not sent yet (deferred writes). */
  struct col ins[W_COLS], del[2];
  size_t n_ins, n_del;
  /* Shared mode: where each envelope inserted in the open transaction wants
   * its id (sotto_store_env.id_out, or NULL), in insert order; filled when
   * the insert statement's result (its block's base) comes back. */
  int64_t **idp;
  size_t n_idp, cap_idp, idp_sent;
  struct col lock; /* shared: the devkeys a flush locks first (Q_DEV_LOCK) */
  /* The device lists read in the open transaction (pg_devlist_ids: every
   * SEND reads its recipient's): one round trip per account and batch
   * instead of one per SEND. Forgotten at the transaction's end and at any
   * statement that may write (one that is not a read, order_class). */
  struct dlent {
    char user[SOTTO_STORE_USER_MAX + 1];
    uint32_t ids[SOTTO_STORE_MAX_DEVLIST_IDS];
    size_t n;
    int rc; /* 0 a list, 1 none */
  } dl[DL_MAX];
  size_t dl_n;
  int dl_on; /* inside a transaction (a read outside one is not kept) */
  struct isent { /* devices found by pg_device_is in the open transaction */
    int64_t devkey, account_id;
    uint32_t device_id;
  } is[DL_MAX];
  size_t n_is;
  /* Shared mode: single-row device updates deferred to the flush (up_defer). */
  struct upd {
    int q;
    int64_t devkey, day;
  } up[UP_MAX];
  size_t n_up;
  struct col excl;          /* shared: the ids a queue-share count leaves out (pg_sender_count) */
  struct col chunk[W_COLS]; /* shared: one statement's share of a flush bigger than W_MAX_ROWS rows (send_chunked) */
  int retry;       /* the last failure lost a deadlock (40P01) or a serialization race (40001) */
  int dc_lost;     /* shared: the routing cache was emptied inside the open transaction */
  /* Shared mode: the cluster-wide lock order (order_*, store.h "Shared mode"). */
  int lk_excl;      /* this transaction holds the order lock exclusively */
  int lk_next_excl; /* the next one takes it exclusively: this one had to break the order */
  int64_t lk_max;   /* the highest device row this transaction locked (0: none yet) */
  int64_t *lk_set;  /* the device rows it locked: open addressing, 0 = empty slot */
  int lk_in;        /* inside a transaction (statements outside one hold no locks after them) */
  size_t lk_n, lk_cap;
};

struct args {
  int n;
  const char *v[PG_MAX_PARAMS];
  int len[PG_MAX_PARAMS], fmt[PG_MAX_PARAMS];
  char ib[PG_MAX_PARAMS][8];
};

static void a_i64(struct args *a, int64_t x) {
  uint64_t u = (uint64_t)x;
  int i;
  for (i = 0; i < 8; i++) a->ib[a->n][i] = (char)(u >> (56 - 8 * i));
  a->v[a->n] = a->ib[a->n];
  a->len[a->n] = 8;
  a->fmt[a->n++] = 1;
}

static void a_bin(struct args *a, const void *p, size_t len) {
  a->v[a->n] = p ? (const char *)p : "";
  a->len[a->n] = (int)len;
  a->fmt[a->n++] = 1;
}

static void a_txt(struct args *a, const char *s) {
  a_bin(a, s, strlen(s));
}

/* A bigint, integer or smallint column of a binary result. */
static int64_t g_i64(const PGresult *r, int row, int col) {
  const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
  int len = PQgetlength(r, row, col), i;
  uint64_t u = 0;
  if (PQgetisnull(r, row, col) || (len != 2 && len != 4 && len != 8)) return 0;
  for (i = 0; i < len; i++) u = u << 8 | p[i];
  if (len == 2) return (int16_t)u;
  if (len == 4) return (int32_t)u;
  return (int64_t)u;
}

static void g_blob(const PGresult *r, int row, int col, uint8_t *dst, size_t cap, size_t *len) {
  size_t n = (size_t)PQgetlength(r, row, col);
  if (n > cap) n = cap; /* cannot happen: inputs were capped before insert */
  if (n) memcpy(dst, PQgetvalue(r, row, col), n);
  *len = n;
}

/* ---- the pipeline ------------------------------------------------------------------ */

static int note_sent(struct pg *s, int kind, int64_t devkey) {
  if (s->n_sent == s->cap_sent) {
    size_t cap = s->cap_sent ? s->cap_sent * 2 : 64;
    struct sent *n = realloc(s->sent, cap * sizeof *n);
    if (!n) return SOTTO_ERR_NOMEM;
    s->sent = n;
    s->cap_sent = cap;
  }
  s->sent[s->n_sent].kind = (uint8_t)kind;
  s->sent[s->n_sent].ids_from = s->sent[s->n_sent].ids_n = 0;
  s->sent[s->n_sent++].devkey = devkey;
  return 0;
}

static int send_ctl(struct pg *s) {
  int i;
  for (i = 0; i < s->n_ctl; i++) {
    if (note_sent(s, K_CTL, 0) != 0 ||
        !PQsendQueryParams(s->conn, ctl_sql[s->ctl[i]], 0, NULL, NULL, NULL, NULL, 1))
      return SOTTO_ERR_STORE;
  }
  s->n_ctl = 0;
  return 0;
}

static void ctl_push(struct pg *s, int c) {
  /* Full (cannot happen with the server's pattern): send what waits now; its
   * results are read, and checked, with the next statement's. */
  if (s->n_ctl + 2 > PG_CTL_MAX && send_ctl(s) != 0) s->broken = 1;
  s->ctl[s->n_ctl++] = c;
  if (c == CTL_ROLLBACK_TO) s->ctl[s->n_ctl++] = CTL_RELEASE;
}

/* Sends one prepared statement after any waiting control statements. */
static int raw_send(struct pg *s, int q, const struct args *a, int kind) {
  char name[16];
  snprintf(name, sizeof name, "q%d", q);
  if (send_ctl(s) != 0 || note_sent(s, kind, 0) != 0) return SOTTO_ERR_STORE;
  if (!PQsendQueryPrepared(s->conn, name, a ? a->n : 0, a ? a->v : NULL, a ? a->len : NULL, a ? a->fmt : NULL,
                           1))
    return SOTTO_ERR_STORE;
  return 0;
}

static int flush_writes(struct pg *s);
static void writes_clear(struct pg *s);

/* Shared mode: a transaction's id destinations are forgotten at its end. */
static void idp_clear(struct pg *s) {
  s->n_idp = s->idp_sent = 0;
}

/* Shared mode: the deferred envelope writes of a batch wait for its COMMIT
 * (one statement that locks their device rows in devkey order, then the
 * inserts and deletes: store.h, "Shared mode"), unless a statement must see
 * them: these need not (they read no envelope and no queue counter that
 * the routing cache does not already carry). */
static int reads_writes(const struct pg *s, int q) {
  switch (q) {
    case Q_DEV_ROUTE:
      return s->dc_lost; /* the cache lost this transaction's counter changes */
    case Q_ACC_INS:
    case Q_ACC_GET:
    case Q_DEV_MAX:
    case Q_DEV_INS:
    case Q_DEV_LOOKUP:
    case Q_DEV_SEEN:
    case Q_DEV_LIST:
    case Q_DEV_IS:
    case Q_DEV_EXISTS:
    case Q_DEV_SECRET:
    case Q_DEV_CONFIRM:
    case Q_EPOCH:
    case Q_SPK_PUT:
    case Q_LR_PUT:
    case Q_OT_PUT:
    case Q_OT_COUNT:
    case Q_SPK_GET:
    case Q_OT_TAKE:
    case Q_LR_GET:
    case Q_HOLD_PUT:
    case Q_HOLD_GET:
    case Q_HOLD_EXPIRE:
    case Q_REC_PUT:
    case Q_REC_GET:
    case Q_REC_DEL:
    case Q_ACC_IDENTITY:
    /* the log reads and writes only its own tables: an append (under its
     * lock) must not flush the batch's envelope writes, which would take
     * device row locks while it waits for the append lock */
    case Q_KT_ENTRY_PUT:
    case Q_KT_ENTRIES:
    case Q_KT_VALUE_PUT:
    case Q_KT_VALUE_GET:
    case Q_KT_VALUE_DEL:
    case Q_KT_LABELS:
    case Q_KT_LOCK:
    case Q_KT_COSIG_PUT:
    case Q_KT_COSIGS:
    case Q_ACC_ITER:
    /* the signed device lists (every SEND asks): no envelope in them */
    case Q_DEVLIST_IDS:
    case Q_DEVLIST_GET:
    case Q_DEVLIST_GET_VER:
    case Q_DEV_IDENT_GET:
    case Q_DEV_IDENT_SET:
    case Q_SENDER_COUNT_PEND: /* sees the deferred writes through its parameters */
      return 0;
    default:
      return 1;
  }
}

/* ---- shared mode: one lock order for every node's transactions -------------------- *
 *
 * Nodes' batches run concurrently on the same rows. A deadlock needs two
 * transactions that each wait for a lock the other holds; it cannot happen
 * if every transaction takes its locks in one total order. The order here:
 *  1. first, the order lock: an advisory lock every transaction of a node
 *     takes before anything else (shared; exclusive, see 3);
 *  2. then device rows, in increasing devkey order across the whole
 *     transaction (each flush locks its rows in one ordered statement,
 *     Q_DEV_LOCK; a single-row device update is a flush of one row);
 *  3. any other row lock (an account, a key upload, a blob, a deletion, the
 *     expiry run, whose UPDATE takes device rows in no order) only under the
 *     order lock taken exclusively, i.e. with no other node's batch running.
 * Statements that lock nothing another transaction holds (reads, a one-time
 * key taken with SKIP LOCKED, the id sequence) need no place in the order.
 * A transaction that would break the order under the shared lock is stopped
 * before the statement is sent and reported by txn_retry as 2: the server
 * runs the batch again, and this time order_begin takes the lock
 * exclusively. The server asks for the exclusive lock up front
 * (txn_serial) for batches it knows need it. */

/* Device rows: 1, a row or class of rows that needs the exclusive lock: 2,
 * no lock another transaction could hold: 0. Unknown statements (a new
 * query) count as 2, which is safe. */
static int order_class(int q) {
  switch (q) {
    case Q_ACC_GET:
    case Q_DEV_MAX:
    case Q_DEV_LOOKUP:
    case Q_DEV_ROUTE:
    case Q_DEV_LIST:
    case Q_DEV_ITER:
    case Q_OT_COUNT:
    case Q_SPK_GET:
    case Q_OT_TAKE: /* SKIP LOCKED: never waits */
    case Q_LR_GET:
    case Q_MSG_FETCH:
    case Q_MSG_EXPIRING:
    case Q_QUEUE_TOTAL:
    case Q_MSG_MAX:
    case Q_SENDER_COUNT:
    case Q_SENDER_COUNT_PEND:
    case Q_SENDER_SUMS:
    case Q_DEV_FIND:
    case Q_DEV_EXISTS:
    case Q_DEV_IS:
    case Q_ID_BLOCK:
    case Q_BLOB_GET:
    case Q_BLOB_USAGE:
    case Q_BLOB_ITER:
    case Q_BLOB_FETCHES_ITER:
    case Q_HOLD_GET:
    case Q_REC_GET:
    case Q_DEVLIST_GET:
    case Q_DEVLIST_GET_VER:
    case Q_DEVLIST_IDS:
    case Q_DEVLIST_ITER:
    case Q_KT_ENTRIES: /* the log's reads; its writes and its append lock stay 2 */
    case Q_KT_VALUE_GET:
    case Q_KT_LABELS:
    case Q_KT_COSIGS:
    case Q_ACC_ITER:
    case Q_DEV_IDENT_GET:
      return 0;
    case Q_DEV_SEEN: /* $1 is the devkey */
    case Q_DEV_IDENT_SET:
    case Q_DEV_SECRET:
    case Q_DEV_CONFIRM:
    case Q_EPOCH:
      return 1;
    default:
      return 2;
  }
}

static uint64_t order_be64(const uint8_t *p) {
  uint64_t x = 0;
  int i;
  for (i = 0; i < 8; i++) x = x << 8 | p[i];
  return x;
}

static int order_has(const struct pg *s, int64_t k) {
  size_t i;
  if (!s->lk_cap) return 0;
  for (i = (size_t)((uint64_t)k * 0x9E3779B97F4A7C15ull >> 32) & (s->lk_cap - 1); s->lk_set[i];
       i = (i + 1) & (s->lk_cap - 1))
    if (s->lk_set[i] == k) return 1;
  return 0;
}

static int order_add(struct pg *s, int64_t k) {
  size_t i;
  if (k <= 0 || order_has(s, k)) return 0;
  if (2 * (s->lk_n + 1) > s->lk_cap) {
    size_t cap = s->lk_cap ? 2 * s->lk_cap : 64, j;
    int64_t *n = calloc(cap, sizeof *n), *old = s->lk_set;
    if (!n) return SOTTO_ERR_NOMEM;
    s->lk_set = n;
    j = s->lk_cap;
    s->lk_cap = cap;
    s->lk_n = 0;
    while (j--)
      if (old[j]) (void)order_add(s, old[j]);
    free(old);
  }
  for (i = (size_t)((uint64_t)k * 0x9E3779B97F4A7C15ull >> 32) & (s->lk_cap - 1); s->lk_set[i];
       i = (i + 1) & (s->lk_cap - 1)) {
  }
  s->lk_set[i] = k;
  s->lk_n++;
  if (k > s->lk_max) s->lk_max = k;
  return 0;
}

/* At BEGIN: the order lock goes first, with BEGIN. */
static void order_begin(struct pg *s) {
  s->lk_excl = s->lk_next_excl;
  s->lk_next_excl = 0;
  s->lk_max = 0;
  if (s->lk_n) memset(s->lk_set, 0, s->lk_cap * sizeof *s->lk_set);
  s->lk_n = 0;
  s->lk_in = 1;
  ctl_push(s, s->lk_excl ? CTL_ORDER_EXCL : CTL_ORDER_SHARED);
}

/* The transaction would break the order: nothing more is sent, it fails,
 * and its rerun takes the order lock exclusively. */
static int order_broken(struct pg *s) {
  s->lk_next_excl = 1;
  s->retry = 2;
  s->broken = 1;
  return SOTTO_ERR_STORE;
}

/* Before a flush: its device rows (n big-endian devkeys, each after a
 * 4-byte length, stride 12) are new rows only above every row held. */
static int order_rows(struct pg *s, const uint8_t *p, size_t n) {
  size_t i;
  int64_t lo = INT64_MAX, hi = 0;
  if (!s->shared || !s->lk_in || s->lk_excl) return 0;
  for (i = 0; i < n; i++) {
    int64_t k = (int64_t)order_be64(p + 12 * i + 4);
    if (order_has(s, k)) continue;
    if (k < lo) lo = k;
    if (k > hi) hi = k;
  }
  if (hi == 0) return 0; /* all held already */
  if (lo <= s->lk_max) return order_broken(s);
  for (i = 0; i < n; i++)
    if (order_add(s, (int64_t)order_be64(p + 12 * i + 4)) != 0) {
      s->broken = 1;
      return SOTTO_ERR_NOMEM;
    }
  return 0;
}

/* Before an immediate statement. */
static int order_stmt(struct pg *s, int q, const struct args *a) {
  int c;
  int64_t k;
  if (!s->shared || !s->lk_in || s->lk_excl || (c = order_class(q)) == 0) return 0;
  if (c == 2 || !a || a->n < 1 || a->len[0] != 8) return order_broken(s);
  k = (int64_t)order_be64((const uint8_t *)a->v[0]);
  if (order_has(s, k)) return 0;
  if (k <= s->lk_max) return order_broken(s);
  if (order_add(s, k) != 0) {
    s->broken = 1;
    return SOTTO_ERR_NOMEM;
  }
  return 0;
}

/* store.h txn_serial: called right after begin, before anything is sent. */
static int pg_txn_serial(void *v) {
  struct pg *s = v;
  int i;
  if (!s->shared || s->lk_excl) return 0;
  for (i = 0; i < s->n_ctl; i++)
    if (s->ctl[i] == CTL_ORDER_SHARED) {
      s->ctl[i] = CTL_ORDER_EXCL;
      s->lk_excl = 1;
      return 0;
    }
  return SOTTO_ERR_USAGE; /* the shared lock went out already */
}

/* Queues one prepared statement whose result is awaited (finish): first the
 * deferred writes collected so far (so that it sees them), then, for an op
 * that asked for one, its savepoint. Savepoints are made only for ops that
 * wait for a result, right before their first statement: an op of deferred
 * writes alone (SEND with a cached route, ACK) needs none, because the
 * failure of a deferred write fails the whole batch. */
static int send_q(struct pg *s, int q, const struct args *a) {
  if (order_class(q) != 0) s->dl_n = s->n_is = 0; /* it may write: what was kept may be stale */
  if (!s->shared || reads_writes(s, q)) {
    /* Rows of earlier ops sent inside this op's open savepoint would go
     * with it if it were undone: then the whole batch fails instead. */
    if (s->sp_on && (s->n_ins || s->n_del || s->n_up)) s->op_bare = 1;
    if (flush_writes(s) != 0) return SOTTO_ERR_STORE;
  }
  if (s->shared && order_stmt(s, q, a) != 0) return SOTTO_ERR_STORE;
  if (s->sp_want && !s->op_bare) {
    ctl_push(s, CTL_SAVEPOINT);
    s->sp_on = 1;
    s->sp_want = 0;
  }
  return raw_send(s, q, a, K_SYNC);
}

static void note_error(struct pg *s, const PGresult *r) {
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  if (state && (strcmp(state, "53100") == 0 || strcmp(state, "53000") == 0)) s->full = 1;
  if (state && (strcmp(state, "40P01") == 0 || strcmp(state, "40001") == 0)) s->retry = 1;
}

static struct dent *dc_by_key(struct pg *s, int64_t devkey);

/* A deferred ACK statement's result: each deleted envelope's size and
 * sender leave the sums. */
static void del_done(struct pg *s, const PGresult *r) {
  int i;
  for (i = 0; i < PQntuples(r); i++) {
    char sender[SOTTO_STORE_USER_MAX + 1] = "";
    size_t n = (size_t)PQgetlength(r, i, 2);
    int64_t devkey = g_i64(r, i, 0), bytes = g_i64(r, i, 1);
    struct dent *e;
    if (n <= SOTTO_STORE_USER_MAX) {
      memcpy(sender, PQgetvalue(r, i, 2), n);
      sender[n] = 0;
    }
    s->txn_bytes -= bytes;
    if (sotto__sums_add(&s->sb, sender, -bytes) != 0) s->broken = 1;
    if ((e = dc_by_key(s, devkey)) != NULL) {
      e->dn -= 1;
      e->dbytes -= bytes;
    }
  }
}

static int64_t mono_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int64_t mono_us(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (int64_t)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static int wait_ms(const struct pg *s) {
  return s->mode == SOTTO_STORE_OPEN_WRITER ? PG_WAIT_WRITER_MS : PG_WAIT_READER_MS;
}

/* PQgetResult with a deadline (the connection is non-blocking): NULL with
 * *timed_out set when nothing came in time. */
static PGresult *get_result(struct pg *s, int64_t deadline, int *timed_out) {
  for (;;) {
    int f = PQflush(s->conn), n;
    int64_t left;
    struct pollfd pf;
    if (f < 0) return PQgetResult(s->conn); /* the connection failed: libpq says so */
    if (f == 0 && !PQisBusy(s->conn)) return PQgetResult(s->conn);
    if ((left = deadline - mono_ms()) <= 0) {
      *timed_out = 1;
      return NULL;
    }
    pf.fd = PQsocket(s->conn);
    pf.events = (short)(POLLIN | (f ? POLLOUT : 0));
    pf.revents = 0;
    n = poll(&pf, 1, left > INT_MAX ? INT_MAX : (int)left);
    if (n < 0 && errno != EINTR) {
      *timed_out = 1;
      return NULL;
    }
    if (n > 0 && (pf.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(s->conn))
      return PQgetResult(s->conn);
  }
}

/* Syncs and reads every result. A failed control statement or awaited
 * statement fails the call; a failed deferred write also marks the
 * transaction broken. *last (if not NULL) gets the result of the last query
 * sent when that one was awaited (K_SYNC), to be cleared by the caller. */
static int finish(struct pg *s, PGresult **last) {
  size_t got = 0, nulls = 0;
  int rc = 0;
  if (last) *last = NULL;
  int64_t deadline = mono_ms() + wait_ms(s);
  s->n_rtt++;
  if (!PQpipelineSync(s->conn)) rc = SOTTO_ERR_STORE;
  for (;;) {
    int timed_out = 0;
    PGresult *r = get_result(s, deadline, &timed_out);
    ExecStatusType st;
    const struct sent *k;
    if (timed_out) {
      fprintf(stderr,
              "level=error event=store_timeout backend=postgresql conn=%s ms=%d hint=\"PostgreSQL did not "
              "answer in time; the connection is made again\"\n",
              s->mode == SOTTO_STORE_OPEN_WRITER ? "writer" : "reader", wait_ms(s));
      rc = SOTTO_ERR_STORE;
      s->broken = s->dead = 1;
      break;
    }
    if (!r) {
      /* One NULL ends each query's results; more than that means the
       * connection is gone. */
      if (++nulls > s->n_sent + 1 || PQstatus(s->conn) != CONNECTION_OK) {
        rc = SOTTO_ERR_STORE;
        s->broken = 1;
        break;
      }
      continue;
    }
    st = PQresultStatus(r);
    if (st == PGRES_PIPELINE_SYNC) {
      PQclear(r);
      break;
    }
    k = got < s->n_sent ? &s->sent[got] : NULL;
    got++;
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
      note_error(s, r);
      rc = SOTTO_ERR_STORE;
      if (!k || k->kind == K_INS || k->kind == K_DEL) s->broken = 1;
    } else if (k && k->kind == K_DEL) {
      del_done(s, r);
    } else if (k && k->kind == K_INS && k->ids_n) {
      /* Shared mode: the statement's block; row i got base + i. */
      int64_t base = PQntuples(r) == 1 ? g_i64(r, 0, 0) : 0;
      size_t j;
      if (base <= 0 || k->ids_from + k->ids_n > s->n_idp) s->broken = 1;
      for (j = 0; base > 0 && j < k->ids_n && k->ids_from + j < s->n_idp; j++)
        if (s->idp[k->ids_from + j]) *s->idp[k->ids_from + j] = base + (int64_t)j;
    }
    if (last && got == s->n_sent && k && k->kind == K_SYNC && rc == 0)
      *last = r;
    else
      PQclear(r);
  }
  s->n_sent = 0;
  if (s->lock_sent_us) {
    s->lock_us = mono_us() - s->lock_sent_us;
    s->lock_sent_us = 0;
  }
  if (rc != 0 && last && *last) {
    PQclear(*last);
    *last = NULL;
  }
  return rc;
}

/* One statement in one round trip: its result (NULL on failure). */
static PGresult *run(struct pg *s, int q, const struct args *a) {
  PGresult *r;
  if (send_q(s, q, a) != 0) {
    (void)finish(s, NULL);
    return NULL;
  }
  return finish(s, &r) == 0 ? r : NULL;
}

static int run_ok(struct pg *s, int q, const struct args *a) {
  PGresult *r = run(s, q, a);
  if (!r) return SOTTO_ERR_STORE;
  PQclear(r);
  return 0;
}

static Oid type_oid(char c) {
  switch (c) {
    case 'i':
      return 20; /* int8 */
    case 't':
      return 25; /* text */
    case 'b':
      return 17; /* bytea */
    case 'I':
      return 1016; /* int8[] */
    case 'T':
      return 1009; /* text[] */
    default:
      return 1001; /* bytea[] */
  }
}

/* ---- connection set-up ------------------------------------------------------------- */

static int exec_simple(PGconn *c, const char *q, char *why, size_t why_len) {
  PGresult *r = PQexec(c, q);
  ExecStatusType st = PQresultStatus(r);
  int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
  if (!ok && why) snprintf(why, why_len, "PostgreSQL: %s", PQerrorMessage(c));
  PQclear(r);
  return ok ? 0 : SOTTO_ERR_STORE;
}

/* The schema version (0: no sotto schema), or -1 on error. */
static int schema_version(PGconn *c) {
  PGresult *r = PQexec(c, "SELECT to_regclass('sotto_schema') IS NOT NULL");
  int v = -1;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) v = PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (v != 1) return v;
  r = PQexec(c, "SELECT coalesce(max(version), 0) FROM sotto_schema");
  v = -1;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
    char *end;
    long x = strtol(PQgetvalue(r, 0, 0), &end, 10);
    v = *end == 0 && x >= 0 && x < 1000000 ? (int)x : -1;
  }
  PQclear(r);
  return v;
}

static PGconn *pg_connect(const char *conninfo, char *why, size_t why_len) {
  /* A default connect timeout (the URL's own wins: later keywords and the
   * expanded string override earlier ones), so that a reconnect to a host
   * that is gone cannot hold the store thread for minutes. */
  static const char *const keys[] = {"connect_timeout", "keepalives_idle", "keepalives_interval",
                                     "tcp_user_timeout", "dbname", NULL};
  const char *vals[] = {"10", "10", "5", "15000", conninfo, NULL};
  PGconn *c = PQconnectdbParams(keys, vals, 1);
  if (!c || PQstatus(c) != CONNECTION_OK) {
    /* libpq's message names host and database, never the password. */
    snprintf(why, why_len, "cannot connect to PostgreSQL: %s", c ? PQerrorMessage(c) : "no memory");
    if (why[0] && why[strlen(why) - 1] == '\n') why[strlen(why) - 1] = 0;
    PQfinish(c);
    return NULL;
  }
  return c;
}

/* Session settings, schema check, sole-writer lock, prepared statements,
 * pipeline mode: at open and after a reconnect. */
static int setup(struct pg *s, char *why, size_t why_len) {
  int v, i;
  char tmp[256], set[160];
  if (!why) {
    why = tmp;
    why_len = sizeof tmp;
  }
  /* An ack means the commit is on disk, whatever the server's default. */
  snprintf(set, sizeof set,
           "SET synchronous_commit = on; SET application_name = 'sotto-server'; SET statement_timeout = %d",
           wait_ms(s) - 1000);
  if (exec_simple(s->conn, set, why, why_len) != 0) return SOTTO_ERR_STORE;
  v = schema_version(s->conn);
  if (v < 0) {
    snprintf(why, why_len, "cannot read the schema version: %s", PQerrorMessage(s->conn));
    return SOTTO_ERR_STORE;
  }
  if (v == 0) {
    snprintf(why, why_len,
             "the PostgreSQL database has no sotto schema: run 'sotto-server migrate --store URL' first");
    return SOTTO_ERR_STORE;
  }
  if (v < PG_SCHEMA_VERSION) {
    snprintf(why, why_len,
             "the PostgreSQL schema is version %d, this sotto-server needs %d: run 'sotto-server migrate "
             "--store URL'",
             v, PG_SCHEMA_VERSION);
    return SOTTO_ERR_STORE;
  }
  if (v > PG_SCHEMA_VERSION) {
    snprintf(
        why, why_len,
        "the PostgreSQL schema is version %d, newer than this sotto-server (%d): run the sotto-server that "
        "migrated it",
        v, PG_SCHEMA_VERSION);
    return SOTTO_ERR_STORE;
  }
  if (s->mode == SOTTO_STORE_OPEN_WRITER) {
    PGresult *r;
    char lock[64];
    /* Shared nodes hold the lock shared: they exclude a sole writer (and an
     * import), not each other. */
    snprintf(lock, sizeof lock, "SELECT pg_try_advisory_lock%s(%lld)", s->shared ? "_shared" : "",
             (long long)PG_LOCK_KEY);
    /* A server killed a moment ago holds the lock until PostgreSQL has seen
     * its connection close: wait up to 5 s for that, not longer. */
    for (i = 0; i < 100; i++) {
      r = PQexec(s->conn, lock);
      v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
      PQclear(r);
      if (v) break;
      usleep(50000);
    }
    if (!v) {
      snprintf(why, why_len,
               s->shared ? "a sotto-server without --cluster (or an import) is using this PostgreSQL database; "
                           "stop it first"
                         : "another sotto-server is already using this PostgreSQL database (advisory lock "
                           "held); stop it first, or run every node with --cluster");
      return SOTTO_ERR_STORE;
    }
  }
  for (i = 0; i < Q_COUNT; i++) {
    Oid types[PG_MAX_PARAMS];
    size_t j, n = strlen(sql[i].types);
    PGresult *r;
    char qname[16];
    snprintf(qname, sizeof qname, "q%d", i);
    for (j = 0; j < n; j++) types[j] = type_oid(sql[i].types[j]);
    r = PQprepare(s->conn, qname, sql[i].sql, (int)n, types);
    v = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!v) snprintf(why, why_len, "cannot prepare statement %d: %s", i, PQerrorMessage(s->conn));
    PQclear(r);
    if (!v) return SOTTO_ERR_STORE;
  }
  if (PQsetnonblocking(s->conn, 1) != 0 || !PQenterPipelineMode(s->conn)) {
    snprintf(why, why_len, "libpq cannot enter pipeline mode");
    return SOTTO_ERR_STORE;
  }
  s->n_ctl = 0;
  s->n_sent = 0;
  return 0;
}

static int sums_reload(struct pg *s);

/* A lost connection is made again at the next transaction (or read): the
 * batch that saw it go failed and was answered with an error. */
static int ensure(struct pg *s) {
  int ok;
  if (!s->dead && PQstatus(s->conn) == CONNECTION_OK && PQpipelineStatus(s->conn) == PQ_PIPELINE_ON) return 0;
  s->dead = 0;
  PQreset(s->conn);
  s->id_next = s->id_end = 0;
  s->n_sent = 0;
  ok = PQstatus(s->conn) == CONNECTION_OK && setup(s, NULL, 0) == 0 &&
       /* What the lost transaction had added to the sums is gone with it. */
       (s->mode != SOTTO_STORE_OPEN_WRITER || sums_reload(s) == 0);
  /* Said once per attempt (an attempt is made per batch or backlog page
   * while it is down): requests that need the store fail until then. */
  fprintf(stderr, "level=%s event=store_reconnect backend=postgresql conn=%s result=%s\n",
          ok ? "info" : "error", s->mode == SOTTO_STORE_OPEN_WRITER ? "writer" : "reader",
          ok ? "ok" : "failed");
  return ok ? 0 : SOTTO_ERR_STORE;
}

/* ---- in-memory sums (single writer) ------------------------------------------------- */

/* Sums as the connection sees them now (inside or outside a transaction). */
static int sums_reload(struct pg *s) {
  PGresult *r;
  int i, rc = 0;
  sotto__sums_clear(&s->sb);
  if ((r = run(s, Q_SENDER_SUMS, NULL)) == NULL) return SOTTO_ERR_STORE;
  for (i = 0; i < PQntuples(r) && rc == 0; i++) {
    char user[SOTTO_STORE_USER_MAX + 1];
    size_t n = (size_t)PQgetlength(r, i, 0);
    if (n > SOTTO_STORE_USER_MAX) continue;
    memcpy(user, PQgetvalue(r, i, 0), n);
    user[n] = 0;
    rc = sotto__sums_add(&s->sb, user, g_i64(r, i, 1));
  }
  PQclear(r);
  if (rc) return rc;
  if ((r = run(s, Q_QUEUE_TOTAL, NULL)) == NULL) return SOTTO_ERR_STORE;
  s->total = PQntuples(r) == 1 ? g_i64(r, 0, 1) : 0;
  s->txn_bytes = 0;
  s->sums_at = mono_ms();
  PQclear(r);
  return 0;
}

/* ---- transactions ----------------------------------------------------------------- */

/* ---- the routing cache --------------------------------------------------------------- */

static uint32_t dc_key_hash(int64_t devkey) {
  return (uint32_t)((uint64_t)devkey * 0x9E3779B97F4A7C15ull >> 52);
}

static uint32_t dc_name_hash(const char *user, size_t ulen, uint32_t device_id) {
  uint32_t h = 2166136261u ^ device_id;
  size_t i;
  for (i = 0; i < ulen; i++) h = (h ^ (uint8_t)user[i]) * 16777619u;
  return h | 1; /* never 0: 0 marks an entry not in the name index */
}

static struct dent *dc_by_key(struct pg *s, int64_t devkey) {
  struct dent *e;
  for (e = s->bykey[dc_key_hash(devkey) % DC_BUCKETS]; e; e = e->knext)
    if (e->devkey == devkey) return e;
  return NULL;
}

static void dc_clear(struct pg *s) {
  size_t i;
  for (i = 0; i < DC_BUCKETS; i++)
    while (s->bykey[i]) {
      struct dent *e = s->bykey[i];
      s->bykey[i] = e->knext;
      free(e);
    }
  memset(s->byname, 0, sizeof s->byname);
  s->dirty = NULL;
  s->dc_n = 0;
}

static void dc_touch(struct pg *s, struct dent *e) {
  if (e->dirty) return;
  e->dirty = 1;
  e->dnext = s->dirty;
  s->dirty = e;
}

/* ---- transactions ----------------------------------------------------------------- */

static int pg_begin(void *v) {
  struct pg *s = v;
  if (ensure(s) != 0) return SOTTO_ERR_STORE;
  if (s->dc_n > DC_MAX) dc_clear(s);
  if (s->shared) {
    /* Other nodes write too: the routing cache's counters hold for one
     * transaction only, and the per-sender sums are read again from the
     * database every PG_SHARED_SUMS_MS (store.h, "Shared mode"). */
    dc_clear(s);
    if (mono_ms() - s->sums_at >= PG_SHARED_SUMS_MS && sums_reload(s) != 0) return SOTTO_ERR_STORE;
  }
  s->full = 0;
  s->broken = 0;
  s->txn_bytes = 0;
  s->n_ctl = 0;
  s->sp_want = s->sp_on = s->op_bare = 0;
  writes_clear(s);
  s->lock_us = s->lock_sent_us = 0;
  s->retry = s->dc_lost = 0;
  s->dl_n = s->n_is = 0;
  s->dl_on = 1;
  idp_clear(s);
  ctl_push(s, CTL_BEGIN);
  if (s->shared) order_begin(s);
  return 0;
}

static int pg_savepoint(void *v) {
  struct pg *s = v;
  s->sp_want = 1;
  s->sp_on = 0;
  s->op_bare = 0;
  return 0;
}

static int pg_release(void *v) {
  struct pg *s = v;
  if (s->sp_on) ctl_push(s, CTL_RELEASE);
  s->sp_want = s->sp_on = s->op_bare = 0;
  return 0;
}

/* Undoes the op: back to its savepoint. Deferred writes made outside one
 * cannot be undone alone: the whole batch fails instead (nothing of it is
 * acknowledged). */
static int pg_rollback_to(void *v) {
  struct pg *s = v;
  s->dl_n = s->n_is = 0; /* the undone op may have written a list */
  if (s->op_bare) s->broken = 1;
  if (s->sp_on) {
    ctl_push(s, CTL_ROLLBACK_TO);
    /* Its routing-cache changes are unknown now: start again from the
     * database (which the rollback puts back). */
    dc_clear(s);
    s->dc_lost = 1;
  }
  s->sp_want = s->sp_on = s->op_bare = 0;
  return s->broken ? SOTTO_ERR_STORE : 0;
}

/* COMMIT of a transaction that hit an error answers ROLLBACK without an
 * error: only the tag COMMIT means committed. The deferred writes' results
 * come back in the same round trip, before it. */
static int pg_commit(void *v) {
  struct pg *s = v;
  PGresult *r;
  struct dent *e;
  int ok;
  if ((s->n_ctl == 1 || (s->n_ctl == 2 && s->ctl[1] >= CTL_ORDER_SHARED)) && s->ctl[0] == CTL_BEGIN &&
      s->n_sent == 0 && !s->n_ins && !s->n_del && !s->n_up) {
    s->lk_in = 0;
    s->n_ctl = 0; /* nothing was sent: nothing to commit */
    return 0;
  }
  s->dl_n = s->n_is = 0;
  s->dl_on = 0;
  if (s->broken) return SOTTO_ERR_STORE;
  if (flush_writes(s) != 0 || send_ctl(s) != 0 || note_sent(s, K_SYNC, 0) != 0 ||
      !PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 1)) {
    (void)finish(s, NULL);
    return SOTTO_ERR_STORE;
  }
  if (finish(s, &r) != 0) return SOTTO_ERR_STORE;
  s->lk_in = 0;
  ok = strcmp(PQcmdStatus(r), "COMMIT") == 0 && !s->broken;
  PQclear(r);
  if (!ok) return SOTTO_ERR_STORE;
  s->total += s->txn_bytes;
  s->txn_bytes = 0;
  idp_clear(s);
  while ((e = s->dirty) != NULL) {
    s->dirty = e->dnext;
    e->n += e->dn;
    e->bytes += e->dbytes;
    e->dn = e->dbytes = 0;
    e->dirty = 0;
  }
  return 0;
}

static void pg_rollback(void *v) {
  struct pg *s = v;
  s->dl_n = s->n_is = 0;
  s->dl_on = 0;
  s->lk_in = 0;
  s->n_ctl = 0;
  idp_clear(s);
  writes_clear(s);
  dc_clear(s);
  if (s->n_sent) (void)finish(s, NULL);
  if (PQstatus(s->conn) == CONNECTION_OK && note_sent(s, K_SYNC, 0) == 0 &&
      PQsendQueryParams(s->conn, "ROLLBACK", 0, NULL, NULL, NULL, NULL, 1))
    (void)finish(s, NULL);
  s->n_sent = 0;
  s->broken = 0;
  if (PQstatus(s->conn) == CONNECTION_OK) (void)sums_reload(s);
}

static void pg_close(void *v) {
  struct pg *s = v;
  int i;
  if (!s) return;
  if (s->conn) PQfinish(s->conn);
  sotto__sums_clear(&s->sb);
  dc_clear(s);
  free(s->sent);
  for (i = 0; i < W_COLS; i++) {
    free(s->ins[i].p);
    free(s->chunk[i].p);
  }
  free(s->lock.p);
  free(s->excl.p);
  free(s->idp);
  free(s->lk_set);
  free(s->del[0].p);
  free(s->del[1].p);
  free(s);
}

static void pg_wal_truncate(void *v) {
  (void)v;
}
/* The reserve file the server gives back on a full disk is on its own host,
 * not PostgreSQL's: a full PostgreSQL disk (SQLSTATE 53100, noted in
 * s->full for the log) fails the requests like any other store error. */
static int pg_disk_full(void *v) {
  (void)v;
  return 0;
}
static void pg_journal_limit(void *v, int64_t bytes) {
  (void)v;
  (void)bytes;
}

/* ---- accounts and devices ----------------------------------------------------------- */

static int pg_account_create(void *v, const char *user, const char *canon, const uint8_t *ik, size_t ik_len,
                             int64_t day, int64_t *account_id) {
  struct args a = {0};
  PGresult *r;
  int rc;
  a_txt(&a, user);
  a_txt(&a, canon);
  a_bin(&a, ik, ik_len);
  a_i64(&a, day);
  if ((r = run(v, Q_ACC_INS, &a)) == NULL) return SOTTO_ERR_STORE;
  /* No row: the name or its canonical form is taken. */
  rc = PQntuples(r) == 1 ? 0 : SOTTO_ERR_DUPLICATE;
  if (rc == 0) *account_id = g_i64(r, 0, 0);
  PQclear(r);
  return rc;
}

static int pg_account_get(void *v, const char *user, struct sotto_store_account *out) {
  struct args a = {0};
  PGresult *r;
  int rc;
  a_txt(&a, user);
  if ((r = run(v, Q_ACC_GET, &a)) == NULL) return SOTTO_ERR_STORE;
  rc = PQntuples(r) == 1 ? 0 : 1;
  if (rc == 0) {
    out->account_id = g_i64(r, 0, 0);
    out->created_day = g_i64(r, 0, 1);
    g_blob(r, 0, 2, out->identity, sizeof out->identity, &out->identity_len);
  }
  PQclear(r);
  return rc;
}

static int pg_device_add(void *v, int64_t account_id, const uint8_t secret_hash[32], int64_t day,
                         uint32_t max_devices, struct sotto_store_device *out) {
  struct args a = {0}, b = {0};
  PGresult *r;
  int64_t count, maxid;
  a_i64(&a, account_id);
  if ((r = run(v, Q_DEV_MAX, &a)) == NULL) return SOTTO_ERR_STORE;
  count = g_i64(r, 0, 0);
  maxid = g_i64(r, 0, 1);
  PQclear(r);
  if (count >= max_devices || maxid >= 0x7FFFFFFF) return SOTTO_ERR_TOO_LARGE;
  a_i64(&b, account_id);
  a_i64(&b, maxid + 1);
  a_bin(&b, secret_hash, 32);
  a_i64(&b, day);
  if ((r = run(v, Q_DEV_INS, &b)) == NULL) return SOTTO_ERR_STORE;
  memset(out, 0, sizeof *out);
  out->devkey = PQntuples(r) == 1 ? g_i64(r, 0, 0) : 0;
  PQclear(r);
  if (!out->devkey) return SOTTO_ERR_STORE;
  out->account_id = account_id;
  out->device_id = (uint32_t)(maxid + 1);
  memcpy(out->secret_hash, secret_hash, 32);
  out->created_day = out->last_seen_day = day;
  return 0;
}

static int pg_device_lookup(void *v, const char *user, uint32_t device_id, struct sotto_store_device *out) {
  struct args a = {0};
  PGresult *r;
  int rc;
  size_t n;
  a_txt(&a, user);
  a_i64(&a, device_id);
  if ((r = run(v, Q_DEV_LOOKUP, &a)) == NULL) return SOTTO_ERR_STORE;
  rc = PQntuples(r) == 1 ? 0 : 1;
  if (rc == 0) {
    out->devkey = g_i64(r, 0, 0);
    out->account_id = g_i64(r, 0, 1);
    out->device_id = (uint32_t)g_i64(r, 0, 2);
    memset(out->secret_hash, 0, 32);
    g_blob(r, 0, 3, out->secret_hash, 32, &n);
    out->created_day = g_i64(r, 0, 4);
    out->last_seen_day = g_i64(r, 0, 5);
    out->queue_count = g_i64(r, 0, 6);
    out->queue_bytes = g_i64(r, 0, 7);
    memset(out->prev_hash, 0, 32);
    out->has_prev = !PQgetisnull(r, 0, 8) && PQgetlength(r, 0, 8) == 32;
    if (out->has_prev) g_blob(r, 0, 8, out->prev_hash, 32, &n);
  }
  PQclear(r);
  return rc;
}

/* From the routing cache, or from the database (whose counters include
 * this transaction's changes: they are updated by the same statement as the
 * insert or delete), then cached. */
static int pg_ids_decode(const PGresult *r, int row, int col, uint32_t *ids, size_t max, size_t *n);

/* Keeps user's device list (column col of row 0 of r, NULL: none) for the
 * rest of the open transaction, if it is not kept yet. */
static void dl_keep(struct pg *s, const char *user, const PGresult *r, int col) {
  struct dlent *e;
  size_t i;
  if (!s->dl_on || s->dl_n >= DL_MAX || strlen(user) > SOTTO_STORE_USER_MAX) return;
  for (i = 0; i < s->dl_n; i++)
    if (strcmp(s->dl[i].user, user) == 0) return;
  e = &s->dl[s->dl_n];
  e->rc = PQgetisnull(r, 0, col) ? 1 : pg_ids_decode(r, 0, col, e->ids, SOTTO_STORE_MAX_DEVLIST_IDS, &e->n);
  if (e->rc < 0) return;
  snprintf(e->user, sizeof e->user, "%s", user);
  s->dl_n++;
}

static int pg_device_route(void *v, const char *user, uint32_t device_id, struct sotto_store_device *out) {
  struct pg *s = v;
  struct args a = {0};
  PGresult *r;
  size_t ulen = strlen(user);
  uint32_t h, b;
  struct dent *e;
  int rc;
  if (ulen > SOTTO_STORE_USER_MAX) return 1;
  h = dc_name_hash(user, ulen, device_id);
  for (e = s->byname[h % DC_BUCKETS]; e; e = e->nnext)
    if (e->nhash == h && e->device_id == device_id && e->ulen == ulen && memcmp(e->user, user, ulen) == 0)
      break;
  memset(out, 0, sizeof *out);
  if (e) {
    out->devkey = e->devkey;
    out->device_id = device_id;
    out->queue_count = e->n + e->dn;
    out->queue_bytes = e->bytes + e->dbytes;
    return 0;
  }
  a_txt(&a, user);
  a_i64(&a, device_id);
  if ((r = run(s, Q_DEV_ROUTE, &a)) == NULL) return SOTTO_ERR_STORE;
  rc = PQntuples(r) == 1 ? 0 : 1;
  if (rc == 0) {
    out->devkey = g_i64(r, 0, 0);
    out->device_id = device_id;
    out->queue_count = g_i64(r, 0, 1);
    out->queue_bytes = g_i64(r, 0, 2);
    dl_keep(s, user, r, 3);
  }
  PQclear(r);
  if (rc != 0 || dc_by_key(s, out->devkey)) return rc;
  if ((e = calloc(1, sizeof *e)) == NULL) return SOTTO_ERR_NOMEM;
  e->devkey = out->devkey;
  e->n = out->queue_count;
  e->bytes = out->queue_bytes;
  e->device_id = device_id;
  e->nhash = h;
  e->ulen = (uint8_t)ulen;
  memcpy(e->user, user, ulen + 1);
  b = dc_key_hash(e->devkey) % DC_BUCKETS;
  e->knext = s->bykey[b];
  s->bykey[b] = e;
  e->nnext = s->byname[h % DC_BUCKETS];
  s->byname[h % DC_BUCKETS] = e;
  s->dc_n++;
  return 0;
}

/* Shared mode, under the order lock taken shared: a single-row device
 * update whose result nobody reads (a day's first login, a secret
 * confirmation) waits for the flush at COMMIT, where its row is locked in
 * devkey order with the envelopes' (send_dev_lock). Sent at once, it would
 * lock its row out of that order whenever the batch also writes to a lower
 * device, and the batch would be rerun exclusively. 1 if deferred. */
static int up_defer(struct pg *s, int q, int64_t devkey, int64_t day) {
  if (!s->shared || !s->lk_in || s->lk_excl || s->n_up == UP_MAX) return 0;
  s->up[s->n_up].q = q;
  s->up[s->n_up].devkey = devkey;
  s->up[s->n_up++].day = day;
  s->op_bare = 1; /* like a deferred envelope write: the op cannot be undone alone */
  return 1;
}

static int pg_device_seen(void *v, int64_t devkey, int64_t day) {
  struct args a = {0};
  if (up_defer(v, Q_DEV_SEEN, devkey, day)) return 0;
  a_i64(&a, devkey);
  a_i64(&a, day);
  return run_ok(v, Q_DEV_SEEN, &a);
}

static int pg_devices_list(void *v, const char *user, uint32_t *ids, int64_t *days, size_t max, size_t *n) {
  struct args a = {0};
  PGresult *r;
  int i;
  *n = 0;
  a_txt(&a, user);
  if ((r = run(v, Q_DEV_LIST, &a)) == NULL) return SOTTO_ERR_STORE;
  for (i = 0; i < PQntuples(r) && *n < max; i++) {
    if (days) days[*n] = g_i64(r, i, 1);
    ids[(*n)++] = (uint32_t)g_i64(r, i, 0);
  }
  PQclear(r);
  return 0;
}

static int pg_devices_iter(void *v, int64_t account_id, sotto_store_dev_cb cb, void *ctx) {
  struct args a = {0};
  PGresult *r;
  int i;
  a_i64(&a, account_id);
  if ((r = run(v, Q_DEV_ITER, &a)) == NULL) return SOTTO_ERR_STORE;
  for (i = 0; i < PQntuples(r); i++) {
    struct sotto_store_device d;
    struct sotto_store_devinfo info;
    memset(&d, 0, sizeof d);
    d.devkey = g_i64(r, i, 0);
    d.account_id = g_i64(r, i, 1);
    d.device_id = (uint32_t)g_i64(r, i, 2);
    d.created_day = g_i64(r, i, 3);
    d.last_seen_day = g_i64(r, i, 4);
    d.queue_count = g_i64(r, i, 5);
    d.queue_bytes = g_i64(r, i, 6);
    info.spk_id = (uint32_t)g_i64(r, i, 7);
    info.spk = PQgetisnull(r, i, 11) ? NULL : (const uint8_t *)PQgetvalue(r, i, 11);
    info.spk_len = info.spk ? (size_t)PQgetlength(r, i, 11) : 0;
    info.ec_count = g_i64(r, i, 8);
    info.kem_count = g_i64(r, i, 9);
    info.has_last_resort = g_i64(r, i, 10) > 0;
    info.epoch = g_i64(r, i, 12);
    if (cb(ctx, &d, &info) != 0) break;
  }
  PQclear(r);
  return 0;
}

static int pg_device_remove(void *v, int64_t account_id, uint32_t device_id, int64_t *devkey) {
  struct pg *s = v;
  struct args a = {0}, b = {0};
  PGresult *r;
  a_i64(&a, account_id);
  a_i64(&a, device_id);
  if ((r = run(s, Q_DEV_FIND, &a)) == NULL) return SOTTO_ERR_STORE;
  if (PQntuples(r) != 1) {
    PQclear(r);
    return 1;
  }
  *devkey = g_i64(r, 0, 0);
  PQclear(r);
  a_i64(&b, *devkey);
  if ((r = run(s, Q_DEV_DEL, &b)) == NULL) return SOTTO_ERR_STORE;
  dc_clear(s);
  /* Its queue leaves the sums, per sender, as an ACK's deletes do (pending
   * in this transaction: kept at commit, reloaded on rollback); no recount
   * of every queue. */
  for (int i = 0; i < PQntuples(r); i++) {
    char sender[SOTTO_STORE_USER_MAX + 1] = "";
    size_t n = (size_t)PQgetlength(r, i, 0);
    int64_t bytes = g_i64(r, i, 1);
    if (n <= SOTTO_STORE_USER_MAX) {
      memcpy(sender, PQgetvalue(r, i, 0), n);
      sender[n] = 0;
    }
    s->txn_bytes -= bytes;
    if (sotto__sums_add(&s->sb, sender, -bytes) != 0) s->broken = 1;
  }
  PQclear(r);
  return 0;
}

/* ---- account deletion and recovery ----------------------------------------------------- */

static int pg_account_delete(void *v, int64_t account_id, const char *canon, int64_t until_ms) {
  struct args a = {0}, b = {0};
  a_i64(&a, account_id);
  if (run_ok(v, Q_ACC_DEL, &a) != 0) return SOTTO_ERR_STORE;
  a_txt(&b, canon);
  a_i64(&b, until_ms);
  return run_ok(v, Q_HOLD_PUT, &b);
}

static int pg_name_held(void *v, const char *canon, int64_t now_ms) {
  struct args a = {0}, b = {0};
  PGresult *r;
  int rc;
  a_i64(&a, now_ms);
  if (run_ok(v, Q_HOLD_EXPIRE, &a) != 0) return SOTTO_ERR_STORE;
  a_txt(&b, canon);
  if ((r = run(v, Q_HOLD_GET, &b)) == NULL) return SOTTO_ERR_STORE;
  rc = PQntuples(r) == 1;
  PQclear(r);
  return rc;
}

static int pg_recovery_set(void *v, int64_t account_id, const uint8_t hash[32]) {
  struct args a = {0};
  a_i64(&a, account_id);
  if (!hash) return run_ok(v, Q_REC_DEL, &a);
  a_bin(&a, hash, 32);
  return run_ok(v, Q_REC_PUT, &a);
}

static int pg_recovery_get(void *v, const char *user, int64_t *account_id, uint8_t hash[32], int *has) {
  struct args a = {0};
  PGresult *r;
  int rc;
  *has = 0;
  a_txt(&a, user);
  if ((r = run(v, Q_REC_GET, &a)) == NULL) return SOTTO_ERR_STORE;
  rc = PQntuples(r) == 1 ? 0 : 1;
  if (rc == 0) {
    *account_id = g_i64(r, 0, 0);
    if (!PQgetisnull(r, 0, 1) && PQgetlength(r, 0, 1) == 32) {
      memcpy(hash, PQgetvalue(r, 0, 1), 32);
      *has = 1;
    }
  }
  PQclear(r);
  return rc;
}

static int pg_account_identity(void *v, int64_t account_id, const uint8_t *ik, size_t ik_len) {
  struct args a = {0};
  a_i64(&a, account_id);
  a_bin(&a, ik, ik_len);
  return run_ok(v, Q_ACC_IDENTITY, &a);
}

static int pg_device_identity_get(void *v, int64_t devkey, uint8_t *buf, size_t cap, size_t *len) {
  struct args a = {0};
  PGresult *r;
  int rc = 1;
  a_i64(&a, devkey);
  if ((r = run(v, Q_DEV_IDENT_GET, &a)) == NULL) return SOTTO_ERR_STORE;
  if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) {
    size_t n = (size_t)PQgetlength(r, 0, 0);
    if (n == 0 || n > cap || n > SOTTO_STORE_MAX_IDENTITY) {
      rc = SOTTO_ERR_STORE;
    } else {
      memcpy(buf, PQgetvalue(r, 0, 0), n);
      *len = n;
      rc = 0;
    }
  }
  PQclear(r);
  return rc;
}

static int pg_device_identity_set(void *v, int64_t devkey, const uint8_t *ik, size_t ik_len) {
  struct args a = {0};
  if (ik_len == 0 || ik_len > SOTTO_STORE_MAX_IDENTITY) return SOTTO_ERR_STORE;
  a_i64(&a, devkey);
  a_bin(&a, ik, ik_len);
  return run_ok(v, Q_DEV_IDENT_SET, &a);
}

/* ---- signed device lists (docs/multi-device.md) ---- */

static int pg_ids_decode(const PGresult *r, int row, int col, uint32_t *ids, size_t max, size_t *n) {
  const uint8_t *p = (const uint8_t *)PQgetvalue(r, row, col);
  size_t len = (size_t)PQgetlength(r, row, col), i;
  if (len % 4 || len / 4 > max) return SOTTO_ERR_STORE;
  for (i = 0; i < len / 4; i++)
    ids[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
  *n = len / 4;
  return 0;
}

static int pg_devlist_put(void *v, int64_t account_id, uint32_t version, const uint32_t *ids, size_t n,
                          const uint8_t *list, size_t len, int64_t ms) {
  struct args a = {0};
  uint8_t b[4 * SOTTO_STORE_MAX_DEVLIST_IDS];
  size_t i;
  if (n > SOTTO_STORE_MAX_DEVLIST_IDS || len == 0 || len > SOTTO_STORE_MAX_DEVLIST) return SOTTO_ERR_STORE;
  for (i = 0; i < n; i++) {
    b[4 * i] = (uint8_t)(ids[i] >> 24);
    b[4 * i + 1] = (uint8_t)(ids[i] >> 16);
    b[4 * i + 2] = (uint8_t)(ids[i] >> 8);
    b[4 * i + 3] = (uint8_t)ids[i];
  }
  a_i64(&a, account_id);
  a_i64(&a, version);
  a_i64(&a, ms);
  a_bin(&a, b, 4 * n);
  a_bin(&a, list, len);
  return run_ok(v, Q_DEVLIST_PUT, &a);
}

static int pg_devlist_get(void *v, const char *user, uint32_t *version, uint8_t *buf, size_t cap, size_t *len) {
  struct args a = {0};
  PGresult *r;
  int rc = 1;
  a_txt(&a, user);
  if ((r = run(v, Q_DEVLIST_GET, &a)) == NULL) return SOTTO_ERR_STORE;
  if (PQntuples(r) == 1) {
    int64_t ver = g_i64(r, 0, 0);
    size_t l = (size_t)PQgetlength(r, 0, 1);
    rc = SOTTO_ERR_STORE;
    if (ver >= 1 && ver <= 0xFFFFFFFFll && l > 0 && l <= cap && l <= SOTTO_STORE_MAX_DEVLIST) {
      *version = (uint32_t)ver;
      memcpy(buf, PQgetvalue(r, 0, 1), l);
      *len = l;
      rc = 0;
    }
  }
  PQclear(r);
  return rc;
}

static int pg_devlist_get_version(void *v, const char *user, uint32_t version, uint8_t *buf, size_t cap,
                                  size_t *len) {
  struct args a = {0};
  PGresult *r;
  int rc = 1;
  a_txt(&a, user);
  a_i64(&a, version);
  if ((r = run(v, Q_DEVLIST_GET_VER, &a)) == NULL) return SOTTO_ERR_STORE;
  if (PQntuples(r) == 1) {
    size_t l = (size_t)PQgetlength(r, 0, 0);
    rc = SOTTO_ERR_STORE;
    if (l > 0 && l <= cap && l <= SOTTO_STORE_MAX_DEVLIST) {
      memcpy(buf, PQgetvalue(r, 0, 0), l);
      *len = l;
      rc = 0;
    }
  }
  PQclear(r);
  return rc;
}

static int pg_devlist_ids(void *v, const char *user, uint32_t *ids, size_t max, size_t *n) {
  struct pg *s = v;
  struct args a = {0};
  struct dlent *e = NULL;
  PGresult *r;
  size_t i;
  int rc = 1;
  if (s->dl_on && strlen(user) <= SOTTO_STORE_USER_MAX) {
    for (i = 0; i < s->dl_n; i++)
      if (strcmp(s->dl[i].user, user) == 0) {
        e = &s->dl[i];
        if (e->rc != 0) return e->rc;
        if (e->n > max) return SOTTO_ERR_STORE; /* as pg_ids_decode */
        memcpy(ids, e->ids, e->n * sizeof *ids);
        *n = e->n;
        return 0;
      }
  }
  a_txt(&a, user);
  if ((r = run(s, Q_DEVLIST_IDS, &a)) == NULL) return SOTTO_ERR_STORE;
  if (PQntuples(r) == 1) {
    rc = pg_ids_decode(r, 0, 0, ids, max, n);
    dl_keep(s, user, r, 0);
  } else if (s->dl_on && s->dl_n < DL_MAX && strlen(user) <= SOTTO_STORE_USER_MAX) {
    e = &s->dl[s->dl_n++]; /* no list */
    e->rc = 1;
    e->n = 0;
    snprintf(e->user, sizeof e->user, "%s", user);
  }
  PQclear(r);
  return rc;
}

static int pg_devlist_iter(void *v, int64_t account_id,
                           int (*cb)(void *ctx, uint32_t version, int64_t ms, const uint32_t *ids, size_t n),
                           void *ctx) {
  struct args a = {0};
  uint32_t ids[SOTTO_STORE_MAX_DEVLIST_IDS];
  PGresult *r;
  size_t n;
  int i, rc = 0;
  a_i64(&a, account_id);
  if ((r = run(v, Q_DEVLIST_ITER, &a)) == NULL) return SOTTO_ERR_STORE;
  for (i = 0; i < PQntuples(r) && rc == 0; i++)
    if ((rc = pg_ids_decode(r, i, 2, ids, SOTTO_STORE_MAX_DEVLIST_IDS, &n)) == 0)
      rc = cb(ctx, (uint32_t)g_i64(r, i, 0), g_i64(r, i, 1), ids, n);
  PQclear(r);
  return rc;
}

static int pg_devlist_clear(void *v, int64_t account_id) {
  struct args a = {0};
  a_i64(&a, account_id);
  return run_ok(v, Q_DEVLIST_CLEAR, &a);
}

/* ---- blobs (attachments, srv_blob.c) ---------------------------------------------------- */

static int pg_blob_create(void *v, const struct sotto_store_blob *b) {
  struct args a = {0};
  a_bin(&a, b->id, SOTTO_STORE_BLOB_ID);
  a_i64(&a, b->account_id);
  a_i64(&a, b->size);
  a_i64(&a, b->fetches_left);
  a_i64(&a, b->created_ms);
  a_i64(&a, b->expires_ms);
  return run_ok(v, Q_BLOB_INS, &a);
}

static void pg_blob_row(const PGresult *r, int i, struct sotto_store_blob *b) {
  memset(b, 0, sizeof *b);
  if (PQgetlength(r, i, 0) == SOTTO_STORE_BLOB_ID) memcpy(b->id, PQgetvalue(r, i, 0), SOTTO_STORE_BLOB_ID);
  b->account_id = g_i64(r, i, 1);
  b->size = g_i64(r, i, 2);
  b->fetches_left = g_i64(r, i, 3);
  b->committed = g_i64(r, i, 4) != 0;
  b->created_ms = g_i64(r, i, 5);
  b->expires_ms = g_i64(r, i, 6);
}

static int pg_blob_get(void *v, const uint8_t *id, struct sotto_store_blob *out) {
  struct args a = {0};
  PGresult *r;
  int rc;
  a_bin(&a, id, SOTTO_STORE_BLOB_ID);
  if ((r = run(v, Q_BLOB_GET, &a)) == NULL) return SOTTO_ERR_STORE;
  rc = PQntuples(r) == 1 ? 0 : 1;
  if (rc == 0) pg_blob_row(r, 0, out);
  PQclear(r);
  return rc;
}

static int pg_blob_commit(void *v, const uint8_t *id) {
  struct args a = {0};
  a_bin(&a, id, SOTTO_STORE_BLOB_ID);
  return run_ok(v, Q_BLOB_COMMIT, &a);
}

static int pg_blob_delete(void *v, const uint8_t *id) {
  struct args a = {0};
  a_bin(&a, id, SOTTO_STORE_BLOB_ID);
  return run_ok(v, Q_BLOB_DEL, &a);
}

/* q (FETCHED or SET_FETCHES, with a), then the row and its devices deleted
 * if no fetch is left. */
static int pg_blob_count(void *v, int q, struct args *a, const uint8_t *id, int64_t *left) {
  PGresult *r;
  int rc;
  if ((r = run(v, q, a)) == NULL) return SOTTO_ERR_STORE;
  rc = PQntuples(r) == 1 ? 0 : 1;
  if (rc == 0) *left = g_i64(r, 0, 0);
  PQclear(r);
  if (rc == 0 && *left == 0) rc = pg_blob_delete(v, id);
  return rc;
}

static int pg_blob_set_fetches(void *v, const uint8_t *id, int64_t fetches, int64_t *left) {
  struct args a = {0};
  a_bin(&a, id, SOTTO_STORE_BLOB_ID);
  a_i64(&a, fetches);
  return pg_blob_count(v, Q_BLOB_SET_FETCHES, &a, id, left);
}

static int pg_blob_fetched(void *v, const uint8_t *id, int64_t account_id, uint32_t device_id, int64_t *left) {
  struct args a = {0};
  a_bin(&a, id, SOTTO_STORE_BLOB_ID);
  a_i64(&a, account_id);
  a_i64(&a, (int64_t)device_id);
  return pg_blob_count(v, Q_BLOB_FETCHED, &a, id, left);
}

static int pg_blob_usage(void *v, int64_t account_id, int64_t *count, int64_t *bytes) {
  struct args a = {0};
  PGresult *r;
  a_i64(&a, account_id);
  if ((r = run(v, Q_BLOB_USAGE, &a)) == NULL) return SOTTO_ERR_STORE;
  *count = PQntuples(r) == 1 ? g_i64(r, 0, 0) : 0;
  *bytes = PQntuples(r) == 1 ? g_i64(r, 0, 1) : 0;
  PQclear(r);
  return 0;
}

static int pg_blob_expired(void *v, int64_t now_ms, uint8_t *ids, size_t max, size_t *n) {
  struct args a = {0};
  PGresult *r;
  int i;
  *n = 0;
  a_i64(&a, now_ms);
  a_i64(&a, (int64_t)max);
  if ((r = run(v, Q_BLOB_EXPIRED, &a)) == NULL) return SOTTO_ERR_STORE;
  for (i = 0; i < PQntuples(r) && *n < max; i++)
    if (PQgetlength(r, i, 0) == SOTTO_STORE_BLOB_ID)
      memcpy(ids + SOTTO_STORE_BLOB_ID * (*n)++, PQgetvalue(r, i, 0), SOTTO_STORE_BLOB_ID);
  PQclear(r);
  return 0;
}

static int pg_blob_iter(void *v, int64_t account_id, int (*cb)(void *ctx, const struct sotto_store_blob *b),
                        void *ctx) {
  struct args a = {0};
  PGresult *r;
  int i, rc = 0;
  a_i64(&a, account_id);
  if ((r = run(v, Q_BLOB_ITER, &a)) == NULL) return SOTTO_ERR_STORE;
  for (i = 0; i < PQntuples(r) && !rc; i++) {
    struct sotto_store_blob b;
    pg_blob_row(r, i, &b);
    rc = cb(ctx, &b);
  }
  PQclear(r);
  return rc;
}

static int pg_blob_fetches_iter(void *v, int64_t account_id,
                                int (*cb)(void *ctx, const uint8_t *id, uint32_t device_id), void *ctx) {
  struct args a = {0};
  PGresult *r;
  int i, rc = 0;
  a_i64(&a, account_id);
  if ((r = run(v, Q_BLOB_FETCHES_ITER, &a)) == NULL) return SOTTO_ERR_STORE;
  for (i = 0; i < PQntuples(r) && !rc; i++)
    if (PQgetlength(r, i, 0) == SOTTO_STORE_BLOB_ID)
      rc = cb(ctx, (const uint8_t *)PQgetvalue(r, i, 0), (uint32_t)g_i64(r, i, 1));
  PQclear(r);
  return rc;
}

static int pg_device_exists(void *v, int64_t devkey) {
  struct args a = {0};
  PGresult *r;
  int rc;
  a_i64(&a, devkey);
  if ((r = run(v, Q_DEV_EXISTS, &a)) == NULL) return 0;
  rc = PQntuples(r) == 1;
  PQclear(r);
  return rc;
}

/* Asked before every SEND (is the sender's device still there?): a device
 * found once is not asked for again in the same transaction (the cache is
 * forgotten like the device lists: at its end and at any statement that
 * may write, e.g. a device removal in the same batch). */
static int pg_device_is(void *v, int64_t devkey, int64_t account_id, uint32_t device_id) {
  struct pg *s = v;
  struct args a = {0};
  PGresult *r;
  size_t i;
  int rc;
  if (s->dl_on)
    for (i = 0; i < s->n_is; i++)
      if (s->is[i].devkey == devkey && s->is[i].account_id == account_id && s->is[i].device_id == device_id)
        return 1;
  a_i64(&a, devkey);
  a_i64(&a, account_id);
  a_i64(&a, device_id);
  if ((r = run(s, Q_DEV_IS, &a)) == NULL) return -1;
  rc = PQntuples(r) == 1;
  PQclear(r);
  if (rc == 1 && s->dl_on && s->n_is < DL_MAX) {
    s->is[s->n_is].devkey = devkey;
    s->is[s->n_is].account_id = account_id;
    s->is[s->n_is++].device_id = device_id;
  }
  return rc;
}

static int pg_device_secret(void *v, int64_t devkey, const uint8_t secret_hash[32], const uint8_t prev_hash[32]) {
  struct args a = {0};
  a_i64(&a, devkey);
  a_bin(&a, secret_hash, 32);
  a_bin(&a, prev_hash, prev_hash ? 32 : 0);
  if (!prev_hash) a.v[a.n - 1] = NULL; /* SQL NULL: no previous secret */
  return run_ok(v, Q_DEV_SECRET, &a);
}

static int pg_device_secret_confirm(void *v, int64_t devkey) {
  struct args a = {0};
  if (up_defer(v, Q_DEV_CONFIRM, devkey, 0)) return 0;
  a_i64(&a, devkey);
  return run_ok(v, Q_DEV_CONFIRM, &a);
}

static int pg_device_epoch_raise(void *v, int64_t devkey, int64_t epoch, int64_t *old) {
  struct args a = {0};
  PGresult *r;
  int rc;
  a_i64(&a, devkey);
  a_i64(&a, epoch);
  if ((r = run(v, Q_EPOCH, &a)) == NULL) return SOTTO_ERR_STORE;
  rc = PQntuples(r) == 1 ? 0 : 1;
  *old = rc == 0 ? g_i64(r, 0, 0) : 0;
  PQclear(r);
  return rc;
}

/* ---- pre-keys ---------------------------------------------------------------------- */

static void key_args(struct args *a, int64_t devkey, int kind, const struct sotto_store_key *k) {
  memset(a, 0, sizeof *a);
  a_i64(a, devkey);
  if (kind >= 0) a_i64(a, kind);
  a_i64(a, k->id);
  a_bin(a, k->p, k->len);
}

/* Every key of an upload in one round trip. */
static int pg_keys_put(void *v, int64_t devkey, const struct sotto_store_keys *k) {
  struct pg *s = v;
  struct args a;
  size_t i;
  int rc = 0;
  if (k->has_signed) {
    key_args(&a, devkey, -1, &k->signed_prekey);
    rc |= send_q(s, Q_SPK_PUT, &a);
  }
  if (k->has_last_resort) {
    key_args(&a, devkey, -1, &k->last_resort);
    rc |= send_q(s, Q_LR_PUT, &a);
  }
  for (i = 0; i < k->n_ec && rc == 0; i++) {
    key_args(&a, devkey, 0, &k->ec[i]);
    rc = send_q(s, Q_OT_PUT, &a);
  }
  for (i = 0; i < k->n_kem && rc == 0; i++) {
    key_args(&a, devkey, 1, &k->kem[i]);
    rc = send_q(s, Q_OT_PUT, &a);
  }
  if (s->n_sent == 0) return 0;
  return finish(s, NULL) != 0 || rc ? SOTTO_ERR_STORE : 0;
}

static int pg_keys_count(void *v, int64_t devkey, int64_t *ec, int64_t *kem) {
  struct args a = {0};
  PGresult *r;
  a_i64(&a, devkey);
  if ((r = run(v, Q_OT_COUNT, &a)) == NULL) return SOTTO_ERR_STORE;
  *ec = g_i64(r, 0, 0);
  *kem = g_i64(r, 0, 1);
  PQclear(r);
  return 0;
}

/* Takes the lowest-id one-time key of a kind: 1 if none is left. */
static int take_onetime(struct pg *s, int64_t devkey, int kind, uint32_t *id, uint8_t *buf, size_t *len) {
  struct args a = {0};
  PGresult *r;
  int rc;
  a_i64(&a, devkey);
  a_i64(&a, kind);
  if ((r = run(s, Q_OT_TAKE, &a)) == NULL) return SOTTO_ERR_STORE;
  rc = PQntuples(r) == 1 ? 0 : 1;
  if (rc == 0) {
    *id = (uint32_t)g_i64(r, 0, 0);
    g_blob(r, 0, 1, buf, SOTTO_STORE_MAX_KEY_BLOB, len);
  }
  PQclear(r);
  return rc;
}

static int pg_bundle_take(void *v, int64_t devkey, int onetime, struct sotto_store_bundle *out) {
  struct pg *s = v;
  struct args a = {0};
  PGresult *r;
  int rc;
  a_i64(&a, devkey);
  if ((r = run(s, Q_SPK_GET, &a)) == NULL) return SOTTO_ERR_STORE;
  if (PQntuples(r) != 1) {
    PQclear(r);
    return 1;
  }
  out->spk_id = (uint32_t)g_i64(r, 0, 0);
  g_blob(r, 0, 1, out->spk, sizeof out->spk, &out->spk_len);
  g_blob(r, 0, 2, out->identity, sizeof out->identity, &out->identity_len);
  PQclear(r);
  rc = onetime ? take_onetime(s, devkey, 0, &out->ec_id, out->ec, &out->ec_len) : 1;
  if (rc < 0) return rc;
  out->has_ec = rc == 0;
  rc = onetime ? take_onetime(s, devkey, 1, &out->kem_id, out->kem, &out->kem_len) : 1;
  if (rc < 0) return rc;
  out->kem_kind = rc == 0 ? 1 : 0;
  if (!out->kem_kind) {
    /* KEM one-time keys exhausted: fall back to the last-resort key. */
    if ((r = run(s, Q_LR_GET, &a)) == NULL) return SOTTO_ERR_STORE;
    if (PQntuples(r) == 1) {
      out->kem_kind = 2;
      out->kem_id = (uint32_t)g_i64(r, 0, 0);
      g_blob(r, 0, 1, out->kem, sizeof out->kem, &out->kem_len);
    }
    PQclear(r);
  }
  return 0;
}

/* ---- queues -------------------------------------------------------------------------- */

/* ---- deferred writes ------------------------------------------------------------------ */

static int col_grow(struct col *c, size_t n) {
  if (c->len == 0) c->len = 20; /* room for the header */
  if (n > c->cap - c->len || !c->p) {
    size_t cap = c->cap ? c->cap : 4096;
    uint8_t *p;
    while (cap - c->len < n) cap *= 2;
    if ((p = realloc(c->p, cap)) == NULL) return SOTTO_ERR_NOMEM;
    c->p = p;
    c->cap = cap;
  }
  return 0;
}

static void be32(uint8_t *p, uint32_t x) {
  p[0] = (uint8_t)(x >> 24);
  p[1] = (uint8_t)(x >> 16);
  p[2] = (uint8_t)(x >> 8);
  p[3] = (uint8_t)x;
}

static int col_bytes(struct col *c, const void *p, size_t n) {
  if (n > 0x7FFFFFFF || col_grow(c, 4 + n) != 0) return SOTTO_ERR_NOMEM;
  be32(c->p + c->len, (uint32_t)n);
  if (n) memcpy(c->p + c->len + 4, p, n);
  c->len += 4 + n;
  return 0;
}

static int col_i64(struct col *c, int64_t x) {
  uint8_t b[8];
  int i;
  for (i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)x >> (56 - 8 * i));
  return col_bytes(c, b, 8);
}

/* Finishes the array header of c (n elements of type oid) as parameter i. */
static void col_arg(struct args *a, struct col *c, size_t n, Oid oid) {
  be32(c->p, 1);                /* dimensions */
  be32(c->p + 4, 0);            /* no NULLs */
  be32(c->p + 8, oid);          /* element type */
  be32(c->p + 12, (uint32_t)n); /* elements */
  be32(c->p + 16, 1);           /* lower bound */
  a_bin(a, c->p, c->len);
}

static void writes_clear(struct pg *s) {
  int i;
  for (i = 0; i < W_COLS; i++) s->ins[i].len = 0;
  s->del[0].len = s->del[1].len = 0;
  s->n_ins = s->n_del = 0;
  s->n_up = 0;
}

/* Shared mode, before the inserts and deletes of a flush: one statement
 * that locks every device row they will change, in devkey order. The
 * elements are copied out of the writes' devkey columns (each element there
 * is a 4-byte length then 8 bytes, after the 20-byte header). */
static int send_dev_lock(struct pg *s) {
  struct args a = {0};
  size_t i;
  s->lock.len = 0;
  if (col_grow(&s->lock, 12 * (s->n_ins + s->n_del + s->n_up)) != 0) return SOTTO_ERR_NOMEM;
  for (i = 0; i < s->n_up; i++) (void)col_i64(&s->lock, s->up[i].devkey); /* room made above */
  if (s->n_ins) {
    memcpy(s->lock.p + s->lock.len, s->ins[1].p + 20, 12 * s->n_ins);
    s->lock.len += 12 * s->n_ins;
  }
  if (s->n_del) {
    memcpy(s->lock.p + s->lock.len, s->del[0].p + 20, 12 * s->n_del);
    s->lock.len += 12 * s->n_del;
  }
  if (order_rows(s, s->lock.p + 20, s->n_ins + s->n_del + s->n_up) != 0) return SOTTO_ERR_STORE;
  col_arg(&a, &s->lock, s->n_ins + s->n_del + s->n_up, 20);
  if (!s->lock_sent_us) s->lock_sent_us = mono_us();
  return raw_send(s, Q_DEV_LOCK, &a, K_INS);
}

static uint32_t rd_be32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Shared mode: rows [0, n) of the ncols columns cols as statements q of at
 * most W_MAX_ROWS rows (one id block each, Q_MSG_INS_SHARED) and about
 * W_MAX_BYTES, in row order, each one's rows copied into s->chunk (a flush
 * that fits one statement sends the columns themselves). All go out after
 * the one Q_DEV_LOCK of the flush, which locked every row they change, so
 * a batch of any size keeps the lock order (store.h, "Shared mode"). */
static int send_chunked(struct pg *s, int q, struct col *cols, int ncols, const char *types, size_t n, int kind) {
  size_t off[W_COLS], end[W_COLS], row = 0;
  int i;
  for (i = 0; i < ncols; i++) off[i] = 20;
  while (row < n) {
    struct args a = {0};
    size_t take = 0, bytes = 0;
    for (i = 0; i < ncols; i++) end[i] = off[i];
    while (row + take < n && take < W_MAX_ROWS && (take == 0 || bytes < W_MAX_BYTES)) {
      for (i = 0; i < ncols; i++) {
        size_t len = 4 + (size_t)rd_be32(cols[i].p + end[i]);
        end[i] += len;
        bytes += len;
      }
      take++;
    }
    for (i = 0; i < ncols; i++) {
      struct col *c = &cols[i];
      if (take < n) {
        c = &s->chunk[i];
        c->len = 0;
        if (col_grow(c, end[i] - off[i]) != 0) return SOTTO_ERR_NOMEM;
        memcpy(c->p + 20, cols[i].p + off[i], end[i] - off[i]);
        c->len = 20 + end[i] - off[i];
      }
      col_arg(&a, c, take, type_oid(types[i]));
    }
    /* libpq copies the parameters when it queues the statement: the
     * scratch columns are free again for the next one. */
    if (raw_send(s, q, &a, kind) != 0) return SOTTO_ERR_STORE;
    if (q == Q_MSG_INS_SHARED) {
      s->sent[s->n_sent - 1].ids_from = s->idp_sent;
      s->sent[s->n_sent - 1].ids_n = take;
      s->idp_sent += take;
    }
    row += take;
    for (i = 0; i < ncols; i++) off[i] = end[i];
  }
  return 0;
}

/* Sends the collected inserts and deletes (results read at the next sync). */
static int flush_writes(struct pg *s) {
  struct args a = {0};
  static const char ins_types[W_COLS] = {'i', 'i', 't', 'i', 'i', 'i', 'i', 'b'};
  int i, rc = 0;
  if (s->shared && (s->n_ins || s->n_del || s->n_up)) rc = send_dev_lock(s);
  for (i = 0; rc == 0 && (size_t)i < s->n_up; i++) {
    /* The deferred single-row device updates (pg_device_seen), their rows
     * locked just above with the others. */
    memset(&a, 0, sizeof a);
    a_i64(&a, s->up[i].devkey);
    if (s->up[i].q == Q_DEV_SEEN) a_i64(&a, s->up[i].day);
    rc = raw_send(s, s->up[i].q, &a, K_INS);
  }
  memset(&a, 0, sizeof a);
  if (rc == 0 && s->n_ins && s->shared) {
    /* Without the id column: the statement takes the ids (Q_MSG_INS_SHARED). */
    rc = send_chunked(s, Q_MSG_INS_SHARED, &s->ins[1], W_COLS - 1, ins_types + 1, s->n_ins, K_INS);
  } else if (rc == 0 && s->n_ins) {
    for (i = 0; i < W_COLS; i++) col_arg(&a, &s->ins[i], s->n_ins, type_oid(ins_types[i]));
    rc = raw_send(s, Q_MSG_INS, &a, K_INS);
  }
  if (rc == 0 && s->n_del && s->shared) {
    rc = send_chunked(s, Q_MSG_DEL, s->del, 2, "ii", s->n_del, K_DEL);
  } else if (rc == 0 && s->n_del) {
    memset(&a, 0, sizeof a);
    col_arg(&a, &s->del[0], s->n_del, 20);
    col_arg(&a, &s->del[1], s->n_del, 20);
    rc = raw_send(s, Q_MSG_DEL, &a, K_DEL);
  }
  writes_clear(s);
  if (rc) s->broken = 1;
  return rc;
}

/* Deferred: collected and sent with the next statement or the COMMIT, all
 * of a batch in one statement; a failure fails the batch. An op that made a
 * deferred write cannot be rolled back alone (op_bare). */
static int pg_msg_insert(void *v, int64_t devkey, struct sotto_store_env *e) {
  struct pg *s = v;
  struct dent *d;
  int rc;
  if (s->shared) {
    /* The id comes with the insert statement's result (Q_MSG_INS_SHARED),
     * written to *e->id_out when it is read (at the latest at COMMIT). */
    if (s->n_idp == s->cap_idp) {
      size_t cap = s->cap_idp ? 2 * s->cap_idp : 256;
      int64_t **n = realloc(s->idp, cap * sizeof *n);
      if (!n) {
        s->broken = 1;
        return SOTTO_ERR_NOMEM;
      }
      s->idp = n;
      s->cap_idp = cap;
    }
    s->idp[s->n_idp++] = e->id_out;
    e->id = 0;
  } else if (s->id_next >= s->id_end) {
    PGresult *r = run(s, Q_ID_BLOCK, NULL);
    if (!r) return SOTTO_ERR_STORE;
    s->id_next = g_i64(r, 0, 0);
    s->id_end = s->id_next + PG_ID_BLOCK;
    PQclear(r);
    if (s->id_next <= 0) return SOTTO_ERR_STORE;
  }
  if (!s->shared) e->id = s->id_next;
  s->op_bare = 1;
  rc = col_i64(&s->ins[0], e->id);
  rc |= col_i64(&s->ins[1], devkey);
  rc |= col_bytes(&s->ins[2], e->sender, strlen(e->sender));
  rc |= col_i64(&s->ins[3], e->sender_device);
  rc |= col_i64(&s->ins[4], e->device_id);
  rc |= col_i64(&s->ins[5], e->type);
  rc |= col_i64(&s->ins[6], e->timestamp_ms);
  rc |= col_bytes(&s->ins[7], e->body, e->body_len);
  if (rc) {
    s->broken = 1;
    return SOTTO_ERR_NOMEM;
  }
  s->n_ins++;
  if (!s->shared) s->id_next++;
  s->txn_bytes += (int64_t)e->body_len;
  if ((d = dc_by_key(s, devkey)) != NULL) {
    d->dn += 1;
    d->dbytes += (int64_t)e->body_len;
    dc_touch(s, d);
  }
  if ((rc = sotto__sums_add(&s->sb, e->sender, (int64_t)e->body_len)) != 0) return rc;
  /* Shared mode: everything waits for the one flush at COMMIT, whatever
   * its size (send_chunked): a flush here would lock these devices before
   * lower ones the batch may still write to. */
  if (!s->shared && (s->n_ins >= W_MAX_ROWS || s->ins[7].len >= W_MAX_BYTES)) return flush_writes(s);
  return 0;
}

/* Deferred too: the sums move when its result is read (del_done), at the
 * latest at COMMIT. *found is not known yet; it only serves SQLite's WAL
 * scrub, which PostgreSQL does not have. */
static int pg_msg_delete(void *v, int64_t devkey, int64_t id, int *found) {
  struct pg *s = v;
  struct dent *d;
  *found = 0;
  s->op_bare = 1;
  if (col_i64(&s->del[0], devkey) != 0 || col_i64(&s->del[1], id) != 0) {
    s->broken = 1;
    return SOTTO_ERR_NOMEM;
  }
  s->n_del++;
  if ((d = dc_by_key(s, devkey)) != NULL) dc_touch(s, d);
  if (!s->shared && s->n_del >= W_MAX_ROWS) return flush_writes(s);
  return 0;
}

static int pg_msg_fetch(void *v, int64_t devkey, int64_t after_id, int limit, sotto_store_env_cb cb,
                        void *ctx) {
  struct pg *s = v;
  struct args a = {0};
  PGresult *r;
  int i;
  if (ensure(s) != 0) return SOTTO_ERR_STORE;
  a_i64(&a, devkey);
  a_i64(&a, after_id);
  a_i64(&a, limit);
  if ((r = run(s, Q_MSG_FETCH, &a)) == NULL) return SOTTO_ERR_STORE;
  for (i = 0; i < PQntuples(r); i++) {
    char sender[SOTTO_STORE_USER_MAX + 1] = "";
    struct sotto_store_env e;
    size_t n = (size_t)PQgetlength(r, i, 1);
    if (n <= SOTTO_STORE_USER_MAX) {
      memcpy(sender, PQgetvalue(r, i, 1), n);
      sender[n] = 0;
    }
    e.id = g_i64(r, i, 0);
    e.sender = sender;
    e.sender_device = (uint32_t)g_i64(r, i, 2);
    e.device_id = (uint32_t)g_i64(r, i, 3);
    e.type = (uint8_t)g_i64(r, i, 4);
    e.timestamp_ms = g_i64(r, i, 5);
    e.body = (const uint8_t *)PQgetvalue(r, i, 6);
    e.body_len = (size_t)PQgetlength(r, i, 6);
    if (cb(ctx, &e) != 0) break;
  }
  PQclear(r);
  return 0;
}

static int pg_expire_scan(void *v, int64_t before_ms, int64_t limit, sotto_store_expiring_cb cb, void *ctx) {
  struct pg *s = v;
  struct args a = {0};
  PGresult *r;
  int i, rc = 0;
  a_i64(&a, before_ms);
  a_i64(&a, limit);
  if ((r = run(s, Q_MSG_EXPIRING, &a)) == NULL) return SOTTO_ERR_STORE;
  for (i = 0; i < PQntuples(r) && rc == 0; i++) {
    char to[SOTTO_STORE_USER_MAX + 1], from[SOTTO_STORE_USER_MAX + 1];
    struct sotto_store_expiring e;
    size_t tn = (size_t)PQgetlength(r, i, 3), fn = (size_t)PQgetlength(r, i, 4);
    if (tn > SOTTO_STORE_USER_MAX || fn > SOTTO_STORE_USER_MAX) continue;
    memcpy(to, PQgetvalue(r, i, 3), tn);
    to[tn] = 0;
    memcpy(from, PQgetvalue(r, i, 4), fn);
    from[fn] = 0;
    e.id = g_i64(r, i, 0);
    e.devkey = g_i64(r, i, 1);
    e.device_id = (uint32_t)g_i64(r, i, 2);
    e.recipient = to;
    e.sender = from;
    e.sender_device = (uint32_t)g_i64(r, i, 5);
    e.timestamp_ms = g_i64(r, i, 6);
    rc = cb(ctx, &e);
  }
  PQclear(r);
  return rc;
}

static int pg_expire(void *v, int64_t before_ms, int64_t *deleted) {
  struct pg *s = v;
  struct args a = {0};
  PGresult *r;
  a_i64(&a, before_ms);
  if ((r = run(s, Q_MSG_EXPIRE, &a)) == NULL) return SOTTO_ERR_STORE;
  *deleted = g_i64(r, 0, 0);
  PQclear(r);
  if (*deleted > 0) dc_clear(s);
  /* The recount is this transaction's view: it becomes the total, with
   * nothing pending on top (committed at commit, reloaded on rollback). */
  return *deleted > 0 ? sums_reload(s) : 0;
}

static int pg_queue_total(void *v, int64_t *count, int64_t *bytes) {
  struct pg *s = v;
  PGresult *r;
  if (ensure(s) != 0 || (r = run(s, Q_QUEUE_TOTAL, NULL)) == NULL) return SOTTO_ERR_STORE;
  *count = g_i64(r, 0, 0);
  *bytes = g_i64(r, 0, 1);
  PQclear(r);
  return 0;
}

static int pg_max_msg_id(void *v, int64_t *id) {
  PGresult *r = run(v, Q_MSG_MAX, NULL);
  if (!r) return SOTTO_ERR_STORE;
  *id = g_i64(r, 0, 0);
  PQclear(r);
  return 0;
}

/* store.h: ids never go back, not even after a restore from a dump. */
static int pg_id_floor(void *v, int64_t floor) {
  struct pg *s = v;
  struct args a = {0};
  PGresult *r;
  if (floor < 1) return SOTTO_ERR_USAGE;
  a_i64(&a, floor);
  if (ensure(s) != 0 || (r = run(s, Q_ID_FLOOR, &a)) == NULL) return SOTTO_ERR_STORE;
  PQclear(r);
  /* The block in hand may lie below the floor: take a new one. */
  if (s->id_next <= floor) s->id_next = s->id_end = 0;
  return 0;
}

static int64_t pg_round_trips(void *v) {
  return ((struct pg *)v)->n_rtt;
}

static int64_t pg_lock_wait_us(void *v) {
  return ((struct pg *)v)->lock_us;
}

/* Shared mode (store.h): no id of a device's queue commits below one that
 * is already visible, so paging needs no horizon: everything committed. */
static int pg_horizon(void *v, int64_t *id) {
  (void)v;
  *id = INT64_MAX;
  return 0;
}

static int pg_txn_retry(void *v) {
  return ((struct pg *)v)->retry;
}

/* Shared mode: the open transaction's deferred writes as the count would
 * see them: *ins the envelopes from sender to devkey waiting to be
 * inserted; s->excl the ids of devkey's envelopes waiting to be deleted
 * (an array parameter, *n_ex elements). */
static int sender_pending(struct pg *s, int64_t devkey, const char *sender, int64_t *ins, size_t *n_ex) {
  size_t i, off = 20, slen = strlen(sender);
  *ins = 0;
  *n_ex = 0;
  s->excl.len = 0;
  if (col_grow(&s->excl, 0) != 0) return SOTTO_ERR_NOMEM;
  for (i = 0; i < s->n_ins; i++) {
    size_t len = rd_be32(s->ins[2].p + off);
    if ((int64_t)order_be64(s->ins[1].p + 20 + 12 * i + 4) == devkey && len == slen &&
        memcmp(s->ins[2].p + off + 4, sender, slen) == 0)
      (*ins)++;
    off += 4 + len;
  }
  for (i = 0; i < s->n_del; i++)
    if ((int64_t)order_be64(s->del[0].p + 20 + 12 * i + 4) == devkey) {
      if (col_bytes(&s->excl, s->del[1].p + 20 + 12 * i + 4, 8) != 0) return SOTTO_ERR_NOMEM;
      (*n_ex)++;
    }
  return 0;
}

static int pg_sender_count(void *v, int64_t devkey, const char *sender, int64_t *n) {
  struct pg *s = v;
  struct args a = {0};
  PGresult *r;
  int64_t pend = 0;
  size_t n_ex = 0;
  if (strlen(sender) > SOTTO_STORE_USER_MAX) return SOTTO_ERR_USAGE;
  a_i64(&a, devkey);
  a_txt(&a, sender);
  if (s->shared && s->lk_in) {
    /* Inside a batch: counted without flushing its writes (a flush here
     * would lock their devices early and break the lock order). */
    if (sender_pending(s, devkey, sender, &pend, &n_ex) != 0) return SOTTO_ERR_NOMEM;
    col_arg(&a, &s->excl, n_ex, 20);
    r = run(s, Q_SENDER_COUNT_PEND, &a);
  } else {
    r = run(s, Q_SENDER_COUNT, &a);
  }
  if (r == NULL) return SOTTO_ERR_STORE;
  *n = g_i64(r, 0, 0) + pend;
  PQclear(r);
  return 0;
}

static int pg_total_bytes(void *v, int64_t *bytes) {
  struct pg *s = v;
  *bytes = s->total + s->txn_bytes;
  return 0;
}

static int pg_sender_bytes(void *v, const char *sender, int64_t *bytes) {
  struct pg *s = v;
  *bytes = sotto__sums_get(&s->sb, sender);
  return 0;
}

/* ---- key transparency (srv_kt.c) -------------------------------------------------------- */

static int pg_kt_entry_put(void *v, int64_t idx, const uint8_t *head, size_t head_len, const uint8_t *update,
                           size_t update_len) {
  struct args a = {0};
  if (head_len > INT_MAX || update_len > INT_MAX) return SOTTO_ERR_STORE;
  a_i64(&a, idx);
  a_bin(&a, head, head_len);
  a_bin(&a, update, update_len);
  return run_ok(v, Q_KT_ENTRY_PUT, &a);
}

/* In pages (an update may be large; the replay at start reads them all). */
#define PG_KT_PAGE 256
static int pg_kt_entries_iter(void *v, int64_t first, int64_t limit,
                              int (*cb)(void *ctx, int64_t idx, const uint8_t *head, size_t head_len,
                                        const uint8_t *update, size_t update_len),
                              void *ctx) {
  int64_t left = limit < 0 ? INT64_MAX : limit;
  while (left > 0) {
    struct args a = {0};
    PGresult *r;
    int i, n, rc = 0;
    a_i64(&a, first);
    a_i64(&a, left < PG_KT_PAGE ? left : PG_KT_PAGE);
    if ((r = run(v, Q_KT_ENTRIES, &a)) == NULL) return SOTTO_ERR_STORE;
    n = PQntuples(r);
    for (i = 0; i < n && rc == 0; i++) {
      int64_t idx = g_i64(r, i, 0);
      if (idx != first) {
        rc = SOTTO_ERR_STORE; /* a gap: the caller wants entries in order */
        break;
      }
      rc = cb(ctx, idx, (const uint8_t *)PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1),
              (const uint8_t *)PQgetvalue(r, i, 2), (size_t)PQgetlength(r, i, 2));
      first++;
      left--;
    }
    PQclear(r);
    if (rc != 0) return rc;
    if (n < PG_KT_PAGE) break;
  }
  return 0;
}

static int pg_kt_value_put(void *v, const char *label, uint32_t version, const uint8_t *value, size_t len,
                           const uint8_t opening[16]) {
  struct args a = {0};
  if (len > SOTTO_STORE_KT_MAX_VALUE) return SOTTO_ERR_STORE;
  a_txt(&a, label);
  a_i64(&a, version);
  a_bin(&a, value, len);
  a_bin(&a, opening, 16);
  return run_ok(v, Q_KT_VALUE_PUT, &a);
}

static int pg_kt_value_get(void *v, const char *label, uint32_t *version, uint8_t *value, size_t *len,
                           uint8_t opening[16]) {
  struct args a = {0};
  PGresult *r;
  int rc = 1;
  a_txt(&a, label);
  if ((r = run(v, Q_KT_VALUE_GET, &a)) == NULL) return SOTTO_ERR_STORE;
  if (PQntuples(r) == 1) {
    int64_t ver = g_i64(r, 0, 0);
    size_t vl = (size_t)PQgetlength(r, 0, 1);
    rc = SOTTO_ERR_STORE;
    if (ver >= 0 && ver <= 0x7FFFFFFF && vl <= SOTTO_STORE_KT_MAX_VALUE && PQgetlength(r, 0, 2) == 16) {
      *version = (uint32_t)ver;
      *len = vl;
      if (vl) memcpy(value, PQgetvalue(r, 0, 1), vl);
      memcpy(opening, PQgetvalue(r, 0, 2), 16);
      rc = 0;
    }
  }
  PQclear(r);
  return rc;
}

static int pg_kt_value_del(void *v, const char *label) {
  struct args a = {0};
  a_txt(&a, label);
  return run_ok(v, Q_KT_VALUE_DEL, &a);
}

static int pg_kt_labels_iter(void *v, const char *lo, const char *hi, int64_t limit,
                             int (*cb)(void *ctx, const char *label, const uint8_t *value, size_t len), void *ctx) {
  struct args a = {0};
  PGresult *r;
  int i, rc = 0;
  a_txt(&a, lo);
  a_txt(&a, hi);
  a_i64(&a, limit);
  if ((r = run(v, Q_KT_LABELS, &a)) == NULL) return SOTTO_ERR_STORE;
  for (i = 0; i < PQntuples(r) && rc == 0; i++)
    rc = cb(ctx, PQgetvalue(r, i, 0), (const uint8_t *)PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1));
  PQclear(r);
  return rc;
}

static int pg_kt_lock(void *v) {
  struct args a = {0};
  a_i64(&a, PG_KT_LOCK_KEY);
  return run_ok(v, Q_KT_LOCK, &a);
}

static int pg_kt_cosig_put(void *v, const uint8_t pk[32], uint64_t size, const uint8_t *head, size_t head_len,
                           const uint8_t *cosig, size_t cosig_len) {
  struct args a = {0};
  if (size > INT64_MAX || head_len > 4096 || cosig_len > 4096) return SOTTO_ERR_STORE;
  a_bin(&a, pk, 32);
  a_i64(&a, (int64_t)size);
  a_bin(&a, head, head_len);
  a_bin(&a, cosig, cosig_len);
  return run_ok(v, Q_KT_COSIG_PUT, &a);
}

static int pg_kt_cosigs_iter(void *v,
                             int (*cb)(void *ctx, const uint8_t *pk, size_t pk_len, const uint8_t *head,
                                       size_t head_len, const uint8_t *cosig, size_t cosig_len),
                             void *ctx) {
  PGresult *r;
  int i, rc = 0;
  if ((r = run(v, Q_KT_COSIGS, NULL)) == NULL) return SOTTO_ERR_STORE;
  for (i = 0; i < PQntuples(r) && rc == 0; i++)
    rc = cb(ctx, (const uint8_t *)PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0),
            (const uint8_t *)PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), (const uint8_t *)PQgetvalue(r, i, 2),
            (size_t)PQgetlength(r, i, 2));
  PQclear(r);
  return rc;
}

/* By username, in pages (the callback may use the connection: each page's
 * rows are in memory before it runs). */
#define PG_ACC_PAGE 1000
static int pg_accounts_iter(void *v, int (*cb)(void *ctx, const char *user, const uint8_t *ik, size_t ik_len),
                            void *ctx) {
  char after[SOTTO_STORE_USER_MAX + 1] = "";
  for (;;) {
    struct args a = {0};
    PGresult *r;
    int i, n, rc = 0;
    a_txt(&a, after);
    a_i64(&a, PG_ACC_PAGE);
    if ((r = run(v, Q_ACC_ITER, &a)) == NULL) return SOTTO_ERR_STORE;
    n = PQntuples(r);
    for (i = 0; i < n && rc == 0; i++) {
      char user[SOTTO_STORE_USER_MAX + 1];
      size_t ul = (size_t)PQgetlength(r, i, 0), il = (size_t)PQgetlength(r, i, 1);
      if (ul == 0 || ul > SOTTO_STORE_USER_MAX) {
        rc = SOTTO_ERR_STORE; /* cannot be: names are checked before they are stored */
        break;
      }
      memcpy(user, PQgetvalue(r, i, 0), ul);
      user[ul] = 0;
      memcpy(after, user, ul + 1);
      if (il > SOTTO_STORE_MAX_IDENTITY) continue;
      rc = cb(ctx, user, (const uint8_t *)PQgetvalue(r, i, 1), il);
    }
    PQclear(r);
    if (rc != 0) return rc;
    if (n < PG_ACC_PAGE) return 0;
  }
}

static const struct sotto_store_ops pg_ops = {
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .close = pg_close,
    .savepoint = pg_savepoint,
    .release = pg_release,
    .rollback_to = pg_rollback_to,
    .wal_truncate = pg_wal_truncate,
    .disk_full = pg_disk_full,
    .journal_limit = pg_journal_limit,
    .account_create = pg_account_create,
    .account_get = pg_account_get,
    .device_add = pg_device_add,
    .device_lookup = pg_device_lookup,
    .device_route = pg_device_route,
    .device_seen = pg_device_seen,
    .devices_list = pg_devices_list,
    .devices_iter = pg_devices_iter,
    .device_remove = pg_device_remove,
    .device_exists = pg_device_exists,
    .device_is = pg_device_is,
    .account_delete = pg_account_delete,
    .name_held = pg_name_held,
    .recovery_set = pg_recovery_set,
    .blob_create = pg_blob_create,
    .blob_get = pg_blob_get,
    .blob_commit = pg_blob_commit,
    .blob_fetched = pg_blob_fetched,
    .blob_set_fetches = pg_blob_set_fetches,
    .blob_delete = pg_blob_delete,
    .blob_usage = pg_blob_usage,
    .blob_expired = pg_blob_expired,
    .blob_iter = pg_blob_iter,
    .blob_fetches_iter = pg_blob_fetches_iter,
    .recovery_get = pg_recovery_get,
    .account_identity = pg_account_identity,
    .device_identity_get = pg_device_identity_get,
    .device_identity_set = pg_device_identity_set,
    .devlist_put = pg_devlist_put,
    .devlist_get = pg_devlist_get,
    .devlist_get_version = pg_devlist_get_version,
    .devlist_ids = pg_devlist_ids,
    .devlist_iter = pg_devlist_iter,
    .devlist_clear = pg_devlist_clear,
    .device_secret = pg_device_secret,
    .device_secret_confirm = pg_device_secret_confirm,
    .device_epoch_raise = pg_device_epoch_raise,
    .keys_put = pg_keys_put,
    .keys_count = pg_keys_count,
    .bundle_take = pg_bundle_take,
    .msg_insert = pg_msg_insert,
    .msg_delete = pg_msg_delete,
    .msg_fetch = pg_msg_fetch,
    .expire = pg_expire,
    .id_floor = pg_id_floor,
    .expire_scan = pg_expire_scan,
    .max_msg_id = pg_max_msg_id,
    .queue_total = pg_queue_total,
    .sender_count = pg_sender_count,
    .total_bytes = pg_total_bytes,
    .sender_bytes = pg_sender_bytes,
    .horizon = NULL, /* single writer: the server's own horizon */
    .lock_wait_us = pg_lock_wait_us,
    .round_trips = pg_round_trips,
    .txn_retry = pg_txn_retry,
    /* key transparency (srv_kt.c) */
    .kt_entry_put = pg_kt_entry_put,
    .kt_entries_iter = pg_kt_entries_iter,
    .kt_value_put = pg_kt_value_put,
    .kt_value_get = pg_kt_value_get,
    .accounts_iter = pg_accounts_iter,
    .kt_lock = pg_kt_lock,
    .kt_cosig_put = pg_kt_cosig_put,
    .kt_value_del = pg_kt_value_del,
    .kt_labels_iter = pg_kt_labels_iter,
    .kt_cosigs_iter = pg_kt_cosigs_iter,
    .txn_serial = pg_txn_serial,
};


static int pg_open(struct sotto_store *st, const char *conninfo, int mode, char *why, size_t why_len) {
  struct pg *s;
  PGresult *r;
  if (strlen(conninfo) >= SOTTO_STORE_URL_MAX) {
    snprintf(why, why_len, "the PostgreSQL connection string is too long");
    return SOTTO_ERR_USAGE;
  }
  if ((s = calloc(1, sizeof *s)) == NULL) return SOTTO_ERR_NOMEM;
  s->mode = mode & ~SOTTO_STORE_OPEN_SHARED;
  s->shared = (mode & SOTTO_STORE_OPEN_SHARED) != 0;
  if ((s->conn = pg_connect(conninfo, why, why_len)) == NULL) goto fail;
  /* Fresh: no account yet (a new server may make a new TLS certificate). */
  r = PQexec(s->conn, "SELECT 1 FROM accounts LIMIT 1");
  st->fresh = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0;
  PQclear(r);
  if (setup(s, why, why_len) != 0) goto fail;
  if (sums_reload(s) != 0) {
    snprintf(why, why_len, "cannot read the queues: %s", PQerrorMessage(s->conn));
    goto fail;
  }
  if (s->shared) {
    /* The same operations with the cluster's horizon (several writers). */
    s->ops_shared = pg_ops;
    s->ops_shared.horizon = pg_horizon;
    st->ops = &s->ops_shared;
  } else {
    st->ops = &pg_ops;
  }
  st->impl = s;
  st->flags = s->shared ? 0 : SOTTO_STORE_SOLE_WRITER;
  st->backend = "postgresql";
  return 0;
fail:
  pg_close(s);
  return SOTTO_ERR_STORE;
}

static int pg_migrate(const char *conninfo, FILE *out, char *why, size_t why_len) {
  PGconn *c = pg_connect(conninfo, why, why_len);
  int v, rc = SOTTO_ERR_STORE;
  char lock[96];
  if (!c) return SOTTO_ERR_STORE;
  if (exec_simple(c, "SET client_min_messages = warning", why, why_len) != 0) goto out;
  /* One migrate at a time (a transaction-level lock, so a running server's
   * session lock does not block it). */
  snprintf(lock, sizeof lock, "BEGIN; SELECT pg_advisory_xact_lock(%lld)", (long long)PG_LOCK_KEY + 1);
  if (exec_simple(c, lock, why, why_len) != 0) goto out;
  if (exec_simple(c,
                  "CREATE TABLE IF NOT EXISTS sotto_schema(version integer PRIMARY KEY,"
                  " applied_at timestamptz NOT NULL DEFAULT now())",
                  why, why_len) != 0 ||
      exec_simple(c, "COMMIT", why, why_len) != 0)
    goto out;
  /* Each step reads the version under the lock it applies the step under,
   * so two migrates at once apply every step once (the second one finds it
   * done) instead of failing on the first one's tables. */
  for (int applied = 0;; applied++) {
    char mark[96];
    if (exec_simple(c, lock, why, why_len) != 0) goto out;
    if ((v = schema_version(c)) < 0) {
      snprintf(why, why_len, "cannot read the schema version: %s", PQerrorMessage(c));
      (void)exec_simple(c, "ROLLBACK", NULL, 0);
      goto out;
    }
    if (v > PG_SCHEMA_VERSION) {
      snprintf(why, why_len, "the schema is version %d, newer than this sotto-server (%d): nothing done", v,
               PG_SCHEMA_VERSION);
      (void)exec_simple(c, "ROLLBACK", NULL, 0);
      goto out;
    }
    if (v == PG_SCHEMA_VERSION) {
      if (exec_simple(c, "COMMIT", why, why_len) != 0) goto out;
      if (!applied) fprintf(out, "store postgresql: schema version %d, up to date\n", v);
      break;
    }
    snprintf(mark, sizeof mark, "INSERT INTO sotto_schema(version) VALUES(%d)", v + 1);
    if (exec_simple(c, migrations[v], why, why_len) != 0 || exec_simple(c, mark, why, why_len) != 0 ||
        exec_simple(c, "COMMIT", why, why_len) != 0) {
      (void)exec_simple(c, "ROLLBACK", NULL, 0);
      goto out;
    }
    fprintf(out, "store postgresql: schema version %d applied\n", v + 1);
  }
  rc = 0;
out:
  if (rc && why[0] && why[strlen(why) - 1] == '\n') why[strlen(why) - 1] = 0;
  PQfinish(c);
  return rc;
}

const struct sotto_store_backend sotto__store_pg_backend = {
    .name = "postgresql",
    .check = NULL,
    .open = pg_open,
    .migrate = pg_migrate,
};

/* ---- import from SQLite ------------------------------------------------------------------ */

/* One row copied: params as text (integers) or binary (blobs), by the
 * column types of the SQLite row. */
static int copy_rows(PGconn *c, sqlite3 *db, const char *select, const char *insert, int64_t *rows, char *why,
                     size_t why_len) {
  sqlite3_stmt *q = NULL;
  int rc = SOTTO_ERR_STORE, r, n, i;
  if (sqlite3_prepare_v2(db, select, -1, &q, NULL) != SQLITE_OK) {
    snprintf(why, why_len, "cannot read the SQLite store: %s", sqlite3_errmsg(db));
    return SOTTO_ERR_STORE;
  }
  n = sqlite3_column_count(q);
  *rows = 0;
  while ((r = sqlite3_step(q)) == SQLITE_ROW) {
    const char *vals[PG_MAX_PARAMS];
    int lens[PG_MAX_PARAMS], fmts[PG_MAX_PARAMS];
    char num[PG_MAX_PARAMS][24];
    PGresult *res;
    for (i = 0; i < n && i < PG_MAX_PARAMS; i++) {
      if (sqlite3_column_type(q, i) == SQLITE_NULL) {
        /* SQL NULL (devices.identity of a device without its own key). */
        vals[i] = NULL;
        lens[i] = 0;
        fmts[i] = 1;
      } else if (sqlite3_column_type(q, i) == SQLITE_INTEGER) {
        snprintf(num[i], sizeof num[i], "%lld", (long long)sqlite3_column_int64(q, i));
        vals[i] = num[i];
        lens[i] = 0;
        fmts[i] = 0;
      } else {
        /* Text and blobs as bytes (text columns hold ASCII usernames). */
        const void *p = sqlite3_column_type(q, i) == SQLITE_BLOB ? sqlite3_column_blob(q, i)
                                                                 : (const void *)sqlite3_column_text(q, i);
        vals[i] = p ? (const char *)p : "";
        lens[i] = sqlite3_column_bytes(q, i);
        fmts[i] = 1;
      }
    }
    res = PQexecParams(c, insert, n, NULL, vals, lens, fmts, 1);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
      snprintf(why, why_len, "cannot copy a row into PostgreSQL: %s", PQerrorMessage(c));
      PQclear(res);
      goto out;
    }
    PQclear(res);
    (*rows)++;
  }
  if (r != SQLITE_DONE) {
    snprintf(why, why_len, "cannot read the SQLite store: %s", sqlite3_errmsg(db));
    goto out;
  }
  rc = 0;
out:
  sqlite3_finalize(q);
  return rc;
}

/* Legacy SQLite stores may hold usernames that look alike (registered
 * before look-alikes were refused: the same accounts.canon); PostgreSQL
 * keeps one account per canonical name. Merging or renaming accounts would
 * hand one person's queue or name to another, so the import refuses and
 * lists every group (at most 100 lines) instead: their owners decide which
 * account stays (the others unregister on the SQLite server), then the
 * import runs again. Nothing is written before this check. */
static int lookalikes_refuse(sqlite3 *db, FILE *out, char *why, size_t why_len) {
  sqlite3_stmt *st = NULL;
  int64_t groups = 0;
  if (sqlite3_prepare_v2(db,
                         "SELECT canon, group_concat(username, ' '), count(*) FROM (SELECT canon, username"
                         " FROM accounts ORDER BY canon, id) GROUP BY canon HAVING count(*) > 1 ORDER BY canon",
                         -1, &st, NULL) != SQLITE_OK) {
    snprintf(why, why_len, "cannot read the usernames: %s", sqlite3_errmsg(db));
    return SOTTO_ERR_STORE;
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    const unsigned char *names = sqlite3_column_text(st, 1);
    if (++groups <= 100)
      fprintf(out, "import: look-alike usernames (%lld accounts, one name on PostgreSQL): %s\n",
              (long long)sqlite3_column_int64(st, 2), names ? (const char *)names : "?");
  }
  sqlite3_finalize(st);
  if (groups == 0) return 0;
  if (groups > 100) fprintf(out, "import: ... and %lld more groups\n", (long long)(groups - 100));
  snprintf(why, why_len,
           "%lld group%s of look-alike usernames (listed on standard output): PostgreSQL keeps one account per "
           "look-alike name; all but one account of each group must be unregistered on the SQLite server "
           "(sotto unregister) before the import; nothing was imported",
           (long long)groups, groups == 1 ? "" : "s");
  return SOTTO_ERR_STORE;
}

int sotto__store_pg_import_sqlite(const char *dir, const char *conninfo, FILE *out, char *why,
                                  size_t why_len) {
  static const struct {
    const char *what, *select, *insert;
  } tables[] = {
      {"accounts", "SELECT id, username, canon, identity, created_day FROM accounts ORDER BY id",
       "INSERT INTO accounts(id, username, canon, identity, created_day) VALUES($1::bigint, convert_from($2, "
       "'UTF8'),"
       " convert_from($3, 'UTF8'), $4, $5::bigint)"},
      {"devices",
       "SELECT devkey, account_id, device_id, secret_hash, created_day, last_seen_day, queue_count, "
       "queue_bytes, epoch, identity"
       " FROM devices ORDER BY devkey",
       "INSERT INTO devices(devkey, account_id, device_id, secret_hash, created_day, last_seen_day, "
       "queue_count,"
       " queue_bytes, epoch, identity) VALUES($1::bigint, $2::bigint, $3::bigint, $4, $5::bigint, $6::bigint, "
       "$7::bigint,"
       " $8::bigint, $9::bigint, $10)"},
      {"signed pre-keys", "SELECT devkey, key_id, blob FROM signed_prekeys",
       "INSERT INTO signed_prekeys(devkey, key_id, blob) VALUES($1::bigint, $2::bigint, $3)"},
      {"last-resort keys", "SELECT devkey, key_id, blob FROM last_resort",
       "INSERT INTO last_resort(devkey, key_id, blob) VALUES($1::bigint, $2::bigint, $3)"},
      {"one-time keys", "SELECT devkey, kind, key_id, blob FROM onetime",
       "INSERT INTO onetime(devkey, kind, key_id, blob) VALUES($1::bigint, $2::bigint, $3::bigint, $4)"},
      {"queued envelopes",
       "SELECT id, devkey, sender, sender_device, device_id, type, ts, body FROM messages ORDER BY id",
       "INSERT INTO messages(id, devkey, sender, sender_device, device_id, type, ts, body) VALUES($1::bigint,"
       " $2::bigint, convert_from($3, 'UTF8'), $4::bigint, $5::bigint, $6::bigint, $7::bigint, $8)"},
      {"held names", "SELECT canon, until_ms FROM held_names",
       "INSERT INTO held_names(canon, until_ms) VALUES(convert_from($1, 'UTF8'), $2::bigint)"},
      {"recovery codes", "SELECT account_id, hash FROM recovery",
       "INSERT INTO recovery(account_id, hash) VALUES($1::bigint, $2)"},
      {"signed device lists", "SELECT account_id, version, ms, ids, list FROM devlists",
       "INSERT INTO devlists(account_id, version, ms, ids, list) VALUES($1::bigint, $2::bigint, $3::bigint, $4, $5)"},
      /* The key-transparency log goes along whole: a new log under the
       * same key would look like a fork to every witness and client. */
      {"key-transparency entries", "SELECT idx, head, upd FROM kt_entries ORDER BY idx",
       "INSERT INTO kt_entries(idx, head, upd) VALUES($1::bigint, $2, $3)"},
      {"key-transparency values", "SELECT label, version, value, opening FROM kt_values",
       "INSERT INTO kt_values(label, version, value, opening) VALUES(convert_from($1, 'UTF8'), $2::bigint, $3, $4)"},
      {"witness cosignatures", "SELECT witness, size, head, cosig FROM kt_cosigs",
       "INSERT INTO kt_cosigs(witness, size, head, cosig) VALUES($1, $2::bigint, $3, $4)"},
      /* attachments: the rows here, the files by sotto_srv_import (srv_loop.c) */
      {"blobs", "SELECT id, account_id, size, fetches, committed, created_ms, expires_ms FROM blobs",
       "INSERT INTO blobs(id, account_id, size, fetches, committed, created_ms, expires_ms) VALUES($1,"
       " $2::bigint, $3::bigint, $4::bigint, $5::smallint, $6::bigint, $7::bigint)"},
      {"blob fetches", "SELECT id, account_id, device_id FROM blob_fetches",
       "INSERT INTO blob_fetches(id, account_id, device_id) VALUES($1, $2::bigint, $3::bigint)"},
  };
  struct sotto_store sq;
  sqlite3 *db = NULL;
  PGconn *c = NULL;
  PGresult *r;
  char path[4096], lock[96];
  int rc = SOTTO_ERR_STORE, v, lockfd = -1;
  size_t i;
  /* Opening it once brings an older SQLite store up to date (accounts.canon). */
  if (sotto__store_sqlite_check(dir, why, why_len) != 0) return SOTTO_ERR_STORE;
  if (snprintf(path, sizeof path, "%s/sotto.db", dir) >= (int)sizeof path || access(path, R_OK) != 0) {
    snprintf(why, why_len, "no SQLite store in %s", dir);
    return SOTTO_ERR_STORE;
  }
  /* A server running on the SQLite store would write after the snapshot:
   * its lock says so. */
  if (sotto__store_lock_dir(dir, &lockfd) != 0) {
    snprintf(why, why_len, "stop the sotto-server running on %s first", dir);
    if (lockfd >= 0) close(lockfd);
    return SOTTO_ERR_STORE;
  }
  if (sotto__store_sqlite_open(&sq, dir) != 0) {
    snprintf(why, why_len, "cannot open the SQLite store in %s", dir);
    close(lockfd);
    return SOTTO_ERR_STORE;
  }
  sq.ops->close(sq.impl);
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    snprintf(why, why_len, "cannot open %s", path);
    goto done;
  }
  sqlite3_busy_timeout(db, 5000);
  if ((c = pg_connect(conninfo, why, why_len)) == NULL) goto done;
  if ((v = schema_version(c)) != PG_SCHEMA_VERSION) {
    snprintf(why, why_len,
             "the PostgreSQL schema is version %d, not %d: run 'sotto-server migrate --store URL' first", v,
             PG_SCHEMA_VERSION);
    goto done;
  }
  /* No server may run on either side meanwhile: the PostgreSQL one is
   * locked out by its advisory lock, the SQLite one by DIR/sotto.lock
   * (taken above); the copy is one read transaction (a consistent
   * snapshot). */
  snprintf(lock, sizeof lock, "SELECT pg_try_advisory_lock(%lld)", (long long)PG_LOCK_KEY);
  r = PQexec(c, lock);
  v = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (!v) {
    snprintf(why, why_len, "a sotto-server is running on the PostgreSQL store: stop it first");
    goto done;
  }
  r = PQexec(c, "SELECT 1 FROM accounts LIMIT 1");
  v = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 0;
  PQclear(r);
  if (!v) {
    snprintf(why, why_len, "the PostgreSQL store is not empty: import only into a new, migrated database");
    goto done;
  }
  if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK ||
      exec_simple(c, "BEGIN", why, why_len) != 0) {
    if (!why[0]) snprintf(why, why_len, "cannot start the copy");
    goto done;
  }
  if (lookalikes_refuse(db, out, why, why_len) != 0) {
    (void)exec_simple(c, "ROLLBACK", NULL, 0);
    goto done;
  }
  for (i = 0; i < sizeof tables / sizeof tables[0]; i++) {
    int64_t n = 0;
    if (copy_rows(c, db, tables[i].select, tables[i].insert, &n, why, why_len) != 0) {
      (void)exec_simple(c, "ROLLBACK", NULL, 0);
      goto done;
    }
    fprintf(out, "import: %lld %s\n", (long long)n, tables[i].what);
  }
  /* The id sequences continue after the copied ids. Envelope ids are never
   * reused (clients drop an id they have seen as a re-delivery), and the
   * ids SQLite issued for envelopes already acknowledged and deleted are
   * above the highest queued one: its AUTOINCREMENT high-water mark
   * (sqlite_sequence) is where the sequence continues. */
  {
    sqlite3_stmt *st = NULL;
    int64_t hw = 0;
    char q[160];
    if (sqlite3_prepare_v2(db, "SELECT seq FROM sqlite_sequence WHERE name = 'messages'", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      hw = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    snprintf(q, sizeof q, "SELECT setval('sotto_msg_ids', GREATEST((SELECT max(id) FROM messages), %lld, 1));",
             (long long)(hw > 0 ? hw : 1));
    if (exec_simple(c, q, why, why_len) != 0) {
      (void)exec_simple(c, "ROLLBACK", NULL, 0);
      goto done;
    }
  }
  /* Account ids and device keys are never given twice either (the
   * server's caches and the blobs' owners name them): both sequences go on
   * after SQLite's high-water marks (account_high; the devices' AUTOINCREMENT). */
  {
    sqlite3_stmt *st = NULL;
    int64_t acc_hw = 0, dev_hw = 0;
    char q[320];
    if (sqlite3_prepare_v2(db, "SELECT id FROM account_high WHERE one = 1", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      acc_hw = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT seq FROM sqlite_sequence WHERE name = 'devices'", -1, &st, NULL) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
      dev_hw = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    snprintf(q, sizeof q,
             "SELECT setval('accounts_id_seq', GREATEST((SELECT max(id) FROM accounts), %lld, 1));"
             "SELECT setval('devices_devkey_seq', GREATEST((SELECT max(devkey) FROM devices), %lld, 1));",
             (long long)acc_hw, (long long)dev_hw);
    if (exec_simple(c, q, why, why_len) != 0) {
      (void)exec_simple(c, "ROLLBACK", NULL, 0);
      goto done;
    }
  }
  if (exec_simple(c, "COMMIT", why, why_len) != 0) {
    (void)exec_simple(c, "ROLLBACK", NULL, 0);
    goto done;
  }
  fprintf(out,
          "import: committed; start the server with --store on the PostgreSQL store and the same --data "
          "(its tls.key and tls.crt: clients keep their pin; with --kt, its kt.key: the log's keys)\n");
  rc = 0;
done:
  if (db) {
    (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
  }
  if (c) PQfinish(c);
  close(lockfd);
  if (rc && why[0] && why[strlen(why) - 1] == '\n') why[strlen(why) - 1] = 0;
  return rc;
}

/* ---- export to SQLite ------------------------------------------------------------------ */

/* The rows of one PostgreSQL query into an SQLite insert. cols says each
 * column's kind: 'i' integer, 't' text, 'b' bytes (selected as hex). */
static int export_rows(PGconn *c, sqlite3 *db, const char *select, const char *cols, const char *insert,
                       int64_t *rows, char *why, size_t why_len) {
  PGresult *r = PQexecParams(c, select, 0, NULL, NULL, NULL, NULL, 0);
  sqlite3_stmt *q = NULL;
  int rc = SOTTO_ERR_STORE, n, i, j, nc = (int)strlen(cols);
  uint8_t *bin = NULL;
  *rows = 0;
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQnfields(r) != nc) {
    snprintf(why, why_len, "cannot read the PostgreSQL store: %s", PQerrorMessage(c));
    goto out;
  }
  if (sqlite3_prepare_v2(db, insert, -1, &q, NULL) != SQLITE_OK) {
    snprintf(why, why_len, "cannot write the SQLite store: %s", sqlite3_errmsg(db));
    goto out;
  }
  n = PQntuples(r);
  for (i = 0; i < n; i++) {
    sqlite3_reset(q);
    sqlite3_clear_bindings(q);
    for (j = 0; j < nc; j++) {
      const char *v = PQgetvalue(r, i, j);
      int ok = SQLITE_OK;
      if (PQgetisnull(r, i, j)) {
        ok = sqlite3_bind_null(q, j + 1);
      } else if (cols[j] == 'i') {
        ok = sqlite3_bind_int64(q, j + 1, strtoll(v, NULL, 10));
      } else if (cols[j] == 't') {
        ok = sqlite3_bind_text(q, j + 1, v, PQgetlength(r, i, j), SQLITE_TRANSIENT);
      } else {
        size_t hl = (size_t)PQgetlength(r, i, j), bl = 0;
        free(bin);
        if ((bin = malloc(hl / 2 + 1)) == NULL ||
            sodium_hex2bin(bin, hl / 2 + 1, v, hl, NULL, &bl, NULL) != 0) {
          snprintf(why, why_len, "cannot decode a value of the PostgreSQL store");
          goto out;
        }
        ok = sqlite3_bind_blob(q, j + 1, bin, (int)bl, SQLITE_TRANSIENT);
      }
      if (ok != SQLITE_OK) {
        snprintf(why, why_len, "cannot write the SQLite store: %s", sqlite3_errmsg(db));
        goto out;
      }
    }
    if (sqlite3_step(q) != SQLITE_DONE) {
      snprintf(why, why_len, "cannot copy a row into SQLite: %s", sqlite3_errmsg(db));
      goto out;
    }
    (*rows)++;
  }
  rc = 0;
out:
  free(bin);
  sqlite3_finalize(q);
  PQclear(r);
  return rc;
}

int sotto__store_pg_export_sqlite(const char *conninfo, const char *dir, FILE *out, char *why, size_t why_len) {
  static const struct {
    const char *what, *select, *cols, *insert;
  } tables[] = {
      {"accounts", "SELECT id, username, canon, encode(identity, 'hex'), created_day FROM accounts ORDER BY id",
       "ittbi", "INSERT INTO accounts(id, username, canon, identity, created_day) VALUES(?, ?, ?, ?, ?)"},
      {"devices",
       "SELECT devkey, account_id, device_id, encode(secret_hash, 'hex'), created_day, last_seen_day, "
       "queue_count, queue_bytes, epoch, encode(identity, 'hex') FROM devices ORDER BY devkey",
       "iiibiiiiib",
       "INSERT INTO devices(devkey, account_id, device_id, secret_hash, created_day, last_seen_day, queue_count,"
       " queue_bytes, epoch, identity) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"},
      {"signed pre-keys", "SELECT devkey, key_id, encode(blob, 'hex') FROM signed_prekeys", "iib",
       "INSERT INTO signed_prekeys(devkey, key_id, blob) VALUES(?, ?, ?)"},
      {"last-resort keys", "SELECT devkey, key_id, encode(blob, 'hex') FROM last_resort", "iib",
       "INSERT INTO last_resort(devkey, key_id, blob) VALUES(?, ?, ?)"},
      {"one-time keys", "SELECT devkey, kind, key_id, encode(blob, 'hex') FROM onetime", "iiib",
       "INSERT INTO onetime(devkey, kind, key_id, blob) VALUES(?, ?, ?, ?)"},
      {"queued envelopes",
       "SELECT id, devkey, sender, sender_device, device_id, type, ts, encode(body, 'hex') FROM messages ORDER BY "
       "id",
       "iitiiiib",
       "INSERT INTO messages(id, devkey, sender, sender_device, device_id, type, ts, body) VALUES(?, ?, ?, ?, ?, ?,"
       " ?, ?)"},
      {"held names", "SELECT canon, until_ms FROM held_names", "ti",
       "INSERT INTO held_names(canon, until_ms) VALUES(?, ?)"},
      {"recovery codes", "SELECT account_id, encode(hash, 'hex') FROM recovery", "ib",
       "INSERT INTO recovery(account_id, hash) VALUES(?, ?)"},
      {"signed device lists", "SELECT account_id, version, ms, encode(ids, 'hex'), encode(list, 'hex') FROM devlists",
       "iiibb", "INSERT INTO devlists(account_id, version, ms, ids, list) VALUES(?, ?, ?, ?, ?)"},
      /* The key-transparency log, whole (see import). */
      {"key-transparency entries", "SELECT idx, encode(head, 'hex'), encode(upd, 'hex') FROM kt_entries ORDER BY idx",
       "ibb", "INSERT INTO kt_entries(idx, head, upd) VALUES(?, ?, ?)"},
      {"key-transparency values", "SELECT label, version, encode(value, 'hex'), encode(opening, 'hex') FROM kt_values",
       "tibb", "INSERT INTO kt_values(label, version, value, opening) VALUES(?, ?, ?, ?)"},
      {"witness cosignatures", "SELECT encode(witness, 'hex'), size, encode(head, 'hex'), encode(cosig, 'hex')"
       " FROM kt_cosigs", "bibb", "INSERT INTO kt_cosigs(witness, size, head, cosig) VALUES(?, ?, ?, ?)"},
      /* attachments: the rows here, the files by sotto_srv_export (srv_loop.c) */
      {"blobs", "SELECT encode(id, 'hex'), account_id, size, fetches, committed, created_ms, expires_ms FROM blobs",
       "biiiiii",
       "INSERT INTO blobs(id, account_id, size, fetches, committed, created_ms, expires_ms) VALUES(?, ?, ?, ?, ?, ?,"
       " ?)"},
      {"blob fetches", "SELECT encode(id, 'hex'), account_id, device_id FROM blob_fetches", "bii",
       "INSERT INTO blob_fetches(id, account_id, device_id) VALUES(?, ?, ?)"},
  };
  struct sotto_store sq;
  sqlite3 *db = NULL;
  PGconn *c = NULL;
  PGresult *r;
  DIR *d;
  struct dirent *e;
  char path[4096], lock[96];
  int rc = SOTTO_ERR_STORE, v, lockfd = -1, began = 0;
  size_t i;
  why[0] = 0;
  /* DIR: new or empty (an export never writes over a store). */
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    snprintf(why, why_len, "cannot create %s: %s", dir, strerror(errno));
    return SOTTO_ERR_STORE;
  }
  if ((d = opendir(dir)) == NULL) {
    snprintf(why, why_len, "cannot open %s: %s", dir, strerror(errno));
    return SOTTO_ERR_STORE;
  }
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
      closedir(d);
      snprintf(why, why_len, "%s is not empty: export only into a new, empty directory", dir);
      return SOTTO_ERR_STORE;
    }
  closedir(d);
  if ((c = pg_connect(conninfo, why, why_len)) == NULL) return SOTTO_ERR_STORE;
  if ((v = schema_version(c)) != PG_SCHEMA_VERSION) {
    snprintf(why, why_len, "the PostgreSQL schema is version %d, not %d: run 'sotto-server migrate --store URL' first",
             v, PG_SCHEMA_VERSION);
    goto done;
  }
  /* No server may write meanwhile (its advisory lock, exclusive or shared,
   * makes this one fail); the copy is one repeatable-read snapshot. */
  snprintf(lock, sizeof lock, "SELECT pg_try_advisory_lock(%lld)", (long long)PG_LOCK_KEY);
  r = PQexec(c, lock);
  v = PQresultStatus(r) == PGRES_TUPLES_OK && PQgetvalue(r, 0, 0)[0] == 't';
  PQclear(r);
  if (!v) {
    snprintf(why, why_len, "a sotto-server is running on the PostgreSQL store: stop it first");
    goto done;
  }
  if (sotto__store_sqlite_open(&sq, dir) != 0) {
    snprintf(why, why_len, "cannot create the SQLite store in %s", dir);
    goto done;
  }
  sq.ops->close(sq.impl);
  if (sotto__store_lock_dir(dir, &lockfd) != 0) {
    snprintf(why, why_len, "cannot lock %s", dir);
    goto done;
  }
  snprintf(path, sizeof path, "%s/sotto.db", dir);
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    snprintf(why, why_len, "cannot open %s", path);
    goto done;
  }
  if (exec_simple(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", why, why_len) != 0 ||
      sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK) {
    if (!why[0]) snprintf(why, why_len, "cannot start the copy");
    goto done;
  }
  began = 1;
  for (i = 0; i < sizeof tables / sizeof tables[0]; i++) {
    int64_t n = 0;
    if (export_rows(c, db, tables[i].select, tables[i].cols, tables[i].insert, &n, why, why_len) != 0) goto done;
    fprintf(out, "export: %lld %s\n", (long long)n, tables[i].what);
  }
  /* Envelope ids go on after every id PostgreSQL handed out (never reused:
   * clients drop an id they have seen). */
  /* The sequence hands out blocks of PG_ID_BLOCK: every id of the last
   * block counts as issued. */
  r = PQexec(c, "SELECT GREATEST(CASE WHEN is_called THEN last_value + 1023 ELSE 0 END,"
                " coalesce((SELECT max(id) FROM sotto_msg_hwm), 0), coalesce((SELECT max(id) FROM messages), 0))"
                " FROM sotto_msg_ids");
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    snprintf(why, why_len, "cannot read the envelope id sequence: %s", PQerrorMessage(c));
    PQclear(r);
    goto done;
  }
  {
    char q[200], ids[560];
    PGresult *r2;
    snprintf(q, sizeof q,
             "DELETE FROM sqlite_sequence WHERE name = 'messages'; INSERT INTO sqlite_sequence(name, seq) "
             "VALUES('messages', max(%lld, (SELECT coalesce(max(id), 0) FROM messages)))",
             strtoll(PQgetvalue(r, 0, 0), NULL, 10));
    PQclear(r);
    /* And account ids and device keys after every one handed out (never
     * given twice: see account_high in store_sqlite.c). */
    r2 = PQexec(c, "SELECT (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM accounts_id_seq),"
                   " (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM devices_devkey_seq)");
    if (PQresultStatus(r2) != PGRES_TUPLES_OK || PQntuples(r2) != 1) {
      snprintf(why, why_len, "cannot read the account and device id sequences: %s", PQerrorMessage(c));
      PQclear(r2);
      goto done;
    }
    snprintf(ids, sizeof ids,
             "INSERT OR REPLACE INTO account_high(one, id) VALUES(1, max(%lld, (SELECT coalesce(max(id), 0) FROM "
             "accounts))); DELETE FROM sqlite_sequence WHERE name = 'devices'; INSERT INTO sqlite_sequence(name, "
             "seq) VALUES('devices', max(%lld, (SELECT coalesce(max(devkey), 0) FROM devices)))",
             strtoll(PQgetvalue(r2, 0, 0), NULL, 10), strtoll(PQgetvalue(r2, 0, 1), NULL, 10));
    PQclear(r2);
    if (sqlite3_exec(db, q, NULL, NULL, NULL) != SQLITE_OK || sqlite3_exec(db, ids, NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
      snprintf(why, why_len, "cannot commit the SQLite store: %s", sqlite3_errmsg(db));
      goto done;
    }
  }
  began = 0;
  fprintf(out, "export: committed; start the server with --data %s (copy tls.key and tls.crt there from the "
               "PostgreSQL nodes' --data: clients keep their pin; with --kt also kt.key, the log's keys)\n",
          dir);
  rc = 0;
done:
  if (db) {
    if (began) (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    sqlite3_close(db);
  }
  if (c) PQfinish(c);
  if (lockfd >= 0) close(lockfd);
  if (rc && why[0] && why[strlen(why) - 1] == '\n') why[strlen(why) - 1] = 0;
  return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* store.h: the narrow storage interface of sotto-server.
 *
 * The server core talks to storage only through this table of function
 * pointers, so that a PostgreSQL backend can replace the embedded SQLite one
 * (store_sqlite.c). All calls are made from the server's single I/O thread.
 * Writes happen between begin() and commit(): the server groups every write
 * of one loop iteration into one transaction (group commit) and answers the
 * requests only after commit() returned 0.
 *
 * Return values: 0 on success, 1 for "not found" where documented, or a
 * negative SOTTO_ERR_* code (SOTTO_ERR_STORE for database failures).
 * Strings and blobs passed in are borrowed for the call; blobs handed out
 * through callbacks are valid only during the callback. */
#ifndef SOTTO_SRV_STORE_H
#define SOTTO_SRV_STORE_H

#include <sotto/error.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The store's own limits (the wire protocol has the same or smaller ones;
 * srv_handlers.c checks that at compile time). A backend never stores more
 * than these, and never hands out more. */
#define SOTTO_STORE_USER_MAX 32       /* username bytes */
#define SOTTO_STORE_KT_MAX_VALUE 1024 /* = SOTTO_KT_MAX_VALUE_LEN */
#define SOTTO_STORE_MAX_IDENTITY 256  /* identity key blob */
#define SOTTO_STORE_MAX_KEY_BLOB 2048 /* one pre-key blob */
#define SOTTO_STORE_MAX_KEYS_PUT 100  /* one-time keys per kind in one keys_put */
#define SOTTO_STORE_MAX_DEVLIST 3072  /* one signed device list (= SOTTO_SRV_MAX_DEVLIST) */
#define SOTTO_STORE_MAX_DEVLIST_IDS 16 /* device ids in one list (= SOTTO_SRV_MAX_DEVICES) */

struct sotto_store_device {
  int64_t devkey; /* store-wide device key */
  int64_t account_id;
  uint32_t device_id; /* per account, 1.. */
  uint8_t secret_hash[32];
  /* device_lookup: the hash a ROTATE_SECRET replaced, still valid until the
   * first AUTH with the new secret (has_prev), so that an answer lost after
   * an in-doubt commit does not lock the device out. */
  uint8_t prev_hash[32];
  uint8_t has_prev;
  int64_t created_day, last_seen_day; /* days since the epoch */
  int64_t queue_count, queue_bytes;
};

struct sotto_store_env { /* a queued envelope */
  int64_t id;
  /* msg_insert: where the id goes if the backend learns it only later (a
   * shared store: with the insert statement's result, at the latest when
   * commit returns; id is 0 then); must stay valid until commit. May be NULL. */
  int64_t *id_out;
  const char *sender; /* NUL-terminated username */
  uint32_t sender_device;
  uint32_t device_id;
  uint8_t type;
  int64_t timestamp_ms;
  const uint8_t *body;
  size_t body_len;
};

#define SOTTO_STORE_BLOB_ID 16
struct sotto_store_blob { /* an attachment's ciphertext blob (bytes on disk, srv_blob.c) */
  uint8_t id[SOTTO_STORE_BLOB_ID];
  int64_t account_id; /* the uploader */
  int64_t size;       /* declared ciphertext bytes */
  int64_t fetches_left;
  int committed;
  int64_t created_ms, expires_ms;
};

struct sotto_store_account {
  int64_t account_id;
  int64_t created_day;
  uint8_t identity[SOTTO_STORE_MAX_IDENTITY];
  size_t identity_len;
};

/* One pre-key: its id and blob (borrowed). */
struct sotto_store_key {
  uint32_t id;
  const uint8_t *p;
  size_t len; /* <= SOTTO_STORE_MAX_KEY_BLOB */
};

/* A pre-key upload: the signed pre-key and the KEM last-resort key if
 * has_*, and one-time keys of both kinds (EC, KEM). */
struct sotto_store_keys {
  int has_signed, has_last_resort;
  struct sotto_store_key signed_prekey, last_resort;
  size_t n_ec, n_kem;
  struct sotto_store_key ec[SOTTO_STORE_MAX_KEYS_PUT];
  struct sotto_store_key kem[SOTTO_STORE_MAX_KEYS_PUT];
};

/* What bundle_take hands out, copied into the caller's buffer. */
struct sotto_store_bundle {
  uint8_t identity[SOTTO_STORE_MAX_IDENTITY];
  size_t identity_len;
  uint32_t spk_id;
  uint8_t spk[SOTTO_STORE_MAX_KEY_BLOB];
  size_t spk_len;
  int has_ec;
  uint32_t ec_id;
  uint8_t ec[SOTTO_STORE_MAX_KEY_BLOB];
  size_t ec_len;
  uint8_t kem_kind; /* 0 none, 1 one-time, 2 last resort */
  uint32_t kem_id;
  uint8_t kem[SOTTO_STORE_MAX_KEY_BLOB];
  size_t kem_len;
};

typedef int (*sotto_store_env_cb)(void *ctx, const struct sotto_store_env *e);
/* An envelope about to expire (expire_scan): who sent it to whom, without
 * its body. Strings are valid during the callback only. */
struct sotto_store_expiring {
  int64_t id, devkey, timestamp_ms;
  uint32_t device_id;     /* the recipient device */
  const char *recipient;  /* the recipient account's username */
  const char *sender;     /* never "" (server notices are not listed) */
  uint32_t sender_device;
};
typedef int (*sotto_store_expiring_cb)(void *ctx, const struct sotto_store_expiring *e);
/* Per device for the requisition report: the device row, its signed
 * pre-key (spk NULL if none), and key counts. */
struct sotto_store_devinfo {
  const uint8_t *spk;
  size_t spk_len;
  uint32_t spk_id;
  int64_t ec_count, kem_count;
  int has_last_resort;
  int64_t epoch; /* the device epoch (device_epoch_raise) */
};
typedef int (*sotto_store_dev_cb)(void *ctx, const struct sotto_store_device *d,
                                  const struct sotto_store_devinfo *info);

struct sotto_store_ops {
  int (*begin)(void *s);
  int (*commit)(void *s);
  void (*rollback)(void *s);
  void (*close)(void *s);
  /* Inside a transaction, around one request: savepoint, then release (keep
   * its changes) or rollback_to (undo only them; the transaction goes on). */
  int (*savepoint)(void *s);
  int (*release)(void *s);
  int (*rollback_to)(void *s);
  /* Optional (NULL: every request gets a savepoint). A backend whose failed
   * statement undoes just itself inside the open transaction sets it: a
   * request whose only write is one statement (SEND's msg_insert, ACK's
   * msg_delete) then runs without a savepoint, and after a failure this
   * says whether the transaction is still open (0) or the store rolled it
   * back as a whole (an error: the batch fails, as a failed rollback_to
   * would make it). */
  int (*txn_alive)(void *s);
  /* After a commit that deleted envelopes: make sure no copy of them stays
   * in a journal (SQLite: checkpoint and truncate the WAL). Best effort. */
  void (*wal_truncate)(void *s);
  /* 1 if the last failure was a full disk (or file size limit). */
  int (*disk_full)(void *s);
  /* Keeps the journal (SQLite: the WAL between checkpoints) below about
   * bytes, so that a reserve of twice that always suffices to checkpoint. */
  void (*journal_limit)(void *s, int64_t bytes);

  /* Accounts and devices. account_create returns SOTTO_ERR_DUPLICATE if the
   * name is taken. device_lookup returns 1 if there is no such device. */
  /* account_create also refuses (SOTTO_ERR_DUPLICATE) a name whose
   * canonical form (canon, computed by the caller: sotto__srv_username_canon)
   * another account has. */
  int (*account_create)(void *s, const char *user, const char *canon, const uint8_t *ik, size_t ik_len,
                        int64_t day, int64_t *account_id);
  int (*account_get)(void *s, const char *user, struct sotto_store_account *out);
  int (*device_add)(void *s, int64_t account_id, const uint8_t secret_hash[32], int64_t day,
                    uint32_t max_devices, struct sotto_store_device *out);
  int (*device_lookup)(void *s, const char *user, uint32_t device_id, struct sotto_store_device *out);
  /* device_lookup for routing an envelope: fills only devkey, device_id,
   * queue_count and queue_bytes (the counters include the open
   * transaction's changes). A backend may answer it from memory. */
  int (*device_route)(void *s, const char *user, uint32_t device_id, struct sotto_store_device *out);
  int (*device_seen)(void *s, int64_t devkey, int64_t day);
  /* The account's device ids in order (up to max); days, when not NULL,
   * gets each device's last_seen_day beside its id. */
  int (*devices_list)(void *s, const char *user, uint32_t *ids, int64_t *days, size_t max, size_t *n);
  int (*devices_iter)(void *s, int64_t account_id, sotto_store_dev_cb cb, void *ctx);
  /* Removes a device of an account with its keys and its queue; *devkey
   * is the removed device's key. Returns 1 if there is no such device. */
  int (*device_remove)(void *s, int64_t account_id, uint32_t device_id, int64_t *devkey);
  /* 1 if the device still exists, 0 if it was removed. */
  int (*device_exists)(void *s, int64_t devkey);
  /* 1 if devkey still names device device_id of account account_id, 0 if
   * not (removed, or its key now names another device), or < 0. */
  int (*device_is)(void *s, int64_t devkey, int64_t account_id, uint32_t device_id);
  /* Replaces a device's secret hash; prev_hash (or NULL: none) stays valid
   * as the previous one until device_secret_confirm. */
  int (*device_secret)(void *s, int64_t devkey, const uint8_t secret_hash[32], const uint8_t prev_hash[32]);
  /* The device authenticated with its current secret: the previous one
   * stops working. */
  int (*device_secret_confirm)(void *s, int64_t devkey);
  /* The device's epoch (a counter the client raises to detect a restored
   * copy of its store): sets it to max(current, epoch), *old gets the value
   * before. Never lowers it. */
  int (*device_epoch_raise)(void *s, int64_t devkey, int64_t epoch, int64_t *old);
  /* Account deletion and recovery (UNREGISTER, SET_RECOVERY, RECOVER).
   * account_delete removes the account row and its recovery hash (its
   * devices were removed first with device_remove, its device lists with
   * devlist_clear) and holds the name canon until until_ms; an account id
   * is never given again to another account (the server's caches and the
   * blobs' owners name accounts by id); name_held returns 1 if canon is held at now_ms,
   * 0 if not (deleting holds that ended). recovery_set stores the SHA-256
   * of the account's recovery code (NULL: removes it); recovery_get reads
   * it (returns 1 if there is no such account; *has 0 when none is set).
   * account_identity replaces the account's identity key. */
  int (*account_delete)(void *s, int64_t account_id, const char *canon, int64_t until_ms);
  int (*name_held)(void *s, const char *canon, int64_t now_ms);
  int (*recovery_set)(void *s, int64_t account_id, const uint8_t hash[32]);
  int (*recovery_get)(void *s, const char *user, int64_t *account_id, uint8_t hash[32], int *has);
  int (*account_identity)(void *s, int64_t account_id, const uint8_t *ik, size_t ik_len);
  /* A device's own identity key (DEVICE_IDENTITY; docs/multi-device.md),
   * column devices.identity. device_identity_get copies it into buf (cap >=
   * SOTTO_STORE_MAX_IDENTITY) or returns 1 if the device has none (it then
   * uses the account's); device_identity_set sets it (ik_len <=
   * SOTTO_STORE_MAX_IDENTITY). bundle_take hands out the device's own key
   * when it has one, else the account's. */
  int (*device_identity_get)(void *s, int64_t devkey, uint8_t *buf, size_t cap, size_t *len);
  int (*device_identity_set)(void *s, int64_t devkey, const uint8_t *ik, size_t ik_len);
  /* Key transparency (srv_kt.c; docs/key-transparency.md). NULL in a
   * backend without it (the server then refuses --kt). Entries are numbered
   * from 0 and written in the same transaction as the values they log;
   * kt_value_* keep each label's newest version, value and opening.
   * kt_entries_iter calls cb for entries first.. in order (at most limit;
   * limit < 0: all); a cb result other than 0 stops and is returned. */
  int (*kt_entry_put)(void *s, int64_t idx, const uint8_t *head, size_t head_len, const uint8_t *update,
                      size_t update_len);
  int (*kt_entries_iter)(void *s, int64_t first, int64_t limit,
                         int (*cb)(void *ctx, int64_t idx, const uint8_t *head, size_t head_len,
                                   const uint8_t *update, size_t update_len),
                         void *ctx);
  int (*kt_value_put)(void *s, const char *label, uint32_t version, const uint8_t *value, size_t len,
                      const uint8_t opening[16]);
  /* 0 and the newest version, 1 when the label was never logged. value has
   * room for SOTTO_STORE_KT_MAX_VALUE bytes. */
  int (*kt_value_get)(void *s, const char *label, uint32_t *version, uint8_t *value, size_t *len,
                      uint8_t opening[16]);
  /* The log's pending names (srv_kt.c, kt-pending-max): rows of kt_values
   * under "!CANON" mark accounts not logged yet. kt_value_del removes a
   * label's row (0 also when there was none); kt_labels_iter calls cb for
   * the labels in [lo, hi) in order, at most limit of them, with their
   * value (a cb result other than 0 stops and is returned). NULL in a
   * backend without them (then logging stays synchronous). */
  int (*kt_value_del)(void *s, const char *label);
  int (*kt_labels_iter)(void *s, const char *lo, const char *hi, int64_t limit,
                        int (*cb)(void *ctx, const char *label, const uint8_t *value, size_t len), void *ctx);
  /* Every account's username and identity key, for the log's backfill of
   * accounts made before it ran (srv_kt.c). NULL in a backend without it. */
  int (*accounts_iter)(void *s, int (*cb)(void *ctx, const char *user, const uint8_t *ik, size_t ik_len),
                       void *ctx);
  /* Key transparency on a shared store (several nodes, one log; srv_kt.c,
   * docs/key-transparency.md "In a cluster"). kt_lock: inside the open
   * transaction, waits for the log's append lock, held to its end
   * (PostgreSQL: a transaction-level advisory lock); after it, statements
   * see every entry another node committed. NULL where one process is the
   * only writer (SQLite). Witness cosignatures are kept in the store:
   * kt_cosig_put keeps witness pk's cosignature of head (a tree of size
   * `size`) unless one of a larger tree is stored already; kt_cosigs_iter
   * calls cb for every stored one (a cb result other than 0 stops). NULL:
   * the server keeps them in DATA/kt.cosigs. */
  int (*kt_lock)(void *s);
  int (*kt_cosig_put)(void *s, const uint8_t pk[32], uint64_t size, const uint8_t *head, size_t head_len,
                      const uint8_t *cosig, size_t cosig_len);
  int (*kt_cosigs_iter)(void *s,
                        int (*cb)(void *ctx, const uint8_t *pk, size_t pk_len, const uint8_t *head, size_t head_len,
                                  const uint8_t *cosig, size_t cosig_len),
                        void *ctx);

  /* Signed device lists (docs/multi-device.md), kept per account with their
   * history. devlist_put stores version `version` (the caller checked that
   * it is above the newest) with its listed device ids (n <=
   * SOTTO_STORE_MAX_DEVLIST_IDS) and the time; devlist_get hands out the
   * newest list of a username (cap >= SOTTO_STORE_MAX_DEVLIST; *version its
   * version) or 1 if none; devlist_ids the newest list's device ids by
   * username (1 if none; every SEND asks it, so it should be cheap);
   * devlist_iter calls cb for every stored version of an account, oldest
   * first (the requisition report; a cb result other than 0 stops);
   * devlist_clear forgets an account's lists (RECOVER: a new account key
   * starts a new chain; UNREGISTER). */
  int (*devlist_put)(void *s, int64_t account_id, uint32_t version, const uint32_t *ids, size_t n,
                     const uint8_t *list, size_t len, int64_t ms);
  int (*devlist_get)(void *s, const char *user, uint32_t *version, uint8_t *buf, size_t cap, size_t *len);
  /* devlist_get_version: the stored list `version` of a username (1 if it
   * is not stored: never made, or forgotten); KT_VERSIONS shows it. */
  int (*devlist_get_version)(void *s, const char *user, uint32_t version, uint8_t *buf, size_t cap, size_t *len);
  int (*devlist_ids)(void *s, const char *user, uint32_t *ids, size_t max, size_t *n);
  int (*devlist_iter)(void *s, int64_t account_id,
                      int (*cb)(void *ctx, uint32_t version, int64_t ms, const uint32_t *ids, size_t n), void *ctx);
  int (*devlist_clear)(void *s, int64_t account_id);

  /* Pre-keys. Uploads replace a key with the same id. bundle_take hands out
   * (and deletes) one EC and one KEM one-time key; returns 1 if the device
   * has no signed pre-key. With onetime 0 no one-time key is handed out
   * (the KEM slot gets the last-resort key). */
  int (*keys_put)(void *s, int64_t devkey, const struct sotto_store_keys *k);
  int (*keys_count)(void *s, int64_t devkey, int64_t *ec, int64_t *kem);
  int (*bundle_take)(void *s, int64_t devkey, int onetime, struct sotto_store_bundle *out);

  /* Queues. msg_insert assigns a unique, increasing 64-bit id. msg_delete
   * sets *found. msg_fetch calls cb for up to limit envelopes with id >
   * after_id in id order. expire deletes envelopes older than before_ms. */
  int (*msg_insert)(void *s, int64_t devkey, struct sotto_store_env *e);
  int (*msg_delete)(void *s, int64_t devkey, int64_t id, int *found);
  int (*msg_fetch)(void *s, int64_t devkey, int64_t after_id, int limit, sotto_store_env_cb cb, void *ctx);
  int (*expire)(void *s, int64_t before_ms, int64_t *deleted);
  /* Before expire, in the same transaction: calls cb for up to limit of
   * the envelopes expire(before_ms) will delete, except the server's own
   * notices (sender ""), ordered by sender, sender device, recipient devkey
   * and id. A non-zero cb result stops the scan (returned). */
  int (*expire_scan)(void *s, int64_t before_ms, int64_t limit, sotto_store_expiring_cb cb, void *ctx);
  /* Blobs (attachments; server/srv_blob.c): the metadata of ciphertext
   * blobs whose bytes are files under DATA/blobs. Rows are keyed by the
   * blob's random id (SOTTO_STORE_BLOB_ID bytes). get: 0, or 1 if no such
   * row. fetched: device (account_id, device_id) finished its download:
   * the first time this device says so, fetches_left goes down by one (the
   * device is remembered with the blob: a table of (blob, account, device),
   * at most as many rows per blob as fetches were declared); a repeat
   * changes nothing; *left gets the value after it; the row and its
   * devices are deleted at 0 (the caller removes the file). set_fetches:
   * the uploader declares fetches in all (1..1024): fetches_left becomes
   * fetches minus the devices already counted (at least 0; the row and its
   * devices deleted at 0), *left gets it. Every deletion of a blob row
   * (delete, expired, fetched, set_fetches) deletes its devices too. usage: an account's blobs and their declared
   * bytes. expired: up to max rows with expires_ms <= now_ms are deleted,
   * their ids written to ids (the caller removes the files). iter: every
   * blob of an account (the requisition report: sizes and times only). */
  int (*blob_create)(void *s, const struct sotto_store_blob *b);
  int (*blob_get)(void *s, const uint8_t *id, struct sotto_store_blob *out);
  int (*blob_commit)(void *s, const uint8_t *id);
  int (*blob_fetched)(void *s, const uint8_t *id, int64_t account_id, uint32_t device_id, int64_t *left);
  int (*blob_set_fetches)(void *s, const uint8_t *id, int64_t fetches, int64_t *left);
  int (*blob_delete)(void *s, const uint8_t *id);
  int (*blob_usage)(void *s, int64_t account_id, int64_t *count, int64_t *bytes);
  int (*blob_expired)(void *s, int64_t now_ms, uint8_t *ids, size_t max, size_t *n);
  int (*blob_iter)(void *s, int64_t account_id, int (*cb)(void *ctx, const struct sotto_store_blob *b), void *ctx);
  /* The blobs the account's devices said BLOB_DONE for (blob_fetches), by
   * device then blob id: the requisition report. A cb result other than 0
   * stops (and is returned). */
  int (*blob_fetches_iter)(void *s, int64_t account_id,
                           int (*cb)(void *ctx, const uint8_t *id, uint32_t device_id), void *ctx);

  /* The highest envelope id in any queue (0 if none), or an upper bound of
   * every id handed out so far (PostgreSQL: the end of the last id block);
   * the server starts its delivery horizon there. */

  int (*max_msg_id)(void *s, int64_t *id);
  /* Optional (NULL: not done; the PostgreSQL store does not yet). Raises
   * the next envelope id to at least floor + 1. The server calls it at start
   * with (seconds since the epoch + 2) * 2^20: a store restored from a backup
   * must never hand out again an id that the lost copy issued after the
   * backup, since clients drop an id they have seen as a re-delivery. A
   * server that issues fewer than 2^20 ids per second has, at time t, issued
   * ids below (t + 3) * 2^20, so a copy started a second or more after the
   * original's last id never repeats one; ids stay below 2^53 (exact in
   * JSON) until the year 2242. */
  int (*id_floor)(void *s, int64_t floor);
  /* Totals over every queue (for metrics). */
  int (*queue_total)(void *s, int64_t *count, int64_t *bytes);
  /* Envelopes from sender waiting in devkey's queue, and the ciphertext
   * bytes in all queues, both including the open transaction; meant to be
   * cheap (answered from counters). */
  int (*sender_count)(void *s, int64_t devkey, const char *sender, int64_t *n);
  int (*total_bytes)(void *s, int64_t *bytes);
  /* Ciphertext bytes from sender (a username) waiting in all queues. */
  int (*sender_bytes)(void *s, const char *sender, int64_t *bytes);

  /* Single-process hook (see "Single-process assumptions" below): the id
   * up to which every envelope is committed, so that backlog paging may
   * hand it out. NULL: the server's own in-memory horizon (the highest id
   * of a batch it has answered) is the truth, which holds only while this
   * process is the only writer. */
  int (*horizon)(void *s, int64_t *id);

  /* Optional (cluster timing, metric sotto_stage_seconds{stage="lock"}):
   * microseconds the last committed transaction waited for the cluster-wide
   * lock (its first round trip), 0 when it took none. */
  int64_t (*lock_wait_us)(void *s);
  /* Optional (metric sotto_store_round_trips_total): round trips to the
   * database server so far on this connection (PostgreSQL). */
  int64_t (*round_trips)(void *s);
  /* Optional: 1 if the last transaction failed only because it lost a race
   * with another node's (a deadlock or serialization failure): running it
   * again may succeed. 2 if it was stopped because it would have broken the
   * cluster's lock order (shared mode, below): running it again takes the
   * order lock exclusively and succeeds. */
  int (*txn_retry)(void *s);
  /* Optional (shared mode): called right after begin, before any other
   * call: this transaction will lock rows outside the lock order (device
   * changes, the expiry run, ...), so it takes the cluster-wide order lock
   * exclusively. 0, or an error if it is too late for this transaction. */
  int (*txn_serial)(void *s);
};

/* Single-process assumptions.
 *
 * Today one sotto-server process is the only writer of its store, and both
 * backends rely on it; each is a place a cluster mode (several nodes on one
 * PostgreSQL) must replace:
 *  - Routing and quota counters in memory: device_route, sender_count,
 *    sender_bytes and total_bytes may be answered from caches of the
 *    committed counters plus the open transaction's changes. With another
 *    writer those caches go stale: a cluster backend answers them from the
 *    database (counter rows updated in the transaction) or a shared counter.
 *  - Envelope ids increase in commit order: one store thread commits one
 *    batch at a time and ids are handed out inside it, so an envelope with
 *    a lower id is never committed after one with a higher id. Backlog
 *    paging (msg_fetch after a cursor) depends on that. With several
 *    writers, ids from different nodes interleave with commits: the cluster
 *    backend implements ops->horizon (the highest id below which nothing
 *    is still uncommitted) and the server pages only up to it.
 *  - The delivery horizon is in memory (struct srv.horizon): see ops->horizon.
 *  - Live connections (which node holds which device) are in the server's
 *    device map, not in the store: a cluster needs a shared registry and
 *    cross-node pushes (Redis in issue 15), outside this interface.
 * The flag SOTTO_STORE_SOLE_WRITER says a backend relies on all of this; it
 * then also makes sure it is the only writer (SQLite: DATA/sotto.lock;
 * PostgreSQL: an advisory lock), so that a second node on the same store
 * stops with a clear message instead of corrupting the counters. */
#define SOTTO_STORE_SOLE_WRITER 0x01

/* Shared mode (SOTTO_STORE_OPEN_SHARED, `sotto-server --cluster`; only the
 * PostgreSQL backend has it): several nodes write one store. It replaces
 * the assumptions above so:
 *  - Ids in commit order per device: a transaction's envelope inserts and
 *    deletes, whatever their number, wait for its COMMIT (or for a
 *    statement that must see them) and then go out as one statement that
 *    locks their devices' rows in devkey order (held to COMMIT; a day's
 *    first login and a secret confirmation wait and are locked with them),
 *    followed by the inserts (at most 1,024 rows each), which take their
 *    ids from the sequence only then. A device's row lock is held by one
 *    transaction at a time, so of two envelopes x < y for one device, x's
 *    transaction ended before y's took the lock: once y is visible, every
 *    lower id of that queue is committed (and visible: PostgreSQL shows a
 *    commit before it releases the transaction's locks) or never will be.
 *    Paging after a cursor therefore never skips an envelope, and
 *    ops->horizon says "everything committed" (INT64_MAX). The proof is in
 *    docs/scaling.md ("Delivery horizon"). Nodes' transactions run
 *    concurrently and take their locks in one total order, so that none
 *    can deadlock with another (docs/scaling.md, "Lock order"): an advisory
 *    order lock first (shared), then device rows in increasing devkey order
 *    over the whole transaction; anything else only under the order lock
 *    taken exclusively (txn_serial, or a rerun that txn_retry reports as 2).
 *  - Counters: the routing cache lives for one transaction (the device's
 *    queue counters are read from its row, which the insert updates: exact
 *    up to batches committing at the same moment on other nodes); the
 *    per-sender sums and the store total are read again from the database
 *    when older than 5 s, so a sender spread over several nodes can exceed
 *    max-sender-bytes by what the other nodes accepted in that time.
 *  - The sole-writer advisory lock is taken shared: nodes exclude a
 *    single-writer server and an import, not each other.
 *  - Live connections and pushes: server/srv_cluster.c (Redis). */

/* Takes DIR/sotto.lock (flock, held while *fd stays open): 0, or -1 with a
 * sentence on stderr when another sotto-server or import holds it. The
 * server takes it on --data and on a SQLite store's own directory. */
int sotto__store_lock_dir(const char *dir, int *fd);

struct sotto_store {
  const struct sotto_store_ops *ops;
  void *impl;
  unsigned flags;      /* SOTTO_STORE_* */
  const char *backend; /* "sqlite", "postgresql" */
  int fresh;           /* set by open: the store held no account yet */
};

/* ---- opening by URL ------------------------------------------------------------ */

/* Store URLs:
 *   sqlite:DIR                 DIR/sotto.db (the default is sqlite:DATA)
 *   postgresql://... postgres://...   a libpq connection URI
 *   pg:CONNINFO                a libpq "key=value ..." connection string
 * The URL may hold a password: it is never logged or printed (why texts
 * name the backend, not the URL). */
#define SOTTO_STORE_URL_MAX 1024

enum {
  SOTTO_STORE_OPEN_WRITER = 0, /* the store thread: takes the sole-writer lock */
  SOTTO_STORE_OPEN_READER = 1, /* reads only (backlog pages, metrics, reports) */
  SOTTO_STORE_OPEN_SHARED = 2, /* or'ed in: one node of a cluster (shared mode below) */
};

struct sotto_store_backend {
  const char *name;
  /* Start-up check before opening: 0, or SOTTO_ERR_STORE with a sentence. */
  int (*check)(const char *where, char *why, size_t why_len);
  int (*open)(struct sotto_store *st, const char *where, int mode, char *why, size_t why_len);
  /* Brings the schema to the version this binary needs (creating it in an
   * empty database); prints what it did. NULL if the backend migrates at
   * open (SQLite). */
  int (*migrate)(const char *where, FILE *out, char *why, size_t why_len);
};

/* Finds the backend of url; *where gets the part after the scheme (for
 * PostgreSQL URIs, the whole URI). NULL (and a sentence in why) if no
 * backend takes it or it is not compiled in. */
const struct sotto_store_backend *sotto__store_backend(const char *url, const char **where, char *why,
                                                       size_t why_len);
/* check + open in one: 0, or an error with a sentence in why. */
int sotto__store_open(struct sotto_store *st, const char *url, int mode, char *why, size_t why_len) SOTTO_WUR;
/* `sotto-server migrate`: 0 or an error with a sentence in why. */
int sotto__store_migrate(const char *url, FILE *out, char *why, size_t why_len) SOTTO_WUR;

/* ---- the SQLite backend (store_sqlite.c) ---------------------------------------- */

/* Bytes of each sender's envelopes waiting in all queues, kept in memory by
 * a single-writer backend (sender_bytes): one entry per sender with
 * envelopes waiting, hashed by name. Shared by the backends. */
#define SOTTO_SUMS_BUCKETS 4096
struct sotto__sum {
  char user[SOTTO_STORE_USER_MAX + 1];
  int64_t bytes;
  struct sotto__sum *next;
};
struct sotto__sums {
  struct sotto__sum *b[SOTTO_SUMS_BUCKETS];
};
void sotto__sums_clear(struct sotto__sums *t);
/* Adds d to sender's sum (an entry is made if needed; a name longer than
 * SOTTO_STORE_USER_MAX is ignored). 0 or SOTTO_ERR_NOMEM. */
int sotto__sums_add(struct sotto__sums *t, const char *sender, int64_t d);
/* sender's sum (0 when none). */
int64_t sotto__sums_get(const struct sotto__sums *t, const char *sender);

/* Start-up check of DIR/sotto.db before it is opened: a missing file is
 * fine (a new server); a 0-byte file, a file that is not a database and a
 * database that fails SQLite's quick_check are refused with a sentence in
 * why. Returns 0 or SOTTO_ERR_STORE. */
int sotto__store_sqlite_check(const char *dir, char *why, size_t why_len) SOTTO_WUR;
/* Opens (creating if needed) DIR/sotto.db. Returns 0 or SOTTO_ERR_STORE. */
int sotto__store_sqlite_open(struct sotto_store *st, const char *dir) SOTTO_WUR;
/* Online backup: copies DIR/sotto.db into DEST_DIR/sotto.db (which must not
 * exist) as one consistent snapshot, safe while a server runs on DIR (it
 * only reads). The copy is checked (quick_check) and synced; *accounts and
 * *queued get its account and queued-envelope counts. Returns 0, or
 * SOTTO_ERR_STORE with a sentence in why (the partial copy is removed). */
int sotto__store_sqlite_backup(const char *dir, const char *dest_dir, int64_t *accounts, int64_t *queued,
                               char *why, size_t why_len) SOTTO_WUR;
extern const struct sotto_store_backend sotto__store_sqlite_backend;
#ifdef SOTTO_HAVE_PQ
extern const struct sotto_store_backend sotto__store_pg_backend;
/* `sotto-server import`: copies the SQLite store in DIR (accounts, devices,
 * pre-keys, queued envelopes, with their ids) into an empty, migrated
 * PostgreSQL store, in one transaction. 0, or an error with a sentence. */
int sotto__store_pg_import_sqlite(const char *dir, const char *conninfo, FILE *out, char *why,
                                  size_t why_len) SOTTO_WUR;
/* `sotto-server export`: the mirror of import: the PostgreSQL store (no
 * server running on it) into a new SQLite store in DIR (created, or empty),
 * envelope ids kept and the id sequence carried over. 0, or an error with
 * a sentence. */
int sotto__store_pg_export_sqlite(const char *conninfo, const char *dir, FILE *out, char *why,
                                  size_t why_len) SOTTO_WUR;
#endif

#endif

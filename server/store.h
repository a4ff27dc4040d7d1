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

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

struct sotto_store_device {
  int64_t devkey;     /* store-wide device key */
  int64_t account_id;
  uint32_t device_id; /* per account, 1.. */
  uint8_t secret_hash[32];
  int64_t created_day, last_seen_day; /* days since the epoch */
  int64_t queue_count, queue_bytes;
};

struct sotto_store_env { /* a queued envelope */
  int64_t id;
  const char *sender; /* NUL-terminated username */
  uint32_t sender_device;
  uint32_t device_id;
  uint8_t type;
  int64_t timestamp_ms;
  const uint8_t *body;
  size_t body_len;
};


struct sotto_store_account {
  int64_t account_id;
  int64_t created_day;
  uint8_t identity[SOTTO_SRV_MAX_IDENTITY];
  size_t identity_len;
};

typedef int (*sotto_store_env_cb)(void *ctx, const struct sotto_store_env *e);
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
   * canonical form (sotto__srv_username_canon) another account has. */
  int (*account_create)(void *s, const char *user, const uint8_t *ik, size_t ik_len, int64_t day,
                        int64_t *account_id);
  int (*account_get)(void *s, const char *user, struct sotto_store_account *out);
  int (*device_add)(void *s, int64_t account_id, const uint8_t secret_hash[32], int64_t day,
                    uint32_t max_devices, struct sotto_store_device *out);
  int (*device_lookup)(void *s, const char *user, uint32_t device_id, struct sotto_store_device *out);
  /* device_lookup for routing an envelope: fills only devkey, device_id,
   * queue_count and queue_bytes (the counters include the open
   * transaction's changes). A backend may answer it from memory. */
  int (*device_route)(void *s, const char *user, uint32_t device_id, struct sotto_store_device *out);
  int (*device_seen)(void *s, int64_t devkey, int64_t day);
  int (*devices_list)(void *s, const char *user, uint32_t *ids, size_t max, size_t *n);
  int (*devices_iter)(void *s, int64_t account_id, sotto_store_dev_cb cb, void *ctx);
  /* Removes a device of an account with its keys and its queue; *devkey
   * is the removed device's key. Returns 1 if there is no such device. */
  int (*device_remove)(void *s, int64_t account_id, uint32_t device_id, int64_t *devkey);
  /* 1 if the device still exists, 0 if it was removed. */
  int (*device_exists)(void *s, int64_t devkey);
  /* Replaces a device's secret hash. */
  int (*device_secret)(void *s, int64_t devkey, const uint8_t secret_hash[32]);
  /* The device's epoch (a counter the client raises to detect a restored
   * copy of its store): sets it to max(current, epoch), *old gets the value
   * before. Never lowers it. */
  int (*device_epoch_raise)(void *s, int64_t devkey, int64_t epoch, int64_t *old);

  /* Pre-keys. Uploads replace a key with the same id. bundle_take hands out
   * (and deletes) one EC and one KEM one-time key; returns 1 if the device
   * has no signed pre-key. With onetime 0 no one-time key is handed out
   * (the KEM slot gets the last-resort key). */
  int (*keys_put)(void *s, int64_t devkey, const struct sotto_srv_keys *k);
  int (*keys_count)(void *s, int64_t devkey, int64_t *ec, int64_t *kem);
  int (*bundle_take)(void *s, int64_t devkey, int onetime, struct sotto_srv_bundle_buf *out);

  /* Queues. msg_insert assigns a unique, increasing 64-bit id. msg_delete
   * sets *found. msg_fetch calls cb for up to limit envelopes with id >
   * after_id in id order. expire deletes envelopes older than before_ms. */
  int (*msg_insert)(void *s, int64_t devkey, struct sotto_store_env *e);
  int (*msg_delete)(void *s, int64_t devkey, int64_t id, int *found);
  int (*msg_fetch)(void *s, int64_t devkey, int64_t after_id, int limit, sotto_store_env_cb cb, void *ctx);
  int (*expire)(void *s, int64_t before_ms, int64_t *deleted);
  /* The highest envelope id in any queue (0 if none). */
  int (*max_msg_id)(void *s, int64_t *id);
  /* Totals over every queue (for metrics). */
  int (*queue_total)(void *s, int64_t *count, int64_t *bytes);
  /* Envelopes from sender waiting in devkey's queue, and the ciphertext
   * bytes in all queues, both including the open transaction; meant to be
   * cheap (answered from counters). */
  int (*sender_count)(void *s, int64_t devkey, const char *sender, int64_t *n);
  int (*total_bytes)(void *s, int64_t *bytes);
  /* Ciphertext bytes from sender (a username) waiting in all queues. */
  int (*sender_bytes)(void *s, const char *sender, int64_t *bytes);
};

struct sotto_store {
  const struct sotto_store_ops *ops;
  void *impl;
};

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
int sotto__store_sqlite_backup(const char *dir, const char *dest_dir, int64_t *accounts, int64_t *queued, char *why,
                               size_t why_len) SOTTO_WUR;

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* account.h: our identity and account, the pre-keys we hand out, and the
 * libsotto pre-key store callbacks over the local store.
 *
 * Records (docs/client.md): "account" (identity key pair, registration id,
 * server, pinned certificate, device credentials, id counters), "spk/ID"
 * (signed pre-key private key), "opk/ID" (one-time EC pre-key private key),
 * "kem/ID" (ML-KEM-1024 decapsulation key and a last-resort flag). */
#ifndef SOTTO_CLIENT_ACCOUNT_H
#define SOTTO_CLIENT_ACCOUNT_H

#include <limits.h>
#include <sotto/session.h>
#include <stdint.h>

#include "core.h"

#define ACCOUNT_SECRET_LEN 32
#define ACCOUNT_MAX_SERVER 256
#define ACCOUNT_PIN_LEN 64 /* SHA-256 of the server certificate, hex */
/* Pre-key stock: what register uploads and what a top-up restores. */
#define ACCOUNT_OPK_BATCH 100
#define ACCOUNT_KEM_BATCH 10

/* Key lifetimes (docs/client.md, "How long each secret lives"), seconds.
 * The signed pre-key and the last-resort KEM pre-key are replaced every
 * ROTATE; a replaced private key stays GRACE for messages still in flight
 * (GRACE is the server's default max-queue-age: an envelope cannot wait
 * longer), then is deleted. A one-time pre-key the server handed out is
 * deleted HANDED_TTL after we learn it was handed out (same reasoning). */
#define ACCOUNT_ROTATE_S (2 * 86400)
#define ACCOUNT_GRACE_S (30 * 86400)
#define ACCOUNT_HANDED_TTL_S (30 * 86400)
/* Bounded stock: at most this many one-time private keys of each kind are
 * kept; past it the oldest handed-out ones go first, and a top-up uploads
 * only what fits. Top-ups run at most once per TOPUP_MIN_S, so a drain of
 * our keys on the server cannot make us generate keys without end. */
#define ACCOUNT_EC_PRIVATE_MAX 300
#define ACCOUNT_KEM_PRIVATE_MAX 60
#define ACCOUNT_TOPUP_MIN_S 600
#define ACCOUNT_MAX_RETIRED 40
#define ACCOUNT_MAX_MARKS 32
/* Last-resort KEM ids come from their own range (the server keeps them
 * apart), so one-time KEM ids stay contiguous. */
#define ACCOUNT_LR_ID_BASE 0x40000000u

/* A replaced signed (kind 0) or last-resort KEM (kind 1) pre-key. */
struct retired_key {
  uint8_t kind;
  uint32_t id;
  uint64_t at;
};
/* "Every one-time id below `below` had been handed out at `at`." */
struct handed_mark {
  uint32_t below;
  uint64_t at;
};

/* Lives in sodium_malloc memory (it holds the identity private key). */
struct account {
  struct sotto_identity id;
  char username[SC_USER_MAX + 1]; /* empty until registered */
  char server[ACCOUNT_MAX_SERVER];
  char pin[ACCOUNT_PIN_LEN + 1]; /* empty when a CA file is used */
  char ca[PATH_MAX];
  uint32_t device_id;
  uint8_t secret[ACCOUNT_SECRET_LEN];
  uint32_t spk_id;            /* current signed pre-key */
  uint32_t next_prekey_id;    /* next one-time EC pre-key id */
  uint32_t next_kem_id;       /* next KEM pre-key id */
  uint32_t last_resort_id;    /* the last-resort KEM pre-key */
  uint64_t next_seq;          /* next local message number */
  /* Key lifecycle (version 2 of the record). */
  uint64_t spk_created, lr_created; /* when the current ones were made (0: unknown, rotate) */
  uint32_t next_lr_id;
  uint64_t last_topup;
  uint32_t opk_low, kem_low; /* lowest one-time id not yet deleted by expiry */
  uint8_t n_retired, n_ec_marks, n_kem_marks;
  struct retired_key retired[ACCOUNT_MAX_RETIRED];
  struct handed_mark ec_marks[ACCOUNT_MAX_MARKS], kem_marks[ACCOUNT_MAX_MARKS];
};

/* A fresh identity (and nothing else): sodium_malloc'd, free with account_free. */
int account_new(struct account **out);
void account_free(struct account *a);
int account_load(struct store *st, struct account **out);
int account_save(struct store *st, const struct account *a);

/* The libsotto callbacks, reading and deleting "spk/", "opk/", "kem/"
 * records of st; they must run inside a store transaction (a failed decrypt
 * rolls the deletions back). ctx is the callbacks' context and must outlive
 * ps: trusted (may be NULL: trust every identity) is called with tud as the
 * library's is_trusted_identity; keep_keys set, used one-time keys are not
 * deleted (a trial decryption of a held message that commits nothing). */
struct prekey_ctx {
  struct store *st;
  int (*trusted)(void *tud, const uint8_t identity[32]);
  void *tud;
  int keep_keys;
};
void account_prekey_store(struct prekey_ctx *ctx, struct sotto_prekey_store *ps);

/* Pre-keys for an upload, generated and stored (inside the caller's
 * transaction). Public halves are written into the arrays the caller
 * passes; see register.c. */
struct prekey_pub {
  uint32_t id;
  uint8_t pub[SOTTO_PUBKEY_LEN];
};
struct kem_pub {
  uint32_t id;
  uint8_t pub[SOTTO_KEM_PUBKEY_LEN];
  uint8_t sig[SOTTO_SIGNATURE_LEN];
};
int account_new_signed_prekey(struct store *st, struct account *a, uint8_t pub[SOTTO_PUBKEY_LEN],
                              uint8_t sig[SOTTO_SIGNATURE_LEN]);
int account_new_one_time_prekeys(struct store *st, struct account *a, struct prekey_pub *out, size_t n);
/* last_resort: one KEM key kept after use (out[0]); else n one-time keys. */
int account_new_kem_prekeys(struct store *st, struct account *a, struct kem_pub *out, size_t n, int last_resort);

/* Key lifecycle, inside the caller's transaction, at time now (seconds):
 * records that the server holds ec_left / kem_left one-time keys (it hands
 * out the lowest ids first, so every id below the newest ec_left ones was
 * handed out), deletes handed-out one-time keys and replaced signed and
 * last-resort keys whose time is up, and says whether the signed or
 * last-resort pre-key is due for rotation (*rotate). */
int account_keys_maintain(struct store *st, struct account *a, uint64_t now, uint32_t ec_left, uint32_t kem_left,
                          int *rotate);
/* Marks the current signed and last-resort pre-keys replaced at now (before
 * new ones are made), so they are deleted after the grace period. */
int account_retire_current(struct store *st, struct account *a, uint64_t now);
/* How many one-time keys of each kind may be generated without going over
 * the bounded stock; deletes the oldest handed-out keys first if needed. */
int account_room(struct store *st, struct account *a, size_t want_ec, size_t want_kem, size_t *ec_room,
                 size_t *kem_room);

#endif

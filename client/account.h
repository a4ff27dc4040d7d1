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

#include "cli.h"

#define ACCOUNT_SECRET_LEN 32
#define ACCOUNT_MAX_SERVER 256
#define ACCOUNT_PIN_LEN 64 /* SHA-256 of the server certificate, hex */
/* Pre-key stock: what register uploads and what a top-up restores. */
#define ACCOUNT_OPK_BATCH 100
#define ACCOUNT_KEM_BATCH 10

/* Lives in sodium_malloc memory (it holds the identity private key). */
struct account {
  struct sotto_identity id;
  char username[CLI_USER_MAX + 1]; /* empty until registered */
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
};

/* A fresh identity (and nothing else): sodium_malloc'd, free with account_free. */
int account_new(struct account **out);
void account_free(struct account *a);
int account_load(struct store *st, struct account **out);
int account_save(struct store *st, const struct account *a);

/* The libsotto callbacks, reading and deleting "spk/", "opk/", "kem/"
 * records of st; they must run inside a store transaction (a failed decrypt
 * rolls the deletions back). */
void account_prekey_store(struct store *st, struct sotto_prekey_store *ps);

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

#endif

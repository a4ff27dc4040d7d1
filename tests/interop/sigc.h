/* SPDX-License-Identifier: Apache-2.0 */
/*
 * sigc: a test harness that drives libsignal-protocol-c 2.3.3 ("libsignal-c")
 * through a small API of plain bytes.
 *
 * Interop tests and benchmarks use it to play a libsignal-c party against
 * libsotto: "libsignal user Bob, give me your bundle / decrypt this / encrypt
 * that". It hides libsignal-c's reference counting, its store callbacks, its
 * global recursive lock and its crypto provider (OpenSSL 3 EVP, objects fetched
 * once, so that benchmarks compare against a fast and fair provider).
 *
 * LICENCE NOTE: libsignal-protocol-c is GPLv3. This file and sigc.c are
 * TEST-ONLY code: they may be linked into test and benchmark executables of
 * this tree, never into libsotto, sotto-server, the sotto CLI or anything that
 * is installed or distributed.
 *
 * Conventions:
 *  - Public keys are 33 bytes serialized (0x05 || u), private keys 32 raw bytes.
 *  - Peers are addressed by (NUL-terminated name, device id).
 *  - Functions returning int return 0 on success or a negative code: either a
 *    libsignal-c code (SG_ERR_*, e.g. -1001 duplicate, -1005 invalid message,
 *    -1010 untrusted identity; see sigc_strerror) or one of the SIGC_ERR_* codes
 *    below, which lie below libsignal-c's SG_ERR_MINIMUM (-9999).
 *  - Output buffers returned through uint8_t ** are malloc'd; the caller owns
 *    them and releases them with free().
 *  - Every user has its own signal_context, recursive lock and in-memory
 *    stores; one user may be used from several threads (calls serialize on its
 *    lock), different users are independent.
 */
#ifndef SOTTO_TESTS_INTEROP_SIGC_H
#define SOTTO_TESTS_INTEROP_SIGC_H

#include <stddef.h>
#include <stdint.h>

#define SIGC_PUB_LEN 33
#define SIGC_PRIV_LEN 32
#define SIGC_SIG_LEN 64
#define SIGC_SAFETY_DIGITS 60

#define SIGC_TYPE_SIGNAL 2 /* SignalMessage */
#define SIGC_TYPE_PREKEY 3 /* PreKeySignalMessage */

/* Harness-specific error codes (libsignal-c's own codes are -12, -22, -1000..-1201). */
#define SIGC_ERR_USAGE (-10001)         /* bad argument (NULL, wrong type, ...) */
#define SIGC_ERR_NOT_FOUND (-10002)     /* no such record in the in-memory stores */
#define SIGC_ERR_BAD_SIGNATURE (-10003) /* sigc_verify: signature does not verify */
#define SIGC_ERR_CRYPTO (-10004)        /* crypto provider (OpenSSL/libsodium) failure */
#define SIGC_ERR_NOMEM (-10005)         /* allocation failed inside the harness */

struct sigc_user; /* one libsignal-c party with its own context + in-memory stores */

struct sigc_bundle { /* public keys in 33-byte serialized form (0x05 || u) */
  uint32_t registration_id, device_id;
  uint8_t identity[33];
  uint32_t spk_id;
  uint8_t spk[33];
  uint8_t spk_sig[64];
  int has_opk;
  uint32_t opk_id;
  uint8_t opk[33];
};

/* ---- users ------------------------------------------------------------- */

/* Creates a user with a fresh identity key pair and registration id
 * (1..16380). name is copied. Returns NULL on failure. Free with sigc_user_free. */
struct sigc_user *sigc_user_new(const char *name, uint32_t device_id);

/* Same but with a given identity key pair (pub 33 bytes serialized, priv 32
 * raw) and registration id. Returns NULL if pub is not the public key of priv. */
struct sigc_user *sigc_user_new_with_identity(const char *name, uint32_t device_id,
                                              const uint8_t pub33[33], const uint8_t priv32[32],
                                              uint32_t registration_id);

/* Releases everything the user holds and wipes its stores. NULL is a no-op. */
void sigc_user_free(struct sigc_user *u);

void sigc_identity(const struct sigc_user *u, uint8_t pub33[33], uint8_t priv32[32]);
uint32_t sigc_registration_id(const struct sigc_user *u);
const char *sigc_user_name(const struct sigc_user *u);
uint32_t sigc_device_id(const struct sigc_user *u);

/* ---- pre-keys ---------------------------------------------------------- */

/* Generates and stores a signed pre-key (spk_id) and, if opk_id != 0, a
 * one-time pre-key, and fills the bundle (registration id and device id of u,
 * identity key, keys, signature). A later call with the same ids replaces the
 * stored keys. */
int sigc_make_bundle(struct sigc_user *u, uint32_t spk_id, uint32_t opk_id, struct sigc_bundle *out);

/* Re-stores a one-time pre-key that was consumed (for repeated setup
 * benchmarks): stores the same key pair again. SIGC_ERR_NOT_FOUND if opk_id was
 * never made by sigc_make_bundle. */
int sigc_restore_opk(struct sigc_user *u, uint32_t opk_id);

/* 1 if the one-time pre-key opk_id is in u's pre-key store, 0 otherwise
 * (libsignal-c removes it after the first PreKeySignalMessage that used it). */
int sigc_has_opk(struct sigc_user *u, uint32_t opk_id);

/* ---- pairwise sessions -------------------------------------------------- */

/* Processes a peer's bundle (session_builder_process_pre_key_bundle): verifies
 * the signed pre-key signature, applies the identity trust policy, runs X3DH
 * and stores a session. Returns 0 or the libsignal error code (<0). */
int sigc_process_bundle(struct sigc_user *u, const char *peer, uint32_t peer_device,
                        const struct sigc_bundle *b);

/* Encrypts to peer. *type = 3 (PreKeySignalMessage) or 2 (SignalMessage).
 * *out is malloc'd; free() it. SG_ERR_NO_SESSION (-1008) without a session. */
int sigc_encrypt(struct sigc_user *u, const char *peer, uint32_t peer_device, const uint8_t *pt,
                 size_t pt_len, int *type, uint8_t **out, size_t *out_len);

/* Decrypts a type 2 or 3 message from peer. *pt is malloc'd (at least one byte
 * even for an empty plaintext); free() it. Returns 0 or the libsignal error
 * (e.g. -1001 duplicate, -1005 invalid message); on error nothing is stored
 * and *pt is NULL. */
int sigc_decrypt(struct sigc_user *u, const char *peer, uint32_t peer_device, int type,
                 const uint8_t *msg, size_t msg_len, uint8_t **pt, size_t *pt_len);

/* 1 if a session record for peer is stored, 0 otherwise. */
int sigc_has_session(struct sigc_user *u, const char *peer, uint32_t peer_device);

/* Deletes the session record: 1 if one was deleted, 0 if there was none. */
int sigc_delete_session(struct sigc_user *u, const char *peer, uint32_t peer_device);

/* Size in bytes of the stored serialized session record, 0 if none. */
size_t sigc_session_record_size(struct sigc_user *u, const char *peer, uint32_t peer_device);

/* Snapshot / restore the stored session record for peer (e.g. to check that a
 * failed decrypt changed nothing). Snapshot: *rec malloc'd copy, free() it;
 * SIGC_ERR_NOT_FOUND if there is no record. Restore: replaces the record with
 * the given bytes (rec == NULL or len == 0 deletes it). */
int sigc_session_snapshot(struct sigc_user *u, const char *peer, uint32_t peer_device,
                          uint8_t **rec, size_t *len);
int sigc_session_restore(struct sigc_user *u, const char *peer, uint32_t peer_device,
                         const uint8_t *rec, size_t len);

/* ---- identity trust ------------------------------------------------------ */
/* By default trust on first use: the first identity key seen for (peer,
 * device) is saved; a different key later is untrusted and session building
 * fails with SG_ERR_UNTRUSTED_IDENTITY (-1010). */

/* Copies the saved identity key of peer: 0, or SIGC_ERR_NOT_FOUND. */
int sigc_remote_identity(struct sigc_user *u, const char *peer, uint32_t peer_device,
                         uint8_t pub33[33]);

/* Forgets the saved identity key of peer, so that the next one is trusted
 * again (the "accept new safety number" step). 1 if one was forgotten, 0 if none. */
int sigc_forget_identity(struct sigc_user *u, const char *peer, uint32_t peer_device);

/* ---- groups (Sender Keys, v3) ------------------------------------------ */
/* group = group id string, sender = (name, device) of the sender. */

/* Creates (or reuses) u's own sending chain in group and returns the
 * serialized SenderKeyDistributionMessage (malloc'd). */
int sigc_group_create(struct sigc_user *u, const char *group, uint8_t **skdm, size_t *skdm_len);

/* Stores the sender key of (sender, sender_device) in group from its SKDM. */
int sigc_group_process(struct sigc_user *u, const char *group, const char *sender,
                       uint32_t sender_device, const uint8_t *skdm, size_t skdm_len);

/* Encrypts with u's own sending chain in group: serialized SenderKeyMessage. */
int sigc_group_encrypt(struct sigc_user *u, const char *group, const uint8_t *pt, size_t pt_len,
                       uint8_t **out, size_t *out_len);

/* Decrypts a SenderKeyMessage of (sender, sender_device) in group. */
int sigc_group_decrypt(struct sigc_user *u, const char *group, const char *sender,
                       uint32_t sender_device, const uint8_t *msg, size_t msg_len, uint8_t **pt,
                       size_t *pt_len);

/* Size in bytes of the stored sender-key record of (sender, device) in group, 0 if none. */
size_t sigc_group_record_size(struct sigc_user *u, const char *group, const char *sender,
                              uint32_t sender_device);

/* ---- stateless primitives (shared internal context) ---------------------- */

/* Safety number via libsignal-c's fingerprint generator (5200 iterations,
 * scannable version 1). ids are the stable identifiers (e.g. usernames); keys
 * are 33-byte serialized identity keys. out60 receives 60 digits + NUL;
 * scannable (may be NULL) gets the serialized scannable payload (malloc'd). */
int sigc_safety_number(const char *local_id, const uint8_t local_key[33], const char *remote_id,
                       const uint8_t remote_key[33], char out60[61], uint8_t **scannable,
                       size_t *scannable_len);

/* XEdDSA (libsignal variant) via curve_calculate_signature /
 * curve_verify_signature. sigc_verify returns 0 if valid,
 * SIGC_ERR_BAD_SIGNATURE if not, another negative code on bad input. */
int sigc_sign(const uint8_t priv32[32], const uint8_t *msg, size_t len, uint8_t sig[64]);
int sigc_verify(const uint8_t pub33[33], const uint8_t *msg, size_t len, const uint8_t sig[64]);

/* X25519 agreement via libsignal-c's curve_calculate_agreement (curve25519-donna). */
int sigc_agree(const uint8_t pub33[33], const uint8_t priv32[32], uint8_t out[32]);

/* Generates a key pair with libsignal-c's curve_generate_key_pair. */
int sigc_keypair(uint8_t pub33[33], uint8_t priv32[32]);

/* ---- the crypto provider itself ------------------------------------------ */
/* Direct calls into the provider the harness installs in every libsignal-c
 * context, for known-answer tests of the harness and provider benchmarks.
 * Both peers of a libsignal-c-only test share this provider, so a wrong
 * provider would go unnoticed there; libsotto interop would not. */

#define SIGC_CIPHER_AES_CTR 1 /* SG_CIPHER_AES_CTR_NOPADDING */
#define SIGC_CIPHER_AES_CBC 2 /* SG_CIPHER_AES_CBC_PKCS5 */

/* HMAC-SHA256 with any key length (including 0) through init/update/final/cleanup. */
int sigc_provider_hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *msg, size_t len,
                              uint8_t out[32]);

/* SHA-512 through the provider. Hashes msg twice on one context, as the
 * fingerprint code does, and fails with SIGC_ERR_CRYPTO if the second result
 * differs (final did not reset the context). */
int sigc_provider_sha512(const uint8_t *msg, size_t len, uint8_t out[64]);

/* AES encrypt / decrypt (key 16, 24 or 32 bytes, iv 16 bytes) through the
 * provider; *out malloc'd. CBC decryption fails (<0) on bad padding. */
int sigc_provider_encrypt(int cipher, const uint8_t *key, size_t key_len, const uint8_t iv[16],
                          const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);
int sigc_provider_decrypt(int cipher, const uint8_t *key, size_t key_len, const uint8_t iv[16],
                          const uint8_t *in, size_t in_len, uint8_t **out, size_t *out_len);

/* Short English name of a libsignal-c or SIGC_ERR_* code (static string). */
const char *sigc_strerror(int err);

#endif /* SOTTO_TESTS_INTEROP_SIGC_H */

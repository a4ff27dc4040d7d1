/* sotto/session.h: pairwise sessions. X3DH session setup from a pre-key
 * bundle, and the Double Ratchet, in libsignal's version 3 wire format.
 *
 * Sans-I/O: the library never touches storage. A session record lives in
 * memory as a struct sotto_session; the caller serializes it whenever it
 * wants to persist it (after each successful encrypt/decrypt, typically) and
 * loads it back with sotto_session_deserialize. Pre-keys are reached through
 * the callbacks of struct sotto_prekey_store.
 *
 * Failure discipline: every function either succeeds completely or leaves
 * the record exactly as it was. Authentication failures (bad MAC, bad
 * padding, bad signature) all return SOTTO_ERR_AUTH and zero the output.
 * A message that was already decrypted returns SOTTO_ERR_DUPLICATE. Message
 * keys are deleted once used. See docs/protocol.md for limits and for what is
 * kept, and for how long. */
#ifndef SOTTO_SESSION_H
#define SOTTO_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/error.h>
#include <sotto/limits.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Envelope-level message types (they are not self-describing on the wire). */
#define SOTTO_MSG_SIGNAL 2
#define SOTTO_MSG_PREKEY 3
#define SOTTO_MSG_SENDERKEY 4
#define SOTTO_MSG_SENDERKEY_DISTRIBUTION 5

/* Upper bound on encrypt's output beyond the padded ciphertext. */
#define SOTTO_SESSION_MAX_OVERHEAD 2048
#define SOTTO_SESSION_ENCRYPTED_MAX(pt_len) (SOTTO_CIPHERTEXT_LEN(pt_len) + SOTTO_SESSION_MAX_OVERHEAD)

/* Our own long-term identity, as the caller keeps it. */
struct sotto_identity {
  uint8_t pub[SOTTO_PUBKEY_LEN];
  uint8_t priv[SOTTO_PRIVKEY_LEN];
  uint32_t registration_id;
};

/* A peer's pre-key bundle as fetched from the directory (public data). */
struct sotto_bundle {
  uint32_t registration_id;
  uint32_t device_id;
  uint8_t identity_key[SOTTO_PUBKEY_LEN];
  uint32_t signed_prekey_id;
  uint8_t signed_prekey[SOTTO_PUBKEY_LEN];
  uint8_t signed_prekey_sig[SOTTO_SIGNATURE_LEN];
  int has_one_time_prekey;
  uint32_t one_time_prekey_id;
  uint8_t one_time_prekey[SOTTO_PUBKEY_LEN];
};

/* Pre-key lookups for the responder. Each load returns 0 and fills the key
 * pair, SOTTO_ERR_UNKNOWN_PREKEY when there is no such key, or another
 * negative code. remove_one_time_prekey is called once a PreKeySignalMessage
 * that used the key has fully decrypted and the session was committed.
 * is_trusted_identity may be NULL (trust everything; the caller then checks
 * the identity returned by sotto_session_remote_identity); otherwise it
 * returns 1 to accept the initiator's identity key, 0 to refuse it
 * (SOTTO_ERR_UNTRUSTED_IDENTITY). */
struct sotto_prekey_store {
  void *ud;
  int (*load_signed_prekey)(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]);
  int (*load_one_time_prekey)(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]);
  void (*remove_one_time_prekey)(void *ud, uint32_t id);
  int (*is_trusted_identity)(void *ud, const uint8_t identity[32]);
};

struct sotto_session;

/* Allocates an empty record. Free with sotto_session_free (wipes). */
SOTTO_WUR int sotto_session_new(struct sotto_session **out);
void sotto_session_free(struct sotto_session *s);

/* Initiator: verifies the bundle's signed pre-key signature (SOTTO_ERR_AUTH
 * if it fails), runs X3DH (DH1..DH4) and makes the result the current state,
 * archiving any previous one. The caller must have decided to trust
 * b->identity_key. Until the first message from the peer decrypts, encrypt
 * produces PreKeySignalMessages. */
SOTTO_WUR int sotto_session_init_from_bundle(struct sotto_session *s, const struct sotto_identity *me,
                                             const struct sotto_bundle *b);

/* Encrypts pt. *type gets SOTTO_MSG_PREKEY or SOTTO_MSG_SIGNAL; out needs
 * SOTTO_SESSION_ENCRYPTED_MAX(pt_len) bytes. */
SOTTO_WUR int sotto_session_encrypt(struct sotto_session *s, uint8_t *out, size_t cap, size_t *out_len,
                                    int *type, const uint8_t *pt, size_t pt_len);

/* Decrypts a message of the given type. pt needs msg_len bytes. For a
 * PreKeySignalMessage that starts a new session, me and store are used
 * (they may be NULL for SOTTO_MSG_SIGNAL). */
SOTTO_WUR int sotto_session_decrypt(struct sotto_session *s, const struct sotto_identity *me,
                                    const struct sotto_prekey_store *store, int type,
                                    const uint8_t *msg, size_t msg_len, uint8_t *pt, size_t cap,
                                    size_t *pt_len);

/* 1 if the record has a current state. */
int sotto_session_has_state(const struct sotto_session *s);
/* The remote identity key of the current state (SOTTO_ERR_NO_SESSION if none). */
SOTTO_WUR int sotto_session_remote_identity(const struct sotto_session *s, uint8_t out[32]);
SOTTO_WUR int sotto_session_remote_registration_id(const struct sotto_session *s, uint32_t *id);
/* Protocol version of the current state (3 or 4), or a negative error. */
int sotto_session_version(const struct sotto_session *s);
/* Number of stored skipped message keys in the current state. */
size_t sotto_session_skipped_keys(const struct sotto_session *s);

/* Serialization in our own versioned format (docs/protocol.md). */
size_t sotto_session_serialized_size(const struct sotto_session *s);
SOTTO_WUR int sotto_session_serialize(const struct sotto_session *s, uint8_t *out, size_t cap,
                                      size_t *out_len);
SOTTO_WUR int sotto_session_deserialize(struct sotto_session **out, const uint8_t *in, size_t in_len);

#ifdef __cplusplus
}
#endif
#endif

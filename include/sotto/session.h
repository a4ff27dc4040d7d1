/* SPDX-License-Identifier: Apache-2.0 */
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
 * keys are deleted once used, and skipped ones with their receiving chain
 * when it is dropped. See docs/protocol.md for limits and for what is kept,
 * and for how long. */
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
  /* PQXDH: a signed KEM pre-key (one-time, or the last-resort key),
   * serialized type || pk with type 0x0A (ML-KEM-1024) or 0x08 (Kyber-1024
   * round 3, libsignal's); signature = Sign(identity, serialized key). */
  int has_kem_prekey;
  uint32_t kem_prekey_id;
  uint8_t kem_prekey[SOTTO_KEM_PUBKEY_LEN];
  uint8_t kem_prekey_sig[SOTTO_SIGNATURE_LEN];
};

/* Pre-key lookups for the responder. Each load returns 0 and fills the key
 * pair, SOTTO_ERR_UNKNOWN_PREKEY when there is no such key, or another
 * negative code. remove_one_time_prekey is called once a PreKeySignalMessage
 * that used the key has fully decrypted and the session was committed.
 *
 * is_trusted_identity: the trust decision for the record's address, asked by
 * decrypt before a message lets an identity key take over the record: before
 * a PreKeySignalMessage's new state is committed, and before an archived
 * state whose remote identity differs from the current state's becomes
 * current again. It is asked only once the message has verified under that
 * identity (so the key is the sender's, not merely named in the bytes), with
 * the 32-byte public identity key; ud is the store's ud, so a caller that
 * keeps one record per address points ud at (or through to) that address.
 * It returns 1 to accept, 0 to refuse, or a negative SOTTO_ERR_* code (any
 * other value counts as SOTTO_ERR_STORE). On 0 decrypt returns
 * SOTTO_ERR_UNTRUSTED_IDENTITY having committed nothing (no state, no
 * pre-key callbacks, output zeroed); sotto_session_decrypt_ex reports the
 * refused key. Once the caller trusts it, decrypting the same message again
 * succeeds (its pre-keys were not consumed; the store must still hold
 * them). NULL: every identity is
 * accepted, the behaviour before the hook (the caller then compares
 * sotto_session_remote_identity itself). The library never calls it for a
 * message on the current state. */
struct sotto_prekey_store {
  void *ud;
  int (*load_signed_prekey)(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]);
  int (*load_one_time_prekey)(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]);
  void (*remove_one_time_prekey)(void *ud, uint32_t id);
  int (*is_trusted_identity)(void *ud, const uint8_t identity[32]);
  /* PQXDH (version 4) responders: the decapsulation key of a KEM pre-key
   * (the ciphertext's type byte says which KEM it was made for),
   * and a notice once a message that used it fully decrypted. The store
   * deletes a one-time KEM pre-key then, and keeps the last-resort one. */
  int (*load_kem_prekey)(void *ud, uint32_t id, uint8_t sk[SOTTO_KEM_SECRETKEY_LEN]);
  void (*kem_prekey_used)(void *ud, uint32_t id);
};

/* Generates an ML-KEM-1024 pre-key: pub is serialized (0x0A || pk), sk raw. */
SOTTO_WUR int sotto_kem_keypair_generate(uint8_t pub[SOTTO_KEM_PUBKEY_LEN], uint8_t sk[SOTTO_KEM_SECRETKEY_LEN]);
/* The same for a chosen KEM: SOTTO_KEM_TYPE_MLKEM1024 (sotto's default) or
 * SOTTO_KEM_TYPE_KYBER1024 (0x08, Kyber-1024 round 3: what libsignal 0.103
 * peers produce and accept). SOTTO_ERR_USAGE for another type. */
SOTTO_WUR int sotto_kem_keypair_generate_type(uint8_t pub[SOTTO_KEM_PUBKEY_LEN],
                                              uint8_t sk[SOTTO_KEM_SECRETKEY_LEN], uint8_t type);
/* sig = Sign(identity, serialized KEM public key). */
SOTTO_WUR int sotto_kem_prekey_sign(uint8_t sig[SOTTO_SIGNATURE_LEN], const uint8_t identity_priv[SOTTO_PRIVKEY_LEN],
                                    const uint8_t pub[SOTTO_KEM_PUBKEY_LEN]);

/* Flags for sotto_session_init_from_bundle_ex. */
#define SOTTO_INIT_ALLOW_X3DH 0x1 /* interop mode: accept a bundle without a KEM pre-key (version 3) */
/* SPQR v1 (the "triple ratchet", as libsignal 0.103 runs it) is the default
 * on every version 4 session. SOTTO_INIT_SPQR insists on it: a bundle
 * without a KEM pre-key is then SOTTO_ERR_DOWNGRADE even in X3DH mode.
 * SOTTO_INIT_NO_SPQR makes a version 4 session without SPQR, as libsotto
 * did before: for tests and measurements only, since libsotto and libsignal
 * responders refuse its first message (SOTTO_ERR_DOWNGRADE). A responder
 * makes a new version 4 state only from a PreKeySignalMessage that carries
 * pq_ratchet, and runs SPQR on it. */
#define SOTTO_INIT_SPQR 0x2
#define SOTTO_INIT_NO_SPQR 0x4

struct sotto_session;

/* Allocates an empty record. Free with sotto_session_free (wipes). */
SOTTO_WUR int sotto_session_new(struct sotto_session **out);
void sotto_session_free(struct sotto_session *s);

/* Initiator: verifies the bundle's signatures (SOTTO_ERR_AUTH if one
 * fails), runs PQXDH (version 4: DH1..DH4 plus ML-KEM-1024 encapsulation to
 * the KEM pre-key) and makes the result the current state, archiving any
 * previous one. A bundle without a KEM pre-key is refused with
 * SOTTO_ERR_DOWNGRADE, so a server that strips KEM keys cannot silently
 * downgrade a session. The caller must have decided to trust
 * b->identity_key. Until the first message from the peer decrypts, encrypt
 * produces PreKeySignalMessages. */
SOTTO_WUR int sotto_session_init_from_bundle(struct sotto_session *s, const struct sotto_identity *me,
                                             const struct sotto_bundle *b);
/* The same with flags. SOTTO_INIT_ALLOW_X3DH is the explicit interop mode
 * for version 3 peers (libsignal-protocol-c): a bundle without a KEM pre-key
 * then gives a version 3 (X3DH) session; a bundle with one still gives
 * version 4. */
SOTTO_WUR int sotto_session_init_from_bundle_ex(struct sotto_session *s, const struct sotto_identity *me,
                                                const struct sotto_bundle *b, unsigned flags);

/* Encrypts pt. *type gets SOTTO_MSG_PREKEY or SOTTO_MSG_SIGNAL; out needs
 * SOTTO_SESSION_ENCRYPTED_MAX(pt_len) bytes. */
SOTTO_WUR int sotto_session_encrypt(struct sotto_session *s, uint8_t *out, size_t cap, size_t *out_len,
                                    int *type, const uint8_t *pt, size_t pt_len);

/* Decrypts a message of the given type. pt needs msg_len bytes. For a
 * PreKeySignalMessage that starts a new session, me and store are used
 * (me may be NULL for SOTTO_MSG_SIGNAL; store may be NULL there too, which
 * skips the is_trusted_identity check on an archived state).
 *
 * Work per message is bounded whatever the bytes (docs/protocol.md, "Work
 * per message"): a message is tried only on states that can open it (by
 * ratchet key; a PreKeySignalMessage by base key and identity), on at most
 * SOTTO_MAX_DECRYPT_TRIALS of them, with at most SOTTO_MAX_DECRYPT_DH_STEPS
 * DH ratchet steps and SOTTO_MAX_DECRYPT_CHAIN_STEPS chain steps in all; a
 * message beyond that is refused as SOTTO_ERR_AUTH, record unchanged.
 * A sending chain that reached index UINT32_MAX makes encrypt return
 * SOTTO_ERR_TOO_LARGE (start a new session), and a message whose counter is
 * UINT32_MAX is SOTTO_ERR_TOO_FAR_AHEAD: no counter ever wraps. */
SOTTO_WUR int sotto_session_decrypt(struct sotto_session *s, const struct sotto_identity *me,
                                    const struct sotto_prekey_store *store, int type,
                                    const uint8_t *msg, size_t msg_len, uint8_t *pt, size_t cap,
                                    size_t *pt_len);

/* What sotto_session_decrypt_ex reports besides the plaintext. */
struct sotto_decrypt_info {
  /* On success: the remote identity key of the state that opened the
   * message (now the current state). On SOTTO_ERR_UNTRUSTED_IDENTITY: the
   * identity key is_trusted_identity refused, to show or quarantine. */
  uint8_t identity[SOTTO_PUBKEY_LEN];
  /* 1 if the message came on another state than the one that was current:
   * a new session (PreKeySignalMessage) or an archived state made current
   * again; 0 for a message on the current state. */
  int changed_state;
};

/* sotto_session_decrypt with a report: info (may be NULL) is filled on
 * success and on SOTTO_ERR_UNTRUSTED_IDENTITY, and zeroed on any other
 * error. */
SOTTO_WUR int sotto_session_decrypt_ex(struct sotto_session *s, const struct sotto_identity *me,
                                       const struct sotto_prekey_store *store, int type, const uint8_t *msg,
                                       size_t msg_len, uint8_t *pt, size_t cap, size_t *pt_len,
                                       struct sotto_decrypt_info *info);

/* Addresses: SignalMessage field 6 (libsignal 0.91 and later) names the
 * sender and the recipient, inside the bytes the MAC covers, so that a
 * message cannot be passed off as one between other parties (identity
 * misbinding). libsignal's form, for Signal service ids, is 36 bytes:
 * sender service id (kind byte 0 ACI / 1 PNI, 16-byte UUID) || sender
 * device (1 byte) || recipient service id || recipient device. Between
 * sotto peers the addresses are usernames (docs/protocol.md, "Addresses"):
 * 0x53 || u8 length || sender name || u32 device || u8 length || recipient
 * name || u32 device, big-endian.
 *
 * With addresses, encrypt writes field 6 on every message, and decrypt,
 * once the MAC verified, refuses (SOTTO_ERR_AUTH, the same as a failed MAC,
 * record unchanged) a message whose field 6 is not the expected bytes; a
 * message without field 6 is accepted (libsignal's rule: older senders),
 * unless `require` is set (sotto peers write it on every message). Without
 * addresses (sotto_session_encrypt / _decrypt / _decrypt_ex), nothing is
 * written and field 6 is not checked. */
#define SOTTO_ADDRESS_SERVICE_ID 1 /* a Signal service id (libsignal peers) */
#define SOTTO_ADDRESS_NAME 2       /* a sotto username */
#define SOTTO_ADDRESS_NAME_MAX 64
struct sotto_address {
  int kind;               /* SOTTO_ADDRESS_SERVICE_ID or SOTTO_ADDRESS_NAME */
  uint8_t service_id[17]; /* SERVICE_ID: kind (0 ACI, 1 PNI) || UUID */
  const char *name;       /* NAME: 1..SOTTO_ADDRESS_NAME_MAX bytes, NUL-terminated */
  uint32_t device_id;     /* SERVICE_ID: 1..127 (one byte on the wire) */
};
struct sotto_addresses {
  struct sotto_address local, remote; /* both of one kind */
  int require;                        /* decrypt: refuse a message without field 6 */
};

/* sotto_session_encrypt with addresses (a NULL a: none). SOTTO_ERR_USAGE
 * for an invalid address. */
SOTTO_WUR int sotto_session_encrypt_addressed(struct sotto_session *s, const struct sotto_addresses *a,
                                              uint8_t *out, size_t cap, size_t *out_len, int *type,
                                              const uint8_t *pt, size_t pt_len);
/* sotto_session_decrypt_ex with addresses: a->remote is the sender, a->local
 * us (a NULL a: none). */
SOTTO_WUR int sotto_session_decrypt_addressed(struct sotto_session *s, const struct sotto_identity *me,
                                              const struct sotto_prekey_store *store,
                                              const struct sotto_addresses *a, int type, const uint8_t *msg,
                                              size_t msg_len, uint8_t *pt, size_t cap, size_t *pt_len,
                                              struct sotto_decrypt_info *info);

/* 1 if the record has a current state. */
int sotto_session_has_state(const struct sotto_session *s);
/* The remote identity key of the current state (SOTTO_ERR_NO_SESSION if none). */
SOTTO_WUR int sotto_session_remote_identity(const struct sotto_session *s, uint8_t out[32]);
SOTTO_WUR int sotto_session_remote_registration_id(const struct sotto_session *s, uint32_t *id);
/* 1 if the current state runs SPQR, 0 if it does not (a version 3
 * session, or a version 4 one made before SPQR was the default) or there is
 * none. A caller should not send on a version 4 session without SPQR: it
 * starts a new session from a fresh bundle instead (docs/protocol.md,
 * "Migration"). */
int sotto_session_has_spqr(const struct sotto_session *s);
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

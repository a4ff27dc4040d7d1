/* SPDX-License-Identifier: Apache-2.0 */
/* sotto/limits.h: every fixed size and protocol limit of libsotto in one place. */
#ifndef SOTTO_LIMITS_H
#define SOTTO_LIMITS_H

/* Key and signature sizes. A Curve25519 public key is 32 raw bytes; on the
 * wire, in MAC inputs, signatures and fingerprints it is serialized as the
 * type byte 0x05 followed by those 32 bytes (33 bytes). */
#define SOTTO_KEY_LEN 32
#define SOTTO_PUBKEY_LEN 32
#define SOTTO_SERIALIZED_PUBKEY_LEN 33
#define SOTTO_PRIVKEY_LEN 32
#define SOTTO_SIGNATURE_LEN 64
#define SOTTO_DJB_TYPE 0x05

/* Protocol versions. */
#define SOTTO_VERSION_X3DH 3
#define SOTTO_VERSION_PQXDH 4

/* Double Ratchet limits (libsignal-protocol-c's values, see docs/protocol.md). */
#define SOTTO_MAX_FORWARD_JUMP 2000   /* a message at most this far ahead of its chain */
#define SOTTO_MAX_SKIPPED_KEYS 2000   /* stored skipped message keys per session, oldest evicted */
#define SOTTO_MAX_RECEIVER_CHAINS 5   /* receiving chains kept per session state */
#define SOTTO_MAX_ARCHIVED_STATES 40  /* previous session states kept per session record */
/* Work one incoming SignalMessage may cost, over every state it is tried on
 * (a forged message is only found out at its MAC, after the ratchet and
 * chain steps that lead to its key). The first trial can always afford a
 * full forward jump. */
#define SOTTO_MAX_DECRYPT_TRIALS 4         /* states tried per message */
#define SOTTO_MAX_DECRYPT_DH_STEPS 3       /* DH ratchet steps per message */
#define SOTTO_MAX_DECRYPT_CHAIN_STEPS 2000 /* chain steps per message (>= SOTTO_MAX_FORWARD_JUMP) */
#define SOTTO_MAX_DECRYPT_SPQR_STEPS 2000  /* SPQR chain steps per message (libsignal allows 25,000) */

/* Sender Keys limits. */
#define SOTTO_MAX_SENDER_KEY_STATES 5
#define SOTTO_MAX_SENDER_MESSAGE_KEYS 2000
#define SOTTO_MAX_SENDER_FORWARD_JUMP 2000

/* Message sizes. Plaintext is capped so that every length on the wire and in
 * memory stays bounded; the server applies its own (smaller or equal) cap. */
#define SOTTO_MAX_PLAINTEXT_LEN (256 * 1024)
#define SOTTO_MESSAGE_MAC_LEN 8
/* Upper bound of any serialized message for a plaintext of SOTTO_MAX_PLAINTEXT_LEN
 * (ciphertext with padding plus headers, generous). */
#define SOTTO_MAX_MESSAGE_LEN (SOTTO_MAX_PLAINTEXT_LEN + 4096)
/* Ciphertext overhead: AES-CBC pads 1..16 bytes. */
#define SOTTO_CIPHERTEXT_LEN(pt_len) ((((pt_len) / 16) + 1) * 16)

/* Serialized state records. */
#define SOTTO_MAX_SESSION_RECORD_LEN (4 * 1024 * 1024)
#define SOTTO_MAX_SENDER_KEY_RECORD_LEN (1024 * 1024)

/* Safety numbers. */
#define SOTTO_FINGERPRINT_ITERATIONS 5200
#define SOTTO_SAFETY_NUMBER_LEN 60
#define SOTTO_MAX_STABLE_ID_LEN 256

/* Post-quantum pre-keys (PQXDH, version 4): ML-KEM-1024. A KEM public key
 * or ciphertext is serialized as one type byte followed by the raw bytes,
 * like libsignal (0x0A = ML-KEM-1024). 0x08 = Kyber-1024 round 3, the only
 * KEM today's libsignal ships: same sizes, other hashing (sotto/kyber.h);
 * sotto accepts either from a peer and produces ML-KEM-1024 by default. */
#define SOTTO_KEM_TYPE_MLKEM1024 0x0A
#define SOTTO_KEM_TYPE_KYBER1024 0x08
#define SOTTO_KEM_PUBKEY_LEN (1 + 1568)     /* serialized */
#define SOTTO_KEM_SECRETKEY_LEN 3168        /* raw decapsulation key (either KEM) */
#define SOTTO_KEM_CIPHERTEXT_LEN (1 + 1568) /* serialized */

/* Registration ids are 14-bit like libsignal's default (1..16380). */
#define SOTTO_MAX_REGISTRATION_ID 16380

#endif

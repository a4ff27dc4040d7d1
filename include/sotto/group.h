/* SPDX-License-Identifier: Apache-2.0 */
/* sotto/group.h: Sender Keys (group messaging), wire-compatible with Signal
 * protocol v3 as libsignal-protocol-c 2.3.3 implements it, and with today's
 * libsignal (0.103), which puts a distribution uuid first.
 *
 * One struct sotto_sender_key is the record for one (group, sender) pair. It
 * holds up to SOTTO_MAX_SENDER_KEY_STATES chains, keyed by a 31-bit chain id:
 *  - on the sender's side, its own chain, which also carries the private
 *    signing key ("own signing state");
 *  - on a member's side, the chains the sender distributed to it, each with
 *    the sender's public signing key, the current chain key and up to
 *    SOTTO_MAX_SENDER_MESSAGE_KEYS stored keys of skipped messages.
 *
 * Wire formats (notes/signal-v3.md 4.6, notes/signal-today.md):
 *   SenderKeyDistributionMessage = 0x33 || protobuf {1 id, 2 iteration,
 *       3 chainKey (32 B), 4 signingKey (0x05 || u, 33 B)}
 *   SenderKeyMessage = 0x33 || protobuf {1 id, 2 iteration, 3 ciphertext}
 *       || 64-byte XEdDSA signature over everything before it.
 *   Today's layout (libsignal 0.91+): field 1 is the 16-byte distribution
 *   uuid and every field above moves up by one. The parsers tell the two
 *   apart by the wire type of field 1 (bytes vs varint) and read both. A chain
 *   learned from one layout only decrypts messages of the same layout and,
 *   for today's, the same uuid (SOTTO_ERR_NO_SENDER_KEY otherwise). The
 *   sender picks the layout when it creates its chain:
 *   sotto_sender_key_distribution (v3) or sotto_sender_key_distribution_uuid.
 * A distribution message is neither signed nor MACed: it must travel inside a
 * pairwise (authenticated) session.
 *
 * The record is not thread-safe: the caller serializes all calls on one
 * record. Nothing here does I/O; the caller stores the record with
 * sotto_sender_key_serialize() after every successful call that changes it
 * (distribution when it created the chain, process, encrypt, decrypt). */
#ifndef SOTTO_GROUP_H
#define SOTTO_GROUP_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/error.h>
#include <sotto/limits.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Upper bound of a serialized SenderKeyDistributionMessage: version byte,
 * a 16-byte uuid (today's layout), two 5-byte varints, a 32-byte chain key and
 * a 33-byte key with their tags. */
#define SOTTO_SKDM_MAX_LEN 100
/* Upper bound of a SenderKeyMessage carrying pt_len plaintext bytes: version,
 * two varint fields (<= 6 B each), the ciphertext field (tag, <= 5-byte
 * length, CBC output) and the signature. */
#define SOTTO_GROUP_MESSAGE_MAX_LEN(pt_len) \
  (1 + 18 + 6 + 6 + 1 + 5 + SOTTO_CIPHERTEXT_LEN(pt_len) + SOTTO_SIGNATURE_LEN)

struct sotto_sender_key; /* record for one (group, sender): up to 5 states by chain id */

/* Creates an empty record. *out is owned by the caller; release it with
 * sotto_sender_key_free. */
SOTTO_WUR int sotto_sender_key_new(struct sotto_sender_key **out);

/* Wipes every key of the record and frees it. NULL is a no-op. */
void sotto_sender_key_free(struct sotto_sender_key *rec);

/* Sender side. If rec has no own signing state, creates one (random 31-bit
 * chain id, random 32-byte chain key, fresh signing key pair, iteration 0) as
 * its newest state, dropping the oldest state if five are held. Then writes
 * the SenderKeyDistributionMessage for the CURRENT iteration and chain key
 * into out (at most SOTTO_SKDM_MAX_LEN bytes). On error (including
 * SOTTO_ERR_BUFFER_TOO_SMALL) the record is unchanged. */
SOTTO_WUR int sotto_sender_key_distribution(struct sotto_sender_key *rec, uint8_t *out, size_t cap,
                                            size_t *out_len);

/* The same in today's layout, for libsignal 0.103 peers: the new chain (if
 * any) belongs to the distribution uuid (libsignal's distribution_id, 16
 * bytes), and it and every SenderKeyMessage of it carry the uuid first.
 * SOTTO_ERR_USAGE if rec already has an own chain of the other layout or of
 * another uuid (use one record per distribution). */
SOTTO_WUR int sotto_sender_key_distribution_uuid(struct sotto_sender_key *rec, uint8_t *out,
                                                 size_t cap, size_t *out_len,
                                                 const uint8_t uuid[16]);

/* Receiver side. Parses a SenderKeyDistributionMessage completely, then adds
 * its chain as the newest state; the oldest state is dropped past five. A
 * state with the same chain id and a different signing key is replaced. A
 * state with the same chain id AND the same signing key is kept as it is
 * (only marked newest): re-delivery of a distribution message must not
 * rewind the chain and re-open replays. On error the record is unchanged. */
SOTTO_WUR int sotto_sender_key_process(struct sotto_sender_key *rec, const uint8_t *skdm,
                                       size_t skdm_len);

/* Encrypts pt with the own signing state and advances its chain. Writes the
 * SenderKeyMessage (at most SOTTO_GROUP_MESSAGE_MAX_LEN(pt_len) bytes) into
 * out. SOTTO_ERR_NOT_SENDER if rec has no own signing state (a member's
 * record), SOTTO_ERR_TOO_LARGE if pt_len > SOTTO_MAX_PLAINTEXT_LEN. On error
 * the record is unchanged and out holds nothing useful. */
SOTTO_WUR int sotto_group_encrypt(struct sotto_sender_key *rec, uint8_t *out, size_t cap,
                                  size_t *out_len, const uint8_t *pt, size_t pt_len);

/* Decrypts a SenderKeyMessage into pt (cap >= msg_len always suffices: the
 * ciphertext is written there before the padding is removed). The signature
 * is checked before any other use of the state. Results:
 *   0                      pt[0..*pt_len) is the plaintext, state advanced;
 *   SOTTO_ERR_NO_SENDER_KEY no state for the message's chain id;
 *   SOTTO_ERR_AUTH          bad signature or bad padding;
 *   SOTTO_ERR_DUPLICATE     message key already used (a replay);
 *   SOTTO_ERR_TOO_FAR_AHEAD more than SOTTO_MAX_SENDER_FORWARD_JUMP ahead;
 *   malformed-input codes   the bytes do not parse.
 * Out-of-order messages within the limits decrypt through stored keys (at
 * most SOTTO_MAX_SENDER_MESSAGE_KEYS per state, the oldest evicted). On ANY
 * failure the record is unchanged, pt[0..cap) is zeroed and *pt_len is 0. */
SOTTO_WUR int sotto_group_decrypt(struct sotto_sender_key *rec, uint8_t *pt, size_t cap,
                                  size_t *pt_len, const uint8_t *msg, size_t msg_len);

/* Our own versioned serialization (docs/groups.md). The output contains the
 * chain keys, stored message keys and the private signing key: it is as
 * secret as the record. sotto_sender_key_serialized_size gives the exact
 * length. */
SOTTO_WUR int sotto_sender_key_serialize(const struct sotto_sender_key *rec, uint8_t *out,
                                         size_t cap, size_t *out_len);
size_t sotto_sender_key_serialized_size(const struct sotto_sender_key *rec);

/* Strict, bounded parser of the above: any truncation, trailing byte, count
 * or length over its limit, unknown version or flag, unsorted or duplicate
 * entry, or inconsistent key is rejected. On success *out is a new record
 * owned by the caller; on error *out is NULL. */
SOTTO_WUR int sotto_sender_key_deserialize(struct sotto_sender_key **out, const uint8_t *in,
                                           size_t in_len);

/* Number of states held (0..SOTTO_MAX_SENDER_KEY_STATES). */
unsigned sotto_sender_key_state_count(const struct sotto_sender_key *rec);

/* Chain id of the own signing state: 0 and *chain_id set, or
 * SOTTO_ERR_NOT_SENDER if there is none. */
SOTTO_WUR int sotto_sender_key_own_chain_id(const struct sotto_sender_key *rec, uint32_t *chain_id);

/* Layout of the own signing state: 0 with *has_uuid 1 and uuid set when it
 * is in today's layout (sotto_sender_key_distribution_uuid with that uuid
 * continues it), *has_uuid 0 and uuid zeroed for libsignal-protocol-c's
 * layout (sotto_sender_key_distribution); SOTTO_ERR_NOT_SENDER if there is
 * no own state. */
SOTTO_WUR int sotto_sender_key_own_distribution_uuid(const struct sotto_sender_key *rec, uint8_t uuid[16],
                                        int *has_uuid);

/* Reads the chain id of a SenderKeyMessage without verifying anything, so an
 * application can route it (e.g. to ask the sender for a distribution
 * message). 0, or a malformed-input code. */
SOTTO_WUR int sotto_group_message_chain_id(const uint8_t *msg, size_t msg_len, uint32_t *chain_id);

/* The same for the distribution uuid: *has_uuid = 1 and uuid filled for
 * today's layout, *has_uuid = 0 for the v3 layout. */
SOTTO_WUR int sotto_group_message_distribution_uuid(const uint8_t *msg, size_t msg_len,
                                                    uint8_t uuid[16], int *has_uuid);

#ifdef __cplusplus
}
#endif
#endif

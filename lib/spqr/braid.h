/* SPDX-License-Identifier: Apache-2.0 */
/* braid.h (internal): the SPQR v1 "ML-KEM braid" state machine (facts from
 * SparsePostQuantumRatchet v1.5.3 src/v1/chunked/states.rs, send_ek.rs,
 * send_ct.rs; the C is ours). Each epoch one side (the "A" role, send_ek)
 * makes an ML-KEM-768 key pair and streams header and key as erasure-coded
 * chunks; the other ("B" role, send_ct) encapsulates in two steps and streams
 * ct1 and ct2 || MAC; both derive the epoch secret; the roles swap for the
 * next epoch. One chunk (or none) rides on every message. See
 * docs/protocol.md, "SPQR", for the transitions.
 *
 * The state is a plain struct (no pointers), so a receive that changes
 * more than a counter can work on a copy (sotto__braid_recv_u). */
#ifndef SOTTO_SPQR_BRAID_H
#define SOTTO_SPQR_BRAID_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/mlkem.h>

#include "pq/mlkem768_inc.h"
#include "spqr/auth.h"
#include "spqr/msg.h"
#include "spqr/poly.h"

enum sotto__braid_state {
  /* A role (send_ek) */
  BRAID_KEYS_UNSAMPLED = 1,
  BRAID_KEYS_SAMPLED,
  BRAID_HEADER_SENT,
  BRAID_CT1_RECEIVED,
  BRAID_EK_SENT_CT1_RECEIVED,
  /* B role (send_ct) */
  BRAID_NO_HEADER_RECEIVED,
  BRAID_HEADER_RECEIVED,
  BRAID_CT1_SAMPLED,
  BRAID_EK_RECEIVED_CT1_SAMPLED,
  BRAID_CT1_ACKNOWLEDGED,
  BRAID_CT2_SAMPLED
};

#define SOTTO_BRAID_HDR_OBJ (SOTTO_MLKEM768_HDR_LEN + 32)  /* header || MAC */
#define SOTTO_BRAID_CT2_OBJ (SOTTO_MLKEM768_CT2_LEN + 32)  /* ct2 || MAC */

struct sotto__braid {
  uint8_t state;
  uint64_t epoch;
  struct sotto__spqr_auth auth;
  /* A role */
  uint8_t dk[SOTTO_MLKEM768_SK_LEN];
  /* both */
  uint8_t hdr[SOTTO_MLKEM768_HDR_LEN];
  uint8_t ek[SOTTO_MLKEM768_EK_VEC_LEN];
  uint8_t ct1[SOTTO_MLKEM768_CT1_LEN];
  uint8_t es[SOTTO_MLKEM768_INC_STATE_LEN]; /* B: encapsulation state (secret) */
  /* the object being sent and where its chunks are */
  struct sotto__spqr_enc enc;
  uint32_t enc_idx;
  /* the object being received */
  struct sotto__spqr_dec dec;
};

/* A (the PQXDH initiator, is_a = 1) starts in KeysUnsampled, B in
 * NoHeaderReceived; both at epoch 1 with the authenticator keyed by PQR. */
int sotto__braid_init(struct sotto__braid *b, const uint8_t auth_key[32], int is_a);
/* The message to put on the next outgoing SignalMessage. *has_secret is set
 * when this send completed an epoch (B encapsulated): secret for epoch
 * *secret_epoch. Needs randomness in KeysUnsampled and HeaderReceived. */
int sotto__braid_send(struct sotto__braid *b, struct sotto__spqr_msg *m, uint8_t chunk[32],
                      int *has_secret, uint8_t secret[32], uint64_t *secret_epoch);
/* Processes a received message. Errors: SOTTO_ERR_MALFORMED (an epoch ahead
 * of ours), SOTTO_ERR_AUTH (a header or ciphertext MAC), SOTTO_ERR_INVALID_KEY
 * (a key vector not matching its header); the state is then unchanged. */
int sotto__braid_recv(struct sotto__braid *b, const struct sotto__spqr_msg *m, int *has_secret,
                      uint8_t secret[32], uint64_t *secret_epoch);
void sotto__braid_clear(struct sotto__braid *b);

/* In-place send and receive with an undo record (as chain.h's): the common
 * message (a chunk sent from the object in flight, a chunk added to the
 * object being received) records a few counters; one that changes the
 * braid's state (a new key pair, an encapsulation, a completed object, a
 * new epoch) keeps a copy of the braid first. On error the braid is
 * unchanged and the record empty. */
struct sotto__braid_undo {
  struct sotto__braid *copy; /* the braid before, or NULL */
  int has_enc;
  uint32_t enc_idx;
  int has_dec;
  uint16_t dec_index, dec_mask;
};
void sotto__braid_undo_init(struct sotto__braid_undo *u);
int sotto__braid_send_u(struct sotto__braid *b, struct sotto__spqr_msg *m, uint8_t chunk[32], int *has_secret,
                        uint8_t secret[32], uint64_t *secret_epoch, struct sotto__braid_undo *u);
int sotto__braid_recv_u(struct sotto__braid *b, const struct sotto__spqr_msg *m, int *has_secret,
                        uint8_t secret[32], uint64_t *secret_epoch, struct sotto__braid_undo *u);
void sotto__braid_rollback(struct sotto__braid *b, struct sotto__braid_undo *u);
void sotto__braid_commit(struct sotto__braid_undo *u);

/* Our record of a braid (docs/protocol.md, "SPQR braid record"). */
size_t sotto__braid_serialized_size(const struct sotto__braid *b);
int sotto__braid_serialize(const struct sotto__braid *b, uint8_t *out, size_t cap, size_t *out_len);
/* Strict parser; on failure *b is wiped. */
int sotto__braid_deserialize(struct sotto__braid *b, const uint8_t *in, size_t len);
#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* spqr.h (internal): SPQR v1 for one session state, as libsignal 0.103 runs
 * it (SparsePostQuantumRatchet v1.5.3 src/lib.rs send/recv; the C is ours):
 * the braid (braid.h) feeds epoch secrets to the chain (chain.h), and every
 * message gets the key (epoch - 1, index) of the chain. Minimum version V1:
 * an empty pq_ratchet field (version 0) is refused. lib/proto/session.c
 * runs it per session state (docs/protocol.md, "SPQR"). */
#ifndef SOTTO_SPQR_SPQR_H
#define SOTTO_SPQR_SPQR_H

#include <stddef.h>
#include <stdint.h>

#include "spqr/braid.h"
#include "spqr/chain.h"

struct sotto__spqr {
  struct sotto__braid braid;
  struct sotto__spqr_chain chain;
};

/* is_a: 1 for the PQXDH initiator. pqr: PQXDH's third 32 bytes. */
int sotto__spqr_init(struct sotto__spqr *s, const uint8_t pqr[32], int is_a);
void sotto__spqr_clear(struct sotto__spqr *s);
/* The pq_ratchet bytes for the next message (at most SOTTO_SPQR_MSG_MAX_LEN)
 * and its key (*has_key 0 only for the V0 "no key" index). */
int sotto__spqr_send(struct sotto__spqr *s, uint8_t *out, size_t cap, size_t *out_len,
                     uint8_t key[32], int *has_key);
/* Processes a received pq_ratchet field and gives its message key. On any
 * error the state is unchanged: SOTTO_ERR_VERSION for an empty field or
 * another version, the codes of msg.h, braid.h and chain.h otherwise. */
int sotto__spqr_recv(struct sotto__spqr *s, const uint8_t *in, size_t len, uint8_t key[32],
                     int *has_key);

/* The same in place, for a caller that decides later (after the message's
 * MAC) whether the changes stay: each call records its changes in u, and
 * sotto__spqr_commit keeps them or sotto__spqr_rollback puts the state back
 * byte for byte. On an error from a call, that call changed nothing (what
 * earlier calls recorded stays recorded). One message per record.
 *
 * A receive has two steps. recv_key parses the field and gives the message
 * key; it needs the chain only (the key of a message of epoch e comes from
 * epoch e - 1, which this message can never be the one to complete), and it
 * refuses (SOTTO_ERR_TOO_FAR_AHEAD) a key more than *budget chain steps
 * ahead, taking the steps from *budget. recv_braid then runs the braid (the
 * erasure decoding, the ML-KEM work, the header and ciphertext MACs) and
 * adds a completed epoch to the chain: the caller runs it only once the
 * message's MAC verified, so a forged message costs no more than its key.
 * `in` must stay valid until recv_braid. */
struct sotto__spqr_undo {
  struct sotto__braid_undo b;
  struct sotto__spqr_chain_undo c;
  struct sotto__spqr_msg m; /* recv_key's parse, for recv_braid */
  int have_msg;
};
void sotto__spqr_undo_init(struct sotto__spqr_undo *u);
int sotto__spqr_send_u(struct sotto__spqr *s, uint8_t *out, size_t cap, size_t *out_len, uint8_t key[32],
                       int *has_key, struct sotto__spqr_undo *u);
int sotto__spqr_recv_key_u(struct sotto__spqr *s, const uint8_t *in, size_t len, uint8_t key[32],
                           int *has_key, uint32_t *budget, struct sotto__spqr_undo *u);
int sotto__spqr_recv_braid_u(struct sotto__spqr *s, struct sotto__spqr_undo *u);
void sotto__spqr_rollback(struct sotto__spqr *s, struct sotto__spqr_undo *u);
void sotto__spqr_commit(struct sotto__spqr_undo *u);

#endif

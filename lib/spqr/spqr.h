/* SPDX-License-Identifier: Apache-2.0 */
/* spqr.h (internal): SPQR v1 for one session state, as libsignal 0.103 runs
 * it (SparsePostQuantumRatchet v1.5.3 src/lib.rs send/recv; the C is ours):
 * the braid (braid.h) feeds epoch secrets to the chain (chain.h), and every
 * message gets the key (epoch - 1, index) of the chain. Minimum version V1:
 * an empty pq_ratchet field (version 0) is refused. Not yet wired into
 * lib/proto/session.c (docs/protocol.md, "SPQR"). */
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

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* chain.h (internal): the SPQR v1 symmetric chain, the part of the Sparse
 * Post-Quantum Ratchet that turns epoch secrets into one key per message.
 * Facts from signalapp/SparsePostQuantumRatchet v1.5.3 src/chain.rs (the
 * version libsignal 0.103 pins); the C is ours. docs/protocol.md, "SPQR".
 *
 *   start:   HKDF(salt 0^32, IKM auth key (PQXDH's third 32 bytes),
 *                 "Signal PQ Ratchet V1 Chain  Start" (two spaces), 96)
 *            = next_root || A->B chain || B->A chain            (epoch 0)
 *   epoch:   HKDF(salt next_root, IKM epoch secret,
 *                 "Signal PQ Ratchet V1 Chain Add Epoch", 96)    (same split)
 *   step:    ctr += 1; HKDF(salt 0^32, IKM next, BE32(ctr) ||
 *                 "Signal PQ Ratchet V1 Chain Next", 64) = next' || key(ctr)
 * The first key of a chain has index 1. Each direction of each epoch is one
 * chain. Limits: a receive may jump at most max_jump (25,000) ahead; keys of
 * skipped indices are kept for max_ooo (2,000) indices back, the list being
 * trimmed when it reaches max_ooo * 11 / 10 + 1 entries; a key is given out
 * once. Only the send epoch and one epoch before it are kept once sending
 * has moved to a newer epoch (their sending halves are cleared).
 *
 * Ownership: the chain owns its key lists (malloc, wiped before free).
 * Failure leaves the chain unchanged. Nothing here logs or does I/O. */
#ifndef SOTTO_SPQR_CHAIN_H
#define SOTTO_SPQR_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#define SOTTO_SPQR_KEY_LEN 32
#define SOTTO_SPQR_DEFAULT_MAX_JUMP 25000u
#define SOTTO_SPQR_DEFAULT_MAX_OOO 2000u
/* Epochs held at once. Upstream keeps every epoch from one before the send
 * epoch on; an epoch can only complete after messages both ways, so a peer
 * cannot add epochs without us sending, but the bound makes that explicit. */
#define SOTTO_SPQR_MAX_LINKS 8

enum { SOTTO_SPQR_A2B = 0, SOTTO_SPQR_B2A = 1 };

struct sotto__spqr_prev {
  uint32_t idx;
  uint8_t key[SOTTO_SPQR_KEY_LEN];
};

struct sotto__spqr_dir {
  uint32_t ctr;                       /* index of the last key derived */
  int has_next;                       /* 0 once a sending half is cleared */
  uint8_t next[SOTTO_SPQR_KEY_LEN];   /* chain key for index ctr + 1 */
  struct sotto__spqr_prev *prev;      /* keys of skipped indices, unordered */
  uint32_t n_prev, cap_prev;
};

struct sotto__spqr_link {
  struct sotto__spqr_dir send, recv;
};

struct sotto__spqr_chain {
  uint8_t dir;            /* SOTTO_SPQR_A2B (the initiator) or SOTTO_SPQR_B2A */
  uint64_t current_epoch; /* epoch of links[n_links - 1] */
  uint64_t send_epoch;
  uint8_t next_root[SOTTO_SPQR_KEY_LEN];
  uint32_t max_jump, max_ooo;
  uint32_t n_links;
  struct sotto__spqr_link links[SOTTO_SPQR_MAX_LINKS]; /* oldest first */
};

/* Epoch 0 from the 32-byte auth key. max_jump / max_ooo 0 = the defaults. */
int sotto__spqr_chain_init(struct sotto__spqr_chain *c, const uint8_t auth_key[32], uint8_t dir,
                           uint32_t max_jump, uint32_t max_ooo);
/* Epoch current + 1 from its secret. SOTTO_ERR_USAGE for another epoch
 * number, SOTTO_ERR_TOO_LARGE past SOTTO_SPQR_MAX_LINKS. */
int sotto__spqr_chain_add_epoch(struct sotto__spqr_chain *c, uint64_t epoch, const uint8_t *secret,
                                size_t secret_len);
/* The next sending key of `epoch` (never below the last send epoch, never
 * above the current one) and its index. */
int sotto__spqr_chain_send_key(struct sotto__spqr_chain *c, uint64_t epoch, uint32_t *index,
                               uint8_t key[SOTTO_SPQR_KEY_LEN]);
/* The receiving key (epoch, index): SOTTO_ERR_TOO_FAR_AHEAD past max_jump,
 * SOTTO_ERR_DUPLICATE when already given out or trimmed, SOTTO_ERR_NO_SESSION
 * for an epoch not held, SOTTO_ERR_NOMEM. */
int sotto__spqr_chain_recv_key(struct sotto__spqr_chain *c, uint64_t epoch, uint32_t index,
                               uint8_t key[SOTTO_SPQR_KEY_LEN]);
/* Undo records: the in-place key and epoch operations below record what
 * they change, so that a caller can keep the chain live (no copy per
 * message) and still put it back when the message fails later. A key
 * operation that would change more than one direction's counters (a jump
 * that empties or trims the key list, a send that moves the send epoch)
 * saves a deep copy of the chain instead. Rollback in the reverse order of
 * the operations: epoch, then key. */
struct sotto__spqr_chain_undo {
  struct sotto__spqr_chain *copy; /* the chain before the key operation, or NULL */
  int link;                       /* -1: no direction record */
  int recv;                       /* the direction: 1 recv, 0 send */
  uint32_t ctr, n_prev;
  int has_next;
  uint8_t next[SOTTO_SPQR_KEY_LEN];
  int removed; /* a kept key was given out: it was prev[removed_pos] */
  uint32_t removed_pos;
  struct sotto__spqr_prev removed_ent;
  int epoch_added;
  uint64_t epoch_before;
  uint8_t root_before[SOTTO_SPQR_KEY_LEN];
};

void sotto__spqr_chain_undo_init(struct sotto__spqr_chain_undo *u);
/* As send_key / recv_key / add_epoch, recording into u (one key operation
 * and one epoch operation per record). On error the chain is unchanged and
 * nothing is recorded for that operation. */
int sotto__spqr_chain_send_key_u(struct sotto__spqr_chain *c, uint64_t epoch, uint32_t *index,
                                 uint8_t key[SOTTO_SPQR_KEY_LEN], struct sotto__spqr_chain_undo *u);
int sotto__spqr_chain_recv_key_u(struct sotto__spqr_chain *c, uint64_t epoch, uint32_t index,
                                 uint8_t key[SOTTO_SPQR_KEY_LEN], struct sotto__spqr_chain_undo *u);
int sotto__spqr_chain_add_epoch_u(struct sotto__spqr_chain *c, uint64_t epoch, const uint8_t *secret,
                                  size_t secret_len, struct sotto__spqr_chain_undo *u);
/* Chain steps (HKDFs) that recv_key(epoch, index) would take: 0 for a
 * kept key or an error. */
uint32_t sotto__spqr_chain_recv_cost(const struct sotto__spqr_chain *c, uint64_t epoch, uint32_t index);
/* Puts the chain back as it was before the recorded operations. */
void sotto__spqr_chain_rollback(struct sotto__spqr_chain *c, struct sotto__spqr_chain_undo *u);
/* Keeps the changes; wipes and frees the record. */
void sotto__spqr_chain_commit(struct sotto__spqr_chain_undo *u);

/* Deep copy (dst uninitialised); SOTTO_ERR_NOMEM leaves dst cleared. */
int sotto__spqr_chain_copy(struct sotto__spqr_chain *dst, const struct sotto__spqr_chain *src);
void sotto__spqr_chain_clear(struct sotto__spqr_chain *c);

/* Our record of a chain (docs/protocol.md, "SPQR chain record"). */
size_t sotto__spqr_chain_serialized_size(const struct sotto__spqr_chain *c);
int sotto__spqr_chain_serialize(const struct sotto__spqr_chain *c, uint8_t *out, size_t cap,
                                size_t *out_len);
/* Strict parser; on failure *c is cleared. */
int sotto__spqr_chain_deserialize(struct sotto__spqr_chain *c, const uint8_t *in, size_t len);

#endif

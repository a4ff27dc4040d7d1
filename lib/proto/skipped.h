/* SPDX-License-Identifier: Apache-2.0 */
/* skipped.h: storage for skipped message keys of one session state.
 *
 * A bounded FIFO of SOTTO_MAX_SKIPPED_KEYS entries with a hash index, so that
 * looking up, inserting and deleting a key costs O(1) however many keys are
 * held (libsignal-protocol-c scans and re-serializes them on every message).
 * An entry holds the message-key seed (HMAC(CK, 0x01)), from which the message
 * keys are re-derived when it is used; it is wiped when used or evicted.
 * Eviction: when full, the oldest entry goes, so a skipped key survives until
 * SOTTO_MAX_SKIPPED_KEYS newer skipped keys have been stored, or until its
 * chain is dropped from the state (session.c removes the chain's keys then). */
#ifndef SOTTO_SKIPPED_H
#define SOTTO_SKIPPED_H

#include <stddef.h>
#include <stdint.h>

#define SOTTO__SKIPPED_BUCKETS 4096

struct sotto__skent {
  uint8_t chain[32]; /* the sender's ratchet public key */
  uint8_t seed[32];
  uint32_t counter;
  int16_t next; /* hash chain link, -1 ends */
  uint8_t alive;
};

struct sotto__skipped {
  uint32_t head;  /* next slot to (over)write */
  uint32_t used;  /* slots written so far, <= SOTTO_MAX_SKIPPED_KEYS */
  uint32_t live;  /* entries not yet used or evicted */
  int16_t buckets[SOTTO__SKIPPED_BUCKETS];
  struct sotto__skent ents[]; /* SOTTO_MAX_SKIPPED_KEYS */
};

struct sotto__skipped *sotto__skipped_new(void);
void sotto__skipped_free(struct sotto__skipped *t);
struct sotto__skipped *sotto__skipped_dup(const struct sotto__skipped *t);
/* Index of the live entry for (chain, counter), or -1. */
int sotto__skipped_find(const struct sotto__skipped *t, const uint8_t chain[32], uint32_t counter);
void sotto__skipped_remove(struct sotto__skipped *t, int idx);
/* Removes (and wipes) every live entry of one chain; t may be NULL. A scan
 * of the whole table: it runs once per dropped receiving chain. */
void sotto__skipped_remove_chain(struct sotto__skipped *t, const uint8_t chain[32]);
void sotto__skipped_insert(struct sotto__skipped *t, const uint8_t chain[32], uint32_t counter,
                           const uint8_t seed[32]);
/* Calls fn for each live entry, oldest first. */
void sotto__skipped_each(const struct sotto__skipped *t,
                         void (*fn)(void *ud, const struct sotto__skent *e), void *ud);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* spqr.c: SPQR v1 send and receive for one session state (spqr.h). The
 * state is changed in place with an undo record (braid.h, chain.h): no copy
 * of the ~15 KB braid or of the chain's key lists per message, except when
 * a message changes more than a few counters (once per object or epoch). */
#include "spqr/spqr.h"

#include <sotto/error.h>
#include <stdint.h>
#include <string.h>

#include "crypto/crypto.h"

int sotto__spqr_init(struct sotto__spqr *s, const uint8_t pqr[32], int is_a) {
  int rc;
  if (s == NULL || pqr == NULL) return SOTTO_ERR_USAGE;
  memset(s, 0, sizeof *s);
  if ((rc = sotto__braid_init(&s->braid, pqr, is_a)) != 0) return rc;
  return sotto__spqr_chain_init(&s->chain, pqr, is_a ? SOTTO_SPQR_A2B : SOTTO_SPQR_B2A, 0, 0);
}

void sotto__spqr_clear(struct sotto__spqr *s) {
  if (s == NULL) return;
  sotto__braid_clear(&s->braid);
  sotto__spqr_chain_clear(&s->chain);
}

void sotto__spqr_undo_init(struct sotto__spqr_undo *u) {
  memset(u, 0, sizeof *u);
  sotto__braid_undo_init(&u->b);
  sotto__spqr_chain_undo_init(&u->c);
}

void sotto__spqr_rollback(struct sotto__spqr *s, struct sotto__spqr_undo *u) {
  if (s == NULL || u == NULL) return;
  /* Reverse order: the chain (its epoch, then its key), then the braid. */
  sotto__spqr_chain_rollback(&s->chain, &u->c);
  sotto__braid_rollback(&s->braid, &u->b);
  sotto__spqr_undo_init(u);
}

void sotto__spqr_commit(struct sotto__spqr_undo *u) {
  if (u == NULL) return;
  sotto__spqr_chain_commit(&u->c);
  sotto__braid_commit(&u->b);
  sotto__spqr_undo_init(u);
}

int sotto__spqr_send_u(struct sotto__spqr *s, uint8_t *out, size_t cap, size_t *out_len, uint8_t key[32],
                       int *has_key, struct sotto__spqr_undo *u) {
  struct sotto__spqr_msg m;
  struct sotto__spqr_undo mine;
  uint8_t chunk[32], secret[32];
  uint64_t sep = 0;
  int rc, hs = 0;
  uint32_t index = 0;
  size_t n;

  if (out_len != NULL) *out_len = 0;
  if (s == NULL || out == NULL || out_len == NULL || key == NULL || has_key == NULL || u == NULL)
    return SOTTO_ERR_USAGE;
  *has_key = 0;
  sotto__spqr_undo_init(&mine);
  /* Braid first (its message names the epoch), then this message's key
   * (epoch - 1: not the epoch the braid may just have completed), then the
   * completed epoch. */
  if ((rc = sotto__braid_send_u(&s->braid, &m, chunk, &hs, secret, &sep, &mine.b)) != 0) goto out;
  if ((rc = sotto__spqr_chain_send_key_u(&s->chain, m.epoch - 1, &index, key, &mine.c)) != 0) goto out;
  if (hs && (rc = sotto__spqr_chain_add_epoch_u(&s->chain, sep, secret, 32, &mine.c)) != 0) goto out;
  m.index = index;
  if ((n = sotto__spqr_msg_write(out, cap, &m)) == 0) {
    rc = SOTTO_ERR_BUFFER_TOO_SMALL;
    goto out;
  }
  *out_len = n;
  *has_key = 1;
  *u = mine;
  sotto__spqr_undo_init(&mine);
out:
  if (rc != 0) {
    sotto__spqr_rollback(s, &mine);
    sotto__wipe(key, 32);
  }
  sotto__wipe(secret, sizeof secret);
  sotto__wipe(chunk, sizeof chunk);
  return rc;
}

int sotto__spqr_recv_key_u(struct sotto__spqr *s, const uint8_t *in, size_t len, uint8_t key[32],
                           int *has_key, uint32_t *budget, struct sotto__spqr_undo *u) {
  struct sotto__spqr_msg m;
  uint32_t cost;
  int rc;

  if (s == NULL || key == NULL || has_key == NULL || budget == NULL || u == NULL || (in == NULL && len != 0))
    return SOTTO_ERR_USAGE;
  *has_key = 0;
  if (len == 0) return SOTTO_ERR_VERSION; /* SPQR V0: below our minimum */
  if ((rc = sotto__spqr_msg_parse(&m, NULL, in, len)) != 0) return rc;
  if (m.epoch == 1 && m.index == 0) {
    /* V1's "no key" (the first messages before any chain key). */
  } else {
    cost = sotto__spqr_chain_recv_cost(&s->chain, m.epoch - 1, m.index);
    if (cost > *budget) return SOTTO_ERR_TOO_FAR_AHEAD;
    if ((rc = sotto__spqr_chain_recv_key_u(&s->chain, m.epoch - 1, m.index, key, &u->c)) != 0) {
      sotto__wipe(key, 32);
      return rc;
    }
    *budget -= cost;
    *has_key = 1;
  }
  u->m = m;
  u->have_msg = 1;
  return 0;
}

int sotto__spqr_recv_braid_u(struct sotto__spqr *s, struct sotto__spqr_undo *u) {
  struct sotto__braid_undo bu;
  uint8_t secret[32];
  uint64_t sep = 0;
  int rc, hs = 0;

  if (s == NULL || u == NULL || !u->have_msg) return SOTTO_ERR_USAGE;
  sotto__braid_undo_init(&bu);
  if ((rc = sotto__braid_recv_u(&s->braid, &u->m, &hs, secret, &sep, &bu)) != 0) goto out;
  if (hs && (rc = sotto__spqr_chain_add_epoch_u(&s->chain, sep, secret, 32, &u->c)) != 0) {
    sotto__braid_rollback(&s->braid, &bu);
    goto out;
  }
  u->b = bu;
  u->have_msg = 0;
out:
  sotto__wipe(secret, sizeof secret);
  return rc;
}

int sotto__spqr_send(struct sotto__spqr *s, uint8_t *out, size_t cap, size_t *out_len, uint8_t key[32],
                     int *has_key) {
  struct sotto__spqr_undo u;
  int rc;
  sotto__spqr_undo_init(&u);
  if ((rc = sotto__spqr_send_u(s, out, cap, out_len, key, has_key, &u)) == 0) sotto__spqr_commit(&u);
  return rc;
}

int sotto__spqr_recv(struct sotto__spqr *s, const uint8_t *in, size_t len, uint8_t key[32], int *has_key) {
  struct sotto__spqr_undo u;
  uint32_t budget = UINT32_MAX;
  int rc;
  if (s == NULL || key == NULL || has_key == NULL) return SOTTO_ERR_USAGE;
  sotto__spqr_undo_init(&u);
  if ((rc = sotto__spqr_recv_key_u(s, in, len, key, has_key, &budget, &u)) == 0 &&
      (rc = sotto__spqr_recv_braid_u(s, &u)) == 0) {
    sotto__spqr_commit(&u);
    return 0;
  }
  sotto__spqr_rollback(s, &u);
  sotto__wipe(key, 32);
  *has_key = 0;
  return rc;
}

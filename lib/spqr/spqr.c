/* SPDX-License-Identifier: Apache-2.0 */
/* spqr.c: SPQR v1 send and receive for one session state (spqr.h). */
#include <stdlib.h>
#include <string.h>

#include <sotto/error.h>

#include "crypto/crypto.h"
#include "spqr/spqr.h"

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

int sotto__spqr_send(struct sotto__spqr *s, uint8_t *out, size_t cap, size_t *out_len,
                     uint8_t key[32], int *has_key) {
  struct sotto__braid *b = NULL;
  struct sotto__spqr_chain c;
  struct sotto__spqr_msg m;
  uint8_t chunk[32], secret[32];
  uint64_t sep = 0;
  int rc, hs = 0, have_c = 0;
  uint32_t index = 0;
  size_t n;

  if (out_len != NULL) *out_len = 0;
  if (s == NULL || out == NULL || out_len == NULL || key == NULL || has_key == NULL)
    return SOTTO_ERR_USAGE;
  *has_key = 0;
  /* Work on copies; commit only when the message exists. */
  if ((b = malloc(sizeof *b)) == NULL) return SOTTO_ERR_NOMEM;
  *b = s->braid;
  if ((rc = sotto__spqr_chain_copy(&c, &s->chain)) != 0) goto out;
  have_c = 1;
  if ((rc = sotto__braid_send(b, &m, chunk, &hs, secret, &sep)) != 0) goto out;
  if (hs && (rc = sotto__spqr_chain_add_epoch(&c, sep, secret, 32)) != 0) goto out;
  if ((rc = sotto__spqr_chain_send_key(&c, m.epoch - 1, &index, key)) != 0) goto out;
  m.index = index;
  if ((n = sotto__spqr_msg_write(out, cap, &m)) == 0) {
    rc = SOTTO_ERR_BUFFER_TOO_SMALL;
    goto out;
  }
  *out_len = n;
  *has_key = 1;
  s->braid = *b;
  sotto__spqr_chain_clear(&s->chain);
  s->chain = c;
  have_c = 0;
out:
  if (have_c) sotto__spqr_chain_clear(&c);
  if (rc != 0) sotto__wipe(key, 32);
  sotto__wipe(secret, sizeof secret);
  sotto__wipe(b, sizeof *b);
  free(b);
  return rc;
}

int sotto__spqr_recv(struct sotto__spqr *s, const uint8_t *in, size_t len, uint8_t key[32],
                     int *has_key) {
  struct sotto__braid *b = NULL;
  struct sotto__spqr_chain c;
  struct sotto__spqr_msg m;
  uint8_t secret[32];
  uint64_t sep = 0;
  int rc, hs = 0, have_c = 0;

  if (s == NULL || key == NULL || has_key == NULL || (in == NULL && len != 0))
    return SOTTO_ERR_USAGE;
  *has_key = 0;
  if (len == 0) return SOTTO_ERR_VERSION; /* SPQR V0: below our minimum */
  if ((rc = sotto__spqr_msg_parse(&m, NULL, in, len)) != 0) return rc;
  if ((b = malloc(sizeof *b)) == NULL) return SOTTO_ERR_NOMEM;
  *b = s->braid;
  if ((rc = sotto__spqr_chain_copy(&c, &s->chain)) != 0) goto out;
  have_c = 1;
  if ((rc = sotto__braid_recv(b, &m, &hs, secret, &sep)) != 0) goto out;
  if (hs && (rc = sotto__spqr_chain_add_epoch(&c, sep, secret, 32)) != 0) goto out;
  if (!(m.epoch == 1 && m.index == 0)) {
    if ((rc = sotto__spqr_chain_recv_key(&c, m.epoch - 1, m.index, key)) != 0) goto out;
    *has_key = 1;
  }
  s->braid = *b;
  sotto__spqr_chain_clear(&s->chain);
  s->chain = c;
  have_c = 0;
out:
  if (have_c) sotto__spqr_chain_clear(&c);
  if (rc != 0) {
    sotto__wipe(key, 32);
    *has_key = 0;
  }
  sotto__wipe(secret, sizeof secret);
  sotto__wipe(b, sizeof *b);
  free(b);
  return rc;
}

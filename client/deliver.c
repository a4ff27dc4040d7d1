/* SPDX-License-Identifier: Apache-2.0 */
/* deliver.c: contents out over pairwise sessions (messaging.h). */
#include <sodium.h>
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "buf.h"
#include "contact.h"
#include "messaging.h"

static int identity_blocked(struct cli *c, const struct contact *ct) {
  return cli_error(c, "identity_changed",
                   "%s's identity key changed since you verified it, so nothing was sent: compare safety numbers "
                   "again ('sotto safety-number %s') and, if they match, run 'sotto verify %s NUMBER'",
                   ct->name, ct->name, ct->name);
}

void key_changed_warning(struct cli *c, const char *user) {
  cli_warn(c, "identity_changed",
           "%s's identity key changed (a new safety number). If they did not reinstall, someone may be in the "
           "middle: compare with 'sotto safety-number %s'",
           user, user);
}

int deliver_raw(struct cli *c, struct conn *k, const char *user, int type, const uint8_t *body, size_t len) {
  char what[96];
  int rc = sotto_net_send(k->net, user, CONN_PEER_DEVICE, (uint8_t)type, body, len, NULL, NULL);
  if (rc == 0) return CLI_OK;
  snprintf(what, sizeof what, "sending to %s", user);
  return conn_error(c, k, rc, what, user);
}

int deliver_pairwise(struct cli *c, struct conn *k, const char *user, const struct content *ct) {
  struct sotto_session *s = NULL;
  struct sotto_bundle *b = NULL;
  struct contact who;
  struct buf_wr pt;
  uint8_t *out = NULL;
  size_t out_len = 0, cap;
  int rc, type = 0, fresh = 0, ret = CLI_FAIL;

  buf_wr_init(&pt, CLI_MAX_TEXT + 8192);
  if (content_encode(&pt, ct)) {
    ret = cli_error(c, "too_large", "the message is too large (at most %d bytes of text)", CLI_MAX_TEXT);
    goto out;
  }
  if ((rc = contact_load(c->st, user, &who)) < 0 || (rc = session_load(c->st, user, &s)) < 0) {
    ret = cli_store_error(c, rc);
    goto out;
  }
  if (contact_blocked(&who)) {
    ret = identity_blocked(c, &who);
    goto out;
  }
  if (!sotto_session_has_state(s)) {
    /* First message: a bundle from the server, checked against what we knew. */
    if (!(b = malloc(sizeof *b))) {
      ret = cli_error(c, "nomem", "out of memory");
      goto out;
    }
    if (conn_fetch_bundle(c, k, user, b)) goto out;
    if (contact_observe(&who, b->identity_key) == KEY_CHANGED) {
      key_changed_warning(c, user);
      if (contact_blocked(&who)) {
        ret = identity_blocked(c, &who);
        goto out_save_contact;
      }
    }
    rc = sotto_session_init_from_bundle(s, &c->acct->id, b);
    if (rc == SOTTO_ERR_DOWNGRADE || rc == SOTTO_ERR_AUTH || rc == SOTTO_ERR_INVALID_KEY) {
      ret = cli_error(c, "bad_bundle",
                      "the server handed out keys for %s that fail their signature or lack the post-quantum "
                      "key (%s): nothing was sent; the server may be tampering",
                      user, sotto_strerror(rc));
      goto out;
    } else if (rc) {
      ret = cli_error(c, "internal", "cannot start a session with %s: %s", user, sotto_strerror(rc));
      goto out;
    }
    fresh = 1;
  }
  cap = SOTTO_SESSION_ENCRYPTED_MAX(pt.len);
  if (!(out = malloc(cap))) {
    ret = cli_error(c, "nomem", "out of memory");
    goto out;
  }
  /* The ratchet step is committed before the bytes leave: a crash after the
   * commit loses at most this message, never reuses a message key. */
  if ((rc = store_begin(c->st)) != 0) {
    ret = cli_store_error(c, rc);
    goto out;
  }
  if (!fresh) {
    sotto_session_free(s);
    s = NULL;
    if ((rc = session_load(c->st, user, &s)) < 0) {
      store_rollback(c->st);
      ret = cli_store_error(c, rc);
      goto out;
    }
  }
  if ((rc = sotto_session_encrypt(s, out, cap, &out_len, &type, pt.p, pt.len)) != 0) {
    store_rollback(c->st);
    ret = cli_error(c, "internal", "cannot encrypt for %s: %s", user, sotto_strerror(rc));
    goto out;
  }
  if ((rc = session_save(c->st, user, s)) || (rc = contact_save(c->st, &who)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    ret = cli_store_error(c, rc);
    goto out;
  }
  ret = deliver_raw(c, k, user, type, out, out_len);
  goto out;
out_save_contact:
  if (store_begin(c->st) == 0) {
    if (contact_save(c->st, &who) || store_commit(c->st)) store_rollback(c->st);
  }
out:
  if (out) {
    sodium_memzero(out, cap);
    free(out);
  }
  free(b);
  sotto_session_free(s);
  buf_wr_free(&pt);
  return ret;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* deliver.c: contents out over pairwise sessions (messaging.h). */
#include <sodium.h>
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "record.h"
#include "contact.h"
#include "devices.h"
#include "messaging.h"

static int identity_blocked(struct sc_client *c, const struct contact *ct) {
  return sc__fail(c, SC_ERR_IDENTITY_CHANGED,
                   "%s's identity key changed since you verified it, so nothing was sent: compare safety numbers "
                   "again ('sotto safety-number %s') and, if they match, run 'sotto verify %s NUMBER'",
                   ct->name, ct->name, ct->name);
}

int deliver_raw(struct sc_client *c, struct conn *k, const char *user, int type, const uint8_t *body, size_t len) {
  char what[96];
  int rc;
  c->sent_id = c->sent_ts = 0;
  rc = sotto_net_send(k->net, user, CONN_PEER_DEVICE, (uint8_t)type, body, len, &c->sent_id, &c->sent_ts);
  if (rc == 0) return 0;
  snprintf(what, sizeof what, "sending to %s", user);
  return conn_error(c, k, rc, what, user);
}

/* What sending to identity key id under contact ct needs (docs/client.md,
 * "Identity keys and verification"). */
enum { SEND_OK, SEND_BLOCKED, SEND_ASK };
static int send_decision(const struct contact *ct, const uint8_t id[SOTTO_PUBKEY_LEN]) {
  if (contact_blocked(ct)) return SEND_BLOCKED; /* a version 1 record: verified, key changed */
  if (ct->verified && sodium_memcmp(ct->verified_key, id, SOTTO_PUBKEY_LEN) != 0) return SEND_BLOCKED;
  if (ct->has_sent) return sodium_memcmp(ct->sent_key, id, SOTTO_PUBKEY_LEN) != 0 ? SEND_ASK : SEND_OK;
  if (ct->has_key && sodium_memcmp(ct->key, id, SOTTO_PUBKEY_LEN) != 0) return SEND_ASK;
  return SEND_OK;
}

/* A changed key is a decision: said plainly (an event), then refused
 * (nothing sent) unless the call accepts it (SC_SEND_ACCEPT_KEY_CHANGE; the
 * CLI asks on a terminal and calls again with it). 0 to go on. */
static int confirm_change(struct sc_client *c, const char *user, int from_bundle) {
  sc__event(c, SC_EV_KEY_CHANGED, from_bundle ? SC_R_KEY_FROM_BUNDLE : SC_R_KEY_TRUSTED, user, NULL);
  if (c->flags & SC_SEND_ACCEPT_KEY_CHANGE) return 0;
  return sc__fail(c, SC_ERR_KEY_CHANGED_UNCONFIRMED,
                   "nothing was sent to %s because their identity key changed; compare safety numbers, then send "
                   "again with --yes (or run 'sotto verify %s NUMBER')",
                   user, user);
}

/* "rekey/NAME": set when the store was found restored from a copy (conn.c):
 * the next message to NAME starts a fresh session from a bundle. */
static int rekey_pending(struct store *st, const char *user) {
  char rn[64];
  uint8_t *v;
  size_t n;
  int rc;
  snprintf(rn, sizeof rn, "rekey/%s", user);
  rc = store_get(st, rn, &v, &n);
  if (rc == 1) store_free_value(v, n);
  return rc;
}

void client_addresses(struct sotto_addresses *a, const char *me, uint32_t my_device, const char *peer,
                      uint32_t peer_device, int require) {
  memset(a, 0, sizeof *a);
  a->local.kind = a->remote.kind = SOTTO_ADDRESS_NAME;
  a->local.name = me;
  a->local.device_id = my_device;
  a->remote.name = peer;
  a->remote.device_id = peer_device;
  a->require = require;
}

/* Whether a stored session may carry the next message: it must have a
 * current state that runs SPQR. A session made before SPQR was the default
 * (libsotto before issue 13: PQXDH without SPQR) is not used for sending; the
 * next message starts a fresh PQXDH + SPQR session from a bundle instead
 * (docs/client.md, "Sessions without SPQR"). */
static int session_sendable(const struct sotto_session *s) {
  return sotto_session_has_state(s) && sotto_session_has_spqr(s);
}

int deliver_pairwise(struct sc_client *c, struct conn *k, const char *user, const struct content *ct) {
  struct sotto_session *s = NULL;
  struct sotto_bundle *b = NULL;
  struct contact who;
  struct sotto_addresses ad;
  struct rec_wr pt;
  uint8_t *out = NULL, id[SOTTO_PUBKEY_LEN], now_id[SOTTO_PUBKEY_LEN];
  char rn[64];
  size_t out_len = 0, cap = 0;
  int rc, type = 0, need_bundle, ret = SC_ERR_INTERNAL, decision;

  rec_wr_init(&pt, SC_MAX_TEXT + 8192);
  if (content_encode(&pt, ct)) {
    ret = sc__fail(c, SC_ERR_TOO_LARGE, "the message is too large (at most %d bytes of text)", SC_MAX_TEXT);
    goto out;
  }
  /* First look (no lock held): which key would this go to, and may it? */
  if ((rc = contact_load(c->st, user, &who)) < 0 || (rc = session_load(c->st, user, &s)) < 0 ||
      (rc = rekey_pending(c->st, user)) < 0) {
    ret = sc__store_error(c, rc);
    goto out;
  }
  need_bundle = !session_sendable(s) || rc == 1;
  if (need_bundle) {
    /* A new session: a bundle from the server, checked against what we knew. */
    if (!(b = malloc(sizeof *b))) {
      ret = sc__fail(c, SC_ERR_NOMEM, "out of memory");
      goto out;
    }
    if ((ret = conn_fetch_bundle(c, k, user, b))) goto out;
    memcpy(id, b->identity_key, sizeof id);
  } else if (sotto_session_remote_identity(s, id) != 0) {
    ret = sc__fail(c, SC_ERR_INTERNAL, "the session with %s has no identity key", user);
    goto out;
  }
  decision = send_decision(&who, id);
  if ((c->flags & DELIVER_CONTROL) && decision != SEND_OK) {
    ret = sc__fail(c, decision == SEND_BLOCKED ? SC_ERR_IDENTITY_CHANGED : SC_ERR_KEY_CHANGED_UNCONFIRMED,
                   "%s's identity key changed: nothing is sent to it until you confirm it", user);
    goto out;
  }
  if (decision == SEND_BLOCKED) {
    if (need_bundle && client_identity_check(&who, id) != IDENTITY_TRUSTED && store_begin(c->st) == 0) {
      /* Remember the key the server offers, so safety-number shows its number. */
      rc = contact_load(c->st, user, &who);
      if (rc >= 0) {
        memcpy(who.pending_key, id, sizeof id);
        who.has_pending = 1;
        rc = contact_save(c->st, &who);
      }
      if (rc < 0 || store_commit(c->st)) store_rollback(c->st);
    }
    ret = identity_blocked(c, &who);
    goto out;
  }
  if (decision == SEND_ASK && (ret = confirm_change(c, user, need_bundle))) goto out;
  /* Their signed device list must verify back to the key we send to, and
   * not be older than one seen before (devices.c, docs/multi-device.md). */
  if ((ret = devices_check_peer(c, k, user, id)) != 0) goto out;
  if (who.has_pending && !(c->flags & DELIVER_CONTROL) && client_identity_check(&who, id) == IDENTITY_TRUSTED)
    sc__event(c, SC_EV_KEY_HELD_WARNING, SC_R_NONE, user, NULL);

  cap = SOTTO_SESSION_ENCRYPTED_MAX(pt.len);
  if (!(out = malloc(cap))) {
    ret = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  /* Then the decision again inside the transaction, on fresh records: a
   * block or a key change that happened meanwhile wins, and only this
   * transaction's contact record is written back. The ratchet step is
   * committed before the bytes leave: a crash after the commit loses at
   * most this message, never reuses a message key. */
  if ((rc = store_begin(c->st)) != 0) {
    ret = sc__store_error(c, rc);
    goto out;
  }
  sotto_session_free(s);
  s = NULL;
  if ((rc = contact_load(c->st, user, &who)) < 0 || (rc = session_load(c->st, user, &s)) < 0) {
    store_rollback(c->st);
    ret = sc__store_error(c, rc);
    goto out;
  }
  if (!need_bundle && (!session_sendable(s) || sotto_session_remote_identity(s, now_id) != 0 ||
                       sodium_memcmp(now_id, id, sizeof id) != 0)) {
    store_rollback(c->st);
    ret = sc__fail(c, SC_ERR_CONFLICT, "the session with %s changed while sending (another sotto ran); send again", user);
    goto out;
  }
  rc = send_decision(&who, id);
  if (rc == SEND_BLOCKED || (rc == SEND_ASK && decision != SEND_ASK)) {
    if (c->flags & DELIVER_CONTROL) {
      store_rollback(c->st);
      ret = sc__fail(c, SC_ERR_KEY_CHANGED_UNCONFIRMED, "%s's identity key changed while sending", user);
      goto out;
    }
    store_rollback(c->st);
    ret = rc == SEND_BLOCKED ? identity_blocked(c, &who)
                             : sc__fail(c, SC_ERR_IDENTITY_CHANGED, "%s's identity key changed while sending; send again",
                                         user);
    goto out;
  }
  if (need_bundle) {
    rc = sotto_session_init_from_bundle(s, &c->acct->id, b);
    if (rc == SOTTO_ERR_DOWNGRADE || rc == SOTTO_ERR_AUTH || rc == SOTTO_ERR_INVALID_KEY) {
      store_rollback(c->st);
      ret = sc__fail(c, SC_ERR_BAD_BUNDLE,
                      "the server handed out keys for %s that fail their signature or lack the post-quantum "
                      "key (%s): nothing was sent; the server may be tampering",
                      user, sotto_strerror(rc));
      goto out;
    } else if (rc) {
      store_rollback(c->st);
      ret = sc__fail(c, SC_ERR_INTERNAL, "cannot start a session with %s: %s", user, sotto_strerror(rc));
      goto out;
    }
  }
  client_addresses(&ad, c->acct->username, c->acct->device_id, user, CONN_PEER_DEVICE, 0);
#ifdef SOTTO_TEST_HOOKS
  /* test_identity.sh: a malicious client (mallory) that names itself as
   * someone else in its messages' addresses. */
  if (getenv("SOTTO_TEST_ADDRESS_AS") && *getenv("SOTTO_TEST_ADDRESS_AS"))
    ad.local.name = getenv("SOTTO_TEST_ADDRESS_AS");
#endif
  if ((rc = sotto_session_encrypt_addressed(s, &ad, out, cap, &out_len, &type, pt.p, pt.len)) != 0) {
    store_rollback(c->st);
    ret = sc__fail(c, SC_ERR_INTERNAL, "cannot encrypt for %s: %s", user, sotto_strerror(rc));
    goto out;
  }
  /* The user sent to this key (asked if it changed): it is now the
   * contact's key, and the one the next send compares with. */
  if (!who.has_key || sodium_memcmp(who.key, id, sizeof id) != 0) {
    if (who.has_key) who.key_changes++;
    memcpy(who.key, id, sizeof id);
    who.has_key = 1;
  }
  if (who.has_pending && sodium_memcmp(who.pending_key, id, sizeof id) == 0) who.has_pending = 0;
  memcpy(who.sent_key, id, sizeof id);
  who.has_sent = 1;
  snprintf(rn, sizeof rn, "rekey/%s", user);
  if ((rc = session_save(c->st, user, s)) || (rc = contact_save(c->st, &who)) ||
      (need_bundle && (rc = store_del(c->st, rn))) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    ret = sc__store_error(c, rc);
    goto out;
  }
#ifdef SOTTO_TEST_HOOKS
  /* test_heal.sh: a text whose MAC does not verify at the recipient (a
   * broken session, simulated). */
  {
    const char *corrupt = getenv("SOTTO_TEST_CORRUPT_SEND");
    if (ct->kind == CONTENT_TEXT && corrupt && *corrupt && out_len) out[out_len - 1] ^= 0x01;
  }
#endif
  ret = deliver_raw(c, k, user, type, out, out_len);
out:
  if (out) {
    sodium_memzero(out, cap);
    free(out);
  }
  free(b);
  sotto_session_free(s);
  rec_wr_free(&pt);
  return ret;
}

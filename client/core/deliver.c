/* SPDX-License-Identifier: Apache-2.0 */
/* deliver.c: contents out over pairwise sessions (messaging.h). */
#include <sodium.h>
#include <sotto/devlist.h>
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "attach.h"
#include "record.h"
#include "contact.h"
#include "conn.h"
#include "devices.h"
#include "messaging.h"
#include "net.h"

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
  {
    int tries = 0;
    do
      rc = sotto_net_send(k->net, user, CONN_PEER_DEVICE, (uint8_t)type, body, len, &c->sent_id, &c->sent_ts);
    while (conn_kt_pending_wait(rc, &tries));
  }
  if (rc == 0) return 0;
  snprintf(what, sizeof what, "sending to %s", user);
  return conn_error(c, k, rc, what, user);
}

/* After ERR(30): user's current list, from the ERR itself when it carried
 * one (list, len: one round trip), else fetched with DEVLIST_GET; either
 * way through the same check (signature chain to key, rollback, KT) and
 * recorded. 0 or the recorded SC_ERR_*. */
static int mismatch_list(struct sc_client *c, struct conn *k, const char *user, const uint8_t key[SOTTO_PUBKEY_LEN],
                         const uint8_t *list, size_t len) {
  devices_recheck(c, user);
  if (len == 0) return devices_check_peer(c, k, user, key);
  c->fan_lists++;
  return devices_check_peer_list(c, k, user, key, list, len);
}

/* A group message (the same SenderKeyMessage for every device) to every
 * device of user's verified list (one SEND_MULTI, retried once after
 * ERR(30) with the list it carried, or fetched again); a contact without a recorded list
 * of their pinned key: device 1 (deliver_raw). */
int deliver_raw_all(struct sc_client *c, struct conn *k, const char *user, int type, const uint8_t *body, size_t len) {
  struct sotto_devlist *l = calloc(1, sizeof *l);
  struct sotto_srv_send_multi *m = calloc(1, sizeof *m);
  uint8_t *mlist = malloc(SOTTO_SRV_MAX_DEVLIST);
  size_t mlist_len = 0;
  struct contact who;
  uint64_t ids[SOTTO_SRV_MAX_DEVICES];
  char what[96];
  unsigned i;
  int rc, attempt, ret = 0;
  if (!l || !m || !mlist) {
    ret = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = contact_load(c->st, user, &who)) < 0 || (rc = devices_list_of(c, user, l)) < 0) {
    ret = sc__store_error(c, rc);
    goto out;
  }
  if (rc == 0 || !who.has_key || sodium_memcmp(l->account_key, who.key, SOTTO_PUBKEY_LEN) != 0 || l->n <= 1) {
    ret = deliver_raw(c, k, user, type, body, len);
    goto out;
  }
  for (attempt = 0;; attempt++) {
    memset(m, 0, sizeof *m);
    m->username.p = (const uint8_t *)user;
    m->username.len = strlen(user);
    for (i = 0; i < l->n && i < SOTTO_SRV_MAX_DEVICES; i++) {
      m->e[i].device_id = l->dev[i].device_id;
      m->e[i].type = (uint8_t)type;
      m->e[i].body = body;
      m->e[i].body_len = len;
    }
    m->n = (uint8_t)i;
    c->sent_id = c->sent_ts = 0;
    {
      int tries = 0;
      do
        rc = sotto_net_send_multi_list(k->net, m, ids, &c->sent_ts, mlist, SOTTO_SRV_MAX_DEVLIST, &mlist_len);
      while (conn_kt_pending_wait(rc, &tries));
    }
    if (rc == 0) {
      c->sent_id = ids[0];
      break;
    }
    if (rc != SOTTO_SRV_E_MISMATCHED_DEVICES) {
      snprintf(what, sizeof what, "sending to %s", user);
      ret = conn_error(c, k, rc, what, user);
      break;
    }
    c->fan_mismatches++;
    if (attempt == 1) {
      ret = sc__fail(c, SC_ERR_DEVICE_MISMATCH,
                     "the server refused the devices of %s twice, even after their signed device list was fetched "
                     "again: nothing was sent",
                     user);
      break;
    }
    if ((ret = mismatch_list(c, k, user, who.key, mlist, mlist_len)) != 0) break;
    if ((rc = devices_list_of(c, user, l)) < 0) {
      ret = sc__store_error(c, rc);
      break;
    }
    if (rc == 0) {
      ret = deliver_raw(c, k, user, type, body, len);
      break;
    }
  }
out:
  free(l);
  free(m);
  free(mlist);
  return ret;
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


/* ---- fan-out to the other devices of an account (docs/multi-device.md) ----
 *
 * Device 1 of a contact is the session deliver_pairwise always had (its
 * identity key is the account key, with every trust rule of before). Every
 * other device of the contact's verified signed list gets its own session
 * ("dsession/NAME/D"), started from that device's bundle, whose identity key
 * must be the device key its account signed into the list. */

struct fan_dev {
  uint32_t dev;
  uint8_t key[SOTTO_PUBKEY_LEN];
  struct sotto_bundle *b; /* a new session starts from it (NULL: the stored one goes on) */
  uint8_t *ct;            /* the ciphertext once encrypted (NULL before) */
  size_t ct_len, ct_cap;
  int type;
};

struct fanout {
  char user[SC_USER_MAX + 1];
  size_t n;
  struct fan_dev d[SOTTO_DEVLIST_MAX_DEVICES];
};

void fanout_clear(struct fanout *f) {
  size_t i;
  for (i = 0; i < f->n; i++) {
    free(f->d[i].b);
    if (f->d[i].ct) {
      sodium_memzero(f->d[i].ct, f->d[i].ct_cap);
      free(f->d[i].ct);
    }
  }
  memset(f, 0, sizeof *f);
}

struct fanout *fanout_new(void) { return calloc(1, sizeof(struct fanout)); }
void fanout_free(struct fanout *f) {
  if (!f) return;
  fanout_clear(f);
  free(f);
}
size_t fanout_count(const struct fanout *f) { return f->n; }

static long fan_find(const struct fanout *f, uint32_t dev) {
  size_t i;
  for (i = 0; i < f->n; i++)
    if (f->d[i].dev == dev) return (long)i;
  return -1;
}

static void fan_drop(struct fanout *f, size_t i) {
  free(f->d[i].b);
  if (f->d[i].ct) {
    sodium_memzero(f->d[i].ct, f->d[i].ct_cap);
    free(f->d[i].ct);
  }
  memmove(&f->d[i], &f->d[i + 1], (f->n - i - 1) * sizeof f->d[0]);
  f->n--;
  memset(&f->d[f->n], 0, sizeof f->d[0]);
}

/* Sets the devices of f to those of list l except device `skip`, keeping
 * what was prepared for a device whose listed key is unchanged. */
void fanout_targets(struct fanout *f, const char *user, const struct sotto_devlist *l, uint32_t skip) {
  size_t i;
  unsigned j;
  snprintf(f->user, sizeof f->user, "%s", user);
  for (i = 0; i < f->n;) {
    int k = l ? sotto_devlist_find(l, f->d[i].dev) : -1;
    if (k < 0 || f->d[i].dev == skip ||
        sodium_memcmp(l->dev[k].device_key, f->d[i].key, SOTTO_PUBKEY_LEN) != 0)
      fan_drop(f, i);
    else
      i++;
  }
  for (j = 0; l && j < l->n; j++) {
    const struct sotto_devlist_entry *e = &l->dev[j];
    if (e->device_id == skip || fan_find(f, e->device_id) >= 0 || f->n >= SOTTO_DEVLIST_MAX_DEVICES) continue;
    f->d[f->n].dev = e->device_id;
    memcpy(f->d[f->n].key, e->device_key, SOTTO_PUBKEY_LEN);
    f->n++;
  }
  /* in increasing device order, as SEND_MULTI wants them */
  for (i = 1; i < f->n; i++) {
    size_t m = i;
    while (m > 0 && f->d[m - 1].dev > f->d[m].dev) {
      struct fan_dev t = f->d[m - 1];
      f->d[m - 1] = f->d[m];
      f->d[m] = t;
      m--;
    }
  }
}

/* Before the transaction (network, no store writes): every device without
 * a ciphertext yet and without a usable session gets its bundle, whose
 * identity key must be the listed device key. rekey: start fresh sessions. */
static int fanout_prepare(struct sc_client *c, struct conn *k, struct fanout *f, int rekey) {
  size_t i;
  int rc;
  for (i = 0; i < f->n; i++) {
    struct fan_dev *d = &f->d[i];
    struct sotto_session *s = NULL;
    uint8_t now_id[SOTTO_PUBKEY_LEN];
    int usable;
    if (d->ct || d->b) continue;
    if ((rc = session_load_dev(c->st, f->user, d->dev, &s)) < 0) return sc__store_error(c, rc);
    usable = !rekey && session_sendable(s) && sotto_session_remote_identity(s, now_id) == 0 &&
             sodium_memcmp(now_id, d->key, SOTTO_PUBKEY_LEN) == 0;
    sotto_session_free(s);
    if (usable) continue;
    if (!(d->b = malloc(sizeof *d->b))) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
    if ((rc = conn_fetch_bundle_dev(c, k, f->user, d->dev, d->b)) != 0) {
      free(d->b);
      d->b = NULL;
      return rc;
    }
    if (sodium_memcmp(d->b->identity_key, d->key, SOTTO_PUBKEY_LEN) != 0) {
      free(d->b);
      d->b = NULL;
      return sc__fail(c, SC_ERR_DEVICE_KEY,
                      "the server's keys for %s's device %u are not the device key their account signed into its "
                      "device list: nothing was sent (the server may be substituting that device)",
                      f->user, d->dev);
    }
  }
  return 0;
}

/* Inside the caller's transaction: encrypts pt for every device of f that
 * has no ciphertext yet and saves its session. 0 or an SC_ERR_* (the
 * caller rolls back). */
int fanout_encrypt(struct sc_client *c, struct fanout *f, const uint8_t *pt, size_t pt_len) {
  size_t i;
  int rc;
  for (i = 0; i < f->n; i++) {
    struct fan_dev *d = &f->d[i];
    struct sotto_session *s = NULL;
    struct sotto_addresses ad;
    uint8_t now_id[SOTTO_PUBKEY_LEN];
    if (d->ct) continue;
    if ((rc = session_load_dev(c->st, f->user, d->dev, &s)) < 0) return sc__store_error(c, rc);
    if (d->b) {
      rc = sotto_session_init_from_bundle(s, &c->acct->id, d->b);
      if (rc) {
        sotto_session_free(s);
        return sc__fail(c, SC_ERR_BAD_BUNDLE,
                        "the server handed out keys for %s's device %u that fail their signature (%s): nothing "
                        "was sent",
                        f->user, d->dev, sotto_strerror(rc));
      }
    } else if (!session_sendable(s) || sotto_session_remote_identity(s, now_id) != 0 ||
               sodium_memcmp(now_id, d->key, SOTTO_PUBKEY_LEN) != 0) {
      sotto_session_free(s);
      return sc__fail(c, SC_ERR_CONFLICT,
                      "the session with %s's device %u changed while sending (another sotto ran); send again",
                      f->user, d->dev);
    }
    d->ct_cap = SOTTO_SESSION_ENCRYPTED_MAX(pt_len);
    if (!(d->ct = malloc(d->ct_cap))) {
      sotto_session_free(s);
      return sc__fail(c, SC_ERR_NOMEM, "out of memory");
    }
    client_addresses(&ad, c->acct->username, c->acct->device_id, f->user, d->dev, 0);
    rc = sotto_session_encrypt_addressed(s, &ad, d->ct, d->ct_cap, &d->ct_len, &d->type, pt, pt_len);
    if (rc == 0 && (rc = session_save_dev(c->st, f->user, d->dev, s)) != 0) {
      sotto_session_free(s);
      return sc__store_error(c, rc);
    }
    sotto_session_free(s);
    if (rc) return sc__fail(c, SC_ERR_INTERNAL, "cannot encrypt for %s's device %u: %s", f->user, d->dev,
                            sotto_strerror(rc));
    free(d->b);
    d->b = NULL;
  }
  return 0;
}

/* One SEND_MULTI: device 1's ciphertext (type1, ct1) and those of f.
 * c->sent_id / sent_ts get device 1's envelope. The server's code or a
 * SOTTO_NET_E_* (not recorded); on ERR(30) the list it carried in list
 * (SOTTO_SRV_MAX_DEVLIST bytes; *list_len 0 if none). */
static int fanout_send(struct sc_client *c, struct conn *k, const struct fanout *f, int type1, const uint8_t *ct1,
                       size_t len1, uint8_t *list, size_t *list_len) {
  struct sotto_srv_send_multi *m = calloc(1, sizeof *m);
  uint64_t ids[SOTTO_SRV_MAX_DEVICES];
  size_t i;
  int rc;
  if (!m) return SOTTO_ERR_NOMEM;
  m->username.p = (const uint8_t *)f->user;
  m->username.len = strlen(f->user);
  m->n = 0;
  m->e[m->n].device_id = 1;
  m->e[m->n].type = (uint8_t)type1;
  m->e[m->n].body = ct1;
  m->e[m->n].body_len = len1;
  m->n++;
  for (i = 0; i < f->n && m->n < SOTTO_SRV_MAX_DEVICES; i++, m->n++) {
    m->e[m->n].device_id = f->d[i].dev;
    m->e[m->n].type = (uint8_t)f->d[i].type;
    m->e[m->n].body = f->d[i].ct;
    m->e[m->n].body_len = f->d[i].ct_len;
  }
  c->sent_id = c->sent_ts = 0;
  {
    int tries = 0;
    do
      rc = sotto_net_send_multi_list(k->net, m, ids, &c->sent_ts, list, SOTTO_SRV_MAX_DEVLIST, list_len);
    while (conn_kt_pending_wait(rc, &tries));
  }
  if (rc == 0) c->sent_id = ids[0];
  free(m);
  return rc;
}

/* The peer's verified list under account key id: which devices besides 1
 * a message to user goes to. 0, or SC_ERR_DEVICE_KEY when the list's
 * device 1 is not the key the session goes to. */
static int fanout_of_peer(struct sc_client *c, struct fanout *f, const char *user, const uint8_t id[SOTTO_PUBKEY_LEN]) {
  struct sotto_devlist *l = calloc(1, sizeof *l);
  int rc, j;
  if (!l) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  if ((rc = devices_list_of(c, user, l)) < 0) {
    free(l);
    return sc__store_error(c, rc);
  }
  /* No list (an account of before lists), or one under another account
   * key (that key's decision is the identity rules'): device 1 alone. */
  if (rc == 0 || sodium_memcmp(l->account_key, id, SOTTO_PUBKEY_LEN) != 0) {
    fanout_targets(f, user, NULL, 1);
    free(l);
    return 0;
  }
  j = sotto_devlist_find(l, 1);
  if (j < 0 || sodium_memcmp(l->dev[j].device_key, id, SOTTO_PUBKEY_LEN) != 0) {
    free(l);
    return sc__fail(c, SC_ERR_DEVICE_KEY, "%s's signed device list does not name their account key as device 1: "
                    "nothing was sent", user);
  }
  fanout_targets(f, user, l, 1);
  free(l);
  return 0;
}

static int send_transcript(struct sc_client *c, struct conn *k, const char *user, const struct content *ct);

/* A 1:1 file's pointer: its blob waits for one fetch per device this send
 * reaches (device 1 and f's, as one SEND_MULTI carries them) and per other
 * device of ours (the transcript, unless this is a control message). */
static int attach_devices(struct sc_client *c, struct conn *k, const struct content *ct, const struct fanout *f) {
  struct sotto_devlist *l;
  unsigned n = 1 + (unsigned)f->n, i;
  if (ct->kind != CONTENT_ATTACHMENT || c->att_fetches == 0) return 0;
  if (n > SOTTO_SRV_MAX_DEVICES) n = SOTTO_SRV_MAX_DEVICES;
  if (!(c->flags & DELIVER_CONTROL) && (l = calloc(1, sizeof *l)) != NULL) {
    if (devices_list_of(c, c->acct->username, l) == 1)
      for (i = 0; i < l->n; i++)
        if (l->dev[i].device_id != c->acct->device_id) n++;
    free(l);
  }
  return attach_fanout_final(c, k, ct, n);
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
  int rc, type = 0, need_bundle, ret = SC_ERR_INTERNAL, decision, rekey, attempt;
  struct fanout *fan = fanout_new();
  uint8_t *mlist = malloc(SOTTO_SRV_MAX_DEVLIST); /* the list an ERR(30) carries */
  size_t mlist_len = 0;

  rec_wr_init(&pt, SC_MAX_TEXT + 8192);
  if (!fan || !mlist) {
    ret = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
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
  rekey = rc == 1;
  need_bundle = !session_sendable(s) || rekey;
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
  /* Every other device of that list: its bundle where a session is needed
   * (checked against its listed key) before anything is written. */
  if ((ret = fanout_of_peer(c, fan, user, id)) != 0 || (ret = fanout_prepare(c, k, fan, rekey)) != 0) goto out;
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
  if ((ret = fanout_encrypt(c, fan, pt.p, pt.len)) != 0) {
    store_rollback(c->st);
    goto out;
  }
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
  if (fan->n == 0) {
    if ((ret = attach_devices(c, k, ct, fan)) == 0) ret = deliver_raw(c, k, user, type, out, out_len);
  } else {
    /* One SEND_MULTI to every listed device; a server that holds another
     * set (ERR 30) makes us fetch and verify the list again and send once
     * more: the ciphertexts of devices still listed are reused (the send
     * was all or nothing), new devices get theirs. */
    for (attempt = 0;; attempt++) {
      char what[96];
      /* The fan-out is final for this attempt (all or nothing): a file's
       * blob is told how many devices fetch it before any of them can. */
      if ((ret = attach_devices(c, k, ct, fan)) != 0) break;
      rc = fanout_send(c, k, fan, type, out, out_len, mlist, &mlist_len);
      if (rc == 0) {
        ret = 0;
        break;
      }
      if (rc != SOTTO_SRV_E_MISMATCHED_DEVICES) {
        snprintf(what, sizeof what, "sending to %s", user);
        ret = conn_error(c, k, rc, what, user);
        break;
      }
      c->fan_mismatches++;
      if (attempt == 1) {
        ret = sc__fail(c, SC_ERR_DEVICE_MISMATCH,
                       "the server refused the devices of %s twice, even after their signed device list was "
                       "fetched again: nothing was sent",
                       user);
        break;
      }
      if ((ret = mismatch_list(c, k, user, id, mlist, mlist_len)) != 0 || (ret = fanout_of_peer(c, fan, user, id)) != 0 ||
          (ret = fanout_prepare(c, k, fan, 0)) != 0)
        break;
      if ((rc = store_begin(c->st)) != 0) {
        ret = sc__store_error(c, rc);
        break;
      }
      if ((ret = fanout_encrypt(c, fan, pt.p, pt.len)) != 0 || (rc = store_commit(c->st)) != 0) {
        store_rollback(c->st);
        if (!ret) ret = sc__store_error(c, rc);
        break;
      }
    }
  }
  if (ret == 0 && !(c->flags & DELIVER_CONTROL)) send_transcript(c, k, user, ct);
out:
  if (out) {
    sodium_memzero(out, cap);
    free(out);
  }
  free(mlist);
  fanout_free(fan);
  free(b);
  sotto_session_free(s);
  rec_wr_free(&pt);
  return ret;
}

/* ---- to our own other devices ----------------------------------------------------- */

/* Sends content ct pairwise to each of our own other listed devices (none
 * listed: nothing to do). 0 or an SC_ERR_* (c->errdetail says why when it
 * is not SC_ERR_NOMEM / SC_ERR_TOO_LARGE). c->sent_id/sent_ts are kept. */
static int send_own(struct sc_client *c, struct conn *k, const struct content *ct) {
  struct sotto_devlist *l = NULL;
  struct fanout *f = NULL;
  struct rec_wr pt;
  char me[SC_USER_MAX + 1];
  size_t i;
  int rc, ret = 0;
  uint64_t keep_id = c->sent_id, keep_ts = c->sent_ts;
  snprintf(me, sizeof me, "%s", c->acct->username);
  memset(&pt, 0, sizeof pt);
  if (!(l = calloc(1, sizeof *l)) || !(f = fanout_new())) {
    ret = SC_ERR_NOMEM;
    goto out;
  }
  if ((rc = devices_list_of(c, me, l)) <= 0) goto out; /* no list of ours: one device */
  fanout_targets(f, me, l, c->acct->device_id);
  if (f->n == 0) goto out;
  rec_wr_init(&pt, SC_MAX_TEXT + 16384);
  if (content_encode(&pt, ct)) {
    ret = SC_ERR_TOO_LARGE;
    goto out;
  }
  if ((ret = fanout_prepare(c, k, f, 0)) != 0) goto out;
  if ((rc = store_begin(c->st)) != 0) {
    ret = sc__store_error(c, rc);
    goto out;
  }
  if ((ret = fanout_encrypt(c, f, pt.p, pt.len)) != 0 || (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    if (!ret) ret = sc__store_error(c, rc);
    goto out;
  }
  /* Our own account's envelopes go one by one (SEND_MULTI to our own
   * account would have to include this device). */
  for (i = 0; i < f->n; i++) {
    uint64_t sid = 0, sts = 0;
    rc = sotto_net_send(k->net, me, f->d[i].dev, (uint8_t)f->d[i].type, f->d[i].ct, f->d[i].ct_len, &sid, &sts);
    if (rc && !ret) ret = conn_error(c, k, rc, "sending to your other devices", me);
  }
out:
  c->sent_id = keep_id;
  c->sent_ts = keep_ts;
  rec_wr_free(&pt);
  fanout_free(f);
  free(l);
  return ret;
}

/* Says (an event) that our other devices missed something; what: what. */
static void own_missed(struct sc_client *c, int ret, const char *what) {
  char why[sizeof c->errdetail + 160];
  struct sc_event ev;
  char me[SC_USER_MAX + 1];
  snprintf(me, sizeof me, "%s", c->acct->username);
  snprintf(why, sizeof why, "your other devices did not get %s: %s", what,
           ret == SC_ERR_NOMEM ? "out of memory" : ret == SC_ERR_TOO_LARGE ? "too large" : c->errdetail);
  memset(&ev, 0, sizeof ev);
  ev.kind = SC_EV_DEVICE_LIST;
  ev.peer = me;
  ev.error = ret;
  ev.detail = why;
  ev.timestamp_ms = sc_now_ms();
  sc__emit(c, &ev);
}

int deliver_own(struct sc_client *c, struct conn *k, const struct content *ct, const char *what) {
  int ret = send_own(c, k, ct);
  if (ret) own_missed(c, ret, what);
  return ret;
}

int deliver_raw_own(struct sc_client *c, struct conn *k, int type, const uint8_t *body, size_t len, unsigned *n_sent) {
  struct sotto_devlist *l = calloc(1, sizeof *l);
  char me[SC_USER_MAX + 1];
  uint64_t keep_id = c->sent_id, keep_ts = c->sent_ts;
  unsigned i;
  int rc, ret = 0;
  if (n_sent) *n_sent = 0;
  if (!l) return SC_ERR_NOMEM;
  snprintf(me, sizeof me, "%s", c->acct->username);
  if ((rc = devices_list_of(c, me, l)) < 0) {
    ret = sc__store_error(c, rc);
  } else if (rc == 1) {
    for (i = 0; i < l->n; i++) {
      uint64_t sid = 0, sts = 0;
      if (l->dev[i].device_id == c->acct->device_id) continue;
      rc = sotto_net_send(k->net, me, l->dev[i].device_id, (uint8_t)type, body, len, &sid, &sts);
      if (rc && !ret) ret = conn_error(c, k, rc, "sending to your other devices", me);
      if (!rc && n_sent) (*n_sent)++;
    }
  }
  if (ret) own_missed(c, ret, "your group message");
  c->sent_id = keep_id;
  c->sent_ts = keep_ts;
  free(l);
  return ret;
}

/* ---- sent transcripts ----------------------------------------------------------- */

/* What the user sent (texts, replies, reactions, edits, deletes, timers,
 * files' pointers) goes, after it left, to our own other listed devices as
 * a TRANSCRIPT (content kind 8: the recipient and the content), so every
 * device shows the whole conversation as it is here. A failure here does
 * not undo the send: it is said (an event) and the other devices miss it. */
static int send_transcript(struct sc_client *c, struct conn *k, const char *user, const struct content *ct) {
  struct content tr;
  struct rec_wr inner;
  char what[SC_USER_MAX + 64];
  int ret;
  if (ct->kind != CONTENT_TEXT && ct->kind != CONTENT_ATTACHMENT && !CONTENT_IS_CONVO(ct->kind)) return 0;
  rec_wr_init(&inner, SC_MAX_TEXT + 8192);
  memset(&tr, 0, sizeof tr);
  tr.kind = CONTENT_TRANSCRIPT;
  tr.ts = ct->ts;
  snprintf(tr.to, sizeof tr.to, "%s", user);
  snprintf(what, sizeof what, "%s you sent to %s",
           ct->kind == CONTENT_TEXT || ct->kind == CONTENT_TEXT_EX ? "the text"
           : ct->kind == CONTENT_ATTACHMENT                       ? "the file"
           : ct->kind == CONTENT_REACTION                         ? "the reaction"
           : ct->kind == CONTENT_EDIT                             ? "the edit"
           : ct->kind == CONTENT_DELETE                           ? "the delete"
                                                                  : "the timer",
           user);
  if (content_encode(&inner, ct)) {
    ret = SC_ERR_TOO_LARGE;
    own_missed(c, ret, what);
  } else {
    tr.inner = inner.p;
    tr.inner_len = inner.len;
    ret = deliver_own(c, k, &tr, what);
  }
  rec_wr_free(&inner);
  return ret;
}

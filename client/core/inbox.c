/* SPDX-License-Identifier: Apache-2.0 */
/* inbox.c: what arrives (messaging.h). Every envelope is processed in one
 * store transaction: the session or sender key state, the message and the
 * "seen" mark for its server id are committed together, then the message
 * is printed, then (by the caller) acked. A re-delivered envelope finds its
 * "seen" mark and is only acked; a crash after the commit leaves the
 * message in the unshown list, printed by the next receive. */
#include <sodium.h>
#include <sotto/devlist.h>
#include <sotto/group.h>
#include <sotto/keys.h>
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "attach.h"
#include "record.h"
#include "contact.h"
#include "convo.h"
#include "devices.h"
#include "grp.h"
#include "kt.h"
#include "messaging.h"
#include "outbox.h"

#define MAX_GROUPS_TRIED 256

int inbox_flush_unshown(struct sc_client *c) {
  struct {
    char peer[SC_USER_MAX + 1];
    uint64_t ts;
  } *shown = NULL;
  uint64_t *seqs;
  size_t n, i, n_shown = 0;
  int rc;
  /* SC_OPT_DEFER_SHOWN: they wait (committed, acknowledged) in the list. */
  if (c->defer_shown) return 0;
  if (!(seqs = calloc(MSGLOG_MAX_UNSHOWN, sizeof *seqs))) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  if ((rc = msglog_unshown(c->st, seqs, MSGLOG_MAX_UNSHOWN, &n)) != 0) goto out;
  if (!(shown = calloc(n ? n : 1, sizeof *shown))) {
    rc = STORE_E_IO;
    goto out;
  }
  for (i = 0; i < n && !c->defer_shown; i++) {
    struct msg m;
    if ((rc = msglog_get(c->st, seqs[i], &m)) != 0) goto out;
    msglog_emit(c, &m);
    /* A 1:1 text given to the front end was shown: a read receipt is
     * owed (if the user allows them). */
    if (m.dir == MSG_IN && !m.group[0] && !(m.mflags & MSGF_REQUEST)) { /* none to a request */
      snprintf(shown[n_shown].peer, sizeof shown[0].peer, "%s", m.peer);
      shown[n_shown++].ts = m.ts;
    }
    msg_clear(&m);
  }
  /* The sink may defer the rest (a listener that does not keep up): only
   * what it was given is marked shown. */
  n = i;
  /* One write for the whole batch: printed, now mark them shown. */
  if (n && (rc = sc__begin(c)) == 0) {
    for (i = 0; i < n && !rc; i++) rc = msglog_mark_shown(c->st, seqs[i]);
    for (i = 0; i < n_shown && !rc; i++) rc = outbox_shown(c, shown[i].peer, shown[i].ts);
    if (!rc) rc = store_commit(c->st);
    if (rc) store_rollback(c->st);
  }
out:
  free(shown);
  free(seqs);
  return rc ? sc__store_error(c, rc) : 0;
}

/* Logs an event (inside the open transaction); shown by the next
 * inbox_flush_unshown. Strings may be NULL. */
static int log_event(struct sc_client *c, int kind, int reason, const char *peer, const char *group,
                     const char *subject, const char *detail, uint64_t count, uint64_t total) {
  struct msg *m = calloc(1, sizeof *m);
  int rc;
  if (!m) return STORE_E_IO;
  m->dir = MSG_EVENT;
  m->kind = (uint8_t)kind;
  m->reason = (uint8_t)reason;
  snprintf(m->peer, sizeof m->peer, "%s", peer ? peer : "");
  snprintf(m->group, sizeof m->group, "%s", group ? group : "");
  snprintf(m->subject, sizeof m->subject, "%s", subject ? subject : "");
  snprintf(m->detail, sizeof m->detail, "%s", detail ? detail : "");
  m->ts = sc_now_ms();
  m->count = count;
  m->total = total;
  m->text = (char *)"";
  rc = msglog_add(c->st, c->acct, m, 1);
  free(m);
  return rc;
}

static int add_event(struct sc_client *c, int kind, int reason, const char *peer, const char *group) {
  return log_event(c, kind, reason, peer, group, NULL, NULL, 0, 0);
}

static int add_text(struct sc_client *c, const char *peer, const char *group, const struct content *ct, uint64_t sid) {
  struct msg m;
  char *t = malloc(ct->text_len + 1);
  int rc;
  if (!t) return STORE_E_IO;
  memcpy(t, ct->text, ct->text_len);
  t[ct->text_len] = 0;
  memset(&m, 0, sizeof m);
  m.dir = MSG_IN;
  snprintf(m.peer, sizeof m.peer, "%s", peer);
  snprintf(m.group, sizeof m.group, "%s", group ? group : "");
  m.ts = ct->ts;
  m.server_id = sid;
  m.device = c->env_device;
  m.server_ts = c->env_server_ts;
  m.text = t;
  m.text_len = ct->text_len;
  rc = msglog_add(c->st, c->acct, &m, 1);
  free(t);
  return rc;
}

/* A group text one of our other devices sent: logged as ours. */
static int add_own_group_text(struct sc_client *c, const char *group, const struct content *ct, uint64_t sid) {
  struct msg *m = calloc(1, sizeof *m);
  char *t = malloc(ct->text_len + 1);
  int rc;
  if (!m || !t) {
    free(m);
    free(t);
    return STORE_E_IO;
  }
  memcpy(t, ct->text, ct->text_len);
  t[ct->text_len] = 0;
  m->dir = MSG_OUT;
  m->reason = SC_STATE_SENT;
  snprintf(m->group, sizeof m->group, "%s", group);
  m->ts = ct->ts;
  m->server_id = sid;
  m->device = c->env_device;
  m->server_ts = c->env_server_ts;
  m->text = t;
  m->text_len = ct->text_len;
  convo_out_row(c, m, ct); /* a reply, a disappearing text: as on that device */
  rc = msglog_add(c->st, c->acct, m, 1);
  free(t);
  free(m);
  return rc;
}

static int process_skdm(struct sc_client *c, const struct grp *g, const char *sender, const struct content *ct) {
  struct sotto_sender_key *rec;
  int rc;
  if (ct->skdm_len == 0) return 0;
  if ((rc = grp_sk_load(c->st, g, sender, sc__env_device(c), &rec)) < 0) return rc;
  if (sotto_sender_key_process(rec, ct->skdm, ct->skdm_len) == 0) rc = grp_sk_save(c->st, g, sender, sc__env_device(c), rec);
  else rc = add_event(c, SC_EV_UNREADABLE, SC_R_BAD_GROUP_KEY, sender, g->name);
  sotto_sender_key_free(rec);
  return rc;
}

/* GROUP_UPDATE from sender (docs/client.md, "Group membership"). */
static int apply_update(struct sc_client *c, const char *sender, const struct content *ct) {
  const char *me = c->acct->username;
  struct grp *g = calloc(1, sizeof *g), *old = calloc(1, sizeof *old);
  size_t i;
  int rc, any_removed = 0;

  if (!g || !old) {
    rc = STORE_E_IO;
    goto out;
  }
  if ((rc = grp_load(c->st, ct->gid, old)) < 0) goto out;
  if (rc == 0) {
    /* A new group: the sender and we must both be in it. */
    if (!grp_has(ct->members, ct->n_members, sender) || !grp_has(ct->members, ct->n_members, me)) {
      rc = 0;
      goto out;
    }
    memcpy(g->gid, ct->gid, GROUP_ID_LEN);
    if ((rc = grp_unique_name(c->st, grp_name_ok(ct->name) ? ct->name : "group", ct->gid, g->name)) != 0) goto out;
    g->epoch = ct->epoch;
    for (i = 0; i < ct->n_members; i++) grp_list_add(g->members, &g->n, ct->members[i]);
    if ((rc = grp_save(c->st, g)) || (rc = process_skdm(c, g, sender, ct))) goto out;
    {
      struct msg *m = calloc(1, sizeof *m);
      int pending;
      if (!m) {
        rc = STORE_E_IO;
        goto out;
      }
      /* From someone who is not a contact: an invitation to accept (convo.c). */
      if ((pending = convo_group_invited(c, g->gid, sender)) < 0) {
        free(m);
        rc = pending;
        goto out;
      }
      if (pending) m->mflags |= MSGF_REQUEST;
      m->dir = MSG_EVENT;
      m->kind = SC_EV_GROUP_JOINED;
      snprintf(m->peer, sizeof m->peer, "%s", sender);
      snprintf(m->group, sizeof m->group, "%s", g->name);
      m->ts = sc_now_ms();
      m->n_members = g->n;
      memcpy(m->members, g->members, sizeof g->members);
      m->text = (char *)"";
      rc = msglog_add(c->st, c->acct, m, 1);
      free(m);
    }
    goto out;
  }
  /* Only a current member may change the group, and only forwards. */
  if (!grp_has(old->members, old->n, sender)) {
    rc = add_event(c, SC_EV_GROUP_NOT_MEMBER, SC_R_NONE, sender, old->name);
    goto out;
  }
  if (ct->epoch <= old->epoch) {
    rc = process_skdm(c, old, sender, ct);
    goto out;
  }
  if (!grp_has(ct->members, ct->n_members, me)) {
    if ((rc = grp_delete(c->st, old)) == 0) rc = add_event(c, SC_EV_GROUP_LEFT_US, SC_R_NONE, sender, old->name);
    goto out;
  }
  *g = *old;
  g->epoch = ct->epoch;
  g->n = 0;
  for (i = 0; i < ct->n_members; i++) grp_list_add(g->members, &g->n, ct->members[i]);
  for (i = 0; i < old->n; i++) {
    if (grp_has(g->members, g->n, old->members[i])) continue;
    /* Removed: forget their chain, and retire ours so that our next group
     * message goes out under a fresh sender key they never saw. */
    any_removed = 1;
    if ((rc = grp_sk_del(c->st, old, old->members[i]))) goto out;
    if ((rc = log_event(c, SC_EV_GROUP_REMOVED, SC_R_NONE, sender, g->name, old->members[i], NULL, 0, 0))) goto out;
  }
  if (any_removed) {
    if ((rc = grp_sk_del_dev(c->st, g, me, sc__own_device(c)))) goto out;
    g->n_dist = 0;
  }
  for (i = 0; i < g->n; i++) {
    if (grp_has(old->members, old->n, g->members[i])) continue;
    if ((rc = log_event(c, SC_EV_GROUP_ADDED, SC_R_NONE, sender, g->name, g->members[i], NULL, 0, 0))) goto out;
  }
  if ((rc = grp_save(c->st, g)) == 0) rc = process_skdm(c, g, sender, ct);
out:
  free(g);
  free(old);
  return rc;
}

/* GROUP_STATE from another listed device of our own account (inside the
 * open transaction): a group created, changed or left there is the same
 * here, and that device's chain is recorded (docs/multi-device.md). */
static int apply_group_state(struct sc_client *c, const struct content *ct) {
  const char *me = c->acct->username;
  struct grp *g = calloc(1, sizeof *g), *old = calloc(1, sizeof *old);
  size_t i;
  int rc, any_removed = 0;
  if (!g || !old) {
    rc = STORE_E_IO;
    goto out;
  }
  if ((rc = grp_load(c->st, ct->gid, old)) < 0) goto out;
  if (ct->state_flags & GROUP_STATE_LEFT) {
    /* we left it on that device */
    if (rc == 1 && (rc = grp_delete(c->st, old)) == 0)
      rc = log_event(c, SC_EV_GROUP_REMOVED, SC_R_NONE, me, old->name, me, NULL, 0, 0);
    goto out;
  }
  if (!grp_has(ct->members, ct->n_members, me)) {
    rc = add_event(c, SC_EV_UNREADABLE, SC_R_GROUP_FORMAT, me, NULL);
    goto out;
  }
  if (rc == 0) {
    memcpy(g->gid, ct->gid, GROUP_ID_LEN);
    if ((rc = grp_unique_name(c->st, grp_name_ok(ct->name) ? ct->name : "group", ct->gid, g->name)) != 0) goto out;
    g->epoch = ct->epoch;
    for (i = 0; i < ct->n_members; i++) grp_list_add(g->members, &g->n, ct->members[i]);
    if ((rc = grp_save(c->st, g)) || (rc = process_skdm(c, g, me, ct))) goto out;
    {
      struct msg *m = calloc(1, sizeof *m);
      if (!m) {
        rc = STORE_E_IO;
        goto out;
      }
      m->dir = MSG_EVENT;
      m->kind = SC_EV_GROUP_JOINED;
      snprintf(m->peer, sizeof m->peer, "%s", me);
      snprintf(m->subject, sizeof m->subject, "%s", me); /* said as from another device of ours */
      snprintf(m->group, sizeof m->group, "%s", g->name);
      m->ts = sc_now_ms();
      m->device = sc__env_device(c);
      m->n_members = g->n;
      memcpy(m->members, g->members, sizeof g->members);
      m->text = (char *)"";
      rc = msglog_add(c->st, c->acct, m, 1);
      free(m);
    }
    if (!rc && (ct->state_flags & GROUP_STATE_ACCEPTED)) rc = convo_group_accepted(c, g->gid);
    goto out;
  }
  if (ct->epoch <= old->epoch) {
    rc = process_skdm(c, old, me, ct);
    if (!rc && (ct->state_flags & GROUP_STATE_ACCEPTED)) rc = convo_group_accepted(c, old->gid);
    goto out;
  }
  *g = *old;
  g->epoch = ct->epoch;
  g->n = 0;
  for (i = 0; i < ct->n_members; i++) grp_list_add(g->members, &g->n, ct->members[i]);
  for (i = 0; i < old->n; i++) {
    if (grp_has(g->members, g->n, old->members[i])) continue;
    any_removed = 1;
    if ((rc = grp_sk_del(c->st, old, old->members[i]))) goto out;
    grp_list_del(g->dist, &g->n_dist, old->members[i]);
    if ((rc = log_event(c, SC_EV_GROUP_REMOVED, SC_R_NONE, me, g->name, old->members[i], NULL, 0, 0))) goto out;
  }
  if (any_removed) {
    /* our own chain here goes too: the removed member saw it */
    if ((rc = grp_sk_del_dev(c->st, g, me, sc__own_device(c)))) goto out;
    g->n_dist = 0;
  }
  for (i = 0; i < g->n; i++) {
    if (grp_has(old->members, old->n, g->members[i])) continue;
    if ((rc = log_event(c, SC_EV_GROUP_ADDED, SC_R_NONE, me, g->name, g->members[i], NULL, 0, 0))) goto out;
  }
  if ((rc = grp_save(c->st, g)) == 0) rc = process_skdm(c, g, me, ct);
  if (!rc && (ct->state_flags & GROUP_STATE_ACCEPTED)) rc = convo_group_accepted(c, g->gid);
out:
  free(g);
  free(old);
  return rc;
}

static int apply_sender_key(struct sc_client *c, const char *sender, const struct content *ct) {
  struct grp *g = calloc(1, sizeof *g);
  int rc;
  if (!g) return STORE_E_IO;
  rc = grp_load(c->st, ct->gid, g);
  if (rc == 1 && grp_has(g->members, g->n, sender)) rc = process_skdm(c, g, sender, ct);
  else if (rc >= 0) rc = add_event(c, SC_EV_UNREADABLE, SC_R_FOREIGN_GROUP_KEY, sender, NULL);
  free(g);
  return rc;
}

static int unreadable_count(struct sc_client *c, const char *sender);

/* "held/NAME/SERVERID": a message under a contact's name from an identity
 * key the user has not accepted (docs/client.md, "Identity keys"). */
#define HELD_VERSION 1
#define HELD_NAME_LEN 64

static void held_name(char out[HELD_NAME_LEN], const char *sender, uint64_t sid) {
  snprintf(out, HELD_NAME_LEN, "held/%s/%llu", sender, (unsigned long long)sid);
}

/* Drops an envelope as unreadable (own transaction); a released held
 * message (held set) loses its held record in the same commit. Only the
 * first few per sender are shown (unreadable_count); the rest are summed. */
static int unreadable_ex(struct sc_client *c, const char *sender, uint64_t sid, int reason, const char *detail,
                         int held) {
  char hn[HELD_NAME_LEN];
  int rc, show = unreadable_count(c, sender);
  held_name(hn, sender, sid);
  if ((rc = sc__begin(c))) return rc;
  if ((show && (rc = log_event(c, SC_EV_UNREADABLE, reason, sender, NULL, NULL, detail, 0, 0))) || (rc = msglog_mark_seen(c->st, sid, 0)) ||
      (held && (rc = store_del(c->st, hn))) || (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st)))
    store_rollback(c->st);
  return rc;
}

static int unreadable(struct sc_client *c, const char *sender, uint64_t sid, int reason, const char *detail) {
  return unreadable_ex(c, sender, sid, reason, detail, 0);
}

/* A pairwise message that did not decrypt: the sender is asked to resend
 * it in a fresh session (outbox.h, heal_failed), or past that request's
 * bounds it is dropped as unreadable. */
static int failed(struct sc_client *c, const char *sender, uint64_t sid, int reason, const char *detail,
                  int held) {
  char hn[HELD_NAME_LEN];
  int rc;
  held_name(hn, sender, sid);
  rc = heal_failed(c, sender, sid, reason, detail, held ? hn : NULL);
  if (rc == 1) rc = unreadable_ex(c, sender, sid, reason, detail, held);
  return rc;
}

/* The library's is_trusted_identity, over the contact loaded in the
 * decrypting transaction. */
static int trusted_cb(void *ud, const uint8_t identity[32]) {
  return client_identity_check(ud, identity) == IDENTITY_TRUSTED;
}

/* The groups sender is in (local names), for SC_EV_GROUP_MEMBER_KEY. */
struct member_of {
  const char *user;
  size_t n;
  char names[MAX_GROUPS_TRIED][GROUP_NAME_MAX + 1];
};

static int member_of_cb(void *ud, const struct grp *g) {
  struct member_of *m = ud;
  if (m->n < MAX_GROUPS_TRIED && grp_has(g->members, g->n, m->user))
    snprintf(m->names[m->n++], GROUP_NAME_MAX + 1, "%s", g->name);
  return 0;
}

/* A new identity key under sender's name (inside the open transaction):
 * said in every group they are in, so a group's own history shows that one
 * of its members wrote from an unaccepted key. */
static int member_key_events(struct sc_client *c, const char *sender) {
  struct member_of *m = calloc(1, sizeof *m);
  size_t i;
  int rc;
  if (!m) return STORE_E_IO;
  m->user = sender;
  rc = grp_each(c->st, member_of_cb, m);
  for (i = 0; i < m->n && rc == 0; i++)
    rc = log_event(c, SC_EV_GROUP_MEMBER_KEY, SC_R_NONE, sender, m->names[i], NULL, NULL, 0, 0);
  free(m);
  return rc < 0 ? rc : 0;
}

/* The event that a message is held (its text when it is one). */
static int held_event(struct sc_client *c, const char *sender, int reason, const struct content *ct) {
  struct msg *m = calloc(1, sizeof *m);
  char *t = NULL;
  int rc;
  size_t tl = reason == SC_R_HELD_TEXT ? ct->text_len : 0;
  if (!m || !(t = malloc(tl + 1))) {
    free(m);
    return STORE_E_IO;
  }
  if (tl) memcpy(t, ct->text, tl);
  t[tl] = 0;
  m->dir = MSG_EVENT;
  m->kind = SC_EV_HELD;
  m->reason = (uint8_t)reason;
  snprintf(m->peer, sizeof m->peer, "%s", sender);
  m->ts = sc_now_ms();
  m->text = t;
  m->text_len = tl;
  rc = msglog_add(c->st, c->acct, m, 1);
  sodium_memzero(t, tl + 1);
  free(t);
  free(m);
  return rc;
}

/* Quarantine: the PreKey message is from a key the user has not accepted
 * under this name. It is decrypted once on a scratch session that is
 * thrown away (pre-keys kept, nothing of the contact's session touched) so
 * that only authentic messages are held and the user sees what it says,
 * then stored as it came and reported. Nothing it carries is acted on. */
static int quarantine(struct sc_client *c, uint64_t sid, const char *sender, const struct sotto_addresses *ad,
                      int type, const uint8_t *body, size_t len, int from_held) {
  struct prekey_ctx px;
  struct sotto_prekey_store ps;
  struct sotto_session *tmp = NULL;
  struct content *ct = calloc(1, sizeof *ct);
  struct contact who;
  struct rec_wr w;
  uint8_t idk[SOTTO_PUBKEY_LEN], *pt = malloc(len ? len : 1);
  char hn[HELD_NAME_LEN];
  size_t n = 0;
  int rc, drc, reason, new_key;

  rec_wr_init(&w, SOTTO_SRV_MAX_MESSAGE + 256);
  if (!ct || !pt || sotto_session_new(&tmp)) {
    rc = STORE_E_IO;
    goto out;
  }
  if (type != SOTTO_MSG_PREKEY) {
    rc = failed(c, sender, sid, SC_R_NO_SESSION, NULL, from_held);
    goto out;
  }
  memset(&px, 0, sizeof px);
  px.st = c->st;
  px.keep_keys = 1;
  account_prekey_store(&px, &ps);
  drc = sotto_session_decrypt_addressed(tmp, &c->acct->id, &ps, ad, type, body, len, pt, len, &n, NULL);
  if (drc == SOTTO_ERR_STORE) {
    rc = STORE_E_IO;
    goto out;
  }
  if (drc || sotto_session_remote_identity(tmp, idk)) {
    rc = unreadable_ex(c, sender, sid, SC_R_DECRYPT, sotto_strerror(drc ? drc : SOTTO_ERR_INTERNAL), from_held);
    goto out;
  }
  if ((rc = sc__begin(c))) goto out;
  if ((rc = contact_load(c->st, sender, &who)) < 0) goto fail;
  held_name(hn, sender, sid);
  if (!from_held && who.n_held >= CONTACT_MAX_HELD) {
    if ((rc = log_event(c, SC_EV_HELD_DROPPED, SC_R_NONE, sender, NULL, NULL, NULL, CONTACT_MAX_HELD, 0)) || (rc = msglog_mark_seen(c->st, sid, 0)) ||
        (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st)))
      goto fail;
    goto out;
  }
  rec_put_u8(&w, HELD_VERSION);
  rec_put_u8(&w, (uint8_t)type);
  rec_put_u64(&w, sid);
  rec_put(&w, idk, sizeof idk);
  rec_put_u32(&w, (uint32_t)len);
  rec_put(&w, body, len);
  if (rec_wr_ok(&w)) {
    rc = STORE_E_IO;
    goto fail;
  }
  if (content_decode(ct, pt, n) == 0 && ct->kind == CONTENT_TEXT)
    reason = SC_R_HELD_TEXT;
  else if (ct->kind == CONTENT_GROUP_UPDATE || ct->kind == CONTENT_SENDER_KEY)
    reason = SC_R_HELD_GROUP_CHANGE;
  else
    reason = SC_R_HELD_OTHER; /* a receipt, a retry request, a reset... */
  /* The pending key is what safety-number shows and trust/verify accept. */
  new_key = !from_held && (!who.has_pending || sodium_memcmp(who.pending_key, idk, sizeof idk) != 0);
  memcpy(who.pending_key, idk, sizeof idk);
  who.has_pending = 1;
  if (!from_held) who.n_held++;
  if ((rc = store_put(c->st, hn, w.p, w.len)) || (rc = contact_save(c->st, &who)) ||
      (!from_held && (rc = held_event(c, sender, reason, ct))) || (new_key && (rc = member_key_events(c, sender))) ||
      (rc = msglog_mark_seen(c->st, sid, 0)) || (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st)))
    goto fail;
  goto out;
fail:
  store_rollback(c->st);
out:
  if (pt) {
    sodium_memzero(pt, len ? len : 1);
    free(pt);
  }
  if (ct) {
    sodium_memzero(ct, sizeof *ct);
    free(ct);
  }
  rec_wr_free(&w);
  sotto_session_free(tmp);
  return rc;
}

/* Key transparency, inbound first contact: a PreKey message from someone
 * whose key we do not know yet is accepted only if the server's log holds
 * the key (and registration id) it carries. Checked on a scratch
 * decryption that consumes no pre-key, before anything is written. 0: go
 * on (known contact, no KT on this server, or the key is logged); 1: hold
 * it (an SC_EV_KT_ALERT says why); < 0 a store failure. */
static int kt_inbound(struct sc_client *c, const char *sender, const struct sotto_addresses *ad, int type,
                      const uint8_t *body, size_t len) {
  struct prekey_ctx px;
  struct sotto_prekey_store ps;
  struct sotto_session *tmp = NULL;
  struct contact who;
  uint8_t idk[SOTTO_PUBKEY_LEN], blob[CONN_IDENTITY_BLOB_LEN], *pt;
  char detail[sizeof c->errdetail + 160], saved[sizeof c->errdetail];
  uint32_t rid = 0;
  size_t n = 0;
  int rc, saved_err = c->err;
  if (type != SOTTO_MSG_PREKEY || !c->connected || !c->k.net) return 0;
  if ((rc = contact_load(c->st, sender, &who)) < 0) return rc;
  if (who.has_key) return 0; /* not a first contact: the identity rules apply */
  if (!(pt = malloc(len ? len : 1))) return STORE_E_IO;
  if (sotto_session_new(&tmp)) {
    free(pt);
    return STORE_E_IO;
  }
  memset(&px, 0, sizeof px);
  px.st = c->st;
  px.keep_keys = 1;
  account_prekey_store(&px, &ps);
  rc = sotto_session_decrypt_addressed(tmp, &c->acct->id, &ps, ad, type, body, len, pt, len, &n, NULL);
  sodium_memzero(pt, len ? len : 1);
  free(pt);
  if (rc == 0 && (sotto_session_remote_identity(tmp, idk) != 0 || sotto_session_remote_registration_id(tmp, &rid) != 0))
    rc = SOTTO_ERR_INTERNAL;
  sotto_session_free(tmp);
  if (rc == SOTTO_ERR_STORE) return STORE_E_IO;
  if (rc != 0) return 0; /* the normal path reports what does not decrypt */
  sotto_pubkey_serialize(blob, idk);
  blob[33] = (uint8_t)(rid >> 24);
  blob[34] = (uint8_t)(rid >> 16);
  blob[35] = (uint8_t)(rid >> 8);
  blob[36] = (uint8_t)rid;
  memcpy(saved, c->errdetail, sizeof saved);
  rc = kt_check_contact(c, &c->k, sender, blob, sizeof blob);
  if (rc == 0) return 0;
  if (rc == SC_ERR_KT_NOT_LOGGED)
    snprintf(detail, sizeof detail,
             "the server delivered a first message from %s under a key that is not in its public log: it is held "
             "as from an unverified key (compare safety numbers before 'sotto trust %s')",
             sender, sender);
  else
    snprintf(detail, sizeof detail,
             "a first message from %s could not be checked against the server's public key log (%s): it is held "
             "as from an unverified key",
             sender, c->errdetail);
  c->err = saved_err;
  memcpy(c->errdetail, saved, sizeof saved);
  if (rc == SC_ERR_STORE || rc == SC_ERR_STORE_CORRUPT || rc == SC_ERR_BUSY || rc == SC_ERR_NOMEM) return STORE_E_IO;
  sc__event(c, SC_EV_KT_ALERT, SC_R_NONE, sender, detail);
  return 1;
}

/* What a decrypted pairwise content from sender does (inside the open
 * transaction). */
static int apply_content(struct sc_client *c, const char *sender, const struct content *ct, uint64_t sid, int consent) {
  int rc = 0, dup = 0;
  switch (ct->kind) {
    case CONTENT_TEXT:
      /* A resent copy of a text already shown is not shown again (its
       * receipt is owed again all the same). A request's text: convo.c. */
      if (consent == SC_CONSENT_REQUEST) rc = convo_apply(c, sender, NULL, ct, sid, consent);
      else if ((rc = outbox_arrived(c, sender, ct, &dup)) == 0 && !dup) rc = add_text(c, sender, NULL, ct, sid);
      break;
    case CONTENT_TIMER:
    case CONTENT_TEXT_EX:
    case CONTENT_REACTION:
    case CONTENT_EDIT:
    case CONTENT_DELETE:
      rc = convo_apply(c, sender, NULL, ct, sid, consent);
      break;
    case CONTENT_RECEIPT:
      rc = outbox_receipt(c, sender, ct);
      break;
    case CONTENT_RETRY:
      rc = outbox_retry(c, sender, ct);
      break;
    case CONTENT_SESSION_RESET:
      rc = add_event(c, SC_EV_SESSION_RESET, SC_R_NONE, sender, NULL);
      break;
    case CONTENT_GROUP_UPDATE:
      rc = apply_update(c, sender, ct);
      break;
    case CONTENT_SENDER_KEY:
      rc = apply_sender_key(c, sender, ct);
      break;
    case CONTENT_ATTACHMENT:
      rc = attach_arrived(c, sender, ct, sid);
      break;
    default:
      rc = add_event(c, SC_EV_UNREADABLE, SC_R_UNEXPECTED_KIND, sender, NULL);
  }
  return rc;
}

/* from_held: a held message being released (its held record goes in the
 * same commit that applies it). */
/* ad: the addresses the message must carry (NULL for a held message: it was
 * checked against them when it was held). */
static int pairwise(struct sc_client *c, uint64_t sid, const char *sender, const struct sotto_addresses *ad,
                    int type, const uint8_t *body, size_t len, int from_held) {
  struct prekey_ctx px;
  struct sotto_prekey_store ps;
  struct sotto_session *s = NULL;
  struct contact who;
  struct content *ct = calloc(1, sizeof *ct);
  uint8_t idk[SOTTO_PUBKEY_LEN], *pt = malloc(len ? len : 1);
  char hn[HELD_NAME_LEN];
  size_t n = 0, skipped = 0;
  int rc, drc, stranger, consent;

  if (!ct || !pt) {
    rc = STORE_E_IO;
    goto out;
  }
  held_name(hn, sender, sid);
  if (!from_held && (rc = kt_inbound(c, sender, ad, type, body, len)) != 0) {
    if (rc == 1) rc = quarantine(c, sid, sender, ad, type, body, len, from_held);
    goto out;
  }
  if ((rc = sc__begin(c))) goto out;
  if ((rc = contact_load(c->st, sender, &who)) < 0 || (rc = session_load(c->st, sender, &s)) < 0) goto fail;
  memset(&px, 0, sizeof px);
  px.st = c->st;
  px.trusted = trusted_cb;
  px.tud = &who;
  account_prekey_store(&px, &ps);
  skipped = sotto_session_skipped_keys(s);
  drc = sotto_session_decrypt_addressed(s, &c->acct->id, &ps, ad, type, body, len, pt, len, &n, NULL);
  /* A state promoted from the archive could carry another key: the same
   * check once more, on what decrypted, before anything is committed. */
  if (drc == 0 && (sotto_session_remote_identity(s, idk) != 0 || client_identity_check(&who, idk) != IDENTITY_TRUSTED))
    drc = SOTTO_ERR_UNTRUSTED_IDENTITY;
  if (drc == SOTTO_ERR_STORE) {
    rc = STORE_E_IO;
    goto fail;
  }
  if (drc) {
    store_rollback(c->st);
    if (drc == SOTTO_ERR_UNTRUSTED_IDENTITY)
      rc = quarantine(c, sid, sender, ad, type, body, len, from_held);
    else if (drc == SOTTO_ERR_DUPLICATE && !from_held) rc = 0;
    else rc = failed(c, sender, sid, SC_R_DECRYPT, sotto_strerror(drc), from_held);
    goto out;
  }
  stranger = !who.has_key; /* nobody we wrote to or heard from: a message request (convo.c) */
  if (!who.has_key) {
    memcpy(who.key, idk, sizeof idk); /* trust on first use */
    who.has_key = 1;
  }
  if (content_decode(ct, pt, n) != 0) {
    rc = add_event(c, SC_EV_UNREADABLE, SC_R_UNKNOWN_FORMAT, sender, NULL);
  } else if ((consent = convo_consent_in(c, sender, stranger)) < 0) {
    rc = consent;
  } else if (consent == SC_CONSENT_BLOCKED) {
    rc = 0; /* blocked: dropped, no receipt; the session still steps */
  } else {
    rc = apply_content(c, sender, ct, sid, consent);
  }
  if (!rc) rc = heal_gap(c, sender, type, skipped, sotto_session_skipped_keys(s));
  if (rc || (rc = session_save(c->st, sender, s)) || (rc = contact_save(c->st, &who)) ||
      (rc = msglog_mark_seen(c->st, sid, 0)) || (from_held && (rc = store_del(c->st, hn))) ||
      (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st)))
    goto fail;
  goto out;
fail:
  store_rollback(c->st);
out:
  if (pt) {
    sodium_memzero(pt, len ? len : 1);
    free(pt);
  }
  if (ct) {
    sodium_memzero(ct, sizeof *ct);
    free(ct);
  }
  sotto_session_free(s);
  return rc;
}

struct held_list {
  uint64_t sids[CONTACT_MAX_HELD * 2];
  size_t n;
};

static int held_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct held_list *h = ud;
  (void)name;
  if (len >= 10 && v[0] == HELD_VERSION && h->n < sizeof h->sids / sizeof h->sids[0]) {
    struct rec_rd r;
    rec_rd_init(&r, v + 2, 8);
    rec_get_u64(&r, &h->sids[h->n++]);
  }
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int inbox_release_held(struct sc_client *c, const char *user, unsigned *released) {
  struct held_list *h = calloc(1, sizeof *h);
  char prefix[HELD_NAME_LEN], hn[HELD_NAME_LEN];
  size_t i;
  int rc;

  *released = 0;
  if (!h) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  snprintf(prefix, sizeof prefix, "held/%s/", user);
  if ((rc = store_scan(c->st, prefix, held_cb, h)) != 0) goto out;
  qsort(h->sids, h->n, sizeof h->sids[0], cmp_u64); /* in the order the server queued them */
  for (i = 0; i < h->n && !rc; i++) {
    struct rec_rd r;
    uint8_t *v, type = 0, ver = 0, idk[SOTTO_PUBKEY_LEN];
    const uint8_t *body;
    uint32_t blen = 0;
    uint64_t sid = 0;
    size_t vn;
    held_name(hn, user, h->sids[i]);
    if ((rc = store_get(c->st, hn, &v, &vn)) <= 0) continue;
    rec_rd_init(&r, v, vn);
    rec_get_u8(&r, &ver);
    rec_get_u8(&r, &type);
    rec_get_u64(&r, &sid);
    rec_get(&r, idk, sizeof idk);
    rec_get_u32(&r, &blen);
    rc = rec_get_ptr(&r, &body, blen) || rec_rd_end(&r) || ver != HELD_VERSION
             ? STORE_E_CORRUPT
             : pairwise(c, h->sids[i], user, NULL, type, body, blen, 1);
    store_free_value(v, vn);
    if (!rc) (*released)++;
  }
  /* The contact's held count starts again from what is still held. */
  if (!rc) {
    struct contact who;
    h->n = 0;
    if ((rc = store_scan(c->st, prefix, held_cb, h)) == 0 && (rc = sc__begin(c)) == 0) {
      if ((rc = contact_load(c->st, user, &who)) >= 0) {
        who.n_held = (uint32_t)h->n;
        rc = contact_save(c->st, &who);
      }
      if (rc || (rc = store_commit(c->st))) store_rollback(c->st);
    }
  }
out:
  free(h);
  if (rc) return sc__store_error(c, rc);
  return inbox_flush_unshown(c);
}

struct cand {
  uint8_t gids[MAX_GROUPS_TRIED][GROUP_ID_LEN];
  size_t n;
  const char *sender;
};

static int cand_cb(void *ud, const struct grp *g) {
  struct cand *k = ud;
  if (k->n < MAX_GROUPS_TRIED && grp_has(g->members, g->n, k->sender)) memcpy(k->gids[k->n++], g->gid, GROUP_ID_LEN);
  return 0;
}

/* A SenderKeyMessage carries no group id the server could read: try the
 * sender's chain in each group we share with them (a wrong one fails fast,
 * on the chain id, before any crypto). */
static int group_msg(struct sc_client *c, uint64_t sid, const char *sender, const uint8_t *body, size_t len,
                     const char *hn) {
  struct cand *k = calloc(1, sizeof *k);
  struct grp *g = calloc(1, sizeof *g);
  struct content *ct = calloc(1, sizeof *ct);
  uint8_t *pt = malloc(len ? len : 1);
  size_t i, n = 0;
  int rc, drc = SOTTO_ERR_NO_SENDER_KEY, found = 0;

  if (!k || !g || !ct || !pt) {
    rc = STORE_E_IO;
    goto out;
  }
  k->sender = sender;
  if ((rc = sc__begin(c))) goto out;
  if ((rc = grp_each(c->st, cand_cb, k)) < 0) goto fail;
  for (i = 0; i < k->n && !found; i++) {
    struct sotto_sender_key *rec;
    if ((rc = grp_load(c->st, k->gids[i], g)) < 0) goto fail;
    if (rc == 0) continue;
    if ((rc = grp_sk_load(c->st, g, sender, sc__env_device(c), &rec)) < 0) goto fail;
    if (rc == 1) {
      int r = sotto_group_decrypt(rec, pt, len, &n, body, len);
      if (r == 0) {
        found = 1;
        rc = grp_sk_save(c->st, g, sender, sc__env_device(c), rec);
      } else if (r != SOTTO_ERR_NO_SENDER_KEY) {
        drc = r;
      }
    }
    sotto_sender_key_free(rec);
    if (found && rc) goto fail;
  }
  if (!found) {
    store_rollback(c->st);
    if (drc == SOTTO_ERR_DUPLICATE) {
      rc = 0;
    } else {
      rc = drc == SOTTO_ERR_NO_SENDER_KEY ? unreadable(c, sender, sid, SC_R_NO_GROUP_KEY, NULL)
                                          : unreadable(c, sender, sid, SC_R_DECRYPT, sotto_strerror(drc));
    }
    goto out;
  }
  if (content_decode(ct, pt, n) != 0 ||
      (ct->kind != CONTENT_GROUP_TEXT && ct->kind != CONTENT_GROUP_ATTACHMENT && !CONTENT_IS_CONVO(ct->kind)) ||
      (CONTENT_IS_CONVO(ct->kind) && !ct->in_group) || sodium_memcmp(ct->gid, g->gid, GROUP_ID_LEN) != 0)
    rc = add_event(c, SC_EV_UNREADABLE, SC_R_GROUP_FORMAT, sender, g->name);
  else if (strcmp(sender, c->acct->username) == 0)
    /* from another device of ours: what we sent, shown as ours (a text, a
     * file, a reaction, an edit, a delete, a timer) */
    rc = ct->kind == CONTENT_GROUP_TEXT || ct->kind == CONTENT_TEXT_EX ? add_own_group_text(c, g->name, ct, sid)
         : ct->kind == CONTENT_GROUP_ATTACHMENT                         ? attach_arrived(c, sender, ct, sid)
                                                                         : convo_apply_own(c, NULL, g->name, ct);
  else if ((rc = convo_consent_get(c, sender)) == SC_CONSENT_BLOCKED)
    rc = 0; /* a blocked member's group messages are dropped too */
  else if (rc >= 0 && (rc = convo_group_inviter(c, g->gid, NULL)) < 0)
    ; /* a store error */
  else if (ct->kind == CONTENT_GROUP_ATTACHMENT)
    /* a file: fetched once the queue is drained; not from a group we did
     * not accept (nothing downloaded for a request) */
    rc = rc == 1 ? 0 : attach_arrived(c, sender, ct, sid);
  else if (rc == 1 || CONTENT_IS_CONVO(ct->kind))
    /* in a group we did not accept yet: kept, marked as a request */
    rc = convo_apply(c, sender, g->name, ct, sid, rc == 1 ? SC_CONSENT_REQUEST : SC_CONSENT_CONTACT);
  else
    rc = add_text(c, sender, g->name, ct, sid);
  if (rc || (rc = msglog_mark_seen(c->st, sid, 0)) || (hn && (rc = store_del(c->st, hn))) ||
      (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st)))
    goto fail;
  goto out;
fail:
  store_rollback(c->st);
out:
  if (pt) {
    sodium_memzero(pt, len ? len : 1);
    free(pt);
  }
  free(k);
  free(g);
  if (ct) {
    sodium_memzero(ct, sizeof *ct);
    free(ct);
  }
  return rc;
}


/* ---- messages from other devices (docs/multi-device.md) -------------------------
 *
 * Device 1 of a contact is pairwise() above. A message from another device
 * of a contact, or from another device of our own account (a sent
 * transcript), is accepted only from a device in that account's current
 * verified signed list, under the device key listed for it; its session is
 * "dsession/NAME/D" (or "session/NAME" for device 1 of our own account). */

/* Refuses the envelope sid from device dev of sender (own transaction):
 * logged as SC_EV_DEVICE_REFUSED and acknowledged. */
/* Logs event kind (SC_EV_DEVICE_REFUSED or SC_EV_DEVICE_HELD) about
 * envelope sid from device dev of sender, inside the open transaction. */
static int device_event(struct sc_client *c, int kind, int reason, const char *sender, uint32_t dev, uint64_t sid,
                        const char *detail) {
  struct msg *m = calloc(1, sizeof *m);
  int rc;
  if (!m) return STORE_E_IO;
  m->dir = MSG_EVENT;
  m->kind = (uint8_t)kind;
  m->reason = (uint8_t)reason;
  snprintf(m->peer, sizeof m->peer, "%s", sender);
  snprintf(m->detail, sizeof m->detail, "%s", detail);
  m->ts = sc_now_ms();
  m->device = dev;
  m->server_id = sid;
  m->count = dev;
  m->text = (char *)"";
  rc = msglog_add(c->st, c->acct, m, 1);
  free(m);
  return rc;
}

static int device_refuse(struct sc_client *c, const char *sender, uint32_t dev, uint64_t sid, const char *detail) {
  int rc;
  if ((rc = sc__begin(c)) == 0) {
    if ((rc = device_event(c, SC_EV_DEVICE_REFUSED, SC_R_NONE, sender, dev, sid, detail)) ||
        (rc = msglog_mark_seen(c->st, sid, 0)) || (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st)))
      store_rollback(c->st);
  }
  return rc;
}

/* ---- held until it can be checked (docs/multi-device.md, "Held, not dropped") ----
 *
 * A message from a linked device of someone whose account key we do not
 * know yet, when their device list or key-transparency proof cannot be
 * had now: kept as it came (never decrypted: no ratchet, pre-key or
 * contact state is touched) under "dheld/NAME/SID" (SID in 20 digits, so
 * the names sort in server order):
 *   u8 version | u8 envelope type | u32 device | u64 held at (ms) | u32 len | body.
 * Bounded per sender and in all (SC_DEVICE_HOLD_*); checked again by
 * inbox_retry_device_held; given up after SC_DEVICE_HOLD_DAYS. */
#define DHELD_VERSION 1
#define DHELD_NAME_LEN 64
#define DHELD_PREFIX "dheld/"
#define DHELD_HEAD 18 /* the record's bytes before the body */
#define DHELD_RETRY_MS 60000

static void dheld_name(char out[DHELD_NAME_LEN], const char *sender, uint64_t sid) {
  snprintf(out, DHELD_NAME_LEN, DHELD_PREFIX "%s/%020llu", sender, (unsigned long long)sid);
}

struct dheld_stats {
  const char *sender; /* NULL: only the totals */
  size_t plen;
  unsigned n, n_all;
  size_t bytes, bytes_all;
};

static int dheld_stats_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct dheld_stats *st = ud;
  size_t pl = sizeof DHELD_PREFIX - 1;
  (void)v;
  st->n_all++;
  st->bytes_all += len;
  if (st->sender && strlen(name) > pl + st->plen && strncmp(name + pl, st->sender, st->plen) == 0 &&
      name[pl + st->plen] == '/') {
    st->n++;
    st->bytes += len;
  }
  return 0;
}

/* How many messages of sender are held (>= 0), or a STORE_E_*. */
static int dheld_count(struct sc_client *c, const char *sender) {
  struct dheld_stats st;
  int rc;
  memset(&st, 0, sizeof st);
  st.sender = sender;
  st.plen = strlen(sender);
  if ((rc = store_scan(c->st, DHELD_PREFIX, dheld_stats_cb, &st)) != 0) return rc;
  return (int)st.n;
}

/* Holds envelope sid (own transaction): kept and said (SC_EV_DEVICE_HELD,
 * why), or, past the bounds, said and not kept (SC_R_HELD_FULL). Either
 * way it is marked seen, so the server's copy can go. */
static int device_hold(struct sc_client *c, uint64_t sid, const char *sender, uint32_t dev, int type,
                       const uint8_t *body, size_t len, const char *why) {
  struct dheld_stats st;
  struct rec_wr w;
  char hn[DHELD_NAME_LEN], detail[MSG_DETAIL_MAX + 1];
  int rc, full;
  memset(&st, 0, sizeof st);
  st.sender = sender;
  st.plen = strlen(sender);
  if ((rc = store_scan(c->st, DHELD_PREFIX, dheld_stats_cb, &st)) != 0) return rc;
  full = st.n >= SC_DEVICE_HOLD_PER_SENDER || st.bytes + DHELD_HEAD + len > SC_DEVICE_HOLD_PER_SENDER_BYTES ||
         st.n_all >= SC_DEVICE_HOLD_MAX || st.bytes_all + DHELD_HEAD + len > SC_DEVICE_HOLD_MAX_BYTES;
  if (full)
    snprintf(detail, sizeof detail, "%u of theirs (%u in all) are held already; %s", st.n, st.n_all, why);
  else
    snprintf(detail, sizeof detail, "%s", why);
  rec_wr_init(&w, DHELD_HEAD + len);
  rec_put_u8(&w, DHELD_VERSION);
  rec_put_u8(&w, (uint8_t)type);
  rec_put_u32(&w, dev);
  rec_put_u64(&w, (uint64_t)sc_now_ms());
  rec_put_u32(&w, (uint32_t)len);
  rec_put(&w, body, len);
  if (rec_wr_ok(&w)) {
    rec_wr_free(&w);
    return STORE_E_IO;
  }
  dheld_name(hn, sender, sid);
  if ((rc = sc__begin(c)) == 0) {
    if ((!full && (rc = store_put(c->st, hn, w.p, w.len))) ||
        (rc = device_event(c, SC_EV_DEVICE_HELD, full ? SC_R_HELD_FULL : SC_R_NONE, sender, dev, sid, detail)) ||
        (rc = msglog_mark_seen(c->st, sid, 0)) || (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st)))
      store_rollback(c->st);
  }
  rec_wr_free(&w);
  return rc;
}

/* Removes held record hn if it is still there (own transaction). */
static int dheld_drop(struct sc_client *c, const char *hn) {
  uint8_t *v;
  size_t vn;
  int rc;
  if ((rc = store_get(c->st, hn, &v, &vn)) <= 0) return rc;
  store_free_value(v, vn);
  if ((rc = sc__begin(c)) == 0 && ((rc = store_del(c->st, hn)) || (rc = store_commit(c->st)))) store_rollback(c->st);
  return rc;
}

/* Whether device dev is in list l (signed by account key acct when acct is
 * not NULL): 1 and key, else 0. */
int inbox_device_listed(const struct sotto_devlist *l, const uint8_t *acct, uint32_t dev, uint8_t key[SOTTO_PUBKEY_LEN]) {
  int j;
  if (acct && sodium_memcmp(l->account_key, acct, SOTTO_PUBKEY_LEN) != 0) return 0;
  if ((j = sotto_devlist_find(l, dev)) < 0) return 0;
  memcpy(key, l->dev[j].device_key, SOTTO_PUBKEY_LEN);
  return 1;
}

/* Refuses sid with why (shown after "a message from NAME's device D was
 * refused: "; at most MSG_DETAIL_MAX bytes are kept); 1, or a STORE_E_*. */
static int refuse_first(struct sc_client *c, const char *sender, uint32_t dev, uint64_t sid, const char *why) {
  int rc = device_refuse(c, sender, dev, sid, why);
  return rc == 0 ? 1 : rc;
}

/* A failure to check that may pass later ("cannot check yet"): the server
 * did not answer or the link is down, or the key-transparency proof is not
 * there yet (a head still waiting for its witnesses' cosignatures, a key
 * or a list the log has not taken in yet). Anything else is an answer that
 * was checked and is wrong: refused for good. */
static int check_transient(int rc) {
  switch (rc) {
    case SC_ERR_UNREACHABLE:
    case SC_ERR_TIMEOUT:
    case SC_ERR_CONNECTION_LOST:
    case SC_ERR_NOT_CONNECTED:
    case SC_ERR_SERVER:
    case SC_ERR_SERVER_BUSY:
    case SC_ERR_RATE_LIMITED:
    case SC_ERR_SHUTDOWN:
    case SC_ERR_DISPLACED:
    case SC_ERR_KT_QUORUM:
    case SC_ERR_KT_NOT_LOGGED:
    case SC_ERR_KT_PENDING:
      return 1;
    default:
      return 0;
  }
}

/* The same for a net / server result code. */
static int net_transient(int rc) {
  return rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT || rc == SOTTO_SRV_E_RATE || rc == SOTTO_SRV_E_INTERNAL ||
         rc == SOTTO_SRV_E_TIMEOUT || rc == SOTTO_SRV_E_SHUTDOWN || rc == SOTTO_SRV_E_BUSY ||
         rc == SOTTO_SRV_E_STORAGE_FULL || rc == SOTTO_SRV_E_KT_PENDING;
}

/* A first message (a PreKey message) from device dev > 1 of someone whose
 * account key we do not know yet (docs/multi-device.md, "A first message
 * from a linked device"). Their signed device list is fetched and parsed
 * (it verifies under the account key it names); that account key must be
 * the identity key of their device 1, fetched and checked exactly as a first
 * message to them is (trust on first use, and the key-transparency log when
 * the server runs one: conn_fetch_bundle_dev); the list goes through
 * devices_check_peer under that key (the log's list hash with key
 * transparency) and must name dev. 0 with key (dev's listed key) and acct
 * (their account key, trusted only when the message decrypts under key);
 * 1 refused (said and acknowledged; nothing trusted); 2 it cannot be
 * checked now (why in wait; nothing said, nothing trusted: the caller holds
 * the message); or a STORE_E_*. */
static int first_from_device(struct sc_client *c, uint64_t sid, const char *sender, uint32_t dev,
                             uint8_t key[SOTTO_PUBKEY_LEN], uint8_t acct[SOTTO_PUBKEY_LEN], char *wait,
                             size_t wait_len) {
  struct sotto_devlist *l = calloc(1, sizeof *l);
  struct sotto_bundle *b = calloc(1, sizeof *b);
  uint8_t *buf = malloc(SOTTO_SRV_MAX_DEVLIST);
  char why[sizeof c->errdetail + 200];
  size_t len = 0;
  int rc;
  if (!l || !b || !buf) {
    rc = STORE_E_IO;
    goto out;
  }
  if (!c->connected || !c->k.net) {
    snprintf(wait, wait_len, "not connected to the server");
    rc = 2;
    goto out;
  }
#ifdef SOTTO_TEST_HOOKS
  /* test_multidevice_held.sh: the server does not answer the list request. */
  if (getenv("SOTTO_TEST_DEVLIST_UNAVAILABLE") && *getenv("SOTTO_TEST_DEVLIST_UNAVAILABLE"))
    rc = SOTTO_NET_E_TIMEOUT;
  else
#endif
  {
    int tries = 0;
    do
      rc = sotto_net_devlist_get(c->k.net, sender, buf, SOTTO_SRV_MAX_DEVLIST, &len);
    while (conn_kt_pending_wait(rc, &tries));
  }
  if (rc != 0 && rc != SOTTO_SRV_E_NOT_FOUND && net_transient(rc)) {
    snprintf(wait, wait_len, "the server did not answer the request for their device list (%s)",
             rc == SOTTO_NET_E_TIMEOUT ? "no answer in time"
             : rc == SOTTO_NET_E_IO    ? "the connection broke"
                                       : sotto__srv_code_str((unsigned)rc));
    rc = 2;
    goto out;
  }
  if (rc != 0) {
    rc = refuse_first(c, sender, dev, sid,
                      rc == SOTTO_SRV_E_NOT_FOUND ? "a first message, and the server has no device list of theirs"
                                                  : "a first message, and their device list could not be read");
    goto out;
  }
  if ((rc = sotto_devlist_parse(l, buf, len)) != 0 || strcmp(l->username, sender) != 0) {
    rc = refuse_first(c, sender, dev, sid,
                      "their device list on the server does not verify: the server may be adding a device");
    goto out;
  }
  memcpy(acct, l->account_key, SOTTO_PUBKEY_LEN);
  /* Their account key: the key of their device 1, checked as a first
   * message to them would be (key transparency included). */
  rc = conn_fetch_bundle_dev(c, &c->k, sender, CONN_PEER_DEVICE, b);
  if (rc == SC_ERR_STORE || rc == SC_ERR_STORE_CORRUPT || rc == SC_ERR_BUSY || rc == SC_ERR_NOMEM) {
    rc = STORE_E_IO;
    goto out;
  }
  if (rc != 0 && check_transient(rc)) {
    snprintf(wait, wait_len, "their account key cannot be checked yet: %s", c->errdetail);
    rc = 2;
    goto out;
  }
  if (rc != 0) {
    if (rc == SC_ERR_KT_NOT_LOGGED || rc == SC_ERR_KT_OFF)
      snprintf(why, sizeof why, "%s",
               rc == SC_ERR_KT_OFF ? "key transparency is required, but this server runs no log"
                                   : "the server showed an account key for them that is not in its public log");
    else
      snprintf(why, sizeof why, "their account key could not be checked: %s", c->errdetail);
    rc = refuse_first(c, sender, dev, sid, why);
    goto out;
  }
  if (sodium_memcmp(b->identity_key, acct, SOTTO_PUBKEY_LEN) != 0) {
    rc = refuse_first(c, sender, dev, sid,
                      "their device list is signed by another key than their primary device's: the server may be "
                      "replacing it");
    goto out;
  }
  /* The list under that key: verified, logged (key transparency), kept. */
  rc = devices_check_peer(c, &c->k, sender, acct);
  if (rc == SC_ERR_STORE || rc == SC_ERR_STORE_CORRUPT || rc == SC_ERR_BUSY || rc == SC_ERR_NOMEM) {
    rc = STORE_E_IO;
    goto out;
  }
  if (rc != 0 && check_transient(rc)) {
    snprintf(wait, wait_len, "their device list cannot be checked yet: %s", c->errdetail);
    rc = 2;
    goto out;
  }
  if (rc != 0) {
    snprintf(why, sizeof why, "%s",
             rc == SC_ERR_KT_NOT_LOGGED    ? "the server showed a device list for them that is not in its public log"
             : rc == SC_ERR_KT_LIST_HIDDEN ? "the server's public log holds a newer device list of theirs"
             : rc == SC_ERR_KT_OFF         ? "key transparency is required, but this server runs no log"
                                           : "their device list does not verify");
    rc = refuse_first(c, sender, dev, sid, why);
    goto out;
  }
  if ((rc = devices_list_of(c, sender, l)) < 0) goto out;
  if (rc != 1 || !inbox_device_listed(l, acct, dev, key)) {
    rc = refuse_first(c, sender, dev, sid, "that device is not in their signed device list");
    goto out;
  }
  rc = 0;
out:
  if (rc != 0 && acct) sodium_memzero(acct, SOTTO_PUBKEY_LEN);
  free(l);
  free(b);
  free(buf);
  return rc;
}

/* The listed key of device dev of sender (own: our own account). 0 and
 * key, 1 refused (said and acknowledged), 2 it cannot be checked now (only
 * with wait: why in wait; the caller holds the envelope), or a STORE_E_*.
 * live: a new envelope (not a held one checked again): held behind an
 * earlier held message of the same sender. A device the
 * recorded list does not name makes us fetch the list once more first (it
 * may be newer than ours). first: when nothing is known of sender's account
 * key, a first message (PreKey) from their device dev is checked through
 * their list (first_from_device) and their account key comes back in first
 * (first[0] is 1 then, the key in first + 1); NULL refuses it. */
static int device_gate(struct sc_client *c, uint64_t sid, const char *sender, uint32_t dev, int own,
                       uint8_t key[SOTTO_PUBKEY_LEN], uint8_t *first, char *wait, size_t wait_len, int live) {
  struct sotto_devlist *l = calloc(1, sizeof *l);
  struct contact who;
  const uint8_t *acct = NULL;
  char detail[200];
  int rc, listed = 0, fetch_failed = 0, saved_err = c->err;
  char saved[sizeof c->errdetail];
  if (!l) return STORE_E_IO;
  memcpy(saved, c->errdetail, sizeof saved);
  if (first) first[0] = 0;
  if (!own) {
    if ((rc = contact_load(c->st, sender, &who)) < 0) goto out;
    /* Behind a held message of theirs: held too, so they are checked
     * and shown in the order they came. */
    if (!who.has_key && wait && live) {
      if ((rc = dheld_count(c, sender)) < 0) goto out;
      if (rc > 0) {
        snprintf(wait, wait_len, "an earlier message from them waits for the same check");
        rc = 2;
        goto out;
      }
    }
    if (!who.has_key && first) {
      char why[sizeof c->errdetail + 100];
      why[0] = 0;
      rc = first_from_device(c, sid, sender, dev, key, first + 1, why, sizeof why);
      c->err = saved_err;
      memcpy(c->errdetail, saved, sizeof saved);
      if (rc == 0) first[0] = 1;
      if (rc == 2 && !wait) {
        rc = refuse_first(c, sender, dev, sid, why);
      } else if (rc == 2) {
        snprintf(wait, wait_len, "%s", why);
      }
      goto out;
    }
    if (!who.has_key) {
      rc = device_refuse(c, sender, dev, sid,
                         "nothing is known of their account key yet, and only a first message (a session start) "
                         "can be checked against their device list");
      if (rc == 0) rc = 1;
      goto out;
    }
    acct = who.key;
  }
  if ((rc = devices_list_of(c, sender, l)) < 0) goto out;
  listed = rc == 1 && inbox_device_listed(l, acct, dev, key);
  if (!listed && c->connected && c->k.net) {
    /* Fetched again: the list may be newer than the one recorded. */
    if (own) {
      rc = devices_publish(c, &c->k);
    } else {
      devices_recheck(c, sender);
      rc = devices_check_peer(c, &c->k, sender, who.key);
    }
    /* A known contact's list that could not be fetched again now (not a
     * list that was fetched and is wrong): held, not refused, when the
     * caller can hold it. */
    fetch_failed = !own && wait && check_transient(rc);
    if (fetch_failed) {
      char e[48]; /* the start of the reason: the event's detail is short */
      snprintf(e, sizeof e, "%.47s", c->errdetail);
      snprintf(wait, wait_len, "their device list could not be fetched again to check device %u: %s", dev, e);
    }
    c->err = saved_err;
    memcpy(c->errdetail, saved, sizeof saved);
    if (rc == SC_ERR_STORE || rc == SC_ERR_BUSY || rc == SC_ERR_NOMEM) {
      rc = STORE_E_IO;
      goto out;
    }
    if ((rc = devices_list_of(c, sender, l)) < 0) goto out;
    listed = rc == 1 && inbox_device_listed(l, acct, dev, key);
    if (!listed && fetch_failed) {
      rc = 2;
      goto out;
    }
  }
  if (listed) {
    rc = 0;
    goto out;
  }
  snprintf(detail, sizeof detail,
           "device %u is not in %s current signed device list: a device the account's own devices did not sign "
           "is not listened to",
           dev, own ? "your account's" : "their");
  rc = device_refuse(c, sender, dev, sid, detail);
  if (rc == 0) rc = 1;
out:
  free(l);
  return rc;
}

static int device_key_cb(void *ud, const uint8_t identity[32]) {
  return sodium_memcmp(ud, identity, SOTTO_PUBKEY_LEN) == 0;
}

/* A sent transcript from another device of ours (inside the open
 * transaction): what we sent to ct->to there is applied here as ours: a
 * text (a reply, a disappearing one) logged as sent by us, a reaction, an
 * edit, a delete or a timer applied as on that device, a file's pointer
 * kept for its download (attach.c says it was ours). A 1:1 content only: a
 * group's kinds travel in its SenderKeyMessages. */
static int apply_transcript(struct sc_client *c, const struct content *ct, uint64_t sid) {
  struct content *in = calloc(1, sizeof *in);
  char me[SC_USER_MAX + 1];
  int rc = 0;
  if (!in) return STORE_E_IO;
  snprintf(me, sizeof me, "%s", c->acct->username);
  if (content_decode(in, ct->inner, ct->inner_len) != 0 || strcmp(ct->to, me) == 0 ||
      (CONTENT_IS_CONVO(in->kind) && in->in_group)) {
    rc = add_event(c, SC_EV_UNREADABLE, SC_R_UNKNOWN_FORMAT, me, NULL);
  } else {
    switch (in->kind) {
      case CONTENT_TEXT:
      case CONTENT_TEXT_EX:
        /* we wrote to them: a request of theirs here is answered too */
        if ((rc = convo_accept_here(c, ct->to)) == 0) rc = outbox_transcript(c, ct->to, in);
        break;
      case CONTENT_TIMER:
      case CONTENT_REACTION:
      case CONTENT_EDIT:
      case CONTENT_DELETE:
        rc = convo_apply_own(c, ct->to, NULL, in);
        break;
      case CONTENT_ATTACHMENT:
        /* the whole transcript is kept: its download knows it was ours, to ct->to */
        if ((rc = convo_accept_here(c, ct->to)) == 0) rc = attach_arrived(c, me, ct, sid);
        break;
      default:
        rc = add_event(c, SC_EV_UNREADABLE, SC_R_UNEXPECTED_KIND, me, NULL);
    }
  }
  sodium_memzero(in, sizeof *in);
  free(in);
  return rc;
}

/* hn: the held record this envelope comes from (inbox_retry_device_held;
 * deleted in the commit that delivers it), NULL for a new envelope. 2: it
 * still cannot be checked (only with hn: kept). */
static int pairwise_dev(struct sc_client *c, uint64_t sid, const char *sender, uint32_t dev, int own, int type,
                        const uint8_t *body, size_t len, const char *hn) {
  struct prekey_ctx px;
  struct sotto_prekey_store ps;
  struct sotto_session *s = NULL;
  struct sotto_addresses ad;
  struct contact who;
  struct content *ct = calloc(1, sizeof *ct);
  uint8_t key[SOTTO_PUBKEY_LEN], idk[SOTTO_PUBKEY_LEN], first[1 + SOTTO_PUBKEY_LEN] = {0},
      *pt = malloc(len ? len : 1);
  char me[SC_USER_MAX + 1], wait[MSG_DETAIL_MAX + 1];
  size_t n = 0, skipped = 0;
  int rc, drc, consent, stranger = 0;

  if (!ct || !pt) {
    rc = STORE_E_IO;
    goto out;
  }
  snprintf(me, sizeof me, "%s", c->acct->username);
  if ((rc = device_gate(c, sid, sender, dev, own, key, type == SOTTO_MSG_PREKEY && !own ? first : NULL,
                        own ? NULL : wait, sizeof wait, !hn)) != 0) {
    if (rc == 1) rc = 0;
    else if (rc == 2 && !hn) rc = device_hold(c, sid, sender, dev, type, body, len, wait);
    goto out;
  }
  if ((rc = sc__begin(c))) goto out;
  memset(&who, 0, sizeof who);
  if ((!own && (rc = contact_load(c->st, sender, &who)) < 0) || (rc = session_load_dev(c->st, sender, dev, &s)) < 0)
    goto fail;
  memset(&px, 0, sizeof px);
  px.st = c->st;
  px.trusted = device_key_cb;
  px.tud = key;
  account_prekey_store(&px, &ps);
  client_addresses(&ad, me, c->acct->device_id, sender, dev, 1);
  skipped = sotto_session_skipped_keys(s);
  drc = sotto_session_decrypt_addressed(s, &c->acct->id, &ps, &ad, type, body, len, pt, len, &n, NULL);
  if (drc == 0 && (sotto_session_remote_identity(s, idk) != 0 || sodium_memcmp(idk, key, sizeof key) != 0))
    drc = SOTTO_ERR_UNTRUSTED_IDENTITY;
  if (drc == SOTTO_ERR_STORE) {
    rc = STORE_E_IO;
    goto fail;
  }
  if (drc) {
    store_rollback(c->st);
    if (drc == SOTTO_ERR_UNTRUSTED_IDENTITY)
      rc = device_refuse(c, sender, dev, sid, "its identity key is not the device key listed in the signed device list");
    else if (drc == SOTTO_ERR_DUPLICATE) rc = 0;
    else rc = unreadable(c, sender, sid, SC_R_DECRYPT, sotto_strerror(drc));
    goto out;
  }
  if (first[0] && !own) {
    /* A first contact through their linked device: their account key,
     * checked by first_from_device, is trusted on first use now that the
     * message decrypted under the key their list gives this device. */
    if (who.has_key && sodium_memcmp(who.key, first + 1, SOTTO_PUBKEY_LEN) != 0) {
      store_rollback(c->st);
      rc = device_refuse(c, sender, dev, sid, "their account key changed while this message was checked");
      goto out;
    }
    stranger = !who.has_key;
    memcpy(who.key, first + 1, SOTTO_PUBKEY_LEN);
    who.has_key = 1;
  }
  if (content_decode(ct, pt, n) != 0) {
    rc = add_event(c, SC_EV_UNREADABLE, SC_R_UNKNOWN_FORMAT, sender, NULL);
  } else if (own) {
    /* Our own devices send us only transcripts, consent decisions and
     * groups' state. */
    rc = ct->kind == CONTENT_TRANSCRIPT    ? apply_transcript(c, ct, sid)
         : ct->kind == CONTENT_CONSENT     ? convo_apply_consent(c, ct)
         : ct->kind == CONTENT_GROUP_STATE ? apply_group_state(c, ct)
         /* a new device of ours: device_gate fetched our list again when
          * it was not in the one recorded (groups follow it, grp.h) */
         : ct->kind == CONTENT_DEVICE_HELLO ? 0
                                           : add_event(c, SC_EV_UNREADABLE, SC_R_UNEXPECTED_KIND, sender, NULL);
  } else if ((consent = convo_consent_in(c, sender, stranger)) < 0) {
    rc = consent;
  } else if (consent != SC_CONSENT_BLOCKED) {
    rc = apply_content(c, sender, ct, sid, consent);
  }
  if (!rc) rc = heal_gap(c, sender, type, skipped, sotto_session_skipped_keys(s));
  if (rc || (rc = session_save_dev(c->st, sender, dev, s)) || (!own && (rc = contact_save(c->st, &who))) ||
      (rc = msglog_mark_seen(c->st, sid, 0)) || (hn && (rc = store_del(c->st, hn))) ||
      (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st)))
    goto fail;
  goto out;
fail:
  store_rollback(c->st);
out:
  if (pt) {
    sodium_memzero(pt, len ? len : 1);
    free(pt);
  }
  if (ct) {
    sodium_memzero(ct, sizeof *ct);
    free(ct);
  }
  sotto_session_free(s);
  return rc;
}

/* A group message from device dev > 1 of sender: only from a device of
 * their verified list. Nothing known of their account key yet: refused,
 * unless an earlier message of theirs (the sender key their device sent
 * pairwise) is held until it can be checked: then it is held behind it. hn
 * as for pairwise_dev. */
static int group_dev(struct sc_client *c, uint64_t sid, const char *sender, uint32_t dev, const uint8_t *body,
                     size_t len, const char *hn) {
  uint8_t key[SOTTO_PUBKEY_LEN];
  char wait[MSG_DETAIL_MAX + 1];
  int rc = device_gate(c, sid, sender, dev, 0, key, NULL, wait, sizeof wait, !hn);
  if (rc == 1) return 0;
  if (rc == 2) return hn ? 2 : device_hold(c, sid, sender, dev, SOTTO_MSG_SENDERKEY, body, len, wait);
  if (rc != 0) return rc;
  return group_msg(c, sid, sender, body, len, hn);
}

struct dheld_item {
  char sender[SC_USER_MAX + 1];
  uint64_t sid;
};

struct dheld_list {
  struct dheld_item it[SC_DEVICE_HOLD_MAX + SC_DEVICE_HOLD_PER_SENDER];
  size_t n;
};

static int dheld_list_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct dheld_list *h = ud;
  size_t pl = sizeof DHELD_PREFIX - 1;
  const char *slash = strrchr(name, '/');
  char *end = NULL;
  unsigned long long sid;
  (void)v;
  (void)len;
  if (h->n >= sizeof h->it / sizeof h->it[0] || !slash || (size_t)(slash - name) <= pl ||
      (size_t)(slash - name) - pl > SC_USER_MAX)
    return 0;
  sid = strtoull(slash + 1, &end, 10);
  if (!end || *end) return 0;
  memcpy(h->it[h->n].sender, name + pl, (size_t)(slash - name) - pl);
  h->it[h->n].sender[(size_t)(slash - name) - pl] = 0;
  h->it[h->n].sid = sid;
  h->n++;
  return 0;
}

static int cmp_dheld(const void *a, const void *b) {
  uint64_t x = ((const struct dheld_item *)a)->sid, y = ((const struct dheld_item *)b)->sid;
  return x < y ? -1 : x > y;
}

/* How long a held message is kept (ms). */
static uint64_t dheld_max_age_ms(void) {
#ifdef SOTTO_TEST_HOOKS
  /* test_multidevice_held.sh: the limit, made short. */
  const char *e = getenv("SOTTO_TEST_DEVICE_HOLD_MS");
  if (e && *e) return strtoull(e, NULL, 10);
#endif
  return (uint64_t)SC_DEVICE_HOLD_DAYS * 86400000u;
}

/* One held record, checked again: 0 done (delivered, refused, given up or
 * dropped as unreadable), 2 still held, or a STORE_E_*. */
static int dheld_retry_one(struct sc_client *c, const struct dheld_item *it, uint64_t now_ms) {
  char hn[DHELD_NAME_LEN], detail[MSG_DETAIL_MAX + 1];
  struct rec_rd r;
  const uint8_t *body = NULL;
  uint8_t *v = NULL, ver = 0, type = 0;
  uint32_t dev = 0, blen = 0;
  uint64_t at = 0;
  size_t vn = 0;
  int rc;

  dheld_name(hn, it->sender, it->sid);
  if ((rc = store_get(c->st, hn, &v, &vn)) <= 0) return rc;
  rec_rd_init(&r, v, vn);
  rec_get_u8(&r, &ver);
  rec_get_u8(&r, &type);
  rec_get_u32(&r, &dev);
  rec_get_u64(&r, &at);
  rec_get_u32(&r, &blen);
  if (rec_get_ptr(&r, &body, blen) || rec_rd_end(&r) || ver != DHELD_VERSION || dev < 2 ||
      (type != SOTTO_MSG_PREKEY && type != SOTTO_MSG_SIGNAL && type != SOTTO_MSG_SENDERKEY)) {
    /* not a record this version wrote: said and dropped */
    store_free_value(v, vn);
    if ((rc = unreadable(c, it->sender, it->sid, SC_R_UNKNOWN_FORMAT, NULL)) != 0) return rc;
    return dheld_drop(c, hn);
  }
  if (now_ms >= at && now_ms - at > dheld_max_age_ms()) {
    time_t t = (time_t)(at / 1000);
    struct tm tm;
    char when[32];
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    snprintf(detail, sizeof detail,
             "held since %s and their device could still not be checked: dropped unread; ask them to write again",
             when);
    store_free_value(v, vn);
    if ((rc = sc__begin(c)) == 0 &&
        ((rc = device_event(c, SC_EV_DEVICE_HELD, SC_R_HELD_GIVEN_UP, it->sender, dev, it->sid, detail)) ||
         (rc = store_del(c->st, hn)) || (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st))))
      store_rollback(c->st);
    return rc;
  }
  c->env_device = dev;
  rc = type == SOTTO_MSG_SENDERKEY ? group_dev(c, it->sid, it->sender, dev, body, blen, hn)
                                   : pairwise_dev(c, it->sid, it->sender, dev, 0, type, body, blen, hn);
  c->env_device = 0;
  store_free_value(v, vn);
  /* refused, unreadable, a duplicate: said (or silent) in their own
   * commits; the record goes now (a delivered one went with it) */
  if (rc == 0) rc = dheld_drop(c, hn);
  return rc;
}

int inbox_retry_device_held(struct sc_client *c, int force) {
  struct dheld_list *h;
  int64_t now = sc_monotonic_ms();
  uint64_t now_ms = (uint64_t)sc_now_ms();
  size_t i, j, nb = 0;
  int rc;

  if (!c->connected || !c->k.net) return 0;
  if (!force && c->dheld_at && now - c->dheld_at < DHELD_RETRY_MS) return 0;
  c->dheld_at = now ? now : 1;
  if (!(h = calloc(1, sizeof *h))) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  if ((rc = store_scan(c->st, DHELD_PREFIX, dheld_list_cb, h)) != 0 || h->n == 0) goto out;
  qsort(h->it, h->n, sizeof h->it[0], cmp_dheld); /* in the order the server queued them */
  for (i = 0; i < h->n && rc >= 0; i++) {
    int blocked = 0;
    /* a sender whose earlier message is still held keeps the rest held */
    for (j = 0; j < nb && !blocked; j++) blocked = strcmp(h->it[j].sender, h->it[i].sender) == 0;
    if (blocked) continue;
    rc = dheld_retry_one(c, &h->it[i], now_ms);
    if (rc == 2) {
      if (nb != i) h->it[nb] = h->it[i]; /* the first nb entries (already passed) name the blocked senders */
      nb++;
      rc = 0;
    }
  }
out:
  free(h);
  if (rc) return sc__store_error(c, rc);
  return inbox_flush_unshown(c);
}

/* Whether a message from sender must carry addresses: 1 for a session start
 * or when the stored session runs SPQR, 0 otherwise, or a store error. */
static int pairwise_required(struct sc_client *c, const char *sender, int type) {
  struct sotto_session *s = NULL;
  int rc;
  if (type == SOTTO_MSG_PREKEY) return 1;
  if ((rc = session_load(c->st, sender, &s)) < 0) return rc;
  rc = sotto_session_has_spqr(s);
  sotto_session_free(s);
  return rc;
}

int inbox_process(struct sc_client *c, struct conn *k, uint64_t sid, const char *sender, int type, const uint8_t *body,
                  size_t len) {
  struct sotto_addresses ad;
  char me[SC_USER_MAX + 1]; /* a copy: a transaction may reload c->acct */
  uint64_t seq;
  int rc;
  (void)k;
  if ((rc = msglog_seen(c->st, sid, &seq)) < 0) return sc__store_error(c, rc);
  if (rc == 1) return inbox_flush_unshown(c); /* a re-delivery: already committed */
  if (!sc_username_ok(sender)) {
    rc = unreadable(c, "unknown", sid, SC_R_BAD_SENDER, NULL);
  } else if ((type == SOTTO_MSG_PREKEY || type == SOTTO_MSG_SIGNAL) && strcmp(sender, c->acct->username) == 0) {
    /* From another device of our own account: a sent transcript. */
    snprintf(me, sizeof me, "%s", sender);
    rc = c->env_device == c->acct->device_id || c->env_device == 0
             ? unreadable(c, me, sid, SC_R_BAD_SENDER, NULL)
             : pairwise_dev(c, sid, me, c->env_device, 1, type, body, len, NULL);
  } else if ((type == SOTTO_MSG_PREKEY || type == SOTTO_MSG_SIGNAL) && c->env_device > 1) {
    rc = pairwise_dev(c, sid, sender, c->env_device, 0, type, body, len, NULL);
  } else if (type == SOTTO_MSG_PREKEY || type == SOTTO_MSG_SIGNAL) {
    /* Addresses are required on a session start (a sender that runs SPQR
     * writes them) and on a session that runs SPQR; a session from before
     * (docs/client.md, "Sessions without SPQR") may still bring messages
     * without them. */
    rc = pairwise_required(c, sender, type);
    if (rc < 0) return sc__store_error(c, rc);
    snprintf(me, sizeof me, "%s", c->acct->username);
#ifdef SOTTO_TEST_HOOKS
    /* test_identity.sh: mallory's client, posing as someone else. */
    if (getenv("SOTTO_TEST_ADDRESS_AS") && *getenv("SOTTO_TEST_ADDRESS_AS"))
      snprintf(me, sizeof me, "%s", getenv("SOTTO_TEST_ADDRESS_AS"));
#endif
    client_addresses(&ad, me, c->acct->device_id, sender, c->env_device, rc);
    rc = pairwise(c, sid, sender, &ad, type, body, len, 0);
  } else if (type == SOTTO_MSG_SENDERKEY && strcmp(sender, c->acct->username) == 0) {
    /* A group message from another device of our own account: only from a
     * device of our verified list, never from this device's id. */
    uint8_t key[SOTTO_PUBKEY_LEN];
    snprintf(me, sizeof me, "%s", sender);
    rc = sc__env_device(c) == sc__own_device(c)
             ? unreadable(c, me, sid, SC_R_BAD_SENDER, NULL)
             : device_gate(c, sid, me, sc__env_device(c), 1, key, NULL, NULL, 0, 1);
    if (rc == 1) rc = 0;
    else if (rc == 0) rc = group_msg(c, sid, me, body, len, NULL);
  } else if (type == SOTTO_MSG_SENDERKEY && c->env_device > 1) {
    rc = group_dev(c, sid, sender, c->env_device, body, len, NULL);
  } else if (type == SOTTO_MSG_SENDERKEY) {
    rc = group_msg(c, sid, sender, body, len, NULL);
  } else {
    rc = unreadable(c, sender, sid, SC_R_UNKNOWN_TYPE, NULL);
  }
  if (rc) return sc__store_error(c, rc);
  return inbox_flush_unshown(c);
}

/* ---- many unreadable envelopes, one line ------------------------------------
 * A sender (or a server) can queue thousands of envelopes nobody can
 * decrypt. Each is still marked seen and acknowledged, but only the first
 * UNREADABLE_SHOWN of each sender become a line; the rest are counted and
 * summed up by inbox_unreadable_summary. The table is bounded: senders past
 * UNREADABLE_SENDERS (the name is the server's word) are counted together. */
#define UNREADABLE_SHOWN 3

/* Counts one; 1 if it is to be shown on its own. */
static int unreadable_count(struct sc_client *c, const char *sender) {
  size_t i;
  for (i = 0; i < c->unread_senders; i++)
    if (strcmp(c->unread[i].sender, sender) == 0) return ++c->unread[i].n <= UNREADABLE_SHOWN;
  if (c->unread_senders == CORE_UNREADABLE_SENDERS) {
    c->unread_others++;
    return 0;
  }
  snprintf(c->unread[c->unread_senders].sender, sizeof c->unread[0].sender, "%s", sender);
  c->unread[c->unread_senders++].n = 1;
  return 1;
}

int inbox_unreadable_summary(struct sc_client *c) {
  size_t i;
  int rc = 0, any = c->unread_others > 0;
  for (i = 0; i < c->unread_senders; i++) any |= c->unread[i].n > UNREADABLE_SHOWN;
  if (any && (rc = sc__begin(c)) == 0) {
    for (i = 0; i < c->unread_senders && !rc; i++) {
      if (c->unread[i].n <= UNREADABLE_SHOWN) continue;
      rc = log_event(c, SC_EV_UNREADABLE_SUMMARY, SC_R_NONE, c->unread[i].sender, NULL, NULL, NULL,
                     c->unread[i].n - UNREADABLE_SHOWN, c->unread[i].n);
    }
    /* Senders past the table: peer "unknown", total 0. */
    if (!rc && c->unread_others)
      rc = log_event(c, SC_EV_UNREADABLE_SUMMARY, SC_R_NONE, "unknown", NULL, NULL, NULL, c->unread_others, 0);
    if (!rc) rc = account_save(c->st, c->acct);
    if (!rc) rc = store_commit(c->st);
    if (rc) store_rollback(c->st);
  }
  c->unread_senders = 0;
  c->unread_others = 0;
  if (rc) return sc__store_error(c, rc);
  return any ? inbox_flush_unshown(c) : 0;
}

/* ---- server notices ------------------------------------------------------------- */

int inbox_notice(struct sc_client *c, uint64_t nid, uint64_t ts, const uint8_t *body, size_t len) {
  struct sotto_srv_notice n;
  struct msg *m;
  uint64_t seq;
  int rc;
  if ((rc = msglog_seen(c->st, nid, &seq)) < 0) return sc__store_error(c, rc);
  if (rc == 1) return inbox_flush_unshown(c); /* a re-delivery: already logged */
  if (sotto__srv_parse_notice_body(body, len, &n) != 0) return 0; /* frames.c let only valid ones through */
  if ((m = calloc(1, sizeof *m)) == NULL) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  m->dir = MSG_EVENT;
  m->kind = n.kind == SOTTO_SRV_NOTICE_EXPIRED_SENT ? SC_EV_EXPIRED_SENT : SC_EV_EXPIRED_RECEIVED;
  memcpy(m->peer, n.peer.p, n.peer.len); /* a valid username or "" (others), checked by the parser */
  m->peer[n.peer.len] = 0;
  m->ts = ts ? ts : sc_now_ms();
  m->count = n.count;
  m->total = n.n_items;
  if (n.n_items) {
    /* The first expired envelope: its server id and when the server took it
     * (what the SEND answer said). */
    m->server_id = n.items[0].id;
    m->server_ts = n.items[0].timestamp_ms;
  }
  m->text = (char *)"";
  /* Each envelope of an EXPIRED_SENT notice names one text of ours to peer
   * (by the SEND answer's server id): it becomes "expired" and leaves the
   * outbox, so a later retry request does not resend it. */
  if ((rc = sc__begin(c)) == 0) {
    size_t i;
    for (i = 0; rc >= 0 && m->peer[0] && n.kind == SOTTO_SRV_NOTICE_EXPIRED_SENT && i < n.n_items; i++)
      rc = outbox_expired(c, m->peer, n.items[i].id);
    if (rc > 0) rc = 0; /* not (or no longer) in the outbox */
    if (rc == 0 && (rc = msglog_add(c->st, c->acct, m, 1)) == 0 && (rc = msglog_mark_seen(c->st, nid, 0)) == 0 &&
        (rc = account_save(c->st, c->acct)) == 0)
      rc = store_commit(c->st);
    if (rc) store_rollback(c->st);
  }
  free(m);
  if (rc) return sc__store_error(c, rc);
  return inbox_flush_unshown(c);
}

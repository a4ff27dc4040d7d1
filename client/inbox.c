/* SPDX-License-Identifier: Apache-2.0 */
/* inbox.c: what arrives (messaging.h). Every envelope is processed in one
 * store transaction: the session or sender key state, the message and the
 * "seen" mark for its server id are committed together, then the message
 * is printed, then (by the caller) acked. A re-delivered envelope finds its
 * "seen" mark and is only acked; a crash after the commit leaves the
 * message in the unshown list, printed by the next receive. */
#include <sodium.h>
#include <sotto/group.h>
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "contact.h"
#include "grp.h"
#include "messaging.h"

#define MAX_GROUPS_TRIED 256

void show_msg(struct cli *c, const struct msg *m) {
  if (c->json) {
    static const char *notice[] = {"notice", "identity_changed", "group", "unreadable"};
    cJSON *o = cli_event(m->dir == MSG_EVENT ? notice[m->code < 4 ? m->code : 0]
                         : m->dir == MSG_IN   ? "message"
                                              : "sent");
    if (m->dir == MSG_EVENT) {
      cJSON_AddStringToObject(o, "user", m->peer);
      if (m->group[0]) cJSON_AddStringToObject(o, "group", m->group);
      cJSON_AddStringToObject(o, "message", m->text);
    } else {
      cJSON_AddStringToObject(o, m->dir == MSG_IN ? "from" : "to", m->peer);
      if (m->group[0]) cJSON_AddStringToObject(o, "group", m->group);
      cJSON_AddStringToObject(o, "text", m->text);
      cJSON_AddNumberToObject(o, "timestamp", (double)m->ts);
      if (m->server_id) cJSON_AddNumberToObject(o, "id", (double)m->server_id);
    }
    cli_emit(c, o);
    return;
  }
  if (m->dir == MSG_EVENT) {
    fputs(m->code == NOTICE_IDENTITY_CHANGED || m->code == NOTICE_UNREADABLE ? "! " : "* ", stdout);
  } else {
    if (m->group[0]) printf("[%s] ", m->group);
    printf("%s%s: ", m->dir == MSG_OUT ? "to " : "", m->peer[0] ? m->peer : "group");
  }
  cli_print_text(stdout, m->text, m->text_len);
  fputc('\n', stdout);
  fflush(stdout);
}

int inbox_flush_unshown(struct cli *c) {
  uint64_t *seqs = calloc(MSGLOG_MAX_UNSHOWN, sizeof *seqs);
  size_t n, i;
  int rc;
  if (!seqs) return cli_error(c, "nomem", "out of memory");
  if ((rc = msglog_unshown(c->st, seqs, MSGLOG_MAX_UNSHOWN, &n)) != 0) goto out;
  for (i = 0; i < n; i++) {
    struct msg m;
    if ((rc = msglog_get(c->st, seqs[i], &m)) != 0) goto out;
    show_msg(c, &m);
    msg_clear(&m);
  }
  /* One write for the whole batch: printed, now mark them shown. */
  if (n && (rc = cli_begin(c)) == 0) {
    for (i = 0; i < n && !rc; i++) rc = msglog_mark_shown(c->st, seqs[i]);
    if (!rc) rc = store_commit(c->st);
    if (rc) store_rollback(c->st);
  }
out:
  free(seqs);
  return rc ? cli_store_error(c, rc) : CLI_OK;
}

/* Adds an event (inside the open transaction). */
static int add_event(struct cli *c, int code, const char *peer, const char *group, const char *text) {
  struct msg m;
  int rc;
  memset(&m, 0, sizeof m);
  m.dir = MSG_EVENT;
  m.code = (uint8_t)code;
  snprintf(m.peer, sizeof m.peer, "%s", peer);
  snprintf(m.group, sizeof m.group, "%s", group ? group : "");
  m.ts = cli_now_ms();
  m.text = (char *)text;
  m.text_len = strlen(text);
  rc = msglog_add(c->st, c->acct, &m, 1);
  return rc;
}

static int add_text(struct cli *c, const char *peer, const char *group, const struct content *ct, uint64_t sid) {
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
  m.text = t;
  m.text_len = ct->text_len;
  rc = msglog_add(c->st, c->acct, &m, 1);
  free(t);
  return rc;
}

static void join_members(char *out, size_t cap, const char list[][CLI_USER_MAX + 1], size_t n) {
  size_t i, off = 0;
  out[0] = 0;
  for (i = 0; i < n && off < cap; i++) {
    int w = snprintf(out + off, cap - off, "%s%s", i ? ", " : "", list[i]);
    if (w < 0) break;
    off += (size_t)w;
  }
}

static int process_skdm(struct cli *c, const struct grp *g, const char *sender, const struct content *ct) {
  struct sotto_sender_key *rec;
  int rc;
  if (ct->skdm_len == 0) return 0;
  if ((rc = grp_sk_load(c->st, g, sender, &rec)) < 0) return rc;
  if (sotto_sender_key_process(rec, ct->skdm, ct->skdm_len) == 0) rc = grp_sk_save(c->st, g, sender, rec);
  else rc = add_event(c, NOTICE_UNREADABLE, sender, g->name, "a group key from this member was malformed and ignored");
  sotto_sender_key_free(rec);
  return rc;
}

/* GROUP_UPDATE from sender (docs/client.md, "Group membership"). */
static int apply_update(struct cli *c, const char *sender, const struct content *ct) {
  const char *me = c->acct->username;
  struct grp *g = calloc(1, sizeof *g), *old = calloc(1, sizeof *old);
  char text[3000], list[2400];
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
    join_members(list, sizeof list, g->members, g->n);
    snprintf(text, sizeof text, "%s added you to the group %s (members: %s)", sender, g->name, list);
    rc = add_event(c, NOTICE_GROUP, sender, g->name, text);
    goto out;
  }
  /* Only a current member may change the group, and only forwards. */
  if (!grp_has(old->members, old->n, sender)) {
    snprintf(text, sizeof text, "ignored a change to %s from %s, who is not a member", old->name, sender);
    rc = add_event(c, NOTICE_GROUP, sender, old->name, text);
    goto out;
  }
  if (ct->epoch <= old->epoch) {
    rc = process_skdm(c, old, sender, ct);
    goto out;
  }
  if (!grp_has(ct->members, ct->n_members, me)) {
    snprintf(text, sizeof text, "%s removed you from the group %s", sender, old->name);
    if ((rc = grp_delete(c->st, old)) == 0) rc = add_event(c, NOTICE_GROUP, sender, old->name, text);
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
    snprintf(text, sizeof text, "%s removed %s from the group %s", sender, old->members[i], g->name);
    if ((rc = add_event(c, NOTICE_GROUP, sender, g->name, text))) goto out;
  }
  if (any_removed) {
    if ((rc = grp_sk_del(c->st, g, me))) goto out;
    g->n_dist = 0;
  }
  for (i = 0; i < g->n; i++) {
    if (grp_has(old->members, old->n, g->members[i])) continue;
    snprintf(text, sizeof text, "%s added %s to the group %s", sender, g->members[i], g->name);
    if ((rc = add_event(c, NOTICE_GROUP, sender, g->name, text))) goto out;
  }
  if ((rc = grp_save(c->st, g)) == 0) rc = process_skdm(c, g, sender, ct);
out:
  free(g);
  free(old);
  return rc;
}

static int apply_sender_key(struct cli *c, const char *sender, const struct content *ct) {
  struct grp *g = calloc(1, sizeof *g);
  int rc;
  if (!g) return STORE_E_IO;
  rc = grp_load(c->st, ct->gid, g);
  if (rc == 1 && grp_has(g->members, g->n, sender)) rc = process_skdm(c, g, sender, ct);
  else if (rc >= 0) rc = add_event(c, NOTICE_UNREADABLE, sender, NULL, "ignored a group key for a group we do not share");
  free(g);
  return rc;
}

static int unreadable(struct cli *c, const char *sender, uint64_t sid, const char *why) {
  char text[256];
  int rc;
  snprintf(text, sizeof text, "a message from %s could not be decrypted (%s) and was dropped", sender, why);
  if ((rc = cli_begin(c))) return rc;
  if ((rc = add_event(c, NOTICE_UNREADABLE, sender, NULL, text)) || (rc = msglog_mark_seen(c->st, sid, 0)) ||
      (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st)))
    store_rollback(c->st);
  return rc;
}

static int pairwise(struct cli *c, uint64_t sid, const char *sender, int type, const uint8_t *body, size_t len) {
  struct sotto_prekey_store ps;
  struct sotto_session *s = NULL;
  struct contact who;
  struct content *ct = calloc(1, sizeof *ct);
  uint8_t idk[SOTTO_PUBKEY_LEN], *pt = malloc(len ? len : 1);
  size_t n = 0;
  int rc, drc;

  if (!ct || !pt) {
    rc = STORE_E_IO;
    goto out;
  }
  if ((rc = cli_begin(c))) goto out;
  if ((rc = contact_load(c->st, sender, &who)) < 0 || (rc = session_load(c->st, sender, &s)) < 0) goto fail;
  account_prekey_store(c->st, &ps);
  drc = sotto_session_decrypt(s, &c->acct->id, &ps, type, body, len, pt, len, &n);
  if (drc == SOTTO_ERR_STORE) {
    rc = STORE_E_IO;
    goto fail;
  }
  if (drc) {
    store_rollback(c->st);
    rc = drc == SOTTO_ERR_DUPLICATE ? 0 : unreadable(c, sender, sid, sotto_strerror(drc));
    goto out;
  }
  if (sotto_session_remote_identity(s, idk) == 0 && contact_observe(&who, idk) == KEY_CHANGED) {
    char text[400];
    snprintf(text, sizeof text,
             "%s's identity key changed (a new safety number)%s. If they did not reinstall, someone may be in the "
             "middle: compare with 'sotto safety-number %s'",
             sender, contact_blocked(&who) ? "; you had verified them, so sending to them is blocked until you verify again" : "",
             sender);
    if ((rc = add_event(c, NOTICE_IDENTITY_CHANGED, sender, NULL, text))) goto fail;
  }
  if (content_decode(ct, pt, n) != 0) {
    rc = add_event(c, NOTICE_UNREADABLE, sender, NULL, "a message in an unknown format was dropped");
  } else {
    switch (ct->kind) {
      case CONTENT_TEXT:
        rc = add_text(c, sender, NULL, ct, sid);
        break;
      case CONTENT_GROUP_UPDATE:
        rc = apply_update(c, sender, ct);
        break;
      case CONTENT_SENDER_KEY:
        rc = apply_sender_key(c, sender, ct);
        break;
      default:
        rc = add_event(c, NOTICE_UNREADABLE, sender, NULL, "a message of an unexpected kind was dropped");
    }
  }
  if (rc || (rc = session_save(c->st, sender, s)) || (rc = contact_save(c->st, &who)) ||
      (rc = msglog_mark_seen(c->st, sid, 0)) || (rc = account_save(c->st, c->acct)) ||
      (rc = store_commit(c->st)))
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
static int group_msg(struct cli *c, uint64_t sid, const char *sender, const uint8_t *body, size_t len) {
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
  if ((rc = cli_begin(c))) goto out;
  if ((rc = grp_each(c->st, cand_cb, k)) < 0) goto fail;
  for (i = 0; i < k->n && !found; i++) {
    struct sotto_sender_key *rec;
    if ((rc = grp_load(c->st, k->gids[i], g)) < 0) goto fail;
    if (rc == 0) continue;
    if ((rc = grp_sk_load(c->st, g, sender, &rec)) < 0) goto fail;
    if (rc == 1) {
      int r = sotto_group_decrypt(rec, pt, len, &n, body, len);
      if (r == 0) {
        found = 1;
        rc = grp_sk_save(c->st, g, sender, rec);
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
      rc = unreadable(c, sender, sid,
                      drc == SOTTO_ERR_NO_SENDER_KEY ? "no group key from them: you are not in the group, or were removed"
                                                    : sotto_strerror(drc));
    }
    goto out;
  }
  if (content_decode(ct, pt, n) != 0 || ct->kind != CONTENT_GROUP_TEXT ||
      sodium_memcmp(ct->gid, g->gid, GROUP_ID_LEN) != 0)
    rc = add_event(c, NOTICE_UNREADABLE, sender, g->name, "a group message in an unknown format was dropped");
  else
    rc = add_text(c, sender, g->name, ct, sid);
  if (rc || (rc = msglog_mark_seen(c->st, sid, 0)) || (rc = account_save(c->st, c->acct)) ||
      (rc = store_commit(c->st)))
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

int inbox_process(struct cli *c, struct conn *k, uint64_t sid, const char *sender, int type, const uint8_t *body,
                  size_t len) {
  uint64_t seq;
  int rc;
  (void)k;
  if ((rc = msglog_seen(c->st, sid, &seq)) < 0) return cli_store_error(c, rc);
  if (rc == 1) return inbox_flush_unshown(c); /* a re-delivery: already committed */
  if (!cli_username_ok(sender)) {
    rc = unreadable(c, "unknown", sid, "invalid sender name");
  } else if (type == SOTTO_MSG_PREKEY || type == SOTTO_MSG_SIGNAL) {
    rc = pairwise(c, sid, sender, type, body, len);
  } else if (type == SOTTO_MSG_SENDERKEY) {
    rc = group_msg(c, sid, sender, body, len);
  } else {
    rc = unreadable(c, sender, sid, "unknown message type");
  }
  if (rc) return cli_store_error(c, rc);
  return inbox_flush_unshown(c);
}

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
#include "buf.h"
#include "contact.h"
#include "grp.h"
#include "messaging.h"

#define MAX_GROUPS_TRIED 256

void show_msg(struct cli *c, const struct msg *m) {
  if (c->json) {
    static const char *notice[] = {"notice", "identity_changed", "group", "unreadable", "held"};
    cJSON *o = cli_event(m->dir == MSG_EVENT ? notice[m->code < 5 ? m->code : 0]
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
    fputs(m->code == NOTICE_GROUP ? "* " : "! ", stdout);
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

static int unreadable_count(const char *sender);

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
static int unreadable_ex(struct cli *c, const char *sender, uint64_t sid, const char *why, int held) {
  char text[256], hn[HELD_NAME_LEN];
  int rc, show = unreadable_count(sender);
  snprintf(text, sizeof text, "a message from %s could not be decrypted (%s) and was dropped", sender, why);
  held_name(hn, sender, sid);
  if ((rc = cli_begin(c))) return rc;
  if ((show && (rc = add_event(c, NOTICE_UNREADABLE, sender, NULL, text))) || (rc = msglog_mark_seen(c->st, sid, 0)) ||
      (held && (rc = store_del(c->st, hn))) || (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st)))
    store_rollback(c->st);
  return rc;
}

static int unreadable(struct cli *c, const char *sender, uint64_t sid, const char *why) {
  return unreadable_ex(c, sender, sid, why, 0);
}

/* The library's is_trusted_identity, over the contact loaded in the
 * decrypting transaction. */
static int trusted_cb(void *ud, const uint8_t identity[32]) {
  return client_identity_check(ud, identity) == IDENTITY_TRUSTED;
}

/* Quarantine: the PreKey message is from a key the user has not accepted
 * under this name. It is decrypted once on a scratch session that is
 * thrown away (pre-keys kept, nothing of the contact's session touched) so
 * that only authentic messages are held and the user sees what it says,
 * then stored as it came and reported. Nothing it carries is acted on. */
static int quarantine(struct cli *c, uint64_t sid, const char *sender, const struct sotto_addresses *ad,
                      int type, const uint8_t *body, size_t len, int from_held) {
  struct prekey_ctx px;
  struct sotto_prekey_store ps;
  struct sotto_session *tmp = NULL;
  struct content *ct = calloc(1, sizeof *ct);
  struct contact who;
  struct buf_wr w;
  uint8_t idk[SOTTO_PUBKEY_LEN], *pt = malloc(len ? len : 1);
  char hn[HELD_NAME_LEN], *text = NULL;
  size_t n = 0, tcap = CLI_MAX_TEXT + 600;
  int rc, drc;

  buf_wr_init(&w, SOTTO_SRV_MAX_MESSAGE + 256);
  if (!ct || !pt || !(text = malloc(tcap)) || sotto_session_new(&tmp)) {
    rc = STORE_E_IO;
    goto out;
  }
  if (type != SOTTO_MSG_PREKEY) {
    rc = unreadable_ex(c, sender, sid, "it belongs to no session with the key you accepted", from_held);
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
    rc = unreadable_ex(c, sender, sid, sotto_strerror(drc ? drc : SOTTO_ERR_INTERNAL), from_held);
    goto out;
  }
  if ((rc = cli_begin(c))) goto out;
  if ((rc = contact_load(c->st, sender, &who)) < 0) goto fail;
  held_name(hn, sender, sid);
  if (!from_held && who.n_held >= CONTACT_MAX_HELD) {
    snprintf(text, tcap,
             "another message from a new, unverified key claiming to be %s was dropped (%d are held already): "
             "see 'sotto safety-number %s'",
             sender, CONTACT_MAX_HELD, sender);
    if ((rc = add_event(c, NOTICE_HELD, sender, NULL, text)) || (rc = msglog_mark_seen(c->st, sid, 0)) ||
        (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st)))
      goto fail;
    goto out;
  }
  buf_put_u8(&w, HELD_VERSION);
  buf_put_u8(&w, (uint8_t)type);
  buf_put_u64(&w, sid);
  buf_put(&w, idk, sizeof idk);
  buf_put_u32(&w, (uint32_t)len);
  buf_put(&w, body, len);
  if (buf_wr_ok(&w)) {
    rc = STORE_E_IO;
    goto fail;
  }
  if (content_decode(ct, pt, n) == 0 && ct->kind == CONTENT_TEXT)
    snprintf(text, tcap,
             "from a new, unverified key claiming to be %s (held; not from the %s you know): %.*s\n"
             "  compare 'sotto safety-number %s'; accept the key with 'sotto trust %s' to release it",
             sender, sender, (int)ct->text_len, (const char *)ct->text, sender, sender);
  else
    snprintf(text, tcap,
             "a %s from a new, unverified key claiming to be %s is held and NOT applied: compare 'sotto "
             "safety-number %s'; accept the key with 'sotto trust %s' to apply it",
             content_decode(ct, pt, n) == 0 ? "group change" : "message", sender, sender, sender);
  /* The pending key is what safety-number shows and trust/verify accept. */
  memcpy(who.pending_key, idk, sizeof idk);
  who.has_pending = 1;
  if (!from_held) who.n_held++;
  if ((rc = store_put(c->st, hn, w.p, w.len)) || (rc = contact_save(c->st, &who)) ||
      (!from_held && (rc = add_event(c, NOTICE_HELD, sender, NULL, text))) ||
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
  if (text) {
    sodium_memzero(text, tcap);
    free(text);
  }
  if (ct) {
    sodium_memzero(ct, sizeof *ct);
    free(ct);
  }
  buf_wr_free(&w);
  sotto_session_free(tmp);
  return rc;
}

/* from_held: a held message being released (its held record goes in the
 * same commit that applies it). */
/* ad: the addresses the message must carry (NULL for a held message: it was
 * checked against them when it was held). */
static int pairwise(struct cli *c, uint64_t sid, const char *sender, const struct sotto_addresses *ad,
                    int type, const uint8_t *body, size_t len, int from_held) {
  struct prekey_ctx px;
  struct sotto_prekey_store ps;
  struct sotto_session *s = NULL;
  struct contact who;
  struct content *ct = calloc(1, sizeof *ct);
  uint8_t idk[SOTTO_PUBKEY_LEN], *pt = malloc(len ? len : 1);
  char hn[HELD_NAME_LEN];
  size_t n = 0;
  int rc, drc;

  if (!ct || !pt) {
    rc = STORE_E_IO;
    goto out;
  }
  held_name(hn, sender, sid);
  if ((rc = cli_begin(c))) goto out;
  if ((rc = contact_load(c->st, sender, &who)) < 0 || (rc = session_load(c->st, sender, &s)) < 0) goto fail;
  memset(&px, 0, sizeof px);
  px.st = c->st;
  px.trusted = trusted_cb;
  px.tud = &who;
  account_prekey_store(&px, &ps);
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
    else rc = unreadable_ex(c, sender, sid, sotto_strerror(drc), from_held);
    goto out;
  }
  if (!who.has_key) {
    memcpy(who.key, idk, sizeof idk); /* trust on first use */
    who.has_key = 1;
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
    struct buf_rd r;
    buf_rd_init(&r, v + 2, 8);
    buf_get_u64(&r, &h->sids[h->n++]);
  }
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

int inbox_release_held(struct cli *c, const char *user, unsigned *released) {
  struct held_list *h = calloc(1, sizeof *h);
  char prefix[HELD_NAME_LEN], hn[HELD_NAME_LEN];
  size_t i;
  int rc;

  *released = 0;
  if (!h) return cli_error(c, "nomem", "out of memory");
  snprintf(prefix, sizeof prefix, "held/%s/", user);
  if ((rc = store_scan(c->st, prefix, held_cb, h)) != 0) goto out;
  qsort(h->sids, h->n, sizeof h->sids[0], cmp_u64); /* in the order the server queued them */
  for (i = 0; i < h->n && !rc; i++) {
    struct buf_rd r;
    uint8_t *v, type = 0, ver = 0, idk[SOTTO_PUBKEY_LEN];
    const uint8_t *body;
    uint32_t blen = 0;
    uint64_t sid = 0;
    size_t vn;
    held_name(hn, user, h->sids[i]);
    if ((rc = store_get(c->st, hn, &v, &vn)) <= 0) continue;
    buf_rd_init(&r, v, vn);
    buf_get_u8(&r, &ver);
    buf_get_u8(&r, &type);
    buf_get_u64(&r, &sid);
    buf_get(&r, idk, sizeof idk);
    buf_get_u32(&r, &blen);
    rc = buf_get_ptr(&r, &body, blen) || buf_rd_end(&r) || ver != HELD_VERSION
             ? STORE_E_CORRUPT
             : pairwise(c, h->sids[i], user, NULL, type, body, blen, 1);
    store_free_value(v, vn);
    if (!rc) (*released)++;
  }
  /* The contact's held count starts again from what is still held. */
  if (!rc) {
    struct contact who;
    h->n = 0;
    if ((rc = store_scan(c->st, prefix, held_cb, h)) == 0 && (rc = cli_begin(c)) == 0) {
      if ((rc = contact_load(c->st, user, &who)) >= 0) {
        who.n_held = (uint32_t)h->n;
        rc = contact_save(c->st, &who);
      }
      if (rc || (rc = store_commit(c->st))) store_rollback(c->st);
    }
  }
out:
  free(h);
  if (rc) return cli_store_error(c, rc);
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

/* Whether a message from sender must carry addresses: 1 for a session start
 * or when the stored session runs SPQR, 0 otherwise, or a store error. */
static int pairwise_required(struct cli *c, const char *sender, int type) {
  struct sotto_session *s = NULL;
  int rc;
  if (type == SOTTO_MSG_PREKEY) return 1;
  if ((rc = session_load(c->st, sender, &s)) < 0) return rc;
  rc = sotto_session_has_spqr(s);
  sotto_session_free(s);
  return rc;
}

int inbox_process(struct cli *c, struct conn *k, uint64_t sid, const char *sender, uint32_t sender_device,
                  int type, const uint8_t *body, size_t len) {
  struct sotto_addresses ad;
  char me[CLI_USER_MAX + 1]; /* a copy: a transaction may reload c->acct */
  uint64_t seq;
  int rc;
  (void)k;
  if ((rc = msglog_seen(c->st, sid, &seq)) < 0) return cli_store_error(c, rc);
  if (rc == 1) return inbox_flush_unshown(c); /* a re-delivery: already committed */
  if (!cli_username_ok(sender)) {
    rc = unreadable(c, "unknown", sid, "invalid sender name");
  } else if (type == SOTTO_MSG_PREKEY || type == SOTTO_MSG_SIGNAL) {
    /* Addresses are required on a session start (a sender that runs SPQR
     * writes them) and on a session that runs SPQR; a session from before
     * (docs/client.md, "Sessions without SPQR") may still bring messages
     * without them. */
    rc = pairwise_required(c, sender, type);
    if (rc < 0) return cli_store_error(c, rc);
    snprintf(me, sizeof me, "%s", c->acct->username);
#ifdef SOTTO_TEST_HOOKS
    /* test_identity.sh: mallory's client, posing as someone else. */
    if (getenv("SOTTO_TEST_ADDRESS_AS") && *getenv("SOTTO_TEST_ADDRESS_AS"))
      snprintf(me, sizeof me, "%s", getenv("SOTTO_TEST_ADDRESS_AS"));
#endif
    client_addresses(&ad, me, c->acct->device_id, sender, sender_device, rc);
    rc = pairwise(c, sid, sender, &ad, type, body, len, 0);
  } else if (type == SOTTO_MSG_SENDERKEY) {
    rc = group_msg(c, sid, sender, body, len);
  } else {
    rc = unreadable(c, sender, sid, "unknown message type");
  }
  if (rc) return cli_store_error(c, rc);
  return inbox_flush_unshown(c);
}

/* ---- many unreadable envelopes, one line ------------------------------------
 * A sender (or a server) can queue thousands of envelopes nobody can
 * decrypt. Each is still marked seen and acknowledged, but only the first
 * UNREADABLE_SHOWN of each sender become a line; the rest are counted and
 * summed up by inbox_unreadable_summary. The table is bounded: senders past
 * UNREADABLE_SENDERS (the name is the server's word) are counted together. */
#define UNREADABLE_SHOWN 3
#define UNREADABLE_SENDERS 32

static struct {
  char sender[CLI_USER_MAX + 1];
  unsigned long n;
} unread[UNREADABLE_SENDERS];
static size_t unread_senders;
static unsigned long unread_others;

/* Counts one; 1 if it is to be shown on its own. */
static int unreadable_count(const char *sender) {
  size_t i;
  for (i = 0; i < unread_senders; i++)
    if (strcmp(unread[i].sender, sender) == 0) return ++unread[i].n <= UNREADABLE_SHOWN;
  if (unread_senders == UNREADABLE_SENDERS) {
    unread_others++;
    return 0;
  }
  snprintf(unread[unread_senders].sender, sizeof unread[0].sender, "%s", sender);
  unread[unread_senders++].n = 1;
  return 1;
}

int inbox_unreadable_summary(struct cli *c) {
  char text[320];
  size_t i;
  int rc = 0, any = unread_others > 0;
  for (i = 0; i < unread_senders; i++) any |= unread[i].n > UNREADABLE_SHOWN;
  if (any && (rc = cli_begin(c)) == 0) {
    for (i = 0; i < unread_senders && !rc; i++) {
      if (unread[i].n <= UNREADABLE_SHOWN) continue;
      snprintf(text, sizeof text, "%lu more messages from %.32s could not be decrypted and were dropped (%lu in all)",
               unread[i].n - UNREADABLE_SHOWN, unread[i].sender, unread[i].n);
      rc = add_event(c, NOTICE_UNREADABLE, unread[i].sender, NULL, text);
    }
    if (!rc && unread_others) {
      snprintf(text, sizeof text, "%lu messages from other senders could not be decrypted and were dropped",
               unread_others);
      rc = add_event(c, NOTICE_UNREADABLE, "unknown", NULL, text);
    }
    if (!rc) rc = store_commit(c->st);
    if (rc) store_rollback(c->st);
  }
  unread_senders = 0;
  unread_others = 0;
  if (rc) return cli_store_error(c, rc);
  return any ? inbox_flush_unshown(c) : CLI_OK;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* convo.c: disappearing messages, replies, reactions, edits, deletes for
 * everyone, manual deletion, message requests and blocking (convo.h,
 * docs/client.md "Conversations").
 *
 * Rules, enforced by the sender's client and again by every receiver:
 *  - a message is named by (author, content timestamp);
 *  - only the author edits (within SC_EDIT_WINDOW_S of the original's
 *    timestamp, measured with the edit's own timestamp) or deletes for
 *    everyone (SC_DELETE_WINDOW_S); anything else is refused and reported
 *    (SC_EV_CONVO_REFUSED), the message untouched;
 *  - one reaction per person per message; a new one replaces it, "" removes it;
 *  - a disappearing message is deleted SC timer seconds after it was sent
 *    (our own: from the send) or received (theirs: from the moment this
 *    device stored it), each device on its own clock. The timer value
 *    travels with every message (TEXT_EX), so a device that missed the
 *    TIMER message still deletes on time.
 * Deleting a row deletes the record (SQLite's secure_delete overwrites the
 * freed bytes, store.c) and everything naming it (outbox, unshown list). */
#include "attach.h"
#include "convo.h"

#include <sodium.h>
#include <sotto/devlist.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "devices.h"
#include "grp.h"
#include "messaging.h"
#include "outbox.h"
#include "record.h"

#define CONSENT_REQUEST 1
#define CONSENT_BLOCKED 2

/* The conversation clock (ms): SOTTO_TEST_NOW (seconds) in the test build,
 * so the end-to-end tests can step past the edit and delete windows. */
static uint64_t now_ms(void) {
#ifdef SOTTO_TEST_HOOKS
  const char *t = getenv("SOTTO_TEST_NOW");
  if (t && *t) return strtoull(t, NULL, 10) * 1000 + sc_now_ms() % 1000;
#endif
  return sc_now_ms();
}

/* Test build only: the sender skips its own checks (a modified client that
 * sends forged edits and deletes: the receiver must refuse them). */
static int force(void) {
#ifdef SOTTO_TEST_HOOKS
  const char *t = getenv("SOTTO_TEST_CONVO_FORCE");
  return t && *t;
#else
  return 0;
#endif
}

/* Valid UTF-8 without NUL; emoji: no control characters at all. */
static int utf8_check(const char *s, size_t n, int emoji) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, k, len;
  while (i < n) {
    uint32_t cp, min;
    if (p[i] == 0 || (emoji && (p[i] < 0x20 || p[i] == 0x7f))) return 0;
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    if (p[i] >= 0xC2 && p[i] <= 0xDF) len = 2, cp = p[i] & 0x1F, min = 0x80;
    else if (p[i] >= 0xE0 && p[i] <= 0xEF) len = 3, cp = p[i] & 0x0F, min = 0x800;
    else if (p[i] >= 0xF0 && p[i] <= 0xF4) len = 4, cp = p[i] & 0x07, min = 0x10000;
    else return 0;
    for (k = 1; k < len; k++) {
      if (i + k >= n || (p[i + k] & 0xC0) != 0x80) return 0;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    i += len;
  }
  return 1;
}

static int accept_invites(struct sc_client *c, const char *user);
static int release_held(struct sc_client *c, const char *user);

/* ---- durations -------------------------------------------------------------------- */

size_t sc_duration_text(char *buf, size_t cap, uint32_t s) {
  static const struct {
    uint32_t secs;
    const char *name;
  } units[] = {{7 * 86400, "week"}, {86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}};
  size_t i;
  int n;
  if (s == 0) {
    n = snprintf(buf, cap, "off");
    return n < 0 ? 0 : (size_t)n;
  }
  for (i = 0; i < sizeof units / sizeof units[0]; i++)
    if (s % units[i].secs == 0) break;
  n = snprintf(buf, cap, "%u %s%s", s / units[i].secs, units[i].name, s / units[i].secs == 1 ? "" : "s");
  return n < 0 ? 0 : (size_t)n;
}

int sc_duration_parse(uint32_t *out, const char *s) {
  unsigned long long v = 0, mul = 1;
  size_t i = 0;
  *out = 0;
  if (!s || !*s) return SC_ERR_ARG;
  if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0) return 0;
  for (; s[i] >= '0' && s[i] <= '9'; i++) {
    v = v * 10 + (unsigned)(s[i] - '0');
    if (v > SC_TIMER_MAX_S) return SC_ERR_ARG;
  }
  if (i == 0) return SC_ERR_ARG;
  if (s[i]) {
    if (s[i + 1]) return SC_ERR_ARG;
    switch (s[i]) {
      case 's': mul = 1; break;
      case 'm': mul = 60; break;
      case 'h': mul = 3600; break;
      case 'd': mul = 86400; break;
      case 'w': mul = 7 * 86400; break;
      default: return SC_ERR_ARG;
    }
  }
  if (v == 0 || v * mul > SC_TIMER_MAX_S) return SC_ERR_ARG;
  *out = (uint32_t)(v * mul);
  return 0;
}

/* ---- records ---------------------------------------------------------------------- */

/* The record of a conversation's timer: "timer/u/PEER", or "timer/g/GIDHEX"
 * for a group (by id: the group's name is local to each member). */
static void timer_name(char rn[64], const char *peer, const uint8_t *gid) {
  static const char hx[] = "0123456789abcdef";
  size_t i, k;
  if (!gid) {
    snprintf(rn, 64, "timer/u/%s", peer);
    return;
  }
  k = (size_t)snprintf(rn, 64, "timer/g/");
  for (i = 0; i < GROUP_ID_LEN; i++) {
    rn[k++] = hx[gid[i] >> 4];
    rn[k++] = hx[gid[i] & 15];
  }
  rn[k] = 0;
}

static int timer_load_g(struct store *st, const char *peer, const uint8_t *gid, uint32_t *secs) {
  char rn[64];
  uint8_t *v;
  size_t n;
  int rc;
  *secs = 0;
  timer_name(rn, peer, gid);
  if ((rc = store_get(st, rn, &v, &n)) <= 0) return rc;
  if (n == 4) *secs = (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 | (uint32_t)v[2] << 8 | v[3];
  store_free_value(v, n);
  return n == 4 && *secs <= SC_TIMER_MAX_S ? 0 : STORE_E_CORRUPT;
}

static int timer_save_g(struct store *st, const char *peer, const uint8_t *gid, uint32_t secs) {
  char rn[64];
  uint8_t b[4] = {(uint8_t)(secs >> 24), (uint8_t)(secs >> 16), (uint8_t)(secs >> 8), (uint8_t)secs};
  timer_name(rn, peer, gid);
  return secs ? store_put(st, rn, b, sizeof b) : store_del(st, rn);
}

static int timer_load(struct store *st, const char *peer, uint32_t *secs) {
  return timer_load_g(st, peer, NULL, secs);
}

static int consent_load(struct store *st, const char *user) {
  char rn[64];
  uint8_t *v;
  size_t n;
  int rc;
  snprintf(rn, sizeof rn, "consent/%s", user);
  if ((rc = store_get(st, rn, &v, &n)) <= 0) return rc;
  rc = n == 1 && (v[0] == CONSENT_REQUEST || v[0] == CONSENT_BLOCKED) ? v[0] : STORE_E_CORRUPT;
  store_free_value(v, n);
  return rc;
}

static int consent_save(struct store *st, const char *user, int state) {
  char rn[64];
  uint8_t b = (uint8_t)state;
  snprintf(rn, sizeof rn, "consent/%s", user);
  return state ? store_put(st, rn, &b, 1) : store_del(st, rn);
}

int convo_consent_get(struct sc_client *c, const char *user) { return consent_load(c->st, user); }

static void note_expiry(struct sc_client *c, uint64_t at) {
  if (at && (c->next_expire_ms == 0 || at < c->next_expire_ms)) c->next_expire_ms = at;
}

/* Logs an event row of a conversation (inside the transaction; shown by
 * the next inbox_flush_unshown). It disappears with the conversation's
 * messages when a timer is on. */
static int log_ev(struct sc_client *c, int kind, int reason, const char *peer, const char *group, const char *detail,
                  uint64_t count, const char *ref_author, uint64_t ref_ts, uint32_t timer_s, int unshown) {
  struct msg *m = calloc(1, sizeof *m);
  int rc;
  if (!m) return STORE_E_IO;
  m->dir = MSG_EVENT;
  m->kind = (uint8_t)kind;
  m->reason = (uint8_t)reason;
  snprintf(m->peer, sizeof m->peer, "%s", peer ? peer : "");
  snprintf(m->group, sizeof m->group, "%s", group ? group : "");
  snprintf(m->detail, sizeof m->detail, "%s", detail ? detail : "");
  snprintf(m->ref_author, sizeof m->ref_author, "%s", ref_author ? ref_author : "");
  m->ref_ts = ref_ts;
  m->ts = sc_now_ms();
  m->count = count;
  if (timer_s && kind != SC_EV_TIMER_SET) {
    m->timer_s = timer_s;
    m->expire_at = sc_now_ms() + (uint64_t)timer_s * 1000;
  }
  m->text = (char *)"";
  rc = msglog_add(c->st, c->acct, m, unshown);
  if (rc == 0) note_expiry(c, m->expire_at);
  free(m);
  return rc;
}

/* ---- finding a message -------------------------------------------------------------- */

struct find {
  const char *peer, *group, *author, *me;
  uint64_t ts;
  struct msg *m;
  int found, other; /* other: a message with that timestamp by someone else */
};

static int msg_seq(const char *name, uint64_t *seq) {
  char *end;
  if (strncmp(name, "msg/", 4) != 0 || name[4] < '0' || name[4] > '9') return -1;
  *seq = strtoull(name + 4, &end, 10);
  return *end ? -1 : 0;
}

static int in_conv(const struct msg *m, const char *peer, const char *group) {
  if (group) return strcmp(m->group, group) == 0;
  return !m->group[0] && strcmp(m->peer, peer) == 0;
}

static int find_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct find *f = ud;
  uint64_t seq;
  const char *author;
  if (msg_seq(name, &seq)) return 0;
  if (msglog_decode(f->m, v, len) != 0) return 0;
  f->m->seq = seq;
  if (f->m->dir != MSG_EVENT && f->m->ts == f->ts && in_conv(f->m, f->peer, f->group)) {
    author = f->m->dir == MSG_OUT ? f->me : f->m->peer;
    if (!f->author || strcmp(author, f->author) == 0) {
      f->found = 1;
      return 1; /* stop: f->m holds it */
    }
    f->other = 1;
  }
  msg_clear(f->m);
  return 0;
}

/* 1 and *m (msg_clear it) when the message (author, ts) of the conversation
 * is here (author NULL: anyone's), 0 if not (*other says whether someone
 * else's has that timestamp), or STORE_E_*. */
static int find_msg(struct sc_client *c, const char *peer, const char *group, const char *author, uint64_t ts,
                    struct msg *m, int *other) {
  struct find f;
  int rc;
  memset(&f, 0, sizeof f);
  f.peer = peer;
  f.group = group;
  f.author = author;
  f.me = c->acct->username;
  f.ts = ts;
  f.m = m;
  memset(m, 0, sizeof *m);
  rc = store_scan(c->st, "msg/", find_cb, &f);
  if (other) *other = f.other;
  if (rc < 0) return rc;
  return f.found;
}

/* Deletes row m (inside a transaction) and what names it. */
static int delete_row(struct sc_client *c, const struct msg *m) {
  char rn[48];
  int rc;
  snprintf(rn, sizeof rn, "msg/%llu", (unsigned long long)m->seq);
  if ((rc = store_del(c->st, rn)) != 0 || (rc = msglog_mark_shown(c->st, m->seq)) != 0 ||
      (rc = outbox_forget_in(c, m)) != 0)
    return rc;
  return outbox_forget(c, m);
}

/* Replaces the text of row m (n bytes of t; n 0: a tombstone). */
static int set_text(struct msg *m, const uint8_t *t, size_t n) {
  char *nt = malloc(n + 1);
  if (!nt) return STORE_E_IO;
  memcpy(nt, t, n);
  nt[n] = 0;
  if (m->text) store_free_value((uint8_t *)m->text, m->text_len + 1);
  m->text = nt;
  m->text_len = n;
  return 0;
}

static void set_reaction(struct msg *m, const char *user, const char *emoji) {
  size_t i;
  for (i = 0; i < m->n_reactions; i++)
    if (strcmp(m->reactions[i].user, user) == 0) break;
  if (!emoji[0]) {
    if (i < m->n_reactions) {
      memmove(&m->reactions[i], &m->reactions[i + 1], (m->n_reactions - i - 1) * sizeof m->reactions[0]);
      m->n_reactions--;
    }
    return;
  }
  if (i == m->n_reactions) {
    if (m->n_reactions == MSG_MAX_REACTIONS) return; /* more people than a group holds: the rest are not kept */
    m->n_reactions++;
    snprintf(m->reactions[i].user, sizeof m->reactions[i].user, "%s", user);
  }
  snprintf(m->reactions[i].emoji, sizeof m->reactions[i].emoji, "%s", emoji);
}

/* ---- what arrives -------------------------------------------------------------------- */

int convo_consent_in(struct sc_client *c, const char *sender, int stranger) {
  int rc = consent_load(c->st, sender);
  if (rc != 0 || !stranger) return rc;
  /* Its messages carry the request mark (MSGF_REQUEST): no extra row. */
  if ((rc = consent_save(c->st, sender, CONSENT_REQUEST)) != 0) return rc;
  return CONSENT_REQUEST;
}

static int text_in(struct sc_client *c, const char *sender, const char *group, const struct content *ct, uint64_t sid,
                   int consent) {
  struct msg *m;
  int rc, dup = 0;
  /* Dedup of a resent copy; the delivery receipt is owed only to a
   * contact: a request gets none until accepted. */
  if (!group && (rc = consent == 0 ? outbox_arrived(c, sender, ct, &dup) : outbox_seen_text(c, sender, ct, &dup)))
    return rc;
  if (dup) return 0;
  if (!(m = calloc(1, sizeof *m))) return STORE_E_IO;
  m->dir = MSG_IN;
  snprintf(m->peer, sizeof m->peer, "%s", sender);
  snprintf(m->group, sizeof m->group, "%s", group ? group : "");
  m->ts = ct->ts;
  m->server_id = sid;
  m->device = c->env_device;
  m->server_ts = c->env_server_ts;
  if (consent == CONSENT_REQUEST) m->mflags |= MSGF_REQUEST;
  if (ct->kind == CONTENT_TEXT_EX) {
    snprintf(m->ref_author, sizeof m->ref_author, "%s", ct->ref_author);
    m->ref_ts = ct->ref_ts;
    m->timer_s = ct->timer_s;
    if (ct->timer_s) m->expire_at = sc_now_ms() + (uint64_t)ct->timer_s * 1000; /* from receipt */
  }
  if ((rc = set_text(m, ct->text, ct->text_len)) == 0) {
    rc = msglog_add(c->st, c->acct, m, 1);
    if (rc == 0) note_expiry(c, m->expire_at);
  }
  msg_clear(m);
  free(m);
  return rc;
}

static int refuse(struct sc_client *c, const char *sender, const char *group, const struct content *ct, int reason) {
  const char *what = ct->kind == CONTENT_EDIT ? "edit" : ct->kind == CONTENT_DELETE ? "delete" : "reaction";
  return log_ev(c, SC_EV_CONVO_REFUSED, reason, sender, group, what, 0,
                ct->kind == CONTENT_REACTION ? ct->ref_author : sender, ct->ref_ts, ct->timer_s, 1);
}

/* A reaction, edit or delete by actor in the conversation with conv (or in
 * group), checked as every device checks it: the message must be there and
 * (edit, delete) the actor's own, within its window. own: actor is us, from
 * another of our devices (logged as ours; a delete also drops the message
 * from our outbox). */
static int change_apply(struct sc_client *c, const char *conv, const char *actor, const char *group,
                        const struct content *ct, int own) {
  struct msg *m;
  const char *author = ct->kind == CONTENT_REACTION ? ct->ref_author : actor;
  uint64_t window = ct->kind == CONTENT_EDIT ? SC_EDIT_WINDOW_S : SC_DELETE_WINDOW_S;
  int rc, other = 0, ev;
  if (ct->kind == CONTENT_REACTION && !utf8_check(ct->emoji, strlen(ct->emoji), 1))
    return refuse(c, actor, group, ct, SC_R_BAD_EMOJI);
  if (!(m = calloc(1, sizeof *m))) return STORE_E_IO;
  if ((rc = find_msg(c, conv, group, author, ct->ref_ts, m, &other)) < 0) goto out;
  if (rc == 0 || (m->mflags & MSGF_DELETED)) {
    /* An edit or delete naming a message that is here but not theirs is a forgery. */
    rc = refuse(c, actor, group, ct, rc == 0 && other && ct->kind != CONTENT_REACTION ? SC_R_NOT_AUTHOR
                                                                                      : SC_R_UNKNOWN_MESSAGE);
    goto out;
  }
  /* the same window on the device that sent it and at every recipient */
  if (ct->kind != CONTENT_REACTION && (ct->ts < ct->ref_ts || ct->ts - ct->ref_ts > window * 1000)) {
    rc = refuse(c, actor, group, ct, SC_R_OUT_OF_WINDOW);
    goto out;
  }
  if (ct->kind == CONTENT_REACTION) {
    set_reaction(m, actor, ct->emoji);
    ev = SC_EV_REACTION;
  } else if (ct->kind == CONTENT_EDIT) {
    if ((rc = set_text(m, ct->text, ct->text_len)) != 0) goto out;
    m->mflags |= MSGF_EDITED;
    ev = SC_EV_EDITED;
  } else {
    if ((rc = set_text(m, (const uint8_t *)"", 0)) != 0) goto out;
    m->mflags |= MSGF_DELETED;
    m->n_reactions = 0;
    if (own && (rc = outbox_forget(c, m)) != 0) goto out; /* never resent from here either */
    ev = SC_EV_DELETED;
  }
  if ((rc = msglog_update(c->st, m)) == 0)
    rc = log_ev(c, ev, own ? SC_R_BY_US : SC_R_NONE, own && !group ? conv : actor, group,
                ct->kind == CONTENT_REACTION ? ct->emoji : NULL, 0, author, ct->ref_ts, m->timer_s, 1);
out:
  msg_clear(m);
  free(m);
  return rc;
}

static int change_in(struct sc_client *c, const char *sender, const char *group, const struct content *ct) {
  return change_apply(c, sender, sender, group, ct, 0);
}

int convo_apply(struct sc_client *c, const char *sender, const char *group, const struct content *ct, uint64_t sid,
                int consent) {
  int rc;
  if (consent == CONSENT_BLOCKED) return 0; /* dropped */
  /* A group's conversation kinds travel only inside its sender-key
   * messages, a 1:1's only pairwise. */
  if (CONTENT_IS_CONVO(ct->kind) && (ct->in_group != 0) != (group != NULL)) return 0;
  switch (ct->kind) {
    case CONTENT_TEXT:
    case CONTENT_GROUP_TEXT:
    case CONTENT_TEXT_EX:
      return text_in(c, sender, group, ct, sid, consent);
    case CONTENT_TIMER:
      /* A group's: the sender is a member (only a member's chain decrypts,
       * inbox.c); every member's device keeps and enforces it. */
      if ((rc = timer_save_g(c->st, sender, group ? ct->gid : NULL, ct->timer_s)) != 0) return rc;
      return log_ev(c, SC_EV_TIMER_SET, SC_R_NONE, sender, group, NULL, ct->timer_s, NULL, 0, 0, 1);
    case CONTENT_REACTION:
    case CONTENT_EDIT:
    case CONTENT_DELETE:
      return change_in(c, sender, group, ct);
    default:
      return 0;
  }
}

/* ---- what our other devices did (docs/multi-device.md) --------------------------------- */

/* What another device of ours did in the conversation with peer (or in
 * group): applied here as ours, under the rules every device applies; one
 * that fails them is logged as refused, as ours (peer: our own name). */
int convo_apply_own(struct sc_client *c, const char *peer, const char *group, const struct content *ct) {
  char me[SC_USER_MAX + 1];
  int rc;
  snprintf(me, sizeof me, "%s", c->acct->username);
  /* a 1:1's kinds come in a transcript, a group's in its SenderKeyMessage */
  if (!CONTENT_IS_CONVO(ct->kind) || (ct->in_group != 0) != (group != NULL)) return 0;
  if (!group && (rc = convo_accept_here(c, peer)) != 0) return rc;
  if (ct->kind == CONTENT_TIMER) {
    /* every device of ours keeps and enforces it */
    if ((rc = timer_save_g(c->st, peer, group ? ct->gid : NULL, ct->timer_s)) != 0) return rc;
    return log_ev(c, SC_EV_TIMER_SET, SC_R_BY_US, group ? me : peer, group, NULL, ct->timer_s, NULL, 0, 0, 1);
  }
  if (ct->kind == CONTENT_TEXT_EX) return 0; /* texts: inbox.c logs them */
  return change_apply(c, peer, me, group, ct, 1);
}

int convo_accept_here(struct sc_client *c, const char *user) {
  int rc = consent_load(c->st, user);
  if (rc != CONSENT_REQUEST) return rc < 0 ? rc : 0;
  if ((rc = consent_save(c->st, user, 0)) != 0 || (rc = accept_invites(c, user)) != 0) return rc;
  return release_held(c, user);
}

void convo_resend_content(struct content *ct, const struct msg *m) {
  if (!m->timer_s && !m->ref_author[0]) return;
  ct->kind = CONTENT_TEXT_EX;
  ct->timer_s = m->timer_s;
  snprintf(ct->ref_author, sizeof ct->ref_author, "%s", m->ref_author);
  ct->ref_ts = m->ref_author[0] ? m->ref_ts : 0;
}

/* ---- sending ------------------------------------------------------------------------- */

int convo_before_send(struct sc_client *c, const char *user) {
  int rc = consent_load(c->st, user);
  if (rc < 0) return sc__store_error(c, rc);
  if (rc == CONSENT_BLOCKED)
    return sc__fail(c, SC_ERR_BLOCKED, "you blocked %s: nothing was sent ('sotto unblock %s' first)", user, user);
  if (rc == CONSENT_REQUEST) {
    /* Answering a request accepts it. */
    if ((rc = sc__begin(c)) || (rc = consent_save(c->st, user, 0)) || (rc = accept_invites(c, user)) ||
        (rc = release_held(c, user)) || (rc = store_commit(c->st))) {
      store_rollback(c->st);
      return sc__store_error(c, rc);
    }
  }
  return 0;
}

int convo_prepare_out(struct sc_client *c, const char *user, struct content *ct) {
  uint32_t t;
  int rc = timer_load(c->st, user, &t);
  if (rc) return sc__store_error(c, rc);
  if (t) {
    ct->kind = CONTENT_TEXT_EX;
    ct->timer_s = t;
  }
  if (c->reply_author[0]) {
    ct->kind = CONTENT_TEXT_EX;
    snprintf(ct->ref_author, sizeof ct->ref_author, "%s", c->reply_author);
    ct->ref_ts = c->reply_ts;
  }
  return 0;
}

int convo_prepare_group(struct sc_client *c, const uint8_t gid[GROUP_ID_LEN], struct content *ct) {
  uint32_t t;
  int rc = timer_load_g(c->st, NULL, gid, &t);
  if (rc) return sc__store_error(c, rc);
  if (t) {
    ct->kind = CONTENT_TEXT_EX;
    ct->timer_s = t;
  }
  if (c->reply_author[0]) {
    ct->kind = CONTENT_TEXT_EX;
    snprintf(ct->ref_author, sizeof ct->ref_author, "%s", c->reply_author);
    ct->ref_ts = c->reply_ts;
  }
  if (ct->kind == CONTENT_TEXT_EX) ct->in_group = 1;
  return 0;
}

void convo_out_row(struct sc_client *c, struct msg *m, const struct content *ct) {
  if (ct->kind != CONTENT_TEXT_EX) return;
  m->timer_s = ct->timer_s;
  if (ct->timer_s) {
    m->expire_at = sc_now_ms() + (uint64_t)ct->timer_s * 1000; /* ours: from the send */
    note_expiry(c, m->expire_at);
  }
  snprintf(m->ref_author, sizeof m->ref_author, "%s", ct->ref_author);
  m->ref_ts = ct->ref_ts;
}

/* ---- the queue of changes ------------------------------------------------------------ */

/* A server that could not be reached: the change waits in the queue. */
static int unreachable(int rc) {
  return rc == SC_ERR_UNREACHABLE || rc == SC_ERR_TIMEOUT || rc == SC_ERR_CONNECTION_LOST ||
         rc == SC_ERR_SERVER_BUSY || rc == SC_ERR_SHUTDOWN;
}

/* The index "cq": u32 bytes queued | n x u64 seq, oldest first (a flush
 * reads it and never scans the store). */
struct cq_idx {
  uint32_t bytes;
  size_t n;
  uint64_t seqs[CQ_MAX];
};

static int cq_load(struct store *st, struct cq_idx *q) {
  struct rec_rd r;
  uint8_t *v;
  size_t n, i;
  int rc;
  memset(q, 0, sizeof *q);
  if ((rc = store_get(st, "cq", &v, &n)) <= 0) return rc;
  rc = 0;
  if (n < 4 || (n - 4) % 8 || (n - 4) / 8 > CQ_MAX) {
    rc = STORE_E_CORRUPT;
  } else {
    rec_rd_init(&r, v, n);
    rec_get_u32(&r, &q->bytes);
    q->n = (n - 4) / 8;
    for (i = 0; i < q->n; i++) rec_get_u64(&r, &q->seqs[i]);
    if (rec_rd_end(&r) || q->bytes > CQ_MAX_BYTES) rc = STORE_E_CORRUPT;
  }
  store_free_value(v, n);
  return rc;
}

static int cq_save(struct store *st, const struct cq_idx *q) {
  uint8_t b[4 + 8 * CQ_MAX];
  size_t i, k;
  if (q->n == 0) return store_del(st, "cq");
  b[0] = (uint8_t)(q->bytes >> 24), b[1] = (uint8_t)(q->bytes >> 16), b[2] = (uint8_t)(q->bytes >> 8);
  b[3] = (uint8_t)q->bytes;
  for (i = 0, k = 4; i < q->n; i++)
    for (int j = 7; j >= 0; j--) b[k++] = (uint8_t)(q->seqs[i] >> (8 * j));
  return store_put(st, "cq", b, 4 + 8 * q->n);
}

static void cq_name(char rn[48], uint64_t seq) { snprintf(rn, 48, "cq/%020llu", (unsigned long long)seq); }

/* Queues ct for conv (a username or "#GROUP"), in its own transaction:
 * "cq/SEQ" = str16 conv | the encoded content. At most CQ_MAX changes and
 * CQ_MAX_BYTES wait (SC_ERR_OUTBOX_FULL beyond: nothing was queued). */
int convo_queue(struct sc_client *c, const char *conv, const struct content *ct) {
  struct cq_idx *q = calloc(1, sizeof *q);
  struct rec_wr w;
  char rn[48];
  uint64_t seq;
  int rc;
  if (!q) return sc__fail(c, SC_ERR_NOMEM, "out of memory: nothing was queued");
  rec_wr_init(&w, SC_MAX_TEXT + 1024);
  rec_put_str16(&w, conv, strlen(conv));
  if (content_encode(&w, ct) != 0) {
    rc = sc__fail(c, SC_ERR_TOO_LARGE, "the change is too large to queue");
    goto out;
  }
  if ((rc = sc__begin(c)) != 0) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  if ((rc = cq_load(c->st, q)) != 0) {
    store_rollback(c->st);
    rc = sc__store_error(c, rc);
    goto out;
  }
  if (q->n >= CQ_MAX || q->bytes + w.len > CQ_MAX_BYTES) {
    store_rollback(c->st);
    rc = sc__fail(c, SC_ERR_OUTBOX_FULL,
                  "the server is unreachable and %zu changes wait already: nothing was queued", q->n);
    goto out;
  }
  seq = q->n ? q->seqs[q->n - 1] + 1 : 1;
  q->seqs[q->n++] = seq;
  q->bytes += (uint32_t)w.len;
  cq_name(rn, seq);
  if ((rc = store_put(c->st, rn, w.p, w.len)) != 0 || (rc = cq_save(c->st, q)) != 0 ||
      (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    rc = sc__store_error(c, rc);
    goto out;
  }
  c->err = 0;
  c->errdetail[0] = 0;
  c->change_queued = 1;
  c->flush_wanted = 1;
  rc = 0;
out:
  rec_wr_free(&w);
  free(q);
  return rc;
}

/* Deletes the queued change seq of len bytes (own transaction). */
static int cq_drop(struct sc_client *c, uint64_t seq, size_t len) {
  struct cq_idx *q = calloc(1, sizeof *q);
  char rn[48];
  size_t i;
  int rc;
  if (!q) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  cq_name(rn, seq);
  if ((rc = sc__begin(c)) == 0 && (rc = cq_load(c->st, q)) == 0) {
    for (i = 0; i < q->n && q->seqs[i] != seq; i++) {
    }
    if (i < q->n) {
      memmove(&q->seqs[i], &q->seqs[i + 1], (q->n - i - 1) * sizeof q->seqs[0]);
      q->n--;
      q->bytes = q->bytes >= len ? q->bytes - (uint32_t)len : 0;
    }
    if ((rc = store_del(c->st, rn)) == 0 && (rc = cq_save(c->st, q)) == 0) rc = store_commit(c->st);
  }
  if (rc) store_rollback(c->st);
  free(q);
  return rc ? sc__store_error(c, rc) : 0;
}

/* ---- changes that failed for a lasting reason --------------------------------
 *
 * A queued change whose send fails for a reason that will not pass by
 * itself (not the connection, not a full queue) is kept, not dropped:
 * "cqf/SEQ" = u32 the error (-SC_ERR_*) | str16 the detail | the queued
 * record ("cq/SEQ"'s bytes). sc_failed_changes lists them (sotto outbox),
 * sc_failed_change_retry queues one again, sc_failed_change_discard drops
 * it. At most CQF_MAX are kept; past that a failed change is dropped as
 * before (its SC_EV_NOT_DELIVERED event says so either way). */
#define CQF_MAX 128

static void cqf_name(char rn[48], uint64_t seq) { snprintf(rn, 48, "cqf/%020llu", (unsigned long long)seq); }

static int cqf_count_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  (void)name, (void)v, (void)len;
  ++*(size_t *)ud;
  return 0;
}

/* Moves queued change seq (its record v, n bytes) to the failed ones, in
 * one transaction. 1 when kept, 0 when dropped (CQF_MAX kept already), or
 * a recorded failure. */
static int cq_fail(struct sc_client *c, uint64_t seq, const uint8_t *v, size_t n, int err, const char *detail) {
  struct cq_idx *q = calloc(1, sizeof *q);
  struct rec_wr w;
  char rn[48], fn[48];
  size_t i, kept = 0, dl = strlen(detail);
  int rc;
  if (!q) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  if (dl > 255) dl = 255;
  rec_wr_init(&w, n + dl + 8);
  rec_put_u32(&w, (uint32_t)-err);
  rec_put_str16(&w, detail, dl);
  rec_put(&w, v, n);
  cq_name(rn, seq);
  cqf_name(fn, seq);
  if ((rc = sc__begin(c)) == 0 && (rc = cq_load(c->st, q)) == 0 && (rc = store_scan(c->st, "cqf/", cqf_count_cb, &kept)) == 0) {
    for (i = 0; i < q->n && q->seqs[i] != seq; i++) {
    }
    if (i < q->n) {
      memmove(&q->seqs[i], &q->seqs[i + 1], (q->n - i - 1) * sizeof q->seqs[0]);
      q->n--;
      q->bytes = q->bytes >= n ? q->bytes - (uint32_t)n : 0;
    }
    if ((rc = store_del(c->st, rn)) == 0 && (kept >= CQF_MAX || w.w.err || (rc = store_put(c->st, fn, w.p, w.len)) == 0) &&
        (rc = cq_save(c->st, q)) == 0)
      rc = store_commit(c->st);
  }
  if (rc) store_rollback(c->st);
  rec_wr_free(&w);
  free(q);
  return rc ? sc__store_error(c, rc) : kept < CQF_MAX;
}

static const char *change_what(const struct content *ct) {
  switch (ct->kind) {
    case CONTENT_TIMER: return "timer";
    case CONTENT_REACTION: return "reaction";
    case CONTENT_EDIT: return "edit";
    case CONTENT_DELETE: return "delete";
    default: return "text";
  }
}

/* Reads "cqf/SEQ" (v, n): *err, detail, conv and the change ct (pointing
 * into v). 0, or -1 if unreadable. */
static int cqf_decode(const uint8_t *v, size_t n, int *err, char *detail, size_t dcap, char *conv, size_t ccap,
                      struct content *ct) {
  struct rec_rd r;
  const uint8_t *d, *body;
  size_t dl, bl;
  uint32_t e;
  rec_rd_init(&r, v, n);
  if (rec_get_u32(&r, &e) || rec_get_str16(&r, &d, &dl, 255) || rec_get_cstr(&r, conv, ccap)) return -1;
  bl = n - r.r.off;
  if (rec_get_ptr(&r, &body, bl) || rec_rd_end(&r) || content_decode(ct, body, bl) != 0) return -1;
  *err = -(int)e;
  snprintf(detail, dcap, "%.*s", (int)dl, (const char *)d);
  return 0;
}

struct cqf_list {
  struct sc_client *c;
  int (*cb)(void *ud, const struct sc_failed_change *f);
  void *ud;
  int stop;
};

static int cqf_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct cqf_list *x = ud;
  struct sc_failed_change f;
  struct content *ct = calloc(1, sizeof *ct);
  int rc = 0;
  if (!ct) return STORE_E_IO;
  memset(&f, 0, sizeof f);
  f.seq = strtoull(name + 4, NULL, 10);
  if (cqf_decode(v, len, &f.error, f.detail, sizeof f.detail, f.conv, sizeof f.conv, ct) == 0) {
    f.what = change_what(ct);
    f.ref_ts = ct->ref_ts;
    rc = x->cb(x->ud, &f);
  }
  sodium_memzero(ct, sizeof *ct);
  free(ct);
  return rc;
}

int sc_failed_changes(struct sc_client *c, int (*cb)(void *ud, const struct sc_failed_change *f), void *ud) {
  struct cqf_list x = {c, cb, ud, 0};
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if ((rc = store_scan(c->st, "cqf/", cqf_cb, &x)) < 0) return sc__store_error(c, rc);
  return 0;
}

/* Loads failed change seq: 1 with its record in *v (caller frees), or a recorded failure. */
static int cqf_get(struct sc_client *c, uint64_t seq, uint8_t **v, size_t *n) {
  char fn[48];
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  cqf_name(fn, seq);
  if ((rc = store_get(c->st, fn, v, n)) < 0) return sc__store_error(c, rc);
  if (rc == 0) return sc__fail(c, SC_ERR_ARG, "no failed change %llu (see 'sotto outbox')", (unsigned long long)seq);
  return 1;
}

static int cqf_del(struct sc_client *c, uint64_t seq) {
  char fn[48];
  int rc;
  cqf_name(fn, seq);
  if ((rc = sc__begin(c)) || (rc = store_del(c->st, fn)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  return 0;
}

int sc_failed_change_discard(struct sc_client *c, uint64_t seq) {
  uint8_t *v;
  size_t n;
  int rc;
  if ((rc = cqf_get(c, seq, &v, &n)) != 1) return rc;
  store_free_value(v, n);
  return cqf_del(c, seq);
}

int sc_failed_change_retry(struct sc_client *c, uint64_t seq) {
  struct content *ct = calloc(1, sizeof *ct);
  char detail[256], conv[SC_USER_MAX + 2 > GROUP_NAME_MAX + 2 ? SC_USER_MAX + 2 : GROUP_NAME_MAX + 2];
  uint8_t *v = NULL;
  size_t n = 0;
  int rc, err;
  if (!ct) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  if ((rc = cqf_get(c, seq, &v, &n)) != 1) {
    free(ct);
    return rc;
  }
  if (cqf_decode(v, n, &err, detail, sizeof detail, conv, sizeof conv, ct) != 0) {
    rc = sc__fail(c, SC_ERR_STORE, "failed change %llu cannot be read", (unsigned long long)seq);
  } else if ((rc = convo_queue(c, conv, ct)) == 0 && (rc = cqf_del(c, seq)) == 0) {
    /* Queued again at the end: sent now if the server is reachable (a
     * lasting failure again keeps it here, under its new queue number). */
    c->change_queued = 0;
    if (sc_outbox_flush(c) != 0) {
      c->err = 0;
      c->errdetail[0] = 0;
    }
  }
  sodium_memzero(ct, sizeof *ct);
  free(ct);
  store_free_value(v, n);
  return rc;
}

int convo_flush(struct sc_client *c) {
  struct cq_idx *q = calloc(1, sizeof *q);
  struct content *ct = calloc(1, sizeof *ct);
  size_t i;
  int rc = 0;
  if (!q || !ct) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = cq_load(c->st, q)) != 0) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  for (i = 0; i < q->n; i++) { /* in the order they were made */
    char rn[48], conv[SC_USER_MAX + 2 > GROUP_NAME_MAX + 2 ? SC_USER_MAX + 2 : GROUP_NAME_MAX + 2];
    struct rec_rd r;
    const uint8_t *body;
    uint8_t *v;
    size_t n;
    int ok, src;
    cq_name(rn, q->seqs[i]);
    if ((rc = store_get(c->st, rn, &v, &n)) < 0) {
      rc = sc__store_error(c, rc);
      goto out;
    }
    if (rc == 0) { /* gone (sent by another process meanwhile): only the index entry */
      if ((rc = cq_drop(c, q->seqs[i], 0))) goto out;
      continue;
    }
    rec_rd_init(&r, v, n);
    ok = rec_get_cstr(&r, conv, sizeof conv) == 0 && rec_get_ptr(&r, &body, n - 2 - strlen(conv)) == 0 &&
         rec_rd_end(&r) == 0 && content_decode(ct, body, n - 2 - strlen(conv)) == 0 &&
         (conv[0] == '#' ? sc_group_name_ok(conv + 1) && (ct->in_group || ct->kind == CONTENT_GROUP_TEXT ||
                                                          ct->kind == CONTENT_TEXT_EX)
                         : sc_username_ok(conv) && !ct->in_group);
    /* A decision about a stranger for our own other devices is queued under
     * our own name, and only it is. */
    if (ok && (ct->kind == CONTENT_CONSENT) != (strcmp(conv, c->acct->username) == 0)) ok = 0;
    if (!ok) {
      store_free_value(v, n);
      if ((rc = cq_drop(c, q->seqs[i], n))) goto out; /* unreadable: nothing to send */
      continue;
    }
    if (conv[0] == '#') {
      src = sc__group_send_ct(NULL, c, conv + 1, ct, NULL, 0, 0);
    } else if (ct->kind == CONTENT_CONSENT) {
      src = deliver_own(c, &c->k, ct, "a decision about a stranger");
    } else {
      c->flags = 0;
      src = deliver_pairwise(c, &c->k, conv, ct);
      c->flags = 0;
    }
    sodium_memzero(ct, sizeof *ct);
    if (src && outbox_conn_failure(src)) {
      store_free_value(v, n);
      rc = src; /* the link: the rest waits for the next connection */
      goto out;
    }
    if (src == SC_ERR_QUEUE_FULL || src == SC_ERR_CONFLICT) { /* this one waits */
      store_free_value(v, n);
      continue;
    }
    if (src) {
      /* A lasting failure: kept among the failed changes (sotto outbox). */
      char detail[sizeof c->errdetail];
      snprintf(detail, sizeof detail, "%s", c->errdetail[0] ? c->errdetail : sc_error_message(src));
      rc = cq_fail(c, q->seqs[i], v, n, src, detail);
      store_free_value(v, n);
      if (rc < 0) goto out;
      sc__event(c, SC_EV_NOT_DELIVERED, SC_R_NONE, conv[0] == '#' ? NULL : conv,
                rc == 1 ? "kept among the failed changes: 'sotto outbox' retries or discards it" : detail);
      continue;
    }
    store_free_value(v, n);
    if ((rc = cq_drop(c, q->seqs[i], n))) goto out;
  }
  rc = 0;
out:
  free(q);
  free(ct);
  return rc;
}

int sc_change_queued(const struct sc_client *c) { return c ? c->change_queued : 0; }

/* Sends ct to the conversation user ("#GROUP": inside the group's
 * SenderKeyMessage). A server that cannot be reached queues it (the flush of
 * the next connection sends it): 0 and sc_change_queued() says so. */
static int send_one(struct sc_client *c, const char *user, struct content *ct, unsigned flags) {
  int rc, opened;
  c->change_queued = 0;
  if (user[0] == '#') {
    /* A group's: inside its SenderKeyMessage, scope 1 (ops.c sets the id). */
    ct->in_group = 1;
    rc = sc__group_send_ct(NULL, c, user + 1, ct, NULL, 0, flags);
  } else if ((rc = sc__acquire(c, &opened)) == 0) {
    c->flags = flags;
    rc = deliver_pairwise(c, &c->k, user, ct);
    c->flags = 0;
    sc__release(c, opened);
  }
  if (rc && unreachable(rc) && !c->flushing) return convo_queue(c, user, ct);
  return rc;
}

/* A conversation argument: a username, or "#GROUP". For a group, *gid
 * (may be NULL) gets its id; the group must be one we accepted. */
static int check_conv(struct sc_client *c, const char *conv, uint8_t gid[GROUP_ID_LEN]) {
  struct grp *g;
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if (!conv || conv[0] != '#') return 1;
  if (!sc_group_name_ok(conv + 1))
    return sc__fail(c, SC_ERR_ARG, "'%s' is not a group name: 1-64 of A-Z a-z 0-9 _ . -", conv + 1);
  if (!(g = calloc(1, sizeof *g))) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  rc = grp_find(c->st, conv + 1, g);
  if (rc < 0) rc = sc__store_error(c, rc);
  else if (rc == 0) rc = sc__fail(c, SC_ERR_UNKNOWN_GROUP, "you are in no group called '%s' (see 'sotto groups')", conv + 1);
  else if ((rc = convo_group_usable(c, g->gid, g->name)) == 0 && gid) memcpy(gid, g->gid, GROUP_ID_LEN);
  free(g);
  return rc;
}

/* The peer and group of a conversation argument (find_msg). */
static const char *conv_peer(const char *conv) { return conv[0] == '#' ? NULL : conv; }
static const char *conv_group(const char *conv) { return conv[0] == '#' ? conv + 1 : NULL; }

static int check_user(struct sc_client *c, const char *user) {
  int rc;
  if (user && user[0] == '#') return check_conv(c, user, NULL);
  if ((rc = sc__need_open(c))) return rc;
  if (!sc_username_ok(user)) return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", user ? user : "");
  if (c->acct->username[0] && strcmp(user, c->acct->username) == 0)
    return sc__fail(c, SC_ERR_SELF, "you cannot send to yourself ('%s')", user);
  return convo_before_send(c, user);
}

int sc_get_timer(uint32_t *secs, struct sc_client *c, const char *user) {
  uint8_t gid[GROUP_ID_LEN];
  int rc;
  *secs = 0;
  if ((rc = check_conv(c, user, gid)) <= 0) {
    if (rc < 0) return rc;
    return (rc = timer_load_g(c->st, NULL, gid, secs)) ? sc__store_error(c, rc) : 0;
  }
  if (!sc_username_ok(user)) return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", user ? user : "");
  return (rc = timer_load(c->st, user, secs)) ? sc__store_error(c, rc) : 0;
}

int sc_set_timer(struct sc_client *c, const char *user, uint32_t secs, unsigned flags) {
  struct content ct;
  uint8_t gid[GROUP_ID_LEN];
  int rc, grp = user && user[0] == '#';
  if ((rc = grp ? check_conv(c, user, gid) : check_user(c, user))) return rc;
  if (secs > SC_TIMER_MAX_S) return sc__fail(c, SC_ERR_ARG, "the timer is longer than a year");
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_TIMER;
  ct.ts = now_ms();
  ct.timer_s = secs;
  if ((rc = send_one(c, user, &ct, flags))) return rc;
  if ((rc = sc__begin(c)) || (rc = timer_save_g(c->st, user, grp ? gid : NULL, secs)) ||
      (rc = log_ev(c, SC_EV_TIMER_SET, SC_R_BY_US, grp ? NULL : user, grp ? user + 1 : NULL, NULL, secs, NULL, 0, 0,
                   0)) ||
      (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  return 0;
}

/* The timer in force in the conversation conv (a username or "#GROUP"). STORE_E_* on failure. */
static int conv_timer(struct sc_client *c, const char *conv, uint32_t *secs) {
  struct grp *g;
  int rc;
  if (conv[0] != '#') return timer_load(c->st, conv, secs);
  *secs = 0;
  if (!(g = calloc(1, sizeof *g))) return STORE_E_IO;
  rc = grp_find(c->st, conv + 1, g);
  if (rc == 1) rc = timer_load_g(c->st, NULL, g->gid, secs);
  free(g);
  return rc;
}

/* The message ref_ts of the conversation with user: 1 with *m, or a recorded failure. */
static int target(struct sc_client *c, const char *user, const char *author, uint64_t ref_ts, struct msg *m) {
  int rc, other = 0;
  if (ref_ts == 0) return sc__fail(c, SC_ERR_ARG, "no message id given");
  if ((rc = find_msg(c, conv_peer(user), conv_group(user), author, ref_ts, m, &other)) < 0)
    return sc__store_error(c, rc);
  if (rc == 0) {
    if (other)
      return sc__fail(c, SC_ERR_NOT_YOURS, "message %llu in the conversation %s %s is not yours",
                      (unsigned long long)ref_ts, user[0] == '#' ? "in" : "with", user);
    return sc__fail(c, SC_ERR_UNKNOWN_MESSAGE, "no message %llu in the conversation %s %s",
                    (unsigned long long)ref_ts, user[0] == '#' ? "in" : "with", user);
  }
  if (m->mflags & MSGF_DELETED) {
    msg_clear(m);
    return sc__fail(c, SC_ERR_UNKNOWN_MESSAGE, "message %llu was deleted", (unsigned long long)ref_ts);
  }
  return 1;
}

int sc_send_reply(struct sc_sent *out, struct sc_client *c, const char *user, uint64_t ref_ts, const char *text,
                  size_t len, unsigned flags) {
  struct msg *m;
  char author[SC_USER_MAX + 1];
  int rc;
  int grp = user && user[0] == '#';
  if (ref_ts == 0) return grp ? sc_group_send(out, c, user + 1, text, len, flags) : sc_send_text(out, c, user, text, len, flags);
  if ((rc = grp ? check_conv(c, user, NULL) : sc__need_open(c))) return rc;
  if (!grp && !sc_username_ok(user)) return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", user ? user : "");
  if (!(m = calloc(1, sizeof *m))) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  rc = target(c, user, NULL, ref_ts, m);
  snprintf(author, sizeof author, "%s", m->dir == MSG_OUT ? c->acct->username : m->peer);
  msg_clear(m);
  free(m);
  if (rc < 0) return rc;
  /* sc_send_text and sc_group_send read the reply from here (convo_prepare_*). */
  snprintf(c->reply_author, sizeof c->reply_author, "%s", author);
  c->reply_ts = ref_ts;
  rc = grp ? sc_group_send(out, c, user + 1, text, len, flags) : sc_send_text(out, c, user, text, len, flags);
  c->reply_author[0] = 0;
  c->reply_ts = 0;
  return rc;
}

int sc_react(struct sc_client *c, const char *user, uint64_t ref_ts, const char *emoji, unsigned flags) {
  struct content ct;
  struct msg *m;
  char author[SC_USER_MAX + 1];
  int rc;
  if (!emoji) emoji = "";
  if ((rc = check_user(c, user))) return rc;
  if (strlen(emoji) > CONTENT_EMOJI_MAX || !utf8_check(emoji, strlen(emoji), 1))
    return sc__fail(c, SC_ERR_ARG, "a reaction is one emoji (at most %d bytes of UTF-8)", CONTENT_EMOJI_MAX);
  if (!(m = calloc(1, sizeof *m))) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  if ((rc = target(c, user, NULL, ref_ts, m)) < 0) goto out;
  snprintf(author, sizeof author, "%s", m->dir == MSG_OUT ? c->acct->username : m->peer);
  msg_clear(m);
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_REACTION;
  ct.ts = now_ms();
  snprintf(ct.ref_author, sizeof ct.ref_author, "%s", author);
  ct.ref_ts = ref_ts;
  snprintf(ct.emoji, sizeof ct.emoji, "%s", emoji);
  if ((rc = conv_timer(c, user, &ct.timer_s)) != 0) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  if ((rc = send_one(c, user, &ct, flags))) goto out;
  if ((rc = sc__begin(c)) != 0) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  if ((rc = find_msg(c, conv_peer(user), conv_group(user), author, ref_ts, m, NULL)) == 1) {
    set_reaction(m, c->acct->username, emoji);
    rc = msglog_update(c->st, m);
  }
  if (rc < 0 || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    rc = sc__store_error(c, rc);
  }
out:
  msg_clear(m);
  free(m);
  return rc;
}

/* Edit (text != NULL) or delete our message ref_ts. */
static int change_own(struct sc_client *c, const char *user, uint64_t ref_ts, const char *text, size_t len,
                      unsigned flags) {
  struct content ct;
  struct msg *m;
  uint64_t now = now_ms(), window = (text ? SC_EDIT_WINDOW_S : SC_DELETE_WINDOW_S) * 1000ull;
  int rc;
  if ((rc = check_user(c, user))) return rc;
  if (text && len == 0) return sc__fail(c, SC_ERR_EMPTY, "the new text is empty; nothing was sent");
  if (text && len > SC_MAX_TEXT)
    return sc__fail(c, SC_ERR_TOO_LARGE, "the new text is longer than %d bytes", SC_MAX_TEXT);
  if (text && !utf8_check(text, len, 0))
    return sc__fail(c, SC_ERR_ARG, "the new text is not valid UTF-8 or holds a NUL byte; nothing was sent");
  if (!(m = calloc(1, sizeof *m))) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  rc = force() ? 1 : target(c, user, c->acct->username, ref_ts, m);
  if (rc < 0) goto out;
  if (!force() && (now < ref_ts || now - ref_ts > window)) {
    rc = sc__fail(c, SC_ERR_TOO_LATE, "message %llu is older than %s: it can no longer be %s",
                  (unsigned long long)ref_ts, text ? "24 hours" : "48 hours", text ? "edited" : "deleted for everyone");
    goto out;
  }
  msg_clear(m);
  memset(&ct, 0, sizeof ct);
  ct.kind = text ? CONTENT_EDIT : CONTENT_DELETE;
  ct.ts = now;
  ct.ref_ts = ref_ts;
  ct.text = (const uint8_t *)text;
  ct.text_len = text ? len : 0;
  if ((rc = conv_timer(c, user, &ct.timer_s)) != 0) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  if ((rc = send_one(c, user, &ct, flags))) goto out;
  if ((rc = sc__begin(c)) != 0) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  if ((rc = find_msg(c, conv_peer(user), conv_group(user), c->acct->username, ref_ts, m, NULL)) == 1) {
    if (text) {
      rc = set_text(m, (const uint8_t *)text, len);
      m->mflags |= MSGF_EDITED;
    } else {
      rc = set_text(m, (const uint8_t *)"", 0);
      m->mflags |= MSGF_DELETED;
      m->n_reactions = 0;
      if (rc == 0) rc = outbox_forget(c, m); /* never resent */
    }
    if (rc == 0) rc = msglog_update(c->st, m);
  }
  if (rc < 0 || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    rc = sc__store_error(c, rc);
  }
out:
  msg_clear(m);
  free(m);
  return rc;
}

int sc_edit(struct sc_client *c, const char *user, uint64_t ref_ts, const char *text, size_t len, unsigned flags) {
  if (!text) return sc__fail(c, SC_ERR_EMPTY, "the new text is empty");
  return change_own(c, user, ref_ts, text, len, flags);
}

int sc_delete_for_all(struct sc_client *c, const char *user, uint64_t ref_ts, unsigned flags) {
  return change_own(c, user, ref_ts, NULL, 0, flags);
}

/* ---- deleting: by hand and by timer -------------------------------------------------- */

struct sweep {
  const char *peer;  /* history --delete: the conversation (peer or group name) */
  uint64_t ts;       /* ... one message (0: all) */
  uint64_t now;      /* expiry: rows due by now */
  uint64_t next;     /* expiry: the next one after now */
  uint64_t *seqs;
  size_t n, cap;
  struct msg *m;
};

static int sweep_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct sweep *s = ud;
  uint64_t seq;
  int hit;
  if (msg_seq(name, &seq) || msglog_decode(s->m, v, len) != 0) return 0;
  if (s->peer)
    hit = (strcmp(s->m->peer, s->peer) == 0 && !s->m->group[0]) || strcmp(s->m->group, s->peer) == 0;
  else
    hit = s->m->expire_at != 0 && s->m->expire_at <= s->now;
  if (s->peer && s->ts) hit = hit && s->m->dir != MSG_EVENT && s->m->ts == s->ts;
  if (!s->peer && s->m->expire_at > s->now && (s->next == 0 || s->m->expire_at < s->next)) s->next = s->m->expire_at;
  msg_clear(s->m);
  if (!hit) return 0;
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 64;
    uint64_t *nv = realloc(s->seqs, nc * sizeof *nv);
    if (!nv) return STORE_E_IO;
    s->seqs = nv;
    s->cap = nc;
  }
  s->seqs[s->n++] = seq;
  return 0;
}

/* Deletes what the sweep selects, in one transaction; *n how many. */
static int sweep(struct sc_client *c, struct sweep *s, unsigned *n) {
  size_t i;
  int rc;
  if (n) *n = 0;
  if (!(s->m = calloc(1, sizeof *s->m))) return STORE_E_IO;
  rc = store_scan(c->st, "msg/", sweep_cb, s);
  if (rc == 0 && s->n) {
    if ((rc = sc__begin(c)) == 0) {
      for (i = 0; i < s->n && rc == 0; i++) {
        /* Reread inside the transaction: another process may have changed it. */
        if ((rc = msglog_get(c->st, s->seqs[i], s->m)) != 0) {
          rc = rc == STORE_E_CORRUPT ? 0 : rc; /* gone meanwhile */
          continue;
        }
        rc = delete_row(c, s->m);
        msg_clear(s->m);
      }
      if (rc || (rc = store_commit(c->st))) store_rollback(c->st);
    }
    if (rc == 0 && n) *n = (unsigned)s->n;
  }
  free(s->seqs);
  free(s->m);
  return rc;
}

int sc_history_delete(unsigned *n, struct sc_client *c, const char *conv, uint64_t ts) {
  struct sweep s;
  int rc;
  if (n) *n = 0;
  if ((rc = sc__need_open(c))) return rc;
  if (!conv || !(sc_username_ok(conv) || sc_group_name_ok(conv)))
    return sc__fail(c, SC_ERR_ARG, "'%s' is not a username or group name", conv ? conv : "");
  memset(&s, 0, sizeof s);
  s.peer = conv;
  s.ts = ts;
  if ((rc = sweep(c, &s, n)) != 0) return sc__store_error(c, rc);
  if (ts && n && *n == 0)
    return sc__fail(c, SC_ERR_UNKNOWN_MESSAGE, "no message %llu in the conversation with %s",
                    (unsigned long long)ts, conv);
  return 0;
}

int sc_expire(struct sc_client *c) {
  struct sweep s;
  unsigned n = 0;
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  memset(&s, 0, sizeof s);
  s.now = sc_now_ms();
  if ((rc = sweep(c, &s, &n)) != 0) return sc__store_error(c, rc);
  c->next_expire_ms = s.next;
  if (n) {
    struct sc_event ev;
    memset(&ev, 0, sizeof ev);
    ev.kind = SC_EV_DISAPPEARED;
    ev.count = n;
    ev.timestamp_ms = s.now;
    sc__emit(c, &ev);
  }
  return 0;
}

int convo_expire_due(struct sc_client *c) {
  if (c->next_expire_ms == 0 || sc_now_ms() < c->next_expire_ms) return 0;
  return sc_expire(c);
}

int64_t convo_next_deadline(const struct sc_client *c) {
  uint64_t now = sc_now_ms();
  if (c->next_expire_ms == 0) return -1;
  return sc_monotonic_ms() + (c->next_expire_ms > now ? (int64_t)(c->next_expire_ms - now) : 0);
}

/* ---- group invitations -------------------------------------------------------------------- */

static void gpend_name(char out[64], const uint8_t gid[GROUP_ID_LEN]) {
  static const char hx[] = "0123456789abcdef";
  size_t i, k = (size_t)snprintf(out, 64, "gpend/");
  for (i = 0; i < GROUP_ID_LEN; i++) {
    out[k++] = hx[gid[i] >> 4];
    out[k++] = hx[gid[i] & 15];
  }
  out[k] = 0;
}

int convo_group_invited(struct sc_client *c, const uint8_t gid[GROUP_ID_LEN], const char *inviter) {
  char rn[64];
  int rc = consent_load(c->st, inviter);
  if (rc < 0) return rc;
  if (rc != CONSENT_REQUEST) return 0; /* a contact's invitation is taken (a blocked one never gets here) */
  gpend_name(rn, gid);
  rc = store_put(c->st, rn, (const uint8_t *)inviter, strlen(inviter));
  return rc ? rc : 1;
}

int convo_group_accepted(struct sc_client *c, const uint8_t gid[GROUP_ID_LEN]) {
  char rn[64];
  int rc;
  gpend_name(rn, gid);
  rc = store_del(c->st, rn);
  return rc < 0 ? rc : 0;
}

int convo_group_inviter(struct sc_client *c, const uint8_t gid[GROUP_ID_LEN], char inviter[SC_USER_MAX + 1]) {
  char rn[64];
  uint8_t *v;
  size_t n;
  int rc;
  gpend_name(rn, gid);
  if ((rc = store_get(c->st, rn, &v, &n)) <= 0) return rc;
  if (inviter) snprintf(inviter, SC_USER_MAX + 1, "%.*s", (int)(n <= SC_USER_MAX ? n : SC_USER_MAX), (const char *)v);
  store_free_value(v, n);
  return 1;
}

int convo_group_usable(struct sc_client *c, const uint8_t gid[GROUP_ID_LEN], const char *name) {
  char who[SC_USER_MAX + 1];
  int rc = convo_group_inviter(c, gid, who);
  if (rc < 0) return sc__store_error(c, rc);
  if (rc == 1)
    return sc__fail(c, SC_ERR_GROUP_PENDING,
                    "you have not accepted the invitation to '%s' from %s: 'sotto requests accept %s' first", name,
                    who, who);
  return 0;
}

struct inv {
  struct sc_client *c;
  int (*cb)(void *ud, const char *group, const char *inviter);
  void *ud;
  const char *accept; /* sc_request_accept: delete the invitations of this inviter */
  char names[64][64];
  size_t n;
};

static int inv_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct inv *x = ud;
  char who[SC_USER_MAX + 1];
  snprintf(who, sizeof who, "%.*s", (int)(len <= SC_USER_MAX ? len : SC_USER_MAX), (const char *)v);
  if (x->accept) {
    if (strcmp(who, x->accept) == 0 && x->n < 64) snprintf(x->names[x->n++], sizeof x->names[0], "%s", name);
    return 0;
  }
  {
    struct grp *g = calloc(1, sizeof *g);
    uint8_t gid[GROUP_ID_LEN];
    size_t i;
    int rc = 0;
    if (!g) return STORE_E_IO;
    for (i = 0; i < GROUP_ID_LEN && strlen(name) == 6 + 2 * GROUP_ID_LEN; i++) {
      unsigned b;
      if (sscanf(name + 6 + 2 * i, "%2x", &b) != 1) break;
      gid[i] = (uint8_t)b;
    }
    if (i == GROUP_ID_LEN && grp_load(x->c->st, gid, g) == 1) rc = x->cb(x->ud, g->name, who);
    free(g);
    return rc;
  }
}

int sc_group_invites(struct sc_client *c, int (*cb)(void *ud, const char *group, const char *inviter), void *ud) {
  struct inv *x;
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if (!(x = calloc(1, sizeof *x))) return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  x->c = c;
  x->cb = cb;
  x->ud = ud;
  rc = store_scan(c->st, "gpend/", inv_cb, x);
  free(x);
  return rc < 0 && rc >= STORE_E_ROLLBACK ? sc__store_error(c, rc) : rc;
}

struct grows {
  const char *group;
  uint64_t *seqs;
  size_t n, cap;
  struct msg *m;
};

static int grows_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct grows *r = ud;
  uint64_t seq;
  int hit;
  if (msg_seq(name, &seq) || msglog_decode(r->m, v, len) != 0) return 0;
  hit = strcmp(r->m->group, r->group) == 0;
  msg_clear(r->m);
  if (!hit) return 0;
  if (r->n == r->cap) {
    size_t nc = r->cap ? r->cap * 2 : 64;
    uint64_t *nv = realloc(r->seqs, nc * sizeof *nv);
    if (!nv) return STORE_E_IO;
    r->seqs = nv;
    r->cap = nc;
  }
  r->seqs[r->n++] = seq;
  return 0;
}

/* Inside a transaction: the rows of the group lose their request mark
 * (accepted), or are deleted (declined). */
static int group_rows(struct sc_client *c, const char *group, int decline) {
  struct grows r;
  size_t i;
  int rc;
  memset(&r, 0, sizeof r);
  r.group = group;
  if (!(r.m = calloc(1, sizeof *r.m))) return STORE_E_IO;
  rc = store_scan(c->st, "msg/", grows_cb, &r);
  for (i = 0; i < r.n && rc == 0; i++) {
    if ((rc = msglog_get(c->st, r.seqs[i], r.m)) != 0) break;
    if (decline) {
      rc = delete_row(c, r.m);
    } else if (r.m->mflags & MSGF_REQUEST) {
      r.m->mflags &= (uint8_t)~MSGF_REQUEST;
      rc = msglog_update(c->st, r.m);
    }
    msg_clear(r.m);
  }
  free(r.seqs);
  free(r.m);
  return rc;
}

/* Inside a transaction: the invitations from user are accepted (their
 * groups' messages lose the request mark), or declined (decline: user was
 * blocked; the groups and their messages are deleted here). */
static int settle_invites(struct sc_client *c, const char *user, int decline) {
  struct inv *x = calloc(1, sizeof *x);
  struct grp *g = calloc(1, sizeof *g);
  size_t i, k;
  int rc;
  if (!x || !g) {
    free(x);
    free(g);
    return STORE_E_IO;
  }
  x->c = c;
  x->accept = user;
  rc = store_scan(c->st, "gpend/", inv_cb, x);
  for (i = 0; i < x->n && rc == 0; i++) {
    uint8_t gid[GROUP_ID_LEN];
    const char *hex = x->names[i] + 6;
    for (k = 0; k < GROUP_ID_LEN && strlen(hex) == 2 * GROUP_ID_LEN; k++) {
      unsigned b;
      if (sscanf(hex + 2 * k, "%2x", &b) != 1) break;
      gid[k] = (uint8_t)b;
    }
    if (k == GROUP_ID_LEN && (rc = grp_load(c->st, gid, g)) == 1) {
      rc = group_rows(c, g->name, decline);
      if (rc == 0 && decline) rc = grp_delete(c->st, g);
    }
    if (rc >= 0) rc = store_del(c->st, x->names[i]);
  }
  free(x);
  free(g);
  return rc;
}

static int accept_invites(struct sc_client *c, const char *user) { return settle_invites(c, user, 0); }

/* ---- consent ---------------------------------------------------------------------------- */

int sc_consent(int *state, struct sc_client *c, const char *user) {
  int rc;
  *state = 0;
  if ((rc = sc__need_open(c))) return rc;
  if (!sc_username_ok(user)) return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", user ? user : "");
  if ((rc = consent_load(c->st, user)) < 0) return sc__store_error(c, rc);
  *state = rc;
  return 0;
}

struct req_list {
  char (*users)[SC_USER_MAX + 1];
  size_t n, cap;
  int want;
};

static int req_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct req_list *l = ud;
  const char *u = name + strlen("consent/");
  if (len != 1 || v[0] != l->want || !sc_username_ok(u)) return 0;
  if (l->n == l->cap) {
    size_t nc = l->cap ? l->cap * 2 : 16;
    void *nu = realloc(l->users, nc * sizeof *l->users);
    if (!nu) return STORE_E_IO;
    l->users = nu;
    l->cap = nc;
  }
  snprintf(l->users[l->n++], sizeof l->users[0], "%s", u);
  return 0;
}

struct count {
  const char *peer;
  unsigned n;
  struct msg *m;
};

static int count_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct count *k = ud;
  uint64_t seq;
  if (msg_seq(name, &seq) || msglog_decode(k->m, v, len) != 0) return 0;
  if (k->m->dir == MSG_IN && !k->m->group[0] && strcmp(k->m->peer, k->peer) == 0) k->n++;
  msg_clear(k->m);
  return 0;
}

static int list(struct sc_client *c, int want, struct req_list *l) {
  int rc;
  memset(l, 0, sizeof *l);
  l->want = want;
  if ((rc = sc__need_open(c))) return rc;
  if ((rc = store_scan(c->st, "consent/", req_cb, l)) != 0) {
    free(l->users);
    return sc__store_error(c, rc);
  }
  return 0;
}

int sc_requests(struct sc_client *c, int (*cb)(void *ud, const char *user, unsigned messages), void *ud) {
  struct req_list l;
  struct count k;
  size_t i;
  int rc;
  if ((rc = list(c, CONSENT_REQUEST, &l))) return rc;
  memset(&k, 0, sizeof k);
  if (!(k.m = calloc(1, sizeof *k.m))) rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
  for (i = 0; i < l.n && !rc; i++) {
    k.peer = l.users[i];
    k.n = 0;
    if ((rc = store_scan(c->st, "msg/", count_cb, &k)) != 0) {
      rc = sc__store_error(c, rc);
      break;
    }
    rc = cb(ud, l.users[i], k.n);
  }
  free(k.m);
  free(l.users);
  return rc;
}

int sc_blocked(struct sc_client *c, int (*cb)(void *ud, const char *user), void *ud) {
  struct req_list l;
  size_t i;
  int rc;
  if ((rc = list(c, CONSENT_BLOCKED, &l))) return rc;
  for (i = 0; i < l.n && !rc; i++) rc = cb(ud, l.users[i]);
  free(l.users);
  return rc;
}

/* ---- held receipts ------------------------------------------------------------------------ */

#define HELD_MAX 512 /* request rows released per acceptance (RCPT_MAX_PENDING receipts are kept) */

struct held {
  const char *peer;
  uint64_t seqs[HELD_MAX];
  size_t n;
  struct msg *m;
};

static int held_cb(void *ud, const char *name, const uint8_t *v, size_t len) {
  struct held *h = ud;
  uint64_t seq;
  if (msg_seq(name, &seq) || msglog_decode(h->m, v, len) != 0) return 0;
  if (h->m->dir == MSG_IN && (h->m->mflags & MSGF_REQUEST) && strcmp(h->m->peer, h->peer) == 0 && h->n < HELD_MAX)
    h->seqs[h->n++] = seq;
  msg_clear(h->m);
  return 0;
}

/* Inside a transaction: user's request was accepted. Their messages lose
 * the request mark, and the receipts held back for their 1:1 texts are
 * owed now (outbox_flush sends them with the next send or receive). */
static int release_held(struct sc_client *c, const char *user) {
  struct held *h = calloc(1, sizeof *h);
  uint64_t *unshown = NULL;
  size_t n_unshown = 0, i, k;
  int rc;
  if (!h || !(h->m = calloc(1, sizeof *h->m)) || !(unshown = calloc(MSGLOG_MAX_UNSHOWN, sizeof *unshown))) {
    rc = STORE_E_IO;
    goto out;
  }
  h->peer = user;
  if ((rc = store_scan(c->st, "msg/", held_cb, h)) != 0 ||
      (rc = msglog_unshown(c->st, unshown, MSGLOG_MAX_UNSHOWN, &n_unshown)) != 0)
    goto out;
  for (i = 0; i < h->n && rc == 0; i++) {
    int shown = 1;
    if ((rc = msglog_get(c->st, h->seqs[i], h->m)) != 0) break;
    h->m->mflags &= (uint8_t)~MSGF_REQUEST;
    for (k = 0; k < n_unshown; k++)
      if (unshown[k] == h->seqs[i]) shown = 0;
    rc = msglog_update(c->st, h->m);
    /* A text (not a tombstone) of the 1:1 conversation: its receipt. */
    if (rc == 0 && !h->m->group[0] && !(h->m->mflags & MSGF_DELETED))
      rc = outbox_owe_held(c, user, h->m->ts, shown);
    msg_clear(h->m);
  }
out:
  if (h) free(h->m);
  free(h);
  free(unshown);
  return rc;
}

static int set_consent(struct sc_client *c, const char *user, int state, int need_request) {
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if (!sc_username_ok(user)) return sc__fail(c, SC_ERR_ARG, "'%s' is not a valid username", user ? user : "");
  if ((rc = sc__begin(c)) != 0) return sc__store_error(c, rc);
  if ((rc = consent_load(c->st, user)) < 0) goto fail;
  if (need_request && rc != CONSENT_REQUEST) {
    store_rollback(c->st);
    return sc__fail(c, SC_ERR_NO_REQUEST, "there is no message request from %s", user);
  }
  if ((rc = consent_save(c->st, user, state)) != 0 ||
      (state != 1 && (rc = settle_invites(c, user, state == CONSENT_BLOCKED)) != 0) ||
      (need_request && (rc = release_held(c, user)) != 0) || (rc = store_commit(c->st)) != 0)
    goto fail;
  return 0;
fail:
  store_rollback(c->st);
  return sc__store_error(c, rc);
}

/* ---- the same decision on our other devices (docs/multi-device.md) -------------- */

/* Tells our own other listed devices (CONSENT, content kind 9) what this
 * one decided about user. The decision here stands whatever happens: with
 * no server it is queued (under our own name) and sent by the next
 * connection's flush; a device that could not be told is said (an event,
 * deliver_own); with no other device nothing is sent and no connection is
 * made. */
static void consent_to_own(struct sc_client *c, const char *user, uint8_t action) {
  struct sotto_devlist *l;
  struct content ct;
  char saved[sizeof c->errdetail];
  int opened = 0, saved_err = c->err, others = 0, rc;
  if (!c->acct || !c->acct->username[0] || !(l = calloc(1, sizeof *l))) return;
  if (devices_list_of(c, c->acct->username, l) == 1)
    others = l->n > 1 || (l->n == 1 && l->dev[0].device_id != c->acct->device_id);
  free(l);
  if (!others) return;
  memcpy(saved, c->errdetail, sizeof saved);
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_CONSENT;
  ct.ts = now_ms();
  ct.consent_action = action;
  snprintf(ct.to, sizeof ct.to, "%s", user);
  if ((rc = sc__acquire(c, &opened)) == 0) {
    (void)deliver_own(c, &c->k, &ct, action == CONSENT_ACT_ACCEPT  ? "that you accepted the request"
                                     : action == CONSENT_ACT_BLOCK ? "that you blocked someone"
                                     : action == CONSENT_ACT_UNBLOCK ? "that you unblocked someone"
                                                                     : "that you deleted a request");
    sc__release(c, opened);
  } else if (unreachable(rc) && convo_queue(c, c->acct->username, &ct) == 0) {
    /* no server: it goes with the next connection's flush, like a queued change */
  } else {
    struct sc_event ev;
    char why[sizeof c->errdetail + 160];
    snprintf(why, sizeof why, "your other devices were not told about %s (no server: %s); decide there too", user,
             c->errdetail);
    memset(&ev, 0, sizeof ev);
    ev.kind = SC_EV_DEVICE_LIST;
    ev.peer = c->acct->username;
    ev.error = rc;
    ev.detail = why;
    ev.timestamp_ms = sc_now_ms();
    sc__emit(c, &ev);
  }
  c->err = saved_err;
  memcpy(c->errdetail, saved, sizeof saved);
}

/* Inside a transaction: every row of the 1:1 conversation with user goes
 * (a request deleted on another device of ours). */
static int delete_conv_in(struct sc_client *c, const char *user) {
  struct sweep s;
  size_t i;
  int rc;
  memset(&s, 0, sizeof s);
  s.peer = user;
  if (!(s.m = calloc(1, sizeof *s.m))) return STORE_E_IO;
  rc = store_scan(c->st, "msg/", sweep_cb, &s);
  for (i = 0; i < s.n && rc == 0; i++) {
    if ((rc = msglog_get(c->st, s.seqs[i], s.m)) != 0) {
      rc = rc == STORE_E_CORRUPT ? 0 : rc;
      continue;
    }
    rc = delete_row(c, s.m);
    msg_clear(s.m);
  }
  free(s.seqs);
  free(s.m);
  return rc;
}

int convo_apply_consent(struct sc_client *c, const struct content *ct) {
  int rc;
  if (strcmp(ct->to, c->acct->username) == 0) return 0;
  if ((rc = consent_load(c->st, ct->to)) < 0) return rc;
  switch (ct->consent_action) {
    case CONSENT_ACT_ACCEPT:
      /* only a request here becomes a contact (a block here stays) */
      return rc == CONSENT_REQUEST ? convo_accept_here(c, ct->to) : 0;
    case CONSENT_ACT_BLOCK:
      if (rc == CONSENT_BLOCKED) return 0;
      if ((rc = consent_save(c->st, ct->to, CONSENT_BLOCKED)) != 0) return rc;
      return settle_invites(c, ct->to, 1);
    case CONSENT_ACT_UNBLOCK:
      return rc == CONSENT_BLOCKED ? consent_save(c->st, ct->to, 0) : 0;
    case CONSENT_ACT_DELETE:
      /* as sc_request_delete: their messages go, their invitations are declined */
      if (rc != CONSENT_REQUEST) return 0;
      if ((rc = delete_conv_in(c, ct->to)) != 0) return rc;
      return settle_invites(c, ct->to, 1);
    default:
      return 0;
  }
}

int sc_request_accept(struct sc_client *c, const char *user) {
  int rc = set_consent(c, user, 0, 1);
  if (rc == 0) consent_to_own(c, user, CONSENT_ACT_ACCEPT);
  if (rc == 0 && c->acct->username[0]) {
    /* The held receipts go now; without a server they wait, owed, for the
     * next command that connects (the acceptance itself is done). */
    (void)sc_outbox_flush(c);
    c->err = 0;
    c->errdetail[0] = 0;
  }
  return rc;
}

int sc_request_delete(struct sc_client *c, const char *user) {
  int rc, st;
  if ((rc = sc_consent(&st, c, user))) return rc;
  if (st != CONSENT_REQUEST) return sc__fail(c, SC_ERR_NO_REQUEST, "there is no message request from %s", user);
  if ((rc = sc_history_delete(NULL, c, user, 0)) != 0) return rc;
  /* Their pending group invitations are declined as a block declines them
   * (the groups and their messages deleted here; the inviter is not told). */
  if ((rc = sc__begin(c)) != 0) return sc__store_error(c, rc);
  if ((rc = settle_invites(c, user, 1)) < 0 || (rc = attach_forget_from(c, user)) != 0 ||
      (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    return sc__store_error(c, rc);
  }
  consent_to_own(c, user, CONSENT_ACT_DELETE);
  return 0;
}

int sc_block(struct sc_client *c, const char *user, int on) {
  int rc, st;
  if (!on) {
    if ((rc = sc_consent(&st, c, user))) return rc;
    if (st != CONSENT_BLOCKED) return 0;
    if ((rc = set_consent(c, user, 0, 0)) == 0) consent_to_own(c, user, CONSENT_ACT_UNBLOCK);
    return rc;
  }
  if (c->acct && c->acct->username[0] && user && strcmp(user, c->acct->username) == 0)
    return sc__fail(c, SC_ERR_SELF, "you cannot block yourself");
  if ((rc = set_consent(c, user, CONSENT_BLOCKED, 0)) == 0) consent_to_own(c, user, CONSENT_ACT_BLOCK);
  /* their files not fetched yet are not fetched */
  if (rc == 0) {
    int r2;
    if ((r2 = sc__begin(c)) != 0) return sc__store_error(c, r2);
    if ((r2 = attach_forget_from(c, user)) != 0 || (r2 = store_commit(c->st)) != 0) {
      store_rollback(c->st);
      return sc__store_error(c, r2);
    }
  }
  return rc;
}

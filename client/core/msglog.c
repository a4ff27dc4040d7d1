/* SPDX-License-Identifier: Apache-2.0 */
/* msglog.c: message history, seen server ids, unshown list (msglog.h). */
#include "msglog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "record.h"

/* Version 2 rows store events as fields; version 1 rows (English
 * sentences for events) are still read (msglog_decode). */
#define MSG_VERSION_1 1
#define MSG_VERSION_2 2
#define MSG_VERSION 3 /* 2 and the conversation fields after the text */
/* The largest row: the text, a full member list and a full set of reactions. */
#define MSG_ROW_MAX (SC_MAX_TEXT + 16384)

void msg_clear(struct msg *m) {
  if (m->text) store_free_value((uint8_t *)m->text, m->text_len + 1);
  memset(m, 0, sizeof *m);
}

static int unshown_load(struct store *st, uint64_t *seqs, size_t max, size_t *n) {
  uint8_t *v;
  size_t len, i;
  int rc = store_get(st, "unshown", &v, &len);
  *n = 0;
  if (rc <= 0) return rc;
  if (len % 8 || len / 8 > max) {
    store_free_value(v, len);
    return STORE_E_CORRUPT;
  }
  for (i = 0; i < len / 8; i++) {
    struct rec_rd r;
    rec_rd_init(&r, v + 8 * i, 8);
    rec_get_u64(&r, &seqs[i]);
  }
  *n = len / 8;
  store_free_value(v, len);
  return 0;
}

static int unshown_save(struct store *st, const uint64_t *seqs, size_t n) {
  struct rec_wr w;
  size_t i;
  int rc;
  if (n == 0) return store_del(st, "unshown");
  rec_wr_init(&w, 8 * MSGLOG_MAX_UNSHOWN);
  for (i = 0; i < n; i++) rec_put_u64(&w, seqs[i]);
  rc = rec_wr_ok(&w) ? STORE_E_IO : store_put(st, "unshown", w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

int msglog_unshown(struct store *st, uint64_t *seqs, size_t max, size_t *n) {
  return unshown_load(st, seqs, max, n);
}

int msglog_encode(struct rec_wr *w, const struct msg *m) {
  size_t i;
  if (m->n_members > GROUP_MAX_MEMBERS) return -1;
  rec_put_u8(w, MSG_VERSION);
  rec_put_u8(w, m->dir);
  rec_put_u8(w, m->kind);
  rec_put_u8(w, m->reason);
  rec_put_str16(w, m->peer, strlen(m->peer));
  rec_put_str16(w, m->group, strlen(m->group));
  rec_put_str16(w, m->subject, strlen(m->subject));
  rec_put_str16(w, m->detail, strlen(m->detail));
  rec_put_u64(w, m->ts);
  rec_put_u64(w, m->server_id);
  rec_put_u64(w, m->count);
  rec_put_u64(w, m->total);
  rec_put_u32(w, m->device);
  rec_put_u64(w, m->server_ts);
  rec_put_u8(w, (uint8_t)m->n_members);
  for (i = 0; i < m->n_members; i++) rec_put_str16(w, m->members[i], strlen(m->members[i]));
  rec_put_str16(w, m->text ? m->text : "", m->text ? m->text_len : 0);
  if (m->n_reactions > MSG_MAX_REACTIONS) return -1;
  rec_put_u32(w, m->timer_s);
  rec_put_u64(w, m->expire_at);
  rec_put_u8(w, m->mflags);
  rec_put_str16(w, m->ref_author, strlen(m->ref_author));
  rec_put_u64(w, m->ref_ts);
  rec_put_u8(w, (uint8_t)m->n_reactions);
  for (i = 0; i < m->n_reactions; i++) {
    rec_put_str16(w, m->reactions[i].user, strlen(m->reactions[i].user));
    rec_put_str16(w, m->reactions[i].emoji, strlen(m->reactions[i].emoji));
  }
  return rec_wr_ok(w);
}

int msglog_add(struct store *st, struct account *a, struct msg *m, int unshown) {
  struct rec_wr w;
  char rn[48];
  int rc;
  m->seq = a->next_seq++;
  rec_wr_init(&w, MSG_ROW_MAX);
  snprintf(rn, sizeof rn, "msg/%llu", (unsigned long long)m->seq);
  rc = msglog_encode(&w, m) ? STORE_E_IO : store_put(st, rn, w.p, w.len);
  rec_wr_free(&w);
  if (rc == 0 && unshown) {
    uint64_t *seqs = calloc(MSGLOG_MAX_UNSHOWN, sizeof *seqs);
    size_t n;
    if (!seqs) return STORE_E_IO;
    if ((rc = unshown_load(st, seqs, MSGLOG_MAX_UNSHOWN, &n)) == 0) {
      if (n == MSGLOG_MAX_UNSHOWN) { /* never grow past the cap: the oldest stays in the history only */
        memmove(seqs, seqs + 1, (n - 1) * sizeof *seqs);
        n--;
      }
      seqs[n++] = m->seq;
      rc = unshown_save(st, seqs, n);
    }
    free(seqs);
  }
  return rc;
}

int msglog_update(struct store *st, const struct msg *m) {
  struct rec_wr w;
  char rn[48];
  int rc;
  rec_wr_init(&w, MSG_ROW_MAX);
  snprintf(rn, sizeof rn, "msg/%llu", (unsigned long long)m->seq);
  rc = msglog_encode(&w, m) ? STORE_E_IO : store_put(st, rn, w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

int msglog_mark_shown(struct store *st, uint64_t seq) {
  uint64_t *seqs = calloc(MSGLOG_MAX_UNSHOWN, sizeof *seqs);
  size_t n, i, j = 0;
  int rc;
  if (!seqs) return STORE_E_IO;
  if ((rc = unshown_load(st, seqs, MSGLOG_MAX_UNSHOWN, &n)) == 0) {
    for (i = 0; i < n; i++)
      if (seqs[i] != seq) seqs[j++] = seqs[i];
    if (j != n) rc = unshown_save(st, seqs, j);
  }
  free(seqs);
  return rc;
}

int msglog_decode(struct msg *m, const uint8_t *v, size_t n) {
  struct rec_rd r;
  uint8_t ver = 0, code = 0, nm = 0;
  const uint8_t *t;
  size_t i;
  memset(m, 0, sizeof *m);
  rec_rd_init(&r, v, n);
  rec_get_u8(&r, &ver);
  rec_get_u8(&r, &m->dir);
  if (ver == MSG_VERSION_1) {
    /* Version 1: u8 code | peer | group | u64 ts | u64 server id | text
     * (an English sentence for an event). */
    rec_get_u8(&r, &code);
    rec_get_cstr(&r, m->peer, sizeof m->peer);
    rec_get_cstr(&r, m->group, sizeof m->group);
    rec_get_u64(&r, &m->ts);
    rec_get_u64(&r, &m->server_id);
    if (m->dir == MSG_EVENT) {
      m->kind = SC_EV_NOTICE;
      m->reason = code;
    }
  } else if (ver == MSG_VERSION_2 || ver == MSG_VERSION) {
    uint8_t kind = 0, reason = 0;
    rec_get_u8(&r, &kind);
    rec_get_u8(&r, &reason);
    m->kind = kind;
    m->reason = reason;
    rec_get_cstr(&r, m->peer, sizeof m->peer);
    rec_get_cstr(&r, m->group, sizeof m->group);
    rec_get_cstr(&r, m->subject, sizeof m->subject);
    rec_get_cstr(&r, m->detail, sizeof m->detail);
    rec_get_u64(&r, &m->ts);
    rec_get_u64(&r, &m->server_id);
    rec_get_u64(&r, &m->count);
    rec_get_u64(&r, &m->total);
    rec_get_u32(&r, &m->device);
    rec_get_u64(&r, &m->server_ts);
    rec_get_u8(&r, &nm);
    if (nm > GROUP_MAX_MEMBERS) return STORE_E_CORRUPT;
    for (i = 0; i < nm; i++) rec_get_cstr(&r, m->members[i], sizeof m->members[i]);
    m->n_members = nm;
  } else {
    return STORE_E_CORRUPT;
  }
  if (m->dir > MSG_EVENT) return STORE_E_CORRUPT;
  rec_get_str16(&r, &t, &m->text_len, SC_MAX_TEXT);
  if (ver == MSG_VERSION) {
    rec_get_u32(&r, &m->timer_s);
    rec_get_u64(&r, &m->expire_at);
    rec_get_u8(&r, &m->mflags);
    rec_get_cstr(&r, m->ref_author, sizeof m->ref_author);
    rec_get_u64(&r, &m->ref_ts);
    nm = 0;
    rec_get_u8(&r, &nm);
    if (nm > MSG_MAX_REACTIONS) return STORE_E_CORRUPT;
    for (i = 0; i < nm; i++) {
      rec_get_cstr(&r, m->reactions[i].user, sizeof m->reactions[i].user);
      rec_get_cstr(&r, m->reactions[i].emoji, sizeof m->reactions[i].emoji);
    }
    m->n_reactions = nm;
  }
  if (rec_rd_end(&r) || !(m->text = malloc(m->text_len + 1))) {
    memset(m, 0, sizeof *m);
    return STORE_E_CORRUPT;
  }
  memcpy(m->text, t, m->text_len);
  m->text[m->text_len] = 0;
  return 0;
}

int msglog_get(struct store *st, uint64_t seq, struct msg *m) {
  char rn[48];
  uint8_t *v;
  size_t n;
  int rc;
  memset(m, 0, sizeof *m);
  snprintf(rn, sizeof rn, "msg/%llu", (unsigned long long)seq);
  rc = store_get(st, rn, &v, &n);
  if (rc <= 0) return rc == 0 ? STORE_E_CORRUPT : rc;
  rc = msglog_decode(m, v, n);
  if (rc == 0) m->seq = seq;
  store_free_value(v, n);
  return rc;
}

void msglog_to_event(const struct msg *m, struct sc_event *ev, const char **members) {
  size_t i;
  memset(ev, 0, sizeof *ev);
  ev->kind = m->dir == MSG_IN ? SC_EV_MESSAGE : m->dir == MSG_OUT ? SC_EV_SENT : m->kind;
  /* An outgoing text keeps its delivery state where events keep a reason. */
  ev->reason = m->dir == MSG_OUT ? 0 : m->reason;
  ev->state = m->dir == MSG_OUT ? (m->reason ? m->reason : SC_STATE_UNKNOWN) : 0;
  ev->seq = m->seq;
  ev->peer = m->peer;
  ev->group = m->group;
  ev->subject = m->subject;
  ev->detail = m->detail;
  ev->timestamp_ms = m->ts;
  ev->server_id = m->server_id;
  ev->text = m->text ? m->text : "";
  ev->text_len = m->text ? m->text_len : 0;
  ev->count = m->count;
  ev->total = m->total;
  ev->device = m->device;
  ev->server_timestamp_ms = m->server_ts;
  for (i = 0; i < m->n_members && i < GROUP_MAX_MEMBERS; i++) members[i] = m->members[i];
  ev->n_members = m->n_members;
  ev->members = m->n_members ? members : NULL;
  ev->ref_author = m->ref_author;
  ev->ref_ts = m->ref_ts;
  ev->timer_s = m->timer_s;
  ev->expire_at_ms = m->expire_at;
  ev->edited = (m->mflags & MSGF_EDITED) != 0;
  ev->deleted = (m->mflags & MSGF_DELETED) != 0;
  ev->request = (m->mflags & MSGF_REQUEST) != 0;
  ev->n_reactions = m->n_reactions;
  ev->reactions = m->n_reactions ? m->reactions : NULL;
  /* Events of the conversation kinds keep their count (the timer) as is. */
}

void msglog_emit(struct sc_client *c, const struct msg *m) {
  struct sc_event ev;
  const char *members[GROUP_MAX_MEMBERS];
  msglog_to_event(m, &ev, members);
  sc__emit(c, &ev);
}

int msglog_seen(struct store *st, uint64_t server_id, uint64_t *seq) {
  char rn[48];
  uint8_t *v;
  size_t n;
  int rc;
  struct rec_rd r;
  snprintf(rn, sizeof rn, "seen/%llu", (unsigned long long)server_id);
  rc = store_get(st, rn, &v, &n);
  if (rc <= 0) return rc;
  rec_rd_init(&r, v, n);
  rec_get_u64(&r, seq);
  rc = rec_rd_end(&r) ? STORE_E_CORRUPT : 1;
  store_free_value(v, n);
  return rc;
}

int msglog_mark_seen(struct store *st, uint64_t server_id, uint64_t seq) {
  char rn[48];
  uint8_t b[8];
  int i;
  for (i = 0; i < 8; i++) b[i] = (uint8_t)(seq >> (56 - 8 * i));
  snprintf(rn, sizeof rn, "seen/%llu", (unsigned long long)server_id);
  return store_put(st, rn, b, sizeof b);
}

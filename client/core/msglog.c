/* SPDX-License-Identifier: Apache-2.0 */
/* msglog.c: message history, seen server ids, unshown list (msglog.h). */
#include "msglog.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "buf.h"

#define MSG_VERSION 1

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
    struct buf_rd r;
    buf_rd_init(&r, v + 8 * i, 8);
    buf_get_u64(&r, &seqs[i]);
  }
  *n = len / 8;
  store_free_value(v, len);
  return 0;
}

static int unshown_save(struct store *st, const uint64_t *seqs, size_t n) {
  struct buf_wr w;
  size_t i;
  int rc;
  if (n == 0) return store_del(st, "unshown");
  buf_wr_init(&w, 8 * MSGLOG_MAX_UNSHOWN);
  for (i = 0; i < n; i++) buf_put_u64(&w, seqs[i]);
  rc = buf_wr_ok(&w) ? STORE_E_IO : store_put(st, "unshown", w.p, w.len);
  buf_wr_free(&w);
  return rc;
}

int msglog_unshown(struct store *st, uint64_t *seqs, size_t max, size_t *n) {
  return unshown_load(st, seqs, max, n);
}

int msglog_add(struct store *st, struct account *a, struct msg *m, int unshown) {
  struct buf_wr w;
  char rn[48];
  int rc;
  m->seq = a->next_seq++;
  buf_wr_init(&w, CLI_MAX_TEXT + 1024);
  buf_put_u8(&w, MSG_VERSION);
  buf_put_u8(&w, m->dir);
  buf_put_u8(&w, m->code);
  buf_put_str16(&w, m->peer, strlen(m->peer));
  buf_put_str16(&w, m->group, strlen(m->group));
  buf_put_u64(&w, m->ts);
  buf_put_u64(&w, m->server_id);
  buf_put_str16(&w, m->text, m->text_len);
  snprintf(rn, sizeof rn, "msg/%llu", (unsigned long long)m->seq);
  rc = buf_wr_ok(&w) ? STORE_E_IO : store_put(st, rn, w.p, w.len);
  buf_wr_free(&w);
  if (rc == 0 && unshown) {
    uint64_t *seqs = calloc(MSGLOG_MAX_UNSHOWN, sizeof *seqs);
    size_t n;
    if (!seqs) return STORE_E_IO;
    if ((rc = unshown_load(st, seqs, MSGLOG_MAX_UNSHOWN, &n)) == 0) {
      if (n == MSGLOG_MAX_UNSHOWN) n--; /* never grow past the cap: the oldest stays in the history only */
      seqs[n++] = m->seq;
      rc = unshown_save(st, seqs, n);
    }
    free(seqs);
  }
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

int msglog_get(struct store *st, uint64_t seq, struct msg *m) {
  struct buf_rd r;
  char rn[48];
  uint8_t *v, ver = 0;
  const uint8_t *t;
  size_t n;
  int rc;
  memset(m, 0, sizeof *m);
  snprintf(rn, sizeof rn, "msg/%llu", (unsigned long long)seq);
  rc = store_get(st, rn, &v, &n);
  if (rc <= 0) return rc == 0 ? STORE_E_CORRUPT : rc;
  buf_rd_init(&r, v, n);
  buf_get_u8(&r, &ver);
  buf_get_u8(&r, &m->dir);
  buf_get_u8(&r, &m->code);
  buf_get_cstr(&r, m->peer, sizeof m->peer);
  buf_get_cstr(&r, m->group, sizeof m->group);
  buf_get_u64(&r, &m->ts);
  buf_get_u64(&r, &m->server_id);
  buf_get_str16(&r, &t, &m->text_len, CLI_MAX_TEXT);
  rc = STORE_E_CORRUPT;
  if (!buf_rd_end(&r) && ver == MSG_VERSION && (m->text = malloc(m->text_len + 1))) {
    memcpy(m->text, t, m->text_len);
    m->text[m->text_len] = 0;
    m->seq = seq;
    rc = 0;
  }
  store_free_value(v, n);
  return rc;
}

int msglog_seen(struct store *st, uint64_t server_id, uint64_t *seq) {
  char rn[48];
  uint8_t *v;
  size_t n;
  int rc;
  struct buf_rd r;
  snprintf(rn, sizeof rn, "seen/%llu", (unsigned long long)server_id);
  rc = store_get(st, rn, &v, &n);
  if (rc <= 0) return rc;
  buf_rd_init(&r, v, n);
  buf_get_u64(&r, seq);
  rc = buf_rd_end(&r) ? STORE_E_CORRUPT : 1;
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

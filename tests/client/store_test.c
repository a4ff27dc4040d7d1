/* SPDX-License-Identifier: Apache-2.0 */
/* store_test.c: the sealed store refuses a rollback of single rows or a mix
 * of old and new rows at open, and migrates an older store (weaker Argon2id
 * limits, or format 1 without a state) on its next unlock.
 *
 * usage: client_store_test   (works in a fresh temporary directory)
 *
 * The file is edited behind the store's back with SQLite directly, the way
 * someone holding the file (a backup tool, malware, a thief returning it)
 * could: they cannot read or seal rows, only copy sealed bytes around. */
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "account.h"
#include "msglog.h"
#include "store.h"

#define PASS "correct horse battery staple"
#define MAX_ROWS 64

static int fails, checks;
static char dir[256], db[300];

static void check(const char *what, int ok) {
  checks++;
  if (!ok) fails++;
  printf("%s %s\n", ok ? "ok  " : "FAIL", what);
}

/* The kv table as it is in the file: (k, v) pairs, copied. */
struct snap {
  int n;
  uint8_t *k[MAX_ROWS], *v[MAX_ROWS];
  int kl[MAX_ROWS], vl[MAX_ROWS];
};

static void snap_take(struct snap *s) {
  sqlite3 *d;
  sqlite3_stmt *st;
  memset(s, 0, sizeof *s);
  if (sqlite3_open(db, &d) || sqlite3_prepare_v2(d, "SELECT k, v FROM kv", -1, &st, NULL)) abort();
  while (sqlite3_step(st) == SQLITE_ROW && s->n < MAX_ROWS) {
    s->kl[s->n] = sqlite3_column_bytes(st, 0);
    s->vl[s->n] = sqlite3_column_bytes(st, 1);
    s->k[s->n] = malloc((size_t)s->kl[s->n]);
    s->v[s->n] = malloc((size_t)s->vl[s->n]);
    memcpy(s->k[s->n], sqlite3_column_blob(st, 0), (size_t)s->kl[s->n]);
    memcpy(s->v[s->n], sqlite3_column_blob(st, 1), (size_t)s->vl[s->n]);
    s->n++;
  }
  sqlite3_finalize(st);
  sqlite3_close(d);
}

static void snap_free(struct snap *s) {
  int i;
  for (i = 0; i < s->n; i++) {
    free(s->k[i]);
    free(s->v[i]);
  }
}

/* Writes row i of s into the file (INSERT OR REPLACE). */
static void put_back(const struct snap *s, int i) {
  sqlite3 *d;
  sqlite3_stmt *st;
  if (sqlite3_open(db, &d) ||
      sqlite3_prepare_v2(d, "INSERT OR REPLACE INTO kv(k, v) VALUES(?1, ?2)", -1, &st, NULL))
    abort();
  sqlite3_bind_blob(st, 1, s->k[i], s->kl[i], SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, s->v[i], s->vl[i], SQLITE_STATIC);
  if (sqlite3_step(st) != SQLITE_DONE) abort();
  sqlite3_finalize(st);
  sqlite3_close(d);
}

static void sql(const char *q) {
  sqlite3 *d;
  if (sqlite3_open(db, &d) || sqlite3_exec(d, q, NULL, NULL, NULL) != SQLITE_OK) {
    fprintf(stderr, "sql failed: %s\n", q);
    abort();
  }
  sqlite3_close(d);
}

static long long meta_int(const char *name) {
  sqlite3 *d;
  sqlite3_stmt *st;
  long long v = -1;
  if (sqlite3_open(db, &d) || sqlite3_prepare_v2(d, "SELECT value FROM meta WHERE name = ?1", -1, &st, NULL)) abort();
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  sqlite3_close(d);
  return v;
}

static int put(const char *name, const char *val) {
  struct store *s;
  char err[256];
  int rc = store_open(&s, dir, PASS, strlen(PASS), err, sizeof err);
  if (rc) return rc;
  rc = store_begin(s);
  if (!rc) rc = store_put(s, name, (const uint8_t *)val, strlen(val));
  if (!rc) rc = store_commit(s);
  store_close(s);
  return rc;
}

static int del(const char *name) {
  struct store *s;
  char err[256];
  int rc = store_open(&s, dir, PASS, strlen(PASS), err, sizeof err);
  if (rc) return rc;
  rc = store_begin(s);
  if (!rc) rc = store_del(s, name);
  if (!rc) rc = store_commit(s);
  store_close(s);
  return rc;
}

/* 1 if the store opens and name holds val. */
static int holds(const char *name, const char *val) {
  struct store *s;
  char err[256];
  uint8_t *v;
  size_t n;
  int ok;
  if (store_open(&s, dir, PASS, strlen(PASS), err, sizeof err)) return 0;
  ok = store_get(s, name, &v, &n) == 1 && n == strlen(val) && memcmp(v, val, n) == 0;
  if (ok) store_free_value(v, n);
  store_close(s);
  return ok;
}

static int open_rc(void) {
  struct store *s;
  char err[256];
  int rc = store_open(&s, dir, PASS, strlen(PASS), err, sizeof err);
  store_close(s);
  return rc;
}

/* Index of the one row of after that differs from before (-1 if not exactly one). */
static int changed_row(const struct snap *before, const struct snap *after, int *in_before) {
  int i, j, found = -1, n = 0;
  for (i = 0; i < after->n; i++)
    for (j = 0; j < before->n; j++)
      if (after->kl[i] == before->kl[j] && memcmp(after->k[i], before->k[j], (size_t)after->kl[i]) == 0 &&
          (after->vl[i] != before->vl[j] || memcmp(after->v[i], before->v[j], (size_t)after->vl[i]) != 0)) {
        found = j;
        n++;
      }
  *in_before = found;
  return n == 1 ? found : -1;
}

int main(void) {
  struct store *s;
  struct snap a, b;
  char err[256];
  int i, j, rc;

  if (sodium_init() < 0) return 1;
  snprintf(dir, sizeof dir, "%s/sotto-store-test.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(dir)) return 1;
  snprintf(db, sizeof db, "%s/%s", dir, STORE_FILE);

  /* An older store: libsodium's INTERACTIVE limits, as sotto made them. */
  rc = store_create_limits(&s, dir, PASS, strlen(PASS), 2, 64ULL << 20, err, sizeof err);
  check("an INTERACTIVE store is created", rc == 0);
  if (rc) return 1;
  if (store_begin(s) || store_put(s, "contact/bob", (const uint8_t *)"verified", 8) ||
      store_put(s, "opk/1", (const uint8_t *)"one-time key", 12) || store_commit(s))
    check("rows written", 0);
  store_close(s);
  check("... with opslimit 2 / 64 MiB", meta_int("opslimit") == 2 && meta_int("memlimit") == (64LL << 20));
  check("its rows open (first unlock migrates it)", holds("contact/bob", "verified") && holds("opk/1", "one-time key"));
  check("... to opslimit 3 / 256 MiB, re-sealed",
        meta_int("opslimit") == (long long)STORE_OPSLIMIT && meta_int("memlimit") == (long long)STORE_MEMLIMIT);
  check("a wrong passphrase is still refused", store_open(&s, dir, "wrong", 5, err, sizeof err) == STORE_E_PASS);

  /* Single-row rollback: "verified" undone by putting the old sealed row back. */
  snap_take(&a);
  check("an update", put("contact/bob", "not verified") == 0 && holds("contact/bob", "not verified"));
  snap_take(&b);
  i = changed_row(&a, &b, &j);
  check("exactly one row changed", i >= 0);
  if (i >= 0) put_back(&a, i);
  rc = open_rc();
  check("the old row put back is detected at open (STORE_E_ROLLBACK)", rc == STORE_E_ROLLBACK);
  if (i >= 0) {
    for (j = 0; j < b.n; j++)
      if (b.kl[j] == a.kl[i] && memcmp(b.k[j], a.k[i], (size_t)a.kl[i]) == 0) put_back(&b, j);
  }
  check("with the current row back, the store opens", holds("contact/bob", "not verified"));

  /* A used one-time key brought back after its deletion (a replay). */
  snap_free(&a);
  snap_take(&a);
  check("a one-time key is used (deleted)", del("opk/1") == 0);
  for (i = 0; i < a.n; i++) put_back(&a, i); /* every old row, new state */
  check("the deleted row put back is detected", open_rc() == STORE_E_ROLLBACK);
  sql("DELETE FROM kv");
  check("an emptied table is detected", open_rc() == STORE_E_ROLLBACK);
  for (i = 0; i < b.n; i++) put_back(&b, i);
  snap_free(&b);
  snap_take(&b);
  /* b holds opk/1 while the state says deleted: still a mix */
  check("rows of two times mixed are detected", open_rc() == STORE_E_ROLLBACK);

  /* A format 1 store (no state) gets one at its next unlock. */
  sql("DELETE FROM kv");
  for (i = 0; i < a.n; i++) put_back(&a, i);
  sql("DELETE FROM meta WHERE name = 'state'; UPDATE meta SET value = 1 WHERE name = 'format';");
  check("a format 1 store opens and is migrated", holds("opk/1", "one-time key") && meta_int("format") == 2);
  check("... and is checked from then on", put("x", "y") == 0 && holds("x", "y"));
  snap_free(&a);
  snap_free(&b);

  /* The unshown list at its cap keeps the newest: a flood while no front end
   * shows messages drops the oldest from the list (they stay in the history),
   * never what arrives after. */
  if (store_open(&s, dir, PASS, strlen(PASS), err, sizeof err) == 0) {
    struct account acct;
    static struct msg m;
    uint64_t *seqs = calloc(MSGLOG_MAX_UNSHOWN, sizeof *seqs);
    size_t n = 0;
    memset(&acct, 0, sizeof acct);
    acct.next_seq = 1;
    rc = seqs ? store_begin(s) : -1;
    for (i = 0; rc == 0 && i < MSGLOG_MAX_UNSHOWN + 3; i++) {
      memset(&m, 0, sizeof m);
      m.dir = MSG_IN;
      snprintf(m.peer, sizeof m.peer, "bob");
      rc = msglog_add(s, &acct, &m, 1);
    }
    if (rc == 0) rc = store_commit(s);
    check("4099 messages logged unshown", rc == 0);
    check("the unshown list holds the cap", rc == 0 && msglog_unshown(s, seqs, MSGLOG_MAX_UNSHOWN, &n) == 0 &&
                                                n == MSGLOG_MAX_UNSHOWN);
    check("... the newest 4096 (the three oldest dropped)",
          n == MSGLOG_MAX_UNSHOWN && seqs[0] == 4 && seqs[n - 1] == MSGLOG_MAX_UNSHOWN + 3);
    free(seqs);
    store_close(s);
  } else {
    check("the store opens for the unshown list", 0);
  }

  {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
  }
  printf("%s: %d of %d checks failed\n", fails ? "FAIL" : "ok", fails, checks);
  return fails ? 1 : 0;
}

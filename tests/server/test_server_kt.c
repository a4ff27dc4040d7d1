/* SPDX-License-Identifier: Apache-2.0 */
/* test_server_kt.c: the key-transparency log of sotto-server (--kt 1) with
 * the real binary on loopback: registrations appear in the log, search
 * proofs and heads verify with libsotto's client functions, the log
 * survives a restart (replay), consistency proofs link old heads to new
 * ones, a witness (libsotto's) follows KT_UPDATES and cosigns, and a log
 * forked by editing the database is refused by that witness. The same
 * suite runs on PostgreSQL (server_kt_pg, tests/server/with_pg.sh), where
 * `sotto-server export` and `import` carry the log and the witnesses'
 * cosignatures. Every accepted DEVLIST_PUT logs the label "devices:" +
 * username (u32 version || SHA-256 of the list) in the same transaction,
 * and KT_SEARCH_LIST proves it. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sotto/devlist.h>
#include <sotto/keys.h>
#include <sotto/kt.h>

#include "srvtest.h"
#include "testutil.h"
#include "wire.h"

#define WAIT_MS 5000

static int copy_into(const char *from_dir, const char *to_dir, const char *name) {
  char from[600], to[600], buf[8192];
  ssize_t n;
  int in, out, rc = 0;
  snprintf(from, sizeof from, "%s/%s", from_dir, name);
  snprintf(to, sizeof to, "%s/%s", to_dir, name);
  in = open(from, O_RDONLY);
  out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (in < 0 || out < 0) rc = -1;
  while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) rc = -1;
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  return rc;
}

/* Runs SQL on p's store (SQLite file or PostgreSQL database): 0 or -1. */
static int store_exec(const struct srv_proc *p, const char *sql) {
  char path[600];
  sqlite3 *db = NULL;
  int rc;
  if (p->store[0]) {
    char name[32];
    snprintf(name, sizeof name, "t_%s", p->dir + strlen(p->dir) - 6); /* srvtest.c's database name */
    return srv_pg_exec(name, sql);
  }
  snprintf(path, sizeof path, "%s/sotto.db", p->dir);
  if (sqlite3_open(path, &db) != SQLITE_OK) {
    sqlite3_close(db);
    return -1;
  }
  rc = sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : -1;
  sqlite3_close(db);
  return rc;
}

static const char *const KT_ARGS[] = {"--kt", "1", NULL};
/* The same without the registration rate limits (tests that register many). */
#define NO_REG_LIMITS "--register-rate", "1e9", "--register-burst", "1e9", "--register-prefix-rate", "1e9", \
    "--register-prefix-burst", "1e9", "--register-global-rate", "1e9", "--register-global-burst", "1e9"
static const char *const KT_ARGS_MANY[] = {"--kt", "1", NO_REG_LIMITS, NULL};

/* One request, its answer's payload (malloc'd) or ERR code (< 0 as -code). */
static int call_once(struct sotto_net *c, uint8_t type, const uint8_t *p, size_t len, uint8_t **out,
                     size_t *out_len) {
  static uint32_t id = 100;
  struct sotto_net_event ev;
  uint32_t want = __atomic_add_fetch(&id, 1, __ATOMIC_RELAXED); /* par_run calls it from several threads */
  *out = NULL;
  *out_len = 0;
  if (sotto_net_write_frame(c, type, want, p, len) != 0) return -1000;
  for (int i = 0; i < 50; i++) {
    if (sotto_net_next_event(c, WAIT_MS, &ev) != 1) return -1001;
    if (ev.kind == SOTTO_NET_EV_ANSWER && ev.req_id == want) {
      int rc = ev.code ? -(int)ev.code : 0;
      if (!rc) {
        *out = ev.payload;
        *out_len = ev.payload_len;
        ev.payload = NULL;
      }
      sotto_net_event_clear(&ev);
      return rc;
    }
    sotto_net_event_clear(&ev);
  }
  return -1002;
}

/* call_once, again while the answer is ERR 44 (a name not in the log yet:
 * the server logs new names asynchronously), as clients do: at most 5 s. */
static int call(struct sotto_net *c, uint8_t type, const uint8_t *p, size_t len, uint8_t **out, size_t *out_len) {
  int rc, i;
  for (i = 0;; i++) {
    rc = call_once(c, type, p, len, out, out_len);
    if (rc != -(int)SOTTO_SRV_E_KT_PENDING || i == 500) return rc;
    usleep(10000);
  }
}

static void log_id_of(struct srv_proc *p, struct sotto_kt_log_id *id) {
  char path[600];
  uint8_t key[64];
  struct sotto_kt_dir *d = NULL;
  FILE *f;
  memset(id, 0, sizeof *id);
  snprintf(path, sizeof path, "%s/kt.key", p->dir);
  f = fopen(path, "rb");
  CHECK(f != NULL);
  if (!f) return;
  CHECK(fread(key, 1, 64, f) == 64);
  fclose(f);
  CHECK(sotto_kt_dir_new(&d, key, key + 32) == 0);
  if (d) sotto_kt_dir_log_id(id, d);
  sotto_kt_dir_free(d);
}

static int get_head(struct sotto_net *c, struct sotto_kt_head *h) {
  uint8_t *a;
  size_t n;
  struct sotto_srv_kt_head kh;
  int rc = call(c, SOTTO_SRV_KT_HEAD, NULL, 0, &a, &n);
  if (rc) return rc;
  rc = sotto__srv_parse_kt_head(a, n, &kh) == 0 && sotto_kt_head_decode(h, kh.head, SOTTO_KT_HEAD_LEN) == 0 ? 0 : -2000;
  free(a);
  return rc;
}

/* 0 if the search proof for user verifies against its head, with the value. */
static int search_ok(struct sotto_net *c, const struct sotto_kt_log_id *id, const char *user, uint32_t *version,
                     uint8_t *value, size_t *value_len) {
  uint8_t b[64], *a;
  size_t n;
  struct sotto__wr w;
  struct sotto_srv_kt_proof kp;
  struct sotto_kt_head h;
  int rc;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_kt_search_req(&w, user);
  if ((rc = call(c, SOTTO_SRV_KT_SEARCH, b, w.len, &a, &n)) != 0) return rc;
  rc = -3000;
  if (sotto__srv_parse_kt_proof(a, n, &kp) == 0 && sotto_kt_head_decode(&h, kp.head, SOTTO_KT_HEAD_LEN) == 0 &&
      sotto_kt_head_verify(&h, id) == 0)
    rc = sotto_kt_search_verify(version, value, value_len, &h, id, (const uint8_t *)user, strlen(user), kp.proof,
                                kp.proof_len);
  free(a);
  return rc;
}

static int reg(struct srv_proc *p, struct sotto_net_ctx **ctx, const char *name, uint8_t ik[33]) {
  struct sotto_net *c = srv_connect(p, ctx, 1);
  uint8_t secret[32];
  uint32_t dev;
  int rc;
  if (!c) return -1;
  memset(ik, 0x05, 33);
  memcpy(ik + 1, name, strlen(name) < 32 ? strlen(name) : 32);
  rc = sotto_net_register(c, name, ik, 33, &dev, secret);
  if (rc == 0) {
    /* The server logs a new name after answering (kt-pending-max): wait
     * until it is in the log (KT_SEARCH no longer ERR 44), as the tests
     * below look at heads right after (at most 10 s). */
    uint8_t b[64], *a = NULL;
    size_t n;
    struct sotto__wr w;
    int i, r;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_search_req(&w, name);
    for (i = 0; i < 500; i++) {
      r = call_once(c, SOTTO_SRV_KT_SEARCH, b, w.len, &a, &n);
      free(a);
      a = NULL;
      if (r != -(int)SOTTO_SRV_E_KT_PENDING && r != -(int)SOTTO_SRV_E_RATE) break;
      usleep(20000);
    }
  }
  sotto_net_close(c);
  return rc;
}

/* Applies entries first.. to the witness: 0, or the first apply error. */
static int witness_follow(struct sotto_net *c, struct sotto_kt_witness *wt, uint64_t first, uint64_t *applied) {
  uint8_t b[16], *a;
  size_t n, k, i;
  struct sotto__wr w;
  struct sotto_srv_kt_entry e[SOTTO_SRV_KT_MAX_UPDATES];
  struct sotto_kt_head h;
  int rc;
  *applied = 0;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_kt_updates_req(&w, first, SOTTO_SRV_KT_MAX_UPDATES);
  if ((rc = call(c, SOTTO_SRV_KT_UPDATES, b, w.len, &a, &n)) != 0) return rc;
  rc = sotto__srv_parse_kt_updates(a, n, e, SOTTO_SRV_KT_MAX_UPDATES, SOTTO_KT_MAX_UPDATE_LEN, &k);
  for (i = 0; rc == 0 && i < k; i++) {
    if ((rc = sotto_kt_head_decode(&h, e[i].head, SOTTO_KT_HEAD_LEN)) == 0 &&
        (rc = sotto_kt_witness_apply(wt, e[i].update, e[i].update_len, &h)) == 0)
      (*applied)++;
  }
  free(a);
  return rc;
}

/* Runs sotto-witness against p with state dir st; its exit status, output in out. */
static int run_witness(struct srv_proc *p, const char *st, const struct sotto_kt_log_id *id, char *out,
                       size_t cap) {
  char cmd[2048], key[129];
  uint8_t idb[64];
  size_t n = 0;
  FILE *f;
  int status;
  memcpy(idb, id->sig_pk, 32);
  memcpy(idb + 32, id->vrf_pk, 32);
  sodium_bin2hex(key, sizeof key, idb, sizeof idb);
  snprintf(cmd, sizeof cmd, "%s --server 127.0.0.1:%s --fingerprint %s --state %s --log-key %s --no-push 2>&1",
           SOTTO_WITNESS_BIN, p->port, p->fp, st, key);
  out[0] = 0;
  if ((f = popen(cmd, "r")) == NULL) return -1;
  while (n + 1 < cap) {
    size_t k = fread(out + n, 1, cap - 1 - n, f);
    if (k == 0) break;
    n += k;
  }
  out[n] = 0;
  status = pclose(f);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void test_kt(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *c;
  struct sotto_kt_log_id id;
  struct sotto_kt_head h1, h2;
  struct sotto_kt_witness *wt = NULL;
  uint8_t ik_a[33], ik_b[33], ik_c[33], ik_d[33], value[SOTTO_KT_MAX_VALUE_LEN], b[16], *a;
  uint32_t version;
  size_t vlen, n;
  uint64_t applied;
  struct sotto__wr w;
  char wst[600], wout[4096];
  int rc;

  CHECK(srv_mkdir(&p, "kt") == 0);
  snprintf(wst, sizeof wst, "%s/witness-state", p.dir);
  CHECK(srv_start(&p, KT_ARGS) == 0);
  log_id_of(&p, &id);
  /* No entry yet: no head. */
  c = srv_connect(&p, &ctx, 1);
  CHECK(c != NULL);
  CHECK(get_head(c, &h1) == -SOTTO_SRV_E_NOT_FOUND);
  sotto_net_close(c);

  CHECK(reg(&p, &ctx, "alice", ik_a) == 0);
  CHECK(reg(&p, &ctx, "bob", ik_b) == 0);
  c = srv_connect(&p, &ctx, 1); /* heads and proofs are public: no AUTH */
  CHECK(c != NULL);
  CHECK(get_head(c, &h1) == 0);
  CHECK(h1.tree_size >= 1 && h1.tree_size <= 2);
  CHECK(sotto_kt_head_verify(&h1, &id) == 0);
  /* A registered user: the proof shows version 0 with the identity key. */
  vlen = sizeof value;
  CHECK(search_ok(c, &id, "alice", &version, value, &vlen) == 0);
  CHECK(version == 0 && vlen == 33 && memcmp(value, ik_a, 33) == 0);
  vlen = sizeof value;
  CHECK(search_ok(c, &id, "bob", &version, value, &vlen) == 0); /* the label is the canonical name */
  CHECK(version == 0 && vlen == 33 && memcmp(value, ik_b, 33) == 0);
  /* Someone who never registered: a proof of absence. */
  vlen = sizeof value;
  CHECK(search_ok(c, &id, "nobody", &version, value, &vlen) == 0 && version == SOTTO_KT_ABSENT);

  /* UNREGISTER logs a new version with an empty value (the deletion marker). */
  {
    struct sotto_net *e = srv_connect(&p, &ctx, 1);
    uint8_t secret[32], ik_e[33];
    uint32_t dev = 0;
    memset(ik_e, 0x05, sizeof ik_e);
    CHECK(e != NULL);
    if (e) {
      CHECK(sotto_net_register(e, "erin", ik_e, sizeof ik_e, &dev, secret) == 0);
      CHECK(sotto_net_auth(e, "erin", dev, secret, NULL, NULL) == 0);
      vlen = sizeof value;
      CHECK(search_ok(c, &id, "erin", &version, value, &vlen) == 0 && version == 0 && vlen == 33);
      CHECK(sotto_net_unregister(e) == 0);
      sotto_net_close(e);
    }
    vlen = sizeof value;
    rc = search_ok(c, &id, "erin", &version, value, &vlen);
    CHECK_RC(rc, 0);
    CHECK(version == 1 && vlen == 0);
    CHECK(get_head(c, &h1) == 0);
  }
  /* sotto-witness follows the log, keeps it in its state and cosigns. */
  CHECK(run_witness(&p, wst, &id, wout, sizeof wout) == 0);
  CHECK(strstr(wout, "cosignature ") != NULL);
  CHECK(run_witness(&p, wst, &id, wout, sizeof wout) == 0 && strstr(wout, "accepted 0 new entries") != NULL);
  /* A witness follows the log and cosigns its head. */
  CHECK(sotto_kt_witness_new(&wt, &id) == 0);
  CHECK_RC(witness_follow(c, wt, 0, &applied), 0);
  CHECK(applied == h1.tree_size);
  {
    uint8_t seed[32], cos[SOTTO_KT_COSIG_LEN], pk[32], sk[64];
    randombytes_buf(seed, sizeof seed);
    CHECK(sotto_kt_witness_cosign(cos, wt, seed, (uint64_t)time(NULL), &h1) == 0);
    crypto_sign_seed_keypair(pk, sk, seed);
    CHECK(sotto_kt_cosig_verify(cos, pk, &h1, &id) == 0);
  }
  sotto_net_close(c);

  /* Restart: the log is replayed from the store. */
  CHECK(srv_stop(&p) == 0);
  CHECK(srv_start(&p, KT_ARGS) == 0);
  CHECK(reg(&p, &ctx, "carol", ik_c) == 0);
  c = srv_connect(&p, &ctx, 1);
  CHECK(c != NULL);
  CHECK(get_head(c, &h2) == 0);
  CHECK(h2.tree_size == h1.tree_size + 1);
  vlen = sizeof value;
  CHECK(search_ok(c, &id, "alice", &version, value, &vlen) == 0 && version == 0 && memcmp(value, ik_a, 33) == 0);
  vlen = sizeof value;
  CHECK(search_ok(c, &id, "carol", &version, value, &vlen) == 0 && version == 0 && memcmp(value, ik_c, 33) == 0);
  /* Consistency from the old head to the new one. */
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_u64_req(&w, h1.tree_size);
  CHECK(call(c, SOTTO_SRV_KT_CONSISTENCY, b, w.len, &a, &n) == 0);
  if (a) {
    struct sotto_srv_kt_proof kp;
    CHECK(sotto__srv_parse_kt_proof(a, n, &kp) == 0);
    CHECK(sotto_kt_log_verify_consistency(h1.root, h1.tree_size, h2.root, h2.tree_size, kp.proof, kp.proof_len) == 0);
    free(a);
  }
  /* A consistency request beyond the log is answered "not found". */
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_u64_req(&w, h2.tree_size + 5);
  CHECK(call(c, SOTTO_SRV_KT_CONSISTENCY, b, w.len, &a, &n) == -SOTTO_SRV_E_NOT_FOUND);
  /* The witness takes the new entry. */
  CHECK(witness_follow(c, wt, h1.tree_size, &applied) == 0 && applied == 1);
  CHECK(run_witness(&p, wst, &id, wout, sizeof wout) == 0 && strstr(wout, "accepted 1 new entries") != NULL);
  sotto_net_close(c);

  /* A server killed (SIGKILL) between batches keeps every entry it
   * answered for. */
  srv_kill(&p);
  CHECK(srv_start(&p, KT_ARGS) == 0);
  c = srv_connect(&p, &ctx, 1);
  CHECK(c != NULL);
  {
    struct sotto_kt_head hk;
    CHECK(c && get_head(c, &hk) == 0 && hk.tree_size == h2.tree_size && memcmp(hk.root, h2.root, 32) == 0);
    vlen = sizeof value;
    CHECK(c && search_ok(c, &id, "carol", &version, value, &vlen) == 0 && version == 0);
  }
  sotto_net_close(c);

  /* `sotto-server export` and `import` (PostgreSQL) carry the log: a
   * server on the SQLite copy, and one on a PostgreSQL store imported from
   * that copy, serve the same head and the same proofs. */
  if (srv_pg()) {
    struct srv_proc q;
    struct sotto_kt_head h3;
    char qstore[sizeof q.store], *out;
    int st = -1;
    CHECK(srv_stop(&p) == 0);
    if (srv_mkdir(&q, "kt-export") != 0) {
      CHECK(!"data directory");
      return;
    }
    memcpy(qstore, q.store, sizeof qstore);
    {
      const char *args[] = {"export", "--store", p.store, q.dir, NULL};
      out = srv_run_capture(args, &st);
      CHECK(st == 0 && out && strstr(out, "key-transparency entries"));
      if (out) {
        char want[64];
        snprintf(want, sizeof want, "export: %llu key-transparency entries", (unsigned long long)h2.tree_size);
        CHECK(strstr(out, want) != NULL);
      }
      free(out);
    }
    CHECK(copy_into(p.dir, q.dir, "tls.key") == 0 && copy_into(p.dir, q.dir, "tls.crt") == 0 &&
          copy_into(p.dir, q.dir, "kt.key") == 0);
    q.store[0] = 0; /* SQLite in q.dir */
    CHECK(srv_start(&q, KT_ARGS) == 0);
    c = srv_connect(&q, &ctx, 1);
    CHECK(c != NULL);
    CHECK(c && get_head(c, &h3) == 0 && h3.tree_size == h2.tree_size && memcmp(h3.root, h2.root, 32) == 0);
    vlen = sizeof value;
    CHECK(c && search_ok(c, &id, "alice", &version, value, &vlen) == 0 && version == 0 &&
          memcmp(value, ik_a, 33) == 0);
    sotto_net_close(c);
    CHECK(srv_stop(&q) == 0);
    memcpy(q.store, qstore, sizeof q.store);
    {
      const char *args[] = {"import", "--store", q.store, q.dir, NULL};
      out = srv_run_capture(args, &st);
      CHECK(st == 0 && out && strstr(out, "key-transparency entries") && strstr(out, "key-transparency values"));
      free(out);
    }
    CHECK(srv_start(&q, KT_ARGS) == 0); /* on the imported PostgreSQL store */
    c = srv_connect(&q, &ctx, 1);
    CHECK(c != NULL);
    CHECK(c && get_head(c, &h3) == 0 && h3.tree_size == h2.tree_size && memcmp(h3.root, h2.root, 32) == 0);
    vlen = sizeof value;
    CHECK(c && search_ok(c, &id, "carol", &version, value, &vlen) == 0 && version == 0 &&
          memcmp(value, ik_c, 33) == 0);
    sotto_net_close(c);
    CHECK(srv_stop(&q) == 0);
    srv_rmdir(&q);
    CHECK(srv_start(&p, KT_ARGS) == 0);
  } else {
  /* `sotto-server backup` takes the log's keys along: a server started on
   * the copy serves the same head, signed by the same key. */
  {
    struct srv_proc q = p;
    struct sotto_kt_head h3;
    char *out;
    int st = -1;
    const char *args[] = {"backup", "--data", p.dir, q.dir, NULL};
    CHECK(snprintf(q.dir, sizeof q.dir, "%s-copy", p.dir) < (int)sizeof q.dir);
    args[3] = q.dir;
    out = srv_run_capture(args, &st);
    CHECK(st == 0);
    free(out);
    CHECK(srv_stop(&p) == 0);
    CHECK(srv_start(&q, KT_ARGS) == 0);
    c = srv_connect(&q, &ctx, 1);
    CHECK(c != NULL);
    CHECK(get_head(c, &h3) == 0 && h3.tree_size == h2.tree_size && memcmp(h3.root, h2.root, 32) == 0);
    CHECK(sotto_kt_head_verify(&h3, &id) == 0);
    sotto_net_close(c);
    CHECK(srv_stop(&q) == 0);
    srv_rmdir(&q);
    CHECK(srv_start(&p, KT_ARGS) == 0);
  }
  }

  /* A forked log: the newest entry is cut from the database and the
   * server, restarted, logs another registration at the same index. The
   * witness, which accepted the old entry there, refuses the new one. */
  CHECK(srv_stop(&p) == 0);
  {
    char sql[128];
    snprintf(sql, sizeof sql, "DELETE FROM kt_entries WHERE idx = %llu", (unsigned long long)(h2.tree_size - 1));
    CHECK(store_exec(&p, sql) == 0);
  }
  CHECK(srv_start(&p, KT_ARGS) == 0);
  CHECK(reg(&p, &ctx, "dave", ik_d) == 0);
  c = srv_connect(&p, &ctx, 1);
  CHECK(c != NULL);
  CHECK(get_head(c, &h1) == 0 && h1.tree_size == h2.tree_size);
  CHECK(memcmp(h1.root, h2.root, 32) != 0);
  rc = witness_follow(c, wt, h2.tree_size - 1, &applied);
  CHECK_RC(rc, SOTTO_ERR_KT_FORK);
  /* So does sotto-witness, which saw the old entry too (ghost test 3: split view). */
  rc = run_witness(&p, wst, &id, wout, sizeof wout);
  if (rc != 2) fprintf(stderr, "sotto-witness said (%d): %s\n", rc, wout);
  CHECK(rc == 2);
  CHECK(strstr(wout, "REFUSED") != NULL && strstr(wout, "forked") != NULL);
  sotto_net_close(c);

  /* Bad requests: a KT_UPDATES past the log is "not found"; one with a count
   * of 0 is malformed and closes the connection. */
  c = srv_connect(&p, &ctx, 1);
  CHECK(c != NULL);
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_kt_updates_req(&w, 1000, 1);
  CHECK(call(c, SOTTO_SRV_KT_UPDATES, b, w.len, &a, &n) == -SOTTO_SRV_E_NOT_FOUND);
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_kt_updates_req(&w, 0, 0);
  CHECK(call(c, SOTTO_SRV_KT_UPDATES, b, w.len, &a, &n) != 0 && a == NULL);
  CHECK(get_head(c, &h1) != 0); /* the connection is gone */
  sotto_net_close(c);

  /* Without --kt the requests are refused. */
  CHECK(srv_stop(&p) == 0);
  CHECK(srv_start(&p, NULL) == 0);
  c = srv_connect(&p, &ctx, 1);
  CHECK(c != NULL);
  CHECK(get_head(c, &h1) == -SOTTO_SRV_E_NOT_FOUND);
  sotto_net_close(c);
  CHECK(srv_stop(&p) == 0);
  sotto_kt_witness_free(wt);
  sotto_net_ctx_free(ctx);
  {
    static const char *const files[] = {"witness.key", "log.id", "entries"};
    char path[700];
    for (size_t i = 0; i < 3; i++) {
      snprintf(path, sizeof path, "%s/%s", wst, files[i]);
      unlink(path);
    }
    rmdir(wst);
  }
  srv_rmdir(&p);
}

/* KT_CONFIG and KT_COSIGN: the server announces its configured witnesses,
 * takes a configured witness's cosignature of its current head only (and
 * keeps it over a restart), and refuses an unknown key, a bad signature
 * and a head it no longer serves. */
static int head_with_cosigs(struct sotto_net *c, uint8_t hb[SOTTO_KT_HEAD_LEN], uint8_t *cos, size_t *n_cos) {
  uint8_t *a;
  size_t n;
  struct sotto_srv_kt_head kh;
  int rc = call(c, SOTTO_SRV_KT_HEAD, NULL, 0, &a, &n);
  if (rc) return rc;
  rc = -2000;
  if (sotto__srv_parse_kt_head(a, n, &kh) == 0 && kh.n_cosigs <= 4) {
    memcpy(hb, kh.head, SOTTO_KT_HEAD_LEN);
    memcpy(cos, kh.cosigs, kh.n_cosigs * SOTTO_KT_COSIG_LEN);
    *n_cos = kh.n_cosigs;
    rc = 0;
  }
  free(a);
  return rc;
}

static int cosign_req(struct sotto_net *c, const uint8_t pk[32], const uint8_t hb[SOTTO_KT_HEAD_LEN],
                      const uint8_t cos[SOTTO_KT_COSIG_LEN]) {
  uint8_t b[SOTTO_KT_SIGN_PK_LEN + SOTTO_KT_HEAD_LEN + SOTTO_KT_COSIG_LEN], *a = NULL;
  size_t n;
  struct sotto__wr w;
  int rc;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_kt_cosign_req(&w, pk, hb, cos);
  rc = call(c, SOTTO_SRV_KT_COSIGN, b, w.len, &a, &n);
  free(a);
  return rc;
}

static void test_kt_cosign(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *c;
  struct sotto_kt_log_id id;
  struct sotto_kt_head h;
  struct sotto_kt_witness *wt = NULL;
  uint8_t seed[32], pk[32], sk[64], other[32], ik[33], hb[SOTTO_KT_HEAD_LEN], old[SOTTO_KT_HEAD_LEN];
  uint8_t cos[SOTTO_KT_COSIG_LEN], bad[SOTTO_KT_COSIG_LEN], got[4 * SOTTO_KT_COSIG_LEN], *a;
  char arg[128], pkhex[65];
  const char *args[] = {"--kt", "1", "--kt-witness", arg, NULL};
  size_t n, ncos;
  uint64_t applied;

  randombytes_buf(seed, sizeof seed);
  crypto_sign_seed_keypair(pk, sk, seed);
  randombytes_buf(other, sizeof other);
  sodium_bin2hex(pkhex, sizeof pkhex, pk, sizeof pk);
  snprintf(arg, sizeof arg, "w1:%s", pkhex);
  CHECK(srv_mkdir(&p, "ktcosign") == 0);
  CHECK(srv_start(&p, args) == 0);
  log_id_of(&p, &id);
  CHECK(reg(&p, &ctx, "alice", ik) == 0);
  c = srv_connect(&p, &ctx, 1);
  CHECK(c != NULL);
  if (!c) return;
  /* KT_CONFIG: the log's keys and w1. */
  CHECK(call(c, SOTTO_SRV_KT_CONFIG, NULL, 0, &a, &n) == 0);
  if (a) {
    struct sotto_srv_kt_config m;
    CHECK(sotto__srv_parse_kt_config(a, n, &m) == 0);
    CHECK(m.n == 1 && m.w[0].name.len == 2 && memcmp(m.w[0].name.p, "w1", 2) == 0 && memcmp(m.w[0].pk, pk, 32) == 0);
    CHECK(memcmp(m.sig_pk, id.sig_pk, 32) == 0 && memcmp(m.vrf_pk, id.vrf_pk, 32) == 0);
    free(a);
  }
  /* No cosignature yet. */
  CHECK(head_with_cosigs(c, hb, got, &ncos) == 0 && ncos == 0);
  CHECK(sotto_kt_head_decode(&h, hb, sizeof hb) == 0);
  CHECK(sotto_kt_witness_new(&wt, &id) == 0);
  CHECK(witness_follow(c, wt, 0, &applied) == 0 && applied == h.tree_size);
  CHECK(sotto_kt_witness_cosign(cos, wt, seed, (uint64_t)time(NULL), &h) == 0);
  /* Refused: an unknown witness, a bad signature. */
  CHECK(cosign_req(c, other, hb, cos) == -SOTTO_SRV_E_KT_WITNESS);
  memcpy(bad, cos, sizeof bad);
  bad[SOTTO_KT_COSIG_LEN - 1] ^= 1;
  CHECK(cosign_req(c, pk, hb, bad) == -SOTTO_SRV_E_KT_COSIG);
  CHECK(head_with_cosigs(c, hb, got, &ncos) == 0 && ncos == 0);
  /* Taken and served. */
  CHECK(cosign_req(c, pk, hb, cos) == 0);
  CHECK(head_with_cosigs(c, hb, got, &ncos) == 0 && ncos == 1 && sotto_kt_cosig_verify(got, pk, &h, &id) == 0);
  sotto_net_close(c);
  /* Kept over a restart. */
  CHECK(srv_stop(&p) == 0);
  CHECK(srv_start(&p, args) == 0);
  c = srv_connect(&p, &ctx, 1);
  CHECK(c != NULL);
  if (c) {
    CHECK(head_with_cosigs(c, hb, got, &ncos) == 0 && ncos == 1);
    sotto_net_close(c);
  }
  /* A DATA/kt.cosigs file of an older server is moved into the store at
   * start (and removed); a record in it that does not verify is dropped. */
  CHECK(srv_stop(&p) == 0);
  CHECK(store_exec(&p, "DELETE FROM kt_cosigs") == 0);
  {
    char path[600];
    uint8_t rec[1 + 2 * (32 + SOTTO_KT_HEAD_LEN + SOTTO_KT_COSIG_LEN)];
    FILE *f;
    rec[0] = 2;
    memcpy(rec + 1, pk, 32);
    memcpy(rec + 33, hb, SOTTO_KT_HEAD_LEN);
    memcpy(rec + 33 + SOTTO_KT_HEAD_LEN, cos, SOTTO_KT_COSIG_LEN);
    memcpy(rec + 225, other, 32); /* not a configured witness */
    memcpy(rec + 257, hb, SOTTO_KT_HEAD_LEN);
    memcpy(rec + 257 + SOTTO_KT_HEAD_LEN, cos, SOTTO_KT_COSIG_LEN);
    snprintf(path, sizeof path, "%s/kt.cosigs", p.dir);
    CHECK((f = fopen(path, "wb")) != NULL);
    if (f) {
      CHECK(fwrite(rec, 1, sizeof rec, f) == sizeof rec);
      fclose(f);
    }
    CHECK(chmod(path, 0600) == 0);
    CHECK(srv_start(&p, args) == 0);
    CHECK(access(path, F_OK) != 0);
  }
  c = srv_connect(&p, &ctx, 1);
  CHECK(c != NULL);
  if (c) {
    CHECK(head_with_cosigs(c, hb, got, &ncos) == 0 && ncos == 1 && sotto_kt_cosig_verify(got, pk, &h, &id) == 0);
    sotto_net_close(c);
  }
  /* The log moves on: the old cosignature is not served with the new head,
   * and a cosignature of the old head is refused as stale. */
  memcpy(old, hb, sizeof old);
  CHECK(reg(&p, &ctx, "bob", ik) == 0);
  c = srv_connect(&p, &ctx, 1);
  CHECK(c != NULL);
  if (c) {
    uint8_t v[SOTTO_KT_MAX_VALUE_LEN];
    uint32_t ver;
    size_t vl = sizeof v;
    CHECK(search_ok(c, &id, "bob", &ver, v, &vl) == 0 && ver == 0); /* logged (waits out ERR 44) */
    CHECK(head_with_cosigs(c, hb, got, &ncos) == 0 && ncos == 0 && memcmp(hb, old, sizeof old) != 0);
    CHECK(cosign_req(c, pk, old, cos) == -SOTTO_SRV_E_KT_STALE);
    sotto_net_close(c);
  }
  sotto_kt_witness_free(wt);
  sodium_memzero(sk, sizeof sk);
  if (ctx) sotto_net_ctx_free(ctx);
  CHECK(srv_stop(&p) == 0);
  srv_rmdir(&p);
}

/* Backfill: accounts made while the server ran without --kt are logged at
 * the next start with it (version 0, their identity key), once. */
static void test_kt_backfill(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *c;
  struct sotto_kt_log_id id;
  struct sotto_kt_head h1, h2;
  uint8_t ik[3][33], value[SOTTO_KT_MAX_VALUE_LEN];
  static const char *const names[3] = {"una", "vic", "wes"};
  uint32_t version;
  size_t vlen, n;
  char *log;
  int i;
  CHECK(srv_mkdir(&p, "ktbackfill") == 0);
  CHECK(srv_start(&p, NULL) == 0);
  for (i = 0; i < 3; i++) CHECK(reg(&p, &ctx, names[i], ik[i]) == 0);
  CHECK(srv_stop(&p) == 0);
  CHECK(srv_start(&p, KT_ARGS) == 0);
  log_id_of(&p, &id);
  log = tu_read_file(p.log, &n);
  CHECK(log && strstr(log, "event=kt_backfill accounts=3"));
  free(log);
  c = srv_connect(&p, &ctx, 1);
  CHECK(c != NULL);
  CHECK(c && get_head(c, &h1) == 0 && h1.tree_size == 1 && sotto_kt_head_verify(&h1, &id) == 0);
  for (i = 0; c && i < 3; i++) {
    vlen = sizeof value;
    CHECK(search_ok(c, &id, names[i], &version, value, &vlen) == 0 && version == 0 && vlen == 33 &&
          memcmp(value, ik[i], 33) == 0);
  }
  sotto_net_close(c);
  /* Once: the next start logs nothing more. */
  CHECK(srv_stop(&p) == 0);
  CHECK(srv_start(&p, KT_ARGS) == 0);
  c = srv_connect(&p, &ctx, 1);
  CHECK(c != NULL);
  CHECK(c && get_head(c, &h2) == 0 && h2.tree_size == 1 && memcmp(h2.root, h1.root, 32) == 0);
  sotto_net_close(c);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* A list of device 1 only for (name, account key pub/priv), version v. */
static size_t one_device_list(uint8_t *out, const char *name, const uint8_t pub[32], const uint8_t priv[32],
                              uint32_t v) {
  struct sotto_devlist l;
  size_t len = 0;
  memset(&l, 0, sizeof l);
  snprintf(l.username, sizeof l.username, "%s", name);
  memcpy(l.account_key, pub, 32);
  l.version = v;
  l.n = 1;
  l.dev[0].device_id = 1;
  memcpy(l.dev[0].device_key, pub, 32);
  if (sotto_devlist_member_sign(l.dev[0].member_sig, priv, name, pub, 1) != 0) return 0;
  snprintf(l.dev[0].name, sizeof l.dev[0].name, "laptop");
  l.dev[0].added_at_ms = 1764000000000ull;
  if (sotto_devlist_sign(&l, priv, out, SOTTO_DEVLIST_MAX_LEN, &len) != 0) return 0;
  return len;
}

/* The device-list label's search proof (KT_SEARCH_LIST) for user. */
static int search_list_ok(struct sotto_net *c, const struct sotto_kt_log_id *id, const char *user, uint32_t *version,
                          uint8_t *value, size_t *value_len) {
  uint8_t b[64], *a;
  char label[SOTTO_SRV_KT_LIST_LABEL_MAX + 1];
  size_t n;
  struct sotto__wr w;
  struct sotto_srv_kt_proof kp;
  struct sotto_kt_head h;
  int rc;
  sotto__srv_kt_list_label(label, user);
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_kt_search_req(&w, user);
  if ((rc = call(c, SOTTO_SRV_KT_SEARCH_LIST, b, w.len, &a, &n)) != 0) return rc;
  rc = -3000;
  if (sotto__srv_parse_kt_proof(a, n, &kp) == 0 && sotto_kt_head_decode(&h, kp.head, SOTTO_KT_HEAD_LEN) == 0 &&
      sotto_kt_head_verify(&h, id) == 0)
    rc = sotto_kt_search_verify(version, value, value_len, &h, id, (const uint8_t *)label, strlen(label), kp.proof,
                                kp.proof_len);
  free(a);
  return rc;
}

/* KT_VERSIONS for user's label (kind 0) or device-list label (kind 1):
 * the answer (caller frees *buf) parsed into vs; a negative server error. */
static int versions(struct sotto_net *c, uint8_t kind, uint32_t from, uint8_t count, const char *user,
                    struct sotto_srv_kt_versions *vs, uint8_t **buf) {
  uint8_t b[64];
  size_t n;
  struct sotto__wr w;
  int rc;
  *buf = NULL;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_kt_versions_req(&w, kind, from, count, user);
  if ((rc = call(c, SOTTO_SRV_KT_VERSIONS, b, w.len, buf, &n)) != 0) return rc;
  return sotto__srv_parse_kt_versions(*buf, n, vs) == 0 ? 0 : -3001;
}

static void test_kt_devlist(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *c = NULL;
  struct sotto_kt_log_id id;
  uint8_t pub[32], priv[32], ik[37] = {0}, secret[32], list1[SOTTO_DEVLIST_MAX_LEN], list2[SOTTO_DEVLIST_MAX_LEN];
  uint8_t value[SOTTO_KT_MAX_VALUE_LEN], want[SOTTO_SRV_KT_LIST_VALUE_LEN], bik[33];
  uint32_t dev = 0, version;
  size_t vlen, l1, l2;
  CHECK(srv_mkdir(&p, "ktdevlist") == 0);
  CHECK(srv_start(&p, KT_ARGS_MANY) == 0);
  log_id_of(&p, &id);
  CHECK(sotto_keypair_generate(pub, priv) == 0);
  sotto_pubkey_serialize(ik, pub);
  ik[36] = 9;
  c = srv_connect(&p, &ctx, 1);
  CHECK(c && sotto_net_register(c, "dora", ik, sizeof ik, &dev, secret) == 0 && dev == 1);
  if (c) sotto_net_close(c);
  CHECK(reg(&p, &ctx, "ezra", bik) == 0);
  l1 = one_device_list(list1, "dora", pub, priv, 1);
  l2 = one_device_list(list2, "dora", pub, priv, 2);
  CHECK(l1 > 0 && l2 > 0);
  c = srv_connect(&p, &ctx, 1);
  CHECK(c && sotto_net_auth(c, "dora", 1, secret, NULL, NULL) == 0);
  if (!c) goto out;
  /* No list yet: the label is absent (proved absent). */
  vlen = sizeof value;
  CHECK(search_list_ok(c, &id, "dora", &version, value, &vlen) == 0 && version == SOTTO_KT_ABSENT);
  /* Version 1 stored: logged as version 0 of the label, value = 1 || SHA-256(list). */
  CHECK_RC(sotto_net_devlist_put(c, list1, l1), 0);
  sotto__srv_kt_list_value(want, 1, list1, l1);
  CHECK(want[0] == 0 && want[3] == 1);
  vlen = sizeof value;
  CHECK(search_list_ok(c, &id, "dora", &version, value, &vlen) == 0 && version == 0 &&
        vlen == SOTTO_SRV_KT_LIST_VALUE_LEN && memcmp(value, want, vlen) == 0);
  /* The username label still holds the account key (a separate label). */
  vlen = sizeof value;
  CHECK(search_ok(c, &id, "dora", &version, value, &vlen) == 0 && version == 0 && vlen == sizeof ik &&
        memcmp(value, ik, vlen) == 0);
  /* A refused put (the same version again) logs nothing. */
  CHECK_RC(sotto_net_devlist_put(c, list1, l1), SOTTO_SRV_E_DEVLIST_STALE);
  vlen = sizeof value;
  CHECK(search_list_ok(c, &id, "dora", &version, value, &vlen) == 0 && version == 0 && memcmp(value, want, 36) == 0);
  /* Version 2: the label's version 1. */
  CHECK_RC(sotto_net_devlist_put(c, list2, l2), 0);
  sotto__srv_kt_list_value(want, 2, list2, l2);
  vlen = sizeof value;
  CHECK(search_list_ok(c, &id, "dora", &version, value, &vlen) == 0 && version == 1 &&
        memcmp(value, want, 36) == 0);
  /* KT_VERSIONS: each version of the list label with its proof and the
   * signed list as stored; of the username's label; past the newest: not
   * found; a bad kind: malformed. */
  {
    struct sotto_srv_kt_versions vs;
    struct sotto_kt_head hv;
    char label[SOTTO_SRV_KT_LIST_LABEL_MAX + 1];
    uint8_t *buf = NULL, want1[SOTTO_SRV_KT_LIST_VALUE_LEN], bad[16];
    size_t k;
    int ok = 1;
    sotto__srv_kt_list_label(label, "dora");
    sotto__srv_kt_list_value(want1, 1, list1, l1);
    CHECK_RC(versions(c, 1, 0, 16, "dora", &vs, &buf), 0);
    CHECK(buf && vs.n == 2 && sotto_kt_head_decode(&hv, vs.head, SOTTO_KT_HEAD_LEN) == 0 &&
          sotto_kt_head_verify(&hv, &id) == 0);
    for (k = 0; buf && k < vs.n && k < 2; k++) {
      vlen = sizeof value;
      if (sotto_kt_version_verify(value, &vlen, &hv, &id, (const uint8_t *)label, strlen(label), (uint32_t)k,
                                  vs.v[k].proof, vs.v[k].proof_len) != 0 ||
          vlen != 36 || memcmp(value, k ? want : want1, 36) != 0)
        ok = 0;
      if (vs.v[k].list_len != (k ? l2 : l1) || memcmp(vs.v[k].list, k ? list2 : list1, vs.v[k].list_len) != 0) ok = 0;
    }
    CHECK(ok);
    /* a proof does not pass for another version */
    vlen = sizeof value;
    CHECK(buf && vs.n == 2 &&
          sotto_kt_version_verify(value, &vlen, &hv, &id, (const uint8_t *)label, strlen(label), 1, vs.v[0].proof,
                                  vs.v[0].proof_len) != 0);
    free(buf);
    CHECK_RC(versions(c, 1, 1, 1, "dora", &vs, &buf), 0);
    CHECK(buf && vs.n == 1);
    free(buf);
    CHECK_RC(versions(c, 0, 0, 4, "dora", &vs, &buf), 0);
    CHECK(buf && vs.n == 1 && vs.v[0].list_len == 0);
    if (buf && vs.n == 1) {
      vlen = sizeof value;
      CHECK(sotto_kt_version_verify(value, &vlen, &hv, &id, (const uint8_t *)"dora", 4, 0, vs.v[0].proof,
                                    vs.v[0].proof_len) == 0 &&
            vlen == sizeof ik && memcmp(value, ik, vlen) == 0);
    }
    free(buf);
    CHECK_RC(versions(c, 1, 2, 1, "dora", &vs, &buf), -SOTTO_SRV_E_NOT_FOUND);
    free(buf);
    CHECK_RC(versions(c, 1, 0, 1, "ezra", &vs, &buf), -SOTTO_SRV_E_NOT_FOUND);
    free(buf);
    {
      /* (on a connection of its own: the server drops one that sends a malformed request) */
      struct sotto_net *c2 = srv_connect(&p, &ctx, 1);
      buf = NULL;
      bad[0] = 2; /* kind */
      memset(bad + 1, 0, 4);
      bad[5] = 1;
      bad[6] = 4;
      memcpy(bad + 7, "dora", 4);
      CHECK(c2 && call(c2, SOTTO_SRV_KT_VERSIONS, bad, 11, &buf, &k) < 0);
      free(buf);
      if (c2) sotto_net_close(c2);
    }
  }
  /* Another account without a list, and a username that is not registered. */
  vlen = sizeof value;
  CHECK(search_list_ok(c, &id, "ezra", &version, value, &vlen) == 0 && version == SOTTO_KT_ABSENT);
  vlen = sizeof value;
  CHECK(search_list_ok(c, &id, "nobody", &version, value, &vlen) == 0 && version == SOTTO_KT_ABSENT);
  sotto_net_close(c);
  c = NULL;
  /* After a restart (replayed from the store) the same proof, asked before
   * AUTH (public, like KT_SEARCH). */
  CHECK(srv_stop(&p) == 0);
  CHECK(srv_start(&p, KT_ARGS_MANY) == 0);
  c = srv_connect(&p, &ctx, 1);
  vlen = sizeof value;
  CHECK(c && search_list_ok(c, &id, "dora", &version, value, &vlen) == 0 && version == 1 &&
        memcmp(value, want, 36) == 0);
  if (c) sotto_net_close(c);
  c = NULL;
  /* UNREGISTER logs the deletion marker (an empty value) for the account
   * key and for the device list (clients then take "no devices"); an
   * account that never had a list gets no list entry. */
  c = srv_connect(&p, &ctx, 1);
  CHECK(c && sotto_net_auth(c, "dora", 1, secret, NULL, NULL) == 0 && sotto_net_unregister(c) == 0);
  if (c) sotto_net_close(c);
  c = srv_connect(&p, &ctx, 1);
  vlen = sizeof value;
  CHECK(c && search_list_ok(c, &id, "dora", &version, value, &vlen) == 0 && version == 2 && vlen == 0);
  vlen = sizeof value;
  CHECK(c && search_ok(c, &id, "dora", &version, value, &vlen) == 0 && version == 1 && vlen == 0);
  if (c) sotto_net_close(c);
  c = NULL;
  {
    struct sotto_net *e = srv_connect(&p, &ctx, 1);
    uint8_t esecret[32], eik[37] = {0};
    uint32_t edev = 0;
    /* ezra's registration in reg() keeps no secret: a new account for it */
    sotto_pubkey_serialize(eik, pub);
    eik[36] = 5;
    CHECK(e && sotto_net_register(e, "gwen", eik, sizeof eik, &edev, esecret) == 0);
    vlen = sizeof value; /* logged before it goes (an unlogged name would leave nothing in the log) */
    CHECK(e && search_ok(e, &id, "gwen", &version, value, &vlen) == 0 && version == 0);
    if (e) sotto_net_close(e);
    e = srv_connect(&p, &ctx, 1);
    CHECK(e && sotto_net_auth(e, "gwen", 1, esecret, NULL, NULL) == 0 && sotto_net_unregister(e) == 0);
    if (e) sotto_net_close(e);
    c = srv_connect(&p, &ctx, 1);
    vlen = sizeof value;
    CHECK(c && search_list_ok(c, &id, "gwen", &version, value, &vlen) == 0 && version == SOTTO_KT_ABSENT);
    vlen = sizeof value;
    CHECK(c && search_ok(c, &id, "gwen", &version, value, &vlen) == 0 && version == 1 && vlen == 0);
  }
out:
  if (c) sotto_net_close(c);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* A list stored while the server kept no log is logged by the backfill at
 * the first start with --kt 1 (with the account key), once. */
static void test_kt_backfill_list(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *c = NULL;
  struct sotto_kt_log_id id;
  uint8_t pub[32], priv[32], ik[37] = {0}, secret[32], list[SOTTO_DEVLIST_MAX_LEN];
  uint8_t value[SOTTO_KT_MAX_VALUE_LEN], want[SOTTO_SRV_KT_LIST_VALUE_LEN];
  uint32_t dev = 0, version;
  size_t vlen, l, n;
  char *log;
  CHECK(srv_mkdir(&p, "ktbackfilllist") == 0);
  CHECK(srv_start(&p, NULL) == 0);
  CHECK(sotto_keypair_generate(pub, priv) == 0);
  sotto_pubkey_serialize(ik, pub);
  ik[36] = 9;
  c = srv_connect(&p, &ctx, 1);
  CHECK(c && sotto_net_register(c, "fay", ik, sizeof ik, &dev, secret) == 0);
  if (c) sotto_net_close(c);
  l = one_device_list(list, "fay", pub, priv, 4);
  c = srv_connect(&p, &ctx, 1);
  CHECK(c && sotto_net_auth(c, "fay", 1, secret, NULL, NULL) == 0);
  if (c) {
    CHECK_RC(sotto_net_devlist_put(c, list, l), 0);
    sotto_net_close(c);
  }
  CHECK(srv_stop(&p) == 0);
  CHECK(srv_start(&p, KT_ARGS) == 0);
  log_id_of(&p, &id);
  log = tu_read_file(p.log, &n);
  CHECK(log && strstr(log, "event=kt_backfill accounts=1 lists=1"));
  free(log);
  sotto__srv_kt_list_value(want, 4, list, l);
  c = srv_connect(&p, &ctx, 1);
  vlen = sizeof value;
  CHECK(c && search_list_ok(c, &id, "fay", &version, value, &vlen) == 0 && version == 0 &&
        vlen == sizeof want && memcmp(value, want, sizeof want) == 0);
  if (c) sotto_net_close(c);
  /* The next start logs nothing more. */
  CHECK(srv_stop(&p) == 0);
  CHECK(srv_start(&p, KT_ARGS) == 0);
  c = srv_connect(&p, &ctx, 1);
  vlen = sizeof value;
  CHECK(c && search_list_ok(c, &id, "fay", &version, value, &vlen) == 0 && version == 0);
  if (c) sotto_net_close(c);
  CHECK(srv_stop(&p) == 0);
  log = tu_read_file(p.log, &n); /* appended over the three starts: one backfill */
  CHECK(log && strstr(log, "event=kt_backfill") && !strstr(strstr(log, "event=kt_backfill") + 1, "event=kt_backfill"));
  free(log);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* Registrations from several connections at once, so that batches log
 * several label-versions whose VRFs run on the helper threads
 * (--kt-threads 3) and on the store thread alone (--kt-threads 0): every
 * account is proved with its own key, and a witness replays the log. */
#define PAR_THREADS 6
#define PAR_EACH 8
#define DROP_N 64
struct par_arg {
  struct srv_proc *p;
  struct sotto_net_ctx *ctx;
  int t, failed;
};

static void *par_run(void *arg) {
  struct par_arg *a = arg;
  int i;
  for (i = 0; i < PAR_EACH; i++) {
    char name[32];
    uint8_t ik[33];
    struct sotto_net_ctx *ctx = a->ctx;
    snprintf(name, sizeof name, "par%c%c", (char)('a' + a->t), (char)('a' + i));
    if (reg(a->p, &ctx, name, ik) != 0) a->failed++;
  }
  return NULL;
}

static void test_kt_parallel_vrf(const char *threads) {
  /* no quarantine: a name may be registered again at once after UNREGISTER */
  const char *args[] = {"--kt",           "1", "--kt-threads", threads, "--username-quarantine-days", "0",
                        "--bundle-rate",  "1e9", "--bundle-burst", "1e9", /* KT requests share this limit */
                        NO_REG_LIMITS,    NULL};
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *c;
  struct sotto_kt_log_id id;
  struct sotto_kt_head h;
  struct par_arg pa[PAR_THREADS];
  pthread_t th[PAR_THREADS];
  uint8_t value[SOTTO_KT_MAX_VALUE_LEN], ik[33];
  uint32_t version;
  size_t vlen;
  char wst[600], wout[4096];
  int t, i, rc, bad = 0, failed = 0;
  CHECK(srv_mkdir(&p, "ktpar") == 0);
  snprintf(wst, sizeof wst, "%s/witness-state", p.dir);
  CHECK(srv_start(&p, args) == 0);
  log_id_of(&p, &id);
  c = srv_connect(&p, &ctx, 1); /* makes ctx, shared by the threads */
  CHECK(c != NULL);
  if (c) sotto_net_close(c);
  for (t = 0; t < PAR_THREADS; t++) {
    pa[t] = (struct par_arg){&p, ctx, t, 0};
    CHECK(pthread_create(&th[t], NULL, par_run, &pa[t]) == 0);
  }
  for (t = 0; t < PAR_THREADS; t++) {
    pthread_join(th[t], NULL);
    failed += pa[t].failed;
  }
  CHECK(failed == 0);
  c = srv_connect(&p, &ctx, 1);
  CHECK(c && get_head(c, &h) == 0);
  printf("     --kt-threads %s: %d registrations in %llu log entries\n", threads, PAR_THREADS * PAR_EACH,
         (unsigned long long)h.tree_size);
  for (t = 0; c && t < PAR_THREADS; t++)
    for (i = 0; i < PAR_EACH; i++) {
      char name[32];
      snprintf(name, sizeof name, "par%c%c", (char)('a' + t), (char)('a' + i));
      memset(ik, 0x05, sizeof ik);
      memcpy(ik + 1, name, strlen(name));
      vlen = sizeof value;
      if (search_ok(c, &id, name, &version, value, &vlen) != 0 || version != 0 || vlen != 33 ||
          memcmp(value, ik, 33) != 0)
        bad++;
    }
  CHECK(bad == 0);
  /* A name registered again after UNREGISTER: its REGISTER's VRF output
   * made ahead (I/O thread or helper) is for version 0 and must not be
   * used; the log holds version 2 (after the deletion marker) with the new
   * key, and version 0 still proves the old one. */
  {
    uint8_t secret[32], ik_old[33], ik_new[33];
    uint32_t dev = 0;
    struct sotto_net *e = srv_connect(&p, &ctx, 1);
    memset(ik_old, 0x05, sizeof ik_old);
    memset(ik_new, 0x07, sizeof ik_new);
    CHECK(e != NULL);
    if (e) {
      CHECK(sotto_net_register(e, "again", ik_old, sizeof ik_old, &dev, secret) == 0);
      vlen = sizeof value; /* logged before it goes (an unlogged name would leave nothing in the log) */
      CHECK(search_ok(e, &id, "again", &version, value, &vlen) == 0 && version == 0);
      CHECK(sotto_net_auth(e, "again", dev, secret, NULL, NULL) == 0);
      CHECK(sotto_net_unregister(e) == 0);
      sotto_net_close(e);
    }
    e = srv_connect(&p, &ctx, 1);
    CHECK(e != NULL);
    if (e) {
      CHECK(sotto_net_register(e, "again", ik_new, sizeof ik_new, &dev, secret) == 0);
      sotto_net_close(e);
    }
    vlen = sizeof value;
    CHECK(c && search_ok(c, &id, "again", &version, value, &vlen) == 0);
    if (version != 2 || vlen != 33) printf("     again: version %u, %zu bytes\n", (unsigned)version, vlen);
    CHECK(version == 2 && vlen == 33 && memcmp(value, ik_new, 33) == 0);
  }
  /* A connection that pipelines REGISTERs and goes away before any answer:
   * its requests may still wait for a helper's VRF (--kt-threads >= 1) when
   * the server drops them. Each name is then either logged with its key or
   * absent from the log, and the server goes on logging. */
  {
    struct sotto_net *e = srv_connect(&p, &ctx, 1);
    CHECK(e != NULL);
    for (i = 0; e && i < DROP_N; i++) {
      char name[32];
      uint8_t b[64];
      struct sotto__wr w;
      snprintf(name, sizeof name, "drop%c%c", (char)('a' + i / 26), (char)('a' + i % 26)); /* letters: names are folded */
      memset(ik, 0x09, sizeof ik);
      sotto__wr_init(&w, b, sizeof b);
      sotto__srv_put_str8(&w, name, strlen(name));
      sotto__srv_put_blob16(&w, ik, sizeof ik);
      CHECK(!w.err && sotto_net_write_frame(e, SOTTO_SRV_REGISTER, (uint32_t)(200 + i), b, w.len) == 0);
    }
    if (e) sotto_net_close(e);
    CHECK(reg(&p, &ctx, "afterdrop", ik) == 0);
    for (i = 0, bad = 0; c && i < DROP_N; i++) {
      char name[32];
      snprintf(name, sizeof name, "drop%c%c", (char)('a' + i / 26), (char)('a' + i % 26)); /* letters: names are folded */
      memset(ik, 0x09, sizeof ik);
      vlen = sizeof value;
      rc = search_ok(c, &id, name, &version, value, &vlen);
      if (rc != 0 || !(version == SOTTO_KT_ABSENT || (version == 0 && vlen == 33 && memcmp(value, ik, 33) == 0))) {
        if (bad++ == 0) printf("     %s: rc %d, version %u, %zu bytes\n", name, rc, (unsigned)version, vlen);
      }
    }
    CHECK(bad == 0);
    vlen = sizeof value;
    CHECK(c && search_ok(c, &id, "afterdrop", &version, value, &vlen) == 0 && version == 0 && vlen == 33);
    CHECK(c && get_head(c, &h) == 0); /* the head the restart must give again */
  }
  if (c) sotto_net_close(c);
  CHECK(run_witness(&p, wst, &id, wout, sizeof wout) == 0 && strstr(wout, "cosignature ") != NULL);
  /* after a restart the stored entries replay to the same head */
  CHECK(srv_stop(&p) == 0);
  CHECK(srv_start(&p, args) == 0);
  c = srv_connect(&p, &ctx, 1);
  {
    struct sotto_kt_head h2;
    CHECK(c && get_head(c, &h2) == 0 && h2.tree_size == h.tree_size && memcmp(h2.root, h.root, 32) == 0);
  }
  if (c) sotto_net_close(c);
  CHECK(srv_stop(&p) == 0);
  {
    /* how many VRFs the helpers made ahead, and how many REGISTERs left
     * their queue because their connection went (timing: not judged) */
    size_t n;
    char *log = tu_read_file(p.log, &n), *q = log ? strstr(log, "event=kt_vrf_queue") : NULL;
    if (q) printf("     --kt-threads %s: %.*s\n", threads, (int)strcspn(q, "\n"), q);
    free(log);
  }
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* kt-pending-max (asynchronous logging): a REGISTER is answered before its
 * name is logged; until the log takes it, nothing of the account is served
 * (ERR 44), its own device may log in; the bound refuses REGISTERs beyond
 * it; an account deleted while it waits leaves nothing in the log (and
 * frees its place); after a SIGKILL with names waiting, the restarted
 * server logs them.
 * --kt-log-delay-ms holds the names (an hour) so that they are still
 * waiting when the test looks. */
static void test_kt_pending(void) {
  const char *hold[] = {"--kt",          "1",   "--kt-log-delay-ms", "3600000", "--kt-pending-max", "2",
                        "--bundle-rate", "1e9", "--bundle-burst",    "1e9", /* KT requests share this limit */
                        NO_REG_LIMITS,   NULL};
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *b = NULL, *c = NULL;
  struct sotto_kt_log_id id;
  struct sotto_kt_head h;
  struct sotto_srv_bundle_buf bb;
  uint8_t ik_b[33], ik_c[33], ik_d[33], sec_b[32], sec_c[32], value[SOTTO_KT_MAX_VALUE_LEN], q[64], *a = NULL;
  uint8_t list[SOTTO_SRV_MAX_DEVLIST];
  uint32_t dev_b = 0, dev_c = 0, version;
  uint64_t sid = 0, ts = 0;
  size_t vlen, n, ll;
  struct sotto__wr w;
  CHECK(srv_mkdir(&p, "ktpending") == 0);
  CHECK(srv_start(&p, hold) == 0);
  log_id_of(&p, &id);
  memset(ik_b, 0x05, sizeof ik_b);
  memcpy(ik_b + 1, "bob", 3);
  memset(ik_c, 0x05, sizeof ik_c);
  memcpy(ik_c + 1, "carol", 5);
  b = srv_connect(&p, &ctx, 1);
  CHECK(b && sotto_net_register(b, "bob", ik_b, sizeof ik_b, &dev_b, sec_b) == 0);
  CHECK(b && sotto_net_auth(b, "bob", dev_b, sec_b, NULL, NULL) == 0); /* its own device logs in */
  c = srv_connect(&p, &ctx, 1);
  CHECK(c && sotto_net_register(c, "carol", ik_c, sizeof ik_c, &dev_c, sec_c) == 0);
  CHECK(c && sotto_net_auth(c, "carol", dev_c, sec_c, NULL, NULL) == 0);
  /* kt-pending-max 2: a third new name is refused (retry later), nothing stored */
  CHECK_RC(reg(&p, &ctx, "dave", ik_d), SOTTO_SRV_E_RATE);
  /* Nothing of bob is served yet, to anyone: ERR 44 */
  sotto__wr_init(&w, q, sizeof q);
  sotto__srv_put_kt_search_req(&w, "bob");
  CHECK_RC(call_once(c, SOTTO_SRV_KT_SEARCH, q, w.len, &a, &n), -(int)SOTTO_SRV_E_KT_PENDING);
  free(a);
  CHECK_RC(call_once(c, SOTTO_SRV_KT_SEARCH_LIST, q, w.len, &a, &n), -(int)SOTTO_SRV_E_KT_PENDING);
  free(a);
  sotto__wr_init(&w, q, sizeof q);
  sotto__srv_put_kt_versions_req(&w, 0, 0, 4, "bob");
  CHECK_RC(call_once(c, SOTTO_SRV_KT_VERSIONS, q, w.len, &a, &n), -(int)SOTTO_SRV_E_KT_PENDING);
  free(a);
  CHECK_RC(c ? sotto_net_fetch_bundle(c, "bob", 1, &bb) : -1, SOTTO_SRV_E_KT_PENDING);
  CHECK_RC(c ? sotto_net_devlist_get(c, "bob", list, sizeof list, &ll) : -1, SOTTO_SRV_E_KT_PENDING);
  {
    /* not even that bob exists, or his device ids; his own device sees them */
    uint32_t ids[8];
    size_t nid = 0;
    CHECK_RC(c ? sotto_net_devices(c, "bob", ids, 8, &nid) : -1, SOTTO_SRV_E_KT_PENDING);
    CHECK_RC(b ? sotto_net_devices(b, "bob", ids, 8, &nid) : -1, 0);
    CHECK(nid == 1 && ids[0] == dev_b);
  }
  CHECK_RC(c ? sotto_net_send(c, "bob", 1, 1, (const uint8_t *)"hello", 5, &sid, &ts) : -1, SOTTO_SRV_E_KT_PENDING);
  CHECK_RC(b ? sotto_net_send(b, "carol", 1, 1, (const uint8_t *)"hello", 5, &sid, &ts) : -1,
           SOTTO_SRV_E_KT_PENDING);
  CHECK(c && get_head(c, &h) == -SOTTO_SRV_E_NOT_FOUND); /* no entry yet */
  /* carol deletes her account while it waits: the mark goes, nothing of her
   * is logged, and the bound has room again for erin */
  CHECK(c && sotto_net_unregister(c) == 0);
  memset(ik_d, 0x05, sizeof ik_d);
  memcpy(ik_d + 1, "erin", 4);
  {
    struct sotto_net *e = srv_connect(&p, &ctx, 1);
    uint8_t sec_e[32];
    uint32_t dev_e = 0;
    CHECK(e && sotto_net_register(e, "erin", ik_d, sizeof ik_d, &dev_e, sec_e) == 0); /* (reg() would wait) */
    if (e) sotto_net_close(e);
  }
  if (b) sotto_net_close(b);
  if (c) sotto_net_close(c);
  b = c = NULL;
  /* Killed with both names waiting; restarted without the delay: both are
   * logged (each with its key), dave is not in the log, bob is reachable. */
  srv_kill(&p);
  CHECK(srv_start(&p, KT_ARGS_MANY) == 0);
  c = srv_connect(&p, &ctx, 1);
  vlen = sizeof value;
  CHECK(c && search_ok(c, &id, "bob", &version, value, &vlen) == 0 && version == 0 && vlen == 33 &&
        memcmp(value, ik_b, 33) == 0);
  vlen = sizeof value;
  CHECK(c && search_ok(c, &id, "carol", &version, value, &vlen) == 0 && version == SOTTO_KT_ABSENT);
  vlen = sizeof value;
  CHECK(c && search_ok(c, &id, "erin", &version, value, &vlen) == 0 && version == 0 && vlen == 33 &&
        memcmp(value, ik_d, 33) == 0);
  vlen = sizeof value;
  CHECK(c && search_ok(c, &id, "dave", &version, value, &vlen) == 0 && version == SOTTO_KT_ABSENT);
  CHECK(c && sotto_net_auth(c, "bob", dev_b, sec_b, NULL, NULL) == 0);
  CHECK_RC(c ? sotto_net_send(c, "erin", 1, 1, (const uint8_t *)"hello", 5, &sid, &ts) : -1, 0);
  if (c) sotto_net_close(c);
  if (ctx) sotto_net_ctx_free(ctx);
  CHECK(srv_stop(&p) == 0);
  srv_rmdir(&p);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0) return 1;
  test_kt_pending();
  test_kt();
  test_kt_cosign();
  test_kt_backfill();
  test_kt_devlist();
  test_kt_backfill_list();
  test_kt_parallel_vrf("3");
  test_kt_parallel_vrf("1");
  test_kt_parallel_vrf("0");
  return test_done("test_server_kt");
}

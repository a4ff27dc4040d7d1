/* SPDX-License-Identifier: Apache-2.0 */
/* test_store_cache: the store answers from memory for what every SEND asks
 * (device_route, device_is, devlist_ids); those answers must follow every
 * write, rollback and savepoint undo. Drives the store interface directly
 * (server/store.h), on SQLite, and on PostgreSQL under with_pg.sh
 * (SOTTO_TEST_PG set): a stale answer would route an envelope to a removed
 * device's key, let a removed device still send, or fan a message out to a
 * device list that was rolled back. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "srvtest.h"
#include "store.h"
#include "testutil.h"

/* CHECK with a sentence: what was expected, and the values seen. */
#define T(cond, ...)                                                   \
  do {                                                                 \
    tu_checks++;                                                       \
    if (!(cond)) {                                                     \
      tu_failures++;                                                   \
      fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__);            \
      fprintf(stderr, __VA_ARGS__);                                    \
      fputc('\n', stderr);                                            \
    }                                                                  \
  } while (0)

static struct sotto_store st;
static const struct sotto_store_ops *ops;
static void *S;

static int64_t mk_account(const char *user, uint32_t ndev) {
  uint8_t ik[33], h[32];
  struct sotto_store_device d;
  int64_t acc = 0;
  uint32_t i;
  memset(ik, 5, sizeof ik);
  memset(h, 7, sizeof h);
  T(ops->account_create(S, user, user, ik, sizeof ik, 20000, &acc) == 0, "account_create %s", user);
  for (i = 0; i < ndev; i++) {
    memset(&d, 0, sizeof d);
    T(ops->device_add(S, acc, h, 20000, 16, &d) == 0 && d.device_id == i + 1, "device_add %s.%u", user, i + 1);
  }
  return acc;
}

static int64_t route(const char *user, uint32_t dev) {
  struct sotto_store_device d;
  int rc;
  memset(&d, 0, sizeof d);
  rc = ops->device_route(S, user, dev, &d);
  if (rc == 1) return 0;
  T(rc == 0, "device_route %s.%u: %d", user, dev, rc);
  return d.devkey;
}

static int64_t lookup(const char *user, uint32_t dev) {
  struct sotto_store_device d;
  int rc;
  memset(&d, 0, sizeof d);
  rc = ops->device_lookup(S, user, dev, &d);
  if (rc == 1) return 0;
  T(rc == 0, "device_lookup %s.%u: %d", user, dev, rc);
  return d.devkey;
}

/* The newest list's ids as "1,2,3", "none", or "error". */
static const char *ids_of(const char *user, char *out, size_t cap) {
  uint32_t ids[SOTTO_STORE_MAX_DEVLIST_IDS];
  size_t n = 0, i, len = 0;
  int rc = ops->devlist_ids(S, user, ids, SOTTO_STORE_MAX_DEVLIST_IDS, &n);
  if (rc == 1) return "none";
  if (rc != 0) return "error";
  out[0] = 0;
  for (i = 0; i < n && len + 12 < cap; i++) len += (size_t)snprintf(out + len, cap - len, i ? ",%u" : "%u", ids[i]);
  return out;
}

static void put_list(int64_t acc, uint32_t version, const uint32_t *ids, size_t n) {
  uint8_t list[64];
  memset(list, (int)version, sizeof list);
  T(ops->devlist_put(S, acc, version, ids, n, list, sizeof list, 1000 + version) == 0, "devlist_put v%u", version);
}

#define IDS(user, want)                                                                                           \
  do {                                                                                                            \
    char b_[256];                                                                                                 \
    const char *g_ = ids_of(user, b_, sizeof b_);                                                                 \
    T(strcmp(g_, want) == 0, "%s:%d devlist_ids(%s) = %s, want %s", __FILE__, __LINE__, user, g_, want);     \
  } while (0)

static void begin(void) { T(ops->begin(S) == 0, "begin"); }
static void commit(void) { T(ops->commit(S) == 0, "commit"); }

/* devlist_ids after a write, a rollback, a savepoint's undo, and an
 * account deleted and made again under the same name. */
static void test_devlist_ids(void) {
  static const uint32_t v1[] = {1, 2}, v2[] = {1, 2, 3}, v3[] = {1};
  int64_t acc, acc2;
  begin();
  acc = mk_account("dana", 3);
  commit();
  begin();
  IDS("dana", "none");
  put_list(acc, 1, v1, 2);
  IDS("dana", "1,2");
  commit();
  IDS("dana", "1,2");

  /* A list written and rolled back: the old answer again. */
  begin();
  IDS("dana", "1,2");
  put_list(acc, 2, v2, 3);
  IDS("dana", "1,2,3");
  ops->rollback(S);
  begin();
  IDS("dana", "1,2");
  commit();

  /* One request's savepoint undone: the transaction goes on without it. */
  begin();
  IDS("dana", "1,2");
  T(ops->savepoint(S) == 0, "savepoint");
  put_list(acc, 2, v2, 3);
  IDS("dana", "1,2,3");
  T(ops->rollback_to(S) == 0, "rollback_to");
  IDS("dana", "1,2");
  T(ops->savepoint(S) == 0, "savepoint");
  put_list(acc, 2, v3, 1);
  T(ops->release(S) == 0, "release");
  IDS("dana", "1");
  commit();
  IDS("dana", "1");

  /* Cleared (RECOVER, UNREGISTER), and the clear rolled back. */
  begin();
  T(ops->devlist_clear(S, acc) == 0, "devlist_clear");
  IDS("dana", "none");
  ops->rollback(S);
  begin();
  IDS("dana", "1");
  T(ops->devlist_clear(S, acc) == 0, "devlist_clear");
  commit();
  IDS("dana", "none");

  /* The account deleted (its devices first, as UNREGISTER does) and the
   * name made again: the new account's lists only. */
  begin();
  put_list(acc, 3, v1, 2);
  commit();
  IDS("dana", "1,2");
  begin();
  for (uint32_t d = 1; d <= 3; d++) {
    int64_t k = 0;
    T(ops->device_remove(S, acc, d, &k) == 0 && k > 0, "device_remove dana.%u", d);
  }
  T(ops->devlist_clear(S, acc) == 0, "devlist_clear");
  T(ops->account_delete(S, acc, "dana", 0) == 0, "account_delete");
  IDS("dana", "none");
  acc2 = mk_account("dana", 1);
  T(acc2 != acc, "a new account id");
  IDS("dana", "none");
  put_list(acc2, 1, v3, 1);
  IDS("dana", "1");
  commit();
  IDS("dana", "1");
}

/* device_route and device_is after a device is removed, the removal rolled
 * back, and a device added again under the same id. */
static void test_routes(void) {
  int64_t acc, k1, k2, k2b, got = 0;
  begin();
  acc = mk_account("erin", 2);
  commit();
  begin();
  k1 = route("erin", 1);
  k2 = route("erin", 2);
  T(k1 > 0 && k2 > 0 && k1 != k2, "routes of erin's two devices");
  T(k2 == lookup("erin", 2), "device_route agrees with device_lookup");
  T(ops->device_is(S, k2, acc, 2) == 1, "device_is erin.2");
  T(ops->device_is(S, k2, acc, 1) == 0, "device_is: not device 1");
  commit();

  /* Removed inside a transaction that is rolled back: there again. */
  begin();
  T(route("erin", 2) == k2, "route cached");
  T(ops->device_remove(S, acc, 2, &got) == 0 && got == k2, "device_remove erin.2");
  T(route("erin", 2) == 0, "no route to a removed device");
  T(ops->device_is(S, k2, acc, 2) == 0, "device_is: removed");
  ops->rollback(S);
  begin();
  T(route("erin", 2) == k2, "the removal rolled back: routed again");
  T(ops->device_is(S, k2, acc, 2) == 1, "... and device_is again");
  commit();

  /* Removed in a savepoint that is undone. */
  begin();
  T(ops->device_is(S, k2, acc, 2) == 1, "device_is cached");
  T(ops->savepoint(S) == 0, "savepoint");
  T(ops->device_remove(S, acc, 2, &got) == 0, "device_remove in a savepoint");
  T(route("erin", 2) == 0 && ops->device_is(S, k2, acc, 2) == 0, "gone inside the savepoint");
  T(ops->rollback_to(S) == 0, "rollback_to");
  T(route("erin", 2) == k2, "the savepoint undone: routed again");
  T(ops->device_is(S, k2, acc, 2) == 1, "... and device_is again");
  commit();

  /* Removed for good, then a device added again: it gets id 2 back or a
   * new id, but never the removed device's key. */
  begin();
  T(ops->device_remove(S, acc, 2, &got) == 0, "device_remove erin.2");
  commit();
  begin();
  T(route("erin", 2) == 0, "no route after the commit");
  T(ops->device_is(S, k2, acc, 2) == 0, "device_is: removed after the commit");
  {
    uint8_t h[32];
    struct sotto_store_device d;
    memset(h, 9, sizeof h);
    memset(&d, 0, sizeof d);
    T(ops->device_add(S, acc, h, 20001, 16, &d) == 0, "device_add again");
    k2b = route("erin", d.device_id);
    T(k2b == d.devkey && k2b != k2, "the new device's own key (%lld, the old %lld)", (long long)k2b,
          (long long)k2);
    T(ops->device_is(S, k2, acc, d.device_id) == 0, "the old key is not the new device");
    T(ops->device_is(S, k2b, acc, d.device_id) == 1, "the new key is");
  }
  commit();
  T(route("erin", 1) == k1, "device 1 untouched");
}

/* Queue counters across an undone savepoint: a request (SEND_MULTI) whose
 * inserts are undone leaves the devices' counts, the sender's bytes and the
 * store's total as they were, in the open transaction and in the rows
 * committed after it. */
static void queue_of(const char *user, uint32_t dev, int64_t *n, int64_t *bytes) {
  struct sotto_store_device d;
  memset(&d, 0, sizeof d);
  T(ops->device_route(S, user, dev, &d) == 0, "device_route %s.%u", user, dev);
  *n = d.queue_count;
  *bytes = d.queue_bytes;
}

static void test_queue_counts(void) {
  struct sotto_store_env e;
  uint8_t body[300];
  int64_t acc, k1, k2, n = -1, b = -1, sb = -1, tot0 = -1, tot = -1, id1 = 0;
  begin();
  acc = mk_account("gail", 2);
  (void)mk_account("hugo", 1);
  commit();
  memset(body, 7, sizeof body);
  memset(&e, 0, sizeof e);
  e.sender = "hugo";
  e.sender_device = 1;
  e.type = 1;
  e.timestamp_ms = 1000;
  e.body = body;
  e.body_len = sizeof body;
  begin();
  k1 = route("gail", 1);
  k2 = route("gail", 2);
  T(ops->total_bytes(S, &tot0) == 0, "total_bytes");
  /* one envelope kept (its own savepoint, released) */
  T(ops->savepoint(S) == 0, "savepoint");
  e.device_id = 1;
  T(ops->msg_insert(S, k1, &e) == 0, "insert to gail.1");
  id1 = e.id;
  T(ops->release(S) == 0, "release");
  /* a request of two inserts, undone */
  T(ops->savepoint(S) == 0, "savepoint");
  T(ops->msg_insert(S, k1, &e) == 0, "insert to gail.1 (undone)");
  e.device_id = 2;
  T(ops->msg_insert(S, k2, &e) == 0, "insert to gail.2 (undone)");
  if (ops->rollback_to(S) != 0) {
    /* The backend cannot undo envelope writes alone (PostgreSQL: its
     * deferred statements): it says so, and the whole transaction goes, as
     * the server's batch then does. Nothing of it may be counted. */
    ops->rollback(S);
    begin();
    queue_of("gail", 1, &n, &b);
    T(n == 0 && b == 0, "after the whole rollback gail.1 holds none (got %lld, %lld)", (long long)n, (long long)b);
    queue_of("gail", 2, &n, &b);
    T(n == 0 && b == 0, "... nor gail.2 (got %lld, %lld)", (long long)n, (long long)b);
    T(ops->sender_bytes(S, "hugo", &sb) == 0 && sb == 0, "... nor are hugo's bytes counted (got %lld)",
      (long long)sb);
    T(ops->total_bytes(S, &tot) == 0 && tot == tot0, "... nor the store's total (got %+lld)", (long long)(tot - tot0));
    commit();
    printf("store_cache: %s undoes an envelope write with the whole transaction\n", st.backend);
    (void)acc;
    (void)id1;
    return;
  }
  queue_of("gail", 1, &n, &b);
  T(n == 1 && b == 300, "gail.1 in the transaction: 1 envelope, 300 bytes (got %lld, %lld)", (long long)n,
    (long long)b);
  queue_of("gail", 2, &n, &b);
  T(n == 0 && b == 0, "gail.2 in the transaction: none (got %lld, %lld)", (long long)n, (long long)b);
  T(ops->sender_bytes(S, "hugo", &sb) == 0 && sb == 300, "hugo's bytes queued: 300 (got %lld)", (long long)sb);
  T(ops->total_bytes(S, &tot) == 0 && tot == tot0 + 300, "the store's total: +300 (got %+lld)",
    (long long)(tot - tot0));
  /* a deletion undone the same way */
  T(ops->savepoint(S) == 0, "savepoint");
  {
    int found = 0;
    T(ops->msg_delete(S, k1, id1, &found) == 0 && found, "delete gail.1's envelope (undone)");
  }
  T(ops->rollback_to(S) == 0, "rollback_to");
  commit();
  begin();
  queue_of("gail", 1, &n, &b);
  T(n == 1 && b == 300, "gail.1 after the commit: 1 envelope, 300 bytes (got %lld, %lld)", (long long)n,
    (long long)b);
  queue_of("gail", 2, &n, &b);
  T(n == 0 && b == 0, "gail.2 after the commit: none (got %lld, %lld)", (long long)n, (long long)b);
  T(ops->sender_bytes(S, "hugo", &sb) == 0 && sb == 300, "hugo's bytes after the commit: 300 (got %lld)",
    (long long)sb);
  commit();
  (void)acc;
}

/* The ids the caches and the blobs' owners rely on are never given twice:
 * an account deleted as the newest does not hand its id to the next one, on
 * SQLite and across `sotto-server import` and `export`. */
static int64_t open_create(struct sotto_store *o, const char *url, const char *user) {
  char why[256];
  int64_t acc = 0;
  uint8_t ik[33];
  memset(ik, 5, sizeof ik);
  if (sotto__store_open(o, url, SOTTO_STORE_OPEN_WRITER, why, sizeof why) != 0) {
    T(0, "open %s: %s", url, why);
    return -1;
  }
  T(o->ops->begin(o->impl) == 0 && o->ops->account_create(o->impl, user, user, ik, sizeof ik, 20000, &acc) == 0 &&
        o->ops->commit(o->impl) == 0,
    "account_create %s", user);
  o->ops->close(o->impl);
  return acc;
}

static void test_ids_never_reused(struct srv_proc *p) {
  char dir[] = "/tmp/sotto-store-ids.XXXXXX", url[1200];
  struct sotto_store o;
  int64_t a3, a4;
  T(mkdtemp(dir) != NULL, "mkdtemp");
  snprintf(url, sizeof url, "sqlite:%s", dir);
  T(open_create(&o, url, "ids1") > 0 && open_create(&o, url, "ids2") > 0, "two accounts");
  a3 = open_create(&o, url, "ids3");
  {
    char why[256];
    T(sotto__store_open(&o, url, SOTTO_STORE_OPEN_WRITER, why, sizeof why) == 0, "reopen: %s", why);
    T(o.ops->begin(o.impl) == 0 && o.ops->account_delete(o.impl, a3, "ids3", 0) == 0 && o.ops->commit(o.impl) == 0,
      "account_delete of the newest account");
    o.ops->close(o.impl);
  }
  a4 = open_create(&o, url, "ids4");
  T(a4 > a3, "SQLite: the next account gets a new id (%lld after %lld deleted)", (long long)a4, (long long)a3);
  {
    /* A store made before account_high: the newest account (ids4) uploaded
     * a blob, was deleted, and the table is gone (as before the upgrade).
     * The first open takes the highest id a row still names (the blob's). */
    char why[256], path[1200];
    struct sotto_store_blob b;
    sqlite3 *db = NULL;
    int64_t a5;
    memset(&b, 0, sizeof b);
    memset(b.id, 0x42, sizeof b.id);
    b.account_id = a4;
    b.size = 100;
    b.fetches_left = 1;
    b.created_ms = 1;
    b.expires_ms = (int64_t)1 << 50;
    T(sotto__store_open(&o, url, SOTTO_STORE_OPEN_WRITER, why, sizeof why) == 0, "reopen: %s", why);
    T(o.ops->begin(o.impl) == 0 && o.ops->blob_create(o.impl, &b) == 0 &&
          o.ops->account_delete(o.impl, a4, "ids4", 0) == 0 && o.ops->commit(o.impl) == 0,
      "ids4's blob, then ids4 deleted");
    o.ops->close(o.impl);
    snprintf(path, sizeof path, "%s/sotto.db", dir);
    T(sqlite3_open(path, &db) == SQLITE_OK && sqlite3_exec(db, "DROP TABLE account_high", NULL, NULL, NULL) == SQLITE_OK,
      "drop account_high (a store of before)");
    sqlite3_close(db);
    a5 = open_create(&o, url, "ids5");
    T(a5 > a4, "a store of before: the next account does not take the id its blob names (%lld after %lld)",
      (long long)a5, (long long)a4);
    a4 = a5; /* the newest id so far, for what follows */
  }
  (void)p;
#ifdef SRVTEST_HAVE_PQ
  if (p->store[0]) {
    struct srv_proc q;
    char dir2[] = "/tmp/sotto-store-ids2.XXXXXX", why[256], url2[1200];
    int64_t a5, a6, a7;
    FILE *devnull = fopen("/dev/null", "w");
    /* ids5 deleted too: the high-water mark is above every id left (2). */
    T(sotto__store_open(&o, url, SOTTO_STORE_OPEN_WRITER, why, sizeof why) == 0, "reopen: %s", why);
    T(o.ops->begin(o.impl) == 0 && o.ops->account_delete(o.impl, a4, "ids5", 0) == 0 && o.ops->commit(o.impl) == 0,
      "account_delete ids5");
    o.ops->close(o.impl);
    T(srv_mkdir(&q, "storeids") == 0 && q.store[0], "a second PostgreSQL database");
    T(sotto__store_pg_import_sqlite(dir, q.store + 3, devnull, why, sizeof why) == 0, "import: %s", why);
    a5 = open_create(&o, q.store, "ids6");
    T(a5 > a4, "import: PostgreSQL goes on after SQLite's high-water mark (%lld after %lld)", (long long)a5,
      (long long)a4);
    a6 = open_create(&o, q.store, "ids7");
    T(sotto__store_open(&o, q.store, SOTTO_STORE_OPEN_WRITER, why, sizeof why) == 0, "reopen pg: %s", why);
    T(o.ops->begin(o.impl) == 0 && o.ops->account_delete(o.impl, a6, "ids7", 0) == 0 && o.ops->commit(o.impl) == 0,
      "account_delete ids6 on PostgreSQL");
    o.ops->close(o.impl);
    T(mkdtemp(dir2) != NULL, "mkdtemp");
    T(sotto__store_pg_export_sqlite(q.store + 3, dir2, devnull, why, sizeof why) == 0, "export: %s", why);
    snprintf(url2, sizeof url2, "sqlite:%s", dir2);
    a7 = open_create(&o, url2, "ids8");
    T(a7 > a6, "export: SQLite goes on after PostgreSQL's sequence (%lld after %lld)", (long long)a7, (long long)a6);
    fclose(devnull);
    srv_rmdir(&q);
    snprintf(why, sizeof why, "rm -rf '%s'", dir2);
    T(system(why) == 0, "rm");
  }
#endif
  snprintf(url, sizeof url, "rm -rf '%s'", dir);
  T(system(url) == 0, "rm");
}

int main(void) {
  struct srv_proc p;
  char url[1200], why[256];
  T(srv_mkdir(&p, "storecache") == 0, "a store directory (and a PostgreSQL database under with_pg.sh)");
  if (p.store[0])
    snprintf(url, sizeof url, "%s", p.store);
  else
    snprintf(url, sizeof url, "sqlite:%s", p.dir);
  if (sotto__store_open(&st, url, SOTTO_STORE_OPEN_WRITER, why, sizeof why) != 0) {
    T(0, "open the store: %s", why);
    return test_done("store_cache");
  }
  ops = st.ops;
  S = st.impl;
  printf("store: %s\n", st.backend);
  test_devlist_ids();
  test_routes();
  test_queue_counts();
  ops->close(S);
  test_ids_never_reused(&p);
  srv_rmdir(&p);
  return test_done("store_cache");
}

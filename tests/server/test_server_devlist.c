/* SPDX-License-Identifier: Apache-2.0 */
/* test_server_devlist.c: the signed device list on the real sotto-server
 * (docs/multi-device.md, docs/protocol-server.md): DEVLIST_PUT from device 1
 * only, with every refusal (forged signature, another account's key, a
 * device the account has no row for, no device 1, a replayed or older
 * version, a device's missing membership); DEVLIST_GET; SEND to a device row
 * the list does not name refused (the server-side half of "no ghosts");
 * protocol version 1 clients told to upgrade; the requisition report's
 * list history; DEVICES' last-seen days, given to the account's own devices
 * only (test_last_seen, also through the PostgreSQL read pool). Runs on
 * SQLite and (with_pg.sh) on PostgreSQL. */
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sotto/devlist.h>
#include <sotto/keys.h>

#include "srvtest.h"
#include "testutil.h"

#define REQUIRE_VOID(e)      \
  do {                       \
    int require_ok_ = !!(e); \
    CHECK(require_ok_);      \
    if (!require_ok_) {      \
      srv_kill(&p);          \
      return;                \
    }                        \
  } while (0)

struct account {
  const char *name;
  uint32_t dev;
  uint8_t secret[32];
  uint8_t pub[32], priv[32]; /* the account key (identity key of device 1) */
};

static int do_register(struct srv_proc *p, struct sotto_net_ctx **ctx, struct account *a) {
  struct sotto_net *c = srv_connect(p, ctx, 1);
  uint8_t ik[37] = {0};
  int rc;
  if (!c) return -1;
  if (sotto_keypair_generate(a->pub, a->priv) != 0) return -1;
  sotto_pubkey_serialize(ik, a->pub);
  ik[36] = 7; /* registration id */
  rc = sotto_net_register(c, a->name, ik, sizeof ik, &a->dev, a->secret);
  sotto_net_close(c);
  return rc;
}

static struct sotto_net *login(struct srv_proc *p, struct sotto_net_ctx **ctx, const char *name, uint32_t dev,
                               const uint8_t secret[32]) {
  struct sotto_net *c = srv_connect(p, ctx, 1);
  if (c && sotto_net_auth(c, name, dev, secret, NULL, NULL) != 0) {
    sotto_net_close(c);
    return NULL;
  }
  return c;
}

/* A list of `a` naming devices ids[0..n) (device 1 = the account key; the
 * others get the keys in dpriv[id]), signed by signer_priv as account key
 * acc_pub. */
static size_t make_list(uint8_t *out, const struct account *a, const uint8_t acc_pub[32],
                        const uint8_t signer_priv[32], uint32_t version, const uint32_t *ids, size_t n,
                        uint8_t dpriv[][32]) {
  return srv_sign_devlist(out, a->name, acc_pub, signer_priv, version, ids, n, dpriv);
}

/* Sends one raw DEVLIST_PUT payload on a fresh login of alice's device 1
 * and returns the CLOSE code the server answers with, or 1000 + the ERR
 * code of an answer (1000: OK), or 0 when nothing came. */
static int raw_put_closes(struct srv_proc *p, struct sotto_net_ctx **ctx, const struct account *a, const uint8_t *pl,
                          size_t n) {
  struct sotto_net *c = login(p, ctx, a->name, 1, a->secret);
  struct sotto_net_event ev;
  int code = 0, i;
  if (!c) return -1;
  if (sotto_net_write_frame(c, SOTTO_SRV_DEVLIST_PUT, 7, pl, n) != 0) {
    sotto_net_close(c);
    return -1;
  }
  for (i = 0; i < 20 && sotto_net_next_event(c, 5000, &ev) == 1; i++) {
    int kind = ev.kind, evc = ev.code;
    sotto_net_event_clear(&ev);
    if (kind == SOTTO_NET_EV_CLOSE) {
      code = evc;
      break;
    }
    if (kind == SOTTO_NET_EV_ANSWER) {
      code = 1000 + evc;
      break;
    }
  }
  sotto_net_close(c);
  return code;
}

static struct sotto_net *login_old(struct srv_proc *p, struct sotto_net_ctx **ctx, const char *name, uint32_t dev,
                                   const uint8_t secret[32]);

static void test_devlist(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}, {0}, {0}}, bob = {"bob", 0, {0}, {0}, {0}};
  struct sotto_net *a = NULL, *a2 = NULL, *b = NULL, *x;
  uint8_t sec2[32], sec3[32], dpriv[10][32], dpub[32], list[SOTTO_DEVLIST_MAX_LEN], got[SOTTO_SRV_MAX_DEVLIST];
  uint32_t id2 = 0, id3 = 0;
  size_t len, glen;
  int i;
  const char *const extra[] = {"--register-burst", "100", "--device-change-burst", "100", "--log-level", "2", NULL};

  if (srv_mkdir(&p, "devlist") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }
  for (i = 0; i < 10; i++) REQUIRE_VOID(sotto_keypair_generate(dpub, dpriv[i]) == 0);
  REQUIRE_VOID(do_register(&p, &ctx, &alice) == 0);
  REQUIRE_VOID(do_register(&p, &ctx, &bob) == 0);
  REQUIRE_VOID((a = login(&p, &ctx, "alice", 1, alice.secret)) != NULL);
  REQUIRE_VOID((b = login(&p, &ctx, "bob", 1, bob.secret)) != NULL);
  CHECK_RC(sotto_net_add_device(a, &id2, sec2), 0);
  CHECK_RC(sotto_net_add_device(a, &id3, sec3), 0);
  REQUIRE_VOID(id2 == 2 && id3 == 3);

  /* no list yet: the account is what it was (every device row receives) */
  CHECK_RC(sotto_net_devlist_get(b, "alice", got, sizeof got, &glen), SOTTO_SRV_E_NOT_FOUND);
  CHECK_RC(sotto_net_send(b, "alice", 3, 1, (const uint8_t *)"x", 1, NULL, NULL), 0);

  /* version 1: devices 1 and 2 */
  {
    static const uint32_t ids[] = {1, 2};
    len = make_list(list, &alice, alice.pub, alice.priv, 1, ids, 2, dpriv);
    REQUIRE_VOID(len > 0);
    CHECK_RC(sotto_net_devlist_put(a, list, len), 0);
    CHECK_RC(sotto_net_devlist_get(b, "alice", got, sizeof got, &glen), 0);
    CHECK(glen == len && memcmp(got, list, len) == 0);
    /* the same list again, or any version not above 1: stale */
    CHECK_RC(sotto_net_devlist_put(a, list, len), SOTTO_SRV_E_DEVLIST_STALE);
  }
  /* the ghost, server side: device 3 has a row but is not in the signed list */
  CHECK_RC(sotto_net_send(b, "alice", 3, 1, (const uint8_t *)"x", 1, NULL, NULL), SOTTO_SRV_E_MISMATCHED_DEVICES);
  CHECK_RC(sotto_net_send(b, "alice", 2, 1, (const uint8_t *)"x", 1, NULL, NULL), 0);
  CHECK_RC(sotto_net_send(b, "alice", 1, 1, (const uint8_t *)"x", 1, NULL, NULL), 0);
  /* an account without a list is unaffected */
  CHECK_RC(sotto_net_send(a, "bob", 1, 1, (const uint8_t *)"x", 1, NULL, NULL), 0);

  /* refusals, each leaving the stored list as it was */
  {
    static const uint32_t ids12[] = {1, 2}, ids123[] = {1, 2, 3}, ids19[] = {1, 2, 9}, ids23[] = {2, 3};
    uint8_t forged[SOTTO_DEVLIST_MAX_LEN];
    /* a forged signature (one bit) */
    len = make_list(forged, &alice, alice.pub, alice.priv, 2, ids123, 3, dpriv);
    REQUIRE_VOID(len > 0);
    forged[len - 3] ^= 0x10;
    CHECK_RC(sotto_net_devlist_put(a, forged, len), SOTTO_SRV_E_DEVLIST_INVALID);
    /* a list signed by another key than the account's registered one */
    len = make_list(forged, &alice, bob.pub, bob.priv, 2, ids123, 3, dpriv);
    CHECK(len > 0);
    CHECK_RC(sotto_net_devlist_put(a, forged, len), SOTTO_SRV_E_DEVLIST_INVALID);
    /* another account's list */
    len = make_list(forged, &bob, alice.pub, alice.priv, 2, ids12, 2, dpriv);
    CHECK(len > 0);
    CHECK_RC(sotto_net_devlist_put(a, forged, len), SOTTO_SRV_E_DEVLIST_INVALID);
    /* a device id with no device row */
    len = make_list(forged, &alice, alice.pub, alice.priv, 2, ids19, 3, dpriv);
    CHECK(len > 0);
    CHECK_RC(sotto_net_devlist_put(a, forged, len), SOTTO_SRV_E_DEVLIST_INVALID);
    /* without device 1 */
    len = make_list(forged, &alice, alice.pub, alice.priv, 2, ids23, 2, dpriv);
    CHECK(len > 0);
    CHECK_RC(sotto_net_devlist_put(a, forged, len), SOTTO_SRV_E_DEVLIST_INVALID);
    /* from a device other than 1 */
    a2 = login(&p, &ctx, "alice", 2, sec2);
    CHECK(a2 != NULL);
    len = make_list(forged, &alice, alice.pub, alice.priv, 2, ids123, 3, dpriv);
    if (a2) CHECK_RC(sotto_net_devlist_put(a2, forged, len), SOTTO_SRV_E_FORBIDDEN);
    /* the stored list is still version 1 */
    CHECK_RC(sotto_net_devlist_get(b, "alice", got, sizeof got, &glen), 0);
    {
      struct sotto_devlist l;
      CHECK_RC(sotto_devlist_parse(&l, got, glen), 0);
      CHECK(l.version == 1 && l.n == 2);
    }
    /* version 2 with device 3: now it receives */
    CHECK_RC(sotto_net_devlist_put(a, forged, len), 0);
    CHECK_RC(sotto_net_send(b, "alice", 3, 1, (const uint8_t *)"x", 1, NULL, NULL), 0);
    /* a replay of version 1 after version 2: stale */
    len = make_list(forged, &alice, alice.pub, alice.priv, 1, ids12, 2, dpriv);
    CHECK_RC(sotto_net_devlist_put(a, forged, len), SOTTO_SRV_E_DEVLIST_STALE);
  }

  /* SEND_MULTI: one envelope per listed device, all or nothing */
  {
    static struct sotto_srv_send_multi m;
    uint64_t ids[SOTTO_SRV_MAX_DEVICES], ts = 0;
    struct sotto_net_event ev;
    struct sotto_net *a3;
    int got2 = 0, got3 = 0, k;
    memset(&m, 0, sizeof m);
    m.username.p = (const uint8_t *)"alice";
    m.username.len = 5;
    for (k = 0; k < 4; k++) {
      m.e[k].device_id = (uint32_t)k + 1;
      m.e[k].type = 1;
      m.e[k].body = (const uint8_t *)"multi";
      m.e[k].body_len = 5;
    }
    m.n = 2; /* device 3 left out */
    CHECK_RC(sotto_net_send_multi(b, &m, ids, &ts), SOTTO_SRV_E_MISMATCHED_DEVICES);
    /* the ERR(30) carries alice's newest signed list, exactly the bytes
     * DEVLIST_GET answers (HELLO features bit 2); an older client gets the
     * bare ERR(30) it knows */
    {
      static uint8_t ml[SOTTO_SRV_MAX_DEVLIST], cur[SOTTO_SRV_MAX_DEVLIST];
      size_t mlen = 0, clen = 0;
      struct sotto_net *old;
      struct account carol = {"carol", 0, {0}, {0}, {0}};
      CHECK_RC(sotto_net_send_multi_list(b, &m, ids, &ts, ml, sizeof ml, &mlen), SOTTO_SRV_E_MISMATCHED_DEVICES);
      CHECK_RC(sotto_net_devlist_get(b, "alice", cur, sizeof cur, &clen), 0);
      CHECK(mlen > 0 && mlen == clen && memcmp(ml, cur, clen) == 0);
      CHECK_RC(do_register(&p, &ctx, &carol), 0);
      old = login_old(&p, &ctx, "carol", carol.dev, carol.secret);
      CHECK(old != NULL);
      if (old) {
        mlen = 1;
        CHECK_RC(sotto_net_send_multi_list(old, &m, ids, &ts, ml, sizeof ml, &mlen), SOTTO_SRV_E_MISMATCHED_DEVICES);
        CHECK(mlen == 0);
        sotto_net_close(old);
      }
    }
    m.n = 4; /* device 4: neither listed nor a row */
    CHECK_RC(sotto_net_send_multi(b, &m, ids, &ts), SOTTO_SRV_E_MISMATCHED_DEVICES);
    m.n = 3;
    CHECK_RC(sotto_net_send_multi(b, &m, ids, &ts), 0);
    CHECK(ids[0] && ids[1] && ids[2] && ids[0] != ids[1] && ids[1] != ids[2] && ts > 0);
    /* an account without a list: its device rows are the set */
    m.username.p = (const uint8_t *)"bob";
    m.username.len = 3;
    m.n = 1;
    CHECK_RC(sotto_net_send_multi(a, &m, ids, &ts), 0);
    m.n = 2;
    {
      static uint8_t ml[SOTTO_SRV_MAX_DEVLIST];
      size_t mlen = 1;
      CHECK_RC(sotto_net_send_multi_list(a, &m, ids, &ts, ml, sizeof ml, &mlen), SOTTO_SRV_E_MISMATCHED_DEVICES);
      CHECK(mlen == 0); /* no list to carry: the bare ERR(30) */
    }
    /* alice's device 2 (connected) gets it live, device 3 when it connects */
    for (k = 0; a2 && k < 20 && !got2 && sotto_net_next_event(a2, 5000, &ev) == 1; k++) {
      got2 = ev.kind == SOTTO_NET_EV_MSG && ev.body_len == 5 &&
             memcmp(ev.body, "multi", 5) == 0 && ev.device_id == 2;
      sotto_net_event_clear(&ev);
    }
    CHECK(got2);
    a3 = login(&p, &ctx, "alice", 3, sec3);
    CHECK(a3 != NULL);
    for (k = 0; a3 && k < 20 && !got3 && sotto_net_next_event(a3, 5000, &ev) == 1; k++) {
      got3 = ev.kind == SOTTO_NET_EV_MSG && ev.body_len == 5 && memcmp(ev.body, "multi", 5) == 0 &&
             ev.device_id == 3;
      sotto_net_event_clear(&ev);
    }
    CHECK(got3);
    if (a3) sotto_net_close(a3);
  }

  /* frames that do not parse close the connection: no blob, an empty one,
   * one over the limit, a length past the end, a trailing byte */
  {
    static uint8_t big[SOTTO_SRV_MAX_DEVLIST + 3];
    uint8_t t[4] = {0, 1, 0xAA, 0xBB};
    CHECK(raw_put_closes(&p, &ctx, &alice, t, 0) == SOTTO_SRV_E_MALFORMED);
    t[1] = 0;
    CHECK(raw_put_closes(&p, &ctx, &alice, t, 2) == SOTTO_SRV_E_MALFORMED);
    big[0] = (uint8_t)((SOTTO_SRV_MAX_DEVLIST + 1) >> 8);
    big[1] = (uint8_t)(SOTTO_SRV_MAX_DEVLIST + 1);
    CHECK(raw_put_closes(&p, &ctx, &alice, big, sizeof big - 0) == SOTTO_SRV_E_MALFORMED);
    t[1] = 3;
    CHECK(raw_put_closes(&p, &ctx, &alice, t, 4) == SOTTO_SRV_E_MALFORMED);
    t[1] = 1;
    CHECK(raw_put_closes(&p, &ctx, &alice, t, 4) == SOTTO_SRV_E_MALFORMED);
    /* a well-formed frame whose list is garbage is answered, not closed */
    t[1] = 2;
    CHECK(raw_put_closes(&p, &ctx, &alice, t, 4) == 1000 + SOTTO_SRV_E_DEVLIST_INVALID);
  }

  /* a protocol version 1 client is told to upgrade, and keeps its connection */
  x = srv_connect(&p, &ctx, 0);
  CHECK(x != NULL);
  if (x) {
    CHECK_RC(sotto_net_hello(x, 1), 0);
    CHECK_RC(sotto_net_auth(x, "bob", 1, bob.secret, NULL, NULL), 0);
    CHECK_RC(sotto_net_devlist_get(x, "alice", got, sizeof got, &glen), SOTTO_SRV_E_OLD_PROTOCOL);
    {
      static struct sotto_srv_send_multi m1;
      uint64_t ids[SOTTO_SRV_MAX_DEVICES];
      m1.username.p = (const uint8_t *)"alice";
      m1.username.len = 5;
      m1.n = 1;
      m1.e[0].device_id = 1;
      m1.e[0].type = 1;
      m1.e[0].body = (const uint8_t *)"x";
      m1.e[0].body_len = 1;
      CHECK_RC(sotto_net_send_multi(x, &m1, ids, NULL), SOTTO_SRV_E_OLD_PROTOCOL);
    }
    CHECK_RC(sotto_net_ping(x), 0);
    sotto_net_close(x);
  }
  /* a version the server does not speak */
  x = srv_connect(&p, &ctx, 0);
  if (x) {
    CHECK_RC(sotto_net_hello(x, SOTTO_SRV_VERSION + 1), SOTTO_SRV_E_VERSION);
    sotto_net_close(x);
  }
  sotto_net_close(a);
  if (a2) sotto_net_close(a2);
  sotto_net_close(b);

  /* the requisition report lists the history */
  {
    const char *args[] = {"requisition", "--data", p.dir, "alice", NULL};
    int st = -1;
    char *out = srv_run_capture(args, &st);
    CHECK(out && st == 0);
    if (out) {
      CHECK(strstr(out, "\"device_lists\": [") != NULL);
      CHECK(strstr(out, "\"version\": 1, \"time\": \"") != NULL);
      CHECK(strstr(out, "\"device_ids\": [1, 2]}") != NULL);
      CHECK(strstr(out, "\"device_ids\": [1, 2, 3]}") != NULL);
      free(out);
    }
  }
  CHECK(srv_stop(&p) == 0);
  srv_rmdir(&p);
  sotto_net_ctx_free(ctx);
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

/* A connection whose HELLO announces only NOTICE (a client from before
 * last-seen days), logged in as name/dev. */
static struct sotto_net *login_old(struct srv_proc *p, struct sotto_net_ctx **ctx, const char *name, uint32_t dev,
                                   const uint8_t secret[32]) {
  struct sotto_net *c = srv_connect(p, ctx, 0);
  struct sotto_net_event ans;
  const uint8_t hello[3] = {0, SOTTO_SRV_VERSION, SOTTO_SRV_FEAT_NOTICE};
  if (!c) return NULL;
  if (sotto_net_call(c, SOTTO_SRV_HELLO, hello, sizeof hello, &ans) != 0 ||
      sotto_net_auth(c, name, dev, secret, NULL, NULL) != 0) {
    sotto_net_close(c);
    return NULL;
  }
  sotto_net_event_clear(&ans);
  return c;
}

/* DEVICES' last-seen days (docs/protocol-server.md, DEVICES): the account's
 * own devices get them, anyone else and a client that did not ask get the
 * ids alone; AUTH moves a device's day to today (the server's UTC day) and
 * a device that did not log in keeps its old day. pool 0: every read in
 * the commit batch (--pg-pool 0); 1: through the read pool (--pg-pool 2,
 * PostgreSQL only). */
static void test_last_seen(int pool) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}, {0}, {0}}, bob = {"bob", 0, {0}, {0}, {0}};
  struct sotto_net *a = NULL, *b = NULL, *o = NULL, *a2 = NULL;
  uint8_t sec2[32];
  uint32_t id2 = 0, ids[SOTTO_SRV_MAX_DEVICES], days[SOTTO_SRV_MAX_DEVICES];
  uint32_t today;
  size_t n = 0;
  int has = -1;
  char sql[200];
  const char *const plain[] = {"--register-burst", "100", "--device-change-burst", "100", "--pg-pool", "0", NULL};
  const char *const pooled[] = {"--register-burst", "100", "--device-change-burst", "100", "--pg-pool", "2", NULL};
  const char *const *extra = pool ? pooled : plain;

  if (srv_mkdir(&p, pool ? "seenpool" : "seen") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }
  REQUIRE_VOID(do_register(&p, &ctx, &alice) == 0);
  REQUIRE_VOID(do_register(&p, &ctx, &bob) == 0);
  REQUIRE_VOID((a = login(&p, &ctx, "alice", 1, alice.secret)) != NULL);
  CHECK_RC(sotto_net_add_device(a, &id2, sec2), 0);
  REQUIRE_VOID(id2 == 2);
  today = (uint32_t)(time(NULL) / 86400);

  /* alice's own device: ids and days */
  memset(days, 0xff, sizeof days);
  CHECK_RC(sotto_net_devices_seen(a, "alice", ids, days, SOTTO_SRV_MAX_DEVICES, &n, &has), 0);
  CHECK(n == 2 && ids[0] == 1 && ids[1] == 2 && has == 1);
  /* a day boundary between time() here and the server's clock: either day */
  CHECK((days[0] == today || days[0] == today + 1) && days[1] == days[0]);
  /* bob asks about alice: the ids, no days */
  REQUIRE_VOID((b = login(&p, &ctx, "bob", 1, bob.secret)) != NULL);
  memset(days, 0, sizeof days);
  has = -1;
  CHECK_RC(sotto_net_devices_seen(b, "alice", ids, days, SOTTO_SRV_MAX_DEVICES, &n, &has), 0);
  CHECK(n == 2 && ids[0] == 1 && ids[1] == 2 && has == 0 && days[0] == 0 && days[1] == 0);
  /* bob about himself: his day */
  CHECK_RC(sotto_net_devices_seen(b, "bob", ids, days, SOTTO_SRV_MAX_DEVICES, &n, &has), 0);
  CHECK(n == 1 && has == 1 && (days[0] == today || days[0] == today + 1));
  /* a client that did not announce the feature: the old answer, even for its own account */
  REQUIRE_VOID((o = login_old(&p, &ctx, "alice", 1, alice.secret)) != NULL);
  has = -1;
  CHECK_RC(sotto_net_devices_seen(o, "alice", ids, days, SOTTO_SRV_MAX_DEVICES, &n, &has), 0);
  CHECK(n == 2 && has == 0);
  CHECK_RC(sotto_net_devices(o, "alice", ids, SOTTO_SRV_MAX_DEVICES, &n), 0);
  CHECK(n == 2 && ids[1] == 2);
  sotto_net_close(o);
  sotto_net_close(a);
  sotto_net_close(b);
  a = b = NULL;

  /* A device last seen three days ago (the operator's edit stands in for
   * the calendar), with the server stopped so nothing it caches is stale. */
  REQUIRE_VOID(srv_stop(&p) == 0);
  snprintf(sql, sizeof sql, "UPDATE devices SET last_seen_day = %u WHERE device_id = 2", (unsigned)(today - 3));
  REQUIRE_VOID(store_exec(&p, sql) == 0);
  REQUIRE_VOID(srv_start(&p, extra) == 0);
  REQUIRE_VOID((a = login(&p, &ctx, "alice", 1, alice.secret)) != NULL);
  CHECK_RC(sotto_net_devices_seen(a, "alice", ids, days, SOTTO_SRV_MAX_DEVICES, &n, &has), 0);
  CHECK(n == 2 && has == 1 && days[1] == today - 3);
  /* device 2 logs in: its day is today again, device 1's unchanged */
  REQUIRE_VOID((a2 = login(&p, &ctx, "alice", 2, sec2)) != NULL);
  CHECK_RC(sotto_net_devices_seen(a2, "alice", ids, days, SOTTO_SRV_MAX_DEVICES, &n, &has), 0);
  CHECK(n == 2 && has == 1 && (days[1] == today || days[1] == today + 1) && days[0] >= today);
  /* and alice's first connection sees the same (the batch or the pool alike) */
  CHECK_RC(sotto_net_devices_seen(a, "alice", ids, days, SOTTO_SRV_MAX_DEVICES, &n, &has), 0);
  CHECK(n == 2 && has == 1 && days[1] >= today);
  /* an unknown account: not found, as before */
  CHECK_RC(sotto_net_devices_seen(a, "nobody", ids, days, SOTTO_SRV_MAX_DEVICES, &n, &has), SOTTO_SRV_E_NOT_FOUND);
  sotto_net_close(a2);
  sotto_net_close(a);
  CHECK(srv_stop(&p) == 0);
  srv_rmdir(&p);
  sotto_net_ctx_free(ctx);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0 || sotto_init() != 0) return 1;
  test_devlist();
  test_last_seen(0);
  if (srv_pg()) test_last_seen(1);
  return test_done("test_server_devlist");
}

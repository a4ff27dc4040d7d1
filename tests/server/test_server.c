/* SPDX-License-Identifier: Apache-2.0 */
/* test_server.c: integration tests of sotto-server, driving the real binary
 * over loopback TLS with client/net: registration, authentication, pre-keys,
 * queues (offline, live, acks, redelivery), displacement, limits, malformed
 * frames, requisition, metrics, and a scan of the data directory for
 * plaintext. Every wait is bounded (client timeouts of a few seconds). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include <sotto/keys.h>

#include "rotation.h"
#include "srvtest.h"
#include "testutil.h"
#include "wire.h"

#define WAIT_MS 5000
/* Stops a test function (killing its server) when a precondition fails. */
/* The expression is evaluated once. */
#define REQUIRE_VOID(e)      \
  do {                       \
    int require_ok_ = !!(e); \
    CHECK(require_ok_);      \
    if (!require_ok_) {      \
      srv_kill(&p);          \
      return;                \
    }                        \
  } while (0)

static uint8_t chat_key[crypto_secretbox_KEYBYTES];
static const char *const plaintexts[] = {
    "PLAINTEXT-attack at dawn, bring the blue folder",
    "PLAINTEXT-the code word is marmalade",
    "PLAINTEXT-meet me by the old lighthouse",
    "PLAINTEXT-live message while online",
};

/* "Encrypts" a test plaintext the way a client would: the server only ever
 * sees nonce || secretbox(plaintext). */
static size_t seal(uint8_t *out, const char *pt) {
  size_t n = strlen(pt);
  randombytes_buf(out, crypto_secretbox_NONCEBYTES);
  crypto_secretbox_easy(out + crypto_secretbox_NONCEBYTES, (const uint8_t *)pt, n, out, chat_key);
  return crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES + n;
}

static int opens_to(const uint8_t *ct, size_t len, const char *pt) {
  uint8_t buf[512];
  size_t n;
  if (len < crypto_secretbox_NONCEBYTES + crypto_secretbox_MACBYTES || len > sizeof buf) return 0;
  n = len - crypto_secretbox_NONCEBYTES - crypto_secretbox_MACBYTES;
  if (crypto_secretbox_open_easy(buf, ct + crypto_secretbox_NONCEBYTES, len - crypto_secretbox_NONCEBYTES, ct,
                                 chat_key) != 0)
    return 0;
  return n == strlen(pt) && memcmp(buf, pt, n) == 0;
}

struct account {
  const char *name;
  uint32_t dev;
  uint8_t secret[32];
};

static int do_register(struct srv_proc *p, struct sotto_net_ctx **ctx, struct account *a) {
  struct sotto_net *c = srv_connect(p, ctx, 1);
  uint8_t ik[33];
  int rc;
  if (!c) return -1;
  memset(ik, 0x05, sizeof ik);
  ik[1] = (uint8_t)a->name[0];
  rc = sotto_net_register(c, a->name, ik, sizeof ik, &a->dev, a->secret);
  sotto_net_close(c);
  return rc;
}

static struct sotto_net *login(struct srv_proc *p, struct sotto_net_ctx **ctx, const struct account *a) {
  struct sotto_net *c = srv_connect(p, ctx, 1);
  if (c && sotto_net_auth(c, a->name, a->dev, a->secret, NULL, NULL) != 0) {
    sotto_net_close(c);
    return NULL;
  }
  return c;
}

/* Next event of a kind, skipping KEYS_LOW notices; 0 if none in time. */
static int next_of(struct sotto_net *c, int kind, struct sotto_net_event *ev) {
  for (;;) {
    int r = sotto_net_next_event(c, WAIT_MS, ev);
    if (r != 1) return 0;
    if (ev->kind == kind) return 1;
    if (ev->kind != SOTTO_NET_EV_KEYS_LOW && !(kind == SOTTO_NET_EV_CLOSE && ev->kind == SOTTO_NET_EV_DRAINED)) {
      fprintf(stderr, "unexpected event kind %d (wanted %d)\n", ev->kind, kind);
      sotto_net_event_clear(ev);
      return 0;
    }
    sotto_net_event_clear(ev);
  }
}

/* Builds a key upload: signed, last resort, n_ec EC and n_kem KEM keys. */
static void make_keys(struct sotto_srv_keys *k, uint8_t blob[64], int n_ec, int n_kem) {
  int i;
  memset(k, 0, sizeof *k);
  memset(blob, 0xAB, 64);
  k->flags = SOTTO_SRV_KEYS_SIGNED | SOTTO_SRV_KEYS_LAST_RESORT;
  k->signed_prekey = (struct sotto_srv_blob_id){7, blob, 64};
  k->last_resort = (struct sotto_srv_blob_id){9000, blob, 48};
  k->n_ec = (uint16_t)n_ec;
  k->n_kem = (uint16_t)n_kem;
  for (i = 0; i < n_ec; i++) k->ec[i] = (struct sotto_srv_blob_id){(uint32_t)(100 + i), blob, 33};
  for (i = 0; i < n_kem; i++) k->kem[i] = (struct sotto_srv_blob_id){(uint32_t)(500 + i), blob, 40};
}

static void test_main_server(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}}, carol = {"carol", 0, {0}};
  struct account mallory = {"mallory", 0, {0}};
  struct sotto_net *a = NULL, *b = NULL, *c = NULL, *c2 = NULL, *x;
  struct sotto_net_event ev;
  static struct sotto_srv_keys keys;
  struct sotto_srv_bundle_buf bundle;
  uint8_t blob[64], ct[512];
  uint64_t ids[4] = {0};
  uint32_t ec = 0, kem = 0, dev_ids[16];
  size_t n, i;
  int rc, seen_low = 0;
  /* keys-low-interval 0: every low fetch is told here (the bound on KEYS_LOW
   * pushes has its own test in test_server_attack.c). */
  const char *const extra[] = {"--register-burst", "100", "--log-level", "2", "--keys-low-interval", "0", NULL};

  if (srv_mkdir(&p, "main") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }

  /* ---- registration ---- */
  CHECK_RC(do_register(&p, &ctx, &alice), 0);
  CHECK(alice.dev == 1);
  CHECK_RC(do_register(&p, &ctx, &bob), 0);
  CHECK_RC(do_register(&p, &ctx, &carol), 0);
  CHECK_RC(do_register(&p, &ctx, &mallory), 0);
  {
    struct account dup = {"alice", 0, {0}}, bad = {"Bad Name", 0, {0}}, shortn = {"ab", 0, {0}};
    CHECK_RC(do_register(&p, &ctx, &dup), SOTTO_SRV_E_TAKEN);
    CHECK_RC(do_register(&p, &ctx, &bad), SOTTO_SRV_E_BAD_USERNAME);
    CHECK_RC(do_register(&p, &ctx, &shortn), SOTTO_SRV_E_BAD_USERNAME);
  }

  /* ---- authentication ---- */
  x = srv_connect(&p, &ctx, 1);
  CHECK(x != NULL);
  if (x) {
    uint8_t wrong[32];
    memcpy(wrong, alice.secret, 32);
    wrong[0] ^= 1;
    CHECK_RC(sotto_net_auth(x, "alice", 1, wrong, NULL, NULL), SOTTO_SRV_E_AUTH);
    CHECK_RC(sotto_net_auth(x, "alice", 2, alice.secret, NULL, NULL), SOTTO_SRV_E_AUTH);
    CHECK_RC(sotto_net_auth(x, "nobody", 1, alice.secret, NULL, NULL), SOTTO_SRV_E_AUTH);
    /* Requests before AUTH are refused, the connection stays usable. */
    CHECK_RC(sotto_net_send(x, "bob", 1, 1, (const uint8_t *)"x", 1, NULL, NULL), SOTTO_SRV_E_NOT_AUTHED);
    CHECK_RC(sotto_net_ping(x), 0);
    sotto_net_close(x);
  }
  {
    struct sotto_net_ctx *badctx = sotto_net_ctx_new(
        "0000000000000000000000000000000000000000000000000000000000000000", NULL);
    struct sotto_net *y = NULL;
    CHECK(badctx != NULL);
    if (badctx) CHECK_RC(sotto_net_connect(badctx, "127.0.0.1", p.port, WAIT_MS, 1, &y), SOTTO_NET_E_PIN);
    sotto_net_close(y);
    sotto_net_ctx_free(badctx);
  }
  /* An old (or future) protocol version gets a clear error. */
  x = srv_connect(&p, &ctx, 0);
  CHECK(x != NULL);
  if (x) {
    CHECK_RC(sotto_net_hello(x, 99), SOTTO_SRV_E_VERSION);
    sotto_net_close(x);
  }

  a = login(&p, &ctx, &alice);
  b = login(&p, &ctx, &bob);
  REQUIRE_VOID(a && b);

  /* ---- pre-keys ---- */
  make_keys(&keys, blob, 12, 11);
  CHECK_RC(sotto_net_upload_keys(a, &keys, &ec, &kem), 0);
  CHECK(ec == 12 && kem == 11);
  {
    /* Over the per-upload cap (encoded by hand: the client refuses to). */
    uint8_t over[8] = {0, 0, 101, 0, 0};
    CHECK_RC(sotto_net_write_frame(a, SOTTO_SRV_KEYS_UPLOAD, 77, over, 3), 0);
    CHECK(sotto_net_next_event(a, WAIT_MS, &ev) == 1);
    while ((ev.kind == SOTTO_NET_EV_KEYS_LOW || ev.kind == SOTTO_NET_EV_DRAINED) &&
           sotto_net_next_event(a, WAIT_MS, &ev) == 1) {
    }
    CHECK(ev.kind == SOTTO_NET_EV_ANSWER && ev.req_id == 77 && ev.code == SOTTO_SRV_E_TOO_LARGE);
    sotto_net_event_clear(&ev);
  }
  {
    uint32_t first_ec = 0;
    for (i = 0; i < 13; i++) {
      rc = sotto_net_fetch_bundle(b, "alice", 1, &bundle);
      CHECK_RC(rc, 0);
      if (rc) break;
      CHECK(bundle.spk_id == 7 && bundle.spk_len == 64 && bundle.identity_len == 33);
      if (i < 12) {
        CHECK(bundle.has_ec && bundle.ec_id == 100 + i); /* each one-time key once */
        if (i == 0) first_ec = bundle.ec_id;
        else CHECK(bundle.ec_id != first_ec);
      } else {
        CHECK(!bundle.has_ec);
      }
      if (i < 11) CHECK(bundle.kem_kind == 1 && bundle.kem_id == 500 + i);
      else CHECK(bundle.kem_kind == 2 && bundle.kem_id == 9000); /* last resort */
    }
  }
  /* Alice is told she is running low (pushes arrive on her connection). */
  while (sotto_net_next_event(a, 500, &ev) == 1) {
    if (ev.kind == SOTTO_NET_EV_KEYS_LOW) seen_low++;
    sotto_net_event_clear(&ev);
  }
  CHECK(seen_low > 0);
  CHECK_RC(sotto_net_fetch_bundle(b, "carol", 1, &bundle), SOTTO_SRV_E_NO_KEYS);
  CHECK_RC(sotto_net_fetch_bundle(b, "zed", 1, &bundle), SOTTO_SRV_E_NOT_FOUND);
  CHECK_RC(sotto_net_devices(b, "alice", dev_ids, 16, &n), 0);
  CHECK(n == 1 && dev_ids[0] == 1);

  /* ---- queueing while offline ---- */
  for (i = 0; i < 3; i++) {
    size_t len = seal(ct, plaintexts[i]);
    CHECK_RC(sotto_net_send(b, "carol", 1, 3, ct, len, &ids[i], NULL), 0);
    if (i) CHECK(ids[i] > ids[i - 1]);
  }
  CHECK_RC(sotto_net_send(b, "carol", 2, 1, ct, 10, NULL, NULL), SOTTO_SRV_E_NOT_FOUND);
  c = login(&p, &ctx, &carol);
  REQUIRE_VOID(c != NULL);
  for (i = 0; i < 3; i++) {
    CHECK(next_of(c, SOTTO_NET_EV_MSG, &ev));
    CHECK(ev.id == ids[i] && strcmp(ev.sender, "bob") == 0 && ev.sender_device == 1 && ev.device_id == 1 &&
          ev.type == 3);
    CHECK(opens_to(ev.body, ev.body_len, plaintexts[i]));
    sotto_net_event_clear(&ev);
  }
  CHECK(next_of(c, SOTTO_NET_EV_DRAINED, &ev));
  /* An ACK from another account of carol's envelope (the sender's, whose
   * server just inserted it) is answered like an unknown id and deletes
   * nothing: ids[1] comes back below. */
  CHECK_RC(sotto_net_ack(b, ids[1]), 0);
  /* ---- duplicates: only the first is acked, the rest come back ---- */
  CHECK_RC(sotto_net_ack(c, ids[0]), 0);
  sotto_net_close(c);
  c = login(&p, &ctx, &carol);
  REQUIRE_VOID(c != NULL);
  for (i = 1; i < 3; i++) {
    CHECK(next_of(c, SOTTO_NET_EV_MSG, &ev));
    CHECK(ev.id == ids[i]); /* same server id: the client can deduplicate */
    CHECK(opens_to(ev.body, ev.body_len, plaintexts[i]));
    CHECK_RC(sotto_net_ack(c, ev.id), 0);
    sotto_net_event_clear(&ev);
  }
  CHECK(next_of(c, SOTTO_NET_EV_DRAINED, &ev));
  CHECK_RC(sotto_net_ack(c, ids[1]), 0); /* acking twice is harmless */
  sotto_net_close(c);
  c = login(&p, &ctx, &carol);
  REQUIRE_VOID(c != NULL);
  CHECK(next_of(c, SOTTO_NET_EV_DRAINED, &ev)); /* nothing left */

  /* ---- live push ---- */
  {
    size_t len = seal(ct, plaintexts[3]);
    CHECK_RC(sotto_net_send(b, "carol", 1, 1, ct, len, &ids[3], NULL), 0);
    CHECK(next_of(c, SOTTO_NET_EV_MSG, &ev));
    CHECK(ev.id == ids[3] && opens_to(ev.body, ev.body_len, plaintexts[3]));
    CHECK_RC(sotto_net_ack(c, ev.id), 0);
    sotto_net_event_clear(&ev);
  }

  /* ---- one live connection per device ---- */
  c2 = login(&p, &ctx, &carol);
  CHECK(c2 != NULL);
  CHECK(next_of(c, SOTTO_NET_EV_CLOSE, &ev) && ev.code == SOTTO_SRV_E_DISPLACED);
  sotto_net_close(c);
  c = c2;
  CHECK(c && next_of(c, SOTTO_NET_EV_DRAINED, &ev));

  /* ---- more devices ---- */
  {
    struct account a2 = {"alice", 0, {0}};
    CHECK_RC(sotto_net_add_device(a, &a2.dev, a2.secret), 0);
    CHECK(a2.dev == 2);
    CHECK_RC(sotto_net_devices(b, "alice", dev_ids, 16, &n), 0);
    CHECK(n == 2 && dev_ids[1] == 2);
    x = login(&p, &ctx, &a2);
    CHECK(x != NULL);
    sotto_net_close(x);
  }

  /* ---- malformed frames close that connection only ---- */
  {
    static const uint8_t short_len[] = {0, 0, 0, 2, 0x30, 0};
    static const uint8_t bad_type[] = {0, 0, 0, 5, 0x77, 0, 0, 0, 1};
    static const uint8_t huge[] = {0x7f, 0, 0, 0, 0x20};
    const uint8_t *cases[3] = {short_len, bad_type, huge};
    size_t lens[3] = {sizeof short_len, sizeof bad_type, sizeof huge};
    int codes[3] = {SOTTO_SRV_E_MALFORMED, SOTTO_SRV_E_MALFORMED, SOTTO_SRV_E_TOO_LARGE};
    for (i = 0; i < 3; i++) {
      x = login(&p, &ctx, &mallory);
      CHECK(x != NULL);
      if (!x) continue;
      while (sotto_net_next_event(x, 200, &ev) == 1) sotto_net_event_clear(&ev); /* backlog */
      CHECK_RC(sotto_net_write_raw(x, cases[i], lens[i]), 0);
      CHECK(next_of(x, SOTTO_NET_EV_CLOSE, &ev) && ev.code == codes[i]);
      CHECK(sotto_net_next_event(x, WAIT_MS, &ev) == SOTTO_NET_E_IO); /* then closed */
      sotto_net_close(x);
    }
    /* A malformed SEND payload (truncated) and a HELLO-less request. */
    x = login(&p, &ctx, &mallory);
    if (x) {
      static const uint8_t trunc_send[] = {5, 'c', 'a', 'r', 'o', 'l', 0, 0};
      CHECK_RC(sotto_net_write_frame(x, SOTTO_SRV_SEND, 9, trunc_send, sizeof trunc_send), 0);
      CHECK(next_of(x, SOTTO_NET_EV_CLOSE, &ev) && ev.code == SOTTO_SRV_E_MALFORMED);
      sotto_net_close(x);
    }
    x = srv_connect(&p, &ctx, 0);
    if (x) {
      CHECK_RC(sotto_net_ping(x), SOTTO_SRV_E_MALFORMED);
      sotto_net_close(x);
    }
    /* Bob (a different connection) and carol still work. */
    CHECK_RC(sotto_net_ping(b), 0);
    CHECK_RC(sotto_net_send(b, "carol", 1, 1, ct, 40, &ids[0], NULL), 0);
    CHECK(next_of(c, SOTTO_NET_EV_MSG, &ev) && ev.id == ids[0]);
    sotto_net_event_clear(&ev);
  }

  /* ---- requisition, metrics, no plaintext at rest ---- */
  {
    const char *args[] = {"requisition", "--data", p.dir, "carol", NULL};
    int st = -1;
    char *out = srv_run_capture(args, &st);
    char *m;
    CHECK(out && st == 0);
    if (out) {
      CHECK(strstr(out, "\"username\": \"carol\"") != NULL);
      CHECK(strstr(out, "\"queued_messages\": 1") != NULL);
      CHECK(strstr(out, "\"last_seen_day\"") != NULL);
      CHECK(strstr(out, "PLAINTEXT") == NULL);
      free(out);
    }
    args[3] = "alice";
    out = srv_run_capture(args, &st);
    CHECK(out && st == 0);
    if (out) {
      /* public key material and counts: 2 devices, spk 7, no one-time keys left */
      CHECK(strstr(out, "\"device_id\": 2") && strstr(out, "\"signed_prekey\": {\"id\": 7"));
      CHECK(strstr(out, "\"one_time_prekeys\": 0") && strstr(out, "\"kem_last_resort\": true"));
      CHECK(strstr(out, "\"identity_key\": \"05") != NULL);
      free(out);
    }
    args[3] = "nobody";
    out = srv_run_capture(args, &st);
    CHECK(st != 0);
    free(out);
    m = srv_metrics(&p);
    CHECK(m && strstr(m, "sotto_messages_in_total 5") && strstr(m, "sotto_commit_batch_size_count"));
    CHECK(m && strstr(m, "sotto_queue_depth 1"));
    free(m);
    for (i = 0; i < 4; i++) CHECK(!srv_dir_contains(p.dir, plaintexts[i], strlen(plaintexts[i])));
    CHECK(!srv_dir_contains(p.dir, "PLAINTEXT", 9));
  }

  sotto_net_close(a);
  sotto_net_close(b);
  sotto_net_close(c);
  CHECK(srv_stop(&p) == 0); /* clean exit on SIGTERM */
  CHECK(!srv_dir_contains(p.dir, "PLAINTEXT", 9));
  {
    /* Secrets are not in the log, and neither is any message text. */
    char *log = tu_read_file(p.log, &n);
    char hex[65];
    CHECK(log != NULL);
    if (log) {
      sodium_bin2hex(hex, sizeof hex, alice.secret, 32);
      CHECK(strstr(log, hex) == NULL && strstr(log, "PLAINTEXT") == NULL);
      CHECK(strstr(log, "event=start") != NULL && strstr(log, "event=stopped") != NULL);
      free(log);
    }
  }
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

static void test_limits(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account s = {"sender", 0, {0}}, d = {"dave", 0, {0}}, e = {"erin", 0, {0}}, f = {"frank", 0, {0}};
  struct sotto_net *c = NULL, *x;
  struct sotto_net_event ev;
  uint8_t big[2048];
  int i, rc, rated = 0, full = 0;
  const char *const extra[] = {"--max-message", "1024", "--max-queue", "5", "--send-burst", "12",
                               "--send-rate", "0.01", "--register-burst", "3", "--register-rate", "0.01",
                               "--auth-timeout", "1", "--max-unauth", "3", NULL};
  if (srv_mkdir(&p, "limits") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"limits server starts");
    return;
  }
  CHECK_RC(do_register(&p, &ctx, &s), 0);
  CHECK_RC(do_register(&p, &ctx, &d), 0);
  CHECK_RC(do_register(&p, &ctx, &e), 0);
  CHECK_RC(do_register(&p, &ctx, &f), SOTTO_SRV_E_RATE); /* per-IP registration bucket */
  c = login(&p, &ctx, &s);
  if (!c) {
    CHECK(!"login");
    srv_kill(&p);
    return;
  }
  memset(big, 0x42, sizeof big);
  CHECK_RC(sotto_net_send(c, "dave", 1, 1, big, 1025, NULL, NULL), SOTTO_SRV_E_TOO_LARGE);
  CHECK_RC(sotto_net_ping(c), 0); /* still connected */
  for (i = 0; i < 5; i++) CHECK_RC(sotto_net_send(c, "dave", 1, 1, big, 100, NULL, NULL), 0);
  for (i = 0; i < 20; i++) {
    rc = sotto_net_send(c, "dave", 1, 1, big, 100, NULL, NULL);
    if (rc == SOTTO_SRV_E_QUEUE_FULL) full++;
    else if (rc == SOTTO_SRV_E_RATE) rated++;
    else CHECK_RC(rc, SOTTO_SRV_E_QUEUE_FULL);
  }
  CHECK(full >= 1 && rated >= 1);
  CHECK_RC(sotto_net_ping(c), 0);

  /* Unauthenticated connections: a timeout ... */
  x = srv_connect(&p, &ctx, 1);
  CHECK(x != NULL);
  if (x) {
    CHECK(sotto_net_next_event(x, WAIT_MS, &ev) == 1 && ev.kind == SOTTO_NET_EV_CLOSE &&
          ev.code == SOTTO_SRV_E_TIMEOUT);
    sotto_net_close(x);
  }
  /* ... and a cap (3 here): the 4th is refused while 3 sit unauthenticated. */
  {
    struct sotto_net *u[3] = {NULL, NULL, NULL}, *y = NULL;
    for (i = 0; i < 3; i++) u[i] = srv_connect(&p, &ctx, 1);
    CHECK(u[0] && u[1] && u[2]);
    rc = sotto_net_connect(ctx, "127.0.0.1", p.port, WAIT_MS, 1, &y);
    CHECK(rc != 0);
    sotto_net_close(y);
    for (i = 0; i < 3; i++) sotto_net_close(u[i]);
  }
  CHECK_RC(sotto_net_ping(c), 0);
  sotto_net_close(c);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

static void test_config_and_help(void) {
  const char *help[] = {"--help", NULL};
  int st = -1;
  char *out = srv_run_capture(help, &st);
  CHECK(out && st == 0);
  if (out) {
    CHECK(strstr(out, "--auth-fail-rate") && strstr(out, "--auth-fail-burst") &&
          strstr(out, "--max-queue-age-seconds"));
    CHECK(strstr(out, "--max-inflight") && strstr(out, "--idle-timeout") && strstr(out, "--max-unauth-per-addr") &&
          strstr(out, "--prefix-v4") && strstr(out, "--bundle-otk-burst") && strstr(out, "--max-queue-per-sender") &&
          strstr(out, "--max-store-bytes") && strstr(out, "--disk-reserve") && strstr(out, "--keys-low-interval") &&
          strstr(out, "--register-global-rate") && strstr(out, "--auth-fail-prefix-rate") &&
          strstr(out, "--max-sender-bytes") && strstr(out, "--wal-scrub-interval"));
    CHECK(strstr(out, "--max-queue") && strstr(out, "--config") && strstr(out, "--metrics") &&
          strstr(out, "requisition"));
    free(out);
  }
  {
    const char *bad[] = {"--data", "/nonexistent", "--max-queue", "zero", NULL};
    out = srv_run_capture(bad, &st);
    CHECK(st == 2);
    free(out);
  }
  {
    /* Every option also from a config file. */
    char path[] = "/tmp/sotto-srvtest-conf-XXXXXX";
    int fd = mkstemp(path);
    const char text[] = "# test\nmax-queue = 7\nbogus-key = 1\n";
    const char *args[] = {"--config", path, "--data", "/tmp", "fingerprint", NULL};
    CHECK(fd >= 0);
    if (fd >= 0) {
      CHECK(write(fd, text, sizeof text - 1) == (ssize_t)(sizeof text - 1));
      close(fd);
      out = srv_run_capture(args, &st);
      CHECK(st == 2); /* unknown key in the file is an error */
      free(out);
      unlink(path);
    }
  }
}

/* Item: "--listen HOST:0" prints the port the kernel chose, and
 * sotto_net_fetch_fingerprint (trust on first use) sees the printed
 * fingerprint. srv_start already passes port 0 for both listeners. */
static void test_port_zero_and_fingerprint(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct sotto_net *x;
  char hex[65], *m;
  if (srv_mkdir(&p, "port0") != 0 || srv_start(&p, NULL) != 0) {
    CHECK(!"server on port 0 starts and prints its ports");
    return;
  }
  CHECK(atoi(p.port) > 0 && atoi(p.mport) > 0 && strcmp(p.port, p.mport) != 0);
  x = srv_connect(&p, &ctx, 1);
  CHECK(x != NULL);
  if (x) CHECK_RC(sotto_net_ping(x), 0);
  if (x) {
    /* ROTATION before AUTH: a server that never rotated has an empty chain. */
    struct sotto_rot_statement chain[SOTTO_ROT_MAX_CHAIN];
    struct sotto_net_event ev;
    size_t n = 99;
    static const uint8_t one = 0;
    CHECK_RC(sotto_net_rotation(x, chain, SOTTO_ROT_MAX_CHAIN, &n), 0);
    CHECK(n == 0);
    {
      /* Prepared while the server runs: served within a second, signed by
       * the key of the certificate this connection sees. */
      char cmd[4600];
      uint8_t fp[32], key[32];
      int tries;
      snprintf(cmd, sizeof cmd, "%s rotate-certificate --data %s >/dev/null 2>&1", SOTTO_SERVER_BIN, p.dir);
      CHECK(system(cmd) == 0);
      for (tries = 0, n = 0; tries < 30 && n == 0; tries++) {
        usleep(100 * 1000);
        CHECK_RC(sotto_net_rotation(x, chain, SOTTO_ROT_MAX_CHAIN, &n), 0);
      }
      CHECK(n == 1 && chain[0].serial == 1 && sotto__rot_check_sig(&chain[0]) == 0);
      CHECK(sotto_net_peer(x, fp, key) == 0 && n == 1 && memcmp(chain[0].old_key, key, 32) == 0 &&
            memcmp(chain[0].new_key, key, 32) != 0);
    }
    /* ... and it takes no payload: one byte closes the connection as malformed. */
    CHECK_RC(sotto_net_write_frame(x, SOTTO_SRV_ROTATION, 5, &one, 1), 0);
    memset(&ev, 0, sizeof ev);
    while (sotto_net_next_event(x, WAIT_MS, &ev) == 1 && ev.kind != SOTTO_NET_EV_CLOSE) sotto_net_event_clear(&ev);
    CHECK(ev.kind == SOTTO_NET_EV_CLOSE && ev.code == SOTTO_SRV_E_MALFORMED);
    sotto_net_event_clear(&ev);
  }
  sotto_net_close(x);
  x = srv_connect(&p, &ctx, 0);
  if (x) {
    /* Before HELLO it is no HELLO: malformed. */
    struct sotto_rot_statement chain[1];
    size_t n = 0;
    CHECK_RC(sotto_net_rotation(x, chain, 1, &n), SOTTO_SRV_E_MALFORMED);
  }
  sotto_net_close(x);
  m = srv_metrics(&p);
  CHECK(m && strstr(m, "sotto_connections_total"));
  free(m);
  memset(hex, 'x', sizeof hex);
  CHECK_RC(sotto_net_fetch_fingerprint("127.0.0.1", p.port, WAIT_MS, hex), 0);
  CHECK(strlen(hex) == 64 && strcmp(hex, p.fp) == 0);
  CHECK(srv_stop(&p) == 0);
  {
    /* A bound socket that does not listen: the connection is refused. */
    struct sockaddr_in sa;
    socklen_t sl = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char port[16];
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
          getsockname(fd, (struct sockaddr *)&sa, &sl) == 0);
    snprintf(port, sizeof port, "%u", ntohs(sa.sin_port));
    CHECK_RC(sotto_net_fetch_fingerprint("127.0.0.1", port, WAIT_MS, hex), SOTTO_NET_E_CONNECT);
    CHECK(hex[0] == 0);
    if (fd >= 0) close(fd);
  }
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* Failed logins per (address, account): a bucket of 3 that (practically)
 * never refills. Correct logins in between do not use it up, not even 40
 * of them in flight at once from one address (the limiter used to hold a
 * token per AUTH in flight, which refused correct logins from a busy
 * address: bench/run server stopped at "ERR 19"). The 4th failure for alice
 * is refused with ERR(auth rate) and the connection closed; after that even
 * alice's correct secret from this address is refused (not even checked),
 * while bob, behind the same address (CGNAT), still logs in. */
static void test_auth_rate(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  struct sotto_net *x, *y, *many[40];
  uint8_t wrong[32];
  int i, rc, ok = 0;
  /* 40 pre-auth connections from one address really in flight at once need
   * a pre-auth share of 40 (the default 32 was only enough while each AUTH
   * committed before the next connection came; a store that syncs each
   * commit, like PostgreSQL, shows the difference). */
  const char *const extra[] = {"--auth-fail-burst", "3", "--auth-fail-rate", "0.001", "--max-unauth-per-addr", "64",
                               NULL};
  if (srv_mkdir(&p, "authrate") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &alice);
  if (rc == 0) rc = do_register(&p, &ctx, &bob);
  REQUIRE_VOID(rc == 0);
  memcpy(wrong, alice.secret, 32);
  wrong[5] ^= 0x40;
  x = srv_connect(&p, &ctx, 1);
  REQUIRE_VOID(x != NULL);
  CHECK_RC(sotto_net_auth(x, "alice", 1, wrong, NULL, NULL), SOTTO_SRV_E_AUTH);
  CHECK_RC(sotto_net_auth(x, "nobody", 1, wrong, NULL, NULL), SOTTO_SRV_E_AUTH);
  sotto_net_close(x);
  for (i = 0; i < 6; i++) {
    y = login(&p, &ctx, &alice);
    CHECK(y != NULL);
    sotto_net_close(y);
  }
  /* 40 correct AUTHs in flight at once from one address all succeed. */
  for (i = 0; i < 40; i++) {
    uint8_t b[64];
    size_t n = 0;
    many[i] = srv_connect(&p, &ctx, 1);
    if (!many[i]) continue;
    b[n++] = 3;
    memcpy(b + n, "bob", 3);
    n += 3;
    b[n++] = 0, b[n++] = 0, b[n++] = 0, b[n++] = 1;
    memcpy(b + n, bob.secret, 32);
    n += 32;
    CHECK_RC(sotto_net_write_frame(many[i], SOTTO_SRV_AUTH, 5, b, n), 0);
  }
  for (i = 0; i < 40; i++) {
    struct sotto_net_event ev;
    if (!many[i]) continue;
    while (sotto_net_next_event(many[i], WAIT_MS, &ev) == 1) {
      int done = ev.kind == SOTTO_NET_EV_ANSWER || ev.kind == SOTTO_NET_EV_CLOSE;
      if (ev.kind == SOTTO_NET_EV_ANSWER && ev.req_id == 5 && ev.code == 0) ok++;
      sotto_net_event_clear(&ev);
      if (done) break;
    }
    sotto_net_close(many[i]);
  }
  fprintf(stderr, "auth: %d of 40 correct logins in flight at once from one address succeeded\n", ok);
  CHECK(ok == 40);
  x = srv_connect(&p, &ctx, 1);
  REQUIRE_VOID(x != NULL);
  CHECK_RC(sotto_net_auth(x, "alice", 1, wrong, NULL, NULL), SOTTO_SRV_E_AUTH);
  CHECK_RC(sotto_net_auth(x, "alice", 1, wrong, NULL, NULL), SOTTO_SRV_E_AUTH);
  CHECK_RC(sotto_net_auth(x, "alice", 1, wrong, NULL, NULL), SOTTO_SRV_E_AUTH_RATE);
  CHECK(sotto_net_ping(x) != 0); /* closed by the server */
  sotto_net_close(x);
  x = srv_connect(&p, &ctx, 1);
  CHECK(x != NULL);
  if (x) CHECK_RC(sotto_net_auth(x, "alice", 1, alice.secret, NULL, NULL), SOTTO_SRV_E_AUTH_RATE);
  sotto_net_close(x);
  y = login(&p, &ctx, &bob); /* another account behind the same address */
  CHECK(y != NULL);
  sotto_net_close(y);
  {
    char *m = srv_metrics(&p);
    CHECK(m && strstr(m, "sotto_rate_limited_total 2\n") && strstr(m, "sotto_auth_total{result=\"ok\"} 47\n") &&
          strstr(m, "sotto_auth_total{result=\"fail\"} 4\n"));
    free(m);
  }
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* Queue age expiry with the seconds knob: an envelope older than 2 s is
 * deleted by the expiry timer, never delivered, and the queue counter drops
 * (with max-queue 1 a new SEND fits again, although the server's notice
 * about the expired one now waits in bob's queue: notices take no room). */
static void test_expiry(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  struct sotto_net *a = NULL, *b = NULL;
  struct sotto_net_event ev;
  uint8_t ct[512];
  size_t n;
  uint64_t old_id = 0, new_id = 0;
  int i, rc, expired = 0;
  const char *const extra[] = {"--max-queue-age-seconds", "2", "--expire-interval", "1", "--max-queue", "1", NULL};
  if (srv_mkdir(&p, "expire") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &alice);
  if (rc == 0) rc = do_register(&p, &ctx, &bob);
  REQUIRE_VOID(rc == 0);
  a = login(&p, &ctx, &alice);
  REQUIRE_VOID(a != NULL);
  n = seal(ct, plaintexts[0]);
  CHECK_RC(sotto_net_send(a, "bob", 1, 1, ct, n, &old_id, NULL), 0);
  CHECK_RC(sotto_net_send(a, "bob", 1, 1, ct, n, NULL, NULL), SOTTO_SRV_E_QUEUE_FULL);
  /* Bounded wait (up to 20 s) for the timer to delete it. */
  for (i = 0; i < 100 && !expired; i++) {
    char *m = srv_metrics(&p);
    const char *x = m ? strstr(m, "\nsotto_messages_expired_total ") : NULL;
    /* The envelope went; the notices it left (one to alice, one to bob) may
     * expire in a later run too. */
    expired = x && strtoull(x + strlen("\nsotto_messages_expired_total "), NULL, 10) >= 1;
    free(m);
    if (!expired) usleep(200 * 1000);
  }
  CHECK(expired);
  n = seal(ct, plaintexts[1]);
  CHECK_RC(sotto_net_send(a, "bob", 1, 1, ct, n, &new_id, NULL), 0);
  CHECK(new_id != old_id);
  b = login(&p, &ctx, &bob);
  CHECK(b != NULL);
  if (b) {
    memset(&ev, 0, sizeof ev);
    /* The new envelope may expire too before bob reads it; then DRAINED comes
     * alone. The old one must never arrive. */
    while (sotto_net_next_event(b, WAIT_MS, &ev) == 1) {
      int done = ev.kind == SOTTO_NET_EV_DRAINED;
      if (ev.kind == SOTTO_NET_EV_MSG) {
        CHECK(ev.id != old_id && ev.id == new_id && opens_to(ev.body, ev.body_len, plaintexts[1]));
        CHECK_RC(sotto_net_ack(b, ev.id), 0);
      }
      if (ev.kind == SOTTO_NET_EV_NOTICE) {
        struct sotto_srv_notice no;
        CHECK(sotto__srv_parse_notice_body(ev.body, ev.body_len, &no) == 0 &&
              no.kind == SOTTO_SRV_NOTICE_EXPIRED_RECEIVED && no.peer.len == 5 && memcmp(no.peer.p, "alice", 5) == 0 &&
              no.count == 1);
        CHECK_RC(sotto_net_ack(b, ev.id), 0);
      }
      sotto_net_event_clear(&ev);
      if (done) break;
    }
    sotto_net_close(b);
  }
  sotto_net_close(a);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* Expired envelopes leave bounded notices (srv_expire.c): 10,000 envelopes
 * from alice to bob and one each to six more recipients expire in one run
 * (a restart with a queue age of 1 s: the run at start). Then alice gets 4
 * notices (bob, r1, r2 on their own, the other four summed up with peer
 * ""), bob 1 (count 10000, 16 items listed, the first one the id his SEND
 * answer gave), each other recipient 1: 11 in all, not 10,006. Run against
 * PostgreSQL too (server_pg). */
static void test_expiry_notices(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  struct account r[6] = {{"rone", 0, {0}}, {"rtwo", 0, {0}}, {"rthree", 0, {0}},
                         {"rfour", 0, {0}}, {"rfive", 0, {0}}, {"rsix", 0, {0}}};
  const char *const extra[] = {"--max-queue", "20000", "--max-queue-per-sender", "20000", "--register-burst", "100",
                               "--send-burst", "20000", "--send-rate", "100000", NULL};
  const char *const aged[] = {"--max-queue-age-seconds", "1", NULL};
  struct sotto_net *a = NULL, *b = NULL;
  struct sotto_net_event ev;
  uint8_t ct[128];
  size_t n, i, got_acks = 0;
  uint64_t first_id = 0;
  int rc, notices = 0, summary = 0, peers = 0;
  char *m;
  if (srv_mkdir(&p, "expnote") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &alice);
  if (rc == 0) rc = do_register(&p, &ctx, &bob);
  for (i = 0; i < 6 && rc == 0; i++) rc = do_register(&p, &ctx, &r[i]);
  REQUIRE_VOID(rc == 0);
  a = login(&p, &ctx, &alice);
  REQUIRE_VOID(a != NULL);
  n = seal(ct, "gone");
  CHECK_RC(sotto_net_send(a, "bob", 1, 1, ct, n, &first_id, NULL), 0);
  /* Pipelined: the answers are read back below. */
  for (i = 1; i < 10000; i++) {
    uint32_t rid;
    if (sotto_net_send_async(a, "bob", 1, 1, ct, n, &rid) != 0) break;
  }
  CHECK(i == 10000);
  while (got_acks < 9999 && sotto_net_next_event(a, WAIT_MS, &ev) == 1) {
    if (ev.kind == SOTTO_NET_EV_ANSWER && ev.code == 0) got_acks++;
    sotto_net_event_clear(&ev);
  }
  CHECK(got_acks == 9999);
  for (i = 0; i < 6; i++) CHECK_RC(sotto_net_send(a, r[i].name, 1, 1, ct, n, NULL, NULL), 0);
  sotto_net_close(a);
  CHECK(srv_stop(&p) == 0);
  usleep(1200 * 1000);
  REQUIRE_VOID(srv_start(&p, aged) == 0);
  /* The run at start goes through the commit pipeline: bounded wait. */
  for (i = 0, m = NULL; i < 100; i++) {
    free(m);
    if ((m = srv_metrics(&p)) && strstr(m, "\nsotto_messages_expired_total 10006\n")) break;
    usleep(200 * 1000);
  }
  CHECK(m && strstr(m, "\nsotto_messages_expired_total 10006\n"));
  CHECK(m && strstr(m, "\nsotto_queue_depth 11\n"));
  if (m && !strstr(m, "\nsotto_queue_depth 11\n")) fprintf(stderr, "%s", m);
  free(m);
  a = login(&p, &ctx, &alice);
  if (a) {
    while (sotto_net_next_event(a, WAIT_MS, &ev) == 1 && ev.kind != SOTTO_NET_EV_DRAINED) {
      struct sotto_srv_notice no;
      if (ev.kind == SOTTO_NET_EV_NOTICE && sotto__srv_parse_notice_body(ev.body, ev.body_len, &no) == 0 &&
          no.kind == SOTTO_SRV_NOTICE_EXPIRED_SENT) {
        notices++;
        if (no.peer.len == 0) summary += no.count == 4;
        if (no.peer.len == 3 && memcmp(no.peer.p, "bob", 3) == 0)
          peers += no.count == 10000 && no.n_items == 16 && no.items[0].id == first_id;
      }
      sotto_net_event_clear(&ev);
    }
    sotto_net_event_clear(&ev);
    CHECK(notices == 4);
    CHECK(summary == 1);
    CHECK(peers == 1);
    sotto_net_close(a);
  }
  /* An older client (HELLO without the features byte) is not sent the
   * NOTICE it would not know: it just finds its queue drained. */
  b = srv_connect(&p, &ctx, 0);
  if (b) {
    static const uint8_t old_hello[2] = {0, SOTTO_SRV_VERSION};
    int saw_notice = 0, drained = 0;
    CHECK_RC(sotto_net_write_frame(b, SOTTO_SRV_HELLO, 1, old_hello, 2), 0);
    CHECK(next_of(b, SOTTO_NET_EV_ANSWER, &ev) && ev.code == 0);
    sotto_net_event_clear(&ev);
    CHECK_RC(sotto_net_auth(b, bob.name, bob.dev, bob.secret, NULL, NULL), 0);
    while (!drained && sotto_net_next_event(b, WAIT_MS, &ev) == 1) {
      saw_notice |= ev.kind == SOTTO_NET_EV_NOTICE;
      drained = ev.kind == SOTTO_NET_EV_DRAINED;
      sotto_net_event_clear(&ev);
    }
    CHECK(drained && !saw_notice);
    sotto_net_close(b);
  }
  b = login(&p, &ctx, &bob);
  if (b) {
    notices = peers = 0;
    while (sotto_net_next_event(b, WAIT_MS, &ev) == 1 && ev.kind != SOTTO_NET_EV_DRAINED) {
      struct sotto_srv_notice no;
      CHECK(ev.kind != SOTTO_NET_EV_MSG); /* never a MSG: the envelopes are gone (KEYS_LOW may come) */
      if (ev.kind == SOTTO_NET_EV_NOTICE && sotto__srv_parse_notice_body(ev.body, ev.body_len, &no) == 0) {
        notices++;
        peers += no.kind == SOTTO_SRV_NOTICE_EXPIRED_RECEIVED && no.count == 10000 && no.peer.len == 5 &&
                 memcmp(no.peer.p, "alice", 5) == 0;
        CHECK_RC(sotto_net_ack(b, ev.id), 0);
      }
      sotto_net_event_clear(&ev);
    }
    sotto_net_event_clear(&ev);
    CHECK(notices == 1 && peers == 1);
    sotto_net_close(b);
  }
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* Issue 10 item 3: a backup holds the whole server (database, tls.key,
 * tls.crt) and is taken while it runs; a server started from it has the
 * same fingerprint and delivers what was queued. A database without its key
 * refuses to start (no silent new certificate); new-certificate is the
 * explicit way out. The requisition report lists every queued envelope's
 * sender, time and size. */
static void test_backup_and_identity(void) {
  struct srv_proc p, q;
  struct sotto_net_ctx *ctx = NULL, *qctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  struct sotto_net *b = NULL, *a = NULL;
  struct sotto_net_event ev;
  uint8_t ct[512];
  size_t n;
  int rc, st = -1;
  char dest[200], path[400], oldfp[65], *out;
  uint64_t last_id = 0;
  struct stat sb;
  if (srv_pg()) {
    /* `sotto-server backup` copies DATA/sotto.db; a PostgreSQL store is
     * backed up with PostgreSQL's tools (docs/server.md). */
    printf("test_backup_and_identity: skipped on PostgreSQL (SQLite backup)\n");
    return;
  }
  if (srv_mkdir(&p, "backup") != 0 || srv_start(&p, NULL) != 0) {
    CHECK(!"server starts");
    return;
  }
  memcpy(oldfp, p.fp, sizeof oldfp);
  rc = do_register(&p, &ctx, &alice);
  if (rc == 0) rc = do_register(&p, &ctx, &bob);
  REQUIRE_VOID(rc == 0);
  b = login(&p, &ctx, &bob);
  REQUIRE_VOID(b != NULL);
  n = seal(ct, plaintexts[2]);
  CHECK_RC(sotto_net_send(b, "alice", 1, 1, ct, n, NULL, NULL), 0);
  {
    const char *args[] = {"requisition", "--data", p.dir, "alice", NULL};
    out = srv_run_capture(args, &st);
    CHECK(out && st == 0);
    if (out) {
      char want[64];
      snprintf(want, sizeof want, "\"bytes\": %zu}", n);
      CHECK(strstr(out, "\"queued\": [") && strstr(out, "\"sender\": \"bob\"") && strstr(out, want));
      CHECK(strstr(out, "\"sender_device\": 1") && strstr(out, "\"time\": \"20") && strstr(out, "\"epoch\": 0"));
      CHECK(strstr(out, "PLAINTEXT") == NULL);
      free(out);
    }
    args[3] = "bob";
    out = srv_run_capture(args, &st);
    CHECK(out && st == 0);
    if (out) {
      char want[64];
      snprintf(want, sizeof want, "\"sent_queued_bytes\": %zu,", n);
      CHECK(strstr(out, want) != NULL);
      free(out);
    }
  }
  /* Online backup, while the server runs and bob stays connected. */
  if (snprintf(dest, sizeof dest, "%s-copy", p.dir) >= (int)sizeof dest) dest[0] = 0;
  REQUIRE_VOID(dest[0] != 0);
  {
    const char *args[] = {"backup", "--data", p.dir, dest, NULL};
    out = srv_run_capture(args, &st);
    CHECK(out && st == 0 && strstr(out, oldfp) && strstr(out, "2 accounts, 1 queued envelopes"));
    free(out);
    snprintf(path, sizeof path, "%s/tls.key", dest);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 077) == 0);
    snprintf(path, sizeof path, "%s/sotto.db", dest);
    CHECK(stat(path, &sb) == 0 && (sb.st_mode & 077) == 0);
    /* A second backup into the same place is refused and changes nothing. */
    out = srv_run_capture(args, &st);
    CHECK(st != 0);
    free(out);
    CHECK(stat(path, &sb) == 0);
  }
  CHECK_RC(sotto_net_ping(b), 0);
  /* The original goes on issuing ids after the backup, then is lost. */
  {
    int k;
    for (k = 0; k < 3; k++) CHECK_RC(sotto_net_send(b, "alice", 1, 1, ct, n, &last_id, NULL), 0);
  }
  sotto_net_close(b);
  CHECK(srv_stop(&p) == 0);
  /* A restore comes at least a second after the copy's last id (store.h,
   * id_floor): a test is faster than any real restore. */
  usleep(1100 * 1000);

  /* The copy is the same server: same fingerprint, alice's envelope there. */
  memset(&q, 0, sizeof q);
  snprintf(q.dir, sizeof q.dir, "%s", dest);
  snprintf(q.log, sizeof q.log, "%s.log", dest);
  CHECK(srv_start(&q, NULL) == 0);
  CHECK(strcmp(q.fp, oldfp) == 0);
  a = login(&q, &qctx, &alice);
  CHECK(a != NULL);
  if (a) {
    uint64_t new_id = 0;
    CHECK(next_of(a, SOTTO_NET_EV_MSG, &ev) && opens_to(ev.body, ev.body_len, plaintexts[2]));
    sotto_net_event_clear(&ev);
    /* No id the lost original issued after the backup comes again: a
     * client would drop it as a re-delivery. */
    CHECK_RC(sotto_net_send(a, "bob", 1, 1, ct, n, &new_id, NULL), 0);
    CHECK(new_id > last_id);
    sotto_net_close(a);
  }
  CHECK(srv_stop(&q) == 0);
  CHECK(!srv_dir_contains(dest, "PLAINTEXT", 9));

  /* The original without tls.key: refused, and no new key appears. */
  snprintf(path, sizeof path, "%s/tls.key", p.dir);
  CHECK(unlink(path) == 0);
  CHECK(srv_start(&p, NULL) != 0);
  CHECK(stat(path, &sb) != 0);
  {
    size_t ln;
    char *log = tu_read_file(p.log, &ln);
    CHECK(log && strstr(log, "tls.key is missing") && strstr(log, "new-certificate"));
    free(log);
  }
  /* new-certificate is the explicit way: a new fingerprint, once. */
  {
    const char *args[] = {"new-certificate", "--data", p.dir, NULL};
    out = srv_run_capture(args, &st);
    CHECK(out && st == 0 && strncmp(out, "fingerprint ", 12) == 0 && strstr(out, oldfp) == NULL);
    free(out);
    out = srv_run_capture(args, &st);
    CHECK(st != 0);
    free(out);
  }
  CHECK(srv_start(&p, NULL) == 0);
  CHECK(strcmp(p.fp, oldfp) != 0);
  CHECK(srv_stop(&p) == 0);
  /* A database without any account (made by 'migrate') is a new server:
   * its first start makes the certificate. */
  {
    struct srv_proc m;
    const char *args[4] = {"migrate", "--data", NULL, NULL};
    CHECK(srv_mkdir(&m, "migrated") == 0);
    args[2] = m.dir;
    out = srv_run_capture(args, &st);
    free(out);
    CHECK(st == 0);
    snprintf(path, sizeof path, "%s/sotto.db", m.dir);
    CHECK(stat(path, &sb) == 0 && sb.st_size > 0);
    CHECK(srv_start(&m, NULL) == 0);
    CHECK(srv_stop(&m) == 0);
    srv_rmdir(&m);
  }
  sotto_net_ctx_free(ctx);
  sotto_net_ctx_free(qctx);
  srv_rmdir(&p);
  srv_rmdir(&q);
  unlink(q.log);
}

/* A client that pipelines more requests than its event queue holds (1,500
 * ACKs whose answers it never reads) still gets the answer of its next
 * blocking request: that answer is never dropped to make room (the crash
 * test's final PING used to time out after ~1,100 unread ACK answers). */
static void test_unread_answers(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}};
  struct sotto_net *a;
  uint32_t req;
  int i, rc;
  if (srv_mkdir(&p, "answers") != 0 || srv_start(&p, NULL) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &alice);
  REQUIRE_VOID(rc == 0);
  a = login(&p, &ctx, &alice);
  REQUIRE_VOID(a != NULL);
  for (i = 0; i < 1500; i++) CHECK_RC(sotto_net_ack_async(a, (uint64_t)(1000000 + i), &req), 0);
  CHECK_RC(sotto_net_ping(a), 0);
  CHECK_RC(sotto_net_ping(a), 0);
  sotto_net_close(a);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* PostgreSQL goes away and comes back (tests/server/with_pg.sh gives the
 * commands): a SEND while it is gone is refused with an error, never
 * acknowledged without a commit; service resumes by itself once it is back;
 * the recipient gets exactly the acknowledged envelopes. */
static void test_pg_outage(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  struct sotto_net *a = NULL, *b = NULL;
  struct sotto_net_event ev;
  const char *stop = getenv("SOTTO_TEST_PG_STOP"), *start = getenv("SOTTO_TEST_PG_START");
  uint64_t id1 = 0, id3 = 0;
  int rc, i, refused = 0;
  if (!srv_pg() || !stop || !start) return;
  if (srv_mkdir(&p, "pgdown") != 0 || srv_start(&p, NULL) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &alice);
  if (rc == 0) rc = do_register(&p, &ctx, &bob);
  REQUIRE_VOID(rc == 0);
  a = login(&p, &ctx, &alice);
  b = login(&p, &ctx, &bob);
  REQUIRE_VOID(a && b);
  CHECK(next_of(a, SOTTO_NET_EV_DRAINED, &ev));
  CHECK_RC(sotto_net_send(b, "alice", 1, 1, (const uint8_t *)"one", 3, &id1, NULL), 0);
  CHECK(next_of(a, SOTTO_NET_EV_MSG, &ev) && ev.id == id1);
  sotto_net_event_clear(&ev);
  CHECK_RC(sotto_net_ack(a, id1), 0);

  CHECK(system(stop) == 0);
  rc = sotto_net_send(b, "alice", 1, 1, (const uint8_t *)"two", 3, NULL, NULL);
  CHECK(rc != 0); /* refused: the store is gone */
  refused = rc != 0;
  CHECK(system(start) == 0);
  /* Back: the next batches reconnect (bounded wait). */
  for (i = 0; i < 75; i++) {
    if ((rc = sotto_net_send(b, "alice", 1, 1, (const uint8_t *)"three", 5, &id3, NULL)) == 0) break;
    usleep(200000);
  }
  CHECK_RC(rc, 0);
  fprintf(stderr, "pg outage: SEND while down refused=%d, resumed after %d retries\n", refused, i);
  /* Only what was acknowledged arrives: "three", not the refused "two". */
  CHECK(next_of(a, SOTTO_NET_EV_MSG, &ev) && ev.id == id3 && ev.body_len == 5 && memcmp(ev.body, "three", 5) == 0);
  sotto_net_event_clear(&ev);
  CHECK_RC(sotto_net_ack(a, id3), 0);
  CHECK(sotto_net_next_event(a, 300, &ev) != 1 || ev.kind != SOTTO_NET_EV_MSG);
  sotto_net_close(a);
  sotto_net_close(b);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* Device 2 of a (added by a's device 1 on connection c) with its own
 * identity key (DEVICE_IDENTITY, written to ik) and a signed pre-key, so
 * that a BUNDLE of it shows which identity key the store hands out. */
static int add_own_identity_device(struct srv_proc *p, struct sotto_net_ctx **ctx, struct sotto_net *c,
                                   const char *name, uint8_t ik[37]) {
  struct account d = {name, 0, {0}};
  struct sotto_srv_keys k;
  struct sotto_net *x;
  uint8_t blob[64], pub[32], priv[32];
  int rc;
  if (sotto_net_add_device(c, &d.dev, d.secret) != 0 || d.dev != 2) return -1;
  if (sotto_keypair_generate(pub, priv) != 0) return -1;
  sotto_pubkey_serialize(ik, pub);
  ik[36] = 2;
  if ((x = login(p, ctx, &d)) == NULL) return -1;
  memset(&k, 0, sizeof k);
  memset(blob, 0xCD, sizeof blob);
  k.flags = SOTTO_SRV_KEYS_SIGNED;
  k.signed_prekey = (struct sotto_srv_blob_id){3, blob, 64};
  rc = sotto_net_device_identity(x, ik, 37) == 0 && sotto_net_upload_keys(x, &k, NULL, NULL) == 0 ? 0 : -1;
  sotto_net_close(x);
  return rc;
}

/* The identity key a BUNDLE of user's device dev hands out is ik. */
static int bundle_identity_is(struct sotto_net *c, const char *user, uint32_t dev, const uint8_t ik[37]) {
  struct sotto_srv_bundle_buf bb;
  return sotto_net_fetch_bundle(c, user, dev, &bb) == 0 && bb.identity_len == 37 && memcmp(bb.identity, ik, 37) == 0;
}

/* ---- blobs across import and export: one committed (its bytes fetched
 * back after the move), one left unfinished (its stored bytes and state
 * kept) ---- */
#define XB_SIZE 5000
#define XB_PART 1000

static int xb_call(struct sotto_net *c, uint8_t type, const uint8_t *id, uint64_t size, uint64_t off,
                   const uint8_t *data, size_t n, uint32_t max, struct sotto_net_event *ans) {
  struct sotto_srv_blob_req m;
  uint32_t rid = 0;
  int rc;
  memset(&m, 0, sizeof m);
  m.id = id;
  m.size = size;
  m.fetches = 2;
  m.offset = off;
  m.data = data;
  m.data_len = n;
  m.max = max;
  if (type != SOTTO_SRV_BLOB_PUT) return sotto_net_blob(c, type, &m, ans);
  if ((rc = sotto_net_blob_async(c, type, &m, &rid)) != 0) return rc;
  for (;;) {
    rc = sotto_net_next_event(c, 5000, ans);
    if (rc != 1) return rc == 0 ? SOTTO_NET_E_TIMEOUT : rc;
    if (ans->kind == SOTTO_NET_EV_ANSWER && ans->req_id == rid) return ans->code;
    if (ans->kind == SOTTO_NET_EV_CLOSE) {
      rc = ans->code ? ans->code : SOTTO_NET_E_IO;
      sotto_net_event_clear(ans);
      return rc;
    }
    sotto_net_event_clear(ans);
  }
}

/* Uploads xb (committed, for two fetches) as id1 and its first XB_PART
 * bytes as id2 (not committed); c's device says BLOB_DONE for id1 (one
 * device counted). 0 or -1. */
static int xb_upload(struct sotto_net *c, const uint8_t *xb, uint8_t id1[16], uint8_t id2[16]) {
  struct sotto_net_event ans;
  uint64_t exp = 0;
  int rc = 0, i;
  for (i = 0; i < 2 && rc == 0; i++) {
    uint8_t *id = i ? id2 : id1;
    rc = xb_call(c, SOTTO_SRV_BLOB_CREATE, NULL, XB_SIZE, 0, NULL, 0, 0, &ans);
    if (rc == 0) rc = sotto__srv_parse_blob_created(ans.payload, ans.payload_len, id, &exp);
    sotto_net_event_clear(&ans);
    if (rc == 0) rc = xb_call(c, SOTTO_SRV_BLOB_PUT, id, 0, 0, xb, i ? XB_PART : XB_SIZE, 0, &ans);
    sotto_net_event_clear(&ans);
  }
  if (rc == 0) rc = xb_call(c, SOTTO_SRV_BLOB_COMMIT, id1, 0, 0, NULL, 0, 0, &ans);
  sotto_net_event_clear(&ans);
  if (rc == 0) rc = xb_call(c, SOTTO_SRV_BLOB_DONE, id1, 0, 0, NULL, 0, 0, &ans);
  sotto_net_event_clear(&ans);
  return rc ? -1 : 0;
}

/* After the move: id1 reads back as xb, and still after the same device's
 * second BLOB_DONE (its first was carried: blob_fetches); id2 stands at
 * XB_PART bytes, not committed. 0 or -1. */
static int xb_check(struct sotto_net *c, const uint8_t *xb, const uint8_t id1[16], const uint8_t id2[16]) {
  struct sotto_net_event ans;
  struct sotto_srv_blob_stat st;
  int rc, ok;
  rc = xb_call(c, SOTTO_SRV_BLOB_GET, id1, 0, 0, NULL, 0, XB_SIZE, &ans);
  ok = rc == 0 && ans.payload_len == XB_SIZE && memcmp(ans.payload, xb, XB_SIZE) == 0;
  sotto_net_event_clear(&ans);
  rc = xb_call(c, SOTTO_SRV_BLOB_DONE, id1, 0, 0, NULL, 0, 0, &ans);
  sotto_net_event_clear(&ans);
  ok = ok && rc == 0;
  rc = xb_call(c, SOTTO_SRV_BLOB_STAT, id1, 0, 0, NULL, 0, 0, &ans);
  sotto_net_event_clear(&ans);
  ok = ok && rc == 0;
  rc = xb_call(c, SOTTO_SRV_BLOB_STAT, id2, 0, 0, NULL, 0, 0, &ans);
  if (rc == 0) rc = sotto__srv_parse_blob_stat(ans.payload, ans.payload_len, &st);
  sotto_net_event_clear(&ans);
  ok = ok && rc == 0 && st.size == XB_SIZE && st.stored == XB_PART && !st.committed;
  return ok ? 0 : -1;
}

/* `sotto-server import`: a server's SQLite store (accounts, secrets, queued
 * envelopes) moved into an empty PostgreSQL store; the server started on it
 * with the same --data is the same server: same fingerprint, the accounts
 * log in, the queued envelopes arrive with their ids, new ids go on above. */
static void test_import(void) {
  uint8_t rcode[32];
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  struct sotto_net *a = NULL, *b = NULL;
  struct sotto_net_event ev;
  char store[sizeof p.store], fp[65], *out;
  uint8_t ik2[37];
  uint64_t ids[3] = {0, 0, 0}, id4 = 0, acked = 0;
  uint8_t xb[XB_SIZE], xid1[16], xid2[16];
  int rc, i, st = -1;
  if (!srv_pg()) return;
  randombytes_buf(xb, sizeof xb);
  if (srv_mkdir(&p, "import") != 0) {
    CHECK(!"data directory");
    return;
  }
  memcpy(store, p.store, sizeof store);
  p.store[0] = 0; /* first on SQLite */
  REQUIRE_VOID(srv_start(&p, NULL) == 0);
  memcpy(fp, p.fp, sizeof fp);
  rc = do_register(&p, &ctx, &alice);
  if (rc == 0) rc = do_register(&p, &ctx, &bob);
  REQUIRE_VOID(rc == 0);
  b = login(&p, &ctx, &bob);
  REQUIRE_VOID(b != NULL);
  for (i = 0; i < 3; i++) {
    uint8_t body[8] = {'q', 'u', 'e', 'u', 'e', 'd', '0', 0};
    body[6] = (uint8_t)('0' + i);
    CHECK_RC(sotto_net_send(b, "alice", 1, 1, body, 7, &ids[i], NULL), 0);
  }
  /* One more, sent last, fetched and acknowledged: deleted, so not copied,
   * but its id was issued and must never come again. */
  CHECK_RC(sotto_net_send(b, "alice", 1, 1, (const uint8_t *)"acked", 5, &acked, NULL), 0);
  /* The recovery code goes along too. */
  memset(rcode, 0x5a, sizeof rcode);
  CHECK_RC(sotto_net_set_recovery(b, rcode), 0);
  /* And the blobs, rows and files. */
  CHECK(xb_upload(b, xb, xid1, xid2) == 0);
  sotto_net_close(b);
  a = login(&p, &ctx, &alice);
  REQUIRE_VOID(a != NULL);
  for (i = 0; i < 4; i++) {
    REQUIRE_VOID(next_of(a, SOTTO_NET_EV_MSG, &ev));
    if (ev.id == acked) CHECK_RC(sotto_net_ack(a, acked), 0);
    sotto_net_event_clear(&ev);
  }
  CHECK_RC(sotto_net_ping(a), 0);
  /* A linked device with its own identity key (devices.identity) goes along. */
  CHECK(add_own_identity_device(&p, &ctx, a, "alice", ik2) == 0);
  sotto_net_close(a);
  a = NULL;
  {
    /* Not while a server runs on the SQLite store (its later writes would be lost). */
    const char *args[] = {"import", "--store", store, p.dir, NULL};
    out = srv_run_capture(args, &st);
    CHECK(st != 0); /* and it wrote nothing: the import below needs an empty store */
    free(out);
  }
  CHECK(srv_stop(&p) == 0);
  {
    const char *args[] = {"import", "--store", store, p.dir, NULL};
    out = srv_run_capture(args, &st);
    CHECK(st == 0 && out && strstr(out, "import: 2 accounts") && strstr(out, "import: 3 queued envelopes"));
    CHECK(out && strstr(out, "import: 2 blobs") && strstr(out, "blob files stay in"));
    free(out);
    /* Only into an empty store. */
    out = srv_run_capture(args, &st);
    CHECK(st != 0);
    free(out);
  }
  memcpy(p.store, store, sizeof store);
  REQUIRE_VOID(srv_start(&p, NULL) == 0);
  CHECK(strcmp(fp, p.fp) == 0); /* the same server for the clients */
  a = login(&p, &ctx, &alice);
  b = login(&p, &ctx, &bob);
  REQUIRE_VOID(a && b);
  for (i = 0; i < 3; i++) {
    CHECK(next_of(a, SOTTO_NET_EV_MSG, &ev) && ev.id == ids[i] && ev.body_len == 7 && ev.body[6] == '0' + i &&
          strcmp(ev.sender, "bob") == 0);
    sotto_net_event_clear(&ev);
    CHECK_RC(sotto_net_ack(a, ids[i]), 0);
  }
  CHECK_RC(sotto_net_send(b, "alice", 1, 1, (const uint8_t *)"after", 5, &id4, NULL), 0);
  CHECK(id4 > ids[2] && id4 > acked);
  CHECK(bundle_identity_is(b, "alice", 2, ik2));
  CHECK(xb_check(b, xb, xid1, xid2) == 0); /* the blobs on PostgreSQL: the same bytes and states */
  sotto_net_close(a);
  sotto_net_close(b);
  {
    struct sotto_net *x = srv_connect(&p, &ctx, 1);
    uint8_t ik[33], secret[32];
    uint32_t dev = 0;
    memset(ik, 0x05, sizeof ik);
    CHECK(x != NULL);
    if (x) CHECK_RC(sotto_net_recover(x, "bob", rcode, ik, sizeof ik, &dev, secret), 0);
    sotto_net_close(x);
  }
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* ROTATE_SECRET whose answer never reached the client (review M3: the
 * commit was in doubt, or the connection died): the client still holds the
 * old secret, which keeps working until the new one is used once; a second
 * rotation on one connection keeps the secret the first one handed out.
 * (It used to stop at once: the device was locked out.) */
static void test_rotate_in_doubt(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account r = {"rotor", 0, {0}};
  uint8_t s0[32], s1[32], s2[32];
  struct sotto_net *c, *x;
  if (srv_mkdir(&p, "rotate") != 0) {
    CHECK(!"data directory");
    return;
  }
  REQUIRE_VOID(srv_start(&p, NULL) == 0);
  REQUIRE_VOID(do_register(&p, &ctx, &r) == 0);
  memcpy(s0, r.secret, 32);
  c = login(&p, &ctx, &r);
  REQUIRE_VOID(c != NULL);
  CHECK_RC(sotto_net_rotate_secret(c, s1), 0); /* "lost": the client keeps s0 */
  sotto_net_close(c);
  memcpy(r.secret, s0, 32);
  c = login(&p, &ctx, &r);
  CHECK(c != NULL); /* the old secret still works */
  if (c) {
    CHECK_RC(sotto_net_rotate_secret(c, s1), 0); /* received */
    CHECK_RC(sotto_net_rotate_secret(c, s2), 0); /* "lost" */
    sotto_net_close(c);
  }
  memcpy(r.secret, s1, 32);
  c = login(&p, &ctx, &r);
  CHECK(c != NULL); /* s1, the secret the client holds, works */
  sotto_net_close(c);
  memcpy(r.secret, s2, 32);
  c = login(&p, &ctx, &r);
  CHECK(c != NULL); /* the newest works, and from now on only it */
  sotto_net_close(c);
  x = srv_connect(&p, &ctx, 1);
  CHECK(x != NULL);
  if (x) CHECK_RC(sotto_net_auth(x, "rotor", r.dev, s1, NULL, NULL), SOTTO_SRV_E_AUTH);
  sotto_net_close(x);
  x = srv_connect(&p, &ctx, 1);
  if (x) CHECK_RC(sotto_net_auth(x, "rotor", r.dev, s0, NULL, NULL), SOTTO_SRV_E_AUTH);
  sotto_net_close(x);
  sodium_memzero(s0, sizeof s0);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* `sotto-server import` of a legacy SQLite store holding two usernames
 * that look alike (made before look-alikes were refused; here by renaming
 * one in the database and clearing its canonical form, as such a store
 * had none): refused with both names listed, nothing imported; once one of
 * them is gone, the import goes through. (Review L1: the import used to
 * stop on PostgreSQL's unique-constraint error, naming no account.) */
static void test_import_lookalikes(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  char store[sizeof p.store], path[700], *out;
  sqlite3 *db = NULL;
  int st = -1;
  if (!srv_pg()) return;
  if (srv_mkdir(&p, "import-lookalike") != 0) {
    CHECK(!"data directory");
    return;
  }
  memcpy(store, p.store, sizeof store);
  p.store[0] = 0; /* first on SQLite */
  REQUIRE_VOID(srv_start(&p, NULL) == 0);
  REQUIRE_VOID(do_register(&p, &ctx, &alice) == 0 && do_register(&p, &ctx, &bob) == 0);
  CHECK(srv_stop(&p) == 0);
  snprintf(path, sizeof path, "%s/sotto.db", p.dir);
  REQUIRE_VOID(sqlite3_open(path, &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db, "UPDATE accounts SET username = 'a1ice', canon = NULL WHERE username = 'bob'", NULL, NULL,
                     NULL) == SQLITE_OK);
  sqlite3_close(db);
  {
    const char *args[] = {"import", "--store", store, p.dir, NULL};
    out = srv_run_capture(args, &st);
    CHECK(st != 0);
    CHECK(out && strstr(out, "look-alike usernames (2 accounts") && strstr(out, "alice a1ice"));
    CHECK(out && !strstr(out, "import: 2 accounts")); /* nothing copied */
    free(out);
  }
  /* One of them unregistered (here: removed from the SQLite store): the import goes through. */
  REQUIRE_VOID(sqlite3_open(path, &db) == SQLITE_OK);
  CHECK(sqlite3_exec(db,
                     "DELETE FROM devices WHERE account_id = (SELECT id FROM accounts WHERE username = 'a1ice');"
                     "DELETE FROM accounts WHERE username = 'a1ice'",
                     NULL, NULL, NULL) == SQLITE_OK);
  sqlite3_close(db);
  {
    const char *args[] = {"import", "--store", store, p.dir, NULL};
    out = srv_run_capture(args, &st);
    CHECK(st == 0 && out && strstr(out, "import: 1 accounts"));
    free(out);
  }
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

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

/* `sotto-server export`: the mirror of import. A PostgreSQL store (accounts,
 * secrets, queued envelopes, recovery code) into a new SQLite store; a
 * server started on it (with the TLS identity copied) is the same server:
 * the accounts log in, the queued envelopes arrive with their ids, new ids
 * go on above every id PostgreSQL issued. Refused while a server runs on
 * the PostgreSQL store and into a directory that is not empty. */
static void test_export(void) {
  uint8_t rcode[32];
  struct srv_proc p, q;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  struct sotto_net *a = NULL, *b = NULL;
  struct sotto_net_event ev;
  char fp[65], *out;
  uint8_t ik2[37];
  uint64_t ids[3] = {0, 0, 0}, id4 = 0, acked = 0;
  uint8_t xb[XB_SIZE], xid1[16], xid2[16];
  int rc, i, st = -1;
  if (!srv_pg()) return;
  randombytes_buf(xb, sizeof xb);
  REQUIRE_VOID(srv_mkdir(&p, "export-pg") == 0);
  REQUIRE_VOID(srv_mkdir(&q, "export-sqlite") == 0);
  REQUIRE_VOID(srv_start(&p, NULL) == 0); /* on PostgreSQL */
  memcpy(fp, p.fp, sizeof fp);
  rc = do_register(&p, &ctx, &alice);
  if (rc == 0) rc = do_register(&p, &ctx, &bob);
  REQUIRE_VOID(rc == 0);
  b = login(&p, &ctx, &bob);
  REQUIRE_VOID(b != NULL);
  for (i = 0; i < 3; i++) {
    uint8_t body[8] = {'q', 'u', 'e', 'u', 'e', 'd', '0', 0};
    body[6] = (uint8_t)('0' + i);
    CHECK_RC(sotto_net_send(b, "alice", 1, 1, body, 7, &ids[i], NULL), 0);
  }
  CHECK_RC(sotto_net_send(b, "alice", 1, 1, (const uint8_t *)"acked", 5, &acked, NULL), 0);
  memset(rcode, 0x5b, sizeof rcode);
  CHECK_RC(sotto_net_set_recovery(b, rcode), 0);
  CHECK(xb_upload(b, xb, xid1, xid2) == 0);
  sotto_net_close(b);
  a = login(&p, &ctx, &alice);
  REQUIRE_VOID(a != NULL);
  for (i = 0; i < 4; i++) {
    REQUIRE_VOID(next_of(a, SOTTO_NET_EV_MSG, &ev));
    if (ev.id == acked) CHECK_RC(sotto_net_ack(a, acked), 0);
    sotto_net_event_clear(&ev);
  }
  CHECK_RC(sotto_net_ping(a), 0);
  CHECK(add_own_identity_device(&p, &ctx, a, "alice", ik2) == 0);
  sotto_net_close(a);
  {
    /* Not while a server runs on the PostgreSQL store. */
    const char *args[] = {"export", "--store", p.store, q.dir, NULL};
    out = srv_run_capture(args, &st);
    CHECK(st != 0);
    free(out);
  }
  CHECK(srv_stop(&p) == 0);
  {
    const char *args[] = {"export", "--store", p.store, "--data", p.dir, q.dir, NULL};
    out = srv_run_capture(args, &st);
    CHECK(st == 0 && out && strstr(out, "export: 2 accounts") && strstr(out, "export: 3 queued envelopes") &&
          strstr(out, "export: 1 recovery codes"));
    CHECK(out && strstr(out, "export: 2 blobs") && strstr(out, "export: 2 blob files copied"));
    free(out);
    /* Only into an empty directory. */
    out = srv_run_capture(args, &st);
    CHECK(st != 0);
    free(out);
  }
  REQUIRE_VOID(copy_into(p.dir, q.dir, "tls.key") == 0 && copy_into(p.dir, q.dir, "tls.crt") == 0);
  q.store[0] = 0; /* SQLite in q.dir */
  REQUIRE_VOID(srv_start(&q, NULL) == 0);
  CHECK(strcmp(fp, q.fp) == 0);
  a = login(&q, &ctx, &alice);
  b = login(&q, &ctx, &bob);
  REQUIRE_VOID(a && b);
  for (i = 0; i < 3; i++) {
    CHECK(next_of(a, SOTTO_NET_EV_MSG, &ev) && ev.id == ids[i] && ev.body_len == 7 && ev.body[6] == '0' + i &&
          strcmp(ev.sender, "bob") == 0);
    sotto_net_event_clear(&ev);
    CHECK_RC(sotto_net_ack(a, ids[i]), 0);
  }
  CHECK_RC(sotto_net_send(b, "alice", 1, 1, (const uint8_t *)"after", 5, &id4, NULL), 0);
  CHECK(id4 > ids[2] && id4 > acked);
  CHECK(bundle_identity_is(b, "alice", 2, ik2));
  CHECK(xb_check(b, xb, xid1, xid2) == 0); /* the blobs on SQLite: the same bytes and states */
  sotto_net_close(a);
  sotto_net_close(b);
  {
    struct sotto_net *x = srv_connect(&q, &ctx, 1);
    uint8_t ik[33], secret[32];
    uint32_t dev = 0;
    memset(ik, 0x05, sizeof ik);
    CHECK(x != NULL);
    if (x) CHECK_RC(sotto_net_recover(x, "bob", rcode, ik, sizeof ik, &dev, secret), 0);
    sotto_net_close(x);
  }
  CHECK(srv_stop(&q) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&q);
  srv_rmdir(&p);
}

/* A PostgreSQL that stalls without closing (here: its backends stopped)
 * holds neither of the server's threads for long: metrics (read on the I/O
 * thread) give up after the reader's bound, the server answers a PING
 * meanwhile, says what happened, and works again once PostgreSQL does. */
static void test_pg_stall(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  struct sotto_net *b = NULL;
  int pids[16], n, i, rc;
  uint64_t id = 0;
  size_t ln;
  char *m, *log;
  if (!srv_pg()) return;
  if (srv_mkdir(&p, "stall") != 0) {
    CHECK(!"data directory");
    return;
  }
  REQUIRE_VOID(srv_start(&p, NULL) == 0);
  rc = do_register(&p, &ctx, &alice);
  if (rc == 0) rc = do_register(&p, &ctx, &bob);
  REQUIRE_VOID(rc == 0);
  b = login(&p, &ctx, &bob);
  REQUIRE_VOID(b != NULL);
  n = srv_pg_backends(&p, pids, 16);
  CHECK(n >= 2); /* the writer and the reader */
  for (i = 0; i < n; i++) kill(pids[i], SIGSTOP);
  m = srv_metrics(&p); /* the reader stalls: given up after its bound */
  free(m);
  CHECK_RC(sotto_net_ping(b), 0); /* the I/O thread is free again */
  for (i = 0; i < n; i++) kill(pids[i], SIGCONT);
  /* Back: the connections are made again at their next use. */
  for (i = 0; i < 50; i++) {
    if (sotto_net_send(b, "alice", 1, 1, (const uint8_t *)"after", 5, &id, NULL) == 0) break;
    usleep(100 * 1000);
  }
  CHECK(id != 0);
  m = srv_metrics(&p);
  CHECK(m && strstr(m, "sotto_queue_depth 1\n"));
  free(m);
  sotto_net_close(b);
  CHECK(srv_stop(&p) == 0);
  log = tu_read_file(p.log, &ln);
  CHECK(log && strstr(log, "event=store_timeout"));
  free(log);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* The PostgreSQL schema is checked at start: a database without it, or with
 * a newer one, is refused with a sentence that says what to do; a second
 * server on the same database is refused too (advisory lock). */
static void test_pg_schema(void) {
  struct srv_proc p, q;
  char store[sizeof p.store], qstore[sizeof q.store], db[32], *log;
  size_t n;
  int st = -1;
  if (!srv_pg()) return;
  if (srv_mkdir(&p, "schema") != 0 || srv_mkdir(&q, "schema2") != 0) {
    CHECK(!"data directories");
    return;
  }
  memcpy(qstore, q.store, sizeof qstore);
  /* A database nobody migrated. */
  snprintf(db, sizeof db, "u_%s", p.dir + strlen(p.dir) - 6);
  {
    char sql[96];
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", db);
    REQUIRE_VOID(srv_pg_exec("postgres", sql) == 0);
  }
  memcpy(store, p.store, sizeof store);
  snprintf(p.store, sizeof p.store, "pg:%s dbname=%s", getenv("SOTTO_TEST_PG"), db);
  CHECK(srv_start(&p, NULL) != 0);
  log = tu_read_file(p.log, &n);
  CHECK(log && strstr(log, "no sotto schema") && strstr(log, "sotto-server migrate"));
  free(log);
  {
    const char *args[] = {"migrate", "--store", p.store, NULL};
    char *out = srv_run_capture(args, &st);
    CHECK(st == 0 && out && strstr(out, "schema version 1 applied"));
    free(out);
  }
  /* Newer than this binary. */
  CHECK(srv_pg_exec(db, "INSERT INTO sotto_schema(version) VALUES(99)") == 0);
  CHECK(srv_start(&p, NULL) != 0);
  log = tu_read_file(p.log, &n);
  CHECK(log && strstr(log, "version 99, newer than this sotto-server"));
  free(log);
  CHECK(srv_pg_exec(db, "DELETE FROM sotto_schema WHERE version = 99") == 0);
  /* One server per database. */
  REQUIRE_VOID(srv_start(&p, NULL) == 0);
  memcpy(q.store, p.store, sizeof q.store);
  CHECK(srv_start(&q, NULL) != 0);
  log = tu_read_file(q.log, &n);
  CHECK(log && strstr(log, "another sotto-server is already using this PostgreSQL database"));
  free(log);
  memcpy(q.store, qstore, sizeof qstore);
  CHECK(srv_stop(&p) == 0);
  {
    char sql[96];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", db);
    CHECK(srv_pg_exec("postgres", sql) == 0);
  }
  memcpy(p.store, store, sizeof store);
  srv_rmdir(&p);
  srv_rmdir(&q);
}

/* PostgreSQL: envelope ids never go back, not even after a restore of a
 * dump taken before the last ids were handed out (store.h, id_floor; a
 * client drops an id it has seen as a re-delivery). The restore is played
 * by setting the id sequence back while the server is stopped. */
static void test_pg_id_floor(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  struct sotto_net *a;
  const uint8_t body[16] = {7};
  uint64_t id1 = 0, id2 = 0;
  const char *db;
  if (!srv_pg()) return;
  REQUIRE_VOID(srv_mkdir(&p, "idfloor") == 0);
  REQUIRE_VOID(srv_start(&p, NULL) == 0);
  CHECK_RC(do_register(&p, &ctx, &alice), 0);
  CHECK_RC(do_register(&p, &ctx, &bob), 0);
  if ((a = login(&p, &ctx, &alice)) != NULL) {
    CHECK_RC(sotto_net_send(a, "bob", 1, 1, body, sizeof body, &id1, NULL), 0);
    sotto_net_close(a);
  }
  CHECK(srv_stop(&p) == 0);
  db = strstr(p.store, "dbname=");
  REQUIRE_VOID(db != NULL);
  CHECK(srv_pg_exec(db + 7, "ALTER SEQUENCE sotto_msg_ids RESTART WITH 1") == 0);
  usleep(1100 * 1000); /* a restore comes at least a second after the dump */
  REQUIRE_VOID(srv_start(&p, NULL) == 0);
  a = login(&p, &ctx, &alice);
  CHECK(a != NULL);
  if (a) {
    CHECK_RC(sotto_net_send(a, "bob", 1, 1, body, sizeof body, &id2, NULL), 0);
    sotto_net_close(a);
  }
  printf("pg id floor: id %llu before the sequence went back, %llu after the restart\n", (unsigned long long)id1,
         (unsigned long long)id2);
  CHECK(id1 > 0 && id2 > id1);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* UNREGISTER, SET_RECOVERY and RECOVER (on either backend): an unregistered
 * account is gone with its devices and queue, its name (and look-alikes) is
 * held for username-quarantine-seconds and then free; a recovery code
 * re-registers a name with a new identity once, removing the old devices;
 * only device 1 may unregister or set the code. */
static void test_account_delete(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}}, again = {"alice", 0, {0}};
  struct account look = {"a.lice", 0, {0}}, dev2 = {"bob", 0, {0}};
  struct sotto_net *a = NULL, *b = NULL, *x;
  uint8_t code[32], wrong[32], ik[33], ct[128];
  uint32_t dev = 0;
  int rc, i;
  const char *const extra[] = {"--register-burst", "100", "--register-prefix-burst", "200",
                               "--username-quarantine-seconds", "5", NULL};

  if (srv_mkdir(&p, "unregister") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }
  CHECK_RC(do_register(&p, &ctx, &alice), 0);
  CHECK_RC(do_register(&p, &ctx, &bob), 0);
  a = login(&p, &ctx, &alice);
  b = login(&p, &ctx, &bob);
  REQUIRE_VOID(a && b);
  /* bob queues an envelope for alice; a second device of bob may not act
   * for the account. */
  CHECK_RC(sotto_net_send(b, "alice", 1, 1, ct, seal(ct, plaintexts[0]), NULL, NULL), 0);
  CHECK_RC(sotto_net_add_device(b, &dev2.dev, dev2.secret), 0);
  x = login(&p, &ctx, &dev2);
  CHECK(x != NULL);
  if (x) {
    memset(code, 1, sizeof code);
    CHECK_RC(sotto_net_set_recovery(x, code), SOTTO_SRV_E_FORBIDDEN);
    CHECK_RC(sotto_net_unregister(x), SOTTO_SRV_E_FORBIDDEN);
    sotto_net_close(x);
  }

  /* ---- unregister ---- */
  CHECK_RC(sotto_net_unregister(a), 0);
  sotto_net_close(a);
  CHECK(login(&p, &ctx, &alice) == NULL);
  CHECK_RC(sotto_net_send(b, "alice", 1, 1, ct, seal(ct, plaintexts[1]), NULL, NULL), SOTTO_SRV_E_NOT_FOUND);
  CHECK_RC(do_register(&p, &ctx, &again), SOTTO_SRV_E_QUARANTINED);
  CHECK_RC(do_register(&p, &ctx, &look), SOTTO_SRV_E_QUARANTINED);
  for (i = 0, rc = -1; i < 300 && rc != 0; i++) {
    rc = do_register(&p, &ctx, &again);
    if (rc == SOTTO_SRV_E_QUARANTINED) usleep(100 * 1000);
  }
  CHECK_RC(rc, 0);
  CHECK(again.dev == 1);
  a = login(&p, &ctx, &again);
  CHECK(a != NULL);
  if (a) {
    struct sotto_net_event ev;
    /* The old queue went with the old account: nothing waits for the new one. */
    CHECK(next_of(a, SOTTO_NET_EV_DRAINED, &ev) == 1);
    sotto_net_close(a);
  }

  /* ---- recovery ---- */
  randombytes_buf(code, sizeof code);
  memcpy(wrong, code, sizeof wrong);
  wrong[5] ^= 1;
  CHECK_RC(sotto_net_set_recovery(b, code), 0);
  memset(ik, 0x05, sizeof ik);
  ik[2] = 0x42;
  x = srv_connect(&p, &ctx, 1);
  REQUIRE_VOID(x != NULL);
  CHECK_RC(sotto_net_recover(x, "bob", wrong, ik, sizeof ik, &dev, wrong), SOTTO_SRV_E_RECOVERY);
  CHECK_RC(sotto_net_recover(x, "nobody", code, ik, sizeof ik, &dev, wrong), SOTTO_SRV_E_RECOVERY);
  CHECK_RC(sotto_net_recover(x, "alice", code, ik, sizeof ik, &dev, wrong), SOTTO_SRV_E_RECOVERY);
  CHECK_RC(sotto_net_recover(x, "bob", code, ik, sizeof ik, &dev, wrong), 0);
  CHECK(dev == 1);
  CHECK_RC(sotto_net_recover(x, "bob", code, ik, sizeof ik, &dev, wrong), SOTTO_SRV_E_RECOVERY);
  sotto_net_close(x);
  /* The old devices are gone (their connection closed), the new one logs in. */
  {
    struct sotto_net_event ev;
    CHECK(next_of(b, SOTTO_NET_EV_CLOSE, &ev) == 1);
    sotto_net_event_clear(&ev);
  }
  sotto_net_close(b);
  CHECK(login(&p, &ctx, &bob) == NULL);
  CHECK(login(&p, &ctx, &dev2) == NULL);
  bob.dev = dev;
  memcpy(bob.secret, wrong, sizeof bob.secret);
  b = login(&p, &ctx, &bob);
  CHECK(b != NULL);
  if (b) {
    struct sotto_srv_bundle_buf bundle;
    uint8_t blob[64];
    static struct sotto_srv_keys keys;
    make_keys(&keys, blob, 1, 1);
    CHECK_RC(sotto_net_upload_keys(b, &keys, NULL, NULL), 0);
    /* The new identity is what others fetch. */
    CHECK_RC(sotto_net_fetch_bundle(b, "bob", 1, &bundle), 0);
    CHECK(bundle.identity_len == sizeof ik && memcmp(bundle.identity, ik, sizeof ik) == 0);
    /* An account with a recovery code set unregisters too (the code goes). */
    CHECK_RC(sotto_net_set_recovery(b, code), 0);
    CHECK_RC(sotto_net_unregister(b), 0);
    sotto_net_close(b);
    x = srv_connect(&p, &ctx, 1);
    CHECK(x != NULL);
    if (x) CHECK_RC(sotto_net_recover(x, "bob", code, ik, sizeof ik, &dev, wrong), SOTTO_SRV_E_RECOVERY);
    sotto_net_close(x);
  }
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* Error metrics count every code on its own: codes above 31 (33 "needs
 * protocol version 2", 36 "no such attachment") are not folded into the
 * low ones (1 "unsupported version", 4 "authentication failed"), which this
 * test never provokes. */
static void test_error_metrics(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}};
  struct sotto_net *a = NULL, *old = NULL;
  struct sotto_srv_blob_req m;
  struct sotto_net_event ans;
  uint8_t id[16], buf[64];
  size_t len;
  char *met;
  int i, rc;
  if (srv_mkdir(&p, "errmetrics") != 0 || srv_start(&p, NULL) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &alice);
  REQUIRE_VOID(rc == 0);
  /* A version-1 client: DEVLIST_GET is refused with code 33. */
  old = srv_connect(&p, &ctx, 0);
  REQUIRE_VOID(old != NULL);
  CHECK_RC(sotto_net_hello(old, 1), 0);
  CHECK_RC(sotto_net_auth(old, alice.name, alice.dev, alice.secret, NULL, NULL), 0);
  for (i = 0; i < 3; i++) CHECK_RC(sotto_net_devlist_get(old, "alice", buf, sizeof buf, &len), 33);
  sotto_net_close(old); /* one live connection per device */
  a = login(&p, &ctx, &alice);
  REQUIRE_VOID(a != NULL);
  /* An attachment that never existed: code 36, twice. */
  memset(&m, 0, sizeof m);
  randombytes_buf(id, sizeof id);
  m.id = id;
  for (i = 0; i < 2; i++) {
    CHECK_RC(sotto_net_blob(a, SOTTO_SRV_BLOB_STAT, &m, &ans), 36);
    sotto_net_event_clear(&ans);
  }
  met = srv_metrics(&p);
  CHECK(met != NULL);
  if (met) {
    CHECK(strstr(met, "sotto_errors_total{code=\"33\",reason=\"this request needs protocol version 2: upgrade the "
                      "client\"} 3\n") != NULL);
    CHECK(strstr(met, "sotto_errors_total{code=\"36\",reason=\"no such attachment: expired, fetched by every "
                      "recipient, or never stored\"} 2\n") != NULL);
    CHECK(strstr(met, "sotto_errors_total{code=\"1\",") == NULL);
    CHECK(strstr(met, "sotto_errors_total{code=\"4\",") == NULL);
    CHECK(strstr(met, "code=\"other\"") == NULL);
  }
  free(met);
  sotto_net_close(a);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* The value after "name " in a metrics text, or -1. */
static long long metric_value(const char *m, const char *name) {
  const char *p = strstr(m, name);
  return p ? strtoll(p + strlen(name), NULL, 10) : -1;
}

/* Answers of one reader connection, in request order: skips pushes
 * (KEYS_LOW); 0 when an answer is missing, late or out of order. */
static int pool_answer(struct sotto_net *c, uint32_t want, struct sotto_net_event *ev) {
  for (;;) {
    if (sotto_net_next_event(c, WAIT_MS, ev) != 1) return 0;
    if (ev->kind == SOTTO_NET_EV_ANSWER) {
      if (ev->req_id == want) return 1;
      fprintf(stderr, "pool: answer %u while %u was due\n", ev->req_id, want);
      sotto_net_event_clear(ev);
      return 0;
    }
    sotto_net_event_clear(ev);
  }
}

/* The read pool (--pg-pool, PostgreSQL; on SQLite the same requests run in
 * the batch and the same answers are due): several connections AUTH at
 * once, then each pipelines BUNDLE (without a one-time key: the pool),
 * DEVICES, a SEND (the batch), BUNDLE, DEVICES and DEVLIST_GET while another
 * client keeps sending and the recipient acknowledges. Every answer is right
 * and each connection gets its answers in request order; every acknowledged
 * envelope arrives once. */
#define POOL_READERS 4
#define POOL_ROUNDS 6
static void test_pg_pool_reads(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
  struct account rd[POOL_READERS] = {{"carol", 0, {0}}, {"dave", 0, {0}}, {"erin", 0, {0}}, {"frank", 0, {0}}};
  static const char *const extra[] = {"--bundle-rate", "1000000", "--bundle-burst", "1000000", "--bundle-otk-burst",
                                      "1", "--bundle-otk-rate", "0.001", "--send-rate", "1000000", "--send-burst",
                                      "1000000", "--register-burst", "100", NULL};
  struct sotto_net *a = NULL, *b = NULL, *c[POOL_READERS + 1];
  struct sotto_net_event ev;
  struct sotto_srv_keys keys;
  uint8_t blob[64], pay[128];
  uint32_t sent_ok = 0, sends = 0, got = 0, wrong = 0, answered = 0;
  int i, r, k, rc;
  char *m;
  if (srv_mkdir(&p, "pgpool") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &alice);
  if (rc == 0) rc = do_register(&p, &ctx, &bob);
  for (i = 0; i < POOL_READERS && rc == 0; i++) rc = do_register(&p, &ctx, &rd[i]);
  REQUIRE_VOID(rc == 0);
  b = login(&p, &ctx, &bob);
  a = login(&p, &ctx, &alice);
  REQUIRE_VOID(a && b);
  make_keys(&keys, blob, 2, 2);
  CHECK_RC(sotto_net_upload_keys(b, &keys, NULL, NULL), 0);
  for (r = 0; r < POOL_ROUNDS; r++) {
    struct sotto__wr w;
    uint32_t order[POOL_READERS][8];
    int n_order = 0;
    /* alice's SENDs flow through the batch meanwhile */
    for (i = 0; i < 8; i++) {
      uint32_t req;
      uint8_t body[16];
      memset(body, 'A' + r, sizeof body);
      if (sotto_net_send_async(a, "bob", 1, 1, body, sizeof body, &req) == 0) sends++;
    }
    /* concurrent AUTHs (one more with a wrong secret in the first round) */
    for (k = 0; k < POOL_READERS + (r == 0); k++) {
      uint8_t bad[SOTTO_SRV_SECRET_LEN];
      const struct account *ac = &rd[k % POOL_READERS];
      c[k] = srv_connect(&p, &ctx, 1);
      REQUIRE_VOID(c[k] != NULL);
      memcpy(bad, ac->secret, sizeof bad);
      bad[0] ^= 1;
      sotto__wr_init(&w, pay, sizeof pay);
      sotto__srv_put_auth_req(&w, ac->name, ac->dev, k < POOL_READERS ? ac->secret : bad);
      CHECK_RC(sotto_net_write_frame(c[k], SOTTO_SRV_AUTH, 900, pay, w.len), 0);
    }
    for (k = 0; k < POOL_READERS + (r == 0); k++) {
      int ok = pool_answer(c[k], 900, &ev);
      CHECK(ok);
      if (ok) CHECK(ev.code == (k < POOL_READERS ? 0 : SOTTO_SRV_E_AUTH));
      if (ok) answered++;
      sotto_net_event_clear(&ev);
    }
    if (r == 0) sotto_net_close(c[POOL_READERS]);
    /* each pipelines reads around a SEND */
    for (k = 0; k < POOL_READERS; k++) {
      uint32_t id = 1000;
      n_order = 0;
      sotto__wr_init(&w, pay, sizeof pay);
      sotto__srv_put_bundle_req(&w, "bob", 1);
      CHECK_RC(sotto_net_write_frame(c[k], SOTTO_SRV_BUNDLE, order[k][n_order++] = id++, pay, w.len), 0);
      sotto__wr_init(&w, pay, sizeof pay);
      sotto__srv_put_devices_req(&w, "bob");
      CHECK_RC(sotto_net_write_frame(c[k], SOTTO_SRV_DEVICES, order[k][n_order++] = id++, pay, w.len), 0);
      {
        uint8_t body[16];
        memset(body, 'a' + k, sizeof body);
        CHECK_RC(sotto_net_send_async(c[k], "bob", 1, 1, body, sizeof body, &order[k][n_order++]), 0);
        sends++;
      }
      sotto__wr_init(&w, pay, sizeof pay);
      sotto__srv_put_bundle_req(&w, "bob", 1);
      CHECK_RC(sotto_net_write_frame(c[k], SOTTO_SRV_BUNDLE, order[k][n_order++] = id++, pay, w.len), 0);
      sotto__wr_init(&w, pay, sizeof pay);
      sotto__srv_put_devices_req(&w, "bob");
      CHECK_RC(sotto_net_write_frame(c[k], SOTTO_SRV_DEVICES, order[k][n_order++] = id++, pay, w.len), 0);
      sotto__wr_init(&w, pay, sizeof pay);
      sotto__srv_put_devices_req(&w, "bob");
      CHECK_RC(sotto_net_write_frame(c[k], SOTTO_SRV_DEVLIST_GET, order[k][n_order++] = id++, pay, w.len), 0);
    }
    for (k = 0; k < POOL_READERS; k++) {
      for (i = 0; i < n_order; i++) {
        int ok = pool_answer(c[k], order[k][i], &ev);
        CHECK(ok);
        if (!ok) break;
        answered++;
        if (i == 0 || i == 3) { /* BUNDLE: bob's signed pre-key and identity */
          struct sotto_srv_bundle bu;
          CHECK(ev.code == 0 && sotto__srv_parse_bundle(ev.payload, ev.payload_len, &bu) == 0 &&
                bu.signed_prekey.id == 7 && bu.identity.len == 33 && bu.identity.p[1] == 'b');
        } else if (i == 1 || i == 4) { /* DEVICES: bob has device 1 */
          uint32_t ids[4];
          size_t n = 0;
          CHECK(ev.code == 0 && sotto__srv_parse_devices(ev.payload, ev.payload_len, ids, 4, &n) == 0 && n == 1 &&
                ids[0] == 1);
        } else if (i == 2) { /* SEND */
          CHECK(ev.code == 0);
          if (ev.code == 0) sent_ok++;
        } else { /* DEVLIST_GET: bob signed no list */
          CHECK(ev.code == SOTTO_SRV_E_NOT_FOUND);
        }
        sotto_net_event_clear(&ev);
      }
      sotto_net_close(c[k]);
    }
    /* the recipient takes (and acknowledges) what arrived so far */
    while (sotto_net_next_event(b, 50, &ev) == 1) {
      if (ev.kind == SOTTO_NET_EV_MSG) {
        uint32_t req;
        got++;
        (void)sotto_net_ack_async(b, ev.id, &req);
      }
      sotto_net_event_clear(&ev);
    }
    while (sotto_net_next_event(a, 0, &ev) == 1) {
      if (ev.kind == SOTTO_NET_EV_ANSWER) {
        if (ev.code == 0)
          sent_ok++;
        else
          wrong++;
      }
      sotto_net_event_clear(&ev);
    }
  }
  /* the rest of alice's answers and of bob's envelopes (bounded) */
  for (i = 0; i < 100 && (sent_ok + wrong < sends || got < sent_ok); i++) {
    while (sotto_net_next_event(a, 0, &ev) == 1) {
      if (ev.kind == SOTTO_NET_EV_ANSWER) {
        if (ev.code == 0)
          sent_ok++;
        else
          wrong++;
      }
      sotto_net_event_clear(&ev);
    }
    while (sotto_net_next_event(b, 50, &ev) == 1) {
      if (ev.kind == SOTTO_NET_EV_MSG) {
        uint32_t req;
        got++;
        (void)sotto_net_ack_async(b, ev.id, &req);
      }
      sotto_net_event_clear(&ev);
    }
  }
  fprintf(stderr, "pg pool: %u answers checked, %u SENDs acknowledged, %u received, %u refused\n", answered, sent_ok,
          got, wrong);
  CHECK(wrong == 0);
  CHECK(sent_ok == sends);
  CHECK(got == sent_ok);
  CHECK(answered == (uint32_t)(POOL_ROUNDS * POOL_READERS * 7 + 1));
  CHECK_RC(sotto_net_ping(b), 0);
  m = srv_metrics(&p);
  CHECK(m != NULL);
  if (m && srv_pg()) {
    /* the pool answered them: every AUTH (2 connections), the BUNDLEs after
     * the first (no one-time key left in the budget), DEVICES, DEVLIST_GET */
    char want[96];
    CHECK(strstr(m, "\nsotto_pool_size 2\n") != NULL);
    snprintf(want, sizeof want, "sotto_pool_queries_total{request=\"auth\"} %d\n",
             POOL_ROUNDS * POOL_READERS + 1 + 2);
    CHECK(strstr(m, want) != NULL);
    /* BUNDLE and DEVICES before the SEND always go to the pool (nothing of
     * the connection is in the batch then); those after it do when the
     * SEND was answered before they were read; not after the very first
     * BUNDLE, which takes bob's one one-time key in the batch. */
    CHECK(metric_value(m, "sotto_pool_queries_total{request=\"devices\"} ") >= POOL_ROUNDS * POOL_READERS - 1);
    CHECK(metric_value(m, "sotto_pool_queries_total{request=\"bundle\"} ") >= POOL_ROUNDS * POOL_READERS - 1);
    CHECK(strstr(m, "\nsotto_pool_failures_total 0\n") != NULL);
  } else if (m) {
    CHECK(strstr(m, "sotto_pool_") == NULL); /* SQLite: no pool */
  }
  free(m);
  sotto_net_close(a);
  sotto_net_close(b);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0) return 1;
  randombytes_buf(chat_key, sizeof chat_key);
  test_config_and_help();
  test_main_server();
  test_limits();
  test_port_zero_and_fingerprint();
  test_auth_rate();
  test_expiry();
  test_expiry_notices();
  test_backup_and_identity();
  test_unread_answers();
  test_pg_outage();
  test_import();
  test_import_lookalikes();
  test_rotate_in_doubt();
  test_export();
  test_pg_stall();
  test_pg_schema();
  test_pg_id_floor();
  test_account_delete();
  test_error_metrics();
  test_pg_pool_reads();
  return test_done("test_server");
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_server_attack.c: sotto-server under attack (issue 8), each finding
 * driven against the real binary over loopback TLS:
 *   1 a pipelining client that never reads: server RSS stays bounded and a
 *     bystander keeps being answered (its p99 is printed, not judged);
 *   2 1,100 idle connections from one address: another address logs in;
 *   3 pre-key drain: one-time keys handed out per target are bounded, the
 *     requester is rate limited, KEYS_LOW pushes are bounded;
 *   4 the send limit survives a reconnect;
 *   5 one sender cannot fill a recipient's queue; the errors are true;
 *   6 storage quota: SEND refused, ACK still works and makes room;
 *   7 idle timeout of authenticated connections;
 *   8 an acknowledged envelope is not in the WAL (or anywhere on disk);
 *   9 start-up checks, lock, modes, --data created, SIGHUP, debug logs
 *     without addresses, look-alike names, registration limits per prefix,
 *     device removal and secret rotation.
 * Every wait and loop is bounded.
 *
 * With SOTTO_TEST_SERVER_BIN set (srvtest.c runs that binary instead), the
 * tests pass only the options an older server knows (OLD_EXTRA), so that
 * the same test measures the server before the fix; an optional argument
 * runs one test by name. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "srvtest.h"
#include "testutil.h"
#include "wire.h"

#define WAIT_MS 5000
#define REQUIRE_VOID(e)      \
  do {                       \
    int require_ok_ = !!(e); \
    CHECK(require_ok_);      \
    if (!require_ok_) {      \
      srv_kill(&p);          \
      return;                \
    }                        \
  } while (0)

/* The options of a test, or the ones an older server understands. */
#define EXTRA(now, old) (getenv("SOTTO_TEST_SERVER_BIN") ? (old) : (now))
static const char *const no_extra[] = {NULL};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* Drops every event that arrived so far (waits up to ms for the first). */
static int drain(struct sotto_net *c, int ms, int kind) {
  struct sotto_net_event ev;
  int n = 0;
  while (sotto_net_next_event(c, ms, &ev) == 1) {
    if (ev.kind == kind) n++;
    sotto_net_event_clear(&ev);
    ms = 200;
  }
  return n;
}

static void make_keys(struct sotto_srv_keys *k, uint8_t blob[64], int n_ec, int n_kem, uint32_t first) {
  int i;
  memset(k, 0, sizeof *k);
  memset(blob, 0xAB, 64);
  k->flags = SOTTO_SRV_KEYS_SIGNED | SOTTO_SRV_KEYS_LAST_RESORT;
  k->signed_prekey = (struct sotto_srv_blob_id){7, blob, 64};
  k->last_resort = (struct sotto_srv_blob_id){9000, blob, 48};
  k->n_ec = (uint16_t)n_ec;
  k->n_kem = (uint16_t)n_kem;
  for (i = 0; i < n_ec; i++) k->ec[i] = (struct sotto_srv_blob_id){first + (uint32_t)i, blob, 33};
  for (i = 0; i < n_kem; i++) k->kem[i] = (struct sotto_srv_blob_id){first + 500 + (uint32_t)i, blob, 40};
}

static long rss_kb(pid_t pid) {
  char path[64], line[256];
  FILE *f;
  long kb = -1;
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  if ((f = fopen(path, "r")) == NULL) return -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) kb = strtol(line + 6, NULL, 10);
  fclose(f);
  return kb;
}

static char *read_log(struct srv_proc *p) {
  size_t n;
  return tu_read_file(p->log, &n);
}

/* ---- a raw attacker: TLS, HELLO, AUTH, then writes and never reads ------------ */

struct raw {
  int fd;
  SSL_CTX *ctx;
  SSL *ssl;
};

static int raw_frame(uint8_t *out, uint8_t type, uint32_t id, const uint8_t *p, size_t n) {
  sotto__srv_frame_hdr(out, type, id, n);
  if (n) memcpy(out + 9, p, n);
  return (int)(9 + n);
}

/* Blocking read of one frame (used only before the attack starts). */
static int raw_read_frame(struct raw *r, uint8_t *type) {
  uint8_t hdr[4], body[4096];
  size_t got = 0, need;
  while (got < 4) {
    int k = SSL_read(r->ssl, hdr + got, (int)(4 - got));
    if (k <= 0) return -1;
    got += (size_t)k;
  }
  need = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
  if (need < 5 || need > sizeof body) return -1;
  for (got = 0; got < need;) {
    int k = SSL_read(r->ssl, body + got, (int)(need - got));
    if (k <= 0) return -1;
    got += (size_t)k;
  }
  *type = body[0];
  return 0;
}

static int raw_open(struct raw *r, const char *port, const struct account *a) {
  struct sockaddr_in sa;
  struct timeval tv = {5, 0};
  uint8_t buf[128], pl[64], type = 0;
  size_t n = 0;
  memset(r, 0, sizeof *r);
  r->fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)atoi(port));
  setsockopt(r->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(r->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (r->fd < 0 || connect(r->fd, (struct sockaddr *)&sa, sizeof sa) != 0) return -1;
  r->ctx = SSL_CTX_new(TLS_client_method());
  if (!r->ctx) return -1;
  SSL_CTX_set_min_proto_version(r->ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(r->ctx, SSL_VERIFY_NONE, NULL); /* an attacker checks nothing */
  SSL_CTX_set_mode(r->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  r->ssl = SSL_new(r->ctx);
  if (!r->ssl || SSL_set_fd(r->ssl, r->fd) != 1 || SSL_connect(r->ssl) != 1) return -1;
  pl[0] = 0, pl[1] = 1;
  if (SSL_write(r->ssl, buf, raw_frame(buf, SOTTO_SRV_HELLO, 1, pl, 2)) <= 0) return -1;
  if (raw_read_frame(r, &type) != 0 || type != SOTTO_SRV_OK) return -1;
  pl[n++] = (uint8_t)strlen(a->name);
  memcpy(pl + n, a->name, strlen(a->name));
  n += strlen(a->name);
  pl[n++] = 0, pl[n++] = 0, pl[n++] = 0, pl[n++] = (uint8_t)a->dev;
  memcpy(pl + n, a->secret, 32);
  n += 32;
  if (SSL_write(r->ssl, buf, raw_frame(buf, SOTTO_SRV_AUTH, 2, pl, n)) <= 0) return -1;
  if (raw_read_frame(r, &type) != 0 || type != SOTTO_SRV_OK) return -1;
  fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK);
  return 0;
}

/* Writes len bytes, waiting at most until deadline; returns bytes written. */
static size_t raw_write(struct raw *r, const uint8_t *p, size_t len, int64_t deadline) {
  size_t done = 0;
  while (done < len && mono_ms() < deadline) {
    size_t n = 0;
    int ret = SSL_write_ex(r->ssl, p + done, len - done, &n);
    if (ret == 1) {
      done += n;
      continue;
    }
    if (SSL_get_error(r->ssl, ret) != SSL_ERROR_WANT_WRITE) break;
    {
      struct pollfd pf = {r->fd, POLLOUT, 0};
      (void)poll(&pf, 1, 50);
    }
  }
  return done;
}

static void raw_close(struct raw *r) {
  if (r->ssl) SSL_free(r->ssl);
  if (r->ctx) SSL_CTX_free(r->ctx);
  if (r->fd >= 0) close(r->fd);
  memset(r, 0, sizeof *r);
  r->fd = -1;
}

/* ---- 1: pipelining without reading -------------------------------------------- */

struct bystander {
  struct srv_proc *p;
  struct sotto_net *c;
  int stop; /* atomic: set by the main thread, read by bystander_run */
  uint32_t lat_us[200000];
  size_t n;
  int errors;
};

static void *bystander_run(void *arg) {
  struct bystander *b = arg;
  uint32_t ids[16];
  size_t n;
  while (!__atomic_load_n(&b->stop, __ATOMIC_RELAXED) && b->n < sizeof b->lat_us / sizeof b->lat_us[0]) {
    struct timespec t0, t1;
    int rc;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = sotto_net_devices(b->c, "bystander", ids, 16, &n);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (rc != 0) {
      b->errors++;
      if (rc == SOTTO_NET_E_IO) break;
      continue;
    }
    b->lat_us[b->n++] =
        (uint32_t)((t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000);
    usleep(5000);
  }
  return NULL;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* The RSS bound: 64 MB above idle. Under AddressSanitizer the server's
 * allocator keeps freed memory in quarantine (limited to 16 MB for this
 * server below) and adds redzones, so the same constant working set shows as
 * more RSS: the bound is 4 times larger there (an unbounded server still
 * goes far past it: +700 MB in 10 s). */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_BOUND_KB (4 * 64 * 1024)
#else
#define RSS_BOUND_KB (64 * 1024)
#endif

static void test_pipelining_memory(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account att = {"attacker", 0, {0}}, tgt = {"target", 0, {0}}, by = {"bystander", 0, {0}};
  static struct bystander b;
  static struct sotto_srv_keys keys;
  static uint8_t burst[256 * 1024];
  struct sotto_net *t;
  struct raw r;
  pthread_t th;
  uint8_t blob[64], pl[8192];
  size_t blen = 0, kl;
  long idle_kb, peak_kb = 0;
  int64_t start, until, next_sample = 0;
  uint64_t written = 0;
  uint32_t id = 100;
  int i, rc, seconds = getenv("SOTTO_ATTACK_SECONDS") ? atoi(getenv("SOTTO_ATTACK_SECONDS")) : 10;
  const char *const extra[] = {NULL};
#if defined(__SANITIZE_ADDRESS__)
  {
    /* ASan's quarantine (256 MB by default) would count against the bound
     * whatever the server does: the server started here gets a small one. */
    static char opts[1024];
    const char *cur = getenv("ASAN_OPTIONS");
    snprintf(opts, sizeof opts, "%s%squarantine_size_mb=16", cur ? cur : "", cur && *cur ? ":" : "");
    setenv("ASAN_OPTIONS", opts, 1);
  }
#endif
  if (srv_mkdir(&p, "pipeline") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &att);
  if (rc == 0) rc = do_register(&p, &ctx, &tgt);
  if (rc == 0) rc = do_register(&p, &ctx, &by);
  REQUIRE_VOID(rc == 0);
  t = login(&p, &ctx, &tgt);
  REQUIRE_VOID(t != NULL);
  make_keys(&keys, blob, 100, 100, 1);
  CHECK_RC(sotto_net_upload_keys(t, &keys, NULL, NULL), 0);
  sotto_net_close(t);
  memset(&b, 0, sizeof b);
  b.p = &p;
  b.c = login(&p, &ctx, &by);
  REQUIRE_VOID(b.c != NULL);
  drain(b.c, 300, 0);
  REQUIRE_VOID(raw_open(&r, p.port, &att) == 0);

  /* One burst of requests, repeated: BUNDLE, DEVICES, ACK, KEYS_UPLOAD. */
  make_keys(&keys, blob, 100, 0, 2000);
  {
    struct sotto__wr w;
    sotto__wr_init(&w, pl, sizeof pl);
    sotto__srv_put_keys(&w, &keys);
    kl = w.len;
  }
  while (blen + 9 + kl + 64 < sizeof burst) {
    uint8_t q[64];
    size_t n = 0;
    q[n++] = 6;
    memcpy(q + n, "target", 6);
    n += 6;
    q[n++] = 0, q[n++] = 0, q[n++] = 0, q[n++] = 1;
    blen += (size_t)raw_frame(burst + blen, SOTTO_SRV_BUNDLE, id++, q, n);
    blen += (size_t)raw_frame(burst + blen, SOTTO_SRV_DEVICES, id++, q, 7);
    for (i = 0; i < 8; i++) q[i] = (uint8_t)(id >> (i % 4));
    blen += (size_t)raw_frame(burst + blen, SOTTO_SRV_ACK, id++, q, 8);
    if ((id & 63) == 3) blen += (size_t)raw_frame(burst + blen, SOTTO_SRV_KEYS_UPLOAD, id++, pl, kl);
  }

  usleep(300 * 1000);
  idle_kb = rss_kb(p.pid);
  CHECK(pthread_create(&th, NULL, bystander_run, &b) == 0);
  start = mono_ms();
  until = start + (int64_t)seconds * 1000;
  while (mono_ms() < until) {
    written += raw_write(&r, burst, blen, mono_ms() + 100);
    if (mono_ms() >= next_sample) {
      long kb = rss_kb(p.pid);
      if (kb > peak_kb) peak_kb = kb;
      next_sample = mono_ms() + 100;
      /* Stop early rather than take the machine down with the server. */
      if (kb - idle_kb > 512 * 1024) break;
    }
  }
  __atomic_store_n(&b.stop, 1, __ATOMIC_RELAXED);
  pthread_join(th, NULL);
  {
    long kb = rss_kb(p.pid);
    if (kb > peak_kb) peak_kb = kb;
  }
  fprintf(stderr,
          "pipelining: %d s, attacker wrote %.1f MB of requests, server RSS idle %ld kB, peak %ld kB (+%ld kB)\n",
          seconds, (double)written / 1e6, idle_kb, peak_kb, peak_kb - idle_kb);
  if (b.n) {
    qsort(b.lat_us, b.n, sizeof b.lat_us[0], cmp_u32);
    fprintf(stderr, "bystander: %zu requests answered, %d failed, p50 %.2f ms, p99 %.2f ms\n", b.n, b.errors,
            b.lat_us[b.n / 2] / 1000.0, b.lat_us[(b.n * 99) / 100] / 1000.0);
  } else {
    fprintf(stderr, "bystander: no request answered, %d failed\n", b.errors);
  }
  CHECK(idle_kb > 0 && peak_kb - idle_kb <= RSS_BOUND_KB);
  CHECK(written > 1000000);                     /* the attack really ran */
  CHECK(b.n > 0 && b.errors == 0);              /* and the bystander was answered */
  CHECK_RC(sotto_net_ping(b.c), 0);
  raw_close(&r);
  sotto_net_close(b.c);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* ---- 2: idle connections from one address ----------------------------------- */

static void test_preauth_share(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account v = {"victim", 0, {0}}, w = {"walter", 0, {0}};
  static int fds[1100];
  struct sotto_net *c;
  struct rlimit rl;
  int i, opened = 0, closed = 0;
  int64_t t0;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 2048) {
    rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (srv_mkdir(&p, "preauth") != 0 || srv_start(&p, NULL) != 0) {
    CHECK(!"server starts");
    return;
  }
  CHECK_RC(do_register(&p, &ctx, &v), 0);
  /* 1,100 TCP connections from 127.0.1.2 (another /24 than the victim's
   * 127.0.0.1); every 4th sends the start of a ClientHello and stalls. */
  for (i = 0; i < 1100; i++) {
    struct sockaddr_in src, dst;
    static const uint8_t partial_hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
    fds[i] = socket(AF_INET, SOCK_STREAM, 0);
    if (fds[i] < 0) break;
    memset(&src, 0, sizeof src);
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = inet_addr("127.0.1.2");
    memset(&dst, 0, sizeof dst);
    dst.sin_family = AF_INET;
    dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    dst.sin_port = htons((uint16_t)atoi(p.port));
    if (bind(fds[i], (struct sockaddr *)&src, sizeof src) != 0 ||
        connect(fds[i], (struct sockaddr *)&dst, sizeof dst) != 0) {
      close(fds[i]);
      fds[i] = -1;
      continue;
    }
    opened++;
    if (i % 4 == 0 && write(fds[i], partial_hello, sizeof partial_hello) < 0) {
    }
  }
  CHECK(opened == 1100);
  usleep(500 * 1000);
  /* While they sit there (auth-timeout is 10 s), a new client registers and
   * logs in from another address. */
  t0 = mono_ms();
  CHECK_RC(do_register(&p, &ctx, &w), 0);
  c = login(&p, &ctx, &v);
  CHECK(c != NULL);
  if (c) CHECK_RC(sotto_net_ping(c), 0);
  fprintf(stderr, "preauth: 1100 idle connections from 127.0.1.2; register + login from 127.0.0.1 took %lld ms\n",
          (long long)(mono_ms() - t0));
  CHECK(mono_ms() - t0 < 9000); /* i.e. before the attackers' auth-timeout freed anything */
  sotto_net_close(c);
  /* The attacker kept only its share: the others were closed at once. */
  for (i = 0; i < 1100; i++) {
    char ch;
    struct pollfd pf;
    if (fds[i] < 0) continue;
    pf.fd = fds[i];
    pf.events = POLLIN;
    /* EOF, or a reset for the ones whose ClientHello bytes were unread. */
    if (poll(&pf, 1, 0) == 1 && read(fds[i], &ch, 1) <= 0) closed++;
  }
  fprintf(stderr, "preauth: %d of the attacker's connections were closed by the server at once\n", closed);
  CHECK(closed >= 1100 - 32);
  for (i = 0; i < 1100; i++)
    if (fds[i] >= 0) close(fds[i]);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* ---- 3: pre-key drain ------------------------------------------------------------ */

static void test_prekey_drain(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account v = {"victim", 0, {0}}, m = {"mallory", 0, {0}}, b = {"bob", 0, {0}};
  static struct sotto_srv_keys keys;
  struct sotto_srv_bundle_buf bundle;
  struct sotto_net *vc, *mc, *bc;
  uint8_t blob[64];
  int i, rc, otk = 0, ok = 0, rated = 0, pushes;
  const char *const extra[] = {"--bundle-burst", "100", "--bundle-rate", "0.01", NULL};
  if (srv_mkdir(&p, "drain") != 0 || srv_start(&p, EXTRA(extra, no_extra)) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &v);
  if (rc == 0) rc = do_register(&p, &ctx, &m);
  if (rc == 0) rc = do_register(&p, &ctx, &b);
  REQUIRE_VOID(rc == 0);
  vc = login(&p, &ctx, &v);
  mc = login(&p, &ctx, &m);
  bc = login(&p, &ctx, &b);
  REQUIRE_VOID(vc && mc && bc);
  make_keys(&keys, blob, 30, 30, 1);
  CHECK_RC(sotto_net_upload_keys(vc, &keys, NULL, NULL), 0);
  drain(vc, 300, 0); /* the KEYS_LOW of its AUTH (it had no keys then) */
  for (i = 0; i < 120; i++) {
    rc = sotto_net_fetch_bundle(mc, "victim", 1, &bundle);
    if (rc == SOTTO_SRV_E_RATE) {
      rated++;
      continue;
    }
    CHECK_RC(rc, 0);
    if (rc) break;
    ok++;
    CHECK(bundle.spk_id == 7 && (bundle.kem_kind == 1 || (bundle.kem_kind == 2 && bundle.kem_id == 9000)));
    if (bundle.has_ec) otk++;
  }
  pushes = drain(vc, 500, SOTTO_NET_EV_KEYS_LOW);
  fprintf(stderr, "drain: 120 BUNDLE requests: %d answered, %d rate limited, %d one-time keys handed out, %d "
                  "KEYS_LOW pushes to the victim\n",
          ok, rated, otk, pushes);
  CHECK(ok == 100 && rated == 20);
  CHECK(otk == 20);     /* bundle-otk-burst: the other 10 stay */
  CHECK(pushes <= 1);   /* keys-low-interval */
  /* A real contact still gets a usable bundle (without one-time keys). */
  CHECK_RC(sotto_net_fetch_bundle(bc, "victim", 1, &bundle), 0);
  CHECK(bundle.spk_id == 7 && !bundle.has_ec && bundle.kem_kind == 2);
  sotto_net_close(vc);
  sotto_net_close(mc);
  sotto_net_close(bc);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* ---- 4: send limit across reconnects ---------------------------------------------- */

static void test_send_rate_reconnect(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account a = {"alice", 0, {0}}, b = {"bob", 0, {0}};
  struct sotto_net *c;
  uint8_t body[32] = {1};
  int i, rc, ok = 0, rated = 0, round;
  const char *const extra[] = {"--send-burst", "20", "--send-rate", "0.01", NULL};
  if (srv_mkdir(&p, "sendrate") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &a);
  if (rc == 0) rc = do_register(&p, &ctx, &b);
  REQUIRE_VOID(rc == 0);
  for (round = 0; round < 5; round++) {
    c = login(&p, &ctx, &a);
    CHECK(c != NULL);
    if (!c) break;
    for (i = 0; i < 10; i++) {
      rc = sotto_net_send(c, "bob", 1, 1, body, sizeof body, NULL, NULL);
      if (rc == 0) ok++;
      else if (rc == SOTTO_SRV_E_RATE) rated++;
      else CHECK_RC(rc, 0);
    }
    sotto_net_close(c);
  }
  fprintf(stderr, "send rate: 50 SENDs over 5 connections: %d accepted, %d rate limited\n", ok, rated);
  CHECK(ok == 20 && rated == 30);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* ---- 5: per-sender share of a queue ------------------------------------------------ */

static void test_queue_share(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account v = {"victim", 0, {0}}, m = {"mallory", 0, {0}}, a = {"alice", 0, {0}}, c = {"carol", 0, {0}};
  struct sotto_net *mc, *ac, *cc, *vc;
  struct sotto_net_event ev;
  uint8_t body[64] = {2};
  int i, rc, ok = 0, share = 0;
  uint64_t first = 0;
  const char *const extra[] = {"--max-queue", "10", "--max-queue-per-sender", "5", NULL};
  const char *const old[] = {"--max-queue", "10", NULL};
  if (srv_mkdir(&p, "share") != 0 || srv_start(&p, EXTRA(extra, old)) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &v);
  if (rc == 0) rc = do_register(&p, &ctx, &m);
  if (rc == 0) rc = do_register(&p, &ctx, &a);
  if (rc == 0) rc = do_register(&p, &ctx, &c);
  REQUIRE_VOID(rc == 0);
  mc = login(&p, &ctx, &m);
  ac = login(&p, &ctx, &a);
  cc = login(&p, &ctx, &c);
  REQUIRE_VOID(mc && ac && cc);
  for (i = 0; i < 30; i++) {
    rc = sotto_net_send(mc, "victim", 1, 1, body, sizeof body, NULL, NULL);
    if (rc == 0) ok++;
    else if (rc == SOTTO_SRV_E_QUEUE_SHARE) share++;
    else CHECK_RC(rc, SOTTO_SRV_E_QUEUE_SHARE);
  }
  fprintf(stderr, "queue share: mallory's 30 SENDs: %d queued, %d refused with ERR(%d)\n", ok, share,
          SOTTO_SRV_E_QUEUE_SHARE);
  CHECK(ok == 5 && share == 25);
  /* A real sender still gets through... */
  for (i = 0, ok = 0; i < 5; i++) {
    rc = sotto_net_send(ac, "victim", 1, 1, body, sizeof body, i ? NULL : &first, NULL);
    CHECK_RC(rc, 0);
    ok += rc == 0;
  }
  fprintf(stderr, "queue share: then alice's 5 SENDs: %d queued\n", ok);
  /* ...and when the queue really is full, the error says so. */
  CHECK_RC(sotto_net_send(cc, "victim", 1, 1, body, sizeof body, NULL, NULL), SOTTO_SRV_E_QUEUE_FULL);
  /* Acks free mallory's share again (the counts follow deletes). */
  vc = login(&p, &ctx, &v);
  REQUIRE_VOID(vc != NULL);
  for (i = 0; i < 10; i++) {
    if (sotto_net_next_event(vc, WAIT_MS, &ev) != 1) break;
    if (ev.kind == SOTTO_NET_EV_MSG) CHECK_RC(sotto_net_ack(vc, ev.id), 0);
    sotto_net_event_clear(&ev);
  }
  CHECK_RC(sotto_net_send(mc, "victim", 1, 1, body, sizeof body, NULL, NULL), 0);
  sotto_net_close(vc);
  sotto_net_close(mc);
  sotto_net_close(ac);
  sotto_net_close(cc);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* ---- 6: storage quota, ACK always possible ------------------------------------------ */

/* Quotas per sender account (2500 bytes) and for the server (4500 bytes):
 * alice cannot store a third 1000-byte envelope, carol (another account)
 * still can until the server is full, then dave gets "storage full"; an ACK
 * works over quota and makes room; the totals survive a restart. */
static void test_storage_quota(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account a = {"alice", 0, {0}}, b = {"bob", 0, {0}}, c = {"carol", 0, {0}}, d = {"dave", 0, {0}};
  struct sotto_net *ac, *bc, *cc, *dc;
  struct sotto_net_event ev;
  static uint8_t body[1000];
  int i, rc, ok_a = 0, ok_c = 0;
  const char *const extra[] = {"--max-store-bytes", "4500", "--max-sender-bytes", "2500", NULL};
  if (srv_mkdir(&p, "quota") != 0 || srv_start(&p, EXTRA(extra, no_extra)) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &a);
  if (rc == 0) rc = do_register(&p, &ctx, &b);
  if (rc == 0) rc = do_register(&p, &ctx, &c);
  if (rc == 0) rc = do_register(&p, &ctx, &d);
  REQUIRE_VOID(rc == 0);
  ac = login(&p, &ctx, &a);
  cc = login(&p, &ctx, &c);
  dc = login(&p, &ctx, &d);
  REQUIRE_VOID(ac && cc && dc);
  for (i = 0; i < 3; i++) {
    rc = sotto_net_send(ac, "bob", 1, 1, body, sizeof body, NULL, NULL);
    if (rc == 0) ok_a++;
    else CHECK_RC(rc, SOTTO_SRV_E_SENDER_QUOTA);
  }
  for (i = 0; i < 3; i++) {
    rc = sotto_net_send(cc, "bob", 1, 1, body, sizeof body, NULL, NULL);
    if (rc == 0) ok_c++;
    else CHECK_RC(rc, SOTTO_SRV_E_SENDER_QUOTA);
  }
  rc = sotto_net_send(dc, "bob", 1, 1, body, sizeof body, NULL, NULL);
  fprintf(stderr,
          "storage quota: alice stored %d of 3, carol %d of 3 (sender quota 2500 bytes), then dave got ERR %d "
          "(server quota 4500 bytes)\n",
          ok_a, ok_c, rc);
  CHECK(ok_a == 2 && ok_c == 2);
  CHECK_RC(rc, SOTTO_SRV_E_STORAGE_FULL);
  bc = login(&p, &ctx, &b);
  REQUIRE_VOID(bc != NULL);
  while (sotto_net_next_event(bc, WAIT_MS, &ev) == 1 && ev.kind != SOTTO_NET_EV_MSG) sotto_net_event_clear(&ev);
  CHECK(ev.kind == SOTTO_NET_EV_MSG && strcmp(ev.sender, "alice") == 0);
  CHECK_RC(sotto_net_ack(bc, ev.id), 0); /* over quota, the ACK works */
  sotto_net_event_clear(&ev);
  CHECK_RC(sotto_net_send(ac, "bob", 1, 1, body, sizeof body, NULL, NULL), 0); /* and made room */
  CHECK_RC(sotto_net_send(ac, "bob", 1, 1, body, sizeof body, NULL, NULL), SOTTO_SRV_E_SENDER_QUOTA);
  sotto_net_close(ac);
  sotto_net_close(bc);
  sotto_net_close(cc);
  sotto_net_close(dc);
  CHECK(srv_stop(&p) == 0);
  /* The totals are read back from the database after a restart. */
  if (srv_start(&p, EXTRA(extra, no_extra)) == 0) {
    ac = login(&p, &ctx, &a);
    dc = login(&p, &ctx, &d);
    CHECK(ac && dc);
    if (ac) CHECK_RC(sotto_net_send(ac, "bob", 1, 1, body, sizeof body, NULL, NULL), SOTTO_SRV_E_SENDER_QUOTA);
    if (dc) CHECK_RC(sotto_net_send(dc, "bob", 1, 1, body, sizeof body, NULL, NULL), SOTTO_SRV_E_STORAGE_FULL);
    sotto_net_close(ac);
    sotto_net_close(dc);
    CHECK(srv_stop(&p) == 0);
  }
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* A real full disk: the data directory on a 3 MiB tmpfs (needs root to
 * mount; skipped, saying so, otherwise). SENDs fill it until the server says
 * storage full; then every ACK still works (the reserve file gives its space
 * back for them), and once they freed room, SENDs work again. */
static void test_disk_full(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account a = {"alice", 0, {0}}, b = {"bob", 0, {0}};
  struct sotto_net *ac = NULL, *bc = NULL;
  struct sotto_net_event ev;
  static uint8_t body[30000];
  int i, rc = 0, stored = 0, acked = 0, ack_fail = 0, full = 0;
  const char *const extra[] = {"--disk-reserve", "524288", "--max-queue-per-sender", "100000", NULL};
  if (srv_mkdir(&p, "diskfull") != 0) return;
  if (geteuid() != 0 || mount("tmpfs", p.dir, "tmpfs", 0, "size=3m,mode=0700") != 0) {
    fprintf(stderr, "disk_full: skipped (mounting a small tmpfs needs root)\n");
    srv_rmdir(&p);
    return;
  }
  if (srv_start(&p, EXTRA(extra, no_extra)) != 0) {
    CHECK(!"server starts on the small disk");
    umount(p.dir);
    srv_rmdir(&p);
    return;
  }
  rc = do_register(&p, &ctx, &a);
  if (rc == 0) rc = do_register(&p, &ctx, &b);
  CHECK_RC(rc, 0);
  ac = login(&p, &ctx, &a);
  CHECK(ac != NULL);
  randombytes_buf(body, sizeof body);
  for (i = 0; ac && i < 200; i++) {
    rc = sotto_net_send(ac, "bob", 1, 1, body, sizeof body, NULL, NULL);
    if (rc != 0) break;
    stored++;
  }
  full = rc == SOTTO_SRV_E_STORAGE_FULL;
  fprintf(stderr, "disk_full: %d envelopes of 30000 bytes stored on a 3 MiB disk, then ERR %d\n", stored, rc);
  CHECK(full);
  bc = login(&p, &ctx, &b);
  CHECK(bc != NULL);
  while (bc && acked + ack_fail < stored && sotto_net_next_event(bc, WAIT_MS, &ev) == 1) {
    if (ev.kind == SOTTO_NET_EV_MSG) {
      if (sotto_net_ack(bc, ev.id) == 0) acked++;
      else ack_fail++;
    }
    sotto_net_event_clear(&ev);
  }
  fprintf(stderr, "disk_full: %d ACKs answered OK, %d failed\n", acked, ack_fail);
  if (getenv("SOTTO_TEST_DEBUG")) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "ls -la %s >&2; df -k %s >&2", p.dir, p.dir);
    if (system(cmd) != 0) fprintf(stderr, "(ls failed)\n");
  }
  CHECK(stored > 0 && acked == stored && ack_fail == 0);
  for (i = 0, rc = -1; ac && i < 20 && rc != 0; i++) {
    rc = sotto_net_send(ac, "bob", 1, 1, body, sizeof body, NULL, NULL);
    if (rc) usleep(100 * 1000);
  }
  CHECK_RC(rc, 0); /* room again */
  sotto_net_close(ac);
  sotto_net_close(bc);
  CHECK(srv_stop(&p) == 0);
  if (tu_failures) {
    char *log = read_log(&p);
    fprintf(stderr, "--- server log\n%s", log ? log : "(none)\n");
    free(log);
  }
  sotto_net_ctx_free(ctx);
  umount(p.dir);
  srv_rmdir(&p);
}

/* ---- 7: idle timeout ---------------------------------------------------------------- */

static void test_idle_timeout(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account a = {"alice", 0, {0}}, b = {"bob", 0, {0}};
  struct sotto_net *ac, *bc;
  struct sotto_net_event ev;
  int i, rc, closed = 0;
  const char *const extra[] = {"--idle-timeout", "2", NULL};
  if (srv_mkdir(&p, "idle") != 0 || srv_start(&p, EXTRA(extra, no_extra)) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &a);
  if (rc == 0) rc = do_register(&p, &ctx, &b);
  REQUIRE_VOID(rc == 0);
  ac = login(&p, &ctx, &a);
  bc = login(&p, &ctx, &b);
  REQUIRE_VOID(ac && bc);
  /* bob PINGs every 0.5 s and stays; alice says nothing and is closed. */
  for (i = 0; i < 10; i++) {
    CHECK_RC(sotto_net_ping(bc), 0);
    while (!closed && sotto_net_next_event(ac, 500, &ev) == 1) {
      if (ev.kind == SOTTO_NET_EV_CLOSE) {
        CHECK(ev.code == SOTTO_SRV_E_TIMEOUT);
        closed = 1;
      }
      sotto_net_event_clear(&ev);
    }
  }
  fprintf(stderr, "idle timeout 2 s: the silent connection was %s after 5 s\n", closed ? "closed" : "still open");
  CHECK(closed);
  CHECK_RC(sotto_net_ping(bc), 0);
  sotto_net_close(ac);
  sotto_net_close(bc);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* ---- 8: acknowledged envelopes leave the WAL -------------------------------------- */

/* strict (--wal-scrub-interval 0): checked as soon as the last ACK is
 * answered; default (1 s): checked until 3 s after the last ACK (the
 * WAL is truncated at most 1 s after the deletes committed). */
static void wal_round(int strict) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account a = {"alice", 0, {0}}, b = {"bob", 0, {0}};
  struct sotto_net *ac, *bc;
  struct sotto_net_event ev;
  char marker[64];
  int i, rc, acked = 0, found = 0, tries;
  int64_t t_acked;
  const char *const strict_extra[] = {"--wal-scrub-interval", "0", NULL};
  if (srv_mkdir(&p, "wal") != 0 || srv_start(&p, EXTRA(strict ? strict_extra : no_extra, no_extra)) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &a);
  if (rc == 0) rc = do_register(&p, &ctx, &b);
  REQUIRE_VOID(rc == 0);
  ac = login(&p, &ctx, &a);
  bc = login(&p, &ctx, &b);
  REQUIRE_VOID(ac && bc);
  drain(bc, 300, 0);
  for (i = 0; i < 20; i++) {
    snprintf(marker, sizeof marker, "ACKED-MARKER-%02d-%s", i, "xyzzy");
    CHECK_RC(sotto_net_send(ac, "bob", 1, 1, (const uint8_t *)marker, strlen(marker), NULL, NULL), 0);
  }
  snprintf(marker, sizeof marker, "UNACKED-MARKER-%s", "plugh");
  CHECK_RC(sotto_net_send(ac, "alice", 1, 1, (const uint8_t *)marker, strlen(marker), NULL, NULL), 0);
  while (acked < 20 && sotto_net_next_event(bc, WAIT_MS, &ev) == 1) {
    if (ev.kind == SOTTO_NET_EV_MSG) {
      CHECK_RC(sotto_net_ack(bc, ev.id), 0); /* answered after the delete committed */
      acked++;
    }
    sotto_net_event_clear(&ev);
  }
  CHECK(acked == 20);
  t_acked = mono_ms();
  /* The server is still running: nothing of the acked envelopes is on disk,
   * not in sotto.db and not in sotto.db-wal; the unacked one is (so the
   * search works). */
  for (tries = 0; tries < (strict ? 1 : 30); tries++) {
    if (tries) usleep(100 * 1000);
    for (i = 0, found = 0; i < 20; i++) {
      snprintf(marker, sizeof marker, "ACKED-MARKER-%02d", i);
      if (srv_dir_contains(p.dir, marker, strlen(marker))) found++;
    }
    if (!found) break;
  }
  fprintf(stderr, "wal (%s): %d of 20 acknowledged markers readable in the data directory %lld ms after the last ACK\n",
          strict ? "wal-scrub-interval 0" : "default", found, (long long)(mono_ms() - t_acked));
  CHECK(found == 0);
  CHECK(srv_dir_contains(p.dir, "UNACKED-MARKER-plugh", 20));
  sotto_net_close(ac);
  sotto_net_close(bc);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

static void test_wal_scrubbed(void) {
  wal_round(1);
  wal_round(0);
}

/* ---- 9: start-up, operation, names, devices ---------------------------------------- */

static void test_startup_checks(void) {
  struct srv_proc p, q;
  struct sotto_net_ctx *ctx = NULL;
  struct stat st;
  char path[400], *log;
  int fd;
  /* A 0-byte sotto.db is refused. */
  REQUIRE_VOID(srv_mkdir(&p, "empty") == 0);
  snprintf(path, sizeof path, "%s/sotto.db", p.dir);
  fd = open(path, O_WRONLY | O_CREAT, 0600);
  CHECK(fd >= 0);
  if (fd >= 0) close(fd);
  if (srv_start(&p, NULL) == 0) {
    CHECK(!"the server refuses to start");
    srv_kill(&p);
  }
  log = read_log(&p);
  CHECK(log && strstr(log, "is empty (0 bytes), not a database"));
  free(log);
  CHECK(stat(path, &st) == 0 && st.st_size == 0); /* left as it was */
  srv_rmdir(&p);
  /* A file that is not a database is refused. */
  REQUIRE_VOID(srv_mkdir(&p, "garbage") == 0);
  snprintf(path, sizeof path, "%s/sotto.db", p.dir);
  fd = open(path, O_WRONLY | O_CREAT, 0600);
  if (fd >= 0) {
    static const char junk[4096] = "this is not an SQLite database at all";
    CHECK(write(fd, junk, sizeof junk) == (ssize_t)sizeof junk);
    close(fd);
  }
  if (srv_start(&p, NULL) == 0) {
    CHECK(!"the server refuses to start");
    srv_kill(&p);
  }
  log = read_log(&p);
  CHECK(log && strstr(log, "restore it from a backup"));
  free(log);
  srv_rmdir(&p);
  /* --data is created (0700); files are 0600; a second server refuses. */
  REQUIRE_VOID(srv_mkdir(&p, "create") == 0);
  rmdir(p.dir);
  REQUIRE_VOID(srv_start(&p, NULL) == 0);
  CHECK(stat(p.dir, &st) == 0 && (st.st_mode & 0777) == 0700);
  {
    static const char *const names[] = {"sotto.db", "sotto.db-wal", "sotto.db-shm", "tls.key", "sotto.lock"};
    size_t i;
    for (i = 0; i < 5; i++) {
      snprintf(path, sizeof path, "%s/%s", p.dir, names[i]);
      CHECK(stat(path, &st) == 0 && (st.st_mode & 0077) == 0);
    }
  }
  q = p;
  q.pid = 0;
  snprintf(q.log, sizeof q.log, "%s.second.log", p.dir);
  if (srv_start(&q, NULL) == 0) {
    CHECK(!"a second server refuses to start");
    srv_kill(&q);
  }
  log = read_log(&q);
  CHECK(log && strstr(log, "another sotto-server is already running"));
  free(log);
  unlink(q.log);
  /* ... and so does one with another --data whose --store is this SQLite
   * store's directory: the store's own directory is locked too. */
  if (srv_mkdir(&q, "other") == 0) {
    snprintf(q.store, sizeof q.store, "sqlite:%s", p.dir);
    if (srv_start(&q, NULL) == 0) {
      CHECK(!"a server on another --data but the same SQLite store refuses to start");
      srv_kill(&q);
    }
    log = read_log(&q);
    CHECK(log && strstr(log, "another sotto-server is already running"));
    free(log);
    q.store[0] = 0;
    srv_rmdir(&q);
  } else {
    CHECK(!"data directory");
  }
  /* SIGHUP is logged and ignored. */
  kill(p.pid, SIGHUP);
  usleep(300 * 1000);
  {
    struct sotto_net *c = srv_connect(&p, &ctx, 1);
    CHECK(c != NULL);
    if (c) CHECK_RC(sotto_net_ping(c), 0);
    sotto_net_close(c);
  }
  CHECK(srv_stop(&p) == 0);
  log = read_log(&p);
  CHECK(log && strstr(log, "event=sighup"));
  free(log);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

static void test_debug_log_and_names(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account alice = {"alice", 0, {0}};
  struct account look[] = {{"alice.", 0, {0}}, {"al.ice", 0, {0}}, {"a1ice", 0, {0}}, {"al__ice", 0, {0}},
                           {"_alice", 0, {0}}};
  struct account fresh[] = {{"dave", 0, {0}}, {"erin", 0, {0}}, {"frank", 0, {0}}, {"grace", 0, {0}}};
  char *log;
  int i;
  const char *const extra[] = {"--log-level", "2", "--register-burst", "100", "--register-prefix-burst", "8",
                               "--register-prefix-rate", "0.001", NULL};
  if (srv_mkdir(&p, "names") != 0 || srv_start(&p, extra) != 0) {
    CHECK(!"server starts");
    return;
  }
  CHECK_RC(do_register(&p, &ctx, &alice), 0);
  CHECK_RC(do_register(&p, &ctx, &look[0]), SOTTO_SRV_E_BAD_USERNAME); /* trailing dot */
  CHECK_RC(do_register(&p, &ctx, &look[1]), SOTTO_SRV_E_TAKEN);        /* same canonical form */
  CHECK_RC(do_register(&p, &ctx, &look[2]), SOTTO_SRV_E_TAKEN);
  CHECK_RC(do_register(&p, &ctx, &look[3]), SOTTO_SRV_E_BAD_USERNAME); /* two separators */
  /* Per-prefix registrations: 8 in a burst for 127.0.0.0/24 (alice and the
   * four refused names count: a refusal happens after the token was spent). */
  for (i = 0; i < 4; i++) {
    int rc = do_register(&p, &ctx, &fresh[i]);
    if (i == 3) CHECK_RC(rc, SOTTO_SRV_E_RATE);
  }
  /* A TLS failure and a plain-TCP peer are logged at debug level without
   * the address. */
  {
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)atoi(p.port));
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
      static const char junk[] = "GET / HTTP/1.0\r\n\r\n";
      char buf[64];
      CHECK(write(fd, junk, sizeof junk - 1) > 0);
      if (read(fd, buf, sizeof buf) < 0) buf[0] = 0;
    }
    if (fd >= 0) close(fd);
  }
  usleep(300 * 1000);
  CHECK(srv_stop(&p) == 0);
  log = read_log(&p);
  CHECK(log && strstr(log, "event=tls_failed peer="));
  if (log) {
    /* Only the start line names an address: the one the server listens on. */
    char *line, *save = NULL;
    for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
      if (!strstr(line, "event=start")) CHECK(!strstr(line, "127.0.") && !strstr(line, "alice"));
  }
  free(log);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

static void test_devices(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account a1 = {"alice", 0, {0}}, a2 = {"alice", 0, {0}}, a3 = {"alice", 0, {0}}, old;
  struct sotto_net *c1, *c2, *c3, *x;
  struct sotto_net_event ev;
  uint32_t ids[16];
  size_t n;
  int rc, closed = 0;
  if (srv_mkdir(&p, "devices") != 0 || srv_start(&p, NULL) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &a1);
  REQUIRE_VOID(rc == 0);
  c1 = login(&p, &ctx, &a1);
  REQUIRE_VOID(c1 != NULL);
  CHECK_RC(sotto_net_add_device(c1, &a2.dev, a2.secret), 0);
  CHECK_RC(sotto_net_add_device(c1, &a3.dev, a3.secret), 0);
  c2 = login(&p, &ctx, &a2);
  c3 = login(&p, &ctx, &a3);
  REQUIRE_VOID(c2 && c3);
  /* Device 2 may not remove device 1 or device 3; nobody removes device 1. */
  CHECK_RC(sotto_net_device_remove(c2, 1), SOTTO_SRV_E_FORBIDDEN);
  CHECK_RC(sotto_net_device_remove(c2, 3), SOTTO_SRV_E_FORBIDDEN);
  CHECK_RC(sotto_net_device_remove(c1, 1), SOTTO_SRV_E_FORBIDDEN);
  CHECK_RC(sotto_net_device_remove(c1, 9), SOTTO_SRV_E_NOT_FOUND);
  /* Device 1 removes device 2: its live connection is closed, its secret
   * no longer works, it is no longer listed. */
  CHECK_RC(sotto_net_device_remove(c1, 2), 0);
  while (!closed && sotto_net_next_event(c2, WAIT_MS, &ev) == 1) {
    if (ev.kind == SOTTO_NET_EV_CLOSE) closed = ev.code == SOTTO_SRV_E_DEVICE_REMOVED;
    sotto_net_event_clear(&ev);
  }
  CHECK(closed);
  sotto_net_close(c2);
  x = srv_connect(&p, &ctx, 1);
  CHECK(x != NULL);
  if (x) CHECK_RC(sotto_net_auth(x, "alice", 2, a2.secret, NULL, NULL), SOTTO_SRV_E_AUTH);
  sotto_net_close(x);
  CHECK_RC(sotto_net_devices(c1, "alice", ids, 16, &n), 0);
  CHECK(n == 2 && ids[0] == 1 && ids[1] == 3);
  CHECK_RC(sotto_net_send(c1, "alice", 2, 1, (const uint8_t *)"x", 1, NULL, NULL), SOTTO_SRV_E_NOT_FOUND);
  /* Device 3 sends (the store now knows its row: SQLite remembers a row
   * found for a SEND), then removes itself with a SEND pipelined behind the
   * removal on the same connection: that SEND must not be stored (its
   * sender's row is gone, and so is what the store remembered of it). */
  CHECK_RC(sotto_net_send(c3, "alice", 1, 1, (const uint8_t *)"early", 5, NULL, NULL), 0);
  {
    /* both frames in one write (one TLS record): the server reads them
     * together, so that they run in one batch, the SEND after the removal */
    uint8_t b[256];
    struct sotto__wr w;
    size_t at;
    const uint32_t rid = 7001;
    int early = 0, late = 0, refused = 0, stored = 0;
    sotto__wr_init(&w, b + 9, 4);
    sotto__srv_put_device_remove(&w, 3);
    REQUIRE_VOID(!w.err);
    sotto__srv_frame_hdr(b, SOTTO_SRV_DEVICE_REMOVE, 7000, w.len);
    at = 9 + w.len;
    sotto__wr_init(&w, b + at + 9, sizeof b - at - 9);
    sotto__srv_put_send(&w, "alice", 1, 1, (const uint8_t *)"late", 4);
    REQUIRE_VOID(!w.err);
    sotto__srv_frame_hdr(b + at, SOTTO_SRV_SEND, rid, w.len);
    at += 9 + w.len;
    CHECK_RC(sotto_net_write_raw(c3, b, at), 0);
    while (sotto_net_next_event(c3, WAIT_MS, &ev) == 1) {
      int stop = ev.kind == SOTTO_NET_EV_CLOSE;
      if (ev.kind == SOTTO_NET_EV_ANSWER && ev.req_id == rid) {
        refused = ev.code == SOTTO_SRV_E_DEVICE_REMOVED;
        stored = ev.code == 0;
        stop = 1;
      }
      sotto_net_event_clear(&ev);
      if (stop) break;
    }
    CHECK(!stored); /* answered DEVICE_REMOVED, or the connection closed first */
    (void)refused;
    while (sotto_net_next_event(c1, 500, &ev) == 1) {
      if (ev.kind == SOTTO_NET_EV_MSG && ev.body_len == 5 && memcmp(ev.body, "early", 5) == 0) early++;
      if (ev.kind == SOTTO_NET_EV_MSG && ev.body_len == 4 && memcmp(ev.body, "late", 4) == 0) late++;
      sotto_net_event_clear(&ev);
    }
    CHECK(early == 1);
    CHECK(late == 0);
  }
  sotto_net_close(c3);
  /* Rotation: the new secret works; the old one too until the new one has
   * been used once (the answer may have been lost after the commit: review
   * M3), then no more. */
  old = a1;
  CHECK_RC(sotto_net_rotate_secret(c1, a1.secret), 0);
  CHECK(memcmp(old.secret, a1.secret, 32) != 0);
  sotto_net_close(c1);
  x = srv_connect(&p, &ctx, 1);
  CHECK(x != NULL);
  if (x) CHECK_RC(sotto_net_auth(x, "alice", 1, old.secret, NULL, NULL), 0);
  sotto_net_close(x);
  c1 = login(&p, &ctx, &a1);
  REQUIRE_VOID(c1 != NULL);
  sotto_net_close(c1);
  x = srv_connect(&p, &ctx, 1);
  CHECK(x != NULL);
  if (x) CHECK_RC(sotto_net_auth(x, "alice", 1, old.secret, NULL, NULL), SOTTO_SRV_E_AUTH);
  sotto_net_close(x);
  c1 = login(&p, &ctx, &a1);
  REQUIRE_VOID(c1 != NULL);
  /* Device changes are budgeted per account (device-change-burst 10, every
   * attempt above counted): rotations soon answer ERR(rate) and change
   * nothing, and an addition is refused from the same budget. */
  {
    int i, limited = 0;
    for (i = 0; i < 20 && !limited; i++) {
      old = a1;
      rc = sotto_net_rotate_secret(c1, a1.secret);
      if (rc == SOTTO_SRV_E_RATE) limited = 1;
      else CHECK_RC(rc, 0);
    }
    CHECK(limited && i <= 11);
    CHECK(memcmp(old.secret, a1.secret, 32) == 0); /* the refused one kept the secret */
    CHECK_RC(sotto_net_add_device(c1, &a2.dev, a2.secret), SOTTO_SRV_E_RATE);
  }
  sotto_net_close(c1);
  c1 = login(&p, &ctx, &a1);
  CHECK(c1 != NULL);
  sotto_net_close(c1);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* A removed device's key is never given to another device (SQLite:
 * AUTOINCREMENT; PostgreSQL: bigserial), so a request the removed device
 * had queued cannot act as the new one. Device 1 adds device 2 (the highest
 * key), removes it and adds device 3: device 3 gets a new key, not 2. */
static void test_devkey_reuse(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account a1 = {"alice", 0, {0}}, a2 = {"alice", 0, {0}}, a3 = {"alice", 0, {0}};
  struct sotto_net *c1;
  char cmd[400], out[64] = "";
  FILE *f;
  int st = -1, rc;
  if (srv_pg()) return; /* bigserial never reuses a value */
  if (srv_mkdir(&p, "devkey") != 0 || srv_start(&p, NULL) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &a1);
  REQUIRE_VOID(rc == 0);
  c1 = login(&p, &ctx, &a1);
  REQUIRE_VOID(c1 != NULL);
  CHECK_RC(sotto_net_add_device(c1, &a2.dev, a2.secret), 0);
  CHECK_RC(sotto_net_device_remove(c1, a2.dev), 0);
  CHECK_RC(sotto_net_add_device(c1, &a3.dev, a3.secret), 0);
  sotto_net_close(c1);
  CHECK(srv_stop(&p) == 0);
  snprintf(cmd, sizeof cmd, "sqlite3 '%s/sotto.db' \"SELECT group_concat(devkey, ',') FROM devices\"", p.dir);
  if ((f = popen(cmd, "r")) != NULL) {
    if (!fgets(out, sizeof out, f)) out[0] = 0;
    st = pclose(f);
  }
  CHECK(st == 0 && strcmp(out, "1,3\n") == 0);
  sotto_net_ctx_free(ctx);
  srv_rmdir(&p);
}

/* Entries of dir other than . and .. (-1: cannot open). */
static int dir_entries(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int n = 0;
  if (!d) return -1;
  while ((e = readdir(d)) != NULL)
    if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) n++;
  closedir(d);
  return n;
}

/* Requests pipelined behind the account's own UNREGISTER, in the same TLS
 * record (so in the same batch, after it): nothing may be done for the
 * deleted account. A BLOB_CREATE must leave no blob row or file (it would
 * belong to nobody: no requisition could find it), a BUNDLE must take none
 * of another user's one-time keys; the connection ends with
 * DEVICE_REMOVED. Before the fix both ran, with the connection's
 * remembered account. */
static void test_after_unregister(void) {
  struct srv_proc p;
  struct sotto_net_ctx *ctx = NULL;
  struct account erin = {"erin", 0, {0}}, bob = {"bob", 0, {0}};
  struct sotto_net *c, *x;
  struct sotto_net_event ev;
  struct sotto_srv_keys keys;
  struct sotto_srv_blob_req m;
  uint8_t blob[64], b[512];
  uint32_t ec0 = 0, kem0 = 0, ec1 = 0, kem1 = 0;
  struct sotto__wr w;
  size_t at;
  int create_ok = 0, bundle_ok = 0, closed = 0, rc;
  char dir[1100];
  if (srv_mkdir(&p, "afterunreg") != 0 || srv_start(&p, NULL) != 0) {
    CHECK(!"server starts");
    return;
  }
  rc = do_register(&p, &ctx, &erin);
  if (rc == 0) rc = do_register(&p, &ctx, &bob);
  REQUIRE_VOID(rc == 0);
  x = login(&p, &ctx, &bob);
  REQUIRE_VOID(x != NULL);
  make_keys(&keys, blob, 10, 10, 1);
  CHECK_RC(sotto_net_upload_keys(x, &keys, &ec0, &kem0), 0);
  sotto_net_close(x);
  c = login(&p, &ctx, &erin);
  REQUIRE_VOID(c != NULL);
  /* UNREGISTER (no payload), BLOB_CREATE, BUNDLE of bob's device 1: one write */
  sotto__srv_frame_hdr(b, SOTTO_SRV_UNREGISTER, 7100, 0);
  at = 9;
  memset(&m, 0, sizeof m);
  m.size = 1000;
  m.fetches = 1;
  sotto__wr_init(&w, b + at + 9, sizeof b - at - 9);
  sotto__srv_put_blob_req(&w, SOTTO_SRV_BLOB_CREATE, &m);
  REQUIRE_VOID(!w.err);
  sotto__srv_frame_hdr(b + at, SOTTO_SRV_BLOB_CREATE, 7101, w.len);
  at += 9 + w.len;
  sotto__wr_init(&w, b + at + 9, sizeof b - at - 9);
  sotto__srv_put_bundle_req(&w, "bob", 1);
  REQUIRE_VOID(!w.err);
  sotto__srv_frame_hdr(b + at, SOTTO_SRV_BUNDLE, 7102, w.len);
  at += 9 + w.len;
  CHECK_RC(sotto_net_write_raw(c, b, at), 0);
  while (sotto_net_next_event(c, WAIT_MS, &ev) == 1) {
    int stop = ev.kind == SOTTO_NET_EV_CLOSE;
    if (stop) closed = ev.code;
    if (ev.kind == SOTTO_NET_EV_ANSWER && ev.req_id == 7101) create_ok = ev.code == 0;
    if (ev.kind == SOTTO_NET_EV_ANSWER && ev.req_id == 7102) bundle_ok = ev.code == 0;
    sotto_net_event_clear(&ev);
    if (stop) break;
  }
  sotto_net_close(c);
  CHECK(closed == SOTTO_SRV_E_DEVICE_REMOVED);
  CHECK(!create_ok);
  CHECK(!bundle_ok);
  snprintf(dir, sizeof dir, "%s/blobs", p.dir);
  CHECK(dir_entries(dir) == 0); /* no blob file of the deleted account */
  x = srv_connect(&p, &ctx, 1);
  REQUIRE_VOID(x != NULL);
  CHECK_RC(sotto_net_auth(x, "bob", bob.dev, bob.secret, &ec1, &kem1), 0);
  CHECK(ec1 == ec0 && kem1 == kem0); /* none of bob's one-time keys taken */
  sotto_net_close(x);
  CHECK(srv_stop(&p) == 0);
  sotto_net_ctx_free(ctx);
  (void)rmdir(dir);
  srv_rmdir(&p);
}

int main(int argc, char **argv) {
  const char *only = argc > 1 && strncmp(argv[1], "/", 1) != 0 ? argv[1] : NULL;
  signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0) return 1;
#define RUN(name) \
  if (!only || strcmp(only, #name) == 0) test_##name()
  RUN(pipelining_memory);
  RUN(preauth_share);
  RUN(prekey_drain);
  RUN(send_rate_reconnect);
  RUN(queue_share);
  RUN(storage_quota);
  RUN(disk_full);
  RUN(idle_timeout);
  RUN(wal_scrubbed);
  RUN(startup_checks);
  RUN(debug_log_and_names);
  RUN(devices);
  RUN(after_unregister);
  RUN(devkey_reuse);
#undef RUN
  return test_done("test_server_attack");
}

/* SPDX-License-Identifier: Apache-2.0 */
/* fanout_e2e.c: rows fanout_e2e_N of bench_fanout (see fanout_e2e.h).
 *
 * The real sotto-server is started on 127.0.0.1 (tests/server/srvtest.c:
 * a free port, TLS with its certificate pinned, a fresh data directory;
 * the send and queue limits raised so that the benchmark measures cost,
 * not the rate limiter). alice and four recipients are registered through
 * the core; recipient bobN gets N - 1 linked devices the way `sotto link`
 * and `sotto devices add` make them (sc_link_open on the new home,
 * sc_devices_peek and sc_devices_add on device 1, sc_link_wait on the new
 * home: the provisioning message, the membership signature, the next
 * signed list). So bobN's signed list has N devices, each with its own
 * identity key and pre-keys on the server.
 *
 * Row fanout_e2e_N: messages/s of sc_send_text(alice -> bobN) over alice's
 * one TLS connection: content, the recorded list of bobN verified, the N
 * sessions stepped and saved in one store transaction, its commit, one
 * SEND_MULTI of N envelopes, and the server's answer (all N stored) before
 * the next message. The sessions exist already and are acknowledged (a
 * few messages to every recipient, then every device of every recipient
 * receives them and answers alice once, and alice receives the answers),
 * so no session setup is measured and the messages are ordinary ones, as
 * in a conversation. During the measurement bobN's devices are offline:
 * their envelopes are queued on the server (the server's work per
 * message).
 *
 * Floor column: the server's own relay of the same number of envelopes on
 * the same connection: one SEND_MULTI of N opaque envelopes of the size of
 * a real one (what one message adds to the server's sotto_queue_bytes),
 * each answered before the next, without any client-side work.
 *
 * Rounds interleave the rows (1, 2, 4, 8, 1, ...), each round measures the
 * sotto row then its floor; figures are medians over rounds, and the
 * ratio to N = 1 is the median of the per-round ratios. */
#include "fanout_e2e.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <sotto/session.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "net.h"
#include "sotto_client.h"
#include "srvtest.h"

#define PASS "bench passphrase"
#define TEXT "a message of about a hundred bytes, as people write them: short, with a question at the end?"
#define WARM 3 /* messages to every recipient before the clock runs */

static const unsigned g_ns[FANOUT_E2E_ROWS] = {1, 2, 4, 8};
static struct srv_proc g_srv;
static char g_base[64];
static int g_failed; /* keep the server's log to read */

static void cleanup(void) {
  char cmd[1024];
  if (g_srv.pid > 0) (void)srv_stop(&g_srv);
  /* the server's data directory has subdirectories (blobs/): removed whole */
  if (g_srv.dir[0]) {
    snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", g_srv.dir, g_failed ? "" : g_srv.log);
    if (system(cmd) != 0) fprintf(stderr, "bench_fanout: could not remove %s\n", g_srv.dir);
  }
  if (g_base[0]) {
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_base);
    if (system(cmd) != 0) fprintf(stderr, "bench_fanout: could not remove %s\n", g_base);
  }
}

__attribute__((noreturn)) static void fail(const char *what, struct sc_client *c, int rc) {
  fprintf(stderr, "bench_fanout: %s: %s (%s); server log %s\n", what, sc_error_message(rc),
          c ? sc_errdetail(c) : "", g_srv.log);
  g_failed = 1;
  exit(1); /* cleanup (atexit) stops the server */
}

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void quiet(void *ud, const struct sc_event *ev) {
  (void)ud;
  (void)ev;
}

/* alice's sink: the answers she received (one from each device). */
static void count_answers(void *ud, const struct sc_event *ev) {
  if (ev->kind == SC_EV_MESSAGE) (*(unsigned *)ud)++;
}

static struct sc_client *account(const char *name, const char *server) {
  struct sc_client *c = NULL;
  char home[512];
  int rc;
  snprintf(home, sizeof home, "%s/%s", g_base, name);
  if ((rc = sc_client_new(&c, home)) != 0 || (rc = sc_init(c, NULL, PASS, strlen(PASS))) != 0 ||
      (rc = sc_register(NULL, NULL, c, server, name, g_srv.fp, NULL)) != 0)
    fail("registering an account", c, rc);
  sc_set_sink(c, quiet, NULL);
  /* the first connection publishes the account's list (version 1) */
  if ((rc = sc_connect(c, 10000)) != 0) fail("first connection", c, rc);
  sc_disconnect(c);
  return c;
}

struct link_wait {
  struct sc_client *d;
  struct sc_linked linked;
  int rc;
};

static void *link_wait_thread(void *arg) {
  struct link_wait *w = arg;
  w->rc = sc_link_wait(&w->linked, w->d, 30000);
  return NULL;
}

/* Links one new device to primary's account, as `sotto link` on the new
 * home and `sotto devices add --yes CODE` on device 1 do: two processes
 * there, two threads here (the new device's wait includes its hello, which
 * waits for the list device 1 publishes in its last step; one thread doing
 * both in turn would sit out the hello's whole wait). */
static struct sc_client *link_device(struct sc_client *primary, const char *server, const char *home_name) {
  struct sc_client *d = NULL;
  struct sc_link_peer peer;
  struct sc_add_job *job = NULL;
  struct sc_device_added added;
  struct link_wait w;
  pthread_t th;
  char home[512], code[SC_LINK_CODE_MAX], fp[SC_FINGERPRINT_LEN + 1];
  uint32_t ttl = 0;
  int rc;
  snprintf(home, sizeof home, "%s/%s", g_base, home_name);
  if ((rc = sc_client_new(&d, home)) != 0 || (rc = sc_init(d, NULL, PASS, strlen(PASS))) != 0)
    fail("a new device's home", d, rc);
  sc_set_sink(d, quiet, NULL);
  if ((rc = sc_link_open(code, fp, &ttl, d, server, g_srv.fp, NULL, home_name)) != 0)
    fail("sc_link_open", d, rc);
  if ((rc = sc_devices_peek(&peer, primary, code)) != 0) fail("sc_devices_peek", primary, rc);
  if (strcmp(peer.fingerprint, fp) != 0)
    fail("the slot does not hold the new device's key", primary, SC_ERR_INTERNAL);
  if ((rc = sc_devices_add_begin(&job, primary, code, &peer, 30000)) != 0)
    fail("sc_devices_add_begin", primary, rc);
  memset(&w, 0, sizeof w);
  w.d = d;
  if (pthread_create(&th, NULL, link_wait_thread, &w) != 0) fail("a thread for the new device", d, SC_ERR_NOMEM);
  while ((rc = sc_devices_add_step(job, &added, primary)) == 1) usleep(20000);
  pthread_join(th, NULL);
  if (w.rc != 0) fail("sc_link_wait", d, w.rc);
  if (rc != 0) fail("sc_devices_add_step", primary, rc);
  sc_devices_add_free(job, primary);
  sc_disconnect(primary);
  return d;
}

/* A device of a recipient receives what waits for it and answers alice
 * once, so that alice's session with it is acknowledged: what follows are
 * ordinary messages, not pre-key messages (as in a conversation). */
static void answer(struct sc_client *d) {
  int64_t end;
  int rc;
  if ((rc = sc_connect(d, 10000)) != 0) fail("a recipient's device connects", d, rc);
  end = sc_monotonic_ms() + 20000;
  while (!sc_link_drained(d) && sc_monotonic_ms() < end)
    if (sc_link_step(d, 100) < 0 && !sc_connected(d))
      fail("a recipient's device lost its connection", d, SC_ERR_INTERNAL);
  if (!sc_link_drained(d)) fail("a recipient's device did not receive its queue", d, SC_ERR_TIMEOUT);
  if ((rc = sc_send_text(NULL, d, "alice", "ok", 2, 0)) != 0) fail("a recipient's device answers", d, rc);
  sc_disconnect(d);
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median(double *v, size_t n) {
  qsort(v, n, sizeof v[0], cmp_d);
  return v[n / 2];
}

/* A gauge of the server's metrics endpoint (sotto_queue_bytes, ...). */
static long long gauge(const char *name) {
  char *body = srv_metrics(&g_srv), *p;
  long long v = -1;
  size_t n = strlen(name);
  for (p = body; p && (p = strstr(p, name)) != NULL; p += n)
    if ((p == body || p[-1] == '\n') && p[n] == ' ') {
      v = strtoll(p + n + 1, NULL, 10);
      break;
    }
  free(body);
  if (v < 0) fail("reading the server's metrics", NULL, SC_ERR_INTERNAL);
  return v;
}

/* One message to user through the core; the server stored all n. */
static void send_one(struct sc_client *a, const char *user, unsigned n) {
  struct sc_sent s;
  int rc;
  memset(&s, 0, sizeof s);
  if ((rc = sc_send_text(&s, a, user, TEXT, strlen(TEXT), 0)) != 0) fail("sc_send_text", a, rc);
  if (s.queued || s.undelivered || s.delivered < 1) {
    fprintf(stderr,
            "bench_fanout: a message to %s (%u devices) was not stored by the server (delivered %u, "
            "undelivered %u, queued %d)\n",
            user, n, s.delivered, s.undelivered, s.queued);
    fail("sc_send_text", a, SC_ERR_INTERNAL);
  }
  /* what the server pushes meanwhile (nothing expected) is handled */
  if (sc_link_pending(a)) (void)sc_link_step(a, 0);
}

/* One SEND_MULTI of n opaque envelopes to user's devices 1..n. */
static void relay_one(struct sc_client *a, const char *user, unsigned n, const uint8_t *body, size_t len) {
  static struct sotto_srv_send_multi m;
  uint64_t ids[SOTTO_SRV_MAX_DEVICES], ts = 0;
  unsigned i;
  int rc;
  memset(&m, 0, sizeof m);
  m.username.p = (const uint8_t *)user;
  m.username.len = strlen(user);
  m.n = (uint8_t)n;
  for (i = 0; i < n; i++) {
    m.e[i].device_id = i + 1;
    m.e[i].type = SOTTO_MSG_SIGNAL;
    m.e[i].body = body;
    m.e[i].body_len = len;
  }
  if ((rc = sotto_net_send_multi(a->k.net, &m, ids, &ts)) != 0) {
    fprintf(stderr, "bench_fanout: floor SEND_MULTI to %s: %d\n", user, rc);
    fail("the floor", a, SC_ERR_INTERNAL);
  }
}

void fanout_e2e_run(struct fanout_e2e_result *out, size_t m, size_t rounds) {
  static const char *const extra[] = {"--register-rate",
                                      "600",
                                      "--register-burst",
                                      "100",
                                      "--max-devices",
                                      "8",
                                      "--device-change-burst",
                                      "100",
                                      "--send-rate",
                                      "1000000000",
                                      "--send-burst",
                                      "1000000000",
                                      "--max-queue",
                                      "1000000000",
                                      "--max-queue-per-sender",
                                      "1000000000",
                                      "--log-level",
                                      "0",
                                      NULL};
  static double rate[FANOUT_E2E_ROWS][64], floor_[FANOUT_E2E_ROWS][64], ratio[FANOUT_E2E_ROWS][64];
  struct sc_client *alice, *dev[FANOUT_E2E_ROWS][8];
  char server[64], user[FANOUT_E2E_ROWS][16];
  uint8_t *body;
  size_t i, r, k;
  unsigned answers = 0;
  int rc;

  if (rounds == 0 || rounds > 64 || m == 0) fail("--messages >= 1, --rounds 1..64", NULL, SC_ERR_ARG);
  signal(SIGPIPE, SIG_IGN);
  snprintf(g_base, sizeof g_base, "/tmp/sotto-bench-fanout-e2e.XXXXXX");
  if (!mkdtemp(g_base)) fail("mkdtemp", NULL, SC_ERR_INTERNAL);
  atexit(cleanup);
  if (srv_mkdir(&g_srv, "fanout") || srv_start(&g_srv, extra))
    fail("cannot start sotto-server", NULL, SC_ERR_INTERNAL);
  snprintf(server, sizeof server, "127.0.0.1:%s", g_srv.port);

  alice = account("alice", server);
  for (i = 0; i < FANOUT_E2E_ROWS; i++) {
    snprintf(user[i], sizeof user[i], "bob%u", g_ns[i]);
    dev[i][0] = account(user[i], server);
    for (k = 2; k <= g_ns[i]; k++) {
      char name[64];
      snprintf(name, sizeof name, "bob%u-dev%zu", g_ns[i], k);
      dev[i][k - 1] = link_device(dev[i][0], server, name);
    }
  }

  /* one connection for everything that follows; the sessions started and warm */
  if ((rc = sc_connect(alice, 10000)) != 0) fail("alice connects", alice, rc);
  for (i = 0; i < FANOUT_E2E_ROWS; i++)
    for (k = 0; k < WARM; k++) send_one(alice, user[i], g_ns[i]);
  sc_disconnect(alice);
  for (i = 0; i < FANOUT_E2E_ROWS; i++)
    for (k = 0; k < g_ns[i]; k++) {
      answer(dev[i][k]);
      sc_client_free(dev[i][k]);
    }
  /* alice receives the answers (one from every device: 15), then keeps
   * this connection */
  sc_set_sink(alice, count_answers, &answers);
  if ((rc = sc_connect(alice, 10000)) != 0) fail("alice connects again", alice, rc);
  {
    int64_t end = sc_monotonic_ms() + 20000;
    while ((!sc_link_drained(alice) || answers < 15) && sc_monotonic_ms() < end)
      (void)sc_link_step(alice, 100);
    if (answers != 15) {
      fprintf(stderr, "bench_fanout: alice received %u answers of 15\n", answers);
      fail("alice did not receive every device's answer", alice, SC_ERR_TIMEOUT);
    }
  }
  sc_set_sink(alice, quiet, NULL);
  for (i = 0; i < FANOUT_E2E_ROWS; i++) send_one(alice, user[i], g_ns[i]);
  /* The floor's envelopes have the size of a real one: what one more
   * message to bob1 adds to the server's queues (bob1 is offline). */
  {
    long long q0 = gauge("sotto_queue_bytes"), d0 = gauge("sotto_queue_depth"), q1, d1;
    send_one(alice, user[0], 1);
    q1 = gauge("sotto_queue_bytes");
    d1 = gauge("sotto_queue_depth");
    if (d1 != d0 + 1 || q1 <= q0)
      fail("one message did not add one envelope to the queues", NULL, SC_ERR_INTERNAL);
    out->envelope_len = (size_t)(q1 - q0);
  }
  if (!(body = malloc(out->envelope_len))) fail("no memory", NULL, SC_ERR_NOMEM);
  randombytes_buf(body, out->envelope_len);
  for (i = 0; i < FANOUT_E2E_ROWS; i++) relay_one(alice, user[i], g_ns[i], body, out->envelope_len);

  for (r = 0; r < rounds; r++) {
    for (i = 0; i < FANOUT_E2E_ROWS; i++) {
      double t = now_s();
      for (k = 0; k < m; k++) send_one(alice, user[i], g_ns[i]);
      t = now_s() - t;
      rate[i][r] = t > 0 ? (double)m / t : NAN;
      t = now_s();
      for (k = 0; k < m; k++) relay_one(alice, user[i], g_ns[i], body, out->envelope_len);
      t = now_s() - t;
      floor_[i][r] = t > 0 ? (double)m / t : NAN;
    }
    for (i = 0; i < FANOUT_E2E_ROWS; i++) ratio[i][r] = rate[0][r] / rate[i][r];
  }
  for (i = 0; i < FANOUT_E2E_ROWS; i++) {
    out->devices[i] = g_ns[i];
    out->rate[i] = median(rate[i], rounds);
    out->floor[i] = median(floor_[i], rounds);
    out->ratio[i] = median(ratio[i], rounds);
  }
  sc_disconnect(alice);
  sc_client_free(alice);
  free(body);
}

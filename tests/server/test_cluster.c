/* SPDX-License-Identifier: Apache-2.0 */
/* test_cluster.c: three sotto-server nodes on one PostgreSQL store and one
 * Redis (sotto-server --cluster), real components: run by with_pg.sh (a
 * throwaway PostgreSQL); the test starts its own redis-server on a free
 * loopback port and stops it at the end.
 *
 *  1. cross-node delivery: alice on node 0, bob on node 1; bob receives at
 *     once (pushed by node 1 on node 0's announcement), and from node 2;
 *  2. one live connection per device across the cluster: bob logging in on
 *     node 2 closes his connection on node 1 (DISPLACED);
 *  3. SIGKILL of a random node under load, >= 10 times: the clients
 *     reconnect to another node; 0 acknowledged envelopes lost, 0 altered,
 *     a server id always names the same envelope;
 *  4. Redis killed under load: nothing lost, delivery goes on (polling
 *     PostgreSQL), the node says so (metrics, /readyz), pushes resume when
 *     Redis is back;
 *  5. PostgreSQL stopped: SENDs refused (never acknowledged), service
 *     resumes when it is back;
 *  5a. a batch of more than 1,024 envelope writes with queue-share counts
 *     in it keeps the lock order without an exclusive rerun, and a day's
 *     first logins (written at COMMIT) are written (test_big_batches, on a
 *     fourth node);
 *  5b. link slots across nodes (test_link_across_nodes) and their fallback
 *     to a node's memory while Redis is down (test_redis_loss);
 *  6. the key-transparency log in a cluster (test_kt_cluster, on nodes of
 *     its own with --kt and a fresh Redis): one log for all nodes, the same
 *     head everywhere, registrations on several nodes at once, a witness's
 *     cosignature given to one node served by another, a restarted node.
 * Every wait is bounded. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sotto/devlist.h>
#include <sotto/keys.h>
#include <sotto/kt.h>

#include "srvtest.h"
#include "testutil.h"
#include "wire.h"

#define NODES 3
#define ROUNDS 12
#define MAX_SEQ 200000
#define WINDOW 32
#define BODY_LEN 48
#define WAIT_MS 5000

static struct srv_proc node[NODES];
static struct sotto_net_ctx *ctx;
static char redis_url[64], redis_port[16];
static pid_t redis_pid;
static const char *extra[NODES][16];
static char names[NODES][16];

static uint64_t acked_id[MAX_SEQ];
static uint64_t seen_id[MAX_SEQ];
static uint8_t body_key[crypto_generichash_KEYBYTES];
static unsigned bad_body, id_mismatch;

struct account {
  const char *name;
  uint32_t dev;
  uint8_t secret[32];
};
static struct account alice = {"alice", 0, {0}}, bob = {"bob", 0, {0}};
static struct account carol = {"carol", 0, {0}}, dave = {"dave", 0, {0}};
static struct account erin = {"erin", 0, {0}}, frank = {"frank", 0, {0}}, gina = {"gina", 0, {0}};
static uint8_t gina_pub[32], gina_priv[32]; /* gina's account key: she signs a device list */

/* Stops a scenario when a precondition fails (the connections leak: the
 * test ends with its failure counted). */
#define REQUIRE_VOID(e)      \
  do {                       \
    int require_ok_ = !!(e); \
    CHECK(require_ok_);      \
    if (!require_ok_) return; \
  } while (0)

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- redis-server on a free loopback port -------------------------------------------- */

static int free_port(char out[16]) {
  struct sockaddr_in a = {0};
  socklen_t al = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &al)) {
    if (fd >= 0) close(fd);
    return -1;
  }
  close(fd);
  snprintf(out, 16, "%u", ntohs(a.sin_port));
  return 0;
}

/* 1 if a redis-server answers PING on the port. */
static int redis_ping(void) {
  struct sockaddr_in a = {0};
  char buf[16];
  int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;
  struct pollfd pf;
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)atoi(redis_port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0) return 0;
  if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0 && write(fd, "PING\r\n", 6) == 6) {
    pf.fd = fd;
    pf.events = POLLIN;
    if (poll(&pf, 1, 500) == 1 && read(fd, buf, sizeof buf) >= 5 && memcmp(buf, "+PONG", 5) == 0) ok = 1;
  }
  close(fd);
  return ok;
}

static int redis_start(void) {
  int i, tries;
  for (tries = 0; tries < 5; tries++) {
    if (!redis_port[0] && free_port(redis_port) != 0) return -1;
    if ((redis_pid = fork()) < 0) return -1;
    if (redis_pid == 0) {
      int dn = open("/dev/null", O_WRONLY);
      if (dn >= 0) {
        dup2(dn, 1);
        dup2(dn, 2);
      }
      execlp("redis-server", "redis-server", "--port", redis_port, "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "no", "--dir", "/tmp", (char *)NULL);
      _exit(127);
    }
    for (i = 0; i < 100; i++) {
      int st;
      if (waitpid(redis_pid, &st, WNOHANG) == redis_pid) {
        redis_pid = 0;
        break;
      }
      if (redis_ping()) {
        snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%s", redis_port);
        return 0;
      }
      usleep(50000);
    }
    if (redis_pid) {
      kill(redis_pid, SIGKILL);
      waitpid(redis_pid, NULL, 0);
      redis_pid = 0;
    }
    redis_port[0] = 0; /* taken meanwhile: another port (only before the nodes know it) */
    if (redis_url[0]) return -1;
  }
  return -1;
}

static void redis_kill(void) {
  if (redis_pid <= 0) return;
  kill(redis_pid, SIGKILL);
  waitpid(redis_pid, NULL, 0);
  redis_pid = 0;
}

/* ---- nodes and clients -------------------------------------------------------------- */

static int start_node(int i) {
  return srv_start(&node[i], extra[i]);
}

static int copy_file(const char *from, const char *to) {
  char buf[8192];
  ssize_t n;
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0600), rc = 0;
  if (in < 0 || out < 0) rc = -1;
  while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) rc = -1;
  if (in >= 0) close(in);
  if (out >= 0) close(out);
  return rc;
}

static struct sotto_net *login_at(int i, const struct account *a) {
  struct sotto_net *c;
  if (node[i].pid <= 0) return NULL;
  c = srv_connect(&node[i], &ctx, 1);
  if (c && sotto_net_auth(c, a->name, a->dev, a->secret, NULL, NULL) != 0) {
    sotto_net_close(c);
    return NULL;
  }
  return c;
}

/* The next event of kind (others skipped), within WAIT_MS. */
static int next_of(struct sotto_net *c, int kind, struct sotto_net_event *ev) {
  int64_t end = mono_ms() + WAIT_MS;
  while (mono_ms() < end) {
    int r = sotto_net_next_event(c, (int)(end - mono_ms()), ev);
    if (r != 1) return 0;
    if (ev->kind == kind) return 1;
    sotto_net_event_clear(ev);
  }
  return 0;
}

static char *metric_line_of(struct srv_proc *sp, const char *name) {
  static char line[256];
  char *m = srv_metrics(sp), *p, *e;
  line[0] = 0;
  if (!m) return line;
  /* at the start of a line: a counter's "# TYPE name counter" line comes
   * first and would match "name " too */
  for (p = strstr(m, name); p && p > m && p[-1] != '\n'; p = strstr(p + 1, name)) {
  }
  if (p) {
    e = strchr(p, '\n');
    snprintf(line, sizeof line, "%.*s", e ? (int)(e - p) : (int)strlen(p), p);
  }
  free(m);
  return line;
}

static char *metric_line(int i, const char *name) { return metric_line_of(&node[i], name); }

/* The value of an unlabelled metric of node i ("name " with its space), 0
 * when the node does not show it. */
static uint64_t metric_u64(int i, const char *name) {
  const char *l = metric_line(i, name);
  return strncmp(l, name, strlen(name)) == 0 ? strtoull(l + strlen(name), NULL, 10) : 0;
}

/* GET path on node i's metrics port: the whole answer (malloc'd). */
static char *http_get(int i, const char *path) {
  struct sockaddr_in a = {0};
  char req[128], *buf = calloc(1, 4096);
  size_t got = 0;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)atoi(node[i].mport));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (!buf || fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    if (fd >= 0) close(fd);
    return buf;
  }
  snprintf(req, sizeof req, "GET %s HTTP/1.0\r\n\r\n", path);
  if (write(fd, req, strlen(req)) == (ssize_t)strlen(req)) {
    struct pollfd pf = {fd, POLLIN, 0};
    while (got < 4095 && poll(&pf, 1, 3000) == 1) {
      ssize_t n = read(fd, buf + got, 4095 - got);
      if (n <= 0) break;
      got += (size_t)n;
    }
  }
  close(fd);
  return buf;
}

/* ---- envelopes ---------------------------------------------------------------------- */

static void make_body(uint8_t out[BODY_LEN], uint32_t seq) {
  uint8_t s[4] = {(uint8_t)(seq >> 24), (uint8_t)(seq >> 16), (uint8_t)(seq >> 8), (uint8_t)seq};
  memcpy(out, s, 4);
  crypto_generichash(out + 4, BODY_LEN - 4, s, 4, body_key, sizeof body_key);
}

static int check_msg(const struct sotto_net_event *ev) {
  uint8_t want[BODY_LEN];
  uint32_t seq;
  if (ev->body_len != BODY_LEN || strcmp(ev->sender, "alice") != 0 || ev->sender_device != 1) {
    bad_body++;
    return 0;
  }
  seq = (uint32_t)ev->body[0] << 24 | (uint32_t)ev->body[1] << 16 | (uint32_t)ev->body[2] << 8 | ev->body[3];
  make_body(want, seq);
  if (seq >= MAX_SEQ || memcmp(want, ev->body, BODY_LEN) != 0) {
    bad_body++;
    return 0;
  }
  if ((seen_id[seq] && seen_id[seq] != ev->id) || (acked_id[seq] && acked_id[seq] != ev->id)) id_mismatch++;
  seen_id[seq] = ev->id;
  return 1;
}

static uint32_t next_seq;

/* Sends seq synchronously; records the id. 0 or the error. */
static int send_one(struct sotto_net *a, uint32_t *seq_out) {
  uint8_t body[BODY_LEN];
  uint64_t id = 0;
  uint32_t seq = next_seq++;
  int rc;
  make_body(body, seq);
  rc = sotto_net_send(a, "bob", 1, 1, body, BODY_LEN, &id, NULL);
  if (rc == 0) acked_id[seq] = id;
  if (seq_out) *seq_out = seq;
  return rc;
}

/* Reads bob's events until seq was seen (acking), within ms. */
static int wait_seen(struct sotto_net *b, uint32_t seq, int ms) {
  int64_t end = mono_ms() + ms;
  while (!seen_id[seq] && mono_ms() < end) {
    struct sotto_net_event ev;
    int r = sotto_net_next_event(b, (int)(end - mono_ms()), &ev);
    if (r != 1) return 0;
    if (ev.kind == SOTTO_NET_EV_MSG && check_msg(&ev)) {
      uint32_t req;
      (void)sotto_net_ack_async(b, ev.id, &req);
    }
    sotto_net_event_clear(&ev);
  }
  return seen_id[seq] != 0;
}

/* ---- the scenarios ------------------------------------------------------------------ */

static void test_cross_node(void) {
  struct sotto_net *a = login_at(0, &alice), *b = login_at(1, &bob), *b2;
  struct sotto_net_event ev;
  uint32_t seq;
  REQUIRE_VOID(a && b);
  CHECK(next_of(b, SOTTO_NET_EV_DRAINED, &ev));
  /* Node 0 stores it; node 1 holds bob's connection and pushes it. */
  CHECK_RC(send_one(a, &seq), 0);
  CHECK(wait_seen(b, seq, WAIT_MS));
  sotto_net_close(a);
  /* And from the third node. */
  a = login_at(2, &alice);
  REQUIRE_VOID(a != NULL);
  CHECK_RC(send_one(a, &seq), 0);
  CHECK(wait_seen(b, seq, WAIT_MS));
  CHECK(strstr(metric_line(1, "sotto_cluster_announces_total{node=\"n1\",dir=\"in\"}"), "} 0") == NULL);
  /* One live connection per device across the cluster: bob on node 2
   * closes his connection on node 1. */
  b2 = login_at(2, &bob);
  CHECK(b2 != NULL);
  CHECK(next_of(b, SOTTO_NET_EV_CLOSE, &ev) && ev.code == SOTTO_SRV_E_DISPLACED);
  if (b2) {
    /* The new connection gets what comes next (pushed on the same node). */
    CHECK_RC(send_one(a, &seq), 0);
    CHECK(wait_seen(b2, seq, WAIT_MS));
  }
  sotto_net_close(a);
  a = NULL;
  /* Envelopes stored by different nodes in turn reach bob's one live
   * connection, each at once: ids are handed out in commit order across the
   * nodes and paging stops at the cluster's horizon, so a node's later
   * commit is never below what bob was already given. */
  if (b2) {
    int i, all = 1;
    for (i = 0; i < 10; i++) {
      struct sotto_net *ai = login_at(i % 2, &alice);
      if (!ai) {
        all = 0;
        break;
      }
      all &= send_one(ai, &seq) == 0;
      sotto_net_close(ai);
      all &= wait_seen(b2, seq, WAIT_MS);
    }
    CHECK(all);
  }
  fprintf(stderr, "cluster: cross-node delivery, displacement and interleaved nodes checked\n");
  sotto_net_close(b2);
  sotto_net_close(b);
}

/* Two nodes store envelopes for one device at the same moment, pipelined
 * (erin on node 0, frank on node 2, gina live on node 1): gina's one
 * connection gets every acknowledged envelope, each once, in increasing id
 * order, without reconnecting. Every other SEND goes to the other sender
 * (who acknowledges it), so that each node's batches lock several device
 * rows: with the store's one lock order no batch loses a deadlock to
 * another node's (sotto_commit_retries_total stays 0 on every node). Paging after a cursor is only right if a
 * device's ids increase in commit order whatever node commits them
 * (store.h, "Shared mode"; docs/scaling.md, "Delivery horizon"). */
#define CONC_N 300
static void test_concurrent_nodes(void) {
  struct sotto_net *snd[2], *g;
  uint32_t sent[2] = {0, 0}, inflight[2] = {0, 0}, ok[2] = {0, 0}, refused = 0, got = 0, dup = 0, order = 0;
  uint32_t gina_ok = 0, cross_got = 0;
  static uint8_t seen[2][CONC_N], to_gina[2][4096];
  uint64_t last = 0, retries_before = 0, retries_after = 0, serial[2] = {0, 0};
  int64_t end;
  int i;
  memset(seen, 0, sizeof seen);
  for (i = 0; i < NODES; i++) retries_before += metric_u64(i, "sotto_commit_retries_total ");
  snd[0] = login_at(0, &erin);
  snd[1] = login_at(2, &frank);
  g = login_at(1, &gina);
  REQUIRE_VOID(snd[0] && snd[1] && g);
  CHECK(next_of(g, SOTTO_NET_EV_DRAINED, &(struct sotto_net_event){0}));
  end = mono_ms() + 4 * WAIT_MS;
  /* Until both have all answers and gina has what was acknowledged (bounded). */
  while (mono_ms() < end &&
         (sent[0] < CONC_N || sent[1] < CONC_N || inflight[0] || inflight[1] || got < gina_ok)) {
    struct pollfd pf[3];
    struct sotto_net_event ev;
    int k;
    for (k = 0; k < 2; k++)
      while (sent[k] < CONC_N && inflight[k] < 32) {
        uint8_t body[8] = {(uint8_t)k, 0, 0, 0, 0};
        uint32_t req;
        int to_g = (sent[k] & 1) == 0;
        const char *to = to_g ? "gina" : k == 0 ? "frank" : "erin";
        body[0] = (uint8_t)(to_g ? k : 2 + k);
        body[1] = (uint8_t)(sent[k] >> 8);
        body[2] = (uint8_t)sent[k];
        if (sotto_net_send_async(snd[k], to, 1, 1, body, sizeof body, &req) != 0) break;
        to_gina[k][req & 4095] = (uint8_t)(to_g ? 1 : 2); /* 0: not a SEND (an ACK's answer) */
        sent[k]++;
        inflight[k]++;
      }
    for (k = 0; k < 3; k++) {
      pf[k].fd = sotto_net_fd(k < 2 ? snd[k] : g);
      pf[k].events = POLLIN;
    }
    if (!sotto_net_pending(snd[0]) && !sotto_net_pending(snd[1]) && !sotto_net_pending(g)) (void)poll(pf, 3, 100);
    for (k = 0; k < 2; k++)
      while (sotto_net_next_event(snd[k], 0, &ev) == 1) {
        if (ev.kind == SOTTO_NET_EV_ANSWER && inflight[k] && to_gina[k][ev.req_id & 4095]) {
          inflight[k]--;
          if (ev.code == 0) {
            ok[k]++;
            gina_ok += to_gina[k][ev.req_id & 4095] == 1;
            to_gina[k][ev.req_id & 4095] = 0;
          } else {
            to_gina[k][ev.req_id & 4095] = 0;
            refused++;
          }
        } else if (ev.kind == SOTTO_NET_EV_MSG && ev.body_len == 8 && ev.body[0] == 3 - k) {
          uint32_t req;
          cross_got++;
          (void)sotto_net_ack_async(snd[k], ev.id, &req);
        }
        sotto_net_event_clear(&ev);
      }
    while (sotto_net_next_event(g, 0, &ev) == 1) {
      if (ev.kind == SOTTO_NET_EV_MSG && ev.body_len == 8 && ev.body[0] < 2) {
        uint32_t q = (uint32_t)ev.body[1] << 8 | ev.body[2], req;
        if (q < CONC_N && seen[ev.body[0]][q])
          dup++;
        else if (q < CONC_N) {
          seen[ev.body[0]][q] = 1;
          got++;
        }
        if (ev.id <= last) order++;
        last = ev.id;
        (void)sotto_net_ack_async(g, ev.id, &req);
      }
      sotto_net_event_clear(&ev);
    }
  }
  for (i = 0; i < NODES; i++) retries_after += metric_u64(i, "sotto_commit_retries_total ");
  for (i = 0; i < NODES; i++) {
    serial[0] += metric_u64(i, "sotto_commit_serial_total{why=\"planned\"} ");
    serial[1] += metric_u64(i, "sotto_commit_serial_total{why=\"rerun\"} ");
  }
  printf("cluster: concurrent nodes: %u + %u acknowledged (%u to gina), %u refused, %u delivered live, %u cross, "
         "%u duplicates, %u out of order, %llu commit retries; exclusive batches so far: %llu planned, %llu rerun\n",
         ok[0], ok[1], gina_ok, refused, got, cross_got, dup, order,
         (unsigned long long)(retries_after - retries_before), (unsigned long long)serial[0],
         (unsigned long long)serial[1]);
  CHECK(ok[0] == CONC_N && ok[1] == CONC_N);
  CHECK(gina_ok == CONC_N); /* every other SEND of each sender */
  CHECK(got == gina_ok);
  CHECK(retries_after == retries_before);
  CHECK(dup == 0);
  CHECK(order == 0);
  sotto_net_close(snd[0]);
  sotto_net_close(snd[1]);
  sotto_net_close(g);
}

/* A batch with more than 1,024 envelope writes, with queue-share counts in
 * the middle of it, on a fourth node of the cluster (--max-queue-per-sender
 * 100, so that every SEND to a queue of 100 or more counts the sender's
 * share in the open transaction): it used to be stopped and run again under
 * the exclusive order lock (sotto_commit_serial_total{why="rerun"}): the
 * first 1,024 rows, or the rows before a count, were sent and their devices
 * locked, and a later row of a lower device broke the lock order. Now the
 * rows wait for one flush at COMMIT that locks every device in order, and a
 * count leaves the waiting rows out of SQL and adds them itself. The test
 * holds the order lock from a connection of its own while six senders
 * pipeline 260 SENDs each (a batch takes at most 256 ops of a connection),
 * so that the next batch holds 1,536 of them, to four recipients whose
 * devices alternate high and low; then every envelope must arrive once and
 * no batch may have been rerun or retried. A seventh sender sends 130 to
 * one recipient in the same batch: exactly 100 are taken (its share, the
 * envelopes of the open transaction counted), 30 refused with
 * QUEUE_SHARE. */
/* The value of an unlabelled metric of p ("name " with its space), 0 if absent. */
static uint64_t metric_of(struct srv_proc *p, const char *name) {
  char *m = srv_metrics(p), *l;
  uint64_t v = 0;
  for (l = m; l && (l = strstr(l, name)) != NULL; l++)
    if (l == m || l[-1] == '\n') {
      v = strtoull(l + strlen(name), NULL, 10);
      break;
    }
  free(m);
  return v;
}

#define BIG_SENDERS 6
#define BIG_RCPTS 4
#define BIG_PER 260
static void test_big_batches(void) {
  static struct srv_proc q;
  static struct account acc[BIG_SENDERS + BIG_RCPTS + 1];
  static char nm[BIG_SENDERS + BIG_RCPTS + 1][16];
  static uint8_t seen[BIG_SENDERS][BIG_PER];
  const char *const args[] = {"--cluster", redis_url, "--node-name", "nbig", "--send-burst", "1000000", "--send-rate",
                              "1000000", "--max-queue", "1000000", "--max-queue-per-sender", "100",
                              "--register-rate", "100000", "--register-burst", "100000", "--register-global-rate",
                              "100000", "--register-global-burst", "100000", "--register-prefix-rate", "100000",
                              "--register-prefix-burst", "100000", "--log-level",
                              getenv("SRVTEST_KEEP_LOGS") ? "2" : "0", NULL};
  static const int order[BIG_RCPTS] = {3, 0, 2, 1}; /* high, low, high, low devices */
  struct sotto_net *snd[BIG_SENDERS + 1];
  unsigned sent[BIG_SENDERS + 1] = {0}, answered = 0, refused = 0, got = 0, dup = 0, bad = 0;
  unsigned share_ok = 0, share_refused = 0, share_other = 0, share_got = 0;
  uint64_t rerun0 = 0, rerun1 = 0, retry0 = 0, retry1 = 0, big = 0;
  char from[300], to[300];
  PGconn *pc;
  PGresult *r;
  int64_t end;
  int i, k;
  REQUIRE_VOID(srv_mkdir(&q, "cluster-big") == 0);
  memcpy(q.store, node[0].store, sizeof q.store);
  snprintf(from, sizeof from, "%s/tls.key", node[0].dir);
  snprintf(to, sizeof to, "%s/tls.key", q.dir);
  REQUIRE_VOID(copy_file(from, to) == 0);
  snprintf(from, sizeof from, "%s/tls.crt", node[0].dir);
  snprintf(to, sizeof to, "%s/tls.crt", q.dir);
  REQUIRE_VOID(copy_file(from, to) == 0);
  REQUIRE_VOID(srv_start(&q, args) == 0);
  for (i = 0; i < BIG_SENDERS + BIG_RCPTS + 1; i++) {
    struct sotto_net *c = srv_connect(&q, &ctx, 1);
    uint8_t ik[33] = {5};
    if (i == BIG_SENDERS + BIG_RCPTS)
      snprintf(nm[i], sizeof nm[i], "bigshare");
    else
      snprintf(nm[i], sizeof nm[i], i < BIG_SENDERS ? "bigs%d" : "bigr%d", i < BIG_SENDERS ? i : i - BIG_SENDERS);
    acc[i].name = nm[i];
    REQUIRE_VOID(c != NULL);
    CHECK_RC(sotto_net_register(c, acc[i].name, ik, sizeof ik, &acc[i].dev, acc[i].secret), 0);
    sotto_net_close(c);
  }
  for (i = 0; i <= BIG_SENDERS; i++) {
    const struct account *a = &acc[i < BIG_SENDERS ? i : BIG_SENDERS + BIG_RCPTS];
    snd[i] = srv_connect(&q, &ctx, 1);
    REQUIRE_VOID(snd[i] && sotto_net_auth(snd[i], a->name, a->dev, a->secret, NULL, NULL) == 0);
  }
  for (i = 0; i < 3; i++) {
    rerun0 += metric_u64(i, "sotto_commit_serial_total{why=\"rerun\"} ");
    retry0 += metric_u64(i, "sotto_commit_retries_total ");
  }
  /* The order lock (store_pg.c, PG_ORDER_KEY) held exclusively: q's next
   * batch waits at its BEGIN while the SENDs pile up behind it. */
  pc = PQconnectdb(q.store + 3);
  REQUIRE_VOID(pc && PQstatus(pc) == CONNECTION_OK);
  /* The recipients' devices as if last seen on day 0: their logins below
   * each write the day (deferred to the batch's COMMIT in shared mode). */
  r = PQexec(pc, "UPDATE devices SET last_seen_day = 0 WHERE account_id IN (SELECT id FROM accounts WHERE username "
                 "LIKE 'bigr%')");
  CHECK(PQresultStatus(r) == PGRES_COMMAND_OK && strcmp(PQcmdTuples(r), "4") == 0);
  PQclear(r);
  r = PQexec(pc, "SELECT pg_advisory_lock(126922532351747)");
  CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
  PQclear(r);
  for (k = 0; k < BIG_PER; k++)
    for (i = 0; i < BIG_SENDERS; i++) {
      uint8_t body[8] = {(uint8_t)i, (uint8_t)(k >> 8), (uint8_t)k, 0xB1};
      uint32_t req;
      if (sotto_net_send_async(snd[i], acc[BIG_SENDERS + order[(k + i) % BIG_RCPTS]].name, 1, 1, body, sizeof body,
                               &req) == 0)
        sent[i]++;
      if (k == 0 && i == 0) usleep(300 * 1000); /* the first SEND alone in the batch that waits */
      if (i == BIG_SENDERS - 1 && k < 130) {
        uint8_t b2[8] = {0, (uint8_t)(k >> 8), (uint8_t)k, 0xB2};
        if (sotto_net_send_async(snd[BIG_SENDERS], acc[BIG_SENDERS].name, 1, 1, b2, sizeof b2, &req) == 0)
          sent[BIG_SENDERS]++;
      }
    }
  /* Until q has read them (the batch that waits holds the first, or a few
   * more on a slow machine), bounded. */
  end = mono_ms() + 6 * WAIT_MS;
  while (metric_of(&q, "sotto_ops_waiting ") < BIG_SENDERS * BIG_PER + 130 - 256 && mono_ms() < end)
    usleep(50 * 1000);
  usleep(300 * 1000);
  r = PQexec(pc, "SELECT pg_advisory_unlock(126922532351747)");
  CHECK(PQresultStatus(r) == PGRES_TUPLES_OK);
  PQclear(r);
  end = mono_ms() + 6 * WAIT_MS;
  while ((answered + refused < BIG_SENDERS * BIG_PER || share_ok + share_refused + share_other < 130) &&
         mono_ms() < end)
    for (i = 0; i <= BIG_SENDERS; i++) {
      struct sotto_net_event ev;
      while (sotto_net_next_event(snd[i], i == 0 ? 50 : 0, &ev) == 1) {
        if (ev.kind == SOTTO_NET_EV_ANSWER && i == BIG_SENDERS) {
          if (ev.code == 0)
            share_ok++;
          else if (ev.code == SOTTO_SRV_E_QUEUE_SHARE)
            share_refused++;
          else
            share_other++;
        } else if (ev.kind == SOTTO_NET_EV_ANSWER) {
          if (ev.code == 0)
            answered++;
          else
            refused++;
        }
        sotto_net_event_clear(&ev);
      }
    }
  for (i = 0; i <= BIG_SENDERS; i++) sotto_net_close(snd[i]);
  /* Every envelope, once, to the recipients on the other nodes. */
  for (i = 0; i < BIG_RCPTS; i++) {
    struct sotto_net *c = login_at(1 + i % 2, &acc[BIG_SENDERS + i]);
    struct sotto_net_event ev;
    int drained = 0;
    CHECK(c != NULL);
    if (!c) continue;
    end = mono_ms() + 4 * WAIT_MS;
    while (!drained && mono_ms() < end && sotto_net_next_event(c, WAIT_MS, &ev) == 1) {
      if (ev.kind == SOTTO_NET_EV_DRAINED) drained = 1;
      if (ev.kind == SOTTO_NET_EV_MSG) {
        uint32_t req;
        unsigned kk = ev.body_len == 8 ? (unsigned)ev.body[1] << 8 | ev.body[2] : BIG_PER;
        if (kk < 130 && ev.body[0] == 0 && ev.body[3] == 0xB2 && strcmp(ev.sender, "bigshare") == 0) {
          share_got++;
        } else if (kk < BIG_PER && ev.body[0] < BIG_SENDERS && ev.body[3] == 0xB1) {
          if (seen[ev.body[0]][kk]++)
            dup++;
          else
            got++;
        } else {
          bad++;
        }
        (void)sotto_net_ack_async(c, ev.id, &req);
      }
      sotto_net_event_clear(&ev);
    }
    CHECK(drained);
    sotto_net_close(c);
  }
  /* Every recipient's login wrote today's day. */
  r = PQexec(pc, "SELECT count(*) FROM devices WHERE last_seen_day > 0 AND account_id IN (SELECT id FROM accounts "
                 "WHERE username LIKE 'bigr%')");
  CHECK(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), "4") == 0);
  PQclear(r);
  PQfinish(pc);
  for (i = 0; i < 3; i++) {
    rerun1 += metric_u64(i, "sotto_commit_serial_total{why=\"rerun\"} ");
    retry1 += metric_u64(i, "sotto_commit_retries_total ");
  }
  {
    /* q's batches: how many held more than 1,000 ops (the histogram's top bucket). */
    char *m = srv_metrics(&q), *p1, *p2;
    if (m && (p1 = strstr(m, "sotto_commit_batch_size_bucket{le=\"1000\"} ")) != NULL &&
        (p2 = strstr(m, "sotto_commit_batch_size_bucket{le=\"+Inf\"} ")) != NULL)
      big = strtoull(strchr(p2, ' ') + 1, NULL, 10) - strtoull(strchr(p1, ' ') + 1, NULL, 10);
    if (m && (p1 = strstr(m, "sotto_commit_serial_total{why=\"rerun\"} ")) != NULL)
      rerun1 += strtoull(strchr(p1, ' ') + 1, NULL, 10);
    if (m && (p1 = strstr(m, "sotto_commit_retries_total ")) != NULL)
      retry1 += strtoull(strchr(p1, ' ') + 1, NULL, 10);
    free(m);
  }
  printf("cluster: big batches: %u of %u SENDs acknowledged, %u refused, %u delivered, %u duplicates, %u foreign; "
         "%llu batches of more than 1,000 ops; %llu reruns, %llu retries; queue share: %u taken, %u refused, %u "
         "other, %u delivered\n",
         answered, BIG_SENDERS * BIG_PER, refused, got, dup, bad, (unsigned long long)big,
         (unsigned long long)(rerun1 - rerun0), (unsigned long long)(retry1 - retry0), share_ok, share_refused,
         share_other, share_got);
  for (i = 0; i < BIG_SENDERS; i++) CHECK(sent[i] == BIG_PER);
  CHECK(sent[BIG_SENDERS] == 130);
  CHECK(share_ok == 100);
  CHECK(share_refused == 30);
  CHECK(share_other == 0);
  CHECK(share_got == 100);
  CHECK(answered == BIG_SENDERS * BIG_PER);
  CHECK(refused == 0);
  CHECK(got == BIG_SENDERS * BIG_PER);
  CHECK(dup == 0);
  CHECK(bad == 0);
  CHECK(big >= 1);
  CHECK(rerun1 == rerun0);
  CHECK(retry1 == retry0);
  CHECK(srv_stop(&q) == 0);
  srv_rmdir(&q);
}

/* Refused starts: a single-writer server on the cluster's store, --cluster
 * on a SQLite store, a malformed --cluster URL. */
static void test_refusals(void) {
  struct srv_proc p;
  const char *const none[] = {NULL};
  const char *const sqlite_cluster[] = {"--cluster", redis_url, NULL};
  const char *const bad_url[] = {"--cluster", "redis://user:pw@127.0.0.1:1", NULL};
  static char log[65536];
  FILE *f;
  size_t n;
  REQUIRE_VOID(srv_mkdir(&p, "cluster-refuse") == 0);
  memcpy(p.store, node[0].store, sizeof p.store);
  CHECK(srv_start(&p, none) != 0); /* the nodes hold the lock shared */
  CHECK(srv_start(&p, bad_url) != 0);
  p.store[0] = 0; /* SQLite */
  CHECK(srv_start(&p, sqlite_cluster) != 0);
  log[0] = 0;
  if ((f = fopen(p.log, "r")) != NULL) {
    n = fread(log, 1, sizeof log - 1, f);
    log[n] = 0;
    fclose(f);
  }
  CHECK(strstr(log, "run every node with --cluster") != NULL);
  CHECK(strstr(log, "--cluster needs a PostgreSQL store") != NULL);
  CHECK(strstr(log, "no user, password or path") != NULL);
  srv_rmdir(&p);
}

/* Registrations are limited per address (register-burst, default 10) for
 * the whole cluster, not per node: a client that goes round the three nodes
 * gets no more than one node would give it (alice, bob, carol, dave and
 * dave's recovery took 5;
 * register-rate, 2 a minute, may add one while this runs). */
static void test_cluster_limits(void) {
  int i, ok = 0, refused = 0;
  for (i = 0; i < 3 * 10; i++) {
    struct sotto_net *c = srv_connect(&node[i % NODES], &ctx, 1);
    uint8_t ik[33] = {7};
    char name[32];
    uint32_t dev;
    uint8_t secret[SOTTO_SRV_SECRET_LEN];
    int rc;
    if (!c) continue;
    snprintf(name, sizeof name, "lim%d", i);
    rc = sotto_net_register(c, name, ik, sizeof ik, &dev, secret);
    if (rc == 0)
      ok++;
    else
      refused++;
    sotto_net_close(c);
  }
  printf("cluster limits: %d registrations accepted, %d refused across %d nodes\n", ok, refused, NODES);
  CHECK(ok >= 1);
  CHECK(ok <= 9);
  CHECK(refused >= 20);
  {
    const char *m = metric_line(0, "sotto_cluster_limit_checks_total{node=\"n0\",where=\"redis\"}");
    CHECK(m[0] != 0 && strcmp(m, "sotto_cluster_limit_checks_total{node=\"n0\",where=\"redis\"} 0") != 0);
  }
}

/* Link slots live in Redis (srv_cluster.c), so the two devices of a link
 * may reach different nodes: the new device opens and polls on node 0,
 * alice's device 1 reads the keys and puts the blob on node 1, the new
 * device replies on node 0 and device 1 takes the reply on node 1. The code
 * is then refused on node 2 (one-time, cluster-wide), and so is every step
 * out of order on another node; the per-address slot limit (4) counts the
 * slots opened on all nodes together. */
static void test_link_across_nodes(void) {
  static uint8_t got[SOTTO_SRV_LINK_MAX_BLOB];
  uint8_t keys[80], blob[3000], reply[64], code[SOTTO_SRV_LINK_CODE_LEN], codes[5][SOTTO_SRV_LINK_CODE_LEN];
  uint8_t state = 9;
  uint32_t ttl = 0;
  size_t glen = 0;
  struct sotto_net *n = NULL, *a = NULL, *x = NULL, *o[5] = {NULL};
  int i;
  randombytes_buf(keys, sizeof keys);
  randombytes_buf(blob, sizeof blob);
  randombytes_buf(reply, sizeof reply);
  REQUIRE_VOID((n = srv_connect(&node[0], &ctx, 1)) != NULL);
  REQUIRE_VOID((a = login_at(1, &alice)) != NULL);
  CHECK_RC(sotto_net_link_open(n, keys, sizeof keys, code, &ttl), 0);
  CHECK(ttl == 600);
  CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), 0);
  CHECK(state == SOTTO_SRV_LINK_WAITING && glen == 0);
  /* node 1: the keys, then the blob, once */
  CHECK_RC(sotto_net_link_put(a, code, NULL, 0, got, sizeof got, &glen), 0);
  CHECK(glen == sizeof keys && memcmp(got, keys, glen) == 0);
  CHECK_RC(sotto_net_link_put(a, code, blob, sizeof blob, got, sizeof got, &glen), 0);
  CHECK_RC(sotto_net_link_put(a, code, blob, sizeof blob, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  /* node 0: the blob */
  CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), 0);
  CHECK(state == SOTTO_SRV_LINK_PROVISIONED && glen == sizeof blob && memcmp(got, blob, glen) == 0);
  CHECK_RC(sotto_net_link_reply(n, code, reply, sizeof reply), 0);
  /* node 2: a second reply is refused; an unauthenticated GET sees the
   * state but not the reply */
  REQUIRE_VOID((x = srv_connect(&node[2], &ctx, 1)) != NULL);
  CHECK_RC(sotto_net_link_reply(x, code, reply, sizeof reply), SOTTO_SRV_E_LINK_CODE);
  CHECK_RC(sotto_net_link_get(x, code, &state, got, sizeof got, &glen), 0);
  CHECK(state == SOTTO_SRV_LINK_REPLIED && glen == 0);
  /* node 1: device 1 takes the reply, which closes the slot */
  CHECK_RC(sotto_net_link_get(a, code, &state, got, sizeof got, &glen), 0);
  CHECK(state == SOTTO_SRV_LINK_REPLIED && glen == sizeof reply && memcmp(got, reply, glen) == 0);
  /* node 2 (and every node): the code is used */
  CHECK_RC(sotto_net_link_get(x, code, &state, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  CHECK_RC(sotto_net_link_reply(x, code, reply, sizeof reply), SOTTO_SRV_E_LINK_CODE);
  CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  CHECK_RC(sotto_net_link_put(a, code, NULL, 0, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
  /* the per-address limit is the cluster's: 4 open slots from this address
   * on nodes 0, 1, 2, 0, and a fifth is refused on node 1 */
  for (i = 0; i < 5; i++) {
    REQUIRE_VOID((o[i] = srv_connect(&node[i % NODES], &ctx, 1)) != NULL);
    CHECK_RC(sotto_net_link_open(o[i], keys, sizeof keys, codes[i], &ttl), i < 4 ? 0 : SOTTO_SRV_E_RATE);
  }
  /* a slot opened on node 2 is read on node 0 by its code */
  CHECK_RC(sotto_net_link_get(n, codes[2], &state, got, sizeof got, &glen), 0);
  CHECK(state == SOTTO_SRV_LINK_WAITING);
  CHECK(strstr(metric_line(1, "sotto_cluster_link_ops_total{node=\"n1\",result=\"redis\"}"), "} 0") == NULL);
  CHECK(strstr(metric_line(1, "sotto_cluster_link_ops_total{node=\"n1\",result=\"local\"}"), "} 0") != NULL);
  for (i = 0; i < 5; i++) sotto_net_close(o[i]);
  sotto_net_close(x);
  sotto_net_close(a);
  sotto_net_close(n);
  fprintf(stderr, "cluster: a link across nodes 0 and 1, the code refused on node 2\n");
}

/* ERR(30) across nodes (docs/protocol-server.md, "Mismatched devices"):
 * gina's device 1 publishes her signed list {1} on node 0; alice's
 * SEND_MULTI to {1, 2} on node 1 is refused with an ERR(30) that carries
 * that list, byte for byte what DEVLIST_GET answers on node 2; nothing is
 * queued for gina. */
static void test_mismatch_across_nodes(void) {
  static struct sotto_srv_send_multi m;
  static uint8_t list[SOTTO_DEVLIST_MAX_LEN], got[SOTTO_SRV_MAX_DEVLIST], cur[SOTTO_SRV_MAX_DEVLIST];
  const uint32_t one[] = {1};
  uint64_t ids[SOTTO_SRV_MAX_DEVICES], ts = 0;
  size_t len, glen = 0, clen = 0;
  struct sotto_net *g = NULL, *a = NULL, *x = NULL;
  REQUIRE_VOID((len = srv_sign_devlist(list, "gina", gina_pub, gina_priv, 1, one, 1, NULL)) > 0);
  REQUIRE_VOID((g = login_at(0, &gina)) != NULL);
  CHECK_RC(sotto_net_devlist_put(g, list, len), 0);
  REQUIRE_VOID((a = login_at(1, &alice)) != NULL);
  memset(&m, 0, sizeof m);
  m.username.p = (const uint8_t *)"gina";
  m.username.len = 4;
  m.n = 2;
  m.e[0].device_id = 1;
  m.e[1].device_id = 2;
  m.e[0].type = m.e[1].type = 1;
  m.e[0].body = m.e[1].body = (const uint8_t *)"stale";
  m.e[0].body_len = m.e[1].body_len = 5;
  CHECK_RC(sotto_net_send_multi_list(a, &m, ids, &ts, got, sizeof got, &glen), SOTTO_SRV_E_MISMATCHED_DEVICES);
  REQUIRE_VOID((x = login_at(2, &alice)) != NULL);
  CHECK_RC(sotto_net_devlist_get(x, "gina", cur, sizeof cur, &clen), 0);
  CHECK(glen > 0 && glen == len && glen == clen && memcmp(got, cur, clen) == 0 && memcmp(got, list, len) == 0);
  sotto_net_close(x);
  sotto_net_close(a);
  sotto_net_close(g);
  fprintf(stderr, "cluster: ERR(30) on node 1 carries the list published on node 0 (%zu bytes)\n", glen);
}

/* 1 if c is closed by the server with code within WAIT_MS. */
static int closed_with(struct sotto_net *c, int code) {
  struct sotto_net_event ev;
  int closed = 0;
  while (!closed && sotto_net_next_event(c, WAIT_MS, &ev) == 1) {
    if (ev.kind == SOTTO_NET_EV_CLOSE) closed = ev.code == code ? 1 : -1;
    sotto_net_event_clear(&ev);
  }
  return closed == 1;
}

/* An account unregistered, or recovered, on one node: the live connections
 * of its devices on the other nodes are closed too. */
static void test_gone_across_nodes(void) {
  struct account c2 = {"carol", 0, {0}}, d2 = {"dave", 0, {0}};
  struct sotto_net *a, *b, *x;
  uint8_t code[SOTTO_SRV_RECOVERY_LEN], ik[33] = {9}, secret[SOTTO_SRV_SECRET_LEN];
  uint32_t dev;
  /* carol: device 1 on node 0 unregisters; device 2 is on node 1. */
  a = login_at(0, &carol);
  REQUIRE_VOID(a != NULL);
  CHECK_RC(sotto_net_add_device(a, &c2.dev, c2.secret), 0);
  b = login_at(1, &c2);
  REQUIRE_VOID(b != NULL);
  CHECK(next_of(b, SOTTO_NET_EV_DRAINED, &(struct sotto_net_event){0}));
  CHECK_RC(sotto_net_unregister(a), 0);
  CHECK(closed_with(b, SOTTO_SRV_E_DEVICE_REMOVED));
  sotto_net_close(b);
  sotto_net_close(a);
  /* dave: device 1 on node 0, device 2 on node 2; recovered from node 1. */
  a = login_at(0, &dave);
  REQUIRE_VOID(a != NULL);
  randombytes_buf(code, sizeof code);
  CHECK_RC(sotto_net_set_recovery(a, code), 0);
  CHECK_RC(sotto_net_add_device(a, &d2.dev, d2.secret), 0);
  b = login_at(2, &d2);
  REQUIRE_VOID(b != NULL);
  CHECK(next_of(b, SOTTO_NET_EV_DRAINED, &(struct sotto_net_event){0}));
  x = srv_connect(&node[1], &ctx, 1);
  REQUIRE_VOID(x != NULL);
  CHECK_RC(sotto_net_recover(x, "dave", code, ik, sizeof ik, &dev, secret), 0);
  CHECK(closed_with(b, SOTTO_SRV_E_DEVICE_REMOVED));
  CHECK(closed_with(a, SOTTO_SRV_E_DEVICE_REMOVED));
  sotto_net_close(x);
  sotto_net_close(b);
  sotto_net_close(a);
  printf("cluster: unregister and recover closed the devices' connections on other nodes\n");
}

static int pick_live(int not) {
  int i, k = rand() % NODES;
  for (i = 0; i < NODES; i++) {
    int j = (k + i) % NODES;
    if (j != not && node[j].pid > 0) return j;
  }
  return -1;
}

static unsigned test_kills(void) {
  uint32_t pend_req[WINDOW], pend_seq[WINDOW];
  unsigned n_pend, r, kills = 0, acked_total = 0, reconnects = 0;
  for (r = 0; r < ROUNDS; r++) {
    int na = pick_live(-1), nb = pick_live(na), victim;
    struct sotto_net *a = na >= 0 ? login_at(na, &alice) : NULL, *b = nb >= 0 ? login_at(nb, &bob) : NULL;
    int64_t kill_at;
    if (!a || !b) {
      CHECK(!"login on a live node");
      sotto_net_close(a);
      sotto_net_close(b);
      break;
    }
    n_pend = 0;
    kill_at = mono_ms() + 100 + rand() % 400;
    victim = rand() % 2 ? na : nb;
    while (mono_ms() < kill_at + 300) {
      struct sotto_net_event ev;
      struct pollfd pf[2] = {{sotto_net_fd(a), POLLIN, 0}, {sotto_net_fd(b), POLLIN, 0}};
      int rc, lost = 0;
      if (kill_at && mono_ms() >= kill_at) {
        /* Under load: alice's SENDs in flight, bob's ACKs in flight. */
        srv_kill(&node[victim]);
        kills++;
        kill_at = 0;
      }
      while (n_pend < WINDOW && next_seq < MAX_SEQ) {
        uint8_t body[BODY_LEN];
        uint32_t req;
        make_body(body, next_seq);
        if (sotto_net_send_async(a, "bob", 1, 1, body, BODY_LEN, &req) != 0) break;
        pend_req[n_pend] = req;
        pend_seq[n_pend++] = next_seq++;
      }
      poll(pf, 2, 5);
      while ((rc = sotto_net_next_event(a, 0, &ev)) == 1) {
        if (ev.kind == SOTTO_NET_EV_ANSWER) {
          unsigned k;
          for (k = 0; k < n_pend; k++)
            if (pend_req[k] == ev.req_id) break;
          if (k < n_pend) {
            if (ev.code == 0 && ev.payload_len == 16) {
              struct sotto__rd rd;
              uint64_t id = 0;
              sotto__rd_init(&rd, ev.payload, ev.payload_len);
              if (sotto__rd_u64be(&rd, &id) == 0) {
                acked_id[pend_seq[k]] = id;
                acked_total++;
              }
            }
            pend_req[k] = pend_req[n_pend - 1];
            pend_seq[k] = pend_seq[--n_pend];
          }
        }
        sotto_net_event_clear(&ev);
      }
      if (rc < 0 || rc > 1) lost |= 1;
      while ((rc = sotto_net_next_event(b, 0, &ev)) == 1) {
        if (ev.kind == SOTTO_NET_EV_MSG && check_msg(&ev) && rand() % 5 != 0) {
          uint32_t req;
          (void)sotto_net_ack_async(b, ev.id, &req);
        }
        sotto_net_event_clear(&ev);
      }
      if (rc < 0 || rc > 1) lost |= 2;
      /* A client whose node died reconnects to another one at once. */
      if (lost & 1) {
        sotto_net_close(a);
        n_pend = 0; /* unanswered: not acknowledged, may or may not arrive */
        if ((na = pick_live(-1)) < 0 || (a = login_at(na, &alice)) == NULL) break;
        reconnects++;
      }
      if (lost & 2) {
        sotto_net_close(b);
        if ((nb = pick_live(-1)) < 0 || (b = login_at(nb, &bob)) == NULL) break;
        reconnects++;
      }
    }
    sotto_net_close(a);
    sotto_net_close(b);
    if (start_node(victim) != 0) {
      CHECK(!"restart after SIGKILL");
      break;
    }
  }
  CHECK(kills >= 10);
  CHECK(reconnects >= kills);
  fprintf(stderr, "cluster: %u node kills, %u reconnects to other nodes, %u acked so far\n", kills, reconnects,
          acked_total);
  return kills;
}

/* Drains bob's queue from node i; 1 if DRAINED came. */
static int drain_bob(int i) {
  struct sotto_net *b = NULL;
  int drained = 0, t;
  /* A node that has not used its store since PostgreSQL came back finds
   * out with its next batch, which fails (and reconnects): a bounded retry. */
  for (t = 0; t < 10 && !b; t++)
    if ((b = login_at(i, &bob)) == NULL) usleep(200000);
  int64_t deadline = mono_ms() + 20000;
  CHECK(b != NULL);
  while (b && !drained && mono_ms() < deadline) {
    struct sotto_net_event ev;
    int rc = sotto_net_next_event(b, 1000, &ev);
    if (rc < 0 || rc > 1) break;
    if (rc == 1) {
      if (ev.kind == SOTTO_NET_EV_MSG && check_msg(&ev)) {
        uint32_t req;
        (void)sotto_net_ack_async(b, ev.id, &req);
      }
      if (ev.kind == SOTTO_NET_EV_DRAINED) drained = 1;
      sotto_net_event_clear(&ev);
    }
  }
  if (b) CHECK_RC(sotto_net_ping(b), 0);
  sotto_net_close(b);
  return drained;
}

static void test_redis_loss(void) {
  struct sotto_net *a = login_at(0, &alice), *b = login_at(1, &bob);
  struct sotto_net_event ev;
  uint32_t seq = 0, first = 0;
  int i, ok = 1, up = 0;
  char *r;
  REQUIRE_VOID(a && b);
  CHECK(next_of(b, SOTTO_NET_EV_DRAINED, &ev));
  redis_kill();
  /* Under load: every SEND is acknowledged (PostgreSQL is there) and every
   * one arrives at bob's live connection on the other node, now by
   * polling. */
  for (i = 0; i < 20; i++) {
    CHECK_RC(send_one(a, &seq), 0);
    if (i == 0) first = seq;
  }
  for (uint32_t q = first; q <= seq; q++) ok &= wait_seen(b, q, WAIT_MS);
  CHECK(ok);
  CHECK(strstr(metric_line(1, "sotto_cluster_redis_up{"), "} 0") != NULL);
  {
    /* Link slots fall back to node 1's memory (a slot works on that node). */
    struct sotto_net *n = srv_connect(&node[1], &ctx, 1);
    uint8_t keys[40] = {1}, code[SOTTO_SRV_LINK_CODE_LEN], got[64], state = 9;
    uint32_t ttl;
    size_t glen = 0;
    CHECK(n != NULL);
    if (n) {
      CHECK_RC(sotto_net_link_open(n, keys, sizeof keys, code, &ttl), 0);
      CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), 0);
      CHECK(state == SOTTO_SRV_LINK_WAITING);
      sotto_net_close(n);
    }
    CHECK(strstr(metric_line(1, "sotto_cluster_link_ops_total{node=\"n1\",result=\"local\"}"), "} 0") ==
          NULL);
  }
  r = http_get(1, "/readyz");
  CHECK(strstr(r, "200 OK") && strstr(r, "degraded: node n1: redis down"));
  free(r);
  CHECK(redis_start() == 0);
  for (i = 0; i < 50 && !up; i++) {
    up = strstr(metric_line(0, "sotto_cluster_redis_up{"), "} 1") && strstr(metric_line(1, "sotto_cluster_redis_up{"), "} 1");
    if (!up) usleep(100000);
  }
  CHECK(up);
  r = http_get(1, "/readyz");
  CHECK(strstr(r, "200 OK") && strstr(r, "\r\n\r\nready\n"));
  free(r);
  /* Pushes again: announced by node 0 (its counter moves). */
  {
    char before[256];
    snprintf(before, sizeof before, "%s", metric_line(0, "sotto_cluster_announces_total{node=\"n0\",dir=\"out\"}"));
    CHECK_RC(send_one(a, &seq), 0);
    CHECK(wait_seen(b, seq, WAIT_MS));
    CHECK(strcmp(before, metric_line(0, "sotto_cluster_announces_total{node=\"n0\",dir=\"out\"}")) != 0);
  }
  fprintf(stderr, "cluster: redis killed under load: 20 sent, delivered by polling; push resumed\n");
  sotto_net_close(a);
  sotto_net_close(b);
}

static void test_pg_loss(void) {
  const char *stop = getenv("SOTTO_TEST_PG_STOP"), *start = getenv("SOTTO_TEST_PG_START");
  struct sotto_net *a = login_at(2, &alice), *b = login_at(0, &bob);
  struct sotto_net_event ev;
  uint32_t seq;
  int rc, i, refused = 0;
  REQUIRE_VOID(stop && start && a && b);
  CHECK(next_of(b, SOTTO_NET_EV_DRAINED, &ev));
  CHECK(system(stop) == 0);
  for (i = 0; i < 3; i++) {
    rc = send_one(a, &seq);
    CHECK(rc != 0); /* refused, never acknowledged without a commit */
    refused += rc != 0;
    CHECK(acked_id[seq] == 0);
  }
  CHECK(system(start) == 0);
  for (i = 0; i < 75; i++) {
    if ((rc = send_one(a, &seq)) == 0) break;
    usleep(200000);
  }
  CHECK_RC(rc, 0);
  CHECK(wait_seen(b, seq, 10000));
  fprintf(stderr, "cluster: postgresql stopped: %d SENDs refused, resumed after %d retries\n", refused, i);
  sotto_net_close(a);
  sotto_net_close(b);
}

/* ---- the key-transparency log in a cluster ------------------------------------------------ */

static struct srv_proc ktn[NODES];
static const char *kt_extra[NODES][24];
static char kt_names[NODES][16], kt_wit_arg[128];
static struct sotto_net_ctx *kt_ctx; /* pinned to these nodes' certificate, not the others' */

/* One request on c, its answer's payload (malloc'd) or ERR code (< 0 as -code). */
static int kt_call_once(struct sotto_net *c, uint8_t type, const uint8_t *p, size_t len, uint8_t **out,
                        size_t *out_len) {
  static uint32_t id = 1000;
  struct sotto_net_event ev;
  uint32_t want = ++id;
  *out = NULL;
  *out_len = 0;
  if (!c || sotto_net_write_frame(c, type, want, p, len) != 0) return -1000;
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

/* kt_call_once, again while the answer is ERR 44 (the name is not in the
 * log yet: a node logs new names asynchronously), as clients do (<= 15 s:
 * the nodes here hold new names 2 s). */
static int kt_call(struct sotto_net *c, uint8_t type, const uint8_t *p, size_t len, uint8_t **out, size_t *out_len) {
  int rc, i;
  for (i = 0;; i++) {
    rc = kt_call_once(c, type, p, len, out, out_len);
    if (rc != -(int)SOTTO_SRV_E_KT_PENDING || i == 1500) return rc;
    usleep(10000);
  }
}

/* KT_HEAD of node i: the encoded head and its cosignatures (up to 4). */
static int kt_head_at(int i, uint8_t hb[SOTTO_KT_HEAD_LEN], uint8_t *cos, size_t *n_cos) {
  struct sotto_net *c = srv_connect(&ktn[i], &kt_ctx, 1);
  struct sotto_srv_kt_head kh;
  uint8_t *a;
  size_t n;
  int rc = kt_call(c, SOTTO_SRV_KT_HEAD, NULL, 0, &a, &n);
  if (rc == 0) {
    rc = -2000;
    if (sotto__srv_parse_kt_head(a, n, &kh) == 0 && kh.n_cosigs <= 4) {
      memcpy(hb, kh.head, SOTTO_KT_HEAD_LEN);
      if (cos) memcpy(cos, kh.cosigs, kh.n_cosigs * SOTTO_KT_COSIG_LEN);
      if (n_cos) *n_cos = kh.n_cosigs;
      rc = 0;
    }
    free(a);
  }
  sotto_net_close(c);
  return rc;
}

/* A search proof for user from node i that verifies against the head it
 * comes with: 0 and the version and value. */
static int kt_search_at(int i, const struct sotto_kt_log_id *id, const char *user, uint32_t *version, uint8_t *value,
                        size_t *value_len) {
  struct sotto_net *c = srv_connect(&ktn[i], &kt_ctx, 1);
  struct sotto_srv_kt_proof kp;
  struct sotto_kt_head h;
  struct sotto__wr w;
  uint8_t b[64], *a;
  size_t n;
  int rc;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_kt_search_req(&w, user);
  rc = kt_call(c, SOTTO_SRV_KT_SEARCH, b, w.len, &a, &n);
  if (rc == 0) {
    rc = -3000;
    if (sotto__srv_parse_kt_proof(a, n, &kp) == 0 && sotto_kt_head_decode(&h, kp.head, SOTTO_KT_HEAD_LEN) == 0 &&
        sotto_kt_head_verify(&h, id) == 0)
      rc = sotto_kt_search_verify(version, value, value_len, &h, id, (const uint8_t *)user, strlen(user), kp.proof,
                                  kp.proof_len);
    free(a);
  }
  sotto_net_close(c);
  return rc;
}

static int kt_register_at(int i, const char *name) {
  struct sotto_net *c = srv_connect(&ktn[i], &kt_ctx, 1);
  uint8_t ik[33], secret[32];
  uint32_t dev;
  int rc;
  if (!c) return -1;
  memset(ik, 0x05, sizeof ik);
  memcpy(ik + 1, name, strlen(name) < 32 ? strlen(name) : 32);
  rc = sotto_net_register(c, name, ik, sizeof ik, &dev, secret);
  sotto_net_close(c);
  return rc;
}

/* Every node serves the same head (as bytes). */
static int kt_heads_equal(uint8_t hb[SOTTO_KT_HEAD_LEN]) {
  uint8_t other[SOTTO_KT_HEAD_LEN];
  int i;
  if (kt_head_at(0, hb, NULL, NULL) != 0) return 0;
  for (i = 1; i < NODES; i++)
    if (kt_head_at(i, other, NULL, NULL) != 0 || memcmp(other, hb, SOTTO_KT_HEAD_LEN) != 0) return 0;
  return 1;
}

static void test_kt_cluster(void) {
  uint8_t seed[32], wpk[32], wsk[64], hb[SOTTO_KT_HEAD_LEN], hb2[SOTTO_KT_HEAD_LEN], key[64];
  uint8_t value[SOTTO_KT_MAX_VALUE_LEN], cos[4 * SOTTO_KT_COSIG_LEN], mine[SOTTO_KT_COSIG_LEN];
  char pkhex[65], path[300], to[300], name[32];
  struct sotto_kt_log_id id;
  struct sotto_kt_head h;
  struct sotto_kt_dir *d = NULL;
  struct sotto_kt_witness *wt = NULL;
  size_t vlen, ncos = 0;
  uint32_t version;
  pid_t kids[NODES];
  int i, j, rc, failed = 0;
  FILE *f;

  randombytes_buf(seed, sizeof seed);
  crypto_sign_seed_keypair(wpk, wsk, seed);
  sodium_bin2hex(pkhex, sizeof pkhex, wpk, sizeof wpk);
  snprintf(kt_wit_arg, sizeof kt_wit_arg, "w1:%s", pkhex);
  for (i = 0; i < NODES; i++) {
    int k = 0;
    REQUIRE_VOID(srv_mkdir(&ktn[i], "ktcluster") == 0);
    snprintf(kt_names[i], sizeof kt_names[i], "k%d", i);
    kt_extra[i][k++] = "--cluster";
    kt_extra[i][k++] = redis_url;
    kt_extra[i][k++] = "--node-name";
    kt_extra[i][k++] = kt_names[i];
    kt_extra[i][k++] = "--kt";
    kt_extra[i][k++] = "1";
    /* new names wait 2 s for the log: long enough to see other nodes
     * refuse them meanwhile (ERR 44) */
    kt_extra[i][k++] = "--kt-log-delay-ms";
    kt_extra[i][k++] = "2000";
    kt_extra[i][k++] = "--bundle-rate"; /* KT requests share this limit: the waits above ask often */
    kt_extra[i][k++] = "1e9";
    kt_extra[i][k++] = "--bundle-burst";
    kt_extra[i][k++] = "1e9";
    kt_extra[i][k++] = "--kt-witness";
    kt_extra[i][k++] = kt_wit_arg;
    kt_extra[i][k++] = "--register-burst";
    kt_extra[i][k++] = "1000";
    kt_extra[i][k++] = "--register-prefix-burst";
    kt_extra[i][k++] = "1000";
    kt_extra[i][k++] = "--log-level";
    kt_extra[i][k++] = getenv("SRVTEST_KEEP_LOGS") ? "2" : "0";
    kt_extra[i][k] = NULL;
  }
  for (i = 1; i < NODES; i++) memcpy(ktn[i].store, ktn[0].store, sizeof ktn[0].store);
  REQUIRE_VOID(srv_start(&ktn[0], kt_extra[0]) == 0);
  /* One TLS identity and one log key (DATA/kt.key) for every node. */
  for (i = 1; i < NODES; i++) {
    static const char *const files[] = {"tls.key", "tls.crt", "kt.key"};
    for (j = 0; j < 3; j++) {
      snprintf(path, sizeof path, "%s/%s", ktn[0].dir, files[j]);
      snprintf(to, sizeof to, "%s/%s", ktn[i].dir, files[j]);
      REQUIRE_VOID(copy_file(path, to) == 0);
    }
    REQUIRE_VOID(srv_start(&ktn[i], kt_extra[i]) == 0);
  }
  snprintf(path, sizeof path, "%s/kt.key", ktn[0].dir);
  REQUIRE_VOID((f = fopen(path, "rb")) != NULL);
  j = fread(key, 1, sizeof key, f) == sizeof key;
  fclose(f);
  REQUIRE_VOID(j && sotto_kt_dir_new(&d, key, key + 32) == 0);
  sotto_kt_dir_log_id(&id, d);
  sotto_kt_dir_free(d);
  sodium_memzero(key, sizeof key);

  /* A registration on node A (0) is proved through node B (1) and C (2),
   * which serve the same head. */
  CHECK_RC(kt_register_at(0, "kim"), 0);
  /* Node A logs the new name after answering (asynchronously, here after
   * 2 s); until then no node serves it: ERR 44 from node B (kt_call below
   * waits that out). */
  {
    struct sotto_net *c = srv_connect(&ktn[1], &kt_ctx, 1);
    struct sotto__wr w;
    uint8_t b[64], *a = NULL;
    size_t n;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_search_req(&w, "kim");
    CHECK_RC(kt_call_once(c, SOTTO_SRV_KT_SEARCH, b, w.len, &a, &n), -(int)SOTTO_SRV_E_KT_PENDING);
    free(a);
    if (c) sotto_net_close(c);
  }
  for (i = 1; i < NODES; i++) {
    vlen = sizeof value;
    CHECK_RC(kt_search_at(i, &id, "kim", &version, value, &vlen), 0);
    CHECK(version == 0 && vlen == 33 && memcmp(value + 1, "kim", 3) == 0);
  }
  CHECK(kt_heads_equal(hb));
  CHECK(sotto_kt_head_decode(&h, hb, sizeof hb) == 0 && sotto_kt_head_verify(&h, &id) == 0 && h.tree_size == 1);

  /* Registrations on every node at once (one process per node): one
   * appender at a time, each entry on top of the others'. */
  for (i = 0; i < NODES; i++) {
    if ((kids[i] = fork()) == 0) {
      int bad = 0;
      kt_ctx = NULL; /* the child's own TLS context */
      for (j = 0; j < 5; j++) {
        /* no look-alike digits: the label is the canonical name */
        snprintf(name, sizeof name, "kt%cx%c", 'a' + i, 'a' + j);
        if (kt_register_at(i, name) != 0) bad++;
      }
      _exit(bad);
    }
  }
  for (i = 0; i < NODES; i++) {
    int st = 0;
    if (kids[i] <= 0 || waitpid(kids[i], &st, 0) != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0) failed++;
  }
  CHECK(failed == 0);
  /* Every name, searched through every node: its own key, version 0. */
  for (i = 0; i < NODES; i++)
    for (j = 0; j < 5; j++) {
      int n = (i + j + 1) % NODES;
      snprintf(name, sizeof name, "kt%cx%c", 'a' + i, 'a' + j);
      vlen = sizeof value;
      rc = kt_search_at(n, &id, name, &version, value, &vlen);
      if (rc != 0) fprintf(stderr, "kt search for %s through node %d: %d\n", name, n, rc);
      CHECK_RC(rc, 0);
      CHECK(rc == 0 && version == 0 && vlen == 33 && memcmp(value + 1, name, strlen(name)) == 0);
    }
  CHECK(kt_heads_equal(hb));
  CHECK(sotto_kt_head_decode(&h, hb, sizeof hb) == 0 && h.tree_size >= 2 && h.tree_size <= 1 + NODES * 5);

  /* A witness follows the log through node C (2), cosigns through node A
   * (0); node B (1) serves the cosignature. */
  REQUIRE_VOID(sotto_kt_witness_new(&wt, &id) == 0);
  {
    struct sotto_net *c = srv_connect(&ktn[2], &kt_ctx, 1);
    struct sotto_srv_kt_entry e[SOTTO_SRV_KT_MAX_UPDATES];
    struct sotto__wr w;
    uint8_t b[16], *a;
    size_t n, k = 0, x;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_updates_req(&w, 0, SOTTO_SRV_KT_MAX_UPDATES);
    CHECK_RC(kt_call(c, SOTTO_SRV_KT_UPDATES, b, w.len, &a, &n), 0);
    CHECK(a && sotto__srv_parse_kt_updates(a, n, e, SOTTO_SRV_KT_MAX_UPDATES, SOTTO_KT_MAX_UPDATE_LEN, &k) == 0);
    CHECK(k == h.tree_size);
    for (x = 0; a && x < k; x++) {
      struct sotto_kt_head eh;
      CHECK(sotto_kt_head_decode(&eh, e[x].head, SOTTO_KT_HEAD_LEN) == 0 &&
            sotto_kt_witness_apply(wt, e[x].update, e[x].update_len, &eh) == 0);
    }
    free(a);
    sotto_net_close(c);
  }
  CHECK_RC(sotto_kt_witness_cosign(mine, wt, seed, (uint64_t)time(NULL), &h), 0);
  {
    struct sotto_net *c = srv_connect(&ktn[0], &kt_ctx, 1);
    uint8_t b[SOTTO_KT_SIGN_PK_LEN + SOTTO_KT_HEAD_LEN + SOTTO_KT_COSIG_LEN], *a;
    struct sotto__wr w;
    size_t n;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_cosign_req(&w, wpk, hb, mine);
    CHECK_RC(kt_call(c, SOTTO_SRV_KT_COSIGN, b, w.len, &a, &n), 0);
    free(a);
    sotto_net_close(c);
  }
  CHECK(kt_head_at(1, hb2, cos, &ncos) == 0 && memcmp(hb2, hb, sizeof hb) == 0 && ncos == 1 &&
        sotto_kt_cosig_verify(cos, wpk, &h, &id) == 0);

  /* A restarted node: the log is intact, the cosignature still served,
   * and it appends on top of what the others logged meanwhile. */
  CHECK(srv_stop(&ktn[1]) == 0);
  CHECK_RC(kt_register_at(2, "whiledown"), 0);
  vlen = sizeof value;
  CHECK_RC(kt_search_at(2, &id, "whiledown", &version, value, &vlen), 0); /* logged (waits out ERR 44) */
  REQUIRE_VOID(srv_start(&ktn[1], kt_extra[1]) == 0);
  CHECK(kt_head_at(1, hb2, cos, &ncos) == 0 && ncos == 0); /* a newer head, not cosigned yet */
  CHECK_RC(kt_register_at(1, "afterrestart"), 0);
  vlen = sizeof value;
  CHECK_RC(kt_search_at(0, &id, "afterrestart", &version, value, &vlen), 0);
  CHECK(kt_heads_equal(hb2));
  {
    struct sotto_kt_head h2;
    CHECK(sotto_kt_head_decode(&h2, hb2, sizeof hb2) == 0 && h2.tree_size == h.tree_size + 2);
  }
  for (i = 0; i < NODES; i++) {
    vlen = sizeof value;
    CHECK_RC(kt_search_at(i, &id, "whiledown", &version, value, &vlen), 0);
    vlen = sizeof value;
    CHECK_RC(kt_search_at(i, &id, "afterrestart", &version, value, &vlen), 0);
    vlen = sizeof value;
    CHECK_RC(kt_search_at(i, &id, "kim", &version, value, &vlen), 0);
    CHECK(version == 0);
  }
  /* The cosigned head is still stored: a witness that follows on gets the
   * entries after it from any node. */
  {
    struct sotto_net *c = srv_connect(&ktn[1], &kt_ctx, 1);
    struct sotto_srv_kt_entry e[SOTTO_SRV_KT_MAX_UPDATES];
    struct sotto__wr w;
    uint8_t b[16], *a;
    size_t n, k = 0, x;
    sotto__wr_init(&w, b, sizeof b);
    sotto__srv_put_kt_updates_req(&w, h.tree_size, SOTTO_SRV_KT_MAX_UPDATES);
    CHECK_RC(kt_call(c, SOTTO_SRV_KT_UPDATES, b, w.len, &a, &n), 0);
    CHECK(a && sotto__srv_parse_kt_updates(a, n, e, SOTTO_SRV_KT_MAX_UPDATES, SOTTO_KT_MAX_UPDATE_LEN, &k) == 0 &&
          k == 2);
    for (x = 0; a && x < k; x++) {
      struct sotto_kt_head eh;
      CHECK(sotto_kt_head_decode(&eh, e[x].head, SOTTO_KT_HEAD_LEN) == 0 &&
            sotto_kt_witness_apply(wt, e[x].update, e[x].update_len, &eh) == 0);
    }
    free(a);
    sotto_net_close(c);
  }
  /* A node with another DATA/kt.key (made on its first start) refuses to
   * start on the stored log instead of serving a log of its own. */
  {
    struct srv_proc bad;
    const char *bad_extra[24];
    char *log;
    size_t n;
    if (srv_mkdir(&bad, "ktcluster-badkey") == 0) {
      for (j = 0; j < 2; j++) {
        static const char *const files[] = {"tls.key", "tls.crt"};
        snprintf(path, sizeof path, "%s/%s", ktn[0].dir, files[j]);
        snprintf(to, sizeof to, "%s/%s", bad.dir, files[j]);
        CHECK(copy_file(path, to) == 0);
      }
      memcpy(bad.store, ktn[0].store, sizeof bad.store);
      memcpy(bad_extra, kt_extra[1], sizeof bad_extra);
      bad_extra[3] = "kbad"; /* --node-name */
      CHECK(srv_start(&bad, bad_extra) != 0);
      log = tu_read_file(bad.log, &n);
      CHECK(log && strstr(log, "every node of a cluster needs the same DATA/kt.key"));
      free(log);
      srv_rmdir(&bad); /* drops the database srv_mkdir made for it (by its directory's name), not the shared one */
    } else {
      CHECK(!"data directory");
    }
  }
  fprintf(stderr, "cluster: kt: one log on %d nodes, %llu entries, same head everywhere, cosignature shared\n", NODES,
          (unsigned long long)h.tree_size + 2);
  sotto_kt_witness_free(wt);
  sodium_memzero(wsk, sizeof wsk);
  sotto_net_ctx_free(kt_ctx);
  kt_ctx = NULL;
  for (i = 0; i < NODES; i++) CHECK(srv_stop(&ktn[i]) == 0);
  if (getenv("SRVTEST_KEEP_DB")) {
    fprintf(stderr, "kt cluster store kept: %s\n", ktn[0].store);
    return;
  }
  for (i = 0; i < NODES; i++) srv_rmdir(&ktn[i]);
}

/* Link slots on Redis Cluster (srv_cluster.c): a redis-server with
 * cluster-enabled and every hash slot on it refuses a script whose keys
 * are not all in KEYS or not in one slot (CROSSSLOT), which a node then
 * serves from its memory (result="local"). One node on such a Redis: a
 * whole link (open, keys, blob, reply, consumed), the per-address limit
 * with the consumed slot's place given back, every step through Redis
 * (no local, no bad reply), and every link key in Redis carrying one of the
 * three hash tags. Skipped (said) when redis-cli is missing. */
static void test_link_redis_cluster(void) {
  static uint8_t got[SOTTO_SRV_LINK_MAX_BLOB];
  struct srv_proc p;
  struct sotto_net_ctx *lctx = NULL; /* this node's own certificate */
  struct account acc = {"linker", 0, {0}};
  char port[16] = "", bus[16] = "", url[64], cmd[256], out[4096], nodes_conf[64], rlog[96];
  const char *ex[] = {"--cluster", url, "--node-name", "nc", NULL};
  uint8_t keys[80], blob[2000], reply[64], code[SOTTO_SRV_LINK_CODE_LEN], codes[5][SOTTO_SRV_LINK_CODE_LEN];
  uint8_t ik[33] = {5}, state = 9;
  uint32_t ttl = 0;
  size_t glen = 0, n_out;
  struct sotto_net *n = NULL, *a = NULL, *o[5] = {NULL};
  pid_t rp;
  FILE *f;
  int i, up = 0;
  if (system("command -v redis-cli >/dev/null 2>&1") != 0) {
    printf("cluster: SKIP link slots on Redis Cluster (no redis-cli)\n");
    return;
  }
  /* The cluster bus port is named: by default Redis takes port + 10000,
   * which does not exist for a free port above 55535 (redis-server then
   * exits at once) and may be taken below it. */
  REQUIRE_VOID(free_port(port) == 0);
  do {
    REQUIRE_VOID(free_port(bus) == 0);
  } while (strcmp(bus, port) == 0);
  snprintf(nodes_conf, sizeof nodes_conf, "sotto-test-nodes-%s.conf", port);
  snprintf(rlog, sizeof rlog, "/tmp/sotto-test-redis-cluster-%s.log", port);
  snprintf(cmd, sizeof cmd, "/tmp/%s", nodes_conf);
  unlink(cmd);
  if ((rp = fork()) == 0) {
    int dn = open(rlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (dn >= 0) {
      dup2(dn, 1);
      dup2(dn, 2);
    }
    execlp("redis-server", "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
           "no", "--daemonize", "no", "--dir", "/tmp", "--cluster-enabled", "yes", "--cluster-port", bus,
           "--cluster-config-file", nodes_conf, (char *)NULL);
    _exit(127);
  }
  REQUIRE_VOID(rp > 0);
  /* every hash slot on this one node, then wait for cluster_state:ok */
  for (i = 0; i < 100 && !up; i++) {
    usleep(100000);
    snprintf(cmd, sizeof cmd, "redis-cli -p %s cluster addslotsrange 0 16383 >/dev/null 2>&1", port);
    (void)!system(cmd);
    snprintf(cmd, sizeof cmd, "redis-cli -p %s cluster info 2>/dev/null | grep -q '^cluster_state:ok'", port);
    up = system(cmd) == 0;
  }
  CHECK(up);
  snprintf(url, sizeof url, "redis://127.0.0.1:%s", port);
  if (!up || srv_mkdir(&p, "rcluster") != 0 || srv_start(&p, ex) != 0) {
    CHECK(!"a node on a Redis Cluster starts");
    if (!up) {
      char *rl = tu_read_file(rlog, &n_out);
      fprintf(stderr, "cluster: redis-server (port %s, bus %s) said:\n%s\n", port, bus, rl ? rl : "(nothing)");
      free(rl);
    }
    kill(rp, SIGKILL);
    waitpid(rp, NULL, 0);
    snprintf(cmd, sizeof cmd, "/tmp/%s", nodes_conf);
    unlink(cmd);
    unlink(rlog);
    return;
  }
  randombytes_buf(keys, sizeof keys);
  randombytes_buf(blob, sizeof blob);
  randombytes_buf(reply, sizeof reply);
  n = srv_connect(&p, &lctx, 1);
  CHECK(n != NULL);
  if (n) {
    CHECK_RC(sotto_net_register(n, acc.name, ik, sizeof ik, &acc.dev, acc.secret), 0);
    sotto_net_close(n);
  }
  n = srv_connect(&p, &lctx, 1);
  a = srv_connect(&p, &lctx, 1);
  CHECK(n && a);
  if (a) CHECK_RC(sotto_net_auth(a, acc.name, acc.dev, acc.secret, NULL, NULL), 0);
  if (n && a) {
    CHECK_RC(sotto_net_link_open(n, keys, sizeof keys, code, &ttl), 0);
    CHECK_RC(sotto_net_link_put(a, code, NULL, 0, got, sizeof got, &glen), 0);
    CHECK(glen == sizeof keys && memcmp(got, keys, glen) == 0);
    CHECK_RC(sotto_net_link_put(a, code, blob, sizeof blob, got, sizeof got, &glen), 0);
    CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), 0);
    CHECK(state == SOTTO_SRV_LINK_PROVISIONED && glen == sizeof blob && memcmp(got, blob, glen) == 0);
    CHECK_RC(sotto_net_link_reply(n, code, reply, sizeof reply), 0);
    CHECK_RC(sotto_net_link_get(a, code, &state, got, sizeof got, &glen), 0);
    CHECK(state == SOTTO_SRV_LINK_REPLIED && glen == sizeof reply && memcmp(got, reply, glen) == 0);
    CHECK_RC(sotto_net_link_get(n, code, &state, got, sizeof got, &glen), SOTTO_SRV_E_LINK_CODE);
    /* the consumed slot gave its place back: 4 more from this address, not 5 */
    for (i = 0; i < 5; i++) {
      if ((o[i] = srv_connect(&p, &lctx, 1)) == NULL) continue;
      CHECK_RC(sotto_net_link_open(o[i], keys, sizeof keys, codes[i], &ttl), i < 4 ? 0 : SOTTO_SRV_E_RATE);
    }
    CHECK(strstr(metric_line_of(&p, "sotto_cluster_link_ops_total{node=\"nc\",result=\"redis\"}"), "} 0") ==
          NULL);
    CHECK(strstr(metric_line_of(&p, "sotto_cluster_link_ops_total{node=\"nc\",result=\"local\"}"), "} 0") !=
          NULL);
    CHECK(strstr(metric_line_of(&p, "sotto_cluster_link_ops_total{node=\"nc\",result=\"bad_reply\"}"), "} 0") !=
          NULL);
    /* the keys: 4 slots, the address's set and the cluster's, each tagged */
    snprintf(cmd, sizeof cmd, "redis-cli -p %s --scan --pattern 'sotto:*link*' 2>/dev/null", port);
    n_out = 0;
    if ((f = popen(cmd, "r")) != NULL) {
      n_out = fread(out, 1, sizeof out - 1, f);
      pclose(f);
    }
    out[n_out] = 0;
    {
      int slots = 0, addrs = 0, alls = 0, other = 0;
      char *line, *save = NULL;
      for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "sotto:{link:", 12) == 0 && strlen(line) == 12 + 32 + 1 && line[44] == '}')
          slots++;
        else if (strncmp(line, "sotto:{linkaddr:", 16) == 0 && strlen(line) == 16 + 32 + 1)
          addrs++;
        else if (strcmp(line, "sotto:{linkall}") == 0)
          alls++;
        else
          other++;
      }
      CHECK(slots == 4 && addrs == 1 && alls == 1 && other == 0);
    }
  }
  for (i = 0; i < 5; i++)
    if (o[i]) sotto_net_close(o[i]);
  if (n) sotto_net_close(n);
  if (a) sotto_net_close(a);
  sotto_net_ctx_free(lctx);
  CHECK(srv_stop(&p) == 0);
  srv_rmdir(&p);
  kill(rp, SIGKILL);
  waitpid(rp, NULL, 0);
  snprintf(cmd, sizeof cmd, "/tmp/%s", nodes_conf);
  unlink(cmd);
  unlink(rlog);
  fprintf(stderr, "cluster: link slots on a Redis Cluster node, every step through Redis\n");
}

int main(int argc, char **argv) {
  int i;
  unsigned missing = 0, delivered = 0, acked = 0;
  uint32_t q;
  (void)argc;
  (void)argv;
  signal(SIGPIPE, SIG_IGN);
  if (!srv_pg()) {
    printf("SKIP: the cluster test needs PostgreSQL (run it through with_pg.sh)\n");
    return 77;
  }
  if (system("command -v redis-server >/dev/null 2>&1") != 0) {
    printf("SKIP: no redis-server (scripts/deps.sh installs it)\n");
    return 77;
  }
  if (sodium_init() < 0) return 1;
  randombytes_buf(body_key, sizeof body_key);
  srand((unsigned)time(NULL));
  if (getenv("SRVTEST_CLUSTER_ONLY_LINK")) { /* for working on link slots on Redis Cluster alone */
    test_link_redis_cluster();
    sotto_net_ctx_free(ctx);
    return test_done("test_cluster");
  }
  if (getenv("SRVTEST_CLUSTER_ONLY_KT")) { /* for working on the log alone */
    REQUIRE(redis_start() == 0);
    test_kt_cluster();
    redis_kill();
    sotto_net_ctx_free(ctx);
    return test_done("test_cluster");
  }
  REQUIRE(redis_start() == 0);
  for (i = 0; i < NODES; i++) {
    int k = 0;
    REQUIRE(srv_mkdir(&node[i], "cluster") == 0);
    snprintf(names[i], sizeof names[i], "n%d", i);
    extra[i][k++] = "--cluster";
    extra[i][k++] = redis_url;
    extra[i][k++] = "--node-name";
    extra[i][k++] = names[i];
    extra[i][k++] = "--send-burst";
    extra[i][k++] = "1000000";
    extra[i][k++] = "--send-rate";
    extra[i][k++] = "1000000";
    extra[i][k++] = "--max-queue";
    extra[i][k++] = "1000000";
    extra[i][k++] = "--max-queue-per-sender";
    extra[i][k++] = "1000000";
    extra[i][k++] = "--log-level";
    extra[i][k++] = getenv("SRVTEST_KEEP_LOGS") ? "2" : "0";
    extra[i][k] = NULL;
  }
  /* One store for all (the other databases srv_mkdir made stay unused). */
  for (i = 1; i < NODES; i++) memcpy(node[i].store, node[0].store, sizeof node[0].store);
  REQUIRE(start_node(0) == 0);
  /* All nodes share one TLS identity: the clients' pin covers the cluster. */
  for (i = 1; i < NODES; i++) {
    char from[300], to[300];
    snprintf(from, sizeof from, "%s/tls.key", node[0].dir);
    snprintf(to, sizeof to, "%s/tls.key", node[i].dir);
    REQUIRE(copy_file(from, to) == 0);
    snprintf(from, sizeof from, "%s/tls.crt", node[0].dir);
    snprintf(to, sizeof to, "%s/tls.crt", node[i].dir);
    REQUIRE(copy_file(from, to) == 0);
    REQUIRE(start_node(i) == 0);
    CHECK(strcmp(node[i].fp, node[0].fp) == 0);
  }
  {
    /* erin, frank, gina: test_concurrent_nodes (registered here, before
     * test_cluster_limits spends the address's registration budget). */
    struct account *acc[7] = {&alice, &bob, &carol, &dave, &erin, &frank, &gina};
    REQUIRE(sotto_keypair_generate(gina_pub, gina_priv) == 0); /* gina signs her list (mismatch test) */
    for (i = 0; i < 7; i++) {
      struct sotto_net *c = srv_connect(&node[i % NODES], &ctx, 1);
      uint8_t ik[33] = {5};
      if (acc[i] == &gina) sotto_pubkey_serialize(ik, gina_pub);
      REQUIRE(c != NULL);
      CHECK_RC(sotto_net_register(c, acc[i]->name, ik, sizeof ik, &acc[i]->dev, acc[i]->secret), 0);
      sotto_net_close(c);
    }
  }
  test_gone_across_nodes();
  test_link_across_nodes();
  test_mismatch_across_nodes();
  test_cluster_limits();
  test_cross_node();
  test_concurrent_nodes();
  test_big_batches();
  test_refusals();
  test_kills();
  test_redis_loss();
  test_pg_loss();
  CHECK(drain_bob(pick_live(-1)));
  for (q = 0; q < next_seq; q++) {
    if (acked_id[q]) acked++;
    if (seen_id[q]) delivered++;
    if (acked_id[q] && !seen_id[q]) missing++;
  }
  printf("cluster: %u sent, %u acked, %u delivered, %u acked-but-missing, %u altered, %u id mismatches\n", next_seq,
         acked, delivered, missing, bad_body, id_mismatch);
  CHECK(acked > 100);
  CHECK(missing == 0);
  CHECK(bad_body == 0);
  CHECK(id_mismatch == 0);
  for (i = 0; i < NODES; i++) CHECK(srv_stop(&node[i]) == 0);
  redis_kill();
  for (i = 0; i < NODES; i++) srv_rmdir(&node[i]);
  /* On nodes of their own and a fresh Redis (the rate-limit buckets above
   * are spent). */
  if (redis_start() == 0) {
    test_kt_cluster();
    redis_kill();
  } else {
    CHECK(!"redis-server for the key-transparency nodes");
  }
  test_link_redis_cluster();
  sotto_net_ctx_free(ctx);
  return test_done("test_cluster");
}

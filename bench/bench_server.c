/* SPDX-License-Identifier: Apache-2.0 */
/* bench_server.c: the sotto-server benchmark (bench/run server).
 *
 *   bench_server [--json] [--seconds S] [--window W] [--rows LIST] [--smoke]
 *
 * --rows LIST (comma-separated: relay, latency, backlog, idle, login,
 * bystander; default all) measures only those row groups, e.g. --rows relay
 * to profile one phase alone; latency needs the relay rate, so it runs the
 * relay row too. Accounts are always registered first. Only the rows
 * measured are printed (and, with --smoke, required).
 *
 * --smoke (what `make check` runs): every row on a small scale (SMOKE_*
 * connections and envelopes, a fraction of a second each), no figure judged;
 * the program fails if any row of g_row_names is not produced or measured
 * nothing (not a finite number, or a rate that is not positive; a row
 * printed that is not in the list fails too, so that a new row is added to
 * the list and required from then on).
 *
 * Starts the real sotto-server and the bare TLS relay floor (relay_floor.c)
 * on free loopback ports, each with a fresh temporary data directory, drives
 * both with the same load generator (server_load.c: real TLS 1.3 with the
 * certificate pinned, one thread, epoll, pipelined requests) and stops them.
 * Rows (docs/benchmarks.md says exactly what each one counts):
 *
 *   relay    delivered envelopes/s, 500 sender/recipient pairs = 1000
 *            connected devices, 200-byte envelopes, every one acked by its
 *            recipient; each sender keeps W SENDs in flight (default 4, as a
 *            client does when one message goes to several devices); the
 *            sender's OK means durable on the server
 *   latency  p50 / p99 send-to-receive in ms, open loop at half the relay
 *            rate (bursts of W envelopes from one sender, spread evenly)
 *   backlog  100,000 envelopes queued for one offline device (enqueue rate of
 *            the first and the last 10,000), then drained: connect, receive
 *            all, ack all
 *   idle     server RSS per idle authenticated TLS connection, 10,000 of them
 *   login    new connections per second: TCP + TLS handshake + HELLO + AUTH
 *            until the DRAINED marker
 *   attach_up, attach_down
 *            MB/s of a file through `sotto send --file` / `sotto receive`
 *            (encryption, TLS, the blob store) next to relay_floor moving
 *            the same bytes (bench_attach.c)
 *   bystander_p99
 *            p99 in ms of one client's DEVICES requests (one at a time, each
 *            a store request through the group commit) while one attacker
 *            pipelines BUNDLE / DEVICES / ACK / KEYS_UPLOAD requests as fast
 *            as it can and never reads an answer (sotto only)
 *
 * relay, latency and login are measured in ROUNDS rounds that alternate
 * between the server and the floor (who goes first alternates too), so that
 * load from other processes lands on both; the table gives medians.
 *
 * Every message is checked: sender, recipient device, type, length and all
 * 200 bytes of content, per-pair order (so nothing lost, duplicated or
 * reordered), increasing server ids, every SEND and ACK answered OK, the
 * queue empty at the end. Any failure stops the program with a one-line error
 * and exit status 1 before anything is printed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "bench_attach.h"
#include "server_load.h"
#include "wire.h"

#ifndef SOTTO_SERVER_BIN
#error "SOTTO_SERVER_BIN must be defined"
#endif
#ifndef RELAY_FLOOR_BIN
#error "RELAY_FLOOR_BIN must be defined"
#endif

#define ROUNDS 5
#define DEFAULT_SECONDS 2.0
#define MAX_SECONDS 3600.0
#define ENV_LEN 200      /* envelope (ciphertext) bytes */
#define RELAY_PAIRS_MAX 500 /* 1000 connected devices */
#define RELAY_PAIRS (g_smoke ? SMOKE_RELAY_PAIRS : RELAY_PAIRS_MAX)
#define DEFAULT_WINDOW 4 /* SENDs in flight per sender (--window) */
#define MAX_WINDOW 64
#define IDLE_CONNS_MAX 10000
#define IDLE_CONNS (g_smoke ? SMOKE_IDLE_CONNS : IDLE_CONNS_MAX)
#define LOGIN_INFLIGHT 32    /* logins in progress at once */
#define CONNECT_INFLIGHT 256 /* while opening the idle and relay connections */
#define BACKLOG_STEPS 10 /* enqueue rate measured over the first and last of these */
#define BACKLOG_N (g_smoke ? SMOKE_BACKLOG_N : 100000)
#define BACKLOG_STEP (BACKLOG_N / BACKLOG_STEPS)
/* SENDs in flight while enqueueing; in smoke mode a step is only 50 answers,
 * so a window of 256 would answer a whole step in one burst (a rate of
 * millions per second): a step must span several windows. */
#define BACKLOG_WINDOW (g_smoke ? 8 : 256)
#define BACKLOG_ROUNDS 3 /* enqueue + drain, medians reported */
#define REG_CONNS 4
#define REG_WINDOW 128
#define N_DEVS (IDLE_CONNS + 2) /* the last two: backlog recipient and sender */
#define N_DEVS_MAX (IDLE_CONNS_MAX + 2)
#define LAT_TICK_US 200         /* open-loop sender wakes up this often */
#define WAIT_S 60               /* bound on every wait for answers */
#define NOFILE_WANT 65536
/* --smoke: every row, on this scale. */
#define SMOKE_SECONDS 1.5
#define SMOKE_RELAY_PAIRS 16
#define SMOKE_IDLE_CONNS 64
#define SMOKE_BACKLOG_N 500

static int g_smoke;
static const char *g_kt; /* --kt T: the server logs registrations with --kt-threads T */

/* Every row the program prints, in order: --smoke requires each of them. */
static const char *const g_row_names[] = {"relay",          "latency_p50",     "latency_p99",
                                          "backlog_first10k", "backlog_last10k", "backlog_drain",
                                          "idle",           "login",           "bystander_p99",
                                          "attach_up",      "attach_down"};
#define N_ROW_NAMES (sizeof g_row_names / sizeof g_row_names[0])

/* --rows: the row groups to measure (bits), and which group each row of
 * g_row_names belongs to. */
enum { G_RELAY = 1, G_LATENCY = 2, G_BACKLOG = 4, G_IDLE = 8, G_LOGIN = 16, G_BYSTANDER = 32, G_ATTACH = 64,
       G_ALL = 127 };
static const struct {
  const char *name;
  int bit;
} g_groups[] = {{"relay", G_RELAY}, {"latency", G_LATENCY}, {"backlog", G_BACKLOG},
                {"idle", G_IDLE},   {"login", G_LOGIN},     {"bystander", G_BYSTANDER},
                {"attach", G_ATTACH}};
static const int g_row_group[N_ROW_NAMES] = {G_RELAY,   G_LATENCY, G_LATENCY, G_BACKLOG,  G_BACKLOG,
                                             G_BACKLOG, G_IDLE,    G_LOGIN,   G_BYSTANDER,
                                             G_ATTACH,  G_ATTACH};
static int g_rows = G_ALL;

/* Parses --rows LIST into g_rows; -1 on an unknown or empty name. */
static int parse_rows(const char *list) {
  int bits = 0;
  while (*list) {
    size_t n = strcspn(list, ","), i;
    for (i = 0; i < sizeof g_groups / sizeof g_groups[0]; i++)
      if (strlen(g_groups[i].name) == n && strncmp(list, g_groups[i].name, n) == 0) break;
    if (i == sizeof g_groups / sizeof g_groups[0]) return -1;
    bits |= g_groups[i].bit;
    list += n;
    if (*list == ',') list++;
  }
  if (!bits) return -1;
  /* The latency row runs at half the relay rate: it needs the relay row. */
  if (bits & G_LATENCY) bits |= G_RELAY;
  g_rows = bits;
  return 0;
}

/* ---- processes --------------------------------------------------------------- */

struct proc {
  const char *name;
  pid_t pid;
  char dir[128];
  char port[16], mport[16];
  char fp[65];
};

static struct proc g_srv = {.name = "sotto-server"}, g_floor = {.name = "relay_floor"};

static void rm_dir(const char *dir) {
  DIR *d;
  struct dirent *e;
  if (!dir[0] || (d = opendir(dir)) == NULL) return;
  while ((e = readdir(d)) != NULL) {
    char path[512];
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    unlink(path);
  }
  closedir(d);
  rmdir(dir);
}

static void proc_kill(struct proc *p) {
  int st;
  if (p->pid > 0) {
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
    p->pid = 0;
  }
}

static int g_finished; /* set once everything passed */

/* The last lines a server wrote to its log (after a failure). */
static void show_log(const struct proc *p) {
  char path[160], line[512], ring[40][512];
  int n = 0, i;
  FILE *f;
  snprintf(path, sizeof path, "%s/stderr.log", p->dir);
  if (!p->dir[0] || (f = fopen(path, "r")) == NULL) return;
  while (fgets(line, sizeof line, f)) snprintf(ring[n++ % 40], sizeof ring[0], "%s", line);
  fclose(f);
  for (i = n > 40 ? n - 40 : 0; i < n; i++) fprintf(stderr, "  %s log: %s", p->name, ring[i % 40]);
}

/* atexit: a failing run must not leave servers or directories behind. */
static void cleanup(void) {
  proc_kill(&g_srv);
  proc_kill(&g_floor);
  if (!g_finished) {
    show_log(&g_srv);
    show_log(&g_floor);
  }
  rm_dir(g_srv.dir);
  rm_dir(g_floor.dir);
}

static int free_port(char out[16]) {
  struct sockaddr_in a;
  socklen_t l = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &l) != 0) {
    if (fd >= 0) close(fd);
    return -1;
  }
  snprintf(out, 16, "%u", ntohs(a.sin_port));
  close(fd);
  return 0;
}

/* Starts bin with --data/--listen (and --metrics for the server) plus extra
 * arguments, and reads "fingerprint HEX" / "listening" from its stdout. */
static void proc_start(struct proc *p, const char *bin, int metrics, const char *const *extra) {
  const char *argv[72];
  char listen[64], mlisten[64], buf[512], log[160];
  size_t n = 0, got = 0;
  int out[2];
  int64_t deadline = lg_now_ns() + 10 * 1000000000LL;
  snprintf(p->dir, sizeof p->dir, "/tmp/sotto-bench-%s-XXXXXX", p->name);
  if (!mkdtemp(p->dir)) lg_die("mkdtemp: %s", strerror(errno));
  if (free_port(p->port) || (metrics && free_port(p->mport)) || pipe2(out, O_CLOEXEC) != 0)
    lg_die("no free port or pipe");
  snprintf(listen, sizeof listen, "127.0.0.1:%s", p->port);
  snprintf(mlisten, sizeof mlisten, "127.0.0.1:%s", p->mport);
  snprintf(log, sizeof log, "%s/stderr.log", p->dir);
  argv[n++] = bin;
  argv[n++] = "--data";
  argv[n++] = p->dir;
  argv[n++] = "--listen";
  argv[n++] = listen;
  if (metrics) {
    argv[n++] = "--metrics";
    argv[n++] = mlisten;
  }
  while (extra && *extra && n < 70) argv[n++] = *extra++;
  if (extra && *extra) lg_die("too many arguments for %s", bin);
  argv[n] = NULL;
  if ((p->pid = fork()) < 0) lg_die("fork: %s", strerror(errno));
  if (p->pid == 0) {
    int lf = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    dup2(out[1], 1);
    if (lf >= 0) dup2(lf, 2);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  for (;;) {
    struct pollfd pf = {out[0], POLLIN, 0};
    int64_t left = (deadline - lg_now_ns()) / 1000000;
    ssize_t r;
    if (left <= 0 || poll(&pf, 1, (int)left) <= 0) break;
    if ((r = read(out[0], buf + got, sizeof buf - 1 - got)) <= 0) break;
    got += (size_t)r;
    buf[got] = 0;
    if (strstr(buf, "listening")) {
      char *f = strstr(buf, "fingerprint ");
      close(out[0]);
      if (!f || strlen(f) < 12 + 64) break;
      memcpy(p->fp, f + 12, 64);
      p->fp[64] = 0;
      return;
    }
  }
  lg_die("%s did not start (see %s)", p->name, log);
}

/* SIGTERM, wait up to 10 s; a server that does not stop cleanly is an error. */
static void proc_stop(struct proc *p) {
  int st = 0, i;
  kill(p->pid, SIGTERM);
  for (i = 0; i < 1000; i++) {
    if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
      p->pid = 0;
      if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) lg_die("%s did not exit cleanly (status %d)", p->name, st);
      return;
    }
    usleep(10000);
  }
  lg_die("%s did not stop within 10 s of SIGTERM", p->name);
}

/* VmRSS of a process in bytes (what /proc/PID/status says). */
static int64_t rss_of(pid_t pid) {
  char path[64], line[256];
  FILE *f;
  long long kb = -1;
  if (pid > 0)
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  else
    snprintf(path, sizeof path, "/proc/self/status");
  if ((f = fopen(path, "r")) == NULL) lg_die("cannot open %s", path);
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) break;
  fclose(f);
  if (kb < 0) lg_die("no VmRSS in %s", path);
  return (int64_t)kb * 1024;
}

/* One gauge from the server's metrics endpoint (plain HTTP on loopback);
 * missing: -1 if opt, else the bench stops. */
static int64_t metric_get(const struct proc *p, const char *name, int opt) {
  struct sockaddr_in a;
  static char buf[65536];
  const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
  size_t len = 0, nl = strlen(name);
  struct timeval tv = {10, 0};
  char *s;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)strtoul(p->mport, NULL, 10));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1))
    lg_die("metrics endpoint unreachable");
  for (;;) {
    ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  buf[len] = 0;
  for (s = buf; (s = strstr(s, name)) != NULL; s += nl)
    if ((s == buf || s[-1] == '\n') && s[nl] == ' ') return strtoll(s + nl + 1, NULL, 10);
  if (opt) return -1;
  lg_die("metric %s not found", name);
}

static int64_t metric(const struct proc *p, const char *name) { return metric_get(p, name, 0); }

/* ---- devices and envelopes ------------------------------------------------------ */

static struct lg_dev g_devs[N_DEVS_MAX];

/* Envelope bytes: pair index, sequence number, the time it was due (latency
 * row), then filler derived from both, so that any corruption or mix-up
 * between pairs fails the comparison. */
static void make_body(uint8_t b[ENV_LEN], uint32_t pair, uint64_t seq, int64_t t_due) {
  size_t i;
  memcpy(b, &pair, 4);
  memcpy(b + 4, &seq, 8);
  memcpy(b + 12, &t_due, 8);
  for (i = 20; i < ENV_LEN; i++) b[i] = (uint8_t)(pair * 131u + (uint32_t)seq * 7u + (uint32_t)i);
}

static int64_t check_body(const uint8_t *b, size_t len, uint32_t pair, uint64_t seq) {
  uint8_t want[ENV_LEN];
  int64_t t;
  if (len != ENV_LEN) lg_die("envelope of %zu bytes, want %d", len, ENV_LEN);
  memcpy(&t, b + 12, 8);
  make_body(want, pair, seq, t);
  if (memcmp(b, want, ENV_LEN) != 0) {
    uint32_t p;
    uint64_t s;
    memcpy(&p, b, 4);
    memcpy(&s, b + 4, 8);
    lg_die(
        "envelope content wrong: got pair %u seq %llu, want pair %u seq %llu (lost, reordered or corrupted)",
        p, (unsigned long long)s, pair, (unsigned long long)seq);
  }
  return t;
}

/* Dies unless f is an OK answer with a payload of want_len bytes. */
static void want_ok(const struct lg_conn *c, const struct sotto_srv_frame *f, size_t want_len,
                    const char *what) {
  if (f->type == SOTTO_SRV_ERR || f->type == SOTTO_SRV_CLOSE) {
    struct sotto_srv_err e;
    if (sotto__srv_parse_err(f->p, f->len, &e) != 0) lg_die("%s: malformed ERR", what);
    lg_die("%s (%s): server answered %s %u (%s)", what, c->dev->user,
           f->type == SOTTO_SRV_ERR ? "ERR" : "CLOSE", e.code, sotto__srv_code_str(e.code));
  }
  if (f->type != SOTTO_SRV_OK) lg_die("%s (%s): unexpected frame type 0x%02x", what, c->dev->user, f->type);
  if (f->len != want_len) lg_die("%s: answer of %zu bytes, want %zu", what, f->len, want_len);
  if (f->req_id == 0 || f->req_id >= c->next_req)
    lg_die("%s: answer to request %u never sent", what, f->req_id);
}

/* Parses a MSG push and checks everything but the body. */
static void want_msg(const struct lg_conn *c, const struct sotto_srv_frame *f, const struct lg_dev *from,
                     struct sotto_srv_env *e) {
  if (f->type != SOTTO_SRV_MSG) want_ok(c, f, 0, "expected a MSG push");
  if (sotto__srv_parse_env(f->p, f->len, e) != 0) lg_die("malformed MSG push");
  if (e->sender.len != strlen(from->user) || memcmp(e->sender.p, from->user, e->sender.len) != 0 ||
      e->sender_device != from->device_id || e->device_id != c->dev->device_id || e->type != 1)
    lg_die("MSG to %s: wrong sender, device or type", c->dev->user);
  if (e->id == 0 || e->id <= c->last_id)
    lg_die("MSG to %s: server id %llu not above the previous %llu", c->dev->user, (unsigned long long)e->id,
           (unsigned long long)c->last_id);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double median_n(const double *v, int n) {
  double s[16];
  if (n < 1 || n > 16) lg_die("median of %d values", n);
  memcpy(s, v, (size_t)n * sizeof s[0]);
  qsort(s, (size_t)n, sizeof s[0], cmp_double);
  return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* ---- one side: a server under test, or the floor ------------------------------- */

struct pair {
  struct lg_conn *snd, *rcv;
  uint64_t sent, oked, recvd, ack_sent, ack_ok;
};

enum { M_REGISTER, M_SETTLE, M_RELAY, M_LOGIN, M_BSEND, M_BDRAIN, M_PING, M_BYSTANDER };

struct side {
  const char *name;
  struct proc *p;
  struct lg *g;
  int mode;
  /* M_SETTLE / M_LOGIN / M_PING */
  size_t settled, inflight, pinged;
  int counting;
  uint64_t counted;
  /* relay and latency */
  struct pair pairs[RELAY_PAIRS_MAX];
  int closed_loop, sending;
  uint32_t *lat_us;
  size_t n_lat, cap_lat;
  /* register */
  size_t registered;
  /* backlog */
  uint64_t b_sent, b_ok, b_recvd, b_ack_ok;
  int64_t b_t[BACKLOG_STEPS + 1];
  int b_drained;
  /* results */
  double r_relay[ROUNDS], r_login[ROUNDS];
  double relay, login, p50, p99, idle_bytes, idle_marginal, gen_bytes, reg_rate;
  double kt_catchup_ms; /* --kt: from the last REGISTER answer until the log held every name (-1: logged before
                           each answer, a server without sotto_kt_pending) */
  double reg_cpu_io, reg_cpu_other, reg_cpu_gen; /* CPU µs per REGISTER: server I/O thread, its other threads, us */
  double r_first[BACKLOG_ROUNDS], r_last[BACKLOG_ROUNDS], r_drain[BACKLOG_ROUNDS];
  double b_first, b_last, b_drain;
  /* bystander */
  int64_t by_t0;
  uint32_t *by_us;
  size_t by_n, by_cap;
  double by_p50, by_p99, by_attack_mb;
};

static struct side g_s = {.name = "sotto", .p = &g_srv}, g_f = {.name = "floor", .p = &g_floor};

static int g_window = DEFAULT_WINDOW;

static uint32_t req(struct lg_conn *c) {
  return c->next_req++;
}

static void relay_send(struct side *sd, uint32_t pi, int64_t t_due) {
  struct pair *p = &sd->pairs[pi];
  uint8_t b[ENV_LEN];
  make_body(b, pi, p->sent, t_due);
  lg_send(p->snd, req(p->snd), p->rcv->dev->user, p->rcv->dev->device_id, b, ENV_LEN);
  p->sent++;
}

static void on_relay(struct side *sd, struct lg_conn *c, const struct sotto_srv_frame *f) {
  struct pair *p = c->user;
  uint32_t pi = (uint32_t)(p - sd->pairs);
  if (c == p->snd) {
    want_ok(c, f, 16, "SEND");
    p->oked++;
    if (p->oked > p->sent) lg_die("more SEND answers than SENDs");
    if (sd->closed_loop && sd->sending && p->sent - p->oked < (uint64_t)g_window) relay_send(sd, pi, 0);
    return;
  }
  if (f->type == SOTTO_SRV_MSG) {
    struct sotto_srv_env e;
    int64_t t_due;
    want_msg(c, f, p->snd->dev, &e);
    c->last_id = e.id;
    t_due = check_body(e.body, e.body_len, pi, p->recvd);
    p->recvd++;
    if (p->recvd > p->sent) lg_die("received more than was sent");
    if (sd->sending) sd->counted++;
    if (!sd->closed_loop) {
      int64_t us = (lg_now_ns() - t_due) / 1000;
      if (sd->n_lat == sd->cap_lat) {
        size_t cap = sd->cap_lat ? sd->cap_lat * 2 : 65536;
        uint32_t *q = realloc(sd->lat_us, cap * sizeof *q);
        if (!q) lg_die("out of memory");
        sd->lat_us = q;
        sd->cap_lat = cap;
      }
      sd->lat_us[sd->n_lat++] = us < 0 ? 0 : us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    }
    lg_ack(c, req(c), e.id);
    p->ack_sent++;
    return;
  }
  /* The server sends DRAINED again after a slow reader caught up. */
  if (f->type == SOTTO_SRV_DRAINED || f->type == SOTTO_SRV_KEYS_LOW_PUSH) return;
  want_ok(c, f, 0, "ACK");
  p->ack_ok++;
}

static void on_frame(void *ctx, struct lg_conn *c, const struct sotto_srv_frame *f) {
  struct side *sd = ctx;
  switch (sd->mode) {
    case M_REGISTER: {
      struct sotto__rd r;
      uint32_t idx = f->req_id - 16, id = 0;
      want_ok(c, f, 4 + SOTTO_SRV_SECRET_LEN, "REGISTER");
      if (f->req_id < 16 || idx >= N_DEVS || g_devs[idx].device_id) lg_die("REGISTER: unexpected answer id");
      sotto__rd_init(&r, f->p, f->len);
      if (sotto__rd_u32be(&r, &id) || sotto__rd_copy(&r, g_devs[idx].secret, SOTTO_SRV_SECRET_LEN) || id != 1)
        lg_die("REGISTER: bad answer");
      g_devs[idx].device_id = id;
      sd->registered++;
      c->n_in--;
      return;
    }
    case M_SETTLE:
    case M_LOGIN:
      if (f->type == SOTTO_SRV_KEYS_LOW_PUSH) return; /* nobody uploaded keys */
      if (f->type != SOTTO_SRV_DRAINED || c->n_in)
        lg_die("%s: unexpected frame 0x%02x after login", sd->name, f->type);
      c->n_in = 1;
      sd->inflight--;
      if (sd->mode == M_SETTLE) {
        sd->settled++;
      } else {
        if (sd->counting) sd->counted++;
        lg_close(c);
      }
      return;
    case M_PING:
      want_ok(c, f, 0, "PING");
      sd->pinged++;
      return;
    case M_BYSTANDER:
      if (f->type == SOTTO_SRV_DRAINED || f->type == SOTTO_SRV_KEYS_LOW_PUSH) return;
      want_ok(c, f, 2 + 4, "DEVICES (bystander)");
      if (sd->by_n == sd->by_cap) {
        size_t cap = sd->by_cap ? sd->by_cap * 2 : 4096;
        uint32_t *q = realloc(sd->by_us, cap * sizeof *q);
        if (!q) lg_die("out of memory");
        sd->by_us = q;
        sd->by_cap = cap;
      }
      sd->by_us[sd->by_n++] = (uint32_t)((lg_now_ns() - sd->by_t0) / 1000);
      c->n_in = 0;
      return;
    case M_RELAY:
      on_relay(sd, c, f);
      return;
    case M_BSEND:
      want_ok(c, f, 16, "SEND (backlog)");
      sd->b_ok++;
      if (sd->b_ok % BACKLOG_STEP == 0) sd->b_t[sd->b_ok / BACKLOG_STEP] = lg_now_ns();
      return;
    case M_BDRAIN:
      if (c->dev != &g_devs[N_DEVS - 2]) lg_die("backlog: frame on the wrong connection");
      if (f->type == SOTTO_SRV_MSG) {
        struct sotto_srv_env e;
        if (!c->n_in) lg_die("backlog: MSG before the AUTH answer");
        want_msg(c, f, &g_devs[N_DEVS - 1], &e);
        c->last_id = e.id;
        check_body(e.body, e.body_len, 0, sd->b_recvd);
        sd->b_recvd++;
        lg_ack(c, req(c), e.id);
        return;
      }
      if (f->type == SOTTO_SRV_KEYS_LOW_PUSH) return;
      if (f->type == SOTTO_SRV_DRAINED) {
        if (sd->b_recvd != BACKLOG_N)
          lg_die("backlog: DRAINED after %llu of %d envelopes", (unsigned long long)sd->b_recvd, BACKLOG_N);
        sd->b_drained = 1;
        return;
      }
      want_ok(c, f, 0, "ACK (backlog)");
      sd->b_ack_ok++;
      return;
  }
}

/* Login finished. n_in is per-mode: REGISTERs in flight (M_REGISTER),
 * "DRAINED seen" (M_SETTLE, M_LOGIN), "AUTH answered" (M_BDRAIN). */
static void on_ready(void *ctx, struct lg_conn *c) {
  struct side *sd = ctx;
  c->n_in = sd->mode == M_BDRAIN ? 1 : 0;
}

/* Polls until *done says so, dying after WAIT_S seconds. */
static void wait_until(struct side *sd, int (*done)(struct side *), const char *what) {
  int64_t deadline = lg_now_ns() + (int64_t)WAIT_S * 1000000000;
  while (!done(sd)) {
    if (lg_now_ns() > deadline) lg_die("%s: %s not done within %d s", sd->name, what, WAIT_S);
    lg_poll(sd->g, 2000);
  }
}

/* ---- setup: registration ---------------------------------------------------------- */

/* CPU time (µs) of the process pid: its main thread (the I/O thread of
 * sotto-server) into *main_us, all its threads into *all_us; 0 when /proc
 * cannot tell (both stay 0). Resolution: the kernel's clock tick. */
static void proc_cpu_us(pid_t pid, double *main_us, double *all_us) {
  char path[64], buf[1024];
  long tick = sysconf(_SC_CLK_TCK);
  int i;
  *main_us = *all_us = 0;
  for (i = 0; i < 2; i++) {
    FILE *f;
    char *p;
    unsigned long long ut, st;
    if (i == 0)
      snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)pid);
    else
      snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if ((f = fopen(path, "r")) == NULL) return;
    if (!fgets(buf, sizeof buf, f)) buf[0] = 0;
    fclose(f);
    /* after "(comm) ": state, then fields 4..13, then utime (14), stime (15) */
    if ((p = strrchr(buf, ')')) == NULL ||
        sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
      return;
    *(i == 0 ? main_us : all_us) = (double)(ut + st) * 1e6 / (double)(tick > 0 ? tick : 100);
  }
}

static double self_cpu_us(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru) != 0) return 0;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

static int reg_done(struct side *sd) {
  return sd->registered == N_DEVS;
}

/* Registers N_DEVS accounts over REG_CONNS connections, REG_WINDOW
 * REGISTERs in flight on each. Usernames are fresh per run (fresh data dir). */
static void register_all(struct side *sd) {
  struct lg_conn *cs[REG_CONNS];
  static const struct lg_dev anon = {"(registering)", 0, {0}};
  size_t next = 0, i;
  int64_t t0;
  double io0, all0, gen0, io1, all1;
  for (i = 0; i < N_DEVS; i++) snprintf(g_devs[i].user, sizeof g_devs[i].user, "bench%05zu", i);
  sd->mode = M_REGISTER;
  for (i = 0; i < REG_CONNS; i++) cs[i] = lg_connect(sd->g, &anon, 0);
  while (lg_pending_logins(sd->g)) lg_poll(sd->g, 2000);
  proc_cpu_us(sd->p->pid, &io0, &all0);
  gen0 = self_cpu_us();
  t0 = lg_now_ns();
  while (!reg_done(sd)) {
    for (i = 0; i < REG_CONNS; i++) {
      while (cs[i]->n_in < REG_WINDOW && next < N_DEVS) {
        uint8_t b[1 + SOTTO_SRV_USER_MAX + 2 + 33];
        struct sotto__wr w;
        uint8_t ik[33];
        memset(ik, 0x05, sizeof ik);
        memcpy(ik + 1, &next, sizeof next < 32 ? sizeof next : 32);
        sotto__wr_init(&w, b, sizeof b);
        sotto__srv_put_str8(&w, g_devs[next].user, strlen(g_devs[next].user));
        sotto__srv_put_blob16(&w, ik, sizeof ik);
        if (w.err) lg_die("encoding REGISTER failed");
        lg_frame(cs[i], SOTTO_SRV_REGISTER, (uint32_t)(16 + next), b, w.len);
        cs[i]->next_req = (uint32_t)(16 + N_DEVS);
        cs[i]->n_in++;
        next++;
      }
    }
    if (lg_now_ns() - t0 > (int64_t)WAIT_S * 1000000000) lg_die("registration not done within %d s", WAIT_S);
    lg_poll(sd->g, 2000);
  }
  sd->reg_rate = N_DEVS / ((double)(lg_now_ns() - t0) / 1e9);
  sd->reg_cpu_gen = (self_cpu_us() - gen0) / N_DEVS;
  proc_cpu_us(sd->p->pid, &io1, &all1);
  sd->reg_cpu_io = (io1 - io0) / N_DEVS;
  sd->reg_cpu_other = ((all1 - all0) - (io1 - io0)) / N_DEVS;
  for (i = 0; i < REG_CONNS; i++) lg_close(cs[i]);
  lg_poll(sd->g, 0);
  /* With the log: how long after the last answer until it holds every
   * name (the server's sotto_kt_pending gauge, asked every 5 ms). */
  sd->kt_catchup_ms = -1;
  if (g_kt) {
    int64_t t1 = lg_now_ns(), left;
    while ((left = metric_get(sd->p, "sotto_kt_pending", 1)) > 0) {
      struct timespec ts = {0, 5000000};
      if (lg_now_ns() - t1 > (int64_t)WAIT_S * 1000000000) lg_die("the log did not catch up within %d s", WAIT_S);
      nanosleep(&ts, NULL);
    }
    if (left == 0) sd->kt_catchup_ms = (double)(lg_now_ns() - t1) / 1e6;
  }
}

/* ---- opening many authenticated connections --------------------------------------- */

/* Opens n connections for devices first..first+n-1 and waits until each has
 * its AUTH answer and DRAINED, with at most CONNECT_INFLIGHT logins at once. */
static void open_many(struct side *sd, struct lg_conn **out, size_t first, size_t n) {
  size_t started = 0;
  int64_t deadline = lg_now_ns() + (int64_t)WAIT_S * 1000000000;
  sd->mode = M_SETTLE;
  sd->settled = sd->inflight = 0;
  while (sd->settled < n) {
    while (started < n && sd->inflight < CONNECT_INFLIGHT) {
      out[started] = lg_connect(sd->g, &g_devs[first + started], 1);
      started++;
      sd->inflight++;
    }
    if (lg_now_ns() > deadline)
      lg_die("%s: only %zu of %zu connections logged in within %d s", sd->name, sd->settled, n, WAIT_S);
    lg_poll(sd->g, 2000);
  }
}

static int ping_done(struct side *sd) {
  return sd->pinged == IDLE_CONNS;
}

/* ---- idle --------------------------------------------------------------------------- */

static struct lg_conn *g_idle[IDLE_CONNS_MAX];

/* Waits ms milliseconds while handling whatever arrives. */
static void settle(struct side *sd, int ms) {
  int64_t until = lg_now_ns() + (int64_t)ms * 1000000;
  while (lg_now_ns() < until) lg_poll(sd->g, 10000);
}

/* Server RSS before and after IDLE_CONNS authenticated idle connections,
 * divided by their number; the RSS at half of them gives the marginal cost
 * of the second half as a cross-check (it does not depend on heap the
 * server had already grown before). Then a PING on every connection proves
 * they are all still open and authenticated. */
static void row_idle(struct side *sd) {
  int64_t rss0, rss_half, rss1, gen0, gen1;
  size_t i;
  lg_poll(sd->g, 0);
  settle(sd, 200);
  rss0 = rss_of(sd->p->pid);
  gen0 = rss_of(0);
  open_many(sd, g_idle, 0, IDLE_CONNS / 2);
  settle(sd, 300);
  rss_half = rss_of(sd->p->pid);
  open_many(sd, g_idle + IDLE_CONNS / 2, IDLE_CONNS / 2, IDLE_CONNS - IDLE_CONNS / 2);
  /* Let the server finish writing and release its buffers. */
  settle(sd, 300);
  rss1 = rss_of(sd->p->pid);
  gen1 = rss_of(0);
  sd->idle_bytes = (double)(rss1 - rss0) / IDLE_CONNS;
  sd->idle_marginal = (double)(rss1 - rss_half) / (IDLE_CONNS - IDLE_CONNS / 2);
  sd->gen_bytes = (double)(gen1 - gen0) / IDLE_CONNS;
  if (sd->p == &g_srv) {
    int64_t n = metric(sd->p, "sotto_connections");
    if (n != IDLE_CONNS) lg_die("server reports %lld connections, want %d", (long long)n, IDLE_CONNS);
  }
  sd->mode = M_PING;
  sd->pinged = 0;
  for (i = 0; i < IDLE_CONNS; i++) lg_frame(g_idle[i], SOTTO_SRV_PING, req(g_idle[i]), NULL, 0);
  wait_until(sd, ping_done, "PING on every idle connection");
  for (i = 0; i < IDLE_CONNS; i++) lg_close(g_idle[i]);
  lg_poll(sd->g, 0);
  settle(sd, 300);
}

/* ---- login ----------------------------------------------------------------------------- */

static size_t g_login_next;

static int login_idle(struct side *sd) {
  return sd->inflight == 0;
}

/* One turn of the login row: LOGIN_INFLIGHT logins in progress at any time,
 * each closing its connection once DRAINED arrived; returns logins/s. */
static double login_turn(struct side *sd, double secs) {
  int64_t t0 = lg_now_ns(), t_end = t0 + (int64_t)(secs * 1e9), t1;
  sd->mode = M_LOGIN;
  sd->counted = 0;
  sd->counting = 1;
  sd->inflight = 0;
  while (lg_now_ns() < t_end) {
    while (sd->inflight < LOGIN_INFLIGHT) {
      lg_connect(sd->g, &g_devs[g_login_next++ % IDLE_CONNS], 1);
      sd->inflight++;
    }
    lg_poll(sd->g, 1000);
  }
  t1 = lg_now_ns();
  sd->counting = 0;
  wait_until(sd, login_idle, "logins in progress");
  return (double)sd->counted / ((double)(t1 - t0) / 1e9);
}

/* ---- relay and latency ----------------------------------------------------------------- */

static struct lg_conn *g_relay_s[2 * RELAY_PAIRS_MAX], *g_relay_f[2 * RELAY_PAIRS_MAX];

static void relay_open(struct side *sd, struct lg_conn **cs) {
  size_t i;
  open_many(sd, cs, 0, 2 * RELAY_PAIRS);
  for (i = 0; i < RELAY_PAIRS; i++) {
    struct pair *p = &sd->pairs[i];
    memset(p, 0, sizeof *p);
    p->snd = cs[2 * i];
    p->rcv = cs[2 * i + 1];
    p->snd->user = p->rcv->user = p;
  }
}

static int relay_quiet(struct side *sd) {
  size_t i;
  for (i = 0; i < RELAY_PAIRS; i++) {
    const struct pair *p = &sd->pairs[i];
    if (p->oked != p->sent || p->recvd != p->sent || p->ack_ok != p->ack_sent) return 0;
  }
  return 1;
}

/* Closed loop: every sender keeps g_window SENDs in flight for secs
 * seconds (a new one as each OK arrives); returns envelopes delivered per
 * second within that time. Then waits until everything sent was answered,
 * delivered and acked. */
static uint64_t relay_sent(const struct side *sd) {
  uint64_t n = 0;
  size_t i;
  for (i = 0; i < RELAY_PAIRS; i++) n += sd->pairs[i].sent;
  return n;
}

static double relay_turn(struct side *sd, double secs) {
  int64_t t0, t_end, t1;
  size_t i;
  int k;
  double io0, all0, io1, all1, gen0 = self_cpu_us();
  uint64_t n0 = relay_sent(sd), n;
  int64_t commits0 = sd == &g_s ? metric_get(sd->p, "sotto_commit_batch_size_count", 1) : -1, commits1;
  proc_cpu_us(sd->p->pid, &io0, &all0);
  sd->mode = M_RELAY;
  sd->closed_loop = 1;
  sd->counted = 0;
  sd->sending = 1;
  t0 = lg_now_ns();
  t_end = t0 + (int64_t)(secs * 1e9);
  for (i = 0; i < RELAY_PAIRS; i++)
    for (k = 0; k < g_window; k++) relay_send(sd, (uint32_t)i, 0);
  while (lg_now_ns() < t_end) lg_poll(sd->g, 1000);
  t1 = lg_now_ns();
  sd->sending = 0;
  wait_until(sd, relay_quiet, "delivery of every envelope sent");
  /* CPU per envelope of the turn (its drain included), on stderr: what
   * the ratio is made of (docs/benchmarks.md, "CPU per relayed envelope") */
  proc_cpu_us(sd->p->pid, &io1, &all1);
  commits1 = commits0 >= 0 ? metric_get(sd->p, "sotto_commit_batch_size_count", 1) : -1;
  if (commits1 > commits0 && (n = relay_sent(sd) - n0) > 0)
    fprintf(stderr, "bench_server: relay turn %s: %lld commits, %.1f envelopes per commit\n", sd->name,
            (long long)(commits1 - commits0), (double)n / (double)(commits1 - commits0));
  if ((n = relay_sent(sd) - n0) > 0)
    fprintf(stderr,
            "bench_server: relay turn %s: %.0f msg/s, %llu envelopes; CPU us per envelope: main thread %.2f, other threads %.2f, "
            "load generator %.2f\n",
            sd->name, (double)sd->counted / ((double)(t1 - t0) / 1e9), (unsigned long long)n, (io1 - io0) / (double)n,
            ((all1 - all0) - (io1 - io0)) / (double)n, (self_cpu_us() - gen0) / (double)n);
  return (double)sd->counted / ((double)(t1 - t0) / 1e9);
}

/* Open loop at a fixed rate: bursts of g_window envelopes (the traffic shape
 * of the relay row), burst k from sender k mod RELAY_PAIRS due at
 * t0 + k * g_window / rate. Each envelope carries the time it was due and its
 * latency is taken from then, not from when the generator got round to
 * sending it (no coordinated omission). */
static void latency_turn(struct side *sd, double secs, double rate) {
  int64_t t0, t_end, now;
  uint64_t k = 0;
  sd->mode = M_RELAY;
  sd->closed_loop = 0;
  sd->sending = 1;
  /* A relay phase too short to complete anything (a slow store, a tiny
   * --seconds) measures a rate of 0: still one batch, so the row has a
   * sample instead of aborting. */
  if (rate < 1) rate = 1;
  t0 = lg_now_ns();
  t_end = t0 + (int64_t)(secs * 1e9);
  while ((now = lg_now_ns()) < t_end) {
    /* batch k is due at t0 + k * window / rate: batch 0 at once */
    uint64_t due = (uint64_t)((double)(now - t0) * rate / g_window / 1e9) + 1;
    while (k < due) {
      int64_t t_due = t0 + (int64_t)((double)k * g_window * 1e9 / rate);
      int j;
      for (j = 0; j < g_window; j++) relay_send(sd, (uint32_t)(k % RELAY_PAIRS), t_due);
      k++;
    }
    lg_poll(sd->g, LAT_TICK_US);
  }
  sd->sending = 0;
  wait_until(sd, relay_quiet, "delivery of every envelope sent");
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_ms(const struct side *sd, double q) {
  size_t i = (size_t)(q * (double)(sd->n_lat - 1) + 0.5);
  return sd->lat_us[i] / 1000.0;
}

/* ---- backlog ----------------------------------------------------------------------------- */

static int bdrain_done(struct side *sd) {
  return sd->b_drained && sd->b_ack_ok == BACKLOG_N;
}

/* One backlog round: BACKLOG_N envelopes from s for an offline device,
 * BACKLOG_WINDOW SENDs in flight; the time of every BACKLOG_STEP-th answer
 * gives the enqueue rates. Then the device connects and takes everything:
 * drain rate from its connect to the last ACK answered. */
static void backlog_round(struct side *sd, struct lg_conn *s, int k) {
  const struct lg_dev *to = &g_devs[N_DEVS - 2];
  struct lg_conn *r;
  int64_t t0, q;
  sd->mode = M_BSEND;
  sd->b_sent = sd->b_ok = 0;
  sd->b_t[0] = t0 = lg_now_ns();
  while (sd->b_ok < BACKLOG_N) {
    while (sd->b_sent < BACKLOG_N && sd->b_sent - sd->b_ok < BACKLOG_WINDOW) {
      uint8_t b[ENV_LEN];
      make_body(b, 0, sd->b_sent, 0);
      lg_send(s, req(s), to->user, to->device_id, b, ENV_LEN);
      sd->b_sent++;
    }
    if (lg_now_ns() - t0 > (int64_t)WAIT_S * 1000000000)
      lg_die("backlog: enqueue not done within %d s", WAIT_S);
    lg_poll(sd->g, 2000);
  }
  sd->r_first[k] = BACKLOG_STEP / ((double)(sd->b_t[1] - sd->b_t[0]) / 1e9);
  sd->r_last[k] = BACKLOG_STEP /
                  ((double)(sd->b_t[BACKLOG_STEPS] - sd->b_t[BACKLOG_STEPS - 1]) / 1e9);
  if ((q = metric(sd->p, "sotto_queue_depth")) != BACKLOG_N)
    lg_die("backlog: server reports %lld queued, want %d", (long long)q, BACKLOG_N);

  sd->mode = M_BDRAIN;
  sd->b_recvd = sd->b_ack_ok = 0;
  sd->b_drained = 0;
  t0 = lg_now_ns();
  r = lg_connect(sd->g, to, 1);
  wait_until(sd, bdrain_done, "draining the backlog");
  sd->r_drain[k] = BACKLOG_N / ((double)(lg_now_ns() - t0) / 1e9);
  if ((q = metric(sd->p, "sotto_queue_depth")) != 0)
    lg_die("backlog: %lld envelopes still queued after every ACK was answered", (long long)q);
  lg_close(r);
  lg_poll(sd->g, 0);
}

static void row_backlog(struct side *sd) {
  struct lg_conn *s;
  int k;
  sd->mode = M_SETTLE;
  sd->settled = 0;
  sd->inflight = 1;
  s = lg_connect(sd->g, &g_devs[N_DEVS - 1], 1);
  while (sd->settled < 1) lg_poll(sd->g, 2000);
  for (k = 0; k < BACKLOG_ROUNDS; k++) backlog_round(sd, s, k);
  sd->b_first = median_n(sd->r_first, BACKLOG_ROUNDS);
  sd->b_last = median_n(sd->r_last, BACKLOG_ROUNDS);
  sd->b_drain = median_n(sd->r_drain, BACKLOG_ROUNDS);
  lg_close(s);
  lg_poll(sd->g, 0);
}

/* ---- rounds ------------------------------------------------------------------------------- */

/* ---- bystander ------------------------------------------------------------------------ */

/* The attacker: its own TLS connection (no pin check: an attacker does not
 * care), HELLO and AUTH read synchronously, then only writes. */
struct attacker {
  int fd;
  SSL_CTX *ctx;
  SSL *ssl;
};

static int att_read_frame(struct attacker *a, uint8_t *type) {
  uint8_t hdr[4], body[4096];
  size_t got = 0, need;
  while (got < 4) {
    int k = SSL_read(a->ssl, hdr + got, (int)(4 - got));
    if (k <= 0) return -1;
    got += (size_t)k;
  }
  need = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
  if (need < 5 || need > sizeof body) return -1;
  for (got = 0; got < need;) {
    int k = SSL_read(a->ssl, body + got, (int)(need - got));
    if (k <= 0) return -1;
    got += (size_t)k;
  }
  *type = body[0];
  return 0;
}

static size_t att_frame(uint8_t *out, uint8_t type, uint32_t id, const void *p, size_t n) {
  sotto__srv_frame_hdr(out, type, id, n);
  if (n) memcpy(out + 9, p, n);
  return 9 + n;
}

static void att_open(struct attacker *a, const struct lg_dev *d) {
  struct sockaddr_in sa;
  struct timeval tv = {10, 0};
  uint8_t buf[128], pl[80], type = 0;
  size_t n = 0;
  memset(a, 0, sizeof *a);
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  sa.sin_port = htons((uint16_t)atoi(g_srv.port));
  if ((a->fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 || connect(a->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
    lg_die("attacker: cannot connect");
  setsockopt(a->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if ((a->ctx = SSL_CTX_new(TLS_client_method())) == NULL) lg_die("attacker: SSL_CTX_new");
  SSL_CTX_set_min_proto_version(a->ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(a->ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_mode(a->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if ((a->ssl = SSL_new(a->ctx)) == NULL || SSL_set_fd(a->ssl, a->fd) != 1 || SSL_connect(a->ssl) != 1)
    lg_die("attacker: TLS handshake failed");
  pl[0] = 0, pl[1] = 1;
  if (SSL_write(a->ssl, buf, (int)att_frame(buf, SOTTO_SRV_HELLO, 1, pl, 2)) <= 0 || att_read_frame(a, &type) ||
      type != SOTTO_SRV_OK)
    lg_die("attacker: HELLO failed");
  pl[n++] = (uint8_t)strlen(d->user);
  memcpy(pl + n, d->user, strlen(d->user));
  n += strlen(d->user);
  pl[n++] = 0, pl[n++] = 0, pl[n++] = 0, pl[n++] = (uint8_t)d->device_id;
  memcpy(pl + n, d->secret, SOTTO_SRV_SECRET_LEN);
  n += SOTTO_SRV_SECRET_LEN;
  if (SSL_write(a->ssl, buf, (int)att_frame(buf, SOTTO_SRV_AUTH, 2, pl, n)) <= 0 || att_read_frame(a, &type) ||
      type != SOTTO_SRV_OK)
    lg_die("attacker: AUTH failed");
  fcntl(a->fd, F_SETFL, fcntl(a->fd, F_GETFL) | O_NONBLOCK);
}

/* Writes as much of p as the socket takes now; returns the bytes taken. */
static size_t att_write(struct attacker *a, const uint8_t *p, size_t len) {
  size_t done = 0;
  while (done < len) {
    size_t n = 0;
    if (SSL_write_ex(a->ssl, p + done, len - done, &n) != 1) break;
    done += n;
  }
  return done;
}

static void att_close(struct attacker *a) {
  SSL_free(a->ssl);
  SSL_CTX_free(a->ctx);
  close(a->fd);
}

/* One bystander (device 2) sends DEVICES requests one at a time for secs
 * seconds while the attacker (device 3) keeps writing pipelined requests and
 * never reads; the bystander's answer times give p50/p99. */
static void row_bystander(struct side *sd, double secs) {
  static uint8_t burst[128 * 1024];
  uint8_t q[64], keys[8192];
  struct attacker a;
  struct lg_conn *b;
  size_t blen = 0, boff = 0, kl, i;
  uint32_t id = 16;
  uint64_t written = 0;
  int64_t t_end;
  {
    /* A KEYS_UPLOAD of 100 one-time keys, like a client restocking. */
    struct sotto__wr w;
    uint8_t blob[64];
    memset(blob, 0xAB, sizeof blob);
    sotto__wr_init(&w, keys, sizeof keys);
    sotto__wr_u8(&w, 0);
    sotto__wr_u8(&w, 0);
    sotto__wr_u8(&w, 100);
    for (i = 0; i < 100; i++) {
      sotto__wr_u32be(&w, (uint32_t)(5000 + i));
      sotto__srv_put_blob16(&w, blob, 33);
    }
    sotto__wr_u8(&w, 0);
    sotto__wr_u8(&w, 0);
    if (w.err) lg_die("encoding KEYS_UPLOAD failed");
    kl = w.len;
  }
  q[0] = (uint8_t)strlen(g_devs[2].user);
  memcpy(q + 1, g_devs[2].user, q[0]);
  q[1 + q[0]] = 0, q[2 + q[0]] = 0, q[3 + q[0]] = 0, q[4 + q[0]] = 1;
  while (blen + 9 + kl + 3 * 64 < sizeof burst) {
    uint8_t ack[8];
    blen += att_frame(burst + blen, SOTTO_SRV_BUNDLE, id++, q, (size_t)q[0] + 5);
    blen += att_frame(burst + blen, SOTTO_SRV_DEVICES, id++, q, (size_t)q[0] + 1);
    for (i = 0; i < 8; i++) ack[i] = (uint8_t)(id * 31 + i);
    blen += att_frame(burst + blen, SOTTO_SRV_ACK, id++, ack, 8);
    if (id % 64 == 1) blen += att_frame(burst + blen, SOTTO_SRV_KEYS_UPLOAD, id++, keys, kl);
  }
  sd->mode = M_BYSTANDER;
  open_many(sd, &b, 2, 1);
  sd->mode = M_BYSTANDER;
  att_open(&a, &g_devs[3]);
  sd->by_n = 0;
  b->n_in = 0;
  t_end = lg_now_ns() + (int64_t)(secs * 1e9);
  while (lg_now_ns() < t_end) {
    size_t k = att_write(&a, burst + boff, blen - boff);
    written += k;
    boff = (boff + k) % blen;
    if (!b->n_in) {
      sd->by_t0 = lg_now_ns();
      lg_frame(b, SOTTO_SRV_DEVICES, req(b), q, (size_t)q[0] + 1);
      b->n_in = 1;
    }
    lg_poll(sd->g, 1000);
  }
  {
    int64_t deadline = lg_now_ns() + (int64_t)WAIT_S * 1000000000;
    while (b->n_in && lg_now_ns() < deadline) lg_poll(sd->g, 2000);
  }
  if (sd->by_n < 10) lg_die("bystander: only %zu answers while the attacker flooded", sd->by_n);
  qsort(sd->by_us, sd->by_n, sizeof sd->by_us[0], cmp_u32);
  sd->by_p50 = sd->by_us[sd->by_n / 2] / 1000.0;
  sd->by_p99 = sd->by_us[(sd->by_n * 99) / 100] / 1000.0;
  sd->by_attack_mb = (double)written / 1e6;
  att_close(&a);
  lg_close(b);
  lg_poll(sd->g, 0);
}

static void progress(int on, const char *what) {
  if (on) fprintf(stderr, "bench_server: %s...\n", what);
}

/* ---- output ------------------------------------------------------------------------------- */

static const char *fmt_num(char buf[32], double v) {
  char digits[32];
  int n, i, o = 0;
  if (v < 0) return "-";
  n = snprintf(digits, sizeof digits, "%.0f", v);
  if (n <= 0 || n >= (int)sizeof digits) return "?";
  for (i = 0; i < n; i++) {
    if (i > 0 && (n - i) % 3 == 0) buf[o++] = ',';
    buf[o++] = digits[i];
  }
  buf[o] = '\0';
  return buf;
}

static double g_secs, g_lat_rate;
static struct attach_result g_att;

static void print_table(void) {
  char a[32], b[32], c[32];
  double ratio = g_s.b_first / g_s.b_last;
  printf(
      "sotto-server vs bare TLS relay floor: loopback TLS 1.3, one load-generator thread, shared 2-core "
      "machine\n"
      "(relay, latency, login: median of %d rounds alternating server and floor, %.2f s per side per round;\n"
      " relay: %d pairs, %d-byte envelopes, %d SENDs in flight per sender)\n\n",
      ROUNDS, g_secs / ROUNDS, RELAY_PAIRS, ENV_LEN, g_window);
  printf("%-17s %-11s %11s %11s %11s  %-22s %s\n", "row", "unit", "sotto", "floor", "sotto/floor", "target",
         "verdict");
  if (g_rows & G_RELAY)
    printf("%-17s %-11s %11s %11s %11.2f  %-22s %s\n", "relay", "msg/s", fmt_num(a, g_s.relay),
           fmt_num(b, g_f.relay), g_s.relay / g_f.relay, ">=0.5 floor",
           g_s.relay >= 0.5 * g_f.relay ? "OK" : "BELOW");
  if (g_rows & G_LATENCY) {
    printf("%-17s %-11s %11.2f %11.2f %11s  %-22s %s\n", "latency_p50", "ms", g_s.p50, g_f.p50, "-", "report",
           "-");
    printf("%-17s %-11s %11.2f %11.2f %11s  %-22s %s\n", "latency_p99", "ms", g_s.p99, g_f.p99, "-", "<20 ms",
           g_s.p99 < 20 ? "OK" : "BELOW");
  }
  if (g_rows & G_BACKLOG) {
    printf("%-17s %-11s %11s %11s %11s  %-22s %s\n", "backlog_first10k", "msg/s", fmt_num(a, g_s.b_first),
           "-", "-", "report", "-");
    printf("%-17s %-11s %11s %11s %11s  %-22s %s\n", "backlog_last10k", "msg/s", fmt_num(a, g_s.b_last), "-",
           "-", "within 1.5x of first", ratio <= 1.5 && ratio >= 1 / 1.5 ? "OK" : "BELOW");
    printf("%-17s %-11s %11s %11s %11s  %-22s %s\n", "backlog_drain", "msg/s", fmt_num(a, g_s.b_drain), "-",
           "-", ">=relay",
           !(g_rows & G_RELAY)        ? "-"
           : g_s.b_drain >= g_s.relay ? "OK"
                                      : "BELOW");
  }
  if (g_rows & G_IDLE)
    printf("%-17s %-11s %11s %11s %11.2f  %-22s %s\n", "idle", "bytes/conn", fmt_num(a, g_s.idle_bytes),
           fmt_num(b, g_f.idle_bytes), g_s.idle_bytes / g_f.idle_bytes, "<=24 KiB (24,576)",
           g_s.idle_bytes <= 24576 ? "OK" : "BELOW");
  if (g_rows & G_LOGIN)
    printf("%-17s %-11s %11s %11s %11.2f  %-22s %s\n", "login", "conn/s", fmt_num(a, g_s.login),
           fmt_num(b, g_f.login), g_s.login / g_f.login, "report", "-");
  if (g_rows & G_BYSTANDER)
    printf("%-17s %-11s %11.2f %11s %11s  %-22s %s\n", "bystander_p99", "ms", g_s.by_p99, "-", "-", "<50 ms",
           g_s.by_p99 < 50 ? "OK" : "BELOW");
  if (g_rows & G_ATTACH) {
    printf("%-17s %-11s %11.1f %11.1f %11.2f  %-22s %s\n", "attach_up", "MB/s", g_att.s_up, g_att.f_up,
           g_att.s_up / g_att.f_up, ">=0.5 floor", g_att.s_up >= 0.5 * g_att.f_up ? "OK" : "BELOW");
    printf("%-17s %-11s %11.1f %11.1f %11.2f  %-22s %s\n", "attach_down", "MB/s", g_att.s_down, g_att.f_down,
           g_att.s_down / g_att.f_down, ">=0.5 floor", g_att.s_down >= 0.5 * g_att.f_down ? "OK" : "BELOW");
  }
  printf("\n");
  if (g_rows & G_ATTACH)
    printf("attach: one %.0f MiB file, sotto send --file / sotto receive (whole commands) vs the same bytes\n"
           "      through relay_floor (PUT/GET of 192 KiB, 8 in flight); each the best of %d interleaved rounds\n",
           g_att.mib, g_smoke ? 1 : 3);
  if (g_rows & G_LATENCY)
    printf(
        "latency: open loop at %s msg/s (half the relay median) in bursts of %d, %zu / %zu envelopes (sotto "
        "/ floor)\n",
        fmt_num(a, g_lat_rate), g_window, g_s.n_lat, g_f.n_lat);
  if (g_rows & G_BACKLOG)
    printf(
        "backlog: %d envelopes for one offline device, %d rounds (medians); the last 10k cost %.2fx the "
        "first "
        "10k\n",
        BACKLOG_N, BACKLOG_ROUNDS, ratio);
  if (g_rows & G_RELAY) {
    double lo = 1e300, hi = 0;
    int k;
    for (k = 0; k < ROUNDS; k++) {
      double q = g_s.r_relay[k] / g_f.r_relay[k];
      if (q < lo) lo = q;
      if (q > hi) hi = q;
    }
    printf("relay sotto/floor per round, lowest-highest: %.2f-%.2f\n", lo, hi);
  }
  if (g_rows & G_IDLE)
    printf(
        "idle: %d connections; second half alone: %s (sotto) / %s (floor) bytes per connection;\n"
        "      the load generator itself held %s bytes per connection (its own RSS)\n",
        IDLE_CONNS, fmt_num(a, g_s.idle_marginal), fmt_num(b, g_f.idle_marginal), fmt_num(c, g_s.gen_bytes));
  printf("setup: %d accounts registered at %s/s (pipelined REGISTER over %d connections%s%s)\n", N_DEVS,
         fmt_num(a, g_s.reg_rate), REG_CONNS, g_kt ? "; key-transparency log on, --kt-threads " : "",
         g_kt ? g_kt : "");
  printf("       CPU per REGISTER: server I/O thread %.1f us, its other threads %.1f us, load generator %.1f us\n",
         g_s.reg_cpu_io, g_s.reg_cpu_other, g_s.reg_cpu_gen);
  if (g_kt && g_s.kt_catchup_ms >= 0)
    printf("       key-transparency log caught up %.0f ms after the last answer (every name logged)\n",
           g_s.kt_catchup_ms);
  else if (g_kt)
    printf("       key-transparency log: every name logged before its answer (synchronous)\n");
  if (g_rows & G_BYSTANDER)
    printf(
        "bystander: %zu DEVICES requests one at a time, p50 %.2f ms, while one attacker wrote %.1f MB of "
        "pipelined\n"
        "      BUNDLE/DEVICES/ACK/KEYS_UPLOAD requests and read nothing\n",
        g_s.by_n, g_s.by_p50, g_s.by_attack_mb);
}

/* Rows printed so far (--smoke checks them against g_row_names). */
static struct {
  const char *name, *unit;
  double sotto, floor;
} g_printed[64];
static size_t g_n_printed;

static void json_row(const char *name, const char *unit, double s, double f, const char *extra) {
  if (g_n_printed < sizeof g_printed / sizeof g_printed[0]) {
    g_printed[g_n_printed].name = name;
    g_printed[g_n_printed].unit = unit;
    g_printed[g_n_printed].sotto = s;
    g_printed[g_n_printed++].floor = f;
  }
  printf("{\"bench\":\"%s\",\"unit\":\"%s\",\"sotto\":%.2f,\"floor\":", name, unit, s);
  if (f >= 0)
    printf("%.2f", f);
  else
    printf("null");
  printf("%s}\n", extra ? extra : "");
}

static void print_json(void) {
  char extra[64], win[32];
  snprintf(extra, sizeof extra, ",\"rate\":%.0f,\"window\":%d", g_lat_rate, g_window);
  snprintf(win, sizeof win, ",\"window\":%d", g_window);
  if (g_rows & G_RELAY) json_row("relay", "msg/s", g_s.relay, g_f.relay, win);
  if (g_rows & G_LATENCY) {
    json_row("latency_p50", "ms", g_s.p50, g_f.p50, extra);
    json_row("latency_p99", "ms", g_s.p99, g_f.p99, extra);
  }
  if (g_rows & G_BACKLOG) {
    json_row("backlog_first10k", "msg/s", g_s.b_first, -1, NULL);
    json_row("backlog_last10k", "msg/s", g_s.b_last, -1, NULL);
    json_row("backlog_drain", "msg/s", g_s.b_drain, -1, NULL);
  }
  if (g_rows & G_IDLE) json_row("idle", "bytes/conn", g_s.idle_bytes, g_f.idle_bytes, NULL);
  if (g_rows & G_LOGIN) json_row("login", "conn/s", g_s.login, g_f.login, NULL);
  if (g_rows & G_BYSTANDER) json_row("bystander_p99", "ms", g_s.by_p99, -1, NULL);
  if (g_rows & G_ATTACH) {
    char mib[32];
    snprintf(mib, sizeof mib, ",\"mib\":%.0f", g_att.mib);
    json_row("attach_up", "MB/s", g_att.s_up, g_att.f_up, mib);
    json_row("attach_down", "MB/s", g_att.s_down, g_att.f_down, mib);
  }
}

/* --smoke: each row of g_row_names that --rows selected printed exactly
 * once with finite figures, and no other. Returns the exit status. */
static int smoke_check(void) {
  size_t i, j, want_n = 0;
  int bad = 0;
  for (i = 0; i < N_ROW_NAMES; i++) {
    size_t seen = 0, want = (g_rows & g_row_group[i]) ? 1 : 0;
    want_n += want;
    for (j = 0; j < g_n_printed; j++) {
      if (strcmp(g_printed[j].name, g_row_names[i]) != 0) continue;
      seen++;
      /* A rate (a unit per second) of 0 means nothing was measured; a
       * floor of -1 means none. Memory and latency only need a number. */
      int rate = strstr(g_printed[j].unit, "/s") != NULL;
      if (!isfinite(g_printed[j].sotto) || !isfinite(g_printed[j].floor) ||
          (rate && !(g_printed[j].sotto > 0 && (g_printed[j].floor > 0 || g_printed[j].floor == -1)))) {
        fprintf(stderr, "bench_server --smoke: row %s measured nothing (%g / %g)\n", g_row_names[i],
                g_printed[j].sotto, g_printed[j].floor);
        bad = 1;
      }
    }
    if (seen != want) {
      fprintf(stderr, "bench_server --smoke: row %s printed %zu times, want %zu\n", g_row_names[i], seen,
              want);
      bad = 1;
    }
  }
  for (j = 0; j < g_n_printed; j++) {
    for (i = 0; i < N_ROW_NAMES && strcmp(g_printed[j].name, g_row_names[i]) != 0; i++) {
    }
    if (i == N_ROW_NAMES) {
      fprintf(stderr, "bench_server --smoke: row %s is not in g_row_names (add it there)\n", g_printed[j].name);
      bad = 1;
    }
  }
  if (bad) return 1;
  fprintf(stderr, "bench_server --smoke: all %zu rows%s produced (%d idle connections, %d relay pairs, %d backlog "
                  "envelopes; figures not judged)\n",
          want_n, g_rows == G_ALL ? "" : " selected by --rows", IDLE_CONNS, RELAY_PAIRS, BACKLOG_N);
  return 0;
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: bench_server [--json] [--seconds S] [--window W] [--rows LIST] [--kt T] [--smoke]\n"
          "  --json       one JSON object per line, nothing else on stdout\n"
          "  --seconds S  measuring time per side for the relay, latency and login rows (default %.0f),\n"
          "               split into %d rounds\n"
          "  --window W   SENDs each sender keeps in flight in the relay and latency rows (default %d)\n"
          "  --rows LIST  only these rows, comma-separated: relay, latency, backlog, idle, login,\n"
          "               bystander, attach (default all; latency runs relay too), e.g. --rows relay to profile\n"
          "               one phase alone\n"
          "  --kt T       the server keeps its key-transparency log (--kt 1) with --kt-threads T (0-3):\n"
          "               every REGISTER of the setup is logged (the setup line gives the rate)\n"
          "  --smoke      every row on a small scale in about %.1f s per side (CI): no figure is judged, but\n"
          "               the program fails if a row is missing or not a number\n"
          "environment: SOTTO_BENCH_SERVER=PATH runs that sotto-server (e.g. another build's) instead of\n"
          "             this build's; SOTTO_BENCH_STORE=URL is the server's --store\n",
          DEFAULT_SECONDS, ROUNDS, DEFAULT_WINDOW, SMOKE_SECONDS);
}

static void raise_nofile(void) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) lg_die("getrlimit failed");
  if (rl.rlim_cur >= NOFILE_WANT) return;
  /* Root may raise the hard limit too; otherwise take what the hard limit allows. */
  if (rl.rlim_max < NOFILE_WANT) {
    struct rlimit want = {NOFILE_WANT, NOFILE_WANT};
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) return;
  }
  rl.rlim_cur = rl.rlim_max;
  /* At most IDLE_CONNS client sockets are open at once (the idle row). */
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < IDLE_CONNS + 256)
    lg_die("open-files limit %llu is too low for %d connections (raise ulimit -n)",
           (unsigned long long)rl.rlim_cur, IDLE_CONNS + 256);
}

int main(int argc, char **argv) {
  int json = 0, i, k, prog;
  double slice;
  static const char *const srv_args[] = {
      "--send-rate", "1e9",     "--send-burst", "1e9",  "--register-rate", "1e9", "--register-burst", "1e9",
      "--max-queue", "1000000", "--max-unauth", "4096", "--auth-timeout",  "120", "--log-level",      "0",
      /* one load generator on one address opens 10,000 connections, 256 at
       * a time, and queues 100,000 envelopes from one sender to one device */
      "--max-unauth-per-addr", "4096", "--max-unauth-per-prefix", "4096", "--max-queue-per-sender", "1000000",
      "--idle-timeout", "3600", "--register-prefix-rate", "1e9", "--register-prefix-burst", "1e9",
      "--register-global-rate", "1e9", "--register-global-burst", "1e9", "--blob-rate", "1e9", "--blob-burst", "1e9",
      NULL};

  g_secs = DEFAULT_SECONDS;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) {
      json = 1;
    } else if (strcmp(argv[i], "--seconds") == 0) {
      char *end = NULL;
      if (i + 1 == argc) {
        fprintf(stderr, "bench_server: --seconds needs a value\n");
        return 2;
      }
      g_secs = strtod(argv[++i], &end);
      if (end == argv[i] || *end != '\0' || !(g_secs > 0 && g_secs <= MAX_SECONDS)) {
        fprintf(stderr, "bench_server: --seconds wants a number in (0, %.0f], got '%s'\n", MAX_SECONDS,
                argv[i]);
        return 2;
      }
    } else if (strcmp(argv[i], "--window") == 0) {
      char *end = NULL;
      long w;
      if (i + 1 == argc) {
        fprintf(stderr, "bench_server: --window needs a value\n");
        return 2;
      }
      w = strtol(argv[++i], &end, 10);
      if (end == argv[i] || *end != '\0' || w < 1 || w > MAX_WINDOW) {
        fprintf(stderr, "bench_server: --window wants an integer in [1, %d], got '%s'\n", MAX_WINDOW,
                argv[i]);
        return 2;
      }
      g_window = (int)w;
    } else if (strcmp(argv[i], "--rows") == 0) {
      if (i + 1 == argc || parse_rows(argv[i + 1]) != 0) {
        fprintf(stderr,
                "bench_server: --rows wants a comma-separated list of relay, latency, backlog, idle, login, "
                "bystander, attach, got '%s'\n",
                i + 1 == argc ? "" : argv[i + 1]);
        return 2;
      }
      i++;
    } else if (strcmp(argv[i], "--kt") == 0) {
      if (i + 1 == argc || strlen(argv[i + 1]) != 1 || argv[i + 1][0] < '0' || argv[i + 1][0] > '3') {
        fprintf(stderr, "bench_server: --kt wants the server's --kt-threads, 0-3\n");
        return 2;
      }
      g_kt = argv[++i];
    } else if (strcmp(argv[i], "--smoke") == 0) {
      g_smoke = 1;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "bench_server: unknown argument '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  if (g_smoke) g_secs = SMOKE_SECONDS;
  slice = g_secs / ROUNDS;
  prog = isatty(STDERR_FILENO);
  signal(SIGPIPE, SIG_IGN);
  raise_nofile();
  atexit(cleanup);

  progress(prog, "starting sotto-server and relay_floor");
  {
    /* SOTTO_BENCH_STORE (bench/run server --pg sets it): the server's
     * --store, e.g. a throwaway PostgreSQL; default its own SQLite. */
    static const char *args[64];
    const char *store = getenv("SOTTO_BENCH_STORE");
    size_t j = 0;
    for (; srv_args[j] && j < 60; j++) args[j] = srv_args[j];
    if (store && *store) {
      args[j++] = "--store";
      args[j++] = store;
      fprintf(stderr, "bench_server: sotto-server on %s\n", strncmp(store, "sqlite:", 7) ? "PostgreSQL" : "SQLite");
    }
    if (g_kt) {
      args[j++] = "--kt";
      args[j++] = "1";
      args[j++] = "--kt-threads";
      args[j++] = g_kt;
    }
    args[j] = NULL;
    {
      /* SOTTO_BENCH_SERVER=PATH: another build's sotto-server against the
       * same generator and floor (A/B comparisons of two servers). */
      const char *bin = getenv("SOTTO_BENCH_SERVER");
      if (bin && *bin) fprintf(stderr, "bench_server: sotto-server is %s\n", bin);
      proc_start(&g_srv, bin && *bin ? bin : SOTTO_SERVER_BIN, 1, args);
    }
  }
  proc_start(&g_floor, RELAY_FLOOR_BIN, 0, NULL);
  g_s.g = lg_new("sotto-server", g_srv.port, g_srv.fp);
  g_f.g = lg_new("relay_floor", g_floor.port, g_floor.fp);
  lg_set_cb(g_s.g, on_frame, on_ready, &g_s);
  lg_set_cb(g_f.g, on_frame, on_ready, &g_f);

  progress(prog, "registering accounts");
  register_all(&g_s);

  if (g_rows & G_IDLE) {
    progress(prog, "idle");
    row_idle(&g_s);
    row_idle(&g_f);
  }

  if (g_rows & G_LOGIN) {
    progress(prog, "login");
    login_turn(&g_s, slice / 4);
    login_turn(&g_f, slice / 4);
    for (k = 0; k < ROUNDS; k++) {
      struct side *first = k % 2 ? &g_f : &g_s, *second = k % 2 ? &g_s : &g_f;
      first->r_login[k] = login_turn(first, slice);
      second->r_login[k] = login_turn(second, slice);
    }
    g_s.login = median_n(g_s.r_login, ROUNDS);
    g_f.login = median_n(g_f.r_login, ROUNDS);
  }

  if (g_rows & G_RELAY) {
    progress(prog, "relay");
    relay_open(&g_s, g_relay_s);
    relay_open(&g_f, g_relay_f);
    relay_turn(&g_s, slice / 4);
    relay_turn(&g_f, slice / 4);
    for (k = 0; k < ROUNDS; k++) {
      struct side *first = k % 2 ? &g_f : &g_s, *second = k % 2 ? &g_s : &g_f;
      first->r_relay[k] = relay_turn(first, slice);
      second->r_relay[k] = relay_turn(second, slice);
    }
    g_s.relay = median_n(g_s.r_relay, ROUNDS);
    g_f.relay = median_n(g_f.r_relay, ROUNDS);

    if (g_rows & G_LATENCY) {
      progress(prog, "latency");
      g_lat_rate = g_s.relay / 2;
      for (k = 0; k < ROUNDS; k++) {
        struct side *first = k % 2 ? &g_f : &g_s, *second = k % 2 ? &g_s : &g_f;
        latency_turn(first, slice, g_lat_rate);
        latency_turn(second, slice, g_lat_rate);
      }
      for (k = 0; k < 2; k++) {
        struct side *sd = k ? &g_f : &g_s;
        if (sd->n_lat == 0) lg_die("%s: no latency samples", sd->name);
        qsort(sd->lat_us, sd->n_lat, sizeof sd->lat_us[0], cmp_u32);
        sd->p50 = pct_ms(sd, 0.50);
        sd->p99 = pct_ms(sd, 0.99);
      }
    }
    for (i = 0; i < 2 * RELAY_PAIRS; i++) {
      lg_close(g_relay_s[i]);
      lg_close(g_relay_f[i]);
    }
    lg_poll(g_s.g, 0);
    lg_poll(g_f.g, 0);
  }

  if (g_rows & G_BACKLOG) {
    progress(prog, "backlog");
    row_backlog(&g_s);
  }

  if (g_rows & G_BYSTANDER) {
    progress(prog, "bystander");
    row_bystander(&g_s, g_secs);
  }

  if (g_rows & G_ATTACH) {
    progress(prog, "attach");
    bench_attach(g_srv.port, g_floor.port, g_floor.fp, g_smoke, &g_att);
  }

  lg_free(g_s.g);
  lg_free(g_f.g);
  free(g_s.lat_us);
  free(g_f.lat_us);
  free(g_s.by_us);
  proc_stop(&g_srv);
  proc_stop(&g_floor);
  g_finished = 1;
  g_s.b_last = g_s.b_last > 0 ? g_s.b_last : 1;

  if (json || g_smoke)
    print_json();
  else
    print_table();
  if (fflush(stdout) != 0) return 1;
  return g_smoke ? smoke_check() : 0;
}

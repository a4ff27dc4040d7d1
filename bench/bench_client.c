/* SPDX-License-Identifier: Apache-2.0 */
/* bench_client.c: the client front ends' benchmark (bench/run client).
 *
 *   bench_client [--json] [--messages N] [--smoke]
 *
 * Row (docs/benchmarks.md, "Client"):
 *
 *   daemon_relay  messages/s from one account to another on the same
 *                 machine, sent and received through `sotto daemon`: a
 *                 JSON-RPC `send` on alice's daemon socket until the
 *                 `receive` notification arrives on bob's; next to the floor,
 *                 the same through the client core directly (sc_send_text in
 *                 one process, sc_link_step and the event sink in another).
 *                 Target: sotto/floor >= 0.5.
 *
 * Both sides run against the real sotto-server (started here on a free
 * loopback port, TLS with the certificate pinned, a fresh data directory)
 * with the same two accounts (registered here through the core), after one
 * message each way so that no session setup is measured. The clock runs
 * from the first send to the last message received; every message is
 * checked (its text carries its number: all N, none twice).
 *
 * --smoke (make bench-smoke): a few messages, no figure judged; fails if
 * the row is missing or measured nothing. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sotto_client.h"

#define PASS "bench passphrase"
#define MSG_LEN 100
#define DEFAULT_N 1000
#define SMOKE_N 20
#define WINDOW 32 /* JSON-RPC sends in flight on alice's daemon socket */

static int g_json, g_smoke;
static size_t g_n = DEFAULT_N;
static char g_dir[128];
static pid_t g_server, g_daemon[2];

static void cleanup(void) {
  size_t i;
  pid_t *p[] = {&g_daemon[0], &g_daemon[1], &g_server};
  for (i = 0; i < 3; i++)
    if (*p[i] > 0) {
      kill(*p[i], SIGTERM);
      waitpid(*p[i], NULL, 0);
      *p[i] = 0;
    }
  if (g_dir[0]) {
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    (void)!system(cmd);
  }
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...) {
  va_list ap;
  fputs("bench_client: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  cleanup();
  exit(1);
}

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void free_port(char out[16]) {
  struct sockaddr_in a;
  socklen_t l = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &l) != 0)
    die("no free port");
  snprintf(out, 16, "%u", ntohs(a.sin_port));
  close(fd);
}

/* Starts sotto-server and reads its fingerprint. */
static void start_server(char hostport[64], char pin[65]) {
  char port[16], data[200], log[200], buf[1024];
  size_t got = 0;
  int out[2];
  int64_t deadline = now_us() + 10000000;
  free_port(port);
  snprintf(hostport, 64, "127.0.0.1:%s", port);
  snprintf(data, sizeof data, "%s/srv", g_dir);
  snprintf(log, sizeof log, "%s/server.log", g_dir);
  mkdir(data, 0700);
  if (pipe2(out, O_CLOEXEC) != 0) die("pipe");
  if ((g_server = fork()) == 0) {
    int lf = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    dup2(out[1], 1);
    if (lf >= 0) dup2(lf, 2);
    execl(SOTTO_SERVER_BIN, SOTTO_SERVER_BIN, "--data", data, "--listen", hostport, "--log-level", "0",
          (char *)NULL);
    _exit(127);
  }
  close(out[1]);
  for (;;) {
    struct pollfd pf = {out[0], POLLIN, 0};
    int64_t left = (deadline - now_us()) / 1000;
    ssize_t r;
    char *f;
    if (left <= 0 || poll(&pf, 1, (int)left) <= 0) break;
    if ((r = read(out[0], buf + got, sizeof buf - 1 - got)) <= 0) break;
    got += (size_t)r;
    buf[got] = 0;
    if (strstr(buf, "listening") && (f = strstr(buf, "fingerprint ")) && strlen(f) >= 12 + 64) {
      memcpy(pin, f + 12, 64);
      pin[64] = 0;
      close(out[0]);
      return;
    }
  }
  die("sotto-server did not start (see %s)", log);
}

static struct sc_client *open_client(const char *name) {
  struct sc_client *c;
  char home[200];
  int rc;
  snprintf(home, sizeof home, "%s/%s", g_dir, name);
  if ((rc = sc_client_new(&c, home)) != 0 || (rc = sc_open(c, PASS, strlen(PASS))) != 0)
    die("opening %s: %s", name, sc_error_message(rc));
  return c;
}

static void create_account(const char *name, const char *server, const char *pin) {
  struct sc_client *c;
  char home[200];
  int rc;
  snprintf(home, sizeof home, "%s/%s", g_dir, name);
  if ((rc = sc_client_new(&c, home)) != 0 || (rc = sc_init(c, NULL, PASS, strlen(PASS))) != 0 ||
      (rc = sc_register(NULL, NULL, c, server, name, pin, NULL)) != 0)
    die("creating %s: %s (%s)", name, sc_error_message(rc), sc_errdetail(c));
  sc_client_free(c);
}

static void make_text(char *out, size_t i) {
  int n = snprintf(out, MSG_LEN + 1, "bench %zu ", i);
  memset(out + n, 'x', (size_t)(MSG_LEN - n));
  out[MSG_LEN] = 0;
}

/* The number in a received text, or -1. */
static long text_number(const char *t, size_t len) {
  char *end;
  long v;
  if (len < 7 || strncmp(t, "bench ", 6) != 0) return -1;
  v = strtol(t + 6, &end, 10);
  return end > t + 6 && *end == ' ' ? v : -1;
}

/* ---- the floor: the core directly ---- */

struct rx {
  unsigned char *seen;
  size_t n, got, bad;
};

static void rx_sink(void *ud, const struct sc_event *ev) {
  struct rx *r = ud;
  long k;
  if (ev->kind != SC_EV_MESSAGE) return;
  k = text_number(ev->text, ev->text_len);
  if (k < 0 || (size_t)k >= r->n || r->seen[k]) {
    r->bad++;
    return;
  }
  r->seen[k] = 1;
  r->got++;
}

/* Receives n numbered messages as bob; writes 'r' when connected and
 * drained, then 'd' when all arrived (or 'x'). Runs in a child process. */
static void floor_receiver(int fd, size_t n) {
  struct sc_client *b = open_client("bob");
  struct rx r = {calloc(n, 1), n, 0, 0};
  int64_t deadline;
  if (!r.seen || sc_connect(b, 10000) != 0) _exit(1);
  sc_set_sink(b, rx_sink, &r);
  deadline = now_us() + 20000000;
  while (!sc_link_drained(b) && now_us() < deadline) (void)sc_link_step(b, 100);
  if (write(fd, "r", 1) != 1) _exit(1);
  deadline = now_us() + 600000000LL;
  while (r.got < n && r.bad == 0 && now_us() < deadline)
    if (sc_link_step(b, 100) < 0 && !sc_connected(b)) break;
  (void)!write(fd, r.got == n && r.bad == 0 ? "d" : "x", 1);
  sc_client_free(b);
  _exit(0);
}

static double run_floor(size_t n) {
  struct sc_client *a;
  int p[2];
  pid_t pid;
  char c, text[MSG_LEN + 1];
  int64_t t0, t1;
  size_t i;
  int rc;
  if (pipe(p) != 0) die("pipe");
  if ((pid = fork()) == 0) {
    close(p[0]);
    floor_receiver(p[1], n);
  }
  close(p[1]);
  if (read(p[0], &c, 1) != 1 || c != 'r') die("floor: bob's core did not connect");
  a = open_client("alice");
  if ((rc = sc_connect(a, 10000)) != 0) die("floor: alice cannot connect: %s", sc_errdetail(a));
  t0 = now_us();
  for (i = 0; i < n; i++) {
    struct sc_sent s;
    make_text(text, i);
    if ((rc = sc_send_text(&s, a, "bob", text, MSG_LEN, 0)) != 0)
      die("floor: send %zu: %s", i, sc_errdetail(a));
    /* What the server pushes to alice meanwhile (nothing here) is handled. */
    if (sc_link_pending(a)) (void)sc_link_step(a, 0);
  }
  if (read(p[0], &c, 1) != 1 || c != 'd') die("floor: bob did not receive all %zu messages exactly once", n);
  t1 = now_us();
  close(p[0]);
  waitpid(pid, NULL, 0);
  sc_client_free(a);
  return (double)n * 1e6 / (double)(t1 - t0);
}

/* ---- through the daemons ---- */

struct conn {
  int fd;
  char *buf;
  size_t len, cap;
};

static void conn_open(struct conn *k, const char *path) {
  struct sockaddr_un sa;
  int i;
  memset(k, 0, sizeof *k);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
  for (i = 0; i < 300; i++) {
    k->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (connect(k->fd, (struct sockaddr *)&sa, sizeof sa) == 0) break;
    close(k->fd);
    k->fd = -1;
    usleep(100000);
  }
  if (k->fd < 0) die("cannot connect to %s", path);
  k->cap = 1 << 20;
  if (!(k->buf = malloc(k->cap))) die("no memory");
}

static void conn_write(struct conn *k, const char *s) {
  size_t n = strlen(s), off = 0;
  while (off < n) {
    ssize_t w = write(k->fd, s + off, n - off);
    if (w <= 0) die("write to a daemon: %s", strerror(errno));
    off += (size_t)w;
  }
}

/* The next line (parsed), waiting at most ms; NULL on timeout. */
static cJSON *conn_line(struct conn *k, int ms) {
  int64_t deadline = now_us() + (int64_t)ms * 1000;
  for (;;) {
    char *nl = memchr(k->buf, '\n', k->len);
    if (nl) {
      cJSON *o;
      *nl = 0;
      o = cJSON_Parse(k->buf);
      k->len -= (size_t)(nl + 1 - k->buf);
      memmove(k->buf, nl + 1, k->len);
      if (!o) die("a daemon sent a line that is not JSON");
      return o;
    }
    {
      struct pollfd pf = {k->fd, POLLIN, 0};
      int64_t left = (deadline - now_us()) / 1000;
      ssize_t r;
      if (left < 0) left = 0;
      if (poll(&pf, 1, (int)left) <= 0) return NULL;
      if (k->len == k->cap) die("a daemon line over 1 MiB");
      if ((r = read(k->fd, k->buf + k->len, k->cap - k->len)) <= 0) die("a daemon closed the connection");
      k->len += (size_t)r;
    }
  }
}

static void start_daemon(int i, const char *name, const char *sock) {
  char home[200], log[200];
  snprintf(home, sizeof home, "%s/%s", g_dir, name);
  snprintf(log, sizeof log, "%s/%s.daemon.log", g_dir, name);
  if ((g_daemon[i] = fork()) == 0) {
    int lf = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    int nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (nul >= 0) dup2(nul, 0), dup2(nul, 1);
    if (lf >= 0) dup2(lf, 2);
    setenv("SOTTO_PASSPHRASE", PASS, 1);
    execl(SOTTO_CLI_BIN, SOTTO_CLI_BIN, "--home", home, "daemon", "--socket", sock, (char *)NULL);
    _exit(127);
  }
}

/* Waits until the daemon says it is connected to the server. */
static void wait_connected(struct conn *k, const char *name) {
  int i;
  for (i = 0; i < 200; i++) {
    cJSON *o, *r;
    int up;
    conn_write(k, "{\"jsonrpc\":\"2.0\",\"method\":\"version\",\"id\":0}\n");
    if (!(o = conn_line(k, 10000))) die("%s's daemon does not answer", name);
    r = cJSON_GetObjectItem(o, "result");
    up = r && cJSON_IsTrue(cJSON_GetObjectItem(r, "connected"));
    cJSON_Delete(o);
    if (up) return;
    usleep(50000);
  }
  die("%s's daemon did not connect to the server", name);
}

static double run_daemon(size_t n) {
  char sa[200], sb[200], req[512], text[MSG_LEN + 1];
  struct conn a, b;
  unsigned char *seen = calloc(n, 1);
  size_t sent = 0, answered = 0, got = 0;
  int64_t t0, t1;
  cJSON *o;
  if (!seen) die("no memory");
  snprintf(sa, sizeof sa, "%s/a.sock", g_dir);
  snprintf(sb, sizeof sb, "%s/b.sock", g_dir);
  start_daemon(0, "alice", sa);
  start_daemon(1, "bob", sb);
  conn_open(&a, sa);
  conn_open(&b, sb);
  wait_connected(&a, "alice");
  wait_connected(&b, "bob");
  conn_write(&b, "{\"jsonrpc\":\"2.0\",\"method\":\"subscribeReceive\",\"id\":1}\n");
  if (!(o = conn_line(&b, 10000)) || !cJSON_GetObjectItem(o, "result"))
    die("bob's daemon: subscribeReceive failed");
  cJSON_Delete(o);
  /* Let what was queued (nothing) drain for a moment. */
  while ((o = conn_line(&b, 300))) cJSON_Delete(o);

  t0 = now_us();
  while (got < n) {
    struct pollfd pf[2] = {{a.fd, POLLIN, 0}, {b.fd, POLLIN, 0}};
    while (sent < n && sent - answered < WINDOW) {
      make_text(text, sent);
      snprintf(req, sizeof req,
               "{\"jsonrpc\":\"2.0\",\"method\":\"send\",\"params\":{\"recipient\":\"bob\",\"message\":\"%"
               "s\"},\"id\":%zu}\n",
               text, sent + 1);
      conn_write(&a, req);
      sent++;
    }
    if (poll(pf, 2, 60000) <= 0) die("daemon_relay: nothing for 60 s (%zu of %zu received)", got, n);
    if (pf[0].revents) {
      while ((o = conn_line(&a, 0))) {
        if (!cJSON_GetObjectItem(o, "result")) {
          char *s = cJSON_PrintUnformatted(o);
          die("alice's daemon refused a send: %s", s ? s : "?");
        }
        answered++;
        cJSON_Delete(o);
      }
    }
    if (pf[1].revents) {
      while ((o = conn_line(&b, 0))) {
        const cJSON *m = cJSON_GetObjectItem(o, "method");
        if (cJSON_IsString(m) && strcmp(m->valuestring, "receive") == 0) {
          const cJSON *t = cJSON_GetObjectItem(
              cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "params"), "envelope"),
                                  "dataMessage"),
              "message");
          long k = cJSON_IsString(t) ? text_number(t->valuestring, strlen(t->valuestring)) : -1;
          if (k < 0 || (size_t)k >= n || seen[k]) die("daemon_relay: an unexpected or repeated message");
          seen[k] = 1;
          got++;
        }
        cJSON_Delete(o);
      }
    }
  }
  t1 = now_us();
  close(a.fd);
  close(b.fd);
  free(a.buf);
  free(b.buf);
  free(seen);
  return (double)n * 1e6 / (double)(t1 - t0);
}

/* One message each way, so that the sessions exist before any clock runs. */
static void warm_up(void) {
  struct sc_client *a = open_client("alice"), *b = open_client("bob");
  struct sc_sent s;
  int i;
  if (sc_connect(a, 10000) || sc_send_text(&s, a, "bob", "warm up", 7, 0))
    die("warm-up: %s", sc_errdetail(a));
  if (sc_connect(b, 10000) || sc_send_text(&s, b, "alice", "warm up", 7, 0))
    die("warm-up: %s", sc_errdetail(b));
  for (i = 0; i < 50 && !(sc_link_drained(a) && sc_link_drained(b)); i++) {
    (void)sc_link_step(a, 50);
    (void)sc_link_step(b, 50);
  }
  sc_client_free(a);
  sc_client_free(b);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: bench_client [--json] [--messages N] [--smoke]\n"
          "  --json        one JSON object per line, nothing else on stdout\n"
          "  --messages N  messages per side (default %d)\n"
          "  --smoke       %d messages, figures not judged; fails if the row is missing\n",
          DEFAULT_N, SMOKE_N);
}

int main(int argc, char **argv) {
  char server[64], pin[65];
  double d, f;
  int i;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0)
      g_json = 1;
    else if (strcmp(argv[i], "--smoke") == 0)
      g_smoke = 1;
    else if (strcmp(argv[i], "--messages") == 0 && i + 1 < argc) {
      long v = strtol(argv[++i], NULL, 10);
      if (v < 1 || v > 1000000) {
        usage(stderr);
        return 2;
      }
      g_n = (size_t)v;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      usage(stderr);
      return 2;
    }
  }
  if (g_smoke) g_n = SMOKE_N;
  signal(SIGPIPE, SIG_IGN);
  if (sc_global_init() != 0) die("cannot initialise the crypto libraries");
  snprintf(g_dir, sizeof g_dir, "/tmp/sotto-bench-client-XXXXXX");
  if (!mkdtemp(g_dir)) die("mkdtemp: %s", strerror(errno));
  if (!g_json) fprintf(stderr, "bench_client: starting sotto-server, creating alice and bob...\n");
  start_server(server, pin);
  create_account("alice", server, pin);
  create_account("bob", server, pin);
  warm_up();
  if (!g_json) fprintf(stderr, "bench_client: floor (the core directly), %zu messages...\n", g_n);
  f = run_floor(g_n);
  if (!g_json) fprintf(stderr, "bench_client: through two daemons, %zu messages...\n", g_n);
  d = run_daemon(g_n);
  cleanup();
  if (!isfinite(d) || !isfinite(f) || d <= 0 || f <= 0) {
    fprintf(stderr, "bench_client: daemon_relay measured nothing (%g / %g)\n", d, f);
    return 1;
  }
  if (g_json) {
    printf(
        "{\"bench\":\"daemon_relay\",\"row\":\"daemon_relay\",\"unit\":\"msg/"
        "s\",\"sotto\":%.1f,\"floor\":%.1f,"
        "\"messages\":%zu,\"window\":%d}\n",
        d, f, g_n, WINDOW);
  } else {
    printf("%-14s %-7s %11s %11s %11s  %s\n", "row", "unit", "sotto", "floor", "sotto/floor", "target");
    printf("%-14s %-7s %11.1f %11.1f %11.2f  %s\n", "daemon_relay", "msg/s", d, f, d / f, ">= 0.5");
    printf(
        "\n%zu messages of %d bytes alice -> bob; sotto: JSON-RPC send on alice's daemon (%d in flight)\n"
        "until bob's daemon's receive notification; floor: the core directly (sc_send_text, sc_link_step)\n",
        g_n, MSG_LEN, WINDOW);
  }
  if (g_smoke) fprintf(stderr, "bench_client --smoke: row daemon_relay produced\n");
  return 0;
}

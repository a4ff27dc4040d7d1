/* SPDX-License-Identifier: Apache-2.0 */
/* bench_cluster.c: sotto-server with --cluster: N nodes on one PostgreSQL
 * (with_pg.sh) and one Redis (started here on a free loopback port), driven
 * through client/net over loopback TLS from one thread (bench/run cluster
 * runs it with --nodes 2 and 3 for the pg_redis_2 and pg_redis_3 columns).
 *
 * Rows (one JSON line each with --json):
 *   relay             msg/s delivered (SEND by one device, pushed to and
 *                     ACKed by another), PAIRS pairs, every pair's two ends
 *                     on different nodes when N >= 2, WINDOW SENDs in flight
 *   latency_p99       ms from the time a SEND was due (open loop: the
 *                     schedule, not when it went out) to its arrival, at
 *                     half the relay rate (--rate R:
 *                     at R msg/s, to compare two builds at the same load), all pairs
 *   cross_node_p99    the same, pairs whose ends are on different nodes
 *   enqueue_first10k  msg/s of the first 10k SENDs into an offline device's
 *   enqueue_last10k   queue, and of the last 10k (of 20k; smoke: 1k of 2k)
 *   drain             msg/s of that queue drained (paged, ACKed) on another node
 *   cross_node_split  the cross-node envelopes of the paced phase split at
 *                     the client's clocks (generator late, send->answer,
 *                     answer->delivered; p50 and p99 each) and the
 *                     generator's CPU
 *   cross_node_tail   the slowest 1% of them (latency >= p99): the median
 *                     of each part among them, and how they bunch in time
 *                     (the 100 ms windows of the phase they fall in, the
 *                     share in the worst window): a few windows mean
 *                     stalls that hit everything in flight at once (a
 *                     COMMIT, the disk, the CPU), many mean a steady queue;
 *                     --trace FILE writes every cross-node envelope of the
 *                     phase (wall-clock due time, to line up with
 *                     PostgreSQL's log; total, late, send->answer,
 *                     answer->delivered in us; the pair); stage_*: the servers' stage
 *                     histograms over the paced phase; round_trips_per_batch:
 *                     the batches' round trips to PostgreSQL
 * and figures for docs/scaling.md: PostgreSQL WAL bytes and table bytes per
 * message, Redis commands per relayed message.
 *
 * This machine has 2 cores shared by the load generator, N nodes, PostgreSQL
 * and Redis: the numbers say what N nodes cost here, not how N nodes scale. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "srvtest.h"
#include "wire.h"

#define NODES_MAX 3
#define PAIRS_MAX 12
#define WINDOW 32
#define BODY 64
#define LAT_MAX 400000

static struct srv_proc node[NODES_MAX];
static int n_nodes = 2, smoke, json;
static double secs = 4, fixed_rate; /* --rate: the latency rows at this rate instead of half the relay rate */
static char redis_port[16], redis_url[64];
static pid_t redis_pid;
static struct sotto_net_ctx *ctx;

struct dev {
  char name[32];
  uint32_t id;
  uint8_t secret[32];
};

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what) {
  int i;
  fprintf(stderr, "bench_cluster: %s\n", what);
  for (i = 0; i < n_nodes; i++) srv_kill(&node[i]);
  if (redis_pid > 0) kill(redis_pid, SIGKILL);
  exit(1);
}

static void redis_start(void) {
  struct sockaddr_in a = {0};
  socklen_t al = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0), i;
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &al))
    die("no free port");
  close(fd);
  snprintf(redis_port, sizeof redis_port, "%u", ntohs(a.sin_port));
  if ((redis_pid = fork()) == 0) {
    int dn = open("/dev/null", O_WRONLY);
    dup2(dn, 1);
    dup2(dn, 2);
    execlp("redis-server", "redis-server", "--port", redis_port, "--bind", "127.0.0.1", "--save", "", "--appendonly",
           "no", "--dir", "/tmp", (char *)NULL);
    _exit(127);
  }
  for (i = 0; i < 100; i++) {
    char cmd[96];
    snprintf(cmd, sizeof cmd, "redis-cli -p %s ping 2>/dev/null | grep -q PONG", redis_port);
    if (system(cmd) == 0) {
      snprintf(redis_url, sizeof redis_url, "redis://127.0.0.1:%s", redis_port);
      return;
    }
    usleep(50000);
  }
  die("redis-server did not start");
}

static int64_t metric_sum(const char *name) {
  int64_t sum = 0;
  int i;
  for (i = 0; i < n_nodes; i++) {
    char *m = srv_metrics(&node[i]), *p;
    if (!m) continue;
    for (p = m; (p = strstr(p, name)) != NULL; p++) {
      char *sp = strchr(p, ' ');
      if (p > m && p[-1] != '\n') continue;
      if (sp) sum += strtoll(sp + 1, NULL, 10);
    }
    free(m);
  }
  return sum;
}

/* The servers' stage histograms (sotto_stage_seconds), summed over the
 * nodes: where an envelope's time goes (srv_internal.h, STAGE_*). */
#define N_STAGES 8
#define N_SB 13
static const char *const stage_name[N_STAGES] = {"queue", "commit", "lock", "answer",
                                                 "announce", "page", "notify", "envelope"};
static const double stage_le[N_SB] = {0.1, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 1e9}; /* ms (1e9: more) */
struct stages {
  double cum[N_STAGES][N_SB], sum[N_STAGES], n[N_STAGES];
};

static void stages_read(struct stages *st) {
  int i, j, k;
  memset(st, 0, sizeof *st);
  for (i = 0; i < n_nodes; i++) {
    char *m = srv_metrics(&node[i]), *line;
    if (!m) continue;
    for (line = m; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
      for (j = 0; j < N_STAGES; j++) {
        char pre[96];
        size_t pl;
        snprintf(pre, sizeof pre, "sotto_stage_seconds_bucket{stage=\"%s\",le=\"", stage_name[j]);
        pl = strlen(pre);
        if (strncmp(line, pre, pl) == 0) {
          double le = strncmp(line + pl, "+Inf", 4) == 0 ? 1e9 : atof(line + pl) * 1000;
          for (k = 0; k < N_SB; k++)
            if (stage_le[k] >= le * 0.999 && stage_le[k] <= le * 1.001) st->cum[j][k] += atof(strchr(line, ' ') + 1);
        }
        snprintf(pre, sizeof pre, "sotto_stage_seconds_sum{stage=\"%s\"} ", stage_name[j]);
        if (strncmp(line, pre, strlen(pre)) == 0) st->sum[j] += atof(line + strlen(pre)) * 1000;
        snprintf(pre, sizeof pre, "sotto_stage_seconds_count{stage=\"%s\"} ", stage_name[j]);
        if (strncmp(line, pre, strlen(pre)) == 0) st->n[j] += atof(line + strlen(pre));
      }
    }
    free(m);
  }
}

/* One line per stage over [a, b]: count, mean, and the bucket holding p99. */
static void stages_print(const struct stages *a, const struct stages *b) {
  int j, k;
  for (j = 0; j < N_STAGES; j++) {
    double n = b->n[j] - a->n[j], p99 = 0;
    if (n <= 0) continue;
    for (k = 0; k < N_SB; k++)
      if (b->cum[j][k] - a->cum[j][k] >= 0.99 * n) {
        p99 = stage_le[k];
        break;
      }
    if (json)
      printf("{\"bench\":\"stage_%s\",\"unit\":\"ms\",\"count\":%.0f,\"mean\":%.3f,\"p99_le\":%g,\"nodes\":%d}\n",
             stage_name[j], n, (b->sum[j] - a->sum[j]) / n, p99, n_nodes);
    else
      printf("  stage %-9s %8.0f x  mean %7.3f ms  p99 <= %g ms\n", stage_name[j], n, (b->sum[j] - a->sum[j]) / n,
             p99);
  }
}

static PGconn *pg(void) {
  static PGconn *c;
  if (c) return c;
  if ((c = PQconnectdb(node[0].store + 3)) == NULL /* after "pg:" */ || PQstatus(c) != CONNECTION_OK) die("cannot connect to PostgreSQL");
  return c;
}

static int64_t pg_i64(const char *sql) {
  PGresult *r = PQexec(pg(), sql);
  int64_t v = 0;
  if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return v;
}

static struct sotto_net *login(int i, const struct dev *d) {
  struct sotto_net *c = srv_connect(&node[i], &ctx, 1);
  if (!c || sotto_net_auth(c, d->name, d->id, d->secret, NULL, NULL) != 0) die("login failed");
  return c;
}

static void reg(struct dev *d, const char *name) {
  struct sotto_net *c = srv_connect(&node[0], &ctx, 1);
  uint8_t ik[33] = {5};
  snprintf(d->name, sizeof d->name, "%s", name);
  if (!c || sotto_net_register(c, d->name, ik, sizeof ik, &d->id, d->secret) != 0) die("register failed");
  sotto_net_close(c);
}

/* ---- relay and latency ----------------------------------------------------------------- */

/* Per pair, the time each SEND's answer came back, by the envelope's
 * sequence number (ring): the split of cross-node latency (split_print). */
#define ANS_RING 65536
struct pair {
  struct sotto_net *s, *r;
  struct dev ds, dr;
  int cross;
  unsigned inflight;
  uint64_t seq, ans_seq; /* the next envelope's number; the next answer's */
  int64_t ans_us[ANS_RING];
};
static struct pair pairs[PAIRS_MAX];
static int n_pairs;
static uint32_t lat_all[LAT_MAX], lat_cross[LAT_MAX];
static size_t n_lat_all, n_lat_cross;
/* Cross-node envelopes of the paced phase, split at the client's clocks:
 * gen = sent - due (the generator late), sa = SEND answered - sent (node A:
 * read, batch, commit, answer, back to the client), ad = delivered -
 * answered (node A's Redis announcement, node B's page and push, the
 * client reading it). An envelope delivered before its SEND's answer was
 * read counts sa up to its delivery and ad 0. */
static uint32_t lat_gen[LAT_MAX], lat_sa[LAT_MAX], lat_ad[LAT_MAX];
static size_t n_split;
/* The same envelopes unsorted, with their due time (us since the paced
 * phase began) and total latency: the tail row and --trace. */
struct rec {
  int64_t due_us;
  uint32_t total, gen, sa, ad;
  int pair;
};
static struct rec recs[LAT_MAX];
static int64_t phase_t0, wall_off_us; /* monotonic start of the paced phase; realtime - monotonic */
static const char *trace_path;
static uint64_t delivered;

/* The body: due time, send time, sequence number (8 bytes each, big-endian). */
static void put_u64(uint8_t *b, uint64_t x) {
  int i;
  for (i = 0; i < 8; i++) b[i] = (uint8_t)(x >> (56 - 8 * i));
}

static uint64_t get_u64(const uint8_t *b) {
  uint64_t t = 0;
  int i;
  for (i = 0; i < 8; i++) t = t << 8 | b[i];
  return t;
}

static void put_ts(uint8_t *b, int64_t t) {
  memset(b, 0xA5, BODY);
  put_u64(b, (uint64_t)t);
}

static int64_t get_ts(const uint8_t *b) {
  return (int64_t)get_u64(b);
}

static uint32_t clamp_us(int64_t d) {
  return d < 0 ? 0 : d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void pump(int ms, int measure) {
  struct pollfd pf[2 * PAIRS_MAX];
  int i;
  for (i = 0; i < n_pairs; i++) {
    pf[2 * i].fd = sotto_net_fd(pairs[i].s);
    pf[2 * i + 1].fd = sotto_net_fd(pairs[i].r);
    pf[2 * i].events = pf[2 * i + 1].events = POLLIN;
  }
  poll(pf, (nfds_t)(2 * n_pairs), ms);
  for (i = 0; i < n_pairs; i++) {
    struct pair *p = &pairs[i];
    struct sotto_net_event ev;
    int rc;
    while ((rc = sotto_net_next_event(p->s, 0, &ev)) == 1) {
      if (ev.kind == SOTTO_NET_EV_ANSWER && p->inflight) {
        if (ev.code) die("a SEND was refused");
        p->inflight--;
        p->ans_us[p->ans_seq++ % ANS_RING] = now_us(); /* one connection's SENDs are answered in order */
      }
      sotto_net_event_clear(&ev);
    }
    if (rc < 0 || rc > 1) die("sender connection lost");
    while ((rc = sotto_net_next_event(p->r, 0, &ev)) == 1) {
      if (ev.kind == SOTTO_NET_EV_MSG) {
        uint32_t req;
        int64_t t = now_us(), d = t - get_ts(ev.body);
        (void)sotto_net_ack_async(p->r, ev.id, &req);
        if (measure) {
          delivered++;
          if (n_lat_all < LAT_MAX) lat_all[n_lat_all++] = clamp_us(d);
          if (p->cross && n_lat_cross < LAT_MAX) lat_cross[n_lat_cross++] = clamp_us(d);
          if (p->cross && n_split < LAT_MAX && ev.body_len >= 24) {
            int64_t due = get_ts(ev.body), sent = (int64_t)get_u64(ev.body + 8);
            uint64_t seq = get_u64(ev.body + 16);
            int64_t ans = seq < p->ans_seq && seq + ANS_RING > p->ans_seq ? p->ans_us[seq % ANS_RING] : t;
            if (ans > t) ans = t;
            lat_gen[n_split] = clamp_us(sent - due);
            lat_sa[n_split] = clamp_us(ans - sent);
            lat_ad[n_split] = clamp_us(t - ans);
            recs[n_split] = (struct rec){due - phase_t0, clamp_us(t - due), lat_gen[n_split], lat_sa[n_split],
                                         lat_ad[n_split], i};
            n_split++;
          }
        }
      }
      sotto_net_event_clear(&ev);
    }
    if (rc < 0 || rc > 1) die("receiver connection lost");
  }
}

/* t_us: the time the envelope's latency counts from (its due time when
 * paced, else now). */
static void send_one(struct pair *p, int64_t t_us) {
  uint8_t b[BODY];
  uint32_t req;
  put_ts(b, t_us);
  put_u64(b + 8, (uint64_t)now_us());
  put_u64(b + 16, p->seq++);
  if (sotto_net_send_async(p->s, p->dr.name, 1, 1, b, BODY, &req) != 0) die("send failed");
  p->inflight++;
}

/* Saturated: every pair keeps WINDOW SENDs in flight. */
static double relay(double s) {
  int64_t end = now_us() + (int64_t)(s * 1e6), t0 = now_us();
  int i;
  delivered = 0;
  while (now_us() < end) {
    for (i = 0; i < n_pairs; i++)
      while (pairs[i].inflight < WINDOW) send_one(&pairs[i], now_us());
    pump(2, 1);
  }
  return (double)delivered / ((double)(now_us() - t0) / 1e6);
}

static void settle(void) {
  int64_t end = now_us() + 2000000;
  int busy = 1, i;
  while (busy && now_us() < end) {
    pump(5, 0);
    busy = 0;
    for (i = 0; i < n_pairs; i++) busy |= pairs[i].inflight != 0;
  }
  end = now_us() + 300000;
  while (now_us() < end) pump(5, 0);
}

/* Paced at rate msg/s over all pairs, open loop: envelope k is due at
 * t0 + k / rate and its latency is taken from then, not from when this
 * single thread got round to sending it (busy receiving, or the poll
 * overslept), so a stalled generator counts against the latency instead of
 * hiding it (coordinated omission). */
static void paced(double s, double rate) {
  int64_t t0 = now_us(), end = t0 + (int64_t)(s * 1e6);
  uint64_t sent = 0;
  int next = 0;
  while (now_us() < end) {
    uint64_t due = (uint64_t)((double)(now_us() - t0) / 1e6 * rate);
    while (sent < due) {
      send_one(&pairs[next], t0 + (int64_t)((double)sent * 1e6 / rate));
      next = (next + 1) % n_pairs;
      sent++;
    }
    pump(1, 1);
  }
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static double pct_ms(uint32_t *v, size_t n, double q) {
  if (!n) return -1;
  qsort(v, n, sizeof *v, cmp_u32);
  return v[(size_t)((double)(n - 1) * q)] / 1000.0;
}

/* The split of cross-node latency at the client's clocks (lat_gen, lat_sa,
 * lat_ad), p50 and p99 of each part on its own (percentiles of parts do not
 * add up to the percentile of the whole), and the generator's own CPU over
 * the paced phase (of one core; the machine has two). */
static void split_print(double cpu) {
  double g50 = pct_ms(lat_gen, n_split, 0.5), g99 = pct_ms(lat_gen, n_split, 0.99);
  double a50 = pct_ms(lat_sa, n_split, 0.5), a99 = pct_ms(lat_sa, n_split, 0.99);
  double d50 = pct_ms(lat_ad, n_split, 0.5), d99 = pct_ms(lat_ad, n_split, 0.99);
  if (!n_split) return;
  if (json)
    printf("{\"bench\":\"cross_node_split\",\"unit\":\"ms\",\"n\":%zu,\"late_p50\":%.2f,\"late_p99\":%.2f,"
           "\"send_answer_p50\":%.2f,\"send_answer_p99\":%.2f,\"answer_deliver_p50\":%.2f,"
           "\"answer_deliver_p99\":%.2f,\"generator_cpu\":%.2f,\"nodes\":%d}\n",
           n_split, g50, g99, a50, a99, d50, d99, cpu, n_nodes);
  else
    printf("  cross-node split over %zu envelopes (p50 / p99 ms): generator late %.2f / %.2f, send->answer "
           "(node A) %.2f / %.2f, answer->delivered (Redis, node B, client) %.2f / %.2f; generator CPU %.0f %% of "
           "one core\n",
           n_split, g50, g99, a50, a99, d50, d99, cpu * 100);
}

static int cmp_rec_total(const void *a, const void *b) {
  uint32_t x = ((const struct rec *)a)->total, y = ((const struct rec *)b)->total;
  return x < y ? -1 : x > y;
}

static double med_ms(uint32_t *v, size_t n) {
  return pct_ms(v, n, 0.5);
}

/* The slowest 1% of the cross-node envelopes of the paced phase (recs,
 * sorted here by total latency; the trace is written first, in arrival
 * order). */
static void tail_print(void) {
  static uint32_t g[LAT_MAX], a[LAT_MAX], d[LAT_MAX];
  static unsigned win[6000]; /* 100 ms windows: up to 600 s */
  size_t i, from, n, k = 0;
  unsigned nwin = 0, worst = 0;
  if (trace_path) {
    FILE *f = fopen(trace_path, "w");
    if (!f) die("cannot write the trace file");
    for (i = 0; i < n_split; i++)
      fprintf(f, "%.6f %u %u %u %u %d\n", (double)(recs[i].due_us + phase_t0 + wall_off_us) / 1e6, recs[i].total,
              recs[i].gen, recs[i].sa, recs[i].ad, recs[i].pair);
    if (fclose(f) != 0) die("cannot write the trace file");
  }
  if (n_split < 100) return;
  qsort(recs, n_split, sizeof *recs, cmp_rec_total);
  from = (size_t)((double)(n_split - 1) * 0.99);
  n = n_split - from;
  memset(win, 0, sizeof win);
  for (i = from; i < n_split; i++) {
    size_t w = recs[i].due_us < 0 ? 0 : (size_t)(recs[i].due_us / 100000);
    if (w >= sizeof win / sizeof win[0]) w = sizeof win / sizeof win[0] - 1;
    if (!win[w]++) nwin++;
    if (win[w] > worst) worst = win[w];
    g[k] = recs[i].gen;
    a[k] = recs[i].sa;
    d[k++] = recs[i].ad;
  }
  if (json)
    printf("{\"bench\":\"cross_node_tail\",\"unit\":\"ms\",\"n\":%zu,\"from\":%.2f,\"late_med\":%.2f,"
           "\"send_answer_med\":%.2f,\"answer_deliver_med\":%.2f,\"windows_100ms\":%u,\"worst_window_share\":%.2f,"
           "\"nodes\":%d}\n",
           n, recs[from].total / 1e3, med_ms(g, k), med_ms(a, k), med_ms(d, k), nwin, (double)worst / (double)n,
           n_nodes);
  else
    printf("  slowest 1%% (%zu envelopes, >= %.2f ms): medians late %.2f, send->answer %.2f, answer->delivered "
           "%.2f ms; in %u of the phase's 100 ms windows, %.0f %% in the worst one\n",
           n, recs[from].total / 1e3, med_ms(g, k), med_ms(a, k), med_ms(d, k), nwin,
           100.0 * (double)worst / (double)n);
}

static double cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
         ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6;
}

static double p99_ms(uint32_t *v, size_t n) {
  if (!n) return -1;
  qsort(v, n, sizeof *v, cmp_u32);
  return v[(size_t)((double)(n - 1) * 0.99)] / 1000.0;
}

/* ---- enqueue and drain ---------------------------------------------------------------- */

static double enqueue(struct sotto_net *s, const char *to, int from, int n, int64_t *t_us) {
  int sent = from, done = from, inflight = 0;
  int64_t t0 = now_us();
  uint8_t b[BODY];
  put_ts(b, 0);
  while (done < from + n) {
    struct sotto_net_event ev;
    int rc;
    while (inflight < 64 && sent < from + n) {
      uint32_t req;
      if (sotto_net_send_async(s, to, 1, 1, b, BODY, &req) != 0) die("send failed");
      inflight++;
      sent++;
    }
    rc = sotto_net_next_event(s, 5000, &ev);
    if (rc != 1) die("enqueue stalled");
    if (ev.kind == SOTTO_NET_EV_ANSWER) {
      if (ev.code) die("a SEND was refused while enqueueing");
      inflight--;
      done++;
    }
    sotto_net_event_clear(&ev);
  }
  *t_us = now_us() - t0;
  return n / ((double)*t_us / 1e6);
}

static double drain(struct sotto_net *r, int n) {
  int got = 0;
  int64_t t0 = now_us();
  while (got < n) {
    struct sotto_net_event ev;
    int rc = sotto_net_next_event(r, 10000, &ev);
    if (rc != 1) die("drain stalled");
    if (ev.kind == SOTTO_NET_EV_MSG) {
      uint32_t req;
      (void)sotto_net_ack_async(r, ev.id, &req);
      got++;
    }
    sotto_net_event_clear(&ev);
  }
  (void)sotto_net_ping(r);
  return n / ((double)(now_us() - t0) / 1e6);
}

static void row(const char *name, const char *unit, double v) {
  if (json)
    printf("{\"bench\":\"%s\",\"unit\":\"%s\",\"sotto\":%.*f,\"nodes\":%d}\n", name, unit, v < 100 ? 2 : 0, v,
           n_nodes);
  else
    printf("%-22s %-8s %12.*f\n", name, unit, v < 100 ? 2 : 0, v);
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *extra[NODES_MAX][20];
  char names[NODES_MAX][16];
  int i, k;
  double r, half;
  int64_t wal0, wal1, cmds0, cmds1, t;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--nodes") == 0 && i + 1 < argc)
      n_nodes = atoi(argv[++i]);
    else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
      secs = atof(argv[++i]);
    else if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
      fixed_rate = atof(argv[++i]);
    else if (strcmp(argv[i], "--trace") == 0 && i + 1 < argc)
      trace_path = argv[++i];
    else if (strcmp(argv[i], "--smoke") == 0)
      smoke = 1;
    else if (strcmp(argv[i], "--json") == 0)
      json = 1;
    else {
      fprintf(stderr, "usage: bench_cluster [--nodes 1-3] [--seconds S] [--rate MSG_S] [--trace FILE] [--smoke] [--json] (run by bench/run cluster)\n");
      return 2;
    }
  }
  if (n_nodes < 1 || n_nodes > NODES_MAX || !(secs > 0 && secs <= 60)) {
    fprintf(stderr, "bench_cluster: --nodes 1-3, --seconds 0-60\n");
    return 2;
  }
  if (smoke) secs = 0.5;
  if (!srv_pg()) {
    fprintf(stderr, "bench_cluster: needs PostgreSQL (run through tests/server/with_pg.sh: bench/run cluster)\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  if (sodium_init() < 0) return 1;
  redis_start();
  for (i = 0; i < n_nodes; i++) {
    k = 0;
    if (srv_mkdir(&node[i], "bench-cluster") != 0) die("data directory");
    snprintf(names[i], sizeof names[i], "b%d", i);
    extra[i][k++] = "--cluster";
    extra[i][k++] = redis_url;
    extra[i][k++] = "--node-name";
    extra[i][k++] = names[i];
    extra[i][k++] = "--send-rate";
    extra[i][k++] = "1000000";
    extra[i][k++] = "--send-burst";
    extra[i][k++] = "1000000";
    extra[i][k++] = "--max-queue";
    extra[i][k++] = "1000000";
    extra[i][k++] = "--max-queue-per-sender";
    extra[i][k++] = "1000000";
    extra[i][k++] = "--register-rate";
    extra[i][k++] = "100000";
    extra[i][k++] = "--register-burst";
    extra[i][k++] = "100000";
    extra[i][k++] = "--log-level";
    extra[i][k++] = "0";
    extra[i][k] = NULL;
  }
  for (i = 1; i < n_nodes; i++) memcpy(node[i].store, node[0].store, sizeof node[0].store);
  if (srv_start(&node[0], extra[0]) != 0) die("node 0 did not start");
  for (i = 1; i < n_nodes; i++) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cp %s/tls.key %s/tls.crt %s/", node[0].dir, node[0].dir, node[i].dir);
    if (system(cmd) != 0 || srv_start(&node[i], extra[i]) != 0) die("a node did not start");
  }
  n_pairs = smoke ? 2 : 8;
  for (i = 0; i < n_pairs; i++) {
    struct pair *p = &pairs[i];
    char nm[32];
    int ns = i % n_nodes, nr = (i + 1) % n_nodes;
    snprintf(nm, sizeof nm, "snd%d", i);
    reg(&p->ds, nm);
    snprintf(nm, sizeof nm, "rcv%d", i);
    reg(&p->dr, nm);
    p->s = login(ns, &p->ds);
    p->r = login(nr, &p->dr);
    p->cross = ns != nr;
  }
  settle();
  wal0 = pg_i64("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint");
  cmds0 = metric_sum("sotto_cluster_redis_commands_total");
  r = relay(secs);
  settle();
  wal1 = pg_i64("SELECT (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint");
  cmds1 = metric_sum("sotto_cluster_redis_commands_total");
  if (!json)
    printf("sotto-server --cluster, %d node%s on one PostgreSQL and one Redis (2 cores shared by everything)\n",
           n_nodes, n_nodes > 1 ? "s" : "");
  row("relay", "msg/s", r);
  if (!json)
    printf("  commits %lld, retried %lld, failed %lld\n", (long long)metric_sum("sotto_commit_batch_size_count"),
           (long long)metric_sum("sotto_commit_retries_total"), (long long)metric_sum("sotto_commit_failures_total"));
  {
    uint64_t relayed = delivered;
    half = fixed_rate > 0 ? fixed_rate : r / 2;
    struct stages st0, st1;
    double c0, w0, cpu;
    int64_t rt0 = metric_sum("sotto_store_round_trips_total"), nb0 = metric_sum("sotto_commit_batch_size_count");
    int64_t ne0 = metric_sum("sotto_commit_batch_size_sum");
    n_lat_all = n_lat_cross = n_split = 0;
    stages_read(&st0);
    c0 = cpu_s();
    w0 = (double)now_us();
    {
      struct timespec rt;
      clock_gettime(CLOCK_REALTIME, &rt);
      phase_t0 = now_us();
      wall_off_us = (int64_t)rt.tv_sec * 1000000 + rt.tv_nsec / 1000 - phase_t0;
    }
    paced(secs, half);
    cpu = (cpu_s() - c0) / (((double)now_us() - w0) / 1e6);
    stages_read(&st1);
    settle();
    row("latency_p99", "ms", p99_ms(lat_all, n_lat_all));
    if (n_nodes > 1) row("cross_node_p99", "ms", p99_ms(lat_cross, n_lat_cross));
    if (!json && n_lat_all) /* the spread (sorted by p99_ms above) */
      printf("  latency p50 %.2f  p90 %.2f  p99 %.2f  max %.2f ms over %zu envelopes\n", lat_all[n_lat_all / 2] / 1e3,
             lat_all[(size_t)((double)(n_lat_all - 1) * 0.9)] / 1e3,
             lat_all[(size_t)((double)(n_lat_all - 1) * 0.99)] / 1e3, lat_all[n_lat_all - 1] / 1e3, n_lat_all);
    stages_print(&st0, &st1);
    if (n_nodes > 1) tail_print(); /* before split_print sorts the parts */
    if (n_nodes > 1) split_print(cpu);
    {
      /* The batches' round trips to PostgreSQL in the paced phase (what a
       * batch costs besides its fsync; 0 from a server without the metric). */
      int64_t rt = metric_sum("sotto_store_round_trips_total") - rt0;
      int64_t nb = metric_sum("sotto_commit_batch_size_count") - nb0;
      int64_t ne = metric_sum("sotto_commit_batch_size_sum") - ne0;
      if (rt > 0 && nb > 0) {
        row("round_trips_per_batch", "count", (double)rt / (double)nb);
        if (!json) printf("  %lld batches of %.1f requests on average\n", (long long)nb, (double)ne / (double)nb);
      }
    }
    if (relayed) {
      row("wal_bytes_per_msg", "bytes", (double)(wal1 - wal0) / (double)relayed);
      row("redis_cmds_per_msg", "cmds", (double)(cmds1 - cmds0) / (double)relayed);
    }
  }
  for (i = 0; i < n_pairs; i++) {
    sotto_net_close(pairs[i].s);
    sotto_net_close(pairs[i].r);
  }
  {
    struct dev s, q;
    struct sotto_net *c;
    int n = smoke ? 1000 : 10000;
    int64_t tb0, tb1;
    reg(&s, "enq_sender");
    reg(&q, "enq_queue");
    c = login(0, &s);
    tb0 = pg_i64("SELECT pg_total_relation_size('messages')");
    row("enqueue_first10k", "msg/s", enqueue(c, q.name, 0, n, &t));
    row("enqueue_last10k", "msg/s", enqueue(c, q.name, n, n, &t));
    tb1 = pg_i64("SELECT pg_total_relation_size('messages')");
    row("pg_bytes_per_queued", "bytes", (double)(tb1 - tb0) / (2.0 * n));
    sotto_net_close(c);
    c = login(n_nodes - 1, &q);
    row("drain", "msg/s", drain(c, 2 * n));
    sotto_net_close(c);
  }
  for (i = 0; i < n_nodes; i++) srv_stop(&node[i]);
  kill(redis_pid, SIGKILL);
  waitpid(redis_pid, NULL, 0);
  sotto_net_ctx_free(ctx);
  for (i = 0; i < n_nodes; i++) srv_rmdir(&node[i]);
  return 0;
}

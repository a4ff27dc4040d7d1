/* SPDX-License-Identifier: Apache-2.0 */
/* bench_attach.c: the attachment rows of the server benchmark (bench_server
 * --rows attach; docs/benchmarks.md "sotto-server").
 *
 *   attach_up    MB/s of a file's bytes through `sotto send USER --file`:
 *                encryption (format v2: AES-256-GCM chunks, SHA-256 digest), BLOB_PUTs
 *                over TLS to sotto-server, its writes to DATA/blobs, COMMIT
 *                and the message; the whole command, process start included
 *   attach_down  MB/s through `sotto receive` of that file: BLOB_GETs, the
 *                checks and decryption, the write to HOME/downloads, DONE
 *
 * The floor moves the same ciphertext bytes in the same frames (PUTs and GETs
 * of three 64 KiB chunks, eight in flight) over one TLS connection to
 * relay_floor, which answers them without storing, encrypting or checking
 * anything. MB/s = the file's bytes (10^6) per second of wall time, the
 * best of 3 rounds for each side (1 with --smoke), sotto's and the floor's
 * rounds interleaved. The
 * client is sotto-test (the same sources with test hooks) with the fast
 * store KDF, so that opening the store does not weigh on the figure
 * (SOTTO_BENCH_CLIENT=PATH runs another sotto-test instead, e.g. an older
 * build's, to compare two clients against the same server and floor). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_attach.h"
#include "net.h"
#include "proto.h"
#include "server_load.h"

#ifndef SOTTO_TEST_BIN
#error "SOTTO_TEST_BIN must be defined"
#endif

#define CHUNK (64 * 1024 + 16)
#define UNIT (3 * CHUNK)
#define WINDOW 8

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The CPU time (user + system) of the calling thread so far, in seconds. */
static double cpu_s(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_THREAD, &ru) != 0) return 0;
  return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) + (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Runs sotto-test --home DIR/home ARGS... with output to DIR/out; its exit status. */
static int run(const char *dir, const char *home, const char *const *args) {
  const char *argv[16];
  char h[300], out[300];
  size_t n = 0;
  pid_t pid;
  int st = 0;
  snprintf(h, sizeof h, "%s/%s", dir, home);
  snprintf(out, sizeof out, "%s/%s.out", dir, home);
  /* SOTTO_BENCH_CLIENT=PATH: another build's sotto-test, to compare builds
   * against the same server and floor (docs/benchmarks.md). */
  argv[n++] = getenv("SOTTO_BENCH_CLIENT") && *getenv("SOTTO_BENCH_CLIENT") ? getenv("SOTTO_BENCH_CLIENT") : SOTTO_TEST_BIN;
  argv[n++] = "--home";
  argv[n++] = h;
  while (*args && n < 15) argv[n++] = *args++;
  argv[n] = NULL;
  if ((pid = fork()) < 0) lg_die("fork: %s", strerror(errno));
  if (pid == 0) {
    int fd = open(out, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    setenv("SOTTO_TEST_KDF", "fast", 1);
    setenv("SOTTO_PASSPHRASE", "bench attach passphrase, long enough", 1);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  if (waitpid(pid, &st, 0) != pid) return -1;
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void must(const char *dir, const char *home, const char *const *args, const char *what) {
  if (run(dir, home, args) != 0) lg_die("attach: %s failed (see %s/%s.out)", what, dir, home);
}

/* One TLS connection to the floor, authenticated as anyone. */
static struct sotto_net *floor_conn(struct sotto_net_ctx *ctx, const char *port) {
  struct sotto_net *c = NULL;
  uint8_t secret[SOTTO_SRV_SECRET_LEN] = {0};
  if (sotto_net_connect(ctx, "127.0.0.1", port, 10000, 1, &c) != 0 ||
      sotto_net_auth(c, "floorbench", 1, secret, NULL, NULL) != 0)
    lg_die("attach: cannot connect to relay_floor");
  return c;
}

/* Waits for the answer to request id; its payload length. */
static size_t floor_answer(struct sotto_net *c, uint32_t id) {
  struct sotto_net_event ev;
  for (;;) {
    int rc = sotto_net_next_event(c, 30000, &ev);
    size_t n;
    if (rc != 1) lg_die("attach: relay_floor did not answer (%d)", rc);
    if (ev.kind != SOTTO_NET_EV_ANSWER) {
      sotto_net_event_clear(&ev);
      continue;
    }
    if (ev.req_id != id || ev.code) lg_die("attach: relay_floor answered out of order or with an error");
    n = ev.payload_len;
    sotto_net_event_clear(&ev);
    return n;
  }
}

/* The floor: csize bytes up (PUT) or down (GET), WINDOW in flight. Seconds. */
static double floor_move(struct sotto_net *c, uint64_t csize, int up) {
  static uint8_t buf[UNIT];
  uint8_t id[16] = {0};
  uint32_t ids[WINDOW];
  uint64_t next = 0, done = 0;
  int nfl = 0;
  double t0 = now_s();
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = (uint8_t)(i * 131 + 7);
  while (done < csize) {
    while (nfl < WINDOW && next < csize) {
      struct sotto_srv_blob_req m;
      size_t len = csize - next < UNIT ? (size_t)(csize - next) : UNIT;
      memset(&m, 0, sizeof m);
      m.id = id;
      m.offset = next;
      if (up) {
        m.data = buf;
        m.data_len = len;
      } else {
        m.max = (uint32_t)len;
      }
      if (sotto_net_blob_async(c, up ? SOTTO_SRV_BLOB_PUT : SOTTO_SRV_BLOB_GET, &m, &ids[nfl]) != 0)
        lg_die("attach: writing to relay_floor failed");
      nfl++;
      next += len;
    }
    {
      size_t n = floor_answer(c, ids[0]), len = csize - done < UNIT ? (size_t)(csize - done) : UNIT;
      if (!up && n != len) lg_die("attach: relay_floor sent %zu bytes for %zu", n, len);
      memmove(ids, ids + 1, (size_t)(nfl - 1) * sizeof ids[0]);
      nfl--;
      done += len;
    }
  }
  return now_s() - t0;
}

void bench_attach(const char *srv_port, const char *floor_port, const char *floor_fp, int smoke,
                  struct attach_result *r) {
  char dir[] = "/tmp/sotto-bench-attach-XXXXXX", path[300], server[64], got[300];
  uint64_t size = smoke ? (uint64_t)8 << 20 : (uint64_t)256 << 20, csize, n;
  uint8_t *blk;
  struct sotto_net_ctx *ctx;
  struct sotto_net *c;
  double t0, ts_up = 0, ts_down = 0, tf_up = 0, tf_down = 0;
  int fd, k, rounds = smoke ? 1 : 3;
  struct stat st;

  if (!mkdtemp(dir)) lg_die("mkdtemp: %s", strerror(errno));
  snprintf(server, sizeof server, "127.0.0.1:%s", srv_port);
  {
    const char *init[] = {"init", NULL};
    const char *reg_a[] = {"register", "--server", server, "benchup", NULL};
    const char *reg_b[] = {"register", "--server", server, "benchdown", NULL};
    const char *hello[] = {"send", "benchdown", "hello", NULL};
    const char *recv[] = {"receive", NULL};
    must(dir, "a", init, "sotto init");
    must(dir, "b", init, "sotto init");
    must(dir, "a", reg_a, "sotto register");
    must(dir, "b", reg_b, "sotto register");
    /* The session first, so that the rows time the file alone. */
    must(dir, "a", hello, "sotto send");
    must(dir, "b", recv, "sotto receive");
  }
  /* The file: random-looking bytes (not compressible), written in blocks. */
  snprintf(path, sizeof path, "%s/file.bin", dir);
  if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) lg_die("attach: cannot create the file");
  if ((blk = malloc(1 << 20)) == NULL) lg_die("attach: out of memory");
  for (n = 0; n < size; n += 1 << 20) {
    for (k = 0; k < (1 << 20) / 4; k++) ((uint32_t *)blk)[k] = (uint32_t)(n + (uint64_t)k) * 2654435761u;
    if (write(fd, blk, 1 << 20) != 1 << 20) lg_die("attach: cannot write the file");
  }
  free(blk);
  /* On disk before the clock starts, as a file one sends usually is: else
   * the kernel writes these 256 MiB back during the upload, on the same
   * disk as the server's blob (the floor has no file and never met it). */
  if (fsync(fd) != 0) lg_die("attach: cannot fsync the file");
  close(fd);
  /* Rounds of: sotto up, sotto down, the floor up, the floor down; each
   * side's best round counts (the same rule for both, so that a burst of
   * the machine's other load in one round weighs on neither more). */
  csize = size + ((size + 65535) / 65536) * 16;
  if ((ctx = sotto_net_ctx_new(floor_fp, NULL)) == NULL) lg_die("attach: bad floor fingerprint");
  c = floor_conn(ctx, floor_port);
  snprintf(got, sizeof got, "%s/b/downloads/file.bin", dir);
  for (k = 0; k < rounds; k++) {
    const char *up[] = {"send", "benchdown", "--file", path, NULL};
    const char *down[] = {"receive", NULL};
    double u, d;
    t0 = now_s();
    must(dir, "a", up, "sotto send --file");
    u = now_s() - t0;
    t0 = now_s();
    must(dir, "b", down, "sotto receive (the file)");
    d = now_s() - t0;
    if (stat(got, &st) != 0 || (uint64_t)st.st_size != size) lg_die("attach: the file did not arrive whole");
    if (unlink(got) != 0) lg_die("attach: cannot remove the received file");
    if (k == 0 || u < ts_up) ts_up = u;
    if (k == 0 || d < ts_down) ts_down = d;
    {
      double c0 = cpu_s(), fu = floor_move(c, csize, 1), c1 = cpu_s(), fd_ = floor_move(c, csize, 0), c2 = cpu_s();
      if (k == 0 || fu < tf_up) tf_up = fu;
      if (k == 0 || fd_ < tf_down) tf_down = fd_;
      /* Every round on stderr (the rows keep the best): to see the spread,
       * with the CPU time of the floor's client (this thread). */
      fprintf(stderr,
              "attach round %d: up sotto %.1f floor %.1f MB/s, down sotto %.1f floor %.1f MB/s; floor client CPU up "
              "%.2f s, down %.2f s\n",
              k + 1, (double)size / 1e6 / u, (double)size / 1e6 / fu, (double)size / 1e6 / d, (double)size / 1e6 / fd_,
              c1 - c0, c2 - c1);
    }
  }
  sotto_net_close(c);
  sotto_net_ctx_free(ctx);
  r->s_up = (double)size / 1e6 / ts_up;
  r->s_down = (double)size / 1e6 / ts_down;
  r->f_up = (double)size / 1e6 / tf_up;
  r->f_down = (double)size / 1e6 / tf_down;
  r->mib = (double)size / (1 << 20);
  {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "bench_server: could not remove %s\n", dir);
  }
}

/* SPDX-License-Identifier: Apache-2.0 */
/* evil_server.c: a malicious sotto-server for the client tests.
 *
 *   evil_server proxy DATA_DIR UPSTREAM_PORT MODE_FILE LOG_FILE
 *       Listens on 127.0.0.1 port 0 (prints "listening 127.0.0.1:PORT") with
 *       the certificate and key of the real sotto-server in DATA_DIR, so a
 *       client pins it as that server. Each connection (one child process
 *       each) is relayed to the real server on 127.0.0.1:UPSTREAM_PORT
 *       through client/net, frame by frame with the real codec, and then
 *       misbehaves as the first word of MODE_FILE (read at each connection)
 *       says:
 *         pass     relay only;
 *         bad      before the first envelope, push malformed ones: a sender
 *                  name that breaks the username rules, a body over the
 *                  protocol cap, an unknown frame type, a body shorter than
 *                  declared, a DRAINED with trailing bytes;
 *         flood    once logged in, push envelopes (64 KiB of noise each,
 *                  from "mallory") as fast as the client takes them, without
 *                  end, answering its requests in between;
 *         trickle  once logged in, start an envelope frame and send one
 *                  byte of it every 100 ms, without end (the real server's
 *                  answers stay behind it);
 *         old      relay, but answer a BLOB_FETCHES (0x47) as a server from
 *                  before that request does: CLOSE(malformed), then the
 *                  connection ends (LOG_FILE gets "old: blob_fetches");
 *         mismatch FILE  relay, except that every SEND_MULTI is answered
 *                  ERR(30) carrying the bytes of FILE as the recipient's
 *                  "current signed device list" (a forged or an older list;
 *                  nothing reaches the real server);
 *         burst    once logged in, push BURST_N envelopes with a bad sender
 *                  name and DRAINED in one write, then nothing (more than
 *                  the client's event queue holds at once). Like a real
 *                  server, a later connection gets again those the client
 *                  has not acknowledged yet (as LOG_FILE says).
 *       Acknowledgements the client sends are appended to LOG_FILE
 *       ("ack ID"), so a test can see which envelopes were acked.
 *
 *   evil_server measure LIMIT_S CMD ARGS...
 *       Runs CMD, waits for it (killing it after LIMIT_S seconds) and prints
 *       "exit=N maxrss_kb=K ms=T killed=0|1" (peak resident memory from
 *       wait4, wall time), then exits with CMD's code.
 *
 * Every wait is bounded: a child ends when its client closes or after
 * EVIL_MAX_S seconds; the parent ends on SIGTERM. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "net.h"
#include "proto.h"
#include "wire.h"

#define EVIL_MAX_S 120
#define FLOOD_BODY (64 * 1024)
#define MAX_KIDS 64
#define BURST_N 1300

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void die(const char *what) {
  fprintf(stderr, "evil_server: %s\n", what);
  exit(1);
}

/* ---- measure ----------------------------------------------------------------- */

/* Runs argv, killing it after limit_s seconds; prints its exit status, peak
 * RSS and wall time ("killed=1" if the limit ended it). */
static int measure(int limit_s, char **argv) {
  int64_t t0 = now_ms();
  struct rusage ru;
  int st = 0, killed = 0;
  pid_t pid = fork(), w;
  if (pid < 0) die("fork");
  if (pid == 0) {
    execvp(argv[0], argv);
    _exit(127);
  }
  while ((w = wait4(pid, &st, WNOHANG, &ru)) == 0) {
    if (now_ms() - t0 > (int64_t)limit_s * 1000 && !killed) {
      kill(pid, SIGKILL);
      killed = 1;
    }
    usleep(20000);
  }
  if (w != pid) die("wait4");
  printf("exit=%d maxrss_kb=%ld ms=%lld killed=%d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
         ru.ru_maxrss, (long long)(now_ms() - t0), killed);
  return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}

/* Which burst envelopes the client acknowledged so far, from LOG_FILE
 * (connections are separate processes; the log is what they share). */
static const char *g_log_path;
static void burst_acked(uint8_t acked[BURST_N]) {
  FILE *f = fopen(g_log_path, "r");
  unsigned long long id;
  char line[64];
  memset(acked, 0, BURST_N);
  if (!f) return;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "ack %llu", &id) == 1 && id >= 700000000ULL && id < 700000000ULL + BURST_N)
      acked[id - 700000000ULL] = 1;
  fclose(f);
}

/* ---- one relayed connection ---------------------------------------------------- */

struct out {
  uint8_t *p;
  size_t len, off, cap;
};

struct relay {
  SSL *ssl; /* to the client */
  int fd;
  struct sotto_net *up;
  const char *mode;
  FILE *log;
  uint8_t in[SOTTO_SRV_FRAME_HDR + SOTTO_SRV_MAX_FRAME];
  size_t in_len;
  struct out o;
  int authed, injected, burst_done;
  uint32_t auth_req;
  uint64_t flood_id;
  const uint8_t *mm_list; /* mode mismatch: the list its ERR(30) carries */
  size_t mm_len;
  unsigned mm_count;
};

static void out_add(struct out *o, const uint8_t *p, size_t n) {
  if (o->len + n > o->cap) {
    size_t cap = (o->len + n) * 2;
    if ((o->p = realloc(o->p, cap)) == NULL) die("nomem");
    o->cap = cap;
  }
  memcpy(o->p + o->len, p, n);
  o->len += n;
}

static void frame(struct relay *r, uint8_t type, uint32_t req_id, const uint8_t *payload, size_t len) {
  uint8_t hdr[9];
  sotto__srv_frame_hdr(hdr, type, req_id, len);
  out_add(&r->o, hdr, 9);
  if (len) out_add(&r->o, payload, len);
}

/* Writes what is pending without blocking. -1 when the client is gone. */
static int flush_out(struct relay *r) {
  while (r->o.off < r->o.len) {
    size_t n = 0;
    int ret = SSL_write_ex(r->ssl, r->o.p + r->o.off, r->o.len - r->o.off, &n);
    if (ret != 1) {
      int e = SSL_get_error(r->ssl, ret);
      ERR_clear_error();
      return e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ ? 0 : -1;
    }
    r->o.off += n;
  }
  r->o.off = r->o.len = 0;
  return 0;
}

static size_t env_payload(uint8_t *b, size_t cap, uint64_t id, const char *sender, size_t sender_len,
                          size_t body_len, uint32_t declared) {
  static uint8_t body[SOTTO_SRV_MAX_MESSAGE + 16];
  struct sotto__wr w;
  size_t i;
  for (i = 0; i < body_len; i++) body[i] = (uint8_t)(id * 31 + i * 7);
  body[0] = 0x33; /* looks like a version 3 message */
  sotto__wr_init(&w, b, cap);
  sotto__wr_u64be(&w, id);
  sotto__srv_put_str8(&w, sender, sender_len);
  sotto__wr_u32be(&w, 1);
  sotto__wr_u32be(&w, 1);
  sotto__wr_u8(&w, 1);
  sotto__wr_u64be(&w, 1700000000000ull + id);
  sotto__wr_u32be(&w, declared);
  sotto__wr_bytes(&w, body, body_len);
  if (w.err) die("env");
  return w.len;
}

/* The malformed envelopes of mode "bad", ids 900000001.. */
static void inject_bad(struct relay *r) {
  static uint8_t b[SOTTO_SRV_MAX_MESSAGE + 256];
  static const char bad_name[] = "Mallory\x1b[31m";
  size_t n;
  n = env_payload(b, sizeof b, 900000001, bad_name, sizeof bad_name - 1, 16, 16);
  frame(r, SOTTO_SRV_MSG, 0, b, n);
  n = env_payload(b, sizeof b, 900000002, "mallory", 7, SOTTO_SRV_MAX_MESSAGE + 1, SOTTO_SRV_MAX_MESSAGE + 1);
  frame(r, SOTTO_SRV_MSG, 0, b, n);
  frame(r, 0x9f, 0, (const uint8_t *)"junk", 4);
  n = env_payload(b, sizeof b, 900000003, "mallory", 7, 20, 4000);
  frame(r, SOTTO_SRV_MSG, 0, b, n);
  frame(r, SOTTO_SRV_DRAINED, 0, (const uint8_t *)"x", 1);
}

/* An event from the real server, re-encoded for the client. */
static void relay_event(struct relay *r, const struct sotto_net_event *ev) {
  static uint8_t b[SOTTO_SRV_MAX_FRAME];
  struct sotto__wr w;
  int passthru = strcmp(r->mode, "bad") == 0 || strcmp(r->mode, "pass") == 0 || strcmp(r->mode, "old") == 0 ||
                 strcmp(r->mode, "mismatch") == 0;
  sotto__wr_init(&w, b, sizeof b);
  switch (ev->kind) {
    case SOTTO_NET_EV_ANSWER:
      if (ev->code && ev->payload_len) { /* ERR(30) with the recipient's list */
        sotto__srv_put_err_list(&w, ev->code, sotto__srv_code_str(ev->code), ev->payload, ev->payload_len);
        frame(r, SOTTO_SRV_ERR, ev->req_id, b, w.len);
      } else if (ev->code) {
        sotto__srv_put_err(&w, ev->code, sotto__srv_code_str(ev->code));
        frame(r, SOTTO_SRV_ERR, ev->req_id, b, w.len);
      } else {
        frame(r, SOTTO_SRV_OK, ev->req_id, ev->payload, ev->payload_len);
      }
      if (ev->req_id == r->auth_req && ev->code == 0) r->authed = 1;
      return;
    case SOTTO_NET_EV_MSG:
      if (!passthru) return;
      if (strcmp(r->mode, "bad") == 0 && !r->injected) {
        inject_bad(r);
        r->injected = 1;
      }
      {
        struct sotto_srv_env e = {ev->id, {(const uint8_t *)ev->sender, strlen(ev->sender)}, ev->sender_device,
                                  ev->device_id, ev->type, ev->timestamp_ms, ev->body, ev->body_len};
        sotto__srv_put_env(&w, &e);
      }
      frame(r, SOTTO_SRV_MSG, 0, b, w.len);
      return;
    case SOTTO_NET_EV_DRAINED:
      if (passthru) frame(r, SOTTO_SRV_DRAINED, 0, NULL, 0);
      return;
    case SOTTO_NET_EV_KEYS_LOW:
      sotto__wr_u32be(&w, ev->ec_left);
      sotto__wr_u32be(&w, ev->kem_left);
      if (passthru) frame(r, SOTTO_SRV_KEYS_LOW_PUSH, 0, b, w.len);
      return;
    case SOTTO_NET_EV_CLOSE:
      sotto__srv_put_err(&w, ev->code, sotto__srv_code_str(ev->code));
      frame(r, SOTTO_SRV_CLOSE, 0, b, w.len);
      return;
    default:
      return;
  }
}

/* Complete frames from the client go to the real server unchanged. */
static int relay_client_frames(struct relay *r) {
  size_t off = 0;
  while (r->in_len - off >= SOTTO_SRV_FRAME_HDR) {
    uint32_t blen;
    struct sotto_srv_frame f;
    if (sotto__srv_frame_len(r->in + off, SOTTO_SRV_MAX_FRAME, &blen) != 0) return -1;
    if (r->in_len - off - SOTTO_SRV_FRAME_HDR < blen) break;
    if (sotto__srv_frame_parse(r->in + off + SOTTO_SRV_FRAME_HDR, blen, &f) != 0) return -1;
    if (f.type == SOTTO_SRV_AUTH) r->auth_req = f.req_id;
    if (f.type == SOTTO_SRV_BLOB_FETCHES && strcmp(r->mode, "old") == 0) {
      uint8_t b[64];
      struct sotto__wr w;
      sotto__wr_init(&w, b, sizeof b);
      sotto__srv_put_err(&w, SOTTO_SRV_E_MALFORMED, sotto__srv_code_str(SOTTO_SRV_E_MALFORMED));
      frame(r, SOTTO_SRV_CLOSE, 0, b, w.len);
      (void)flush_out(r);
      fprintf(r->log, "old: blob_fetches\n");
      fflush(r->log);
      return -1;
    }
    if (f.type == SOTTO_SRV_ACK) {
      uint64_t id;
      if (sotto__srv_parse_ack(f.p, f.len, &id) == 0) {
        fprintf(r->log, "ack %llu\n", (unsigned long long)id);
        fflush(r->log);
      }
    }
    if (f.type == SOTTO_SRV_SEND_MULTI && r->mm_list) {
      static uint8_t b[SOTTO_SRV_MAX_ERRMSG + SOTTO_SRV_MAX_DEVLIST + 8];
      struct sotto__wr w;
      sotto__wr_init(&w, b, sizeof b);
      sotto__srv_put_err_list(&w, SOTTO_SRV_E_MISMATCHED_DEVICES, "mismatched devices", r->mm_list, r->mm_len);
      if (w.err) die("mismatch list");
      frame(r, SOTTO_SRV_ERR, f.req_id, b, w.len);
      fprintf(r->log, "mismatch %u\n", ++r->mm_count);
      fflush(r->log);
      off += SOTTO_SRV_FRAME_HDR + blen;
      continue;
    }
    if (sotto_net_write_raw(r->up, r->in + off, SOTTO_SRV_FRAME_HDR + blen) != 0) return -1;
    off += SOTTO_SRV_FRAME_HDR + blen;
  }
  memmove(r->in, r->in + off, r->in_len - off);
  r->in_len -= off;
  return 0;
}

static uint8_t mm_buf[SOTTO_SRV_MAX_DEVLIST];
static size_t mm_len;

static void serve(SSL *ssl, int fd, int up_port, const char *pin, const char *mode, FILE *log) {
  static struct relay r;
  struct sotto_net_ctx *ctx = sotto_net_ctx_new(pin, NULL);
  char port[16];
  int64_t end = now_ms() + EVIL_MAX_S * 1000, next_trickle = 0;
  size_t trickle_off = 0;
  static uint8_t trickle[64];
  memset(&r, 0, sizeof r);
  r.ssl = ssl;
  r.fd = fd;
  r.mode = mode;
  r.log = log;
  if (strcmp(mode, "mismatch") == 0) {
    if (mm_len == 0) die("mismatch: no list");
    r.mm_list = mm_buf;
    r.mm_len = mm_len;
  }
  snprintf(port, sizeof port, "%d", up_port);
  if (!ctx || sotto_net_connect(ctx, "127.0.0.1", port, 5000, 0, &r.up) != 0) die("upstream");
  sotto_net_set_timeout(r.up, 5000);
  /* A MSG frame that declares 200,000 bytes and never delivers them. */
  memset(trickle, 0, sizeof trickle);
  sotto__srv_frame_hdr(trickle, SOTTO_SRV_MSG, 0, 200000 - SOTTO_SRV_BODY_HDR);
  while (now_ms() < end) {
    struct pollfd p[2] = {{fd, POLLIN, 0}, {sotto_net_fd(r.up), POLLIN, 0}};
    struct sotto_net_event ev;
    int rc;
    /* Flood: keep a few envelopes ready, so that the client gets them as
     * fast as it reads. */
    while (r.authed && strcmp(mode, "flood") == 0 && r.o.len - r.o.off < 4 * FLOOD_BODY) {
      static uint8_t b[FLOOD_BODY + 128];
      size_t n = env_payload(b, sizeof b, 800000000 + r.flood_id, "mallory", 7, FLOOD_BODY, FLOOD_BODY);
      r.flood_id++;
      frame(&r, SOTTO_SRV_MSG, 0, b, n);
    }
    if (r.o.len > r.o.off) p[0].events |= POLLOUT;
    (void)poll(p, 2, 20);
    /* From the client. */
    for (;;) {
      size_t n = 0;
      int ret = SSL_read_ex(ssl, r.in + r.in_len, sizeof r.in - r.in_len, &n);
      if (ret != 1) {
        int e = SSL_get_error(ssl, ret);
        ERR_clear_error();
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
        goto out; /* the client is gone */
      }
      r.in_len += n;
      if (relay_client_frames(&r) != 0) goto out;
    }
    /* From the real server. */
    while ((rc = sotto_net_next_event(r.up, 0, &ev)) == 1) {
      /* A trickling server is stuck inside one frame: nothing else of the
       * real server's gets through to the client any more. */
      if (trickle_off == 0 || strcmp(mode, "trickle") != 0) relay_event(&r, &ev);
      sotto_net_event_clear(&ev);
    }
    if (rc != 0) goto out;
    if (r.authed && strcmp(mode, "burst") == 0 && !r.burst_done) {
      static uint8_t b[256];
      static uint8_t acked[BURST_N];
      burst_acked(acked);
      for (uint64_t i = 0; i < BURST_N; i++) {
        if (acked[i]) continue;
        size_t n = env_payload(b, sizeof b, 700000000 + i, "Bad Name", 8, 16, 16);
        frame(&r, SOTTO_SRV_MSG, 0, b, n);
      }
      frame(&r, SOTTO_SRV_DRAINED, 0, NULL, 0);
      r.burst_done = 1;
    }
    if (r.authed && strcmp(mode, "trickle") == 0 && now_ms() >= next_trickle && r.o.len == r.o.off) {
      out_add(&r.o, trickle + (trickle_off < sizeof trickle ? trickle_off : sizeof trickle - 1), 1);
      trickle_off++;
      next_trickle = now_ms() + 100;
    }
    if (flush_out(&r) != 0) goto out;
  }
out:
  fprintf(log, "relayed: flood %llu\n", (unsigned long long)r.flood_id);
  fflush(log);
  sotto_net_close(r.up);
  sotto_net_ctx_free(ctx);
  free(r.o.p);
}

static void read_mode(const char *path, char *mode, size_t cap) {
  FILE *f = fopen(path, "r");
  char arg[512];
  snprintf(mode, cap, "pass");
  if (f) {
    if (fscanf(f, "%15s", mode) != 1) snprintf(mode, cap, "pass");
    /* mismatch FILE: the list bytes (at most SOTTO_SRV_MAX_DEVLIST) */
    if (strcmp(mode, "mismatch") == 0 && fscanf(f, "%511s", arg) == 1) {
      FILE *l = fopen(arg, "rb");
      if (l) {
        mm_len = fread(mm_buf, 1, sizeof mm_buf, l);
        fclose(l);
      }
    }
    fclose(f);
  }
}

static volatile sig_atomic_t stop;
static void on_term(int sig) {
  (void)sig;
  stop = 1;
}

int main(int argc, char **argv) {
  SSL_CTX *sctx;
  struct sockaddr_in a;
  socklen_t al = sizeof a;
  char crt[4096], key[4096], pin[65];
  int lfd, up_port, one = 1;
  FILE *log;
  struct sigaction sa;
  pid_t kids[MAX_KIDS];
  size_t n_kids = 0;

  if (argc >= 4 && strcmp(argv[1], "measure") == 0) return measure(atoi(argv[2]), argv + 3);
  if (argc != 6 || strcmp(argv[1], "proxy") != 0) {
    fprintf(stderr, "usage: evil_server proxy DATA_DIR UPSTREAM_PORT MODE_FILE LOG_FILE\n"
                    "       evil_server measure LIMIT_S CMD ARGS...\n");
    return 2;
  }
  up_port = atoi(argv[3]);
  snprintf(crt, sizeof crt, "%s/tls.crt", argv[2]);
  snprintf(key, sizeof key, "%s/tls.key", argv[2]);
  if ((log = fopen(argv[5], "a")) == NULL) die(argv[5]);
  g_log_path = argv[5];
  if (sotto_net_fetch_fingerprint("127.0.0.1", argv[3], 5000, pin) != 0) die("upstream fingerprint");
  if ((sctx = SSL_CTX_new(TLS_server_method())) == NULL || SSL_CTX_set_min_proto_version(sctx, TLS1_3_VERSION) != 1 ||
      SSL_CTX_use_certificate_file(sctx, crt, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_use_PrivateKey_file(sctx, key, SSL_FILETYPE_PEM) != 1)
    die("tls setup");
  SSL_CTX_set_mode(sctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if ((lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) die("socket");
  setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 16) != 0 ||
      getsockname(lfd, (struct sockaddr *)&a, &al) != 0)
    die("listen");
  printf("listening 127.0.0.1:%d\n", ntohs(a.sin_port));
  fflush(stdout);
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  while (!stop) {
    struct pollfd p = {lfd, POLLIN, 0};
    int fd;
    pid_t pid;
    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
      for (size_t i = 0; i < n_kids; i++)
        if (kids[i] == pid) kids[i] = kids[--n_kids];
    if (poll(&p, 1, 200) <= 0) continue;
    if ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0) continue;
    pid = fork();
    if (pid == 0) {
      char mode[16];
      SSL *ssl = SSL_new(sctx);
      signal(SIGTERM, SIG_DFL);
      close(lfd);
      read_mode(argv[4], mode, sizeof mode);
      alarm(EVIL_MAX_S + 10);
      if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_accept(ssl) != 1) _exit(0);
      fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
      serve(ssl, fd, up_port, pin, mode, log);
      SSL_free(ssl);
      close(fd);
      _exit(0);
    }
    if (pid > 0 && n_kids < MAX_KIDS) kids[n_kids++] = pid;
    close(fd);
  }
  /* End the connections still open (our own children, by pid). */
  for (size_t i = 0; i < n_kids; i++) kill(kids[i], SIGTERM);
  while (waitpid(-1, NULL, 0) > 0) {
  }
  return 0;
}

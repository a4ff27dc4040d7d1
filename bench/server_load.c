/* SPDX-License-Identifier: Apache-2.0 */
/* server_load.c: see server_load.h. */
#define _GNU_SOURCE
#include "server_load.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "wire.h"

#define READ_CHUNK (64 * 1024)
#define CARRY_MAX (SOTTO_SRV_FRAME_HDR + SOTTO_SRV_MAX_FRAME)
#define MAX_EVENTS 512
#define HELLO_REQ 1
#define AUTH_REQ 2

struct lg {
  const char *name;
  SSL_CTX *ctx;
  uint8_t pin[32];
  struct sockaddr_in addr;
  int ep;
  lg_frame_cb on_frame;
  lg_ready_cb on_ready;
  void *cb_ctx;
  struct lg_conn *dirty;
  struct lg_conn *dead; /* closed, freed once no event can point at them */
  size_t n_open, n_logging_in;
  uint8_t *scratch; /* CARRY_MAX + READ_CHUNK */
};

void lg_die(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "bench_server: ");
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "; aborting (no figures are printed)\n");
  exit(1);
}

int64_t lg_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct lg *lg_new(const char *name, const char *port, const char *pin_hex) {
  struct lg *g = calloc(1, sizeof *g);
  size_t bin_len = 0;
  char *end = NULL;
  unsigned long p = strtoul(port, &end, 10);
  if (!g || (g->scratch = malloc(CARRY_MAX + READ_CHUNK)) == NULL) lg_die("out of memory");
  g->name = name;
  if (strlen(pin_hex) != 64 || sodium_hex2bin(g->pin, 32, pin_hex, 64, NULL, &bin_len, NULL) != 0 ||
      bin_len != 32)
    lg_die("%s: bad fingerprint '%s'", name, pin_hex);
  if (!end || *end || p == 0 || p > 65535) lg_die("%s: bad port '%s'", name, port);
  g->addr.sin_family = AF_INET;
  g->addr.sin_port = htons((uint16_t)p);
  g->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if ((g->ctx = SSL_CTX_new(TLS_client_method())) == NULL) lg_die("SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(g->ctx, TLS1_3_VERSION);
  /* Idle client connections give their record buffers back too. */
  SSL_CTX_set_mode(
      g->ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_session_cache_mode(g->ctx, SSL_SESS_CACHE_OFF);
  /* One read() per batch of records instead of two per record. */
  SSL_CTX_set_read_ahead(g->ctx, 1);
  /* The fingerprint pin replaces chain validation (checked after the
   * handshake, as client/net does). */
  SSL_CTX_set_verify(g->ctx, SSL_VERIFY_NONE, NULL);
  if ((g->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) lg_die("epoll_create1: %s", strerror(errno));
  return g;
}

void lg_set_cb(struct lg *g, lg_frame_cb on_frame, lg_ready_cb on_ready, void *ctx) {
  g->on_frame = on_frame;
  g->on_ready = on_ready;
  g->cb_ctx = ctx;
}

size_t lg_open(const struct lg *g) {
  return g->n_open;
}
size_t lg_pending_logins(const struct lg *g) {
  return g->n_logging_in;
}

static void ev_set(struct lg_conn *c) {
  struct epoll_event e;
  uint32_t want = EPOLLIN;
  if (c->state == LG_CONNECTING)
    want = EPOLLOUT;
  else if (c->state == LG_HANDSHAKE)
    want = c->want_write ? EPOLLOUT : EPOLLIN;
  else if (c->wlen > c->woff || c->want_write)
    want |= EPOLLOUT;
  if (c->registered && want == c->ev) return;
  e.events = want;
  e.data.ptr = c;
  if (epoll_ctl(c->g->ep, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) != 0)
    lg_die("%s: epoll_ctl: %s", c->g->name, strerror(errno));
  c->registered = 1;
  c->ev = want;
}

struct lg_conn *lg_connect(struct lg *g, const struct lg_dev *dev, int auth) {
  struct lg_conn *c = calloc(1, sizeof *c);
  int one = 1;
  if (!c) lg_die("out of memory");
  c->g = g;
  c->dev = dev;
  c->auth = (uint8_t)auth;
  c->next_req = 16;
  c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0) lg_die("%s: socket: %s (raise the open-files limit?)", g->name, strerror(errno));
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (connect(c->fd, (struct sockaddr *)&g->addr, sizeof g->addr) != 0 && errno != EINPROGRESS)
    lg_die("%s: connect: %s", g->name, strerror(errno));
  c->state = LG_CONNECTING;
  g->n_open++;
  g->n_logging_in++;
  ev_set(c);
  return c;
}

void lg_close(struct lg_conn *c) {
  struct lg *g = c->g;
  if (c->closed) return;
  if (c->registered) epoll_ctl(g->ep, EPOLL_CTL_DEL, c->fd, NULL);
  if (c->ssl) {
    if (c->state >= LG_HELLO) (void)SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
    ERR_clear_error();
  }
  close(c->fd);
  if (c->state != LG_READY) g->n_logging_in--;
  g->n_open--;
  free(c->rbuf);
  free(c->wbuf);
  c->closed = 1;
  c->rbuf = c->wbuf = NULL;
  c->rlen = c->wlen = c->woff = c->wcap = 0;
  /* The struct lives on until the end of the poll call: events of the same
   * batch, or the dirty list, may still point at it. */
  c->znext = g->dead;
  g->dead = c;
}

static void free_dead(struct lg *g) {
  while (g->dead) {
    struct lg_conn *c = g->dead;
    g->dead = c->znext;
    free(c);
  }
}

/* ---- output ------------------------------------------------------------------- */

static uint8_t *wreserve(struct lg_conn *c, size_t n) {
  if (c->woff == c->wlen) c->woff = c->wlen = 0;
  if (n > c->wcap - c->wlen) {
    size_t cap = c->wcap ? c->wcap : 512;
    uint8_t *p;
    if (c->woff) {
      memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
      c->wlen -= c->woff;
      c->woff = 0;
    }
    while (cap - c->wlen < n) cap *= 2;
    if (cap > (1u << 30) || (p = realloc(c->wbuf, cap)) == NULL) lg_die("out of memory (write buffer)");
    c->wbuf = p;
    c->wcap = (uint32_t)cap;
  }
  if (!c->dirty) {
    c->dirty = 1;
    c->dnext = c->g->dirty;
    c->g->dirty = c;
  }
  return c->wbuf + c->wlen;
}

void lg_frame(struct lg_conn *c, uint8_t type, uint32_t req_id, const void *payload, size_t len) {
  uint8_t *p = wreserve(c, 9 + len);
  sotto__srv_frame_hdr(p, type, req_id, len);
  if (len) memcpy(p + 9, payload, len);
  c->wlen += (uint32_t)(9 + len);
}

void lg_send(struct lg_conn *c, uint32_t req_id, const char *user, uint32_t device_id, const uint8_t *body,
             size_t body_len) {
  size_t ulen = strlen(user), plen = 1 + ulen + 4 + 1 + 4 + body_len;
  uint8_t *p = wreserve(c, 9 + plen);
  struct sotto__wr w;
  sotto__srv_frame_hdr(p, SOTTO_SRV_SEND, req_id, plen);
  sotto__wr_init(&w, p + 9, plen);
  sotto__srv_put_str8(&w, user, ulen);
  sotto__wr_u32be(&w, device_id);
  sotto__wr_u8(&w, 1);
  sotto__wr_u32be(&w, (uint32_t)body_len);
  sotto__wr_bytes(&w, body, body_len);
  if (w.err || w.len != plen) lg_die("encoding a SEND failed");
  c->wlen += (uint32_t)(9 + plen);
}

void lg_ack(struct lg_conn *c, uint32_t req_id, uint64_t server_id) {
  uint8_t b[8];
  struct sotto__wr w;
  sotto__wr_init(&w, b, sizeof b);
  sotto__wr_u64be(&w, server_id);
  lg_frame(c, SOTTO_SRV_ACK, req_id, b, sizeof b);
}

static void conn_fail(struct lg_conn *c, const char *what) {
  lg_die("%s: connection of %s (%s): %s", c->g->name, c->dev ? c->dev->user : "?",
         c->state == LG_READY ? "logged in" : "logging in", what);
}

/* Writes what the socket takes; the rest waits for EPOLLOUT. */
static void conn_write(struct lg_conn *c) {
  while (c->wlen > c->woff) {
    size_t n = 0;
    int ret = SSL_write_ex(c->ssl, c->wbuf + c->woff, c->wlen - c->woff, &n), e;
    if (ret == 1) {
      c->woff += (uint32_t)n;
      continue;
    }
    e = SSL_get_error(c->ssl, ret);
    ERR_clear_error();
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
      c->want_write = e == SSL_ERROR_WANT_WRITE;
      break;
    }
    conn_fail(c, "write failed (server closed the connection?)");
  }
  if (c->wlen == c->woff) {
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = c->woff = c->wcap = 0;
    c->want_write = 0;
  }
  ev_set(c);
}

void lg_flush(struct lg *g) {
  struct lg_conn *c = g->dirty, *next;
  g->dirty = NULL;
  for (; c; c = next) {
    next = c->dnext;
    c->dirty = 0;
    if (c->closed) continue;
    if (c->state >= LG_HELLO) conn_write(c);
  }
}

/* ---- input ------------------------------------------------------------------- */

static void login_frame(struct lg_conn *c, const struct sotto_srv_frame *f) {
  struct lg *g = c->g;
  if (f->type == SOTTO_SRV_ERR || f->type == SOTTO_SRV_CLOSE) {
    struct sotto_srv_err e;
    if (sotto__srv_parse_err(f->p, f->len, &e) != 0) conn_fail(c, "malformed ERR/CLOSE");
    lg_die("%s: login of %s: server answered %s %u (%s)", g->name, c->dev->user,
           f->type == SOTTO_SRV_ERR ? "ERR" : "CLOSE", e.code, sotto__srv_code_str(e.code));
  }
  if (f->type != SOTTO_SRV_OK) conn_fail(c, "unexpected frame during login");
  if (c->state == LG_HELLO) {
    struct sotto__rd r;
    uint8_t hi = 0, lo = 0;
    uint32_t mf = 0, mm = 0;
    sotto__rd_init(&r, f->p, f->len);
    if (f->req_id != HELLO_REQ || sotto__rd_u8(&r, &hi) || sotto__rd_u8(&r, &lo) ||
        sotto__rd_u32be(&r, &mf) || sotto__rd_u32be(&r, &mm) || sotto__rd_left(&r) ||
        (hi << 8 | lo) != SOTTO_SRV_VERSION)
      conn_fail(c, "bad HELLO answer");
    if (!c->auth) {
      c->state = LG_READY;
      g->n_logging_in--;
      if (g->on_ready) g->on_ready(g->cb_ctx, c);
      return;
    }
    {
      uint8_t b[1 + SOTTO_SRV_USER_MAX + 4 + SOTTO_SRV_SECRET_LEN];
      struct sotto__wr w;
      sotto__wr_init(&w, b, sizeof b);
      sotto__srv_put_str8(&w, c->dev->user, strlen(c->dev->user));
      sotto__wr_u32be(&w, c->dev->device_id);
      sotto__wr_bytes(&w, c->dev->secret, SOTTO_SRV_SECRET_LEN);
      if (w.err) lg_die("encoding AUTH failed");
      lg_frame(c, SOTTO_SRV_AUTH, AUTH_REQ, b, w.len);
      c->state = LG_AUTHING;
    }
    return;
  }
  /* AUTH answer: u32 ec_left, u32 kem_left */
  if (f->req_id != AUTH_REQ || f->len != 8) conn_fail(c, "bad AUTH answer");
  c->state = LG_READY;
  g->n_logging_in--;
  if (g->on_ready) g->on_ready(g->cb_ctx, c);
}

/* Splits bytes into frames; returns how many bytes were consumed. */
static size_t frames(struct lg_conn *c, const uint8_t *p, size_t n) {
  size_t off = 0;
  while (n - off >= SOTTO_SRV_FRAME_HDR && !c->closed) {
    uint32_t blen;
    struct sotto_srv_frame f;
    if (sotto__srv_frame_len(p + off, SOTTO_SRV_MAX_FRAME, &blen) != 0) conn_fail(c, "bad frame length");
    if (n - off - SOTTO_SRV_FRAME_HDR < blen) break;
    if (sotto__srv_frame_parse(p + off + SOTTO_SRV_FRAME_HDR, blen, &f) != 0) conn_fail(c, "bad frame");
    off += SOTTO_SRV_FRAME_HDR + blen;
    if (c->state != LG_READY)
      login_frame(c, &f);
    else if (c->g->on_frame)
      c->g->on_frame(c->g->cb_ctx, c, &f);
  }
  return off;
}

static void conn_read(struct lg_conn *c) {
  struct lg *g = c->g;
  for (;;) {
    size_t have = c->rlen, n = 0, used;
    int ret, e;
    if (have) memcpy(g->scratch, c->rbuf, have);
    ret = SSL_read_ex(c->ssl, g->scratch + have, READ_CHUNK, &n);
    if (ret != 1) {
      e = SSL_get_error(c->ssl, ret);
      ERR_clear_error();
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (e == SSL_ERROR_WANT_WRITE) {
          c->want_write = 1;
          ev_set(c);
        }
        return;
      }
      conn_fail(c, e == SSL_ERROR_ZERO_RETURN ? "server closed the connection" : "read failed");
    }
    n += have;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = 0;
    used = frames(c, g->scratch, n);
    if (c->closed) return;
    if (used < n) {
      if (n - used > CARRY_MAX || (c->rbuf = malloc(n - used)) == NULL) lg_die("out of memory (read)");
      memcpy(c->rbuf, g->scratch + used, n - used);
      c->rlen = (uint32_t)(n - used);
    }
  }
}

static int pin_ok(struct lg *g, SSL *ssl) {
  X509 *peer = SSL_get0_peer_certificate(ssl);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  return peer && X509_digest(peer, EVP_sha256(), md, &n) == 1 && n == 32 &&
         sodium_memcmp(md, g->pin, 32) == 0;
}

static void conn_handshake(struct lg_conn *c) {
  struct lg *g = c->g;
  int ret = SSL_do_handshake(c->ssl), e;
  if (ret != 1) {
    e = SSL_get_error(c->ssl, ret);
    ERR_clear_error();
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) conn_fail(c, "TLS handshake failed");
    c->want_write = e == SSL_ERROR_WANT_WRITE;
    ev_set(c);
    return;
  }
  if (!pin_ok(g, c->ssl)) conn_fail(c, "certificate does not match the pinned fingerprint");
  c->want_write = 0;
  c->state = LG_HELLO;
  {
    uint8_t v[2] = {0, SOTTO_SRV_VERSION};
    lg_frame(c, SOTTO_SRV_HELLO, HELLO_REQ, v, 2);
  }
  conn_read(c); /* bytes may already be buffered */
}

static void on_event(struct lg_conn *c, uint32_t ev) {
  if (c->state == LG_CONNECTING) {
    int err = 0;
    socklen_t el = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) != 0 || err != 0)
      lg_die("%s: connect: %s", c->g->name, strerror(err ? err : errno));
    if ((c->ssl = SSL_new(c->g->ctx)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) lg_die("SSL_new failed");
    SSL_set_connect_state(c->ssl);
    c->state = LG_HANDSHAKE;
  }
  if (c->state == LG_HANDSHAKE) {
    conn_handshake(c);
    return;
  }
  if (ev & (EPOLLERR | EPOLLHUP) && !(ev & EPOLLIN)) conn_fail(c, "socket error");
  if (ev & EPOLLOUT) {
    c->want_write = 0;
    conn_write(c);
  }
  if (!c->closed) conn_read(c);
}

int lg_poll(struct lg *g, int64_t timeout_us) {
  struct epoll_event evs[MAX_EVENTS];
  struct timespec ts;
  int i, n;
  lg_flush(g);
  free_dead(g);
  if (timeout_us < 0) timeout_us = 0;
  ts.tv_sec = timeout_us / 1000000;
  ts.tv_nsec = (timeout_us % 1000000) * 1000;
  n = epoll_pwait2(g->ep, evs, MAX_EVENTS, &ts, NULL);
  if (n < 0) {
    if (errno == EINTR) return 0;
    lg_die("epoll_pwait2: %s", strerror(errno));
  }
  for (i = 0; i < n; i++) {
    struct lg_conn *c = evs[i].data.ptr;
    if (!c->closed) on_event(c, evs[i].events);
  }
  lg_flush(g);
  free_dead(g);
  return n;
}

void lg_free(struct lg *g) {
  /* Connections are the caller's to close; here only what g owns. */
  lg_flush(g);
  free_dead(g);
  close(g->ep);
  SSL_CTX_free(g->ctx);
  free(g->scratch);
  free(g);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* relay_floor.c: the bare TLS relay the server benchmark measures sotto-server
 * against (bench/run server, docs/benchmarks.md).
 *
 *   relay_floor --data DIR --listen HOST:PORT
 *
 * It speaks just enough of the sotto-server protocol (docs/protocol-server.md)
 * for the same load generator to drive it: the same TLS 1.3 setup as the
 * server (server/transport.c: Ed25519 certificate created in DIR,
 * SSL_MODE_RELEASE_BUFFERS, no tickets), the same framing, HELLO, AUTH (any
 * name and secret are accepted: no store, no hash), SEND forwarded at once as
 * a MSG push to the connection that authenticated as the recipient plus an OK
 * to the sender, ACK and PING answered OK. Nothing is stored, nothing is
 * rate limited, no limit is checked beyond the frame length: this is the
 * floor, the cost of TLS, framing and one epoll thread and nothing else.
 * For the attachment rows (attach_up, attach_down) it answers the BLOB_*
 * requests the same way: a PUT is answered with the bytes "stored" and
 * dropped, a GET with as many zero bytes as asked: the bytes move, nothing
 * is kept, encrypted or checked.
 *
 * Like the server it buffers everything one loop iteration writes to a
 * connection and writes it with one SSL_write at the end of the iteration,
 * and an idle connection holds no read or write buffer. It prints
 * "fingerprint HEX" and "listening HOST:PORT" on stdout like sotto-server, and
 * stops on SIGTERM or SIGINT. A benchmark tool, never installed. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "transport.h"
#include "wire.h"

#define READ_CHUNK (64 * 1024)
#define CARRY_MAX (SOTTO_SRV_FRAME_HDR + SOTTO_SRV_MAX_FRAME)
#define MAP_BUCKETS (1u << 16)
#define MAX_EVENTS 256
#define FLOOR_MAX_MESSAGE (64 * 1024)

struct fconn {
  SSL *ssl;
  int fd;
  uint8_t handshaking, want_write, dirty, dead, registered, authed;
  uint32_t ev;
  uint8_t *rbuf; /* partial frame carried between reads */
  uint32_t rlen;
  uint8_t *wbuf; /* pending output */
  uint32_t wlen, woff, wcap;
  struct fconn *dnext, *hnext, *znext;
  struct fconn *prev, *next; /* all connections */
  uint32_t hash, device_id;
  uint8_t ulen;
  char user[SOTTO_SRV_USER_MAX + 1];
};

struct floor {
  SSL_CTX *ctx;
  int ep, lfd, sfd;
  struct fconn *map[MAP_BUCKETS];
  struct fconn *dirty, *dead, *all;
  uint64_t next_id;
  uint8_t *scratch;
  int stopping;
};

static void die(const char *what) {
  fprintf(stderr, "relay_floor: %s\n", what);
  exit(1);
}

static uint32_t addr_hash(const uint8_t *u, size_t n, uint32_t dev) {
  uint32_t h = 2166136261u ^ dev;
  size_t i;
  for (i = 0; i < n; i++) h = (h ^ u[i]) * 16777619u;
  return h;
}

static struct fconn *map_find(struct floor *f, const uint8_t *u, size_t n, uint32_t dev, uint32_t h) {
  struct fconn *c;
  for (c = f->map[h % MAP_BUCKETS]; c; c = c->hnext)
    if (c->hash == h && c->device_id == dev && c->ulen == n && memcmp(c->user, u, n) == 0) return c;
  return NULL;
}

static void map_del(struct floor *f, struct fconn *c) {
  struct fconn **pp;
  if (!c->authed) return;
  for (pp = &f->map[c->hash % MAP_BUCKETS]; *pp; pp = &(*pp)->hnext)
    if (*pp == c) {
      *pp = c->hnext;
      break;
    }
  c->authed = 0;
}

static void ev_set(struct floor *f, struct fconn *c) {
  struct epoll_event e;
  uint32_t want;
  if (c->handshaking)
    want = c->want_write ? EPOLLOUT : EPOLLIN;
  else
    want = EPOLLIN | (c->wlen > c->woff || c->want_write ? EPOLLOUT : 0);
  if (c->registered && want == c->ev) return;
  e.events = want;
  e.data.ptr = c;
  if (epoll_ctl(f->ep, c->registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &e) == 0) {
    c->registered = 1;
    c->ev = want;
  }
}

static void drop(struct floor *f, struct fconn *c) {
  if (c->dead) return;
  c->dead = 1;
  map_del(f, c);
  if (c->registered) epoll_ctl(f->ep, EPOLL_CTL_DEL, c->fd, NULL);
  if (c->ssl) {
    (void)SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
    ERR_clear_error();
  }
  close(c->fd);
  free(c->rbuf);
  free(c->wbuf);
  c->rbuf = c->wbuf = NULL;
  if (c->prev)
    c->prev->next = c->next;
  else
    f->all = c->next;
  if (c->next) c->next->prev = c->prev;
  c->znext = f->dead;
  f->dead = c;
}

/* Room for n more output bytes; marks the connection for the end-of-loop flush. */
static uint8_t *reserve(struct floor *f, struct fconn *c, size_t n) {
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
    if (cap > (1u << 30) || (p = realloc(c->wbuf, cap)) == NULL) return NULL;
    c->wbuf = p;
    c->wcap = (uint32_t)cap;
  }
  if (!c->dirty) {
    c->dirty = 1;
    c->dnext = f->dirty;
    f->dirty = c;
  }
  return c->wbuf + c->wlen;
}

static void put_frame(struct floor *f, struct fconn *c, uint8_t type, uint32_t req_id, const void *p,
                      size_t n) {
  uint8_t *w = reserve(f, c, 9 + n);
  if (!w) {
    drop(f, c);
    return;
  }
  sotto__srv_frame_hdr(w, type, req_id, n);
  if (n) memcpy(w + 9, p, n);
  c->wlen += (uint32_t)(9 + n);
}

static void put_err(struct floor *f, struct fconn *c, uint32_t req_id, uint16_t code) {
  uint8_t b[3 + SOTTO_SRV_MAX_ERRMSG];
  struct sotto__wr w;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_err(&w, code, sotto__srv_code_str(code));
  put_frame(f, c, SOTTO_SRV_ERR, req_id, b, w.len);
}

static void do_write(struct floor *f, struct fconn *c) {
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
    drop(f, c);
    return;
  }
  if (c->wlen == c->woff) {
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = c->woff = c->wcap = 0;
    c->want_write = 0;
  }
  ev_set(f, c);
}

static void flush_all(struct floor *f) {
  struct fconn *c = f->dirty, *next;
  f->dirty = NULL;
  for (; c; c = next) {
    next = c->dnext;
    c->dirty = 0;
    if (!c->dead) do_write(f, c);
  }
}

/* One complete frame. Only the fields needed to route are parsed. */
static void on_frame(struct floor *f, struct fconn *c, const uint8_t *body, size_t len) {
  struct sotto_srv_frame fr;
  if (sotto__srv_frame_parse(body, len, &fr) != 0) {
    drop(f, c);
    return;
  }
  switch (fr.type) {
    case SOTTO_SRV_HELLO: {
      uint8_t b[10] = {0, SOTTO_SRV_VERSION, 0, 4, 0, 0, 0, 1, 0, 0};
      /* version 1, max_frame 262144, max_message 65536 */
      put_frame(f, c, SOTTO_SRV_OK, fr.req_id, b, sizeof b);
      return;
    }
    case SOTTO_SRV_AUTH: {
      struct sotto_srv_auth a;
      uint8_t b[8] = {0, 0, 0, 100, 0, 0, 0, 100};
      struct fconn *old;
      if (sotto__srv_parse_auth(fr.p, fr.len, &a) != 0) {
        drop(f, c);
        return;
      }
      map_del(f, c);
      memcpy(c->user, a.username.p, a.username.len);
      c->user[a.username.len] = 0;
      c->ulen = (uint8_t)a.username.len;
      c->device_id = a.device_id;
      c->hash = addr_hash(a.username.p, a.username.len, a.device_id);
      if ((old = map_find(f, a.username.p, a.username.len, a.device_id, c->hash)) != NULL) map_del(f, old);
      c->hnext = f->map[c->hash % MAP_BUCKETS];
      f->map[c->hash % MAP_BUCKETS] = c;
      c->authed = 1;
      put_frame(f, c, SOTTO_SRV_OK, fr.req_id, b, sizeof b);
      put_frame(f, c, SOTTO_SRV_DRAINED, 0, NULL, 0);
      return;
    }
    case SOTTO_SRV_SEND: {
      struct sotto_srv_send m;
      struct sotto_srv_env e;
      struct fconn *r;
      uint8_t ok[16], *w;
      struct sotto__wr wr;
      struct timespec ts;
      size_t cap;
      if (!c->authed) {
        put_err(f, c, fr.req_id, SOTTO_SRV_E_NOT_AUTHED);
        return;
      }
      if (sotto__srv_parse_send(fr.p, fr.len, FLOOR_MAX_MESSAGE, &m) != 0) {
        drop(f, c);
        return;
      }
      r = map_find(f, m.username.p, m.username.len, m.device_id,
                   addr_hash(m.username.p, m.username.len, m.device_id));
      if (!r || r->dead) {
        put_err(f, c, fr.req_id, SOTTO_SRV_E_NOT_FOUND);
        return;
      }
      clock_gettime(CLOCK_REALTIME, &ts);
      e.id = ++f->next_id;
      e.sender.p = (const uint8_t *)c->user;
      e.sender.len = c->ulen;
      e.sender_device = c->device_id;
      e.device_id = m.device_id;
      e.type = m.type;
      e.timestamp_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
      e.body = m.body;
      e.body_len = m.body_len;
      cap = 64 + c->ulen + m.body_len;
      if ((w = reserve(f, r, 9 + cap)) == NULL) {
        drop(f, r);
        return;
      }
      sotto__wr_init(&wr, w + 9, cap);
      sotto__srv_put_env(&wr, &e);
      if (wr.err) die("encoding MSG failed");
      sotto__srv_frame_hdr(w, SOTTO_SRV_MSG, 0, wr.len);
      r->wlen += (uint32_t)(9 + wr.len);
      sotto__wr_init(&wr, ok, sizeof ok);
      sotto__wr_u64be(&wr, e.id);
      sotto__wr_u64be(&wr, e.timestamp_ms);
      put_frame(f, c, SOTTO_SRV_OK, fr.req_id, ok, sizeof ok);
      return;
    }
    case SOTTO_SRV_ACK:
    case SOTTO_SRV_PING:
    case SOTTO_SRV_BLOB_COMMIT:
    case SOTTO_SRV_BLOB_DONE:
      put_frame(f, c, SOTTO_SRV_OK, fr.req_id, NULL, 0);
      return;
    case SOTTO_SRV_BLOB_CREATE:
    case SOTTO_SRV_BLOB_PUT:
    case SOTTO_SRV_BLOB_GET: {
      static const uint8_t zeros[SOTTO_SRV_BLOB_MAX_CHUNK];
      struct sotto_srv_blob_req m;
      uint8_t b[24];
      struct sotto__wr wr;
      if (sotto__srv_parse_blob_req(fr.type, fr.p, fr.len, &m) != 0) {
        drop(f, c);
        return;
      }
      sotto__wr_init(&wr, b, sizeof b);
      if (fr.type == SOTTO_SRV_BLOB_CREATE) {
        sotto__srv_put_blob_created(&wr, zeros, 0);
      } else if (fr.type == SOTTO_SRV_BLOB_PUT) {
        sotto__wr_u64be(&wr, m.offset + m.data_len);
      } else {
        put_frame(f, c, SOTTO_SRV_OK, fr.req_id, zeros, m.max);
        return;
      }
      put_frame(f, c, SOTTO_SRV_OK, fr.req_id, b, wr.len);
      return;
    }
    default:
      put_err(f, c, fr.req_id, SOTTO_SRV_E_STATE);
      return;
  }
}

static void do_read(struct floor *f, struct fconn *c) {
  while (!c->dead) {
    size_t have = c->rlen, n = 0, off = 0;
    int ret = 0, e;
    if (have) memcpy(f->scratch, c->rbuf, have);
    ret = SSL_read_ex(c->ssl, f->scratch + have, READ_CHUNK, &n);
    if (ret != 1) {
      e = SSL_get_error(c->ssl, ret);
      ERR_clear_error();
      if (e == SSL_ERROR_WANT_READ) return;
      if (e == SSL_ERROR_WANT_WRITE) {
        c->want_write = 1;
        ev_set(f, c);
        return;
      }
      drop(f, c);
      return;
    }
    n += have;
    free(c->rbuf);
    c->rbuf = NULL;
    c->rlen = 0;
    while (n - off >= SOTTO_SRV_FRAME_HDR && !c->dead) {
      uint32_t blen;
      if (sotto__srv_frame_len(f->scratch + off, SOTTO_SRV_MAX_FRAME, &blen) != 0) {
        drop(f, c);
        return;
      }
      if (n - off - SOTTO_SRV_FRAME_HDR < blen) break;
      on_frame(f, c, f->scratch + off + SOTTO_SRV_FRAME_HDR, blen);
      off += SOTTO_SRV_FRAME_HDR + blen;
    }
    if (c->dead) return;
    if (off < n) {
      if ((c->rbuf = malloc(n - off)) == NULL) {
        drop(f, c);
        return;
      }
      memcpy(c->rbuf, f->scratch + off, n - off);
      c->rlen = (uint32_t)(n - off);
    }
  }
}

static void on_event(struct floor *f, struct fconn *c, uint32_t ev) {
  if (c->handshaking) {
    int ret = SSL_do_handshake(c->ssl), e;
    if (ret != 1) {
      e = SSL_get_error(c->ssl, ret);
      ERR_clear_error();
      if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
        drop(f, c);
        return;
      }
      c->want_write = e == SSL_ERROR_WANT_WRITE;
      ev_set(f, c);
      return;
    }
    c->handshaking = 0;
    c->want_write = 0;
    ev_set(f, c);
  }
  if (ev & EPOLLOUT) {
    c->want_write = 0;
    do_write(f, c);
  }
  if (!c->dead) do_read(f, c);
}

static void accept_all(struct floor *f) {
  for (;;) {
    int fd = accept4(f->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
    struct fconn *c;
    if (fd < 0) return;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((c = calloc(1, sizeof *c)) == NULL || (c->ssl = SSL_new(f->ctx)) == NULL ||
        SSL_set_fd(c->ssl, fd) != 1) {
      if (c) SSL_free(c->ssl);
      free(c);
      close(fd);
      ERR_clear_error();
      continue;
    }
    SSL_set_accept_state(c->ssl);
    c->fd = fd;
    c->next = f->all;
    if (f->all) f->all->prev = c;
    f->all = c;
    c->handshaking = 1;
    on_event(f, c, EPOLLIN);
  }
}

static int listen_on(const char *spec) {
  char host[64];
  const char *colon = strrchr(spec, ':');
  struct sockaddr_in a;
  char *end = NULL;
  unsigned long port;
  int fd, one = 1;
  if (!colon || (size_t)(colon - spec) >= sizeof host) return -1;
  memcpy(host, spec, (size_t)(colon - spec));
  host[colon - spec] = 0;
  port = strtoul(colon + 1, &end, 10);
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  if (!end || *end || port == 0 || port > 65535 || inet_pton(AF_INET, host, &a.sin_addr) != 1) return -1;
  if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) return -1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 4096) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int main(int argc, char **argv) {
  static struct floor fl;
  struct floor *f = &fl;
  const char *data = NULL, *listen_spec = NULL;
  char fp[65];
  int created = 0, i;
  sigset_t mask;
  struct epoll_event e;
  struct rlimit rl;

  for (i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--data") == 0)
      data = argv[i + 1];
    else if (strcmp(argv[i], "--listen") == 0)
      listen_spec = argv[i + 1];
    else
      break;
  }
  if (i != argc || !data || !listen_spec) {
    fprintf(stderr, "usage: relay_floor --data DIR --listen IPV4:PORT\n");
    return 2;
  }
  /* As many connections as the hard limit allows. */
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &rl);
  }
  if ((f->scratch = malloc(CARRY_MAX + READ_CHUNK)) == NULL) die("out of memory");
  if ((f->ctx = sotto__tls_server_ctx(data, fp, &created, 1)) == NULL) die("cannot set up TLS");
  if ((f->lfd = listen_on(listen_spec)) < 0) die("cannot listen (want IPV4:PORT, free port)");
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  signal(SIGPIPE, SIG_IGN);
  if ((f->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0) die("signalfd failed");
  if ((f->ep = epoll_create1(EPOLL_CLOEXEC)) < 0) die("epoll_create1 failed");
  e.events = EPOLLIN;
  e.data.ptr = &f->lfd;
  epoll_ctl(f->ep, EPOLL_CTL_ADD, f->lfd, &e);
  e.data.ptr = &f->sfd;
  epoll_ctl(f->ep, EPOLL_CTL_ADD, f->sfd, &e);
  printf("fingerprint %s\nlistening %s\n", fp, listen_spec);
  fflush(stdout);

  while (!f->stopping) {
    struct epoll_event evs[MAX_EVENTS];
    int n = epoll_wait(f->ep, evs, MAX_EVENTS, 1000);
    if (n < 0 && errno != EINTR) break;
    for (i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == &f->lfd)
        accept_all(f);
      else if (p == &f->sfd)
        f->stopping = 1;
      else if (!((struct fconn *)p)->dead)
        on_event(f, p, evs[i].events);
    }
    flush_all(f);
    while (f->dead) {
      struct fconn *c = f->dead;
      f->dead = c->znext;
      free(c);
    }
  }
  while (f->all) drop(f, f->all);
  while (f->dead) {
    struct fconn *c = f->dead;
    f->dead = c->znext;
    free(c);
  }
  close(f->ep);
  close(f->sfd);
  close(f->lfd);
  SSL_CTX_free(f->ctx);
  free(f->scratch);
  return 0;
}

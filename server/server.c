/* SPDX-License-Identifier: Apache-2.0 */
/* server.c: the event loop, connections, request handlers and group commit
 * of sotto-server.
 *
 * One thread does all I/O with epoll over non-blocking sockets. Requests that
 * touch the store become "ops" in a batch; the batch runs inside ONE store
 * transaction (group commit) and only after commit() succeeded are the
 * answers written: a sender's OK for SEND means the envelope is durable. Live
 * pushes to connected recipients are also written after that commit, so a
 * recipient never sees (and acks) an envelope that could still vanish.
 *
 * The transaction runs on a second thread, the store thread, so that TLS and
 * SQLite use both cores: while the store thread executes and commits batch
 * N+1, the I/O thread writes the answers of batch N and reads and parses the
 * requests of batch N+2. Ownership is strict: the store thread has its own
 * database connection and, while a batch is in flight, that batch's ops; the
 * I/O thread has everything else, including a second database connection
 * that it only reads through, for backlog paging and metrics (WAL readers see
 * only committed transactions). Dropped connections are freed only once no batch
 * in flight can point at them. If the thread cannot be started, batches run
 * inline in the I/O thread.
 *
 * Memory per idle connection: struct conn plus OpenSSL's state; read and
 * write buffers exist only while bytes are pending (SSL_MODE_RELEASE_BUFFERS
 * does the same inside OpenSSL). A busy connection is bounded too: reading
 * pauses while it has max-inflight requests (or max-inflight-bytes) not yet
 * answered or 256 KiB of answers not taken, and one connection gives at
 * most BATCH_CONN_OPS ops to a batch. Limits that must outlive a connection
 * (per account, address, prefix) are keyed buckets in ratelimit.c. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proto.h"
#include "ratelimit.h"
#include "server.h"
#include "store.h"
#include "transport.h"
#include "wire.h"

#define READ_CHUNK (64 * 1024)
#define WBUF_HIGH (256 * 1024)      /* stop reading requests above this */
#define WBUF_PUSH_MAX (1024 * 1024) /* live pushes fall back to paging above this */
#define BACKLOG_PAGE 64
#define BACKLOG_ROOM (64 * 1024) /* page the backlog while less than this is pending */
#define DEV_BUCKETS (1u << 16)
#define LIM_BUCKETS (1u << 16)
#define LIM_MAX (1u << 20) /* keyed buckets and counters (struct sotto_lim), about 64 MiB at most */
#define CLOSE_GRACE_MS 2000
#define BATCH_CONN_OPS 256           /* ops of one connection in one batch */
#define BATCH_CONN_BYTES (64 * 1024) /* and their cost (op_cost) */
#define METRICS_REQ_MAX 2048

enum { S_HANDSHAKE, S_HELLO, S_UNAUTH, S_AUTHING, S_AUTHED };
enum { K_CLIENT, K_METRICS };

struct conn {
  struct sotto__io io;
  struct conn *prev, *next; /* all connections */
  struct conn *hnext;       /* device map chain */
  struct conn *bnext;       /* backlog list */
  uint8_t kind, state;
  uint8_t closing, dead, in_backlog, backlog, registered_ev, flush_queued;
  uint8_t hdr_have;
  uint8_t auth_held; /* the pending AUTH is charged to its failed-AUTH buckets if it fails */
  uint8_t ucounted;  /* counted in the per-address and per-prefix pre-auth shares */
  uint8_t rpaused;   /* reading paused: too much in flight (input kept in ibuf) */
  uint8_t hdr[4];
  uint32_t ev;
  int64_t deadline_ms;
  int64_t last_rx_ms; /* last frame received (idle timeout of authenticated connections) */
  /* The peer address, in memory only while not authenticated (it is never
   * stored or logged): alen bytes of address, the prefix masked. */
  uint8_t addr[16], pfx[16];
  uint8_t alen;
  uint64_t ukey_addr, ukey_pfx;         /* pre-auth share counters */
  uint64_t auth_key_user, auth_key_pfx; /* failed-AUTH buckets of the pending AUTH */
  uint64_t send_key, bundle_key;        /* the account's SEND and BUNDLE buckets */
  /* Requests read but not answered yet, and their payload bytes: reading
   * pauses at max-inflight / max-inflight-bytes, so that the memory one
   * connection can make the server hold is bounded. */
  int inflight;
  size_t inflight_bytes;
  uint8_t *ibuf; /* input read but not parsed yet (while paused), at most one read */
  size_t ibuf_len;
  /* batch_start's share count for this connection */
  uint32_t bt_n;
  size_t bt_bytes;
  uint8_t bt_full;
  /* authenticated identity */
  int64_t devkey, account_id;
  uint32_t device_id;
  char user[SOTTO_SRV_USER_MAX + 1];
  /* partial frame being read */
  uint8_t *rbuf;
  uint32_t rneed, rhave, rcap;
  /* bytes waiting to be written */
  uint8_t *wbuf;
  size_t wlen, woff, wcap;
  int64_t cursor; /* backlog: last id written to this connection */
  struct conn *znext;
  struct conn *fnext; /* connections to flush at the end of a batch */
};

/* An op: a request waiting for the next group commit. */
struct op {
  struct op *next;
  struct conn *c;
  uint8_t type;
  uint32_t req_id;
  /* results, filled by exec, sent after commit */
  int code;
  uint8_t no_otk; /* BUNDLE: the target's one-time key budget is spent */
  uint8_t failed; /* the store refused this op alone (undone by its savepoint) */
  uint8_t deleted; /* ACK: an envelope was deleted (the WAL is truncated after the commit) */
  uint32_t device_id;
  uint8_t secret[SOTTO_SRV_SECRET_LEN];
  struct sotto_store_device dev;
  int64_t msg_id, ts, ec, kem, target_devkey;
  struct sotto_srv_bundle_buf *bundle;
  uint32_t ids[SOTTO_SRV_MAX_DEVICES];
  size_t n_ids;
  size_t len;
  uint8_t data[]; /* the request payload */
};

struct metrics {
  uint64_t conns_total, conns_rejected, tls_failed, msgs_in, msgs_out, acks, registrations, auth_ok,
      auth_fail, bundles, commits, commit_failures, batch_ops, expired, rate_limited;
  uint64_t batch_hist[5]; /* <=1, <=10, <=100, <=1000, more */
  uint64_t errors[32];
};

/* The batch in flight: its ops list and results belong to the store thread
 * from batch_start until the I/O thread has seen it done. */
struct batch {
  struct op *ops;
  int n, expire, rc;
  int scrub;      /* I/O -> store: truncate the WAL after this batch (a scrub is due) */
  int scrub_need; /* store -> I/O: this batch deleted envelopes and did not truncate */
  int64_t deleted;
};

struct srv {
  const struct sotto_srv_config *cfg;
  struct sotto_store store;  /* the store thread's, for batches */
  struct sotto_store rstore; /* the I/O thread's own connection: backlog pages, metrics */
  int64_t horizon;           /* highest envelope id whose batch has been answered */
  SSL_CTX *ctx;
  int ep, lfd, mfd, sfd;
  int lockfd; /* DATA/sotto.lock, held (flock) while the server runs */
  int space_low; /* the disk filled up; the reserve is released (store thread) */
  int scrub_pending;   /* deleted envelopes may still be in the WAL */
  int64_t scrub_at_ms; /* when the WAL is truncated for them (mono) */
  struct conn *conns;
  int n_conns, n_unauth;
  struct conn *devmap[DEV_BUCKETS];
  struct conn *backlog;
  struct conn *zombies; /* dropped, freed once no batch in flight can point at them */
  struct conn *to_flush;
  struct op *ops, **ops_tail;
  int n_ops;
  int expire_due;
  int64_t next_expire_ms;
  struct sotto_lim lim; /* every limit that outlives a connection */
  struct metrics m;
  int stopping;
  /* group commit pipeline */
  struct batch b;
  int b_active;  /* a batch is in flight */
  int threaded;  /* the store thread runs */
  int efd;       /* eventfd: the store thread finished a batch */
  pthread_t worker;
  pthread_mutex_t mu; /* guards job, done, quit */
  pthread_cond_t cv, done_cv;
  int job, done, quit;
};

static uint8_t scratch[READ_CHUNK];

/* ---- small helpers ------------------------------------------------------- */

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t today(void) { return now_ms() / 86400000; }

static int g_log_level = 1;

/* Structured log line: ts=... level=... event=... then key=value pairs.
 * Callers never pass secrets, message bodies or addresses. */
__attribute__((format(printf, 3, 4))) static void logkv(int level, const char *event, const char *fmt, ...) {
  char ts[32], kv[512];
  time_t t = time(NULL);
  struct tm tm;
  va_list ap;
  if (level > g_log_level) return;
  gmtime_r(&t, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  va_start(ap, fmt);
  vsnprintf(kv, sizeof kv, fmt, ap);
  va_end(ap);
  fprintf(stderr, "ts=%s level=%s event=%s%s%s\n", ts, level == 0 ? "error" : level == 1 ? "info" : "debug", event,
          kv[0] ? " " : "", kv);
}

/* Peer tag for debug logs: 32 bits of the keyed hash of the address, so
 * that lines about one peer can be matched without the address in clear. */
static unsigned peer_tag(const struct conn *c) { return (unsigned)(c->ukey_addr >> 32); }

/* Per-minute rates of the config as tokens per millisecond. */
static double per_min(double r) { return r / 60000.0; }

static void hash_secret(uint8_t out[32], const uint8_t secret[SOTTO_SRV_SECRET_LEN]) {
  crypto_hash_sha256(out, secret, SOTTO_SRV_SECRET_LEN);
}

/* ---- connection bookkeeping --------------------------------------------- */

/* 1 if no more requests may be read from c now: too many in flight, too many
 * of their bytes, or too many answer bytes not yet taken by the peer. The
 * peer's requests then wait in its own socket buffers, not in our memory. */
static int conn_full(const struct srv *s, const struct conn *c) {
  return c->inflight >= s->cfg->max_inflight || (int64_t)c->inflight_bytes >= s->cfg->max_inflight_bytes ||
         c->wlen - c->woff >= WBUF_HIGH;
}

static void ev_update(struct srv *s, struct conn *c) {
  uint32_t want = 0;
  struct epoll_event e;
  if (c->dead) return;
  if (c->state == S_HANDSHAKE) {
    want = c->io.want_write ? EPOLLOUT : EPOLLIN;
  } else {
    if (!c->closing && !c->ibuf && !conn_full(s, c)) want |= EPOLLIN;
    if (c->wlen > c->woff || c->io.want_write) want |= EPOLLOUT;
  }
  if (c->registered_ev && want == c->ev) return;
  e.events = want;
  e.data.ptr = c;
  if (epoll_ctl(s->ep, c->registered_ev ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->io.fd, &e) == 0) {
    c->registered_ev = 1;
    c->ev = want;
  }
}

static struct conn **devmap_slot(struct srv *s, int64_t devkey) {
  return &s->devmap[(uint64_t)devkey * 0x9E3779B97F4A7C15ull >> 48];
}

static struct conn *devmap_get(struct srv *s, int64_t devkey) {
  struct conn *c;
  for (c = *devmap_slot(s, devkey); c; c = c->hnext)
    if (c->devkey == devkey) return c;
  return NULL;
}

static void devmap_del(struct srv *s, struct conn *c) {
  struct conn **pp;
  for (pp = devmap_slot(s, c->devkey); *pp; pp = &(*pp)->hnext)
    if (*pp == c) {
      *pp = c->hnext;
      return;
    }
}

static void backlog_del(struct srv *s, struct conn *c) {
  struct conn **pp;
  if (!c->in_backlog) return;
  for (pp = &s->backlog; *pp; pp = &(*pp)->bnext)
    if (*pp == c) {
      *pp = c->bnext;
      break;
    }
  c->in_backlog = 0;
}

static int is_unauth(const struct conn *c) { return c->kind == K_CLIENT && c->state != S_AUTHED; }

/* Gives back the connection's pre-auth share (it authenticated or went). */
static void unauth_release(struct srv *s, struct conn *c) {
  if (!c->ucounted) return;
  c->ucounted = 0;
  sotto__lim_dec(&s->lim, c->ukey_addr);
  sotto__lim_dec(&s->lim, c->ukey_pfx);
}

/* Drops a connection now: unregisters it everywhere and closes the socket.
 * The struct itself is freed at the end of the loop iteration, because ops
 * in the current batch may still point at it. */
static void conn_drop(struct srv *s, struct conn *c) {
  if (c->dead) return;
  c->dead = 1;
  if (is_unauth(c)) s->n_unauth--;
  unauth_release(s, c);
  if (c->state == S_AUTHED && devmap_get(s, c->devkey) == c) devmap_del(s, c);
  backlog_del(s, c);
  if (c->registered_ev) epoll_ctl(s->ep, EPOLL_CTL_DEL, c->io.fd, NULL);
  c->io.t->close(&c->io);
  if (c->prev) c->prev->next = c->next;
  else s->conns = c->next;
  if (c->next) c->next->prev = c->prev;
  s->n_conns--;
  free(c->rbuf);
  free(c->wbuf);
  free(c->ibuf);
  c->rbuf = NULL;
  c->wbuf = NULL;
  c->ibuf = NULL;
  c->ibuf_len = 0;
  c->wlen = c->woff = c->wcap = 0;
  c->znext = s->zombies;
  s->zombies = c;
}

/* Makes room for n more bytes in the write buffer. */
static uint8_t *wbuf_reserve(struct conn *c, size_t n) {
  if (c->woff == c->wlen) c->woff = c->wlen = 0;
  if (n > c->wcap - c->wlen) {
    size_t cap = c->wcap ? c->wcap : 1024;
    uint8_t *p;
    if (c->woff > 0) {
      memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
      c->wlen -= c->woff;
      c->woff = 0;
    }
    while (cap - c->wlen < n) cap *= 2;
    if (cap != c->wcap) {
      if ((p = realloc(c->wbuf, cap)) == NULL) return NULL;
      c->wbuf = p;
      c->wcap = cap;
    }
  }
  return c->wbuf + c->wlen;
}

/* Starts a frame: returns a writer over the payload area (cap bytes). */
static int frame_begin(struct conn *c, struct sotto__wr *w, size_t cap) {
  uint8_t *p;
  if (c->dead || (p = wbuf_reserve(c, 9 + cap)) == NULL) return -1;
  sotto__wr_init(w, p + 9, cap);
  return 0;
}

static void frame_end(struct conn *c, struct sotto__wr *w, uint8_t type, uint32_t req_id) {
  if (w->err) return; /* an encoder bug: drop the frame rather than send garbage */
  sotto__srv_frame_hdr(c->wbuf + c->wlen, type, req_id, w->len);
  c->wlen += 9 + w->len;
}

static void send_simple(struct conn *c, uint8_t type, uint32_t req_id, const void *p, size_t n) {
  struct sotto__wr w;
  if (frame_begin(c, &w, n) != 0) return;
  sotto__wr_bytes(&w, p, n);
  frame_end(c, &w, type, req_id);
}

static void send_err(struct srv *s, struct conn *c, uint32_t req_id, int code) {
  struct sotto__wr w;
  s->m.errors[code & 31]++;
  if (frame_begin(c, &w, 3 + SOTTO_SRV_MAX_ERRMSG) != 0) return;
  sotto__srv_put_err(&w, (uint16_t)code, sotto__srv_code_str((unsigned)code));
  frame_end(c, &w, SOTTO_SRV_ERR, req_id);
}

static void do_write(struct srv *s, struct conn *c);

/* Sends a CLOSE frame and closes once it is flushed (or after a grace period). */
static void conn_close_with(struct srv *s, struct conn *c, int code) {
  struct sotto__wr w;
  if (c->dead || c->closing) return;
  logkv(2, "close", "code=%d reason=\"%s\"", code, sotto__srv_code_str((unsigned)code));
  s->m.errors[code & 31]++;
  if (frame_begin(c, &w, 3 + SOTTO_SRV_MAX_ERRMSG) == 0) {
    sotto__srv_put_err(&w, (uint16_t)code, sotto__srv_code_str((unsigned)code));
    frame_end(c, &w, SOTTO_SRV_CLOSE, 0);
  }
  c->closing = 1;
  c->deadline_ms = mono_ms() + CLOSE_GRACE_MS;
  free(c->rbuf);
  free(c->ibuf);
  c->rbuf = NULL;
  c->ibuf = NULL;
  c->ibuf_len = 0;
  c->rhave = c->rneed = c->rcap = 0;
  do_write(s, c);
}

static void push_env(struct srv *s, struct conn *c, const struct sotto_store_env *e) {
  struct sotto__wr w;
  struct sotto_srv_env m;
  m.id = (uint64_t)e->id;
  m.sender.p = (const uint8_t *)e->sender;
  m.sender.len = strlen(e->sender);
  m.sender_device = e->sender_device;
  m.device_id = e->device_id;
  m.type = e->type;
  m.timestamp_ms = (uint64_t)e->timestamp_ms;
  m.body = e->body;
  m.body_len = e->body_len;
  if (frame_begin(c, &w, 64 + m.sender.len + e->body_len) != 0) return;
  sotto__srv_put_env(&w, &m);
  frame_end(c, &w, SOTTO_SRV_MSG, 0);
  if (!w.err) {
    c->cursor = e->id;
    s->m.msgs_out++;
  }
}

static void push_keys_low(struct conn *c, int64_t ec, int64_t kem) {
  struct sotto__wr w;
  if (frame_begin(c, &w, 8) != 0) return;
  sotto__srv_put_counts(&w, (uint32_t)ec, (uint32_t)kem);
  frame_end(c, &w, SOTTO_SRV_KEYS_LOW_PUSH, 0);
}

/* ---- writing --------------------------------------------------------------- */

static void do_read(struct srv *s, struct conn *c);
static void prune_ops(struct srv *s);

static void do_write(struct srv *s, struct conn *c) {
  while (!c->dead && c->wlen > c->woff) {
    ssize_t n = c->io.t->write(&c->io, c->wbuf + c->woff, c->wlen - c->woff);
    if (n == SOTTO_IO_AGAIN) break;
    if (n <= 0) {
      logkv(2, "conn_closed", "peer=%08x state=%d err=write", peer_tag(c), c->state);
      conn_drop(s, c);
      return;
    }
    c->woff += (size_t)n;
  }
  if (c->dead) return;
  if (c->woff == c->wlen) {
    /* Nothing pending: give the buffer back (idle connections hold none). */
    free(c->wbuf);
    c->wbuf = NULL;
    c->wlen = c->woff = c->wcap = 0;
    if (c->closing) {
      conn_drop(s, c);
      return;
    }
  }
  ev_update(s, c);
  /* Reading was paused by back-pressure (answers not taken, or requests
   * in flight): resume once there is room (OpenSSL may hold bytes). */
  if (c->rpaused && !conn_full(s, c) && !c->closing) do_read(s, c);
}

/* ---- ops ------------------------------------------------------------------- */

/* What an op counts against max-inflight-bytes: its payload, and for a
 * BUNDLE the owned bundle buffer its answer needs (allocated when it runs). */
static size_t op_cost(uint8_t type, size_t len) {
  return len + (type == SOTTO_SRV_BUNDLE ? sizeof(struct sotto_srv_bundle_buf) : 0);
}

static struct op *op_new(struct srv *s, struct conn *c, const struct sotto_srv_frame *f) {
  struct op *o = calloc(1, sizeof *o + f->len);
  if (!o) return NULL;
  o->c = c;
  o->type = f->type;
  o->req_id = f->req_id;
  o->len = f->len;
  if (f->len) memcpy(o->data, f->p, f->len);
  c->inflight++;
  c->inflight_bytes += op_cost(f->type, f->len);
  *s->ops_tail = o;
  s->ops_tail = &o->next;
  s->n_ops++;
  return o;
}

/* The op's connection may be dropped but is still allocated (zombies are
 * freed only after the ops that point at them). */
static void op_free(struct op *o) {
  o->c->inflight--;
  o->c->inflight_bytes -= op_cost(o->type, o->len);
  free(o->bundle);
  sodium_memzero(o->secret, sizeof o->secret);
  sodium_memzero(&o->dev, sizeof o->dev);
  free(o);
}

static void cstr(char *dst, const struct sotto_srv_str *s) {
  memcpy(dst, s->p, s->len);
  dst[s->len] = 0;
}

/* Executes one op inside the open transaction, on the store thread: it reads
 * the configuration, the op and the identity of the op's connection (set at
 * AUTH, before any op that uses it existed), and writes only the op. Returns
 * 0 (o->code holds the answer) or a negative store error, which aborts the
 * whole batch. */
static int op_exec(struct srv *s, struct op *o) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  struct conn *c = o->c;
  char user[SOTTO_SRV_USER_MAX + 1];
  int rc;

  /* The disk filled up and the reserve was given back for deletes: what
   * would store more waits until there is room again (ACKs go on). */
  if (s->space_low && (o->type == SOTTO_SRV_SEND || o->type == SOTTO_SRV_KEYS_UPLOAD ||
                       o->type == SOTTO_SRV_REGISTER || o->type == SOTTO_SRV_ADD_DEVICE)) {
    o->code = SOTTO_SRV_E_STORAGE_FULL;
    return 0;
  }
  /* A device removed while some of its requests were queued: what would
   * act for it (a new device, keys, a secret) is refused, so nothing is
   * left attached to a device key that no longer exists. */
  if ((o->type == SOTTO_SRV_ADD_DEVICE || o->type == SOTTO_SRV_KEYS_UPLOAD || o->type == SOTTO_SRV_ROTATE_SECRET ||
       o->type == SOTTO_SRV_DEVICE_REMOVE) &&
      !ops->device_exists(st, c->devkey)) {
    o->code = SOTTO_SRV_E_DEVICE_REMOVED;
    return 0;
  }
  switch (o->type) {
    case SOTTO_SRV_REGISTER: {
      struct sotto_srv_register m;
      uint8_t h[32];
      int64_t acc;
      if (sotto__srv_parse_register(o->data, o->len, &m) != 0) return SOTTO_ERR_INTERNAL;
      if (!sotto__srv_username_new_ok(m.username.p, m.username.len)) {
        o->code = SOTTO_SRV_E_BAD_USERNAME;
        return 0;
      }
      cstr(user, &m.username);
      rc = ops->account_create(st, user, m.identity.p, m.identity.len, today(), &acc);
      if (rc == SOTTO_ERR_DUPLICATE) {
        o->code = SOTTO_SRV_E_TAKEN;
        return 0;
      }
      if (rc) return rc;
      randombytes_buf(o->secret, sizeof o->secret);
      hash_secret(h, o->secret);
      rc = ops->device_add(st, acc, h, today(), (uint32_t)s->cfg->max_devices, &o->dev);
      if (rc) return rc < 0 && rc != SOTTO_ERR_TOO_LARGE ? rc : SOTTO_ERR_STORE;
      o->device_id = o->dev.device_id;
      return 0;
    }
    case SOTTO_SRV_ADD_DEVICE: {
      uint8_t h[32];
      randombytes_buf(o->secret, sizeof o->secret);
      hash_secret(h, o->secret);
      rc = ops->device_add(st, c->account_id, h, today(), (uint32_t)s->cfg->max_devices, &o->dev);
      if (rc == SOTTO_ERR_TOO_LARGE) {
        o->code = SOTTO_SRV_E_TOO_MANY_DEVICES;
        return 0;
      }
      if (rc) return rc;
      o->device_id = o->dev.device_id;
      return 0;
    }
    case SOTTO_SRV_AUTH: {
      struct sotto_srv_auth m;
      uint8_t h[32];
      if (sotto__srv_parse_auth(o->data, o->len, &m) != 0) return SOTTO_ERR_INTERNAL;
      cstr(user, &m.username);
      rc = ops->device_lookup(st, user, m.device_id, &o->dev);
      if (rc < 0) return rc;
      /* One hash and a constant-time compare; an unknown device costs the
       * same hash so that probing names is not cheaper than guessing. */
      hash_secret(h, m.secret);
      if (rc == 1 || sodium_memcmp(h, o->dev.secret_hash, 32) != 0) {
        o->code = SOTTO_SRV_E_AUTH;
        sodium_memzero(h, sizeof h);
        return 0;
      }
      sodium_memzero(h, sizeof h);
      if (o->dev.last_seen_day != today() && (rc = ops->device_seen(st, o->dev.devkey, today())) != 0) return rc;
      if ((rc = ops->keys_count(st, o->dev.devkey, &o->ec, &o->kem)) != 0) return rc;
      return 0;
    }
    case SOTTO_SRV_KEYS_UPLOAD: {
      struct sotto_srv_keys *k = malloc(sizeof *k);
      if (!k) return SOTTO_ERR_NOMEM;
      rc = sotto__srv_parse_keys(o->data, o->len, k) != 0 ? SOTTO_ERR_INTERNAL
                                                          : ops->keys_count(st, c->devkey, &o->ec, &o->kem);
      /* Stored one-time keys are capped per device, so an authenticated
       * client cannot grow the database without bound. */
      if (rc == 0 && (o->ec + k->n_ec > SOTTO_SRV_MAX_STORED_KEYS || o->kem + k->n_kem > SOTTO_SRV_MAX_STORED_KEYS))
        o->code = SOTTO_SRV_E_TOO_LARGE;
      else if (rc == 0)
        rc = ops->keys_put(st, c->devkey, k);
      free(k);
      if (rc == 0 && o->code) return 0;
      if (rc) return rc;
      return ops->keys_count(st, c->devkey, &o->ec, &o->kem);
    }
    case SOTTO_SRV_BUNDLE: {
      struct sotto_srv_target m;
      struct sotto_store_device d;
      if (sotto__srv_parse_bundle_req(o->data, o->len, &m) != 0) return SOTTO_ERR_INTERNAL;
      cstr(user, &m.username);
      if ((rc = ops->device_lookup(st, user, m.device_id, &d)) < 0) return rc;
      if (rc == 1) {
        o->code = SOTTO_SRV_E_NOT_FOUND;
        return 0;
      }
      if ((o->bundle = calloc(1, sizeof *o->bundle)) == NULL) return SOTTO_ERR_NOMEM;
      if ((rc = ops->bundle_take(st, d.devkey, !o->no_otk, o->bundle)) < 0) return rc;
      if (rc == 1) {
        o->code = SOTTO_SRV_E_NO_KEYS;
        return 0;
      }
      o->target_devkey = d.devkey;
      return ops->keys_count(st, d.devkey, &o->ec, &o->kem);
    }
    case SOTTO_SRV_DEVICES: {
      struct sotto_srv_target m;
      if (sotto__srv_parse_devices_req(o->data, o->len, &m) != 0) return SOTTO_ERR_INTERNAL;
      cstr(user, &m.username);
      if ((rc = ops->devices_list(st, user, o->ids, SOTTO_SRV_MAX_DEVICES, &o->n_ids)) != 0) return rc;
      if (o->n_ids == 0) o->code = SOTTO_SRV_E_NOT_FOUND;
      return 0;
    }
    case SOTTO_SRV_SEND: {
      struct sotto_srv_send m;
      struct sotto_store_device d;
      struct sotto_store_env e;
      if (sotto__srv_parse_send(o->data, o->len, s->cfg->max_message, &m) != 0) return SOTTO_ERR_INTERNAL;
      cstr(user, &m.username);
      if ((rc = ops->device_route(st, user, m.device_id, &d)) < 0) return rc;
      if (rc == 1) {
        o->code = SOTTO_SRV_E_NOT_FOUND;
        return 0;
      }
      /* Quotas, most specific first, so that the error is true for who
       * gets it: this sender's share of the recipient's queue (one account
       * cannot fill it), then the queue itself (count and bytes), then
       * everything this account has waiting (one account cannot fill the
       * disk), then the server's storage. The share is only counted when
       * the queue holds enough envelopes for it to matter. */
      if (d.queue_count >= s->cfg->max_queue_per_sender) {
        int64_t mine = 0;
        if ((rc = ops->sender_count(st, d.devkey, c->user, &mine)) != 0) return rc;
        if (mine >= s->cfg->max_queue_per_sender) {
          o->code = SOTTO_SRV_E_QUEUE_SHARE;
          return 0;
        }
      }
      if (d.queue_count >= s->cfg->max_queue || d.queue_bytes + (int64_t)m.body_len > s->cfg->max_queue_bytes) {
        o->code = SOTTO_SRV_E_QUEUE_FULL;
        return 0;
      }
      {
        int64_t mine = 0;
        if ((rc = ops->sender_bytes(st, c->user, &mine)) != 0) return rc;
        if (mine + (int64_t)m.body_len > s->cfg->max_sender_bytes) {
          o->code = SOTTO_SRV_E_SENDER_QUOTA;
          return 0;
        }
      }
      {
        int64_t total = 0;
        if ((rc = ops->total_bytes(st, &total)) != 0) return rc;
        if (total + (int64_t)m.body_len > s->cfg->max_store_bytes) {
          o->code = SOTTO_SRV_E_STORAGE_FULL;
          return 0;
        }
      }
      e.sender = c->user;
      e.sender_device = c->device_id;
      e.device_id = m.device_id;
      e.type = m.type;
      e.timestamp_ms = now_ms();
      e.body = m.body;
      e.body_len = m.body_len;
      if ((rc = ops->msg_insert(st, d.devkey, &e)) != 0) return rc;
      o->msg_id = e.id;
      o->ts = e.timestamp_ms;
      o->target_devkey = d.devkey;
      return 0;
    }
    case SOTTO_SRV_EPOCH: {
      uint64_t e;
      if (sotto__srv_parse_epoch(o->data, o->len, &e) != 0) return SOTTO_ERR_INTERNAL;
      rc = ops->device_epoch_raise(st, c->devkey, (int64_t)e, &o->ts); /* o->ts: the epoch before */
      return rc == 1 ? SOTTO_ERR_STORE : rc;
    }
    case SOTTO_SRV_ACK: {
      uint64_t id;
      int found;
      if (sotto__srv_parse_ack(o->data, o->len, &id) != 0) return SOTTO_ERR_INTERNAL;
      if (id > INT64_MAX) return 0;
      rc = ops->msg_delete(st, c->devkey, (int64_t)id, &found);
      o->deleted = (uint8_t)(rc == 0 && found);
      return rc;
    }
    case SOTTO_SRV_ROTATE_SECRET: {
      /* A new secret for the calling device; the old one stops working
       * when this commits (a stolen secret is not permanent access). */
      uint8_t h[32];
      randombytes_buf(o->secret, sizeof o->secret);
      hash_secret(h, o->secret);
      rc = ops->device_secret(st, c->devkey, h);
      sodium_memzero(h, sizeof h);
      o->device_id = c->device_id;
      return rc;
    }
    case SOTTO_SRV_DEVICE_REMOVE: {
      uint32_t id;
      if (sotto__srv_parse_device_remove(o->data, o->len, &id) != 0) return SOTTO_ERR_INTERNAL;
      /* Device 1 (the first, from REGISTER) may remove any other device;
       * any device may remove itself; device 1 itself stays. */
      if (id == 1 || (c->device_id != 1 && id != c->device_id)) {
        o->code = SOTTO_SRV_E_FORBIDDEN;
        return 0;
      }
      if ((rc = ops->device_remove(st, c->account_id, id, &o->target_devkey)) < 0) return rc;
      if (rc == 1) o->code = SOTTO_SRV_E_NOT_FOUND;
      o->device_id = id;
      return 0;
    }
  }
  return SOTTO_ERR_INTERNAL;
}

static void authed(struct srv *s, struct conn *c, const struct sotto_store_device *d, const char *user) {
  struct conn *old = devmap_get(s, d->devkey);
  if (old) {
    /* One live connection per device: the newer one wins. */
    devmap_del(s, old);
    old->state = S_UNAUTH; /* no further pushes, not in the map */
    s->n_unauth++;
    conn_close_with(s, old, SOTTO_SRV_E_DISPLACED);
  }
  c->state = S_AUTHED;
  s->n_unauth--;
  unauth_release(s, c);
  c->devkey = d->devkey;
  c->account_id = d->account_id;
  c->device_id = d->device_id;
  snprintf(c->user, sizeof c->user, "%s", user);
  /* The rate limits live with the account, not the connection: a
   * reconnect finds the same buckets. */
  c->send_key = sotto__lim_key(&s->lim, SOTTO_LIM_SEND, &c->account_id, sizeof c->account_id);
  c->bundle_key = sotto__lim_key(&s->lim, SOTTO_LIM_BUNDLE, &c->account_id, sizeof c->account_id);
  c->last_rx_ms = mono_ms();
  sodium_memzero(c->addr, sizeof c->addr);
  sodium_memzero(c->pfx, sizeof c->pfx);
  c->hnext = *devmap_slot(s, c->devkey);
  *devmap_slot(s, c->devkey) = c;
  c->cursor = 0;
  c->backlog = 1;
  c->in_backlog = 1;
  c->bnext = s->backlog;
  s->backlog = c;
}

/* KEYS_LOW pushes are bounded per device (keys-low-interval): whatever
 * other accounts fetch, a device is asked to make keys at most that often. */
static int keys_low_due(struct srv *s, int64_t devkey) {
  uint64_t k = sotto__lim_key(&s->lim, SOTTO_LIM_KEYS_LOW, &devkey, sizeof devkey);
  if (s->cfg->keys_low_interval_s <= 0) return 1;
  return sotto__lim_take(&s->lim, k, 1.0 / ((double)s->cfg->keys_low_interval_s * 1000.0), 1.0, mono_ms());
}

/* Writes the answer of an op after commit (or an error after rollback). */
static void op_answer(struct srv *s, struct op *o, int failed) {
  struct conn *c = o->c;
  struct sotto__wr w;
  if (c->dead) return;
  /* Only a wrong AUTH costs a token: correct logins (and ones the store
   * could not check) never use the failed-login buckets up. */
  if (o->type == SOTTO_SRV_AUTH && c->auth_held) {
    int64_t t = mono_ms();
    c->auth_held = 0;
    if (!failed && o->code == SOTTO_SRV_E_AUTH) {
      sotto__lim_charge(&s->lim, c->auth_key_user, per_min(s->cfg->auth_fail_rate), s->cfg->auth_fail_burst, t);
      sotto__lim_charge(&s->lim, c->auth_key_pfx, per_min(s->cfg->auth_fail_prefix_rate),
                        s->cfg->auth_fail_prefix_burst, t);
    }
  }
  if (failed) {
    if (o->type == SOTTO_SRV_AUTH) c->state = S_UNAUTH;
    send_err(s, c, o->req_id, SOTTO_SRV_E_INTERNAL);
    return;
  }
  if (o->type == SOTTO_SRV_AUTH) {
    if (o->code) {
      s->m.auth_fail++;
      c->state = S_UNAUTH;
    } else {
      struct sotto_srv_auth m;
      char user[SOTTO_SRV_USER_MAX + 1];
      s->m.auth_ok++;
      if (sotto__srv_parse_auth(o->data, o->len, &m) != 0) return;
      cstr(user, &m.username);
      authed(s, c, &o->dev, user);
    }
  }
  if (o->code) {
    send_err(s, c, o->req_id, o->code);
    return;
  }
  if (frame_begin(c, &w, 64 + SOTTO_SRV_MAX_IDENTITY + 3 * (SOTTO_SRV_MAX_KEY_BLOB + 8)) != 0) return;
  switch (o->type) {
    case SOTTO_SRV_REGISTER:
    case SOTTO_SRV_ADD_DEVICE:
    case SOTTO_SRV_ROTATE_SECRET:
      if (o->type == SOTTO_SRV_ROTATE_SECRET) logkv(1, "rotate_secret", "%s", "devices=1");
      if (o->type == SOTTO_SRV_REGISTER) {
        s->m.registrations++;
        logkv(1, "register", "devices=1");
      }
      sotto__srv_put_creds(&w, o->device_id, o->secret);
      break;
    case SOTTO_SRV_AUTH:
    case SOTTO_SRV_KEYS_UPLOAD:
      sotto__srv_put_counts(&w, (uint32_t)o->ec, (uint32_t)o->kem);
      break;
    case SOTTO_SRV_BUNDLE: {
      struct sotto_srv_bundle b;
      struct sotto_srv_bundle_buf *sb = o->bundle;
      s->m.bundles++;
      b.identity.p = sb->identity;
      b.identity.len = sb->identity_len;
      b.signed_prekey.id = sb->spk_id;
      b.signed_prekey.p = sb->spk;
      b.signed_prekey.len = sb->spk_len;
      b.has_ec = sb->has_ec;
      b.ec.id = sb->ec_id;
      b.ec.p = sb->ec;
      b.ec.len = sb->ec_len;
      b.kem_kind = sb->kem_kind;
      b.kem.id = sb->kem_id;
      b.kem.p = sb->kem;
      b.kem.len = sb->kem_len;
      sotto__srv_put_bundle(&w, &b);
      break;
    }
    case SOTTO_SRV_DEVICES:
      sotto__srv_put_devices(&w, o->ids, o->n_ids);
      break;
    case SOTTO_SRV_SEND:
      sotto__srv_put_sent(&w, (uint64_t)o->msg_id, (uint64_t)o->ts);
      s->m.msgs_in++;
      break;
    case SOTTO_SRV_ACK:
      s->m.acks++;
      break;
    case SOTTO_SRV_DEVICE_REMOVE:
      logkv(1, "device_remove", "%s", "devices=1");
      break;
    case SOTTO_SRV_EPOCH:
      sotto__srv_put_epoch_ok(&w, (uint64_t)o->ts);
      break;
  }
  frame_end(c, &w, SOTTO_SRV_OK, o->req_id);
  /* A device that authenticates with few keys left, or whose bundle was
   * just fetched down to the threshold, is told (KEYS_LOW push). */
  if (o->type == SOTTO_SRV_AUTH && (o->ec < SOTTO_SRV_KEYS_LOW || o->kem < SOTTO_SRV_KEYS_LOW) &&
      keys_low_due(s, c->devkey))
    push_keys_low(c, o->ec, o->kem);
}

/* Everything one batch writes to a connection (answers, live pushes) is
 * written with one SSL_write at the end of the batch: one TLS record and one
 * system call instead of one per envelope. */
static void flush_later(struct srv *s, struct conn *c) {
  if (c->dead || c->flush_queued) return;
  c->flush_queued = 1;
  c->fnext = s->to_flush;
  s->to_flush = c;
}

/* Connections dropped while queued stay valid until free_zombies, which runs
 * after the batch. */
static void flush_queued(struct srv *s) {
  while (s->to_flush) {
    struct conn *c = s->to_flush;
    s->to_flush = c->fnext;
    c->flush_queued = 0;
    if (!c->dead) do_write(s, c);
  }
}

/* After commit: live pushes and key-low notices to other connections. */
static void op_fanout(struct srv *s, struct op *o) {
  struct conn *r;
  if (o->code || !o->target_devkey || (r = devmap_get(s, o->target_devkey)) == NULL || r->dead) return;
  if (o->type == SOTTO_SRV_DEVICE_REMOVE) {
    /* The removed device's live connection goes (after its own OK, if it
     * removed itself). */
    devmap_del(s, r);
    r->state = S_UNAUTH; /* no further pushes; conn_drop counts it back */
    s->n_unauth++;
    conn_close_with(s, r, SOTTO_SRV_E_DEVICE_REMOVED);
    return;
  }
  if (o->type == SOTTO_SRV_BUNDLE) {
    if ((o->ec < SOTTO_SRV_KEYS_LOW || o->kem < SOTTO_SRV_KEYS_LOW) && keys_low_due(s, o->target_devkey))
      push_keys_low(r, o->ec, o->kem);
  } else if (o->type == SOTTO_SRV_SEND && !r->backlog) {
    struct sotto_srv_send m;
    struct sotto_store_env e;
    if (r->wlen - r->woff > WBUF_PUSH_MAX) {
      /* Slow reader: stop pushing, page from the store from where it is. */
      r->backlog = 1;
      if (!r->in_backlog) {
        r->in_backlog = 1;
        r->bnext = s->backlog;
        s->backlog = r;
      }
      return;
    }
    if (sotto__srv_parse_send(o->data, o->len, s->cfg->max_message, &m) != 0) return;
    e.id = o->msg_id;
    e.sender = o->c->user;
    e.sender_device = o->c->device_id;
    e.device_id = m.device_id;
    e.type = m.type;
    e.timestamp_ms = o->ts;
    e.body = m.body;
    e.body_len = m.body_len;
    push_env(s, r, &e);
  }
  flush_later(s, r);
}

/* How long an envelope may wait: max-queue-age-seconds if set (it exists so
 * that tests need not wait days), else max-queue-age-days. */
static int64_t queue_age_ms(const struct sotto_srv_config *cfg) {
  return cfg->max_queue_age_s ? cfg->max_queue_age_s * 1000 : cfg->max_queue_age_days * 86400000;
}

/* The reserve: DATA/sotto.reserve, disk-reserve bytes allocated at start,
 * given back when the disk is full so that deletes (ACKs, expiry) can still
 * write their journal pages; made again once deletes freed enough room.
 * Only the store thread touches it after start (space_low is also read by
 * op_exec, on the same thread). */
static void reserve_path(const struct srv *s, char *out, size_t cap) {
  snprintf(out, cap, "%s/sotto.reserve", s->cfg->data);
}

static int reserve_make(struct srv *s) {
  char path[1100];
  int fd, rc;
  if (s->cfg->disk_reserve <= 0) return 0;
  reserve_path(s, path, sizeof path);
  if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0) return -1;
  rc = posix_fallocate(fd, 0, (off_t)s->cfg->disk_reserve);
  close(fd);
  if (rc != 0) {
    (void)unlink(path);
    return -1;
  }
  if (s->space_low) logkv(1, "disk_ok", "reserve=%lld", (long long)s->cfg->disk_reserve);
  s->space_low = 0;
  return 0;
}

static void reserve_release(struct srv *s) {
  char path[1100];
  reserve_path(s, path, sizeof path);
  if (!s->space_low)
    logkv(0, "disk_full", "%s", "action=reserve_released hint=\"free disk space; SENDs are refused until then\"");
  (void)unlink(path);
  s->space_low = 1;
}

/* The group commit, on the store thread (or inline): every op of the batch
 * in one transaction, then the expiry run if one is due. */
/* One attempt at a batch: begin, every op in its own savepoint, expiry,
 * commit (rolled back on failure). Sets *deletes if envelopes went. */
static int batch_try(struct srv *s, struct batch *b, int *deletes) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  struct op *o;
  int rc;
  *deletes = 0;
  if ((rc = ops->begin(st)) != 0) return rc;
  /* Each op runs in its own savepoint: an op the store refuses (a
   * constraint, a full disk) is undone alone; the other clients' ops in the
   * batch commit. Only a failure that leaves the backend's caches unsure
   * (no memory, a device removal) fails the whole batch. */
  for (o = b->ops; o && rc == 0; o = o->next) {
    int r;
    if ((rc = ops->savepoint(st)) != 0) break;
    if ((r = op_exec(s, o)) != 0 && r != SOTTO_ERR_NOMEM && o->type != SOTTO_SRV_DEVICE_REMOVE &&
        ops->disk_full(st)) {
      /* The disk is full: undo this op, give the reserve file's space back
       * and try once more. An ACK then goes through (it frees space);
       * anything that would store more is refused as storage full until
       * the reserve could be made again. */
      if ((rc = ops->rollback_to(st)) != 0) break;
      reserve_release(s);
      if ((rc = ops->savepoint(st)) != 0) break;
      o->code = 0;
      r = op_exec(s, o);
      if (r != 0 && r != SOTTO_ERR_NOMEM && o->type != SOTTO_SRV_ACK) {
        if ((rc = ops->rollback_to(st)) != 0) break;
        if ((rc = ops->savepoint(st)) != 0) break;
        o->code = SOTTO_SRV_E_STORAGE_FULL;
        r = 0;
      }
    }
    if (r == 0) {
      rc = ops->release(st);
      if (o->deleted || (o->type == SOTTO_SRV_DEVICE_REMOVE && !o->code)) *deletes = 1;
    } else if (r == SOTTO_ERR_NOMEM || o->type == SOTTO_SRV_DEVICE_REMOVE) {
      rc = r;
    } else {
      o->failed = 1;
      rc = ops->rollback_to(st);
    }
  }
  if (rc == 0 && b->expire) rc = ops->expire(st, now_ms() - queue_age_ms(s->cfg), &b->deleted);
  if (rc == 0) rc = ops->commit(st);
  if (rc != 0) ops->rollback(st);
  return rc;
}

/* The group commit, on the store thread (or inline). In WAL mode the pages
 * reach the disk at commit, so that is where a full disk shows: then the
 * reserve is given back and the batch runs once more, now with SENDs
 * refused as storage full and ACKs going through. */
static void batch_exec(struct srv *s, struct batch *b) {
  int rc = 0, deletes = 0;
  b->scrub_need = 0;
  if (!b->ops && !b->expire) {
    /* Only a WAL scrub was due. */
    s->store.ops->wal_truncate(s->store.impl);
    if (s->space_low) reserve_make(s);
    b->rc = 0;
    return;
  }
  rc = batch_try(s, b, &deletes);
  if (rc != 0 && s->store.ops->disk_full(s->store.impl)) {
    struct op *o;
    reserve_release(s);
    for (o = b->ops; o; o = o->next) {
      o->code = 0;
      o->failed = 0;
      o->deleted = 0;
      o->target_devkey = 0;
      free(o->bundle);
      o->bundle = NULL;
    }
    b->deleted = 0;
    rc = batch_try(s, b, &deletes);
  }
  /* Acknowledged envelopes must not stay readable in the WAL (the frames
   * their inserts wrote stay there until the WAL is reset): the WAL is
   * checkpointed and truncated at most wal-scrub-interval ms after a commit
   * that deleted envelopes (with 0, right after that commit, before its
   * ACKs are answered: each truncation costs an fsync of the database). A
   * checkpoint that cannot finish (a reader) is retried at the next scrub.
   * Deletes may also have made room for the reserve again. */
  if (rc == 0 && (deletes || b->deleted > 0)) {
    if (s->cfg->wal_scrub_ms == 0) b->scrub = 1;
    else if (!b->scrub) b->scrub_need = 1;
  }
  if (b->scrub) {
    s->store.ops->wal_truncate(s->store.impl);
    if (s->space_low) reserve_make(s);
  }
  b->rc = rc;
}

static void *store_thread(void *arg) {
  struct srv *s = arg;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->job && !s->quit) pthread_cond_wait(&s->cv, &s->mu);
    if (!s->job) break;
    pthread_mutex_unlock(&s->mu);
    batch_exec(s, &s->b);
    pthread_mutex_lock(&s->mu);
    s->job = 0;
    s->done = 1;
    pthread_cond_signal(&s->done_cv);
    {
      uint64_t one = 1;
      if (write(s->efd, &one, sizeof one) != (ssize_t)sizeof one) {
        /* The counter cannot overflow here; the I/O thread also looks at
         * done after every epoll_wait, so a lost wake-up only delays. */
      }
    }
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Hands the collected ops (and a due expiry) to the store as the next batch.
 * Answering may resume reading on a connection, which then queues new ops
 * for the batch after. */
static void batch_start(struct srv *s) {
  struct op **pp, *o, *take = NULL, **tt = &take;
  int n = 0, scrub = s->scrub_pending && mono_ms() >= s->scrub_at_ms;
  if (s->b_active || (!s->ops && !s->expire_due && !scrub)) return;
  prune_ops(s);
  /* Fairness: one connection contributes at most BATCH_CONN_OPS ops and
   * BATCH_CONN_BYTES of op cost to a batch (its first op always goes); the
   * rest of its ops wait, in order, for the next batch. So a client that
   * pipelines heavy requests cannot make every other client's answer wait
   * for one huge transaction. */
  for (o = s->ops; o; o = o->next) {
    o->c->bt_n = 0;
    o->c->bt_bytes = 0;
    o->c->bt_full = 0;
  }
  pp = &s->ops;
  while ((o = *pp) != NULL) {
    struct conn *c = o->c;
    size_t cost = op_cost(o->type, o->len);
    if (c->bt_full || (c->bt_n > 0 && (c->bt_n >= BATCH_CONN_OPS || c->bt_bytes + cost > BATCH_CONN_BYTES))) {
      c->bt_full = 1;
      pp = &o->next;
      continue;
    }
    c->bt_n++;
    c->bt_bytes += cost;
    *pp = o->next;
    o->next = NULL;
    *tt = o;
    tt = &o->next;
    n++;
  }
  s->ops_tail = pp;
  s->b.ops = take;
  s->b.n = n;
  s->b.expire = s->expire_due;
  s->b.rc = 0;
  s->b.deleted = 0;
  s->b.scrub = scrub;
  if (scrub) s->scrub_pending = 0;
  s->n_ops -= n;
  s->expire_due = 0;
  s->b_active = 1;
  if (!s->threaded) {
    batch_exec(s, &s->b);
    s->done = 1;
    return;
  }
  pthread_mutex_lock(&s->mu);
  s->done = 0;
  s->job = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static int batch_ready(struct srv *s) {
  int d;
  if (!s->b_active) return 0;
  if (!s->threaded) return 1;
  pthread_mutex_lock(&s->mu);
  d = s->done;
  pthread_mutex_unlock(&s->mu);
  return d;
}

static void batch_wait(struct srv *s) {
  if (!s->b_active || !s->threaded) return;
  pthread_mutex_lock(&s->mu);
  while (!s->done) pthread_cond_wait(&s->done_cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

/* After the store thread is done with batch b (a copy: the next batch may
 * already be in flight): counters, answers, live pushes, one write per
 * connection. */
static void batch_finish(struct srv *s, const struct batch *b) {
  struct op *o, *next, *list = b->ops;
  int rc = b->rc, n = b->n;
  if (b->scrub_need && !s->scrub_pending) {
    s->scrub_pending = 1;
    s->scrub_at_ms = mono_ms() + s->cfg->wal_scrub_ms;
  }
  if (rc == 0 && b->deleted) {
    s->m.expired += (uint64_t)b->deleted;
    logkv(1, "expire", "deleted=%lld", (long long)b->deleted);
  }
  if (rc != 0) {
    s->m.commit_failures++;
    logkv(0, "commit_failed", "ops=%d err=%s", n, sotto_errname(rc));
  } else if (list || b->expire) {
    s->m.commits++;
    s->m.batch_ops += (uint64_t)n;
    s->m.batch_hist[n <= 1 ? 0 : n <= 10 ? 1 : n <= 100 ? 2 : n <= 1000 ? 3 : 4]++;
    for (o = list; o; o = o->next)
      if (o->type == SOTTO_SRV_SEND && !o->code && !o->failed && o->msg_id > s->horizon) s->horizon = o->msg_id;
  }
  for (o = list; o; o = o->next) op_answer(s, o, rc != 0 || o->failed);
  if (rc == 0)
    for (o = list; o; o = o->next)
      if (!o->failed) op_fanout(s, o);
  for (o = list; o; o = next) {
    next = o->next;
    flush_later(s, o->c);
    op_free(o);
  }
  flush_queued(s);
}

static void free_list(struct conn **list) {
  while (*list) {
    struct conn *c = *list;
    *list = c->znext;
    sodium_memzero(c, sizeof *c);
    free(c);
  }
}

/* When the store thread has finished a batch: the next one goes out at once
 * (so that the store works while this thread answers), then the finished
 * one is answered. Connections dropped so far are referenced at most by the
 * finished batch (the new one was pruned of them), so they are freed after
 * the answers; the ones dropped from now on wait for the next turn. */
static void batch_turn(struct srv *s) {
  struct batch done;
  struct conn *dropped;
  if (!batch_ready(s)) return;
  done = s->b;
  s->b_active = 0;
  s->b.ops = NULL;
  prune_ops(s);
  dropped = s->zombies;
  s->zombies = NULL;
  batch_start(s);
  batch_finish(s, &done);
  free_list(&dropped);
}

/* Removes queued ops of dropped connections (before their structs go). */
static void prune_ops(struct srv *s) {
  struct op **pp = &s->ops, *o;
  s->ops_tail = &s->ops;
  while ((o = *pp) != NULL) {
    if (o->c->dead) {
      *pp = o->next;
      s->n_ops--;
      op_free(o);
    } else {
      pp = &o->next;
      s->ops_tail = &o->next;
    }
  }
}

/* ---- backlog paging ---------------------------------------------------------- */

/* Pushes one paged envelope; stops the page at the horizon: envelopes of a
 * batch that is committed but not answered yet are pushed live when it is
 * answered (if the device is live by then), so paging them too would send
 * them twice. */
static int backlog_cb(void *ctx, const struct sotto_store_env *e) {
  void **a = ctx;
  struct srv *s = a[0];
  if (e->id > s->horizon) return 1;
  push_env(s, a[1], e);
  (*(int *)a[2])++;
  return 0;
}

/* Feeds each connection in backlog mode one page while its write buffer has
 * room; a short page means the queue is drained: DRAINED, then live mode.
 * Returns 1 if some connection still wants paging right away. */
static int pump_backlog(struct srv *s) {
  struct conn *c, *next;
  int more = 0;
  for (c = s->backlog; c; c = next) {
    int got = 0;
    void *a[3] = {s, c, &got};
    next = c->bnext;
    if (c->dead || c->closing || c->wlen - c->woff >= BACKLOG_ROOM) continue;
    if (s->rstore.ops->msg_fetch(s->rstore.impl, c->devkey, c->cursor, BACKLOG_PAGE, backlog_cb, a) != 0) {
      logkv(0, "backlog_failed", "%s", "");
      continue;
    }
    if (got < BACKLOG_PAGE) {
      c->backlog = 0;
      backlog_del(s, c);
      send_simple(c, SOTTO_SRV_DRAINED, 0, NULL, 0);
    } else {
      more = 1;
    }
    do_write(s, c);
  }
  return more;
}

/* ---- requests ---------------------------------------------------------------- */

/* Handles one complete frame body. */
static void handle_frame(struct srv *s, struct conn *c, const uint8_t *body, size_t len) {
  struct sotto_srv_frame f;
  int rc;
  if (sotto__srv_frame_parse(body, len, &f) != 0) {
    conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
    return;
  }
  c->last_rx_ms = mono_ms();
  if (f.type == SOTTO_SRV_PING && c->state != S_HELLO) {
    if (f.len) conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
    else send_simple(c, SOTTO_SRV_OK, f.req_id, NULL, 0);
    return;
  }
  switch (c->state) {
    case S_HELLO: {
      struct sotto_srv_hello h;
      struct sotto__wr w;
      if (f.type != SOTTO_SRV_HELLO || sotto__srv_parse_hello(f.p, f.len, &h) != 0) {
        conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
        return;
      }
      if (h.version != SOTTO_SRV_VERSION) {
        send_err(s, c, f.req_id, SOTTO_SRV_E_VERSION);
        conn_close_with(s, c, SOTTO_SRV_E_VERSION);
        return;
      }
      if (frame_begin(c, &w, 10) != 0) return;
      sotto__srv_put_hello_ok(&w, SOTTO_SRV_VERSION, (uint32_t)s->cfg->max_frame, (uint32_t)s->cfg->max_message);
      frame_end(c, &w, SOTTO_SRV_OK, f.req_id);
      c->state = S_UNAUTH;
      return;
    }
    case S_UNAUTH:
      if (f.type == SOTTO_SRV_REGISTER) {
        struct sotto_srv_register m;
        const struct sotto_srv_config *g = s->cfg;
        int64_t t = mono_ms();
        uint64_t ka, kp, kg;
        if (sotto__srv_parse_register(f.p, f.len, &m) != 0) {
          conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
          return;
        }
        /* Registrations per address, per prefix and for the whole server:
         * all three must have a token, then each pays one. */
        ka = sotto__lim_key(&s->lim, SOTTO_LIM_REG_ADDR, c->addr, c->alen);
        kp = sotto__lim_key(&s->lim, SOTTO_LIM_REG_PREFIX, c->pfx, c->alen);
        kg = sotto__lim_key(&s->lim, SOTTO_LIM_REG_GLOBAL, NULL, 0);
        if (!sotto__lim_peek(&s->lim, ka, per_min(g->register_rate), g->register_burst, t) ||
            !sotto__lim_peek(&s->lim, kp, per_min(g->register_prefix_rate), g->register_prefix_burst, t) ||
            !sotto__lim_take(&s->lim, kg, per_min(g->register_global_rate), g->register_global_burst, t)) {
          s->m.rate_limited++;
          send_err(s, c, f.req_id, SOTTO_SRV_E_RATE);
          return;
        }
        (void)sotto__lim_take(&s->lim, ka, per_min(g->register_rate), g->register_burst, t);
        (void)sotto__lim_take(&s->lim, kp, per_min(g->register_prefix_rate), g->register_prefix_burst, t);
        if (!op_new(s, c, &f)) conn_close_with(s, c, SOTTO_SRV_E_INTERNAL);
        return;
      }
      if (f.type == SOTTO_SRV_AUTH) {
        struct sotto_srv_auth m;
        if (sotto__srv_parse_auth(f.p, f.len, &m) != 0) {
          conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
          return;
        }
        /* Failed logins per (address, account) and per address prefix:
         * only failures are charged (when the answer is known), so correct
         * logins from a busy address always pass; an empty bucket refuses
         * before any lookup, so a secret guessed past the limit is never
         * confirmed. Keying on the account too means that failures against
         * one account do not lock out the others behind the same address
         * (CGNAT). */
        {
          const struct sotto_srv_config *g = s->cfg;
          uint8_t au[16 + SOTTO_SRV_USER_MAX];
          int64_t t = mono_ms();
          memcpy(au, c->addr, c->alen);
          memcpy(au + c->alen, m.username.p, m.username.len);
          c->auth_key_user = sotto__lim_key(&s->lim, SOTTO_LIM_AUTH_ADDR_USER, au, c->alen + m.username.len);
          c->auth_key_pfx = sotto__lim_key(&s->lim, SOTTO_LIM_AUTH_ADDR, c->pfx, c->alen);
          if (!sotto__lim_peek(&s->lim, c->auth_key_user, per_min(g->auth_fail_rate), g->auth_fail_burst, t) ||
              !sotto__lim_peek(&s->lim, c->auth_key_pfx, per_min(g->auth_fail_prefix_rate),
                               g->auth_fail_prefix_burst, t)) {
            s->m.rate_limited++;
            logkv(2, "auth_rate", "refused=1 peer=%08x", peer_tag(c));
            send_err(s, c, f.req_id, SOTTO_SRV_E_AUTH_RATE);
            conn_close_with(s, c, SOTTO_SRV_E_AUTH_RATE);
            return;
          }
          c->auth_held = 1;
        }
        c->state = S_AUTHING;
        if (!op_new(s, c, &f)) conn_close_with(s, c, SOTTO_SRV_E_INTERNAL);
        return;
      }
      break;
    case S_AUTHING:
      send_err(s, c, f.req_id, SOTTO_SRV_E_STATE);
      return;
    case S_AUTHED:
      switch (f.type) {
        case SOTTO_SRV_ADD_DEVICE:
        case SOTTO_SRV_ROTATE_SECRET:
          if (f.len) break;
          if (!op_new(s, c, &f)) conn_close_with(s, c, SOTTO_SRV_E_INTERNAL);
          return;
        case SOTTO_SRV_DEVICE_REMOVE: {
          uint32_t id;
          if (sotto__srv_parse_device_remove(f.p, f.len, &id) != 0) break;
          if (!op_new(s, c, &f)) conn_close_with(s, c, SOTTO_SRV_E_INTERNAL);
          return;
        }
        case SOTTO_SRV_KEYS_UPLOAD: {
          struct sotto_srv_keys *k = malloc(sizeof *k);
          if (!k) {
            conn_close_with(s, c, SOTTO_SRV_E_INTERNAL);
            return;
          }
          rc = sotto__srv_parse_keys(f.p, f.len, k);
          free(k);
          if (rc == SOTTO_ERR_TOO_LARGE) {
            send_err(s, c, f.req_id, SOTTO_SRV_E_TOO_LARGE);
            return;
          }
          if (rc) break;
          if (!op_new(s, c, &f)) conn_close_with(s, c, SOTTO_SRV_E_INTERNAL);
          return;
        }
        case SOTTO_SRV_BUNDLE:
        case SOTTO_SRV_DEVICES: {
          struct sotto_srv_target m;
          struct op *o;
          int no_otk = 0;
          rc = f.type == SOTTO_SRV_BUNDLE ? sotto__srv_parse_bundle_req(f.p, f.len, &m)
                                          : sotto__srv_parse_devices_req(f.p, f.len, &m);
          if (rc) break;
          if (f.type == SOTTO_SRV_BUNDLE) {
            /* Two budgets, both kept per account or device, not per
             * connection: BUNDLE requests per requesting account (over it:
             * ERR rate), and one-time keys handed out per target device
             * (over it the bundle comes without one-time keys: signed
             * pre-key and KEM last-resort key still make a session). So no
             * one drains a device's one-time keys, and the device is never
             * asked to make more than that budget. */
            const struct sotto_srv_config *g = s->cfg;
            uint8_t tk[SOTTO_SRV_USER_MAX + 4];
            int64_t t = mono_ms();
            if (!sotto__lim_take(&s->lim, c->bundle_key, per_min(g->bundle_rate), g->bundle_burst, t)) {
              s->m.rate_limited++;
              send_err(s, c, f.req_id, SOTTO_SRV_E_RATE);
              return;
            }
            memcpy(tk, m.username.p, m.username.len);
            memcpy(tk + m.username.len, &m.device_id, 4);
            no_otk = !sotto__lim_take(&s->lim, sotto__lim_key(&s->lim, SOTTO_LIM_OTK, tk, m.username.len + 4),
                                      per_min(g->bundle_otk_rate), g->bundle_otk_burst, t);
          }
          if ((o = op_new(s, c, &f)) == NULL) conn_close_with(s, c, SOTTO_SRV_E_INTERNAL);
          else o->no_otk = (uint8_t)no_otk;
          return;
        }
        case SOTTO_SRV_SEND: {
          struct sotto_srv_send m;
          rc = sotto__srv_parse_send(f.p, f.len, s->cfg->max_message, &m);
          if (rc == SOTTO_ERR_TOO_LARGE) {
            send_err(s, c, f.req_id, SOTTO_SRV_E_TOO_LARGE);
            return;
          }
          if (rc) break;
          if (!sotto__lim_take(&s->lim, c->send_key, s->cfg->send_rate / 1000.0, s->cfg->send_burst, mono_ms())) {
            s->m.rate_limited++;
            send_err(s, c, f.req_id, SOTTO_SRV_E_RATE);
            return;
          }
          if (!op_new(s, c, &f)) conn_close_with(s, c, SOTTO_SRV_E_INTERNAL);
          return;
        }
        case SOTTO_SRV_ACK: {
          uint64_t id;
          if (sotto__srv_parse_ack(f.p, f.len, &id) != 0) break;
          if (!op_new(s, c, &f)) conn_close_with(s, c, SOTTO_SRV_E_INTERNAL);
          return;
        }
        case SOTTO_SRV_EPOCH: {
          uint64_t e;
          if (sotto__srv_parse_epoch(f.p, f.len, &e) != 0) break;
          if (!op_new(s, c, &f)) conn_close_with(s, c, SOTTO_SRV_E_INTERNAL);
          return;
        }
        case SOTTO_SRV_HELLO:
        case SOTTO_SRV_REGISTER:
        case SOTTO_SRV_AUTH:
          send_err(s, c, f.req_id, SOTTO_SRV_E_STATE);
          return;
      }
      conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
      return;
  }
  /* Unauthenticated: known requests get "not authenticated", the rest close. */
  if (f.type == SOTTO_SRV_ADD_DEVICE || f.type == SOTTO_SRV_KEYS_UPLOAD || f.type == SOTTO_SRV_BUNDLE ||
      f.type == SOTTO_SRV_DEVICES || f.type == SOTTO_SRV_SEND || f.type == SOTTO_SRV_ACK ||
      f.type == SOTTO_SRV_ROTATE_SECRET || f.type == SOTTO_SRV_DEVICE_REMOVE || f.type == SOTTO_SRV_EPOCH)
    send_err(s, c, f.req_id, SOTTO_SRV_E_NOT_AUTHED);
  else
    conn_close_with(s, c, SOTTO_SRV_E_MALFORMED);
}

/* ---- metrics ------------------------------------------------------------------- */

static void metrics_answer(struct srv *s, struct conn *c) {
  char *body;
  size_t cap = 8192, n = 0;
  int64_t qc = 0, qb = 0;
  int i;
  char hdr[128];
  static const char *const le[5] = {"1", "10", "100", "1000", "+Inf"};
  uint64_t cum = 0;
  if ((body = malloc(cap)) == NULL) {
    conn_drop(s, c);
    return;
  }
  (void)s->rstore.ops->queue_total(s->rstore.impl, &qc, &qb);
#define P(...) n += (size_t)snprintf(body + n, n < cap ? cap - n : 0, __VA_ARGS__)
  P("# TYPE sotto_connections gauge\nsotto_connections %d\n", s->n_conns - 1 < 0 ? 0 : s->n_conns - 1);
  P("# TYPE sotto_connections_unauthenticated gauge\nsotto_connections_unauthenticated %d\n", s->n_unauth);
  P("# TYPE sotto_connections_total counter\nsotto_connections_total %llu\n", (unsigned long long)s->m.conns_total);
  P("# TYPE sotto_connections_rejected_total counter\nsotto_connections_rejected_total %llu\n",
    (unsigned long long)s->m.conns_rejected);
  P("# TYPE sotto_tls_handshake_failures_total counter\nsotto_tls_handshake_failures_total %llu\n",
    (unsigned long long)s->m.tls_failed);
  P("# TYPE sotto_messages_in_total counter\nsotto_messages_in_total %llu\n", (unsigned long long)s->m.msgs_in);
  P("# TYPE sotto_messages_out_total counter\nsotto_messages_out_total %llu\n", (unsigned long long)s->m.msgs_out);
  P("# TYPE sotto_acks_total counter\nsotto_acks_total %llu\n", (unsigned long long)s->m.acks);
  P("# TYPE sotto_messages_expired_total counter\nsotto_messages_expired_total %llu\n",
    (unsigned long long)s->m.expired);
  P("# TYPE sotto_queue_depth gauge\nsotto_queue_depth %lld\n", (long long)qc);
  P("# TYPE sotto_queue_bytes gauge\nsotto_queue_bytes %lld\n", (long long)qb);
  P("# TYPE sotto_registrations_total counter\nsotto_registrations_total %llu\n",
    (unsigned long long)s->m.registrations);
  P("# TYPE sotto_auth_total counter\nsotto_auth_total{result=\"ok\"} %llu\nsotto_auth_total{result=\"fail\"} %llu\n",
    (unsigned long long)s->m.auth_ok, (unsigned long long)s->m.auth_fail);
  P("# TYPE sotto_bundles_total counter\nsotto_bundles_total %llu\n", (unsigned long long)s->m.bundles);
  P("# TYPE sotto_rate_limited_total counter\nsotto_rate_limited_total %llu\n",
    (unsigned long long)s->m.rate_limited);
  P("# TYPE sotto_commit_failures_total counter\nsotto_commit_failures_total %llu\n",
    (unsigned long long)s->m.commit_failures);
  P("# TYPE sotto_commit_batch_size histogram\n");
  for (i = 0; i < 5; i++) {
    cum += s->m.batch_hist[i];
    P("sotto_commit_batch_size_bucket{le=\"%s\"} %llu\n", le[i], (unsigned long long)cum);
  }
  P("sotto_commit_batch_size_sum %llu\nsotto_commit_batch_size_count %llu\n", (unsigned long long)s->m.batch_ops,
    (unsigned long long)s->m.commits);
  P("# TYPE sotto_errors_total counter\n");
  for (i = 1; i < 32; i++)
    if (s->m.errors[i])
      P("sotto_errors_total{code=\"%d\",reason=\"%s\"} %llu\n", i, sotto__srv_code_str((unsigned)i),
        (unsigned long long)s->m.errors[i]);
#undef P
  if (n >= cap) n = cap - 1;
  snprintf(hdr, sizeof hdr,
           "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: %zu\r\n\r\n", n);
  {
    uint8_t *p = wbuf_reserve(c, strlen(hdr) + n);
    if (p) {
      memcpy(p, hdr, strlen(hdr));
      memcpy(p + strlen(hdr), body, n);
      c->wlen += strlen(hdr) + n;
    }
  }
  free(body);
  c->closing = 1;
  c->deadline_ms = mono_ms() + CLOSE_GRACE_MS;
  do_write(s, c);
}

static void metrics_feed(struct srv *s, struct conn *c, const uint8_t *p, size_t n) {
  if (c->closing) return;
  if (!c->rbuf && (c->rbuf = malloc(METRICS_REQ_MAX)) == NULL) {
    conn_drop(s, c);
    return;
  }
  if (n > METRICS_REQ_MAX - c->rhave) n = METRICS_REQ_MAX - c->rhave;
  memcpy(c->rbuf + c->rhave, p, n);
  c->rhave += (uint32_t)n;
  if (memmem(c->rbuf, c->rhave, "\r\n\r\n", 4) || memmem(c->rbuf, c->rhave, "\n\n", 2) ||
      c->rhave == METRICS_REQ_MAX)
    metrics_answer(s, c);
}

/* ---- reading ------------------------------------------------------------------- */

static size_t frame_cap(struct srv *s, const struct conn *c) {
  return c->state == S_AUTHED ? s->cfg->max_frame : s->cfg->max_frame_unauth;
}

/* Splits a stream chunk into frames. Whole frames are handled in place;
 * a partial one is copied into a buffer that grows with the bytes that
 * actually arrived (never sized by the declared length alone). */
static void feed(struct srv *s, struct conn *c, const uint8_t *p, size_t n) {
  while (n > 0 && !c->dead && !c->closing) {
    uint32_t blen;
    size_t take;
    if (c->hdr_have == 0 && conn_full(s, c)) {
      /* Too much in flight: keep the rest of this read (at most one
       * READ_CHUNK) and stop reading until answers go out. */
      if ((c->ibuf = malloc(n)) == NULL) {
        conn_drop(s, c);
        return;
      }
      memcpy(c->ibuf, p, n);
      c->ibuf_len = n;
      return;
    }
    if (c->hdr_have < 4) {
      if (c->hdr_have == 0 && n >= 4) {
        int rc = sotto__srv_frame_len(p, frame_cap(s, c), &blen);
        if (rc) {
          conn_close_with(s, c, rc == SOTTO_ERR_TOO_LARGE ? SOTTO_SRV_E_TOO_LARGE : SOTTO_SRV_E_MALFORMED);
          return;
        }
        if (n - 4 >= blen) {
          handle_frame(s, c, p + 4, blen);
          p += 4 + blen;
          n -= 4 + blen;
          continue;
        }
        memcpy(c->hdr, p, 4);
        c->hdr_have = 4;
        p += 4;
        n -= 4;
      } else {
        take = (size_t)(4 - c->hdr_have) < n ? (size_t)(4 - c->hdr_have) : n;
        memcpy(c->hdr + c->hdr_have, p, take);
        c->hdr_have = (uint8_t)(c->hdr_have + take);
        p += take;
        n -= take;
        if (c->hdr_have < 4) return;
      }
      {
        int rc = sotto__srv_frame_len(c->hdr, frame_cap(s, c), &blen);
        if (rc) {
          conn_close_with(s, c, rc == SOTTO_ERR_TOO_LARGE ? SOTTO_SRV_E_TOO_LARGE : SOTTO_SRV_E_MALFORMED);
          return;
        }
        c->rneed = blen;
        c->rhave = 0;
      }
      /* The chunk ended right after a length prefix: the body comes with
       * the next read (and memcpy must not see the still-NULL buffer). */
      if (n == 0) return;
    }
    take = c->rneed - c->rhave < n ? c->rneed - c->rhave : n;
    if (c->rhave + take > c->rcap) {
      uint32_t cap = c->rcap ? c->rcap * 2 : 4096;
      uint8_t *nb;
      if (cap < c->rhave + take) cap = (uint32_t)(c->rhave + take);
      if (cap > c->rneed) cap = c->rneed;
      if ((nb = realloc(c->rbuf, cap)) == NULL) {
        conn_drop(s, c);
        return;
      }
      c->rbuf = nb;
      c->rcap = cap;
    }
    memcpy(c->rbuf + c->rhave, p, take);
    c->rhave += (uint32_t)take;
    p += take;
    n -= take;
    if (c->rhave == c->rneed) {
      uint8_t *body = c->rbuf;
      uint32_t blen2 = c->rneed;
      c->rbuf = NULL;
      c->rcap = c->rhave = c->rneed = 0;
      c->hdr_have = 0;
      handle_frame(s, c, body, blen2);
      free(body);
    }
  }
}

static void do_read(struct srv *s, struct conn *c) {
  c->rpaused = 0;
  if (c->ibuf && !c->dead && !c->closing && !conn_full(s, c)) {
    /* Input kept while paused comes first. */
    uint8_t *b = c->ibuf;
    size_t n = c->ibuf_len;
    c->ibuf = NULL;
    c->ibuf_len = 0;
    feed(s, c, b, n);
    free(b);
  }
  while (!c->dead && !c->closing && !c->ibuf && !conn_full(s, c)) {
    ssize_t n = c->io.t->read(&c->io, scratch, sizeof scratch);
    if (n == SOTTO_IO_AGAIN) break;
    if (n <= 0) {
      logkv(2, "conn_closed", "peer=%08x state=%d err=%s", peer_tag(c), c->state, n == 0 ? "eof" : "io");
      conn_drop(s, c);
      return;
    }
    if (c->kind == K_METRICS) metrics_feed(s, c, scratch, (size_t)n);
    else feed(s, c, scratch, (size_t)n);
  }
  if (!c->dead && !c->closing && (c->ibuf || conn_full(s, c))) c->rpaused = 1;
  if (!c->dead && c->wlen > c->woff) do_write(s, c);
  else if (!c->dead) ev_update(s, c);
}

static void on_event(struct srv *s, struct conn *c, uint32_t ev) {
  if (c->dead) return;
  if (c->state == S_HANDSHAKE) {
    int r = c->io.t->handshake(&c->io);
    if (r == SOTTO_IO_AGAIN) {
      ev_update(s, c);
      return;
    }
    if (r != 1) {
      s->m.tls_failed++;
      logkv(2, "tls_failed", "peer=%08x", peer_tag(c));
      conn_drop(s, c);
      return;
    }
    c->state = S_HELLO;
    c->io.want_write = 0;
  }
  c->io.want_write = 0; /* both directions are retried below */
  if (ev & (EPOLLOUT)) do_write(s, c);
  if (!c->dead) do_read(s, c);
}

/* ---- accepting ------------------------------------------------------------------- */

static int listen_on(const char *spec) {
  char host[256];
  const char *colon = strrchr(spec, ':');
  struct addrinfo hints, *ai = NULL, *a;
  int fd = -1, one = 1;
  if (!colon || (size_t)(colon - spec) >= sizeof host) return -1;
  memcpy(host, spec, (size_t)(colon - spec));
  host[colon - spec] = 0;
  if (host[0] == '[') { /* [::1]:port */
    memmove(host, host + 1, strlen(host));
    if (strlen(host) && host[strlen(host) - 1] == ']') host[strlen(host) - 1] = 0;
  }
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  if (getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &ai) != 0) return -1;
  for (a = ai; a; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd, a->ai_addr, a->ai_addrlen) == 0 && listen(fd, 4096) == 0) break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(ai);
  return fd;
}

/* Writes the address a listening socket is bound to as numeric HOST:PORT
 * ([HOST]:PORT for IPv6): with port 0 in --listen, the port the kernel chose.
 * Falls back to the configured spec if the socket cannot be asked. */
static void bound_addr(int fd, const char *spec, char *out, size_t cap) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss;
  char host[NI_MAXHOST], port[NI_MAXSERV];
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) != 0 ||
      getnameinfo((struct sockaddr *)&ss, sl, host, sizeof host, port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV) !=
          0) {
    snprintf(out, cap, "%s", spec);
    return;
  }
  snprintf(out, cap, ss.ss_family == AF_INET6 ? "[%s]:%s" : "%s:%s", host, port);
}

static struct conn *conn_add(struct srv *s, int fd, int kind) {
  struct conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->kind = (uint8_t)kind;
  c->next = s->conns;
  if (s->conns) s->conns->prev = c;
  s->conns = c;
  s->n_conns++;
  c->io.fd = fd;
  return c;
}

/* The peer's address (IPv4: 4 bytes; IPv6: 16, with a v4-mapped address
 * taken as IPv4) and its prefix (prefix-v4 / prefix-v6 bits, rest zeroed). */
static void peer_addr(const struct srv *s, const struct sockaddr_storage *ss, uint8_t addr[16], uint8_t pfx[16],
                      uint8_t *alen) {
  static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  int bits, i;
  memset(addr, 0, 16);
  if (ss->ss_family == AF_INET6) {
    const uint8_t *a6 = (const uint8_t *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
    if (memcmp(a6, mapped, 12) == 0) {
      memcpy(addr, a6 + 12, 4);
      *alen = 4;
    } else {
      memcpy(addr, a6, 16);
      *alen = 16;
    }
  } else {
    memcpy(addr, &((const struct sockaddr_in *)ss)->sin_addr, 4);
    *alen = 4;
  }
  bits = *alen == 4 ? s->cfg->prefix_v4 : s->cfg->prefix_v6;
  memcpy(pfx, addr, 16);
  for (i = 0; i < 16; i++) {
    int keep = bits - 8 * i;
    if (keep <= 0) pfx[i] = 0;
    else if (keep < 8) pfx[i] &= (uint8_t)(0xff << (8 - keep));
  }
}

static void accept_all(struct srv *s, int lfd, int kind) {
  for (;;) {
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    int fd = accept4(lfd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
    struct conn *c;
    uint8_t addr[16], pfx[16], alen = 4;
    uint64_t ka = 0, kp = 0;
    if (fd < 0) return;
    s->m.conns_total++;
    if (s->n_conns >= s->cfg->max_connections || (kind == K_CLIENT && s->n_unauth >= s->cfg->max_unauth)) {
      s->m.conns_rejected++;
      logkv(2, "conn_refused", "reason=%s", s->n_conns >= s->cfg->max_connections ? "max_connections" : "max_unauth");
      close(fd);
      continue;
    }
    if (kind == K_CLIENT) {
      /* Each address and each prefix gets a share of the pre-auth slots,
       * so one host (or one network) cannot hold them all. The address
       * is kept in memory until the connection authenticates, for the
       * per-address limits; it is never stored or logged. */
      peer_addr(s, &ss, addr, pfx, &alen);
      ka = sotto__lim_key(&s->lim, SOTTO_LIM_UNAUTH_ADDR, addr, alen);
      kp = sotto__lim_key(&s->lim, SOTTO_LIM_UNAUTH_PREFIX, pfx, alen);
      if (sotto__lim_count(&s->lim, ka) >= s->cfg->max_unauth_per_addr ||
          sotto__lim_count(&s->lim, kp) >= s->cfg->max_unauth_per_prefix) {
        s->m.conns_rejected++;
        logkv(2, "conn_refused", "reason=unauth_share peer=%08x", (unsigned)(ka >> 32));
        close(fd);
        continue;
      }
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((c = conn_add(s, fd, kind)) == NULL) {
      close(fd);
      continue;
    }
    if (kind == K_METRICS) {
      c->io.t = &sotto__transport_tcp;
      c->state = S_AUTHED;
      c->deadline_ms = mono_ms() + 5000;
      ev_update(s, c);
      continue;
    }
    if (sotto__tls_accept(&c->io, s->ctx, fd) != 0) {
      c->io.t = &sotto__transport_tcp;
      c->state = S_AUTHED;
      conn_drop(s, c);
      continue;
    }
    memcpy(c->addr, addr, sizeof addr);
    memcpy(c->pfx, pfx, sizeof pfx);
    c->alen = alen;
    c->ukey_addr = ka;
    c->ukey_pfx = kp;
    if (sotto__lim_inc(&s->lim, ka) < 0 || sotto__lim_inc(&s->lim, kp) < 0) {
      /* The table is full: fail closed (counted back by conn_drop). */
      c->ucounted = 1;
      c->state = S_HANDSHAKE;
      s->n_unauth++;
      conn_drop(s, c);
      continue;
    }
    c->ucounted = 1;
    c->state = S_HANDSHAKE;
    s->n_unauth++;
    c->deadline_ms = mono_ms() + (int64_t)s->cfg->auth_timeout_s * 1000;
    on_event(s, c, EPOLLIN);
  }
}

static void check_timeouts(struct srv *s) {
  struct conn *c, *next;
  int64_t t = mono_ms();
  for (c = s->conns; c; c = next) {
    next = c->next;
    if (!c->dead && c->kind == K_CLIENT && c->state == S_AUTHED && !c->closing &&
        t - c->last_rx_ms > (int64_t)s->cfg->idle_timeout_s * 1000) {
      /* Authenticated but silent (clients PING while they wait): the
       * slot goes back. */
      logkv(2, "idle_timeout", "peer=%08x", peer_tag(c));
      conn_close_with(s, c, SOTTO_SRV_E_TIMEOUT);
      continue;
    }
    if (c->dead || !c->deadline_ms || t < c->deadline_ms) continue;
    if (c->closing || c->state == S_HANDSHAKE || c->kind == K_METRICS) conn_drop(s, c);
    else if (c->state != S_AUTHED) conn_close_with(s, c, SOTTO_SRV_E_TIMEOUT);
    else c->deadline_ms = 0;
  }
}

/* Frees dropped connections; only while no batch is in flight. */
static void free_zombies(struct srv *s) {
  if (s->zombies) prune_ops(s);
  free_list(&s->zombies);
}

/* ---- main loop ------------------------------------------------------------------- */

/* Raises the soft open-files limit so that max-connections can be reached
 * (each connection is one descriptor; 64 spare for the listeners, the
 * database and the rest). The hard limit is the operator's (LimitNOFILE). */
static void raise_nofile(const struct sotto_srv_config *cfg) {
  struct rlimit rl;
  rlim_t want = (rlim_t)cfg->max_connections + 64;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want) return;
  rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
  (void)setrlimit(RLIMIT_NOFILE, &rl);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want)
    logkv(1, "nofile", "limit=%llu max_connections=%d hint=\"raise LimitNOFILE or lower max-connections\"",
          (unsigned long long)rl.rlim_cur, cfg->max_connections);
}

/* Creates --data (mode 0700) if missing, refuses a data directory that
 * others can write or read, and takes DATA/sotto.lock so that a second
 * server on the same directory stops with a clear message instead of
 * sharing the database. */
static int data_dir_prepare(struct srv *s, const char *dir) {
  char path[1100];
  struct stat st;
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "sotto-server: cannot create the data directory %s: %s\n", dir, strerror(errno));
    return -1;
  }
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    fprintf(stderr, "sotto-server: %s is not a directory\n", dir);
    return -1;
  }
  if ((st.st_mode & 077) != 0 && chmod(dir, st.st_mode & 0700) != 0) {
    fprintf(stderr, "sotto-server: cannot make %s private (chmod 0700): %s\n", dir, strerror(errno));
    return -1;
  }
  snprintf(path, sizeof path, "%s/sotto.lock", dir);
  if ((s->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
    fprintf(stderr, "sotto-server: cannot create %s: %s\n", path, strerror(errno));
    return -1;
  }
  if (flock(s->lockfd, LOCK_EX | LOCK_NB) != 0) {
    fprintf(stderr,
            "sotto-server: another sotto-server is already running on %s (%s is locked); stop it first or use "
            "another --data\n",
            dir, path);
    return -1;
  }
  return 0;
}

/* The database and its side files: 0600, whatever the umask was when an
 * older version created them. */
static void data_modes(const char *dir) {
  static const char *const names[] = {"sotto.db", "sotto.db-wal", "sotto.db-shm", "sotto.lock", "tls.key"};
  size_t i;
  for (i = 0; i < sizeof names / sizeof names[0]; i++) {
    char path[1100];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    (void)chmod(path, 0600);
  }
}

int sotto_srv_run(const struct sotto_srv_config *cfg) {
  struct srv *s;
  char fp[65], laddr[NI_MAXHOST + NI_MAXSERV + 4], maddr[NI_MAXHOST + NI_MAXSERV + 4] = "off";
  int created = 0, rc = 1, db_existed = 0;
  sigset_t mask;
  struct epoll_event e;
  int64_t last_timer = 0;
  int busy = 0;

  g_log_level = cfg->log_level;
  if (sodium_init() < 0) return 1;
  if ((s = calloc(1, sizeof *s)) == NULL) return 1;
  s->cfg = cfg;
  s->ops_tail = &s->ops;
  s->lfd = s->mfd = s->sfd = s->ep = s->efd = s->lockfd = -1;
  if (sotto__lim_init(&s->lim, LIM_BUCKETS, LIM_MAX) != 0) goto out;
  raise_nofile(cfg);

  /* Everything the server creates is for its own user only. */
  umask(077);
  if (data_dir_prepare(s, cfg->data) != 0) goto out;
  {
    char why[512];
    if (sotto__store_sqlite_check(cfg->data, why, sizeof why) != 0) {
      fprintf(stderr, "sotto-server: %s\n", why);
      goto out;
    }
  }
  {
    /* A database from before this start (not one created just now) means
     * clients have pinned this server's certificate. */
    char dbpath[1100];
    struct stat dbst;
    snprintf(dbpath, sizeof dbpath, "%s/sotto.db", cfg->data);
    db_existed = stat(dbpath, &dbst) == 0 && dbst.st_size > 0;
  }
  if (sotto__store_sqlite_open(&s->store, cfg->data) != 0 ||
      sotto__store_sqlite_open(&s->rstore, cfg->data) != 0) {
    fprintf(stderr, "sotto-server: cannot open the database in %s (is the directory writable?)\n", cfg->data);
    goto out;
  }
  data_modes(cfg->data);
  /* A full disk must still be able to checkpoint the WAL (deletes need it):
   * the WAL stays below half the reserve that is given back for that. */
  if (cfg->disk_reserve > 0) s->store.ops->journal_limit(s->store.impl, cfg->disk_reserve / 2);
  if (reserve_make(s) != 0)
    logkv(0, "disk_reserve", "bytes=%lld hint=\"cannot allocate the reserve file; is the disk full?\"",
          (long long)cfg->disk_reserve);
  if (s->rstore.ops->max_msg_id(s->rstore.impl, &s->horizon) != 0) {
    fprintf(stderr, "sotto-server: cannot read the database in %s\n", cfg->data);
    goto out;
  }
  if ((s->ctx = sotto__tls_server_ctx(cfg->data, fp, &created, !db_existed)) == NULL) goto out;
  if ((s->lfd = listen_on(cfg->listen)) < 0) {
    fprintf(stderr, "sotto-server: cannot listen on %s (address in use, or not HOST:PORT?)\n", cfg->listen);
    goto out;
  }
  if (cfg->metrics[0] && (s->mfd = listen_on(cfg->metrics)) < 0) {
    fprintf(stderr, "sotto-server: cannot listen on %s for metrics\n", cfg->metrics);
    goto out;
  }
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGHUP);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  signal(SIGPIPE, SIG_IGN);
  s->sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  s->ep = epoll_create1(EPOLL_CLOEXEC);
  s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (s->sfd < 0 || s->ep < 0 || s->efd < 0) goto out;
  /* Started after SIGTERM/SIGINT are blocked, so that the store thread
   * inherits the mask and the signals reach the signalfd. */
  if (pthread_mutex_init(&s->mu, NULL) == 0 && pthread_cond_init(&s->cv, NULL) == 0 &&
      pthread_cond_init(&s->done_cv, NULL) == 0 && pthread_create(&s->worker, NULL, store_thread, s) == 0)
    s->threaded = 1;
  else
    logkv(0, "store_thread", "%s", "cannot start the store thread; committing on the I/O thread");
  e.events = EPOLLIN;
  e.data.ptr = &s->lfd;
  epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &e);
  e.data.ptr = &s->sfd;
  epoll_ctl(s->ep, EPOLL_CTL_ADD, s->sfd, &e);
  e.data.ptr = &s->efd;
  epoll_ctl(s->ep, EPOLL_CTL_ADD, s->efd, &e);
  if (s->mfd >= 0) {
    e.data.ptr = &s->mfd;
    epoll_ctl(s->ep, EPOLL_CTL_ADD, s->mfd, &e);
  }
  /* Printed on stdout so that scripts and tests can pick it up (format in
   * docs/server.md): the "listening" line comes last and means ready. */
  bound_addr(s->lfd, cfg->listen, laddr, sizeof laddr);
  if (s->mfd >= 0) bound_addr(s->mfd, cfg->metrics, maddr, sizeof maddr);
  printf("fingerprint %s\n", fp);
  if (s->mfd >= 0) printf("metrics %s\n", maddr);
  printf("listening %s\n", laddr);
  fflush(stdout);
  logkv(1, "start", "listen=%s metrics=%s cert=%s fingerprint=%s", laddr, maddr, created ? "created" : "loaded", fp);
  s->expire_due = 1;
  s->next_expire_ms = mono_ms() + cfg->expire_interval_s * 1000;

  while (!s->stopping) {
    struct epoll_event evs[256];
    /* Inline batches have no thread to wake the loop when they are done. */
    int i, n, timeout = busy || (s->b_active && !s->threaded) ? 0 : 1000;
    if (s->scrub_pending && timeout > 0) {
      int64_t left = s->scrub_at_ms - mono_ms();
      timeout = left <= 0 ? 0 : left < timeout ? (int)left : timeout;
    }
    n = epoll_wait(s->ep, evs, 256, timeout);
    if (n < 0 && errno != EINTR) break;
    for (i = 0; i < n; i++) {
      void *p = evs[i].data.ptr;
      if (p == &s->lfd) accept_all(s, s->lfd, K_CLIENT);
      else if (p == &s->mfd) accept_all(s, s->mfd, K_METRICS);
      else if (p == &s->sfd) {
        struct signalfd_siginfo si;
        while (read(s->sfd, &si, sizeof si) == (ssize_t)sizeof si) {
          /* The options are fixed for the life of the process (some size
           * tables at start); SIGHUP is logged and ignored rather than
           * killing the server as it used to. */
          if (si.ssi_signo == SIGHUP) logkv(1, "sighup", "%s", "action=ignored hint=\"restart to apply a new config\"");
          else s->stopping = 1;
        }
      } else if (p == &s->efd) {
        uint64_t v;
        if (read(s->efd, &v, sizeof v) != (ssize_t)sizeof v) continue;
      } else
        on_event(s, p, evs[i].events);
    }
    batch_turn(s);
    if (!s->b_active) {
      /* Nothing in flight: dropped connections can go, collected ops go out. */
      free_zombies(s);
      batch_start(s);
    }
    busy = pump_backlog(s);
    if (mono_ms() - last_timer >= 1000) {
      last_timer = mono_ms();
      check_timeouts(s);
      sotto__lim_sweep(&s->lim, last_timer);
      if (last_timer >= s->next_expire_ms) {
        s->expire_due = 1;
        s->next_expire_ms = last_timer + cfg->expire_interval_s * 1000;
      }
    }
  }

  /* Shutdown: commit what was read, tell everyone, flush briefly, close. */
  logkv(1, "stopping", "connections=%d", s->n_conns);
  epoll_ctl(s->ep, EPOLL_CTL_DEL, s->lfd, NULL);
  close(s->lfd);
  s->lfd = -1;
  for (;;) {
    if (s->b_active) {
      batch_wait(s);
      batch_turn(s);
      continue;
    }
    free_zombies(s);
    batch_start(s);
    if (!s->b_active) break;
  }
  {
    struct conn *c, *next;
    int64_t until = mono_ms() + 1000;
    for (c = s->conns; c; c = next) {
      next = c->next;
      if (c->kind == K_CLIENT && c->state != S_HANDSHAKE) conn_close_with(s, c, SOTTO_SRV_E_SHUTDOWN);
      else conn_drop(s, c);
    }
    while (s->conns && mono_ms() < until) {
      struct epoll_event evs[64];
      int i, n = epoll_wait(s->ep, evs, 64, 100);
      for (i = 0; i < n; i++) {
        void *p = evs[i].data.ptr;
        if (p != &s->lfd && p != &s->mfd && p != &s->sfd && p != &s->efd) do_write(s, p);
      }
      free_zombies(s);
    }
    while (s->conns) conn_drop(s, s->conns);
    free_zombies(s);
  }
  logkv(1, "stopped", "%s", "");
  rc = 0;
out:
  if (s->threaded) {
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->worker, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_cond_destroy(&s->done_cv);
    pthread_mutex_destroy(&s->mu);
  }
  if (s->rstore.ops) s->rstore.ops->close(s->rstore.impl);
  if (s->store.ops) s->store.ops->close(s->store.impl);
  if (s->ctx) SSL_CTX_free(s->ctx);
  if (s->lfd >= 0) close(s->lfd);
  if (s->mfd >= 0) close(s->mfd);
  if (s->sfd >= 0) close(s->sfd);
  if (s->ep >= 0) close(s->ep);
  if (s->efd >= 0) close(s->efd);
  if (s->lockfd >= 0) close(s->lockfd); /* releases the lock */
  sotto__lim_free(&s->lim);
  free(s);
  return rc;
}

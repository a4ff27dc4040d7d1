/* SPDX-License-Identifier: Apache-2.0 */
/* srv_conn.c: the connection state machine of sotto-server: bookkeeping,
 * reading and splitting frames, writing answers and pushes, back-pressure,
 * the device map (one live connection per device) and backlog paging. */
#define _GNU_SOURCE
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "srv_internal.h"

static uint8_t scratch[READ_CHUNK];

/* 1 if no more requests may be read from c now: too many in flight, too many
 * of their bytes, or too many answer bytes not yet taken by the peer. The
 * peer's requests then wait in its own socket buffers, not in our memory. */
int sotto__srv_conn_full(const struct srv *s, const struct conn *c) {
  return c->inflight >= s->cfg->max_inflight || (int64_t)c->inflight_bytes >= s->cfg->max_inflight_bytes ||
         c->wlen - c->woff >= WBUF_HIGH;
}

void sotto__srv_ev_update(struct srv *s, struct conn *c) {
  uint32_t want = 0;
  struct epoll_event e;
  if (c->dead) return;
  if (c->state == S_HANDSHAKE) {
    want = c->io.want_write ? EPOLLOUT : EPOLLIN;
  } else {
    if (!c->closing && !c->ibuf && !sotto__srv_conn_full(s, c)) want |= EPOLLIN;
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

struct conn **sotto__srv_devmap_slot(struct srv *s, int64_t devkey) {
  return &s->devmap[(uint64_t)devkey * 0x9E3779B97F4A7C15ull >> 48];
}

struct conn *sotto__srv_devmap_get(struct srv *s, int64_t devkey) {
  struct conn *c;
  for (c = *sotto__srv_devmap_slot(s, devkey); c; c = c->hnext)
    if (c->devkey == devkey) return c;
  return NULL;
}

void sotto__srv_devmap_del(struct srv *s, struct conn *c) {
  struct conn **pp;
  for (pp = sotto__srv_devmap_slot(s, c->devkey); *pp; pp = &(*pp)->hnext)
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

static int is_unauth(const struct conn *c) {
  return c->kind == K_CLIENT && c->state != S_AUTHED;
}

/* Gives back the connection's pre-auth share (it authenticated or went). */
void sotto__srv_unauth_release(struct srv *s, struct conn *c) {
  if (!c->ucounted) return;
  c->ucounted = 0;
  sotto__lim_dec(&s->lim, c->ukey_addr);
  sotto__lim_dec(&s->lim, c->ukey_pfx);
}

/* Drops a connection now: unregisters it everywhere and closes the socket.
 * The struct itself is freed at the end of the loop iteration, because ops
 * in the current batch may still point at it. */
void sotto__srv_conn_drop(struct srv *s, struct conn *c) {
  if (c->dead) return;
  c->dead = 1;
  if (is_unauth(c)) s->n_unauth--;
  sotto__srv_unauth_release(s, c);
  if (c->state == S_AUTHED && sotto__srv_devmap_get(s, c->devkey) == c) sotto__srv_devmap_del(s, c);
  if (s->cl && c->cl_gen) sotto__srv_cluster_release(s, c);
  backlog_del(s, c);
  if (c->registered_ev) epoll_ctl(s->ep, EPOLL_CTL_DEL, c->io.fd, NULL);
  c->io.t->close(&c->io);
  if (c->prev)
    c->prev->next = c->next;
  else
    s->conns = c->next;
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
uint8_t *sotto__srv_wbuf_reserve(struct conn *c, size_t n) {
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
int sotto__srv_frame_begin(struct conn *c, struct sotto__wr *w, size_t cap) {
  uint8_t *p;
  if (c->dead || (p = sotto__srv_wbuf_reserve(c, 9 + cap)) == NULL) return -1;
  sotto__wr_init(w, p + 9, cap);
  return 0;
}

void sotto__srv_frame_end(struct conn *c, struct sotto__wr *w, uint8_t type, uint32_t req_id) {
  if (w->err) return; /* an encoder bug: drop the frame rather than send garbage */
  sotto__srv_frame_hdr(c->wbuf + c->wlen, type, req_id, w->len);
  c->wlen += 9 + w->len;
}

void sotto__srv_send_simple(struct conn *c, uint8_t type, uint32_t req_id, const void *p, size_t n) {
  struct sotto__wr w;
  if (sotto__srv_frame_begin(c, &w, n) != 0) return;
  sotto__wr_bytes(&w, p, n);
  sotto__srv_frame_end(c, &w, type, req_id);
}

/* A large answer whose payload the caller has in buf at buf + skip (buf
 * malloc'd, skip >= 9: room for the frame header before the payload): when
 * nothing waits to be written, buf becomes the connection's write buffer (no
 * copy of the payload; a blob GET's 192 KiB, srv_blob.c) and 1 is returned:
 * buf is the connection's now. Else the payload is copied as by
 * sotto__srv_send_simple and 0 is returned (buf stays the caller's). */
int sotto__srv_send_adopt(struct conn *c, uint8_t type, uint32_t req_id, uint8_t *buf, size_t skip, size_t n) {
  if (c->dead) return 0;
  if (skip < 9 || c->wlen != c->woff) {
    sotto__srv_send_simple(c, type, req_id, buf + skip, n);
    return 0;
  }
  sotto__srv_frame_hdr(buf + skip - 9, type, req_id, n);
  free(c->wbuf);
  c->wbuf = buf;
  c->woff = skip - 9;
  c->wlen = c->wcap = skip + n;
  return 1;
}

void sotto__srv_send_err(struct srv *s, struct conn *c, uint32_t req_id, int code) {
  struct sotto__wr w;
  sotto__srv_error_count(s, code);
  if (sotto__srv_frame_begin(c, &w, 3 + SOTTO_SRV_MAX_ERRMSG) != 0) return;
  sotto__srv_put_err(&w, (uint16_t)code, sotto__srv_code_str((unsigned)code));
  sotto__srv_frame_end(c, &w, SOTTO_SRV_ERR, req_id);
}

/* ERR(code) with the signed device list after it (SEND_MULTI's ERR(30) to a
 * client with FEAT_MISMATCH_LIST). */
void sotto__srv_send_err_list(struct srv *s, struct conn *c, uint32_t req_id, int code, const uint8_t *list,
                              size_t len) {
  struct sotto__wr w;
  sotto__srv_error_count(s, code);
  if (sotto__srv_frame_begin(c, &w, 3 + SOTTO_SRV_MAX_ERRMSG + 2 + len) != 0) return;
  sotto__srv_put_err_list(&w, (uint16_t)code, sotto__srv_code_str((unsigned)code), list, len);
  sotto__srv_frame_end(c, &w, SOTTO_SRV_ERR, req_id);
}

void sotto__srv_do_write(struct srv *s, struct conn *c);

/* Sends a CLOSE frame and closes once it is flushed (or after a grace period). */
void sotto__srv_conn_close_with(struct srv *s, struct conn *c, int code) {
  struct sotto__wr w;
  if (c->dead || c->closing) return;
  sotto__srv_log(2, "close", "code=%d reason=\"%s\"", code, sotto__srv_code_str((unsigned)code));
  sotto__srv_error_count(s, code);
  if (sotto__srv_frame_begin(c, &w, 3 + SOTTO_SRV_MAX_ERRMSG) == 0) {
    sotto__srv_put_err(&w, (uint16_t)code, sotto__srv_code_str((unsigned)code));
    sotto__srv_frame_end(c, &w, SOTTO_SRV_CLOSE, 0);
  }
  c->closing = 1;
  c->deadline_ms = sotto__srv_mono_ms() + CLOSE_GRACE_MS;
  free(c->rbuf);
  free(c->ibuf);
  c->rbuf = NULL;
  c->ibuf = NULL;
  c->ibuf_len = 0;
  c->rhave = c->rneed = c->rcap = 0;
  sotto__srv_do_write(s, c);
}

void sotto__srv_push_env(struct srv *s, struct conn *c, const struct sotto_store_env *e) {
  struct sotto__wr w;
  struct sotto_srv_env m;
  if (!e->sender[0]) {
    /* The server's own notice (srv_expire.c): a NOTICE frame, never a MSG,
     * so that no client can take it for a message from a contact. A client
     * that did not announce NOTICE in its HELLO (an older one) is not sent
     * it (it would be an unknown frame to it, every time): the notice waits
     * until a newer client of that device fetches it, or expires. */
    if (!(c->features & SOTTO_SRV_FEAT_NOTICE)) {
      c->cursor = e->id;
      return;
    }
    if (sotto__srv_frame_begin(c, &w, 16 + e->body_len) != 0) return;
    sotto__srv_put_notice(&w, (uint64_t)e->id, (uint64_t)e->timestamp_ms, e->body, e->body_len);
    sotto__srv_frame_end(c, &w, SOTTO_SRV_NOTICE, 0);
    if (!w.err) c->cursor = e->id;
    return;
  }
  m.id = (uint64_t)e->id;
  m.sender.p = (const uint8_t *)e->sender;
  m.sender.len = strlen(e->sender);
  m.sender_device = e->sender_device;
  m.device_id = e->device_id;
  m.type = e->type;
  m.timestamp_ms = (uint64_t)e->timestamp_ms;
  m.body = e->body;
  m.body_len = e->body_len;
  if (sotto__srv_frame_begin(c, &w, 64 + m.sender.len + e->body_len) != 0) return;
  sotto__srv_put_env(&w, &m);
  sotto__srv_frame_end(c, &w, SOTTO_SRV_MSG, 0);
  if (!w.err) {
    c->cursor = e->id;
    s->m.msgs_out++;
  }
}

void sotto__srv_push_keys_low(struct conn *c, int64_t ec, int64_t kem) {
  struct sotto__wr w;
  if (sotto__srv_frame_begin(c, &w, 8) != 0) return;
  sotto__srv_put_counts(&w, (uint32_t)ec, (uint32_t)kem);
  sotto__srv_frame_end(c, &w, SOTTO_SRV_KEYS_LOW_PUSH, 0);
}

/* ---- writing --------------------------------------------------------------- */

void sotto__srv_do_write(struct srv *s, struct conn *c) {
  while (!c->dead && c->wlen > c->woff) {
    ssize_t n = c->io.t->write(&c->io, c->wbuf + c->woff, c->wlen - c->woff);
    if (n == SOTTO_IO_AGAIN) break;
    if (n <= 0) {
      sotto__srv_log(2, "conn_closed", "peer=%08x state=%d err=write", sotto__srv_peer_tag(c), c->state);
      sotto__srv_conn_drop(s, c);
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
      sotto__srv_conn_drop(s, c);
      return;
    }
  }
  sotto__srv_ev_update(s, c);
  /* Reading was paused by back-pressure (answers not taken, or requests
   * in flight): resume once there is room (OpenSSL may hold bytes). */
  if (c->rpaused && !sotto__srv_conn_full(s, c) && !c->closing) sotto__srv_do_read(s, c);
}

void sotto__srv_authed(struct srv *s, struct conn *c, const struct sotto_store_device *d, const char *user) {
  struct conn *old = sotto__srv_devmap_get(s, d->devkey);
  if (old) {
    /* One live connection per device: the newer one wins. */
    sotto__srv_devmap_del(s, old);
    old->state = S_UNAUTH; /* no further pushes, not in the map */
    s->n_unauth++;
    sotto__srv_conn_close_with(s, old, SOTTO_SRV_E_DISPLACED);
  }
  c->state = S_AUTHED;
  s->n_unauth--;
  memcpy(c->auth_hash, d->secret_hash, sizeof c->auth_hash);
  sotto__srv_unauth_release(s, c);
  c->devkey = d->devkey;
  c->account_id = d->account_id;
  c->device_id = d->device_id;
  snprintf(c->user, sizeof c->user, "%s", user);
  /* The rate limits live with the account, not the connection: a
   * reconnect finds the same buckets. */
  c->send_key = sotto__lim_key(&s->lim, SOTTO_LIM_SEND, &c->account_id, sizeof c->account_id);
  c->bundle_key = sotto__lim_key(&s->lim, SOTTO_LIM_BUNDLE, &c->account_id, sizeof c->account_id);
  c->last_rx_ms = sotto__srv_mono_ms();
  sodium_memzero(c->addr, sizeof c->addr);
  sodium_memzero(c->pfx, sizeof c->pfx);
  c->hnext = *sotto__srv_devmap_slot(s, c->devkey);
  *sotto__srv_devmap_slot(s, c->devkey) = c;
  c->cursor = 0;
  c->backlog = 1;
  c->in_backlog = 1;
  c->bnext = s->backlog;
  s->backlog = c;
  if (s->cl) sotto__srv_cluster_claim(s, c);
}

/* Everything one batch writes to a connection (answers, live pushes) is
 * written with one SSL_write at the end of the batch: one TLS record and one
 * system call instead of one per envelope. */
void sotto__srv_flush_later(struct srv *s, struct conn *c) {
  if (c->dead || c->flush_queued) return;
  c->flush_queued = 1;
  c->fnext = s->to_flush;
  s->to_flush = c;
}

/* Connections dropped while queued stay valid until free_zombies, which runs
 * after the batch. */
void sotto__srv_flush_queued(struct srv *s) {
  while (s->to_flush) {
    struct conn *c = s->to_flush;
    s->to_flush = c->fnext;
    c->flush_queued = 0;
    if (!c->dead) sotto__srv_do_write(s, c);
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
  sotto__srv_push_env(s, a[1], e);
  (*(int *)a[2])++;
  return 0;
}

/* Feeds each connection in backlog mode one page while its write buffer has
 * room; a short page means the queue is drained: DRAINED, then live mode.
 * Returns 1 if some connection still wants paging right away. */
int sotto__srv_pump_backlog(struct srv *s) {
  struct conn *c, *next;
  int more = 0;
  /* A store shared with other writers says itself how far paging may go
   * (store.h, "Single-process assumptions"). */
  if (s->backlog && s->rstore.ops->horizon && s->rstore.ops->horizon(s->rstore.impl, &s->horizon) != 0)
    return 0;
  for (c = s->backlog; c; c = next) {
    int got = 0;
    void *a[3] = {s, c, &got};
    next = c->bnext;
    if (c->dead || c->closing || c->wlen - c->woff >= BACKLOG_ROOM) continue;
    if (s->rstore.ops->msg_fetch(s->rstore.impl, c->devkey, c->cursor, BACKLOG_PAGE, backlog_cb, a) != 0) {
      sotto__srv_log(0, "backlog_failed", "%s", "");
      continue;
    }
    if (got < BACKLOG_PAGE) {
      c->backlog = 0;
      backlog_del(s, c);
      if (!c->cl_quiet) sotto__srv_send_simple(c, SOTTO_SRV_DRAINED, 0, NULL, 0);
      c->cl_quiet = 0;
    } else {
      more = 1;
    }
    sotto__srv_do_write(s, c);
    if (c->cl_notified_us) {
      sotto__srv_stage_add(&s->m.stage[STAGE_NOTIFY], sotto__srv_mono_us() - c->cl_notified_us);
      c->cl_notified_us = 0;
    }
  }
  return more;
}

/* ---- requests ---------------------------------------------------------------- */
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
    if (c->hdr_have == 0 && sotto__srv_conn_full(s, c)) {
      /* Too much in flight: keep the rest of this read (at most one
       * READ_CHUNK) and stop reading until answers go out. */
      if ((c->ibuf = malloc(n)) == NULL) {
        sotto__srv_conn_drop(s, c);
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
          sotto__srv_conn_close_with(
              s, c, rc == SOTTO_ERR_TOO_LARGE ? SOTTO_SRV_E_TOO_LARGE : SOTTO_SRV_E_MALFORMED);
          return;
        }
        if (n - 4 >= blen) {
          sotto__srv_handle_frame(s, c, p + 4, blen);
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
          sotto__srv_conn_close_with(
              s, c, rc == SOTTO_ERR_TOO_LARGE ? SOTTO_SRV_E_TOO_LARGE : SOTTO_SRV_E_MALFORMED);
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
        sotto__srv_conn_drop(s, c);
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
      sotto__srv_handle_frame(s, c, body, blen2);
      free(body);
    }
  }
}

void sotto__srv_do_read(struct srv *s, struct conn *c) {
  c->rpaused = 0;
  if (c->ibuf && !c->dead && !c->closing && !sotto__srv_conn_full(s, c)) {
    /* Input kept while paused comes first. */
    uint8_t *b = c->ibuf;
    size_t n = c->ibuf_len;
    c->ibuf = NULL;
    c->ibuf_len = 0;
    feed(s, c, b, n);
    free(b);
  }
  while (!c->dead && !c->closing && !c->ibuf && !sotto__srv_conn_full(s, c)) {
    ssize_t n = c->io.t->read(&c->io, scratch, sizeof scratch);
    if (n == SOTTO_IO_AGAIN) break;
    if (n <= 0) {
      sotto__srv_log(2, "conn_closed", "peer=%08x state=%d err=%s", sotto__srv_peer_tag(c), c->state,
                     n == 0 ? "eof" : "io");
      sotto__srv_conn_drop(s, c);
      return;
    }
    if (c->kind == K_METRICS)
      sotto__srv_metrics_feed(s, c, scratch, (size_t)n);
    else
      feed(s, c, scratch, (size_t)n);
  }
  if (!c->dead && !c->closing && (c->ibuf || sotto__srv_conn_full(s, c))) c->rpaused = 1;
  if (!c->dead && c->wlen > c->woff)
    sotto__srv_do_write(s, c);
  else if (!c->dead)
    sotto__srv_ev_update(s, c);
}

void sotto__srv_on_event(struct srv *s, struct conn *c, uint32_t ev) {
  if (c->dead) return;
  if (c->state == S_HANDSHAKE) {
    int r = c->io.t->handshake(&c->io);
    if (r == SOTTO_IO_AGAIN) {
      sotto__srv_ev_update(s, c);
      return;
    }
    if (r != 1) {
      s->m.tls_failed++;
      sotto__srv_log(2, "tls_failed", "peer=%08x", sotto__srv_peer_tag(c));
      sotto__srv_conn_drop(s, c);
      return;
    }
    c->state = S_HELLO;
    c->io.want_write = 0;
  }
  c->io.want_write = 0; /* both directions are retried below */
  if (ev & (EPOLLOUT)) sotto__srv_do_write(s, c);
  if (!c->dead) sotto__srv_do_read(s, c);
}

struct conn *sotto__srv_conn_add(struct srv *s, int fd, int kind) {
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

void sotto__srv_backlog_add(struct srv *s, struct conn *c) {
  c->backlog = 1;
  if (c->in_backlog) return;
  c->in_backlog = 1;
  c->bnext = s->backlog;
  s->backlog = c;
}

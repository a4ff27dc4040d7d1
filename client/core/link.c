/* SPDX-License-Identifier: Apache-2.0 */
/* link.c: the client's link to its server for front ends that poll
 * (sotto_client.h): connect, one bounded step of "process what arrived",
 * keep-alive, reconnect with back-off. What a step receives goes through
 * inbox.c and comes out as events.
 *
 * Every envelope is committed before it is acknowledged; ACKs are
 * pipelined and their answers come back as events, and the queue counts as
 * drained once the server said DRAINED and every ACK was answered. */
#include <poll.h>
#include <sotto/error.h>
#include <string.h>

#include "account.h"
#include "attach.h"
#include "conn.h"
#include "convo.h"
#include "kt.h"
#include "core.h"
#include "messaging.h"
#include "outbox.h"

#define LINK_MAX_FRAMES_PER_STEP 256
#define LINK_BACKOFF_MAX_S 30
#define BAD_SHOWN 3 /* malformed frames shown one by one per receive; the rest summed */

static void link_close(struct sc_client *c) {
  conn_close(&c->k);
  c->connected = 0;
  c->acks = 0;
}

int sc_connect(struct sc_client *c, int timeout_ms) {
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if (c->connected) return 0;
  rc = conn_open_until(c, &c->k, timeout_ms > 0 ? sc_monotonic_ms() + timeout_ms : 0);
  if (rc) return rc;
  if (timeout_ms <= 0) sotto_net_set_timeout(c->k.net, c->request_timeout_ms);
  c->connected = 1;
  c->want_link = 1;
  c->acks = 0;
  c->drained = c->drained_seen = 0;
  c->dheld_at = 0;
  c->backoff_s = 1;
  c->retry_at = 0;
  c->last_rx = sc_monotonic_ms();
  sc__event(c, SC_EV_LINK_UP, SC_R_NONE, c->acct->username, NULL);
  /* What waits (queued texts, receipts, retry requests) goes first; what
   * cannot go waits for the next step. */
  c->flush_wanted = 1;
  return 0;
}

void sc_disconnect(struct sc_client *c) {
  if (c->connected || c->k.net || c->k.ctx) link_close(c);
  c->want_link = 0;
  c->retry_at = 0;
}

int sc_connected(const struct sc_client *c) { return c->connected; }
int sc_link_fd(const struct sc_client *c) { return c->connected && c->k.net ? sotto_net_fd(c->k.net) : -1; }
int sc_link_pending(const struct sc_client *c) { return c->connected && c->k.net && sotto_net_pending(c->k.net); }
int sc_link_drained(const struct sc_client *c) { return c->drained; }

static int64_t link_deadline(const struct sc_client *c) {
  if (c->connected) return c->last_rx + c->keepalive_ms;
  if (c->want_link && c->auto_reconnect && c->retry_at) return c->retry_at;
  return -1;
}

/* The link's deadline, or sooner when a disappearing message is due. */
int64_t sc_link_next_deadline(const struct sc_client *c) {
  int64_t a = link_deadline(c), b = convo_next_deadline(c);
  return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* The link went down for a reason a reconnect may cure (rc a net result):
 * with auto-reconnect, a back-off is scheduled and 0 returned; else the
 * recorded error. */
static int link_lost(struct sc_client *c, int rc, const char *what) {
  struct sc_event ev;
  int err = conn_error(c, &c->k, rc, what, NULL);
  link_close(c);
  if (!c->auto_reconnect || rc == SOTTO_SRV_E_AUTH) return err;
  c->retry_at = sc_monotonic_ms() + (int64_t)c->backoff_s * 1000;
  if (c->backoff_s < LINK_BACKOFF_MAX_S) c->backoff_s *= 2;
  if (rc == SOTTO_SRV_E_DISPLACED) sc__event(c, SC_EV_DISPLACED, SC_R_LINK, NULL, NULL);
  memset(&ev, 0, sizeof ev);
  ev.kind = SC_EV_LINK_DOWN;
  ev.reason = SC_R_LINK;
  ev.error = err;
  ev.detail = c->errdetail;
  ev.next_retry_ms = c->retry_at;
  sc__emit(c, &ev);
  return 0;
}

static int reconnect(struct sc_client *c) {
  int rc, backoff = (int)c->backoff_s;
  rc = conn_open_until(c, &c->k, 0);
  if (rc) {
    struct sc_event ev;
    if (!c->auto_reconnect) return rc;
    c->retry_at = sc_monotonic_ms() + (int64_t)c->backoff_s * 1000;
    if (c->backoff_s < LINK_BACKOFF_MAX_S) c->backoff_s *= 2;
    memset(&ev, 0, sizeof ev);
    ev.kind = SC_EV_LINK_DOWN;
    ev.reason = SC_R_LINK;
    ev.error = rc;
    ev.detail = c->errdetail;
    ev.next_retry_ms = c->retry_at;
    sc__emit(c, &ev);
    return 0;
  }
  (void)backoff;
  sotto_net_set_timeout(c->k.net, c->request_timeout_ms);
  c->connected = 1;
  c->acks = 0;
  c->drained = c->drained_seen = 0;
  c->dheld_at = 0;
  c->backoff_s = 1;
  c->retry_at = 0;
  c->last_rx = sc_monotonic_ms();
  sc__event(c, SC_EV_LINK_UP, SC_R_NONE, c->acct->username, NULL);
  c->flush_wanted = 1;
  return 0;
}

/* A frame the client could not parse (a bad sender name, a body over the
 * cap, garbage): reported, acknowledged when its id could be read (else the
 * server would push it again on every connection) and skipped. */
static int skip_bad(struct sc_client *c, const struct sotto_net_event *ev) {
  uint32_t rid;
  int rc;
  if (++c->bad <= BAD_SHOWN) {
    struct sc_event e;
    memset(&e, 0, sizeof e);
    e.kind = ev->has_id ? SC_EV_BAD_ENVELOPE : SC_EV_BAD_FRAME;
    e.server_id = ev->has_id ? ev->id : 0;
    e.count = ev->has_id ? 0 : ev->frame_type;
    e.detail = sotto_strerror(ev->error);
    sc__emit(c, &e);
  }
  if (!ev->has_id) return 0;
  if ((rc = sotto_net_ack_async(c->k.net, ev->id, &rid)) != 0) return rc;
  c->acks++;
  return 0;
}

int sc_summarise(struct sc_client *c) {
  int rc = inbox_unreadable_summary(c);
  if (c->bad > BAD_SHOWN) {
    struct sc_event e;
    memset(&e, 0, sizeof e);
    e.kind = SC_EV_BAD_ENVELOPE;
    e.count = c->bad - BAD_SHOWN;
    sc__emit(c, &e);
  }
  c->bad = 0;
  return rc;
}

int sc_flush_unshown(struct sc_client *c) {
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  return inbox_flush_unshown(c);
}

/* One frame. Returns 0, a net result (> 0: the link is in trouble), or a
 * negative SC_ERR_* (a local failure: the envelope stays on the server). */
static int handle(struct sc_client *c, struct sotto_net_event *ev) {
  uint32_t rid;
  int rc;
  switch (ev->kind) {
    case SOTTO_NET_EV_MSG: {
      uint64_t id = ev->id;
      c->env_device = ev->sender_device;
      c->env_server_ts = ev->timestamp_ms;
      rc = inbox_process(c, &c->k, ev->id, ev->sender, ev->type, ev->body, ev->body_len);
      c->env_device = 0;
      c->env_server_ts = 0;
      if (rc) return rc;
      c->drained = 0;
      if ((rc = sotto_net_ack_async(c->k.net, id, &rid)) != 0) return rc;
      c->acks++;
      return 0;
    }
    case SOTTO_NET_EV_NOTICE: {
      uint64_t id = ev->id;
      if ((rc = inbox_notice(c, ev->id, ev->timestamp_ms, ev->body, ev->body_len)) != 0) return rc;
      c->drained = 0;
      if ((rc = sotto_net_ack_async(c->k.net, id, &rid)) != 0) return rc;
      c->acks++;
      return 0;
    }
    case SOTTO_NET_EV_BAD:
      return skip_bad(c, ev);
    case SOTTO_NET_EV_ANSWER:
      if (c->acks) c->acks--;
      if (ev->code) return conn_error(c, &c->k, ev->code, "acknowledging a message", NULL);
      return 0;
    case SOTTO_NET_EV_DRAINED:
      c->drained_seen = 1;
      /* Summed up now unless envelopes were dropped meanwhile: then a
       * reconnect fetches them and the count goes on. */
      if (!sotto_net_dropped(c->k.net) && (rc = inbox_unreadable_summary(c))) return rc;
      /* Messages from a contact's linked device that could not be checked
       * before: checked again (at most once a minute per connection). */
      return inbox_retry_device_held(c, 0);
    case SOTTO_NET_EV_KEYS_LOW:
      return conn_top_up(c, &c->k, ev->ec_left, ev->kem_left);
    case SOTTO_NET_EV_CLOSE:
      return ev->code ? ev->code : SOTTO_NET_E_IO;
    default:
      return 0;
  }
}

int sc_link_step(struct sc_client *c, int timeout_ms) {
  struct sotto_net_event ev;
  int n = 0, rc, wait = timeout_ms < 0 ? 0 : timeout_ms;
  int64_t now;

  if ((rc = sc__need_open(c))) return rc;
  /* Disappearing messages that came due (convo.c). */
  if ((rc = convo_expire_due(c))) return rc;
  if (!c->connected) {
    if (!c->want_link || !c->auto_reconnect)
      return sc__fail(c, SC_ERR_NOT_CONNECTED, "not connected to the server");
    now = sc_monotonic_ms();
    if (now < c->retry_at) {
      int64_t left = c->retry_at - now;
      if (wait > 0) (void)poll(NULL, 0, (int)(left < wait ? left : wait));
      if (sc_monotonic_ms() < c->retry_at) return 0;
    }
    if ((rc = reconnect(c)) || !c->connected) return rc;
    wait = 0;
  }
  for (;;) {
    memset(&ev, 0, sizeof ev);
    rc = sotto_net_next_event(c->k.net, n == 0 ? wait : 0, &ev);
    if (rc == 0) break;
    if (rc != 1) {
      if (rc < 0) return link_lost(c, SOTTO_NET_E_IO, "receiving") ? c->err : n;
      return link_lost(c, rc, "receiving") ? c->err : n;
    }
    n++;
    c->last_rx = sc_monotonic_ms();
    rc = handle(c, &ev);
    sotto_net_event_clear(&ev);
    if (rc < 0) return rc; /* local failure: recorded; not acked, the server keeps it */
    if (rc > 0) {
      if (rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT || rc == SOTTO_SRV_E_DISPLACED ||
          rc == SOTTO_SRV_E_SHUTDOWN || rc == SOTTO_SRV_E_BUSY || rc == SOTTO_SRV_E_AUTH)
        return link_lost(c, rc, "receiving") ? c->err : n;
      return conn_error(c, &c->k, rc, "receiving", NULL);
    }
    /* Drained and every ACK answered. Envelopes dropped while the client's
     * queue was full are still on the server: fetch them on a new
     * connection, at once. */
    if (c->drained_seen && c->acks == 0) {
      c->drained_seen = 0;
      if (sotto_net_dropped(c->k.net)) {
        link_close(c);
        if ((rc = reconnect(c))) return rc;
        if (!c->connected) return n;
        continue;
      }
      /* Attachments that arrived are fetched before the queue counts as
       * drained, so a receive ends with them saved (attach.c). */
      if (c->attach_wanted || !c->attach_checked) {
        rc = attach_fetch_pending(c, &c->k);
        (void)inbox_flush_unshown(c);
        if (rc == SC_ERR_CONNECTION_LOST || rc == SC_ERR_TIMEOUT)
          return link_lost(c, SOTTO_NET_E_IO, "fetching an attachment") ? c->err : n;
        if (rc) return rc;
      }
      c->drained = 1;
      sc__event(c, SC_EV_DRAINED, SC_R_NONE, NULL, NULL);
    }
    if (n >= LINK_MAX_FRAMES_PER_STEP) break;
  }
  /* Key transparency: a linked client (receive --follow, the daemon)
   * monitors its own log entry at least daily, not only at connect. */
  if (c->connected && c->acks == 0 && c->kt_monitor_at && sc__now_s() >= c->kt_monitor_at) {
    c->kt_monitor_at = sc__now_s() + KT_MONITOR_EVERY_S;
    if ((rc = kt_monitor(c, &c->k)) < 0 || (rc = kt_monitor_list(c, &c->k)) < 0) return rc;
  }
  /* Receipts owed, retry requests, queued or resent texts: sent once what
   * arrived is processed (batched: one receipt for many texts). A failure
   * leaves them for the next step. */
  if (c->flush_wanted && c->connected && !sotto_net_pending(c->k.net) && (rc = outbox_flush(c)) != 0) {
    if (!c->k.net || rc == SC_ERR_CONNECTION_LOST || rc == SC_ERR_TIMEOUT)
      return link_lost(c, SOTTO_NET_E_IO, "sending") ? c->err : n;
    c->flush_wanted = 1;
  }
  /* An idle link is pinged (a dead one is found and, with auto-reconnect,
   * replaced). */
  now = sc_monotonic_ms();
  if (n == 0 && now - c->last_rx >= c->keepalive_ms) {
    c->last_rx = now;
    if ((rc = sotto_net_ping(c->k.net)) != 0) return link_lost(c, rc, "waiting for messages") ? c->err : 0;
  }
  return n;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* frames.c: server frames into events, the bounded event queue and the
 * answer parsers of client/net, without any I/O (see frames.h). */
#include "frames.h"

#include <stdlib.h>
#include <string.h>

#include "wire.h"

void sotto_net_event_clear(struct sotto_net_event *ev) {
  free(ev->body);
  free(ev->payload);
  memset(ev, 0, sizeof *ev);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
  uint8_t *d = malloc(n ? n : 1);
  if (d && n) memcpy(d, p, n);
  return d;
}

/* A frame we cannot use: reported to the caller, never fatal. */
static void bad(struct sotto_net_event *ev, uint8_t type, int error) {
  ev->kind = SOTTO_NET_EV_BAD;
  ev->frame_type = type;
  ev->error = error;
}

static int decode_msg(const struct sotto_srv_frame *f, uint32_t max_message, struct sotto_net_event *ev) {
  struct sotto_srv_env e;
  struct sotto__rd r;
  int rc = sotto__srv_parse_env(f->p, f->len, &e);
  if (rc == 0 && e.body_len > max_message) rc = SOTTO_ERR_TOO_LARGE;
  if (rc != 0) {
    bad(ev, f->type, rc);
    /* The id comes first: with it the envelope can be acknowledged, so a
     * bad one does not come back on every connection. */
    sotto__rd_init(&r, f->p, f->len);
    ev->has_id = sotto__rd_u64be(&r, &ev->id) == 0;
    return 0;
  }
  ev->kind = SOTTO_NET_EV_MSG;
  ev->has_id = 1;
  ev->id = e.id;
  memcpy(ev->sender, e.sender.p, e.sender.len);
  ev->sender[e.sender.len] = 0;
  ev->sender_device = e.sender_device;
  ev->device_id = e.device_id;
  ev->type = e.type;
  ev->timestamp_ms = e.timestamp_ms;
  if ((ev->body = dup_bytes(e.body, e.body_len)) == NULL) return SOTTO_ERR_NOMEM;
  ev->body_len = e.body_len;
  return 0;
}

static int decode_notice(const struct sotto_srv_frame *f, struct sotto_net_event *ev) {
  struct sotto_srv_notice n;
  struct sotto__rd r;
  int rc = sotto__srv_parse_notice(f->p, f->len, &n);
  if (rc != 0) {
    bad(ev, f->type, rc);
    sotto__rd_init(&r, f->p, f->len);
    ev->has_id = sotto__rd_u64be(&r, &ev->id) == 0;
    return 0;
  }
  ev->kind = SOTTO_NET_EV_NOTICE;
  ev->has_id = 1;
  ev->id = n.id;
  ev->timestamp_ms = n.timestamp_ms;
  if ((ev->body = dup_bytes(f->p + 16, f->len - 16)) == NULL) return SOTTO_ERR_NOMEM;
  ev->body_len = f->len - 16;
  return 0;
}

int sotto__net_decode(const uint8_t *body, size_t len, uint32_t max_message, struct sotto_net_event *ev) {
  struct sotto_srv_frame f;
  struct sotto_srv_err e;
  struct sotto__rd r;
  const uint8_t *list = NULL;
  size_t list_len = 0;
  int rc;
  memset(ev, 0, sizeof *ev);
  if ((rc = sotto__srv_frame_parse(body, len, &f)) != 0) {
    bad(ev, len ? body[0] : 0, rc);
    return 0;
  }
  ev->frame_type = f.type;
  switch (f.type) {
    case SOTTO_SRV_OK:
      ev->kind = SOTTO_NET_EV_ANSWER;
      ev->req_id = f.req_id;
      if ((ev->payload = dup_bytes(f.p, f.len)) == NULL) goto nomem;
      ev->payload_len = f.len;
      return 0;
    case SOTTO_SRV_ERR:
    case SOTTO_SRV_CLOSE:
      ev->kind = f.type == SOTTO_SRV_ERR ? SOTTO_NET_EV_ANSWER : SOTTO_NET_EV_CLOSE;
      ev->req_id = f.req_id;
      /* ERR(30) may carry the recipient's signed device list (a client
       * that set FEAT_MISMATCH_LIST): it becomes the event's payload. */
      if ((rc = f.type == SOTTO_SRV_ERR ? sotto__srv_parse_err_list(f.p, f.len, &e, &list, &list_len)
                                        : sotto__srv_parse_err(f.p, f.len, &e)) != 0) {
        ev->error = rc;
        ev->code = SOTTO_SRV_E_MALFORMED;
      } else {
        /* An ERR must fail its request: code 0 would read as success. */
        ev->code = e.code || f.type == SOTTO_SRV_CLOSE ? e.code : SOTTO_SRV_E_INTERNAL;
        if (list_len) {
          if ((ev->payload = dup_bytes(list, list_len)) == NULL) goto nomem;
          ev->payload_len = list_len;
        }
      }
      return 0;
    case SOTTO_SRV_MSG:
      if (decode_msg(&f, max_message, ev) != 0) goto nomem;
      return 0;
    case SOTTO_SRV_NOTICE:
      if (decode_notice(&f, ev) != 0) goto nomem;
      return 0;
    case SOTTO_SRV_DRAINED:
      if (f.len) bad(ev, f.type, SOTTO_ERR_TRAILING);
      else ev->kind = SOTTO_NET_EV_DRAINED;
      return 0;
    case SOTTO_SRV_KEYS_LOW_PUSH:
      sotto__rd_init(&r, f.p, f.len);
      if (sotto__rd_u32be(&r, &ev->ec_left) || sotto__rd_u32be(&r, &ev->kem_left) || sotto__rd_left(&r)) {
        ev->ec_left = ev->kem_left = 0;
        bad(ev, f.type, SOTTO_ERR_MALFORMED);
      } else {
        ev->kind = SOTTO_NET_EV_KEYS_LOW;
      }
      return 0;
    default:
      bad(ev, f.type, SOTTO_ERR_MALFORMED);
      return 0;
  }
nomem:
  sotto_net_event_clear(ev);
  return SOTTO_ERR_NOMEM;
}

/* ---- the queue -------------------------------------------------------------- */

static int is_ctrl(const struct sotto_net_event *ev) {
  return ev->kind == SOTTO_NET_EV_ANSWER || ev->kind == SOTTO_NET_EV_CLOSE || ev->kind == SOTTO_NET_EV_DRAINED;
}

static size_t ev_bytes(const struct sotto_net_event *ev) { return ev->body_len + ev->payload_len; }

int sotto__net_queue_full(const struct sotto__net_queue *q) {
  return q->n >= SOTTO_NET_MAX_EVENTS || q->bytes >= SOTTO_NET_MAX_QUEUED;
}

/* 1 if ev fits: pushes up to the limits, control events into the slack
 * (an answer's payload is at most one frame over the byte limit). */
static int fits(const struct sotto__net_queue *q, const struct sotto_net_event *ev) {
  if (!is_ctrl(ev)) return !sotto__net_queue_full(q) && ev_bytes(ev) <= SOTTO_NET_MAX_QUEUED - q->bytes;
  return q->n < SOTTO_NET_MAX_EVENTS + SOTTO_NET_CTRL_SLACK &&
         q->bytes + ev_bytes(ev) <= (size_t)SOTTO_NET_MAX_QUEUED + SOTTO_SRV_MAX_FRAME;
}

static int queue_push(struct sotto__net_queue *q, struct sotto_net_event *ev) {
  struct sotto__net_evnode *n = calloc(1, sizeof *n);
  if (n == NULL) return SOTTO_ERR_NOMEM;
  n->ev = *ev;
  memset(ev, 0, sizeof *ev);
  if (q->tail) q->tail->next = n;
  else q->head = n;
  q->tail = n;
  q->n++;
  q->bytes += ev_bytes(&n->ev);
  return 0;
}

int sotto__net_feed(struct sotto__net_queue *q, const uint8_t *buf, size_t len, uint32_t max_message, int drop,
                    uint32_t want_id, size_t *used) {
  size_t off = 0;
  int rc = 0;
  while (len - off >= SOTTO_SRV_FRAME_HDR) {
    struct sotto_net_event ev;
    uint32_t blen;
    if ((rc = sotto__srv_frame_len(buf + off, SOTTO_SRV_MAX_FRAME, &blen)) != 0) break;
    if (len - off - SOTTO_SRV_FRAME_HDR < blen) break;
    /* Full: stop reading (the server waits) unless told to drop pushes.
     * A push is only dropped after it was decoded: control events still
     * get through. */
    if (!drop && sotto__net_queue_full(q)) break;
    if ((rc = sotto__net_decode(buf + off + SOTTO_SRV_FRAME_HDR, blen, max_message, &ev)) != 0) break;
    if (!fits(q, &ev) && !(drop && want_id && ev.kind == SOTTO_NET_EV_ANSWER && ev.req_id == want_id)) {
      if (!drop) {
        sotto_net_event_clear(&ev);
        break;
      }
      q->dropped++;
      sotto_net_event_clear(&ev);
    } else if ((rc = queue_push(q, &ev)) != 0) {
      sotto_net_event_clear(&ev);
      break;
    }
    off += SOTTO_SRV_FRAME_HDR + blen;
  }
  *used = off;
  return rc;
}

int sotto__net_queue_pop(struct sotto__net_queue *q, int kind, uint32_t req_id, struct sotto_net_event *out) {
  struct sotto__net_evnode *prev = NULL, *n;
  for (n = q->head; n; prev = n, n = n->next) {
    if (kind == SOTTO_NET_EV_ANSWER && (n->ev.kind != kind || n->ev.req_id != req_id)) continue;
    if (kind != SOTTO_NET_EV_ANSWER && kind != 0 && n->ev.kind != kind) continue;
    if (prev) prev->next = n->next;
    else q->head = n->next;
    if (q->tail == n) q->tail = prev;
    q->n--;
    q->bytes -= ev_bytes(&n->ev);
    *out = n->ev;
    free(n);
    return 1;
  }
  return 0;
}

int sotto__net_queue_close_code(const struct sotto__net_queue *q) {
  const struct sotto__net_evnode *n;
  for (n = q->head; n; n = n->next)
    if (n->ev.kind == SOTTO_NET_EV_CLOSE) return n->ev.code ? n->ev.code : SOTTO_NET_E_IO;
  return 0;
}

void sotto__net_queue_clear(struct sotto__net_queue *q) {
  struct sotto__net_evnode *n;
  while ((n = q->head) != NULL) {
    q->head = n->next;
    sotto_net_event_clear(&n->ev);
    free(n);
  }
  q->tail = NULL;
  q->n = q->bytes = 0;
}

/* ---- answers ----------------------------------------------------------------- */

int sotto__net_parse_hello(const uint8_t *p, size_t len, uint16_t *version, uint32_t *max_frame,
                           uint32_t *max_message) {
  struct sotto__rd r;
  uint8_t hi, lo;
  sotto__rd_init(&r, p, len);
  /* A later version may append fields: only the known prefix is read. */
  if (sotto__rd_u8(&r, &hi) || sotto__rd_u8(&r, &lo) || sotto__rd_u32be(&r, max_frame) ||
      sotto__rd_u32be(&r, max_message))
    return SOTTO_ERR_MALFORMED;
  *version = (uint16_t)(hi << 8 | lo);
  return 0;
}

int sotto__net_parse_creds(const uint8_t *p, size_t len, uint32_t *device_id, uint8_t secret[SOTTO_SRV_SECRET_LEN]) {
  struct sotto__rd r;
  sotto__rd_init(&r, p, len);
  if (sotto__rd_u32be(&r, device_id) || sotto__rd_copy(&r, secret, SOTTO_SRV_SECRET_LEN) || sotto__rd_left(&r))
    return SOTTO_ERR_MALFORMED;
  return 0;
}

int sotto__net_parse_counts(const uint8_t *p, size_t len, uint32_t *ec, uint32_t *kem) {
  struct sotto__rd r;
  sotto__rd_init(&r, p, len);
  if (sotto__rd_u32be(&r, ec) || sotto__rd_u32be(&r, kem) || sotto__rd_left(&r)) return SOTTO_ERR_MALFORMED;
  return 0;
}

int sotto__net_parse_sent(const uint8_t *p, size_t len, uint64_t *id, uint64_t *timestamp_ms) {
  struct sotto__rd r;
  sotto__rd_init(&r, p, len);
  if (sotto__rd_u64be(&r, id) || sotto__rd_u64be(&r, timestamp_ms) || sotto__rd_left(&r))
    return SOTTO_ERR_MALFORMED;
  return 0;
}

int sotto__net_parse_bundle(const uint8_t *p, size_t len, struct sotto_srv_bundle_buf *out) {
  struct sotto_srv_bundle m;
  int rc;
  memset(out, 0, sizeof *out);
  if ((rc = sotto__srv_parse_bundle(p, len, &m)) != 0) return rc;
  /* The codec caps each length at the size of these buffers. */
  memcpy(out->identity, m.identity.p, out->identity_len = m.identity.len);
  out->spk_id = m.signed_prekey.id;
  memcpy(out->spk, m.signed_prekey.p, out->spk_len = m.signed_prekey.len);
  out->has_ec = m.has_ec;
  if (m.has_ec) {
    out->ec_id = m.ec.id;
    memcpy(out->ec, m.ec.p, out->ec_len = m.ec.len);
  }
  out->kem_kind = m.kem_kind;
  if (m.kem_kind) {
    out->kem_id = m.kem.id;
    memcpy(out->kem, m.kem.p, out->kem_len = m.kem.len);
  }
  return 0;
}

int sotto__net_parse_epoch(const uint8_t *p, size_t len, uint64_t *old) {
  struct sotto__rd r;
  sotto__rd_init(&r, p, len);
  if (sotto__rd_u64be(&r, old) || sotto__rd_left(&r)) return SOTTO_ERR_MALFORMED;
  return 0;
}

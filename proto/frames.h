/* SPDX-License-Identifier: Apache-2.0 */
/* frames.h: the client's half of the server protocol, sans I/O (proto/,
 * beside proto.h, the server's half and the shared codec): server frames
 * into events, the bounded queue of received events, and the parsers of
 * every answer payload. No sockets and no TLS here, so
 * fuzz/fuzz_client_net.c runs exactly this code on raw bytes; client/net
 * (net.c) moves the bytes.
 *
 * Bounds (a malicious server must not grow the client without limit):
 *  - one frame is at most SOTTO_SRV_MAX_FRAME bytes (checked on its prefix);
 *  - the queue holds at most SOTTO_NET_MAX_EVENTS events and
 *    SOTTO_NET_MAX_QUEUED bytes of bodies and payloads; answers, DRAINED and
 *    CLOSE may use SOTTO_NET_CTRL_SLACK more slots, so the answer to a request
 *    can still get through a queue full of pushes. */
#ifndef SOTTO_NET_FRAMES_H
#define SOTTO_NET_FRAMES_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* Local transport results of client/net (beside the server's SOTTO_SRV_E_*). */
#define SOTTO_NET_E_IO 1000      /* socket error or connection closed */
#define SOTTO_NET_E_TIMEOUT 1001 /* no answer within the timeout */
#define SOTTO_NET_E_TLS 1002     /* a TLS peer refused or broke off the handshake */
#define SOTTO_NET_E_CONNECT 1003 /* cannot resolve or connect */
#define SOTTO_NET_E_NOT_TLS 1004 /* the peer does not speak TLS (garbage, or closed during the handshake) */
#define SOTTO_NET_E_PIN 1005     /* TLS fine, but the certificate is not the pinned one */
#define SOTTO_NET_E_NOT_SOTTO 1006 /* TLS fine, but no sotto answer to HELLO (not a sotto server) */
#define SOTTO_NET_E_CERT 1007    /* the certificate does not verify against the CA file (or the name) */

/* What a server sends, decoded (returned by sotto_net_next_event). */
enum {
  SOTTO_NET_EV_MSG = 1,
  SOTTO_NET_EV_DRAINED,
  SOTTO_NET_EV_KEYS_LOW,
  SOTTO_NET_EV_CLOSE,
  SOTTO_NET_EV_ANSWER,
  /* A frame that did not parse: frame_type and error (a negative
   * SOTTO_ERR_*) say what; for a MSG whose id could be read, has_id and id
   * are set, so the caller can ACK it (the server would resend it). */
  SOTTO_NET_EV_BAD,
  /* NOTICE (proto.h): id, has_id, timestamp_ms, and the notice body (it
   * parses: sotto__srv_parse_notice_body) in body / body_len. */
  SOTTO_NET_EV_NOTICE
};

struct sotto_net_event {
  int kind;
  /* MSG: the envelope, body and sender copied (freed by _event_clear) */
  uint64_t id;
  int has_id; /* MSG and BAD: id is the envelope's server id */
  char sender[SOTTO_SRV_USER_MAX + 1];
  uint32_t sender_device, device_id;
  uint8_t type;
  uint64_t timestamp_ms;
  uint8_t *body;
  size_t body_len;
  /* KEYS_LOW */
  uint32_t ec_left, kem_left;
  /* CLOSE, and ANSWER with an ERR */
  uint16_t code;
  /* ANSWER (pipelined requests): request id, 0 or ERR code in code, payload
   * (for OK; for ERR(30) the signed device list it carried, or none) */
  uint32_t req_id;
  uint8_t *payload;
  size_t payload_len;
  /* BAD (and an ERR/CLOSE whose payload did not parse) */
  uint8_t frame_type;
  int error;
};

void sotto_net_event_clear(struct sotto_net_event *ev);

#define SOTTO_NET_MAX_EVENTS 1024
#define SOTTO_NET_CTRL_SLACK 64
#define SOTTO_NET_MAX_QUEUED (8u << 20)

struct sotto__net_evnode {
  struct sotto__net_evnode *next;
  struct sotto_net_event ev;
};

struct sotto__net_queue {
  struct sotto__net_evnode *head, *tail;
  size_t n, bytes;
  uint64_t dropped; /* pushes dropped while full (the server keeps them) */
};

/* Decodes one frame body (without its length prefix) into *ev, copying what
 * it keeps. A body that does not parse is not an error: it becomes an
 * SOTTO_NET_EV_BAD event (with the envelope id when the first 8 bytes of a
 * MSG can be read, so that the caller can ACK it); an ERR or CLOSE whose
 * payload does not parse keeps its kind with code SOTTO_SRV_E_MALFORMED.
 * Returns 0, or SOTTO_ERR_NOMEM (*ev is then empty). */
int sotto__net_decode(const uint8_t *body, size_t len, uint32_t max_message, struct sotto_net_event *ev) SOTTO_WUR;

/* Splits buf into frames, decodes and queues them until the queue is full.
 * With drop set, pushes that do not fit are dropped and counted instead
 * (answers, DRAINED and CLOSE use the slack first; past it, answers to
 * pipelined requests nobody waits for are dropped too). The answer with
 * request id want_id (the one a blocking request waits for; 0 for none)
 * is always queued: one event past the bounds at most, so that thousands
 * of unread answers to earlier async requests cannot starve it. *used gets the bytes
 * consumed (whole frames only). Returns 0, SOTTO_ERR_MALFORMED /
 * SOTTO_ERR_TOO_LARGE for a length prefix out of range (the stream cannot be
 * resynchronised), or SOTTO_ERR_NOMEM. */
int sotto__net_feed(struct sotto__net_queue *q, const uint8_t *buf, size_t len, uint32_t max_message, int drop,
                    uint32_t want_id, size_t *used) SOTTO_WUR;
/* 1 if the queue takes no further push. */
int sotto__net_queue_full(const struct sotto__net_queue *q);
/* Removes the first event of that kind (0: any; ANSWER: also by req_id)
 * into *out. Returns 1 or 0. */
int sotto__net_queue_pop(struct sotto__net_queue *q, int kind, uint32_t req_id, struct sotto_net_event *out);
/* The code of a queued CLOSE (SOTTO_NET_E_IO for code 0), or 0 if none. */
int sotto__net_queue_close_code(const struct sotto__net_queue *q);
void sotto__net_queue_clear(struct sotto__net_queue *q);

/* ---- answer payloads (OK frames) ------------------------------------------ */

int sotto__net_parse_hello(const uint8_t *p, size_t len, uint16_t *version, uint32_t *max_frame,
                           uint32_t *max_message) SOTTO_WUR;
/* REGISTER and ADD_DEVICE: device id and secret. */
int sotto__net_parse_creds(const uint8_t *p, size_t len, uint32_t *device_id,
                           uint8_t secret[SOTTO_SRV_SECRET_LEN]) SOTTO_WUR;
/* AUTH and KEYS_UPLOAD: one-time keys left (EC, KEM). */
int sotto__net_parse_counts(const uint8_t *p, size_t len, uint32_t *ec, uint32_t *kem) SOTTO_WUR;
/* SEND: server id and timestamp. */
int sotto__net_parse_sent(const uint8_t *p, size_t len, uint64_t *id, uint64_t *timestamp_ms) SOTTO_WUR;
/* EPOCH: the server's epoch before the request. */
int sotto__net_parse_epoch(const uint8_t *p, size_t len, uint64_t *old) SOTTO_WUR;
/* BUNDLE: copied into owned buffers (*out zeroed first). */
int sotto__net_parse_bundle(const uint8_t *p, size_t len, struct sotto_srv_bundle_buf *out) SOTTO_WUR;

#endif

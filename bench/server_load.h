/* SPDX-License-Identifier: Apache-2.0 */
/* server_load.h: the load generator of the server benchmark (bench_server.c).
 *
 * One struct lg drives many TLS 1.3 client connections to ONE server (the
 * real sotto-server or the bare relay floor) from one thread: non-blocking
 * connect, TLS handshake with the certificate fingerprint pinned, HELLO and
 * AUTH (or HELLO only, for registering), then frames in both directions.
 * Frames a caller queues are buffered per connection and written at the end
 * of the poll call that follows, so that everything one loop iteration wants
 * to say on a connection goes out in one TLS record where possible.
 *
 * Memory per idle connection is kept small (the generator shares the machine
 * with the server it measures): the struct, OpenSSL's client state, and no
 * read or write buffer unless bytes are pending.
 *
 * Every failure (connect, handshake, pin mismatch, an ERR or CLOSE during
 * login, a malformed frame, a closed connection) stops the program with a
 * one-line error: the benchmark never measures failures. */
#ifndef SOTTO_BENCH_SERVER_LOAD_H
#define SOTTO_BENCH_SERVER_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "proto.h"

/* A device the generator logs in as (registered on the sotto server; the
 * floor accepts any name and secret). */
struct lg_dev {
  char user[SOTTO_SRV_USER_MAX + 1];
  uint32_t device_id;
  uint8_t secret[SOTTO_SRV_SECRET_LEN];
};

enum { LG_CONNECTING, LG_HANDSHAKE, LG_HELLO, LG_AUTHING, LG_READY };

struct lg_conn {
  struct lg *g;
  void *ssl; /* SSL * */
  int fd;
  uint8_t state, auth, want_write, dirty, registered, closed;
  uint32_t ev;
  const struct lg_dev *dev;
  uint8_t *rbuf; /* a partial frame carried over between reads */
  uint32_t rlen;
  uint8_t *wbuf; /* bytes queued or not yet accepted by the socket */
  uint32_t wlen, woff, wcap;
  struct lg_conn *dnext; /* dirty list */
  struct lg_conn *znext; /* closed, waiting to be freed */
  /* for the caller */
  uint32_t next_req; /* next request id (login uses 1 and 2; starts at 16) */
  uint64_t n_in;     /* a counter or flag, meaning per use */
  uint64_t last_id;  /* highest server id received */
  void *user;
};

/* Called for every frame after login (and for login answers the engine does
 * not consume itself: none). f points into a buffer valid during the call. */
typedef void (*lg_frame_cb)(void *ctx, struct lg_conn *c, const struct sotto_srv_frame *f);
/* Called once when a connection has finished its login (AUTH answered OK,
 * or HELLO answered OK for connections opened without AUTH). */
typedef void (*lg_ready_cb)(void *ctx, struct lg_conn *c);

struct lg;

/* host:port of the server, pin = the fingerprint it printed (64 hex). The
 * callbacks can be changed at any time with lg_set_cb. Dies on failure. */
struct lg *lg_new(const char *name, const char *port, const char *pin_hex);
void lg_set_cb(struct lg *g, lg_frame_cb on_frame, lg_ready_cb on_ready, void *ctx);
/* Closes every connection and frees everything. */
void lg_free(struct lg *g);

/* Starts a connection for dev; auth = 0 stops after HELLO. The connection is
 * owned by g until lg_close. */
struct lg_conn *lg_connect(struct lg *g, const struct lg_dev *dev, int auth);
/* Closes a connection: one close_notify attempt, then the socket; frees it. */
void lg_close(struct lg_conn *c);

/* Queues one frame (written by the next lg_poll, or lg_flush). */
void lg_frame(struct lg_conn *c, uint8_t type, uint32_t req_id, const void *payload, size_t len);
/* Queues a SEND of body to user/device with request id req_id. */
void lg_send(struct lg_conn *c, uint32_t req_id, const char *user, uint32_t device_id, const uint8_t *body,
             size_t body_len);
/* Queues an ACK of server id. */
void lg_ack(struct lg_conn *c, uint32_t req_id, uint64_t server_id);
/* Writes every connection's queued bytes now. */
void lg_flush(struct lg *g);

/* Waits up to timeout_us for events, handles them, then flushes. Returns the
 * number of events handled. */
int lg_poll(struct lg *g, int64_t timeout_us);
/* Connections that are open / still logging in. */
size_t lg_open(const struct lg *g);
size_t lg_pending_logins(const struct lg *g);

/* Monotonic clock in nanoseconds. */
int64_t lg_now_ns(void);
/* Prints "bench_server: ..." to stderr and exits 1. */
__attribute__((noreturn, format(printf, 1, 2))) void lg_die(const char *fmt, ...);

#endif

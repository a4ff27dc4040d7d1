/* SPDX-License-Identifier: Apache-2.0 */
/* net.c: client side of the sotto-server protocol over TLS 1.3 (OpenSSL).
 * See net.h. The socket is non-blocking; every wait goes through poll()
 * with a deadline, and while waiting to write we keep reading, so a client
 * that pipelines cannot deadlock against a server that is pushing. */
#define _GNU_SOURCE
#include "net.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frames.h"
#include "rotation.h"
#include "wire.h"

/* Bytes one read_some call takes from the socket at most, so that a server
 * that never stops sending cannot keep a caller past its deadline. */
#define NET_READ_BUDGET (1u << 20)

#define NET_CA_MAX 16 /* certificates of a CA file that may be the server's own */

struct sotto_net_ctx {
  SSL_CTX *ssl;
  int has_pin;
  uint8_t pin[32];
  int has_ca;
  size_t n_ca;
  uint8_t ca_fp[NET_CA_MAX][32]; /* SHA-256 of each certificate of the CA file */
};

struct sotto_net {
  SSL *ssl;
  int fd;
  int timeout_ms;
  uint32_t next_id;
  uint32_t max_message;
  uint32_t max_frame; /* HELLO: the authenticated frame cap (blob chunks fit it) */
  uint8_t *rbuf;
  size_t rlen, rcap;
  struct sotto__net_queue q;
  int eof;
  uint32_t want_id; /* the answer a blocking request waits for (0: none) */
  int has_peer;
  uint8_t peer_fp[32], peer_key[32]; /* the server's certificate: SHA-256 (DER), Ed25519 key (or zeros) */
};

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct sotto_net_ctx *sotto_net_ctx_new(const char *pin_hex, const char *ca_file) {
  struct sotto_net_ctx *x;
  if ((pin_hex == NULL) == (ca_file == NULL)) return NULL;
  if ((x = calloc(1, sizeof *x)) == NULL) return NULL;
  if (pin_hex) {
    size_t bin_len = 0;
    if (strlen(pin_hex) != 64 || sodium_hex2bin(x->pin, 32, pin_hex, 64, ":", &bin_len, NULL) != 0 ||
        bin_len != 32)
      goto fail;
    x->has_pin = 1;
  }
  if ((x->ssl = SSL_CTX_new(TLS_client_method())) == NULL) goto fail;
  SSL_CTX_set_min_proto_version(x->ssl, TLS1_3_VERSION);
  SSL_CTX_set_mode(x->ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                               SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (ca_file) {
    FILE *f;
    X509 *c;
    if (SSL_CTX_load_verify_locations(x->ssl, ca_file, NULL) != 1) goto fail;
    SSL_CTX_set_verify(x->ssl, SSL_VERIFY_PEER, NULL);
    x->has_ca = 1;
    /* The certificates of the file, so that the server's own self-signed
     * certificate given as the "CA" is accepted without a host name check
     * (it names no host: it is trusted as itself, like a pin). */
    if ((f = fopen(ca_file, "r")) == NULL) goto fail;
    while (x->n_ca < NET_CA_MAX && (c = PEM_read_X509(f, NULL, NULL, NULL)) != NULL) {
      unsigned int n = 0;
      if (X509_digest(c, EVP_sha256(), x->ca_fp[x->n_ca], &n) == 1 && n == 32) x->n_ca++;
      X509_free(c);
    }
    fclose(f);
  } else {
    /* Pinning replaces chain validation: checked after the handshake. */
    SSL_CTX_set_verify(x->ssl, SSL_VERIFY_NONE, NULL);
  }
  return x;
fail:
  sotto_net_ctx_free(x);
  ERR_clear_error();
  return NULL;
}

struct sotto_net_ctx *sotto_net_ctx_new_unverified(void) {
  struct sotto_net_ctx *x = calloc(1, sizeof *x);
  if (!x) return NULL;
  if ((x->ssl = SSL_CTX_new(TLS_client_method())) == NULL) {
    free(x);
    ERR_clear_error();
    return NULL;
  }
  SSL_CTX_set_min_proto_version(x->ssl, TLS1_3_VERSION);
  SSL_CTX_set_mode(x->ssl, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                               SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  /* The caller checks sotto_net_peer before it sends anything that matters. */
  SSL_CTX_set_verify(x->ssl, SSL_VERIFY_NONE, NULL);
  return x;
}

void sotto_net_ctx_free(struct sotto_net_ctx *x) {
  if (!x) return;
  SSL_CTX_free(x->ssl);
  sodium_memzero(x, sizeof *x);
  free(x);
}

int sotto_net_fd(const struct sotto_net *c) { return c->fd; }
void sotto_net_set_timeout(struct sotto_net *c, int timeout_ms) { c->timeout_ms = timeout_ms; }
uint32_t sotto_net_max_message(const struct sotto_net *c) { return c->max_message; }
uint32_t sotto_net_max_frame(const struct sotto_net *c) { return c->max_frame; }
uint64_t sotto_net_dropped(const struct sotto_net *c) { return c->q.dropped; }

void sotto_net_close(struct sotto_net *c) {
  if (!c) return;
  sotto__net_queue_clear(&c->q);
  if (c->ssl) {
    (void)SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
  }
  if (c->fd >= 0) close(c->fd);
  free(c->rbuf);
  ERR_clear_error();
  free(c);
}

/* Waits for readiness until the deadline: 1 ready, 0 timeout, -1 error. */
static int wait_fd(int fd, short events, int64_t deadline) {
  for (;;) {
    struct pollfd p = {fd, events, 0};
    int64_t left = deadline - mono_ms();
    int r;
    if (left < 0) left = 0;
    r = poll(&p, 1, (int)left);
    if (r > 0) return 1;
    if (r == 0) return 0;
    if (errno != EINTR) return -1;
  }
}

/* ---- frames in ---------------------------------------------------------- */

/* Queues the complete frames of rbuf (frames.c) and keeps the rest. */
static int feed(struct sotto_net *c, int drop) {
  size_t used = 0;
  /* The protocol's cap, not the announced limit: a server may lower its
   * limit while older, larger envelopes are still queued. */
  int rc = sotto__net_feed(&c->q, c->rbuf, c->rlen, SOTTO_SRV_MAX_MESSAGE, drop, drop ? c->want_id : 0, &used);
  if (used) {
    memmove(c->rbuf, c->rbuf + used, c->rlen - used);
    c->rlen -= used;
  }
  return rc;
}

/* Reads what is available (no waiting), at most NET_READ_BUDGET bytes and
 * not past the deadline, and queues the complete frames. While the queue is
 * full nothing is read, so the server waits (TCP flow control), unless drop
 * is set: then pushes that do not fit are dropped, so that the answer a
 * request waits for can get through. Returns 0, SOTTO_NET_E_IO at end of
 * stream / error, or a framing error. */
static int read_some(struct sotto_net *c, int drop, int64_t deadline) {
  size_t budget = NET_READ_BUDGET;
  int rc;
  /* Frames read earlier, while the queue was full, come first. */
  if (c->rlen && (rc = feed(c, drop)) != 0) return rc;
  for (;;) {
    size_t n = 0;
    int ret;
    if (c->eof) return SOTTO_NET_E_IO;
    if ((!drop && sotto__net_queue_full(&c->q)) || budget == 0 || mono_ms() > deadline) return 0;
    if (c->rcap - c->rlen < 16384) {
      size_t cap = c->rcap ? c->rcap * 2 : 32768;
      uint8_t *p;
      if (cap > SOTTO_SRV_FRAME_HDR + SOTTO_SRV_MAX_FRAME + 32768) return SOTTO_ERR_TOO_LARGE;
      if ((p = realloc(c->rbuf, cap)) == NULL) return SOTTO_ERR_NOMEM;
      c->rbuf = p;
      c->rcap = cap;
    }
    ret = SSL_read_ex(c->ssl, c->rbuf + c->rlen, c->rcap - c->rlen, &n);
    if (ret != 1) {
      int e = SSL_get_error(c->ssl, ret);
      ERR_clear_error();
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        if (c->rlen == 0) {
          /* Idle connections hold no buffer (load generators open thousands). */
          free(c->rbuf);
          c->rbuf = NULL;
          c->rcap = 0;
        }
        return 0;
      }
      c->eof = 1;
      return SOTTO_NET_E_IO;
    }
    c->rlen += n;
    budget = n < budget ? budget - n : 0;
    if ((rc = feed(c, drop)) != 0) return rc;
  }
}

/* Bytes already read but not yet queued (a full queue), or held by TLS. */
static int have_pending(struct sotto_net *c) { return SSL_pending(c->ssl) > 0; }

/* ---- frames out ---------------------------------------------------------- */

static int write_all(struct sotto_net *c, const uint8_t *p, size_t len) {
  int64_t deadline = mono_ms() + c->timeout_ms;
  while (len > 0) {
    size_t n = 0;
    int ret = SSL_write_ex(c->ssl, p, len, &n), e;
    if (ret == 1) {
      p += n;
      len -= n;
      continue;
    }
    e = SSL_get_error(c->ssl, ret);
    ERR_clear_error();
    if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) return SOTTO_NET_E_IO;
    /* Keep reading while the socket is full, so pushes cannot wedge us. */
    if (wait_fd(c->fd, POLLOUT | POLLIN, deadline) <= 0) return SOTTO_NET_E_TIMEOUT;
    {
      int rc = read_some(c, 1, deadline);
      if (rc) return rc;
    }
  }
  return 0;
}

int sotto_net_write_raw(struct sotto_net *c, const void *bytes, size_t len) { return write_all(c, bytes, len); }

int sotto_net_write_frame(struct sotto_net *c, uint8_t type, uint32_t req_id, const void *payload, size_t len) {
  uint8_t hdr[9];
  uint8_t *buf;
  int rc;
  if (len > SOTTO_SRV_MAX_FRAME) return SOTTO_ERR_TOO_LARGE;
  sotto__srv_frame_hdr(hdr, type, req_id, len);
  /* One write per frame: one TLS record instead of two. */
  if ((buf = malloc(9 + len)) == NULL) return SOTTO_ERR_NOMEM;
  memcpy(buf, hdr, 9);
  if (len) memcpy(buf + 9, payload, len);
  rc = write_all(c, buf, 9 + len);
  free(buf);
  return rc;
}

int sotto_net_pending(const struct sotto_net *c) { return c->q.head != NULL || SSL_pending(c->ssl) > 0; }

int sotto_net_flush(struct sotto_net *c) { return 0; /* writes are never buffered locally */ }

int sotto_net_next_event(struct sotto_net *c, int timeout_ms, struct sotto_net_event *ev) {
  int64_t deadline = mono_ms() + timeout_ms;
  memset(ev, 0, sizeof ev[0]);
  for (;;) {
    int rc;
    if (sotto__net_queue_pop(&c->q, 0, 0, ev)) return 1;
    if ((rc = read_some(c, 0, deadline)) != 0 && !(rc == SOTTO_NET_E_IO && c->q.head)) return rc;
    if (sotto__net_queue_pop(&c->q, 0, 0, ev)) return 1;
    if (mono_ms() >= deadline) return 0;
    if (have_pending(c)) continue;
    if (wait_fd(c->fd, POLLIN, deadline) < 0) return SOTTO_NET_E_IO;
  }
}

/* Sends a request and waits for its answer: returns 0 with the OK payload
 * in *ans (caller clears), or the server's error code. A CLOSE that arrives
 * instead ends the wait with its code. */
static int request_wait(struct sotto_net *c, uint32_t id, int64_t deadline, struct sotto_net_event *ans);

static int request(struct sotto_net *c, uint8_t type, const uint8_t *p, size_t len, struct sotto_net_event *ans) {
  uint32_t id = ++c->next_id ? c->next_id : ++c->next_id;
  int64_t deadline;
  int rc;
  memset(ans, 0, sizeof *ans);
  if ((rc = sotto_net_write_frame(c, type, id, p, len)) != 0) return rc;
  deadline = mono_ms() + c->timeout_ms;
  c->want_id = id;
  rc = request_wait(c, id, deadline, ans);
  c->want_id = 0;
  return rc;
}

static int request_wait(struct sotto_net *c, uint32_t id, int64_t deadline, struct sotto_net_event *ans) {
  int rc;
  for (;;) {
    int eof;
    if (sotto__net_queue_pop(&c->q, SOTTO_NET_EV_ANSWER, id, ans)) return ans->code;
    if ((rc = sotto__net_queue_close_code(&c->q)) != 0) return rc;
    /* Pushes that arrive meanwhile are queued up to the bound and dropped
     * past it, so that the answer behind them gets through. */
    rc = read_some(c, 1, deadline);
    eof = rc == SOTTO_NET_E_IO;
    if (rc && !eof) return rc;
    if (sotto__net_queue_pop(&c->q, SOTTO_NET_EV_ANSWER, id, ans)) return ans->code;
    if ((rc = sotto__net_queue_close_code(&c->q)) != 0) return rc;
    if (eof) return SOTTO_NET_E_IO;
    if (mono_ms() >= deadline) return SOTTO_NET_E_TIMEOUT;
    if (have_pending(c)) continue;
    rc = wait_fd(c->fd, POLLIN, deadline);
    if (rc == 0) return SOTTO_NET_E_TIMEOUT;
    if (rc < 0) return SOTTO_NET_E_IO;
  }
}

/* ---- connect ------------------------------------------------------------- */

static int tcp_connect(const char *host, const char *port, int64_t deadline) {
  struct addrinfo hints, *ai = NULL, *a;
  int fd = -1;
  memset(&hints, 0, sizeof hints);
  hints.ai_socktype = SOCK_STREAM;
  if (getaddrinfo(host, port, &hints, &ai) != 0) return -1;
  for (a = ai; a; a = a->ai_next) {
    int one = 1, err = 0;
    socklen_t el = sizeof err;
    fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) continue;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, a->ai_addr, a->ai_addrlen) == 0) break;
    if (errno == EINPROGRESS && wait_fd(fd, POLLOUT, deadline) == 1 &&
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) == 0 && err == 0)
      break;
    close(fd);
    fd = -1;
  }
  freeaddrinfo(ai);
  return fd;
}

/* What a failed handshake says about the peer: the CA file did not vouch
 * for its certificate (SOTTO_NET_E_CERT); a TLS peer sent an alert
 * (SOTTO_NET_E_TLS: it speaks TLS but refused, e.g. no TLS 1.3); anything
 * else (bytes that are not TLS records, or the peer closed the connection
 * in the middle) means it does not speak TLS (SOTTO_NET_E_NOT_TLS). */
static int handshake_error(SSL *ssl, int e) {
  unsigned long err = ERR_peek_error();
  int reason = err ? ERR_GET_REASON(err) : 0;
  (void)e;
  if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED ||
      ((SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) && SSL_get_verify_result(ssl) != X509_V_OK))
    return SOTTO_NET_E_CERT;
  if (reason >= SSL_AD_REASON_OFFSET) return SOTTO_NET_E_TLS; /* an alert from the peer */
  return SOTTO_NET_E_NOT_TLS;
}

/* Drives SSL_connect on the non-blocking fd until done or the deadline.
 * Returns 0, SOTTO_NET_E_CERT, SOTTO_NET_E_TLS, SOTTO_NET_E_NOT_TLS,
 * SOTTO_NET_E_TIMEOUT or SOTTO_NET_E_IO. */
static int handshake(SSL *ssl, int fd, int64_t deadline) {
  for (;;) {
    int ret = SSL_connect(ssl), e;
    if (ret == 1) return 0;
    e = SSL_get_error(ssl, ret);
    if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
      int rc = handshake_error(ssl, e);
      ERR_clear_error();
      return rc;
    }
    ERR_clear_error();
    ret = wait_fd(fd, e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline);
    if (ret <= 0) return ret == 0 ? SOTTO_NET_E_TIMEOUT : SOTTO_NET_E_IO;
  }
}

/* Records the peer's certificate (fingerprint and Ed25519 key). 0, or -1
 * when there is no certificate. */
static int learn_peer(struct sotto_net *c) {
  X509 *peer = SSL_get1_peer_certificate(c->ssl);
  EVP_PKEY *pk;
  unsigned int n = 0;
  size_t kl = 32;
  if (!peer) return -1;
  if (X509_digest(peer, EVP_sha256(), c->peer_fp, &n) != 1 || n != 32) {
    X509_free(peer);
    return -1;
  }
  memset(c->peer_key, 0, 32);
  if ((pk = X509_get0_pubkey(peer)) == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519 ||
      EVP_PKEY_get_raw_public_key(pk, c->peer_key, &kl) != 1 || kl != 32)
    memset(c->peer_key, 0, 32);
  X509_free(peer);
  ERR_clear_error();
  c->has_peer = 1;
  return 0;
}

/* After a handshake that OpenSSL verified against the CA file: the name
 * must match host, unless the certificate is itself one of the CA file's
 * (the server's own self-signed certificate, trusted as itself). */
static int check_ca_name(struct sotto_net_ctx *x, struct sotto_net *c, const char *host) {
  X509 *peer;
  size_t i;
  int ok;
  for (i = 0; i < x->n_ca; i++)
    if (sodium_memcmp(x->ca_fp[i], c->peer_fp, 32) == 0) return 1;
  if ((peer = SSL_get1_peer_certificate(c->ssl)) == NULL) return 0;
  ok = X509_check_ip_asc(peer, host, 0) == 1 || X509_check_host(peer, host, 0, 0, NULL) == 1;
  X509_free(peer);
  ERR_clear_error();
  return ok;
}

int sotto_net_peer(const struct sotto_net *c, uint8_t fp[32], uint8_t key[32]) {
  static const uint8_t zero[32];
  if (!c->has_peer) return -1;
  if (fp) memcpy(fp, c->peer_fp, 32);
  if (key) memcpy(key, c->peer_key, 32);
  return sodium_memcmp(c->peer_key, zero, 32) == 0 ? 1 : 0;
}

int sotto_net_connect(struct sotto_net_ctx *x, const char *host, const char *port, int timeout_ms, int hello,
                      struct sotto_net **out) {
  struct sotto_net *c;
  int64_t deadline = mono_ms() + timeout_ms;
  int rc;
  *out = NULL;
  if ((c = calloc(1, sizeof *c)) == NULL) return SOTTO_ERR_NOMEM;
  c->timeout_ms = timeout_ms;
  c->max_message = 64 * 1024;
  c->max_frame = 64 * 1024;
  if ((c->fd = tcp_connect(host, port, deadline)) < 0) {
    free(c);
    return SOTTO_NET_E_CONNECT;
  }
  if ((c->ssl = SSL_new(x->ssl)) == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
    rc = SOTTO_NET_E_TLS;
    goto fail;
  }
  SSL_set_tlsext_host_name(c->ssl, host);
  if ((rc = handshake(c->ssl, c->fd, deadline)) != 0) goto fail;
  if (learn_peer(c) != 0) {
    rc = SOTTO_NET_E_TLS;
    goto fail;
  }
  if (x->has_pin && sodium_memcmp(c->peer_fp, x->pin, 32) != 0) {
    rc = SOTTO_NET_E_PIN;
    goto fail;
  }
  if (x->has_ca && !check_ca_name(x, c, host)) {
    rc = SOTTO_NET_E_CERT;
    goto fail;
  }
  /* TLS is up: a peer that does not answer HELLO as a sotto server does
   * (no answer, a closed connection, bytes that are no frame) is not one. */
  if (hello && (rc = sotto_net_hello(c, SOTTO_SRV_VERSION)) != 0) {
    if (rc == SOTTO_NET_E_IO || rc == SOTTO_NET_E_TIMEOUT || rc < 0) rc = SOTTO_NET_E_NOT_SOTTO;
    goto fail;
  }
  *out = c;
  return 0;
fail:
  sotto_net_close(c);
  return rc;
}

/* Trust on first use: one TLS 1.3 handshake that checks nothing, then
 * HELLO (no credentials), to learn the certificate and to tell a sotto
 * server from anything else. The caller decides whether to trust it. */
int sotto_net_probe(const char *host, const char *port, int timeout_ms, char out_hex[65], uint8_t key[32]) {
  struct sotto_net_ctx *x = sotto_net_ctx_new_unverified();
  struct sotto_net *c = NULL;
  uint8_t fp[32];
  int rc;
  out_hex[0] = 0;
  if (key) memset(key, 0, 32);
  if (!x) return SOTTO_ERR_NOMEM;
  rc = sotto_net_connect(x, host, port, timeout_ms, 1, &c);
  if (rc == 0) {
    (void)sotto_net_peer(c, fp, key);
    sodium_bin2hex(out_hex, 65, fp, 32);
    sotto_net_close(c);
  }
  sotto_net_ctx_free(x);
  return rc;
}

int sotto_net_fetch_fingerprint(const char *host, const char *port, int timeout_ms, char out_hex[65]) {
  return sotto_net_probe(host, port, timeout_ms, out_hex, NULL);
}

/* ---- typed requests ------------------------------------------------------- */

#define REQ_BUF 512

int sotto_net_hello(struct sotto_net *c, uint16_t version) {
  uint8_t b[3];
  struct sotto__wr w;
  struct sotto_net_event ans;
  uint16_t v = 0;
  uint32_t maxf = 0, maxm = 0;
  int rc;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_hello_req(&w, version,
                           SOTTO_SRV_FEAT_NOTICE | SOTTO_SRV_FEAT_LAST_SEEN | SOTTO_SRV_FEAT_MISMATCH_LIST);
  rc = request(c, SOTTO_SRV_HELLO, b, w.len, &ans);
  if (rc) {
    sotto_net_event_clear(&ans);
    return rc;
  }
  rc = sotto__net_parse_hello(ans.payload, ans.payload_len, &v, &maxf, &maxm);
  if (rc == 0 && v != version) rc = SOTTO_ERR_VERSION;
  if (rc == 0) {
    c->max_message = maxm;
    c->max_frame = maxf;
  }
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_register(struct sotto_net *c, const char *username, const uint8_t *identity, size_t identity_len,
                       uint32_t *device_id, uint8_t secret[SOTTO_SRV_SECRET_LEN]) {
  uint8_t b[REQ_BUF];
  struct sotto__wr w;
  struct sotto_net_event ans;
  int rc;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_register_req(&w, username, identity, identity_len);
  if (w.err) return SOTTO_ERR_USAGE;
  if ((rc = request(c, SOTTO_SRV_REGISTER, b, w.len, &ans)) == 0) {
    rc = sotto__net_parse_creds(ans.payload, ans.payload_len, device_id, secret);
    if (ans.payload) sodium_memzero(ans.payload, ans.payload_len);
  }
  sotto_net_event_clear(&ans);
  return rc;
}

static int answer_counts(int rc, struct sotto_net_event *ans, uint32_t *ec, uint32_t *kem) {
  uint32_t a = 0, b = 0;
  if (rc == 0) {
    rc = sotto__net_parse_counts(ans->payload, ans->payload_len, &a, &b);
    if (ec) *ec = a;
    if (kem) *kem = b;
  }
  sotto_net_event_clear(ans);
  return rc;
}

int sotto_net_auth(struct sotto_net *c, const char *username, uint32_t device_id,
                   const uint8_t secret[SOTTO_SRV_SECRET_LEN], uint32_t *ec_left, uint32_t *kem_left) {
  uint8_t b[REQ_BUF];
  struct sotto__wr w;
  struct sotto_net_event ans;
  int rc;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_auth_req(&w, username, device_id, secret);
  if (w.err) return SOTTO_ERR_USAGE;
  rc = request(c, SOTTO_SRV_AUTH, b, w.len, &ans);
  sodium_memzero(b, sizeof b);
  return answer_counts(rc, &ans, ec_left, kem_left);
}

int sotto_net_add_device(struct sotto_net *c, uint32_t *device_id, uint8_t secret[SOTTO_SRV_SECRET_LEN]) {
  struct sotto_net_event ans;
  int rc = request(c, SOTTO_SRV_ADD_DEVICE, NULL, 0, &ans);
  if (rc == 0) {
    rc = sotto__net_parse_creds(ans.payload, ans.payload_len, device_id, secret);
    if (ans.payload) sodium_memzero(ans.payload, ans.payload_len);
  }
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_upload_keys(struct sotto_net *c, const struct sotto_srv_keys *k, uint32_t *ec_left,
                          uint32_t *kem_left) {
  size_t cap = 64 + 2 * (size_t)(SOTTO_SRV_MAX_KEYS_PER_UPLOAD + 1) * (SOTTO_SRV_MAX_KEY_BLOB + 6);
  uint8_t *b = malloc(cap);
  struct sotto__wr w;
  struct sotto_net_event ans;
  int rc;
  if (!b) return SOTTO_ERR_NOMEM;
  sotto__wr_init(&w, b, cap);
  sotto__srv_put_keys(&w, k);
  if (w.err || w.len > SOTTO_SRV_MAX_FRAME - SOTTO_SRV_BODY_HDR) {
    free(b);
    return SOTTO_ERR_TOO_LARGE;
  }
  rc = request(c, SOTTO_SRV_KEYS_UPLOAD, b, w.len, &ans);
  free(b);
  return answer_counts(rc, &ans, ec_left, kem_left);
}

int sotto_net_devices_seen(struct sotto_net *c, const char *username, uint32_t *ids, uint32_t *days, size_t max,
                           size_t *n, int *has_days) {
  uint8_t b[REQ_BUF];
  struct sotto__wr w;
  struct sotto_net_event ans;
  int rc, has = 0;
  if (has_days) *has_days = 0;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_devices_req(&w, username);
  if (w.err) return SOTTO_ERR_USAGE;
  if ((rc = request(c, SOTTO_SRV_DEVICES, b, w.len, &ans)) == 0)
    rc = sotto__srv_parse_devices_seen(ans.payload, ans.payload_len, ids, days, max, n, &has);
  if (rc == 0 && has_days) *has_days = has;
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_devices(struct sotto_net *c, const char *username, uint32_t *ids, size_t max, size_t *n) {
  return sotto_net_devices_seen(c, username, ids, NULL, max, n, NULL);
}

int sotto_net_fetch_bundle(struct sotto_net *c, const char *username, uint32_t device_id,
                           struct sotto_srv_bundle_buf *out) {
  uint8_t b[REQ_BUF];
  struct sotto__wr w;
  struct sotto_net_event ans;
  int rc;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_bundle_req(&w, username, device_id);
  if (w.err) return SOTTO_ERR_USAGE;
  memset(out, 0, sizeof *out);
  if ((rc = request(c, SOTTO_SRV_BUNDLE, b, w.len, &ans)) == 0)
    rc = sotto__net_parse_bundle(ans.payload, ans.payload_len, out);
  sotto_net_event_clear(&ans);
  return rc;
}

/* Encodes a SEND payload into a fresh buffer. */
static uint8_t *send_payload(const char *username, uint32_t device_id, uint8_t type, const uint8_t *body,
                             size_t body_len, size_t *len) {
  size_t cap = 48 + body_len;
  uint8_t *b = malloc(cap);
  struct sotto__wr w;
  if (!b) return NULL;
  sotto__wr_init(&w, b, cap);
  sotto__srv_put_send(&w, username, device_id, type, body, body_len);
  if (w.err) {
    free(b);
    return NULL;
  }
  *len = w.len;
  return b;
}

int sotto_net_send(struct sotto_net *c, const char *username, uint32_t device_id, uint8_t type,
                   const uint8_t *body, size_t body_len, uint64_t *server_id, uint64_t *timestamp_ms) {
  size_t len;
  uint8_t *b = send_payload(username, device_id, type, body, body_len, &len);
  struct sotto_net_event ans;
  uint64_t id = 0, ts = 0;
  int rc;
  if (!b) return SOTTO_ERR_USAGE;
  rc = request(c, SOTTO_SRV_SEND, b, len, &ans);
  free(b);
  if (rc == 0) rc = sotto__net_parse_sent(ans.payload, ans.payload_len, &id, &ts);
  if (server_id) *server_id = id;
  if (timestamp_ms) *timestamp_ms = ts;
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_send_async(struct sotto_net *c, const char *username, uint32_t device_id, uint8_t type,
                         const uint8_t *body, size_t body_len, uint32_t *req_id) {
  size_t len;
  uint8_t *b = send_payload(username, device_id, type, body, body_len, &len);
  int rc;
  if (!b) return SOTTO_ERR_USAGE;
  *req_id = ++c->next_id ? c->next_id : ++c->next_id;
  rc = sotto_net_write_frame(c, SOTTO_SRV_SEND, *req_id, b, len);
  free(b);
  return rc;
}

int sotto_net_ack_async(struct sotto_net *c, uint64_t server_id, uint32_t *req_id) {
  uint8_t b[8];
  struct sotto__wr w;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_u64_req(&w, server_id);
  *req_id = ++c->next_id ? c->next_id : ++c->next_id;
  return sotto_net_write_frame(c, SOTTO_SRV_ACK, *req_id, b, 8);
}

int sotto_net_ack(struct sotto_net *c, uint64_t server_id) {
  uint8_t b[8];
  struct sotto__wr w;
  struct sotto_net_event ans;
  int rc;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_u64_req(&w, server_id);
  rc = request(c, SOTTO_SRV_ACK, b, 8, &ans);
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_epoch(struct sotto_net *c, uint64_t epoch, uint64_t *old) {
  uint8_t b[8];
  struct sotto__wr w;
  struct sotto_net_event ans;
  int rc;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_u64_req(&w, epoch);
  rc = request(c, SOTTO_SRV_EPOCH, b, 8, &ans);
  if (rc == 0) rc = sotto__net_parse_epoch(ans.payload, ans.payload_len, old);
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_rotation(struct sotto_net *c, struct sotto_rot_statement *out, size_t max, size_t *n) {
  struct sotto_net_event ans;
  int rc = request(c, SOTTO_SRV_ROTATION, NULL, 0, &ans);
  *n = 0;
  if (rc == 0) rc = sotto__rot_parse_chain(ans.payload, ans.payload_len, out, max, n);
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_call(struct sotto_net *c, uint8_t type, const uint8_t *p, size_t len, struct sotto_net_event *ans) {
  return request(c, type, p, len, ans);
}

int sotto_net_ping(struct sotto_net *c) {
  struct sotto_net_event ans;
  int rc = request(c, SOTTO_SRV_PING, NULL, 0, &ans);
  sotto_net_event_clear(&ans);
  return rc;
}

/* ---- device management ------------------------------------------------------ */

int sotto_net_rotate_secret(struct sotto_net *c, uint8_t secret[SOTTO_SRV_SECRET_LEN]) {
  struct sotto_net_event ans;
  uint32_t id = 0;
  int rc = request(c, SOTTO_SRV_ROTATE_SECRET, NULL, 0, &ans);
  if (rc == 0) {
    /* The answer has the creds layout (device id, secret). */
    if (sotto__net_parse_creds(ans.payload, ans.payload_len, &id, secret) != 0) rc = SOTTO_ERR_MALFORMED;
    if (ans.payload) sodium_memzero(ans.payload, ans.payload_len);
  }
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_unregister(struct sotto_net *c) {
  struct sotto_net_event ans;
  int rc = request(c, SOTTO_SRV_UNREGISTER, NULL, 0, &ans);
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_set_recovery(struct sotto_net *c, const uint8_t code[SOTTO_SRV_RECOVERY_LEN]) {
  struct sotto_net_event ans;
  int rc = request(c, SOTTO_SRV_SET_RECOVERY, code, SOTTO_SRV_RECOVERY_LEN, &ans);
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_recover(struct sotto_net *c, const char *username, const uint8_t code[SOTTO_SRV_RECOVERY_LEN],
                      const uint8_t *identity, size_t identity_len, uint32_t *device_id,
                      uint8_t secret[SOTTO_SRV_SECRET_LEN]) {
  uint8_t b[REQ_BUF];
  struct sotto__wr w;
  struct sotto_net_event ans;
  int rc;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_recover_req(&w, username, code, identity, identity_len);
  if (w.err) return SOTTO_ERR_USAGE;
  rc = request(c, SOTTO_SRV_RECOVER, b, w.len, &ans);
  sodium_memzero(b, sizeof b);
  if (rc == 0) {
    rc = sotto__net_parse_creds(ans.payload, ans.payload_len, device_id, secret);
    if (ans.payload) sodium_memzero(ans.payload, ans.payload_len);
  }
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_devlist_put(struct sotto_net *c, const uint8_t *list, size_t len) {
  uint8_t b[SOTTO_SRV_MAX_DEVLIST + 2];
  struct sotto__wr w;
  struct sotto_net_event ans;
  int rc;
  if (len == 0 || len > SOTTO_SRV_MAX_DEVLIST) return SOTTO_ERR_USAGE;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_devlist(&w, list, len);
  if (w.err) return SOTTO_ERR_USAGE;
  rc = request(c, SOTTO_SRV_DEVLIST_PUT, b, w.len, &ans);
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_send_multi(struct sotto_net *c, const struct sotto_srv_send_multi *m, uint64_t *ids,
                         uint64_t *timestamp_ms) {
  return sotto_net_send_multi_list(c, m, ids, timestamp_ms, NULL, 0, NULL);
}

int sotto_net_send_multi_list(struct sotto_net *c, const struct sotto_srv_send_multi *m, uint64_t *ids,
                              uint64_t *timestamp_ms, uint8_t *list, size_t list_cap, size_t *list_len) {
  size_t cap = SOTTO_SRV_MAX_FRAME, n = 0;
  uint8_t *b = malloc(cap);
  struct sotto__wr w;
  struct sotto_net_event ans;
  uint64_t ts = 0;
  int rc;
  if (list_len) *list_len = 0;
  if (!b) return SOTTO_ERR_NOMEM;
  sotto__wr_init(&w, b, cap);
  sotto__srv_put_send_multi(&w, m);
  if (w.err || w.len > SOTTO_SRV_MAX_FRAME - SOTTO_SRV_BODY_HDR) {
    free(b);
    return SOTTO_ERR_TOO_LARGE;
  }
  rc = request(c, SOTTO_SRV_SEND_MULTI, b, w.len, &ans);
  free(b);
  if (rc == 0) {
    rc = sotto__srv_parse_sent_multi(ans.payload, ans.payload_len, &ts, ids, SOTTO_SRV_MAX_DEVICES, &n);
    if (rc == 0 && n != m->n) rc = SOTTO_ERR_MALFORMED;
    if (rc == 0 && timestamp_ms) *timestamp_ms = ts;
  } else if (rc == SOTTO_SRV_E_MISMATCHED_DEVICES && list && ans.payload_len) {
    /* the recipient's signed list the ERR carried (unverified bytes) */
    if (ans.payload_len > list_cap) {
      rc = SOTTO_ERR_BUFFER_TOO_SMALL;
    } else {
      memcpy(list, ans.payload, ans.payload_len);
      *list_len = ans.payload_len;
    }
  }
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_devlist_get(struct sotto_net *c, const char *username, uint8_t *buf, size_t cap, size_t *len) {
  uint8_t b[REQ_BUF];
  struct sotto__wr w;
  struct sotto_net_event ans;
  const uint8_t *p;
  size_t n = 0;
  int rc;
  *len = 0;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_devices_req(&w, username);
  if (w.err) return SOTTO_ERR_USAGE;
  if ((rc = request(c, SOTTO_SRV_DEVLIST_GET, b, w.len, &ans)) == 0 &&
      (rc = sotto__srv_parse_devlist(ans.payload, ans.payload_len, &p, &n)) == 0) {
    if (n > cap) {
      rc = SOTTO_ERR_BUFFER_TOO_SMALL;
    } else {
      memcpy(buf, p, n);
      *len = n;
    }
  }
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_device_remove(struct sotto_net *c, uint32_t device_id) {
  uint8_t b[4];
  struct sotto__wr w;
  struct sotto_net_event ans;
  int rc;
  if (device_id == 0) return SOTTO_ERR_USAGE;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_device_remove(&w, device_id);
  rc = request(c, SOTTO_SRV_DEVICE_REMOVE, b, 4, &ans);
  sotto_net_event_clear(&ans);
  return rc;
}

/* ---- blobs (attachments; client/core/attach.c) ---------------------------- */

int sotto_net_blob(struct sotto_net *c, uint8_t type, const struct sotto_srv_blob_req *m, struct sotto_net_event *ans) {
  uint8_t b[SOTTO_SRV_BLOB_ID_LEN + 16];
  struct sotto__wr w;
  if (type == SOTTO_SRV_BLOB_PUT) return SOTTO_ERR_USAGE; /* sotto_net_blob_put_async */
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_blob_req(&w, type, m);
  if (w.err) return SOTTO_ERR_USAGE;
  return request(c, type, b, w.len, ans);
}

int sotto_net_blob_async(struct sotto_net *c, uint8_t type, const struct sotto_srv_blob_req *m, uint32_t *req_id) {
  struct sotto__wr w;
  uint8_t small[SOTTO_SRV_BLOB_ID_LEN + 16], *b = small;
  size_t cap = sizeof small;
  int rc;
  if (type == SOTTO_SRV_BLOB_PUT) {
    if (m->data_len > SOTTO_SRV_BLOB_MAX_CHUNK) return SOTTO_ERR_USAGE;
    cap = SOTTO_SRV_BLOB_ID_LEN + 8 + m->data_len;
    if ((b = malloc(cap)) == NULL) return SOTTO_ERR_NOMEM;
  }
  sotto__wr_init(&w, b, cap);
  sotto__srv_put_blob_req(&w, type, m);
  *req_id = ++c->next_id ? c->next_id : ++c->next_id;
  rc = w.err ? SOTTO_ERR_USAGE : sotto_net_write_frame(c, type, *req_id, b, w.len);
  if (b != small) free(b);
  return rc;
}

int sotto_net_blob_put_inplace(struct sotto_net *c, const uint8_t *id, uint64_t offset, uint8_t *buf, size_t data_len,
                               uint32_t *req_id) {
  size_t plen = SOTTO_SRV_BLOB_ID_LEN + 8 + data_len;
  int k;
  _Static_assert(SOTTO_NET_PUT_HEADROOM == 9 + SOTTO_SRV_BLOB_ID_LEN + 8, "frame header + id + offset");
  if (data_len == 0 || data_len > SOTTO_SRV_BLOB_MAX_CHUNK) return SOTTO_ERR_USAGE;
  *req_id = ++c->next_id ? c->next_id : ++c->next_id;
  sotto__srv_frame_hdr(buf, SOTTO_SRV_BLOB_PUT, *req_id, plen);
  memcpy(buf + 9, id, SOTTO_SRV_BLOB_ID_LEN);
  for (k = 0; k < 8; k++) buf[9 + SOTTO_SRV_BLOB_ID_LEN + k] = (uint8_t)(offset >> (56 - 8 * k));
  return write_all(c, buf, SOTTO_NET_PUT_HEADROOM + data_len);
}

/* ---- linking a device (proto.h "linking") ------------------------------------------ */

/* One LINK_* request; the answer in *ans (the caller clears it). */
static int link_call(struct sotto_net *c, uint8_t type, const struct sotto_srv_link *m, struct sotto_net_event *ans) {
  size_t cap = SOTTO_SRV_LINK_CODE_LEN + 4 + SOTTO_SRV_LINK_MAX_BLOB;
  uint8_t *b = malloc(cap);
  struct sotto__wr w;
  int rc;
  memset(ans, 0, sizeof *ans);
  if (!b) return SOTTO_ERR_NOMEM;
  sotto__wr_init(&w, b, cap);
  sotto__srv_put_link_req(&w, type, m);
  rc = w.err ? SOTTO_ERR_USAGE : request(c, type, b, w.len, ans);
  sodium_memzero(b, w.len < cap ? w.len : cap);
  free(b);
  return rc;
}

int sotto_net_link_open(struct sotto_net *c, const uint8_t *keys, size_t keys_len,
                        uint8_t code[SOTTO_SRV_LINK_CODE_LEN], uint32_t *ttl_s) {
  struct sotto_srv_link m = {NULL, keys, keys_len};
  struct sotto_net_event ans;
  const uint8_t *p;
  int rc;
  if (keys_len == 0 || keys_len > SOTTO_SRV_LINK_MAX_KEYS) return SOTTO_ERR_USAGE;
  if ((rc = link_call(c, SOTTO_SRV_LINK_OPEN, &m, &ans)) == 0 &&
      (rc = sotto__srv_parse_link_opened(ans.payload, ans.payload_len, &p, ttl_s)) == 0)
    memcpy(code, p, SOTTO_SRV_LINK_CODE_LEN);
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_link_put(struct sotto_net *c, const uint8_t code[SOTTO_SRV_LINK_CODE_LEN], const uint8_t *blob,
                       size_t blob_len, uint8_t *keys, size_t cap, size_t *keys_len) {
  struct sotto_srv_link m = {code, blob, blob_len};
  struct sotto_net_event ans;
  const uint8_t *p;
  size_t n = 0;
  int rc;
  if (blob_len > SOTTO_SRV_LINK_MAX_BLOB) return SOTTO_ERR_TOO_LARGE;
  if ((rc = link_call(c, SOTTO_SRV_LINK_PUT, &m, &ans)) == 0 &&
      (rc = sotto__srv_parse_link_keys(ans.payload, ans.payload_len, &p, &n)) == 0) {
    if (n > cap) {
      rc = SOTTO_ERR_BUFFER_TOO_SMALL;
    } else {
      memcpy(keys, p, n);
      *keys_len = n;
    }
  }
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_link_get(struct sotto_net *c, const uint8_t code[SOTTO_SRV_LINK_CODE_LEN], uint8_t *state, uint8_t *buf,
                       size_t cap, size_t *len) {
  struct sotto_srv_link m = {code, NULL, 0};
  struct sotto_net_event ans;
  const uint8_t *p;
  size_t n = 0;
  int rc;
  *len = 0;
  if ((rc = link_call(c, SOTTO_SRV_LINK_GET, &m, &ans)) == 0 &&
      (rc = sotto__srv_parse_link_state(ans.payload, ans.payload_len, state, &p, &n)) == 0) {
    if (n > cap) {
      rc = SOTTO_ERR_BUFFER_TOO_SMALL;
    } else {
      if (n) memcpy(buf, p, n);
      *len = n;
    }
  }
  if (ans.payload) sodium_memzero(ans.payload, ans.payload_len);
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_link_reply(struct sotto_net *c, const uint8_t code[SOTTO_SRV_LINK_CODE_LEN], const uint8_t *reply,
                         size_t len) {
  struct sotto_srv_link m = {code, reply, len};
  struct sotto_net_event ans;
  int rc;
  if (len == 0 || len > SOTTO_SRV_LINK_MAX_REPLY) return SOTTO_ERR_USAGE;
  rc = link_call(c, SOTTO_SRV_LINK_REPLY, &m, &ans);
  sotto_net_event_clear(&ans);
  return rc;
}

int sotto_net_device_identity(struct sotto_net *c, const uint8_t *ik, size_t len) {
  uint8_t b[2 + SOTTO_SRV_MAX_IDENTITY];
  struct sotto__wr w;
  struct sotto_net_event ans;
  int rc;
  if (len < SOTTO_SRV_DEVICE_IDENTITY_MIN || len > SOTTO_SRV_MAX_IDENTITY) return SOTTO_ERR_USAGE;
  sotto__wr_init(&w, b, sizeof b);
  sotto__srv_put_device_identity(&w, ik, len);
  if (w.err) return SOTTO_ERR_USAGE;
  rc = request(c, SOTTO_SRV_DEVICE_IDENTITY, b, w.len, &ans);
  sotto_net_event_clear(&ans);
  return rc;
}

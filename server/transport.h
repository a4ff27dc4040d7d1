/* SPDX-License-Identifier: Apache-2.0 */
/* transport.h: the byte transport under a connection, one interface with two
 * implementations (after Redis' connection types): plain TCP (used by the
 * metrics endpoint) and TLS 1.3 (every client connection).
 *
 * All calls are non-blocking. read/write return the byte count, 0 for a
 * clean end of stream (read only), SOTTO_IO_AGAIN when the socket is not
 * ready (io->want_write tells which readiness to wait for) or SOTTO_IO_ERR. */
#ifndef SOTTO_SRV_TRANSPORT_H
#define SOTTO_SRV_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>

#define SOTTO_IO_AGAIN (-1)
#define SOTTO_IO_ERR (-2)

struct sotto__io;

struct sotto__transport {
  const char *name;
  /* 1 when the handshake is complete, SOTTO_IO_AGAIN, or SOTTO_IO_ERR. */
  int (*handshake)(struct sotto__io *io);
  ssize_t (*read)(struct sotto__io *io, void *buf, size_t len);
  ssize_t (*write)(struct sotto__io *io, const void *buf, size_t len);
  /* Bytes already decrypted and buffered inside the transport. */
  int (*pending)(struct sotto__io *io);
  /* Best-effort close_notify; then closes the fd and frees the state. */
  void (*close)(struct sotto__io *io);
};

struct sotto__io {
  const struct sotto__transport *t;
  int fd;
  int want_write; /* last AGAIN was for writability */
  void *ssl;      /* SSL * for TLS */
};

extern const struct sotto__transport sotto__transport_tcp;
extern const struct sotto__transport sotto__transport_tls;

struct ssl_ctx_st;
/* Loads DIR/tls.key and DIR/tls.crt, creating an Ed25519 key and a
 * self-signed certificate (10 years) on first start when may_create (a new
 * server; never next to an existing database, whose clients pinned the old
 * certificate). Writes the SHA-256 fingerprint of the certificate (DER) as
 * 64 hex chars into fp_hex. Returns a TLS-1.3-only server context, or NULL
 * with a message on stderr. */
struct ssl_ctx_st *sotto__tls_server_ctx(const char *dir, char fp_hex[65], int *created, int may_create);
/* `sotto-server new-certificate`: creates DIR/tls.key and DIR/tls.crt and
 * writes the new fingerprint. Returns 0, 1 if DIR/tls.key exists (nothing
 * changed), or -1 (cannot create). */
int sotto__tls_new_identity(const char *dir, char fp_hex[65]);
/* Creates an Ed25519 key (keypath, mode 0600, must not exist) and its
 * self-signed certificate (crtpath). 0 or -1 (nothing left behind). */
int sotto__tls_create_identity(const char *keypath, const char *crtpath);
/* Sets up TLS server state on an accepted fd. Returns 0 or SOTTO_IO_ERR. */
int sotto__tls_accept(struct sotto__io *io, struct ssl_ctx_st *ctx, int fd);
/* Reads the fingerprint of DIR/tls.crt without starting anything. */
int sotto__tls_fingerprint(const char *dir, char fp_hex[65]);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* transport.c: the TCP and TLS 1.3 transports, and the server's TLS identity
 * (an Ed25519 key and a self-signed certificate created on first start). */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "transport.h"

/* ---- TCP ----------------------------------------------------------------- */

static int tcp_handshake(struct sotto__io *io) { return 1; }

static ssize_t tcp_read(struct sotto__io *io, void *buf, size_t len) {
  ssize_t n = recv(io->fd, buf, len, 0);
  if (n >= 0) return n;
  io->want_write = 0;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? SOTTO_IO_AGAIN : SOTTO_IO_ERR;
}

static ssize_t tcp_write(struct sotto__io *io, const void *buf, size_t len) {
  ssize_t n = send(io->fd, buf, len, MSG_NOSIGNAL);
  if (n >= 0) return n;
  io->want_write = 1;
  return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? SOTTO_IO_AGAIN : SOTTO_IO_ERR;
}

static int tcp_pending(struct sotto__io *io) { return 0; }

static void tcp_close(struct sotto__io *io) {
  if (io->fd >= 0) close(io->fd);
  io->fd = -1;
}

const struct sotto__transport sotto__transport_tcp = {"tcp", tcp_handshake, tcp_read, tcp_write,
                                                      tcp_pending, tcp_close};

/* ---- TLS ----------------------------------------------------------------- */

/* Maps an OpenSSL result to AGAIN / ERR and records the wanted direction. */
static int tls_want(struct sotto__io *io, int ret) {
  int e = SSL_get_error(io->ssl, ret);
  if (e == SSL_ERROR_WANT_READ) {
    io->want_write = 0;
    return SOTTO_IO_AGAIN;
  }
  if (e == SSL_ERROR_WANT_WRITE) {
    io->want_write = 1;
    return SOTTO_IO_AGAIN;
  }
  ERR_clear_error();
  return SOTTO_IO_ERR;
}

static int tls_handshake(struct sotto__io *io) {
  int ret = SSL_do_handshake(io->ssl);
  return ret == 1 ? 1 : tls_want(io, ret);
}

static ssize_t tls_read(struct sotto__io *io, void *buf, size_t len) {
  size_t n = 0;
  int ret = SSL_read_ex(io->ssl, buf, len, &n);
  if (ret == 1) return (ssize_t)n;
  if (SSL_get_error(io->ssl, ret) == SSL_ERROR_ZERO_RETURN) return 0;
  return tls_want(io, ret);
}

static ssize_t tls_write(struct sotto__io *io, const void *buf, size_t len) {
  size_t n = 0;
  int ret = SSL_write_ex(io->ssl, buf, len, &n);
  if (ret == 1) return (ssize_t)n;
  return tls_want(io, ret);
}

static int tls_pending(struct sotto__io *io) { return SSL_pending(io->ssl) > 0; }

static void tls_close(struct sotto__io *io) {
  if (io->ssl) {
    (void)SSL_shutdown(io->ssl); /* one non-blocking close_notify, no wait */
    SSL_free(io->ssl);
    ERR_clear_error();
    io->ssl = NULL;
  }
  tcp_close(io);
}

const struct sotto__transport sotto__transport_tls = {"tls", tls_handshake, tls_read, tls_write,
                                                      tls_pending, tls_close};

int sotto__tls_accept(struct sotto__io *io, struct ssl_ctx_st *ctx, int fd) {
  SSL *ssl = SSL_new(ctx);
  if (!ssl || SSL_set_fd(ssl, fd) != 1) {
    SSL_free(ssl);
    ERR_clear_error();
    return SOTTO_IO_ERR;
  }
  SSL_set_accept_state(ssl);
  io->t = &sotto__transport_tls;
  io->fd = fd;
  io->ssl = ssl;
  io->want_write = 0;
  return 0;
}

/* ---- identity -------------------------------------------------------------- */

static int cert_fingerprint(X509 *x, char fp_hex[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0, i;
  if (X509_digest(x, EVP_sha256(), md, &n) != 1 || n != 32) return -1;
  for (i = 0; i < 32; i++) snprintf(fp_hex + 2 * i, 3, "%02x", md[i]);
  return 0;
}

static X509 *load_cert(const char *path) {
  FILE *f = fopen(path, "r");
  X509 *x;
  if (!f) return NULL;
  x = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  return x;
}

int sotto__tls_fingerprint(const char *dir, char fp_hex[65]) {
  char path[4096];
  X509 *x;
  int rc;
  snprintf(path, sizeof path, "%s/tls.crt", dir);
  if ((x = load_cert(path)) == NULL) return -1;
  rc = cert_fingerprint(x, fp_hex);
  X509_free(x);
  return rc;
}

/* Creates the Ed25519 key (mode 0600) and a self-signed certificate. */
static int create_identity(const char *keypath, const char *crtpath) {
  EVP_PKEY *pk = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
  X509 *x = X509_new();
  X509_NAME *name;
  FILE *f = NULL;
  int fd, rc = -1;
  if (!pk || !x) goto out;
  X509_set_version(x, 2);
  {
    unsigned char serial[16];
    BIGNUM *bn;
    if (RAND_bytes(serial, sizeof serial) != 1) goto out;
    serial[0] &= 0x7F;
    bn = BN_bin2bn(serial, sizeof serial, NULL);
    if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
      BN_free(bn);
      goto out;
    }
    BN_free(bn);
  }
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 10L * 365 * 24 * 3600);
  X509_set_pubkey(x, pk);
  name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"sotto-server", -1, -1, 0);
  X509_set_issuer_name(x, name);
  if (X509_sign(x, pk, NULL) <= 0) goto out;

  fd = open(keypath, O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd < 0 || (f = fdopen(fd, "w")) == NULL) {
    if (fd >= 0) close(fd);
    goto out;
  }
  if (PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) != 1) goto out;
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) goto out;
  fclose(f);
  f = NULL;
  if ((f = fopen(crtpath, "w")) == NULL) goto out;
  if (PEM_write_X509(f, x) != 1 || fflush(f) != 0 || fsync(fileno(f)) != 0) goto out;
  rc = 0;
out:
  if (f) fclose(f);
  if (rc != 0) unlink(keypath);
  X509_free(x);
  EVP_PKEY_free(pk);
  return rc;
}

int sotto__tls_create_identity(const char *keypath, const char *crtpath) { return create_identity(keypath, crtpath); }

int sotto__tls_new_identity(const char *dir, char fp_hex[65]) {
  char keypath[4096], crtpath[4096];
  struct stat stb;
  snprintf(keypath, sizeof keypath, "%s/tls.key", dir);
  snprintf(crtpath, sizeof crtpath, "%s/tls.crt", dir);
  if (stat(keypath, &stb) == 0) return 1;
  if (create_identity(keypath, crtpath) != 0) return -1;
  return sotto__tls_fingerprint(dir, fp_hex) == 0 ? 0 : -1;
}

struct ssl_ctx_st *sotto__tls_server_ctx(const char *dir, char fp_hex[65], int *created, int may_create) {
  char keypath[4096], crtpath[4096];
  SSL_CTX *ctx = NULL;
  X509 *x = NULL;
  struct stat stb;
  *created = 0;
  snprintf(keypath, sizeof keypath, "%s/tls.key", dir);
  snprintf(crtpath, sizeof crtpath, "%s/tls.crt", dir);
  if (stat(keypath, &stb) != 0) {
    if (!may_create) {
      fprintf(stderr,
              "sotto-server: %s/sotto.db exists but %s is missing: a new key would be a new certificate "
              "that no client has pinned (every client would refuse it as an impostor). Restore tls.key and "
              "tls.crt from the backup the database came from (`sotto-server backup` copies all three); if the "
              "key is lost for good, run `sotto-server new-certificate --data %s` and give every user the new "
              "fingerprint to re-pin\n",
              dir, keypath, dir);
      return NULL;
    }
    if (create_identity(keypath, crtpath) != 0) {
      fprintf(stderr, "sotto-server: cannot create TLS key in %s (check permissions)\n", dir);
      return NULL;
    }
    *created = 1;
  }
  if ((ctx = SSL_CTX_new(TLS_server_method())) == NULL) goto fail;
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  /* Idle connections hold no 16 KiB record buffers; no session tickets
   * (a reconnect is a fresh handshake plus one hash for AUTH). */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                            SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  /* One read() takes every record that has arrived, not two per record. */
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_num_tickets(ctx, 0);
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
  if (SSL_CTX_use_certificate_file(ctx, crtpath, SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, keypath, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
    fprintf(stderr, "sotto-server: cannot load %s / %s\n", keypath, crtpath);
    goto fail;
  }
  if ((x = load_cert(crtpath)) == NULL || cert_fingerprint(x, fp_hex) != 0) goto fail;
  X509_free(x);
  return ctx;
fail:
  ERR_print_errors_fp(stderr);
  X509_free(x);
  SSL_CTX_free(ctx);
  return NULL;
}

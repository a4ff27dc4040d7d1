/* SPDX-License-Identifier: Apache-2.0 */
/* rotate.c: `sotto-server rotate-certificate` and the rotation chain the
 * server serves (docs/server.md, "Rotating the certificate";
 * docs/protocol-server.md, "Certificate rotation").
 *
 * DIR/rotation.chain holds the chain (proto/rotation.h: u8 count, then the
 * statements in serial order). `rotate-certificate` (prepare; the server may
 * run) makes DIR/next.key and DIR/next.crt and appends a statement signed by
 * the current key DIR/tls.key that names the next certificate; the running
 * server keeps serving the old certificate. `rotate-certificate switch`
 * (server stopped) moves next.* over tls.* (the old private key is gone:
 * nothing needs it any more, the statement is already signed); the next
 * start serves the new certificate and the chain, and every client that
 * pinned an older certificate of the chain re-pins on its next connection. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rotation.h"
#include "server.h"
#include "transport.h"
#include "wire.h"

#define ROT_FILE "rotation.chain"

int sotto_srv_load_chain(const char *dir, uint8_t *out, size_t cap, size_t *len, char *why, size_t why_len) {
  struct sotto_rot_statement st[SOTTO_ROT_MAX_CHAIN];
  char path[4200];
  size_t n = 0, got = 0;
  ssize_t r;
  int fd;
  *len = 0;
  snprintf(path, sizeof path, "%s/%s", dir, ROT_FILE);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
    if (errno != ENOENT) {
      snprintf(why, why_len, "cannot read %s: %s", path, strerror(errno));
      return -1;
    }
    if (cap < 1) return -1;
    out[0] = 0; /* no rotation yet: an empty chain */
    *len = 1;
    return 0;
  }
  while (got < cap && (r = read(fd, out + got, cap - got)) > 0) got += (size_t)r;
  close(fd);
  if (got == cap || sotto__rot_parse_chain(out, got, st, SOTTO_ROT_MAX_CHAIN, &n) != 0) {
    snprintf(why, why_len, "%s is not a rotation chain (damaged?): restore it from the backup", path);
    return -1;
  }
  *len = got;
  return 0;
}

/* The raw Ed25519 public key and SHA-256 fingerprint of a PEM certificate. */
static int cert_key_fp(const char *path, uint8_t key[32], uint8_t fp[32]) {
  FILE *f = fopen(path, "r");
  X509 *x = NULL;
  EVP_PKEY *pk;
  size_t kl = 32;
  unsigned int n = 0;
  int rc = -1;
  if (!f) return -1;
  x = PEM_read_X509(f, NULL, NULL, NULL);
  fclose(f);
  if (!x) goto out;
  if (X509_digest(x, EVP_sha256(), fp, &n) != 1 || n != 32) goto out;
  if ((pk = X509_get0_pubkey(x)) == NULL || EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519 ||
      EVP_PKEY_get_raw_public_key(pk, key, &kl) != 1 || kl != 32)
    goto out;
  rc = 0;
out:
  X509_free(x);
  ERR_clear_error();
  return rc;
}

static int sign_statement(const char *keypath, struct sotto_rot_statement *s) {
  uint8_t tbs[SOTTO_ROT_TBS_LEN];
  EVP_MD_CTX *md = NULL;
  EVP_PKEY *pk = NULL;
  size_t sl = SOTTO_ROT_SIG_LEN;
  FILE *f = fopen(keypath, "r");
  int rc = -1;
  if (!f) return -1;
  pk = PEM_read_PrivateKey(f, NULL, NULL, NULL);
  fclose(f);
  if (!pk || EVP_PKEY_get_base_id(pk) != EVP_PKEY_ED25519) goto out;
  sotto__rot_tbs(tbs, s);
  if ((md = EVP_MD_CTX_new()) == NULL || EVP_DigestSignInit(md, NULL, NULL, NULL, pk) != 1 ||
      EVP_DigestSign(md, s->sig, &sl, tbs, sizeof tbs) != 1 || sl != SOTTO_ROT_SIG_LEN)
    goto out;
  rc = sotto__rot_check_sig(s) == 0 ? 0 : -1; /* what every client will check */
out:
  EVP_MD_CTX_free(md);
  EVP_PKEY_free(pk);
  ERR_clear_error();
  return rc;
}

/* Writes the chain to DIR/rotation.chain through a temporary file. */
static int write_chain(const char *dir, const struct sotto_rot_statement *st, size_t n) {
  uint8_t buf[SOTTO_ROT_CHAIN_MAX_LEN];
  char tmp[4200], path[4200];
  struct sotto__wr w;
  int fd;
  sotto__wr_init(&w, buf, sizeof buf);
  sotto__rot_put_chain(&w, st, n);
  if (w.err) return -1;
  snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, ROT_FILE);
  snprintf(path, sizeof path, "%s/%s", dir, ROT_FILE);
  unlink(tmp);
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644)) < 0) return -1;
  if (write(fd, buf, w.len) != (ssize_t)w.len || fsync(fd) != 0) {
    close(fd);
    unlink(tmp);
    return -1;
  }
  close(fd);
  if (rename(tmp, path) != 0) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

static void hex(char out[65], const uint8_t b[32]) {
  int i;
  for (i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* 1 if a sotto-server holds DIR's lock (runs on DIR). */
static int running(const char *dir) {
  char path[4200];
  int fd, busy = 0;
  snprintf(path, sizeof path, "%s/sotto.lock", dir);
  if ((fd = open(path, O_RDWR | O_CLOEXEC)) >= 0) {
    busy = flock(fd, LOCK_EX | LOCK_NB) != 0;
    close(fd);
  }
  return busy;
}

int sotto_srv_rotate_prepare(const char *dir, int64_t valid_days, FILE *out) {
  struct sotto_rot_statement st[SOTTO_ROT_MAX_CHAIN + 1], *s;
  uint8_t raw[SOTTO_ROT_CHAIN_MAX_LEN], cur_fp[32];
  char key[4200], crt[4200], nkey[4200], ncrt[4200], why[4400], fph[65];
  struct stat sb;
  size_t len, n = 0, i, kept = 0;
  uint64_t now = (uint64_t)time(NULL), last = 0;

  if (valid_days < 1 || valid_days > 365) {
    fprintf(stderr, "sotto-server: --valid-days must be 1..365\n");
    return 2;
  }
  snprintf(key, sizeof key, "%s/tls.key", dir);
  snprintf(crt, sizeof crt, "%s/tls.crt", dir);
  snprintf(nkey, sizeof nkey, "%s/next.key", dir);
  snprintf(ncrt, sizeof ncrt, "%s/next.crt", dir);
  if (stat(nkey, &sb) == 0) {
    fprintf(stderr,
            "sotto-server: a rotation is prepared already (%s exists): finish it with `sotto-server "
            "rotate-certificate --data %s switch` (server stopped)\n",
            nkey, dir);
    return 1;
  }
  if (sotto_srv_load_chain(dir, raw, sizeof raw, &len, why, sizeof why) != 0) {
    fprintf(stderr, "sotto-server: %s\n", why);
    return 1;
  }
  if (sotto__rot_parse_chain(raw, len, st, SOTTO_ROT_MAX_CHAIN, &n) != 0) return 1;
  /* Expired statements help nobody (clients refuse them): dropped. */
  for (i = 0; i < n; i++) {
    if (st[i].serial > last) last = st[i].serial;
    if (st[i].not_after >= now) st[kept++] = st[i];
  }
  n = kept;
  if (n >= SOTTO_ROT_MAX_CHAIN) {
    fprintf(stderr, "sotto-server: %s/%s holds %d unexpired statements already (the most a client takes)\n", dir,
            ROT_FILE, SOTTO_ROT_MAX_CHAIN);
    return 1;
  }
  s = &st[n];
  memset(s, 0, sizeof *s);
  s->version = SOTTO_ROT_VERSION;
  s->serial = last + 1;
  s->not_before = now - 3600; /* clients whose clocks run a little late */
  s->not_after = now + (uint64_t)valid_days * 86400;
  if (cert_key_fp(crt, s->old_key, cur_fp) != 0) {
    fprintf(stderr, "sotto-server: cannot read the Ed25519 certificate %s (is --data right?)\n", crt);
    return 1;
  }
  if (sotto__tls_create_identity(nkey, ncrt) != 0 || cert_key_fp(ncrt, s->new_key, s->new_fp) != 0) {
    fprintf(stderr, "sotto-server: cannot create %s and %s (is %s writable?)\n", nkey, ncrt, dir);
    unlink(nkey);
    unlink(ncrt);
    return 1;
  }
  if (sign_statement(key, s) != 0 || write_chain(dir, st, n + 1) != 0) {
    fprintf(stderr, "sotto-server: cannot sign with %s or write %s/%s\n", key, dir, ROT_FILE);
    unlink(nkey);
    unlink(ncrt);
    return 1;
  }
  hex(fph, s->new_fp);
  fprintf(out,
          "next fingerprint %s (statement %llu, valid %lld days, signed by the current key)\n"
          "the server keeps serving the current certificate; when ready, stop it, run `sotto-server "
          "rotate-certificate --data %s switch` and start it again: clients re-pin by themselves on their next "
          "connection (an offline client within %lld days). Back up %s and %s/%s now.\n",
          fph, (unsigned long long)s->serial, (long long)valid_days, dir, (long long)valid_days, dir, dir,
          ROT_FILE);
  return 0;
}

int sotto_srv_rotate_switch(const char *dir, FILE *out) {
  struct sotto_rot_statement st[SOTTO_ROT_MAX_CHAIN];
  uint8_t raw[SOTTO_ROT_CHAIN_MAX_LEN], key[32], fp[32];
  char tkey[4200], tcrt[4200], nkey[4200], ncrt[4200], why[4400], fph[65];
  size_t len, n = 0;
  snprintf(tkey, sizeof tkey, "%s/tls.key", dir);
  snprintf(tcrt, sizeof tcrt, "%s/tls.crt", dir);
  snprintf(nkey, sizeof nkey, "%s/next.key", dir);
  snprintf(ncrt, sizeof ncrt, "%s/next.crt", dir);
  if (running(dir)) {
    fprintf(stderr, "sotto-server: a sotto-server is running on %s: stop it first, then switch and start it\n", dir);
    return 1;
  }
  if (cert_key_fp(ncrt, key, fp) != 0) {
    fprintf(stderr, "sotto-server: no prepared rotation in %s (run `sotto-server rotate-certificate --data %s` first)\n",
            dir, dir);
    return 1;
  }
  if (sotto_srv_load_chain(dir, raw, sizeof raw, &len, why, sizeof why) != 0 ||
      sotto__rot_parse_chain(raw, len, st, SOTTO_ROT_MAX_CHAIN, &n) != 0 || n == 0 ||
      memcmp(st[n - 1].new_fp, fp, 32) != 0 || memcmp(st[n - 1].new_key, key, 32) != 0) {
    fprintf(stderr, "sotto-server: %s/%s does not end with a statement for %s: prepare the rotation again\n", dir,
            ROT_FILE, ncrt);
    return 1;
  }
  /* The key first: a crash between the two renames leaves next.crt, and
   * running switch again finishes (the key check below passes). */
  if (access(nkey, F_OK) == 0 && rename(nkey, tkey) != 0) {
    fprintf(stderr, "sotto-server: cannot move %s to %s: %s\n", nkey, tkey, strerror(errno));
    return 1;
  }
  if (rename(ncrt, tcrt) != 0) {
    fprintf(stderr, "sotto-server: cannot move %s to %s: %s\n", ncrt, tcrt, strerror(errno));
    return 1;
  }
  hex(fph, fp);
  fprintf(out,
          "switched: fingerprint %s (statement %llu); the old private key is gone. Start the server: clients "
          "re-pin on their next connection.\n",
          fph, (unsigned long long)st[n - 1].serial);
  return 0;
}

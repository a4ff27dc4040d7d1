/* SPDX-License-Identifier: Apache-2.0 */
/* backup.c: the encrypted backup of a client home and its restore, the
 * passphrase change, and the passphrase strength rule (sotto_client.h,
 * docs/client.md "Backup and restore", "Passphrases"). The file format is
 * in backup.h. */
#include "backup.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "account.h"
#include "core.h"
#include "record.h"

#define BACKUP_AD "sotto-backup-v1"
#define RK_CHECK_KEY "sotto-recovery-key-check"

/* ---- the format (pure, bounded) ----------------------------------------- */

static uint32_t get32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}
static void put32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}

int backup_parse_header(const uint8_t *p, size_t len, struct backup_hdr *h) {
  if (len < BACKUP_HDR_LEN + BACKUP_TAG_LEN || len > BACKUP_MAX_FILE) return -1;
  if (memcmp(p, BACKUP_MAGIC, 8) != 0 || p[8] != BACKUP_VERSION) return -1;
  if (p[9] != BACKUP_KIND_PASSPHRASE && p[9] != BACKUP_KIND_RECOVERY_KEY) return -1;
  if (p[10] != 0 || p[11] != 0) return -1;
  h->kind = p[9];
  h->opslimit = get32(p + 12);
  h->mem_kib = get32(p + 16);
  if (h->opslimit < 1 || h->opslimit > BACKUP_MAX_OPSLIMIT || h->mem_kib < BACKUP_MIN_MEM_KIB * 1024 ||
      h->mem_kib > BACKUP_MAX_MEM_KIB)
    return -1;
  memcpy(h->salt, p + 20, BACKUP_SALT_LEN);
  memcpy(h->nonce, p + 20 + BACKUP_SALT_LEN, BACKUP_NONCE_LEN);
  return 0;
}

void backup_put_header(uint8_t out[BACKUP_HDR_LEN], const struct backup_hdr *h) {
  memcpy(out, BACKUP_MAGIC, 8);
  out[8] = BACKUP_VERSION;
  out[9] = h->kind;
  out[10] = out[11] = 0;
  put32(out + 12, h->opslimit);
  put32(out + 16, h->mem_kib);
  memcpy(out + 20, h->salt, BACKUP_SALT_LEN);
  memcpy(out + 20 + BACKUP_SALT_LEN, h->nonce, BACKUP_NONCE_LEN);
}

int backup_parse_records(const uint8_t *pt, size_t len, uint64_t *created_ms, char *username, size_t cap,
                         int (*cb)(void *ud, const char *name, const uint8_t *val, size_t vlen), void *ud) {
  struct rec_rd r;
  uint32_t count, i, vlen;
  const uint8_t *np, *vp;
  size_t nl;
  char name[STORE_MAX_NAME + 1];
  int rc;

  rec_rd_init(&r, pt, len);
  if (rec_get_u64(&r, created_ms) || rec_get_cstr(&r, username, cap) || rec_get_u32(&r, &count)) return -1;
  if (count > BACKUP_MAX_RECORDS) return -1;
  for (i = 0; i < count; i++) {
    if (rec_get_str16(&r, &np, &nl, STORE_MAX_NAME) || nl == 0 || memchr(np, 0, nl) ||
        rec_get_u32(&r, &vlen) || vlen > STORE_MAX_VALUE || rec_get_ptr(&r, &vp, vlen))
      return -1;
    if (cb) {
      memcpy(name, np, nl);
      name[nl] = 0;
      if ((rc = cb(ud, name, vp, vlen)) != 0) return rc;
    }
  }
  return rec_rd_end(&r);
}

static void rk_check(uint8_t out[BACKUP_RK_CHECK], const uint8_t secret[BACKUP_RK_RANDOM]) {
  uint8_t h[16];
  crypto_generichash(h, sizeof h, secret, BACKUP_RK_RANDOM, (const uint8_t *)RK_CHECK_KEY,
                     sizeof RK_CHECK_KEY - 1);
  memcpy(out, h, BACKUP_RK_CHECK);
}

void backup_rk_new(char text[BACKUP_RK_TEXT_LEN + 1], uint8_t secret[BACKUP_RK_RANDOM]) {
  static const char hex[] = "0123456789abcdef";
  uint8_t all[BACKUP_RK_RANDOM + BACKUP_RK_CHECK];
  size_t i, o = 0;
  randombytes_buf(secret, BACKUP_RK_RANDOM);
  memcpy(all, secret, BACKUP_RK_RANDOM);
  rk_check(all + BACKUP_RK_RANDOM, secret);
  for (i = 0; i < sizeof all; i++) {
    if (i > 0 && i % 2 == 0) text[o++] = '-';
    text[o++] = hex[all[i] >> 4];
    text[o++] = hex[all[i] & 15];
  }
  text[o] = 0;
  sodium_memzero(all, sizeof all);
}

int backup_rk_parse(uint8_t secret[BACKUP_RK_RANDOM], const char *text, size_t len) {
  uint8_t all[BACKUP_RK_RANDOM + BACKUP_RK_CHECK], chk[BACKUP_RK_CHECK];
  size_t i, nd = 0;
  int rc = 0;
  memset(all, 0, sizeof all);
  for (i = 0; i < len; i++) {
    char ch = text[i];
    int v;
    if (ch == '-' || ch == ' ') continue;
    if (ch >= '0' && ch <= '9')
      v = ch - '0';
    else if (ch >= 'a' && ch <= 'f')
      v = ch - 'a' + 10;
    else if (ch >= 'A' && ch <= 'F')
      v = ch - 'A' + 10;
    else
      return -1;
    if (nd >= 2 * sizeof all) return -1;
    all[nd / 2] = (uint8_t)(all[nd / 2] | (nd % 2 ? v : v << 4));
    nd++;
  }
  if (nd != 2 * sizeof all) {
    rc = -1;
  } else {
    rk_check(chk, all);
    if (sodium_memcmp(chk, all + BACKUP_RK_RANDOM, BACKUP_RK_CHECK) != 0)
      rc = -2;
    else
      memcpy(secret, all, BACKUP_RK_RANDOM);
  }
  sodium_memzero(all, sizeof all);
  return rc;
}

/* ---- passphrase strength -------------------------------------------------- */

/* Words that make up the most common passwords; a passphrase made only of
 * these (and digits or punctuation) is refused, however long. */
static const char *const COMMON[] = {
    "password", "passw0rd", "passphrase", "qwertyuiop", "qwerty",   "asdfghjkl", "asdf",
    "zxcvbnm",  "azerty",   "letmein",    "iloveyou",   "welcome",  "admin",     "administrator",
    "login",    "master",   "monkey",     "dragon",     "football", "baseball",  "sunshine",
    "princess", "shadow",   "secret",     "trustno1",   "abc",      "abcdef",    "abcdefghijklmnopqrstuvwxyz",
    "hello",    "changeme", "default",    "test",       "sotto",    "user",      "root",
    "love"};

int sc_passphrase_strength(char *why, size_t cap, const char *pass, size_t len) {
  size_t i, chars = 0, distinct = 0, left = 0;
  uint8_t seen[256];
  char low[SC_MAX_PASSPHRASE];

  if (cap) why[0] = 0;
  if (!pass || len == 0 || len >= SC_MAX_PASSPHRASE) {
    snprintf(why, cap, "it is empty or longer than %d bytes", SC_MAX_PASSPHRASE - 1);
    return SC_ERR_WEAK_PASSPHRASE;
  }
  memset(seen, 0, sizeof seen);
  for (i = 0; i < len; i++) {
    unsigned char ch = (unsigned char)pass[i];
    if ((ch & 0xc0) != 0x80) chars++; /* UTF-8: count characters, not bytes */
    if (!seen[ch]) distinct++;
    seen[ch] = 1;
  }
  if (chars < SC_PASSPHRASE_MIN_CHARS) {
    snprintf(why, cap, "it has %zu characters; use at least %d (a few unrelated words are easy to remember)",
             chars, SC_PASSPHRASE_MIN_CHARS);
    return SC_ERR_WEAK_PASSPHRASE;
  }
  if (distinct < SC_PASSPHRASE_MIN_DISTINCT) {
    snprintf(why, cap, "it uses only %zu different characters; use at least %d", distinct,
             SC_PASSPHRASE_MIN_DISTINCT);
    return SC_ERR_WEAK_PASSPHRASE;
  }
  /* Lower-case letters only, then strip common words: what is left must
   * still be at least 4 letters. */
  for (i = 0; i < len; i++) {
    char ch = pass[i];
    if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
    if ((ch >= 'a' && ch <= 'z') || (unsigned char)ch >= 0x80) low[left++] = ch;
  }
  for (i = 0; i < left;) {
    size_t w, best = 0;
    for (w = 0; w < sizeof COMMON / sizeof COMMON[0]; w++) {
      size_t wl = strlen(COMMON[w]);
      if (wl > best && wl <= left - i && memcmp(low + i, COMMON[w], wl) == 0) best = wl;
    }
    if (best) {
      memmove(low + i, low + i + best, left - i - best);
      left -= best;
    } else {
      i++;
    }
  }
  sodium_memzero(low, sizeof low);
  if (left < 4) {
    snprintf(why, cap, "it is built from common passwords, digits and symbols; choose words of your own");
    return SC_ERR_WEAK_PASSPHRASE;
  }
  return 0;
}

int sc__strong_pass(struct sc_client *c, const char *pass, size_t len, const char *what) {
  char why[160];
  if (sc_passphrase_strength(why, sizeof why, pass, len) == 0) return 0;
  return sc__fail(c, SC_ERR_WEAK_PASSPHRASE, "this %s is too weak: %s; nothing was changed", what, why);
}

/* ---- passphrase change ------------------------------------------------------ */

int sc_change_passphrase(struct sc_client *c, const char *pass, size_t len) {
  int rc;
  if ((rc = sc__need_open(c))) return rc;
  if ((rc = sc__strong_pass(c, pass, len, "new passphrase"))) return rc;
  if ((rc = store_rekey(c->st, pass, len)) != 0) return sc__store_error(c, rc);
  return 0;
}

/* ---- backup ---------------------------------------------------------------- */

struct dump {
  struct rec_wr w;
  size_t size;
  uint32_t count;
  int measuring;
};

static int dump_cb(void *ud, const char *name, const uint8_t *val, size_t len) {
  struct dump *d = ud;
  size_t nl = strlen(name);
  if (d->measuring) {
    d->size += 2 + nl + 4 + len;
    d->count++;
    return d->count > BACKUP_MAX_RECORDS || d->size > BACKUP_MAX_FILE ? STORE_E_IO : 0;
  }
  rec_put_str16(&d->w, name, nl);
  rec_put_u32(&d->w, (uint32_t)len);
  rec_put(&d->w, val, len);
  return rec_wr_ok(&d->w) ? STORE_E_IO : 0;
}

static int derive_key(uint8_t key[32], const struct backup_hdr *h, const uint8_t *secret, size_t len) {
  return crypto_pwhash(key, 32, (const char *)secret, len, h->salt, h->opslimit, (size_t)h->mem_kib * 1024,
                       crypto_pwhash_ALG_ARGON2ID13);
}

/* Writes path atomically: path.tmp (exclusive, 0600), fsync, rename,
 * fsync of the directory. On failure nothing is left behind. */
static int write_atomic(struct sc_client *c, const char *path, const uint8_t *a, size_t an, const uint8_t *b,
                        size_t bn) {
  char tmp[PATH_MAX], dir[PATH_MAX], *slash;
  const uint8_t *parts[2] = {a, b};
  size_t lens[2] = {an, bn}, i, off;
  int fd, dfd;
  if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp)
    return sc__fail(c, SC_ERR_ARG, "the backup path is too long");
  unlink(tmp); /* a leftover of an earlier crash */
  if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0)
    return sc__fail(c, SC_ERR_STORE, "cannot create %s: %s", tmp, strerror(errno));
  for (i = 0; i < 2; i++) {
    for (off = 0; off < lens[i];) {
      ssize_t n = write(fd, parts[i] + off, lens[i] - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) goto fail;
      off += (size_t)n;
    }
  }
  if (fsync(fd) != 0) goto fail;
  if (close(fd) != 0) {
    fd = -1;
    goto fail;
  }
  fd = -1;
  if (rename(tmp, path) != 0) goto fail;
  snprintf(dir, sizeof dir, "%s", path);
  if ((slash = strrchr(dir, '/'))) {
    if (slash == dir)
      slash[1] = 0;
    else
      *slash = 0;
  } else {
    snprintf(dir, sizeof dir, ".");
  }
  if ((dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
    (void)fsync(dfd);
    close(dfd);
  }
  return 0;
fail : {
  int e = errno;
  if (fd >= 0) close(fd);
  unlink(tmp);
  return sc__fail(c, SC_ERR_STORE, "cannot write %s: %s; nothing was written", path, strerror(e));
}
}

int sc_recovery_key_new(char key[SC_RECOVERY_KEY_LEN + 1]) {
  uint8_t secret[BACKUP_RK_RANDOM];
  backup_rk_new(key, secret);
  sodium_memzero(secret, sizeof secret);
  return 0;
}

/* The bytes a secret stands for: a passphrase as typed, a recovery key as
 * its 30 random bytes (after its check). */
static int backup_secret(struct sc_client *c, uint8_t *out, size_t *out_len, const char *secret, size_t len,
                         int kind) {
  int rc;
  if (kind == BACKUP_KIND_RECOVERY_KEY) {
    if ((rc = backup_rk_parse(out, secret, len)) == -2)
      return sc__fail(
          c, SC_ERR_PASSPHRASE,
          "the recovery key has a typo (its check digits do not match); compare it with the printed one");
    if (rc)
      return sc__fail(c, SC_ERR_PASSPHRASE, "a recovery key is 64 hex digits (groups of 4 joined by '-')");
    *out_len = BACKUP_RK_RANDOM;
    return 0;
  }
  if (!secret || len == 0 || len >= SC_MAX_PASSPHRASE)
    return sc__fail(c, SC_ERR_PASSPHRASE, "the backup passphrase is empty or too long");
  memcpy(out, secret, len);
  *out_len = len;
  return 0;
}

int sc_backup(struct sc_client *c, const char *path, const char *secret, size_t len, int recovery_key) {
  struct dump d;
  struct backup_hdr h;
  uint8_t hdr[BACKUP_HDR_LEN], *key = NULL, *sec = NULL, *ct = NULL;
  size_t sec_len = 0, ct_len = 0;
  unsigned long long clen;
  int rc, kind = recovery_key ? BACKUP_KIND_RECOVERY_KEY : BACKUP_KIND_PASSPHRASE;

  memset(&d, 0, sizeof d);
  if ((rc = sc__need_open(c))) return rc;
  if (!path || !*path) return sc__fail(c, SC_ERR_ARG, "no backup file given");
  if (!recovery_key && (rc = sc__strong_pass(c, secret, len, "backup passphrase"))) return rc;
  if (!(key = sodium_malloc(32)) || !(sec = sodium_malloc(SC_MAX_PASSPHRASE))) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = backup_secret(c, sec, &sec_len, secret, len, kind))) goto out;
  /* One write transaction holds the store still between the two scans. */
  if ((rc = store_begin(c->st)) != 0) {
    rc = sc__store_error(c, rc);
    goto out;
  }
  d.measuring = 1;
  rc = store_scan(c->st, "", dump_cb, &d);
  if (!rc) {
    d.size += 8 + 2 + strlen(c->acct->username) + 4;
    if (d.size > BACKUP_MAX_FILE - BACKUP_HDR_LEN - BACKUP_TAG_LEN) rc = STORE_E_IO;
  }
  if (!rc) {
    rec_wr_init(&d.w, d.size);
    rec_put_u64(&d.w, sc_now_ms());
    rec_put_str16(&d.w, c->acct->username, strlen(c->acct->username));
    rec_put_u32(&d.w, d.count);
    d.measuring = 0;
    rc = store_scan(c->st, "", dump_cb, &d);
    if (!rc && (rec_wr_ok(&d.w) || d.w.len != d.size)) rc = STORE_E_IO;
  }
  store_rollback(c->st);
  if (rc) {
    rc = rc == STORE_E_IO && d.size > BACKUP_MAX_FILE / 2
             ? sc__fail(c, SC_ERR_TOO_LARGE, "the store is too large for one backup file (at most %u MiB)",
                        BACKUP_MAX_FILE >> 20)
             : sc__store_error(c, rc);
    goto out;
  }
  memset(&h, 0, sizeof h);
  h.kind = (uint8_t)kind;
  h.opslimit = (uint32_t)store_opslimit();
  h.mem_kib = (uint32_t)(store_memlimit() / 1024);
  randombytes_buf(h.salt, sizeof h.salt);
  randombytes_buf(h.nonce, sizeof h.nonce);
  backup_put_header(hdr, &h);
  if (derive_key(key, &h, sec, sec_len) != 0) {
    rc = sc__fail(c, SC_ERR_NOMEM, "key derivation failed (out of memory?)");
    goto out;
  }
  ct_len = d.w.len + BACKUP_TAG_LEN;
  if (!(ct = malloc(ct_len))) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &clen, d.w.p, d.w.len, hdr, sizeof hdr, NULL, h.nonce, key);
  rc = write_atomic(c, path, hdr, sizeof hdr, ct, (size_t)clen);
out:
  rec_wr_free(&d.w);
  free(ct);
  if (key) sodium_free(key);
  if (sec) sodium_free(sec);
  return rc;
}

/* ---- restore ---------------------------------------------------------------- */

/* Reads the whole file (at most BACKUP_MAX_FILE bytes) into *buf. */
static int read_file(struct sc_client *c, const char *path, uint8_t **buf, size_t *len) {
  struct stat sb;
  size_t off = 0;
  int fd;
  *buf = NULL;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
    return sc__fail(c, SC_ERR_ARG, "cannot open the backup file %s: %s", path, strerror(errno));
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return sc__fail(c, SC_ERR_ARG, "%s is not a regular file", path);
  }
  if ((unsigned long long)sb.st_size > BACKUP_MAX_FILE || sb.st_size < BACKUP_HDR_LEN + BACKUP_TAG_LEN) {
    close(fd);
    return sc__fail(c, SC_ERR_BACKUP_FORMAT, "%s is not a sotto backup file (size %lld bytes)", path,
                    (long long)sb.st_size);
  }
  if (!(*buf = malloc((size_t)sb.st_size))) {
    close(fd);
    return sc__fail(c, SC_ERR_NOMEM, "out of memory");
  }
  while (off < (size_t)sb.st_size) {
    ssize_t n = read(fd, *buf + off, (size_t)sb.st_size - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    off += (size_t)n;
  }
  close(fd);
  if (off != (size_t)sb.st_size) {
    free(*buf);
    *buf = NULL;
    return sc__fail(c, SC_ERR_STORE, "cannot read %s", path);
  }
  *len = off;
  return 0;
}

int sc_backup_kind(struct sc_client *c, const char *path) {
  struct backup_hdr h;
  uint8_t *buf;
  size_t len;
  int rc;
  if ((rc = read_file(c, path, &buf, &len))) return rc;
  rc = backup_parse_header(buf, len, &h);
  free(buf);
  if (rc)
    return sc__fail(c, SC_ERR_BACKUP_FORMAT,
                    "%s is not a sotto backup file (or of a newer version this sotto cannot read)", path);
  return h.kind == BACKUP_KIND_RECOVERY_KEY ? SC_BACKUP_RECOVERY_KEY : SC_BACKUP_PASSPHRASE;
}

struct restore_ctx {
  struct store *st;
  int sessions;
};

static int restore_cb(void *ud, const char *name, const uint8_t *val, size_t len) {
  struct restore_ctx *r = ud;
  if (strncmp(name, "session/", 8) == 0) r->sessions++;
  return store_put(r->st, name, val, len);
}

static void remove_tmp(const char *tmpdir) {
  char p[PATH_MAX + 32];
  snprintf(p, sizeof p, "%s/%s", tmpdir, STORE_FILE);
  unlink(p);
  snprintf(p, sizeof p, "%s/%s-journal", tmpdir, STORE_FILE);
  unlink(p);
  rmdir(tmpdir);
}

/* A restore that crashed leaves its HOME/.restore.* directory: removed by
 * the next restore, which holds the home (no other restore runs). */
static void remove_stale_restores(const char *home) {
  char p[PATH_MAX];
  struct dirent *e;
  DIR *d = opendir(home);
  if (!d) return;
  while ((e = readdir(d)) != NULL) {
    if (strncmp(e->d_name, ".restore.", 9) != 0 || strchr(e->d_name, '/')) continue;
    if ((size_t)snprintf(p, sizeof p, "%s/%s", home, e->d_name) >= sizeof p) continue;
    remove_tmp(p);
  }
  closedir(d);
}

int sc_restore(struct sc_client *c, const char *path, const char *secret, size_t len, const char *pass,
               size_t pass_len, unsigned flags, char *username, size_t cap) {
  struct backup_hdr h;
  struct restore_ctx r;
  struct store *st = NULL, *saved_st;
  struct account *a = NULL, *saved_acct;
  uint8_t *buf = NULL, *pt = NULL, *key = NULL, *sec = NULL;
  size_t buf_len = 0, sec_len = 0;
  unsigned long long pt_len = 0;
  uint64_t created;
  char tmpdir[PATH_MAX], src[PATH_MAX + 32], dst[PATH_MAX + 32], err[256] = "", user[SC_USER_MAX + 1];
  int rc, fd, made = 0, held = 0;

  if (cap) username[0] = 0;
  if (c->st) return sc__fail(c, SC_ERR_ARG, "restore into a home whose store is open");
  if (!(flags & SC_RESTORE_FORCE) && sc_store_exists(c))
    return sc__fail(
        c, SC_ERR_EXISTS,
        "%s already holds a sotto identity; restore into another --home, or pass --force to replace "
        "it (its identity and history are then lost)",
        c->home);
  if ((rc = sc_home_in_use(c))) return rc;
  if ((rc = sc__strong_pass(c, pass, pass_len, "store passphrase"))) return rc;
  if ((rc = read_file(c, path, &buf, &buf_len))) return rc;
  if (backup_parse_header(buf, buf_len, &h) != 0) {
    rc = sc__fail(
        c, SC_ERR_BACKUP_FORMAT,
        "%s is not a sotto backup file (or of a newer version this sotto cannot read); nothing was changed",
        path);
    goto out;
  }
  if (!(key = sodium_malloc(32)) || !(sec = sodium_malloc(SC_MAX_PASSPHRASE)) ||
      !(pt = malloc(buf_len - BACKUP_HDR_LEN))) {
    rc = sc__fail(c, SC_ERR_NOMEM, "out of memory");
    goto out;
  }
  if ((rc = backup_secret(c, sec, &sec_len, secret, len, h.kind))) goto out;
  if (derive_key(key, &h, sec, sec_len) != 0) {
    rc = sc__fail(c, SC_ERR_NOMEM, "key derivation failed (out of memory?)");
    goto out;
  }
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &pt_len, NULL, buf + BACKUP_HDR_LEN,
                                                 buf_len - BACKUP_HDR_LEN, buf, BACKUP_HDR_LEN, h.nonce,
                                                 key) != 0) {
    rc = sc__fail(c, SC_ERR_BACKUP_AUTH,
                  "cannot open %s: wrong %s, or the file was altered or damaged; nothing was changed", path,
                  h.kind == BACKUP_KIND_RECOVERY_KEY ? "recovery key" : "backup passphrase");
    goto out;
  }
  /* Parse the whole plaintext before anything is written. */
  if (backup_parse_records(pt, (size_t)pt_len, &created, user, sizeof user, NULL, NULL) != 0) {
    rc = sc__fail(c, SC_ERR_BACKUP_FORMAT, "%s opens but its contents are malformed; nothing was changed",
                  path);
    goto out;
  }
  if (sc__make_dirs(c->home) != 0) {
    rc = sc__fail(c, SC_ERR_HOME, "cannot create %s: %s", c->home, strerror(errno));
    goto out;
  }
  /* The home is held from here to the end: no daemon, chat or second
   * restore opens or replaces the store meanwhile. */
  if (c->hold_fd < 0) {
    if ((rc = sc_hold_home(c, "sotto restore"))) goto out;
    held = 1;
  }
  remove_stale_restores(c->home);
  /* A new store beside the home's, filled in one transaction, then renamed
   * over HOME/sotto.db: the home holds the old store or the new one, never
   * a mix. */
  if ((size_t)snprintf(tmpdir, sizeof tmpdir, "%s/.restore.XXXXXX", c->home) >= sizeof tmpdir ||
      !mkdtemp(tmpdir)) {
    rc = sc__fail(c, SC_ERR_HOME, "cannot create a directory in %s: %s", c->home, strerror(errno));
    goto out;
  }
  made = 1;
  if ((rc = store_create(&st, tmpdir, pass, pass_len, err, sizeof err)) != 0) {
    rc = sc__fail(c, SC_ERR_STORE, "cannot create the restored store: %s", err);
    goto out;
  }
  memset(&r, 0, sizeof r);
  r.st = st;
  if ((rc = store_begin(st)) != 0 ||
      (rc = backup_parse_records(pt, (size_t)pt_len, &created, user, sizeof user, restore_cb, &r)) != 0)
    goto store_fail;
  if ((rc = account_load(st, &a)) != 0) {
    store_rollback(st);
    rc = sc__fail(c, SC_ERR_BACKUP_FORMAT, "%s holds no usable identity; nothing was changed", path);
    goto out;
  }
  /* Sessions are not restored live: each gets a fresh start at its next
   * message (as for a store found restored from a copy, conn.c), and the
   * signed and last-resort pre-keys are replaced at the next connection.
   * The new store's device epoch is 0, so the server's (higher) epoch also
   * flags it as restored at that connection. */
  a->spk_created = 0;
  a->lr_created = 0;
  saved_st = c->st;
  saved_acct = c->acct;
  c->st = st;
  c->acct = a;
  rc = sc__rekey_all(c);
  c->st = saved_st;
  c->acct = saved_acct;
  if (rc || (rc = account_save(st, a)) || (rc = store_commit(st))) goto store_fail;
  store_close(st);
  st = NULL;
  snprintf(src, sizeof src, "%s/%s", tmpdir, STORE_FILE);
  snprintf(dst, sizeof dst, "%s/%s", c->home, STORE_FILE);
  if ((fd = open(src, O_RDONLY | O_CLOEXEC)) < 0 || fsync(fd) != 0) {
    if (fd >= 0) close(fd);
    rc = sc__fail(c, SC_ERR_STORE, "cannot sync the restored store: %s", strerror(errno));
    goto out;
  }
  close(fd);
  /* A journal of the replaced store must not be applied to the new one. */
  snprintf(src, sizeof src, "%s/%s-journal", c->home, STORE_FILE);
  unlink(src);
  snprintf(src, sizeof src, "%s/%s", tmpdir, STORE_FILE);
  if (rename(src, dst) != 0) {
    rc = sc__fail(c, SC_ERR_STORE, "cannot move the restored store into place: %s", strerror(errno));
    goto out;
  }
  if ((fd = open(c->home, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
    (void)fsync(fd);
    close(fd);
  }
  snprintf(username, cap, "%s", user);
  rc = 0;
  goto out;
store_fail:
  store_rollback(st);
  rc = sc__fail(c, SC_ERR_STORE, "cannot write the restored store: %s", store_errmsg(st));
out:
  if (st) store_close(st);
  if (made) remove_tmp(tmpdir);
  if (held) {
    close(c->hold_fd); /* releases the lock */
    c->hold_fd = -1;
  }
  if (a) account_free(a);
  if (pt) {
    sodium_memzero(pt, buf_len - BACKUP_HDR_LEN);
    free(pt);
  }
  free(buf);
  if (key) sodium_free(key);
  if (sec) sodium_free(sec);
  return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* store.c: the sealed SQLite store (see store.h and docs/client.md). */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY_LEN 32
#define ROW_LEN 32
#define NONCE_LEN crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define TAG_LEN crypto_aead_xchacha20poly1305_ietf_ABYTES
#define AD_LABEL "sotto-store-v1"
#define KDF_CTX "sottosto"
#define FORMAT_VERSION 2 /* 1: no "state" root (migrated at the next open) */
#define STATE_LEN (8 + 8 + KEY_LEN + KEY_LEN)
/* Limits accepted from the file, so a tampered header cannot make us spend
 * unbounded memory or time before the key check fails. */
#define MAX_OPSLIMIT 16ULL
#define MAX_MEMLIMIT (1024ULL * 1024 * 1024)
#define BUSY_TIMEOUT_MS 10000

/* The derived keys sit in one sodium_malloc block. */
struct keys {
  uint8_t seal[KEY_LEN];
  uint8_t index[KEY_LEN];
  uint8_t check[KEY_LEN];
  uint8_t root[KEY_LEN]; /* keys the row hashes and the state tag */
};

/* The store-wide state (meta "state", docs/client.md "Rollback"): a commit
 * counter, the device epoch, and the XOR of a keyed hash of every live row
 * (row key and sealed value, nonce included). Any row put back from an
 * older version, or any mix of old and new rows, changes the XOR; only the
 * passphrase holder can compute it. */
struct state {
  uint64_t gen, epoch;
  uint8_t root[KEY_LEN];
};

struct store {
  sqlite3 *db;
  struct keys *k;
  struct state cur; /* valid inside a write transaction */
  int in_txn;
  char path[PATH_MAX];
  char err[256];
};

static const char SCHEMA[] =
    "CREATE TABLE meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);"
    "CREATE TABLE kv(k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;";

static int sqlerr(struct store *s, const char *what) {
  snprintf(s->err, sizeof s->err, "%s: %s", what, s->db ? sqlite3_errmsg(s->db) : "cannot open");
  if (s->db && (sqlite3_errcode(s->db) == SQLITE_BUSY || sqlite3_errcode(s->db) == SQLITE_LOCKED))
    return STORE_E_BUSY;
  return STORE_E_IO;
}

const char *store_errmsg(const struct store *s) { return s ? s->err : "no store"; }
const char *store_path(const struct store *s) { return s->path; }

static void row_hash_xor(const struct store *s, uint8_t acc[KEY_LEN], const uint8_t *k, size_t klen,
                         const uint8_t *v, size_t vlen) {
  crypto_generichash_state h;
  uint8_t out[KEY_LEN];
  size_t i;
  crypto_generichash_init(&h, s->k->root, KEY_LEN, KEY_LEN);
  crypto_generichash_update(&h, (const uint8_t *)"row", 3);
  crypto_generichash_update(&h, k, klen);
  crypto_generichash_update(&h, v, vlen);
  crypto_generichash_final(&h, out, KEY_LEN);
  for (i = 0; i < KEY_LEN; i++) acc[i] ^= out[i];
}

static void state_tag(const struct store *s, const struct state *st, uint8_t tag[KEY_LEN]) {
  uint8_t buf[8 + 8 + KEY_LEN];
  int i;
  for (i = 0; i < 8; i++) {
    buf[i] = (uint8_t)(st->gen >> (56 - 8 * i));
    buf[8 + i] = (uint8_t)(st->epoch >> (56 - 8 * i));
  }
  memcpy(buf + 16, st->root, KEY_LEN);
  crypto_generichash(tag, KEY_LEN, buf, sizeof buf, s->k->root, KEY_LEN);
}

static struct store *store_alloc(const char *home) {
  struct store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  if ((size_t)snprintf(s->path, sizeof s->path, "%s/%s", home, STORE_FILE) >= sizeof s->path) {
    free(s);
    return NULL;
  }
  s->k = sodium_malloc(sizeof *s->k);
  if (!s->k) {
    free(s);
    return NULL;
  }
  return s;
}

void store_close(struct store *s) {
  if (!s) return;
  if (s->db) sqlite3_close(s->db);
  if (s->k) sodium_free(s->k); /* sodium_free wipes */
  free(s);
}

/* Argon2id over the passphrase, then the three subkeys. The master key is
 * itself in guarded memory and wiped before returning. */
static int derive(struct store *s, const char *pass, size_t pass_len, const uint8_t salt[STORE_SALT_LEN],
                  unsigned long long ops, size_t mem) {
  uint8_t *master = sodium_malloc(KEY_LEN);
  int rc = -1;
  if (!master) return -1;
  if (crypto_pwhash(master, KEY_LEN, pass, pass_len, salt, ops, mem, crypto_pwhash_ALG_ARGON2ID13) != 0)
    goto out;
  if (crypto_kdf_derive_from_key(s->k->seal, KEY_LEN, 1, KDF_CTX, master) ||
      crypto_kdf_derive_from_key(s->k->index, KEY_LEN, 2, KDF_CTX, master) ||
      crypto_kdf_derive_from_key(s->k->check, KEY_LEN, 3, KDF_CTX, master) ||
      crypto_kdf_derive_from_key(s->k->root, KEY_LEN, 4, KDF_CTX, master))
    goto out;
  rc = 0;
out:
  sodium_free(master);
  return rc;
}

static int exec(struct store *s, const char *sql) {
  if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK) return sqlerr(s, "store");
  return 0;
}

static int meta_put(struct store *s, const char *name, const void *v, size_t n) {
  sqlite3_stmt *st;
  int rc;
  if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO meta(name, value) VALUES(?1, ?2)", -1, &st, NULL))
    return sqlerr(s, "store");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, v, (int)n, SQLITE_STATIC);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlerr(s, "store");
  sqlite3_finalize(st);
  return rc;
}

/* Reads a meta value of exactly n bytes (n == 0: an integer into *iv). */
static int meta_get(struct store *s, const char *name, void *v, size_t n, sqlite3_int64 *iv) {
  sqlite3_stmt *st;
  int rc = STORE_E_CORRUPT;
  if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE name = ?1", -1, &st, NULL))
    return sqlerr(s, "store");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  switch (sqlite3_step(st)) {
    case SQLITE_ROW:
      if (iv) {
        if (sqlite3_column_type(st, 0) == SQLITE_INTEGER) {
          *iv = sqlite3_column_int64(st, 0);
          rc = 0;
        }
      } else if ((size_t)sqlite3_column_bytes(st, 0) == n) {
        memcpy(v, sqlite3_column_blob(st, 0), n);
        rc = 0;
      }
      if (rc) snprintf(s->err, sizeof s->err, "store header field '%s' is damaged", name);
      break;
    case SQLITE_DONE:
      snprintf(s->err, sizeof s->err, "store header field '%s' is missing", name);
      break;
    default:
      rc = sqlerr(s, "store");
  }
  sqlite3_finalize(st);
  return rc;
}

static int meta_put_int(struct store *s, const char *name, sqlite3_int64 v) {
  sqlite3_stmt *st;
  int rc;
  if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO meta(name, value) VALUES(?1, ?2)", -1, &st, NULL))
    return sqlerr(s, "store");
  sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
  sqlite3_bind_int64(st, 2, v);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlerr(s, "store");
  sqlite3_finalize(st);
  return rc;
}

/* Connection settings only: none of these writes to the file. secure_delete
 * overwrites freed pages, so deleted records (used pre-keys, old session
 * states) do not linger in the file even in sealed form. */
static int connect_db(struct store *s, int flags) {
  if (sqlite3_open_v2(s->path, &s->db, flags, NULL) != SQLITE_OK) return sqlerr(s, "cannot open the store");
  sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
  return exec(s, "PRAGMA secure_delete = ON; PRAGMA temp_store = MEMORY; PRAGMA synchronous = FULL;");
}

static int state_write(struct store *s, const struct state *st) {
  uint8_t buf[STATE_LEN];
  int i;
  for (i = 0; i < 8; i++) {
    buf[i] = (uint8_t)(st->gen >> (56 - 8 * i));
    buf[8 + i] = (uint8_t)(st->epoch >> (56 - 8 * i));
  }
  memcpy(buf + 16, st->root, KEY_LEN);
  state_tag(s, st, buf + 16 + KEY_LEN);
  return meta_put(s, "state", buf, sizeof buf);
}

/* Reads and authenticates meta "state". */
static int state_read(struct store *s, struct state *st) {
  uint8_t buf[STATE_LEN], tag[KEY_LEN];
  int rc, i;
  if ((rc = meta_get(s, "state", buf, sizeof buf, NULL)) != 0) return rc;
  st->gen = st->epoch = 0;
  for (i = 0; i < 8; i++) {
    st->gen = (st->gen << 8) | buf[i];
    st->epoch = (st->epoch << 8) | buf[8 + i];
  }
  memcpy(st->root, buf + 16, KEY_LEN);
  state_tag(s, st, tag);
  if (sodium_memcmp(tag, buf + 16 + KEY_LEN, KEY_LEN) != 0) {
    snprintf(s->err, sizeof s->err, "the store's state record fails its check");
    return STORE_E_CORRUPT;
  }
  return 0;
}

/* XOR of the row hashes over the whole kv table (the caller holds a
 * transaction, so the rows and the state are one snapshot). */
static int root_compute(struct store *s, uint8_t root[KEY_LEN]) {
  sqlite3_stmt *st;
  int step;
  memset(root, 0, KEY_LEN);
  if (sqlite3_prepare_v2(s->db, "SELECT k, v FROM kv", -1, &st, NULL)) return sqlerr(s, "store");
  while ((step = sqlite3_step(st)) == SQLITE_ROW)
    row_hash_xor(s, root, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), sqlite3_column_blob(st, 1),
                 (size_t)sqlite3_column_bytes(st, 1));
  sqlite3_finalize(st);
  return step == SQLITE_DONE ? 0 : sqlerr(s, "store");
}

static int kdf_fast(void) {
#ifdef SOTTO_TEST_HOOKS
  const char *v = getenv("SOTTO_TEST_KDF");
  return v != NULL && strcmp(v, "fast") == 0;
#else
  return 0;
#endif
}

unsigned long long store_opslimit(void) { return kdf_fast() ? 1ULL : STORE_OPSLIMIT; }

size_t store_memlimit(void) { return kdf_fast() ? (size_t)8 * 1024 * 1024 : (size_t)STORE_MEMLIMIT; }

int store_create(struct store **out, const char *home, const char *pass, size_t pass_len, char *err,
                 size_t errlen) {
  return store_create_limits(out, home, pass, pass_len, store_opslimit(), store_memlimit(), err, errlen);
}

int store_create_limits(struct store **out, const char *home, const char *pass, size_t pass_len,
                        unsigned long long ops, size_t mem, char *err, size_t errlen) {
  struct store *s;
  uint8_t salt[STORE_SALT_LEN];
  struct stat sb;
  int rc = STORE_E_IO, fd;

  *out = NULL;
  if (!(s = store_alloc(home))) return STORE_E_IO;
  if (stat(s->path, &sb) == 0) {
    store_close(s);
    return STORE_E_EXISTS;
  }
  /* Create the file ourselves, mode 0600 and exclusive, before SQLite sees it. */
  fd = open(s->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    rc = errno == EEXIST ? STORE_E_EXISTS : STORE_E_IO;
    snprintf(s->err, sizeof s->err, "cannot create the store file: %s", strerror(errno));
    goto fail;
  }
  close(fd);
  randombytes_buf(salt, sizeof salt);
  if (derive(s, pass, pass_len, salt, ops, mem)) {
    snprintf(s->err, sizeof s->err, "key derivation failed (out of memory?)");
    goto fail_unlink;
  }
  memset(&s->cur, 0, sizeof s->cur);
  if ((rc = connect_db(s, SQLITE_OPEN_READWRITE)) || (rc = exec(s, "PRAGMA journal_mode = DELETE;")) ||
      (rc = exec(s, "BEGIN")) || (rc = exec(s, SCHEMA)) || (rc = meta_put_int(s, "format", FORMAT_VERSION)) ||
      (rc = meta_put(s, "kdf", "argon2id13", 10)) || (rc = meta_put(s, "salt", salt, sizeof salt)) ||
      (rc = meta_put_int(s, "opslimit", (sqlite3_int64)ops)) || (rc = meta_put_int(s, "memlimit", (sqlite3_int64)mem)) ||
      (rc = meta_put(s, "check", s->k->check, KEY_LEN)) || (rc = state_write(s, &s->cur)) ||
      (rc = exec(s, "COMMIT")))
    goto fail_unlink;
  *out = s;
  return 0;
fail_unlink:
  unlink(s->path);
fail:
  snprintf(err, errlen, "%s", s->err);
  store_close(s);
  return rc ? rc : STORE_E_IO;
}

static int open_row(const struct store *s, const uint8_t k[ROW_LEN], const uint8_t *v, size_t vlen, uint8_t **pt,
                    size_t *pt_len, size_t *name_len);
static int put_row(struct store *s, const char *name, const uint8_t *val, size_t len);

/* Re-seals every row under the keys in s->k (rows were sealed under old):
 * the migration to stronger Argon2id limits. Inside the caller's
 * transaction; the old rows are read into memory first (the store is
 * small), then the table is emptied and written again. */
static int reseal_all(struct store *s, struct keys *old) {
  struct keys *now = s->k;
  sqlite3_stmt *st;
  struct row {
    uint8_t *pt;
    size_t len, nl;
  } *rows = NULL;
  size_t n = 0, cap = 0, i;
  int rc = 0, step;

  if (sqlite3_prepare_v2(s->db, "SELECT k, v FROM kv", -1, &st, NULL)) return sqlerr(s, "store");
  s->k = old;
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    if (n == cap) {
      struct row *nr = realloc(rows, (cap = cap ? cap * 2 : 256) * sizeof *rows);
      if (!nr) {
        rc = STORE_E_IO;
        break;
      }
      rows = nr;
    }
    if (sqlite3_column_bytes(st, 0) != ROW_LEN) {
      rc = STORE_E_CORRUPT;
      break;
    }
    if ((rc = open_row(s, sqlite3_column_blob(st, 0), sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                       &rows[n].pt, &rows[n].len, &rows[n].nl)) != 0)
      break;
    n++;
  }
  s->k = now;
  sqlite3_finalize(st);
  if (!rc && step != SQLITE_DONE) rc = sqlerr(s, "store");
  if (!rc) rc = exec(s, "DELETE FROM kv");
  memset(s->cur.root, 0, KEY_LEN);
  for (i = 0; i < n && !rc; i++) {
    char name[STORE_MAX_NAME + 1];
    if (rows[i].nl > STORE_MAX_NAME) {
      rc = STORE_E_CORRUPT;
      break;
    }
    memcpy(name, rows[i].pt + 2, rows[i].nl);
    name[rows[i].nl] = 0;
    rc = put_row(s, name, rows[i].pt + 2 + rows[i].nl, rows[i].len - 2 - rows[i].nl);
  }
  for (i = 0; i < n; i++) store_free_value(rows[i].pt, rows[i].len);
  free(rows);
  if (rc == STORE_E_CORRUPT) snprintf(s->err, sizeof s->err, "a store record does not open");
  return rc;
}

/* After the key check: checks the rows against the state (a single row put
 * back from an older copy, or old and new rows mixed, is refused), and
 * migrates older stores: a format 1 store gets its state, a store sealed
 * under weaker Argon2id limits than STORE_OPSLIMIT / STORE_MEMLIMIT is
 * re-sealed under a fresh salt and the current limits. */
static int open_check(struct store *s, const char *pass, size_t pass_len, sqlite3_int64 format, sqlite3_int64 ops,
                      sqlite3_int64 mem) {
  uint8_t root[KEY_LEN], salt[STORE_SALT_LEN];
  struct keys *old = NULL;
  int rc, weak = (unsigned long long)ops < store_opslimit() || (unsigned long long)mem < store_memlimit();

  if ((rc = exec(s, weak || format != FORMAT_VERSION ? "BEGIN IMMEDIATE" : "BEGIN"))) return rc;
  if (format == FORMAT_VERSION) {
    if ((rc = state_read(s, &s->cur)) || (rc = root_compute(s, root))) goto fail;
    if (sodium_memcmp(root, s->cur.root, KEY_LEN) != 0) {
      snprintf(s->err, sizeof s->err,
               "its records do not match its last commit: a record was replaced by an older copy or records "
               "of different times were mixed (a rollback); nothing was changed");
      rc = STORE_E_ROLLBACK;
      goto fail;
    }
  } else {
    memset(&s->cur, 0, sizeof s->cur);
    if ((rc = root_compute(s, s->cur.root))) goto fail;
  }
  if (weak) {
    if (!(old = sodium_malloc(sizeof *old))) {
      rc = STORE_E_IO;
      goto fail;
    }
    memcpy(old, s->k, sizeof *old);
    randombytes_buf(salt, sizeof salt);
    if (derive(s, pass, pass_len, salt, store_opslimit(), store_memlimit())) {
      snprintf(s->err, sizeof s->err, "key derivation failed (out of memory?)");
      rc = STORE_E_IO;
      goto fail;
    }
    if ((rc = reseal_all(s, old)) || (rc = meta_put(s, "salt", salt, sizeof salt)) ||
        (rc = meta_put_int(s, "opslimit", (sqlite3_int64)store_opslimit())) ||
        (rc = meta_put_int(s, "memlimit", (sqlite3_int64)store_memlimit())) ||
        (rc = meta_put(s, "check", s->k->check, KEY_LEN)))
      goto fail;
  }
  if (weak || format != FORMAT_VERSION) {
    s->cur.gen++;
    if ((rc = meta_put_int(s, "format", FORMAT_VERSION)) || (rc = state_write(s, &s->cur))) goto fail;
  }
  if ((rc = exec(s, "COMMIT"))) goto fail;
  if (old) sodium_free(old);
  return 0;
fail:
  if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  if (old) {
    memcpy(s->k, old, sizeof *old); /* the old keys stay valid: nothing was written */
    sodium_free(old);
  }
  return rc;
}

/* A crash point for the tests (sotto-test only): SOTTO_TEST_CRASH=where
 * makes the process exit at once there, as a power cut would. */
static void crash_point(const char *where) {
#ifdef SOTTO_TEST_HOOKS
  const char *v = getenv("SOTTO_TEST_CRASH");
  if (v && strcmp(v, where) == 0) kill(getpid(), SIGKILL);
#else
  (void)where;
#endif
}

/* A new passphrase: a fresh salt, the current Argon2id limits, and every
 * row re-sealed, all in one SQLite transaction. The journal (rollback mode,
 * synchronous FULL) makes it atomic on disk: until the COMMIT reaches the
 * file, the journal holds the old pages and the next open (of any process)
 * rolls them back, so the old passphrase works; after it, only the new
 * one does. There is no moment in which neither opens the store. */
int store_rekey(struct store *s, const char *pass, size_t pass_len) {
  uint8_t salt[STORE_SALT_LEN];
  struct keys *old;
  int rc;

  if (s->in_txn) return STORE_E_IO;
  if (!(old = sodium_malloc(sizeof *old))) return STORE_E_IO;
  memcpy(old, s->k, sizeof *old);
  if ((rc = store_begin(s)) != 0) {
    sodium_free(old);
    return rc;
  }
  randombytes_buf(salt, sizeof salt);
  if (derive(s, pass, pass_len, salt, store_opslimit(), store_memlimit())) {
    snprintf(s->err, sizeof s->err, "key derivation failed (out of memory?)");
    rc = STORE_E_IO;
    goto fail;
  }
  if ((rc = reseal_all(s, old)) || (rc = meta_put(s, "salt", salt, sizeof salt)) ||
      (rc = meta_put_int(s, "opslimit", (sqlite3_int64)store_opslimit())) ||
      (rc = meta_put_int(s, "memlimit", (sqlite3_int64)store_memlimit())) ||
      (rc = meta_put(s, "check", s->k->check, KEY_LEN)))
    goto fail;
  crash_point("rekey-before-commit");
  if ((rc = store_commit(s)) != 0) goto fail;
  crash_point("rekey-after-commit");
  sodium_free(old);
  return 0;
fail:
  store_rollback(s);
  memcpy(s->k, old, sizeof *old); /* nothing was written: the old keys stay valid */
  sodium_free(old);
  return rc;
}

int store_open(struct store **out, const char *home, const char *pass, size_t pass_len, char *err,
               size_t errlen) {
  struct store *s;
  uint8_t salt[STORE_SALT_LEN], check[KEY_LEN];
  sqlite3_int64 format, ops, mem;
  char kdf[10];
  int rc;

  *out = NULL;
  if (!(s = store_alloc(home))) return STORE_E_IO;
  if (access(s->path, F_OK) != 0) {
    store_close(s);
    return STORE_E_MISSING;
  }
  /* Read the header only: the file is not written until the key check
   * passed (a wrong passphrase must leave it byte for byte as it was). */
  if ((rc = connect_db(s, SQLITE_OPEN_READWRITE)) || (rc = meta_get(s, "format", NULL, 0, &format)) ||
      (rc = meta_get(s, "kdf", kdf, sizeof kdf, NULL)) || (rc = meta_get(s, "salt", salt, sizeof salt, NULL)) ||
      (rc = meta_get(s, "opslimit", NULL, 0, &ops)) || (rc = meta_get(s, "memlimit", NULL, 0, &mem)) ||
      (rc = meta_get(s, "check", check, sizeof check, NULL)))
    goto fail;
  if ((format != FORMAT_VERSION && format != 1) || memcmp(kdf, "argon2id13", 10) != 0 || ops < 1 ||
      (unsigned long long)ops > MAX_OPSLIMIT || mem < 8192 || (unsigned long long)mem > MAX_MEMLIMIT) {
    snprintf(s->err, sizeof s->err, "the store header has an unknown format or limits");
    rc = STORE_E_CORRUPT;
    goto fail;
  }
  if (derive(s, pass, pass_len, salt, (unsigned long long)ops, (size_t)mem)) {
    snprintf(s->err, sizeof s->err, "key derivation failed (out of memory?)");
    rc = STORE_E_IO;
    goto fail;
  }
  if (sodium_memcmp(check, s->k->check, KEY_LEN) != 0) {
    rc = STORE_E_PASS;
    goto fail;
  }
  if ((rc = open_check(s, pass, pass_len, format, ops, mem)) != 0) goto fail;
  *out = s;
  return 0;
fail:
  snprintf(err, errlen, "%s", s->err);
  store_close(s);
  return rc;
}

/* A write transaction carries the state along: read (and authenticated)
 * at the start, updated by every put and delete, written back with the
 * commit counter advanced in the same commit. */
int store_begin(struct store *s) {
  int rc;
  if ((rc = exec(s, "BEGIN IMMEDIATE"))) return rc;
  if ((rc = state_read(s, &s->cur)) != 0) {
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
  }
  s->in_txn = 1;
  return 0;
}

int store_commit(struct store *s) {
  int rc;
  if (!s->in_txn) return exec(s, "COMMIT");
  s->cur.gen++;
  if ((rc = state_write(s, &s->cur)) || (rc = exec(s, "COMMIT"))) return rc;
  s->in_txn = 0;
  return 0;
}

void store_rollback(struct store *s) {
  if (!sqlite3_get_autocommit(s->db)) sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
  s->in_txn = 0;
}

uint64_t store_epoch(const struct store *s) { return s->cur.epoch; }

int store_set_epoch(struct store *s, uint64_t epoch) {
  if (!s->in_txn) return STORE_E_IO;
  s->cur.epoch = epoch;
  return 0;
}

static void row_key(const struct store *s, const char *name, uint8_t k[ROW_LEN]) {
  crypto_generichash(k, ROW_LEN, (const uint8_t *)name, strlen(name), s->k->index, KEY_LEN);
}

static void make_ad(uint8_t ad[sizeof AD_LABEL - 1 + ROW_LEN], const uint8_t k[ROW_LEN]) {
  memcpy(ad, AD_LABEL, sizeof AD_LABEL - 1);
  memcpy(ad + sizeof AD_LABEL - 1, k, ROW_LEN);
}

void store_free_value(uint8_t *val, size_t len) {
  if (!val) return;
  sodium_memzero(val, len);
  free(val);
}

/* Opens one sealed row. On success *pt (malloc'd) holds u16 name length ||
 * name || value, and *name_len says where the value starts. */
static int open_row(const struct store *s, const uint8_t k[ROW_LEN], const uint8_t *v, size_t vlen, uint8_t **pt,
                    size_t *pt_len, size_t *name_len) {
  uint8_t ad[sizeof AD_LABEL - 1 + ROW_LEN];
  unsigned long long n;
  uint8_t *p;
  if (vlen < NONCE_LEN + TAG_LEN + 2 || vlen > STORE_MAX_VALUE + STORE_MAX_NAME + 2 + NONCE_LEN + TAG_LEN)
    return STORE_E_CORRUPT;
  if (!(p = malloc(vlen - NONCE_LEN - TAG_LEN))) return STORE_E_IO;
  make_ad(ad, k);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(p, &n, NULL, v + NONCE_LEN, vlen - NONCE_LEN, ad, sizeof ad,
                                                 v, s->k->seal) != 0) {
    free(p);
    return STORE_E_CORRUPT;
  }
  *name_len = ((size_t)p[0] << 8) | p[1];
  if (*name_len > n - 2) {
    store_free_value(p, (size_t)n);
    return STORE_E_CORRUPT;
  }
  *pt = p;
  *pt_len = (size_t)n;
  return 0;
}

int store_get(struct store *s, const char *name, uint8_t **val, size_t *len) {
  uint8_t k[ROW_LEN], *pt = NULL;
  size_t pt_len, nl, want = strlen(name);
  sqlite3_stmt *st;
  int rc;

  *val = NULL;
  *len = 0;
  row_key(s, name, k);
  if (sqlite3_prepare_v2(s->db, "SELECT v FROM kv WHERE k = ?1", -1, &st, NULL)) return sqlerr(s, "store");
  sqlite3_bind_blob(st, 1, k, ROW_LEN, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_DONE) {
    rc = 0;
  } else if (rc != SQLITE_ROW) {
    rc = sqlerr(s, "store");
  } else if ((rc = open_row(s, k, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0), &pt, &pt_len,
                            &nl)) == 0) {
    if (nl != want || memcmp(pt + 2, name, nl) != 0) {
      rc = STORE_E_CORRUPT;
    } else if (!(*val = malloc(pt_len - 2 - nl + 1))) {
      rc = STORE_E_IO;
    } else {
      *len = pt_len - 2 - nl;
      memcpy(*val, pt + 2 + nl, *len);
      rc = 1;
    }
    store_free_value(pt, pt_len);
  }
  if (rc == STORE_E_CORRUPT) snprintf(s->err, sizeof s->err, "the store record '%s' does not open", name);
  sqlite3_finalize(st);
  return rc;
}

/* XORs the hash of row k's current value (if any) out of the state root. */
static int root_remove(struct store *s, const uint8_t k[ROW_LEN]) {
  sqlite3_stmt *st;
  int rc;
  if (sqlite3_prepare_v2(s->db, "SELECT v FROM kv WHERE k = ?1", -1, &st, NULL)) return sqlerr(s, "store");
  sqlite3_bind_blob(st, 1, k, ROW_LEN, SQLITE_STATIC);
  rc = sqlite3_step(st);
  if (rc == SQLITE_ROW) {
    row_hash_xor(s, s->cur.root, k, ROW_LEN, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0));
    rc = 0;
  } else {
    rc = rc == SQLITE_DONE ? 0 : sqlerr(s, "store");
  }
  sqlite3_finalize(st);
  return rc;
}

static int put_row(struct store *s, const char *name, const uint8_t *val, size_t len) {
  uint8_t k[ROW_LEN], ad[sizeof AD_LABEL - 1 + ROW_LEN], *pt, *ct;
  size_t nl = strlen(name), pt_len, ct_len;
  unsigned long long clen;
  sqlite3_stmt *st;
  int rc;

  if (nl > STORE_MAX_NAME || len > STORE_MAX_VALUE) return STORE_E_IO;
  pt_len = 2 + nl + len;
  ct_len = NONCE_LEN + pt_len + TAG_LEN;
  pt = malloc(pt_len);
  ct = malloc(ct_len);
  if (!pt || !ct) {
    free(pt);
    free(ct);
    return STORE_E_IO;
  }
  pt[0] = (uint8_t)(nl >> 8);
  pt[1] = (uint8_t)nl;
  memcpy(pt + 2, name, nl);
  if (len) memcpy(pt + 2 + nl, val, len);
  row_key(s, name, k);
  make_ad(ad, k);
  randombytes_buf(ct, NONCE_LEN);
  crypto_aead_xchacha20poly1305_ietf_encrypt(ct + NONCE_LEN, &clen, pt, pt_len, ad, sizeof ad, NULL, ct,
                                             s->k->seal);
  store_free_value(pt, pt_len);
  if ((rc = root_remove(s, k)) != 0) {
    free(ct);
    return rc;
  }
  if (sqlite3_prepare_v2(s->db, "INSERT OR REPLACE INTO kv(k, v) VALUES(?1, ?2)", -1, &st, NULL)) {
    free(ct);
    return sqlerr(s, "store");
  }
  sqlite3_bind_blob(st, 1, k, ROW_LEN, SQLITE_STATIC);
  sqlite3_bind_blob(st, 2, ct, (int)ct_len, SQLITE_STATIC);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlerr(s, "store");
  sqlite3_finalize(st);
  if (rc == 0) row_hash_xor(s, s->cur.root, k, ROW_LEN, ct, ct_len);
  free(ct);
  return rc;
}

/* Writes only inside store_begin/store_commit, where the state root is
 * kept; a write outside one would leave the root stale. */
int store_put(struct store *s, const char *name, const uint8_t *val, size_t len) {
  if (!s->in_txn) {
    snprintf(s->err, sizeof s->err, "internal: a write outside a transaction");
    return STORE_E_IO;
  }
  return put_row(s, name, val, len);
}

int store_del(struct store *s, const char *name) {
  uint8_t k[ROW_LEN];
  sqlite3_stmt *st;
  int rc;
  if (!s->in_txn) {
    snprintf(s->err, sizeof s->err, "internal: a write outside a transaction");
    return STORE_E_IO;
  }
  row_key(s, name, k);
  if ((rc = root_remove(s, k)) != 0) return rc;
  if (sqlite3_prepare_v2(s->db, "DELETE FROM kv WHERE k = ?1", -1, &st, NULL)) return sqlerr(s, "store");
  sqlite3_bind_blob(st, 1, k, ROW_LEN, SQLITE_STATIC);
  rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sqlerr(s, "store");
  sqlite3_finalize(st);
  return rc;
}

int store_scan(struct store *s, const char *prefix,
               int (*cb)(void *ud, const char *name, const uint8_t *val, size_t len), void *ud) {
  size_t pl = strlen(prefix);
  sqlite3_stmt *st;
  int rc = 0, step;

  if (sqlite3_prepare_v2(s->db, "SELECT k, v FROM kv", -1, &st, NULL)) return sqlerr(s, "store");
  while ((step = sqlite3_step(st)) == SQLITE_ROW) {
    uint8_t *pt;
    size_t pt_len, nl;
    char name[STORE_MAX_NAME + 1];
    if (sqlite3_column_bytes(st, 0) != ROW_LEN) {
      rc = STORE_E_CORRUPT;
      break;
    }
    rc = open_row(s, sqlite3_column_blob(st, 0), sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1),
                  &pt, &pt_len, &nl);
    if (rc) break;
    if (nl <= STORE_MAX_NAME && nl >= pl && memcmp(pt + 2, prefix, pl) == 0) {
      memcpy(name, pt + 2, nl);
      name[nl] = 0;
      rc = cb(ud, name, pt + 2 + nl, pt_len - 2 - nl);
    }
    store_free_value(pt, pt_len);
    if (rc) break;
  }
  if (!rc && step != SQLITE_DONE && step != SQLITE_ROW) rc = sqlerr(s, "store");
  if (rc == STORE_E_CORRUPT) snprintf(s->err, sizeof s->err, "a store record does not open");
  sqlite3_finalize(st);
  return rc;
}

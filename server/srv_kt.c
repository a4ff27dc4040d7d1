/* SPDX-License-Identifier: Apache-2.0 */
/* srv_kt.c: the key-transparency log of sotto-server (--kt 1;
 * docs/key-transparency.md, "The log in sotto-server").
 *
 * Every successful REGISTER and RECOVER logs canonical username -> identity
 * key as a new version of the label; UNREGISTER logs a new version with an
 * empty value (the deletion marker). What one group-commit batch changed
 * becomes one log entry, written (update and signed head) in the batch's own
 * transaction, together with the values and openings it logs: after a
 * crash an entry and the accounts it logs are both there or both not. If
 * the transaction fails, the in-memory directory (which already took the
 * entry) is rebuilt from the store.
 *
 * The operator's Ed25519 seed and VRF key live in DATA/kt.key (64 bytes,
 * mode 0600, made on first start; `sotto-server backup` copies it). The
 * directory is used from the store thread only (hooks in srv_commit.c and
 * the KT_* request handlers' exec).
 *
 * In a cluster (--cluster: several nodes on one PostgreSQL) there is one
 * log in the database and every node keeps a copy of the directory: a
 * batch that logs takes the store's append lock first (ops->kt_lock, held
 * to its commit) and brings its copy up to date under it, so exactly one
 * node appends at a time and each entry extends the newest one; before
 * answering a KT request a node replays the entries other nodes committed
 * (catch-up), so every node serves the same head. Every node needs the same
 * DATA/kt.key. Witness cosignatures are kept in the store (kt_cosigs), so a
 * witness that reaches one node is served by all. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sotto/kt.h>

#include "srv_internal.h"
#include "wire.h"

_Static_assert(SOTTO_SRV_KT_HEAD_LEN == SOTTO_KT_HEAD_LEN, "head length");
_Static_assert(SOTTO_SRV_KT_COSIG_LEN == SOTTO_KT_COSIG_LEN, "cosignature length");
_Static_assert(SOTTO_SRV_KT_MAX_PROOF >= SOTTO_KT_MAX_SEARCH_PROOF_LEN, "search proofs fit the answer");
_Static_assert(SOTTO_SRV_KT_MAX_PROOF >= SOTTO_KT_MAX_LOG_PROOF * SOTTO_KT_HASH_LEN, "log proofs fit");
_Static_assert(SOTTO_STORE_KT_MAX_VALUE == SOTTO_KT_MAX_VALUE_LEN, "values fit the store");

#define KT_KEY_FILE "kt.key"
#define KT_COSIG_FILE "kt.cosigs"

/* A configured witness (--kt-witness) and its newest cosignature. */
struct kt_witness {
  char name[SOTTO_SRV_KT_NAME_MAX + 1];
  uint8_t pk[SOTTO_KT_SIGN_PK_LEN];
  int have;                        /* head and cosig hold its newest accepted cosignature */
  uint8_t head[SOTTO_KT_HEAD_LEN]; /* the head it cosigned (one the server signed) */
  uint8_t cosig[SOTTO_KT_COSIG_LEN];
};

#define KT_SNAP_FROM_MAX (SOTTO_SRV_USER_MAX + 3) /* '!' CANON '\x01' NUL */

struct srv_kt {
  struct kt_witness wit[SOTTO_SRV_KT_MAX_WITNESSES];
  size_t n_wit;
  struct sotto_kt_dir *dir;
  int64_t n;       /* entries committed to the store */
  int64_t last_ms; /* timestamp of the newest entry */
  int touched;     /* this batch added an entry (rebuild if it does not commit) */
  int shared;      /* a cluster node: other nodes append too (catch-up, append lock) */
  int locked;      /* shared: this batch holds the append lock */
  struct kt_pool *pool; /* VRF helpers (NULL: the store thread alone) */
  struct sotto_kt_dir *prep; /* the same keys, no log: the I/O thread's VRF (sotto__srv_kt_precompute) */
  /* kt-pending-max > 0: new names are logged asynchronously (below) */
  int async;
  int64_t pending_n;      /* marks of this node not yet logged (atomic: read by other threads) */
  int64_t b_added, b_removed; /* by the batch in progress */
  struct kt_async *aq;    /* the idle-priority VRF helpers and the job in flight */
  struct kt_job *proposed; /* snapshot taken in this batch: handed to the helpers after its commit */
  int taken;               /* this batch applied the job in flight (it goes when the batch ends) */
  int64_t next_snap_ms;   /* mono: no kt-only batch for a snapshot before (atomic: read by the I/O thread) */
  int64_t retry_ms;       /* mono: a batch failed (the store is down?): no kt-only batch before (atomic) */
  int64_t since_ms;       /* mono: when a name was marked while none was (atomic; 0: none marked) */
  int64_t busy_ms;        /* mono: the last busy batch (atomic: written by the store thread, read by want) */
  int quiet;              /* this batch attempt may do log work (sotto__srv_kt_plan) */
  int take;               /* this batch attempt applies the job in flight (sotto__srv_kt_plan) */
  int64_t counted;        /* >= 0: the marks the batch's transaction counted (pending_n after its commit) */
  char snap_from[KT_SNAP_FROM_MAX]; /* the next snapshot's marks start here (after the last one taken), then wrap */
  uint64_t apply_failed;  /* atomic: batches that took a job and did not commit (metric) */
  uint64_t late_items;    /* atomic: items the store thread made again past a job's deadline (metric) */
  struct srv *srv;
};

/* DATA/kt.key: sig_seed(32) || vrf_sk(32); made with O_EXCL on first start. */
static int load_keys(const char *data, uint8_t key[64]) {
  char path[4096];
  struct stat st;
  ssize_t n;
  int fd;
  if ((size_t)snprintf(path, sizeof path, "%s/%s", data, KT_KEY_FILE) >= sizeof path) return -1;
  fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT) {
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    (void)unlink(tmp);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) return -1;
    randombytes_buf(key, 64);
    n = write(fd, key, 64);
    if (n != 64 || fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
      sodium_memzero(key, 64);
      (void)unlink(tmp);
      return -1;
    }
    if ((fd = open(data, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
      (void)fsync(fd);
      close(fd);
    }
    sotto__srv_log(1, "kt_keys", "%s", "created=1");
    return 0;
  }
  if (fd < 0) return -1;
  if (fstat(fd, &st) != 0 || st.st_size != 64 || (st.st_mode & 077)) {
    fprintf(stderr, "sotto-server: %s must be 64 bytes, mode 0600\n", path);
    close(fd);
    return -1;
  }
  n = read(fd, key, 64);
  close(fd);
  return n == 64 ? 0 : -1;
}

struct replay_ctx {
  struct srv_kt *kt;
  int64_t want;
};

static int replay_one(void *ctx, int64_t idx, const uint8_t *head, size_t head_len, const uint8_t *update,
                      size_t update_len) {
  struct replay_ctx *r = ctx;
  struct sotto_kt_head h;
  if (idx != r->want || sotto_kt_head_decode(&h, head, head_len) != 0) return SOTTO_ERR_STORE;
  if (sotto_kt_dir_replay(r->kt->dir, update, update_len, &h) != 0) return SOTTO_ERR_STORE;
  r->want++;
  r->kt->last_ms = (int64_t)h.timestamp_ms;
  return 0;
}

/* (Re)builds the directory from the store. */
static int kt_load(struct srv *s, struct srv_kt *kt) {
  uint8_t key[64];
  struct replay_ctx r = {kt, 0};
  int rc;
  if (kt->dir) sotto_kt_dir_free(kt->dir);
  kt->dir = NULL;
  kt->n = kt->last_ms = 0;
  if (load_keys(s->cfg->data, key) != 0) return -1;
  rc = sotto_kt_dir_new(&kt->dir, key, key + 32);
  sodium_memzero(key, sizeof key);
  if (rc != 0) return -1;
  if (s->store.ops->kt_entries_iter(s->store.impl, 0, -1, replay_one, &r) != 0) {
    sotto_kt_dir_free(kt->dir);
    kt->dir = NULL;
    return -1;
  }
  kt->n = r.want;
  return 0;
}

/* Shared store: replays the entries other nodes committed since kt->n;
 * *got (may be NULL) gets how many. Inside a transaction that holds the
 * append lock nothing can land after it. On a bad entry (one this node's
 * kt.key does not verify, a fork) the directory is rebuilt from the store,
 * or dropped when that fails too (KT requests and logging batches are
 * refused until a restart). */
static int kt_catchup(struct srv *s, struct srv_kt *kt, int64_t *got) {
  struct replay_ctx r = {kt, kt->n};
  int rc;
  if (got) *got = 0;
  if (!kt->shared) return 0;
  if (!kt->dir) return SOTTO_ERR_STORE;
  rc = s->store.ops->kt_entries_iter(s->store.impl, kt->n, -1, replay_one, &r);
  if (got) *got = r.want - kt->n;
  kt->n = r.want;
  if (rc != 0) {
    sotto__srv_log(0, "kt_catchup_failed", "entry=%lld hint=\"an entry in the store does not extend this node's "
                   "log: every node needs the same DATA/kt.key\"", (long long)r.want);
    if (kt_load(s, kt) != 0) sotto__srv_log(0, "kt_reload_failed", "%s", "logging=off");
    return SOTTO_ERR_STORE;
  }
  return 0;
}

/* Shared store: the append lock for this batch's transaction, then the
 * entries committed before it was granted. */
static int kt_append_lock(struct srv *s, struct srv_kt *kt) {
  int rc;
  if (!kt->shared || kt->locked) return 0;
  if ((rc = s->store.ops->kt_lock(s->store.impl)) != 0) return rc;
  kt->locked = 1;
  return kt_catchup(s, kt, NULL);
}

/* --kt-witness NAME:HEX;... (checked by config.c) into kt->wit. */
static int witnesses_parse(struct srv_kt *kt, const char *list) {
  const char *p = list;
  while (*p) {
    const char *end = strchr(p, ';'), *colon = strchr(p, ':');
    size_t len = end ? (size_t)(end - p) : strlen(p), bl = 0, i;
    struct kt_witness *w = &kt->wit[kt->n_wit];
    if (kt->n_wit >= SOTTO_SRV_KT_MAX_WITNESSES || !colon || colon > p + len ||
        (size_t)(colon - p) > SOTTO_SRV_KT_NAME_MAX)
      return -1;
    memcpy(w->name, p, (size_t)(colon - p));
    w->name[colon - p] = 0;
    if (sodium_hex2bin(w->pk, sizeof w->pk, colon + 1, (size_t)(p + len - colon - 1), NULL, &bl, NULL) != 0 ||
        bl != sizeof w->pk)
      return -1;
    for (i = 0; i < kt->n_wit; i++)
      if (!strcmp(kt->wit[i].name, w->name) || !memcmp(kt->wit[i].pk, w->pk, sizeof w->pk)) {
        fprintf(stderr, "sotto-server: --kt-witness %s is given twice (same name or key)\n", w->name);
        return -1;
      }
    kt->n_wit++;
    p += len + (end ? 1 : 0);
  }
  return 0;
}

/* Cosignatures are kept in the store (ops->kt_cosig_put, one row per
 * witness: its newest accepted cosignature). Older servers kept them in
 * DATA/kt.cosigs: u8 n || n x (pk(32) || head(112) || cosig(80)); that file
 * is moved into the store at start. Only cosignatures of configured
 * witnesses that verify on a head the log signed are served. */
#define COSIG_REC (SOTTO_KT_SIGN_PK_LEN + SOTTO_KT_HEAD_LEN + SOTTO_KT_COSIG_LEN)

struct cosig_ctx {
  struct srv_kt *kt;
  struct sotto_kt_log_id id;
};

/* One stored cosignature into kt->wit (checked when it is new to us). */
static int cosig_take(void *ctx, const uint8_t *pk, size_t pk_len, const uint8_t *head, size_t head_len,
                      const uint8_t *cosig, size_t cosig_len) {
  struct cosig_ctx *c = ctx;
  struct sotto_kt_head h;
  size_t j;
  if (pk_len != SOTTO_KT_SIGN_PK_LEN || head_len != SOTTO_KT_HEAD_LEN || cosig_len != SOTTO_KT_COSIG_LEN) return 0;
  for (j = 0; j < c->kt->n_wit; j++) {
    struct kt_witness *w = &c->kt->wit[j];
    if (memcmp(w->pk, pk, SOTTO_KT_SIGN_PK_LEN) != 0) continue;
    if (w->have && memcmp(w->head, head, SOTTO_KT_HEAD_LEN) == 0 && memcmp(w->cosig, cosig, SOTTO_KT_COSIG_LEN) == 0)
      return 0;
    if (sotto_kt_head_decode(&h, head, SOTTO_KT_HEAD_LEN) == 0 && sotto_kt_head_verify(&h, &c->id) == 0 &&
        sotto_kt_cosig_verify(cosig, w->pk, &h, &c->id) == 0) {
      memcpy(w->head, head, SOTTO_KT_HEAD_LEN);
      memcpy(w->cosig, cosig, SOTTO_KT_COSIG_LEN);
      w->have = 1;
    }
  }
  return 0;
}

/* The stored cosignatures into kt->wit. */
static int cosigs_refresh(struct srv *s, struct srv_kt *kt) {
  struct cosig_ctx c;
  c.kt = kt;
  sotto_kt_dir_log_id(&c.id, kt->dir);
  return s->store.ops->kt_cosigs_iter(s->store.impl, cosig_take, &c);
}

/* DATA/kt.cosigs of an older server into the store (then removed). */
static int cosigs_file_move(struct srv *s, struct srv_kt *kt) {
  const struct sotto_store_ops *ops = s->store.ops;
  uint8_t buf[1 + SOTTO_SRV_KT_MAX_WITNESSES * COSIG_REC];
  char path[4096];
  ssize_t got;
  size_t i;
  int fd, rc;
  (void)kt;
  if ((size_t)snprintf(path, sizeof path, "%s/%s", s->cfg->data, KT_COSIG_FILE) >= sizeof path) return -1;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) return errno == ENOENT ? 0 : -1;
  got = read(fd, buf, sizeof buf);
  close(fd);
  if (got < 1 || (size_t)got != 1 + (size_t)buf[0] * COSIG_REC) {
    sotto__srv_log(0, "kt_cosigs_ignored", "file=%s reason=size", KT_COSIG_FILE);
    return unlink(path) == 0 ? 0 : -1;
  }
  if ((rc = ops->begin(s->store.impl)) != 0) return -1;
  for (i = 0; i < buf[0] && rc == 0; i++) {
    const uint8_t *r = buf + 1 + i * COSIG_REC;
    struct sotto_kt_head h;
    if (sotto_kt_head_decode(&h, r + 32, SOTTO_KT_HEAD_LEN) != 0) continue; /* checked when served */
    rc = ops->kt_cosig_put(s->store.impl, r, h.tree_size, r + 32, SOTTO_KT_HEAD_LEN, r + 32 + SOTTO_KT_HEAD_LEN,
                           SOTTO_KT_COSIG_LEN);
  }
  if (rc == 0) rc = ops->commit(s->store.impl);
  if (rc != 0) {
    ops->rollback(s->store.impl);
    return -1;
  }
  sotto__srv_log(0, "kt_cosigs_moved", "file=%s cosignatures=%u", KT_COSIG_FILE, (unsigned)buf[0]);
  return unlink(path) == 0 ? 0 : -1;
}

/* Every logged label-version's value and opening is also kept under the
 * key "~VERSION:LABEL" in the same table (no label holds '~'), so that
 * KT_VERSIONS can prove each version logged since a device's last check;
 * the row under LABEL itself holds the newest. */
#define KT_HIST_MAX (1 + 10 + 1 + SOTTO_SRV_KT_LIST_LABEL_MAX)
static void hist_key(char out[KT_HIST_MAX + 1], uint32_t version, const char *label) {
  snprintf(out, KT_HIST_MAX + 1, "~%lu:%s", (unsigned long)version, label);
}

/* The newest value of label and its history row. */
static int value_put(struct srv *s, const char *label, uint32_t version, const uint8_t *value, size_t len,
                     const uint8_t opening[SOTTO_KT_OPENING_LEN]) {
  char hk[KT_HIST_MAX + 1];
  int rc;
  if ((rc = s->store.ops->kt_value_put(s->store.impl, label, version, value, len, opening)) != 0) return rc;
  hist_key(hk, version, label);
  return s->store.ops->kt_value_put(s->store.impl, hk, version, value, len, opening);
}

/* Backfill: accounts made while the server ran without the log (or
 * before it had one) are logged as version 0 of their name, in entries of
 * at most BACKFILL_CHUNK label-versions, each in its own transaction with
 * its values (as a batch). Runs at every start; costs one lookup per
 * account. */
#define BACKFILL_CHUNK 100000
struct backfill {
  struct srv *s;
  struct srv_kt *kt;
  size_t staged;
  uint64_t logged; /* label-versions staged or committed */
  uint64_t lists;  /* of which device lists */
  int open; /* a transaction is open (shared: holding the append lock) */
  int rc;
};

static int backfill_commit(struct backfill *b) {
  const struct sotto_store_ops *ops = b->s->store.ops;
  struct sotto_kt_head h;
  uint8_t hb[SOTTO_KT_HEAD_LEN], *upd;
  size_t cap = sotto_kt_update_len(sotto_kt_dir_staged(b->kt->dir)), ulen;
  int64_t now = sotto__srv_now_ms();
  int rc;
  if (now < b->kt->last_ms) now = b->kt->last_ms;
  if ((upd = malloc(cap)) == NULL) return SOTTO_ERR_NOMEM;
  rc = sotto_kt_dir_commit(b->kt->dir, &h, upd, cap, &ulen, (uint64_t)now);
  if (rc == 0) {
    sotto_kt_head_encode(hb, &h);
    rc = ops->kt_entry_put(b->s->store.impl, b->kt->n, hb, sizeof hb, upd, ulen);
  }
  free(upd);
  if (rc == 0) rc = ops->commit(b->s->store.impl);
  b->kt->locked = 0;
  if (rc != 0) return rc;
  b->open = 0;
  b->kt->n++;
  b->kt->last_ms = now;
  b->staged = 0;
  return 0;
}

/* Logs label = value as version 0 unless the label is logged already. */
static int backfill_label(struct backfill *b, const char *label, const uint8_t *value, size_t len) {
  const struct sotto_store_ops *ops = b->s->store.ops;
  uint8_t old[SOTTO_STORE_KT_MAX_VALUE], opening[SOTTO_KT_OPENING_LEN];
  uint32_t version;
  size_t old_len;
  int rc;
  rc = ops->kt_value_get(b->s->store.impl, label, &version, old, &old_len, opening);
  if (rc != 1) return rc < 0 ? rc : 0; /* logged already */
  if (!b->open) {
    if ((rc = ops->begin(b->s->store.impl)) != 0) return rc;
    b->open = 1;
    if (b->kt->shared) {
      /* Another node may have logged it meanwhile: look again under the lock. */
      if ((rc = kt_append_lock(b->s, b->kt)) != 0) return rc;
      rc = ops->kt_value_get(b->s->store.impl, label, &version, old, &old_len, opening);
      if (rc != 1) return rc < 0 ? rc : 0;
    }
  }
  if ((rc = sotto_kt_dir_add(b->kt->dir, opening, (const uint8_t *)label, strlen(label), 0, value, len)) != 0 ||
      (rc = value_put(b->s, label, 0, value, len, opening)) != 0) {
    sodium_memzero(opening, sizeof opening);
    return rc;
  }
  sodium_memzero(opening, sizeof opening);
  b->staged++;
  b->logged++;
  if (b->staged >= BACKFILL_CHUNK) return backfill_commit(b);
  return 0;
}

/* An account's key, and its current signed device list if it has one
 * (a list stored before the log logged lists). */
static int backfill_one(void *ctx, const char *user, const uint8_t *ik, size_t ik_len) {
  struct backfill *b = ctx;
  const struct sotto_store_ops *ops = b->s->store.ops;
  char canon[SOTTO_SRV_USER_MAX + 1], label[SOTTO_SRV_KT_LIST_LABEL_MAX + 1];
  uint8_t v[SOTTO_SRV_KT_LIST_VALUE_LEN], *list;
  uint32_t lv = 0;
  size_t ll = 0;
  uint64_t before;
  int rc;
  if (strlen(user) > SOTTO_SRV_USER_MAX || ik_len > SOTTO_KT_MAX_VALUE_LEN) return 0;
  sotto__srv_username_canon((const uint8_t *)user, strlen(user), canon);
  if ((rc = backfill_label(b, canon, ik, ik_len)) != 0) return rc;
  if (!ops->devlist_get) return 0;
  if ((list = malloc(SOTTO_STORE_MAX_DEVLIST)) == NULL) return SOTTO_ERR_NOMEM;
  rc = ops->devlist_get(b->s->store.impl, user, &lv, list, SOTTO_STORE_MAX_DEVLIST, &ll);
  if (rc == 0) sotto__srv_kt_list_value(v, lv, list, ll);
  free(list);
  if (rc != 0) return rc < 0 ? rc : 0; /* no list */
  sotto__srv_kt_list_label(label, user);
  before = b->logged;
  rc = backfill_label(b, label, v, sizeof v);
  if (b->logged != before) b->lists++;
  return rc;
}

static int backfill(struct srv *s, struct srv_kt *kt) {
  struct backfill b;
  int rc;
  if (!s->store.ops->accounts_iter) return 0;
  memset(&b, 0, sizeof b);
  b.s = s;
  b.kt = kt;
  rc = s->store.ops->accounts_iter(s->store.impl, backfill_one, &b);
  if (rc == 0 && b.staged) rc = backfill_commit(&b);
  if (rc == 0 && b.open) rc = s->store.ops->commit(s->store.impl); /* nothing staged: lets the lock go */
  kt->locked = 0;
  if (rc != 0) {
    if (b.open) s->store.ops->rollback(s->store.impl);
    return rc;
  }
  if (b.logged)
    sotto__srv_log(0, "kt_backfill", "accounts=%llu lists=%llu entries=%lld",
                   (unsigned long long)(b.logged - b.lists), (unsigned long long)b.lists, (long long)kt->n);
  return 0;
}

/* ---- the VRF of a batch's label-versions, in parallel ------------------------------------
 *
 * Each label-version logged costs one VRF evaluation (about 0.1 ms, the
 * bulk of logging). A batch logs in three steps: the store thread finds
 * every label-version's number (reads), then the VRF outputs and
 * commitments are computed by the store thread and KT_HELPERS helper
 * threads together (sotto_kt_dir_prepare only reads the directory's keys),
 * then the store thread stages them and writes values and openings, in the
 * batch's order. */
#define KT_HELPERS_MAX 3

struct kt_item {
  char label[SOTTO_SRV_KT_LIST_LABEL_MAX + 1];
  const uint8_t *value;
  size_t value_len;
  uint8_t own[SOTTO_STORE_MAX_IDENTITY]; /* an asynchronous item's value */
  int vsrc; /* value is own (1) or list_value (2): set again by items_fix after the array moved */
  uint8_t list_value[SOTTO_SRV_KT_LIST_VALUE_LEN];
  uint32_t version;
  uint8_t entry[SOTTO_KT_ENTRY_LEN];
  uint8_t opening[SOTTO_KT_OPENING_LEN];
  int ready; /* entry and opening were made on the I/O thread */
  int rc;
  /* Asynchronous jobs (kt_job) only: done (atomic) once a helper or the
   * store thread wrote entry, opening and rc; late when the store thread,
   * past the job's deadline, made the item again into entry2, opening2 and
   * rc2 because a helper still held it (see async_take). */
  int done, late;
  uint8_t entry2[SOTTO_KT_ENTRY_LEN];
  uint8_t opening2[SOTTO_KT_OPENING_LEN];
  int rc2;
};

/* An asynchronous job's item as applied: the store thread's copy if it
 * made one. */
static int item_rc(const struct kt_item *it) { return it->late ? it->rc2 : it->rc; }
static const uint8_t *item_entry(const struct kt_item *it) { return it->late ? it->entry2 : it->entry; }
static const uint8_t *item_opening(const struct kt_item *it) { return it->late ? it->opening2 : it->opening; }

struct kt_pool {
  pthread_mutex_t mu;
  pthread_cond_t go, done;
  pthread_cond_t pre_done;    /* a queued REGISTER's VRF is finished */
  pthread_t th[KT_HELPERS_MAX];
  size_t n_th;
  int stop;
  uint64_t gen;               /* a new job */
  const struct sotto_kt_dir *dir;
  struct kt_item *items;
  size_t n, next, finished;   /* next: first item not taken; finished: items done */
  /* The admission queue: REGISTERs whose version-0 VRF output a helper
   * computes before their batch starts (while earlier batches commit). */
  const struct sotto_kt_dir *prep; /* the I/O thread's key copy (never rebuilt) */
  struct op *q_head, *q_tail;
  uint64_t q_done, q_claimed, q_dropped; /* computed by a helper; taken back unstarted; freed before their batch */
};

/* kt_state of a queued REGISTER (under the pool's mutex) */
enum { KT_PRE_NONE = 0, KT_PRE_QUEUED, KT_PRE_RUNNING, KT_PRE_DONE };

/* Takes items of the current job until none is left; returns how many. */
static size_t pool_work(struct kt_pool *p) {
  size_t did = 0;
  for (;;) {
    size_t i;
    struct kt_item *it;
    pthread_mutex_lock(&p->mu);
    if (p->next >= p->n) {
      pthread_mutex_unlock(&p->mu);
      return did;
    }
    i = p->next++;
    pthread_mutex_unlock(&p->mu);
    it = &p->items[i];
    if (!it->ready)
      it->rc = sotto_kt_dir_prepare(it->entry, it->opening, p->dir, (const uint8_t *)it->label, strlen(it->label),
                                    it->version, it->value, it->value_len);
    did++;
    pthread_mutex_lock(&p->mu);
    p->finished++;
    if (p->finished == p->n) pthread_cond_signal(&p->done);
    pthread_mutex_unlock(&p->mu);
  }
}

/* Version 0 of a REGISTER's name: its VRF output and commitment into the
 * op (kt_pre says whether they are there). dir: keys only. */
static void pre_one(const struct sotto_kt_dir *dir, struct op *o) {
  char canon[SOTTO_SRV_USER_MAX + 1];
  o->kt_pre = 0;
  sotto__srv_username_canon(o->req.reg.username.p, o->req.reg.username.len, canon);
  if (sotto_kt_dir_prepare(o->kt_pre_entry, o->kt_pre_opening, dir, (const uint8_t *)canon, strlen(canon), 0,
                           o->req.reg.identity.p, o->req.reg.identity.len) == 0)
    o->kt_pre = 1;
}

/* Under p->mu: o leaves the admission queue. */
static void q_unlink(struct kt_pool *p, struct op *o) {
  if (o->kt_qprev)
    o->kt_qprev->kt_qnext = o->kt_qnext;
  else
    p->q_head = o->kt_qnext;
  if (o->kt_qnext)
    o->kt_qnext->kt_qprev = o->kt_qprev;
  else
    p->q_tail = o->kt_qprev;
  o->kt_qnext = o->kt_qprev = NULL;
}

static void *pool_thread(void *arg) {
  struct kt_pool *p = arg;
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    struct op *o;
    while (!p->stop && p->gen == seen && !p->q_head) pthread_cond_wait(&p->go, &p->mu);
    if (p->stop) break;
    if (p->gen != seen) {
      /* the store thread waits for this batch: it goes first */
      seen = p->gen;
      pthread_mutex_unlock(&p->mu);
      pool_work(p);
      pthread_mutex_lock(&p->mu);
      continue;
    }
    o = p->q_head;
    q_unlink(p, o);
    o->kt_state = KT_PRE_RUNNING;
    pthread_mutex_unlock(&p->mu);
    pre_one(p->prep, o);
    pthread_mutex_lock(&p->mu);
    o->kt_state = KT_PRE_DONE;
    p->q_done++;
    pthread_cond_broadcast(&p->pre_done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* o leaves the admission queue for good: unstarted, it is taken back
 * (kt_pre 0: its batch computes it); being computed, this waits for it. */
static void pre_claim(struct op *o, int dropped) {
  struct kt_pool *p = o->kt_q;
  pthread_mutex_lock(&p->mu);
  if (dropped) p->q_dropped++;
  if (o->kt_state == KT_PRE_QUEUED) {
    q_unlink(p, o);
    o->kt_pre = 0;
    if (!dropped) p->q_claimed++;
  }
  while (o->kt_state == KT_PRE_RUNNING) pthread_cond_wait(&p->pre_done, &p->mu);
  o->kt_state = KT_PRE_NONE;
  o->kt_q = NULL;
  pthread_mutex_unlock(&p->mu);
}

void sotto__srv_kt_pre_cancel(struct op *o) { pre_claim(o, 1); }

static void pool_free(struct kt_pool *p) {
  size_t i;
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->go);
  pthread_mutex_unlock(&p->mu);
  for (i = 0; i < p->n_th; i++) pthread_join(p->th[i], NULL);
  /* ops still queued forget the queue (they are freed later) */
  while (p->q_head) {
    struct op *o = p->q_head;
    q_unlink(p, o);
    o->kt_state = KT_PRE_NONE;
    o->kt_pre = 0;
    o->kt_q = NULL;
  }
  pthread_mutex_destroy(&p->mu);
  pthread_cond_destroy(&p->go);
  pthread_cond_destroy(&p->done);
  pthread_cond_destroy(&p->pre_done);
  free(p);
}

/* `want` helpers (-1: one per online core beyond the store thread's own),
 * at most KT_HELPERS_MAX; NULL for none (or if no thread starts). */
static struct kt_pool *pool_new(int threads) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  size_t want = threads >= 0 ? (size_t)threads : cores > 1 ? (size_t)(cores - 1) : 0, i;
  sigset_t all, old;
  struct kt_pool *p;
  if (want > KT_HELPERS_MAX) want = KT_HELPERS_MAX;
  if (want == 0 || (p = calloc(1, sizeof *p)) == NULL) return NULL;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->go, NULL);
  pthread_cond_init(&p->done, NULL);
  pthread_cond_init(&p->pre_done, NULL);
  /* The helpers take no signal (SIGTERM and the others go to the
   * signalfd of the I/O thread, which blocks them only later). */
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (i = 0; i < want; i++) {
    if (pthread_create(&p->th[i], NULL, pool_thread, p) != 0) break;
    p->n_th++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (p->n_th == 0) {
    pool_free(p);
    return NULL;
  }
  return p;
}

/* sotto_kt_dir_prepare for items[0..n), on the store thread and the pool. */
static void prepare_all(struct srv_kt *kt, struct kt_item *items, size_t n) {
  struct kt_pool *p = kt->pool;
  size_t i, todo = 0;
  for (i = 0; i < n; i++) todo += !items[i].ready;
  if (!p || todo < 2) {
    for (i = 0; i < n; i++)
      if (!items[i].ready)
        items[i].rc = sotto_kt_dir_prepare(items[i].entry, items[i].opening, kt->dir, (const uint8_t *)items[i].label,
                                         strlen(items[i].label), items[i].version, items[i].value,
                                         items[i].value_len);
    return;
  }
  pthread_mutex_lock(&p->mu);
  p->dir = kt->dir;
  p->items = items;
  p->n = n;
  p->next = p->finished = 0;
  p->gen++;
  pthread_cond_broadcast(&p->go);
  pthread_mutex_unlock(&p->mu);
  pool_work(p);
  pthread_mutex_lock(&p->mu);
  while (p->finished < p->n) pthread_cond_wait(&p->done, &p->mu);
  p->items = NULL;
  p->n = 0;
  pthread_mutex_unlock(&p->mu);
}

/* Room for item n (the array doubles; 16 to start). Not realloc: items can
 * already hold openings (precomputed on the I/O thread), and the old array
 * is wiped before it is freed, as the final one is. */
static int items_room(struct kt_item **items, size_t *cap, size_t n) {
  size_t nc;
  struct kt_item *q;
  if (n < *cap) return 0;
  nc = *cap ? 2 * *cap : 16;
  if (!(q = calloc(nc, sizeof *q))) return SOTTO_ERR_NOMEM;
  if (*items) {
    memcpy(q, *items, *cap * sizeof *q);
    sodium_memzero(*items, *cap * sizeof **items);
    free(*items);
  }
  *items = q;
  *cap = nc;
  return 0;
}

/* Points each item's value at its own buffer (items_room may have moved
 * the array since it was set). */
static void items_fix(struct kt_item *items, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (items[i].vsrc == 1)
      items[i].value = items[i].own;
    else if (items[i].vsrc == 2)
      items[i].value = items[i].list_value;
}

/* The next version of label: one more than an earlier item of this batch
 * for the same label, else than the stored newest, else 0. */
static int next_version(struct srv *s, struct kt_item *items, size_t n, const char *label, uint32_t *version) {
  uint8_t old[SOTTO_STORE_KT_MAX_VALUE], opening[SOTTO_KT_OPENING_LEN];
  size_t old_len, i;
  int rc;
  for (i = n; i-- > 0;)
    if (strcmp(items[i].label, label) == 0) {
      if (items[i].version >= SOTTO_KT_MAX_VERSION) return SOTTO_ERR_TOO_LARGE;
      *version = items[i].version + 1;
      return 0;
    }
  rc = s->store.ops->kt_value_get(s->store.impl, label, version, old, &old_len, opening);
  sodium_memzero(opening, sizeof opening);
  if (rc < 0) return rc;
  if (rc == 1) {
    *version = 0;
    return 0;
  }
  if (*version >= SOTTO_KT_MAX_VERSION) return SOTTO_ERR_TOO_LARGE;
  (*version)++;
  return 0;
}

/* ---- asynchronous logging of new names (kt-pending-max > 0) ------------------------------
 *
 * A REGISTER writes its account and a mark, the kt_values row "!CANON"
 * (value: the username; no label holds a '!'), in its own savepoint: it is
 * answered after that commit, without any VRF. Nothing of a marked name is
 * served (sotto__srv_kt_pending: ERR 44). The log takes marked names in
 * jobs of at most KT_JOB_NAMES:
 *  1. a batch (store thread, in its transaction) reads the marks and what
 *     each name's labels should log (the account key, the current signed
 *     device list), unless the log holds that already: the snapshot;
 *  2. after its commit, idle-priority helper threads (SCHED_IDLE) compute
 *     the VRF outputs and commitments, while the store thread runs
 *     batches; when they are done they wake the I/O thread, which starts a
 *     batch (an empty one if nothing else waits);
 *  3. that batch, before its own ops' entries, checks every name again (the
 *     mark is still there, its labels' versions and values are still what
 *     the snapshot saw; else the name waits for the next job), stages the
 *     prepared entries, writes values and deletes the marks: one entry with
 *     the batch's own, in its transaction (all or nothing).
 * If the helpers had no CPU for KT_JOB_DEADLINE_MS, the store thread
 * finishes the job itself. After a crash the marks are still in the store:
 * the start's backfill logs their names (synchronously, before listening)
 * and the first job deletes the marks. In a cluster the marks are in the shared
 * database: every node checks them before serving, any node may log them
 * (under the append lock, as every entry). */
#define KT_MARK_LO "!"
#define KT_MARK_HI "\""
#define KT_MARK_MAX (1 + SOTTO_SRV_USER_MAX)
#define KT_JOB_NAMES 4096
#define KT_JOB_DEADLINE_MS 1000
/* A batch of more than KT_QUIET_OPS requests, or one taken while more
 * requests waited, means the server is busy: the log's store-thread work
 * (snapshot, apply) waits until no batch was busy for KT_QUIET_MS, unless
 * the oldest marked name waited KT_BUSY_MAX_MS already. So a burst of
 * registrations is answered at the unlogged rate and logged right after;
 * under a longer flood the log takes its share within ~1 s. */
#define KT_QUIET_OPS 64
#define KT_QUIET_MS 20
#define KT_BUSY_MAX_MS 1000
#define KT_SNAP_IDLE_MS 1000 /* a snapshot that found nothing: the next kt-only batch not before */
#define KT_ASYNC_MAX 4

struct kt_job_name {
  char user[SOTTO_SRV_USER_MAX + 1];
  char canon[SOTTO_SRV_USER_MAX + 1];
  size_t first, n; /* its items */
};

struct kt_job {
  struct kt_item *items;
  size_t n_items, cap_items;
  struct kt_job_name *names;
  size_t n_names;
  /* Lock-free for the helpers (a helper at idle priority may be preempted
   * at any point: it must never hold a lock the request path waits for) */
  size_t next, finished; /* atomic: items handed out / done */
  int refs;              /* atomic: the store thread's (while it is kt_async.job) + one per helper in it */
  int64_t t0_ms;         /* mono: handed to the helpers */
  const struct sotto_kt_dir *keys;
};

struct kt_async {
  pthread_mutex_t mu;
  pthread_cond_t go, done;
  pthread_t th[KT_ASYNC_MAX];
  size_t n_th;
  int stop;
  struct kt_job *job; /* in flight, or NULL */
  const int *efd;     /* the I/O thread's wake-up (made after the log opens) */
  uint64_t logged;    /* names logged (for the log line at close) */
};

static void mark_label(char out[KT_MARK_MAX + 1], const char *canon) {
  snprintf(out, KT_MARK_MAX + 1, "%s%s", KT_MARK_LO, canon);
}

static void job_free(struct kt_job *j) {
  if (!j) return;
  if (j->items) {
    sodium_memzero(j->items, j->cap_items * sizeof *j->items);
    free(j->items);
  }
  free(j->names);
  free(j);
}

static void job_unref(struct kt_job *j) {
  if (j && __atomic_sub_fetch(&j->refs, 1, __ATOMIC_ACQ_REL) == 0) job_free(j);
}

/* Items of job j (the caller holds a reference): take and compute until
 * none is left (helpers and, past the deadline, the store thread). The
 * last one done wakes the store thread (if it waits) and the I/O thread. */
static void job_work(struct kt_async *a, struct kt_job *j) {
  size_t n = j->n_items, i = __atomic_fetch_add(&j->next, 1, __ATOMIC_ACQ_REL);
  while (i < n) {
    struct kt_item *it = &j->items[i];
    size_t i2;
    if (__atomic_load_n(&a->stop, __ATOMIC_ACQUIRE)) return; /* shutting down: the job is dropped */
    it->rc = sotto_kt_dir_prepare(it->entry, it->opening, j->keys, (const uint8_t *)it->label, strlen(it->label),
                                  it->version, it->value, it->value_len);
    __atomic_store_n(&it->done, 1, __ATOMIC_RELEASE);
    i2 = __atomic_fetch_add(&j->next, 1, __ATOMIC_ACQ_REL);
    if (__atomic_add_fetch(&j->finished, 1, __ATOMIC_ACQ_REL) == n) {
      uint64_t one = 1;
      pthread_mutex_lock(&a->mu);
      pthread_cond_broadcast(&a->done);
      pthread_mutex_unlock(&a->mu);
      if (*a->efd >= 0 && write(*a->efd, &one, sizeof one) != (ssize_t)sizeof one) {
        /* the I/O thread also looks at the job after every wake-up */
      }
    }
    i = i2;
  }
}

static void *async_thread(void *arg) {
  struct kt_async *a = arg;
  struct sched_param sp;
  memset(&sp, 0, sizeof sp);
  /* Only CPU the request path leaves: the store and I/O threads go first.
   * (A job they starve for KT_JOB_DEADLINE_MS is finished by the store
   * thread.) */
  (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
  pthread_mutex_lock(&a->mu);
  for (;;) {
    struct kt_job *j;
    while (!a->stop && (!a->job || __atomic_load_n(&a->job->next, __ATOMIC_ACQUIRE) >= a->job->n_items))
      pthread_cond_wait(&a->go, &a->mu);
    if (a->stop) break;
    j = a->job;
    __atomic_add_fetch(&j->refs, 1, __ATOMIC_ACQ_REL); /* alive while this helper is in it */
    pthread_mutex_unlock(&a->mu);
    job_work(a, j);
    job_unref(j);
    pthread_mutex_lock(&a->mu);
  }
  pthread_mutex_unlock(&a->mu);
  return NULL;
}

static struct kt_async *async_new(const int *efd) {
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  size_t want = cores < 1 ? 1 : cores > KT_ASYNC_MAX ? KT_ASYNC_MAX : (size_t)cores, i;
  sigset_t all, old;
  struct kt_async *a;
  if ((a = calloc(1, sizeof *a)) == NULL) return NULL;
  pthread_mutex_init(&a->mu, NULL);
  pthread_cond_init(&a->go, NULL);
  pthread_cond_init(&a->done, NULL);
  a->efd = efd;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, &old);
  for (i = 0; i < want; i++) {
    if (pthread_create(&a->th[i], NULL, async_thread, a) != 0) break;
    a->n_th++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  return a; /* no helper: the store thread computes each job at its deadline */
}

static void async_free(struct kt_async *a) {
  size_t i;
  if (!a) return;
  pthread_mutex_lock(&a->mu);
  __atomic_store_n(&a->stop, 1, __ATOMIC_RELEASE);
  pthread_cond_broadcast(&a->go);
  pthread_mutex_unlock(&a->mu);
  for (i = 0; i < a->n_th; i++) pthread_join(a->th[i], NULL);
  job_unref(a->job);
  pthread_mutex_destroy(&a->mu);
  pthread_cond_destroy(&a->go);
  pthread_cond_destroy(&a->done);
  free(a);
}

/* What name nm should log now, appended to job j's items: the account key
 * under the canonical name and the current signed list under its label,
 * each unless the log's newest version holds it already; nothing when the
 * account is gone. */
static int name_wants(struct srv *s, struct kt_job *j, struct kt_job_name *nm) {
  const struct sotto_store_ops *ops = s->store.ops;
  struct sotto_store_account acc;
  uint8_t old[SOTTO_STORE_KT_MAX_VALUE], opening[SOTTO_KT_OPENING_LEN], lv[SOTTO_SRV_KT_LIST_VALUE_LEN], *list;
  char label[SOTTO_SRV_KT_LIST_LABEL_MAX + 1];
  uint32_t version = 0, ver;
  size_t old_len = 0, ll = 0;
  struct kt_item *it;
  int rc;
  nm->first = j->n_items;
  nm->n = 0;
  if ((rc = ops->account_get(s->store.impl, nm->user, &acc)) != 0) return rc < 0 ? rc : 0;
  if (acc.identity_len > SOTTO_KT_MAX_VALUE_LEN) return 0;
  rc = ops->kt_value_get(s->store.impl, nm->canon, &version, old, &old_len, opening);
  sodium_memzero(opening, sizeof opening);
  if (rc < 0) return rc;
  if (rc == 1 || old_len != acc.identity_len || memcmp(old, acc.identity, old_len) != 0) {
    int absent = rc == 1;
    if (!absent && version >= SOTTO_KT_MAX_VERSION) return SOTTO_ERR_TOO_LARGE;
    if ((rc = items_room(&j->items, &j->cap_items, j->n_items)) != 0) return rc;
    rc = absent;
    it = &j->items[j->n_items++];
    memset(it, 0, sizeof *it);
    snprintf(it->label, sizeof it->label, "%s", nm->canon);
    it->version = rc == 1 ? 0 : version + 1;
    memcpy(it->own, acc.identity, acc.identity_len);
    it->vsrc = 1;
    it->value = it->own;
    it->value_len = acc.identity_len;
    nm->n++;
  }
  if (!ops->devlist_get) return 0;
  if ((list = malloc(SOTTO_STORE_MAX_DEVLIST)) == NULL) return SOTTO_ERR_NOMEM;
  rc = ops->devlist_get(s->store.impl, nm->user, &ver, list, SOTTO_STORE_MAX_DEVLIST, &ll);
  if (rc == 0) sotto__srv_kt_list_value(lv, ver, list, ll);
  free(list);
  if (rc != 0) return rc < 0 ? rc : 0; /* no list */
  sotto__srv_kt_list_label(label, nm->user);
  rc = ops->kt_value_get(s->store.impl, label, &version, old, &old_len, opening);
  sodium_memzero(opening, sizeof opening);
  if (rc < 0) return rc;
  if (rc == 0 && old_len == sizeof lv && memcmp(old, lv, sizeof lv) == 0) return 0;
  if (rc == 0 && version >= SOTTO_KT_MAX_VERSION) return SOTTO_ERR_TOO_LARGE;
  {
    int absent = rc == 1;
    if ((rc = items_room(&j->items, &j->cap_items, j->n_items)) != 0) return rc;
    rc = absent;
  }
  it = &j->items[j->n_items++];
  memset(it, 0, sizeof *it);
  snprintf(it->label, sizeof it->label, "%s", label);
  it->version = rc == 1 ? 0 : version + 1;
  memcpy(it->list_value, lv, sizeof lv);
  it->vsrc = 2;
  it->value = it->list_value;
  it->value_len = sizeof lv;
  nm->n++;
  return 0;
}

static int count_mark(void *ctx, const char *label, const uint8_t *value, size_t len) {
  (void)label;
  (void)value;
  (void)len;
  (*(int64_t *)ctx)++;
  return 0;
}

struct snap_ctx {
  struct kt_job *j;
  size_t cap;
};

static int snap_mark(void *ctx, const char *label, const uint8_t *value, size_t len) {
  struct snap_ctx *c = ctx;
  struct kt_job_name *nm;
  size_t ll = strlen(label);
  if (c->j->n_names >= c->cap) return 0;
  if (ll < 2 || ll > KT_MARK_MAX || len == 0 || len > SOTTO_SRV_USER_MAX) return 0; /* cannot be */
  nm = &c->j->names[c->j->n_names++];
  memcpy(nm->user, value, len);
  nm->user[len] = 0;
  memcpy(nm->canon, label + 1, ll); /* with the NUL */
  return 0;
}

/* Step 1, in the batch's transaction: the next job (kt->proposed), or
 * nothing if no name is marked. */
static int async_snapshot(struct srv *s, struct srv_kt *kt) {
  struct kt_job *j;
  struct snap_ctx c;
  size_t i;
  int rc;
  if ((j = calloc(1, sizeof *j)) == NULL) return SOTTO_ERR_NOMEM;
  if ((j->names = calloc(KT_JOB_NAMES, sizeof *j->names)) == NULL) {
    free(j);
    return SOTTO_ERR_NOMEM;
  }
  c.j = j;
  c.cap = KT_JOB_NAMES;
  /* From after the last name the previous snapshot took, then from the
   * first mark: names that keep being refused (changed meanwhile) or come
   * first alphabetically do not starve the others beyond KT_JOB_NAMES. */
  if (kt->snap_from[0]) {
    rc = s->store.ops->kt_labels_iter(s->store.impl, kt->snap_from, KT_MARK_HI, KT_JOB_NAMES, snap_mark, &c);
    if (rc == 0 && j->n_names < KT_JOB_NAMES)
      rc = s->store.ops->kt_labels_iter(s->store.impl, KT_MARK_LO, kt->snap_from,
                                        (int64_t)(KT_JOB_NAMES - j->n_names), snap_mark, &c);
  } else {
    rc = s->store.ops->kt_labels_iter(s->store.impl, KT_MARK_LO, KT_MARK_HI, KT_JOB_NAMES, snap_mark, &c);
  }
  /* the next one starts after the last name taken (a label above it:
   * no username holds a byte below '\x02') */
  if (rc == 0 && j->n_names > 0)
    snprintf(kt->snap_from, sizeof kt->snap_from, "%s%s\x01", KT_MARK_LO, j->names[j->n_names - 1].canon);
  for (i = 0; rc == 0 && i < j->n_names; i++) rc = name_wants(s, j, &j->names[i]);
  if (rc != 0 || j->n_names == 0) {
    job_free(j);
    if (rc == 0) __atomic_store_n(&kt->next_snap_ms, sotto__srv_mono_ms() + KT_SNAP_IDLE_MS, __ATOMIC_RELEASE);
    return rc;
  }
  items_fix(j->items, j->n_items);
  j->keys = kt->prep;
  j->refs = 1;
  kt->proposed = j;
  return 0;
}

/* Step 3, in the batch's transaction: what job j prepared, for each name
 * whose mark and labels are as the snapshot saw them; the marks of those
 * names go. */
static int async_apply(struct srv *s, struct srv_kt *kt, struct kt_job *j) {
  const struct sotto_store_ops *ops = s->store.ops;
  struct kt_job now;
  size_t i, k;
  int rc = 0;
  memset(&now, 0, sizeof now);
  if ((now.names = calloc(1, sizeof *now.names)) == NULL) return SOTTO_ERR_NOMEM;
  for (i = 0; i < j->n_names && rc == 0; i++) {
    struct kt_job_name *nm = &j->names[i];
    uint8_t v[SOTTO_STORE_KT_MAX_VALUE], opening[SOTTO_KT_OPENING_LEN];
    char mark[KT_MARK_MAX + 1];
    uint32_t ver;
    size_t vl = 0;
    int same;
    mark_label(mark, nm->canon);
    rc = ops->kt_value_get(s->store.impl, mark, &ver, v, &vl, opening);
    if (rc == 1) {
      rc = 0; /* logged meanwhile (another node), or unregistered */
      continue;
    }
    if (rc != 0) break;
    now.n_items = 0;
    memcpy(&now.names[0], nm, sizeof *nm);
    if ((rc = name_wants(s, &now, &now.names[0])) != 0) break;
    items_fix(now.items, now.n_items);
    same = now.n_items == nm->n;
    for (k = 0; same && k < nm->n; k++) {
      const struct kt_item *a = &j->items[nm->first + k], *b = &now.items[k];
      same = item_rc(a) == 0 && strcmp(a->label, b->label) == 0 && a->version == b->version &&
             a->value_len == b->value_len && memcmp(a->value, b->value, a->value_len) == 0;
    }
    if (!same) continue; /* changed since the snapshot: the next job */
    for (k = 0; k < nm->n && rc == 0; k++) {
      const struct kt_item *it = &j->items[nm->first + k];
      kt->touched = 1;
      if ((rc = sotto_kt_dir_add_prepared(kt->dir, item_entry(it))) == 0)
        rc = value_put(s, it->label, it->version, it->value, it->value_len, item_opening(it));
    }
    if (rc == 0 && (rc = ops->kt_value_del(s->store.impl, mark)) == 0) kt->b_removed++;
  }
  if (now.items) {
    sodium_memzero(now.items, now.cap_items * sizeof *now.items);
    free(now.items);
  }
  free(now.names);
  return rc;
}

/* 1 if name (as sent) is marked: its account is not logged yet. st: the
 * store of the calling thread (the batch's or a read pool worker's). A
 * single node knows when no name is marked. */
int sotto__srv_kt_pending(struct srv *s, struct sotto_store *st, const char *user) {
  struct srv_kt *kt = s->kt;
  uint8_t v[SOTTO_STORE_KT_MAX_VALUE], opening[SOTTO_KT_OPENING_LEN];
  char canon[SOTTO_SRV_USER_MAX + 1], mark[KT_MARK_MAX + 1];
  uint32_t ver;
  size_t vl = 0, len = strlen(user);
  int rc;
  if (!kt || len > SOTTO_SRV_USER_MAX) return 0;
  /* A cluster node looks whenever --kt is on (other nodes may log names
   * asynchronously even if this one does not); a single node knows when
   * none waits. Callers read what they serve first: a REGISTER that
   * committed before that read counted its mark before its commit. */
  if (!kt->shared && (!kt->async || __atomic_load_n(&kt->pending_n, __ATOMIC_ACQUIRE) <= 0)) return 0;
  if (kt->shared && !st->ops->kt_value_get) return 0;
  sotto__srv_username_canon((const uint8_t *)user, len, canon);
  mark_label(mark, canon);
  rc = st->ops->kt_value_get(st->impl, mark, &ver, v, &vl, opening);
  return rc == 0 ? 1 : rc < 0 ? rc : 0;
}

/* REGISTER (its own savepoint, after the account): the mark, or
 * SOTTO_SRV_E_RATE in *code when kt-pending-max names wait already (then
 * before anything is written: call with mark 0 first). */
int sotto__srv_kt_register(struct srv *s, const char *user, const char *canon, int mark, int *code) {
  struct srv_kt *kt = s->kt;
  static const uint8_t zero[SOTTO_KT_OPENING_LEN];
  char label[KT_MARK_MAX + 1];
  int rc;
  if (!kt || !kt->async) return 0;
  if (!mark) {
    if (__atomic_load_n(&kt->pending_n, __ATOMIC_ACQUIRE) >= s->cfg->kt_pending_max) {
      *code = SOTTO_SRV_E_RATE;
      sotto__srv_log(2, "kt_pending_full", "pending=%lld", (long long)kt->pending_n);
    }
    return 0;
  }
  mark_label(label, canon);
  if ((rc = s->store.ops->kt_value_put(s->store.impl, label, 0, (const uint8_t *)user, strlen(user), zero)) != 0)
    return rc;
  /* counted before the commit: a reader that sees the account sees the count */
  if (__atomic_add_fetch(&kt->pending_n, 1, __ATOMIC_ACQ_REL) == 1)
    __atomic_store_n(&kt->since_ms, sotto__srv_mono_ms(), __ATOMIC_RELEASE);
  kt->b_added++;
  return 0;
}

int64_t sotto__srv_kt_pending_count(struct srv *s) {
  if (!s->kt || !s->kt->async) return -1;
  return __atomic_load_n(&s->kt->pending_n, __ATOMIC_ACQUIRE);
}

/* kt-log-delay-ms: 1 once the oldest marked name waited that long. */
static int async_due(const struct srv *s, struct srv_kt *kt) {
  int64_t since = __atomic_load_n(&kt->since_ms, __ATOMIC_ACQUIRE);
  return s->cfg->kt_log_delay_ms <= 0 || sotto__srv_mono_ms() - since >= s->cfg->kt_log_delay_ms;
}

/* I/O thread: 1 if the log wants a batch now (a job is ready or late, or
 * marked names wait for a snapshot). */
int sotto__srv_kt_want(struct srv *s) {
  struct srv_kt *kt = s->kt;
  struct kt_async *a;
  int want = 0;
  int64_t now_ms = sotto__srv_mono_ms();
  if (!kt || !kt->async || !(a = kt->aq) || s->stopping ||
      now_ms < __atomic_load_n(&kt->retry_ms, __ATOMIC_ACQUIRE))
    return 0;
  /* the quiet rule (sotto__srv_kt_plan): no log-only batch within
   * KT_QUIET_MS of a busy one (it would do no log work), unless the oldest
   * name waited KT_BUSY_MAX_MS */
  if (now_ms - __atomic_load_n(&kt->busy_ms, __ATOMIC_ACQUIRE) < KT_QUIET_MS &&
      now_ms - __atomic_load_n(&kt->since_ms, __ATOMIC_ACQUIRE) < KT_BUSY_MAX_MS)
    return 0;
  /* Never wait here (the I/O thread): a helper's wake-up or the next tick
   * asks again. */
  if (pthread_mutex_trylock(&a->mu) != 0) return 0;
  if (a->job)
    want = __atomic_load_n(&a->job->finished, __ATOMIC_ACQUIRE) == a->job->n_items ||
           now_ms - a->job->t0_ms >= KT_JOB_DEADLINE_MS;
  else
    want = __atomic_load_n(&kt->pending_n, __ATOMIC_ACQUIRE) > 0 &&
           now_ms >= __atomic_load_n(&kt->next_snap_ms, __ATOMIC_ACQUIRE) && async_due(s, kt);
  pthread_mutex_unlock(&a->mu);
  return want;
}

/* Store thread, in the batch's transaction, before its ops' items: the
 * job in flight if it is done (or late: then finished here). */
static int async_take(struct srv *s, struct srv_kt *kt) {
  struct kt_async *a = kt->aq;
  struct kt_job *j;
  int rc;
  kt->taken = 0;
  if (!a || !kt->take) return 0;
  pthread_mutex_lock(&a->mu);
  j = a->job; /* this thread alone clears it: j stays alive until then */
  pthread_mutex_unlock(&a->mu);
  if (!j) return 0;
  if (__atomic_load_n(&j->finished, __ATOMIC_ACQUIRE) < j->n_items) {
    size_t i;
    /* late (sotto__srv_kt_plan): the store thread computes what is left
     * itself rather than wait for a starved helper. An item a helper holds
     * is made again here, into the item's second copy, never waited for:
     * a helper runs at idle priority and, on a busy machine, may not run
     * again for a long time, while every request waits for this batch.
     * (The VRF and the commitment are deterministic: the same bytes.) The
     * helper finishes its own copy later, unread; its reference keeps the
     * job alive until then. */
    job_work(a, j);
    for (i = 0; i < j->n_items; i++) {
      struct kt_item *it = &j->items[i];
      if (it->late || __atomic_load_n(&it->done, __ATOMIC_ACQUIRE)) continue;
      it->rc2 = sotto_kt_dir_prepare(it->entry2, it->opening2, j->keys, (const uint8_t *)it->label,
                                     strlen(it->label), it->version, it->value, it->value_len);
      it->late = 1;
      __atomic_add_fetch(&kt->late_items, 1, __ATOMIC_ACQ_REL);
    }
  }
  kt->taken = 1; /* it goes when the batch commits (kept for a rerun the store asks for) */
  if (kt->shared && (rc = kt_append_lock(s, kt)) != 0) return rc;
  if (!kt->dir) return SOTTO_ERR_STORE;
  return async_apply(s, kt, j);
}

/* Store thread, at the start of each attempt at batch b (before anything
 * is sent): whether this attempt may do log work (quiet) and applies the
 * job in flight (done, or late). 1 if it applies a job: on a shared store
 * the append lock is then taken, which the cluster's lock order allows
 * only under the order lock held exclusively (srv_commit.c). */
int sotto__srv_kt_plan(struct srv *s, const struct batch *b) {
  struct srv_kt *kt = s->kt;
  struct kt_async *a;
  int64_t now_ms;
  if (!kt) return 0;
  kt->quiet = kt->take = 0;
  if (!kt->async || !(a = kt->aq)) return 0;
  now_ms = sotto__srv_mono_ms();
  if (b->n > KT_QUIET_OPS || b->left > 0) __atomic_store_n(&kt->busy_ms, now_ms, __ATOMIC_RELEASE);
  kt->quiet = now_ms - __atomic_load_n(&kt->busy_ms, __ATOMIC_ACQUIRE) >= KT_QUIET_MS ||
              now_ms - __atomic_load_n(&kt->since_ms, __ATOMIC_ACQUIRE) >= KT_BUSY_MAX_MS;
  if (kt->quiet) {
    pthread_mutex_lock(&a->mu);
    if (a->job)
      kt->take = __atomic_load_n(&a->job->finished, __ATOMIC_ACQUIRE) == a->job->n_items ||
                 now_ms - a->job->t0_ms >= KT_JOB_DEADLINE_MS;
    pthread_mutex_unlock(&a->mu);
  }
  return kt->take;
}

uint64_t sotto__srv_kt_apply_failed(struct srv *s) {
  return s->kt ? __atomic_load_n(&s->kt->apply_failed, __ATOMIC_ACQUIRE) : 0;
}

uint64_t sotto__srv_kt_late_items(struct srv *s) {
  return s->kt ? __atomic_load_n(&s->kt->late_items, __ATOMIC_ACQUIRE) : 0;
}

int sotto__srv_kt_open(struct srv *s) {
  const struct sotto_store_ops *o = s->store.ops;
  struct srv_kt *kt;
  if (!o->kt_entry_put || !o->kt_entries_iter || !o->kt_value_put || !o->kt_value_get || !o->kt_cosig_put ||
      !o->kt_cosigs_iter || (s->cfg->cluster[0] && !o->kt_lock)) {
    fprintf(stderr, "sotto-server: --kt is not available on the %s store%s\n", s->store.backend,
            s->cfg->cluster[0] ? " in a cluster" : "");
    return -1;
  }
  if ((kt = calloc(1, sizeof *kt)) == NULL) return -1;
  kt->shared = s->cfg->cluster[0] != 0;
  if (kt_load(s, kt) != 0) {
    fprintf(stderr,
            "sotto-server: cannot open the key-transparency log (DATA/%s or its stored entries%s)\n", KT_KEY_FILE,
            kt->shared ? "; every node of a cluster needs the same DATA/kt.key" : "");
    free(kt);
    return -1;
  }
  if (witnesses_parse(kt, s->cfg->kt_witness) != 0) {
    fprintf(stderr, "sotto-server: --kt-witness: cannot use the list of witnesses\n");
    sotto_kt_dir_free(kt->dir);
    free(kt);
    return -1;
  }
  if (backfill(s, kt) != 0) {
    fprintf(stderr, "sotto-server: cannot log the accounts made before the key-transparency log (backfill)\n");
    sotto_kt_dir_free(kt->dir);
    free(kt);
    return -1;
  }
  if (cosigs_file_move(s, kt) != 0 || cosigs_refresh(s, kt) != 0) {
    fprintf(stderr, "sotto-server: cannot read the witnesses' cosignatures (DATA/%s or the store)\n",
            KT_COSIG_FILE);
    sotto_kt_dir_free(kt->dir);
    free(kt);
    return -1;
  }
  {
    /* The I/O thread's copy of the keys: never rebuilt (kt->dir is, on the
     * store thread), so it may be read there and by the helpers at any time. */
    uint8_t key[64];
    if (load_keys(s->cfg->data, key) == 0 && sotto_kt_dir_new(&kt->prep, key, key + 32) != 0) kt->prep = NULL;
    sodium_memzero(key, sizeof key);
  }
  kt->srv = s;
  if (s->cfg->kt_pending_max > 0 && kt->prep && s->store.ops->kt_value_del && s->store.ops->kt_labels_iter) {
    /* Names marked before a crash or a restart were logged by backfill() above; their marks go with the first job. */
    int64_t marked = 0;
    if (s->store.ops->kt_labels_iter(s->store.impl, KT_MARK_LO, KT_MARK_HI, INT64_MAX, count_mark, &marked) != 0 ||
        (kt->aq = async_new(&s->efd)) == NULL) {
      fprintf(stderr, "sotto-server: cannot start the key-transparency log's helpers\n");
      sotto_kt_dir_free(kt->prep);
      sotto_kt_dir_free(kt->dir);
      free(kt);
      return -1;
    }
    kt->async = 1;
    kt->pending_n = marked;
    kt->counted = -1;
    kt->since_ms = sotto__srv_mono_ms();
    if (marked) sotto__srv_log(0, "kt_pending", "names=%lld", (long long)marked);
  }
  kt->pool = pool_new(s->cfg->kt_threads);
  if (kt->pool) kt->pool->prep = kt->prep; /* set before any REGISTER is admitted */
  s->kt = kt;
  {
    /* The log's public identity, for clients and witnesses to pin. */
    struct sotto_kt_log_id id;
    char sig[2 * SOTTO_KT_SIGN_PK_LEN + 1], vrf[2 * SOTTO_KT_VRF_PK_LEN + 1];
    sotto_kt_dir_log_id(&id, kt->dir);
    sodium_bin2hex(sig, sizeof sig, id.sig_pk, sizeof id.sig_pk);
    sodium_bin2hex(vrf, sizeof vrf, id.vrf_pk, sizeof id.vrf_pk);
    sotto__srv_log(0, "kt_open", "entries=%lld sig_pk=%s vrf_pk=%s witnesses=%zu vrf_helpers=%zu async=%d", (long long)kt->n,
                   sig, vrf, kt->n_wit, kt->pool ? kt->pool->n_th : (size_t)0, kt->async);
  }
  return 0;
}

void sotto__srv_kt_close(struct srv *s) {
  if (!s->kt) return;
  if (s->kt->pool) {
    struct kt_pool *p = s->kt->pool;
    unsigned long long ahead, back, dropped;
    pthread_mutex_lock(&p->mu);
    ahead = p->q_done;
    back = p->q_claimed;
    dropped = p->q_dropped;
    pthread_mutex_unlock(&p->mu);
    sotto__srv_log(1, "kt_vrf_queue", "ahead=%llu taken_back=%llu dropped=%llu", ahead, back, dropped);
  }
  pool_free(s->kt->pool);
  if (s->kt->aq) sotto__srv_log(1, "kt_async", "logged=%llu pending=%lld", (unsigned long long)s->kt->aq->logged,
                                (long long)s->kt->pending_n);
  async_free(s->kt->aq);
  job_free(s->kt->proposed);
  if (s->kt->prep) sotto_kt_dir_free(s->kt->prep);
  if (s->kt->dir) sotto_kt_dir_free(s->kt->dir);
  free(s->kt);
  s->kt = NULL;
}

void sotto__srv_kt_precompute(struct srv *s, struct op *o) {
  struct srv_kt *kt = s->kt;
  struct kt_pool *p;
  o->kt_pre = 0;
  if (!kt || !kt->prep || kt->async) return; /* async: a job logs the name after the REGISTER's commit */
  if ((p = kt->pool) == NULL || !p->prep) {
    pre_one(kt->prep, o); /* --kt-threads 0: here, on the I/O thread */
    return;
  }
  pthread_mutex_lock(&p->mu);
  o->kt_q = p;
  o->kt_state = KT_PRE_QUEUED;
  o->kt_qnext = NULL;
  o->kt_qprev = p->q_tail;
  if (p->q_tail)
    p->q_tail->kt_qnext = o;
  else
    p->q_head = o;
  p->q_tail = o;
  pthread_cond_signal(&p->go);
  pthread_mutex_unlock(&p->mu);
}

int sotto__srv_kt_batch(struct srv *s, struct batch *b) {
  struct srv_kt *kt = s->kt;
  struct sotto_kt_head h;
  uint8_t hb[SOTTO_KT_HEAD_LEN], *upd;
  struct kt_item *items = NULL;
  size_t cap, ulen, n = 0, cap_items = 0, i;
  int64_t now;
  struct op *o;
  int rc = 0, quiet, snapped = 0;
  if (!kt) return 0;
  if (!kt->dir) return SOTTO_ERR_STORE; /* a rebuild failed: write nothing more unlogged */
  /* 0. the names a finished job prepared go first into this entry (the
   * plan was made at the start of this attempt: sotto__srv_kt_plan) */
  quiet = kt->async && kt->quiet;
  if (quiet && (rc = async_take(s, kt)) != 0) goto out;
  /* 1. which label-versions, in the batch's order */
  for (o = b->ops; o; o = o->next) {
    struct kt_item *it;
    if (o->failed || o->code) continue;
    if (o->type != SOTTO_SRV_REGISTER && o->type != SOTTO_SRV_RECOVER && o->type != SOTTO_SRV_UNREGISTER &&
        o->type != SOTTO_SRV_DEVLIST_PUT)
      continue;
    if (kt->async) {
      /* A new name is logged by a job (its mark is written); a marked
       * name's key change or list is logged when its job logs the name;
       * an UNREGISTER of a marked name takes the mark away (nothing of it
       * was ever logged or served). */
      uint8_t mv[SOTTO_STORE_KT_MAX_VALUE], mo[SOTTO_KT_OPENING_LEN];
      char canon[SOTTO_SRV_USER_MAX + 1], mark[KT_MARK_MAX + 1];
      const char *who = o->type == SOTTO_SRV_RECOVER ? NULL : o->c->user;
      uint32_t mver;
      size_t ml = 0;
      if (o->type == SOTTO_SRV_REGISTER) continue;
      if (who)
        sotto__srv_username_canon((const uint8_t *)who, strlen(who), canon);
      else
        sotto__srv_username_canon(o->req.recover.username.p, o->req.recover.username.len, canon);
      mark_label(mark, canon);
      if ((rc = s->store.ops->kt_value_get(s->store.impl, mark, &mver, mv, &ml, mo)) < 0) goto out;
      if (rc == 0) {
        rc = 0;
        if (o->type == SOTTO_SRV_UNREGISTER) {
          if ((rc = s->store.ops->kt_value_del(s->store.impl, mark)) != 0) goto out;
          kt->b_removed++;
        }
        continue;
      }
      rc = 0;
    }
    if (kt->shared && !kt->locked) {
      /* One appender at a time, on top of every committed entry. */
      kt->touched = 1; /* a failed catch-up rebuilt or dropped the directory */
      if ((rc = kt_append_lock(s, kt)) != 0) goto out;
      if (!kt->dir) {
        rc = SOTTO_ERR_STORE;
        goto out;
      }
    }
    if ((rc = items_room(&items, &cap_items, n)) != 0) goto out;
    it = &items[n];
    memset(it, 0, sizeof *it);
    if (o->type == SOTTO_SRV_REGISTER) {
      sotto__srv_username_canon(o->req.reg.username.p, o->req.reg.username.len, it->label);
      it->value = o->req.reg.identity.p;
      it->value_len = o->req.reg.identity.len;
    } else if (o->type == SOTTO_SRV_RECOVER) {
      sotto__srv_username_canon(o->req.recover.username.p, o->req.recover.username.len, it->label);
      it->value = o->req.recover.identity.p;
      it->value_len = o->req.recover.identity.len;
    } else if (o->type == SOTTO_SRV_DEVLIST_PUT) {
      sotto__srv_kt_list_label(it->label, o->c->user);
      sotto__srv_kt_list_value(it->list_value, o->req.devlist->l.version, o->req.devlist->raw,
                               o->req.devlist->raw_len);
      it->vsrc = 2;
      it->value = it->list_value;
      it->value_len = sizeof it->list_value;
    } else {
      /* UNREGISTER: the deletion marker (an empty value) for the account's
       * key, and for its device list if one was logged */
      uint32_t v;
      sotto__srv_username_canon((const uint8_t *)o->c->user, strlen(o->c->user), it->label);
      if ((rc = next_version(s, items, n, it->label, &it->version)) != 0) goto out;
      n++;
      if ((rc = items_room(&items, &cap_items, n)) != 0) goto out;
      it = &items[n];
      memset(it, 0, sizeof *it);
      sotto__srv_kt_list_label(it->label, o->c->user);
      if ((rc = next_version(s, items, n, it->label, &v)) != 0) goto out;
      if (v == 0) continue; /* no list was ever logged */
    }
    if ((rc = next_version(s, items, n, it->label, &it->version)) != 0) goto out;
    if (o->type == SOTTO_SRV_REGISTER && o->kt_q) pre_claim(o, 0); /* finished by a helper, or taken back */
    if (o->type == SOTTO_SRV_REGISTER && o->kt_pre && it->version == 0) {
      memcpy(it->entry, o->kt_pre_entry, sizeof it->entry);
      memcpy(it->opening, o->kt_pre_opening, sizeof it->opening);
      it->ready = 1;
    }
    n++;
  }
  if (n == 0 && !kt->touched) goto snap;
  kt->touched = 1; /* the directory may hold staged entries now */
  /* 2. the VRF outputs and commitments, in parallel */
  items_fix(items, n);
  prepare_all(kt, items, n);
  /* 3. staged and stored in order */
  for (i = 0; i < n; i++) {
    if ((rc = items[i].rc) != 0 || (rc = sotto_kt_dir_add_prepared(kt->dir, items[i].entry)) != 0 ||
        (rc = value_put(s, items[i].label, items[i].version, items[i].value, items[i].value_len,
                        items[i].opening)) != 0)
      goto out;
  }
  if (!sotto_kt_dir_staged(kt->dir)) goto snap;
  cap = sotto_kt_update_len(sotto_kt_dir_staged(kt->dir));
  if ((upd = malloc(cap)) == NULL) {
    rc = SOTTO_ERR_NOMEM;
    goto out;
  }
  now = sotto__srv_now_ms();
  if (now < kt->last_ms) now = kt->last_ms;
  rc = sotto_kt_dir_commit(kt->dir, &h, upd, cap, &ulen, (uint64_t)now);
  if (rc == 0) {
    sotto_kt_head_encode(hb, &h);
    rc = s->store.ops->kt_entry_put(s->store.impl, kt->n, hb, sizeof hb, upd, ulen);
  }
  free(upd);
  if (rc == 0) {
    kt->n++;
    kt->last_ms = now;
  }
snap:
  /* 4. the next job's snapshot, if none is in flight */
  if (rc == 0 && kt->async && quiet && kt->aq && !kt->proposed) {
    int busy;
    pthread_mutex_lock(&kt->aq->mu);
    busy = kt->aq->job != NULL && !kt->taken;
    pthread_mutex_unlock(&kt->aq->mu);
    if (!busy && async_due(s, kt) &&
        (__atomic_load_n(&kt->pending_n, __ATOMIC_ACQUIRE) > 0 ||
         (kt->shared && sotto__srv_mono_ms() >= __atomic_load_n(&kt->next_snap_ms, __ATOMIC_ACQUIRE)))) {
      rc = async_snapshot(s, kt);
      snapped = 1;
    }
  }
  /* Cluster: the marks waiting now, as this transaction sees them (every
   * node's: another node may have logged this node's names, or this node
   * theirs): after a batch that did log work, the count of waiting names is
   * this, not local arithmetic (sotto__srv_kt_batch_done). A single node
   * deletes only marks it counted, so its arithmetic is exact. */
  if (rc == 0 && kt->async && kt->shared && (kt->taken || snapped)) {
    int64_t marked = 0;
    if ((rc = s->store.ops->kt_labels_iter(s->store.impl, KT_MARK_LO, KT_MARK_HI, INT64_MAX, count_mark, &marked)) ==
        0)
      kt->counted = marked;
  }
out:
  if (items) {
    sodium_memzero(items, cap_items * sizeof *items); /* the openings */
    free(items);
  }
  return rc;
}

void sotto__srv_kt_batch_done(struct srv *s, int rc) {
  struct srv_kt *kt = s->kt;
  if (kt) kt->locked = 0; /* the transaction ended: so did its append lock */
  if (kt && kt->async) {
    struct kt_async *a = kt->aq;
    struct kt_job *gone = NULL;
    int64_t d = rc == 0 ? -kt->b_removed : -kt->b_added; /* a failed batch wrote no mark and deleted none */
    int64_t left;
    /* a failed attempt the store runs again (a lost race, the lock order):
     * the job stays for the rerun (nothing of it was committed) */
    int again = rc != 0 && s->store.ops->txn_retry && s->store.ops->txn_retry(s->store.impl) != 0;
    if (rc != 0 && !again) /* no kt-only batch loop on a failing store */
      __atomic_store_n(&kt->retry_ms, sotto__srv_mono_ms() + KT_SNAP_IDLE_MS, __ATOMIC_RELEASE);
    if (rc != 0 && kt->taken) {
      __atomic_add_fetch(&kt->apply_failed, 1, __ATOMIC_ACQ_REL);
      sotto__srv_log(1, "kt_apply_failed", "rc=%d again=%d", rc, again);
    }
    if (rc == 0 && kt->counted >= 0) {
      left = kt->counted;
      __atomic_store_n(&kt->pending_n, left, __ATOMIC_RELEASE);
    } else {
      left = __atomic_add_fetch(&kt->pending_n, d, __ATOMIC_ACQ_REL);
      if (left < 0) __atomic_store_n(&kt->pending_n, 0, __ATOMIC_RELEASE);
    }
    kt->counted = -1;
    if (left > 0 && rc == 0 && kt->b_removed) /* the rest waits from now */
      __atomic_store_n(&kt->since_ms, sotto__srv_mono_ms(), __ATOMIC_RELEASE);
    if (a) {
      pthread_mutex_lock(&a->mu);
      if (kt->taken && !again) { /* applied (or, failed, its marks stay for the next snapshot) */
        gone = a->job;
        a->job = NULL;
        if (rc == 0) a->logged += (uint64_t)kt->b_removed;
      }
      if (rc == 0 && kt->proposed && !a->job) {
        a->job = kt->proposed;
        a->job->t0_ms = sotto__srv_mono_ms();
        kt->proposed = NULL;
        pthread_cond_broadcast(&a->go);
      }
      pthread_mutex_unlock(&a->mu);
    }
    job_unref(gone);
    job_free(kt->proposed);
    kt->proposed = NULL;
    kt->taken = 0;
    kt->b_added = kt->b_removed = 0;
  }
  if (!kt || !kt->touched) return;
  kt->touched = 0;
  if (rc == 0) {
    sotto__srv_log(2, "kt_entry", "entries=%lld", (long long)kt->n);
    return;
  }
  /* The directory took an entry the store does not have: start again from
   * the store (until that works, batches that would log are refused). */
  if (kt_load(s, kt) != 0) sotto__srv_log(0, "kt_reload_failed", "%s", "logging=off");
}

/* ---- requests ------------------------------------------------------------------ */

struct upd_ctx {
  struct sotto__wr *w;
  size_t room;
  uint16_t n;
};

static int upd_one(void *ctx, int64_t idx, const uint8_t *head, size_t head_len, const uint8_t *update,
                   size_t update_len) {
  struct upd_ctx *u = ctx;
  (void)idx;
  if (head_len != SOTTO_KT_HEAD_LEN) return SOTTO_ERR_STORE;
  if (u->w->len + SOTTO_KT_HEAD_LEN + 4 + update_len > u->room) return 1; /* the rest next time */
  sotto__srv_put_kt_entry(u->w, head, update, update_len);
  u->n++;
  return 0;
}

static int answer_buf(struct op *o, size_t cap, struct sotto__wr *w) {
  if ((o->kt_out = malloc(cap)) == NULL) return SOTTO_ERR_NOMEM;
  sotto__wr_init(w, o->kt_out, cap);
  return 0;
}

int sotto__srv_kt_exec(struct srv *s, struct op *o) {
  struct srv_kt *kt = s->kt;
  struct sotto_kt_head h;
  struct sotto__wr w;
  uint8_t hb[SOTTO_KT_HEAD_LEN];
  int rc;
  /* A name not in the log yet: nothing of it is served (before "no head
   * yet": the first name of a log is also the first entry). */
  if (o->type == SOTTO_SRV_KT_SEARCH || o->type == SOTTO_SRV_KT_SEARCH_LIST || o->type == SOTTO_SRV_KT_VERSIONS) {
    const struct sotto_srv_str *u = o->type == SOTTO_SRV_KT_VERSIONS ? &o->req.kt_ver.user : &o->req.kt_user;
    char user[SOTTO_SRV_USER_MAX + 1];
    memcpy(user, u->p, u->len);
    user[u->len] = 0;
    if ((rc = sotto__srv_kt_pending(s, &s->store, user)) != 0) {
      if (rc == 1) o->code = SOTTO_SRV_E_KT_PENDING;
      return rc == 1 ? 0 : rc;
    }
  }
  /* A cluster node first replays what other nodes appended: every node
   * answers with the newest committed head. */
  if (kt && kt->shared && o->type != SOTTO_SRV_KT_CONFIG && (rc = kt_catchup(s, kt, NULL)) != 0) {
    o->code = SOTTO_SRV_E_INTERNAL;
    return 0;
  }
  if (!kt || !kt->dir || sotto_kt_dir_head(&h, kt->dir) != 0) {
    o->code = SOTTO_SRV_E_NOT_FOUND; /* no log here, or no entry yet */
    return 0;
  }
  sotto_kt_head_encode(hb, &h);
  if (o->type == SOTTO_SRV_KT_HEAD) {
    /* The head with the cosignatures the witnesses gave for exactly it
     * (in a cluster, maybe through another node: read from the store). */
    uint8_t cos[SOTTO_SRV_KT_MAX_WITNESSES * SOTTO_KT_COSIG_LEN];
    size_t i, n = 0;
    if (kt->shared && (rc = cosigs_refresh(s, kt)) != 0) return rc;
    for (i = 0; i < kt->n_wit; i++)
      if (kt->wit[i].have && sodium_memcmp(kt->wit[i].head, hb, sizeof hb) == 0)
        memcpy(cos + SOTTO_KT_COSIG_LEN * n++, kt->wit[i].cosig, SOTTO_KT_COSIG_LEN);
    if ((rc = answer_buf(o, SOTTO_KT_HEAD_LEN + 1 + n * SOTTO_KT_COSIG_LEN, &w)) != 0) return rc;
    sotto__srv_put_kt_head(&w, hb, cos, n);
  } else if (o->type == SOTTO_SRV_KT_CONFIG) {
    struct sotto_srv_kt_config m;
    struct sotto_kt_log_id id;
    size_t i;
    memset(&m, 0, sizeof m);
    sotto_kt_dir_log_id(&id, kt->dir);
    m.sig_pk = id.sig_pk;
    m.vrf_pk = id.vrf_pk;
    m.n = kt->n_wit;
    for (i = 0; i < kt->n_wit; i++) {
      m.w[i].name.p = (const uint8_t *)kt->wit[i].name;
      m.w[i].name.len = strlen(kt->wit[i].name);
      m.w[i].pk = kt->wit[i].pk;
    }
    if ((rc = answer_buf(o, 2 * SOTTO_KT_SIGN_PK_LEN + 1 + kt->n_wit * (1 + SOTTO_SRV_KT_NAME_MAX + 32), &w)) != 0)
      return rc;
    sotto__srv_put_kt_config(&w, &m);
  } else if (o->type == SOTTO_SRV_KT_COSIGN) {
    /* A configured witness's cosignature of the head this server serves
     * now (the only head it stores cosignatures for). */
    const struct sotto_srv_kt_cosign *m = &o->req.kt_cosign;
    struct sotto_kt_log_id id;
    struct kt_witness *wt = NULL;
    size_t i;
    for (i = 0; i < kt->n_wit; i++)
      if (sodium_memcmp(kt->wit[i].pk, m->witness_pk, SOTTO_KT_SIGN_PK_LEN) == 0) wt = &kt->wit[i];
    if (!wt) {
      o->code = SOTTO_SRV_E_KT_WITNESS;
      return 0;
    }
    if (sodium_memcmp(m->head, hb, sizeof hb) != 0) {
      sotto__srv_log(1, "kt_cosign_refused", "witness=%s reason=stale_head", wt->name);
      o->code = SOTTO_SRV_E_KT_STALE;
      return 0;
    }
    sotto_kt_dir_log_id(&id, kt->dir);
    if (sotto_kt_cosig_verify(m->cosig, wt->pk, &h, &id) != 0) {
      sotto__srv_log(1, "kt_cosign_refused", "witness=%s reason=bad_signature", wt->name);
      o->code = SOTTO_SRV_E_KT_COSIG;
      return 0;
    }
    /* Stored in this batch's transaction: answered after its commit. */
    if ((rc = s->store.ops->kt_cosig_put(s->store.impl, wt->pk, h.tree_size, hb, sizeof hb, m->cosig,
                                         SOTTO_KT_COSIG_LEN)) != 0)
      return rc;
    memcpy(wt->head, hb, sizeof hb);
    memcpy(wt->cosig, m->cosig, SOTTO_KT_COSIG_LEN);
    wt->have = 1;
    sotto__srv_log(1, "kt_cosign", "witness=%s size=%llu", wt->name, (unsigned long long)h.tree_size);
    if ((rc = answer_buf(o, 1, &w)) != 0) return rc;
  } else if (o->type == SOTTO_SRV_KT_SEARCH || o->type == SOTTO_SRV_KT_SEARCH_LIST) {
    uint8_t value[SOTTO_STORE_KT_MAX_VALUE], opening[SOTTO_KT_OPENING_LEN], *proof;
    char label[SOTTO_SRV_KT_LIST_LABEL_MAX + 1];
    const char *canon;
    uint32_t version;
    size_t vlen = 0, plen;
    int tries;
    int64_t got;
    if (o->type == SOTTO_SRV_KT_SEARCH_LIST) {
      char user[SOTTO_SRV_USER_MAX + 1];
      memcpy(user, o->req.kt_user.p, o->req.kt_user.len);
      user[o->req.kt_user.len] = 0;
      sotto__srv_kt_list_label(label, user);
    } else {
      sotto__srv_username_canon(o->req.kt_user.p, o->req.kt_user.len, label);
    }
    canon = label;
    /* The value must be the one the directory's head logs: in a cluster,
     * an entry another node commits between the catch-up and the read may
     * log a newer version; then catch up and read again. */
    for (tries = 0;; tries++) {
      rc = s->store.ops->kt_value_get(s->store.impl, canon, &version, value, &vlen, opening);
      if (rc < 0) return rc;
      if (!kt->shared) break;
      if (kt_catchup(s, kt, &got) != 0 || !kt->dir) {
        sodium_memzero(opening, sizeof opening);
        o->code = SOTTO_SRV_E_INTERNAL;
        return 0;
      }
      if (got == 0) break;
      if (tries == 8) { /* the log moves faster than we can read: try later */
        sodium_memzero(opening, sizeof opening);
        o->code = SOTTO_SRV_E_INTERNAL;
        return 0;
      }
    }
    if (sotto_kt_dir_head(&h, kt->dir) != 0) return SOTTO_ERR_INTERNAL;
    sotto_kt_head_encode(hb, &h);
    if ((proof = malloc(SOTTO_KT_MAX_SEARCH_PROOF_LEN)) == NULL) return SOTTO_ERR_NOMEM;
    rc = sotto_kt_dir_search(proof, SOTTO_KT_MAX_SEARCH_PROOF_LEN, &plen, kt->dir, (const uint8_t *)canon,
                             strlen(canon), rc == 1 ? SOTTO_KT_ABSENT : version, rc == 1 ? NULL : value,
                             rc == 1 ? 0 : vlen, rc == 1 ? NULL : opening);
    sodium_memzero(opening, sizeof opening);
    if (rc == 0 && (rc = answer_buf(o, SOTTO_KT_HEAD_LEN + 4 + plen, &w)) == 0)
      sotto__srv_put_kt_proof(&w, hb, proof, plen);
    free(proof);
    if (rc != 0) return rc;
  } else if (o->type == SOTTO_SRV_KT_VERSIONS) {
    /* Proofs of versions from.. of one label against the current head,
     * as many as fit a frame, with each device list as stored. */
    const struct sotto_srv_kt_versions_req *m = &o->req.kt_ver;
    uint8_t value[SOTTO_STORE_KT_MAX_VALUE], opening[SOTTO_KT_OPENING_LEN], *proof = NULL, *list = NULL;
    char user[SOTTO_SRV_USER_MAX + 1], label[SOTTO_SRV_KT_LIST_LABEL_MAX + 1], hk[KT_HIST_MAX + 1];
    size_t room = s->cfg->max_frame > 64 ? s->cfg->max_frame - 64 : 0, vlen = 0, plen, ll, n = 0;
    uint32_t newest = 0, version, v;
    int err = 0;
    memcpy(user, m->user.p, m->user.len);
    user[m->user.len] = 0;
    if (m->kind == 1)
      sotto__srv_kt_list_label(label, user);
    else
      sotto__srv_username_canon(m->user.p, m->user.len, label);
    rc = s->store.ops->kt_value_get(s->store.impl, label, &newest, value, &vlen, opening);
    sodium_memzero(opening, sizeof opening);
    if (rc < 0) return rc;
    if (rc == 1 || m->from > newest) {
      o->code = SOTTO_SRV_E_NOT_FOUND;
      return 0;
    }
    if ((proof = malloc(SOTTO_KT_MAX_VERSION_PROOF_LEN)) == NULL || (list = malloc(SOTTO_SRV_MAX_DEVLIST)) == NULL ||
        (rc = answer_buf(o, room, &w)) != 0) {
      free(proof);
      free(list);
      return rc ? rc : SOTTO_ERR_NOMEM;
    }
    sotto__wr_bytes(&w, hb, sizeof hb);
    sotto__wr_u8(&w, 0); /* n, below */
    for (v = m->from; v <= newest && n < m->count; v++) {
      hist_key(hk, v, label);
      rc = s->store.ops->kt_value_get(s->store.impl, hk, &version, value, &vlen, opening);
      if (rc != 0 || version != v) { /* logged before the server kept every version */
        sodium_memzero(opening, sizeof opening);
        if (rc < 0) err = rc;
        break;
      }
      rc = sotto_kt_dir_prove_version(proof, SOTTO_KT_MAX_VERSION_PROOF_LEN, &plen, kt->dir, (const uint8_t *)label,
                                      strlen(label), v, value, vlen, opening);
      sodium_memzero(opening, sizeof opening);
      if (rc != 0) break; /* (a cluster: an entry this node has not replayed yet) */
      ll = 0;
      if (m->kind == 1 && vlen == SOTTO_SRV_KT_LIST_VALUE_LEN && s->store.ops->devlist_get_version) {
        uint32_t lv = (uint32_t)value[0] << 24 | (uint32_t)value[1] << 16 | (uint32_t)value[2] << 8 | value[3];
        rc = s->store.ops->devlist_get_version(s->store.impl, user, lv, list, SOTTO_SRV_MAX_DEVLIST, &ll);
        if (rc < 0) {
          err = rc;
          break;
        }
        if (rc != 0) ll = 0;
      }
      if (w.len + 8 + plen + ll > room) break;
      sotto__wr_u32be(&w, (uint32_t)plen);
      sotto__wr_bytes(&w, proof, plen);
      sotto__wr_u32be(&w, (uint32_t)ll);
      if (ll) sotto__wr_bytes(&w, list, ll);
      n++;
    }
    free(proof);
    free(list);
    if (err) return err;
    if (n == 0) {
      free(o->kt_out);
      o->kt_out = NULL;
      o->code = SOTTO_SRV_E_NOT_FOUND;
      return 0;
    }
    o->kt_out[SOTTO_KT_HEAD_LEN] = (uint8_t)n;
  } else if (o->type == SOTTO_SRV_KT_CONSISTENCY) {
    uint8_t proof[SOTTO_KT_MAX_LOG_PROOF * SOTTO_KT_HASH_LEN];
    size_t plen;
    if (o->req.kt_size > h.tree_size) {
      o->code = SOTTO_SRV_E_NOT_FOUND;
      return 0;
    }
    if ((rc = sotto_kt_dir_consistency(proof, sizeof proof, &plen, kt->dir, o->req.kt_size)) != 0) return rc;
    if ((rc = answer_buf(o, SOTTO_KT_HEAD_LEN + 4 + plen, &w)) != 0) return rc;
    sotto__srv_put_kt_proof(&w, hb, proof, plen);
  } else { /* KT_UPDATES */
    struct upd_ctx u;
    size_t room = s->cfg->max_frame > 64 ? s->cfg->max_frame - 64 : 0;
    if (o->req.kt_rng.first >= (uint64_t)kt->n) {
      o->code = SOTTO_SRV_E_NOT_FOUND;
      return 0;
    }
    if ((rc = answer_buf(o, room, &w)) != 0) return rc;
    sotto__wr_u8(&w, 0);
    sotto__wr_u8(&w, 0);
    u.w = &w;
    u.room = room;
    u.n = 0;
    rc = s->store.ops->kt_entries_iter(s->store.impl, (int64_t)o->req.kt_rng.first, o->req.kt_rng.count, upd_one,
                                       &u);
    if (rc < 0) return rc;
    if (u.n == 0) {
      o->code = SOTTO_SRV_E_TOO_LARGE; /* one entry is larger than a frame */
      return 0;
    }
    o->kt_out[0] = (uint8_t)(u.n >> 8);
    o->kt_out[1] = (uint8_t)u.n;
  }
  if (w.err) return SOTTO_ERR_INTERNAL;
  o->kt_len = w.len;
  return 0;
}

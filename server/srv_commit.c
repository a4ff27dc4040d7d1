/* SPDX-License-Identifier: Apache-2.0 */
/* srv_commit.c: the group-commit pipeline of sotto-server: ops collected
 * into batches, each batch one store transaction on the store thread,
 * answers only after the commit; the disk reserve for a full disk. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv_internal.h"

/* What an op counts against max-inflight-bytes: its payload, and the heap
 * memory it owns while it waits: for a BUNDLE the bundle buffer its answer
 * needs (allocated when it runs), for KEYS_UPLOAD its parsed key table, for
 * the KT_* requests the most their answer can hold (srv_kt.c), for SEND_MULTI
 * the signed list its ERR(30) may carry. */
size_t sotto__srv_op_cost(uint8_t type, size_t len) {
  return len + (type == SOTTO_SRV_BUNDLE                                            ? sizeof(struct sotto_store_bundle)
                : type == SOTTO_SRV_KEYS_UPLOAD                                     ? sizeof(struct sotto_store_keys)
                : type == SOTTO_SRV_KT_UPDATES || type == SOTTO_SRV_KT_VERSIONS     ? SOTTO_SRV_MAX_FRAME
                : type == SOTTO_SRV_KT_SEARCH || type == SOTTO_SRV_KT_SEARCH_LIST || type == SOTTO_SRV_KT_CONSISTENCY ? SOTTO_SRV_KT_HEAD_LEN + 4 +
                                                                                        SOTTO_SRV_KT_MAX_PROOF
                : type == SOTTO_SRV_KT_HEAD ? SOTTO_SRV_KT_HEAD_LEN + 1 +
                                                  SOTTO_SRV_KT_MAX_WITNESSES * SOTTO_SRV_KT_COSIG_LEN
                : type == SOTTO_SRV_KT_CONFIG ? 2 * SOTTO_SRV_KT_PK_LEN + 1 +
                                                    SOTTO_SRV_KT_MAX_WITNESSES * (1 + SOTTO_SRV_KT_NAME_MAX +
                                                                                  SOTTO_SRV_KT_PK_LEN)
                : type == SOTTO_SRV_DEVLIST_PUT                                     ? sizeof(struct srv_devlist)
                : type == SOTTO_SRV_SEND_MULTI ? sizeof(struct sotto_srv_send_multi) + SOTTO_SRV_MAX_DEVLIST + 2
                : type == SOTTO_SRV_DEVLIST_GET                                     ? SOTTO_SRV_MAX_DEVLIST + 2
                : type == SOTTO_SRV_BLOB_GET                                        ? SOTTO_SRV_BLOB_MAX_CHUNK
                                                                                    : 0);
}

/* Ops with a small payload (every SEND of a usual envelope, ACK, AUTH, ...)
 * are recycled: a batch allocates and frees them by the thousand, which
 * malloc serves from its slow bins once its per-size caches are full (about
 * 5 % of the I/O thread under relay load). A pooled op has room for
 * OP_POOL_DATA payload bytes; at most OP_POOL_MAX wait in the pool (about
 * 850 KiB). Ops are allocated and freed on the I/O thread only. */
#define OP_POOL_DATA 512
#define OP_POOL_MAX 1024

static struct op *op_pool;
static int op_pool_n;

/* A BLOB_PUT's op is placed in its buffer so that the blob thread writes
 * the bytes with O_DIRECT where they are (sotto__srv_blob_put_shift,
 * srv_blob.c): buffers of PUT_BUF bytes (BLOB_ALIGN-aligned, the largest
 * PUT at any placement), recycled like the small ops: a fresh aligned
 * allocation per PUT fragmented the heap (the read buffer's realloc then
 * copied more). At most PUT_POOL_MAX wait (about 4 MiB). */
#define PUT_ALIGN 4096
#define PUT_BUF (PUT_ALIGN + sizeof(struct op) + SOTTO_SRV_BLOB_ID_LEN + 8 + SOTTO_SRV_BLOB_MAX_CHUNK)
#define PUT_POOL_MAX 16

static uint8_t *put_pool[PUT_POOL_MAX];
static int put_pool_n;

struct op *sotto__srv_op_alloc(struct conn *c, const struct sotto_srv_frame *f, int64_t now_us) {
  struct op *o;
  if (f->len <= OP_POOL_DATA && op_pool) {
    o = op_pool;
    op_pool = o->next;
    op_pool_n--;
    memset(o, 0, sizeof *o);
    o->pooled = 1;
  } else if (f->len <= OP_POOL_DATA) {
    if ((o = calloc(1, sizeof *o + OP_POOL_DATA)) == NULL) return NULL;
    o->pooled = 1;
  } else {
    long shift = sotto__srv_blob_put_shift(f);
    if (shift >= 0 && (size_t)shift + sizeof *o + f->len <= PUT_BUF) {
      uint8_t *raw = NULL;
      if (put_pool_n > 0)
        raw = put_pool[--put_pool_n];
      else if (posix_memalign((void **)&raw, PUT_ALIGN, PUT_BUF) != 0)
        return NULL;
      o = (struct op *)(void *)(raw + shift);
      memset(o, 0, sizeof *o);
      o->put_buf = 1;
      o->shift = (uint16_t)shift;
    } else if ((o = malloc(sizeof *o + f->len)) == NULL) {
      return NULL;
    } else {
      memset(o, 0, sizeof *o); /* the payload is copied over below (a PUT's 192 KiB were zeroed first) */
    }
  }
  o->c = c;
  o->t_in_us = now_us;
  o->type = f->type;
  o->req_id = f->req_id;
  o->len = f->len;
  if (f->len) memcpy(o->data, f->p, f->len);
  return o;
}

void sotto__srv_op_enqueue(struct srv *s, struct op *o) {
  o->c->inflight++;
  o->c->inflight_bytes += sotto__srv_op_cost(o->type, o->len);
  *s->ops_tail = o;
  s->ops_tail = &o->next;
  s->n_ops++;
}

void sotto__srv_op_pool_free(void) {
  while (op_pool) {
    struct op *o = op_pool;
    op_pool = o->next;
    free(o);
  }
  op_pool_n = 0;
  while (put_pool_n > 0) free(put_pool[--put_pool_n]);
}

/* The payload may hold a secret (AUTH): wiped with the op. */
void sotto__srv_op_discard(struct op *o) {
  if (o->kt_q) sotto__srv_kt_pre_cancel(o); /* a VRF helper must not write into it once freed */
  if (o->type == SOTTO_SRV_KEYS_UPLOAD) free(o->req.keys);
  if (o->type == SOTTO_SRV_DEVLIST_PUT) free(o->req.devlist);
  if (o->type == SOTTO_SRV_SEND_MULTI) free(o->req.multi);
  free(o->bundle);
  free(o->kt_out);
  sodium_memzero(o->secret, sizeof o->secret);
  sodium_memzero(&o->dev, sizeof o->dev);
  /* A blob's bytes are ciphertext: only their request's head (the blob id,
   * a capability) is wiped, not 192 KiB per PUT. */
  sodium_memzero(o->data, o->type == SOTTO_SRV_BLOB_PUT && o->len > 64 ? 64 : o->len);
  if (o->pooled && op_pool_n < OP_POOL_MAX) {
    o->next = op_pool;
    op_pool = o;
    op_pool_n++;
    return;
  }
  if (o->put_buf) {
    uint8_t *raw = (uint8_t *)o - o->shift;
    if (put_pool_n < PUT_POOL_MAX)
      put_pool[put_pool_n++] = raw;
    else
      free(raw);
    return;
  }
  free(o);
}

/* The op's connection may be dropped but is still allocated (zombies are
 * freed only after the ops that point at them). */
void sotto__srv_op_free(struct op *o) {
  o->c->inflight--;
  o->c->inflight_bytes -= sotto__srv_op_cost(o->type, o->len);
  sotto__srv_op_discard(o);
}

/* How long an envelope may wait: max-queue-age-seconds if set (it exists so
 * that tests need not wait days), else max-queue-age-days. */
static int64_t queue_age_ms(const struct sotto_srv_config *cfg) {
  return cfg->max_queue_age_s ? cfg->max_queue_age_s * 1000 : cfg->max_queue_age_days * 86400000;
}

/* The reserve: DATA/sotto.reserve, disk-reserve bytes allocated at start,
 * given back when the disk is full so that deletes (ACKs, expiry) can still
 * write their journal pages; made again once deletes freed enough room.
 * Only the store thread touches it after start (space_low is also read by
 * op_exec, on the same thread, and by the I/O thread before it hands a BLOB
 * PUT to the blob writer: written atomically, read there atomically). */
static void reserve_path(const struct srv *s, char *out, size_t cap) {
  snprintf(out, cap, "%s/sotto.reserve", s->cfg->data);
}

int sotto__srv_reserve_make(struct srv *s) {
  char path[1100];
  int fd, rc;
  if (s->cfg->disk_reserve <= 0) return 0;
  reserve_path(s, path, sizeof path);
  if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600)) < 0) return -1;
  rc = posix_fallocate(fd, 0, (off_t)s->cfg->disk_reserve);
  close(fd);
  if (rc != 0) {
    (void)unlink(path);
    return -1;
  }
  if (s->space_low) sotto__srv_log(1, "disk_ok", "reserve=%lld", (long long)s->cfg->disk_reserve);
  __atomic_store_n(&s->space_low, 0, __ATOMIC_RELAXED); /* the I/O thread reads it (srv_blob.c) */
  return 0;
}

static void reserve_release(struct srv *s) {
  char path[1100];
  reserve_path(s, path, sizeof path);
  if (!s->space_low)
    sotto__srv_log(0, "disk_full", "%s",
                   "action=reserve_released hint=\"free disk space; SENDs are refused until then\"");
  (void)unlink(path);
  __atomic_store_n(&s->space_low, 1, __ATOMIC_RELAXED);
}

/* An op's savepoint: light = the op writes with one statement and the
 * store undoes a failed statement alone (store.h, txn_alive), so there is
 * nothing to open or release, and undoing only checks that the transaction
 * is still open. Two statements less per SEND and per ACK. */
static int sp_open(const struct sotto_store_ops *ops, void *st, int light) {
  return light ? 0 : ops->savepoint(st);
}

static int sp_keep(const struct sotto_store_ops *ops, void *st, int light) {
  return light ? 0 : ops->release(st);
}

static int sp_undo(const struct sotto_store_ops *ops, void *st, int light) {
  return light ? ops->txn_alive(st) : ops->rollback_to(st);
}

/* Shared store (cluster): 1 if the batch may lock rows outside the store's
 * lock order (store.h, "Shared mode"): anything but envelopes, ACKs and the
 * requests that only read or take a one-time key. Such a batch takes the
 * order lock exclusively from the start; a batch that breaks the order
 * anyway is stopped by the store and run again so (txn_retry 2). */
static int batch_serial(const struct batch *b) {
  const struct op *o;
  if (b->expire) return 1;
  for (o = b->ops; o; o = o->next)
    switch (o->type) {
      case SOTTO_SRV_SEND:
      case SOTTO_SRV_SEND_MULTI:
      case SOTTO_SRV_ACK:
      case SOTTO_SRV_AUTH:
      case SOTTO_SRV_BUNDLE:
      case SOTTO_SRV_DEVICES:
      case SOTTO_SRV_DEVLIST_GET:
      case SOTTO_SRV_EPOCH:
        break;
      default:
        return 1;
    }
  return 0;
}

/* The group commit, on the store thread (or inline): every op of the batch
 * in one transaction, then the expiry run if one is due. */
/* Ops that remove devices (with their queues): the store's caches drop what
 * they held of them (routing entries, queue totals, sender sums), which an
 * undone savepoint does not bring back, so such an op that fails fails the
 * whole batch (rolled back, the caches reloaded); one that succeeds deleted
 * envelopes (the journal is scrubbed after the commit). */
static int removes_devices(const struct op *o) {
  return o->type == SOTTO_SRV_DEVICE_REMOVE || o->type == SOTTO_SRV_UNREGISTER || o->type == SOTTO_SRV_RECOVER;
}

/* One attempt at a batch: begin, every op in its own savepoint, expiry,
 * commit (rolled back on failure). Sets *deletes if envelopes went. */
static int batch_try(struct srv *s, struct batch *b, int *deletes) {
  const struct sotto_store_ops *ops = s->store.ops;
  void *st = s->store.impl;
  struct op *o;
  int rc;
  *deletes = 0;
  sotto__srv_blob_gone_reset(s); /* a file named by an attempt that rolled back stays */
  sotto__srv_blob_made_reset(s);
  if ((rc = ops->begin(st)) != 0) return rc;
  /* A batch that applies the log's job in flight takes the log's append
   * lock, which the lock order allows only under the order lock held
   * exclusively: planned so, whatever its requests (srv_kt.c). */
  if ((sotto__srv_kt_plan(s, b) || batch_serial(b)) && s->cl && ops->txn_serial) {
    if ((rc = ops->txn_serial(st)) != 0) {
      ops->rollback(st);
      return rc;
    }
    b->serial_planned = 1;
  }
  /* Each op runs in its own savepoint: an op the store refuses (a
   * constraint, a full disk) is undone alone; the other clients' ops in the
   * batch commit. Only a failure that leaves the backend's caches unsure
   * (no memory, a device removal) fails the whole batch. */
  for (o = b->ops; o && rc == 0; o = o->next) {
    int r, light = ops->txn_alive != NULL && sotto__srv_op_one_write(o);
    if ((rc = sp_open(ops, st, light)) != 0) break;
    if ((r = sotto__srv_op_exec(s, o)) != 0 && r != SOTTO_ERR_NOMEM && !removes_devices(o) && ops->disk_full(st)) {
      /* The disk is full: undo this op, give the reserve file's space back
       * and try once more. An ACK then goes through (it frees space);
       * anything that would store more is refused as storage full until
       * the reserve could be made again. */
      if ((rc = sp_undo(ops, st, light)) != 0) break;
      reserve_release(s);
      if ((rc = sp_open(ops, st, light)) != 0) break;
      o->code = 0;
      r = sotto__srv_op_exec(s, o);
      if (r != 0 && r != SOTTO_ERR_NOMEM && o->type != SOTTO_SRV_ACK) {
        if ((rc = sp_undo(ops, st, light)) != 0) break;
        if ((rc = sp_open(ops, st, light)) != 0) break;
        o->code = SOTTO_SRV_E_STORAGE_FULL;
        r = 0;
      }
    }
    if (r == 0) {
      rc = sp_keep(ops, st, light);
      if (o->deleted || (removes_devices(o) && !o->code)) *deletes = 1;
    } else if (r == SOTTO_ERR_NOMEM || removes_devices(o)) {
      rc = r;
    } else {
      o->failed = 1;
      rc = sp_undo(ops, st, light);
    }
  }
  if (rc == 0 && b->expire)
    rc = sotto__srv_expire_run(s, sotto__srv_now_ms() - queue_age_ms(s->cfg), &b->deleted, &b->notices,
                               &b->notice_max_id);
  if (rc == 0 && b->expire) rc = sotto__srv_blob_expire(s, sotto__srv_now_ms(), NULL);
  if (rc == 0) rc = sotto__srv_kt_batch(s, b); /* the log entry in the same transaction (srv_kt.c) */
  if (rc == 0) rc = ops->commit(st);
  if (rc != 0) {
    ops->rollback(st);
    sotto__srv_blob_made_undo(s); /* no row names the files it made */
  }
  sotto__srv_kt_batch_done(s, rc);
  return rc;
}

/* Forgets what a failed attempt at batch b left in its ops (nothing of it
 * was committed), before the batch runs again. */
static void batch_reset(struct batch *b) {
  struct op *o;
  for (o = b->ops; o; o = o->next) {
    o->code = 0;
    o->failed = 0;
    o->deleted = 0;
    o->target_devkey = 0;
    o->msg_id = 0;
    free(o->bundle);
    o->bundle = NULL;
    free(o->kt_out);
    o->kt_out = NULL;
    o->kt_len = 0;
  }
  b->deleted = b->notices = b->notice_max_id = 0;
}

/* The group commit, on the store thread (or inline). In WAL mode the pages
 * reach the disk at commit, so that is where a full disk shows: then the
 * reserve is given back and the batch runs once more, now with SENDs
 * refused as storage full and ACKs going through. */
static void batch_exec(struct srv *s, struct batch *b) {
  int rc = 0, deletes = 0;
  int64_t rt0;
  b->scrub_need = 0;
  b->t_start_us = sotto__srv_mono_us();
  b->retries = 0;
  b->serial_planned = b->serial_reruns = 0;
  b->commit_us = b->lock_us = -1;
  if (!b->ops && !b->expire && !b->kt) {
    /* Only a WAL scrub was due. */
    s->store.ops->wal_truncate(s->store.impl);
    if (s->space_low) sotto__srv_reserve_make(s);
    b->rc = 0;
    return;
  }
  rt0 = s->store.ops->round_trips ? s->store.ops->round_trips(s->store.impl) : 0;
  rc = batch_try(s, b, &deletes);
  /* A shared store (cluster) may lose a deadlock to another node's
   * transaction: nothing of the batch is committed, so it runs again (a few
   * times at most; then its requests are refused as any failed batch). */
  for (int tries = 0, why = 0; rc != 0 && tries < 3 && s->store.ops->txn_retry &&
                              (why = s->store.ops->txn_retry(s->store.impl)) != 0;
       tries++) {
    if (why == 2)
      b->serial_reruns++; /* stopped before breaking the lock order: now exclusively */
    else
      b->retries++;
    batch_reset(b);
    rc = batch_try(s, b, &deletes);
  }
  b->commit_us = sotto__srv_mono_us() - b->t_start_us;
  b->round_trips = s->store.ops->round_trips ? s->store.ops->round_trips(s->store.impl) - rt0 : 0;
  if (s->store.ops->lock_wait_us) b->lock_us = s->store.ops->lock_wait_us(s->store.impl);
  if (rc != 0 && s->store.ops->disk_full(s->store.impl)) {
    reserve_release(s);
    batch_reset(b);
    rc = batch_try(s, b, &deletes);
  }
  /* Acknowledged envelopes must not stay readable in the WAL (the frames
   * their inserts wrote stay there until the WAL is reset): the WAL is
   * checkpointed and truncated at most wal-scrub-interval ms after a commit
   * that deleted envelopes (with 0, right after that commit, before its
   * ACKs are answered: each truncation costs an fsync of the database). A
   * checkpoint that cannot finish (a reader) is retried at the next scrub.
   * Deletes may also have made room for the reserve again. */
  if (rc == 0 && (deletes || b->deleted > 0)) {
    if (s->cfg->wal_scrub_ms == 0)
      b->scrub = 1;
    else if (!b->scrub)
      b->scrub_need = 1;
  }
  if (b->scrub) {
    s->store.ops->wal_truncate(s->store.impl);
    if (s->space_low) sotto__srv_reserve_make(s);
  }
  b->rc = rc;
}

void *sotto__srv_store_thread(void *arg) {
  struct srv *s = arg;
  int committed;
  pthread_mutex_lock(&s->mu);
  for (;;) {
    while (!s->job && !s->quit) pthread_cond_wait(&s->cv, &s->mu);
    if (!s->job) break;
    pthread_mutex_unlock(&s->mu);
    batch_exec(s, &s->b);
    s->b.t_done_us = sotto__srv_mono_us();
    committed = s->b.rc == 0; /* s->b is the I/O thread's again once done is set */
    pthread_mutex_lock(&s->mu);
    s->job = 0;
    s->done = 1;
    pthread_cond_signal(&s->done_cv);
    {
      uint64_t one = 1;
      if (write(s->efd, &one, sizeof one) != (ssize_t)sizeof one) {
        /* The counter cannot overflow here; the I/O thread also looks at
         * done after every epoll_wait, so a lost wake-up only delays. */
      }
    }
    /* The files of blobs the batch deleted, while the I/O thread answers
     * (srv_blob.c, blob_gone); the next batch starts after them. */
    pthread_mutex_unlock(&s->mu);
    sotto__srv_blob_gone_flush(s, committed);
    pthread_mutex_lock(&s->mu);
  }
  pthread_mutex_unlock(&s->mu);
  return NULL;
}

/* Hands the collected ops (and a due expiry) to the store as the next batch.
 * Answering may resume reading on a connection, which then queues new ops
 * for the batch after. */
void sotto__srv_batch_start(struct srv *s) {
  struct op **pp, *o, *take = NULL, **tt = &take;
  int64_t oldest = 0;
  int n = 0, scrub = s->scrub_pending && sotto__srv_mono_ms() >= s->scrub_at_ms;
  int kt = s->kt && sotto__srv_kt_want(s);
  if (s->b_active || (!s->ops && !s->expire_due && !scrub && !kt)) return;
  /* Queued ops can point at a dropped connection only while it waits in
   * s->zombies (it is freed only after a prune). */
  if (s->zombies) sotto__srv_prune_ops(s);
  /* Fairness: one connection contributes at most BATCH_CONN_OPS ops and
   * BATCH_CONN_BYTES of op cost to a batch (its first op always goes); the
   * rest of its ops wait, in order, for the next batch. So a client that
   * pipelines heavy requests cannot make every other client's answer wait
   * for one huge transaction. */
  s->bt_gen++; /* a connection's share counts start over when it first shows up in this batch */
  pp = &s->ops;
  while ((o = *pp) != NULL) {
    struct conn *c = o->c;
    size_t cost = sotto__srv_op_cost(o->type, o->len);
    if (c->bt_gen != s->bt_gen) {
      c->bt_gen = s->bt_gen;
      c->bt_n = 0;
      c->bt_bytes = 0;
      c->bt_full = 0;
    }
    /* pool_n: its earlier requests are still with the read pool (srv_pool.c). */
    if (c->bt_full || c->pool_n || c->blob_wn ||
        (c->bt_n > 0 && (c->bt_n >= BATCH_CONN_OPS || c->bt_bytes + cost > BATCH_CONN_BYTES))) {
      c->bt_full = 1;
      pp = &o->next;
      continue;
    }
    c->bt_n++;
    c->bt_bytes += cost;
    if (!oldest || o->t_in_us < oldest) oldest = o->t_in_us;
    *pp = o->next;
    o->next = NULL;
    *tt = o;
    tt = &o->next;
    n++;
  }
  s->ops_tail = pp;
  s->b.ops = take;
  s->b.n = n;
  s->b.expire = s->expire_due;
  s->b.rc = 0;
  s->b.deleted = 0;
  s->b.notices = s->b.notice_max_id = 0;
  s->b.scrub = scrub;
  s->b.kt = kt;
  s->b.left = s->n_ops - n; /* n_ops still counts this batch's ops here */
  s->b.oldest_us = oldest;
  s->b.t_done_us = 0;
  if (scrub) s->scrub_pending = 0;
  s->n_ops -= n;
  s->expire_due = 0;
  s->b_active = 1;
  if (!s->threaded) {
    batch_exec(s, &s->b);
    s->b.t_done_us = sotto__srv_mono_us();
    sotto__srv_blob_gone_flush(s, s->b.rc == 0);
    s->done = 1;
    return;
  }
  pthread_mutex_lock(&s->mu);
  s->done = 0;
  s->job = 1;
  pthread_cond_signal(&s->cv);
  pthread_mutex_unlock(&s->mu);
}

static int batch_ready(struct srv *s) {
  int d;
  if (!s->b_active) return 0;
  if (!s->threaded) return 1;
  pthread_mutex_lock(&s->mu);
  d = s->done;
  pthread_mutex_unlock(&s->mu);
  return d;
}

void sotto__srv_batch_wait(struct srv *s) {
  if (!s->b_active || !s->threaded) return;
  pthread_mutex_lock(&s->mu);
  while (!s->done) pthread_cond_wait(&s->done_cv, &s->mu);
  pthread_mutex_unlock(&s->mu);
}

/* After the store thread is done with batch b (a copy: the next batch may
 * already be in flight): counters, answers, live pushes, one write per
 * connection. */
static void batch_finish(struct srv *s, const struct batch *b) {
  struct op *o, *next, *list = b->ops;
  int rc = b->rc, n = b->n;
  int64_t now_us;
  if (b->scrub_need && !s->scrub_pending) {
    s->scrub_pending = 1;
    s->scrub_at_ms = sotto__srv_mono_ms() + s->cfg->wal_scrub_ms;
  }
  if (rc == 0 && b->deleted) {
    s->m.expired += (uint64_t)b->deleted;
    sotto__srv_log(1, "expire", "deleted=%lld notices=%lld", (long long)b->deleted, (long long)b->notices);
  }
  /* The notices are committed: paging may hand them out. */
  if (rc == 0 && b->notice_max_id > s->horizon) s->horizon = b->notice_max_id;
  if (b->t_done_us) sotto__srv_stage_add(&s->m.stage[STAGE_ANSWER], sotto__srv_mono_us() - b->t_done_us);
  s->m.commit_retries += (uint64_t)b->retries;
  s->m.commit_serial_planned += (uint64_t)b->serial_planned;
  s->m.commit_serial_rerun += (uint64_t)b->serial_reruns;
  s->m.store_round_trips += (uint64_t)b->round_trips;
  if (b->commit_us >= 0) sotto__srv_stage_add(&s->m.stage[STAGE_COMMIT], b->commit_us);
  if (b->lock_us > 0) sotto__srv_stage_add(&s->m.stage[STAGE_LOCK], b->lock_us);
  if (b->oldest_us) sotto__srv_stage_add(&s->m.stage[STAGE_QUEUE], b->t_start_us - b->oldest_us);
  if (rc != 0) {
    s->m.commit_failures++;
    sotto__srv_log(0, "commit_failed", "ops=%d err=%s", n, sotto_errname(rc));
  } else if (list || b->expire) {
    s->m.commits++;
    s->m.batch_ops += (uint64_t)n;
    s->m.batch_hist[n <= 1 ? 0 : n <= 10 ? 1 : n <= 100 ? 2 : n <= 1000 ? 3 : 4]++;
  }
  /* Two passes over the ops (a batch holds thousands; each pass costs a
   * cache miss per op): every answer, then the live pushes, each op freed
   * after its push. The horizon only matters to backlog paging, which runs
   * after the batch is answered. */
  now_us = sotto__srv_mono_us(); /* the answers are written after this pass: one time for all */
  for (o = list; o; o = o->next) {
    if (rc == 0 && (o->type == SOTTO_SRV_SEND || o->type == SOTTO_SRV_SEND_MULTI) && !o->code && !o->failed &&
        o->msg_id > s->horizon)
      s->horizon = o->msg_id;
    sotto__srv_op_answer(s, o, rc != 0 || o->failed);
    if (o->type == SOTTO_SRV_SEND || o->type == SOTTO_SRV_SEND_MULTI)
      sotto__srv_stage_add(&s->m.stage[STAGE_ENVELOPE], now_us - o->t_in_us);
  }
  for (o = list; o; o = next) {
    next = o->next;
    if (rc == 0 && !o->failed) sotto__srv_op_fanout(s, o);
    sotto__srv_flush_later(s, o->c);
    sotto__srv_op_free(o);
  }
  sotto__srv_flush_queued(s);
}

static void free_list(struct conn **list) {
  while (*list) {
    struct conn *c = *list;
    if (c->pool_n || c->blob_wn) { /* a read pool worker or the blob writer still has one of its requests: kept */
      list = &c->znext;
      continue;
    }
    *list = c->znext;
    sodium_memzero(c, sizeof *c);
    free(c);
  }
}

/* When the store thread has finished a batch: the next one goes out at once
 * (so that the store works while this thread answers), then the finished
 * one is answered. Connections dropped so far are referenced at most by the
 * finished batch (the new one was pruned of them), so they are freed after
 * the answers; the ones dropped from now on wait for the next turn. */
void sotto__srv_batch_turn(struct srv *s) {
  struct batch done;
  struct conn *dropped;
  if (!batch_ready(s)) return;
  done = s->b;
  s->b_active = 0;
  s->b.ops = NULL;
  if (s->zombies) sotto__srv_prune_ops(s);
  dropped = s->zombies;
  s->zombies = NULL;
  sotto__srv_batch_start(s);
  batch_finish(s, &done);
  free_list(&dropped);
  while (dropped) { /* kept for the read pool: freed at a later turn */
    struct conn *c = dropped;
    dropped = c->znext;
    c->znext = s->zombies;
    s->zombies = c;
  }
}

/* Removes queued ops of dropped connections (before their structs go). */
void sotto__srv_prune_ops(struct srv *s) {
  struct op **pp = &s->ops, *o;
  s->ops_tail = &s->ops;
  while ((o = *pp) != NULL) {
    if (o->c->dead) {
      *pp = o->next;
      s->n_ops--;
      sotto__srv_op_free(o);
    } else {
      pp = &o->next;
      s->ops_tail = &o->next;
    }
  }
}

/* Frees dropped connections; only while no batch is in flight. */
void sotto__srv_free_zombies(struct srv *s) {
  if (s->zombies) sotto__srv_prune_ops(s);
  free_list(&s->zombies);
}

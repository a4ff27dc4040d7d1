/* SPDX-License-Identifier: Apache-2.0 */
/* srv_pool.c: the read pool of sotto-server (--pg-pool N, PostgreSQL store).
 *
 * AUTH, DEVICES, DEVLIST_GET and BUNDLE without a one-time key only read
 * the store. In the commit batch they wait for the batch before them and
 * lengthen the one they are in; here N threads, each with its own
 * read-only store connection, answer them meanwhile (a reader sees only
 * committed transactions, as a client that got an answer expects).
 *
 * Order: a connection's answers stay in request order. A request goes to the
 * pool only when none of its connection's requests is in the batch (else
 * it is queued for the batch as before, so that it sees what they wrote);
 * a connection's pooled requests run one at a time, in order (conn.pq_head);
 * and its requests queued for the batch after them wait (batch_start skips
 * them) until the pool answered those. An AUTH that must write (the first of
 * a day, the first with a rotated secret) is passed on to the batch, which
 * runs it again from the start.
 *
 * Threads: a worker touches only its store and the op it took (never the
 * connection); the I/O thread hands ops over and takes them back under mu
 * and is woken through the store thread's eventfd. */
#define _GNU_SOURCE
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "srv_internal.h"

enum { PQ_AUTH, PQ_DEVICES, PQ_DEVLIST_GET, PQ_BUNDLE, PQ_N };
static const char *const pq_name[PQ_N] = {"auth", "devices", "devlist_get", "bundle"};

struct srv_pool_worker {
  struct srv_pool *p;
  struct srv *s;
  pthread_t th;
  int started;
  struct sotto_store st;
};

struct srv_pool {
  int n;
  int mode;                            /* SOTTO_STORE_OPEN_READER, | SHARED in a cluster */
  char url[SOTTO_STORE_URL_MAX + 64]; /* for a worker to connect again after a failure */
  struct srv_pool_worker *w;
  pthread_mutex_t mu; /* guards the lists below, busy and quit */
  pthread_cond_t cv;
  struct op *jobs, **jobs_tail; /* waiting for a worker */
  struct op *done, **done_tail; /* answered by a worker, for the I/O thread */
  int busy, quit;
  /* I/O thread only */
  uint64_t outstanding; /* requests taken and not answered yet */
  uint64_t waits;       /* requests that found every worker busy */
  uint64_t redo;        /* AUTHs passed on to the batch */
  uint64_t failed;      /* queries the store failed */
  uint64_t queries[PQ_N];
};

static int pq_kind(uint8_t type) {
  switch (type) {
    case SOTTO_SRV_AUTH:
      return PQ_AUTH;
    case SOTTO_SRV_DEVICES:
      return PQ_DEVICES;
    case SOTTO_SRV_DEVLIST_GET:
      return PQ_DEVLIST_GET;
    case SOTTO_SRV_BUNDLE:
      return PQ_BUNDLE;
    default:
      return -1;
  }
}

static void cstr(char *dst, const struct sotto_srv_str *s) {
  memcpy(dst, s->p, s->len);
  dst[s->len] = 0;
}

/* ---- the reads (worker threads): what the batch's exec does, on the worker's
 * own store, for requests that write nothing ---- */

/* AUTH as exec_auth (srv_handlers.c) decides it: one hash, constant-time
 * compares, the same cost for an unknown device. Where exec_auth would
 * write (confirm a rotated secret, record the day), the op goes to the
 * batch instead (pool_redo) and nothing of this run is kept. */
static int pool_auth(struct sotto_store *st, struct op *o) {
  const struct sotto_srv_auth *m = &o->req.auth;
  char user[SOTTO_SRV_USER_MAX + 1];
  uint8_t h[32];
  int rc;
  cstr(user, &m->username);
  rc = st->ops->device_lookup(st->impl, user, m->device_id, &o->dev);
  if (rc < 0) return rc;
  crypto_hash_sha256(h, m->secret, SOTTO_SRV_SECRET_LEN);
  if (rc == 1) {
    o->code = SOTTO_SRV_E_AUTH;
  } else if (sodium_memcmp(h, o->dev.secret_hash, 32) == 0) {
    if (o->dev.has_prev) o->pool_redo = 1; /* device_secret_confirm writes */
  } else if (!o->dev.has_prev || sodium_memcmp(h, o->dev.prev_hash, 32) != 0) {
    o->code = SOTTO_SRV_E_AUTH;
  } else {
    memcpy(o->dev.secret_hash, o->dev.prev_hash, 32); /* the rotated-away secret, as exec_auth */
  }
  sodium_memzero(h, sizeof h);
  sodium_memzero(o->dev.prev_hash, sizeof o->dev.prev_hash);
  if (o->code || o->pool_redo) return 0;
  if (o->dev.last_seen_day != sotto__srv_today()) {
    o->pool_redo = 1; /* device_seen writes */
    return 0;
  }
  return st->ops->keys_count(st->impl, o->dev.devkey, &o->ec, &o->kem);
}

static int pool_devices(struct sotto_store *st, struct op *o) {
  return sotto__srv_devices_read(st, o);
}

static int pool_devlist_get(struct srv *s, struct sotto_store *st, struct op *o) {
  char user[SOTTO_SRV_USER_MAX + 1];
  uint32_t ver = 0;
  size_t len = 0;
  int rc;
  cstr(user, &o->req.target.username);
  if ((rc = sotto__srv_kt_pending(s, st, user)) != 0) { /* not in the log yet (srv_kt.c) */
    if (rc == 1) o->code = SOTTO_SRV_E_KT_PENDING;
    return rc == 1 ? 0 : rc;
  }
  if ((o->kt_out = malloc(SOTTO_SRV_MAX_DEVLIST + 2)) == NULL) return SOTTO_ERR_NOMEM;
  rc = st->ops->devlist_get(st->impl, user, &ver, o->kt_out + 2, SOTTO_SRV_MAX_DEVLIST, &len);
  if (rc < 0) return rc;
  if (rc == 1) {
    o->code = SOTTO_SRV_E_NOT_FOUND;
    return 0;
  }
  o->kt_out[0] = (uint8_t)(len >> 8);
  o->kt_out[1] = (uint8_t)len;
  o->kt_len = len + 2;
  return 0;
}

/* BUNDLE without a one-time key: bundle_take(onetime 0) only reads. */
static int pool_bundle(struct srv *s, struct sotto_store *st, struct op *o) {
  char user[SOTTO_SRV_USER_MAX + 1];
  struct sotto_store_device d;
  int rc;
  cstr(user, &o->req.target.username);
  if ((rc = sotto__srv_kt_pending(s, st, user)) != 0) { /* not in the log yet (srv_kt.c) */
    if (rc == 1) o->code = SOTTO_SRV_E_KT_PENDING;
    return rc == 1 ? 0 : rc;
  }
  if ((rc = st->ops->device_lookup(st->impl, user, o->req.target.device_id, &d)) < 0) return rc;
  sodium_memzero(d.secret_hash, sizeof d.secret_hash);
  sodium_memzero(d.prev_hash, sizeof d.prev_hash);
  if (rc == 1) {
    o->code = SOTTO_SRV_E_NOT_FOUND;
    return 0;
  }
  if ((o->bundle = calloc(1, sizeof *o->bundle)) == NULL) return SOTTO_ERR_NOMEM;
  if ((rc = st->ops->bundle_take(st->impl, d.devkey, 0, o->bundle)) < 0) return rc;
  if (rc == 1) {
    o->code = SOTTO_SRV_E_NO_KEYS;
    return 0;
  }
  o->target_devkey = d.devkey;
  return st->ops->keys_count(st->impl, d.devkey, &o->ec, &o->kem);
}

static int pool_exec(struct srv *s, struct sotto_store *st, struct op *o) {
  switch (o->type) {
    case SOTTO_SRV_AUTH:
      return pool_auth(st, o);
    case SOTTO_SRV_DEVICES:
      return pool_devices(st, o);
    case SOTTO_SRV_DEVLIST_GET:
      return pool_devlist_get(s, st, o);
    case SOTTO_SRV_BUNDLE:
      return pool_bundle(s, st, o);
    default:
      return SOTTO_ERR_USAGE;
  }
}

static void *pool_thread(void *arg) {
  struct srv_pool_worker *w = arg;
  struct srv_pool *p = w->p;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    struct op *o;
    while (!p->jobs && !p->quit) pthread_cond_wait(&p->cv, &p->mu);
    if (!p->jobs) break;
    o = p->jobs;
    if ((p->jobs = o->next) == NULL) p->jobs_tail = &p->jobs;
    o->next = NULL;
    p->busy++;
    pthread_mutex_unlock(&p->mu);
    /* A failed query (PostgreSQL restarted, a timeout) drops the connection;
     * the next request makes a new one, so the pool recovers by itself as
     * the batch's connection does. */
    if (!w->st.ops) {
      char why[256];
      if (sotto__store_open(&w->st, p->url, p->mode, why, sizeof why) != 0) w->st.ops = NULL;
    }
    if (!w->st.ops || pool_exec(w->s, &w->st, o) != 0) {
      o->pool_err = 1;
      if (w->st.ops) {
        w->st.ops->close(w->st.impl);
        w->st.ops = NULL;
      }
    }
    pthread_mutex_lock(&p->mu);
    p->busy--;
    *p->done_tail = o;
    p->done_tail = &o->next;
    {
      uint64_t one = 1;
      if (write(w->s->efd, &one, sizeof one) != (ssize_t)sizeof one) {
        /* cannot overflow; the I/O thread also looks every turn (a second at most) */
      }
    }
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

/* ---- the I/O thread's side ---- */

static void dispatch(struct srv_pool *p, struct op *o) {
  o->next = NULL;
  pthread_mutex_lock(&p->mu);
  if (p->busy >= p->n) p->waits++;
  *p->jobs_tail = o;
  p->jobs_tail = &o->next;
  pthread_cond_signal(&p->cv);
  pthread_mutex_unlock(&p->mu);
}

int sotto__srv_pool_take(struct srv *s, struct op *o) {
  struct srv_pool *p = s->pool;
  struct conn *c = o->c;
  int k;
  if (!p || (k = pq_kind(o->type)) < 0) return 0;
  if (o->type == SOTTO_SRV_BUNDLE && !o->no_otk) return 0; /* takes a one-time key: writes */
  if ((uint32_t)c->inflight != c->pool_n) return 0;      /* something of it is in the batch */
  c->inflight++;
  c->inflight_bytes += sotto__srv_op_cost(o->type, o->len);
  c->pool_n++;
  p->outstanding++;
  p->queries[k]++;
  o->pnext = NULL;
  if (c->pq_tail) {
    c->pq_tail->pnext = o;
    c->pq_tail = o;
  } else {
    c->pq_head = c->pq_tail = o;
    dispatch(p, o);
  }
  return 1;
}

/* The op is out of the pool and of its connection's pooled list. */
static struct op *unlink_head(struct srv_pool *p, struct conn *c) {
  struct op *o = c->pq_head;
  if ((c->pq_head = o->pnext) == NULL) c->pq_tail = NULL;
  o->pnext = NULL;
  c->pool_n--;
  p->outstanding--;
  return o;
}

/* Back to the batch, in order, for o and every pooled request after it. */
static void to_batch(struct srv *s, struct srv_pool *p, struct conn *c) {
  while (c->pq_head) {
    struct op *o = unlink_head(p, c);
    c->inflight--;
    c->inflight_bytes -= sotto__srv_op_cost(o->type, o->len);
    o->code = 0;
    o->pool_redo = o->pool_err = 0;
    o->ec = o->kem = 0;
    sotto__srv_op_enqueue(s, o);
  }
}

void sotto__srv_pool_turn(struct srv *s) {
  struct srv_pool *p = s->pool;
  struct op *list, *o, *next;
  if (!p || !p->outstanding) return;
  pthread_mutex_lock(&p->mu);
  list = p->done;
  p->done = NULL;
  p->done_tail = &p->done;
  pthread_mutex_unlock(&p->mu);
  if (!list) return;
  for (o = list; o; o = next) {
    struct conn *c = o->c;
    next = o->next;
    o->next = NULL;
    if (c->pq_head != o) { /* cannot happen: one pooled request per connection runs at a time */
      sotto__srv_log(0, "pool", "%s", "error=out_of_order");
      continue;
    }
    if (o->pool_redo && !c->dead) {
      p->redo++;
      to_batch(s, p, c);
      continue;
    }
    (void)unlink_head(p, c);
    if (o->pool_err) p->failed++;
    sotto__srv_op_answer(s, o, o->pool_err);
    if (!o->pool_err && !c->dead) sotto__srv_op_fanout(s, o);
    if (!c->dead) sotto__srv_flush_later(s, c);
    sotto__srv_op_free(o);
    if (c->dead) {
      /* Nobody waits for the rest: freed unasked. */
      while (c->pq_head) sotto__srv_op_free(unlink_head(p, c));
    } else if (c->pq_head) {
      dispatch(p, c->pq_head);
    }
  }
  sotto__srv_flush_queued(s);
}

void sotto__srv_pool_drain(struct srv *s) {
  int i;
  if (!s->pool) return;
  /* Each query is bounded by the reader connection's own timeout. */
  for (i = 0; s->pool->outstanding && i < 30000; i++) {
    sotto__srv_pool_turn(s);
    if (s->pool->outstanding) usleep(1000);
  }
}

int sotto__srv_pool_open(struct srv *s) {
  const struct sotto_srv_config *cfg = s->cfg;
  struct srv_pool *p;
  char url[SOTTO_STORE_URL_MAX + 64], why[512];
  int i, mode = SOTTO_STORE_OPEN_READER | (cfg->cluster[0] ? SOTTO_STORE_OPEN_SHARED : 0);
  if (cfg->pg_pool <= 0 || strcmp(s->store.backend, "postgresql") != 0) return 0;
  if ((p = calloc(1, sizeof *p)) == NULL || (p->w = calloc((size_t)cfg->pg_pool, sizeof *p->w)) == NULL) {
    free(p);
    fprintf(stderr, "sotto-server: --pg-pool: out of memory\n");
    return -1;
  }
  p->jobs_tail = &p->jobs;
  p->done_tail = &p->done;
  if (pthread_mutex_init(&p->mu, NULL) != 0 || pthread_cond_init(&p->cv, NULL) != 0) {
    free(p->w);
    free(p);
    fprintf(stderr, "sotto-server: --pg-pool: cannot make its lock\n");
    return -1;
  }
  s->pool = p;
  sotto_srv_store_url(cfg, url, sizeof url);
  snprintf(p->url, sizeof p->url, "%s", url);
  p->mode = mode;
  for (i = 0; i < cfg->pg_pool; i++) {
    struct srv_pool_worker *w = &p->w[i];
    w->p = p;
    w->s = s;
    if (sotto__store_open(&w->st, url, mode, why, sizeof why) != 0) {
      fprintf(stderr, "sotto-server: --pg-pool: connection %d of %d: %s\n", i + 1, cfg->pg_pool, why);
      return -1;
    }
    if (pthread_create(&w->th, NULL, pool_thread, w) != 0) {
      w->st.ops->close(w->st.impl);
      w->st.ops = NULL;
      fprintf(stderr, "sotto-server: --pg-pool: cannot start thread %d\n", i + 1);
      return -1;
    }
    w->started = 1;
    p->n++;
  }
  sotto__srv_log(1, "pg_pool", "connections=%d", p->n);
  return 0;
}

void sotto__srv_pool_close(struct srv *s) {
  struct srv_pool *p = s->pool;
  int i;
  if (!p) return;
  sotto__srv_pool_drain(s);
  pthread_mutex_lock(&p->mu);
  p->quit = 1;
  pthread_cond_broadcast(&p->cv);
  pthread_mutex_unlock(&p->mu);
  for (i = 0; i < s->cfg->pg_pool; i++) {
    if (p->w[i].started) pthread_join(p->w[i].th, NULL);
    if (p->w[i].st.ops) p->w[i].st.ops->close(p->w[i].st.impl);
  }
  pthread_cond_destroy(&p->cv);
  pthread_mutex_destroy(&p->mu);
  free(p->w);
  free(p);
  s->pool = NULL;
}

size_t sotto__srv_pool_metrics(struct srv *s, char *out, size_t cap) {
  struct srv_pool *p = s->pool;
  size_t n = 0;
  int busy, i;
  if (!p) return 0;
  pthread_mutex_lock(&p->mu);
  busy = p->busy;
  pthread_mutex_unlock(&p->mu);
#define P(...) n += (size_t)snprintf(out + n, n < cap ? cap - n : 0, __VA_ARGS__)
  P("# TYPE sotto_pool_size gauge\nsotto_pool_size %d\n", p->n);
  P("# TYPE sotto_pool_busy gauge\nsotto_pool_busy %d\n", busy);
  P("# TYPE sotto_pool_waits_total counter\nsotto_pool_waits_total %llu\n", (unsigned long long)p->waits);
  P("# TYPE sotto_pool_queries_total counter\n");
  for (i = 0; i < PQ_N; i++)
    P("sotto_pool_queries_total{request=\"%s\"} %llu\n", pq_name[i], (unsigned long long)p->queries[i]);
  P("# TYPE sotto_pool_to_batch_total counter\nsotto_pool_to_batch_total %llu\n", (unsigned long long)p->redo);
  P("# TYPE sotto_pool_failures_total counter\nsotto_pool_failures_total %llu\n", (unsigned long long)p->failed);
#undef P
  return n < cap ? n : cap;
}

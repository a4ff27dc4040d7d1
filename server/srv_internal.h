/* SPDX-License-Identifier: Apache-2.0 */
/* srv_internal.h: what the files of the sotto-server core share (not an
 * interface for anything outside server/).
 *
 *   srv_loop.c      the event loop: listeners, accept, timers, signals, start and stop
 *   srv_conn.c      the connection state machine: reading frames, writing answers,
 *                   pushes, back-pressure, the device map and backlog paging
 *   srv_handlers.c  the request handlers: one table entry per request type; each
 *                   request is parsed once into struct op and acted on from there
 *   srv_commit.c    the group-commit pipeline (batches, store thread, disk reserve)
 *   srv_limits.c    the rate limits and quotas checked before a request is queued
 *   srv_metrics.c   the Prometheus endpoint
 *   srv_pool.c      the read pool (--pg-pool): reads answered outside the batch
 *
 * One thread does all I/O with epoll over non-blocking sockets. Requests that
 * touch the store become "ops" in a batch; the batch runs inside ONE store
 * transaction (group commit) and only after commit() succeeded are the
 * answers written: a sender's OK for SEND means the envelope is durable. Live
 * pushes to connected recipients are also written after that commit, so a
 * recipient never sees (and acks) an envelope that could still vanish.
 *
 * The transaction runs on a second thread, the store thread, so that TLS and
 * the store use both cores: while the store thread executes and commits batch
 * N+1, the I/O thread writes the answers of batch N and reads and parses the
 * requests of batch N+2. Ownership is strict: the store thread has its own
 * store connection and, while a batch is in flight, that batch's ops; the
 * I/O thread has everything else, including a second store connection
 * that it only reads through, for backlog paging and metrics (readers see
 * only committed transactions). Dropped connections are freed only once no batch
 * in flight can point at them. If the thread cannot be started, batches run
 * inline in the I/O thread.
 *
 * Memory per idle connection: struct conn plus OpenSSL's state; read and
 * write buffers exist only while bytes are pending (SSL_MODE_RELEASE_BUFFERS
 * does the same inside OpenSSL). A busy connection is bounded too: reading
 * pauses while it has max-inflight requests (or max-inflight-bytes) not yet
 * answered or 256 KiB of answers not taken, and one connection gives at
 * most BATCH_CONN_OPS ops to a batch. Limits that must outlive a connection
 * (per account, address, prefix) are keyed buckets in ratelimit.c. */
#ifndef SOTTO_SRV_INTERNAL_H
#define SOTTO_SRV_INTERNAL_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <sotto/devlist.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "proto.h"
#include "ratelimit.h"
#include "rotation.h"
#include "server.h"
#include "store.h"
#include "transport.h"
#include "wire.h"

#define READ_CHUNK (64 * 1024)
#define WBUF_HIGH (256 * 1024)      /* stop reading requests above this */
#define WBUF_PUSH_MAX (1024 * 1024) /* live pushes fall back to paging above this */
#define BACKLOG_PAGE 64
#define BACKLOG_ROOM (64 * 1024) /* page the backlog while less than this is pending */
#define DEV_BUCKETS (1u << 16)
#define LIM_BUCKETS (1u << 16)
#define LIM_MAX (1u << 20) /* keyed buckets and counters (struct sotto_lim), about 64 MiB at most */
#define CLOSE_GRACE_MS 2000
#define BATCH_CONN_OPS 256           /* ops of one connection in one batch */
#define BATCH_CONN_BYTES (64 * 1024) /* and their cost (op_cost) */
#define METRICS_REQ_MAX 2048
#define SOTTO_SRV_BLOB_GONE_MAX 264 /* blob files a batch removes after its answers (srv_blob.c) */

enum { S_HANDSHAKE, S_HELLO, S_UNAUTH, S_AUTHING, S_AUTHED };
enum { K_CLIENT, K_METRICS };

struct conn {
  struct sotto__io io;
  struct conn *prev, *next; /* all connections */
  struct conn *hnext;       /* device map chain */
  struct conn *bnext;       /* backlog list */
  uint8_t kind, state;
  uint8_t closing, dead, in_backlog, backlog, registered_ev, flush_queued;
  uint8_t hdr_have;
  uint8_t features; /* SOTTO_SRV_FEAT_* the client announced in HELLO */
  uint16_t version; /* the protocol version of its HELLO (SOTTO_SRV_VERSION_MIN..SOTTO_SRV_VERSION) */
  uint8_t auth_held; /* the pending AUTH is charged to its failed-AUTH buckets if it fails */
  uint8_t ucounted;  /* counted in the per-address and per-prefix pre-auth shares */
  uint8_t rpaused;   /* reading paused: too much in flight (input kept in ibuf) */
  uint8_t hdr[4];
  uint32_t ev;
  int64_t deadline_ms;
  int64_t last_rx_ms; /* last frame received (idle timeout of authenticated connections) */
  /* The peer address, in memory only while not authenticated (it is never
   * stored or logged): alen bytes of address, the prefix masked. */
  uint8_t addr[16], pfx[16];
  uint8_t alen;
  uint64_t ukey_addr, ukey_pfx;         /* pre-auth share counters */
  uint64_t auth_key_user, auth_key_pfx; /* failed-AUTH buckets of the pending AUTH */
  uint8_t auth_cl;                      /* cluster mode: those buckets are in Redis (srv_limits.c) */
  uint8_t auth_ulen;
  char auth_user[SOTTO_SRV_USER_MAX];   /* the pending AUTH's username, for the Redis charge */
  uint64_t send_key, bundle_key;        /* the account's SEND and BUNDLE buckets */
  /* Requests read but not answered yet, and their payload bytes: reading
   * pauses at max-inflight / max-inflight-bytes, so that the memory one
   * connection can make the server hold is bounded. */
  int inflight;
  size_t inflight_bytes;
  /* Attachments (srv_blob.c): the blob this connection last used through
   * the batch, as the store said then (state 1: ours, not committed; 2:
   * committed): while it is 1, its PUTs run on the I/O thread when nothing
   * else of the connection waits in a batch. */
  struct {
    uint8_t id[SOTTO_SRV_BLOB_ID_LEN];
    uint8_t state; /* 0 none, 1 uploading (ours), 2 committed */
    int64_t size, expires_ms;
  } blob;
  uint8_t *ibuf; /* input read but not parsed yet (while paused), at most one read */
  size_t ibuf_len;
  /* batch_start's share count for this connection (valid while bt_gen is the srv's) */
  uint32_t bt_gen;
  uint32_t bt_n;
  size_t bt_bytes;
  uint8_t bt_full;
  /* authenticated identity */
  int64_t devkey, account_id;
  uint32_t device_id;
  char user[SOTTO_SRV_USER_MAX + 1];
  /* partial frame being read */
  uint8_t *rbuf;
  uint32_t rneed, rhave, rcap;
  /* bytes waiting to be written */
  uint8_t *wbuf;
  size_t wlen, woff, wcap;
  int64_t cursor; /* backlog: last id written to this connection */
  struct conn *znext;
  struct conn *fnext; /* connections to flush at the end of a batch */
  uint64_t cl_gen;    /* cluster mode: this connection's number in the device registry (srv_cluster.c) */
  uint8_t cl_quiet;   /* cluster mode: a live connection paging new envelopes: no DRAINED at the end */
  int64_t cl_notified_us; /* cluster mode: when the oldest announcement not yet paged arrived (STAGE_NOTIFY) */
  uint8_t auth_hash[32]; /* the secret hash this connection authenticated with (ROTATE_SECRET keeps it as the previous one) */
  /* The read pool (srv_pool.c): this connection's requests handed to it and
   * not answered yet, in request order (pnext); the first is the one a
   * worker has. Its batch requests wait while pool_n > 0, and the dropped
   * connection is freed only at 0. */
  struct op *pq_head, *pq_tail;
  uint32_t pool_n;
  /* PUTs with the blob writer (srv_blob.c) and not answered yet: its batch
   * requests wait while blob_wn > 0, and the dropped connection is freed
   * only at 0. */
  uint32_t blob_wn;
};

/* A request parsed once, when its frame arrives: the fields point into
 * the op's own copy of the payload (op->data), so they stay valid until the
 * op is freed. KEYS_UPLOAD's table is large and lives on the heap. */
union srv_req {
  struct sotto_srv_register reg;
  struct sotto_srv_auth auth;
  struct sotto_store_keys *keys;
  struct sotto_srv_target target; /* BUNDLE, DEVICES */
  struct sotto_srv_send send;
  uint64_t ack;       /* envelope id */
  uint64_t epoch;     /* EPOCH */
  uint32_t device_id; /* DEVICE_REMOVE */
  const uint8_t *code; /* SET_RECOVERY: SOTTO_SRV_RECOVERY_LEN bytes */
  struct sotto_srv_str ik; /* DEVICE_IDENTITY */
  struct sotto_srv_recover recover;
  struct sotto_srv_blob_req blob;   /* BLOB_* */
  struct sotto_srv_str kt_user;     /* KT_SEARCH */
  uint64_t kt_size;                 /* KT_CONSISTENCY: the client's older size */
  struct sotto_srv_kt_range kt_rng; /* KT_UPDATES */
  struct sotto_srv_kt_cosign kt_cosign; /* KT_COSIGN */
  struct sotto_srv_kt_versions_req kt_ver; /* KT_VERSIONS */
  struct srv_devlist *devlist;      /* DEVLIST_PUT (heap) */
  struct sotto_srv_send_multi *multi; /* SEND_MULTI (heap) */
};

/* DEVLIST_PUT, parsed and verified on the I/O thread (docs/multi-device.md):
 * rc is sotto_devlist_parse's answer (exec refuses a list that failed). */
struct srv_devlist {
  int rc;
  const uint8_t *raw; /* into op->data */
  size_t raw_len;
  struct sotto_devlist l;
};

struct kt_pool; /* srv_kt.c */

/* An op: a request waiting for the next group commit. */
struct op {
  struct op *next;
  struct op *pnext;  /* the read pool: the connection's next pooled request (srv_pool.c) */
  uint8_t pool_redo; /* the read pool: an AUTH that must write: it goes on to the batch */
  uint64_t rm_gen;   /* srv.removals when the request was read (an AUTH's answer looks at those since) */
  uint8_t pool_err;  /* the read pool: the query failed (answered as a failed batch would be) */
  struct conn *c;
  const struct srv_handler *h;
  uint8_t type;
  uint32_t req_id;
  union srv_req req;
  /* results, filled by exec, sent after commit */
  int code;
  uint8_t no_otk;  /* BUNDLE: the target's one-time key budget is spent */
  uint8_t own;     /* DEVICES: the target is the caller's own account (set on the I/O or store thread) */
  uint8_t failed;  /* the store refused this op alone (undone by its savepoint) */
  uint8_t deleted; /* ACK: an envelope was deleted (the WAL is truncated after the commit) */
  uint8_t pooled;  /* recycled through the op pool (room for OP_POOL_DATA payload bytes) */
  uint8_t put_buf; /* a BLOB_PUT placed for O_DIRECT in a recycled buffer, shift bytes in (srv_commit.c) */
  uint16_t shift;
  uint32_t device_id;
  uint8_t secret[SOTTO_SRV_SECRET_LEN];
  struct sotto_store_device dev;
  int64_t msg_id, ts, ec, kem, target_devkey;
  struct sotto_store_bundle *bundle;
  uint32_t ids[SOTTO_SRV_MAX_DEVICES];
  size_t n_ids;
  uint32_t days[SOTTO_SRV_MAX_DEVICES]; /* DEVICES with with_days: last-seen days beside ids[] */
  uint8_t with_days;                    /* DEVICES of the caller's own account, FEAT_LAST_SEEN */
  uint8_t with_list; /* SEND_MULTI from a client with FEAT_MISMATCH_LIST: ERR(30) carries the list (kt_out) */
  int64_t gone[SOTTO_SRV_MAX_DEVICES]; /* UNREGISTER, RECOVER: devices removed (their connections close) */
  size_t n_gone;
  int64_t multi_ids[SOTTO_SRV_MAX_DEVICES]; /* SEND_MULTI: the envelopes' ids (gone[]: their devices' keys) */
  size_t n_multi;
  uint8_t blob_state; /* BLOB_*: what exec learnt of the blob, for conn.blob (srv_blob.c) */
  int64_t blob_size, blob_expires;
  uint32_t kt_skip; /* blob thread's GET: the answer is kt_out + kt_skip (an O_DIRECT read's block start, or room for the frame header, before it) */
  uint8_t *kt_out; /* KT_*: the OK payload, made on the store thread (srv_kt.c); SEND_MULTI: the ERR(30) list */
  uint8_t kt_pre;  /* REGISTER: kt_pre_entry/opening hold version 0 of the name (made ahead of the batch) */
  uint8_t kt_pre_entry[64], kt_pre_opening[16];
  /* REGISTER with --kt-threads >= 1: queued for a VRF helper at admission
   * (srv_kt.c); kt_state and the links belong to that queue's mutex */
  struct kt_pool *kt_q; /* the queue it is in or was taken from; NULL once claimed or never queued */
  struct op *kt_qnext, *kt_qprev;
  uint8_t kt_state;
  size_t kt_len;
  int64_t t_in_us; /* when its frame arrived (STAGE_QUEUE) */
  size_t len;
  uint8_t data[]; /* the request payload */
};

/* Where time goes on the way of an envelope (metric sotto_stage_seconds):
 * a histogram per stage, in microseconds, updated on the I/O thread. */
enum {
  STAGE_QUEUE,    /* a batch's oldest op: from its frame's arrival to the batch's start */
  STAGE_COMMIT,   /* a batch on the store thread: BEGIN to COMMIT returned */
  STAGE_LOCK,     /* cluster: the batch's first round trip, which waits for the cluster-wide id lock */
  STAGE_ANSWER,   /* a finished batch waiting for the I/O thread to answer it */
  STAGE_ANNOUNCE, /* cluster: one Redis flush of announcements (GETs, then PUBLISHes) */
  STAGE_PAGE,     /* one round of backlog paging (horizon and pages from the store) */
  STAGE_NOTIFY,   /* cluster: an announcement read from Redis until its device's page was written out */
  STAGE_ENVELOPE, /* each SEND and SEND_MULTI (not per batch): from its frame's arrival to its answer */
  STAGE_N
};
#define STAGE_BUCKETS 13
struct stage_hist {
  uint64_t b[STAGE_BUCKETS]; /* <= 0.1, 0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000 ms, more */
  uint64_t sum_us, n;
};
void sotto__srv_stage_add(struct stage_hist *h, int64_t us);
int64_t sotto__srv_mono_us(void);

struct metrics {
  struct stage_hist stage[STAGE_N];
  uint64_t conns_total, conns_rejected, tls_failed, msgs_in, msgs_out, acks, registrations, auth_ok,
      auth_fail, bundles, commits, commit_failures, batch_ops, expired, rate_limited;
  uint64_t commit_retries; /* batches run again after losing a race with another node (cluster) */
  uint64_t commit_serial_planned, commit_serial_rerun; /* cluster: batches under the exclusive order lock */
  uint64_t store_round_trips; /* the batches' round trips to the store (PostgreSQL) */
  uint64_t link_opened, link_provisioned, link_done, link_expired, link_refused; /* link slots (srv_link.c) */
  uint64_t blob_io_thread; /* BLOB_PUTs done on the I/O thread (srv_blob.c) */
  uint64_t blob_put_inplace; /* PUTs written with O_DIRECT from their own buffer (blob or store thread: atomic) */
  uint64_t batch_hist[5]; /* <=1, <=10, <=100, <=1000, more */
  /* Answers and CLOSEs per error code: one slot per code 1..255 (the
   * wire's codes are below 256 today), slot 0 for any code above that. */
  uint64_t errors[256];
};

/* The batch in flight: its ops list and results belong to the store thread
 * from batch_start until the I/O thread has seen it done. */
struct batch {
  struct op *ops;
  int n, expire, rc;
  int64_t notices, notice_max_id; /* notices the expiry run queued, and the highest id among them */
  int scrub;      /* I/O -> store: truncate the WAL after this batch (a scrub is due) */
  int kt;         /* I/O -> store: the log wants this batch (srv_kt.c: a job to apply or a snapshot) */
  int left;       /* I/O -> store: ops still queued when this batch was taken (the server is busy) */
  int scrub_need; /* store -> I/O: this batch deleted envelopes and did not truncate */
  int64_t deleted;
  int64_t t_start_us, t_done_us, commit_us, lock_us; /* stage timings (store thread -> I/O thread) */
  int64_t oldest_us; /* arrival of the batch's oldest op */
  int retries;       /* attempts run again after losing a race with another node */
  int serial_planned, serial_reruns; /* cluster: exclusive order lock asked up front / after breaking the order */
  int64_t round_trips;               /* to the store, all attempts (ops->round_trips) */
};

struct srv_cluster;

/* Device keys removed lately, kept by the I/O thread (srv_handlers.c,
 * sotto__srv_note_removed): an AUTH whose read of the device row was made
 * before a removal committed (in the read pool, or in another node's
 * batch) is not let in after it. */
#define SRV_REMOVED_RING 4096

struct srv {
  const struct sotto_srv_config *cfg;
  struct srv_cluster *cl; /* cluster mode (srv_cluster.c), or NULL */
  struct sotto_store store;  /* the store thread's, for batches */
  struct sotto_store rstore; /* the I/O thread's own connection: backlog pages, metrics */
  int64_t horizon;           /* highest envelope id whose batch has been answered */
  SSL_CTX *ctx;
  uint8_t rot[SOTTO_ROT_CHAIN_MAX_LEN]; /* the ROTATION answer (DIR/rotation.chain) */
  size_t rot_len;
  int64_t rot_checked_ms;               /* mono: when the file was last looked at (at most once a second) */
  int64_t rot_mtime_ns, rot_size, rot_ino;
  int ep, lfd, mfd, sfd;
  int lockfd;          /* DATA/sotto.lock, held (flock) while the server runs */
  int dblockfd;        /* DIR/sotto.lock of a --store sqlite:DIR outside DATA, or -1 */
  int space_low;       /* the disk filled up; the reserve is released (written by the store thread with
                        * __atomic_store_n; the I/O thread reads it with __atomic_load_n) */
  int scrub_pending;   /* deleted envelopes may still be in the WAL */
  int64_t scrub_at_ms; /* when the WAL is truncated for them (mono) */
  struct conn *conns;
  int n_conns, n_unauth;
  struct conn *devmap[DEV_BUCKETS];
  struct conn *backlog;
  struct conn *zombies; /* dropped, freed once no batch in flight can point at them */
  uint8_t blob_gone[SOTTO_SRV_BLOB_GONE_MAX][SOTTO_SRV_BLOB_ID_LEN]; /* store thread (srv_blob.c) */
  int blob_gone_n;
  /* blob files the batch attempt created (BLOB_CREATE): removed if the
   * attempt does not commit (no row would name them) */
  uint8_t blob_made[SOTTO_SRV_BLOB_GONE_MAX][SOTTO_SRV_BLOB_ID_LEN];
  int blob_made_n;
  struct conn *to_flush;
  struct op *ops, **ops_tail;
  int n_ops;
  uint32_t bt_gen; /* batch_start's round, for the per-connection share counts */
  int expire_due;
  int64_t next_expire_ms;
  struct sotto_lim lim; /* every limit that outlives a connection */
  struct metrics m;
  int stopping;
  /* group commit pipeline */
  struct batch b;
  int b_active; /* a batch is in flight */
  int threaded; /* the store thread runs */
  int efd;      /* eventfd: the store thread finished a batch */
  pthread_t worker;
  pthread_mutex_t mu; /* guards job, done, quit */
  pthread_cond_t cv, done_cv;
  int job, done, quit;
  struct srv_kt *kt; /* the key-transparency log (srv_kt.c), or NULL without --kt */
  struct srv_pool *pool; /* the read pool (srv_pool.c), or NULL */
  uint64_t removals;     /* devices removed so far (I/O thread), the ring's next slot */
  int64_t removed_ring[SRV_REMOVED_RING];
  struct srv_blobw *blobw; /* the blob writer (srv_blob.c), or NULL: PUTs written on the I/O thread */
  struct srv_link *link; /* link slots (srv_link.c), made at the first LINK_* request */
};

/* ---- small helpers ------------------------------------------------------- */

struct srv_handler;

/* ---- srv_loop.c ---- */
extern int sotto__srv_log_level;
int64_t sotto__srv_now_ms(void);
int64_t sotto__srv_mono_ms(void);
int64_t sotto__srv_today(void);
/* Structured log line: ts=... level=... event=... then key=value pairs.
 * Callers never pass secrets, message bodies or addresses. */
__attribute__((format(printf, 3, 4))) void sotto__srv_log(int level, const char *event, const char *fmt, ...);
/* Peer tag for debug logs: 32 bits of the keyed hash of the address, so
 * that lines about one peer can be matched without the address in clear. */
static inline unsigned sotto__srv_peer_tag(const struct conn *c) {
  return (unsigned)(c->ukey_addr >> 32);
}
/* Per-minute rates of the config as tokens per millisecond. */
static inline double sotto__srv_per_min(double r) {
  return r / 60000.0;
}

/* ---- srv_kt.c ---- */
struct batch;
/* Opens (or creates) the log: keys in DATA/kt.key, entries replayed from the store. */
int sotto__srv_kt_open(struct srv *s);
void sotto__srv_kt_close(struct srv *s);
/* ---- srv_link.c ---- */
/* Handles a LINK_* frame in place and returns 1, or returns 0 for any other
 * type. */
int sotto__srv_link_frame(struct srv *s, struct conn *c, const struct sotto_srv_frame *f);
/* DEVICES read (srv_handlers.c), shared by the batch and the read pool. */
int sotto__srv_devices_read(struct srv *s, struct sotto_store *st, struct op *o);
/* 1 if the target username of o is the account c is logged in as (canonical forms). */
int sotto__srv_target_own(const struct conn *c, const struct sotto_srv_str *target);
size_t sotto__srv_link_open_count(const struct srv *s);
void sotto__srv_link_close(struct srv *s);
/* Store thread, inside the batch's transaction, after every op ran: logs
 * what the batch's successful REGISTER, RECOVER and UNREGISTER changed as
 * one entry in the same transaction. */
/* At the start of each attempt at batch b: 1 if it will apply the log's
 * job in flight (asynchronous logging; on a shared store it then needs
 * the order lock exclusively). */
int sotto__srv_kt_plan(struct srv *s, const struct batch *b);
/* Batches that took a job and did not commit (metric). */
uint64_t sotto__srv_kt_apply_failed(struct srv *s);
uint64_t sotto__srv_kt_late_items(struct srv *s); /* sotto_kt_items_redone_total */
/* A device key removed (committed here, or told by another node): noted so
 * that an AUTH read before the removal is refused (srv_handlers.c). */
void sotto__srv_note_removed(struct srv *s, int64_t devkey);
/* UNREGISTER (store thread): the account's uncommitted blobs deleted (rows
 * now, files after the commit). 0 or an error. */
int sotto__srv_blob_account_gone(struct srv *s, int64_t account_id);
/* Store thread, around each attempt at a batch: forget the files made, or
 * remove them (the attempt rolled back). */
void sotto__srv_blob_made_reset(struct srv *s);
void sotto__srv_blob_made_undo(struct srv *s);
int sotto__srv_kt_batch(struct srv *s, struct batch *b);
/* Store thread, after the batch's commit (rc 0) or rollback. */
void sotto__srv_kt_batch_done(struct srv *s, int rc);
/* kt-pending-max > 0 (srv_kt.c, "asynchronous logging"): 1 if user's
 * account is not in the log yet (nothing of it may be served: ERR 44), 0,
 * or a store error; st: the calling thread's store. */
int sotto__srv_kt_pending(struct srv *s, struct sotto_store *st, const char *user);
/* REGISTER: mark 0 before writing (sets *code to ERR 9 when kt-pending-max
 * names wait), mark 1 after the account: the name's mark. */
int sotto__srv_kt_register(struct srv *s, const char *user, const char *canon, int mark, int *code);
/* Names marked and not logged yet (this node's count), -1 without async logging. */
int64_t sotto__srv_kt_pending_count(struct srv *s);
/* I/O thread: 1 if the log wants a batch (a job to apply or a snapshot). */
int sotto__srv_kt_want(struct srv *s);
/* exec of the KT requests (store thread): fill o->kt_out or o->code. */
int sotto__srv_kt_exec(struct srv *s, struct op *o);
/* I/O thread, an admitted REGISTER: the VRF output and commitment of
 * version 0 of the name (what a batch logs unless the name was logged
 * before), so that the store thread does not compute it: with --kt-threads
 * 0 here, else queued for the helper threads, which compute it while
 * earlier batches commit. */
void sotto__srv_kt_precompute(struct srv *s, struct op *o);
/* An op queued by sotto__srv_kt_precompute leaves the queue (waiting if a
 * helper is computing it): before it is freed (sotto__srv_op_discard). */
void sotto__srv_kt_pre_cancel(struct op *o);

/* ---- srv_blob.c (attachments) ---- */
int sotto__srv_blob_init(const struct srv *s);
int sotto__srv_blob_parse(const struct srv *s, struct op *o);
int sotto__srv_blob_admit(struct srv *s, struct conn *c, struct op *o);
/* exec of every BLOB_* request (store thread): the OK payload in o->kt_out. */
int sotto__srv_blob_exec(struct srv *s, struct op *o);
/* Inside the expiry run's transaction. */
int sotto__srv_blob_expire(struct srv *s, int64_t now_ms, int64_t *deleted);
/* The OK payload of a BLOB_* answer (I/O thread, after the commit); it
 * also notes the blob in c->blob for the I/O thread's path. */
struct sotto__wr;
void sotto__srv_blob_answer(struct srv *s, struct op *o, struct sotto__wr *w);
/* I/O thread, after parse and admit: a PUT to the connection's noted blob
 * done here and answered (1: o consumed), or 0 (the batch's way). */
int sotto__srv_blob_fast(struct srv *s, struct conn *c, struct op *o);
long sotto__srv_blob_put_shift(const struct sotto_srv_frame *f);
/* Files of blobs whose rows the running batch deleted (store thread): forgotten
 * at each attempt's start, removed after a committed batch was handed back. */
int sotto__srv_blob_writer_open(struct srv *s);
void sotto__srv_blob_writer_turn(struct srv *s);
void sotto__srv_blob_writer_drain(struct srv *s);
void sotto__srv_blob_writer_close(struct srv *s);
void sotto__srv_blob_gone_reset(struct srv *s);
void sotto__srv_blob_gone_flush(struct srv *s, int committed);

/* ---- srv_conn.c ---- */
int sotto__srv_conn_full(const struct srv *s, const struct conn *c);
void sotto__srv_ev_update(struct srv *s, struct conn *c);
struct conn **sotto__srv_devmap_slot(struct srv *s, int64_t devkey);
struct conn *sotto__srv_devmap_get(struct srv *s, int64_t devkey);
void sotto__srv_devmap_del(struct srv *s, struct conn *c);
void sotto__srv_unauth_release(struct srv *s, struct conn *c);
void sotto__srv_conn_drop(struct srv *s, struct conn *c);
struct conn *sotto__srv_conn_add(struct srv *s, int fd, int kind);
uint8_t *sotto__srv_wbuf_reserve(struct conn *c, size_t n);
int sotto__srv_frame_begin(struct conn *c, struct sotto__wr *w, size_t cap);
void sotto__srv_frame_end(struct conn *c, struct sotto__wr *w, uint8_t type, uint32_t req_id);
void sotto__srv_send_simple(struct conn *c, uint8_t type, uint32_t req_id, const void *p, size_t n);
int sotto__srv_send_adopt(struct conn *c, uint8_t type, uint32_t req_id, uint8_t *buf, size_t skip, size_t n);
void sotto__srv_send_err(struct srv *s, struct conn *c, uint32_t req_id, int code);
/* ERR(code) followed by blob16 list (SEND_MULTI's ERR(30) with FEAT_MISMATCH_LIST). */
void sotto__srv_send_err_list(struct srv *s, struct conn *c, uint32_t req_id, int code, const uint8_t *list,
                              size_t len);
void sotto__srv_conn_close_with(struct srv *s, struct conn *c, int code);
void sotto__srv_push_env(struct srv *s, struct conn *c, const struct sotto_store_env *e);
void sotto__srv_push_keys_low(struct conn *c, int64_t ec, int64_t kem);
void sotto__srv_do_write(struct srv *s, struct conn *c);
void sotto__srv_do_read(struct srv *s, struct conn *c);
void sotto__srv_on_event(struct srv *s, struct conn *c, uint32_t ev);
void sotto__srv_authed(struct srv *s, struct conn *c, const struct sotto_store_device *d, const char *user);
void sotto__srv_flush_later(struct srv *s, struct conn *c);
void sotto__srv_flush_queued(struct srv *s);
/* Puts a live connection back into backlog (paging) mode. */
void sotto__srv_backlog_add(struct srv *s, struct conn *c);
int sotto__srv_pump_backlog(struct srv *s);

/* ---- srv_handlers.c ---- */
/* Handles one complete frame body. */
void sotto__srv_handle_frame(struct srv *s, struct conn *c, const uint8_t *body, size_t len);
/* On the store thread, inside the open transaction: 0 (o->code holds the
 * answer) or a negative store error, which aborts the whole batch. */
int sotto__srv_op_exec(struct srv *s, struct op *o);
/* 1 if the op's exec writes with at most one statement (SEND, ACK). */
int sotto__srv_op_one_write(const struct op *o);
/* On the I/O thread after the commit (or failed = 1 after a rollback). */
void sotto__srv_op_answer(struct srv *s, struct op *o, int failed);
void sotto__srv_op_fanout(struct srv *s, struct op *o);

/* ---- srv_commit.c ---- */
size_t sotto__srv_op_cost(uint8_t type, size_t len);
/* A new op for frame f with its own copy of the payload; not queued yet. */
struct op *sotto__srv_op_alloc(struct conn *c, const struct sotto_srv_frame *f, int64_t now_us);
/* Queues an op for the next batch (counts it in flight on its connection). */
void sotto__srv_op_enqueue(struct srv *s, struct op *o);
/* Frees an op that was never queued. */
void sotto__srv_op_discard(struct op *o);
void sotto__srv_op_free(struct op *o);
/* Frees the recycled ops (at shutdown). */
void sotto__srv_op_pool_free(void);
void sotto__srv_prune_ops(struct srv *s);
void sotto__srv_batch_start(struct srv *s);
/* The rotation chain in s->rot, read again if DIR/rotation.chain changed
 * (looked at no more than once a second; a damaged file keeps the chain
 * served so far and is logged). I/O thread. */
void sotto__srv_rotation_refresh(struct srv *s);
/* srv_expire.c: inside the batch's transaction, deletes envelopes older
 * than before_ms and queues the bounded notices about them. */
int sotto__srv_expire_run(struct srv *s, int64_t before_ms, int64_t *deleted, int64_t *notices, int64_t *max_id);
void sotto__srv_batch_wait(struct srv *s);
void sotto__srv_batch_turn(struct srv *s);
void sotto__srv_free_zombies(struct srv *s);
int sotto__srv_reserve_make(struct srv *s);
void *sotto__srv_store_thread(void *arg);

/* ---- srv_limits.c ---- */
int sotto__srv_keys_low_due(struct srv *s, int64_t devkey);
/* Admission checks on the I/O thread, before an op is queued: 0 to queue
 * it, or an error code for the answer (the request is dropped). */
int sotto__srv_limit_register(struct srv *s, struct conn *c);
int sotto__srv_limit_auth(struct srv *s, struct conn *c, const struct sotto_srv_auth *m);
int sotto__srv_limit_bundle(struct srv *s, struct conn *c, const struct sotto_srv_target *m, int *no_otk);
/* KT_* requests per address (bundle-rate and bundle-burst). */
int sotto__srv_limit_kt(struct srv *s, struct conn *c);
int sotto__srv_limit_send(struct srv *s, struct conn *c); /* at c->last_rx_ms */
int sotto__srv_limit_device_change(struct srv *s, struct conn *c);
/* After an AUTH is answered: a wrong secret is charged to its buckets. */
void sotto__srv_limit_auth_done(struct srv *s, struct conn *c, int wrong);

/* One bucket of a cluster-wide limit: namespace (SOTTO_LIM_*), the identity
 * bytes, rate in tokens per millisecond and burst. */
struct srv_climit {
  int ns;
  const void *p;
  size_t len;
  double rate, burst;
};

/* ---- srv_cluster.c: cluster mode (--cluster); every hook is called only
 * when s->cl is set (open sets it) ---- */
#ifdef SOTTO_HAVE_HIREDIS
int sotto__srv_cluster_open(struct srv *s);
void sotto__srv_cluster_close(struct srv *s);
/* The Redis subscriber socket (epoll data.ptr == s->cl) is readable. */
void sotto__srv_cluster_event(struct srv *s);
/* Once a second: reconnect, degraded polling, key refresh. */
void sotto__srv_cluster_tick(struct srv *s);
/* c authenticated (registered, an older connection elsewhere displaced) / is dropped. */
void sotto__srv_cluster_claim(struct srv *s, struct conn *c);
void sotto__srv_cluster_release(struct srv *s, struct conn *c);
/* After the commit, instead of the handler's fanout: 1 if done (r: the
 * target's connection on this node, or NULL). */
int sotto__srv_cluster_fanout(struct srv *s, struct op *o, struct conn *r);
/* After a batch was answered: the announcements to other nodes. */
int sotto__srv_cluster_flush(struct srv *s); /* 1 if it had announcements to make */
/* A device removed (UNREGISTER, RECOVER) that is not connected here: its
 * connection on another node is closed (announced with the batch). */
void sotto__srv_cluster_gone(struct srv *s, int64_t devkey);
size_t sotto__srv_cluster_metrics(struct srv *s, char *out, size_t cap);
/* 1 if Redis is up (or no cluster), else 0 and why. */
int sotto__srv_cluster_ready(struct srv *s, char *why, size_t cap);
/* The low-rate limits kept in Redis for the whole cluster: mode 't' takes a
 * token from every bucket if each has one (else none), 'p' only looks, 'c'
 * charges one to each (never below 0). 1 passed, 0 refused, -1 Redis is
 * not there (the caller falls back to this node's own buckets). */
int sotto__srv_cluster_limit(struct srv *s, char mode, const struct srv_climit *b, size_t n);
/* A LINK_* request (parsed, state checked) served from Redis: 1 answered,
 * 0 when Redis is down (the caller serves it from this node's memory). */
int sotto__srv_cluster_link(struct srv *s, struct conn *c, const struct sotto_srv_frame *f,
                            const struct sotto_srv_link *m, int per_addr, int slots_max);
#else
static inline int sotto__srv_cluster_open(struct srv *s) {
  (void)s;
  fprintf(stderr, "sotto-server: --cluster: this sotto-server was built without hiredis\n");
  return -1;
}
static inline void sotto__srv_cluster_close(struct srv *s) { (void)s; }
static inline void sotto__srv_cluster_event(struct srv *s) { (void)s; }
static inline void sotto__srv_cluster_tick(struct srv *s) { (void)s; }
static inline void sotto__srv_cluster_claim(struct srv *s, struct conn *c) { (void)s; (void)c; }
static inline void sotto__srv_cluster_release(struct srv *s, struct conn *c) { (void)s; (void)c; }
static inline int sotto__srv_cluster_fanout(struct srv *s, struct op *o, struct conn *r) {
  (void)s; (void)o; (void)r;
  return 0;
}
static inline int sotto__srv_cluster_flush(struct srv *s) {
  (void)s;
  return 0;
}
static inline void sotto__srv_cluster_gone(struct srv *s, int64_t devkey) { (void)s; (void)devkey; }
static inline size_t sotto__srv_cluster_metrics(struct srv *s, char *out, size_t cap) {
  (void)s; (void)out; (void)cap;
  return 0;
}
static inline int sotto__srv_cluster_ready(struct srv *s, char *why, size_t cap) {
  (void)s; (void)why; (void)cap;
  return 1;
}
static inline int sotto__srv_cluster_limit(struct srv *s, char mode, const struct srv_climit *b, size_t n) {
  (void)s; (void)mode; (void)b; (void)n;
  return -1;
}
static inline int sotto__srv_cluster_link(struct srv *s, struct conn *c, const struct sotto_srv_frame *f,
                                          const struct sotto_srv_link *m, int per_addr, int slots_max) {
  (void)s; (void)c; (void)f; (void)m; (void)per_addr; (void)slots_max;
  return 0;
}
#endif

/* ---- srv_pool.c: the read pool (--pg-pool) ---- */
/* Opens the pool's store connections and starts its threads (PostgreSQL
 * store and pg-pool > 0; else nothing): 0, or -1 with a sentence on stderr. */
int sotto__srv_pool_open(struct srv *s);
/* Waits for what the pool still has, answers it, stops the threads. */
void sotto__srv_pool_close(struct srv *s);
/* I/O thread, instead of queueing op o for the batch: 1 if the pool took
 * it (a read it serves, and nothing of its connection in the batch). */
int sotto__srv_pool_take(struct srv *s, struct op *o);
/* I/O thread, every loop turn: answers what the pool finished. */
void sotto__srv_pool_turn(struct srv *s);
/* Answers everything the pool has (shutdown, before connections go). */
void sotto__srv_pool_drain(struct srv *s);
size_t sotto__srv_pool_metrics(struct srv *s, char *out, size_t cap);

/* ---- srv_metrics.c ---- */
/* Counts one ERR or CLOSE with this code (sotto_errors_total). */
static inline void sotto__srv_error_count(struct srv *s, int code) {
  s->m.errors[code > 0 && code < 256 ? code : 0]++;
}
void sotto__srv_metrics_feed(struct srv *s, struct conn *c, const uint8_t *p, size_t n);

#endif

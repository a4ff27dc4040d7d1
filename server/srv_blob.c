/* SPDX-License-Identifier: Apache-2.0 */
/* srv_blob.c: the blob store of sotto-server (attachments; docs/protocol-server.md
 * "Blobs", docs/server.md "Attachments").
 *
 * A blob is ciphertext the server cannot read: the client encrypted it with
 * a key that travels only inside the end-to-end encrypted message. Its
 * bytes are one file, DATA/blobs/<hex id>, written by BLOB_PUT at the end
 * of what is already there (so the bytes stored, the file's size, is where
 * a dropped upload resumes: BLOB_STAT) and read by BLOB_GET in bounded
 * chunks; nothing is ever held whole in memory. Its metadata (uploader,
 * declared size, fetches left, times) goes through the store interface
 * (store.h, blob_*), so both backends carry it.
 *
 * Requests run like every other: parsed on the I/O thread, executed on the
 * store thread inside the batch's transaction (the file I/O of one chunk
 * too: at most SOTTO_SRV_BLOB_MAX_CHUNK bytes), answered after the commit;
 * except the bulk of a transfer: once a request through the batch (CREATE,
 * STAT, PUT) told the connection what the store holds of a blob (ours and
 * not committed; its size and expiry: conn.blob), that connection's next
 * PUTs of that blob go to the blob thread (below; its GETs too once the
 * batch found it committed), while nothing else of the connection waits in
 * a batch (answers stay in request order) and the blob has not expired;
 * PUTs go the batch's way while the disk is full. The rules are the batch's: appends only, at most the
 * declared size, and a PUT's OK says the bytes are written (O_DIRECT where
 * the filesystem takes it, else the page cache; blob_write), COMMIT (always
 * through the batch) that they are durable
 * (fdatasync) and the blob readable. (GETs on the I/O thread itself were
 * measured slower than the batch's: reads in series with TLS; on the blob
 * thread they run beside it, docs/benchmarks.md.)
 * A blob goes when every recipient device declared at BLOB_CREATE (or
 * since, by the uploader's BLOB_FETCHES) said BLOB_DONE, each device
 * (account, device id of its connection) counted once, or at its expiry
 * (blob-expiry-days, for uploads never finished too), whichever comes
 * first. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "srv_internal.h"

_Static_assert(SOTTO_STORE_BLOB_ID == SOTTO_SRV_BLOB_ID_LEN, "blob ids fit the store");

#define BLOB_EXPIRE_BATCH 256

static int64_t expiry_ms(const struct sotto_srv_config *cfg) {
  return cfg->blob_expiry_s ? cfg->blob_expiry_s * 1000 : cfg->blob_expiry_days * 86400 * 1000;
}

static void blob_path(const struct srv *s, const uint8_t *id, char *out, size_t cap) {
  char hex[2 * SOTTO_SRV_BLOB_ID_LEN + 1];
  sodium_bin2hex(hex, sizeof hex, id, SOTTO_SRV_BLOB_ID_LEN);
  snprintf(out, cap, "%s/blobs/%s", s->cfg->data, hex);
}

/* A PUT's bytes bypass the page cache where the filesystem allows it
 * (O_DIRECT): on the measured VM, writing fresh pages into the page cache
 * cost 2-3 ns/byte of system time, several times the O_DIRECT write of the
 * same bytes, and a blob is written once and read once per recipient device
 * (docs/benchmarks.md "Attachments: O_DIRECT writes"). O_DIRECT needs
 * offsets, lengths and buffers aligned to the device's blocks: the aligned
 * middle of a PUT goes direct through an aligned copy (at most
 * SOTTO_SRV_BLOB_MAX_CHUNK bytes), the unaligned head and tail through the
 * page cache (the kernel keeps the two coherent); a filesystem that refuses
 * O_DIRECT (tmpfs: EINVAL) gets buffered writes. Durability is unchanged:
 * a PUT's OK says the bytes are written, COMMIT's fdatasync that they are
 * durable. GETs on the blob thread read with O_DIRECT too (get_bytes); in
 * the batch, through the page cache (there O_DIRECT was measured slower). */
#define BLOB_ALIGN 4096u

static int set_direct(int fd, int on) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) return -1;
  fl = on ? fl | O_DIRECT : fl & ~O_DIRECT;
  return fcntl(fd, F_SETFL, fl);
}

/* pwrite of all of p (buffered). 0, or -1 with errno. */
static int write_all(int fd, const uint8_t *p, size_t len, uint64_t off) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = pwrite(fd, p + done, len - done, (off_t)(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (n == 0) errno = EIO;
      return -1;
    }
    done += (size_t)n;
  }
  return 0;
}

/* Where a BLOB_PUT's op starts in its buffer (srv_commit.c
 * sotto__srv_op_alloc; the buffer is BLOB_ALIGN-aligned): so that the
 * payload's byte for each BLOB_ALIGN-aligned offset of the file sits at a
 * BLOB_ALIGN-aligned address and blob_write hands the aligned middle to
 * O_DIRECT in place, without the aligned copy (35 ms of the blob thread per
 * 256 MiB upload, docs/benchmarks.md "Attachments: where the time goes").
 * The payload is the blob id, the offset (u64 BE), then the bytes. -1 (an
 * ordinary allocation) for any other frame, a PUT too short to hold an
 * aligned block, or where the op could not stay aligned for its members
 * (an offset that is not a multiple of 8). The frame is not parsed yet:
 * only its length is trusted here; the parse checks the rest. */
long sotto__srv_blob_put_shift(const struct sotto_srv_frame *f) {
  size_t head = SOTTO_SRV_BLOB_ID_LEN + 8, shift;
  uint64_t off = 0;
  int i;
  if (f->type != SOTTO_SRV_BLOB_PUT || f->len <= head + BLOB_ALIGN) return -1;
  for (i = 0; i < 8; i++) off = off << 8 | f->p[SOTTO_SRV_BLOB_ID_LEN + i];
  /* buffer + shift + sizeof (struct op) + head = off (mod BLOB_ALIGN) */
  shift = (size_t)((off - sizeof(struct op) - head) % BLOB_ALIGN);
  return shift % _Alignof(struct op) == 0 ? (long)shift : -1;
}

/* len bytes of p at off into fd: the aligned middle with O_DIRECT if the
 * filesystem takes it, the rest buffered. The middle goes from p itself
 * when it is aligned in memory too (a PUT placed by
 * sotto__srv_blob_put_shift), else through an aligned copy; *inplace is
 * set when it went direct from p. 0, or -1 with errno. */
static int blob_write(int fd, const uint8_t *p, size_t len, uint64_t off, int *inplace) {
  uint64_t a = (off + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN, b = (off + len) / BLOB_ALIGN * BLOB_ALIGN;
  uint8_t *buf = NULL;
  const uint8_t *src;
  size_t mid, done = 0;
  if (b <= a) return write_all(fd, p, len, off);
  /* In file order (head, middle, tail), so the file's size only ever
   * passes bytes written: a dropped upload resumes from it (BLOB_STAT). */
  if (write_all(fd, p, (size_t)(a - off), off) != 0) return -1;
  if (set_direct(fd, 1) != 0) return write_all(fd, p + (a - off), (size_t)(off + len - a), a);
  mid = (size_t)(b - a);
  src = p + (a - off);
  if ((uintptr_t)src % BLOB_ALIGN != 0) {
    if (posix_memalign((void **)&buf, BLOB_ALIGN, mid) != 0) {
      (void)set_direct(fd, 0);
      return write_all(fd, p + (a - off), (size_t)(off + len - a), a);
    }
    memcpy(buf, src, mid);
    src = buf;
  }
  while (done < mid) {
    ssize_t n = pwrite(fd, src + done, mid - done, (off_t)(a + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EINVAL && done == 0) break; /* refused: buffered below */
    if (n <= 0) {
      int e = n == 0 ? EIO : errno;
      free(buf);
      errno = e;
      return -1;
    }
    done += (size_t)n;
  }
  if (done == mid && !buf) *inplace = 1;
  free(buf);
  if (set_direct(fd, 0) != 0) return -1;
  if (done < mid) return write_all(fd, p + (a - off), (size_t)(off + len - a), a);
  return write_all(fd, p + (b - off), (size_t)(off + len - b), b);
}

/* DATA/blobs, made at start (srv_loop.c). 0 or -1 with a sentence on stderr. */
int sotto__srv_blob_init(const struct srv *s) {
  char dir[1100];
  snprintf(dir, sizeof dir, "%s/blobs", s->cfg->data);
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "sotto-server: cannot create %s: %s\n", dir, strerror(errno));
    return -1;
  }
  return 0;
}

static void blob_unlink(const struct srv *s, const uint8_t *id) {
  char path[1200];
  blob_path(s, id, path, sizeof path);
  (void)unlink(path);
}

/* A blob whose row this batch deleted (store thread): its file goes after
 * the commit, once the batch is answered (sotto__srv_blob_gone_flush), so
 * that no answer waits for it: removing a large file takes the filesystem
 * tens of milliseconds (136 ms for 256 MiB measured on ext4 here), which a
 * download's DONE waited for. A rolled-back batch keeps its files (and the
 * rows that name them). The list is bounded: beyond it, at once as before. */
static void blob_gone(struct srv *s, const uint8_t *id) {
  if (s->blob_gone_n < SOTTO_SRV_BLOB_GONE_MAX)
    memcpy(s->blob_gone[s->blob_gone_n++], id, SOTTO_SRV_BLOB_ID_LEN);
  else
    blob_unlink(s, id);
}

void sotto__srv_blob_gone_reset(struct srv *s) { s->blob_gone_n = 0; }

void sotto__srv_blob_made_reset(struct srv *s) { s->blob_made_n = 0; }

void sotto__srv_blob_made_undo(struct srv *s) {
  int i;
  for (i = 0; i < s->blob_made_n; i++) blob_unlink(s, s->blob_made[i]);
  s->blob_made_n = 0;
}

void sotto__srv_blob_gone_flush(struct srv *s, int committed) {
  int i;
  for (i = 0; committed && i < s->blob_gone_n; i++) blob_unlink(s, s->blob_gone[i]);
  s->blob_gone_n = 0;
}

int sotto__srv_blob_parse(const struct srv *s, struct op *o) {
  (void)s;
  return sotto__srv_parse_blob_req(o->type, o->data, o->len, &o->req.blob);
}

int sotto__srv_blob_admit(struct srv *s, struct conn *c, struct op *o) {
  uint64_t key = sotto__lim_key(&s->lim, SOTTO_LIM_BLOB, &c->account_id, sizeof c->account_id);
  (void)o;
  if (!sotto__lim_take(&s->lim, key, s->cfg->blob_rate / 1000.0, s->cfg->blob_burst, sotto__srv_mono_ms())) {
    s->m.rate_limited++;
    return SOTTO_SRV_E_RATE;
  }
  return 0;
}

/* The OK payload in o->kt_out (freed with the op). */
static uint8_t *out_alloc(struct op *o, size_t cap) {
  if ((o->kt_out = malloc(cap ? cap : 1)) == NULL) return NULL;
  o->kt_len = 0;
  return o->kt_out;
}

/* What conn.blob will hold once o is answered (sotto__srv_blob_fast). */
static void note(struct op *o, uint8_t state, const struct sotto_store_blob *b) {
  o->blob_state = state;
  o->blob_size = b->size;
  o->blob_expires = b->expires_ms;
}

static int exec_create(struct srv *s, struct op *o) {
  const struct sotto_store_ops *ops = s->store.ops;
  const struct sotto_srv_blob_req *m = &o->req.blob;
  struct sotto_store_blob b;
  struct sotto__wr w;
  int64_t count = 0, bytes = 0;
  char path[1200];
  int rc, fd;
  if (m->size > (uint64_t)s->cfg->blob_max_size) {
    o->code = SOTTO_SRV_E_BLOB_TOO_LARGE;
    return 0;
  }
  if ((rc = ops->blob_usage(s->store.impl, o->c->account_id, &count, &bytes)) != 0) return rc;
  if (count + 1 > s->cfg->blob_quota_count || bytes + (int64_t)m->size > s->cfg->blob_quota_bytes) {
    o->code = SOTTO_SRV_E_BLOB_QUOTA;
    return 0;
  }
  memset(&b, 0, sizeof b);
  randombytes_buf(b.id, sizeof b.id);
  b.account_id = o->c->account_id;
  b.size = (int64_t)m->size;
  b.fetches_left = m->fetches;
  b.created_ms = sotto__srv_now_ms();
  b.expires_ms = b.created_ms + expiry_ms(s->cfg);
  blob_path(s, b.id, path, sizeof path);
  if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
    o->code = errno == ENOSPC ? SOTTO_SRV_E_STORAGE_FULL : SOTTO_SRV_E_INTERNAL;
    return 0;
  }
  close(fd);
  if ((rc = ops->blob_create(s->store.impl, &b)) != 0) {
    (void)unlink(path);
    return rc;
  }
  /* removed again if this attempt at the batch does not commit (beyond the
   * list, such a file would stay without a row until removed by hand) */
  if (s->blob_made_n < SOTTO_SRV_BLOB_GONE_MAX) memcpy(s->blob_made[s->blob_made_n++], b.id, sizeof b.id);
  note(o, 1, &b);
  if (!out_alloc(o, SOTTO_SRV_BLOB_ID_LEN + 8)) return SOTTO_ERR_NOMEM;
  sotto__wr_init(&w, o->kt_out, SOTTO_SRV_BLOB_ID_LEN + 8);
  sotto__srv_put_blob_created(&w, b.id, (uint64_t)b.expires_ms);
  o->kt_len = w.len;
  return 0;
}

/* The blob's row, if it exists and has not expired; else o->code. */
static int find(struct srv *s, struct op *o, struct sotto_store_blob *b) {
  int rc = s->store.ops->blob_get(s->store.impl, o->req.blob.id, b);
  if (rc < 0) return rc;
  if (rc == 1 || b->expires_ms <= sotto__srv_now_ms()) o->code = SOTTO_SRV_E_BLOB_GONE;
  return 0;
}

static int put_u64_answer(struct op *o, uint64_t v) {
  struct sotto__wr w;
  if (!out_alloc(o, 8)) return SOTTO_ERR_NOMEM;
  sotto__wr_init(&w, o->kt_out, 8);
  sotto__wr_u64be(&w, v);
  o->kt_len = w.len;
  return 0;
}

/* The bytes of a PUT appended to the blob's file (size: its declared size):
 * the answer in o (code or stored bytes). Store thread or I/O thread. */
static int put_bytes(struct srv *s, struct op *o, int64_t size) {
  const struct sotto_srv_blob_req *m = &o->req.blob;
  struct stat sb;
  char path[1200];
  int fd, inplace = 0;
  if (m->offset + m->data_len > (uint64_t)size) {
    o->code = SOTTO_SRV_E_BLOB_TOO_LARGE;
    return 0;
  }
  blob_path(s, m->id, path, sizeof path);
  if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0) {
    if (fd >= 0) close(fd);
    o->code = SOTTO_SRV_E_BLOB_GONE;
    return 0;
  }
  /* Appends only: a chunk that starts past the end would leave a hole; one
   * that starts before it (a retransmission after a dropped connection)
   * is answered with what is stored, and the client goes on from there. */
  if (m->offset != (uint64_t)sb.st_size) {
    close(fd);
    return m->offset < (uint64_t)sb.st_size ? put_u64_answer(o, (uint64_t)sb.st_size)
                                             : (o->code = SOTTO_SRV_E_STATE, 0);
  }
  if (blob_write(fd, m->data, m->data_len, m->offset, &inplace) != 0) {
    int full = errno == ENOSPC || errno == EDQUOT;
    /* A short write is undone, so the bytes stored stay a whole number of chunks. */
    if (ftruncate(fd, sb.st_size) != 0) sotto__srv_log(0, "blob_truncate", "error=%d", errno);
    close(fd);
    o->code = full ? SOTTO_SRV_E_STORAGE_FULL : SOTTO_SRV_E_INTERNAL;
    return 0;
  }
  close(fd);
  if (inplace) __atomic_fetch_add(&s->m.blob_put_inplace, 1, __ATOMIC_RELAXED);
  return put_u64_answer(o, m->offset + m->data_len);
}

static int exec_put(struct srv *s, struct op *o) {
  struct sotto_store_blob b;
  int rc;
  if ((rc = find(s, o, &b)) != 0 || o->code) return rc;
  /* Only the uploader writes, and only until it committed. */
  if (b.account_id != o->c->account_id) {
    o->code = SOTTO_SRV_E_BLOB_GONE;
    return 0;
  }
  if (b.committed) {
    o->code = SOTTO_SRV_E_STATE;
    return 0;
  }
  note(o, 1, &b);
  return put_bytes(s, o, b.size);
}

static int exec_stat(struct srv *s, struct op *o) {
  struct sotto_store_blob b;
  struct sotto_srv_blob_stat st;
  struct stat sb;
  struct sotto__wr w;
  char path[1200];
  int rc;
  if ((rc = find(s, o, &b)) != 0 || o->code) return rc;
  blob_path(s, o->req.blob.id, path, sizeof path);
  if (stat(path, &sb) != 0) {
    o->code = SOTTO_SRV_E_BLOB_GONE;
    return 0;
  }
  st.size = (uint64_t)b.size;
  st.stored = (uint64_t)sb.st_size < st.size ? (uint64_t)sb.st_size : st.size;
  st.committed = (uint8_t)(b.committed != 0);
  if (st.committed || b.account_id == o->c->account_id) note(o, st.committed ? 2 : 1, &b);
  /* A client asks where an upload stands after a dropped connection (sizes only). */
  if (!st.committed)
    sotto__srv_log(1, "blob_resume", "stored=%llu size=%llu", (unsigned long long)st.stored,
                   (unsigned long long)st.size);
  if (!out_alloc(o, 17)) return SOTTO_ERR_NOMEM;
  sotto__wr_init(&w, o->kt_out, 17);
  sotto__srv_put_blob_stat(&w, &st);
  o->kt_len = w.len;
  return 0;
}

static int exec_commit(struct srv *s, struct op *o) {
  struct sotto_store_blob b;
  struct stat sb;
  char path[1200];
  int rc, fd;
  if ((rc = find(s, o, &b)) != 0 || o->code) return rc;
  if (b.account_id != o->c->account_id) {
    o->code = SOTTO_SRV_E_BLOB_GONE;
    return 0;
  }
  if (b.committed) return 0;
  blob_path(s, o->req.blob.id, path, sizeof path);
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0) {
    if (fd >= 0) close(fd);
    o->code = SOTTO_SRV_E_BLOB_GONE;
    return 0;
  }
  if (sb.st_size != b.size) {
    close(fd);
    o->code = SOTTO_SRV_E_BLOB_INCOMPLETE;
    return 0;
  }
  /* Durable before the row says so: the OK means a recipient can fetch it. */
  rc = fdatasync(fd);
  close(fd);
  if (rc != 0) {
    o->code = SOTTO_SRV_E_INTERNAL;
    return 0;
  }
  note(o, 2, &b);
  return s->store.ops->blob_commit(s->store.impl, o->req.blob.id);
}

/* [off, off + want) of fd with O_DIRECT into a block-aligned buffer: the
 * buffer, the range at *skip in it (off's distance from its block start,
 * not moved: a memmove of each 192 KiB answer cost more than the read),
 * with *got bytes of it (short at the file's end), or NULL with errno
 * (EINVAL: the filesystem refused). */
static uint8_t *read_direct(int fd, uint64_t off, size_t want, size_t *got, size_t *skip) {
  uint64_t a = off / BLOB_ALIGN * BLOB_ALIGN, e = (off + want + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN;
  size_t len = (size_t)(e - a), done = 0;
  uint8_t *buf = NULL;
  if (posix_memalign((void **)&buf, BLOB_ALIGN, len ? len : BLOB_ALIGN) != 0) {
    errno = ENOMEM;
    return NULL;
  }
  while (done < len) {
    ssize_t n = pread(fd, buf + done, len - done, (off_t)(a + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int er = errno;
      free(buf);
      errno = er;
      return NULL;
    }
    if (n == 0) break;
    done += (size_t)n;
    if (done % BLOB_ALIGN) break; /* the file's end */
  }
  *skip = (size_t)(off - a);
  done = done > *skip ? done - *skip : 0;
  *got = done < want ? done : want;
  return buf;
}

/* The bytes a GET asks for, of a committed blob of size bytes, into o's
 * answer. direct (the blob thread): read with O_DIRECT where the filesystem
 * allows it. A blob was written with O_DIRECT, so it is not in the page
 * cache: on the measured VM a cold buffered read of 256 MiB in 192 KiB
 * reads took 1.14 s (0.47 s of system time: the page cache filled and
 * copied), O_DIRECT 0.30 s (0.04 s); docs/benchmarks.md "Attachments:
 * where the time goes (att6)". The batch (store thread) reads buffered
 * (there, reads in series with the batch measured slower with O_DIRECT). */
static int get_bytes(struct srv *s, struct op *o, int64_t size, int direct) {
  const struct sotto_srv_blob_req *m = &o->req.blob;
  char path[1200];
  size_t want, done = 0;
  ssize_t n;
  int fd = -1;
  want = m->offset >= (uint64_t)size ? 0
         : (uint64_t)size - m->offset < m->max ? (size_t)((uint64_t)size - m->offset)
                                               : m->max;
  blob_path(s, m->id, path, sizeof path);
  if (direct && want > 0 && (fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC)) >= 0) {
    size_t skip = 0;
    uint8_t *buf = read_direct(fd, m->offset, want, &done, &skip);
    close(fd);
    if (buf) {
      if (done < want) {
        free(buf);
        o->code = SOTTO_SRV_E_BLOB_GONE; /* the file is shorter than its row: damaged or removed */
        return 0;
      }
      o->kt_out = buf;
      o->kt_skip = (uint32_t)skip; /* < BLOB_ALIGN */
      o->kt_len = done;
      return 0;
    }
    if (errno == ENOMEM) return SOTTO_ERR_NOMEM;
    done = 0; /* refused (EINVAL) or failed: buffered below */
  }
  if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
    o->code = SOTTO_SRV_E_BLOB_GONE;
    return 0;
  }
  if (!out_alloc(o, want)) {
    close(fd);
    return SOTTO_ERR_NOMEM;
  }
  while (done < want) {
    n = pread(fd, o->kt_out + done, want - done, (off_t)(m->offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += (size_t)n;
  }
  close(fd);
  if (done < want) {
    o->code = SOTTO_SRV_E_BLOB_GONE; /* the file is shorter than its row: damaged or removed */
    return 0;
  }
  o->kt_len = done;
  return 0;
}

static int exec_get(struct srv *s, struct op *o) {
  struct sotto_store_blob b;
  int rc;
  if ((rc = find(s, o, &b)) != 0 || o->code) return rc;
  if (!b.committed) {
    o->code = SOTTO_SRV_E_BLOB_INCOMPLETE;
    return 0;
  }
  note(o, 2, &b);
  return get_bytes(s, o, b.size, 0);
}

static int exec_done(struct srv *s, struct op *o) {
  struct sotto_store_blob b;
  int64_t left = 0;
  int rc;
  if ((rc = find(s, o, &b)) != 0 || o->code) return rc;
  if (!b.committed) {
    o->code = SOTTO_SRV_E_BLOB_INCOMPLETE;
    return 0;
  }
  /* Counted once per authenticated device: a device that says DONE again
   * (or a recipient hoping to count for its other devices) changes
   * nothing. */
  if ((rc = s->store.ops->blob_fetched(s->store.impl, o->req.blob.id, o->c->account_id, o->c->device_id, &left)) <
      0)
    return rc;
  /* The last recipient fetched it: the bytes go once this batch is
   * committed and answered (blob_gone). */
  if (rc == 0 && left == 0) blob_gone(s, o->req.blob.id);
  return 0;
}

/* BLOB_FETCHES: the uploader says how many devices its pointer went to,
 * once the fan-out is final (after BLOB_CREATE: a device linked meanwhile).
 * The devices already counted stay counted; at none left the blob goes. */
static int exec_fetches(struct srv *s, struct op *o) {
  struct sotto_store_blob b;
  int64_t left = 0;
  int rc;
  if ((rc = find(s, o, &b)) != 0 || o->code) return rc;
  if (b.account_id != o->c->account_id) {
    o->code = SOTTO_SRV_E_BLOB_NOT_OWNER;
    return 0;
  }
  if ((rc = s->store.ops->blob_set_fetches(s->store.impl, o->req.blob.id, o->req.blob.fetches, &left)) < 0)
    return rc;
  if (rc == 0 && left == 0) blob_gone(s, o->req.blob.id);
  return 0;
}

int sotto__srv_blob_exec(struct srv *s, struct op *o) {
  switch (o->type) {
    case SOTTO_SRV_BLOB_CREATE: return exec_create(s, o);
    case SOTTO_SRV_BLOB_PUT: return exec_put(s, o);
    case SOTTO_SRV_BLOB_STAT: return exec_stat(s, o);
    case SOTTO_SRV_BLOB_COMMIT: return exec_commit(s, o);
    case SOTTO_SRV_BLOB_GET: return exec_get(s, o);
    case SOTTO_SRV_BLOB_DONE: return exec_done(s, o);
    case SOTTO_SRV_BLOB_FETCHES: return exec_fetches(s, o);
  }
  o->code = SOTTO_SRV_E_MALFORMED;
  return 0;
}

void sotto__srv_blob_answer(struct srv *s, struct op *o, struct sotto__wr *w) {
  struct conn *c = o->c;
  (void)s;
  sotto__wr_bytes(w, o->kt_out, o->kt_len);
  if (o->type == SOTTO_SRV_BLOB_DONE) {
    c->blob.state = 0;
  } else if (o->blob_state) {
    memcpy(c->blob.id, o->type == SOTTO_SRV_BLOB_CREATE ? o->kt_out : o->req.blob.id, SOTTO_SRV_BLOB_ID_LEN);
    c->blob.state = o->blob_state;
    c->blob.size = o->blob_size;
    c->blob.expires_ms = o->blob_expires;
  }
}

/* The blob thread ("writer" in names): one thread that writes the PUTs and
 * reads the GETs the I/O thread took on its fast path (sotto__srv_blob_fast),
 * so that the I/O thread handles the next requests' TLS records while the
 * device writes or reads this one (an O_DIRECT write returns when the device
 * has the bytes: about 100-300 us per 192 KiB on the measured VM, 0.3-0.4 s
 * per 256 MiB upload that the I/O thread used to wait for; a GET cost a
 * commit batch of its own). One thread and one queue (FIFO): a connection's
 * requests are handled and answered in order; its other requests wait in
 * the batch queue while blob_wn > 0 (as with the read pool, srv_pool.c), so
 * a COMMIT sees every PUT before it written. The thread touches only the op
 * (its copy of the payload, the blob's size taken at hand-over) and the
 * blob's file, never the connection; the I/O thread answers, woken through
 * the store thread's eventfd. */
/* The blob thread's GETs read ahead: a download's GETs come in order, 192
 * KiB each (a few in flight), and an O_DIRECT read of 192 KiB waited for the
 * device once per GET, in series: on the measured VM about 0.27 s per 256
 * MiB (dd, 192 KiB reads; 1 MiB reads 0.18 s), most of a download's wall
 * time (att9, docs/benchmarks.md: with the client discarding the answers,
 * the transfer took as long as with the whole client). So the thread reads
 * BLOB_RA_LEN bytes at once into one of BLOB_RA_N windows and answers the
 * GETs inside from it; and when it has nothing queued it reads the next
 * window of the blob it last answered, so the device works while the I/O
 * thread sends. A committed blob never changes (appends end at COMMIT) and
 * its id is never reused, so a window stays true; the file is still opened
 * (and its size looked at) for every GET, so a blob removed or cut short
 * meanwhile is "gone" as before. Only the
 * blob thread touches the windows. Memory: BLOB_RA_N x BLOB_RA_LEN, once. */
#define BLOB_RA_LEN (1024u * 1024u)
#define BLOB_HDR_ROOM 16 /* >= the frame header (9 bytes) */
#define BLOB_RA_N 8 /* two for each of four downloads at once; beyond, windows are read again (up to 5x the reads) */
_Static_assert(BLOB_RA_LEN % BLOB_ALIGN == 0, "windows start at block boundaries");

struct blob_ra {
  uint8_t id[SOTTO_SRV_BLOB_ID_LEN];
  uint64_t off;  /* block-aligned */
  size_t len;    /* bytes read (short at the file's end); 0: empty */
  uint8_t *buf;  /* BLOB_RA_LEN bytes, block-aligned, or NULL */
  uint64_t used; /* last use (the least recent is refilled) */
};

struct srv_blobw {
  pthread_t th;
  pthread_mutex_t mu; /* guards the lists and quit */
  pthread_cond_t cv;
  struct op *jobs, **jobs_tail; /* waiting for the writer */
  struct op *done, **done_tail; /* written, for the I/O thread */
  int quit;
  uint64_t outstanding; /* I/O thread only: handed over and not answered yet */
  /* Blob thread only: the read-ahead windows, and what to read next. */
  struct blob_ra ra[BLOB_RA_N];
  uint64_t ra_clock;
  int ra_off; /* O_DIRECT refused here: GETs as before (get_bytes) */
  int ra_next; /* a next window to read when idle: */
  uint8_t ra_next_id[SOTTO_SRV_BLOB_ID_LEN];
  uint64_t ra_next_off, ra_next_size;
};

/* The window of id that holds byte pos, or NULL. */
static struct blob_ra *ra_find(struct srv_blobw *w, const uint8_t *id, uint64_t pos) {
  int i;
  for (i = 0; i < BLOB_RA_N; i++) {
    struct blob_ra *e = &w->ra[i];
    if (e->len && pos >= e->off && pos - e->off < e->len && memcmp(e->id, id, SOTTO_SRV_BLOB_ID_LEN) == 0) return e;
  }
  return NULL;
}

/* The least recently used window, other than keep. */
static struct blob_ra *ra_victim(struct srv_blobw *w, const struct blob_ra *keep) {
  struct blob_ra *v = NULL;
  int i;
  for (i = 0; i < BLOB_RA_N; i++)
    if (&w->ra[i] != keep && (!v || w->ra[i].used < v->used)) v = &w->ra[i];
  return v;
}

/* Reads the window of id (size bytes) at off (block-aligned) from fd (opened
 * with O_DIRECT) into e. 0, or -1 with errno (e left empty). */
static int ra_fill(struct srv_blobw *w, struct blob_ra *e, int fd, const uint8_t *id, uint64_t off, uint64_t size) {
  uint64_t end = (size + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN;
  size_t len, done = 0;
  e->len = 0;
  if (off >= end) {
    errno = EINVAL;
    return -1;
  }
  len = end - off < BLOB_RA_LEN ? (size_t)(end - off) : BLOB_RA_LEN;
  if (!e->buf && posix_memalign((void **)&e->buf, BLOB_ALIGN, BLOB_RA_LEN) != 0) {
    e->buf = NULL;
    errno = ENOMEM;
    return -1;
  }
  while (done < len) {
    ssize_t n = pread(fd, e->buf + done, len - done, (off_t)(off + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    if (n == 0) break;
    done += (size_t)n;
    if (done % BLOB_ALIGN) break; /* the file's end */
  }
  memcpy(e->id, id, SOTTO_SRV_BLOB_ID_LEN);
  e->off = off;
  e->len = done;
  e->used = ++w->ra_clock;
  return 0;
}

/* A GET on the blob thread from the windows (reading the missing ones):
 * 1 answered (o->kt_out, or o->code), 0 not (get_bytes answers), or
 * SOTTO_ERR_NOMEM. */
static int get_ra(struct srv *s, struct srv_blobw *w, struct op *o) {
  const struct sotto_srv_blob_req *m = &o->req.blob;
  uint64_t size = (uint64_t)o->blob_size, pos;
  struct blob_ra *e = NULL;
  struct stat sb;
  char path[1200];
  size_t want, got = 0;
  int fd;
  if (w->ra_off || o->blob_size <= 0 || m->offset >= size) return 0;
  want = size - m->offset < m->max ? (size_t)(size - m->offset) : m->max;
  if (want == 0) return 0;
  blob_path(s, m->id, path, sizeof path);
  if ((fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0 ||
      (uint64_t)sb.st_size < m->offset + want) {
    if (fd < 0 && errno == EINVAL) w->ra_off = 1;
    if (fd >= 0) close(fd);
    return 0; /* gone, shorter than its row, or no O_DIRECT: get_bytes says which */
  }
  /* BLOB_HDR_ROOM bytes before the answer: its frame header goes there
   * (sotto__srv_send_adopt). */
  if ((o->kt_out = malloc(BLOB_HDR_ROOM + want)) == NULL) {
    close(fd);
    return SOTTO_ERR_NOMEM;
  }
  for (pos = m->offset; got < want; pos = m->offset + got) {
    size_t n;
    if ((e = ra_find(w, m->id, pos)) == NULL) {
      e = ra_victim(w, NULL);
      if (ra_fill(w, e, fd, m->id, pos / BLOB_ALIGN * BLOB_ALIGN, size) != 0 || (e = ra_find(w, m->id, pos)) == NULL) {
        if (errno == EINVAL) w->ra_off = 1;
        break; /* refused, failed, or the file is short: get_bytes answers */
      }
    }
    e->used = ++w->ra_clock;
    n = e->off + e->len - pos < want - got ? (size_t)(e->off + e->len - pos) : want - got;
    memcpy(o->kt_out + BLOB_HDR_ROOM + got, e->buf + (pos - e->off), n);
    got += n;
  }
  close(fd);
  if (got < want) {
    free(o->kt_out);
    o->kt_out = NULL;
    return 0;
  }
  o->kt_len = want;
  o->kt_skip = BLOB_HDR_ROOM;
  /* The next window, read while nothing else waits (if the blob goes on). */
  w->ra_next = e->off + e->len < size && e->len == BLOB_RA_LEN && !ra_find(w, m->id, e->off + e->len);
  memcpy(w->ra_next_id, m->id, SOTTO_SRV_BLOB_ID_LEN);
  w->ra_next_off = e->off + e->len;
  w->ra_next_size = size;
  return 1;
}

/* Blob thread, nothing queued: the window after the last GET's. */
static void ra_ahead(struct srv *s, struct srv_blobw *w) {
  struct blob_ra *e;
  char path[1200];
  int fd;
  w->ra_next = 0;
  if (w->ra_off || ra_find(w, w->ra_next_id, w->ra_next_off)) return;
  blob_path(s, w->ra_next_id, path, sizeof path);
  if ((fd = open(path, O_RDONLY | O_DIRECT | O_CLOEXEC)) < 0) return;
  e = ra_victim(w, ra_find(w, w->ra_next_id, w->ra_next_off - 1));
  if (ra_fill(w, e, fd, w->ra_next_id, w->ra_next_off, w->ra_next_size) != 0) e->len = 0;
  close(fd);
}

static void ra_free(struct srv_blobw *w) {
  int i;
  for (i = 0; i < BLOB_RA_N; i++) free(w->ra[i].buf);
}

static void *writer_thread(void *arg) {
  struct srv *s = arg;
  struct srv_blobw *w = s->blobw;
  pthread_mutex_lock(&w->mu);
  for (;;) {
    struct op *o;
    int rc;
    if (!w->jobs && !w->quit && w->ra_next) { /* idle: read ahead */
      pthread_mutex_unlock(&w->mu);
      ra_ahead(s, w);
      pthread_mutex_lock(&w->mu);
      continue;
    }
    while (!w->jobs && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
    if (!w->jobs) break;
    o = w->jobs;
    if ((w->jobs = o->next) == NULL) w->jobs_tail = &w->jobs;
    o->next = NULL;
    pthread_mutex_unlock(&w->mu);
    if (o->type == SOTTO_SRV_BLOB_PUT)
      rc = put_bytes(s, o, o->blob_size);
    else if ((rc = get_ra(s, w, o)) == 1)
      rc = 0;
    else if (rc == 0)
      rc = get_bytes(s, o, o->blob_size, 1);
    if (rc != 0) o->code = SOTTO_SRV_E_INTERNAL;
    pthread_mutex_lock(&w->mu);
    *w->done_tail = o;
    w->done_tail = &o->next;
    {
      uint64_t one = 1;
      if (write(s->efd, &one, sizeof one) != (ssize_t)sizeof one) {
        /* cannot overflow; the I/O thread also looks after every epoll_wait */
      }
    }
  }
  pthread_mutex_unlock(&w->mu);
  return NULL;
}

int sotto__srv_blob_writer_open(struct srv *s) {
  struct srv_blobw *w = calloc(1, sizeof *w);
  if (!w) return -1;
  w->jobs_tail = &w->jobs;
  w->done_tail = &w->done;
  if (pthread_mutex_init(&w->mu, NULL) != 0) {
    free(w);
    return -1;
  }
  if (pthread_cond_init(&w->cv, NULL) != 0) {
    pthread_mutex_destroy(&w->mu);
    free(w);
    return -1;
  }
  s->blobw = w;
  if (pthread_create(&w->th, NULL, writer_thread, s) != 0) {
    s->blobw = NULL;
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
    return -1;
  }
  return 0;
}

/* I/O thread: the PUTs written and GETs read, answered in order. */
void sotto__srv_blob_writer_turn(struct srv *s) {
  struct srv_blobw *w = s->blobw;
  struct op *list, *o, *next;
  if (!w || !w->outstanding) return;
  pthread_mutex_lock(&w->mu);
  list = w->done;
  w->done = NULL;
  w->done_tail = &w->done;
  pthread_mutex_unlock(&w->mu);
  for (o = list; o; o = next) {
    struct conn *c = o->c;
    next = o->next;
    o->next = NULL;
    w->outstanding--;
    c->blob_wn--;
    if (!c->dead) {
      if (o->code) {
        c->blob.state = 0; /* the next one asks the store again */
        sotto__srv_send_err(s, c, o->req_id, o->code);
      } else {
        if (o->type == SOTTO_SRV_BLOB_GET && o->kt_out && o->kt_len > 0) {
          /* The read's buffer (room for the frame header before the
           * bytes) becomes the write buffer if that is empty: no copy. */
          if (sotto__srv_send_adopt(c, SOTTO_SRV_OK, o->req_id, o->kt_out, o->kt_skip, o->kt_len)) o->kt_out = NULL;
        } else {
          sotto__srv_send_simple(c, SOTTO_SRV_OK, o->req_id, o->kt_out ? o->kt_out + o->kt_skip : NULL, o->kt_len);
        }
      }
      sotto__srv_flush_later(s, c);
    }
    s->m.blob_io_thread++;
    sotto__srv_op_free(o);
  }
  if (list) sotto__srv_flush_queued(s);
}

/* At shutdown: every request handed over done and answered (each a bounded write or read). */
void sotto__srv_blob_writer_drain(struct srv *s) {
  while (s->blobw && s->blobw->outstanding) {
    sotto__srv_blob_writer_turn(s);
    if (s->blobw->outstanding) usleep(1000);
  }
}

void sotto__srv_blob_writer_close(struct srv *s) {
  struct srv_blobw *w = s->blobw;
  struct op *o;
  if (!w) return;
  pthread_mutex_lock(&w->mu);
  w->quit = 1;
  pthread_cond_signal(&w->cv);
  pthread_mutex_unlock(&w->mu);
  pthread_join(w->th, NULL);
  while ((o = w->done) != NULL) { /* after the drain, none; their connections are gone with the server */
    w->done = o->next;
    sotto__srv_op_discard(o);
  }
  ra_free(w);
  pthread_cond_destroy(&w->cv);
  pthread_mutex_destroy(&w->mu);
  free(w);
  s->blobw = NULL;
}

int sotto__srv_blob_fast(struct srv *s, struct conn *c, struct op *o) {
  int rc;
  /* Earlier requests of this connection still in a batch answer first
   * (its requests with the blob writer are handled in order before this one). */
  if ((uint32_t)c->inflight != c->blob_wn || memcmp(c->blob.id, o->req.blob.id, SOTTO_SRV_BLOB_ID_LEN) != 0) return 0;
  /* A GET of a committed blob this connection already read or asked about
   * through the batch (state 2), with the blob writer only: its read beside
   * the I/O thread's TLS (on the I/O thread itself, reads in series with
   * TLS were measured slower than the batch's). Expired: the batch answers
   * "gone". */
  if (o->type == SOTTO_SRV_BLOB_GET) {
    if (!s->blobw || c->blob.state != 2 || c->blob.expires_ms <= sotto__srv_now_ms()) return 0;
  } else if (o->type != SOTTO_SRV_BLOB_PUT || c->blob.state != 1 || c->blob.expires_ms <= sotto__srv_now_ms() ||
             __atomic_load_n(&s->space_low, __ATOMIC_RELAXED)) {
    return 0; /* not an open upload of this blob, expired, or a full disk (the batch refuses) */
  }
  if (s->blobw) {
    struct srv_blobw *w = s->blobw;
    o->blob_size = c->blob.size;
    o->next = NULL;
    c->inflight++;
    c->inflight_bytes += sotto__srv_op_cost(o->type, o->len);
    c->blob_wn++;
    w->outstanding++;
    pthread_mutex_lock(&w->mu);
    *w->jobs_tail = o;
    w->jobs_tail = &o->next;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 1;
  }
  rc = put_bytes(s, o, c->blob.size);
  if (rc != 0) o->code = SOTTO_SRV_E_INTERNAL;
  if (o->code) {
    c->blob.state = 0; /* the next one asks the store again */
    sotto__srv_send_err(s, c, o->req_id, o->code);
  } else {
    sotto__srv_send_simple(c, SOTTO_SRV_OK, o->req_id, o->kt_out, o->kt_len);
  }
  s->m.blob_io_thread++;
  sotto__srv_op_discard(o);
  return 1;
}

/* Store thread, inside the expiry run's transaction: expired rows go, then
 * their files (a few hundred per run; the rest at the next). */
/* UNREGISTER: the account's unfinished uploads (never committed, so no
 * message names them) go with it, rows now and files after the commit. Its
 * committed blobs stay until every recipient device fetched them or they
 * expire: messages already sent name them (docs/threat-model.md). */
struct unfinished {
  uint8_t *ids;
  size_t n, cap;
  int nomem;
};

static int unfinished_cb(void *ctx, const struct sotto_store_blob *b) {
  struct unfinished *u = ctx;
  if (b->committed) return 0;
  if (u->n == u->cap) {
    size_t cap = u->cap ? u->cap * 2 : 16;
    uint8_t *p = realloc(u->ids, cap * SOTTO_STORE_BLOB_ID);
    if (!p) {
      u->nomem = 1;
      return 1;
    }
    u->ids = p;
    u->cap = cap;
  }
  memcpy(u->ids + u->n++ * SOTTO_STORE_BLOB_ID, b->id, SOTTO_STORE_BLOB_ID);
  return 0;
}

int sotto__srv_blob_account_gone(struct srv *s, int64_t account_id) {
  const struct sotto_store_ops *ops = s->store.ops;
  struct unfinished u = {NULL, 0, 0, 0};
  size_t i;
  int rc = ops->blob_iter(s->store.impl, account_id, unfinished_cb, &u);
  if (u.nomem) rc = SOTTO_ERR_NOMEM;
  for (i = 0; rc == 0 && i < u.n; i++)
    if ((rc = ops->blob_delete(s->store.impl, u.ids + i * SOTTO_STORE_BLOB_ID)) == 0)
      blob_gone(s, u.ids + i * SOTTO_STORE_BLOB_ID);
  free(u.ids);
  return rc;
}

int sotto__srv_blob_expire(struct srv *s, int64_t now_ms, int64_t *deleted) {
  uint8_t ids[BLOB_EXPIRE_BATCH * SOTTO_STORE_BLOB_ID];
  size_t n = 0, i;
  int rc = s->store.ops->blob_expired(s->store.impl, now_ms, ids, BLOB_EXPIRE_BATCH, &n);
  if (rc) return rc;
  for (i = 0; i < n; i++) blob_gone(s, ids + i * SOTTO_STORE_BLOB_ID);
  if (deleted) *deleted = (int64_t)n;
  if (n) sotto__srv_log(1, "blob_expire", "blobs=%zu", n);
  return 0;
}

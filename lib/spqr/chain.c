/* SPDX-License-Identifier: Apache-2.0 */
/* chain.c: the SPQR v1 symmetric chain (chain.h). */
#include <stdlib.h>
#include <string.h>

#include <sotto/error.h>

#include "crypto/crypto.h"
#include "spqr/chain.h"
#include "wire/wire.h"

static const uint8_t LABEL_START[] = "Signal PQ Ratchet V1 Chain  Start"; /* two spaces */
static const uint8_t LABEL_EPOCH[] = "Signal PQ Ratchet V1 Chain Add Epoch";
static const uint8_t LABEL_NEXT[] = "Signal PQ Ratchet V1 Chain Next";

#define REC_MAGIC "SPQC"
#define REC_FORMAT 1
#define MAX_OOO_LIMIT 25000u /* bounds a key list at 27,501 entries (~1 MB) */

static uint32_t trim_size(uint32_t max_ooo) { return max_ooo * 11 / 10 + 1; }

static void dir_clear(struct sotto__spqr_dir *d) {
  if (d->prev != NULL) {
    sotto__wipe(d->prev, (size_t)d->cap_prev * sizeof *d->prev);
    free(d->prev);
  }
  sotto__wipe(d, sizeof *d);
}

static void dir_init(struct sotto__spqr_dir *d, const uint8_t key[32]) {
  memset(d, 0, sizeof *d);
  memcpy(d->next, key, 32);
  d->has_next = 1;
}

/* ctr += 1; next' || key = HKDF(0, next, BE32(ctr) || "...Chain Next", 64).
 * The caller checked has_next and ctr < UINT32_MAX. */
static void dir_step(struct sotto__spqr_dir *d, uint8_t key[32]) {
  uint8_t info[4 + sizeof LABEL_NEXT - 1], okm[64];
  d->ctr++;
  info[0] = (uint8_t)(d->ctr >> 24);
  info[1] = (uint8_t)(d->ctr >> 16);
  info[2] = (uint8_t)(d->ctr >> 8);
  info[3] = (uint8_t)d->ctr;
  memcpy(info + 4, LABEL_NEXT, sizeof LABEL_NEXT - 1);
  /* 64 bytes from HKDF-SHA256 cannot fail (the limit is 255 * 32). */
  if (sotto__hkdf_zero_salt32(okm, sizeof okm, d->next, info, sizeof info) != 0) sotto__wipe(okm, sizeof okm);
  memcpy(d->next, okm, 32);
  memcpy(key, okm + 32, 32);
  sotto__wipe(okm, sizeof okm);
}

static int dir_reserve(struct sotto__spqr_dir *d, uint32_t n) {
  struct sotto__spqr_prev *p;
  if (n <= d->cap_prev) return 0;
  if ((p = calloc(n, sizeof *p)) == NULL) return SOTTO_ERR_NOMEM;
  if (d->n_prev > 0) memcpy(p, d->prev, (size_t)d->n_prev * sizeof *p);
  if (d->prev != NULL) {
    sotto__wipe(d->prev, (size_t)d->cap_prev * sizeof *d->prev);
    free(d->prev);
  }
  d->prev = p;
  d->cap_prev = n;
  return 0;
}

/* Removes entry i by moving the last one into its place (order is free). */
static void prev_remove(struct sotto__spqr_dir *d, uint32_t i) {
  d->n_prev--;
  if (i != d->n_prev) d->prev[i] = d->prev[d->n_prev];
  sotto__wipe(&d->prev[d->n_prev], sizeof d->prev[0]);
}

static int dir_key(struct sotto__spqr_dir *d, uint32_t at, uint32_t max_jump, uint32_t max_ooo,
                   uint8_t key[32]) {
  uint32_t i, adds;
  uint8_t k[32];
  int rc;

  if (at < d->ctr) {
    /* An older index: a kept key, given out once. */
    if ((uint64_t)at + max_ooo < d->ctr) return SOTTO_ERR_DUPLICATE; /* trimmed */
    for (i = 0; i < d->n_prev; i++) {
      if (d->prev[i].idx == at) {
        memcpy(key, d->prev[i].key, 32);
        prev_remove(d, i);
        return 0;
      }
    }
    return SOTTO_ERR_DUPLICATE;
  }
  if (at == d->ctr) return SOTTO_ERR_DUPLICATE;
  if (at - d->ctr > max_jump) return SOTTO_ERR_TOO_FAR_AHEAD;
  if (!d->has_next) return SOTTO_ERR_NO_SESSION;
  /* Room first, so that nothing below can fail: the skipped indices that
   * will be kept are those within max_ooo of `at`. */
  adds = at - d->ctr - 1;
  if (adds > max_ooo + 1) adds = max_ooo + 1;
  if ((rc = dir_reserve(d, d->n_prev + adds)) != 0) return rc;
  if ((uint64_t)at > (uint64_t)d->ctr + max_ooo) {
    /* Every key held is about to fall out of the window. */
    for (i = d->n_prev; i-- > 0;) prev_remove(d, i);
  }
  while (at > d->ctr + 1) {
    dir_step(d, k);
    if ((uint64_t)d->ctr + max_ooo >= at) {
      d->prev[d->n_prev].idx = d->ctr;
      memcpy(d->prev[d->n_prev].key, k, 32);
      d->n_prev++;
    }
  }
  sotto__wipe(k, sizeof k);
  /* Trim: once the list is long, drop what is older than the window. */
  if (d->n_prev >= trim_size(max_ooo)) {
    uint32_t horizon = d->ctr >= max_ooo ? d->ctr - max_ooo : 0;
    for (i = 0; i < d->n_prev;) {
      if (d->prev[i].idx < horizon)
        prev_remove(d, i);
      else
        i++;
    }
  }
  dir_step(d, key);
  return 0;
}

/* The link of `epoch`, or -1. */
static int epoch_idx(const struct sotto__spqr_chain *c, uint64_t epoch) {
  uint64_t back;
  if (epoch > c->current_epoch) return -1;
  back = c->current_epoch - epoch;
  if (back >= c->n_links) return -1;
  return (int)(c->n_links - 1 - back);
}

static void split96(struct sotto__spqr_chain *c, struct sotto__spqr_link *l, const uint8_t okm[96]) {
  const uint8_t *a2b = okm + 32, *b2a = okm + 64;
  memcpy(c->next_root, okm, 32);
  dir_init(&l->send, c->dir == SOTTO_SPQR_A2B ? a2b : b2a);
  dir_init(&l->recv, c->dir == SOTTO_SPQR_A2B ? b2a : a2b);
}

int sotto__spqr_chain_init(struct sotto__spqr_chain *c, const uint8_t auth_key[32], uint8_t dir,
                           uint32_t max_jump, uint32_t max_ooo) {
  uint8_t okm[96];
  /* dir_step's zero-salt HKDF uses a key prepared by the crypto init. */
  if (sotto__crypto_init() != 0) return SOTTO_ERR_INTERNAL;
  if (c == NULL || auth_key == NULL || dir > SOTTO_SPQR_B2A || max_ooo > MAX_OOO_LIMIT)
    return SOTTO_ERR_USAGE;
  memset(c, 0, sizeof *c);
  c->dir = dir;
  c->max_jump = max_jump ? max_jump : SOTTO_SPQR_DEFAULT_MAX_JUMP;
  c->max_ooo = max_ooo ? max_ooo : SOTTO_SPQR_DEFAULT_MAX_OOO;
  if (sotto__hkdf(okm, sizeof okm, NULL, 0, auth_key, 32, LABEL_START, sizeof LABEL_START - 1) != 0)
    return SOTTO_ERR_INTERNAL;
  split96(c, &c->links[0], okm);
  c->n_links = 1;
  sotto__wipe(okm, sizeof okm);
  return 0;
}

int sotto__spqr_chain_add_epoch(struct sotto__spqr_chain *c, uint64_t epoch, const uint8_t *secret,
                                size_t secret_len) {
  uint8_t okm[96];
  if (c == NULL || (secret == NULL && secret_len != 0)) return SOTTO_ERR_USAGE;
  if (c->current_epoch == UINT64_MAX || epoch != c->current_epoch + 1) return SOTTO_ERR_USAGE;
  if (c->n_links == SOTTO_SPQR_MAX_LINKS) return SOTTO_ERR_TOO_LARGE;
  if (sotto__hkdf(okm, sizeof okm, c->next_root, 32, secret, secret_len, LABEL_EPOCH,
                  sizeof LABEL_EPOCH - 1) != 0)
    return SOTTO_ERR_INTERNAL;
  split96(c, &c->links[c->n_links], okm);
  c->n_links++;
  c->current_epoch = epoch;
  sotto__wipe(okm, sizeof okm);
  return 0;
}

int sotto__spqr_chain_send_key(struct sotto__spqr_chain *c, uint64_t epoch, uint32_t *index,
                               uint8_t key[SOTTO_SPQR_KEY_LEN]) {
  int i, j;
  if (c == NULL || index == NULL || key == NULL) return SOTTO_ERR_USAGE;
  if (epoch < c->send_epoch) return SOTTO_ERR_USAGE;
  if ((i = epoch_idx(c, epoch)) < 0) return SOTTO_ERR_NO_SESSION;
  if (!c->links[i].send.has_next) return SOTTO_ERR_INTERNAL;
  if (c->links[i].send.ctr == UINT32_MAX) return SOTTO_ERR_TOO_LARGE;
  if (c->send_epoch != epoch) {
    /* Sending moved on: keep one epoch before it, and no older sending keys. */
    c->send_epoch = epoch;
    while (i > 1) {
      dir_clear(&c->links[0].send);
      dir_clear(&c->links[0].recv);
      memmove(&c->links[0], &c->links[1], (c->n_links - 1) * sizeof c->links[0]);
      c->n_links--;
      memset(&c->links[c->n_links], 0, sizeof c->links[0]);
      i--;
    }
    for (j = 0; j < i; j++) {
      sotto__wipe(c->links[j].send.next, 32);
      c->links[j].send.has_next = 0;
    }
  }
  dir_step(&c->links[i].send, key);
  *index = c->links[i].send.ctr;
  return 0;
}

int sotto__spqr_chain_recv_key(struct sotto__spqr_chain *c, uint64_t epoch, uint32_t index,
                               uint8_t key[SOTTO_SPQR_KEY_LEN]) {
  int i;
  if (c == NULL || key == NULL) return SOTTO_ERR_USAGE;
  if ((i = epoch_idx(c, epoch)) < 0) return SOTTO_ERR_NO_SESSION;
  return dir_key(&c->links[i].recv, index, c->max_jump, c->max_ooo, key);
}

void sotto__spqr_chain_clear(struct sotto__spqr_chain *c) {
  uint32_t i;
  if (c == NULL) return;
  for (i = 0; i < c->n_links && i < SOTTO_SPQR_MAX_LINKS; i++) {
    dir_clear(&c->links[i].send);
    dir_clear(&c->links[i].recv);
  }
  sotto__wipe(c, sizeof *c);
}

static int dir_copy(struct sotto__spqr_dir *dst, const struct sotto__spqr_dir *src) {
  *dst = *src;
  dst->prev = NULL;
  dst->cap_prev = 0;
  if (src->n_prev == 0) return 0;
  if ((dst->prev = calloc(src->n_prev, sizeof *dst->prev)) == NULL) return SOTTO_ERR_NOMEM;
  dst->cap_prev = src->n_prev;
  memcpy(dst->prev, src->prev, (size_t)src->n_prev * sizeof *src->prev);
  return 0;
}

int sotto__spqr_chain_copy(struct sotto__spqr_chain *dst, const struct sotto__spqr_chain *src) {
  uint32_t i;
  *dst = *src;
  for (i = 0; i < SOTTO_SPQR_MAX_LINKS; i++) {
    dst->links[i].send.prev = dst->links[i].recv.prev = NULL;
    dst->links[i].send.cap_prev = dst->links[i].recv.cap_prev = 0;
  }
  for (i = 0; i < src->n_links; i++) {
    if (dir_copy(&dst->links[i].send, &src->links[i].send) != 0 ||
        dir_copy(&dst->links[i].recv, &src->links[i].recv) != 0) {
      sotto__spqr_chain_clear(dst);
      return SOTTO_ERR_NOMEM;
    }
  }
  return 0;
}

/* ---- record ------------------------------------------------------------------- */

static size_t dir_size(const struct sotto__spqr_dir *d) {
  return 4 + 1 + (d->has_next ? 32 : 0) + 2 + (size_t)d->n_prev * 36;
}

size_t sotto__spqr_chain_serialized_size(const struct sotto__spqr_chain *c) {
  size_t n = 4 + 1 + 1 + 8 + 8 + 32 + 4 + 4 + 1;
  uint32_t i;
  for (i = 0; i < c->n_links; i++) n += dir_size(&c->links[i].send) + dir_size(&c->links[i].recv);
  return n;
}

static void dir_write(struct sotto__wr *w, const struct sotto__spqr_dir *d) {
  uint32_t i;
  sotto__wr_u32be(w, d->ctr);
  sotto__wr_u8(w, d->has_next ? 1 : 0);
  if (d->has_next) sotto__wr_bytes(w, d->next, 32);
  sotto__wr_u8(w, (uint8_t)(d->n_prev >> 8));
  sotto__wr_u8(w, (uint8_t)d->n_prev);
  for (i = 0; i < d->n_prev; i++) {
    sotto__wr_u32be(w, d->prev[i].idx);
    sotto__wr_bytes(w, d->prev[i].key, 32);
  }
}

int sotto__spqr_chain_serialize(const struct sotto__spqr_chain *c, uint8_t *out, size_t cap,
                                size_t *out_len) {
  struct sotto__wr w;
  uint32_t i;
  if (out_len != NULL) *out_len = 0;
  if (c == NULL || out_len == NULL || (out == NULL && cap != 0)) return SOTTO_ERR_USAGE;
  if (sotto__spqr_chain_serialized_size(c) > cap) return SOTTO_ERR_BUFFER_TOO_SMALL;
  sotto__wr_init(&w, out, cap);
  sotto__wr_bytes(&w, (const uint8_t *)REC_MAGIC, 4);
  sotto__wr_u8(&w, REC_FORMAT);
  sotto__wr_u8(&w, c->dir);
  sotto__wr_u64be(&w, c->current_epoch);
  sotto__wr_u64be(&w, c->send_epoch);
  sotto__wr_bytes(&w, c->next_root, 32);
  sotto__wr_u32be(&w, c->max_jump);
  sotto__wr_u32be(&w, c->max_ooo);
  sotto__wr_u8(&w, (uint8_t)c->n_links);
  for (i = 0; i < c->n_links; i++) {
    dir_write(&w, &c->links[i].send);
    dir_write(&w, &c->links[i].recv);
  }
  if (w.err != 0) {
    sotto__wipe(out, cap);
    return w.err;
  }
  *out_len = w.len;
  return 0;
}

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

static int dir_read(struct sotto__spqr_dir *d, struct sotto__rd *r, uint32_t max_ooo) {
  uint8_t hn, hi, lo;
  uint32_t n, i, *idx;
  int rc;
  if ((rc = sotto__rd_u32be(r, &d->ctr)) != 0) return rc;
  if ((rc = sotto__rd_u8(r, &hn)) != 0) return rc;
  if (hn > 1) return SOTTO_ERR_MALFORMED;
  d->has_next = hn;
  if (hn && (rc = sotto__rd_copy(r, d->next, 32)) != 0) return rc;
  if ((rc = sotto__rd_u8(r, &hi)) != 0) return rc;
  if ((rc = sotto__rd_u8(r, &lo)) != 0) return rc;
  n = (uint32_t)hi << 8 | lo;
  /* After any completed operation the list is below the trim size. */
  if (n >= trim_size(max_ooo)) return SOTTO_ERR_TOO_LARGE;
  if ((size_t)n * 36 > sotto__rd_left(r)) return SOTTO_ERR_TRUNCATED;
  if (n == 0) return 0;
  if ((rc = dir_reserve(d, n)) != 0) return rc;
  if ((idx = malloc((size_t)n * sizeof *idx)) == NULL) return SOTTO_ERR_NOMEM;
  for (i = 0; i < n; i++) {
    if ((rc = sotto__rd_u32be(r, &d->prev[i].idx)) != 0) break;
    if ((rc = sotto__rd_copy(r, d->prev[i].key, 32)) != 0) break;
    d->n_prev = i + 1;
    rc = SOTTO_ERR_MALFORMED;
    if (d->prev[i].idx == 0 || d->prev[i].idx >= d->ctr) break; /* keys start at 1, below ctr */
    idx[i] = d->prev[i].idx;
    rc = 0;
  }
  if (rc == 0) {
    qsort(idx, n, sizeof *idx, cmp_u32);
    for (i = 1; i < n; i++)
      if (idx[i] == idx[i - 1]) rc = SOTTO_ERR_MALFORMED; /* each index once */
  }
  free(idx);
  return rc;
}

int sotto__spqr_chain_deserialize(struct sotto__spqr_chain *c, const uint8_t *in, size_t len) {
  struct sotto__rd r;
  const uint8_t *magic;
  uint8_t fmt, n;
  uint32_t i;
  int rc;

  if (c == NULL || (in == NULL && len != 0)) return SOTTO_ERR_USAGE;
  memset(c, 0, sizeof *c);
  if (sotto__crypto_init() != 0) return SOTTO_ERR_INTERNAL; /* for dir_step */
  sotto__rd_init(&r, in, len);
  if ((rc = sotto__rd_bytes(&r, 4, &magic)) != 0) goto fail;
  rc = SOTTO_ERR_MALFORMED;
  if (memcmp(magic, REC_MAGIC, 4) != 0) goto fail;
  if ((rc = sotto__rd_u8(&r, &fmt)) != 0) goto fail;
  rc = SOTTO_ERR_VERSION;
  if (fmt != REC_FORMAT) goto fail;
  if ((rc = sotto__rd_u8(&r, &c->dir)) != 0) goto fail;
  if ((rc = sotto__rd_u64be(&r, &c->current_epoch)) != 0) goto fail;
  if ((rc = sotto__rd_u64be(&r, &c->send_epoch)) != 0) goto fail;
  if ((rc = sotto__rd_copy(&r, c->next_root, 32)) != 0) goto fail;
  if ((rc = sotto__rd_u32be(&r, &c->max_jump)) != 0) goto fail;
  if ((rc = sotto__rd_u32be(&r, &c->max_ooo)) != 0) goto fail;
  if ((rc = sotto__rd_u8(&r, &n)) != 0) goto fail;
  rc = SOTTO_ERR_MALFORMED;
  if (c->dir > SOTTO_SPQR_B2A || c->max_jump == 0 || c->max_ooo == 0) goto fail;
  rc = SOTTO_ERR_TOO_LARGE;
  if (c->max_ooo > MAX_OOO_LIMIT || n == 0 || n > SOTTO_SPQR_MAX_LINKS) goto fail;
  rc = SOTTO_ERR_MALFORMED;
  /* The links are epochs current-n+1 .. current, and the send epoch is one of them. */
  if (c->current_epoch < (uint64_t)n - 1 || c->send_epoch > c->current_epoch ||
      c->current_epoch - c->send_epoch >= n)
    goto fail;
  for (i = 0; i < n; i++) {
    c->n_links = i + 1; /* so that a failure frees this link */
    if ((rc = dir_read(&c->links[i].send, &r, c->max_ooo)) != 0) goto fail;
    if ((rc = dir_read(&c->links[i].recv, &r, c->max_ooo)) != 0) goto fail;
    rc = SOTTO_ERR_MALFORMED;
    if (!c->links[i].recv.has_next) goto fail; /* only sending halves are cleared */
  }
  rc = SOTTO_ERR_TRAILING;
  if (sotto__rd_left(&r) != 0) goto fail;
  return 0;
fail:
  sotto__spqr_chain_clear(c);
  return rc;
}

/* ---- undo records ------------------------------------------------------------ */

void sotto__spqr_chain_undo_init(struct sotto__spqr_chain_undo *u) {
  memset(u, 0, sizeof *u);
  u->link = -1;
}

static void dir_record(struct sotto__spqr_chain_undo *u, int link, int recv,
                       const struct sotto__spqr_dir *d) {
  u->link = link;
  u->recv = recv;
  u->ctr = d->ctr;
  u->n_prev = d->n_prev;
  u->has_next = d->has_next;
  memcpy(u->next, d->next, 32);
}

/* A deep copy of c into u->copy (SOTTO_ERR_NOMEM). */
static int save_copy(struct sotto__spqr_chain_undo *u, const struct sotto__spqr_chain *c) {
  if ((u->copy = malloc(sizeof *u->copy)) == NULL) return SOTTO_ERR_NOMEM;
  if (sotto__spqr_chain_copy(u->copy, c) != 0) {
    free(u->copy);
    u->copy = NULL;
    return SOTTO_ERR_NOMEM;
  }
  return 0;
}

static void drop_copy(struct sotto__spqr_chain_undo *u) {
  if (u->copy == NULL) return;
  sotto__spqr_chain_clear(u->copy);
  free(u->copy);
  u->copy = NULL;
}

int sotto__spqr_chain_send_key_u(struct sotto__spqr_chain *c, uint64_t epoch, uint32_t *index,
                                 uint8_t key[SOTTO_SPQR_KEY_LEN], struct sotto__spqr_chain_undo *u) {
  int i, rc;
  if (c == NULL || u == NULL || u->copy != NULL || u->link >= 0) return SOTTO_ERR_USAGE;
  if (epoch == c->send_epoch && (i = epoch_idx(c, epoch)) >= 0) {
    dir_record(u, i, 0, &c->links[i].send);
    if ((rc = sotto__spqr_chain_send_key(c, epoch, index, key)) != 0) u->link = -1;
    return rc;
  }
  /* The send epoch moves: older links go, so keep the whole chain. */
  if ((rc = save_copy(u, c)) != 0) return rc;
  if ((rc = sotto__spqr_chain_send_key(c, epoch, index, key)) != 0) drop_copy(u);
  return rc;
}

int sotto__spqr_chain_recv_key_u(struct sotto__spqr_chain *c, uint64_t epoch, uint32_t index,
                                 uint8_t key[SOTTO_SPQR_KEY_LEN], struct sotto__spqr_chain_undo *u) {
  struct sotto__spqr_dir *d;
  uint32_t i, adds;
  int li, rc;

  if (c == NULL || key == NULL || u == NULL || u->copy != NULL || u->link >= 0) return SOTTO_ERR_USAGE;
  if ((li = epoch_idx(c, epoch)) < 0) return SOTTO_ERR_NO_SESSION;
  d = &c->links[li].recv;
  if (index < d->ctr) {
    /* A kept key: record where it sat before prev_remove moves the last
     * entry into its place. */
    for (i = 0; i < d->n_prev; i++)
      if (d->prev[i].idx == index) break;
    if (i < d->n_prev && (uint64_t)index + c->max_ooo >= d->ctr) {
      dir_record(u, li, 1, d);
      u->removed = 1;
      u->removed_pos = i;
      u->removed_ent = d->prev[i];
    }
    if ((rc = dir_key(d, index, c->max_jump, c->max_ooo, key)) != 0) {
      u->link = -1;
      u->removed = 0;
      sotto__wipe(&u->removed_ent, sizeof u->removed_ent);
    }
    return rc;
  }
  /* Forward: new keys are appended, unless the jump empties the list or
   * the list reaches its trim size (then the whole chain is kept). */
  adds = index > d->ctr ? index - d->ctr - 1 : 0;
  if (adds > c->max_ooo + 1) adds = c->max_ooo + 1;
  if (index > d->ctr && (uint64_t)index <= (uint64_t)d->ctr + c->max_ooo &&
      (uint64_t)d->n_prev + adds < trim_size(c->max_ooo)) {
    dir_record(u, li, 1, d);
    if ((rc = dir_key(d, index, c->max_jump, c->max_ooo, key)) != 0) u->link = -1;
    return rc;
  }
  if (index <= d->ctr || index - d->ctr > c->max_jump || !d->has_next)
    return dir_key(d, index, c->max_jump, c->max_ooo, key); /* an error, nothing changes */
  if ((rc = save_copy(u, c)) != 0) return rc;
  if ((rc = dir_key(&c->links[li].recv, index, c->max_jump, c->max_ooo, key)) != 0) drop_copy(u);
  return rc;
}

int sotto__spqr_chain_add_epoch_u(struct sotto__spqr_chain *c, uint64_t epoch, const uint8_t *secret,
                                  size_t secret_len, struct sotto__spqr_chain_undo *u) {
  uint64_t before;
  uint8_t root[32];
  int rc;
  if (c == NULL || u == NULL || u->epoch_added) return SOTTO_ERR_USAGE;
  before = c->current_epoch;
  memcpy(root, c->next_root, 32);
  if ((rc = sotto__spqr_chain_add_epoch(c, epoch, secret, secret_len)) == 0) {
    u->epoch_added = 1;
    u->epoch_before = before;
    memcpy(u->root_before, root, 32);
  }
  sotto__wipe(root, sizeof root);
  return rc;
}

uint32_t sotto__spqr_chain_recv_cost(const struct sotto__spqr_chain *c, uint64_t epoch, uint32_t index) {
  const struct sotto__spqr_dir *d;
  int li;
  if (c == NULL || (li = epoch_idx(c, epoch)) < 0) return 0;
  d = &c->links[li].recv;
  if (index <= d->ctr || index - d->ctr > c->max_jump) return 0;
  return index - d->ctr;
}

void sotto__spqr_chain_rollback(struct sotto__spqr_chain *c, struct sotto__spqr_chain_undo *u) {
  if (c == NULL || u == NULL) return;
  if (u->epoch_added) {
    /* The link add_epoch made is the last one; it has no key lists yet
     * unless a later operation (recorded before it: none) added some. */
    c->n_links--;
    dir_clear(&c->links[c->n_links].send);
    dir_clear(&c->links[c->n_links].recv);
    c->current_epoch = u->epoch_before;
    memcpy(c->next_root, u->root_before, 32);
  }
  if (u->copy != NULL) {
    sotto__spqr_chain_clear(c);
    *c = *u->copy;
    sotto__wipe(u->copy, sizeof *u->copy);
    free(u->copy);
    u->copy = NULL;
  } else if (u->link >= 0) {
    struct sotto__spqr_dir *d = u->recv ? &c->links[u->link].recv : &c->links[u->link].send;
    uint32_t i;
    if (u->removed) {
      /* prev_remove moved the last entry to removed_pos: move it back. */
      if (u->removed_pos < d->n_prev) d->prev[d->n_prev] = d->prev[u->removed_pos];
      d->prev[u->removed_pos] = u->removed_ent;
      d->n_prev++;
    }
    for (i = u->n_prev; i < d->n_prev; i++) sotto__wipe(&d->prev[i], sizeof d->prev[i]);
    d->n_prev = u->n_prev;
    d->ctr = u->ctr;
    d->has_next = u->has_next;
    memcpy(d->next, u->next, 32);
  }
  sotto__spqr_chain_commit(u);
}

void sotto__spqr_chain_commit(struct sotto__spqr_chain_undo *u) {
  if (u == NULL) return;
  drop_copy(u);
  sotto__wipe(u, sizeof *u);
  u->link = -1;
}

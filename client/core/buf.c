/* SPDX-License-Identifier: Apache-2.0 */
/* buf.c: bounded writer and reader (see buf.h). */
#include "buf.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

void buf_wr_init(struct buf_wr *w, size_t max) {
  memset(w, 0, sizeof *w);
  w->max = max;
}

void buf_wr_free(struct buf_wr *w) {
  if (w->p) {
    sodium_memzero(w->p, w->cap);
    free(w->p);
  }
  memset(w, 0, sizeof *w);
}

/* Grows to fit n more bytes, never past max. The old buffer is wiped before
 * it is released, because records carry keys. */
static int reserve(struct buf_wr *w, size_t n) {
  size_t want, ncap;
  uint8_t *np;
  if (w->err) return -1;
  if (n > w->max - w->len) goto fail;
  want = w->len + n;
  if (want <= w->cap) return 0;
  ncap = w->cap ? w->cap : 256;
  while (ncap < want) ncap = ncap > w->max / 2 ? w->max : ncap * 2;
  np = malloc(ncap);
  if (!np) goto fail;
  if (w->p) {
    memcpy(np, w->p, w->len);
    sodium_memzero(w->p, w->cap);
    free(w->p);
  }
  w->p = np;
  w->cap = ncap;
  return 0;
fail:
  w->err = 1;
  return -1;
}

void buf_put(struct buf_wr *w, const void *p, size_t n) {
  if (n == 0 || reserve(w, n)) return;
  memcpy(w->p + w->len, p, n);
  w->len += n;
}

void buf_put_u8(struct buf_wr *w, uint8_t v) { buf_put(w, &v, 1); }

void buf_put_u16(struct buf_wr *w, uint16_t v) {
  uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  buf_put(w, b, 2);
}

void buf_put_u32(struct buf_wr *w, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  buf_put(w, b, 4);
}

void buf_put_u64(struct buf_wr *w, uint64_t v) {
  buf_put_u32(w, (uint32_t)(v >> 32));
  buf_put_u32(w, (uint32_t)v);
}

void buf_put_str16(struct buf_wr *w, const void *p, size_t n) {
  if (n > 0xffff) {
    w->err = 1;
    return;
  }
  buf_put_u16(w, (uint16_t)n);
  buf_put(w, p, n);
}

int buf_wr_ok(const struct buf_wr *w) { return w->err ? -1 : 0; }

void buf_rd_init(struct buf_rd *r, const void *p, size_t len) {
  r->p = p;
  r->len = len;
  r->off = 0;
  r->err = 0;
}

int buf_get_ptr(struct buf_rd *r, const uint8_t **out, size_t n) {
  if (r->err || n > r->len - r->off) {
    r->err = 1;
    return -1;
  }
  *out = r->p + r->off;
  r->off += n;
  return 0;
}

int buf_get(struct buf_rd *r, void *out, size_t n) {
  const uint8_t *p;
  if (buf_get_ptr(r, &p, n)) return -1;
  if (n) memcpy(out, p, n);
  return 0;
}

int buf_get_u8(struct buf_rd *r, uint8_t *v) { return buf_get(r, v, 1); }

int buf_get_u16(struct buf_rd *r, uint16_t *v) {
  const uint8_t *p;
  if (buf_get_ptr(r, &p, 2)) return -1;
  *v = (uint16_t)((p[0] << 8) | p[1]);
  return 0;
}

int buf_get_u32(struct buf_rd *r, uint32_t *v) {
  const uint8_t *p;
  if (buf_get_ptr(r, &p, 4)) return -1;
  *v = ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
  return 0;
}

int buf_get_u64(struct buf_rd *r, uint64_t *v) {
  uint32_t hi, lo;
  if (buf_get_u32(r, &hi) || buf_get_u32(r, &lo)) return -1;
  *v = ((uint64_t)hi << 32) | lo;
  return 0;
}

int buf_get_str16(struct buf_rd *r, const uint8_t **out, size_t *n, size_t max) {
  uint16_t l;
  size_t save = r->off;
  if (buf_get_u16(r, &l)) return -1;
  if (l > max || buf_get_ptr(r, out, l)) {
    r->off = save;
    r->err = 1;
    return -1;
  }
  *n = l;
  return 0;
}

int buf_get_cstr(struct buf_rd *r, char *out, size_t cap) {
  const uint8_t *p;
  size_t n;
  if (cap == 0 || buf_get_str16(r, &p, &n, cap - 1)) return -1;
  if (memchr(p, 0, n)) {
    r->err = 1;
    return -1;
  }
  memcpy(out, p, n);
  out[n] = 0;
  return 0;
}

int buf_rd_end(const struct buf_rd *r) { return (r->err || r->off != r->len) ? -1 : 0; }

/* SPDX-License-Identifier: Apache-2.0 */
/* record.h: the byte layouts of the client's records (local store rows,
 * the content inside encrypted messages: docs/client.md) written and read
 * through lib/wire's bounded writer and reader (sotto_wire, wire.h), the
 * one byte cursor of the tree. Everything is big-endian.
 *
 * This adds only what records need on top of lib/wire: a heap buffer of a
 * fixed maximum for the writer (wiped on release: records hold keys), u16
 * length-prefixed strings, and a latched error, so that a sequence of gets
 * or puts needs one check at the end (rec_wr_ok, rec_rd_end). Every bound
 * is checked by lib/wire. */
#ifndef SOTTO_CLIENT_RECORD_H
#define SOTTO_CLIENT_RECORD_H

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

struct rec_wr {
  struct sotto__wr w;
  uint8_t *p; /* the bytes written so far: p[0..len) */
  size_t len;
};

/* A writer of at most max bytes (allocated now; a failure latches). */
static inline void rec_wr_init(struct rec_wr *r, size_t max) {
  r->p = malloc(max ? max : 1);
  sotto__wr_init(&r->w, r->p, r->p ? max : 0);
  if (!r->p) r->w.err = SOTTO_ERR_NOMEM;
  r->len = 0;
}

static inline void rec_wr_free(struct rec_wr *r) {
  if (r->p) {
    sodium_memzero(r->p, r->w.len);
    free(r->p);
  }
  memset(r, 0, sizeof *r);
}

static inline void rec_put(struct rec_wr *r, const void *p, size_t n) {
  sotto__wr_bytes(&r->w, p, n);
  r->len = r->w.len;
}
static inline void rec_put_u8(struct rec_wr *r, uint8_t v) { rec_put(r, &v, 1); }
static inline void rec_put_u16(struct rec_wr *r, uint16_t v) {
  uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
  rec_put(r, b, 2);
}
static inline void rec_put_u32(struct rec_wr *r, uint32_t v) {
  sotto__wr_u32be(&r->w, v);
  r->len = r->w.len;
}
static inline void rec_put_u64(struct rec_wr *r, uint64_t v) {
  sotto__wr_u64be(&r->w, v);
  r->len = r->w.len;
}
/* A string or blob with a u16 length prefix (n <= 65535). */
static inline void rec_put_str16(struct rec_wr *r, const void *p, size_t n) {
  if (n > 0xffff) {
    r->w.err = SOTTO_ERR_TOO_LARGE;
    return;
  }
  rec_put_u16(r, (uint16_t)n);
  rec_put(r, p, n);
}
/* 0, or -1 if any put failed (the buffer then holds nothing useful). */
static inline int rec_wr_ok(const struct rec_wr *r) { return r->w.err ? -1 : 0; }

struct rec_rd {
  struct sotto__rd r;
  int err;
};

static inline void rec_rd_init(struct rec_rd *r, const void *p, size_t len) {
  sotto__rd_init(&r->r, (const uint8_t *)p, len);
  r->err = 0;
}
/* Each get returns 0, or -1 and latches (later gets fail too). */
static inline int rec_latch(struct rec_rd *r, int rc) {
  if (rc) r->err = 1;
  return rc ? -1 : 0;
}
static inline int rec_get_ptr(struct rec_rd *r, const uint8_t **out, size_t n) {
  if (r->err) return -1;
  return rec_latch(r, sotto__rd_bytes(&r->r, n, out));
}
static inline int rec_get(struct rec_rd *r, void *out, size_t n) {
  if (r->err) return -1;
  return rec_latch(r, sotto__rd_copy(&r->r, out, n));
}
static inline int rec_get_u8(struct rec_rd *r, uint8_t *v) {
  if (r->err) return -1;
  return rec_latch(r, sotto__rd_u8(&r->r, v));
}
static inline int rec_get_u16(struct rec_rd *r, uint16_t *v) {
  const uint8_t *p;
  if (rec_get_ptr(r, &p, 2)) return -1;
  *v = (uint16_t)((p[0] << 8) | p[1]);
  return 0;
}
static inline int rec_get_u32(struct rec_rd *r, uint32_t *v) {
  if (r->err) return -1;
  return rec_latch(r, sotto__rd_u32be(&r->r, v));
}
static inline int rec_get_u64(struct rec_rd *r, uint64_t *v) {
  if (r->err) return -1;
  return rec_latch(r, sotto__rd_u64be(&r->r, v));
}
/* A u16-prefixed blob of at most max bytes; *out points into the input. */
static inline int rec_get_str16(struct rec_rd *r, const uint8_t **out, size_t *n, size_t max) {
  uint16_t l;
  if (rec_get_u16(r, &l)) return -1;
  if (l > max) return rec_latch(r, SOTTO_ERR_TOO_LARGE);
  if (rec_get_ptr(r, out, l)) return -1;
  *n = l;
  return 0;
}
/* The same, copied into a NUL-terminated C string of cap bytes (no NUL
 * inside allowed). */
static inline int rec_get_cstr(struct rec_rd *r, char *out, size_t cap) {
  const uint8_t *p;
  size_t n;
  if (cap == 0) return rec_latch(r, SOTTO_ERR_USAGE);
  if (rec_get_str16(r, &p, &n, cap - 1)) return -1;
  if (memchr(p, 0, n)) return rec_latch(r, SOTTO_ERR_MALFORMED);
  memcpy(out, p, n);
  out[n] = 0;
  return 0;
}
/* 0 if no get failed and every byte was consumed, else -1. */
static inline int rec_rd_end(const struct rec_rd *r) { return r->err || sotto__rd_left(&r->r) ? -1 : 0; }

#endif

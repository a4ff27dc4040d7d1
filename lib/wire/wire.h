/* SPDX-License-Identifier: Apache-2.0 */
/* wire.h: bounded reader and writer for untrusted bytes, and the minimal
 * protobuf (proto2 wire format) primitives the Signal messages need.
 *
 * Reader discipline (after s2n's stuffer): every read checks `n <= len - off`
 * before touching memory, a failed read leaves the cursor where it was, and
 * callers check that nothing is left at the end. The writer writes into a
 * caller-provided buffer of fixed capacity and latches an error on overflow,
 * so a sequence of writes needs one check at the end. */
#ifndef SOTTO_WIRE_H
#define SOTTO_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sotto/error.h>

struct sotto__rd {
  const uint8_t *p;
  size_t len;
  size_t off;
};

static inline void sotto__rd_init(struct sotto__rd *r, const uint8_t *p, size_t len) {
  r->p = p;
  r->len = len;
  r->off = 0;
}

static inline size_t sotto__rd_left(const struct sotto__rd *r) { return r->len - r->off; }

static inline int sotto__rd_u8(struct sotto__rd *r, uint8_t *v) {
  if (r->off >= r->len) return SOTTO_ERR_TRUNCATED;
  *v = r->p[r->off++];
  return 0;
}

/* Zero-copy: *out points into the reader's buffer. */
static inline int sotto__rd_bytes(struct sotto__rd *r, size_t n, const uint8_t **out) {
  if (n > r->len - r->off) return SOTTO_ERR_TRUNCATED;
  *out = r->p + r->off;
  r->off += n;
  return 0;
}

static inline int sotto__rd_copy(struct sotto__rd *r, void *dst, size_t n) {
  const uint8_t *p;
  int rc = sotto__rd_bytes(r, n, &p);
  if (rc == 0) memcpy(dst, p, n);
  return rc;
}

/* Base-128 varint, at most 10 bytes and at most 64 bits. */
static inline int sotto__rd_varint(struct sotto__rd *r, uint64_t *v) {
  uint64_t x = 0;
  size_t i, off = r->off;
  for (i = 0; i < 10; i++) {
    uint8_t b;
    if (off >= r->len) return SOTTO_ERR_TRUNCATED;
    b = r->p[off++];
    if (i == 9 && b > 1) return SOTTO_ERR_MALFORMED;
    x |= (uint64_t)(b & 0x7F) << (7 * i);
    if (!(b & 0x80)) {
      r->off = off;
      *v = x;
      return 0;
    }
  }
  return SOTTO_ERR_MALFORMED;
}

static inline int sotto__rd_u32be(struct sotto__rd *r, uint32_t *v) {
  const uint8_t *p;
  int rc = sotto__rd_bytes(r, 4, &p);
  if (rc == 0) *v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  return rc;
}

static inline int sotto__rd_u64be(struct sotto__rd *r, uint64_t *v) {
  uint32_t hi, lo;
  size_t off = r->off;
  int rc = sotto__rd_u32be(r, &hi);
  if (rc == 0 && (rc = sotto__rd_u32be(r, &lo)) != 0) r->off = off;
  if (rc == 0) *v = (uint64_t)hi << 32 | lo;
  return rc;
}

/* ---- writer -------------------------------------------------------------- */

struct sotto__wr {
  uint8_t *p;
  size_t cap;
  size_t len;
  int err;
};

static inline void sotto__wr_init(struct sotto__wr *w, uint8_t *p, size_t cap) {
  w->p = p;
  w->cap = cap;
  w->len = 0;
  w->err = 0;
}

static inline void sotto__wr_bytes(struct sotto__wr *w, const void *src, size_t n) {
  if (w->err || n > w->cap - w->len) {
    w->err = SOTTO_ERR_BUFFER_TOO_SMALL;
    return;
  }
  if (n) memcpy(w->p + w->len, src, n);
  w->len += n;
}

static inline void sotto__wr_u8(struct sotto__wr *w, uint8_t v) { sotto__wr_bytes(w, &v, 1); }

static inline void sotto__wr_varint(struct sotto__wr *w, uint64_t v) {
  uint8_t b[10];
  size_t n = 0;
  do {
    b[n] = (uint8_t)(v & 0x7F);
    v >>= 7;
    if (v) b[n] |= 0x80;
    n++;
  } while (v);
  sotto__wr_bytes(w, b, n);
}

static inline void sotto__wr_u32be(struct sotto__wr *w, uint32_t v) {
  uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
  sotto__wr_bytes(w, b, 4);
}

static inline void sotto__wr_u64be(struct sotto__wr *w, uint64_t v) {
  sotto__wr_u32be(w, (uint32_t)(v >> 32));
  sotto__wr_u32be(w, (uint32_t)v);
}

static inline size_t sotto__varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* ---- protobuf ------------------------------------------------------------ */

enum { SOTTO__PB_VARINT = 0, SOTTO__PB_FIXED64 = 1, SOTTO__PB_LEN = 2, SOTTO__PB_FIXED32 = 5 };

struct sotto__pb_field {
  uint32_t num;
  uint8_t wt;
  uint64_t v;       /* varint / fixed value */
  const uint8_t *p; /* length-delimited payload (points into the input) */
  size_t len;
};

/* Reads the next field. Returns 1 when a field was read, 0 at the end of the
 * input, or a negative error for a malformed key, a group wire type, a field
 * number of 0 or a length past the end. */
int sotto__pb_next(struct sotto__rd *r, struct sotto__pb_field *f);

/* Field writers (proto2: emitted even when zero). */
static inline void sotto__pb_varint(struct sotto__wr *w, uint32_t num, uint64_t v) {
  sotto__wr_varint(w, (uint64_t)num << 3 | SOTTO__PB_VARINT);
  sotto__wr_varint(w, v);
}

static inline void sotto__pb_bytes(struct sotto__wr *w, uint32_t num, const void *p, size_t n) {
  sotto__wr_varint(w, (uint64_t)num << 3 | SOTTO__PB_LEN);
  sotto__wr_varint(w, n);
  sotto__wr_bytes(w, p, n);
}

/* A 33-byte serialized Curve25519 public key field: 0x05 || u. */
static inline void sotto__pb_pubkey(struct sotto__wr *w, uint32_t num, const uint8_t u[32]) {
  sotto__wr_varint(w, (uint64_t)num << 3 | SOTTO__PB_LEN);
  sotto__wr_u8(w, 33);
  sotto__wr_u8(w, 0x05);
  sotto__wr_bytes(w, u, 32);
}

/* Size of a length-delimited field with an n-byte payload and field number < 16. */
static inline size_t sotto__pb_bytes_size(size_t n) { return 1 + sotto__varint_len(n) + n; }
static inline size_t sotto__pb_varint_size(uint64_t v) { return 1 + sotto__varint_len(v); }

/* Marks field `num` (1..31) as seen; SOTTO_ERR_MALFORMED if it already was.
 * Our parsers refuse a repeated singular field rather than let the last
 * copy win: no honest encoder writes one, and accepting it would give two
 * parsers two readings of the same bytes. Field numbers above 31 are
 * unknown fields, skipped. */
static inline int sotto__pb_once(uint32_t *seen, uint32_t num) {
  if (num == 0 || num > 31) return 0;
  if (*seen & (1u << num)) return SOTTO_ERR_MALFORMED;
  *seen |= 1u << num;
  return 0;
}

/* Decodes a 33-byte serialized public key (type byte 0x05) into u. */
int sotto__pb_get_pubkey(const struct sotto__pb_field *f, uint8_t u[32]);
/* A uint32 varint field (values above 2^32-1 are malformed). */
int sotto__pb_get_u32(const struct sotto__pb_field *f, uint32_t *v);

#endif

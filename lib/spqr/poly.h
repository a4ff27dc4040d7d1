/* SPDX-License-Identifier: Apache-2.0 */
/* poly.h (internal): SPQR's erasure code for 32-byte chunks (facts from
 * SparsePostQuantumRatchet v1.5.3 src/encoding/gf.rs and polynomial.rs; the
 * C is ours).
 *
 * An object of L bytes (L even) is read as L/2 big-endian 16-bit values in
 * GF(2^16) (reduction polynomial x^16 + x^12 + x^3 + x + 1, 0x1100B). Value
 * v goes to polynomial v % 16 at point x = v / 16, so polynomial i holds
 * k_i = ceil((L/2 - i) / 16) points. Chunk number c carries, for i = 0..15,
 * the value of polynomial i at x = c (big-endian, 2 bytes each): chunks
 * 0..ceil(L/32)-1 are the object itself (the code is systematic); later
 * chunks are evaluations of the unique polynomial of degree < k_i through
 * those points, so any ceil(L/32) distinct chunks rebuild the object. */
#ifndef SOTTO_SPQR_POLY_H
#define SOTTO_SPQR_POLY_H

#include <stddef.h>
#include <stdint.h>

#define SOTTO_SPQR_POLYS 16
/* Largest object SPQR v1 chunks: the ML-KEM-768 vector part of the
 * encapsulation key (1152 bytes); 2048 leaves room. */
#define SOTTO_SPQR_OBJECT_MAX 2048
#define SOTTO_SPQR_PTS_MAX (SOTTO_SPQR_OBJECT_MAX / 2 / SOTTO_SPQR_POLYS)

/* Log/exp tables, built once (thread-safe; the codec calls it itself). The
 * data coded here is public (poly.c says why), so lookups are fine. */
void sotto__gf16_init(void);
uint16_t sotto__gf16_mul(uint16_t a, uint16_t b);
uint16_t sotto__gf16_inv(uint16_t a); /* 0 for 0 */
/* Bitwise reference multiplication (tables are built from it; tests). */
uint16_t sotto__gf16_mul_ref(uint16_t a, uint16_t b);

struct sotto__spqr_enc {
  uint32_t n_vals;
  uint16_t vals[SOTTO_SPQR_OBJECT_MAX / 2];
};

/* SOTTO_ERR_MALFORMED for an odd length, SOTTO_ERR_TOO_LARGE past the max. */
int sotto__spqr_enc_init(struct sotto__spqr_enc *e, const uint8_t *obj, size_t len);
void sotto__spqr_enc_chunk(const struct sotto__spqr_enc *e, uint16_t index, uint8_t out[32]);

struct sotto__spqr_dec {
  uint32_t n_vals; /* values of the object (L / 2) */
  uint8_t n[SOTTO_SPQR_POLYS];
  uint16_t x[SOTTO_SPQR_POLYS][2 * SOTTO_SPQR_PTS_MAX + 1]; /* sorted, distinct */
  uint16_t y[SOTTO_SPQR_POLYS][2 * SOTTO_SPQR_PTS_MAX + 1];
};

int sotto__spqr_dec_init(struct sotto__spqr_dec *d, size_t len);
/* Returns the polynomials (bit i for polynomial i) that took the point. */
uint16_t sotto__spqr_dec_add(struct sotto__spqr_dec *d, uint16_t index, const uint8_t data[32]);
/* 1 if dec_add(index) would give enough points to finish the object. */
int sotto__spqr_dec_would_complete(const struct sotto__spqr_dec *d, uint16_t index);
/* Undoes dec_add(index) that returned mask. */
void sotto__spqr_dec_remove(struct sotto__spqr_dec *d, uint16_t index, uint16_t mask);
/* 1 and the object in out (L bytes) once enough chunks arrived, else 0. */
int sotto__spqr_dec_done(const struct sotto__spqr_dec *d, uint8_t *out, size_t cap);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* poly.c: SPQR's GF(2^16) erasure code (poly.h). The data is public (KEM
 * keys and ciphertexts), so nothing here needs to be constant-time. */
#include <string.h>

#include <sotto/error.h>

#include "spqr/poly.h"

#define GF_POLY 0x1100Bu

uint16_t sotto__gf16_mul(uint16_t a, uint16_t b) {
  uint32_t r = 0, x = a, hi;
  int i;
  /* Carry-less product without branches, then reduction by folding the
   * high half: x^16 = x^12 + x^3 + x + 1, so hi * x^16 becomes
   * hi << 12 ^ hi << 3 ^ hi << 1 ^ hi; four folds bring any 31-bit product
   * below 2^16 (each one shrinks the excess by 4 bits at least). */
  for (i = 0; i < 16; i++) r ^= (x << i) & (0u - ((uint32_t)(b >> i) & 1u));
  for (i = 0; i < 4; i++) {
    hi = r >> 16;
    r = (r & 0xFFFFu) ^ (hi << 12) ^ (hi << 3) ^ (hi << 1) ^ hi;
  }
  return (uint16_t)r;
}

uint16_t sotto__gf16_inv(uint16_t a) {
  /* a^(2^16 - 2) by square and multiply. */
  uint16_t r = 1, s = a;
  uint32_t e = 0xFFFEu;
  while (e) {
    if (e & 1) r = sotto__gf16_mul(r, s);
    s = sotto__gf16_mul(s, s);
    e >>= 1;
  }
  return r;
}

/* Lagrange weights at x for the points xs[0..n-1] (x not among them):
 * w[j] = prod_{m != j} (x - xs[m]) / (xs[j] - xs[m]). */
static void lagrange_weights(uint16_t *w, const uint16_t *xs, uint32_t n, uint16_t x) {
  uint32_t j, m;
  for (j = 0; j < n; j++) {
    uint16_t num = 1, den = 1;
    for (m = 0; m < n; m++) {
      if (m == j) continue;
      num = sotto__gf16_mul(num, (uint16_t)(x ^ xs[m]));
      den = sotto__gf16_mul(den, (uint16_t)(xs[j] ^ xs[m]));
    }
    w[j] = sotto__gf16_mul(num, sotto__gf16_inv(den));
  }
}

/* Value at x of the polynomial of degree < n through (xs[j], ys[j]). */
static uint16_t lagrange_at(const uint16_t *xs, const uint16_t *ys, uint32_t n, uint16_t x) {
  uint16_t w[2 * SOTTO_SPQR_PTS_MAX + 1], sum = 0;
  uint32_t j;
  for (j = 0; j < n; j++)
    if (xs[j] == x) return ys[j];
  lagrange_weights(w, xs, n, x);
  for (j = 0; j < n; j++) sum ^= sotto__gf16_mul(ys[j], w[j]);
  return sum;
}

/* Points of polynomial i for an object of n values. */
static uint32_t points_of(uint32_t n, uint32_t i) {
  return n > i ? (n - i + SOTTO_SPQR_POLYS - 1) / SOTTO_SPQR_POLYS : 0;
}

int sotto__spqr_enc_init(struct sotto__spqr_enc *e, const uint8_t *obj, size_t len) {
  size_t i;
  if (e == NULL || (obj == NULL && len != 0)) return SOTTO_ERR_USAGE;
  if (len % 2 != 0) return SOTTO_ERR_MALFORMED;
  if (len > SOTTO_SPQR_OBJECT_MAX) return SOTTO_ERR_TOO_LARGE;
  e->n_vals = (uint32_t)(len / 2);
  for (i = 0; i < len / 2; i++) e->vals[i] = (uint16_t)(obj[2 * i] << 8 | obj[2 * i + 1]);
  return 0;
}

void sotto__spqr_enc_chunk(const struct sotto__spqr_enc *e, uint16_t index, uint8_t out[32]) {
  uint16_t xs[SOTTO_SPQR_PTS_MAX + 1], w[SOTTO_SPQR_PTS_MAX + 1], v;
  uint32_t i, k, j, wk = 0;
  for (j = 0; j <= SOTTO_SPQR_PTS_MAX; j++) xs[j] = (uint16_t)j;
  for (i = 0; i < SOTTO_SPQR_POLYS; i++) {
    k = points_of(e->n_vals, i);
    if (index < k) {
      v = e->vals[(uint32_t)index * SOTTO_SPQR_POLYS + i];
    } else {
      /* Every polynomial has its points at x = 0..k-1 and k takes at most
       * two values: the weights at `index` are shared. */
      if (k != wk) {
        lagrange_weights(w, xs, k, index);
        wk = k;
      }
      v = 0;
      for (j = 0; j < k; j++) v ^= sotto__gf16_mul(e->vals[j * SOTTO_SPQR_POLYS + i], w[j]);
    }
    out[2 * i] = (uint8_t)(v >> 8);
    out[2 * i + 1] = (uint8_t)v;
  }
}

int sotto__spqr_dec_init(struct sotto__spqr_dec *d, size_t len) {
  if (d == NULL) return SOTTO_ERR_USAGE;
  if (len % 2 != 0) return SOTTO_ERR_MALFORMED;
  if (len > SOTTO_SPQR_OBJECT_MAX) return SOTTO_ERR_TOO_LARGE;
  memset(d, 0, sizeof *d);
  d->n_vals = (uint32_t)(len / 2);
  return 0;
}

void sotto__spqr_dec_add(struct sotto__spqr_dec *d, uint16_t index, const uint8_t data[32]) {
  uint32_t i, j, need;
  for (i = 0; i < SOTTO_SPQR_POLYS; i++) {
    uint16_t y = (uint16_t)(data[2 * i] << 8 | data[2 * i + 1]);
    need = points_of(d->n_vals, i);
    /* Upstream's rule: systematic points are always taken, others only
     * while the polynomial is short; a point already held is ignored. */
    if (!(index < need || d->n[i] < need)) continue;
    if (d->n[i] == 2 * SOTTO_SPQR_PTS_MAX + 1) continue;
    for (j = 0; j < d->n[i] && d->x[i][j] < index; j++) {
    }
    if (j < d->n[i] && d->x[i][j] == index) continue;
    memmove(&d->x[i][j + 1], &d->x[i][j], (d->n[i] - j) * sizeof d->x[i][0]);
    memmove(&d->y[i][j + 1], &d->y[i][j], (d->n[i] - j) * sizeof d->y[i][0]);
    d->x[i][j] = index;
    d->y[i][j] = y;
    d->n[i]++;
  }
}

int sotto__spqr_dec_done(const struct sotto__spqr_dec *d, uint8_t *out, size_t cap) {
  uint32_t i;
  if (cap < (size_t)d->n_vals * 2) return 0;
  for (i = 0; i < SOTTO_SPQR_POLYS; i++)
    if (d->n[i] < points_of(d->n_vals, i)) return 0;
  for (i = 0; i < d->n_vals; i++) {
    uint32_t p = i % SOTTO_SPQR_POLYS, x = i / SOTTO_SPQR_POLYS;
    /* The first `need` points in x order, as upstream uses. */
    uint16_t v = lagrange_at(d->x[p], d->y[p], points_of(d->n_vals, p), (uint16_t)x);
    out[2 * i] = (uint8_t)(v >> 8);
    out[2 * i + 1] = (uint8_t)v;
  }
  return 1;
}

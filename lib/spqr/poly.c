/* SPDX-License-Identifier: Apache-2.0 */
/* poly.c: SPQR's GF(2^16) erasure code (poly.h).
 *
 * Not constant-time, on purpose: what is erasure-coded here is the
 * ML-KEM-768 header, encapsulation key, ct1 and ct2 with their MACs, all of
 * which travel in SignalMessage field 5, authenticated but not encrypted
 * (anyone on the path sees every chunk). The decapsulation key, the
 * encapsulation state and the epoch secrets never pass through this file.
 * So multiplication uses log/exp tables (384 KB, built once per process)
 * with data-dependent indices, and inversion is one lookup. */
#include "spqr/poly.h"

#include <pthread.h>
#include <sotto/error.h>
#include <string.h>

#define GF_ORDER 65535u /* of the multiplicative group */
#define NPTS (2 * SOTTO_SPQR_PTS_MAX + 1)

uint16_t sotto__gf16_mul_ref(uint16_t a, uint16_t b) {
  uint32_t r = 0, x = a, hi;
  int i;
  /* Carry-less product, then reduction by folding the high half (the
   * polynomial is x^16 + x^12 + x^3 + x + 1, 0x1100B): hi * x^16 becomes
   * hi << 12 ^ hi << 3 ^ hi << 1 ^ hi; four folds bring any 31-bit product
   * below 2^16 (each one shrinks the excess by 4 bits at least). */
  for (i = 0; i < 16; i++) r ^= (x << i) & (0u - ((uint32_t)(b >> i) & 1u));
  for (i = 0; i < 4; i++) {
    hi = r >> 16;
    r = (r & 0xFFFFu) ^ (hi << 12) ^ (hi << 3) ^ (hi << 1) ^ hi;
  }
  return (uint16_t)r;
}

/* exp[i] = g^i for i < 2 * 65535 (twice round, so that a sum of two logs
 * needs no reduction); log[a] for a != 0. sys_bw[k][j]: the barycentric
 * weights of the systematic points 0..k-1 (see bary_weights). */
static uint16_t gf_exp[2 * GF_ORDER];
static uint16_t gf_log[65536];
static uint16_t sys_bw[SOTTO_SPQR_PTS_MAX + 1][SOTTO_SPQR_PTS_MAX + 1];
static pthread_once_t gf_once = PTHREAD_ONCE_INIT;

static uint16_t pow_ref(uint16_t a, uint32_t e) {
  uint16_t r = 1;
  while (e) {
    if (e & 1) r = sotto__gf16_mul_ref(r, a);
    a = sotto__gf16_mul_ref(a, a);
    e >>= 1;
  }
  return r;
}

static inline uint16_t gmul(uint16_t a, uint16_t b) {
  if (a == 0 || b == 0) return 0;
  return gf_exp[(uint32_t)gf_log[a] + gf_log[b]];
}

static inline uint16_t ginv(uint16_t a) {
  return gf_exp[GF_ORDER - gf_log[a]];
}

/* Barycentric weights of the points xs[0..n-1]:
 * bw[j] = 1 / prod_{m != j} (xs[j] - xs[m]). The Lagrange weight of point
 * j at x (not a point) is then L(x) * bw[j] / (x - xs[j]) with
 * L(x) = prod_m (x - xs[m]): O(n) per x once bw is known. */
static void bary_weights(uint16_t *bw, const uint16_t *xs, uint32_t n) {
  uint32_t j, m;
  for (j = 0; j < n; j++) {
    uint16_t den = 1;
    for (m = 0; m < n; m++)
      if (m != j) den = gmul(den, (uint16_t)(xs[j] ^ xs[m]));
    bw[j] = ginv(den);
  }
}

static void gf_build(void) {
  static const uint32_t primes[] = {3, 5, 17, 257}; /* 65535 = 3 * 5 * 17 * 257 */
  uint16_t g, v = 1, xs[SOTTO_SPQR_PTS_MAX + 1];
  uint32_t i, k;
  /* The smallest generator of the multiplicative group: an element whose
   * order is no proper divisor of 65535. */
  for (g = 2;; g++) {
    for (k = 0; k < 4; k++)
      if (pow_ref(g, GF_ORDER / primes[k]) == 1) break;
    if (k == 4) break;
  }
  for (i = 0; i < GF_ORDER; i++) {
    gf_exp[i] = gf_exp[i + GF_ORDER] = v;
    gf_log[v] = (uint16_t)i;
    v = sotto__gf16_mul_ref(v, g);
  }
  for (i = 0; i <= SOTTO_SPQR_PTS_MAX; i++) xs[i] = (uint16_t)i;
  for (k = 1; k <= SOTTO_SPQR_PTS_MAX; k++) bary_weights(sys_bw[k], xs, k);
}

void sotto__gf16_init(void) {
  pthread_once(&gf_once, gf_build);
}

uint16_t sotto__gf16_mul(uint16_t a, uint16_t b) {
  sotto__gf16_init();
  return gmul(a, b);
}

uint16_t sotto__gf16_inv(uint16_t a) {
  sotto__gf16_init();
  return a == 0 ? 0 : ginv(a);
}

/* Lagrange weights at x (not among xs) from the barycentric weights bw. */
static void weights_at(uint16_t *w, const uint16_t *bw, const uint16_t *xs, uint32_t n, uint16_t x) {
  uint16_t l = 1;
  uint32_t j;
  for (j = 0; j < n; j++) l = gmul(l, (uint16_t)(x ^ xs[j]));
  for (j = 0; j < n; j++) w[j] = gmul(gmul(l, bw[j]), ginv((uint16_t)(x ^ xs[j])));
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
  sotto__gf16_init();
  for (j = 0; j <= SOTTO_SPQR_PTS_MAX; j++) xs[j] = (uint16_t)j;
  for (i = 0; i < SOTTO_SPQR_POLYS; i++) {
    k = points_of(e->n_vals, i);
    if (index < k) {
      v = e->vals[(uint32_t)index * SOTTO_SPQR_POLYS + i];
    } else {
      /* Every polynomial has its points at x = 0..k-1 and k takes at most
       * two values: the weights at `index` are shared. */
      if (k != wk) {
        weights_at(w, sys_bw[k], xs, k, index);
        wk = k;
      }
      v = 0;
      for (j = 0; j < k; j++) v ^= gmul(e->vals[j * SOTTO_SPQR_POLYS + i], w[j]);
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

uint16_t sotto__spqr_dec_add(struct sotto__spqr_dec *d, uint16_t index, const uint8_t data[32]) {
  uint32_t i, j, need;
  uint16_t mask = 0;
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
    mask |= (uint16_t)(1u << i);
  }
  return mask;
}

int sotto__spqr_dec_would_complete(const struct sotto__spqr_dec *d, uint16_t index) {
  uint32_t i, j, need, n;
  for (i = 0; i < SOTTO_SPQR_POLYS; i++) {
    need = points_of(d->n_vals, i);
    n = d->n[i];
    if (n >= need) continue;
    /* Short: dec_add takes the point unless it is held already. */
    for (j = 0; j < n && d->x[i][j] != index; j++) {
    }
    if (j < n || n + 1 < need) return 0;
  }
  return 1;
}

void sotto__spqr_dec_remove(struct sotto__spqr_dec *d, uint16_t index, uint16_t mask) {
  uint32_t i, j;
  for (i = 0; i < SOTTO_SPQR_POLYS; i++) {
    if (!(mask >> i & 1)) continue;
    for (j = 0; j < d->n[i] && d->x[i][j] != index; j++) {
    }
    if (j == d->n[i]) continue;
    memmove(&d->x[i][j], &d->x[i][j + 1], (d->n[i] - j - 1) * sizeof d->x[i][0]);
    memmove(&d->y[i][j], &d->y[i][j + 1], (d->n[i] - j - 1) * sizeof d->y[i][0]);
    d->n[i]--;
    d->x[i][d->n[i]] = d->y[i][d->n[i]] = 0;
  }
}

int sotto__spqr_dec_done(const struct sotto__spqr_dec *d, uint8_t *out, size_t cap) {
  /* Weights of each target x for the point set of the polynomial before;
   * the polynomials of one object almost always share their points. */
  uint16_t bw[NPTS], w[SOTTO_SPQR_PTS_MAX][SOTTO_SPQR_PTS_MAX];
  uint8_t have_w[SOTTO_SPQR_PTS_MAX];
  const uint16_t *prev = NULL;
  uint32_t p, x, j, need, prev_need = 0;

  if (cap < (size_t)d->n_vals * 2) return 0;
  for (p = 0; p < SOTTO_SPQR_POLYS; p++)
    if (d->n[p] < points_of(d->n_vals, p)) return 0;
  sotto__gf16_init();
  for (p = 0; p < SOTTO_SPQR_POLYS; p++) {
    /* The first `need` points in x order, as upstream uses. */
    const uint16_t *xs = d->x[p], *ys = d->y[p];
    need = points_of(d->n_vals, p);
    if (need == 0) continue;
    if (prev == NULL || prev_need != need || memcmp(prev, xs, need * sizeof *xs) != 0) {
      bary_weights(bw, xs, need);
      memset(have_w, 0, sizeof have_w);
      prev = xs;
      prev_need = need;
    }
    for (x = 0; x < need; x++) {
      uint16_t v = 0;
      uint32_t i = x * SOTTO_SPQR_POLYS + p;
      for (j = 0; j < need && xs[j] < x; j++) {
      }
      if (j < need && xs[j] == x) {
        v = ys[j];
      } else {
        if (!have_w[x]) {
          weights_at(w[x], bw, xs, need, (uint16_t)x);
          have_w[x] = 1;
        }
        for (j = 0; j < need; j++) v ^= gmul(ys[j], w[x][j]);
      }
      out[2 * i] = (uint8_t)(v >> 8);
      out[2 * i + 1] = (uint8_t)v;
    }
  }
  return 1;
}

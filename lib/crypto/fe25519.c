/* SPDX-License-Identifier: Apache-2.0 */
/* fe25519.c: just enough arithmetic modulo p = 2^255 - 19 to move between
 * the Montgomery (X25519) and Edwards (Ed25519) forms of a public key:
 * u = (1 + y) / (1 - y) and y = (u - 1) / (u + 1).
 *
 * libsodium exposes no field arithmetic, and its own Edwards-to-Montgomery
 * conversion also runs a prime-order subgroup check (a full scalar
 * multiplication) that a key we just computed as a*B does not need.
 * Five 51-bit limbs, products in unsigned __int128. The code has no
 * secret-dependent branches or indices, although it is only applied to
 * public keys. */
#include <string.h>

#include "fe25519.h"

#define MASK51 ((UINT64_C(1) << 51) - 1)

typedef unsigned __int128 u128;

static uint64_t load64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
  return v;
}

void sotto__fe_frombytes(struct sotto__fe *h, const uint8_t s[32]) {
  /* Bit 255 is ignored, as RFC 7748 asks for u-coordinates. */
  h->v[0] = load64(s) & MASK51;
  h->v[1] = (load64(s + 6) >> 3) & MASK51;
  h->v[2] = (load64(s + 12) >> 6) & MASK51;
  h->v[3] = (load64(s + 19) >> 1) & MASK51;
  h->v[4] = (load64(s + 24) >> 12) & MASK51;
}

static void carry(struct sotto__fe *h) {
  uint64_t c;
  c = h->v[0] >> 51; h->v[0] &= MASK51; h->v[1] += c;
  c = h->v[1] >> 51; h->v[1] &= MASK51; h->v[2] += c;
  c = h->v[2] >> 51; h->v[2] &= MASK51; h->v[3] += c;
  c = h->v[3] >> 51; h->v[3] &= MASK51; h->v[4] += c;
  c = h->v[4] >> 51; h->v[4] &= MASK51; h->v[0] += c * 19;
}

void sotto__fe_tobytes(uint8_t s[32], const struct sotto__fe *f) {
  struct sotto__fe h = *f;
  uint64_t q;

  carry(&h);
  carry(&h);
  /* Now h < 2^255 + small; subtract p if h >= p: q = 1 iff h + 19 >= 2^255. */
  q = (h.v[0] + 19) >> 51;
  q = (h.v[1] + q) >> 51;
  q = (h.v[2] + q) >> 51;
  q = (h.v[3] + q) >> 51;
  q = (h.v[4] + q) >> 51;
  h.v[0] += 19 * q;
  /* Carry without wrapping around: the bit that leaves limb 4 is the 2^255
   * that adding 19q produced when h >= p, and it is dropped. */
  h.v[1] += h.v[0] >> 51; h.v[0] &= MASK51;
  h.v[2] += h.v[1] >> 51; h.v[1] &= MASK51;
  h.v[3] += h.v[2] >> 51; h.v[2] &= MASK51;
  h.v[4] += h.v[3] >> 51; h.v[3] &= MASK51;
  h.v[4] &= MASK51;
  {
    uint64_t t0 = h.v[0] | (h.v[1] << 51);
    uint64_t t1 = (h.v[1] >> 13) | (h.v[2] << 38);
    uint64_t t2 = (h.v[2] >> 26) | (h.v[3] << 25);
    uint64_t t3 = (h.v[3] >> 39) | (h.v[4] << 12);
    uint64_t t[4] = {t0, t1, t2, t3};
    for (int i = 0; i < 4; i++)
      for (int j = 0; j < 8; j++) s[8 * i + j] = (uint8_t)(t[i] >> (8 * j));
  }
}

void sotto__fe_one(struct sotto__fe *h) {
  memset(h, 0, sizeof *h);
  h->v[0] = 1;
}

void sotto__fe_add(struct sotto__fe *h, const struct sotto__fe *f, const struct sotto__fe *g) {
  for (int i = 0; i < 5; i++) h->v[i] = f->v[i] + g->v[i];
  carry(h);
}

void sotto__fe_sub(struct sotto__fe *h, const struct sotto__fe *f, const struct sotto__fe *g) {
  /* Add 4p before subtracting so no limb goes negative (inputs are carried,
   * so each limb is below 2^52). */
  static const uint64_t four_p[5] = {0x1fffffffffffb4ULL, 0x1ffffffffffffcULL,
                                     0x1ffffffffffffcULL, 0x1ffffffffffffcULL,
                                     0x1ffffffffffffcULL};
  for (int i = 0; i < 5; i++) h->v[i] = f->v[i] + four_p[i] - g->v[i];
  carry(h);
}

void sotto__fe_mul(struct sotto__fe *h, const struct sotto__fe *f, const struct sotto__fe *g) {
  const uint64_t *a = f->v, *b = g->v;
  uint64_t b1 = b[1] * 19, b2 = b[2] * 19, b3 = b[3] * 19, b4 = b[4] * 19;
  u128 r0 = (u128)a[0] * b[0] + (u128)a[1] * b4 + (u128)a[2] * b3 + (u128)a[3] * b2 + (u128)a[4] * b1;
  u128 r1 = (u128)a[0] * b[1] + (u128)a[1] * b[0] + (u128)a[2] * b4 + (u128)a[3] * b3 + (u128)a[4] * b2;
  u128 r2 = (u128)a[0] * b[2] + (u128)a[1] * b[1] + (u128)a[2] * b[0] + (u128)a[3] * b4 + (u128)a[4] * b3;
  u128 r3 = (u128)a[0] * b[3] + (u128)a[1] * b[2] + (u128)a[2] * b[1] + (u128)a[3] * b[0] + (u128)a[4] * b4;
  u128 r4 = (u128)a[0] * b[4] + (u128)a[1] * b[3] + (u128)a[2] * b[2] + (u128)a[3] * b[1] + (u128)a[4] * b[0];
  uint64_t c;
  r1 += (uint64_t)(r0 >> 51); h->v[0] = (uint64_t)r0 & MASK51;
  r2 += (uint64_t)(r1 >> 51); h->v[1] = (uint64_t)r1 & MASK51;
  r3 += (uint64_t)(r2 >> 51); h->v[2] = (uint64_t)r2 & MASK51;
  r4 += (uint64_t)(r3 >> 51); h->v[3] = (uint64_t)r3 & MASK51;
  c = (uint64_t)(r4 >> 51); h->v[4] = (uint64_t)r4 & MASK51;
  h->v[0] += c * 19;
  c = h->v[0] >> 51; h->v[0] &= MASK51; h->v[1] += c;
}

static void sqn(struct sotto__fe *h, const struct sotto__fe *f, int n) {
  sotto__fe_mul(h, f, f);
  for (int i = 1; i < n; i++) sotto__fe_mul(h, h, h);
}

/* z^(p-2) by the usual addition chain for 2^255 - 21. Returns 0 for z = 0. */
void sotto__fe_invert(struct sotto__fe *out, const struct sotto__fe *z) {
  struct sotto__fe t0, t1, t2, t3;
  sqn(&t0, z, 1);          /* z^2 */
  sqn(&t1, &t0, 2);        /* z^8 */
  sotto__fe_mul(&t1, z, &t1);   /* z^9 */
  sotto__fe_mul(&t0, &t0, &t1); /* z^11 */
  sqn(&t2, &t0, 1);        /* z^22 */
  sotto__fe_mul(&t1, &t1, &t2); /* z^(2^5-1) */
  sqn(&t2, &t1, 5);
  sotto__fe_mul(&t1, &t2, &t1); /* 2^10-1 */
  sqn(&t2, &t1, 10);
  sotto__fe_mul(&t2, &t2, &t1); /* 2^20-1 */
  sqn(&t3, &t2, 20);
  sotto__fe_mul(&t2, &t3, &t2); /* 2^40-1 */
  sqn(&t2, &t2, 10);
  sotto__fe_mul(&t1, &t2, &t1); /* 2^50-1 */
  sqn(&t2, &t1, 50);
  sotto__fe_mul(&t2, &t2, &t1); /* 2^100-1 */
  sqn(&t3, &t2, 100);
  sotto__fe_mul(&t2, &t3, &t2); /* 2^200-1 */
  sqn(&t2, &t2, 50);
  sotto__fe_mul(&t1, &t2, &t1); /* 2^250-1 */
  sqn(&t1, &t1, 5);        /* 2^255-32 */
  sotto__fe_mul(out, &t1, &t0); /* 2^255-21 */
}

int sotto__fe_iszero(const struct sotto__fe *f) {
  uint8_t s[32];
  uint8_t acc = 0;
  sotto__fe_tobytes(s, f);
  for (int i = 0; i < 32; i++) acc |= s[i];
  return acc == 0;
}

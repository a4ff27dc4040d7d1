/* SPDX-License-Identifier: Apache-2.0 */
/* ed_vt.c: Ed25519 group arithmetic for the VRF. Everything but
 * sotto__ge_mul_ct (at the end) is variable time, for PUBLIC data only: VRF
 * verification (s*B - c*Y, s*H - c*Gamma with public s, c, Y, H, Gamma)
 * and hashing public inputs to the curve; never give those a secret.
 *
 * Why not libsodium: its variable-base multiplication runs a prime-order
 * subgroup check (a second full multiplication) on every call, and its
 * point addition decodes both inputs (a square root each); a VRF
 * verification made of them costs about twice this. Extended coordinates
 * (Hisil et al. 2008, a = -1), RFC 8032 decoding with the canonical-y
 * check, and a joint signed-window (width 5) double multiplication. Field
 * arithmetic: lib/crypto/fe25519. Tested through the RFC 9381 vectors and
 * against libsodium in test_kt. */
#include <string.h>

#include "crypto/crypto.h"
#include "crypto/fe25519.h"
#include "kt/kt_internal.h"

typedef struct sotto__fe fe;

static const uint8_t D_B[32] = {0xa3, 0x78, 0x59, 0x13, 0xca, 0x4d, 0xeb, 0x75, 0xab, 0xd8, 0x41,
                                0x41, 0x4d, 0x0a, 0x70, 0x00, 0x98, 0xe8, 0x79, 0x77, 0x79, 0x40,
                                0xc7, 0x8c, 0x73, 0xfe, 0x6f, 0x2b, 0xee, 0x6c, 0x03, 0x52};
static const uint8_t D2_B[32] = {0x59, 0xf1, 0xb2, 0x26, 0x94, 0x9b, 0xd6, 0xeb, 0x56, 0xb1, 0x83,
                                 0x82, 0x9a, 0x14, 0xe0, 0x00, 0x30, 0xd1, 0xf3, 0xee, 0xf2, 0x80,
                                 0x8e, 0x19, 0xe7, 0xfc, 0xdf, 0x56, 0xdc, 0xd9, 0x06, 0x24};
static const uint8_t SQRTM1_B[32] = {0xb0, 0xa0, 0x0e, 0x4a, 0x27, 0x1b, 0xee, 0xc4, 0x78, 0xe4, 0x2f,
                                     0xad, 0x06, 0x18, 0x43, 0x2f, 0xa7, 0xd7, 0xfb, 0x3d, 0x99, 0x00,
                                     0x4d, 0x2b, 0x0b, 0xdf, 0xc1, 0x4f, 0x80, 0x24, 0x83, 0x2b};
static const uint8_t BASE_B[32] = {0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
                                   0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
                                   0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66};

/* Squaring with the symmetric products folded (15 multiplications instead
 * of 25); limbs and carries as in fe25519.c's multiplication. */
static void fsq(fe *h, const fe *f) {
  typedef unsigned __int128 u128;
  const uint64_t M = (UINT64_C(1) << 51) - 1;
  const uint64_t *a = f->v;
  uint64_t d0 = 2 * a[0], d1 = 2 * a[1], a3_19 = 19 * a[3], a4_19 = 19 * a[4], c;
  u128 r0 = (u128)a[0] * a[0] + (u128)d1 * a4_19 + (u128)(2 * a[2]) * a3_19;
  u128 r1 = (u128)d0 * a[1] + (u128)(2 * a[2]) * a4_19 + (u128)a[3] * a3_19;
  u128 r2 = (u128)d0 * a[2] + (u128)a[1] * a[1] + (u128)(2 * a[3]) * a4_19;
  u128 r3 = (u128)d0 * a[3] + (u128)d1 * a[2] + (u128)a[4] * a4_19;
  u128 r4 = (u128)d0 * a[4] + (u128)d1 * a[3] + (u128)a[2] * a[2];
  r1 += (uint64_t)(r0 >> 51);
  h->v[0] = (uint64_t)r0 & M;
  r2 += (uint64_t)(r1 >> 51);
  h->v[1] = (uint64_t)r1 & M;
  r3 += (uint64_t)(r2 >> 51);
  h->v[2] = (uint64_t)r2 & M;
  r4 += (uint64_t)(r3 >> 51);
  h->v[3] = (uint64_t)r3 & M;
  c = (uint64_t)(r4 >> 51);
  h->v[4] = (uint64_t)r4 & M;
  h->v[0] += c * 19;
  c = h->v[0] >> 51;
  h->v[0] &= M;
  h->v[1] += c;
}

static void fsqn(fe *h, const fe *f, int n) {
  fsq(h, f);
  while (--n > 0) fsq(h, h);
}

static void fneg(fe *h, const fe *f) {
  fe z;
  memset(&z, 0, sizeof z);
  sotto__fe_sub(h, &z, f);
}

/* z^((p-5)/8) = z^(2^252 - 3). */
static void pow22523(fe *out, const fe *z) {
  fe t0, t1, t2;
  fsq(&t0, z);
  fsqn(&t1, &t0, 2);
  sotto__fe_mul(&t1, z, &t1);
  sotto__fe_mul(&t0, &t0, &t1);
  fsq(&t0, &t0);
  sotto__fe_mul(&t0, &t1, &t0); /* 2^5 - 1 */
  fsqn(&t1, &t0, 5);
  sotto__fe_mul(&t0, &t1, &t0); /* 2^10 - 1 */
  fsqn(&t1, &t0, 10);
  sotto__fe_mul(&t1, &t1, &t0); /* 2^20 - 1 */
  fsqn(&t2, &t1, 20);
  sotto__fe_mul(&t1, &t2, &t1); /* 2^40 - 1 */
  fsqn(&t1, &t1, 10);
  sotto__fe_mul(&t0, &t1, &t0); /* 2^50 - 1 */
  fsqn(&t1, &t0, 50);
  sotto__fe_mul(&t1, &t1, &t0); /* 2^100 - 1 */
  fsqn(&t2, &t1, 100);
  sotto__fe_mul(&t1, &t2, &t1); /* 2^200 - 1 */
  fsqn(&t1, &t1, 50);
  sotto__fe_mul(&t0, &t1, &t0); /* 2^250 - 1 */
  fsqn(&t0, &t0, 2);            /* 2^252 - 4 */
  sotto__fe_mul(out, &t0, z);   /* 2^252 - 3 */
}

static int feq(const fe *a, const fe *b) {
  uint8_t x[32], y[32];
  sotto__fe_tobytes(x, a);
  sotto__fe_tobytes(y, b);
  return memcmp(x, y, 32) == 0;
}

static int fodd(const fe *a) {
  uint8_t x[32];
  sotto__fe_tobytes(x, a);
  return x[0] & 1;
}

void sotto__ge_identity(struct sotto__ge *p) {
  memset(p, 0, sizeof *p);
  sotto__fe_one(&p->Y);
  sotto__fe_one(&p->Z);
}

/* RFC 8032 5.1.3, with y < p required (a non-canonical encoding fails). */
int sotto__ge_decode(struct sotto__ge *p, const uint8_t s[32]) {
  fe u, v, v3, vxx, t, d, one;
  uint8_t y[32], back[32];
  int sign = s[31] >> 7;
  memcpy(y, s, 32);
  y[31] &= 0x7F;
  sotto__fe_frombytes(&p->Y, y);
  sotto__fe_tobytes(back, &p->Y);
  if (memcmp(back, y, 32) != 0) return -1;
  sotto__fe_frombytes(&d, D_B);
  sotto__fe_one(&one);
  fsq(&u, &p->Y);
  sotto__fe_mul(&v, &u, &d);
  sotto__fe_sub(&u, &u, &one); /* u = y^2 - 1 */
  sotto__fe_add(&v, &v, &one); /* v = d y^2 + 1 */
  fsq(&v3, &v);
  sotto__fe_mul(&v3, &v3, &v); /* v^3 */
  fsq(&t, &v3);
  sotto__fe_mul(&t, &t, &v);
  sotto__fe_mul(&t, &t, &u); /* u v^7 */
  pow22523(&t, &t);
  sotto__fe_mul(&t, &t, &v3);
  sotto__fe_mul(&p->X, &t, &u); /* x = u v^3 (u v^7)^((p-5)/8) */
  fsq(&vxx, &p->X);
  sotto__fe_mul(&vxx, &vxx, &v);
  if (!feq(&vxx, &u)) {
    fneg(&t, &u);
    if (!feq(&vxx, &t)) return -1;
    sotto__fe_frombytes(&t, SQRTM1_B);
    sotto__fe_mul(&p->X, &p->X, &t);
  }
  if (sotto__fe_iszero(&p->X) && sign) return -1;
  if (fodd(&p->X) != sign) fneg(&p->X, &p->X);
  sotto__fe_one(&p->Z);
  sotto__fe_mul(&p->T, &p->X, &p->Y);
  return 0;
}

void sotto__ge_encode(uint8_t s[32], const struct sotto__ge *p) {
  fe zi, x, y;
  sotto__fe_invert(&zi, &p->Z);
  sotto__fe_mul(&x, &p->X, &zi);
  sotto__fe_mul(&y, &p->Y, &zi);
  sotto__fe_tobytes(s, &y);
  s[31] |= (uint8_t)(fodd(&x) << 7);
}

/* add-2008-hwcd-3 (a = -1) */
void sotto__ge_add(struct sotto__ge *r, const struct sotto__ge *p, const struct sotto__ge *q) {
  fe a, b, c, d, e, f, g, h, t, d2;
  sotto__fe_sub(&a, &p->Y, &p->X);
  sotto__fe_sub(&t, &q->Y, &q->X);
  sotto__fe_mul(&a, &a, &t);
  sotto__fe_add(&b, &p->Y, &p->X);
  sotto__fe_add(&t, &q->Y, &q->X);
  sotto__fe_mul(&b, &b, &t);
  sotto__fe_frombytes(&d2, D2_B);
  sotto__fe_mul(&c, &p->T, &q->T);
  sotto__fe_mul(&c, &c, &d2);
  sotto__fe_mul(&d, &p->Z, &q->Z);
  sotto__fe_add(&d, &d, &d);
  sotto__fe_sub(&e, &b, &a);
  sotto__fe_sub(&f, &d, &c);
  sotto__fe_add(&g, &d, &c);
  sotto__fe_add(&h, &b, &a);
  sotto__fe_mul(&r->X, &e, &f);
  sotto__fe_mul(&r->Y, &g, &h);
  sotto__fe_mul(&r->T, &e, &h);
  sotto__fe_mul(&r->Z, &f, &g);
}

/* dbl-2008-hwcd (a = -1) */
void sotto__ge_dbl(struct sotto__ge *r, const struct sotto__ge *p) {
  fe a, b, c, d, e, f, g, h, t;
  fsq(&a, &p->X);
  fsq(&b, &p->Y);
  fsq(&c, &p->Z);
  sotto__fe_add(&c, &c, &c);
  fneg(&d, &a);
  sotto__fe_add(&t, &p->X, &p->Y);
  fsq(&e, &t);
  sotto__fe_sub(&e, &e, &a);
  sotto__fe_sub(&e, &e, &b);
  sotto__fe_add(&g, &d, &b);
  sotto__fe_sub(&f, &g, &c);
  sotto__fe_sub(&h, &d, &b);
  sotto__fe_mul(&r->X, &e, &f);
  sotto__fe_mul(&r->Y, &g, &h);
  sotto__fe_mul(&r->T, &e, &h);
  sotto__fe_mul(&r->Z, &f, &g);
}

void sotto__ge_neg(struct sotto__ge *r, const struct sotto__ge *p) {
  *r = *p;
  fneg(&r->X, &p->X);
  fneg(&r->T, &p->T);
}

int sotto__ge_is_identity(const struct sotto__ge *p) {
  /* X = 0 and Y = Z */
  return sotto__fe_iszero(&p->X) && feq(&p->Y, &p->Z);
}

/* Signed window-5 digits of a scalar below 2^253 (ref10's "slide"). */
static void slide(signed char r[256], const uint8_t a[32]) {
  int i, b, k;
  for (i = 0; i < 256; i++) r[i] = (signed char)(1 & (a[i >> 3] >> (i & 7)));
  for (i = 0; i < 256; i++) {
    if (!r[i]) continue;
    for (b = 1; b <= 6 && i + b < 256; b++) {
      if (!r[i + b]) continue;
      if (r[i] + (r[i + b] << b) <= 15) {
        r[i] = (signed char)(r[i] + (r[i + b] << b));
        r[i + b] = 0;
      } else if (r[i] - (r[i + b] << b) >= -15) {
        r[i] = (signed char)(r[i] - (r[i + b] << b));
        for (k = i + b; k < 256; k++) {
          if (!r[k]) {
            r[k] = 1;
            break;
          }
          r[k] = 0;
        }
      } else {
        break;
      }
    }
  }
}

static void odd_multiples(struct sotto__ge t[8], const struct sotto__ge *p) {
  struct sotto__ge p2;
  int i;
  t[0] = *p;
  sotto__ge_dbl(&p2, p);
  for (i = 1; i < 8; i++) sotto__ge_add(&t[i], &t[i - 1], &p2);
}

static void add_digit(struct sotto__ge *r, const struct sotto__ge t[8], signed char dgt) {
  struct sotto__ge n;
  if (dgt > 0) {
    sotto__ge_add(r, r, &t[dgt / 2]);
  } else if (dgt < 0) {
    sotto__ge_neg(&n, &t[-dgt / 2]);
    sotto__ge_add(r, r, &n);
  }
}

/* r = a*P + b*Q (scalars little-endian, below 2^253). Q NULL: the base point. */
void sotto__ge_double_mul(struct sotto__ge *r, const uint8_t a[32], const struct sotto__ge *p, const uint8_t b[32],
                          const struct sotto__ge *q) {
  signed char na[256], nb[256];
  struct sotto__ge tp[8], tq[8], base;
  int i;
  if (!q) {
    if (sotto__ge_decode(&base, BASE_B) != 0) {
      sotto__ge_identity(r);
      return;
    }
    q = &base;
  }
  slide(na, a);
  slide(nb, b);
  odd_multiples(tp, p);
  odd_multiples(tq, q);
  sotto__ge_identity(r);
  for (i = 255; i >= 0 && !na[i] && !nb[i]; i--) {
  }
  for (; i >= 0; i--) {
    sotto__ge_dbl(r, r);
    add_digit(r, tp, na[i]);
    add_digit(r, tq, nb[i]);
  }
}

/* ---- constant time: secret scalars ------------------------------------------
 *
 * r = a*P for a SECRET scalar a (below 2^253) and a public point P: 64
 * signed 4-bit windows (digits -8..8) from the top, four doublings and one
 * addition of a table entry chosen by a masked scan of all 9 entries
 * (0..8 P) and negated by a mask, for every window whatever its digit
 * (T[0] is the identity: the unified addition
 * formula is complete on this curve, a = -1 square and d not a square). No
 * branch or memory index depends on a; the field arithmetic is branch-free.
 * libsodium's equivalent repeats a subgroup check (a second multiplication)
 * on every call, which the VRF's own points never need. */
static void fe_cmov(struct sotto__fe *f, const struct sotto__fe *g, uint64_t mask) {
  int i;
  for (i = 0; i < 5; i++) f->v[i] ^= mask & (f->v[i] ^ g->v[i]);
}

/* A table entry in the form the addition wants: Y+X, Y-X, 2Z, 2dT (one
 * multiplication and the constant's decoding saved per addition). */
struct ge_cached {
  fe YpX, YmX, Z2, T2d;
};

static void to_cached(struct ge_cached *c, const struct sotto__ge *p, const fe *d2) {
  sotto__fe_add(&c->YpX, &p->Y, &p->X);
  sotto__fe_sub(&c->YmX, &p->Y, &p->X);
  sotto__fe_add(&c->Z2, &p->Z, &p->Z);
  sotto__fe_mul(&c->T2d, &p->T, d2);
}

/* add-2008-hwcd-3 (a = -1) with q cached: 8 multiplications. */
static void add_cached(struct sotto__ge *r, const struct sotto__ge *p, const struct ge_cached *q) {
  fe a, b, c, d, e, f, g, h;
  sotto__fe_sub(&a, &p->Y, &p->X);
  sotto__fe_mul(&a, &a, &q->YmX);
  sotto__fe_add(&b, &p->Y, &p->X);
  sotto__fe_mul(&b, &b, &q->YpX);
  sotto__fe_mul(&c, &p->T, &q->T2d);
  sotto__fe_mul(&d, &p->Z, &q->Z2);
  sotto__fe_sub(&e, &b, &a);
  sotto__fe_sub(&f, &d, &c);
  sotto__fe_add(&g, &d, &c);
  sotto__fe_add(&h, &b, &a);
  sotto__fe_mul(&r->X, &e, &f);
  sotto__fe_mul(&r->Y, &g, &h);
  sotto__fe_mul(&r->T, &e, &h);
  sotto__fe_mul(&r->Z, &f, &g);
}

/* dbl-2008-hwcd without T (a doubling followed by another doubling never
 * reads T): 4 squarings and 3 multiplications. */
static void dbl_no_t(struct sotto__ge *r, const struct sotto__ge *p) {
  fe a, b, c, d, e, f, g, h, t;
  fsq(&a, &p->X);
  fsq(&b, &p->Y);
  fsq(&c, &p->Z);
  sotto__fe_add(&c, &c, &c);
  fneg(&d, &a);
  sotto__fe_add(&t, &p->X, &p->Y);
  fsq(&e, &t);
  sotto__fe_sub(&e, &e, &a);
  sotto__fe_sub(&e, &e, &b);
  sotto__fe_add(&g, &d, &b);
  sotto__fe_sub(&f, &g, &c);
  sotto__fe_sub(&h, &d, &b);
  sotto__fe_mul(&r->X, &e, &f);
  sotto__fe_mul(&r->Y, &g, &h);
  sotto__fe_mul(&r->Z, &f, &g);
}

static void cached_cmov(struct ge_cached *r, const struct ge_cached *p, uint64_t mask) {
  fe_cmov(&r->YpX, &p->YpX, mask);
  fe_cmov(&r->YmX, &p->YmX, mask);
  fe_cmov(&r->Z2, &p->Z2, mask);
  fe_cmov(&r->T2d, &p->T2d, mask);
}

/* The cached point -q: (Y-X, Y+X, 2Z, -2dT), taken when mask is all ones. */
static void cached_cneg(struct ge_cached *q, uint64_t mask) {
  struct ge_cached n;
  fe zero;
  memset(&zero, 0, sizeof zero);
  n.YpX = q->YmX;
  n.YmX = q->YpX;
  n.Z2 = q->Z2;
  sotto__fe_sub(&n.T2d, &zero, &q->T2d);
  cached_cmov(q, &n, mask);
  sotto__wipe(&n, sizeof n);
}

void sotto__ge_mul_ct(struct sotto__ge *r, const uint8_t a[32], const struct sotto__ge *p) {
  struct sotto__ge acc, id;
  struct ge_cached t[9], sel;
  int8_t e[64];
  int8_t carry = 0;
  fe d2;
  int i, j;
  /* Signed radix-16 digits: e[i] in [-8, 8) for i < 63, and e[63] in
   * [0, 2] since a < 2^253; a = sum e[i] 16^i. Branch-free. */
  for (i = 0; i < 32; i++) {
    e[2 * i] = (int8_t)(a[i] & 15);
    e[2 * i + 1] = (int8_t)(a[i] >> 4);
  }
  for (i = 0; i < 63; i++) {
    e[i] = (int8_t)(e[i] + carry);
    carry = (int8_t)((e[i] + 8) >> 4);
    e[i] = (int8_t)(e[i] - carry * 16);
  }
  e[63] = (int8_t)(e[63] + carry);
  /* t[j] = j*P for j = 0..8 (t[0] the identity) */
  sotto__fe_frombytes(&d2, D2_B);
  sotto__ge_identity(&id);
  to_cached(&t[0], &id, &d2);
  acc = *p;
  to_cached(&t[1], &acc, &d2);
  for (j = 2; j < 9; j++) {
    add_cached(&acc, &acc, &t[1]);
    to_cached(&t[j], &acc, &d2);
  }
  sotto__ge_identity(r);
  for (i = 63; i >= 0; i--) {
    uint64_t neg = (uint64_t)((int64_t)e[i] >> 63);           /* all ones when e[i] < 0 */
    uint64_t mag = (uint64_t)(((int64_t)e[i] ^ (int64_t)neg) - (int64_t)neg); /* |e[i]|, 0..8 */
    dbl_no_t(r, r);
    dbl_no_t(r, r);
    dbl_no_t(r, r);
    sotto__ge_dbl(r, r);
    sel = t[0];
    for (j = 1; j < 9; j++) cached_cmov(&sel, &t[j], (uint64_t)0 - (((mag ^ (uint64_t)j) - 1) >> 63));
    cached_cneg(&sel, neg);
    add_cached(r, r, &sel);
  }
  sotto__wipe(e, sizeof e);
  sotto__wipe(&carry, sizeof carry);
  sotto__wipe(&sel, sizeof sel);
  sotto__wipe(t, sizeof t);
  sotto__wipe(&acc, sizeof acc);
}

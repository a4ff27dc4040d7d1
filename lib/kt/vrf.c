/* SPDX-License-Identifier: Apache-2.0 */
/* vrf.c: ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381 section 5, suite_string 0x03)
 * on libsodium 1.0.18's Ed25519 group operations.
 *
 *   encode_to_curve (TAI, 5.4.1.1): for ctr = 0..255,
 *     h = SHA-512(0x03 || 0x01 || PK || alpha || ctr || 0x00)[0..32];
 *     the first h that decodes as a curve point, times the cofactor 8.
 *   prove (5.1): Gamma = x*H, k = SHA-512(hash(sk)[32..64] || H) mod q,
 *     c = challenge(Y, H, Gamma, k*B, k*H), s = k + c*x mod q.
 *   verify (5.3): U = s*B - c*Y, V = s*H - c*Gamma, c == challenge(...).
 *   proof_to_hash (5.2): beta = SHA-512(0x03 || 0x03 || 8*Gamma || 0x00).
 *
 * The secret scalars (x, k) go only through constant-time multiplications
 * (sotto__ge_mul_ct, libsodium's base-point multiplication) and libsodium's
 * scalar arithmetic; verification and hashing to the curve use public data
 * only and run on the variable-time arithmetic of ed_vt.c. */
#include <sodium.h>
#include <string.h>

#include <sotto/kt.h>

#include "crypto/crypto.h"
#include "kt/kt_internal.h"

#define SUITE 0x03

/* TAI encode_to_curve, on public data (variable time); h_out (the
 * encoding, one inversion) may be NULL when only the point is needed. */
static int encode_to_curve(uint8_t h_out[32], struct sotto__ge *hp, const uint8_t pk[32], const uint8_t *alpha,
                           size_t alpha_len) {
  static const uint8_t front[2] = {SUITE, 0x01};
  unsigned ctr;
  for (ctr = 0; ctr < 256; ctr++) {
    crypto_hash_sha512_state st;
    struct sotto__ge p;
    uint8_t h[64], tail[2] = {(uint8_t)ctr, 0x00};
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, front, 2);
    crypto_hash_sha512_update(&st, pk, 32);
    if (alpha_len) crypto_hash_sha512_update(&st, alpha, alpha_len);
    crypto_hash_sha512_update(&st, tail, 2);
    crypto_hash_sha512_final(&st, h);
    if (sotto__ge_decode(&p, h) != 0) continue;
    /* cofactor clearing: 8 * P */
    sotto__ge_dbl(hp, &p);
    sotto__ge_dbl(hp, hp);
    sotto__ge_dbl(hp, hp);
    if (sotto__ge_is_identity(hp)) return -1;
    if (h_out) sotto__ge_encode(h_out, hp);
    return 0;
  }
  return -1;
}

static void challenge(uint8_t c[16], const uint8_t y[32], const uint8_t h[32], const uint8_t gamma[32],
                      const uint8_t u[32], const uint8_t v[32]) {
  static const uint8_t front[2] = {SUITE, 0x02}, back[1] = {0x00};
  crypto_hash_sha512_state st;
  uint8_t out[64];
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, front, 2);
  crypto_hash_sha512_update(&st, y, 32);
  crypto_hash_sha512_update(&st, h, 32);
  crypto_hash_sha512_update(&st, gamma, 32);
  crypto_hash_sha512_update(&st, u, 32);
  crypto_hash_sha512_update(&st, v, 32);
  crypto_hash_sha512_update(&st, back, 1);
  crypto_hash_sha512_final(&st, out);
  memcpy(c, out, 16);
}

static void point_to_hash(uint8_t beta[64], const struct sotto__ge *gp) {
  static const uint8_t front[2] = {SUITE, 0x03}, back[1] = {0x00};
  crypto_hash_sha512_state st;
  struct sotto__ge g;
  uint8_t g8[32];
  sotto__ge_dbl(&g, gp);
  sotto__ge_dbl(&g, &g);
  sotto__ge_dbl(&g, &g);
  sotto__ge_encode(g8, &g);
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, front, 2);
  crypto_hash_sha512_update(&st, g8, 32);
  crypto_hash_sha512_update(&st, back, 1);
  crypto_hash_sha512_final(&st, beta);
}

static int gamma_to_hash(uint8_t beta[64], const uint8_t gamma[32]) {
  struct sotto__ge g;
  if (sotto__ge_decode(&g, gamma) != 0) return -1;
  point_to_hash(beta, &g);
  return 0;
}

/* The secret scalar x (RFC 8032 clamping, reduced mod q), the nonce prefix
 * and the public key Y = x*B. */
static int expand(uint8_t x[32], uint8_t prefix[32], uint8_t y[32], const uint8_t sk[32]) {
  uint8_t h[64], wide[64] = {0};
  crypto_hash_sha512(h, sk, 32);
  h[0] &= 248;
  h[31] &= 127;
  h[31] |= 64;
  memcpy(wide, h, 32);
  crypto_core_ed25519_scalar_reduce(x, wide);
  if (prefix) memcpy(prefix, h + 32, 32);
  sotto__wipe(h, sizeof h);
  sotto__wipe(wide, sizeof wide);
  if (crypto_scalarmult_ed25519_base_noclamp(y, x) != 0) {
    sotto__wipe(x, 32);
    return SOTTO_ERR_INTERNAL;
  }
  return 0;
}

int sotto__kt_vrf_key_init(struct sotto__vrf_key *k, const uint8_t sk[32]) {
  return expand(k->x, k->prefix, k->y, sk);
}

int sotto_kt_vrf_public_key(uint8_t pk[32], const uint8_t sk[32]) {
  uint8_t x[32];
  int rc;
  if (!pk || !sk) return SOTTO_ERR_USAGE;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  rc = expand(x, NULL, pk, sk);
  sotto__wipe(x, sizeof x);
  return rc;
}

int sotto__kt_vrf_prove_with(uint8_t pi[80], const struct sotto__vrf_key *key, const uint8_t *alpha,
                             size_t alpha_len) {
  uint8_t h[32], gamma[32], k[32], u[32], v[32], c32[32] = {0}, cx[32], kw[64];
  struct sotto__ge hp, gp, vp;
  crypto_hash_sha512_state st;
  int rc = SOTTO_ERR_INTERNAL;
  if (encode_to_curve(h, &hp, key->y, alpha, alpha_len) != 0) goto out;
  /* the secret scalars x and k: constant-time multiplications only */
  sotto__ge_mul_ct(&gp, key->x, &hp);
  sotto__ge_encode(gamma, &gp);
  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, key->prefix, 32);
  crypto_hash_sha512_update(&st, h, 32);
  crypto_hash_sha512_final(&st, kw);
  crypto_core_ed25519_scalar_reduce(k, kw);
  if (crypto_scalarmult_ed25519_base_noclamp(u, k) != 0) goto out;
  sotto__ge_mul_ct(&vp, k, &hp);
  sotto__ge_encode(v, &vp);
  challenge(c32, key->y, h, gamma, u, v);
  crypto_core_ed25519_scalar_mul(cx, c32, key->x);
  memcpy(pi, gamma, 32);
  memcpy(pi + 32, c32, 16);
  crypto_core_ed25519_scalar_add(pi + 48, k, cx);
  rc = 0;
out:
  sotto__wipe(k, sizeof k);
  sotto__wipe(kw, sizeof kw);
  sotto__wipe(cx, sizeof cx);
  sotto__wipe(&st, sizeof st);
  sotto__wipe(&vp, sizeof vp);
  if (rc != 0) sotto__wipe(pi, 80);
  return rc;
}

int sotto_kt_vrf_prove(uint8_t pi[80], const uint8_t sk[32], const uint8_t *alpha, size_t alpha_len) {
  struct sotto__vrf_key k;
  int rc;
  if (!pi || !sk || (!alpha && alpha_len)) return SOTTO_ERR_USAGE;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  if ((rc = expand(k.x, k.prefix, k.y, sk)) == 0) rc = sotto__kt_vrf_prove_with(pi, &k, alpha, alpha_len);
  sotto__wipe(&k, sizeof k);
  return rc;
}

int sotto__kt_vrf_hash_with(uint8_t beta[64], const struct sotto__vrf_key *key, const uint8_t *alpha,
                            size_t alpha_len) {
  struct sotto__ge hp, gp;
  if (encode_to_curve(NULL, &hp, key->y, alpha, alpha_len) != 0) return SOTTO_ERR_INTERNAL;
  sotto__ge_mul_ct(&gp, key->x, &hp);
  point_to_hash(beta, &gp);
  return 0;
}

int sotto_kt_vrf_hash(uint8_t beta[64], const uint8_t sk[32], const uint8_t *alpha, size_t alpha_len) {
  struct sotto__vrf_key k;
  int rc;
  if (!beta || !sk || (!alpha && alpha_len)) return SOTTO_ERR_USAGE;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  if ((rc = expand(k.x, k.prefix, k.y, sk)) == 0) rc = sotto__kt_vrf_hash_with(beta, &k, alpha, alpha_len);
  sotto__wipe(&k, sizeof k);
  return rc;
}

/* Verification: everything is public, so the variable-time arithmetic. */
int sotto_kt_vrf_verify(uint8_t beta[64], const uint8_t pk[32], const uint8_t pi[80], const uint8_t *alpha,
                        size_t alpha_len) {
  uint8_t h[32], c32[32] = {0}, s_wide[64] = {0}, s_red[32], u[32], v[32], c2[16];
  struct sotto__ge y, ny, g, ng, hp, up, vp;
  int rc;
  if (!beta || !pk || !pi || (!alpha && alpha_len)) return SOTTO_ERR_USAGE;
  memset(beta, 0, 64);
  if ((rc = sotto__crypto_init()) != 0) return rc;
  /* validate_key: a point, not of small order */
  if (sotto__ge_decode(&y, pk) != 0) return SOTTO_ERR_INVALID_KEY;
  sotto__ge_dbl(&ny, &y);
  sotto__ge_dbl(&ny, &ny);
  sotto__ge_dbl(&ny, &ny);
  if (sotto__ge_is_identity(&ny)) return SOTTO_ERR_INVALID_KEY;
  /* decode pi: Gamma a point, s < q */
  if (sotto__ge_decode(&g, pi) != 0) return SOTTO_ERR_AUTH;
  memcpy(s_wide, pi + 48, 32);
  crypto_core_ed25519_scalar_reduce(s_red, s_wide);
  if (sodium_memcmp(s_red, pi + 48, 32) != 0) return SOTTO_ERR_AUTH;
  memcpy(c32, pi + 32, 16);
  if (encode_to_curve(h, &hp, pk, alpha, alpha_len) != 0) return SOTTO_ERR_AUTH;
  /* U = s*B - c*Y, V = s*H - c*Gamma */
  sotto__ge_neg(&ny, &y);
  sotto__ge_neg(&ng, &g);
  sotto__ge_double_mul(&up, c32, &ny, s_red, NULL);
  sotto__ge_double_mul(&vp, c32, &ng, s_red, &hp);
  sotto__ge_encode(u, &up);
  sotto__ge_encode(v, &vp);
  challenge(c2, pk, h, pi, u, v);
  if (!sotto__ct_eq(c2, pi + 32, 16)) return SOTTO_ERR_AUTH;
  if (gamma_to_hash(beta, pi) != 0) {
    memset(beta, 0, 64);
    return SOTTO_ERR_AUTH;
  }
  return 0;
}

int sotto__kt_vrf_proof_to_hash(uint8_t beta[64], const uint8_t pi[80]) {
  return gamma_to_hash(beta, pi) == 0 ? 0 : SOTTO_ERR_AUTH;
}

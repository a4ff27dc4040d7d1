/* SPDX-License-Identifier: Apache-2.0 */
/* curve.c: X25519 and libsignal-compatible XEdDSA on libsodium.
 *
 * Key generation computes a*B on the Edwards curve (libsodium's fixed-base
 * table, about twice as fast as a Montgomery ladder from u = 9) and maps the
 * point to its Montgomery u-coordinate with one field inversion. */
#include <sodium.h>
#include <string.h>

#include "crypto.h"
#include "fe25519.h"

static void clamp(uint8_t k[32]) {
  k[0] &= 248;
  k[31] &= 127;
  k[31] |= 64;
}

/* u = (1 + y) / (1 - y) for an Edwards point given by its encoding (the
 * x sign bit is ignored: both points map to the same u). */
static void edwards_to_montgomery(uint8_t u[32], const uint8_t ed[32]) {
  struct sotto__fe y, one, num, den;
  sotto__fe_frombytes(&y, ed);
  sotto__fe_one(&one);
  sotto__fe_add(&num, &one, &y);
  sotto__fe_sub(&den, &one, &y);
  sotto__fe_invert(&den, &den);
  sotto__fe_mul(&num, &num, &den);
  sotto__fe_tobytes(u, &num);
}

int sotto__x25519_public(uint8_t pub[32], const uint8_t priv[32]) {
  uint8_t a[32], A[32];
  int rc = 0;

  memcpy(a, priv, 32);
  clamp(a);
  if (crypto_scalarmult_ed25519_base_noclamp(A, a) != 0) {
    rc = SOTTO_ERR_INVALID_KEY;
    goto out;
  }
  edwards_to_montgomery(pub, A);
out:
  sotto__wipe(a, sizeof a);
  return rc;
}

int sotto__x25519_keygen(uint8_t pub[32], uint8_t priv[32]) {
  int rc = sotto__random(priv, 32);
  if (rc != 0) return rc;
  clamp(priv);
  return sotto__x25519_public(pub, priv);
}

int sotto__x25519(uint8_t shared[32], const uint8_t priv[32], const uint8_t pub[32]) {
  /* libsodium returns -1 for an all-zero output (a small-order peer key). */
  if (crypto_scalarmult(shared, priv, pub) != 0) {
    sotto__wipe(shared, 32);
    return SOTTO_ERR_INVALID_KEY;
  }
  return 0;
}

/* ---- XEdDSA (libsignal variant) ------------------------------------------ */

int sotto__xeddsa_signer_init(struct sotto__xeddsa_signer *s, const uint8_t priv[32]) {
  uint8_t wide[64] = {0};
  uint8_t a[32];
  int rc = 0;

  /* The clamped private key is the scalar; unlike the XEdDSA paper (which
   * negates a to force A's sign bit to 0) libsignal keeps whatever sign bit
   * a*B has, and that bit travels in the signature. */
  memcpy(a, priv, 32);
  clamp(a); /* a no-op for our keys and libsignal's; keeps A matching X25519 */
  if (crypto_scalarmult_ed25519_base_noclamp(s->A, a) != 0) {
    rc = SOTTO_ERR_INVALID_KEY;
    goto out;
  }
  memcpy(wide, a, 32);
  crypto_core_ed25519_scalar_reduce(s->a, wide);
out:
  sotto__wipe(wide, sizeof wide);
  sotto__wipe(a, sizeof a);
  if (rc != 0) sotto__xeddsa_signer_clear(s);
  return rc;
}

void sotto__xeddsa_signer_clear(struct sotto__xeddsa_signer *s) { sotto__wipe(s, sizeof *s); }

int sotto__xeddsa_sign_with(uint8_t sig[64], const struct sotto__xeddsa_signer *s,
                            const uint8_t *msg, size_t len) {
  static const uint8_t prefix[32] = {
      0xFE, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF,
      0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF};
  crypto_hash_sha512_state h;
  uint8_t Z[64], nonce[64], r[32], hram[64], k[32], ka[32];
  int rc;

  if ((rc = sotto__random(Z, sizeof Z)) != 0) goto out;
  /* r = SHA-512(0xFE || 0xFF*31 || a || M || Z) mod L (XEdDSA hash_1). The
   * scalar a fed to the hash is the reduced one: any fixed secret function of
   * the key gives the same security, and the nonce is randomised anyway. */
  crypto_hash_sha512_init(&h);
  crypto_hash_sha512_update(&h, prefix, sizeof prefix);
  crypto_hash_sha512_update(&h, s->a, 32);
  crypto_hash_sha512_update(&h, msg, len);
  crypto_hash_sha512_update(&h, Z, sizeof Z);
  crypto_hash_sha512_final(&h, nonce);
  crypto_core_ed25519_scalar_reduce(r, nonce);
  /* R = rB */
  if (crypto_scalarmult_ed25519_base_noclamp(sig, r) != 0) {
    rc = SOTTO_ERR_INTERNAL;
    goto out;
  }
  /* h = SHA-512(R || A || M) mod L; s = r + h a mod L */
  crypto_hash_sha512_init(&h);
  crypto_hash_sha512_update(&h, sig, 32);
  crypto_hash_sha512_update(&h, s->A, 32);
  crypto_hash_sha512_update(&h, msg, len);
  crypto_hash_sha512_final(&h, hram);
  crypto_core_ed25519_scalar_reduce(k, hram);
  crypto_core_ed25519_scalar_mul(ka, k, s->a);
  crypto_core_ed25519_scalar_add(sig + 32, r, ka);
  /* libsignal: the sign bit of A goes into bit 7 of byte 63. */
  sig[63] = (uint8_t)((sig[63] & 0x7F) | (s->A[31] & 0x80));
out:
  sotto__wipe(&h, sizeof h);
  sotto__wipe(Z, sizeof Z);
  sotto__wipe(nonce, sizeof nonce);
  sotto__wipe(r, sizeof r);
  sotto__wipe(ka, sizeof ka);
  if (rc != 0) sotto__wipe(sig, 64);
  return rc;
}

int sotto__xeddsa_sign(uint8_t sig[64], const uint8_t priv[32], const uint8_t *msg, size_t len) {
  struct sotto__xeddsa_signer s;
  int rc = sotto__xeddsa_signer_init(&s, priv);
  if (rc == 0) rc = sotto__xeddsa_sign_with(sig, &s, msg, len);
  sotto__xeddsa_signer_clear(&s);
  return rc;
}

int sotto__xeddsa_edwards_key(uint8_t ed[32], const uint8_t u[32]) {
  struct sotto__fe x, one, num, den;
  sotto__fe_frombytes(&x, u);
  sotto__fe_one(&one);
  sotto__fe_add(&den, &x, &one);
  if (sotto__fe_iszero(&den)) return SOTTO_ERR_INVALID_KEY; /* u = -1 has no Edwards point */
  sotto__fe_sub(&num, &x, &one);
  sotto__fe_invert(&den, &den);
  sotto__fe_mul(&num, &num, &den);
  sotto__fe_tobytes(ed, &num);
  return 0;
}

int sotto__xeddsa_verify_ed(const uint8_t ed[32], const uint8_t *msg, size_t len,
                            const uint8_t sig[64]) {
  uint8_t A[32], s2[64];
  memcpy(A, ed, 32);
  memcpy(s2, sig, 64);
  /* The Edwards sign bit comes from bit 511 of the signature; then the
   * signature is an ordinary Ed25519 one. Like current libsignal, reject if
   * the top three bits of s are set after clearing it (s must be < 2^253). */
  A[31] = (uint8_t)((A[31] & 0x7F) | (sig[63] & 0x80));
  s2[63] &= 0x7F;
  if ((s2[63] & 0xE0) != 0) return SOTTO_ERR_AUTH;
  if (crypto_sign_verify_detached(s2, msg, len, A) != 0) return SOTTO_ERR_AUTH;
  return 0;
}

int sotto__xeddsa_verify(const uint8_t u[32], const uint8_t *msg, size_t len,
                         const uint8_t sig[64]) {
  uint8_t ed[32];
  if (sotto__xeddsa_edwards_key(ed, u) != 0) return SOTTO_ERR_AUTH;
  return sotto__xeddsa_verify_ed(ed, msg, len, sig);
}

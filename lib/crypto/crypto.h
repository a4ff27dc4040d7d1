/* SPDX-License-Identifier: Apache-2.0 */
/* crypto.h: thin internal wrappers over OpenSSL and libsodium.
 *
 * Backends: SHA-256/SHA-512/AES from OpenSSL's libcrypto (which uses the CPU's
 * SHA and AES instructions); X25519, Ed25519 group arithmetic, randomness and
 * wiping from libsodium. Nothing here allocates on the hot path. */
#ifndef SOTTO_CRYPTO_H
#define SOTTO_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/error.h>
#include <sotto/limits.h>

#define SOTTO__SHA256_LEN 32
#define SOTTO__SHA512_LEN 64

/* Library initialisation (libsodium, OpenSSL cipher fetch). Idempotent and
 * thread-safe; every public entry point that needs crypto calls it. */
SOTTO_WUR int sotto__crypto_init(void);

/* Wipes n bytes at p; the compiler cannot elide it. */
void sotto__wipe(void *p, size_t n);
/* Constant-time equality of two n-byte buffers: 1 if equal, 0 if not. */
int sotto__ct_eq(const void *a, const void *b, size_t n);
/* Fills buf with CSPRNG bytes. Fails closed (cannot fail with libsodium, kept
 * for the API shape). */
SOTTO_WUR int sotto__random(void *buf, size_t n);

/* ---- SHA-256 / HMAC-SHA256 ---------------------------------------------- */

/* Opaque-sized storage for an OpenSSL SHA256_CTX (checked by a static assert
 * in sha.c) so that callers can keep states on the stack. */
struct sotto__sha256 {
  uint64_t opaque[14];
};

/* A keyed HMAC-SHA256: the inner and outer states after absorbing the padded
 * key. Preparing it once lets several MACs under the same key (a chain key
 * deriving both its seeds, HKDF-Expand's blocks) skip two compressions each. */
struct sotto__hmac_key {
  struct sotto__sha256 inner, outer;
};

void sotto__hmac_key_init(struct sotto__hmac_key *hk, const uint8_t *key, size_t key_len);
void sotto__hmac_key_clear(struct sotto__hmac_key *hk);
/* Single-shot MAC of msg under a prepared key. */
void sotto__hmac(uint8_t out[32], const struct sotto__hmac_key *hk, const uint8_t *msg, size_t len);
/* Multi-part MAC: start from a prepared key, feed parts, finish. */
struct sotto__hmac_ctx {
  struct sotto__sha256 st;
  const struct sotto__hmac_key *hk;
};
void sotto__hmac_start(struct sotto__hmac_ctx *c, const struct sotto__hmac_key *hk);
void sotto__hmac_update(struct sotto__hmac_ctx *c, const uint8_t *p, size_t n);
void sotto__hmac_finish(struct sotto__hmac_ctx *c, uint8_t out[32]);
/* HMAC-SHA256 with an unprepared key. */
void sotto__hmac_sha256(uint8_t out[32], const uint8_t *key, size_t key_len, const uint8_t *msg,
                        size_t len);

/* HKDF-SHA256 (RFC 5869) with the expand counter starting at 1.
 * salt == NULL means HashLen zero bytes. out_len must be at most
 * SOTTO__HKDF_MAX_LEN (255 * HashLen, RFC 5869 section 2.3); a longer request
 * returns SOTTO_ERR_USAGE and writes nothing. 0 otherwise. */
#define SOTTO__HKDF_MAX_LEN (255 * 32)
SOTTO_WUR int sotto__hkdf(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                          const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len);
/* HKDF with a 32-byte zero salt and a 32-byte IKM: the KDF shape of the message
 * keys, using a precomputed zero-salt HMAC key. Same length rule. */
SOTTO_WUR int sotto__hkdf_zero_salt32(uint8_t *out, size_t out_len, const uint8_t ikm[32],
                                      const uint8_t *info, size_t info_len);
/* out1 = HMAC-SHA256(key, 0x01), out2 = HMAC-SHA256(key, 0x02) for a 32-byte
 * key (the Signal chain step); either output may be NULL and either may be
 * the key itself. */
void sotto__hmac32_12(uint8_t *out1, uint8_t *out2, const uint8_t key[32]);

void sotto__sha256(uint8_t out[32], const uint8_t *p, size_t n);
/* SHA-512 of the concatenation of up to three parts (NULL parts skipped). */
void sotto__sha512_3(uint8_t out[64], const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                     const uint8_t *c, size_t cn);

/* ---- AES-256-CBC with PKCS#7 -------------------------------------------- */

/* out must hold SOTTO_CIPHERTEXT_LEN(len) bytes; *out_len gets the length. */
SOTTO_WUR int sotto__aes256cbc_encrypt(uint8_t *out, size_t *out_len, const uint8_t key[32],
                                       const uint8_t iv[16], const uint8_t *in, size_t len);
/* in_len must be a positive multiple of 16; out must hold in_len bytes.
 * Returns SOTTO_ERR_AUTH on bad padding (the caller has checked a MAC first
 * for pairwise messages; for sender keys the signature was checked first). */
SOTTO_WUR int sotto__aes256cbc_decrypt(uint8_t *out, size_t *out_len, const uint8_t key[32],
                                       const uint8_t iv[16], const uint8_t *in, size_t in_len);

/* ---- Curve25519 ---------------------------------------------------------- */

/* Generates a clamped X25519 private key and its public key. */
SOTTO_WUR int sotto__x25519_keygen(uint8_t pub[32], uint8_t priv[32]);
/* Public key of a private key (clamping applied as X25519 does). */
SOTTO_WUR int sotto__x25519_public(uint8_t pub[32], const uint8_t priv[32]);
/* X25519 agreement; fails (SOTTO_ERR_INVALID_KEY) on an all-zero result. */
SOTTO_WUR int sotto__x25519(uint8_t shared[32], const uint8_t priv[32], const uint8_t pub[32]);

/* XEdDSA as libsignal implements it: the Edwards public key keeps its sign
 * bit, which is stored in bit 7 of signature byte 63 (notes/signal-v3.md 4.2).
 * The nonce is derived from the private key, the message and 64 random bytes. */
SOTTO_WUR int sotto__xeddsa_sign(uint8_t sig[64], const uint8_t priv[32], const uint8_t *msg,
                                 size_t len);
/* Precomputed signing material for a long-lived signing key (sender keys):
 * the reduced scalar and the Edwards public key with its sign bit. */
struct sotto__xeddsa_signer {
  uint8_t a[32]; /* clamped scalar reduced mod L: secret */
  uint8_t A[32]; /* Edwards encoding of a*B */
};
SOTTO_WUR int sotto__xeddsa_signer_init(struct sotto__xeddsa_signer *s, const uint8_t priv[32]);
void sotto__xeddsa_signer_clear(struct sotto__xeddsa_signer *s);
SOTTO_WUR int sotto__xeddsa_sign_with(uint8_t sig[64], const struct sotto__xeddsa_signer *s,
                                      const uint8_t *msg, size_t len);
/* Montgomery u -> Edwards y (sign bit 0): the verification key of an XEdDSA
 * public key. Fails for u = -1 (no Edwards point). */
SOTTO_WUR int sotto__xeddsa_edwards_key(uint8_t ed[32], const uint8_t u[32]);
/* Verifies with a converted key (see above). 0 valid, SOTTO_ERR_AUTH otherwise. */
SOTTO_WUR int sotto__xeddsa_verify_ed(const uint8_t ed[32], const uint8_t *msg, size_t len,
                                      const uint8_t sig[64]);
/* Verifies a signature by the Montgomery public key u. */
SOTTO_WUR int sotto__xeddsa_verify(const uint8_t u[32], const uint8_t *msg, size_t len,
                                   const uint8_t sig[64]);

#endif

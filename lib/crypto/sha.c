/* SPDX-License-Identifier: Apache-2.0 */
/* sha.c: SHA-256, HMAC-SHA256, HKDF and SHA-512 over OpenSSL's low-level
 * digest API.
 *
 * Why the low-level API: OpenSSL's SHA256_* functions run the CPU's SHA
 * extensions directly, while each EVP call pays a dispatch and context cost
 * that is larger than one compression for the short inputs of the ratchet
 * (a 32-byte chain key, a 33-byte constant). A message costs about 23
 * compressions, so the per-call overhead would dominate. The API is marked
 * deprecated in OpenSSL 3.0 but remains supported there. */
#define OPENSSL_SUPPRESS_DEPRECATED 1
#include <openssl/sha.h>
#include <string.h>

#include "crypto.h"

_Static_assert(sizeof(SHA256_CTX) <= sizeof(struct sotto__sha256), "SHA256_CTX storage");
_Static_assert(_Alignof(SHA256_CTX) <= _Alignof(struct sotto__sha256), "SHA256_CTX alignment");

#define CTX(s) ((SHA256_CTX *)(void *)(s)->opaque)

void sotto__sha256(uint8_t out[32], const uint8_t *p, size_t n) { SHA256(p, n, out); }

void sotto__hmac_key_init(struct sotto__hmac_key *hk, const uint8_t *key, size_t key_len) {
  uint8_t block[64], kh[32];
  size_t i;

  /* RFC 2104: keys longer than the block are hashed first. */
  if (key_len > 64) {
    SHA256(key, key_len, kh);
    key = kh;
    key_len = 32;
  }
  memset(block, 0x36, sizeof block);
  for (i = 0; i < key_len; i++) block[i] ^= key[i];
  SHA256_Init(CTX(&hk->inner));
  SHA256_Update(CTX(&hk->inner), block, 64);
  for (i = 0; i < 64; i++) block[i] ^= 0x36 ^ 0x5c;
  SHA256_Init(CTX(&hk->outer));
  SHA256_Update(CTX(&hk->outer), block, 64);
  sotto__wipe(block, sizeof block);
  sotto__wipe(kh, sizeof kh);
}

void sotto__hmac_key_clear(struct sotto__hmac_key *hk) { sotto__wipe(hk, sizeof *hk); }

void sotto__hmac_start(struct sotto__hmac_ctx *c, const struct sotto__hmac_key *hk) {
  c->st = hk->inner;
  c->hk = hk;
}

void sotto__hmac_update(struct sotto__hmac_ctx *c, const uint8_t *p, size_t n) {
  SHA256_Update(CTX(&c->st), p, n);
}

void sotto__hmac_finish(struct sotto__hmac_ctx *c, uint8_t out[32]) {
  uint8_t ih[32];
  SHA256_Final(ih, CTX(&c->st));
  c->st = c->hk->outer;
  SHA256_Update(CTX(&c->st), ih, 32);
  SHA256_Final(out, CTX(&c->st));
  sotto__wipe(ih, sizeof ih);
  sotto__wipe(&c->st, sizeof c->st);
}

void sotto__hmac(uint8_t out[32], const struct sotto__hmac_key *hk, const uint8_t *msg,
                 size_t len) {
  struct sotto__hmac_ctx c;
  sotto__hmac_start(&c, hk);
  sotto__hmac_update(&c, msg, len);
  sotto__hmac_finish(&c, out);
}

void sotto__hmac_sha256(uint8_t out[32], const uint8_t *key, size_t key_len, const uint8_t *msg,
                        size_t len) {
  struct sotto__hmac_key hk;
  sotto__hmac_key_init(&hk, key, key_len);
  sotto__hmac(out, &hk, msg, len);
  sotto__hmac_key_clear(&hk);
}

/* HKDF-Expand with a prepared PRK key: T(i) = HMAC(PRK, T(i-1) || info || i),
 * counter from 1 as in RFC 5869 (and libsignal's v3 HKDF). */
static void hkdf_expand(uint8_t *out, size_t out_len, const struct sotto__hmac_key *prk,
                        const uint8_t *info, size_t info_len) {
  uint8_t t[32];
  uint8_t ctr = 1;
  size_t done = 0;
  struct sotto__hmac_ctx c;

  while (done < out_len) {
    size_t n = out_len - done < 32 ? out_len - done : 32;
    sotto__hmac_start(&c, prk);
    if (ctr > 1) sotto__hmac_update(&c, t, 32);
    sotto__hmac_update(&c, info, info_len);
    sotto__hmac_update(&c, &ctr, 1);
    sotto__hmac_finish(&c, t);
    memcpy(out + done, t, n);
    done += n;
    ctr++;
  }
  sotto__wipe(t, sizeof t);
}

void sotto__hkdf(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                 const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len) {
  static const uint8_t zeros[32];
  struct sotto__hmac_key hk;
  uint8_t prk[32];

  if (salt == NULL) {
    salt = zeros;
    salt_len = sizeof zeros;
  }
  sotto__hmac_key_init(&hk, salt, salt_len);
  sotto__hmac(prk, &hk, ikm, ikm_len);
  sotto__hmac_key_init(&hk, prk, sizeof prk);
  hkdf_expand(out, out_len, &hk, info, info_len);
  sotto__hmac_key_clear(&hk);
  sotto__wipe(prk, sizeof prk);
}

/* The zero-salt HMAC key is the same for every message key derivation, so it
 * is prepared once (by sotto__crypto_init). */
static struct sotto__hmac_key zero_salt_key;

void sotto__hkdf_init_constants(void);
void sotto__hkdf_init_constants(void) {
  static const uint8_t zeros[32];
  sotto__hmac_key_init(&zero_salt_key, zeros, sizeof zeros);
}

void sotto__hkdf_zero_salt32(uint8_t *out, size_t out_len, const uint8_t ikm[32],
                             const uint8_t *info, size_t info_len) {
  struct sotto__hmac_key hk;
  uint8_t prk[32];

  sotto__hmac(prk, &zero_salt_key, ikm, 32);
  sotto__hmac_key_init(&hk, prk, sizeof prk);
  hkdf_expand(out, out_len, &hk, info, info_len);
  sotto__hmac_key_clear(&hk);
  sotto__wipe(prk, sizeof prk);
}

void sotto__sha512_3(uint8_t out[64], const uint8_t *a, size_t an, const uint8_t *b, size_t bn,
                     const uint8_t *c, size_t cn) {
  SHA512_CTX x;
  SHA512_Init(&x);
  if (a) SHA512_Update(&x, a, an);
  if (b) SHA512_Update(&x, b, bn);
  if (c) SHA512_Update(&x, c, cn);
  SHA512_Final(out, &x);
  sotto__wipe(&x, sizeof x);
}

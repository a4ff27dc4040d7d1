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
 * counter from 1 as in RFC 5869 (and libsignal's v3 HKDF). RFC 5869 section
 * 2.3 caps L at 255 * HashLen: the one-byte counter would wrap after that and
 * repeat output blocks, so a longer request is refused before any output. */
static int hkdf_expand(uint8_t *out, size_t out_len, const struct sotto__hmac_key *prk,
                       const uint8_t *info, size_t info_len) {
  uint8_t t[32];
  unsigned ctr = 1;
  size_t done = 0;
  struct sotto__hmac_ctx c;

  if (out_len > SOTTO__HKDF_MAX_LEN) return SOTTO_ERR_USAGE;
  while (done < out_len) {
    size_t n = out_len - done < 32 ? out_len - done : 32;
    uint8_t b = (uint8_t)ctr;
    sotto__hmac_start(&c, prk);
    if (ctr > 1) sotto__hmac_update(&c, t, 32);
    sotto__hmac_update(&c, info, info_len);
    sotto__hmac_update(&c, &b, 1);
    sotto__hmac_finish(&c, t);
    memcpy(out + done, t, n);
    done += n;
    ctr++;
  }
  sotto__wipe(t, sizeof t);
  return 0;
}

int sotto__hkdf(uint8_t *out, size_t out_len, const uint8_t *salt, size_t salt_len,
                const uint8_t *ikm, size_t ikm_len, const uint8_t *info, size_t info_len) {
  static const uint8_t zeros[32];
  struct sotto__hmac_key hk;
  uint8_t prk[32];
  int rc;

  if (out_len > SOTTO__HKDF_MAX_LEN) return SOTTO_ERR_USAGE;
  if (salt == NULL) {
    salt = zeros;
    salt_len = sizeof zeros;
  }
  sotto__hmac_key_init(&hk, salt, salt_len);
  sotto__hmac(prk, &hk, ikm, ikm_len);
  sotto__hmac_key_init(&hk, prk, sizeof prk);
  rc = hkdf_expand(out, out_len, &hk, info, info_len);
  sotto__hmac_key_clear(&hk);
  sotto__wipe(prk, sizeof prk);
  return rc;
}

/* The zero-salt HMAC key is the same for every message key derivation, so it
 * is prepared once (by sotto__crypto_init). */
static struct sotto__hmac_key zero_salt_key;

void sotto__hkdf_init_constants(void);
void sotto__hkdf_init_constants(void) {
  static const uint8_t zeros[32];
  sotto__hmac_key_init(&zero_salt_key, zeros, sizeof zeros);
}

int sotto__hkdf_zero_salt32(uint8_t *out, size_t out_len, const uint8_t ikm[32],
                            const uint8_t *info, size_t info_len) {
  struct sotto__hmac_key hk;
  uint8_t prk[32];
  int rc;

  if (out_len > SOTTO__HKDF_MAX_LEN) return SOTTO_ERR_USAGE;
  sotto__hmac(prk, &zero_salt_key, ikm, 32);
  sotto__hmac_key_init(&hk, prk, sizeof prk);
  rc = hkdf_expand(out, out_len, &hk, info, info_len);
  sotto__hmac_key_clear(&hk);
  sotto__wipe(prk, sizeof prk);
  return rc;
}

/* HMAC of a one-byte message under a 32-byte key, straight on the
 * compression function: with the key's inner and outer blocks absorbed,
 * each HMAC is one compression of (byte || SHA-256 padding for 65 bytes) and
 * one of (inner hash || padding for 96 bytes). Four compressions for one
 * output and six for both, with no Update/Final bookkeeping: this is the
 * chain step a forged message makes the receiver walk up to 2000 times. */
static void state_out(uint8_t out[32], const SHA256_CTX *c) {
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(c->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)c->h[i];
  }
}

static void hmac_byte(uint8_t out[32], const SHA256_CTX *inner, const SHA256_CTX *outer, uint8_t msg) {
  SHA256_CTX c;
  uint8_t b[64];

  memset(b, 0, sizeof b);
  b[0] = msg;
  b[1] = 0x80;
  b[62] = (uint8_t)((64 + 1) * 8 >> 8); /* bit length of key block || msg */
  b[63] = (uint8_t)((64 + 1) * 8);
  c = *inner;
  SHA256_Transform(&c, b);
  state_out(b, &c);
  memset(b + 32, 0, 32);
  b[32] = 0x80;
  b[62] = (uint8_t)((64 + 32) * 8 >> 8);
  b[63] = (uint8_t)((64 + 32) * 8);
  c = *outer;
  SHA256_Transform(&c, b);
  state_out(out, &c);
  sotto__wipe(b, sizeof b);
  sotto__wipe(&c, sizeof c);
}

void sotto__hmac32_12(uint8_t *out1, uint8_t *out2, const uint8_t key[32]) {
  SHA256_CTX inner, outer;
  uint8_t block[64];
  int i;

  memset(block, 0x36, sizeof block);
  for (i = 0; i < 32; i++) block[i] ^= key[i];
  SHA256_Init(&inner);
  SHA256_Transform(&inner, block);
  for (i = 0; i < 64; i++) block[i] ^= 0x36 ^ 0x5c;
  SHA256_Init(&outer);
  SHA256_Transform(&outer, block);
  sotto__wipe(block, sizeof block);
  /* key is not read after this point, so outputs may alias it. */
  if (out1 != NULL) hmac_byte(out1, &inner, &outer, 1);
  if (out2 != NULL) hmac_byte(out2, &inner, &outer, 2);
  sotto__wipe(&inner, sizeof inner);
  sotto__wipe(&outer, sizeof outer);
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

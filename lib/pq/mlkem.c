/* SPDX-License-Identifier: Apache-2.0 */
/* lib/pq/mlkem.c: the sotto ML-KEM API (include/sotto/mlkem.h) over PQClean.
 *
 * PQClean's clean ML-KEM does the lattice arithmetic and the FIPS 203
 * Fujisaki-Okamoto transform, but it trusts its inputs: crypto_kem_enc takes any
 * 1184/1568 bytes as a key and crypto_kem_dec any bytes as dk. This file
 * performs the FIPS 203 input checks before handing anything to PQClean:
 *   section 7.2 (ML-KEM.Encaps): ek length, then the modulus check;
 *   section 7.3 (ML-KEM.Decaps): ciphertext length, dk length, then the hash
 *                check H(dk[384k : 768k + 32]) == dk[768k + 32 : 768k + 64].
 * It also draws the randomness itself (libsodium) so that a generator failure
 * is reported instead of being ignored, and calls PQClean's _derand entry
 * points only.
 *
 * Ownership: callers own every buffer. Nothing is allocated. Secrets created
 * here (d || z, m) are wiped on every path; PQClean's own stack temporaries
 * (keys, coins, the re-encrypted ciphertext) are wiped by scrub_stack() after
 * each PQClean call, on a best-effort basis. */
#include <sodium.h>
#include <sotto/mlkem.h>
#include <string.h>

#include "ml-kem-1024/clean/api.h"
#include "ml-kem-768/clean/api.h"
#include "pq/keccak.h"
#include "pq/shim/randombytes.h"

/* PQClean declares the _derand functions in kem.h, which cannot be included
 * twice in one file (both parameter sets define the same KYBER_* macros), so
 * the four used here are declared by hand; the sizes they work on are pinned
 * to PQClean's api.h by the static assertions below. */
int PQCLEAN_MLKEM768_CLEAN_crypto_kem_keypair_derand(uint8_t *pk, uint8_t *sk, const uint8_t *coins);
int PQCLEAN_MLKEM768_CLEAN_crypto_kem_enc_derand(uint8_t *ct, uint8_t *ss, const uint8_t *pk,
                                                 const uint8_t *coins);
int PQCLEAN_MLKEM1024_CLEAN_crypto_kem_keypair_derand(uint8_t *pk, uint8_t *sk, const uint8_t *coins);
int PQCLEAN_MLKEM1024_CLEAN_crypto_kem_enc_derand(uint8_t *ct, uint8_t *ss, const uint8_t *pk,
                                                  const uint8_t *coins);

_Static_assert(SOTTO_MLKEM768_PK_LEN == PQCLEAN_MLKEM768_CLEAN_CRYPTO_PUBLICKEYBYTES, "pk 768");
_Static_assert(SOTTO_MLKEM768_SK_LEN == PQCLEAN_MLKEM768_CLEAN_CRYPTO_SECRETKEYBYTES, "sk 768");
_Static_assert(SOTTO_MLKEM768_CT_LEN == PQCLEAN_MLKEM768_CLEAN_CRYPTO_CIPHERTEXTBYTES, "ct 768");
_Static_assert(SOTTO_MLKEM_SS_LEN == PQCLEAN_MLKEM768_CLEAN_CRYPTO_BYTES, "ss 768");
_Static_assert(SOTTO_MLKEM1024_PK_LEN == PQCLEAN_MLKEM1024_CLEAN_CRYPTO_PUBLICKEYBYTES, "pk 1024");
_Static_assert(SOTTO_MLKEM1024_SK_LEN == PQCLEAN_MLKEM1024_CLEAN_CRYPTO_SECRETKEYBYTES, "sk 1024");
_Static_assert(SOTTO_MLKEM1024_CT_LEN == PQCLEAN_MLKEM1024_CLEAN_CRYPTO_CIPHERTEXTBYTES, "ct 1024");
_Static_assert(SOTTO_MLKEM_SS_LEN == PQCLEAN_MLKEM1024_CLEAN_CRYPTO_BYTES, "ss 1024");

#define MLKEM_Q 3329
#define MLKEM_POLY_BYTES 384 /* ByteEncode12 of 256 coefficients */
#define MLKEM_SYM_BYTES 32   /* rho, H(ek), z, m, K */

/* Bytes of stack wiped after each PQClean call. PQClean's deepest path
 * (ML-KEM-1024 decapsulation: decrypt, then re-encrypt with the whole matrix
 * A) was measured (stack painting) at about 21 KiB on x86-64 with gcc 12 at
 * -O0 to -O3, and about 24 KiB with ASan+UBSan; 32 KiB leaves a margin. */
#define SCRUB_STACK_BYTES (32 * 1024)

/* One parameter set: k and the sizes derived from it, and PQClean's entry
 * points for it (crypto_kem_dec is used the same way for both sets). */
struct mlkem_params {
  size_t k;
  size_t pk_len; /* 384k + 32 */
  size_t sk_len; /* 768k + 96 */
  size_t ct_len;
  int (*keypair_derand)(uint8_t *pk, uint8_t *sk, const uint8_t *coins);
  int (*enc_derand)(uint8_t *ct, uint8_t *ss, const uint8_t *pk, const uint8_t *coins);
  int (*dec)(uint8_t *ss, const uint8_t *ct, const uint8_t *sk);
};

static const struct mlkem_params mlkem768 = {
    3,
    SOTTO_MLKEM768_PK_LEN,
    SOTTO_MLKEM768_SK_LEN,
    SOTTO_MLKEM768_CT_LEN,
    PQCLEAN_MLKEM768_CLEAN_crypto_kem_keypair_derand,
    PQCLEAN_MLKEM768_CLEAN_crypto_kem_enc_derand,
    PQCLEAN_MLKEM768_CLEAN_crypto_kem_dec,
};

static const struct mlkem_params mlkem1024 = {
    4,
    SOTTO_MLKEM1024_PK_LEN,
    SOTTO_MLKEM1024_SK_LEN,
    SOTTO_MLKEM1024_CT_LEN,
    PQCLEAN_MLKEM1024_CLEAN_crypto_kem_keypair_derand,
    PQCLEAN_MLKEM1024_CLEAN_crypto_kem_enc_derand,
    PQCLEAN_MLKEM1024_CLEAN_crypto_kem_dec,
};

_Static_assert(SOTTO_MLKEM768_PK_LEN == 3 * MLKEM_POLY_BYTES + MLKEM_SYM_BYTES, "ek layout");
_Static_assert(SOTTO_MLKEM1024_PK_LEN == 4 * MLKEM_POLY_BYTES + MLKEM_SYM_BYTES, "ek layout");
_Static_assert(SOTTO_MLKEM768_SK_LEN == 2 * 3 * MLKEM_POLY_BYTES + 3 * MLKEM_SYM_BYTES, "dk");
_Static_assert(SOTTO_MLKEM1024_SK_LEN == 2 * 4 * MLKEM_POLY_BYTES + 3 * MLKEM_SYM_BYTES, "dk");

/* Overwrites the stack area just below the caller's frame, where the PQClean
 * call that the caller has just returned from kept its temporaries (secret
 * polynomials, coins, the shared key before the constant-time select). Must
 * not be inlined, or the buffer would share the caller's frame instead. */
static __attribute__((noinline)) void scrub_stack(void) {
  uint8_t area[SCRUB_STACK_BYTES];

  sodium_memzero(area, sizeof area);
}

/* PQClean's randombytes(), needed only by crypto_kem_keypair/crypto_kem_enc,
 * which sotto never calls (see lib/pq/shim/randombytes.h). libsodium's
 * randombytes_buf() either fills the buffer or aborts the process, so even a
 * stray call can never continue with predictable bytes. */
int sotto__pq_randombytes(uint8_t *output, size_t n) {
  randombytes_buf(output, n);
  return 0;
}

/* Makes sure libsodium is initialised before drawing random bytes. */
static int random_ready(void) {
  return sodium_init() < 0 ? SOTTO_ERR_RANDOM : 0;
}

/* FIPS 203 section 7.2, modulus check: ByteEncode12(ByteDecode12(ek)) == ek
 * holds exactly when every 12-bit coefficient of the k encoded polynomials is
 * below q (ByteDecode12 reduces mod q, so a value >= q would re-encode
 * differently). Two coefficients are packed little-endian in every 3 bytes.
 * The last 32 bytes of ek are the seed rho and are not coefficients. ek is
 * public, but the loop is branch-free anyway. Returns 1 if all are below q. */
static int ek_coefficients_reduced(const uint8_t *ek, size_t k) {
  uint32_t over = 0, c0, c1;
  size_t i;

  for (i = 0; i < k * MLKEM_POLY_BYTES; i += 3) {
    c0 = (uint32_t)ek[i] | ((uint32_t)(ek[i + 1] & 0x0f) << 8);
    c1 = (uint32_t)(ek[i + 1] >> 4) | ((uint32_t)ek[i + 2] << 4);
    /* (q - 1 - c) wraps around, setting bit 31, exactly when c >= q. */
    over |= ((uint32_t)(MLKEM_Q - 1) - c0) | ((uint32_t)(MLKEM_Q - 1) - c1);
  }
  return (over >> 31) == 0;
}

static int check_pk(const struct mlkem_params *p, const uint8_t *pk, size_t pk_len) {
  if (pk == NULL) {
    return SOTTO_ERR_USAGE;
  }
  if (pk_len != p->pk_len) {
    return SOTTO_ERR_INVALID_KEY;
  }
  if (!ek_coefficients_reduced(pk, p->k)) {
    return SOTTO_ERR_INVALID_KEY;
  }
  return 0;
}

/* ML-KEM.KeyGen_internal(d, z) with coins = d || z. pk and sk are the
 * caller's; coins stay the caller's to wipe. */
static int keypair_derand(const struct mlkem_params *p, uint8_t *pk, uint8_t *sk, const uint8_t *coins) {
  if (pk == NULL || sk == NULL || coins == NULL) {
    if (pk != NULL) {
      sodium_memzero(pk, p->pk_len);
    }
    if (sk != NULL) {
      sodium_memzero(sk, p->sk_len);
    }
    return SOTTO_ERR_USAGE;
  }
  (void)p->keypair_derand(pk, sk, coins); /* always 0 */
  scrub_stack();
  return 0;
}

static int keypair_from_seed(const struct mlkem_params *p, uint8_t *pk, uint8_t *sk, const uint8_t *seed,
                             size_t seed_len) {
  if (seed != NULL && seed_len != SOTTO_MLKEM_SEED_LEN) {
    if (pk != NULL) {
      sodium_memzero(pk, p->pk_len);
    }
    if (sk != NULL) {
      sodium_memzero(sk, p->sk_len);
    }
    return (pk == NULL || sk == NULL) ? SOTTO_ERR_USAGE : SOTTO_ERR_INVALID_KEY;
  }
  return keypair_derand(p, pk, sk, seed);
}

/* ML-KEM.KeyGen (FIPS 203 Algorithm 19): d and z from the system RNG. */
static int keypair(const struct mlkem_params *p, uint8_t *pk, uint8_t *sk) {
  uint8_t coins[SOTTO_MLKEM_SEED_LEN];
  int ret;

  if (pk == NULL || sk == NULL) {
    return keypair_derand(p, pk, sk, NULL); /* zeroes what it can, SOTTO_ERR_USAGE */
  }
  ret = random_ready();
  if (ret != 0) {
    sodium_memzero(pk, p->pk_len);
    sodium_memzero(sk, p->sk_len);
    return ret;
  }
  randombytes_buf(coins, sizeof coins);
  ret = keypair_derand(p, pk, sk, coins);
  sodium_memzero(coins, sizeof coins);
  return ret;
}

/* ML-KEM.Encaps (FIPS 203 Algorithm 20) with m supplied: the section 7.2 input
 * check, then Encaps_internal. ct and ss are zeroed on failure. */
static int encaps_derand(const struct mlkem_params *p, uint8_t *ct, uint8_t *ss, const uint8_t *pk,
                         size_t pk_len, const uint8_t *m) {
  int ret;

  if (ct == NULL || ss == NULL) {
    ret = SOTTO_ERR_USAGE;
    goto out;
  }
  if (m == NULL) {
    ret = SOTTO_ERR_USAGE;
    goto out;
  }
  ret = check_pk(p, pk, pk_len);
  if (ret != 0) {
    goto out;
  }
  (void)p->enc_derand(ct, ss, pk, m); /* always 0 */
  scrub_stack();
out:
  if (ret != 0) {
    if (ct != NULL) {
      sodium_memzero(ct, p->ct_len);
    }
    if (ss != NULL) {
      sodium_memzero(ss, SOTTO_MLKEM_SS_LEN);
    }
  }
  return ret;
}

/* ML-KEM.Encaps with m from the system RNG. The key is checked before any
 * randomness is drawn, so a bad key costs nothing. m is wiped. */
static int encaps(const struct mlkem_params *p, uint8_t *ct, uint8_t *ss, const uint8_t *pk, size_t pk_len) {
  uint8_t m[SOTTO_MLKEM_ENCAPS_COINS_LEN];
  int ret;

  if (ct == NULL || ss == NULL) {
    return encaps_derand(p, ct, ss, pk, pk_len, NULL); /* zeroes, SOTTO_ERR_USAGE */
  }
  ret = check_pk(p, pk, pk_len);
  if (ret == 0) {
    ret = random_ready();
  }
  if (ret != 0) {
    sodium_memzero(ct, p->ct_len);
    sodium_memzero(ss, SOTTO_MLKEM_SS_LEN);
    return ret;
  }
  randombytes_buf(m, sizeof m);
  ret = encaps_derand(p, ct, ss, pk, pk_len, m);
  sodium_memzero(m, sizeof m);
  return ret;
}

/* ML-KEM.Decaps (FIPS 203 Algorithm 21) with the section 7.3 input checks, in
 * the standard's order: ciphertext type, decapsulation key type, hash check.
 * Then Decaps_internal, which never fails: a ciphertext that does not
 * re-encrypt yields the implicit rejection key. ss is zeroed on failure. */
static int decaps(const struct mlkem_params *p, uint8_t *ss, const uint8_t *ct, size_t ct_len,
                  const uint8_t *sk, size_t sk_len) {
  uint8_t h[MLKEM_SYM_BYTES];
  const uint8_t *ek, *stored_h;
  int ret;

  if (ss == NULL) {
    return SOTTO_ERR_USAGE;
  }
  if (ct == NULL || sk == NULL) {
    ret = SOTTO_ERR_USAGE;
    goto out;
  }
  if (ct_len != p->ct_len) {
    ret = SOTTO_ERR_MALFORMED;
    goto out;
  }
  if (sk_len != p->sk_len) {
    ret = SOTTO_ERR_INVALID_KEY;
    goto out;
  }
  /* dk = dk_PKE (384k) || ek (384k + 32) || H(ek) (32) || z (32) */
  ek = sk + p->k * MLKEM_POLY_BYTES;
  stored_h = ek + p->pk_len;
  sotto__sha3_256(h, ek, p->pk_len);
  if (sodium_memcmp(h, stored_h, sizeof h) != 0) {
    ret = SOTTO_ERR_INVALID_KEY;
    goto out;
  }
  (void)p->dec(ss, ct, sk); /* always 0 */
  scrub_stack();
  ret = 0;
out:
  sodium_memzero(h, sizeof h);
  if (ret != 0) {
    sodium_memzero(ss, SOTTO_MLKEM_SS_LEN);
  }
  return ret;
}

/* ---- public API ----------------------------------------------------------- */

int sotto_mlkem768_keypair(uint8_t pk[SOTTO_MLKEM768_PK_LEN], uint8_t sk[SOTTO_MLKEM768_SK_LEN]) {
  return keypair(&mlkem768, pk, sk);
}

int sotto_mlkem768_keypair_derand(uint8_t pk[SOTTO_MLKEM768_PK_LEN], uint8_t sk[SOTTO_MLKEM768_SK_LEN],
                                  const uint8_t coins[SOTTO_MLKEM_SEED_LEN]) {
  return keypair_derand(&mlkem768, pk, sk, coins);
}

int sotto_mlkem768_keypair_from_seed(uint8_t pk[SOTTO_MLKEM768_PK_LEN], uint8_t sk[SOTTO_MLKEM768_SK_LEN],
                                     const uint8_t *seed, size_t seed_len) {
  return keypair_from_seed(&mlkem768, pk, sk, seed, seed_len);
}

int sotto_mlkem768_check_pk(const uint8_t *pk, size_t pk_len) {
  return check_pk(&mlkem768, pk, pk_len);
}

int sotto_mlkem768_encaps(uint8_t ct[SOTTO_MLKEM768_CT_LEN], uint8_t ss[SOTTO_MLKEM_SS_LEN],
                          const uint8_t *pk, size_t pk_len) {
  return encaps(&mlkem768, ct, ss, pk, pk_len);
}

int sotto_mlkem768_encaps_derand(uint8_t ct[SOTTO_MLKEM768_CT_LEN], uint8_t ss[SOTTO_MLKEM_SS_LEN],
                                 const uint8_t *pk, size_t pk_len,
                                 const uint8_t m[SOTTO_MLKEM_ENCAPS_COINS_LEN]) {
  return encaps_derand(&mlkem768, ct, ss, pk, pk_len, m);
}

int sotto_mlkem768_decaps(uint8_t ss[SOTTO_MLKEM_SS_LEN], const uint8_t *ct, size_t ct_len, const uint8_t *sk,
                          size_t sk_len) {
  return decaps(&mlkem768, ss, ct, ct_len, sk, sk_len);
}

int sotto_mlkem1024_keypair(uint8_t pk[SOTTO_MLKEM1024_PK_LEN], uint8_t sk[SOTTO_MLKEM1024_SK_LEN]) {
  return keypair(&mlkem1024, pk, sk);
}

int sotto_mlkem1024_keypair_derand(uint8_t pk[SOTTO_MLKEM1024_PK_LEN], uint8_t sk[SOTTO_MLKEM1024_SK_LEN],
                                   const uint8_t coins[SOTTO_MLKEM_SEED_LEN]) {
  return keypair_derand(&mlkem1024, pk, sk, coins);
}

int sotto_mlkem1024_keypair_from_seed(uint8_t pk[SOTTO_MLKEM1024_PK_LEN], uint8_t sk[SOTTO_MLKEM1024_SK_LEN],
                                      const uint8_t *seed, size_t seed_len) {
  return keypair_from_seed(&mlkem1024, pk, sk, seed, seed_len);
}

int sotto_mlkem1024_check_pk(const uint8_t *pk, size_t pk_len) {
  return check_pk(&mlkem1024, pk, pk_len);
}

int sotto_mlkem1024_encaps(uint8_t ct[SOTTO_MLKEM1024_CT_LEN], uint8_t ss[SOTTO_MLKEM_SS_LEN],
                           const uint8_t *pk, size_t pk_len) {
  return encaps(&mlkem1024, ct, ss, pk, pk_len);
}

int sotto_mlkem1024_encaps_derand(uint8_t ct[SOTTO_MLKEM1024_CT_LEN], uint8_t ss[SOTTO_MLKEM_SS_LEN],
                                  const uint8_t *pk, size_t pk_len,
                                  const uint8_t m[SOTTO_MLKEM_ENCAPS_COINS_LEN]) {
  return encaps_derand(&mlkem1024, ct, ss, pk, pk_len, m);
}

int sotto_mlkem1024_decaps(uint8_t ss[SOTTO_MLKEM_SS_LEN], const uint8_t *ct, size_t ct_len,
                           const uint8_t *sk, size_t sk_len) {
  return decaps(&mlkem1024, ss, ct, ct_len, sk, sk_len);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* lib/pq/kyber.c: Kyber-1024 round 3 (include/sotto/kyber.h) over PQClean's
 * ML-KEM-1024 arithmetic.
 *
 * Only the symmetric layer differs from FIPS 203, so this file calls PQClean's
 * exported K-PKE pieces (indcpa_enc/dec, the polynomial functions for key
 * generation, verify/cmov) and does the round-3 hashing itself with our Keccak
 * (lib/pq/keccak.c). Input checks reuse the public ML-KEM-1024 ones: the key
 * formats are identical. Nothing is allocated; secrets on our stack are wiped,
 * and PQClean's stack temporaries are scrubbed after each call as mlkem.c does. */
#include <sodium.h>
#include <sotto/kyber.h>
#include <sotto/mlkem.h>
#include <string.h>

#include "ml-kem-1024/clean/indcpa.h"
#include "ml-kem-1024/clean/params.h"
#include "ml-kem-1024/clean/poly.h"
#include "ml-kem-1024/clean/polyvec.h"
#include "ml-kem-1024/clean/verify.h"
#include "pq/keccak.h"

_Static_assert(SOTTO_KYBER1024_PK_LEN == KYBER_PUBLICKEYBYTES, "pk");
_Static_assert(SOTTO_KYBER1024_SK_LEN == KYBER_SECRETKEYBYTES, "sk");
_Static_assert(SOTTO_KYBER1024_CT_LEN == KYBER_CIPHERTEXTBYTES, "ct");
_Static_assert(SOTTO_KYBER_SS_LEN == KYBER_SSBYTES, "ss");
_Static_assert(SOTTO_KYBER1024_PK_LEN == SOTTO_MLKEM1024_PK_LEN, "same ek format as ML-KEM-1024");

#define SYM KYBER_SYMBYTES
#define SCRUB_STACK_BYTES (32 * 1024) /* as lib/pq/mlkem.c: PQClean's deepest path < 24 KiB */

static __attribute__((noinline)) void scrub_stack(void) {
  uint8_t area[SCRUB_STACK_BYTES];
  sodium_memzero(area, sizeof area);
}

/* K-PKE key generation of round 3: (rho, sigma) = G(d), without the FIPS 203
 * domain-separating k byte; otherwise the same sampling and packing (A from
 * SampleNTT(rho || j || i), s and e from CBD_eta1 with nonces 0..2k-1). */
static __attribute__((noinline)) void indcpa_keypair_r3(uint8_t pk[KYBER_INDCPA_PUBLICKEYBYTES],
                                                        uint8_t sk[KYBER_INDCPA_SECRETKEYBYTES],
                                                        const uint8_t d[SYM]) {
  uint8_t buf[2 * SYM];
  polyvec a[KYBER_K], e, pkpv, skpv;
  uint8_t nonce = 0;
  unsigned i;

  sotto__sha3_512(buf, d, SYM);
  PQCLEAN_MLKEM1024_CLEAN_gen_matrix(a, buf, 0);
  for (i = 0; i < KYBER_K; i++)
    PQCLEAN_MLKEM1024_CLEAN_poly_getnoise_eta1(&skpv.vec[i], buf + SYM, nonce++);
  for (i = 0; i < KYBER_K; i++)
    PQCLEAN_MLKEM1024_CLEAN_poly_getnoise_eta1(&e.vec[i], buf + SYM, nonce++);
  PQCLEAN_MLKEM1024_CLEAN_polyvec_ntt(&skpv);
  PQCLEAN_MLKEM1024_CLEAN_polyvec_ntt(&e);
  for (i = 0; i < KYBER_K; i++) {
    PQCLEAN_MLKEM1024_CLEAN_polyvec_basemul_acc_montgomery(&pkpv.vec[i], &a[i], &skpv);
    PQCLEAN_MLKEM1024_CLEAN_poly_tomont(&pkpv.vec[i]);
  }
  PQCLEAN_MLKEM1024_CLEAN_polyvec_add(&pkpv, &pkpv, &e);
  PQCLEAN_MLKEM1024_CLEAN_polyvec_reduce(&pkpv);
  PQCLEAN_MLKEM1024_CLEAN_polyvec_tobytes(sk, &skpv);
  PQCLEAN_MLKEM1024_CLEAN_polyvec_tobytes(pk, &pkpv);
  memcpy(pk + KYBER_POLYVECBYTES, buf, SYM); /* rho */
  sodium_memzero(buf, sizeof buf);
  sodium_memzero(&skpv, sizeof skpv);
  sodium_memzero(&e, sizeof e);
}

/* SHAKE-256(a || b) to 32 bytes: round 3's KDF over K' (or z) and H(c). */
static void kdf(uint8_t out[SYM], const uint8_t a[SYM], const uint8_t b[SYM]) {
  struct sotto__keccak k;
  sotto__keccak_init(&k, SOTTO__SHAKE256_RATE, SOTTO__SHAKE_DSEP);
  sotto__keccak_absorb(&k, a, SYM);
  sotto__keccak_absorb(&k, b, SYM);
  sotto__keccak_finalize(&k);
  sotto__keccak_squeeze(&k, out, SYM);
  sotto__keccak_clear(&k);
}

int sotto_kyber1024_keypair_derand(uint8_t pk[SOTTO_KYBER1024_PK_LEN],
                                   uint8_t sk[SOTTO_KYBER1024_SK_LEN],
                                   const uint8_t coins[SOTTO_KYBER_SEED_LEN]) {
  if (pk == NULL || sk == NULL || coins == NULL) {
    if (pk != NULL) sodium_memzero(pk, SOTTO_KYBER1024_PK_LEN);
    if (sk != NULL) sodium_memzero(sk, SOTTO_KYBER1024_SK_LEN);
    return SOTTO_ERR_USAGE;
  }
  indcpa_keypair_r3(pk, sk, coins);
  scrub_stack();
  /* dk = dk_PKE || ek || H(ek) || z */
  memcpy(sk + KYBER_INDCPA_SECRETKEYBYTES, pk, KYBER_PUBLICKEYBYTES);
  sotto__sha3_256(sk + KYBER_SECRETKEYBYTES - 2 * SYM, pk, KYBER_PUBLICKEYBYTES);
  memcpy(sk + KYBER_SECRETKEYBYTES - SYM, coins + SYM, SYM);
  return 0;
}

int sotto_kyber1024_keypair(uint8_t pk[SOTTO_KYBER1024_PK_LEN], uint8_t sk[SOTTO_KYBER1024_SK_LEN]) {
  uint8_t coins[SOTTO_KYBER_SEED_LEN];
  int rc;
  if (pk == NULL || sk == NULL) return sotto_kyber1024_keypair_derand(pk, sk, NULL);
  if (sodium_init() < 0) {
    sodium_memzero(pk, SOTTO_KYBER1024_PK_LEN);
    sodium_memzero(sk, SOTTO_KYBER1024_SK_LEN);
    return SOTTO_ERR_RANDOM;
  }
  randombytes_buf(coins, sizeof coins);
  rc = sotto_kyber1024_keypair_derand(pk, sk, coins);
  sodium_memzero(coins, sizeof coins);
  return rc;
}

int sotto_kyber1024_check_pk(const uint8_t *pk, size_t pk_len) {
  return sotto_mlkem1024_check_pk(pk, pk_len);
}

int sotto_kyber1024_encaps_derand(uint8_t ct[SOTTO_KYBER1024_CT_LEN],
                                  uint8_t ss[SOTTO_KYBER_SS_LEN], const uint8_t *pk, size_t pk_len,
                                  const uint8_t m0[SOTTO_KYBER_ENCAPS_COINS_LEN]) {
  uint8_t buf[2 * SYM], kr[2 * SYM], hc[SYM];
  int rc = 0;

  if (ct == NULL || ss == NULL || m0 == NULL) {
    rc = SOTTO_ERR_USAGE;
    goto out;
  }
  if ((rc = sotto_kyber1024_check_pk(pk, pk_len)) != 0) goto out;
  sotto__sha3_256(buf, m0, SYM);                   /* m = H(m0): never release raw RNG output */
  sotto__sha3_256(buf + SYM, pk, KYBER_PUBLICKEYBYTES); /* H(ek) */
  sotto__sha3_512(kr, buf, 2 * SYM);               /* (K', r) = G(m || H(ek)) */
  PQCLEAN_MLKEM1024_CLEAN_indcpa_enc(ct, buf, pk, kr + SYM);
  scrub_stack();
  sotto__sha3_256(hc, ct, KYBER_CIPHERTEXTBYTES);
  kdf(ss, kr, hc); /* K = KDF(K' || H(c)) */
out:
  sodium_memzero(buf, sizeof buf);
  sodium_memzero(kr, sizeof kr);
  if (rc != 0) {
    if (ct != NULL) sodium_memzero(ct, SOTTO_KYBER1024_CT_LEN);
    if (ss != NULL) sodium_memzero(ss, SOTTO_KYBER_SS_LEN);
  }
  return rc;
}

int sotto_kyber1024_encaps(uint8_t ct[SOTTO_KYBER1024_CT_LEN], uint8_t ss[SOTTO_KYBER_SS_LEN],
                           const uint8_t *pk, size_t pk_len) {
  uint8_t m0[SOTTO_KYBER_ENCAPS_COINS_LEN];
  int rc;
  if (ct == NULL || ss == NULL) return sotto_kyber1024_encaps_derand(ct, ss, pk, pk_len, NULL);
  rc = sotto_kyber1024_check_pk(pk, pk_len);
  if (rc == 0 && sodium_init() < 0) rc = SOTTO_ERR_RANDOM;
  if (rc != 0) {
    sodium_memzero(ct, SOTTO_KYBER1024_CT_LEN);
    sodium_memzero(ss, SOTTO_KYBER_SS_LEN);
    return rc;
  }
  randombytes_buf(m0, sizeof m0);
  rc = sotto_kyber1024_encaps_derand(ct, ss, pk, pk_len, m0);
  sodium_memzero(m0, sizeof m0);
  return rc;
}

int sotto_kyber1024_decaps(uint8_t ss[SOTTO_KYBER_SS_LEN], const uint8_t *ct, size_t ct_len,
                           const uint8_t *sk, size_t sk_len) {
  uint8_t buf[2 * SYM], kr[2 * SYM], h[SYM];
  uint8_t cmp[KYBER_CIPHERTEXTBYTES];
  const uint8_t *pk, *z;
  int rc = 0, fail;

  if (ss == NULL) return SOTTO_ERR_USAGE;
  if (ct == NULL || sk == NULL) {
    rc = SOTTO_ERR_USAGE;
    goto out;
  }
  if (ct_len != KYBER_CIPHERTEXTBYTES) {
    rc = SOTTO_ERR_MALFORMED;
    goto out;
  }
  if (sk_len != KYBER_SECRETKEYBYTES) {
    rc = SOTTO_ERR_INVALID_KEY;
    goto out;
  }
  pk = sk + KYBER_INDCPA_SECRETKEYBYTES;
  z = sk + KYBER_SECRETKEYBYTES - SYM;
  sotto__sha3_256(h, pk, KYBER_PUBLICKEYBYTES);
  if (sodium_memcmp(h, sk + KYBER_SECRETKEYBYTES - 2 * SYM, SYM) != 0) {
    rc = SOTTO_ERR_INVALID_KEY;
    goto out;
  }
  PQCLEAN_MLKEM1024_CLEAN_indcpa_dec(buf, ct, sk);       /* m' */
  memcpy(buf + SYM, sk + KYBER_SECRETKEYBYTES - 2 * SYM, SYM); /* H(ek) */
  sotto__sha3_512(kr, buf, 2 * SYM);                      /* (K', r') */
  PQCLEAN_MLKEM1024_CLEAN_indcpa_enc(cmp, buf, pk, kr + SYM);
  scrub_stack();
  fail = PQCLEAN_MLKEM1024_CLEAN_verify(ct, cmp, KYBER_CIPHERTEXTBYTES);
  /* Implicit rejection: K' is replaced by z, in constant time. */
  PQCLEAN_MLKEM1024_CLEAN_cmov(kr, z, SYM, (uint8_t)fail);
  sotto__sha3_256(h, ct, KYBER_CIPHERTEXTBYTES);
  kdf(ss, kr, h);
out:
  sodium_memzero(buf, sizeof buf);
  sodium_memzero(kr, sizeof kr);
  sodium_memzero(cmp, sizeof cmp);
  if (rc != 0) sodium_memzero(ss, SOTTO_KYBER_SS_LEN);
  return rc;
}

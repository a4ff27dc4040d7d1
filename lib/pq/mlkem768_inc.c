/* SPDX-License-Identifier: Apache-2.0 */
/* mlkem768_inc.c: ML-KEM-768 encapsulation in two steps (mlkem768_inc.h),
 * over PQClean's ml-kem-768 polynomial arithmetic: K-PKE.Encrypt (FIPS 203
 * Algorithm 14) split after u. */
#include <sodium.h>
#include <sotto/error.h>
#include <sotto/mlkem.h>
#include <string.h>

#include "ml-kem-768/clean/indcpa.h"
#include "ml-kem-768/clean/params.h"
#include "ml-kem-768/clean/poly.h"
#include "ml-kem-768/clean/polyvec.h"
#include "pq/keccak.h"
#include "pq/mlkem768_inc.h"

_Static_assert(SOTTO_MLKEM768_EK_VEC_LEN == KYBER_POLYVECBYTES, "t");
_Static_assert(SOTTO_MLKEM768_CT1_LEN == KYBER_POLYVECCOMPRESSEDBYTES, "ct1");
_Static_assert(SOTTO_MLKEM768_CT2_LEN == KYBER_POLYCOMPRESSEDBYTES, "ct2");

#define SYM KYBER_SYMBYTES

static __attribute__((noinline)) void scrub_stack(void) {
  uint8_t area[32 * 1024];
  sodium_memzero(area, sizeof area);
}

int sotto__mlkem768_header(uint8_t hdr[SOTTO_MLKEM768_HDR_LEN], const uint8_t *pk, size_t pk_len) {
  if (hdr == NULL || pk == NULL) return SOTTO_ERR_USAGE;
  if (pk_len != SOTTO_MLKEM768_PK_LEN) return SOTTO_ERR_INVALID_KEY;
  memcpy(hdr, pk + KYBER_POLYVECBYTES, SYM);
  sotto__sha3_256(hdr + SYM, pk, pk_len);
  return 0;
}

int sotto__mlkem768_ek_matches(const uint8_t hdr[SOTTO_MLKEM768_HDR_LEN],
                               const uint8_t t[SOTTO_MLKEM768_EK_VEC_LEN]) {
  uint8_t pk[SOTTO_MLKEM768_PK_LEN], h[SYM];
  int rc;
  memcpy(pk, t, KYBER_POLYVECBYTES);
  memcpy(pk + KYBER_POLYVECBYTES, hdr, SYM);
  if ((rc = sotto_mlkem768_check_pk(pk, sizeof pk)) != 0) return rc;
  sotto__sha3_256(h, pk, sizeof pk);
  return sodium_memcmp(h, hdr + SYM, SYM) == 0 ? 0 : SOTTO_ERR_INVALID_KEY;
}

/* r-hat = NTT(CBD_eta1(PRF(r, 0..2))), e1 = CBD_eta2(PRF(r, 3..5)),
 * e2 = CBD_eta2(PRF(r, 6)): the noise of K-PKE.Encrypt. */
static void noise(polyvec *sp, polyvec *ep, poly *epp, const uint8_t r[SYM]) {
  uint8_t nonce = 0;
  unsigned i;
  for (i = 0; i < KYBER_K; i++) PQCLEAN_MLKEM768_CLEAN_poly_getnoise_eta1(&sp->vec[i], r, nonce++);
  for (i = 0; i < KYBER_K; i++) PQCLEAN_MLKEM768_CLEAN_poly_getnoise_eta2(&ep->vec[i], r, nonce++);
  PQCLEAN_MLKEM768_CLEAN_poly_getnoise_eta2(epp, r, nonce++);
  PQCLEAN_MLKEM768_CLEAN_polyvec_ntt(sp);
}

static __attribute__((noinline)) void enc_u(uint8_t ct1[SOTTO_MLKEM768_CT1_LEN],
                                            const uint8_t rho[SYM], const uint8_t r[SYM]) {
  polyvec at[KYBER_K], sp, ep, b;
  poly epp;
  unsigned i;
  PQCLEAN_MLKEM768_CLEAN_gen_matrix(at, rho, 1);
  noise(&sp, &ep, &epp, r);
  for (i = 0; i < KYBER_K; i++)
    PQCLEAN_MLKEM768_CLEAN_polyvec_basemul_acc_montgomery(&b.vec[i], &at[i], &sp);
  PQCLEAN_MLKEM768_CLEAN_polyvec_invntt_tomont(&b);
  PQCLEAN_MLKEM768_CLEAN_polyvec_add(&b, &b, &ep);
  PQCLEAN_MLKEM768_CLEAN_polyvec_reduce(&b);
  PQCLEAN_MLKEM768_CLEAN_polyvec_compress(ct1, &b);
}

static __attribute__((noinline)) void enc_v(uint8_t ct2[SOTTO_MLKEM768_CT2_LEN],
                                            const uint8_t t[SOTTO_MLKEM768_EK_VEC_LEN],
                                            const uint8_t m[SYM], const uint8_t r[SYM]) {
  polyvec pkpv, sp, ep;
  poly v, k, epp;
  PQCLEAN_MLKEM768_CLEAN_polyvec_frombytes(&pkpv, t);
  PQCLEAN_MLKEM768_CLEAN_poly_frommsg(&k, m);
  noise(&sp, &ep, &epp, r);
  PQCLEAN_MLKEM768_CLEAN_polyvec_basemul_acc_montgomery(&v, &pkpv, &sp);
  PQCLEAN_MLKEM768_CLEAN_poly_invntt_tomont(&v);
  PQCLEAN_MLKEM768_CLEAN_poly_add(&v, &v, &epp);
  PQCLEAN_MLKEM768_CLEAN_poly_add(&v, &v, &k);
  PQCLEAN_MLKEM768_CLEAN_poly_reduce(&v);
  PQCLEAN_MLKEM768_CLEAN_poly_compress(ct2, &v);
}

int sotto__mlkem768_encaps1(uint8_t ct1[SOTTO_MLKEM768_CT1_LEN],
                            uint8_t state[SOTTO_MLKEM768_INC_STATE_LEN], uint8_t ss[32],
                            const uint8_t hdr[SOTTO_MLKEM768_HDR_LEN], const uint8_t m[32]) {
  uint8_t buf[2 * SYM], kr[2 * SYM];
  if (ct1 == NULL || state == NULL || ss == NULL || hdr == NULL || m == NULL)
    return SOTTO_ERR_USAGE;
  /* (K, r) = G(m || H(ek)) */
  memcpy(buf, m, SYM);
  memcpy(buf + SYM, hdr + SYM, SYM);
  sotto__sha3_512(kr, buf, sizeof buf);
  enc_u(ct1, hdr, kr + SYM);
  scrub_stack();
  memcpy(ss, kr, SYM);
  memcpy(state, m, SYM);
  memcpy(state + SYM, kr + SYM, SYM);
  sodium_memzero(buf, sizeof buf);
  sodium_memzero(kr, sizeof kr);
  return 0;
}

int sotto__mlkem768_encaps2(uint8_t ct2[SOTTO_MLKEM768_CT2_LEN],
                            const uint8_t state[SOTTO_MLKEM768_INC_STATE_LEN],
                            const uint8_t hdr[SOTTO_MLKEM768_HDR_LEN],
                            const uint8_t t[SOTTO_MLKEM768_EK_VEC_LEN]) {
  int rc;
  if (ct2 == NULL || state == NULL || hdr == NULL || t == NULL) return SOTTO_ERR_USAGE;
  if ((rc = sotto__mlkem768_ek_matches(hdr, t)) != 0) return rc;
  enc_v(ct2, t, state, state + SYM);
  scrub_stack();
  return 0;
}

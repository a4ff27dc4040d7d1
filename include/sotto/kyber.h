/* SPDX-License-Identifier: Apache-2.0 */
/* sotto/kyber.h: Kyber-1024 as submitted to NIST round 3 (version 3.02),
 * the KEM today's libsignal uses for PQXDH (key type byte 0x08).
 *
 * Kyber-1024 round 3 and ML-KEM-1024 (FIPS 203, sotto/mlkem.h) share every
 * size and all of the lattice arithmetic (PQClean's ml-kem-1024 "clean" code
 * does it for both here); they differ only in the hashing around it, so a key
 * pair or ciphertext of one is NOT usable with the other:
 *   key generation  round 3: (rho, sigma) = G(d)        FIPS 203: G(d || k)
 *   encapsulation   round 3: m = H(m0); (K', r) = G(m || H(ek));
 *                            c = Enc(ek, m, r); K = KDF(K' || H(c))
 *                   FIPS 203: (K, r) = G(m || H(ek)); c = Enc(ek, m, r)
 *   implicit        round 3: K = KDF(z || H(c))         FIPS 203: K = J(z || c)
 *   rejection
 * with H = SHA3-256, G = SHA3-512, KDF = SHAKE-256 to 32 bytes.
 *
 * sotto uses ML-KEM-1024 between sotto peers; Kyber-1024 exists for peers
 * that speak today's libsignal. The same input checks as sotto/mlkem.h are
 * applied (the round-3 specification does not require them, but a key that
 * fails them was not made by KeyGen): ek length and every coefficient < q;
 * ciphertext length; dk length and H(ek inside dk) == the hash stored in dk.
 *
 * Sizes: ek 1568, dk 3168 (dk_PKE || ek || H(ek) || z), ciphertext 1568,
 * shared secret 32. Return values and the zeroing of outputs on failure are
 * those of sotto/mlkem.h. Known answers: NIST's round-3 KAT file
 * PQCkemKAT_3168.rsp (tests/vectors/kyber/README.md). */
#ifndef SOTTO_KYBER_H
#define SOTTO_KYBER_H
#include <sotto/error.h>
#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_KYBER1024_PK_LEN 1568
#define SOTTO_KYBER1024_SK_LEN 3168
#define SOTTO_KYBER1024_CT_LEN 1568
#define SOTTO_KYBER_SS_LEN 32
/* Key-generation randomness d || z, in the order the round-3 reference code
 * draws it. */
#define SOTTO_KYBER_SEED_LEN 64
/* Encapsulation randomness m0 (hashed to m before use). */
#define SOTTO_KYBER_ENCAPS_COINS_LEN 32

SOTTO_WUR int sotto_kyber1024_keypair(uint8_t pk[SOTTO_KYBER1024_PK_LEN],
                                      uint8_t sk[SOTTO_KYBER1024_SK_LEN]);
SOTTO_WUR int sotto_kyber1024_keypair_derand(uint8_t pk[SOTTO_KYBER1024_PK_LEN],
                                             uint8_t sk[SOTTO_KYBER1024_SK_LEN],
                                             const uint8_t coins[SOTTO_KYBER_SEED_LEN]);
SOTTO_WUR int sotto_kyber1024_check_pk(const uint8_t *pk, size_t pk_len);
SOTTO_WUR int sotto_kyber1024_encaps(uint8_t ct[SOTTO_KYBER1024_CT_LEN],
                                     uint8_t ss[SOTTO_KYBER_SS_LEN], const uint8_t *pk,
                                     size_t pk_len);
SOTTO_WUR int sotto_kyber1024_encaps_derand(uint8_t ct[SOTTO_KYBER1024_CT_LEN],
                                            uint8_t ss[SOTTO_KYBER_SS_LEN], const uint8_t *pk,
                                            size_t pk_len,
                                            const uint8_t m0[SOTTO_KYBER_ENCAPS_COINS_LEN]);
SOTTO_WUR int sotto_kyber1024_decaps(uint8_t ss[SOTTO_KYBER_SS_LEN], const uint8_t *ct,
                                     size_t ct_len, const uint8_t *sk, size_t sk_len);

#ifdef __cplusplus
}
#endif
#endif

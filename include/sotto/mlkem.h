/* SPDX-License-Identifier: Apache-2.0 */
/* sotto/mlkem.h: ML-KEM-768 and ML-KEM-1024 (FIPS 203), with the input checks.
 *
 * The arithmetic is PQClean's "clean" ML-KEM (npm pqclean@0.8.1, fetched by
 * scripts/fetch-pqclean.sh). This layer adds what PQClean leaves out:
 *   - FIPS 203 section 7.2 encapsulation-key checks: length, and the modulus
 *     check ByteEncode12(ByteDecode12(ek)) == ek (every coefficient < q = 3329);
 *   - FIPS 203 section 7.3 decapsulation checks: ciphertext length, dk length,
 *     and the hash check H(ek embedded in dk) == the hash stored in dk;
 *   - randomness from libsodium, wiping of seeds, zeroed outputs on failure.
 *
 * Sizes (bytes):          ek (pk)   dk (sk)   ciphertext   shared secret
 *   ML-KEM-768              1184      2400       1088            32
 *   ML-KEM-1024             1568      3168       1568            32
 * dk is the FIPS 203 expanded decapsulation key: dk_PKE || ek || H(ek) || z.
 *
 * Every function returns 0 or a negative SOTTO_ERR_* code:
 *   SOTTO_ERR_USAGE        a NULL pointer where a buffer is required;
 *   SOTTO_ERR_INVALID_KEY  a key of the wrong length, an ek failing the modulus
 *                          check, a dk failing the hash check, a seed of the
 *                          wrong length;
 *   SOTTO_ERR_MALFORMED    a ciphertext of the wrong length;
 *   SOTTO_ERR_RANDOM       libsodium could not be initialised, so no random
 *                          bytes were drawn (libsodium itself aborts if the
 *                          OS generator fails after initialisation).
 * On any failure every output buffer that was passed is zeroed. Nothing here
 * allocates memory, logs or exits. A ciphertext of the right length that does
 * not decrypt is NOT an error: decapsulation then returns the FIPS 203 implicit
 * rejection key J(z || c), so callers learn nothing from the result code.
 *
 * All functions are safe to call from several threads at once. */
#ifndef SOTTO_MLKEM_H
#define SOTTO_MLKEM_H

#include <sotto/error.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_MLKEM768_PK_LEN 1184
#define SOTTO_MLKEM768_SK_LEN 2400
#define SOTTO_MLKEM768_CT_LEN 1088
#define SOTTO_MLKEM1024_PK_LEN 1568
#define SOTTO_MLKEM1024_SK_LEN 3168
#define SOTTO_MLKEM1024_CT_LEN 1568
#define SOTTO_MLKEM_SS_LEN 32
/* Key-generation seed d || z (FIPS 203 ML-KEM.KeyGen_internal). */
#define SOTTO_MLKEM_SEED_LEN 64
/* Encapsulation randomness m (FIPS 203 ML-KEM.Encaps_internal). */
#define SOTTO_MLKEM_ENCAPS_COINS_LEN 32

/* ---- ML-KEM-768 ---------------------------------------------------------- */

/* Generates a fresh key pair from 64 random bytes (d || z). The caller owns pk
 * and sk; sk is secret and should live in guarded memory (sodium_malloc) if it
 * is long-lived. The seed is wiped. */
SOTTO_WUR int sotto_mlkem768_keypair(uint8_t pk[SOTTO_MLKEM768_PK_LEN], uint8_t sk[SOTTO_MLKEM768_SK_LEN]);

/* Deterministic key generation, ML-KEM.KeyGen_internal(d, z) with
 * coins = d || z. For tests and for keys stored as seeds; coins are secret and
 * remain the caller's to wipe. Never fails on valid pointers. */
SOTTO_WUR int sotto_mlkem768_keypair_derand(uint8_t pk[SOTTO_MLKEM768_PK_LEN],
                                            uint8_t sk[SOTTO_MLKEM768_SK_LEN],
                                            const uint8_t coins[SOTTO_MLKEM_SEED_LEN]);

/* Same as _keypair_derand for a seed of untrusted length (for example one read
 * back from storage): SOTTO_ERR_INVALID_KEY unless seed_len is 64. */
SOTTO_WUR int sotto_mlkem768_keypair_from_seed(uint8_t pk[SOTTO_MLKEM768_PK_LEN],
                                               uint8_t sk[SOTTO_MLKEM768_SK_LEN], const uint8_t *seed,
                                               size_t seed_len);

/* Checks an encapsulation key received from a peer (FIPS 203 section 7.2):
 * 0 if pk_len is right and every coefficient is below q, otherwise
 * SOTTO_ERR_INVALID_KEY. The _encaps functions run this check themselves. */
SOTTO_WUR int sotto_mlkem768_check_pk(const uint8_t *pk, size_t pk_len);

/* Encapsulates to pk: writes the ciphertext ct and the shared secret ss. pk is
 * checked first (see _check_pk). The random m is wiped. ss is secret and the
 * caller's to wipe. */
SOTTO_WUR int sotto_mlkem768_encaps(uint8_t ct[SOTTO_MLKEM768_CT_LEN], uint8_t ss[SOTTO_MLKEM_SS_LEN],
                                    const uint8_t *pk, size_t pk_len);

/* Deterministic encapsulation, ML-KEM.Encaps_internal(ek, m). For tests. */
SOTTO_WUR int sotto_mlkem768_encaps_derand(uint8_t ct[SOTTO_MLKEM768_CT_LEN], uint8_t ss[SOTTO_MLKEM_SS_LEN],
                                           const uint8_t *pk, size_t pk_len,
                                           const uint8_t m[SOTTO_MLKEM_ENCAPS_COINS_LEN]);

/* Decapsulates ct with sk into ss, after the section 7.3 checks (ct length:
 * SOTTO_ERR_MALFORMED; sk length or hash: SOTTO_ERR_INVALID_KEY). */
SOTTO_WUR int sotto_mlkem768_decaps(uint8_t ss[SOTTO_MLKEM_SS_LEN], const uint8_t *ct, size_t ct_len,
                                    const uint8_t *sk, size_t sk_len);

/* ---- ML-KEM-1024: same contracts as the 768 functions above --------------- */

SOTTO_WUR int sotto_mlkem1024_keypair(uint8_t pk[SOTTO_MLKEM1024_PK_LEN], uint8_t sk[SOTTO_MLKEM1024_SK_LEN]);
SOTTO_WUR int sotto_mlkem1024_keypair_derand(uint8_t pk[SOTTO_MLKEM1024_PK_LEN],
                                             uint8_t sk[SOTTO_MLKEM1024_SK_LEN],
                                             const uint8_t coins[SOTTO_MLKEM_SEED_LEN]);
SOTTO_WUR int sotto_mlkem1024_keypair_from_seed(uint8_t pk[SOTTO_MLKEM1024_PK_LEN],
                                                uint8_t sk[SOTTO_MLKEM1024_SK_LEN], const uint8_t *seed,
                                                size_t seed_len);
SOTTO_WUR int sotto_mlkem1024_check_pk(const uint8_t *pk, size_t pk_len);
SOTTO_WUR int sotto_mlkem1024_encaps(uint8_t ct[SOTTO_MLKEM1024_CT_LEN], uint8_t ss[SOTTO_MLKEM_SS_LEN],
                                     const uint8_t *pk, size_t pk_len);
SOTTO_WUR int sotto_mlkem1024_encaps_derand(uint8_t ct[SOTTO_MLKEM1024_CT_LEN],
                                            uint8_t ss[SOTTO_MLKEM_SS_LEN], const uint8_t *pk, size_t pk_len,
                                            const uint8_t m[SOTTO_MLKEM_ENCAPS_COINS_LEN]);
SOTTO_WUR int sotto_mlkem1024_decaps(uint8_t ss[SOTTO_MLKEM_SS_LEN], const uint8_t *ct, size_t ct_len,
                                     const uint8_t *sk, size_t sk_len);

#ifdef __cplusplus
}
#endif
#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* mlkem768_inc.h (internal): ML-KEM-768 (FIPS 203) encapsulation in two
 * steps, as SPQR v1 uses it (libcrux's "incremental" API; the layout below
 * was checked against libsignal 0.103's session state, the C is ours):
 *   header  = rho (32) || H(ek) (32), where ek = t (1152) || rho
 *   ek part = t, the 1152-byte vector
 *   ct1     = Compress_du(u) (960 bytes), computable from the header alone
 *   ct2     = Compress_dv(v) (128 bytes), needs t
 * ct1 || ct2 is an ordinary ML-KEM-768 ciphertext and the shared secret is
 * ML-KEM's K = G(m || H(ek))[0..32], so the decapsulator uses plain
 * sotto_mlkem768_decaps with an ordinary 2400-byte dk. The state kept between
 * the steps is m || r (64 bytes, secret): encaps2 re-derives the noise. */
#ifndef SOTTO_PQ_MLKEM768_INC_H
#define SOTTO_PQ_MLKEM768_INC_H

#include <stddef.h>
#include <stdint.h>

#define SOTTO_MLKEM768_HDR_LEN 64
#define SOTTO_MLKEM768_EK_VEC_LEN 1152
#define SOTTO_MLKEM768_CT1_LEN 960
#define SOTTO_MLKEM768_CT2_LEN 128
#define SOTTO_MLKEM768_INC_STATE_LEN 64

/* Header of a full 1184-byte encapsulation key. */
int sotto__mlkem768_header(uint8_t hdr[SOTTO_MLKEM768_HDR_LEN], const uint8_t *pk, size_t pk_len);
/* 0 when t with the header's rho hashes to the header's H(ek) and every
 * coefficient of t is below q; else SOTTO_ERR_INVALID_KEY. */
int sotto__mlkem768_ek_matches(const uint8_t hdr[SOTTO_MLKEM768_HDR_LEN],
                               const uint8_t t[SOTTO_MLKEM768_EK_VEC_LEN]);
/* Step 1 with the encapsulation randomness m (32 bytes). */
int sotto__mlkem768_encaps1(uint8_t ct1[SOTTO_MLKEM768_CT1_LEN],
                            uint8_t state[SOTTO_MLKEM768_INC_STATE_LEN], uint8_t ss[32],
                            const uint8_t hdr[SOTTO_MLKEM768_HDR_LEN], const uint8_t m[32]);
/* Step 2, once t has arrived and matched the header. */
int sotto__mlkem768_encaps2(uint8_t ct2[SOTTO_MLKEM768_CT2_LEN],
                            const uint8_t state[SOTTO_MLKEM768_INC_STATE_LEN],
                            const uint8_t hdr[SOTTO_MLKEM768_HDR_LEN],
                            const uint8_t t[SOTTO_MLKEM768_EK_VEC_LEN]);

#endif

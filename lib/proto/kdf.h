/* SPDX-License-Identifier: Apache-2.0 */
/* kdf.h: the Signal v3 key derivations, exposed inside the library so that
 * known-answer tests can reach them (notes/signal-v3.md 4.3, 4.4). */
#ifndef SOTTO_KDF_H
#define SOTTO_KDF_H
#include <sotto/error.h>
#include <stdint.h>

/* X3DH: (RK, CK) = HKDF(0, 0xFF*32 || DH1..DHn, "WhisperText", 64). */
SOTTO_WUR int sotto__x3dh_kdf(uint8_t rk[32], uint8_t ck[32], const uint8_t dh[4][32], unsigned n_dh);
/* PQXDH: the X3DH input with the KEM secret appended, info
 * "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024", 96 bytes = RK || CK || pqr.
 * ss == NULL gives X3DH (pqr untouched). */
SOTTO_WUR int sotto__pqxdh_kdf(uint8_t rk[32], uint8_t ck[32], uint8_t pqr[32], const uint8_t dh[4][32],
                               unsigned n_dh, const uint8_t ss[32]);
/* KDF_CK: seed = HMAC(CK, 0x01), next = HMAC(CK, 0x02); either output may be
 * NULL or alias ck. */
void sotto__kdf_ck(uint8_t seed[32], uint8_t next_ck[32], const uint8_t ck[32]);
/* Message keys: HKDF(0, seed, "WhisperMessageKeys", 80) = key 32 || mac 32 || iv 16. */
SOTTO_WUR int sotto__message_keys(uint8_t out[80], const uint8_t seed[32]);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* auth.h (internal): the SPQR v1 authenticator, which MACs each epoch's
 * ML-KEM-768 header and ciphertext (SparsePostQuantumRatchet v1.5.3
 * src/authenticator.rs; the C is ours):
 *   start (epoch e, key k): root = mac = 0^32, then update(e, k)
 *   update(e, k): root' || mac' = HKDF(salt 0^32, IKM root || k,
 *                 "Signal_PQCKA_V1_MLKEM768:Authenticator Update" || BE64(e), 64)
 *   header MAC: HMAC-SHA256(mac, "Signal_PQCKA_V1_MLKEM768:ekheader" || BE64(e) || hdr)
 *   ciphertext MAC: HMAC-SHA256(mac, "Signal_PQCKA_V1_MLKEM768:ciphertext" || BE64(e) || ct)
 * The SCKA epoch secret: HKDF(salt 0^32, IKM ML-KEM shared secret,
 *                 "Signal_PQCKA_V1_MLKEM768:SCKA Key" || BE64(e), 32). */
#ifndef SOTTO_SPQR_AUTH_H
#define SOTTO_SPQR_AUTH_H

#include <stddef.h>
#include <stdint.h>

struct sotto__spqr_auth {
  uint8_t root[32], mac[32];
};

/* key_len <= 64 (SPQR passes 32-byte keys), else SOTTO_ERR_USAGE. */
int sotto__spqr_auth_init(struct sotto__spqr_auth *a, const uint8_t *key, size_t key_len,
                          uint64_t epoch);
int sotto__spqr_auth_update(struct sotto__spqr_auth *a, uint64_t epoch, const uint8_t *k,
                            size_t k_len);
void sotto__spqr_auth_mac_hdr(uint8_t out[32], const struct sotto__spqr_auth *a, uint64_t epoch,
                              const uint8_t *hdr, size_t len);
void sotto__spqr_auth_mac_ct(uint8_t out[32], const struct sotto__spqr_auth *a, uint64_t epoch,
                             const uint8_t *ct, size_t len);
/* 0 when mac is right (constant time), else SOTTO_ERR_AUTH. */
int sotto__spqr_auth_verify_hdr(const struct sotto__spqr_auth *a, uint64_t epoch,
                                const uint8_t *hdr, size_t len, const uint8_t mac[32]);
int sotto__spqr_auth_verify_ct(const struct sotto__spqr_auth *a, uint64_t epoch, const uint8_t *ct,
                               size_t len, const uint8_t mac[32]);
void sotto__spqr_scka_key(uint8_t out[32], const uint8_t ss[32], uint64_t epoch);

#endif

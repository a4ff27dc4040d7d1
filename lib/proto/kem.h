/* SPDX-License-Identifier: Apache-2.0 */
/* kem.h (internal): the PQXDH KEM by type byte, ML-KEM-1024 (0x0A) or
 * Kyber-1024 round 3 (0x08). Serialized keys and ciphertexts carry the type
 * byte first (SOTTO_KEM_PUBKEY_LEN / SOTTO_KEM_CIPHERTEXT_LEN bytes). */
#ifndef SOTTO_PROTO_KEM_H
#define SOTTO_PROTO_KEM_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/limits.h>

/* 1 for a KEM type byte sotto speaks, else 0. */
int sotto__kem_type_ok(uint8_t type);
/* Encapsulates to a serialized public key; ct gets the same type byte.
 * SOTTO_ERR_INVALID_KEY for an unknown type or a key failing its checks. */
int sotto__kem_encaps(uint8_t ct[SOTTO_KEM_CIPHERTEXT_LEN], uint8_t ss[32],
                      const uint8_t pub[SOTTO_KEM_PUBKEY_LEN]);
/* Decapsulates a serialized ciphertext with a raw decapsulation key; the
 * ciphertext's type byte picks the KEM (SOTTO_ERR_MALFORMED for an unknown
 * type or a wrong length). A key of the other KEM gives a wrong secret, not
 * an error: the first message's MAC then fails. */
int sotto__kem_decaps(uint8_t ss[32], const uint8_t *ct, size_t ct_len, const uint8_t *sk,
                      size_t sk_len);

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* sotto/keys.h: Curve25519 key pairs, XEdDSA signatures, registration ids.
 *
 * Keys are raw 32-byte arrays: a public key is the X25519 u-coordinate, a
 * private key the clamped scalar. Where the protocol serializes a public key
 * (on the wire, in MAC inputs, signatures, fingerprints) it is 0x05 || u. */
#ifndef SOTTO_KEYS_H
#define SOTTO_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/error.h>
#include <sotto/limits.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Initialises the library (libsodium, OpenSSL). Every other function calls it
 * as needed; calling it first just makes failures visible early. */
SOTTO_WUR int sotto_init(void);

/* Generates a fresh key pair from the OS CSPRNG. */
SOTTO_WUR int sotto_keypair_generate(uint8_t pub[SOTTO_PUBKEY_LEN], uint8_t priv[SOTTO_PRIVKEY_LEN]);
/* Computes the public key of a private key. */
SOTTO_WUR int sotto_public_key(uint8_t pub[SOTTO_PUBKEY_LEN], const uint8_t priv[SOTTO_PRIVKEY_LEN]);

/* XEdDSA signature (libsignal-compatible) of msg by priv. */
SOTTO_WUR int sotto_sign(uint8_t sig[SOTTO_SIGNATURE_LEN], const uint8_t priv[SOTTO_PRIVKEY_LEN],
                         const uint8_t *msg, size_t msg_len);
/* Verifies sig over msg by the public key. Returns 0 or SOTTO_ERR_AUTH. Both
 * libsignal's signatures (Edwards sign bit in bit 511) and the XEdDSA
 * paper's (sign bit 0) verify. */
SOTTO_WUR int sotto_verify(const uint8_t pub[SOTTO_PUBKEY_LEN], const uint8_t *msg, size_t msg_len,
                           const uint8_t sig[SOTTO_SIGNATURE_LEN]);

/* Writes the 33-byte serialization 0x05 || pub. */
void sotto_pubkey_serialize(uint8_t out[SOTTO_SERIALIZED_PUBKEY_LEN], const uint8_t pub[SOTTO_PUBKEY_LEN]);
/* Parses a 33-byte serialized public key; SOTTO_ERR_INVALID_KEY on a wrong
 * length or type byte. */
SOTTO_WUR int sotto_pubkey_parse(uint8_t pub[SOTTO_PUBKEY_LEN], const uint8_t *in, size_t in_len);

/* A random registration id in 1..SOTTO_MAX_REGISTRATION_ID. */
SOTTO_WUR int sotto_registration_id_generate(uint32_t *id);

/* Signed pre-key: signature = Sign(identity, 0x05 || spk_pub). */
SOTTO_WUR int sotto_signed_prekey_sign(uint8_t sig[SOTTO_SIGNATURE_LEN],
                                       const uint8_t identity_priv[SOTTO_PRIVKEY_LEN],
                                       const uint8_t spk_pub[SOTTO_PUBKEY_LEN]);

/* Wipes n bytes (never optimised away). */
void sotto_wipe(void *p, size_t n);

#ifdef __cplusplus
}
#endif
#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* keys.c: public key, signature and registration-id entry points. */
#include <sotto/keys.h>
#include <sodium.h>
#include <string.h>

#include "crypto/crypto.h"

int sotto_init(void) { return sotto__crypto_init(); }

int sotto_keypair_generate(uint8_t pub[32], uint8_t priv[32]) {
  int rc = sotto__crypto_init();
  if (rc == 0) rc = sotto__x25519_keygen(pub, priv);
  return rc;
}

int sotto_public_key(uint8_t pub[32], const uint8_t priv[32]) {
  int rc = sotto__crypto_init();
  if (rc == 0) rc = sotto__x25519_public(pub, priv);
  return rc;
}

int sotto_sign(uint8_t sig[64], const uint8_t priv[32], const uint8_t *msg, size_t msg_len) {
  int rc = sotto__crypto_init();
  if (rc == 0 && msg == NULL && msg_len != 0) rc = SOTTO_ERR_USAGE;
  if (rc == 0) rc = sotto__xeddsa_sign(sig, priv, msg, msg_len);
  return rc;
}

int sotto_verify(const uint8_t pub[32], const uint8_t *msg, size_t msg_len, const uint8_t sig[64]) {
  int rc = sotto__crypto_init();
  if (rc == 0 && msg == NULL && msg_len != 0) rc = SOTTO_ERR_USAGE;
  if (rc == 0) rc = sotto__xeddsa_verify(pub, msg, msg_len, sig);
  return rc;
}

void sotto_pubkey_serialize(uint8_t out[33], const uint8_t pub[32]) {
  out[0] = SOTTO_DJB_TYPE;
  memcpy(out + 1, pub, 32);
}

int sotto_pubkey_parse(uint8_t pub[32], const uint8_t *in, size_t in_len) {
  if (in == NULL || in_len != 33 || in[0] != SOTTO_DJB_TYPE) return SOTTO_ERR_INVALID_KEY;
  memcpy(pub, in + 1, 32);
  return 0;
}

int sotto_registration_id_generate(uint32_t *id) {
  uint32_t r;
  int rc = sotto__crypto_init();
  if (rc != 0) return rc;
  /* Uniform in 1..SOTTO_MAX_REGISTRATION_ID. */
  r = randombytes_uniform(SOTTO_MAX_REGISTRATION_ID);
  *id = r + 1;
  return 0;
}

int sotto_signed_prekey_sign(uint8_t sig[64], const uint8_t identity_priv[32],
                             const uint8_t spk_pub[32]) {
  uint8_t ser[33];
  sotto_pubkey_serialize(ser, spk_pub);
  return sotto_sign(sig, identity_priv, ser, sizeof ser);
}

void sotto_wipe(void *p, size_t n) { sotto__wipe(p, n); }

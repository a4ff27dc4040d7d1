/* SPDX-License-Identifier: Apache-2.0 */
/* kem.c: the PQXDH KEM selected by its type byte (kem.h). ML-KEM-1024 is what
 * sotto peers use; Kyber-1024 round 3 is what libsignal 0.103 produces and
 * accepts. The signature over a KEM pre-key covers the type byte, so a
 * relabelled key fails verification before it gets here. */
#include <sotto/kyber.h>
#include <sotto/mlkem.h>
#include <sotto/session.h>

#include "crypto/crypto.h"
#include "proto/kem.h"

_Static_assert(SOTTO_KEM_PUBKEY_LEN == 1 + SOTTO_KYBER1024_PK_LEN, "kyber pk");
_Static_assert(SOTTO_KEM_CIPHERTEXT_LEN == 1 + SOTTO_KYBER1024_CT_LEN, "kyber ct");
_Static_assert(SOTTO_KEM_SECRETKEY_LEN == SOTTO_KYBER1024_SK_LEN, "kyber sk");

int sotto__kem_type_ok(uint8_t type) {
  return type == SOTTO_KEM_TYPE_MLKEM1024 || type == SOTTO_KEM_TYPE_KYBER1024;
}

int sotto__kem_encaps(uint8_t ct[SOTTO_KEM_CIPHERTEXT_LEN], uint8_t ss[32],
                      const uint8_t pub[SOTTO_KEM_PUBKEY_LEN]) {
  ct[0] = pub[0];
  switch (pub[0]) {
    case SOTTO_KEM_TYPE_MLKEM1024:
      return sotto_mlkem1024_encaps(ct + 1, ss, pub + 1, SOTTO_KEM_PUBKEY_LEN - 1);
    case SOTTO_KEM_TYPE_KYBER1024:
      return sotto_kyber1024_encaps(ct + 1, ss, pub + 1, SOTTO_KEM_PUBKEY_LEN - 1);
    default:
      ct[0] = 0;
      return SOTTO_ERR_INVALID_KEY;
  }
}

int sotto__kem_decaps(uint8_t ss[32], const uint8_t *ct, size_t ct_len, const uint8_t *sk,
                      size_t sk_len) {
  if (ct_len != SOTTO_KEM_CIPHERTEXT_LEN) return SOTTO_ERR_MALFORMED;
  switch (ct[0]) {
    case SOTTO_KEM_TYPE_MLKEM1024:
      return sotto_mlkem1024_decaps(ss, ct + 1, ct_len - 1, sk, sk_len);
    case SOTTO_KEM_TYPE_KYBER1024:
      return sotto_kyber1024_decaps(ss, ct + 1, ct_len - 1, sk, sk_len);
    default:
      return SOTTO_ERR_MALFORMED;
  }
}

int sotto_kem_keypair_generate_type(uint8_t pub[SOTTO_KEM_PUBKEY_LEN],
                                    uint8_t sk[SOTTO_KEM_SECRETKEY_LEN], uint8_t type) {
  int rc;
  if (pub == NULL || sk == NULL) return SOTTO_ERR_USAGE;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  pub[0] = type;
  switch (type) {
    case SOTTO_KEM_TYPE_MLKEM1024:
      return sotto_mlkem1024_keypair(pub + 1, sk);
    case SOTTO_KEM_TYPE_KYBER1024:
      return sotto_kyber1024_keypair(pub + 1, sk);
    default:
      pub[0] = 0;
      return SOTTO_ERR_USAGE;
  }
}

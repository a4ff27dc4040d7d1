/* SPDX-License-Identifier: Apache-2.0 */
/* aes.c: AES-256-CBC with PKCS#7 padding via OpenSSL EVP (AES-NI).
 * The cipher is fetched once at init; each call uses a fresh context
 * (one allocation) so the functions stay thread-safe. */
#include <openssl/evp.h>
#include <string.h>

#include "crypto.h"

static EVP_CIPHER *aes256cbc;

int sotto__aes_init(void);
int sotto__aes_init(void) {
  aes256cbc = EVP_CIPHER_fetch(NULL, "AES-256-CBC", NULL);
  return aes256cbc ? 0 : SOTTO_ERR_INTERNAL;
}

int sotto__aes256cbc_encrypt(uint8_t *out, size_t *out_len, const uint8_t key[32],
                             const uint8_t iv[16], const uint8_t *in, size_t len) {
  EVP_CIPHER_CTX *c;
  int n1 = 0, n2 = 0, rc = SOTTO_ERR_INTERNAL;

  *out_len = 0;
  if (len > SOTTO_MAX_MESSAGE_LEN) return SOTTO_ERR_TOO_LARGE;
  if ((c = EVP_CIPHER_CTX_new()) == NULL) return SOTTO_ERR_NOMEM;
  if (EVP_EncryptInit_ex2(c, aes256cbc, key, iv, NULL) != 1) goto out;
  if (EVP_EncryptUpdate(c, out, &n1, in, (int)len) != 1) goto out;
  if (EVP_EncryptFinal_ex(c, out + n1, &n2) != 1) goto out;
  *out_len = (size_t)n1 + (size_t)n2;
  rc = 0;
out:
  EVP_CIPHER_CTX_free(c); /* frees and cleanses the key schedule */
  return rc;
}

int sotto__aes256cbc_decrypt(uint8_t *out, size_t *out_len, const uint8_t key[32],
                             const uint8_t iv[16], const uint8_t *in, size_t in_len) {
  EVP_CIPHER_CTX *c;
  int n1 = 0, n2 = 0, rc = SOTTO_ERR_AUTH;

  *out_len = 0;
  if (in_len == 0 || in_len % 16 != 0) return SOTTO_ERR_MALFORMED;
  if (in_len > SOTTO_MAX_MESSAGE_LEN) return SOTTO_ERR_TOO_LARGE;
  if ((c = EVP_CIPHER_CTX_new()) == NULL) return SOTTO_ERR_NOMEM;
  if (EVP_DecryptInit_ex2(c, aes256cbc, key, iv, NULL) != 1) {
    rc = SOTTO_ERR_INTERNAL;
    goto out;
  }
  if (EVP_DecryptUpdate(c, out, &n1, in, (int)in_len) != 1) goto out;
  if (EVP_DecryptFinal_ex(c, out + n1, &n2) != 1) goto out; /* bad padding */
  *out_len = (size_t)n1 + (size_t)n2;
  rc = 0;
out:
  EVP_CIPHER_CTX_free(c);
  if (rc != 0) sotto__wipe(out, in_len);
  return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* util.c: initialisation, wiping, constant-time compare, randomness. */
#include <pthread.h>
#include <sodium.h>

#include "crypto.h"

int sotto__aes_init(void);
void sotto__hkdf_init_constants(void);

static pthread_once_t once = PTHREAD_ONCE_INIT;
static int init_rc = SOTTO_ERR_INTERNAL;

static void do_init(void) {
  if (sodium_init() < 0) return;
  if (sotto__aes_init() != 0) return;
  sotto__hkdf_init_constants();
  init_rc = 0;
}

int sotto__crypto_init(void) {
  pthread_once(&once, do_init);
  return init_rc;
}

void sotto__wipe(void *p, size_t n) {
  if (p != NULL && n > 0) sodium_memzero(p, n);
}

int sotto__ct_eq(const void *a, const void *b, size_t n) {
  return sodium_memcmp(a, b, n) == 0;
}

int sotto__random(void *buf, size_t n) {
  /* randombytes_buf reads the kernel CSPRNG and aborts rather than return
   * weak bytes; there is no failure to report. */
  randombytes_buf(buf, n);
  return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* lib/pq/shim/randombytes.h: stands in for PQClean's common/randombytes.h.
 *
 * PQClean's kem.c calls randombytes() only in crypto_kem_keypair() and
 * crypto_kem_enc(), which sotto never calls: the wrapper (lib/pq/mlkem.c) draws
 * the coins itself and uses the _derand entry points, so it can report a
 * randomness failure instead of continuing with unfilled coins. The symbol
 * still has to exist for the link; it is provided under a sotto__ name (not
 * PQCLEAN_randombytes, which another PQClean copy in the same program could
 * also define) by lib/pq/mlkem.c, on top of libsodium's randombytes_buf(). */
#ifndef SOTTO_PQ_SHIM_RANDOMBYTES_H
#define SOTTO_PQ_SHIM_RANDOMBYTES_H

#include <stddef.h>
#include <stdint.h>

#define randombytes sotto__pq_randombytes
int sotto__pq_randombytes(uint8_t *output, size_t n);

#endif

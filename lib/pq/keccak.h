/* SPDX-License-Identifier: Apache-2.0 */
/* lib/pq/keccak.h: Keccak-f[1600], the FIPS 202 sponge, SHA3-256/512 and SHAKE.
 *
 * Internal to libsotto (sotto__ names). It exists so that the PQClean ML-KEM
 * code can run without PQClean's common/fips202.c, which heap-allocates every
 * sponge state, calls exit() when malloc fails and exports generic global names
 * (shake128, sha3_256, ...). Here the state is a caller-owned struct (normally
 * on the stack), nothing allocates, nothing can fail, and every symbol carries
 * the sotto__ prefix. lib/pq/shim/fips202.h maps PQClean's names onto these.
 *
 * The state holds secret material while PQClean hashes keys and seeds, so
 * sotto__keccak_clear() wipes it; every user must call it when done. */
#ifndef SOTTO_PQ_KECCAK_H
#define SOTTO_PQ_KECCAK_H

#include <stddef.h>
#include <stdint.h>

/* Rates in bytes (FIPS 202 section 6: 1600 bits minus twice the capacity). */
#define SOTTO__SHAKE128_RATE 168
#define SOTTO__SHAKE256_RATE 136
#define SOTTO__SHA3_256_RATE 136
#define SOTTO__SHA3_512_RATE 72

/* Domain-separation suffix bits plus the first bit of pad10*1, as one byte:
 * SHA-3 appends 01, SHAKE appends 1111 (FIPS 202 sections 6.1 and 6.2). */
#define SOTTO__SHA3_DSEP 0x06
#define SOTTO__SHAKE_DSEP 0x1f

#define SOTTO__KECCAK_LANES 25

/* One sponge: init, absorb any number of times, finalize once, squeeze any
 * number of times, clear. Lane i holds bytes 8i..8i+7 of the state,
 * little-endian, as in FIPS 202 section 3.1.2 (lane (x, y) is a[x + 5y]). */
struct sotto__keccak {
  uint64_t a[SOTTO__KECCAK_LANES];
  size_t rate;  /* bytes per block: one of the SOTTO__*_RATE values */
  size_t pos;   /* absorbing: bytes already in the current block;
                   squeezing: bytes already read from the current block */
  uint8_t dsep; /* SOTTO__SHA3_DSEP or SOTTO__SHAKE_DSEP */
};

/* The 24-round permutation, in place. */
void sotto__keccak_f1600(uint64_t a[SOTTO__KECCAK_LANES]);

/* Starts an empty sponge. rate must be one of the SOTTO__*_RATE values. */
void sotto__keccak_init(struct sotto__keccak *k, size_t rate, uint8_t dsep);
/* Absorbs len bytes; may be called any number of times before finalize. */
void sotto__keccak_absorb(struct sotto__keccak *k, const uint8_t *in, size_t len);
/* Pads the message and switches the sponge to squeezing. Call exactly once. */
void sotto__keccak_finalize(struct sotto__keccak *k);
/* Writes the next len output bytes; may be called any number of times. */
void sotto__keccak_squeeze(struct sotto__keccak *k, uint8_t *out, size_t len);
/* init + absorb(in, len) + finalize in one call. */
void sotto__keccak_start(struct sotto__keccak *k, size_t rate, uint8_t dsep, const uint8_t *in, size_t len);
/* Wipes the whole state (sodium_memzero). Safe to call more than once. */
void sotto__keccak_clear(struct sotto__keccak *k);

/* One-shot hashes and XOFs. They wipe their internal state before returning.
 * The input and output buffers may overlap (PQClean hashes buffers in place). */
void sotto__sha3_256(uint8_t out[32], const uint8_t *in, size_t len);
void sotto__sha3_512(uint8_t out[64], const uint8_t *in, size_t len);
void sotto__shake128(uint8_t *out, size_t outlen, const uint8_t *in, size_t len);
void sotto__shake256(uint8_t *out, size_t outlen, const uint8_t *in, size_t len);

#endif

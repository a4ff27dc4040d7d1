/* SPDX-License-Identifier: Apache-2.0 */
/* lib/pq/shim/fips202.h: stands in for PQClean's common/fips202.h.
 *
 * cmake/pqclean.cmake puts lib/pq/shim ahead of PQClean's common/ directory
 * (which the fetch script does not even unpack fips202.h into), so PQClean's
 * `#include "fips202.h"` lands here. Every name the ML-KEM clean code uses is
 * mapped onto lib/pq/keccak.c, so the generic names (shake128_absorb, sha3_256,
 * ...) never become linker symbols and no sponge state is ever heap-allocated:
 * the contexts are plain structs on PQClean's stack, and "release" wipes them.
 *
 * Only the functions ML-KEM calls are provided. If a future PQClean version
 * calls anything else, the build fails (implicit declaration under -Werror, or
 * an undefined symbol at link time) instead of silently picking up another
 * Keccak. The typedefs are PQClean's own type names, kept for source
 * compatibility; sotto code uses struct sotto__keccak directly. */
#ifndef SOTTO_PQ_SHIM_FIPS202_H
#define SOTTO_PQ_SHIM_FIPS202_H

#include <stddef.h>
#include <stdint.h>

#include "pq/keccak.h"

#define SHAKE128_RATE SOTTO__SHAKE128_RATE
#define SHAKE256_RATE SOTTO__SHAKE256_RATE
#define SHA3_256_RATE SOTTO__SHA3_256_RATE
#define SHA3_512_RATE SOTTO__SHA3_512_RATE

typedef struct sotto__keccak shake128ctx;
typedef struct sotto__keccak shake256incctx;

/* XOF for the matrix A (SampleNTT): absorb once, squeeze whole blocks. */
#define shake128_absorb(st, in, inlen) \
  sotto__keccak_start((st), SOTTO__SHAKE128_RATE, SOTTO__SHAKE_DSEP, (in), (inlen))
#define shake128_squeezeblocks(out, nblocks, st) \
  sotto__keccak_squeeze((st), (out), (size_t)(nblocks)*SOTTO__SHAKE128_RATE)
#define shake128_ctx_release(st) sotto__keccak_clear(st)

/* PRF (SamplePolyCBD input) and J (implicit rejection key). */
#define shake256(out, outlen, in, inlen) sotto__shake256((out), (outlen), (in), (inlen))
#define shake256_inc_init(st) sotto__keccak_init((st), SOTTO__SHAKE256_RATE, SOTTO__SHAKE_DSEP)
#define shake256_inc_absorb(st, in, inlen) sotto__keccak_absorb((st), (in), (inlen))
#define shake256_inc_finalize(st) sotto__keccak_finalize(st)
#define shake256_inc_squeeze(out, outlen, st) sotto__keccak_squeeze((st), (out), (outlen))
#define shake256_inc_ctx_release(st) sotto__keccak_clear(st)

/* H and G. */
#define sha3_256(out, in, inlen) sotto__sha3_256((out), (in), (inlen))
#define sha3_512(out, in, inlen) sotto__sha3_512((out), (in), (inlen))

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* lib/pq/keccak.c: Keccak-f[1600] and the FIPS 202 sponge (see keccak.h).
 *
 * Written from the FIPS 202 text: the step mappings of section 3.2, the
 * permutation of section 3.3, the sponge of section 4 and the SHA-3 / SHAKE
 * instances of section 6. The rotation offsets and round constants below were
 * generated from Algorithms 2 and 5 of the standard, and the whole file is
 * checked against OpenSSL's SHA-3 by tests/mlkem/test_mlkem_keccak.c.
 *
 * No allocation, no failure paths: every function works on caller-owned
 * memory. Byte order is handled explicitly, so the code is endian-neutral. */
#include "pq/keccak.h"

#include <sodium.h>
#include <string.h>

#define KECCAK_ROUNDS 24

/* Iota round constants RC[ir], FIPS 202 section 3.2.5 / Algorithm 6. */
static const uint64_t round_constants[KECCAK_ROUNDS] = {
    0x0000000000000001ULL, 0x0000000000008082ULL, 0x800000000000808aULL, 0x8000000080008000ULL,
    0x000000000000808bULL, 0x0000000080000001ULL, 0x8000000080008081ULL, 0x8000000000008009ULL,
    0x000000000000008aULL, 0x0000000000000088ULL, 0x0000000080008009ULL, 0x000000008000000aULL,
    0x000000008000808bULL, 0x800000000000008bULL, 0x8000000000008089ULL, 0x8000000000008003ULL,
    0x8000000000008002ULL, 0x8000000000000080ULL, 0x000000000000800aULL, 0x800000008000000aULL,
    0x8000000080008081ULL, 0x8000000000008080ULL, 0x0000000080000001ULL, 0x8000000080008008ULL,
};

/* Rotate left; n is a compile-time constant in 0..63 at every use. The "& 63"
 * keeps n == 0 from becoming an undefined shift by 64. */
#define ROL64(v, n) (((v) << (n)) | ((v) >> ((64 - (n)) & 63)))

/* Column parity of column x (theta, step 1). */
#define PARITY(x) (a[(x)] ^ a[(x) + 5] ^ a[(x) + 10] ^ a[(x) + 15] ^ a[(x) + 20])

/* Chi on row y (section 3.2.4): each lane is combined with the next two lanes
 * of the same row of b, and the result goes back into a. */
#define CHI_ROW(y)                                                        \
  do {                                                                    \
    a[5 * (y) + 0] = b[5 * (y) + 0] ^ (~b[5 * (y) + 1] & b[5 * (y) + 2]); \
    a[5 * (y) + 1] = b[5 * (y) + 1] ^ (~b[5 * (y) + 2] & b[5 * (y) + 3]); \
    a[5 * (y) + 2] = b[5 * (y) + 2] ^ (~b[5 * (y) + 3] & b[5 * (y) + 4]); \
    a[5 * (y) + 3] = b[5 * (y) + 3] ^ (~b[5 * (y) + 4] & b[5 * (y) + 0]); \
    a[5 * (y) + 4] = b[5 * (y) + 4] ^ (~b[5 * (y) + 0] & b[5 * (y) + 1]); \
  } while (0)

/* Keccak-p[1600, 24] (section 3.3): theta, rho, pi, chi, iota per round.
 * Theta's column mix is folded into the rho+pi pass: lane a[src] moves to
 * b[dst] rotated by rho's offset for (x, y), after adding d[x]. The pi
 * permutation A'[x, y] = A[(x + 3y) mod 5, x] is written out lane by lane. */
void sotto__keccak_f1600(uint64_t a[SOTTO__KECCAK_LANES]) {
  uint64_t b[SOTTO__KECCAK_LANES];
  uint64_t c0, c1, c2, c3, c4, d0, d1, d2, d3, d4;
  int round;

  for (round = 0; round < KECCAK_ROUNDS; round++) {
    /* theta (section 3.2.1) */
    c0 = PARITY(0);
    c1 = PARITY(1);
    c2 = PARITY(2);
    c3 = PARITY(3);
    c4 = PARITY(4);
    d0 = c4 ^ ROL64(c1, 1);
    d1 = c0 ^ ROL64(c2, 1);
    d2 = c1 ^ ROL64(c3, 1);
    d3 = c2 ^ ROL64(c4, 1);
    d4 = c3 ^ ROL64(c0, 1);

    /* rho (section 3.2.2) and pi (section 3.2.3) */
    b[0] = a[0] ^ d0; /* rotation 0 */
    b[1] = ROL64(a[6] ^ d1, 44);
    b[2] = ROL64(a[12] ^ d2, 43);
    b[3] = ROL64(a[18] ^ d3, 21);
    b[4] = ROL64(a[24] ^ d4, 14);
    b[5] = ROL64(a[3] ^ d3, 28);
    b[6] = ROL64(a[9] ^ d4, 20);
    b[7] = ROL64(a[10] ^ d0, 3);
    b[8] = ROL64(a[16] ^ d1, 45);
    b[9] = ROL64(a[22] ^ d2, 61);
    b[10] = ROL64(a[1] ^ d1, 1);
    b[11] = ROL64(a[7] ^ d2, 6);
    b[12] = ROL64(a[13] ^ d3, 25);
    b[13] = ROL64(a[19] ^ d4, 8);
    b[14] = ROL64(a[20] ^ d0, 18);
    b[15] = ROL64(a[4] ^ d4, 27);
    b[16] = ROL64(a[5] ^ d0, 36);
    b[17] = ROL64(a[11] ^ d1, 10);
    b[18] = ROL64(a[17] ^ d2, 15);
    b[19] = ROL64(a[23] ^ d3, 56);
    b[20] = ROL64(a[2] ^ d2, 62);
    b[21] = ROL64(a[8] ^ d3, 55);
    b[22] = ROL64(a[14] ^ d4, 39);
    b[23] = ROL64(a[15] ^ d0, 41);
    b[24] = ROL64(a[21] ^ d1, 2);

    /* chi (section 3.2.4) */
    CHI_ROW(0);
    CHI_ROW(1);
    CHI_ROW(2);
    CHI_ROW(3);
    CHI_ROW(4);

    /* iota (section 3.2.5) */
    a[0] ^= round_constants[round];
  }

  /* b and the column sums are left on the stack: wiping 200 bytes per
   * permutation would cost more than the permutation's last round, and the
   * ML-KEM wrapper scrubs the stack region after every operation instead
   * (lib/pq/mlkem.c, scrub_stack). */
}

static uint64_t load64_le(const uint8_t *p) {
  return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
         (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 | (uint64_t)p[7] << 56;
}

static void store64_le(uint8_t *p, uint64_t v) {
  int i;

  for (i = 0; i < 8; i++) {
    p[i] = (uint8_t)(v >> (8 * i));
  }
}

/* XORs n bytes of in into the state starting at byte offset off.
 * The caller guarantees off + n <= rate (< 200). */
static void xor_bytes(uint64_t *a, size_t off, const uint8_t *in, size_t n) {
  while (n > 0 && (off & 7) != 0) {
    a[off >> 3] ^= (uint64_t)*in << (8 * (off & 7));
    off++, in++, n--;
  }
  while (n >= 8) {
    a[off >> 3] ^= load64_le(in);
    off += 8, in += 8, n -= 8;
  }
  while (n > 0) {
    a[off >> 3] ^= (uint64_t)*in << (8 * (off & 7));
    off++, in++, n--;
  }
}

/* Copies n state bytes starting at byte offset off into out.
 * The caller guarantees off + n <= rate. */
static void extract_bytes(const uint64_t *a, size_t off, uint8_t *out, size_t n) {
  while (n > 0 && (off & 7) != 0) {
    *out = (uint8_t)(a[off >> 3] >> (8 * (off & 7)));
    off++, out++, n--;
  }
  while (n >= 8) {
    store64_le(out, a[off >> 3]);
    off += 8, out += 8, n -= 8;
  }
  while (n > 0) {
    *out = (uint8_t)(a[off >> 3] >> (8 * (off & 7)));
    off++, out++, n--;
  }
}

void sotto__keccak_init(struct sotto__keccak *k, size_t rate, uint8_t dsep) {
  memset(k->a, 0, sizeof k->a);
  k->rate = rate;
  k->pos = 0;
  k->dsep = dsep;
}

/* Sponge absorbing (section 4, steps 5-6), one block at a time, with a partial
 * block carried in k->pos between calls. */
void sotto__keccak_absorb(struct sotto__keccak *k, const uint8_t *in, size_t len) {
  size_t n;

  while (len > 0) {
    n = k->rate - k->pos;
    if (n > len) {
      n = len;
    }
    xor_bytes(k->a, k->pos, in, n);
    k->pos += n;
    in += n;
    len -= n;
    if (k->pos == k->rate) {
      sotto__keccak_f1600(k->a);
      k->pos = 0;
    }
  }
}

/* Appends the suffix bits and pad10*1 (section 5.1): the first padding bit is
 * folded into dsep, the final 1 bit is the top bit of the block's last byte.
 * When the message fills the block up to rate - 1, both land in the same byte,
 * which the two XORs handle. */
void sotto__keccak_finalize(struct sotto__keccak *k) {
  k->a[k->pos >> 3] ^= (uint64_t)k->dsep << (8 * (k->pos & 7));
  k->a[(k->rate - 1) >> 3] ^= (uint64_t)0x80 << (8 * ((k->rate - 1) & 7));
  sotto__keccak_f1600(k->a);
  k->pos = 0;
}

/* Sponge squeezing (section 4, steps 7-10): reads the rate part of the state,
 * permuting whenever a block has been used up. */
void sotto__keccak_squeeze(struct sotto__keccak *k, uint8_t *out, size_t len) {
  size_t n;

  while (len > 0) {
    if (k->pos == k->rate) {
      sotto__keccak_f1600(k->a);
      k->pos = 0;
    }
    n = k->rate - k->pos;
    if (n > len) {
      n = len;
    }
    extract_bytes(k->a, k->pos, out, n);
    k->pos += n;
    out += n;
    len -= n;
  }
}

void sotto__keccak_start(struct sotto__keccak *k, size_t rate, uint8_t dsep, const uint8_t *in, size_t len) {
  sotto__keccak_init(k, rate, dsep);
  sotto__keccak_absorb(k, in, len);
  sotto__keccak_finalize(k);
}

void sotto__keccak_clear(struct sotto__keccak *k) {
  sodium_memzero(k, sizeof *k);
}

/* The one-shot functions absorb the whole input before writing any output, so
 * in-place use (out == in) is safe. */
static void oneshot(size_t rate, uint8_t dsep, uint8_t *out, size_t outlen, const uint8_t *in, size_t len) {
  struct sotto__keccak k;

  sotto__keccak_start(&k, rate, dsep, in, len);
  sotto__keccak_squeeze(&k, out, outlen);
  sotto__keccak_clear(&k);
}

void sotto__sha3_256(uint8_t out[32], const uint8_t *in, size_t len) {
  oneshot(SOTTO__SHA3_256_RATE, SOTTO__SHA3_DSEP, out, 32, in, len);
}

void sotto__sha3_512(uint8_t out[64], const uint8_t *in, size_t len) {
  oneshot(SOTTO__SHA3_512_RATE, SOTTO__SHA3_DSEP, out, 64, in, len);
}

void sotto__shake128(uint8_t *out, size_t outlen, const uint8_t *in, size_t len) {
  oneshot(SOTTO__SHAKE128_RATE, SOTTO__SHAKE_DSEP, out, outlen, in, len);
}

void sotto__shake256(uint8_t *out, size_t outlen, const uint8_t *in, size_t len) {
  oneshot(SOTTO__SHAKE256_RATE, SOTTO__SHAKE_DSEP, out, outlen, in, len);
}

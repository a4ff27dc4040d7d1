/* SPDX-License-Identifier: Apache-2.0 */
/* tests/mlkem/test_mlkem_keccak.c: lib/pq/keccak.c against an independent
 * SHA-3 (OpenSSL's EVP), plus a few fixed answers.
 *
 * Every input length from 0 to 3 * 168 + 1 bytes (so every position relative to
 * each rate: 72, 136, 168) is hashed with SHA3-256, SHA3-512, SHAKE-128 and
 * SHAKE-256, absorbed in one piece and in three uneven pieces, and the XOF
 * output (up to 2 blocks plus a bit) is squeezed in one piece and in uneven
 * pieces. The PQClean-facing names in lib/pq/shim/fips202.h are exercised the
 * way PQClean uses them. */
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "mlkem_test.h"
#include "pq/keccak.h"
#include "pq/shim/fips202.h"

#define MAX_IN (3 * SOTTO__SHAKE128_RATE + 2)
#define MAX_OUT (2 * SOTTO__SHAKE128_RATE + 40)

static uint8_t input[MAX_IN];

/* OpenSSL one-shot digest or XOF; returns 0 on success. */
static int ossl(const EVP_MD *md, const uint8_t *in, size_t len, uint8_t *out, size_t outlen, int xof) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  unsigned int n = 0;
  int ok;

  if (ctx == NULL) {
    return -1;
  }
  ok = EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, in, len) == 1 &&
       (xof ? EVP_DigestFinalXOF(ctx, out, outlen) == 1
            : EVP_DigestFinal_ex(ctx, out, &n) == 1 && n == outlen);
  EVP_MD_CTX_free(ctx);
  return ok ? 0 : -1;
}

/* Our sponge with the input absorbed in up to three pieces and the output
 * squeezed in pieces of the given sizes (0 = the rest). */
static void ours(size_t rate, uint8_t dsep, const uint8_t *in, size_t len, size_t cut1, size_t cut2,
                 uint8_t *out, size_t outlen, size_t piece) {
  struct sotto__keccak k;
  size_t done = 0, n;

  sotto__keccak_init(&k, rate, dsep);
  sotto__keccak_absorb(&k, in, cut1);
  sotto__keccak_absorb(&k, in + cut1, cut2 - cut1);
  sotto__keccak_absorb(&k, in + cut2, len - cut2);
  sotto__keccak_finalize(&k);
  while (done < outlen) {
    n = piece == 0 || piece > outlen - done ? outlen - done : piece;
    sotto__keccak_squeeze(&k, out + done, n);
    done += n;
  }
  sotto__keccak_clear(&k);
  MT_CHECK(mt_all_zero((const uint8_t *)&k, sizeof k), "keccak_clear left state behind");
}

static void test_against_openssl(void) {
  struct {
    const char *name;
    size_t rate;
    uint8_t dsep;
    size_t outlen; /* 0 = XOF */
    const EVP_MD *md;
  } algs[4];
  uint8_t want[MAX_OUT], got[MAX_OUT];
  size_t a, len, outlen, cut1, cut2, fails = 0;
  int v;

  algs[0].name = "SHA3-256", algs[0].rate = 136, algs[0].dsep = 0x06, algs[0].outlen = 32;
  algs[0].md = EVP_sha3_256();
  algs[1].name = "SHA3-512", algs[1].rate = 72, algs[1].dsep = 0x06, algs[1].outlen = 64;
  algs[1].md = EVP_sha3_512();
  algs[2].name = "SHAKE128", algs[2].rate = 168, algs[2].dsep = 0x1f, algs[2].outlen = 0;
  algs[2].md = EVP_shake128();
  algs[3].name = "SHAKE256", algs[3].rate = 136, algs[3].dsep = 0x1f, algs[3].outlen = 0;
  algs[3].md = EVP_shake256();

  for (a = 0; a < 4; a++) {
    for (len = 0; len < MAX_IN; len++) {
      outlen = algs[a].outlen != 0 ? algs[a].outlen : (len * 7) % MAX_OUT + 1;
      if (ossl(algs[a].md, input, len, want, outlen, algs[a].outlen == 0) != 0) {
        MT_CHECK(0, "OpenSSL %s failed", algs[a].name);
        return;
      }
      for (v = 0; v < 3; v++) {
        cut1 = v == 0 ? len : len / 3;
        cut2 = v == 0 ? len : v == 1 ? len / 3 + len / 2 : len - (len > 0);
        if (cut2 < cut1) {
          cut2 = cut1;
        }
        memset(got, 0, sizeof got);
        ours(algs[a].rate, algs[a].dsep, input, len, cut1, cut2, got, outlen,
             v == 0 ? 0 : (size_t)(v == 1 ? 1 : 17 + len % 50));
        if (memcmp(got, want, outlen) != 0) {
          if (fails++ < 10) {
            MT_CHECK(0, "%s: input %zu bytes (pieces %zu/%zu), output %zu: differs from OpenSSL",
                     algs[a].name, len, cut1, cut2, outlen);
          }
        }
      }
    }
  }
  MT_CHECK(fails == 0, "%zu Keccak outputs differ from OpenSSL", fails);
}

/* Fixed answers for the empty string (FIPS 202 example values, also produced
 * by Python's hashlib) and the PQClean-facing names of the shim. */
static void test_fixed_and_shim(void) {
  static const char sha3_256_empty[] = "a7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a";
  static const char shake128_empty[] = "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26";
  static const char shake256_empty[] = "46b9dd2b0ba88d13233b3feb743eeb243fcd52ea62b81b82b50c27646ed5762f";
  uint8_t want[64], got[2 * SHAKE128_RATE], ref[2 * SHAKE128_RATE], buf[64];
  size_t n;
  shake128ctx x;
  shake256incctx s;

  mt_hex_decode(sha3_256_empty, 64, want, sizeof want, &n);
  sha3_256(got, input, 0);
  MT_CHECK_BYTES(got, want, 32, "SHA3-256(\"\")");
  mt_hex_decode(shake128_empty, 64, want, sizeof want, &n);
  sotto__shake128(got, 32, NULL, 0);
  MT_CHECK_BYTES(got, want, 32, "SHAKE128(\"\")");
  mt_hex_decode(shake256_empty, 64, want, sizeof want, &n);
  shake256(got, 32, input, 0);
  MT_CHECK_BYTES(got, want, 32, "SHAKE256(\"\")");

  /* xof_absorb + xof_squeezeblocks as in PQClean's matrix generation: 34
   * bytes in, whole blocks out, one block then another. */
  shake128_absorb(&x, input, 34);
  shake128_squeezeblocks(got, 1, &x);
  shake128_squeezeblocks(got + SHAKE128_RATE, 1, &x);
  shake128_ctx_release(&x);
  MT_CHECK(ossl(EVP_shake128(), input, 34, ref, sizeof ref, 1) == 0, "OpenSSL SHAKE128");
  MT_CHECK_BYTES(got, ref, sizeof ref, "shim shake128 blocks");

  /* rkprf: z then c absorbed incrementally, 32 bytes out. */
  shake256_inc_init(&s);
  shake256_inc_absorb(&s, input, 32);
  shake256_inc_absorb(&s, input + 32, 300);
  shake256_inc_finalize(&s);
  shake256_inc_squeeze(got, 32, &s);
  shake256_inc_ctx_release(&s);
  MT_CHECK(ossl(EVP_shake256(), input, 332, ref, 32, 1) == 0, "OpenSSL SHAKE256");
  MT_CHECK_BYTES(got, ref, 32, "shim shake256 incremental");

  /* hash_g(buf, buf, 33) in place, as PQClean's key generation does. */
  memcpy(buf, input, 33);
  sha3_512(buf, buf, 33);
  MT_CHECK(ossl(EVP_sha3_512(), input, 33, ref, 64, 0) == 0, "OpenSSL SHA3-512");
  MT_CHECK_BYTES(buf, ref, 64, "in-place sha3_512");
}

int main(int argc, char **argv) {
  size_t i;
  uint32_t x = 0x12345678;

  (void)argc, (void)argv;
  for (i = 0; i < sizeof input; i++) { /* xorshift32: any fixed bytes will do */
    x ^= x << 13, x ^= x >> 17, x ^= x << 5;
    input[i] = (uint8_t)(x >> 24);
  }
  test_against_openssl();
  test_fixed_and_shim();
  return mt_finish("test_mlkem_keccak");
}

/* SPDX-License-Identifier: Apache-2.0 */
/* tests/mlkem/test_mlkem_accumulated.c: the "accumulated" ML-KEM test
 * (procedure from C2SP CCTV, see tests/vectors/mlkem/mlkem_accumulated.json).
 *
 * A SHAKE-128 stream over the empty string supplies, per test, d, z, m and a
 * random ciphertext; ek, dk, the ciphertext and key from Encaps, and the
 * implicit-rejection key from decapsulating the random ciphertext are absorbed
 * into a second, running SHAKE-128, whose first 32 output bytes are compared
 * with the published hash. 10,000 tests per parameter set cover key
 * generation, encapsulation and both decapsulation paths on 10,000 random
 * inputs. The FIPS 203 final value must match; the ipd value (no domain byte
 * in key generation) must not.
 *
 * Setting SOTTO_MLKEM_ACCUMULATED_1M=1 also runs the 1,000,000-test variant
 * (minutes per parameter set; not part of the normal suite).
 * argv[1] is the tests/vectors directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mlkem_test.h"
#include "pq/keccak.h"

#define ACC_HASH_LEN 32

static uint8_t pk[SOTTO_MLKEM1024_PK_LEN], sk[SOTTO_MLKEM1024_SK_LEN];
static uint8_t ct[SOTTO_MLKEM1024_CT_LEN], ct_rand[SOTTO_MLKEM1024_CT_LEN];

/* Runs n tests of kem and writes the accumulated hash. Returns the number of
 * tests in which Encaps and Decaps disagreed or a call failed (must be 0). */
static unsigned long accumulate(const struct mt_kem *kem, unsigned long n, uint8_t out[ACC_HASH_LEN]) {
  struct sotto__keccak rng, acc;
  uint8_t coins[SOTTO_MLKEM_SEED_LEN], m[SOTTO_MLKEM_ENCAPS_COINS_LEN];
  uint8_t k_enc[SOTTO_MLKEM_SS_LEN], k_dec[SOTTO_MLKEM_SS_LEN], k_rej[SOTTO_MLKEM_SS_LEN];
  unsigned long i, bad = 0;

  sotto__keccak_start(&rng, SOTTO__SHAKE128_RATE, SOTTO__SHAKE_DSEP, NULL, 0);
  sotto__keccak_init(&acc, SOTTO__SHAKE128_RATE, SOTTO__SHAKE_DSEP);
  for (i = 0; i < n; i++) {
    sotto__keccak_squeeze(&rng, coins, sizeof coins); /* d then z */
    sotto__keccak_squeeze(&rng, m, sizeof m);
    sotto__keccak_squeeze(&rng, ct_rand, kem->ct_len);

    if (kem->keypair_derand(pk, sk, coins) != 0 || kem->encaps_derand(ct, k_enc, pk, kem->pk_len, m) != 0 ||
        kem->decaps(k_dec, ct, kem->ct_len, sk, kem->sk_len) != 0 ||
        kem->decaps(k_rej, ct_rand, kem->ct_len, sk, kem->sk_len) != 0 ||
        memcmp(k_enc, k_dec, sizeof k_enc) != 0) {
      if (bad++ < 5) {
        fprintf(stderr, "FAIL %s accumulated test %lu: a call failed or keys disagree\n", kem->name, i);
      }
    }
    sotto__keccak_absorb(&acc, pk, kem->pk_len);
    sotto__keccak_absorb(&acc, sk, kem->sk_len);
    sotto__keccak_absorb(&acc, ct, kem->ct_len);
    sotto__keccak_absorb(&acc, k_enc, sizeof k_enc);
    sotto__keccak_absorb(&acc, k_rej, sizeof k_rej);
  }
  sotto__keccak_finalize(&acc);
  sotto__keccak_squeeze(&acc, out, ACC_HASH_LEN);
  sotto__keccak_clear(&acc);
  sotto__keccak_clear(&rng);
  return bad;
}

static void check_rng_stream(void) {
  /* First 16 bytes of SHAKE-128(""), as the vector file states. */
  static const uint8_t want[16] = {0x7f, 0x9c, 0x2b, 0xa4, 0xe8, 0x8f, 0x82, 0x7d,
                                   0x61, 0x60, 0x45, 0x50, 0x76, 0x05, 0x85, 0x3e};
  struct sotto__keccak rng;
  uint8_t got[16];

  sotto__keccak_start(&rng, SOTTO__SHAKE128_RATE, SOTTO__SHAKE_DSEP, NULL, 0);
  sotto__keccak_squeeze(&rng, got, sizeof got);
  sotto__keccak_clear(&rng);
  MT_CHECK_BYTES(got, want, sizeof want, "accumulated RNG stream start");
}

static void run(const cJSON *root, const struct mt_kem *kem, unsigned long n, const char *field) {
  const cJSON *final_hashes, *ipd_hashes;
  uint8_t got[ACC_HASH_LEN], want_final[ACC_HASH_LEN], want_ipd[ACC_HASH_LEN];
  unsigned long bad;

  final_hashes =
      cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "fips203_final"), field);
  ipd_hashes = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "ipd"), field);
  if (mt_hex_field(final_hashes, kem->name, want_final, sizeof want_final) != ACC_HASH_LEN ||
      mt_hex_field(ipd_hashes, kem->name, want_ipd, sizeof want_ipd) != ACC_HASH_LEN) {
    MT_CHECK(0, "%s %s: expected hashes missing from the vector file", kem->name, field);
    return;
  }
  bad = accumulate(kem, n, got);
  MT_CHECK(bad == 0, "%s %s: %lu tests failed", kem->name, field, bad);
  MT_CHECK_BYTES(got, want_final, ACC_HASH_LEN, "accumulated hash vs FIPS 203 final");
  MT_CHECK(memcmp(got, want_ipd, ACC_HASH_LEN) != 0,
           "%s %s: hash MATCHES the FIPS 203 ipd value (domain byte missing?)", kem->name, field);
  printf("%s %lu tests: %02x%02x%02x%02x...%02x%02x %s\n", kem->name, n, got[0], got[1], got[2], got[3],
         got[30], got[31], memcmp(got, want_final, ACC_HASH_LEN) == 0 ? "= FIPS 203 final" : "MISMATCH");
}

int main(int argc, char **argv) {
  cJSON *root;
  const char *big = getenv("SOTTO_MLKEM_ACCUMULATED_1M");
  size_t i;

  if (argc != 2) {
    fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]);
    return 2;
  }
  root = mt_load_json(argv[1], "mlkem/mlkem_accumulated.json");
  MT_CHECK(root != NULL, "accumulated vectors not loaded");
  if (root == NULL) {
    return mt_finish("test_mlkem_accumulated");
  }
  check_rng_stream();
  for (i = 0; i < MT_NKEMS; i++) {
    run(root, &mt_kems[i], 10000, "hashes_10000_tests");
    if (big != NULL && strcmp(big, "1") == 0) {
      run(root, &mt_kems[i], 1000000, "hashes_1000000_tests");
    }
  }
  cJSON_Delete(root);
  return mt_finish("test_mlkem_accumulated");
}

/* SPDX-License-Identifier: Apache-2.0 */
/* tests/mlkem/test_mlkem_api.c: behaviour of the sotto ML-KEM API beyond the
 * known answers: round trips with fresh random keys, every length and NULL
 * check with its exact error code, outputs zeroed on every failure, the dk
 * hash check (a flipped byte in H(ek) or in the embedded ek), the modulus
 * check at the boundary (3328 accepted, 3329 refused, rho never checked),
 * implicit rejection equal to J(z || c) = SHAKE-256(z || c) computed by
 * OpenSSL, and key/parameter-set confusion. */
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "mlkem_test.h"

#define ROUNDS 20
#define MLKEM_Q 3329

static uint8_t pk[SOTTO_MLKEM1024_PK_LEN + 1], sk[SOTTO_MLKEM1024_SK_LEN + 1];
static uint8_t pk2[SOTTO_MLKEM1024_PK_LEN + 1], sk2[SOTTO_MLKEM1024_SK_LEN + 1];
static uint8_t ct[SOTTO_MLKEM1024_CT_LEN + 1], ct2[SOTTO_MLKEM1024_CT_LEN + 1];
static uint8_t tmp[SOTTO_MLKEM1024_SK_LEN + 1];

static void poison(uint8_t *p, size_t len) {
  memset(p, 0xa5, len);
}

/* Sets the 12-bit coefficient number idx of an encoded ek to v. */
static void set_coeff(uint8_t *key, size_t idx, unsigned v) {
  uint8_t *p = key + 3 * (idx / 2);

  if (idx % 2 == 0) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)((p[1] & 0xf0) | (v >> 8));
  } else {
    p[1] = (uint8_t)((p[1] & 0x0f) | (v & 0x0f) << 4);
    p[2] = (uint8_t)(v >> 4);
  }
}

/* J(z || c): the FIPS 203 implicit rejection key, via OpenSSL. */
static int rejection_key(const uint8_t z[32], const uint8_t *c, size_t c_len, uint8_t out[32]) {
  EVP_MD_CTX *ctx = EVP_MD_CTX_new();
  int ok;

  if (ctx == NULL) {
    return -1;
  }
  ok = EVP_DigestInit_ex(ctx, EVP_shake256(), NULL) == 1 && EVP_DigestUpdate(ctx, z, 32) == 1 &&
       EVP_DigestUpdate(ctx, c, c_len) == 1 && EVP_DigestFinalXOF(ctx, out, 32) == 1;
  EVP_MD_CTX_free(ctx);
  return ok ? 0 : -1;
}

static void test_round_trip(const struct mt_kem *kem) {
  uint8_t ss1[SOTTO_MLKEM_SS_LEN], ss2[SOTTO_MLKEM_SS_LEN], prev[SOTTO_MLKEM_SS_LEN] = {0};
  int i, ret;

  for (i = 0; i < ROUNDS; i++) {
    ret = kem->keypair(pk, sk);
    MT_CHECK(ret == 0, "%s keypair: %d", kem->name, ret);
    MT_CHECK(kem->check_pk(pk, kem->pk_len) == 0, "%s fresh pk fails check_pk", kem->name);
    ret = kem->encaps(ct, ss1, pk, kem->pk_len);
    MT_CHECK(ret == 0, "%s encaps: %d", kem->name, ret);
    ret = kem->decaps(ss2, ct, kem->ct_len, sk, kem->sk_len);
    MT_CHECK(ret == 0, "%s decaps: %d", kem->name, ret);
    MT_CHECK(memcmp(ss1, ss2, sizeof ss1) == 0, "%s round %d: shared secrets differ", kem->name, i);
    MT_CHECK(memcmp(ss1, prev, sizeof ss1) != 0, "%s round %d: repeated shared secret", kem->name, i);
    memcpy(prev, ss1, sizeof prev);
  }
}

static void test_deterministic(const struct mt_kem *kem) {
  uint8_t coins[SOTTO_MLKEM_SEED_LEN], m[SOTTO_MLKEM_ENCAPS_COINS_LEN];
  uint8_t ss1[SOTTO_MLKEM_SS_LEN], ss2[SOTTO_MLKEM_SS_LEN];
  int ret;

  memset(coins, 7, sizeof coins);
  memset(m, 9, sizeof m);
  ret = kem->keypair_derand(pk, sk, coins);
  ret |= kem->keypair_from_seed(pk2, sk2, coins, sizeof coins);
  MT_CHECK(ret == 0, "%s derand keygen failed", kem->name);
  MT_CHECK(memcmp(pk, pk2, kem->pk_len) == 0 && memcmp(sk, sk2, kem->sk_len) == 0,
           "%s keypair_derand and keypair_from_seed disagree", kem->name);
  MT_CHECK(memcmp(sk + kem->sk_len - 32, coins + 32, 32) == 0, "%s z is not the end of dk", kem->name);
  MT_CHECK(memcmp(sk + 384 * kem->k, pk, kem->pk_len) == 0, "%s ek is not embedded in dk", kem->name);
  ret = kem->encaps_derand(ct, ss1, pk, kem->pk_len, m);
  ret |= kem->encaps_derand(ct2, ss2, pk, kem->pk_len, m);
  MT_CHECK(ret == 0 && memcmp(ct, ct2, kem->ct_len) == 0 && memcmp(ss1, ss2, 32) == 0,
           "%s encaps_derand is not deterministic", kem->name);
}

/* Every wrong length, in each position, with its code, and zeroed outputs. */
static void test_lengths(const struct mt_kem *kem) {
  const size_t deltas[] = {0, 1, 31, 32}; /* subtracted; and +1 separately */
  uint8_t ss[SOTTO_MLKEM_SS_LEN], m[SOTTO_MLKEM_ENCAPS_COINS_LEN] = {1};
  uint8_t seed[SOTTO_MLKEM_SEED_LEN + 1] = {2};
  size_t i;
  int ret;

  MT_CHECK(kem->keypair(pk, sk) == 0, "%s keypair", kem->name);
  MT_CHECK(kem->encaps(ct, ss, pk, kem->pk_len) == 0, "%s encaps", kem->name);
  pk[kem->pk_len] = 0;
  sk[kem->sk_len] = 0;
  ct[kem->ct_len] = 0;

  for (i = 0; i < sizeof deltas / sizeof deltas[0]; i++) {
    size_t bad_pk = i == 0 ? kem->pk_len + 1 : kem->pk_len - deltas[i];
    size_t bad_sk = i == 0 ? kem->sk_len + 1 : kem->sk_len - deltas[i];
    size_t bad_ct = i == 0 ? kem->ct_len + 1 : kem->ct_len - deltas[i];

    poison(ct2, sizeof ct2);
    poison(ss, sizeof ss);
    ret = kem->encaps(ct2, ss, pk, bad_pk);
    MT_CHECK(ret == SOTTO_ERR_INVALID_KEY, "%s encaps pk_len %zu: %d", kem->name, bad_pk, ret);
    MT_CHECK(mt_all_zero(ct2, kem->ct_len) && mt_all_zero(ss, sizeof ss),
             "%s encaps pk_len %zu: outputs not zeroed", kem->name, bad_pk);
    poison(ss, sizeof ss);
    ret = kem->encaps_derand(ct2, ss, pk, bad_pk, m);
    MT_CHECK(ret == SOTTO_ERR_INVALID_KEY && mt_all_zero(ss, sizeof ss), "%s encaps_derand pk_len %zu: %d",
             kem->name, bad_pk, ret);
    MT_CHECK(kem->check_pk(pk, bad_pk) == SOTTO_ERR_INVALID_KEY, "%s check_pk len %zu", kem->name, bad_pk);

    poison(ss, sizeof ss);
    ret = kem->decaps(ss, ct, bad_ct, sk, kem->sk_len);
    MT_CHECK(ret == SOTTO_ERR_MALFORMED, "%s decaps ct_len %zu: %d", kem->name, bad_ct, ret);
    MT_CHECK(mt_all_zero(ss, sizeof ss), "%s decaps ct_len %zu: ss not zeroed", kem->name, bad_ct);
    poison(ss, sizeof ss);
    ret = kem->decaps(ss, ct, kem->ct_len, sk, bad_sk);
    MT_CHECK(ret == SOTTO_ERR_INVALID_KEY, "%s decaps sk_len %zu: %d", kem->name, bad_sk, ret);
    MT_CHECK(mt_all_zero(ss, sizeof ss), "%s decaps sk_len %zu: ss not zeroed", kem->name, bad_sk);
  }
  /* Both wrong: the ciphertext is checked first (FIPS 203 section 7.3 order). */
  ret = kem->decaps(ss, ct, kem->ct_len - 1, sk, kem->sk_len - 1);
  MT_CHECK(ret == SOTTO_ERR_MALFORMED, "%s decaps both lengths wrong: %d", kem->name, ret);
  /* Zero lengths. */
  MT_CHECK(kem->encaps(ct2, ss, pk, 0) == SOTTO_ERR_INVALID_KEY, "%s encaps pk_len 0", kem->name);
  MT_CHECK(kem->decaps(ss, ct, 0, sk, kem->sk_len) == SOTTO_ERR_MALFORMED, "%s decaps ct_len 0", kem->name);
  MT_CHECK(kem->decaps(ss, ct, kem->ct_len, sk, 0) == SOTTO_ERR_INVALID_KEY, "%s decaps sk_len 0", kem->name);
  /* Seeds of the wrong length. */
  for (i = 0; i <= SOTTO_MLKEM_SEED_LEN + 1; i++) {
    if (i == SOTTO_MLKEM_SEED_LEN) {
      continue;
    }
    poison(pk2, sizeof pk2);
    poison(sk2, sizeof sk2);
    ret = kem->keypair_from_seed(pk2, sk2, seed, i);
    MT_CHECK(ret == SOTTO_ERR_INVALID_KEY && mt_all_zero(pk2, kem->pk_len) && mt_all_zero(sk2, kem->sk_len),
             "%s keypair_from_seed seed_len %zu: %d / outputs not zeroed", kem->name, i, ret);
  }
}

static void test_null(const struct mt_kem *kem) {
  uint8_t ss[SOTTO_MLKEM_SS_LEN], m[SOTTO_MLKEM_ENCAPS_COINS_LEN] = {0};
  uint8_t seed[SOTTO_MLKEM_SEED_LEN] = {0};
  int ret;

  MT_CHECK(kem->keypair(pk, sk) == 0, "%s keypair", kem->name);
  MT_CHECK(kem->encaps(ct, ss, pk, kem->pk_len) == 0, "%s encaps", kem->name);

  MT_CHECK(kem->keypair(NULL, sk2) == SOTTO_ERR_USAGE, "%s keypair(NULL, sk)", kem->name);
  poison(pk2, sizeof pk2);
  MT_CHECK(kem->keypair(pk2, NULL) == SOTTO_ERR_USAGE && mt_all_zero(pk2, kem->pk_len),
           "%s keypair(pk, NULL)", kem->name);
  poison(pk2, sizeof pk2);
  poison(sk2, sizeof sk2);
  ret = kem->keypair_derand(pk2, sk2, NULL);
  MT_CHECK(ret == SOTTO_ERR_USAGE && mt_all_zero(pk2, kem->pk_len) && mt_all_zero(sk2, kem->sk_len),
           "%s keypair_derand(coins NULL): %d", kem->name, ret);
  MT_CHECK(kem->keypair_from_seed(pk2, sk2, NULL, 64) == SOTTO_ERR_USAGE, "%s keypair_from_seed(seed NULL)",
           kem->name);
  MT_CHECK(kem->keypair_from_seed(NULL, sk2, seed, 63) == SOTTO_ERR_USAGE,
           "%s keypair_from_seed(pk NULL, bad length)", kem->name);
  MT_CHECK(kem->check_pk(NULL, kem->pk_len) == SOTTO_ERR_USAGE, "%s check_pk(NULL)", kem->name);

  poison(ss, sizeof ss);
  MT_CHECK(kem->encaps(NULL, ss, pk, kem->pk_len) == SOTTO_ERR_USAGE && mt_all_zero(ss, sizeof ss),
           "%s encaps(ct NULL)", kem->name);
  poison(ct2, sizeof ct2);
  MT_CHECK(kem->encaps(ct2, NULL, pk, kem->pk_len) == SOTTO_ERR_USAGE && mt_all_zero(ct2, kem->ct_len),
           "%s encaps(ss NULL)", kem->name);
  poison(ss, sizeof ss);
  MT_CHECK(kem->encaps(ct2, ss, NULL, kem->pk_len) == SOTTO_ERR_USAGE && mt_all_zero(ss, sizeof ss),
           "%s encaps(pk NULL)", kem->name);
  poison(ss, sizeof ss);
  MT_CHECK(
      kem->encaps_derand(ct2, ss, pk, kem->pk_len, NULL) == SOTTO_ERR_USAGE && mt_all_zero(ss, sizeof ss),
      "%s encaps_derand(m NULL)", kem->name);
  MT_CHECK(kem->encaps_derand(ct2, ss, NULL, kem->pk_len, m) == SOTTO_ERR_USAGE, "%s encaps_derand(pk NULL)",
           kem->name);

  MT_CHECK(kem->decaps(NULL, ct, kem->ct_len, sk, kem->sk_len) == SOTTO_ERR_USAGE, "%s decaps(ss NULL)",
           kem->name);
  poison(ss, sizeof ss);
  MT_CHECK(
      kem->decaps(ss, NULL, kem->ct_len, sk, kem->sk_len) == SOTTO_ERR_USAGE && mt_all_zero(ss, sizeof ss),
      "%s decaps(ct NULL)", kem->name);
  poison(ss, sizeof ss);
  MT_CHECK(
      kem->decaps(ss, ct, kem->ct_len, NULL, kem->sk_len) == SOTTO_ERR_USAGE && mt_all_zero(ss, sizeof ss),
      "%s decaps(sk NULL)", kem->name);
}

/* FIPS 203 section 7.3 hash check: dk = dk_PKE || ek || H(ek) || z. */
static void test_dk_hash_check(const struct mt_kem *kem) {
  size_t ek_off = 384 * kem->k, h_off = ek_off + kem->pk_len, z_off = h_off + 32;
  size_t positions[] = {h_off, h_off + 17, h_off + 31, ek_off, ek_off + 100, h_off - 1};
  uint8_t ss[SOTTO_MLKEM_SS_LEN], good[SOTTO_MLKEM_SS_LEN], rej[SOTTO_MLKEM_SS_LEN];
  size_t i;
  int ret;

  MT_CHECK(kem->keypair(pk, sk) == 0, "%s keypair", kem->name);
  MT_CHECK(kem->encaps(ct, good, pk, kem->pk_len) == 0, "%s encaps", kem->name);

  for (i = 0; i < sizeof positions / sizeof positions[0]; i++) {
    memcpy(tmp, sk, kem->sk_len);
    tmp[positions[i]] ^= 0x01;
    poison(ss, sizeof ss);
    ret = kem->decaps(ss, ct, kem->ct_len, tmp, kem->sk_len);
    MT_CHECK(ret == SOTTO_ERR_INVALID_KEY,
             "%s dk with byte %zu flipped (%s): got %d, want SOTTO_ERR_INVALID_KEY", kem->name, positions[i],
             positions[i] >= h_off ? "H(ek)" : "embedded ek", ret);
    MT_CHECK(mt_all_zero(ss, sizeof ss), "%s dk byte %zu flipped: ss not zeroed", kem->name, positions[i]);
  }
  /* No FIPS 203 check covers dk_PKE itself: a flipped byte there passes the
   * input checks, decryption then goes wrong (the NTT-domain change spreads to
   * every coefficient), re-encryption differs, and the result is J(z || c). */
  memcpy(tmp, sk, kem->sk_len);
  tmp[0] ^= 0x01; /* dk_PKE: not covered by any FIPS 203 check */
  ret = kem->decaps(ss, ct, kem->ct_len, tmp, kem->sk_len);
  MT_CHECK(ret == 0, "%s dk_PKE flipped: decaps returned %d", kem->name, ret);
  MT_CHECK(memcmp(ss, good, sizeof ss) != 0, "%s dk_PKE flipped: still the real key", kem->name);
  MT_CHECK(rejection_key(sk + z_off, ct, kem->ct_len, rej) == 0, "OpenSSL SHAKE256");
  MT_CHECK(memcmp(ss, rej, sizeof ss) == 0, "%s dk_PKE flipped: not the rejection key", kem->name);
}

/* Implicit rejection: any altered ciphertext of the right length decapsulates
 * (result 0) to J(z || c'), never to the real key. */
static void test_implicit_rejection(const struct mt_kem *kem) {
  size_t positions[] = {0, 1, 100, kem->ct_len - 129, kem->ct_len - 1};
  uint8_t ss[SOTTO_MLKEM_SS_LEN], good[SOTTO_MLKEM_SS_LEN], rej[SOTTO_MLKEM_SS_LEN];
  size_t z_off = kem->sk_len - 32, i;
  int ret;

  MT_CHECK(kem->keypair(pk, sk) == 0, "%s keypair", kem->name);
  MT_CHECK(kem->encaps(ct, good, pk, kem->pk_len) == 0, "%s encaps", kem->name);
  for (i = 0; i < sizeof positions / sizeof positions[0]; i++) {
    memcpy(ct2, ct, kem->ct_len);
    ct2[positions[i]] ^= 0x80;
    ret = kem->decaps(ss, ct2, kem->ct_len, sk, kem->sk_len);
    MT_CHECK(ret == 0, "%s altered ct byte %zu: decaps returned %d", kem->name, positions[i], ret);
    MT_CHECK(rejection_key(sk + z_off, ct2, kem->ct_len, rej) == 0, "OpenSSL SHAKE256");
    MT_CHECK(memcmp(ss, good, sizeof ss) != 0 && memcmp(ss, rej, sizeof ss) == 0,
             "%s altered ct byte %zu: not the implicit rejection key", kem->name, positions[i]);
  }
  /* The genuine ciphertext still gives the real key, not J(z || c). */
  MT_CHECK(kem->decaps(ss, ct, kem->ct_len, sk, kem->sk_len) == 0 && memcmp(ss, good, sizeof ss) == 0,
           "%s genuine ct after rejections", kem->name);
  /* A different key pair's dk rejects implicitly too. */
  MT_CHECK(kem->keypair(pk2, sk2) == 0, "%s keypair 2", kem->name);
  MT_CHECK(kem->decaps(ss, ct, kem->ct_len, sk2, kem->sk_len) == 0 && memcmp(ss, good, sizeof ss) != 0,
           "%s wrong dk gave the real key", kem->name);
}

/* FIPS 203 section 7.2 modulus check at its boundary. */
static void test_modulus_boundary(const struct mt_kem *kem) {
  uint8_t ss[SOTTO_MLKEM_SS_LEN];
  size_t n_coeffs = 256 * kem->k;
  size_t idx[] = {0, 1, 2, 255, 256, n_coeffs - 2, n_coeffs - 1};
  unsigned vals[] = {MLKEM_Q - 1, MLKEM_Q, MLKEM_Q + 1, 4095};
  size_t i, j;
  int ret;

  MT_CHECK(kem->keypair(pk, sk) == 0, "%s keypair", kem->name);
  for (i = 0; i < sizeof idx / sizeof idx[0]; i++) {
    for (j = 0; j < sizeof vals / sizeof vals[0]; j++) {
      memcpy(pk2, pk, kem->pk_len);
      set_coeff(pk2, idx[i], vals[j]);
      ret = kem->encaps(ct2, ss, pk2, kem->pk_len);
      if (vals[j] < MLKEM_Q) {
        MT_CHECK(ret == 0 && kem->check_pk(pk2, kem->pk_len) == 0, "%s coefficient %zu = %u refused (%d)",
                 kem->name, idx[i], vals[j], ret);
      } else {
        MT_CHECK(ret == SOTTO_ERR_INVALID_KEY && kem->check_pk(pk2, kem->pk_len) == SOTTO_ERR_INVALID_KEY,
                 "%s coefficient %zu = %u accepted (%d)", kem->name, idx[i], vals[j], ret);
      }
    }
  }
  /* rho (the last 32 bytes) is a seed, not coefficients: any value is fine. */
  memcpy(pk2, pk, kem->pk_len);
  memset(pk2 + kem->pk_len - 32, 0xff, 32);
  MT_CHECK(kem->check_pk(pk2, kem->pk_len) == 0, "%s rho of 0xff refused", kem->name);
  /* All-zero coefficients are reduced, hence a (weak but) valid ek. */
  memset(pk2, 0, kem->pk_len);
  MT_CHECK(kem->check_pk(pk2, kem->pk_len) == 0, "%s all-zero ek refused", kem->name);
  /* All 0xff: every coefficient is 4095. */
  memset(pk2, 0xff, kem->pk_len);
  MT_CHECK(kem->check_pk(pk2, kem->pk_len) == SOTTO_ERR_INVALID_KEY, "%s all-0xff ek accepted", kem->name);
}

/* Keys, ciphertexts and key lengths of one parameter set fed to the other. */
static void test_confusion(void) {
  const struct mt_kem *a = &mt_kems[0], *b = &mt_kems[1];
  uint8_t ss[SOTTO_MLKEM_SS_LEN];

  MT_CHECK(a->keypair(pk, sk) == 0, "768 keypair");
  MT_CHECK(b->encaps(ct, ss, pk, a->pk_len) == SOTTO_ERR_INVALID_KEY,
           "ML-KEM-1024 encaps accepted a 768 key");
  MT_CHECK(a->encaps(ct, ss, pk, a->pk_len) == 0, "768 encaps");
  MT_CHECK(b->decaps(ss, ct, a->ct_len, sk, a->sk_len) == SOTTO_ERR_MALFORMED,
           "ML-KEM-1024 decaps accepted a 768 ciphertext");
  MT_CHECK(b->keypair(pk2, sk2) == 0, "1024 keypair");
  MT_CHECK(a->encaps(ct2, ss, pk2, b->pk_len) == SOTTO_ERR_INVALID_KEY,
           "ML-KEM-768 encaps accepted a 1024 key");
  MT_CHECK(a->decaps(ss, ct, a->ct_len, sk2, b->sk_len) == SOTTO_ERR_INVALID_KEY,
           "ML-KEM-768 decaps accepted a 1024 dk");
}

int main(int argc, char **argv) {
  size_t i;

  (void)argc, (void)argv;
  if (sodium_init() < 0) {
    fprintf(stderr, "FAIL: sodium_init\n");
    return 1;
  }
  for (i = 0; i < MT_NKEMS; i++) {
    test_round_trip(&mt_kems[i]);
    test_deterministic(&mt_kems[i]);
    test_lengths(&mt_kems[i]);
    test_null(&mt_kems[i]);
    test_dk_hash_check(&mt_kems[i]);
    test_implicit_rejection(&mt_kems[i]);
    test_modulus_boundary(&mt_kems[i]);
  }
  test_confusion();
  return mt_finish("test_mlkem_api");
}

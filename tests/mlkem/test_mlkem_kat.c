/* SPDX-License-Identifier: Apache-2.0 */
/* tests/mlkem/test_mlkem_kat.c: ML-KEM-768/1024 known answers from other
 * implementations (provenance in tests/vectors/mlkem/README.md):
 *   - the Wycheproof FIPS 203 subset: every case, valid and invalid, with the
 *     exact rejection code expected for each invalid one;
 *   - NIST ACVP encapsulation/decapsulation cases, and the ipd-era ACVP key
 *     generation cases, which a FIPS 203 final implementation must NOT match;
 *   - C2SP CCTV: strcmp (decaps), unlucky sample (encaps and decaps; its key
 *     generation is ipd-era, so it must differ) and modulus (every key must
 *     be rejected by encapsulation with SOTTO_ERR_INVALID_KEY).
 * argv[1] is the tests/vectors directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "mlkem_test.h"

#define MLKEM_Q 3329
/* Longest line in the CCTV modulus files: a 1568-byte key in hex, plus slack. */
#define MODULUS_LINE_MAX (2 * SOTTO_MLKEM1024_PK_LEN + 16)

/* Scratch buffers for one vector. Static: several KB each. */
static uint8_t seed[MT_MAX_BLOB], ek[MT_MAX_BLOB], dk[MT_MAX_BLOB], c[MT_MAX_BLOB], m[MT_MAX_BLOB];
static uint8_t k_want[MT_MAX_BLOB];
static uint8_t got_pk[MT_MAX_BLOB], got_sk[MT_MAX_BLOB], got_ct[MT_MAX_BLOB];
static uint8_t got_ss[SOTTO_MLKEM_SS_LEN];

static const struct mt_kem *kem_by_name(const char *name) {
  size_t i;

  for (i = 0; i < MT_NKEMS; i++) {
    if (strcmp(mt_kems[i].name, name) == 0) {
      return &mt_kems[i];
    }
  }
  return NULL;
}

/* Fills the output buffers with a pattern so that "zeroed on failure" can be
 * checked afterwards. */
static void poison_outputs(void) {
  memset(got_pk, 0xa5, sizeof got_pk);
  memset(got_sk, 0xa5, sizeof got_sk);
  memset(got_ct, 0xa5, sizeof got_ct);
  memset(got_ss, 0xa5, sizeof got_ss);
}

/* ---- Wycheproof ----------------------------------------------------------- */

/* keygen_seed: ML-KEM.KeyGen_internal from d || z, compare ek and dk. */
static void wp_keygen(const struct mt_kem *kem, const cJSON *t, int id) {
  long seed_len = mt_hex_field(t, "seed", seed, sizeof seed);
  long ek_len = mt_hex_field(t, "ek", ek, sizeof ek);
  long dk_len = mt_hex_field(t, "dk", dk, sizeof dk);
  int ret;

  MT_CHECK(seed_len >= 0 && ek_len == (long)kem->pk_len && dk_len == (long)kem->sk_len,
           "%s wycheproof keygen tcId %d: malformed vector", kem->name, id);
  MT_CHECK(strcmp(mt_str_field(t, "result"), "valid") == 0,
           "%s wycheproof keygen tcId %d: unexpected result kind", kem->name, id);
  if (seed_len < 0) {
    return;
  }
  ret = kem->keypair_from_seed(got_pk, got_sk, seed, (size_t)seed_len);
  MT_CHECK(ret == 0, "%s wycheproof keygen tcId %d: keypair_from_seed returned %d", kem->name, id, ret);
  MT_CHECK_BYTES(got_pk, ek, kem->pk_len, "wycheproof keygen ek");
  MT_CHECK_BYTES(got_sk, dk, kem->sk_len, "wycheproof keygen dk");
}

/* encaps: valid ones must reproduce (c, K) from (ek, m); invalid ones carry
 * keys failing the section 7.2 modulus check and must be refused with
 * SOTTO_ERR_INVALID_KEY, outputs zeroed. */
static void wp_encaps(const struct mt_kem *kem, const cJSON *t, int id) {
  const char *result = mt_str_field(t, "result");
  long ek_len = mt_hex_field(t, "ek", ek, sizeof ek);
  long m_len = mt_hex_field(t, "m", m, sizeof m);
  long c_len = mt_hex_field(t, "c", c, sizeof c);
  long k_len = mt_hex_field(t, "K", k_want, sizeof k_want);
  int ret;

  if (ek_len < 0 || m_len != SOTTO_MLKEM_ENCAPS_COINS_LEN || c_len < 0 || k_len < 0) {
    MT_CHECK(0, "%s wycheproof encaps tcId %d: malformed vector", kem->name, id);
    return;
  }
  poison_outputs();
  ret = kem->encaps_derand(got_ct, got_ss, ek, (size_t)ek_len, m);
  if (strcmp(result, "valid") == 0) {
    MT_CHECK(ret == 0, "%s wycheproof encaps tcId %d: returned %d", kem->name, id, ret);
    MT_CHECK(c_len == (long)kem->ct_len && k_len == SOTTO_MLKEM_SS_LEN,
             "%s wycheproof encaps tcId %d: vector sizes", kem->name, id);
    if (c_len == (long)kem->ct_len && k_len == SOTTO_MLKEM_SS_LEN) {
      MT_CHECK_BYTES(got_ct, c, kem->ct_len, "wycheproof encaps c");
      MT_CHECK_BYTES(got_ss, k_want, SOTTO_MLKEM_SS_LEN, "wycheproof encaps K");
    }
    MT_CHECK(kem->check_pk(ek, (size_t)ek_len) == 0, "%s wycheproof encaps tcId %d: check_pk", kem->name, id);
  } else {
    MT_CHECK(strcmp(result, "invalid") == 0, "%s wycheproof encaps tcId %d: result \"%s\"", kem->name, id,
             result);
    MT_CHECK(ret == SOTTO_ERR_INVALID_KEY,
             "%s wycheproof encaps tcId %d (%s): got %d, want SOTTO_ERR_INVALID_KEY", kem->name, id,
             mt_str_field(t, "comment"), ret);
    MT_CHECK(mt_all_zero(got_ct, kem->ct_len) && mt_all_zero(got_ss, SOTTO_MLKEM_SS_LEN),
             "%s wycheproof encaps tcId %d: outputs not zeroed on rejection", kem->name, id);
    MT_CHECK(kem->check_pk(ek, (size_t)ek_len) == SOTTO_ERR_INVALID_KEY,
             "%s wycheproof encaps tcId %d: check_pk accepted", kem->name, id);
  }
}

/* decaps_from_seed ("mlkem_test"): derive the keys from the seed, check ek,
 * decapsulate c. Invalid ones have seeds of the wrong length, which
 * keypair_from_seed must refuse with SOTTO_ERR_INVALID_KEY. */
static void wp_decaps_from_seed(const struct mt_kem *kem, const cJSON *t, int id) {
  const char *result = mt_str_field(t, "result");
  long seed_len = mt_hex_field(t, "seed", seed, sizeof seed);
  long c_len = mt_hex_field(t, "c", c, sizeof c);
  long k_len = mt_hex_field(t, "K", k_want, sizeof k_want);
  long ek_len;
  int ret;

  if (seed_len < 0 || c_len < 0 || k_len < 0) {
    MT_CHECK(0, "%s wycheproof decaps_from_seed tcId %d: malformed vector", kem->name, id);
    return;
  }
  poison_outputs();
  ret = kem->keypair_from_seed(got_pk, got_sk, seed, (size_t)seed_len);
  if (strcmp(result, "invalid") == 0) {
    MT_CHECK(seed_len != SOTTO_MLKEM_SEED_LEN,
             "%s wycheproof decaps_from_seed tcId %d: unexpected invalid kind", kem->name, id);
    MT_CHECK(ret == SOTTO_ERR_INVALID_KEY,
             "%s wycheproof decaps_from_seed tcId %d (%s): got %d, want SOTTO_ERR_INVALID_KEY", kem->name, id,
             mt_str_field(t, "comment"), ret);
    MT_CHECK(mt_all_zero(got_pk, kem->pk_len) && mt_all_zero(got_sk, kem->sk_len),
             "%s wycheproof decaps_from_seed tcId %d: outputs not zeroed", kem->name, id);
    return;
  }
  MT_CHECK(strcmp(result, "valid") == 0, "%s wycheproof decaps_from_seed tcId %d: result %s", kem->name, id,
           result);
  MT_CHECK(ret == 0, "%s wycheproof decaps_from_seed tcId %d: keygen returned %d", kem->name, id, ret);
  ek_len = mt_hex_field(t, "ek", ek, sizeof ek);
  MT_CHECK(ek_len == (long)kem->pk_len, "%s wycheproof decaps_from_seed tcId %d: ek size", kem->name, id);
  if (ek_len == (long)kem->pk_len) {
    MT_CHECK_BYTES(got_pk, ek, kem->pk_len, "wycheproof decaps_from_seed ek");
  }
  ret = kem->decaps(got_ss, c, (size_t)c_len, got_sk, kem->sk_len);
  MT_CHECK(ret == 0, "%s wycheproof decaps_from_seed tcId %d: decaps returned %d", kem->name, id, ret);
  MT_CHECK(k_len == SOTTO_MLKEM_SS_LEN, "%s wycheproof decaps_from_seed tcId %d: K size", kem->name, id);
  MT_CHECK_BYTES(got_ss, k_want, SOTTO_MLKEM_SS_LEN, "wycheproof decaps_from_seed K");
}

/* decaps_expanded_dk ("semi_expanded_decaps"): Decaps with the dk given. The
 * invalid ones name their defect in "flags"; each maps to one error code. */
static void wp_decaps_dk(const struct mt_kem *kem, const cJSON *t, int id) {
  const char *result = mt_str_field(t, "result");
  long dk_len = mt_hex_field(t, "dk", dk, sizeof dk);
  long c_len = mt_hex_field(t, "c", c, sizeof c);
  int want, ret;
  long k_len;

  if (dk_len < 0 || c_len < 0) {
    MT_CHECK(0, "%s wycheproof decaps_dk tcId %d: malformed vector", kem->name, id);
    return;
  }
  memset(got_ss, 0xa5, sizeof got_ss);
  ret = kem->decaps(got_ss, c, (size_t)c_len, dk, (size_t)dk_len);
  if (strcmp(result, "valid") == 0) {
    k_len = mt_hex_field(t, "K", k_want, sizeof k_want);
    MT_CHECK(ret == 0, "%s wycheproof decaps_dk tcId %d (%s): returned %d", kem->name, id,
             mt_str_field(t, "comment"), ret);
    MT_CHECK(k_len == SOTTO_MLKEM_SS_LEN, "%s wycheproof decaps_dk tcId %d: K size", kem->name, id);
    MT_CHECK_BYTES(got_ss, k_want, SOTTO_MLKEM_SS_LEN, "wycheproof decaps_dk K");
    return;
  }
  if (mt_has_flag(t, "IncorrectCiphertextLength")) {
    want = SOTTO_ERR_MALFORMED;
  } else if (mt_has_flag(t, "IncorrectDecapsulationKeyLength") || mt_has_flag(t, "InvalidDecapsulationKey")) {
    want = SOTTO_ERR_INVALID_KEY;
  } else {
    MT_CHECK(0, "%s wycheproof decaps_dk tcId %d: invalid case with an unknown flag", kem->name, id);
    return;
  }
  MT_CHECK(strcmp(result, "invalid") == 0, "%s wycheproof decaps_dk tcId %d: result %s", kem->name, id,
           result);
  MT_CHECK(ret == want, "%s wycheproof decaps_dk tcId %d (%s): got %d (%s), want %d", kem->name, id,
           mt_str_field(t, "comment"), ret, sotto_errname(ret), want);
  MT_CHECK(mt_all_zero(got_ss, SOTTO_MLKEM_SS_LEN),
           "%s wycheproof decaps_dk tcId %d: ss not zeroed on rejection", kem->name, id);
}

static void test_wycheproof(const char *dir) {
  cJSON *root = mt_load_json(dir, "mlkem/wycheproof_mlkem_fips203_subset.json");
  const cJSON *sets, *set, *group, *t;
  const struct mt_kem *kem;
  int count[4] = {0, 0, 0, 0}, id;

  MT_CHECK(root != NULL, "wycheproof vectors not loaded");
  if (root == NULL) {
    return;
  }
  sets = cJSON_GetObjectItemCaseSensitive(root, "sets");
  cJSON_ArrayForEach(set, sets) {
    kem = kem_by_name(set->string);
    MT_CHECK(kem != NULL, "wycheproof: unknown parameter set %s", set->string);
    if (kem == NULL) {
      continue;
    }
    cJSON_ArrayForEach(group, set) {
      cJSON_ArrayForEach(t, group) {
        id = mt_int_field(t, "tcId");
        if (strcmp(group->string, "keygen_seed") == 0) {
          wp_keygen(kem, t, id);
          count[0]++;
        } else if (strcmp(group->string, "encaps") == 0) {
          wp_encaps(kem, t, id);
          count[1]++;
        } else if (strcmp(group->string, "decaps_from_seed") == 0) {
          wp_decaps_from_seed(kem, t, id);
          count[2]++;
        } else if (strcmp(group->string, "decaps_expanded_dk") == 0) {
          wp_decaps_dk(kem, t, id);
          count[3]++;
        } else {
          MT_CHECK(0, "wycheproof: unknown group %s", group->string);
        }
      }
    }
  }
  /* The subset as committed: 4 + 9 + 7 + 9 cases per parameter set. */
  MT_CHECK(count[0] == 8 && count[1] == 18 && count[2] == 14 && count[3] == 18,
           "wycheproof: ran %d/%d/%d/%d cases, expected 8/18/14/18", count[0], count[1], count[2], count[3]);
  printf("wycheproof: %d keygen, %d encaps, %d decaps-from-seed, %d decaps-dk cases\n", count[0], count[1],
         count[2], count[3]);
  cJSON_Delete(root);
}

/* ---- NIST ACVP ------------------------------------------------------------ */

static void test_acvp(const char *dir) {
  cJSON *root = mt_load_json(dir, "mlkem/acvp_mlkem_fips203.json");
  const cJSON *set, *t, *neg;
  const struct mt_kem *kem;
  int n_ed = 0, n_kg = 0, ret;

  MT_CHECK(root != NULL, "ACVP vectors not loaded");
  if (root == NULL) {
    return;
  }
  /* encapDecap: Encaps_internal(ek, m) = (c, k), and Decaps(dk, c) = k. */
  cJSON_ArrayForEach(set, cJSON_GetObjectItemCaseSensitive(root, "encapDecap")) {
    kem = kem_by_name(set->string);
    MT_CHECK(kem != NULL, "ACVP: unknown parameter set %s", set->string);
    if (kem == NULL) {
      continue;
    }
    cJSON_ArrayForEach(t, set) {
      if (mt_hex_field(t, "ek", ek, sizeof ek) != (long)kem->pk_len ||
          mt_hex_field(t, "dk", dk, sizeof dk) != (long)kem->sk_len ||
          mt_hex_field(t, "c", c, sizeof c) != (long)kem->ct_len ||
          mt_hex_field(t, "k", k_want, sizeof k_want) != SOTTO_MLKEM_SS_LEN ||
          mt_hex_field(t, "m", m, sizeof m) != SOTTO_MLKEM_ENCAPS_COINS_LEN) {
        MT_CHECK(0, "%s ACVP encapDecap: malformed vector", kem->name);
        continue;
      }
      ret = kem->encaps_derand(got_ct, got_ss, ek, kem->pk_len, m);
      MT_CHECK(ret == 0, "%s ACVP encaps returned %d", kem->name, ret);
      MT_CHECK_BYTES(got_ct, c, kem->ct_len, "ACVP encaps c");
      MT_CHECK_BYTES(got_ss, k_want, SOTTO_MLKEM_SS_LEN, "ACVP encaps k");
      ret = kem->decaps(got_ss, c, kem->ct_len, dk, kem->sk_len);
      MT_CHECK(ret == 0, "%s ACVP decaps returned %d", kem->name, ret);
      MT_CHECK_BYTES(got_ss, k_want, SOTTO_MLKEM_SS_LEN, "ACVP decaps k");
      n_ed++;
    }
  }
  /* keyGen cases from before FIPS 203 final (no domain byte k in G(d || k)):
   * our keys must differ in the parts derived from G, and agree in z. */
  neg = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "keyGen_ipd_era_NEGATIVE"),
                                         "cases");
  cJSON_ArrayForEach(set, neg) {
    kem = kem_by_name(set->string);
    MT_CHECK(kem != NULL, "ACVP keyGen: unknown parameter set %s", set->string);
    if (kem == NULL) {
      continue;
    }
    cJSON_ArrayForEach(t, set) {
      if (mt_hex_field(t, "d", seed, 32) != 32 || mt_hex_field(t, "z", seed + 32, 32) != 32 ||
          mt_hex_field(t, "ek", ek, sizeof ek) != (long)kem->pk_len ||
          mt_hex_field(t, "dk", dk, sizeof dk) != (long)kem->sk_len) {
        MT_CHECK(0, "%s ACVP keyGen: malformed vector", kem->name);
        continue;
      }
      ret = kem->keypair_derand(got_pk, got_sk, seed);
      MT_CHECK(ret == 0, "%s ACVP ipd keyGen: keypair_derand returned %d", kem->name, ret);
      MT_CHECK(memcmp(got_pk, ek, kem->pk_len) != 0,
               "%s ACVP ipd-era keyGen: ek MATCHES the pre-final vector (domain byte missing?)", kem->name);
      MT_CHECK(memcmp(got_sk, dk, kem->sk_len - 64) != 0,
               "%s ACVP ipd-era keyGen: dk MATCHES the pre-final vector", kem->name);
      MT_CHECK_BYTES(got_sk + kem->sk_len - 32, seed + 32, 32, "ACVP keyGen z in dk");
      n_kg++;
    }
  }
  MT_CHECK(n_ed == 2 && n_kg == 2, "ACVP: ran %d encapDecap and %d keyGen cases, expected 2+2", n_ed, n_kg);
  printf("acvp: %d encaps/decaps cases, %d ipd-era keygen cases (must differ)\n", n_ed, n_kg);
  cJSON_Delete(root);
}

/* ---- C2SP CCTV ------------------------------------------------------------ */

/* strcmp: ciphertexts that an early-exit comparison would accept; the answer
 * is the implicit rejection key. */
static void test_cctv_strcmp(const char *dir) {
  cJSON *root = mt_load_json(dir, "mlkem/cctv_mlkem_strcmp.json");
  const cJSON *set, *t;
  const struct mt_kem *kem;
  int n = 0, ret;

  MT_CHECK(root != NULL, "CCTV strcmp vectors not loaded");
  if (root == NULL) {
    return;
  }
  cJSON_ArrayForEach(set, cJSON_GetObjectItemCaseSensitive(root, "sets")) {
    kem = kem_by_name(set->string);
    MT_CHECK(kem != NULL, "CCTV strcmp: unknown parameter set %s", set->string);
    if (kem == NULL) {
      continue;
    }
    cJSON_ArrayForEach(t, set) {
      if (mt_hex_field(t, "dk", dk, sizeof dk) != (long)kem->sk_len ||
          mt_hex_field(t, "c", c, sizeof c) != (long)kem->ct_len ||
          mt_hex_field(t, "K", k_want, sizeof k_want) != SOTTO_MLKEM_SS_LEN) {
        MT_CHECK(0, "%s CCTV strcmp: malformed vector", kem->name);
        continue;
      }
      ret = kem->decaps(got_ss, c, kem->ct_len, dk, kem->sk_len);
      MT_CHECK(ret == 0, "%s CCTV strcmp decaps returned %d", kem->name, ret);
      MT_CHECK_BYTES(got_ss, k_want, SOTTO_MLKEM_SS_LEN, "CCTV strcmp K");
      n++;
    }
  }
  MT_CHECK(n == 2, "CCTV strcmp: ran %d cases, expected 2", n);
  printf("cctv strcmp: %d decaps cases\n", n);
  cJSON_Delete(root);
}

/* unlucky sample: SampleNTT needs more than 575 XOF bytes for these keys.
 * Encaps and decaps must match; the keys were generated with the ipd key
 * generation, so KeyGen(d, z) must NOT reproduce them. */
static void test_cctv_unlucky(const char *dir) {
  cJSON *root = mt_load_json(dir, "mlkem/cctv_mlkem_unluckysample.json");
  const cJSON *set, *t;
  const struct mt_kem *kem;
  int n = 0, ret;

  MT_CHECK(root != NULL, "CCTV unlucky vectors not loaded");
  if (root == NULL) {
    return;
  }
  cJSON_ArrayForEach(set, cJSON_GetObjectItemCaseSensitive(root, "sets")) {
    kem = kem_by_name(set->string);
    MT_CHECK(kem != NULL, "CCTV unlucky: unknown parameter set %s", set->string);
    if (kem == NULL) {
      continue;
    }
    cJSON_ArrayForEach(t, set) {
      if (mt_hex_field(t, "d", seed, 32) != 32 || mt_hex_field(t, "z", seed + 32, 32) != 32 ||
          mt_hex_field(t, "ek", ek, sizeof ek) != (long)kem->pk_len ||
          mt_hex_field(t, "dk", dk, sizeof dk) != (long)kem->sk_len ||
          mt_hex_field(t, "m", m, sizeof m) != SOTTO_MLKEM_ENCAPS_COINS_LEN ||
          mt_hex_field(t, "c", c, sizeof c) != (long)kem->ct_len ||
          mt_hex_field(t, "K", k_want, sizeof k_want) != SOTTO_MLKEM_SS_LEN) {
        MT_CHECK(0, "%s CCTV unlucky: malformed vector", kem->name);
        continue;
      }
      ret = kem->encaps_derand(got_ct, got_ss, ek, kem->pk_len, m);
      MT_CHECK(ret == 0, "%s CCTV unlucky encaps returned %d", kem->name, ret);
      MT_CHECK_BYTES(got_ct, c, kem->ct_len, "CCTV unlucky encaps c");
      MT_CHECK_BYTES(got_ss, k_want, SOTTO_MLKEM_SS_LEN, "CCTV unlucky encaps K");
      ret = kem->decaps(got_ss, c, kem->ct_len, dk, kem->sk_len);
      MT_CHECK(ret == 0, "%s CCTV unlucky decaps returned %d", kem->name, ret);
      MT_CHECK_BYTES(got_ss, k_want, SOTTO_MLKEM_SS_LEN, "CCTV unlucky decaps K");
      ret = kem->keypair_derand(got_pk, got_sk, seed);
      MT_CHECK(ret == 0, "%s CCTV unlucky keygen returned %d", kem->name, ret);
      MT_CHECK(memcmp(got_pk, ek, kem->pk_len) != 0,
               "%s CCTV unlucky: KeyGen(d, z) MATCHES the ipd ek (domain byte missing?)", kem->name);
      MT_CHECK(memcmp(got_sk, dk, kem->sk_len) != 0, "%s CCTV unlucky: KeyGen(d, z) MATCHES the ipd dk",
               kem->name);
      n++;
    }
  }
  MT_CHECK(n == 2, "CCTV unlucky: ran %d cases, expected 2", n);
  printf("cctv unluckysample: %d encaps+decaps cases (keygen must differ)\n", n);
  cJSON_Delete(root);
}

/* The test's own statement of the modulus check, written directly from FIPS
 * 203 Algorithm 6 (ByteDecode12 reduces mod q): 1 if some coefficient >= q. */
static int ek_has_unreduced(const uint8_t *key, size_t k) {
  size_t i;
  unsigned v0, v1;

  for (i = 0; i < 384 * k; i += 3) {
    v0 = key[i] | (unsigned)(key[i + 1] & 0x0f) << 8;
    v1 = (unsigned)(key[i + 1] >> 4) | (unsigned)key[i + 2] << 4;
    if (v0 >= MLKEM_Q || v1 >= MLKEM_Q) {
      return 1;
    }
  }
  return 0;
}

/* Replaces every coefficient by its value mod q (ByteEncode12 o ByteDecode12). */
static void ek_reduce(uint8_t *key, size_t k) {
  size_t i;
  unsigned v0, v1;

  for (i = 0; i < 384 * k; i += 3) {
    v0 = (key[i] | (unsigned)(key[i + 1] & 0x0f) << 8) % MLKEM_Q;
    v1 = ((unsigned)(key[i + 1] >> 4) | (unsigned)key[i + 2] << 4) % MLKEM_Q;
    key[i] = (uint8_t)v0;
    key[i + 1] = (uint8_t)(v0 >> 8 | (v1 & 0x0f) << 4);
    key[i + 2] = (uint8_t)(v1 >> 4);
  }
}

/* modulus: every key (one hex line each) has a coefficient >= q. Encaps must
 * refuse each with SOTTO_ERR_INVALID_KEY and zeroed outputs; the same key with
 * its coefficients reduced mod q must then be accepted, which shows that the
 * modulus check (and not something else) rejected it. */
static void test_cctv_modulus(const char *dir, const struct mt_kem *kem, const char *file, int want_lines) {
  static char line[MODULUS_LINE_MAX + 2];
  static const uint8_t fixed_m[SOTTO_MLKEM_ENCAPS_COINS_LEN] = {1, 2, 3};
  char path[4096];
  gzFile gz;
  size_t len, key_len;
  int n = 0, ret, bad = 0;

  snprintf(path, sizeof path, "%s/mlkem/%s", dir, file);
  gz = gzopen(path, "rb");
  MT_CHECK(gz != NULL, "cannot open %s", path);
  if (gz == NULL) {
    return;
  }
  while (gzgets(gz, line, sizeof line) != NULL) {
    len = strlen(line);
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) {
      line[--len] = '\0';
    }
    if (len == 0) {
      continue;
    }
    n++;
    if (len > MODULUS_LINE_MAX || mt_hex_decode(line, len, ek, sizeof ek, &key_len) != 0 ||
        key_len != kem->pk_len) {
      MT_CHECK(0, "%s modulus line %d: not a %zu-byte hex key", kem->name, n, kem->pk_len);
      bad++;
      continue;
    }
    if (!ek_has_unreduced(ek, kem->k)) {
      MT_CHECK(0, "%s modulus line %d: the vector itself is reduced", kem->name, n);
      bad++;
      continue;
    }
    poison_outputs();
    ret = kem->encaps_derand(got_ct, got_ss, ek, key_len, fixed_m);
    if (ret != SOTTO_ERR_INVALID_KEY || !mt_all_zero(got_ct, kem->ct_len) ||
        !mt_all_zero(got_ss, SOTTO_MLKEM_SS_LEN)) {
      MT_CHECK(0, "%s modulus line %d: encaps_derand returned %d (want %d) or left output", kem->name, n, ret,
               SOTTO_ERR_INVALID_KEY);
      bad++;
    }
    poison_outputs();
    ret = kem->encaps(got_ct, got_ss, ek, key_len);
    if (ret != SOTTO_ERR_INVALID_KEY || !mt_all_zero(got_ss, SOTTO_MLKEM_SS_LEN)) {
      MT_CHECK(0, "%s modulus line %d: encaps returned %d", kem->name, n, ret);
      bad++;
    }
    if (kem->check_pk(ek, key_len) != SOTTO_ERR_INVALID_KEY) {
      MT_CHECK(0, "%s modulus line %d: check_pk accepted", kem->name, n);
      bad++;
    }
    ek_reduce(ek, kem->k);
    if (kem->check_pk(ek, key_len) != 0 || kem->encaps_derand(got_ct, got_ss, ek, key_len, fixed_m) != 0) {
      MT_CHECK(0, "%s modulus line %d: reduced key still rejected", kem->name, n);
      bad++;
    }
  }
  MT_CHECK(gzeof(gz), "%s: read error", path);
  gzclose(gz);
  MT_CHECK(n == want_lines, "%s: %d keys, expected %d", file, n, want_lines);
  MT_CHECK(bad == 0, "%s: %d of %d keys misbehaved", file, bad, n);
  printf("cctv modulus %s: %d keys rejected (and accepted once reduced)\n", kem->name, n - bad);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s VECTORS_DIR\n", argv[0]);
    return 2;
  }
  test_wycheproof(argv[1]);
  test_acvp(argv[1]);
  test_cctv_strcmp(argv[1]);
  test_cctv_unlucky(argv[1]);
  test_cctv_modulus(argv[1], &mt_kems[0], "cctv_mlkem_modulus_ML-KEM-768.txt.gz", 780);
  test_cctv_modulus(argv[1], &mt_kems[1], "cctv_mlkem_modulus_ML-KEM-1024.txt.gz", 1040);
  return mt_finish("test_mlkem_kat");
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_kyber_kat: Kyber-1024 round 3 (sotto/kyber.h) against NIST's round-3
 * known answers (tests/vectors/kyber/, provenance in its README): all 100
 * vectors reproduced through the NIST AES-256-CTR DRBG, vector 0 byte for
 * byte; the implicit-rejection path against an independent computation
 * (OpenSSL's SHA3/SHAKE); the input checks; and the differences from
 * ML-KEM-1024 that make relabelling one as the other fail. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <sotto/kyber.h>
#include <sotto/mlkem.h>

#include "testutil.h"

/* ---- NIST SP 800-90A AES-256-CTR DRBG as used by PQCgenKAT (no derivation
 * function, no reseed): state Key[32], V[16]. */
struct drbg {
  uint8_t key[32], v[16];
};

static void aes256_block(uint8_t out[16], const uint8_t key[32], const uint8_t in[16]) {
  EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
  int n = 0;
  if (c == NULL || EVP_EncryptInit_ex(c, EVP_aes_256_ecb(), NULL, key, NULL) != 1 ||
      EVP_CIPHER_CTX_set_padding(c, 0) != 1 || EVP_EncryptUpdate(c, out, &n, in, 16) != 1 ||
      n != 16) {
    fprintf(stderr, "AES-256-ECB failed\n");
    exit(1);
  }
  EVP_CIPHER_CTX_free(c);
}

static void v_inc(uint8_t v[16]) {
  int i;
  for (i = 15; i >= 0; i--)
    if (++v[i] != 0) break;
}

static void drbg_update(struct drbg *d, const uint8_t *provided /* 48 or NULL */) {
  uint8_t t[48];
  int i;
  for (i = 0; i < 3; i++) {
    v_inc(d->v);
    aes256_block(t + 16 * i, d->key, d->v);
  }
  if (provided != NULL)
    for (i = 0; i < 48; i++) t[i] ^= provided[i];
  memcpy(d->key, t, 32);
  memcpy(d->v, t + 32, 16);
}

static void drbg_init(struct drbg *d, const uint8_t seed[48]) {
  memset(d, 0, sizeof *d);
  drbg_update(d, seed);
}

static void drbg_bytes(struct drbg *d, uint8_t *out, size_t n) {
  uint8_t b[16];
  while (n > 0) {
    size_t k = n < 16 ? n : 16;
    v_inc(d->v);
    aes256_block(b, d->key, d->v);
    memcpy(out, b, k);
    out += k;
    n -= k;
  }
  drbg_update(d, NULL);
}

static void sha256(uint8_t out[32], const uint8_t *p, size_t n) {
  unsigned len = 0;
  if (EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) != 1 || len != 32) exit(1);
}

static void sha3_256(uint8_t out[32], const uint8_t *p, size_t n) {
  unsigned len = 0;
  if (EVP_Digest(p, n, out, &len, EVP_sha3_256(), NULL) != 1 || len != 32) exit(1);
}

static void shake256_2(uint8_t out[32], const uint8_t *a, size_t an, const uint8_t *b, size_t bn) {
  EVP_MD_CTX *c = EVP_MD_CTX_new();
  if (c == NULL || EVP_DigestInit_ex(c, EVP_shake256(), NULL) != 1 ||
      EVP_DigestUpdate(c, a, an) != 1 || EVP_DigestUpdate(c, b, bn) != 1 ||
      EVP_DigestFinalXOF(c, out, 32) != 1)
    exit(1);
  EVP_MD_CTX_free(c);
}

static uint8_t pk[SOTTO_KYBER1024_PK_LEN], sk[SOTTO_KYBER1024_SK_LEN], ct[SOTTO_KYBER1024_CT_LEN];

/* All 100 vectors, condensed (digests of pk, sk, ct; ss in full). */
static void test_digests(const char *dir) {
  char path[4096], line[1024];
  FILE *f;
  unsigned seen = 0;

  snprintf(path, sizeof path, "%s/kyber/kyber1024_r3_kat_digests.txt", dir);
  f = fopen(path, "r");
  CHECK(f != NULL);
  if (f == NULL) return;
  while (fgets(line, sizeof line, f) != NULL) {
    char seed_h[200], pk_h[80], sk_h[80], ct_h[80], ss_h[80];
    uint8_t seed[48], want[4][32], got[32], coins[64], m0[32], ss[32], ss2[32];
    unsigned count;
    struct drbg d;
    if (line[0] == '#') continue;
    if (sscanf(line, "%u %199s %79s %79s %79s %79s", &count, seed_h, pk_h, sk_h, ct_h, ss_h) != 6) {
      CHECK(!"bad line in the digests file");
      continue;
    }
    CHECK(count == seen);
    CHECK(tu_unhex(seed, sizeof seed, seed_h) == 48);
    CHECK(tu_unhex(want[0], 32, pk_h) == 32 && tu_unhex(want[1], 32, sk_h) == 32 &&
          tu_unhex(want[2], 32, ct_h) == 32 && tu_unhex(want[3], 32, ss_h) == 32);
    drbg_init(&d, seed);
    drbg_bytes(&d, coins, 32); /* d */
    drbg_bytes(&d, coins + 32, 32); /* z */
    drbg_bytes(&d, m0, 32);
    CHECK_RC(sotto_kyber1024_keypair_derand(pk, sk, coins), 0);
    sha256(got, pk, sizeof pk);
    CHECK(memcmp(got, want[0], 32) == 0);
    sha256(got, sk, sizeof sk);
    CHECK(memcmp(got, want[1], 32) == 0);
    CHECK_RC(sotto_kyber1024_encaps_derand(ct, ss, pk, sizeof pk, m0), 0);
    sha256(got, ct, sizeof ct);
    CHECK(memcmp(got, want[2], 32) == 0);
    CHECK(memcmp(ss, want[3], 32) == 0);
    CHECK_RC(sotto_kyber1024_decaps(ss2, ct, sizeof ct, sk, sizeof sk), 0);
    CHECK(memcmp(ss2, want[3], 32) == 0);
    if (count == 0) {
      /* The same randomness through ML-KEM-1024 gives another key (G(d||k)
       * instead of G(d)): the two KEMs cannot be mistaken for each other. */
      static uint8_t mpk[SOTTO_MLKEM1024_PK_LEN], msk[SOTTO_MLKEM1024_SK_LEN];
      uint8_t mss[32];
      CHECK_RC(sotto_mlkem1024_keypair_derand(mpk, msk, coins), 0);
      CHECK(memcmp(mpk, pk, sizeof pk) != 0);
      /* ML-KEM decapsulation of a round-3 ciphertext under the round-3 key
       * gives a different secret (FIPS 203 outputs K' directly). */
      CHECK_RC(sotto_mlkem1024_decaps(mss, ct, sizeof ct, sk, sizeof sk), 0);
      CHECK(memcmp(mss, ss, 32) != 0);
    }
    seen++;
  }
  fclose(f);
  CHECK(seen == 100);
}

/* Vector 0 in full, byte for byte. */
static void test_count0(const char *dir) {
  char path[4096];
  size_t len = 0;
  char *txt;
  static uint8_t wpk[SOTTO_KYBER1024_PK_LEN], wsk[SOTTO_KYBER1024_SK_LEN],
      wct[SOTTO_KYBER1024_CT_LEN];
  uint8_t seed[48], wss[32], coins[64], m0[32], ss[32];
  struct drbg d;
  const char *names[5] = {"seed = ", "pk = ", "sk = ", "ct = ", "ss = "};
  uint8_t *bufs[5] = {seed, wpk, wsk, wct, wss};
  size_t caps[5] = {48, sizeof wpk, sizeof wsk, sizeof wct, 32};
  int i;

  snprintf(path, sizeof path, "%s/kyber/kyber1024_r3_kat_count0.txt", dir);
  txt = tu_read_file(path, &len);
  CHECK(txt != NULL);
  if (txt == NULL) return;
  for (i = 0; i < 5; i++) {
    char *p = strstr(txt, names[i]), *e;
    CHECK(p != NULL);
    if (p == NULL) goto out;
    p += strlen(names[i]);
    e = strchr(p, '\n');
    if (e != NULL) *e = '\0';
    CHECK(tu_unhex(bufs[i], caps[i], p) == (long)caps[i]);
    if (e != NULL) *e = '\n';
  }
  drbg_init(&d, seed);
  drbg_bytes(&d, coins, 32); /* d and z are two separate draws */
  drbg_bytes(&d, coins + 32, 32);
  drbg_bytes(&d, m0, 32);
  CHECK_RC(sotto_kyber1024_keypair_derand(pk, sk, coins), 0);
  CHECK(memcmp(pk, wpk, sizeof pk) == 0);
  CHECK(memcmp(sk, wsk, sizeof sk) == 0);
  CHECK_RC(sotto_kyber1024_encaps_derand(ct, ss, pk, sizeof pk, m0), 0);
  CHECK(memcmp(ct, wct, sizeof ct) == 0);
  CHECK(memcmp(ss, wss, 32) == 0);
out:
  free(txt);
}

/* Implicit rejection: any change of the ciphertext gives
 * SHAKE-256(z || SHA3-256(c')) (round 3), computed here with OpenSSL; never
 * the true secret, never ML-KEM's J(z || c'), and no error code. */
static void test_implicit_rejection(void) {
  uint8_t ss[32], bad[32], want[32], hc[32], j[32];
  static uint8_t c2[SOTTO_KYBER1024_CT_LEN];
  const uint8_t *z;
  size_t positions[] = {0, 1, 700, 1407, 1408, 1567};
  size_t i;

  CHECK_RC(sotto_kyber1024_keypair(pk, sk), 0);
  CHECK_RC(sotto_kyber1024_encaps(ct, ss, pk, sizeof pk), 0);
  z = sk + SOTTO_KYBER1024_SK_LEN - 32;
  for (i = 0; i < sizeof positions / sizeof positions[0]; i++) {
    memcpy(c2, ct, sizeof ct);
    c2[positions[i]] ^= (uint8_t)(1u << (i % 8));
    CHECK_RC(sotto_kyber1024_decaps(bad, c2, sizeof c2, sk, sizeof sk), 0);
    CHECK(memcmp(bad, ss, 32) != 0);
    sha3_256(hc, c2, sizeof c2);
    shake256_2(want, z, 32, hc, 32);
    CHECK(memcmp(bad, want, 32) == 0);
    shake256_2(j, z, 32, c2, sizeof c2);
    CHECK(memcmp(bad, j, 32) != 0);
  }
  /* The untouched ciphertext still gives the secret. */
  CHECK_RC(sotto_kyber1024_decaps(bad, ct, sizeof ct, sk, sizeof sk), 0);
  CHECK(memcmp(bad, ss, 32) == 0);
}

static int all_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  while (n-- > 0) acc |= *p++;
  return acc == 0;
}

static void test_negative(void) {
  uint8_t ss[32], m0[32] = {1};
  static uint8_t badpk[SOTTO_KYBER1024_PK_LEN], badsk[SOTTO_KYBER1024_SK_LEN];

  CHECK_RC(sotto_kyber1024_keypair(pk, sk), 0);
  /* Wrong key length, coefficient >= q, NULLs: refused, outputs zeroed. */
  memset(ss, 0xAA, sizeof ss);
  CHECK_RC(sotto_kyber1024_encaps(ct, ss, pk, sizeof pk - 1), SOTTO_ERR_INVALID_KEY);
  CHECK(all_zero(ss, sizeof ss) && all_zero(ct, sizeof ct));
  memcpy(badpk, pk, sizeof pk);
  badpk[0] = 0xFF;
  badpk[1] |= 0x0F; /* first coefficient = 4095 >= q */
  CHECK_RC(sotto_kyber1024_check_pk(badpk, sizeof badpk), SOTTO_ERR_INVALID_KEY);
  CHECK_RC(sotto_kyber1024_encaps_derand(ct, ss, badpk, sizeof badpk, m0), SOTTO_ERR_INVALID_KEY);
  CHECK_RC(sotto_kyber1024_encaps(NULL, ss, pk, sizeof pk), SOTTO_ERR_USAGE);
  CHECK_RC(sotto_kyber1024_encaps_derand(ct, ss, pk, sizeof pk, NULL), SOTTO_ERR_USAGE);
  CHECK_RC(sotto_kyber1024_keypair_derand(pk, sk, NULL), SOTTO_ERR_USAGE);
  CHECK(all_zero(pk, sizeof pk) && all_zero(sk, sizeof sk));
  CHECK_RC(sotto_kyber1024_keypair(pk, sk), 0);
  CHECK_RC(sotto_kyber1024_encaps(ct, ss, pk, sizeof pk), 0);
  /* Decapsulation: ciphertext length, key length, corrupted H(ek). */
  CHECK_RC(sotto_kyber1024_decaps(ss, ct, sizeof ct - 1, sk, sizeof sk), SOTTO_ERR_MALFORMED);
  CHECK(all_zero(ss, sizeof ss));
  CHECK_RC(sotto_kyber1024_decaps(ss, ct, sizeof ct, sk, sizeof sk + 1), SOTTO_ERR_INVALID_KEY);
  memcpy(badsk, sk, sizeof sk);
  badsk[SOTTO_KYBER1024_SK_LEN - 64] ^= 1;
  CHECK_RC(sotto_kyber1024_decaps(ss, ct, sizeof ct, badsk, sizeof badsk), SOTTO_ERR_INVALID_KEY);
  memcpy(badsk, sk, sizeof sk);
  badsk[4 * 384 + 5] ^= 1; /* the embedded ek no longer matches its hash */
  CHECK_RC(sotto_kyber1024_decaps(ss, ct, sizeof ct, badsk, sizeof badsk), SOTTO_ERR_INVALID_KEY);
  CHECK_RC(sotto_kyber1024_decaps(NULL, ct, sizeof ct, sk, sizeof sk), SOTTO_ERR_USAGE);
  CHECK_RC(sotto_kyber1024_decaps(ss, NULL, 0, sk, sizeof sk), SOTTO_ERR_USAGE);
}

int main(int argc, char **argv) {
  REQUIRE(argc == 2);
  test_digests(argv[1]);
  test_count0(argv[1]);
  test_implicit_rejection();
  test_negative();
  return test_done(__FILE__);
}

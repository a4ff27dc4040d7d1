/* SPDX-License-Identifier: Apache-2.0 */
/* bench_attach_crypto.c: the per-byte cost of the primitives an attachment's
 * bytes go through on one core (bench/run attach-crypto; docs/benchmarks.md
 * "Attachments: the primitives").
 *
 * Rows (ns per byte and MB/s, 64 KiB buffers, the median of R rounds of M
 * MiB each):
 *   xchacha20poly1305   libsodium, attachment format v1's chunk cipher
 *   blake2b256          libsodium generichash, format v1's digest
 *   aes256gcm           OpenSSL EVP, format v2's chunk cipher
 *   sha256              OpenSSL EVP, format v2's digest
 *   chacha20poly1305    OpenSSL EVP (a candidate not taken)
 *   v1 / v2             cipher + digest of the same bytes, as one stream does
 * JSON rows attach_crypto_NAME with keys ns_per_byte, mb_s. */
#include <openssl/evp.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUF (64 * 1024)

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint8_t key[32], in[BUF], out[BUF + 16];
static EVP_CIPHER_CTX *cx;
static EVP_MD_CTX *md;
static crypto_generichash_blake2b_state bs;

static void nonce12(uint8_t n[12], uint64_t i) {
  int k;
  memset(n, 0, 12);
  for (k = 0; k < 8; k++) n[4 + k] = (uint8_t)(i >> (56 - 8 * k));
}

static int evp_aead(const EVP_CIPHER *c, uint64_t i) {
  uint8_t n[12], ad = 0;
  int l = 0, l2 = 0;
  nonce12(n, i);
  if (EVP_EncryptInit_ex(cx, NULL, NULL, NULL, n) != 1 || EVP_EncryptUpdate(cx, NULL, &l, &ad, 1) != 1 ||
      EVP_EncryptUpdate(cx, out, &l, in, BUF) != 1 || EVP_EncryptFinal_ex(cx, out + l, &l2) != 1 ||
      EVP_CIPHER_CTX_ctrl(cx, EVP_CTRL_AEAD_GET_TAG, 16, out + BUF) != 1)
    return -1;
  (void)c;
  return 0;
}

enum { XCHACHA, BLAKE2B, AESGCM, SHA256, CHACHA, V1, V2, NROWS };
static const char *const names[NROWS] = {"xchacha20poly1305", "blake2b256", "aes256gcm", "sha256",
                                         "chacha20poly1305", "v1", "v2"};

/* Seconds for n buffers of row r. */
static double one(int r, uint64_t n) {
  double t0 = now_s();
  uint64_t i;
  uint8_t d[32];
  unsigned dl = 0;
  unsigned long long cl;
  uint8_t xn[24] = {0};
  if (r == BLAKE2B || r == V1) crypto_generichash_blake2b_init(&bs, NULL, 0, 32);
  if (r == SHA256 || r == V2) EVP_DigestInit_ex(md, EVP_sha256(), NULL);
  if (r == AESGCM || r == V2) EVP_EncryptInit_ex(cx, EVP_aes_256_gcm(), NULL, key, NULL);
  if (r == CHACHA) EVP_EncryptInit_ex(cx, EVP_chacha20_poly1305(), NULL, key, NULL);
  for (i = 0; i < n; i++) {
    switch (r) {
      case XCHACHA:
      case V1:
        xn[23] = (uint8_t)i;
        crypto_aead_xchacha20poly1305_ietf_encrypt(out, &cl, in, BUF, xn, 1, NULL, xn, key);
        if (r == V1) crypto_generichash_blake2b_update(&bs, out, BUF + 16);
        break;
      case BLAKE2B:
        crypto_generichash_blake2b_update(&bs, in, BUF);
        break;
      case AESGCM:
      case CHACHA:
      case V2:
        if (evp_aead(NULL, i)) return -1;
        if (r == V2) EVP_DigestUpdate(md, out, BUF + 16);
        break;
      case SHA256:
        EVP_DigestUpdate(md, in, BUF);
        break;
    }
  }
  if (r == BLAKE2B || r == V1) crypto_generichash_blake2b_final(&bs, d, 32);
  if (r == SHA256 || r == V2) EVP_DigestFinal_ex(md, d, &dl);
  return now_s() - t0;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  int json = 0, rounds = 5, i, r;
  uint64_t mib = 256;
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--json") == 0) json = 1;
    else if (strcmp(argv[i], "--smoke") == 0) mib = 4, rounds = 1;
    else if (strcmp(argv[i], "--mib") == 0 && i + 1 < argc) mib = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) rounds = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_attach_crypto [--json] [--mib M] [--rounds R] [--smoke]\n");
      return 2;
    }
  }
  if (rounds < 1 || rounds > 99 || mib < 1 || sodium_init() < 0) return 2;
  randombytes_buf(key, sizeof key);
  randombytes_buf(in, sizeof in);
  cx = EVP_CIPHER_CTX_new();
  md = EVP_MD_CTX_new();
  if (!cx || !md) return 1;
  if (!json) {
    printf("attachment primitives on one core: %llu MiB in 64 KiB buffers, median of %d rounds "
           "(rounds interleaved across rows)\n",
           (unsigned long long)mib, rounds);
    printf("%-18s %11s %9s\n", "row", "ns/byte", "MB/s");
  }
  {
    double t[NROWS][99];
    uint64_t n = mib * 1024 * 1024 / BUF;
    for (i = 0; i < rounds; i++)
      for (r = 0; r < NROWS; r++)
        if ((t[r][i] = one(r, n)) < 0) return 1;
    for (r = 0; r < NROWS; r++) {
      double med, bytes = (double)n * BUF;
      qsort(t[r], (size_t)rounds, sizeof(double), cmp);
      med = t[r][rounds / 2];
      if (med <= 0) return 1;
      if (json)
        printf("{\"bench\":\"attach_crypto_%s\",\"row\":\"attach_crypto_%s\",\"ns_per_byte\":%.3f,\"mb_s\":%.1f,"
               "\"mib\":%llu,\"rounds\":%d}\n",
               names[r], names[r], med * 1e9 / bytes, bytes / med / 1e6, (unsigned long long)mib, rounds);
      else
        printf("%-18s %11.3f %9.1f\n", names[r], med * 1e9 / bytes, bytes / med / 1e6);
    }
  }
  EVP_CIPHER_CTX_free(cx);
  EVP_MD_CTX_free(md);
  return 0;
}

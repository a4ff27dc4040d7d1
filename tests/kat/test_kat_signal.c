/* SPDX-License-Identifier: Apache-2.0 */
/* test_kat_signal.c: known-answer tests from published vectors
 * (tests/vectors/hkdf/rfc5869_hkdf.json, tests/vectors/signal/libsignal_kats.json):
 * HKDF-SHA256, XEdDSA verification with libsignal's sign-bit convention,
 * the X3DH v3 session-init derivation and one symmetric ratchet step; plus
 * our key generation against libsodium's X25519 base-point multiplication. */
#include <cjson/cJSON.h>
#include <sodium.h>
#include <sotto/keys.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "proto/kdf.h"
#include "testutil.h"

static cJSON *load(const char *dir, const char *rel) {
  char path[1024];
  char *text;
  cJSON *j;
  snprintf(path, sizeof path, "%s/%s", dir, rel);
  if ((text = tu_read_file(path, NULL)) == NULL) {
    fprintf(stderr, "cannot read %s\n", path);
    return NULL;
  }
  j = cJSON_Parse(text);
  free(text);
  return j;
}

static const char *str(const cJSON *o, const char *k) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Hex field into buf; returns its length or -1. */
static long hexf(const cJSON *o, const char *k, uint8_t *buf, size_t cap) {
  const char *s = str(o, k);
  return s ? tu_unhex(buf, cap, s) : -1;
}

static void test_hkdf(const char *dir) {
  cJSON *j = load(dir, "hkdf/rfc5869_hkdf.json"), *c;
  int n = 0;
  CHECK(j != NULL);
  if (!j) return;
  cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(j, "cases")) {
    static uint8_t ikm[256], salt[256], info[256], okm[256], out[256];
    long ni, ns, nn, no;
    const cJSON *L = cJSON_GetObjectItemCaseSensitive(c, "L");
    if (strcmp(str(c, "hash"), "SHA-256") != 0) continue; /* SHA-1 cases are not ours */
    ni = hexf(c, "IKM", ikm, sizeof ikm);
    ns = str(c, "salt") ? hexf(c, "salt", salt, sizeof salt) : -2; /* null: not provided */
    nn = hexf(c, "info", info, sizeof info);
    no = hexf(c, "OKM", okm, sizeof okm);
    CHECK(ni >= 0 && nn >= 0 && no > 0 && cJSON_IsNumber(L) && L->valueint == no);
    CHECK_RC(sotto__hkdf(out, (size_t)no, ns == -2 ? NULL : salt, ns < 0 ? 0 : (size_t)ns, ikm,
                         (size_t)ni, info, (size_t)nn),
             0);
    CHECK(memcmp(out, okm, (size_t)no) == 0);
    n++;
  }
  CHECK(n == 3); /* RFC 5869 A.1-A.3 */
  cJSON_Delete(j);
}

static void test_xeddsa(const cJSON *v) {
  uint8_t priv[32], pub[32], msg[64], sig[64], mine[32], ours[64];
  long mlen;
  CHECK(hexf(v, "identity_private_x25519", priv, 32) == 32);
  CHECK(hexf(v, "identity_public_u", pub, 32) == 32);
  CHECK((mlen = hexf(v, "message", msg, sizeof msg)) == 33);
  CHECK(hexf(v, "signature", sig, 64) == 64);
  CHECK_RC(sotto_public_key(mine, priv), 0);
  CHECK(memcmp(mine, pub, 32) == 0);
  CHECK_RC(sotto_verify(pub, msg, (size_t)mlen, sig), 0);
  /* The vector's sign bit is set: forcing it to 0 must fail, and so must
   * every other single-bit flip. */
  CHECK(sig[63] & 0x80);
  for (int i = 0; i < 512; i++) {
    uint8_t t[64];
    memcpy(t, sig, 64);
    t[i / 8] ^= (uint8_t)(1u << (i % 8));
    CHECK_RC(sotto_verify(pub, msg, (size_t)mlen, t), SOTTO_ERR_AUTH);
  }
  msg[5] ^= 1;
  CHECK_RC(sotto_verify(pub, msg, (size_t)mlen, sig), SOTTO_ERR_AUTH);
  msg[5] ^= 1;
  /* Our own signatures by the same key verify, with both sign conventions
   * handled (the key's Edwards sign bit is whatever it is). */
  for (int i = 0; i < 50; i++) {
    CHECK_RC(sotto_sign(ours, priv, msg, (size_t)mlen), 0);
    CHECK_RC(sotto_verify(pub, msg, (size_t)mlen, ours), 0);
  }
}

static void test_x3dh(const cJSON *kat) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(kat, "values");
  uint8_t ik_a[32], ek_a[32], ik_b_pub[33], spk_b_pub[33], ik_b[32], spk_b[32], ik_a_pub[33], ek_a_pub[33];
  uint8_t dh[4][32], dhb[4][32], rk[32], ck[32], want_rk[32], want_ck[32], want_secret[128], okm[96], want_pqr[32];
  uint8_t ikm[128], pub[32];
  CHECK(hexf(v, "aliceIdentityPrivate", ik_a, 32) == 32);
  CHECK(hexf(v, "aliceBasePrivate", ek_a, 32) == 32);
  CHECK(hexf(v, "aliceIdentityPublic", ik_a_pub, 33) == 33);
  CHECK(hexf(v, "aliceBasePublic", ek_a_pub, 33) == 33);
  CHECK(hexf(v, "bobIdentityPublic", ik_b_pub, 33) == 33);
  CHECK(hexf(v, "bobSignedPreKeyPublic", spk_b_pub, 33) == 33);
  CHECK(hexf(v, "bobIdentityPrivate", ik_b, 32) == 32);
  CHECK(hexf(v, "bobSignedPreKeyPrivate", spk_b, 32) == 32);
  CHECK(hexf(v, "root_key", want_rk, 32) == 32);
  CHECK(hexf(v, "chain_key", want_ck, 32) == 32);
  CHECK(hexf(v, "secret_input", want_secret, sizeof want_secret) == 128);
  CHECK(hexf(v, "initial_pqr_key_bytes_64_96", want_pqr, 32) == 32);
  /* The key pairs that enter the derivation are consistent. */
  CHECK_RC(sotto_public_key(pub, ik_a), 0);
  CHECK(memcmp(pub, ik_a_pub + 1, 32) == 0);
  CHECK_RC(sotto_public_key(pub, ek_a), 0);
  CHECK(memcmp(pub, ek_a_pub + 1, 32) == 0);
  /* Alice: DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B), DH3 = DH(EK_A, SPK_B). */
  CHECK_RC(sotto__x25519(dh[0], ik_a, spk_b_pub + 1), 0);
  CHECK_RC(sotto__x25519(dh[1], ek_a, ik_b_pub + 1), 0);
  CHECK_RC(sotto__x25519(dh[2], ek_a, spk_b_pub + 1), 0);
  /* Bob computes the same from his side. */
  CHECK_RC(sotto__x25519(dhb[0], spk_b, ik_a_pub + 1), 0);
  CHECK_RC(sotto__x25519(dhb[1], ik_b, ek_a_pub + 1), 0);
  CHECK_RC(sotto__x25519(dhb[2], spk_b, ek_a_pub + 1), 0);
  CHECK(memcmp(dh, dhb, 96) == 0);
  memset(ikm, 0xFF, 32);
  memcpy(ikm + 32, dh, 96);
  CHECK(memcmp(ikm, want_secret, 128) == 0);
  CHECK_RC(sotto__x3dh_kdf(rk, ck, (const uint8_t(*)[32])dh, 3), 0);
  CHECK(memcmp(rk, want_rk, 32) == 0);
  CHECK(memcmp(ck, want_ck, 32) == 0);
  /* The 96-byte expansion's last third (kept by PQXDH for SPQR). */
  CHECK_RC(sotto__hkdf(okm, 96, NULL, 0, ikm, 128, (const uint8_t *)"WhisperText", 11), 0);
  CHECK(memcmp(okm + 64, want_pqr, 32) == 0);
  {
    uint8_t sender[32];
    CHECK(hexf(v, "senderChain", sender, 32) == 32);
    CHECK(memcmp(sender, ck, 32) == 0);
  }
}

static void test_chain_step(const cJSON *kat) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(kat, "values");
  uint8_t ck[32], seed[32], next[32], keys[80], w_seed[32], w_next[32], w_key[32], w_mac[32], w_iv[16];
  CHECK(hexf(v, "chain_key", ck, 32) == 32);
  CHECK(hexf(v, "message_key_seed", w_seed, 32) == 32);
  CHECK(hexf(v, "next_chain_key", w_next, 32) == 32);
  CHECK(hexf(v, "cipher_key", w_key, 32) == 32);
  CHECK(hexf(v, "mac_key", w_mac, 32) == 32);
  CHECK(hexf(v, "iv", w_iv, 16) == 16);
  sotto__kdf_ck(seed, next, ck);
  CHECK(memcmp(seed, w_seed, 32) == 0);
  CHECK(memcmp(next, w_next, 32) == 0);
  CHECK_RC(sotto__message_keys(keys, seed), 0);
  CHECK(memcmp(keys, w_key, 32) == 0);
  CHECK(memcmp(keys + 32, w_mac, 32) == 0);
  CHECK(memcmp(keys + 64, w_iv, 16) == 0);
}

/* Our Edwards-based key generation equals the Montgomery ladder. */
static void test_keygen(void) {
  int bad = 0;
  for (int i = 0; i < 2000; i++) {
    uint8_t priv[32], pub[32], ref[32];
    CHECK_RC(sotto_keypair_generate(pub, priv), 0);
    if (crypto_scalarmult_base(ref, priv) != 0 || memcmp(ref, pub, 32) != 0) bad++;
  }
  CHECK(bad == 0);
  /* u = -1 has no Edwards point; verification must refuse, not crash. */
  {
    uint8_t u[32], sig[64] = {0};
    memset(u, 0xFF, 32);
    u[0] = 0xEC;
    u[31] = 0x7F; /* p - 1 */
    CHECK_RC(sotto_verify(u, (const uint8_t *)"m", 1, sig), SOTTO_ERR_AUTH);
  }
}

int main(int argc, char **argv) {
  cJSON *kats;
  REQUIRE(argc == 2);
  REQUIRE(sotto_init() == 0);
  test_hkdf(argv[1]);
  kats = load(argv[1], "signal/libsignal_kats.json");
  REQUIRE(kats != NULL);
  test_xeddsa(cJSON_GetObjectItemCaseSensitive(kats, "xeddsa_verify"));
  test_x3dh(cJSON_GetObjectItemCaseSensitive(kats, "x3dh_v3_session_init"));
  test_chain_step(cJSON_GetObjectItemCaseSensitive(kats, "symmetric_chain_step"));
  cJSON_Delete(kats);
  test_keygen();
  return test_done("kat_signal");
}

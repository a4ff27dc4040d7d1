/* SPDX-License-Identifier: Apache-2.0 */
/* test_ls_keys: identity keys, X25519, XEdDSA signatures and safety numbers
 * (scannable versions 1 and 2) between libsotto and libsignal 0.103 (Node
 * peer, tests/libsignal/node/driver.js), in both directions. Fails, never
 * skips, when the peer cannot run. */
#include <string.h>

#include <sotto/fingerprint.h>
#include <sotto/keys.h>

#include "crypto/crypto.h"
#include "lspeer.h"
#include "testutil.h"

#define REQUIRE_VOID(expr)                                                                \
  do {                                                                                    \
    tu_checks++;                                                                          \
    if (!(expr)) {                                                                        \
      tu_failures++;                                                                      \
      fprintf(stderr, "%s:%d: REQUIRE failed: %s (%s)\n", __FILE__, __LINE__, #expr,       \
              lspeer_error(P));                                                           \
      return;                                                                             \
    }                                                                                     \
  } while (0)

static struct lspeer *P;

/* libsignal makes a key pair; we derive the same public key, and both sides
 * agree on X25519 with a key of ours. */
static void test_keys(void) {
  char *w[LSPEER_MAX_WORDS];
  uint8_t lpriv[32], lpub33[33], lpub[32], mine[32], spriv[32], spub[32], spub33[33];
  uint8_t s1[32], s2[64];
  long n;

  lspeer_begin(P, "keypair");
  REQUIRE_VOID(lspeer_send(P, w) == 2);
  CHECK(lspeer_unhex(lpriv, sizeof lpriv, w[0]) == 32);
  CHECK(lspeer_unhex(lpub33, sizeof lpub33, w[1]) == 33);
  CHECK_RC(sotto_pubkey_parse(lpub, lpub33, 33), 0);
  CHECK_RC(sotto_public_key(mine, lpriv), 0);
  CHECK(memcmp(mine, lpub, 32) == 0);

  CHECK_RC(sotto_keypair_generate(spub, spriv), 0);
  sotto_pubkey_serialize(spub33, spub);
  /* libsignal derives our public key from our private key. */
  lspeer_begin(P, "pubkey");
  lspeer_arg_hex(P, spriv, 32);
  REQUIRE_VOID(lspeer_send(P, w) == 1);
  n = lspeer_unhex(s2, sizeof s2, w[0]);
  CHECK(n == 33 && memcmp(s2, spub33, 33) == 0);
  /* X25519 both ways. */
  lspeer_begin(P, "agree");
  lspeer_arg_hex(P, lpriv, 32);
  lspeer_arg_hex(P, spub33, 33);
  REQUIRE_VOID(lspeer_send(P, w) == 1);
  n = lspeer_unhex(s2, sizeof s2, w[0]);
  CHECK(n == 32);
  /* libsotto's X25519 from the other side gives the same secret. */
  CHECK_RC(sotto__x25519(s1, spriv, lpub), 0);
  CHECK(memcmp(s1, s2, 32) == 0);
}

/* XEdDSA: libsignal verifies ours, we verify libsignal's; a flipped bit or a
 * different message is refused by both. */
static void test_signatures(void) {
  char *w[LSPEER_MAX_WORDS];
  uint8_t priv[32], pub[32], pub33[33], sig[SOTTO_SIGNATURE_LEN], lsig[80], lpriv[32], lpub33[33],
      lpub[32];
  uint8_t msg[200];
  unsigned i;

  for (i = 0; i < sizeof msg; i++) msg[i] = (uint8_t)(i * 7 + 3);
  CHECK_RC(sotto_keypair_generate(pub, priv), 0);
  sotto_pubkey_serialize(pub33, pub);
  for (i = 0; i < 8; i++) {
    size_t len = i * 25;
    CHECK_RC(sotto_sign(sig, priv, msg, len), 0);
    lspeer_begin(P, "verify");
    lspeer_arg_hex(P, pub33, 33);
    lspeer_arg_hex(P, msg, len);
    lspeer_arg_hex(P, sig, sizeof sig);
    CHECK(lspeer_send(P, w) == 1 && strcmp(w[0], "1") == 0);
    sig[i * 7 % 64] ^= 0x10;
    lspeer_begin(P, "verify");
    lspeer_arg_hex(P, pub33, 33);
    lspeer_arg_hex(P, msg, len);
    lspeer_arg_hex(P, sig, sizeof sig);
    CHECK(lspeer_send(P, w) == 1 && strcmp(w[0], "0") == 0);
  }

  lspeer_begin(P, "keypair");
  REQUIRE_VOID(lspeer_send(P, w) == 2);
  CHECK(lspeer_unhex(lpriv, sizeof lpriv, w[0]) == 32);
  CHECK(lspeer_unhex(lpub33, sizeof lpub33, w[1]) == 33);
  CHECK_RC(sotto_pubkey_parse(lpub, lpub33, 33), 0);
  for (i = 0; i < 8; i++) {
    size_t len = i * 25;
    lspeer_begin(P, "sign");
    lspeer_arg_hex(P, lpriv, 32);
    lspeer_arg_hex(P, msg, len);
    REQUIRE_VOID(lspeer_send(P, w) == 1);
    CHECK(lspeer_unhex(lsig, sizeof lsig, w[0]) == SOTTO_SIGNATURE_LEN);
    CHECK_RC(sotto_verify(lpub, msg, len, lsig), 0);
    if (len > 0) CHECK_RC(sotto_verify(lpub, msg, len - 1, lsig), SOTTO_ERR_AUTH);
    lsig[63] ^= 0x01;
    CHECK_RC(sotto_verify(lpub, msg, len, lsig), SOTTO_ERR_AUTH);
  }
}

/* Safety numbers: same digits; scannable payloads accepted both ways for
 * versions 1 and 2; a version mismatch and another key refused. */
static void test_fingerprints(void) {
  static const char aid[] = "+14152222222", bid[] = "a1b2c3d4-0000-4000-8000-000000000042";
  char *w[LSPEER_MAX_WORDS];
  uint8_t apub[32], apriv[32], bpub[32], bpriv[32], a33[33], b33[33];
  uint8_t ours[SOTTO_FINGERPRINT_SCANNABLE_LEN], theirs[256], theirs_v1[256];
  char digits[SOTTO_SAFETY_NUMBER_LEN + 1];
  size_t on = 0;
  long tn = 0, tn1 = 0;
  uint32_t ver;

  CHECK_RC(sotto_keypair_generate(apub, apriv), 0);
  CHECK_RC(sotto_keypair_generate(bpub, bpriv), 0);
  sotto_pubkey_serialize(a33, apub);
  sotto_pubkey_serialize(b33, bpub);
  CHECK_RC(sotto_safety_number(digits, (const uint8_t *)aid, strlen(aid), apub,
                               (const uint8_t *)bid, strlen(bid), bpub,
                               SOTTO_FINGERPRINT_ITERATIONS),
           0);
  for (ver = 1; ver <= 2; ver++) {
    /* libsignal computes Bob's view. */
    lspeer_begin(P, "fingerprint");
    lspeer_arg_u(P, ver);
    lspeer_arg_u(P, SOTTO_FINGERPRINT_ITERATIONS);
    lspeer_arg_hex(P, (const uint8_t *)bid, strlen(bid));
    lspeer_arg_hex(P, b33, 33);
    lspeer_arg_hex(P, (const uint8_t *)aid, strlen(aid));
    lspeer_arg_hex(P, a33, 33);
    REQUIRE_VOID(lspeer_send(P, w) == 2);
    CHECK(strcmp(w[0], digits) == 0);
    tn = lspeer_unhex(theirs, sizeof theirs, w[1]);
    CHECK(tn == SOTTO_FINGERPRINT_SCANNABLE_LEN);
    if (ver == 1) {
      memcpy(theirs_v1, theirs, (size_t)tn);
      tn1 = tn;
    }
    /* We compute Alice's view and accept Bob's libsignal payload. */
    CHECK_RC(sotto_fingerprint_scannable_version(ours, sizeof ours, &on, ver, (const uint8_t *)aid,
                                                 strlen(aid), apub, (const uint8_t *)bid,
                                                 strlen(bid), bpub, SOTTO_FINGERPRINT_ITERATIONS),
             0);
    CHECK_RC(sotto_fingerprint_compare_scannable(ours, on, theirs, (size_t)tn), 0);
    /* libsignal accepts ours. */
    lspeer_begin(P, "fp_compare");
    lspeer_arg_hex(P, theirs, (size_t)tn);
    lspeer_arg_hex(P, ours, on);
    CHECK(lspeer_send(P, w) == 1 && strcmp(w[0], "1") == 0);
    /* Our payload for a different key: both refuse. */
    {
      uint8_t other[SOTTO_FINGERPRINT_SCANNABLE_LEN];
      size_t xn = 0;
      uint8_t xpub[32];
      memcpy(xpub, bpub, 32);
      xpub[0] ^= 1;
      CHECK_RC(sotto_fingerprint_scannable_version(other, sizeof other, &xn, ver,
                                                   (const uint8_t *)aid, strlen(aid), apub,
                                                   (const uint8_t *)bid, strlen(bid), xpub,
                                                   SOTTO_FINGERPRINT_ITERATIONS),
               0);
      CHECK_RC(sotto_fingerprint_compare_scannable(other, xn, theirs, (size_t)tn), SOTTO_ERR_AUTH);
      lspeer_begin(P, "fp_compare");
      lspeer_arg_hex(P, theirs, (size_t)tn);
      lspeer_arg_hex(P, other, xn);
      CHECK(lspeer_send(P, w) == 1 && strcmp(w[0], "0") == 0);
    }
  }
  /* Mixed versions: our v2 against their v1 is refused by both. */
  CHECK_RC(sotto_fingerprint_compare_scannable(ours, on, theirs_v1, (size_t)tn1), SOTTO_ERR_VERSION);
  lspeer_begin(P, "fp_compare");
  lspeer_arg_hex(P, theirs_v1, (size_t)tn1);
  lspeer_arg_hex(P, ours, on);
  CHECK(lspeer_send(P, w) == -1 && strstr(lspeer_error(P), "version") != NULL);
}

int main(void) {
  REQUIRE(sotto_init() == 0);
  P = lspeer_start();
  REQUIRE(P != NULL);
  test_keys();
  test_signatures();
  test_fingerprints();
  lspeer_stop(P);
  return test_done(__FILE__);
}

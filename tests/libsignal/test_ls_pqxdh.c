/* SPDX-License-Identifier: Apache-2.0 */
/* test_ls_pqxdh: PQXDH (version 4) key agreement with libsignal 0.103 over
 * Kyber-1024 round 3 (KEM type 0x08), in both directions, as far as it can be
 * checked on its own (whole sessions with SPQR: test_ls_session). What is
 * proven here:
 *
 *  libsignal initiates: it processes a bundle that libsotto made (X25519 keys,
 *    XEdDSA signatures, a Kyber-1024 pre-key of ours) and sends a
 *    PreKeySignalMessage. From that message and our private keys, libsotto's
 *    Kyber decapsulation and PQXDH key schedule (sotto__pqxdh_kdf) and a
 *    Double Ratchet root step give exactly the root key and sending chain key
 *    that libsignal stored in its session record.
 *  libsotto initiates: it accepts libsignal's bundle (Kyber pre-key 0x08,
 *    signatures), encapsulates, and libsignal parses the PreKeySignalMessage
 *    and refuses it for the missing SPQR field, not for its KEM ciphertext or
 *    its layout. (Our encapsulation is covered by the NIST KATs; libsignal's
 *    decapsulation of it is proven only once SPQR lands.) */
#include <stdlib.h>
#include <string.h>

#include <sotto/keys.h>
#include <sotto/kyber.h>
#include <sotto/session.h>

#include "crypto/crypto.h"
#include "lstest.h"
#include "proto/kdf.h"
#include "wire/messages.h"

static struct lspeer *P;
static const uint8_t ACI_A[16] = {0xa1, 0xa1, 0x01, 0x02, 0x03, 0x04, 0x45, 0x06,
                                  0x87, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e};
static const uint8_t ACI_B[16] = {0xb2, 0xb2, 0x01, 0x02, 0x03, 0x04, 0x45, 0x06,
                                  0x87, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0f};

/* Our Bob: identity, signed pre-key 1, one-time pre-key 7, Kyber pre-key 30. */
static struct sotto_identity bob;
static uint8_t spk_pub[32], spk_priv[32], spk_sig[64], opk_pub[32], opk_priv[32];
static uint8_t kem_pub[SOTTO_KEM_PUBKEY_LEN], kem_sk[SOTTO_KEM_SECRETKEY_LEN], kem_sig[64];

static int load_spk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  (void)ud;
  if (id != 1) return SOTTO_ERR_UNKNOWN_PREKEY;
  memcpy(pub, spk_pub, 32);
  memcpy(priv, spk_priv, 32);
  return 0;
}

static int load_opk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  (void)ud;
  if (id != 7) return SOTTO_ERR_UNKNOWN_PREKEY;
  memcpy(pub, opk_pub, 32);
  memcpy(priv, opk_priv, 32);
  return 0;
}

static int load_kem(void *ud, uint32_t id, uint8_t sk[SOTTO_KEM_SECRETKEY_LEN]) {
  (void)ud;
  if (id != 30) return SOTTO_ERR_UNKNOWN_PREKEY;
  memcpy(sk, kem_sk, sizeof kem_sk);
  return 0;
}

static const struct sotto_prekey_store bob_store = {NULL, load_spk, load_opk, NULL, NULL, load_kem, NULL};

static void libsignal_initiates(void) {
  char *w[LSPEER_MAX_WORDS];
  uint8_t ik33[33], spk33[33], opk33[33], alice_ik33[40], alice_ik[32];
  uint8_t *msg = NULL, *rec = NULL;
  long mlen, rlen;
  struct sotto__prekey_msg pm;
  struct sotto__signal_msg sm;
  uint8_t dh[4][32], ss[32], rk1[32], ck1[32], pqr[32], dhr[32], okm[64];
  const uint8_t *cur, *rk, *chain, *ckmsg, *ck, *kyber, *kct;
  size_t cur_len, rk_len = 0, chain_len, ckmsg_len, ck_len = 0, kyber_len, kct_len = 0;
  struct sotto_session *s = NULL;
  uint8_t pt[256];
  size_t ptn = 0;
  int rc;

  sotto_pubkey_serialize(ik33, bob.pub);
  sotto_pubkey_serialize(spk33, spk_pub);
  sotto_pubkey_serialize(opk33, opk_pub);
  lspeer_begin(P, "party");
  lspeer_arg_str(P, "alice");
  lspeer_arg_hex(P, ACI_A, 16);
  lspeer_arg_u(P, 1);
  LS_REQUIRE(P, lspeer_send(P, w) == 2);
  LS_REQUIRE(P, lspeer_unhex(alice_ik33, sizeof alice_ik33, w[0]) == 33);
  LS_REQUIRE(P, sotto_pubkey_parse(alice_ik, alice_ik33, 33) == 0);

  lspeer_begin(P, "process_bundle");
  lspeer_arg_str(P, "alice");
  lspeer_arg_hex(P, ACI_B, 16);
  lspeer_arg_u(P, 1);
  lspeer_arg_u(P, bob.registration_id);
  lspeer_arg_u(P, 7);
  lspeer_arg_hex(P, opk33, 33);
  lspeer_arg_u(P, 1);
  lspeer_arg_hex(P, spk33, 33);
  lspeer_arg_hex(P, spk_sig, 64);
  lspeer_arg_hex(P, ik33, 33);
  lspeer_arg_u(P, 30);
  lspeer_arg_hex(P, kem_pub, sizeof kem_pub);
  lspeer_arg_hex(P, kem_sig, 64);
  LS_REQUIRE(P, lspeer_send(P, w) == 0); /* libsignal accepted our bundle and signatures */

  /* The same bundle with an ML-KEM-1024 (0x0A) pre-key, sotto's default, is
   * what libsignal 0.103 refuses: the reason Kyber-1024 exists here. */
  {
    uint8_t mk_pub[SOTTO_KEM_PUBKEY_LEN], mk_sig[64];
    static uint8_t mk_sk[SOTTO_KEM_SECRETKEY_LEN];
    CHECK_RC(sotto_kem_keypair_generate(mk_pub, mk_sk), 0);
    CHECK_RC(sotto_kem_prekey_sign(mk_sig, bob.priv, mk_pub), 0);
    lspeer_begin(P, "process_bundle");
    lspeer_arg_str(P, "alice");
    lspeer_arg_hex(P, ACI_B, 16);
    lspeer_arg_u(P, 2);
    lspeer_arg_u(P, bob.registration_id);
    lspeer_arg_u(P, 7);
    lspeer_arg_hex(P, opk33, 33);
    lspeer_arg_u(P, 1);
    lspeer_arg_hex(P, spk33, 33);
    lspeer_arg_hex(P, spk_sig, 64);
    lspeer_arg_hex(P, ik33, 33);
    lspeer_arg_u(P, 31);
    lspeer_arg_hex(P, mk_pub, sizeof mk_pub);
    lspeer_arg_hex(P, mk_sig, 64);
    CHECK(lspeer_send(P, w) == -1 && strstr(lspeer_error(P), "KEM key type") != NULL);
  }

  lspeer_begin(P, "encrypt");
  lspeer_arg_str(P, "alice");
  lspeer_arg_hex(P, ACI_B, 16);
  lspeer_arg_u(P, 1);
  lspeer_arg_hex(P, (const uint8_t *)"hello from libsignal", 20);
  LS_REQUIRE(P, lspeer_send(P, w) == 2);
  CHECK(strcmp(w[0], "3") == 0); /* PreKeySignalMessage */
  msg = malloc(strlen(w[1]) / 2 + 1);
  LS_REQUIRE(P, msg != NULL);
  mlen = lspeer_unhex(msg, strlen(w[1]) / 2 + 1, w[1]);

  lspeer_begin(P, "session");
  lspeer_arg_str(P, "alice");
  lspeer_arg_hex(P, ACI_B, 16);
  lspeer_arg_u(P, 1);
  if (lspeer_send(P, w) != 1 || (rec = malloc(strlen(w[0]) / 2 + 1)) == NULL) goto out;
  rlen = lspeer_unhex(rec, strlen(w[0]) / 2 + 1, w[0]);
  CHECK(mlen > 0 && rlen > 0);

  /* The message parses as version 4 with a 0x08 ciphertext for key 30. */
  CHECK_RC(sotto__prekey_msg_parse(&pm, msg, (size_t)mlen), 0);
  CHECK(pm.version == 4 && pm.has_kem && pm.kem_prekey_id == 30 && pm.has_prekey_id &&
        pm.prekey_id == 7 && pm.signed_prekey_id == 1);
  CHECK(pm.kem_ct_len == SOTTO_KEM_CIPHERTEXT_LEN && pm.kem_ct[0] == SOTTO_KEM_TYPE_KYBER1024);
  CHECK(memcmp(pm.identity_key, alice_ik, 32) == 0);
  /* libsignal's inner SignalMessage carries field 5 (pq_ratchet), which our
   * v3/v4 parser does not know yet. */
  rc = sotto__signal_msg_parse(&sm, pm.message, pm.message_len);
  if (rc != 0) {
    /* Take the ratchet key (field 1) by hand: version byte, protobuf, MAC. */
    size_t n = 0;
    const uint8_t *rkey = ls_pb_field(pm.message + 1, pm.message_len - 9, 1, &n);
    CHECK(rkey != NULL && n == 33 && rkey[0] == 0x05);
    if (rkey == NULL || n != 33) goto out;
    memcpy(sm.ratchet_key, rkey + 1, 32);
    printf("libsignal's SignalMessage is refused by our parser: %s (field 5, SPQR)\n",
           tu_errname(rc));
  }

  /* Our side of PQXDH from the message: DH1 = DH(SPK_B, IK_A),
   * DH2 = DH(IK_B, EK_A), DH3 = DH(SPK_B, EK_A), DH4 = DH(OPK_B, EK_A),
   * SS = Kyber-1024-Decaps(CT). */
  CHECK_RC(sotto__x25519(dh[0], spk_priv, alice_ik), 0);
  CHECK_RC(sotto__x25519(dh[1], bob.priv, pm.base_key), 0);
  CHECK_RC(sotto__x25519(dh[2], spk_priv, pm.base_key), 0);
  CHECK_RC(sotto__x25519(dh[3], opk_priv, pm.base_key), 0);
  CHECK_RC(sotto_kyber1024_decaps(ss, pm.kem_ct + 1, pm.kem_ct_len - 1, kem_sk, sizeof kem_sk), 0);
  CHECK_RC(sotto__pqxdh_kdf(rk1, ck1, pqr, (const uint8_t(*)[32])dh, 4, ss), 0);
  /* libsignal's Alice has already stepped the ratchet once: (RK, CKs) =
   * HKDF(salt = RK1, DH(ratchet, SPK_B), "WhisperRatchet", 64). */
  CHECK_RC(sotto__x25519(dhr, spk_priv, sm.ratchet_key), 0);
  CHECK_RC(sotto__hkdf(okm, 64, rk1, 32, dhr, 32, (const uint8_t *)"WhisperRatchet", 14), 0);

  /* RecordStructure{1 current_session{4 root_key, 6 sender_chain{3 chain_key{2 key}},
   * 14 pending_kyber_pre_key{2 ciphertext}}}. */
  cur = ls_pb_field(rec, (size_t)rlen, 1, &cur_len);
  CHECK(cur != NULL);
  if (cur == NULL) goto out;
  rk = ls_pb_field(cur, cur_len, 4, &rk_len);
  chain = ls_pb_field(cur, cur_len, 6, &chain_len);
  ckmsg = chain ? ls_pb_field(chain, chain_len, 3, &ckmsg_len) : NULL;
  ck = ckmsg ? ls_pb_field(ckmsg, ckmsg_len, 2, &ck_len) : NULL;
  kyber = ls_pb_field(cur, cur_len, 14, &kyber_len);
  kct = kyber ? ls_pb_field(kyber, kyber_len, 2, &kct_len) : NULL;
  CHECK(rk != NULL && rk_len == 32 && memcmp(rk, okm, 32) == 0);
  /* The sending chain has given one message key since: CK' = KDF_CK(CKs). */
  {
    uint8_t seed[32], next[32];
    sotto__kdf_ck(seed, next, okm + 32);
    CHECK(ck != NULL && ck_len == 32 && memcmp(ck, next, 32) == 0);
  }
  CHECK(kct != NULL && kct_len == pm.kem_ct_len && memcmp(kct, pm.kem_ct, kct_len) == 0);
  /* A wrong KEM secret would give another root key: the check can fail. */
  {
    uint8_t ss2[32], rk2[32], ck2[32], pqr2[32], okm2[64];
    memcpy(ss2, ss, 32);
    ss2[0] ^= 1;
    CHECK_RC(sotto__pqxdh_kdf(rk2, ck2, pqr2, (const uint8_t(*)[32])dh, 4, ss2), 0);
    CHECK_RC(sotto__hkdf(okm2, 64, rk2, 32, dhr, 32, (const uint8_t *)"WhisperRatchet", 14), 0);
    CHECK(memcmp(okm2, rk, 32) != 0);
  }
  if (rk != NULL && rk_len == 32 && memcmp(rk, okm, 32) == 0)
    printf("libsignal -> sotto: PQXDH over Kyber-1024 round 3 agrees (root and chain key)\n");

  /* The whole message through the session API: its pq_ratchet field makes
   * our responder run SPQR too (the SPQR key salts the message keys), so it
   * decrypts. Whole conversations: test_ls_session. */
  CHECK_RC(sotto_session_new(&s), 0);
  ptn = 0;
  rc = sotto_session_decrypt(s, &bob, &bob_store, SOTTO_MSG_PREKEY, msg, (size_t)mlen, pt, sizeof pt,
                             &ptn);
  CHECK(rc == 0 && ptn == 20 && memcmp(pt, "hello from libsignal", 20) == 0 && sotto_session_has_state(s));
  printf("libsignal -> sotto full message with SPQR: %s\n", tu_errname(rc));
out:
  sotto_session_free(s);
  free(msg);
  free(rec);
}

static void sotto_initiates(void) {
  char *w[LSPEER_MAX_WORDS];
  struct sotto_identity alice;
  struct sotto_bundle b;
  struct sotto_session *s = NULL;
  uint8_t tmp[SOTTO_KEM_PUBKEY_LEN + 8], out[4096];
  size_t out_len = 0;
  int type = 0;

  CHECK_RC(sotto_keypair_generate(alice.pub, alice.priv), 0);
  alice.registration_id = 4242;
  lspeer_begin(P, "party");
  lspeer_arg_str(P, "bob");
  lspeer_arg_hex(P, ACI_B, 16);
  lspeer_arg_u(P, 1);
  LS_REQUIRE(P, lspeer_send(P, w) == 2);
  lspeer_begin(P, "bundle");
  lspeer_arg_str(P, "bob");
  lspeer_arg_u(P, 1);
  LS_REQUIRE(P, lspeer_send(P, w) == 11);
  memset(&b, 0, sizeof b);
  b.registration_id = (uint32_t)strtoul(w[0], NULL, 10);
  b.device_id = (uint32_t)strtoul(w[1], NULL, 10);
  b.has_one_time_prekey = 1;
  b.one_time_prekey_id = (uint32_t)strtoul(w[2], NULL, 10);
  CHECK(lspeer_unhex(tmp, sizeof tmp, w[3]) == 33 && sotto_pubkey_parse(b.one_time_prekey, tmp, 33) == 0);
  b.signed_prekey_id = (uint32_t)strtoul(w[4], NULL, 10);
  CHECK(lspeer_unhex(tmp, sizeof tmp, w[5]) == 33 && sotto_pubkey_parse(b.signed_prekey, tmp, 33) == 0);
  CHECK(lspeer_unhex(b.signed_prekey_sig, 64, w[6]) == 64);
  CHECK(lspeer_unhex(tmp, sizeof tmp, w[7]) == 33 && sotto_pubkey_parse(b.identity_key, tmp, 33) == 0);
  b.has_kem_prekey = 1;
  b.kem_prekey_id = (uint32_t)strtoul(w[8], NULL, 10);
  CHECK(lspeer_unhex(b.kem_prekey, sizeof b.kem_prekey, w[9]) == SOTTO_KEM_PUBKEY_LEN);
  CHECK(b.kem_prekey[0] == SOTTO_KEM_TYPE_KYBER1024); /* what libsignal 0.103 makes */
  CHECK(lspeer_unhex(b.kem_prekey_sig, 64, w[10]) == 64);

  CHECK_RC(sotto_session_new(&s), 0);
  /* Without SPQR (libsotto's default is SPQR; ls_session runs it). */
  CHECK_RC(sotto_session_init_from_bundle_ex(s, &alice, &b, SOTTO_INIT_NO_SPQR),
           0); /* signatures, Kyber encaps */
  CHECK(sotto_session_has_spqr(s) == 0);
  CHECK(sotto_session_version(s) == 4);
  CHECK_RC(sotto_session_encrypt(s, out, sizeof out, &out_len, &type, (const uint8_t *)"hi", 2), 0);
  CHECK(type == SOTTO_MSG_PREKEY);
  lspeer_begin(P, "decrypt");
  lspeer_arg_str(P, "bob");
  lspeer_arg_hex(P, ACI_A, 16);
  lspeer_arg_u(P, 1);
  lspeer_arg_u(P, 3);
  lspeer_arg_hex(P, out, out_len);
  CHECK(lspeer_send(P, w) == -1);
  printf("sotto -> libsignal full message without SPQR: libsignal says \"%s\"\n", lspeer_error(P));
  /* libsignal parsed the message, verified nothing was wrong with its
   * layout, KEM type (it says "bad KEM key type" for 0x0A) or pre-key ids,
   * set up the PQXDH state and then failed to decrypt the inner message,
   * whose keys lack the SPQR salt and whose pq_ratchet field is absent. */
  CHECK(strstr(lspeer_error(P), "decryption failed") != NULL);
  CHECK(strstr(lspeer_error(P), "KEM") == NULL && strstr(lspeer_error(P), "protobuf") == NULL);
  sotto_session_free(s);
}

int main(void) {
  REQUIRE(sotto_init() == 0);
  REQUIRE(sotto_keypair_generate(bob.pub, bob.priv) == 0);
  bob.registration_id = 777;
  REQUIRE(sotto_keypair_generate(spk_pub, spk_priv) == 0);
  REQUIRE(sotto_signed_prekey_sign(spk_sig, bob.priv, spk_pub) == 0);
  REQUIRE(sotto_keypair_generate(opk_pub, opk_priv) == 0);
  REQUIRE(sotto_kem_keypair_generate_type(kem_pub, kem_sk, SOTTO_KEM_TYPE_KYBER1024) == 0);
  REQUIRE(sotto_kem_prekey_sign(kem_sig, bob.priv, kem_pub) == 0);
  P = lspeer_start();
  REQUIRE(P != NULL);
  libsignal_initiates();
  sotto_initiates();
  lspeer_stop(P);
  return test_done(__FILE__);
}

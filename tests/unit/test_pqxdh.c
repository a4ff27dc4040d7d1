/* SPDX-License-Identifier: Apache-2.0 */
/* test_pqxdh.c: version 4 sessions (PQXDH with ML-KEM-1024) between sotto
 * peers: the default path, the downgrade refusal, and the negative cases:
 * wrong KEM signature, invalid KEM keys, a KEM ciphertext of the wrong
 * length, a flipped ciphertext bit, a reused one-time KEM pre-key. */
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

#include "party.h"
#include "testutil.h"
#include "wire/messages.h"

#define CAP 8192

struct wire {
  int type;
  size_t len;
  uint8_t b[CAP];
};

static struct party alice, bob;

static int enc(struct sotto_session *s, struct wire *w, const char *text) {
  return sotto_session_encrypt(s, w->b, sizeof w->b, &w->len, &w->type, (const uint8_t *)text, strlen(text));
}

static int dec_expect(struct sotto_session *s, struct party *me, const struct wire *w, const char *text) {
  uint8_t pt[CAP];
  size_t n;
  int rc = sotto_session_decrypt(s, &me->id, &me->store, w->type, w->b, w->len, pt, sizeof pt, &n);
  if (rc != 0) return rc;
  return n == strlen(text) && memcmp(pt, text, n) == 0 ? 0 : -999;
}

static void test_default_is_v4(int with_opk, uint32_t kem_id) {
  struct sotto_session *a, *b, *a2;
  struct sotto_bundle bundle;
  struct wire w;
  uint8_t *rec;
  size_t len;
  char t[64];

  CHECK_RC(sotto_session_new(&a), 0);
  CHECK_RC(sotto_session_new(&b), 0);
  CHECK_RC(party_bundle_pq(&bob, 1, with_opk ? 7 : 0, kem_id, &bundle), 0);
  CHECK_RC(sotto_session_init_from_bundle(a, &alice.id, &bundle), 0);
  CHECK(sotto_session_version(a) == 4);
  CHECK_RC(enc(a, &w, "post-quantum hello"), 0);
  CHECK(w.type == SOTTO_MSG_PREKEY);
  CHECK(w.b[0] == 0x44);
  if (with_opk && kem_id == 20) printf("v4 PreKeySignalMessage for 18 B: %zu bytes\n", w.len);
  /* The pending KEM ciphertext survives serialization. */
  rec = malloc(sotto_session_serialized_size(a));
  CHECK_RC(sotto_session_serialize(a, rec, sotto_session_serialized_size(a), &len), 0);
  CHECK_RC(sotto_session_deserialize(&a2, rec, len), 0);
  free(rec);
  CHECK_RC(dec_expect(b, &bob, &w, "post-quantum hello"), 0);
  CHECK(sotto_session_version(b) == 4);
  CHECK_RC(enc(a2, &w, "from the restored record"), 0);
  CHECK(w.type == SOTTO_MSG_PREKEY);
  CHECK_RC(dec_expect(b, &bob, &w, "from the restored record"), 0);
  for (int i = 0; i < 20; i++) {
    snprintf(t, sizeof t, "b->a %d", i);
    CHECK_RC(enc(b, &w, t), 0);
    CHECK(w.type == SOTTO_MSG_SIGNAL && w.b[0] == 0x44);
    CHECK_RC(dec_expect(a2, &alice, &w, t), 0);
    snprintf(t, sizeof t, "a->b %d", i);
    CHECK_RC(enc(a2, &w, t), 0);
    CHECK(w.type == SOTTO_MSG_SIGNAL);
    CHECK_RC(dec_expect(b, &bob, &w, t), 0);
  }
  /* Version 4 runs SPQR by default, on both sides. After the first reply
   * the record no longer holds the KEM ciphertext: the current state's
   * flags (record byte 7) lose 0x10. */
  CHECK(sotto_session_has_spqr(a2) == 1 && sotto_session_has_spqr(b) == 1);
  {
    size_t n = sotto_session_serialized_size(a2), got = 0;
    uint8_t *r = malloc(n);
    CHECK(r != NULL && sotto_session_serialize(a2, r, n, &got) == 0 && got > 8 && (r[7] & 0x10) == 0);
    free(r);
  }
  sotto_session_free(a);
  sotto_session_free(a2);
  sotto_session_free(b);
}

static void test_downgrade_refused(void) {
  struct sotto_session *a;
  struct sotto_bundle bundle;
  CHECK_RC(sotto_session_new(&a), 0);
  /* A server that strips the KEM pre-key from the bundle. */
  CHECK_RC(party_bundle_pq(&bob, 1, 0, 21, &bundle), 0);
  bundle.has_kem_prekey = 0;
  CHECK_RC(sotto_session_init_from_bundle(a, &alice.id, &bundle), SOTTO_ERR_DOWNGRADE);
  CHECK(!sotto_session_has_state(a));
  /* Only the explicit interop mode accepts it, as version 3. */
  CHECK_RC(sotto_session_init_from_bundle_ex(a, &alice.id, &bundle, SOTTO_INIT_ALLOW_X3DH), 0);
  CHECK(sotto_session_version(a) == 3);
  /* With a KEM key, the interop mode still gives version 4. */
  CHECK_RC(party_bundle_pq(&bob, 1, 0, 21, &bundle), 0);
  CHECK_RC(sotto_session_init_from_bundle_ex(a, &alice.id, &bundle, SOTTO_INIT_ALLOW_X3DH), 0);
  CHECK(sotto_session_version(a) == 4);
  CHECK_RC(sotto_session_init_from_bundle_ex(a, &alice.id, &bundle, 0x80), SOTTO_ERR_USAGE);
  sotto_session_free(a);
}

static void test_bad_kem_keys(void) {
  struct sotto_session *a;
  struct sotto_bundle bundle;
  CHECK_RC(sotto_session_new(&a), 0);
  CHECK_RC(party_bundle_pq(&bob, 1, 0, 21, &bundle), 0);
  bundle.kem_prekey_sig[3] ^= 0x04;
  CHECK_RC(sotto_session_init_from_bundle(a, &alice.id, &bundle), SOTTO_ERR_AUTH);
  CHECK_RC(party_bundle_pq(&bob, 1, 0, 21, &bundle), 0);
  bundle.kem_prekey[700] ^= 0x01; /* key no longer matches its signature */
  CHECK_RC(sotto_session_init_from_bundle(a, &alice.id, &bundle), SOTTO_ERR_AUTH);
  CHECK_RC(party_bundle_pq(&bob, 1, 0, 21, &bundle), 0);
  /* Relabelling the KEM (0x0A -> 0x08, Kyber-1024) breaks the signature,
   * which covers the type byte. */
  bundle.kem_prekey[0] = SOTTO_KEM_TYPE_KYBER1024;
  CHECK_RC(sotto_session_init_from_bundle(a, &alice.id, &bundle), SOTTO_ERR_AUTH);
  /* A validly signed key of a KEM we do not speak. */
  CHECK_RC(party_bundle_pq(&bob, 1, 0, 21, &bundle), 0);
  bundle.kem_prekey[0] = 0x09;
  CHECK_RC(sotto_kem_prekey_sign(bundle.kem_prekey_sig, bob.id.priv, bundle.kem_prekey), 0);
  CHECK_RC(sotto_session_init_from_bundle(a, &alice.id, &bundle), SOTTO_ERR_INVALID_KEY);
  /* A validly signed key that fails the FIPS 203 modulus check. */
  CHECK_RC(party_bundle_pq(&bob, 1, 0, 21, &bundle), 0);
  bundle.kem_prekey[1] = 0xFF;
  bundle.kem_prekey[2] |= 0x0F; /* first coefficient 0xFFF >= q */
  CHECK_RC(sotto_kem_prekey_sign(bundle.kem_prekey_sig, bob.id.priv, bundle.kem_prekey), 0);
  CHECK_RC(sotto_session_init_from_bundle(a, &alice.id, &bundle), SOTTO_ERR_INVALID_KEY);
  CHECK(!sotto_session_has_state(a));
  sotto_session_free(a);
}

/* Re-encodes a v4 PreKeySignalMessage with a KEM ciphertext of another length. */
static void with_ct_len(const struct wire *in, struct wire *out, size_t ct_len) {
  struct sotto__prekey_msg pm;
  struct sotto__wr w;
  static uint8_t ct[2000];
  CHECK_RC(sotto__prekey_msg_parse(&pm, in->b, in->len), 0);
  memset(ct, 0x5a, sizeof ct);
  memcpy(ct, pm.kem_ct, ct_len < pm.kem_ct_len ? ct_len : pm.kem_ct_len);
  pm.kem_ct = ct;
  pm.kem_ct_len = ct_len;
  sotto__wr_init(&w, out->b, sizeof out->b);
  sotto__prekey_msg_write(&w, in->b[0], &pm);
  CHECK(w.err == 0);
  out->len = w.len;
  out->type = in->type;
}

static void test_bad_ciphertexts(void) {
  struct sotto_session *a, *b;
  struct sotto_bundle bundle;
  struct wire w, t;
  uint8_t pt[CAP];
  size_t n;
  unsigned uses;

  CHECK_RC(sotto_session_new(&a), 0);
  CHECK_RC(sotto_session_new(&b), 0);
  CHECK_RC(party_add_kem(&bob, 30, 0), 0);
  CHECK_RC(party_bundle_pq(&bob, 1, 0, 30, &bundle), 0);
  CHECK_RC(sotto_session_init_from_bundle(a, &alice.id, &bundle), 0);
  CHECK_RC(enc(a, &w, "needle"), 0);

  /* Wrong lengths: one byte short, one byte long, empty. */
  with_ct_len(&w, &t, SOTTO_KEM_CIPHERTEXT_LEN - 1);
  CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, t.type, t.b, t.len, pt, sizeof pt, &n), SOTTO_ERR_MALFORMED);
  with_ct_len(&w, &t, SOTTO_KEM_CIPHERTEXT_LEN + 1);
  CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, t.type, t.b, t.len, pt, sizeof pt, &n), SOTTO_ERR_MALFORMED);
  with_ct_len(&w, &t, 0);
  CHECK(sotto_session_decrypt(b, &bob.id, &bob.store, t.type, t.b, t.len, pt, sizeof pt, &n) < 0);
  CHECK(!sotto_session_has_state(b));

  /* A flipped bit in the KEM ciphertext: implicit rejection gives Bob
   * another secret, the first message fails to authenticate, nothing is
   * committed and the one-time KEM key is not consumed. Sampled bits across
   * the whole ciphertext (every bit would take long under sanitizers). */
  {
    struct sotto__prekey_msg pm;
    size_t off;
    CHECK_RC(sotto__prekey_msg_parse(&pm, w.b, w.len), 0);
    off = (size_t)(pm.kem_ct - w.b);
    for (size_t bit = 8; bit < SOTTO_KEM_CIPHERTEXT_LEN * 8; bit += 97) {
      t = w;
      t.b[off + bit / 8] ^= (uint8_t)(1u << (bit % 8));
      CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, t.type, t.b, t.len, pt, sizeof pt, &n), SOTTO_ERR_AUTH);
      CHECK(n == 0);
    }
    /* The type byte of the ciphertext: an unknown KEM is malformed; the
     * other KEM we speak (0x0A -> 0x08, Kyber-1024 round 3) decapsulates the
     * same bytes with other hashing, so the secret and the MAC are wrong. */
    t = w;
    t.b[off] ^= 0x01;
    CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, t.type, t.b, t.len, pt, sizeof pt, &n), SOTTO_ERR_MALFORMED);
    t = w;
    t.b[off] ^= 0x02;
    CHECK(t.b[off] == SOTTO_KEM_TYPE_KYBER1024);
    CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, t.type, t.b, t.len, pt, sizeof pt, &n), SOTTO_ERR_AUTH);
  }
  CHECK(!sotto_session_has_state(b));
  CHECK(bob.kem[0].used || bob.kem[1].used || bob.kem[2].used || bob.kem[3].used);
  /* Every bit of the non-KEM part of the message is covered too. */
  {
    struct sotto__prekey_msg pm;
    size_t kem_from, kem_to;
    CHECK_RC(sotto__prekey_msg_parse(&pm, w.b, w.len), 0);
    kem_from = (size_t)(pm.kem_ct - w.b);
    kem_to = kem_from + pm.kem_ct_len;
    for (size_t bit = 0; bit < w.len * 8; bit++) {
      int rc;
      if (bit / 8 >= kem_from && bit / 8 < kem_to) continue;
      t = w;
      t.b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
      rc = sotto_session_decrypt(b, &bob.id, &bob.store, t.type, t.b, t.len, pt, sizeof pt, &n);
      if (rc == 0) {
        /* Only the unauthenticated registration id may change unnoticed. */
        CHECK(n == 6 && memcmp(pt, "needle", 6) == 0);
        sotto_session_free(b);
        CHECK_RC(sotto_session_new(&b), 0);
        CHECK_RC(party_add_kem(&bob, 30, 0), 0); /* new key pair: rebuild Alice's side */
        CHECK_RC(party_bundle_pq(&bob, 1, 0, 30, &bundle), 0);
        CHECK_RC(sotto_session_init_from_bundle(a, &alice.id, &bundle), 0);
        CHECK_RC(enc(a, &w, "needle"), 0);
        CHECK_RC(sotto__prekey_msg_parse(&pm, w.b, w.len), 0);
        kem_from = (size_t)(pm.kem_ct - w.b);
        kem_to = kem_from + pm.kem_ct_len;
      }
    }
  }
  CHECK(!sotto_session_has_state(b));
  uses = 0;
  CHECK_RC(dec_expect(b, &bob, &w, "needle"), 0);
  for (int i = 0; i < 4; i++)
    if (bob.kem[i].id == 30) uses += bob.kem[i].used;
  CHECK(uses == 0); /* the one-time KEM key is gone now */

  /* Reusing the one-time KEM pre-key: the responder no longer has it. */
  {
    struct sotto_session *a3, *b3;
    CHECK_RC(sotto_session_new(&a3), 0);
    CHECK_RC(sotto_session_new(&b3), 0);
    CHECK_RC(sotto_session_init_from_bundle(a3, &alice.id, &bundle), 0);
    CHECK_RC(enc(a3, &w, "reuse"), 0);
    CHECK_RC(sotto_session_decrypt(b3, &bob.id, &bob.store, w.type, w.b, w.len, pt, sizeof pt, &n),
             SOTTO_ERR_UNKNOWN_PREKEY);
    CHECK(!sotto_session_has_state(b3));
    sotto_session_free(a3);
    sotto_session_free(b3);
  }
  sotto_session_free(a);
  sotto_session_free(b);
}

int main(void) {
  REQUIRE(party_init(&alice) == 0);
  REQUIRE(party_init(&bob) == 0);
  REQUIRE(party_add_spk(&bob, 1) == 0);
  REQUIRE(party_add_opk(&bob, 7) == 0);
  REQUIRE(party_add_kem(&bob, 20, 0) == 0); /* one-time */
  REQUIRE(party_add_kem(&bob, 21, 1) == 0); /* last resort */
  test_default_is_v4(1, 20);
  party_add_opk(&bob, 7);
  test_default_is_v4(0, 21);
  test_default_is_v4(0, 21); /* the last-resort key serves again */
  /* Kyber-1024 round 3 (0x08), libsignal's KEM, between two sotto peers:
   * same session, the ciphertext carries 0x08. */
  {
    struct party_kem *k = &bob.kem[2];
    struct sotto_session *a;
    struct sotto_bundle bundle;
    struct sotto__prekey_msg pm;
    struct wire w;
    REQUIRE(!k->used);
    REQUIRE(sotto_kem_keypair_generate_type(k->pub, k->sk, SOTTO_KEM_TYPE_KYBER1024) == 0);
    REQUIRE(sotto_kem_prekey_sign(k->sig, bob.id.priv, k->pub) == 0);
    CHECK(k->pub[0] == SOTTO_KEM_TYPE_KYBER1024);
    k->id = 22;
    k->used = 1;
    k->last_resort = 1;
    test_default_is_v4(0, 22);
    CHECK_RC(sotto_session_new(&a), 0);
    CHECK_RC(party_bundle_pq(&bob, 1, 0, 22, &bundle), 0);
    CHECK_RC(sotto_session_init_from_bundle(a, &alice.id, &bundle), 0);
    CHECK_RC(enc(a, &w, "kyber"), 0);
    CHECK_RC(sotto__prekey_msg_parse(&pm, w.b, w.len), 0);
    CHECK(pm.kem_ct[0] == SOTTO_KEM_TYPE_KYBER1024);
    sotto_session_free(a);
    CHECK_RC(sotto_kem_keypair_generate_type(k->pub, k->sk, 0x09), SOTTO_ERR_USAGE);
  }
  test_downgrade_refused();
  test_bad_kem_keys();
  test_bad_ciphertexts();
  return test_done("pqxdh");
}

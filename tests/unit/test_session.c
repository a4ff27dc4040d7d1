/* SPDX-License-Identifier: Apache-2.0 */
/* test_session.c: libsotto <-> libsotto sessions: setup, ratchet, out of
 * order, duplicates, tampering, limits, persistence, failure atomicity. */
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

#include "party.h"
#include "wire/messages.h"
#include "testutil.h"

#define CAP 4096

struct wire {
  int type;
  size_t len;
  uint8_t b[CAP];
};

static struct party alice, bob;

/* These tests exercise the version 3 (X3DH) paths through the interop mode;
 * test_pqxdh.c covers version 4. */
static int sotto_session_init_from_bundle_x3dh(struct sotto_session *s, const struct sotto_identity *me,
                                               const struct sotto_bundle *b) {
  return sotto_session_init_from_bundle_ex(s, me, b, SOTTO_INIT_ALLOW_X3DH);
}

static int enc(struct sotto_session *s, struct wire *w, const char *text) {
  return sotto_session_encrypt(s, w->b, sizeof w->b, &w->len, &w->type, (const uint8_t *)text, strlen(text));
}

/* Decrypts and compares with the expected text. */
static int dec_expect(struct sotto_session *s, struct party *me, const struct wire *w, const char *text) {
  uint8_t pt[CAP];
  size_t n;
  int rc = sotto_session_decrypt(s, &me->id, &me->store, w->type, w->b, w->len, pt, sizeof pt, &n);
  if (rc != 0) return rc;
  if (n != strlen(text) || memcmp(pt, text, n) != 0) return -999;
  return 0;
}

/* Serialized snapshot, to prove a failed call changed nothing. */
static uint8_t *snap(const struct sotto_session *s, size_t *len) {
  size_t cap = sotto_session_serialized_size(s);
  uint8_t *b = malloc(cap ? cap : 1);
  if (sotto_session_serialize(s, b, cap, len) != 0) *len = 0;
  return b;
}

static int same_as(const struct sotto_session *s, const uint8_t *b, size_t len) {
  size_t n;
  uint8_t *now = snap(s, &n);
  int same = n == len && memcmp(now, b, n) == 0;
  free(now);
  return same;
}

static void setup_pair(struct sotto_session **a, struct sotto_session **b, int with_opk) {
  struct sotto_bundle bundle;
  CHECK_RC(sotto_session_new(a), 0);
  CHECK_RC(sotto_session_new(b), 0);
  CHECK_RC(party_bundle(&bob, 1, with_opk ? 7 : 0, &bundle), 0);
  CHECK_RC(sotto_session_init_from_bundle_x3dh(*a, &alice.id, &bundle), 0);
}

static void test_basic(int with_opk) {
  struct sotto_session *a, *b;
  struct wire w;
  unsigned removed = bob.opk_removed;
  uint8_t rid[32];

  setup_pair(&a, &b, with_opk);
  CHECK_RC(enc(a, &w, "hello bob"), 0);
  CHECK(w.type == SOTTO_MSG_PREKEY);
  CHECK(w.b[0] == 0x33);
  CHECK_RC(dec_expect(b, &bob, &w, "hello bob"), 0);
  CHECK(bob.opk_removed == removed + (with_opk ? 1 : 0));
  CHECK_RC(sotto_session_remote_identity(b, rid), 0);
  CHECK(memcmp(rid, alice.id.pub, 32) == 0);
  /* Second message before any reply is still a PreKeySignalMessage and
   * decrypts through the existing session (same base key). */
  CHECK_RC(enc(a, &w, "again"), 0);
  CHECK(w.type == SOTTO_MSG_PREKEY);
  CHECK_RC(dec_expect(b, &bob, &w, "again"), 0);
  CHECK_RC(enc(b, &w, "hi alice"), 0);
  CHECK(w.type == SOTTO_MSG_SIGNAL);
  CHECK_RC(dec_expect(a, &alice, &w, "hi alice"), 0);
  CHECK_RC(enc(a, &w, "now plain"), 0);
  CHECK(w.type == SOTTO_MSG_SIGNAL);
  CHECK_RC(dec_expect(b, &bob, &w, "now plain"), 0);
  if (with_opk) party_add_opk(&bob, 7);
  sotto_session_free(a);
  sotto_session_free(b);
}

static void test_pingpong_and_chains(void) {
  struct sotto_session *a, *b;
  struct wire w;
  char text[64];
  setup_pair(&a, &b, 1);
  for (int i = 0; i < 50; i++) {
    snprintf(text, sizeof text, "ping %d", i);
    CHECK_RC(enc(a, &w, text), 0);
    CHECK_RC(dec_expect(b, &bob, &w, text), 0);
    snprintf(text, sizeof text, "pong %d", i);
    CHECK_RC(enc(b, &w, text), 0);
    CHECK_RC(dec_expect(a, &alice, &w, text), 0);
  }
  for (int i = 0; i < 300; i++) {
    snprintf(text, sizeof text, "chain %d", i);
    CHECK_RC(enc(a, &w, text), 0);
    CHECK_RC(dec_expect(b, &bob, &w, text), 0);
  }
  CHECK(sotto_session_skipped_keys(b) == 0);
  party_add_opk(&bob, 7);
  sotto_session_free(a);
  sotto_session_free(b);
}

static void test_out_of_order_and_duplicates(void) {
  struct sotto_session *a, *b;
  static struct wire w[8], late[3];
  static const int order[6] = {5, 0, 3, 1, 4, 2};
  char text[32];
  setup_pair(&a, &b, 1);
  CHECK_RC(enc(a, &w[7], "first"), 0);
  CHECK_RC(dec_expect(b, &bob, &w[7], "first"), 0);
  CHECK_RC(enc(b, &w[7], "reply"), 0);
  CHECK_RC(dec_expect(a, &alice, &w[7], "reply"), 0);
  for (int i = 0; i < 6; i++) {
    snprintf(text, sizeof text, "m%d", i);
    CHECK_RC(enc(a, &w[i], text), 0);
  }
  for (int i = 0; i < 6; i++) {
    snprintf(text, sizeof text, "m%d", order[i]);
    CHECK_RC(dec_expect(b, &bob, &w[order[i]], text), 0);
  }
  CHECK(sotto_session_skipped_keys(b) == 0);
  /* Replays, including of a message that was once out of order. */
  for (int i = 0; i < 6; i++) {
    uint8_t pt[CAP];
    size_t n;
    CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, w[i].type, w[i].b, w[i].len, pt, sizeof pt, &n),
             SOTTO_ERR_DUPLICATE);
  }
  /* Late messages from an older chain after a DH ratchet step. */
  for (int i = 0; i < 3; i++) {
    snprintf(text, sizeof text, "late%d", i);
    CHECK_RC(enc(a, &late[i], text), 0);
  }
  CHECK_RC(dec_expect(b, &bob, &late[1], "late1"), 0);
  CHECK_RC(enc(b, &w[0], "new chain"), 0);
  CHECK_RC(dec_expect(a, &alice, &w[0], "new chain"), 0);
  CHECK_RC(enc(a, &w[1], "after step"), 0);
  CHECK_RC(dec_expect(b, &bob, &w[1], "after step"), 0);
  CHECK_RC(dec_expect(b, &bob, &late[2], "late2"), 0);
  CHECK_RC(dec_expect(b, &bob, &late[0], "late0"), 0);
  CHECK(sotto_session_skipped_keys(b) == 0);
  party_add_opk(&bob, 7);
  sotto_session_free(a);
  sotto_session_free(b);
}

static void test_tamper_atomic(void) {
  struct sotto_session *a, *b;
  struct wire w, t;
  uint8_t *before, pt[CAP];
  size_t blen, n;
  setup_pair(&a, &b, 1);
  CHECK_RC(enc(a, &w, "x"), 0);
  CHECK_RC(dec_expect(b, &bob, &w, "x"), 0);
  CHECK_RC(enc(b, &w, "y"), 0);
  CHECK_RC(dec_expect(a, &alice, &w, "y"), 0);
  CHECK_RC(enc(a, &w, "tamper me"), 0);
  before = snap(b, &blen);
  /* Every single-bit flip is rejected and leaves the record untouched. */
  for (size_t i = 0; i < w.len * 8; i++) {
    int rc;
    t = w;
    t.b[i / 8] ^= (uint8_t)(1u << (i % 8));
    rc = sotto_session_decrypt(b, &bob.id, &bob.store, t.type, t.b, t.len, pt, sizeof pt, &n);
    CHECK(rc < 0);
    CHECK(n == 0);
  }
  CHECK(same_as(b, before, blen));
  /* Every truncation and an extra trailing byte. */
  for (size_t i = 0; i < w.len; i++)
    CHECK(sotto_session_decrypt(b, &bob.id, &bob.store, w.type, w.b, i, pt, sizeof pt, &n) < 0);
  t = w;
  t.b[t.len++] = 0;
  CHECK(sotto_session_decrypt(b, &bob.id, &bob.store, t.type, t.b, t.len, pt, sizeof pt, &n) < 0);
  CHECK(same_as(b, before, blen));
  CHECK_RC(dec_expect(b, &bob, &w, "tamper me"), 0);
  free(before);
  party_add_opk(&bob, 7);
  sotto_session_free(a);
  sotto_session_free(b);
}

static void test_gap_limits(void) {
  struct sotto_session *a, *b;
  static struct wire w, first, far;
  char text[32];
  setup_pair(&a, &b, 0);
  CHECK_RC(enc(a, &w, "start"), 0);
  CHECK_RC(dec_expect(b, &bob, &w, "start"), 0);
  CHECK_RC(enc(b, &w, "ok"), 0);
  CHECK_RC(dec_expect(a, &alice, &w, "ok"), 0);
  CHECK_RC(enc(a, &first, "skipped 0"), 0); /* counter 0 */
  for (int i = 1; i < 2000; i++) CHECK_RC(enc(a, &w, "x"), 0);
  CHECK_RC(enc(a, &w, "exactly 2000 ahead"), 0); /* counter 2000 */
  CHECK_RC(enc(a, &far, "2001 ahead of the new index"), 0); /* counter 2001 */
  CHECK_RC(dec_expect(b, &bob, &w, "exactly 2000 ahead"), 0);
  CHECK(sotto_session_skipped_keys(b) == 2000);
  CHECK_RC(dec_expect(b, &bob, &first, "skipped 0"), 0);
  CHECK(sotto_session_skipped_keys(b) == 1999);
  CHECK_RC(dec_expect(b, &bob, &far, "2001 ahead of the new index"), 0);
  /* Now 2001 ahead: rejected, state unchanged. */
  for (int i = 0; i < 2001; i++) CHECK_RC(enc(a, &w, "y"), 0);
  snprintf(text, sizeof text, "too far");
  CHECK_RC(enc(a, &w, text), 0);
  {
    uint8_t pt[CAP], *before;
    size_t n, blen;
    before = snap(b, &blen);
    CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, w.type, w.b, w.len, pt, sizeof pt, &n),
             SOTTO_ERR_TOO_FAR_AHEAD);
    CHECK(same_as(b, before, blen));
    free(before);
  }
  sotto_session_free(a);
  sotto_session_free(b);
}

static void test_persistence(void) {
  struct sotto_session *a, *b, *b2;
  struct wire w, held;
  uint8_t *buf;
  size_t len;
  setup_pair(&a, &b, 1);
  CHECK_RC(enc(a, &w, "one"), 0);
  CHECK_RC(dec_expect(b, &bob, &w, "one"), 0);
  CHECK_RC(enc(b, &w, "two"), 0);
  CHECK_RC(dec_expect(a, &alice, &w, "two"), 0);
  CHECK_RC(enc(a, &held, "held back"), 0);
  CHECK_RC(enc(a, &w, "three"), 0);
  CHECK_RC(dec_expect(b, &bob, &w, "three"), 0);
  buf = snap(b, &len);
  CHECK(len > 0);
  CHECK_RC(sotto_session_deserialize(&b2, buf, len), 0);
  CHECK(same_as(b2, buf, len));
  CHECK_RC(dec_expect(b2, &bob, &held, "held back"), 0);
  CHECK_RC(enc(b2, &w, "from restored"), 0);
  CHECK_RC(dec_expect(a, &alice, &w, "from restored"), 0);
  /* Strict loading: every truncation and trailing bytes fail. */
  for (size_t i = 0; i < len; i++) {
    struct sotto_session *x = NULL;
    CHECK(sotto_session_deserialize(&x, buf, i) < 0);
    CHECK(x == NULL);
  }
  {
    struct sotto_session *x = NULL;
    uint8_t *longer = malloc(len + 1);
    memcpy(longer, buf, len);
    longer[len] = 0;
    CHECK_RC(sotto_session_deserialize(&x, longer, len + 1), SOTTO_ERR_TRAILING);
    free(longer);
  }
  free(buf);
  party_add_opk(&bob, 7);
  sotto_session_free(a);
  sotto_session_free(b);
  sotto_session_free(b2);
}

static void test_setup_failures(void) {
  struct sotto_session *a, *b;
  struct sotto_bundle bundle;
  struct wire w;
  uint8_t pt[CAP];
  size_t n;

  CHECK_RC(sotto_session_new(&a), 0);
  CHECK_RC(sotto_session_new(&b), 0);
  CHECK_RC(party_bundle(&bob, 1, 7, &bundle), 0);
  bundle.signed_prekey_sig[10] ^= 1;
  CHECK_RC(sotto_session_init_from_bundle_x3dh(a, &alice.id, &bundle), SOTTO_ERR_AUTH);
  CHECK(!sotto_session_has_state(a));
  CHECK_RC(party_bundle(&bob, 1, 7, &bundle), 0);
  bundle.signed_prekey[0] ^= 1;
  CHECK_RC(sotto_session_init_from_bundle_x3dh(a, &alice.id, &bundle), SOTTO_ERR_AUTH);
  CHECK_RC(enc(a, &w, "no session"), SOTTO_ERR_NO_SESSION);

  /* Unknown one-time pre-key, untrusted identity. */
  CHECK_RC(party_bundle(&bob, 1, 7, &bundle), 0);
  bundle.one_time_prekey_id = 99;
  CHECK_RC(sotto_session_init_from_bundle_x3dh(a, &alice.id, &bundle), 0);
  CHECK_RC(enc(a, &w, "hi"), 0);
  CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, w.type, w.b, w.len, pt, sizeof pt, &n),
           SOTTO_ERR_UNKNOWN_PREKEY);
  CHECK(!sotto_session_has_state(b));
  CHECK_RC(party_bundle(&bob, 1, 7, &bundle), 0);
  CHECK_RC(sotto_session_init_from_bundle_x3dh(a, &alice.id, &bundle), 0);
  CHECK_RC(enc(a, &w, "hi"), 0);
  bob.distrust = 1;
  CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, w.type, w.b, w.len, pt, sizeof pt, &n),
           SOTTO_ERR_UNTRUSTED_IDENTITY);
  bob.distrust = 0;
  CHECK(!sotto_session_has_state(b));
  CHECK_RC(dec_expect(b, &bob, &w, "hi"), 0);
  /* The one-time pre-key is gone: a second session on it fails. */
  {
    struct sotto_session *a2;
    CHECK_RC(sotto_session_new(&a2), 0);
    CHECK_RC(sotto_session_init_from_bundle_x3dh(a2, &alice.id, &bundle), 0);
    CHECK_RC(enc(a2, &w, "reuse"), 0);
    CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, w.type, w.b, w.len, pt, sizeof pt, &n),
             SOTTO_ERR_UNKNOWN_PREKEY);
    sotto_session_free(a2);
  }
  party_add_opk(&bob, 7);
  /* Wrong message type and garbage. */
  CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, 9, w.b, w.len, pt, sizeof pt, &n), SOTTO_ERR_USAGE);
  CHECK(sotto_session_decrypt(b, &bob.id, &bob.store, SOTTO_MSG_SIGNAL, w.b, w.len, pt, sizeof pt, &n) < 0);
  sotto_session_free(a);
  sotto_session_free(b);
}

static void test_new_session_replaces(void) {
  /* Alice re-initiates (e.g. after losing state): Bob archives the old
   * session and still opens late messages of the old one. */
  struct sotto_session *a, *b, *a2;
  struct wire w, old_late;
  setup_pair(&a, &b, 1);
  CHECK_RC(enc(a, &w, "old"), 0);
  CHECK_RC(dec_expect(b, &bob, &w, "old"), 0);
  CHECK_RC(enc(b, &w, "old reply"), 0);
  CHECK_RC(dec_expect(a, &alice, &w, "old reply"), 0);
  CHECK_RC(enc(a, &old_late, "old late"), 0);
  party_add_opk(&bob, 8);
  {
    struct sotto_bundle bundle;
    CHECK_RC(party_bundle(&bob, 1, 8, &bundle), 0);
    CHECK_RC(sotto_session_new(&a2), 0);
    CHECK_RC(sotto_session_init_from_bundle_x3dh(a2, &alice.id, &bundle), 0);
  }
  CHECK_RC(enc(a2, &w, "new"), 0);
  CHECK_RC(dec_expect(b, &bob, &w, "new"), 0);
  CHECK_RC(dec_expect(b, &bob, &old_late, "old late"), 0);
  /* The old session was promoted by that; the new one still works. */
  CHECK_RC(enc(a2, &w, "new 2"), 0);
  CHECK_RC(dec_expect(b, &bob, &w, "new 2"), 0);
  party_add_opk(&bob, 7);
  sotto_session_free(a);
  sotto_session_free(a2);
  sotto_session_free(b);
}

/* Parsers refuse a repeated singular field, wire types 3/4, a field number
 * of 0 and lengths past the end; unknown fields are skipped. */
static void test_parser_strictness(void) {
  static const uint8_t key[32] = {9};
  static const uint8_t ct[16] = {1};
  struct sotto__signal_msg m;
  struct sotto__wr w;
  uint8_t buf[256];
  size_t base;

  sotto__wr_init(&w, buf, sizeof buf);
  sotto__signal_msg_write(&w, 0x33, key, 5, 0, ct, sizeof ct);
  base = w.len;
  sotto__wr_bytes(&w, "MACMAC!!", 8);
  CHECK_RC(sotto__signal_msg_parse(&m, buf, w.len), 0);
  CHECK(m.counter == 5 && m.ciphertext_len == 16);
  /* A second counter field. */
  w.len = base;
  sotto__pb_varint(&w, 2, 6);
  sotto__wr_bytes(&w, "MACMAC!!", 8);
  CHECK_RC(sotto__signal_msg_parse(&m, buf, w.len), SOTTO_ERR_MALFORMED);
  /* An unknown field 9 is skipped. */
  w.len = base;
  sotto__pb_varint(&w, 9, 77);
  sotto__wr_bytes(&w, "MACMAC!!", 8);
  CHECK_RC(sotto__signal_msg_parse(&m, buf, w.len), 0);
  /* A group wire type. */
  w.len = base;
  sotto__wr_u8(&w, (9 << 3) | 3);
  sotto__wr_bytes(&w, "MACMAC!!", 8);
  CHECK_RC(sotto__signal_msg_parse(&m, buf, w.len), SOTTO_ERR_MALFORMED);
  /* Field number 0. */
  w.len = base;
  sotto__wr_u8(&w, 0);
  sotto__wr_u8(&w, 0);
  sotto__wr_bytes(&w, "MACMAC!!", 8);
  CHECK_RC(sotto__signal_msg_parse(&m, buf, w.len), SOTTO_ERR_MALFORMED);
  /* An oversize length that runs past the end. */
  w.len = base;
  sotto__wr_u8(&w, (10 << 3) | 2);
  sotto__wr_varint(&w, 1u << 30);
  sotto__wr_bytes(&w, "MACMAC!!", 8);
  CHECK(sotto__signal_msg_parse(&m, buf, w.len) < 0);
  /* Legacy and unknown versions. */
  buf[0] = 0x13;
  CHECK_RC(sotto__signal_msg_parse(&m, buf, base + 8), SOTTO_ERR_LEGACY);
  buf[0] = 0x53;
  CHECK_RC(sotto__signal_msg_parse(&m, buf, base + 8), SOTTO_ERR_VERSION);
  {
    struct sotto__prekey_msg pm;
    struct sotto__prekey_msg in;
    uint8_t inner[128], out[512];
    struct sotto__wr wi;
    buf[0] = 0x33;
    sotto__wr_init(&wi, inner, sizeof inner);
    sotto__signal_msg_write(&wi, 0x33, key, 0, 0, ct, sizeof ct);
    sotto__wr_bytes(&wi, "MACMAC!!", 8);
    memset(&in, 0, sizeof in);
    memcpy(in.base_key, key, 32);
    memcpy(in.identity_key, key, 32);
    in.message = inner;
    in.message_len = wi.len;
    in.registration_id = 7;
    in.signed_prekey_id = 1;
    sotto__wr_init(&w, out, sizeof out);
    sotto__prekey_msg_write(&w, 0x33, &in);
    CHECK_RC(sotto__prekey_msg_parse(&pm, out, w.len), 0);
    sotto__pb_varint(&w, 6, 2); /* signedPreKeyId twice */
    CHECK_RC(sotto__prekey_msg_parse(&pm, out, w.len), SOTTO_ERR_MALFORMED);
    /* v3 with KEM fields, and a KEM id without ciphertext. */
    w.len -= 2;
    sotto__pb_varint(&w, 7, 2);
    CHECK_RC(sotto__prekey_msg_parse(&pm, out, w.len), SOTTO_ERR_MALFORMED);
  }
}

int main(void) {
  REQUIRE(party_init(&alice) == 0);
  REQUIRE(party_init(&bob) == 0);
  REQUIRE(party_add_spk(&bob, 1) == 0);
  REQUIRE(party_add_opk(&bob, 7) == 0);
  test_basic(1);
  test_basic(0);
  test_pingpong_and_chains();
  test_out_of_order_and_duplicates();
  test_tamper_atomic();
  test_gap_limits();
  test_persistence();
  test_setup_failures();
  test_new_session_replaces();
  test_parser_strictness();
  return test_done("session");
}

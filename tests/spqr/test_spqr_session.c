/* SPDX-License-Identifier: Apache-2.0 */
/* test_spqr_session: SPQR wired into sessions between two libsotto parties
 * (SOTTO_INIT_SPQR on the initiator; the responder follows field 5):
 * a conversation in bursts with drops and reversed bursts, record round
 * trips (format 2 with SPQR, format 1 without, byte for byte), a message
 * refused without changing the record, and no SPQR without a KEM key. The
 * same against libsignal 0.103: tests/libsignal/test_ls_session.c. */
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

#include "party.h"
#include "spqr/chain.h"
#include "testutil.h"
#include "wire/messages.h"

#define CAP 4096
/* REQUIRE for void functions. */
#define NEED(e)             \
  do {                      \
    int need_ok_ = !!(e);   \
    CHECK(need_ok_);        \
    if (!need_ok_) return;  \
  } while (0)

static uint64_t rs = 0x1234567887654321ull;
static unsigned rnd(unsigned n) {
  rs ^= rs << 13;
  rs ^= rs >> 7;
  rs ^= rs << 17;
  return (unsigned)(rs % n);
}

/* Serializes s, checks the format byte, loads it back into *s. */
static void roundtrip(struct sotto_session **s, int format) {
  size_t n = sotto_session_serialized_size(*s), got = 0, got2 = 0;
  uint8_t *a = malloc(n), *b = malloc(n);
  struct sotto_session *t = NULL;
  NEED(a != NULL && b != NULL);
  CHECK_RC(sotto_session_serialize(*s, a, n, &got), 0);
  CHECK(got == n && a[3] == format);
  CHECK_RC(sotto_session_deserialize(&t, a, got), 0);
  if (t != NULL) {
    CHECK_RC(sotto_session_serialize(t, b, n, &got2), 0);
    CHECK(got2 == got && memcmp(a, b, got) == 0);
    sotto_session_free(*s);
    *s = t;
  }
  if (format == 2 && got > 6) {
    /* The same bytes labelled format 1 are refused (flag 0x20 is format 2's). */
    a[3] = 1;
    CHECK(sotto_session_deserialize(&t, a, got) == SOTTO_ERR_MALFORMED && t == NULL);
  }
  free(a);
  free(b);
}

static int has_field5(const uint8_t *m, size_t n, int type) {
  struct sotto__prekey_msg pm;
  struct sotto__signal_msg sm;
  if (type == SOTTO_MSG_PREKEY) {
    if (sotto__prekey_msg_parse(&pm, m, n) != 0) return -1;
    m = pm.message;
    n = pm.message_len;
  }
  if (sotto__signal_msg_parse(&sm, m, n) != 0) return -1;
  return sm.has_pq && sm.pq_len > 0;
}

/* mode 1: the default (version 4 runs SPQR); 2: SOTTO_INIT_SPQR given;
 * 0: X3DH interop (version 3, no SPQR, format 1 records). */
static void conversation(int mode) {
  int spqr = mode != 0;
  static struct party A, B;
  struct sotto_bundle bb;
  struct sotto_session *sa = NULL, *sb = NULL;
  static uint8_t msg[8][CAP];
  size_t len[8], ptn;
  int type[8];
  uint8_t pt[CAP];
  unsigned sent = 0, ok = 0;
  int from_a = 1;

  NEED(party_init(&A) == 0 && party_init(&B) == 0);
  NEED(party_add_spk(&B, 1) == 0 && party_add_opk(&B, 2) == 0 && party_add_kem(&B, 3, 1) == 0);
  if (spqr)
    NEED(party_bundle_pq(&B, 1, 2, 3, &bb) == 0);
  else
    NEED(party_bundle(&B, 1, 2, &bb) == 0);
  NEED(sotto_session_new(&sa) == 0 && sotto_session_new(&sb) == 0);
  CHECK_RC(sotto_session_init_from_bundle_ex(sa, &A.id, &bb,
                                             mode == 2   ? SOTTO_INIT_SPQR
                                             : mode == 0 ? SOTTO_INIT_ALLOW_X3DH
                                                         : 0),
           0);
  CHECK(sotto_session_has_spqr(sa) == spqr && sotto_session_version(sa) == (spqr ? 4 : 3));
  while (sent < 400) {
    unsigned n = 1 + rnd(8), rev = sent > 8 && rnd(4) == 0;
    struct sotto_session *snd = from_a ? sa : sb, *rcv = from_a ? sb : sa;
    struct party *me = from_a ? &B : &A;
    for (unsigned i = 0; i < n; i++) {
      char p[32];
      snprintf(p, sizeof p, "m%u", sent + i);
      CHECK_RC(sotto_session_encrypt(snd, msg[i], CAP, &len[i], &type[i], (const uint8_t *)p, strlen(p)), 0);
      CHECK(has_field5(msg[i], len[i], type[i]) == spqr);
    }
    for (unsigned j = 0; j < n; j++) {
      unsigned i = rev ? n - 1 - j : j;
      char p[32];
      if (sent > 8 && rnd(10) == 0) continue; /* dropped */
      snprintf(p, sizeof p, "m%u", sent + i);
      ptn = 0;
      if (sotto_session_decrypt(rcv, &me->id, &me->store, type[i], msg[i], len[i], pt, sizeof pt, &ptn) == 0 &&
          ptn == strlen(p) && memcmp(pt, p, ptn) == 0)
        ok++;
      else
        CHECK(!"message did not decrypt");
    }
    sent += n;
    if (sent % 100 < n) {
      roundtrip(&sa, spqr ? 2 : 1);
      roundtrip(&sb, spqr ? 2 : 1);
    }
    if (rnd(4) != 0) from_a = !from_a;
  }
  /* A message altered in its last MAC byte: refused, record unchanged. */
  {
    size_t n1 = sotto_session_serialized_size(sb), n2, l;
    uint8_t *r1 = malloc(n1), *r2 = malloc(n1);
    int t;
    NEED(r1 != NULL && r2 != NULL);
    CHECK_RC(sotto_session_encrypt(sa, msg[0], CAP, &l, &t, (const uint8_t *)"x", 1), 0);
    CHECK_RC(sotto_session_serialize(sb, r1, n1, &n1), 0);
    msg[0][l - 1] ^= 1;
    CHECK_RC(sotto_session_decrypt(sb, &B.id, &B.store, t, msg[0], l, pt, sizeof pt, &ptn), SOTTO_ERR_AUTH);
    n2 = sotto_session_serialized_size(sb);
    CHECK(n2 == n1);
    CHECK_RC(sotto_session_serialize(sb, r2, n2, &n2), 0);
    CHECK(n2 == n1 && memcmp(r1, r2, n1) == 0);
    msg[0][l - 1] ^= 1;
    CHECK_RC(sotto_session_decrypt(sb, &B.id, &B.store, t, msg[0], l, pt, sizeof pt, &ptn), 0);
    free(r1);
    free(r2);
  }
  CHECK(sotto_session_has_spqr(sb) == spqr);
  printf("%s: %u messages, %u delivered\n", spqr ? "SPQR" : "no SPQR (X3DH)", sent, ok);
  CHECK(ok > 300);
  sotto_session_free(sa);
  sotto_session_free(sb);
}

/* No silent downgrade: a version 4 start without SPQR (an old sotto, or a
 * relay that strips field 5 and re-MACs nothing: the MAC would fail anyway)
 * is refused by the responder before any pre-key is used, and leaves its
 * record as it was. SOTTO_INIT_SPQR with SOTTO_INIT_NO_SPQR is a usage
 * error. */
static void no_downgrade(void) {
  static struct party A, B;
  struct sotto_bundle bb;
  struct sotto_session *sa = NULL, *sb = NULL;
  uint8_t msg[CAP], pt[CAP];
  size_t len = 0, ptn = 0;
  int type = 0;
  NEED(party_init(&A) == 0 && party_init(&B) == 0);
  NEED(party_add_spk(&B, 1) == 0 && party_add_opk(&B, 2) == 0 && party_add_kem(&B, 3, 0) == 0);
  NEED(party_bundle_pq(&B, 1, 2, 3, &bb) == 0);
  NEED(sotto_session_new(&sa) == 0 && sotto_session_new(&sb) == 0);
  CHECK_RC(sotto_session_init_from_bundle_ex(sa, &A.id, &bb, SOTTO_INIT_SPQR | SOTTO_INIT_NO_SPQR),
           SOTTO_ERR_USAGE);
  CHECK_RC(sotto_session_init_from_bundle_ex(sa, &A.id, &bb, SOTTO_INIT_NO_SPQR), 0);
  CHECK(sotto_session_version(sa) == 4 && sotto_session_has_spqr(sa) == 0);
  CHECK_RC(sotto_session_encrypt(sa, msg, CAP, &len, &type, (const uint8_t *)"old", 3), 0);
  CHECK(type == SOTTO_MSG_PREKEY && has_field5(msg, len, type) == 0);
  CHECK_RC(sotto_session_decrypt(sb, &B.id, &B.store, type, msg, len, pt, sizeof pt, &ptn),
           SOTTO_ERR_DOWNGRADE);
  CHECK(!sotto_session_has_state(sb) && ptn == 0 && B.opk_removed == 0);
  /* The same initiator with the default: accepted, SPQR on both sides. */
  CHECK_RC(sotto_session_init_from_bundle(sa, &A.id, &bb), 0);
  CHECK(sotto_session_has_spqr(sa) == 1);
  CHECK_RC(sotto_session_encrypt(sa, msg, CAP, &len, &type, (const uint8_t *)"new", 3), 0);
  CHECK_RC(sotto_session_decrypt(sb, &B.id, &B.store, type, msg, len, pt, sizeof pt, &ptn), 0);
  CHECK(ptn == 3 && memcmp(pt, "new", 3) == 0 && sotto_session_has_spqr(sb) == 1);
  sotto_session_free(sa);
  sotto_session_free(sb);
}

/* Addresses between sotto peers (usernames and device ids in field 6, under
 * the MAC): with `require` a message must name exactly the sender and us;
 * an unaddressed one, or one naming someone else, is refused as AUTH with
 * the record unchanged; invalid addresses are usage errors. */
static void addresses(void) {
  static struct party A, B;
  struct sotto_bundle bb;
  struct sotto_session *sa = NULL, *sb = NULL;
  struct sotto_addresses ab, ba, bad;
  uint8_t msg[CAP], pt[CAP], *r1 = NULL, *r2 = NULL;
  size_t len = 0, ptn = 0, n1 = 0, n2 = 0;
  int type = 0;
  char long_name[SOTTO_ADDRESS_NAME_MAX + 2];

  memset(&ab, 0, sizeof ab);
  ab.local.kind = ab.remote.kind = SOTTO_ADDRESS_NAME;
  ab.local.name = "alice";
  ab.local.device_id = 1;
  ab.remote.name = "bob";
  ab.remote.device_id = 2;
  ab.require = 1;
  ba = ab;
  ba.local = ab.remote;
  ba.remote = ab.local;
  NEED(party_init(&A) == 0 && party_init(&B) == 0);
  NEED(party_add_spk(&B, 1) == 0 && party_add_opk(&B, 2) == 0 && party_add_kem(&B, 3, 1) == 0);
  NEED(party_bundle_pq(&B, 1, 2, 3, &bb) == 0);
  NEED(sotto_session_new(&sa) == 0 && sotto_session_new(&sb) == 0);
  CHECK_RC(sotto_session_init_from_bundle(sa, &A.id, &bb), 0);
  CHECK_RC(sotto_session_encrypt_addressed(sa, &ab, msg, CAP, &len, &type, (const uint8_t *)"hi", 2), 0);
  /* bob expecting carol, or expecting it on device 3: refused, nothing kept */
  bad = ba;
  bad.remote.name = "carol";
  CHECK_RC(
      sotto_session_decrypt_addressed(sb, &B.id, &B.store, &bad, type, msg, len, pt, sizeof pt, &ptn, NULL),
      SOTTO_ERR_AUTH);
  bad = ba;
  bad.local.device_id = 3;
  CHECK_RC(
      sotto_session_decrypt_addressed(sb, &B.id, &B.store, &bad, type, msg, len, pt, sizeof pt, &ptn, NULL),
      SOTTO_ERR_AUTH);
  CHECK(!sotto_session_has_state(sb) && B.opk_removed == 0);
  CHECK_RC(
      sotto_session_decrypt_addressed(sb, &B.id, &B.store, &ba, type, msg, len, pt, sizeof pt, &ptn, NULL),
      0);
  CHECK(ptn == 2 && memcmp(pt, "hi", 2) == 0);
  /* An unaddressed reply where addresses are required: refused, unchanged. */
  CHECK_RC(sotto_session_encrypt(sb, msg, CAP, &len, &type, (const uint8_t *)"yo", 2), 0);
  n1 = sotto_session_serialized_size(sa);
  r1 = malloc(n1);
  r2 = malloc(n1);
  NEED(r1 != NULL && r2 != NULL);
  CHECK_RC(sotto_session_serialize(sa, r1, n1, &n1), 0);
  CHECK_RC(
      sotto_session_decrypt_addressed(sa, &A.id, &A.store, &ab, type, msg, len, pt, sizeof pt, &ptn, NULL),
      SOTTO_ERR_AUTH);
  n2 = n1;
  CHECK_RC(sotto_session_serialize(sa, r2, n2, &n2), 0);
  CHECK(n2 == n1 && memcmp(r1, r2, n1) == 0);
  /* Without require it opens (libsignal's rule for older senders). */
  bad = ab;
  bad.require = 0;
  CHECK_RC(
      sotto_session_decrypt_addressed(sa, &A.id, &A.store, &bad, type, msg, len, pt, sizeof pt, &ptn, NULL),
      0);
  /* Invalid addresses. */
  memset(long_name, 'x', sizeof long_name - 1);
  long_name[sizeof long_name - 1] = '\0';
  bad = ab;
  bad.local.name = long_name;
  CHECK_RC(sotto_session_encrypt_addressed(sa, &bad, msg, CAP, &len, &type, (const uint8_t *)"x", 1),
           SOTTO_ERR_USAGE);
  bad.local.name = "";
  CHECK_RC(sotto_session_encrypt_addressed(sa, &bad, msg, CAP, &len, &type, (const uint8_t *)"x", 1),
           SOTTO_ERR_USAGE);
  bad = ab;
  bad.remote.kind = SOTTO_ADDRESS_SERVICE_ID;
  bad.remote.device_id = 1;
  CHECK_RC(sotto_session_encrypt_addressed(sa, &bad, msg, CAP, &len, &type, (const uint8_t *)"x", 1),
           SOTTO_ERR_USAGE);
  bad.local = bad.remote;
  bad.local.device_id = 128; /* one byte on the wire, 1..127 */
  CHECK_RC(sotto_session_encrypt_addressed(sa, &bad, msg, CAP, &len, &type, (const uint8_t *)"x", 1),
           SOTTO_ERR_USAGE);
  free(r1);
  free(r2);
  sotto_session_free(sa);
  sotto_session_free(sb);
}

/* The SPQR part of a format-2 record is bounded on load: a braid or chain
 * record longer than its bound is SOTTO_ERR_TOO_LARGE before it is parsed,
 * and a chain with parameters other than libsignal's (which no session
 * makes) is MALFORMED. The record holds one state, so its chain record is
 * the last thing in it, after its u32 length. */
static void record_bounds(void) {
  static struct party A, B;
  struct sotto_bundle bb;
  struct sotto_session *sa = NULL, *t = NULL;
  struct sotto__spqr_chain c;
  uint8_t *rec = NULL, *big = NULL, *cr = NULL;
  size_t n = 0, i, at = 0, ncr = 0;
  uint8_t msg[CAP];
  size_t len;
  int type;

  NEED(party_init(&A) == 0 && party_init(&B) == 0);
  NEED(party_add_spk(&B, 1) == 0 && party_add_kem(&B, 3, 1) == 0);
  NEED(party_bundle_pq(&B, 1, 0, 3, &bb) == 0);
  NEED(sotto_session_new(&sa) == 0);
  CHECK_RC(sotto_session_init_from_bundle(sa, &A.id, &bb), 0);
  CHECK_RC(sotto_session_encrypt(sa, msg, CAP, &len, &type, (const uint8_t *)"x", 1), 0);
  n = sotto_session_serialized_size(sa);
  NEED((rec = malloc(n)) != NULL);
  CHECK_RC(sotto_session_serialize(sa, rec, n, &n), 0);
  for (i = 0; i + 4 <= n; i++)
    if (memcmp(rec + i, "SPQC", 4) == 0) at = i;
  NEED(at > 4 && rec[at - 4] == 0 && ((size_t)rec[at - 2] << 8 | rec[at - 1]) == n - at);
  /* A chain record claimed 700,000 bytes long (and that long). */
  NEED((big = calloc(1, at + 700000)) != NULL);
  memcpy(big, rec, at);
  big[at - 4] = 0;
  big[at - 3] = (uint8_t)(700000 >> 16);
  big[at - 2] = (uint8_t)(700000 >> 8);
  big[at - 1] = (uint8_t)700000;
  memcpy(big + at, rec + at, n - at);
  CHECK_RC(sotto_session_deserialize(&t, big, at + 700000), SOTTO_ERR_TOO_LARGE);
  CHECK(t == NULL);
  /* The same chain with max_ooo 3,000: a valid chain record, not a session's. */
  CHECK_RC(sotto__spqr_chain_deserialize(&c, rec + at, n - at), 0);
  c.max_ooo = 3000;
  ncr = sotto__spqr_chain_serialized_size(&c);
  NEED(ncr == n - at && (cr = malloc(ncr)) != NULL);
  CHECK_RC(sotto__spqr_chain_serialize(&c, cr, ncr, &ncr), 0);
  memcpy(big, rec, at);
  memcpy(big + at, cr, ncr);
  CHECK_RC(sotto_session_deserialize(&t, big, n), SOTTO_ERR_MALFORMED);
  CHECK(t == NULL);
  /* The braid record's length beyond its bound. */
  memcpy(big, rec, n);
  for (i = 0; i + 4 <= n; i++)
    if (memcmp(big + i, "SPQB", 4) == 0) break;
  NEED(i > 4 && i + 4 <= n);
  big[i - 3] = 0x01; /* length += 65,536 */
  CHECK_RC(sotto_session_deserialize(&t, big, n), SOTTO_ERR_TOO_LARGE);
  /* The untouched record still loads. */
  CHECK_RC(sotto_session_deserialize(&t, rec, n), 0);
  CHECK(sotto_session_has_spqr(t) == 1);
  sotto_session_free(t);
  sotto__spqr_chain_clear(&c);
  free(cr);
  free(big);
  free(rec);
  sotto_session_free(sa);
}

int main(void) {
  static struct party A, B;
  struct sotto_bundle b;
  struct sotto_session *s = NULL;
  REQUIRE(sotto_init() == 0);
  conversation(1);
  conversation(2);
  conversation(0);
  no_downgrade();
  addresses();
  record_bounds();
  /* SPQR needs PQXDH: a bundle without a KEM pre-key is a downgrade even in
   * the X3DH interop mode. */
  REQUIRE(party_init(&A) == 0 && party_init(&B) == 0 && party_add_spk(&B, 1) == 0);
  REQUIRE(party_bundle(&B, 1, 0, &b) == 0 && sotto_session_new(&s) == 0);
  CHECK_RC(sotto_session_init_from_bundle_ex(s, &A.id, &b, SOTTO_INIT_SPQR), SOTTO_ERR_DOWNGRADE);
  CHECK_RC(sotto_session_init_from_bundle_ex(s, &A.id, &b, SOTTO_INIT_SPQR | SOTTO_INIT_ALLOW_X3DH),
           SOTTO_ERR_DOWNGRADE);
  CHECK_RC(sotto_session_init_from_bundle_ex(s, &A.id, &b, 0x80), SOTTO_ERR_USAGE);
  CHECK(!sotto_session_has_state(s));
  sotto_session_free(s);
  return test_done(__FILE__);
}

/* SPDX-License-Identifier: Apache-2.0 */
/* test_interop_session.c: libsotto against libsignal-protocol-c 2.3.3 (an
 * independent implementation), both directions: session setup from each
 * side's bundle with and without a one-time pre-key, long chains, ping-pong,
 * out-of-order and late messages, the 2000-message gap limit, and tampering
 * and replays rejected the same way by both. */
#include <sotto/keys.h>
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "party.h"
#include "sigc.h"
#include "testutil.h"

#define CAP 4096
#define SG_DUPLICATE (-1001)

struct msg {
  int type;
  size_t len;
  uint8_t b[CAP];
};

/* sotto side of a conversation with the libsignal user `lib`. */
struct sotto_side {
  struct party p;
  struct sotto_session *s;
};

static void to_sotto_bundle(const struct sigc_bundle *in, struct sotto_bundle *out) {
  memset(out, 0, sizeof *out);
  out->registration_id = in->registration_id;
  out->device_id = in->device_id;
  memcpy(out->identity_key, in->identity + 1, 32);
  out->signed_prekey_id = in->spk_id;
  memcpy(out->signed_prekey, in->spk + 1, 32);
  memcpy(out->signed_prekey_sig, in->spk_sig, 64);
  out->has_one_time_prekey = in->has_opk;
  out->one_time_prekey_id = in->opk_id;
  memcpy(out->one_time_prekey, in->opk + 1, 32);
}

static void to_sigc_bundle(const struct sotto_bundle *in, struct sigc_bundle *out) {
  memset(out, 0, sizeof *out);
  out->registration_id = in->registration_id;
  out->device_id = in->device_id;
  sotto_pubkey_serialize(out->identity, in->identity_key);
  out->spk_id = in->signed_prekey_id;
  sotto_pubkey_serialize(out->spk, in->signed_prekey);
  memcpy(out->spk_sig, in->signed_prekey_sig, 64);
  out->has_opk = in->has_one_time_prekey;
  out->opk_id = in->one_time_prekey_id;
  if (in->has_one_time_prekey) sotto_pubkey_serialize(out->opk, in->one_time_prekey);
}

/* sotto -> libsignal */
static int s_send(struct sotto_side *me, struct msg *m, const char *text) {
  return sotto_session_encrypt(me->s, m->b, sizeof m->b, &m->len, &m->type, (const uint8_t *)text, strlen(text));
}

static int lib_recv(struct sigc_user *lib, const struct msg *m, const char *text) {
  uint8_t *pt = NULL;
  size_t n = 0;
  int rc = sigc_decrypt(lib, "sotto", 1, m->type, m->b, m->len, &pt, &n);
  if (rc == 0 && (n != strlen(text) || memcmp(pt, text, n) != 0)) rc = -999;
  free(pt);
  return rc;
}

/* libsignal -> sotto */
static int lib_send(struct sigc_user *lib, struct msg *m, const char *text) {
  uint8_t *out = NULL;
  size_t n = 0;
  int rc = sigc_encrypt(lib, "sotto", 1, (const uint8_t *)text, strlen(text), &m->type, &out, &n);
  if (rc == 0) {
    if (n > sizeof m->b) rc = -998;
    else memcpy(m->b, out, n), m->len = n;
  }
  free(out);
  return rc;
}

static int s_recv(struct sotto_side *me, const struct msg *m, const char *text) {
  uint8_t pt[CAP];
  size_t n;
  int rc = sotto_session_decrypt(me->s, &me->p.id, &me->p.store, m->type, m->b, m->len, pt, sizeof pt, &n);
  if (rc == 0 && (n != strlen(text) || memcmp(pt, text, n) != 0)) rc = -999;
  return rc;
}

/* A conversation between a fresh sotto party and a fresh libsignal user.
 * sotto_initiates: who processes whose bundle. */
static void start(struct sotto_side *me, struct sigc_user **lib, int sotto_initiates, int with_opk) {
  /* libsignal-protocol-c speaks version 3 only: sotto needs the explicit
   * interop mode to build a session from its bundle (no KEM pre-key). */
  CHECK_RC(party_init(&me->p), 0);
  CHECK_RC(sotto_session_new(&me->s), 0);
  *lib = sigc_user_new("lib", 1);
  CHECK(*lib != NULL);
  if (sotto_initiates) {
    struct sigc_bundle lb;
    struct sotto_bundle sb;
    CHECK_RC(sigc_make_bundle(*lib, 5, with_opk ? 77 : 0, &lb), 0);
    to_sotto_bundle(&lb, &sb);
    CHECK_RC(sotto_session_init_from_bundle(me->s, &me->p.id, &sb), SOTTO_ERR_DOWNGRADE);
    CHECK(!sotto_session_has_state(me->s));
    CHECK_RC(sotto_session_init_from_bundle_ex(me->s, &me->p.id, &sb, SOTTO_INIT_ALLOW_X3DH), 0);
  } else {
    struct sotto_bundle sb;
    struct sigc_bundle lb;
    CHECK_RC(party_add_spk(&me->p, 5), 0);
    if (with_opk) CHECK_RC(party_add_opk(&me->p, 77), 0);
    CHECK_RC(party_bundle(&me->p, 5, with_opk ? 77 : 0, &sb), 0);
    to_sigc_bundle(&sb, &lb);
    CHECK_RC(sigc_process_bundle(*lib, "sotto", 1, &lb), 0);
  }
}

static void finish(struct sotto_side *me, struct sigc_user *lib) {
  sotto_session_free(me->s);
  sigc_user_free(lib);
}

static void test_setup_and_talk(int sotto_initiates, int with_opk) {
  struct sotto_side me;
  struct sigc_user *lib;
  static struct msg m;
  char t[64];

  start(&me, &lib, sotto_initiates, with_opk);
  if (sotto_initiates) {
    CHECK_RC(s_send(&me, &m, "sotto first"), 0);
    CHECK(m.type == SOTTO_MSG_PREKEY);
    CHECK_RC(lib_recv(lib, &m, "sotto first"), 0);
    if (with_opk) CHECK(!sigc_has_opk(lib, 77));
    CHECK_RC(s_send(&me, &m, "sotto second, still prekey"), 0);
    CHECK(m.type == SOTTO_MSG_PREKEY);
    CHECK_RC(lib_recv(lib, &m, "sotto second, still prekey"), 0);
    CHECK_RC(lib_send(lib, &m, "lib reply"), 0);
    CHECK(m.type == SOTTO_MSG_SIGNAL);
    CHECK_RC(s_recv(&me, &m, "lib reply"), 0);
  } else {
    unsigned removed = me.p.opk_removed;
    CHECK_RC(lib_send(lib, &m, "lib first"), 0);
    CHECK(m.type == SOTTO_MSG_PREKEY);
    CHECK_RC(s_recv(&me, &m, "lib first"), 0);
    CHECK(me.p.opk_removed == removed + (with_opk ? 1 : 0));
    CHECK_RC(lib_send(lib, &m, "lib second, still prekey"), 0);
    CHECK(m.type == SOTTO_MSG_PREKEY);
    CHECK_RC(s_recv(&me, &m, "lib second, still prekey"), 0);
    CHECK_RC(s_send(&me, &m, "sotto reply"), 0);
    CHECK(m.type == SOTTO_MSG_SIGNAL);
    CHECK_RC(lib_recv(lib, &m, "sotto reply"), 0);
  }
  /* Ping-pong: a DH ratchet step every message, both ways. */
  for (int i = 0; i < 100; i++) {
    snprintf(t, sizeof t, "ping %d", i);
    CHECK_RC(s_send(&me, &m, t), 0);
    CHECK(m.type == SOTTO_MSG_SIGNAL);
    CHECK_RC(lib_recv(lib, &m, t), 0);
    snprintf(t, sizeof t, "pong %d", i);
    CHECK_RC(lib_send(lib, &m, t), 0);
    CHECK_RC(s_recv(&me, &m, t), 0);
  }
  /* Long chains in each direction. */
  for (int i = 0; i < 1000; i++) {
    snprintf(t, sizeof t, "chain s->l %d", i);
    CHECK_RC(s_send(&me, &m, t), 0);
    CHECK_RC(lib_recv(lib, &m, t), 0);
  }
  for (int i = 0; i < 1000; i++) {
    snprintf(t, sizeof t, "chain l->s %d", i);
    CHECK_RC(lib_send(lib, &m, t), 0);
    CHECK_RC(s_recv(&me, &m, t), 0);
  }
  /* Empty and large plaintexts. */
  CHECK_RC(s_send(&me, &m, ""), 0);
  CHECK_RC(lib_recv(lib, &m, ""), 0);
  {
    static char big[3000];
    memset(big, 'q', sizeof big - 1);
    CHECK_RC(lib_send(lib, &m, big), 0);
    CHECK_RC(s_recv(&me, &m, big), 0);
  }
  finish(&me, lib);
}

/* Out of order (5,0,3,1,4,2) and late messages from an older chain after a
 * DH ratchet step; `sotto_receives` picks the direction. */
static void test_out_of_order(int sotto_receives) {
  static const int order[6] = {5, 0, 3, 1, 4, 2};
  struct sotto_side me;
  struct sigc_user *lib;
  static struct msg m[6], late[3], x;
  char t[32];

  start(&me, &lib, 1, 1);
  CHECK_RC(s_send(&me, &x, "hello"), 0);
  CHECK_RC(lib_recv(lib, &x, "hello"), 0);
  CHECK_RC(lib_send(lib, &x, "hi"), 0);
  CHECK_RC(s_recv(&me, &x, "hi"), 0);
  for (int i = 0; i < 6; i++) {
    snprintf(t, sizeof t, "ooo %d", i);
    CHECK_RC(sotto_receives ? lib_send(lib, &m[i], t) : s_send(&me, &m[i], t), 0);
  }
  for (int i = 0; i < 6; i++) {
    snprintf(t, sizeof t, "ooo %d", order[i]);
    CHECK_RC(sotto_receives ? s_recv(&me, &m[order[i]], t) : lib_recv(lib, &m[order[i]], t), 0);
  }
  /* Replays are rejected as duplicates by both. */
  for (int i = 0; i < 6; i++) {
    if (sotto_receives) {
      CHECK_RC(s_recv(&me, &m[i], "x"), SOTTO_ERR_DUPLICATE);
    } else {
      CHECK_RC(lib_recv(lib, &m[i], "x"), SG_DUPLICATE);
    }
  }
  for (int i = 0; i < 3; i++) {
    snprintf(t, sizeof t, "late %d", i);
    CHECK_RC(sotto_receives ? lib_send(lib, &late[i], t) : s_send(&me, &late[i], t), 0);
  }
  CHECK_RC(sotto_receives ? s_recv(&me, &late[1], "late 1") : lib_recv(lib, &late[1], "late 1"), 0);
  /* A full round trip: the receiver's next message ratchets. */
  if (sotto_receives) {
    CHECK_RC(s_send(&me, &x, "step"), 0);
    CHECK_RC(lib_recv(lib, &x, "step"), 0);
    CHECK_RC(lib_send(lib, &x, "stepped"), 0);
    CHECK_RC(s_recv(&me, &x, "stepped"), 0);
    CHECK_RC(s_recv(&me, &late[2], "late 2"), 0);
    CHECK_RC(s_recv(&me, &late[0], "late 0"), 0);
  } else {
    CHECK_RC(lib_send(lib, &x, "step"), 0);
    CHECK_RC(s_recv(&me, &x, "step"), 0);
    CHECK_RC(s_send(&me, &x, "stepped"), 0);
    CHECK_RC(lib_recv(lib, &x, "stepped"), 0);
    CHECK_RC(lib_recv(lib, &late[2], "late 2"), 0);
    CHECK_RC(lib_recv(lib, &late[0], "late 0"), 0);
  }
  finish(&me, lib);
}

/* The gap limit: exactly 2000 ahead accepted, 2001 rejected, by both; the
 * skipped messages then all open. */
static void test_gap(int sotto_receives) {
  struct sotto_side me;
  struct sigc_user *lib;
  static struct msg held[2002], x;
  char t[32];

  start(&me, &lib, 0, 0);
  CHECK_RC(lib_send(lib, &x, "hello"), 0);
  CHECK_RC(s_recv(&me, &x, "hello"), 0);
  CHECK_RC(s_send(&me, &x, "hi"), 0);
  CHECK_RC(lib_recv(lib, &x, "hi"), 0);
  for (int i = 0; i < 2002; i++) {
    snprintf(t, sizeof t, "gap %d", i);
    CHECK_RC(sotto_receives ? lib_send(lib, &held[i], t) : s_send(&me, &held[i], t), 0);
  }
  /* held[2001] is 2001 ahead of index 0: rejected. */
  if (sotto_receives) {
    uint8_t *before;
    size_t blen = sotto_session_serialized_size(me.s), n;
    before = malloc(blen);
    CHECK_RC(sotto_session_serialize(me.s, before, blen, &blen), 0);
    CHECK_RC(s_recv(&me, &held[2001], "gap 2001"), SOTTO_ERR_TOO_FAR_AHEAD);
    {
      uint8_t *after = malloc(blen);
      CHECK_RC(sotto_session_serialize(me.s, after, blen, &n), 0);
      CHECK(n == blen && memcmp(before, after, n) == 0);
      free(after);
    }
    free(before);
  } else {
    CHECK(lib_recv(lib, &held[2001], "gap 2001") < 0);
  }
  CHECK_RC(sotto_receives ? s_recv(&me, &held[2000], "gap 2000") : lib_recv(lib, &held[2000], "gap 2000"), 0);
  CHECK_RC(sotto_receives ? s_recv(&me, &held[2001], "gap 2001") : lib_recv(lib, &held[2001], "gap 2001"), 0);
  for (int i = 1999; i >= 0; i -= 7) {
    snprintf(t, sizeof t, "gap %d", i);
    CHECK_RC(sotto_receives ? s_recv(&me, &held[i], t) : lib_recv(lib, &held[i], t), 0);
  }
  finish(&me, lib);
}

/* Every single-bit flip of a real message is rejected by the receiver, and
 * its state stays as it was (the original then decrypts). */
static void test_tamper(int sotto_receives, int prekey) {
  struct sotto_side me;
  struct sigc_user *lib;
  static struct msg m, t, x;
  size_t nbits, rejected = 0, accepted_same = 0;
  struct party_key opk77;

  start(&me, &lib, !sotto_receives, 1);
  if (!prekey) {
    /* Get past the PreKey phase first. */
    if (sotto_receives) {
      CHECK_RC(lib_send(lib, &x, "a"), 0);
      CHECK_RC(s_recv(&me, &x, "a"), 0);
      CHECK_RC(s_send(&me, &x, "b"), 0);
      CHECK_RC(lib_recv(lib, &x, "b"), 0);
    } else {
      CHECK_RC(s_send(&me, &x, "a"), 0);
      CHECK_RC(lib_recv(lib, &x, "a"), 0);
      CHECK_RC(lib_send(lib, &x, "b"), 0);
      CHECK_RC(s_recv(&me, &x, "b"), 0);
    }
  }
  CHECK_RC(sotto_receives ? lib_send(lib, &m, "tamper target") : s_send(&me, &m, "tamper target"), 0);
  CHECK(m.type == (prekey ? SOTTO_MSG_PREKEY : SOTTO_MSG_SIGNAL));
  for (int k = 0; k < PARTY_MAX_KEYS; k++)
    if (me.p.opk[k].used && me.p.opk[k].id == 77) opk77 = me.p.opk[k];
  nbits = m.len * 8;
  for (size_t i = 0; i < nbits; i++) {
    int rc;
    t = m;
    t.b[i / 8] ^= (uint8_t)(1u << (i % 8));
    rc = sotto_receives ? s_recv(&me, &t, "tamper target") : lib_recv(lib, &t, "tamper target");
    if (rc < 0 && rc != -999) {
      rejected++;
    } else if (rc == 0 && prekey) {
      /* A PreKeySignalMessage has no outer MAC: a flip in the sender's
       * registration id is not detectable by anyone, and the plaintext is
       * the same. Such a success consumed nothing we check below, but it
       * did create the session: undo that for the next flip. */
      accepted_same++;
      if (sotto_receives) {
        sotto_session_free(me.s);
        CHECK_RC(sotto_session_new(&me.s), 0);
        party_restore_opk(&me.p, 77, opk77.pub, opk77.priv);
      } else {
        CHECK(sigc_delete_session(lib, "sotto", 1) >= 0);
        CHECK_RC(sigc_restore_opk(lib, 77), 0);
      }
    } else {
      CHECK(!"a flipped message decrypted to different plaintext or was accepted");
    }
  }
  /* Only registration-id bits (field 5) may be accepted, nothing else. */
  CHECK(accepted_same <= (prekey ? 24 : 0));
  CHECK(rejected + accepted_same == nbits);
  CHECK_RC(sotto_receives ? s_recv(&me, &m, "tamper target") : lib_recv(lib, &m, "tamper target"), 0);
  /* Truncations. */
  for (size_t i = 0; i < m.len; i++) {
    t = m;
    t.len = i;
    CHECK((sotto_receives ? s_recv(&me, &t, "x") : lib_recv(lib, &t, "x")) < 0);
  }
  finish(&me, lib);
}

/* The same identity keys yield byte-identical messages sizes and both sides
 * agree on identities. */
static void test_identity_and_sizes(void) {
  struct sotto_side me;
  struct sigc_user *lib;
  static struct msg m;
  uint8_t lpub[33], lpriv[32], rid[32];
  char t[101];
  memset(t, 'a', 100);
  t[100] = 0;
  start(&me, &lib, 1, 1);
  sigc_identity(lib, lpub, lpriv);
  CHECK_RC(s_send(&me, &m, t), 0);
  /* libsignal-c's PreKeySignalMessage for 100 B measured 244 B; the
   * varints of the registration and pre-key ids move it by a byte or two. */
  printf("PreKeySignalMessage for 100 B: %zu bytes\n", m.len);
  CHECK(m.len >= 240 && m.len <= 248);
  CHECK_RC(lib_recv(lib, &m, t), 0);
  CHECK_RC(sotto_session_remote_identity(me.s, rid), 0);
  CHECK(memcmp(rid, lpub + 1, 32) == 0);
  CHECK_RC(lib_send(lib, &m, t), 0);
  CHECK_RC(s_recv(&me, &m, t), 0);
  CHECK_RC(s_send(&me, &m, t), 0);
  CHECK(m.len == 162); /* SignalMessage for 100 B */
  CHECK_RC(lib_recv(lib, &m, t), 0);
  finish(&me, lib);
}

/* XEdDSA both ways: about half of libsignal's signatures carry the Edwards
 * sign bit in bit 511, so 200 of each exercise both conventions. */
static void test_signatures(void) {
  int sign_bit_set = 0;
  for (int i = 0; i < 200; i++) {
    uint8_t pub[32], priv[32], pub33[33], sig[64], msg[40];
    CHECK_RC(sotto_keypair_generate(pub, priv), 0);
    sotto_pubkey_serialize(pub33, pub);
    memset(msg, i, sizeof msg);
    CHECK_RC(sotto_sign(sig, priv, msg, sizeof msg), 0);
    CHECK(sigc_verify(pub33, msg, sizeof msg, sig) == 0);
    sig[i % 64] ^= 0x10;
    CHECK(sigc_verify(pub33, msg, sizeof msg, sig) != 0);
    CHECK(sigc_sign(priv, msg, sizeof msg, sig) == 0);
    sign_bit_set += (sig[63] & 0x80) != 0;
    CHECK_RC(sotto_verify(pub, msg, sizeof msg, sig), 0);
    msg[0] ^= 1;
    CHECK_RC(sotto_verify(pub, msg, sizeof msg, sig), SOTTO_ERR_AUTH);
  }
  CHECK(sign_bit_set > 50 && sign_bit_set < 150);
  /* Key agreement and key generation agree with libsignal's curve code. */
  for (int i = 0; i < 50; i++) {
    uint8_t a_pub[32], a_priv[32], b_pub33[33], b_priv[32], s1[32], s2[32], a_pub33[33];
    CHECK_RC(sotto_keypair_generate(a_pub, a_priv), 0);
    CHECK(sigc_keypair(b_pub33, b_priv) == 0);
    sotto_pubkey_serialize(a_pub33, a_pub);
    CHECK(sigc_agree(a_pub33, b_priv, s1) == 0);
    {
      uint8_t bp[32];
      CHECK_RC(sotto_pubkey_parse(bp, b_pub33, 33), 0);
      CHECK_RC(sotto__x25519(s2, a_priv, bp), 0);
    }
    CHECK(memcmp(s1, s2, 32) == 0);
  }
}

int main(void) {
  REQUIRE(sotto_init() == 0);
  test_signatures();
  for (int ini = 0; ini < 2; ini++)
    for (int opk = 0; opk < 2; opk++) test_setup_and_talk(ini, opk);
  test_out_of_order(1);
  test_out_of_order(0);
  test_gap(1);
  test_gap(0);
  test_tamper(1, 0);
  test_tamper(0, 0);
  test_tamper(1, 1);
  test_tamper(0, 1);
  test_identity_and_sizes();
  return test_done("interop_session");
}

/* SPDX-License-Identifier: Apache-2.0 */
/*
 * test_sigc_self: validates the libsignal-protocol-c harness (sigc.h) by
 * driving two or more libsignal-c users against each other through it.
 * If this test fails, interop failures against libsotto mean nothing.
 *
 * Covered: session setup with and without a one-time pre-key (PreKey message
 * type 3 until the first reply, OPK consumed), ping-pong, out-of-order,
 * duplicate (-1001), tampered ciphertext/MAC (error, stored record unchanged,
 * original still decrypts), snapshot/restore, untrusted identity (-1010) and
 * forgetting it, OPK restore, groups with two receivers, safety number from
 * both sides (and recomputed with libsodium), XEdDSA sign/verify, X25519
 * against libsodium, the crypto provider against known answers, and two
 * threads sharing one user.
 *
 * TEST-ONLY: links GPLv3 libsignal-protocol-c.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sigc.h"

static int g_checks;
static int g_failures;

#define CHECK(cond, ...)                                                                         \
  do {                                                                                           \
    g_checks++;                                                                                  \
    if (!(cond)) {                                                                               \
      g_failures++;                                                                              \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                            \
      fprintf(stderr, __VA_ARGS__);                                                              \
      fputc('\n', stderr);                                                                       \
    }                                                                                            \
  } while (0)

#define SG_DUPLICATE (-1001)
#define SG_INVALID_MESSAGE (-1005)
#define SG_NO_SESSION (-1008)
#define SG_UNTRUSTED (-1010)

/* A ciphertext held for later delivery. */
struct msg {
  int type;
  uint8_t *buf;
  size_t len;
};

static int encrypt_to(struct sigc_user *from, struct sigc_user *to, const char *text,
                      struct msg *m) {
  int r = sigc_encrypt(from, sigc_user_name(to), sigc_device_id(to), (const uint8_t *)text,
                       strlen(text), &m->type, &m->buf, &m->len);
  CHECK(r == 0, "encrypt %s->%s: %d %s", sigc_user_name(from), sigc_user_name(to), r,
        sigc_strerror(r));
  return r;
}

/* Decrypts m at `to` and compares with text; returns the sigc result. */
static int decrypt_from(struct sigc_user *to, struct sigc_user *from, const struct msg *m,
                        const char *text) {
  uint8_t *pt = NULL;
  size_t pt_len = 0;
  int r = sigc_decrypt(to, sigc_user_name(from), sigc_device_id(from), m->type, m->buf, m->len,
                       &pt, &pt_len);
  if (r == 0 && text != NULL) {
    CHECK(pt_len == strlen(text) && memcmp(pt, text, pt_len) == 0,
          "plaintext mismatch at %s (expected \"%s\")", sigc_user_name(to), text);
  }
  free(pt);
  return r;
}

/* Encrypts from -> to, checks the message type, decrypts and compares. */
static void send_ok(struct sigc_user *from, struct sigc_user *to, const char *text,
                    int expect_type) {
  struct msg m = {0, NULL, 0};
  int r;

  if (encrypt_to(from, to, text, &m) != 0) {
    return;
  }
  CHECK(m.type == expect_type, "%s->%s \"%s\": type %d, expected %d", sigc_user_name(from),
        sigc_user_name(to), text, m.type, expect_type);
  CHECK(m.len > 0 && m.buf[0] == 0x33, "version byte 0x%02x", m.len ? m.buf[0] : 0);
  r = decrypt_from(to, from, &m, text);
  CHECK(r == 0, "decrypt %s<-%s \"%s\": %d %s", sigc_user_name(to), sigc_user_name(from), text,
        r, sigc_strerror(r));
  free(m.buf);
}

static size_t varint_len(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

/* Length of the protobuf varint at p (0 if it runs past n bytes). */
static size_t varint_at(const uint8_t *p, size_t n) {
  size_t i;
  for (i = 0; i < n && i < 10; i++) {
    if ((p[i] & 0x80) == 0) {
      return i + 1;
    }
  }
  return 0;
}

/* Expected SignalMessage size (notes section 4.5): 0x33 || protobuf {ratchetKey 33,
 * counter, previousCounter, ciphertext} || MAC 8, for counters below 128. */
static size_t signal_msg_size(size_t pt_len) {
  size_t ct = (pt_len / 16 + 1) * 16;
  return 1 + (2 + 33) + 2 + 2 + (1 + varint_len(ct) + ct) + 8;
}

/* Expected PreKeySignalMessage size: 0x33 || {preKeyId?, baseKey, identityKey,
 * message, registrationId (the sender's), signedPreKeyId}. */
static size_t prekey_msg_size(size_t pt_len, const struct sigc_bundle *b, uint32_t sender_reg) {
  size_t s = signal_msg_size(pt_len);
  return 1 + (b->has_opk ? 1 + varint_len(b->opk_id) : 0) + (2 + 33) + (2 + 33) +
         (1 + varint_len(s) + s) + (1 + varint_len(sender_reg)) + (1 + varint_len(b->spk_id));
}

/* alice processes bob's bundle; returns 0 on success. */
static int setup(struct sigc_user *alice, struct sigc_user *bob, uint32_t spk_id, uint32_t opk_id,
                 struct sigc_bundle *b) {
  int r = sigc_make_bundle(bob, spk_id, opk_id, b);
  CHECK(r == 0, "make_bundle: %d %s", r, sigc_strerror(r));
  if (r != 0) {
    return r;
  }
  CHECK(b->has_opk == (opk_id != 0), "has_opk %d", b->has_opk);
  CHECK(b->identity[0] == 0x05 && b->spk[0] == 0x05, "key type bytes");
  r = sigc_process_bundle(alice, sigc_user_name(bob), sigc_device_id(bob), b);
  CHECK(r == 0, "process_bundle: %d %s", r, sigc_strerror(r));
  return r;
}

static void test_setup_with_opk(void) {
  struct sigc_user *a = sigc_user_new("alice", 1);
  struct sigc_user *b = sigc_user_new("bob", 1);
  struct sigc_bundle bundle;
  struct msg m1 = {0, NULL, 0}, m2 = {0, NULL, 0};
  int r;

  CHECK(a != NULL && b != NULL, "user_new");
  if (a == NULL || b == NULL) {
    goto out;
  }
  CHECK(sigc_registration_id(a) >= 1 && sigc_registration_id(a) <= 16380, "reg id %u",
        (unsigned)sigc_registration_id(a));
  CHECK(!sigc_has_session(a, "bob", 1), "session before setup");
  r = sigc_encrypt(a, "bob", 1, (const uint8_t *)"x", 1, &m1.type, &m1.buf, &m1.len);
  CHECK(r == SG_NO_SESSION, "encrypt without session: %d", r);
  if (setup(a, b, 7, 100, &bundle) != 0) {
    goto out;
  }
  CHECK(bundle.registration_id == sigc_registration_id(b) && bundle.device_id == 1 &&
            bundle.spk_id == 7 && bundle.opk_id == 100,
        "bundle ids");
  CHECK(sigc_has_session(a, "bob", 1), "no session after process_bundle");
  CHECK(sigc_has_opk(b, 100), "OPK not stored");

  /* Two messages before any reply: both PreKeySignalMessages, same session. */
  encrypt_to(a, b, "hello bob", &m1);
  encrypt_to(a, b, "second before reply", &m2);
  CHECK(m1.type == SIGC_TYPE_PREKEY && m2.type == SIGC_TYPE_PREKEY, "types %d %d", m1.type,
        m2.type);
  CHECK(m1.len > 0 && m1.buf[0] == 0x33, "PreKey version byte");
  CHECK(m1.len == prekey_msg_size(strlen("hello bob"), &bundle, sigc_registration_id(a)),
        "PreKey size %zu, expected %zu", m1.len,
        prekey_msg_size(strlen("hello bob"), &bundle, sigc_registration_id(a)));
  r = decrypt_from(b, a, &m1, "hello bob");
  CHECK(r == 0, "bob decrypt prekey #1: %d %s", r, sigc_strerror(r));
  CHECK(!sigc_has_opk(b, 100), "OPK not consumed by the library");
  r = decrypt_from(b, a, &m2, "second before reply");
  CHECK(r == 0, "bob decrypt prekey #2 (reused session): %d %s", r, sigc_strerror(r));
  r = decrypt_from(b, a, &m1, NULL);
  CHECK(r == SG_DUPLICATE, "replayed PreKey message: %d %s", r, sigc_strerror(r));

  /* Reply switches alice to SignalMessages. */
  send_ok(b, a, "hi alice", SIGC_TYPE_SIGNAL);
  send_ok(a, b, "now a SignalMessage", SIGC_TYPE_SIGNAL);
  CHECK(sigc_session_record_size(a, "bob", 1) > 0, "record size");

  /* 100-byte plaintexts give the sizes measured in the notes (PreKey 244, Signal 162). */
  {
    uint8_t pt[100];
    struct msg m3 = {0, NULL, 0};
    memset(pt, 'p', sizeof(pt));
    r = sigc_encrypt(a, "bob", 1, pt, sizeof(pt), &m3.type, &m3.buf, &m3.len);
    CHECK(r == 0 && m3.type == SIGC_TYPE_SIGNAL && m3.len == 162 &&
              m3.len == signal_msg_size(sizeof(pt)),
          "100 B SignalMessage: %zu", m3.len);
    free(m3.buf);
  }

  CHECK(sigc_delete_session(a, "bob", 1) == 1, "delete session");
  CHECK(!sigc_has_session(a, "bob", 1) && sigc_session_record_size(a, "bob", 1) == 0,
        "session after delete");
  CHECK(sigc_delete_session(a, "bob", 1) == 0, "delete twice");
out:
  free(m1.buf);
  free(m2.buf);
  sigc_user_free(a);
  sigc_user_free(b);
}


/* Makes two users, sets up u1 -> u2 and gets one reply through, so that both
 * sides send SignalMessages afterwards. Returns 0 on success. */
static int pair_up(struct sigc_user *u1, struct sigc_user *u2, uint32_t opk_id) {
  struct sigc_bundle b;
  int before = g_failures;

  if (u1 == NULL || u2 == NULL) {
    CHECK(0, "user_new");
    return -1;
  }
  if (setup(u1, u2, 1, opk_id, &b) != 0) {
    return -1;
  }
  send_ok(u1, u2, "setup", SIGC_TYPE_PREKEY);
  send_ok(u2, u1, "setup reply", SIGC_TYPE_SIGNAL);
  return g_failures == before ? 0 : -1;
}

static void test_setup_without_opk(void) {
  struct sigc_user *c = sigc_user_new("carol", 2);
  struct sigc_user *d = sigc_user_new("dave", 3);
  struct sigc_bundle bundle;
  uint8_t pt[100];
  struct msg m = {0, NULL, 0};
  int r;

  if (c == NULL || d == NULL) {
    CHECK(0, "user_new");
    goto out;
  }
  if (setup(c, d, 9, 0, &bundle) != 0) {
    goto out;
  }
  memset(pt, 'q', sizeof(pt));
  r = sigc_encrypt(c, "dave", 3, pt, sizeof(pt), &m.type, &m.buf, &m.len);
  CHECK(r == 0 && m.type == SIGC_TYPE_PREKEY, "encrypt: %d type %d", r, m.type);
  CHECK(m.len == prekey_msg_size(sizeof(pt), &bundle, sigc_registration_id(c)),
        "PreKey size without OPK %zu, expected %zu", m.len,
        prekey_msg_size(sizeof(pt), &bundle, sigc_registration_id(c)));
  if (r == 0) {
    uint8_t *out = NULL;
    size_t out_len = 0;
    r = sigc_decrypt(d, "carol", 2, m.type, m.buf, m.len, &out, &out_len);
    CHECK(r == 0 && out_len == sizeof(pt) && memcmp(out, pt, sizeof(pt)) == 0,
          "decrypt without OPK: %d %s", r, sigc_strerror(r));
    free(out);
  }
  send_ok(d, c, "reply without OPK", SIGC_TYPE_SIGNAL);
  send_ok(c, d, "after reply", SIGC_TYPE_SIGNAL);
out:
  free(m.buf);
  sigc_user_free(c);
  sigc_user_free(d);
}

static void test_ping_pong(void) {
  struct sigc_user *a = sigc_user_new("alice", 1);
  struct sigc_user *b = sigc_user_new("bob", 1);
  char text[64];
  int i;

  if (pair_up(a, b, 11) == 0) {
    /* Every message answers the previous one: each triggers a DH ratchet step. */
    for (i = 0; i < 40; i++) {
      snprintf(text, sizeof(text), "ping-pong %d", i);
      if (i % 2 == 0) {
        send_ok(a, b, text, SIGC_TYPE_SIGNAL);
      } else {
        send_ok(b, a, text, SIGC_TYPE_SIGNAL);
      }
    }
    /* Empty plaintext is a valid message too. */
    send_ok(a, b, "", SIGC_TYPE_SIGNAL);
  }
  sigc_user_free(a);
  sigc_user_free(b);
}

static void test_out_of_order_and_duplicate(void) {
  static const int order[6] = {5, 0, 3, 1, 4, 2};
  struct sigc_user *a = sigc_user_new("alice", 1);
  struct sigc_user *b = sigc_user_new("bob", 1);
  struct msg m[6], late = {0, NULL, 0}, fresh = {0, NULL, 0};
  char text[6][32];
  int i, r;

  memset(m, 0, sizeof(m));
  if (pair_up(a, b, 12) != 0) {
    goto out;
  }
  for (i = 0; i < 6; i++) {
    snprintf(text[i], sizeof(text[i]), "in chain #%d", i);
    encrypt_to(a, b, text[i], &m[i]);
  }
  for (i = 0; i < 6; i++) {
    r = decrypt_from(b, a, &m[order[i]], text[order[i]]);
    CHECK(r == 0, "out-of-order message %d: %d %s", order[i], r, sigc_strerror(r));
  }
  for (i = 0; i < 6; i++) {
    r = decrypt_from(b, a, &m[i], NULL);
    CHECK(r == SG_DUPLICATE, "replay of message %d: %d %s", i, r, sigc_strerror(r));
  }

  /* A message from an older sending chain arrives after a DH ratchet step. */
  encrypt_to(a, b, "late, old chain", &late);
  send_ok(b, a, "ratchet please", SIGC_TYPE_SIGNAL);
  encrypt_to(a, b, "new chain", &fresh);
  r = decrypt_from(b, a, &fresh, "new chain");
  CHECK(r == 0, "new chain: %d", r);
  r = decrypt_from(b, a, &late, "late, old chain");
  CHECK(r == 0, "late message from old chain: %d %s", r, sigc_strerror(r));
  r = decrypt_from(b, a, &late, NULL);
  CHECK(r == SG_DUPLICATE, "replay of late message: %d", r);
out:
  for (i = 0; i < 6; i++) {
    free(m[i].buf);
  }
  free(late.buf);
  free(fresh.buf);
  sigc_user_free(a);
  sigc_user_free(b);
}

/* Decrypts a modified copy of m and checks it fails without touching bob's record. */
static void expect_rejected(struct sigc_user *b, struct sigc_user *a, int type,
                            const uint8_t *buf, size_t len, const char *what) {
  uint8_t *before = NULL, *after = NULL, *pt = NULL;
  size_t before_len = 0, after_len = 0, pt_len = 0;
  int had = sigc_has_session(b, sigc_user_name(a), sigc_device_id(a));
  int r;

  if (had) {
    CHECK(sigc_session_snapshot(b, sigc_user_name(a), sigc_device_id(a), &before, &before_len) ==
              0,
          "snapshot before %s", what);
  }
  r = sigc_decrypt(b, sigc_user_name(a), sigc_device_id(a), type, buf, len, &pt, &pt_len);
  CHECK(r < 0, "%s accepted", what);
  CHECK(pt == NULL, "%s: plaintext returned on error", what);
  free(pt);
  CHECK(sigc_has_session(b, sigc_user_name(a), sigc_device_id(a)) == had,
        "%s changed session existence", what);
  if (had) {
    CHECK(sigc_session_snapshot(b, sigc_user_name(a), sigc_device_id(a), &after, &after_len) ==
              0,
          "snapshot after %s", what);
    CHECK(after_len == before_len && memcmp(before, after, before_len) == 0,
          "%s changed the stored session record", what);
  }
  free(before);
  free(after);
}

static void test_tamper_and_snapshot(void) {
  struct sigc_user *a = sigc_user_new("alice", 1);
  struct sigc_user *b = sigc_user_new("bob", 1);
  struct sigc_bundle bundle;
  struct msg m = {0, NULL, 0}, m2 = {0, NULL, 0}, pk = {0, NULL, 0};
  uint8_t *copy = NULL, *snap = NULL, *pt = NULL;
  size_t snap_len = 0, pt_len = 0;
  int r;

  if (a == NULL || b == NULL) {
    CHECK(0, "user_new");
    goto out;
  }
  /* A tampered first PreKey message must neither create a session nor use up the OPK. */
  if (setup(a, b, 3, 33, &bundle) != 0) {
    goto out;
  }
  encrypt_to(a, b, "first contact", &pk);
  copy = malloc(pk.len);
  if (copy == NULL || pk.buf == NULL) {
    CHECK(0, "malloc");
    goto out;
  }
  memcpy(copy, pk.buf, pk.len);
  copy[pk.len - 20] ^= 0x01; /* inner SignalMessage: last ciphertext block, before the MAC */
  expect_rejected(b, a, SIGC_TYPE_PREKEY, copy, pk.len, "tampered PreKey message");
  CHECK(sigc_has_opk(b, 33), "OPK consumed by a rejected message");
  expect_rejected(b, a, SIGC_TYPE_PREKEY, pk.buf, pk.len - 1, "truncated PreKey message");
  expect_rejected(b, a, SIGC_TYPE_SIGNAL, pk.buf, pk.len, "PreKey message as type 2");
  r = decrypt_from(b, a, &pk, "first contact");
  CHECK(r == 0, "original PreKey message after tampered copies: %d %s", r, sigc_strerror(r));
  send_ok(b, a, "reply", SIGC_TYPE_SIGNAL);
  free(copy);
  copy = NULL;

  encrypt_to(a, b, "protect me", &m);
  copy = malloc(m.len);
  if (copy == NULL || m.buf == NULL) {
    CHECK(0, "malloc");
    goto out;
  }
  memcpy(copy, m.buf, m.len);
  copy[m.len - 8 - 5] ^= 0x80; /* ciphertext */
  expect_rejected(b, a, SIGC_TYPE_SIGNAL, copy, m.len, "flipped ciphertext bit");
  r = sigc_decrypt(b, "alice", 1, SIGC_TYPE_SIGNAL, copy, m.len, &pt, &pt_len);
  CHECK(r == SG_INVALID_MESSAGE, "flipped ciphertext error %d %s", r, sigc_strerror(r));
  free(pt);
  pt = NULL;
  memcpy(copy, m.buf, m.len);
  copy[m.len - 1] ^= 0x01; /* MAC */
  expect_rejected(b, a, SIGC_TYPE_SIGNAL, copy, m.len, "flipped MAC bit");
  r = sigc_decrypt(b, "alice", 1, SIGC_TYPE_SIGNAL, copy, m.len, &pt, &pt_len);
  CHECK(r == SG_INVALID_MESSAGE, "flipped MAC error %d %s", r, sigc_strerror(r));
  free(pt);
  pt = NULL;
  memcpy(copy, m.buf, m.len);
  copy[0] = 0x43; /* unknown version */
  expect_rejected(b, a, SIGC_TYPE_SIGNAL, copy, m.len, "version 4 byte");
  expect_rejected(b, a, SIGC_TYPE_SIGNAL, m.buf, 9, "truncated SignalMessage");
  expect_rejected(b, a, SIGC_TYPE_PREKEY, m.buf, m.len, "SignalMessage as type 3");
  r = decrypt_from(b, a, &m, "protect me");
  CHECK(r == 0, "original after tampered copies: %d %s", r, sigc_strerror(r));

  /* Snapshot / restore: a restored record accepts the same message again. */
  encrypt_to(a, b, "replay after restore", &m2);
  r = sigc_session_snapshot(b, "alice", 1, &snap, &snap_len);
  CHECK(r == 0 && snap_len == sigc_session_record_size(b, "alice", 1), "snapshot: %d", r);
  r = decrypt_from(b, a, &m2, "replay after restore");
  CHECK(r == 0, "decrypt before restore: %d", r);
  r = decrypt_from(b, a, &m2, NULL);
  CHECK(r == SG_DUPLICATE, "duplicate before restore: %d", r);
  CHECK(sigc_session_restore(b, "alice", 1, snap, snap_len) == 0, "restore");
  r = decrypt_from(b, a, &m2, "replay after restore");
  CHECK(r == 0, "decrypt after restore: %d %s", r, sigc_strerror(r));
  CHECK(sigc_session_restore(b, "alice", 1, NULL, 0) == 0 && !sigc_has_session(b, "alice", 1),
        "restore(NULL) deletes");
  r = decrypt_from(b, a, &m2, NULL);
  CHECK(r == SG_NO_SESSION, "decrypt with no session: %d %s", r, sigc_strerror(r));
  {
    uint8_t *none = (uint8_t *)&r;
    CHECK(sigc_session_snapshot(b, "alice", 1, &none, &snap_len) == SIGC_ERR_NOT_FOUND &&
              none == NULL,
          "snapshot without session");
  }
out:
  free(copy);
  free(snap);
  free(m.buf);
  free(m2.buf);
  free(pk.buf);
  sigc_user_free(a);
  sigc_user_free(b);
}

static void test_identity_trust(void) {
  struct sigc_user *a = sigc_user_new("alice", 1);
  struct sigc_user *b = sigc_user_new("bob", 1);
  struct sigc_user *b2 = sigc_user_new("bob", 1);    /* bob re-installed: new identity */
  struct sigc_user *mal = sigc_user_new("alice", 1); /* impostor with alice's address */
  struct sigc_bundle bundle;
  struct msg m = {0, NULL, 0};
  uint8_t key[33], bkey[33], b2key[33];
  int r;

  if (pair_up(a, b, 21) != 0 || b2 == NULL || mal == NULL) {
    CHECK(b2 != NULL && mal != NULL, "user_new");
    goto out;
  }
  sigc_identity(b, bkey, NULL);
  sigc_identity(b2, b2key, NULL);
  CHECK(sigc_remote_identity(a, "bob", 1, key) == 0 && memcmp(key, bkey, 33) == 0,
        "saved identity of bob");
  CHECK(sigc_remote_identity(a, "bob", 2, key) == SIGC_ERR_NOT_FOUND, "unknown device");

  /* Changed identity for a known address: untrusted. */
  CHECK(sigc_make_bundle(b2, 1, 22, &bundle) == 0, "bundle b2");
  r = sigc_process_bundle(a, "bob", 1, &bundle);
  CHECK(r == SG_UNTRUSTED, "changed identity: %d %s", r, sigc_strerror(r));
  send_ok(a, b, "old session still works", SIGC_TYPE_SIGNAL);

  /* Accepting the new key: forget, then TOFU again. */
  CHECK(sigc_forget_identity(a, "bob", 1) == 1, "forget");
  r = sigc_process_bundle(a, "bob", 1, &bundle);
  CHECK(r == 0, "after forget: %d %s", r, sigc_strerror(r));
  CHECK(sigc_remote_identity(a, "bob", 1, key) == 0 && memcmp(key, b2key, 33) == 0,
        "new identity saved");
  send_ok(a, b2, "to the new bob", SIGC_TYPE_PREKEY);

  /* A PreKey message claiming alice's address with another identity key. */
  CHECK(sigc_make_bundle(b, 2, 23, &bundle) == 0, "bundle b");
  CHECK(sigc_process_bundle(mal, "bob", 1, &bundle) == 0, "impostor setup");
  if (encrypt_to(mal, b, "i am alice", &m) == 0) {
    r = decrypt_from(b, mal, &m, NULL);
    CHECK(r == SG_UNTRUSTED, "impostor PreKey message: %d %s", r, sigc_strerror(r));
  }
  CHECK(sigc_has_opk(b, 23), "OPK consumed by an untrusted message");
out:
  free(m.buf);
  sigc_user_free(a);
  sigc_user_free(b);
  sigc_user_free(b2);
  sigc_user_free(mal);
}

static void test_imported_identity(void) {
  uint8_t pub[33], priv[32], pub2[33], priv2[32], got_pub[33], got_priv[32];
  struct sigc_user *u = NULL, *bad = NULL, *peer = sigc_user_new("peer", 5);

  CHECK(sigc_keypair(pub, priv) == 0 && sigc_keypair(pub2, priv2) == 0, "keypair");
  u = sigc_user_new_with_identity("imported", 4, pub, priv, 4242);
  CHECK(u != NULL, "new_with_identity");
  bad = sigc_user_new_with_identity("bad", 4, pub, priv2, 1);
  CHECK(bad == NULL, "mismatched key pair accepted");
  if (u != NULL) {
    sigc_identity(u, got_pub, got_priv);
    CHECK(memcmp(got_pub, pub, 33) == 0 && memcmp(got_priv, priv, 32) == 0, "identity copy");
    CHECK(sigc_registration_id(u) == 4242, "registration id %u",
          (unsigned)sigc_registration_id(u));
    if (pair_up(peer, u, 77) == 0) {
      uint8_t key[33];
      CHECK(sigc_remote_identity(peer, "imported", 4, key) == 0 && memcmp(key, pub, 33) == 0,
            "peer saw the imported identity");
      send_ok(u, peer, "from an imported identity", SIGC_TYPE_SIGNAL);
    }
  }
  sodium_memzero(priv, sizeof(priv));
  sodium_memzero(priv2, sizeof(priv2));
  sigc_user_free(u);
  sigc_user_free(bad);
  sigc_user_free(peer);
}

/* Names sharing a prefix and several devices per name must not collide. */
static void test_addresses(void) {
  struct sigc_user *a = sigc_user_new("alice", 1);
  struct sigc_user *b1 = sigc_user_new("bob", 1);
  struct sigc_user *b2 = sigc_user_new("bob", 2);
  struct sigc_user *bb = sigc_user_new("bobby", 1);

  if (pair_up(a, b1, 31) == 0 && pair_up(a, b2, 32) == 0 && pair_up(a, bb, 33) == 0) {
    send_ok(a, b1, "to bob.1", SIGC_TYPE_SIGNAL);
    send_ok(a, b2, "to bob.2", SIGC_TYPE_SIGNAL);
    send_ok(a, bb, "to bobby.1", SIGC_TYPE_SIGNAL);
    send_ok(b2, a, "from bob.2", SIGC_TYPE_SIGNAL);
    CHECK(sigc_delete_session(a, "bob", 2) == 1, "delete bob.2");
    CHECK(sigc_has_session(a, "bob", 1) && sigc_has_session(a, "bobby", 1) &&
              !sigc_has_session(a, "bob", 2),
          "only bob.2 deleted");
    send_ok(a, b1, "bob.1 unaffected", SIGC_TYPE_SIGNAL);
  }
  sigc_user_free(a);
  sigc_user_free(b1);
  sigc_user_free(b2);
  sigc_user_free(bb);
}

/* The repeated-setup pattern of the benchmarks: re-store the OPK, delete both
 * sessions, process the same bundle again. */
static void test_restore_opk(void) {
  struct sigc_user *a = sigc_user_new("alice", 1);
  struct sigc_user *b = sigc_user_new("bob", 1);
  struct sigc_user *e = sigc_user_new("erin", 1);
  struct sigc_bundle bundle;
  int i, r;

  if (a == NULL || b == NULL || e == NULL) {
    CHECK(0, "user_new");
    goto out;
  }
  CHECK(sigc_make_bundle(b, 1, 5, &bundle) == 0, "bundle");
  CHECK(sigc_restore_opk(b, 999) == SIGC_ERR_NOT_FOUND, "restore of unknown OPK");
  for (i = 0; i < 3; i++) {
    r = sigc_process_bundle(a, "bob", 1, &bundle);
    CHECK(r == 0, "round %d process: %d %s", i, r, sigc_strerror(r));
    send_ok(a, b, "repeated setup", SIGC_TYPE_PREKEY);
    CHECK(!sigc_has_opk(b, 5), "round %d: OPK not consumed", i);
    CHECK(sigc_restore_opk(b, 5) == 0 && sigc_has_opk(b, 5), "round %d: restore", i);
    CHECK(sigc_delete_session(a, "bob", 1) == 1 && sigc_delete_session(b, "alice", 1) == 1,
          "round %d: delete sessions", i);
  }
  /* Another user can use the restored OPK from the same bundle. */
  CHECK(sigc_process_bundle(e, "bob", 1, &bundle) == 0, "erin process");
  send_ok(e, b, "erin uses the restored OPK", SIGC_TYPE_PREKEY);
  send_ok(b, e, "hi erin", SIGC_TYPE_SIGNAL);
out:
  sigc_user_free(a);
  sigc_user_free(b);
  sigc_user_free(e);
}

static int group_decrypt_ok(struct sigc_user *u, const char *group, struct sigc_user *sender,
                            const struct msg *m, const char *text) {
  uint8_t *pt = NULL;
  size_t pt_len = 0;
  int r = sigc_group_decrypt(u, group, sigc_user_name(sender), sigc_device_id(sender), m->buf,
                             m->len, &pt, &pt_len);
  if (r == 0 && text != NULL) {
    CHECK(pt_len == strlen(text) && memcmp(pt, text, pt_len) == 0, "group plaintext at %s",
          sigc_user_name(u));
  }
  free(pt);
  return r;
}

static void test_group(void) {
  static const int order[5] = {4, 0, 2, 1, 3};
  struct sigc_user *a = sigc_user_new("alice", 1);
  struct sigc_user *b = sigc_user_new("bob", 1);
  struct sigc_user *c = sigc_user_new("carol", 7);
  struct msg m[5], big = {0, NULL, 0}, bm = {0, NULL, 0};
  uint8_t *skdm = NULL, *skdm_b = NULL, *copy = NULL, *pt = NULL;
  size_t skdm_len = 0, skdm_b_len = 0, pt_len = 0;
  char text[5][32];
  uint8_t hundred[100];
  int i, r;

  memset(m, 0, sizeof(m));
  if (a == NULL || b == NULL || c == NULL) {
    CHECK(0, "user_new");
    goto out;
  }
  r = sigc_group_create(a, "g1", &skdm, &skdm_len);
  CHECK(r == 0, "group_create: %d %s", r, sigc_strerror(r));
  if (r != 0) {
    goto out;
  }
  /* 0x33 || {1 id (random 31-bit varint), 2 iteration 0, 3 chainKey 32, 4 signingKey 33}:
   * 73 bytes + the id's varint, 77-78 in practice. */
  CHECK(skdm[0] == 0x33 && skdm_len > 2 && skdm[1] == 0x08 &&
            skdm_len == 73 + varint_at(skdm + 2, skdm_len - 2),
        "SKDM %zu bytes, starts 0x%02x 0x%02x", skdm_len, skdm[0], skdm[1]);
  CHECK(sigc_group_process(b, "g1", "alice", 1, skdm, skdm_len) == 0, "bob process SKDM");
  CHECK(sigc_group_process(c, "g1", "alice", 1, skdm, skdm_len) == 0, "carol process SKDM");
  CHECK(sigc_group_record_size(b, "g1", "alice", 1) > 0, "bob sender-key record");
  CHECK(sigc_group_record_size(b, "g1", "alice", 2) == 0 &&
            sigc_group_record_size(b, "g2", "alice", 1) == 0,
        "record keyed by group and device");

  for (i = 0; i < 5; i++) {
    snprintf(text[i], sizeof(text[i]), "group message %d", i);
    r = sigc_group_encrypt(a, "g1", (const uint8_t *)text[i], strlen(text[i]), &m[i].buf,
                           &m[i].len);
    CHECK(r == 0, "group encrypt %d: %d %s", i, r, sigc_strerror(r));
    if (r != 0) {
      goto out;
    }
  }
  for (i = 0; i < 5; i++) {
    r = group_decrypt_ok(b, "g1", a, &m[i], text[i]);
    CHECK(r == 0, "bob group decrypt %d: %d %s", i, r, sigc_strerror(r));
  }
  for (i = 0; i < 5; i++) {
    r = group_decrypt_ok(c, "g1", a, &m[order[i]], text[order[i]]);
    CHECK(r == 0, "carol out-of-order group decrypt %d: %d %s", order[i], r, sigc_strerror(r));
  }
  r = group_decrypt_ok(b, "g1", a, &m[2], NULL);
  CHECK(r == SG_DUPLICATE, "group replay: %d %s", r, sigc_strerror(r));

  /* Tampered: the signature check rejects it; the original still decrypts. */
  memset(hundred, 'g', sizeof(hundred));
  r = sigc_group_encrypt(a, "g1", hundred, sizeof(hundred), &big.buf, &big.len);
  /* 0x33 || {1 id, 2 iteration (5), 3 ciphertext 112} || signature 64: 182 + the id's varint. */
  CHECK(r == 0 && big.len > 2 && big.buf[1] == 0x08 &&
            big.len == 182 + varint_at(big.buf + 2, big.len - 2),
        "100 B SenderKeyMessage: %d, %zu bytes", r, big.len);
  if (r == 0) {
    copy = malloc(big.len);
    CHECK(copy != NULL, "malloc");
    if (copy != NULL) {
      memcpy(copy, big.buf, big.len);
      copy[big.len / 2] ^= 0x04;
      r = sigc_group_decrypt(b, "g1", "alice", 1, copy, big.len, &pt, &pt_len);
      CHECK(r < 0 && pt == NULL, "tampered group message accepted: %d", r);
      memcpy(copy, big.buf, big.len);
      copy[big.len - 1] ^= 0x01; /* signature */
      r = sigc_group_decrypt(b, "g1", "alice", 1, copy, big.len, &pt, &pt_len);
      CHECK(r < 0 && pt == NULL, "bad group signature accepted: %d", r);
    }
    r = sigc_group_decrypt(b, "g1", "alice", 1, big.buf, big.len, &pt, &pt_len);
    CHECK(r == 0 && pt_len == sizeof(hundred) && memcmp(pt, hundred, pt_len) == 0,
          "original after tampered group copies: %d %s", r, sigc_strerror(r));
    free(pt);
    pt = NULL;
    /* Wrong sender or group: no sender key. */
    r = sigc_group_decrypt(b, "g2", "alice", 1, big.buf, big.len, &pt, &pt_len);
    CHECK(r < 0 && pt == NULL, "decrypt under another group id: %d", r);
    r = sigc_group_decrypt(c, "g1", "bob", 1, big.buf, big.len, &pt, &pt_len);
    CHECK(r < 0 && pt == NULL, "decrypt under another sender: %d", r);
  }

  /* A receiver has no sending chain of its own until it creates one. */
  r = sigc_group_encrypt(b, "g1", hundred, 10, &bm.buf, &bm.len);
  CHECK(r < 0 && bm.buf == NULL, "receiver encrypted without own chain: %d", r);
  r = sigc_group_create(b, "g1", &skdm_b, &skdm_b_len);
  CHECK(r == 0, "bob group_create: %d", r);
  if (r == 0) {
    CHECK(sigc_group_process(a, "g1", "bob", 1, skdm_b, skdm_b_len) == 0, "alice process");
    CHECK(sigc_group_process(c, "g1", "bob", 1, skdm_b, skdm_b_len) == 0, "carol process");
    r = sigc_group_encrypt(b, "g1", (const uint8_t *)"from bob", 8, &bm.buf, &bm.len);
    CHECK(r == 0, "bob group encrypt: %d", r);
    if (r == 0) {
      r = group_decrypt_ok(a, "g1", b, &bm, "from bob");
      CHECK(r == 0, "alice decrypts bob's group message: %d %s", r, sigc_strerror(r));
      r = group_decrypt_ok(c, "g1", b, &bm, "from bob");
      CHECK(r == 0, "carol decrypts bob's group message: %d %s", r, sigc_strerror(r));
      r = group_decrypt_ok(c, "g1", a, &bm, NULL);
      CHECK(r < 0, "bob's message accepted as alice's: %d", r);
    }
  }
out:
  for (i = 0; i < 5; i++) {
    free(m[i].buf);
  }
  free(big.buf);
  free(bm.buf);
  free(copy);
  free(skdm);
  free(skdm_b);
  sigc_user_free(a);
  sigc_user_free(b);
  sigc_user_free(c);
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap) {
  size_t n = 0;
  while (hex[0] != '\0' && hex[1] != '\0' && n < cap) {
    unsigned v = 0;
    if (sscanf(hex, "%2x", &v) != 1) {
      break;
    }
    out[n++] = (uint8_t)v;
    hex += 2;
  }
  return n;
}

/* One side of a safety number recomputed with libsodium (notes section 4.8):
 * H = SHA-512(0x00 0x00 || key || id || key), then 5199 times H = SHA-512(H || key);
 * six 5-byte big-endian chunks of H, each mod 100000. */
static void fingerprint_half(const char *id, const uint8_t key[33], char out[31]) {
  static const uint8_t version[2] = {0, 0};
  crypto_hash_sha512_state st;
  uint8_t h[64];
  int i;

  crypto_hash_sha512_init(&st);
  crypto_hash_sha512_update(&st, version, sizeof(version));
  crypto_hash_sha512_update(&st, key, 33);
  crypto_hash_sha512_update(&st, (const uint8_t *)id, strlen(id));
  crypto_hash_sha512_update(&st, key, 33);
  crypto_hash_sha512_final(&st, h);
  for (i = 1; i < 5200; i++) {
    crypto_hash_sha512_init(&st);
    crypto_hash_sha512_update(&st, h, sizeof(h));
    crypto_hash_sha512_update(&st, key, 33);
    crypto_hash_sha512_final(&st, h);
  }
  for (i = 0; i < 30; i += 5) {
    uint64_t chunk = ((uint64_t)h[i] << 32) | ((uint64_t)h[i + 1] << 24) |
                     ((uint64_t)h[i + 2] << 16) | ((uint64_t)h[i + 3] << 8) | h[i + 4];
    snprintf(out + i, 6, "%05u", (unsigned)(chunk % 100000));
  }
}

/* The provider must be right on its own: two libsignal-c users sharing a wrong
 * provider would still agree with each other. */
static void test_provider(void) {
  static const uint8_t len_list[] = {0, 1, 31, 32, 33, 63, 64, 65, 100, 200};
  uint8_t key[200], msg[200], mac[32], ref[32], md[64], md_ref[64], iv[16], k[32], buf[64];
  uint8_t *ct = NULL, *pt = NULL;
  size_t ct_len = 0, pt_len = 0, i, j, n;
  int ok = 1, r;

  for (i = 0; i < sizeof(key); i++) {
    key[i] = (uint8_t)(i * 7 + 1);
    msg[i] = (uint8_t)(i * 13 + 5);
  }
  /* RFC 4231 test case 2. */
  n = unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", buf, 32);
  r = sigc_provider_hmac_sha256((const uint8_t *)"Jefe", 4,
                                (const uint8_t *)"what do ya want for nothing?", 28, mac);
  CHECK(r == 0 && n == 32 && memcmp(mac, buf, 32) == 0, "HMAC RFC 4231 #2: %d", r);
  /* Against libsodium for key lengths around the block size, including 0. */
  for (i = 0; i < sizeof(len_list); i++) {
    for (j = 0; j < sizeof(len_list); j++) {
      crypto_auth_hmacsha256_state st;
      crypto_auth_hmacsha256_init(&st, key, len_list[i]);
      crypto_auth_hmacsha256_update(&st, msg, len_list[j]);
      crypto_auth_hmacsha256_final(&st, ref);
      r = sigc_provider_hmac_sha256(key, len_list[i], msg, len_list[j], mac);
      ok &= r == 0 && memcmp(mac, ref, 32) == 0;
    }
  }
  CHECK(ok, "provider HMAC-SHA256 != libsodium");

  n = unhex("ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
            "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
            buf, 64);
  r = sigc_provider_sha512((const uint8_t *)"abc", 3, md);
  CHECK(r == 0 && n == 64 && memcmp(md, buf, 64) == 0, "SHA-512(abc): %d", r);
  ok = 1;
  for (i = 0; i < sizeof(len_list); i++) {
    crypto_hash_sha512(md_ref, msg, len_list[i]);
    ok &= sigc_provider_sha512(msg, len_list[i], md) == 0 && memcmp(md, md_ref, 64) == 0;
  }
  CHECK(ok, "provider SHA-512 != libsodium (or context not reset by final)");

  /* NIST SP 800-38A F.2.5 (CBC-AES256) and F.5.5 (CTR-AES256), first block. */
  unhex("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", k, 32);
  unhex("000102030405060708090a0b0c0d0e0f", iv, 16);
  unhex("6bc1bee22e409f96e93d7e117393172a", msg, 16);
  unhex("f58c4c04d6e5f1ba779eabfb5f7bfbd6", buf, 16);
  r = sigc_provider_encrypt(SIGC_CIPHER_AES_CBC, k, 32, iv, msg, 16, &ct, &ct_len);
  CHECK(r == 0 && ct_len == 32 && memcmp(ct, buf, 16) == 0, "AES-256-CBC KAT: %d %zu", r,
        ct_len);
  if (r == 0) {
    r = sigc_provider_decrypt(SIGC_CIPHER_AES_CBC, k, 32, iv, ct, ct_len, &pt, &pt_len);
    CHECK(r == 0 && pt_len == 16 && memcmp(pt, msg, 16) == 0, "AES-256-CBC decrypt: %d", r);
    free(pt);
    pt = NULL;
  }
  free(ct);
  ct = NULL;
  /* The lone first block decrypts to ...0x2a: invalid PKCS#7 padding. */
  r = sigc_provider_decrypt(SIGC_CIPHER_AES_CBC, k, 32, iv, buf, 16, &pt, &pt_len);
  CHECK(r < 0 && pt == NULL, "bad padding accepted: %d", r);
  r = sigc_provider_decrypt(SIGC_CIPHER_AES_CBC, k, 32, iv, buf, 15, &pt, &pt_len);
  CHECK(r < 0 && pt == NULL, "15-byte CBC ciphertext accepted: %d", r);
  r = sigc_provider_decrypt(SIGC_CIPHER_AES_CBC, k, 32, iv, buf, 0, &pt, &pt_len);
  CHECK(r < 0 && pt == NULL, "empty CBC ciphertext accepted: %d", r);
  r = sigc_provider_encrypt(SIGC_CIPHER_AES_CBC, k, 20, iv, msg, 16, &ct, &ct_len);
  CHECK(r < 0 && ct == NULL, "20-byte AES key accepted: %d", r);

  unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", iv, 16);
  unhex("601ec313775789a5b7a7f504bbf3d228", buf, 16);
  r = sigc_provider_encrypt(SIGC_CIPHER_AES_CTR, k, 32, iv, msg, 16, &ct, &ct_len);
  CHECK(r == 0 && ct_len == 16 && memcmp(ct, buf, 16) == 0, "AES-256-CTR KAT: %d", r);
  free(ct);
  ct = NULL;

  /* NIST F.2.1 (CBC-AES128): the 16-byte key path. */
  unhex("2b7e151628aed2a6abf7158809cf4f3c", k, 16);
  unhex("000102030405060708090a0b0c0d0e0f", iv, 16);
  unhex("7649abac8119b246cee98e9b12e9197d", buf, 16);
  r = sigc_provider_encrypt(SIGC_CIPHER_AES_CBC, k, 16, iv, msg, 16, &ct, &ct_len);
  CHECK(r == 0 && ct_len == 32 && memcmp(ct, buf, 16) == 0, "AES-128-CBC KAT: %d", r);
  free(ct);
  ct = NULL;

  /* Round trips for every length around the block size, both modes, all key sizes. */
  ok = 1;
  for (i = 0; i <= 48; i++) {
    for (j = 16; j <= 32; j += 8) {
      int mode;
      for (mode = SIGC_CIPHER_AES_CTR; mode <= SIGC_CIPHER_AES_CBC; mode++) {
        size_t want = mode == SIGC_CIPHER_AES_CBC ? (i / 16 + 1) * 16 : i;
        r = sigc_provider_encrypt(mode, key, j, iv, msg, i, &ct, &ct_len);
        ok &= r == 0 && ct_len == want;
        if (r == 0) {
          r = sigc_provider_decrypt(mode, key, j, iv, ct, ct_len, &pt, &pt_len);
          ok &= r == 0 && pt_len == i && (i == 0 || memcmp(pt, msg, i) == 0);
        }
        free(ct);
        free(pt);
        ct = NULL;
        pt = NULL;
      }
    }
  }
  CHECK(ok, "provider AES round trips");
}

static void test_safety_number(void) {
  uint8_t ka[33], kb[33], kc[33], priv[32];
  char ab[61], ba[61], ac[61];
  uint8_t *sc_ab = NULL, *sc_ba = NULL;
  size_t sc_ab_len = 0, sc_ba_len = 0;
  int i, digits = 1, r;

  CHECK(sigc_keypair(ka, priv) == 0 && sigc_keypair(kb, priv) == 0 && sigc_keypair(kc, priv) == 0,
        "keypair");
  sodium_memzero(priv, sizeof(priv));
  r = sigc_safety_number("alice", ka, "bob", kb, ab, &sc_ab, &sc_ab_len);
  CHECK(r == 0, "safety number a->b: %d %s", r, sigc_strerror(r));
  r = sigc_safety_number("bob", kb, "alice", ka, ba, &sc_ba, &sc_ba_len);
  CHECK(r == 0, "safety number b->a: %d %s", r, sigc_strerror(r));
  CHECK(strlen(ab) == 60, "length %zu", strlen(ab));
  for (i = 0; i < 60 && ab[i] != '\0'; i++) {
    digits &= ab[i] >= '0' && ab[i] <= '9';
  }
  CHECK(digits, "non-digit in %s", ab);
  CHECK(strcmp(ab, ba) == 0, "sides differ: %s vs %s", ab, ba);
  {
    char ha[31], hb[31], expect[61];
    fingerprint_half("alice", ka, ha);
    fingerprint_half("bob", kb, hb);
    snprintf(expect, sizeof(expect), "%s%s", strcmp(ha, hb) <= 0 ? ha : hb,
             strcmp(ha, hb) <= 0 ? hb : ha);
    CHECK(strcmp(ab, expect) == 0, "safety number %s, libsodium recomputation %s", ab, expect);
  }
  CHECK(sc_ab != NULL && sc_ab_len > 64 && sc_ba_len == sc_ab_len, "scannable %zu / %zu",
        sc_ab_len, sc_ba_len);
  r = sigc_safety_number("alice", ka, "carol", kc, ac, NULL, NULL);
  CHECK(r == 0 && strcmp(ab, ac) != 0, "different peer key, same number");
  CHECK(strncmp(ab, ac, 30) == 0 || strncmp(ab + 30, ac + 30, 30) == 0 ||
            strncmp(ab, ac + 30, 30) == 0 || strncmp(ab + 30, ac, 30) == 0,
        "alice's half should be shared: %s / %s", ab, ac);
  free(sc_ab);
  free(sc_ba);
}

static void test_sign_verify(void) {
  static const char text[] = "signed pre-key or anything else";
  uint8_t pub[33], priv[32], other_pub[33], other_priv[32], sig[64], sig2[64], msg[sizeof(text)];
  int i, r, all_ok = 1;

  CHECK(sigc_keypair(pub, priv) == 0 && sigc_keypair(other_pub, other_priv) == 0, "keypair");
  memcpy(msg, text, sizeof(msg));
  CHECK(sigc_sign(priv, msg, sizeof(msg), sig) == 0, "sign");
  r = sigc_verify(pub, msg, sizeof(msg), sig);
  CHECK(r == 0, "valid signature rejected: %d", r);
  CHECK(sigc_sign(priv, msg, sizeof(msg), sig2) == 0 && memcmp(sig, sig2, 64) != 0,
        "signatures should be randomized");

  msg[3] ^= 0x01;
  CHECK(sigc_verify(pub, msg, sizeof(msg), sig) == SIGC_ERR_BAD_SIGNATURE, "flipped message bit");
  msg[3] ^= 0x01;
  sig[10] ^= 0x20;
  CHECK(sigc_verify(pub, msg, sizeof(msg), sig) == SIGC_ERR_BAD_SIGNATURE, "flipped R bit");
  sig[10] ^= 0x20;
  sig[63] ^= 0x80; /* the sign bit of the Edwards key (libsignal variant) */
  CHECK(sigc_verify(pub, msg, sizeof(msg), sig) == SIGC_ERR_BAD_SIGNATURE, "flipped bit 511");
  sig[63] ^= 0x80;
  CHECK(sigc_verify(other_pub, msg, sizeof(msg), sig) == SIGC_ERR_BAD_SIGNATURE, "wrong key");
  CHECK(sigc_verify(pub, msg, sizeof(msg), sig) == 0, "restored signature");
  CHECK(sigc_sign(priv, NULL, 0, sig) == 0 && sigc_verify(pub, NULL, 0, sig) == 0,
        "empty message");

  for (i = 0; i < 32; i++) {
    msg[0] = (uint8_t)i;
    all_ok &= sigc_sign(priv, msg, sizeof(msg), sig) == 0 &&
              sigc_verify(pub, msg, sizeof(msg), sig) == 0;
  }
  CHECK(all_ok, "sign/verify round trips");
  sodium_memzero(priv, sizeof(priv));
  sodium_memzero(other_priv, sizeof(other_priv));
}

static void test_agree(void) {
  uint8_t pa[33], sa[32], pb[33], sb[32], ab[32], ba[32], ref[32], base[32];

  CHECK(sigc_keypair(pa, sa) == 0 && sigc_keypair(pb, sb) == 0, "keypair");
  CHECK(pa[0] == 0x05 && pb[0] == 0x05, "key type byte");
  CHECK(crypto_scalarmult_base(base, sa) == 0 && memcmp(base, pa + 1, 32) == 0,
        "public key != libsodium base point multiple");
  CHECK(sigc_agree(pb, sa, ab) == 0 && sigc_agree(pa, sb, ba) == 0, "agree");
  CHECK(memcmp(ab, ba, 32) == 0, "agreement not symmetric");
  CHECK(crypto_scalarmult(ref, sa, pb + 1) == 0 && memcmp(ref, ab, 32) == 0,
        "libsignal-c X25519 != libsodium X25519");
  pb[0] = 0x06;
  CHECK(sigc_agree(pb, sa, ab) < 0, "key type 0x06 accepted");
  sodium_memzero(sa, sizeof(sa));
  sodium_memzero(sb, sizeof(sb));
}

/* Two threads share user `a` (sessions to two different peers) and the
 * stateless primitives: exercises the per-user recursive lock and the shared
 * provider. Outcomes do not depend on scheduling. */
struct thread_job {
  struct sigc_user *a, *peer;
  int failures;
};

static void *thread_main(void *arg) {
  struct thread_job *job = arg;
  uint8_t pt[64], sig[64], pub[33];
  int i;

  sigc_identity(job->a, pub, NULL);
  memset(pt, 0x5a, sizeof(pt));
  for (i = 0; i < 200; i++) {
    uint8_t *ct = NULL, *out = NULL;
    size_t ct_len = 0, out_len = 0;
    int type = 0;
    pt[0] = (uint8_t)i;
    if (sigc_encrypt(job->a, sigc_user_name(job->peer), sigc_device_id(job->peer), pt,
                     sizeof(pt), &type, &ct, &ct_len) != 0 ||
        sigc_decrypt(job->peer, sigc_user_name(job->a), sigc_device_id(job->a), type, ct, ct_len,
                     &out, &out_len) != 0 ||
        out_len != sizeof(pt) || memcmp(out, pt, sizeof(pt)) != 0) {
      job->failures++;
    }
    free(ct);
    free(out);
    if (i % 50 == 0) {
      uint8_t priv[32];
      sigc_identity(job->a, NULL, priv);
      if (sigc_sign(priv, pt, sizeof(pt), sig) != 0 || sigc_verify(pub, pt, sizeof(pt), sig) != 0) {
        job->failures++;
      }
      sodium_memzero(priv, sizeof(priv));
    }
  }
  return NULL;
}

static void test_threads(void) {
  struct sigc_user *a = sigc_user_new("alice", 1);
  struct sigc_user *b = sigc_user_new("bob", 1);
  struct sigc_user *c = sigc_user_new("carol", 1);
  struct thread_job jobs[2];
  pthread_t th[2];
  int i, started[2] = {0, 0};

  if (pair_up(a, b, 41) != 0 || pair_up(a, c, 42) != 0) {
    goto out;
  }
  jobs[0].a = a;
  jobs[0].peer = b;
  jobs[1].a = a;
  jobs[1].peer = c;
  for (i = 0; i < 2; i++) {
    jobs[i].failures = 0;
    started[i] = pthread_create(&th[i], NULL, thread_main, &jobs[i]) == 0;
    CHECK(started[i], "pthread_create %d", i);
  }
  for (i = 0; i < 2; i++) {
    if (started[i]) {
      pthread_join(th[i], NULL);
      CHECK(jobs[i].failures == 0, "thread %d: %d failed operations", i, jobs[i].failures);
    }
  }
  send_ok(b, a, "after threads", SIGC_TYPE_SIGNAL);
  send_ok(c, a, "after threads", SIGC_TYPE_SIGNAL);
out:
  sigc_user_free(a);
  sigc_user_free(b);
  sigc_user_free(c);
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  if (sodium_init() < 0) {
    fprintf(stderr, "sodium_init failed\n");
    return 1;
  }
  test_provider();
  test_setup_with_opk();
  test_setup_without_opk();
  test_ping_pong();
  test_out_of_order_and_duplicate();
  test_tamper_and_snapshot();
  test_identity_trust();
  test_imported_identity();
  test_addresses();
  test_restore_opk();
  test_group();
  test_safety_number();
  test_sign_verify();
  test_agree();
  test_threads();
  printf("test_sigc_self: %d checks, %d failed\n", g_checks, g_failures);
  return g_failures ? 1 : 0;
}

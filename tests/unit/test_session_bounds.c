/* SPDX-License-Identifier: Apache-2.0 */
/* test_session_bounds.c: what a session keeps and what a message may cost
 * (issue 17): skipped keys die with their chain, forged messages meet a
 * budget, the trusted-identity hook decides before an identity takes over a
 * record, no counter wraps, HKDF refuses an over-long output. Records are
 * inspected as serialized bytes (docs/protocol.md, "Session record format"). */
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include "party.h"
#include "testutil.h"
#include "wire/messages.h"

#define CAP 4096

struct wire {
  int type;
  size_t len;
  uint8_t b[CAP];
};

static struct party alice, bob;

static int enc(struct sotto_session *s, struct wire *w, const char *text) {
  return sotto_session_encrypt(s, w->b, sizeof w->b, &w->len, &w->type, (const uint8_t *)text, strlen(text));
}

/* Decrypts with the given store and compares with the expected text. */
static int dec_with(struct sotto_session *s, struct party *me, const struct sotto_prekey_store *store,
                    const struct wire *w, const char *text, struct sotto_decrypt_info *info) {
  uint8_t pt[CAP];
  size_t n;
  int rc = sotto_session_decrypt_ex(s, &me->id, store, w->type, w->b, w->len, pt, sizeof pt, &n, info);
  if (rc != 0) return rc;
  if (n != strlen(text) || memcmp(pt, text, n) != 0) return -999;
  return 0;
}

static int dec(struct sotto_session *s, struct party *me, const struct wire *w, const char *text) {
  return dec_with(s, me, &me->store, w, text, NULL);
}

static uint8_t *snap(const struct sotto_session *s, size_t *len) {
  size_t cap = sotto_session_serialized_size(s);
  uint8_t *b = malloc(cap ? cap : 1);
  if (b == NULL || sotto_session_serialize(s, b, cap, len) != 0) *len = 0;
  return b;
}

static int same_as(const struct sotto_session *s, const uint8_t *b, size_t len) {
  size_t n;
  uint8_t *now = snap(s, &n);
  int same = n == len && memcmp(now, b, n) == 0;
  free(now);
  return same;
}

/* How often needle occurs in the serialized record of s. */
static unsigned occurrences(const struct sotto_session *s, const uint8_t *needle, size_t m) {
  size_t n;
  unsigned k = 0;
  uint8_t *b = snap(s, &n);
  for (size_t i = 0; n >= m && i <= n - m; i++) k += memcmp(b + i, needle, m) == 0;
  free(b);
  return k;
}

static void ratchet_key_of(const struct wire *w, uint8_t key[32], uint32_t *counter) {
  struct sotto__signal_msg m;
  struct sotto__prekey_msg pm;
  memset(key, 0, 32);
  if (w->type == SOTTO_MSG_PREKEY) {
    CHECK_RC(sotto__prekey_msg_parse(&pm, w->b, w->len), 0);
    CHECK_RC(sotto__signal_msg_parse(&m, pm.message, pm.message_len), 0);
  } else {
    CHECK_RC(sotto__signal_msg_parse(&m, w->b, w->len), 0);
  }
  memcpy(key, m.ratchet_key, 32);
  if (counter) *counter = m.counter;
}

/* A well-formed version 3 SignalMessage with a random ciphertext and MAC. */
static void forge(struct wire *w, const uint8_t key[32], uint32_t counter) {
  uint8_t ct[32];
  struct sotto__wr wr;
  CHECK_RC(sotto__random(ct, sizeof ct), 0);
  sotto__wr_init(&wr, w->b, sizeof w->b);
  sotto__signal_msg_write(&wr, 0x33, key, counter, 0, ct, sizeof ct);
  CHECK(wr.err == 0);
  CHECK_RC(sotto__random(w->b + wr.len, SOTTO_MESSAGE_MAC_LEN), 0);
  w->len = wr.len + SOTTO_MESSAGE_MAC_LEN;
  w->type = SOTTO_MSG_SIGNAL;
}

/* A new session of Alice's (a) with Bob's record b, past the PreKey phase:
 * Alice's first message, Bob's answer. Version 3, no one-time pre-key.
 * first_key (may be NULL) gets the ratchet key of Alice's first chain. */
static void open_session2(struct sotto_session **a, struct sotto_session *b, uint8_t first_key[32]) {
  struct sotto_bundle bundle;
  struct wire w;
  CHECK_RC(sotto_session_new(a), 0);
  CHECK_RC(party_bundle(&bob, 1, 0, &bundle), 0);
  CHECK_RC(sotto_session_init_from_bundle_ex(*a, &alice.id, &bundle, SOTTO_INIT_ALLOW_X3DH), 0);
  CHECK_RC(enc(*a, &w, "hello"), 0);
  if (first_key != NULL) ratchet_key_of(&w, first_key, NULL);
  CHECK_RC(dec(b, &bob, &w, "hello"), 0);
  CHECK_RC(enc(b, &w, "hello back"), 0);
  CHECK_RC(dec(*a, &alice, &w, "hello back"), 0);
}

static void open_session(struct sotto_session **a, struct sotto_session *b) {
  open_session2(a, b, NULL);
}

/* Alice sends three messages on a new chain; Bob gets only the third and
 * stores the first two keys. Returns the chain's ratchet key, the held
 * messages, and the two skipped seeds as found in Bob's record. */
static void make_skipped(struct sotto_session *a, struct sotto_session *b, uint8_t chain[32],
                         struct wire held[2], uint8_t seeds[2][32]) {
  struct wire w;
  size_t n;
  uint8_t *rec;
  CHECK_RC(enc(a, &held[0], "held 0"), 0);
  CHECK_RC(enc(a, &held[1], "held 1"), 0);
  CHECK_RC(enc(a, &w, "delivered"), 0);
  CHECK_RC(dec(b, &bob, &w, "delivered"), 0);
  ratchet_key_of(&w, chain, NULL);
  CHECK(sotto_session_skipped_keys(b) == 2);
  /* skipped = chain 32 | u32 counter | seed 32 */
  rec = snap(b, &n);
  for (uint32_t c = 0; c < 2; c++) {
    uint8_t pat[36];
    int found = 0;
    memcpy(pat, chain, 32);
    pat[32] = 0, pat[33] = 0, pat[34] = 0, pat[35] = (uint8_t)c;
    for (size_t i = 0; i + 36 + 32 <= n; i++) {
      if (memcmp(rec + i, pat, 36) == 0) {
        memcpy(seeds[c], rec + i + 36, 32);
        found++;
      }
    }
    CHECK(found == 1);
  }
  free(rec);
}

/* Finding 3: a receiving chain pushed out by the sixth takes its skipped
 * keys along; the serialized record no longer holds them. */
static void test_dropped_chain_takes_its_keys(void) {
  struct sotto_session *a, *b;
  struct wire w, held[2];
  uint8_t chain[32], seeds[2][32], pt[CAP], *before;
  size_t n, blen;
  int seen_alive = 0, seen_dropped = 0;

  CHECK_RC(sotto_session_new(&b), 0);
  open_session(&a, b);
  make_skipped(a, b, chain, held, seeds);
  /* Each round trip gives Bob a new receiving chain of Alice's. */
  for (int round = 0; round < 8; round++) {
    CHECK_RC(enc(b, &w, "ping"), 0);
    CHECK_RC(dec(a, &alice, &w, "ping"), 0);
    CHECK_RC(enc(a, &w, "pong"), 0);
    CHECK_RC(dec(b, &bob, &w, "pong"), 0);
    if (occurrences(b, chain, 32) > 0) {
      /* The chain lives: so do its keys (one chain entry, two key entries). */
      CHECK(occurrences(b, chain, 32) == 3);
      CHECK(occurrences(b, seeds[0], 32) == 1 && occurrences(b, seeds[1], 32) == 1);
      CHECK(sotto_session_skipped_keys(b) == 2);
      seen_alive++;
    } else {
      CHECK(occurrences(b, seeds[0], 32) == 0 && occurrences(b, seeds[1], 32) == 0);
      CHECK(sotto_session_skipped_keys(b) == 0);
      seen_dropped++;
    }
  }
  /* Five chains are kept: the chain lived through four more, then went. */
  CHECK(seen_alive == 4 && seen_dropped == 4);
  /* The held messages cannot be opened any more, and trying changes nothing. */
  before = snap(b, &blen);
  CHECK_RC(
      sotto_session_decrypt(b, &bob.id, &bob.store, held[0].type, held[0].b, held[0].len, pt, sizeof pt, &n),
      SOTTO_ERR_AUTH);
  CHECK_RC(
      sotto_session_decrypt(b, &bob.id, &bob.store, held[1].type, held[1].b, held[1].len, pt, sizeof pt, &n),
      SOTTO_ERR_AUTH);
  CHECK(same_as(b, before, blen));
  free(before);
  sotto_session_free(a);
  sotto_session_free(b);
}

/* An archived state pushed out by the 41st session goes with its keys. */
static void test_dropped_state_takes_its_keys(void) {
  struct sotto_session *a, *b, *an;
  struct wire held[2];
  uint8_t chain[32], seeds[2][32];

  CHECK_RC(sotto_session_new(&b), 0);
  open_session(&a, b);
  make_skipped(a, b, chain, held, seeds);
  for (int i = 0; i < SOTTO_MAX_ARCHIVED_STATES; i++) {
    open_session(&an, b);
    sotto_session_free(an);
  }
  /* The 40th archived state: still there, keys included. */
  CHECK(occurrences(b, seeds[0], 32) == 1 && occurrences(b, seeds[1], 32) == 1);
  open_session(&an, b);
  sotto_session_free(an);
  CHECK(occurrences(b, chain, 32) == 0);
  CHECK(occurrences(b, seeds[0], 32) == 0 && occurrences(b, seeds[1], 32) == 0);
  sotto_session_free(a);
  sotto_session_free(b);
}

/* A ratchet private key dies at its last DH: the receiving step. The
 * responder's first one is the signed pre-key's copy, gone from the record
 * in the decrypt that used it; later ones go when the peer's next ratchet
 * key arrives, not when we next send. */
static void test_spent_ratchet_keys(void) {
  struct sotto_session *a, *b;
  struct sotto_bundle bundle;
  struct wire w;
  const uint8_t *spk_priv = NULL;
  uint8_t priv[32], *rec;
  size_t n;

  for (int i = 0; i < PARTY_MAX_KEYS; i++)
    if (bob.spk[i].used && bob.spk[i].id == 1) spk_priv = bob.spk[i].priv;
  CHECK(spk_priv != NULL);
  if (spk_priv == NULL) return;
  CHECK_RC(sotto_session_new(&a), 0);
  CHECK_RC(sotto_session_new(&b), 0);
  CHECK_RC(party_bundle(&bob, 1, 0, &bundle), 0);
  CHECK_RC(sotto_session_init_from_bundle_ex(a, &alice.id, &bundle, SOTTO_INIT_ALLOW_X3DH), 0);
  CHECK_RC(enc(a, &w, "first"), 0);
  CHECK_RC(dec(b, &bob, &w, "first"), 0);
  CHECK(occurrences(b, spk_priv, 32) == 0);
  /* Alice's sending ratchet key (state offset 138: after version, flags,
   * identities, registration ids, root key and sending public key). */
  rec = snap(a, &n);
  CHECK(n >= 6 + 138 + 32);
  memcpy(priv, rec + 6 + 138, 32);
  free(rec);
  CHECK(occurrences(a, priv, 32) == 1);
  CHECK_RC(enc(b, &w, "reply"), 0);
  CHECK_RC(dec(a, &alice, &w, "reply"), 0);
  CHECK(occurrences(a, priv, 32) == 0);
  sotto_wipe(priv, sizeof priv);
  sotto_session_free(a);
  sotto_session_free(b);
}

/* A record written before dropped chains took their keys along may hold
 * keys of chains it no longer has: the loader leaves them out. */
static void test_orphan_keys_left_out_on_load(void) {
  struct sotto_session *a, *b, *b2 = NULL;
  struct wire held[2];
  uint8_t chain[32], seeds[2][32], *rec;
  size_t n, i;

  CHECK_RC(sotto_session_new(&b), 0);
  open_session(&a, b);
  make_skipped(a, b, chain, held, seeds);
  rec = snap(b, &n);
  /* The first occurrence of the ratchet key is the chain entry (chains come
   * before skipped keys); changing it makes the keys orphans. */
  for (i = 0; i + 32 <= n && memcmp(rec + i, chain, 32) != 0; i++) {
  }
  CHECK(i + 32 <= n);
  if (!(i + 32 <= n)) return;
  rec[i] ^= 0x40;
  CHECK_RC(sotto_session_deserialize(&b2, rec, n), 0);
  CHECK(b2 != NULL);
  if (!(b2 != NULL)) return;
  CHECK(sotto_session_skipped_keys(b2) == 0);
  CHECK(occurrences(b2, seeds[0], 32) == 0 && occurrences(b2, seeds[1], 32) == 0);
  CHECK(sotto_session_serialized_size(b2) == n - 2 * (32 + 4 + 32));
  free(rec);
  sotto_session_free(a);
  sotto_session_free(b);
  sotto_session_free(b2);
}

/* Finding 4, behaviour of the budget. Bob holds states from sessions
 * a[0..4] (a[4] current), and answered on each, so each could take a new
 * ratchet key: a forged one is tried on at most SOTTO_MAX_DECRYPT_DH_STEPS
 * of them. */
static void test_forged_message_budget(void) {
  struct sotto_session *a[5], *b;
  struct wire m1, m2, f;
  uint8_t key[32], pt[CAP], *before;
  size_t n, blen;

  CHECK_RC(sotto_session_new(&b), 0);
  for (int i = 0; i < 5; i++) open_session2(&a[i], b, i == 0 ? key : NULL);
  before = snap(b, &blen);

  /* Forged: a fresh ratchet key (counters 0, 500, 2000) or a known chain's
   * key 2000 ahead: refused, record unchanged. */
  {
    uint8_t pub[32], priv[32];
    CHECK_RC(sotto_keypair_generate(pub, priv), 0);
    forge(&f, pub, 0);
    CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, f.type, f.b, f.len, pt, sizeof pt, &n),
             SOTTO_ERR_AUTH);
    forge(&f, pub, 500);
    CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, f.type, f.b, f.len, pt, sizeof pt, &n),
             SOTTO_ERR_AUTH);
    forge(&f, pub, SOTTO_MAX_FORWARD_JUMP);
    CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, f.type, f.b, f.len, pt, sizeof pt, &n),
             SOTTO_ERR_AUTH);
    forge(&f, pub, SOTTO_MAX_FORWARD_JUMP + 1);
    CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, f.type, f.b, f.len, pt, sizeof pt, &n),
             SOTTO_ERR_TOO_FAR_AHEAD);
  }
  /* The oldest state's chain (index 1 after "hello"), 2000 ahead. */
  forge(&f, key, 1 + SOTTO_MAX_FORWARD_JUMP);
  CHECK_RC(sotto_session_decrypt(b, &bob.id, &bob.store, f.type, f.b, f.len, pt, sizeof pt, &n),
           SOTTO_ERR_AUTH);
  CHECK(same_as(b, before, blen));
  free(before);

  /* a[1]'s state is the fourth that could take its new key (after a[4],
   * a[3], a[2]): beyond the budget of 3 DH steps, refused, nothing changed. */
  CHECK_RC(enc(a[1], &m1, "on the third archived state"), 0);
  CHECK_RC(enc(a[2], &m2, "on the second archived state"), 0);
  before = snap(b, &blen);
  CHECK_RC(dec(b, &bob, &m1, "on the third archived state"), SOTTO_ERR_AUTH);
  CHECK(same_as(b, before, blen));
  free(before);
  /* a[2]'s is the third: it opens and becomes current... */
  CHECK_RC(dec(b, &bob, &m2, "on the second archived state"), 0);
  /* ...and waits for Bob's answer to take another new key, so a[1]'s
   * message now is within the budget: refused before, not lost. */
  CHECK_RC(dec(b, &bob, &m1, "on the third archived state"), 0);
  for (int i = 0; i < 5; i++) sotto_session_free(a[i]);
  sotto_session_free(b);
}

/* ---- trusted identities ---------------------------------------------------- */

/* Bob's pre-key store with a trust answer of the test's choosing and a log
 * of what was asked; the key lookups are Bob's party store. */
struct tstore {
  struct party *p;
  int answer;
  unsigned asked;
  uint8_t last[32];
};

static int t_spk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  struct party *p = ((struct tstore *)ud)->p;
  return p->store.load_signed_prekey(p->store.ud, id, pub, priv);
}
static int t_opk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  struct party *p = ((struct tstore *)ud)->p;
  return p->store.load_one_time_prekey(p->store.ud, id, pub, priv);
}
static void t_remove(void *ud, uint32_t id) {
  struct party *p = ((struct tstore *)ud)->p;
  p->store.remove_one_time_prekey(p->store.ud, id);
}
static int t_trusted(void *ud, const uint8_t identity[32]) {
  struct tstore *t = ud;
  t->asked++;
  memcpy(t->last, identity, 32);
  return t->answer;
}

static void tstore_init(struct sotto_prekey_store *s, struct tstore *t, struct party *p, int answer) {
  memset(s, 0, sizeof *s);
  memset(t, 0, sizeof *t);
  t->p = p;
  t->answer = answer;
  s->ud = t;
  s->load_signed_prekey = t_spk;
  s->load_one_time_prekey = t_opk;
  s->remove_one_time_prekey = t_remove;
  s->is_trusted_identity = t_trusted;
}

static void test_trusted_identity_hook(void) {
  static struct party mallory;
  struct sotto_session *a, *b, *m;
  struct sotto_prekey_store ps;
  struct sotto_decrypt_info info;
  struct tstore ts;
  struct sotto_bundle bundle;
  struct wire w, forged, old_late;
  uint8_t pt[CAP], *before;
  size_t n, blen;
  unsigned removed;

  CHECK_RC(party_init(&mallory), 0);
  CHECK_RC(sotto_session_new(&b), 0);
  open_session(&a, b);

  /* Messages on the current state never ask. */
  tstore_init(&ps, &ts, &bob, 0);
  CHECK_RC(enc(a, &w, "on the current state"), 0);
  CHECK_RC(dec_with(b, &bob, &ps, &w, "on the current state", &info), 0);
  CHECK(ts.asked == 0);
  CHECK(info.changed_state == 0 && memcmp(info.identity, alice.id.pub, 32) == 0);
  CHECK_RC(enc(a, &old_late, "late on the old session"), 0);

  /* A new identity under Alice's record (the server relabelled Mallory's
   * session as Alice's), with a one-time pre-key. */
  CHECK_RC(party_add_opk(&bob, 21), 0);
  CHECK_RC(party_bundle(&bob, 1, 21, &bundle), 0);
  CHECK_RC(sotto_session_new(&m), 0);
  CHECK_RC(sotto_session_init_from_bundle_ex(m, &mallory.id, &bundle, SOTTO_INIT_ALLOW_X3DH), 0);
  CHECK_RC(enc(m, &w, "it is me, alice"), 0);

  /* Forged under that identity (the first message's MAC broken): an
   * authentication failure, not a trust question. */
  forged = w;
  {
    struct sotto__prekey_msg pm;
    CHECK_RC(sotto__prekey_msg_parse(&pm, forged.b, forged.len), 0);
    forged.b[(size_t)(pm.message - forged.b) + pm.message_len - 1] ^= 1; /* the inner MAC */
  }
  before = snap(b, &blen);
  removed = bob.opk_removed;
  CHECK_RC(dec_with(b, &bob, &ps, &forged, "", &info), SOTTO_ERR_AUTH);
  CHECK(ts.asked == 0);

  /* Refused: a distinct code, the key reported, nothing committed, no
   * pre-key consumed, no plaintext. */
  memset(pt, 0x77, sizeof pt);
  CHECK_RC(sotto_session_decrypt_ex(b, &bob.id, &ps, w.type, w.b, w.len, pt, sizeof pt, &n, &info),
           SOTTO_ERR_UNTRUSTED_IDENTITY);
  CHECK(n == 0);
  CHECK(ts.asked == 1 && memcmp(ts.last, mallory.id.pub, 32) == 0);
  CHECK(memcmp(info.identity, mallory.id.pub, 32) == 0 && info.changed_state == 1);
  {
    uint8_t zero[SOTTO_CIPHERTEXT_LEN(15)] = {0}; /* everything decryption could have written */
    CHECK(memcmp(pt, zero, sizeof zero) == 0);
  }
  CHECK(same_as(b, before, blen));
  CHECK(bob.opk_removed == removed);
  free(before);
  {
    uint8_t cur[32];
    CHECK_RC(sotto_session_remote_identity(b, cur), 0);
    CHECK(memcmp(cur, alice.id.pub, 32) == 0);
  }

  /* A hook that fails: its error, nothing committed. */
  ts.answer = SOTTO_ERR_STORE;
  CHECK_RC(dec_with(b, &bob, &ps, &w, "it is me, alice", &info), SOTTO_ERR_STORE);
  CHECK(bob.opk_removed == removed);

  /* Accepted (the user trusted the new key): the same message now opens. */
  ts.answer = 1;
  CHECK_RC(dec_with(b, &bob, &ps, &w, "it is me, alice", &info), 0);
  CHECK(info.changed_state == 1 && memcmp(info.identity, mallory.id.pub, 32) == 0);
  CHECK(bob.opk_removed == removed + 1);

  /* Alice's old session now is an archived state of another identity than
   * the current one: opening a message on it would hand the record back,
   * so the hook is asked. Refused: nothing changes. */
  ts.answer = 0;
  ts.asked = 0;
  before = snap(b, &blen);
  CHECK_RC(dec_with(b, &bob, &ps, &old_late, "late on the old session", &info), SOTTO_ERR_UNTRUSTED_IDENTITY);
  CHECK(ts.asked == 1 && memcmp(info.identity, alice.id.pub, 32) == 0);
  CHECK(same_as(b, before, blen));
  free(before);
  ts.answer = 1;
  CHECK_RC(dec_with(b, &bob, &ps, &old_late, "late on the old session", &info), 0);
  CHECK(info.changed_state == 1 && memcmp(info.identity, alice.id.pub, 32) == 0);

  /* No hook (or no store on a SignalMessage): as before the hook, accepted. */
  CHECK_RC(enc(m, &w, "mallory again"), 0);
  ps.is_trusted_identity = NULL;
  ts.asked = 0;
  CHECK_RC(dec_with(b, &bob, &ps, &w, "mallory again", &info), 0);
  CHECK(ts.asked == 0 && memcmp(info.identity, mallory.id.pub, 32) == 0);

  sotto_session_free(a);
  sotto_session_free(m);
  sotto_session_free(b);
}

/* ---- counters and HKDF ---------------------------------------------------- */

static void put_u32be(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
}

/* Offsets in a record of one current state without a pending KEM
 * ciphertext: header 6, then the state (docs/protocol.md). */
#define OFF_FLAGS (6 + 1)
#define OFF_SEND_INDEX (6 + 2 + 32 + 32 + 4 + 4 + 32 + 32 + 32 + 32)
#define OFF_CHAIN0_KEY (OFF_SEND_INDEX + 4 + 4 + 4 + 4 + 32 + 32 + 1)
#define OFF_CHAIN0_INDEX (OFF_CHAIN0_KEY + 32 + 32)

static struct sotto_session *patched(const struct sotto_session *s, size_t off, uint32_t v) {
  struct sotto_session *out = NULL;
  size_t n;
  uint8_t *rec = snap(s, &n);
  CHECK(n > off + 4 && rec[5] == 0 && (rec[OFF_FLAGS] & 0x10) == 0);
  put_u32be(rec + off, v);
  CHECK_RC(sotto_session_deserialize(&out, rec, n), 0);
  free(rec);
  return out;
}

/* Finding 6: a sending chain refuses to go past index UINT32_MAX, and a
 * receiving chain refuses a counter that would wrap its index. The counter
 * is set through a deserialized record. */
static void test_counters_do_not_wrap(void) {
  struct sotto_session *a, *b, *a2, *b2;
  struct wire w, f;
  uint8_t key[32], pt[CAP], *before;
  uint32_t counter;
  size_t n, blen;

  CHECK_RC(sotto_session_new(&b), 0);
  open_session(&a, b);
  CHECK_RC(enc(a, &w, "x"), 0);
  CHECK_RC(dec(b, &bob, &w, "x"), 0);
  ratchet_key_of(&w, key, NULL);
  {
    size_t rn;
    uint8_t *rec = snap(b, &rn);
    CHECK(rn > OFF_CHAIN0_INDEX + 4 && memcmp(rec + OFF_CHAIN0_KEY, key, 32) == 0);
    free(rec);
  }
  /* Both ends of Alice's chain at UINT32_MAX - 1 (the keys do not depend
   * on the number). */
  a2 = patched(a, OFF_SEND_INDEX, UINT32_MAX - 1);
  b2 = patched(b, OFF_CHAIN0_INDEX, UINT32_MAX - 1);
  CHECK(a2 != NULL && b2 != NULL);
  if (!(a2 != NULL && b2 != NULL)) return;
  CHECK_RC(enc(a2, &w, "the last index"), 0);
  ratchet_key_of(&w, key, &counter);
  CHECK(counter == UINT32_MAX - 1);
  CHECK_RC(dec(b2, &bob, &w, "the last index"), 0);
  /* The next would need index UINT32_MAX and then wrap to 0: refused. */
  before = snap(a2, &blen);
  CHECK_RC(enc(a2, &w, "wrapped"), SOTTO_ERR_TOO_LARGE);
  CHECK(same_as(a2, before, blen));
  free(before);
  before = snap(b2, &blen);
  forge(&f, key, UINT32_MAX);
  CHECK_RC(sotto_session_decrypt(b2, &bob.id, &bob.store, f.type, f.b, f.len, pt, sizeof pt, &n),
           SOTTO_ERR_TOO_FAR_AHEAD);
  CHECK(same_as(b2, before, blen));
  free(before);
  /* A ratchet step gives a fresh chain. */
  CHECK_RC(enc(b2, &w, "answer"), 0);
  CHECK_RC(dec(a2, &alice, &w, "answer"), 0);
  CHECK_RC(enc(a2, &w, "fresh chain"), 0);
  ratchet_key_of(&w, key, &counter);
  CHECK(counter == 0);
  CHECK_RC(dec(b2, &bob, &w, "fresh chain"), 0);
  sotto_session_free(a);
  sotto_session_free(b);
  sotto_session_free(a2);
  sotto_session_free(b2);
}

/* Finding 6: HKDF-Expand stops at 255 * HashLen (RFC 5869 section 2.3)
 * instead of wrapping its one-byte counter. */
static void test_hkdf_output_limit(void) {
  static uint8_t out[SOTTO__HKDF_MAX_LEN + 32], first[64];
  static const uint8_t ikm[32] = {1, 2, 3};
  static const uint8_t info[] = "limit";

  memset(out, 0xAB, sizeof out);
  CHECK_RC(sotto__hkdf(out, SOTTO__HKDF_MAX_LEN + 1, NULL, 0, ikm, sizeof ikm, info, 5), SOTTO_ERR_USAGE);
  CHECK(out[0] == 0xAB && out[SOTTO__HKDF_MAX_LEN] == 0xAB); /* nothing written */
  CHECK_RC(sotto__hkdf_zero_salt32(out, SOTTO__HKDF_MAX_LEN + 1, ikm, info, 5), SOTTO_ERR_USAGE);
  CHECK(out[0] == 0xAB);
  CHECK_RC(sotto__hkdf(out, SOTTO__HKDF_MAX_LEN, NULL, 0, ikm, sizeof ikm, info, 5), 0);
  CHECK(out[SOTTO__HKDF_MAX_LEN] == 0xAB);
  /* HKDF output is a prefix of any longer output with the same inputs, and
   * the zero-salt form equals the general one with a 32-byte zero salt; the
   * last block (counter 255) differs from the first. */
  CHECK_RC(sotto__hkdf_zero_salt32(first, sizeof first, ikm, info, 5), 0);
  CHECK(memcmp(first, out, sizeof first) == 0);
  CHECK(memcmp(out + SOTTO__HKDF_MAX_LEN - 32, out, 32) != 0);
}

int main(void) {
  if (party_init(&alice) || party_init(&bob) || party_add_spk(&bob, 1)) {
    fprintf(stderr, "setup failed\n");
    return 1;
  }
  test_dropped_chain_takes_its_keys();
  test_dropped_state_takes_its_keys();
  test_orphan_keys_left_out_on_load();
  test_spent_ratchet_keys();
  test_forged_message_budget();
  test_trusted_identity_hook();
  test_counters_do_not_wrap();
  test_hkdf_output_limit();
  return test_done("session_bounds");
}

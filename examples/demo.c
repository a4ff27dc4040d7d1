/* SPDX-License-Identifier: Apache-2.0 */
/* demo.c: libsotto's API in one process, no server (the end-to-end demo with
 * a real server and clients is scripts/demo.sh, `make demo`). Three people
 * use the library; the "network" is a list of envelopes printed as a server
 * would see them: ciphertext only.
 *
 * The story: Alice starts a session with Bob from his pre-key bundle (X3DH),
 * they talk, Bob is "offline" while Alice sends three messages that arrive
 * out of order, an attacker flips a bit (rejected, nothing changes), Alice
 * and Bob compare safety numbers, and the three of them use a Sender Keys
 * group. Every step checks its result; the program exits non-zero if any
 * step fails. */
#include <sotto/fingerprint.h>
#include <sotto/group.h>
#include <sotto/keys.h>
#include <sotto/session.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAP 4096

struct person {
  const char *name;
  struct sotto_identity id;
  uint8_t spk_pub[32], spk_priv[32], spk_sig[64];
  uint8_t opk_pub[32], opk_priv[32];
  int opk_present;
  uint8_t kem_pub[SOTTO_KEM_PUBKEY_LEN], kem_sig[64], kem_sk[SOTTO_KEM_SECRETKEY_LEN];
  int kem_present;
  struct sotto_prekey_store store;
};

static int failures;

static void fail(const char *what, int rc) {
  fprintf(stderr, "demo: %s failed: %s\n", what, sotto_strerror(rc));
  failures++;
}

static int load_spk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  struct person *p = ud;
  if (id != 1) return SOTTO_ERR_UNKNOWN_PREKEY;
  memcpy(pub, p->spk_pub, 32);
  memcpy(priv, p->spk_priv, 32);
  return 0;
}

static int load_opk(void *ud, uint32_t id, uint8_t pub[32], uint8_t priv[32]) {
  struct person *p = ud;
  if (id != 100 || !p->opk_present) return SOTTO_ERR_UNKNOWN_PREKEY;
  memcpy(pub, p->opk_pub, 32);
  memcpy(priv, p->opk_priv, 32);
  return 0;
}

static void remove_opk(void *ud, uint32_t id) {
  struct person *p = ud;
  (void)id;
  p->opk_present = 0;
  sotto_wipe(p->opk_priv, 32);
}

static int load_kem(void *ud, uint32_t id, uint8_t sk[SOTTO_KEM_SECRETKEY_LEN]) {
  struct person *p = ud;
  if (id != 300 || !p->kem_present) return SOTTO_ERR_UNKNOWN_PREKEY;
  memcpy(sk, p->kem_sk, SOTTO_KEM_SECRETKEY_LEN);
  return 0;
}

static void kem_used(void *ud, uint32_t id) {
  struct person *p = ud;
  (void)id;
  p->kem_present = 0; /* a one-time KEM pre-key */
  sotto_wipe(p->kem_sk, sizeof p->kem_sk);
}

static int person_init(struct person *p, const char *name) {
  int rc;
  memset(p, 0, sizeof *p);
  p->name = name;
  if ((rc = sotto_keypair_generate(p->id.pub, p->id.priv)) || (rc = sotto_registration_id_generate(&p->id.registration_id)) ||
      (rc = sotto_keypair_generate(p->spk_pub, p->spk_priv)) ||
      (rc = sotto_signed_prekey_sign(p->spk_sig, p->id.priv, p->spk_pub)) ||
      (rc = sotto_keypair_generate(p->opk_pub, p->opk_priv)) || (rc = sotto_kem_keypair_generate(p->kem_pub, p->kem_sk)) ||
      (rc = sotto_kem_prekey_sign(p->kem_sig, p->id.priv, p->kem_pub)))
    return rc;
  p->opk_present = 1;
  p->kem_present = 1;
  p->store.ud = p;
  p->store.load_signed_prekey = load_spk;
  p->store.load_one_time_prekey = load_opk;
  p->store.remove_one_time_prekey = remove_opk;
  p->store.load_kem_prekey = load_kem;
  p->store.kem_prekey_used = kem_used;
  return 0;
}

static void bundle_of(const struct person *p, struct sotto_bundle *b) {
  memset(b, 0, sizeof *b);
  b->registration_id = p->id.registration_id;
  b->device_id = 1;
  memcpy(b->identity_key, p->id.pub, 32);
  b->signed_prekey_id = 1;
  memcpy(b->signed_prekey, p->spk_pub, 32);
  memcpy(b->signed_prekey_sig, p->spk_sig, 64);
  b->has_one_time_prekey = 1;
  b->one_time_prekey_id = 100;
  memcpy(b->one_time_prekey, p->opk_pub, 32);
  b->has_kem_prekey = 1;
  b->kem_prekey_id = 300;
  memcpy(b->kem_prekey, p->kem_pub, sizeof p->kem_pub);
  memcpy(b->kem_prekey_sig, p->kem_sig, 64);
}

struct envelope {
  int type;
  size_t len;
  uint8_t b[CAP];
};

static void show(const char *from, const char *to, const struct envelope *e) {
  static const char *names[] = {"", "", "SignalMessage", "PreKeySignalMessage", "SenderKeyMessage",
                                "SenderKeyDistribution"};
  printf("    server sees %s -> %s: %s, %zu bytes: ", from, to, names[e->type], e->len);
  for (size_t i = 0; i < e->len && i < 24; i++) printf("%02x", e->b[i]);
  printf("...\n");
}

static void send1(struct sotto_session *s, const struct person *from, const struct person *to, const char *text,
                  struct envelope *e) {
  int rc = sotto_session_encrypt(s, e->b, sizeof e->b, &e->len, &e->type, (const uint8_t *)text, strlen(text));
  if (rc) return fail("encrypt", rc);
  printf("  %s writes: \"%s\"\n", from->name, text);
  show(from->name, to->name, e);
}

static void recv1(struct sotto_session *s, struct person *me, const struct envelope *e, const char *expect) {
  uint8_t pt[CAP];
  size_t n;
  int rc = sotto_session_decrypt(s, &me->id, &me->store, e->type, e->b, e->len, pt, sizeof pt - 1, &n);
  if (rc) return fail("decrypt", rc);
  pt[n] = 0;
  printf("  %s reads:  \"%s\"\n", me->name, (char *)pt);
  if (strcmp((char *)pt, expect) != 0) fail("plaintext check", SOTTO_ERR_INTERNAL);
}

int main(void) {
  static struct person alice, bob, carol;
  static struct envelope e, held[3];
  struct sotto_session *ab, *ba;
  struct sotto_bundle bundle;
  int rc;

  if ((rc = sotto_init()) || (rc = person_init(&alice, "alice")) || (rc = person_init(&bob, "bob")) ||
      (rc = person_init(&carol, "carol"))) {
    fail("set-up", rc);
    return 1;
  }
  printf("libsotto in one process (no server: see `make demo` for the real thing)\n\n");
  printf("1. Alice fetches Bob's pre-key bundle and starts a session: PQXDH, four X25519\n"
         "   agreements plus an ML-KEM-1024 encapsulation, so a recording of today's traffic\n"
         "   stays private against a future quantum computer.\n");
  bundle_of(&bob, &bundle);
  if ((rc = sotto_session_new(&ab)) || (rc = sotto_session_new(&ba)) ||
      (rc = sotto_session_init_from_bundle(ab, &alice.id, &bundle))) {
    fail("session set-up", rc);
    return 1;
  }
  printf("  session version %d (post-quantum)\n", sotto_session_version(ab));
  {
    struct sotto_bundle stripped = bundle;
    struct sotto_session *x;
    stripped.has_kem_prekey = 0;
    if (sotto_session_new(&x) == 0) {
      rc = sotto_session_init_from_bundle(x, &alice.id, &stripped);
      printf("  a bundle whose KEM key a server stripped is refused: %s\n", sotto_strerror(rc));
      if (rc != SOTTO_ERR_DOWNGRADE) fail("downgrade refusal", rc);
      sotto_session_free(x);
    }
  }
  send1(ab, &alice, &bob, "Hi Bob, it's Alice.", &e);
  recv1(ba, &bob, &e, "Hi Bob, it's Alice.");
  send1(ba, &bob, &alice, "Hi Alice! Nobody else can read this.", &e);
  recv1(ab, &alice, &e, "Hi Alice! Nobody else can read this.");

  printf("\n2. Bob is offline; Alice sends three messages, delivered later out of order.\n");
  send1(ab, &alice, &bob, "First.", &held[0]);
  send1(ab, &alice, &bob, "Second.", &held[1]);
  send1(ab, &alice, &bob, "Third.", &held[2]);
  recv1(ba, &bob, &held[2], "Third.");
  recv1(ba, &bob, &held[0], "First.");
  recv1(ba, &bob, &held[1], "Second.");

  printf("\n3. Someone replays a message and flips one bit of another: both are refused.\n");
  {
    uint8_t pt[CAP];
    size_t n;
    rc = sotto_session_decrypt(ba, &bob.id, &bob.store, held[1].type, held[1].b, held[1].len, pt, sizeof pt, &n);
    printf("  replay:     %s\n", sotto_strerror(rc));
    if (rc != SOTTO_ERR_DUPLICATE) fail("replay rejection", rc);
    send1(ab, &alice, &bob, "Meet at noon.", &e);
    e.b[e.len / 2] ^= 0x01;
    rc = sotto_session_decrypt(ba, &bob.id, &bob.store, e.type, e.b, e.len, pt, sizeof pt, &n);
    printf("  tampered:   %s\n", sotto_strerror(rc));
    if (rc != SOTTO_ERR_AUTH) fail("tamper rejection", rc);
    e.b[e.len / 2] ^= 0x01;
    recv1(ba, &bob, &e, "Meet at noon.");
  }

  printf("\n4. Alice and Bob compare safety numbers (they match only without a man in the middle).\n");
  {
    char na[SOTTO_SAFETY_NUMBER_LEN + 1], nb[SOTTO_SAFETY_NUMBER_LEN + 1];
    if ((rc = sotto_safety_number(na, (const uint8_t *)"alice", 5, alice.id.pub, (const uint8_t *)"bob", 3, bob.id.pub,
                                  SOTTO_FINGERPRINT_ITERATIONS)) ||
        (rc = sotto_safety_number(nb, (const uint8_t *)"bob", 3, bob.id.pub, (const uint8_t *)"alice", 5, alice.id.pub,
                                  SOTTO_FINGERPRINT_ITERATIONS)))
      fail("safety number", rc);
    printf("  alice sees: ");
    for (int i = 0; i < 60; i += 5) printf("%.5s ", na + i);
    printf("\n  bob sees:   ");
    for (int i = 0; i < 60; i += 5) printf("%.5s ", nb + i);
    printf("\n  %s\n", strcmp(na, nb) == 0 ? "they match" : "THEY DIFFER");
    if (strcmp(na, nb) != 0) fail("safety numbers", SOTTO_ERR_INTERNAL);
  }

  printf("\n5. A group of three with Sender Keys: Alice's sender key goes to Bob and Carol\n"
         "   (in real use inside their pairwise sessions), then one ciphertext serves both.\n");
  {
    struct sotto_sender_key *a_send, *b_recv, *c_recv;
    uint8_t skdm[SOTTO_SKDM_MAX_LEN], msg[CAP], pt[CAP];
    size_t skdm_len, msg_len, n;
    const char *text = "Dinner at mine on Friday?";
    if ((rc = sotto_sender_key_new(&a_send)) || (rc = sotto_sender_key_new(&b_recv)) ||
        (rc = sotto_sender_key_new(&c_recv)) ||
        (rc = sotto_sender_key_distribution(a_send, skdm, sizeof skdm, &skdm_len)) ||
        (rc = sotto_sender_key_process(b_recv, skdm, skdm_len)) || (rc = sotto_sender_key_process(c_recv, skdm, skdm_len)) ||
        (rc = sotto_group_encrypt(a_send, msg, sizeof msg, &msg_len, (const uint8_t *)text, strlen(text)))) {
      fail("group set-up", rc);
    } else {
      printf("  alice writes to the group: \"%s\" (%zu bytes on the wire)\n", text, msg_len);
      if ((rc = sotto_group_decrypt(b_recv, pt, sizeof pt, &n, msg, msg_len)) || n != strlen(text) ||
          memcmp(pt, text, n))
        fail("group decrypt (bob)", rc);
      else
        printf("  bob reads:   \"%.*s\"\n", (int)n, (char *)pt);
      if ((rc = sotto_group_decrypt(c_recv, pt, sizeof pt, &n, msg, msg_len)) || n != strlen(text) ||
          memcmp(pt, text, n))
        fail("group decrypt (carol)", rc);
      else
        printf("  carol reads: \"%.*s\"\n", (int)n, (char *)pt);
    }
    sotto_sender_key_free(a_send);
    sotto_sender_key_free(b_recv);
    sotto_sender_key_free(c_recv);
  }

  printf("\n6. What a server would hold: the envelopes above (ciphertext) and public keys.\n"
         "   Bob's session record is %zu bytes and is the client's to store, encrypted.\n",
         sotto_session_serialized_size(ba));
  sotto_session_free(ab);
  sotto_session_free(ba);
  sotto_wipe(&alice, sizeof alice);
  sotto_wipe(&bob, sizeof bob);
  sotto_wipe(&carol, sizeof carol);
  printf("\n%s\n", failures ? "demo: FAILED" : "demo: every step checked out");
  return failures ? 1 : 0;
}

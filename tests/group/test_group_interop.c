/* SPDX-License-Identifier: Apache-2.0 */
/* test_group_interop.c: Sender Keys and safety numbers against
 * libsignal-protocol-c 2.3.3 (through the sigc test harness; GPLv3 test peer,
 * linked only into this test executable).
 *
 * One group with a libsignal member ("lib") and two sotto members ("alice",
 * "bob"): every sender distributes its chain to every other member, messages
 * go both ways, out of order; replays and tampering are rejected on both
 * sides; the forward limit is the same. Safety numbers and scannable
 * payloads are compared for the same keys. */
#include <stdlib.h>
#include <string.h>

#include <sotto/fingerprint.h>
#include <sotto/group.h>
#include <sotto/keys.h>

#include "interop/sigc.h"
#include "testutil.h"

#define GROUP "friends"
#define SG_ERR_DUPLICATE_MESSAGE (-1001)
#define SG_ERR_INVALID_MESSAGE (-1005)

#define REQUIRE_VOID(e) \
  do {                  \
    CHECK(e);           \
    if (!(e)) return;   \
  } while (0)

struct msg {
  uint8_t *p;
  size_t len;
};

static void make_pt(uint8_t *p, size_t n, unsigned seed) {
  size_t i;
  for (i = 0; i < n; i++) p[i] = (uint8_t)(seed * 31 + i);
}

static struct sotto_sender_key *rec_new(void) {
  struct sotto_sender_key *r;
  if (sotto_sender_key_new(&r) != 0) exit(2);
  return r;
}

static struct msg sotto_enc(struct sotto_sender_key *s, size_t n, unsigned seed) {
  uint8_t pt[256];
  struct msg m;
  make_pt(pt, n, seed);
  m.p = malloc(SOTTO_GROUP_MESSAGE_MAX_LEN(sizeof pt));
  if (m.p == NULL ||
      sotto_group_encrypt(s, m.p, SOTTO_GROUP_MESSAGE_MAX_LEN(sizeof pt), &m.len, pt, n) != 0)
    exit(2);
  return m;
}

static struct msg lib_enc(struct sigc_user *u, size_t n, unsigned seed) {
  uint8_t pt[256];
  struct msg m;
  int rc;
  make_pt(pt, n, seed);
  rc = sigc_group_encrypt(u, GROUP, pt, n, &m.p, &m.len);
  if (rc != 0) {
    fprintf(stderr, "sigc_group_encrypt: %s\n", sigc_strerror(rc));
    exit(2);
  }
  return m;
}

static int sotto_dec_ok(struct sotto_sender_key *r, const struct msg *m, size_t n, unsigned seed) {
  uint8_t pt[512], want[256];
  size_t got = 0;
  int rc = sotto_group_decrypt(r, pt, sizeof pt, &got, m->p, m->len);
  make_pt(want, n, seed);
  if (rc != 0) fprintf(stderr, "  sotto decrypt: %s\n", sotto_errname(rc));
  return rc == 0 && got == n && memcmp(pt, want, n) == 0;
}

static int sotto_dec_rc(struct sotto_sender_key *r, const struct msg *m) {
  uint8_t pt[512];
  size_t got;
  return sotto_group_decrypt(r, pt, sizeof pt, &got, m->p, m->len);
}

static int lib_dec_ok(struct sigc_user *u, const char *sender, const struct msg *m, size_t n,
                      unsigned seed) {
  uint8_t *pt = NULL, want[256];
  size_t got = 0;
  int rc = sigc_group_decrypt(u, GROUP, sender, 1, m->p, m->len, &pt, &got), ok;
  make_pt(want, n, seed);
  if (rc != 0) fprintf(stderr, "  libsignal decrypt: %s\n", sigc_strerror(rc));
  ok = rc == 0 && got == n && memcmp(pt, want, n) == 0;
  free(pt);
  return ok;
}

static int lib_dec_rc(struct sigc_user *u, const char *sender, const struct msg *m) {
  uint8_t *pt = NULL;
  size_t got;
  int rc = sigc_group_decrypt(u, GROUP, sender, 1, m->p, m->len, &pt, &got);
  free(pt);
  return rc;
}

static struct msg copy_msg(const struct msg *m) {
  struct msg c;
  c.p = malloc(m->len);
  if (c.p == NULL) exit(2);
  memcpy(c.p, m->p, m->len);
  c.len = m->len;
  return c;
}

/* The mixed group: distribution in every direction, messages both ways. */
static void test_mixed_group(void) {
  static const unsigned order[] = {5, 0, 3, 1, 4, 2};
  struct sigc_user *lib = sigc_user_new("lib", 1);
  struct sotto_sender_key *alice = rec_new(), *bob = rec_new();
  /* member records: who holds whose chain */
  struct sotto_sender_key *alice_from_lib = rec_new(), *bob_from_lib = rec_new();
  struct sotto_sender_key *bob_from_alice = rec_new();
  uint8_t d[SOTTO_SKDM_MAX_LEN], *ld = NULL;
  size_t dn, ldn = 0;
  struct msg a[6], l[6];
  unsigned i;

  REQUIRE_VOID(lib != NULL);
  /* alice -> lib, bob */
  CHECK_RC(sotto_sender_key_distribution(alice, d, sizeof d, &dn), 0);
  CHECK_RC(sigc_group_process(lib, GROUP, "alice", 1, d, dn), 0);
  CHECK_RC(sotto_sender_key_process(bob_from_alice, d, dn), 0);
  /* lib -> alice, bob: libsignal's SKDM parses in sotto */
  CHECK_RC(sigc_group_create(lib, GROUP, &ld, &ldn), 0);
  CHECK(ldn == 77 || ldn == 78);
  CHECK_RC(sotto_sender_key_process(alice_from_lib, ld, ldn), 0);
  CHECK_RC(sotto_sender_key_process(bob_from_lib, ld, ldn), 0);
  /* bob -> lib */
  CHECK_RC(sotto_sender_key_distribution(bob, d, sizeof d, &dn), 0);
  CHECK_RC(sigc_group_process(lib, GROUP, "bob", 1, d, dn), 0);

  for (i = 0; i < 6; i++) {
    a[i] = sotto_enc(alice, 100, i);
    l[i] = lib_enc(lib, 100, 100 + i);
    CHECK(a[i].len == l[i].len || a[i].len + 1 == l[i].len || a[i].len == l[i].len + 1);
  }
  /* Out of order in both directions. */
  for (i = 0; i < 6; i++) {
    unsigned k = order[i];
    CHECK(lib_dec_ok(lib, "alice", &a[k], 100, k));
    CHECK(sotto_dec_ok(bob_from_alice, &a[k], 100, k));
    CHECK(sotto_dec_ok(alice_from_lib, &l[k], 100, 100 + k));
    CHECK(sotto_dec_ok(bob_from_lib, &l[5 - k], 100, 100 + 5 - k));
  }
  /* Replays: duplicate on both sides. */
  for (i = 0; i < 6; i++) {
    CHECK(lib_dec_rc(lib, "alice", &a[i]) == SG_ERR_DUPLICATE_MESSAGE);
    CHECK_RC(sotto_dec_rc(bob_from_alice, &a[i]), SOTTO_ERR_DUPLICATE);
    CHECK_RC(sotto_dec_rc(alice_from_lib, &l[i]), SOTTO_ERR_DUPLICATE);
  }
  /* bob's chain, received by lib. */
  {
    struct msg b = sotto_enc(bob, 0, 7);
    CHECK(lib_dec_ok(lib, "bob", &b, 0, 7));
    free(b.p);
  }
  /* Tampering: every byte position once (one bit), rejected on both sides,
   * and the untampered message still decrypts afterwards. */
  {
    struct msg fa = sotto_enc(alice, 60, 50), fl = lib_enc(lib, 60, 60);
    size_t j, bad = 0;
    for (j = 0; j < fa.len; j++) {
      struct msg t = copy_msg(&fa);
      t.p[j] ^= (uint8_t)(1u << (j % 8));
      if (lib_dec_rc(lib, "alice", &t) == 0) bad++;
      if (sotto_dec_rc(bob_from_alice, &t) == 0) bad++;
      free(t.p);
    }
    for (j = 0; j < fl.len; j++) {
      struct msg t = copy_msg(&fl);
      t.p[j] ^= (uint8_t)(1u << (j % 8));
      if (sotto_dec_rc(alice_from_lib, &t) == 0) bad++;
      free(t.p);
    }
    CHECK(bad == 0);
    /* Flipped ciphertext: libsignal says invalid message, sotto AUTH. */
    {
      struct msg t = copy_msg(&fa);
      t.p[t.len - 70] ^= 1;
      CHECK(lib_dec_rc(lib, "alice", &t) == SG_ERR_INVALID_MESSAGE);
      CHECK_RC(sotto_dec_rc(bob_from_alice, &t), SOTTO_ERR_AUTH);
      free(t.p);
    }
    CHECK(lib_dec_ok(lib, "alice", &fa, 60, 50));
    CHECK(sotto_dec_ok(bob_from_alice, &fa, 60, 50));
    CHECK(sotto_dec_ok(alice_from_lib, &fl, 60, 60));
    free(fa.p);
    free(fl.p);
  }
  /* libsignal's signatures carry the Edwards sign bit of the signing key in
   * bit 511; one key fixes it for all its signatures, so several libsignal
   * chains (one per group name) are needed to see both values. */
  {
    unsigned set = 0, clear = 0, bad = 0, g;
    for (g = 0; g < 64 && (set < 3 || clear < 3); g++) {
      char name[16];
      uint8_t *gd = NULL, *pt = NULL;
      size_t gdn = 0, ptn = 0;
      struct sotto_sender_key *rx = rec_new();
      struct msg m;
      snprintf(name, sizeof name, "g%u", g);
      if (sigc_group_create(lib, name, &gd, &gdn) != 0 || sotto_sender_key_process(rx, gd, gdn) != 0)
        bad++;
      if (sigc_group_encrypt(lib, name, (const uint8_t *)"sign bit", 8, &m.p, &m.len) != 0) {
        bad++;
      } else {
        if (m.p[m.len - 1] & 0x80)
          set++;
        else
          clear++;
        if (sotto_group_decrypt(rx, pt = malloc(m.len), m.len, &ptn, m.p, m.len) != 0 || ptn != 8 ||
            memcmp(pt, "sign bit", 8) != 0)
          bad++;
        free(m.p);
      }
      free(pt);
      free(gd);
      sotto_sender_key_free(rx);
    }
    CHECK(bad == 0);
    CHECK(set >= 1 && clear >= 1);
  }
  /* A receiver cannot encrypt (libsignal: no private key; sotto: NOT_SENDER). */
  {
    uint8_t out[256];
    size_t ol;
    CHECK_RC(sotto_group_encrypt(alice_from_lib, out, sizeof out, &ol, out, 1), SOTTO_ERR_NOT_SENDER);
  }
  for (i = 0; i < 6; i++) {
    free(a[i].p);
    free(l[i].p);
  }
  free(ld);
  sotto_sender_key_free(alice);
  sotto_sender_key_free(bob);
  sotto_sender_key_free(alice_from_lib);
  sotto_sender_key_free(bob_from_lib);
  sotto_sender_key_free(bob_from_alice);
  sigc_user_free(lib);
}

/* The forward limit agrees: 2001 ahead rejected, 2000 accepted, both ways. */
static void test_forward_limit(void) {
  const unsigned N = 2002;
  struct sigc_user *lib = sigc_user_new("lib", 1), *lib2 = sigc_user_new("lib2", 1);
  struct sotto_sender_key *s = rec_new(), *r = rec_new();
  struct msg *a = calloc(N, sizeof *a), *l = calloc(N, sizeof *l);
  uint8_t d[SOTTO_SKDM_MAX_LEN], *ld = NULL;
  size_t dn, ldn = 0;
  unsigned i, bad = 0;

  REQUIRE_VOID(lib != NULL && lib2 != NULL && a != NULL && l != NULL);
  CHECK_RC(sotto_sender_key_distribution(s, d, sizeof d, &dn), 0);
  CHECK_RC(sigc_group_process(lib2, GROUP, "s", 1, d, dn), 0);
  CHECK_RC(sigc_group_create(lib, GROUP, &ld, &ldn), 0);
  CHECK_RC(sotto_sender_key_process(r, ld, ldn), 0);
  for (i = 0; i < N; i++) {
    a[i] = sotto_enc(s, 4, i);
    l[i] = lib_enc(lib, 4, i);
  }
  CHECK(lib_dec_rc(lib2, "s", &a[N - 1]) == SG_ERR_INVALID_MESSAGE);
  CHECK_RC(sotto_dec_rc(r, &l[N - 1]), SOTTO_ERR_TOO_FAR_AHEAD);
  CHECK(lib_dec_ok(lib2, "s", &a[N - 2], 4, N - 2));
  CHECK(sotto_dec_ok(r, &l[N - 2], 4, N - 2));
  for (i = 0; i < N - 2; i += 37) {
    if (!lib_dec_ok(lib2, "s", &a[i], 4, i)) bad++;
    if (!sotto_dec_ok(r, &l[i], 4, i)) bad++;
  }
  CHECK(bad == 0);
  CHECK(lib_dec_ok(lib2, "s", &a[N - 1], 4, N - 1));
  CHECK(sotto_dec_ok(r, &l[N - 1], 4, N - 1));
  for (i = 0; i < N; i++) {
    free(a[i].p);
    free(l[i].p);
  }
  free(a);
  free(l);
  free(ld);
  sotto_sender_key_free(s);
  sotto_sender_key_free(r);
  sigc_user_free(lib);
  sigc_user_free(lib2);
}

/* Safety numbers and scannable payloads: same keys, same bytes. */
static void test_safety_numbers(void) {
  static const char *ids[][2] = {{"alice", "bob"},
                                 {"bob", "alice"},
                                 {"+14152222222", "+14153333333"},
                                 {"", "x"},
                                 {"a-rather-long-username-with-dashes", "same"},
                                 {"same", "same"}};
  unsigned i;

  for (i = 0; i < sizeof ids / sizeof ids[0]; i++) {
    uint8_t k1[32], k2[32], priv[32], s1[33], s2[33], ours[SOTTO_FINGERPRINT_SCANNABLE_LEN],
        theirs[SOTTO_FINGERPRINT_SCANNABLE_LEN], *lsc = NULL, *lsc2 = NULL;
    char ln[61], sn[61], ln2[61];
    size_t lscn = 0, lsc2n = 0, on = 0, tn = 0;
    const char *l = ids[i][0], *r = ids[i][1];

    /* One key from each library. */
    if (sotto_keypair_generate(k1, priv) != 0) exit(2);
    if (sigc_keypair(s2, priv) != 0 || sotto_pubkey_parse(k2, s2, 33) != 0) exit(2);
    sotto_pubkey_serialize(s1, k1);
    CHECK_RC(sigc_safety_number(l, s1, r, s2, ln, &lsc, &lscn), 0);
    CHECK_RC(sigc_safety_number(r, s2, l, s1, ln2, &lsc2, &lsc2n), 0);
    CHECK_RC(sotto_safety_number(sn, (const uint8_t *)l, strlen(l), k1, (const uint8_t *)r,
                                 strlen(r), k2, SOTTO_FINGERPRINT_ITERATIONS),
             0);
    CHECK(strcmp(ln, sn) == 0);
    CHECK(strcmp(ln2, sn) == 0);
    CHECK_RC(sotto_fingerprint_scannable(ours, sizeof ours, &on, (const uint8_t *)l, strlen(l), k1,
                                         (const uint8_t *)r, strlen(r), k2,
                                         SOTTO_FINGERPRINT_ITERATIONS),
             0);
    CHECK_RC(sotto_fingerprint_scannable(theirs, sizeof theirs, &tn, (const uint8_t *)r, strlen(r),
                                         k2, (const uint8_t *)l, strlen(l), k1,
                                         SOTTO_FINGERPRINT_ITERATIONS),
             0);
    CHECK(lscn == on && lsc != NULL && memcmp(lsc, ours, on) == 0);
    CHECK(lsc2n == tn && lsc2 != NULL && memcmp(lsc2, theirs, tn) == 0);
    /* Scanning the libsignal phone's code. */
    if (lsc2 != NULL) {
      CHECK_RC(sotto_fingerprint_compare_scannable(ours, on, lsc2, lsc2n), 0);
      lsc2[lsc2n - 1] ^= 1;
      CHECK_RC(sotto_fingerprint_compare_scannable(ours, on, lsc2, lsc2n), SOTTO_ERR_AUTH);
    }
    free(lsc);
    free(lsc2);
  }
}

int main(int argc, char **argv) {
  (void)argc;
  (void)argv;
  if (sotto_init() != 0) return 2;
  test_mixed_group();
  test_forward_limit();
  test_safety_numbers();
  return test_done("group_interop");
}

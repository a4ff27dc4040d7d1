/* SPDX-License-Identifier: Apache-2.0 */
/* rotation_test.c: certificate rotation statements and the client's walk
 * along their chain (proto/rotation.c; ctest proto_rotation): round trips,
 * every parser refusal (truncation, trailing bytes, a count over the cap,
 * an unknown version), and every decision of sotto__rot_follow: a valid
 * link, a chain of two followed from the first pin or from the middle, and
 * refusals for a forged signature, a statement signed by another key (a
 * stolen old key after the client moved on), an expired or not yet valid
 * statement, a too long window, a rollback (serial not above the pin), a
 * fork after the link taken, and a chain that ends elsewhere. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "rotation.h"
#include "wire.h"

static int fails, checks;

#define CHECK(cond, what)                                    \
  do {                                                       \
    checks++;                                                \
    if (cond) {                                              \
      printf("ok   %s\n", what);                             \
    } else {                                                 \
      fails++;                                               \
      printf("FAIL %s (%s:%d)\n", what, __FILE__, __LINE__); \
    }                                                        \
  } while (0)

struct key {
  uint8_t pk[32], sk[64], fp[32];
};

static void key_new(struct key *k) {
  crypto_sign_keypair(k->pk, k->sk);
  randombytes_buf(k->fp, sizeof k->fp); /* stands for SHA-256 of its certificate */
}

static void stmt(struct sotto_rot_statement *s, const struct key *from, const struct key *to, uint64_t serial,
                 uint64_t nb, uint64_t na) {
  uint8_t tbs[SOTTO_ROT_TBS_LEN];
  memset(s, 0, sizeof *s);
  s->version = SOTTO_ROT_VERSION;
  s->serial = serial;
  memcpy(s->old_key, from->pk, 32);
  memcpy(s->new_fp, to->fp, 32);
  memcpy(s->new_key, to->pk, 32);
  s->not_before = nb;
  s->not_after = na;
  sotto__rot_tbs(tbs, s);
  crypto_sign_detached(s->sig, NULL, tbs, sizeof tbs, from->sk);
}

#define NOW 1800000000ull
#define DAY 86400ull

int main(void) {
  struct key k0, k1, k2, thief;
  struct sotto_rot_statement c[4], back[SOTTO_ROT_MAX_CHAIN];
  uint8_t buf[SOTTO_ROT_CHAIN_MAX_LEN + 64];
  struct sotto__wr w;
  uint64_t ser = 0;
  size_t n = 0;

  if (sodium_init() < 0) return 1;
  key_new(&k0);
  key_new(&k1);
  key_new(&k2);
  key_new(&thief);
  stmt(&c[0], &k0, &k1, 1, NOW - DAY, NOW + 30 * DAY);
  stmt(&c[1], &k1, &k2, 2, NOW - DAY, NOW + 30 * DAY);

  /* ---- codec ---- */
  sotto__wr_init(&w, buf, sizeof buf);
  sotto__rot_put_chain(&w, c, 2);
  CHECK(!w.err && w.len == 1 + 2 * SOTTO_ROT_STATEMENT_LEN && SOTTO_ROT_STATEMENT_LEN == 185,
        "chain of two encodes to 1 + 2 * 185 bytes");
  CHECK(sotto__rot_parse_chain(buf, w.len, back, SOTTO_ROT_MAX_CHAIN, &n) == 0 && n == 2 &&
            memcmp(&back[1], &c[1], sizeof c[1]) == 0 && memcmp(&back[0], &c[0], sizeof c[0]) == 0,
        "chain round trip, field for field");
  CHECK(sotto__rot_parse_chain(buf, w.len - 1, back, SOTTO_ROT_MAX_CHAIN, &n) == SOTTO_ERR_TRUNCATED && n == 0,
        "a byte less: truncated");
  buf[w.len] = 0;
  CHECK(sotto__rot_parse_chain(buf, w.len + 1, back, SOTTO_ROT_MAX_CHAIN, &n) == SOTTO_ERR_TRAILING,
        "a byte more: trailing");
  CHECK(sotto__rot_parse_chain(buf, 0, back, SOTTO_ROT_MAX_CHAIN, &n) == SOTTO_ERR_TRUNCATED, "empty input refused");
  CHECK(sotto__rot_parse_chain(buf, w.len, back, 1, &n) == SOTTO_ERR_TOO_LARGE, "more statements than room: refused");
  buf[0] = SOTTO_ROT_MAX_CHAIN + 1;
  CHECK(sotto__rot_parse_chain(buf, w.len, back, SOTTO_ROT_MAX_CHAIN, &n) == SOTTO_ERR_TOO_LARGE,
        "count over the cap: refused before reading statements");
  buf[0] = 2;
  buf[1] = 2;
  CHECK(sotto__rot_parse_chain(buf, w.len, back, SOTTO_ROT_MAX_CHAIN, &n) == SOTTO_ERR_VERSION,
        "unknown statement version: refused");
  buf[1] = 1;
  {
    uint8_t zero = 0;
    CHECK(sotto__rot_parse_chain(&zero, 1, back, SOTTO_ROT_MAX_CHAIN, &n) == 0 && n == 0, "empty chain parses");
    sotto__wr_init(&w, buf, 10);
    sotto__rot_put_chain(&w, c, 2);
    CHECK(w.err, "encoder latches on a short buffer");
  }

  /* ---- follow ---- */
  CHECK(sotto__rot_check_sig(&c[0]) == 0 && sotto__rot_check_sig(&c[1]) == 0, "signatures verify");
  CHECK(sotto__rot_follow(c, 1, k0.pk, 0, k1.fp, k1.pk, NOW, &ser) == 0 && ser == 1, "one link: k0 -> k1");
  CHECK(sotto__rot_follow(c, 2, k0.pk, 0, k2.fp, k2.pk, NOW, &ser) == 0 && ser == 2,
        "offline across two rotations: k0 -> k1 -> k2");
  CHECK(sotto__rot_follow(c, 2, k1.pk, 1, k2.fp, k2.pk, NOW, &ser) == 0 && ser == 2,
        "pinned in the middle: k1 -> k2 (the older statement skipped)");
  CHECK(sotto__rot_follow(c, 2, k0.pk, 0, k1.fp, k1.pk, NOW, &ser) == SOTTO_ERR_AUTH && ser == 0,
        "the chain goes past the presented certificate: refused");
  CHECK(sotto__rot_follow(c, 2, k2.pk, 2, k1.fp, k1.pk, NOW, &ser) == SOTTO_ERR_AUTH,
        "rollback: pinned k2, presented k1: refused");
  CHECK(sotto__rot_follow(c, 0, k0.pk, 0, k1.fp, k1.pk, NOW, &ser) == SOTTO_ERR_AUTH, "no statement: refused");
  CHECK(sotto__rot_follow(c, 1, k0.pk, 0, k2.fp, k1.pk, NOW, &ser) == SOTTO_ERR_AUTH,
        "right key, other certificate (fingerprint): refused");
  CHECK(sotto__rot_follow(c, 1, k0.pk, 0, k1.fp, k2.pk, NOW, &ser) == SOTTO_ERR_AUTH,
        "right fingerprint, other key: refused");
  CHECK(sotto__rot_follow(c, 1, k0.pk, 0, k1.fp, k1.pk, NOW + 31 * DAY, &ser) == SOTTO_ERR_AUTH,
        "expired statement: refused");
  CHECK(sotto__rot_follow(c, 1, k0.pk, 0, k1.fp, k1.pk, NOW - 2 * DAY, &ser) == SOTTO_ERR_AUTH,
        "statement not valid yet: refused");
  CHECK(sotto__rot_follow(c, 1, k0.pk, 1, k1.fp, k1.pk, NOW, &ser) == SOTTO_ERR_AUTH,
        "serial not above the pinned one (replay): refused");
  {
    struct sotto_rot_statement f[2];
    f[0] = c[0];
    f[0].sig[10] ^= 1;
    CHECK(sotto__rot_follow(f, 1, k0.pk, 0, k1.fp, k1.pk, NOW, &ser) == SOTTO_ERR_AUTH, "forged signature: refused");
    f[0] = c[0];
    f[0].not_after++; /* a signed field changed after signing */
    CHECK(sotto__rot_follow(f, 1, k0.pk, 0, k1.fp, k1.pk, NOW, &ser) == SOTTO_ERR_AUTH,
          "a signed field altered: refused");
    stmt(&f[0], &thief, &k1, 1, NOW - DAY, NOW + DAY);
    memcpy(f[0].old_key, k0.pk, 32); /* claims to come from k0, signed by another key */
    CHECK(sotto__rot_follow(f, 1, k0.pk, 0, k1.fp, k1.pk, NOW, &ser) == SOTTO_ERR_AUTH,
          "signed by a key that is not the pinned one: refused");
    stmt(&f[0], &k0, &thief, 5, NOW - DAY, NOW + DAY); /* a stolen old key k0, after the client moved to k1 */
    f[1] = c[1];
    CHECK(sotto__rot_follow(f, 1, k1.pk, 1, thief.fp, thief.pk, NOW, &ser) == SOTTO_ERR_AUTH,
          "stolen old key: a client pinned to its successor does not follow it");
    stmt(&f[0], &k0, &k1, 1, NOW - DAY, NOW - DAY + SOTTO_ROT_MAX_VALIDITY_S + 1);
    CHECK(sotto__rot_follow(f, 1, k0.pk, 0, k1.fp, k1.pk, NOW, &ser) == SOTTO_ERR_AUTH,
          "validity window over the limit: refused");
    f[0] = c[0];
    stmt(&f[1], &thief, &k2, 2, NOW - DAY, NOW + DAY);
    CHECK(sotto__rot_follow(f, 2, k0.pk, 0, k2.fp, k2.pk, NOW, &ser) == SOTTO_ERR_AUTH,
          "a fork after the link taken: refused");
    stmt(&f[1], &k1, &k2, 1, NOW - DAY, NOW + DAY);
    CHECK(sotto__rot_follow(f, 2, k0.pk, 0, k2.fp, k2.pk, NOW, &ser) == SOTTO_ERR_AUTH,
          "a serial that does not move forward: refused");
  }
  printf("%s: %d of %d checks failed\n", fails ? "FAIL" : "ok", fails, checks);
  return fails ? 1 : 0;
}

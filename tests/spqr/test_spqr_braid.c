/* SPDX-License-Identifier: Apache-2.0 */
/* test_spqr_braid: SPQR v1 end to end between two libsotto parties
 * (lib/spqr/spqr.c: braid + chain): 1,000 messages in bursts of 1..8 each
 * way, with messages dropped and others delivered out of order; every
 * delivered message gets the sender's key, epochs keep completing, failures
 * leave the state unchanged. (Against libsignal, the pieces are checked in
 * tests/libsignal; the state machine meets libsignal once sessions use it.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sotto/error.h>

#include "spqr/spqr.h"
#include "testutil.h"

struct pending {
  uint8_t msg[SOTTO_SPQR_MSG_MAX_LEN];
  size_t len;
  uint8_t key[32];
};

static uint32_t rs = 777;
static uint32_t rnd(void) {
  rs = rs * 1103515245u + 12345u;
  return rs >> 8;
}

static struct sotto__spqr A, B;
static const char *corpus;
static int n_written;

/* Serializes both halves of s and loads them back (a restart), optionally
 * writing the braid record as a fuzz seed. */
static int restart(struct sotto__spqr *s) {
  static uint8_t buf[16384];
  uint8_t *cb;
  size_t n = 0, cn = 0, cl = sotto__spqr_chain_serialized_size(&s->chain);
  struct sotto__braid b2;
  struct sotto__spqr_chain c2;
  if (sotto__braid_serialize(&s->braid, buf, sizeof buf, &n) != 0) return -1;
  if (n != sotto__braid_serialized_size(&s->braid)) return -1;
  if (corpus != NULL && n_written < 24) {
    char path[4096];
    FILE *f;
    snprintf(path, sizeof path, "%s/state%d_%02d", corpus, s->braid.state, n_written++);
    if ((f = fopen(path, "wb")) != NULL) {
      fwrite(buf, 1, n, f);
      fclose(f);
    }
  }
  if (sotto__braid_deserialize(&b2, buf, n) != 0) return -1;
  if (memcmp(&b2, &s->braid, sizeof b2) != 0) {
    /* Only the fields the state holds are kept; compare via a second record. */
    static uint8_t buf2[16384];
    size_t n2 = 0;
    if (sotto__braid_serialize(&b2, buf2, sizeof buf2, &n2) != 0 || n2 != n ||
        memcmp(buf, buf2, n) != 0)
      return -1;
  }
  if ((cb = malloc(cl)) == NULL) return -1;
  if (sotto__spqr_chain_serialize(&s->chain, cb, cl, &cn) != 0 ||
      sotto__spqr_chain_deserialize(&c2, cb, cn) != 0) {
    free(cb);
    return -1;
  }
  free(cb);
  sotto__braid_clear(&s->braid);
  s->braid = b2;
  sotto__spqr_chain_clear(&s->chain);
  s->chain = c2;
  return 0;
}

/* Both records of s, one after the other (to compare states). */
static size_t snap(const struct sotto__spqr *s, uint8_t *out, size_t cap) {
  size_t nb = 0, nc = 0;
  if (sotto__braid_serialize(&s->braid, out, cap, &nb) != 0) return 0;
  if (sotto__spqr_chain_serialize(&s->chain, out + nb, cap - nb, &nc) != 0) return 0;
  return nb + nc;
}

/* The two-step receive with an undo record: a key more chain steps ahead
 * than the budget is refused before any step (state unchanged); within it,
 * the key is the sender's, a rollback restores the state byte for byte, and
 * a commit keeps it. Then B takes the rest of A's messages. */
static void budget_and_undo(void) {
  static uint8_t before[1 << 20], after[1 << 20];
  uint8_t msgs[60][SOTTO_SPQR_MSG_MAX_LEN], keys[60][32], key[32];
  size_t lens[60], nb, na;
  uint32_t budget;
  int has, i;
  struct sotto__spqr_undo u;

  for (i = 0; i < 60; i++)
    CHECK_RC(sotto__spqr_send(&A, msgs[i], sizeof msgs[i], &lens[i], keys[i], &has), 0);
  nb = snap(&B, before, sizeof before);
  CHECK(nb > 0);
  sotto__spqr_undo_init(&u);
  budget = 10;
  CHECK_RC(sotto__spqr_recv_key_u(&B, msgs[59], lens[59], key, &has, &budget, &u), SOTTO_ERR_TOO_FAR_AHEAD);
  CHECK(budget == 10);
  sotto__spqr_rollback(&B, &u);
  na = snap(&B, after, sizeof after);
  CHECK(na == nb && memcmp(before, after, nb) == 0);
  budget = 100;
  CHECK_RC(sotto__spqr_recv_key_u(&B, msgs[59], lens[59], key, &has, &budget, &u), 0);
  CHECK(has && memcmp(key, keys[59], 32) == 0 && budget < 100 && budget >= 100 - 60);
  {
    /* Before the MAC (recv_key) the braid is not touched: no chunk added,
     * no decoding or KEM work for a message that may be forged. */
    static uint8_t b1[1 << 15];
    size_t n1 = 0;
    CHECK_RC(sotto__braid_serialize(&B.braid, b1, sizeof b1, &n1), 0);
    CHECK(n1 < nb && memcmp(before, b1, n1) == 0); /* the braid record leads the snapshot */
  }
  CHECK_RC(sotto__spqr_recv_braid_u(&B, &u), 0);
  sotto__spqr_rollback(&B, &u);
  na = snap(&B, after, sizeof after);
  CHECK(na == nb && memcmp(before, after, nb) == 0);
  budget = 100;
  CHECK_RC(sotto__spqr_recv_key_u(&B, msgs[59], lens[59], key, &has, &budget, &u), 0);
  CHECK_RC(sotto__spqr_recv_braid_u(&B, &u), 0);
  sotto__spqr_commit(&u);
  /* A kept key given out (the undo puts it back where it was), and a
   * rollback after the braid step too. */
  for (int k = 10; k < 58; k += 16) {
    nb = snap(&B, before, sizeof before);
    budget = 100;
    CHECK_RC(sotto__spqr_recv_key_u(&B, msgs[k], lens[k], key, &has, &budget, &u), 0);
    CHECK(has && memcmp(key, keys[k], 32) == 0 && budget == 100);
    if (k > 20) CHECK_RC(sotto__spqr_recv_braid_u(&B, &u), 0);
    sotto__spqr_rollback(&B, &u);
    na = snap(&B, after, sizeof after);
    CHECK(na == nb && memcmp(before, after, nb) == 0);
  }
  for (i = 58; i >= 0; i--) {
    CHECK_RC(sotto__spqr_recv(&B, msgs[i], lens[i], key, &has), 0);
    CHECK(has && memcmp(key, keys[i], 32) == 0);
  }
}

/* The table arithmetic of the erasure code against the bitwise reference:
 * every inverse, and products of a pseudo-random sample and of the edges. */
static void gf16_tables(void) {
  uint32_t a, i, x = 0x9E3779B9u, bad = 0;
  CHECK(sotto__gf16_inv(0) == 0);
  for (a = 1; a < 65536; a++)
    if (sotto__gf16_mul_ref((uint16_t)a, sotto__gf16_inv((uint16_t)a)) != 1) bad++;
  for (i = 0; i < 200000; i++) {
    uint16_t p, q;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    p = (uint16_t)x;
    q = (uint16_t)(x >> 16);
    if (i < 4) p = (uint16_t)(i & 1 ? 0 : 0xFFFF), q = (uint16_t)(i & 2 ? 0 : 1);
    if (sotto__gf16_mul(p, q) != sotto__gf16_mul_ref(p, q)) bad++;
  }
  CHECK(bad == 0);
}

int main(int argc, char **argv) {
  static const uint8_t pqr[32] = {0x42, 1, 2, 3};
  struct pending burst[8];
  int sent = 0, delivered = 0, dropped = 0, good = 0, turn = 0;
  uint64_t max_epoch = 0;

  corpus = argc > 2 ? argv[2] : NULL;
  gf16_tables();
  REQUIRE(sotto__spqr_init(&A, pqr, 1) == 0);
  REQUIRE(sotto__spqr_init(&B, pqr, 0) == 0);
  while (sent < 1000) {
    struct sotto__spqr *from = turn ? &B : &A, *to = turn ? &A : &B;
    int n = 1 + (int)(rnd() % 8), i, has;
    for (i = 0; i < n; i++, sent++) {
      REQUIRE(sotto__spqr_send(from, burst[i].msg, sizeof burst[i].msg, &burst[i].len,
                               burst[i].key, &has) == 0);
      CHECK(has == 1);
    }
    /* Deliver in reverse order when the burst is long, and drop 1 in 12. */
    for (i = 0; i < n; i++) {
      int k = n > 5 ? n - 1 - i : i, rc;
      uint8_t key[32];
      if (rnd() % 12 == 0) {
        dropped++;
        continue;
      }
      rc = sotto__spqr_recv(to, burst[k].msg, burst[k].len, key, &has);
      delivered++;
      if (rc == 0 && has && memcmp(key, burst[k].key, 32) == 0) good++;
      else fprintf(stderr, "message refused: %s\n", tu_errname(rc));
    }
    turn ^= 1;
    /* Restart both sides from their records now and then. */
    if (sent % 7 == 0) {
      CHECK(restart(&A) == 0);
      CHECK(restart(&B) == 0);
    }
  }
  max_epoch = A.chain.current_epoch > B.chain.current_epoch ? A.chain.current_epoch
                                                            : B.chain.current_epoch;
  CHECK(good == delivered);
  /* Record rejections: wrong magic, format, state, epoch 0, a trailing byte,
   * and a decapsulation key that does not belong to the header. */
  {
    static uint8_t rec[16384], t[16385];
    size_t n = 0;
    struct sotto__braid x;
    struct sotto__spqr_msg m;
    uint8_t chunk[32], sec[32];
    uint64_t se;
    int hs;
    struct sotto__braid a2;
    CHECK_RC(sotto__braid_init(&a2, pqr, 1), 0);
    CHECK_RC(sotto__braid_send(&a2, &m, chunk, &hs, sec, &se), 0); /* KeysSampled: dk, hdr, ek */
    CHECK_RC(sotto__braid_serialize(&a2, rec, sizeof rec, &n), 0);
    CHECK_RC(sotto__braid_deserialize(&x, rec, n), 0);
#define BREJECT(mut, want)                              \
  do {                                                  \
    memcpy(t, rec, n);                                  \
    mut;                                                \
    CHECK_RC(sotto__braid_deserialize(&x, t, n), want); \
  } while (0)
    BREJECT(t[0] = 'X', SOTTO_ERR_MALFORMED);
    BREJECT(t[4] = 9, SOTTO_ERR_VERSION);
    BREJECT(t[5] = 12, SOTTO_ERR_MALFORMED);
    BREJECT(t[5] = 0, SOTTO_ERR_MALFORMED);
    BREJECT(t[13] = 0, SOTTO_ERR_MALFORMED);            /* epoch 0 */
    BREJECT(t[6 + 8 + 64 + 1152 + 100] ^= 1, SOTTO_ERR_INVALID_KEY); /* ek inside dk */
    BREJECT(t[6 + 8 + 64 + 2400 + 3] ^= 1, SOTTO_ERR_INVALID_KEY); /* hdr */
    memcpy(t, rec, n);
    t[n] = 0;
    CHECK_RC(sotto__braid_deserialize(&x, t, n + 1), SOTTO_ERR_TRAILING);
    CHECK_RC(sotto__braid_deserialize(&x, rec, n - 1), SOTTO_ERR_TRUNCATED);
    sotto__braid_clear(&a2);
  }
  CHECK(max_epoch >= 5);
  printf("spqr braid: %d sent, %d delivered (%d dropped, bursts reversed), %d keys equal, "
         "epochs reached A %llu B %llu\n", sent, delivered, dropped, good,
         (unsigned long long)A.chain.current_epoch, (unsigned long long)B.chain.current_epoch);

  /* Refusals leave the state as it was. */
  {
    struct pending p;
    uint8_t key[32], bad[SOTTO_SPQR_MSG_MAX_LEN];
    int has, rc;
    CHECK_RC(sotto__spqr_send(&A, p.msg, sizeof p.msg, &p.len, p.key, &has), 0);
    CHECK_RC(sotto__spqr_recv(&B, p.msg, 0, key, &has), SOTTO_ERR_VERSION); /* no SPQR */
    memcpy(bad, p.msg, p.len);
    bad[0] = 2;
    CHECK_RC(sotto__spqr_recv(&B, bad, p.len, key, &has), SOTTO_ERR_VERSION);
    {
      struct sotto__spqr_msg m;
      uint8_t out[SOTTO_SPQR_MSG_MAX_LEN];
      size_t used, n;
      CHECK_RC(sotto__spqr_msg_parse(&m, &used, p.msg, p.len), 0);
      m.epoch += 5; /* an epoch far ahead: its key's epoch is not held (the
                     * key comes before the braid, which would say MALFORMED) */
      n = sotto__spqr_msg_write(out, sizeof out, &m);
      CHECK_RC(sotto__spqr_recv(&B, out, n, key, &has), SOTTO_ERR_NO_SESSION);
    }
    CHECK_RC(sotto__spqr_recv(&B, p.msg, p.len, key, &has), 0);
    CHECK(has && memcmp(key, p.key, 32) == 0);
    rc = sotto__spqr_recv(&B, p.msg, p.len, key, &has); /* a replay */
    CHECK(rc == SOTTO_ERR_DUPLICATE && has == 0);
  }
  budget_and_undo();
  sotto__spqr_clear(&A);
  sotto__spqr_clear(&B);
  return test_done(__FILE__);
}

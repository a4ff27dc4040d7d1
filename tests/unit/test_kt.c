/* SPDX-License-Identifier: Apache-2.0 */
/* test_kt.c: key transparency round trips and refusals.
 *  - log tree (KEYTRANS framing): roots against an independent recursive
 *    reference, every inclusion and consistency proof for sizes 1..40
 *    verified, single-bit flips and wrong indices/sizes refused;
 *  - prefix tree: root against a reference computed from the sorted key set
 *    (shape independent of insertion order), inclusion and non-inclusion for
 *    every kind of end (leaf, other leaf, empty) including keys that split
 *    at depth 255, every bit flip of a proof refused, duplicate and
 *    rollback leave the root unchanged;
 *  - the lookup-version sets: for every n < m <= 600 the owner's
 *    non-inclusion set and a searcher's inclusion set share a version;
 *  - the combined tree: directory, two witnesses, client: search and
 *    monitoring, every bit flip of a search proof, head and cosignature
 *    refused; wrong label, wrong version, a substituted key detected by
 *    monitoring, a split view refused by the witness and by consistency,
 *    replayed updates, tampered updates leaving the witness unchanged. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <sotto/kt.h>

#include "crypto/crypto.h"
#include "kt/kt_internal.h"
#include "testutil.h"

/* ---- variable-time group arithmetic against libsodium ------------------------ */

static void test_ed_vt(void) {
  int i, ok = 1;
  for (i = 0; i < 64; i++) {
    uint8_t r[32], a[32], b[32], p[32], ap[32], bb[32], want[32], got[32], enc[32];
    struct sotto__ge gp, res;
    crypto_core_ed25519_scalar_random(r);
    crypto_core_ed25519_scalar_random(a);
    crypto_core_ed25519_scalar_random(b);
    if (i == 0) memset(a + 16, 0, 16); /* a 128-bit scalar, as c is */
    if (crypto_scalarmult_ed25519_base_noclamp(p, r) != 0 || crypto_scalarmult_ed25519_noclamp(ap, a, p) != 0 ||
        crypto_scalarmult_ed25519_base_noclamp(bb, b) != 0 || crypto_core_ed25519_add(want, ap, bb) != 0) {
      ok = 0;
      continue;
    }
    if (sotto__ge_decode(&gp, p) != 0) ok = 0;
    sotto__ge_encode(enc, &gp);
    if (memcmp(enc, p, 32) != 0) ok = 0;
    sotto__ge_double_mul(&res, a, &gp, b, NULL);
    sotto__ge_encode(got, &res);
    if (memcmp(got, want, 32) != 0) ok = 0;
  }
  CHECK(ok);
  {
    /* y = p (non-canonical 0) and y = p + 1 do not decode; y = 1 is the identity */
    uint8_t s[32];
    struct sotto__ge g;
    memset(s, 0xff, 32);
    s[0] = 0xed;
    s[31] = 0x7f;
    CHECK(sotto__ge_decode(&g, s) != 0);
    s[0] = 0xee;
    CHECK(sotto__ge_decode(&g, s) != 0);
    memset(s, 0, 32);
    s[0] = 1;
    CHECK(sotto__ge_decode(&g, s) == 0 && sotto__ge_is_identity(&g));
    s[31] = 0x80; /* x = 0 with the sign bit set */
    CHECK(sotto__ge_decode(&g, s) != 0);
  }
}

/* The constant-time multiplication (the VRF's secret scalars) against
 * libsodium: random scalars and ones whose signed digits sit on the edges
 * (every nibble 8, 7 or 15: the largest negative and positive digits and
 * the longest carry chains), up to q - 1. */
static void test_ge_mul_ct(void) {
  static const uint8_t q_minus_1[32] = {0xec, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                        0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,    0,    0,    0,    0,
                                        0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};
  int i, ok = 1;
  for (i = 0; i < 72; i++) {
    uint8_t r[32], a[32], p[32], want[32], got[32];
    struct sotto__ge gp, res;
    crypto_core_ed25519_scalar_random(r);
    crypto_core_ed25519_scalar_random(a);
    if (i < 3) {
      memset(a, i == 0 ? 0x88 : i == 1 ? 0x77 : 0xff, 32);
      a[31] = 0x0f; /* below q */
    } else if (i == 3) {
      memcpy(a, q_minus_1, 32);
    } else if (i == 4) {
      memset(a, 0, 32);
      a[0] = 8; /* a single digit 8: one negative window and a carry */
    } else if (i == 5) {
      memset(a, 0, 32);
      a[31] = 0x10; /* 2^252 */
    }
    if (crypto_scalarmult_ed25519_base_noclamp(p, r) != 0 || crypto_scalarmult_ed25519_noclamp(want, a, p) != 0 ||
        sotto__ge_decode(&gp, p) != 0) {
      ok = 0;
      continue;
    }
    sotto__ge_mul_ct(&res, a, &gp);
    sotto__ge_encode(got, &res);
    if (memcmp(got, want, 32) != 0) {
      fprintf(stderr, "ge_mul_ct differs from libsodium for scalar %d\n", i);
      ok = 0;
    }
  }
  CHECK(ok);
}

/* ---- log tree -------------------------------------------------------------- */

static void ref_node(uint8_t out[32], const uint8_t *l, int ll, const uint8_t *r, int rl) {
  uint8_t b[66];
  b[0] = ll ? 0 : 1;
  memcpy(b + 1, l, 32);
  b[33] = rl ? 0 : 1;
  memcpy(b + 34, r, 32);
  crypto_hash_sha256(out, b, 66);
}

static void ref_mth(uint8_t out[32], uint8_t (*leaves)[32], size_t n) {
  uint8_t l[32], r[32];
  size_t k = 1;
  if (n == 1) {
    memcpy(out, leaves[0], 32);
    return;
  }
  while (k * 2 < n) k *= 2;
  ref_mth(l, leaves, k);
  ref_mth(r, leaves + k, n - k);
  ref_node(out, l, k == 1, r, n - k == 1);
}

static void test_log(void) {
  enum { N = 40 };
  uint8_t leaves[N][32], root[N + 1][32], want[32], pr[SOTTO_KT_MAX_LOG_PROOF * 32];
  struct sotto_kt_log *log = NULL;
  size_t pl, s, m, b;
  int ok = 1, flips = 1;
  CHECK_RC(sotto_kt_log_new(&log), 0);
  if (!log) return;
  for (s = 0; s < N; s++) {
    randombytes_buf(leaves[s], 32);
    CHECK_RC(sotto_kt_log_append(log, leaves[s]), 0);
  }
  for (s = 1; s <= N; s++) {
    CHECK_RC(sotto_kt_log_root(root[s], log, s), 0);
    ref_mth(want, leaves, s);
    if (memcmp(want, root[s], 32) != 0) ok = 0;
  }
  CHECK(ok);
  for (s = 1; s <= N; s++) {
    for (m = 0; m < s; m++) {
      if (sotto_kt_log_inclusion_proof(pr, sizeof pr, &pl, log, m, s) != 0) ok = 0;
      if (sotto_kt_log_verify_inclusion(root[s], s, m, leaves[m], pr, pl) != 0) ok = 0;
      if (sotto_kt_log_verify_inclusion(root[s], s, (m + 1) % s, leaves[m], pr, pl) == 0 && s > 1) ok = 0;
      for (b = 0; b < pl * 8; b += 3) {
        pr[b / 8] ^= (uint8_t)(1u << (b % 8));
        if (sotto_kt_log_verify_inclusion(root[s], s, m, leaves[m], pr, pl) == 0) flips = 0;
        pr[b / 8] ^= (uint8_t)(1u << (b % 8));
      }
      if (pl >= 32 && sotto_kt_log_verify_inclusion(root[s], s, m, leaves[m], pr, pl - 32) == 0) ok = 0;
    }
    for (m = 1; m <= s; m++) {
      if (sotto_kt_log_consistency_proof(pr, sizeof pr, &pl, log, m, s) != 0) ok = 0;
      if (sotto_kt_log_verify_consistency(root[m], m, root[s], s, pr, pl) != 0) ok = 0;
      if (m < s && sotto_kt_log_verify_consistency(root[m + 1], m, root[s], s, pr, pl) == 0) ok = 0;
      for (b = 0; b < pl * 8; b += 3) {
        pr[b / 8] ^= (uint8_t)(1u << (b % 8));
        if (sotto_kt_log_verify_consistency(root[m], m, root[s], s, pr, pl) == 0) flips = 0;
        pr[b / 8] ^= (uint8_t)(1u << (b % 8));
      }
    }
  }
  CHECK(ok);
  CHECK(flips);
  CHECK_RC(sotto_kt_log_verify_consistency(root[1], 0, root[2], 2, NULL, 0), SOTTO_ERR_MALFORMED);
  CHECK_RC(sotto_kt_log_verify_inclusion(root[2], 2, 2, leaves[0], pr, 32), SOTTO_ERR_MALFORMED);
  CHECK_RC(sotto_kt_log_verify_inclusion(root[2], 2, 0, leaves[0], pr, 33), SOTTO_ERR_MALFORMED);
  sotto_kt_log_free(log);
}

/* ---- prefix tree ------------------------------------------------------------ */

struct kv {
  uint8_t k[32], c[32];
};

static int kbit(const uint8_t *k, unsigned d) { return (k[d >> 3] >> (7 - (d & 7))) & 1; }

/* Reference root from a sorted key set, by definition. */
static void ref_prefix(uint8_t out[32], const struct kv *e, size_t n, unsigned d) {
  uint8_t b[65];
  size_t i;
  if (n == 0) {
    memset(out, 0, 32);
    return;
  }
  if (n == 1) {
    b[0] = 2;
    memcpy(b + 1, e->k, 32);
    memcpy(b + 33, e->c, 32);
    crypto_hash_sha256(out, b, 65);
    return;
  }
  for (i = 0; i < n && !kbit(e[i].k, d); i++) {
  }
  b[0] = 3;
  ref_prefix(b + 1, e, i, d + 1);
  ref_prefix(b + 33, e + i, n - i, d + 1);
  crypto_hash_sha256(out, b, 65);
}

static int cmp_kv(const void *a, const void *b) { return memcmp(a, b, 32); }

static void test_prefix(void) {
  enum { N = 600 };
  static struct kv e[N + 2];
  uint8_t root[32], want[32], pr[9000], c[32], absent[32], r2[32];
  struct sotto_kt_prefix *p = NULL;
  size_t i, pl, b, mark;
  int found, ok = 1, flips = 1, kinds[3] = {0, 0, 0};
  CHECK_RC(sotto_kt_prefix_new(&p), 0);
  if (!p) return;
  sotto_kt_prefix_root(root, p);
  CHECK(sodium_is_zero(root, 32));
  for (i = 0; i < N; i++) {
    randombytes_buf(e[i].k, 32);
    randombytes_buf(e[i].c, 32);
  }
  /* two keys that differ in the last bit only: leaves at depth 256 */
  memcpy(e[N - 1].k, e[N - 2].k, 32);
  e[N - 1].k[31] ^= 1;
  for (i = 0; i < N; i++) CHECK_RC(sotto_kt_prefix_insert(p, e[i].k, e[i].c), 0);
  CHECK(sotto_kt_prefix_count(p) == N);
  CHECK_RC(sotto_kt_prefix_insert(p, e[3].k, e[4].c), SOTTO_ERR_DUPLICATE);
  qsort(e, N, sizeof e[0], cmp_kv);
  sotto_kt_prefix_root(root, p);
  ref_prefix(want, e, N, 0);
  CHECK(memcmp(root, want, 32) == 0);
  for (i = 0; i < N; i++) {
    if (sotto_kt_prefix_prove(pr, sizeof pr, &pl, p, e[i].k) != 0) ok = 0;
    kinds[pr[0]]++;
    if (sotto_kt_prefix_verify(&found, c, root, e[i].k, pr, pl) != 0 || !found || memcmp(c, e[i].c, 32) != 0)
      ok = 0;
    /* the proof of one key says nothing for another */
    if (sotto_kt_prefix_verify(&found, c, root, e[(i + 1) % N].k, pr, pl) == 0) ok = 0;
    if (i % 50 == 0 || i >= N - 2)
      for (b = 0; b < pl * 8; b++) {
        pr[b / 8] ^= (uint8_t)(1u << (b % 8));
        if (sotto_kt_prefix_verify(&found, c, root, e[i].k, pr, pl) == 0) flips = 0;
        pr[b / 8] ^= (uint8_t)(1u << (b % 8));
      }
  }
  /* absent keys: random (other leaf or empty), and a neighbour of a deep key */
  for (i = 0; i < 300; i++) {
    randombytes_buf(absent, 32);
    if (i == 0) {
      memcpy(absent, e[0].k, 32);
      absent[31] ^= 0x80;
    }
    if (sotto_kt_prefix_prove(pr, sizeof pr, &pl, p, absent) != 0) ok = 0;
    kinds[pr[0]]++;
    if (sotto_kt_prefix_verify(&found, c, root, absent, pr, pl) != 0 || found) ok = 0;
    if (i % 60 == 0)
      for (b = 0; b < pl * 8; b++) {
        pr[b / 8] ^= (uint8_t)(1u << (b % 8));
        if (sotto_kt_prefix_verify(&found, c, root, absent, pr, pl) == 0 && !found) flips = 0;
        pr[b / 8] ^= (uint8_t)(1u << (b % 8));
      }
    CHECK_RC(sotto_kt_prefix_verify(&found, c, root, absent, pr, pl + 1), SOTTO_ERR_TRAILING);
  }
  CHECK(ok);
  CHECK(flips);
  CHECK(kinds[0] == N && kinds[1] > 0 && kinds[2] > 0);
  /* an inclusion proof rewritten as "another leaf ends the path" with the
   * key itself as the other key hashes to the same root: refused */
  {
    uint8_t forged[9100];
    size_t hdr;
    CHECK_RC(sotto_kt_prefix_prove(pr, sizeof pr, &pl, p, e[7].k), 0);
    hdr = 3 + ((size_t)(pr[1] << 8 | pr[2]) + 7) / 8;
    memcpy(forged, pr, hdr);
    forged[0] = 1;
    memcpy(forged + hdr, e[7].k, 32);
    memcpy(forged + hdr + 32, pr + hdr, pl - hdr);
    CHECK_RC(sotto_kt_prefix_verify(&found, c, root, e[7].k, forged, pl + 32), SOTTO_ERR_MALFORMED);
    /* and with another key outside the path's prefix */
    memcpy(forged + hdr, e[8].k, 32);
    CHECK(sotto_kt_prefix_verify(&found, c, root, e[7].k, forged, pl + 32) != 0);
  }
  /* rollback: a batch inserted and undone leaves the root as it was */
  mark = sotto__kt_prefix_mark(p);
  randombytes_buf(e[N].k, 32);
  memcpy(e[N + 1].k, e[5].k, 32);
  e[N + 1].k[31] ^= 2;
  CHECK_RC(sotto_kt_prefix_insert(p, e[N].k, e[0].c), 0);
  CHECK_RC(sotto_kt_prefix_insert(p, e[N + 1].k, e[0].c), 0);
  sotto_kt_prefix_root(r2, p);
  CHECK(memcmp(r2, root, 32) != 0);
  sotto__kt_prefix_rollback(p, mark);
  sotto_kt_prefix_root(r2, p);
  CHECK(memcmp(r2, root, 32) == 0);
  CHECK(sotto_kt_prefix_count(p) == N);
  CHECK_RC(sotto_kt_prefix_prove(pr, sizeof pr, &pl, p, e[N + 1].k), 0);
  CHECK(sotto_kt_prefix_verify(&found, c, root, e[N + 1].k, pr, pl) == 0 && !found);
  sotto_kt_prefix_free(p);
}

/* ---- lookup versions --------------------------------------------------------- */

static void test_versions(void) {
  uint32_t a[SOTTO__KT_MAX_LOOKUPS], b[SOTTO__KT_MAX_LOOKUPS];
  uint32_t n, m;
  size_t na, nb, i, j, maxn = 0;
  int ok = 1;
  for (n = 0; n < 600; n++) {
    na = sotto__kt_lookup_versions(a, n);
    if (na > maxn) maxn = na;
    for (m = n + 1; m <= 600; m++) {
      int hit = 0;
      nb = sotto__kt_lookup_versions(b, m);
      /* some u with n < u <= m: non-inclusion for the owner of n, inclusion for m */
      for (i = 0; i < na && !hit; i++)
        for (j = 0; j < nb && !hit; j++)
          if (a[i] == b[j] && a[i] > n && b[j] <= m) hit = 1;
      if (!hit) ok = 0;
    }
  }
  CHECK(ok);
  CHECK(sotto__kt_lookup_versions(a, 0) == 2 && a[0] == 0 && a[1] == 1);
  CHECK(sotto__kt_lookup_versions(a, SOTTO_KT_ABSENT) == 1 && a[0] == 0);
  na = sotto__kt_lookup_versions(a, SOTTO_KT_MAX_VERSION);
  CHECK(na <= SOTTO__KT_MAX_LOOKUPS);
  for (i = 1; i < na; i++) CHECK(a[i - 1] < a[i]);
  CHECK(maxn < 30);
}

/* ---- combined tree ------------------------------------------------------------ */

struct world {
  struct sotto_kt_dir *d;
  struct sotto_kt_log_id id;
  uint8_t *upd[8];
  size_t ul[8];
  struct sotto_kt_head heads[8];
  int n;
};

static int commit(struct world *w, uint64_t ts) {
  size_t cap = sotto_kt_update_len(sotto_kt_dir_staged(w->d));
  int rc;
  w->upd[w->n] = malloc(cap);
  rc = sotto_kt_dir_commit(w->d, &w->heads[w->n], w->upd[w->n], cap, &w->ul[w->n], ts);
  if (rc == 0) {
    w->n++;
  } else {
    free(w->upd[w->n]);
    w->upd[w->n] = NULL;
  }
  return rc;
}

static void world_free(struct world *w) {
  int i;
  for (i = 0; i < 8; i++) free(w->upd[i]);
  sotto_kt_dir_free(w->d);
}

#define L(s) (const uint8_t *)(s), strlen(s)

static void test_combined(void) {
  static const uint8_t sig_seed[32] = {1}, vrf_sk[32] = {2}, w1_seed[32] = {3}, w2_seed[32] = {4},
                       w3_seed[32] = {5};
  struct world A = {0}, B = {0};
  struct sotto_kt_witness *w1 = NULL, *w2 = NULL, *wb = NULL;
  struct sotto_kt_head h, h2;
  uint8_t op_a0[16], op_b0[16], op_b1[16], op_b2[16], op_x[16], wpk[3][32], wsk[64], cos[3 * 80];
  uint8_t proof[SOTTO_KT_MAX_SEARCH_PROOF_LEN], val[SOTTO_KT_MAX_VALUE_LEN], hb[SOTTO_KT_HEAD_LEN], cp[64 * 32];
  size_t pl, vl, b, cpl;
  uint32_t ver;
  unsigned valid;
  int i, flips = 1;
  crypto_sign_seed_keypair(wpk[0], wsk, w1_seed);
  crypto_sign_seed_keypair(wpk[1], wsk, w2_seed);
  crypto_sign_seed_keypair(wpk[2], wsk, w3_seed);

  CHECK_RC(sotto_kt_dir_new(&A.d, sig_seed, vrf_sk), 0);
  CHECK_RC(sotto_kt_dir_new(&B.d, sig_seed, vrf_sk), 0); /* the same operator keys: a split view */
  if (!A.d || !B.d) goto out;
  sotto_kt_dir_log_id(&A.id, A.d);
  B.id = A.id;
  CHECK_RC(sotto_kt_dir_head(&h, A.d), SOTTO_ERR_USAGE);
  /* entry 1: alice v0, bob v0 */
  CHECK_RC(sotto_kt_dir_add(A.d, op_a0, L("alice"), 0, L("alice-key-0")), 0);
  CHECK_RC(sotto_kt_dir_add(A.d, op_b0, L("bob"), 0, L("bob-key-0")), 0);
  CHECK_RC(commit(&A, 1000), 0);
  CHECK_RC(sotto_kt_dir_add(A.d, op_x, L("bob"), 0, L("bob-key-0")), SOTTO_ERR_DUPLICATE);
  /* entry 2: bob v1, and many others */
  CHECK_RC(sotto_kt_dir_add(A.d, op_b1, L("bob"), 1, L("bob-key-1")), 0);
  for (i = 0; i < 40; i++) {
    char lab[16];
    snprintf(lab, sizeof lab, "user%d", i);
    CHECK_RC(sotto_kt_dir_add(A.d, op_x, L(lab), 0, L("k")), 0);
  }
  CHECK_RC(commit(&A, 2000), 0);
  /* entry 3: empty */
  CHECK_RC(commit(&A, 3000), 0);
  CHECK_RC(commit(&A, 2999), SOTTO_ERR_USAGE); /* time goes forward */

  /* witnesses follow */
  CHECK_RC(sotto_kt_witness_new(&w1, &A.id), 0);
  CHECK_RC(sotto_kt_witness_new(&w2, &A.id), 0);
  if (!w1 || !w2) goto out;
  CHECK_RC(sotto_kt_witness_cosign(cos, w1, w1_seed, 1, &A.heads[0]), SOTTO_ERR_KT_FORK);
  for (i = 0; i < A.n; i++) {
    /* a tampered update: refused, the witness unchanged */
    size_t j;
    for (j = 0; j < A.ul[i] * 8; j += 61) {
      A.upd[i][j / 8] ^= (uint8_t)(1u << (j % 8));
      if (sotto_kt_witness_apply(w1, A.upd[i], A.ul[i], &A.heads[i]) == 0) flips = 0;
      A.upd[i][j / 8] ^= (uint8_t)(1u << (j % 8));
    }
    CHECK(sotto_kt_witness_size(w1) == (uint64_t)i);
    if (i > 0) CHECK_RC(sotto_kt_witness_apply(w1, A.upd[i - 1], A.ul[i - 1], &A.heads[i - 1]), SOTTO_ERR_KT_FORK);
    CHECK_RC(sotto_kt_witness_apply(w1, A.upd[i], A.ul[i], &A.heads[i]), 0);
    CHECK_RC(sotto_kt_witness_apply(w2, A.upd[i], A.ul[i], &A.heads[i]), 0);
  }
  CHECK(flips);
  h = A.heads[A.n - 1];
  CHECK_RC(sotto_kt_witness_cosign(cos, w1, w1_seed, 100, &h), 0);
  CHECK_RC(sotto_kt_witness_cosign(cos + 80, w2, w2_seed, 101, &h), 0);
  CHECK_RC(sotto_kt_witness_cosign(cos + 160, w1, w1_seed, 1, &A.heads[0]), SOTTO_ERR_KT_FORK); /* not its head */
  CHECK_RC(sotto_kt_head_verify_quorum(&valid, &h, &A.id, wpk[0], 3, 2, cos, 160), 0);
  CHECK(valid == 2);
  CHECK_RC(sotto_kt_head_verify_quorum(&valid, &h, &A.id, wpk[0], 3, 3, cos, 160), SOTTO_ERR_KT_QUORUM);
  /* the same witness twice counts once */
  memcpy(cos + 160, cos, 80);
  CHECK_RC(sotto_kt_head_verify_quorum(&valid, &h, &A.id, wpk[0], 1, 1, cos + 80, 160), 0);
  CHECK_RC(sotto_kt_head_verify_quorum(&valid, &h, &A.id, wpk[0], 3, 2, cos + 160, 80), SOTTO_ERR_KT_QUORUM);
  CHECK(valid == 1);
  CHECK_RC(sotto_kt_head_verify_quorum(&valid, &h, &A.id, wpk[0], 3, 1, cos, 79), SOTTO_ERR_MALFORMED);
  /* every bit flip of a cosignature and of the head is refused */
  flips = 1;
  for (b = 0; b < 80 * 8; b++) {
    cos[b / 8] ^= (uint8_t)(1u << (b % 8));
    if (sotto_kt_head_verify_quorum(NULL, &h, &A.id, wpk[0], 3, 1, cos, 80) == 0) flips = 0;
    cos[b / 8] ^= (uint8_t)(1u << (b % 8));
  }
  sotto_kt_head_encode(hb, &h);
  for (b = 0; b < SOTTO_KT_HEAD_LEN * 8; b++) {
    hb[b / 8] ^= (uint8_t)(1u << (b % 8));
    if (sotto_kt_head_decode(&h2, hb, sizeof hb) == 0 &&
        sotto_kt_head_verify_quorum(NULL, &h2, &A.id, wpk[0], 3, 1, cos, 160) == 0)
      flips = 0;
    hb[b / 8] ^= (uint8_t)(1u << (b % 8));
  }
  CHECK(flips);
  CHECK_RC(sotto_kt_head_decode(&h2, hb, sizeof hb), 0);
  CHECK(memcmp(&h2, &h, sizeof h) == 0);
  CHECK_RC(sotto_kt_head_decode(&h2, hb, sizeof hb - 1), SOTTO_ERR_TRUNCATED);

  /* search: alice v0 */
  CHECK_RC(sotto_kt_dir_search(proof, sizeof proof, &pl, A.d, L("alice"), 0, L("alice-key-0"), op_a0), 0);
  CHECK_RC(sotto_kt_search_verify(&ver, val, &vl, &h, &A.id, L("alice"), proof, pl), 0);
  CHECK(ver == 0 && vl == 11 && memcmp(val, "alice-key-0", 11) == 0);
  /* wrong label, an older head, a stale version, the wrong value: refused */
  CHECK(sotto_kt_search_verify(&ver, val, &vl, &h, &A.id, L("alicf"), proof, pl) != 0);
  CHECK(sotto_kt_search_verify(&ver, val, &vl, &A.heads[0], &A.id, L("alice"), proof, pl) != 0);

  /* version proofs: bob v0 (not his greatest) and v1 against the newest head */
  {
    uint8_t vp[SOTTO_KT_MAX_VERSION_PROOF_LEN];
    size_t vpl, bit;
    int vflips = 1;
    CHECK_RC(sotto_kt_dir_prove_version(vp, sizeof vp, &vpl, A.d, L("bob"), 0, L("bob-key-0"), op_b0), 0);
    CHECK(vpl <= SOTTO_KT_MAX_VERSION_PROOF_LEN);
    CHECK_RC(sotto_kt_version_verify(val, &vl, &h, &A.id, L("bob"), 0, vp, vpl), 0);
    CHECK(vl == 9 && memcmp(val, "bob-key-0", 9) == 0);
    /* another version number, label, head, log identity; cut, trailing: refused */
    CHECK_RC(sotto_kt_version_verify(val, &vl, &h, &A.id, L("bob"), 1, vp, vpl), SOTTO_ERR_MALFORMED);
    CHECK(sotto_kt_version_verify(val, &vl, &h, &A.id, L("bof"), 0, vp, vpl) != 0);
    CHECK(sotto_kt_version_verify(val, &vl, &A.heads[0], &A.id, L("bob"), 0, vp, vpl) != 0);
    CHECK(sotto_kt_version_verify(val, &vl, &h, &A.id, L("bob"), 0, vp, vpl - 1) != 0);
    vp[vpl] = 0;
    CHECK_RC(sotto_kt_version_verify(val, &vl, &h, &A.id, L("bob"), 0, vp, vpl + 1), SOTTO_ERR_TRAILING);
    CHECK_RC(sotto_kt_version_verify(val, &vl, &h, &A.id, L("bob"), 0, vp, SOTTO_KT_MAX_VERSION_PROOF_LEN + 1),
             SOTTO_ERR_TOO_LARGE);
    /* every bit flip is refused (or changes nothing it vouches for) */
    for (bit = 0; bit < vpl * 8; bit += 3) {
      vp[bit / 8] ^= (uint8_t)(1u << (bit % 8));
      if (sotto_kt_version_verify(val, &vl, &h, &A.id, L("bob"), 0, vp, vpl) == 0) vflips = 0;
      vp[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    CHECK(vflips);
    CHECK_RC(sotto_kt_dir_prove_version(vp, sizeof vp, &vpl, A.d, L("bob"), 1, L("bob-key-1"), op_b1), 0);
    CHECK_RC(sotto_kt_version_verify(val, &vl, &h, &A.id, L("bob"), 1, vp, vpl), 0);
    CHECK(vl == 9 && memcmp(val, "bob-key-1", 9) == 0);
    /* the operator cannot prove a version or value that is not logged */
    CHECK_RC(sotto_kt_dir_prove_version(vp, sizeof vp, &vpl, A.d, L("bob"), 1, L("bob-key-X"), op_b1),
             SOTTO_ERR_USAGE);
    CHECK_RC(sotto_kt_dir_prove_version(vp, sizeof vp, &vpl, A.d, L("bob"), 7, L("bob-key-1"), op_b1),
             SOTTO_ERR_USAGE);
  }
  CHECK_RC(sotto_kt_dir_search(proof, sizeof proof, &pl, A.d, L("bob"), 0, L("bob-key-0"), op_b0),
           SOTTO_ERR_USAGE);
  CHECK_RC(sotto_kt_dir_search(proof, sizeof proof, &pl, A.d, L("bob"), 1, L("bob-key-X"), op_b1),
           SOTTO_ERR_USAGE);
  /* every bit flip of a search proof is refused (alice: two lookups) */
  CHECK_RC(sotto_kt_dir_search(proof, sizeof proof, &pl, A.d, L("alice"), 0, L("alice-key-0"), op_a0), 0);
  flips = 1;
  for (b = 0; b < pl * 8; b++) {
    proof[b / 8] ^= (uint8_t)(1u << (b % 8));
    if (sotto_kt_search_verify(&ver, val, &vl, &h, &A.id, L("alice"), proof, pl) == 0) flips = 0;
    proof[b / 8] ^= (uint8_t)(1u << (b % 8));
  }
  CHECK(flips);
  CHECK_RC(sotto_kt_search_verify(&ver, val, &vl, &h, &A.id, L("alice"), proof, pl + 1), SOTTO_ERR_TRAILING);
  for (b = 0; b < pl; b += 97) CHECK(sotto_kt_search_verify(&ver, val, &vl, &h, &A.id, L("alice"), proof, b) != 0);
  /* bob: greatest version 1 */
  CHECK_RC(sotto_kt_dir_search(proof, sizeof proof, &pl, A.d, L("bob"), 1, L("bob-key-1"), op_b1), 0);
  CHECK_RC(sotto_kt_search_verify(&ver, val, &vl, &h, &A.id, L("bob"), proof, pl), 0);
  CHECK(ver == 1 && vl == 9 && memcmp(val, "bob-key-1", 9) == 0);
  CHECK_RC(sotto_kt_monitor_verify(&h, &A.id, L("bob"), 1, L("bob-key-1"), proof, pl), 0);
  CHECK_RC(sotto_kt_monitor_verify(&h, &A.id, L("bob"), 0, L("bob-key-0"), proof, pl), SOTTO_ERR_UNTRUSTED_IDENTITY);
  CHECK_RC(sotto_kt_monitor_verify(&h, &A.id, L("bob"), 1, L("bob-key-2"), proof, pl), SOTTO_ERR_UNTRUSTED_IDENTITY);
  flips = 1;
  for (b = 0; b < pl * 8; b += 5) {
    proof[b / 8] ^= (uint8_t)(1u << (b % 8));
    if (sotto_kt_search_verify(&ver, val, &vl, &h, &A.id, L("bob"), proof, pl) == 0) flips = 0;
    proof[b / 8] ^= (uint8_t)(1u << (b % 8));
  }
  CHECK(flips);
  /* an unknown label: the absent proof */
  CHECK_RC(sotto_kt_dir_search(proof, sizeof proof, &pl, A.d, L("carol"), SOTTO_KT_ABSENT, NULL, 0, NULL), 0);
  CHECK_RC(sotto_kt_search_verify(&ver, val, &vl, &h, &A.id, L("carol"), proof, pl), 0);
  CHECK(ver == SOTTO_KT_ABSENT && vl == 0);
  CHECK_RC(sotto_kt_dir_search(proof, sizeof proof, &pl, A.d, L("bob"), SOTTO_KT_ABSENT, NULL, 0, NULL),
           SOTTO_ERR_USAGE);

  /* keep bob's v1 proof: after v2 is logged it is stale and refused against the new head */
  {
    static uint8_t stale[SOTTO_KT_MAX_SEARCH_PROOF_LEN];
    size_t stale_len;
    CHECK_RC(sotto_kt_dir_search(stale, sizeof stale, &stale_len, A.d, L("bob"), 1, L("bob-key-1"), op_b1), 0);
    CHECK_RC(sotto_kt_dir_add(A.d, op_b2, L("bob"), 2, L("evil-key")), 0);
    CHECK_RC(commit(&A, 4000), 0);
    CHECK(sotto_kt_search_verify(&ver, val, &vl, &A.heads[A.n - 1], &A.id, L("bob"), stale, stale_len) != 0);
    CHECK_RC(sotto_kt_search_verify(&ver, val, &vl, &h, &A.id, L("bob"), stale, stale_len), 0);
  }
  /* the operator logged a substituted key for bob (v2): bob's monitoring
   * round sees a version he did not make; alice sees the change */
  CHECK_RC(sotto_kt_witness_apply(w1, A.upd[A.n - 1], A.ul[A.n - 1], &A.heads[A.n - 1]), 0);
  h2 = A.heads[A.n - 1];
  CHECK_RC(sotto_kt_dir_search(proof, sizeof proof, &pl, A.d, L("bob"), 1, L("bob-key-1"), op_b1), SOTTO_ERR_USAGE);
  CHECK_RC(sotto_kt_dir_search(proof, sizeof proof, &pl, A.d, L("bob"), 2, L("evil-key"), op_b2), 0);
  CHECK_RC(sotto_kt_monitor_verify(&h2, &A.id, L("bob"), 1, L("bob-key-1"), proof, pl), SOTTO_ERR_UNTRUSTED_IDENTITY);
  CHECK_RC(sotto_kt_search_verify(&ver, val, &vl, &h2, &A.id, L("bob"), proof, pl), 0);
  CHECK(ver == 2);
  /* the new head is consistent with the old one; the client checks it */
  CHECK_RC(sotto_kt_dir_consistency(cp, sizeof cp, &cpl, A.d, h.tree_size), 0);
  CHECK_RC(sotto_kt_log_verify_consistency(h.root, h.tree_size, h2.root, h2.tree_size, cp, cpl), 0);

  /* split view: B has the same keys but a different history */
  CHECK_RC(sotto_kt_dir_add(B.d, op_x, L("alice"), 0, L("alice-key-0")), 0);
  CHECK_RC(sotto_kt_dir_add(B.d, op_x, L("bob"), 0, L("ghost-key")), 0);
  CHECK_RC(commit(&B, 1000), 0);
  for (i = 0; i < 3; i++) CHECK_RC(commit(&B, 5000 + (uint64_t)i), 0);
  /* w1 has cosigned A's entries: B's head of the same size is not an extension */
  CHECK_RC(sotto_kt_witness_apply(w2, B.upd[0], B.ul[0], &B.heads[0]), SOTTO_ERR_KT_FORK);
  CHECK_RC(sotto_kt_witness_cosign(cos, w1, w1_seed, 200, &B.heads[3]), SOTTO_ERR_KT_FORK);
  CHECK_RC(sotto_kt_witness_cosign(cos, w2, w2_seed, 200, &B.heads[2]), SOTTO_ERR_KT_FORK);
  /* its own witness applies B and cosigns, but a client needs k = 2 of its witnesses */
  CHECK_RC(sotto_kt_witness_new(&wb, &B.id), 0);
  for (i = 0; wb && i < B.n; i++) CHECK_RC(sotto_kt_witness_apply(wb, B.upd[i], B.ul[i], &B.heads[i]), 0);
  CHECK_RC(sotto_kt_witness_cosign(cos, wb, w3_seed, 300, &B.heads[3]), 0);
  CHECK_RC(sotto_kt_head_verify_quorum(&valid, &B.heads[3], &B.id, wpk[0], 3, 2, cos, 80), SOTTO_ERR_KT_QUORUM);
  /* and a client that saw A's head finds B's not consistent with it */
  CHECK_RC(sotto_kt_dir_consistency(cp, sizeof cp, &cpl, B.d, h.tree_size), 0);
  CHECK_RC(sotto_kt_log_verify_consistency(h.root, h.tree_size, B.heads[3].root, B.heads[3].tree_size, cp, cpl),
           SOTTO_ERR_AUTH);
  /* B's search for bob shows the ghost key, against B's head only */
  CHECK_RC(sotto_kt_dir_search(proof, sizeof proof, &pl, B.d, L("bob"), 0, L("ghost-key"), op_x), 0);
  CHECK_RC(sotto_kt_search_verify(&ver, val, &vl, &B.heads[3], &B.id, L("bob"), proof, pl), 0);
  CHECK(sotto_kt_search_verify(&ver, val, &vl, &h2, &A.id, L("bob"), proof, pl) != 0);

  /* a head with an older time, or a bad signature: refused */
  {
    struct sotto_kt_witness *w4 = NULL;
    struct sotto_kt_head bad = A.heads[0];
    CHECK_RC(sotto_kt_witness_new(&w4, &A.id), 0);
    bad.sig[5] ^= 1;
    CHECK_RC(sotto_kt_witness_apply(w4, A.upd[0], A.ul[0], &bad), SOTTO_ERR_AUTH);
    CHECK_RC(sotto_kt_witness_apply(w4, A.upd[1], A.ul[1], &A.heads[1]), SOTTO_ERR_KT_FORK);
    CHECK_RC(sotto_kt_witness_apply(w4, A.upd[0], A.ul[0], &A.heads[0]), 0);
    /* re-logging a key that is in the tree is not an extension */
    CHECK_RC(sotto_kt_witness_apply(w4, A.upd[0], A.ul[0], &A.heads[1]), SOTTO_ERR_KT_FORK);
    /* unsorted update */
    if (A.ul[1] >= 12 + 128) {
      uint8_t *u = malloc(A.ul[1]);
      memcpy(u, A.upd[1], A.ul[1]);
      memcpy(u + 12, A.upd[1] + 76, 64);
      memcpy(u + 76, A.upd[1] + 12, 64);
      CHECK_RC(sotto_kt_witness_apply(w4, u, A.ul[1], &A.heads[1]), SOTTO_ERR_MALFORMED);
      free(u);
    }
    CHECK_RC(sotto_kt_witness_apply(w4, A.upd[1], A.ul[1], &A.heads[1]), 0);
    CHECK(sotto_kt_witness_size(w4) == 2);
    sotto_kt_witness_free(w4);
  }

  /* the operator restarts: a fresh directory replays its updates */
  {
    struct sotto_kt_dir *d2 = NULL;
    struct sotto_kt_head hh;
    CHECK_RC(sotto_kt_dir_new(&d2, sig_seed, vrf_sk), 0);
    for (i = 0; d2 && i < A.n; i++) CHECK_RC(sotto_kt_dir_replay(d2, A.upd[i], A.ul[i], &A.heads[i]), 0);
    CHECK_RC(sotto_kt_dir_head(&hh, d2), 0);
    CHECK(memcmp(&hh, &h2, sizeof hh) == 0);
    CHECK_RC(sotto_kt_dir_search(proof, sizeof proof, &pl, d2, L("alice"), 0, L("alice-key-0"), op_a0), 0);
    CHECK_RC(sotto_kt_search_verify(&ver, val, &vl, &h2, &A.id, L("alice"), proof, pl), 0);
    sotto_kt_dir_free(d2);
  }
out:
  sotto_kt_witness_free(w1);
  sotto_kt_witness_free(w2);
  sotto_kt_witness_free(wb);
  world_free(&A);
  world_free(&B);
}

int main(void) {
  if (sodium_init() < 0) return 1;
  test_ed_vt();
  test_ge_mul_ct();
  test_log();
  test_prefix();
  test_versions();
  test_combined();
  return test_done("kt");
}

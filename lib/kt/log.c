/* SPDX-License-Identifier: Apache-2.0 */
/* log.c: the KEYTRANS log tree (RFC 6962 / 9162 shape: left-balanced, the
 * split k = the largest power of two below n), its inclusion and
 * consistency proofs, and their verification.
 *
 * Hashing (KEYTRANS): a parent is SHA-256(flag(l) || l || flag(r) || r)
 * with flag 0x00 when that child is a leaf and 0x01 when it is a parent;
 * leaves are the 32-byte log leaves as given (no prefix). The RFC 6962
 * framing (SHA-256(0x01 || l || r)) exists only for the vectors.
 *
 * Proofs are verified by recursion over (index, size) instead of the RFC
 * 9162 bit loop: the subtree sizes are then known at each step, and with
 * them whether a sibling is a leaf, which the KEYTRANS framing needs. The
 * recursion depth is at most 63 (size <= 2^62). */
#include <stdlib.h>
#include <string.h>

#include <sotto/kt.h>

#include "crypto/crypto.h"
#include "kt/kt_internal.h"

#define MAX_LEVELS 64

struct sotto_kt_log {
  int framing;
  uint64_t n;
  /* lvl[h][i]: hash of the complete subtree of 2^h leaves starting at i * 2^h */
  uint8_t (*lvl[MAX_LEVELS])[32];
  uint64_t cap[MAX_LEVELS];
};

void sotto__kt_node(uint8_t out[32], int framing, const uint8_t l[32], int l_leaf, const uint8_t r[32],
                    int r_leaf) {
  uint8_t b[66];
  if (framing == SOTTO__KT_FRAMING_RFC6962) {
    b[0] = 0x01;
    memcpy(b + 1, l, 32);
    memcpy(b + 33, r, 32);
    sotto__sha256(out, b, 65);
    return;
  }
  b[0] = l_leaf ? 0x00 : 0x01;
  memcpy(b + 1, l, 32);
  b[33] = r_leaf ? 0x00 : 0x01;
  memcpy(b + 34, r, 32);
  sotto__sha256(out, b, 66);
}

/* Largest power of two strictly below n (n >= 2). */
static uint64_t split(uint64_t n) {
  uint64_t k = 1;
  while (k << 1 < n) k <<= 1;
  return k;
}

void sotto_kt_log_leaf(uint8_t leaf[32], uint64_t timestamp_ms, const uint8_t prefix_root[32]) {
  uint8_t b[40];
  int i;
  for (i = 0; i < 8; i++) b[i] = (uint8_t)(timestamp_ms >> (56 - 8 * i));
  memcpy(b + 8, prefix_root, 32);
  sotto__sha256(leaf, b, sizeof b);
}

int sotto__kt_log_new_framing(struct sotto_kt_log **out, int framing) {
  struct sotto_kt_log *l;
  if (!out) return SOTTO_ERR_USAGE;
  *out = NULL;
  if ((l = calloc(1, sizeof *l)) == NULL) return SOTTO_ERR_NOMEM;
  l->framing = framing;
  *out = l;
  return 0;
}

int sotto_kt_log_new(struct sotto_kt_log **out) { return sotto__kt_log_new_framing(out, SOTTO__KT_FRAMING_KT); }

void sotto_kt_log_free(struct sotto_kt_log *log) {
  int h;
  if (!log) return;
  for (h = 0; h < MAX_LEVELS; h++) free(log->lvl[h]);
  free(log);
}

uint64_t sotto_kt_log_size(const struct sotto_kt_log *log) { return log ? log->n : 0; }

static int reserve(struct sotto_kt_log *log, int h, uint64_t count) {
  uint64_t c;
  void *p;
  if (count <= log->cap[h]) return 0;
  c = log->cap[h] ? log->cap[h] * 2 : 64;
  while (c < count) c *= 2;
  if (c > SIZE_MAX / 32) return SOTTO_ERR_NOMEM;
  if ((p = realloc(log->lvl[h], (size_t)c * 32)) == NULL) return SOTTO_ERR_NOMEM;
  log->lvl[h] = p;
  log->cap[h] = c;
  return 0;
}

int sotto_kt_log_append(struct sotto_kt_log *log, const uint8_t leaf[32]) {
  uint64_t i;
  int h, rc;
  if (!log || !leaf) return SOTTO_ERR_USAGE;
  if (log->n >= SOTTO_KT_MAX_TREE_SIZE) return SOTTO_ERR_TOO_LARGE;
  /* Reserve every level first so a failure leaves the log unchanged. */
  for (h = 0, i = log->n; h < MAX_LEVELS - 1; h++, i >>= 1) {
    if ((rc = reserve(log, h, i + 1)) != 0) return rc;
    if (!(i & 1)) break;
  }
  memcpy(log->lvl[0][log->n], leaf, 32);
  for (h = 0, i = log->n; (i & 1) && h < MAX_LEVELS - 1; h++, i >>= 1)
    sotto__kt_node(log->lvl[h + 1][i >> 1], log->framing, log->lvl[h][i - 1], h == 0, log->lvl[h][i], h == 0);
  log->n++;
  return 0;
}

/* Hash of leaves [a, a + n), n >= 1, inside the stored tree. */
static void mth(uint8_t out[32], const struct sotto_kt_log *log, uint64_t a, uint64_t n) {
  uint8_t l[32], r[32];
  uint64_t k;
  if ((n & (n - 1)) == 0 && a % n == 0) {
    int h = 0;
    while ((1ull << h) < n) h++;
    memcpy(out, log->lvl[h][a >> h], 32);
    return;
  }
  k = split(n);
  mth(l, log, a, k);
  mth(r, log, a + k, n - k);
  sotto__kt_node(out, log->framing, l, k == 1, r, n - k == 1);
}

int sotto_kt_log_root(uint8_t root[32], const struct sotto_kt_log *log, uint64_t size) {
  if (!root || !log || size == 0 || size > log->n) return SOTTO_ERR_USAGE;
  mth(root, log, 0, size);
  return 0;
}

struct pw {
  uint8_t *out;
  size_t cap, len;
  int err;
};

static void put(struct pw *w, const uint8_t h[32]) {
  if (w->err || w->cap - w->len < 32 || w->len / 32 >= SOTTO_KT_MAX_LOG_PROOF) {
    w->err = SOTTO_ERR_BUFFER_TOO_SMALL;
    return;
  }
  memcpy(w->out + w->len, h, 32);
  w->len += 32;
}

/* RFC 6962 PATH(m, D[a : a+n]). */
static void path(struct pw *w, const struct sotto_kt_log *log, uint64_t m, uint64_t a, uint64_t n) {
  uint8_t s[32];
  uint64_t k;
  if (n <= 1) return;
  k = split(n);
  if (m < k) {
    path(w, log, m, a, k);
    mth(s, log, a + k, n - k);
  } else {
    path(w, log, m - k, a + k, n - k);
    mth(s, log, a, k);
  }
  put(w, s);
}

/* RFC 6962 SUBPROOF(m, D[a : a+n], b). */
static void subproof(struct pw *w, const struct sotto_kt_log *log, uint64_t m, uint64_t a, uint64_t n, int b) {
  uint8_t s[32];
  uint64_t k;
  if (m == n) {
    if (!b) {
      mth(s, log, a, n);
      put(w, s);
    }
    return;
  }
  k = split(n);
  if (m <= k) {
    subproof(w, log, m, a, k, b);
    mth(s, log, a + k, n - k);
  } else {
    subproof(w, log, m - k, a + k, n - k, 0);
    mth(s, log, a, k);
  }
  put(w, s);
}

int sotto_kt_log_inclusion_proof(uint8_t *out, size_t cap, size_t *out_len, const struct sotto_kt_log *log,
                                 uint64_t index, uint64_t size) {
  struct pw w = {out, cap, 0, 0};
  if (!out_len) return SOTTO_ERR_USAGE;
  *out_len = 0;
  if (!log || (!out && cap) || size == 0 || size > log->n || index >= size) return SOTTO_ERR_USAGE;
  path(&w, log, index, 0, size);
  if (w.err) return w.err;
  *out_len = w.len;
  return 0;
}

int sotto_kt_log_consistency_proof(uint8_t *out, size_t cap, size_t *out_len, const struct sotto_kt_log *log,
                                   uint64_t old_size, uint64_t new_size) {
  struct pw w = {out, cap, 0, 0};
  if (!out_len) return SOTTO_ERR_USAGE;
  *out_len = 0;
  if (!log || (!out && cap) || old_size == 0 || old_size > new_size || new_size > log->n) return SOTTO_ERR_USAGE;
  subproof(&w, log, old_size, 0, new_size, 1);
  if (w.err) return w.err;
  *out_len = w.len;
  return 0;
}

/* ---- verification -------------------------------------------------------- */

/* Recomputes the root of a tree of n leaves from leaf m and the last `cnt`
 * proof hashes before proof[cnt] (deepest first). -1 if the proof is too
 * short; *used counts what it consumed. */
static int incl_root(uint8_t out[32], int framing, uint64_t m, uint64_t n, const uint8_t leaf[32],
                     const uint8_t *proof, size_t cnt) {
  uint8_t sub[32];
  const uint8_t *sib;
  uint64_t k;
  if (n == 1) {
    if (cnt != 0) return -1;
    memcpy(out, leaf, 32);
    return 0;
  }
  if (cnt == 0) return -1;
  sib = proof + (cnt - 1) * 32;
  k = split(n);
  if (m < k) {
    if (incl_root(sub, framing, m, k, leaf, proof, cnt - 1) != 0) return -1;
    sotto__kt_node(out, framing, sub, k == 1, sib, n - k == 1);
  } else {
    if (incl_root(sub, framing, m - k, n - k, leaf, proof, cnt - 1) != 0) return -1;
    sotto__kt_node(out, framing, sib, k == 1, sub, n - k == 1);
  }
  return 0;
}

int sotto__kt_verify_inclusion(int framing, const uint8_t root[32], uint64_t size, uint64_t index,
                               const uint8_t leaf[32], const uint8_t *proof, size_t proof_len) {
  uint8_t got[32];
  if (!root || !leaf || (!proof && proof_len)) return SOTTO_ERR_USAGE;
  if (proof_len % 32 != 0 || proof_len / 32 > SOTTO_KT_MAX_LOG_PROOF) return SOTTO_ERR_MALFORMED;
  if (size == 0 || size > SOTTO_KT_MAX_TREE_SIZE || index >= size) return SOTTO_ERR_MALFORMED;
  if (incl_root(got, framing, index, size, leaf, proof, proof_len / 32) != 0) return SOTTO_ERR_MALFORMED;
  return sotto__ct_eq(got, root, 32) ? 0 : SOTTO_ERR_AUTH;
}

int sotto_kt_log_verify_inclusion(const uint8_t root[32], uint64_t size, uint64_t index, const uint8_t leaf[32],
                                  const uint8_t *proof, size_t proof_len) {
  return sotto__kt_verify_inclusion(SOTTO__KT_FRAMING_KT, root, size, index, leaf, proof, proof_len);
}

/* SUBPROOF in reverse: from the last cnt proof hashes, the hashes of the
 * old tree's part (old_out) and the new tree's part (new_out) of D[0:n]
 * holding the first m leaves. */
static int cons_roots(uint8_t old_out[32], uint8_t new_out[32], int framing, uint64_t m, uint64_t n, int b,
                      const uint8_t old_root[32], const uint8_t *proof, size_t cnt) {
  uint8_t o[32], nw[32];
  const uint8_t *sib;
  uint64_t k;
  if (m == n) {
    if (b) {
      if (cnt != 0) return -1;
      memcpy(old_out, old_root, 32);
      memcpy(new_out, old_root, 32);
    } else {
      if (cnt != 1) return -1;
      memcpy(old_out, proof, 32);
      memcpy(new_out, proof, 32);
    }
    return 0;
  }
  if (cnt == 0) return -1;
  sib = proof + (cnt - 1) * 32;
  k = split(n);
  if (m <= k) {
    if (cons_roots(o, nw, framing, m, k, b, old_root, proof, cnt - 1) != 0) return -1;
    memcpy(old_out, o, 32);
    sotto__kt_node(new_out, framing, nw, k == 1, sib, n - k == 1);
  } else {
    if (cons_roots(o, nw, framing, m - k, n - k, 0, old_root, proof, cnt - 1) != 0) return -1;
    sotto__kt_node(old_out, framing, sib, k == 1, o, m - k == 1);
    sotto__kt_node(new_out, framing, sib, k == 1, nw, n - k == 1);
  }
  return 0;
}

int sotto__kt_verify_consistency(int framing, const uint8_t old_root[32], uint64_t old_size,
                                 const uint8_t new_root[32], uint64_t new_size, const uint8_t *proof,
                                 size_t proof_len) {
  uint8_t o[32], n[32];
  if (!old_root || !new_root || (!proof && proof_len)) return SOTTO_ERR_USAGE;
  if (proof_len % 32 != 0 || proof_len / 32 > SOTTO_KT_MAX_LOG_PROOF) return SOTTO_ERR_MALFORMED;
  if (old_size == 0 || old_size > new_size || new_size > SOTTO_KT_MAX_TREE_SIZE) return SOTTO_ERR_MALFORMED;
  if (old_size == new_size) {
    if (proof_len != 0) return SOTTO_ERR_MALFORMED;
    return sotto__ct_eq(old_root, new_root, 32) ? 0 : SOTTO_ERR_AUTH;
  }
  if (cons_roots(o, n, framing, old_size, new_size, 1, old_root, proof, proof_len / 32) != 0)
    return SOTTO_ERR_MALFORMED;
  return (sotto__ct_eq(o, old_root, 32) & sotto__ct_eq(n, new_root, 32)) ? 0 : SOTTO_ERR_AUTH;
}

int sotto_kt_log_verify_consistency(const uint8_t old_root[32], uint64_t old_size, const uint8_t new_root[32],
                                    uint64_t new_size, const uint8_t *proof, size_t proof_len) {
  return sotto__kt_verify_consistency(SOTTO__KT_FRAMING_KT, old_root, old_size, new_root, new_size, proof,
                                      proof_len);
}

void sotto__kt_log_truncate(struct sotto_kt_log *log, uint64_t size) {
  /* The level arrays past the new size are rewritten by the next appends. */
  if (size < log->n) log->n = size;
}

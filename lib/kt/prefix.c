/* SPDX-License-Identifier: Apache-2.0 */
/* prefix.c: the KEYTRANS prefix tree, an insert-only binary trie over
 * 256-bit search keys (bit 0 = the most significant bit of byte 0).
 *
 * Hashes: the empty subtree is 32 zero bytes; a leaf is
 * SHA-256(0x02 || key || commitment); a parent is SHA-256(0x03 || left ||
 * right). A subtree holding one leaf IS that leaf (the leaf sits at the
 * shallowest depth where it is alone), so the tree's shape, and its root,
 * depend only on the set of keys.
 *
 * Memory: two arenas, leaves (key, commitment: 64 bytes) and parents (two
 * child references and the cached hash: 40 bytes, plus a dirty byte). A
 * child reference is 0 (empty), LEAF | i (leaf i) or i + 1 (parent i). An
 * insert marks its path dirty and the next root computation rehashes only
 * dirty parents, so a batch of b inserts costs about b * (depth - log2 b)
 * hashes. For a million random keys: ~1.44 million parents, ~122 MB.
 *
 * Undo: every insert changes exactly one existing child reference (or the
 * root reference) and appends to the arenas; an undo log of those
 * references lets a witness roll a refused batch back exactly. */
#include <stdlib.h>
#include <string.h>

#include <sotto/kt.h>

#include "crypto/crypto.h"
#include "kt/kt_internal.h"
#include "wire/wire.h"

#define LEAF 0x80000000u
#define MAX_NODES 0x7FFFFFF0u

struct pnode {
  uint32_t child[2];
  uint8_t hash[32];
};

struct kleaf {
  uint8_t key[32];
  uint8_t c[32];
};

struct undo {
  uint32_t parent; /* UINT32_MAX: the root reference */
  uint8_t side;
  uint32_t old;
};

struct sotto_kt_prefix {
  uint32_t root;
  struct pnode *n;
  uint8_t *dirty;
  uint32_t nn, ncap, dcap;
  struct kleaf *l;
  uint32_t nl, lcap;
  struct undo *u;
  size_t nu, ucap;
  int logging;
};

static int bit(const uint8_t k[32], unsigned d) { return (k[d >> 3] >> (7 - (d & 7))) & 1; }

int sotto_kt_prefix_new(struct sotto_kt_prefix **out) {
  struct sotto_kt_prefix *p;
  if (!out) return SOTTO_ERR_USAGE;
  *out = NULL;
  if ((p = calloc(1, sizeof *p)) == NULL) return SOTTO_ERR_NOMEM;
  *out = p;
  return 0;
}

void sotto_kt_prefix_free(struct sotto_kt_prefix *p) {
  if (!p) return;
  free(p->n);
  free(p->dirty);
  free(p->l);
  free(p->u);
  free(p);
}

uint64_t sotto_kt_prefix_count(const struct sotto_kt_prefix *p) { return p ? p->nl : 0; }

size_t sotto_kt_prefix_memory(const struct sotto_kt_prefix *p) {
  if (!p) return 0;
  return sizeof *p + (size_t)p->ncap * sizeof(struct pnode) + p->dcap + (size_t)p->lcap * sizeof(struct kleaf) +
         p->ucap * sizeof(struct undo);
}

static int grow(void **ptr, uint32_t *cap, uint32_t need, size_t elem) {
  uint32_t c;
  void *q;
  if (need <= *cap) return 0;
  if (need > MAX_NODES) return SOTTO_ERR_TOO_LARGE;
  c = *cap ? *cap : 1024;
  while (c < need) c = c > MAX_NODES / 2 ? MAX_NODES : c * 2;
  if ((q = realloc(*ptr, (size_t)c * elem)) == NULL) return SOTTO_ERR_NOMEM;
  *ptr = q;
  *cap = c;
  return 0;
}

static uint32_t *slot(struct sotto_kt_prefix *p, uint32_t parent, int side) {
  return parent == UINT32_MAX ? &p->root : &p->n[parent].child[side];
}

int sotto_kt_prefix_insert(struct sotto_kt_prefix *p, const uint8_t key[32], const uint8_t c[32]) {
  uint32_t parent = UINT32_MAX, ref, newleaf;
  unsigned d = 0, diff = 0, j;
  int side = 0, rc;
  if (!p || !key || !c) return SOTTO_ERR_USAGE;
  /* Find where the key goes. */
  ref = p->root;
  while (ref != 0 && !(ref & LEAF)) {
    parent = ref - 1;
    side = bit(key, d);
    ref = p->n[parent].child[side];
    d++;
  }
  if (ref & LEAF) {
    const uint8_t *ok = p->l[ref & ~LEAF].key;
    if (memcmp(ok, key, 32) == 0) return SOTTO_ERR_DUPLICATE;
    for (diff = d; bit(ok, diff) == bit(key, diff); diff++) {
    }
  }
  /* Reserve everything first: a failure leaves the tree unchanged. */
  if ((rc = grow((void **)&p->l, &p->lcap, p->nl + 1, sizeof(struct kleaf))) != 0) return rc;
  if (ref & LEAF) {
    uint32_t need = p->nn + (diff - d) + 1;
    if ((rc = grow((void **)&p->n, &p->ncap, need, sizeof(struct pnode))) != 0) return rc;
    if ((rc = grow((void **)&p->dirty, &p->dcap, need, 1)) != 0) return rc;
  }
  if (p->logging && p->nu == p->ucap) {
    size_t c2 = p->ucap ? p->ucap * 2 : 256;
    void *q = realloc(p->u, c2 * sizeof(struct undo));
    if (!q) return SOTTO_ERR_NOMEM;
    p->u = q;
    p->ucap = c2;
  }
  /* Mark the path dirty. */
  {
    uint32_t r = p->root;
    unsigned dd = 0;
    while (r != 0 && !(r & LEAF)) {
      p->dirty[r - 1] = 1;
      r = p->n[r - 1].child[bit(key, dd++)];
    }
  }
  newleaf = p->nl++;
  memcpy(p->l[newleaf].key, key, 32);
  memcpy(p->l[newleaf].c, c, 32);
  if (p->logging) p->u[p->nu++] = (struct undo){parent, (uint8_t)side, ref};
  if (!(ref & LEAF)) {
    *slot(p, parent, side) = LEAF | newleaf;
    return 0;
  }
  /* A chain of parents from depth d down to diff, where the keys split. */
  {
    uint32_t first = p->nn + 1, prev = UINT32_MAX;
    int pside = side;
    for (j = d; j <= diff; j++) {
      uint32_t i = p->nn++;
      memset(&p->n[i], 0, sizeof p->n[i]);
      p->dirty[i] = 1;
      if (prev != UINT32_MAX) p->n[prev].child[pside] = i + 1;
      prev = i;
      pside = bit(key, j);
    }
    p->n[prev].child[bit(key, diff)] = LEAF | newleaf;
    p->n[prev].child[!bit(key, diff)] = ref;
    *slot(p, parent, side) = first;
  }
  return 0;
}

size_t sotto__kt_prefix_mark(struct sotto_kt_prefix *p) {
  p->logging = 1;
  p->nu = 0;
  return ((size_t)p->nn << 32) | p->nl;
}

void sotto__kt_prefix_rollback(struct sotto_kt_prefix *p, size_t mark) {
  uint32_t i, old_nl = (uint32_t)mark;
  while (p->nu > 0) {
    const struct undo *u = &p->u[--p->nu];
    *slot(p, u->parent, u->side) = u->old;
  }
  /* The old parents on the undone keys' paths may have cached hashes of
   * the undone children (a root was computed): mark them dirty again. */
  for (i = old_nl; i < p->nl; i++) {
    uint32_t r = p->root;
    unsigned d = 0;
    while (r != 0 && !(r & LEAF)) {
      p->dirty[r - 1] = 1;
      r = p->n[r - 1].child[bit(p->l[i].key, d++)];
    }
  }
  p->nn = (uint32_t)(mark >> 32);
  p->nl = old_nl;
  p->logging = 0;
}

void sotto__kt_prefix_forget(struct sotto_kt_prefix *p) {
  p->logging = 0;
  p->nu = 0;
}

static void leaf_hash(uint8_t out[32], const struct kleaf *l) {
  uint8_t b[65];
  b[0] = 0x02;
  memcpy(b + 1, l->key, 32);
  memcpy(b + 33, l->c, 32);
  sotto__sha256(out, b, sizeof b);
}

static void ref_hash(struct sotto_kt_prefix *p, uint32_t ref, uint8_t out[32]) {
  if (ref == 0) {
    memset(out, 0, 32);
  } else if (ref & LEAF) {
    leaf_hash(out, &p->l[ref & ~LEAF]);
  } else {
    struct pnode *n = &p->n[ref - 1];
    if (p->dirty[ref - 1]) {
      uint8_t b[65];
      b[0] = 0x03;
      ref_hash(p, n->child[0], b + 1);
      ref_hash(p, n->child[1], b + 33);
      n = &p->n[ref - 1];
      sotto__sha256(n->hash, b, sizeof b);
      p->dirty[ref - 1] = 0;
    }
    memcpy(out, n->hash, 32);
  }
}

void sotto_kt_prefix_root(uint8_t root[32], struct sotto_kt_prefix *p) { ref_hash(p, p->root, root); }

/* Proof: u8 kind (0 inclusion, 1 another leaf, 2 empty) || u16 depth ||
 * bitmap of the non-empty siblings (ceil(depth/8) bytes, top first) ||
 * kind 0: commitment(32); kind 1: key(32) || commitment(32) ||
 * the non-empty siblings, 32 bytes each, top first. */
int sotto_kt_prefix_prove(uint8_t *out, size_t cap, size_t *out_len, struct sotto_kt_prefix *p,
                          const uint8_t key[32]) {
  uint8_t sib[256][32], bitmap[32] = {0}, tmp[32];
  uint32_t ref;
  unsigned d = 0, i, nsib = 0;
  int kind;
  struct sotto__wr w;
  if (!out_len) return SOTTO_ERR_USAGE;
  *out_len = 0;
  if (!p || !key || (!out && cap)) return SOTTO_ERR_USAGE;
  sotto_kt_prefix_root(tmp, p);
  ref = p->root;
  while (ref != 0 && !(ref & LEAF)) {
    const struct pnode *n = &p->n[ref - 1];
    int b = bit(key, d);
    ref_hash(p, n->child[!b], sib[nsib]);
    if (n->child[!b] != 0) {
      bitmap[d >> 3] |= (uint8_t)(0x80 >> (d & 7));
      nsib++;
    }
    ref = n->child[b];
    d++;
  }
  if (ref == 0)
    kind = 2;
  else
    kind = memcmp(p->l[ref & ~LEAF].key, key, 32) == 0 ? 0 : 1;
  sotto__wr_init(&w, out, cap);
  sotto__wr_u8(&w, (uint8_t)kind);
  sotto__wr_u8(&w, (uint8_t)(d >> 8));
  sotto__wr_u8(&w, (uint8_t)d);
  sotto__wr_bytes(&w, bitmap, (d + 7) / 8);
  if (kind == 1) sotto__wr_bytes(&w, p->l[ref & ~LEAF].key, 32);
  if (kind != 2) sotto__wr_bytes(&w, p->l[ref & ~LEAF].c, 32);
  for (i = 0; i < nsib; i++) sotto__wr_bytes(&w, sib[i], 32);
  if (w.err) return w.err;
  *out_len = w.len;
  return 0;
}

/* Parses one prefix proof from r and computes the root it implies. */
int sotto__kt_prefix_eval(uint8_t root[32], int *found, uint8_t commitment[32], const uint8_t key[32],
                          struct sotto__rd *r) {
  static const uint8_t zero[32] = {0};
  const uint8_t *bitmap, *okey = NULL, *oc = NULL, *sibs;
  uint8_t kind, d_hi, d_lo, b[65], cur[32];
  unsigned d, i, nsib = 0, used;
  size_t off0 = r->off;
  int rc;
  if ((rc = sotto__rd_u8(r, &kind)) != 0 || (rc = sotto__rd_u8(r, &d_hi)) != 0 ||
      (rc = sotto__rd_u8(r, &d_lo)) != 0)
    goto bad;
  d = (unsigned)d_hi << 8 | d_lo;
  rc = SOTTO_ERR_MALFORMED;
  if (kind > 2 || d > 256) goto bad; /* two distinct keys split by depth 255 */
  if ((rc = sotto__rd_bytes(r, (d + 7) / 8, &bitmap)) != 0) goto bad;
  for (i = 0; i < d; i++) nsib += (bitmap[i >> 3] >> (7 - (i & 7))) & 1;
  rc = SOTTO_ERR_MALFORMED;
  if ((d & 7) && (bitmap[d >> 3] & (0xFF >> (d & 7)))) goto bad; /* padding bits must be zero */
  if (kind == 1 && (rc = sotto__rd_bytes(r, 32, &okey)) != 0) goto bad;
  if (kind != 2 && (rc = sotto__rd_bytes(r, 32, &oc)) != 0) goto bad;
  if ((rc = sotto__rd_bytes(r, (size_t)nsib * 32, &sibs)) != 0) goto bad;
  rc = SOTTO_ERR_MALFORMED;
  if (kind == 1) {
    /* Another key on this key's path: the same first d bits, not equal. */
    if (memcmp(okey, key, 32) == 0) goto bad;
    for (i = 0; i < d; i++)
      if (bit(okey, i) != bit(key, i)) goto bad;
  }
  for (i = 0; i < nsib; i++)
    if (memcmp(sibs + 32 * i, zero, 32) == 0) goto bad; /* an empty sibling is a 0 bit, not a hash */
  /* Terminal value, then up the path. */
  if (kind == 2) {
    memset(cur, 0, 32);
  } else {
    b[0] = 0x02;
    memcpy(b + 1, kind == 0 ? key : okey, 32);
    memcpy(b + 33, oc, 32);
    sotto__sha256(cur, b, 65);
  }
  used = nsib;
  for (i = d; i-- > 0;) {
    const uint8_t *s = zero;
    if ((bitmap[i >> 3] >> (7 - (i & 7))) & 1) s = sibs + 32 * --used;
    b[0] = 0x03;
    if (bit(key, i)) {
      memcpy(b + 1, s, 32);
      memcpy(b + 33, cur, 32);
    } else {
      memcpy(b + 1, cur, 32);
      memcpy(b + 33, s, 32);
    }
    sotto__sha256(cur, b, 65);
  }
  memcpy(root, cur, 32);
  *found = kind == 0;
  if (kind == 0)
    memcpy(commitment, oc, 32);
  else
    memset(commitment, 0, 32);
  return 0;
bad:
  r->off = off0;
  return rc;
}

int sotto_kt_prefix_verify(int *found, uint8_t commitment[32], const uint8_t root[32], const uint8_t key[32],
                           const uint8_t *proof, size_t proof_len) {
  struct sotto__rd r;
  uint8_t got[32];
  int rc;
  if (!found || !commitment || !root || !key || (!proof && proof_len)) return SOTTO_ERR_USAGE;
  *found = 0;
  memset(commitment, 0, 32);
  sotto__rd_init(&r, proof, proof_len);
  if ((rc = sotto__kt_prefix_eval(got, found, commitment, key, &r)) != 0) return rc;
  if (sotto__rd_left(&r) != 0) rc = SOTTO_ERR_TRAILING;
  else if (!sotto__ct_eq(got, root, 32)) rc = SOTTO_ERR_AUTH;
  if (rc != 0) {
    *found = 0;
    memset(commitment, 0, 32);
  }
  return rc;
}

int sotto__kt_prefix_has(const struct sotto_kt_prefix *p, const uint8_t key[32]) {
  uint32_t ref = p->root;
  unsigned d = 0;
  while (ref != 0 && !(ref & LEAF)) ref = p->n[ref - 1].child[bit(key, d++)];
  return ref != 0 && memcmp(p->l[ref & ~LEAF].key, key, 32) == 0;
}

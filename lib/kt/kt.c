/* SPDX-License-Identifier: Apache-2.0 */
/* kt.c: the combined tree of key transparency: commitments, signed tree
 * heads, witness cosignatures, updates, search proofs, the operator's
 * directory and the witness (the KEYTRANS auditor). Byte formats:
 * docs/key-transparency.md. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <sotto/kt.h>

#include "crypto/crypto.h"
#include "kt/kt_internal.h"
#include "wire/wire.h"

/* The KEYTRANS / Signal fixed commitment key Kc. */
static const uint8_t KC[16] = {0xd8, 0x21, 0xf8, 0x79, 0x0d, 0x97, 0x70, 0x97,
                               0x96, 0xb4, 0xd7, 0x90, 0x33, 0x57, 0xc3, 0xf5};
static const char HEAD_CTX[16] = "sotto-kt-head-v1";
static const char COSIG_CTX[17] = "sotto-kt-cosig-v1";
static const char KEYID_CTX[19] = "sotto-kt-witness-v1";

static void be64(uint8_t *b, uint64_t v) {
  int i;
  for (i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint64_t rd64(const uint8_t *b) {
  uint64_t v = 0;
  int i;
  for (i = 0; i < 8; i++) v = v << 8 | b[i];
  return v;
}

/* ---- commitments ---------------------------------------------------------- */

void sotto__kt_commit_raw(uint8_t c[32], const uint8_t opening[16], const uint8_t *sk, size_t sk_len,
                          const uint8_t *data, size_t data_len) {
  struct sotto__hmac_key hk;
  struct sotto__hmac_ctx ctx;
  uint8_t l2[2] = {(uint8_t)(sk_len >> 8), (uint8_t)sk_len};
  uint8_t l4[4] = {(uint8_t)(data_len >> 24), (uint8_t)(data_len >> 16), (uint8_t)(data_len >> 8),
                   (uint8_t)data_len};
  sotto__hmac_key_init(&hk, KC, sizeof KC);
  sotto__hmac_start(&ctx, &hk);
  sotto__hmac_update(&ctx, opening, 16);
  sotto__hmac_update(&ctx, l2, 2);
  if (sk_len) sotto__hmac_update(&ctx, sk, sk_len);
  sotto__hmac_update(&ctx, l4, 4);
  if (data_len) sotto__hmac_update(&ctx, data, data_len);
  sotto__hmac_finish(&ctx, c);
  sotto__hmac_key_clear(&hk);
}

int sotto_kt_commit(uint8_t c[32], const uint8_t opening[16], const uint8_t *label, size_t label_len,
                    uint32_t version, const uint8_t *value, size_t value_len) {
  uint8_t sk[SOTTO_KT_MAX_LABEL_LEN + 4];
  if (!c || !opening || (!label && label_len) || (!value && value_len)) return SOTTO_ERR_USAGE;
  if (label_len > SOTTO_KT_MAX_LABEL_LEN || value_len > SOTTO_KT_MAX_VALUE_LEN ||
      version > SOTTO_KT_MAX_VERSION)
    return SOTTO_ERR_USAGE;
  if (label_len) memcpy(sk, label, label_len);
  sk[label_len] = (uint8_t)(version >> 24);
  sk[label_len + 1] = (uint8_t)(version >> 16);
  sk[label_len + 2] = (uint8_t)(version >> 8);
  sk[label_len + 3] = (uint8_t)version;
  sotto__kt_commit_raw(c, opening, sk, label_len + 4, value, value_len);
  return 0;
}

size_t sotto__kt_vrf_input(uint8_t out[SOTTO_KT_MAX_LABEL_LEN + 5], const uint8_t *label, size_t label_len,
                           uint32_t version) {
  out[0] = (uint8_t)label_len;
  if (label_len) memcpy(out + 1, label, label_len);
  out[label_len + 1] = (uint8_t)(version >> 24);
  out[label_len + 2] = (uint8_t)(version >> 16);
  out[label_len + 3] = (uint8_t)(version >> 8);
  out[label_len + 4] = (uint8_t)version;
  return label_len + 5;
}

/* ---- which versions a search looks up --------------------------------------- */

static int cmp_u32(const void *a, const void *b) {
  uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
  return x < y ? -1 : x > y;
}

/* For greatest version m: m; "below" = m with its i low bits cleared and
 * every power of two <= m (inclusion); "above" = ((m >> i) + 1) << i for
 * 0 <= i <= bitlen(m) (non-inclusion). For any n < m, above(n) and
 * below(m) share a version u with n < u <= m (docs/key-transparency.md):
 * a log that shows one user m and the owner n (or one user n and another
 * m) contradicts itself on u. */
size_t sotto__kt_lookup_versions(uint32_t out[SOTTO__KT_MAX_LOOKUPS], uint32_t m) {
  size_t n = 0, i, j;
  unsigned bl = 0;
  if (m == SOTTO_KT_ABSENT) {
    out[0] = 0;
    return 1;
  }
  out[n++] = m;
  for (i = 0; i < 32; i++) {
    uint32_t v = (uint32_t)(((uint64_t)m >> i) << i);
    if (v != 0) out[n++] = v;
  }
  for (i = 0; i < 31; i++)
    if ((1u << i) <= m) out[n++] = 1u << i;
  while (bl < 32 && ((uint64_t)m >> bl) != 0) bl++;
  for (i = 0; i <= bl; i++) {
    uint64_t v = (((uint64_t)m >> i) + 1) << i;
    if (v <= SOTTO_KT_MAX_VERSION) out[n++] = (uint32_t)v;
  }
  qsort(out, n, sizeof out[0], cmp_u32);
  for (i = 0, j = 0; i < n; i++)
    if (j == 0 || out[j - 1] != out[i]) out[j++] = out[i];
  return j;
}

/* ---- heads and cosignatures ------------------------------------------------- */

void sotto_kt_head_encode(uint8_t out[SOTTO_KT_HEAD_LEN], const struct sotto_kt_head *h) {
  be64(out, h->tree_size);
  be64(out + 8, h->timestamp_ms);
  memcpy(out + 16, h->root, 32);
  memcpy(out + 48, h->sig, 64);
}

int sotto_kt_head_decode(struct sotto_kt_head *h, const uint8_t *in, size_t len) {
  if (!h || (!in && len)) return SOTTO_ERR_USAGE;
  if (len < SOTTO_KT_HEAD_LEN) return SOTTO_ERR_TRUNCATED;
  if (len > SOTTO_KT_HEAD_LEN) return SOTTO_ERR_TRAILING;
  if (rd64(in) == 0 || rd64(in) > SOTTO_KT_MAX_TREE_SIZE) return SOTTO_ERR_MALFORMED;
  h->tree_size = rd64(in);
  h->timestamp_ms = rd64(in + 8);
  memcpy(h->root, in + 16, 32);
  memcpy(h->sig, in + 48, 64);
  return 0;
}

/* ctx || sig_pk || vrf_pk || u64 size || u64 timestamp || root */
static size_t head_body(uint8_t *b, const struct sotto_kt_head *h, const struct sotto_kt_log_id *id) {
  memcpy(b, id->sig_pk, 32);
  memcpy(b + 32, id->vrf_pk, 32);
  be64(b + 64, h->tree_size);
  be64(b + 72, h->timestamp_ms);
  memcpy(b + 80, h->root, 32);
  return 112;
}

static size_t head_tbs(uint8_t b[128], const struct sotto_kt_head *h, const struct sotto_kt_log_id *id) {
  memcpy(b, HEAD_CTX, 16);
  return 16 + head_body(b + 16, h, id);
}

int sotto_kt_head_verify(const struct sotto_kt_head *h, const struct sotto_kt_log_id *id) {
  uint8_t tbs[128];
  size_t n;
  int rc;
  if (!h || !id) return SOTTO_ERR_USAGE;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  if (h->tree_size == 0 || h->tree_size > SOTTO_KT_MAX_TREE_SIZE) return SOTTO_ERR_MALFORMED;
  n = head_tbs(tbs, h, id);
  return crypto_sign_verify_detached(h->sig, tbs, n, id->sig_pk) == 0 ? 0 : SOTTO_ERR_AUTH;
}

void sotto_kt_witness_key_id(uint8_t id[SOTTO_KT_KEY_ID_LEN], const uint8_t pk[32]) {
  uint8_t b[sizeof KEYID_CTX + 32], h[32];
  memcpy(b, KEYID_CTX, sizeof KEYID_CTX);
  memcpy(b + sizeof KEYID_CTX, pk, 32);
  sotto__sha256(h, b, sizeof b);
  memcpy(id, h, SOTTO_KT_KEY_ID_LEN);
}

static size_t cosig_tbs(uint8_t b[160], uint64_t time, const struct sotto_kt_head *h,
                        const struct sotto_kt_log_id *id) {
  memcpy(b, COSIG_CTX, sizeof COSIG_CTX);
  be64(b + sizeof COSIG_CTX, time);
  return sizeof COSIG_CTX + 8 + head_body(b + sizeof COSIG_CTX + 8, h, id);
}

int sotto_kt_cosign(uint8_t cosig[SOTTO_KT_COSIG_LEN], const uint8_t seed[32], uint64_t time,
                    const struct sotto_kt_head *h, const struct sotto_kt_log_id *id) {
  uint8_t pk[32], *sk, tbs[160];
  size_t n;
  int rc;
  if (!cosig || !seed || !h || !id) return SOTTO_ERR_USAGE;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  if ((sk = sodium_malloc(64)) == NULL) return SOTTO_ERR_NOMEM;
  crypto_sign_seed_keypair(pk, sk, seed);
  sotto_kt_witness_key_id(cosig, pk);
  be64(cosig + 8, time);
  n = cosig_tbs(tbs, time, h, id);
  crypto_sign_detached(cosig + 16, NULL, tbs, n, sk);
  sodium_free(sk);
  return 0;
}

int sotto_kt_cosig_verify(const uint8_t cosig[SOTTO_KT_COSIG_LEN], const uint8_t witness_pk[32],
                          const struct sotto_kt_head *h, const struct sotto_kt_log_id *id) {
  uint8_t kid[SOTTO_KT_KEY_ID_LEN], tbs[160];
  size_t n;
  int rc;
  if (!cosig || !witness_pk || !h || !id) return SOTTO_ERR_USAGE;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  sotto_kt_witness_key_id(kid, witness_pk);
  if (memcmp(kid, cosig, SOTTO_KT_KEY_ID_LEN) != 0) return SOTTO_ERR_AUTH;
  n = cosig_tbs(tbs, rd64(cosig + 8), h, id);
  return crypto_sign_verify_detached(cosig + 16, tbs, n, witness_pk) == 0 ? 0 : SOTTO_ERR_AUTH;
}

int sotto_kt_head_verify_quorum(unsigned *valid, const struct sotto_kt_head *h, const struct sotto_kt_log_id *id,
                                const uint8_t *witness_pks, size_t n, size_t k, const uint8_t *cosigs,
                                size_t cosigs_len) {
  size_t i, j, m;
  unsigned good = 0;
  int rc;
  if (valid) *valid = 0;
  if (!h || !id || (!witness_pks && n) || (!cosigs && cosigs_len) || k > n || n > SOTTO_KT_MAX_COSIGS)
    return SOTTO_ERR_USAGE;
  if (cosigs_len % SOTTO_KT_COSIG_LEN != 0) return SOTTO_ERR_MALFORMED;
  if (cosigs_len / SOTTO_KT_COSIG_LEN > SOTTO_KT_MAX_COSIGS) return SOTTO_ERR_TOO_LARGE;
  if ((rc = sotto_kt_head_verify(h, id)) != 0) return rc;
  m = cosigs_len / SOTTO_KT_COSIG_LEN;
  for (i = 0; i < n; i++) {
    uint8_t kid[SOTTO_KT_KEY_ID_LEN];
    sotto_kt_witness_key_id(kid, witness_pks + 32 * i);
    for (j = 0; j < m; j++) {
      const uint8_t *c = cosigs + SOTTO_KT_COSIG_LEN * j;
      if (memcmp(c, kid, SOTTO_KT_KEY_ID_LEN) != 0) continue;
      if (sotto_kt_cosig_verify(c, witness_pks + 32 * i, h, id) == 0) {
        good++;
        break;
      }
    }
  }
  if (valid) *valid = good;
  return good >= k ? 0 : SOTTO_ERR_KT_QUORUM;
}

/* ---- updates and the replicated state (operator and witness) ---------------- */

size_t sotto_kt_update_len(size_t entries) { return 12 + 64 * entries; }

/* The state both sides keep: prefix tree, log tree, last head. */
struct kt_state {
  struct sotto_kt_log_id id;
  struct sotto_kt_prefix *prefix;
  struct sotto_kt_log *log;
  struct sotto_kt_head head;
  uint64_t last_entry_ts;
};

static int state_init(struct kt_state *s) {
  int rc;
  if ((rc = sotto_kt_prefix_new(&s->prefix)) != 0) return rc;
  if ((rc = sotto_kt_log_new(&s->log)) != 0) {
    sotto_kt_prefix_free(s->prefix);
    return rc;
  }
  return 0;
}

static void state_clear(struct kt_state *s) {
  sotto_kt_prefix_free(s->prefix);
  sotto_kt_log_free(s->log);
}

/* Checks the update's shape: u64 timestamp || u32 count || count x
 * (key || commitment), keys strictly ascending, nothing after. */
static int update_parse(uint64_t *ts, uint32_t *count, const uint8_t **entries, const uint8_t *u, size_t len) {
  struct sotto__rd r;
  uint32_t i;
  int rc;
  sotto__rd_init(&r, u, len);
  if ((rc = sotto__rd_u64be(&r, ts)) != 0 || (rc = sotto__rd_u32be(&r, count)) != 0) return rc;
  if (*count > SOTTO_KT_MAX_UPDATE_ENTRIES) return SOTTO_ERR_TOO_LARGE;
  if ((rc = sotto__rd_bytes(&r, (size_t)*count * 64, entries)) != 0) return rc;
  if (sotto__rd_left(&r) != 0) return SOTTO_ERR_TRAILING;
  for (i = 1; i < *count; i++)
    if (memcmp((*entries) + 64 * (i - 1), (*entries) + 64 * i, 32) >= 0) return SOTTO_ERR_MALFORMED;
  return 0;
}

/* Applies a parsed update: inserts, new prefix root, log leaf appended.
 * With check_root, the new log root must equal it. On failure nothing
 * changed. */
static int state_apply(struct kt_state *s, uint64_t ts, uint32_t count, const uint8_t *e,
                       const uint8_t *check_root, uint8_t new_root[32]) {
  uint8_t proot[32], leaf[32];
  size_t mark;
  uint64_t old = sotto_kt_log_size(s->log);
  uint32_t i;
  int rc;
  if (ts < s->last_entry_ts) return SOTTO_ERR_KT_FORK;
  mark = sotto__kt_prefix_mark(s->prefix);
  for (i = 0; i < count; i++) {
    if ((rc = sotto_kt_prefix_insert(s->prefix, e + 64 * i, e + 64 * i + 32)) != 0) {
      sotto__kt_prefix_rollback(s->prefix, mark);
      return rc == SOTTO_ERR_DUPLICATE ? SOTTO_ERR_KT_FORK : rc;
    }
  }
  sotto_kt_prefix_root(proot, s->prefix);
  sotto_kt_log_leaf(leaf, ts, proot);
  if ((rc = sotto_kt_log_append(s->log, leaf)) != 0) {
    sotto__kt_prefix_rollback(s->prefix, mark);
    return rc;
  }
  if ((rc = sotto_kt_log_root(new_root, s->log, old + 1)) != 0 ||
      (check_root && !sotto__ct_eq(new_root, check_root, 32))) {
    sotto__kt_log_truncate(s->log, old);
    sotto__kt_prefix_rollback(s->prefix, mark);
    sotto_kt_prefix_root(proot, s->prefix);
    return rc ? rc : SOTTO_ERR_KT_FORK;
  }
  sotto__kt_prefix_forget(s->prefix);
  s->last_entry_ts = ts;
  return 0;
}

static int state_replay(struct kt_state *s, const uint8_t *u, size_t len, const struct sotto_kt_head *h) {
  uint8_t root[32];
  const uint8_t *e = NULL;
  uint64_t ts;
  uint32_t count;
  int rc;
  if ((!u && len) || !h) return SOTTO_ERR_USAGE;
  /* Cheap checks first: the update's shape, then the signature. */
  if ((rc = update_parse(&ts, &count, &e, u, len)) != 0) return rc;
  if ((rc = sotto_kt_head_verify(h, &s->id)) != 0) return rc;
  if (h->tree_size != sotto_kt_log_size(s->log) + 1) return SOTTO_ERR_KT_FORK;
  if (sotto_kt_log_size(s->log) > 0 && h->timestamp_ms < s->head.timestamp_ms) return SOTTO_ERR_KT_FORK;
  if ((rc = state_apply(s, ts, count, e, h->root, root)) != 0) return rc;
  s->head = *h;
  return 0;
}

/* ---- witness ---------------------------------------------------------------- */

struct sotto_kt_witness {
  struct kt_state s;
};

int sotto_kt_witness_new(struct sotto_kt_witness **out, const struct sotto_kt_log_id *id) {
  struct sotto_kt_witness *w;
  int rc;
  if (!out || !id) return SOTTO_ERR_USAGE;
  *out = NULL;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  if ((w = calloc(1, sizeof *w)) == NULL) return SOTTO_ERR_NOMEM;
  w->s.id = *id;
  if ((rc = state_init(&w->s)) != 0) {
    free(w);
    return rc;
  }
  *out = w;
  return 0;
}

void sotto_kt_witness_free(struct sotto_kt_witness *w) {
  if (!w) return;
  state_clear(&w->s);
  free(w);
}

uint64_t sotto_kt_witness_size(const struct sotto_kt_witness *w) { return w ? sotto_kt_log_size(w->s.log) : 0; }

int sotto_kt_witness_apply(struct sotto_kt_witness *w, const uint8_t *update, size_t update_len,
                           const struct sotto_kt_head *head) {
  if (!w) return SOTTO_ERR_USAGE;
  return state_replay(&w->s, update, update_len, head);
}

int sotto_kt_witness_cosign(uint8_t cosig[SOTTO_KT_COSIG_LEN], const struct sotto_kt_witness *w,
                            const uint8_t seed[32], uint64_t time, const struct sotto_kt_head *head) {
  if (!cosig || !w || !seed || !head) return SOTTO_ERR_USAGE;
  if (sotto_kt_log_size(w->s.log) == 0 || head->tree_size != w->s.head.tree_size ||
      head->timestamp_ms != w->s.head.timestamp_ms || !sotto__ct_eq(head->root, w->s.head.root, 32))
    return SOTTO_ERR_KT_FORK;
  return sotto_kt_cosign(cosig, seed, time, head, &w->s.id);
}

/* ---- the operator's directory ----------------------------------------------- */

struct kc {
  uint8_t key[32];
  uint8_t c[32];
};

struct sotto_kt_dir {
  struct kt_state s;
  uint8_t *sig_sk;             /* sodium_malloc: Ed25519 secret key (64) */
  struct sotto__vrf_key *vrf; /* sodium_malloc */
  struct kc *staged;
  size_t nstaged, cstaged;
};

int sotto_kt_dir_new(struct sotto_kt_dir **out, const uint8_t sig_seed[32], const uint8_t vrf_sk[32]) {
  struct sotto_kt_dir *d;
  int rc;
  if (!out || !sig_seed || !vrf_sk) return SOTTO_ERR_USAGE;
  *out = NULL;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  if ((d = calloc(1, sizeof *d)) == NULL) return SOTTO_ERR_NOMEM;
  d->sig_sk = sodium_malloc(64);
  d->vrf = sodium_malloc(sizeof *d->vrf);
  if (!d->sig_sk || !d->vrf) {
    rc = SOTTO_ERR_NOMEM;
    goto fail;
  }
  crypto_sign_seed_keypair(d->s.id.sig_pk, d->sig_sk, sig_seed);
  if ((rc = sotto__kt_vrf_key_init(d->vrf, vrf_sk)) != 0) goto fail;
  memcpy(d->s.id.vrf_pk, d->vrf->y, 32);
  if ((rc = state_init(&d->s)) != 0) goto fail;
  *out = d;
  return 0;
fail:
  if (d->sig_sk) sodium_free(d->sig_sk);
  if (d->vrf) sodium_free(d->vrf);
  free(d);
  return rc;
}

void sotto_kt_dir_free(struct sotto_kt_dir *d) {
  if (!d) return;
  state_clear(&d->s);
  sodium_free(d->sig_sk);
  sodium_free(d->vrf);
  free(d->staged);
  free(d);
}

void sotto_kt_dir_log_id(struct sotto_kt_log_id *id, const struct sotto_kt_dir *d) { *id = d->s.id; }

size_t sotto_kt_dir_staged(const struct sotto_kt_dir *d) { return d ? d->nstaged : 0; }

size_t sotto_kt_dir_memory(const struct sotto_kt_dir *d) {
  if (!d) return 0;
  return sizeof *d + sotto_kt_prefix_memory(d->s.prefix) + 2 * 32 * (size_t)sotto_kt_log_size(d->s.log) +
         d->cstaged * sizeof(struct kc);
}

int sotto__kt_dir_add_key(struct sotto_kt_dir *d, const uint8_t key[32], const uint8_t c[32]) {
  if (!d || !key || !c) return SOTTO_ERR_USAGE;
  if (sotto__kt_prefix_has(d->s.prefix, key)) return SOTTO_ERR_DUPLICATE;
  if (d->nstaged >= SOTTO_KT_MAX_UPDATE_ENTRIES) return SOTTO_ERR_TOO_LARGE;
  if (d->nstaged == d->cstaged) {
    size_t nc = d->cstaged ? d->cstaged * 2 : 256;
    void *q = realloc(d->staged, nc * sizeof(struct kc));
    if (!q) return SOTTO_ERR_NOMEM;
    d->staged = q;
    d->cstaged = nc;
  }
  memcpy(d->staged[d->nstaged].key, key, 32);
  memcpy(d->staged[d->nstaged].c, c, 32);
  d->nstaged++;
  return 0;
}

int sotto_kt_dir_prepare(uint8_t entry[SOTTO_KT_ENTRY_LEN], uint8_t opening[16], const struct sotto_kt_dir *d,
                         const uint8_t *label, size_t label_len, uint32_t version, const uint8_t *value,
                         size_t value_len) {
  uint8_t alpha[SOTTO_KT_MAX_LABEL_LEN + 5], beta[64], c[32], op[16];
  size_t an;
  int rc;
  if (!entry || !d || !opening || (!label && label_len) || (!value && value_len)) return SOTTO_ERR_USAGE;
  if (label_len > SOTTO_KT_MAX_LABEL_LEN || value_len > SOTTO_KT_MAX_VALUE_LEN ||
      version > SOTTO_KT_MAX_VERSION)
    return SOTTO_ERR_USAGE;
  an = sotto__kt_vrf_input(alpha, label, label_len, version);
  if ((rc = sotto__kt_vrf_hash_with(beta, d->vrf, alpha, an)) != 0) return rc;
  if ((rc = sotto__random(op, sizeof op)) != 0) return rc;
  if ((rc = sotto_kt_commit(c, op, label, label_len, version, value, value_len)) != 0) return rc;
  memcpy(entry, beta, 32);
  memcpy(entry + 32, c, 32);
  memcpy(opening, op, 16);
  return 0;
}

int sotto_kt_dir_add_prepared(struct sotto_kt_dir *d, const uint8_t entry[SOTTO_KT_ENTRY_LEN]) {
  if (!entry) return SOTTO_ERR_USAGE;
  return sotto__kt_dir_add_key(d, entry, entry + 32);
}

int sotto_kt_dir_add(struct sotto_kt_dir *d, uint8_t opening[16], const uint8_t *label, size_t label_len,
                     uint32_t version, const uint8_t *value, size_t value_len) {
  uint8_t entry[SOTTO_KT_ENTRY_LEN], op[16];
  int rc;
  if ((rc = sotto_kt_dir_prepare(entry, op, d, label, label_len, version, value, value_len)) != 0) return rc;
  if ((rc = sotto_kt_dir_add_prepared(d, entry)) != 0) return rc;
  memcpy(opening, op, 16);
  return 0;
}

static int cmp_kc(const void *a, const void *b) { return memcmp(a, b, 32); }

int sotto_kt_dir_commit(struct sotto_kt_dir *d, struct sotto_kt_head *head, uint8_t *update, size_t cap,
                        size_t *update_len, uint64_t timestamp_ms) {
  struct sotto_kt_head h;
  uint8_t tbs[128], root[32];
  size_t i, need;
  int rc;
  if (update_len) *update_len = 0;
  if (!d || !head || !update || !update_len) return SOTTO_ERR_USAGE;
  need = sotto_kt_update_len(d->nstaged);
  if (cap < need) return SOTTO_ERR_BUFFER_TOO_SMALL;
  if (sotto_kt_log_size(d->s.log) > 0 && timestamp_ms < d->s.last_entry_ts) return SOTTO_ERR_USAGE;
  if (d->nstaged > 1) qsort(d->staged, d->nstaged, sizeof(struct kc), cmp_kc);
  for (i = 1; i < d->nstaged; i++)
    if (memcmp(d->staged[i - 1].key, d->staged[i].key, 32) == 0) return SOTTO_ERR_DUPLICATE;
  be64(update, timestamp_ms);
  update[8] = (uint8_t)(d->nstaged >> 24);
  update[9] = (uint8_t)(d->nstaged >> 16);
  update[10] = (uint8_t)(d->nstaged >> 8);
  update[11] = (uint8_t)d->nstaged;
  if (d->nstaged) memcpy(update + 12, d->staged, 64 * d->nstaged);
  if ((rc = state_apply(&d->s, timestamp_ms, (uint32_t)d->nstaged, update + 12, NULL, root)) != 0) return rc;
  h.tree_size = sotto_kt_log_size(d->s.log);
  h.timestamp_ms = timestamp_ms;
  memcpy(h.root, root, 32);
  head_tbs(tbs, &h, &d->s.id);
  crypto_sign_detached(h.sig, NULL, tbs, 128, d->sig_sk);
  d->s.head = h;
  *head = h;
  *update_len = need;
  d->nstaged = 0;
  return 0;
}

int sotto_kt_dir_replay(struct sotto_kt_dir *d, const uint8_t *update, size_t update_len,
                        const struct sotto_kt_head *head) {
  if (!d) return SOTTO_ERR_USAGE;
  return state_replay(&d->s, update, update_len, head);
}

int sotto_kt_dir_head(struct sotto_kt_head *head, const struct sotto_kt_dir *d) {
  if (!head || !d || sotto_kt_log_size(d->s.log) == 0) return SOTTO_ERR_USAGE;
  *head = d->s.head;
  return 0;
}

int sotto_kt_dir_consistency(uint8_t *out, size_t cap, size_t *out_len, const struct sotto_kt_dir *d,
                             uint64_t old_size) {
  if (!d) return SOTTO_ERR_USAGE;
  return sotto_kt_log_consistency_proof(out, cap, out_len, d->s.log, old_size, sotto_kt_log_size(d->s.log));
}

/* Search proof: u32 version || u8 n || n x (vrf_proof(80) || u16 len ||
 * prefix proof) || [opening(16) || u16 len || value, unless ABSENT] ||
 * u64 entry timestamp || u8 m || m x 32 (inclusion of the last log leaf). */
int sotto_kt_dir_search(uint8_t *out, size_t cap, size_t *out_len, struct sotto_kt_dir *d, const uint8_t *label,
                        size_t label_len, uint32_t version, const uint8_t *value, size_t value_len,
                        const uint8_t opening[16]) {
  uint32_t vs[SOTTO__KT_MAX_LOOKUPS];
  uint8_t alpha[SOTTO_KT_MAX_LABEL_LEN + 5], pi[80], beta[64], c[32], pp[2 + 1 + 32 + 64 + 256 * 32];
  uint8_t incl[SOTTO_KT_MAX_LOG_PROOF * 32];
  size_t n, i, an, pl, il;
  uint64_t size;
  struct sotto__wr w;
  int rc;
  if (!out_len) return SOTTO_ERR_USAGE;
  *out_len = 0;
  if (!d || (!out && cap) || (!label && label_len) || label_len > SOTTO_KT_MAX_LABEL_LEN) return SOTTO_ERR_USAGE;
  if (version != SOTTO_KT_ABSENT &&
      (version > SOTTO_KT_MAX_VERSION || !opening || (!value && value_len) || value_len > SOTTO_KT_MAX_VALUE_LEN))
    return SOTTO_ERR_USAGE;
  if ((size = sotto_kt_log_size(d->s.log)) == 0) return SOTTO_ERR_USAGE;
  n = sotto__kt_lookup_versions(vs, version);
  sotto__wr_init(&w, out, cap);
  sotto__wr_u32be(&w, version);
  sotto__wr_u8(&w, (uint8_t)n);
  for (i = 0; i < n; i++) {
    int want = version != SOTTO_KT_ABSENT && vs[i] <= version;
    an = sotto__kt_vrf_input(alpha, label, label_len, vs[i]);
    if ((rc = sotto__kt_vrf_prove_with(pi, d->vrf, alpha, an)) != 0) return rc;
    if ((rc = sotto__kt_vrf_proof_to_hash(beta, pi)) != 0) return rc;
    if (sotto__kt_prefix_has(d->s.prefix, beta) != want) return SOTTO_ERR_USAGE; /* not the greatest version */
    if ((rc = sotto_kt_prefix_prove(pp, sizeof pp, &pl, d->s.prefix, beta)) != 0) return rc;
    if (vs[i] == version) {
      int found;
      uint8_t got[32], root[32];
      struct sotto__rd r;
      sotto__rd_init(&r, pp, pl);
      if ((rc = sotto__kt_prefix_eval(root, &found, got, beta, &r)) != 0) return rc;
      if ((rc = sotto_kt_commit(c, opening, label, label_len, version, value, value_len)) != 0) return rc;
      if (!found || memcmp(got, c, 32) != 0) return SOTTO_ERR_USAGE; /* not this value */
    }
    sotto__wr_bytes(&w, pi, 80);
    sotto__wr_u8(&w, (uint8_t)(pl >> 8));
    sotto__wr_u8(&w, (uint8_t)pl);
    sotto__wr_bytes(&w, pp, pl);
  }
  if (version != SOTTO_KT_ABSENT) {
    sotto__wr_bytes(&w, opening, 16);
    sotto__wr_u8(&w, (uint8_t)(value_len >> 8));
    sotto__wr_u8(&w, (uint8_t)value_len);
    sotto__wr_bytes(&w, value, value_len);
  }
  sotto__wr_u64be(&w, d->s.last_entry_ts);
  if ((rc = sotto_kt_log_inclusion_proof(incl, sizeof incl, &il, d->s.log, size - 1, size)) != 0) return rc;
  sotto__wr_u8(&w, (uint8_t)(il / 32));
  sotto__wr_bytes(&w, incl, il);
  if (w.err) return w.err;
  *out_len = w.len;
  return 0;
}

/* ---- search proof verification (client) ------------------------------------- */

int sotto_kt_search_verify(uint32_t *version, uint8_t *value, size_t *value_len, const struct sotto_kt_head *h,
                           const struct sotto_kt_log_id *id, const uint8_t *label, size_t label_len,
                           const uint8_t *proof, size_t proof_len) {
  uint32_t vs[SOTTO__KT_MAX_LOOKUPS], m;
  uint8_t alpha[SOTTO_KT_MAX_LABEL_LEN + 5], beta[64], root[32], root0[32], c[32], want_c[32], leaf[32];
  uint8_t nl, ni;
  const uint8_t *pi, *opening = NULL, *val = NULL, *incl;
  size_t n, i, an, vlen = 0;
  uint64_t ts;
  struct sotto__rd r;
  int rc, found;
  if (version) *version = SOTTO_KT_ABSENT;
  if (value_len) *value_len = 0;
  if (!version || !value || !value_len || !h || !id || (!label && label_len) || (!proof && proof_len))
    return SOTTO_ERR_USAGE;
  if (label_len > SOTTO_KT_MAX_LABEL_LEN) return SOTTO_ERR_USAGE;
  if (proof_len > SOTTO_KT_MAX_SEARCH_PROOF_LEN) return SOTTO_ERR_TOO_LARGE;
  if (h->tree_size == 0 || h->tree_size > SOTTO_KT_MAX_TREE_SIZE) return SOTTO_ERR_MALFORMED;
  sotto__rd_init(&r, proof, proof_len);
  if ((rc = sotto__rd_u32be(&r, &m)) != 0 || (rc = sotto__rd_u8(&r, &nl)) != 0) return rc;
  if (m != SOTTO_KT_ABSENT && m > SOTTO_KT_MAX_VERSION) return SOTTO_ERR_MALFORMED;
  n = sotto__kt_lookup_versions(vs, m);
  if (nl != n) return SOTTO_ERR_MALFORMED;
  /* Parse and check each lookup: the VRF proof gives the search key, the
   * prefix proof a root; every root must be the same. */
  for (i = 0; i < n; i++) {
    uint8_t lh, ll;
    size_t plen;
    struct sotto__rd sub;
    const uint8_t *pp;
    int want = m != SOTTO_KT_ABSENT && vs[i] <= m;
    if ((rc = sotto__rd_bytes(&r, 80, &pi)) != 0 || (rc = sotto__rd_u8(&r, &lh)) != 0 ||
        (rc = sotto__rd_u8(&r, &ll)) != 0)
      return rc;
    plen = (size_t)lh << 8 | ll;
    if ((rc = sotto__rd_bytes(&r, plen, &pp)) != 0) return rc;
    sotto__rd_init(&sub, pp, plen);
    an = sotto__kt_vrf_input(alpha, label, label_len, vs[i]);
    if ((rc = sotto_kt_vrf_verify(beta, id->vrf_pk, pi, alpha, an)) != 0)
      return rc == SOTTO_ERR_INVALID_KEY ? rc : SOTTO_ERR_AUTH;
    if ((rc = sotto__kt_prefix_eval(root, &found, c, beta, &sub)) != 0) return rc;
    if (sotto__rd_left(&sub) != 0) return SOTTO_ERR_MALFORMED;
    if (found != want) return SOTTO_ERR_AUTH;
    if (i == 0)
      memcpy(root0, root, 32);
    else if (!sotto__ct_eq(root, root0, 32))
      return SOTTO_ERR_AUTH;
    if (vs[i] == m) memcpy(want_c, c, 32);
  }
  if (m != SOTTO_KT_ABSENT) {
    uint8_t vh, vl;
    if ((rc = sotto__rd_bytes(&r, 16, &opening)) != 0 || (rc = sotto__rd_u8(&r, &vh)) != 0 ||
        (rc = sotto__rd_u8(&r, &vl)) != 0)
      return rc;
    vlen = (size_t)vh << 8 | vl;
    if (vlen > SOTTO_KT_MAX_VALUE_LEN) return SOTTO_ERR_TOO_LARGE;
    if ((rc = sotto__rd_bytes(&r, vlen, &val)) != 0) return rc;
  }
  if ((rc = sotto__rd_u64be(&r, &ts)) != 0 || (rc = sotto__rd_u8(&r, &ni)) != 0) return rc;
  if (ni > SOTTO_KT_MAX_LOG_PROOF) return SOTTO_ERR_MALFORMED;
  if ((rc = sotto__rd_bytes(&r, (size_t)ni * 32, &incl)) != 0) return rc;
  if (sotto__rd_left(&r) != 0) return SOTTO_ERR_TRAILING;
  if (m != SOTTO_KT_ABSENT) {
    if ((rc = sotto_kt_commit(c, opening, label, label_len, m, val, vlen)) != 0) return SOTTO_ERR_MALFORMED;
    if (!sotto__ct_eq(c, want_c, 32)) return SOTTO_ERR_AUTH;
  }
  sotto_kt_log_leaf(leaf, ts, root0);
  if ((rc = sotto_kt_log_verify_inclusion(h->root, h->tree_size, h->tree_size - 1, leaf, incl, (size_t)ni * 32)) !=
      0)
    return rc;
  *version = m;
  if (vlen) memcpy(value, val, vlen);
  *value_len = vlen;
  return 0;
}

/* Version proof, for one label-version that is in the log (not necessarily
 * the label's greatest): u32 version || vrf_proof(80) || u16 len ||
 * prefix proof (inclusion) || opening(16) || u16 len || value || u64 entry
 * timestamp || u8 m || m x 32 (inclusion of the last log leaf). What a
 * device needs to check each version of its own labels logged since its
 * last check (docs/key-transparency.md, "Monitoring"). */
int sotto_kt_dir_prove_version(uint8_t *out, size_t cap, size_t *out_len, struct sotto_kt_dir *d,
                               const uint8_t *label, size_t label_len, uint32_t version, const uint8_t *value,
                               size_t value_len, const uint8_t opening[16]) {
  uint8_t alpha[SOTTO_KT_MAX_LABEL_LEN + 5], pi[80], beta[64], c[32], got[32], root[32];
  uint8_t pp[2 + 1 + 32 + 64 + 256 * 32], incl[SOTTO_KT_MAX_LOG_PROOF * 32];
  size_t an, pl, il;
  uint64_t size;
  struct sotto__wr w;
  struct sotto__rd r;
  int rc, found;
  if (!out_len) return SOTTO_ERR_USAGE;
  *out_len = 0;
  if (!d || (!out && cap) || (!label && label_len) || label_len > SOTTO_KT_MAX_LABEL_LEN ||
      version > SOTTO_KT_MAX_VERSION || !opening || (!value && value_len) || value_len > SOTTO_KT_MAX_VALUE_LEN)
    return SOTTO_ERR_USAGE;
  if ((size = sotto_kt_log_size(d->s.log)) == 0) return SOTTO_ERR_USAGE;
  an = sotto__kt_vrf_input(alpha, label, label_len, version);
  if ((rc = sotto__kt_vrf_prove_with(pi, d->vrf, alpha, an)) != 0) return rc;
  if ((rc = sotto__kt_vrf_proof_to_hash(beta, pi)) != 0) return rc;
  if (!sotto__kt_prefix_has(d->s.prefix, beta)) return SOTTO_ERR_USAGE; /* not logged */
  if ((rc = sotto_kt_prefix_prove(pp, sizeof pp, &pl, d->s.prefix, beta)) != 0) return rc;
  sotto__rd_init(&r, pp, pl);
  if ((rc = sotto__kt_prefix_eval(root, &found, got, beta, &r)) != 0) return rc;
  if ((rc = sotto_kt_commit(c, opening, label, label_len, version, value, value_len)) != 0) return rc;
  if (!found || memcmp(got, c, 32) != 0) return SOTTO_ERR_USAGE; /* not this value */
  sotto__wr_init(&w, out, cap);
  sotto__wr_u32be(&w, version);
  sotto__wr_bytes(&w, pi, 80);
  sotto__wr_u8(&w, (uint8_t)(pl >> 8));
  sotto__wr_u8(&w, (uint8_t)pl);
  sotto__wr_bytes(&w, pp, pl);
  sotto__wr_bytes(&w, opening, 16);
  sotto__wr_u8(&w, (uint8_t)(value_len >> 8));
  sotto__wr_u8(&w, (uint8_t)value_len);
  sotto__wr_bytes(&w, value, value_len);
  sotto__wr_u64be(&w, d->s.last_entry_ts);
  if ((rc = sotto_kt_log_inclusion_proof(incl, sizeof incl, &il, d->s.log, size - 1, size)) != 0) return rc;
  sotto__wr_u8(&w, (uint8_t)(il / 32));
  sotto__wr_bytes(&w, incl, il);
  if (w.err) return w.err;
  *out_len = w.len;
  return 0;
}

int sotto_kt_version_verify(uint8_t *value, size_t *value_len, const struct sotto_kt_head *h,
                            const struct sotto_kt_log_id *id, const uint8_t *label, size_t label_len,
                            uint32_t version, const uint8_t *proof, size_t proof_len) {
  uint8_t alpha[SOTTO_KT_MAX_LABEL_LEN + 5], beta[64], root[32], c[32], want_c[32], leaf[32], vh, vl, lh, ll, ni;
  const uint8_t *pi, *pp, *opening, *val, *incl;
  uint32_t v;
  size_t an, plen, vlen;
  uint64_t ts;
  struct sotto__rd r, sub;
  int rc, found;
  if (value_len) *value_len = 0;
  if (!value || !value_len || !h || !id || (!label && label_len) || (!proof && proof_len) ||
      label_len > SOTTO_KT_MAX_LABEL_LEN || version > SOTTO_KT_MAX_VERSION)
    return SOTTO_ERR_USAGE;
  if (proof_len > SOTTO_KT_MAX_VERSION_PROOF_LEN) return SOTTO_ERR_TOO_LARGE;
  if (h->tree_size == 0 || h->tree_size > SOTTO_KT_MAX_TREE_SIZE) return SOTTO_ERR_MALFORMED;
  sotto__rd_init(&r, proof, proof_len);
  if ((rc = sotto__rd_u32be(&r, &v)) != 0 || (rc = sotto__rd_bytes(&r, 80, &pi)) != 0 ||
      (rc = sotto__rd_u8(&r, &lh)) != 0 || (rc = sotto__rd_u8(&r, &ll)) != 0)
    return rc;
  if (v != version) return SOTTO_ERR_MALFORMED; /* a proof of another version */
  plen = (size_t)lh << 8 | ll;
  if ((rc = sotto__rd_bytes(&r, plen, &pp)) != 0 || (rc = sotto__rd_bytes(&r, 16, &opening)) != 0 ||
      (rc = sotto__rd_u8(&r, &vh)) != 0 || (rc = sotto__rd_u8(&r, &vl)) != 0)
    return rc;
  vlen = (size_t)vh << 8 | vl;
  if (vlen > SOTTO_KT_MAX_VALUE_LEN) return SOTTO_ERR_TOO_LARGE;
  if ((rc = sotto__rd_bytes(&r, vlen, &val)) != 0 || (rc = sotto__rd_u64be(&r, &ts)) != 0 ||
      (rc = sotto__rd_u8(&r, &ni)) != 0)
    return rc;
  if (ni > SOTTO_KT_MAX_LOG_PROOF) return SOTTO_ERR_MALFORMED;
  if ((rc = sotto__rd_bytes(&r, (size_t)ni * 32, &incl)) != 0) return rc;
  if (sotto__rd_left(&r) != 0) return SOTTO_ERR_TRAILING;
  an = sotto__kt_vrf_input(alpha, label, label_len, version);
  if ((rc = sotto_kt_vrf_verify(beta, id->vrf_pk, pi, alpha, an)) != 0)
    return rc == SOTTO_ERR_INVALID_KEY ? rc : SOTTO_ERR_AUTH;
  sotto__rd_init(&sub, pp, plen);
  if ((rc = sotto__kt_prefix_eval(root, &found, want_c, beta, &sub)) != 0) return rc;
  if (sotto__rd_left(&sub) != 0) return SOTTO_ERR_MALFORMED;
  if (!found) return SOTTO_ERR_AUTH;
  if ((rc = sotto_kt_commit(c, opening, label, label_len, version, val, vlen)) != 0) return SOTTO_ERR_MALFORMED;
  if (!sotto__ct_eq(c, want_c, 32)) return SOTTO_ERR_AUTH;
  sotto_kt_log_leaf(leaf, ts, root);
  if ((rc = sotto_kt_log_verify_inclusion(h->root, h->tree_size, h->tree_size - 1, leaf, incl, (size_t)ni * 32)) != 0)
    return rc;
  if (vlen) memcpy(value, val, vlen);
  *value_len = vlen;
  return 0;
}

int sotto_kt_monitor_verify(const struct sotto_kt_head *h, const struct sotto_kt_log_id *id, const uint8_t *label,
                            size_t label_len, uint32_t version, const uint8_t *value, size_t value_len,
                            const uint8_t *proof, size_t proof_len) {
  uint8_t got[SOTTO_KT_MAX_VALUE_LEN];
  uint32_t v;
  size_t gl;
  int rc;
  if ((!value && value_len) || value_len > SOTTO_KT_MAX_VALUE_LEN) return SOTTO_ERR_USAGE;
  if ((rc = sotto_kt_search_verify(&v, got, &gl, h, id, label, label_len, proof, proof_len)) != 0) return rc;
  if (v != version) return SOTTO_ERR_UNTRUSTED_IDENTITY;
  if (version != SOTTO_KT_ABSENT && (gl != value_len || (gl && memcmp(got, value, gl) != 0)))
    return SOTTO_ERR_UNTRUSTED_IDENTITY;
  return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* sender_key.c: Sender Keys (group messages), Signal protocol v3 as
 * libsignal-protocol-c 2.3.3 speaks it (notes/signal-v3.md 4.6, 4.2, 1.6),
 * and the layout of libsignal 0.103 (a distribution uuid as field 1, the
 * other fields one number up; notes/signal-today.md), both read and written.
 *
 * Layout of this file: KDF, the store of skipped message keys, the states of
 * a record, the three wire messages (distribution, encrypt, decrypt), and our
 * own record serialization (docs/groups.md).
 *
 * Ownership: a struct sotto_sender_key owns its states. Each state owns its
 * array of stored message keys (malloc, wiped before free) and, on the
 * sender's own state, the private signing key and the precomputed XEdDSA
 * signer (sodium_malloc: guarded, locked memory, wiped by sodium_free).
 *
 * Stored message keys: a state keeps the seeds of skipped iterations in a
 * ring whose entries are in strictly ascending iteration order (keys are only
 * ever added when the chain moves forward). A lookup is a binary search (at
 * most 11 probes for 2000 keys) and only happens for an out-of-order message;
 * an in-order message never looks at the store. A used key is wiped and
 * marked dead in place; dead entries at either end are dropped at once and
 * the rest are compacted when the ring is full, so eviction always removes
 * the oldest LIVE key, like libsignal-c. A sorted ring was preferred to a hash
 * table: its worst case is bounded whatever iterations an attacker sends. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include <sotto/group.h>

#include "crypto/crypto.h"
#include "wire/wire.h"

#define SK_VERSION_BYTE 0x33   /* (3 << 4) | 3 */
#define SK_VERSION 3           /* the high nibble every v3 parser checks */
#define SK_CHAIN_KEY_LEN 32
#define SK_SEED_LEN 32
#define SK_CHAIN_ID_MASK 0x7FFFFFFFu /* chain ids are random 31-bit values */
#define SK_MK_MIN_CAP 16u
#define SK_SMALL_GAP 8 /* gaps up to this keep their skipped seeds on the stack */

/* Our record serialization: "SKR" || format version. */
#define SKR_MAGIC0 'S'
#define SKR_MAGIC1 'K'
#define SKR_MAGIC2 'R'
#define SKR_FORMAT 1
#define SKR_FLAG_OWN 0x01
#define SKR_FLAG_UUID 0x02 /* a 16-byte distribution uuid follows the flags */
#define SK_UUID_LEN 16
#define SKR_HEADER_LEN 5                                  /* magic 3, format 1, count 1 */
#define SKR_STATE_FIXED_LEN (4 + 1 + 4 + 32 + 32 + 2)     /* without private key, keys */
#define SKR_MKEY_LEN (4 + SK_SEED_LEN)

_Static_assert(SOTTO_MAX_SENDER_MESSAGE_KEYS <= 0xFFFF, "key count is a u16 in the record");
_Static_assert(SOTTO_MAX_SENDER_KEY_STATES <= 0xFF, "state count is a u8 in the record");
_Static_assert(SKR_HEADER_LEN + SOTTO_MAX_SENDER_KEY_STATES *
                                    (SKR_STATE_FIXED_LEN + 16 + 32 +
                                     SOTTO_MAX_SENDER_MESSAGE_KEYS * SKR_MKEY_LEN) <=
                   SOTTO_MAX_SENDER_KEY_RECORD_LEN,
               "a full record fits the record limit");

/* Private half of the sender's own state. */
struct sk_own {
  uint8_t priv[32];                   /* clamped X25519 scalar */
  struct sotto__xeddsa_signer signer; /* precomputed: one base-point mult per signature */
};

/* The seed of a skipped iteration (the message key is derived from it). */
struct sk_mkey {
  uint32_t iter;
  uint32_t live; /* 0 once used: kept only as an ordering placeholder */
  uint8_t seed[SK_SEED_LEN];
};

struct sk_state {
  uint32_t chain_id;
  uint32_t iter;                      /* iteration of chain_key: the next message's */
  uint8_t chain_key[SK_CHAIN_KEY_LEN];
  uint8_t sig_pub[32];                /* Montgomery u of the signing key */
  uint8_t sig_ed[32];                 /* its Edwards form, converted once (4.2) */
  struct sk_own *own;                 /* NULL on a member's state */
  uint8_t has_uuid;                   /* today's layout: the chain belongs to uuid */
  uint8_t uuid[SK_UUID_LEN];          /* distribution uuid (libsignal's distribution_id) */
  struct sk_mkey *mk;                 /* ring, ascending iterations */
  uint32_t mk_cap, mk_head, mk_n, mk_live;
};

struct sotto_sender_key {
  unsigned n;                                   /* states in use */
  struct sk_state st[SOTTO_MAX_SENDER_KEY_STATES]; /* st[0] oldest .. st[n-1] newest */
};

/* ---- KDF (4.6) ------------------------------------------------------------ */

/* One chain step: seed = HMAC-SHA256(CK, 0x01), CK' = HMAC-SHA256(CK, 0x02).
 * seed may be NULL. next may alias ck (the key is prepared before writing). */
static void chain_step(uint8_t seed[SK_SEED_LEN], uint8_t next[SK_CHAIN_KEY_LEN],
                       const uint8_t ck[SK_CHAIN_KEY_LEN]) {
  static const uint8_t message_seed = 0x01, chain_seed = 0x02;
  struct sotto__hmac_key hk;

  sotto__hmac_key_init(&hk, ck, SK_CHAIN_KEY_LEN);
  if (seed != NULL) sotto__hmac(seed, &hk, &message_seed, 1);
  sotto__hmac(next, &hk, &chain_seed, 1);
  sotto__hmac_key_clear(&hk);
}

/* Message key: HKDF-SHA256(salt = 0^32, IKM = seed, "WhisperGroup", 48)
 * = IV (16) || AES key (32); note the order differs from pairwise keys. */
static int message_key(uint8_t iv[16], uint8_t key[32], const uint8_t seed[SK_SEED_LEN]) {
  static const uint8_t info[] = "WhisperGroup";
  uint8_t okm[48];
  int rc;

  if ((rc = sotto__hkdf_zero_salt32(okm, sizeof okm, seed, info, sizeof info - 1)) == 0) {
    memcpy(iv, okm, 16);
    memcpy(key, okm + 16, 32);
  }
  sotto__wipe(okm, sizeof okm);
  return rc;
}

/* ---- stored message keys ---------------------------------------------------- */

static struct sk_mkey *mk_at(const struct sk_state *s, uint32_t i) {
  return &s->mk[(s->mk_head + i) % s->mk_cap];
}

/* Logical index of the live key for iter, or -1. */
static long mk_find(const struct sk_state *s, uint32_t iter) {
  uint32_t lo = 0, hi = s->mk_n;
  while (lo < hi) {
    uint32_t mid = lo + (hi - lo) / 2;
    if (mk_at(s, mid)->iter < iter)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lo < s->mk_n && mk_at(s, lo)->iter == iter && mk_at(s, lo)->live) return (long)lo;
  return -1;
}

/* Drops dead entries at both ends of the ring. */
static void mk_trim(struct sk_state *s) {
  while (s->mk_n > 0 && !mk_at(s, 0)->live) {
    sotto__wipe(mk_at(s, 0), sizeof(struct sk_mkey));
    s->mk_head = (s->mk_head + 1) % s->mk_cap;
    s->mk_n--;
  }
  while (s->mk_n > 0 && !mk_at(s, s->mk_n - 1)->live) {
    sotto__wipe(mk_at(s, s->mk_n - 1), sizeof(struct sk_mkey));
    s->mk_n--;
  }
  if (s->mk_n == 0) s->mk_head = 0;
}

/* Consumes the key at logical index i: wiped, marked dead. The ring itself
 * is released once empty, so a burst of reordering does not pin 80 KB. */
static void mk_use(struct sk_state *s, uint32_t i) {
  struct sk_mkey *e = mk_at(s, i);
  sotto__wipe(e->seed, sizeof e->seed);
  e->live = 0;
  s->mk_live--;
  mk_trim(s);
  if (s->mk_live == 0) {
    sotto__wipe(s->mk, (size_t)s->mk_cap * sizeof *s->mk);
    free(s->mk);
    s->mk = NULL;
    s->mk_cap = s->mk_head = s->mk_n = 0;
  }
}

/* Moves the live entries together (order kept). Writing logical slot j <= i
 * never overwrites an entry not yet read. */
static void mk_compact(struct sk_state *s) {
  uint32_t i, j = 0;
  for (i = 0; i < s->mk_n; i++) {
    struct sk_mkey *e = mk_at(s, i);
    if (!e->live) continue;
    if (j != i) {
      *mk_at(s, j) = *e;
      sotto__wipe(e, sizeof *e);
    }
    j++;
  }
  for (i = j; i < s->mk_n; i++) sotto__wipe(mk_at(s, i), sizeof(struct sk_mkey));
  s->mk_n = j;
}

/* Makes room so that `add` more keys can be appended without evicting any
 * key while fewer than SOTTO_MAX_SENDER_MESSAGE_KEYS are live. Only changes
 * the layout, never the set of keys, so a later failure needs no undo. */
static int mk_reserve(struct sk_state *s, uint32_t add) {
  uint64_t need = (uint64_t)s->mk_live + add;
  uint32_t cap, i;
  struct sk_mkey *a;

  if (need > SOTTO_MAX_SENDER_MESSAGE_KEYS) need = SOTTO_MAX_SENDER_MESSAGE_KEYS;
  if (s->mk_cap >= need) return 0;
  cap = s->mk_cap * 2;
  if (cap < SK_MK_MIN_CAP) cap = SK_MK_MIN_CAP;
  if (cap < need) cap = (uint32_t)need;
  if (cap > SOTTO_MAX_SENDER_MESSAGE_KEYS) cap = SOTTO_MAX_SENDER_MESSAGE_KEYS;
  if ((a = calloc(cap, sizeof *a)) == NULL) return SOTTO_ERR_NOMEM;
  /* Copy the live keys in order; the new ring starts at 0. */
  {
    uint32_t j = 0;
    for (i = 0; i < s->mk_n; i++) {
      const struct sk_mkey *e = mk_at(s, i);
      if (e->live) a[j++] = *e;
    }
  }
  if (s->mk != NULL) {
    sotto__wipe(s->mk, (size_t)s->mk_cap * sizeof *s->mk);
    free(s->mk);
  }
  s->mk = a;
  s->mk_cap = cap;
  s->mk_head = 0;
  s->mk_n = s->mk_live;
  return 0;
}

/* Appends the key of iter (greater than every stored one). mk_reserve ran
 * first, so the ring exists; if it is full of live keys (the limit), the
 * oldest is evicted. */
static void mk_append(struct sk_state *s, uint32_t iter, const uint8_t seed[SK_SEED_LEN]) {
  struct sk_mkey *e;

  if (s->mk_n == s->mk_cap) {
    if (s->mk_live < s->mk_n) {
      mk_compact(s);
    } else {
      sotto__wipe(mk_at(s, 0), sizeof(struct sk_mkey));
      s->mk_head = (s->mk_head + 1) % s->mk_cap;
      s->mk_n--;
      s->mk_live--;
    }
  }
  e = mk_at(s, s->mk_n);
  e->iter = iter;
  e->live = 1;
  memcpy(e->seed, seed, SK_SEED_LEN);
  s->mk_n++;
  s->mk_live++;
}

/* ---- states ----------------------------------------------------------------- */

static void state_clear(struct sk_state *s) {
  if (s->own != NULL) {
    sotto__xeddsa_signer_clear(&s->own->signer);
    sotto__wipe(s->own->priv, sizeof s->own->priv);
    sodium_free(s->own);
  }
  if (s->mk != NULL) {
    sotto__wipe(s->mk, (size_t)s->mk_cap * sizeof *s->mk);
    free(s->mk);
  }
  sotto__wipe(s, sizeof *s);
}

/* Removes st[i], keeping the age order of the others. */
static void state_drop(struct sotto_sender_key *rec, unsigned i) {
  state_clear(&rec->st[i]);
  if (i + 1 < rec->n)
    memmove(&rec->st[i], &rec->st[i + 1], (rec->n - i - 1) * sizeof rec->st[0]);
  rec->n--;
  /* The vacated slot held copies of pointers now owned by st[n-1]. */
  sotto__wipe(&rec->st[rec->n], sizeof rec->st[0]);
}

/* Moves *s in as the newest state (dropping the oldest past the limit) and
 * wipes the caller's copy. */
static void state_push(struct sotto_sender_key *rec, struct sk_state *s) {
  if (rec->n == SOTTO_MAX_SENDER_KEY_STATES) state_drop(rec, 0);
  rec->st[rec->n++] = *s;
  sotto__wipe(s, sizeof *s);
}

/* Makes st[i] the newest state. */
static void state_touch(struct sotto_sender_key *rec, unsigned i) {
  struct sk_state tmp;
  if (i + 1 == rec->n) return;
  tmp = rec->st[i];
  memmove(&rec->st[i], &rec->st[i + 1], (rec->n - i - 1) * sizeof rec->st[0]);
  rec->st[rec->n - 1] = tmp;
  sotto__wipe(&tmp, sizeof tmp);
}

static int state_find(const struct sotto_sender_key *rec, uint32_t chain_id) {
  unsigned i;
  for (i = rec->n; i-- > 0;)
    if (rec->st[i].chain_id == chain_id) return (int)i;
  return -1;
}

static struct sk_state *own_state(struct sotto_sender_key *rec) {
  unsigned i;
  for (i = rec->n; i-- > 0;)
    if (rec->st[i].own != NULL) return &rec->st[i];
  return NULL;
}

/* Fills *s with a fresh own sending chain (not yet in the record). */
static int state_create_own(struct sk_state *s, const struct sotto_sender_key *rec) {
  uint8_t r[4];
  int rc, tries;

  memset(s, 0, sizeof *s);
  /* A random 31-bit chain id (libsignal-c key_helper), distinct from the
   * ids already held so that lookups by id stay unambiguous. */
  for (tries = 0;; tries++) {
    if ((rc = sotto__random(r, sizeof r)) != 0) goto fail;
    s->chain_id = ((uint32_t)r[0] << 24 | (uint32_t)r[1] << 16 | (uint32_t)r[2] << 8 | r[3]) &
                  SK_CHAIN_ID_MASK;
    if (state_find(rec, s->chain_id) < 0) break;
    if (tries == 16) {
      rc = SOTTO_ERR_RANDOM;
      goto fail;
    }
  }
  if ((rc = sotto__random(s->chain_key, sizeof s->chain_key)) != 0) goto fail;
  if ((s->own = sodium_malloc(sizeof *s->own)) == NULL) {
    rc = SOTTO_ERR_NOMEM;
    goto fail;
  }
  memset(s->own, 0, sizeof *s->own);
  if ((rc = sotto__x25519_keygen(s->sig_pub, s->own->priv)) != 0) goto fail;
  if ((rc = sotto__xeddsa_signer_init(&s->own->signer, s->own->priv)) != 0) goto fail;
  if ((rc = sotto__xeddsa_edwards_key(s->sig_ed, s->sig_pub)) != 0) goto fail;
  s->iter = 0;
  return 0;
fail:
  state_clear(s);
  return rc;
}

/* ---- public: lifecycle -------------------------------------------------------- */

int sotto_sender_key_new(struct sotto_sender_key **out) {
  struct sotto_sender_key *rec;
  int rc;

  if (out == NULL) return SOTTO_ERR_USAGE;
  *out = NULL;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  if ((rec = calloc(1, sizeof *rec)) == NULL) return SOTTO_ERR_NOMEM;
  *out = rec;
  return 0;
}

void sotto_sender_key_free(struct sotto_sender_key *rec) {
  unsigned i;
  if (rec == NULL) return;
  for (i = 0; i < rec->n; i++) state_clear(&rec->st[i]);
  sotto__wipe(rec, sizeof *rec);
  free(rec);
}

unsigned sotto_sender_key_state_count(const struct sotto_sender_key *rec) {
  return rec == NULL ? 0 : rec->n;
}

int sotto_sender_key_own_chain_id(const struct sotto_sender_key *rec, uint32_t *chain_id) {
  unsigned i;
  if (rec == NULL || chain_id == NULL) return SOTTO_ERR_USAGE;
  for (i = rec->n; i-- > 0;) {
    if (rec->st[i].own != NULL) {
      *chain_id = rec->st[i].chain_id;
      return 0;
    }
  }
  return SOTTO_ERR_NOT_SENDER;
}

int sotto_sender_key_own_distribution_uuid(const struct sotto_sender_key *rec, uint8_t uuid[16], int *has_uuid) {
  unsigned i;
  if (rec == NULL || uuid == NULL || has_uuid == NULL) return SOTTO_ERR_USAGE;
  *has_uuid = 0;
  memset(uuid, 0, SK_UUID_LEN);
  for (i = rec->n; i-- > 0;) {
    if (rec->st[i].own != NULL) {
      if (rec->st[i].has_uuid) {
        memcpy(uuid, rec->st[i].uuid, SK_UUID_LEN);
        *has_uuid = 1;
      }
      return 0;
    }
  }
  return SOTTO_ERR_NOT_SENDER;
}

/* ---- SenderKeyDistributionMessage (4.6) ------------------------------------------ */

struct skdm {
  uint32_t chain_id, iter;
  const uint8_t *chain_key; /* 32 bytes, points into the input */
  uint8_t sig_pub[32];
  int has_uuid;
  const uint8_t *uuid; /* 16 bytes, points into the input */
};

/* The two protobuf layouts of Sender Key messages, told apart by the wire
 * type of field 1: libsignal-protocol-c writes the chain id there (varint),
 * libsignal 0.103 the 16-byte distribution uuid (bytes), every other field
 * one number higher. Returns 1 for today's layout, 0 for the old one, or
 * SOTTO_ERR_MALFORMED when field 1 is missing or has another wire type. */
static int sk_layout(const uint8_t *pb, size_t len) {
  struct sotto__rd r;
  struct sotto__pb_field f;
  int rc;
  sotto__rd_init(&r, pb, len);
  while ((rc = sotto__pb_next(&r, &f)) == 1) {
    if (f.num != 1) continue;
    if (f.wt == SOTTO__PB_LEN) return 1;
    if (f.wt == SOTTO__PB_VARINT) return 0;
    return SOTTO_ERR_MALFORMED;
  }
  return rc < 0 ? rc : SOTTO_ERR_MALFORMED;
}

/* High nibble of the version byte: 3 for v3; the low nibble is not checked
 * (libsignal-c's parsers do the same). */
static int check_version(uint8_t v) {
  if ((v >> 4) < SK_VERSION) return SOTTO_ERR_LEGACY;
  if ((v >> 4) > SK_VERSION) return SOTTO_ERR_VERSION;
  return 0;
}

/* Parses 0x33 || {1 id, 2 iteration, 3 chainKey, 4 signingKey} (v3) or
 * 0x33 || {1 distributionUuid, 2 id, 3 iteration, 4 chainKey, 5 signingKey}
 * (libsignal 0.103). Each known field must appear exactly once with its wire
 * type; unknown fields are skipped (protobuf rules) but the whole message is
 * capped at SOTTO_SKDM_MAX_LEN, the size either layout writes. */
static int skdm_parse(struct skdm *m, const uint8_t *in, size_t len) {
  struct sotto__rd r;
  struct sotto__pb_field f;
  unsigned seen = 0, o, want;
  int rc, uuid;

  if (len > SOTTO_SKDM_MAX_LEN) return SOTTO_ERR_TOO_LARGE;
  if (len < 1) return SOTTO_ERR_TRUNCATED;
  if ((rc = check_version(in[0])) != 0) return rc;
  if ((uuid = sk_layout(in + 1, len - 1)) < 0) return uuid;
  o = uuid ? 1 : 0; /* field number offset of today's layout */
  want = uuid ? 0x3E : 0x1E;
  sotto__rd_init(&r, in + 1, len - 1);
  while ((rc = sotto__pb_next(&r, &f)) == 1) {
    if (f.num >= 1 && f.num <= 4 + o) {
      if (seen & (1u << f.num)) return SOTTO_ERR_MALFORMED; /* duplicate */
      seen |= 1u << f.num;
    }
    if (uuid && f.num == 1) {
      if (f.wt != SOTTO__PB_LEN || f.len != SK_UUID_LEN) return SOTTO_ERR_MALFORMED;
      m->uuid = f.p;
      m->has_uuid = 1;
    } else if (f.num == 1 + o) {
      if ((rc = sotto__pb_get_u32(&f, &m->chain_id)) != 0) return rc;
    } else if (f.num == 2 + o) {
      if ((rc = sotto__pb_get_u32(&f, &m->iter)) != 0) return rc;
    } else if (f.num == 3 + o) {
      if (f.wt != SOTTO__PB_LEN || f.len != SK_CHAIN_KEY_LEN) return SOTTO_ERR_MALFORMED;
      m->chain_key = f.p;
    } else if (f.num == 4 + o) {
      if ((rc = sotto__pb_get_pubkey(&f, m->sig_pub)) != 0) return rc;
    }
  }
  if (rc < 0) return rc;
  if (seen != want) return SOTTO_ERR_MALFORMED; /* every field is required */
  return 0;
}

static size_t skdm_size(const struct sk_state *s) {
  return 1 + (s->has_uuid ? sotto__pb_bytes_size(SK_UUID_LEN) : 0) +
         sotto__pb_varint_size(s->chain_id) + sotto__pb_varint_size(s->iter) +
         sotto__pb_bytes_size(SK_CHAIN_KEY_LEN) + sotto__pb_bytes_size(33);
}

/* The first fields of both messages: [1 uuid,] id, iteration. */
static void sk_write_head(struct sotto__wr *w, const struct sk_state *s) {
  uint32_t o = s->has_uuid ? 1 : 0;
  sotto__wr_u8(w, SK_VERSION_BYTE);
  if (s->has_uuid) sotto__pb_bytes(w, 1, s->uuid, SK_UUID_LEN);
  sotto__pb_varint(w, 1 + o, s->chain_id);
  sotto__pb_varint(w, 2 + o, s->iter);
}

/* Both layouts: uuid NULL writes libsignal-protocol-c's, else today's. */
static int distribution(struct sotto_sender_key *rec, uint8_t *out, size_t cap, size_t *out_len,
                        const uint8_t *uuid) {
  struct sk_state fresh, *s;
  struct sotto__wr w;
  int rc, created = 0;
  uint32_t o;

  if (out_len != NULL) *out_len = 0;
  if (rec == NULL || out_len == NULL || (out == NULL && cap != 0)) return SOTTO_ERR_USAGE;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  memset(&fresh, 0, sizeof fresh);

  /* A new chain is built aside and joins the record only once the message
   * is written, so that a too-small buffer changes nothing. */
  if ((s = own_state(rec)) == NULL) {
    if ((rc = state_create_own(&fresh, rec)) != 0) return rc;
    if (uuid != NULL) {
      fresh.has_uuid = 1;
      memcpy(fresh.uuid, uuid, SK_UUID_LEN);
    }
    s = &fresh;
    created = 1;
  } else if ((uuid == NULL) != !s->has_uuid ||
             (uuid != NULL && memcmp(uuid, s->uuid, SK_UUID_LEN) != 0)) {
    /* One sending chain per record: another layout or another distribution
     * needs its own record. */
    return SOTTO_ERR_USAGE;
  }
  if (skdm_size(s) > cap) {
    rc = SOTTO_ERR_BUFFER_TOO_SMALL;
    goto out;
  }
  o = s->has_uuid ? 1 : 0;
  sotto__wr_init(&w, out, cap);
  sk_write_head(&w, s);
  sotto__pb_bytes(&w, 3 + o, s->chain_key, SK_CHAIN_KEY_LEN);
  sotto__pb_pubkey(&w, 4 + o, s->sig_pub);
  if ((rc = w.err) != 0) goto out;
  *out_len = w.len;
  if (created) {
    state_push(rec, &fresh);
    created = 0;
  }
out:
  if (created) state_clear(&fresh);
  if (rc != 0) {
    if (out != NULL && cap != 0) sotto__wipe(out, cap);
    *out_len = 0;
  }
  return rc;
}

int sotto_sender_key_distribution(struct sotto_sender_key *rec, uint8_t *out, size_t cap,
                                  size_t *out_len) {
  return distribution(rec, out, cap, out_len, NULL);
}

int sotto_sender_key_distribution_uuid(struct sotto_sender_key *rec, uint8_t *out, size_t cap,
                                       size_t *out_len, const uint8_t uuid[16]) {
  if (uuid == NULL) {
    if (out_len != NULL) *out_len = 0;
    return SOTTO_ERR_USAGE;
  }
  return distribution(rec, out, cap, out_len, uuid);
}

int sotto_sender_key_process(struct sotto_sender_key *rec, const uint8_t *skdm, size_t skdm_len) {
  struct skdm m;
  struct sk_state s;
  int rc, i;
  uint8_t ed[32];

  if (rec == NULL || (skdm == NULL && skdm_len != 0)) return SOTTO_ERR_USAGE;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  memset(&m, 0, sizeof m);
  /* Parse completely first; nothing below can fail. */
  if ((rc = skdm_parse(&m, skdm, skdm_len)) != 0) goto out;
  /* The verification key is converted once here, not per message (4.2). */
  if ((rc = sotto__xeddsa_edwards_key(ed, m.sig_pub)) != 0) goto out;

  i = state_find(rec, m.chain_id);
  if (i >= 0 && sodium_memcmp(rec->st[i].sig_pub, m.sig_pub, 32) == 0 &&
      rec->st[i].has_uuid == (uint8_t)m.has_uuid &&
      (!m.has_uuid || memcmp(rec->st[i].uuid, m.uuid, SK_UUID_LEN) == 0)) {
    /* Same chain re-delivered: keep its progress and stored keys (a reset
     * would make already-decrypted messages decrypt again). */
    state_touch(rec, (unsigned)i);
    goto out;
  }
  if (i >= 0) state_drop(rec, (unsigned)i); /* same id, other key: replaced */
  memset(&s, 0, sizeof s);
  s.chain_id = m.chain_id;
  s.iter = m.iter;
  memcpy(s.chain_key, m.chain_key, SK_CHAIN_KEY_LEN);
  memcpy(s.sig_pub, m.sig_pub, 32);
  memcpy(s.sig_ed, ed, 32);
  if (m.has_uuid) {
    s.has_uuid = 1;
    memcpy(s.uuid, m.uuid, SK_UUID_LEN);
  }
  state_push(rec, &s);
out:
  sotto__wipe(&m, sizeof m);
  return rc;
}

/* ---- SenderKeyMessage (4.6) ---------------------------------------------------- */

struct skm {
  uint32_t chain_id, iter;
  int has_uuid;
  const uint8_t *uuid; /* 16 bytes into the input, today's layout only */
  const uint8_t *ct; /* points into the input */
  size_t ct_len;
  size_t signed_len; /* version byte + protobuf */
};

/* Parses 0x33 || {1 id, 2 iteration, 3 ciphertext} || signature[64] (v3)
 * or 0x33 || {1 distributionUuid, 2 id, 3 iteration, 4 ciphertext} ||
 * signature[64] (libsignal 0.103). */
static int skm_parse(struct skm *m, const uint8_t *in, size_t len) {
  struct sotto__rd r;
  struct sotto__pb_field f;
  unsigned seen = 0, o, want;
  int rc, uuid;

  if (len > SOTTO_MAX_MESSAGE_LEN) return SOTTO_ERR_TOO_LARGE;
  if (len <= 1 + SOTTO_SIGNATURE_LEN) return SOTTO_ERR_TRUNCATED;
  if ((rc = check_version(in[0])) != 0) return rc;
  m->signed_len = len - SOTTO_SIGNATURE_LEN;
  if ((uuid = sk_layout(in + 1, m->signed_len - 1)) < 0) return uuid;
  o = uuid ? 1 : 0;
  want = uuid ? 0x1E : 0x0E;
  sotto__rd_init(&r, in + 1, m->signed_len - 1);
  while ((rc = sotto__pb_next(&r, &f)) == 1) {
    if (f.num >= 1 && f.num <= 3 + o) {
      if (seen & (1u << f.num)) return SOTTO_ERR_MALFORMED;
      seen |= 1u << f.num;
    }
    if (uuid && f.num == 1) {
      if (f.wt != SOTTO__PB_LEN || f.len != SK_UUID_LEN) return SOTTO_ERR_MALFORMED;
      m->uuid = f.p;
      m->has_uuid = 1;
    } else if (f.num == 1 + o) {
      if ((rc = sotto__pb_get_u32(&f, &m->chain_id)) != 0) return rc;
    } else if (f.num == 2 + o) {
      if ((rc = sotto__pb_get_u32(&f, &m->iter)) != 0) return rc;
    } else if (f.num == 3 + o) {
      if (f.wt != SOTTO__PB_LEN) return SOTTO_ERR_MALFORMED;
      m->ct = f.p;
      m->ct_len = f.len;
    }
  }
  if (rc < 0) return rc;
  if (seen != want) return SOTTO_ERR_MALFORMED;
  /* AES-CBC output: whole blocks, at least one, at most the plaintext cap. */
  if (m->ct_len > SOTTO_CIPHERTEXT_LEN(SOTTO_MAX_PLAINTEXT_LEN)) return SOTTO_ERR_TOO_LARGE;
  if (m->ct_len == 0 || m->ct_len % 16 != 0) return SOTTO_ERR_MALFORMED;
  return 0;
}

int sotto_group_message_chain_id(const uint8_t *msg, size_t msg_len, uint32_t *chain_id) {
  struct skm m;
  int rc;
  if ((msg == NULL && msg_len != 0) || chain_id == NULL) return SOTTO_ERR_USAGE;
  memset(&m, 0, sizeof m);
  if ((rc = skm_parse(&m, msg, msg_len)) == 0) *chain_id = m.chain_id;
  return rc;
}

int sotto_group_message_distribution_uuid(const uint8_t *msg, size_t msg_len, uint8_t uuid[16],
                                          int *has_uuid) {
  struct skm m;
  int rc;
  if ((msg == NULL && msg_len != 0) || uuid == NULL || has_uuid == NULL) return SOTTO_ERR_USAGE;
  *has_uuid = 0;
  memset(&m, 0, sizeof m);
  if ((rc = skm_parse(&m, msg, msg_len)) == 0 && m.has_uuid) {
    memcpy(uuid, m.uuid, SK_UUID_LEN);
    *has_uuid = 1;
  }
  return rc;
}

int sotto_group_encrypt(struct sotto_sender_key *rec, uint8_t *out, size_t cap, size_t *out_len,
                        const uint8_t *pt, size_t pt_len) {
  uint8_t seed[SK_SEED_LEN], next[SK_CHAIN_KEY_LEN], iv[16], key[32];
  struct sotto__wr w;
  struct sk_state *s;
  size_t ct_len, total, n = 0;
  int rc;

  if (out_len != NULL) *out_len = 0;
  if (rec == NULL || out_len == NULL || (out == NULL && cap != 0) || (pt == NULL && pt_len != 0))
    return SOTTO_ERR_USAGE;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  if (pt_len > SOTTO_MAX_PLAINTEXT_LEN) return SOTTO_ERR_TOO_LARGE;
  if ((s = own_state(rec)) == NULL) return SOTTO_ERR_NOT_SENDER;
  /* The iteration is a uint32 on the wire; an exhausted chain must be
   * replaced by a new distribution (never wraps). */
  if (s->iter == UINT32_MAX) return SOTTO_ERR_TOO_LARGE;

  ct_len = SOTTO_CIPHERTEXT_LEN(pt_len);
  total = 1 + (s->has_uuid ? sotto__pb_bytes_size(SK_UUID_LEN) : 0) +
          sotto__pb_varint_size(s->chain_id) + sotto__pb_varint_size(s->iter) +
          sotto__pb_bytes_size(ct_len) + SOTTO_SIGNATURE_LEN;
  if (total > cap) return SOTTO_ERR_BUFFER_TOO_SMALL;

  /* KDF: message seed and next chain key from the current chain key. */
  chain_step(seed, next, s->chain_key);
  if ((rc = message_key(iv, key, seed)) != 0) goto out;

  sotto__wr_init(&w, out, cap);
  sk_write_head(&w, s);
  sotto__wr_varint(&w, (uint64_t)(s->has_uuid ? 4 : 3) << 3 | SOTTO__PB_LEN);
  sotto__wr_varint(&w, ct_len);
  if ((rc = w.err) != 0) goto out;
  if ((rc = sotto__aes256cbc_encrypt(out + w.len, &n, key, iv, pt, pt_len)) != 0) goto out;
  if (n != ct_len) {
    rc = SOTTO_ERR_INTERNAL;
    goto out;
  }
  /* Signature over version byte || protobuf by the cached signer. */
  if ((rc = sotto__xeddsa_sign_with(out + w.len + n, &s->own->signer, out, w.len + n)) != 0)
    goto out;

  /* Commit: the chain moves on only once the message exists. */
  memcpy(s->chain_key, next, sizeof next);
  s->iter++;
  *out_len = total;
out:
  sotto__wipe(seed, sizeof seed);
  sotto__wipe(next, sizeof next);
  sotto__wipe(iv, sizeof iv);
  sotto__wipe(key, sizeof key);
  if (rc != 0 && out != NULL) sotto__wipe(out, cap);
  return rc;
}

int sotto_group_decrypt(struct sotto_sender_key *rec, uint8_t *pt, size_t cap, size_t *pt_len,
                        const uint8_t *msg, size_t msg_len) {
  uint8_t seed[SK_SEED_LEN], next[SK_CHAIN_KEY_LEN], iv[16], key[32];
  uint8_t small[SK_SMALL_GAP * SK_SEED_LEN];
  uint8_t *skipped = NULL; /* seeds of the iterations jumped over */
  uint32_t gap = 0, k;
  long stored = -1;
  struct sk_state *s;
  struct skm m;
  size_t n = 0;
  int rc, i;

  if (pt_len != NULL) *pt_len = 0;
  if (pt == NULL && cap != 0) return SOTTO_ERR_USAGE;
  memset(&m, 0, sizeof m);
  if (rec == NULL || pt_len == NULL || (msg == NULL && msg_len != 0)) {
    rc = SOTTO_ERR_USAGE;
    goto out;
  }
  if ((rc = sotto__crypto_init()) != 0) goto out;

  /* 1. Parse and size checks. */
  if ((rc = skm_parse(&m, msg, msg_len)) != 0) goto out;
  if (cap < m.ct_len) {
    rc = SOTTO_ERR_BUFFER_TOO_SMALL;
    goto out;
  }
  /* 2. The state of the message's chain. */
  if ((i = state_find(rec, m.chain_id)) < 0) {
    rc = SOTTO_ERR_NO_SENDER_KEY;
    goto out;
  }
  s = &rec->st[i];
  /* The message must name the same distribution as the chain (or, in the
   * old layout, none): a chain learned for one group never decrypts a
   * message addressed to another. */
  if (s->has_uuid != (uint8_t)m.has_uuid ||
      (m.has_uuid && memcmp(s->uuid, m.uuid, SK_UUID_LEN) != 0)) {
    rc = SOTTO_ERR_NO_SENDER_KEY;
    goto out;
  }
  /* 3. Signature first (group_cipher.c order): a forged message never
   * reaches the chain or the stored keys, and a tampered replay is AUTH. */
  if ((rc = sotto__xeddsa_verify_ed(s->sig_ed, msg, m.signed_len, msg + m.signed_len)) != 0)
    goto out;

  /* 4. The message key: a stored one for an old iteration, or the chain
   * walked forward (at most SOTTO_MAX_SENDER_FORWARD_JUMP steps). */
  if (m.iter < s->iter) {
    if ((stored = mk_find(s, m.iter)) < 0) {
      rc = SOTTO_ERR_DUPLICATE;
      goto out;
    }
    memcpy(seed, mk_at(s, (uint32_t)stored)->seed, SK_SEED_LEN);
  } else {
    gap = m.iter - s->iter;
    /* libsignal-c rejects "iteration - chain iteration > 2000"; the chain
     * also cannot move past the last uint32 iteration. */
    if (gap > SOTTO_MAX_SENDER_FORWARD_JUMP || m.iter == UINT32_MAX) {
      rc = SOTTO_ERR_TOO_FAR_AHEAD;
      goto out;
    }
    if (gap > 0) {
      if ((rc = mk_reserve(s, gap)) != 0) goto out;
      if (gap <= SK_SMALL_GAP)
        skipped = small;
      else if ((skipped = malloc((size_t)gap * SK_SEED_LEN)) == NULL) {
        rc = SOTTO_ERR_NOMEM;
        goto out;
      }
    }
    memcpy(next, s->chain_key, sizeof next);
    for (k = 0; k < gap; k++) chain_step(skipped + (size_t)k * SK_SEED_LEN, next, next);
    chain_step(seed, next, next);
  }
  if ((rc = message_key(iv, key, seed)) != 0) goto out;

  /* 5. Decrypt; bad padding is an authentication failure. */
  if ((rc = sotto__aes256cbc_decrypt(pt, &n, key, iv, m.ct, m.ct_len)) != 0) {
    if (rc != SOTTO_ERR_NOMEM && rc != SOTTO_ERR_INTERNAL) rc = SOTTO_ERR_AUTH;
    goto out;
  }

  /* 6. Commit (cannot fail: room was reserved above). */
  if (stored >= 0) {
    mk_use(s, (uint32_t)stored);
  } else {
    for (k = 0; k < gap; k++) mk_append(s, s->iter + k, skipped + (size_t)k * SK_SEED_LEN);
    memcpy(s->chain_key, next, sizeof next);
    s->iter = m.iter + 1;
  }
  *pt_len = n;
out:
  if (skipped != NULL) {
    sotto__wipe(skipped, (size_t)gap * SK_SEED_LEN);
    if (skipped != small) free(skipped);
  }
  sotto__wipe(seed, sizeof seed);
  sotto__wipe(next, sizeof next);
  sotto__wipe(iv, sizeof iv);
  sotto__wipe(key, sizeof key);
  if (rc != 0 && pt != NULL) sotto__wipe(pt, cap);
  return rc;
}

/* ---- record serialization (docs/groups.md) -------------------------------------- */

static size_t state_serialized_size(const struct sk_state *s) {
  return SKR_STATE_FIXED_LEN + (s->has_uuid ? SK_UUID_LEN : 0) + (s->own != NULL ? 32 : 0) +
         (size_t)s->mk_live * SKR_MKEY_LEN;
}

size_t sotto_sender_key_serialized_size(const struct sotto_sender_key *rec) {
  size_t n = SKR_HEADER_LEN;
  unsigned i;
  if (rec == NULL) return 0;
  for (i = 0; i < rec->n; i++) n += state_serialized_size(&rec->st[i]);
  return n;
}

int sotto_sender_key_serialize(const struct sotto_sender_key *rec, uint8_t *out, size_t cap,
                               size_t *out_len) {
  static const uint8_t magic[4] = {SKR_MAGIC0, SKR_MAGIC1, SKR_MAGIC2, SKR_FORMAT};
  struct sotto__wr w;
  unsigned i;
  uint32_t k;

  if (out_len != NULL) *out_len = 0;
  if (rec == NULL || out_len == NULL || (out == NULL && cap != 0)) return SOTTO_ERR_USAGE;
  if (sotto_sender_key_serialized_size(rec) > cap) return SOTTO_ERR_BUFFER_TOO_SMALL;
  sotto__wr_init(&w, out, cap);
  sotto__wr_bytes(&w, magic, sizeof magic);
  sotto__wr_u8(&w, (uint8_t)rec->n);
  /* Oldest state first, so that the order (and thus eviction) survives. */
  for (i = 0; i < rec->n; i++) {
    const struct sk_state *s = &rec->st[i];
    sotto__wr_u32be(&w, s->chain_id);
    sotto__wr_u8(&w, (uint8_t)((s->own != NULL ? SKR_FLAG_OWN : 0) |
                               (s->has_uuid ? SKR_FLAG_UUID : 0)));
    if (s->has_uuid) sotto__wr_bytes(&w, s->uuid, SK_UUID_LEN);
    sotto__wr_u32be(&w, s->iter);
    sotto__wr_bytes(&w, s->chain_key, SK_CHAIN_KEY_LEN);
    sotto__wr_bytes(&w, s->sig_pub, 32);
    if (s->own != NULL) sotto__wr_bytes(&w, s->own->priv, 32);
    sotto__wr_u8(&w, (uint8_t)(s->mk_live >> 8));
    sotto__wr_u8(&w, (uint8_t)s->mk_live);
    for (k = 0; k < s->mk_n; k++) {
      const struct sk_mkey *e = mk_at(s, k);
      if (!e->live) continue;
      sotto__wr_u32be(&w, e->iter);
      sotto__wr_bytes(&w, e->seed, SK_SEED_LEN);
    }
  }
  if (w.err != 0) {
    sotto__wipe(out, cap);
    return w.err;
  }
  *out_len = w.len;
  return 0;
}

/* Reads one state; everything it allocates belongs to *s (cleared by the
 * caller on error). */
static int state_deserialize(struct sk_state *s, struct sotto__rd *r) {
  uint8_t flags, hi, lo, check[32];
  uint32_t count, k, prev = 0;
  int rc;

  if ((rc = sotto__rd_u32be(r, &s->chain_id)) != 0) return rc;
  if ((rc = sotto__rd_u8(r, &flags)) != 0) return rc;
  if ((flags & ~(SKR_FLAG_OWN | SKR_FLAG_UUID)) != 0) return SOTTO_ERR_MALFORMED;
  if (flags & SKR_FLAG_UUID) {
    if ((rc = sotto__rd_copy(r, s->uuid, SK_UUID_LEN)) != 0) return rc;
    s->has_uuid = 1;
  }
  if ((rc = sotto__rd_u32be(r, &s->iter)) != 0) return rc;
  if ((rc = sotto__rd_copy(r, s->chain_key, SK_CHAIN_KEY_LEN)) != 0) return rc;
  if ((rc = sotto__rd_copy(r, s->sig_pub, 32)) != 0) return rc;
  if ((rc = sotto__xeddsa_edwards_key(s->sig_ed, s->sig_pub)) != 0) return rc;
  if (flags & SKR_FLAG_OWN) {
    if ((s->own = sodium_malloc(sizeof *s->own)) == NULL) return SOTTO_ERR_NOMEM;
    memset(s->own, 0, sizeof *s->own);
    if ((rc = sotto__rd_copy(r, s->own->priv, 32)) != 0) return rc;
    /* A clamped scalar whose public key is the stored one. */
    if ((s->own->priv[0] & 7) != 0 || (s->own->priv[31] & 0xC0) != 0x40)
      return SOTTO_ERR_INVALID_KEY;
    rc = sotto__x25519_public(check, s->own->priv);
    if (rc == 0 && sodium_memcmp(check, s->sig_pub, 32) != 0) rc = SOTTO_ERR_INVALID_KEY;
    sotto__wipe(check, sizeof check);
    if (rc != 0) return rc;
    if ((rc = sotto__xeddsa_signer_init(&s->own->signer, s->own->priv)) != 0) return rc;
  }
  /* Stored keys: count capped before anything is allocated. */
  if ((rc = sotto__rd_u8(r, &hi)) != 0) return rc;
  if ((rc = sotto__rd_u8(r, &lo)) != 0) return rc;
  count = (uint32_t)hi << 8 | lo;
  if (count > SOTTO_MAX_SENDER_MESSAGE_KEYS) return SOTTO_ERR_TOO_LARGE;
  if ((size_t)count * SKR_MKEY_LEN > sotto__rd_left(r)) return SOTTO_ERR_TRUNCATED;
  if (count > 0 && (rc = mk_reserve(s, count)) != 0) return rc;
  for (k = 0; k < count; k++) {
    uint32_t it;
    uint8_t seed[SK_SEED_LEN];
    if ((rc = sotto__rd_u32be(r, &it)) != 0) return rc;
    /* Strictly ascending and behind the chain, as the live store is. */
    if ((k > 0 && it <= prev) || it >= s->iter) return SOTTO_ERR_MALFORMED;
    if ((rc = sotto__rd_copy(r, seed, sizeof seed)) != 0) return rc;
    mk_append(s, it, seed);
    sotto__wipe(seed, sizeof seed);
    prev = it;
  }
  return 0;
}

int sotto_sender_key_deserialize(struct sotto_sender_key **out, const uint8_t *in, size_t in_len) {
  struct sotto_sender_key *rec = NULL;
  struct sotto__rd r;
  const uint8_t *magic;
  uint8_t count;
  unsigned i, j, own = 0;
  int rc;

  if (out == NULL) return SOTTO_ERR_USAGE;
  *out = NULL;
  if (in == NULL && in_len != 0) return SOTTO_ERR_USAGE;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  if (in_len > SOTTO_MAX_SENDER_KEY_RECORD_LEN) return SOTTO_ERR_TOO_LARGE;
  sotto__rd_init(&r, in, in_len);
  if ((rc = sotto__rd_bytes(&r, 4, &magic)) != 0) return rc;
  if (magic[0] != SKR_MAGIC0 || magic[1] != SKR_MAGIC1 || magic[2] != SKR_MAGIC2)
    return SOTTO_ERR_MALFORMED;
  if (magic[3] != SKR_FORMAT) return SOTTO_ERR_VERSION;
  if ((rc = sotto__rd_u8(&r, &count)) != 0) return rc;
  if (count > SOTTO_MAX_SENDER_KEY_STATES) return SOTTO_ERR_TOO_LARGE;
  if ((rec = calloc(1, sizeof *rec)) == NULL) return SOTTO_ERR_NOMEM;
  for (i = 0; i < count; i++) {
    struct sk_state *s = &rec->st[i];
    rec->n = i + 1; /* so that a failure frees what this state holds */
    if ((rc = state_deserialize(s, &r)) != 0) goto fail;
    for (j = 0; j < i; j++) {
      if (rec->st[j].chain_id == s->chain_id) {
        rc = SOTTO_ERR_MALFORMED;
        goto fail;
      }
    }
    if (s->own != NULL && own++ > 0) {
      rc = SOTTO_ERR_MALFORMED; /* at most one own signing state */
      goto fail;
    }
  }
  if (sotto__rd_left(&r) != 0) {
    rc = SOTTO_ERR_TRAILING;
    goto fail;
  }
  *out = rec;
  return 0;
fail:
  sotto_sender_key_free(rec);
  return rc;
}

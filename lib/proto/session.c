/* SPDX-License-Identifier: Apache-2.0 */
/* session.c: X3DH session setup and the Double Ratchet, libsignal v3 format.
 *
 * Specs: signal.org/docs/specifications/x3dh (section 3.3 sending, 3.4
 * receiving the initial message) and .../doubleratchet (section 3: KDF_RK,
 * KDF_CK, ENCRYPT, DECRYPT, skipped message keys); the byte-level choices
 * follow libsignal-protocol-c (notes/signal-v3.md section 4).
 *
 * Structure. A record (struct sotto_session) holds the current state and up
 * to SOTTO_MAX_ARCHIVED_STATES older ones. Every operation runs on a copy of
 * a state and writes it back only after the message fully verified; changes
 * to the skipped-key table are collected in a `struct pending` and applied at
 * the same commit point, so a failure can never leave a half-applied state.
 *
 * One deliberate difference from libsignal's code, invisible on the wire: a
 * DH ratchet step on receipt derives the new receiving chain at once, but the
 * new sending ratchet key pair (and its root-key step) is made lazily, just
 * before the next encrypt, or before the next receiving step if that comes
 * first. The sequence of root keys, chains and wire bytes is exactly the
 * eager one; a party that only receives saves a key generation and a DH. */
#include <sotto/keys.h>
#include <sotto/session.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/crypto.h"
#include <sotto/mlkem.h>

#include "proto/kdf.h"
#include "proto/kem.h"
#include "proto/skipped.h"
#include "spqr/spqr.h"
#include "wire/messages.h"

/* ---- state ---------------------------------------------------------------- */

#define F_HAS_SEND 0x01      /* send_* hold a sending chain */
#define F_SEND_STALE 0x02    /* a receiving step happened; make a new sending chain first */
#define F_PENDING_PREKEY 0x04 /* initiator: wrap outgoing messages in PreKeySignalMessages */
#define F_PENDING_OPK 0x08   /* ... and the wrapper names a one-time pre-key */
#define F_PENDING_KEM 0x10   /* ... and carries a KEM pre-key id and ciphertext (v4) */
#define F_KNOWN 0x1F
/* Only in records of format 2: the state runs SPQR and its SPQR record
 * follows (in memory, spqr != NULL says it). */
#define F_SPQR 0x20
#define F_PENDING_ALL (F_PENDING_PREKEY | F_PENDING_OPK | F_PENDING_KEM)

struct chain {
  uint8_t key[32]; /* the sender's ratchet public key */
  uint8_t ck[32];
  uint32_t index; /* next message index expected on this chain */
};

struct state {
  uint8_t version;
  uint8_t flags;
  uint8_t n_recv;
  uint8_t local_id[32];
  uint8_t remote_id[32];
  uint32_t local_reg;
  uint32_t remote_reg;
  uint8_t rk[32];
  uint8_t send_pub[32];
  uint8_t send_priv[32];
  uint8_t send_ck[32];
  uint32_t send_index;
  uint32_t prev_counter;
  uint32_t pend_opk_id;
  uint32_t pend_spk_id;
  uint8_t base_key[32]; /* the initiator's base key EK_A (both sides) */
  uint8_t pqr[32];      /* v4: the third 32 bytes of the PQXDH secret, kept for a PQ ratchet */
  uint32_t pend_kem_id;
  uint8_t *pend_kem_ct; /* owned, SOTTO_KEM_CIPHERTEXT_LEN bytes, while F_PENDING_KEM */
  struct chain recv[SOTTO_MAX_RECEIVER_CHAINS]; /* [0] is the newest */
  struct sotto__skipped *skipped;                /* owned; NULL until needed */
  struct sotto__spqr *spqr; /* owned; SPQR v1 (braid + chain), NULL when the state has none */
};

struct sotto_session {
  struct state *cur;
  struct state *arch[SOTTO_MAX_ARCHIVED_STATES]; /* [0] is the most recent */
  unsigned n_arch;
};

static const uint8_t INFO_TEXT[] = "WhisperText";
/* libsignal keeps the Kyber name in the label for ML-KEM-1024 keys too. */
static const uint8_t INFO_PQXDH[] = "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024";
static const uint8_t INFO_RATCHET[] = "WhisperRatchet";
static const uint8_t INFO_KEYS[] = "WhisperMessageKeys";

static void free_kem_ct(struct state *st) {
  if (st->pend_kem_ct != NULL) {
    sotto__wipe(st->pend_kem_ct, SOTTO_KEM_CIPHERTEXT_LEN);
    free(st->pend_kem_ct);
    st->pend_kem_ct = NULL;
  }
}

static void spqr_free(struct sotto__spqr *q) {
  if (q == NULL) return;
  sotto__spqr_clear(q);
  sotto__wipe(q, sizeof *q);
  free(q);
}

static void state_free(struct state *st) {
  if (st == NULL) return;
  spqr_free(st->spqr);
  sotto__skipped_free(st->skipped);
  free_kem_ct(st);
  sotto__wipe(st, sizeof *st);
  free(st);
}

/* ---- KDFs ------------------------------------------------------------------ */

/* KDF_RK: (RK, CK) = HKDF(salt = RK, IKM = DH(priv, pub), "WhisperRatchet", 64). */
static int kdf_rk(uint8_t rk[32], uint8_t ck[32], const uint8_t priv[32], const uint8_t pub[32]) {
  uint8_t dh[32], okm[64];
  int rc = sotto__x25519(dh, priv, pub);
  if (rc == 0)
    rc = sotto__hkdf(okm, sizeof okm, rk, 32, dh, sizeof dh, INFO_RATCHET, sizeof INFO_RATCHET - 1);
  if (rc == 0) {
    memcpy(rk, okm, 32);
    memcpy(ck, okm + 32, 32);
  }
  sotto__wipe(dh, sizeof dh);
  sotto__wipe(okm, sizeof okm);
  return rc;
}

/* KDF_CK on a chain key: seed = HMAC(CK, 0x01), next CK = HMAC(CK, 0x02).
 * Either output may be NULL (a walk along a chain needs only the next keys),
 * and either may alias ck. */
void sotto__kdf_ck(uint8_t seed[32], uint8_t next_ck[32], const uint8_t ck[32]) {
  sotto__hmac32_12(seed, next_ck, ck);
}

/* Message keys from a seed: HKDF(zero salt, seed, "WhisperMessageKeys", 80)
 * = cipher key 32 || MAC key 32 || IV 16. */
struct msg_keys {
  uint8_t cipher[32];
  uint8_t mac[32];
  uint8_t iv[16];
};

int sotto__message_keys(uint8_t out[80], const uint8_t seed[32]) {
  return sotto__hkdf_zero_salt32(out, 80, seed, INFO_KEYS, sizeof INFO_KEYS - 1);
}

/* With SPQR (the triple ratchet, libsignal ratchet/keys.rs) the message's
 * SPQR key is the salt; without one (or for SPQR's "no key"), zeros. */
static int derive_msg_keys(struct msg_keys *k, const uint8_t seed[32], const uint8_t *pq_key) {
  _Static_assert(sizeof(struct msg_keys) == 80, "message keys layout");
  if (pq_key == NULL) return sotto__message_keys((uint8_t *)k, seed);
  return sotto__hkdf((uint8_t *)k, 80, pq_key, 32, seed, 32, INFO_KEYS, sizeof INFO_KEYS - 1);
}

/* MAC = HMAC(macKey, IK_sender(33) || IK_receiver(33) || version || protobuf)[0..8]. */
static void message_mac(uint8_t mac[32], const uint8_t mac_key[32], const uint8_t sender[32],
                        const uint8_t receiver[32], const uint8_t *p, size_t n) {
  static const uint8_t djb = SOTTO_DJB_TYPE;
  struct sotto__hmac_key hk;
  struct sotto__hmac_ctx c;
  sotto__hmac_key_init(&hk, mac_key, 32);
  sotto__hmac_start(&c, &hk);
  sotto__hmac_update(&c, &djb, 1);
  sotto__hmac_update(&c, sender, 32);
  sotto__hmac_update(&c, &djb, 1);
  sotto__hmac_update(&c, receiver, 32);
  sotto__hmac_update(&c, p, n);
  sotto__hmac_finish(&c, mac);
  sotto__hmac_key_clear(&hk);
}

/* ---- ratchet steps --------------------------------------------------------- */

/* Makes the sending chain that the eager algorithm would have made at the
 * last receiving step: a fresh ratchet key pair, and
 * (RK, CKs) = KDF_RK(RK, DH(new priv, newest remote ratchet key)). */
static int materialize_sending(struct state *st) {
  int rc;
  if (!(st->flags & F_SEND_STALE)) return 0;
  if (st->n_recv == 0) return SOTTO_ERR_INTERNAL;
  if ((rc = sotto__x25519_keygen(st->send_pub, st->send_priv)) != 0) return rc;
  st->prev_counter = (st->flags & F_HAS_SEND) && st->send_index > 0 ? st->send_index - 1 : 0;
  if ((rc = kdf_rk(st->rk, st->send_ck, st->send_priv, st->recv[0].key)) != 0) return rc;
  st->send_index = 0;
  st->flags = (uint8_t)((st->flags | F_HAS_SEND) & ~F_SEND_STALE);
  return 0;
}

/* DH ratchet on receipt of a new remote ratchet key: the receiving chain
 * (RK, CKr) = KDF_RK(RK, DH(our current ratchet priv, their key)). The new
 * chain goes to the front; the oldest of SOTTO_MAX_RECEIVER_CHAINS drops. */
static int receive_step(struct state *st, const uint8_t their[32]) {
  struct chain c;
  int rc;
  if ((rc = materialize_sending(st)) != 0) return rc;
  if (!(st->flags & F_HAS_SEND)) return SOTTO_ERR_INTERNAL;
  memcpy(c.key, their, 32);
  c.index = 0;
  if ((rc = kdf_rk(st->rk, c.ck, st->send_priv, their)) != 0) {
    sotto__wipe(&c, sizeof c);
    return rc;
  }
  memmove(&st->recv[1], &st->recv[0],
          sizeof(struct chain) * (SOTTO_MAX_RECEIVER_CHAINS - 1));
  if (st->n_recv < SOTTO_MAX_RECEIVER_CHAINS) st->n_recv++;
  st->recv[0] = c;
  st->flags |= F_SEND_STALE;
  /* That was the last DH of our ratchet private key, and the sending chain
   * is replaced before anything is sent again: both are dead now, as they
   * would be in the eager algorithm (for a responder's first step, the key
   * is the signed pre-key's copy). */
  sotto__wipe(st->send_priv, sizeof st->send_priv);
  sotto__wipe(st->send_ck, sizeof st->send_ck);
  sotto__wipe(&c, sizeof c);
  return 0;
}

/* ---- decrypting a SignalMessage with one state ------------------------------ */

/* What one incoming message may still cost the receiver, across every state
 * it is tried on (docs/protocol.md, "Work per message"). A forged message is
 * only found out at the MAC, after the DH ratchet step and the chain walk
 * that lead to its key, so without a cap one forgery costs a walk on every
 * archived state. */
struct work {
  unsigned trials; /* states still to try */
  unsigned dh;     /* DH ratchet steps left */
  unsigned steps;  /* chain steps left (keys walked over to reach the message's) */
  uint32_t spqr_steps; /* SPQR chain steps left (one HKDF each) */
  /* Field 6 expected (the caller's addresses), checked after the MAC. */
  const uint8_t *addr;
  size_t addr_len;
  int addr_require;
};

static void work_init(struct work *w) {
  w->trials = SOTTO_MAX_DECRYPT_TRIALS;
  w->dh = SOTTO_MAX_DECRYPT_DH_STEPS;
  w->steps = SOTTO_MAX_DECRYPT_CHAIN_STEPS;
  w->spqr_steps = SOTTO_MAX_DECRYPT_SPQR_STEPS;
  w->addr = NULL;
  w->addr_len = 0;
  w->addr_require = 0;
}

/* Skipped-key changes, applied only when the message verified. */
struct pending {
  int remove_idx;      /* entry used by this message, or -1 */
  uint8_t chain[32];   /* chain the new skipped keys belong to */
  uint32_t first;      /* counter of seeds[0] */
  uint32_t n;          /* number of seeds */
  uint8_t *seeds;      /* n * 32 bytes (points to small[] or heap) */
  uint8_t small[8 * 32];
  int drop;            /* the ratchet step pushed out the oldest receiving chain... */
  uint8_t drop_key[32]; /* ...this one: its skipped keys go with it */
  /* The state's SPQR, advanced in place by this message (NULL: none), and
   * what to undo if the trial is dropped. */
  struct sotto__spqr *spqr;
  struct sotto__spqr_undo undo;
};

static void pending_clear(struct pending *p) {
  if (p->seeds != NULL) {
    sotto__wipe(p->seeds, (size_t)p->n * 32);
    if (p->seeds != p->small) free(p->seeds);
  }
  p->seeds = NULL;
  p->n = 0;
}

static struct chain *find_chain(struct state *st, const uint8_t key[32]) {
  for (unsigned i = 0; i < st->n_recv; i++)
    if (memcmp(st->recv[i].key, key, 32) == 0) return &st->recv[i];
  return NULL;
}

/* Can a message under a ratchet key this state has never seen open with it?
 * A new remote ratchet key answers our current sending ratchet key, so the
 * peer must have seen that key: we have sent on the current sending chain
 * (or it is the responder's signed pre-key, before any receiving chain).
 * After a receiving step and before our next send (F_SEND_STALE) the peer
 * has no new key of ours to answer; a state where that holds can only fail
 * at the MAC, after paying for a key pair, two DHs and a chain walk. */
static int can_take_new_key(const struct state *st) {
  if (!(st->flags & F_HAS_SEND) || (st->flags & F_SEND_STALE)) return 0;
  return st->send_index > 0 || st->n_recv == 0;
}

/* Decrypts m with st (which the caller passes as a scratch copy), spending
 * from w. On success st holds the advanced state and p the skipped-key
 * changes for the table the state owns (st->skipped is not modified). A
 * message beyond what w has left is refused like a forgery. */
static int decrypt_with_state(struct state *st, struct pending *p, const struct sotto__signal_msg *m,
                              uint8_t *pt, size_t cap, size_t *pt_len, struct work *w) {
  struct chain *c;
  struct msg_keys k;
  uint8_t seed[32], ck[32], next_ck[32], mac[32], pq_key[32];
  int rc, idx, has_pq_key = 0;
  uint32_t i;

  p->remove_idx = -1;
  p->n = 0;
  p->seeds = NULL;
  p->drop = 0;
  p->spqr = NULL;
  sotto__spqr_undo_init(&p->undo);

  if (m->version != st->version) return SOTTO_ERR_VERSION;
  if (cap < m->ciphertext_len) return SOTTO_ERR_BUFFER_TOO_SMALL;

  if ((c = find_chain(st, m->ratchet_key)) == NULL) {
    /* A new ratchet key: check the cheap limits before paying for the DH. */
    if (m->counter > SOTTO_MAX_FORWARD_JUMP) return SOTTO_ERR_TOO_FAR_AHEAD;
    if (w->dh == 0 || m->counter > w->steps) return SOTTO_ERR_AUTH;
    w->dh--;
    if (st->n_recv == SOTTO_MAX_RECEIVER_CHAINS) {
      p->drop = 1;
      memcpy(p->drop_key, st->recv[SOTTO_MAX_RECEIVER_CHAINS - 1].key, 32);
    }
    if ((rc = receive_step(st, m->ratchet_key)) != 0) return rc;
    c = &st->recv[0];
  }

  if (m->counter < c->index) {
    /* An old message: only a stored skipped key can open it. As in
     * libsignal this is decided before the MAC, so a replay reports
     * duplicate whatever its bytes. */
    idx = sotto__skipped_find(st->skipped, m->ratchet_key, m->counter);
    if (idx < 0) return SOTTO_ERR_DUPLICATE;
    memcpy(seed, st->skipped->ents[idx].seed, 32);
    p->remove_idx = idx;
  } else {
    uint32_t gap = m->counter - c->index;
    /* The index after this message must fit in 32 bits: a chain never
     * wraps back to 0. */
    if (gap > SOTTO_MAX_FORWARD_JUMP || m->counter == UINT32_MAX) return SOTTO_ERR_TOO_FAR_AHEAD;
    if (gap > w->steps) return SOTTO_ERR_AUTH;
    w->steps -= gap;
    if (gap > 0) {
      if (gap <= sizeof p->small / 32) {
        p->seeds = p->small;
      } else if ((p->seeds = malloc((size_t)gap * 32)) == NULL) {
        return SOTTO_ERR_NOMEM;
      }
      p->n = gap;
      p->first = c->index;
      memcpy(p->chain, c->key, 32);
    }
    /* Walk the chain keeping only the chain keys (seeds[] holds them for
     * now): the seeds of the skipped messages are derived after the MAC
     * verified, so a forgery pays four compressions a step, not six. */
    memcpy(ck, c->ck, 32);
    for (i = 0; i < gap; i++) {
      memcpy(p->seeds + (size_t)i * 32, ck, 32);
      sotto__kdf_ck(NULL, ck, ck);
    }
    sotto__kdf_ck(seed, next_ck, ck);
    memcpy(c->ck, next_ck, 32);
    c->index = m->counter + 1;
  }

  if (st->spqr != NULL) {
    /* SPQR in place with an undo record, kept only if the whole message
     * verifies. Before the MAC only the message's SPQR key is derived
     * (within the budget of SPQR chain steps); the braid (erasure
     * decoding, ML-KEM, its MACs) runs after it. A missing field or any
     * SPQR error is refused like a failed MAC: the field is not yet
     * authenticated, so its errors say nothing to an attacker. */
    if (!m->has_pq || m->pq_len == 0) {
      rc = SOTTO_ERR_AUTH;
      goto out;
    }
    p->spqr = st->spqr;
    if ((rc = sotto__spqr_recv_key_u(p->spqr, m->pq, m->pq_len, pq_key, &has_pq_key, &w->spqr_steps,
                                     &p->undo)) != 0) {
      if (rc != SOTTO_ERR_NOMEM) rc = SOTTO_ERR_AUTH;
      goto out;
    }
  }
  if ((rc = derive_msg_keys(&k, seed, has_pq_key ? pq_key : NULL)) != 0) goto out;
  message_mac(mac, k.mac, st->remote_id, st->local_id, m->mac_input, m->mac_input_len);
  if (!sotto__ct_eq(mac, m->mac, SOTTO_MESSAGE_MAC_LEN)) {
    rc = SOTTO_ERR_AUTH;
    goto out;
  }
  /* Addresses (field 6), as libsignal checks them: after the MAC, and a
   * mismatch is a failed MAC. */
  if (w->addr != NULL) {
    if (m->has_addr ? m->addr_len != w->addr_len || !sotto__ct_eq(m->addr, w->addr, w->addr_len)
                    : w->addr_require) {
      rc = SOTTO_ERR_AUTH;
      goto out;
    }
  }
  if (p->spqr != NULL && (rc = sotto__spqr_recv_braid_u(p->spqr, &p->undo)) != 0) {
    if (rc != SOTTO_ERR_NOMEM) rc = SOTTO_ERR_AUTH;
    goto out;
  }
  if ((rc = sotto__aes256cbc_decrypt(pt, pt_len, k.cipher, k.iv, m->ciphertext, m->ciphertext_len)) != 0) {
    rc = SOTTO_ERR_AUTH; /* padding: report like a MAC failure */
    goto out;
  }
  for (i = 0; i < p->n; i++) sotto__kdf_ck(p->seeds + (size_t)i * 32, NULL, p->seeds + (size_t)i * 32);
  st->flags &= (uint8_t)~F_PENDING_ALL; /* the peer has our session */
out:
  sotto__wipe(&k, sizeof k);
  sotto__wipe(seed, sizeof seed);
  sotto__wipe(ck, sizeof ck);
  sotto__wipe(next_ck, sizeof next_ck);
  sotto__wipe(mac, sizeof mac);
  sotto__wipe(pq_key, sizeof pq_key);
  if (rc != 0) {
    pending_clear(p);
    if (p->spqr != NULL) sotto__spqr_rollback(p->spqr, &p->undo);
    p->spqr = NULL;
  }
  return rc;
}

/* One state's attempt at a message: a scratch copy of the state and the
 * skipped-key changes, kept apart until the caller commits or drops them. */
struct trial {
  struct state tmp;
  struct pending p;
};

static int trial_run(struct trial *t, const struct state *st, const struct sotto__signal_msg *m, uint8_t *pt,
                     size_t cap, size_t *pt_len, struct work *w) {
  int rc;
  t->tmp = *st;
  if ((rc = decrypt_with_state(&t->tmp, &t->p, m, pt, cap, pt_len, w)) != 0)
    sotto__wipe(&t->tmp, sizeof t->tmp);
  return rc;
}

static void trial_drop(struct trial *t) {
  pending_clear(&t->p);
  if (t->p.spqr != NULL) sotto__spqr_rollback(t->p.spqr, &t->p.undo);
  t->p.spqr = NULL;
  sotto__wipe(&t->tmp, sizeof t->tmp);
}

/* The one step of a commit that can fail, done before anything changes: a
 * state that stores its first skipped keys needs a table. It is allocated
 * only now, after the message verified, so that a forgery costs no ~150 KB
 * allocation. */
static int trial_reserve(const struct trial *t, struct state *dst) {
  if (t->p.n > 0 && dst->skipped == NULL && (dst->skipped = sotto__skipped_new()) == NULL)
    return SOTTO_ERR_NOMEM;
  return 0;
}

/* Commits the trial into dst (after trial_reserve). Cannot fail. A dropped
 * receiving chain takes its skipped keys with it: nothing could open a
 * message on it any more, and kept keys would only serve a later thief of
 * the record. */
static void trial_commit(struct state *dst, struct trial *t) {
  struct sotto__skipped *tab = dst->skipped;
  struct pending *p = &t->p;
  uint32_t i;

  if (p->drop) sotto__skipped_remove_chain(tab, p->drop_key);
  if (p->remove_idx >= 0) sotto__skipped_remove(tab, p->remove_idx);
  for (i = 0; i < p->n; i++) sotto__skipped_insert(tab, p->chain, p->first + i, p->seeds + (size_t)i * 32);
  pending_clear(p);
  t->tmp.skipped = tab;
  if (p->spqr != NULL) {
    /* The trial advanced dst's own SPQR state in place: keep it. */
    sotto__spqr_commit(&p->undo);
    p->spqr = NULL;
  }
  /* The KEM ciphertext is only needed while PreKeySignalMessages go out. */
  if (!(t->tmp.flags & F_PENDING_KEM)) {
    free_kem_ct(dst);
    t->tmp.pend_kem_ct = NULL;
  }
  *dst = t->tmp;
  sotto__wipe(&t->tmp, sizeof t->tmp);
}

/* ---- record ---------------------------------------------------------------- */

int sotto_session_new(struct sotto_session **out) {
  int rc = sotto__crypto_init();
  if (rc != 0) return rc;
  if (out == NULL) return SOTTO_ERR_USAGE;
  *out = calloc(1, sizeof **out);
  return *out ? 0 : SOTTO_ERR_NOMEM;
}

void sotto_session_free(struct sotto_session *s) {
  if (s == NULL) return;
  state_free(s->cur);
  for (unsigned i = 0; i < s->n_arch; i++) state_free(s->arch[i]);
  sotto__wipe(s, sizeof *s);
  free(s);
}

/* Makes ns the current state; the old current one is archived (most recent
 * first) and the oldest archived state beyond the limit is freed. */
static void promote_new(struct sotto_session *s, struct state *ns) {
  if (s->cur != NULL) {
    if (s->n_arch == SOTTO_MAX_ARCHIVED_STATES) state_free(s->arch[--s->n_arch]);
    memmove(&s->arch[1], &s->arch[0], sizeof(s->arch[0]) * s->n_arch);
    s->arch[0] = s->cur;
    s->n_arch++;
  }
  s->cur = ns;
}

/* Moves archived state i to current (it just decrypted a message). */
static void promote_archived(struct sotto_session *s, unsigned i) {
  struct state *st = s->arch[i];
  memmove(&s->arch[i], &s->arch[i + 1], sizeof(s->arch[0]) * (s->n_arch - i - 1));
  s->n_arch--;
  promote_new(s, st);
}

int sotto_session_has_state(const struct sotto_session *s) { return s != NULL && s->cur != NULL; }

int sotto_session_remote_identity(const struct sotto_session *s, uint8_t out[32]) {
  if (s == NULL || s->cur == NULL) return SOTTO_ERR_NO_SESSION;
  memcpy(out, s->cur->remote_id, 32);
  return 0;
}

int sotto_session_remote_registration_id(const struct sotto_session *s, uint32_t *id) {
  if (s == NULL || s->cur == NULL) return SOTTO_ERR_NO_SESSION;
  *id = s->cur->remote_reg;
  return 0;
}

int sotto_session_has_spqr(const struct sotto_session *s) {
  return s != NULL && s->cur != NULL && s->cur->spqr != NULL;
}

int sotto_session_version(const struct sotto_session *s) {
  if (s == NULL || s->cur == NULL) return SOTTO_ERR_NO_SESSION;
  return s->cur->version;
}

size_t sotto_session_skipped_keys(const struct sotto_session *s) {
  if (s == NULL || s->cur == NULL || s->cur->skipped == NULL) return 0;
  return s->cur->skipped->live;
}

/* ---- X3DH ------------------------------------------------------------------ */

/* SK = HKDF(salt = 0, IKM = 0xFF*32 || DH1 || DH2 || DH3 [|| DH4],
 * info = "WhisperText", 64) -> RK || CK (X3DH section 2.2 with libsignal's
 * info string; F = 0xFF*32 for X25519). dh holds n_dh agreements. */
int sotto__x3dh_kdf(uint8_t rk[32], uint8_t ck[32], const uint8_t dh[4][32], unsigned n_dh) {
  return sotto__pqxdh_kdf(rk, ck, NULL, dh, n_dh, NULL);
}

/* PQXDH (spec section 3.3, libsignal pqxdh.rs): the same input with the KEM
 * shared secret appended, info "WhisperText_X25519_SHA-256_CRYSTALS-KYBER-1024",
 * 96 bytes out: RK || CK || 32 bytes for a later post-quantum ratchet.
 * With ss == NULL this is classic X3DH ("WhisperText", 64 bytes). */
int sotto__pqxdh_kdf(uint8_t rk[32], uint8_t ck[32], uint8_t pqr[32], const uint8_t dh[4][32], unsigned n_dh,
                     const uint8_t ss[32]) {
  uint8_t ikm[32 + 5 * 32], okm[96];
  size_t n = 32 + (size_t)n_dh * 32;
  int rc;
  if (n_dh > 4) return SOTTO_ERR_INTERNAL;
  memset(ikm, 0xFF, 32);
  memcpy(ikm + 32, dh, (size_t)n_dh * 32);
  if (ss != NULL) {
    memcpy(ikm + n, ss, 32);
    n += 32;
    if ((rc = sotto__hkdf(okm, 96, NULL, 0, ikm, n, INFO_PQXDH, sizeof INFO_PQXDH - 1)) == 0 && pqr != NULL)
      memcpy(pqr, okm + 64, 32);
  } else {
    rc = sotto__hkdf(okm, 64, NULL, 0, ikm, n, INFO_TEXT, sizeof INFO_TEXT - 1);
  }
  if (rc == 0) {
    memcpy(rk, okm, 32);
    memcpy(ck, okm + 32, 32);
  }
  sotto__wipe(ikm, sizeof ikm);
  sotto__wipe(okm, sizeof okm);
  return rc;
}

int sotto_kem_keypair_generate(uint8_t pub[SOTTO_KEM_PUBKEY_LEN], uint8_t sk[SOTTO_KEM_SECRETKEY_LEN]) {
  int rc = sotto__crypto_init();
  if (rc != 0) return rc;
  pub[0] = SOTTO_KEM_TYPE_MLKEM1024;
  return sotto_mlkem1024_keypair(pub + 1, sk);
}

int sotto_kem_prekey_sign(uint8_t sig[SOTTO_SIGNATURE_LEN], const uint8_t identity_priv[SOTTO_PRIVKEY_LEN],
                          const uint8_t pub[SOTTO_KEM_PUBKEY_LEN]) {
  return sotto_sign(sig, identity_priv, pub, SOTTO_KEM_PUBKEY_LEN);
}

int sotto_session_init_from_bundle(struct sotto_session *s, const struct sotto_identity *me,
                                   const struct sotto_bundle *b) {
  return sotto_session_init_from_bundle_ex(s, me, b, 0);
}

int sotto_session_init_from_bundle_ex(struct sotto_session *s, const struct sotto_identity *me,
                                      const struct sotto_bundle *b, unsigned flags) {
  uint8_t spk_ser[33], base_priv[32], dh[4][32], ss[32];
  struct state *st = NULL;
  unsigned n_dh = 3;
  int rc, pq;

  if ((rc = sotto__crypto_init()) != 0) return rc;
  if (s == NULL || me == NULL || b == NULL ||
      (flags & ~(unsigned)(SOTTO_INIT_ALLOW_X3DH | SOTTO_INIT_SPQR | SOTTO_INIT_NO_SPQR)) ||
      ((flags & SOTTO_INIT_SPQR) && (flags & SOTTO_INIT_NO_SPQR)))
    return SOTTO_ERR_USAGE;

  /* Verify Sig(IK_B, Encode(SPK_B)) and Sig(IK_B, EncodeKEM(PQPK_B))
   * before anything else. */
  sotto_pubkey_serialize(spk_ser, b->signed_prekey);
  if (sotto__xeddsa_verify(b->identity_key, spk_ser, sizeof spk_ser, b->signed_prekey_sig) != 0)
    return SOTTO_ERR_AUTH;
  pq = b->has_kem_prekey != 0;
  if (!pq && (!(flags & SOTTO_INIT_ALLOW_X3DH) || (flags & SOTTO_INIT_SPQR))) return SOTTO_ERR_DOWNGRADE;
  if (pq) {
    if (!sotto__kem_type_ok(b->kem_prekey[0])) return SOTTO_ERR_INVALID_KEY;
    if (sotto__xeddsa_verify(b->identity_key, b->kem_prekey, SOTTO_KEM_PUBKEY_LEN, b->kem_prekey_sig) != 0)
      return SOTTO_ERR_AUTH;
  }

  if ((st = calloc(1, sizeof *st)) == NULL) return SOTTO_ERR_NOMEM;
  st->version = pq ? SOTTO_VERSION_PQXDH : SOTTO_VERSION_X3DH;
  if (pq) {
    /* (CT, SS) = PQKEM-ENC(PQPK_B); the encapsulation checks the key (FIPS
     * 203 section 7.2) and fails on an invalid one. */
    if ((st->pend_kem_ct = malloc(SOTTO_KEM_CIPHERTEXT_LEN)) == NULL) {
      rc = SOTTO_ERR_NOMEM;
      goto out;
    }
    if ((rc = sotto__kem_encaps(st->pend_kem_ct, ss, b->kem_prekey)) != 0) goto out;
    st->pend_kem_id = b->kem_prekey_id;
  }
  memcpy(st->local_id, me->pub, 32);
  memcpy(st->remote_id, b->identity_key, 32);
  st->local_reg = me->registration_id;
  st->remote_reg = b->registration_id;

  /* EK_A, then DH1 = DH(IK_A, SPK_B), DH2 = DH(EK_A, IK_B),
   * DH3 = DH(EK_A, SPK_B), DH4 = DH(EK_A, OPK_B). */
  if ((rc = sotto__x25519_keygen(st->base_key, base_priv)) != 0) goto out;
  if ((rc = sotto__x25519(dh[0], me->priv, b->signed_prekey)) != 0) goto out;
  if ((rc = sotto__x25519(dh[1], base_priv, b->identity_key)) != 0) goto out;
  if ((rc = sotto__x25519(dh[2], base_priv, b->signed_prekey)) != 0) goto out;
  if (b->has_one_time_prekey) {
    if ((rc = sotto__x25519(dh[3], base_priv, b->one_time_prekey)) != 0) goto out;
    n_dh = 4;
  }
  /* The responder's first ratchet key is SPK_B: it is our first receiving
   * chain; our sending chain follows lazily from DH(new key, SPK_B). */
  rc = sotto__pqxdh_kdf(st->rk, st->recv[0].ck, st->pqr, (const uint8_t(*)[32])dh, n_dh, pq ? ss : NULL);
  if (rc != 0) goto out;
  memcpy(st->recv[0].key, b->signed_prekey, 32);
  st->recv[0].index = 0;
  st->n_recv = 1;
  st->flags = F_SEND_STALE | F_PENDING_PREKEY;
  if (b->has_one_time_prekey) st->flags |= F_PENDING_OPK;
  if (pq) st->flags |= F_PENDING_KEM;
  if (pq && !(flags & SOTTO_INIT_NO_SPQR)) {
    /* SPQR from PQXDH's third 32 bytes; the initiator is its A side. */
    if ((st->spqr = malloc(sizeof *st->spqr)) == NULL) {
      rc = SOTTO_ERR_NOMEM;
      goto out;
    }
    if ((rc = sotto__spqr_init(st->spqr, st->pqr, 1)) != 0) goto out;
  }
  st->pend_opk_id = b->has_one_time_prekey ? b->one_time_prekey_id : 0;
  st->pend_spk_id = b->signed_prekey_id;
  /* Make the sending chain now: the initiator sends first anyway. */
  if ((rc = materialize_sending(st)) != 0) goto out;
  promote_new(s, st);
  st = NULL;
out:
  sotto__wipe(base_priv, sizeof base_priv);
  sotto__wipe(dh, sizeof dh);
  sotto__wipe(ss, sizeof ss);
  state_free(st);
  return rc;
}

/* ---- addresses (field 6) ------------------------------------------------------ */

#define ADDR_MAX (1 + 2 * (1 + SOTTO_ADDRESS_NAME_MAX + 4))

/* Field 6 for a message from `from` to `to` (docs/protocol.md,
 * "Addresses"); SOTTO_ERR_USAGE for an invalid address or mixed kinds. */
static int addr_encode(uint8_t out[ADDR_MAX], size_t *n, const struct sotto_address *from,
                       const struct sotto_address *to) {
  const struct sotto_address *a[2] = {from, to};
  size_t len = 0;
  if (from->kind != to->kind) return SOTTO_ERR_USAGE;
  if (from->kind == SOTTO_ADDRESS_NAME) out[len++] = 0x53;
  for (int i = 0; i < 2; i++) {
    if (a[i]->kind == SOTTO_ADDRESS_SERVICE_ID) {
      if (a[i]->service_id[0] > 1 || a[i]->device_id < 1 || a[i]->device_id > 127) return SOTTO_ERR_USAGE;
      memcpy(out + len, a[i]->service_id, 17);
      len += 17;
      out[len++] = (uint8_t)a[i]->device_id;
    } else if (a[i]->kind == SOTTO_ADDRESS_NAME) {
      size_t nl;
      if (a[i]->name == NULL) return SOTTO_ERR_USAGE;
      nl = strnlen(a[i]->name, SOTTO_ADDRESS_NAME_MAX + 1);
      if (nl == 0 || nl > SOTTO_ADDRESS_NAME_MAX) return SOTTO_ERR_USAGE;
      out[len++] = (uint8_t)nl;
      memcpy(out + len, a[i]->name, nl);
      len += nl;
      out[len] = (uint8_t)(a[i]->device_id >> 24);
      out[len + 1] = (uint8_t)(a[i]->device_id >> 16);
      out[len + 2] = (uint8_t)(a[i]->device_id >> 8);
      out[len + 3] = (uint8_t)a[i]->device_id;
      len += 4;
    } else {
      return SOTTO_ERR_USAGE;
    }
  }
  *n = len;
  return 0;
}

/* ---- encrypt --------------------------------------------------------------- */

static int encrypt_addr(struct sotto_session *s, const uint8_t *addr, size_t addr_len, uint8_t *out,
                        size_t cap, size_t *out_len, int *type, const uint8_t *pt, size_t pt_len) {
  struct state tmp;
  struct msg_keys k;
  struct sotto__wr w;
  struct sotto__spqr *q = NULL; /* the SPQR state advanced in place (undo below) */
  struct sotto__spqr_undo qu;
  uint8_t seed[32], next_ck[32], mac[32], *ct = NULL, *inner = NULL;
  uint8_t pq[SOTTO_SPQR_MSG_MAX_LEN], pq_key[32];
  size_t ct_len, inner_len, pq_len = 0, hdr;
  uint8_t vbyte;
  int rc, has_pq_key = 0;

  if (out_len) *out_len = 0;
  sotto__spqr_undo_init(&qu);
  if (s == NULL || out == NULL || out_len == NULL || type == NULL || (pt == NULL && pt_len > 0))
    return SOTTO_ERR_USAGE;
  if (s->cur == NULL) return SOTTO_ERR_NO_SESSION;
  if (pt_len > SOTTO_MAX_PLAINTEXT_LEN) return SOTTO_ERR_TOO_LARGE;
  if (cap < SOTTO_SESSION_ENCRYPTED_MAX(pt_len)) return SOTTO_ERR_BUFFER_TOO_SMALL;

  tmp = *s->cur;
  if ((rc = materialize_sending(&tmp)) != 0) goto out;
  /* The index after this message must fit in 32 bits: the chain is used up
   * (a new session, or the peer's next ratchet step, gives a fresh one). */
  if (tmp.send_index == UINT32_MAX) {
    rc = SOTTO_ERR_TOO_LARGE;
    goto out;
  }
  /* Version byte: session version in the high nibble; libsignal-c (v3)
   * writes 0x33, current libsignal writes 0x44 for version 4. */
  vbyte = (uint8_t)(tmp.version << 4 | tmp.version);

  /* SPQR (in place, undone if anything below fails): field 5 and key. */
  if (tmp.spqr != NULL) {
    if ((rc = sotto__spqr_send_u(tmp.spqr, pq, sizeof pq, &pq_len, pq_key, &has_pq_key, &qu)) != 0) goto out;
    q = tmp.spqr;
  }

  /* KDF_CK, message keys, AES-256-CBC. */
  sotto__kdf_ck(seed, next_ck, tmp.send_ck);
  if ((rc = derive_msg_keys(&k, seed, has_pq_key ? pq_key : NULL)) != 0) goto out;
  ct_len = SOTTO_CIPHERTEXT_LEN(pt_len);
  inner_len = sotto__signal_msg_size(tmp.send_index, tmp.prev_counter, ct_len);
  if (q != NULL) inner_len += sotto__pb_bytes_size(pq_len);
  if (addr != NULL) inner_len += sotto__pb_bytes_size(addr_len);

  if (!(tmp.flags & F_PENDING_PREKEY)) {
    inner = out; /* write the SignalMessage straight into out */
  } else if ((inner = malloc(inner_len)) == NULL) {
    rc = SOTTO_ERR_NOMEM;
    goto out;
  }
  /* The ciphertext is encrypted into place: field 4 follows the header
   * fields (and is followed only by SPQR's field 5, then the MAC). */
  hdr = 1 + 35 + sotto__pb_varint_size(tmp.send_index) + sotto__pb_varint_size(tmp.prev_counter);
  ct = inner + hdr + 1 + sotto__varint_len(ct_len);
  if ((rc = sotto__aes256cbc_encrypt(ct, &ct_len, k.cipher, k.iv, pt, pt_len)) != 0) goto out;
  sotto__wr_init(&w, inner, inner_len);
  /* ct already sits at its final offset; writing the field copies it onto
   * itself (memmove semantics are not needed: source == destination). */
  {
    sotto__wr_u8(&w, vbyte);
    sotto__pb_pubkey(&w, 1, tmp.send_pub);
    sotto__pb_varint(&w, 2, tmp.send_index);
    sotto__pb_varint(&w, 3, tmp.prev_counter);
    sotto__wr_varint(&w, (uint64_t)4 << 3 | SOTTO__PB_LEN);
    sotto__wr_varint(&w, ct_len);
    if (w.err || w.len != hdr + 1 + sotto__varint_len(ct_len) || w.p + w.len != ct) {
      rc = SOTTO_ERR_INTERNAL;
      goto out;
    }
    w.len += ct_len;
  }
  if (q != NULL) sotto__pb_bytes(&w, 5, pq, pq_len);
  if (addr != NULL) sotto__pb_bytes(&w, 6, addr, addr_len);
  message_mac(mac, k.mac, tmp.local_id, tmp.remote_id, inner, w.len);
  sotto__wr_bytes(&w, mac, SOTTO_MESSAGE_MAC_LEN);
  if (w.err || w.len != inner_len) {
    rc = SOTTO_ERR_INTERNAL;
    goto out;
  }

  if (tmp.flags & F_PENDING_PREKEY) {
    struct sotto__prekey_msg pm;
    memset(&pm, 0, sizeof pm);
    pm.has_prekey_id = (tmp.flags & F_PENDING_OPK) != 0;
    pm.prekey_id = tmp.pend_opk_id;
    pm.signed_prekey_id = tmp.pend_spk_id;
    memcpy(pm.base_key, tmp.base_key, 32);
    memcpy(pm.identity_key, tmp.local_id, 32);
    pm.message = inner;
    pm.message_len = inner_len;
    pm.registration_id = tmp.local_reg;
    if (tmp.flags & F_PENDING_KEM) {
      pm.has_kem = 1;
      pm.kem_prekey_id = tmp.pend_kem_id;
      pm.kem_ct = tmp.pend_kem_ct;
      pm.kem_ct_len = SOTTO_KEM_CIPHERTEXT_LEN;
    }
    sotto__wr_init(&w, out, cap);
    sotto__prekey_msg_write(&w, vbyte, &pm);
    if (w.err) {
      rc = w.err;
      goto out;
    }
    *type = SOTTO_MSG_PREKEY;
  } else {
    *type = SOTTO_MSG_SIGNAL;
  }
  *out_len = w.len;

  /* Commit: the chain advances and the message key is gone. */
  memcpy(tmp.send_ck, next_ck, 32);
  tmp.send_index++;
  if (q != NULL) {
    sotto__spqr_commit(&qu);
    q = NULL;
  }
  *s->cur = tmp;
out:
  if (q != NULL) sotto__spqr_rollback(q, &qu);
  sotto__wipe(pq_key, sizeof pq_key);
  if (inner != NULL && inner != out) {
    sotto__wipe(inner, inner_len);
    free(inner);
  }
  if (rc != 0) sotto__wipe(out, cap < SOTTO_SESSION_ENCRYPTED_MAX(pt_len) ? cap : SOTTO_SESSION_ENCRYPTED_MAX(pt_len));
  sotto__wipe(&tmp, sizeof tmp);
  sotto__wipe(&k, sizeof k);
  sotto__wipe(seed, sizeof seed);
  sotto__wipe(next_ck, sizeof next_ck);
  sotto__wipe(mac, sizeof mac);
  return rc;
}

int sotto_session_encrypt(struct sotto_session *s, uint8_t *out, size_t cap, size_t *out_len, int *type,
                          const uint8_t *pt, size_t pt_len) {
  return encrypt_addr(s, NULL, 0, out, cap, out_len, type, pt, pt_len);
}

int sotto_session_encrypt_addressed(struct sotto_session *s, const struct sotto_addresses *a, uint8_t *out,
                                    size_t cap, size_t *out_len, int *type, const uint8_t *pt,
                                    size_t pt_len) {
  uint8_t addr[ADDR_MAX];
  size_t n = 0;
  int rc;
  if (out_len) *out_len = 0;
  if (a == NULL) return encrypt_addr(s, NULL, 0, out, cap, out_len, type, pt, pt_len);
  if ((rc = addr_encode(addr, &n, &a->local, &a->remote)) != 0) return rc;
  return encrypt_addr(s, addr, n, out, cap, out_len, type, pt, pt_len);
}

/* ---- decrypt --------------------------------------------------------------- */

/* Asks the caller whether identity may take over the record (a new state, or
 * an archived state with another identity than the current one). No hook:
 * yes, as before the hook existed. */
static int check_trust(const struct sotto_prekey_store *store, const uint8_t identity[32]) {
  int rc;
  if (store == NULL || store->is_trusted_identity == NULL) return 0;
  rc = store->is_trusted_identity(store->ud, identity);
  if (rc == 1) return 0;
  if (rc == 0) return SOTTO_ERR_UNTRUSTED_IDENTITY;
  return rc < 0 ? rc : SOTTO_ERR_STORE;
}

static void fill_info(struct sotto_decrypt_info *info, const uint8_t identity[32], int changed) {
  if (info == NULL) return;
  memcpy(info->identity, identity, 32);
  info->changed_state = changed;
}

/* Runs a trial of m on state `i` of the record (-1: the current one) and, if
 * it verifies, commits it and makes that state current: the one place where
 * a SignalMessage changes a record. *final is set once the message verified
 * (any later error is the answer, not a reason to try another state). */
static int open_with(struct sotto_session *s, int i, const struct sotto__signal_msg *m,
                     const struct sotto_prekey_store *store, uint8_t *pt, size_t cap, size_t *pt_len,
                     struct work *w, struct sotto_decrypt_info *info, int *final) {
  struct state *st = i < 0 ? s->cur : s->arch[i];
  struct trial t;
  int rc;

  *final = 0;
  if ((rc = trial_run(&t, st, m, pt, cap, pt_len, w)) != 0) return rc;
  *final = 1;
  /* An archived state under another identity would replace the current
   * one's peer: the same decision as a new session. */
  if (i >= 0 && memcmp(st->remote_id, s->cur->remote_id, 32) != 0 &&
      (rc = check_trust(store, st->remote_id)) != 0) {
    if (rc == SOTTO_ERR_UNTRUSTED_IDENTITY) fill_info(info, st->remote_id, 1);
    goto fail;
  }
  if ((rc = trial_reserve(&t, st)) != 0) goto fail;
  trial_commit(st, &t);
  if (i >= 0) promote_archived(s, (unsigned)i);
  fill_info(info, s->cur->remote_id, i >= 0);
  return 0;
fail:
  trial_drop(&t);
  sotto__wipe(pt, cap < m->ciphertext_len ? cap : m->ciphertext_len);
  *pt_len = 0;
  return rc;
}

/* A SignalMessage is tried only on the states that can open it, within one
 * budget of work for the whole message (struct work): the states that hold
 * a receiving chain for its ratchet key or, if none does, the states that
 * could take a new ratchet key (can_take_new_key). Current state first,
 * then archived ones, most recent first; the first that verifies becomes
 * current. A duplicate on the current state is final, as in libsignal. */
static int decrypt_signal(struct sotto_session *s, const struct sotto_prekey_store *store, const uint8_t *msg,
                          size_t len, uint8_t *pt, size_t cap, size_t *pt_len,
                          struct sotto_decrypt_info *info, const struct work *w0) {
  struct sotto__signal_msg m;
  struct work w;
  int rc, first = 0, known = 0, any_version = 0, final;

  if ((rc = sotto__signal_msg_parse(&m, msg, len)) != 0) return rc;
  if (s->cur == NULL) return SOTTO_ERR_NO_SESSION;
  for (int i = -1; i < (int)s->n_arch; i++) {
    struct state *st = i < 0 ? s->cur : s->arch[i];
    if (st->version != m.version) continue;
    any_version = 1;
    if (find_chain(st, m.ratchet_key) != NULL) known = 1;
  }
  if (!any_version) return SOTTO_ERR_VERSION;
  if (!known && m.counter > SOTTO_MAX_FORWARD_JUMP) return SOTTO_ERR_TOO_FAR_AHEAD;

  w = *w0;
  for (int i = -1; i < (int)s->n_arch && w.trials > 0; i++) {
    struct state *st = i < 0 ? s->cur : s->arch[i];
    if (st->version != m.version) continue;
    if (known ? find_chain(st, m.ratchet_key) == NULL : !can_take_new_key(st)) continue;
    w.trials--;
    rc = open_with(s, i, &m, store, pt, cap, pt_len, &w, info, &final);
    if (rc == 0 || final) return rc;
    if (first == 0) first = rc;
    if (rc == SOTTO_ERR_NOMEM || rc == SOTTO_ERR_BUFFER_TOO_SMALL || (i < 0 && rc == SOTTO_ERR_DUPLICATE))
      break;
  }
  /* No state could open it: as opaque as a failed MAC. */
  sotto__wipe(pt, cap < m.ciphertext_len ? cap : m.ciphertext_len);
  return first != 0 ? first : SOTTO_ERR_AUTH;
}

/* X3DH responder (X3DH section 3.4): builds a state for Bob from a
 * PreKeySignalMessage. Every exit goes through out:, which wipes the
 * pre-key private keys and the DH and KEM secrets, whatever a failing
 * callback left in them. */
static int responder_state(struct state **out, const struct sotto_identity *me,
                           const struct sotto_prekey_store *store, const struct sotto__prekey_msg *pm,
                           int spqr) {
  uint8_t spk_pub[32], spk_priv[32], opk_pub[32], opk_priv[32], dh[4][32], ss[32];
  uint8_t *kem_sk = NULL;
  struct state *st = NULL;
  unsigned n_dh = 3;
  int rc, pq = pm->version == SOTTO_VERSION_PQXDH;

  *out = NULL;
  memset(spk_priv, 0, sizeof spk_priv);
  memset(opk_priv, 0, sizeof opk_priv);
  memset(ss, 0, sizeof ss);
  if (pq) {
    /* SS = PQKEM-DEC(PQPK_B, CT): the ciphertext must be a serialized
     * ML-KEM-1024 one; decapsulation itself never fails (implicit
     * rejection), a wrong ciphertext just gives another secret and the
     * first message's MAC fails. */
    if (pm->kem_ct_len != SOTTO_KEM_CIPHERTEXT_LEN || !sotto__kem_type_ok(pm->kem_ct[0])) {
      rc = SOTTO_ERR_MALFORMED;
      goto out;
    }
    if (store->load_kem_prekey == NULL) {
      rc = SOTTO_ERR_UNKNOWN_PREKEY;
      goto out;
    }
    if ((kem_sk = malloc(SOTTO_KEM_SECRETKEY_LEN)) == NULL) {
      rc = SOTTO_ERR_NOMEM;
      goto out;
    }
    if ((rc = store->load_kem_prekey(store->ud, pm->kem_prekey_id, kem_sk)) != 0) {
      if (rc > 0) rc = SOTTO_ERR_STORE;
      goto out;
    }
    rc = sotto__kem_decaps(ss, pm->kem_ct, pm->kem_ct_len, kem_sk, SOTTO_KEM_SECRETKEY_LEN);
    if (rc != 0) goto out;
  }
  if ((rc = store->load_signed_prekey(store->ud, pm->signed_prekey_id, spk_pub, spk_priv)) != 0) {
    if (rc > 0) rc = SOTTO_ERR_STORE;
    goto out;
  }
  if (pm->has_prekey_id) {
    if (store->load_one_time_prekey == NULL) {
      rc = SOTTO_ERR_UNKNOWN_PREKEY;
      goto out;
    }
    if ((rc = store->load_one_time_prekey(store->ud, pm->prekey_id, opk_pub, opk_priv)) != 0) {
      if (rc > 0) rc = SOTTO_ERR_STORE;
      goto out;
    }
  }
  if ((st = calloc(1, sizeof *st)) == NULL) {
    rc = SOTTO_ERR_NOMEM;
    goto out;
  }
  /* DH1 = DH(SPK_B, IK_A), DH2 = DH(IK_B, EK_A), DH3 = DH(SPK_B, EK_A),
   * DH4 = DH(OPK_B, EK_A). */
  if ((rc = sotto__x25519(dh[0], spk_priv, pm->identity_key)) != 0 ||
      (rc = sotto__x25519(dh[1], me->priv, pm->base_key)) != 0 ||
      (rc = sotto__x25519(dh[2], spk_priv, pm->base_key)) != 0)
    goto out;
  if (pm->has_prekey_id) {
    if ((rc = sotto__x25519(dh[3], opk_priv, pm->base_key)) != 0) goto out;
    n_dh = 4;
  }
  st->version = pm->version;
  memcpy(st->local_id, me->pub, 32);
  memcpy(st->remote_id, pm->identity_key, 32);
  st->local_reg = me->registration_id;
  st->remote_reg = pm->registration_id;
  memcpy(st->base_key, pm->base_key, 32);
  /* Our first ratchet key pair is the signed pre-key; the sending chain key
   * comes from the X3DH secret. */
  rc = sotto__pqxdh_kdf(st->rk, st->send_ck, st->pqr, (const uint8_t(*)[32])dh, n_dh, pq ? ss : NULL);
  if (rc != 0) goto out;
  memcpy(st->send_pub, spk_pub, 32);
  memcpy(st->send_priv, spk_priv, 32);
  st->send_index = 0;
  st->flags = F_HAS_SEND;
  if (spqr) {
    /* The initiator runs SPQR (its first message carries pq_ratchet): we
     * are its B side. Only after PQXDH, which gives the SPQR key. */
    if (!pq) {
      rc = SOTTO_ERR_VERSION;
      goto out;
    }
    if ((st->spqr = malloc(sizeof *st->spqr)) == NULL) {
      rc = SOTTO_ERR_NOMEM;
      goto out;
    }
    if ((rc = sotto__spqr_init(st->spqr, st->pqr, 0)) != 0) goto out;
  }
  *out = st;
  st = NULL;
out:
  state_free(st);
  if (kem_sk != NULL) {
    sotto__wipe(kem_sk, SOTTO_KEM_SECRETKEY_LEN);
    free(kem_sk);
  }
  sotto__wipe(spk_priv, sizeof spk_priv);
  sotto__wipe(opk_priv, sizeof opk_priv);
  sotto__wipe(dh, sizeof dh);
  sotto__wipe(ss, sizeof ss);
  return rc;
}

/* A PreKeySignalMessage opens with the state it names by base key and
 * identity, if the record has one (the initiator wraps every message until
 * it hears back); otherwise it makes a new state, which becomes current only
 * if its first message verifies and the caller trusts the identity. */
static int decrypt_prekey(struct sotto_session *s, const struct sotto_identity *me,
                          const struct sotto_prekey_store *store, const uint8_t *msg, size_t len, uint8_t *pt,
                          size_t cap, size_t *pt_len, struct sotto_decrypt_info *info,
                          const struct work *w0) {
  struct sotto__prekey_msg pm;
  struct sotto__signal_msg m;
  struct state *ns = NULL;
  struct trial t;
  struct work w;
  int rc, final, spqr;

  if ((rc = sotto__prekey_msg_parse(&pm, msg, len)) != 0) return rc;
  if ((rc = sotto__signal_msg_parse(&m, pm.message, pm.message_len)) != 0) return rc;
  spqr = m.has_pq && m.pq_len > 0;

  w = *w0;
  for (int i = -1; s->cur != NULL && i < (int)s->n_arch; i++) {
    struct state *st = i < 0 ? s->cur : s->arch[i];
    if (st->version == pm.version && memcmp(st->base_key, pm.base_key, 32) == 0 &&
        memcmp(st->remote_id, pm.identity_key, 32) == 0)
      return open_with(s, i, &m, store, pt, cap, pt_len, &w, info, &final);
  }

  if (me == NULL || store == NULL || store->load_signed_prekey == NULL) return SOTTO_ERR_USAGE;
  /* A new version 4 session must run SPQR (libsignal: "Minimum version"):
   * a PQXDH start without pq_ratchet is a downgrade, refused before any
   * pre-key is touched. Version 3 (X3DH, interop) has no SPQR. */
  if (pm.version == SOTTO_VERSION_PQXDH && !spqr) return SOTTO_ERR_DOWNGRADE;
  if ((rc = responder_state(&ns, me, store, &pm, spqr && pm.version == SOTTO_VERSION_PQXDH)) != 0) return rc;
  if ((rc = trial_run(&t, ns, &m, pt, cap, pt_len, &w)) != 0) {
    state_free(ns);
    return rc;
  }
  /* The message verified, so its sender holds the identity key it names
   * (DH1 needs its private key): now the caller decides on it. */
  if ((rc = check_trust(store, pm.identity_key)) != 0 || (rc = trial_reserve(&t, ns)) != 0) {
    if (rc == SOTTO_ERR_UNTRUSTED_IDENTITY) fill_info(info, pm.identity_key, 1);
    trial_drop(&t);
    state_free(ns);
    sotto__wipe(pt, cap < m.ciphertext_len ? cap : m.ciphertext_len);
    return rc;
  }
  trial_commit(ns, &t);
  promote_new(s, ns);
  fill_info(info, pm.identity_key, 1);
  if (pm.has_prekey_id && store->remove_one_time_prekey != NULL)
    store->remove_one_time_prekey(store->ud, pm.prekey_id);
  if (pm.has_kem && store->kem_prekey_used != NULL) store->kem_prekey_used(store->ud, pm.kem_prekey_id);
  return 0;
}

int sotto_session_decrypt_addressed(struct sotto_session *s, const struct sotto_identity *me,
                                    const struct sotto_prekey_store *store, const struct sotto_addresses *a,
                                    int type, const uint8_t *msg, size_t msg_len, uint8_t *pt, size_t cap,
                                    size_t *pt_len, struct sotto_decrypt_info *info) {
  uint8_t addr[ADDR_MAX];
  struct work w;
  size_t dummy, n = 0;
  int rc;

  if (pt_len == NULL) pt_len = &dummy;
  *pt_len = 0;
  if (info != NULL) memset(info, 0, sizeof *info);
  if ((rc = sotto__crypto_init()) != 0) return rc;
  if (s == NULL || msg == NULL || pt == NULL) return SOTTO_ERR_USAGE;
  work_init(&w);
  if (a != NULL) {
    /* The message comes from the remote address to us. */
    if ((rc = addr_encode(addr, &n, &a->remote, &a->local)) != 0) return rc;
    w.addr = addr;
    w.addr_len = n;
    w.addr_require = a->require != 0;
  }
  if (type == SOTTO_MSG_SIGNAL)
    rc = decrypt_signal(s, store, msg, msg_len, pt, cap, pt_len, info, &w);
  else if (type == SOTTO_MSG_PREKEY)
    rc = decrypt_prekey(s, me, store, msg, msg_len, pt, cap, pt_len, info, &w);
  else
    rc = SOTTO_ERR_USAGE;
  if (rc != 0) {
    *pt_len = 0;
    if (info != NULL && rc != SOTTO_ERR_UNTRUSTED_IDENTITY) memset(info, 0, sizeof *info);
  }
  return rc;
}

int sotto_session_decrypt_ex(struct sotto_session *s, const struct sotto_identity *me,
                             const struct sotto_prekey_store *store, int type, const uint8_t *msg,
                             size_t msg_len, uint8_t *pt, size_t cap, size_t *pt_len,
                             struct sotto_decrypt_info *info) {
  return sotto_session_decrypt_addressed(s, me, store, NULL, type, msg, msg_len, pt, cap, pt_len, info);
}

int sotto_session_decrypt(struct sotto_session *s, const struct sotto_identity *me,
                          const struct sotto_prekey_store *store, int type, const uint8_t *msg,
                          size_t msg_len, uint8_t *pt, size_t cap, size_t *pt_len) {
  return sotto_session_decrypt_ex(s, me, store, type, msg, msg_len, pt, cap, pt_len, NULL);
}

/* ---- serialization ------------------------------------------------------------
 *
 * Record format, version 1 (all integers big-endian):
 *   "SSR" 0x01 | u8 has_current | u8 n_archived | state (current) | state * n_archived
 * state:
 *   u8 version | u8 flags | local_id 32 | remote_id 32 | u32 local_reg |
 *   u32 remote_reg | root key 32 | send_pub 32 | send_priv 32 | send_ck 32 |
 *   u32 send_index | u32 prev_counter | u32 pending opk id | u32 pending spk id |
 *   base_key 32 | u8 n_recv (<= 5) | n_recv * (key 32 | ck 32 | u32 index) |
 *   u16 n_skipped (<= 2000) | n_skipped * (chain 32 | u32 counter | seed 32),
 *   oldest first.
 * Format 2 ("SSR" 0x02) is written only when a state runs SPQR: the same,
 * and a state whose flags have 0x20 ends with
 *   u32 braid record length | braid record | u32 chain record length | chain record
 * (lib/spqr; docs/protocol.md "Session record"). A record without SPQR
 * stays format 1, byte for byte. */

#define STATE_FIXED (2 + 32 + 32 + 4 + 4 + 32 + 32 + 32 + 32 + 4 + 4 + 4 + 4 + 32 + 32 + 1 + 2)
#define KEM_PENDING_SIZE (4 + SOTTO_KEM_CIPHERTEXT_LEN)
#define CHAIN_SIZE (32 + 32 + 4)
#define SKIP_SIZE (32 + 4 + 32)

static size_t spqr_size(const struct state *st) {
  if (st->spqr == NULL) return 0;
  return 8 + sotto__braid_serialized_size(&st->spqr->braid) + sotto__spqr_chain_serialized_size(&st->spqr->chain);
}

static size_t state_size(const struct state *st) {
  return spqr_size(st) + STATE_FIXED + (size_t)st->n_recv * CHAIN_SIZE + (st->skipped ? (size_t)st->skipped->live * SKIP_SIZE : 0) +
         ((st->flags & F_PENDING_KEM) ? KEM_PENDING_SIZE : 0);
}

size_t sotto_session_serialized_size(const struct sotto_session *s) {
  size_t n = 6;
  if (s == NULL) return 0;
  if (s->cur) n += state_size(s->cur);
  for (unsigned i = 0; i < s->n_arch; i++) n += state_size(s->arch[i]);
  return n;
}

static void write_skip(void *ud, const struct sotto__skent *e) {
  struct sotto__wr *w = ud;
  sotto__wr_bytes(w, e->chain, 32);
  sotto__wr_u32be(w, e->counter);
  sotto__wr_bytes(w, e->seed, 32);
}

/* Appends a u32 length and the SPQR records; the room was counted by
 * state_size. */
static void write_spqr(struct sotto__wr *w, const struct sotto__spqr *q) {
  size_t nb = sotto__braid_serialized_size(&q->braid), nc = sotto__spqr_chain_serialized_size(&q->chain), got;
  sotto__wr_u32be(w, (uint32_t)nb);
  if (w->err == 0 && w->cap - w->len >= nb) {
    if (sotto__braid_serialize(&q->braid, w->p + w->len, nb, &got) != 0 || got != nb) w->err = SOTTO_ERR_INTERNAL;
    w->len += nb;
  } else if (w->err == 0) {
    w->err = SOTTO_ERR_BUFFER_TOO_SMALL;
  }
  sotto__wr_u32be(w, (uint32_t)nc);
  if (w->err == 0 && w->cap - w->len >= nc) {
    if (sotto__spqr_chain_serialize(&q->chain, w->p + w->len, nc, &got) != 0 || got != nc)
      w->err = SOTTO_ERR_INTERNAL;
    w->len += nc;
  } else if (w->err == 0) {
    w->err = SOTTO_ERR_BUFFER_TOO_SMALL;
  }
}

static void write_state(struct sotto__wr *w, const struct state *st) {
  sotto__wr_u8(w, st->version);
  sotto__wr_u8(w, (uint8_t)(st->flags | (st->spqr != NULL ? F_SPQR : 0)));
  sotto__wr_bytes(w, st->local_id, 32);
  sotto__wr_bytes(w, st->remote_id, 32);
  sotto__wr_u32be(w, st->local_reg);
  sotto__wr_u32be(w, st->remote_reg);
  sotto__wr_bytes(w, st->rk, 32);
  sotto__wr_bytes(w, st->send_pub, 32);
  sotto__wr_bytes(w, st->send_priv, 32);
  sotto__wr_bytes(w, st->send_ck, 32);
  sotto__wr_u32be(w, st->send_index);
  sotto__wr_u32be(w, st->prev_counter);
  sotto__wr_u32be(w, st->pend_opk_id);
  sotto__wr_u32be(w, st->pend_spk_id);
  sotto__wr_bytes(w, st->base_key, 32);
  sotto__wr_bytes(w, st->pqr, 32);
  if (st->flags & F_PENDING_KEM) {
    sotto__wr_u32be(w, st->pend_kem_id);
    sotto__wr_bytes(w, st->pend_kem_ct, SOTTO_KEM_CIPHERTEXT_LEN);
  }
  sotto__wr_u8(w, st->n_recv);
  for (unsigned i = 0; i < st->n_recv; i++) {
    sotto__wr_bytes(w, st->recv[i].key, 32);
    sotto__wr_bytes(w, st->recv[i].ck, 32);
    sotto__wr_u32be(w, st->recv[i].index);
  }
  {
    uint32_t live = st->skipped ? st->skipped->live : 0;
    uint8_t b[2] = {(uint8_t)(live >> 8), (uint8_t)live};
    sotto__wr_bytes(w, b, 2);
  }
  sotto__skipped_each(st->skipped, write_skip, w);
  if (st->spqr != NULL) write_spqr(w, st->spqr);
}

int sotto_session_serialize(const struct sotto_session *s, uint8_t *out, size_t cap, size_t *out_len) {
  struct sotto__wr w;
  if (out_len) *out_len = 0;
  if (s == NULL || out == NULL || out_len == NULL) return SOTTO_ERR_USAGE;
  sotto__wr_init(&w, out, cap);
  {
    int v2 = s->cur != NULL && s->cur->spqr != NULL;
    for (unsigned i = 0; i < s->n_arch; i++) v2 |= s->arch[i]->spqr != NULL;
    sotto__wr_bytes(&w, v2 ? "SSR\x02" : "SSR\x01", 4);
  }
  sotto__wr_u8(&w, s->cur != NULL);
  sotto__wr_u8(&w, (uint8_t)s->n_arch);
  if (s->cur) write_state(&w, s->cur);
  for (unsigned i = 0; i < s->n_arch; i++) write_state(&w, s->arch[i]);
  if (w.err) {
    sotto__wipe(out, cap);
    return w.err;
  }
  *out_len = w.len;
  return 0;
}

/* Bounds on the SPQR part of one state on load (docs/protocol.md, "Session
 * record"). A braid record is at most about 16.5 KB (every optional part
 * and a full decoder); a chain record of a session holds at most
 * SOTTO_SPQR_MAX_LINKS links whose receiving halves keep fewer than
 * 2,000 * 11 / 10 + 1 keys of 36 bytes: about 634 KB. A session's chains
 * always have libsignal's parameters; a record with others is not one
 * libsotto wrote. */
#define SPQR_BRAID_RECORD_MAX (20 * 1024)
#define SPQR_CHAIN_RECORD_MAX (640 * 1024)

static int read_spqr(struct sotto__rd *r, struct state *st) {
  const uint8_t *p;
  uint32_t n;
  int rc;
  if ((st->spqr = calloc(1, sizeof *st->spqr)) == NULL) return SOTTO_ERR_NOMEM;
  if ((rc = sotto__rd_u32be(r, &n)) != 0) return rc;
  if (n > SPQR_BRAID_RECORD_MAX) return SOTTO_ERR_TOO_LARGE;
  if ((rc = sotto__rd_bytes(r, n, &p)) != 0) return rc;
  if ((rc = sotto__braid_deserialize(&st->spqr->braid, p, n)) != 0) return rc;
  if ((rc = sotto__rd_u32be(r, &n)) != 0) return rc;
  if (n > SPQR_CHAIN_RECORD_MAX) return SOTTO_ERR_TOO_LARGE;
  if ((rc = sotto__rd_bytes(r, n, &p)) != 0) return rc;
  if ((rc = sotto__spqr_chain_deserialize(&st->spqr->chain, p, n)) != 0) return rc;
  if (st->spqr->chain.max_jump != SOTTO_SPQR_DEFAULT_MAX_JUMP ||
      st->spqr->chain.max_ooo != SOTTO_SPQR_DEFAULT_MAX_OOO)
    return SOTTO_ERR_MALFORMED;
  return 0;
}

static int read_state(struct sotto__rd *r, struct state **out, int format) {
  struct state *st;
  uint8_t n_skip_b[2];
  unsigned n_skip, i;
  int rc, has_spqr = 0;

  *out = NULL;
  if (sotto__rd_left(r) < STATE_FIXED) return SOTTO_ERR_TRUNCATED;
  if ((st = calloc(1, sizeof *st)) == NULL) return SOTTO_ERR_NOMEM;
  if ((rc = sotto__rd_u8(r, &st->version)) || (rc = sotto__rd_u8(r, &st->flags)) ||
      (rc = sotto__rd_copy(r, st->local_id, 32)) || (rc = sotto__rd_copy(r, st->remote_id, 32)) ||
      (rc = sotto__rd_u32be(r, &st->local_reg)) || (rc = sotto__rd_u32be(r, &st->remote_reg)) ||
      (rc = sotto__rd_copy(r, st->rk, 32)) || (rc = sotto__rd_copy(r, st->send_pub, 32)) ||
      (rc = sotto__rd_copy(r, st->send_priv, 32)) || (rc = sotto__rd_copy(r, st->send_ck, 32)) ||
      (rc = sotto__rd_u32be(r, &st->send_index)) || (rc = sotto__rd_u32be(r, &st->prev_counter)) ||
      (rc = sotto__rd_u32be(r, &st->pend_opk_id)) || (rc = sotto__rd_u32be(r, &st->pend_spk_id)) ||
      (rc = sotto__rd_copy(r, st->base_key, 32)) || (rc = sotto__rd_copy(r, st->pqr, 32)))
    goto fail;
  rc = SOTTO_ERR_MALFORMED;
  if (st->version != SOTTO_VERSION_X3DH && st->version != SOTTO_VERSION_PQXDH) goto fail;
  if (format >= 2 && (st->flags & F_SPQR)) {
    if (st->version != SOTTO_VERSION_PQXDH) goto fail;
    st->flags &= (uint8_t)~F_SPQR;
    has_spqr = 1;
  }
  if (st->flags & ~F_KNOWN) goto fail;
  if ((st->flags & F_PENDING_KEM) && (st->version != SOTTO_VERSION_PQXDH || !(st->flags & F_PENDING_PREKEY)))
    goto fail;
  if (st->flags & F_PENDING_KEM) {
    if ((rc = sotto__rd_u32be(r, &st->pend_kem_id)) != 0) goto fail;
    if ((st->pend_kem_ct = malloc(SOTTO_KEM_CIPHERTEXT_LEN)) == NULL) {
      rc = SOTTO_ERR_NOMEM;
      goto fail;
    }
    if ((rc = sotto__rd_copy(r, st->pend_kem_ct, SOTTO_KEM_CIPHERTEXT_LEN)) != 0) goto fail;
    rc = SOTTO_ERR_MALFORMED;
    if (!sotto__kem_type_ok(st->pend_kem_ct[0])) goto fail;
  }
  if ((rc = sotto__rd_u8(r, &st->n_recv)) != 0) goto fail;
  rc = SOTTO_ERR_MALFORMED;
  if (st->n_recv > SOTTO_MAX_RECEIVER_CHAINS) goto fail;
  if ((st->flags & F_SEND_STALE) && st->n_recv == 0) goto fail;
  if (!(st->flags & (F_HAS_SEND | F_SEND_STALE))) goto fail;
  for (i = 0; i < st->n_recv; i++) {
    if ((rc = sotto__rd_copy(r, st->recv[i].key, 32)) || (rc = sotto__rd_copy(r, st->recv[i].ck, 32)) ||
        (rc = sotto__rd_u32be(r, &st->recv[i].index)))
      goto fail;
  }
  if ((rc = sotto__rd_copy(r, n_skip_b, 2)) != 0) goto fail;
  n_skip = (unsigned)n_skip_b[0] << 8 | n_skip_b[1];
  if (n_skip > SOTTO_MAX_SKIPPED_KEYS) {
    rc = SOTTO_ERR_TOO_LARGE;
    goto fail;
  }
  if ((size_t)n_skip * SKIP_SIZE > sotto__rd_left(r)) {
    rc = SOTTO_ERR_TRUNCATED;
    goto fail;
  }
  if (n_skip > 0) {
    if ((st->skipped = sotto__skipped_new()) == NULL) {
      rc = SOTTO_ERR_NOMEM;
      goto fail;
    }
    for (i = 0; i < n_skip; i++) {
      uint32_t counter;
      const uint8_t *chain, *seed;
      if ((rc = sotto__rd_bytes(r, 32, &chain)) || (rc = sotto__rd_u32be(r, &counter)) ||
          (rc = sotto__rd_bytes(r, 32, &seed)))
        goto fail;
      /* A key whose receiving chain is gone can open nothing (a message
       * needs its chain to reach the stored key): records written before
       * dropped chains took their keys along may still hold some. They
       * are left out, so the record written next no longer has them. */
      if (find_chain(st, chain) == NULL) continue;
      if (sotto__skipped_find(st->skipped, chain, counter) >= 0) {
        rc = SOTTO_ERR_MALFORMED; /* the same key twice */
        goto fail;
      }
      sotto__skipped_insert(st->skipped, chain, counter, seed);
    }
    if (st->skipped->live == 0) {
      sotto__skipped_free(st->skipped);
      st->skipped = NULL;
    }
  }
  if (has_spqr && (rc = read_spqr(r, st)) != 0) goto fail;
  *out = st;
  return 0;
fail:
  state_free(st);
  return rc;
}

int sotto_session_deserialize(struct sotto_session **out, const uint8_t *in, size_t in_len) {
  struct sotto_session *s = NULL;
  struct sotto__rd r;
  const uint8_t *magic;
  uint8_t has_cur, n_arch;
  int rc;

  if (out == NULL) return SOTTO_ERR_USAGE;
  *out = NULL;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  if (in == NULL) return SOTTO_ERR_USAGE;
  if (in_len > SOTTO_MAX_SESSION_RECORD_LEN) return SOTTO_ERR_TOO_LARGE;
  sotto__rd_init(&r, in, in_len);
  if ((rc = sotto__rd_bytes(&r, 4, &magic)) != 0) return rc;
  if (memcmp(magic, "SSR", 3) != 0) return SOTTO_ERR_MALFORMED;
  if (magic[3] != 1 && magic[3] != 2) return SOTTO_ERR_VERSION;
  if ((rc = sotto__rd_u8(&r, &has_cur)) || (rc = sotto__rd_u8(&r, &n_arch))) return rc;
  if (has_cur > 1 || n_arch > SOTTO_MAX_ARCHIVED_STATES || (!has_cur && n_arch)) return SOTTO_ERR_MALFORMED;
  if ((s = calloc(1, sizeof *s)) == NULL) return SOTTO_ERR_NOMEM;
  if (has_cur && (rc = read_state(&r, &s->cur, magic[3])) != 0) goto fail;
  for (unsigned i = 0; i < n_arch; i++) {
    if ((rc = read_state(&r, &s->arch[i], magic[3])) != 0) goto fail;
    s->n_arch++;
  }
  if (sotto__rd_left(&r) != 0) {
    rc = SOTTO_ERR_TRAILING;
    goto fail;
  }
  if (magic[3] == 2) {
    /* Format 2 is written only for a record with an SPQR state: one
     * without is not an encoding serialize produces (found by
     * fuzz_session_record), so it is refused rather than re-labelled. */
    int any = s->cur != NULL && s->cur->spqr != NULL;
    for (unsigned i = 0; i < s->n_arch; i++) any |= s->arch[i]->spqr != NULL;
    if (!any) {
      rc = SOTTO_ERR_MALFORMED;
      goto fail;
    }
  }
  *out = s;
  return 0;
fail:
  sotto_session_free(s);
  return rc;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* sotto/kt.h: key transparency (docs/key-transparency.md has every byte format).
 *
 * One pinned cipher suite: SHA-256, Ed25519 tree-head signatures and witness
 * cosignatures, ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381) with the output cut
 * to 32 bytes as the search key, HMAC-SHA256 commitments with 16-byte
 * deletable openings (the IETF KEYTRANS fixed key).
 *
 * The structure is the IETF KEYTRANS combined tree: a log tree (RFC 6962
 * shape, KEYTRANS hash framing) whose leaf i is SHA-256(timestamp_ms ||
 * root of prefix tree i); each prefix tree is a binary trie over the
 * 256-bit search keys VRF(label || version) whose leaves commit to the
 * value. Prefix trees only grow: a label-version, once logged, stays.
 *
 * Roles:
 *  - the operator (sotto_kt_dir): adds label-versions, closes an entry with
 *    sotto_kt_dir_commit (signed tree head + the update bytes that witnesses
 *    replay), and serves search and consistency proofs;
 *  - a witness (sotto_kt_witness): replays every update, recomputes the
 *    prefix and log roots, and cosigns a head only when it is exactly what
 *    the updates give; it never cosigns a head that does not extend the last
 *    one it accepted;
 *  - a client: checks a head (operator signature + k of n witness
 *    cosignatures), its consistency with the last head it stored, and search
 *    proofs for contacts; a device monitors its own label by checking that
 *    the search proof for it shows exactly the version it last made.
 *
 * No I/O. The structures allocate (their trees grow with the log); every
 * parser is bounded by the limits below. */
#ifndef SOTTO_KT_H
#define SOTTO_KT_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/error.h>

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_KT_HASH_LEN 32
#define SOTTO_KT_VRF_SK_LEN 32     /* RFC 8032 secret seed */
#define SOTTO_KT_VRF_PK_LEN 32
#define SOTTO_KT_VRF_PROOF_LEN 80  /* Gamma(32) || c(16) || s(32) */
#define SOTTO_KT_VRF_OUTPUT_LEN 64 /* beta; the search key is its first 32 bytes */
#define SOTTO_KT_SIGN_SEED_LEN 32  /* Ed25519 seed of the operator's or a witness's key */
#define SOTTO_KT_SIGN_PK_LEN 32
#define SOTTO_KT_OPENING_LEN 16
#define SOTTO_KT_HEAD_LEN 112      /* u64 size || u64 timestamp_ms || root(32) || sig(64) */
#define SOTTO_KT_COSIG_LEN 80      /* key_id(8) || u64 time || sig(64) */
#define SOTTO_KT_KEY_ID_LEN 8
#define SOTTO_KT_ENTRY_LEN 64      /* search key(32) || commitment(32) */

/* Limits on anything a peer can send. */
#define SOTTO_KT_MAX_LABEL_LEN 255
#define SOTTO_KT_MAX_VALUE_LEN 1024
#define SOTTO_KT_MAX_VERSION 0x7FFFFFFFu      /* versions are 0..MAX_VERSION */
#define SOTTO_KT_ABSENT 0xFFFFFFFFu           /* "the label has no version" */
#define SOTTO_KT_MAX_TREE_SIZE (1ull << 62)   /* log entries (as libsignal) */
#define SOTTO_KT_MAX_UPDATE_ENTRIES (1u << 20) /* label-versions in one log entry */
#define SOTTO_KT_MAX_LOG_PROOF 128            /* hashes in an inclusion/consistency proof */
#define SOTTO_KT_MAX_COSIGS 64
#define SOTTO_KT_MAX_SEARCH_PROOF_LEN 65536
#define SOTTO_KT_MAX_VERSION_PROOF_LEN 16384 /* sotto_kt_dir_prove_version */
#define SOTTO_KT_MAX_UPDATE_LEN (12 + 64 * (size_t)SOTTO_KT_MAX_UPDATE_ENTRIES)

/* ---- ECVRF-EDWARDS25519-SHA512-TAI (RFC 9381) ---------------------------- */

/* Public key of a VRF secret seed (RFC 8032 key generation). */
SOTTO_WUR int sotto_kt_vrf_public_key(uint8_t pk[SOTTO_KT_VRF_PK_LEN], const uint8_t sk[SOTTO_KT_VRF_SK_LEN]);
/* pi = ECVRF_prove(sk, alpha). Deterministic. */
SOTTO_WUR int sotto_kt_vrf_prove(uint8_t pi[SOTTO_KT_VRF_PROOF_LEN], const uint8_t sk[SOTTO_KT_VRF_SK_LEN],
                                 const uint8_t *alpha, size_t alpha_len);
/* beta = ECVRF_proof_to_hash(ECVRF_prove(sk, alpha)) at the cost of one
 * scalar multiplication (no proof): what the operator needs at append time. */
SOTTO_WUR int sotto_kt_vrf_hash(uint8_t beta[SOTTO_KT_VRF_OUTPUT_LEN], const uint8_t sk[SOTTO_KT_VRF_SK_LEN],
                                const uint8_t *alpha, size_t alpha_len);
/* ECVRF_verify: 0 and beta on success; SOTTO_ERR_AUTH (beta zeroed) for a
 * proof that does not verify, SOTTO_ERR_INVALID_KEY for an unusable pk. */
SOTTO_WUR int sotto_kt_vrf_verify(uint8_t beta[SOTTO_KT_VRF_OUTPUT_LEN], const uint8_t pk[SOTTO_KT_VRF_PK_LEN],
                                  const uint8_t pi[SOTTO_KT_VRF_PROOF_LEN], const uint8_t *alpha,
                                  size_t alpha_len);

/* ---- commitments -------------------------------------------------------------- */

/* c = HMAC-SHA256(Kc, opening || u16 len(sk) || sk || u32 len(value) || value)
 * with sk = label || u32 version (Signal's encoding, the KEYTRANS fixed key). */
SOTTO_WUR int sotto_kt_commit(uint8_t c[SOTTO_KT_HASH_LEN], const uint8_t opening[SOTTO_KT_OPENING_LEN],
                              const uint8_t *label, size_t label_len, uint32_t version,
                              const uint8_t *value, size_t value_len);

/* ---- log tree ---------------------------------------------------------------- */

/* An in-memory log tree: leaf hashes plus every complete subtree hash
 * (2 x 32 bytes per leaf). Proofs are concatenated 32-byte hashes, deepest
 * first (RFC 6962 PATH and PROOF order). */
struct sotto_kt_log;
SOTTO_WUR int sotto_kt_log_new(struct sotto_kt_log **out);
void sotto_kt_log_free(struct sotto_kt_log *log);
SOTTO_WUR int sotto_kt_log_append(struct sotto_kt_log *log, const uint8_t leaf[SOTTO_KT_HASH_LEN]);
uint64_t sotto_kt_log_size(const struct sotto_kt_log *log);
/* Root of the first `size` leaves (1 <= size <= sotto_kt_log_size). */
SOTTO_WUR int sotto_kt_log_root(uint8_t root[SOTTO_KT_HASH_LEN], const struct sotto_kt_log *log, uint64_t size);
SOTTO_WUR int sotto_kt_log_inclusion_proof(uint8_t *out, size_t cap, size_t *out_len,
                                           const struct sotto_kt_log *log, uint64_t index, uint64_t size);
SOTTO_WUR int sotto_kt_log_consistency_proof(uint8_t *out, size_t cap, size_t *out_len,
                                             const struct sotto_kt_log *log, uint64_t old_size,
                                             uint64_t new_size);
/* 0 if leaf is leaf `index` of the tree of `size` leaves with this root;
 * SOTTO_ERR_AUTH otherwise, SOTTO_ERR_MALFORMED for a proof of the wrong shape. */
SOTTO_WUR int sotto_kt_log_verify_inclusion(const uint8_t root[SOTTO_KT_HASH_LEN], uint64_t size,
                                            uint64_t index, const uint8_t leaf[SOTTO_KT_HASH_LEN],
                                            const uint8_t *proof, size_t proof_len);
/* 0 if the tree (new_root, new_size) extends (old_root, old_size). */
SOTTO_WUR int sotto_kt_log_verify_consistency(const uint8_t old_root[SOTTO_KT_HASH_LEN], uint64_t old_size,
                                              const uint8_t new_root[SOTTO_KT_HASH_LEN], uint64_t new_size,
                                              const uint8_t *proof, size_t proof_len);
/* The log leaf of an entry: SHA-256(u64 timestamp_ms || prefix_root). */
void sotto_kt_log_leaf(uint8_t leaf[SOTTO_KT_HASH_LEN], uint64_t timestamp_ms,
                       const uint8_t prefix_root[SOTTO_KT_HASH_LEN]);

/* ---- prefix tree ------------------------------------------------------------- */

/* An insert-only binary trie over 256-bit keys with a commitment per leaf;
 * a leaf sits at the shallowest depth where its subtree holds it alone. */
struct sotto_kt_prefix;
SOTTO_WUR int sotto_kt_prefix_new(struct sotto_kt_prefix **out);
void sotto_kt_prefix_free(struct sotto_kt_prefix *p);
/* SOTTO_ERR_DUPLICATE if the key is present (the tree is unchanged). */
SOTTO_WUR int sotto_kt_prefix_insert(struct sotto_kt_prefix *p, const uint8_t key[SOTTO_KT_HASH_LEN],
                                     const uint8_t commitment[SOTTO_KT_HASH_LEN]);
uint64_t sotto_kt_prefix_count(const struct sotto_kt_prefix *p);
/* Bytes of memory the tree holds. */
size_t sotto_kt_prefix_memory(const struct sotto_kt_prefix *p);
/* Root hash (32 zero bytes for the empty tree); recomputes what changed. */
void sotto_kt_prefix_root(uint8_t root[SOTTO_KT_HASH_LEN], struct sotto_kt_prefix *p);
/* Search proof for key: inclusion or non-inclusion. */
SOTTO_WUR int sotto_kt_prefix_prove(uint8_t *out, size_t cap, size_t *out_len, struct sotto_kt_prefix *p,
                                    const uint8_t key[SOTTO_KT_HASH_LEN]);
/* Checks a prefix search proof for key against root. 0 on success, with
 * *found = 1 and the leaf's commitment, or *found = 0 (key absent). */
SOTTO_WUR int sotto_kt_prefix_verify(int *found, uint8_t commitment[SOTTO_KT_HASH_LEN],
                                     const uint8_t root[SOTTO_KT_HASH_LEN], const uint8_t key[SOTTO_KT_HASH_LEN],
                                     const uint8_t *proof, size_t proof_len);

/* ---- tree heads and witness cosignatures ------------------------------------------ */

struct sotto_kt_head {
  uint64_t tree_size;    /* log entries, >= 1 */
  uint64_t timestamp_ms; /* when the operator signed it */
  uint8_t root[SOTTO_KT_HASH_LEN];
  uint8_t sig[64];
};

/* The public identity of a log: the operator's signing key and VRF key. */
struct sotto_kt_log_id {
  uint8_t sig_pk[SOTTO_KT_SIGN_PK_LEN];
  uint8_t vrf_pk[SOTTO_KT_VRF_PK_LEN];
};

void sotto_kt_head_encode(uint8_t out[SOTTO_KT_HEAD_LEN], const struct sotto_kt_head *h);
SOTTO_WUR int sotto_kt_head_decode(struct sotto_kt_head *h, const uint8_t *in, size_t len);
/* Operator signature check: 0 or SOTTO_ERR_AUTH. */
SOTTO_WUR int sotto_kt_head_verify(const struct sotto_kt_head *h, const struct sotto_kt_log_id *id);

/* Key id of a witness public key: SHA-256("sotto-kt-witness-v1" || pk)[0..8]. */
void sotto_kt_witness_key_id(uint8_t id[SOTTO_KT_KEY_ID_LEN], const uint8_t pk[SOTTO_KT_SIGN_PK_LEN]);
/* A cosignature of head (its size, timestamp and root) at `time` (seconds). */
SOTTO_WUR int sotto_kt_cosign(uint8_t cosig[SOTTO_KT_COSIG_LEN], const uint8_t witness_seed[SOTTO_KT_SIGN_SEED_LEN],
                              uint64_t time, const struct sotto_kt_head *h, const struct sotto_kt_log_id *id);
SOTTO_WUR int sotto_kt_cosig_verify(const uint8_t cosig[SOTTO_KT_COSIG_LEN],
                                    const uint8_t witness_pk[SOTTO_KT_SIGN_PK_LEN],
                                    const struct sotto_kt_head *h, const struct sotto_kt_log_id *id);
/* The client's head check: the operator's signature, and valid cosignatures
 * (cosigs = concatenated SOTTO_KT_COSIG_LEN records, unknown key ids
 * skipped) from at least k distinct witnesses of the n in witness_pks
 * (n x 32 bytes). 0; SOTTO_ERR_AUTH for a bad operator signature;
 * SOTTO_ERR_KT_QUORUM if fewer than k witnesses cosigned. *valid (may be
 * NULL) gets the number of witnesses whose cosignature verified. */
SOTTO_WUR int sotto_kt_head_verify_quorum(unsigned *valid, const struct sotto_kt_head *h,
                                          const struct sotto_kt_log_id *id, const uint8_t *witness_pks,
                                          size_t n, size_t k, const uint8_t *cosigs, size_t cosigs_len);

/* ---- search proofs (client side) -------------------------------------------------- */

/* Checks a search proof for label against a head the caller has already
 * accepted (sotto_kt_head_verify_quorum). On success *version is the
 * label's greatest version in the log (SOTTO_KT_ABSENT if it has none) and
 * value/value_len its value (value needs SOTTO_KT_MAX_VALUE_LEN bytes).
 * SOTTO_ERR_AUTH for a proof that does not match the head; malformed codes
 * for bytes that do not parse. */
SOTTO_WUR int sotto_kt_search_verify(uint32_t *version, uint8_t *value, size_t *value_len,
                                     const struct sotto_kt_head *h, const struct sotto_kt_log_id *id,
                                     const uint8_t *label, size_t label_len, const uint8_t *proof,
                                     size_t proof_len);
/* Monitoring of one's own label: the search proof must show exactly
 * `version` with exactly `value` (SOTTO_KT_ABSENT / NULL for a label that
 * must have no version). SOTTO_ERR_UNTRUSTED_IDENTITY if the log shows
 * another version or value (a version none of the account's devices made). */
SOTTO_WUR int sotto_kt_monitor_verify(const struct sotto_kt_head *h, const struct sotto_kt_log_id *id,
                                      const uint8_t *label, size_t label_len, uint32_t version,
                                      const uint8_t *value, size_t value_len, const uint8_t *proof,
                                      size_t proof_len);

/* Checks a version proof (sotto_kt_dir_prove_version) of label's `version`
 * against a head the caller accepted: 0 and that version's value
 * (value: SOTTO_KT_MAX_VALUE_LEN bytes); SOTTO_ERR_AUTH for a proof that
 * does not match the head; malformed codes for bytes that do not parse (a
 * proof of another version is malformed). Versions need not be the
 * greatest: monitoring checks every version logged since its last check. */
SOTTO_WUR int sotto_kt_version_verify(uint8_t *value, size_t *value_len, const struct sotto_kt_head *h,
                                      const struct sotto_kt_log_id *id, const uint8_t *label, size_t label_len,
                                      uint32_t version, const uint8_t *proof, size_t proof_len);

/* ---- the operator's directory ----------------------------------------------------- */

struct sotto_kt_dir;
/* sig_seed and vrf_sk are copied into guarded memory. */
SOTTO_WUR int sotto_kt_dir_new(struct sotto_kt_dir **out, const uint8_t sig_seed[SOTTO_KT_SIGN_SEED_LEN],
                               const uint8_t vrf_sk[SOTTO_KT_VRF_SK_LEN]);
void sotto_kt_dir_free(struct sotto_kt_dir *d);
void sotto_kt_dir_log_id(struct sotto_kt_log_id *id, const struct sotto_kt_dir *d);
/* Stages label-version for the next entry with a fresh random opening
 * (written to opening; the caller stores it with the value to build search
 * proofs later). SOTTO_ERR_DUPLICATE if that label-version is logged. */
SOTTO_WUR int sotto_kt_dir_add(struct sotto_kt_dir *d, uint8_t opening[SOTTO_KT_OPENING_LEN],
                               const uint8_t *label, size_t label_len, uint32_t version,
                               const uint8_t *value, size_t value_len);
/* sotto_kt_dir_add in two steps, so that the expensive part (one VRF
 * evaluation, about 0.1 ms) runs on any thread: _prepare only reads the
 * directory's keys, fixed at _new, and may run concurrently with itself and
 * with _add_prepared and _commit on the same directory (not with _free);
 * _add_prepared stages the entry (one thread at a time, as every other
 * call on the directory). */
SOTTO_WUR int sotto_kt_dir_prepare(uint8_t entry[SOTTO_KT_ENTRY_LEN], uint8_t opening[SOTTO_KT_OPENING_LEN],
                                   const struct sotto_kt_dir *d, const uint8_t *label, size_t label_len,
                                   uint32_t version, const uint8_t *value, size_t value_len);
SOTTO_WUR int sotto_kt_dir_add_prepared(struct sotto_kt_dir *d, const uint8_t entry[SOTTO_KT_ENTRY_LEN]);
/* Closes the staged label-versions into one log entry: writes the signed
 * head and the update bytes (sotto_kt_update_len(staged) bytes) that
 * witnesses replay. On failure nothing changes. */
SOTTO_WUR int sotto_kt_dir_commit(struct sotto_kt_dir *d, struct sotto_kt_head *head, uint8_t *update,
                                  size_t cap, size_t *update_len, uint64_t timestamp_ms);
size_t sotto_kt_dir_staged(const struct sotto_kt_dir *d);
size_t sotto_kt_update_len(size_t entries);
/* Re-applies an update (e.g. from the operator's own store after a restart)
 * whose head must verify and match; as sotto_kt_witness_apply. */
SOTTO_WUR int sotto_kt_dir_replay(struct sotto_kt_dir *d, const uint8_t *update, size_t update_len,
                                  const struct sotto_kt_head *head);
/* The current head (SOTTO_ERR_USAGE before the first entry). */
SOTTO_WUR int sotto_kt_dir_head(struct sotto_kt_head *head, const struct sotto_kt_dir *d);
/* Search proof for label whose greatest version is `version` (or
 * SOTTO_KT_ABSENT), with that version's value and opening, against the
 * current head. */
SOTTO_WUR int sotto_kt_dir_search(uint8_t *out, size_t cap, size_t *out_len, struct sotto_kt_dir *d,
                                  const uint8_t *label, size_t label_len, uint32_t version,
                                  const uint8_t *value, size_t value_len,
                                  const uint8_t opening[SOTTO_KT_OPENING_LEN]);
/* Version proof of one logged label-version (with its value and opening)
 * against the current head; at most SOTTO_KT_MAX_VERSION_PROOF_LEN bytes.
 * SOTTO_ERR_USAGE if that label-version with that value is not logged. */
SOTTO_WUR int sotto_kt_dir_prove_version(uint8_t *out, size_t cap, size_t *out_len, struct sotto_kt_dir *d,
                                         const uint8_t *label, size_t label_len, uint32_t version,
                                         const uint8_t *value, size_t value_len,
                                         const uint8_t opening[SOTTO_KT_OPENING_LEN]);
/* Consistency proof from old_size to the current head. */
SOTTO_WUR int sotto_kt_dir_consistency(uint8_t *out, size_t cap, size_t *out_len,
                                       const struct sotto_kt_dir *d, uint64_t old_size);
size_t sotto_kt_dir_memory(const struct sotto_kt_dir *d);

/* ---- witness (the draft's auditor) ------------------------------------------------ */

struct sotto_kt_witness;
SOTTO_WUR int sotto_kt_witness_new(struct sotto_kt_witness **out, const struct sotto_kt_log_id *id);
void sotto_kt_witness_free(struct sotto_kt_witness *w);
/* Applies the update of the next log entry with the head that claims it:
 * the head must verify, have tree_size = entries + 1 and a timestamp not
 * older than the last head's; the update must parse, insert only new keys,
 * and give exactly the head's root. On any failure the witness is
 * unchanged: SOTTO_ERR_AUTH (bad head signature), malformed codes (update
 * bytes), SOTTO_ERR_KT_FORK (a head that is not the extension of what it
 * accepted: wrong size, older time, a key logged again, another root). */
SOTTO_WUR int sotto_kt_witness_apply(struct sotto_kt_witness *w, const uint8_t *update, size_t update_len,
                                     const struct sotto_kt_head *head);
/* Cosigns head only if it is the last head the witness applied (its size
 * and root); SOTTO_ERR_KT_FORK otherwise. */
SOTTO_WUR int sotto_kt_witness_cosign(uint8_t cosig[SOTTO_KT_COSIG_LEN], const struct sotto_kt_witness *w,
                                      const uint8_t witness_seed[SOTTO_KT_SIGN_SEED_LEN], uint64_t time,
                                      const struct sotto_kt_head *head);
uint64_t sotto_kt_witness_size(const struct sotto_kt_witness *w);

#ifdef __cplusplus
}
#endif
#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* kt_internal.h: what the key-transparency files share inside libsotto. */
#ifndef SOTTO_KT_INTERNAL_H
#define SOTTO_KT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/kt.h>

#include "crypto/fe25519.h"

/* Log-tree hash framings: KEYTRANS (the flag byte in front of each child:
 * 0x00 leaf, 0x01 interior) and RFC 6962 (0x01 || left || right), the
 * latter only so the RFC 6962 vectors can test the proof logic. */
enum { SOTTO__KT_FRAMING_KT = 0, SOTTO__KT_FRAMING_RFC6962 = 1 };

void sotto__kt_node(uint8_t out[32], int framing, const uint8_t l[32], int l_leaf, const uint8_t r[32],
                    int r_leaf);
SOTTO_WUR int sotto__kt_verify_inclusion(int framing, const uint8_t root[32], uint64_t size, uint64_t index,
                                         const uint8_t leaf[32], const uint8_t *proof, size_t proof_len);
SOTTO_WUR int sotto__kt_verify_consistency(int framing, const uint8_t old_root[32], uint64_t old_size,
                                           const uint8_t new_root[32], uint64_t new_size,
                                           const uint8_t *proof, size_t proof_len);
/* A log in RFC 6962 framing (tests only). */
SOTTO_WUR int sotto__kt_log_new_framing(struct sotto_kt_log **out, int framing);

/* Signal's commitment encoding over an arbitrary search key (KATs). */
void sotto__kt_commit_raw(uint8_t c[32], const uint8_t opening[16], const uint8_t *sk, size_t sk_len,
                          const uint8_t *data, size_t data_len);

/* Prefix tree with an undo mark: inserts after the mark can be rolled back. */
size_t sotto__kt_prefix_mark(struct sotto_kt_prefix *p);
void sotto__kt_prefix_rollback(struct sotto_kt_prefix *p, size_t mark);
void sotto__kt_prefix_forget(struct sotto_kt_prefix *p);
int sotto__kt_prefix_has(const struct sotto_kt_prefix *p, const uint8_t key[32]);
struct sotto__rd;
/* Parses one prefix proof from r (the reader is left after it) and computes
 * the root it implies for key. */
SOTTO_WUR int sotto__kt_prefix_eval(uint8_t root[32], int *found, uint8_t commitment[32], const uint8_t key[32],
                                    struct sotto__rd *r);
/* Drops the last leaves so the log has `size` (tests of a refused head). */
void sotto__kt_log_truncate(struct sotto_kt_log *log, uint64_t size);
/* beta of a proof (no verification). */
SOTTO_WUR int sotto__kt_vrf_proof_to_hash(uint8_t beta[64], const uint8_t pi[80]);

/* Stages a raw (search key, commitment) pair in the directory (the bench
 * fills a large log without one VRF evaluation per label-version). */
SOTTO_WUR int sotto__kt_dir_add_key(struct sotto_kt_dir *d, const uint8_t key[32], const uint8_t c[32]);

/* The versions a search proof for greatest version m looks up, ascending
 * (inclusion for v <= m, non-inclusion above); returns the count (<= 96). */
#define SOTTO__KT_MAX_LOOKUPS 96
size_t sotto__kt_lookup_versions(uint32_t out[SOTTO__KT_MAX_LOOKUPS], uint32_t m);

/* VRF input: u8 len(label) || label || u32 version. */
size_t sotto__kt_vrf_input(uint8_t out[SOTTO_KT_MAX_LABEL_LEN + 5], const uint8_t *label, size_t label_len,
                           uint32_t version);

/* Variable-time Ed25519 arithmetic for public data only (ed_vt.c). */
struct sotto__ge {
  struct sotto__fe X, Y, Z, T;
};
void sotto__ge_identity(struct sotto__ge *p);
SOTTO_WUR int sotto__ge_decode(struct sotto__ge *p, const uint8_t s[32]);
void sotto__ge_encode(uint8_t s[32], const struct sotto__ge *p);
void sotto__ge_add(struct sotto__ge *r, const struct sotto__ge *p, const struct sotto__ge *q);
void sotto__ge_dbl(struct sotto__ge *r, const struct sotto__ge *p);
void sotto__ge_neg(struct sotto__ge *r, const struct sotto__ge *p);
int sotto__ge_is_identity(const struct sotto__ge *p);
/* Constant time in a (a secret scalar below 2^253). */
void sotto__ge_mul_ct(struct sotto__ge *r, const uint8_t a[32], const struct sotto__ge *p);
void sotto__ge_double_mul(struct sotto__ge *r, const uint8_t a[32], const struct sotto__ge *p, const uint8_t b[32],
                          const struct sotto__ge *q);

/* An expanded VRF secret key (keep it in guarded memory). */
struct sotto__vrf_key {
  uint8_t x[32];      /* secret scalar, reduced */
  uint8_t prefix[32]; /* nonce key */
  uint8_t y[32];      /* public key */
};
SOTTO_WUR int sotto__kt_vrf_key_init(struct sotto__vrf_key *k, const uint8_t sk[32]);
SOTTO_WUR int sotto__kt_vrf_prove_with(uint8_t pi[80], const struct sotto__vrf_key *k, const uint8_t *alpha,
                                       size_t alpha_len);
SOTTO_WUR int sotto__kt_vrf_hash_with(uint8_t beta[64], const struct sotto__vrf_key *k, const uint8_t *alpha,
                                      size_t alpha_len);

#endif

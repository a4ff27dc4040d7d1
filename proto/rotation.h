/* SPDX-License-Identifier: Apache-2.0 */
/* rotation.h: server certificate rotation statements (docs/protocol-server.md,
 * "Certificate rotation"), shared by the server (which signs them) and the
 * client (which follows them to re-pin).
 *
 * A statement says "the certificate with SHA-256 new_fp and Ed25519 public
 * key new_key succeeds the one whose key is old_key", signed by old_key:
 *
 *   u8  version (1)
 *   u64 serial          strictly increasing along the chain, from 1
 *   u8  old_key[32]     Ed25519 public key of the certificate it replaces
 *   u8  new_fp[32]      SHA-256 of the new certificate (DER): the new pin
 *   u8  new_key[32]     Ed25519 public key of the new certificate
 *   u64 not_before      unix seconds: valid from
 *   u64 not_after       unix seconds: valid until (refused after)
 *   u8  sig[64]         Ed25519 by old_key over SOTTO_ROT_TAG || all the above
 *
 * All integers are big-endian. A chain is u8 count (0..SOTTO_ROT_MAX_CHAIN)
 * followed by count statements in serial order: the ROTATION answer.
 * Sans I/O; the parser is bounded (fixed sizes, a capped count, no trailing
 * bytes) and the verifier never allocates. */
#ifndef SOTTO_SRV_ROTATION_H
#define SOTTO_SRV_ROTATION_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/error.h>

#define SOTTO_ROT_VERSION 1
#define SOTTO_ROT_KEY_LEN 32
#define SOTTO_ROT_FP_LEN 32
#define SOTTO_ROT_SIG_LEN 64
#define SOTTO_ROT_BODY_LEN (1 + 8 + 32 + 32 + 32 + 8 + 8) /* everything but the signature */
#define SOTTO_ROT_STATEMENT_LEN (SOTTO_ROT_BODY_LEN + SOTTO_ROT_SIG_LEN)
#define SOTTO_ROT_MAX_CHAIN 16
#define SOTTO_ROT_CHAIN_MAX_LEN (1 + SOTTO_ROT_MAX_CHAIN * SOTTO_ROT_STATEMENT_LEN)
/* Domain separation: a signature over a statement is never valid for anything else. */
#define SOTTO_ROT_TAG "sotto server certificate rotation v1"
#define SOTTO_ROT_TAG_LEN (sizeof SOTTO_ROT_TAG - 1)
#define SOTTO_ROT_TBS_LEN (SOTTO_ROT_TAG_LEN + SOTTO_ROT_BODY_LEN)
/* The longest validity window a client accepts in one statement. */
#define SOTTO_ROT_MAX_VALIDITY_S (400LL * 24 * 3600)

struct sotto_rot_statement {
  uint8_t version;
  uint64_t serial;
  uint8_t old_key[SOTTO_ROT_KEY_LEN];
  uint8_t new_fp[SOTTO_ROT_FP_LEN];
  uint8_t new_key[SOTTO_ROT_KEY_LEN];
  uint64_t not_before, not_after;
  uint8_t sig[SOTTO_ROT_SIG_LEN];
};

/* Parses exactly one statement (SOTTO_ROT_STATEMENT_LEN bytes). */
int sotto__rot_parse_statement(const uint8_t *p, size_t len, struct sotto_rot_statement *s) SOTTO_WUR;
/* Parses a chain (u8 count, then count statements, nothing after) into
 * out[0..max); *n gets the count. SOTTO_ERR_TOO_LARGE when count > max or
 * > SOTTO_ROT_MAX_CHAIN; SOTTO_ERR_VERSION for an unknown statement version. */
int sotto__rot_parse_chain(const uint8_t *p, size_t len, struct sotto_rot_statement *out, size_t max,
                           size_t *n) SOTTO_WUR;
struct sotto__wr;
void sotto__rot_put_statement(struct sotto__wr *w, const struct sotto_rot_statement *s);
void sotto__rot_put_chain(struct sotto__wr *w, const struct sotto_rot_statement *s, size_t n);
/* The bytes the signature covers: SOTTO_ROT_TAG || the statement without sig. */
void sotto__rot_tbs(uint8_t out[SOTTO_ROT_TBS_LEN], const struct sotto_rot_statement *s);
/* 0 if s->sig is old_key's Ed25519 signature over sotto__rot_tbs(s),
 * SOTTO_ERR_AUTH otherwise. */
int sotto__rot_check_sig(const struct sotto_rot_statement *s) SOTTO_WUR;

/* The client's decision (docs/protocol-server.md, "Certificate rotation"):
 * starting from the pinned key (and the serial of the last statement
 * followed, 0 if none), walks the chain: statements whose serial is not
 * above the current one, or (before the first link) whose old_key is not
 * the pinned key, are skipped; every link taken must be signed by the
 * current key, carry a higher serial, and be valid at now_s (not_before <=
 * now_s <= not_after, window at most SOTTO_ROT_MAX_VALIDITY_S); once a link
 * is taken, every later statement must continue from it. The walk must end
 * exactly at the presented certificate (fingerprint AND key). Returns 0 with
 * *new_serial set, or SOTTO_ERR_AUTH (nothing leads there: refuse). */
int sotto__rot_follow(const struct sotto_rot_statement *chain, size_t n, const uint8_t pinned_key[SOTTO_ROT_KEY_LEN],
                      uint64_t pinned_serial, const uint8_t presented_fp[SOTTO_ROT_FP_LEN],
                      const uint8_t presented_key[SOTTO_ROT_KEY_LEN], uint64_t now_s,
                      uint64_t *new_serial) SOTTO_WUR;

#endif

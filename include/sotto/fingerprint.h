/* SPDX-License-Identifier: Apache-2.0 */
/* sotto/fingerprint.h: safety numbers, as Signal (libsignal-protocol-c 2.3.3,
 * fingerprint version 0, scannable version 1) computes them
 * (notes/signal-v3.md 4.8).
 *
 * Per party: H = SHA-512(0x00 0x00 || K || id || K), then iterations-1 more
 * times H = SHA-512(H || K), where K = 0x05 || key (33 bytes) and id is the
 * stable identifier (here a username: a byte string of at most
 * SOTTO_MAX_STABLE_ID_LEN bytes). The displayed 30 digits of a party are its
 * first 30 hash bytes read as six 5-byte big-endian numbers, each mod 100000;
 * the safety number is both halves, the lexicographically smaller first, so
 * both phones show the same 60 digits. The scannable (QR) payload carries the
 * first 32 bytes of each hash. Keys are raw 32-byte Curve25519 public keys.
 *
 * None of these functions keeps state; all inputs are public. */
#ifndef SOTTO_FINGERPRINT_H
#define SOTTO_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include <sotto/error.h>
#include <sotto/limits.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Accepted iteration counts (Signal uses SOTTO_FINGERPRINT_ITERATIONS = 5200;
 * current libsignal accepts up to one million). */
#define SOTTO_FINGERPRINT_MIN_ITERATIONS 1
#define SOTTO_FINGERPRINT_MAX_ITERATIONS 1000000
/* Scannable versions: 1 (libsignal-protocol-c, sotto's default) and 2 (what
 * libsignal 0.103 apps show). Both are written and accepted; the two phones
 * must show the same one. */
#define SOTTO_FINGERPRINT_SCANNABLE_VERSION 1
#define SOTTO_FINGERPRINT_SCANNABLE_VERSION_2 2
/* Exact size of our scannable payload: CombinedFingerprints{1 version,
 * 2 {1 content[32]}, 3 {1 content[32]}}. */
#define SOTTO_FINGERPRINT_SCANNABLE_LEN 74
/* Largest scanned payload the parser looks at (a version-0 payload with two
 * maximal identifiers stays below it). */
#define SOTTO_FINGERPRINT_SCANNABLE_MAX_LEN 1024

/* Writes the 60-digit safety number and a NUL into out. local/remote ids may
 * be NULL when their length is 0. Returns 0, SOTTO_ERR_USAGE (NULL argument,
 * iterations out of range) or SOTTO_ERR_TOO_LARGE (id too long). */
SOTTO_WUR int sotto_safety_number(char out[SOTTO_SAFETY_NUMBER_LEN + 1], const uint8_t *local_id,
                                  size_t local_id_len, const uint8_t local_key[SOTTO_PUBKEY_LEN],
                                  const uint8_t *remote_id, size_t remote_id_len,
                                  const uint8_t remote_key[SOTTO_PUBKEY_LEN], uint32_t iterations);

/* Writes our scannable payload (version 1, SOTTO_FINGERPRINT_SCANNABLE_LEN
 * bytes) into out, byte for byte what libsignal-protocol-c 2.3.3 serializes:
 * 08 01 | 12 22 0a 20 <local hash[0..32)> | 1a 22 0a 20 <remote hash[0..32)>.
 * Same inputs and errors as sotto_safety_number, plus
 * SOTTO_ERR_BUFFER_TOO_SMALL. */
SOTTO_WUR int sotto_fingerprint_scannable(uint8_t *out, size_t cap, size_t *out_len,
                                          const uint8_t *local_id, size_t local_id_len,
                                          const uint8_t local_key[SOTTO_PUBKEY_LEN],
                                          const uint8_t *remote_id, size_t remote_id_len,
                                          const uint8_t remote_key[SOTTO_PUBKEY_LEN],
                                          uint32_t iterations);

/* The same payload with an explicit scannable version (1 or 2; anything else
 * is SOTTO_ERR_VERSION). Version 2 is libsignal 0.103's: 08 02 | ... with the
 * same two 32-byte hashes. */
SOTTO_WUR int sotto_fingerprint_scannable_version(uint8_t *out, size_t cap, size_t *out_len,
                                                  uint32_t version, const uint8_t *local_id,
                                                  size_t local_id_len,
                                                  const uint8_t local_key[SOTTO_PUBKEY_LEN],
                                                  const uint8_t *remote_id, size_t remote_id_len,
                                                  const uint8_t remote_key[SOTTO_PUBKEY_LEN],
                                                  uint32_t iterations);

/* Both of the above for the price of one (the hashing dominates): number
 * and/or scannable may be NULL. scannable must hold
 * SOTTO_FINGERPRINT_SCANNABLE_LEN bytes. */
SOTTO_WUR int sotto_fingerprint(char number[SOTTO_SAFETY_NUMBER_LEN + 1],
                                uint8_t scannable[SOTTO_FINGERPRINT_SCANNABLE_LEN],
                                const uint8_t *local_id, size_t local_id_len,
                                const uint8_t local_key[SOTTO_PUBKEY_LEN], const uint8_t *remote_id,
                                size_t remote_id_len, const uint8_t remote_key[SOTTO_PUBKEY_LEN],
                                uint32_t iterations);

/* Compares the payload scanned from the other phone (theirs: its local half
 * is the other party, its remote half is us) with ours, in constant time.
 * Returns 0 on a match, SOTTO_ERR_AUTH on a mismatch (a different key or
 * identifier on one side), SOTTO_ERR_VERSION if either payload is not
 * scannable version 1 or 2 or the two versions differ, SOTTO_ERR_MALFORMED / SOTTO_ERR_TRUNCATED /
 * SOTTO_ERR_TOO_LARGE for bytes that do not parse. */
SOTTO_WUR int sotto_fingerprint_compare_scannable(const uint8_t *ours, size_t ours_len,
                                                  const uint8_t *theirs, size_t theirs_len);

#ifdef __cplusplus
}
#endif
#endif

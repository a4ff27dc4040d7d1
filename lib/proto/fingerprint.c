/* SPDX-License-Identifier: Apache-2.0 */
/* fingerprint.c: safety numbers and their scannable payload
 * (notes/signal-v3.md 4.8; libsignal-protocol-c 2.3.3 fingerprint.c,
 * fingerprint version 0, scannable version 1) and libsignal 0.103
 * (rust/protocol/src/fingerprint.rs: scannable version 2, same hashes). */
#include <string.h>

#include <sotto/fingerprint.h>

#include "crypto/crypto.h"
#include "wire/wire.h"

#define FP_DIGITS_PER_SIDE (SOTTO_SAFETY_NUMBER_LEN / 2) /* 30 */
#define FP_CONTENT_LEN 32 /* bytes of each hash in the scannable payload */
#define FP_KEY_LEN SOTTO_SERIALIZED_PUBKEY_LEN

_Static_assert(SOTTO_SAFETY_NUMBER_LEN == 60, "six 5-digit groups per side");
_Static_assert(SOTTO_FINGERPRINT_SCANNABLE_LEN == 2 + 2 * (2 + 2 + FP_CONTENT_LEN),
               "scannable layout");

/* The iterated hash of one party. H_1 = SHA-512(version 0x0000 || K || id || K),
 * H_i = SHA-512(H_(i-1) || K): libsignal-c seeds its loop with
 * version || K || id and appends K in every round. */
static void fp_hash(uint8_t h[64], const uint8_t *id, size_t id_len, const uint8_t key[32],
                    uint32_t iterations) {
  uint8_t k[FP_KEY_LEN], first[2 + FP_KEY_LEN + SOTTO_MAX_STABLE_ID_LEN];
  size_t first_len = 2 + FP_KEY_LEN + id_len;
  uint32_t i;

  k[0] = SOTTO_DJB_TYPE;
  memcpy(k + 1, key, 32);
  first[0] = 0x00; /* fingerprint format version 0, big-endian u16 */
  first[1] = 0x00;
  memcpy(first + 2, k, FP_KEY_LEN);
  if (id_len > 0) memcpy(first + 2 + FP_KEY_LEN, id, id_len);
  sotto__sha512_3(h, first, first_len, k, FP_KEY_LEN, NULL, 0);
  for (i = 1; i < iterations; i++) sotto__sha512_3(h, h, 64, k, FP_KEY_LEN, NULL, 0);
}

/* 30 digits: six 5-byte big-endian chunks of h, each mod 100000, 5 digits. */
static void fp_digits(char out[FP_DIGITS_PER_SIDE], const uint8_t h[64]) {
  unsigned c, d;
  for (c = 0; c < 6; c++) {
    const uint8_t *p = h + 5 * c;
    uint64_t v = (uint64_t)p[0] << 32 | (uint64_t)p[1] << 24 | (uint64_t)p[2] << 16 |
                 (uint64_t)p[3] << 8 | p[4];
    uint32_t r = (uint32_t)(v % 100000);
    for (d = 5; d-- > 0;) {
      out[5 * c + d] = (char)('0' + r % 10);
      r /= 10;
    }
  }
}

static int fp_check_args(const uint8_t *local_id, size_t local_id_len, const uint8_t *local_key,
                         const uint8_t *remote_id, size_t remote_id_len, const uint8_t *remote_key,
                         uint32_t iterations) {
  if (local_key == NULL || remote_key == NULL) return SOTTO_ERR_USAGE;
  if ((local_id == NULL && local_id_len != 0) || (remote_id == NULL && remote_id_len != 0))
    return SOTTO_ERR_USAGE;
  if (iterations < SOTTO_FINGERPRINT_MIN_ITERATIONS || iterations > SOTTO_FINGERPRINT_MAX_ITERATIONS)
    return SOTTO_ERR_USAGE;
  if (local_id_len > SOTTO_MAX_STABLE_ID_LEN || remote_id_len > SOTTO_MAX_STABLE_ID_LEN)
    return SOTTO_ERR_TOO_LARGE;
  return 0;
}

/* CombinedFingerprints{1 version, 2 local{1 content}, 3 remote{1 content}};
 * scannable versions 1 and 2 carry no identifier and differ only in the
 * version number (libsignal's fingerprint.rs: same hashes, same layout). */
static int fp_scannable_write(uint8_t scannable[SOTTO_FINGERPRINT_SCANNABLE_LEN], uint32_t version,
                              const uint8_t hl[64], const uint8_t hr[64]) {
  struct sotto__wr w, sub;
  uint8_t inner[2 + FP_CONTENT_LEN];
  sotto__wr_init(&w, scannable, SOTTO_FINGERPRINT_SCANNABLE_LEN);
  sotto__pb_varint(&w, 1, version);
  sotto__wr_init(&sub, inner, sizeof inner);
  sotto__pb_bytes(&sub, 1, hl, FP_CONTENT_LEN);
  sotto__pb_bytes(&w, 2, inner, sub.len);
  sotto__wr_init(&sub, inner, sizeof inner);
  sotto__pb_bytes(&sub, 1, hr, FP_CONTENT_LEN);
  sotto__pb_bytes(&w, 3, inner, sub.len);
  if (w.err != 0 || sub.err != 0 || w.len != SOTTO_FINGERPRINT_SCANNABLE_LEN)
    return SOTTO_ERR_INTERNAL;
  return 0;
}

static int fp_version_ok(uint32_t version) {
  return version == SOTTO_FINGERPRINT_SCANNABLE_VERSION ||
         version == SOTTO_FINGERPRINT_SCANNABLE_VERSION_2;
}

static int fp_compute(char number[SOTTO_SAFETY_NUMBER_LEN + 1],
                      uint8_t scannable[SOTTO_FINGERPRINT_SCANNABLE_LEN], uint32_t version,
                      const uint8_t *local_id, size_t local_id_len, const uint8_t local_key[32],
                      const uint8_t *remote_id, size_t remote_id_len, const uint8_t remote_key[32],
                      uint32_t iterations) {
  uint8_t hl[64], hr[64];
  int rc;

  if ((rc = fp_check_args(local_id, local_id_len, local_key, remote_id, remote_id_len, remote_key,
                          iterations)) != 0)
    return rc;
  if ((rc = sotto__crypto_init()) != 0) return rc;
  fp_hash(hl, local_id, local_id_len, local_key, iterations);
  fp_hash(hr, remote_id, remote_id_len, remote_key, iterations);

  if (number != NULL) {
    char l[FP_DIGITS_PER_SIDE], r[FP_DIGITS_PER_SIDE];
    fp_digits(l, hl);
    fp_digits(r, hr);
    /* Smaller half first (strcmp order on equal-length digit strings). */
    if (memcmp(l, r, sizeof l) <= 0) {
      memcpy(number, l, sizeof l);
      memcpy(number + FP_DIGITS_PER_SIDE, r, sizeof r);
    } else {
      memcpy(number, r, sizeof r);
      memcpy(number + FP_DIGITS_PER_SIDE, l, sizeof l);
    }
    number[SOTTO_SAFETY_NUMBER_LEN] = '\0';
  }
  if (scannable != NULL) rc = fp_scannable_write(scannable, version, hl, hr);
  return rc;
}

int sotto_fingerprint(char number[SOTTO_SAFETY_NUMBER_LEN + 1],
                      uint8_t scannable[SOTTO_FINGERPRINT_SCANNABLE_LEN], const uint8_t *local_id,
                      size_t local_id_len, const uint8_t local_key[32], const uint8_t *remote_id,
                      size_t remote_id_len, const uint8_t remote_key[32], uint32_t iterations) {
  return fp_compute(number, scannable, SOTTO_FINGERPRINT_SCANNABLE_VERSION, local_id, local_id_len,
                    local_key, remote_id, remote_id_len, remote_key, iterations);
}

int sotto_safety_number(char out[SOTTO_SAFETY_NUMBER_LEN + 1], const uint8_t *local_id,
                        size_t local_id_len, const uint8_t local_key[32], const uint8_t *remote_id,
                        size_t remote_id_len, const uint8_t remote_key[32], uint32_t iterations) {
  if (out == NULL) return SOTTO_ERR_USAGE;
  return sotto_fingerprint(out, NULL, local_id, local_id_len, local_key, remote_id, remote_id_len,
                           remote_key, iterations);
}

int sotto_fingerprint_scannable(uint8_t *out, size_t cap, size_t *out_len, const uint8_t *local_id,
                                size_t local_id_len, const uint8_t local_key[32],
                                const uint8_t *remote_id, size_t remote_id_len,
                                const uint8_t remote_key[32], uint32_t iterations) {
  int rc;
  if (out_len != NULL) *out_len = 0;
  if (out_len == NULL || (out == NULL && cap != 0)) return SOTTO_ERR_USAGE;
  if ((rc = fp_check_args(local_id, local_id_len, local_key, remote_id, remote_id_len, remote_key,
                          iterations)) != 0)
    return rc;
  if (cap < SOTTO_FINGERPRINT_SCANNABLE_LEN) return SOTTO_ERR_BUFFER_TOO_SMALL;
  rc = fp_compute(NULL, out, SOTTO_FINGERPRINT_SCANNABLE_VERSION, local_id, local_id_len, local_key,
                  remote_id, remote_id_len, remote_key, iterations);
  if (rc == 0) *out_len = SOTTO_FINGERPRINT_SCANNABLE_LEN;
  return rc;
}

int sotto_fingerprint_scannable_version(uint8_t *out, size_t cap, size_t *out_len,
                                        uint32_t version, const uint8_t *local_id,
                                        size_t local_id_len, const uint8_t local_key[32],
                                        const uint8_t *remote_id, size_t remote_id_len,
                                        const uint8_t remote_key[32], uint32_t iterations) {
  int rc;
  if (out_len != NULL) *out_len = 0;
  if (out_len == NULL || (out == NULL && cap != 0)) return SOTTO_ERR_USAGE;
  if (!fp_version_ok(version)) return SOTTO_ERR_VERSION;
  if ((rc = fp_check_args(local_id, local_id_len, local_key, remote_id, remote_id_len, remote_key,
                          iterations)) != 0)
    return rc;
  if (cap < SOTTO_FINGERPRINT_SCANNABLE_LEN) return SOTTO_ERR_BUFFER_TOO_SMALL;
  rc = fp_compute(NULL, out, version, local_id, local_id_len, local_key, remote_id, remote_id_len,
                  remote_key, iterations);
  if (rc == 0) *out_len = SOTTO_FINGERPRINT_SCANNABLE_LEN;
  return rc;
}

/* ---- scanned payloads ---------------------------------------------------------- */

struct scannable {
  uint32_t version;
  const uint8_t *local, *remote; /* content, FP_CONTENT_LEN bytes each */
};

/* LogicalFingerprint{1 content, 2 identifier}: returns the content. The
 * identifier (version 0 only) is skipped like any unknown field. */
static int parse_logical(const uint8_t *p, size_t len, const uint8_t **content, size_t *content_len) {
  struct sotto__rd r;
  struct sotto__pb_field f;
  int rc, seen = 0;

  sotto__rd_init(&r, p, len);
  while ((rc = sotto__pb_next(&r, &f)) == 1) {
    if (f.num != 1) continue;
    if (f.wt != SOTTO__PB_LEN || seen++) return SOTTO_ERR_MALFORMED;
    *content = f.p;
    *content_len = f.len;
  }
  if (rc < 0) return rc;
  return seen ? 0 : SOTTO_ERR_MALFORMED;
}

/* CombinedFingerprints{1 version, 2 local, 3 remote}. Structure first
 * (malformed), then the version (an absent version is proto2's default 0),
 * then the content sizes that version 1 fixes. */
static int parse_scannable(struct scannable *s, const uint8_t *in, size_t len) {
  struct sotto__rd r;
  struct sotto__pb_field f;
  const uint8_t *lc = NULL, *rcn = NULL;
  size_t lc_len = 0, rc_len = 0;
  unsigned seen = 0;
  int rc;

  if (in == NULL && len != 0) return SOTTO_ERR_USAGE;
  if (len > SOTTO_FINGERPRINT_SCANNABLE_MAX_LEN) return SOTTO_ERR_TOO_LARGE;
  s->version = 0;
  sotto__rd_init(&r, in, len);
  while ((rc = sotto__pb_next(&r, &f)) == 1) {
    if (f.num >= 1 && f.num <= 3) {
      if (seen & (1u << f.num)) return SOTTO_ERR_MALFORMED;
      seen |= 1u << f.num;
    }
    switch (f.num) {
      case 1:
        if ((rc = sotto__pb_get_u32(&f, &s->version)) != 0) return rc;
        break;
      case 2:
        if (f.wt != SOTTO__PB_LEN) return SOTTO_ERR_MALFORMED;
        if ((rc = parse_logical(f.p, f.len, &lc, &lc_len)) != 0) return rc;
        break;
      case 3:
        if (f.wt != SOTTO__PB_LEN) return SOTTO_ERR_MALFORMED;
        if ((rc = parse_logical(f.p, f.len, &rcn, &rc_len)) != 0) return rc;
        break;
      default:
        break;
    }
  }
  if (rc < 0) return rc;
  if ((seen & 0x0C) != 0x0C) return SOTTO_ERR_MALFORMED; /* both halves required */
  if (!fp_version_ok(s->version)) return SOTTO_ERR_VERSION;
  if (lc_len != FP_CONTENT_LEN || rc_len != FP_CONTENT_LEN) return SOTTO_ERR_MALFORMED;
  s->local = lc;
  s->remote = rcn;
  return 0;
}

int sotto_fingerprint_compare_scannable(const uint8_t *ours, size_t ours_len, const uint8_t *theirs,
                                        size_t theirs_len) {
  struct scannable a, b;
  int rc, eq;

  if ((rc = parse_scannable(&a, ours, ours_len)) != 0) return rc;
  if ((rc = parse_scannable(&b, theirs, theirs_len)) != 0) return rc;
  /* Both phones must show the same version (libsignal: VersionMismatch). */
  if (a.version != b.version) return SOTTO_ERR_VERSION;
  /* Their local half is the other party (our remote) and vice versa. Both
   * comparisons always run, in constant time. */
  eq = sotto__ct_eq(a.local, b.remote, FP_CONTENT_LEN);
  eq &= sotto__ct_eq(a.remote, b.local, FP_CONTENT_LEN);
  return eq ? 0 : SOTTO_ERR_AUTH;
}

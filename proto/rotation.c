/* SPDX-License-Identifier: Apache-2.0 */
/* rotation.c: rotation statements, their chain and the client's walk along
 * it (rotation.h). */
#include "rotation.h"

#include <sodium.h>
#include <string.h>

#include "wire.h"

int sotto__rot_parse_statement(const uint8_t *p, size_t len, struct sotto_rot_statement *s) {
  struct sotto__rd r;
  memset(s, 0, sizeof *s);
  if (len != SOTTO_ROT_STATEMENT_LEN) return len < SOTTO_ROT_STATEMENT_LEN ? SOTTO_ERR_TRUNCATED : SOTTO_ERR_TRAILING;
  sotto__rd_init(&r, p, len);
  if (sotto__rd_u8(&r, &s->version) || sotto__rd_u64be(&r, &s->serial) ||
      sotto__rd_copy(&r, s->old_key, SOTTO_ROT_KEY_LEN) || sotto__rd_copy(&r, s->new_fp, SOTTO_ROT_FP_LEN) ||
      sotto__rd_copy(&r, s->new_key, SOTTO_ROT_KEY_LEN) || sotto__rd_u64be(&r, &s->not_before) ||
      sotto__rd_u64be(&r, &s->not_after) || sotto__rd_copy(&r, s->sig, SOTTO_ROT_SIG_LEN))
    return SOTTO_ERR_TRUNCATED;
  if (s->version != SOTTO_ROT_VERSION) return SOTTO_ERR_VERSION;
  return 0;
}

int sotto__rot_parse_chain(const uint8_t *p, size_t len, struct sotto_rot_statement *out, size_t max, size_t *n) {
  uint8_t count;
  size_t i;
  int rc;
  *n = 0;
  if (len < 1) return SOTTO_ERR_TRUNCATED;
  count = p[0];
  if (count > SOTTO_ROT_MAX_CHAIN || count > max) return SOTTO_ERR_TOO_LARGE;
  /* Size before content: the exact length is known from the count. */
  if (len - 1 < (size_t)count * SOTTO_ROT_STATEMENT_LEN) return SOTTO_ERR_TRUNCATED;
  if (len - 1 > (size_t)count * SOTTO_ROT_STATEMENT_LEN) return SOTTO_ERR_TRAILING;
  for (i = 0; i < count; i++)
    if ((rc = sotto__rot_parse_statement(p + 1 + i * SOTTO_ROT_STATEMENT_LEN, SOTTO_ROT_STATEMENT_LEN, &out[i])) != 0)
      return rc;
  *n = count;
  return 0;
}

static void put_body(struct sotto__wr *w, const struct sotto_rot_statement *s) {
  sotto__wr_u8(w, s->version);
  sotto__wr_u64be(w, s->serial);
  sotto__wr_bytes(w, s->old_key, SOTTO_ROT_KEY_LEN);
  sotto__wr_bytes(w, s->new_fp, SOTTO_ROT_FP_LEN);
  sotto__wr_bytes(w, s->new_key, SOTTO_ROT_KEY_LEN);
  sotto__wr_u64be(w, s->not_before);
  sotto__wr_u64be(w, s->not_after);
}

void sotto__rot_put_statement(struct sotto__wr *w, const struct sotto_rot_statement *s) {
  put_body(w, s);
  sotto__wr_bytes(w, s->sig, SOTTO_ROT_SIG_LEN);
}

void sotto__rot_put_chain(struct sotto__wr *w, const struct sotto_rot_statement *s, size_t n) {
  size_t i;
  if (n > SOTTO_ROT_MAX_CHAIN) {
    w->err = 1;
    return;
  }
  sotto__wr_u8(w, (uint8_t)n);
  for (i = 0; i < n; i++) sotto__rot_put_statement(w, &s[i]);
}

void sotto__rot_tbs(uint8_t out[SOTTO_ROT_TBS_LEN], const struct sotto_rot_statement *s) {
  struct sotto__wr w;
  memcpy(out, SOTTO_ROT_TAG, SOTTO_ROT_TAG_LEN);
  sotto__wr_init(&w, out + SOTTO_ROT_TAG_LEN, SOTTO_ROT_BODY_LEN);
  put_body(&w, s);
}

int sotto__rot_check_sig(const struct sotto_rot_statement *s) {
  uint8_t tbs[SOTTO_ROT_TBS_LEN];
  sotto__rot_tbs(tbs, s);
  return crypto_sign_verify_detached(s->sig, tbs, sizeof tbs, s->old_key) == 0 ? 0 : SOTTO_ERR_AUTH;
}

int sotto__rot_follow(const struct sotto_rot_statement *chain, size_t n, const uint8_t pinned_key[SOTTO_ROT_KEY_LEN],
                      uint64_t pinned_serial, const uint8_t presented_fp[SOTTO_ROT_FP_LEN],
                      const uint8_t presented_key[SOTTO_ROT_KEY_LEN], uint64_t now_s, uint64_t *new_serial) {
  uint8_t key[SOTTO_ROT_KEY_LEN], fp[SOTTO_ROT_FP_LEN];
  uint64_t serial = pinned_serial;
  size_t i;
  int linked = 0;
  *new_serial = 0;
  if (n > SOTTO_ROT_MAX_CHAIN) return SOTTO_ERR_AUTH;
  memcpy(key, pinned_key, sizeof key);
  memset(fp, 0, sizeof fp);
  for (i = 0; i < n; i++) {
    const struct sotto_rot_statement *s = &chain[i];
    int from_current = sodium_memcmp(s->old_key, key, sizeof key) == 0;
    if (s->serial <= serial) continue; /* history before our pin (or a replay): no step back */
    if (!from_current) {
      if (linked) return SOTTO_ERR_AUTH; /* a fork after the link we took */
      continue;                          /* history of another branch before our pin */
    }
    if (s->version != SOTTO_ROT_VERSION || s->not_before > s->not_after ||
        s->not_after - s->not_before > (uint64_t)SOTTO_ROT_MAX_VALIDITY_S || now_s < s->not_before ||
        now_s > s->not_after || sotto__rot_check_sig(s) != 0)
      return SOTTO_ERR_AUTH;
    memcpy(key, s->new_key, sizeof key);
    memcpy(fp, s->new_fp, sizeof fp);
    serial = s->serial;
    linked = 1;
  }
  if (!linked || sodium_memcmp(fp, presented_fp, sizeof fp) != 0 ||
      sodium_memcmp(key, presented_key, sizeof key) != 0)
    return SOTTO_ERR_AUTH;
  *new_serial = serial;
  return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* devlist.c: the signed device list of an account (sotto/devlist.h,
 * docs/multi-device.md). Pure functions: encode, sign, parse, verify. */
#include <string.h>

#include <sotto/devlist.h>
#include <sotto/keys.h>

#include "crypto/crypto.h"
#include "wire/wire.h"

#define MEMBER_CTX_LEN (sizeof(SOTTO_DEVLIST_MEMBER_CONTEXT) - 1)
#define LIST_CTX_LEN (sizeof(SOTTO_DEVLIST_CONTEXT) - 1)
#define MEMBER_MSG_MAX (MEMBER_CTX_LEN + 1 + SOTTO_DEVLIST_MAX_USERNAME + 32 + 4 + 32)

static int username_ok(const char *u, size_t len) {
  size_t i;
  if (len == 0 || len > SOTTO_DEVLIST_MAX_USERNAME) return 0;
  for (i = 0; i < len; i++) {
    char c = u[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) return 0;
  }
  return 1;
}

/* Well-formed UTF-8 (no overlongs, no surrogates, at most U+10FFFF) without
 * control characters (C0, DEL, C1), so a name is safe to show as it is. */
static int name_ok(const uint8_t *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t c = s[i];
    uint32_t cp;
    size_t k, n;
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7F) return 0;
      i++;
      continue;
    }
    if (c >= 0xC2 && c <= 0xDF) {
      n = 1;
      cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 2;
      cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 3;
      cp = c & 0x07;
    } else {
      return 0;
    }
    if (n > len - i - 1) return 0;
    for (k = 1; k <= n; k++) {
      if ((s[i + k] & 0xC0) != 0x80) return 0;
      cp = cp << 6 | (s[i + k] & 0x3F);
    }
    if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0x80 && cp <= 0x9F))
      return 0;
    i += n + 1;
  }
  return 1;
}

static size_t member_msg(uint8_t out[MEMBER_MSG_MAX], const char *username, size_t ulen,
                         const uint8_t account_key[32], uint32_t device_id, const uint8_t device_key[32]) {
  struct sotto__wr w;
  sotto__wr_init(&w, out, MEMBER_MSG_MAX);
  sotto__wr_bytes(&w, SOTTO_DEVLIST_MEMBER_CONTEXT, MEMBER_CTX_LEN);
  sotto__wr_u8(&w, (uint8_t)ulen);
  sotto__wr_bytes(&w, username, ulen);
  sotto__wr_bytes(&w, account_key, 32);
  sotto__wr_u32be(&w, device_id);
  sotto__wr_bytes(&w, device_key, 32);
  return w.err ? 0 : w.len;
}

int sotto_devlist_member_sign(uint8_t sig[SOTTO_SIGNATURE_LEN], const uint8_t device_priv[SOTTO_PRIVKEY_LEN],
                              const char *username, const uint8_t account_key[SOTTO_PUBKEY_LEN],
                              uint32_t device_id) {
  uint8_t msg[MEMBER_MSG_MAX], pub[32];
  size_t ulen, mlen;
  int rc;
  if (sig == NULL || device_priv == NULL || username == NULL || account_key == NULL) return SOTTO_ERR_USAGE;
  ulen = strnlen(username, SOTTO_DEVLIST_MAX_USERNAME + 1);
  if (!username_ok(username, ulen) || device_id == 0) return SOTTO_ERR_USAGE;
  if ((rc = sotto_public_key(pub, device_priv)) != 0) return rc;
  mlen = member_msg(msg, username, ulen, account_key, device_id, pub);
  if (mlen == 0) return SOTTO_ERR_INTERNAL;
  return sotto_sign(sig, device_priv, msg, mlen);
}

int sotto_devlist_member_verify(const char *username, const uint8_t account_key[SOTTO_PUBKEY_LEN],
                                uint32_t device_id, const uint8_t device_key[SOTTO_PUBKEY_LEN],
                                const uint8_t sig[SOTTO_SIGNATURE_LEN]) {
  uint8_t msg[MEMBER_MSG_MAX];
  size_t ulen, mlen;
  if (username == NULL || account_key == NULL || device_key == NULL || sig == NULL) return SOTTO_ERR_USAGE;
  ulen = strnlen(username, SOTTO_DEVLIST_MAX_USERNAME + 1);
  if (!username_ok(username, ulen) || device_id == 0) return SOTTO_ERR_USAGE;
  mlen = member_msg(msg, username, ulen, account_key, device_id, device_key);
  if (mlen == 0) return SOTTO_ERR_INTERNAL;
  return sotto_verify(device_key, msg, mlen, sig) == 0 ? 0 : SOTTO_ERR_AUTH;
}

/* Structure of a list in memory: what both sign and parse require. */
static int check_struct(const struct sotto_devlist *l) {
  size_t ulen = strnlen(l->username, sizeof l->username);
  unsigned i;
  if (ulen >= sizeof l->username || !username_ok(l->username, ulen)) return SOTTO_ERR_MALFORMED;
  if (l->version == 0) return SOTTO_ERR_MALFORMED;
  if (l->n == 0) return SOTTO_ERR_MALFORMED;
  if (l->n > SOTTO_DEVLIST_MAX_DEVICES) return SOTTO_ERR_TOO_LARGE;
  for (i = 0; i < l->n; i++) {
    const struct sotto_devlist_entry *e = &l->dev[i];
    size_t nlen = strnlen(e->name, sizeof e->name);
    if (nlen >= sizeof e->name) return SOTTO_ERR_TOO_LARGE;
    if (!name_ok((const uint8_t *)e->name, nlen)) return SOTTO_ERR_MALFORMED;
    if (e->device_id == 0 || (i > 0 && e->device_id <= l->dev[i - 1].device_id)) return SOTTO_ERR_MALFORMED;
  }
  return 0;
}

/* Writes everything the account signature covers (context excluded). */
static void write_body(struct sotto__wr *w, const struct sotto_devlist *l) {
  size_t ulen = strlen(l->username);
  unsigned i;
  sotto__wr_u8(w, SOTTO_DEVLIST_FORMAT);
  sotto__wr_u8(w, (uint8_t)ulen);
  sotto__wr_bytes(w, l->username, ulen);
  sotto__wr_bytes(w, l->account_key, 32);
  sotto__wr_u32be(w, l->version);
  sotto__wr_u8(w, (uint8_t)l->n);
  for (i = 0; i < l->n; i++) {
    const struct sotto_devlist_entry *e = &l->dev[i];
    size_t nlen = strlen(e->name);
    sotto__wr_u32be(w, e->device_id);
    sotto__wr_bytes(w, e->device_key, 32);
    sotto__wr_u8(w, (uint8_t)nlen);
    sotto__wr_bytes(w, e->name, nlen);
    sotto__wr_u64be(w, e->added_at_ms);
    sotto__wr_bytes(w, e->member_sig, 64);
  }
}

static int check_members(const struct sotto_devlist *l) {
  unsigned i;
  for (i = 0; i < l->n; i++) {
    const struct sotto_devlist_entry *e = &l->dev[i];
    if (sotto_devlist_member_verify(l->username, l->account_key, e->device_id, e->device_key, e->member_sig) !=
        0)
      return SOTTO_ERR_AUTH;
  }
  return 0;
}

int sotto_devlist_sign(struct sotto_devlist *l, const uint8_t account_priv[SOTTO_PRIVKEY_LEN], uint8_t *out,
                       size_t cap, size_t *out_len) {
  uint8_t buf[LIST_CTX_LEN + SOTTO_DEVLIST_MAX_LEN], pub[32];
  struct sotto__wr w;
  int rc;
  if (l == NULL || account_priv == NULL || out == NULL || out_len == NULL) return SOTTO_ERR_USAGE;
  *out_len = 0;
  if ((rc = check_struct(l)) != 0) return rc;
  if ((rc = sotto_public_key(pub, account_priv)) != 0) return rc;
  if (!sotto__ct_eq(pub, l->account_key, 32)) return SOTTO_ERR_USAGE;
  if ((rc = check_members(l)) != 0) return rc;
  sotto__wr_init(&w, buf, sizeof buf);
  sotto__wr_bytes(&w, SOTTO_DEVLIST_CONTEXT, LIST_CTX_LEN);
  write_body(&w, l);
  if (w.err) return SOTTO_ERR_INTERNAL;
  if (w.len - LIST_CTX_LEN + 64 > cap) return SOTTO_ERR_BUFFER_TOO_SMALL;
  if ((rc = sotto_sign(l->sig, account_priv, buf, w.len)) != 0) return rc;
  memcpy(out, buf + LIST_CTX_LEN, w.len - LIST_CTX_LEN);
  memcpy(out + w.len - LIST_CTX_LEN, l->sig, 64);
  *out_len = w.len - LIST_CTX_LEN + 64;
  return 0;
}

static int parse_inner(struct sotto_devlist *l, const uint8_t *in, size_t in_len) {
  uint8_t buf[LIST_CTX_LEN + SOTTO_DEVLIST_MAX_LEN];
  struct sotto__rd r;
  uint8_t fmt, ulen, n;
  const uint8_t *p;
  size_t body_len;
  unsigned i;
  int rc;

  sotto__rd_init(&r, in, in_len);
  if ((rc = sotto__rd_u8(&r, &fmt)) != 0) return rc;
  if (fmt != SOTTO_DEVLIST_FORMAT) return SOTTO_ERR_MALFORMED;
  if ((rc = sotto__rd_u8(&r, &ulen)) != 0) return rc;
  if (ulen > SOTTO_DEVLIST_MAX_USERNAME) return SOTTO_ERR_MALFORMED;
  if ((rc = sotto__rd_bytes(&r, ulen, &p)) != 0) return rc;
  if (!username_ok((const char *)p, ulen)) return SOTTO_ERR_MALFORMED;
  memcpy(l->username, p, ulen);
  l->username[ulen] = '\0';
  if ((rc = sotto__rd_copy(&r, l->account_key, 32)) != 0) return rc;
  if ((rc = sotto__rd_u32be(&r, &l->version)) != 0) return rc;
  if (l->version == 0) return SOTTO_ERR_MALFORMED;
  if ((rc = sotto__rd_u8(&r, &n)) != 0) return rc;
  if (n == 0) return SOTTO_ERR_MALFORMED;
  if (n > SOTTO_DEVLIST_MAX_DEVICES) return SOTTO_ERR_TOO_LARGE;
  l->n = n;
  for (i = 0; i < n; i++) {
    struct sotto_devlist_entry *e = &l->dev[i];
    uint8_t nlen;
    if ((rc = sotto__rd_u32be(&r, &e->device_id)) != 0) return rc;
    if (e->device_id == 0 || (i > 0 && e->device_id <= l->dev[i - 1].device_id)) return SOTTO_ERR_MALFORMED;
    if ((rc = sotto__rd_copy(&r, e->device_key, 32)) != 0) return rc;
    if ((rc = sotto__rd_u8(&r, &nlen)) != 0) return rc;
    if (nlen > SOTTO_DEVLIST_MAX_NAME) return SOTTO_ERR_TOO_LARGE;
    if ((rc = sotto__rd_bytes(&r, nlen, &p)) != 0) return rc;
    if (!name_ok(p, nlen)) return SOTTO_ERR_MALFORMED;
    memcpy(e->name, p, nlen);
    e->name[nlen] = '\0';
    if ((rc = sotto__rd_u64be(&r, &e->added_at_ms)) != 0) return rc;
    if ((rc = sotto__rd_copy(&r, e->member_sig, 64)) != 0) return rc;
  }
  body_len = r.off;
  if ((rc = sotto__rd_copy(&r, l->sig, 64)) != 0) return rc;
  if (sotto__rd_left(&r) != 0) return SOTTO_ERR_TRAILING;
  /* the body is at most SOTTO_DEVLIST_MAX_LEN - 64 by the limits above */
  if (body_len > SOTTO_DEVLIST_MAX_LEN - 64) return SOTTO_ERR_INTERNAL;
  memcpy(buf, SOTTO_DEVLIST_CONTEXT, LIST_CTX_LEN);
  memcpy(buf + LIST_CTX_LEN, in, body_len);
  if (sotto_verify(l->account_key, buf, LIST_CTX_LEN + body_len, l->sig) != 0) return SOTTO_ERR_AUTH;
  return check_members(l);
}

int sotto_devlist_parse(struct sotto_devlist *l, const uint8_t *in, size_t in_len) {
  int rc;
  if (l == NULL || (in == NULL && in_len != 0)) return SOTTO_ERR_USAGE;
  memset(l, 0, sizeof *l);
  if (in_len > SOTTO_DEVLIST_MAX_LEN) return SOTTO_ERR_TOO_LARGE;
  rc = parse_inner(l, in, in_len);
  if (rc != 0) memset(l, 0, sizeof *l);
  return rc;
}

int sotto_devlist_find(const struct sotto_devlist *l, uint32_t device_id) {
  unsigned i;
  if (l == NULL) return -1;
  for (i = 0; i < l->n && i < SOTTO_DEVLIST_MAX_DEVICES; i++)
    if (l->dev[i].device_id == device_id) return (int)i;
  return -1;
}

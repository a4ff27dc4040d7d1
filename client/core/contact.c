/* SPDX-License-Identifier: Apache-2.0 */
/* contact.c: contacts, trust on first use, verification, session records. */
#include "contact.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

#define CONTACT_VERSION 2 /* 1: without pending/held/sent fields (still read) */

static int contact_parse(struct contact *c, const uint8_t *v, size_t n) {
  struct rec_rd r;
  uint8_t ver = 0, has = 0, ver_ok = 0, pend = 0, sent = 0;
  uint32_t changes = 0;
  rec_rd_init(&r, v, n);
  rec_get_u8(&r, &ver);
  rec_get_cstr(&r, c->name, sizeof c->name);
  rec_get_u8(&r, &has);
  rec_get(&r, c->key, sizeof c->key);
  rec_get_u8(&r, &ver_ok);
  rec_get(&r, c->verified_key, sizeof c->verified_key);
  rec_get_u32(&r, &changes);
  if (ver == CONTACT_VERSION) {
    rec_get_u8(&r, &pend);
    rec_get(&r, c->pending_key, sizeof c->pending_key);
    rec_get_u32(&r, &c->n_held);
    rec_get_u8(&r, &sent);
    rec_get(&r, c->sent_key, sizeof c->sent_key);
  }
  if (rec_rd_end(&r) || (ver != CONTACT_VERSION && ver != 1) || has > 1 || ver_ok > 1 || pend > 1 || sent > 1)
    return STORE_E_CORRUPT;
  c->has_key = has;
  c->verified = ver_ok;
  c->key_changes = (int)changes;
  c->has_pending = pend;
  c->has_sent = sent;
  if (ver == 1 && has) {
    /* A version 1 contact: we sent to (or at least knew) its current key. */
    c->has_sent = 1;
    memcpy(c->sent_key, c->key, sizeof c->key);
  }
  return 0;
}

int contact_load(struct store *st, const char *name, struct contact *c) {
  char rn[64];
  uint8_t *v;
  size_t n;
  int rc;
  memset(c, 0, sizeof *c);
  snprintf(c->name, sizeof c->name, "%s", name);
  snprintf(rn, sizeof rn, "contact/%s", name);
  rc = store_get(st, rn, &v, &n);
  if (rc <= 0) return rc;
  rc = contact_parse(c, v, n);
  store_free_value(v, n);
  if (rc == 0 && strcmp(c->name, name) != 0) rc = STORE_E_CORRUPT;
  return rc ? rc : 1;
}

int contact_save(struct store *st, const struct contact *c) {
  struct rec_wr w;
  char rn[64];
  int rc;
  rec_wr_init(&w, 1024);
  rec_put_u8(&w, CONTACT_VERSION);
  rec_put_str16(&w, c->name, strlen(c->name));
  rec_put_u8(&w, (uint8_t)(c->has_key ? 1 : 0));
  rec_put(&w, c->key, sizeof c->key);
  rec_put_u8(&w, (uint8_t)(c->verified ? 1 : 0));
  rec_put(&w, c->verified_key, sizeof c->verified_key);
  rec_put_u32(&w, (uint32_t)c->key_changes);
  rec_put_u8(&w, (uint8_t)(c->has_pending ? 1 : 0));
  rec_put(&w, c->pending_key, sizeof c->pending_key);
  rec_put_u32(&w, c->n_held);
  rec_put_u8(&w, (uint8_t)(c->has_sent ? 1 : 0));
  rec_put(&w, c->sent_key, sizeof c->sent_key);
  snprintf(rn, sizeof rn, "contact/%s", c->name);
  rc = rec_wr_ok(&w) ? STORE_E_IO : store_put(st, rn, w.p, w.len);
  rec_wr_free(&w);
  return rc;
}

int contact_observe(struct contact *c, const uint8_t key[SOTTO_PUBKEY_LEN]) {
  if (!c->has_key) {
    memcpy(c->key, key, SOTTO_PUBKEY_LEN);
    c->has_key = 1;
    return KEY_NEW;
  }
  if (sodium_memcmp(c->key, key, SOTTO_PUBKEY_LEN) == 0) return KEY_SAME;
  memcpy(c->key, key, SOTTO_PUBKEY_LEN);
  c->key_changes++;
  return KEY_CHANGED;
}

int contact_blocked(const struct contact *c) {
  if (!c->verified) return 0;
  if (c->has_pending) return 1; /* a new key waits: nothing goes out until the user decides */
  return c->has_key && sodium_memcmp(c->verified_key, c->key, SOTTO_PUBKEY_LEN) != 0;
}

int client_identity_check(const struct contact *c, const uint8_t key[SOTTO_PUBKEY_LEN]) {
  if (!c->has_key) return IDENTITY_TRUSTED; /* trust on first use */
  return sodium_memcmp(c->key, key, SOTTO_PUBKEY_LEN) == 0 ? IDENTITY_TRUSTED : IDENTITY_HOLD;
}

void contact_accept_pending(struct contact *c, int verified) {
  if (!c->has_pending) return;
  if (!c->has_key || sodium_memcmp(c->key, c->pending_key, SOTTO_PUBKEY_LEN) != 0) c->key_changes++;
  memcpy(c->key, c->pending_key, SOTTO_PUBKEY_LEN);
  c->has_key = 1;
  c->has_pending = 0;
  sodium_memzero(c->pending_key, sizeof c->pending_key);
  /* Trusted without verification: no longer "verified" (for the old key),
   * so contact_blocked does not refuse, and the next send still asks. */
  c->verified = verified;
  if (verified) {
    memcpy(c->verified_key, c->key, SOTTO_PUBKEY_LEN);
    memcpy(c->sent_key, c->key, SOTTO_PUBKEY_LEN);
    c->has_sent = 1;
  }
}

void session_rec_name(char *out, size_t cap, const char *name, uint32_t device) {
  if (device <= 1) snprintf(out, cap, "session/%s", name);
  else snprintf(out, cap, "dsession/%s/%u", name, device);
}

int session_load(struct store *st, const char *name, struct sotto_session **out) {
  return session_load_dev(st, name, 1, out);
}

int session_save(struct store *st, const char *name, const struct sotto_session *s) {
  return session_save_dev(st, name, 1, s);
}

int session_load_dev(struct store *st, const char *name, uint32_t device, struct sotto_session **out) {
  char rn[64];
  uint8_t *v;
  size_t n;
  int rc;
  *out = NULL;
  session_rec_name(rn, sizeof rn, name, device);
  rc = store_get(st, rn, &v, &n);
  if (rc < 0) return rc;
  if (rc == 0) return sotto_session_new(out) ? STORE_E_IO : 0;
  rc = sotto_session_deserialize(out, v, n) ? STORE_E_CORRUPT : 1;
  store_free_value(v, n);
  return rc;
}

int session_save_dev(struct store *st, const char *name, uint32_t device, const struct sotto_session *s) {
  char rn[64];
  size_t cap = sotto_session_serialized_size(s), n;
  uint8_t *buf;
  int rc;
  if (cap == 0 || cap > SOTTO_MAX_SESSION_RECORD_LEN || !(buf = malloc(cap))) return STORE_E_IO;
  session_rec_name(rn, sizeof rn, name, device);
  rc = sotto_session_serialize(s, buf, cap, &n) ? STORE_E_IO : store_put(st, rn, buf, n);
  sodium_memzero(buf, cap);
  free(buf);
  return rc;
}

struct each_ctx {
  int (*cb)(void *ud, const struct contact *c);
  void *ud;
};

static int each_cb(void *ud, const char *name, const uint8_t *v, size_t n) {
  struct each_ctx *e = ud;
  struct contact c;
  int rc;
  (void)name;
  memset(&c, 0, sizeof c);
  if ((rc = contact_parse(&c, v, n)) != 0) return rc;
  return e->cb(e->ud, &c);
}

int contact_each(struct store *st, int (*cb)(void *ud, const struct contact *c), void *ud) {
  struct each_ctx e = {cb, ud};
  return store_scan(st, "contact/", each_cb, &e);
}

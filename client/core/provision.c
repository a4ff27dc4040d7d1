/* SPDX-License-Identifier: Apache-2.0 */
/* provision.c: the messages of linking a device (provision.h): the link
 * code, the new device's keys, the provisioning message and the reply.
 * Pure functions over bytes; every read goes through the bounded reader of
 * record.h, every length is capped before anything is copied, and on any
 * failure the output is zeroed. */
#include "provision.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "record.h"

#define KEYS_CTX "sotto link keys v1"
#define PROV_CTX "sotto provisioning v1"
#define FP_CTX "sotto device fingerprint v1"

static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";

/* ---- the code ---------------------------------------------------------------------- */

void prov_code_format(char out[PROV_CODE_TEXT_MAX], const uint8_t slot[PROV_SLOT_LEN],
                      const uint8_t secret[PROV_SECRET_LEN]) {
  uint8_t b[PROV_CODE_BYTES];
  size_t i, o = 0, bits = 0, n = 0;
  uint32_t acc = 0;
  memcpy(b, slot, PROV_SLOT_LEN);
  memcpy(b + PROV_SLOT_LEN, secret, PROV_SECRET_LEN);
  for (i = 0; i < sizeof b; i++) {
    acc = acc << 8 | b[i];
    bits += 8;
    while (bits >= 5) {
      if (n && n % 6 == 0) out[o++] = '-';
      out[o++] = b32[(acc >> (bits - 5)) & 31];
      bits -= 5;
      n++;
    }
  }
  if (bits) {
    if (n && n % 6 == 0) out[o++] = '-';
    out[o++] = b32[(acc << (5 - bits)) & 31];
  }
  out[o] = 0;
  sodium_memzero(b, sizeof b);
}

int prov_code_parse(uint8_t slot[PROV_SLOT_LEN], uint8_t secret[PROV_SECRET_LEN], const char *text) {
  uint8_t b[PROV_CODE_BYTES];
  size_t chars = 0, o = 0, bits = 0;
  uint32_t acc = 0;
  const char *p;
  int rc = -1;
  if (!text) return -1;
  for (p = text; *p; p++) {
    char ch = *p;
    const char *at;
    if (ch == '-' || ch == ' ') continue;
    if (ch >= 'A' && ch <= 'Z') ch = (char)(ch - 'A' + 'a');
    if (ch == 0 || (at = strchr(b32, ch)) == NULL || ++chars > PROV_CODE_CHARS) goto out;
    acc = (acc << 5 | (uint32_t)(at - b32)) & 0xFFFFu;
    bits += 5;
    if (bits >= 8) {
      b[o++] = (uint8_t)(acc >> (bits - 8));
      bits -= 8;
    }
  }
  /* 42 characters carry 210 bits: 208 of them and 2 zero bits. */
  if (chars != PROV_CODE_CHARS || o != PROV_CODE_BYTES || (acc & ((1u << bits) - 1)) != 0) goto out;
  memcpy(slot, b, PROV_SLOT_LEN);
  memcpy(secret, b + PROV_SLOT_LEN, PROV_SECRET_LEN);
  rc = 0;
out:
  sodium_memzero(b, sizeof b);
  return rc;
}

/* ---- keys ------------------------------------------------------------------------------ */

int prov_name_ok(const char *name) {
  size_t i, n = strlen(name);
  if (n > PROV_NAME_MAX) return 0;
  for (i = 0; i < n; i++)
    if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] > 0x7E) return 0;
  return 1;
}

static void keys_tag(uint8_t tag[PROV_TAG_LEN], const uint8_t *p, size_t len, const uint8_t secret[PROV_SECRET_LEN]) {
  crypto_generichash_state st;
  uint8_t k[32];
  crypto_generichash_init(&st, NULL, 0, sizeof k);
  crypto_generichash_update(&st, (const uint8_t *)KEYS_CTX, sizeof KEYS_CTX - 1);
  crypto_generichash_update(&st, secret, PROV_SECRET_LEN);
  crypto_generichash_final(&st, k, sizeof k);
  crypto_generichash(tag, PROV_TAG_LEN, p, len, k, sizeof k);
  sodium_memzero(k, sizeof k);
  sodium_memzero(&st, sizeof st);
}

int prov_keys_encode(uint8_t *out, size_t cap, size_t *len, const struct prov_keys *k,
                     const uint8_t secret[PROV_SECRET_LEN]) {
  size_t nl = strlen(k->name), n = 1 + 32 + 32 + 1 + nl;
  if (!prov_name_ok(k->name) || cap < n + PROV_TAG_LEN) return -1;
  out[0] = PROV_VERSION;
  memcpy(out + 1, k->identity, 32);
  memcpy(out + 33, k->eph, 32);
  out[65] = (uint8_t)nl;
  memcpy(out + 66, k->name, nl);
  keys_tag(out + n, out, n, secret);
  *len = n + PROV_TAG_LEN;
  return 0;
}

int prov_keys_decode(struct prov_keys *k, const uint8_t *p, size_t len, const uint8_t secret[PROV_SECRET_LEN]) {
  uint8_t tag[PROV_TAG_LEN];
  size_t nl;
  int rc;
  memset(k, 0, sizeof *k);
  if (len < 1 + 32 + 32 + 1 + PROV_TAG_LEN || p[0] != PROV_VERSION) return -1;
  nl = p[65];
  if (nl > PROV_NAME_MAX || len != 66 + nl + PROV_TAG_LEN) return -1;
  keys_tag(tag, p, 66 + nl, secret);
  rc = sodium_memcmp(tag, p + 66 + nl, PROV_TAG_LEN) == 0 ? 0 : -2;
  sodium_memzero(tag, sizeof tag);
  if (rc) return rc;
  memcpy(k->identity, p + 1, 32);
  memcpy(k->eph, p + 33, 32);
  memcpy(k->name, p + 66, nl);
  k->name[nl] = 0;
  if (!prov_name_ok(k->name)) {
    memset(k, 0, sizeof *k);
    return -1;
  }
  return 0;
}

/* ---- the payload --------------------------------------------------------------------- */

static void put_str8(struct rec_wr *w, const char *s) {
  size_t n = strlen(s);
  if (n > 255) {
    w->w.err = SOTTO_ERR_TOO_LARGE;
    return;
  }
  rec_put_u8(w, (uint8_t)n);
  rec_put(w, s, n);
}

/* A u8-length string into out (cap bytes with its NUL); no NUL inside. */
static int get_str8(struct rec_rd *r, char *out, size_t cap) {
  uint8_t n;
  const uint8_t *p;
  if (rec_get_u8(r, &n) || (size_t)n >= cap || rec_get_ptr(r, &p, n)) return -1;
  if (memchr(p, 0, n)) return rec_latch(r, SOTTO_ERR_MALFORMED);
  memcpy(out, p, n);
  out[n] = 0;
  return 0;
}

static int pin_ok(const char *pin) {
  size_t i, n = strlen(pin);
  if (n != 0 && n != 64) return 0;
  for (i = 0; i < n; i++)
    if (!((pin[i] >= '0' && pin[i] <= '9') || (pin[i] >= 'a' && pin[i] <= 'f'))) return 0;
  return 1;
}

static int server_ok(const char *s) {
  size_t i, n = strlen(s);
  if (n == 0 || n > PROV_MAX_SERVER) return 0;
  for (i = 0; i < n; i++)
    if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] > 0x7E) return 0;
  return 1;
}

/* Everything a decoded message must satisfy, and an encoded one too. */
static int msg_ok(const struct prov_msg *m) {
  size_t i, j;
  if (!sc_username_ok(m->username) || m->device_id < 2 || m->device_id > 0x7FFFFFFFu ||
      !server_ok(m->server) || !pin_ok(m->pin) || m->n_contacts > PROV_MAX_CONTACTS ||
      m->n_groups > PROV_MAX_GROUPS)
    return 0;
  for (i = 0; i < m->n_contacts; i++)
    if (!sc_username_ok(m->contacts[i].name) || (m->contacts[i].verified & ~1) != 0) return 0;
  for (i = 0; i < m->n_groups; i++) {
    const struct prov_group *g = &m->groups[i];
    if (!sc_group_name_ok(g->name) || g->n > GROUP_MAX_MEMBERS) return 0;
    for (j = 0; j < g->n; j++)
      if (!sc_username_ok(g->members[j])) return 0;
  }
  return 1;
}

int prov_payload_encode(uint8_t **out, size_t *len, const struct prov_msg *m, size_t max) {
  struct rec_wr w;
  size_t i, j;
  *out = NULL;
  *len = 0;
  if (!msg_ok(m)) return -1;
  rec_wr_init(&w, max);
  /* list_version 0: the version 1 payload (what a device 1 of before sent). */
  rec_put_u8(&w, m->list_version ? PROV_PAYLOAD_VERSION : 1);
  put_str8(&w, m->username);
  rec_put(&w, m->account_key, 32);
  rec_put_u32(&w, m->device_id);
  rec_put(&w, m->secret, 32);
  put_str8(&w, m->server);
  put_str8(&w, m->pin);
  rec_put_u16(&w, (uint16_t)m->n_contacts);
  for (i = 0; i < m->n_contacts; i++) {
    put_str8(&w, m->contacts[i].name);
    rec_put(&w, m->contacts[i].key, 32);
    rec_put_u8(&w, (uint8_t)(m->contacts[i].verified ? 1 : 0));
  }
  rec_put_u16(&w, (uint16_t)m->n_groups);
  for (i = 0; i < m->n_groups; i++) {
    const struct prov_group *g = &m->groups[i];
    rec_put(&w, g->gid, GROUP_ID_LEN);
    put_str8(&w, g->name);
    rec_put_u32(&w, g->epoch);
    rec_put_u8(&w, (uint8_t)g->n);
    for (j = 0; j < g->n; j++) put_str8(&w, g->members[j]);
  }
  if (m->list_version) rec_put_u32(&w, m->list_version);
  if (rec_wr_ok(&w)) {
    int rc = w.w.err == SOTTO_ERR_BUFFER_TOO_SMALL || w.w.err == SOTTO_ERR_TOO_LARGE ? -2 : -1;
    rec_wr_free(&w);
    return rc;
  }
  *out = w.p;
  *len = w.len;
  return 0;
}

int prov_payload_decode(struct prov_msg *m, const uint8_t *p, size_t len) {
  struct rec_rd r;
  uint8_t ver = 0, flags, nm;
  uint16_t n;
  size_t i, j;
  memset(m, 0, sizeof *m);
  rec_rd_init(&r, p, len);
  if (rec_get_u8(&r, &ver) || (ver != 1 && ver != PROV_PAYLOAD_VERSION)) goto bad;
  if (get_str8(&r, m->username, sizeof m->username) || rec_get(&r, m->account_key, 32) ||
      rec_get_u32(&r, &m->device_id) || rec_get(&r, m->secret, 32) || get_str8(&r, m->server, sizeof m->server) ||
      get_str8(&r, m->pin, sizeof m->pin) || rec_get_u16(&r, &n) || n > PROV_MAX_CONTACTS)
    goto bad;
  m->n_contacts = n;
  for (i = 0; i < m->n_contacts; i++) {
    if (get_str8(&r, m->contacts[i].name, sizeof m->contacts[i].name) || rec_get(&r, m->contacts[i].key, 32) ||
        rec_get_u8(&r, &flags) || flags > 1)
      goto bad;
    m->contacts[i].verified = flags;
  }
  if (rec_get_u16(&r, &n) || n > PROV_MAX_GROUPS) goto bad;
  m->n_groups = n;
  for (i = 0; i < m->n_groups; i++) {
    struct prov_group *g = &m->groups[i];
    if (rec_get(&r, g->gid, GROUP_ID_LEN) || get_str8(&r, g->name, sizeof g->name) || rec_get_u32(&r, &g->epoch) ||
        rec_get_u8(&r, &nm) || nm > GROUP_MAX_MEMBERS)
      goto bad;
    g->n = nm;
    for (j = 0; j < g->n; j++)
      if (get_str8(&r, g->members[j], sizeof g->members[j])) goto bad;
  }
  /* Version 2: the list floor, at least 1 (0 is how version 1 is told). */
  if (ver == PROV_PAYLOAD_VERSION && (rec_get_u32(&r, &m->list_version) || m->list_version == 0)) goto bad;
  if (rec_rd_end(&r) || !msg_ok(m)) goto bad;
  return 0;
bad:
  sodium_memzero(m, sizeof *m);
  return -1;
}

/* ---- sealing ---------------------------------------------------------------------------- */

/* The AEAD key and additional data of a provisioning message. */
static int prov_key(uint8_t key[32], const uint8_t dh_priv[32], const uint8_t dh_pub[32],
                    const uint8_t sender_pub[32], const struct prov_keys *k, const uint8_t slot[PROV_SLOT_LEN],
                    const uint8_t secret[PROV_SECRET_LEN]) {
  crypto_generichash_state st;
  uint8_t dh[32];
  if (crypto_scalarmult(dh, dh_priv, dh_pub) != 0) return -1; /* an all-zero shared point */
  crypto_generichash_init(&st, NULL, 0, 32);
  crypto_generichash_update(&st, (const uint8_t *)PROV_CTX, sizeof PROV_CTX - 1);
  crypto_generichash_update(&st, dh, sizeof dh);
  crypto_generichash_update(&st, secret, PROV_SECRET_LEN);
  crypto_generichash_update(&st, slot, PROV_SLOT_LEN);
  crypto_generichash_update(&st, k->identity, 32);
  crypto_generichash_update(&st, k->eph, 32);
  crypto_generichash_update(&st, sender_pub, 32);
  crypto_generichash_final(&st, key, 32);
  sodium_memzero(dh, sizeof dh);
  sodium_memzero(&st, sizeof st);
  return 0;
}

static size_t prov_ad(uint8_t ad[sizeof PROV_CTX - 1 + PROV_SLOT_LEN + 64], const struct prov_keys *k,
                      const uint8_t slot[PROV_SLOT_LEN]) {
  size_t o = sizeof PROV_CTX - 1;
  memcpy(ad, PROV_CTX, o);
  memcpy(ad + o, slot, PROV_SLOT_LEN);
  memcpy(ad + o + PROV_SLOT_LEN, k->identity, 32);
  memcpy(ad + o + PROV_SLOT_LEN + 32, k->eph, 32);
  return o + PROV_SLOT_LEN + 64;
}

int prov_seal(uint8_t **out, size_t *len, const struct prov_msg *m, const struct prov_keys *k,
              const uint8_t slot[PROV_SLOT_LEN], const uint8_t secret[PROV_SECRET_LEN]) {
  uint8_t *pt = NULL, *b = NULL, e_priv[32], e_pub[32], key[32], ad[sizeof PROV_CTX - 1 + PROV_SLOT_LEN + 64];
  size_t pl = 0, adl;
  unsigned long long cl = 0;
  int rc;
  *out = NULL;
  *len = 0;
  rc = prov_payload_encode(&pt, &pl, m, PROV_MAX_BLOB - PROV_HDR_LEN - crypto_aead_xchacha20poly1305_ietf_ABYTES);
  if (rc) return rc;
  crypto_box_keypair(e_pub, e_priv);
  if (prov_key(key, e_priv, k->eph, e_pub, k, slot, secret) != 0 ||
      (b = malloc(PROV_HDR_LEN + pl + crypto_aead_xchacha20poly1305_ietf_ABYTES)) == NULL) {
    rc = -1;
    goto out;
  }
  b[0] = PROV_VERSION;
  memcpy(b + 1, e_pub, 32);
  randombytes_buf(b + 33, 24);
  adl = prov_ad(ad, k, slot);
  crypto_aead_xchacha20poly1305_ietf_encrypt(b + PROV_HDR_LEN, &cl, pt, pl, ad, adl, NULL, b + 33, key);
  *out = b;
  *len = PROV_HDR_LEN + (size_t)cl;
  b = NULL;
out:
  free(b);
  sodium_memzero(pt, pl);
  free(pt);
  sodium_memzero(e_priv, sizeof e_priv);
  sodium_memzero(key, sizeof key);
  return rc;
}

int prov_open(struct prov_msg *m, const uint8_t *blob, size_t len, const struct prov_keys *k,
              const uint8_t eph_priv[SOTTO_PRIVKEY_LEN], const uint8_t slot[PROV_SLOT_LEN],
              const uint8_t secret[PROV_SECRET_LEN]) {
  uint8_t *pt, key[32], ad[sizeof PROV_CTX - 1 + PROV_SLOT_LEN + 64];
  unsigned long long pl = 0;
  size_t cl, adl;
  int rc;
  memset(m, 0, sizeof *m);
  if (len < PROV_HDR_LEN + crypto_aead_xchacha20poly1305_ietf_ABYTES || len > PROV_MAX_BLOB ||
      blob[0] != PROV_VERSION)
    return -1;
  cl = len - PROV_HDR_LEN;
  if ((pt = malloc(cl)) == NULL) return -1;
  if (prov_key(key, eph_priv, blob + 1, blob + 1, k, slot, secret) != 0) {
    free(pt);
    return -2;
  }
  adl = prov_ad(ad, k, slot);
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(pt, &pl, NULL, blob + PROV_HDR_LEN, cl, ad, adl, blob + 33, key) !=
      0) {
    rc = -2;
  } else {
    rc = prov_payload_decode(m, pt, (size_t)pl);
  }
  sodium_memzero(pt, cl);
  free(pt);
  sodium_memzero(key, sizeof key);
  return rc;
}

/* ---- reply, fingerprint ------------------------------------------------------------------ */

void prov_reply_encode(uint8_t out[PROV_REPLY_LEN], const uint8_t sig[SOTTO_SIGNATURE_LEN]) {
  out[0] = PROV_VERSION;
  memcpy(out + 1, sig, SOTTO_SIGNATURE_LEN);
}

int prov_reply_decode(uint8_t sig[SOTTO_SIGNATURE_LEN], const uint8_t *p, size_t len) {
  if (len != PROV_REPLY_LEN || p[0] != PROV_VERSION) return -1;
  memcpy(sig, p + 1, SOTTO_SIGNATURE_LEN);
  return 0;
}

void prov_fingerprint(char out[PROV_FINGERPRINT_LEN + 1], const uint8_t key[SOTTO_PUBKEY_LEN]) {
  crypto_hash_sha256_state st;
  uint8_t h[32];
  size_t i, o = 0;
  crypto_hash_sha256_init(&st);
  crypto_hash_sha256_update(&st, (const uint8_t *)FP_CTX, sizeof FP_CTX - 1);
  crypto_hash_sha256_update(&st, key, SOTTO_PUBKEY_LEN);
  crypto_hash_sha256_final(&st, h);
  for (i = 0; i < 8; i++) {
    uint32_t v = (uint32_t)h[4 * i] << 24 | (uint32_t)h[4 * i + 1] << 16 | (uint32_t)h[4 * i + 2] << 8 | h[4 * i + 3];
    o += (size_t)snprintf(out + o, PROV_FINGERPRINT_LEN + 1 - o, "%s%05u", i ? " " : "", (unsigned)(v % 100000));
  }
}

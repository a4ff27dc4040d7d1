/* SPDX-License-Identifier: Apache-2.0 */
/* proto.c: frame and message codec of the sotto-server protocol (see proto.h
 * and docs/protocol-server.md). Everything goes through lib/wire's bounded
 * reader; no function here allocates. */
#include "proto.h"

#include <sodium.h>
#include <string.h>

#include "wire.h"

const char *sotto__srv_code_str(unsigned code) {
  switch (code) {
#define SOTTO_SRV_X_STR(name, value, msg) \
  case value:                             \
    return msg;
    SOTTO_SRV_CODES(SOTTO_SRV_X_STR)
#undef SOTTO_SRV_X_STR
  }
  return "unknown error";
}

int sotto__srv_frame_len(const uint8_t hdr[4], size_t max_body, uint32_t *body_len) {
  uint32_t n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 | (uint32_t)hdr[2] << 8 | hdr[3];
  if (n < SOTTO_SRV_BODY_HDR) return SOTTO_ERR_MALFORMED;
  if (n > max_body) return SOTTO_ERR_TOO_LARGE;
  *body_len = n;
  return 0;
}

int sotto__srv_frame_parse(const uint8_t *body, size_t len, struct sotto_srv_frame *f) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, body, len);
  if ((rc = sotto__rd_u8(&r, &f->type)) != 0) return rc;
  if ((rc = sotto__rd_u32be(&r, &f->req_id)) != 0) return rc;
  f->p = body + r.off;
  f->len = sotto__rd_left(&r);
  return 0;
}

void sotto__srv_frame_hdr(uint8_t out[9], uint8_t type, uint32_t req_id, size_t payload_len) {
  uint32_t n = (uint32_t)(payload_len + SOTTO_SRV_BODY_HDR);
  out[0] = (uint8_t)(n >> 24);
  out[1] = (uint8_t)(n >> 16);
  out[2] = (uint8_t)(n >> 8);
  out[3] = (uint8_t)n;
  out[4] = type;
  out[5] = (uint8_t)(req_id >> 24);
  out[6] = (uint8_t)(req_id >> 16);
  out[7] = (uint8_t)(req_id >> 8);
  out[8] = (uint8_t)req_id;
}

int sotto__srv_username_ok(const uint8_t *s, size_t len) {
  size_t i;
  if (len < SOTTO_SRV_USER_MIN || len > SOTTO_SRV_USER_MAX) return 0;
  for (i = 0; i < len; i++) {
    uint8_t c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.')) return 0;
  }
  return 1;
}

int sotto__srv_username_new_ok(const uint8_t *s, size_t len) {
  size_t i;
  if (!sotto__srv_username_ok(s, len)) return 0;
  if (!(s[0] >= 'a' && s[0] <= 'z')) return 0;
  if (s[len - 1] == '.' || s[len - 1] == '_') return 0;
  for (i = 1; i < len; i++)
    if ((s[i] == '.' || s[i] == '_') && (s[i - 1] == '.' || s[i - 1] == '_')) return 0;
  return 1;
}

void sotto__srv_username_canon(const uint8_t *s, size_t len, char out[SOTTO_SRV_USER_MAX + 1]) {
  char tmp[SOTTO_SRV_USER_MAX + 1];
  size_t i, n = 0, m = 0;
  if (len > SOTTO_SRV_USER_MAX) len = SOTTO_SRV_USER_MAX;
  for (i = 0; i < len; i++) {
    uint8_t c = s[i];
    if (c == '.' || c == '_') continue;
    tmp[n++] = c == '0' ? 'o' : c == '1' ? 'l' : (char)c;
  }
  for (i = 0; i < n; i++) {
    if (i + 1 < n && tmp[i] == 'r' && tmp[i + 1] == 'n') {
      out[m++] = 'm';
      i++;
    } else if (i + 1 < n && tmp[i] == 'v' && tmp[i + 1] == 'v') {
      out[m++] = 'w';
      i++;
    } else {
      out[m++] = tmp[i];
    }
  }
  out[m] = 0;
}

/* ---- field readers ------------------------------------------------------- */

static int rd_u16(struct sotto__rd *r, uint16_t *v) {
  const uint8_t *p;
  int rc = sotto__rd_bytes(r, 2, &p);
  if (rc == 0) *v = (uint16_t)(p[0] << 8 | p[1]);
  return rc;
}

/* A u8-length string of at most max bytes. */
static int rd_str8(struct sotto__rd *r, size_t max, struct sotto_srv_str *s) {
  uint8_t n;
  size_t off = r->off;
  int rc;
  if ((rc = sotto__rd_u8(r, &n)) != 0) return rc;
  if (n > max) {
    r->off = off;
    return SOTTO_ERR_TOO_LARGE;
  }
  s->len = n;
  if ((rc = sotto__rd_bytes(r, n, &s->p)) != 0) r->off = off;
  return rc;
}

/* A u16-length blob of 1..max bytes. */
static int rd_blob16(struct sotto__rd *r, size_t max, const uint8_t **p, size_t *len) {
  uint16_t n;
  size_t off = r->off;
  int rc;
  if ((rc = rd_u16(r, &n)) != 0) return rc;
  if (n == 0 || n > max) {
    r->off = off;
    return n == 0 ? SOTTO_ERR_MALFORMED : SOTTO_ERR_TOO_LARGE;
  }
  *len = n;
  if ((rc = sotto__rd_bytes(r, n, p)) != 0) r->off = off;
  return rc;
}

static int rd_blob_id(struct sotto__rd *r, struct sotto_srv_blob_id *b) {
  int rc;
  if ((rc = sotto__rd_u32be(r, &b->id)) != 0) return rc;
  return rd_blob16(r, SOTTO_SRV_MAX_KEY_BLOB, &b->p, &b->len);
}

static int rd_username(struct sotto__rd *r, struct sotto_srv_str *s) {
  int rc = rd_str8(r, SOTTO_SRV_USER_MAX, s);
  if (rc == 0 && !sotto__srv_username_ok(s->p, s->len)) return SOTTO_ERR_MALFORMED;
  return rc;
}

static int rd_end(const struct sotto__rd *r) { return sotto__rd_left(r) ? SOTTO_ERR_TRAILING : 0; }

#define TRY(x)                   \
  do {                           \
    if ((rc = (x)) != 0) return rc; \
  } while (0)

void sotto__srv_put_err_list(struct sotto__wr *w, uint16_t code, const char *msg, const uint8_t *list,
                             size_t list_len) {
  sotto__srv_put_err(w, code, msg);
  sotto__wr_u8(w, (uint8_t)(list_len >> 8));
  sotto__wr_u8(w, (uint8_t)list_len);
  sotto__wr_bytes(w, list, list_len);
}

/* ---- requests ------------------------------------------------------------ */

int sotto__srv_parse_hello(const uint8_t *p, size_t len, struct sotto_srv_hello *m) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  m->features = 0;
  TRY(rd_u16(&r, &m->version));
  /* Later versions may append fields: a newer client's hello must still
   * parse so that it gets the version error rather than "malformed". */
  if (m->version >= SOTTO_SRV_VERSION_MIN && m->version <= SOTTO_SRV_VERSION) {
    /* Canonical: the features byte is there only when it is not 0. */
    if (sotto__rd_left(&r) == 1) {
      TRY(sotto__rd_u8(&r, &m->features));
      if (m->features == 0) return SOTTO_ERR_MALFORMED;
    }
    TRY(rd_end(&r));
  }
  return 0;
}

int sotto__srv_parse_register(const uint8_t *p, size_t len, struct sotto_srv_register *m) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  /* The username is read raw so that the server can answer "invalid
   * username" rather than "malformed" for a well-formed frame. */
  TRY(rd_str8(&r, 255, &m->username));
  TRY(rd_blob16(&r, SOTTO_SRV_MAX_IDENTITY, &m->identity.p, &m->identity.len));
  return rd_end(&r);
}

int sotto__srv_parse_auth(const uint8_t *p, size_t len, struct sotto_srv_auth *m) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_username(&r, &m->username));
  TRY(sotto__rd_u32be(&r, &m->device_id));
  TRY(sotto__rd_bytes(&r, SOTTO_SRV_SECRET_LEN, &m->secret));
  return rd_end(&r);
}

int sotto__srv_parse_keys(const uint8_t *p, size_t len, struct sotto_srv_keys *m) {
  struct sotto__rd r;
  int rc;
  uint16_t i;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_u8(&r, &m->flags));
  if (m->flags & ~(SOTTO_SRV_KEYS_SIGNED | SOTTO_SRV_KEYS_LAST_RESORT)) return SOTTO_ERR_MALFORMED;
  if (m->flags & SOTTO_SRV_KEYS_SIGNED) TRY(rd_blob_id(&r, &m->signed_prekey));
  if (m->flags & SOTTO_SRV_KEYS_LAST_RESORT) TRY(rd_blob_id(&r, &m->last_resort));
  /* Counts are capped before the loop; the arrays are fixed-size. */
  TRY(rd_u16(&r, &m->n_ec));
  if (m->n_ec > SOTTO_SRV_MAX_KEYS_PER_UPLOAD) return SOTTO_ERR_TOO_LARGE;
  for (i = 0; i < m->n_ec; i++) TRY(rd_blob_id(&r, &m->ec[i]));
  TRY(rd_u16(&r, &m->n_kem));
  if (m->n_kem > SOTTO_SRV_MAX_KEYS_PER_UPLOAD) return SOTTO_ERR_TOO_LARGE;
  for (i = 0; i < m->n_kem; i++) TRY(rd_blob_id(&r, &m->kem[i]));
  return rd_end(&r);
}

int sotto__srv_parse_bundle_req(const uint8_t *p, size_t len, struct sotto_srv_target *m) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_username(&r, &m->username));
  TRY(sotto__rd_u32be(&r, &m->device_id));
  return rd_end(&r);
}

int sotto__srv_parse_devices_req(const uint8_t *p, size_t len, struct sotto_srv_target *m) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_username(&r, &m->username));
  m->device_id = 0;
  return rd_end(&r);
}

int sotto__srv_parse_send(const uint8_t *p, size_t len, size_t max_body, struct sotto_srv_send *m) {
  struct sotto__rd r;
  uint32_t n;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_username(&r, &m->username));
  TRY(sotto__rd_u32be(&r, &m->device_id));
  TRY(sotto__rd_u8(&r, &m->type));
  TRY(sotto__rd_u32be(&r, &n));
  if (n == 0) return SOTTO_ERR_MALFORMED;
  if (n > max_body) return SOTTO_ERR_TOO_LARGE;
  TRY(sotto__rd_bytes(&r, n, &m->body));
  m->body_len = n;
  return rd_end(&r);
}

int sotto__srv_parse_send_multi(const uint8_t *p, size_t len, size_t max_body, struct sotto_srv_send_multi *m) {
  struct sotto__rd r;
  uint32_t n;
  size_t i;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_username(&r, &m->username));
  TRY(sotto__rd_u8(&r, &m->n));
  if (m->n == 0) return SOTTO_ERR_MALFORMED;
  if (m->n > SOTTO_SRV_MAX_DEVICES) return SOTTO_ERR_TOO_LARGE;
  for (i = 0; i < m->n; i++) {
    TRY(sotto__rd_u32be(&r, &m->e[i].device_id));
    if (m->e[i].device_id == 0 || (i > 0 && m->e[i].device_id <= m->e[i - 1].device_id)) return SOTTO_ERR_MALFORMED;
    TRY(sotto__rd_u8(&r, &m->e[i].type));
    TRY(sotto__rd_u32be(&r, &n));
    if (n == 0) return SOTTO_ERR_MALFORMED;
    if (n > max_body) return SOTTO_ERR_TOO_LARGE;
    TRY(sotto__rd_bytes(&r, n, &m->e[i].body));
    m->e[i].body_len = n;
  }
  return rd_end(&r);
}

int sotto__srv_parse_sent_multi(const uint8_t *p, size_t len, uint64_t *timestamp_ms, uint64_t *ids, size_t max,
                                size_t *n) {
  struct sotto__rd r;
  uint8_t cnt;
  size_t i;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_u64be(&r, timestamp_ms));
  TRY(sotto__rd_u8(&r, &cnt));
  if (cnt == 0 || cnt > SOTTO_SRV_MAX_DEVICES) return SOTTO_ERR_MALFORMED;
  if (cnt > max) return SOTTO_ERR_TOO_LARGE;
  for (i = 0; i < cnt; i++) TRY(sotto__rd_u64be(&r, &ids[i]));
  *n = cnt;
  return rd_end(&r);
}

int sotto__srv_parse_ack(const uint8_t *p, size_t len, uint64_t *id) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_u64be(&r, id));
  return rd_end(&r);
}

int sotto__srv_parse_device_remove(const uint8_t *p, size_t len, uint32_t *device_id) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_u32be(&r, device_id));
  if (*device_id == 0) return SOTTO_ERR_MALFORMED;
  return rd_end(&r);
}

int sotto__srv_parse_devlist(const uint8_t *p, size_t len, const uint8_t **list, size_t *list_len) {
  struct sotto__rd r;
  uint16_t n;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_u16(&r, &n));
  if (n == 0) return SOTTO_ERR_MALFORMED;
  if (n > SOTTO_SRV_MAX_DEVLIST) return SOTTO_ERR_TOO_LARGE;
  TRY(sotto__rd_bytes(&r, n, list));
  *list_len = n;
  return rd_end(&r);
}

int sotto__srv_parse_set_recovery(const uint8_t *p, size_t len, const uint8_t **code) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_bytes(&r, SOTTO_SRV_RECOVERY_LEN, code));
  return rd_end(&r);
}

int sotto__srv_parse_recover(const uint8_t *p, size_t len, struct sotto_srv_recover *m) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_username(&r, &m->username));
  TRY(sotto__rd_bytes(&r, SOTTO_SRV_RECOVERY_LEN, &m->code));
  TRY(rd_blob16(&r, SOTTO_SRV_MAX_IDENTITY, &m->identity.p, &m->identity.len));
  return rd_end(&r);
}

int sotto__srv_parse_epoch(const uint8_t *p, size_t len, uint64_t *epoch) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_u64be(&r, epoch));
  if (*epoch > INT64_MAX) return SOTTO_ERR_MALFORMED; /* stored as a signed 64-bit integer */
  return rd_end(&r);
}

/* ---- answers and pushes -------------------------------------------------- */

int sotto__srv_parse_err(const uint8_t *p, size_t len, struct sotto_srv_err *m) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_u16(&r, &m->code));
  TRY(rd_str8(&r, 255, &m->msg));
  return rd_end(&r);
}

int sotto__srv_parse_err_list(const uint8_t *p, size_t len, struct sotto_srv_err *m, const uint8_t **list,
                              size_t *list_len) {
  struct sotto__rd r;
  const uint8_t *l = NULL;
  uint16_t n;
  int rc;
  *list = NULL;
  *list_len = 0;
  sotto__rd_init(&r, p, len);
  TRY(rd_u16(&r, &m->code));
  TRY(rd_str8(&r, 255, &m->msg));
  if (!sotto__rd_left(&r)) return 0;
  if (m->code != SOTTO_SRV_E_MISMATCHED_DEVICES) return SOTTO_ERR_TRAILING;
  TRY(rd_u16(&r, &n));
  if (n == 0) return SOTTO_ERR_MALFORMED;
  if (n > SOTTO_SRV_MAX_DEVLIST) return SOTTO_ERR_TOO_LARGE;
  TRY(sotto__rd_bytes(&r, n, &l));
  TRY(rd_end(&r));
  *list = l; /* handed out only when the whole answer parsed */
  *list_len = n;
  return 0;
}

int sotto__srv_parse_env(const uint8_t *p, size_t len, struct sotto_srv_env *m) {
  struct sotto__rd r;
  uint32_t n;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_u64be(&r, &m->id));
  TRY(rd_username(&r, &m->sender));
  TRY(sotto__rd_u32be(&r, &m->sender_device));
  TRY(sotto__rd_u32be(&r, &m->device_id));
  TRY(sotto__rd_u8(&r, &m->type));
  TRY(sotto__rd_u64be(&r, &m->timestamp_ms));
  TRY(sotto__rd_u32be(&r, &n));
  if (n > SOTTO_SRV_MAX_MESSAGE) return SOTTO_ERR_TOO_LARGE;
  TRY(sotto__rd_bytes(&r, n, &m->body));
  m->body_len = n;
  return rd_end(&r);
}

int sotto__srv_parse_bundle(const uint8_t *p, size_t len, struct sotto_srv_bundle *m) {
  struct sotto__rd r;
  uint8_t has;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_blob16(&r, SOTTO_SRV_MAX_IDENTITY, &m->identity.p, &m->identity.len));
  TRY(rd_blob_id(&r, &m->signed_prekey));
  TRY(sotto__rd_u8(&r, &has));
  if (has > 1) return SOTTO_ERR_MALFORMED;
  m->has_ec = has;
  if (has) TRY(rd_blob_id(&r, &m->ec));
  TRY(sotto__rd_u8(&r, &m->kem_kind));
  if (m->kem_kind > 2) return SOTTO_ERR_MALFORMED;
  if (m->kem_kind) TRY(rd_blob_id(&r, &m->kem));
  return rd_end(&r);
}

int sotto__srv_parse_devices_seen(const uint8_t *p, size_t len, uint32_t *ids, uint32_t *days, size_t max, size_t *n,
                                  int *has_days) {
  struct sotto__rd r;
  uint16_t cnt, i;
  uint32_t day;
  int rc;
  sotto__rd_init(&r, p, len);
  *has_days = 0;
  TRY(rd_u16(&r, &cnt));
  if (cnt > max || cnt > SOTTO_SRV_MAX_DEVICES) return SOTTO_ERR_TOO_LARGE;
  for (i = 0; i < cnt; i++) TRY(sotto__rd_u32be(&r, &ids[i]));
  /* The trailer is all or nothing: exactly one day per id. */
  if (sotto__rd_left(&r) != 0) {
    if (sotto__rd_left(&r) != (size_t)cnt * 4) return SOTTO_ERR_MALFORMED;
    for (i = 0; i < cnt; i++) {
      TRY(sotto__rd_u32be(&r, &day));
      if (days) days[i] = day;
    }
    *has_days = 1;
  }
  *n = cnt;
  return rd_end(&r);
}

int sotto__srv_parse_devices(const uint8_t *p, size_t len, uint32_t *ids, size_t max, size_t *n) {
  int has;
  return sotto__srv_parse_devices_seen(p, len, ids, NULL, max, n, &has);
}

/* ---- encoders ------------------------------------------------------------ */

void sotto__srv_put_str8(struct sotto__wr *w, const void *p, size_t len) {
  if (len > 255) {
    w->err = SOTTO_ERR_TOO_LARGE;
    return;
  }
  sotto__wr_u8(w, (uint8_t)len);
  sotto__wr_bytes(w, p, len);
}

void sotto__srv_put_blob16(struct sotto__wr *w, const void *p, size_t len) {
  if (len > 0xFFFF) {
    w->err = SOTTO_ERR_TOO_LARGE;
    return;
  }
  sotto__wr_u8(w, (uint8_t)(len >> 8));
  sotto__wr_u8(w, (uint8_t)len);
  sotto__wr_bytes(w, p, len);
}

void sotto__srv_put_blob_id(struct sotto__wr *w, const struct sotto_srv_blob_id *b) {
  sotto__wr_u32be(w, b->id);
  sotto__srv_put_blob16(w, b->p, b->len);
}

void sotto__srv_put_keys(struct sotto__wr *w, const struct sotto_srv_keys *m) {
  uint16_t i;
  sotto__wr_u8(w, m->flags);
  if (m->flags & SOTTO_SRV_KEYS_SIGNED) sotto__srv_put_blob_id(w, &m->signed_prekey);
  if (m->flags & SOTTO_SRV_KEYS_LAST_RESORT) sotto__srv_put_blob_id(w, &m->last_resort);
  sotto__wr_u8(w, (uint8_t)(m->n_ec >> 8));
  sotto__wr_u8(w, (uint8_t)m->n_ec);
  for (i = 0; i < m->n_ec && i < SOTTO_SRV_MAX_KEYS_PER_UPLOAD; i++) sotto__srv_put_blob_id(w, &m->ec[i]);
  sotto__wr_u8(w, (uint8_t)(m->n_kem >> 8));
  sotto__wr_u8(w, (uint8_t)m->n_kem);
  for (i = 0; i < m->n_kem && i < SOTTO_SRV_MAX_KEYS_PER_UPLOAD; i++) sotto__srv_put_blob_id(w, &m->kem[i]);
}

void sotto__srv_put_env(struct sotto__wr *w, const struct sotto_srv_env *m) {
  sotto__wr_u64be(w, m->id);
  sotto__srv_put_str8(w, m->sender.p, m->sender.len);
  sotto__wr_u32be(w, m->sender_device);
  sotto__wr_u32be(w, m->device_id);
  sotto__wr_u8(w, m->type);
  sotto__wr_u64be(w, m->timestamp_ms);
  sotto__wr_u32be(w, (uint32_t)m->body_len);
  sotto__wr_bytes(w, m->body, m->body_len);
}

void sotto__srv_put_bundle(struct sotto__wr *w, const struct sotto_srv_bundle *m) {
  sotto__srv_put_blob16(w, m->identity.p, m->identity.len);
  sotto__srv_put_blob_id(w, &m->signed_prekey);
  sotto__wr_u8(w, m->has_ec ? 1 : 0);
  if (m->has_ec) sotto__srv_put_blob_id(w, &m->ec);
  sotto__wr_u8(w, m->kem_kind);
  if (m->kem_kind) sotto__srv_put_blob_id(w, &m->kem);
}

void sotto__srv_put_err(struct sotto__wr *w, uint16_t code, const char *msg) {
  size_t n = strlen(msg);
  if (n > SOTTO_SRV_MAX_ERRMSG) n = SOTTO_SRV_MAX_ERRMSG;
  sotto__wr_u8(w, (uint8_t)(code >> 8));
  sotto__wr_u8(w, (uint8_t)code);
  sotto__srv_put_str8(w, msg, n);
}

/* ---- requests ------------------------------------------------------------ */

void sotto__srv_put_hello_req(struct sotto__wr *w, uint16_t version, uint8_t features) {
  sotto__wr_u8(w, (uint8_t)(version >> 8));
  sotto__wr_u8(w, (uint8_t)version);
  if (features) sotto__wr_u8(w, features);
}

void sotto__srv_put_register_req(struct sotto__wr *w, const char *user, const uint8_t *identity, size_t len) {
  sotto__srv_put_str8(w, user, strlen(user));
  sotto__srv_put_blob16(w, identity, len);
}

void sotto__srv_put_auth_req(struct sotto__wr *w, const char *user, uint32_t device_id,
                             const uint8_t secret[SOTTO_SRV_SECRET_LEN]) {
  sotto__srv_put_str8(w, user, strlen(user));
  sotto__wr_u32be(w, device_id);
  sotto__wr_bytes(w, secret, SOTTO_SRV_SECRET_LEN);
}

void sotto__srv_put_devices_req(struct sotto__wr *w, const char *user) { sotto__srv_put_str8(w, user, strlen(user)); }

void sotto__srv_put_send_multi(struct sotto__wr *w, const struct sotto_srv_send_multi *m) {
  size_t i;
  sotto__srv_put_str8(w, m->username.p, m->username.len);
  sotto__wr_u8(w, m->n);
  for (i = 0; i < m->n && i < SOTTO_SRV_MAX_DEVICES; i++) {
    sotto__wr_u32be(w, m->e[i].device_id);
    sotto__wr_u8(w, m->e[i].type);
    sotto__wr_u32be(w, (uint32_t)m->e[i].body_len);
    sotto__wr_bytes(w, m->e[i].body, m->e[i].body_len);
  }
}

void sotto__srv_put_sent_multi(struct sotto__wr *w, uint64_t timestamp_ms, const uint64_t *ids, size_t n) {
  size_t i;
  sotto__wr_u64be(w, timestamp_ms);
  sotto__wr_u8(w, (uint8_t)n);
  for (i = 0; i < n; i++) sotto__wr_u64be(w, ids[i]);
}

void sotto__srv_put_devlist(struct sotto__wr *w, const uint8_t *list, size_t len) {
  sotto__srv_put_blob16(w, list, len);
}

void sotto__srv_put_bundle_req(struct sotto__wr *w, const char *user, uint32_t device_id) {
  sotto__srv_put_str8(w, user, strlen(user));
  sotto__wr_u32be(w, device_id);
}

void sotto__srv_put_send(struct sotto__wr *w, const char *user, uint32_t device_id, uint8_t type,
                         const uint8_t *body, size_t body_len) {
  sotto__srv_put_str8(w, user, strlen(user));
  sotto__wr_u32be(w, device_id);
  sotto__wr_u8(w, type);
  sotto__wr_u32be(w, (uint32_t)body_len);
  sotto__wr_bytes(w, body, body_len);
}

void sotto__srv_put_u64_req(struct sotto__wr *w, uint64_t v) { sotto__wr_u64be(w, v); }

void sotto__srv_put_device_remove(struct sotto__wr *w, uint32_t device_id) { sotto__wr_u32be(w, device_id); }

void sotto__srv_put_recover_req(struct sotto__wr *w, const char *user, const uint8_t code[SOTTO_SRV_RECOVERY_LEN],
                                const uint8_t *identity, size_t len) {
  sotto__srv_put_str8(w, user, strlen(user));
  sotto__wr_bytes(w, code, SOTTO_SRV_RECOVERY_LEN);
  sotto__srv_put_blob16(w, identity, len);
}

/* ---- answers and pushes ---------------------------------------------------- */

void sotto__srv_put_hello_ok(struct sotto__wr *w, uint16_t version, uint32_t max_frame, uint32_t max_message) {
  sotto__wr_u8(w, (uint8_t)(version >> 8));
  sotto__wr_u8(w, (uint8_t)version);
  sotto__wr_u32be(w, max_frame);
  sotto__wr_u32be(w, max_message);
}

void sotto__srv_put_creds(struct sotto__wr *w, uint32_t device_id, const uint8_t secret[SOTTO_SRV_SECRET_LEN]) {
  sotto__wr_u32be(w, device_id);
  sotto__wr_bytes(w, secret, SOTTO_SRV_SECRET_LEN);
}

void sotto__srv_put_counts(struct sotto__wr *w, uint32_t ec, uint32_t kem) {
  sotto__wr_u32be(w, ec);
  sotto__wr_u32be(w, kem);
}

void sotto__srv_put_devices(struct sotto__wr *w, const uint32_t *ids, size_t n) {
  size_t i;
  sotto__wr_u8(w, (uint8_t)(n >> 8));
  sotto__wr_u8(w, (uint8_t)n);
  for (i = 0; i < n; i++) sotto__wr_u32be(w, ids[i]);
}

void sotto__srv_put_devices_days(struct sotto__wr *w, const uint32_t *days, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) sotto__wr_u32be(w, days[i]);
}

void sotto__srv_put_sent(struct sotto__wr *w, uint64_t id, uint64_t timestamp_ms) {
  sotto__wr_u64be(w, id);
  sotto__wr_u64be(w, timestamp_ms);
}

void sotto__srv_put_epoch_ok(struct sotto__wr *w, uint64_t old) { sotto__wr_u64be(w, old); }

/* ---- NOTICE ----------------------------------------------------------------- */

int sotto__srv_parse_notice_body(const uint8_t *p, size_t len, struct sotto_srv_notice *m) {
  struct sotto__rd r;
  uint8_t pl = 0, i;
  const uint8_t *peer = NULL;
  m->n_items = 0;
  m->count = 0;
  m->peer.p = NULL;
  m->peer.len = 0;
  if (len > SOTTO_SRV_NOTICE_MAX_BODY) return SOTTO_ERR_TOO_LARGE;
  sotto__rd_init(&r, p, len);
  if (sotto__rd_u8(&r, &m->kind) || sotto__rd_u8(&r, &pl)) return SOTTO_ERR_TRUNCATED;
  if (m->kind != SOTTO_SRV_NOTICE_EXPIRED_SENT && m->kind != SOTTO_SRV_NOTICE_EXPIRED_RECEIVED)
    return SOTTO_ERR_MALFORMED;
  if (pl > SOTTO_SRV_USER_MAX) return SOTTO_ERR_TOO_LARGE;
  if (sotto__rd_bytes(&r, pl, &peer)) return SOTTO_ERR_TRUNCATED;
  if (pl && !sotto__srv_username_ok(peer, pl)) return SOTTO_ERR_MALFORMED;
  if (sotto__rd_u32be(&r, &m->count) || sotto__rd_u8(&r, &m->n_items)) return SOTTO_ERR_TRUNCATED;
  if (m->n_items > SOTTO_SRV_NOTICE_MAX_ITEMS) {
    m->n_items = 0;
    return SOTTO_ERR_TOO_LARGE;
  }
  if (m->count == 0 || m->count < m->n_items) {
    m->n_items = 0;
    return SOTTO_ERR_MALFORMED;
  }
  if (sotto__rd_left(&r) != (size_t)m->n_items * 16) {
    i = m->n_items;
    m->n_items = 0;
    return sotto__rd_left(&r) < (size_t)i * 16 ? SOTTO_ERR_TRUNCATED : SOTTO_ERR_TRAILING;
  }
  for (i = 0; i < m->n_items; i++)
    if (sotto__rd_u64be(&r, &m->items[i].id) || sotto__rd_u64be(&r, &m->items[i].timestamp_ms)) return SOTTO_ERR_TRUNCATED;
  m->peer.p = peer;
  m->peer.len = pl;
  return 0;
}

int sotto__srv_parse_notice(const uint8_t *p, size_t len, struct sotto_srv_notice *m) {
  struct sotto__rd r;
  memset(m, 0, sizeof *m);
  sotto__rd_init(&r, p, len);
  if (sotto__rd_u64be(&r, &m->id) || sotto__rd_u64be(&r, &m->timestamp_ms)) return SOTTO_ERR_TRUNCATED;
  return sotto__srv_parse_notice_body(p + 16, len - 16, m);
}

void sotto__srv_put_notice_body(struct sotto__wr *w, const struct sotto_srv_notice *m) {
  uint8_t i;
  if (m->n_items > SOTTO_SRV_NOTICE_MAX_ITEMS || m->peer.len > SOTTO_SRV_USER_MAX) {
    w->err = 1;
    return;
  }
  sotto__wr_u8(w, m->kind);
  sotto__srv_put_str8(w, m->peer.p, m->peer.len);
  sotto__wr_u32be(w, m->count);
  sotto__wr_u8(w, m->n_items);
  for (i = 0; i < m->n_items; i++) {
    sotto__wr_u64be(w, m->items[i].id);
    sotto__wr_u64be(w, m->items[i].timestamp_ms);
  }
}

void sotto__srv_put_notice(struct sotto__wr *w, uint64_t id, uint64_t timestamp_ms, const uint8_t *body, size_t len) {
  sotto__wr_u64be(w, id);
  sotto__wr_u64be(w, timestamp_ms);
  sotto__wr_bytes(w, body, len);
}

/* ---- key transparency ------------------------------------------------------ */

static int rd_blob32(struct sotto__rd *r, size_t max, const uint8_t **p, size_t *len) {
  uint32_t n;
  size_t off = r->off;
  int rc;
  if ((rc = sotto__rd_u32be(r, &n)) != 0) return rc;
  if (n > max) {
    r->off = off;
    return SOTTO_ERR_TOO_LARGE;
  }
  *len = n;
  if ((rc = sotto__rd_bytes(r, n, p)) != 0) r->off = off;
  return rc;
}

int sotto__srv_parse_kt_search_req(const uint8_t *p, size_t len, struct sotto_srv_str *user) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_username(&r, user));
  return rd_end(&r);
}

int sotto__srv_parse_kt_consistency_req(const uint8_t *p, size_t len, uint64_t *old_size) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_u64be(&r, old_size));
  if (*old_size == 0 || *old_size > (1ull << 62)) return SOTTO_ERR_MALFORMED;
  return rd_end(&r);
}

int sotto__srv_parse_kt_updates_req(const uint8_t *p, size_t len, struct sotto_srv_kt_range *m) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_u64be(&r, &m->first));
  TRY(rd_u16(&r, &m->count));
  if (m->first >= (1ull << 62) || m->count == 0 || m->count > SOTTO_SRV_KT_MAX_UPDATES) return SOTTO_ERR_MALFORMED;
  return rd_end(&r);
}

int sotto__srv_parse_kt_cosign_req(const uint8_t *p, size_t len, struct sotto_srv_kt_cosign *m) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_bytes(&r, SOTTO_SRV_KT_PK_LEN, &m->witness_pk));
  TRY(sotto__rd_bytes(&r, SOTTO_SRV_KT_HEAD_LEN, &m->head));
  TRY(sotto__rd_bytes(&r, SOTTO_SRV_KT_COSIG_LEN, &m->cosig));
  return rd_end(&r);
}

int sotto__srv_parse_kt_head(const uint8_t *p, size_t len, struct sotto_srv_kt_head *m) {
  struct sotto__rd r;
  uint8_t n;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_bytes(&r, SOTTO_SRV_KT_HEAD_LEN, &m->head));
  TRY(sotto__rd_u8(&r, &n));
  if (n > SOTTO_SRV_KT_MAX_COSIGS) return SOTTO_ERR_TOO_LARGE;
  m->n_cosigs = n;
  TRY(sotto__rd_bytes(&r, (size_t)n * SOTTO_SRV_KT_COSIG_LEN, &m->cosigs));
  return rd_end(&r);
}

int sotto__srv_parse_kt_proof(const uint8_t *p, size_t len, struct sotto_srv_kt_proof *m) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_bytes(&r, SOTTO_SRV_KT_HEAD_LEN, &m->head));
  TRY(rd_blob32(&r, SOTTO_SRV_KT_MAX_PROOF, &m->proof, &m->proof_len));
  return rd_end(&r);
}

int sotto__srv_parse_kt_updates(const uint8_t *p, size_t len, struct sotto_srv_kt_entry *e, size_t max,
                                size_t max_update, size_t *n) {
  struct sotto__rd r;
  uint16_t cnt, i;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_u16(&r, &cnt));
  if (cnt > max || cnt > SOTTO_SRV_KT_MAX_UPDATES) return SOTTO_ERR_TOO_LARGE;
  for (i = 0; i < cnt; i++) {
    TRY(sotto__rd_bytes(&r, SOTTO_SRV_KT_HEAD_LEN, &e[i].head));
    TRY(rd_blob32(&r, max_update, &e[i].update, &e[i].update_len));
  }
  *n = cnt;
  return rd_end(&r);
}

void sotto__srv_kt_list_label(char out[SOTTO_SRV_KT_LIST_LABEL_MAX + 1], const char *user) {
  memcpy(out, SOTTO_SRV_KT_LIST_PREFIX, 8);
  sotto__srv_username_canon((const uint8_t *)user, strlen(user), out + 8);
}

void sotto__srv_kt_list_value(uint8_t out[SOTTO_SRV_KT_LIST_VALUE_LEN], uint32_t version, const uint8_t *list,
                              size_t len) {
  out[0] = (uint8_t)(version >> 24);
  out[1] = (uint8_t)(version >> 16);
  out[2] = (uint8_t)(version >> 8);
  out[3] = (uint8_t)version;
  crypto_hash_sha256(out + 4, list, len);
}

int sotto__srv_parse_kt_versions_req(const uint8_t *p, size_t len, struct sotto_srv_kt_versions_req *m) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_u8(&r, &m->kind));
  TRY(sotto__rd_u32be(&r, &m->from));
  TRY(sotto__rd_u8(&r, &m->count));
  if (m->kind > 1 || m->from > 0x7FFFFFFFu || m->count == 0 || m->count > SOTTO_SRV_KT_MAX_VERSIONS)
    return SOTTO_ERR_MALFORMED;
  TRY(rd_username(&r, &m->user));
  return rd_end(&r);
}

int sotto__srv_parse_kt_versions(const uint8_t *p, size_t len, struct sotto_srv_kt_versions *m) {
  struct sotto__rd r;
  uint8_t n, i;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_bytes(&r, SOTTO_SRV_KT_HEAD_LEN, &m->head));
  TRY(sotto__rd_u8(&r, &n));
  if (n == 0 || n > SOTTO_SRV_KT_MAX_VERSIONS) return SOTTO_ERR_MALFORMED;
  for (i = 0; i < n; i++) {
    TRY(rd_blob32(&r, SOTTO_SRV_KT_MAX_VERSION_PROOF, &m->v[i].proof, &m->v[i].proof_len));
    if (m->v[i].proof_len == 0) return SOTTO_ERR_MALFORMED;
    TRY(rd_blob32(&r, SOTTO_SRV_MAX_DEVLIST, &m->v[i].list, &m->v[i].list_len));
  }
  m->n = n;
  return rd_end(&r);
}

void sotto__srv_put_kt_versions_req(struct sotto__wr *w, uint8_t kind, uint32_t from, uint8_t count, const char *user) {
  sotto__wr_u8(w, kind);
  sotto__wr_u32be(w, from);
  sotto__wr_u8(w, count);
  sotto__srv_put_str8(w, user, strlen(user));
}

void sotto__srv_put_kt_search_req(struct sotto__wr *w, const char *user) { sotto__srv_put_str8(w, user, strlen(user)); }

void sotto__srv_put_kt_updates_req(struct sotto__wr *w, uint64_t first, uint16_t count) {
  sotto__wr_u64be(w, first);
  sotto__wr_u8(w, (uint8_t)(count >> 8));
  sotto__wr_u8(w, (uint8_t)count);
}

void sotto__srv_put_kt_cosign_req(struct sotto__wr *w, const uint8_t pk[SOTTO_SRV_KT_PK_LEN],
                                  const uint8_t head[SOTTO_SRV_KT_HEAD_LEN],
                                  const uint8_t cosig[SOTTO_SRV_KT_COSIG_LEN]) {
  sotto__wr_bytes(w, pk, SOTTO_SRV_KT_PK_LEN);
  sotto__wr_bytes(w, head, SOTTO_SRV_KT_HEAD_LEN);
  sotto__wr_bytes(w, cosig, SOTTO_SRV_KT_COSIG_LEN);
}

void sotto__srv_put_kt_head(struct sotto__wr *w, const uint8_t head[SOTTO_SRV_KT_HEAD_LEN], const uint8_t *cosigs,
                            size_t n_cosigs) {
  if (n_cosigs > SOTTO_SRV_KT_MAX_COSIGS) {
    w->err = SOTTO_ERR_TOO_LARGE;
    return;
  }
  sotto__wr_bytes(w, head, SOTTO_SRV_KT_HEAD_LEN);
  sotto__wr_u8(w, (uint8_t)n_cosigs);
  sotto__wr_bytes(w, cosigs, n_cosigs * SOTTO_SRV_KT_COSIG_LEN);
}

void sotto__srv_put_kt_proof(struct sotto__wr *w, const uint8_t head[SOTTO_SRV_KT_HEAD_LEN], const uint8_t *proof,
                             size_t len) {
  if (len > SOTTO_SRV_KT_MAX_PROOF) {
    w->err = SOTTO_ERR_TOO_LARGE;
    return;
  }
  sotto__wr_bytes(w, head, SOTTO_SRV_KT_HEAD_LEN);
  sotto__wr_u32be(w, (uint32_t)len);
  sotto__wr_bytes(w, proof, len);
}

void sotto__srv_put_kt_entry(struct sotto__wr *w, const uint8_t head[SOTTO_SRV_KT_HEAD_LEN], const uint8_t *update,
                             size_t len) {
  if (len > UINT32_MAX) {
    w->err = SOTTO_ERR_TOO_LARGE;
    return;
  }
  sotto__wr_bytes(w, head, SOTTO_SRV_KT_HEAD_LEN);
  sotto__wr_u32be(w, (uint32_t)len);
  sotto__wr_bytes(w, update, len);
}

int sotto__srv_kt_name_ok(const uint8_t *p, size_t len) {
  size_t i;
  if (len == 0 || len > SOTTO_SRV_KT_NAME_MAX) return 0;
  for (i = 0; i < len; i++) {
    uint8_t ch = p[i];
    if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
          ch == '_' || ch == '-'))
      return 0;
  }
  return 1;
}

int sotto__srv_parse_kt_config(const uint8_t *p, size_t len, struct sotto_srv_kt_config *m) {
  struct sotto__rd r;
  uint8_t n, i;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_bytes(&r, SOTTO_SRV_KT_PK_LEN, &m->sig_pk));
  TRY(sotto__rd_bytes(&r, SOTTO_SRV_KT_PK_LEN, &m->vrf_pk));
  TRY(sotto__rd_u8(&r, &n));
  if (n > SOTTO_SRV_KT_MAX_WITNESSES) return SOTTO_ERR_TOO_LARGE;
  m->n = n;
  for (i = 0; i < n; i++) {
    TRY(rd_str8(&r, SOTTO_SRV_KT_NAME_MAX, &m->w[i].name));
    if (!sotto__srv_kt_name_ok(m->w[i].name.p, m->w[i].name.len)) return SOTTO_ERR_MALFORMED;
    TRY(sotto__rd_bytes(&r, SOTTO_SRV_KT_PK_LEN, &m->w[i].pk));
  }
  return rd_end(&r);
}

void sotto__srv_put_kt_config(struct sotto__wr *w, const struct sotto_srv_kt_config *m) {
  size_t i;
  if (m->n > SOTTO_SRV_KT_MAX_WITNESSES) {
    w->err = SOTTO_ERR_TOO_LARGE;
    return;
  }
  sotto__wr_bytes(w, m->sig_pk, SOTTO_SRV_KT_PK_LEN);
  sotto__wr_bytes(w, m->vrf_pk, SOTTO_SRV_KT_PK_LEN);
  sotto__wr_u8(w, (uint8_t)m->n);
  for (i = 0; i < m->n; i++) {
    sotto__srv_put_str8(w, m->w[i].name.p, m->w[i].name.len);
    sotto__wr_bytes(w, m->w[i].pk, SOTTO_SRV_KT_PK_LEN);
  }
}

/* ---- linking (proto.h, "linking") ------------------------------------------ */

int sotto__srv_parse_link_req(uint8_t type, const uint8_t *p, size_t len, struct sotto_srv_link *m) {
  struct sotto__rd r;
  uint32_t n;
  int rc;
  memset(m, 0, sizeof *m);
  sotto__rd_init(&r, p, len);
  switch (type) {
  case SOTTO_SRV_LINK_OPEN:
    TRY(rd_blob16(&r, SOTTO_SRV_LINK_MAX_KEYS, &m->data, &m->data_len));
    break;
  case SOTTO_SRV_LINK_PUT:
    TRY(sotto__rd_bytes(&r, SOTTO_SRV_LINK_CODE_LEN, &m->code));
    TRY(sotto__rd_u32be(&r, &n));
    if (n > SOTTO_SRV_LINK_MAX_BLOB) return SOTTO_ERR_TOO_LARGE;
    TRY(sotto__rd_bytes(&r, n, &m->data));
    m->data_len = n;
    if (n == 0) m->data = NULL;
    break;
  case SOTTO_SRV_LINK_GET:
    TRY(sotto__rd_bytes(&r, SOTTO_SRV_LINK_CODE_LEN, &m->code));
    break;
  case SOTTO_SRV_LINK_REPLY:
    TRY(sotto__rd_bytes(&r, SOTTO_SRV_LINK_CODE_LEN, &m->code));
    TRY(rd_blob16(&r, SOTTO_SRV_LINK_MAX_REPLY, &m->data, &m->data_len));
    break;
  default:
    return SOTTO_ERR_USAGE;
  }
  return rd_end(&r);
}

void sotto__srv_put_link_req(struct sotto__wr *w, uint8_t type, const struct sotto_srv_link *m) {
  if (type != SOTTO_SRV_LINK_OPEN) sotto__wr_bytes(w, m->code, SOTTO_SRV_LINK_CODE_LEN);
  if (type == SOTTO_SRV_LINK_PUT) {
    sotto__wr_u32be(w, (uint32_t)m->data_len);
    if (m->data_len) sotto__wr_bytes(w, m->data, m->data_len);
  } else if (type == SOTTO_SRV_LINK_OPEN || type == SOTTO_SRV_LINK_REPLY) {
    sotto__srv_put_blob16(w, m->data, m->data_len);
  }
}

int sotto__srv_parse_link_opened(const uint8_t *p, size_t len, const uint8_t **code, uint32_t *ttl_s) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_bytes(&r, SOTTO_SRV_LINK_CODE_LEN, code));
  TRY(sotto__rd_u32be(&r, ttl_s));
  return rd_end(&r);
}

void sotto__srv_put_link_opened(struct sotto__wr *w, const uint8_t code[SOTTO_SRV_LINK_CODE_LEN], uint32_t ttl_s) {
  sotto__wr_bytes(w, code, SOTTO_SRV_LINK_CODE_LEN);
  sotto__wr_u32be(w, ttl_s);
}

int sotto__srv_parse_link_keys(const uint8_t *p, size_t len, const uint8_t **keys, size_t *keys_len) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_blob16(&r, SOTTO_SRV_LINK_MAX_KEYS, keys, keys_len));
  return rd_end(&r);
}

int sotto__srv_parse_link_state(const uint8_t *p, size_t len, uint8_t *state, const uint8_t **data,
                                size_t *data_len) {
  struct sotto__rd r;
  uint32_t n;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(sotto__rd_u8(&r, state));
  if (*state > SOTTO_SRV_LINK_REPLIED) return SOTTO_ERR_MALFORMED;
  TRY(sotto__rd_u32be(&r, &n));
  if (n > (*state == SOTTO_SRV_LINK_REPLIED ? SOTTO_SRV_LINK_MAX_REPLY : SOTTO_SRV_LINK_MAX_BLOB))
    return SOTTO_ERR_TOO_LARGE;
  if (*state == SOTTO_SRV_LINK_WAITING && n) return SOTTO_ERR_MALFORMED;
  if (*state == SOTTO_SRV_LINK_PROVISIONED && n == 0) return SOTTO_ERR_MALFORMED;
  TRY(sotto__rd_bytes(&r, n, data));
  *data_len = n;
  if (n == 0) *data = NULL;
  return rd_end(&r);
}

void sotto__srv_put_link_state(struct sotto__wr *w, uint8_t state, const uint8_t *data, size_t len) {
  sotto__wr_u8(w, state);
  sotto__wr_u32be(w, (uint32_t)len);
  if (len) sotto__wr_bytes(w, data, len);
}

int sotto__srv_parse_device_identity(const uint8_t *p, size_t len, struct sotto_srv_str *ik) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  TRY(rd_blob16(&r, SOTTO_SRV_MAX_IDENTITY, &ik->p, &ik->len));
  if (ik->len < SOTTO_SRV_DEVICE_IDENTITY_MIN || ik->p[0] != 0x05) return SOTTO_ERR_MALFORMED;
  return rd_end(&r);
}

void sotto__srv_put_device_identity(struct sotto__wr *w, const uint8_t *ik, size_t len) {
  sotto__srv_put_blob16(w, ik, len);
}

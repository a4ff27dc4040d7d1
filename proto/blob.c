/* SPDX-License-Identifier: Apache-2.0 */
/* blob.c: the blob (attachment) requests of the sotto-server protocol and
 * their answers (proto.h, docs/protocol-server.md "Blobs"). Bounded reader,
 * no trailing bytes, zero copy. */
#include "proto.h"

#include "wire.h"

static int rd_u16(struct sotto__rd *r, uint16_t *v) {
  uint8_t a, b;
  int rc;
  if ((rc = sotto__rd_u8(r, &a)) != 0 || (rc = sotto__rd_u8(r, &b)) != 0) return rc;
  *v = (uint16_t)(a << 8 | b);
  return 0;
}

int sotto__srv_parse_blob_req(uint8_t type, const uint8_t *p, size_t len, struct sotto_srv_blob_req *m) {
  struct sotto__rd r;
  int rc = 0;
  m->id = NULL;
  m->size = m->offset = 0;
  m->fetches = 0;
  m->max = 0;
  m->data = NULL;
  m->data_len = 0;
  sotto__rd_init(&r, p, len);
  if (type == SOTTO_SRV_BLOB_CREATE) {
    if ((rc = sotto__rd_u64be(&r, &m->size)) != 0 || (rc = rd_u16(&r, &m->fetches)) != 0) return rc;
    if (m->size == 0 || m->fetches == 0 || m->fetches > SOTTO_SRV_BLOB_MAX_FETCHES) return SOTTO_ERR_MALFORMED;
    if (m->size > SOTTO_SRV_BLOB_MAX_SIZE) return SOTTO_ERR_TOO_LARGE;
  } else {
    if ((rc = sotto__rd_bytes(&r, SOTTO_SRV_BLOB_ID_LEN, &m->id)) != 0) return rc;
    switch (type) {
      case SOTTO_SRV_BLOB_PUT:
        if ((rc = sotto__rd_u64be(&r, &m->offset)) != 0) return rc;
        m->data_len = sotto__rd_left(&r);
        if (m->data_len == 0) return SOTTO_ERR_MALFORMED;
        if (m->data_len > SOTTO_SRV_BLOB_MAX_CHUNK) return SOTTO_ERR_TOO_LARGE;
        if ((rc = sotto__rd_bytes(&r, m->data_len, &m->data)) != 0) return rc;
        if (m->offset >= SOTTO_SRV_BLOB_MAX_SIZE) return SOTTO_ERR_MALFORMED;
        break;
      case SOTTO_SRV_BLOB_GET:
        if ((rc = sotto__rd_u64be(&r, &m->offset)) != 0 || (rc = sotto__rd_u32be(&r, &m->max)) != 0) return rc;
        if (m->max == 0 || m->max > SOTTO_SRV_BLOB_MAX_CHUNK || m->offset >= SOTTO_SRV_BLOB_MAX_SIZE)
          return SOTTO_ERR_MALFORMED;
        break;
      case SOTTO_SRV_BLOB_FETCHES:
        if ((rc = rd_u16(&r, &m->fetches)) != 0) return rc;
        if (m->fetches == 0 || m->fetches > SOTTO_SRV_BLOB_MAX_FETCHES) return SOTTO_ERR_MALFORMED;
        break;
      case SOTTO_SRV_BLOB_STAT:
      case SOTTO_SRV_BLOB_COMMIT:
      case SOTTO_SRV_BLOB_DONE:
        break;
      default:
        return SOTTO_ERR_MALFORMED;
    }
  }
  return sotto__rd_left(&r) ? SOTTO_ERR_TRAILING : 0;
}

void sotto__srv_put_blob_req(struct sotto__wr *w, uint8_t type, const struct sotto_srv_blob_req *m) {
  if (type == SOTTO_SRV_BLOB_CREATE) {
    sotto__wr_u64be(w, m->size);
    sotto__wr_u8(w, (uint8_t)(m->fetches >> 8));
    sotto__wr_u8(w, (uint8_t)m->fetches);
    return;
  }
  sotto__wr_bytes(w, m->id, SOTTO_SRV_BLOB_ID_LEN);
  if (type == SOTTO_SRV_BLOB_PUT) {
    sotto__wr_u64be(w, m->offset);
    sotto__wr_bytes(w, m->data, m->data_len);
  } else if (type == SOTTO_SRV_BLOB_GET) {
    sotto__wr_u64be(w, m->offset);
    sotto__wr_u32be(w, m->max);
  } else if (type == SOTTO_SRV_BLOB_FETCHES) {
    sotto__wr_u8(w, (uint8_t)(m->fetches >> 8));
    sotto__wr_u8(w, (uint8_t)m->fetches);
  }
}

int sotto__srv_parse_blob_created(const uint8_t *p, size_t len, uint8_t id[SOTTO_SRV_BLOB_ID_LEN],
                                  uint64_t *expires_ms) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  if ((rc = sotto__rd_copy(&r, id, SOTTO_SRV_BLOB_ID_LEN)) != 0 || (rc = sotto__rd_u64be(&r, expires_ms)) != 0)
    return rc;
  return sotto__rd_left(&r) ? SOTTO_ERR_TRAILING : 0;
}

int sotto__srv_parse_blob_stored(const uint8_t *p, size_t len, uint64_t *stored) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  if ((rc = sotto__rd_u64be(&r, stored)) != 0) return rc;
  if (*stored > SOTTO_SRV_BLOB_MAX_SIZE) return SOTTO_ERR_MALFORMED;
  return sotto__rd_left(&r) ? SOTTO_ERR_TRAILING : 0;
}

int sotto__srv_parse_blob_stat(const uint8_t *p, size_t len, struct sotto_srv_blob_stat *m) {
  struct sotto__rd r;
  int rc;
  sotto__rd_init(&r, p, len);
  if ((rc = sotto__rd_u64be(&r, &m->size)) != 0 || (rc = sotto__rd_u64be(&r, &m->stored)) != 0 ||
      (rc = sotto__rd_u8(&r, &m->committed)) != 0)
    return rc;
  if (m->size > SOTTO_SRV_BLOB_MAX_SIZE || m->stored > m->size || m->committed > 1) return SOTTO_ERR_MALFORMED;
  return sotto__rd_left(&r) ? SOTTO_ERR_TRAILING : 0;
}

void sotto__srv_put_blob_created(struct sotto__wr *w, const uint8_t id[SOTTO_SRV_BLOB_ID_LEN], uint64_t expires_ms) {
  sotto__wr_bytes(w, id, SOTTO_SRV_BLOB_ID_LEN);
  sotto__wr_u64be(w, expires_ms);
}

void sotto__srv_put_blob_stat(struct sotto__wr *w, const struct sotto_srv_blob_stat *m) {
  sotto__wr_u64be(w, m->size);
  sotto__wr_u64be(w, m->stored);
  sotto__wr_u8(w, m->committed);
}

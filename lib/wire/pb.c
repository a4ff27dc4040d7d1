/* SPDX-License-Identifier: Apache-2.0 */
#include "wire.h"

int sotto__pb_next(struct sotto__rd *r, struct sotto__pb_field *f) {
  uint64_t key, v;
  size_t start = r->off;
  int rc;

  if (sotto__rd_left(r) == 0) return 0;
  if ((rc = sotto__rd_varint(r, &key)) != 0) return rc;
  if ((key >> 3) == 0 || (key >> 3) > 0x1FFFFFFF) goto bad;
  f->num = (uint32_t)(key >> 3);
  f->wt = (uint8_t)(key & 7);
  f->p = NULL;
  f->len = 0;
  f->v = 0;
  switch (f->wt) {
    case SOTTO__PB_VARINT:
      if ((rc = sotto__rd_varint(r, &f->v)) != 0) goto fail;
      return 1;
    case SOTTO__PB_FIXED64: {
      const uint8_t *p;
      if ((rc = sotto__rd_bytes(r, 8, &p)) != 0) goto fail;
      for (int i = 7; i >= 0; i--) f->v = (f->v << 8) | p[i];
      return 1;
    }
    case SOTTO__PB_FIXED32: {
      const uint8_t *p;
      if ((rc = sotto__rd_bytes(r, 4, &p)) != 0) goto fail;
      f->v = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
      return 1;
    }
    case SOTTO__PB_LEN:
      if ((rc = sotto__rd_varint(r, &v)) != 0) goto fail;
      if (v > sotto__rd_left(r)) {
        rc = SOTTO_ERR_TRUNCATED;
        goto fail;
      }
      f->len = (size_t)v;
      if ((rc = sotto__rd_bytes(r, f->len, &f->p)) != 0) goto fail;
      return 1;
    default:
      goto bad; /* groups (3, 4) and reserved wire types */
  }
bad:
  rc = SOTTO_ERR_MALFORMED;
fail:
  r->off = start;
  return rc;
}

int sotto__pb_get_pubkey(const struct sotto__pb_field *f, uint8_t u[32]) {
  if (f->wt != SOTTO__PB_LEN || f->len != 33 || f->p[0] != 0x05) return SOTTO_ERR_INVALID_KEY;
  memcpy(u, f->p + 1, 32);
  return 0;
}

int sotto__pb_get_u32(const struct sotto__pb_field *f, uint32_t *v) {
  if (f->wt != SOTTO__PB_VARINT || f->v > UINT32_MAX) return SOTTO_ERR_MALFORMED;
  *v = (uint32_t)f->v;
  return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* msg.c: the SPQR v1 message codec (msg.h). */
#include <string.h>

#include <sotto/error.h>

#include "spqr/msg.h"

static int has_chunk(uint8_t type) {
  return type == SOTTO_SPQR_HDR || type == SOTTO_SPQR_EK || type == SOTTO_SPQR_EK_CT1_ACK ||
         type == SOTTO_SPQR_CT1 || type == SOTTO_SPQR_CT2;
}

/* Base-128 varint, at most 10 bytes; bits past 64 are dropped as upstream
 * does, so only the 10-byte bound matters. */
static int varint(uint64_t *v, const uint8_t *in, size_t len, size_t *at) {
  uint64_t out = 0;
  size_t i;
  for (i = 0; i < 10; i++) {
    uint8_t b;
    if (*at + i >= len) return SOTTO_ERR_TRUNCATED;
    b = in[*at + i];
    out |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *at += i + 1;
      *v = out;
      return 0;
    }
  }
  return SOTTO_ERR_MALFORMED;
}

int sotto__spqr_msg_parse(struct sotto__spqr_msg *m, size_t *used, const uint8_t *in, size_t len) {
  size_t at = 1;
  uint64_t v;
  int rc;

  memset(m, 0, sizeof *m);
  if (used != NULL) *used = 0;
  if (in == NULL || len == 0) return SOTTO_ERR_TRUNCATED;
  if (in[0] != 1) return SOTTO_ERR_VERSION;
  if ((rc = varint(&m->epoch, in, len, &at)) != 0) return rc;
  if (m->epoch == 0) return SOTTO_ERR_MALFORMED;
  if ((rc = varint(&v, in, len, &at)) != 0) return rc;
  if (v > UINT32_MAX) return SOTTO_ERR_MALFORMED;
  m->index = (uint32_t)v;
  if (at >= len) return SOTTO_ERR_TRUNCATED;
  m->type = in[at++];
  if (m->type > SOTTO_SPQR_CT2) return SOTTO_ERR_MALFORMED;
  if (has_chunk(m->type)) {
    if ((rc = varint(&v, in, len, &at)) != 0) return rc;
    if (v > 65535) return SOTTO_ERR_MALFORMED;
    if (len - at < SOTTO_SPQR_CHUNK_LEN) return SOTTO_ERR_TRUNCATED;
    m->has_chunk = 1;
    m->chunk_index = (uint16_t)v;
    m->chunk = in + at;
    at += SOTTO_SPQR_CHUNK_LEN;
  }
  if (used != NULL) *used = at;
  return 0;
}

static size_t put_varint(uint8_t *out, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    out[n++] = (uint8_t)(0x80 | (v & 0x7f));
    v >>= 7;
  }
  out[n++] = (uint8_t)v;
  return n;
}

size_t sotto__spqr_msg_write(uint8_t *out, size_t cap, const struct sotto__spqr_msg *m) {
  uint8_t tmp[SOTTO_SPQR_MSG_MAX_LEN];
  size_t n = 0;
  if (m == NULL || m->epoch == 0 || m->type > SOTTO_SPQR_CT2) return 0;
  if (has_chunk(m->type) && m->chunk == NULL) return 0;
  tmp[n++] = 1;
  n += put_varint(tmp + n, m->epoch);
  n += put_varint(tmp + n, m->index);
  tmp[n++] = m->type;
  if (has_chunk(m->type)) {
    n += put_varint(tmp + n, m->chunk_index);
    memcpy(tmp + n, m->chunk, SOTTO_SPQR_CHUNK_LEN);
    n += SOTTO_SPQR_CHUNK_LEN;
  }
  if (out == NULL || n > cap) return 0;
  memcpy(out, tmp, n);
  return n;
}

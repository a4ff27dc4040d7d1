/* SPDX-License-Identifier: Apache-2.0 */
/* buf.h: the client's bounded byte writer and reader, used for the records of
 * the local store and for the content format inside encrypted messages
 * (docs/client.md). Everything is big-endian.
 *
 * The writer appends into a heap buffer that grows up to a hard cap given at
 * creation; any failure (cap reached, no memory) latches, later puts do
 * nothing and buf_wr_finish reports it once. buf_wr_free wipes the buffer:
 * records hold keys.
 *
 * The reader walks (p, len, off); a failed read leaves off where it was and
 * latches the error; buf_rd_end checks that nothing is left over. */
#ifndef SOTTO_CLIENT_BUF_H
#define SOTTO_CLIENT_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf_wr {
  uint8_t *p;
  size_t len, cap, max;
  int err;
};

void buf_wr_init(struct buf_wr *w, size_t max);
void buf_wr_free(struct buf_wr *w);
void buf_put(struct buf_wr *w, const void *p, size_t n);
void buf_put_u8(struct buf_wr *w, uint8_t v);
void buf_put_u16(struct buf_wr *w, uint16_t v);
void buf_put_u32(struct buf_wr *w, uint32_t v);
void buf_put_u64(struct buf_wr *w, uint64_t v);
/* A string or blob with a u16 length prefix (n <= 65535). */
void buf_put_str16(struct buf_wr *w, const void *p, size_t n);
/* 0, or -1 if any put failed (the buffer then holds nothing useful). */
int buf_wr_ok(const struct buf_wr *w);

struct buf_rd {
  const uint8_t *p;
  size_t len, off;
  int err;
};

void buf_rd_init(struct buf_rd *r, const void *p, size_t len);
int buf_get(struct buf_rd *r, void *out, size_t n);
int buf_get_ptr(struct buf_rd *r, const uint8_t **out, size_t n);
int buf_get_u8(struct buf_rd *r, uint8_t *v);
int buf_get_u16(struct buf_rd *r, uint16_t *v);
int buf_get_u32(struct buf_rd *r, uint32_t *v);
int buf_get_u64(struct buf_rd *r, uint64_t *v);
/* A u16-prefixed blob of at most max bytes; *out points into the input. */
int buf_get_str16(struct buf_rd *r, const uint8_t **out, size_t *n, size_t max);
/* The same, copied into a NUL-terminated C string of cap bytes (no NUL
 * inside allowed). */
int buf_get_cstr(struct buf_rd *r, char *out, size_t cap);
/* 0 if no read failed and every byte was consumed, else -1. */
int buf_rd_end(const struct buf_rd *r);

#endif

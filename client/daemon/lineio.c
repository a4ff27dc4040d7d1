/* SPDX-License-Identifier: Apache-2.0 */
/* lineio.c: bounded line reader and output queue (lineio.h). */
#include "lineio.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonrpc.h"

int line_in_feed(struct line_in *li, const char *data, size_t n, size_t *used, line_cb cb, void *ud) {
  size_t i = 0;
  int rc;
  *used = 0;
  while (i < n) {
    const char *nl = memchr(data + i, '\n', n - i);
    size_t chunk = nl ? (size_t)(nl - (data + i)) : n - i;
    if (li->skipping) {
      i += chunk;
      if (nl) {
        i++;
        li->skipping = 0;
      }
      *used = i;
      continue;
    }
    if (chunk > RPC_MAX_LINE - li->len) {
      /* Over the cap: reported once, the rest skipped up to its newline. */
      li->len = 0;
      li->skipping = 1;
      rc = cb(ud, NULL, 0);
      *used = i;
      if (rc) return rc;
      continue;
    }
    /* An idle client costs 4 KiB; only a long line makes its buffer grow. */
    if (li->len + chunk + 1 > li->cap) {
      size_t cap = li->cap ? li->cap : 4096;
      char *nb;
      while (cap < li->len + chunk + 1) cap *= 2;
      if (cap > RPC_MAX_LINE + 1) cap = RPC_MAX_LINE + 1;
      if (!(nb = realloc(li->buf, cap))) return -1;
      li->buf = nb;
      li->cap = cap;
    }
    memcpy(li->buf + li->len, data + i, chunk);
    li->len += chunk;
    i += chunk;
    if (nl) {
      size_t l = li->len;
      i++;
      li->len = 0;
      if (l && li->buf[l - 1] == '\r') l--; /* CRLF from a telnet-like client */
      li->buf[l] = 0;
      *used = i;
      if ((rc = cb(ud, li->buf, l)) != 0) return rc;
    }
    *used = i;
  }
  return 0;
}

void line_in_free(struct line_in *li) {
  free(li->buf);
  memset(li, 0, sizeof *li);
}

int line_out_push(struct line_out *lo, const char *s, size_t n) {
  size_t max = lo->max ? lo->max : LINEIO_OUT_MAX, pend = lo->len - lo->off, need;
  if (n + 1 > max || pend > max - (n + 1)) return -1;
  if (lo->off && lo->off == lo->len) lo->off = lo->len = 0;
  need = lo->len + n + 1;
  if (need > lo->cap) {
    /* Compact first; grow (doubling, bounded by max + the compacted part) if still short. */
    if (lo->off) {
      memmove(lo->buf, lo->buf + lo->off, pend);
      lo->len = pend;
      lo->off = 0;
      need = pend + n + 1;
    }
    if (need > lo->cap) {
      size_t cap = lo->cap ? lo->cap : 4096;
      char *nb;
      while (cap < need) cap *= 2;
      if (cap > max) cap = max;
      if (!(nb = realloc(lo->buf, cap))) return -1;
      lo->buf = nb;
      lo->cap = cap;
    }
  }
  memcpy(lo->buf + lo->len, s, n);
  lo->buf[lo->len + n] = '\n';
  lo->len += n + 1;
  return 0;
}

int line_out_flush(struct line_out *lo, int fd) {
  while (lo->off < lo->len) {
    ssize_t w = write(fd, lo->buf + lo->off, lo->len - lo->off);
    if (w < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 1;
      return -1;
    }
    lo->off += (size_t)w;
  }
  lo->off = lo->len = 0;
  /* A burst left a big buffer: give it back once drained. */
  if (lo->cap > 65536) {
    free(lo->buf);
    lo->buf = NULL;
    lo->cap = 0;
  }
  return 0;
}

size_t line_out_pending(const struct line_out *lo) {
  return lo->len - lo->off;
}

void line_out_free(struct line_out *lo) {
  free(lo->buf);
  memset(lo, 0, sizeof *lo);
}

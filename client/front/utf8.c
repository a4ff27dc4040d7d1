/* SPDX-License-Identifier: Apache-2.0 */
/* utf8.c: strict UTF-8 decoding and sanitising for display (utf8.h). */
#include "utf8.h"

#include <string.h>

size_t utf8_decode(const char *str, size_t n, uint32_t *cp) {
  const unsigned char *s = (const unsigned char *)str;
  uint32_t c, min;
  size_t len, i;
  *cp = UTF8_REPLACEMENT;
  if (n == 0) return 0;
  if (s[0] < 0x80) {
    *cp = s[0];
    return 1;
  }
  if (s[0] >= 0xC2 && s[0] <= 0xDF) {
    len = 2;
    c = s[0] & 0x1F;
    min = 0x80;
  } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
    len = 3;
    c = s[0] & 0x0F;
    min = 0x800;
  } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
    len = 4;
    c = s[0] & 0x07;
    min = 0x10000;
  } else {
    return 0; /* a continuation byte, an overlong lead (C0, C1) or F5..FF */
  }
  if (len > n) return 0;
  for (i = 1; i < len; i++) {
    if ((s[i] & 0xC0) != 0x80) return 0;
    c = (c << 6) | (s[i] & 0x3F);
  }
  if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
  *cp = c;
  return len;
}

size_t utf8_encode(uint32_t cp, char out[4]) {
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xC0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp >= 0xD800 && cp <= 0xDFFF) return 0;
  if (cp < 0x10000) {
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
  }
  if (cp > 0x10FFFF) return 0;
  out[0] = (char)(0xF0 | (cp >> 18));
  out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
  out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
  out[3] = (char)(0x80 | (cp & 0x3F));
  return 4;
}

int utf8_valid(const char *s, size_t n) {
  size_t off = 0, l;
  uint32_t cp;
  while (off < n) {
    if ((l = utf8_decode(s + off, n - off, &cp)) == 0 || cp == 0) return 0;
    off += l;
  }
  return 1;
}

int utf8_unsafe(uint32_t cp) {
  return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2066 && cp <= 0x2069) || cp == 0x2028 || cp == 0x2029 || cp == 0x200E || cp == 0x200F ||
         cp == 0x061C || cp == 0xFEFF || (cp >= 0xFFF9 && cp <= 0xFFFB);
}

/* Appends b[0..l) if it fits with the NUL; 0 if it does not. */
static int put(char *out, size_t cap, size_t *w, const char *b, size_t l) {
  if (l >= cap - *w) return 0;
  memcpy(out + *w, b, l);
  *w += l;
  return 1;
}

size_t utf8_display(char *out, size_t cap, const char *s, size_t n, const char *indent) {
  size_t off = 0, w = 0, l, il = strlen(indent);
  uint32_t cp;
  char enc[4];
  if (cap == 0) return 0;
  while (off < n) {
    l = utf8_decode(s + off, n - off, &cp);
    off += l ? l : 1;
    if (cp == '\r' && off < n && s[off] == '\n') continue; /* CR LF: one break */
    if (cp == '\n') {
      if (1 + il >= cap - w) break; /* the break and its indent, or neither */
      put(out, cap, &w, "\n", 1);
      put(out, cap, &w, indent, il);
      continue;
    }
    if (cp == '\t') cp = ' ';
    else if (utf8_unsafe(cp)) cp = UTF8_REPLACEMENT;
    if (!put(out, cap, &w, enc, utf8_encode(cp, enc))) break;
  }
  out[w] = 0;
  return w;
}

size_t utf8_repair(char *out, size_t cap, const char *s, size_t n) {
  size_t off = 0, w = 0, l;
  uint32_t cp;
  char enc[4];
  if (cap == 0) return 0;
  while (off < n) {
    l = utf8_decode(s + off, n - off, &cp);
    off += l ? l : 1;
    if (cp == 0) cp = UTF8_REPLACEMENT;
    if (!put(out, cap, &w, enc, utf8_encode(cp, enc))) break;
  }
  out[w] = 0;
  return w;
}

size_t utf8_sanitize(char *out, size_t cap, const char *s, size_t n, int keep_newlines) {
  size_t off = 0, w = 0, l, el;
  uint32_t cp;
  char enc[4];
  if (cap == 0) return 0;
  while (off < n) {
    l = utf8_decode(s + off, n - off, &cp);
    off += l ? l : 1;
    if (cp == '\n' && keep_newlines) {
      /* kept */
    } else if (cp == '\n' || cp == '\t') {
      cp = ' ';
    } else if (utf8_unsafe(cp)) {
      cp = UTF8_REPLACEMENT;
    }
    el = utf8_encode(cp, enc);
    if (el >= cap - w) break;
    memcpy(out + w, enc, el);
    w += el;
  }
  out[w] = 0;
  return w;
}

size_t utf8_prev(const char *s, size_t off) {
  if (off == 0) return 0;
  off--;
  while (off > 0 && ((unsigned char)s[off] & 0xC0) == 0x80) off--;
  return off;
}

size_t utf8_next(const char *s, size_t n, size_t off) {
  if (off >= n) return n;
  off++;
  while (off < n && ((unsigned char)s[off] & 0xC0) == 0x80) off++;
  return off;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* utf8.h: strict UTF-8 for the front ends (daemon, chat). Text from contacts
 * is untrusted: it is decoded strictly (no overlongs, no surrogates, nothing
 * above U+10FFFF) and what would act on a terminal (C0 and C1 controls, DEL,
 * bidirectional overrides and isolates) is replaced before it is shown. */
#ifndef SOTTO_FRONT_UTF8_H
#define SOTTO_FRONT_UTF8_H

#include <stddef.h>
#include <stdint.h>

#define UTF8_REPLACEMENT 0xFFFDu

/* Decodes one code point at s (n bytes available). Returns its length
 * (1..4) with *cp set, or 0 when the bytes there are not valid UTF-8 (then
 * *cp is U+FFFD; the caller skips one byte). n == 0 returns 0. */
size_t utf8_decode(const char *s, size_t n, uint32_t *cp);
/* Encodes cp (a valid scalar value) into out (4 bytes); returns the length,
 * or 0 for a surrogate or a value above U+10FFFF. */
size_t utf8_encode(uint32_t cp, char out[4]);
/* 1 if s[0..n) is valid UTF-8 without NUL bytes. */
int utf8_valid(const char *s, size_t n);
/* 1 if cp must never reach a terminal as is: C0 (except what the caller
 * keeps), DEL, C1, the bidirectional embeddings, overrides and isolates
 * (U+202A..U+202E, U+2066..U+2069) and the line/paragraph separators. */
int utf8_unsafe(uint32_t cp);
/* Copies s[0..n) into out (cap bytes, always NUL-terminated) for display:
 * invalid bytes and unsafe code points become U+FFFD; a newline or tab
 * becomes a space unless keep_newlines (then '\n' stays). Stops at a whole
 * code point when out is full. Returns the length written. */
size_t utf8_sanitize(char *out, size_t cap, const char *s, size_t n, int keep_newlines);
/* Byte offset of the code point before off in s (0 at the start). */
size_t utf8_prev(const char *s, size_t off);
/* Byte offset of the code point after off (n at the end). */
size_t utf8_next(const char *s, size_t n, size_t off);

#endif

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
/* 1 if cp must never reach a terminal as is (docs/client.md, "Safe
 * output"): C0 controls (the caller may keep newline), DEL, C1 controls
 * (U+0080..U+009F, NEL included), the bidirectional marks, embeddings,
 * overrides and isolates (U+061C, U+200E, U+200F, U+202A..U+202E,
 * U+2066..U+2069), the line and paragraph separators (U+2028, U+2029), the
 * byte order mark U+FEFF and the interlinear annotation controls
 * (U+FFF9..U+FFFB). Joiners (U+200C, U+200D: emoji, Persian) stay. */
int utf8_unsafe(uint32_t cp);
/* Copies s[0..n) into out (cap bytes, always NUL-terminated) for display:
 * invalid bytes and unsafe code points become U+FFFD; a newline or tab
 * becomes a space unless keep_newlines (then '\n' stays). Stops at a whole
 * code point when out is full. Returns the length written. */
size_t utf8_sanitize(char *out, size_t cap, const char *s, size_t n, int keep_newlines);
/* The display form of an untrusted text of several lines (the CLI's
 * receive and history): invalid bytes and unsafe code points become U+FFFD,
 * a tab a space, and every line break ("\n", "\r\n") becomes "\n" followed
 * by indent, so no line of the text can start at the left margin where a
 * header would. Writes at most cap bytes (NUL included; cut at a whole code
 * point) and returns the length written. UTF8_DISPLAY_CAP(n, indent_len) is
 * a cap that never cuts a text of n bytes. */
#define UTF8_DISPLAY_CAP(n, il) ((n) * ((il) + 3) + 1)
size_t utf8_display(char *out, size_t cap, const char *s, size_t n, const char *indent);
/* The same for a string that must be valid UTF-8 but may keep its control
 * characters (a JSON string: the encoder escapes them): only invalid bytes
 * and NUL become U+FFFD. */
size_t utf8_repair(char *out, size_t cap, const char *s, size_t n);

/* Byte offset of the code point before off in s (0 at the start). */
size_t utf8_prev(const char *s, size_t off);
/* Byte offset of the code point after off (n at the end). */
size_t utf8_next(const char *s, size_t n, size_t off);

#endif

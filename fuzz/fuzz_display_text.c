/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_display_text.c: a contact's text on its way to the CLI's output
 * (client/front/utf8.c). utf8_display must give valid UTF-8 without any
 * code point that acts on a terminal, with every line break followed by the
 * indent (no line of the text can start at the margin, where a header is),
 * within the cap UTF8_DISPLAY_CAP promises; utf8_repair (the --json lines)
 * must give valid UTF-8 without NUL and leave valid text as it was. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define INDENT "    "

static void check_display(const char *in, size_t n, size_t cap) {
  char *out = malloc(cap);
  size_t len, off = 0, l;
  uint32_t cp;
  if (!out) abort();
  len = utf8_display(out, cap, in, n, INDENT);
  if (len >= cap || out[len] != 0 || strlen(out) != len) abort();
  if (!utf8_valid(out, len)) abort();
  while (off < len) {
    l = utf8_decode(out + off, len - off, &cp);
    if (l == 0) abort();
    if (cp == '\n') {
      if (len - off - 1 < sizeof INDENT - 1 || memcmp(out + off + 1, INDENT, sizeof INDENT - 1) != 0) abort();
    } else if (utf8_unsafe(cp)) {
      abort();
    }
    off += l;
  }
  free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *in = (const char *)data;
  size_t cap = UTF8_DISPLAY_CAP(size, sizeof INDENT - 1), len;
  char *out;
  /* The promised cap never cuts: every input byte is in the output. */
  check_display(in, size, cap);
  /* Smaller caps cut at a whole code point, never in the middle of one. */
  check_display(in, size, size / 2 + 1);
  check_display(in, size, 5);
  check_display(in, size, 1);
  if (utf8_display(NULL, 0, in, size, INDENT) != 0) abort();
  if (!(out = malloc(3 * size + 1))) abort();
  len = utf8_repair(out, 3 * size + 1, in, size);
  if (len > 3 * size || strlen(out) != len || !utf8_valid(out, len)) abort();
  if (utf8_valid(in, size) && (len != size || memcmp(out, in, size) != 0)) abort();
  free(out);
  return 0;
}

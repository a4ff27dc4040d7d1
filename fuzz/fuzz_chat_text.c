/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_chat_text.c: untrusted text on its way to the terminal. The input is
 * a contact's name and message (split at the first NUL); they enter the chat
 * model (client/chat/model.c) and are laid out at several sizes. No cell may
 * hold a code point that acts on a terminal (C0, DEL, C1, bidirectional
 * controls), a double-width character never straddles the right edge, and
 * the cursor stays on the screen. */
#include <locale.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "utf8.h"

static void check_grid(const struct chat_grid *g) {
  int r, c;
  if (g->cur_row < 0 || g->cur_row >= g->rows || g->cur_col < 0 || g->cur_col > g->cols) abort();
  for (r = 0; r < g->rows; r++)
    for (c = 0; c < g->cols; c++) {
      uint32_t cp = g->cells[(size_t)r * g->cols + c].cp;
      if (cp && utf8_unsafe(cp)) abort();
      if (cp && chat_cp_width(cp) == 2 && c == g->cols - 1) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  static const int sizes[][2] = {{24, 80}, {10, 40}, {5, 21}, {3, 10}, {30, 61}};
  struct chat_model m;
  struct chat_grid g;
  const char *text = (const char *)data, *arg;
  const uint8_t *nul = memchr(data, 0, size);
  char name[CHAT_NAME_MAX + 1] = "peer";
  size_t len = size, i, k;
  if (!init) {
    setlocale(LC_CTYPE, "C.UTF-8");
    init = 1;
  }
  if (nul) {
    size_t nl = (size_t)(nul - data);
    memcpy(name, data, nl < CHAT_NAME_MAX ? nl : CHAT_NAME_MAX);
    name[nl < CHAT_NAME_MAX ? nl : CHAT_NAME_MAX] = 0;
    text = (const char *)nul + 1;
    len = size - nl - 1;
  }
  chat_init(&m, "me");
  memset(&g, 0, sizeof g);
  if (chat_add(&m, name, 0, CHAT_IN, name, text, len, 1) != 0) abort();
  if (chat_add(&m, name, 1, CHAT_NOTICE, name, text, len, 2) != 0) abort();
  chat_show_safety(&m, name, len ? "1\n2" : "");
  m.screen = CHAT_SCREEN_MAIN;
  chat_open(&m, 0);
  /* the text typed into the input line too, code point by code point */
  for (i = 0; i < len && i < 600;) {
    uint32_t cp;
    k = utf8_decode(text + i, len - i, &cp);
    (void)chat_key(&m, k ? cp : 0xFFFD, 24, &arg);
    i += k ? k : 1;
  }
  for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    if (chat_render(&m, sizes[i][0], sizes[i][1], &g) != 0) abort();
    check_grid(&g);
  }
  {
    /* the safety screen takes a C string: a NUL-terminated copy */
    char *t = malloc(len + 1);
    if (!t) abort();
    memcpy(t, text, len);
    t[len] = 0;
    chat_show_safety(&m, name, t);
    free(t);
  }
  if (chat_render(&m, 12, 50, &g) != 0) abort();
  check_grid(&g);
  chat_grid_free(&g);
  chat_free(&m);
  return 0;
}

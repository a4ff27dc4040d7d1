/* SPDX-License-Identifier: Apache-2.0 */
/* test_chat_model.c: the chat UI's model and layout (client/chat/model.c):
 * unread counts, scrollback bounds, UTF-8 editing of the input line,
 * commands, sanitising of contacts' text, and what ends up on screen at
 * several sizes (a resize is a render at another size). */
#include <locale.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"
#include "testutil.h"

/* REQUIRE for void functions: stops the current test function. */
#define NEED(x)       \
  do {                \
    int ok_ = !!(x);  \
    CHECK(ok_ &&#x);  \
    if (!ok_) return; \
  } while (0)

static struct chat_grid g;

static const char *row(int r) {
  static char buf[4096];
  chat_grid_row(&g, r, buf, sizeof buf);
  return buf;
}

static int screen_has(const char *s) {
  int r;
  for (r = 0; r < g.rows; r++)
    if (strstr(row(r), s)) return 1;
  return 0;
}

static void dump(void) {
  int r;
  for (r = 0; r < g.rows; r++) fprintf(stderr, "|%s\n", row(r));
}

static void type(struct chat_model *m, const char *s) {
  const char *arg;
  while (*s) {
    unsigned char c = (unsigned char)*s;
    uint32_t cp;
    int l = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4, i;
    cp = l == 1 ? c : l == 2 ? c & 0x1F : l == 3 ? c & 0x0F : c & 0x07;
    for (i = 1; i < l; i++) cp = (cp << 6) | ((unsigned char)s[i] & 0x3F);
    chat_key(m, cp, 24, &arg);
    s += l;
  }
}

static void test_input(void) {
  struct chat_input in;
  memset(&in, 0, sizeof in);
  CHECK(chat_input_insert(&in, 'a') == 0);
  CHECK(chat_input_insert(&in, 0xE9) == 0);    /* é: 2 bytes */
  CHECK(chat_input_insert(&in, 0x1F600) == 0); /* 😀: 4 bytes */
  CHECK(chat_input_insert(&in, 0x20AC) == 0);  /* €: 3 bytes */
  CHECK(in.len == 10 && strcmp(in.buf, "a\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac") == 0);
  chat_input_left(&in);
  chat_input_left(&in);
  CHECK(in.cur == 3);
  chat_input_backspace(&in); /* removes é whole */
  CHECK(in.cur == 1 && in.len == 8 && strcmp(in.buf, "a\xf0\x9f\x98\x80\xe2\x82\xac") == 0);
  chat_input_delete(&in); /* removes 😀 whole */
  CHECK(strcmp(in.buf, "a\xe2\x82\xac") == 0 && in.cur == 1);
  chat_input_right(&in);
  CHECK(in.cur == 4);
  chat_input_right(&in);
  CHECK(in.cur == 4);
  chat_input_backspace(&in);
  chat_input_backspace(&in);
  chat_input_backspace(&in);
  CHECK(in.len == 0 && in.cur == 0);
  /* control characters never enter the line */
  CHECK(chat_input_insert(&in, 0x1B) == -1);
  CHECK(chat_input_insert(&in, 0x9B) == -1);
  CHECK(chat_input_insert(&in, 0x202E) == -1);
  CHECK(chat_input_insert(&in, 0xD800) == -1);
  CHECK(in.len == 0);
  /* bounded */
  {
    size_t i;
    for (i = 0; i < CHAT_MAX_INPUT; i++) (void)chat_input_insert(&in, 'x');
    CHECK(in.len == CHAT_MAX_INPUT);
    CHECK(chat_input_insert(&in, 'y') == -1);
    CHECK(chat_input_insert(&in, 0xE9) == -1);
  }
}

static void test_conversations(void) {
  struct chat_model m;
  const char *arg;
  long i;
  int act;
  chat_init(&m, "alice");
  m.connected = 1;
  CHECK(chat_add(&m, "bob", 0, CHAT_IN, "bob", "hello alice", 11, 1000) == 0);
  CHECK(chat_add(&m, "bob", 0, CHAT_IN, "bob", "are you there?", 14, 2000) == 0);
  CHECK(chat_add(&m, "team", 1, CHAT_IN, "carol", "standup at 10", 13, 3000) == 0);
  CHECK(m.n == 2 && m.convs[0].unread == 2 && m.convs[1].unread == 1);
  /* a group and a person of the same name are two conversations */
  CHECK(chat_conv(&m, "team", 0, 0) == -1);
  NEED(chat_render(&m, 12, 80, &g) == 0);
  CHECK(strstr(row(1), " bob ") && strstr(row(1), "(2)"));
  CHECK(strstr(row(2), "#team ") && strstr(row(2), "(1)"));
  CHECK(strstr(row(0), "sotto: alice") && strstr(row(0), "online"));
  /* Enter on the list opens bob: unread goes to 0, lines shown */
  act = chat_key(&m, CHAT_KEY_ENTER, 12, &arg);
  CHECK(act == CHAT_ACT_OPEN && m.open == 0 && m.convs[0].unread == 0);
  NEED(chat_render(&m, 12, 80, &g) == 0);
  CHECK(screen_has("bob: hello alice") && screen_has("bob: are you there?"));
  CHECK(strstr(row(0), "|  bob") != NULL);
  /* typing and sending */
  type(&m, "hi bob \xe2\x82\xac");
  NEED(chat_render(&m, 12, 80, &g) == 0);
  CHECK(strcmp(row(11), "> hi bob \xe2\x82\xac") == 0);
  CHECK(g.cur_row == 11 && g.cur_col == 10);
  act = chat_key(&m, CHAT_KEY_ENTER, 12, &arg);
  CHECK(act == CHAT_ACT_SEND && arg && strcmp(arg, "hi bob \xe2\x82\xac") == 0 && m.in.len == 0);
  CHECK(chat_add(&m, "bob", 0, CHAT_OUT, "alice", arg, strlen(arg), 4000) == 0);
  CHECK(m.convs[0].unread == 0);
  /* messages to the open conversation are not unread; others are */
  CHECK(chat_add(&m, "bob", 0, CHAT_IN, "bob", "yes", 3, 5000) == 0);
  CHECK(chat_add(&m, "team", 1, CHAT_IN, "dave", "ok", 2, 5000) == 0);
  CHECK(m.convs[0].unread == 0 && m.convs[1].unread == 2);
  NEED(chat_render(&m, 12, 80, &g) == 0);
  CHECK(screen_has("alice: hi bob \xe2\x82\xac") && screen_has("bob: yes") && strstr(row(2), "(2)"));
  /* notices inline, hostile text sanitised: no ESC/CSI reaches the grid */
  CHECK(chat_add(&m, "bob", 0, CHAT_NOTICE, "bob", "bob's identity key changed", 26, 6000) == 0);
  CHECK(chat_add(&m, "bob", 0, CHAT_IN, "bob",
                 "x\x1b[2J\x1b]0;pwned\x07y\xc2\x9b"
                 "1m\xe2\x80\xae"
                 "z",
                 24, 7000) == 0);
  NEED(chat_render(&m, 12, 80, &g) == 0);
  CHECK(screen_has("* bob's identity key changed"));
  CHECK(
      screen_has("x\xef\xbf\xbd[2J\xef\xbf\xbd]0;pwned\xef\xbf\xbdy\xef\xbf\xbd"
                 "1m\xef\xbf\xbdz"));
  {
    int r, c, bad = 0;
    for (r = 0; r < g.rows; r++)
      for (c = 0; c < g.cols; c++) {
        uint32_t cp = g.cells[r * g.cols + c].cp;
        if (cp && (cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp < 0xA0) || cp == 0x202E)) bad++;
      }
    CHECK(bad == 0);
  }
  /* /msg opens (or creates) a conversation; /group a group */
  type(&m, "/msg carol");
  act = chat_key(&m, CHAT_KEY_ENTER, 12, &arg);
  i = chat_conv(&m, "carol", 0, 0);
  CHECK(act == CHAT_ACT_OPEN && i == 2 && m.open == 2);
  type(&m, "/group team");
  act = chat_key(&m, CHAT_KEY_ENTER, 12, &arg);
  CHECK(act == CHAT_ACT_OPEN && m.open == 1 && m.convs[1].unread == 0);
  NEED(chat_render(&m, 12, 80, &g) == 0);
  CHECK(strstr(row(0), "#team") && screen_has("carol: standup at 10") && screen_has("dave: ok"));
  /* safety screen: F2 refuses a group; /safety NAME works anywhere */
  CHECK(chat_key(&m, CHAT_KEY_SAFETY, 12, &arg) == CHAT_ACT_NONE && strstr(m.status, "person"));
  type(&m, "/safety bob");
  act = chat_key(&m, CHAT_KEY_ENTER, 12, &arg);
  CHECK(act == CHAT_ACT_SAFETY && strcmp(arg, "bob") == 0);
  chat_show_safety(&m, "bob", "12345 67890 12345\n67890 12345 67890\nverified: no");
  NEED(chat_render(&m, 12, 80, &g) == 0);
  CHECK(screen_has("Safety number with bob") && screen_has("12345 67890 12345") &&
        screen_has("verified: no"));
  CHECK(chat_key(&m, CHAT_KEY_ESC, 12, &arg) == CHAT_ACT_NONE && m.screen == CHAT_SCREEN_MAIN);
  /* /verify needs a person's conversation */
  type(&m, "/verify 123");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_NONE);
  chat_open(&m, 0);
  type(&m, "/verify 123 456");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_VERIFY && strcmp(arg, "123 456") == 0);
  type(&m, "/trust");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_TRUST);
  type(&m, "/bogus");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_NONE && strstr(m.status, "unknown command"));
  CHECK(chat_key(&m, CHAT_KEY_QUIT, 12, &arg) == CHAT_ACT_QUIT);

  /* resize: narrow terminals show one pane; tiny ones say so; wide chars
   * never split across the edge */
  NEED(chat_render(&m, 10, 40, &g) == 0);
  CHECK(g.cols == 40 && strstr(row(0), "bob") && screen_has("bob: yes"));
  CHECK(!screen_has("#team"));
  chat_key(&m, CHAT_KEY_TAB, 10, &arg);
  NEED(chat_render(&m, 10, 40, &g) == 0);
  CHECK(screen_has("#team"));
  NEED(chat_render(&m, 3, 10, &g) == 0);
  CHECK(strcmp(row(0), "terminal t") == 0 || strstr(row(0), "terminal") != NULL);
  chat_key(&m, CHAT_KEY_TAB, 10, &arg);
  CHECK(chat_add(
            &m, "bob", 0, CHAT_IN, "bob",
            "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xbd\xa0\xe5\xa5\xbd"
            "\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xbd\xa0\xe5\xa5\xbd\xe4\xbd\xa0\xe5\xa5\xbd",
            42, 8000) == 0);
  NEED(chat_render(&m, 10, 25, &g) == 0);
  {
    int r, ok = 1;
    for (r = 0; r < g.rows; r++) {
      const struct chat_cell *last = &g.cells[r * g.cols + g.cols - 1];
      /* the last column is never the left half of a wide character */
      if (last->cp >= 0x4E00 && last->cp <= 0x9FFF) ok = 0;
    }
    CHECK(ok);
    CHECK(screen_has("\xe4\xbd\xa0\xe5\xa5\xbd"));
  }
  if (tu_failures) dump();
  chat_free(&m);
}

static void test_scrollback(void) {
  struct chat_model m;
  const char *arg;
  char t[32];
  int i;
  chat_init(&m, "alice");
  for (i = 0; i < CHAT_MAX_LINES + 50; i++) {
    snprintf(t, sizeof t, "message %d", i);
    CHECK(chat_add(&m, "bob", 0, CHAT_IN, "bob", t, strlen(t), (uint64_t)i) == 0);
  }
  CHECK(m.convs[0].n == CHAT_MAX_LINES && m.convs[0].unread == CHAT_MAX_LINES + 50);
  chat_open(&m, 0);
  NEED(chat_render(&m, 10, 80, &g) == 0);
  CHECK(screen_has("message 549") && !screen_has("message 540:"));
  chat_key(&m, CHAT_KEY_PGUP, 10, &arg);
  NEED(chat_render(&m, 10, 80, &g) == 0);
  CHECK(!screen_has("message 549") && screen_has("message 543"));
  for (i = 0; i < 200; i++) chat_key(&m, CHAT_KEY_PGUP, 10, &arg);
  NEED(chat_render(&m, 10, 80, &g) == 0);
  CHECK(screen_has("message 50") && !screen_has("message 49"));
  for (i = 0; i < 300; i++) chat_key(&m, CHAT_KEY_PGDN, 10, &arg);
  CHECK(m.scroll == 0);
  /* a long line wraps */
  {
    char longt[300];
    memset(longt, 'w', sizeof longt - 1);
    longt[sizeof longt - 1] = 0;
    CHECK(chat_add(&m, "bob", 0, CHAT_IN, "bob", longt, strlen(longt), 1) == 0);
    NEED(chat_render(&m, 20, 80, &g) == 0);
    CHECK(strstr(row(17), "wwwwwwww") && strstr(row(16), "wwwwwwww") && strstr(row(12), "bob: www") &&
          !strstr(row(11), "www"));
  }
  /* too many conversations */
  for (i = 0; i < CHAT_MAX_CONVS + 5; i++) {
    snprintf(t, sizeof t, "u%d", i);
    (void)chat_add(&m, t, 0, CHAT_IN, t, "x", 1, 1);
  }
  CHECK(m.n == CHAT_MAX_CONVS);
  CHECK(chat_add(&m, "another", 0, CHAT_IN, "x", "x", 1, 1) == -1);
  chat_free(&m);
}

/* Issue 14 in the chat UI: /file, /react, /edit, /delete, /timer act on
 * the open conversation (a person or a group), the message picked being
 * the last one of the other side (/react) or ours (/edit, /delete). */
static void test_convo_commands(void) {
  struct chat_model m;
  const char *arg;
  chat_init(&m, "alice");
  type(&m, "/file /tmp/x.bin");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_NONE && strstr(m.status, "open a conversation first"));
  CHECK(chat_add(&m, "team", 1, CHAT_IN, "carol", "standup at 10", 13, 3000) == 0);
  CHECK(chat_add(&m, "team", 1, CHAT_OUT, "alice", "on my way", 9, 3500) == 0);
  CHECK(chat_add(&m, "team", 1, CHAT_IN, "dave", "me too", 6, 4000) == 0);
  CHECK(chat_add(&m, "team", 1, CHAT_NOTICE, "", "a notice", 8, 4500) == 0);
  chat_open(&m, 0);
  type(&m, "/file /tmp/photo.jpg for the team");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_FILE && strcmp(arg, "/tmp/photo.jpg for the team") == 0);
  type(&m, "/file");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_NONE && strstr(m.status, "usage: /file"));
  type(&m, "/react \xf0\x9f\x91\x8d");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_REACT && strcmp(arg, "\xf0\x9f\x91\x8d") == 0 &&
        m.act_ts == 4000 && strcmp(m.act_who, "dave") == 0);
  type(&m, "/react");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_REACT && arg[0] == 0 && m.act_ts == 4000);
  type(&m, "/react a b");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_NONE && strstr(m.status, "usage: /react"));
  type(&m, "/edit on my way, 5 min");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_EDIT && strcmp(arg, "on my way, 5 min") == 0 &&
        m.act_ts == 3500 && strcmp(m.act_who, "alice") == 0);
  type(&m, "/edit");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_NONE && strstr(m.status, "usage: /edit"));
  type(&m, "/delete");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_DELETE && m.act_ts == 3500);
  type(&m, "/delete now");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_NONE && strstr(m.status, "usage: /delete"));
  type(&m, "/timer 1h");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_TIMER && strcmp(arg, "1h") == 0);
  type(&m, "/timer");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_NONE && strstr(m.status, "usage: /timer"));
  /* a conversation with only the other side's messages: nothing of ours to edit */
  CHECK(chat_add(&m, "bob", 0, CHAT_IN, "bob", "hi", 2, 5000) == 0);
  chat_open(&m, 1);
  type(&m, "/delete");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_NONE && strstr(m.status, "no message of yours"));
  type(&m, "/react \xe2\x9d\xa4");
  CHECK(chat_key(&m, CHAT_KEY_ENTER, 12, &arg) == CHAT_ACT_REACT && m.act_ts == 5000 && strcmp(m.act_who, "bob") == 0);
  chat_free(&m);
}

int main(void) {
  setenv("TZ", "UTC", 1);
  if (!setlocale(LC_CTYPE, "C.UTF-8")) {
    fprintf(stderr, "no C.UTF-8 locale\n");
    return 1;
  }
  test_input();
  test_conversations();
  test_scrollback();
  test_convo_commands();
  chat_grid_free(&g);
  return test_done("front_chat_model");
}

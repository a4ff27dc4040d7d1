/* SPDX-License-Identifier: Apache-2.0 */
/* model.h: what `sotto chat` shows, kept apart from curses so that it can be
 * unit-tested (tests/front/test_chat_model.c): conversations with unread
 * counts and bounded scrollback, the input line with UTF-8 editing, the
 * safety-number screen, the keys that act on them, and chat_render, which
 * lays all of it out into a grid of cells. chat.c only reads keys, calls
 * the core and copies the grid to the terminal.
 *
 * Text from contacts is untrusted: every string is sanitised when it
 * enters the model (utf8_sanitize: control characters, bidirectional
 * overrides and invalid bytes become U+FFFD), so nothing a contact sends can
 * move the cursor or change the terminal. Widths come from wcwidth(3) (the
 * caller sets a UTF-8 locale); a character of unknown width shows as U+FFFD. */
#ifndef SOTTO_CHAT_MODEL_H
#define SOTTO_CHAT_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define CHAT_MAX_CONVS 512
#define CHAT_MAX_LINES 500  /* scrollback kept per conversation */
#define CHAT_MAX_TEXT 4096  /* bytes of one stored line (longer ones are cut) */
#define CHAT_MAX_INPUT 4000 /* bytes of the input line */
#define CHAT_NAME_MAX 64
#define CHAT_MAX_ROWS 500
#define CHAT_MAX_COLS 1000
#define CHAT_LIST_WIDTH 22     /* the conversation list beside the conversation */
#define CHAT_SPLIT_MIN_COLS 60 /* narrower terminals show one pane at a time */

enum chat_kind { CHAT_IN = 0, CHAT_OUT = 1, CHAT_NOTICE = 2 };

struct chat_line {
  uint8_t kind;
  uint64_t ts; /* ms since the epoch */
  char who[CHAT_NAME_MAX + 1];
  char *text; /* sanitised, malloc'd */
};

struct chat_conv {
  char name[CHAT_NAME_MAX + 1]; /* user name, or group name */
  int is_group;
  unsigned unread;
  uint64_t last_ts;
  struct chat_line *lines; /* ring of CHAT_MAX_LINES */
  size_t head, n;          /* oldest at head */
  int loaded;              /* history fetched from the store */
};

struct chat_input {
  char buf[CHAT_MAX_INPUT + 1];
  size_t len, cur; /* bytes; cur is on a code point boundary */
};

enum chat_screen_kind { CHAT_SCREEN_MAIN = 0, CHAT_SCREEN_SAFETY = 1 };
enum chat_focus { CHAT_FOCUS_LIST = 0, CHAT_FOCUS_CONV = 1 };

struct chat_model {
  char me[CHAT_NAME_MAX + 1];
  struct chat_conv *convs;
  size_t n;
  size_t sel;    /* selected conversation in the list */
  long open;     /* open conversation, -1 for none */
  int focus;     /* enum chat_focus */
  int screen;    /* enum chat_screen_kind */
  size_t scroll; /* lines scrolled back from the bottom of the open conversation */
  struct chat_input in;
  char status[256];
  char safety_peer[CHAT_NAME_MAX + 1];
  char safety[512]; /* the safety-number screen's text, '\n' separated */
  int connected;
  /* The target of CHAT_ACT_REACT / EDIT / DELETE / TIMER (set by chat_key). */
  uint64_t act_ts;
  char act_who[CHAT_NAME_MAX + 1];
};

/* Actions chat_key asks the front end to carry out. */
enum chat_action {
  CHAT_ACT_NONE = 0,
  CHAT_ACT_SEND,   /* send the text in *arg to the open conversation, then chat_sent */
  CHAT_ACT_OPEN,   /* the open conversation was just opened: load its history */
  CHAT_ACT_SAFETY, /* show the safety number of *arg (chat_show_safety) */
  CHAT_ACT_VERIFY, /* verify the open conversation's peer with the number in *arg */
  CHAT_ACT_TRUST,  /* accept the held new key of the open conversation's peer */
  CHAT_ACT_QUIT,
  /* Issue 14, in the open conversation (a person or a group): */
  CHAT_ACT_FILE,   /* send a file: *arg is "PATH" or "PATH CAPTION" (a path without spaces) */
  CHAT_ACT_REACT,  /* react with *arg ("" removes ours) to message act_ts of act_who */
  CHAT_ACT_EDIT,   /* edit our message act_ts to the text in *arg */
  CHAT_ACT_DELETE, /* delete our message act_ts for everyone */
  CHAT_ACT_TIMER,  /* set the disappearing-message timer to the duration in *arg ("1h", "off", ...) */
};

/* Keys besides Unicode code points (>= 0x20): */
enum {
  CHAT_KEY_ENTER = 0x110000,
  CHAT_KEY_BACKSPACE,
  CHAT_KEY_DELETE,
  CHAT_KEY_LEFT,
  CHAT_KEY_RIGHT,
  CHAT_KEY_UP,
  CHAT_KEY_DOWN,
  CHAT_KEY_HOME,
  CHAT_KEY_END,
  CHAT_KEY_PGUP,
  CHAT_KEY_PGDN,
  CHAT_KEY_TAB,
  CHAT_KEY_ESC,
  CHAT_KEY_KILL_LINE, /* Ctrl-U */
  CHAT_KEY_KILL_WORD, /* Ctrl-W */
  CHAT_KEY_QUIT,      /* Ctrl-C, Ctrl-D on an empty line */
  CHAT_KEY_SAFETY,    /* F2 */
};

void chat_init(struct chat_model *m, const char *me);
void chat_free(struct chat_model *m);

/* The conversation of name (a group when is_group), created when create is
 * set (at most CHAT_MAX_CONVS). Its index, or -1. */
long chat_conv(struct chat_model *m, const char *name, int is_group, int create);
/* Adds a line to a conversation (created when needed). text is untrusted
 * (len bytes, any content). Counts as unread unless the conversation is
 * open. Returns 0 or -1 (no memory, too many conversations). */
int chat_add(struct chat_model *m, const char *conv, int is_group, int kind, const char *who,
             const char *text, size_t len, uint64_t ts);
/* Opens conversation i (its unread count goes to 0). */
void chat_open(struct chat_model *m, size_t i);
/* Sets the status line (sanitised). */
void chat_status(struct chat_model *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Shows the safety-number screen for peer with text (sanitised). */
void chat_show_safety(struct chat_model *m, const char *peer, const char *text);

/* Handles one key. Returns an enum chat_action; *arg then points to its
 * argument (valid until the next call). rows is the terminal height (for
 * page up / down). */
int chat_key(struct chat_model *m, uint32_t key, int rows, const char **arg);

/* Input line editing (also used by chat_key). Insert refuses control
 * characters and what would overflow; 0 or -1. */
int chat_input_insert(struct chat_input *in, uint32_t cp);
void chat_input_backspace(struct chat_input *in);
void chat_input_delete(struct chat_input *in);
void chat_input_left(struct chat_input *in);
void chat_input_right(struct chat_input *in);
void chat_input_clear(struct chat_input *in);

/* One cell of the laid-out screen: a code point (0 for the right half of a
 * double-width character) and attributes. */
enum { CHAT_ATTR_BOLD = 1, CHAT_ATTR_REVERSE = 2, CHAT_ATTR_DIM = 4 };
struct chat_cell {
  uint32_t cp;
  uint8_t attr;
};
struct chat_grid {
  int rows, cols;
  struct chat_cell *cells; /* rows * cols */
  int cur_row, cur_col;    /* where the terminal cursor goes */
};

/* Lays the model out into g (rows x cols, capped by CHAT_MAX_ROWS/COLS;
 * g->cells reallocated as needed). 0 or -1 (no memory). */
int chat_render(const struct chat_model *m, int rows, int cols, struct chat_grid *g);
void chat_grid_free(struct chat_grid *g);
/* Row r of g as UTF-8 (trailing spaces dropped) into out; for tests and the
 * test log. Returns the length. */
size_t chat_grid_row(const struct chat_grid *g, int r, char *out, size_t cap);
/* Display width of a code point (0, 1 or 2; unknown widths count 1 and are
 * drawn as U+FFFD). */
int chat_cp_width(uint32_t cp);

#endif

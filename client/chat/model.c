/* SPDX-License-Identifier: Apache-2.0 */
/* model.c: the chat UI's state, keys and layout (model.h). No curses here. */
#define _XOPEN_SOURCE 700
#include "model.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <wchar.h>

#include "../front/utf8.h"

void chat_init(struct chat_model *m, const char *me) {
  memset(m, 0, sizeof *m);
  utf8_sanitize(m->me, sizeof m->me, me, strlen(me), 0);
  m->open = -1;
}

static void conv_clear(struct chat_conv *c) {
  size_t i;
  if (c->lines)
    for (i = 0; i < CHAT_MAX_LINES; i++) free(c->lines[i].text);
  free(c->lines);
  c->lines = NULL;
}

void chat_free(struct chat_model *m) {
  size_t i;
  for (i = 0; i < m->n; i++) conv_clear(&m->convs[i]);
  free(m->convs);
  memset(m, 0, sizeof *m);
}

long chat_conv(struct chat_model *m, const char *name, int is_group, int create) {
  char clean[CHAT_NAME_MAX + 1];
  struct chat_conv *c;
  size_t i;
  utf8_sanitize(clean, sizeof clean, name, strlen(name), 0);
  for (i = 0; i < m->n; i++)
    if (m->convs[i].is_group == !!is_group && strcmp(m->convs[i].name, clean) == 0) return (long)i;
  if (!create || m->n >= CHAT_MAX_CONVS) return -1;
  if (!m->convs && !(m->convs = calloc(CHAT_MAX_CONVS, sizeof *m->convs))) return -1;
  c = &m->convs[m->n];
  memset(c, 0, sizeof *c);
  snprintf(c->name, sizeof c->name, "%s", clean);
  c->is_group = !!is_group;
  return (long)m->n++;
}

int chat_add(struct chat_model *m, const char *conv, int is_group, int kind, const char *who,
             const char *text, size_t len, uint64_t ts) {
  long i = chat_conv(m, conv, is_group, 1);
  struct chat_conv *c;
  struct chat_line *l;
  size_t cap = (len < CHAT_MAX_TEXT ? len : CHAT_MAX_TEXT) * 3 + 4; /* U+FFFD is 3 bytes for 1 */
  char *t;
  if (i < 0) return -1;
  c = &m->convs[i];
  if (!c->lines && !(c->lines = calloc(CHAT_MAX_LINES, sizeof *c->lines))) return -1;
  if (cap > CHAT_MAX_TEXT + 1) cap = CHAT_MAX_TEXT + 1;
  if (!(t = malloc(cap))) return -1;
  utf8_sanitize(t, cap, text, len, 0);
  if (c->n == CHAT_MAX_LINES) {
    l = &c->lines[c->head];
    free(l->text);
    c->head = (c->head + 1) % CHAT_MAX_LINES;
    c->n--;
  }
  l = &c->lines[(c->head + c->n) % CHAT_MAX_LINES];
  c->n++;
  l->kind = (uint8_t)kind;
  l->ts = ts;
  utf8_sanitize(l->who, sizeof l->who, who ? who : "", who ? strlen(who) : 0, 0);
  l->text = t;
  if (ts > c->last_ts) c->last_ts = ts;
  if (i != m->open && kind != CHAT_OUT) c->unread++;
  return 0;
}

void chat_open(struct chat_model *m, size_t i) {
  if (i >= m->n) return;
  m->open = (long)i;
  m->sel = i;
  m->convs[i].unread = 0;
  m->scroll = 0;
  m->focus = CHAT_FOCUS_CONV;
  m->screen = CHAT_SCREEN_MAIN;
}

void chat_status(struct chat_model *m, const char *fmt, ...) {
  char raw[sizeof m->status];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  utf8_sanitize(m->status, sizeof m->status, raw, strlen(raw), 0);
}

void chat_show_safety(struct chat_model *m, const char *peer, const char *text) {
  utf8_sanitize(m->safety_peer, sizeof m->safety_peer, peer, strlen(peer), 0);
  utf8_sanitize(m->safety, sizeof m->safety, text, strlen(text), 1);
  m->screen = CHAT_SCREEN_SAFETY;
}

/* ---- input line ---- */

int chat_input_insert(struct chat_input *in, uint32_t cp) {
  char enc[4];
  size_t l;
  if (utf8_unsafe(cp) || !(l = utf8_encode(cp, enc))) return -1;
  if (l > CHAT_MAX_INPUT - in->len) return -1;
  memmove(in->buf + in->cur + l, in->buf + in->cur, in->len - in->cur);
  memcpy(in->buf + in->cur, enc, l);
  in->len += l;
  in->cur += l;
  in->buf[in->len] = 0;
  return 0;
}

void chat_input_backspace(struct chat_input *in) {
  size_t p;
  if (in->cur == 0) return;
  p = utf8_prev(in->buf, in->cur);
  memmove(in->buf + p, in->buf + in->cur, in->len - in->cur);
  in->len -= in->cur - p;
  in->cur = p;
  in->buf[in->len] = 0;
}

void chat_input_delete(struct chat_input *in) {
  size_t n;
  if (in->cur >= in->len) return;
  n = utf8_next(in->buf, in->len, in->cur);
  memmove(in->buf + in->cur, in->buf + n, in->len - n);
  in->len -= n - in->cur;
  in->buf[in->len] = 0;
}

void chat_input_left(struct chat_input *in) {
  in->cur = utf8_prev(in->buf, in->cur);
}
void chat_input_right(struct chat_input *in) {
  in->cur = utf8_next(in->buf, in->len, in->cur);
}

void chat_input_clear(struct chat_input *in) {
  memset(in->buf, 0, sizeof in->buf);
  in->len = in->cur = 0;
}

static void kill_word(struct chat_input *in) {
  while (in->cur > 0 && in->buf[in->cur - 1] == ' ') chat_input_backspace(in);
  while (in->cur > 0 && in->buf[in->cur - 1] != ' ') chat_input_backspace(in);
}

/* ---- keys ---- */

/* The newest line of the open conversation of kind (CHAT_IN: someone
 * else's message, CHAT_OUT: ours), or NULL. */
static const struct chat_line *last_line(const struct chat_model *m, int kind) {
  const struct chat_conv *c = &m->convs[m->open];
  size_t i;
  for (i = c->n; i > 0; i--) {
    const struct chat_line *l = &c->lines[(c->head + i - 1) % CHAT_MAX_LINES];
    if (l->kind == kind && l->ts) return l;
  }
  return NULL;
}

/* "/file", "/react", "/edit", "/delete", "/timer": in the open conversation. */
static int convo_command(struct chat_model *m, const char *cmd, const char *arg) {
  const struct chat_line *l;
  if (m->open < 0) {
    chat_status(m, "open a conversation first (%s acts in it)", cmd);
    return CHAT_ACT_NONE;
  }
  if (strcmp(cmd, "/file") == 0) {
    if (!arg[0]) {
      chat_status(m, "usage: /file PATH [CAPTION] (a path without spaces)");
      return CHAT_ACT_NONE;
    }
    return CHAT_ACT_FILE;
  }
  if (strcmp(cmd, "/react") == 0) {
    if (strchr(arg, ' ') || strlen(arg) > 32) {
      chat_status(m, "usage: /react EMOJI (to the last message from someone else; /react alone removes yours)");
      return CHAT_ACT_NONE;
    }
    if ((l = last_line(m, CHAT_IN)) == NULL) {
      chat_status(m, "no message from someone else here to react to");
      return CHAT_ACT_NONE;
    }
    m->act_ts = l->ts;
    snprintf(m->act_who, sizeof m->act_who, "%s", l->who);
    return CHAT_ACT_REACT;
  }
  if (strcmp(cmd, "/edit") == 0 || strcmp(cmd, "/delete") == 0) {
    int edit = cmd[1] == 'e';
    if (edit ? !arg[0] : arg[0] != 0) {
      chat_status(m, edit ? "usage: /edit NEW TEXT (your last message here)" : "usage: /delete (your last message here, for everyone)");
      return CHAT_ACT_NONE;
    }
    if ((l = last_line(m, CHAT_OUT)) == NULL) {
      chat_status(m, "no message of yours here to %s", edit ? "edit" : "delete");
      return CHAT_ACT_NONE;
    }
    m->act_ts = l->ts;
    snprintf(m->act_who, sizeof m->act_who, "%s", m->me);
    return edit ? CHAT_ACT_EDIT : CHAT_ACT_DELETE;
  }
  /* /timer DURATION: read by the front end (sc_duration_parse: 30s, 5m, 1h, 7d, 4w, seconds, off) */
  if (!arg[0] || strchr(arg, ' ')) {
    chat_status(m, "usage: /timer DURATION (30s, 5m, 1h, 7d, 4w) or /timer off");
    return CHAT_ACT_NONE;
  }
  return CHAT_ACT_TIMER;
}

/* Commands typed on the input line: "/msg NAME", "/group NAME",
 * "/safety", "/verify NUMBER", "/trust", "/quit", and in the open
 * conversation "/file PATH [CAPTION]", "/react [EMOJI]", "/edit TEXT",
 * "/delete", "/timer DURATION|off". */
static int command(struct chat_model *m, char *line, const char **arg) {
  static char argbuf[CHAT_MAX_INPUT + 1];
  char *sp = strchr(line, ' ');
  const char *rest = "";
  long i;
  if (sp) {
    *sp = 0;
    rest = sp + 1;
    while (*rest == ' ') rest++;
  }
  snprintf(argbuf, sizeof argbuf, "%s", rest);
  *arg = argbuf;
  if (strcmp(line, "/quit") == 0 || strcmp(line, "/q") == 0) return CHAT_ACT_QUIT;
  if (strcmp(line, "/msg") == 0 || strcmp(line, "/group") == 0) {
    int grp = strcmp(line, "/group") == 0;
    if (!argbuf[0] || strchr(argbuf, ' ')) {
      chat_status(m, "usage: %s NAME", line);
      return CHAT_ACT_NONE;
    }
    if ((i = chat_conv(m, argbuf, grp, 1)) < 0) {
      chat_status(m, "too many conversations");
      return CHAT_ACT_NONE;
    }
    chat_open(m, (size_t)i);
    return CHAT_ACT_OPEN;
  }
  if (strcmp(line, "/safety") == 0) {
    if (argbuf[0]) return CHAT_ACT_SAFETY;
    if (m->open < 0 || m->convs[m->open].is_group) {
      chat_status(m, "open a conversation with a person first (or /safety NAME)");
      return CHAT_ACT_NONE;
    }
    snprintf(argbuf, sizeof argbuf, "%s", m->convs[m->open].name);
    return CHAT_ACT_SAFETY;
  }
  if (strcmp(line, "/verify") == 0) {
    if (m->open < 0 || m->convs[m->open].is_group || !argbuf[0]) {
      chat_status(m, "usage: /verify NUMBER, in a conversation with a person");
      return CHAT_ACT_NONE;
    }
    return CHAT_ACT_VERIFY;
  }
  if (strcmp(line, "/trust") == 0) {
    if (m->open < 0 || m->convs[m->open].is_group || argbuf[0]) {
      chat_status(m, "usage: /trust, in a conversation with a person");
      return CHAT_ACT_NONE;
    }
    return CHAT_ACT_TRUST;
  }
  if (strcmp(line, "/file") == 0 || strcmp(line, "/react") == 0 || strcmp(line, "/edit") == 0 ||
      strcmp(line, "/delete") == 0 || strcmp(line, "/timer") == 0)
    return convo_command(m, line, argbuf);
  chat_status(m,
              "unknown command %s (try /msg NAME, /group NAME, /file PATH, /react EMOJI, /edit TEXT, /delete, "
              "/timer DURATION, /safety, /verify NUMBER, /trust, /quit)",
              line);
  return CHAT_ACT_NONE;
}

int chat_key(struct chat_model *m, uint32_t key, int rows, const char **arg) {
  static char sendbuf[CHAT_MAX_INPUT + 1];
  size_t page = rows > 6 ? (size_t)rows - 4 : 1;
  *arg = NULL;
  if (m->screen == CHAT_SCREEN_SAFETY) {
    if (key == CHAT_KEY_ESC || key == CHAT_KEY_ENTER || key == 'q') m->screen = CHAT_SCREEN_MAIN;
    if (key == CHAT_KEY_QUIT) return CHAT_ACT_QUIT;
    return CHAT_ACT_NONE;
  }
  switch (key) {
    case CHAT_KEY_QUIT:
      return CHAT_ACT_QUIT;
    case CHAT_KEY_ENTER:
      if (m->in.len == 0) {
        if (m->focus == CHAT_FOCUS_LIST && m->sel < m->n) {
          chat_open(m, m->sel);
          return CHAT_ACT_OPEN;
        }
        return CHAT_ACT_NONE;
      }
      snprintf(sendbuf, sizeof sendbuf, "%s", m->in.buf);
      chat_input_clear(&m->in);
      if (sendbuf[0] == '/') return command(m, sendbuf, arg);
      if (m->open < 0) {
        chat_status(m, "no conversation open: pick one with the arrows and Enter, or type /msg NAME");
        snprintf(m->in.buf, sizeof m->in.buf, "%s", sendbuf); /* keep what was typed */
        m->in.len = m->in.cur = strlen(m->in.buf);
        return CHAT_ACT_NONE;
      }
      *arg = sendbuf;
      m->scroll = 0;
      return CHAT_ACT_SEND;
    case CHAT_KEY_TAB:
      if (m->focus == CHAT_FOCUS_LIST && m->open >= 0)
        m->focus = CHAT_FOCUS_CONV;
      else
        m->focus = CHAT_FOCUS_LIST;
      return CHAT_ACT_NONE;
    case CHAT_KEY_ESC:
      m->focus = CHAT_FOCUS_LIST;
      return CHAT_ACT_NONE;
    case CHAT_KEY_UP:
      if (m->focus == CHAT_FOCUS_LIST || m->open < 0) {
        if (m->sel > 0) m->sel--;
      } else {
        m->scroll++;
      }
      return CHAT_ACT_NONE;
    case CHAT_KEY_DOWN:
      if (m->focus == CHAT_FOCUS_LIST || m->open < 0) {
        if (m->sel + 1 < m->n) m->sel++;
      } else if (m->scroll) {
        m->scroll--;
      }
      return CHAT_ACT_NONE;
    case CHAT_KEY_PGUP:
      m->scroll += page;
      return CHAT_ACT_NONE;
    case CHAT_KEY_PGDN:
      m->scroll = m->scroll > page ? m->scroll - page : 0;
      return CHAT_ACT_NONE;
    case CHAT_KEY_SAFETY:
      if (m->open >= 0 && !m->convs[m->open].is_group) {
        snprintf(sendbuf, sizeof sendbuf, "%s", m->convs[m->open].name);
        *arg = sendbuf;
        return CHAT_ACT_SAFETY;
      }
      chat_status(m, "the safety number belongs to a conversation with a person");
      return CHAT_ACT_NONE;
    case CHAT_KEY_BACKSPACE:
      chat_input_backspace(&m->in);
      return CHAT_ACT_NONE;
    case CHAT_KEY_DELETE:
      chat_input_delete(&m->in);
      return CHAT_ACT_NONE;
    case CHAT_KEY_LEFT:
      chat_input_left(&m->in);
      return CHAT_ACT_NONE;
    case CHAT_KEY_RIGHT:
      chat_input_right(&m->in);
      return CHAT_ACT_NONE;
    case CHAT_KEY_HOME:
      m->in.cur = 0;
      return CHAT_ACT_NONE;
    case CHAT_KEY_END:
      m->in.cur = m->in.len;
      return CHAT_ACT_NONE;
    case CHAT_KEY_KILL_LINE:
      chat_input_clear(&m->in);
      return CHAT_ACT_NONE;
    case CHAT_KEY_KILL_WORD:
      kill_word(&m->in);
      return CHAT_ACT_NONE;
    default:
      if (key >= 0x20 && key < 0x110000 && chat_input_insert(&m->in, key) != 0 && !utf8_unsafe(key))
        chat_status(m, "the input line is full");
      return CHAT_ACT_NONE;
  }
}

/* ---- layout ---- */

int chat_cp_width(uint32_t cp) {
  int w;
  if (cp < 0x20 || utf8_unsafe(cp)) return 1; /* drawn as U+FFFD */
  w = wcwidth((wchar_t)cp);
  if (w < 0) return 1;
  return w > 2 ? 2 : w;
}

static struct chat_cell *cell(struct chat_grid *g, int r, int c) {
  return &g->cells[(size_t)r * g->cols + c];
}

/* Puts cp at (r, c) if it fits before col limit; returns the next column
 * (limit when it did not fit). Zero-width code points are dropped. */
static int put(struct chat_grid *g, int r, int c, int limit, uint32_t cp, uint8_t attr) {
  int w;
  if (r < 0 || r >= g->rows || c >= limit) return limit;
  if (cp < 0x20 || utf8_unsafe(cp) || wcwidth((wchar_t)cp) < 0) cp = UTF8_REPLACEMENT;
  w = chat_cp_width(cp);
  if (w == 0) return c;
  if (c + w > limit) {
    for (; c < limit; c++) *cell(g, r, c) = (struct chat_cell){' ', attr};
    return limit;
  }
  *cell(g, r, c) = (struct chat_cell){cp, attr};
  if (w == 2) *cell(g, r, c + 1) = (struct chat_cell){0, attr};
  return c + w;
}

static int put_str(struct chat_grid *g, int r, int c, int limit, const char *s, uint8_t attr) {
  size_t n = strlen(s), off = 0, l;
  uint32_t cp;
  while (off < n && c < limit) {
    l = utf8_decode(s + off, n - off, &cp);
    off += l ? l : 1;
    c = put(g, r, c, limit, cp, attr);
  }
  return c;
}

static void fill(struct chat_grid *g, int r, int c0, int c1, uint8_t attr) {
  int c;
  if (r < 0 || r >= g->rows) return;
  for (c = c0; c < c1; c++) *cell(g, r, c) = (struct chat_cell){' ', attr};
}

static int str_width(const char *s) {
  size_t n = strlen(s), off = 0, l;
  uint32_t cp;
  int w = 0;
  while (off < n) {
    l = utf8_decode(s + off, n - off, &cp);
    off += l ? l : 1;
    w += chat_cp_width(cp);
  }
  return w;
}

/* Draws (or, with g == NULL, counts) the rows of one conversation line
 * wrapped to columns [c0, c1), its first row at row r (rows outside
 * [top, bottom) are not drawn). Returns the number of rows. */
static int draw_line(struct chat_grid *g, const struct chat_model *m, const struct chat_line *l, int r,
                     int c0, int c1, int top, int bottom) {
  char prefix[CHAT_NAME_MAX + 32], hhmm[8] = "--:--";
  time_t t = (time_t)(l->ts / 1000);
  struct tm tm;
  uint8_t attr = l->kind == CHAT_NOTICE ? CHAT_ATTR_BOLD : 0;
  int rows = 1, c = c0, indent = c0 + 2 < c1 ? c0 + 2 : c0;
  size_t off = 0, n, len;
  uint32_t cp;
  const char *s;
  if (l->ts && localtime_r(&t, &tm)) strftime(hhmm, sizeof hhmm, "%H:%M", &tm);
  if (l->kind == CHAT_NOTICE)
    snprintf(prefix, sizeof prefix, "%s * ", hhmm);
  else
    snprintf(prefix, sizeof prefix, "%s %s: ", hhmm, l->kind == CHAT_OUT ? m->me : l->who);
  for (int pass = 0; pass < 2; pass++) {
    s = pass ? l->text : prefix;
    n = strlen(s);
    off = 0;
    while (off < n) {
      int w;
      len = utf8_decode(s + off, n - off, &cp);
      if (!len) cp = UTF8_REPLACEMENT;
      w = chat_cp_width(cp);
      if (c + w > c1 && c > indent) {
        rows++;
        r++;
        c = indent;
      }
      if (g && r >= top && r < bottom)
        c = put(g, r, c, c1, cp, pass ? attr : (uint8_t)(attr | (l->kind == CHAT_IN ? CHAT_ATTR_BOLD : 0)));
      else
        c += w;
      off += len ? len : 1;
    }
  }
  return rows;
}

static void render_list(const struct chat_model *m, struct chat_grid *g, int top, int bottom, int c0,
                        int c1) {
  int h = bottom - top, r;
  size_t first = 0, i;
  if (h <= 0) return;
  if (m->n == 0) {
    put_str(g, top, c0, c1, "(no conversations:", CHAT_ATTR_DIM);
    put_str(g, top + 1, c0, c1, " type /msg NAME)", CHAT_ATTR_DIM);
    return;
  }
  if (m->sel >= (size_t)h) first = m->sel - (size_t)h + 1;
  for (i = first, r = top; i < m->n && r < bottom; i++, r++) {
    const struct chat_conv *c = &m->convs[i];
    char unread[24] = "";
    uint8_t attr = 0;
    int col, uw;
    if (i == m->sel) attr |= m->focus == CHAT_FOCUS_LIST ? CHAT_ATTR_REVERSE : CHAT_ATTR_BOLD;
    if (c->unread) {
      attr |= CHAT_ATTR_BOLD;
      snprintf(unread, sizeof unread, " (%u)", c->unread);
    }
    fill(g, r, c0, c1, attr);
    uw = str_width(unread);
    col = put_str(g, r, c0, c1, (long)i == m->open ? ">" : " ", attr);
    if (c->is_group) col = put_str(g, r, col, c1, "#", attr);
    put_str(g, r, col, c1 - uw > col ? c1 - uw : col, c->name, attr);
    if (uw && c1 - uw > c0) put_str(g, r, c1 - uw, c1, unread, attr);
  }
}

static void render_conv(const struct chat_model *m, struct chat_grid *g, int top, int bottom, int c0,
                        int c1) {
  const struct chat_conv *c;
  int h = bottom - top, total = 0, r, skip;
  size_t i;
  if (h <= 0 || c1 <= c0) return;
  if (m->open < 0) {
    put_str(g, top, c0, c1, "Pick a conversation (arrows, Enter) or type /msg NAME or /group NAME.",
            CHAT_ATTR_DIM);
    return;
  }
  c = &m->convs[m->open];
  for (i = 0; i < c->n; i++)
    total += draw_line(NULL, m, &c->lines[(c->head + i) % CHAT_MAX_LINES], 0, c0, c1, 0, 0);
  skip = (int)(m->scroll < (size_t)total ? m->scroll : (size_t)total);
  if (total - skip < h) skip = total > h ? total - h : 0;
  /* The newest line ends at row bottom - 1 + skip. */
  r = bottom + skip - total;
  for (i = 0; i < c->n; i++) {
    const struct chat_line *l = &c->lines[(c->head + i) % CHAT_MAX_LINES];
    r += draw_line(g, m, l, r, c0, c1, top, bottom);
  }
  if (c->n == 0) put_str(g, top, c0, c1, "(no messages yet)", CHAT_ATTR_DIM);
}

static void render_safety(const struct chat_model *m, struct chat_grid *g, int top, int bottom) {
  char title[CHAT_NAME_MAX + 40];
  const char *p = m->safety;
  int r = top;
  snprintf(title, sizeof title, "Safety number with %s", m->safety_peer);
  put_str(g, r++, 1, g->cols, title, CHAT_ATTR_BOLD);
  r++;
  while (*p && r < bottom - 1) {
    const char *nl = strchr(p, '\n');
    char row[512];
    size_t l = nl ? (size_t)(nl - p) : strlen(p);
    if (l >= sizeof row) l = sizeof row - 1;
    memcpy(row, p, l);
    row[l] = 0;
    put_str(g, r++, 2, g->cols, row, 0);
    p = nl ? nl + 1 : p + strlen(p);
  }
  if (bottom - 1 > top)
    put_str(g, bottom - 1, 1, g->cols, "Esc: back.  Compare with your contact, then /verify NUMBER.",
            CHAT_ATTR_DIM);
}

int chat_render(const struct chat_model *m, int rows, int cols, struct chat_grid *g) {
  int body_top = 1, body_bottom, r, c, start, cw;
  char head[CHAT_NAME_MAX * 2 + 64];
  size_t off;
  if (rows > CHAT_MAX_ROWS) rows = CHAT_MAX_ROWS;
  if (cols > CHAT_MAX_COLS) cols = CHAT_MAX_COLS;
  if (rows < 1) rows = 1;
  if (cols < 1) cols = 1;
  if (!g->cells || g->rows != rows || g->cols != cols) {
    struct chat_cell *nc = realloc(g->cells, (size_t)rows * (size_t)cols * sizeof *nc);
    if (!nc) return -1;
    g->cells = nc;
    g->rows = rows;
    g->cols = cols;
  }
  for (r = 0; r < rows; r++) fill(g, r, 0, cols, 0);
  g->cur_row = rows - 1;
  g->cur_col = 0;
  if (rows < 4 || cols < 20) {
    put_str(g, 0, 0, cols, "terminal too small", 0);
    g->cur_row = 0;
    return 0;
  }
  body_bottom = rows - 2;
  /* Header. */
  fill(g, 0, 0, cols, CHAT_ATTR_REVERSE);
  if (m->open >= 0)
    snprintf(head, sizeof head, " sotto: %s  |  %s%s", m->me, m->convs[m->open].is_group ? "#" : "",
             m->convs[m->open].name);
  else
    snprintf(head, sizeof head, " sotto: %s", m->me);
  put_str(g, 0, 0, cols, head, CHAT_ATTR_REVERSE);
  {
    const char *st = m->connected ? "online " : "offline ";
    put_str(g, 0, cols - str_width(st), cols, st, CHAT_ATTR_REVERSE);
  }
  /* Body. */
  if (m->screen == CHAT_SCREEN_SAFETY) {
    render_safety(m, g, body_top, body_bottom);
  } else if (cols >= CHAT_SPLIT_MIN_COLS) {
    render_list(m, g, body_top, body_bottom, 0, CHAT_LIST_WIDTH);
    for (r = body_top; r < body_bottom; r++) put(g, r, CHAT_LIST_WIDTH, cols, 0x2502, CHAT_ATTR_DIM);
    render_conv(m, g, body_top, body_bottom, CHAT_LIST_WIDTH + 2, cols);
  } else if (m->focus == CHAT_FOCUS_LIST || m->open < 0) {
    render_list(m, g, body_top, body_bottom, 0, cols);
  } else {
    render_conv(m, g, body_top, body_bottom, 0, cols);
  }
  /* Status line and input line. */
  fill(g, rows - 2, 0, cols, CHAT_ATTR_DIM);
  put_str(g, rows - 2, 0, cols,
          m->status[0] ? m->status : "Tab: list/conversation  /msg NAME  /safety  /quit", CHAT_ATTR_DIM);
  c = put_str(g, rows - 1, 0, cols, "> ", CHAT_ATTR_BOLD);
  /* Scroll the input so that the cursor stays visible. */
  cw = 0;
  start = 0;
  {
    char tmp[CHAT_MAX_INPUT + 1];
    memcpy(tmp, m->in.buf, m->in.cur);
    tmp[m->in.cur] = 0;
    cw = str_width(tmp);
  }
  off = 0;
  while (cw - start > cols - c - 1 && off < m->in.cur) {
    uint32_t cp;
    size_t l = utf8_decode(m->in.buf + off, m->in.len - off, &cp);
    start += chat_cp_width(cp);
    off += l ? l : 1;
  }
  g->cur_col = c + (cw - start);
  g->cur_row = rows - 1;
  put_str(g, rows - 1, c, cols, m->in.buf + off, 0);
  return 0;
}

void chat_grid_free(struct chat_grid *g) {
  free(g->cells);
  memset(g, 0, sizeof *g);
}

size_t chat_grid_row(const struct chat_grid *g, int r, char *out, size_t cap) {
  size_t w = 0, end;
  int c;
  char enc[4];
  if (cap == 0) return 0;
  for (c = 0; c < g->cols && r >= 0 && r < g->rows; c++) {
    uint32_t cp = g->cells[(size_t)r * g->cols + c].cp;
    size_t l;
    if (cp == 0) continue;
    l = utf8_encode(cp, enc);
    if (l >= cap - w) break;
    memcpy(out + w, enc, l);
    w += l;
  }
  end = w;
  while (end > 0 && out[end - 1] == ' ') end--;
  out[end] = 0;
  return end;
}

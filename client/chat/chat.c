/* SPDX-License-Identifier: Apache-2.0 */
/* chat.c: the terminal side of `sotto chat` (chat.h). One poll(2) loop over
 * the terminal and the core's link to the server; keys go to the model
 * (chat_key), the actions it returns become core calls, the core's events
 * become lines in the model, and after each round the model is laid out
 * (chat_render) and copied cell by cell to curses, which sends the terminal
 * only what changed. Only sanitised code points reach curses (model.h), so
 * no byte a contact chose is written to the terminal. A resize arrives as
 * KEY_RESIZE (ncurses handles SIGWINCH) and is just a render at the new
 * size. */
#define _XOPEN_SOURCE_EXTENDED 1
#define _GNU_SOURCE
#include "chat.h"

#include <curses.h>
#include <errno.h>
#include <langinfo.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wchar.h>

#include "model.h"

#define RECONNECT_MIN_MS 1000
#define RECONNECT_MAX_MS 30000
#define HISTORY_LOAD CHAT_MAX_LINES

struct ui {
  struct sc_client *sc;
  struct chat_model m;
  struct chat_grid g;
  int sending;
  int reconnect_ms;
  int64_t reconnect_at;
};

/* ---- events from the core ---- */

/* A line that cannot be kept (no memory, or CHAT_MAX_CONVS conversations
 * already): never dropped silently; the message itself is in the history. */
static void add_or_say(struct ui *u, const char *conv, int is_group, int kind, const char *who, const char *text,
                       size_t len, uint64_t ts) {
  if (chat_add(&u->m, conv, is_group, kind, who, text, len, ts) != 0)
    chat_status(&u->m, "a message in %s cannot be shown here (too many conversations, or no memory); "
                       "'sotto history' has it",
                conv);
}

/* A message with its conversation marks (issue 14): the reply it answers,
 * (edited), a tombstone, reactions. 0 when it has none (shown as it is). */
static int convo_line(struct ui *u, const char *conv, int is_group, int kind, const char *who,
                      const struct sc_event *ev) {
  size_t cap, k = 0, i;
  char *b;
  if (!(ev->ref_author && ev->ref_author[0]) && !ev->edited && !ev->deleted && !ev->n_reactions && !ev->request)
    return 0;
  cap = ev->text_len + 128 + ev->n_reactions * (SC_USER_MAX + 40);
  if (!(b = malloc(cap))) return 0;
  if (ev->request) k += (size_t)snprintf(b + k, cap - k, "(request) ");
  if (ev->ref_author && ev->ref_author[0])
    k += (size_t)snprintf(b + k, cap - k, "(reply to %s #%llu) ", ev->ref_author, (unsigned long long)ev->ref_ts);
  if (ev->deleted) {
    k += (size_t)snprintf(b + k, cap - k, "(message deleted)");
  } else if (k + ev->text_len < cap) {
    memcpy(b + k, ev->text, ev->text_len);
    k += ev->text_len;
    if (ev->edited && k < cap) k += (size_t)snprintf(b + k, cap - k, " (edited)");
  }
  for (i = 0; i < ev->n_reactions && k < cap; i++)
    k += (size_t)snprintf(b + k, cap - k, "%s%s %s%s", i ? ", " : " [", ev->reactions[i].emoji, ev->reactions[i].user,
                          i + 1 == ev->n_reactions ? "]" : "");
  add_or_say(u, conv, is_group, kind, who, b, k < cap ? k : cap - 1, ev->timestamp_ms);
  free(b);
  return 1;
}

static void add_event(struct ui *u, const struct sc_event *ev, int from_history) {
  const char *peer = ev->peer ? ev->peer : "", *group = ev->group ? ev->group : "";
  const char *conv = group[0] ? group : peer;
  char line[600];
  switch (ev->kind) {
    case SC_EV_MESSAGE:
      if (!convo_line(u, conv, group[0] != 0, CHAT_IN, peer, ev))
        add_or_say(u, conv, group[0] != 0, CHAT_IN, peer, ev->text, ev->text_len, ev->timestamp_ms);
      return;
    case SC_EV_SENT:
      if (u->sending && !from_history) return; /* chat.c adds it when the send returns */
      if (!convo_line(u, conv, group[0] != 0, CHAT_OUT, u->m.me, ev))
        add_or_say(u, conv, group[0] != 0, CHAT_OUT, u->m.me, ev->text, ev->text_len, ev->timestamp_ms);
      return;
    case SC_EV_LINK_UP:
      u->m.connected = 1;
      chat_status(&u->m, "connected to %s", sc_server(u->sc));
      return;
    case SC_EV_LINK_DOWN:
      u->m.connected = 0;
      chat_status(&u->m, "connection lost (%s); reconnecting",
                  ev->error ? sc_error_message(ev->error) : "closed");
      return;
    case SC_EV_DRAINED:
    case SC_EV_KEYS_TOPPED_UP:
    case SC_EV_KEYS_ROTATED:
      return;
    case SC_EV_DELIVERY:
      /* Receipts go to the status line; a text given up is a notice. */
      if (ev->state != SC_STATE_FAILED && ev->state != SC_STATE_EXPIRED) {
        sc_event_describe(line, sizeof line, ev);
        chat_status(&u->m, "%s", line);
        return;
      }
      break;
    default:
      break;
  }
  /* Key changes, held messages, group changes...: a notice in the
   * conversation concerned, or on the status line. */
  sc_event_describe(line, sizeof line, ev);
  if (conv[0])
    add_or_say(u, conv, group[0] != 0, CHAT_NOTICE, peer, line, strlen(line),
               ev->timestamp_ms ? ev->timestamp_ms : sc_now_ms());
  else
    chat_status(&u->m, "%s", line);
}

static void sink(void *ud, const struct sc_event *ev) {
  add_event(ud, ev, 0);
}

struct hist_ctx {
  struct ui *u;
  const char *name;
  int is_group;
};

static int hist_cb(void *ud, const struct sc_event *ev) {
  struct hist_ctx *h = ud;
  const char *group = ev->group ? ev->group : "";
  /* sc_history matches a peer or a group: keep the conversation's own. */
  if (h->is_group ? strcmp(group, h->name) != 0 : group[0] != 0) return 0;
  add_event(h->u, ev, 1);
  return 0;
}

/* Loads a conversation's stored history (once): the lines it has so far
 * (live ones since start) are replaced by the log, which holds them too. */
static void load_history(struct ui *u, size_t i) {
  struct chat_conv *c = &u->m.convs[i];
  struct hist_ctx h;
  char name[CHAT_NAME_MAX + 1];
  unsigned unread;
  int rc;
  if (c->loaded) return;
  snprintf(name, sizeof name, "%s", c->name);
  unread = c->unread;
  {
    size_t k;
    for (k = 0; k < c->n; k++) {
      free(c->lines[(c->head + k) % CHAT_MAX_LINES].text);
      c->lines[(c->head + k) % CHAT_MAX_LINES].text = NULL;
    }
    c->n = c->head = 0;
  }
  h.u = u;
  h.name = name;
  h.is_group = c->is_group;
  rc = sc_history(u->sc, name, hist_cb, &h);
  c = &u->m.convs[i];
  c->loaded = 1;
  c->unread = (long)i == u->m.open ? 0 : unread;
  if (rc) chat_status(&u->m, "cannot read the history: %s", sc_error_message(rc));
}

static int contact_cb(void *ud, const struct sc_contact *ct) {
  struct ui *u = ud;
  (void)chat_conv(&u->m, ct->name, 0, 1);
  return 0;
}

static int group_cb(void *ud, const struct sc_group *g) {
  struct ui *u = ud;
  (void)chat_conv(&u->m, g->name, 1, 1);
  return 0;
}

/* ---- actions ---- */

static void do_send(struct ui *u, const char *text) {
  struct chat_conv *c = &u->m.convs[u->m.open];
  struct sc_sent s;
  char name[CHAT_NAME_MAX + 1];
  int rc, grp = c->is_group;
  snprintf(name, sizeof name, "%s", c->name);
  memset(&s, 0, sizeof s);
  u->sending = 1;
  rc = grp ? sc_group_send(&s, u->sc, name, text, strlen(text), 0)
           : sc_send_text(&s, u->sc, name, text, strlen(text), 0);
  u->sending = 0;
  if (rc == 0 || rc == SC_ERR_PARTIAL) {
    (void)chat_add(&u->m, name, grp, CHAT_OUT, u->m.me, text, strlen(text),
                   s.timestamp_ms ? s.timestamp_ms : sc_now_ms());
    if (rc)
      chat_status(&u->m, "sent, but %u member%s did not get it", s.undelivered,
                  s.undelivered == 1 ? "" : "s");
    else
      chat_status(&u->m, "sent");
    return;
  }
  /* Not sent: the text goes back to the input line, the reason to the status. */
  snprintf(u->m.in.buf, sizeof u->m.in.buf, "%s", text);
  u->m.in.len = u->m.in.cur = strlen(u->m.in.buf);
  chat_status(&u->m, "not sent: %s%s%s", sc_errdetail(u->sc)[0] ? sc_errdetail(u->sc) : sc_error_message(rc),
              sc_error_hint(rc)[0] ? "; " : "", sc_error_hint(rc));
}

static void draw(struct ui *u);

/* The open conversation as the core names it: "#GROUP" or the user. */
static void open_conv(const struct ui *u, char *out, size_t cap) {
  const struct chat_conv *c = &u->m.convs[u->m.open];
  snprintf(out, cap, "%s%s", c->is_group ? "#" : "", c->name);
}

static void say_failure(struct ui *u, const char *what, int rc) {
  chat_status(&u->m, "%s: %s%s%s", what, sc_errdetail(u->sc)[0] ? sc_errdetail(u->sc) : sc_error_message(rc),
              sc_error_hint(rc)[0] ? "; " : "", sc_error_hint(rc));
}

/* /file PATH [CAPTION]: the file to the open conversation (a person or a
 * group); its attachment event shows in the conversation. */
static void do_file(struct ui *u, const char *arg) {
  char conv[CHAT_NAME_MAX + 2], path[CHAT_MAX_INPUT + 1];
  const char *caption = strchr(arg, ' ');
  struct sc_sent s;
  size_t n = caption ? (size_t)(caption - arg) : strlen(arg);
  int rc;
  open_conv(u, conv, sizeof conv);
  memcpy(path, arg, n);
  path[n] = 0;
  while (caption && *caption == ' ') caption++;
  if (caption && !*caption) caption = NULL;
  memset(&s, 0, sizeof s);
  chat_status(&u->m, "sending %s ...", path);
  draw(u);
  rc = sc_send_file(&s, u->sc, conv, path, NULL, NULL, caption, caption ? strlen(caption) : 0, 0);
  if (rc == 0)
    chat_status(&u->m, "file sent");
  else if (rc == SC_ERR_PARTIAL)
    chat_status(&u->m, "file sent, but %u member%s did not get it", s.undelivered, s.undelivered == 1 ? "" : "s");
  else
    say_failure(u, "file not sent", rc);
}

/* /react, /edit, /delete (the message chat_key picked), /timer. */
static void do_change(struct ui *u, int act, const char *arg) {
  char conv[CHAT_NAME_MAX + 2];
  uint32_t secs = 0;
  int rc;
  open_conv(u, conv, sizeof conv);
  switch (act) {
    case CHAT_ACT_REACT:
      rc = sc_react(u->sc, conv, u->m.act_ts, arg, 0);
      break;
    case CHAT_ACT_EDIT:
      rc = sc_edit(u->sc, conv, u->m.act_ts, arg, strlen(arg), 0);
      break;
    case CHAT_ACT_DELETE:
      rc = sc_delete_for_all(u->sc, conv, u->m.act_ts, 0);
      break;
    default:
      if ((rc = sc_duration_parse(&secs, arg)) != 0) {
        chat_status(&u->m, "not a duration: %s (30s, 5m, 1h, 7d, 4w or off)", arg);
        return;
      }
      rc = sc_set_timer(u->sc, conv, secs, 0);
      break;
  }
  if (rc) {
    say_failure(u, "not done", rc);
    return;
  }
  /* The conversation again from the history: the message's new state
   * (edited, deleted, its reactions) as every other line shows it. */
  u->m.convs[u->m.open].loaded = 0;
  load_history(u, (size_t)u->m.open);
  if (sc_change_queued(u->sc)) {
    chat_status(&u->m, "done here; queued (server unreachable)");
  } else if (act == CHAT_ACT_TIMER) {
    char d[64];
    if (secs)
      sc_duration_text(d, sizeof d, secs);
    chat_status(&u->m, secs ? "messages here now disappear after %s" : "disappearing messages off%s", secs ? d : "");
  } else {
    chat_status(&u->m, act == CHAT_ACT_REACT ? (arg[0] ? "reacted" : "reaction removed")
                       : act == CHAT_ACT_EDIT ? "edited"
                                              : "deleted for everyone");
  }
}

static void do_safety(struct ui *u, const char *peer) {
  struct sc_safety sf;
  char text[400], *p = text;
  int rc, i;
  if (!sc_username_ok(peer)) {
    chat_status(&u->m, "not a username: %s", peer);
    return;
  }
  if ((rc = sc_safety_number(&sf, u->sc, peer)) != 0) {
    chat_status(&u->m, "no safety number: %s",
                sc_errdetail(u->sc)[0] ? sc_errdetail(u->sc) : sc_error_message(rc));
    return;
  }
  /* 12 groups of 5 digits, in 3 rows of 4, as the Signal apps show it. */
  for (i = 0; i < 12; i++) {
    int w =
        snprintf(p, sizeof text - (size_t)(p - text), "%.5s%s", sf.number + 5 * i, i % 4 == 3 ? "\n" : " ");
    if (w > 0) p += w; /* 12 * 6 bytes: always fits */
  }
  snprintf(p, sizeof text - (size_t)(p - text), "\nverified: %s%s\n%s", sf.contact.verified ? "yes" : "no",
           sf.contact.key_changes ? " (their key changed before)" : "",
           sf.contact.new_key_held ? "a new key is held: this number is for the new key\n" : "");
  chat_show_safety(&u->m, peer, text);
}

static void do_verify(struct ui *u, const char *number) {
  const char *peer = u->m.convs[u->m.open].name;
  unsigned released = 0;
  int rc = sc_verify(&released, u->sc, peer, number);
  if (rc)
    chat_status(&u->m, "not verified: %s",
                sc_errdetail(u->sc)[0] ? sc_errdetail(u->sc) : sc_error_message(rc));
  else
    chat_status(&u->m, "%s verified%s", peer, released ? " (held messages released)" : "");
}

static void do_trust(struct ui *u) {
  char peer[CHAT_NAME_MAX + 1];
  unsigned released = 0;
  int rc;
  snprintf(peer, sizeof peer, "%s", u->m.convs[u->m.open].name);
  rc = sc_trust(&released, u->sc, peer);
  if (rc)
    chat_status(&u->m, "not trusted: %s", sc_errdetail(u->sc)[0] ? sc_errdetail(u->sc) : sc_error_message(rc));
  else
    chat_status(&u->m, "%s's new key accepted (not verified); %u held message%s released", peer, released,
                released == 1 ? "" : "s");
}

/* ---- the terminal ---- */

static uint32_t map_key(int r, wint_t k) {
  if (r == KEY_CODE_YES) {
    switch (k) {
      case KEY_ENTER:
        return CHAT_KEY_ENTER;
      case KEY_BACKSPACE:
        return CHAT_KEY_BACKSPACE;
      case KEY_DC:
        return CHAT_KEY_DELETE;
      case KEY_LEFT:
        return CHAT_KEY_LEFT;
      case KEY_RIGHT:
        return CHAT_KEY_RIGHT;
      case KEY_UP:
        return CHAT_KEY_UP;
      case KEY_DOWN:
        return CHAT_KEY_DOWN;
      case KEY_HOME:
        return CHAT_KEY_HOME;
      case KEY_END:
        return CHAT_KEY_END;
      case KEY_PPAGE:
        return CHAT_KEY_PGUP;
      case KEY_NPAGE:
        return CHAT_KEY_PGDN;
      case KEY_BTAB:
        return CHAT_KEY_TAB;
      default:
        if (k == KEY_F(2)) return CHAT_KEY_SAFETY;
        return 0;
    }
  }
  switch (k) {
    case '\r':
    case '\n':
      return CHAT_KEY_ENTER;
    case 127:
    case 8:
      return CHAT_KEY_BACKSPACE;
    case '\t':
      return CHAT_KEY_TAB;
    case 27:
      return CHAT_KEY_ESC;
    case 3:
      return CHAT_KEY_QUIT;
    case 1:
      return CHAT_KEY_HOME;
    case 5:
      return CHAT_KEY_END;
    case 21:
      return CHAT_KEY_KILL_LINE;
    case 23:
      return CHAT_KEY_KILL_WORD;
    default:
      return k >= 0x20 ? (uint32_t)k : 0;
  }
}

static void draw(struct ui *u) {
  int r, c;
  if (chat_render(&u->m, LINES, COLS, &u->g) != 0) return;
  for (r = 0; r < u->g.rows && r < LINES; r++)
    for (c = 0; c < u->g.cols && c < COLS; c++) {
      const struct chat_cell *cell = &u->g.cells[(size_t)r * u->g.cols + c];
      wchar_t w[2] = {(wchar_t)cell->cp, 0};
      attr_t a = 0;
      cchar_t cc;
      if (cell->cp == 0) continue; /* right half of a wide character */
      if (cell->attr & CHAT_ATTR_BOLD) a |= A_BOLD;
      if (cell->attr & CHAT_ATTR_REVERSE) a |= A_REVERSE;
      if (cell->attr & CHAT_ATTR_DIM) a |= A_DIM;
      if (setcchar(&cc, w, a, 0, NULL) == OK) mvadd_wch(r, c, &cc);
    }
  move(u->g.cur_row, u->g.cur_col);
  refresh();
}

static void try_connect(struct ui *u) {
  int64_t now = sc_monotonic_ms();
  int rc;
  if (sc_connected(u->sc) || now < u->reconnect_at) return;
  chat_status(&u->m, "connecting to %s...", sc_server(u->sc));
  draw(u);
  rc = sc_connect(u->sc, 10000);
  if (rc == 0) {
    u->m.connected = 1;
    u->reconnect_ms = RECONNECT_MIN_MS;
    u->reconnect_at = 0;
    chat_status(&u->m, "connected to %s", sc_server(u->sc));
    return;
  }
  u->m.connected = 0;
  chat_status(&u->m, "offline: %s; next try in %d s",
              sc_errdetail(u->sc)[0] ? sc_errdetail(u->sc) : sc_error_message(rc), u->reconnect_ms / 1000);
  u->reconnect_at = now + u->reconnect_ms;
  if (u->reconnect_ms < RECONNECT_MAX_MS) u->reconnect_ms *= 2;
  if (u->reconnect_ms > RECONNECT_MAX_MS) u->reconnect_ms = RECONNECT_MAX_MS;
}

static void open_first(struct ui *u, const char *peer) {
  int grp = peer[0] == '#';
  long i = chat_conv(&u->m, grp ? peer + 1 : peer, grp, 1);
  if (i >= 0) {
    chat_open(&u->m, (size_t)i);
    load_history(u, (size_t)i);
  }
}

int chat_run(struct sc_client *c, const char *open_peer) {
  struct ui u;
  int quit = 0, rc;
  size_t k;

  if (!isatty(0) || !isatty(1)) {
    fprintf(stderr,
            "sotto: chat needs a terminal (standard input and output); for scripts use 'sotto daemon'\n");
    return -1;
  }
  setlocale(LC_ALL, "");
  memset(&u, 0, sizeof u);
  u.sc = c;
  u.reconnect_ms = RECONNECT_MIN_MS;
  chat_init(&u.m, sc_username(c));
  sc_set_sink(c, sink, &u);
  (void)sc_set_option(c, SC_OPT_AUTO_RECONNECT, 1);
  if (sc_contacts(c, contact_cb, &u) != 0 || sc_groups(c, group_cb, &u) != 0)
    chat_status(&u.m, "cannot list conversations: %s", sc_errdetail(c));
  if (!initscr()) {
    fprintf(stderr, "sotto: cannot start the terminal UI (TERM=%s)\n", getenv("TERM") ? getenv("TERM") : "");
    return -1;
  }
  raw();
  noecho();
  nonl();
  keypad(stdscr, TRUE);
  nodelay(stdscr, TRUE);
  set_escdelay(50);
  if (strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
    chat_status(&u.m, "the terminal's locale is not UTF-8 (LANG=C.UTF-8?): other scripts show as '?'");
  if (open_peer) open_first(&u, open_peer);
  draw(&u);
  try_connect(&u);
  draw(&u);

  while (!quit) {
    struct pollfd pfd[2];
    int np = 1, timeout = 1000;
    int64_t dl;
    wint_t wk;

    for (k = 0; k < 64 && sc_connected(c) && sc_link_pending(c); k++) (void)sc_link_step(c, 0);
    pfd[0] = (struct pollfd){0, POLLIN, 0};
    if (sc_connected(c) && sc_link_fd(c) >= 0) pfd[np++] = (struct pollfd){sc_link_fd(c), POLLIN, 0};
    dl = sc_connected(c) ? sc_link_next_deadline(c) : u.reconnect_at;
    if (dl >= 0) {
      int64_t left = dl - sc_monotonic_ms();
      if (left < 0) left = 0;
      if (left < timeout) timeout = (int)left;
    }
    if (poll(pfd, (nfds_t)np, timeout) < 0 && errno != EINTR) break;
    if (sc_connected(c)) {
      if ((np > 1 && pfd[1].revents) ||
          (sc_link_next_deadline(c) >= 0 && sc_monotonic_ms() >= sc_link_next_deadline(c))) {
        rc = sc_link_step(c, 0);
        if (rc < 0) chat_status(&u.m, "%s", sc_errdetail(c)[0] ? sc_errdetail(c) : sc_error_message(rc));
        if (!sc_connected(c)) u.m.connected = 0;
      }
    } else {
      try_connect(&u);
    }
    /* Every key typed (and KEY_RESIZE). */
    while (!quit && (rc = get_wch(&wk)) != ERR) {
      const char *arg = NULL;
      uint32_t key;
      int act;
      if (rc == KEY_CODE_YES && wk == KEY_RESIZE) continue; /* the render below uses the new size */
      if (rc == OK && wk == 4 && u.m.in.len == 0)
        key = CHAT_KEY_QUIT; /* Ctrl-D on an empty line */
      else
        key = map_key(rc, wk);
      if (!key) continue;
      switch ((act = chat_key(&u.m, key, LINES, &arg))) {
        case CHAT_ACT_QUIT:
          quit = 1;
          break;
        case CHAT_ACT_SEND:
          do_send(&u, arg);
          break;
        case CHAT_ACT_OPEN:
          load_history(&u, (size_t)u.m.open);
          break;
        case CHAT_ACT_SAFETY:
          do_safety(&u, arg);
          break;
        case CHAT_ACT_VERIFY:
          do_verify(&u, arg);
          break;
        case CHAT_ACT_TRUST:
          do_trust(&u);
          break;
        case CHAT_ACT_FILE:
          do_file(&u, arg);
          break;
        case CHAT_ACT_REACT:
        case CHAT_ACT_EDIT:
        case CHAT_ACT_DELETE:
        case CHAT_ACT_TIMER:
          do_change(&u, act, arg);
          break;
        default:
          break;
      }
    }
    draw(&u);
  }
  endwin();
  sc_set_sink(c, NULL, NULL);
  sc_disconnect(c);
  chat_grid_free(&u.g);
  chat_free(&u.m);
  return 0;
}

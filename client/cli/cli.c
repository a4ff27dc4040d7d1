/* SPDX-License-Identifier: Apache-2.0 */
/* cli.c: output, errors, passphrase and store opening shared by every
 * subcommand (see cli.h). */
#include "cli.h"
#include "homelock.h"
#include "utf8.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

__attribute__((format(printf, 4, 0))) static void vline(struct cli *c, const char *kind, const char *code,
                                                       const char *fmt, va_list ap) {
  char msg[1024], shown[UTF8_DISPLAY_CAP(sizeof msg, 2)];
  vsnprintf(msg, sizeof msg, fmt, ap);
  /* A detail may quote what a server or a contact sent: shown without
   * control characters, its own lines indented under this one. */
  utf8_display(shown, sizeof shown, msg, strlen(msg), "  ");
  fprintf(stderr, "sotto: %s%s\n", kind, shown);
  if (c && c->json) {
    cJSON *o = cli_event(kind[0] ? "warning" : "error");
    cJSON_AddStringToObject(o, kind[0] ? "warning" : "error", code);
    cJSON_AddStringToObject(o, "message", msg);
    cli_emit(c, o);
  }
}

int cli_error(struct cli *c, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vline(c, "", code, fmt, ap);
  va_end(ap);
  return CLI_FAIL;
}

void cli_warn(struct cli *c, const char *code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vline(c, "warning: ", code, fmt, ap);
  va_end(ap);
}

int cli_usage(struct cli *c, const struct cli_cmd *cmd, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (cmd)
    cli_error(c, "usage", "%s (usage: sotto %s; see 'sotto %s --help')", msg, cmd->usage, cmd->name);
  else
    cli_error(c, "usage", "%s (see 'sotto --help')", msg);
  return CLI_USAGE;
}

int cli_help(const struct cli_cmd *cmd) {
  printf("usage: sotto [--home DIR] [--json] %s\n\n%s\n\n%s", cmd->usage, cmd->summary, cmd->help);
  return CLI_OK;
}

/* --help, and --yes when yes_ok; -1 to go on (operands from optind). */
static int options(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv, int yes_ok) {
  static const struct option opts[] = {{"yes", no_argument, NULL, 'y'}, {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int ch;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+hy", opts, NULL)) != -1) {
    if (ch == 'h') return cli_help(cmd);
    if (ch == 'y' && yes_ok) {
      c->yes = 1;
      continue;
    }
    return cli_usage(c, cmd, "unknown option '%s'", argv[optind - 1]);
  }
  return -1;
}

int cli_no_options(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  return options(c, cmd, argc, argv, 0);
}

int cli_yes_option(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  return options(c, cmd, argc, argv, 1);
}

cJSON *cli_event(const char *name) {
  cJSON *o = cJSON_CreateObject();
  if (o) cJSON_AddStringToObject(o, "event", name);
  return o;
}

/* Notes a failed write to stdout (a closed pipe: 'sotto receive | head'):
 * what the core would show next stays in its unshown list for the next
 * receive, and the command ends with CLI_OUTPUT. */
static void out_check(struct cli *c) {
  if (fflush(stdout) == 0 && !ferror(stdout)) return;
  if (!c->out_closed && c->core) (void)sc_set_option(c->core, SC_OPT_DEFER_SHOWN, 1);
  c->out_closed = 1;
}

void cli_emit(struct cli *c, cJSON *obj) {
  char *s, *v;
  size_t n;
  if (!obj) return;
  if (c->json && !c->out_closed && (s = cJSON_PrintUnformatted(obj))) {
    /* cJSON copies the bytes of a string as they are: invalid UTF-8 from a
     * contact (or a NUL cut short) would make a line that is not JSON. The
     * structure is ASCII, so repairing the whole line only touches the
     * insides of strings: every line is valid JSON in valid UTF-8. */
    n = strlen(s);
    if ((v = malloc(3 * n + 1))) {
      utf8_repair(v, 3 * n + 1, s, n);
      printf("%s\n", v);
      free(v);
    }
    free(s);
    out_check(c);
  }
  cJSON_Delete(obj);
}

int cli_username_ok(const char *s) { return sc_username_ok(s); }

int cli_fail(struct cli *c) {
  const char *d = sc_errdetail(c->core);
  int e = sc_last_error(c->core);
  return cli_error(c, sc_error_name(e), "%s", d[0] ? d : sc_error_message(e));
}

/* "2026-12-02 13:20:05" in local time (ms since the epoch). */
static void local_time(char out[32], uint64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  if (!ms || !localtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%d %H:%M:%S", &tm) == 0)
    snprintf(out, 32, "(no time)");
}

/* The received time is shown too when it is this far from the sender's. */
#define CLI_SKEW_SHOWN_MS (5 * 60 * 1000)

/* The JSON "type" of an event: what happened, as a name a script can
 * branch on (the "message" sentence is for people). */
static const char *event_type(const struct sc_event *ev) {
  switch (ev->kind) {
    case SC_EV_GROUP_JOINED: return "group_joined";
    case SC_EV_GROUP_ADDED: return "group_member_added";
    case SC_EV_GROUP_REMOVED:
      return ev->peer && ev->subject && strcmp(ev->peer, ev->subject) == 0 ? "group_member_left"
                                                                           : "group_member_removed";
    case SC_EV_GROUP_LEFT_US: return "group_removed_you";
    case SC_EV_GROUP_NOT_MEMBER: return "group_change_ignored";
    case SC_EV_GROUP_MEMBER_KEY: return "group_member_identity_changed";
    case SC_EV_HELD:
      return ev->reason == SC_R_HELD_TEXT           ? "held_text"
             : ev->reason == SC_R_HELD_GROUP_CHANGE ? "held_group_change"
                                                    : "held_message";
    case SC_EV_HELD_DROPPED: return "held_dropped";
    case SC_EV_UNREADABLE: return "unreadable";
    case SC_EV_UNREADABLE_SUMMARY: return "unreadable_summary";
    case SC_EV_NOT_DELIVERED: return "not_delivered";
    case SC_EV_KEY_CHANGED: return "identity_changed";
    case SC_EV_KEY_HELD_WARNING: return "new_key_held";
    default: return sc_event_type(ev);
  }
}

static void add_reason(cJSON *o, const struct sc_event *ev) {
  static const char *const names[] = {
      "",           "decrypt",        "no_session",       "bad_sender",        "unknown_type",
      "unknown_format", "unexpected_kind", "group_format", "no_group_key",    "bad_group_key",
      "foreign_group_key", "held_text",  "held_group_change", "held_other",     "key_verified",
      "no_sender_key", "send_failed",   "key_from_bundle",  "key_trusted",       "link",
      "by_us",         "too_old",       "outbox_full"};
  if (ev->reason > 0 && (size_t)ev->reason < sizeof names / sizeof names[0])
    cJSON_AddStringToObject(o, "reason", names[ev->reason]);
}

/* A message's text (not NUL-safe) as a JSON string (repaired by cli_emit). */
static void add_text(cJSON *o, const char *name, const struct sc_event *ev) {
  char *t = malloc(ev->text_len + 1);
  if (!t) return;
  memcpy(t, ev->text, ev->text_len);
  t[ev->text_len] = 0;
  cJSON_AddStringToObject(o, name, t);
  free(t);
}

static void add_fields(cJSON *o, const struct sc_event *ev);

/* The conversation fields of a message (issue 14): reply, edits, deletes,
 * reactions, request, disappearing time. */
static void add_convo(cJSON *o, const struct sc_event *ev) {
  size_t i;
  if (ev->ref_author && ev->ref_author[0]) {
    cJSON *r = cJSON_AddObjectToObject(o, "reply_to");
    if (r) {
      cJSON_AddStringToObject(r, "author", ev->ref_author);
      cJSON_AddNumberToObject(r, "id", (double)ev->ref_ts);
    }
  }
  if (ev->edited) cJSON_AddBoolToObject(o, "edited", 1);
  if (ev->deleted) cJSON_AddBoolToObject(o, "deleted", 1);
  if (ev->request) cJSON_AddBoolToObject(o, "request", 1);
  if (ev->timer_s) cJSON_AddNumberToObject(o, "timer", ev->timer_s);
  if (ev->expire_at_ms) cJSON_AddNumberToObject(o, "expires", (double)ev->expire_at_ms);
  if (ev->n_reactions) {
    cJSON *a = cJSON_AddArrayToObject(o, "reactions");
    for (i = 0; a && i < ev->n_reactions; i++) {
      cJSON *r = cJSON_CreateObject();
      cJSON_AddStringToObject(r, "user", ev->reactions[i].user);
      cJSON_AddStringToObject(r, "emoji", ev->reactions[i].emoji);
      cJSON_AddItemToArray(a, r);
    }
  }
}

static void show_json(struct cli *c, const struct sc_event *ev) {
  cJSON *o;
  if (ev->kind == SC_EV_MESSAGE || ev->kind == SC_EV_SENT) {
    o = cli_event(ev->kind == SC_EV_MESSAGE ? "message" : "sent");
    cJSON_AddStringToObject(o, ev->kind == SC_EV_MESSAGE ? "from" : "to", ev->peer);
    if (ev->group[0]) cJSON_AddStringToObject(o, "group", ev->group);
    add_text(o, "text", ev);
    cJSON_AddNumberToObject(o, "timestamp", (double)ev->timestamp_ms);
    if (ev->server_timestamp_ms) cJSON_AddNumberToObject(o, "received", (double)ev->server_timestamp_ms);
    if (ev->server_id) cJSON_AddNumberToObject(o, "id", (double)ev->server_id);
    if (ev->kind == SC_EV_SENT && !ev->group[0]) cJSON_AddStringToObject(o, "state", sc_state_name(ev->state));
    add_convo(o, ev);
    cli_emit(c, o);
    return;
  }
  o = cli_event(sc_event_type(ev));
  add_fields(o, ev);
  cli_emit(c, o);
}

/* What a notice or warning event says, as fields (show_json, warn_event). */
static void add_fields(cJSON *o, const struct sc_event *ev) {
  size_t cap = SC_MAX_TEXT + 4096, i;
  char *line;
  cJSON_AddStringToObject(o, "type", event_type(ev));
  /* "user": who the event is about (kept for scripts of before "by"). */
  cJSON_AddStringToObject(o, "user", ev->peer);
  if (ev->group[0]) cJSON_AddStringToObject(o, "group", ev->group);
  if (ev->kind == SC_EV_GROUP_MEMBER_KEY) {
    cJSON_AddStringToObject(o, "member", ev->peer);
  } else if (sc_event_is_group_notice(ev->kind)) {
    cJSON_AddStringToObject(o, "by", ev->peer);
    if (ev->subject[0]) cJSON_AddStringToObject(o, "member", ev->subject);
    if (ev->kind == SC_EV_GROUP_JOINED) {
      cJSON *arr = cJSON_AddArrayToObject(o, "members");
      for (i = 0; arr && i < ev->n_members; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(ev->members[i]));
    }
  }
  add_reason(o, ev);
  if (ev->detail[0]) cJSON_AddStringToObject(o, "detail", ev->detail);
  if (ev->kind == SC_EV_HELD && ev->reason == SC_R_HELD_TEXT) add_text(o, "text", ev);
  if (ev->kind == SC_EV_NOTICE && ev->text_len) add_text(o, "text", ev);
  if (ev->ref_ts) { /* REACTION, EDITED, DELETED, CONVO_REFUSED: the message concerned */
    if (ev->ref_author && ev->ref_author[0]) cJSON_AddStringToObject(o, "author", ev->ref_author);
    cJSON_AddNumberToObject(o, "id_concerned", (double)ev->ref_ts);
  }
  if (ev->kind == SC_EV_ATTACHMENT) {
    cJSON_AddStringToObject(o, "direction", ev->reason == SC_R_BY_US ? "sent" : "received");
    cJSON_AddNumberToObject(o, "size", (double)ev->count);
    if (ev->total) cJSON_AddStringToObject(o, "error", sc_error_name(-(int)ev->total));
    if (ev->text_len) add_text(o, "text", ev);
  }
  if (ev->kind == SC_EV_DELIVERY) {
    cJSON_AddStringToObject(o, "state", sc_state_name(ev->state));
    if (ev->server_id) cJSON_AddNumberToObject(o, "id", (double)ev->server_id);
  }
  if (ev->kind == SC_EV_EXPIRED_SENT || ev->kind == SC_EV_EXPIRED_RECEIVED) {
    /* How many (count, below), and (sent) the first one's server id and time. */
    if (ev->server_id) cJSON_AddNumberToObject(o, "id", (double)ev->server_id);
    if (ev->server_timestamp_ms) cJSON_AddNumberToObject(o, "sent_at", (double)ev->server_timestamp_ms);
  }
  if (ev->count) cJSON_AddNumberToObject(o, "count", (double)ev->count);
  if (ev->total) cJSON_AddNumberToObject(o, "total", (double)ev->total);
  if (ev->error) cJSON_AddStringToObject(o, "code", sc_error_name(ev->error));
  if (ev->timestamp_ms) cJSON_AddNumberToObject(o, "timestamp", (double)ev->timestamp_ms);
  if ((line = malloc(cap))) {
    (void)sc_event_describe(line, cap, ev);
    cJSON_AddStringToObject(o, "message", line);
    free(line);
  }
}

/* An event that is a warning: one line on stderr and, with --json, an
 * object {"event":"warning","warning":NAME, ...the event's fields}. */
static void warn_event(struct cli *c, const struct sc_event *ev) {
  char line[2048];
  int json = c->json;
  cJSON *o;
  sc_event_describe(line, sizeof line, ev);
  c->json = 0;
  cli_warn(c, sc_event_type(ev), "%s", line);
  c->json = json;
  if (!json) return;
  o = cli_event("warning");
  cJSON_AddStringToObject(o, "warning", sc_event_type(ev));
  add_fields(o, ev);
  cli_emit(c, o);
}

/* One block on stdout: the header at the left margin, then body; every
 * further line of body is indented (docs/client.md, "Safe output"). */
static void show_block(struct cli *c, const char *head, const char *body, size_t n) {
  size_t cap = UTF8_DISPLAY_CAP(n, sizeof CLI_INDENT - 1);
  char *shown;
  if (c->out_closed) return;
  if (!(shown = malloc(cap))) return;
  utf8_display(shown, cap, body, n, CLI_INDENT);
  printf("%s%s\n", head, shown);
  free(shown);
  out_check(c);
}

void cli_show_event(struct cli *c, const struct sc_event *ev) {
  size_t cap = SC_MAX_TEXT + 4096;
  char head[256], when[32], got[32], *line;
  int n = 0;
  if (c->json) {
    show_json(c, ev);
    return;
  }
  /* Names are checked ([a-z0-9_.] and [A-Za-z0-9_.-]): safe as they are. */
  local_time(when, ev->timestamp_ms);
  n = snprintf(head, sizeof head, "[%s] ", when);
  if (ev->kind == SC_EV_MESSAGE || ev->kind == SC_EV_SENT) {
    /* A message request: marked before the sender (so "alice: " stays whole). */
    if (ev->request) n += snprintf(head + n, sizeof head - (size_t)n, "(request) ");
    if (ev->group[0]) n += snprintf(head + n, sizeof head - (size_t)n, "[%s] ", ev->group);
    n += snprintf(head + n, sizeof head - (size_t)n, "%s%s", ev->kind == SC_EV_SENT ? "to " : "",
                  ev->peer[0] ? ev->peer : "group");
    /* A 1:1 text of ours: its delivery state, in the header (which no
     * contact's text can imitate). */
    if (ev->kind == SC_EV_SENT && !ev->group[0] && ev->state)
      n += snprintf(head + n, sizeof head - (size_t)n, " (%s)", sc_state_name(ev->state));
    if (ev->server_timestamp_ms &&
        (ev->server_timestamp_ms > ev->timestamp_ms ? ev->server_timestamp_ms - ev->timestamp_ms
                                                    : ev->timestamp_ms - ev->server_timestamp_ms) > CLI_SKEW_SHOWN_MS) {
      local_time(got, ev->server_timestamp_ms);
      n += snprintf(head + n, sizeof head - (size_t)n, " (received %s)", got);
    }
    if (c->show_ids && (size_t)n < sizeof head)
      n += snprintf(head + n, sizeof head - (size_t)n, " #%llu", (unsigned long long)ev->timestamp_ms);
    if (ev->ref_author && ev->ref_author[0] && (size_t)n < sizeof head)
      n += snprintf(head + n, sizeof head - (size_t)n, " (reply to %s #%llu)", ev->ref_author,
                    (unsigned long long)ev->ref_ts);
    if (ev->timer_s && (size_t)n < sizeof head) n += snprintf(head + n, sizeof head - (size_t)n, " (disappearing)");
    if ((size_t)n < sizeof head) snprintf(head + n, sizeof head - (size_t)n, ": ");
    if (ev->deleted || ev->edited || ev->n_reactions) {
      /* The marks after the text, through the same safe rendering. */
      size_t cap2 = ev->text_len + 64 + ev->n_reactions * (SC_USER_MAX + 40), k = 0, i;
      char *b = malloc(cap2);
      if (!b) return;
      if (ev->deleted) {
        k += (size_t)snprintf(b + k, cap2 - k, "(message deleted)");
      } else {
        memcpy(b, ev->text, ev->text_len);
        k = ev->text_len;
        if (ev->edited) k += (size_t)snprintf(b + k, cap2 - k, " (edited)");
      }
      for (i = 0; i < ev->n_reactions && k < cap2; i++)
        k += (size_t)snprintf(b + k, cap2 - k, "%s%s %s%s", i ? ", " : " [", ev->reactions[i].emoji,
                              ev->reactions[i].user, i + 1 == ev->n_reactions ? "]" : "");
      show_block(c, head, b, k < cap2 ? k : cap2 - 1);
      free(b);
      return;
    }
    show_block(c, head, ev->text, ev->text_len);
    return;
  }
  {
    int group = sc_event_is_group_notice(ev->kind) || (ev->kind == SC_EV_NOTICE && ev->reason == 2);
    snprintf(head + n, sizeof head - (size_t)n, "%s", group ? "* " : "! ");
  }
  if ((line = malloc(cap))) {
    size_t l = sc_event_describe(line, cap, ev);
    show_block(c, head, line, l < cap ? l : cap - 1);
    free(line);
  }
}

void cli_sink(void *ud, const struct sc_event *ev) {
  struct cli *c = ud;
  switch (ev->kind) {
    case SC_EV_MESSAGE:
    case SC_EV_SENT:
    case SC_EV_GROUP_JOINED:
    case SC_EV_GROUP_ADDED:
    case SC_EV_GROUP_REMOVED:
    case SC_EV_GROUP_LEFT_US:
    case SC_EV_GROUP_NOT_MEMBER:
    case SC_EV_GROUP_MEMBER_KEY:
    case SC_EV_HELD:
    case SC_EV_HELD_DROPPED:
    case SC_EV_UNREADABLE:
    case SC_EV_UNREADABLE_SUMMARY:
    case SC_EV_NOTICE:
    case SC_EV_EXPIRED_SENT:
    case SC_EV_EXPIRED_RECEIVED:
    case SC_EV_RETRY_REQUESTED:
    case SC_EV_RESENT:
    case SC_EV_SESSION_RESET:
    case SC_EV_GAP:
    case SC_EV_GAP_FILLED:
    case SC_EV_TIMER_SET:
    case SC_EV_REACTION:
    case SC_EV_EDITED:
    case SC_EV_DELETED:
    case SC_EV_CONVO_REFUSED:
    case SC_EV_DISAPPEARED:
    case SC_EV_DEVICE_LIST:
    case SC_EV_ATTACHMENT:
    case SC_EV_DEVICE_REFUSED:
    case SC_EV_DEVICE_HELD:
      cli_show_event(c, ev);
      return;
    case SC_EV_DELIVERY:
      /* Receipts are quiet on a terminal (history shows the states); a
       * text given up or expired is said; --json gets every change. */
      if (c->json) {
        cli_show_event(c, ev);
        return;
      }
      if (ev->state != SC_STATE_FAILED && ev->state != SC_STATE_EXPIRED) return;
      break;
    case SC_EV_NOT_DELIVERED:
      if (ev->reason == SC_R_SEND_FAILED) {
        cli_error(c, sc_error_name(ev->error), "%s", ev->detail);
        return;
      }
      break;
    case SC_EV_KEY_CHANGED:
      /* The second attempt of a send that asked about this change reports
       * it again: said once (cmd_send.c sets key_warned for the retry). */
      if (c->key_warned[0] && ev->peer && strcmp(ev->peer, c->key_warned) == 0) return;
      break;
    case SC_EV_KEY_HELD_WARNING:
    case SC_EV_BAD_ENVELOPE:
    case SC_EV_BAD_FRAME:
    case SC_EV_RESTORED_STORE:
    case SC_EV_DISPLACED:
    case SC_EV_DEVICE_CHANGE:
    case SC_EV_SERVER_REPINNED:
    case SC_EV_KT_ALERT:
      break;
    case SC_EV_LINK_DOWN:
      if (ev->error == SC_ERR_DISPLACED) return; /* said by SC_EV_DISPLACED */
      break;
    default:
      return; /* link up/down, keys, drained: nothing to say on a terminal */
  }
  warn_event(c, ev);
}

/* Reads one line from the terminal with echo off. */
static int tty_read(int fd, const char *prompt, char *buf, size_t cap, size_t *len) {
  struct termios old, quiet;
  size_t n = 0;
  int rc = 0;
  char ch;
  if (write(fd, prompt, strlen(prompt)) < 0) return -1;
  if (tcgetattr(fd, &old) != 0) return -1;
  quiet = old;
  quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
  quiet.c_lflag |= ICANON;
  if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0) return -1;
  for (;;) {
    ssize_t r = read(fd, &ch, 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0 || ch == '\n') break;
    if (n + 1 >= cap) {
      rc = -1;
      continue;
    }
    buf[n++] = ch;
  }
  ch = 0;
  tcsetattr(fd, TCSAFLUSH, &old);
  if (write(fd, "\n", 1) < 0) rc = -1;
  buf[n] = 0;
  *len = n;
  return rc;
}

int cli_secret(struct cli *c, const char *env_name, const char *what, const char *prompt, char *buf, size_t cap,
               size_t *len, int confirm) {
  const char *env = getenv(env_name);
  char *again;
  size_t alen;
  int fd, rc = CLI_OK;

  if (env) {
    size_t n = strlen(env);
    /* Taken once, then wiped and removed from the environment, so that it is
     * neither in /proc/PID/environ for the rest of the run nor inherited. */
    if (n > 0 && n < cap) memcpy(buf, env, n + 1);
    sodium_memzero((char *)env, n);
    unsetenv(env_name);
    *len = n;
    if (n == 0) return cli_error(c, "passphrase", "%s is set but empty; set it to your %s", env_name, what);
    if (n >= cap) return cli_error(c, "passphrase", "the %s is too long (at most %zu bytes)", what, cap - 1);
    return CLI_OK;
  }
  fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return cli_error(c, "passphrase", "no terminal to ask for the %s: set %s for scripts", what, env_name);
  if (tty_read(fd, prompt, buf, cap, len) != 0) {
    rc = cli_error(c, "passphrase", "could not read the %s (at most %zu bytes)", what, cap - 1);
  } else if (*len == 0) {
    rc = cli_error(c, "passphrase", "the %s is empty", what);
  } else if (confirm) {
    if (!(again = sodium_malloc(cap))) {
      rc = cli_error(c, "nomem", "out of memory");
    } else {
      if (tty_read(fd, "Repeat it: ", again, cap, &alen) != 0 || alen != *len || sodium_memcmp(again, buf, alen) != 0)
        rc = cli_error(c, "passphrase", "the two entries differ; run the command again");
      sodium_free(again);
    }
  }
  close(fd);
  return rc;
}

int cli_passphrase(struct cli *c, char *buf, size_t cap, size_t *len, int confirm) {
  return cli_secret(c, "SOTTO_PASSPHRASE", "passphrase",
                    confirm ? "New passphrase for the local store: " : "Passphrase: ", buf, cap, len, confirm);
}

int cli_confirm(struct cli *c, const char *question) {
  char ans[16];
  size_t i = 0;
  int fd, yes = 0;
  ssize_t r;
  char ch;
  if (c->json || !isatty(STDIN_FILENO) || !isatty(STDERR_FILENO)) return 0;
  if ((fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)) < 0) return 0;
  if (write(fd, question, strlen(question)) >= 0 && write(fd, " [y/N] ", 7) >= 0) {
    while ((r = read(fd, &ch, 1)) == 1 || (r < 0 && errno == EINTR)) {
      if (r < 0) continue;
      if (ch == '\n') break;
      if (i < sizeof ans - 1) ans[i++] = ch;
    }
    ans[i] = 0;
    yes = (strcmp(ans, "y") == 0 || strcmp(ans, "Y") == 0 || strcmp(ans, "yes") == 0);
  }
  close(fd);
  return yes;
}

int cli_open(struct cli *c) {
  char *pass;
  size_t len;
  int rc;

  if (c->opened) return CLI_OK;
  {
    /* A daemon or chat UI on this home holds the store and the link: say so. */
    struct homelock_info held;
    char msg[600];
    /* Held (shared) until the process ends, so that no daemon or chat UI
     * starts on this home while this command runs (receive --follow). */
    int fd = homelock_share(c->home, &held);
    if (fd == -1) {
      homelock_message(msg, sizeof msg, &held);
      return cli_error(c, "home_held", "%s", msg);
    }
    c->share_fd = fd;
  }
  if (!sc_store_exists(c->core)) {
    (void)sc_open(c->core, NULL, 0); /* records "not initialised" */
    return cli_fail(c);
  }
  if (sc_home_in_use(c->core)) return cli_fail(c); /* a daemon holds it: say so before asking */
  if (!(pass = sodium_malloc(SC_MAX_PASSPHRASE))) return cli_error(c, "nomem", "out of memory");
  if (cli_passphrase(c, pass, SC_MAX_PASSPHRASE, &len, 0)) {
    sodium_free(pass);
    return CLI_FAIL;
  }
  rc = sc_open(c->core, pass, len);
  sodium_free(pass);
  if (rc) return cli_fail(c);
  c->opened = 1;
  return CLI_OK;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* cli.c: output, errors, passphrase and store opening shared by every
 * subcommand (see cli.h). */
#include "cli.h"
#include "homelock.h"

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


static void vline(struct cli *c, const char *kind, const char *code, const char *fmt, va_list ap) {
  char msg[1024];
  vsnprintf(msg, sizeof msg, fmt, ap);
  fprintf(stderr, "sotto: %s%s\n", kind, msg);
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

void cli_emit(struct cli *c, cJSON *obj) {
  char *s;
  if (!obj) return;
  if (c->json && (s = cJSON_PrintUnformatted(obj))) {
    printf("%s\n", s);
    fflush(stdout);
    free(s);
  }
  cJSON_Delete(obj);
}

int cli_username_ok(const char *s) { return sc_username_ok(s); }

int cli_fail(struct cli *c) {
  const char *d = sc_errdetail(c->core);
  int e = sc_last_error(c->core);
  return cli_error(c, sc_error_name(e), "%s", d[0] ? d : sc_error_message(e));
}

void cli_show_event(struct cli *c, const struct sc_event *ev) {
  size_t cap = SC_MAX_TEXT + 4096;
  char *line;
  if (c->json) {
    cJSON *o;
    if (ev->kind == SC_EV_MESSAGE || ev->kind == SC_EV_SENT) {
      char *t = malloc(ev->text_len + 1);
      o = cli_event(ev->kind == SC_EV_MESSAGE ? "message" : "sent");
      cJSON_AddStringToObject(o, ev->kind == SC_EV_MESSAGE ? "from" : "to", ev->peer);
      if (ev->group[0]) cJSON_AddStringToObject(o, "group", ev->group);
      if (t) {
        memcpy(t, ev->text, ev->text_len);
        t[ev->text_len] = 0;
        cJSON_AddStringToObject(o, "text", t);
        free(t);
      }
      cJSON_AddNumberToObject(o, "timestamp", (double)ev->timestamp_ms);
      if (ev->server_id) cJSON_AddNumberToObject(o, "id", (double)ev->server_id);
      if (ev->kind == SC_EV_SENT && !ev->group[0])
        cJSON_AddStringToObject(o, "state", sc_state_name(ev->state));
    } else {
      o = cli_event(sc_event_type(ev));
      cJSON_AddStringToObject(o, "user", ev->peer);
      if (ev->group[0]) cJSON_AddStringToObject(o, "group", ev->group);
      if (ev->kind == SC_EV_DELIVERY) {
        cJSON_AddStringToObject(o, "state", sc_state_name(ev->state));
        cJSON_AddNumberToObject(o, "timestamp", (double)ev->timestamp_ms);
        if (ev->server_id) cJSON_AddNumberToObject(o, "id", (double)ev->server_id);
      }
      if ((ev->kind == SC_EV_GAP || ev->kind == SC_EV_RESENT) && ev->count)
        cJSON_AddNumberToObject(o, "count", (double)ev->count);
      if ((line = malloc(cap))) {
        sc_event_describe(line, cap, ev);
        cJSON_AddStringToObject(o, "message", line);
        free(line);
      }
    }
    cli_emit(c, o);
    return;
  }
  if (ev->kind == SC_EV_MESSAGE || ev->kind == SC_EV_SENT) {
    if (ev->group[0]) printf("[%s] ", ev->group);
    printf("%s%s", ev->kind == SC_EV_SENT ? "to " : "", ev->peer[0] ? ev->peer : "group");
    /* A 1:1 text of ours: its delivery state, before the text (which no
     * contact can then imitate). */
    if (ev->kind == SC_EV_SENT && !ev->group[0] && ev->state) printf(" (%s)", sc_state_name(ev->state));
    printf(": ");
    cli_print_text(stdout, ev->text, ev->text_len);
  } else {
    int group = sc_event_is_group_notice(ev->kind) || (ev->kind == SC_EV_NOTICE && ev->reason == 2);
    fputs(group ? "* " : "! ", stdout);
    if ((line = malloc(cap))) {
      size_t n = sc_event_describe(line, cap, ev);
      cli_print_text(stdout, line, n < cap ? n : cap - 1);
      free(line);
    }
  }
  fputc('\n', stdout);
  fflush(stdout);
}

void cli_sink(void *ud, const struct sc_event *ev) {
  struct cli *c = ud;
  char line[2048];
  switch (ev->kind) {
    case SC_EV_MESSAGE:
    case SC_EV_SENT:
    case SC_EV_GROUP_JOINED:
    case SC_EV_GROUP_ADDED:
    case SC_EV_GROUP_REMOVED:
    case SC_EV_GROUP_LEFT_US:
    case SC_EV_GROUP_NOT_MEMBER:
    case SC_EV_HELD:
    case SC_EV_HELD_DROPPED:
    case SC_EV_UNREADABLE:
    case SC_EV_UNREADABLE_SUMMARY:
    case SC_EV_NOTICE:
    case SC_EV_RETRY_REQUESTED:
    case SC_EV_RESENT:
    case SC_EV_SESSION_RESET:
    case SC_EV_GAP:
    case SC_EV_GAP_FILLED:
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
      break;
    case SC_EV_LINK_DOWN:
      if (ev->error == SC_ERR_DISPLACED) return; /* said by SC_EV_DISPLACED */
      break;
    default:
      return; /* link up/down, keys, drained: nothing to say on a terminal */
  }
  sc_event_describe(line, sizeof line, ev);
  cli_warn(c, sc_event_type(ev), "%s", line);
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

int cli_passphrase(struct cli *c, char *buf, size_t cap, size_t *len, int confirm) {
  const char *env = getenv("SOTTO_PASSPHRASE");
  char *again;
  size_t alen;
  int fd, rc = CLI_OK;

  if (env) {
    size_t n = strlen(env);
    /* Taken once, then wiped and removed from the environment, so that it is
     * neither in /proc/PID/environ for the rest of the run nor inherited. */
    if (n > 0 && n < cap) memcpy(buf, env, n + 1);
    sodium_memzero((char *)env, n);
    unsetenv("SOTTO_PASSPHRASE");
    *len = n;
    if (n == 0) return cli_error(c, "passphrase", "SOTTO_PASSPHRASE is set but empty; set it to your passphrase");
    if (n >= cap) return cli_error(c, "passphrase", "the passphrase is too long (at most %zu bytes)", cap - 1);
    return CLI_OK;
  }
  fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
  if (fd < 0)
    return cli_error(c, "passphrase", "no terminal to ask for the passphrase: set SOTTO_PASSPHRASE for scripts");
  if (tty_read(fd, confirm ? "New passphrase for the local store: " : "Passphrase: ", buf, cap, len) != 0) {
    rc = cli_error(c, "passphrase", "could not read the passphrase (at most %zu bytes)", cap - 1);
  } else if (*len == 0) {
    rc = cli_error(c, "passphrase", "the passphrase is empty; choose a passphrase");
  } else if (confirm) {
    if (!(again = sodium_malloc(cap))) {
      rc = cli_error(c, "nomem", "out of memory");
    } else {
      if (tty_read(fd, "Repeat the passphrase: ", again, cap, &alen) != 0 || alen != *len ||
          sodium_memcmp(again, buf, alen) != 0)
        rc = cli_error(c, "passphrase", "the two passphrases differ; run the command again");
      sodium_free(again);
    }
  }
  close(fd);
  return rc;
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

void cli_print_text(FILE *out, const char *t, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)t[i];
    if (ch == 0xc2 && i + 1 < n && (unsigned char)t[i + 1] >= 0x80 && (unsigned char)t[i + 1] <= 0x9f) {
      fputc('?', out); /* a C1 control character in UTF-8 */
      i++;
    } else if ((ch < 0x20 && ch != '\n' && ch != '\t') || ch == 0x7f) {
      fputc('?', out);
    } else {
      fputc(ch, out);
    }
  }
}

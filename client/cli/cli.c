/* SPDX-License-Identifier: Apache-2.0 */
/* cli.c: output, errors, passphrase and store opening shared by every
 * subcommand (see cli.h). */
#include "cli.h"

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

#include "account.h"

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

int cli_no_options(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  int ch;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (ch == 'h') return cli_help(cmd);
    return cli_usage(c, cmd, "unknown option '%s'", argv[optind - 1]);
  }
  return -1;
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

uint64_t cli_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t cli_now_s(void) {
#ifdef SOTTO_TEST_HOOKS
  const char *t = getenv("SOTTO_TEST_NOW");
  if (t && *t) {
    char *end;
    unsigned long long v = strtoull(t, &end, 10);
    if (!*end) return v;
  }
#endif
  return (uint64_t)time(NULL);
}

int cli_username_ok(const char *s) {
  size_t n = strlen(s), i;
  if (n < CLI_USER_MIN || n > CLI_USER_MAX) return 0;
  for (i = 0; i < n; i++)
    if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '.')) return 0;
  return 1;
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

int cli_store_error(struct cli *c, int rc) {
  switch (rc) {
    case STORE_E_BUSY:
      return cli_error(c, "busy", "the local store in %s is busy (another sotto is writing); try again", c->home);
    case STORE_E_CORRUPT:
      return cli_error(c, "store", "the local store in %s is damaged (%s); nothing was changed", c->home,
                       store_errmsg(c->st));
    default:
      return cli_error(c, "store", "the local store in %s failed: %s", c->home, store_errmsg(c->st));
  }
}

int cli_open(struct cli *c) {
  char *pass, err[256] = "";
  size_t len;
  int rc;

  if (c->st) return CLI_OK;
  if (!(pass = sodium_malloc(STORE_MAX_PASSPHRASE))) return cli_error(c, "nomem", "out of memory");
  {
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/%s", c->home, STORE_FILE);
    if (access(path, F_OK) != 0) {
      sodium_free(pass);
      return cli_error(c, "not_initialised", "no sotto identity in %s: run 'sotto init' first (or pass --home DIR)",
                       c->home);
    }
  }
  if (cli_passphrase(c, pass, STORE_MAX_PASSPHRASE, &len, 0)) {
    sodium_free(pass);
    return CLI_FAIL;
  }
  rc = store_open(&c->st, c->home, pass, len, err, sizeof err);
  sodium_free(pass);
  switch (rc) {
    case 0:
      break;
    case STORE_E_PASS:
      return cli_error(c, "wrong_passphrase",
                       "wrong passphrase for the store in %s (nothing was changed); check SOTTO_PASSPHRASE or retype it",
                       c->home);
    case STORE_E_MISSING:
      return cli_error(c, "not_initialised", "no sotto identity in %s: run 'sotto init' first", c->home);
    case STORE_E_BUSY:
      return cli_error(c, "busy", "the local store in %s is busy (another sotto is writing); try again", c->home);
    case STORE_E_ROLLBACK:
      return cli_error(c, "rollback",
                       "the local store in %s was tampered with: %s. Someone with access to the file may be trying "
                       "to undo a verification or replay old keys; do not use this copy",
                       c->home, err);
    default:
      return cli_error(c, "store", "cannot open the local store in %s: %s", c->home, err);
  }
  if ((rc = account_load(c->st, &c->acct)) != 0) return cli_store_error(c, rc);
  return CLI_OK;
}

int cli_begin(struct cli *c) {
  struct account *fresh;
  int rc = store_begin(c->st);
  if (rc) return rc;
  if ((rc = account_load(c->st, &fresh)) != 0) {
    store_rollback(c->st);
    return rc;
  }
  account_free(c->acct);
  c->acct = fresh;
  return 0;
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

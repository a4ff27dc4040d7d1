/* SPDX-License-Identifier: Apache-2.0 */
/* main.c: sotto, the command-line client. Global options, then one
 * subcommand from the dispatch table below; each lives in its own file. */
#include <getopt.h>
#include <sodium.h>
#include <sotto/keys.h>
#include <sotto/version.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "account.h"
#include "cli.h"

static const struct cli_cmd *const commands[] = {
    &cmd_init,  &cmd_register, &cmd_send,     &cmd_receive, &cmd_safety_number,
    &cmd_verify, &cmd_trust, &cmd_group,   &cmd_contacts, &cmd_groups,  &cmd_history,
    &cmd_device, &cmd_rotate_secret,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  size_t i;
  fprintf(out,
          "usage: sotto [--home DIR] [--json] COMMAND [ARGS...]\n\n"
          "sotto is an end-to-end encrypted messenger (Signal protocol, PQXDH). Each\n"
          "home directory holds one identity in an encrypted local store.\n\n"
          "options:\n"
          "  --home DIR   the identity to use (default $XDG_DATA_HOME/sotto,\n"
          "               or ~/.local/share/sotto)\n"
          "  --json       print one JSON object per line (for scripts)\n"
          "  --help       this text; 'sotto COMMAND --help' documents a command\n"
          "  --version    print the version\n\n"
          "commands:\n");
  for (i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-14s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(out,
          "\nenvironment:\n"
          "  SOTTO_PASSPHRASE  passphrase of the local store (otherwise asked on the terminal);\n"
          "                    read once, then wiped and removed from the environment\n"
          "  XDG_DATA_HOME     base of the default home directory\n");
}

/* Core dumps would carry the unlocked keys: none, ever. The sanitizer
 * builds keep the process dumpable because LeakSanitizer needs ptrace. */
static void no_core_dumps(void) {
  struct rlimit rl = {0, 0};
  (void)setrlimit(RLIMIT_CORE, &rl);
#if !defined(__SANITIZE_ADDRESS__)
  (void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
}

static int default_home(char *out, size_t cap) {
  const char *x = getenv("XDG_DATA_HOME"), *h = getenv("HOME");
  int n;
  if (x && x[0] == '/')
    n = snprintf(out, cap, "%s/sotto", x);
  else if (h && h[0])
    n = snprintf(out, cap, "%s/.local/share/sotto", h);
  else
    return -1;
  return (n < 0 || (size_t)n >= cap) ? -1 : 0;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"home", required_argument, NULL, 'H'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
  struct cli c;
  const char *home = NULL;
  size_t i;
  int ch, rc;

  no_core_dumps();
  umask(077);
  memset(&c, 0, sizeof c);
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    switch (ch) {
      case 'H':
        home = optarg;
        break;
      case 'j':
        c.json = 1;
        break;
      case 'h':
        usage(stdout);
        return CLI_OK;
      case 'V':
        printf("sotto %s\n", SOTTO_VERSION_STRING);
        return CLI_OK;
      default:
        return cli_usage(&c, NULL, "unknown option '%s'", argv[optind - 1]);
    }
  }
  if (optind >= argc) {
    usage(stderr);
    return CLI_USAGE;
  }
  if (home) {
    if (strlen(home) >= sizeof c.home - 32) return cli_usage(&c, NULL, "--home path too long");
    snprintf(c.home, sizeof c.home, "%s", home);
  } else if (default_home(c.home, sizeof c.home - 32)) {
    return cli_usage(&c, NULL, "no home directory: set HOME or XDG_DATA_HOME, or pass --home DIR");
  }
  if (sodium_init() < 0 || sotto_init() != 0) return cli_error(&c, "internal", "cannot initialise the crypto library");

  for (i = 0; i < N_COMMANDS; i++)
    if (strcmp(argv[optind], commands[i]->name) == 0) break;
  if (i == N_COMMANDS) return cli_usage(&c, NULL, "unknown command '%s'", argv[optind]);
  rc = commands[i]->run(&c, commands[i], argc - optind, argv + optind);
  account_free(c.acct);
  store_close(c.st);
  return rc;
}

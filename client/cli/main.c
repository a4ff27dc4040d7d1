/* SPDX-License-Identifier: Apache-2.0 */
/* main.c: sotto, the command-line client. Global options, then one
 * subcommand from the dispatch table below; each lives in its own file. */
#include <getopt.h>
#include <signal.h>
#include <sotto/version.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "cli.h"

static const struct cli_cmd *const commands[] = {
    &cmd_init,  &cmd_register, &cmd_send,     &cmd_receive, &cmd_safety_number,
    &cmd_verify, &cmd_trust, &cmd_group,   &cmd_contacts, &cmd_groups,  &cmd_history,
    &cmd_attachments,
    &cmd_link, &cmd_devices, &cmd_device, &cmd_rotate_secret, &cmd_recovery_code, &cmd_unregister, &cmd_passphrase, &cmd_backup,
    &cmd_restore, &cmd_server, &cmd_session, &cmd_config, &cmd_kt, &cmd_daemon, &cmd_jsonrpc, &cmd_chat,
    &cmd_timer, &cmd_react, &cmd_edit, &cmd_delete, &cmd_requests, &cmd_outbox, &cmd_block, &cmd_unblock,
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *out) {
  size_t i;
  fprintf(out,
          "usage: sotto [--home DIR] [--json] [--yes] COMMAND [ARGS...]\n\n"
          "sotto is an end-to-end encrypted messenger (Signal protocol, PQXDH). Each\n"
          "home directory holds one identity in an encrypted local store.\n\n"
          "options:\n"
          "  --home DIR   the identity to use (default $XDG_DATA_HOME/sotto,\n"
          "               or ~/.local/share/sotto)\n"
          "  --json       print one JSON object per line (for scripts)\n"
          "  --yes        do not ask before sending to a changed identity key\n"
          "  --help       this text; 'sotto COMMAND --help' documents a command\n"
          "  --version    print the version\n\n"
          "Global options may also follow the command (sotto receive --json).\n\n"
          "commands:\n");
  for (i = 0; i < N_COMMANDS; i++) fprintf(out, "  %-14s %s\n", commands[i]->name, commands[i]->summary);
  fprintf(out,
          "\nenvironment:\n"
          "  SOTTO_PASSPHRASE  passphrase of the local store (otherwise asked on the terminal);\n"
          "                    read once, then wiped and removed from the environment\n"
          "  SOTTO_NEW_PASSPHRASE     the new passphrase for 'passphrase'\n"
          "  SOTTO_BACKUP_PASSPHRASE  the backup file's passphrase for 'backup' and 'restore'\n"
          "  SOTTO_RECOVERY_KEY       the backup file's recovery key for 'restore'\n"
          "  SOTTO_RECOVERY_CODE      the account's recovery code for 'register --recover'\n"
          "                    (each is read once, then wiped and removed like SOTTO_PASSPHRASE)\n"
          "  XDG_DATA_HOME     base of the default home directory\n"
          "\nexit status:\n"
          "  0  success\n"
          "  1  failure (one line on stderr says what and what to do)\n"
          "  2  usage error\n"
          "  3  standard output closed or not writable (sotto receive | head -1)\n");
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

/* Global options given after the command (sotto receive --json): taken
 * out of the command's arguments, up to its first operand or "--", so that
 * a message text "--json" stays a text. Options of the commands that take a
 * value are stepped over with it. Returns 0, or -1 for --home without a
 * value. */
static int pull_globals(int *argc, char **argv, const char **home, struct cli *c) {
  static const char *const with_value[] = {"--timeout", "--server", "--ca", "--pin"};
  int i = 1, j;
  while (i < *argc) {
    const char *a = argv[i];
    int take = 0;
    size_t k;
    if (strcmp(a, "--") == 0 || a[0] != '-' || a[1] == 0) break;
    if (strcmp(a, "--json") == 0) {
      c->json = 1;
      take = 1;
    } else if (strcmp(a, "--yes") == 0) {
      c->yes = 1;
      take = 1;
    } else if (strncmp(a, "--home=", 7) == 0) {
      *home = a + 7;
      take = 1;
    } else if (strcmp(a, "--home") == 0) {
      if (i + 1 >= *argc) return -1;
      *home = argv[i + 1];
      take = 2;
    }
    if (take) {
      for (j = i; j + take <= *argc; j++) argv[j] = argv[j + take];
      *argc -= take;
      continue;
    }
    for (k = 0; k < sizeof with_value / sizeof with_value[0]; k++)
      if (strcmp(a, with_value[k]) == 0) i++;
    i++;
  }
  return 0;
}

int main(int argc, char **argv) {
  static const struct option opts[] = {{"home", required_argument, NULL, 'H'},
                                       {"json", no_argument, NULL, 'j'},
                                       {"yes", no_argument, NULL, 'y'},
                                       {"help", no_argument, NULL, 'h'},
                                       {"version", no_argument, NULL, 'V'},
                                       {NULL, 0, NULL, 0}};
  struct cli c;
  const char *home = NULL;
  size_t i;
  int ch, rc;

  no_core_dumps();
  umask(077);
  /* A server that goes away is an error of the call, not a killed process. */
  signal(SIGPIPE, SIG_IGN);
  memset(&c, 0, sizeof c);
  c.share_fd = -1;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    switch (ch) {
      case 'H':
        home = optarg;
        break;
      case 'j':
        c.json = 1;
        break;
      case 'y':
        c.yes = 1;
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
  {
    int sub_argc = argc - optind;
    if (pull_globals(&sub_argc, argv + optind, &home, &c))
      return cli_usage(&c, NULL, "--home needs a directory");
    argc = optind + sub_argc;
  }
  if (home) {
    if (strlen(home) >= sizeof c.home - 32) return cli_usage(&c, NULL, "--home path too long");
    snprintf(c.home, sizeof c.home, "%s", home);
  } else if (default_home(c.home, sizeof c.home - 32)) {
    return cli_usage(&c, NULL, "no home directory: set HOME or XDG_DATA_HOME, or pass --home DIR");
  }
  if (sc_global_init() != 0) return cli_error(&c, "internal", "cannot initialise the crypto library");

  for (i = 0; i < N_COMMANDS; i++)
    if (strcmp(argv[optind], commands[i]->name) == 0) break;
  if (i == N_COMMANDS) return cli_usage(&c, NULL, "unknown command '%s'", argv[optind]);
  if (sc_client_new(&c.core, c.home) != 0) return cli_error(&c, "nomem", "out of memory");
  sc_set_sink(c.core, cli_sink, &c);
  rc = commands[i]->run(&c, commands[i], argc - optind, argv + optind);
  sc_client_free(c.core);
  /* A closed or full standard output is its own status, not a crash (no
   * SIGPIPE: ignored above) and not a success. */
  if ((fflush(stdout) != 0 || ferror(stdout) || c.out_closed) && rc == CLI_OK) rc = CLI_OUTPUT;
  return rc;
}

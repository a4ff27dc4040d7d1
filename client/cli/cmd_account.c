/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_account.c: sotto unregister and sotto recovery-code -- deleting the
 * account on the server, and a new recovery code. */
#include <getopt.h>
#include <sodium.h>
#include <string.h>

#include "cli.h"

static int run_unregister(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  char user[SC_USER_MAX + 1], server[300], q[512];
  int rc;

  if ((rc = cli_yes_option(c, cmd, argc, argv)) >= 0) return rc;
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (cli_open(c)) return CLI_FAIL;
  snprintf(user, sizeof user, "%s", sc_username(c->core));
  snprintf(server, sizeof server, "%s", sc_server(c->core));
  if (!user[0])
    return cli_error(c, "not_registered", "this identity is not registered with a server; nothing to delete");
  if (!c->yes) {
    snprintf(
        q, sizeof q,
        "Delete the account '%s' on %s with all its devices and queued messages? Nobody can use the name "
        "until the server's quarantine ends.",
        user, server);
    if (!cli_confirm(c, q))
      return cli_error(c, "not_confirmed", "nothing was deleted (confirm on the terminal, or pass --yes)");
  }
  if (sc_unregister(c->core)) return cli_fail(c);
  if (c->json) {
    cJSON *o = cli_event("unregistered");
    cJSON_AddStringToObject(o, "user", user);
    cJSON_AddStringToObject(o, "server", server);
    cli_emit(c, o);
  } else {
    printf(
        "Deleted the account '%s' on %s. This home is kept, unregistered: its history and contacts\n"
        "stay readable, and 'sotto register' can register it again.\n",
        user, server);
  }
  return CLI_OK;
}

const struct cli_cmd cmd_unregister = {
    "unregister", "delete this account on the server (the home is kept)", "unregister [--yes]",
    "Deletes the account on the server: every device, its pre-keys and its\n"
    "queued messages. The server then holds the username for its quarantine\n"
    "(7 days by default): nobody can register it meanwhile, so your contacts\n"
    "see that the account is gone before anyone else can take the name. Only\n"
    "device 1 may do it. Asks for confirmation unless --yes. The home is kept,\n"
    "marked unregistered: history and contacts stay readable, and 'sotto\n"
    "register' can register this identity again (under another name, or the\n"
    "same one once the quarantine is over).\n\n"
    "options:\n"
    "  --yes    do not ask for confirmation\n"
    "  --help   this text\n",
    run_unregister};

static int run_recovery_code(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  char code[SC_RECOVERY_CODE_LEN + 1];
  int rc;

  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (cli_open(c)) return CLI_FAIL;
  if (sc_set_recovery_code(code, c->core)) return cli_fail(c);
  if (c->json) {
    cJSON *o = cli_event("recovery_code");
    cJSON_AddStringToObject(o, "recovery_code", code);
    cli_emit(c, o);
  } else {
    printf(
        "New recovery code (the previous one no longer works; write this one down, it is shown\n"
        "only now):\n\n    %s\n\n",
        code);
  }
  sodium_memzero(code, sizeof code);
  return CLI_OK;
}

const struct cli_cmd cmd_recovery_code = {
    "recovery-code", "make a new account recovery code (the old one stops working)", "recovery-code",
    "Makes a new recovery code for this account and prints it once; the server\n"
    "keeps only a hash of it, and the previous code stops working. With it,\n"
    "'sotto register --recover' in a new home takes the name back if every\n"
    "device is lost (contacts then see a new identity key). Only device 1.\n\n"
    "options:\n"
    "  --help   this text\n",
    run_recovery_code};

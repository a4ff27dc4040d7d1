/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_session.c: sotto session reset USER -- start a fresh session with a
 * contact by hand; sotto config read-receipts [on|off] -- the settings the
 * store keeps. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int run_session(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  const char *user;
  int rc;
  if ((rc = cli_yes_option(c, cmd, argc, argv)) >= 0) return rc;
  if (argc - optind != 2 || strcmp(argv[optind], "reset") != 0)
    return cli_usage(c, cmd, "expected 'reset USERNAME'");
  user = argv[optind + 1];
  if (!cli_username_ok(user)) return cli_usage(c, cmd, "'%s' is not a valid username", user);
  if (cli_open(c)) return CLI_FAIL;
  rc = sc_session_reset(c->core, user, c->yes ? SC_SEND_ACCEPT_KEY_CHANGE : 0);
  if (rc && cli_ask_key_change(c)) {
    snprintf(c->key_warned, sizeof c->key_warned, "%s", user);
    rc = sc_session_reset(c->core, user, SC_SEND_ACCEPT_KEY_CHANGE);
    c->key_warned[0] = 0;
  }
  if (rc) return cli_fail(c);
  if (c->json) {
    cJSON *o = cli_event("session_reset");
    cJSON_AddStringToObject(o, "user", user);
    cli_emit(c, o);
  }
  return CLI_OK;
}

static int run_config(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  int rc, on = -1;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind >= argc || strcmp(argv[optind], "read-receipts") != 0)
    return cli_usage(c, cmd, "expected 'read-receipts [on|off]'");
  if (argc - optind == 2) {
    if (strcmp(argv[optind + 1], "on") == 0)
      on = 1;
    else if (strcmp(argv[optind + 1], "off") == 0)
      on = 0;
    else
      return cli_usage(c, cmd, "read-receipts takes 'on' or 'off', not '%s'", argv[optind + 1]);
  } else if (argc - optind != 1) {
    return cli_usage(c, cmd, "expected 'read-receipts [on|off]'");
  }
  if (cli_open(c)) return CLI_FAIL;
  if (on >= 0 && sc_set_read_receipts(c->core, on)) return cli_fail(c);
  if (sc_read_receipts(&on, c->core)) return cli_fail(c);
  if (c->json) {
    cJSON *o = cli_event("config");
    cJSON_AddStringToObject(o, "setting", "read-receipts");
    cJSON_AddBoolToObject(o, "value", on);
    cli_emit(c, o);
  } else {
    printf("read-receipts %s\n", on ? "on" : "off");
  }
  return CLI_OK;
}

const struct cli_cmd cmd_session = {
    "session", "start a fresh session with a contact", "session [--yes] reset USERNAME",
    "Archives the session with USERNAME, starts a fresh one from their pre-keys\n"
    "on the server and tells them in it (they see that you reset the session).\n"
    "Sessions heal by themselves: a message that cannot be decrypted makes the\n"
    "receiver ask the sender to resend it in a fresh session. This is for the\n"
    "rare case where that did not help.\n\n"
    "options:\n"
    "  --yes    go on even if their identity key changed since your last message\n"
    "  --help   this text\n",
    run_session};

const struct cli_cmd cmd_config = {
    "config", "show or change a setting", "config read-receipts [on|off]",
    "  read-receipts [on|off]  whether contacts learn when you saw their\n"
    "                          messages (default off). Delivery receipts (your\n"
    "                          client got it) are always sent. A text counts as\n"
    "                          read when 'sotto receive', the daemon (to a\n"
    "                          subscribed client) or the chat UI showed it;\n"
    "                          'sotto history' sends none.\n\n"
    "options:\n"
    "  --help   this text\n",
    run_config};

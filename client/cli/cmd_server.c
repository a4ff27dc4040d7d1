/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_server.c: sotto server show|set -- where this identity's server is and
 * which certificate it pins; point it at a server that moved. */
#include <getopt.h>
#include <string.h>

#include "cli.h"

static int server_show(struct cli *c) {
  if (c->json) {
    cJSON *o = cli_event("server");
    cJSON_AddStringToObject(o, "server", sc_server(c->core));
    if (sc_pin(c->core)[0]) cJSON_AddStringToObject(o, "pin", sc_pin(c->core));
    cli_emit(c, o);
  } else if (sc_pin(c->core)[0]) {
    printf("server %s, pinned certificate SHA-256 %s\n", sc_server(c->core), sc_pin(c->core));
  } else {
    printf("server %s (trusted through a CA file)\n", sc_server(c->core));
  }
  return CLI_OK;
}

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {{"pin", required_argument, NULL, 'p'},
                                       {"ca", required_argument, NULL, 'c'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *pin = NULL, *ca = NULL, *verb, *server;
  int ch;

  optind = 0;
  opterr = 0;
  /* Options may come after "set HOST:PORT" (GNU getopt permutes). */
  while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (ch) {
      case 'p': pin = optarg; break;
      case 'c': ca = optarg; break;
      case 'h': return cli_help(cmd);
      default: return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
    }
  }
  if (optind >= argc) return cli_usage(c, cmd, "expected 'show' or 'set HOST:PORT'");
  verb = argv[optind];
  if (strcmp(verb, "show") == 0) {
    if (argc - optind != 1 || pin || ca) return cli_usage(c, cmd, "'server show' takes no argument");
    if (cli_open(c)) return CLI_FAIL;
    if (!sc_username(c->core)[0])
      return cli_error(c, "not_registered", "this identity is not registered yet ('sotto register')");
    return server_show(c);
  }
  if (strcmp(verb, "set") != 0) return cli_usage(c, cmd, "unknown action '%s': expected 'show' or 'set'", verb);
  if (argc - optind != 2) return cli_usage(c, cmd, "'server set' takes one HOST:PORT");
  if (pin && ca) return cli_usage(c, cmd, "give --pin or --ca, not both");
  server = argv[optind + 1];
  if (cli_open(c)) return CLI_FAIL;
  if (sc_server_set(c->core, server, pin, ca)) return cli_fail(c);
  if (c->json) {
    cJSON *o = cli_event("server_set");
    cJSON_AddStringToObject(o, "server", sc_server(c->core));
    if (sc_pin(c->core)[0]) cJSON_AddStringToObject(o, "pin", sc_pin(c->core));
    cli_emit(c, o);
  } else {
    printf("server set to %s (checked: it holds this account%s%s)\n", sc_server(c->core),
           sc_pin(c->core)[0] ? "; pinned certificate SHA-256 " : "", sc_pin(c->core));
  }
  return CLI_OK;
}

const struct cli_cmd cmd_server = {
    "server", "show this identity's server, or point it at a server that moved",
    "server show | server set HOST:PORT [--pin SHA256 | --ca FILE]",
    "  show                 the server address and the pinned certificate\n"
    "  set HOST:PORT        the server moved: connect to HOST:PORT, check its\n"
    "                       certificate and that it holds this account (it\n"
    "                       must accept this device's credentials), and only then\n"
    "                       keep the new address. On any failure nothing changes.\n\n"
    "options (set):\n"
    "  --pin SHA256         the certificate fingerprint at the new address (64\n"
    "                       hex digits, from 'sotto-server fingerprint'); without\n"
    "                       --pin or --ca the certificate pinned now must be the one\n"
    "                       presented (a server that moved with its tls.key)\n"
    "  --ca FILE            trust the server through this CA certificate (PEM;\n"
    "                       the server's own tls.crt works) instead of a pin\n"
    "  --help               this text\n",
    run};

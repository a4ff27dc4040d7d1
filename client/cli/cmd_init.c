/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_init.c: sotto init -- a new identity in a new encrypted store. */
#include <getopt.h>
#include <sodium.h>
#include <string.h>

#include "cli.h"

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  char *pass;
  size_t len;
  uint32_t reg = 0;
  int rc;

  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (!(pass = sodium_malloc(SC_MAX_PASSPHRASE))) return cli_error(c, "nomem", "out of memory");
  if (cli_passphrase(c, pass, SC_MAX_PASSPHRASE, &len, 1)) {
    sodium_free(pass);
    return CLI_FAIL;
  }
  rc = sc_init(c->core, &reg, pass, len);
  sodium_free(pass);
  if (rc) return cli_fail(c);
  c->opened = 1;
  if (c->json) {
    cJSON *o = cli_event("init");
    cJSON_AddStringToObject(o, "home", c->home);
    cJSON_AddNumberToObject(o, "registration_id", reg);
    cli_emit(c, o);
  } else {
    printf("Created a new identity in %s.\nNext: sotto register --server HOST:PORT USERNAME\n", c->home);
  }
  return CLI_OK;
}

const struct cli_cmd cmd_init = {
    "init", "create a new identity and its encrypted local store", "init",
    "Generates an identity key pair and creates the local store HOME/sotto.db,\n"
    "sealed under a key derived from your passphrase (Argon2id). The passphrase\n"
    "is asked twice on the terminal, or taken from SOTTO_PASSPHRASE.\n\n"
    "options:\n"
    "  --help   this text\n",
    run};

/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_init.c: sotto init -- a new identity in a new encrypted store. */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>

#include "account.h"
#include "cli.h"

/* mkdir -p; what we create is mode 0700. */
static int make_dirs(const char *path) {
  char tmp[PATH_MAX];
  size_t i, n = strlen(path);
  if (n == 0 || n >= sizeof tmp) return -1;
  memcpy(tmp, path, n + 1);
  for (i = 1; i <= n; i++) {
    if (tmp[i] == '/' || tmp[i] == 0) {
      char save = tmp[i];
      tmp[i] = 0;
      if (mkdir(tmp, 0700) != 0 && errno != EEXIST) return -1;
      tmp[i] = save;
    }
  }
  return 0;
}

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  char *pass, err[256] = "";
  size_t len;
  int rc;

  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (make_dirs(c->home) != 0)
    return cli_error(c, "home", "cannot create %s: %s; pass --home DIR with a writable directory", c->home,
                     strerror(errno));
  if (!(pass = sodium_malloc(STORE_MAX_PASSPHRASE))) return cli_error(c, "nomem", "out of memory");
  if (cli_passphrase(c, pass, STORE_MAX_PASSPHRASE, &len, 1)) {
    sodium_free(pass);
    return CLI_FAIL;
  }
  rc = store_create(&c->st, c->home, pass, len, err, sizeof err);
  sodium_free(pass);
  if (rc == STORE_E_EXISTS)
    return cli_error(c, "exists", "%s already holds a sotto identity; use --home DIR for another one", c->home);
  if (rc) return cli_error(c, "store", "cannot create the local store in %s: %s", c->home, err);
  if (account_new(&c->acct) != 0) return cli_error(c, "internal", "cannot generate the identity key");
  if (store_begin(c->st) || account_save(c->st, c->acct) || store_commit(c->st)) {
    store_rollback(c->st);
    return cli_store_error(c, STORE_E_IO);
  }
  if (c->json) {
    cJSON *o = cli_event("init");
    cJSON_AddStringToObject(o, "home", c->home);
    cJSON_AddNumberToObject(o, "registration_id", c->acct->id.registration_id);
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

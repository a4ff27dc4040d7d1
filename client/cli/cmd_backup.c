/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_backup.c: sotto backup, sotto restore, sotto passphrase -- an
 * encrypted copy of the home, putting it back, and a new store passphrase. */
#include <getopt.h>
#include <sodium.h>
#include <string.h>

#include "cli.h"

#define BACKUP_ENV "SOTTO_BACKUP_PASSPHRASE"
#define RK_ENV "SOTTO_RECOVERY_KEY"
#define NEWPASS_ENV "SOTTO_NEW_PASSPHRASE"

/* --recovery-key, --force and --help; the rest are operands. */
static int parse(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv, int *rk, int *force) {
  static const struct option opts[] = {{"recovery-key", no_argument, NULL, 'r'},
                                       {"force", no_argument, NULL, 'f'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int ch;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    switch (ch) {
      case 'r':
        if (!rk) return cli_usage(c, cmd, "unknown option '--recovery-key'");
        *rk = 1;
        break;
      case 'f':
        if (!force) return cli_usage(c, cmd, "unknown option '--force'");
        *force = 1;
        break;
      case 'h':
        return cli_help(cmd);
      default:
        return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
    }
  }
  return -1;
}

static int run_backup(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  char *secret = NULL, key[SC_RECOVERY_KEY_LEN + 1];
  size_t len = 0;
  int rk = 0, rc;

  if ((rc = parse(c, cmd, argc, argv, &rk, NULL)) >= 0) return rc;
  if (argc - optind != 1) return cli_usage(c, cmd, "expected one FILE");
  if (cli_open(c)) return CLI_FAIL;
  if (!(secret = sodium_malloc(SC_MAX_PASSPHRASE))) return cli_error(c, "nomem", "out of memory");
  if (rk) {
    sc_recovery_key_new(key);
    rc = sc_backup(c->core, argv[optind], key, strlen(key), 1);
  } else if (cli_secret(c, BACKUP_ENV, "backup passphrase", "Passphrase for the backup file: ", secret,
                        SC_MAX_PASSPHRASE, &len, 1)) {
    sodium_free(secret);
    return CLI_FAIL;
  } else {
    rc = sc_backup(c->core, argv[optind], secret, len, 0);
  }
  sodium_free(secret);
  if (rc) {
    sodium_memzero(key, sizeof key);
    return cli_fail(c);
  }
  if (c->json) {
    cJSON *o = cli_event("backup");
    cJSON_AddStringToObject(o, "file", argv[optind]);
    if (rk) cJSON_AddStringToObject(o, "recovery_key", key);
    cli_emit(c, o);
  } else if (rk) {
    printf(
        "Wrote the encrypted backup %s. Its recovery key (write it down; it is shown only now,\n"
        "and without it the backup cannot be opened):\n\n    %s\n\n",
        argv[optind], key);
  } else {
    printf("Wrote the encrypted backup %s (it opens with the backup passphrase only).\n", argv[optind]);
  }
  sodium_memzero(key, sizeof key);
  return CLI_OK;
}

const struct cli_cmd cmd_backup = {
    "backup", "write an encrypted backup of this home to a file", "backup [--recovery-key] FILE",
    "Writes the whole local store (identity, account, contacts and their\n"
    "verified states, groups, history) to FILE, encrypted (Argon2id and\n"
    "XChaCha20-Poly1305) under a backup passphrase of its own, asked twice on\n"
    "the terminal or taken from SOTTO_BACKUP_PASSPHRASE; or, with\n"
    "--recovery-key, under a new random recovery key printed once. FILE is\n"
    "written atomically, mode 0600, and replaced if it exists. Restore it\n"
    "with 'sotto restore FILE'. The store passphrase is asked as usual.\n\n"
    "options:\n"
    "  --recovery-key  seal the file with a printed recovery key instead\n"
    "  --help          this text\n",
    run_backup};

static int run_restore(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  char *secret = NULL, *pass = NULL, user[SC_USER_MAX + 1] = "";
  size_t len = 0, plen = 0;
  int force = 0, rc, kind;

  if ((rc = parse(c, cmd, argc, argv, NULL, &force)) >= 0) return rc;
  if (argc - optind != 1) return cli_usage(c, cmd, "expected one FILE");
  if (sc_home_in_use(c->core)) return cli_fail(c);
  if (!force && sc_store_exists(c->core))
    return cli_error(
        c, "exists",
        "%s already holds a sotto identity; restore into another --home, or pass --force to replace it "
        "(its identity and history are then lost)",
        c->home);
  if ((kind = sc_backup_kind(c->core, argv[optind])) < 0) return cli_fail(c);
  if (!(secret = sodium_malloc(SC_MAX_PASSPHRASE)) || !(pass = sodium_malloc(SC_MAX_PASSPHRASE))) {
    if (secret) sodium_free(secret);
    return cli_error(c, "nomem", "out of memory");
  }
  rc = kind == SC_BACKUP_RECOVERY_KEY
           ? cli_secret(c, RK_ENV, "recovery key", "Recovery key of the backup: ", secret, SC_MAX_PASSPHRASE,
                        &len, 0)
           : cli_secret(c, BACKUP_ENV, "backup passphrase", "Passphrase of the backup file: ", secret,
                        SC_MAX_PASSPHRASE, &len, 0);
  if (!rc) rc = cli_passphrase(c, pass, SC_MAX_PASSPHRASE, &plen, 1);
  if (!rc && sc_restore(c->core, argv[optind], secret, len, pass, plen, force ? SC_RESTORE_FORCE : 0, user,
                        sizeof user))
    rc = cli_fail(c);
  sodium_free(secret);
  sodium_free(pass);
  if (rc) return CLI_FAIL;
  if (c->json) {
    cJSON *o = cli_event("restored");
    cJSON_AddStringToObject(o, "home", c->home);
    cJSON_AddStringToObject(o, "user", user);
    cli_emit(c, o);
  } else {
    printf(
        "Restored %s into %s. Sessions start afresh with each contact's next message;\n"
        "your contacts see the same identity key.\n",
        user[0] ? user : "the identity", c->home);
  }
  return CLI_OK;
}

const struct cli_cmd cmd_restore = {
    "restore", "put an encrypted backup back into a home", "restore [--force] FILE",
    "Restores the backup FILE (from 'sotto backup') into the home as a new\n"
    "local store: identity, account and device credentials, contacts with\n"
    "their verified states, groups and history. The backup's passphrase is\n"
    "asked (or SOTTO_BACKUP_PASSPHRASE; SOTTO_RECOVERY_KEY for a file sealed\n"
    "with a recovery key), then a passphrase for the new store (asked twice, or\n"
    "SOTTO_PASSPHRASE). Sessions are not restored live: each starts afresh at\n"
    "the next message. A wrong passphrase or an altered file changes nothing.\n"
    "A home that already holds an identity is refused unless --force.\n\n"
    "options:\n"
    "  --force   replace the identity this home holds (it is lost)\n"
    "  --help    this text\n",
    run_restore};

static int run_passphrase(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  char *pass;
  size_t len;
  int rc;

  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (cli_open(c)) return CLI_FAIL;
  if (!(pass = sodium_malloc(SC_MAX_PASSPHRASE))) return cli_error(c, "nomem", "out of memory");
  if (cli_secret(c, NEWPASS_ENV, "new passphrase", "New passphrase for the local store: ", pass,
                 SC_MAX_PASSPHRASE, &len, 1)) {
    sodium_free(pass);
    return CLI_FAIL;
  }
  rc = sc_change_passphrase(c->core, pass, len);
  sodium_free(pass);
  if (rc) return cli_fail(c);
  if (c->json) {
    cJSON *o = cli_event("passphrase_changed");
    cJSON_AddStringToObject(o, "home", c->home);
    cli_emit(c, o);
  } else {
    printf("The local store in %s is now sealed under the new passphrase.\n", c->home);
  }
  return CLI_OK;
}

const struct cli_cmd cmd_passphrase = {
    "passphrase", "change the passphrase of the local store", "passphrase",
    "Re-seals the local store under a new passphrase (a fresh Argon2id salt),\n"
    "in one transaction: if the machine stops at any moment, either the old or\n"
    "the new passphrase opens the store. The current passphrase is asked (or\n"
    "SOTTO_PASSPHRASE), then the new one twice (or SOTTO_NEW_PASSPHRASE).\n"
    "Passphrases need at least 12 characters, 6 different ones, and words of\n"
    "your own (not only common passwords, digits and symbols).\n\n"
    "options:\n"
    "  --help   this text\n",
    run_passphrase};

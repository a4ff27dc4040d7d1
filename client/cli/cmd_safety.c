/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_safety.c: sotto safety-number USERNAME and sotto verify USERNAME NUMBER. */
#include <getopt.h>
#include <sodium.h>
#include <string.h>

#include "cli.h"
#include "qr.h"

static int run_number(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {
      {"no-qr", no_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  char hex[2 * SC_SCANNABLE_LEN + 1];
  struct sc_safety sn;
  const struct sc_contact *ct = &sn.contact;
  const char *number = sn.number;
  int ch, no_qr = 0, i;

  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (ch == 'h') return cli_help(cmd);
    if (ch == 'n') {
      no_qr = 1;
      continue;
    }
    return cli_usage(c, cmd, "unknown option '%s'", argv[optind - 1]);
  }
  if (argc - optind != 1) return cli_usage(c, cmd, "expected one USERNAME");
  if (!cli_username_ok(argv[optind]))
    return cli_error(c, "usage", "'%s' is not a valid username (3-32 of a-z 0-9 _ .)", argv[optind]);
  if (cli_open(c)) return CLI_FAIL;
  if (sc_safety_number(&sn, c->core, argv[optind])) return cli_fail(c);
  sodium_bin2hex(hex, sizeof hex, sn.scannable, sizeof sn.scannable);
  if (c->json) {
    cJSON *o = cli_event("safety_number");
    cJSON_AddStringToObject(o, "user", ct->name);
    cJSON_AddStringToObject(o, "number", number);
    cJSON_AddStringToObject(o, "scannable", hex);
    cJSON_AddBoolToObject(o, "verified", ct->verified);
    cJSON_AddBoolToObject(o, "key_changed_since_verified", ct->key_changed_since_verified);
    cJSON_AddBoolToObject(o, "new_key_held", ct->new_key_held);
    cli_emit(c, o);
    return CLI_OK;
  }
  if (ct->new_key_held)
    printf("%s has a NEW, UNVERIFIED identity key (messages from it are held). This is the number\n"
           "for the NEW key:\n\n",
           ct->name);
  printf("Safety number of you (%s) and %s:\n\n", sn.me, ct->name);
  for (i = 0; i < SC_SAFETY_NUMBER_LEN; i += 5)
    printf("%s%.5s%s", i % 20 == 0 ? "    " : "", number + i, i % 20 == 15 ? "\n" : " ");
  printf("\n");
  if (!no_qr && qr_print(stdout, sn.scannable, sizeof sn.scannable) == 0) printf("\n");
  if (ct->new_key_held)
    printf("If it matches what %s sees, accept it with: sotto verify %s NUMBER\n"
           "(or, without comparing, 'sotto trust %s'). If it does not, someone may be in the middle.\n",
           ct->name, ct->name, ct->name);
  else if (ct->key_changed_since_verified)
    printf("%s's identity key CHANGED since you verified it. Compare this number with %s in person\n"
           "or over a call, then run: sotto verify %s NUMBER\n",
           ct->name, ct->name, ct->name);
  else if (ct->verified)
    printf("You verified %s.\n", ct->name);
  else
    printf("Compare this number with %s (in person, or over a call you trust); if it\n"
           "matches, run: sotto verify %s NUMBER\n",
           ct->name, ct->name);
  return CLI_OK;
}

static int run_verify(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  char given[4 * SC_SAFETY_NUMBER_LEN + 1];
  const char *user;
  size_t n = 0;
  unsigned released = 0;
  int rc, i;
  const char *p;

  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (argc - optind < 2) return cli_usage(c, cmd, "expected USERNAME and the 60-digit NUMBER");
  user = argv[optind];
  /* The number may be given with spaces, in one or several arguments. */
  for (i = optind + 1; i < argc; i++)
    for (p = argv[i]; *p; p++) {
      if (*p == ' ' || *p == '\t' || *p == '-') continue;
      if (*p < '0' || *p > '9' || n == SC_SAFETY_NUMBER_LEN)
        return cli_usage(c, cmd, "NUMBER must be the 60 digits that 'sotto safety-number %s' shows", user);
      given[n++] = *p;
    }
  given[n] = 0;
  if (n != SC_SAFETY_NUMBER_LEN) return cli_usage(c, cmd, "NUMBER has %zu digits, expected 60", n);
  if (!cli_username_ok(user))
    return cli_error(c, "usage", "'%s' is not a valid username (3-32 of a-z 0-9 _ .)", user);
  if (cli_open(c)) return CLI_FAIL;
  if (sc_verify(&released, c->core, user, given)) return cli_fail(c);
  if (c->json) {
    cJSON *o = cli_event("verified");
    cJSON_AddStringToObject(o, "user", user);
    cli_emit(c, o);
  } else {
    printf("%s is verified. sotto will refuse to send to %s if this key ever changes.\n", user, user);
  }
  return CLI_OK;
}

/* sotto trust USERNAME: accept a new key without comparing numbers. */
static int run_trust(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  struct sc_contact ct;
  unsigned released = 0;
  int rc;
  const char *user;

  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (argc - optind != 1) return cli_usage(c, cmd, "expected one USERNAME");
  user = argv[optind];
  if (!cli_username_ok(user)) return cli_usage(c, cmd, "'%s' is not a valid username", user);
  if (cli_open(c)) return CLI_FAIL;
  /* Said before the held messages are shown (sc_trust shows them). */
  if (sc_contact_get(&ct, c->core, user) == 0 && ct.new_key_held && !c->json)
    printf("Accepted %s's new identity key (NOT verified: compare 'sotto safety-number %s').\n", user, user);
  if (sc_trust(&released, c->core, user)) return cli_fail(c);
  if (c->json) {
    cJSON *o = cli_event("trusted");
    cJSON_AddStringToObject(o, "user", user);
    cJSON_AddNumberToObject(o, "released", released);
    cli_emit(c, o);
  } else {
    printf("Released %u held message%s of %s.\n", released, released == 1 ? "" : "s", user);
  }
  return CLI_OK;
}

const struct cli_cmd cmd_safety_number = {
    "safety-number", "show the safety number (and QR code) of a contact", "safety-number [--no-qr] USERNAME",
    "Prints the 60-digit safety number of your identity key and USERNAME's, and a\n"
    "QR code of the same (Signal's scannable format). Both of you see the same\n"
    "number; if it matches over a channel you trust, nobody sits in between.\n\n"
    "options:\n"
    "  --no-qr  print the number only\n"
    "  --help   this text\n",
    run_number};

const struct cli_cmd cmd_verify = {
    "verify", "mark a contact verified after comparing safety numbers", "verify USERNAME NUMBER",
    "Checks NUMBER (the 60 digits, spaces allowed) against your safety number\n"
    "with USERNAME and, if they match, marks the contact verified. If a verified\n"
    "contact's identity key later changes, sotto refuses to send to them until\n"
    "you verify the new number. When a new key of USERNAME is held (see 'sotto\n"
    "trust'), NUMBER is compared for that new key, and a match accepts it and\n"
    "releases its held messages.\n\n"
    "options:\n"
    "  --help   this text\n",
    run_verify};

const struct cli_cmd cmd_trust = {
    "trust", "accept a contact's new identity key and release its held messages", "trust USERNAME",
    "When a message arrives under USERNAME from an identity key other than the\n"
    "one you know, sotto holds it: it is shown as from a new, unverified key,\n"
    "and nothing it carries (a session, a group change, a group key) is applied.\n"
    "This accepts that new key without comparing safety numbers and processes\n"
    "the held messages. The contact is then not verified, and your next message\n"
    "to them asks first. Prefer 'sotto verify USERNAME NUMBER', which accepts the\n"
    "key only if the safety number matches.\n\n"
    "options:\n"
    "  --help   this text\n",
    run_trust};

/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_safety.c: sotto safety-number USERNAME and sotto verify USERNAME NUMBER. */
#include <getopt.h>
#include <sodium.h>
#include <sotto/fingerprint.h>
#include <string.h>

#include "account.h"
#include "cli.h"
#include "contact.h"
#include "messaging.h"
#include "qr.h"

/* Loads the contact with a known key and computes number and payload: for
 * the pending key when a new, not yet accepted key is waiting (that is the
 * one the user must compare before accepting it). */
static int compute(struct cli *c, const char *user, struct contact *ct, char number[SOTTO_SAFETY_NUMBER_LEN + 1],
                   uint8_t scan[SOTTO_FINGERPRINT_SCANNABLE_LEN]) {
  int rc;
  if (!cli_username_ok(user))
    return cli_error(c, "usage", "'%s' is not a valid username (3-32 of a-z 0-9 _ .)", user);
  if (cli_open(c)) return CLI_FAIL;
  if (!c->acct->username[0])
    return cli_error(c, "not_registered", "this identity has no username yet: run 'sotto register' first");
  rc = contact_load(c->st, user, ct);
  if (rc < 0) return cli_store_error(c, rc);
  if (rc == 0 || !ct->has_key)
    return cli_error(c, "unknown_contact",
                     "no identity key of %s is known yet: send or receive a message first ('sotto send %s TEXT')",
                     user, user);
  if (sotto_fingerprint(number, scan, (const uint8_t *)c->acct->username, strlen(c->acct->username),
                        c->acct->id.pub, (const uint8_t *)user, strlen(user), ct->has_pending ? ct->pending_key : ct->key,
                        SOTTO_FINGERPRINT_ITERATIONS) != 0)
    return cli_error(c, "internal", "cannot compute the safety number");
  return CLI_OK;
}

static int run_number(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {
      {"no-qr", no_argument, NULL, 'n'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  char number[SOTTO_SAFETY_NUMBER_LEN + 1], hex[2 * SOTTO_FINGERPRINT_SCANNABLE_LEN + 1];
  uint8_t scan[SOTTO_FINGERPRINT_SCANNABLE_LEN];
  struct contact ct;
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
  if (compute(c, argv[optind], &ct, number, scan)) return CLI_FAIL;
  sodium_bin2hex(hex, sizeof hex, scan, sizeof scan);
  if (c->json) {
    cJSON *o = cli_event("safety_number");
    cJSON_AddStringToObject(o, "user", ct.name);
    cJSON_AddStringToObject(o, "number", number);
    cJSON_AddStringToObject(o, "scannable", hex);
    cJSON_AddBoolToObject(o, "verified", ct.verified && !contact_blocked(&ct));
    cJSON_AddBoolToObject(o, "key_changed_since_verified", contact_blocked(&ct));
    cJSON_AddBoolToObject(o, "new_key_held", ct.has_pending);
    cli_emit(c, o);
    return CLI_OK;
  }
  if (ct.has_pending)
    printf("%s has a NEW, UNVERIFIED identity key (messages from it are held). This is the number\n"
           "for the NEW key:\n\n",
           ct.name);
  printf("Safety number of you (%s) and %s:\n\n", c->acct->username, ct.name);
  for (i = 0; i < SOTTO_SAFETY_NUMBER_LEN; i += 5)
    printf("%s%.5s%s", i % 20 == 0 ? "    " : "", number + i, i % 20 == 15 ? "\n" : " ");
  printf("\n");
  if (!no_qr && qr_print(stdout, scan, sizeof scan) == 0) printf("\n");
  if (ct.has_pending)
    printf("If it matches what %s sees, accept it with: sotto verify %s NUMBER\n"
           "(or, without comparing, 'sotto trust %s'). If it does not, someone may be in the middle.\n",
           ct.name, ct.name, ct.name);
  else if (contact_blocked(&ct))
    printf("%s's identity key CHANGED since you verified it. Compare this number with %s in person\n"
           "or over a call, then run: sotto verify %s NUMBER\n",
           ct.name, ct.name, ct.name);
  else if (ct.verified)
    printf("You verified %s.\n", ct.name);
  else
    printf("Compare this number with %s (in person, or over a call you trust); if it\n"
           "matches, run: sotto verify %s NUMBER\n",
           ct.name, ct.name);
  return CLI_OK;
}

static int run_verify(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  char number[SOTTO_SAFETY_NUMBER_LEN + 1], given[SOTTO_SAFETY_NUMBER_LEN + 1];
  uint8_t scan[SOTTO_FINGERPRINT_SCANNABLE_LEN];
  struct contact ct;
  size_t n = 0;
  int rc, i;
  const char *p;

  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (argc - optind < 2) return cli_usage(c, cmd, "expected USERNAME and the 60-digit NUMBER");
  /* The number may be given with spaces, in one or several arguments. */
  for (i = optind + 1; i < argc; i++)
    for (p = argv[i]; *p; p++) {
      if (*p == ' ' || *p == '\t' || *p == '-') continue;
      if (*p < '0' || *p > '9' || n == SOTTO_SAFETY_NUMBER_LEN)
        return cli_usage(c, cmd, "NUMBER must be the 60 digits that 'sotto safety-number %s' shows", argv[optind]);
      given[n++] = *p;
    }
  given[n] = 0;
  if (n != SOTTO_SAFETY_NUMBER_LEN)
    return cli_usage(c, cmd, "NUMBER has %zu digits, expected 60", n);
  if (compute(c, argv[optind], &ct, number, scan)) return CLI_FAIL;
  if (sodium_memcmp(number, given, SOTTO_SAFETY_NUMBER_LEN) != 0)
    return cli_error(c, "mismatch",
                     "that number does not match your safety number with %s: do not trust this key; compare "
                     "again with 'sotto safety-number %s'",
                     ct.name, ct.name);
  {
    /* Inside the transaction on a fresh record: the key compared is the one
     * accepted (a newer pending key that arrived meanwhile is not). */
    uint8_t cmp[SOTTO_PUBKEY_LEN];
    char name[CLI_USER_MAX + 1];
    int had_pending = ct.has_pending;
    memcpy(cmp, ct.has_pending ? ct.pending_key : ct.key, sizeof cmp);
    snprintf(name, sizeof name, "%s", ct.name);
    if ((rc = store_begin(c->st)) || (rc = contact_load(c->st, name, &ct)) < 0) {
      store_rollback(c->st);
      return cli_store_error(c, rc);
    }
    if (sodium_memcmp(had_pending ? ct.pending_key : ct.key, cmp, sizeof cmp) != 0 || had_pending != ct.has_pending) {
      store_rollback(c->st);
      return cli_error(c, "busy", "%s's key changed while verifying; run 'sotto safety-number %s' again", ct.name,
                       ct.name);
    }
    if (had_pending) {
      contact_accept_pending(&ct, 1);
    } else {
      ct.verified = 1;
      memcpy(ct.verified_key, ct.key, sizeof ct.key);
      memcpy(ct.sent_key, ct.key, sizeof ct.key);
      ct.has_sent = 1;
    }
    if ((rc = contact_save(c->st, &ct)) || (rc = store_commit(c->st))) {
      store_rollback(c->st);
      return cli_store_error(c, rc);
    }
    if (had_pending) {
      unsigned released;
      if (inbox_release_held(c, ct.name, &released)) return CLI_FAIL;
    }
  }
  if (c->json) {
    cJSON *o = cli_event("verified");
    cJSON_AddStringToObject(o, "user", ct.name);
    cli_emit(c, o);
  } else {
    printf("%s is verified. sotto will refuse to send to %s if this key ever changes.\n", ct.name, ct.name);
  }
  return CLI_OK;
}

/* sotto trust USERNAME: accept a new key without comparing numbers. */
static int run_trust(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  struct contact ct;
  unsigned released = 0;
  int rc;
  const char *user;

  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (argc - optind != 1) return cli_usage(c, cmd, "expected one USERNAME");
  user = argv[optind];
  if (!cli_username_ok(user)) return cli_usage(c, cmd, "'%s' is not a valid username", user);
  if (cli_open(c)) return CLI_FAIL;
  if ((rc = store_begin(c->st)) || (rc = contact_load(c->st, user, &ct)) < 0) {
    store_rollback(c->st);
    return cli_store_error(c, rc);
  }
  if (!ct.has_pending) {
    store_rollback(c->st);
    return cli_error(c, "nothing_held", "no new identity key of %s is waiting to be accepted", user);
  }
  contact_accept_pending(&ct, 0);
  if ((rc = contact_save(c->st, &ct)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return cli_store_error(c, rc);
  }
  if (!c->json)
    printf("Accepted %s's new identity key (NOT verified: compare 'sotto safety-number %s').\n", user, user);
  if (inbox_release_held(c, user, &released)) return CLI_FAIL;
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

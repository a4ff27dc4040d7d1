/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_list.c: sotto contacts, sotto groups, sotto history -- read-only views
 * of the local store. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int contact_cb(void *ud, const struct sc_contact *ct) {
  struct cli *c = ud;
  const char *state = ct->new_key_held ? (ct->verified || ct->key_changed_since_verified
                                              ? "KEY CHANGED since verified: a new key is held"
                                              : "not verified; a new key is held")
                      : ct->key_changed_since_verified ? "KEY CHANGED since verified"
                      : ct->verified                   ? "verified"
                                                       : "not verified";
  if (c->json) {
    cJSON *o = cli_event("contact");
    cJSON_AddStringToObject(o, "user", ct->name);
    cJSON_AddBoolToObject(o, "verified", ct->verified);
    cJSON_AddBoolToObject(o, "key_changed_since_verified", ct->key_changed_since_verified);
    cJSON_AddNumberToObject(o, "key_changes", ct->key_changes);
    cJSON_AddBoolToObject(o, "new_key_held", ct->new_key_held);
    cJSON_AddNumberToObject(o, "held", ct->held);
    cli_emit(c, o);
  } else {
    printf("%-32s %s%s\n", ct->name, state, ct->key_changes ? " (key changed before)" : "");
  }
  return 0;
}

static int run_contacts(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  int rc;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (cli_open(c)) return CLI_FAIL;
  return sc_contacts(c->core, contact_cb, c) ? cli_fail(c) : CLI_OK;
}

static int group_cb(void *ud, const struct sc_group *g) {
  struct cli *c = ud;
  size_t i;
  if (c->json) {
    cJSON *o = cli_event("group"), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "group", g->name);
    for (i = 0; i < g->n_members; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(g->members[i]));
    cJSON_AddItemToObject(o, "members", arr);
    cli_emit(c, o);
  } else {
    printf("%s:", g->name);
    for (i = 0; i < g->n_members; i++) printf(" %s", g->members[i]);
    printf("\n");
  }
  return 0;
}

static int run_groups(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  int rc;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (cli_open(c)) return CLI_FAIL;
  return sc_groups(c->core, group_cb, c) ? cli_fail(c) : CLI_OK;
}

static int history_cb(void *ud, const struct sc_event *ev) {
  cli_show_event(ud, ev);
  return 0;
}

static int run_history(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {{"ids", no_argument, NULL, 'i'},
                                       {"delete", no_argument, NULL, 'd'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *filter = NULL;
  uint64_t id = 0;
  unsigned n = 0;
  int ch, del = 0;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    switch (ch) {
      case 'i': c->show_ids = 1; break;
      case 'd': del = 1; break;
      case 'h': return cli_help(cmd);
      default: return cli_usage(c, cmd, "unknown option '%s'", argv[optind - 1]);
    }
  }
  if (del) {
    char *end;
    if (argc - optind < 1 || argc - optind > 2) return cli_usage(c, cmd, "--delete needs USERNAME or GROUP [ID]");
    if (argc - optind == 2) {
      id = strtoull(argv[optind + 1], &end, 10);
      if (*end || id == 0) return cli_usage(c, cmd, "'%s' is not a message id", argv[optind + 1]);
    }
    if (cli_open(c)) return CLI_FAIL;
    if (sc_history_delete(&n, c->core, argv[optind], id)) return cli_fail(c);
    if (c->json) {
      cJSON *o = cli_event("history_deleted");
      cJSON_AddStringToObject(o, "conversation", argv[optind]);
      cJSON_AddNumberToObject(o, "count", n);
      cli_emit(c, o);
    } else {
      printf("Deleted %u entr%s of the conversation with %s from this device.\n", n, n == 1 ? "y" : "ies",
             argv[optind]);
    }
    return CLI_OK;
  }
  if (argc - optind > 1) return cli_usage(c, cmd, "expected at most one USERNAME or group NAME");
  if (optind < argc) filter = argv[optind];
  if (cli_open(c)) return CLI_FAIL;
  return sc_history(c->core, filter, history_cb, c) ? cli_fail(c) : CLI_OK;
}

const struct cli_cmd cmd_contacts = {"contacts", "list contacts and whether they are verified", "contacts",
                                     "Lists everyone you exchanged messages with, and the state of their key:\n"
                                     "verified, not verified, or changed since you verified it.\n\n"
                                     "options:\n"
                                     "  --help   this text\n",
                                     run_contacts};

const struct cli_cmd cmd_groups = {"groups", "list your groups and their members", "groups",
                                   "Lists the groups you are in, with their members as you know them.\n\n"
                                   "options:\n"
                                   "  --help   this text\n",
                                   run_groups};

const struct cli_cmd cmd_history = {"history", "show the stored messages",
                                    "history [--ids] [USERNAME | GROUP] | history --delete USERNAME|GROUP [ID]",
                                    "Shows the messages kept in the local store (decrypted with your\n"
                                    "passphrase), oldest first; optionally only those with USERNAME or in "
                                    "GROUP.\nYour own 1:1 messages show their delivery state before the text:\n"
                                    "queued, sent, delivered, read, failed or expired (docs/client.md).\n"
                                    "Replies show the message they answer, reactions and (edited) follow\n"
                                    "the text, a message deleted for everyone shows \"message deleted\".\n\n"
                                    "options:\n"
                                    "  --ids      show each message's id (for send --reply-to, react, edit,\n"
                                    "             delete, history --delete)\n"
                                    "  --delete   delete the conversation with USERNAME or GROUP from this\n"
                                    "             device (only message ID when given); the bytes are\n"
                                    "             overwritten in the store file\n"
                                    "  --help   this text\n",
                                    run_history};

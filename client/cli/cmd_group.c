/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_group.c: sotto group create|send|add|remove|leave -- Sender Keys groups
 * whose membership only the members know (docs/client.md, "Groups"). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The members after the change, as the group now is (or was, when we left). */
static void report(struct cli *c, const char *action, const char *name, const char *const *members, size_t n,
                   const char *user, unsigned failed) {
  size_t i;
  if (c->json) {
    cJSON *o = cli_event("group"), *arr = cJSON_CreateArray();
    const char *type = strcmp(action, "created") == 0   ? "group_created"
                       : strcmp(action, "added") == 0   ? "group_member_added"
                       : strcmp(action, "removed") == 0 ? "group_member_removed"
                                                        : "group_left";
    cJSON_AddStringToObject(o, "type", type);
    cJSON_AddStringToObject(o, "by", sc_username(c->core));
    if (user) cJSON_AddStringToObject(o, "member", user);
    cJSON_AddStringToObject(o, "action", action);
    cJSON_AddStringToObject(o, "group", name);
    if (user) cJSON_AddStringToObject(o, "user", user);
    for (i = 0; i < n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(members[i]));
    cJSON_AddItemToObject(o, "members", arr);
    cJSON_AddNumberToObject(o, "undelivered", failed);
    cli_emit(c, o);
    return;
  }
  if (strcmp(action, "left") == 0) {
    size_t told = n >= failed ? n - failed : 0;
    printf("You left the group %s; %zu member%s told%s.\n", name, told, told == 1 ? " was" : "s were",
           failed ? " (see the warnings for the others)" : "");
    return;
  }
  printf("Group %s: %s%s%s. Members:", name, action, user ? " " : "", user ? user : "");
  for (i = 0; i < n; i++) printf(" %s", members[i]);
  printf("\n");
}

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  const char *sub, *list[SC_GROUP_MAX_MEMBERS + 1];
  struct sc_group *g = NULL;
  struct sc_sent sent;
  size_t nl = 0, k;
  unsigned flags;
  int rc, i, n;

  if ((rc = cli_yes_option(c, cmd, argc, argv)) >= 0) return rc;
  argc -= optind;
  argv += optind;
  if (argc < 2) return cli_usage(c, cmd, "expected a subcommand and a group NAME");
  sub = argv[0];
  if (strcmp(sub, "leave") == 0) {
    /* group leave NAME: group remove NAME <yourself>. */
    if (argc != 2) return cli_usage(c, cmd, "wrong number of arguments for 'group leave'");
    if (!sc_group_name_ok(argv[1]))
      return cli_usage(c, cmd, "'%s' is not a group name: 1-64 of A-Z a-z 0-9 _ . -", argv[1]);
    char me[SC_USER_MAX + 1]; /* a copy: the core may reload its account meanwhile */
    if (cli_open(c)) return CLI_FAIL;
    if (!(g = calloc(1, sizeof *g))) return cli_error(c, "nomem", "out of memory");
    snprintf(me, sizeof me, "%s", sc_username(c->core));
    flags = c->yes ? SC_SEND_ACCEPT_KEY_CHANGE : 0;
    if ((rc = sc_group_get(g, c->core, argv[1])) == 0 && (rc = sc_group_remove(&sent, c->core, argv[1], me, flags)) == 0) {
      for (k = 0; k < g->n_members; k++)
        if (strcmp(g->members[k], me) != 0) list[nl++] = g->members[k];
      report(c, "left", g->name, list, nl, NULL, sent.undelivered);
    }
    free(g);
    return rc ? cli_fail(c) : CLI_OK;
  }
  if (!sc_group_name_ok(argv[1])) return cli_usage(c, cmd, "'%s' is not a group name: 1-64 of A-Z a-z 0-9 _ . -", argv[1]);
  n = strcmp(sub, "create") == 0 ? -2 : strcmp(sub, "send") == 0 ? -3 : (!strcmp(sub, "add") || !strcmp(sub, "remove")) ? 3 : 0;
  if (n == 0) return cli_usage(c, cmd, "unknown subcommand '%s'", sub);
  if ((n > 0 && argc != n) || (n == -2 && argc < 3) || (n == -3 && argc < 3))
    return cli_usage(c, cmd, "wrong number of arguments for 'group %s'", sub);
  if (n != -3)
    for (i = 2; i < argc; i++)
      if (!cli_username_ok(argv[i])) return cli_usage(c, cmd, "'%s' is not a valid username", argv[i]);
  if (n == -2 && argc - 2 >= SC_GROUP_MAX_MEMBERS)
    return cli_usage(c, cmd, "a group has at most %d members", SC_GROUP_MAX_MEMBERS);
  if (cli_open(c)) return CLI_FAIL;
  if (n == -2)
    for (i = 2; i < argc; i++)
      if (strcmp(argv[i], sc_username(c->core)) == 0)
        return cli_usage(c, cmd, "you are in the group anyway; list the other members");
  if (!(g = calloc(1, sizeof *g))) return cli_error(c, "nomem", "out of memory");
  flags = c->yes ? SC_SEND_ACCEPT_KEY_CHANGE : 0;
  if (n == -2) {
    rc = sc_group_create(&sent, c->core, argv[1], (const char *const *)argv + 2, (size_t)argc - 2, flags);
    if (rc == 0 || rc == SC_ERR_PARTIAL) {
      list[nl++] = sc_username(c->core);
      for (i = 2; i < argc; i++) {
        for (k = 0; k < nl && strcmp(list[k], argv[i]) != 0; k++) {
        }
        if (k == nl) list[nl++] = argv[i];
      }
      report(c, "created", argv[1], list, nl, NULL, sent.undelivered);
    }
  } else if (n == -3) {
    char *text = NULL;
    size_t len = 0;
    if (cli_read_text(c, argc - 2, argv + 2, &text, &len)) {
      free(g);
      return CLI_FAIL;
    }
    rc = sc_group_send(&sent, c->core, argv[1], text, len, flags);
    if (rc == 0 || rc == SC_ERR_UNDELIVERED) {
      if (c->json) {
        cJSON *o = cli_event("sent");
        cJSON_AddStringToObject(o, "group", argv[1]);
        cJSON_AddStringToObject(o, "text", text);
        cJSON_AddNumberToObject(o, "timestamp", (double)sent.timestamp_ms);
        cJSON_AddNumberToObject(o, "delivered", sent.delivered);
        cJSON_AddNumberToObject(o, "undelivered", sent.undelivered);
        if (sent.queued) cJSON_AddStringToObject(o, "state", "queued");
        cli_emit(c, o);
      } else if (sent.queued) {
        printf("Queued for group %s (server unreachable); will be sent when the server is back.\n", argv[1]);
      } else {
        printf("Sent to group %s (%u member%s).\n", argv[1], sent.delivered, sent.delivered == 1 ? "" : "s");
      }
    }
    free(text);
    if (rc == SC_ERR_UNDELIVERED) rc = 1; /* said above, member by member */
  } else {
    int add = strcmp(sub, "add") == 0, self = strcmp(argv[2], sc_username(c->core)) == 0;
    if ((rc = sc_group_get(g, c->core, argv[1])) == 0) {
      rc = add ? sc_group_add(&sent, c->core, argv[1], argv[2], flags)
               : sc_group_remove(&sent, c->core, argv[1], argv[2], flags);
      if (rc == 0 || rc == SC_ERR_PARTIAL) {
        for (k = 0; k < g->n_members; k++)
          if (add || strcmp(g->members[k], argv[2]) != 0) list[nl++] = g->members[k];
        if (add) list[nl++] = argv[2];
        report(c, add ? "added" : self ? "left" : "removed", g->name, list, nl, self ? NULL : argv[2],
               sent.undelivered);
      }
    }
  }
  free(g);
  if (rc == 1) return CLI_FAIL;
  return rc ? cli_fail(c) : CLI_OK;
}

const struct cli_cmd cmd_group = {
    "group", "create a group, send to it, add or remove members",
    "group create NAME USER... | group send NAME TEXT... | group add NAME USER | group remove NAME USER | "
    "group leave NAME",
    "Groups use Sender Keys: one encryption per message, whatever the size of the\n"
    "group. The server never learns who is in a group: membership changes travel\n"
    "end to end, inside the pairwise sessions between members, and only current\n"
    "members may change it.\n\n"
    "  group create NAME USER...  a new group of you and USERs\n"
    "  group send NAME TEXT...    a message to every member (TEXT '-' reads\n"
    "                             standard input)\n"
    "  group add NAME USER        add USER (they cannot read earlier messages)\n"
    "  group remove NAME USER     remove USER; every member then switches to a\n"
    "                             fresh sender key, so USER cannot read what follows\n"
    "  group leave NAME           leave the group: the others are told and switch\n"
    "                             to fresh sender keys; your copy is deleted (the\n"
    "                             same as removing yourself)\n\n"
    "create and add first ask the server whether each USER exists: an unknown\n"
    "name is refused and nothing is stored or sent.\n\n"
    "NAME is local to you (1-64 of A-Z a-z 0-9 _ . -); members see the name the\n"
    "creator chose.\n\n"
    "options:\n"
    "  --yes    send even to members whose identity key changed since your last\n"
    "           message to them (see 'sotto send --help')\n"
    "  --help   this text\n",
    run};

/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_list.c: sotto contacts, sotto groups, sotto history -- read-only views
 * of the local store. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "contact.h"
#include "grp.h"
#include "messaging.h"

static int contact_cb(void *ud, const struct contact *ct) {
  struct cli *c = ud;
  const char *state = ct->has_pending   ? (ct->verified ? "KEY CHANGED since verified: a new key is held"
                                                         : "not verified; a new key is held")
                      : contact_blocked(ct) ? "KEY CHANGED since verified"
                      : ct->verified        ? "verified"
                                            : "not verified";
  if (c->json) {
    cJSON *o = cli_event("contact");
    cJSON_AddStringToObject(o, "user", ct->name);
    cJSON_AddBoolToObject(o, "verified", ct->verified && !contact_blocked(ct));
    cJSON_AddBoolToObject(o, "key_changed_since_verified", contact_blocked(ct));
    cJSON_AddNumberToObject(o, "key_changes", ct->key_changes);
    cJSON_AddBoolToObject(o, "new_key_held", ct->has_pending);
    cJSON_AddNumberToObject(o, "held", ct->n_held);
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
  rc = contact_each(c->st, contact_cb, c);
  return rc ? cli_store_error(c, rc) : CLI_OK;
}

static int group_cb(void *ud, const struct grp *g) {
  struct cli *c = ud;
  size_t i;
  if (c->json) {
    cJSON *o = cli_event("group"), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "group", g->name);
    for (i = 0; i < g->n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(g->members[i]));
    cJSON_AddItemToObject(o, "members", arr);
    cli_emit(c, o);
  } else {
    printf("%s:", g->name);
    for (i = 0; i < g->n; i++) printf(" %s", g->members[i]);
    printf("\n");
  }
  return 0;
}

static int run_groups(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  int rc;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (cli_open(c)) return CLI_FAIL;
  rc = grp_each(c->st, group_cb, c);
  return rc ? cli_store_error(c, rc) : CLI_OK;
}

struct seqs {
  uint64_t *v;
  size_t n, cap;
};

static int seq_cb(void *ud, const char *name, const uint8_t *val, size_t len) {
  struct seqs *s = ud;
  char *end;
  unsigned long long q = strtoull(name + 4, &end, 10);
  (void)val;
  (void)len;
  if (*end) return 0;
  if (s->n == s->cap) {
    size_t nc = s->cap ? s->cap * 2 : 64;
    uint64_t *nv = realloc(s->v, nc * sizeof *nv);
    if (!nv) return STORE_E_IO;
    s->v = nv;
    s->cap = nc;
  }
  s->v[s->n++] = q;
  return 0;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int run_history(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  struct seqs s = {NULL, 0, 0};
  const char *filter = NULL;
  size_t i;
  int rc;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (argc - optind > 1) return cli_usage(c, cmd, "expected at most one USERNAME or group NAME");
  if (optind < argc) filter = argv[optind];
  if (cli_open(c)) return CLI_FAIL;
  if ((rc = store_scan(c->st, "msg/", seq_cb, &s)) != 0) {
    free(s.v);
    return cli_store_error(c, rc);
  }
  qsort(s.v, s.n, sizeof *s.v, cmp_u64);
  for (i = 0; i < s.n && !rc; i++) {
    struct msg m;
    if ((rc = msglog_get(c->st, s.v[i], &m)) != 0) break;
    if (!filter || strcmp(m.peer, filter) == 0 || strcmp(m.group, filter) == 0) show_msg(c, &m);
    msg_clear(&m);
  }
  free(s.v);
  return rc ? cli_store_error(c, rc) : CLI_OK;
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

const struct cli_cmd cmd_history = {"history", "show the stored messages", "history [USERNAME | GROUP]",
                                    "Shows the messages kept in the local store (decrypted with your\n"
                                    "passphrase), oldest first; optionally only those with USERNAME or in GROUP.\n\n"
                                    "options:\n"
                                    "  --help   this text\n",
                                    run_history};

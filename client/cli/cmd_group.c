/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_group.c: sotto group create|send|add|remove -- Sender Keys groups
 * whose membership only the members know (docs/client.md, "Groups"). */
#include <getopt.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "contact.h"
#include "grp.h"
#include "messaging.h"

/* Sends a GROUP_UPDATE describing g to user, with skdm (may be empty). */
static int send_update(struct cli *c, struct conn *k, const struct grp *g, const char *user, const uint8_t *skdm,
                       size_t skdm_len) {
  struct content *ct = calloc(1, sizeof *ct);
  size_t i;
  int rc;
  if (!ct) return cli_error(c, "nomem", "out of memory");
  ct->kind = CONTENT_GROUP_UPDATE;
  ct->ts = cli_now_ms();
  memcpy(ct->gid, g->gid, GROUP_ID_LEN);
  snprintf(ct->name, sizeof ct->name, "%s", g->name);
  ct->epoch = g->epoch;
  ct->n_members = g->n;
  for (i = 0; i < g->n; i++) memcpy(ct->members[i], g->members[i], sizeof ct->members[i]);
  ct->skdm = skdm;
  ct->skdm_len = skdm_len;
  rc = deliver_pairwise(c, k, user, ct);
  free(ct);
  return rc;
}

/* Our own sender key of g: loads or creates it, commits, writes the
 * distribution message for its current state into skdm. */
static int own_skdm(struct cli *c, const struct grp *g, uint8_t skdm[SOTTO_SKDM_MAX_LEN], size_t *len) {
  struct sotto_sender_key *rec = NULL;
  int rc;
  if ((rc = cli_begin(c))) return cli_store_error(c, rc);
  if ((rc = grp_sk_load(c->st, g, c->acct->username, &rec)) < 0) goto fail;
  if (sotto_sender_key_distribution(rec, skdm, SOTTO_SKDM_MAX_LEN, len) != 0) {
    rc = STORE_E_IO;
    goto fail;
  }
  if ((rc = grp_sk_save(c->st, g, c->acct->username, rec)) || (rc = store_commit(c->st))) goto fail;
  sotto_sender_key_free(rec);
  return CLI_OK;
fail:
  store_rollback(c->st);
  sotto_sender_key_free(rec);
  return cli_store_error(c, rc);
}

static int save_group(struct cli *c, const struct grp *g) {
  int rc;
  if ((rc = cli_begin(c)) || (rc = grp_save(c->st, g)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    return cli_store_error(c, rc);
  }
  return CLI_OK;
}

/* Sends the update to every member but us (skdm to those in `with`), and
 * records who now holds our key. Returns the number of failures. */
static int announce(struct cli *c, struct conn *k, struct grp *g, const uint8_t *skdm, size_t skdm_len) {
  size_t i;
  int failed = 0;
  for (i = 0; i < g->n; i++) {
    if (strcmp(g->members[i], c->acct->username) == 0) continue;
    if (send_update(c, k, g, g->members[i], skdm, skdm_len) == CLI_OK)
      grp_list_add(g->dist, &g->n_dist, g->members[i]);
    else
      failed++;
  }
  return failed;
}

static int load_group(struct cli *c, const char *name, struct grp *g) {
  int rc = grp_find(c->st, name, g);
  if (rc < 0) return cli_store_error(c, rc);
  if (rc == 0) return cli_error(c, "unknown_group", "you are in no group called '%s' (see 'sotto groups')", name);
  return CLI_OK;
}

static void report(struct cli *c, const char *action, const struct grp *g, const char *user, int failed) {
  size_t i;
  if (c->json) {
    cJSON *o = cli_event("group"), *arr = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "action", action);
    cJSON_AddStringToObject(o, "group", g->name);
    if (user) cJSON_AddStringToObject(o, "user", user);
    for (i = 0; i < g->n; i++) cJSON_AddItemToArray(arr, cJSON_CreateString(g->members[i]));
    cJSON_AddItemToObject(o, "members", arr);
    cJSON_AddNumberToObject(o, "undelivered", failed);
    cli_emit(c, o);
    return;
  }
  printf("Group %s: %s%s%s. Members:", g->name, action, user ? " " : "", user ? user : "");
  for (i = 0; i < g->n; i++) printf(" %s", g->members[i]);
  printf("\n");
}

static int do_create(struct cli *c, struct conn *k, struct grp *g, int argc, char **argv) {
  uint8_t skdm[SOTTO_SKDM_MAX_LEN];
  size_t skdm_len;
  int i, rc, failed;
  memset(g, 0, sizeof *g);
  randombytes_buf(g->gid, GROUP_ID_LEN);
  snprintf(g->name, sizeof g->name, "%s", argv[0]);
  g->epoch = 1;
  grp_list_add(g->members, &g->n, c->acct->username);
  for (i = 1; i < argc; i++) grp_list_add(g->members, &g->n, argv[i]);
  if ((rc = save_group(c, g)) || (rc = own_skdm(c, g, skdm, &skdm_len))) return rc;
  failed = announce(c, k, g, skdm, skdm_len);
  if ((rc = save_group(c, g))) return rc;
  report(c, "created", g, NULL, failed);
  return failed ? cli_error(c, "partial", "%d member(s) did not get the group (see above); run 'sotto group add %s USER' "
                                          "for them later",
                            failed, g->name)
                : CLI_OK;
}

static int do_add(struct cli *c, struct conn *k, struct grp *g, const char *user) {
  uint8_t skdm[SOTTO_SKDM_MAX_LEN];
  size_t skdm_len;
  int rc, failed;
  if (grp_has(g->members, g->n, user)) return cli_error(c, "usage", "%s is already in %s", user, g->name);
  if (g->n >= GROUP_MAX_MEMBERS) return cli_error(c, "too_large", "%s has %d members, the most sotto allows", g->name,
                                                  GROUP_MAX_MEMBERS);
  g->epoch++;
  grp_list_add(g->members, &g->n, user);
  if ((rc = save_group(c, g)) || (rc = own_skdm(c, g, skdm, &skdm_len))) return rc;
  failed = announce(c, k, g, skdm, skdm_len);
  if ((rc = save_group(c, g))) return rc;
  report(c, "added", g, user, failed);
  return failed ? cli_error(c, "partial", "%d member(s) did not hear of the change; run the command again later", failed)
                : CLI_OK;
}

/* Removal: a new epoch and, before anything else is sent, a fresh sender key
 * of ours that only the remaining members get. Every remaining member
 * retires its own key when it sees the update. */
static int do_remove(struct cli *c, struct conn *k, struct grp *g, const char *user) {
  uint8_t skdm[SOTTO_SKDM_MAX_LEN];
  size_t skdm_len, i;
  int rc, failed, self = strcmp(user, c->acct->username) == 0;
  struct grp *leaving;
  if (!grp_has(g->members, g->n, user)) return cli_error(c, "usage", "%s is not in %s", user, g->name);
  if (!(leaving = malloc(sizeof *leaving))) return cli_error(c, "nomem", "out of memory");
  *leaving = *g;
  g->epoch++;
  grp_list_del(g->members, &g->n, user);
  g->n_dist = 0;
  if ((rc = cli_begin(c))) {
    free(leaving);
    return cli_store_error(c, rc);
  }
  if ((rc = grp_sk_del(c->st, g, user)) || (rc = grp_sk_del(c->st, g, c->acct->username)) ||
      (rc = (self ? grp_delete(c->st, leaving) : grp_save(c->st, g))) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    free(leaving);
    return cli_store_error(c, rc);
  }
  free(leaving);
  if (self) {
    /* Leaving: tell the others, keep nothing. */
    failed = 0;
    for (i = 0; i < g->n; i++)
      if (send_update(c, k, g, g->members[i], NULL, 0) != CLI_OK) failed++;
    report(c, "left", g, NULL, failed);
    return CLI_OK;
  }
  if ((rc = own_skdm(c, g, skdm, &skdm_len))) return rc;
  failed = announce(c, k, g, skdm, skdm_len);
  if ((rc = save_group(c, g))) return rc;
  /* The removed member learns it is out (no key travels with this). */
  if (send_update(c, k, g, user, NULL, 0) != CLI_OK) failed++;
  report(c, "removed", g, user, failed);
  return CLI_OK;
}

static int do_send(struct cli *c, struct conn *k, struct grp *g, const char *text, size_t len) {
  uint8_t skdm[SOTTO_SKDM_MAX_LEN], *out = NULL;
  struct sotto_sender_key *rec = NULL;
  struct content ct;
  struct buf_wr pt;
  struct msg m;
  size_t skdm_len, i, out_len = 0, cap;
  int rc, failed = 0, sent = 0;

  if ((rc = own_skdm(c, g, skdm, &skdm_len))) return rc;
  /* Members that do not hold our current key get it first, pairwise. */
  for (i = 0; i < g->n; i++) {
    struct content sk;
    if (strcmp(g->members[i], c->acct->username) == 0 || grp_has(g->dist, g->n_dist, g->members[i])) continue;
    memset(&sk, 0, sizeof sk);
    sk.kind = CONTENT_SENDER_KEY;
    sk.ts = cli_now_ms();
    memcpy(sk.gid, g->gid, GROUP_ID_LEN);
    sk.epoch = g->epoch;
    sk.skdm = skdm;
    sk.skdm_len = skdm_len;
    if (deliver_pairwise(c, k, g->members[i], &sk) == CLI_OK) grp_list_add(g->dist, &g->n_dist, g->members[i]);
  }
  if ((rc = save_group(c, g))) return rc;
  memset(&ct, 0, sizeof ct);
  ct.kind = CONTENT_GROUP_TEXT;
  ct.ts = cli_now_ms();
  memcpy(ct.gid, g->gid, GROUP_ID_LEN);
  ct.text = (const uint8_t *)text;
  ct.text_len = len;
  buf_wr_init(&pt, CLI_MAX_TEXT + 1024);
  if (content_encode(&pt, &ct)) {
    buf_wr_free(&pt);
    return cli_error(c, "too_large", "the message is too large");
  }
  cap = SOTTO_GROUP_MESSAGE_MAX_LEN(pt.len);
  if (!(out = malloc(cap))) {
    buf_wr_free(&pt);
    return cli_error(c, "nomem", "out of memory");
  }
  /* One ciphertext for everyone; the chain step is committed first. */
  if ((rc = cli_begin(c)) == 0) {
    if ((rc = grp_sk_load(c->st, g, c->acct->username, &rec)) >= 0) {
      rc = sotto_group_encrypt(rec, out, cap, &out_len, pt.p, pt.len) ? STORE_E_IO
                                                                       : grp_sk_save(c->st, g, c->acct->username, rec);
    }
    memset(&m, 0, sizeof m);
    m.dir = MSG_OUT;
    snprintf(m.group, sizeof m.group, "%s", g->name);
    m.ts = ct.ts;
    m.text = (char *)text;
    m.text_len = len;
    if (rc >= 0 && !rc) rc = msglog_add(c->st, c->acct, &m, 0);
    if (!rc) rc = account_save(c->st, c->acct);
    if (!rc) rc = store_commit(c->st);
    if (rc) store_rollback(c->st);
  }
  sotto_sender_key_free(rec);
  buf_wr_free(&pt);
  if (rc) {
    free(out);
    return cli_store_error(c, rc);
  }
  for (i = 0; i < g->n; i++) {
    struct contact who;
    if (strcmp(g->members[i], c->acct->username) == 0) continue;
    /* A verified member whose key changed gets nothing, even if they hold
     * our current chain from before the change (docs/client.md). */
    if ((rc = contact_load(c->st, g->members[i], &who)) < 0 || contact_blocked(&who)) {
      if (rc < 0) cli_store_error(c, rc);
      else cli_warn(c, "identity_changed",
                    "%s's identity key changed since you verified it: this message was not sent to them "
                    "(compare 'sotto safety-number %s')",
                    g->members[i], g->members[i]);
      failed++;
      rc = 0;
      continue;
    }
    if (!grp_has(g->dist, g->n_dist, g->members[i])) {
      cli_warn(c, "undelivered", "%s does not have your group key yet; they cannot read this message",
               g->members[i]);
      failed++;
      continue;
    }
    if (deliver_raw(c, k, g->members[i], SOTTO_MSG_SENDERKEY, out, out_len) == CLI_OK)
      sent++;
    else
      failed++;
  }
  free(out);
  if (c->json) {
    cJSON *o = cli_event("sent");
    cJSON_AddStringToObject(o, "group", g->name);
    cJSON_AddStringToObject(o, "text", text);
    cJSON_AddNumberToObject(o, "timestamp", (double)ct.ts);
    cJSON_AddNumberToObject(o, "delivered", sent);
    cJSON_AddNumberToObject(o, "undelivered", failed);
    cli_emit(c, o);
  } else {
    printf("Sent to group %s (%d member%s).\n", g->name, sent, sent == 1 ? "" : "s");
  }
  return failed && !sent ? CLI_FAIL : CLI_OK;
}

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  const char *sub;
  struct grp *g = NULL;
  struct conn k;
  int rc, i, n;

  static const struct option opts[] = {{"yes", no_argument, NULL, 'y'}, {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  int ch;

  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+hy", opts, NULL)) != -1) {
    if (ch == 'h') return cli_help(cmd);
    if (ch == 'y') {
      c->yes = 1;
      continue;
    }
    return cli_usage(c, cmd, "unknown option '%s'", argv[optind - 1]);
  }
  argc -= optind;
  argv += optind;
  if (argc < 2) return cli_usage(c, cmd, "expected a subcommand and a group NAME");
  sub = argv[0];
  if (!grp_name_ok(argv[1])) return cli_usage(c, cmd, "'%s' is not a group name: 1-64 of A-Z a-z 0-9 _ . -", argv[1]);
  n = strcmp(sub, "create") == 0 ? -2 : strcmp(sub, "send") == 0 ? -3 : (!strcmp(sub, "add") || !strcmp(sub, "remove")) ? 3 : 0;
  if (n == 0) return cli_usage(c, cmd, "unknown subcommand '%s'", sub);
  if ((n > 0 && argc != n) || (n == -2 && argc < 3) || (n == -3 && argc < 3))
    return cli_usage(c, cmd, "wrong number of arguments for 'group %s'", sub);
  if (n != -3)
    for (i = 2; i < argc; i++)
      if (!cli_username_ok(argv[i])) return cli_usage(c, cmd, "'%s' is not a valid username", argv[i]);
  if (n == -2 && argc - 2 >= GROUP_MAX_MEMBERS)
    return cli_usage(c, cmd, "a group has at most %d members", GROUP_MAX_MEMBERS);
  if (cli_open(c)) return CLI_FAIL;
  if (!c->acct->username[0]) return conn_open(c, &k); /* prints "register first" */
  if (!(g = calloc(1, sizeof *g))) return cli_error(c, "nomem", "out of memory");
  if (n == -2) {
    rc = grp_find(c->st, argv[1], g);
    if (rc != 0) {
      free(g);
      return rc < 0 ? cli_store_error(c, rc)
                    : cli_error(c, "exists", "you already have a group called '%s'; pick another name", argv[1]);
    }
    for (i = 2; i < argc; i++)
      if (strcmp(argv[i], c->acct->username) == 0) {
        free(g);
        return cli_usage(c, cmd, "you are in the group anyway; list the other members");
      }
  } else if (load_group(c, argv[1], g)) {
    free(g);
    return CLI_FAIL;
  }
  if (conn_open(c, &k)) {
    free(g);
    return CLI_FAIL;
  }
  if (n == -2) {
    rc = do_create(c, &k, g, argc - 1, argv + 1);
  } else if (n == -3) {
    char text[CLI_MAX_TEXT + 1];
    size_t len = 0, l;
    for (i = 2; i < argc; i++) {
      l = strlen(argv[i]);
      if (len + l + 1 > CLI_MAX_TEXT) break;
      if (i > 2) text[len++] = ' ';
      memcpy(text + len, argv[i], l);
      len += l;
    }
    text[len] = 0;
    rc = i < argc ? cli_error(c, "too_large", "the message is longer than %d bytes", CLI_MAX_TEXT)
                  : do_send(c, &k, g, text, len);
  } else if (strcmp(sub, "add") == 0) {
    rc = do_add(c, &k, g, argv[2]);
  } else {
    rc = do_remove(c, &k, g, argv[2]);
  }
  conn_close(&k);
  free(g);
  return rc;
}

const struct cli_cmd cmd_group = {
    "group", "create a group, send to it, add or remove members",
    "group create NAME USER... | group send NAME TEXT... | group add NAME USER | group remove NAME USER",
    "Groups use Sender Keys: one encryption per message, whatever the size of the\n"
    "group. The server never learns who is in a group: membership changes travel\n"
    "end to end, inside the pairwise sessions between members, and only current\n"
    "members may change it.\n\n"
    "  group create NAME USER...  a new group of you and USERs\n"
    "  group send NAME TEXT...    a message to every member\n"
    "  group add NAME USER        add USER (they cannot read earlier messages)\n"
    "  group remove NAME USER     remove USER; every member then switches to a\n"
    "                             fresh sender key, so USER cannot read what follows.\n"
    "                             Removing yourself leaves the group.\n\n"
    "NAME is local to you (1-64 of A-Z a-z 0-9 _ . -); members see the name the\n"
    "creator chose.\n\n"
    "options:\n"
    "  --yes    send even to members whose identity key changed since your last\n"
    "           message to them (see 'sotto send --help')\n"
    "  --help   this text\n",
    run};

/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_convo.c: sotto timer, react, edit, delete, requests, block, unblock
 * -- the conversation commands (docs/client.md, "Conversations"). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A message id: the timestamp (ms) history --ids and --json show. */
static int parse_id(const char *s, uint64_t *id) {
  char *end;
  unsigned long long v;
  if (!s || *s < '0' || *s > '9') return -1;
  v = strtoull(s, &end, 10);
  if (*end || v == 0) return -1;
  *id = v;
  return 0;
}

/* A conversation: a username, or '#GROUP' (a group you are in). */
static int conv_ok(const char *s) { return s[0] == '#' ? sc_group_name_ok(s + 1) : cli_username_ok(s); }

/* queued: a change made while the server could not be reached (it waits
 * in the queue of changes; exit status 0 as for a queued text). */
static int done_q(struct cli *c, const char *event, const char *user, uint64_t id, const char *human, int queued) {
  if (c->json) {
    cJSON *o = cli_event(event);
    cJSON_AddStringToObject(o, "user", user);
    if (id) cJSON_AddNumberToObject(o, "id", (double)id);
    if (queued) cJSON_AddStringToObject(o, "state", "queued");
    cli_emit(c, o);
  } else if (queued) {
    printf("%s Queued (server unreachable); will be sent when the server is back.\n", human);
  } else {
    printf("%s\n", human);
  }
  return CLI_OK;
}

static int done(struct cli *c, const char *event, const char *user, uint64_t id, const char *human) {
  return done_q(c, event, user, id, human, 0);
}

static int run_timer(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  const char *user;
  char d[64], line[160];
  uint32_t secs;
  int rc;
  if ((rc = cli_yes_option(c, cmd, argc, argv)) >= 0) return rc;
  if (argc - optind < 1 || argc - optind > 2) return cli_usage(c, cmd, "expected USERNAME [DURATION|off]");
  user = argv[optind];
  if (!conv_ok(user)) return cli_usage(c, cmd, "'%s' is not a valid username or '#GROUP'", user);
  if (argc - optind == 2 && sc_duration_parse(&secs, argv[optind + 1]))
    return cli_usage(c, cmd, "'%s' is not a duration (30s, 5m, 1h, 7d, 4w, at most a year, or off)",
                     argv[optind + 1]);
  if (cli_open(c)) return CLI_FAIL;
  if (argc - optind == 1) {
    if (sc_get_timer(&secs, c->core, user)) return cli_fail(c);
    sc_duration_text(d, sizeof d, secs);
    if (c->json) {
      cJSON *o = cli_event("timer");
      cJSON_AddStringToObject(o, "user", user);
      cJSON_AddNumberToObject(o, "seconds", secs);
      cli_emit(c, o);
    } else {
      printf("Disappearing messages %s %s: %s.\n", user[0] == '#' ? "in" : "with", user + (user[0] == '#'), d);
    }
    return CLI_OK;
  }
  if (sc_set_timer(c->core, user, secs, c->yes ? SC_SEND_ACCEPT_KEY_CHANGE : 0)) return cli_fail(c);
  sc_duration_text(d, sizeof d, secs);
  snprintf(line, sizeof line, "Disappearing messages %s %s: %s.", user[0] == '#' ? "in" : "with",
           user + (user[0] == '#'), d);
  return done_q(c, "timer", user, 0, line, sc_change_queued(c->core));
}

static int run_react(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  const char *user, *emoji = "";
  uint64_t id;
  char line[160];
  int rc, remove = 0;
  if ((rc = cli_yes_option(c, cmd, argc, argv)) >= 0) return rc;
  if (argc - optind != 3 && argc - optind != 2) return cli_usage(c, cmd, "expected USERNAME ID EMOJI (or ID -)");
  user = argv[optind];
  if (!conv_ok(user)) return cli_usage(c, cmd, "'%s' is not a valid username or '#GROUP'", user);
  if (parse_id(argv[optind + 1], &id)) return cli_usage(c, cmd, "'%s' is not a message id", argv[optind + 1]);
  if (argc - optind == 3 && strcmp(argv[optind + 2], "-") != 0) emoji = argv[optind + 2];
  remove = !emoji[0];
  if (cli_text_ok(c, emoji, strlen(emoji))) return CLI_FAIL;
  if (cli_open(c)) return CLI_FAIL;
  if (sc_react(c->core, user, id, emoji, c->yes ? SC_SEND_ACCEPT_KEY_CHANGE : 0)) return cli_fail(c);
  snprintf(line, sizeof line, remove ? "Reaction removed." : "Reacted.");
  return done_q(c, remove ? "unreacted" : "reacted", user, id, line, sc_change_queued(c->core));
}

static int run_edit(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  const char *user;
  char *text = NULL;
  size_t len = 0;
  uint64_t id;
  int rc;
  if ((rc = cli_yes_option(c, cmd, argc, argv)) >= 0) return rc;
  if (argc - optind < 3) return cli_usage(c, cmd, "expected USERNAME ID TEXT");
  user = argv[optind];
  if (!conv_ok(user)) return cli_usage(c, cmd, "'%s' is not a valid username or '#GROUP'", user);
  if (parse_id(argv[optind + 1], &id)) return cli_usage(c, cmd, "'%s' is not a message id", argv[optind + 1]);
  if (cli_read_text(c, argc - optind - 2, argv + optind + 2, &text, &len)) return CLI_FAIL;
  if (cli_open(c)) {
    free(text);
    return CLI_FAIL;
  }
  rc = sc_edit(c->core, user, id, text, len, c->yes ? SC_SEND_ACCEPT_KEY_CHANGE : 0);
  free(text);
  if (rc) return cli_fail(c);
  return done_q(c, "edited", user, id, "Edited.", sc_change_queued(c->core));
}

static int run_delete(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  const char *user;
  uint64_t id;
  int rc;
  if ((rc = cli_yes_option(c, cmd, argc, argv)) >= 0) return rc;
  if (argc - optind != 2) return cli_usage(c, cmd, "expected USERNAME ID");
  user = argv[optind];
  if (!conv_ok(user)) return cli_usage(c, cmd, "'%s' is not a valid username or '#GROUP'", user);
  if (parse_id(argv[optind + 1], &id)) return cli_usage(c, cmd, "'%s' is not a message id", argv[optind + 1]);
  if (cli_open(c)) return CLI_FAIL;
  if (sc_delete_for_all(c->core, user, id, c->yes ? SC_SEND_ACCEPT_KEY_CHANGE : 0)) return cli_fail(c);
  return done_q(c, "deleted", user, id, "Deleted for everyone.", sc_change_queued(c->core));
}

static int request_cb(void *ud, const char *user, unsigned n) {
  struct cli *c = ud;
  if (c->json) {
    cJSON *o = cli_event("request");
    cJSON_AddStringToObject(o, "user", user);
    cJSON_AddNumberToObject(o, "messages", n);
    cli_emit(c, o);
  } else {
    printf("%s (%u message%s)\n", user, n, n == 1 ? "" : "s");
  }
  return 0;
}

static int invite_cb(void *ud, const char *group, const char *inviter) {
  struct cli *c = ud;
  if (c->json) {
    cJSON *o = cli_event("group_invite");
    cJSON_AddStringToObject(o, "group", group);
    cJSON_AddStringToObject(o, "user", inviter);
    cli_emit(c, o);
  } else {
    printf("group %s (invited by %s)\n", group, inviter);
  }
  return 0;
}

static int blocked_cb(void *ud, const char *user) {
  struct cli *c = ud;
  if (c->json) {
    cJSON *o = cli_event("blocked");
    cJSON_AddStringToObject(o, "user", user);
    cli_emit(c, o);
  } else {
    printf("%s (blocked)\n", user);
  }
  return 0;
}

static int run_requests(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  const char *what, *user;
  char line[160];
  int rc;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (argc - optind == 0) {
    if (cli_open(c)) return CLI_FAIL;
    return sc_requests(c->core, request_cb, c) || sc_group_invites(c->core, invite_cb, c) ? cli_fail(c) : CLI_OK;
  }
  if (argc - optind != 2) return cli_usage(c, cmd, "expected nothing, or accept|block|delete USERNAME");
  what = argv[optind];
  user = argv[optind + 1];
  if (!cli_username_ok(user)) return cli_usage(c, cmd, "'%s' is not a valid username", user);
  if (strcmp(what, "accept") && strcmp(what, "block") && strcmp(what, "delete"))
    return cli_usage(c, cmd, "unknown action '%s' (accept, block or delete)", what);
  if (cli_open(c)) return CLI_FAIL;
  if (!strcmp(what, "accept")) rc = sc_request_accept(c->core, user);
  else if (!strcmp(what, "delete")) rc = sc_request_delete(c->core, user);
  else rc = sc_block(c->core, user, 1);
  if (rc) return cli_fail(c);
  snprintf(line, sizeof line, "%s: %s.", user,
           !strcmp(what, "accept") ? "accepted, now a contact" : !strcmp(what, "delete") ? "messages deleted" : "blocked");
  return done(c, what, user, 0, line);
}

static int failed_cb(void *ud, const struct sc_failed_change *f) {
  struct cli *c = ud;
  if (c->json) {
    cJSON *o = cli_event("failed_change");
    cJSON_AddNumberToObject(o, "seq", (double)f->seq);
    cJSON_AddStringToObject(o, "conversation", f->conv);
    cJSON_AddStringToObject(o, "change", f->what);
    if (f->ref_ts) cJSON_AddNumberToObject(o, "id", (double)f->ref_ts);
    cJSON_AddStringToObject(o, "error", sc_error_name(f->error));
    cJSON_AddStringToObject(o, "detail", f->detail);
    cli_emit(c, o);
  } else {
    printf("%llu: %s to %s", (unsigned long long)f->seq, f->what, f->conv);
    if (f->ref_ts) printf(" (message %llu)", (unsigned long long)f->ref_ts);
    printf(" failed: %s\n", f->detail[0] ? f->detail : sc_error_message(f->error));
  }
  return 0;
}

static int run_outbox(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  const char *what;
  uint64_t seq;
  char line[160];
  int rc;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (argc - optind == 0) {
    if (cli_open(c)) return CLI_FAIL;
    return sc_failed_changes(c->core, failed_cb, c) ? cli_fail(c) : CLI_OK;
  }
  if (argc - optind != 2) return cli_usage(c, cmd, "expected nothing, or retry|discard NUMBER");
  what = argv[optind];
  if (strcmp(what, "retry") && strcmp(what, "discard"))
    return cli_usage(c, cmd, "unknown action '%s' (retry or discard)", what);
  if (parse_id(argv[optind + 1], &seq)) return cli_usage(c, cmd, "'%s' is not a number from the list", argv[optind + 1]);
  if (cli_open(c)) return CLI_FAIL;
  rc = what[0] == 'r' ? sc_failed_change_retry(c->core, seq) : sc_failed_change_discard(c->core, seq);
  if (rc) return cli_fail(c);
  snprintf(line, sizeof line, what[0] == 'r' ? "Change %llu queued again (sent now if the server took it; see 'sotto outbox')."
                                            : "Change %llu discarded.",
           (unsigned long long)seq);
  return done(c, what[0] == 'r' ? "retried" : "discarded", "", seq, line);
}

static int run_block(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  int rc, on = strcmp(cmd->name, "block") == 0;
  const char *user;
  char line[160];
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (on && argc - optind == 0) {
    if (cli_open(c)) return CLI_FAIL;
    return sc_blocked(c->core, blocked_cb, c) ? cli_fail(c) : CLI_OK;
  }
  if (argc - optind != 1) return cli_usage(c, cmd, "expected USERNAME");
  user = argv[optind];
  if (!cli_username_ok(user)) return cli_usage(c, cmd, "'%s' is not a valid username", user);
  if (cli_open(c)) return CLI_FAIL;
  if (sc_block(c->core, user, on)) return cli_fail(c);
  snprintf(line, sizeof line, "%s %s.", on ? "Blocked" : "Unblocked", user);
  return done(c, on ? "blocked" : "unblocked", user, 0, line);
}

const struct cli_cmd cmd_outbox = {
    "outbox", "list, retry or discard changes that could not be sent", "outbox [retry|discard NUMBER]",
    "Reactions, edits, deletes, timers and group texts made while the server\n"
    "was unreachable wait in a queue and go with the next connection. One\n"
    "whose send then failed for a lasting reason (not the connection: a user\n"
    "that does not exist, a changed identity key, a group you left...) is kept\n"
    "here instead of being dropped. Without arguments, lists them with their\n"
    "numbers and why they failed; retry queues one again and sends it now if\n"
    "the server is reachable (failing again, it comes back to the list);\n"
    "discard drops it.\n\n"
    "options:\n"
    "  --help   this text\n",
    run_outbox};

const struct cli_cmd cmd_timer = {
    "timer", "set or show the disappearing-message timer", "timer [--yes] USERNAME|#GROUP [DURATION|off]",
    "Without DURATION, shows the disappearing-message timer of the conversation\n"
    "with USERNAME (or of the group GROUP: '#GROUP', quoted in the shell). With\n"
    "one (30s, 5m, 1h, 7d, 4w or seconds; at most a year; 'off' turns it off),\n"
    "sets it and tells them: everyone in the conversation sees who set it.\n"
    "Every later message goes with the timer and is deleted from each device's\n"
    "store (its bytes overwritten): yours DURATION after you sent it, theirs\n"
    "DURATION after your device received it.\n\n"
    "options:\n"
    "  --yes    send even if their identity key changed since your last message\n"
    "  --help   this text\n",
    run_timer};

const struct cli_cmd cmd_react = {
    "react", "react to a message with an emoji", "react [--yes] USERNAME|#GROUP ID [EMOJI | -]",
    "Reacts with EMOJI to message ID of the conversation with USERNAME, or in\n"
    "the group GROUP ('#GROUP'; ids: 'sotto history --ids USERNAME|GROUP').\n"
    "One reaction per person: a new one replaces yours; '-' (or no EMOJI)\n"
    "removes it.\n\n"
    "options:\n"
    "  --yes    send even if their identity key changed since your last message\n"
    "  --help   this text\n",
    run_react};

const struct cli_cmd cmd_edit = {
    "edit", "edit a message you sent (within 24 hours)", "edit [--yes] USERNAME|#GROUP ID TEXT...",
    "Replaces the text of your message ID to USERNAME (or in the group GROUP:\n"
    "'#GROUP'); every side shows it marked (edited). Only your own messages,\n"
    "within 24 hours of sending; their clients check the same and refuse\n"
    "anything else.\n\n"
    "options:\n"
    "  --yes    send even if their identity key changed since your last message\n"
    "  --help   this text\n",
    run_edit};

const struct cli_cmd cmd_delete = {
    "delete", "delete a message you sent, for everyone (within 48 hours)", "delete [--yes] USERNAME|#GROUP ID",
    "Deletes your message ID to USERNAME (or in the group GROUP: '#GROUP') on\n"
    "every side: a tombstone \"message deleted\" stays in its place. Only your\n"
    "own messages, within 48 hours of sending. 'sotto history --delete' deletes\n"
    "from this device only.\n\n"
    "options:\n"
    "  --yes    send even if their identity key changed since your last message\n"
    "  --help   this text\n",
    run_delete};

const struct cli_cmd cmd_requests = {
    "requests", "list and answer message requests", "requests [accept|block|delete USERNAME]",
    "A first message from someone you never wrote to is a message request: it\n"
    "is kept and shown marked (request), but no delivery or read receipt goes\n"
    "to them. An invitation to a group from someone who is not a contact\n"
    "waits too: the group is not listed and nothing can be sent to it. Without\n"
    "arguments, lists the requests and invitations. accept makes them a\n"
    "contact (so does writing to them) and accepts their invitations; block\n"
    "drops everything from them; delete deletes their messages and declines\n"
    "their pending invitations (those groups are deleted here; the request\n"
    "stays until accepted or blocked). Your other devices do the same.\n\n"
    "options:\n"
    "  --help   this text\n",
    run_requests};

const struct cli_cmd cmd_block = {
    "block", "block a user (or list blocked users)", "block [USERNAME]",
    "Everything USERNAME sends (their group messages too) is dropped without a\n"
    "receipt, and nothing can be sent to them. The server is not told; your\n"
    "other devices block them too. Without USERNAME, lists the blocked users.\n\n"
    "options:\n"
    "  --help   this text\n",
    run_block};

const struct cli_cmd cmd_unblock = {"unblock", "unblock a user", "unblock USERNAME",
                                    "Stops blocking USERNAME (a contact again), on your other devices too.\n\n"
                                    "options:\n"
                                    "  --help   this text\n",
                                    run_block};

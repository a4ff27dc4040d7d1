/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_front.c: sotto daemon, sotto jsonrpc and sotto chat -- the long-running
 * front ends (client/daemon, client/chat). Each takes the home's lock
 * (homelock.h) before it opens the store, so that every other sotto on that
 * home is told who holds it. */
#include <errno.h>
#include <getopt.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chat.h"
#include "cli.h"
#include "daemon.h"
#include "homelock.h"

/* Takes the lock, then opens the store (the passphrase as cli_open asks it).
 * Returns the lock fd (>= 0) or -1 after printing why. */
static int lock_and_open(struct cli *c, const char *kind, const char *socket) {
  struct homelock_info info;
  char msg[600], *pass;
  size_t len;
  int fd, rc;
  if (!sc_store_exists(c->core)) {
    (void)sc_open(c->core, NULL, 0); /* records "not initialised" */
    cli_fail(c);
    return -1;
  }
  fd = homelock_take(c->home, kind, socket ? socket : "", &info);
  if (fd == -1) {
    homelock_message(msg, sizeof msg, &info);
    cli_error(c, "home_held", "%s", msg);
    return -1;
  }
  if (fd < 0) {
    cli_error(c, "home", "cannot lock %s/%s: %s", c->home, HOMELOCK_FILE, strerror(errno));
    return -1;
  }
  if (!(pass = sodium_malloc(SC_MAX_PASSPHRASE))) {
    homelock_release(c->home, fd);
    cli_error(c, "nomem", "out of memory");
    return -1;
  }
  if (cli_passphrase(c, pass, SC_MAX_PASSPHRASE, &len, 0)) {
    sodium_free(pass);
    homelock_release(c->home, fd);
    return -1;
  }
  rc = sc_open(c->core, pass, len);
  sodium_free(pass);
  if (rc) {
    cli_fail(c);
    homelock_release(c->home, fd);
    return -1;
  }
  c->opened = 1;
  if (!sc_username(c->core)[0]) {
    homelock_release(c->home, fd);
    (void)cli_error(c, "not_registered",
                    "this identity is not registered on a server yet: run 'sotto register' first");
    return -1;
  }
  return fd;
}

static int run_daemon(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {
      {"socket", required_argument, NULL, 's'}, {"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  struct daemon_opts o;
  const char *sock = NULL;
  char err[400];
  int ch, fd, rc;
  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    if (ch == 'h') return cli_help(cmd);
    if (ch == 's') {
      sock = optarg;
      continue;
    }
    return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
  }
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (!sock)
    return cli_usage(c, cmd, "--socket PATH is required (or use 'sotto jsonrpc' for standard input/output)");
  if (sock[0] != '/') return cli_usage(c, cmd, "--socket takes an absolute path");
  if (daemon_socket_check(sock, err, sizeof err)) return cli_error(c, "socket", "%s", err);
  if ((fd = lock_and_open(c, "daemon", sock)) < 0) return CLI_FAIL;
  memset(&o, 0, sizeof o);
  o.home = c->home;
  o.socket = sock;
  o.lock_fd = fd;
  rc = daemon_run(c->core, &o);
  sc_set_sink(c->core, cli_sink, c);
  homelock_release(c->home, fd);
  return rc ? CLI_FAIL : CLI_OK;
}

static int run_jsonrpc(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  struct daemon_opts o;
  int fd, rc;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if ((fd = lock_and_open(c, "daemon", "")) < 0) return CLI_FAIL;
  memset(&o, 0, sizeof o);
  o.home = c->home;
  o.lock_fd = fd;
  rc = daemon_run(c->core, &o);
  sc_set_sink(c->core, cli_sink, c);
  homelock_release(c->home, fd);
  return rc ? CLI_FAIL : CLI_OK;
}

static int run_chat(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  const char *peer = NULL;
  int fd, rc;
  if (argc > 2) return cli_usage(c, cmd, "unexpected argument '%s'", argv[2]);
  if (argc == 2) {
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) return cli_help(cmd);
    if (argv[1][0] == '-') return cli_usage(c, cmd, "unknown option '%s'", argv[1]);
    peer = argv[1];
    if (peer[0] == '#' ? !sc_group_name_ok(peer + 1) : !sc_username_ok(peer))
      return cli_usage(c, cmd, "'%s' is neither a username nor #GROUP", peer);
  }
  if (c->json)
    return cli_usage(c, cmd, "chat is for a terminal; for scripts use 'sotto daemon' or 'sotto jsonrpc'");
  if (!isatty(0) || !isatty(1))
    return cli_error(c, "no_terminal", "chat needs a terminal (standard input and output); for scripts use 'sotto daemon'");
  if ((fd = lock_and_open(c, "chat", "")) < 0) return CLI_FAIL;
  rc = chat_run(c->core, peer);
  sc_set_sink(c->core, cli_sink, c);
  homelock_release(c->home, fd);
  return rc ? CLI_FAIL : CLI_OK;
}

const struct cli_cmd cmd_daemon = {
    "daemon", "serve JSON-RPC 2.0 to bots on a Unix socket", "daemon --socket PATH",
    "Holds this identity's store and its connection to the server (reconnecting by\n"
    "itself) and answers JSON-RPC 2.0 requests, one JSON object per line, on the\n"
    "Unix socket PATH (created mode 0600; a stale one is replaced, a live one is\n"
    "refused). Methods after signal-cli's: send, listContacts, listGroups,\n"
    "createGroup, updateGroup, getSafetyNumber, verify, trust, history,\n"
    "subscribeReceive / unsubscribeReceive (then 'receive' notifications), version\n"
    "(docs/client.md, \"The daemon\"). While it runs, other sotto commands on this\n"
    "home say that the daemon holds it. Stops on SIGINT / SIGTERM; logs to\n"
    "standard error.\n\n"
    "options:\n"
    "  --socket PATH  the socket to listen on (an absolute path)\n"
    "  --help         this text\n",
    run_daemon};

const struct cli_cmd cmd_jsonrpc = {
    "jsonrpc", "the daemon's JSON-RPC 2.0 on standard input/output", "jsonrpc",
    "The same JSON-RPC 2.0 service as 'sotto daemon', for one client: requests\n"
    "are read from standard input, answers and notifications written to standard\n"
    "output, one JSON object per line; logs go to standard error. Ends after the\n"
    "last answer once standard input is closed, or on SIGINT / SIGTERM.\n\n"
    "options:\n"
    "  --help   this text\n",
    run_jsonrpc};

const struct cli_cmd cmd_chat = {
    "chat", "the terminal chat UI", "chat [NAME | #GROUP]",
    "A full-screen chat on this terminal: conversations with unread counts, the\n"
    "open conversation with its history and live messages, an input line. NAME\n"
    "(a user) or #GROUP is opened first. Keys: arrows and Enter pick and open a\n"
    "conversation, Tab switches between the list and the conversation, PgUp /\n"
    "PgDn scroll, Enter sends. Commands on the input line: /msg NAME, /group NAME,\n"
    "/safety [NAME] (or F2), /verify NUMBER, /trust, /quit (or Ctrl-C); in the open\n"
    "conversation (a person or a group): /file PATH [CAPTION] sends a file,\n"
    "/react EMOJI reacts to the last message from someone else (/react alone\n"
    "removes yours), /edit TEXT and /delete change or delete your last message\n"
    "for everyone, /timer DURATION (30s, 5m, 1h, 7d, 4w, off) sets the\n"
    "disappearing-message timer. Needs a UTF-8 locale for other scripts than\n"
    "Latin.\n\n"
    "options:\n"
    "  --help   this text\n",
    run_chat};

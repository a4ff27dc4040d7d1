/* SPDX-License-Identifier: Apache-2.0 */
/* cli.h: what every subcommand of the sotto client shares: the run context,
 * the dispatch table entry, output (human or --json, one object per line),
 * the rendering of the core's events, and one-line errors a person can act
 * on. Everything else is the client core (client/core/sotto_client.h). */
#ifndef SOTTO_CLIENT_CLI_H
#define SOTTO_CLIENT_CLI_H

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "sotto_client.h"

/* Exit statuses. */
#define CLI_OK 0
#define CLI_FAIL 1
#define CLI_USAGE 2
#define CLI_OUTPUT 3 /* standard output closed or not writable (sotto receive | head -1) */

/* The indent of the continuation lines of a message or notice. */
#define CLI_INDENT "    "

/* Server usernames: lowercase [a-z0-9_.], 3..32 bytes (docs/protocol-server.md). */
#define CLI_USER_MAX SC_USER_MAX
#define CLI_MAX_TEXT SC_MAX_TEXT /* a message's text; the server caps a message at 64 KiB by default */

struct cli {
  char home[PATH_MAX];
  int json;
  int yes;                 /* --yes: a changed identity key needs no question */
  int opened;              /* the store is open (cli_open) */
  struct sc_client *core;  /* made by main; events go to cli_sink */
  int share_fd;            /* the shared hold on HOME/front.lock while a command runs (homelock_share), or -1 */
  char key_warned[SC_USER_MAX + 1]; /* during a send's retry: whose key change was already said */
  int out_closed;          /* a write to stdout failed: nothing more is shown; exit CLI_OUTPUT */
  int show_ids;            /* history --ids: each message's id in its header */
};

/* One subcommand: run gets argv with argv[0] = the command name. help
 * documents every option. */
struct cli_cmd {
  const char *name;
  const char *summary;
  const char *usage;
  const char *help;
  int (*run)(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv);
};

/* The table lives in main.c; each cmd_*.c defines one or more entries. */
extern const struct cli_cmd cmd_init, cmd_register, cmd_send, cmd_receive, cmd_safety_number, cmd_verify, cmd_trust,
    cmd_group, cmd_contacts, cmd_groups, cmd_history, cmd_device, cmd_rotate_secret, cmd_backup, cmd_restore,
    cmd_passphrase, cmd_unregister, cmd_recovery_code, cmd_server, cmd_session, cmd_config, cmd_kt;
/* Linking devices (cmd_link.c, cmd_device.c). */
extern const struct cli_cmd cmd_link, cmd_devices;
/* Conversations (cmd_convo.c). */
extern const struct cli_cmd cmd_outbox;
extern const struct cli_cmd cmd_timer, cmd_react, cmd_edit, cmd_delete, cmd_requests, cmd_block, cmd_unblock;
extern const struct cli_cmd cmd_attachments; /* cmd_attach.c */
/* The long-running front ends (cmd_front.c: client/daemon, client/chat). */
extern const struct cli_cmd cmd_daemon, cmd_jsonrpc, cmd_chat;

/* Prints "sotto: MESSAGE" on stderr (and, with --json, an object
 * {"event":"error","error":CODE,"message":...} on stdout). Returns CLI_FAIL. */
int cli_error(struct cli *c, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for a warning that does not stop the command. */
void cli_warn(struct cli *c, const char *code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A usage error: the message and "see sotto CMD --help". Returns CLI_USAGE. */
int cli_usage(struct cli *c, const struct cli_cmd *cmd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prints the help of cmd on stdout. Returns CLI_OK. */
int cli_help(const struct cli_cmd *cmd);
/* Standard option handling for a subcommand without options of its own:
 * returns -1 to go on, or an exit status (after --help or a bad option). */
int cli_no_options(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv);
/* The same for a subcommand whose only option is --yes (sets c->yes). */
int cli_yes_option(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv);

/* With --json: prints obj as one line on stdout and frees it. */
void cli_emit(struct cli *c, cJSON *obj);
/* A new JSON object with "event": name. */
cJSON *cli_event(const char *name);

/* The core's last failure as the error line (code = its name); returns
 * CLI_FAIL. */
int cli_fail(struct cli *c);
/* The sink main gives the core: renders events as lines or JSON. */
void cli_sink(void *ud, const struct sc_event *ev);
/* One event of the message log (a message, a sent text, a notice) as a
 * block of lines or a JSON object: a header line "[LOCAL TIME] ..." at the
 * left margin, the text's further lines indented by CLI_INDENT, every
 * control character and invalid byte replaced (docs/client.md, "Safe
 * output"). */
void cli_show_event(struct cli *c, const struct sc_event *ev);

/* After a send refused with SC_ERR_KEY_CHANGED_UNCONFIRMED: asks on the
 * terminal whether to send anyway (never with --json or without one). */
int cli_ask_key_change(struct cli *c);

/* Reads the passphrase from SOTTO_PASSPHRASE or the terminal (no echo;
 * asked twice when confirm). buf is wiped by the caller. 0 or CLI_FAIL
 * (after printing why). */
int cli_passphrase(struct cli *c, char *buf, size_t cap, size_t *len, int confirm);
/* The same for another secret: from the environment variable env_name
 * (then wiped and unset) or the terminal with prompt; what names it in
 * errors ("backup passphrase"). */
int cli_secret(struct cli *c, const char *env_name, const char *what, const char *prompt, char *buf, size_t cap,
               size_t *len, int confirm);
/* Asks question on the terminal and reads y/N. 1 for yes; 0 for no, or
 * when there is no terminal to ask on (stdin and stderr not both terminals,
 * or --json). */
int cli_confirm(struct cli *c, const char *question);
/* Opens the store of c->home and loads the account (asking for the
 * passphrase). Prints an actionable error (not initialised, wrong
 * passphrase, busy) and returns CLI_FAIL. */
int cli_open(struct cli *c);
/* The text to send from the arguments (joined by spaces) or, for a single
 * "-", from stdin (one trailing newline dropped); checked by cli_text_ok.
 * *out is malloc'd. CLI_OK or CLI_FAIL (after printing why). */
int cli_read_text(struct cli *c, int argc, char **argv, char **out, size_t *len);
/* CLI_OK if the text to send is valid UTF-8 without NUL; else prints why
 * (code "invalid_text") and returns CLI_FAIL. */
int cli_text_ok(struct cli *c, const char *t, size_t n);
/* 1 if s is a valid username (server rules). */
int cli_username_ok(const char *s);
#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_attach.c: sotto attachments -- the files received and sent. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>

#include "cli.h"

static int attach_cb(void *ud, const struct sc_event *ev) {
  cli_show_event(ud, ev);
  return 0;
}

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  char dir[PATH_MAX];
  int rc;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (cli_open(c)) return CLI_FAIL;
  if (!c->json) printf("Downloads: %s\n", sc_downloads_dir(c->core, dir, sizeof dir));
  return sc_attachments(c->core, attach_cb, c) ? cli_fail(c) : CLI_OK;
}

const struct cli_cmd cmd_attachments = {
    "attachments", "list the files received and sent", "attachments",
    "Lists the attachments in the local history, oldest first: files received\n"
    "(saved under HOME/downloads with the name shown), files sent, and files\n"
    "that could not be fetched and why (expired on the server, altered, no room\n"
    "on the disk). A received file is saved only after its digest and every\n"
    "chunk checked out; a file name from the sender is cleaned first (no\n"
    "directories, no control characters, at most 100 bytes; a name taken\n"
    "already gets \" (1)\", \" (2)\" ...).\n\n"
    "options:\n"
    "  --help   this text\n",
    run};

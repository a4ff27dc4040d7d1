/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_kt.c: sotto kt -- the key-transparency log of the server as this
 * client sees it (status), its witnesses, and how many must cosign. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char *mon_name(int m) {
  return m == 1 ? "ok" : m == 2 ? "ALERT" : m == 3 ? "could not check" : "not run yet";
}

static int show_status(struct cli *c) {
  struct sc_kt_status st;
  size_t i;
  if (sc_kt_status(&st, c->core, 1)) return cli_fail(c);
  if (c->json) {
    cJSON *o = cli_event("kt_status"), *ws = cJSON_CreateArray();
    cJSON_AddStringToObject(o, "state", st.off && !st.pinned ? "off" : st.pinned ? "on" : "unknown");
    cJSON_AddBoolToObject(o, "required", st.required);
    cJSON_AddNumberToObject(o, "k", st.k);
    cJSON_AddBoolToObject(o, "checked_now", st.refreshed);
    if (st.has_head) {
      cJSON_AddNumberToObject(o, "size", (double)st.size);
      cJSON_AddNumberToObject(o, "timestamp_ms", (double)st.timestamp_ms);
      cJSON_AddStringToObject(o, "root", st.root_hex);
    }
    for (i = 0; i < st.n_wit; i++) {
      cJSON *w = cJSON_CreateObject();
      cJSON_AddStringToObject(w, "name", st.wit[i].name);
      cJSON_AddStringToObject(w, "key", st.wit[i].pk_hex);
      cJSON_AddStringToObject(w, "source", st.wit[i].added ? "added" : "server");
      cJSON_AddNumberToObject(w, "last_cosigned_size", (double)st.wit[i].last_size);
      cJSON_AddItemToArray(ws, w);
    }
    cJSON_AddItemToObject(o, "witnesses", ws);
    cJSON_AddStringToObject(o, "monitor", mon_name(st.monitor));
    cJSON_AddNumberToObject(o, "monitor_time", (double)st.monitor_time);
    cJSON_AddStringToObject(o, "monitor_detail", st.monitor_detail);
    cJSON_AddBoolToObject(o, "monitor_acknowledged", st.monitor_acked);
    cJSON_AddStringToObject(o, "device_list_monitor", mon_name(st.list_monitor));
    cJSON_AddStringToObject(o, "device_list_detail", st.list_detail);
    cJSON_AddBoolToObject(o, "device_list_acknowledged", st.list_acked);
    cli_emit(c, o);
    return CLI_OK;
  }
  if (!st.pinned && !st.off) {
    printf("key transparency: not known yet (the server was not asked)%s\n",
           st.required ? "; REQUIRED: nothing is sent to new contacts until it is checked" : "");
    if (!st.refreshed) printf("  (not checked now: %s)\n", sc_errdetail(c->core));
    return CLI_OK;
  }
  if (!st.pinned) {
    printf("key transparency: off for this server (it runs no log)%s\n",
           st.required ? "; REQUIRED: nothing is sent to new contacts" : "");
    if (!st.refreshed) printf("  (not checked now: %s)\n", sc_errdetail(c->core));
    return CLI_OK;
  }
  printf("key transparency: on%s%s\n", st.required ? " (required)" : "",
         st.refreshed ? "" : " (stored state; the server was not reached now)");
  if (st.has_head) {
    time_t t = (time_t)(st.timestamp_ms / 1000);
    struct tm tm;
    char when[64];
    gmtime_r(&t, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf("head: size %llu, time %s, root %s\n", (unsigned long long)st.size, when, st.root_hex);
  } else {
    printf("head: none seen yet\n");
  }
  printf("log key: %s\n", st.log_hex);
  printf("witnesses: %u of %zu required\n", st.k, st.n_wit);
  if (!st.n_wit) printf("  none: a server that shows different logs to different people would not be caught\n");
  for (i = 0; i < st.n_wit; i++)
    printf("  %s %s (%s) last cosigned size %llu\n", st.wit[i].name, st.wit[i].pk_hex,
           st.wit[i].added ? "added by you" : "announced by the server at first contact",
           (unsigned long long)st.wit[i].last_size);
  printf("monitoring of your account: %s%s%s%s\n", mon_name(st.monitor), st.monitor_acked ? " (acknowledged)" : "",
         st.monitor_detail[0] ? ": " : "", st.monitor_detail);
  printf("monitoring of your device list: %s%s%s%s\n", mon_name(st.list_monitor),
         st.list_acked ? " (acknowledged)" : "", st.list_detail[0] ? ": " : "", st.list_detail);
  return CLI_OK;
}

static int run_kt(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  int rc, n;
  const char *sub;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  n = argc - optind;
  sub = n > 0 ? argv[optind] : "status";
  if (!strcmp(sub, "status") && n <= 1) {
    if (cli_open(c)) return CLI_FAIL;
    return show_status(c);
  }
  if (!strcmp(sub, "witnesses") && n == 4 && !strcmp(argv[optind + 1], "add")) {
    if (cli_open(c)) return CLI_FAIL;
    if (sc_kt_witness_add(c->core, argv[optind + 2], argv[optind + 3])) return cli_fail(c);
    if (!c->json) printf("witness %s added\n", argv[optind + 2]);
    return CLI_OK;
  }
  if (!strcmp(sub, "witnesses") && n == 3 && !strcmp(argv[optind + 1], "remove")) {
    if (cli_open(c)) return CLI_FAIL;
    if (sc_kt_witness_remove(c->core, argv[optind + 2])) return cli_fail(c);
    if (!c->json) printf("witness %s removed\n", argv[optind + 2]);
    return CLI_OK;
  }
  if (!strcmp(sub, "ack") && n == 1) {
    if (cli_open(c)) return CLI_FAIL;
    if ((rc = sc_kt_ack(c->core)) < 0) return cli_fail(c);
    if (c->json) {
      cJSON *o = cli_event("kt_ack");
      cJSON_AddNumberToObject(o, "acknowledged", rc);
      cli_emit(c, o);
    } else {
      printf("key-transparency alert acknowledged (%d): it is not repeated for this entry; a new one alerts again\n",
             rc);
    }
    return CLI_OK;
  }
  if (!strcmp(sub, "require") && n == 2) {
    const char *a = argv[optind + 1];
    char *end;
    long k = -1;
    if (strcmp(a, "off") != 0) {
      k = strtol(a, &end, 10);
      if (end == a || *end || k < 0 || k > 16) return cli_usage(c, cmd, "require takes K (0-16) or 'off', not '%s'", a);
    }
    if (cli_open(c)) return CLI_FAIL;
    if (sc_kt_require(c->core, (int)k)) return cli_fail(c);
    if (!c->json) {
      if (k < 0) printf("key transparency: used when the server runs it (default)\n");
      else printf("key transparency: required, with %ld witness cosignature%s\n", k, k == 1 ? "" : "s");
    }
    return CLI_OK;
  }
  return cli_usage(c, cmd,
                   "expected 'status', 'ack', 'witnesses add NAME KEY', 'witnesses remove NAME' or 'require K|off'");
}

const struct cli_cmd cmd_kt = {
    "kt", "key transparency: the server's public key log and its witnesses",
    "kt [status | ack | witnesses add NAME KEY | witnesses remove NAME | require K|off]",
    "A server that runs key transparency keeps a public log of every account's\n"
    "identity key; independent witnesses check it and cosign its head. A\n"
    "contact's key is used only if the log holds it under a head the server\n"
    "signed and at least K of the known witnesses cosigned, consistent with the\n"
    "last head this client saw.\n"
    "The log also holds each account's signed device list (version and hash):\n"
    "a contact's device list is used only if the log holds exactly it.\n"
    "Each connect also checks this account's own entries (monitoring) and says\n"
    "loudly if the log shows a key this device did not make or a device list\n"
    "none of this account's devices signed.\n\n"
    "  status                  the last head (size, time, root), the witnesses\n"
    "                          with the last size each cosigned, and the last\n"
    "                          monitoring results (connects first if it can)\n"
    "  ack                     acknowledge the current alert: it is no longer\n"
    "                          repeated for that exact entry (a new one alerts\n"
    "                          again); status still shows it\n"
    "  witnesses add NAME KEY  also count cosignatures from this witness (KEY:\n"
    "                          its public key, 64 hex digits)\n"
    "  witnesses remove NAME   forget a witness\n"
    "  require K               make key transparency mandatory for this server,\n"
    "                          with K witness cosignatures (0-16)\n"
    "  require off             back to the default: used when the server runs it,\n"
    "                          K = 1 if any witness is known\n\n"
    "The witnesses the server announces at first contact are pinned then, like\n"
    "its certificate.\n\n"
    "options:\n"
    "  --help   this text\n",
    run_kt};

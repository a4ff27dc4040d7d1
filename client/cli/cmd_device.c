/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_device.c: sotto device list|remove, sotto rotate-secret -- manage this
 * account's devices on the server: see which exist, remove one (a lost or
 * stolen device loses its access), and give this device a new secret (a
 * copied secret stops working). */
#include <getopt.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* A last-seen day (days since 1970-01-01 UTC) as YYYY-MM-DD; "" for 0. */
static void seen_date(char out[16], uint32_t day) {
  time_t t = (time_t)day * 86400;
  struct tm tm;
  out[0] = 0;
  if (day && gmtime_r(&t, &tm)) strftime(out, 16, "%Y-%m-%d", &tm);
}

static int device_list(struct cli *c) {
  struct sc_device_info d[SC_MAX_DEVICES];
  uint32_t version = 0;
  size_t n = 0, i;
  if (sc_devices_info(d, &n, SC_MAX_DEVICES, &version, c->core)) return cli_fail(c);
  for (i = 0; i < n; i++) {
    char day[16] = "";
    time_t t = (time_t)(d[i].added_ms / 1000);
    struct tm tm;
    char seen[16];
    uint32_t today = (uint32_t)(time(NULL) / 86400);
    if (d[i].added_ms && gmtime_r(&t, &tm)) strftime(day, sizeof day, "%Y-%m-%d", &tm);
    seen_date(seen, d[i].last_seen_day);
    if (c->json) {
      cJSON *o = cli_event("device");
      cJSON_AddNumberToObject(o, "device_id", d[i].device_id);
      cJSON_AddBoolToObject(o, "this_device", d[i].this_device);
      cJSON_AddBoolToObject(o, "listed", d[i].listed);
      cJSON_AddBoolToObject(o, "on_server", d[i].has_row);
      if (d[i].listed) {
        cJSON_AddStringToObject(o, "name", d[i].name);
        cJSON_AddNumberToObject(o, "added_ms", (double)d[i].added_ms);
        cJSON_AddStringToObject(o, "fingerprint", d[i].fingerprint);
        cJSON_AddNumberToObject(o, "list_version", version);
      }
      if (seen[0]) cJSON_AddStringToObject(o, "last_seen", seen);
      cli_emit(c, o);
    } else {
      /* The name is the account's own (device 1 signed it), printable ASCII
       * when sotto made it; shown between quotes. */
      printf("device %u%s", (unsigned)d[i].device_id, d[i].this_device ? " (this device)" : "");
      if (d[i].listed) printf(" '%s', added %s", d[i].name, day);
      /* The server's day, UTC: "today" and "yesterday" by this machine's UTC clock. */
      if (seen[0])
        printf(", last seen %s", d[i].last_seen_day == today       ? "today"
                                 : d[i].last_seen_day + 1 == today ? "yesterday"
                                                                   : seen);
      if (!d[i].listed) printf(", not in the signed device list: contacts do not send to it");
      else if (!d[i].has_row) printf(", removed (the next signed list drops it)");
      printf("\n");
    }
  }
  if (!c->json && version) printf("signed device list version %u\n", (unsigned)version);
  return CLI_OK;
}

static int device_remove(struct cli *c, uint32_t id) {
  if (sc_device_remove(c->core, id)) return cli_fail(c);
  if (c->json) {
    cJSON *o = cli_event("device_removed");
    cJSON_AddNumberToObject(o, "device_id", id);
    cli_emit(c, o);
  } else {
    printf("device %u removed: its secret, keys and queued messages are gone from the server%s\n", (unsigned)id,
           id == sc_device_id(c->core) ? "; this identity can no longer log in" : "");
  }
  return CLI_OK;
}

static int need_registered(struct cli *c);

static int device_add(struct cli *c, const char *code) {
  struct sc_link_peer peer;
  struct sc_device_added added;
  if (sc_devices_peek(&peer, c->core, code)) return cli_fail(c);
  if (!c->json)
    printf("New device%s%s%s, fingerprint:\n    %s\nCheck that the new device shows the same fingerprint.\n",
           peer.name[0] ? " '" : "", peer.name, peer.name[0] ? "'" : "", peer.fingerprint);
  fflush(stdout);
  if (!c->yes && !cli_confirm(c, "Add this device to your account?"))
    return cli_error(c, "not_confirmed",
                     "the device was not added (not confirmed; pass --yes when no terminal can ask)");
  if (sc_devices_add(&added, c->core, code, &peer, 0)) return cli_fail(c);
  if (c->json) {
    cJSON *o = cli_event("device_added");
    cJSON_AddNumberToObject(o, "device_id", added.device_id);
    cJSON_AddStringToObject(o, "name", added.name);
    cJSON_AddStringToObject(o, "fingerprint", peer.fingerprint);
    cJSON_AddNumberToObject(o, "list_version", added.version);
    cli_emit(c, o);
  } else {
    printf("Added device %u '%s'; published signed device list version %u.\n", (unsigned)added.device_id,
           added.name, (unsigned)added.version);
  }
  return CLI_OK;
}

static int need_registered(struct cli *c) {
  if (cli_open(c)) return CLI_FAIL;
  if (!sc_username(c->core)[0])
    return cli_error(c, "not_registered", "this identity is not registered yet ('sotto register')");
  return CLI_OK;
}

static int parse_id(struct cli *c, const struct cli_cmd *cmd, const char *arg, uint32_t *id) {
  char *end;
  unsigned long v = strtoul(arg, &end, 10);
  if (*end || end == arg || v < 1 || v > 0x7FFFFFFFul)
    return cli_usage(c, cmd, "'%s' is not a device ID (a number from 'sotto devices')", arg);
  *id = (uint32_t)v;
  return CLI_OK;
}

/* sotto device list|remove ID (the first form) and sotto devices
 * [list] | add [--yes] CODE | remove ID. */
static int run_device(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  const char *verb;
  uint32_t id = 0;
  int rc, plural = cmd == &cmd_devices;
  if ((rc = cli_yes_option(c, cmd, argc, argv)) >= 0) return rc;
  if (optind >= argc) {
    if (!plural) return cli_usage(c, cmd, "expected 'list' or 'remove ID'");
    verb = "list";
  } else {
    verb = argv[optind];
  }
  if (strcmp(verb, "list") == 0) {
    if (argc - optind > 1) return cli_usage(c, cmd, "'list' takes no argument");
  } else if (strcmp(verb, "remove") == 0) {
    if (argc - optind != 2) return cli_usage(c, cmd, "'remove' takes one device ID");
    if ((rc = parse_id(c, cmd, argv[optind + 1], &id)) != CLI_OK) return rc;
  } else if (plural && strcmp(verb, "add") == 0) {
    const char *code = NULL;
    int i;
    /* 'devices add --yes CODE' as well as 'devices --yes add CODE' */
    for (i = optind + 1; i < argc; i++) {
      if (strcmp(argv[i], "--yes") == 0) c->yes = 1;
      else if (code) return cli_usage(c, cmd, "'add' takes one link code (from 'sotto link')");
      else code = argv[i];
    }
    if (!code) return cli_usage(c, cmd, "'add' takes one link code (from 'sotto link')");
    if (need_registered(c)) return CLI_FAIL;
    return device_add(c, code);
  } else {
    return cli_usage(c, cmd, "unknown action '%s': expected %s", verb,
                     plural ? "'list', 'add CODE' or 'remove ID'" : "'list' or 'remove ID'");
  }
  if (need_registered(c)) return CLI_FAIL;
  return id ? device_remove(c, id) : device_list(c);
}

static int run_rotate(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  int rc;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (need_registered(c)) return CLI_FAIL;
  if (sc_rotate_secret(c->core)) return cli_fail(c);
  if (c->json) cli_emit(c, cli_event("secret_rotated"));
  else printf("new device secret saved; the old one no longer works\n");
  return CLI_OK;
}

const struct cli_cmd cmd_device = {
    "device", "the same as 'devices' (list or remove)", "device list | device remove ID",
    "  list        the account's device IDs (this device is marked)\n"
    "  remove ID   remove device ID from the account on the server: its secret,\n"
    "              pre-keys and queued messages are deleted and its connection is\n"
    "              closed. Device 1 can remove any other device; any device can\n"
    "              remove itself; device 1 itself cannot be removed. Use it for a\n"
    "              lost or stolen device.\n",
    run_device};

const struct cli_cmd cmd_devices = {
    "devices", "list, add (link) or remove this account's devices",
    "devices [list] | devices add [--yes] CODE | devices remove ID",
    "  list        (the default) the account's devices: id, name, when it was\n"
    "              added (from the account's signed device list), when the server\n"
    "              last saw it (today, yesterday or the date, UTC; --json:\n"
    "              last_seen as YYYY-MM-DD; only the account's own devices are\n"
    "              told), this device marked; a device the signed list does not\n"
    "              name receives nothing\n"
    "  add CODE    on device 1: link a new device. CODE is what 'sotto link'\n"
    "              printed on it; its fingerprint is shown and you are asked to\n"
    "              confirm (--yes: do not ask). Device 1 then allocates the device\n"
    "              on the server, sends it the account end to end, waits for its\n"
    "              signed answer and publishes the next signed device list.\n"
    "  remove ID   remove device ID: its secret, pre-keys and queued messages\n"
    "              are deleted on the server, its connection is closed, and\n"
    "              device 1 publishes the next signed list without it. Device 1\n"
    "              can remove any other device; a device can remove itself (device\n"
    "              1 drops it from the list at its next connection); device 1\n"
    "              cannot be removed ('sotto unregister' ends the account).\n\n"
    "options:\n"
    "  --yes       add without asking\n"
    "  --help      this text\n",
    run_device};

const struct cli_cmd cmd_rotate_secret = {
    "rotate-secret", "give this device a new server secret (the old one stops working)", "rotate-secret",
    "  The server makes a new random secret for this device and forgets the\n"
    "  old one; the new one is saved in the local store at once. Use it if\n"
    "  the store (or the secret) may have been copied.\n",
    run_rotate};

/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_device.c: sotto device list|remove, sotto rotate-secret -- manage this
 * account's devices on the server: see which exist, remove one (a lost or
 * stolen device loses its access), and give this device a new secret (a
 * copied secret stops working). */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int device_list(struct cli *c) {
  uint32_t ids[SC_MAX_DEVICES];
  size_t n = 0, i;
  if (sc_devices(ids, &n, SC_MAX_DEVICES, c->core)) return cli_fail(c);
  for (i = 0; i < n; i++) {
    if (c->json) {
      cJSON *o = cli_event("device");
      cJSON_AddNumberToObject(o, "device_id", ids[i]);
      cJSON_AddBoolToObject(o, "this_device", ids[i] == sc_device_id(c->core));
      cli_emit(c, o);
    } else {
      printf("device %u%s\n", (unsigned)ids[i], ids[i] == sc_device_id(c->core) ? " (this device)" : "");
    }
  }
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

static int need_registered(struct cli *c) {
  if (cli_open(c)) return CLI_FAIL;
  if (!sc_username(c->core)[0])
    return cli_error(c, "not_registered", "this identity is not registered yet ('sotto register')");
  return CLI_OK;
}

static int run_device(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  const char *verb;
  uint32_t id = 0;
  int rc;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind >= argc) return cli_usage(c, cmd, "expected 'list' or 'remove ID'");
  verb = argv[optind];
  if (strcmp(verb, "list") == 0) {
    if (argc - optind != 1) return cli_usage(c, cmd, "'device list' takes no argument");
  } else if (strcmp(verb, "remove") == 0) {
    char *end;
    unsigned long v;
    if (argc - optind != 2) return cli_usage(c, cmd, "'device remove' takes one device ID");
    v = strtoul(argv[optind + 1], &end, 10);
    if (*end || end == argv[optind + 1] || v < 1 || v > 0x7FFFFFFFul)
      return cli_usage(c, cmd, "'%s' is not a device ID (a number from 'sotto device list')", argv[optind + 1]);
    id = (uint32_t)v;
  } else {
    return cli_usage(c, cmd, "unknown action '%s': expected 'list' or 'remove ID'", verb);
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
    "device", "list this account's devices, or remove one", "device list | device remove ID",
    "  list        the account's device IDs (this device is marked)\n"
    "  remove ID   remove device ID from the account on the server: its secret,\n"
    "              pre-keys and queued messages are deleted and its connection is\n"
    "              closed. Device 1 can remove any other device; any device can\n"
    "              remove itself; device 1 itself cannot be removed. Use it for a\n"
    "              lost or stolen device.\n",
    run_device};

const struct cli_cmd cmd_rotate_secret = {
    "rotate-secret", "give this device a new server secret (the old one stops working)", "rotate-secret",
    "  The server makes a new random secret for this device and forgets the\n"
    "  old one; the new one is saved in the local store at once. Use it if\n"
    "  the store (or the secret) may have been copied.\n",
    run_rotate};

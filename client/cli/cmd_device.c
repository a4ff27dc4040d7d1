/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_device.c: sotto device list|remove, sotto rotate-secret -- manage this
 * account's devices on the server: see which exist, remove one (a lost or
 * stolen device loses its access), and give this device a new secret (a
 * copied secret stops working). */
#include <getopt.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "cli.h"
#include "conn.h"

static int device_list(struct cli *c, struct conn *k) {
  uint32_t ids[SOTTO_SRV_MAX_DEVICES];
  size_t n = 0, i;
  int rc = sotto_net_devices(k->net, c->acct->username, ids, SOTTO_SRV_MAX_DEVICES, &n);
  if (rc) return conn_error(c, k, rc, "listing the devices", NULL);
  for (i = 0; i < n; i++) {
    if (c->json) {
      cJSON *o = cli_event("device");
      cJSON_AddNumberToObject(o, "device_id", ids[i]);
      cJSON_AddBoolToObject(o, "this_device", ids[i] == c->acct->device_id);
      cli_emit(c, o);
    } else {
      printf("device %u%s\n", (unsigned)ids[i], ids[i] == c->acct->device_id ? " (this device)" : "");
    }
  }
  return CLI_OK;
}

static int device_remove(struct cli *c, struct conn *k, uint32_t id) {
  int rc = sotto_net_device_remove(k->net, id);
  if (rc == SOTTO_SRV_E_FORBIDDEN)
    return cli_error(c, "forbidden",
                     id == 1 ? "device 1 cannot be removed" : "only device 1 can remove another device (this is device %u)",
                     (unsigned)c->acct->device_id);
  if (rc == SOTTO_SRV_E_NOT_FOUND)
    return cli_error(c, "no_such_device", "this account has no device %u ('sotto device list' shows them)",
                     (unsigned)id);
  if (rc) return conn_error(c, k, rc, "removing the device", NULL);
  if (c->json) {
    cJSON *o = cli_event("device_removed");
    cJSON_AddNumberToObject(o, "device_id", id);
    cli_emit(c, o);
  } else {
    printf("device %u removed: its secret, keys and queued messages are gone from the server%s\n", (unsigned)id,
           id == c->acct->device_id ? "; this identity can no longer log in" : "");
  }
  return CLI_OK;
}

static int run_device(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  struct conn k;
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
  if (cli_open(c)) return CLI_FAIL;
  if (!c->acct->username[0]) return cli_error(c, "not_registered", "this identity is not registered yet ('sotto register')");
  if (conn_open(c, &k)) return CLI_FAIL;
  rc = id ? device_remove(c, &k, id) : device_list(c, &k);
  conn_close(&k);
  return rc;
}

/* The new secret exists only in the server's answer until it is saved: the
 * store's write transaction is open before the request, so that the save is
 * one commit right after the answer. */
static int run_rotate(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  struct conn k;
  uint8_t secret[SOTTO_SRV_SECRET_LEN];
  int rc;
  if ((rc = cli_no_options(c, cmd, argc, argv)) >= 0) return rc;
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (cli_open(c)) return CLI_FAIL;
  if (!c->acct->username[0]) return cli_error(c, "not_registered", "this identity is not registered yet ('sotto register')");
  if (conn_open(c, &k)) return CLI_FAIL;
  if ((rc = cli_begin(c)) != 0) {
    conn_close(&k);
    return cli_store_error(c, rc);
  }
  if ((rc = sotto_net_rotate_secret(k.net, secret)) != 0) {
    store_rollback(c->st);
    rc = conn_error(c, &k, rc, "rotating the device secret", NULL);
    conn_close(&k);
    return rc;
  }
  memcpy(c->acct->secret, secret, sizeof secret);
  sodium_memzero(secret, sizeof secret);
  if ((rc = account_save(c->st, c->acct)) != 0 || (rc = store_commit(c->st)) != 0) {
    store_rollback(c->st);
    conn_close(&k);
    return cli_error(c, "store",
                     "the server gave this device a new secret but the local store could not save it (%d): this "
                     "device cannot log in any more; remove it from device 1 ('sotto device remove %u') and add "
                     "a new one",
                     rc, (unsigned)c->acct->device_id);
  }
  conn_close(&k);
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

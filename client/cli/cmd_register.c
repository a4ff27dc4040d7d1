/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_register.c: sotto register -- create the account on a server, pin the
 * server's certificate and upload the first pre-keys. */
#include <getopt.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "cli.h"
#include "conn.h"

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {{"server", required_argument, NULL, 's'},
                                       {"ca", required_argument, NULL, 'c'},
                                       {"pin", required_argument, NULL, 'p'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *server = NULL, *ca = NULL, *pin = NULL, *user;
  char host[256], port[16], pinbuf[65] = "", capath[PATH_MAX] = "";
  uint8_t idblob[CONN_IDENTITY_BLOB_LEN];
  struct conn k;
  uint32_t ec_left, kem_left;
  int ch, rc;

  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    switch (ch) {
      case 's': server = optarg; break;
      case 'c': ca = optarg; break;
      case 'p': pin = optarg; break;
      case 'h': return cli_help(cmd);
      default:
        return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
    }
  }
  if (argc - optind != 1) return cli_usage(c, cmd, "expected one USERNAME");
  user = argv[optind];
  if (!server) return cli_usage(c, cmd, "--server HOST:PORT is required");
  if (ca && pin) return cli_usage(c, cmd, "give --ca or --pin, not both");
  if (!cli_username_ok(user))
    return cli_usage(c, cmd, "'%s' is not a valid username: 3-32 characters of a-z 0-9 _ .", user);
  if (strlen(server) >= ACCOUNT_MAX_SERVER || conn_split(server, host, sizeof host, port, sizeof port))
    return cli_usage(c, cmd, "--server must be HOST:PORT, e.g. 127.0.0.1:7443");
  if (pin) {
    uint8_t bin[32];
    size_t bl;
    if (strlen(pin) != 64 || sodium_hex2bin(bin, sizeof bin, pin, 64, NULL, &bl, NULL) || bl != 32)
      return cli_usage(c, cmd, "--pin must be the 64 hex digits 'sotto-server fingerprint' prints");
    snprintf(pinbuf, sizeof pinbuf, "%s", pin);
  }
  if (ca && !realpath(ca, capath)) return cli_error(c, "ca", "cannot read the CA file %s; check the path", ca);
  if (cli_open(c)) return CLI_FAIL;
  if (c->acct->username[0])
    return cli_error(c, "already_registered", "this identity is already registered as '%s' on %s; use another --home",
                     c->acct->username, c->acct->server);

  if (!ca && !pin) {
    if (conn_probe_pin(c, host, port, pinbuf)) return CLI_FAIL;
    if (!c->json)
      printf("Server certificate (pinned from now on): SHA-256 %s\n"
             "Compare it with what the server operator gets from 'sotto-server fingerprint'.\n",
             pinbuf);
  }
  snprintf(c->acct->server, sizeof c->acct->server, "%s", server);
  snprintf(c->acct->pin, sizeof c->acct->pin, "%s", ca ? "" : pinbuf);
  snprintf(c->acct->ca, sizeof c->acct->ca, "%s", ca ? capath : "");
  memset(&k, 0, sizeof k);
  snprintf(k.host, sizeof k.host, "%s", host);
  snprintf(k.port, sizeof k.port, "%s", port);
  if (!(k.ctx = sotto_net_ctx_new(c->acct->pin[0] ? c->acct->pin : NULL, c->acct->pin[0] ? NULL : c->acct->ca)))
    return cli_error(c, "tls", "cannot set up TLS (is the CA file readable?)");
  if ((rc = sotto_net_connect(k.ctx, host, port, CONN_CONNECT_TIMEOUT_MS, 1, &k.net)) != 0) goto net_fail;
  sotto_net_set_timeout(k.net, CONN_REQUEST_TIMEOUT_MS);
  conn_identity_blob(c, idblob);
  if ((rc = sotto_net_register(k.net, user, idblob, sizeof idblob, &c->acct->device_id, c->acct->secret)) != 0)
    goto net_fail;
  /* The credentials exist on the server now: keep them before anything else. */
  snprintf(c->acct->username, sizeof c->acct->username, "%s", user);
  if ((rc = store_begin(c->st)) || (rc = account_save(c->st, c->acct)) || (rc = store_commit(c->st))) {
    store_rollback(c->st);
    conn_close(&k);
    return cli_store_error(c, rc);
  }
  if ((rc = sotto_net_auth(k.net, user, c->acct->device_id, c->acct->secret, &ec_left, &kem_left)) != 0)
    goto net_fail;
  if (conn_upload_keys(c, &k, 1, CONN_EC_STOCK, CONN_KEM_STOCK)) {
    conn_close(&k);
    return CLI_FAIL;
  }
  conn_close(&k);
  if (c->json) {
    cJSON *o = cli_event("registered");
    cJSON_AddStringToObject(o, "user", user);
    cJSON_AddStringToObject(o, "server", server);
    if (c->acct->pin[0]) cJSON_AddStringToObject(o, "pin", c->acct->pin);
    cJSON_AddNumberToObject(o, "device", c->acct->device_id);
    cli_emit(c, o);
  } else {
    printf("Registered '%s' on %s and uploaded %d one-time pre-keys and %d post-quantum pre-keys.\n", user, server,
           CONN_EC_STOCK, CONN_KEM_STOCK + 1);
  }
  return CLI_OK;
net_fail:
  conn_error(c, &k, rc, "registering", user);
  conn_close(&k);
  return CLI_FAIL;
}

const struct cli_cmd cmd_register = {
    "register", "create an account on a server and upload pre-keys",
    "register --server HOST:PORT [--ca FILE | --pin SHA256] USERNAME",
    "Creates the account USERNAME on the server, then uploads a signed pre-key,\n"
    "100 one-time pre-keys and 21 ML-KEM-1024 pre-keys (20 one-time and one\n"
    "last-resort key); later commands top them up when the server says they\n"
    "run low. Without --ca or --pin, the server's certificate is pinned on first\n"
    "use: its fingerprint is printed so you can compare it with the operator's.\n\n"
    "options:\n"
    "  --server HOST:PORT  the server (required)\n"
    "  --ca FILE           trust the server through this CA certificate (PEM)\n"
    "                      instead of pinning its certificate\n"
    "  --pin SHA256        pin this certificate fingerprint (64 hex digits, from\n"
    "                      'sotto-server fingerprint') instead of trusting the first one seen\n"
    "  --help              this text\n",
    run};

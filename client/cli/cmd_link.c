/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_link.c: sotto link -- make this home a new device of an existing
 * account: a fresh identity key, a link slot on the server, the code (and
 * a QR of it) to type on device 1 ('sotto devices add CODE'), then the wait
 * for device 1's provisioning message (docs/multi-device.md, "Linking"). */
#include <getopt.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "qr.h"

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {{"server", required_argument, NULL, 's'},
                                       {"ca", required_argument, NULL, 'c'},
                                       {"pin", required_argument, NULL, 'p'},
                                       {"name", required_argument, NULL, 'n'},
                                       {"timeout", required_argument, NULL, 't'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *server = NULL, *ca = NULL, *pin = NULL, *name = "";
  char pinbuf[SC_PIN_HEX_LEN + 1] = "", code[SC_LINK_CODE_MAX], fp[SC_FINGERPRINT_LEN + 1];
  struct sc_linked done;
  uint32_t ttl = 0;
  long timeout_s = 0;
  int ch, rc;

  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    switch (ch) {
      case 's': server = optarg; break;
      case 'c': ca = optarg; break;
      case 'p': pin = optarg; break;
      case 'n': name = optarg; break;
      case 't': {
        char *end;
        timeout_s = strtol(optarg, &end, 10);
        if (*end || end == optarg || timeout_s < 1 || timeout_s > 86400)
          return cli_usage(c, cmd, "--timeout takes a number of seconds (1-86400)");
        break;
      }
      case 'h': return cli_help(cmd);
      default:
        return cli_usage(c, cmd, "unknown option or missing value '%s'", argv[optind - 1]);
    }
  }
  if (optind < argc) return cli_usage(c, cmd, "unexpected argument '%s'", argv[optind]);
  if (!server) return cli_usage(c, cmd, "--server HOST:PORT is required");
  if (ca && pin) return cli_usage(c, cmd, "give --ca or --pin, not both");
  if (strlen(name) > SC_DEVICE_NAME_MAX)
    return cli_usage(c, cmd, "--name is at most %d printable ASCII characters", SC_DEVICE_NAME_MAX);
  if (pin) {
    uint8_t bin[32];
    size_t bl;
    if (strlen(pin) != 64 || sodium_hex2bin(bin, sizeof bin, pin, 64, NULL, &bl, NULL) || bl != 32)
      return cli_usage(c, cmd, "--pin must be the 64 hex digits 'sotto-server fingerprint' prints");
    snprintf(pinbuf, sizeof pinbuf, "%s", pin);
  }
  /* The home: a new one (its own identity key), or one made by 'sotto
   * init' and not registered yet. */
  if (sc_store_exists(c->core)) {
    if (cli_open(c)) return CLI_FAIL;
  } else {
    char *pass = sodium_malloc(SC_MAX_PASSPHRASE);
    size_t len = 0;
    uint32_t reg = 0;
    if (!pass) return cli_error(c, "nomem", "out of memory");
    if (cli_passphrase(c, pass, SC_MAX_PASSPHRASE, &len, 1)) {
      sodium_free(pass);
      return CLI_FAIL;
    }
    rc = sc_init(c->core, &reg, pass, len);
    sodium_free(pass);
    if (rc) return cli_fail(c);
    c->opened = 1;
  }
  if (sc_username(c->core)[0])
    return cli_error(c, "already_registered",
                     "this home is already registered as '%s'; link a new device from a new --home",
                     sc_username(c->core));
  if (!ca && !pin) {
    if (sc_probe_pin(pinbuf, c->core, server)) return cli_fail(c);
    if (!c->json)
      printf("Server certificate (pinned from now on): SHA-256 %s\n", pinbuf);
  }
  if (sc_link_open(code, fp, &ttl, c->core, server, ca ? NULL : pinbuf, ca, name)) return cli_fail(c);
  if (c->json) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "code", code);
    cJSON_AddStringToObject(o, "event", "link_code");
    cJSON_AddStringToObject(o, "fingerprint", fp);
    cJSON_AddNumberToObject(o, "expires_in", ttl);
    cli_emit(c, o);
  } else {
    printf("This device's fingerprint: %s\n"
           "On device 1 of the account, run 'sotto devices add CODE' and check that it shows this\n"
           "fingerprint. The code works once, for %u seconds.\n",
           fp, (unsigned)ttl);
    printf("code: %s\n", code);
    if (isatty(STDOUT_FILENO) && qr_print(stdout, (const uint8_t *)code, strlen(code)) == 0) printf("\n");
  }
  fflush(stdout);
  if (!c->json && !isatty(STDOUT_FILENO) && isatty(STDERR_FILENO))
    (void)qr_print(stderr, (const uint8_t *)code, strlen(code));
  sodium_memzero(code, sizeof code);
  if (sc_link_wait(&done, c->core, timeout_s > 0 ? (int)(timeout_s * 1000) : 0)) return cli_fail(c);
  if (c->json) {
    cJSON *o = cli_event("linked");
    cJSON_AddStringToObject(o, "user", done.username);
    cJSON_AddNumberToObject(o, "device", done.device_id);
    cJSON_AddStringToObject(o, "account_fingerprint", done.account_fingerprint);
    cJSON_AddNumberToObject(o, "contacts", done.contacts);
    cJSON_AddNumberToObject(o, "groups", done.groups);
    cli_emit(c, o);
  } else {
    printf("Linked: this home is device %u of '%s' (account key fingerprint %s).\n"
           "It got %u contacts and %u groups from device 1, and published its own identity key and pre-keys.\n",
           (unsigned)done.device_id, done.username, done.account_fingerprint, done.contacts, done.groups);
  }
  return CLI_OK;
}

const struct cli_cmd cmd_link = {
    "link", "make this home a new device of an existing account (device 1 adds it)",
    "link --server HOST:PORT [--ca FILE | --pin SHA256] [--name NAME] [--timeout SECONDS]",
    "Creates this home (asking for its passphrase, or SOTTO_PASSPHRASE) with its\n"
    "own identity key, opens a one-time link slot on the server and prints the\n"
    "link code alone on a line 'code: CODE' (with --json: {\"code\": \"CODE\", ...}),\n"
    "a QR of it on a terminal, and this device's fingerprint. On device 1 of the\n"
    "account, 'sotto devices add CODE' shows that fingerprint, asks, and sends\n"
    "this device an end-to-end encrypted provisioning message (the account, its\n"
    "key, this device's server credentials, contacts with their verified state,\n"
    "groups). This command waits for it, signs this device's membership of the\n"
    "account, answers, and publishes its identity key and pre-keys; once the\n"
    "server serves the list device 1 signed with it (at most 10 s), it says hello\n"
    "to the account's other devices, so they know it at once. It keeps the\n"
    "list version device 1 signs to add it: an older list of the account from\n"
    "the server is refused from then on (device_hidden). The code\n"
    "carries a secret the server never sees: the server cannot swap the keys or\n"
    "read or forge the provisioning message. The slot expires after the\n"
    "server's link-ttl-seconds (600 by default); a code works once.\n\n"
    "options:\n"
    "  --server HOST:PORT  the account's server (required)\n"
    "  --ca FILE           trust the server through this CA certificate\n"
    "  --pin SHA256        pin this certificate fingerprint (else the first one\n"
    "                      seen; device 1's pin must match it)\n"
    "  --name NAME         this device's name in the account's device list (at\n"
    "                      most 64 printable ASCII characters)\n"
    "  --timeout SECONDS   wait at most this long (default: until the slot expires)\n"
    "  --help              this text\n",
    run};

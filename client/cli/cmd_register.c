/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_register.c: sotto register -- create the account on a server, pin the
 * server's certificate and upload the first pre-keys. */
#include <getopt.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static int run(struct cli *c, const struct cli_cmd *cmd, int argc, char **argv) {
  static const struct option opts[] = {{"server", required_argument, NULL, 's'},
                                       {"ca", required_argument, NULL, 'c'},
                                       {"pin", required_argument, NULL, 'p'},
                                       {"recover", no_argument, NULL, 'r'},
                                       {"help", no_argument, NULL, 'h'},
                                       {NULL, 0, NULL, 0}};
  const char *server = NULL, *ca = NULL, *pin = NULL, *user;
  char pinbuf[SC_PIN_HEX_LEN + 1] = "";
  char code[SC_RECOVERY_CODE_LEN + 1] = "";
  unsigned n_ec = 0, n_kem = 0;
  int ch, recover = 0, rc;

  optind = 0;
  opterr = 0;
  while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
    switch (ch) {
      case 's': server = optarg; break;
      case 'c': ca = optarg; break;
      case 'p': pin = optarg; break;
      case 'r': recover = 1; break;
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
  {
    /* HOST:PORT, or several comma-separated (the nodes of one cluster). */
    char one[256];
    const char *p = server, *e;
    int bad = strlen(server) >= 256;
    while (!bad) {
      const char *colon;
      size_t n;
      e = strchr(p, ',');
      n = e ? (size_t)(e - p) : strlen(p);
      memcpy(one, p, n);
      one[n] = 0;
      colon = strrchr(one, ':');
      bad = !colon || colon == one || !colon[1] || strspn(colon + 1, "0123456789") != strlen(colon + 1);
      if (!e) break;
      p = e + 1;
    }
    if (bad)
      return cli_usage(c, cmd, "--server must be HOST:PORT (or several, comma-separated), e.g. 127.0.0.1:7443");
  }
  if (pin) {
    uint8_t bin[32];
    size_t bl;
    if (strlen(pin) != 64 || sodium_hex2bin(bin, sizeof bin, pin, 64, NULL, &bl, NULL) || bl != 32)
      return cli_usage(c, cmd, "--pin must be the 64 hex digits 'sotto-server fingerprint' prints");
    snprintf(pinbuf, sizeof pinbuf, "%s", pin);
  }
  if (ca) {
    char capath[PATH_MAX];
    if (!realpath(ca, capath)) return cli_error(c, "ca", "cannot read the CA file %s; check the path", ca);
  }
  if (cli_open(c)) return CLI_FAIL;
  if (sc_username(c->core)[0])
    return cli_error(c, "already_registered", "this identity is already registered as '%s' on %s; use another --home",
                     sc_username(c->core), sc_server(c->core));
  if (!ca && !pin) {
    if (sc_probe_pin(pinbuf, c->core, server)) return cli_fail(c);
    if (!c->json)
      printf("Server certificate (pinned from now on): SHA-256 %s\n"
             "Compare it with what the server operator gets from 'sotto-server fingerprint'.\n",
             pinbuf);
  }
  if (recover) {
    char *typed = sodium_malloc(SC_MAX_PASSPHRASE);
    size_t len = 0;
    if (!typed) return cli_error(c, "nomem", "out of memory");
    if (cli_secret(c, "SOTTO_RECOVERY_CODE", "recovery code", "Recovery code of the account: ", typed,
                   SC_MAX_PASSPHRASE, &len, 0)) {
      sodium_free(typed);
      return CLI_FAIL;
    }
    rc = sc_recover(&n_ec, &n_kem, c->core, server, user, ca ? NULL : pinbuf, ca, typed, len);
    sodium_free(typed);
  } else {
    rc = sc_register(&n_ec, &n_kem, c->core, server, user, ca ? NULL : pinbuf, ca);
  }
  if (rc) return cli_fail(c);
  /* A recovery code for the day every device is lost; the account exists
   * either way, so a failure here is a warning. */
  if (sc_set_recovery_code(code, c->core))
    cli_warn(c, sc_error_name(sc_last_error(c->core)),
             "registered, but no recovery code was set (%s); run 'sotto recovery-code' later",
             sc_errdetail(c->core));
  if (c->json) {
    cJSON *o = cli_event("registered");
    cJSON_AddStringToObject(o, "user", user);
    cJSON_AddStringToObject(o, "server", server);
    if (sc_pin(c->core)[0]) cJSON_AddStringToObject(o, "pin", sc_pin(c->core));
    cJSON_AddNumberToObject(o, "device", sc_device_id(c->core));
    if (recover) cJSON_AddBoolToObject(o, "recovered", 1);
    if (code[0]) cJSON_AddStringToObject(o, "recovery_code", code);
    cli_emit(c, o);
  } else {
    printf("%s '%s' on %s and uploaded %u one-time pre-keys and %u post-quantum pre-keys.\n",
           recover ? "Recovered the account" : "Registered", user, server, n_ec, n_kem);
    if (recover)
      printf("The account now has this home's identity key; your contacts will see that it changed and\n"
             "should compare safety numbers with you again.\n");
    if (code[0])
      printf("Recovery code (write it down and keep it apart from this computer; with it you can take the\n"
             "name back with a new identity if you lose every device; it is shown only now):\n\n    %s\n\n",
             code);
  }
  sodium_memzero(code, sizeof code);
  return CLI_OK;
}

const struct cli_cmd cmd_register = {
    "register", "create an account on a server and upload pre-keys",
    "register --server HOST:PORT[,HOST:PORT...] [--ca FILE | --pin SHA256] [--recover] USERNAME",
    "Creates the account USERNAME on the server, then uploads a signed pre-key,\n"
    "100 one-time pre-keys and 21 ML-KEM-1024 pre-keys (20 one-time and one\n"
    "last-resort key); later commands top them up when the server says they\n"
    "run low. Without --ca or --pin, the server's certificate is pinned on first\n"
    "use: its fingerprint is printed so you can compare it with the operator's.\n"
    "A recovery code is printed once (the server keeps only a hash): with\n"
    "--recover and that code (asked, or SOTTO_RECOVERY_CODE), a new home takes\n"
    "the name back after every device was lost: the old devices are removed, the\n"
    "account gets this home's identity, contacts see a key change, and a new\n"
    "recovery code is printed (each one works once).\n\n"
    "A failed first contact says which it is: nothing listens, no answer in time,\n"
    "not TLS, TLS but not a sotto server, or another certificate than --pin.\n\n"
    "options:\n"
    "  --server HOST:PORT  the server (required); the nodes of one cluster may be\n"
    "                      given comma-separated: they are tried in turn, and a\n"
    "                      connection lost to one goes on with another\n"
    "  --ca FILE           trust the server through this CA certificate (PEM; the\n"
    "                      server's own tls.crt works) instead of pinning its certificate\n"
    "  --pin SHA256        pin this certificate fingerprint (64 hex digits, from\n"
    "                      'sotto-server fingerprint') instead of trusting the first one seen\n"
    "  --recover           take back USERNAME with its recovery code (new identity)\n"
    "  --help              this text\n",
    run};

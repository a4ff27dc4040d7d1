/* SPDX-License-Identifier: Apache-2.0 */
/* kt_operator.c: the compelled operator of ghost test 4
 * (test_kt_ghost_devices.sh). The operator owns the server's database but
 * not its users' keys; to get a device list of its own making into the
 * key-transparency log under a user's name it swaps the account key row
 * for a key of its own (the shell does that with sqlite3), logs in as the
 * user's device 1 with a secret it planted, and stores a list its key
 * signed: the real server verifies it against the swapped row and logs it.
 *   kt_operator key KEYFILE
 *       a new key pair into KEYFILE; prints "identity HEX" (the account-key
 *       row to plant), "secret HEX" and "secret_hash HEX" (device 1's).
 *   kt_operator put PORT FINGERPRINT USER SECRET_HEX KEYFILE VERSION
 *       logs in as USER/1 and stores the list {device 1 = KEYFILE's key,
 *       named "ghost"} as VERSION; prints "stored" or the error.
 *   kt_operator unregister PORT FINGERPRINT USER SECRET_HEX
 *       logs in as USER/1 and deletes the account (the server logs the
 *       deletion markers; the shell puts the rows back after, so the log
 *       shows the account deleted while it is not: test_kt_unregister.sh);
 *       prints "deleted" or the error. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sotto/devlist.h>
#include <sotto/keys.h>

#include "net.h"

static void hex(const char *what, const uint8_t *p, size_t n) {
  char h[2 * 64 + 1];
  sodium_bin2hex(h, sizeof h, p, n);
  printf("%s %s\n", what, h);
}

static int key_cmd(const char *file) {
  uint8_t kp[64], ik[37], secret[32], sh[32];
  FILE *f;
  if (sotto_keypair_generate(kp + 32, kp) != 0) return 1;
  sotto_pubkey_serialize(ik, kp + 32);
  ik[33] = ik[34] = ik[35] = 0;
  ik[36] = 7; /* registration id */
  randombytes_buf(secret, sizeof secret);
  crypto_hash_sha256(sh, secret, sizeof secret);
  if ((f = fopen(file, "wb")) == NULL || fwrite(kp, 1, sizeof kp, f) != sizeof kp || fclose(f) != 0) return 1;
  hex("identity", ik, sizeof ik);
  hex("secret", secret, sizeof secret);
  hex("secret_hash", sh, sizeof sh);
  return 0;
}

static int put_cmd(char **a) {
  uint8_t kp[64], secret[32], out[SOTTO_DEVLIST_MAX_LEN];
  struct sotto_devlist l;
  struct sotto_net_ctx *ctx;
  struct sotto_net *c = NULL;
  size_t bl = 0, len = 0;
  FILE *f;
  int rc;
  if ((f = fopen(a[4], "rb")) == NULL || fread(kp, 1, sizeof kp, f) != sizeof kp) return 1;
  fclose(f);
  if (sodium_hex2bin(secret, sizeof secret, a[3], strlen(a[3]), NULL, &bl, NULL) != 0 || bl != 32) return 1;
  memset(&l, 0, sizeof l);
  snprintf(l.username, sizeof l.username, "%s", a[2]);
  memcpy(l.account_key, kp + 32, 32);
  l.version = (uint32_t)strtoul(a[5], NULL, 10);
  l.n = 1;
  l.dev[0].device_id = 1;
  memcpy(l.dev[0].device_key, kp + 32, 32);
  snprintf(l.dev[0].name, sizeof l.dev[0].name, "ghost");
  l.dev[0].added_at_ms = 1764000000000ull;
  if (sotto_devlist_member_sign(l.dev[0].member_sig, kp, l.username, kp + 32, 1) != 0 ||
      sotto_devlist_sign(&l, kp, out, sizeof out, &len) != 0)
    return 1;
  if ((ctx = sotto_net_ctx_new(a[1], NULL)) == NULL) return 1;
  if ((rc = sotto_net_connect(ctx, "127.0.0.1", a[0], 5000, 1, &c)) != 0 ||
      (rc = sotto_net_auth(c, l.username, 1, secret, NULL, NULL)) != 0 || (rc = sotto_net_devlist_put(c, out, len)) != 0)
    printf("error %d\n", rc);
  else
    printf("stored\n");
  if (c) sotto_net_close(c);
  sotto_net_ctx_free(ctx);
  sodium_memzero(kp, sizeof kp);
  return rc ? 1 : 0;
}

static int unregister_cmd(char **a) {
  uint8_t secret[32];
  struct sotto_net_ctx *ctx;
  struct sotto_net *c = NULL;
  size_t bl = 0;
  int rc;
  if (sodium_hex2bin(secret, sizeof secret, a[3], strlen(a[3]), NULL, &bl, NULL) != 0 || bl != 32) return 1;
  if ((ctx = sotto_net_ctx_new(a[1], NULL)) == NULL) return 1;
  if ((rc = sotto_net_connect(ctx, "127.0.0.1", a[0], 5000, 1, &c)) != 0 ||
      (rc = sotto_net_auth(c, a[2], 1, secret, NULL, NULL)) != 0 || (rc = sotto_net_unregister(c)) != 0)
    printf("error %d\n", rc);
  else
    printf("deleted\n");
  if (c) sotto_net_close(c);
  sotto_net_ctx_free(ctx);
  sodium_memzero(secret, sizeof secret);
  return rc ? 1 : 0;
}

int main(int argc, char **argv) {
  if (sodium_init() < 0) return 1;
  if (argc == 3 && !strcmp(argv[1], "key")) return key_cmd(argv[2]);
  if (argc == 8 && !strcmp(argv[1], "put")) return put_cmd(argv + 2);
  if (argc == 6 && !strcmp(argv[1], "unregister")) return unregister_cmd(argv + 2);
  fprintf(stderr, "usage: kt_operator key KEYFILE | put PORT FINGERPRINT USER SECRET_HEX KEYFILE VERSION |\n"
                  "       unregister PORT FINGERPRINT USER SECRET_HEX\n");
  return 2;
}

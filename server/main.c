/* SPDX-License-Identifier: Apache-2.0 */
/* main.c: sotto-server's command line. Every option is also a config-file
 * key; the file is read first, so options on the command line win. */
#include <sotto/version.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

#include "server.h"
#include "store.h"
#include "transport.h"

static void usage(FILE *out) {
  fprintf(out,
          "usage: sotto-server --data DIR [--listen HOST:PORT] [options]   run the relay (foreground)\n"
          "       sotto-server requisition --data DIR USERNAME               print what is held about USERNAME (JSON)\n"
          "       sotto-server fingerprint --data DIR                        print the TLS certificate fingerprint\n"
          "       sotto-server backup --data DIR DEST                        copy database, tls.key and tls.crt into\n"
          "                                                                  the new directory DEST (safe while running)\n"
          "       sotto-server new-certificate --data DIR                    a new TLS key for a DIR whose key is lost\n"
          "                                                                  (every client must re-pin)\n"
          "       sotto-server rotate-certificate --data DIR [--valid-days N]\n"
          "                                                                  prepare the next certificate, announced by\n"
          "                                                                  a statement the current key signs (N days,\n"
          "                                                                  default 365); clients re-pin by themselves\n"
          "       sotto-server rotate-certificate --data DIR switch          (server stopped) put the prepared\n"
          "                                                                  certificate in place; start the server again\n"
          "       sotto-server migrate --store URL                           create or upgrade the store's schema\n"
          "                                                                  (PostgreSQL; the server refuses to start\n"
          "                                                                  on a schema that is not current)\n"
          "       sotto-server import --store URL SQLITE_DIR                 copy the SQLite store in SQLITE_DIR\n"
          "                                                                  (accounts, keys, queued envelopes, blobs)\n"
          "                                                                  into the empty, migrated PostgreSQL store\n"
          "                                                                  URL (--data DIR: blob files into DIR/blobs)\n"
          "       sotto-server export --store URL SQLITE_DIR                 copy the PostgreSQL store URL (no server\n"
          "                                                                  running on it) into a new SQLite store in\n"
          "                                                                  SQLITE_DIR (new or empty); --data PGDATA:\n"
          "                                                                  the blob files from PGDATA/blobs too\n"
          "\noptions (each also as 'key = value' in the --config file):\n"
          "  --config FILE          read options from FILE first\n"
          "  --help                 this text\n"
          "  --version              print the version\n");
  sotto_srv_config_help(out);
}

/* No core dumps: they would contain TLS keys and device secrets. */
static void no_core(void) {
  struct rlimit rl = {0, 0};
  setrlimit(RLIMIT_CORE, &rl);
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int main(int argc, char **argv) {
  struct sotto_srv_config cfg;
  char err[512];
  const char *cmd = NULL, *user = NULL, *dest = NULL;
  int64_t valid_days = 365;
  int i, do_switch = 0;

  no_core();
  sotto_srv_config_defaults(&cfg);
  if (argc > 1 && (strcmp(argv[1], "requisition") == 0 || strcmp(argv[1], "fingerprint") == 0 ||
                   strcmp(argv[1], "backup") == 0 || strcmp(argv[1], "new-certificate") == 0 ||
                   strcmp(argv[1], "rotate-certificate") == 0 ||
                   strcmp(argv[1], "migrate") == 0 || strcmp(argv[1], "import") == 0 ||
                   strcmp(argv[1], "export") == 0))
    cmd = argv[1];
  /* Pass 1: the config file, so that the command line overrides it. */
  for (i = cmd ? 2 : 1; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      if (sotto_srv_config_file(&cfg, argv[i + 1], err, sizeof err) != 0) {
        fprintf(stderr, "sotto-server: %s\n", err);
        return 2;
      }
    }
  }
  for (i = cmd ? 2 : 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "--version") == 0) {
      printf("sotto-server %s\n", SOTTO_VERSION_STRING);
      return 0;
    }
    if (cmd && strcmp(cmd, "rotate-certificate") == 0 && strcmp(a, "--valid-days") == 0 && i + 1 < argc) {
      char *end;
      valid_days = strtoll(argv[++i], &end, 10);
      if (*end) valid_days = 0;
      continue;
    }
    if (cmd && strcmp(cmd, "rotate-certificate") == 0 && strcmp(a, "switch") == 0 && !do_switch) {
      do_switch = 1;
      continue;
    }
    if (strncmp(a, "--", 2) == 0) {
      const char *eq = strchr(a, '=');
      char key[64];
      const char *val;
      size_t kl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
      if (kl >= sizeof key) kl = sizeof key - 1;
      memcpy(key, a + 2, kl);
      key[kl] = 0;
      if (eq) val = eq + 1;
      else if (i + 1 < argc) val = argv[++i];
      else {
        fprintf(stderr, "sotto-server: %s needs a value (see --help)\n", a);
        return 2;
      }
      if (strcmp(key, "config") == 0) continue;
      if (sotto_srv_config_set(&cfg, key, val, err, sizeof err) != 0) {
        fprintf(stderr, "sotto-server: %s\n", err);
        return 2;
      }
      continue;
    }
    if (cmd && strcmp(cmd, "requisition") == 0 && !user) {
      user = a;
      continue;
    }
    if (cmd && (strcmp(cmd, "backup") == 0 || strcmp(cmd, "import") == 0 || strcmp(cmd, "export") == 0) &&
        !dest) {
      dest = a;
      continue;
    }
    fprintf(stderr, "sotto-server: unexpected argument '%s' (see --help)\n", a);
    return 2;
  }
  if (cmd && strcmp(cmd, "import") == 0) {
    if (!cfg.store[0] || !dest) {
      fprintf(stderr, "sotto-server: import needs --store URL (the PostgreSQL store) and SQLITE_DIR\n");
      return 2;
    }
    return sotto_srv_import(&cfg, dest, stdout);
  }
  if (cmd && strcmp(cmd, "export") == 0) {
    if (!cfg.store[0] || !dest) {
      fprintf(stderr, "sotto-server: export needs --store URL (the PostgreSQL store) and SQLITE_DIR\n");
      return 2;
    }
    return sotto_srv_export(&cfg, dest, stdout);
  }
  if (cmd && strcmp(cmd, "migrate") == 0) {
    if (!cfg.store[0] && !cfg.data[0]) {
      fprintf(stderr, "sotto-server: migrate needs --store URL (or --data DIR for sqlite:DIR)\n");
      return 2;
    }
    return sotto_srv_migrate(&cfg, stdout);
  }
  if (!cfg.data[0]) {
    fprintf(stderr, "sotto-server: --data DIR is required (see --help)\n");
    return 2;
  }
  if (cmd && strcmp(cmd, "requisition") == 0) {
    if (!user) {
      fprintf(stderr, "sotto-server: requisition needs a USERNAME\n");
      return 2;
    }
    char url[sizeof cfg.store + 8];
    sotto_srv_store_url(&cfg, url, sizeof url);
    return sotto_srv_requisition(url, cfg.data, user, stdout);
  }
  if (cmd && strcmp(cmd, "backup") == 0) {
    if (!dest) {
      fprintf(stderr, "sotto-server: backup needs a DEST directory (it must not exist yet)\n");
      return 2;
    }
    {
      char url[sizeof cfg.store + 8], why[512];
      const char *where = NULL;
      const struct sotto_store_backend *b;
      sotto_srv_store_url(&cfg, url, sizeof url);
      if ((b = sotto__store_backend(url, &where, why, sizeof why)) == NULL) {
        fprintf(stderr, "sotto-server: --store: %s\n", why);
        return 2;
      }
      if (b != &sotto__store_sqlite_backend) {
        fprintf(stderr,
                "sotto-server: backup copies an SQLite store, and this server's store is not one: back the "
                "database up with its own tools (pg_dump, docs/server.md) and keep tls.key and tls.crt of %s "
                "with it\n",
                cfg.data);
        return 1;
      }
      return sotto_srv_backup(cfg.data, where, dest, stdout);
    }
  }
  if (cmd && strcmp(cmd, "new-certificate") == 0) return sotto_srv_new_certificate(cfg.data, stdout);
  if (cmd && strcmp(cmd, "rotate-certificate") == 0)
    return do_switch ? sotto_srv_rotate_switch(cfg.data, stdout)
                     : sotto_srv_rotate_prepare(cfg.data, valid_days, stdout);
  if (cmd && strcmp(cmd, "fingerprint") == 0) {
    char fp[65];
    if (sotto__tls_fingerprint(cfg.data, fp) != 0) {
      fprintf(stderr, "sotto-server: no certificate in %s yet (start the server once)\n", cfg.data);
      return 1;
    }
    printf("%s\n", fp);
    return 0;
  }
  return sotto_srv_run(&cfg);
}

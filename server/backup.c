/* SPDX-License-Identifier: Apache-2.0 */
/* backup.c: `sotto-server backup` and `sotto-server new-certificate`.
 *
 * A server is its database AND its TLS identity: clients pin the
 * certificate, so a backup without tls.key restores a server nobody can
 * reach (a new key is a new certificate, which every client refuses as an
 * impostor). The backup therefore copies the three files together, the
 * database as one consistent online snapshot. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server.h"
#include "store.h"
#include "transport.h"

#define KEYFILE_MAX (64 * 1024) /* a PEM key or certificate is a few KiB */

/* Copies DIR/name to DEST/name (mode 0600, must not exist) and syncs it.
 * 0, or -1 with a sentence in why. */
static int copy_small(const char *dir, const char *dest, const char *name, char *why, size_t why_len) {
  char src[4200], dst[4200];
  static unsigned char buf[KEYFILE_MAX];
  ssize_t n, w;
  size_t len = 0;
  int in, out, rc = -1;
  snprintf(src, sizeof src, "%s/%s", dir, name);
  snprintf(dst, sizeof dst, "%s/%s", dest, name);
  if ((in = open(src, O_RDONLY | O_CLOEXEC)) < 0) {
    snprintf(why, why_len, "cannot read %s: %s", src, strerror(errno));
    return -1;
  }
  while (len < sizeof buf && (n = read(in, buf + len, sizeof buf - len)) > 0) len += (size_t)n;
  if (len == sizeof buf || len == 0) {
    snprintf(why, why_len, "%s is %s: not a PEM file", src, len ? "too large" : "empty");
    close(in);
    goto wipe;
  }
  close(in);
  if ((out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
    snprintf(why, why_len, "cannot create %s: %s", dst, strerror(errno));
    goto wipe;
  }
  for (n = 0; (size_t)n < len; n += w)
    if ((w = write(out, buf + n, len - (size_t)n)) <= 0) break;
  if ((size_t)n != len || fsync(out) != 0) {
    snprintf(why, why_len, "cannot write %s: %s", dst, strerror(errno));
    close(out);
    unlink(dst);
    goto wipe;
  }
  close(out);
  rc = 0;
wipe:
  memset(buf, 0, sizeof buf); /* the private key passed through here */
  return rc;
}

static void sync_dir(const char *dir) {
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

int sotto_srv_backup(const char *data_dir, const char *db_dir, const char *dest, FILE *out) {
  static const char *const files[] = {"tls.key", "tls.crt"};
  static const char *const optional[] = {"rotation.chain", "next.key", "next.crt", "kt.key", "kt.cosigs"};
  int opt_copied[5] = {0, 0, 0, 0, 0};
  char why[4600], fp[65], path[4200];
  int64_t accounts = 0, queued = 0;
  size_t i, copied = 0;
  int db_done = 0;
  if (sotto__tls_fingerprint(data_dir, fp) != 0) {
    fprintf(stderr, "sotto-server: no readable tls.crt in %s: nothing to back up (is --data right?)\n", data_dir);
    return 1;
  }
  if (mkdir(dest, 0700) != 0) {
    fprintf(stderr, "sotto-server: cannot create %s: %s (the backup goes into a new directory)\n", dest,
            strerror(errno));
    return 1;
  }
  for (i = 0; i < sizeof files / sizeof files[0]; i++, copied++)
    if (copy_small(data_dir, dest, files[i], why, sizeof why) != 0) goto fail;
  /* A certificate rotation's chain and prepared key go with it (clients
   * pinned to an older certificate need the chain to follow), and the
   * key-transparency log's keys (srv_kt.c; its entries are in sotto.db). */
  for (i = 0; i < sizeof optional / sizeof optional[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", data_dir, optional[i]);
    if (access(path, F_OK) != 0) continue;
    if (copy_small(data_dir, dest, optional[i], why, sizeof why) != 0) goto fail;
    opt_copied[i] = 1;
  }
  if (sotto__store_sqlite_backup(db_dir, dest, &accounts, &queued, why, sizeof why) != 0) goto fail;
  db_done = 1;
  sync_dir(dest);
  fprintf(out,
          "backup %s: sotto.db (%lld accounts, %lld queued envelopes), tls.key, tls.crt (fingerprint %s)\n"
          "restore: stop the server and start it with --data %s (or copy these three files into its data "
          "directory); clients keep their pin\n",
          dest, (long long)accounts, (long long)queued, fp, dest);
  return 0;
fail:
  fprintf(stderr, "sotto-server: backup failed: %s\n", why);
  for (i = 0; i < copied; i++) {
    snprintf(path, sizeof path, "%s/%s", dest, files[i]);
    unlink(path);
  }
  for (i = 0; i < sizeof optional / sizeof optional[0]; i++)
    if (opt_copied[i]) {
      snprintf(path, sizeof path, "%s/%s", dest, optional[i]);
      unlink(path);
    }
  if (db_done) {
    snprintf(path, sizeof path, "%s/sotto.db", dest);
    unlink(path);
  }
  rmdir(dest);
  return 1;
}

int sotto_srv_new_certificate(const char *data_dir, FILE *out) {
  char path[4200], fp[65];
  int lock, rc;
  /* Not under a running server: it would go on serving the old one. */
  snprintf(path, sizeof path, "%s/sotto.lock", data_dir);
  if ((lock = open(path, O_RDWR | O_CLOEXEC)) >= 0 && flock(lock, LOCK_EX | LOCK_NB) != 0) {
    fprintf(stderr, "sotto-server: a sotto-server is running on %s: stop it first\n", data_dir);
    close(lock);
    return 1;
  }
  rc = sotto__tls_new_identity(data_dir, fp);
  if (lock >= 0) close(lock);
  if (rc == 1) {
    fprintf(stderr,
            "sotto-server: %s/tls.key exists: this server has a certificate (`sotto-server fingerprint`); "
            "move tls.key and tls.crt away first if you really mean to replace it\n",
            data_dir);
    return 1;
  }
  if (rc != 0) {
    fprintf(stderr, "sotto-server: cannot create a TLS key in %s (does the directory exist, is it writable?)\n",
            data_dir);
    return 1;
  }
  fprintf(out,
          "fingerprint %s\nthis is a NEW certificate: every client pinned the old one and will refuse this "
          "server until its user re-pins it (give them this fingerprint)\n",
          fp);
  return 0;
}

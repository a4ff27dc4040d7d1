/* SPDX-License-Identifier: Apache-2.0 */
/* store.c: opening a store by URL (store.h): the small table of backends. */
#include "store.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

const struct sotto_store_backend *sotto__store_backend(const char *url, const char **where, char *why,
                                                       size_t why_len) {
  if (strlen(url) >= SOTTO_STORE_URL_MAX) {
    snprintf(why, why_len, "the store URL is too long (at most %d bytes)", SOTTO_STORE_URL_MAX - 1);
    return NULL;
  }
  if (strncmp(url, "sqlite:", 7) == 0) {
    *where = url + 7;
    if (!**where) {
      snprintf(why, why_len, "sqlite: needs a directory (sqlite:DIR)");
      return NULL;
    }
    return &sotto__store_sqlite_backend;
  }
  if (strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0 ||
      strncmp(url, "pg:", 3) == 0) {
#ifdef SOTTO_HAVE_PQ
    *where = strncmp(url, "pg:", 3) == 0 ? url + 3 : url;
    return &sotto__store_pg_backend;
#else
    snprintf(why, why_len,
             "this sotto-server was built without PostgreSQL support (libpq-dev missing at build time)");
    return NULL;
#endif
  }
  snprintf(why, why_len, "unknown store URL (expected sqlite:DIR, postgresql://... or pg:CONNINFO)");
  return NULL;
}

int sotto__store_open(struct sotto_store *st, const char *url, int mode, char *why, size_t why_len) {
  const char *where = NULL;
  const struct sotto_store_backend *b = sotto__store_backend(url, &where, why, why_len);
  int rc;
  memset(st, 0, sizeof *st);
  if (!b) return SOTTO_ERR_USAGE;
  if (b->check && (rc = b->check(where, why, why_len)) != 0) return rc;
  return b->open(st, where, mode, why, why_len);
}

int sotto__store_migrate(const char *url, FILE *out, char *why, size_t why_len) {
  const char *where = NULL;
  const struct sotto_store_backend *b = sotto__store_backend(url, &where, why, why_len);
  struct sotto_store st;
  int rc;
  if (!b) return SOTTO_ERR_USAGE;
  if (b->migrate) return b->migrate(where, out, why, why_len);
  /* SQLite brings its schema up to date when it opens. */
  if (b == &sotto__store_sqlite_backend && mkdir(where, 0700) != 0 && errno != EEXIST) {
    snprintf(why, why_len, "cannot create %s: %s", where, strerror(errno));
    return SOTTO_ERR_STORE;
  }
  if ((rc = sotto__store_open(&st, url, SOTTO_STORE_OPEN_WRITER, why, why_len)) != 0) return rc;
  st.ops->close(st.impl);
  fprintf(out, "store %s: schema up to date (SQLite migrates when it opens)\n", b->name);
  return 0;
}

/* ---- per-sender sums (store.h) ------------------------------------------------------ */

static uint32_t sums_hash(const char *user) {
  uint32_t h = 2166136261u;
  for (; *user; user++) h = (h ^ (uint8_t)*user) * 16777619u;
  return h % SOTTO_SUMS_BUCKETS;
}

void sotto__sums_clear(struct sotto__sums *t) {
  size_t i;
  for (i = 0; i < SOTTO_SUMS_BUCKETS; i++)
    while (t->b[i]) {
      struct sotto__sum *e = t->b[i];
      t->b[i] = e->next;
      free(e);
    }
}

int sotto__sums_add(struct sotto__sums *t, const char *sender, int64_t d) {
  struct sotto__sum *e;
  uint32_t h;
  if (!sender || strlen(sender) > SOTTO_STORE_USER_MAX) return 0;
  h = sums_hash(sender);
  for (e = t->b[h]; e; e = e->next)
    if (strcmp(e->user, sender) == 0) break;
  if (!e) {
    if ((e = calloc(1, sizeof *e)) == NULL) return SOTTO_ERR_NOMEM;
    memcpy(e->user, sender, strlen(sender) + 1);
    e->next = t->b[h];
    t->b[h] = e;
  }
  e->bytes += d;
  return 0;
}

int64_t sotto__sums_get(const struct sotto__sums *t, const char *sender) {
  const struct sotto__sum *e;
  if (strlen(sender) > SOTTO_STORE_USER_MAX) return 0;
  for (e = t->b[sums_hash(sender)]; e; e = e->next)
    if (strcmp(e->user, sender) == 0) return e->bytes;
  return 0;
}

/* Takes DIR/sotto.lock (flock, held while *fd is open): 0, or -1 with a
 * sentence on stderr when another sotto-server (or import) holds it. */
int sotto__store_lock_dir(const char *dir, int *fd) {
  char path[1100];
  snprintf(path, sizeof path, "%s/sotto.lock", dir);
  if ((*fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) < 0) {
    fprintf(stderr, "sotto-server: cannot create %s: %s\n", path, strerror(errno));
    return -1;
  }
  if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
    fprintf(
        stderr,
        "sotto-server: another sotto-server is already running on %s (%s is locked); stop it first or use "
        "another directory\n",
        dir, path);
    return -1;
  }
  return 0;
}

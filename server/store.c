/* SPDX-License-Identifier: Apache-2.0 */
/* store.c: opening a store by URL (store.h): the small table of backends. */
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

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

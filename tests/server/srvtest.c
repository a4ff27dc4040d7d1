/* SPDX-License-Identifier: Apache-2.0 */
/* srvtest.c: see srvtest.h. */
#define _GNU_SOURCE
#include "srvtest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sotto/devlist.h>
#include <sotto/keys.h>

#ifdef SRVTEST_HAVE_PQ
#include <libpq-fe.h>
#endif

#ifndef SOTTO_SERVER_BIN
#error "SOTTO_SERVER_BIN must be defined"
#endif

/* Finds "KEY 127.0.0.1:PORT\n" in the server's startup output and copies
 * PORT. Returns 0, or -1 if the line is missing or not complete yet. */
static int startup_port(const char *text, const char *key, char out[16]) {
  const char *l = text, *colon, *nl;
  size_t kl = strlen(key);
  while (l && strncmp(l, key, kl) != 0) {
    l = strchr(l, '\n');
    if (l) l++;
  }
  if (!l || (nl = strchr(l, '\n')) == NULL) return -1;
  for (colon = nl; colon > l && *colon != ':'; colon--) {
  }
  if (*colon != ':' || nl - colon - 1 < 1 || nl - colon - 1 > 5) return -1;
  memcpy(out, colon + 1, (size_t)(nl - colon - 1));
  out[nl - colon - 1] = 0;
  return strspn(out, "0123456789") == strlen(out) && atoi(out) > 0 ? 0 : -1;
}

int srv_pg(void) { return getenv("SOTTO_TEST_PG") != NULL; }

/* Data directories and their stores, for srv_run_capture. */
static struct {
  char dir[256], store[512];
} g_stores[64];

static const char *store_of(const char *dir) {
  size_t i;
  for (i = 0; i < sizeof g_stores / sizeof g_stores[0]; i++)
    if (g_stores[i].dir[0] && strcmp(g_stores[i].dir, dir) == 0) return g_stores[i].store;
  return NULL;
}

/* The database of p: "t_" and the random part of its directory name. */
static const char *db_name(const struct srv_proc *p, char out[32]) {
  snprintf(out, 32, "t_%s", p->dir + strlen(p->dir) - 6);
  return out;
}

int srv_pg_exec(const char *db, const char *sql) {
#ifdef SRVTEST_HAVE_PQ
  char ci[600];
  PGconn *c;
  PGresult *r;
  int ok;
  snprintf(ci, sizeof ci, "%s dbname=%s connect_timeout=10", getenv("SOTTO_TEST_PG"), db);
  c = PQconnectdb(ci);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "srvtest: cannot connect to the test PostgreSQL: %s", PQerrorMessage(c));
    PQfinish(c);
    return -1;
  }
  r = PQexec(c, sql);
  ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  if (!ok) fprintf(stderr, "srvtest: %s: %s", sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
  return ok ? 0 : -1;
#else
  (void)db;
  (void)sql;
  fprintf(stderr, "srvtest: built without libpq, cannot run on PostgreSQL\n");
  return -1;
#endif
}

int srv_pg_backends(const struct srv_proc *p, int *pids, int max) {
#ifdef SRVTEST_HAVE_PQ
  char ci[600], db[32];
  PGconn *c;
  PGresult *r;
  int n = -1, i;
  const char *params[1];
  params[0] = db_name(p, db);
  snprintf(ci, sizeof ci, "%s dbname=postgres connect_timeout=10", getenv("SOTTO_TEST_PG"));
  c = PQconnectdb(ci);
  if (PQstatus(c) == CONNECTION_OK) {
    r = PQexecParams(c,
                     "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND application_name = 'sotto-server'",
                     1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
      for (n = 0, i = 0; i < PQntuples(r) && n < max; i++) pids[n++] = atoi(PQgetvalue(r, i, 0));
    PQclear(r);
  }
  PQfinish(c);
  return n;
#else
  (void)p;
  (void)pids;
  (void)max;
  return -1;
#endif
}

/* Runs one SQL command on the maintenance database. */
static int pg_admin(const char *sql) { return srv_pg_exec("postgres", sql); }

int srv_mkdir(struct srv_proc *p, const char *tag) {
  memset(p, 0, sizeof *p);
  snprintf(p->dir, sizeof p->dir, "/tmp/sotto-srvtest-%s-XXXXXX", tag);
  if (!mkdtemp(p->dir)) return -1;
  snprintf(p->log, sizeof p->log, "%s.log", p->dir);
  if (srv_pg()) {
    char db[32], sql[96];
    const char *args[] = {"migrate", "--store", p->store, NULL};
    int st = -1;
    size_t i;
    char *out;
    snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", db_name(p, db));
    if (pg_admin(sql) != 0) return -1;
    snprintf(p->store, sizeof p->store, "pg:%s dbname=%s", getenv("SOTTO_TEST_PG"), db);
    out = srv_run_capture(args, &st);
    free(out);
    if (st != 0) {
      fprintf(stderr, "srvtest: sotto-server migrate failed (%d)\n", st);
      return -1;
    }
    for (i = 0; i < sizeof g_stores / sizeof g_stores[0]; i++)
      if (!g_stores[i].dir[0]) {
        snprintf(g_stores[i].dir, sizeof g_stores[i].dir, "%s", p->dir);
        snprintf(g_stores[i].store, sizeof g_stores[i].store, "%s", p->store);
        break;
      }
  }
  return 0;
}

int srv_start(struct srv_proc *p, const char *const *extra) {
  int out[2];
  const char *argv[64];
  char line[1024];
  size_t n = 0, got = 0;
  int64_t deadline;
  struct timespec ts;
  if (pipe2(out, O_CLOEXEC) != 0) return -1;
  /* SOTTO_TEST_SERVER_BIN runs the tests against another build (to measure
   * an older server for comparison). */
  argv[n++] = getenv("SOTTO_TEST_SERVER_BIN") ? getenv("SOTTO_TEST_SERVER_BIN") : SOTTO_SERVER_BIN;
  argv[n++] = "--data";
  argv[n++] = p->dir;
  argv[n++] = "--listen";
  argv[n++] = "127.0.0.1:0"; /* the kernel picks the ports; the server prints them */
  argv[n++] = "--metrics";
  argv[n++] = "127.0.0.1:0";
  if (p->store[0]) {
    argv[n++] = "--store";
    argv[n++] = p->store;
  }
  while (extra && *extra && n < 60) argv[n++] = *extra++;
  argv[n] = NULL;
  if ((p->pid = fork()) < 0) return -1;
  if (p->pid == 0) {
    int lf = open(p->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    dup2(out[1], 1);
    if (lf >= 0) dup2(lf, 2);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  clock_gettime(CLOCK_MONOTONIC, &ts);
  deadline = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + 10000;
  /* Read "fingerprint HEX\nmetrics 127.0.0.1:P\nlistening 127.0.0.1:P\n". */
  for (;;) {
    struct pollfd pf = {out[0], POLLIN, 0};
    int64_t now;
    ssize_t r;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    if (now >= deadline || poll(&pf, 1, (int)(deadline - now)) <= 0) break;
    r = read(out[0], line + got, sizeof line - 1 - got);
    if (r <= 0) break;
    got += (size_t)r;
    line[got] = 0;
    if (startup_port(line, "listening ", p->port) == 0) {
      char *f = strstr(line, "fingerprint ");
      close(out[0]);
      if (!f || strlen(f) < 12 + 64 || startup_port(line, "metrics ", p->mport) != 0) {
        srv_kill(p);
        return -1;
      }
      memcpy(p->fp, f + 12, 64);
      p->fp[64] = 0;
      return 0;
    }
  }
  close(out[0]);
  srv_kill(p);
  fprintf(stderr, "srvtest: server did not start (log: %s)\n", p->log);
  return -1;
}

static int wait_exit(pid_t pid, int ms, int *status) {
  int i;
  for (i = 0; i < ms / 10; i++) {
    pid_t r = waitpid(pid, status, WNOHANG);
    if (r == pid) return 0;
    usleep(10000);
  }
  return -1;
}

int srv_stop(struct srv_proc *p) {
  int st = 0;
  if (p->pid <= 0) return -1;
  kill(p->pid, SIGTERM);
  if (wait_exit(p->pid, 10000, &st) != 0) {
    kill(p->pid, SIGKILL);
    waitpid(p->pid, &st, 0);
    p->pid = 0;
    return -1;
  }
  p->pid = 0;
  return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

void srv_kill(struct srv_proc *p) {
  int st;
  if (p->pid <= 0) return;
  kill(p->pid, SIGKILL);
  waitpid(p->pid, &st, 0);
  p->pid = 0;
}

struct sotto_net *srv_connect(struct srv_proc *p, struct sotto_net_ctx **ctx, int hello) {
  struct sotto_net *c = NULL;
  if (!*ctx && (*ctx = sotto_net_ctx_new(p->fp, NULL)) == NULL) return NULL;
  if (sotto_net_connect(*ctx, "127.0.0.1", p->port, 5000, hello, &c) != 0) return NULL;
  return c;
}

char *srv_run_capture(const char *const *args, int *status) {
  int out[2];
  pid_t pid;
  char *buf = NULL;
  size_t len = 0, cap = 0;
  const char *argv[20];
  const char *store = NULL;
  size_t n = 0;
  /* The same build as srv_start (SOTTO_TEST_SERVER_BIN): its migrate
   * makes the schema that build expects. */
  argv[n++] = getenv("SOTTO_TEST_SERVER_BIN") ? getenv("SOTTO_TEST_SERVER_BIN") : SOTTO_SERVER_BIN;
  while (*args && n < 15) {
    if (strcmp(*args, "--data") == 0 && args[1] && !store) store = store_of(args[1]);
    argv[n++] = *args++;
  }
  if (store) {
    argv[n++] = "--store";
    argv[n++] = store;
  }
  argv[n] = NULL;
  if (pipe2(out, O_CLOEXEC) != 0) return NULL;
  if ((pid = fork()) == 0) {
    dup2(out[1], 1);
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  close(out[1]);
  for (;;) {
    ssize_t r;
    if (cap - len < 4096) {
      char *nb = realloc(buf, cap += 65536);
      if (!nb) break;
      buf = nb;
    }
    r = read(out[0], buf + len, cap - len - 1);
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(out[0]);
  if (buf) buf[len] = 0;
  if (wait_exit(pid, 10000, status) != 0) {
    kill(pid, SIGKILL);
    waitpid(pid, status, 0);
  }
  *status = WIFEXITED(*status) ? WEXITSTATUS(*status) : 128 + WTERMSIG(*status);
  return buf;
}

int srv_dir_contains(const char *dir, const void *needle, size_t nlen) {
  DIR *d = opendir(dir);
  struct dirent *e;
  int found = 0;
  if (!d) return 0;
  while (!found && (e = readdir(d)) != NULL) {
    char path[1024];
    struct stat st;
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (lstat(path, &st) != 0) continue;
    if (S_ISDIR(st.st_mode)) found = srv_dir_contains(path, needle, nlen);
    else if (S_ISREG(st.st_mode)) {
      FILE *f = fopen(path, "rb");
      char *buf;
      size_t n;
      if (!f) continue;
      if ((buf = malloc((size_t)st.st_size + 1)) != NULL) {
        n = fread(buf, 1, (size_t)st.st_size, f);
        found = memmem(buf, n, needle, nlen) != NULL;
        free(buf);
      }
      fclose(f);
    }
  }
  closedir(d);
  return found;
}

void srv_rmdir(struct srv_proc *p) {
  DIR *d = opendir(p->dir);
  struct dirent *e;
  if (d) {
    while ((e = readdir(d)) != NULL) {
      char path[1024];
      if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
      snprintf(path, sizeof path, "%s/%s", p->dir, e->d_name);
      unlink(path);
    }
    closedir(d);
  }
  rmdir(p->dir);
  if (!getenv("SRVTEST_KEEP_LOGS")) unlink(p->log); /* kept for debugging when set */
  if (p->store[0]) {
    char db[32], sql[96];
    size_t i;
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", db_name(p, db));
    (void)pg_admin(sql);
    for (i = 0; i < sizeof g_stores / sizeof g_stores[0]; i++)
      if (strcmp(g_stores[i].dir, p->dir) == 0) g_stores[i].dir[0] = 0;
  }
}

char *srv_metrics(struct srv_proc *p) {
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
  char *buf = calloc(1, 65536);
  size_t len = 0;
  struct timeval tv = {5, 0};
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)atoi(p->mport));
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if (!buf || fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
      write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
    if (fd >= 0) close(fd);
    free(buf);
    return NULL;
  }
  for (;;) {
    ssize_t r = read(fd, buf + len, 65535 - len);
    if (r <= 0) break;
    len += (size_t)r;
  }
  close(fd);
  return buf;
}

size_t srv_sign_devlist(uint8_t *out, const char *name, const uint8_t acc_pub[32], const uint8_t signer_priv[32],
                        uint32_t version, const uint32_t *ids, size_t n, uint8_t dpriv[][32]) {
  struct sotto_devlist l;
  size_t i, len = 0;
  if (n > SOTTO_DEVLIST_MAX_DEVICES) return 0;
  memset(&l, 0, sizeof l);
  snprintf(l.username, sizeof l.username, "%s", name);
  memcpy(l.account_key, acc_pub, 32);
  l.version = version;
  l.n = (unsigned)n;
  for (i = 0; i < n; i++) {
    const uint8_t *priv = ids[i] == 1 ? signer_priv : dpriv ? dpriv[ids[i]] : NULL;
    if (!priv) return 0;
    l.dev[i].device_id = ids[i];
    if (sotto_public_key(l.dev[i].device_key, priv) != 0 ||
        sotto_devlist_member_sign(l.dev[i].member_sig, priv, name, acc_pub, ids[i]) != 0)
      return 0;
    snprintf(l.dev[i].name, sizeof l.dev[i].name, "dev%u", ids[i]);
    l.dev[i].added_at_ms = 1764000000000ull + ids[i];
  }
  if (sotto_devlist_sign(&l, signer_priv, out, SOTTO_DEVLIST_MAX_LEN, &len) != 0) return 0;
  return len;
}

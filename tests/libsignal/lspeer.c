/* SPDX-License-Identifier: Apache-2.0 */
/* lspeer.c: the pipe to tests/libsignal/node/driver.js (see lspeer.h). */
#define _GNU_SOURCE
#include "lspeer.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

struct lspeer {
  pid_t pid;
  FILE *to, *from;
  char *req;
  size_t req_len, req_cap;
  char *line;
  size_t line_cap;
  char err[512];
};

static void req_put(struct lspeer *p, const char *s, size_t n) {
  if (p->req_len + n + 2 > p->req_cap) {
    size_t cap = p->req_cap ? p->req_cap : 4096;
    while (p->req_len + n + 2 > cap) cap *= 2;
    char *r = realloc(p->req, cap);
    if (r == NULL) abort(); /* test helper: out of memory is fatal */
    p->req = r;
    p->req_cap = cap;
  }
  memcpy(p->req + p->req_len, s, n);
  p->req_len += n;
}

struct lspeer *lspeer_start(void) {
  const char *node = SOTTO_NODE_EXECUTABLE, *driver = SOTTO_LS_DRIVER, *dir = SOTTO_LS_NODE_DIR;
  int in[2] = {-1, -1}, out[2] = {-1, -1};
  posix_spawn_file_actions_t fa;
  struct lspeer *p;
  char *argv[3];
  char stamp[4096];

  if (node[0] == '\0') {
    fprintf(stderr, "lspeer: node was not found when configuring; install nodejs and run "
                    "'make deps' (scripts/fetch-libsignal-node.sh)\n");
    return NULL;
  }
  snprintf(stamp, sizeof stamp, "%s/.stamp", dir);
  if (access(stamp, R_OK) != 0) {
    fprintf(stderr, "lspeer: libsignal test peer not installed in %s; run 'make deps' "
                    "(scripts/fetch-libsignal-node.sh)\n", dir);
    return NULL;
  }
  if (setenv("SOTTO_LIBSIGNAL_NODE_DIR", dir, 1) != 0) return NULL;
  signal(SIGPIPE, SIG_IGN);
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) goto fail;
  p = calloc(1, sizeof *p);
  if (p == NULL) goto fail;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  argv[0] = (char *)node;
  argv[1] = (char *)driver;
  argv[2] = NULL;
  if (posix_spawn(&p->pid, node, &fa, NULL, argv, environ) != 0) {
    posix_spawn_file_actions_destroy(&fa);
    free(p);
    fprintf(stderr, "lspeer: cannot start %s: %s\n", node, strerror(errno));
    goto fail;
  }
  posix_spawn_file_actions_destroy(&fa);
  close(in[0]);
  close(out[1]);
  p->to = fdopen(in[1], "w");
  p->from = fdopen(out[0], "r");
  if (p->to == NULL || p->from == NULL) abort();
  /* The first request proves the module loads. */
  {
    char *w[LSPEER_MAX_WORDS];
    lspeer_begin(p, "version");
    if (lspeer_send(p, w) != 1) {
      fprintf(stderr, "lspeer: the libsignal peer did not start: %s\n", p->err);
      lspeer_stop(p);
      return NULL;
    }
  }
  return p;
fail:
  for (int i = 0; i < 2; i++) {
    if (in[i] >= 0) close(in[i]);
    if (out[i] >= 0) close(out[i]);
  }
  return NULL;
}

void lspeer_stop(struct lspeer *p) {
  int st;
  if (p == NULL) return;
  fclose(p->to);
  fclose(p->from);
  waitpid(p->pid, &st, 0);
  free(p->req);
  free(p->line);
  free(p);
}

void lspeer_begin(struct lspeer *p, const char *cmd) {
  p->req_len = 0;
  req_put(p, cmd, strlen(cmd));
}

void lspeer_arg_hex(struct lspeer *p, const uint8_t *b, size_t n) {
  static const char d[] = "0123456789abcdef";
  req_put(p, " ", 1);
  if (n == 0) {
    req_put(p, b == NULL ? "-" : ".", 1);
    return;
  }
  for (size_t i = 0; i < n; i++) {
    char h[2] = {d[b[i] >> 4], d[b[i] & 15]};
    req_put(p, h, 2);
  }
}

void lspeer_arg_u(struct lspeer *p, unsigned long v) {
  char s[32];
  int n = snprintf(s, sizeof s, " %lu", v);
  req_put(p, s, (size_t)n);
}

void lspeer_arg_str(struct lspeer *p, const char *s) {
  req_put(p, " ", 1);
  req_put(p, s, strlen(s));
}

int lspeer_send(struct lspeer *p, char *word[LSPEER_MAX_WORDS]) {
  ssize_t n;
  int nw = 0;
  char *s, *save = NULL;

  p->err[0] = '\0';
  req_put(p, "\n", 1);
  if (fwrite(p->req, 1, p->req_len, p->to) != p->req_len || fflush(p->to) != 0) {
    snprintf(p->err, sizeof p->err, "write to the peer failed");
    return -1;
  }
  n = getline(&p->line, &p->line_cap, p->from);
  if (n <= 0) {
    snprintf(p->err, sizeof p->err, "the peer closed its pipe");
    return -1;
  }
  if (p->line[n - 1] == '\n') p->line[n - 1] = '\0';
  if (strncmp(p->line, "err", 3) == 0) {
    snprintf(p->err, sizeof p->err, "%s", p->line[3] ? p->line + 4 : "");
    return -1;
  }
  if (strncmp(p->line, "ok", 2) != 0 || (p->line[2] != '\0' && p->line[2] != ' ')) {
    snprintf(p->err, sizeof p->err, "bad reply: %.200s", p->line);
    return -1;
  }
  for (s = strtok_r(p->line + 2, " ", &save); s != NULL; s = strtok_r(NULL, " ", &save)) {
    if (nw == LSPEER_MAX_WORDS) {
      snprintf(p->err, sizeof p->err, "too many words in the reply");
      return -1;
    }
    word[nw++] = s;
  }
  return nw;
}

const char *lspeer_error(const struct lspeer *p) { return p->err; }

static int nibble(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

long lspeer_unhex(uint8_t *out, size_t cap, const char *hex) {
  size_t n = strlen(hex), i;
  if (strcmp(hex, ".") == 0) return 0;
  if (n % 2 != 0 || n / 2 > cap) return -1;
  for (i = 0; i < n / 2; i++) {
    int hi = nibble(hex[2 * i]), lo = nibble(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return -1;
    out[i] = (uint8_t)(hi << 4 | lo);
  }
  return (long)(n / 2);
}

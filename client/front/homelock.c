/* SPDX-License-Identifier: Apache-2.0 */
/* homelock.c: the per-home lock of the daemon and the chat UI (homelock.h). */
#include "homelock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static int lock_path(char *out, size_t cap, const char *home) {
  int n = snprintf(out, cap, "%s/%s", home, HOMELOCK_FILE);
  return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Reads "PID KIND\nSOCKET\n" (bounded); fields that do not parse stay empty. */
static void read_info(int fd, struct homelock_info *info) {
  char buf[400], *nl, *sp;
  ssize_t r;
  memset(info, 0, sizeof *info);
  if (lseek(fd, 0, SEEK_SET) < 0 || (r = read(fd, buf, sizeof buf - 1)) <= 0) return;
  buf[r] = 0;
  if (!(nl = strchr(buf, '\n'))) return;
  *nl = 0;
  info->pid = (pid_t)strtol(buf, &sp, 10);
  if (*sp == ' ') snprintf(info->kind, sizeof info->kind, "%.15s", sp + 1);
  {
    char *s = nl + 1, *e = strchr(s, '\n');
    if (e) *e = 0;
    snprintf(info->socket, sizeof info->socket, "%.255s", s);
  }
}

int homelock_take(const char *home, const char *kind, const char *socket, struct homelock_info *info) {
  char path[PATH_MAX], buf[400];
  int fd, n;
  memset(info, 0, sizeof *info);
  if (lock_path(path, sizeof path, home)) {
    errno = ENAMETOOLONG;
    return -2;
  }
  if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) return -2;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    if (e == EWOULDBLOCK) {
      /* Shared holders are sotto commands (homelock_share); an exclusive
       * one is a daemon or chat UI, whose pid and kind are in the file. */
      if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
        snprintf(info->kind, sizeof info->kind, "command");
      } else {
        read_info(fd, info);
      }
      close(fd);
      return -1;
    }
    close(fd);
    errno = e;
    return -2;
  }
  n = snprintf(buf, sizeof buf, "%ld %s\n%s\n", (long)getpid(), kind, socket ? socket : "");
  if (n < 0 || (size_t)n >= sizeof buf || ftruncate(fd, 0) != 0 || pwrite(fd, buf, (size_t)n, 0) != n) {
    close(fd);
    return -2;
  }
  return fd;
}

/* The file stays: removing it before the lock is released would let a
 * process that opened it just before lock a file nobody else can find
 * (two holders). The next holder rewrites it. */
void homelock_release(const char *home, int fd) {
  (void)home;
  if (fd < 0) return;
  if (ftruncate(fd, 0) != 0) {
    /* stale text is harmless: it is read only while the lock is held */
  }
  close(fd);
}

int homelock_share(const char *home, struct homelock_info *info) {
  char path[PATH_MAX];
  int fd;
  memset(info, 0, sizeof *info);
  if (lock_path(path, sizeof path, home)) return -2;
  if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) return -2;
  if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
    int e = errno;
    if (e == EWOULDBLOCK) read_info(fd, info);
    close(fd);
    errno = e;
    return e == EWOULDBLOCK ? -1 : -2;
  }
  return fd;
}

int homelock_held(const char *home, struct homelock_info *info) {
  char path[PATH_MAX];
  int fd, held = 0;
  memset(info, 0, sizeof *info);
  if (lock_path(path, sizeof path, home)) return 0;
  if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0) return 0;
  /* A shared lock is refused only while the holder's exclusive one lives. */
  if (flock(fd, LOCK_SH | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      held = 1;
      read_info(fd, info);
    }
  } else {
    flock(fd, LOCK_UN);
  }
  close(fd);
  return held;
}

void homelock_message(char *buf, size_t cap, const struct homelock_info *info) {
  if (strcmp(info->kind, "daemon") == 0 && info->socket[0])
    snprintf(buf, cap,
             "the daemon (pid %ld) holds this home (socket %s); send it JSON-RPC requests on that socket "
             "(docs/client.md, \"The daemon\") or stop it (kill %ld)",
             (long)info->pid, info->socket, (long)info->pid);
  else if (strcmp(info->kind, "daemon") == 0)
    snprintf(buf, cap,
             "the daemon (sotto jsonrpc, pid %ld) holds this home; send it requests on its standard input or "
             "stop it (kill %ld)",
             (long)info->pid, (long)info->pid);
  else if (strcmp(info->kind, "command") == 0)
    snprintf(buf, cap,
             "a sotto command is running on this home (a 'sotto receive --follow', or a send); wait for it or "
             "stop it first");
  else if (strcmp(info->kind, "chat") == 0)
    snprintf(buf, cap, "sotto chat (pid %ld) holds this home; use it, or quit it (/quit) first",
             (long)info->pid);
  else
    snprintf(buf, cap, "another sotto (pid %ld) holds this home; stop it first", (long)info->pid);
}

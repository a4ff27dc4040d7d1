/* SPDX-License-Identifier: Apache-2.0 */
/* nodirect_preload.c: a filesystem that refuses O_DIRECT, simulated for
 * test_attach_nodirect.sh (LD_PRELOAD into the real sotto-server and the
 * real client; no hook in either).
 *
 * The server (srv_blob.c blob_write) and the client (attach.c download)
 * write with O_DIRECT where the filesystem takes it and fall back to the
 * page cache when it refuses (EINVAL). The filesystems of the test machines
 * all take O_DIRECT (tmpfs too, since Linux 6.6), so the fallback never ran;
 * this library makes the refusal happen:
 *
 *   SOTTO_NODIRECT=open   open()/openat() with O_DIRECT and fcntl(F_SETFL)
 *                         adding O_DIRECT fail with EINVAL (as tmpfs before
 *                         Linux 6.6);
 *   SOTTO_NODIRECT=write  the flag is taken, but every write to a file
 *                         descriptor that has O_DIRECT fails with EINVAL
 *                         (as a filesystem that checks only at the write);
 *   SOTTO_NODIRECT=full   the flag is taken, but every write to a file
 *                         descriptor that has O_DIRECT fails with ENOSPC
 *                         (a full disk: the client's download writer's
 *                         failure path);
 *   SOTTO_NODIRECT_LOG=F  one line "PROGRAM refused-open|refused-fcntl|refused-write"
 *                         appended to F per refusal (so the test can tell
 *                         that the fallback path ran at all).
 *
 * Anything without O_DIRECT passes through untouched. */
#undef _FORTIFY_SOURCE /* the open() below must not meet the fortified inline one */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>


static int mode(void) { /* 0 off, 1 open, 2 write, 3 full */
  const char *v = getenv("SOTTO_NODIRECT");
  if (!v) return 0;
  return strcmp(v, "open") == 0 ? 1 : strcmp(v, "write") == 0 ? 2 : strcmp(v, "full") == 0 ? 3 : 0;
}

static void note(const char *what) {
  const char *path = getenv("SOTTO_NODIRECT_LOG");
  static int (*real_open)(const char *, int, ...);
  char line[200];
  int fd, n;
  if (!path) return;
  if (!real_open) real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
  if (!real_open || (fd = real_open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600)) < 0) return;
  n = snprintf(line, sizeof line, "%s %s\n", program_invocation_short_name, what);
  if (n > 0 && write(fd, line, (size_t)n) < 0) { /* best effort: the test sees a missing line */
  }
  close(fd);
}

static int (*next_fcntl(void))(int, int, ...) {
  static int (*f)(int, int, ...);
  if (!f) f = (int (*)(int, int, ...))dlsym(RTLD_NEXT, "fcntl");
  return f;
}

static int has_direct(int fd) {
  int fl = next_fcntl()(fd, F_GETFL);
  return fl >= 0 && (fl & O_DIRECT);
}

#define OPEN_LIKE(name, ...)                                                                          \
  int name(__VA_ARGS__, int flags, ...) {                                                             \
    static int (*real)(ARGS_T, int, ...);                                                             \
    mode_t m = 0;                                                                                     \
    if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) { /* the mode argument exists */      \
      va_list ap;                                                                                     \
      va_start(ap, flags);                                                                            \
      m = (mode_t)va_arg(ap, int);                                                                    \
      va_end(ap);                                                                                     \
    }                                                                                                 \
    if ((flags & O_DIRECT) && mode() == 1) {                                                          \
      note("refused-open");                                                                           \
      errno = EINVAL;                                                                                 \
      return -1;                                                                                      \
    }                                                                                                 \
    if (!real) real = (int (*)(ARGS_T, int, ...))dlsym(RTLD_NEXT, #name);                             \
    return real(ARGS_V, flags, m);                                                                    \
  }

#define ARGS_T const char *
#define ARGS_V path
OPEN_LIKE(open, const char *path)
OPEN_LIKE(open64, const char *path)
#undef ARGS_T
#undef ARGS_V
#define ARGS_T int, const char *
#define ARGS_V dirfd, path
OPEN_LIKE(openat, int dirfd, const char *path)
OPEN_LIKE(openat64, int dirfd, const char *path)
#undef ARGS_T
#undef ARGS_V

static int fcntl_common(const char *name, int fd, int cmd, va_list ap) {
  static int (*real_fcntl)(int, int, ...), (*real_fcntl64)(int, int, ...);
  int (**real)(int, int, ...) = strcmp(name, "fcntl") == 0 ? &real_fcntl : &real_fcntl64;
  void *p = NULL;
  long l = 0;
  if (!*real) *real = (int (*)(int, int, ...))dlsym(RTLD_NEXT, name);
  if (!*real) {
    errno = ENOSYS;
    return -1;
  }
  switch (cmd) { /* the argument's type by command (those sotto uses: none, int, or a pointer) */
    case F_GETFD:
    case F_GETFL:
    case F_GETOWN:
    case F_GETSIG:
    case F_GETLEASE:
    case F_GETPIPE_SZ:
    case F_GET_SEALS:
      return (*real)(fd, cmd);
    case F_GETLK:
    case F_SETLK:
    case F_SETLKW:
    case F_OFD_GETLK:
    case F_OFD_SETLK:
    case F_OFD_SETLKW:
    case F_GETOWN_EX:
    case F_SETOWN_EX:
      p = va_arg(ap, void *);
      return (*real)(fd, cmd, p);
    default:
      l = va_arg(ap, long);
      if (cmd == F_SETFL && (l & O_DIRECT) && mode() == 1 && !has_direct(fd)) {
        note("refused-fcntl");
        errno = EINVAL;
        return -1;
      }
      return (*real)(fd, cmd, l);
  }
}

int fcntl(int fd, int cmd, ...) {
  va_list ap;
  int rc;
  va_start(ap, cmd);
  rc = fcntl_common("fcntl", fd, cmd, ap);
  va_end(ap);
  return rc;
}

int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  int rc;
  va_start(ap, cmd);
  rc = fcntl_common("fcntl64", fd, cmd, ap);
  va_end(ap);
  return rc;
}

static int refuse_write(int fd) {
  int m = mode();
  if ((m != 2 && m != 3) || !has_direct(fd)) return 0;
  note(m == 2 ? "refused-write" : "refused-full");
  errno = m == 2 ? EINVAL : ENOSPC;
  return 1;
}

ssize_t write(int fd, const void *buf, size_t n) {
  static ssize_t (*real)(int, const void *, size_t);
  if (refuse_write(fd)) return -1;
  if (!real) real = (ssize_t(*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
  return real(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  static ssize_t (*real)(int, const void *, size_t, off_t);
  if (refuse_write(fd)) return -1;
  if (!real) real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
  return real(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  static ssize_t (*real)(int, const void *, size_t, off_t);
  if (refuse_write(fd)) return -1;
  if (!real) real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
  return real(fd, buf, n, off);
}

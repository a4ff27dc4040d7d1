/* SPDX-License-Identifier: Apache-2.0 */
/* homelock.h: one long-running front end per home. The daemon and the chat
 * UI hold the store and the link to the server for as long as they run; a
 * second process on the same home would be displaced on the server and
 * would race the store. The holder takes an exclusive flock(2) on
 * HOME/front.lock and writes into it its pid, its kind ("daemon", "chat")
 * and its socket path; any other sotto on that home checks the lock and
 * says plainly who holds it. The kernel drops the lock when the holder
 * dies, so a stale file (a crash) never blocks anyone. */
#ifndef SOTTO_FRONT_HOMELOCK_H
#define SOTTO_FRONT_HOMELOCK_H

#include <stddef.h>
#include <sys/types.h>

#define HOMELOCK_FILE "front.lock"

struct homelock_info {
  pid_t pid;
  char kind[16];
  char socket[256];
};

/* Takes the lock of home for kind (socket may be ""). Returns the lock's fd
 * (>= 0, keep it open), -1 when another process holds it (info filled when
 * it said who), or -2 on a system error (errno). */
int homelock_take(const char *home, const char *kind, const char *socket, struct homelock_info *info);
/* Releases the lock (fd < 0: no-op). The file stays (see homelock.c). */
void homelock_release(const char *home, int fd);
/* A sotto command's shared hold on home for its whole run, so that a daemon
 * or chat UI cannot start under it (homelock_take then says "a sotto command
 * is running"). Returns the fd to keep open, -1 if a daemon or chat UI holds
 * the home (info filled), -2 on another error (no home yet: nothing to hold). */
int homelock_share(const char *home, struct homelock_info *info);
/* 1 if a live process holds home's lock (info filled), 0 if not. */
int homelock_held(const char *home, struct homelock_info *info);
/* The one-line message for a held home, into buf. */
void homelock_message(char *buf, size_t cap, const struct homelock_info *info);

#endif

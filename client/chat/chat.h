/* SPDX-License-Identifier: Apache-2.0 */
/* chat.h: `sotto chat`, the terminal chat UI (docs/client.md, "The chat
 * UI"). The model and layout are in model.h; chat.c reads keys, calls the
 * core and copies the laid-out grid to the terminal with ncursesw. */
#ifndef SOTTO_CHAT_H
#define SOTTO_CHAT_H

#include "sotto_client.h"

/* Runs the UI on the terminal until /quit or Ctrl-C. c is open (sc_open
 * done); the UI sets its sink and connects. open_peer, when not NULL, is the
 * conversation to open first ("NAME", or "#GROUP"). Returns 0, or -1 after
 * printing on stderr why (no terminal). */
int chat_run(struct sc_client *c, const char *open_peer);

#endif

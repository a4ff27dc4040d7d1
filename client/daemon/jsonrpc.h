/* SPDX-License-Identifier: Apache-2.0 */
/* jsonrpc.h: JSON-RPC 2.0, one object per line (docs/client.md, "The
 * daemon"). No I/O here: rpc_handle takes one line and gives the response
 * object (or none for a notification); lineio.h moves the bytes.
 *
 * Choices, stated once:
 *  - Batches (a JSON array) are not supported, as in signal-cli: the answer
 *    is one -32600 error with id null. Clients send one object per line and
 *    may pipeline as many as they like; answers come back in order.
 *  - id is a string (at most RPC_MAX_ID bytes), an integer within +-2^53,
 *    or null; an object without "id" is a notification and gets no answer,
 *    even when it fails (JSON-RPC 2.0, section 4.1).
 *  - params is an object or absent; positional (array) params are refused
 *    with -32602, since every method has named parameters.
 *  - Every string a method reads must be valid UTF-8 without NUL.
 *
 * Errors: the standard codes below, and application codes -32000..-32099,
 * each with data {"error": NAME, "hint": TEXT} (rpc_app_errors). */
#ifndef SOTTO_DAEMON_JSONRPC_H
#define SOTTO_DAEMON_JSONRPC_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define RPC_MAX_LINE (256 * 1024) /* a request line (a message is at most 60 KiB of text) */
#define RPC_MAX_ID 128            /* a string id */
#define RPC_MAX_ARRAY 256         /* members of an array parameter */

#define RPC_E_PARSE (-32700)
#define RPC_E_INVALID (-32600)
#define RPC_E_METHOD (-32601)
#define RPC_E_PARAMS (-32602)
#define RPC_E_INTERNAL (-32603)

/* Application errors: X(code, name, message, hint). */
#define RPC_APP_ERRORS(X)                                                                                  \
  X(-32000, "failed", "the request failed", "see the message")                                             \
  X(-32001, "not_found", "no such contact, user or group", "check the name (listContacts, listGroups)")    \
  X(-32002, "untrusted_identity", "the identity key changed",                                              \
    "compare safety numbers (getSafetyNumber), then verify")                                               \
  X(-32003, "network", "the server cannot be reached", "the daemon reconnects by itself; try again later") \
  X(-32004, "server_refused", "the server refused the request", "see the message")                         \
  X(-32005, "store", "the local store failed", "see the daemon's log")                                     \
  X(-32006, "mismatch", "the safety number does not match", "compare it again with your contact")          \
  X(-32007, "too_large", "the message or list is too long", "split it")                                    \
  X(-32008, "membership", "already a member, not a member, or yourself in the list", "check listGroups")   \
  X(-32009, "not_registered", "this home has no registered account", "run 'sotto register' first")         \
  X(-32010, "no_memory", "out of memory", "try again")                                                     \
  X(-32011, "exists", "a group of that name already exists", "pick another name")

enum {
  RPC_APP_FAILED = -32000,
  RPC_APP_NOT_FOUND = -32001,
  RPC_APP_UNTRUSTED = -32002,
  RPC_APP_NETWORK = -32003,
  RPC_APP_REFUSED = -32004,
  RPC_APP_STORE = -32005,
  RPC_APP_MISMATCH = -32006,
  RPC_APP_TOO_LARGE = -32007,
  RPC_APP_MEMBERSHIP = -32008,
  RPC_APP_NOT_REGISTERED = -32009,
  RPC_APP_NOMEM = -32010,
  RPC_APP_EXISTS = -32011,
};

/* What a failed method fills in: code (standard or application) and a
 * message for a person (what was wrong, with names). */
struct rpc_error {
  int code;
  char message[256];
  char core[40]; /* the core's error name (sc_error_name), "" when none: data.core */
};

/* Sets err and returns err->code (so a method can `return rpc_fail(...)`). */
int rpc_fail(struct rpc_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The name of an application code ("not_found") or of a standard one
 * ("parse_error"...); NULL if unknown. */
const char *rpc_error_name(int code);
const char *rpc_error_hint(int code);

/* A method: params is an object (never NULL: {} when absent). On success
 * returns 0 with *result set (owned by the caller; NULL means null); on
 * failure returns non-zero with err filled. session is the caller's
 * per-client pointer (subscriptions). */
struct rpc_method {
  const char *name;
  int (*fn)(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err);
};

struct rpc_table {
  const struct rpc_method *methods;
  size_t n;
  void *ud;
};

/* Handles one request line (len bytes, no newline). Returns the response
 * object to send (caller frees), or NULL when there is none (a
 * notification, or no memory: *nomem is then set). */
cJSON *rpc_handle(const struct rpc_table *t, void *session, const char *line, size_t len, int *nomem);
/* The error response for a line that was too long (id null, -32600). */
cJSON *rpc_error_response(const cJSON *id, int code, const char *message);
/* A notification {"jsonrpc":"2.0","method":M,"params":P}; takes params. */
cJSON *rpc_notification(const char *method, cJSON *params);

/* ---- parameter helpers: 0, or RPC_E_PARAMS with err filled ---- */

/* Rejects members of params not named in allowed (a NULL-terminated list):
 * a misspelt parameter is an error, never silently ignored. */
int rpc_only(const cJSON *params, const char *const *allowed, struct rpc_error *err);
/* A string parameter of at most max bytes, valid UTF-8. *out is NULL when
 * absent and not required. */
int rpc_str(const cJSON *params, const char *name, int required, size_t max, const char **out,
            struct rpc_error *err);
/* An integer in [min, max]; *out = dflt when absent and not required. */
int rpc_int(const cJSON *params, const char *name, int required, int64_t min, int64_t max, int64_t dflt,
            int64_t *out, struct rpc_error *err);
/* A boolean; *out = dflt when absent. */
int rpc_bool(const cJSON *params, const char *name, int dflt, int *out, struct rpc_error *err);
/* An array of strings (each at most max bytes, at most RPC_MAX_ARRAY), or
 * one string taken as a one-element list. *out points into params (valid
 * while params lives) and is malloc'd (caller frees the array only). */
int rpc_strs(const cJSON *params, const char *name, int required, size_t max, const char ***out, size_t *n,
             struct rpc_error *err);

#endif

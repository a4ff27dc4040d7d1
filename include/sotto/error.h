/* SPDX-License-Identifier: Apache-2.0 */
/* sotto/error.h: the one error table of libsotto.
 *
 * Every fallible libsotto function returns 0 on success or one of the negative
 * codes below. Names, numbers and messages come from the single X-macro table so
 * they cannot drift apart. Callers branch on the category helpers rather than
 * on individual codes where they can. */
#ifndef SOTTO_ERROR_H
#define SOTTO_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

#define SOTTO_WUR __attribute__((warn_unused_result))

/* X(name, value, message) */
#define SOTTO_ERRORS(X)                                                                  \
  X(SOTTO_OK, 0, "success")                                                              \
  /* usage: the caller passed something impossible */                                    \
  X(SOTTO_ERR_USAGE, -1, "invalid argument")                                             \
  X(SOTTO_ERR_BUFFER_TOO_SMALL, -2, "output buffer too small")                           \
  /* malformed input: bytes that do not parse */                                         \
  X(SOTTO_ERR_MALFORMED, -10, "malformed message")                                       \
  X(SOTTO_ERR_TRUNCATED, -11, "message truncated")                                       \
  X(SOTTO_ERR_TRAILING, -12, "trailing bytes after message")                             \
  X(SOTTO_ERR_TOO_LARGE, -13, "length or count over limit")                              \
  X(SOTTO_ERR_VERSION, -14, "unsupported protocol version")                              \
  X(SOTTO_ERR_LEGACY, -15, "legacy protocol version")                                    \
  X(SOTTO_ERR_INVALID_KEY, -16, "invalid key")                                           \
  /* authentication: one opaque code for every MAC, signature or AEAD failure */         \
  X(SOTTO_ERR_AUTH, -20, "authentication failed")                                        \
  /* state: the message is well formed but does not fit the session */                   \
  X(SOTTO_ERR_DUPLICATE, -30, "duplicate or replayed message")                           \
  X(SOTTO_ERR_TOO_FAR_AHEAD, -31, "message too far ahead of the chain")                  \
  X(SOTTO_ERR_NO_SESSION, -32, "no session")                                             \
  X(SOTTO_ERR_UNKNOWN_PREKEY, -33, "unknown or already used pre-key")                    \
  X(SOTTO_ERR_UNTRUSTED_IDENTITY, -34, "identity key changed")                           \
  X(SOTTO_ERR_NO_SENDER_KEY, -35, "no sender key state for this chain")                  \
  X(SOTTO_ERR_NOT_SENDER, -36, "this sender-key state cannot encrypt")                   \
  X(SOTTO_ERR_DOWNGRADE, -37, "downgrade refused (no signed KEM pre-key, or no SPQR)")     \
  X(SOTTO_ERR_KT_FORK, -38, "tree head does not extend the log seen before")            \
  X(SOTTO_ERR_KT_QUORUM, -39, "not enough witness cosignatures on the tree head")        \
  /* resources and environment */                                                       \
  X(SOTTO_ERR_NOMEM, -40, "out of memory")                                               \
  X(SOTTO_ERR_RANDOM, -41, "random number generator failed")                             \
  X(SOTTO_ERR_STORE, -42, "storage callback failed")                                     \
  X(SOTTO_ERR_INTERNAL, -50, "internal error")

enum sotto_err {
#define SOTTO_X_ENUM(name, value, msg) name = value,
  SOTTO_ERRORS(SOTTO_X_ENUM)
#undef SOTTO_X_ENUM
};

/* Returns a static, human-readable message for a code (never NULL). */
const char *sotto_strerror(int err);
/* Returns the symbolic name ("SOTTO_ERR_AUTH") for a code (never NULL). */
const char *sotto_errname(int err);

/* Categories a caller can branch on. */
static inline int sotto_err_is_malformed(int e) { return e <= -10 && e > -20; }
static inline int sotto_err_is_auth(int e) { return e == SOTTO_ERR_AUTH; }
static inline int sotto_err_is_state(int e) { return e <= -30 && e > -40; }

#ifdef __cplusplus
}
#endif
#endif

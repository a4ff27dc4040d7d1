/* SPDX-License-Identifier: Apache-2.0 */
#include <sotto/error.h>

const char *sotto_strerror(int err) {
  switch (err) {
#define SOTTO_X_MSG(name, value, msg) \
  case value:                         \
    return msg;
    SOTTO_ERRORS(SOTTO_X_MSG)
#undef SOTTO_X_MSG
  }
  return "unknown error";
}

const char *sotto_errname(int err) {
  switch (err) {
#define SOTTO_X_NAME(name, value, msg) \
  case value:                          \
    return #name;
    SOTTO_ERRORS(SOTTO_X_NAME)
#undef SOTTO_X_NAME
  }
  return "SOTTO_ERR_UNKNOWN";
}

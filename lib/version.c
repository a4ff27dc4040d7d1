/* SPDX-License-Identifier: Apache-2.0 */
/* version.c: the run-time version (see <sotto/version.h>). */
#include <sotto/version.h>

const char *sotto_version(void) { return SOTTO_VERSION_STRING; }

/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_jsonrpc.c: the daemon's request path without the core: bytes from a
 * client go through the bounded line reader (client/daemon/lineio.c) into
 * rpc_handle (jsonrpc.c) with a method table that uses every parameter
 * helper. Every answer must print as one line of valid JSON with "jsonrpc"
 * "2.0" and an "id", go through the capped output queue, and a line must
 * never be longer than RPC_MAX_LINE. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc.h"
#include "lineio.h"

static int m_all(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"s", "i", "b", "a", NULL};
  const char *s, **a = NULL;
  size_t n = 0;
  int64_t i;
  int b;
  (void)ud;
  (void)session;
  if (rpc_only(params, allowed, err) || rpc_str(params, "s", 0, 64, &s, err) ||
      rpc_int(params, "i", 0, -5, 1000, 1, &i, err) || rpc_bool(params, "b", 0, &b, err) ||
      rpc_strs(params, "a", 0, 32, &a, &n, err))
    return err->code;
  *result = cJSON_CreateObject();
  if (s) cJSON_AddStringToObject(*result, "s", s);
  cJSON_AddNumberToObject(*result, "n", (double)n);
  free(a);
  return 0;
}

static int m_fail(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  (void)ud, (void)session, (void)params, (void)result;
  rpc_fail(err, RPC_APP_NOT_FOUND, "no such thing");
  snprintf(err->core, sizeof err->core, "%s", "unknown_user");
  return err->code;
}

static const struct rpc_method methods[] = {{"all", m_all}, {"fail", m_fail}};
static const struct rpc_table table = {methods, 2, NULL};

static int on_line(void *ud, const char *line, size_t len) {
  struct line_out *out = ud;
  int nomem = 0;
  cJSON *r, *back;
  char *s;
  if (!line) {
    r = rpc_error_response(NULL, RPC_E_INVALID, "request line too long");
  } else {
    if (len > RPC_MAX_LINE) abort();
    r = rpc_handle(&table, NULL, line, len, &nomem);
  }
  if (!r) return 0;
  if (!(s = cJSON_PrintUnformatted(r))) abort();
  /* one line, valid JSON, a JSON-RPC 2.0 response with an id */
  if (strchr(s, '\n') || !(back = cJSON_Parse(s))) abort();
  if (!cJSON_IsString(cJSON_GetObjectItem(back, "jsonrpc")) || !cJSON_GetObjectItem(back, "id")) abort();
  if (!cJSON_GetObjectItem(back, "result") == !cJSON_GetObjectItem(back, "error")) abort();
  (void)line_out_push(out, s, strlen(s)); /* over the cap: refused, as the daemon disconnects */
  cJSON_Delete(back);
  cJSON_Delete(r);
  free(s);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct line_in in;
  struct line_out out;
  size_t used, half = size / 2;
  memset(&in, 0, sizeof in);
  memset(&out, 0, sizeof out);
  out.max = 64 * 1024;
  /* in two pieces, so that lines split across reads are exercised */
  if (line_in_feed(&in, (const char *)data, half, &used, on_line, &out) != 0 || used != half) abort();
  if (line_in_feed(&in, (const char *)data + half, size - half, &used, on_line, &out) != 0 || used != size - half)
    abort();
  if (line_out_pending(&out) > out.max) abort();
  line_in_free(&in);
  line_out_free(&out);
  return 0;
}

/* SPDX-License-Identifier: Apache-2.0 */
/* jsonrpc.c: request validation, dispatch and error objects (jsonrpc.h).
 * The order of checks follows JSON-RPC 2.0: a line that is not JSON is
 * -32700; JSON that is not a request object is -32600 (id null unless a
 * valid id could be read); then the method (-32601), then its params
 * (-32602, by the method). */
#include "jsonrpc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../front/utf8.h"

#define RPC_MAX_SAFE_INT 9007199254740992.0 /* 2^53: larger integers do not survive a double */

int rpc_fail(struct rpc_error *err, int code, const char *fmt, ...) {
  va_list ap;
  err->code = code;
  va_start(ap, fmt);
  vsnprintf(err->message, sizeof err->message, fmt, ap);
  va_end(ap);
  return code;
}

static const struct {
  int code;
  const char *name, *message, *hint;
} app_errors[] = {
#define X(c, n, m, h) {c, n, m, h},
    RPC_APP_ERRORS(X)
#undef X
        {RPC_E_PARSE, "parse_error", "the line is not valid JSON", "send one JSON object per line"},
    {RPC_E_INVALID, "invalid_request", "not a JSON-RPC 2.0 request object",
     "send {\"jsonrpc\":\"2.0\",\"method\":...,\"id\":...}"},
    {RPC_E_METHOD, "method_not_found", "no such method", "see docs/client.md for the methods"},
    {RPC_E_PARAMS, "invalid_params", "invalid parameters", "see docs/client.md for the method's parameters"},
    {RPC_E_INTERNAL, "internal_error", "internal error", "see the daemon's log"},
};

const char *rpc_error_name(int code) {
  size_t i;
  for (i = 0; i < sizeof app_errors / sizeof app_errors[0]; i++)
    if (app_errors[i].code == code) return app_errors[i].name;
  return NULL;
}

const char *rpc_error_hint(int code) {
  size_t i;
  for (i = 0; i < sizeof app_errors / sizeof app_errors[0]; i++)
    if (app_errors[i].code == code) return app_errors[i].hint;
  return NULL;
}

static cJSON *envelope(const cJSON *id) {
  cJSON *o = cJSON_CreateObject();
  cJSON *idc = id ? cJSON_Duplicate(id, 1) : cJSON_CreateNull();
  if (!o || !idc || !cJSON_AddStringToObject(o, "jsonrpc", "2.0")) {
    cJSON_Delete(o);
    cJSON_Delete(idc);
    return NULL;
  }
  cJSON_AddItemToObject(o, "id", idc);
  return o;
}

cJSON *rpc_error_response(const cJSON *id, int code, const char *message) {
  cJSON *o = envelope(id), *e, *data;
  const char *name = rpc_error_name(code), *hint = rpc_error_hint(code);
  if (!o) return NULL;
  if (!(e = cJSON_AddObjectToObject(o, "error")) || !cJSON_AddNumberToObject(e, "code", code) ||
      !cJSON_AddStringToObject(e, "message", message)) {
    cJSON_Delete(o);
    return NULL;
  }
  if (name) {
    if (!(data = cJSON_AddObjectToObject(e, "data")) || !cJSON_AddStringToObject(data, "error", name) ||
        !cJSON_AddStringToObject(data, "hint", hint)) {
      cJSON_Delete(o);
      return NULL;
    }
  }
  return o;
}

cJSON *rpc_notification(const char *method, cJSON *params) {
  cJSON *o = cJSON_CreateObject();
  if (!o || !cJSON_AddStringToObject(o, "jsonrpc", "2.0") || !cJSON_AddStringToObject(o, "method", method)) {
    cJSON_Delete(o);
    cJSON_Delete(params);
    return NULL;
  }
  cJSON_AddItemToObject(o, "params", params ? params : cJSON_CreateObject());
  return o;
}

/* 1 if id is an acceptable request id. */
static int id_ok(const cJSON *id) {
  if (cJSON_IsNull(id)) return 1;
  if (cJSON_IsString(id)) {
    size_t l = strlen(id->valuestring);
    return l <= RPC_MAX_ID && utf8_valid(id->valuestring, l);
  }
  if (cJSON_IsNumber(id)) {
    double d = id->valuedouble;
    /* Range first: converting a larger double (or NaN) to int64_t is undefined. */
    return d <= RPC_MAX_SAFE_INT && d >= -RPC_MAX_SAFE_INT && d == (double)(int64_t)d;
  }
  return 0;
}

static int only_space(const char *p, const char *end) {
  for (; p < end; p++)
    if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n') return 0;
  return 1;
}

/* 1 if a JSON string in line holds the escape \u0000: cJSON would cut the
 * string there, so "a\u0000b" would silently become "a". Refused instead. */
static int escaped_nul(const char *p, size_t n) {
  size_t i;
  int in_str = 0;
  for (i = 0; i < n; i++) {
    if (!in_str) {
      if (p[i] == '"') in_str = 1;
      continue;
    }
    if (p[i] == '"') {
      in_str = 0;
    } else if (p[i] == '\\' && i + 1 < n) {
      if (p[i + 1] == 'u' && i + 5 < n && memcmp(p + i + 2, "0000", 4) == 0) return 1;
      i++; /* the escaped character (the hex digits of \uXXXX cannot be '"' or '\\') */
    }
  }
  return 0;
}

cJSON *rpc_handle(const struct rpc_table *t, void *session, const char *line, size_t len, int *nomem) {
  cJSON *req, *resp = NULL, *result = NULL;
  const cJSON *id, *ver, *method, *params;
  const char *end = NULL;
  struct rpc_error err;
  cJSON *empty = NULL;
  size_t i;
  int rc;

  *nomem = 0;
  if (len > RPC_MAX_LINE) return rpc_error_response(NULL, RPC_E_INVALID, "request line too long");
  if (memchr(line, 0, len)) return rpc_error_response(NULL, RPC_E_PARSE, "parse error: NUL byte in the line");
  req = cJSON_ParseWithLengthOpts(line, len, &end, 0);
  if (!req || !end || !only_space(end, line + len)) {
    cJSON_Delete(req);
    if (only_space(line, line + len)) return rpc_error_response(NULL, RPC_E_PARSE, "parse error: empty line");
    return rpc_error_response(NULL, RPC_E_PARSE, "parse error: the line is not one valid JSON value");
  }
  if (cJSON_IsArray(req)) {
    cJSON_Delete(req);
    return rpc_error_response(NULL, RPC_E_INVALID,
                              "batch requests are not supported: send one object per line");
  }
  if (!cJSON_IsObject(req)) {
    cJSON_Delete(req);
    return rpc_error_response(NULL, RPC_E_INVALID, "invalid request: not a JSON object");
  }
  id = cJSON_GetObjectItemCaseSensitive(req, "id");
  if (id && !id_ok(id)) {
    resp = rpc_error_response(NULL, RPC_E_INVALID,
                              "invalid request: id must be a string (at most 128 bytes), an integer or null");
    goto out;
  }
  if (escaped_nul(line, len)) {
    resp = rpc_error_response(id, RPC_E_INVALID, "invalid request: a string holds U+0000 (\\u0000)");
    goto out;
  }
  ver = cJSON_GetObjectItemCaseSensitive(req, "jsonrpc");
  if (!cJSON_IsString(ver) || strcmp(ver->valuestring, "2.0") != 0) {
    resp = rpc_error_response(id, RPC_E_INVALID, "invalid request: \"jsonrpc\" must be \"2.0\"");
    goto out;
  }
  method = cJSON_GetObjectItemCaseSensitive(req, "method");
  if (!cJSON_IsString(method)) {
    resp = rpc_error_response(id, RPC_E_INVALID, "invalid request: \"method\" must be a string");
    goto out;
  }
  for (i = 0; i < t->n; i++)
    if (strcmp(t->methods[i].name, method->valuestring) == 0) break;
  if (i == t->n) {
    char msg[160];
    char shown[64];
    utf8_sanitize(shown, sizeof shown, method->valuestring, strlen(method->valuestring), 0);
    snprintf(msg, sizeof msg, "method not found: '%s'", shown);
    if (id) resp = rpc_error_response(id, RPC_E_METHOD, msg);
    goto out;
  }
  params = cJSON_GetObjectItemCaseSensitive(req, "params");
  if (params && !cJSON_IsObject(params)) {
    if (id)
      resp = rpc_error_response(id, RPC_E_PARAMS,
                                cJSON_IsArray(params)
                                    ? "invalid params: use named parameters (an object), not an array"
                                    : "invalid params: params must be an object");
    goto out;
  }
  if (!params && !(params = empty = cJSON_CreateObject())) {
    *nomem = 1;
    goto out;
  }
  memset(&err, 0, sizeof err);
  rc = t->methods[i].fn(t->ud, session, params, &result, &err);
  if (!id) {
    cJSON_Delete(result);
    goto out;
  }
  if (rc) {
    if (!err.code) err.code = RPC_E_INTERNAL;
    if (!err.message[0]) snprintf(err.message, sizeof err.message, "%s", "internal error");
    resp = rpc_error_response(id, err.code, err.message);
    if (resp && err.core[0]) {
      cJSON *data = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(resp, "error"), "data");
      if (data) cJSON_AddStringToObject(data, "core", err.core);
    }
  } else if ((resp = envelope(id))) {
    cJSON_AddItemToObject(resp, "result", result ? result : cJSON_CreateNull());
    result = NULL;
  }
  cJSON_Delete(result);
out:
  if (!resp && id) *nomem = 1;
  cJSON_Delete(empty);
  cJSON_Delete(req);
  return resp;
}

int rpc_only(const cJSON *params, const char *const *allowed, struct rpc_error *err) {
  const cJSON *m;
  size_t i;
  cJSON_ArrayForEach(m, params) {
    for (i = 0; allowed[i]; i++)
      if (strcmp(allowed[i], m->string) == 0) break;
    if (!allowed[i]) {
      char shown[64];
      utf8_sanitize(shown, sizeof shown, m->string, strlen(m->string), 0);
      return rpc_fail(err, RPC_E_PARAMS, "invalid params: unknown parameter '%s'", shown);
    }
  }
  return 0;
}

static int str_ok(const cJSON *v, const char *name, size_t max, struct rpc_error *err) {
  size_t l;
  if (!cJSON_IsString(v)) return rpc_fail(err, RPC_E_PARAMS, "invalid params: '%s' must be a string", name);
  l = strlen(v->valuestring);
  if (l > max) return rpc_fail(err, RPC_E_PARAMS, "invalid params: '%s' is longer than %zu bytes", name, max);
  if (!utf8_valid(v->valuestring, l))
    return rpc_fail(err, RPC_E_PARAMS, "invalid params: '%s' is not valid UTF-8", name);
  return 0;
}

int rpc_str(const cJSON *params, const char *name, int required, size_t max, const char **out,
            struct rpc_error *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);
  *out = NULL;
  if (!v || cJSON_IsNull(v)) {
    if (required) return rpc_fail(err, RPC_E_PARAMS, "invalid params: '%s' is required", name);
    return 0;
  }
  if (str_ok(v, name, max, err)) return RPC_E_PARAMS;
  *out = v->valuestring;
  return 0;
}

int rpc_int(const cJSON *params, const char *name, int required, int64_t min, int64_t max, int64_t dflt,
            int64_t *out, struct rpc_error *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);
  double d;
  *out = dflt;
  if (!v || cJSON_IsNull(v)) {
    if (required) return rpc_fail(err, RPC_E_PARAMS, "invalid params: '%s' is required", name);
    return 0;
  }
  if (!cJSON_IsNumber(v)) return rpc_fail(err, RPC_E_PARAMS, "invalid params: '%s' must be a number", name);
  d = v->valuedouble;
  if (!(d >= (double)min && d <= (double)max) || d != (double)(int64_t)d)
    return rpc_fail(err, RPC_E_PARAMS, "invalid params: '%s' must be an integer in %lld..%lld", name,
                    (long long)min, (long long)max);
  *out = (int64_t)d;
  return 0;
}

int rpc_bool(const cJSON *params, const char *name, int dflt, int *out, struct rpc_error *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);
  *out = dflt;
  if (!v || cJSON_IsNull(v)) return 0;
  if (!cJSON_IsBool(v))
    return rpc_fail(err, RPC_E_PARAMS, "invalid params: '%s' must be true or false", name);
  *out = cJSON_IsTrue(v);
  return 0;
}

int rpc_strs(const cJSON *params, const char *name, int required, size_t max, const char ***out, size_t *n,
             struct rpc_error *err) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name), *e;
  const char **list;
  size_t k = 0;
  *out = NULL;
  *n = 0;
  if (!v || cJSON_IsNull(v)) {
    if (required) return rpc_fail(err, RPC_E_PARAMS, "invalid params: '%s' is required", name);
    return 0;
  }
  if (cJSON_IsString(v)) {
    if (str_ok(v, name, max, err)) return RPC_E_PARAMS;
    if (!(list = malloc(sizeof *list))) return rpc_fail(err, RPC_APP_NOMEM, "out of memory");
    list[0] = v->valuestring;
    *out = list;
    *n = 1;
    return 0;
  }
  if (!cJSON_IsArray(v))
    return rpc_fail(err, RPC_E_PARAMS, "invalid params: '%s' must be an array of strings", name);
  if ((size_t)cJSON_GetArraySize(v) > RPC_MAX_ARRAY)
    return rpc_fail(err, RPC_E_PARAMS, "invalid params: '%s' has more than %d entries", name, RPC_MAX_ARRAY);
  if (!(list = calloc((size_t)cJSON_GetArraySize(v) + 1, sizeof *list)))
    return rpc_fail(err, RPC_APP_NOMEM, "out of memory");
  cJSON_ArrayForEach(e, v) {
    if (str_ok(e, name, max, err)) {
      free(list);
      return RPC_E_PARAMS;
    }
    list[k++] = e->valuestring;
  }
  *out = list;
  *n = k;
  return 0;
}

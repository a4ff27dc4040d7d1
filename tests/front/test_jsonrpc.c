/* SPDX-License-Identifier: Apache-2.0 */
/* test_jsonrpc.c: the JSON-RPC 2.0 layer (client/daemon/jsonrpc.c), the
 * bounded line reader and output queue (lineio.c) and strict UTF-8
 * (client/front/utf8.c), without a daemon. */
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "jsonrpc.h"
#include "lineio.h"
#include "testutil.h"

/* REQUIRE for void functions: stops the current test function. */
#define NEED(x)       \
  do {                \
    int ok_ = !!(x);  \
    CHECK(ok_ &&#x);  \
    if (!ok_) return; \
  } while (0)
#include "utf8.h"

static int calls;

static int m_echo(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  static const char *const allowed[] = {"message", "n", NULL};
  const char *msg;
  int64_t n;
  (void)ud;
  (void)session;
  calls++;
  if (rpc_only(params, allowed, err) || rpc_str(params, "message", 1, 16, &msg, err) ||
      rpc_int(params, "n", 0, 0, 10, 3, &n, err))
    return err->code;
  *result = cJSON_CreateObject();
  cJSON_AddStringToObject(*result, "message", msg);
  cJSON_AddNumberToObject(*result, "n", (double)n);
  return 0;
}

static int m_fail(void *ud, void *session, const cJSON *params, cJSON **result, struct rpc_error *err) {
  (void)ud, (void)session, (void)params, (void)result;
  calls++;
  return rpc_fail(err, RPC_APP_NOT_FOUND, "no contact named '%s'", "zed");
}

static const struct rpc_method methods[] = {{"echo", m_echo}, {"fail", m_fail}};
static const struct rpc_table table = {methods, 2, NULL};

/* Runs one line; returns the error code of the answer (0 for a result, 1
 * for no answer) and the printed answer in out. */
static int run(const char *line, char *out, size_t cap) {
  int nomem = 0, code = 0;
  cJSON *r = rpc_handle(&table, NULL, line, strlen(line), &nomem);
  char *s;
  out[0] = 0;
  if (!r) return nomem ? -1 : 1;
  s = cJSON_PrintUnformatted(r);
  snprintf(out, cap, "%s", s);
  free(s);
  if (cJSON_GetObjectItem(r, "error"))
    code = (int)cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "code")->valuedouble;
  cJSON_Delete(r);
  return code;
}

static void test_dispatch(void) {
  char out[1024];
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"message\":\"hi\"},\"id\":1}", out,
            sizeof out) == 0);
  CHECK(strcmp(out, "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"message\":\"hi\",\"n\":3}}") == 0);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"message\":\"hi\",\"n\":7},\"id\":\"abc\"}"
            "  ",
            out, sizeof out) == 0);
  CHECK(strstr(out, "\"id\":\"abc\"") && strstr(out, "\"n\":7"));
  /* parse errors: id null */
  CHECK(run("{\"jsonrpc\":\"2.0\",", out, sizeof out) == RPC_E_PARSE);
  CHECK(strstr(out, "\"id\":null") != NULL);
  CHECK(run("", out, sizeof out) == RPC_E_PARSE);
  CHECK(run("{} {}", out, sizeof out) == RPC_E_PARSE);
  CHECK(run("nul", out, sizeof out) == RPC_E_PARSE);
  /* invalid requests */
  CHECK(run("[{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1}]", out, sizeof out) == RPC_E_INVALID);
  CHECK(strstr(out, "batch") != NULL);
  CHECK(run("[]", out, sizeof out) == RPC_E_INVALID);
  CHECK(run("42", out, sizeof out) == RPC_E_INVALID);
  CHECK(run("{\"method\":\"echo\",\"id\":1}", out, sizeof out) == RPC_E_INVALID);
  CHECK(strstr(out, "\"id\":1") != NULL);
  CHECK(run("{\"jsonrpc\":\"1.0\",\"method\":\"echo\",\"id\":1}", out, sizeof out) == RPC_E_INVALID);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":1}", out, sizeof out) == RPC_E_INVALID);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":{}}", out, sizeof out) == RPC_E_INVALID);
  CHECK(strstr(out, "\"id\":null") != NULL);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1.5}", out, sizeof out) == RPC_E_INVALID);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":true}", out, sizeof out) == RPC_E_INVALID);
  /* an id beyond 2^53 (found by fuzz_jsonrpc: the check converted it to int64_t first) */
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":1e300}", out, sizeof out) == RPC_E_INVALID);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":-9007199254740994}", out, sizeof out) == RPC_E_INVALID);
  /* an invalid request without id is still answered (id null) */
  CHECK(run("{\"jsonrpc\":\"2.0\"}", out, sizeof out) == RPC_E_INVALID);
  /* methods and params */
  calls = 0;
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"nope\",\"id\":2}", out, sizeof out) == RPC_E_METHOD);
  CHECK(strstr(out, "method_not_found") != NULL);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":[\"hi\"],\"id\":3}", out, sizeof out) ==
        RPC_E_PARAMS);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":\"x\",\"id\":3}", out, sizeof out) ==
        RPC_E_PARAMS);
  CHECK(calls == 0);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"id\":4}", out, sizeof out) == RPC_E_PARAMS);
  CHECK(strstr(out, "'message' is required") != NULL);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"message\":1},\"id\":4}", out,
            sizeof out) == RPC_E_PARAMS);
  CHECK(
      run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"message\":\"0123456789abcdefX\"},\"id\":4}",
          out, sizeof out) == RPC_E_PARAMS);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"message\":\"a\",\"n\":11},\"id\":4}", out,
            sizeof out) == RPC_E_PARAMS);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"message\":\"a\",\"n\":1.5},\"id\":4}",
            out, sizeof out) == RPC_E_PARAMS);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"message\":\"a\",\"mesage\":\"b\"},\"id\":"
            "4}",
            out, sizeof out) == RPC_E_PARAMS);
  CHECK(strstr(out, "unknown parameter 'mesage'") != NULL);
  /* invalid UTF-8 in a string parameter (\xff is not JSON-escaped by cJSON's parser) */
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"message\":\"a\xff\"},\"id\":4}", out,
            sizeof out) == RPC_E_PARAMS);
  /* a NUL escaped in a string would cut it: refused, with the request's id */
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"message\":\"a\\u0000b\"},\"id\":9}", out,
            sizeof out) == RPC_E_INVALID);
  CHECK(strstr(out, "\"id\":9") != NULL);
  /* ... but an escaped backslash before "u0000" is just text */
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"message\":\"a\\\\u0000b\"},\"id\":9}",
            out, sizeof out) == 0);
  CHECK(strstr(out, "a\\\\u0000b") != NULL);
  /* application errors carry data.error and data.hint */
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"fail\",\"id\":5}", out, sizeof out) == RPC_APP_NOT_FOUND);
  CHECK(strstr(out, "\"error\":\"not_found\"") && strstr(out, "no contact named 'zed'") &&
        strstr(out, "hint"));
  /* notifications: run, never answered (even when failing or unknown) */
  calls = 0;
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"echo\",\"params\":{\"message\":\"hi\"}}", out, sizeof out) ==
        1);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"fail\"}", out, sizeof out) == 1);
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}", out, sizeof out) == 1);
  CHECK(calls == 2);
  /* a control character in an unknown method name is not echoed raw */
  CHECK(run("{\"jsonrpc\":\"2.0\",\"method\":\"a\\u001b[2Jb\",\"id\":6}", out, sizeof out) == RPC_E_METHOD);
  CHECK(strstr(out, "\\u001b") == NULL);
  /* a NUL byte inside the line */
  {
    int nomem;
    cJSON *r = rpc_handle(&table, NULL, "{\"a\"\0}", 6, &nomem);
    CHECK(r && (int)cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "code")->valuedouble == RPC_E_PARSE);
    cJSON_Delete(r);
  }
  /* deep nesting is refused by the parser, not a crash */
  {
    size_t n = 100000, i;
    char *deep = malloc(n + 1);
    for (i = 0; i < n; i++) deep[i] = '[';
    deep[n] = 0;
    CHECK(run(deep, out, sizeof out) == RPC_E_PARSE);
    free(deep);
  }
}

struct lines {
  int n, overlong;
  char last[64];
};

static int on_line(void *ud, const char *line, size_t len) {
  struct lines *l = ud;
  if (!line) {
    l->overlong++;
    return 0;
  }
  l->n++;
  snprintf(l->last, sizeof l->last, "%.*s", (int)(len < 60 ? len : 60), line);
  return 0;
}

static void test_lineio(void) {
  struct line_in li = {0};
  struct line_out lo = {0};
  struct lines got = {0};
  size_t used, i;
  char *big;
  int p[2];
  /* lines split across feeds, CRLF */
  CHECK(line_in_feed(&li, "ab", 2, &used, on_line, &got) == 0 && got.n == 0 && used == 2);
  CHECK(line_in_feed(&li, "c\r\nde\nf", 7, &used, on_line, &got) == 0 && got.n == 2);
  CHECK(strcmp(got.last, "de") == 0);
  CHECK(line_in_feed(&li, "\n", 1, &used, on_line, &got) == 0 && got.n == 3 && strcmp(got.last, "f") == 0);
  /* an overlong line: reported once, skipped to its newline, next line fine */
  big = malloc(RPC_MAX_LINE + 100);
  memset(big, 'x', RPC_MAX_LINE + 100);
  CHECK(line_in_feed(&li, big, RPC_MAX_LINE + 100, &used, on_line, &got) == 0);
  CHECK(line_in_feed(&li, big, 1000, &used, on_line, &got) == 0);
  CHECK(got.overlong == 1 && got.n == 3);
  CHECK(line_in_feed(&li, "x\nok\n", 5, &used, on_line, &got) == 0);
  CHECK(got.overlong == 1 && got.n == 4 && strcmp(got.last, "ok") == 0);
  /* exactly RPC_MAX_LINE is accepted */
  big[RPC_MAX_LINE] = '\n';
  CHECK(line_in_feed(&li, big, RPC_MAX_LINE + 1, &used, on_line, &got) == 0 && got.n == 5 &&
        got.overlong == 1);
  free(big);
  line_in_free(&li);

  /* output queue: capped */
  lo.max = 1000;
  for (i = 0; i < 99; i++) CHECK(line_out_push(&lo, "123456789", 9) == 0);
  CHECK(line_out_pending(&lo) == 990);
  CHECK(line_out_push(&lo, "123456789", 10) == -1); /* 11 more would pass 1000 */
  CHECK(line_out_push(&lo, "12345678", 9) == 0);    /* exactly 1000 */
  CHECK(line_out_push(&lo, "", 0) == -1);
  NEED(pipe(p) == 0);
  fcntl(p[1], F_SETFL, O_NONBLOCK);
  CHECK(line_out_flush(&lo, p[1]) == 0 && line_out_pending(&lo) == 0);
  {
    char rd[1100];
    ssize_t r = read(p[0], rd, sizeof rd);
    CHECK(r == 1000 && rd[9] == '\n' && rd[999] == '\n');
  }
  /* a reader that does not read: the pipe fills, the queue keeps the rest,
   * and the cap is what stops it */
  lo.max = 4u << 20;
  {
    char chunk[4096];
    int full = 0, over = 0;
    memset(chunk, 'y', sizeof chunk);
    for (i = 0; i < 2000 && !over; i++) {
      if (line_out_push(&lo, chunk, sizeof chunk) != 0) over = 1;
      if (line_out_flush(&lo, p[1]) == 1) full = 1;
    }
    CHECK(full && over);
    CHECK(line_out_pending(&lo) <= (4u << 20));
  }
  close(p[0]);
  CHECK(line_out_flush(&lo, p[1]) == -1); /* EPIPE (SIGPIPE ignored below) */
  close(p[1]);
  line_out_free(&lo);
}

static void test_utf8(void) {
  char out[64];
  uint32_t cp;
  CHECK(utf8_valid("h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80", 15));
  CHECK(!utf8_valid("\xc0\xaf", 2));         /* overlong */
  CHECK(!utf8_valid("\xed\xa0\x80", 3));     /* surrogate */
  CHECK(!utf8_valid("\xf4\x90\x80\x80", 4)); /* above U+10FFFF */
  CHECK(!utf8_valid("\xe2\x82", 2));         /* truncated */
  CHECK(!utf8_valid("a\0b", 3));
  CHECK(utf8_decode("\xe2\x82\xac", 3, &cp) == 3 && cp == 0x20AC);
  /* ESC, CSI (C1), BEL, bidi override become U+FFFD; tabs become spaces */
  utf8_sanitize(out, sizeof out, "a\x1b[2Jb\xc2\x9b\x07\xe2\x80\xae\tz", 14, 0);
  CHECK(strcmp(out, "a\xef\xbf\xbd[2Jb\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd z") == 0);
  utf8_sanitize(out, sizeof out, "a\nb\xff", 4, 1);
  CHECK(strcmp(out, "a\nb\xef\xbf\xbd") == 0);
  /* cut on a whole code point */
  utf8_sanitize(out, 5, "ab\xe2\x82\xac", 5, 0);
  CHECK(strcmp(out, "ab") == 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  test_dispatch();
  test_lineio();
  test_utf8();
  return test_done("front_jsonrpc");
}

/* Unit tests for the pure helpers of net/http and app/server: media types,
 * reason phrases, listen addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "app/server.h"
#include "net/http.h"

static void test_json_type(void **state)
{
    (void)state;
    assert_true(http_is_json_type("application/json"));
    assert_true(http_is_json_type("application/json; charset=utf-8"));
    assert_true(http_is_json_type("  Application/JSON;charset=UTF-8"));
    assert_true(http_is_json_type("application/json ; x=y"));
    assert_false(http_is_json_type(NULL));
    assert_false(http_is_json_type(""));
    assert_false(http_is_json_type("text/plain"));
    assert_false(http_is_json_type("application/jsonp"));
    assert_false(http_is_json_type("application/json-patch+json"));
    assert_false(http_is_json_type("multipart/form-data; boundary=application/json"));
}

static void test_reasons(void **state)
{
    (void)state;
    assert_string_equal(http_reason(200), "OK");
    assert_string_equal(http_reason(202), "Accepted");
    assert_string_equal(http_reason(405), "Method Not Allowed");
    assert_string_equal(http_reason(409), "Conflict");
    assert_string_equal(http_reason(413), "Payload Too Large");
    assert_string_equal(http_reason(415), "Unsupported Media Type");
    assert_string_equal(http_reason(429), "Too Many Requests");
    assert_string_equal(http_reason(503), "Service Unavailable");
    assert_string_equal(http_reason(299), "Unknown");
}

static void test_parse_listen(void **state)
{
    (void)state;
    char host[64], err[128];
    int port = -1;
    assert_int_equal(
        server_parse_listen("127.0.0.1:8080", host, sizeof host, &port, err, sizeof err), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 8080);
    assert_int_equal(server_parse_listen("[::1]:0", host, sizeof host, &port, err, sizeof err), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 0);
    assert_int_equal(
        server_parse_listen("localhost:65535", host, sizeof host, &port, err, sizeof err), 0);
    assert_string_equal(host, "localhost");
    static const char *const bad[] = {"8080",    ":8080", "host:",   "host:x", "host:65536",
                                      "host:-1", "[::1]", "[::1:80", "[]:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(server_parse_listen(bad[i], host, sizeof host, &port, err, sizeof err),
                         -1);
        char want[128];
        snprintf(want, sizeof want, "listen address '%s' is not HOST:PORT", bad[i]);
        assert_string_equal(err, want);
    }
}

static void test_loopback(void **state)
{
    (void)state;
    assert_true(server_is_loopback("127.0.0.1"));
    assert_true(server_is_loopback("127.1.2.3"));
    assert_true(server_is_loopback("::1"));
    assert_false(server_is_loopback("0.0.0.0"));
    assert_false(server_is_loopback("::"));
    assert_false(server_is_loopback("10.1.2.3"));
    assert_false(server_is_loopback("no such host name.invalid"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_type),
        cmocka_unit_test(test_reasons),
        cmocka_unit_test(test_parse_listen),
        cmocka_unit_test(test_loopback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

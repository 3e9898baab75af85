/* Unit tests for engine/mcp_config: reading "mcpServers", and the exact
 * error for each malformed entry. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "engine/mcp_config.h"

static int parse(const char *json, mcp_server_config **out, size_t *n, char *err, size_t errlen)
{
    json_error_t je;
    json_t *v = json_loads(json, JSON_DECODE_ANY, &je);
    if (!v) fail_msg("bad test JSON: %s", je.text);
    int rc = mcp_config_parse(v, out, n, err, errlen);
    json_decref(v);
    return rc;
}

static void test_full_entry(void **state)
{
    (void)state;
    mcp_server_config *c;
    size_t n;
    char err[256] = "";
    assert_int_equal(
        parse("{\"fs\": {\"command\": \"npx\", \"args\": [\"-y\", \"server\", \"/tmp\"],"
              " \"env\": {\"A\": \"1\", \"B\": \"\"}, \"timeout_seconds\": 2.5,"
              " \"type\": \"stdio\"},"
              " \"off\": {\"command\": \"x\", \"disabled\": true}}",
              &c, &n, err, sizeof err),
        0);
    assert_int_equal(n, 2);
    assert_string_equal(c[0].name, "fs");
    assert_string_equal(c[0].command, "npx");
    /* argv[0] is the command itself. */
    assert_string_equal(c[0].args[0], "npx");
    assert_string_equal(c[0].args[1], "-y");
    assert_string_equal(c[0].args[3], "/tmp");
    assert_null(c[0].args[4]);
    assert_string_equal(c[0].env[0], "A=1");
    assert_string_equal(c[0].env[1], "B=");
    assert_null(c[0].env[2]);
    assert_int_equal(c[0].timeout_ms, 2500);
    assert_false(c[0].disabled);
    assert_string_equal(c[1].name, "off");
    assert_int_equal(c[1].timeout_ms, MCP_DEFAULT_TIMEOUT_MS);
    assert_null(c[1].args[1]);
    assert_null(c[1].env[0]);
    assert_true(c[1].disabled);
    mcp_config_free(c, n);
}

static void test_absent_is_empty(void **state)
{
    (void)state;
    mcp_server_config *c = (mcp_server_config *)1;
    size_t n = 7;
    char err[64];
    assert_int_equal(mcp_config_parse(NULL, &c, &n, err, sizeof err), 0);
    assert_null(c);
    assert_int_equal(n, 0);
    assert_int_equal(parse("{}", &c, &n, err, sizeof err), 0);
    assert_int_equal(n, 0);
    mcp_config_free(c, n);
}

static void expect_error(const char *json, const char *want)
{
    mcp_server_config *c = NULL;
    size_t n = 0;
    char err[256] = "";
    assert_int_equal(parse(json, &c, &n, err, sizeof err), -1);
    assert_null(c);
    assert_string_equal(err, want);
}

static void test_errors_name_the_key(void **state)
{
    (void)state;
    expect_error("[]", "config key 'mcpServers' must be an object");
    expect_error("{\"\": {\"command\": \"x\"}}",
                 "config key 'mcpServers' has a server with an empty name");
    expect_error("{\"fs\": \"npx\"}", "config key 'mcpServers.fs' must be an object");
    expect_error("{\"fs\": {}}", "config key 'mcpServers.fs.command' is missing");
    expect_error("{\"fs\": {\"command\": [\"npx\"]}}",
                 "config key 'mcpServers.fs.command' must be a non-empty string");
    expect_error("{\"fs\": {\"command\": \"\"}}",
                 "config key 'mcpServers.fs.command' must be a non-empty string");
    expect_error("{\"fs\": {\"command\": \"x\", \"args\": \"-y\"}}",
                 "config key 'mcpServers.fs.args' must be an array of strings");
    expect_error("{\"fs\": {\"command\": \"x\", \"args\": [\"a\", 1]}}",
                 "config key 'mcpServers.fs.args' must be an array of strings");
    expect_error("{\"fs\": {\"command\": \"x\", \"env\": [\"A=1\"]}}",
                 "config key 'mcpServers.fs.env' must be an object of strings");
    expect_error("{\"fs\": {\"command\": \"x\", \"env\": {\"A\": 1}}}",
                 "config key 'mcpServers.fs.env.A' must be a string");
    expect_error("{\"fs\": {\"command\": \"x\", \"env\": {\"A=B\": \"1\"}}}",
                 "config key 'mcpServers.fs.env' has 'A=B', which is not a variable name");
    expect_error("{\"fs\": {\"command\": \"x\", \"timeout_seconds\": 0}}",
                 "config key 'mcpServers.fs.timeout_seconds' must be a number of seconds above "
                 "0 and at most 86400");
    expect_error("{\"fs\": {\"command\": \"x\", \"timeout_seconds\": \"60\"}}",
                 "config key 'mcpServers.fs.timeout_seconds' must be a number of seconds above "
                 "0 and at most 86400");
    expect_error("{\"fs\": {\"command\": \"x\", \"timeout_seconds\": 86401}}",
                 "config key 'mcpServers.fs.timeout_seconds' must be a number of seconds above "
                 "0 and at most 86400");
    expect_error("{\"fs\": {\"command\": \"x\", \"type\": \"sse\"}}",
                 "config key 'mcpServers.fs.type' must be \"stdio\" (the only transport "
                 "supported)");
    expect_error("{\"fs\": {\"command\": \"x\", \"disabled\": \"yes\"}}",
                 "config key 'mcpServers.fs.disabled' must be true or false");
    expect_error("{\"fs\": {\"command\": \"x\", \"url\": \"http://x\"}}",
                 "unknown config key 'mcpServers.fs.url'");
    /* A later server's error frees the earlier ones (checked under ASan). */
    expect_error("{\"a\": {\"command\": \"x\", \"args\": [\"1\"]}, \"b\": {}}",
                 "config key 'mcpServers.b.command' is missing");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_entry),
        cmocka_unit_test(test_absent_is_empty),
        cmocka_unit_test(test_errors_name_the_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

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
#include "lib/redact.h"

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
    expect_error("{\"fs\": {}}",
                 "config key 'mcpServers.fs.command' is missing (or 'url', for a remote server)");
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
                 "config key 'mcpServers.fs.type' must be \"stdio\" for a server with a command");
    expect_error("{\"fs\": {\"command\": \"x\", \"disabled\": \"yes\"}}",
                 "config key 'mcpServers.fs.disabled' must be true or false");
    expect_error("{\"fs\": {\"command\": \"x\", \"url\": \"http://x\"}}",
                 "config key 'mcpServers.fs' has both 'command' (a local server) and 'url' (a "
                 "remote one)");
    expect_error("{\"fs\": {\"command\": \"x\", \"headers\": {}}}",
                 "unknown config key 'mcpServers.fs.headers' (only for a server with a url)");
    /* A later server's error frees the earlier ones (checked under ASan). */
    expect_error("{\"a\": {\"command\": \"x\", \"args\": [\"1\"]}, \"b\": {}}",
                 "config key 'mcpServers.b.command' is missing (or 'url', for a remote server)");
}

static void test_remote_entry(void **state)
{
    (void)state;
    mcp_server_config *c;
    size_t n;
    char err[256] = "";
    setenv("CP_TEST_TOKEN", "tok-S3CR3T-value-42", 1);
    setenv("CP_TEST_HOST", "127.0.0.1:9", 1);
    assert_int_equal(parse("{\"search\": {\"url\": \"http://${CP_TEST_HOST}/mcp?a=$b\","
                           " \"headers\": {\"Authorization\": \"Bearer ${CP_TEST_TOKEN}\","
                           " \"X-Plain\": \"v\"}, \"timeout_seconds\": 3},"
                           " \"insecure\": {\"url\": \"https://h/mcp\", \"type\": \"http\","
                           " \"tls_verify\": false},"
                           " \"older\": {\"url\": \"http://h/sse\", \"type\": \"sse\"}}",
                           &c, &n, err, sizeof err),
                     0);
    assert_int_equal(n, 3);
    assert_int_equal(c[2].transport, MCP_TRANSPORT_SSE);
    assert_string_equal(c[2].url, "http://h/sse");
    assert_int_equal(c[0].transport, MCP_TRANSPORT_HTTP);
    assert_string_equal(mcp_config_transport_name(c[0].transport), "http");
    /* A '$' without a brace is kept as it is. */
    assert_string_equal(c[0].url, "http://127.0.0.1:9/mcp?a=$b");
    assert_string_equal(c[0].headers[0], "Authorization: Bearer tok-S3CR3T-value-42");
    assert_string_equal(c[0].headers[1], "X-Plain: v");
    assert_null(c[0].headers[2]);
    assert_null(c[0].command);
    assert_true(c[0].tls_verify);
    assert_int_equal(c[0].timeout_ms, 3000);
    assert_string_equal(c[1].url, "https://h/mcp");
    assert_null(c[1].headers[0]);
    assert_false(c[1].tls_verify);
    assert_string_equal(mcp_config_transport_name(MCP_TRANSPORT_STDIO), "stdio");
    assert_string_equal(mcp_config_transport_name(MCP_TRANSPORT_SSE), "sse");

    /* The header values become secrets: the whole value and its token. */
    redact_reset();
    mcp_config_register_secrets(&c[0]);
    const char *text = "denied: tok-S3CR3T-value-42 was refused";
    char *r = redact_string(text, strlen(text), NULL);
    /* The space before the token is part of the registered value too. */
    assert_string_equal(r, "denied:" REDACT_MARK " was refused");
    free(r);
    redact_reset();
    mcp_config_free(c, n);
}

static void test_remote_errors(void **state)
{
    (void)state;
    unsetenv("CP_TEST_UNSET");
    setenv("CP_TEST_CRLF", "a\r\nX-Evil: 1", 1);
    expect_error("{\"s\": {\"url\": \"\"}}",
                 "config key 'mcpServers.s.url' must be a non-empty string");
    expect_error("{\"s\": {\"url\": 5}}",
                 "config key 'mcpServers.s.url' must be a non-empty string");
    expect_error("{\"s\": {\"url\": \"ftp://h/\"}}",
                 "config key 'mcpServers.s.url' must be an http:// or https:// URL");
    expect_error("{\"s\": {\"url\": \"http://h/${CP_TEST_UNSET}\"}}",
                 "config key 'mcpServers.s.url' names the environment variable 'CP_TEST_UNSET', "
                 "which is not set");
    expect_error("{\"s\": {\"url\": \"http://h/${CP_TEST_UNSET\"}}",
                 "config key 'mcpServers.s.url' has a '${' that is not a variable reference like "
                 "${NAME}");
    expect_error("{\"s\": {\"url\": \"http://h/${}\"}}",
                 "config key 'mcpServers.s.url' has a '${' that is not a variable reference like "
                 "${NAME}");
    expect_error("{\"s\": {\"url\": \"http://h/ x\"}}",
                 "config key 'mcpServers.s.url' must not contain spaces or line breaks");
    expect_error("{\"s\": {\"url\": \"http://h/\", \"headers\": {\"A\": \"${CP_TEST_UNSET}\"}}}",
                 "config key 'mcpServers.s.headers.A' names the environment variable "
                 "'CP_TEST_UNSET', which is not set");
    expect_error("{\"s\": {\"url\": \"http://h/\", \"headers\": {\"A\": \"${CP_TEST_CRLF}\"}}}",
                 "config key 'mcpServers.s.headers.A' must not contain line breaks");
    expect_error("{\"s\": {\"url\": \"http://h/\", \"headers\": {\"A\": 1}}}",
                 "config key 'mcpServers.s.headers.A' must be a string");
    expect_error("{\"s\": {\"url\": \"http://h/\", \"headers\": [\"A: 1\"]}}",
                 "config key 'mcpServers.s.headers' must be an object of at most 32 strings");
    expect_error("{\"s\": {\"url\": \"http://h/\", \"headers\": {\"Bad Name\": \"1\"}}}",
                 "config key 'mcpServers.s.headers' has 'Bad Name', which is not a header name "
                 "chatplane lets a configuration set");
    expect_error("{\"s\": {\"url\": \"http://h/\", \"headers\": {\"mcp-session-id\": \"1\"}}}",
                 "config key 'mcpServers.s.headers' has 'mcp-session-id', which is not a header "
                 "name chatplane lets a configuration set");
    expect_error("{\"s\": {\"url\": \"http://h/\", \"tls_verify\": \"no\"}}",
                 "config key 'mcpServers.s.tls_verify' must be true or false");
    expect_error(
        "{\"s\": {\"url\": \"http://h/\", \"type\": \"stdio\"}}",
        "config key 'mcpServers.s.type' must be \"http\" or \"sse\" for a server with a url");
    expect_error("{\"s\": {\"url\": \"http://h/\", \"args\": []}}",
                 "unknown config key 'mcpServers.s.args' (only for a server with a command)");
    expect_error("{\"s\": {\"url\": \"http://h/\", \"timeout_seconds\": -1}}",
                 "config key 'mcpServers.s.timeout_seconds' must be a number of seconds above "
                 "0 and at most 86400");
    /* An expansion past the cap is refused. */
    char *big = malloc(MCP_CONFIG_VALUE_MAX + 1);
    memset(big, 'x', MCP_CONFIG_VALUE_MAX);
    big[MCP_CONFIG_VALUE_MAX] = '\0';
    setenv("CP_TEST_BIG", big, 1);
    free(big);
    expect_error("{\"s\": {\"url\": \"http://h/${CP_TEST_BIG}\"}}",
                 "config key 'mcpServers.s.url' is longer than 8192 bytes once expanded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_entry),          cmocka_unit_test(test_absent_is_empty),
        cmocka_unit_test(test_errors_name_the_key), cmocka_unit_test(test_remote_entry),
        cmocka_unit_test(test_remote_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for app/config: precedence, validation and error messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "app/config.h"

/* A fake environment: pairs of name, value, ending with NULL. */
static const char *const *fake_env;

static const char *get_fake(const char *name)
{
    for (const char *const *p = fake_env; p && *p; p += 2)
        if (strcmp(p[0], name) == 0) return p[1];
    return NULL;
}

static const char *get_none(const char *name)
{
    (void)name;
    return NULL;
}

static void test_defaults(void **state)
{
    (void)state;
    config c;
    config_init(&c);
    assert_string_equal(c.listen, "127.0.0.1:8080");
    assert_string_equal(c.db, "sqlite:chatplane.db");
    assert_null(c.llm_base_url);
    assert_int_equal(c.llm_context_tokens, 32000);
    assert_int_equal(c.demo_delay_ms, 25);
    assert_int_equal(c.body_bytes, 1048576);
    assert_int_equal(c.message_bytes, 65536);
    assert_int_equal(c.active_runs, 256);
    assert_int_equal(c.subscriber_buffer_bytes, 8388608);
    assert_false(c.price.set);
    assert_false(c.insecure_no_auth);
    config_cleanup(&c);
}

static void test_file_keys(void **state)
{
    (void)state;
    config c;
    config_init(&c);
    char err[256] = "";
    const char *text = "{\"listen\":\"0.0.0.0:9000\",\"llm\":{\"base_url\":\"http://x/v1\","
                       "\"model\":\"m\",\"context_tokens\":4096,"
                       "\"price_per_mtok\":{\"input\":0.5,\"output\":1.5}},"
                       "\"demo\":{\"delay_ms\":0},\"limits\":{\"active_runs\":3},"
                       "\"mcpServers\":{\"fs\":{\"command\":\"x\"}},\"modes\":{}}";
    assert_int_equal(config_apply_json_text(&c, text, strlen(text), "f.json", err, sizeof err), 0);
    assert_string_equal(c.listen, "0.0.0.0:9000");
    assert_string_equal(c.llm_base_url, "http://x/v1");
    assert_string_equal(c.llm_model, "m");
    assert_int_equal(c.llm_context_tokens, 4096);
    assert_true(c.price.set);
    assert_true(c.price.input_per_mtok == 0.5);
    assert_true(c.price.output_per_mtok == 1.5);
    assert_int_equal(c.demo_delay_ms, 0);
    assert_int_equal(c.active_runs, 3);
    assert_non_null(json_object_get(c.mcp_servers, "fs"));
    config_cleanup(&c);
}

/* cluster.orphan_timeout_seconds: 30 unless the file says otherwise, and
 * only whole seconds from 1 to a day. */
static void test_orphan_timeout(void **state)
{
    (void)state;
    config c;
    config_init(&c);
    assert_int_equal(c.orphan_timeout_s, 30);
    char err[256] = "";
    const char *ok = "{\"cluster\":{\"orphan_timeout_seconds\":3}}";
    assert_int_equal(config_apply_json_text(&c, ok, strlen(ok), "f.json", err, sizeof err), 0);
    assert_int_equal(c.orphan_timeout_s, 3);
    const char *zero = "{\"cluster\":{\"orphan_timeout_seconds\":0}}";
    assert_int_equal(config_apply_json_text(&c, zero, strlen(zero), "f.json", err, sizeof err), -1);
    assert_string_equal(err, "f.json: config key 'cluster.orphan_timeout_seconds' must be a "
                             "whole number from 1 to 86400");
    const char *typo = "{\"cluster\":{\"orphan_timeout\":5}}";
    assert_int_equal(config_apply_json_text(&c, typo, strlen(typo), "f.json", err, sizeof err), -1);
    assert_string_equal(err, "f.json: unknown config key 'cluster.orphan_timeout'");
    assert_int_equal(c.orphan_timeout_s, 3);
    config_cleanup(&c);
}

/* Applies text and expects err (NULL: success). */
static void apply_expect(config *c, const char *text, const char *want_err)
{
    char err[512] = "";
    int rc = config_apply_json_text(c, text, strlen(text), "f.json", err, sizeof err);
    if (!want_err) {
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, -1);
    assert_string_equal(err, want_err);
}

/* store.commit_interval_us: 1000 unless the file says otherwise; 0 turns
 * pacing off; at most a tenth of a second. */
static void test_commit_interval(void **state)
{
    (void)state;
    config c;
    config_init(&c);
    assert_int_equal(c.commit_interval_us, 1000);
    apply_expect(&c, "{\"store\":{\"commit_interval_us\":0}}", NULL);
    assert_int_equal(c.commit_interval_us, 0);
    apply_expect(&c, "{\"store\":{\"commit_interval_us\":100001}}",
                 "f.json: config key 'store.commit_interval_us' must be a whole number from 0 to "
                 "100000");
    assert_int_equal(c.commit_interval_us, 0);
    config_cleanup(&c);
}

/* store.journal_idle_ms: 100 unless the file says otherwise; from a
 * millisecond to a minute, and a value out of range changes nothing. */
static void test_journal_idle(void **state)
{
    (void)state;
    config c;
    config_init(&c);
    assert_int_equal(c.journal_idle_ms, 100);
    apply_expect(&c, "{\"store\":{\"journal_idle_ms\":60000}}", NULL);
    assert_int_equal(c.journal_idle_ms, 60000);
    apply_expect(&c, "{\"store\":{\"journal_idle_ms\":0}}",
                 "f.json: config key 'store.journal_idle_ms' must be a whole number from 1 to "
                 "60000");
    assert_int_equal(c.journal_idle_ms, 60000);
    config_cleanup(&c);
}

static void test_approvals(void **state)
{
    (void)state;
    config c;
    config_init(&c);
    assert_int_equal(c.approval_timeout_s, 900);
    assert_int_equal(c.approval_nrules, 0);
    apply_expect(&c,
                 "{\"approvals\":{\"rules\":[{\"tool\":\"files__read_*\",\"action\":\"allow\"},"
                 "{\"tool\":\"shell__*\",\"action\":\"deny\"}],\"timeout_seconds\":5}}",
                 NULL);
    assert_int_equal(c.approval_timeout_s, 5);
    assert_int_equal(c.approval_nrules, 2);
    assert_string_equal(c.approval_rules[0].pattern, "files__read_*");
    assert_int_equal(c.approval_rules[0].action, APPROVAL_ALLOW);
    assert_string_equal(c.approval_rules[1].pattern, "shell__*");
    assert_int_equal(c.approval_rules[1].action, APPROVAL_DENY);
    /* Each bad rule is named by its index, and nothing of it is applied. */
    apply_expect(&c,
                 "{\"approvals\":{\"rules\":[{\"tool\":\"a\",\"action\":\"ask\"},"
                 "{\"tool\":\"b\",\"action\":\"block\"}]}}",
                 "f.json: config key 'approvals.rules[1]' needs \"action\": \"allow\", \"ask\" or "
                 "\"deny\"");
    apply_expect(&c, "{\"approvals\":{\"rules\":[{\"tool\":\"\",\"action\":\"ask\"}]}}",
                 "f.json: config key 'approvals.rules[0]' needs \"tool\": a glob of 1 to 128 "
                 "characters");
    apply_expect(
        &c, "{\"approvals\":{\"rules\":[\"x\"]}}",
        "f.json: config key 'approvals.rules[0]' must be an object {\"tool\", \"action\"}");
    apply_expect(&c, "{\"approvals\":{\"rules\":[{\"tool\":\"a\",\"action\":\"ask\",\"why\":1}]}}",
                 "f.json: config key 'approvals.rules[0]' may have only \"tool\" and \"action\"");
    apply_expect(&c, "{\"approvals\":{\"rules\":{}}}",
                 "f.json: config key 'approvals.rules' must be an array of at most 256 rules");
    apply_expect(&c, "{\"approvals\":{\"timeout_seconds\":0}}",
                 "f.json: config key 'approvals.timeout_seconds' must be a whole number from 1 "
                 "to 604800");
    apply_expect(&c, "{\"approvals\":{\"rule\":[]}}",
                 "f.json: unknown config key 'approvals.rule'");
    assert_int_equal(c.approval_nrules, 2);
    assert_int_equal(c.approval_timeout_s, 5);
    apply_expect(&c, "{\"approvals\":{\"rules\":[]}}", NULL);
    assert_int_equal(c.approval_nrules, 0);
    config_cleanup(&c);
}

static void test_file_errors_name_the_problem(void **state)
{
    (void)state;
    config c;
    config_init(&c);
    char err[256];
    const char *unknown = "{\"listen\":\"1.2.3.4:1\",\"llm\":{\"modle\":\"x\"}}";
    assert_int_equal(
        config_apply_json_text(&c, unknown, strlen(unknown), "f.json", err, sizeof err), -1);
    assert_string_equal(err, "f.json: unknown config key 'llm.modle'");
    /* Nothing of a rejected file is applied. */
    assert_string_equal(c.listen, "127.0.0.1:8080");

    const char *bad = "{\n  \"listen\": \"x\",\n  oops\n}";
    assert_int_equal(config_apply_json_text(&c, bad, strlen(bad), "f.json", err, sizeof err), -1);
    assert_non_null(strstr(err, "f.json: invalid JSON at line 3, column"));

    const char *type = "{\"limits\":{\"active_runs\":\"many\"}}";
    assert_int_equal(config_apply_json_text(&c, type, strlen(type), "f.json", err, sizeof err), -1);
    assert_string_equal(
        err, "f.json: config key 'limits.active_runs' must be a whole number from 1 to 1000000");

    const char *top = "{\"nope\":1}";
    assert_int_equal(config_apply_json_text(&c, top, strlen(top), "f.json", err, sizeof err), -1);
    assert_string_equal(err, "f.json: unknown config key 'nope'");

    const char *arr = "[1]";
    assert_int_equal(config_apply_json_text(&c, arr, strlen(arr), "f.json", err, sizeof err), -1);
    assert_string_equal(err, "f.json: the config must be a JSON object");

    const char *price = "{\"llm\":{\"price_per_mtok\":{\"input\":1}}}";
    assert_int_equal(config_apply_json_text(&c, price, strlen(price), "f.json", err, sizeof err),
                     -1);
    assert_non_null(strstr(err, "'llm.price_per_mtok' must be"));
    config_cleanup(&c);
}

static void test_env_and_fallback(void **state)
{
    (void)state;
    config c;
    config_init(&c);
    char err[256];
    const char *env[] = {"OPENAI_BASE_URL",
                         "http://fallback/v1",
                         "OPENAI_API_KEY",
                         "k1",
                         "CHATPLANE_LLM_API_KEY",
                         "k2",
                         "CHATPLANE_DEMO_DELAY_MS",
                         "5",
                         NULL};
    fake_env = env;
    assert_int_equal(config_apply_env(&c, get_fake, err, sizeof err), 0);
    assert_string_equal(c.llm_base_url, "http://fallback/v1");
    assert_string_equal(c.llm_api_key, "k2"); /* the primary name wins */
    assert_int_equal(c.demo_delay_ms, 5);

    const char *bad[] = {"CHATPLANE_DEMO_DELAY_MS", "soon", NULL};
    fake_env = bad;
    assert_int_equal(config_apply_env(&c, get_fake, err, sizeof err), -1);
    assert_string_equal(err,
                        "CHATPLANE_DEMO_DELAY_MS: 'soon' is not a whole number from 0 to 60000");
    config_cleanup(&c);
}

static void test_flags(void **state)
{
    (void)state;
    config flags;
    memset(&flags, 0, sizeof flags);
    const char *allowed[] = {"listen", "db", "insecure-no-auth", NULL};
    char *argv[] = {"--listen", "127.0.0.1:0",        "--db=sqlite::memory:", "--mode", "quick",
                    "hello",    "--insecure-no-auth", "--web-root",           "x"};
    char *rest[9];
    int nrest;
    char err[256];
    assert_int_equal(config_parse_flags(&flags, allowed, 9, argv, rest, &nrest, err, sizeof err),
                     0);
    assert_string_equal(flags.listen, "127.0.0.1:0");
    assert_string_equal(flags.db, "sqlite::memory:");
    assert_true(flags.insecure_no_auth);
    /* Flags the command does not take are left for it, in order. */
    assert_int_equal(nrest, 5);
    assert_string_equal(rest[0], "--mode");
    assert_string_equal(rest[1], "quick");
    assert_string_equal(rest[2], "hello");
    assert_string_equal(rest[3], "--web-root");
    assert_string_equal(rest[4], "x");

    char *missing[] = {"--db"};
    assert_int_equal(config_parse_flags(&flags, allowed, 1, missing, rest, &nrest, err, sizeof err),
                     -1);
    assert_string_equal(err, "--db needs a value");
    config_cleanup(&flags);
}

static void test_precedence(void **state)
{
    (void)state;
    char path[] = "/tmp/chatplane-config-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text =
        "{\"listen\":\"file:1\",\"db\":\"sqlite:file.db\",\"llm\":{\"model\":\"file-model\"}}";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);

    config flags, c;
    memset(&flags, 0, sizeof flags);
    flags.config_file = path;
    flags.listen = "flag:2";
    const char *env[] = {"CHATPLANE_LISTEN", "env:3", "CHATPLANE_DB", "sqlite:env.db", NULL};
    fake_env = env;
    config_init(&c);
    char err[256];
    assert_int_equal(config_load(&c, &flags, get_fake, err, sizeof err), 0);
    assert_string_equal(c.listen, "flag:2");        /* flag beats environment */
    assert_string_equal(c.db, "sqlite:env.db");     /* environment beats file */
    assert_string_equal(c.llm_model, "file-model"); /* file beats default */
    assert_string_equal(c.config_file, path);
    config_cleanup(&c);
    unlink(path);

    config_init(&c);
    flags.listen = NULL;
    flags.config_file = "/nonexistent/chatplane.json";
    assert_int_equal(config_load(&c, &flags, get_none, err, sizeof err), -1);
    assert_string_equal(
        err, "cannot read config file /nonexistent/chatplane.json: No such file or directory");
    config_cleanup(&c);
}

/* log.level: info by default; the file, the environment or --log-level
 * set it, and config_load refuses a name that is not a level. */
static void test_log_level(void **state)
{
    (void)state;
    config flags, c;
    memset(&flags, 0, sizeof flags);
    char err[256];
    config_init(&c);
    assert_string_equal(c.log_level, "info");
    assert_int_equal(c.log_min, LOG_INFO);
    apply_expect(&c, "{\"log\":{\"level\":\"warn\"}}", NULL);
    assert_string_equal(c.log_level, "warn");
    config_cleanup(&c);

    const char *env[] = {"CHATPLANE_LOG_LEVEL", "error", NULL};
    fake_env = env;
    config_init(&c);
    assert_int_equal(config_load(&c, &flags, get_fake, err, sizeof err), 0);
    assert_string_equal(c.log_level, "error");
    assert_int_equal(c.log_min, LOG_ERROR);
    config_cleanup(&c);

    const char *allowed[] = {"log-level", NULL};
    char *argv[] = {"--log-level", "debug"};
    char *rest[2];
    int nrest;
    assert_int_equal(config_parse_flags(&flags, allowed, 2, argv, rest, &nrest, err, sizeof err),
                     0);
    config_init(&c);
    assert_int_equal(config_load(&c, &flags, get_fake, err, sizeof err), 0);
    assert_string_equal(c.log_level, "debug"); /* the flag beats the environment */
    assert_int_equal(c.log_min, LOG_DEBUG);
    config_cleanup(&c);
    config_cleanup(&flags);

    memset(&flags, 0, sizeof flags);
    const char *bad[] = {"CHATPLANE_LOG_LEVEL", "loud", NULL};
    fake_env = bad;
    config_init(&c);
    assert_int_equal(config_load(&c, &flags, get_fake, err, sizeof err), -1);
    assert_string_equal(err, "log.level must be debug, info, warn or error, not 'loud'");
    config_cleanup(&c);
}

/* Applies text and resolves the providers with the fake environment;
 * returns what config_llm_resolve returned. */
static int resolve(config *c, const char *text, char *err, size_t errlen)
{
    config_init(c);
    if (config_apply_json_text(c, text, strlen(text), "f.json", err, errlen) != 0) return -2;
    return config_llm_resolve(c, get_fake, err, errlen);
}

static void test_providers(void **state)
{
    (void)state;
    static const char *const env[] = {"ANT_KEY", "sk-ant-1", "GW", "gw-2", NULL};
    fake_env = env;
    config c;
    char err[384] = "";
    assert_int_equal(
        resolve(&c,
                "{\"llm\":{\"base_url\":\"http://a/v1\",\"model\":\"gpt\",\"api_key\":\"k-${GW}\","
                "\"headers\":{\"X-Gw\":\"${GW}\"},\"circuit_rest_seconds\":5,"
                "\"fallbacks\":[{\"kind\":\"anthropic\",\"base_url\":\"http://b/v1\","
                "\"api_key\":\"${ANT_KEY}\",\"model\":\"claude\",\"price_per_mtok\":"
                "{\"input\":1,\"output\":5}},{\"base_url\":\"http://c/v1\",\"model\":\"local\","
                "\"name\":\"box.2\",\"anthropic_version\":\"x\"}]}}",
                err, sizeof err),
        0);
    assert_int_equal(c.nproviders, 3);
    assert_int_equal(c.llm_circuit_rest_s, 5);
    assert_string_equal(c.providers[0].name, "primary");
    assert_string_equal(c.providers[0].kind, "openai");
    assert_string_equal(c.providers[0].api_key, "k-gw-2");
    assert_string_equal(json_string_value(json_object_get(c.providers[0].headers, "X-Gw")), "gw-2");
    assert_false(c.providers[0].price.set);
    assert_string_equal(c.providers[1].name, "fallback-1");
    assert_string_equal(c.providers[1].kind, "anthropic");
    assert_string_equal(c.providers[1].api_key, "sk-ant-1");
    assert_string_equal(c.providers[1].model, "claude");
    assert_true(c.providers[1].price.set);
    assert_true(c.providers[1].price.output_per_mtok == 5.0);
    assert_string_equal(c.providers[2].name, "box.2");
    assert_string_equal(c.providers[2].kind, "openai");
    assert_null(c.providers[2].api_key);
    config_cleanup(&c);

    /* An Anthropic primary: the default URL, llm.name. */
    assert_int_equal(resolve(&c,
                             "{\"llm\":{\"kind\":\"anthropic\",\"model\":\"claude\","
                             "\"name\":\"main\"}}",
                             err, sizeof err),
                     0);
    assert_string_equal(c.providers[0].base_url, "https://api.anthropic.com/v1");
    assert_string_equal(c.providers[0].name, "main");
    config_cleanup(&c);

    /* Defaults: the demo brain as the one provider. */
    assert_int_equal(resolve(&c, "{}", err, sizeof err), 0);
    assert_int_equal(c.nproviders, 1);
    assert_null(c.providers[0].base_url);
    assert_int_equal(c.llm_circuit_rest_s, 60);
    config_cleanup(&c);
    fake_env = NULL;
}

static void test_provider_errors(void **state)
{
    (void)state;
    static const char *const env[] = {"SET", "v", NULL};
    fake_env = env;
    static const struct {
        const char *text, *err;
    } cases[] = {
        {"{\"llm\":{\"kind\":\"gemini\"}}",
         "config key 'llm.kind' must be \"openai\" or \"anthropic\""},
        {"{\"llm\":{\"kind\":\"anthropic\"}}",
         "config key 'llm.model' is required when llm.kind is \"anthropic\""},
        {"{\"llm\":{\"fallbacks\":[{\"model\":\"m\"}]}}",
         "config key 'llm.fallbacks[0].base_url' is required"},
        {"{\"llm\":{\"fallbacks\":[{\"base_url\":\"http://b\"}]}}",
         "config key 'llm.fallbacks[0].model' is required"},
        {"{\"llm\":{\"fallbacks\":[{\"base_url\":\"http://b\",\"model\":\"m\",\"modle\":1}]}}",
         "unknown config key 'llm.fallbacks[0].modle'"},
        {"{\"llm\":{\"fallbacks\":[\"http://b\"]}}",
         "config key 'llm.fallbacks[0]' must be an object {\"kind\", \"base_url\", \"api_key\", "
         "\"model\", \"name\"}"},
        {"{\"llm\":{\"fallbacks\":[{\"base_url\":\"http://b\",\"model\":\"m\",\"kind\":\"x\"}]}}",
         "config key 'llm.fallbacks[0].kind' must be \"openai\" or \"anthropic\""},
        {"{\"llm\":{\"fallbacks\":[{\"base_url\":\"b\",\"model\":\"m\",\"api_key\":\"${NOPE}\"}]}}",
         "config key 'llm.fallbacks[0].api_key' names ${NOPE}, which is not set in the "
         "environment"},
        {"{\"llm\":{\"api_key\":\"${SET\"}}",
         "config key 'llm.api_key' has a ${ without a variable name and }"},
        {"{\"llm\":{\"headers\":{\"Bad Name\":\"v\"}}}",
         "config key 'llm.headers.Bad Name' has a header name that cannot be sent"},
        {"{\"llm\":{\"headers\":{\"X\":\"a\\nb\"}}}",
         "config key 'llm.headers.X' holds a line break"},
        {"{\"llm\":{\"headers\":{\"X\":1}}}", "config key 'llm.headers.X' must be a string"},
        {"{\"llm\":{\"fallbacks\":[{\"base_url\":\"b\",\"model\":\"m\",\"name\":\"primary\"}]}}",
         "config key 'llm.fallbacks[].name': two providers are named 'primary'"},
        {"{\"llm\":{\"name\":\"a b\"}}",
         "config key 'llm.name': provider name 'a b' must be 1 to 64 letters, digits, '.', '_' "
         "or '-'"},
        {"{\"llm\":{\"fallbacks\":[{\"base_url\":\"b\",\"model\":\"m\",\"price_per_mtok\":{"
         "\"input\":-1,\"output\":1}}]}}",
         "config key 'llm.fallbacks[0].price_per_mtok' must be {\"input\": USD, \"output\": USD} "
         "with non-negative numbers"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        config c;
        char err[384] = "";
        assert_int_equal(resolve(&c, cases[i].text, err, sizeof err), -1);
        assert_string_equal(err, cases[i].err);
        assert_int_equal(c.nproviders, 0);
        config_cleanup(&c);
    }
    /* A fallbacks value that is not an array is refused by the file check. */
    config c;
    char err[384] = "";
    assert_int_equal(resolve(&c, "{\"llm\":{\"fallbacks\":{}}}", err, sizeof err), -2);
    assert_string_equal(err, "f.json: config key 'llm.fallbacks' must be an array");
    config_cleanup(&c);
    fake_env = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_file_keys),
        cmocka_unit_test(test_orphan_timeout),
        cmocka_unit_test(test_commit_interval),
        cmocka_unit_test(test_journal_idle),
        cmocka_unit_test(test_approvals),
        cmocka_unit_test(test_file_errors_name_the_problem),
        cmocka_unit_test(test_env_and_fallback),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_log_level),
        cmocka_unit_test(test_providers),
        cmocka_unit_test(test_provider_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

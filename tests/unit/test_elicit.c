/* Unit tests for core/elicit: the form rules of docs/runs.md, Questions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/elicit.h"

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    assert_non_null(v);
    return v;
}

/* The schema's error, or "" when it is accepted. */
static const char *schema_err(const char *text)
{
    static char err[ELICIT_ERR_MAX];
    json_t *s = parse(text);
    err[0] = '\0';
    if (elicit_schema_check(s, err, sizeof err) == 0) assert_string_equal(err, "");
    json_decref(s);
    return err;
}

static const char form[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\",\"title\":\"Name\",\"minLength\":2,\"maxLength\":5},"
    "\"age\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":100},"
    "\"ratio\":{\"type\":\"number\",\"minimum\":0,\"maximum\":1.5},"
    "\"ok\":{\"type\":\"boolean\",\"default\":true},"
    "\"color\":{\"type\":\"string\",\"enum\":[\"red\",\"green\"]},"
    "\"hero\":{\"type\":\"string\",\"oneOf\":[{\"const\":\"h1\",\"title\":\"Superman\"}]},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\",\"c\"]},\"minItems\":1,"
    "\"maxItems\":2},"
    "\"mail\":{\"type\":\"string\",\"format\":\"email\"},"
    "\"site\":{\"type\":\"string\",\"format\":\"uri\"},"
    "\"day\":{\"type\":\"string\",\"format\":\"date\"},"
    "\"at\":{\"type\":\"string\",\"format\":\"date-time\"}},"
    "\"required\":[\"name\"]}";

/* The answer's error against form, or "" when it is accepted. */
static const char *content_err(const char *text)
{
    static char err[ELICIT_ERR_MAX];
    json_t *s = parse(form);
    assert_int_equal(elicit_schema_check(s, err, sizeof err), 0);
    json_t *c = text ? parse(text) : NULL;
    err[0] = '\0';
    if (elicit_content_check(s, c, err, sizeof err) == 0) assert_string_equal(err, "");
    json_decref(c);
    json_decref(s);
    return err;
}

static void test_names(void **state)
{
    (void)state;
    static const char *const st[] = {"pending", "accepted", "declined", "cancelled", "expired"};
    for (int i = 0; i < ELICIT__STATUS_COUNT; i++) {
        elicit_status s;
        assert_string_equal(elicit_status_name((elicit_status)i), st[i]);
        assert_int_equal(elicit_status_parse(st[i], &s), 0);
        assert_int_equal(s, i);
    }
    static const char *const ac[] = {"accept", "decline", "cancel"};
    for (int i = 0; i < ELICIT__ACTION_COUNT; i++) {
        elicit_action a;
        assert_string_equal(elicit_action_name((elicit_action)i), ac[i]);
        assert_int_equal(elicit_action_parse(ac[i], &a), 0);
        assert_int_equal(a, i);
    }
    elicit_action a = ELICIT_CANCEL;
    assert_int_equal(elicit_action_parse("Accept", &a), -1);
    assert_int_equal(elicit_action_parse(NULL, &a), -1);
    assert_int_equal(a, ELICIT_CANCEL);
    assert_string_equal(elicit_status_name(ELICIT__STATUS_COUNT), "unknown");
    assert_int_equal(elicit_action_status(ELICIT_ACCEPT), ELICIT_ACCEPTED);
    assert_int_equal(elicit_action_status(ELICIT_DECLINE), ELICIT_DECLINED);
    assert_int_equal(elicit_action_status(ELICIT_CANCEL), ELICIT_CANCELLED);
}

static void test_schema_accepted(void **state)
{
    (void)state;
    assert_string_equal(schema_err(form), "");
    assert_string_equal(schema_err("{\"type\":\"object\",\"properties\":{}}"), "");
    /* Unknown keywords are ignored: a server may add them. */
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"$schema\":\"x\",\"properties\":{\"a\":{\"type\":"
                   "\"boolean\",\"x-ui\":1}}}"),
        "");
    /* The array of titled choices the everything server sends. */
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"f\":{\"type\":\"array\",\"items\":"
                   "{\"anyOf\":[{\"const\":\"fish-1\",\"title\":\"Tuna\"}]}}}}"),
        "");
}

static void test_schema_refused(void **state)
{
    (void)state;
    assert_string_equal(schema_err("[]"), "requestedSchema must be an object");
    assert_string_equal(schema_err("{\"properties\":{}}"),
                        "requestedSchema.type must be \"object\"");
    assert_string_equal(schema_err("{\"type\":\"object\"}"),
                        "requestedSchema.properties must be an object");
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"object\"}}}"),
        "requestedSchema.properties.a: type must be one of string, number, integer, boolean, "
        "array");
    assert_string_equal(schema_err("{\"type\":\"object\",\"properties\":{\"a\":3}}"),
                        "requestedSchema.properties.a: a field must be an object");
    assert_string_equal(schema_err("{\"type\":\"object\",\"properties\":{\"a\":{}}}"),
                        "requestedSchema.properties.a: type must be a string");
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\","
                   "\"format\":\"phone\"}}}"),
        "requestedSchema.properties.a: format must be one of email, uri, date, date-time");
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\","
                   "\"enum\":[]}}}"),
        "requestedSchema.properties.a: enum or oneOf must list 1 to 100 strings (or "
        "{\"const\": string})");
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\","
                   "\"enum\":[1]}}}"),
        "requestedSchema.properties.a: enum or oneOf must list 1 to 100 strings (or "
        "{\"const\": string})");
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\","
                   "\"minLength\":-1}}}"),
        "requestedSchema.properties.a: minLength and maxLength must be integers of at least 0");
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\","
                   "\"minimum\":\"1\"}}}"),
        "requestedSchema.properties.a: minimum and maximum must be numbers");
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\","
                   "\"items\":{\"type\":\"string\"}}}}"),
        "requestedSchema.properties.a: an array field must have items with enum or anyOf: a "
        "choice of several");
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"array\","
                   "\"items\":{\"enum\":[\"x\"]},\"maxItems\":1.5}}}"),
        "requestedSchema.properties.a: minItems and maxItems must be integers of at least 0");
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"boolean\"}},"
                   "\"required\":\"a\"}"),
        "requestedSchema.required must be an array of field names");
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"boolean\"}},"
                   "\"required\":[\"a\",\"b\"]}"),
        "requestedSchema.required[1] must name a field of requestedSchema.properties");
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"\":{\"type\":\"boolean\"}}}"),
        "requestedSchema.properties: a field name must be 1 to 64 bytes of UTF-8 without "
        "control characters");
    assert_string_equal(
        schema_err("{\"type\":\"object\",\"properties\":{\"a\\nb\":{\"type\":\"boolean\"}}}"),
        "requestedSchema.properties: a field name must be 1 to 64 bytes of UTF-8 without "
        "control characters");
}

static void test_schema_field_cap(void **state)
{
    (void)state;
    json_t *s = json_pack("{s:s, s:{}}", "type", "object", "properties");
    json_t *props = json_object_get(s, "properties");
    char name[16], err[ELICIT_ERR_MAX];
    for (int i = 0; i < ELICIT_FIELDS_MAX; i++) {
        snprintf(name, sizeof name, "f%d", i);
        json_object_set_new(props, name, json_pack("{s:s}", "type", "boolean"));
    }
    assert_int_equal(elicit_schema_check(s, err, sizeof err), 0);
    json_object_set_new(props, "one_more", json_pack("{s:s}", "type", "boolean"));
    assert_int_equal(elicit_schema_check(s, err, sizeof err), -1);
    assert_string_equal(err, "requestedSchema.properties has 65 fields, more than 64");
    json_decref(s);
}

static void test_content_accepted(void **state)
{
    (void)state;
    assert_string_equal(content_err("{\"name\":\"Al\"}"), "");
    assert_string_equal(
        content_err("{\"name\":\"Ådam\",\"age\":1,\"ratio\":1.5,\"ok\":false,\"color\":\"green\","
                    "\"hero\":\"h1\",\"tags\":[\"a\",\"c\"],\"mail\":\"a@b.c\","
                    "\"site\":\"https://x.org/p\",\"day\":\"2024-02-29\","
                    "\"at\":\"2026-12-03T08:30:00.5+01:00\"}"),
        "");
    /* A number field takes an integer too. */
    assert_string_equal(content_err("{\"name\":\"Al\",\"ratio\":1}"), "");
    assert_string_equal(content_err("{\"name\":\"Al\",\"at\":\"2026-12-03T08:30:00Z\"}"), "");
}

static void test_content_refused(void **state)
{
    (void)state;
    assert_string_equal(content_err(NULL), "content.name is required");
    assert_string_equal(content_err("{}"), "content.name is required");
    assert_string_equal(content_err("[1]"), "content must be an object");
    assert_string_equal(content_err("{\"name\":\"Al\",\"nope\":1}"),
                        "content.nope is not a field of this form");
    assert_string_equal(content_err("{\"name\":\"Al\",\"\":1}"),
                        "content has a key that is not a field of this form");
    assert_string_equal(content_err("{\"name\":3}"), "content.name must be a string");
    assert_string_equal(content_err("{\"name\":\"A\"}"),
                        "content.name must be at least 2 characters");
    assert_string_equal(content_err("{\"name\":\"ÅÅÅÅÅÅ\"}"),
                        "content.name must be at most 5 characters");
    assert_string_equal(content_err("{\"name\":\"Al\",\"age\":1.5}"),
                        "content.age must be an integer");
    assert_string_equal(content_err("{\"name\":\"Al\",\"age\":\"3\"}"),
                        "content.age must be an integer");
    assert_string_equal(content_err("{\"name\":\"Al\",\"age\":0}"),
                        "content.age must be at least 1");
    assert_string_equal(content_err("{\"name\":\"Al\",\"age\":101}"),
                        "content.age must be at most 100");
    assert_string_equal(content_err("{\"name\":\"Al\",\"ratio\":true}"),
                        "content.ratio must be a number");
    assert_string_equal(content_err("{\"name\":\"Al\",\"ratio\":2}"),
                        "content.ratio must be at most 1.5");
    assert_string_equal(content_err("{\"name\":\"Al\",\"ok\":1}"),
                        "content.ok must be true or false");
    assert_string_equal(content_err("{\"name\":\"Al\",\"color\":\"blue\"}"),
                        "content.color must be one of red, green");
    assert_string_equal(content_err("{\"name\":\"Al\",\"hero\":\"Superman\"}"),
                        "content.hero must be one of h1");
    assert_string_equal(content_err("{\"name\":\"Al\",\"tags\":\"a\"}"),
                        "content.tags must be an array of choices");
    assert_string_equal(content_err("{\"name\":\"Al\",\"tags\":[\"d\"]}"),
                        "content.tags must be a list of a, b, c");
    assert_string_equal(content_err("{\"name\":\"Al\",\"tags\":[\"a\",\"a\"]}"),
                        "content.tags lists a twice");
    assert_string_equal(content_err("{\"name\":\"Al\",\"tags\":[]}"),
                        "content.tags must list at least 1 choices");
    assert_string_equal(content_err("{\"name\":\"Al\",\"tags\":[\"a\",\"b\",\"c\"]}"),
                        "content.tags must list at most 2 choices");
    assert_string_equal(content_err("{\"name\":\"Al\",\"mail\":\"ab.c\"}"),
                        "content.mail must be an email address");
    assert_string_equal(content_err("{\"name\":\"Al\",\"mail\":\"a@b@c\"}"),
                        "content.mail must be an email address");
    assert_string_equal(content_err("{\"name\":\"Al\",\"site\":\"x.org\"}"),
                        "content.site must be a URI (scheme:rest)");
    assert_string_equal(content_err("{\"name\":\"Al\",\"day\":\"2023-02-29\"}"),
                        "content.day must be a date (YYYY-MM-DD)");
    assert_string_equal(content_err("{\"name\":\"Al\",\"day\":\"2023-02-01T00:00:00Z\"}"),
                        "content.day must be a date (YYYY-MM-DD)");
    assert_string_equal(content_err("{\"name\":\"Al\",\"at\":\"2026-12-03 08:30:00Z\"}"),
                        "content.at must be a date and time (RFC 3339)");
    assert_string_equal(content_err("{\"name\":\"Al\",\"at\":\"2026-12-03T24:30:00Z\"}"),
                        "content.at must be a date and time (RFC 3339)");
    assert_string_equal(content_err("{\"name\":\"Al\",\"at\":\"2026-12-03T08:30:00+1:00\"}"),
                        "content.at must be a date and time (RFC 3339)");
}

/* An error never overflows the buffer it is given, however small. */
static void test_small_buffer(void **state)
{
    (void)state;
    json_t *s = parse(form);
    json_t *c = parse("{\"name\":\"Al\",\"color\":\"blue\"}");
    char err[12];
    memset(err, 'x', sizeof err);
    assert_int_equal(elicit_content_check(s, c, err, sizeof err), -1);
    assert_string_equal(err, "content.col");
    json_decref(c);
    json_decref(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_schema_accepted),
        cmocka_unit_test(test_schema_refused),
        cmocka_unit_test(test_schema_field_cap),
        cmocka_unit_test(test_content_accepted),
        cmocka_unit_test(test_content_refused),
        cmocka_unit_test(test_small_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* Unit tests for cli/ask_form: a question's form asked field by field on
 * streams, as `chatplane ask` does on a terminal (docs/cli.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cli/ask_form.h"

static const char form[] =
    "{\"type\":\"object\",\"properties\":{"
    "\"name\":{\"type\":\"string\",\"title\":\"Name\"},"
    "\"age\":{\"type\":\"integer\",\"minimum\":1},"
    "\"ok\":{\"type\":\"boolean\"},"
    "\"hero\":{\"type\":\"string\",\"oneOf\":[{\"const\":\"h1\",\"title\":\"Superman\"},"
    "{\"const\":\"h2\"}]},"
    "\"tags\":{\"type\":\"array\",\"items\":{\"enum\":[\"a\",\"b\",\"c\"]}},"
    "\"line\":{\"type\":\"string\",\"default\":\"It was a dark night.\"}},"
    "\"required\":[\"name\"]}";

/* Runs the prompt on typed; returns the content as compact JSON (sorted
 * keys) or "(declined)", and what was shown in *shown (caller frees). */
static char *prompt(const char *typed, char **shown)
{
    json_t *schema = json_loads(form, 0, NULL);
    assert_non_null(schema);
    FILE *in = fmemopen((void *)typed, strlen(typed), "r");
    char *outbuf = NULL;
    size_t outlen = 0;
    FILE *out = open_memstream(&outbuf, &outlen);
    json_t *c = ask_form_prompt(in, out, "Who?", schema);
    fclose(in);
    fclose(out);
    char *text = c ? json_dumps(c, JSON_COMPACT | JSON_SORT_KEYS) : strdup("(declined)");
    json_decref(c);
    json_decref(schema);
    if (shown)
        *shown = outbuf;
    else
        free(outbuf);
    return text;
}

static void test_every_kind_of_field(void **state)
{
    (void)state;
    char *shown;
    char *c = prompt("Ada\n36\ny\n1\nb, c\n\n", &shown);
    assert_string_equal(c, "{\"age\":36,\"hero\":\"h1\",\"line\":\"It was a dark night.\","
                           "\"name\":\"Ada\",\"ok\":true,\"tags\":[\"b\",\"c\"]}");
    assert_string_equal(shown, "Who?\n(an empty answer leaves a field out; end of input declines)\n"
                               "Name (string, required): age (integer): ok (boolean): "
                               "hero (string)\n  1) h1 (Superman)\n  2) h2\n> "
                               "tags (choose any, separated by commas)\n  1) a\n  2) b\n  3) c\n> "
                               "line (string)\n  [\"It was a dark night.\"]: ");
    free(c);
    free(shown);
    /* Optional fields left out; a choice typed by its value. */
    c = prompt("Al\n\n\nh2\n\n\n", NULL);
    assert_string_equal(c, "{\"hero\":\"h2\",\"line\":\"It was a dark night.\",\"name\":\"Al\"}");
    free(c);
}

/* A refused answer is shown with the reason and the form asked again. */
static void test_refused_then_fixed(void **state)
{
    (void)state;
    char *shown;
    char *c = prompt("Al\n0\n\n\n\n\nAl\n2\nno\n\n\n\n", &shown);
    assert_string_equal(c, "{\"age\":2,\"line\":\"It was a dark night.\",\"name\":\"Al\","
                           "\"ok\":false}");
    assert_non_null(strstr(shown, "content.age must be at least 1; again:\n"));
    free(c);
    free(shown);
    /* Not even an integer: kept as typed, so the check names the field. */
    c = prompt("Al\nsix\n\n\n\n\n", &shown);
    assert_string_equal(c, "(declined)");
    assert_non_null(strstr(shown, "content.age must be an integer; again:\n"));
    free(c);
    free(shown);
}

/* The end of the input, a missing required field three times, declines. */
static void test_declines(void **state)
{
    (void)state;
    char *c = prompt("Ada\n", NULL);
    assert_string_equal(c, "(declined)");
    free(c);
    char *shown;
    c = prompt("\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n", &shown);
    assert_string_equal(c, "(declined)");
    assert_non_null(strstr(shown, "content.name is required; again:\n"));
    assert_non_null(strstr(shown, "no answer the form takes; declining\n"));
    free(c);
    free(shown);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_kind_of_field),
        cmocka_unit_test(test_refused_then_fixed),
        cmocka_unit_test(test_declines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

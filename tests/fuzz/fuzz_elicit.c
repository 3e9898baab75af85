/*
 * libFuzzer target for the form checker (core/elicit.c), which reads the
 * schema a tool server sends and the answer an HTTP client posts.
 *
 * The input is a schema's JSON text, a newline, and an answer's JSON text.
 * Whatever the bytes, each check returns 0 or -1, and -1 comes with a
 * message that is valid UTF-8 (it ends up in an HTTP error body). The
 * content check runs only on a schema the schema check accepted, as the
 * server does.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_elicit tests/fuzz/corpus/elicit
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/elicit.h"
#include "lib/utf8.h"

static void fuzz_check_err(int rc, const char *err)
{
    if (rc != 0 && rc != -1) abort();
    if (rc == -1 && (!err[0] || !utf8_valid(err, strlen(err)))) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nl = memchr(text, '\n', size);
    size_t schema_len = nl ? (size_t)(nl - text) : size;
    json_t *schema = json_loadb(text, schema_len, JSON_DECODE_ANY, NULL);
    if (!schema) return 0;
    char err[ELICIT_ERR_MAX];
    err[0] = '\0';
    int rc = elicit_schema_check(schema, err, sizeof err);
    fuzz_check_err(rc, err);
    if (rc == 0 && nl) {
        json_t *content =
            json_loadb(nl + 1, size - schema_len - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        err[0] = '\0';
        fuzz_check_err(elicit_content_check(schema, content, err, sizeof err), err);
        /* No content is an answer too (a decline carries none). */
        err[0] = '\0';
        fuzz_check_err(elicit_content_check(schema, NULL, err, sizeof err), err);
        json_decref(content);
    }
    json_decref(schema);
    return 0;
}

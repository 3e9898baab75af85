/*
 * libFuzzer target for core/textchunk, checked against jansson.
 *
 * Whenever the scanner reads a chunk itself, the full parse the stream
 * reader would otherwise do must agree: the bytes are JSON, the top level
 * is an object, it carries no error or tool call, the text of choice 0 is
 * exactly what the scanner decoded, and so are the finish reason and the
 * token counts of the usage as the stream reader takes them. When the
 * scanner declines, its output must be untouched.
 *
 * The input is also cut at its first newline into two chunks read one after
 * the other through one textchunk_memo, with the second's head and tail
 * made the first's when the first has a text: each read must give exactly
 * what textchunk_read gives for the same chunk.
 *
 *   make O=build/fuzz fuzz-bins && build/fuzz/tests/fuzz/fuzz_textchunk
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/textchunk.h"

/* A count as the stream reader takes it: -1 unless a whole number >= 0. */
static long long fuzz_count(const json_t *usage, const char *key)
{
    const json_t *v = json_object_get(usage, key);
    return json_is_integer(v) && json_integer_value(v) >= 0 ? (long long)json_integer_value(v) : -1;
}

/* The text the stream reader's full parse takes from a chunk, appended to
 * out, and its finish reason and counts into end; aborts when the chunk
 * carries anything the scanner must not have accepted. */
static void fuzz_full_parse(json_t *chunk, buf *out, textchunk_end *end)
{
    end->finish_reason[0] = '\0';
    end->prompt_tokens = end->completion_tokens = -1;
    if (!json_is_object(chunk)) abort();
    if (json_object_get(chunk, "error")) abort();
    const json_t *obj = json_object_get(chunk, "object");
    if (json_is_string(obj) && strcmp(json_string_value(obj), "error") == 0) abort();
    const json_t *usage = json_object_get(chunk, "usage");
    if (json_is_object(usage)) {
        end->prompt_tokens = fuzz_count(usage, "prompt_tokens");
        end->completion_tokens = fuzz_count(usage, "completion_tokens");
    }
    const json_t *choices = json_object_get(chunk, "choices");
    size_t i;
    const json_t *choice;
    json_array_foreach(choices, i, choice)
    {
        if (!json_is_object(choice)) continue;
        const json_t *ci = json_object_get(choice, "index");
        if (ci && !(json_is_integer(ci) && json_integer_value(ci) == 0)) continue;
        const json_t *fr = json_object_get(choice, "finish_reason");
        if (json_is_string(fr) && json_string_length(fr) > 0) {
            if (json_string_length(fr) >= sizeof end->finish_reason) abort();
            memcpy(end->finish_reason, json_string_value(fr), json_string_length(fr) + 1);
        }
        const json_t *delta = json_object_get(choice, "delta");
        if (!json_is_object(delta)) delta = json_object_get(choice, "message");
        if (!json_is_object(delta)) continue;
        if (json_is_array(json_object_get(delta, "tool_calls"))) abort();
        const json_t *content = json_object_get(delta, "content");
        if (json_is_string(content))
            buf_append(out, json_string_value(content), json_string_length(content));
    }
}

/* Reads chunk through memo and alone; aborts when the two differ. */
static void fuzz_same(const char *chunk, size_t len, textchunk_memo *memo)
{
    buf a, b;
    buf_init(&a, 64);
    buf_init(&b, 64);
    buf_append_str(&a, "x");
    buf_append_str(&b, "x");
    textchunk_end ea, eb;
    int ra = textchunk_read_memo(chunk, len, &a, &ea, memo);
    int rb = textchunk_read(chunk, len, &b, &eb);
    if (ra != rb || a.len != b.len || memcmp(a.data, b.data, a.len + 1) != 0) abort();
    if (ra == 1 &&
        (strcmp(ea.finish_reason, eb.finish_reason) != 0 || ea.prompt_tokens != eb.prompt_tokens ||
         ea.completion_tokens != eb.completion_tokens))
        abort();
    buf_cleanup(&a);
    buf_cleanup(&b);
}

/* The memo's differential check (see the top of the file). */
static void fuzz_memo(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (!nl) return;
    textchunk_memo memo = {0};
    size_t n1 = (size_t)(nl - data);
    fuzz_same((const char *)data, n1, &memo);
    const char *rest = (const char *)nl + 1;
    size_t n2 = size - n1 - 1;
    fuzz_same(rest, n2, &memo);
    if (memo.head_len == 0) return;
    /* The second chunk, quoted, between the kept head and tail. */
    size_t len = memo.head_len + n2 + 2 + memo.tail_len;
    char *c = malloc(len);
    if (!c) return;
    memcpy(c, memo.head, memo.head_len);
    c[memo.head_len] = '"';
    memcpy(c + memo.head_len + 1, rest, n2);
    c[memo.head_len + 1 + n2] = '"';
    memcpy(c + memo.head_len + n2 + 2, memo.tail, memo.tail_len);
    fuzz_same(c, len, &memo);
    free(c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_memo(data, size);
    buf fast;
    buf_init(&fast, 1 << 20);
    buf_append_str(&fast, "x");
    textchunk_end end;
    int rc = textchunk_read((const char *)data, size, &fast, &end);
    if (rc == 0) {
        if (fast.len != 1 || strcmp(fast.data, "x") != 0) abort();
    } else if (rc == 1) {
        json_t *chunk = json_loadb((const char *)data, size, 0, NULL);
        if (!chunk) abort();
        buf full;
        buf_init(&full, 1 << 20);
        buf_append_str(&full, "x");
        textchunk_end want;
        fuzz_full_parse(chunk, &full, &want);
        if (full.len != fast.len || memcmp(full.data, fast.data, fast.len) != 0) abort();
        if (strcmp(want.finish_reason, end.finish_reason) != 0) abort();
        if (want.prompt_tokens != end.prompt_tokens) abort();
        if (want.completion_tokens != end.completion_tokens) abort();
        buf_cleanup(&full);
        json_decref(chunk);
    } else {
        abort(); /* the cap of 1 MiB cannot be reached by a 16 KiB input */
    }
    buf_cleanup(&fast);
    return 0;
}

/*
 * jsonw: jansson values written as JSON text (see jsonw.h).
 */
#include "core/jsonw.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"

/* The flags written here; with any other, jansson writes the value. */
#define JSONW__OWN_FLAGS (JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(31))

/* Nesting deeper than this is left to jansson, which refuses what it
 * cannot write; chatplane's values are a few levels deep. */
#define JSONW__DEPTH 512

/* True when one of the 8 bytes of w is below 0x20, '"' or '\\' (or,
 * rarely, when a byte above such a one borrows: the caller then looks at
 * each byte). Bytes from 0x80 are never flagged. */
static bool jsonw__special8(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
    uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
    uint64_t below = (w - ones * 0x20) & ~w;
    uint64_t is_quote = (quote - ones) & ~quote, is_backslash = (backslash - ones) & ~backslash;
    return ((below | is_quote | is_backslash) & highs) != 0;
}

int jsonw_string(buf *out, const char *s, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = buf_append_char(out, '"');
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        /* Eight plain bytes at a time: most text needs no escape. */
        while (i + 8 <= len) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (jsonw__special8(w)) break;
            i += 8;
        }
        if (i >= len) break;
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        rc |= buf_append(out, s + run, i - run);
        run = i + 1;
        char esc[7] = {'\\', 0};
        size_t n = 2;
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 0xF];
            n = 6;
        }
        rc |= buf_append(out, esc, n);
    }
    rc |= buf_append(out, s + run, len - run);
    rc |= buf_append_char(out, '"');
    return rc;
}

static int jsonw__jansson_cb(const char *data, size_t size, void *arg)
{
    return buf_append(arg, data, size) == 0 ? 0 : -1;
}

/* The value written by jansson itself, for reals and for what this file
 * does not write. */
static int jsonw__by_jansson(buf *out, const json_t *v, size_t flags)
{
    return json_dump_callback(v, jsonw__jansson_cb, out, flags | JSON_ENCODE_ANY) == 0 ? 0 : -1;
}

static int jsonw__checked_string(buf *out, const char *s, size_t len)
{
    /* jansson refuses a string that is not UTF-8 (one made without its
     * check); so does this. */
    if (utf8_valid_prefix(s, len) != len) return -1;
    return jsonw_string(out, s, len) == 0 ? 0 : -1;
}

static int jsonw__value(buf *out, const json_t *v, size_t flags, int depth)
{
    if (depth > JSONW__DEPTH) return jsonw__by_jansson(out, v, flags);
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *key;
        json_t *item;
        bool first = true;
        rc |= buf_append_char(out, '{');
        json_object_foreach((json_t *)v, key, item)
        {
            if (!first) rc |= buf_append_char(out, ',');
            first = false;
            if (jsonw__checked_string(out, key, strlen(key)) != 0) return -1;
            rc |= buf_append_char(out, ':');
            if (jsonw__value(out, item, flags, depth + 1) != 0) return -1;
        }
        rc |= buf_append_char(out, '}');
        break;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        rc |= buf_append_char(out, '[');
        for (size_t i = 0; i < n; i++) {
            if (i) rc |= buf_append_char(out, ',');
            if (jsonw__value(out, json_array_get(v, i), flags, depth + 1) != 0) return -1;
        }
        rc |= buf_append_char(out, ']');
        break;
    }
    case JSON_STRING:
        return jsonw__checked_string(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        rc |= buf_append_i64(out, (int64_t)json_integer_value(v));
        break;
    case JSON_REAL: {
        /* jansson writes a real with "%.Pg" (P the flags' precision, 17
         * without one) and adds ".0" when that has no '.' or 'e': a whole
         * number of fewer than P digits is its digits and ".0", written
         * here, since a run's JSON holds several (a cost of 0.0). Other
         * reals and -0.0 go to jansson. */
        static const double below[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
        int precision = (int)((flags >> 11) & 0x1F);
        double limit = precision == 0 || precision > 15 ? 1e15 + 1 : below[precision];
        double d = json_real_value(v);
        if (fabs(d) < limit && d == (double)(int64_t)d && !(d == 0 && signbit(d))) {
            rc |= buf_append_i64(out, (int64_t)d);
            rc |= buf_append(out, ".0", 2);
            break;
        }
        return jsonw__by_jansson(out, v, flags);
    }
    case JSON_TRUE:
        rc |= buf_append(out, "true", 4);
        break;
    case JSON_FALSE:
        rc |= buf_append(out, "false", 5);
        break;
    case JSON_NULL:
        rc |= buf_append(out, "null", 4);
        break;
    }
    return rc == 0 ? 0 : -1;
}

int jsonw_value(buf *out, const json_t *v, size_t flags)
{
    if (!v) return -1;
    if (!(flags & JSON_ENCODE_ANY) && !json_is_object(v) && !json_is_array(v)) return -1;
    if ((flags & ~(size_t)JSONW__OWN_FLAGS) || !(flags & JSON_COMPACT))
        return jsonw__by_jansson(out, v, flags);
    return jsonw__value(out, v, flags, 0);
}

char *jsonw_dumps(const json_t *v, size_t flags)
{
    buf b;
    buf_init(&b, JSONW_MAX);
    if (jsonw_value(&b, v, flags) != 0) {
        buf_cleanup(&b);
        return NULL;
    }
    return buf_detach(&b, NULL);
}

size_t jsonw_length(const json_t *v, size_t flags)
{
    buf b;
    buf_init(&b, JSONW_MAX);
    size_t n = jsonw_value(&b, v, flags) == 0 ? b.len : 0;
    buf_cleanup(&b);
    return n;
}

#include "core/canon.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

/* The most bytes canon_json_str produces before it gives up. */
#define CANON__STR_CAP ((size_t)16 * 1024 * 1024)

/* The deepest nesting of arrays and objects written. jansson's parser refuses
 * deeper documents, so only values built by hand can reach it; the limit
 * keeps the recursion (and a cyclic value) from exhausting the stack. */
#define CANON__MAX_DEPTH 2048

/* Objects with at most this many members sort their keys on the stack. */
#define CANON__SMALL_OBJECT 16

/* Reals whose magnitude is below this and hold an integral value print as
 * integers; from here on a double no longer holds every integer. */
#define CANON__EXACT_INT_LIMIT 9007199254740992.0 /* 2^53 */

/*
 * Where the writer sends its bytes: appended to a buffer, or, when out is
 * NULL, folded into a running FNV-1a hash. Hashing directly lets a
 * fingerprint be computed without building (and capping) a string.
 */
typedef struct canon__sink {
    buf *out;
    uint64_t hash;
} canon__sink;

typedef struct canon__member {
    const char *key;
    size_t key_len;
    json_t *value;
} canon__member;

static int canon__write(canon__sink *s, const json_t *v, int depth);

uint64_t canon_hash(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

static int canon__put(canon__sink *s, const void *data, size_t len)
{
    if (!s->out) {
        s->hash = canon_hash(s->hash, data, len);
        return 0;
    }
    return buf_append(s->out, data, len);
}

static int canon__puts(canon__sink *s, const char *str)
{
    return canon__put(s, str, strlen(str));
}

/*
 * Writes a JSON string literal. Only '"', '\\' and control characters are
 * escaped; everything else, including DEL and the bytes of non-ASCII UTF-8,
 * is copied as it is, in runs, so plain text costs one append per run.
 */
static int canon__write_string(canon__sink *s, const char *str, size_t len)
{
    if (canon__put(s, "\"", 1) != 0) return BUF_TOOBIG;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)str[i];
        char esc[8];
        const char *e = NULL;
        switch (c) {
        case '"':
            e = "\\\"";
            break;
        case '\\':
            e = "\\\\";
            break;
        case '\b':
            e = "\\b";
            break;
        case '\f':
            e = "\\f";
            break;
        case '\n':
            e = "\\n";
            break;
        case '\r':
            e = "\\r";
            break;
        case '\t':
            e = "\\t";
            break;
        default:
            if (c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", c);
                e = esc;
            }
            break;
        }
        if (!e) continue;
        if (canon__put(s, str + run, i - run) != 0 || canon__puts(s, e) != 0) return BUF_TOOBIG;
        run = i + 1;
    }
    if (canon__put(s, str + run, len - run) != 0) return BUF_TOOBIG;
    return canon__put(s, "\"", 1);
}

/*
 * Writes a real: as an integer when it holds one that a double represents
 * exactly (this also turns -0.0 into 0), else with the fewest significant
 * digits, from 15 to 17, that read back as the same double. %g follows
 * LC_NUMERIC; chatplane never changes the locale, so the point is '.'.
 */
static int canon__write_real(canon__sink *s, double x)
{
    char tmp[40];
    if (x == trunc(x) && fabs(x) < CANON__EXACT_INT_LIMIT) {
        snprintf(tmp, sizeof tmp, "%lld", (long long)x);
        return canon__puts(s, tmp);
    }
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, x);
        if (prec == 17 || strtod(tmp, NULL) == x) break;
    }
    return canon__puts(s, tmp);
}

static int canon__member_cmp(const void *a, const void *b)
{
    const canon__member *x = a, *y = b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0) return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

/*
 * Writes an object with its members sorted by the bytes of their keys (a
 * key that is a prefix of another sorts first). Keys may hold NUL bytes,
 * so they are compared with their lengths, not as C strings.
 */
static int canon__write_object(canon__sink *s, const json_t *v, int depth)
{
    canon__member small[CANON__SMALL_OBJECT];
    size_t n = json_object_size(v);
    canon__member *m = n <= CANON__SMALL_OBJECT ? small : xmalloc(n * sizeof *m);
    size_t i = 0;
    int rc = 0;

    /* jansson's iteration takes a non-const object; it is only read here. */
    json_t *obj = (json_t *)v;
    for (void *it = json_object_iter(obj); it && i < n; it = json_object_iter_next(obj, it)) {
        m[i].key = json_object_iter_key(it);
        m[i].key_len = json_object_iter_key_len(it);
        m[i].value = json_object_iter_value(it);
        i++;
    }
    qsort(m, i, sizeof *m, canon__member_cmp);

    rc = canon__put(s, "{", 1);
    for (size_t k = 0; rc == 0 && k < i; k++) {
        if (k > 0) rc = canon__put(s, ",", 1);
        if (rc == 0) rc = canon__write_string(s, m[k].key, m[k].key_len);
        if (rc == 0) rc = canon__put(s, ":", 1);
        if (rc == 0) rc = canon__write(s, m[k].value, depth + 1);
    }
    if (rc == 0) rc = canon__put(s, "}", 1);

    if (m != small) free(m);
    return rc;
}

static int canon__write_array(canon__sink *s, const json_t *v, int depth)
{
    int rc = canon__put(s, "[", 1);
    size_t n = json_array_size(v);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (i > 0) rc = canon__put(s, ",", 1);
        if (rc == 0) rc = canon__write(s, json_array_get(v, i), depth + 1);
    }
    if (rc == 0) rc = canon__put(s, "]", 1);
    return rc;
}

/* Writes any value; depth counts the arrays and objects around it. */
static int canon__write(canon__sink *s, const json_t *v, int depth)
{
    char tmp[32];
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (depth >= CANON__MAX_DEPTH) return BUF_TOOBIG;
        return canon__write_object(s, v, depth);
    case JSON_ARRAY:
        if (depth >= CANON__MAX_DEPTH) return BUF_TOOBIG;
        return canon__write_array(s, v, depth);
    case JSON_STRING:
        return canon__write_string(s, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        return canon__puts(s, tmp);
    case JSON_REAL:
        return canon__write_real(s, json_real_value(v));
    case JSON_TRUE:
        return canon__puts(s, "true");
    case JSON_FALSE:
        return canon__puts(s, "false");
    case JSON_NULL:
        return canon__puts(s, "null");
    }
    return BUF_TOOBIG;
}

/*
 * Appends the canonical form of v to out. When it does not fit under out's
 * cap (or nests deeper than CANON__MAX_DEPTH) out is put back as it was and
 * BUF_TOOBIG is returned, so a caller never sees half a value.
 */
int canon_json(const json_t *v, buf *out)
{
    size_t start = out->len;
    canon__sink s = {.out = out, .hash = 0};
    if (canon__write(&s, v, 0) == 0) return 0;
    if (out->data) {
        out->len = start;
        out->data[start] = '\0';
    }
    return BUF_TOOBIG;
}

char *canon_json_str(const json_t *v)
{
    buf b;
    buf_init(&b, CANON__STR_CAP);
    if (canon_json(v, &b) != 0) {
        buf_cleanup(&b);
        return NULL;
    }
    return buf_detach(&b, NULL);
}

/*
 * Hashes the canonical arguments straight into the fingerprint, so no string
 * is built and no size cap applies. Arguments nested too deeply to write
 * hash as one byte that no canonical JSON starts with; such calls of one
 * tool then share a fingerprint, which only matters to a pathological model.
 */
uint64_t canon_fingerprint(const char *tool, const json_t *arguments)
{
    if (!tool) tool = "";
    uint64_t h = canon_hash(CANON_HASH_SEED, tool, strlen(tool) + 1);
    if (!arguments) return canon_hash(h, "{}", 2);
    canon__sink s = {.out = NULL, .hash = h};
    if (canon__write(&s, arguments, 0) != 0) return canon_hash(h, "\xff", 1);
    return s.hash;
}

/*
 * textchunk: see textchunk.h. The scanner is a recursive-descent pass over
 * RFC 8259 JSON that declines (returns false) both on invalid input and on
 * anything outside the plain text-chunk shape; the full parser then decides.
 * It is deliberately stricter than jansson where the two could differ: an
 * exponent or a long number (jansson rejects integers beyond 64 bits and
 * reals that overflow), \u0000 (rejected by jansson without JSON_ALLOW_NUL),
 * a lone surrogate, deep nesting.
 */
#include "core/textchunk.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"

#define TC_MAX_DEPTH  32 /* deeper input is left to the full parser */
#define TC_MAX_NUMBER 15 /* characters; longer numbers too */
#define TC_KEY_MAX    24 /* keys this long or longer are none of ours */

typedef struct tc {
    const unsigned char *p, *end;
    int depth;
    int rc; /* BUF_TOOBIG once the text overflowed its cap */
    textchunk_end *out;
    /* Where delta.content's string began (its opening quote) and ended
     * (past its closing quote); NULL when it was null or absent. */
    const unsigned char *text_at, *text_end;
} tc;

/* Where a string's decoded bytes go: the text buffer, a small array for a
 * key, or nowhere. */
typedef struct tc_sink {
    buf *b;
    char *fix;
    size_t fixcap, fixlen;
} tc_sink;

static bool textchunk__emit(tc *s, tc_sink *k, const void *d, size_t n)
{
    if (!k) return true;
    if (k->b) {
        if (buf_append(k->b, d, n) != 0) {
            s->rc = BUF_TOOBIG;
            return false;
        }
        return true;
    }
    /* A key too long for the array cannot be one we look for; its length
     * is still counted so it never compares equal to a known name. */
    if (k->fixlen + n < k->fixcap) memcpy(k->fix + k->fixlen, d, n);
    k->fixlen += n;
    return true;
}

/* The scans below walk a local pointer and store it once: a store through
 * s->p in the loop would make the compiler reload it after every byte,
 * since a byte read may alias it. */
static void textchunk__ws(tc *s)
{
    const unsigned char *p = s->p, *end = s->end;
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    s->p = p;
}

/* Consumes c (after white space) or fails. */
static bool textchunk__expect(tc *s, unsigned char c)
{
    textchunk__ws(s);
    if (s->p >= s->end || *s->p != c) return false;
    s->p++;
    return true;
}

static bool textchunk__word(tc *s, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0) return false;
    s->p += n;
    return true;
}

static int textchunk__hex4(const unsigned char *p)
{
    int v = 0;
    for (int i = 0; i < 4; i++) {
        int c = p[i], d;
        if (c >= '0' && c <= '9') {
            d = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            d = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            d = c - 'A' + 10;
        } else {
            return -1;
        }
        v = v * 16 + d;
    }
    return v;
}

/* Reads \uXXXX (and the low half of a surrogate pair) at p, just past the
 * backslash; returns the code point, or -1 to decline. */
static long textchunk__unicode(tc *s)
{
    if (s->end - s->p < 5) return -1;
    int cp = textchunk__hex4(s->p + 1);
    if (cp <= 0) return -1; /* invalid, or \u0000 */
    s->p += 5;
    if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
    if (cp < 0xD800 || cp > 0xDBFF) return cp;
    if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u') return -1;
    int low = textchunk__hex4(s->p + 2);
    if (low < 0xDC00 || low > 0xDFFF) return -1;
    s->p += 6;
    return 0x10000L + (((long)cp - 0xD800) << 10) + (low - 0xDC00);
}

static bool textchunk__emit_cp(tc *s, tc_sink *k, long cp)
{
    char u[UTF8_SEQ_MAX];
    size_t n = utf8_encode((uint32_t)cp, u);
    return n > 0 && textchunk__emit(s, k, u, n);
}

/* Reads a string at s->p (its opening quote), decoding it into k (or
 * nowhere when k is NULL). Runs of plain bytes are emitted at once. */
static bool textchunk__string(tc *s, tc_sink *k)
{
    if (s->p >= s->end || *s->p != '"') return false;
    s->p++;
    const unsigned char *run = s->p;
    while (s->p < s->end) {
        /* The plain ASCII bytes at once. */
        const unsigned char *p = s->p, *end = s->end;
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
        s->p = p;
        if (p == end) break;
        unsigned char c = *p;
        if (c == '"') {
            bool ok = textchunk__emit(s, k, run, (size_t)(s->p - run));
            s->p++;
            return ok;
        }
        if (c < 0x20) return false;
        if (c >= 0x80) {
            size_t n = utf8_seq((const char *)s->p, (size_t)(s->end - s->p));
            if (n == 0) return false;
            s->p += n;
            continue;
        }
        /* A backslash. */
        if (!textchunk__emit(s, k, run, (size_t)(s->p - run))) return false;
        if (s->end - s->p < 2) return false;
        static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
        const char *e = memchr(from, s->p[1], sizeof from - 1);
        if (e) {
            if (!textchunk__emit(s, k, &to[e - from], 1)) return false;
            s->p += 2;
        } else if (s->p[1] == 'u') {
            s->p++;
            long cp = textchunk__unicode(s);
            if (cp < 0 || !textchunk__emit_cp(s, k, cp)) return false;
        } else {
            return false;
        }
        run = s->p;
    }
    return false;
}

/* Reads a number; copies its text into tok (TC_MAX_NUMBER + 1 bytes). */
static bool textchunk__number(tc *s, char *tok)
{
    const unsigned char *start = s->p;
    if (s->p < s->end && *s->p == '-') s->p++;
    if (s->p < s->end && *s->p == '0') {
        s->p++;
    } else if (s->p < s->end && *s->p >= '1' && *s->p <= '9') {
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    } else {
        return false;
    }
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        const unsigned char *frac = s->p;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
        if (s->p == frac) return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) return false;
    size_t n = (size_t)(s->p - start);
    if (n > TC_MAX_NUMBER) return false;
    memcpy(tok, start, n);
    tok[n] = '\0';
    return true;
}

static bool textchunk__value(tc *s);

/* Reads a key and the colon after it; the key's decoded text goes to key
 * (TC_KEY_MAX bytes, NUL-terminated), or "" when it is longer. */
static bool textchunk__key(tc *s, char *key)
{
    textchunk__ws(s);
    tc_sink k = {.fix = key, .fixcap = TC_KEY_MAX};
    if (!textchunk__string(s, &k)) return false;
    key[k.fixlen < TC_KEY_MAX ? k.fixlen : 0] = '\0';
    return textchunk__expect(s, ':');
}

/* After a member: true with *more set when a comma follows, false when the
 * object (close '}') or array (close ']') is not properly continued. */
static bool textchunk__next(tc *s, unsigned char close, bool *more)
{
    textchunk__ws(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        *more = true;
        return true;
    }
    if (s->p < s->end && *s->p == close) {
        s->p++;
        *more = false;
        return true;
    }
    return false;
}

/* Opens an object or array at s->p, counting depth; *empty when it closes
 * at once. */
static bool textchunk__open(tc *s, unsigned char open, unsigned char close, bool *empty)
{
    textchunk__ws(s);
    if (s->p >= s->end || *s->p != open) return false;
    if (++s->depth > TC_MAX_DEPTH) return false;
    s->p++;
    textchunk__ws(s);
    *empty = s->p < s->end && *s->p == close;
    if (*empty) {
        s->p++;
        s->depth--;
    }
    return true;
}

/* Reads the members of known key number i, with ctx the caller's. */
typedef bool (*tc_member_fn)(tc *s, int i, void *ctx);

/* Walks an object: the value of each key in keys (NULL-terminated, at
 * most 32) goes to fn, and a key seen twice declines, since the full
 * parser keeps the last and the scanner would have kept the first; every
 * other value is validated and left. */
static bool textchunk__members(tc *s, const char *const *keys, tc_member_fn fn, void *ctx)
{
    bool more;
    if (!textchunk__open(s, '{', '}', &more)) return false;
    if (more) return true; /* empty */
    unsigned long seen = 0;
    char key[TC_KEY_MAX];
    do {
        if (!textchunk__key(s, key)) return false;
        int i = 0;
        while (keys[i] && (keys[i][0] != key[0] || strcmp(keys[i], key) != 0)) i++;
        if (keys[i]) {
            if ((seen & (1UL << i)) || !fn(s, i, ctx)) return false;
            seen |= 1UL << i;
        } else if (!textchunk__value(s)) {
            return false;
        }
        if (!textchunk__next(s, '}', &more)) return false;
    } while (more);
    s->depth--;
    return true;
}

static bool textchunk__object(tc *s)
{
    static const char *const none[] = {NULL};
    return textchunk__members(s, none, NULL, NULL);
}

static bool textchunk__array(tc *s)
{
    bool more;
    if (!textchunk__open(s, '[', ']', &more)) return false;
    if (more) return true; /* empty */
    do {
        if (!textchunk__value(s) || !textchunk__next(s, ']', &more)) return false;
    } while (more);
    s->depth--;
    return true;
}

/* Validates any value. */
static bool textchunk__value(tc *s)
{
    textchunk__ws(s);
    if (s->p >= s->end) return false;
    char tok[TC_MAX_NUMBER + 1];
    switch (*s->p) {
    case '"':
        return textchunk__string(s, NULL);
    case '{':
        return textchunk__object(s);
    case '[':
        return textchunk__array(s);
    case 't':
        return textchunk__word(s, "true");
    case 'f':
        return textchunk__word(s, "false");
    case 'n':
        return textchunk__word(s, "null");
    default:
        return textchunk__number(s, tok);
    }
}

/* True when the value at s->p is null (consumed). */
static bool textchunk__null(tc *s)
{
    textchunk__ws(s);
    return textchunk__word(s, "null");
}

/* delta: "content" (a string, or null) is the text; "tool_calls" may only
 * be null; anything else is ignored as the full parser ignores it. */
static bool textchunk__delta_member(tc *s, int i, void *text)
{
    if (i == 1) return textchunk__null(s); /* tool_calls */
    textchunk__ws(s);
    if (s->p >= s->end || *s->p != '"') return textchunk__null(s);
    tc_sink k = {.b = text};
    s->text_at = s->p;
    if (!textchunk__string(s, &k)) return false;
    s->text_end = s->p;
    return true;
}

static bool textchunk__delta(tc *s, buf *text)
{
    static const char *const keys[] = {"content", "tool_calls", NULL};
    return textchunk__members(s, keys, textchunk__delta_member, text);
}

/* finish_reason: null, or a string shorter than TEXTCHUNK_FINISH_MAX,
 * which is the finish reason unless empty. */
static bool textchunk__finish(tc *s)
{
    textchunk__ws(s);
    if (s->p < s->end && *s->p != '"') return textchunk__null(s);
    char fr[TEXTCHUNK_FINISH_MAX];
    tc_sink k = {.fix = fr, .fixcap = sizeof fr};
    if (!textchunk__string(s, &k) || k.fixlen >= sizeof fr) return false;
    memcpy(s->out->finish_reason, fr, k.fixlen);
    s->out->finish_reason[k.fixlen] = '\0';
    return true;
}

/* A count of usage: a whole number of at least 0 is taken; any other
 * value is read and left, as the full parse leaves it. */
static bool textchunk__count(tc *s, long long *count)
{
    textchunk__ws(s);
    if (s->p >= s->end) return false;
    if (*s->p != '-' && (*s->p < '0' || *s->p > '9')) return textchunk__value(s);
    char tok[TC_MAX_NUMBER + 1];
    if (!textchunk__number(s, tok)) return false;
    /* jansson reads "-0" as the integer 0, and "2.0" as a real. */
    long long v = strchr(tok, '.') ? -1 : strtoll(tok, NULL, 10);
    if (v >= 0) *count = v;
    return true;
}

/* usage: null, or an object whose prompt_tokens and completion_tokens are
 * taken; its other members are read and left. */
static bool textchunk__usage_member(tc *s, int i, void *ctx)
{
    (void)ctx;
    return textchunk__count(s, i == 0 ? &s->out->prompt_tokens : &s->out->completion_tokens);
}

static bool textchunk__usage(tc *s)
{
    static const char *const keys[] = {"prompt_tokens", "completion_tokens", NULL};
    textchunk__ws(s);
    if (s->p < s->end && *s->p != '{') return textchunk__null(s);
    return textchunk__members(s, keys, textchunk__usage_member, NULL);
}

/* One choice: index 0 (or none), a delta object, a finish_reason; a
 * "message" (the non-streamed form) declines. */
static bool textchunk__choice_member(tc *s, int i, void *text)
{
    char tok[TC_MAX_NUMBER + 1];
    switch (i) {
    case 0: /* index */
        textchunk__ws(s);
        return textchunk__number(s, tok) && strcmp(tok, "0") == 0;
    case 1:
        return textchunk__delta(s, text);
    case 2:
        return textchunk__finish(s);
    default: /* message */
        return false;
    }
}

static bool textchunk__choice(tc *s, buf *text)
{
    static const char *const keys[] = {"index", "delta", "finish_reason", "message", NULL};
    return textchunk__members(s, keys, textchunk__choice_member, text);
}

/* choices: empty, or exactly one choice. */
static bool textchunk__choices(tc *s, buf *text)
{
    bool more;
    if (!textchunk__open(s, '[', ']', &more)) return false;
    if (more) return true;
    if (!textchunk__choice(s, text) || !textchunk__next(s, ']', &more) || more) return false;
    s->depth--;
    return true;
}

/* The top-level object. "error" declines, as does "object": "error" (the
 * two forms of an error inside a stream) and a usage that is neither null
 * nor an object. */
static bool textchunk__chunk_member(tc *s, int i, void *text)
{
    switch (i) {
    case 0:
        return textchunk__choices(s, text);
    case 1:
        return textchunk__usage(s);
    case 2: { /* object */
        textchunk__ws(s);
        if (s->p >= s->end || *s->p != '"') return textchunk__value(s);
        char obj[TC_KEY_MAX];
        tc_sink k = {.fix = obj, .fixcap = sizeof obj};
        return textchunk__string(s, &k) && !(k.fixlen == 5 && memcmp(obj, "error", 5) == 0);
    }
    default: /* error */
        return false;
    }
}

static bool textchunk__chunk(tc *s, buf *text)
{
    static const char *const keys[] = {"choices", "usage", "object", "error", NULL};
    if (!textchunk__members(s, keys, textchunk__chunk_member, text)) return false;
    textchunk__ws(s);
    return s->p == s->end;
}

/* Takes back what a declined read appended to text. */
static void textchunk__undo(buf *text, size_t mark)
{
    if (text->data) {
        text->len = mark;
        text->data[mark] = '\0';
    }
}

/* The full read; with memo, keeps the chunk's shape when it has one. */
static int textchunk__read(const char *data, size_t len, buf *text, textchunk_end *end,
                           textchunk_memo *memo)
{
    end->finish_reason[0] = '\0';
    end->prompt_tokens = end->completion_tokens = -1;
    const unsigned char *p = (const unsigned char *)data;
    tc s = {.p = p, .end = p + len, .out = end};
    size_t mark = text->len;
    if (textchunk__chunk(&s, text)) {
        if (memo && s.text_at) {
            size_t head = (size_t)(s.text_at - p), tail = (size_t)(p + len - s.text_end);
            if (head > 0 && head <= sizeof memo->head && tail <= sizeof memo->tail) {
                memcpy(memo->head, data, head);
                memcpy(memo->tail, s.text_end, tail);
                memo->head_len = (unsigned short)head;
                memo->tail_len = (unsigned short)tail;
                memo->end = *end;
            }
        }
        return 1;
    }
    end->finish_reason[0] = '\0';
    end->prompt_tokens = end->completion_tokens = -1;
    textchunk__undo(text, mark);
    return s.rc == BUF_TOOBIG ? BUF_TOOBIG : 0;
}

int textchunk_read(const char *data, size_t len, buf *text, textchunk_end *end)
{
    return textchunk__read(data, len, text, end, NULL);
}

int textchunk_read_memo(const char *data, size_t len, buf *text, textchunk_end *end,
                        textchunk_memo *memo)
{
    size_t head = memo->head_len, tail = memo->tail_len;
    /* The text is a string of at least its two quotes. */
    if (head > 0 && len >= head + tail + 2 && memcmp(data, memo->head, head) == 0 &&
        memcmp(data + len - tail, memo->tail, tail) == 0) {
        const unsigned char *p = (const unsigned char *)data;
        tc s = {.p = p + head, .end = p + len - tail, .out = end};
        tc_sink k = {.b = text};
        size_t mark = text->len;
        /* The string must end exactly where the kept tail begins. Anything
         * else (a string that stops short, or runs on, or overflows the
         * text's cap) is left to the full read, which decides. */
        if (textchunk__string(&s, &k) && s.p == s.end) {
            *end = memo->end;
            return 1;
        }
        textchunk__undo(text, mark);
    }
    return textchunk__read(data, len, text, end, memo);
}

#include "core/elicit.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "core/civil.h"
#include "lib/utf8.h"

static const char *const elicit__statuses[ELICIT__STATUS_COUNT] = {
    "pending", "accepted", "declined", "cancelled", "expired"};
static const char *const elicit__actions[ELICIT__ACTION_COUNT] = {"accept", "decline", "cancel"};

static int elicit__parse(const char *const *names, int n, const char *name)
{
    if (!name) return -1;
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return i;
    return -1;
}

const char *elicit_status_name(elicit_status s)
{
    return (unsigned)s < ELICIT__STATUS_COUNT ? elicit__statuses[s] : "unknown";
}

const char *elicit_action_name(elicit_action a)
{
    return (unsigned)a < ELICIT__ACTION_COUNT ? elicit__actions[a] : "unknown";
}

int elicit_status_parse(const char *name, elicit_status *out)
{
    int i = elicit__parse(elicit__statuses, ELICIT__STATUS_COUNT, name);
    if (i < 0) return -1;
    *out = (elicit_status)i;
    return 0;
}

int elicit_action_parse(const char *name, elicit_action *out)
{
    int i = elicit__parse(elicit__actions, ELICIT__ACTION_COUNT, name);
    if (i < 0) return -1;
    *out = (elicit_action)i;
    return 0;
}

elicit_status elicit_action_status(elicit_action a)
{
    return a == ELICIT_ACCEPT    ? ELICIT_ACCEPTED
           : a == ELICIT_DECLINE ? ELICIT_DECLINED
                                 : ELICIT_CANCELLED;
}

/* ---- the schema ---- */

/* A field name as it appears in messages: at most ELICIT_NAME_MAX bytes of
 * a name that was checked to be UTF-8 without control characters. */
#define ELICIT__FIELD "%.64s"

static bool elicit__name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > ELICIT_NAME_MAX || !utf8_valid(name, n)) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return false;
    return true;
}

/* A non-negative integer keyword (minLength, maxItems), absent or not. */
static bool elicit__count_ok(const json_t *v)
{
    return !v || (json_is_integer(v) && json_integer_value(v) >= 0);
}

/* The choices of a field: "enum" (strings) or "oneOf"/"anyOf" (objects
 * with a string "const"), or NULL when it has none. Sets *bad when the
 * keyword is there but malformed. */
static const json_t *elicit__choices(const json_t *holder, bool *bad)
{
    *bad = false;
    const json_t *e = json_object_get(holder, "enum");
    if (!e) e = json_object_get(holder, "oneOf");
    if (!e) e = json_object_get(holder, "anyOf");
    if (!e) return NULL;
    size_t n = json_array_size(e);
    if (!json_is_array(e) || n == 0 || n > ELICIT_CHOICES_MAX) {
        *bad = true;
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        const json_t *c = json_array_get(e, i);
        if (json_is_object(c)) c = json_object_get(c, "const");
        if (!json_is_string(c)) {
            *bad = true;
            return NULL;
        }
    }
    return e;
}

static const char *elicit__choice_at(const json_t *choices, size_t i)
{
    const json_t *c = json_array_get(choices, i);
    if (json_is_object(c)) c = json_object_get(c, "const");
    return json_string_value(c);
}

static bool elicit__is_choice(const json_t *choices, const char *s)
{
    for (size_t i = 0; i < json_array_size(choices); i++)
        if (strcmp(elicit__choice_at(choices, i), s) == 0) return true;
    return false;
}

static const char *const elicit__formats[] = {"email", "uri", "date", "date-time"};

static int elicit__field_check(const char *name, const json_t *f, char *err, size_t errlen)
{
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        int k_ = snprintf(err, errlen, "requestedSchema.properties." ELICIT__FIELD ": ", name);    \
        if (k_ >= 0 && (size_t)k_ < errlen) snprintf(err + k_, errlen - (size_t)k_, __VA_ARGS__);  \
        return -1;                                                                                 \
    } while (0)
    if (!json_is_object(f)) FAIL("a field must be an object");
    const char *type = json_string_value(json_object_get(f, "type"));
    if (!type) FAIL("type must be a string");
    bool bad;
    if (strcmp(type, "string") == 0) {
        if (!elicit__count_ok(json_object_get(f, "minLength")) ||
            !elicit__count_ok(json_object_get(f, "maxLength")))
            FAIL("minLength and maxLength must be integers of at least 0");
        const json_t *fmt = json_object_get(f, "format");
        if (fmt) {
            const char *fs = json_string_value(fmt);
            bool known = false;
            for (size_t i = 0; fs && i < sizeof elicit__formats / sizeof *elicit__formats; i++)
                known = known || strcmp(fs, elicit__formats[i]) == 0;
            if (!known) FAIL("format must be one of email, uri, date, date-time");
        }
        elicit__choices(f, &bad);
        if (bad)
            FAIL("enum or oneOf must list 1 to %d strings (or {\"const\": string})",
                 ELICIT_CHOICES_MAX);
    } else if (strcmp(type, "number") == 0 || strcmp(type, "integer") == 0) {
        const json_t *mn = json_object_get(f, "minimum"), *mx = json_object_get(f, "maximum");
        if ((mn && !json_is_number(mn)) || (mx && !json_is_number(mx)))
            FAIL("minimum and maximum must be numbers");
    } else if (strcmp(type, "array") == 0) {
        const json_t *items = json_object_get(f, "items");
        if (!json_is_object(items) || !elicit__choices(items, &bad))
            FAIL("an array field must have items with enum or anyOf: a choice of several");
        if (!elicit__count_ok(json_object_get(f, "minItems")) ||
            !elicit__count_ok(json_object_get(f, "maxItems")))
            FAIL("minItems and maxItems must be integers of at least 0");
    } else if (strcmp(type, "boolean") != 0) {
        FAIL("type must be one of string, number, integer, boolean, array");
    }
    return 0;
#undef FAIL
}

int elicit_schema_check(const json_t *schema, char *err, size_t errlen)
{
    if (!json_is_object(schema)) {
        snprintf(err, errlen, "requestedSchema must be an object");
        return -1;
    }
    const char *type = json_string_value(json_object_get(schema, "type"));
    if (!type || strcmp(type, "object") != 0) {
        snprintf(err, errlen, "requestedSchema.type must be \"object\"");
        return -1;
    }
    const json_t *props = json_object_get(schema, "properties");
    if (!json_is_object(props)) {
        snprintf(err, errlen, "requestedSchema.properties must be an object");
        return -1;
    }
    if (json_object_size(props) > ELICIT_FIELDS_MAX) {
        snprintf(err, errlen, "requestedSchema.properties has %zu fields, more than %d",
                 json_object_size(props), ELICIT_FIELDS_MAX);
        return -1;
    }
    const char *name;
    const json_t *f;
    json_object_foreach((json_t *)props, name, f)
    {
        if (!elicit__name_ok(name)) {
            snprintf(err, errlen,
                     "requestedSchema.properties: a field name must be 1 to %d bytes of UTF-8 "
                     "without control characters",
                     ELICIT_NAME_MAX);
            return -1;
        }
        if (elicit__field_check(name, f, err, errlen) != 0) return -1;
    }
    const json_t *req = json_object_get(schema, "required");
    if (req && !json_is_array(req)) {
        snprintf(err, errlen, "requestedSchema.required must be an array of field names");
        return -1;
    }
    for (size_t i = 0; i < json_array_size(req); i++) {
        const char *r = json_string_value(json_array_get(req, i));
        if (!r || !json_object_get(props, r)) {
            snprintf(
                err, errlen,
                "requestedSchema.required[%zu] must name a field of requestedSchema.properties", i);
            return -1;
        }
    }
    return 0;
}

/* ---- the answer ---- */

static bool elicit__digits(const char *s, int n)
{
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9') return false;
    return true;
}

static int elicit__num(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) v = v * 10 + (s[i] - '0');
    return v;
}

/* YYYY-MM-DD, a day that exists; returns the length read (10) or 0. */
static size_t elicit__date(const char *s)
{
    if (strlen(s) < 10 || !elicit__digits(s, 4) || s[4] != '-' || !elicit__digits(s + 5, 2) ||
        s[7] != '-' || !elicit__digits(s + 8, 2))
        return 0;
    int y = elicit__num(s, 4), m = elicit__num(s + 5, 2), d = elicit__num(s + 8, 2);
    if (m < 1 || m > 12 || d < 1 || d > civil_month_days(y, m)) return 0;
    return 10;
}

/* RFC 3339: a date, T, hh:mm:ss, an optional fraction, then Z or +hh:mm. */
static bool elicit__date_time(const char *s)
{
    if (!elicit__date(s)) return false;
    s += 10;
    if ((*s != 'T' && *s != 't') || strlen(s) < 9 || !elicit__digits(s + 1, 2) || s[3] != ':' ||
        !elicit__digits(s + 4, 2) || s[6] != ':' || !elicit__digits(s + 7, 2))
        return false;
    if (elicit__num(s + 1, 2) > 23 || elicit__num(s + 4, 2) > 59 || elicit__num(s + 7, 2) > 60)
        return false;
    s += 9;
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9') return false;
        while (*s >= '0' && *s <= '9') s++;
    }
    if ((*s == 'Z' || *s == 'z') && s[1] == '\0') return true;
    return (*s == '+' || *s == '-') && strlen(s) == 6 && elicit__digits(s + 1, 2) && s[3] == ':' &&
           elicit__digits(s + 4, 2) && elicit__num(s + 1, 2) <= 23 && elicit__num(s + 4, 2) <= 59;
}

/* Something before one @, and something after it with no space. */
static bool elicit__email(const char *s)
{
    const char *at = strchr(s, '@');
    return at && at != s && at[1] && !strchr(at + 1, '@') && !strpbrk(s, " \t\r\n");
}

/* A scheme (a letter, then letters, digits, + - .), a colon and more. */
static bool elicit__uri(const char *s)
{
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return false;
    const char *p = s + 1;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '+' || *p == '-' || *p == '.')
        p++;
    return *p == ':' && p[1] && !strpbrk(s, " \t\r\n");
}

/* Writes "content.NAME must be one of a, b, c" with as many choices as
 * fit whole; the rest become "…", so the text is never cut inside a
 * character. */
static void elicit__one_of(const char *name, const json_t *choices, const char *what, char *err,
                           size_t errlen)
{
    int k = snprintf(err, errlen, "content." ELICIT__FIELD " must be %s", name, what);
    for (size_t i = 0; k >= 0 && (size_t)k < errlen && i < json_array_size(choices); i++) {
        const char *c = elicit__choice_at(choices, i);
        int n = (int)utf8_cut(c, strlen(c), 40);
        /* Room for this choice and a later ", …" (5 bytes) with the NUL. */
        if ((size_t)k + 2 + (size_t)n + 5 + 1 > errlen) {
            snprintf(err + k, errlen - (size_t)k, "%s", i ? ", …" : "…");
            return;
        }
        k += snprintf(err + k, errlen - (size_t)k, "%s%.*s", i ? ", " : "", n, c);
    }
}

static int elicit__string_value(const char *name, const json_t *f, const json_t *v, char *err,
                                size_t errlen)
{
    if (!json_is_string(v)) {
        snprintf(err, errlen, "content." ELICIT__FIELD " must be a string", name);
        return -1;
    }
    const char *s = json_string_value(v);
    bool bad;
    const json_t *choices = elicit__choices(f, &bad);
    if (choices) {
        if (elicit__is_choice(choices, s)) return 0;
        elicit__one_of(name, choices, "one of ", err, errlen);
        return -1;
    }
    /* Lengths count characters, as JSON Schema does. */
    size_t len = 0;
    for (size_t i = 0, n = json_string_length(v); i < n; i += utf8_next(s + i, n - i)) len++;
    const json_t *mn = json_object_get(f, "minLength"), *mx = json_object_get(f, "maxLength");
    if (mn && len < (size_t)json_integer_value(mn)) {
        snprintf(err, errlen, "content." ELICIT__FIELD " must be at least %lld characters", name,
                 (long long)json_integer_value(mn));
        return -1;
    }
    if (mx && len > (size_t)json_integer_value(mx)) {
        snprintf(err, errlen, "content." ELICIT__FIELD " must be at most %lld characters", name,
                 (long long)json_integer_value(mx));
        return -1;
    }
    const char *fmt = json_string_value(json_object_get(f, "format"));
    if (!fmt) return 0;
    bool ok = strcmp(fmt, "email") == 0  ? elicit__email(s)
              : strcmp(fmt, "uri") == 0  ? elicit__uri(s)
              : strcmp(fmt, "date") == 0 ? elicit__date(s) && s[10] == '\0'
                                         : elicit__date_time(s);
    if (ok) return 0;
    const char *what = strcmp(fmt, "email") == 0  ? "an email address"
                       : strcmp(fmt, "uri") == 0  ? "a URI (scheme:rest)"
                       : strcmp(fmt, "date") == 0 ? "a date (YYYY-MM-DD)"
                                                  : "a date and time (RFC 3339)";
    snprintf(err, errlen, "content." ELICIT__FIELD " must be %s", name, what);
    return -1;
}

static int elicit__number_value(const char *name, const json_t *f, const json_t *v, bool integer,
                                char *err, size_t errlen)
{
    if (integer ? !json_is_integer(v) : !json_is_number(v)) {
        snprintf(err, errlen, "content." ELICIT__FIELD " must be %s", name,
                 integer ? "an integer" : "a number");
        return -1;
    }
    double x = json_number_value(v);
    const json_t *mn = json_object_get(f, "minimum"), *mx = json_object_get(f, "maximum");
    if (mn && x < json_number_value(mn)) {
        snprintf(err, errlen, "content." ELICIT__FIELD " must be at least %.17g", name,
                 json_number_value(mn));
        return -1;
    }
    if (mx && x > json_number_value(mx)) {
        snprintf(err, errlen, "content." ELICIT__FIELD " must be at most %.17g", name,
                 json_number_value(mx));
        return -1;
    }
    return 0;
}

static int elicit__array_value(const char *name, const json_t *f, const json_t *v, char *err,
                               size_t errlen)
{
    bool bad;
    const json_t *choices = elicit__choices(json_object_get(f, "items"), &bad);
    if (!json_is_array(v)) {
        snprintf(err, errlen, "content." ELICIT__FIELD " must be an array of choices", name);
        return -1;
    }
    size_t n = json_array_size(v);
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(v, i));
        if (!s || !elicit__is_choice(choices, s)) {
            elicit__one_of(name, choices, "a list of ", err, errlen);
            return -1;
        }
        for (size_t j = 0; j < i; j++) {
            if (strcmp(json_string_value(json_array_get(v, j)), s) == 0) {
                snprintf(err, errlen, "content." ELICIT__FIELD " lists %.*s twice", name,
                         (int)utf8_cut(s, strlen(s), 40), s);
                return -1;
            }
        }
    }
    const json_t *mn = json_object_get(f, "minItems"), *mx = json_object_get(f, "maxItems");
    if (mn && n < (size_t)json_integer_value(mn)) {
        snprintf(err, errlen, "content." ELICIT__FIELD " must list at least %lld choices", name,
                 (long long)json_integer_value(mn));
        return -1;
    }
    if (mx && n > (size_t)json_integer_value(mx)) {
        snprintf(err, errlen, "content." ELICIT__FIELD " must list at most %lld choices", name,
                 (long long)json_integer_value(mx));
        return -1;
    }
    return 0;
}

static int elicit__value(const char *name, const json_t *f, const json_t *v, char *err,
                         size_t errlen)
{
    const char *type = json_string_value(json_object_get(f, "type"));
    if (strcmp(type, "string") == 0) return elicit__string_value(name, f, v, err, errlen);
    if (strcmp(type, "number") == 0) return elicit__number_value(name, f, v, false, err, errlen);
    if (strcmp(type, "integer") == 0) return elicit__number_value(name, f, v, true, err, errlen);
    if (strcmp(type, "array") == 0) return elicit__array_value(name, f, v, err, errlen);
    if (!json_is_boolean(v)) {
        snprintf(err, errlen, "content." ELICIT__FIELD " must be true or false", name);
        return -1;
    }
    return 0;
}

int elicit_content_check(const json_t *schema, const json_t *content, char *err, size_t errlen)
{
    const json_t *props = json_object_get(schema, "properties");
    if (content && !json_is_object(content)) {
        snprintf(err, errlen, "content must be an object");
        return -1;
    }
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)content, name, v)
    {
        const json_t *f = json_object_get(props, name);
        if (!f) {
            /* The key is the caller's and may be anything: shown only when
             * it is a name a form could have. */
            if (elicit__name_ok(name))
                snprintf(err, errlen, "content." ELICIT__FIELD " is not a field of this form",
                         name);
            else
                snprintf(err, errlen, "content has a key that is not a field of this form");
            return -1;
        }
        if (elicit__value(name, f, v, err, errlen) != 0) return -1;
    }
    const json_t *req = json_object_get(schema, "required");
    for (size_t i = 0; i < json_array_size(req); i++) {
        const char *r = json_string_value(json_array_get(req, i));
        if (!json_object_get(content, r)) {
            snprintf(err, errlen, "content." ELICIT__FIELD " is required", r);
            return -1;
        }
    }
    return 0;
}

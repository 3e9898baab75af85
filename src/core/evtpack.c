/*
 * evtpack: several encoded events in one text (evtpack.h).
 */
#include "core/evtpack.h"

#include <string.h>

int evtpack_append(buf *b, int64_t seq, const char *type, const char *json, size_t json_len)
{
    size_t tlen = strlen(type);
    int rc = buf_reserve(b, BUF_I64_LEN + tlen + json_len + 3);
    if (rc == 0) rc = buf_append_i64(b, seq);
    if (rc == 0) rc = buf_append_char(b, '\t');
    if (rc == 0) rc = buf_append(b, type, tlen);
    if (rc == 0) rc = buf_append_char(b, '\t');
    if (rc == 0) rc = buf_append(b, json, json_len);
    if (rc == 0) rc = buf_append_char(b, '\n');
    return rc;
}

bool evtpack_next(const char **at, const char *end, evtpack_item *out)
{
    const char *p = *at;
    if (p >= end) return false;
    /* The seq: 1 to 18 digits, so that it cannot overflow, with no
     * leading zero, so that each seq has one way to be written. */
    if (*p == '0') return false;
    int64_t seq = 0;
    size_t digits = 0;
    while (p < end && *p >= '0' && *p <= '9' && digits < 18) {
        seq = seq * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || seq <= 0 || p >= end || *p++ != '\t') return false;
    const char *type = p;
    while (p < end && ((*p >= 'a' && *p <= 'z') || *p == '_')) p++;
    size_t tlen = (size_t)(p - type);
    if (tlen == 0 || tlen > EVTPACK_TYPE_MAX || p >= end || *p++ != '\t') return false;
    const char *json = p;
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl || nl == json || *json != '{' || nl[-1] != '}') return false;
    out->seq = seq;
    memcpy(out->type, type, tlen);
    out->type[tlen] = '\0';
    out->json = json;
    out->json_len = (size_t)(nl - json);
    *at = nl + 1;
    return true;
}

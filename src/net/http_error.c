/*
 * http_error: the JSON error bodies of the HTTP server, and the rewrite
 * that turns evhttp's own HTML error pages into the same form.
 */
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "core/evt.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "net/http_int.h"

/* The error code (docs/api.md, Errors) for a status evhttp chose by itself. */
static const char *http_error__code_for(int status)
{
    switch (status) {
    case 404:
        return "not_found";
    case 405:
        return "method_not_allowed";
    case 413:
        return "payload_too_large";
    case 415:
        return "unsupported_media_type";
    case 501:
        return "not_implemented";
    case 503:
        return "unavailable";
    default:
        return status >= 500 ? "internal" : "bad_request";
    }
}

/* ---- error bodies ---- */

/*
 * Copies src into dst (cap bytes, NUL-terminated) with every byte that does
 * not start a well-formed UTF-8 character (lib/utf8) replaced by U+FFFD, as
 * much of it as fits without splitting a character or a replacement.
 * Messages quote paths, ids and header values as sent, and a JSON string
 * must be UTF-8: jansson refuses anything else, which would leave the error
 * without its message. The replacement is per byte, not per ill-formed
 * unit, so a sequence cut short shows one U+FFFD for each of its bytes.
 */
static void http_error__utf8_clean(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src), i = 0, o = 0;
    while (i < n) {
        size_t k = utf8_seq(src + i, n - i);
        const char *from = k ? src + i : UTF8_REPLACEMENT;
        size_t len = k ? k : sizeof UTF8_REPLACEMENT - 1;
        if (o + len >= cap) break;
        memcpy(dst + o, from, len);
        o += len;
        i += k ? k : 1;
    }
    dst[o] = '\0';
}

char *http__error_json(const char *code, const char *msg)
{
    char clean[3 * 1024 + 1];
    http_error__utf8_clean(clean, sizeof clean, msg);
    json_t *err = json_object();
    json_object_set_new(err, "code", json_string(code));
    json_object_set_new(err, "message", json_string(clean));
    json_t *o = json_object();
    json_object_set_new(o, "error", err);
    char *text = json_dumps(o, EVT_JSON_FLAGS);
    json_decref(o);
    return text;
}

static const char http_error__security_headers[] = "Content-Security-Policy: default-src 'self'\r\n"
                                                   "X-Content-Type-Options: nosniff\r\n"
                                                   "Referrer-Policy: no-referrer\r\n"
                                                   "X-Frame-Options: DENY\r\n";

void http__error_response(struct evbuffer *out, const char *version, int status, const char *code,
                          const char *msg)
{
    char *body = http__error_json(code, msg);
    evbuffer_add_printf(out,
                        "%s %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                        "Connection: close\r\n%s\r\n%s",
                        version, status, http_reason(status), strlen(body),
                        http_error__security_headers, body);
    free(body);
}

/* ---- rewriting evhttp's own HTML error pages ---- */

/*
 * evhttp answers some failures itself (a body over max_body_size, a request
 * it cannot parse) with an HTML page, before any handler runs. This output
 * buffer callback spots such a page as it is added (evhttp adds the body in
 * one piece after the header lines, and nothing leaves before the next
 * write event) and replaces the whole response with a JSON error of the
 * same status. The status line is the last "HTTP/1." before the page.
 */
void http__rewrite_cb(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    http_server *s = arg;
    static const char page[] = "<HTML><HEAD>\n<TITLE>";
    if (s->rewriting || info->n_added < sizeof page - 1) return;
    if (info->orig_size + info->n_added != evbuffer_get_length(out)) return;
    /* A socket bufferevent keeps the start of its output frozen between
     * writes; the rewrite lifts that for as long as it works. */
    char head[sizeof page - 1 + 3];
    struct evbuffer_ptr at;
    if (evbuffer_ptr_set(out, &at, info->orig_size, EVBUFFER_PTR_SET) != 0) return;
    bool thawed = false;
    if (evbuffer_copyout_from(out, &at, head, sizeof head) < 0) {
        evbuffer_unfreeze(out, 1);
        thawed = true;
        evbuffer_ptr_set(out, &at, info->orig_size, EVBUFFER_PTR_SET);
        if (evbuffer_copyout_from(out, &at, head, sizeof head) != (ev_ssize_t)sizeof head) goto out;
    }
    if (memcmp(head, page, sizeof page - 1) != 0) goto out;
    int status = (head[20] - '0') * 100 + (head[21] - '0') * 10 + (head[22] - '0');
    if (status < 400 || status > 599) goto out;

    /* Find the status line of this response. */
    size_t from = info->orig_size > 4096 ? info->orig_size - 4096 : 0;
    struct evbuffer_ptr p, last;
    last.pos = -1;
    evbuffer_ptr_set(out, &p, from, EVBUFFER_PTR_SET);
    for (;;) {
        struct evbuffer_ptr f = evbuffer_search(out, "HTTP/1.", 7, &p);
        if (f.pos < 0 || (size_t)f.pos >= info->orig_size) break;
        last = f;
        if (evbuffer_ptr_set(out, &p, (size_t)f.pos + 1, EVBUFFER_PTR_SET) != 0) break;
    }
    if (last.pos < 0) goto out;
    char version[9] = "HTTP/1.1";
    evbuffer_copyout_from(out, &last, version, 8);

    const char *msg = status == 413 ? "the request is larger than the server accepts"
                                    : "the request could not be read as HTTP";
    s->rewriting = 1;
    struct evbuffer *keep = evbuffer_new();
    evbuffer_remove_buffer(out, keep, (size_t)last.pos);
    evbuffer_drain(out, evbuffer_get_length(out));
    http__error_response(keep, version, status, http_error__code_for(status), msg);
    evbuffer_add_buffer(out, keep);
    evbuffer_free(keep);
    s->rewriting = 0;
    http__count(status);
    LOG(LOG_INFO, "request", "method=- path=- status=%d duration_ms=0.0 request_id=-", status);
out:
    if (thawed) evbuffer_freeze(out, 1);
}

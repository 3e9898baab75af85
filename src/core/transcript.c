#include "core/transcript.h"

#include <stdbool.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"

/* A transcript holds a whole session; its messages are capped by the
 * store's limits, so this cap only stops a runaway. */
#define TRANSCRIPT_MAX ((size_t)256 << 20)

static const char *transcript__str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* "2026-12-03T10:02:00.123Z" as "2026-12-03 10:02 UTC". */
static void transcript__when(buf *b, const char *rfc3339)
{
    if (strlen(rfc3339) >= 16) {
        buf_append(b, rfc3339, 10);
        buf_append_char(b, ' ');
        buf_append(b, rfc3339 + 11, 5);
        buf_append_str(b, " UTC");
    } else {
        buf_append_str(b, rfc3339);
    }
}

/* A fence longer than any run of backticks in text, so no content can
 * close it early. */
static void transcript__fenced(buf *b, const char *lang, const char *text)
{
    size_t longest = 0, run = 0;
    for (const char *p = text; *p; p++) {
        run = *p == '`' ? run + 1 : 0;
        if (run > longest) longest = run;
    }
    size_t n = longest < 3 ? 3 : longest + 1;
    for (size_t i = 0; i < n; i++) buf_append_char(b, '`');
    buf_append_str(b, lang);
    buf_append_char(b, '\n');
    buf_append_str(b, text);
    if (*text && text[strlen(text) - 1] != '\n') buf_append_char(b, '\n');
    for (size_t i = 0; i < n; i++) buf_append_char(b, '`');
    buf_append_str(b, "\n\n");
}

static const json_t *transcript__run(const json_t *runs, const char *id)
{
    size_t i;
    const json_t *r;
    json_array_foreach(runs, i, r) if (strcmp(transcript__str(r, "id"), id) == 0) return r;
    return NULL;
}

/* The end of a run: how it stopped, and each tool execution it made. */
static void transcript__run_end(buf *b, const json_t *run, const json_t *execs)
{
    const char *reason = transcript__str(run, "stop_reason");
    if (!*reason) return;
    buf_printf(b, "*Run %s (%s mode) stopped: %s", transcript__str(run, "id"),
               transcript__str(run, "mode"), reason);
    const char *detail = transcript__str(run, "stop_detail");
    if (*detail) buf_printf(b, " — %s", detail);
    buf_append_str(b, "*\n\n");
    size_t i;
    const json_t *t;
    bool any = false;
    json_array_foreach(execs, i, t)
    {
        if (strcmp(transcript__str(t, "run_id"), transcript__str(run, "id")) != 0) continue;
        if (!any) buf_append_str(b, "| tool | server | status | ms |\n|---|---|---|---|\n");
        any = true;
        json_t *ms = json_object_get(t, "duration_ms");
        buf_printf(b, "| %s | %s | %s | ", transcript__str(t, "tool"), transcript__str(t, "server"),
                   transcript__str(t, "status"));
        if (json_is_integer(ms)) buf_printf(b, "%lld", (long long)json_integer_value(ms));
        buf_append_str(b, " |\n");
    }
    if (any) buf_append_char(b, '\n');
}

static void transcript__message(buf *b, const json_t *m)
{
    const char *role = transcript__str(m, "role");
    const char *content = transcript__str(m, "content");
    if (strcmp(role, "tool") == 0) {
        buf_printf(b, "**Tool result** (`%s`)\n\n", transcript__str(m, "tool_call_id"));
        transcript__fenced(b, "", content);
        return;
    }
    buf_printf(b, "## %s · ",
               strcmp(role, "user") == 0        ? "User"
               : strcmp(role, "assistant") == 0 ? "Assistant"
                                                : role);
    transcript__when(b, transcript__str(m, "created_at"));
    if (json_is_true(json_object_get(m, "partial"))) buf_append_str(b, " (cut short)");
    buf_append_str(b, "\n\n");
    if (*content) {
        buf_append_str(b, content);
        buf_append_str(b, "\n\n");
    }
    size_t i;
    const json_t *c;
    json_array_foreach(json_object_get(m, "tool_calls"), i, c)
    {
        const json_t *f = json_object_get(c, "function");
        buf_printf(b, "**Tool call** `%s` (`%s`)\n\n", transcript__str(f, "name"),
                   transcript__str(c, "id"));
        transcript__fenced(b, "json", transcript__str(f, "arguments"));
    }
}

char *transcript_markdown(const json_t *export)
{
    const json_t *ses = json_object_get(export, "session");
    const json_t *msgs = json_object_get(export, "messages");
    const json_t *runs = json_object_get(export, "runs");
    const json_t *execs = json_object_get(export, "tool_executions");
    if (!json_is_object(ses) || !json_is_array(msgs) || !json_is_array(runs) ||
        !json_is_array(execs))
        return NULL;
    buf b;
    buf_init(&b, TRANSCRIPT_MAX);
    buf_printf(&b, "# %s\n\n", transcript__str(ses, "title"));
    buf_printf(&b, "Session `%s`, mode %s, started ", transcript__str(ses, "id"),
               transcript__str(ses, "mode"));
    transcript__when(&b, transcript__str(ses, "created_at"));
    buf_append_str(&b, ".\n\n");
    /* Each run's end follows its last message. */
    const char *open_run = NULL;
    size_t i;
    const json_t *m;
    json_array_foreach(msgs, i, m)
    {
        const char *run_id = transcript__str(m, "run_id");
        if (open_run && strcmp(open_run, run_id) != 0) {
            const json_t *r = transcript__run(runs, open_run);
            if (r) transcript__run_end(&b, r, execs);
        }
        open_run = run_id;
        transcript__message(&b, m);
    }
    if (open_run) {
        const json_t *r = transcript__run(runs, open_run);
        if (r) transcript__run_end(&b, r, execs);
    }
    return buf_detach(&b, NULL);
}

#include "core/diagnosis.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/xmalloc.h"

/* The model playbooks, in the order they are tried: the first that fits
 * the last failure names the cause. */
static const char *diagnosis__model_playbook(const diagnosis_facts *f)
{
    if (f->context_overflow) return "context_overflow";
    int s = f->http_status;
    const char *code = f->error_code ? f->error_code : "";
    if (s == 401 || s == 403) return "model_auth";
    if (strcmp(code, "insufficient_quota") == 0 || s == 429) return "model_quota";
    if (s == 400 || s == 404 || s == 422) return "model_rejected";
    /* No answer at all, a 5xx, a time-out, or a stream cut off. */
    return "model_down";
}

const char *diagnosis_playbook(const diagnosis_facts *f)
{
    switch (f->reason) {
    case STOP_COMPLETED:
    case STOP_USER_STOPPED:
        return NULL;
    case STOP_LLM_ERROR:
    case STOP_MAX_RETRIES:
        return diagnosis__model_playbook(f);
    case STOP_REPEATED_FAILURES:
        return f->server ? "tool_server_down" : "tools_failing";
    case STOP_LOOP_DETECTED:
        return "loop";
    case STOP_NO_PROGRESS:
        return "no_progress";
    case STOP_INTERRUPTED:
        return "interrupted";
    case STOP_APPROVAL_TIMEOUT:
        return "approval_timeout";
    case STOP_OWNER_BUDGET:
        return "owner_budget";
    default:
        return stop_reason_is_budget(f->reason) ? "budget" : "unknown";
    }
}

/* "2026-12-02 10:02 UTC": the minute is what a person compares with logs. */
static void diagnosis__when(int64_t ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, len, "%Y-%m-%d %H:%M UTC", &tm);
}

static void diagnosis__set_str(json_t *o, const char *key, const char *v)
{
    if (v) json_object_set_new(o, key, json_string(v));
}

static char *diagnosis__model_summary(const char *playbook, const diagnosis_facts *f)
{
    const char *err = f->error_text ? f->error_text : "no error text";
    bool spent = f->reason == STOP_MAX_RETRIES;
    if (strcmp(playbook, "model_auth") == 0)
        return xasprintf("The model endpoint rejected the API key (HTTP %d)", f->http_status);
    if (strcmp(playbook, "model_quota") == 0) {
        if (f->error_code && strcmp(f->error_code, "insufficient_quota") == 0)
            return xstrdup("The model account is out of quota (insufficient_quota)");
        return xasprintf("The model endpoint kept answering HTTP 429 (too many requests)%s",
                         spent ? " until the retries were spent" : "");
    }
    if (strcmp(playbook, "model_rejected") == 0)
        return xasprintf("The model endpoint refused the request (HTTP %d): %s", f->http_status,
                         err);
    if (strcmp(playbook, "context_overflow") == 0)
        return xstrdup("The conversation no longer fits the model's context window");
    if (f->http_status)
        return xasprintf("The model endpoint kept failing (HTTP %d)%s: %s", f->http_status,
                         spent ? " until the retries were spent" : "", err);
    return xasprintf("The model endpoint could not be reached%s: %s",
                     spent ? " until the retries were spent" : "", err);
}

static json_t *diagnosis__model_evidence(const diagnosis_facts *f)
{
    json_t *e = json_object();
    diagnosis__set_str(e, "provider", f->provider);
    diagnosis__set_str(e, "model", f->model);
    json_object_set_new(e, "http_status",
                        f->http_status ? json_integer(f->http_status) : json_null());
    diagnosis__set_str(e, "error_code", f->error_code);
    diagnosis__set_str(e, "error", f->error_text);
    if (f->attempts > 0) json_object_set_new(e, "attempts", json_integer(f->attempts));
    return e;
}

/* The summary of the other playbooks: what it means, then the stop's own
 * detail, which already carries the numbers. */
static const char *diagnosis__lead(const char *playbook)
{
    static const struct {
        const char *playbook, *lead;
    } leads[] = {
        {"tools_failing", "A tool kept failing"},
        {"loop", "The model was repeating the same tool call"},
        {"no_progress", "The run stopped making progress"},
        {"budget", "The run used up its budget"},
        {"approval_timeout", "Nobody answered an approval in time"},
        {"owner_budget", "The owner's budget for the period is used up"},
        {"interrupted", "The server stopped or restarted while the run was working"},
    };
    for (size_t i = 0; i < sizeof leads / sizeof leads[0]; i++)
        if (strcmp(leads[i].playbook, playbook) == 0) return leads[i].lead;
    return "The run stopped";
}

json_t *diagnosis_build(const diagnosis_facts *f)
{
    const char *playbook = diagnosis_playbook(f);
    if (!playbook) return NULL;
    char *summary;
    json_t *evidence;
    if (f->reason == STOP_LLM_ERROR || f->reason == STOP_MAX_RETRIES) {
        summary = diagnosis__model_summary(playbook, f);
        evidence = diagnosis__model_evidence(f);
    } else if (strcmp(playbook, "tool_server_down") == 0) {
        char when[32];
        diagnosis__when(f->server_down_since_ms, when, sizeof when);
        summary = xasprintf("%s has been down since %s: %s", f->server, when,
                            f->server_error ? f->server_error : "no error text");
        evidence = json_object();
        json_object_set_new(evidence, "server", json_string(f->server));
        json_object_set_new(evidence, "down_since_ms", json_integer(f->server_down_since_ms));
        diagnosis__set_str(evidence, "error", f->server_error);
    } else if (f->reason == STOP_INTERRUPTED) {
        /* The detail says the same as the lead; it goes to the evidence. */
        summary = xstrdup(diagnosis__lead(playbook));
        evidence = json_object();
        diagnosis__set_str(evidence, "detail", f->detail);
    } else {
        summary = f->detail && *f->detail
                      ? xasprintf("%s: %s", diagnosis__lead(playbook), f->detail)
                      : xstrdup(diagnosis__lead(playbook));
        evidence = f->guard_evidence ? json_deep_copy(f->guard_evidence) : json_object();
        if (strcmp(playbook, "budget") == 0) {
            /* "max_tokens" names the dimension "tokens". */
            json_object_set_new(evidence, "dimension",
                                json_string(stop_reason_name(f->reason) + 4));
            diagnosis__set_str(evidence, "mode", f->mode);
        }
    }
    if (f->reason == STOP_REPEATED_FAILURES && f->guard_evidence && f->server)
        json_object_set_new(evidence, "calls", json_deep_copy(f->guard_evidence));
    json_t *d = json_pack("{s:s, s:s, s:o}", "playbook", playbook, "summary", summary, "evidence",
                          evidence);
    free(summary);
    return d;
}

json_t *diagnosis_action(const diagnosis_facts *f)
{
    if (f->reason != STOP_REPEATED_FAILURES || !f->server) return NULL;
    char *label = xasprintf("Restart %s", f->server);
    json_t *a = json_pack("{s:s, s:s, s:s}", "kind", "restart_tool_server", "server", f->server,
                          "label", label);
    free(label);
    return a;
}

#include "core/approval.h"

#include <stdio.h>
#include <string.h>

#include "lib/xmalloc.h"

static const char *const approval__policies[APPROVAL__POLICY_COUNT] = {"never", "risky", "always"};
static const char *const approval__actions[APPROVAL__ACTION_COUNT] = {"allow", "ask", "deny"};
static const char *const approval__statuses[APPROVAL__STATUS_COUNT] = {
    "pending", "approved", "denied", "expired", "cancelled"};
static const char *const approval__remembers[APPROVAL__REMEMBER_COUNT] = {"once", "run",
                                                                          "session"};

static const char *approval__name(const char *const *names, unsigned n, unsigned i)
{
    return i < n ? names[i] : "unknown";
}

static int approval__parse(const char *const *names, int n, const char *name, int *out)
{
    if (!name) return -1;
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i], name) == 0) {
            *out = i;
            return 0;
        }
    }
    return -1;
}

const char *approval_policy_name(approval_policy p)
{
    return approval__name(approval__policies, APPROVAL__POLICY_COUNT, (unsigned)p);
}

const char *approval_action_name(approval_action a)
{
    return approval__name(approval__actions, APPROVAL__ACTION_COUNT, (unsigned)a);
}

const char *approval_status_name(approval_status s)
{
    return approval__name(approval__statuses, APPROVAL__STATUS_COUNT, (unsigned)s);
}

const char *approval_remember_name(approval_remember r)
{
    return approval__name(approval__remembers, APPROVAL__REMEMBER_COUNT, (unsigned)r);
}

int approval_policy_parse(const char *name, approval_policy *out)
{
    int v;
    if (approval__parse(approval__policies, APPROVAL__POLICY_COUNT, name, &v) != 0) return -1;
    *out = (approval_policy)v;
    return 0;
}

int approval_action_parse(const char *name, approval_action *out)
{
    int v;
    if (approval__parse(approval__actions, APPROVAL__ACTION_COUNT, name, &v) != 0) return -1;
    *out = (approval_action)v;
    return 0;
}

int approval_status_parse(const char *name, approval_status *out)
{
    int v;
    if (approval__parse(approval__statuses, APPROVAL__STATUS_COUNT, name, &v) != 0) return -1;
    *out = (approval_status)v;
    return 0;
}

int approval_remember_parse(const char *name, approval_remember *out)
{
    int v;
    if (approval__parse(approval__remembers, APPROVAL__REMEMBER_COUNT, name, &v) != 0) return -1;
    *out = (approval_remember)v;
    return 0;
}

/*
 * Iterative matching with one backtrack point: on a mismatch after a `*`,
 * the star takes one more byte and matching resumes after it. That is
 * linear in practice and never recurses, whatever the pattern.
 */
bool approval_glob_match(const char *pattern, const char *name)
{
    const char *p = pattern, *s = name, *star = NULL, *resume = NULL;
    while (*s) {
        if (*p == '*') {
            star = p++;
            resume = s;
        } else if (*p == '?' || *p == *s) {
            p++;
            s++;
        } else if (star) {
            p = star + 1;
            s = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*') p++;
    return *p == '\0';
}

approval_action approval_decide(const approval_rule *rules, size_t n, approval_policy policy,
                                const char *mode_name, const char *tool_name, bool read_only,
                                char *reason, size_t reason_len)
{
    for (size_t i = 0; i < n; i++) {
        if (approval_glob_match(rules[i].pattern, tool_name)) {
            snprintf(reason, reason_len, "rule %s", rules[i].pattern);
            return rules[i].action;
        }
    }
    if (policy == APPROVAL_ALWAYS) {
        snprintf(reason, reason_len, "mode %s asks for every call", mode_name);
        return APPROVAL_ASK;
    }
    if (policy == APPROVAL_RISKY && !read_only) {
        snprintf(reason, reason_len, "the tool is not marked read-only");
        return APPROVAL_ASK;
    }
    snprintf(reason, reason_len, "%s", "");
    return APPROVAL_ALLOW;
}

char *approval_denied_result(const char *reason)
{
    return xasprintf("The user denied this call: %s. Do not retry it; answer without it or ask "
                     "the user.",
                     reason && *reason ? reason : "no reason given");
}

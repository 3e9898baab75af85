#include "core/approval.h"

#include <stdio.h>
#include <string.h>

#include "lib/xmalloc.h"

static const char *const approval__policies[APPROVAL__POLICY_COUNT] = {"never", "risky", "always"};
static const char *const approval__actions[APPROVAL__ACTION_COUNT] = {"allow", "ask", "deny"};
static const char *const approval__statuses[APPROVAL__STATUS_COUNT] = {
    "pending", "approved", "denied", "expired", "cancelled"};
static const char *const approval__remembers[APPROVAL__REMEMBER_COUNT] = {"once", "run", "session"};

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

/* Each enum's name and parse are the same two functions over its own table
 * of names, so one macro writes them (approval_policy_name and
 * approval_policy_parse, and so on for action, status and remember). */
#define APPROVAL__NAMED_ENUM(type, names, count)                                                   \
    const char *type##_name(type v)                                                                \
    {                                                                                              \
        return approval__name(names, count, (unsigned)v);                                          \
    }                                                                                              \
    int type##_parse(const char *name, type *out)                                                  \
    {                                                                                              \
        int v;                                                                                     \
        if (approval__parse(names, count, name, &v) != 0) return -1;                               \
        *out = (type)v;                                                                            \
        return 0;                                                                                  \
    }

APPROVAL__NAMED_ENUM(approval_policy, approval__policies, APPROVAL__POLICY_COUNT)
APPROVAL__NAMED_ENUM(approval_action, approval__actions, APPROVAL__ACTION_COUNT)
APPROVAL__NAMED_ENUM(approval_status, approval__statuses, APPROVAL__STATUS_COUNT)
APPROVAL__NAMED_ENUM(approval_remember, approval__remembers, APPROVAL__REMEMBER_COUNT)

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

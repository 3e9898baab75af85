/*
 * approval: whether a tool call runs, is asked of a person, or is denied
 * (docs/runs.md, Approvals). Pure: the engine hands in the configured
 * rules, the mode's policy and what it knows of the tool, and gets the
 * decision with the reason the approval and its event carry.
 */
#ifndef CHATPLANE_APPROVAL_H
#define CHATPLANE_APPROVAL_H

#include <stdbool.h>
#include <stddef.h>

/* A mode's policy: no call is asked, calls of tools not marked read-only
 * are asked (the default), or every call is asked. */
typedef enum approval_policy {
    APPROVAL_NEVER,
    APPROVAL_RISKY,
    APPROVAL_ALWAYS,
    APPROVAL__POLICY_COUNT
} approval_policy;

/* What a rule, and so the policy as a whole, decides for a call. */
typedef enum approval_action {
    APPROVAL_ALLOW,
    APPROVAL_ASK,
    APPROVAL_DENY,
    APPROVAL__ACTION_COUNT
} approval_action;

/* The states of an approval. */
typedef enum approval_status {
    APPROVAL_PENDING,
    APPROVAL_APPROVED,
    APPROVAL_DENIED,
    APPROVAL_EXPIRED,
    APPROVAL_CANCELLED,
    APPROVAL__STATUS_COUNT
} approval_status;

/* How far a person's decision reaches: this call, the rest of the run,
 * or the rest of the session (for calls of the same tool name). */
typedef enum approval_remember {
    APPROVAL_ONCE,
    APPROVAL_REMEMBER_RUN,
    APPROVAL_REMEMBER_SESSION,
    APPROVAL__REMEMBER_COUNT
} approval_remember;

/* The longest rule pattern, as the model's tool names are at most 64
 * characters and a pattern may add wildcards around one. */
#define APPROVAL_PATTERN_MAX 128
/* The most rules a configuration may hold. */
#define APPROVAL_RULES_MAX 256
/* The longest reason text approval_decide writes. */
#define APPROVAL_REASON_MAX 192

typedef struct approval_rule {
    char pattern[APPROVAL_PATTERN_MAX + 1]; /* a glob over the model's tool name */
    approval_action action;
} approval_rule;

/* Names in the API and the configuration: "never", "risky", "always";
 * "allow", "ask", "deny"; "pending", "approved", "denied", "expired",
 * "cancelled"; "once", "run", "session". Out of range: "unknown". */
const char *approval_policy_name(approval_policy p);
const char *approval_action_name(approval_action a);
const char *approval_status_name(approval_status s);
const char *approval_remember_name(approval_remember r);
/* Each returns 0 and sets *out, or -1 (and leaves *out) for an unknown or
 * NULL name. */
int approval_policy_parse(const char *name, approval_policy *out);
int approval_action_parse(const char *name, approval_action *out);
int approval_status_parse(const char *name, approval_status *out);
int approval_remember_parse(const char *name, approval_remember *out);

/* Whether name matches pattern, where `*` stands for any run of
 * characters (also none) and `?` for exactly one byte; every other byte
 * stands for itself. */
bool approval_glob_match(const char *pattern, const char *name);

/*
 * Decides a call of the tool the model names tool_name (`server__tool` or
 * a built-in's bare name). The first of the n rules whose pattern matches
 * decides, with the reason "rule PATTERN"; without one the policy of the
 * mode mode_name does: never allows; risky asks unless read_only, with the
 * reason "the tool is not marked read-only"; always asks, with the reason
 * "mode MODE asks for every call". reason (reason_len bytes, at most
 * APPROVAL_REASON_MAX needed) gets the reason, or "" for an allow by policy.
 */
approval_action approval_decide(const approval_rule *rules, size_t n, approval_policy policy,
                                const char *mode_name, const char *tool_name, bool read_only,
                                char *reason, size_t reason_len);

/* The text the model gets as the result of a denied call. Returns a new
 * string the caller frees. */
char *approval_denied_result(const char *reason);

#endif

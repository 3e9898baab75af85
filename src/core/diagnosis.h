/*
 * diagnosis: why a run stopped, said as a cause a person can act on
 * (docs/runs.md, Diagnosis). Every stop but completed and user_stopped gets
 * one: a playbook that names the cause, a summary in words, and evidence
 * with the numbers and names behind it. Pure: the engine gathers the facts,
 * this unit only decides.
 */
#ifndef CHATPLANE_DIAGNOSIS_H
#define CHATPLANE_DIAGNOSIS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/stop.h"

typedef struct diagnosis_facts {
    stop_reason reason;
    const char *detail; /* the run's stop detail, or NULL */
    const char *mode;   /* the run's mode */

    /* The last failed model call, for llm_error and max_retries. */
    const char *provider;   /* the provider's name ("primary"), or NULL */
    const char *model;      /* the model asked, or NULL */
    int http_status;        /* 0: no HTTP answer (connection failure, time-out) */
    const char *error_code; /* the provider's error code, or NULL */
    const char *error_text; /* what failed, without secrets, or NULL */
    int attempts;           /* model calls made for the failing step (0: unknown) */
    bool context_overflow;  /* the provider said the prompt was too long */

    /* The guardrail's evidence for loop_detected, repeated_failures and
     * no_progress, or for owner_budget the budget that was used up
     * (owner_budget_to_json with "owner"), borrowed; or NULL. */
    const json_t *guard_evidence;

    /* A tool server that is down, when the failing calls went to it. */
    const char *server; /* NULL: no server is known to be down */
    int64_t server_down_since_ms;
    const char *server_error; /* why it is down, or NULL */
} diagnosis_facts;

/*
 * Returns a new {"playbook", "summary", "evidence": {…}} for the stop the
 * facts describe, or NULL for completed and user_stopped.
 */
json_t *diagnosis_build(const diagnosis_facts *f);

/* The playbook name diagnosis_build would choose ("model_auth", …), or NULL
 * for completed and user_stopped. */
const char *diagnosis_playbook(const diagnosis_facts *f);

/* A new action {"kind": "restart_tool_server", "server", "label"} when the
 * facts point at a tool server that is down; NULL otherwise. */
json_t *diagnosis_action(const diagnosis_facts *f);

#endif

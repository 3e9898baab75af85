/*
 * config: chatplane's settings (docs/config.md), from one option table
 * that drives command-line flags, environment variables, the JSON config
 * file, the built-in defaults and the help text.
 *
 * Precedence, highest first: flag, environment, config file, default.
 * Loading is pure apart from reading the config file: the environment is
 * read through a callback, so tests pass their own.
 */
#ifndef CHATPLANE_CONFIG_H
#define CHATPLANE_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/approval.h"
#include "core/budget.h"
#include "lib/log.h"

typedef struct config {
    char *listen; /* HOST:PORT */
    char *db;     /* database URL */
    char *config_file;
    char *web_root;     /* NULL: the embedded page */
    char *llm_base_url; /* NULL: the demo brain */
    char *llm_api_key;  /* never logged */
    char *llm_model;
    char *llm_kind;                    /* llm.kind: "openai" or "anthropic" */
    char *llm_name;                    /* llm.name: the primary's name */
    char *llm_anthropic_version;       /* NULL: 2023-06-01 */
    json_t *llm_headers;               /* owned; llm.headers as written, or NULL */
    json_t *llm_fallbacks;             /* owned; llm.fallbacks as written, or NULL */
    int64_t llm_circuit_rest_s;        /* llm.circuit_rest_seconds */
    struct config_provider *providers; /* owned; resolved by config_load, primary first */
    size_t nproviders;
    char *llm_system_prompt;
    int64_t llm_context_tokens;
    budget_price price;  /* llm.price_per_mtok */
    json_t *mcp_servers; /* owned; the "mcpServers" object or NULL */
    json_t *modes;       /* owned; the "modes" overrides or NULL */
    int64_t demo_delay_ms;
    approval_rule *approval_rules; /* owned; approvals.rules in order */
    size_t approval_nrules;
    int64_t approval_timeout_s; /* approvals.timeout_seconds */
    int64_t body_bytes, message_bytes, active_runs, subscriber_buffer_bytes;
    int64_t connections; /* limits.connections: most open HTTP connections */
    int64_t subscribers_per_session, subscribers_per_token; /* open event streams at most */
    int64_t commit_interval_us; /* store.commit_interval_us: least time between commits */
    int64_t journal_idle_ms;    /* store.journal_idle_ms: idle time before the journal is stored */
    int64_t orphan_timeout_s;   /* PostgreSQL: a run not beaten this long is stopped */
    char *log_level;            /* log.level: debug, info, warn or error */
    log_level log_min;          /* log_level as config_load parsed it */
    bool insecure_no_auth;
} config;

/* Reads an environment variable; returns NULL when unset. */
typedef const char *(*config_getenv_fn)(const char *name);

/* Longest provider name (llm.name, a fallback's name). */
#define CONFIG_PROVIDER_NAME_MAX 64
/* Most providers: the primary and its fallbacks. */
#define CONFIG_PROVIDERS_MAX 16

/* One model provider as the runtime builds it (docs/config.md, Providers),
 * with every ${NAME} expanded. */
typedef struct config_provider {
    char *name;
    char *kind;     /* "openai" or "anthropic" */
    char *base_url; /* NULL: the demo brain (the primary only) */
    char *api_key;  /* NULL for none; never logged */
    char *model;    /* NULL: the primary asks the endpoint (openai only) */
    char *anthropic_version;
    json_t *headers;    /* {"Name": "value"}, or NULL */
    budget_price price; /* set: the provider's own price_per_mtok */
} config_provider;

/*
 * Builds c->providers from llm.* and llm.fallbacks, with ${NAME} in
 * api_key and header values replaced by the environment variable NAME.
 * Errors name the key and the problem: an unknown kind, a fallback without
 * base_url or model, an unknown field, a name used twice or not made of
 * letters, digits, '.', '_' and '-', a header that cannot be sent, a
 * variable that is not set. Returns 0 or -1 with err filled.
 */
int config_llm_resolve(config *c, config_getenv_fn get, char *err, size_t errlen);
void config_llm_free(config_provider *p, size_t n);

/* Sets every field to its built-in default. */
void config_init(config *c);
void config_cleanup(config *c);

/*
 * Applies a config file's JSON text. Unknown keys are an error naming the
 * key ("unknown config key 'llm.modle'"); text that is not valid JSON is an
 * error naming the line and column; a value of the wrong type names the key
 * and the expected type. Returns 0 or -1 with err filled; on error *c keeps
 * what it had before the call.
 */
int config_apply_json_text(config *c, const char *text, size_t len, const char *origin, char *err,
                           size_t errlen);
/* Applies the environment variables of the option table. */
int config_apply_env(config *c, config_getenv_fn get, char *err, size_t errlen);

/*
 * Parses the flags that a command accepts (names listed in allowed, e.g.
 * {"listen", "db", "config", NULL}) from argv[0..argc); other arguments are
 * left in order in rest[0..*nrest) (rest must hold argc pointers). A flag
 * that is not allowed or lacks its value is an error naming it.
 * Flag values are recorded in flags (a config used only as a holder).
 */
int config_parse_flags(config *flags, const char *const *allowed, int argc, char **argv,
                       char **rest, int *nrest, char *err, size_t errlen);

/*
 * The whole load for a command: defaults, then the config file (the
 * --config flag, else CHATPLANE_CONFIG), then the environment, then the
 * flags already parsed into flags. Returns 0 or -1 with err filled.
 */
int config_load(config *c, const config *flags, config_getenv_fn get, char *err, size_t errlen);

/* Prints the options a command accepts, one per line, for help texts. */
void config_print_flags(FILE *f, const char *const *allowed);

#endif

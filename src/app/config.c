#include "app/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/xmalloc.h"

typedef enum opt_type {
    OPT_STRING,
    OPT_INT,
    OPT_BOOL,
    OPT_PRICE,
    OPT_OBJECT,
    OPT_ARRAY,
    OPT_RULES /* approvals.rules: the field is approval_rules, the count follows it */
} opt_type;

/* One setting: where it may come from and where it lands in struct config. */
typedef struct option {
    const char *flag;         /* --flag, or NULL */
    const char *env;          /* environment variable, or NULL */
    const char *env_fallback; /* read when env is unset, or NULL */
    const char *key;          /* config file key, or NULL */
    opt_type type;
    size_t offset;
    const char *def; /* default as text; NULL for none */
    int64_t min, max;
    const char *help;
} option;

#define F(field) offsetof(config, field)

static const option options[] = {
    {"listen", "CHATPLANE_LISTEN", NULL, "listen", OPT_STRING, F(listen), "127.0.0.1:8080", 0, 0,
     "address to listen on, HOST:PORT"},
    {"db", "CHATPLANE_DB", NULL, "db", OPT_STRING, F(db), "sqlite:chatplane.db", 0, 0,
     "database URL: sqlite:PATH, sqlite::memory:, postgres://user:pass@host:port/db"},
    {"config", "CHATPLANE_CONFIG", NULL, NULL, OPT_STRING, F(config_file), NULL, 0, 0,
     "JSON config file"},
    {"web-root", NULL, NULL, NULL, OPT_STRING, F(web_root), NULL, 0, 0,
     "serve the page from this directory instead of the embedded copy"},
    {"insecure-no-auth", NULL, NULL, NULL, OPT_BOOL, F(insecure_no_auth), "false", 0, 0,
     "allow listening on a non-loopback address with no API token"},
    {NULL, "CHATPLANE_LLM_URL", "OPENAI_BASE_URL", "llm.base_url", OPT_STRING, F(llm_base_url),
     NULL, 0, 0, "OpenAI-compatible base URL; none: the demo brain"},
    {NULL, "CHATPLANE_LLM_API_KEY", "OPENAI_API_KEY", "llm.api_key", OPT_STRING, F(llm_api_key),
     NULL, 0, 0, "API key sent as a bearer token"},
    {NULL, "CHATPLANE_LLM_MODEL", NULL, "llm.model", OPT_STRING, F(llm_model), NULL, 0, 0,
     "model name sent upstream"},
    {NULL, NULL, NULL, "llm.kind", OPT_STRING, F(llm_kind), "openai", 0, 0,
     "the API of llm.base_url: openai or anthropic"},
    {NULL, NULL, NULL, "llm.name", OPT_STRING, F(llm_name), "primary", 0, 0,
     "the primary provider's name in messages and metrics"},
    {NULL, NULL, NULL, "llm.anthropic_version", OPT_STRING, F(llm_anthropic_version), NULL, 0, 0,
     "anthropic-version header (default 2023-06-01)"},
    {NULL, NULL, NULL, "llm.headers", OPT_OBJECT, F(llm_headers), NULL, 0, 0,
     "extra request headers of the primary, ${NAME} expanded"},
    {NULL, NULL, NULL, "llm.fallbacks", OPT_ARRAY, F(llm_fallbacks), NULL, 0, 0,
     "further providers, tried in order when one fails"},
    {NULL, NULL, NULL, "llm.circuit_rest_seconds", OPT_INT, F(llm_circuit_rest_s), "60", 0, 86400,
     "seconds a provider rests after three failed steps in a row"},
    {NULL, NULL, NULL, "llm.system_prompt", OPT_STRING, F(llm_system_prompt), NULL, 0, 0,
     "system prompt"},
    {NULL, NULL, NULL, "llm.context_tokens", OPT_INT, F(llm_context_tokens), "32000", 256,
     100000000, "prompt size kept under this estimate"},
    {NULL, NULL, NULL, "llm.price_per_mtok", OPT_PRICE, F(price), NULL, 0, 0,
     "{\"input\": USD, \"output\": USD} per million tokens"},
    {NULL, NULL, NULL, "mcpServers", OPT_OBJECT, F(mcp_servers), NULL, 0, 0, "MCP tool servers"},
    {NULL, NULL, NULL, "modes", OPT_OBJECT, F(modes), NULL, 0, 0, "overrides of mode limits"},
    {NULL, NULL, NULL, "approvals.rules", OPT_RULES, F(approval_rules), NULL, 0, 0,
     "[{\"tool\": GLOB, \"action\": \"allow|ask|deny\"}], the first match deciding"},
    {NULL, NULL, NULL, "approvals.timeout_seconds", OPT_INT, F(approval_timeout_s), "900", 1,
     604800, "seconds a person has to answer an approval"},
    {NULL, "CHATPLANE_DEMO_DELAY_MS", NULL, "demo.delay_ms", OPT_INT, F(demo_delay_ms), "25", 0,
     60000, "demo brain delay between streamed tokens"},
    {NULL, NULL, NULL, "limits.body_bytes", OPT_INT, F(body_bytes), "1048576", 1024,
     INT64_C(1) << 30, "largest request body"},
    {NULL, NULL, NULL, "limits.message_bytes", OPT_INT, F(message_bytes), "65536", 16,
     INT64_C(1) << 30, "largest user message"},
    {NULL, NULL, NULL, "limits.active_runs", OPT_INT, F(active_runs), "256", 1, 1000000,
     "most runs at once"},
    {NULL, NULL, NULL, "limits.subscriber_buffer_bytes", OPT_INT, F(subscriber_buffer_bytes),
     "8388608", 4096, INT64_C(1) << 32, "how far an SSE subscriber may fall behind"},
    {NULL, NULL, NULL, "limits.subscribers_per_session", OPT_INT, F(subscribers_per_session),
     "2000", 1, 1000000, "most open event streams of one session"},
    {NULL, NULL, NULL, "limits.subscribers_per_token", OPT_INT, F(subscribers_per_token), "2000", 1,
     1000000, "most open event streams of one token"},
    {NULL, NULL, NULL, "limits.connections", OPT_INT, F(connections), "1024", 8, 1000000,
     "most open HTTP connections; lowered to the open file limit less 64"},
    {NULL, NULL, NULL, "store.commit_interval_us", OPT_INT, F(commit_interval_us), "1000", 0,
     100000, "least microseconds between the starts of two event-log commits (0: no pacing)"},
    {NULL, NULL, NULL, "store.journal_idle_ms", OPT_INT, F(journal_idle_ms), "100", 1, 60000,
     "milliseconds the event-log writer idles before it stores the token journal"},
    {"log-level", "CHATPLANE_LOG_LEVEL", NULL, "log.level", OPT_STRING, F(log_level), "info", 0, 0,
     "least level of the lines written to stderr: debug, info, warn or error"},
    {NULL, NULL, NULL, "cluster.orphan_timeout_seconds", OPT_INT, F(orphan_timeout_s), "30", 1,
     86400, "PostgreSQL: seconds without a heartbeat after which another instance stops a run"},
};

#define OPTION_COUNT (sizeof options / sizeof options[0])

static void *config__field(config *c, const option *o)
{
    return (char *)c + o->offset;
}

static const option *config__by_key(const char *key)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (options[i].key && strcmp(options[i].key, key) == 0) return &options[i];
    return NULL;
}

static const option *config__by_flag(const char *flag, size_t len)
{
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (options[i].flag && strlen(options[i].flag) == len &&
            strncmp(options[i].flag, flag, len) == 0)
            return &options[i];
    return NULL;
}

/* Parses a whole decimal integer within [min, max]; returns 0 or -1. */
static int config__parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) return -1;
    *out = v;
    return 0;
}

/* Stores a text value (from a flag or the environment) into the field. */
static int config__set_text(config *c, const option *o, const char *value, const char *origin,
                            char *err, size_t errlen)
{
    void *field = config__field(c, o);
    switch (o->type) {
    case OPT_STRING:
        free(*(char **)field);
        *(char **)field = value ? xstrdup(value) : NULL;
        return 0;
    case OPT_INT:
        if (config__parse_int(value, o->min, o->max, (int64_t *)field) != 0) {
            snprintf(err, errlen, "%s: '%s' is not a whole number from %lld to %lld", origin, value,
                     (long long)o->min, (long long)o->max);
            return -1;
        }
        return 0;
    case OPT_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0) {
            *(bool *)field = true;
        } else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0) {
            *(bool *)field = false;
        } else {
            snprintf(err, errlen, "%s: '%s' is not true or false", origin, value);
            return -1;
        }
        return 0;
    case OPT_PRICE:
    case OPT_OBJECT:
    case OPT_ARRAY:
    case OPT_RULES:
        break;
    }
    snprintf(err, errlen, "%s cannot be set from text", origin);
    return -1;
}

void config_init(config *c)
{
    memset(c, 0, sizeof *c);
    char err[256];
    for (size_t i = 0; i < OPTION_COUNT; i++)
        if (options[i].def)
            config__set_text(c, &options[i], options[i].def, "default", err, sizeof err);
    c->log_min = LOG_INFO; /* log.level's default, as config_load would parse it */
}

void config_cleanup(config *c)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        void *field = config__field(c, &options[i]);
        if (options[i].type == OPT_STRING) {
            free(*(char **)field);
            *(char **)field = NULL;
        } else if (options[i].type == OPT_OBJECT || options[i].type == OPT_ARRAY) {
            json_decref(*(json_t **)field);
            *(json_t **)field = NULL;
        }
    }
    free(c->approval_rules);
    c->approval_rules = NULL;
    c->approval_nrules = 0;
    config_llm_free(c->providers, c->nproviders);
    c->providers = NULL;
    c->nproviders = 0;
}

/* Checks approvals.rules and, with apply, stores them: an array of at most
 * APPROVAL_RULES_MAX objects {"tool": a non-empty glob, "action": allow,
 * ask or deny} and nothing else. */
static int config__rules(config *c, const char *key, const json_t *v, bool apply, char *err,
                         size_t errlen)
{
    if (!json_is_array(v) || json_array_size(v) > APPROVAL_RULES_MAX) {
        snprintf(err, errlen, "config key '%s' must be an array of at most %d rules", key,
                 APPROVAL_RULES_MAX);
        return -1;
    }
    size_t n = json_array_size(v);
    approval_rule *rules = xcalloc(n ? n : 1, sizeof *rules);
    for (size_t i = 0; i < n; i++) {
        const json_t *r = json_array_get(v, i);
        const char *tool = json_string_value(json_object_get(r, "tool"));
        const char *action = json_string_value(json_object_get(r, "action"));
        const char *bad = NULL;
        if (!json_is_object(r)) {
            bad = "must be an object {\"tool\", \"action\"}";
        } else if (!tool || !*tool || strlen(tool) > APPROVAL_PATTERN_MAX) {
            bad = "needs \"tool\": a glob of 1 to 128 characters";
        } else if (!action || approval_action_parse(action, &rules[i].action) != 0) {
            bad = "needs \"action\": \"allow\", \"ask\" or \"deny\"";
        } else if (json_object_size(r) != 2) {
            bad = "may have only \"tool\" and \"action\"";
        }
        if (bad) {
            snprintf(err, errlen, "config key '%s[%zu]' %s", key, i, bad);
            free(rules);
            return -1;
        }
        snprintf(rules[i].pattern, sizeof rules[i].pattern, "%s", tool);
    }
    if (!apply) {
        free(rules);
        return 0;
    }
    free(c->approval_rules);
    c->approval_rules = rules;
    c->approval_nrules = n;
    return 0;
}

/* Checks (apply == false) or stores (apply == true) one JSON value. */
static int config__json_value(config *c, const option *o, const json_t *v, bool apply, char *err,
                              size_t errlen)
{
    void *field = config__field(c, o);
    switch (o->type) {
    case OPT_STRING:
        if (!json_is_string(v) && !json_is_null(v)) {
            snprintf(err, errlen, "config key '%s' must be a string", o->key);
            return -1;
        }
        if (apply) {
            free(*(char **)field);
            *(char **)field = json_is_string(v) ? xstrdup(json_string_value(v)) : NULL;
        }
        return 0;
    case OPT_INT: {
        json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
        if (!json_is_integer(v) || n < o->min || n > o->max) {
            snprintf(err, errlen, "config key '%s' must be a whole number from %lld to %lld",
                     o->key, (long long)o->min, (long long)o->max);
            return -1;
        }
        if (apply) *(int64_t *)field = n;
        return 0;
    }
    case OPT_BOOL:
        if (!json_is_boolean(v)) {
            snprintf(err, errlen, "config key '%s' must be true or false", o->key);
            return -1;
        }
        if (apply) *(bool *)field = json_is_true(v);
        return 0;
    case OPT_PRICE: {
        const json_t *in = json_object_get(v, "input"), *out = json_object_get(v, "output");
        if (!json_is_object(v) || json_object_size(v) != 2 || !json_is_number(in) ||
            !json_is_number(out) || json_number_value(in) < 0 || json_number_value(out) < 0) {
            snprintf(err, errlen,
                     "config key '%s' must be {\"input\": USD, \"output\": USD} with "
                     "non-negative numbers",
                     o->key);
            return -1;
        }
        if (apply) {
            budget_price *p = field;
            p->input_per_mtok = json_number_value(in);
            p->output_per_mtok = json_number_value(out);
            p->set = true;
        }
        return 0;
    }
    case OPT_RULES:
        return config__rules(c, o->key, v, apply, err, errlen);
    case OPT_OBJECT:
        if (!json_is_object(v)) {
            snprintf(err, errlen, "config key '%s' must be an object", o->key);
            return -1;
        }
        if (apply) {
            json_decref(*(json_t **)field);
            *(json_t **)field = json_deep_copy(v);
        }
        return 0;
    case OPT_ARRAY:
        if (!json_is_array(v)) {
            snprintf(err, errlen, "config key '%s' must be an array", o->key);
            return -1;
        }
        if (apply) {
            json_decref(*(json_t **)field);
            *(json_t **)field = json_deep_copy(v);
        }
        return 0;
    }
    return -1;
}

/* Walks the file's object: sections (llm, demo, limits, cluster, approvals,
 * store, log) one level deep,
 * every leaf matched against the option table by its dotted key. */
static int config__walk(config *c, const json_t *obj, const char *prefix, bool apply, char *err,
                        size_t errlen)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        char key[128];
        snprintf(key, sizeof key, "%s%s%s", prefix, *prefix ? "." : "", k);
        const option *o = config__by_key(key);
        if (o) {
            if (config__json_value(c, o, v, apply, err, errlen) != 0) return -1;
            continue;
        }
        bool section = !*prefix && (strcmp(k, "llm") == 0 || strcmp(k, "demo") == 0 ||
                                    strcmp(k, "limits") == 0 || strcmp(k, "cluster") == 0 ||
                                    strcmp(k, "approvals") == 0 || strcmp(k, "store") == 0 ||
                                    strcmp(k, "log") == 0);
        if (section && json_is_object(v)) {
            if (config__walk(c, v, k, apply, err, errlen) != 0) return -1;
            continue;
        }
        if (section) {
            snprintf(err, errlen, "config key '%s' must be an object", key);
        } else {
            snprintf(err, errlen, "unknown config key '%s'", key);
        }
        return -1;
    }
    return 0;
}

int config_apply_json_text(config *c, const char *text, size_t len, const char *origin, char *err,
                           size_t errlen)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "%s: invalid JSON at line %d, column %d: %s", origin, je.line,
                 je.column, je.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) {
        snprintf(err, errlen, "%s: the config must be a JSON object", origin);
        goto out;
    }
    char inner[384];
    /* Check everything first so that a bad file changes nothing. */
    if (config__walk(c, root, "", false, inner, sizeof inner) != 0) {
        snprintf(err, errlen, "%s: %s", origin, inner);
        goto out;
    }
    config__walk(c, root, "", true, inner, sizeof inner);
    rc = 0;
out:
    json_decref(root);
    return rc;
}

int config_apply_env(config *c, config_getenv_fn get, char *err, size_t errlen)
{
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const option *o = &options[i];
        if (!o->env || o->offset == F(config_file)) continue;
        const char *name = o->env, *v = get(o->env);
        if (!v && o->env_fallback) {
            name = o->env_fallback;
            v = get(o->env_fallback);
        }
        if (!v) continue;
        if (config__set_text(c, o, v, name, err, errlen) != 0) return -1;
    }
    return 0;
}

static bool config__allowed(const char *const *allowed, const char *flag)
{
    for (; *allowed; allowed++)
        if (strcmp(*allowed, flag) == 0) return true;
    return false;
}

int config_parse_flags(config *flags, const char *const *allowed, int argc, char **argv,
                       char **rest, int *nrest, char *err, size_t errlen)
{
    *nrest = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "--") == 0) {
            rest[(*nrest)++] = argv[i];
            continue;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t nlen = eq ? (size_t)(eq - name) : strlen(name);
        const option *o = config__by_flag(name, nlen);
        if (!o || !config__allowed(allowed, o->flag)) {
            rest[(*nrest)++] = argv[i];
            continue;
        }
        char origin[64];
        snprintf(origin, sizeof origin, "--%s", o->flag);
        const char *value;
        if (o->type == OPT_BOOL) {
            value = eq ? eq + 1 : "true";
        } else if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(err, errlen, "%s needs a value", origin);
            return -1;
        }
        if (config__set_text(flags, o, value, origin, err, errlen) != 0) return -1;
    }
    return 0;
}

/* Reads a whole file into a new buffer, at most max bytes. */
static char *config__read_file(const char *path, size_t max, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read config file %s: %s", path, strerror(errno));
        return NULL;
    }
    buf b;
    buf_init(&b, max);
    char chunk[8192];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(chunk, 1, sizeof chunk, f)) > 0) rc = buf_append(&b, chunk, n);
    fclose(f);
    if (rc != 0) {
        snprintf(err, errlen, "config file %s is larger than %zu bytes", path, max);
        buf_cleanup(&b);
        return NULL;
    }
    return buf_detach(&b, len);
}

int config_load(config *c, const config *flags, config_getenv_fn get, char *err, size_t errlen)
{
    const char *file = flags->config_file ? flags->config_file : get("CHATPLANE_CONFIG");
    if (file) {
        size_t len;
        char *text = config__read_file(file, 4u << 20, &len, err, errlen);
        if (!text) return -1;
        int rc = config_apply_json_text(c, text, len, file, err, errlen);
        free(text);
        if (rc != 0) return -1;
        free(c->config_file);
        c->config_file = xstrdup(file);
    }
    if (config_apply_env(c, get, err, errlen) != 0) return -1;
    /* Flags win: copy every flag value that was given. */
    for (size_t i = 0; i < OPTION_COUNT; i++) {
        const option *o = &options[i];
        if (!o->flag || o->offset == F(config_file)) continue;
        void *src = (char *)flags + o->offset, *dst = config__field(c, o);
        if (o->type == OPT_STRING && *(char **)src) {
            free(*(char **)dst);
            *(char **)dst = xstrdup(*(char **)src);
        } else if (o->type == OPT_BOOL && *(bool *)src) {
            *(bool *)dst = true;
        }
    }
    if (log_level_parse(c->log_level, &c->log_min) != 0) {
        snprintf(err, errlen, "log.level must be debug, info, warn or error, not '%s'",
                 c->log_level);
        return -1;
    }
    /* The providers are checked whole, with the environment their
     * ${NAME}s name, so that a mistake stops the start. */
    return config_llm_resolve(c, get, err, errlen);
}

void config_print_flags(FILE *f, const char *const *allowed)
{
    for (; *allowed; allowed++) {
        const option *o = config__by_flag(*allowed, strlen(*allowed));
        if (!o) continue;
        char left[64];
        snprintf(left, sizeof left, "--%s%s", o->flag, o->type == OPT_BOOL ? "" : " VALUE");
        fprintf(f, "  %-26s %s", left, o->help);
        if (o->def && o->type != OPT_BOOL) fprintf(f, " (default %s)", o->def);
        if (o->env) fprintf(f, "; env %s", o->env);
        fputc('\n', f);
    }
}

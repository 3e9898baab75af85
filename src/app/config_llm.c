/*
 * config_llm: the model providers of the config (docs/config.md,
 * Providers): the primary from llm.* and the fallbacks from llm.fallbacks,
 * checked and with ${NAME} expanded from the environment.
 */
#include "app/config.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/xmalloc.h"

#define CONFIG_LLM_VALUE_MAX     8192 /* an expanded key or header value */
#define CONFIG_LLM_ANTHROPIC_URL "https://api.anthropic.com/v1"

void config_llm_free(config_provider *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].kind);
        free(p[i].base_url);
        free(p[i].api_key);
        free(p[i].model);
        free(p[i].anthropic_version);
        json_decref(p[i].headers);
    }
    free(p);
}

/*
 * Replaces each ${NAME} in s by the variable's value. Returns a new
 * string, or NULL with err naming the key and the variable that is not
 * set (or a reference that is not closed, or a result too long).
 */
static char *config_llm__expand(const char *key, const char *s, config_getenv_fn get, char *err,
                                size_t errlen)
{
    buf out;
    buf_init(&out, CONFIG_LLM_VALUE_MAX);
    int rc = 0;
    while (*s) {
        if (s[0] != '$' || s[1] != '{') {
            rc |= buf_append_char(&out, *s++);
            continue;
        }
        const char *name = s + 2, *end = name;
        while (*end == '_' || isalnum((unsigned char)*end)) end++;
        if (*end != '}' || end == name || isdigit((unsigned char)*name)) {
            snprintf(err, errlen, "config key '%s' has a ${ without a variable name and }", key);
            buf_cleanup(&out);
            return NULL;
        }
        char var[128];
        snprintf(var, sizeof var, "%.*s", (int)(end - name), name);
        const char *v = get(var);
        if (!v) {
            snprintf(err, errlen,
                     "config key '%s' names ${%s}, which is not set in the environment", key, var);
            buf_cleanup(&out);
            return NULL;
        }
        rc |= buf_append_str(&out, v);
        s = end + 1;
    }
    if (rc != 0) {
        snprintf(err, errlen, "config key '%s' is longer than %d bytes once expanded", key,
                 CONFIG_LLM_VALUE_MAX);
        buf_cleanup(&out);
        return NULL;
    }
    char *r = buf_detach(&out, NULL);
    return r ? r : xstrdup("");
}

/* A name of 1 to 64 letters, digits, '.', '_' and '-'. */
static bool config_llm__good_name(const char *n)
{
    size_t len = strlen(n);
    if (len == 0 || len > CONFIG_PROVIDER_NAME_MAX) return false;
    for (const char *p = n; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '.' && *p != '_' && *p != '-') return false;
    return true;
}

/* Checks and expands a headers object into *out (a new object). */
static int config_llm__headers(const char *key, const json_t *h, config_getenv_fn get, json_t **out,
                               char *err, size_t errlen)
{
    *out = NULL;
    if (!h || json_is_null(h)) return 0;
    if (!json_is_object(h)) {
        snprintf(err, errlen, "config key '%s' must be an object of header names and values", key);
        return -1;
    }
    json_t *res = json_object();
    const char *name;
    json_t *v;
    json_object_foreach((json_t *)h, name, v)
    {
        char sub[160];
        snprintf(sub, sizeof sub, "%s.%.64s", key, name);
        bool token = *name && strlen(name) <= 64;
        for (const char *p = name; token && *p; p++)
            token = isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p);
        if (!token) {
            snprintf(err, errlen, "config key '%s' has a header name that cannot be sent", sub);
            goto fail;
        }
        if (!json_is_string(v)) {
            snprintf(err, errlen, "config key '%s' must be a string", sub);
            goto fail;
        }
        char *value = config_llm__expand(sub, json_string_value(v), get, err, errlen);
        if (!value) goto fail;
        if (strpbrk(value, "\r\n") || strlen(json_string_value(v)) != json_string_length(v)) {
            free(value);
            snprintf(err, errlen, "config key '%s' holds a line break", sub);
            goto fail;
        }
        json_object_set_new(res, name, json_string(value));
        free(value);
    }
    *out = res;
    return 0;
fail:
    json_decref(res);
    return -1;
}

/* "openai" or "anthropic"; anything else is an error naming key. */
static int config_llm__kind(const char *key, const char *kind, char *err, size_t errlen)
{
    if (kind && (strcmp(kind, "openai") == 0 || strcmp(kind, "anthropic") == 0)) return 0;
    snprintf(err, errlen, "config key '%s' must be \"openai\" or \"anthropic\"", key);
    return -1;
}

/* A string field of a fallback, or NULL; not a string is an error. */
static int config_llm__field(const json_t *f, const char *field, size_t i, const char **out,
                             char *err, size_t errlen)
{
    const json_t *v = json_object_get(f, field);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) {
        snprintf(err, errlen, "config key 'llm.fallbacks[%zu].%s' must be a string", i, field);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* Reads fallback i into p. */
static int config_llm__fallback(const json_t *f, size_t i, config_getenv_fn get, config_provider *p,
                                char *err, size_t errlen)
{
    static const char *const fields[] = {"kind", "base_url", "api_key",        "model",
                                         "name", "headers",  "price_per_mtok", "anthropic_version"};
    char key[96];
    if (!json_is_object(f)) {
        snprintf(err, errlen,
                 "config key 'llm.fallbacks[%zu]' must be an object {\"kind\", \"base_url\", "
                 "\"api_key\", \"model\", \"name\"}",
                 i);
        return -1;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)f, k, v)
    {
        bool known = false;
        for (size_t j = 0; j < sizeof fields / sizeof *fields; j++)
            known |= strcmp(k, fields[j]) == 0;
        if (!known) {
            snprintf(err, errlen, "unknown config key 'llm.fallbacks[%zu].%.64s'", i, k);
            return -1;
        }
    }
    const char *kind, *url, *key_text, *model, *name, *version;
    if (config_llm__field(f, "kind", i, &kind, err, errlen) ||
        config_llm__field(f, "base_url", i, &url, err, errlen) ||
        config_llm__field(f, "api_key", i, &key_text, err, errlen) ||
        config_llm__field(f, "model", i, &model, err, errlen) ||
        config_llm__field(f, "name", i, &name, err, errlen) ||
        config_llm__field(f, "anthropic_version", i, &version, err, errlen))
        return -1;
    snprintf(key, sizeof key, "llm.fallbacks[%zu].kind", i);
    if (config_llm__kind(key, kind ? kind : "openai", err, errlen) != 0) return -1;
    if (!url || !*url) {
        snprintf(err, errlen, "config key 'llm.fallbacks[%zu].base_url' is required", i);
        return -1;
    }
    if (!model || !*model) {
        snprintf(err, errlen, "config key 'llm.fallbacks[%zu].model' is required", i);
        return -1;
    }
    char dflt[32];
    snprintf(dflt, sizeof dflt, "fallback-%zu", i + 1);
    p->name = xstrdup(name ? name : dflt);
    p->kind = xstrdup(kind ? kind : "openai");
    p->base_url = xstrdup(url);
    p->model = xstrdup(model);
    p->anthropic_version = version ? xstrdup(version) : NULL;
    if (key_text) {
        snprintf(key, sizeof key, "llm.fallbacks[%zu].api_key", i);
        if (!(p->api_key = config_llm__expand(key, key_text, get, err, errlen))) return -1;
    }
    snprintf(key, sizeof key, "llm.fallbacks[%zu].headers", i);
    if (config_llm__headers(key, json_object_get(f, "headers"), get, &p->headers, err, errlen))
        return -1;
    const json_t *price = json_object_get(f, "price_per_mtok");
    if (price && !json_is_null(price)) {
        const json_t *in = json_object_get(price, "input"), *out = json_object_get(price, "output");
        if (!json_is_object(price) || json_object_size(price) != 2 || !json_is_number(in) ||
            !json_is_number(out) || json_number_value(in) < 0 || json_number_value(out) < 0) {
            snprintf(err, errlen,
                     "config key 'llm.fallbacks[%zu].price_per_mtok' must be {\"input\": USD, "
                     "\"output\": USD} with non-negative numbers",
                     i);
            return -1;
        }
        p->price = (budget_price){json_number_value(in), json_number_value(out), true};
    }
    return 0;
}

/* Fills the primary from llm.*. */
static int config_llm__primary(const config *c, config_getenv_fn get, config_provider *p, char *err,
                               size_t errlen)
{
    if (config_llm__kind("llm.kind", c->llm_kind, err, errlen) != 0) return -1;
    bool anthropic = strcmp(c->llm_kind, "anthropic") == 0;
    p->name = xstrdup(c->llm_name ? c->llm_name : "primary");
    p->kind = xstrdup(c->llm_kind);
    if (c->llm_base_url)
        p->base_url = xstrdup(c->llm_base_url);
    else if (anthropic)
        p->base_url = xstrdup(CONFIG_LLM_ANTHROPIC_URL);
    if (anthropic && !(c->llm_model && *c->llm_model)) {
        snprintf(err, errlen, "config key 'llm.model' is required when llm.kind is %s",
                 "\"anthropic\"");
        return -1;
    }
    p->model = c->llm_model && *c->llm_model ? xstrdup(c->llm_model) : NULL;
    p->anthropic_version = c->llm_anthropic_version ? xstrdup(c->llm_anthropic_version) : NULL;
    if (c->llm_api_key &&
        !(p->api_key = config_llm__expand("llm.api_key", c->llm_api_key, get, err, errlen)))
        return -1;
    return config_llm__headers("llm.headers", c->llm_headers, get, &p->headers, err, errlen);
}

int config_llm_resolve(config *c, config_getenv_fn get, char *err, size_t errlen)
{
    size_t nf = json_array_size(c->llm_fallbacks);
    if (nf + 1 > CONFIG_PROVIDERS_MAX) {
        snprintf(err, errlen, "config key 'llm.fallbacks' may list at most %d providers",
                 CONFIG_PROVIDERS_MAX - 1);
        return -1;
    }
    config_provider *p = xcalloc(nf + 1, sizeof *p);
    size_t n = 1; /* the providers filled, even in part, so far */
    if (config_llm__primary(c, get, &p[0], err, errlen) != 0) goto fail;
    for (size_t i = 0; i < nf; i++) {
        n = i + 2;
        if (config_llm__fallback(json_array_get(c->llm_fallbacks, i), i, get, &p[i + 1], err,
                                 errlen) != 0)
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        const char *key = i == 0 ? "llm.name" : "llm.fallbacks[].name";
        if (!config_llm__good_name(p[i].name)) {
            snprintf(err, errlen,
                     "config key '%s': provider name '%.64s' must be 1 to 64 letters, digits, "
                     "'.', '_' or '-'",
                     key, p[i].name);
            goto fail;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(p[i].name, p[j].name) == 0) {
                snprintf(err, errlen, "config key '%s': two providers are named '%s'", key,
                         p[i].name);
                goto fail;
            }
    }
    config_llm_free(c->providers, c->nproviders);
    c->providers = p;
    c->nproviders = n;
    return 0;
fail:
    config_llm_free(p, n);
    return -1;
}

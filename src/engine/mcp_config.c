/*
 * mcp_config: the "mcpServers" section of the config file, read into one
 * mcp_server_config per server. Pure: jansson only.
 */
#include "engine/mcp_config.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/xmalloc.h"

static void mcp_config__strv_free(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}

void mcp_config_cleanup(mcp_server_config *c)
{
    free(c->name);
    free(c->command);
    mcp_config__strv_free(c->args);
    mcp_config__strv_free(c->env);
    memset(c, 0, sizeof *c);
}

void mcp_config_free(mcp_server_config *cfgs, size_t n)
{
    if (!cfgs) return;
    for (size_t i = 0; i < n; i++) mcp_config_cleanup(&cfgs[i]);
    free(cfgs);
}

static bool mcp_config__known_key(const char *k)
{
    static const char *const keys[] = {"command", "args",     "env",
                                       "type",    "disabled", "timeout_seconds"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(k, keys[i]) == 0) return true;
    return false;
}

/* Fills c from the object v of server name; on error fills err. */
static int mcp_config__one(const char *name, const json_t *v, mcp_server_config *c, char *err,
                       size_t errlen)
{
    c->name = xstrdup(name);
    c->timeout_ms = MCP_DEFAULT_TIMEOUT_MS;
    if (!json_is_object(v)) {
        snprintf(err, errlen, "config key 'mcpServers.%s' must be an object", name);
        return -1;
    }
    const char *key;
    const json_t *x;
    json_object_foreach((json_t *)v, key, x)
    {
        if (!mcp_config__known_key(key)) {
            snprintf(err, errlen, "unknown config key 'mcpServers.%s.%s'", name, key);
            return -1;
        }
    }
    x = json_object_get(v, "command");
    if (!x) {
        snprintf(err, errlen, "config key 'mcpServers.%s.command' is missing", name);
        return -1;
    }
    if (!json_is_string(x) || !*json_string_value(x)) {
        snprintf(err, errlen, "config key 'mcpServers.%s.command' must be a non-empty string",
                 name);
        return -1;
    }
    c->command = xstrdup(json_string_value(x));

    x = json_object_get(v, "args");
    size_t nargs = json_is_array(x) ? json_array_size(x) : 0;
    c->args = xcalloc(nargs + 2, sizeof *c->args);
    c->args[0] = xstrdup(c->command);
    if (x) {
        size_t i;
        const json_t *a;
        bool ok = json_is_array(x);
        json_array_foreach(x, i, a)
        {
            if (!json_is_string(a)) ok = false;
        }
        if (!ok) {
            snprintf(err, errlen, "config key 'mcpServers.%s.args' must be an array of strings",
                     name);
            return -1;
        }
        json_array_foreach(x, i, a) c->args[i + 1] = xstrdup(json_string_value(a));
    }

    x = json_object_get(v, "env");
    c->env = xcalloc((json_is_object(x) ? json_object_size(x) : 0) + 1, sizeof *c->env);
    if (x) {
        if (!json_is_object(x)) {
            snprintf(err, errlen, "config key 'mcpServers.%s.env' must be an object of strings",
                     name);
            return -1;
        }
        size_t n = 0;
        const char *k;
        const json_t *val;
        json_object_foreach((json_t *)x, k, val)
        {
            if (!*k || strchr(k, '=')) {
                snprintf(err, errlen,
                         "config key 'mcpServers.%s.env' has '%s', which is not a variable name",
                         name, k);
                return -1;
            }
            if (!json_is_string(val)) {
                snprintf(err, errlen, "config key 'mcpServers.%s.env.%s' must be a string", name,
                         k);
                return -1;
            }
            c->env[n++] = xasprintf("%s=%s", k, json_string_value(val));
        }
    }

    x = json_object_get(v, "timeout_seconds");
    if (x) {
        double t = json_number_value(x);
        if (!json_is_number(x) || !(t > 0) || t > 86400) {
            snprintf(err, errlen,
                     "config key 'mcpServers.%s.timeout_seconds' must be a number of seconds "
                     "above 0 and at most 86400",
                     name);
            return -1;
        }
        c->timeout_ms = (int64_t)ceil(t * 1000);
    }
    x = json_object_get(v, "type");
    if (x && !(json_is_string(x) && strcmp(json_string_value(x), "stdio") == 0)) {
        snprintf(err, errlen,
                 "config key 'mcpServers.%s.type' must be \"stdio\" (the only transport "
                 "supported)",
                 name);
        return -1;
    }
    x = json_object_get(v, "disabled");
    if (x && !json_is_boolean(x)) {
        snprintf(err, errlen, "config key 'mcpServers.%s.disabled' must be true or false", name);
        return -1;
    }
    c->disabled = json_is_true(x);
    return 0;
}

int mcp_config_parse(const json_t *servers, mcp_server_config **out, size_t *n, char *err,
                     size_t errlen)
{
    *out = NULL;
    *n = 0;
    if (!servers || json_is_null(servers)) return 0;
    if (!json_is_object(servers)) {
        snprintf(err, errlen, "config key 'mcpServers' must be an object");
        return -1;
    }
    mcp_server_config *cfgs = xcalloc(json_object_size(servers) + 1, sizeof *cfgs);
    size_t count = 0;
    const char *name;
    const json_t *v;
    json_object_foreach((json_t *)servers, name, v)
    {
        if (!*name) {
            snprintf(err, errlen, "config key 'mcpServers' has a server with an empty name");
            mcp_config_free(cfgs, count);
            return -1;
        }
        if (mcp_config__one(name, v, &cfgs[count++], err, errlen) != 0) {
            mcp_config_free(cfgs, count);
            return -1;
        }
    }
    *out = cfgs;
    *n = count;
    return 0;
}

/*
 * mcp_config: the "mcpServers" section of the config file, read into one
 * mcp_server_config per server. Jansson only, and the environment for the
 * ${NAME} references of remote servers.
 */
#include "engine/mcp_config.h"

#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/redact.h"
#include "lib/xmalloc.h"

static void mcp_config__strv_free(char **v)
{
    if (!v) return;
    for (char **p = v; *p; p++) free(*p);
    free(v);
}

void mcp_config_cleanup(mcp_server_config *c)
{
    char **strvs[] = {c->args, c->env, c->headers};
    for (size_t i = 0; i < sizeof strvs / sizeof strvs[0]; i++) mcp_config__strv_free(strvs[i]);
    free(c->name);
    free(c->command);
    free(c->url);
    memset(c, 0, sizeof *c);
}

void mcp_config_free(mcp_server_config *cfgs, size_t n)
{
    if (!cfgs) return;
    for (size_t i = 0; i < n; i++) mcp_config_cleanup(&cfgs[i]);
    free(cfgs);
}

const char *mcp_config_transport_name(mcp_transport_kind k)
{
    return k == MCP_TRANSPORT_HTTP ? "http" : k == MCP_TRANSPORT_SSE ? "sse" : "stdio";
}

/* Whether k is a key of a server reached the way remote says. */
static bool mcp_config__known_key(const char *k, bool remote)
{
    static const char *const common[] = {"type", "disabled", "timeout_seconds"};
    static const char *const local[] = {"command", "args", "env"};
    static const char *const far[] = {"url", "headers", "tls_verify"};
    for (size_t i = 0; i < sizeof common / sizeof common[0]; i++)
        if (strcmp(k, common[i]) == 0) return true;
    const char *const *set = remote ? far : local;
    for (size_t i = 0; i < 3; i++)
        if (strcmp(k, set[i]) == 0) return true;
    return false;
}

static bool mcp_config__name_char(char ch, bool first)
{
    return ch == '_' || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
           (!first && ch >= '0' && ch <= '9');
}

/*
 * Returns a new string: in with every ${NAME} replaced by the variable's
 * value from the environment; a '$' not followed by '{' stays as it is.
 * On error (a malformed reference, an unset variable, a result over
 * MCP_CONFIG_VALUE_MAX bytes) returns NULL with err naming key.
 */
static char *mcp_config__expand(const char *in, const char *key, char *err, size_t errlen)
{
    size_t cap = strlen(in) + 1, len = 0;
    char *out = xmalloc(cap);
    for (const char *p = in; *p;) {
        const char *add = p;
        size_t addlen = 1;
        if (p[0] == '$' && p[1] == '{') {
            const char *name = p + 2, *q = name;
            while (mcp_config__name_char(*q, q == name)) q++;
            if (q == name || *q != '}') {
                snprintf(err, errlen,
                         "config key '%s' has a '${' that is not a variable reference like "
                         "${NAME}",
                         key);
                free(out);
                return NULL;
            }
            char *var = xstrndup(name, (size_t)(q - name));
            add = getenv(var);
            if (!add) {
                snprintf(err, errlen,
                         "config key '%s' names the environment variable '%s', which is not set",
                         key, var);
                free(var);
                free(out);
                return NULL;
            }
            free(var);
            addlen = strlen(add);
            p = q + 1;
        } else {
            p++;
        }
        if (len + addlen >= MCP_CONFIG_VALUE_MAX) {
            snprintf(err, errlen, "config key '%s' is longer than %d bytes once expanded", key,
                     MCP_CONFIG_VALUE_MAX);
            free(out);
            return NULL;
        }
        if (len + addlen + 1 > cap) {
            cap = (len + addlen + 1) * 2;
            out = xrealloc(out, cap);
        }
        memcpy(out + len, add, addlen);
        len += addlen;
    }
    out[len] = '\0';
    return out;
}

/* Whether name is an HTTP header name (a token) that the transport does not
 * set itself. */
static bool mcp_config__header_name_ok(const char *name)
{
    static const char *const own[] = {"accept",         "content-type",         "content-length",
                                      "mcp-session-id", "mcp-protocol-version", "last-event-id",
                                      "host",           "transfer-encoding"};
    if (!*name) return false;
    for (const char *p = name; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("!#$%&'*+-.^_`|~", *p))) return false;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strcasecmp(name, own[i]) == 0) return false;
    return true;
}

/* The url, headers and tls_verify of a remote server. */
static int mcp_config__remote(const char *name, const json_t *v, mcp_server_config *c, char *err,
                              size_t errlen)
{
    char key[384];
    const json_t *x = json_object_get(v, "url");
    snprintf(key, sizeof key, "mcpServers.%s.url", name);
    if (!json_is_string(x) || !*json_string_value(x)) {
        snprintf(err, errlen, "config key '%s' must be a non-empty string", key);
        return -1;
    }
    c->url = mcp_config__expand(json_string_value(x), key, err, errlen);
    if (!c->url) return -1;
    if (strncasecmp(c->url, "http://", 7) != 0 && strncasecmp(c->url, "https://", 8) != 0) {
        snprintf(err, errlen, "config key '%s' must be an http:// or https:// URL", key);
        return -1;
    }
    if (strpbrk(c->url, " \t\r\n")) {
        snprintf(err, errlen, "config key '%s' must not contain spaces or line breaks", key);
        return -1;
    }

    x = json_object_get(v, "headers");
    size_t nh = json_is_object(x) ? json_object_size(x) : 0;
    c->headers = xcalloc(nh + 1, sizeof *c->headers);
    size_t i = 0;
    const char *h;
    const json_t *hv;
    snprintf(key, sizeof key, "mcpServers.%s.headers", name);
    if (x && (!json_is_object(x) || nh > MCP_CONFIG_HEADERS_MAX)) {
        snprintf(err, errlen, "config key '%s' must be an object of at most %d strings", key,
                 MCP_CONFIG_HEADERS_MAX);
        return -1;
    }
    json_object_foreach((json_t *)x, h, hv)
    {
        snprintf(key, sizeof key, "mcpServers.%s.headers.%s", name, h);
        if (!mcp_config__header_name_ok(h)) {
            snprintf(err, errlen,
                     "config key 'mcpServers.%s.headers' has '%s', which is not a header name "
                     "chatplane lets a configuration set",
                     name, h);
            return -1;
        }
        if (!json_is_string(hv)) {
            snprintf(err, errlen, "config key '%s' must be a string", key);
            return -1;
        }
        char *val = mcp_config__expand(json_string_value(hv), key, err, errlen);
        if (!val) return -1;
        if (strpbrk(val, "\r\n")) {
            /* The value is a secret: the message names the key only. */
            snprintf(err, errlen, "config key '%s' must not contain line breaks", key);
            free(val);
            return -1;
        }
        c->headers[i++] = xasprintf("%s: %s", h, val);
        free(val);
    }

    x = json_object_get(v, "tls_verify");
    if (x && !json_is_boolean(x)) {
        snprintf(err, errlen, "config key 'mcpServers.%s.tls_verify' must be true or false", name);
        return -1;
    }
    c->tls_verify = !x || json_is_true(x);
    return 0;
}

/* The command, args and env of a local server. */
static int mcp_config__local(const char *name, const json_t *v, mcp_server_config *c, char *err,
                             size_t errlen)
{
    const json_t *x = json_object_get(v, "command");
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
    return 0;
}

/* The transport of server name from its "type" and whether it has a url. */
static int mcp_config__type(const char *name, const json_t *v, bool remote, mcp_transport_kind *out,
                            char *err, size_t errlen)
{
    const json_t *x = json_object_get(v, "type");
    const char *t = json_string_value(x);
    *out = remote ? MCP_TRANSPORT_HTTP : MCP_TRANSPORT_STDIO;
    if (!x) return 0;
    if (!remote && t && strcmp(t, "stdio") == 0) return 0;
    if (remote && t && strcmp(t, "http") == 0) return 0;
    if (remote && t && strcmp(t, "sse") == 0) {
        *out = MCP_TRANSPORT_SSE;
        return 0;
    }
    if (remote)
        snprintf(err, errlen,
                 "config key 'mcpServers.%s.type' must be \"http\" or \"sse\" for a server "
                 "with a url",
                 name);
    else
        snprintf(err, errlen,
                 "config key 'mcpServers.%s.type' must be \"stdio\" for a server with a "
                 "command",
                 name);
    return -1;
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
    bool remote = json_object_get(v, "url") != NULL;
    if (remote && json_object_get(v, "command")) {
        snprintf(err, errlen,
                 "config key 'mcpServers.%s' has both 'command' (a local server) and 'url' (a "
                 "remote one)",
                 name);
        return -1;
    }
    if (!remote && !json_object_get(v, "command")) {
        snprintf(err, errlen,
                 "config key 'mcpServers.%s.command' is missing (or 'url', for a remote server)",
                 name);
        return -1;
    }
    const char *key;
    const json_t *x;
    json_object_foreach((json_t *)v, key, x)
    {
        if (!mcp_config__known_key(key, remote)) {
            snprintf(err, errlen, "unknown config key 'mcpServers.%s.%s'%s", name, key,
                     mcp_config__known_key(key, !remote)
                         ? (remote ? " (only for a server with a command)"
                                   : " (only for a server with a url)")
                         : "");
            return -1;
        }
    }
    if (mcp_config__type(name, v, remote, &c->transport, err, errlen) != 0) return -1;
    if ((remote ? mcp_config__remote : mcp_config__local)(name, v, c, err, errlen) != 0) return -1;

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
    x = json_object_get(v, "disabled");
    if (x && !json_is_boolean(x)) {
        snprintf(err, errlen, "config key 'mcpServers.%s.disabled' must be true or false", name);
        return -1;
    }
    c->disabled = json_is_true(x);
    return 0;
}

void mcp_config_register_secrets(const mcp_server_config *c)
{
    if (c->url) redact_register_url(c->url);
    for (char **h = c->headers; h && *h; h++) {
        const char *val = strchr(*h, ':') + 2;
        redact_register(val);
        const char *word = strrchr(val, ' ');
        if (word && word[1]) redact_register(word + 1);
    }
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

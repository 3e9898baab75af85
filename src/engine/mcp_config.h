/*
 * mcp_config: the "mcpServers" section of the config file (docs/mcp.md,
 * Configuration), the shape other MCP clients use. A server is local (a
 * "command" run with stdio) or remote (a "url" reached over HTTP). No I/O;
 * the one thing read from outside is the environment, for the ${NAME}
 * references of url and header values.
 */
#ifndef CHATPLANE_MCP_CONFIG_H
#define CHATPLANE_MCP_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MCP_DEFAULT_TIMEOUT_MS 60000 /* timeout_seconds when not configured */
#define MCP_CONFIG_VALUE_MAX   8192  /* a url or header value after expansion */
#define MCP_CONFIG_HEADERS_MAX 32    /* headers of one server */

/* How a server is reached. */
typedef enum mcp_transport_kind {
    MCP_TRANSPORT_STDIO, /* "stdio": a child process */
    MCP_TRANSPORT_HTTP,  /* "http": Streamable HTTP */
    MCP_TRANSPORT_SSE,   /* "sse": the older HTTP+SSE transport */
} mcp_transport_kind;

typedef struct mcp_server_config {
    char *name;
    mcp_transport_kind transport;
    /* stdio */
    char *command;
    char **args; /* NULL-terminated */
    char **env;  /* "K=V", NULL-terminated */
    /* http, sse */
    char *url;       /* ${NAME} expanded */
    char **headers;  /* "Name: value", ${NAME} expanded, NULL-terminated; secrets */
    bool tls_verify; /* false only when configured so */
    int64_t timeout_ms;
    bool disabled;
} mcp_server_config;

/*
 * Reads the "mcpServers" object. A local server: {"NAME": {"command": "…",
 * "args": ["…"], "env": {"K": "V"}, "timeout_seconds": 60, "type":
 * "stdio", "disabled": false}}; a remote one: {"NAME": {"url":
 * "https://…", "headers": {"Authorization": "Bearer ${TOKEN}"}, "type":
 * "http" (or "sse", the older HTTP+SSE transport), "tls_verify": true, "timeout_seconds": 60}}.
 * Errors name the key: "config key 'mcpServers.fs.command' must be a non-empty string". NULL
 * servers is an empty list. Returns 0 with a new array in *out (free with mcp_config_free), or -1.
 */
int mcp_config_parse(const json_t *servers, mcp_server_config **out, size_t *n, char *err,
                     size_t errlen);
void mcp_config_free(mcp_server_config *cfgs, size_t n);
/* Frees what one config holds (not the struct itself). */
void mcp_config_cleanup(mcp_server_config *c);
/* "stdio", "http" or "sse". */
const char *mcp_config_transport_name(mcp_transport_kind k);
/* Adds the secrets of c to the process-wide redaction registry
 * (lib/redact.h): every header value, the last word of one ("Bearer
 * TOKEN"), and a password in the url. */
void mcp_config_register_secrets(const mcp_server_config *c);

#endif

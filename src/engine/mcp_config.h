/*
 * mcp_config: the "mcpServers" section of the config file (docs/mcp.md,
 * Configuration), the shape other MCP clients use. Pure: no I/O.
 */
#ifndef CHATPLANE_MCP_CONFIG_H
#define CHATPLANE_MCP_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MCP_DEFAULT_TIMEOUT_MS 60000 /* timeout_seconds when not configured */

typedef struct mcp_server_config {
    char *name;
    char *command;
    char **args; /* NULL-terminated */
    char **env;  /* "K=V", NULL-terminated */
    int64_t timeout_ms;
    bool disabled;
} mcp_server_config;

/*
 * Reads the "mcpServers" object: {"NAME": {"command": "…", "args": ["…"],
 * "env": {"K": "V"}, "timeout_seconds": 60, "type": "stdio",
 * "disabled": false}}. Errors name the key: "config key
 * 'mcpServers.fs.command' must be a non-empty
 * string". NULL servers is an empty list.
 * Returns 0 with a new array in *out (free with mcp_config_free), or -1.
 */
int mcp_config_parse(const json_t *servers, mcp_server_config **out, size_t *n, char *err,
                     size_t errlen);
void mcp_config_free(mcp_server_config *cfgs, size_t n);
/* Frees what one config holds (not the struct itself). */
void mcp_config_cleanup(mcp_server_config *c);

#endif

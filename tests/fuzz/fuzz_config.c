/*
 * libFuzzer target for configuration files: config_apply_json_text on the
 * text of a config file, then what start-up does with an accepted one
 * (the mcpServers section through mcp_config_parse, the modes overrides
 * applied to the presets).
 *
 * Invariants: a refused file has a message and leaves the configuration
 * as it was (the listen address keeps its default); an accepted one keeps
 * every limit inside the range its option allows.
 *
 *   make fuzz-bins && build/fuzz/tests/fuzz/fuzz_config -max_total_time=20 tests/fuzz/corpus/config
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app/config.h"
#include "core/mode.h"
#include "engine/mcp_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 65536) return 0;
    config c;
    config_init(&c);
    char err[512] = "";
    if (config_apply_json_text(&c, (const char *)data, size, "fuzz.json", err, sizeof err) != 0) {
        if (!err[0] || strcmp(c.listen, "127.0.0.1:8080") != 0) abort();
        config_cleanup(&c);
        return 0;
    }
    if (c.body_bytes < 1024 || c.message_bytes < 16 || c.active_runs < 1 ||
        c.subscribers_per_session < 1 || c.subscribers_per_token < 1 || c.demo_delay_ms < 0)
        abort();
    mcp_server_config *servers = NULL;
    size_t n = 0;
    if (mcp_config_parse(c.mcp_servers, &servers, &n, err, sizeof err) == 0)
        mcp_config_free(servers, n);
    else if (!err[0])
        abort();
    const char *name;
    json_t *over;
    json_object_foreach(c.modes, name, over)
    {
        const mode *p = mode_preset(name);
        if (!p || !json_is_object(over)) continue;
        mode m = *p;
        (void)mode_limits_apply_json(&m.limits, over, "modes", err, sizeof err);
    }
    config_cleanup(&c);
    return 0;
}

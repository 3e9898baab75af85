#include "core/status.h"

#include <stddef.h>
#include <string.h>

static const char *const status__names[STATUS__COUNT] = {
    [STATUS_THINKING] = "thinking",
    [STATUS_RESPONDING] = "responding",
    [STATUS_TOOL_RUNNING] = "tool_running",
    [STATUS_RETRYING] = "retrying",
    [STATUS_STOPPING] = "stopping",
    [STATUS_WAITING_FOR_APPROVAL] = "waiting_for_approval",
    [STATUS_WAITING_FOR_INPUT] = "waiting_for_input",
};

const char *status_name(run_status s)
{
    if ((unsigned)s >= STATUS__COUNT) return "unknown";
    return status__names[s];
}

int status_parse(const char *name, run_status *out)
{
    if (!name) return -1;
    for (int i = 0; i < STATUS__COUNT; i++) {
        if (strcmp(status__names[i], name) == 0) {
            *out = (run_status)i;
            return 0;
        }
    }
    return -1;
}

/*
 * status: what a run is doing right now (docs/runs.md, Statuses), as carried
 * by `status` events. A session with no run is "idle".
 */
#ifndef CHATPLANE_STATUS_H
#define CHATPLANE_STATUS_H

typedef enum run_status {
    STATUS_THINKING,             /* model called, nothing received yet */
    STATUS_RESPONDING,           /* text arriving */
    STATUS_TOOL_RUNNING,         /* a tool is executing; detail names it */
    STATUS_RETRYING,             /* waiting to repeat a failed model call */
    STATUS_STOPPING,             /* a stop was requested */
    STATUS_WAITING_FOR_APPROVAL, /* a tool call waits for a person; detail names the tool */
    STATUS_WAITING_FOR_INPUT, /* a tool's server waits for a person's answer; detail names the tool
                               */
    STATUS__COUNT
} run_status;

/* Returns the name that events carry ("thinking", …). */
const char *status_name(run_status s);
/* Returns 0 and sets *out, or -1 for an unknown name. */
int status_parse(const char *name, run_status *out);

#endif

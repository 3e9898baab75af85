/*
 * llm: the calls every provider answers through its ops table, and the
 * release of a result.
 */
#include "engine/llm.h"

#include <stdlib.h>
#include <string.h>

llm_call *llm_call_start(llm *p, const llm_request *req, const llm_callbacks *cb, void *ud)
{
    return p->ops->start(p, req, cb, ud);
}

void llm_call_abort(llm *p, llm_call *c)
{
    if (c) p->ops->abort(c);
}

void llm_free(llm *p)
{
    if (p) p->ops->free(p);
}

/* Frees every string and the call array; the result can be reused after. */
void llm_result_cleanup(llm_result *r)
{
    if (!r) return;
    free(r->text);
    for (size_t i = 0; i < r->ncalls; i++) {
        free(r->calls[i].id);
        free(r->calls[i].name);
        free(r->calls[i].arguments);
    }
    free(r->calls);
    free(r->finish_reason);
    free(r->error_code);
    free(r->error_message);
    memset(r, 0, sizeof *r);
    r->prompt_tokens = r->completion_tokens = r->retry_after_ms = -1;
}

#include "core/progress.h"

#include <stdlib.h>
#include <string.h>

#include "lib/utf8.h"
#include "lib/xmalloc.h"

void progress_init(progress_pace *p, int64_t interval_ms)
{
    memset(p, 0, sizeof *p);
    p->interval_ms = interval_ms;
}

void progress_cleanup(progress_pace *p)
{
    free(p->u.message);
    p->u.message = NULL;
    p->held = false;
}

void progress_reset(progress_pace *p)
{
    progress_cleanup(p);
    progress_init(p, p->interval_ms);
}

void progress_offer(progress_pace *p, double value, double total, const char *message)
{
    free(p->u.message);
    p->u.progress = value;
    p->u.total = total;
    p->u.message = NULL;
    if (message) {
        /* Enough bytes to see a character that straddles the cut. */
        size_t n = strnlen(message, PROGRESS_MESSAGE_MAX + UTF8_SEQ_MAX);
        p->u.message = xstrndup(message, utf8_cut(message, n, PROGRESS_MESSAGE_MAX));
    }
    p->held = true;
}

int64_t progress_due(const progress_pace *p)
{
    if (!p->held) return -1;
    return p->shown ? p->shown_ms + p->interval_ms : 0;
}

bool progress_take(progress_pace *p, int64_t now_ms, progress_update *out)
{
    int64_t due = progress_due(p);
    if (due < 0 || now_ms < due) return false;
    p->shown = true;
    p->shown_ms = now_ms;
    return progress_drain(p, out);
}

bool progress_drain(progress_pace *p, progress_update *out)
{
    if (!p->held) return false;
    *out = p->u;
    p->u.message = NULL;
    p->held = false;
    return true;
}

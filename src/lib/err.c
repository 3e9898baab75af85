#include "lib/err.h"

const char *err_name(int code)
{
    static const char *const names[] = {
        "ok",          "toobig",     "db",         "db_conflict",     "db_busy",
        "db_conn",     "db_full",    "db_retry",   "not_found",       "conflict",
        "too_new",     "run_active", "no_run",     "nothing",         "too_many",
        "unavailable", "bad_mode",   "db_claimed", "no_user_message", "queue_full",
    };
    if (code > 0 || code < ERR__LAST) return "unknown";
    return names[-code];
}

/*
 * err: the one space of error codes. A function that can fail returns 0 or
 * one of these; they are negative and distinct across every module, so a
 * code handed up through several layers (a database failure reaching the
 * HTTP routes through the engine) keeps its meaning and is never read as
 * another module's code. Each module names the codes it returns with its own
 * prefix (BUF_TOOBIG, DB_ERR_FULL, STORE_NOT_FOUND, ENGINE_ERR_RUN_ACTIVE);
 * those names are defined here, in one list.
 */
#ifndef CHATPLANE_ERR_H
#define CHATPLANE_ERR_H

enum {
    ERR_TOOBIG = -1,           /* a capped buffer, line or frame would pass its cap */
    ERR_DB = -2,               /* the database failed; its message says how */
    ERR_DB_CONFLICT = -3,      /* a unique or primary key constraint failed */
    ERR_DB_BUSY = -4,          /* locked, or a serialization failure: retry later */
    ERR_DB_CONN = -5,          /* the connection to the database is lost */
    ERR_DB_FULL = -6,          /* the disk is full or the file read-only */
    ERR_DB_RETRY = -7,         /* rolled back (deadlock or serialization): run it again at once */
    ERR_NOT_FOUND = -8,        /* no such row (session, run, token) */
    ERR_CONFLICT = -9,         /* the row's state forbids it (a run already active) */
    ERR_TOO_NEW = -10,         /* the schema is newer than this binary */
    ERR_RUN_ACTIVE = -11,      /* a run is already active in the session */
    ERR_NO_RUN = -12,          /* the session has no active run */
    ERR_NOTHING = -13,         /* nothing to continue */
    ERR_TOO_MANY = -14,        /* the server runs its limit of runs */
    ERR_UNAVAILABLE = -15,     /* the database failed, or the server is shutting down */
    ERR_BAD_MODE = -16,        /* not the name of a known mode */
    ERR_DB_CLAIMED = -17,      /* another process holds the database file's claim */
    ERR_NO_USER_MESSAGE = -18, /* nothing to regenerate: the session has no user message */
    ERR_QUEUE_FULL = -19,      /* the session has a queued run already */
    ERR__LAST = -19
};

/* The code's name ("toobig", "db_full", …), or "unknown" for anything else
 * (0 is "ok"). For messages and logs. */
const char *err_name(int code);

#endif

/*
 * validate: the checks of every request body and query parameter of the
 * API in one place (docs/api.md, Requests). Each body has a schema, a table
 * of its fields; validate_body checks a parsed body against it and writes
 * one message that names the field ("message must be a non-empty string",
 * "title must be at most 200 characters", "unknown field 'foo'").
 *
 * Rules shared by every body: the body is a JSON object; a field that the
 * schema does not name is rejected; an optional field given as null counts
 * as absent. Pure: no I/O.
 */
#ifndef CHATPLANE_VALIDATE_H
#define CHATPLANE_VALIDATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define VALIDATE_TITLE_MAX 200 /* characters (code points) */

typedef enum validate_kind {
    VALIDATE_STRING,  /* any string within max_chars */
    VALIDATE_TITLE,   /* a string of 1..VALIDATE_TITLE_MAX characters, not only spaces */
    VALIDATE_MESSAGE, /* a non-empty string of at most ctx->message_bytes bytes */
    VALIDATE_MODE,    /* the name of a known mode */
    VALIDATE_OBJECT,  /* a JSON object (checked further by its owner) */
    VALIDATE_ID,      /* a non-empty string of at most 64 bytes */
    VALIDATE_CHOICE,  /* one of the strings of choices */
    VALIDATE_TRUE     /* true (a flag that is either given as true or left out) */
} validate_kind;

typedef struct validate_field {
    const char *name;
    validate_kind kind;
    bool required;
    size_t max_chars;           /* VALIDATE_STRING: most characters; 0: no limit */
    const char *const *choices; /* VALIDATE_CHOICE: the allowed strings, NULL-terminated */
} validate_field;

typedef struct validate_schema {
    const validate_field *fields;
    size_t n;
} validate_schema;

/* What the checks need to know about the running server. */
typedef struct validate_ctx {
    size_t message_bytes;     /* limits.message_bytes */
    const char *const *modes; /* known mode names, in the order to list them */
    size_t nmodes;
} validate_ctx;

/* The bodies of the API. */
extern const validate_schema validate_session_create; /* {"title"?, "mode"?} */
extern const validate_schema validate_session_patch;  /* {"title"?, "mode"?} */
extern const validate_schema validate_run_start;      /* {"message", "mode"?} */
extern const validate_schema validate_continue;       /* {"mode"?} */
extern const validate_schema validate_stop;           /* {} */
extern const validate_schema
    validate_mode_put; /* {"limits"?, "guard"?, "description"?, "approval"?} */
/* {"decision": "approve|deny", "reason"?, "remember"?: "once|run|session"} */
extern const validate_schema validate_decision;
extern const validate_schema validate_fork;         /* {"message_id"?, "message"?, "title"?} */
extern const validate_schema validate_answer;       /* {"action", "content"?} */
extern const validate_schema validate_brain_stream; /* {"session_id"?, "message", "mode"?} */
extern const validate_schema validate_login;        /* {"token"} */

/*
 * Checks body (a parsed JSON value, borrowed) against schema. Returns 0, or
 * -1 with a message naming the first problem in err.
 */
int validate_body(const validate_schema *schema, const json_t *body, const validate_ctx *ctx,
                  char *err, size_t errlen);

/* The field as a string when it is present and not null, else NULL. */
const char *validate_get_string(const json_t *body, const char *name);

/*
 * Parses a query parameter holding a whole number from min to max. Returns
 * 0 and sets *out, or -1 with "NAME must be an integer from MIN to MAX"
 * (or "NAME must be a non-negative integer" when max is INT64_MAX).
 */
int validate_query_int(const char *name, const char *value, int64_t min, int64_t max, int64_t *out,
                       char *err, size_t errlen);

#endif

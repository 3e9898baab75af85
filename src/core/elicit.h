/*
 * elicit: the forms a tool server asks a person to fill in (MCP
 * elicitation, form mode; docs/runs.md, Questions). Pure: the schema a
 * server sends is checked before anyone sees it, and a person's answer is
 * checked against that schema before the server gets it.
 *
 * A form is a flat object: "type": "object", "properties" (at most
 * ELICIT_FIELDS_MAX fields) and an optional "required" list. Each field is
 * one of
 *   string   optional minLength, maxLength, format (email, uri, date,
 *            date-time), and a choice: "enum" (strings) or "oneOf" of
 *            {"const": string, "title"?}
 *   number   optional minimum, maximum
 *   integer  optional minimum, maximum
 *   boolean
 *   array    a choice of several: "items" with "enum" (strings) or "anyOf"
 *            of {"const": string, "title"?}; optional minItems, maxItems
 * Titles, descriptions, defaults and other keywords are shown or ignored,
 * never checked, so a server may add them.
 *
 * The schema and the answer come from outside (a server, an HTTP body), so
 * every rule has an error that names the field and what is wrong.
 */
#ifndef CHATPLANE_ELICIT_H
#define CHATPLANE_ELICIT_H

#include <jansson.h>
#include <stddef.h>

#define ELICIT_FIELDS_MAX  64  /* the most fields one form may have */
#define ELICIT_NAME_MAX    64  /* the longest field name, in bytes */
#define ELICIT_CHOICES_MAX 100 /* the most choices one field may offer */
#define ELICIT_ERR_MAX     256 /* room enough for every error message */

/* The states of an input (docs/api.md, Inputs). */
typedef enum elicit_status {
    ELICIT_PENDING,
    ELICIT_ACCEPTED,
    ELICIT_DECLINED,
    ELICIT_CANCELLED,
    ELICIT_EXPIRED,
    ELICIT__STATUS_COUNT
} elicit_status;

/* A person's answer, as MCP names it. */
typedef enum elicit_action {
    ELICIT_ACCEPT,
    ELICIT_DECLINE,
    ELICIT_CANCEL,
    ELICIT__ACTION_COUNT
} elicit_action;

/* "pending", "accepted", "declined", "cancelled", "expired"; "accept",
 * "decline", "cancel". Out of range: "unknown". */
const char *elicit_status_name(elicit_status s);
const char *elicit_action_name(elicit_action a);
/* Each returns 0 and sets *out, or -1 (and leaves *out) for an unknown or
 * NULL name. */
int elicit_status_parse(const char *name, elicit_status *out);
int elicit_action_parse(const char *name, elicit_action *out);
/* The status an answer leaves the input in: accept -> accepted, decline ->
 * declined, cancel -> cancelled. */
elicit_status elicit_action_status(elicit_action a);

/*
 * Checks that schema is a form this version can show (the rules above).
 * Returns 0, or -1 with a message in err naming the problem
 * ("requestedSchema.properties.age: type must be one of string, number,
 * integer, boolean, array").
 */
int elicit_schema_check(const json_t *schema, char *err, size_t errlen);

/*
 * Checks content (the answer's "content", NULL when there is none) against
 * a schema that elicit_schema_check accepted: content is an object, every
 * key is a field, every required field is there, every value fits its
 * field. Returns 0, or -1 with a message naming the field in err
 * ("content.age must be an integer", "content.name is required").
 */
int elicit_content_check(const json_t *schema, const json_t *content, char *err, size_t errlen);

#endif

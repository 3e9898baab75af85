/*
 * control: the messages instances sharing a PostgreSQL database send each
 * other on the control channel (docs/architecture.md, "Several
 * instances"), as one codec: a tagged struct to a JSON text and back.
 *
 * The texts, compact JSON with the keys in this order:
 *   stop             {"instance":OWNER,"run_id":R,"action":"stop"}
 *   mode             {"instance":OWNER,"run_id":R,"action":"mode","mode":NAME}
 *   put_mode         {"instance":"*","from":SENDER,"action":"put_mode","mode":{mode object}}
 *   session_deleted  {"instance":"*","from":SENDER,"action":"session_deleted","session_id":S}
 *   approval_decided {"instance":OWNER,"run_id":R,"action":"approval_decided","approval_id":A}
 *   input_answered   {"instance":OWNER,"run_id":R,"action":"input_answered","input_id":I}
 * Instances of different versions may share a database, so these bytes do
 * not change; a new kind of message gets a new action. The last two say
 * that a person's decision on approval A (answer to input I) of run R is
 * stored already; the owner reads it from the store and applies it, so the
 * message never carries the decision itself. The mode object is
 * core/mode's JSON form ({"name","description","limits","guard"}).
 *
 * A text comes from another process, so decoding trusts nothing: any bytes
 * give either a message whose fields are all present with the right types,
 * or an error that names what is wrong.
 */
#ifndef CHATPLANE_CONTROL_H
#define CHATPLANE_CONTROL_H

#include <jansson.h>
#include <stddef.h>

/* The longest text: PostgreSQL refuses a notification payload of 8000
 * bytes or more. */
#define CONTROL_MAX 7999
/* The instance a message for every instance is addressed to. */
#define CONTROL_EVERY "*"

typedef enum control_kind {
    CONTROL_STOP,             /* stop run_id (on its owner, instance) */
    CONTROL_MODE,             /* switch run_id to mode mode_name */
    CONTROL_PUT_MODE,         /* from edited the mode `mode` */
    CONTROL_SESSION_DELETED,  /* from deleted session_id */
    CONTROL_APPROVAL_DECIDED, /* approval item_id of run_id was decided in the store */
    CONTROL_INPUT_ANSWERED,   /* input item_id of run_id was answered in the store */
} control_kind;

/*
 * A message. The fields a kind does not use are NULL. A decoded message's
 * strings and mode belong to it until control_msg_cleanup; a message built
 * to be encoded holds the caller's.
 */
typedef struct control_msg {
    control_kind kind;
    const char *instance;   /* the addressee: an instance id, or CONTROL_EVERY */
    const char *from;       /* put_mode, session_deleted: the sender */
    const char *run_id;     /* stop, mode, approval_decided, input_answered */
    const char *mode_name;  /* mode; put_mode: the mode object's name */
    const char *session_id; /* session_deleted */
    const char *item_id;    /* approval_decided: the approval; input_answered: the input */
    const json_t *mode;     /* put_mode: the mode object */
    json_t *doc;            /* decoded: the parsed text, which owns the above */
} control_msg;

/*
 * Returns the text of m (a new string; free with free), or NULL when a field
 * its kind needs is missing (for put_mode: the mode object, with a string
 * "name"), a string is not UTF-8, or the text would be longer than
 * CONTROL_MAX. For put_mode, m->mode_name is not used: the name is the mode
 * object's.
 */
char *control_encode(const control_msg *m);

/*
 * Decodes text[0..len) into *out. Returns 0, or -1 with a message naming
 * the problem in err (and *out holding nothing to clean up): longer than
 * CONTROL_MAX, not JSON, not an object, no action or instance, an unknown
 * action, or a field of that action missing or of the wrong type.
 */
int control_decode(const char *text, size_t len, control_msg *out, char *err, size_t errlen);

/* Releases what control_decode took; a zeroed message and NULL are fine. */
void control_msg_cleanup(control_msg *m);

#endif

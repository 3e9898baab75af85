/*
 * ask_form: a tool server's question asked on the terminal by `chatplane
 * ask` (docs/cli.md, Questions): one prompt per field of the form, in the
 * schema's order, then the answer checked as the HTTP route checks it
 * (core/elicit).
 */
#ifndef CHATPLANE_ASK_FORM_H
#define CHATPLANE_ASK_FORM_H

#include <jansson.h>
#include <stdio.h>

/* The most times a form is asked again after an answer it refused. */
#define ASK_FORM_TRIES 3

/*
 * Shows message and asks for every field of schema (one elicit_schema_check
 * accepted) on out, reading one line per field from in: an empty line
 * leaves an optional field out (or takes its default, when it has one);
 * a boolean takes y/yes/true or n/no/false; a choice takes its value or
 * its number in the list shown; a choice of several takes them separated
 * by commas. An answer the form refuses is shown with the reason and the
 * form is asked again, at most ASK_FORM_TRIES times. Returns the content
 * (a new reference) to accept with, or NULL when the input ended or the
 * tries ran out: the question is then declined.
 */
json_t *ask_form_prompt(FILE *in, FILE *out, const char *message, const json_t *schema);

#endif

#include "cli/ask_form.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "core/elicit.h"
#include "lib/xmalloc.h"

#define ASK_FORM_LINE_MAX 4096 /* the longest answer to one field */

/* Reads one line without its newline into line; false at the end of in. */
static bool ask_form__line(FILE *in, char *line, size_t n)
{
    if (!fgets(line, (int)n, in)) return false;
    size_t len = strlen(line);
    if (len && line[len - 1] == '\n') {
        line[--len] = '\0';
    } else if (len == n - 1) {
        /* Longer than the room: the rest of the line is dropped. */
        int c;
        while ((c = fgetc(in)) != EOF && c != '\n') {
        }
    }
    if (len && line[len - 1] == '\r') line[--len] = '\0';
    return true;
}

/* The choices of a field (or of its items), as core/elicit accepts them. */
static const json_t *ask_form__choices(const json_t *f)
{
    const json_t *h = json_object_get(f, "items") ? json_object_get(f, "items") : f;
    const json_t *c = json_object_get(h, "enum");
    if (!c) c = json_object_get(h, "oneOf");
    if (!c) c = json_object_get(h, "anyOf");
    return c;
}

static const char *ask_form__choice(const json_t *choices, size_t i, const char **title)
{
    const json_t *c = json_array_get(choices, i);
    *title = json_string_value(json_object_get(c, "title"));
    if (json_is_object(c)) c = json_object_get(c, "const");
    return json_string_value(c);
}

/* The value a typed choice stands for: its number in the list, or itself. */
static json_t *ask_form__pick(const json_t *choices, const char *s)
{
    char *end;
    errno = 0;
    long k = strtol(s, &end, 10);
    const char *title;
    if (!errno && *s && !*end && k >= 1 && (size_t)k <= json_array_size(choices))
        return json_string(ask_form__choice(choices, (size_t)k - 1, &title));
    return json_string(s);
}

/* The value of one typed line for field f (type type); a line that is not
 * even of the type stays a string, so that the check names the problem. */
static json_t *ask_form__value(const json_t *f, const char *type, char *line)
{
    if (strcmp(type, "boolean") == 0) {
        if (!strcmp(line, "y") || !strcmp(line, "yes") || !strcmp(line, "true")) return json_true();
        if (!strcmp(line, "n") || !strcmp(line, "no") || !strcmp(line, "false"))
            return json_false();
    } else if (strcmp(type, "integer") == 0 || strcmp(type, "number") == 0) {
        char *end;
        errno = 0;
        if (strcmp(type, "integer") == 0) {
            long long v = strtoll(line, &end, 10);
            if (!errno && *line && !*end) return json_integer(v);
        } else {
            double v = strtod(line, &end);
            if (!errno && *line && !*end) return json_real(v);
        }
    } else if (strcmp(type, "array") == 0) {
        json_t *list = json_array();
        for (char *save = NULL, *tok = strtok_r(line, ",", &save); tok;
             tok = strtok_r(NULL, ",", &save)) {
            while (*tok == ' ') tok++;
            size_t n = strlen(tok);
            while (n && tok[n - 1] == ' ') tok[--n] = '\0';
            if (n) json_array_append_new(list, ask_form__pick(ask_form__choices(f), tok));
        }
        return list;
    } else if (ask_form__choices(f)) {
        return ask_form__pick(ask_form__choices(f), line);
    }
    return json_string(line);
}

/* Shows the prompt of one field: its title or name, what it takes, its
 * choices and its default. */
static void ask_form__show(FILE *out, const char *name, const json_t *f, bool required)
{
    const char *title = json_string_value(json_object_get(f, "title"));
    const char *desc = json_string_value(json_object_get(f, "description"));
    const char *type = json_string_value(json_object_get(f, "type"));
    const json_t *choices = ask_form__choices(f);
    fprintf(out, "%s%s%s (%s%s)", title ? title : name, desc ? ": " : "", desc ? desc : "",
            strcmp(type, "array") == 0 ? "choose any, separated by commas" : type,
            required ? ", required" : "");
    for (size_t i = 0; i < json_array_size(choices); i++) {
        const char *t;
        const char *v = ask_form__choice(choices, i, &t);
        fprintf(out, "\n  %zu) %s%s%s%s", i + 1, v, t ? " (" : "", t ? t : "", t ? ")" : "");
    }
    const json_t *dflt = json_object_get(f, "default");
    if (dflt) {
        char *d = json_dumps(dflt, JSON_COMPACT | JSON_ENCODE_ANY);
        fprintf(out, "\n  [%s]", d ? d : "");
        free(d);
    }
    fputs(choices ? "\n> " : ": ", out);
    fflush(out);
}

static bool ask_form__required(const json_t *schema, const char *name)
{
    const json_t *req = json_object_get(schema, "required");
    for (size_t i = 0; i < json_array_size(req); i++)
        if (strcmp(json_string_value(json_array_get(req, i)), name) == 0) return true;
    return false;
}

/* Asks every field once; NULL at the end of the input. */
static json_t *ask_form__once(FILE *in, FILE *out, const json_t *schema)
{
    json_t *content = json_object();
    const char *name;
    const json_t *f;
    char *line = xmalloc(ASK_FORM_LINE_MAX);
    json_object_foreach((json_t *)json_object_get(schema, "properties"), name, f)
    {
        ask_form__show(out, name, f, ask_form__required(schema, name));
        if (!ask_form__line(in, line, ASK_FORM_LINE_MAX)) {
            fputc('\n', out);
            json_decref(content);
            free(line);
            return NULL;
        }
        if (!*line) {
            const json_t *dflt = json_object_get(f, "default");
            if (dflt) json_object_set(content, name, (json_t *)dflt);
            continue;
        }
        json_object_set_new(
            content, name, ask_form__value(f, json_string_value(json_object_get(f, "type")), line));
    }
    free(line);
    return content;
}

json_t *ask_form_prompt(FILE *in, FILE *out, const char *message, const json_t *schema)
{
    fprintf(out, "%s\n(an empty answer leaves a field out; end of input declines)\n", message);
    for (int t = 0; t < ASK_FORM_TRIES; t++) {
        json_t *content = ask_form__once(in, out, schema);
        if (!content) return NULL;
        char err[ELICIT_ERR_MAX];
        if (elicit_content_check(schema, content, err, sizeof err) == 0) return content;
        json_decref(content);
        fprintf(out, "%s; again:\n", err);
    }
    fprintf(out, "no answer the form takes; declining\n");
    return NULL;
}

/*
 * auth: API tokens and the request facts authentication rests on
 * (docs/security.md), without I/O apart from the OS random source that
 * auth_token_new reads.
 *
 * A token is "cpt_" and 64 hex digits: 256 bits from the OS random source.
 * The database keeps only its SHA-256 (auth_token_hash); the token itself
 * is printed once, when it is made. A request carries it as
 * "Authorization: Bearer <token>" or in the chatplane_session cookie that
 * POST /api/login sets.
 */
#ifndef CHATPLANE_AUTH_H
#define CHATPLANE_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "core/sha256.h"

#define AUTH_TOKEN_PREFIX  "cpt_"
#define AUTH_TOKEN_LEN     68  /* the prefix and 64 hex digits */
#define AUTH_PRESENTED_MAX 256 /* the longest token a request may present */
#define AUTH_NAME_MAX      64
#define AUTH_COOKIE        "chatplane_session"

/* Writes a new token and a NUL into out. */
void auth_token_new(char out[AUTH_TOKEN_LEN + 1]);
/* The token's SHA-256 as lowercase hex, the form the database stores. */
void auth_token_hash(const char *token, char out[SHA256_HEX_LEN + 1]);

/* True when s could be a token: 1 to AUTH_PRESENTED_MAX - 1 printable
 * ASCII characters without spaces, quotes, commas, semicolons or
 * backslashes, so it is safe inside a header. */
bool auth_token_wellformed(const char *s);

/* True for a token name: 1 to AUTH_NAME_MAX characters of
 * [A-Za-z0-9._@-]. The name owns the sessions made with the token. */
bool auth_name_valid(const char *name);

/*
 * The token of an "Authorization: Bearer <token>" value (the scheme in
 * any case, spaces around the token allowed). Copies it into out and
 * returns 0; -1 when the value is not a bearer token or the token is
 * empty, holds a space or control character, or does not fit in outlen.
 */
int auth_bearer(const char *header, char *out, size_t outlen);

/*
 * The value of the cookie called name in a Cookie header ("a=1; b=2").
 * Copies it into out and returns 0; -1 when absent, empty or too long.
 */
int auth_cookie(const char *header, const char *name, char *out, size_t outlen);

/*
 * True when an Origin header ("https://host:port") names the host that a
 * Host header names ("host:port"): the authority after the scheme equals
 * host, ignoring case. "null", a missing value, a path after the
 * authority or a scheme other than http and https never match.
 */
bool auth_origin_matches(const char *origin, const char *host);

/* True when a Host header names a loopback host: localhost, 127.x.x.x or
 * [::1], with or without a port. */
bool auth_host_is_loopback(const char *host);

/* True when a request for path needs a token while authentication is on:
 * every path under /api/ except /api/login. */
bool auth_path_needs_token(const char *path);

/* True for methods that change state (anything but GET and HEAD). */
bool auth_method_writes(const char *method);

#endif

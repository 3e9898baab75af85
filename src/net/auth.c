#include "net/auth.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/id.h"

void auth_token_new(char out[AUTH_TOKEN_LEN + 1])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char rnd[32];
    id_random_bytes(rnd, sizeof rnd);
    memcpy(out, AUTH_TOKEN_PREFIX, sizeof AUTH_TOKEN_PREFIX - 1);
    char *p = out + sizeof AUTH_TOKEN_PREFIX - 1;
    for (size_t i = 0; i < sizeof rnd; i++) {
        *p++ = digits[rnd[i] >> 4];
        *p++ = digits[rnd[i] & 15];
    }
    *p = '\0';
}

void auth_token_hash(const char *token, char out[SHA256_HEX_LEN + 1])
{
    sha256_hex(token, strlen(token), out);
}

bool auth_name_valid(const char *name)
{
    size_t n = 0;
    for (; name[n]; n++) {
        char c = name[n];
        if (n >= AUTH_NAME_MAX) return false;
        if (!(isalnum((unsigned char)c) || c == '.' || c == '_' || c == '@' || c == '-'))
            return false;
    }
    return n > 0;
}

/* Copies s[0..len) into out when it is a plausible token: printable
 * ASCII without spaces, quotes, commas or semicolons. */
static int auth__copy_token(const char *s, size_t len, char *out, size_t outlen)
{
    if (len == 0 || len >= outlen) return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= ' ' || c >= 0x7f || c == '"' || c == ',' || c == ';' || c == '\\') return -1;
    }
    memcpy(out, s, len);
    out[len] = '\0';
    return 0;
}

bool auth_token_wellformed(const char *s)
{
    char tmp[AUTH_PRESENTED_MAX];
    return auth__copy_token(s, strlen(s), tmp, sizeof tmp) == 0;
}

int auth_bearer(const char *header, char *out, size_t outlen)
{
    if (!header) return -1;
    while (*header == ' ' || *header == '\t') header++;
    if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t')) return -1;
    const char *p = header + 6;
    while (*p == ' ' || *p == '\t') p++;
    size_t len = strlen(p);
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
    return auth__copy_token(p, len, out, outlen);
}

int auth_cookie(const char *header, const char *name, char *out, size_t outlen)
{
    if (!header) return -1;
    size_t nl = strlen(name);
    const char *p = header;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ';') p++;
        const char *end = strchr(p, ';');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t vl = len - nl - 1;
            while (vl > 0 && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) vl--;
            /* A quoted value (RFC 6265 allows DQUOTE around it). */
            if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
                v++;
                vl -= 2;
            }
            return auth__copy_token(v, vl, out, outlen);
        }
        if (!end) break;
        p = end + 1;
    }
    return -1;
}

bool auth_origin_matches(const char *origin, const char *host)
{
    if (!origin || !host || !*host) return false;
    const char *auth;
    if (strncasecmp(origin, "http://", 7) == 0)
        auth = origin + 7;
    else if (strncasecmp(origin, "https://", 8) == 0)
        auth = origin + 8;
    else
        return false;
    size_t al = strlen(auth);
    /* Browsers send no trailing slash; one is tolerated, a path is not. */
    if (al > 0 && auth[al - 1] == '/') al--;
    if (al == 0 || memchr(auth, '/', al)) return false;
    return strlen(host) == al && strncasecmp(auth, host, al) == 0;
}

bool auth_host_is_loopback(const char *host)
{
    if (!host) return false;
    char name[128];
    size_t n = strlen(host);
    if (n == 0 || n >= sizeof name) return false;
    if (host[0] == '[') {
        const char *close = strchr(host, ']');
        if (!close || (close[1] != '\0' && close[1] != ':')) return false;
        return (size_t)(close - host) == 4 && strncmp(host, "[::1", 4) == 0;
    }
    const char *colon = strchr(host, ':');
    size_t hl = colon ? (size_t)(colon - host) : n;
    if (colon)
        for (const char *p = colon + 1; *p; p++)
            if (!isdigit((unsigned char)*p)) return false;
    memcpy(name, host, hl);
    name[hl] = '\0';
    if (strcasecmp(name, "localhost") == 0) return true;
    unsigned a, b, c, d;
    char extra;
    if (sscanf(name, "%3u.%3u.%3u.%3u%c", &a, &b, &c, &d, &extra) != 4) return false;
    for (const char *p = name; *p; p++)
        if (!isdigit((unsigned char)*p) && *p != '.') return false;
    return a == 127 && b <= 255 && c <= 255 && d <= 255;
}

bool auth_path_needs_token(const char *path)
{
    if (strcmp(path, "/api") != 0 && strncmp(path, "/api/", 5) != 0) return false;
    return strcmp(path, "/api/login") != 0;
}

bool auth_method_writes(const char *method)
{
    return strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0;
}

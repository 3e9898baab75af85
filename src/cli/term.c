#include "cli/term.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/utf8.h"

/* A terminal shows one glyph per character, and one U+FFFD per unit of
 * bytes that is not UTF-8: a column each. */
size_t term_cols(const char *s, size_t len)
{
    return utf8_count(s, len);
}

size_t term_fit(const char *s, size_t len, size_t cols)
{
    return utf8_skip(s, len, cols);
}

int term_clean(buf *b, const char *s, size_t len, const char *keep, const char *repl)
{
    size_t start = 0; /* the first byte not yet appended */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        size_t skip = 0;
        uint32_t cp;
        if (c == '\r' && i + 1 < len && s[i + 1] == '\n' && strchr(keep, '\n')) {
            /* A CR before a kept LF is a line end written the DOS way. */
            if (buf_append(b, s + start, i - start) != 0) return BUF_TOOBIG;
            start = i + 1;
            continue;
        }
        if ((c < 0x20 && (c == 0 || !strchr(keep, c))) || c == 0x7F)
            skip = 1;
        else if (c == 0xC2 && utf8_decode(s + i, len - i, &cp) == 2 && cp <= 0x9F)
            skip = 2; /* U+0080..U+009F */
        if (!skip) continue;
        if (buf_append(b, s + start, i - start) != 0 || buf_append_str(b, repl) != 0)
            return BUF_TOOBIG;
        i += skip - 1;
        start = i + 1;
    }
    return buf_append(b, s + start, len - start);
}

int term_width(int fd, int fallback)
{
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0) return fallback;
    return ws.ws_col;
}

bool term_same(int fd_a, int fd_b)
{
    struct stat a, b;
    if (!isatty(fd_a) || !isatty(fd_b)) return false;
    if (fstat(fd_a, &a) != 0 || fstat(fd_b, &b) != 0) return false;
    return a.st_rdev == b.st_rdev;
}

bool term_env_utf8(void)
{
    static const char *const vars[] = {"LC_ALL", "LC_CTYPE", "LANG"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        if (!v || !*v) continue;
        /* The first variable that is set decides, as setlocale does. */
        const char *dot = strchr(v, '.');
        if (!dot) return false;
        return strncasecmp(dot + 1, "utf-8", 5) == 0 || strncasecmp(dot + 1, "utf8", 4) == 0;
    }
    return false;
}

bool term_env_color(void)
{
    const char *v = getenv("NO_COLOR");
    return !v || !*v;
}

bool term_env_capable(void)
{
    const char *t = getenv("TERM");
    return t && *t && strcmp(t, "dumb") != 0;
}

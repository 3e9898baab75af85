#include "net/page.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/embed.h"
#include "lib/xmalloc.h"

EMBED_TABLE(web_files);

/* The directory prefix tools/embed was given the files with. */
#define PAGE__DIR "web"

/* 64-bit FNV-1a: cheap, stable, and plenty to tell two builds of a file
 * apart; it is no protection against anyone, and needs none. */
static uint64_t page__fnv1a(const unsigned char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* One entry per embedded file, filled on first use. web_files ends with an
 * empty entry, so web_files_count + 1 bounds the table. */
#define PAGE__MAX 64
static page_file page__files[PAGE__MAX];
static char page__etags[PAGE__MAX][19];
static size_t page__count;
static bool page__ready;

static void page__init(void)
{
    for (size_t i = 0; i < web_files_count && page__count < PAGE__MAX; i++) {
        const embed_file *e = &web_files[i];
        page_file *f = &page__files[page__count];
        snprintf(page__etags[page__count], sizeof page__etags[0], "\"%016llx\"",
                 (unsigned long long)page__fnv1a(e->data, e->len));
        f->path = e->path;
        f->data = e->data;
        f->len = e->len;
        f->etag = page__etags[page__count];
        page__count++;
    }
    page__ready = true;
}

const page_file *page_find(const char *url_path)
{
    if (!page__ready) page__init();
    if (!url_path || url_path[0] != '/') return NULL;
    if (strstr(url_path, "..") || strstr(url_path, "//") || strchr(url_path, '\\')) return NULL;
    const char *want = strcmp(url_path, "/") == 0 ? "/index.html" : url_path;
    size_t dir = sizeof PAGE__DIR - 1;
    for (size_t i = 0; i < page__count; i++) {
        const char *p = page__files[i].path;
        if (strncmp(p, PAGE__DIR, dir) == 0 && strcmp(p + dir, want) == 0) return &page__files[i];
    }
    return NULL;
}

bool page_etag_matches(const char *inm, const char *etag)
{
    if (!inm || !etag) return false;
    size_t elen = strlen(etag);
    const char *p = inm;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!*p) return false;
        if (*p == '*') return true;
        if (p[0] == 'W' && p[1] == '/') p += 2;
        const char *end = p;
        if (*end == '"') {
            const char *close = strchr(end + 1, '"');
            end = close ? close + 1 : end + strlen(end);
        } else {
            while (*end && *end != ',') end++;
        }
        if ((size_t)(end - p) == elen && memcmp(p, etag, elen) == 0) return true;
        p = end;
    }
}

char *page_root_resolve(const char *root, char *err, size_t errlen)
{
    char *real = realpath(root, NULL);
    if (!real) {
        snprintf(err, errlen, "cannot serve the web root %s: %s", root, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "cannot serve the web root %s: it is not a directory", root);
        free(real);
        return NULL;
    }
    return real;
}

/* True when path is root or lies below it. */
static bool page__inside(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (strncmp(root, path, n) != 0) return false;
    return path[n] == '/' || path[n] == '\0' || (n == 1 && root[0] == '/');
}

int page_read_file(const char *root, const char *url_path, size_t max, char **data, size_t *len)
{
    size_t ul = strlen(url_path);
    char *file =
        xasprintf("%s%s%s", root, url_path, ul && url_path[ul - 1] == '/' ? "index.html" : "");
    char *real = realpath(file, NULL);
    free(file);
    if (!real) return -1;
    int fd = -1;
    if (page__inside(root, real)) fd = open(real, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
    free(real);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        if (fd >= 0) close(fd);
        return -1;
    }
    char *buf = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += (size_t)n;
    }
    close(fd);
    buf[got] = '\0';
    *data = buf;
    *len = got;
    return 0;
}

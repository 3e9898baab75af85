#include "net/page.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "lib/embed.h"

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

/*
 * page: the web page's files (web/), compiled into the binary by
 * tools/embed as the table web_files, looked up by URL path for the static
 * handler when no --web-root is given.
 *
 * Each file has a strong ETag made from its bytes (64-bit FNV-1a as hex), so
 * a browser revalidating with If-None-Match gets 304 until the binary
 * changes.
 */
#ifndef CHATPLANE_PAGE_H
#define CHATPLANE_PAGE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct page_file {
    const char *path;          /* the embedded path, e.g. "web/index.html" */
    const unsigned char *data; /* len bytes, NUL-terminated */
    size_t len;
    const char *etag; /* "\"<16 hex digits>\"", quotes included */
} page_file;

/*
 * The file for a URL path ("/" is "/index.html"), or NULL when the page has
 * no such file. The path is compared as sent: no decoding, and no path with
 * "..", "//" or a backslash ever matches. The result is static; the first
 * call computes the ETags, so call it from one thread (the loop).
 */
const page_file *page_find(const char *url_path);

/* True when an If-None-Match header value names etag: "*", the tag
 * itself, or a comma-separated list holding it (weak "W/" tags compare
 * equal, as RFC 9110 says for If-None-Match). */
bool page_etag_matches(const char *if_none_match, const char *etag);

/*
 * --web-root: the page served from a directory instead.
 *
 * page_root_resolve checks the directory at start-up and returns its real
 * path (symbolic links resolved; a new string, the caller frees it), or
 * NULL with err naming the path and the reason.
 *
 * page_read_file reads root (a real path from page_root_resolve) joined
 * with url_path, a decoded path the caller has checked for "..", hidden
 * and empty segments. Only a regular file of at most max bytes whose real
 * path lies inside root is read: a FIFO, a device or a directory is no
 * file (a FIFO's open would block the loop; it is opened non-blocking and
 * refused after fstat), and a symbolic link is followed only when its
 * target is inside root too. The check compares real paths, then opens
 * the resolved path with O_NOFOLLOW; someone who can swap a directory of
 * the root for a link between the two could still escape, and can already
 * change what the page serves. Returns 0 with *data (a new buffer, NUL-
 * terminated) and *len, or -1 when there is no such file.
 */
char *page_root_resolve(const char *root, char *err, size_t errlen);
int page_read_file(const char *root, const char *url_path, size_t max, char **data, size_t *len);

#endif

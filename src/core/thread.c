#include "core/thread.h"

#include <string.h>

#include "core/sha256.h"

bool thread_id_valid(const char *s)
{
    if (!s) return false;
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '-';
        if (!ok || n >= THREAD_ID_MAX) return false;
    }
    return n > 0;
}

void thread_session_id(const char *owner, const char *thread_id, char out[ID_MAX])
{
    /* The owner is NUL-terminated inside the hashed text, so "ab"+"c" and
     * "a"+"bc" never meet. */
    sha256_ctx c;
    unsigned char d[SHA256_DIGEST_BYTES];
    const char *o = owner ? owner : "";
    sha256_init(&c);
    sha256_update(&c, "thread\n", 7);
    sha256_update(&c, o, strlen(o) + 1);
    sha256_update(&c, thread_id, strlen(thread_id));
    sha256_final(&c, d);
    static const char hex[] = "0123456789abcdef";
    memcpy(out, "ses_", 4);
    for (int i = 0; i < 12; i++) {
        out[4 + 2 * i] = hex[d[i] >> 4];
        out[5 + 2 * i] = hex[d[i] & 15];
    }
    out[28] = '\0';
}

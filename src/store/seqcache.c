/*
 * seqcache: open addressing with linear probing over SEQCACHE_SLOTS; a
 * slot holds the committed value and, while a transaction sets one, a
 * pending value. Nothing is ever removed but by emptying it all, so a
 * probe stops at the first free slot.
 */
#include "store/seqcache.h"

#include <stdlib.h>
#include <string.h>

#include "core/canon.h"
#include "lib/xmalloc.h"

typedef struct seqcache_slot {
    char id[SEQCACHE_ID_MAX + 1];
    int64_t last;    /* committed */
    int64_t pending; /* set in this transaction, when dirty */
    bool used, known, dirty;
} seqcache_slot;

struct seqcache {
    seqcache_slot slot[SEQCACHE_SLOTS];
    unsigned used;
    /* The slots with a pending value, so that a commit visits only those. */
    uint16_t dirty[SEQCACHE_SLOTS];
    unsigned ndirty;
};

seqcache *seqcache_new(void)
{
    return xcalloc(1, sizeof(seqcache));
}

void seqcache_free(seqcache *c)
{
    free(c);
}

/* The slot of id, or the free slot where it goes; NULL when id is too
 * long to keep. */
static seqcache_slot *seqcache__find(const seqcache *c, const char *id)
{
    size_t n = strlen(id);
    if (n > SEQCACHE_ID_MAX) return NULL;
    size_t i = (size_t)canon_hash(CANON_HASH_SEED, id, n) & (SEQCACHE_SLOTS - 1);
    for (;;) {
        const seqcache_slot *s = &c->slot[i];
        if (!s->used || strcmp(s->id, id) == 0) return (seqcache_slot *)s;
        i = (i + 1) & (SEQCACHE_SLOTS - 1);
    }
}

bool seqcache_get(const seqcache *c, const char *session_id, int64_t *last)
{
    const seqcache_slot *s = seqcache__find(c, session_id);
    if (!s || !s->used) return false;
    if (s->dirty) {
        *last = s->pending;
        return true;
    }
    if (!s->known) return false;
    *last = s->last;
    return true;
}

void seqcache_set(seqcache *c, const char *session_id, int64_t last)
{
    seqcache_slot *s = seqcache__find(c, session_id);
    if (!s) return;
    if (!s->used) {
        /* Emptied before it is three quarters full, so that a probe
         * always meets a free slot soon; only pending values are lost
         * with it, and the transaction that set them reads them again. */
        if (c->used >= SEQCACHE_SLOTS / 4 * 3) {
            seqcache_clear(c);
            s = seqcache__find(c, session_id);
        }
        memcpy(s->id, session_id, strlen(session_id) + 1);
        s->used = true;
        s->known = false;
        c->used++;
    }
    s->pending = last;
    if (!s->dirty) c->dirty[c->ndirty++] = (uint16_t)(s - c->slot);
    s->dirty = true;
}

void seqcache_commit(seqcache *c)
{
    for (unsigned i = 0; i < c->ndirty; i++) {
        seqcache_slot *s = &c->slot[c->dirty[i]];
        s->last = s->pending;
        s->known = true;
        s->dirty = false;
    }
    c->ndirty = 0;
}

void seqcache_clear(seqcache *c)
{
    memset(c->slot, 0, sizeof c->slot);
    c->used = 0;
    c->ndirty = 0;
}

unsigned seqcache_count(const seqcache *c)
{
    return c->used;
}

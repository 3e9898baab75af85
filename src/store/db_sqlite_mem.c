/*
 * db_sqlite_mem: SQLite's memory allocator, malloc with a small cache of
 * freed blocks for each thread (docs/storage.md, SQLite's memory).
 *
 * Debian builds SQLite without its lookaside allocator (the per-connection
 * pool that serves most of a statement's small allocations), so every
 * value, record and cursor a statement makes is a malloc and a free: about
 * a thousand a run, a seventh of the process's instructions with glibc's
 * bins and consolidation behind them (docs/benchmarks.md, fix 81). Blocks
 * here come in a few size classes; a freed block goes onto the freeing
 * thread's list for its class, up to DB_SQLITE_MEM_CLASS_BLOCKS blocks and
 * DB_SQLITE_MEM_CLASS_BYTES a class,
 * and the next allocation of that class on that thread takes it back
 * without a lock. Anything larger, and anything past the cap, goes to
 * malloc and free as before.
 *
 * Each block starts with a 16-byte header (malloc's alignment, kept for
 * the caller) holding its class and the bytes it can hold. A block freed
 * on another thread than the one that allocated it joins that thread's
 * cache: the caches only ever hold blocks no one uses. A thread that exits
 * gives its cache back (a pthread key's destructor).
 */
#include "store/db_sqlite_mem.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define MEM_HEADER  16
#define MEM_CLASSES 9
#define MEM_LARGE   0xFF /* the class of a block that is not cached */

/* The bytes each class holds; the largest is a 4 KiB page with the page
 * cache's own header after it, SQLite's most frequent large block. */
static const int mem_class_size[MEM_CLASSES] = {32, 64, 128, 256, 512, 1024, 2048, 3072,
                                                DB_SQLITE_MEM_CACHED_MAX};

_Static_assert(DB_SQLITE_MEM_CACHED_MAX >= 3072, "the classes grow");

typedef struct mem_header {
    uint32_t cls;  /* index into mem_class_size, or MEM_LARGE */
    uint32_t size; /* the bytes the block can hold */
    uint64_t pad;  /* keeps the caller's bytes 16-aligned */
} mem_header;

_Static_assert(sizeof(mem_header) == MEM_HEADER, "the header keeps malloc's alignment");

typedef struct mem_free {
    struct mem_free *next;
} mem_free;

typedef struct mem_cache {
    mem_free *head[MEM_CLASSES];
    uint32_t n[MEM_CLASSES];
    bool keyed; /* the key's destructor will flush this thread's cache */
} mem_cache;

static _Thread_local mem_cache mem_tc;
static pthread_key_t mem_key;
static bool mem_key_ok;
static pthread_once_t mem_key_once = PTHREAD_ONCE_INIT;

static void mem__thread_exit(void *unused)
{
    (void)unused;
    db_sqlite_mem_flush();
    mem_tc.keyed = false;
}

static void mem__key_create(void)
{
    mem_key_ok = pthread_key_create(&mem_key, mem__thread_exit) == 0;
}

/* The class of an allocation of n bytes, or MEM_LARGE. */
static uint32_t mem__class(int n)
{
    if (n <= 32) return 0;
    if (n <= 2048) return (uint32_t)(32 - __builtin_clz((unsigned)n - 1)) - 5;
    if (n <= 3072) return 7;
    if (n <= DB_SQLITE_MEM_CACHED_MAX) return 8;
    return MEM_LARGE;
}

/* The most blocks a thread keeps in class c. */
static uint32_t mem__cap(uint32_t c)
{
    uint32_t k = DB_SQLITE_MEM_CLASS_BYTES / (uint32_t)mem_class_size[c];
    return k < DB_SQLITE_MEM_CLASS_BLOCKS ? k : DB_SQLITE_MEM_CLASS_BLOCKS;
}

static mem_header *mem__header(void *p)
{
    return (mem_header *)((char *)p - MEM_HEADER);
}

void *db_sqlite_mem_alloc(int n)
{
    if (n <= 0) return NULL;
    uint32_t c = mem__class(n);
    if (c != MEM_LARGE && mem_tc.head[c]) {
        mem_free *f = mem_tc.head[c];
        mem_tc.head[c] = f->next;
        mem_tc.n[c]--;
        return f;
    }
    size_t size = c == MEM_LARGE ? (size_t)n : (size_t)mem_class_size[c];
    /* SQLite asks for at most 2^31 - 1 bytes; size + 16 cannot wrap. */
    mem_header *h = malloc(MEM_HEADER + size);
    if (!h) return NULL;
    h->cls = c;
    h->size = (uint32_t)size;
    return (char *)h + MEM_HEADER;
}

void db_sqlite_mem_free(void *p)
{
    if (!p) return;
    mem_header *h = mem__header(p);
    uint32_t c = h->cls;
    if (c == MEM_LARGE || mem_tc.n[c] >= mem__cap(c)) {
        free(h);
        return;
    }
    if (!mem_tc.keyed) {
        /* The first block this thread keeps: arrange for its exit to
         * give the cache back. Without a key, nothing is kept. */
        pthread_once(&mem_key_once, mem__key_create);
        if (!mem_key_ok || pthread_setspecific(mem_key, &mem_tc) != 0) {
            free(h);
            return;
        }
        mem_tc.keyed = true;
    }
    mem_free *f = p;
    f->next = mem_tc.head[c];
    mem_tc.head[c] = f;
    mem_tc.n[c]++;
}

void *db_sqlite_mem_realloc(void *p, int n)
{
    if (!p) return db_sqlite_mem_alloc(n);
    if (n <= 0) return NULL;
    mem_header *h = mem__header(p);
    if ((uint32_t)n <= h->size) return p;
    if (h->cls == MEM_LARGE && mem__class(n) == MEM_LARGE) {
        mem_header *g = realloc(h, MEM_HEADER + (size_t)n);
        if (!g) return NULL;
        g->size = (uint32_t)n;
        return (char *)g + MEM_HEADER;
    }
    void *q = db_sqlite_mem_alloc(n);
    if (!q) return NULL;
    memcpy(q, p, h->size);
    db_sqlite_mem_free(p);
    return q;
}

int db_sqlite_mem_size(void *p)
{
    return p ? (int)mem__header(p)->size : 0;
}

int db_sqlite_mem_roundup(int n)
{
    uint32_t c = mem__class(n);
    if (c != MEM_LARGE) return mem_class_size[c];
    return n > INT32_MAX - 7 ? n : (n + 7) & ~7;
}

size_t db_sqlite_mem_cached(void)
{
    size_t k = 0;
    for (int c = 0; c < MEM_CLASSES; c++) k += mem_tc.n[c];
    return k;
}

void db_sqlite_mem_flush(void)
{
    for (int c = 0; c < MEM_CLASSES; c++) {
        while (mem_tc.head[c]) {
            mem_free *f = mem_tc.head[c];
            mem_tc.head[c] = f->next;
            free(mem__header(f));
        }
        mem_tc.n[c] = 0;
    }
}

static int mem__init(void *unused)
{
    (void)unused;
    return SQLITE_OK;
}

static void mem__shutdown(void *unused)
{
    (void)unused;
}

bool db_sqlite_mem_install(void)
{
    static const sqlite3_mem_methods methods = {
        db_sqlite_mem_alloc,   db_sqlite_mem_free, db_sqlite_mem_realloc, db_sqlite_mem_size,
        db_sqlite_mem_roundup, mem__init,          mem__shutdown,         NULL,
    };
    return sqlite3_config(SQLITE_CONFIG_MALLOC, &methods) == SQLITE_OK;
}

/*
 * db_sqlite_mem: SQLite's memory allocator, malloc with a small cache of
 * freed blocks for each thread (docs/storage.md, SQLite's memory).
 */
#ifndef CHATPLANE_STORE_DB_SQLITE_MEM_H
#define CHATPLANE_STORE_DB_SQLITE_MEM_H

#include <stdbool.h>
#include <stddef.h>

/* Size classes: blocks of up to this many bytes are cached when freed;
 * larger ones go straight back to malloc. */
#define DB_SQLITE_MEM_CACHED_MAX 4608
/* The most freed blocks one thread keeps in each size class, and the most
 * bytes: about 380 KiB a thread at most, for the bursts of frees at the
 * end of a statement or a transaction. */
#define DB_SQLITE_MEM_CLASS_BLOCKS 128u
#define DB_SQLITE_MEM_CLASS_BYTES  (64u * 1024u)

/*
 * Makes SQLite allocate through this layer. Call once, before SQLite
 * starts (before the first connection opens); returns false when SQLite
 * refused (it had started), in which case it keeps its own allocator.
 */
bool db_sqlite_mem_install(void);

/* The layer's operations, as SQLite calls them; exposed for tests. n > 0.
 * realloc keeps a block that is large enough already. */
void *db_sqlite_mem_alloc(int n);
void db_sqlite_mem_free(void *p);
void *db_sqlite_mem_realloc(void *p, int n);
/* The bytes a block can hold (at least what was asked). */
int db_sqlite_mem_size(void *p);
/* What an allocation of n bytes would hold. */
int db_sqlite_mem_roundup(int n);

/* For tests: the freed blocks the calling thread holds, and giving them
 * all back to malloc (a thread that exits gives them back itself). */
size_t db_sqlite_mem_cached(void);
void db_sqlite_mem_flush(void);

#endif

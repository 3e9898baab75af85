/*
 * db_sqlite_vfs: SQLite's own file layer with the writes of a transaction
 * to the WAL gathered into one system call (docs/storage.md, The WAL's
 * writes).
 */
#ifndef CHATPLANE_STORE_DB_SQLITE_VFS_H
#define CHATPLANE_STORE_DB_SQLITE_VFS_H

#include <stddef.h>

/* The most one WAL file holds back before it writes: 16 frames of 4 KiB
 * pages, under the size at which malloc maps memory of its own. A longer
 * transaction writes every time this fills. */
#define DB_SQLITE_VFS_GATHER_MAX (16u * (24u + 4096u))

/*
 * Registers the layer (once per process; not as the default) and returns
 * its name for sqlite3_open_v2, or NULL when SQLite's default layer cannot
 * be found, in which case files are opened with the default as they are.
 */
const char *db_sqlite_vfs_name(void);

/* For tests: the writes to WAL files SQLite asked for since the process
 * started, and the system calls that made them. */
void db_sqlite_vfs_counts(size_t *syscalls, size_t *writes);

#endif

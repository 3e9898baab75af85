/*
 * db_sqlite_vfs: SQLite's default file layer ("unix") with the writes of a
 * transaction to the WAL gathered (docs/storage.md, The WAL's writes).
 *
 * SQLite writes every WAL frame with two system calls, its 24-byte header
 * and its page, one frame after the other: a run's four or five
 * transactions took about a hundred pwrite(2) calls, the writer thread's
 * largest cost after SQLite itself (docs/benchmarks.md, fix 34). The
 * frames of a transaction are contiguous in the file, so this layer copies
 * them into a buffer of the WAL file and writes the buffer with one call:
 *
 *  - when the page of a commit frame (one whose header names the
 *    database's size) has been added, before SQLite returns to publish the
 *    frames in the WAL index: a commit is in the operating system's cache,
 *    as before, when the commit returns;
 *  - before the database file's shared-memory barrier, which SQLite calls
 *    before readers may see new frames (in case a commit frame was not
 *    recognised);
 *  - before any other operation on the WAL file (a read, a sync, a
 *    truncation, a lock, its size), so that nothing can observe the file
 *    without what was written to it;
 *  - when a write does not follow the buffer's end, or would pass
 *    DB_SQLITE_VFS_GATHER_MAX.
 *
 * Every other file (the database, temporary files) and every other
 * operation goes straight to the default layer. A failed write is
 * reported by the call that wrote, with the default layer's code (a full
 * disk is SQLITE_FULL as before); the frames it held are dropped, as
 * SQLite rolls the transaction back.
 */
#include "store/db_sqlite_vfs.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#define VFS_NAME         "chatplane"
#define VFS_FRAME_HEADER 24

typedef struct vfs_file {
    sqlite3_file base;  /* first: SQLite sees a vfs_file as a sqlite3_file */
    sqlite3_file *real; /* the default layer's file, right after this struct */
    bool is_wal;
    struct vfs_file *wal; /* a database file's WAL, while it is open */
    struct vfs_file *db;  /* a WAL's database file, while it is open */
    char *buf;            /* the gathered bytes; NULL until the first write */
    size_t len;
    sqlite3_int64 at; /* the offset of buf[0] */
    bool commit;      /* the frame whose header was just added ends a transaction */
} vfs_file;

static sqlite3_vfs *vfs_real;
static sqlite3_vfs vfs_self;
static const char *vfs_name;
static pthread_once_t vfs_once = PTHREAD_ONCE_INIT;
static size_t vfs_syscalls, vfs_writes;

/* Writes what f holds back. Afterwards it holds nothing, whatever the
 * result: a failed write fails the transaction, which SQLite rolls back. */
static int db_sqlite_vfs__flush(vfs_file *f)
{
    if (!f || f->len == 0) return SQLITE_OK;
    __atomic_fetch_add(&vfs_syscalls, 1, __ATOMIC_RELAXED);
    int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->at);
    f->len = 0;
    return rc;
}

static uint32_t db_sqlite_vfs__be32(const void *p, size_t at)
{
    const unsigned char *b = (const unsigned char *)p + at;
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* ---- the operations on a file ---- */

static int db_sqlite_vfs__close(sqlite3_file *file)
{
    vfs_file *f = (vfs_file *)file;
    int rc = db_sqlite_vfs__flush(f);
    if (f->db) f->db->wal = NULL;
    if (f->wal) f->wal->db = NULL;
    free(f->buf);
    f->buf = NULL;
    int rc2 = f->real->pMethods ? f->real->pMethods->xClose(f->real) : SQLITE_OK;
    return rc != SQLITE_OK ? rc : rc2;
}

static int db_sqlite_vfs__read(sqlite3_file *file, void *out, int amt, sqlite3_int64 off)
{
    vfs_file *f = (vfs_file *)file;
    int rc = db_sqlite_vfs__flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, amt, off);
}

static int db_sqlite_vfs__write(sqlite3_file *file, const void *data, int amt, sqlite3_int64 off)
{
    vfs_file *f = (vfs_file *)file;
    if (!f->is_wal) return f->real->pMethods->xWrite(f->real, data, amt, off);
    __atomic_fetch_add(&vfs_writes, 1, __ATOMIC_RELAXED);
    size_t n = (size_t)amt;
    /* A frame's header comes alone, then its page; bytes 4 to 7 of the
     * header are the database's size after a commit, 0 in other frames.
     * The page after a commit frame's header ends the transaction. */
    bool ends = false;
    if (n == VFS_FRAME_HEADER) {
        f->commit = db_sqlite_vfs__be32(data, 4) != 0;
    } else {
        ends = f->commit;
        f->commit = false;
    }
    int rc = SQLITE_OK;
    if (f->len > 0 &&
        (off != f->at + (sqlite3_int64)f->len || f->len + n > DB_SQLITE_VFS_GATHER_MAX))
        rc = db_sqlite_vfs__flush(f);
    if (rc != SQLITE_OK) return rc;
    if (!f->buf && n <= DB_SQLITE_VFS_GATHER_MAX) f->buf = malloc(DB_SQLITE_VFS_GATHER_MAX);
    if (!f->buf || n > DB_SQLITE_VFS_GATHER_MAX) {
        /* Too large to gather, or no memory for it: written at once, which
         * is what the default layer does. */
        __atomic_fetch_add(&vfs_syscalls, 1, __ATOMIC_RELAXED);
        return f->real->pMethods->xWrite(f->real, data, amt, off);
    }
    if (f->len == 0) f->at = off;
    memcpy(f->buf + f->len, data, n);
    f->len += n;
    return ends ? db_sqlite_vfs__flush(f) : SQLITE_OK;
}

static int db_sqlite_vfs__truncate(sqlite3_file *file, sqlite3_int64 size)
{
    vfs_file *f = (vfs_file *)file;
    int rc = db_sqlite_vfs__flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int db_sqlite_vfs__sync(sqlite3_file *file, int flags)
{
    vfs_file *f = (vfs_file *)file;
    int rc = db_sqlite_vfs__flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int db_sqlite_vfs__file_size(sqlite3_file *file, sqlite3_int64 *size)
{
    vfs_file *f = (vfs_file *)file;
    int rc = db_sqlite_vfs__flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int db_sqlite_vfs__lock(sqlite3_file *file, int level)
{
    vfs_file *f = (vfs_file *)file;
    int rc = db_sqlite_vfs__flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xLock(f->real, level);
}

static int db_sqlite_vfs__unlock(sqlite3_file *file, int level)
{
    vfs_file *f = (vfs_file *)file;
    int rc = db_sqlite_vfs__flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xUnlock(f->real, level);
}

static int db_sqlite_vfs__check_reserved(sqlite3_file *file, int *out)
{
    vfs_file *f = (vfs_file *)file;
    int rc = db_sqlite_vfs__flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int db_sqlite_vfs__file_control(sqlite3_file *file, int op, void *arg)
{
    vfs_file *f = (vfs_file *)file;
    int rc = db_sqlite_vfs__flush(f);
    if (rc != SQLITE_OK) return rc;
    rc = f->real->pMethods->xFileControl(f->real, op, arg);
    /* SQLITE_FCNTL_VFSNAME names every layer, outermost first, as
     * SQLite's own shims do: "chatplane/unix". */
    if (op == SQLITE_FCNTL_VFSNAME && rc == SQLITE_OK && arg) {
        char *inner = *(char **)arg;
        char *name = sqlite3_mprintf(inner ? VFS_NAME "/%s" : VFS_NAME, inner);
        sqlite3_free(inner);
        *(char **)arg = name;
    }
    return rc;
}

static int db_sqlite_vfs__sector_size(sqlite3_file *file)
{
    vfs_file *f = (vfs_file *)file;
    return f->real->pMethods->xSectorSize(f->real);
}

static int db_sqlite_vfs__device(sqlite3_file *file)
{
    vfs_file *f = (vfs_file *)file;
    return f->real->pMethods->xDeviceCharacteristics(f->real);
}

static int db_sqlite_vfs__shm_map(sqlite3_file *file, int page, int size, int extend,
                                  void volatile **out)
{
    vfs_file *f = (vfs_file *)file;
    if (f->real->pMethods->iVersion < 2) return SQLITE_IOERR_SHMMAP;
    return f->real->pMethods->xShmMap(f->real, page, size, extend, out);
}

static int db_sqlite_vfs__shm_lock(sqlite3_file *file, int offset, int n, int flags)
{
    vfs_file *f = (vfs_file *)file;
    if (f->real->pMethods->iVersion < 2) return SQLITE_IOERR_SHMLOCK;
    int rc = db_sqlite_vfs__flush(f->wal);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

/* SQLite calls the barrier before readers may see the frames it wrote.
 * A commit frame's page has been written by then, so the WAL holds
 * nothing back here unless that frame went unrecognised (a write that
 * fails here cannot be reported: the barrier returns nothing). */
static void db_sqlite_vfs__shm_barrier(sqlite3_file *file)
{
    vfs_file *f = (vfs_file *)file;
    (void)db_sqlite_vfs__flush(f->wal);
    if (f->real->pMethods->iVersion >= 2) f->real->pMethods->xShmBarrier(f->real);
}

static int db_sqlite_vfs__shm_unmap(sqlite3_file *file, int delete_flag)
{
    vfs_file *f = (vfs_file *)file;
    if (f->real->pMethods->iVersion < 2) return SQLITE_OK;
    return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

static int db_sqlite_vfs__fetch(sqlite3_file *file, sqlite3_int64 off, int amt, void **out)
{
    vfs_file *f = (vfs_file *)file;
    *out = NULL;
    if (f->real->pMethods->iVersion < 3) return SQLITE_OK;
    int rc = db_sqlite_vfs__flush(f);
    return rc != SQLITE_OK ? rc : f->real->pMethods->xFetch(f->real, off, amt, out);
}

static int db_sqlite_vfs__unfetch(sqlite3_file *file, sqlite3_int64 off, void *p)
{
    vfs_file *f = (vfs_file *)file;
    if (f->real->pMethods->iVersion < 3) return SQLITE_OK;
    return f->real->pMethods->xUnfetch(f->real, off, p);
}

static const sqlite3_io_methods vfs_methods = {
    .iVersion = 3,
    .xClose = db_sqlite_vfs__close,
    .xRead = db_sqlite_vfs__read,
    .xWrite = db_sqlite_vfs__write,
    .xTruncate = db_sqlite_vfs__truncate,
    .xSync = db_sqlite_vfs__sync,
    .xFileSize = db_sqlite_vfs__file_size,
    .xLock = db_sqlite_vfs__lock,
    .xUnlock = db_sqlite_vfs__unlock,
    .xCheckReservedLock = db_sqlite_vfs__check_reserved,
    .xFileControl = db_sqlite_vfs__file_control,
    .xSectorSize = db_sqlite_vfs__sector_size,
    .xDeviceCharacteristics = db_sqlite_vfs__device,
    .xShmMap = db_sqlite_vfs__shm_map,
    .xShmLock = db_sqlite_vfs__shm_lock,
    .xShmBarrier = db_sqlite_vfs__shm_barrier,
    .xShmUnmap = db_sqlite_vfs__shm_unmap,
    .xFetch = db_sqlite_vfs__fetch,
    .xUnfetch = db_sqlite_vfs__unfetch,
};

/* ---- the layer ---- */

static int db_sqlite_vfs__open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *file,
                               int flags, int *out_flags)
{
    (void)vfs;
    vfs_file *f = (vfs_file *)file;
    memset(f, 0, sizeof *f);
    f->real = (sqlite3_file *)(f + 1);
    int rc = vfs_real->xOpen(vfs_real, name, f->real, flags, out_flags);
    /* A file the default layer gave methods to is closed through this
     * layer even when its opening failed. */
    if (!f->real->pMethods) return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
    f->base.pMethods = &vfs_methods;
    if (rc == SQLITE_OK && (flags & SQLITE_OPEN_WAL) && name) {
        f->is_wal = true;
        sqlite3_file *db = sqlite3_database_file_object(name);
        if (db && db->pMethods == &vfs_methods) {
            f->db = (vfs_file *)db;
            f->db->wal = f;
        }
    }
    return rc;
}

static int db_sqlite_vfs__delete(sqlite3_vfs *vfs, const char *name, int sync_dir)
{
    (void)vfs;
    return vfs_real->xDelete(vfs_real, name, sync_dir);
}

static int db_sqlite_vfs__access(sqlite3_vfs *vfs, const char *name, int flags, int *out)
{
    (void)vfs;
    return vfs_real->xAccess(vfs_real, name, flags, out);
}

static int db_sqlite_vfs__full_pathname(sqlite3_vfs *vfs, const char *name, int n, char *out)
{
    (void)vfs;
    return vfs_real->xFullPathname(vfs_real, name, n, out);
}

static void *db_sqlite_vfs__dl_open(sqlite3_vfs *vfs, const char *name)
{
    (void)vfs;
    return vfs_real->xDlOpen(vfs_real, name);
}

static void db_sqlite_vfs__dl_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    vfs_real->xDlError(vfs_real, n, out);
}

static void (*db_sqlite_vfs__dl_sym(sqlite3_vfs *vfs, void *h, const char *sym))(void)
{
    (void)vfs;
    return vfs_real->xDlSym(vfs_real, h, sym);
}

static void db_sqlite_vfs__dl_close(sqlite3_vfs *vfs, void *h)
{
    (void)vfs;
    vfs_real->xDlClose(vfs_real, h);
}

static int db_sqlite_vfs__randomness(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return vfs_real->xRandomness(vfs_real, n, out);
}

static int db_sqlite_vfs__sleep(sqlite3_vfs *vfs, int us)
{
    (void)vfs;
    return vfs_real->xSleep(vfs_real, us);
}

static int db_sqlite_vfs__current_time(sqlite3_vfs *vfs, double *out)
{
    (void)vfs;
    return vfs_real->xCurrentTime(vfs_real, out);
}

static int db_sqlite_vfs__last_error(sqlite3_vfs *vfs, int n, char *out)
{
    (void)vfs;
    return vfs_real->xGetLastError ? vfs_real->xGetLastError(vfs_real, n, out) : 0;
}

static int db_sqlite_vfs__current_time64(sqlite3_vfs *vfs, sqlite3_int64 *out)
{
    (void)vfs;
    if (vfs_real->iVersion >= 2 && vfs_real->xCurrentTimeInt64)
        return vfs_real->xCurrentTimeInt64(vfs_real, out);
    double days = 0;
    int rc = vfs_real->xCurrentTime(vfs_real, &days);
    *out = (sqlite3_int64)(days * 86400000.0);
    return rc;
}

static void db_sqlite_vfs__register(void)
{
    vfs_real = sqlite3_vfs_find(NULL);
    if (!vfs_real) return;
    vfs_self = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(vfs_file) + vfs_real->szOsFile,
        .mxPathname = vfs_real->mxPathname,
        .zName = VFS_NAME,
        .xOpen = db_sqlite_vfs__open,
        .xDelete = db_sqlite_vfs__delete,
        .xAccess = db_sqlite_vfs__access,
        .xFullPathname = db_sqlite_vfs__full_pathname,
        .xDlOpen = db_sqlite_vfs__dl_open,
        .xDlError = db_sqlite_vfs__dl_error,
        .xDlSym = db_sqlite_vfs__dl_sym,
        .xDlClose = db_sqlite_vfs__dl_close,
        .xRandomness = db_sqlite_vfs__randomness,
        .xSleep = db_sqlite_vfs__sleep,
        .xCurrentTime = db_sqlite_vfs__current_time,
        .xGetLastError = db_sqlite_vfs__last_error,
        .xCurrentTimeInt64 = db_sqlite_vfs__current_time64,
    };
    if (sqlite3_vfs_register(&vfs_self, 0) == SQLITE_OK) vfs_name = VFS_NAME;
}

const char *db_sqlite_vfs_name(void)
{
    pthread_once(&vfs_once, db_sqlite_vfs__register);
    return vfs_name;
}

void db_sqlite_vfs_counts(size_t *syscalls, size_t *writes)
{
    *syscalls = __atomic_load_n(&vfs_syscalls, __ATOMIC_RELAXED);
    *writes = __atomic_load_n(&vfs_writes, __ATOMIC_RELAXED);
}

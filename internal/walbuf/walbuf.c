// An SQLite VFS that writes a transaction's write-ahead-log frames with
// one write(2) instead of two per page. See walbuf.go for why and for the
// rules that keep it safe.

#include <stdlib.h>
#include <string.h>
#include "walbuf.h"

typedef struct walFile walFile;

// A database file opened through the VFS: the default VFS's file, and the
// log file the same connection opened for it, if any.
typedef struct dbFile {
	sqlite3_file base;
	sqlite3_file *real;
	walFile *wal;
} dbFile;

// A WAL file opened through the VFS: the buffer of frames not yet
// written, then (at real) the underlying VFS's own file object.
struct walFile {
	sqlite3_file base;
	sqlite3_file *real;
	dbFile *db;          // the database file the log belongs to
	char *buf;
	sqlite3_int64 off;   // file offset of buf[0]
	int n;               // bytes pending in buf
	int flushNext;       // a commit frame's header is pending: flush after its page
	int throughNext;     // a commit frame's header went straight to the file: so does its page
};

#define WALBUF_CAP (1 << 20)
// Room for either wrapper before the default VFS's file object.
#define WRAPPER_SIZE ((int)((sizeof(walFile) > sizeof(dbFile) ? sizeof(walFile) : sizeof(dbFile)) + 7) / 8 * 8)
#define WAL_FRAME_HDRSIZE 24
// The default VFS writes at most 128 KiB - 1 bytes a call (it masks the
// count), so a flush goes in pieces of 124 KiB.
#define WRITE_MAX 0x1f000

// WAL_WRITE_LOCK, the shared-memory lock a connection holds while it
// writes to the log.
#define WAL_WRITE_LOCK 0

static sqlite3_vfs walbufVfs;
static sqlite3_vfs *origVfs;
static sqlite3_io_methods walMethods;
static sqlite3_io_methods dbMethods;

static int flush(walFile *p) {
	if (p->n == 0) {
		return SQLITE_OK;
	}
	int n = p->n;
	p->n = 0;
	for (int done = 0; done < n;) {
		int amt = n - done < WRITE_MAX ? n - done : WRITE_MAX;
		int rc = p->real->pMethods->xWrite(p->real, p->buf + done, amt, p->off + done);
		if (rc != SQLITE_OK) {
			return rc;
		}
		done += amt;
	}
	return SQLITE_OK;
}

// appendable reports whether a write of amt bytes at ofst extends the
// pending bytes.
static int appendable(walFile *p, int amt, sqlite3_int64 ofst) {
	return p->n > 0 && ofst == p->off + p->n && p->n + amt <= WALBUF_CAP;
}

static int buffer(walFile *p, const void *data, int amt, sqlite3_int64 ofst) {
	if (!appendable(p, amt, ofst)) {
		int rc = flush(p);
		if (rc != SQLITE_OK) {
			return rc;
		}
		if (amt > WALBUF_CAP) {
			return p->real->pMethods->xWrite(p->real, data, amt, ofst);
		}
		if (p->buf == NULL) {
			p->buf = malloc(WALBUF_CAP);
			if (p->buf == NULL) {
				return p->real->pMethods->xWrite(p->real, data, amt, ofst);
			}
		}
		p->off = ofst;
	}
	memcpy(p->buf + p->n, data, amt);
	p->n += amt;
	return SQLITE_OK;
}

static int isCommitHeader(const void *data, int amt) {
	const unsigned char *h = data;
	// Bytes 4-7 of a frame header: the database size after a commit,
	// zero in every other frame.
	return amt == WAL_FRAME_HDRSIZE && (h[4] | h[5] | h[6] | h[7]) != 0;
}

static int walWrite(sqlite3_file *f, const void *data, int amt, sqlite3_int64 ofst) {
	walFile *p = (walFile *)f;
	int rc;
	if (p->throughNext) {
		p->throughNext = 0;
		rc = flush(p);
		return rc != SQLITE_OK ? rc : p->real->pMethods->xWrite(p->real, data, amt, ofst);
	}
	if (p->flushNext) {
		// The commit frame's page: after it the transaction is whole in
		// the file, before SQLite publishes it to other connections.
		p->flushNext = 0;
		rc = buffer(p, data, amt, ofst);
		return rc != SQLITE_OK ? rc : flush(p);
	}
	if (isCommitHeader(data, amt)) {
		if (appendable(p, amt, ofst)) {
			p->flushNext = 1;
			return buffer(p, data, amt, ofst);
		}
		// Not the next frame of a run (a one-page transaction, or a
		// checksum rewritten in place): straight to the file, and the
		// page after it too.
		rc = flush(p);
		if (rc == SQLITE_OK) {
			rc = p->real->pMethods->xWrite(p->real, data, amt, ofst);
		}
		p->throughNext = 1;
		return rc;
	}
	return buffer(p, data, amt, ofst);
}

// Every other operation sees the file as if nothing were buffered.
static int walFlushFirst(walFile *p) {
	p->flushNext = 0;
	p->throughNext = 0;
	return flush(p);
}

static int walClose(sqlite3_file *f) {
	walFile *p = (walFile *)f;
	int rc = walFlushFirst(p);
	int rc2 = p->real->pMethods->xClose(p->real);
	free(p->buf);
	p->buf = NULL;
	if (p->db != NULL) {
		p->db->wal = NULL;
		p->db = NULL;
	}
	return rc != SQLITE_OK ? rc : rc2;
}

// walDiscard drops what is pending: the frames of a transaction that
// rolled back.
static void walDiscard(walFile *p) {
	p->n = 0;
	p->flushNext = 0;
	p->throughNext = 0;
}

static int walRead(sqlite3_file *f, void *data, int amt, sqlite3_int64 ofst) {
	walFile *p = (walFile *)f;
	int rc = walFlushFirst(p);
	return rc != SQLITE_OK ? rc : p->real->pMethods->xRead(p->real, data, amt, ofst);
}

static int walTruncate(sqlite3_file *f, sqlite3_int64 size) {
	walFile *p = (walFile *)f;
	int rc = walFlushFirst(p);
	return rc != SQLITE_OK ? rc : p->real->pMethods->xTruncate(p->real, size);
}

static int walSync(sqlite3_file *f, int flags) {
	walFile *p = (walFile *)f;
	int rc = walFlushFirst(p);
	return rc != SQLITE_OK ? rc : p->real->pMethods->xSync(p->real, flags);
}

static int walFileSize(sqlite3_file *f, sqlite3_int64 *size) {
	walFile *p = (walFile *)f;
	int rc = walFlushFirst(p);
	return rc != SQLITE_OK ? rc : p->real->pMethods->xFileSize(p->real, size);
}

static int walLock(sqlite3_file *f, int lock) {
	walFile *p = (walFile *)f;
	int rc = walFlushFirst(p);
	return rc != SQLITE_OK ? rc : p->real->pMethods->xLock(p->real, lock);
}

static int walUnlock(sqlite3_file *f, int lock) {
	walFile *p = (walFile *)f;
	int rc = walFlushFirst(p);
	return rc != SQLITE_OK ? rc : p->real->pMethods->xUnlock(p->real, lock);
}

static int walCheckReservedLock(sqlite3_file *f, int *out) {
	walFile *p = (walFile *)f;
	return p->real->pMethods->xCheckReservedLock(p->real, out);
}

static int walFileControl(sqlite3_file *f, int op, void *arg) {
	walFile *p = (walFile *)f;
	int rc = walFlushFirst(p);
	return rc != SQLITE_OK ? rc : p->real->pMethods->xFileControl(p->real, op, arg);
}

static int walSectorSize(sqlite3_file *f) {
	walFile *p = (walFile *)f;
	return p->real->pMethods->xSectorSize(p->real);
}

static int walDeviceCharacteristics(sqlite3_file *f) {
	walFile *p = (walFile *)f;
	return p->real->pMethods->xDeviceCharacteristics(p->real);
}

// The database file's methods are the default VFS's, but for one thing:
// when the connection ends a write transaction (releases the log's write
// lock), whatever its log file still holds is dropped. A commit leaves
// nothing pending (its commit frame wrote it all), so what is left belongs
// to a transaction that rolled back, and it must never reach the file:
// once the lock is released, another connection may write its own frames
// where those were.

#define REAL(f) (((dbFile *)(f))->real)

static int dbClose(sqlite3_file *f) {
	dbFile *p = (dbFile *)f;
	if (p->wal != NULL) {
		p->wal->db = NULL;
		p->wal = NULL;
	}
	return p->real->pMethods->xClose(p->real);
}

static int dbRead(sqlite3_file *f, void *data, int amt, sqlite3_int64 ofst) {
	return REAL(f)->pMethods->xRead(REAL(f), data, amt, ofst);
}

static int dbWrite(sqlite3_file *f, const void *data, int amt, sqlite3_int64 ofst) {
	return REAL(f)->pMethods->xWrite(REAL(f), data, amt, ofst);
}

static int dbTruncate(sqlite3_file *f, sqlite3_int64 size) {
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}

static int dbSync(sqlite3_file *f, int flags) {
	return REAL(f)->pMethods->xSync(REAL(f), flags);
}

static int dbFileSize(sqlite3_file *f, sqlite3_int64 *size) {
	return REAL(f)->pMethods->xFileSize(REAL(f), size);
}

static int dbLock(sqlite3_file *f, int lock) {
	return REAL(f)->pMethods->xLock(REAL(f), lock);
}

static int dbUnlock(sqlite3_file *f, int lock) {
	return REAL(f)->pMethods->xUnlock(REAL(f), lock);
}

static int dbCheckReservedLock(sqlite3_file *f, int *out) {
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out);
}

static int dbFileControl(sqlite3_file *f, int op, void *arg) {
	return REAL(f)->pMethods->xFileControl(REAL(f), op, arg);
}

static int dbSectorSize(sqlite3_file *f) {
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}

static int dbDeviceCharacteristics(sqlite3_file *f) {
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}

static int dbShmMap(sqlite3_file *f, int pg, int pgsz, int extend, void volatile **pp) {
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, pgsz, extend, pp);
}

static int dbShmLock(sqlite3_file *f, int offset, int n, int flags) {
	dbFile *p = (dbFile *)f;
	if (p->wal != NULL && offset == WAL_WRITE_LOCK && (flags & SQLITE_SHM_UNLOCK) != 0) {
		walDiscard(p->wal);
	}
	return p->real->pMethods->xShmLock(p->real, offset, n, flags);
}

static void dbShmBarrier(sqlite3_file *f) {
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}

static int dbShmUnmap(sqlite3_file *f, int deleteFlag) {
	return REAL(f)->pMethods->xShmUnmap(REAL(f), deleteFlag);
}

static int dbFetch(sqlite3_file *f, sqlite3_int64 ofst, int amt, void **pp) {
	return REAL(f)->pMethods->xFetch(REAL(f), ofst, amt, pp);
}

static int dbUnfetch(sqlite3_file *f, sqlite3_int64 ofst, void *pp) {
	return REAL(f)->pMethods->xUnfetch(REAL(f), ofst, pp);
}

// openReal opens the default VFS's file at real, into the space after the
// wrapper at f.
static int openReal(const char *name, sqlite3_file *f, sqlite3_file *real, int flags, int *outFlags) {
	int rc = origVfs->xOpen(origVfs, name, real, flags, outFlags);
	if (rc != SQLITE_OK) {
		if (real->pMethods != NULL) {
			real->pMethods->xClose(real);
		}
		f->pMethods = NULL;
	}
	return rc;
}

static int walbufOpen(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *outFlags) {
	if ((flags & SQLITE_OPEN_MAIN_DB) != 0) {
		dbFile *p = (dbFile *)f;
		memset(p, 0, sizeof(*p));
		p->real = (sqlite3_file *)((char *)f + WRAPPER_SIZE);
		int rc = openReal(name, f, p->real, flags, outFlags);
		if (rc == SQLITE_OK) {
			p->base.pMethods = &dbMethods;
		}
		return rc;
	}
	if ((flags & SQLITE_OPEN_WAL) == 0) {
		// Journals, temporary files: the default VFS's own, untouched.
		return origVfs->xOpen(origVfs, name, f, flags, outFlags);
	}
	walFile *p = (walFile *)f;
	memset(p, 0, sizeof(*p));
	p->real = (sqlite3_file *)((char *)f + WRAPPER_SIZE);
	int rc = openReal(name, f, p->real, flags, outFlags);
	if (rc != SQLITE_OK) {
		return rc;
	}
	p->base.pMethods = &walMethods;
	sqlite3_file *db = sqlite3_database_file_object(name);
	if (db != NULL && db->pMethods == &dbMethods) {
		p->db = (dbFile *)db;
		p->db->wal = p;
	}
	return SQLITE_OK;
}

int walbuf_register(const char *name) {
	if (origVfs != NULL) {
		return SQLITE_OK;
	}
	sqlite3_vfs *orig = sqlite3_vfs_find(NULL);
	if (orig == NULL) {
		return SQLITE_ERROR;
	}
	// The log file has no shared memory or memory map of its own (those
	// belong to the database file), so the version-1 methods are all it
	// uses.
	walMethods.iVersion = 1;
	walMethods.xClose = walClose;
	walMethods.xRead = walRead;
	walMethods.xWrite = walWrite;
	walMethods.xTruncate = walTruncate;
	walMethods.xSync = walSync;
	walMethods.xFileSize = walFileSize;
	walMethods.xLock = walLock;
	walMethods.xUnlock = walUnlock;
	walMethods.xCheckReservedLock = walCheckReservedLock;
	walMethods.xFileControl = walFileControl;
	walMethods.xSectorSize = walSectorSize;
	walMethods.xDeviceCharacteristics = walDeviceCharacteristics;

	dbMethods.iVersion = 3;
	dbMethods.xClose = dbClose;
	dbMethods.xRead = dbRead;
	dbMethods.xWrite = dbWrite;
	dbMethods.xTruncate = dbTruncate;
	dbMethods.xSync = dbSync;
	dbMethods.xFileSize = dbFileSize;
	dbMethods.xLock = dbLock;
	dbMethods.xUnlock = dbUnlock;
	dbMethods.xCheckReservedLock = dbCheckReservedLock;
	dbMethods.xFileControl = dbFileControl;
	dbMethods.xSectorSize = dbSectorSize;
	dbMethods.xDeviceCharacteristics = dbDeviceCharacteristics;
	dbMethods.xShmMap = dbShmMap;
	dbMethods.xShmLock = dbShmLock;
	dbMethods.xShmBarrier = dbShmBarrier;
	dbMethods.xShmUnmap = dbShmUnmap;
	dbMethods.xFetch = dbFetch;
	dbMethods.xUnfetch = dbUnfetch;

	walbufVfs = *orig;
	walbufVfs.pNext = NULL;
	walbufVfs.zName = name;
	walbufVfs.szOsFile = WRAPPER_SIZE + orig->szOsFile;
	walbufVfs.xOpen = walbufOpen;
	origVfs = orig;
	return sqlite3_vfs_register(&walbufVfs, 0);
}

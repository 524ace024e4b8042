// An SQLite VFS that writes a transaction's write-ahead-log frames with
// one write(2) instead of two per page. See walbuf.go for why and for the
// rules that keep it safe.

#include <stdlib.h>
#include <string.h>
#include "walbuf.h"

// A WAL file opened through the VFS: the buffer of frames not yet
// written, then (at real) the underlying VFS's own file object.
typedef struct walFile {
	sqlite3_file base;
	sqlite3_file *real;
	char *buf;
	sqlite3_int64 off;   // file offset of buf[0]
	int n;               // bytes pending in buf
	int flushNext;       // a commit frame's header is pending: flush after its page
	int throughNext;     // a commit frame's header went straight to the file: so does its page
	int pad;             // keeps the underlying file object 8-byte aligned
} walFile;

#define WALBUF_CAP (1 << 20)
#define WAL_FRAME_HDRSIZE 24
// The default VFS writes at most 128 KiB - 1 bytes a call (it masks the
// count), so a flush goes in pieces of 124 KiB.
#define WRITE_MAX 0x1f000

static sqlite3_vfs walbufVfs;
static sqlite3_vfs *origVfs;
static sqlite3_io_methods walMethods;

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
	return rc != SQLITE_OK ? rc : rc2;
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

// The log file has no shared memory or memory map of its own (those
// belong to the database file), so the version-1 methods are all it uses.

static int walbufOpen(sqlite3_vfs *vfs, const char *name, sqlite3_file *f, int flags, int *outFlags) {
	if ((flags & SQLITE_OPEN_WAL) == 0) {
		// Anything but a log file is the underlying VFS's own, untouched.
		return origVfs->xOpen(origVfs, name, f, flags, outFlags);
	}
	walFile *p = (walFile *)f;
	memset(p, 0, sizeof(*p));
	p->real = (sqlite3_file *)(p + 1);
	int rc = origVfs->xOpen(origVfs, name, p->real, flags, outFlags);
	if (rc != SQLITE_OK) {
		if (p->real->pMethods != NULL) {
			p->real->pMethods->xClose(p->real);
		}
		p->base.pMethods = NULL;
		return rc;
	}
	p->base.pMethods = &walMethods;
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

	walbufVfs = *orig;
	walbufVfs.pNext = NULL;
	walbufVfs.zName = name;
	walbufVfs.szOsFile = (int)sizeof(walFile) + orig->szOsFile;
	walbufVfs.xOpen = walbufOpen;
	origVfs = orig;
	return sqlite3_vfs_register(&walbufVfs, 0);
}

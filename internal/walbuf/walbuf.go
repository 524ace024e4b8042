// Package walbuf registers an SQLite VFS that writes each transaction's
// write-ahead-log frames with one write(2) instead of two per page.
//
// SQLite writes every frame of its log as two writes, a 24-byte header
// and then the page, each a system call. A billed call commits about a
// dozen pages, and on a virtual machine a system call is dear: here two
// small writes cost 4 µs where one write of the same bytes as part of a
// larger one costs 0.3 µs. The VFS is SQLite's own default VFS with one
// change: a log file's writes that follow one another in the file are
// gathered in a buffer and written together.
//
// The buffer never holds what another connection could read. SQLite
// makes a transaction visible only after its last frame, the commit
// frame, is written, and the commit frame is the only one whose header
// carries the database size. So the page after a commit frame's header is
// written together with everything before it, at once, and its error, if
// any, is the commit's: SQLite then rolls the transaction back as it
// would have. Every other operation on the log file (a read, a sync, a
// truncation, closing it) first writes what is pending, so the
// connection itself, recovery and checkpoints see the file as SQLite
// wrote it. And when the connection releases the log's write lock, what
// is still pending is dropped: a commit leaves nothing behind, so it is
// the pages of a transaction that rolled back, which must not land on
// frames another connection may write next. That lock is taken on the
// database file, so the VFS wraps it too (every other method passes
// through); journals and temporary files are the default VFS's own.
package walbuf

/*
#include "walbuf.h"
*/
import "C"

import (
	"fmt"
	"sync"

	_ "github.com/mattn/go-sqlite3" // the SQLite library the VFS wraps
)

// Name is the VFS's name: open a database with it through the driver's
// "vfs" connection parameter.
const Name = "walbuf"

var register = sync.OnceValue(func() error {
	// SQLite keeps the name for as long as the VFS is registered: the
	// process's life, so the C string is never freed.
	if rc := C.walbuf_register(C.CString(Name)); rc != C.SQLITE_OK {
		return fmt.Errorf("register the %s SQLite VFS: error %d", Name, int(rc))
	}
	return nil
})

// Register registers the VFS with SQLite, once; later calls return the
// first call's result.
func Register() error { return register() }

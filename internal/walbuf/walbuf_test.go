package walbuf_test

import (
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/mattn/go-sqlite3"

	"ttconsole/internal/walbuf"
)

// The writes the child process makes: one-page transactions (a commit
// frame alone), small ones, many-page ones, one larger than the buffer,
// one that rolls back before another connection commits, and one that
// overflows a tiny page cache, so SQLite writes pages to the log before
// the commit and rewrites their checksums in place when it commits.
const (
	onePageTxs = 50
	smallTxs   = 200
	bigTxs     = 20
	bigTxRows  = 500
	hugeRows   = 20_000
	spillRows  = 5_000
	otherRows  = 2_000 // committed by another connection after a rollback
	rowPadding = 300
)

func wantRows() int { return smallTxs + bigTxs*bigTxRows + hugeRows + spillRows + otherRows }

// wantTxs counts the transactions that leave rows: the rolled-back one
// does not.
func wantTxs() int { return smallTxs + bigTxs + 3 }

func openDSN(path string, viaWalbuf bool) string {
	dsn := "file:" + path + "?_journal_mode=WAL&_synchronous=NORMAL&_busy_timeout=5000"
	if viaWalbuf {
		dsn += "&vfs=" + walbuf.Name
	}
	return dsn
}

// TestMain runs the writer when the test starts itself as a child.
func TestMain(m *testing.M) {
	if path := os.Getenv("WALBUF_CHILD_DB"); path != "" {
		if err := childWrites(path); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		// End without closing the database, as a process that is killed
		// would: the log is left as it was written, never checkpointed.
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func childWrites(path string) error {
	if err := walbuf.Register(); err != nil {
		return err
	}
	w, err := sql.Open("sqlite3", openDSN(path, true)+"&_txlock=immediate")
	if err != nil {
		return err
	}
	w.SetMaxOpenConns(1)
	// A second connection that does not use the VFS reads each commit as
	// soon as it returns: a buffered commit would be missing.
	r, err := sql.Open("sqlite3", openDSN(path, false))
	if err != nil {
		return err
	}
	r.SetMaxOpenConns(1)
	if _, err := r.Exec("PRAGMA wal_autocheckpoint = 0"); err != nil {
		return err
	}
	if _, err := w.Exec(`PRAGMA wal_autocheckpoint = 0;
		CREATE TABLE t (id INTEGER PRIMARY KEY, tx INTEGER NOT NULL, pad TEXT NOT NULL);
		CREATE INDEX t_tx ON t (tx, id);
		CREATE TABLE one (id INTEGER PRIMARY KEY, v INTEGER NOT NULL);
		INSERT INTO one VALUES (1, 0)`); err != nil {
		return err
	}
	for i := 1; i <= onePageTxs; i++ {
		if _, err := w.Exec("UPDATE one SET v = ?", i); err != nil {
			return err
		}
		var v int
		if err := r.QueryRow("SELECT v FROM one").Scan(&v); err != nil {
			return err
		}
		if v != i {
			return fmt.Errorf("after one-page transaction %d another connection reads %d", i, v)
		}
	}
	pad := strings.Repeat("x", rowPadding)
	rows := 0
	insert := func(txn, n int) error {
		tx, err := w.Begin()
		if err != nil {
			return err
		}
		defer tx.Rollback()
		for range n {
			if _, err := tx.Exec("INSERT INTO t (tx, pad) VALUES (?, ?)", txn, pad); err != nil {
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
		rows += n
		var seen int
		if err := r.QueryRow("SELECT COUNT(*) FROM t").Scan(&seen); err != nil {
			return err
		}
		if seen != rows {
			return fmt.Errorf("after transaction %d another connection sees %d rows, want %d", txn, seen, rows)
		}
		return nil
	}
	txn := 0
	for range smallTxs {
		txn++
		if err := insert(txn, 1); err != nil {
			return err
		}
	}
	for range bigTxs {
		txn++
		if err := insert(txn, bigTxRows); err != nil {
			return err
		}
	}
	txn++
	if err := insert(txn, hugeRows); err != nil {
		return err
	}
	if _, err := w.Exec("PRAGMA cache_size = 8"); err != nil {
		return err
	}
	// A transaction that writes pages to the log and rolls back; then
	// another connection commits, its frames where the rolled-back ones
	// were, and this one commits again. Nothing of the rolled-back
	// transaction may reach the file over the other connection's commit.
	// The log is emptied first, so that the transaction reads every page
	// from the database file, and its rows keep their size, so that the
	// file does not grow: SQLite then has no reason to read the log while
	// the transaction runs or rolls back, and its last pages are still
	// waiting to be written when it ends.
	if _, err := w.Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return err
	}
	tx, err := w.Begin()
	if err != nil {
		return err
	}
	if _, err := tx.Exec("UPDATE t SET pad = upper(pad) WHERE id <= 1000"); err != nil {
		return err
	}
	if err := tx.Rollback(); err != nil {
		return err
	}
	txn++
	if _, err := r.Exec("INSERT INTO t (tx, pad) SELECT ?, pad FROM t LIMIT ?", txn, otherRows); err != nil {
		return err
	}
	if _, err := w.Exec("UPDATE one SET v = v + 1"); err != nil {
		return err
	}

	// Last, so that it is still in the log when the process ends.
	tx, err = w.Begin()
	if err != nil {
		return err
	}
	txn++
	for i := range spillRows {
		// Rows spread over the whole table, each page written again and
		// again while the transaction runs.
		if _, err := tx.Exec("INSERT INTO t (id, tx, pad) VALUES (?, ?, ?)", 1_000_000+i*7919%spillRows, txn, pad); err != nil {
			return err
		}
		if _, err := tx.Exec("UPDATE t SET pad = ? WHERE id = ?", pad[:i%rowPadding], 1+i*31%rows); err != nil {
			return err
		}
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	return nil
}

// TestCommitsSurviveACrash has a child process write through the VFS and
// end without closing the database, then recovers the database from its
// log alone (the shared-memory index removed) and finds every committed
// row and a sound file.
func TestCommitsSurviveACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run", "^$")
	cmd.Env = append(os.Environ(), "WALBUF_CHILD_DB="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("writer: %v\n%s", err, out)
	}
	wal, err := os.Stat(path + "-wal")
	if err != nil || wal.Size() == 0 {
		t.Fatalf("the writer left no log to recover from (%v)", err)
	}
	if err := os.Remove(path + "-shm"); err != nil {
		t.Fatal(err)
	}

	db, err := sql.Open("sqlite3", openDSN(path, false))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var got, txs int
	if err := db.QueryRow("SELECT COUNT(*), COUNT(DISTINCT tx) FROM t").Scan(&got, &txs); err != nil {
		t.Fatal(err)
	}
	if got != wantRows() || txs != wantTxs() {
		t.Errorf("recovered %d rows in %d transactions, want %d in %d", got, txs, wantRows(), wantTxs())
	}
	var v int
	if err := db.QueryRow("SELECT v FROM one").Scan(&v); err != nil || v != onePageTxs+1 {
		t.Errorf("the one-page transactions recovered as %d (%v), want %d", v, err, onePageTxs+1)
	}
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Errorf("integrity_check: %q, %v", check, err)
	}
}

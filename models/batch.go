package models

import (
	"context"
	"database/sql"
	"sync"
)

// maxBatch bounds how many writes share one SQLite transaction.
const maxBatch = 128

// batcher is SQLite's group commit for the money path. SQLite has one
// writer at a time, and most of a small transaction's cost is its commit
// (every page it touched is appended to the WAL). So the writes that queue
// up while a transaction runs go into the next one together, each in a
// savepoint of its own: a write that fails or refuses (a quota, a
// shortfall) is rolled back alone, and every caller returns only once the
// transaction holding its write has committed — exactly as durable as a
// transaction of its own. One waiting caller runs each transaction for the
// group; there is no background goroutine.
type batcher struct {
	db    *sql.DB
	stmts []*sql.Stmt

	mu      sync.Mutex
	queue   []*batchOp
	running bool // a caller is running a group
}

type batchOp struct {
	fn   func(*wtx) error
	err  error
	done chan bool // true: "lead the next group"; false: err is set
}

var (
	qSavepoint         = newQuery("SAVEPOINT op")
	qRollbackSavepoint = newQuery("ROLLBACK TO op")
	qReleaseSavepoint  = newQuery("RELEASE op")
)

func (b *batcher) do(fn func(*wtx) error) error {
	op := &batchOp{fn: fn, done: make(chan bool, 1)}
	b.mu.Lock()
	b.queue = append(b.queue, op)
	lead := !b.running
	b.running = true
	b.mu.Unlock()
	// Once queued, the write may commit: wait for it.
	for !lead {
		if lead = <-op.done; !lead {
			return op.err
		}
	}

	b.mu.Lock()
	n := min(len(b.queue), maxBatch)
	group := make([]*batchOp, n)
	copy(group, b.queue)
	b.queue = append(b.queue[:0], b.queue[n:]...)
	b.mu.Unlock()

	b.run(group)

	b.mu.Lock()
	var next *batchOp
	if len(b.queue) > 0 {
		next = b.queue[0]
	} else {
		b.running = false
	}
	b.mu.Unlock()
	for _, o := range group {
		if o != op {
			o.done <- false
		}
	}
	if next != nil {
		next.done <- true
	}
	return op.err
}

// run writes a group in one transaction and sets each write's error.
func (b *batcher) run(group []*batchOp) {
	fail := func(err error) {
		for _, o := range group {
			o.err = err
		}
	}
	// A queued write runs whatever its caller's context says (the caller
	// waits for it regardless), and a cancelled statement must not
	// interrupt the connection under the others' writes.
	ctx := context.Background()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		fail(err)
		return
	}
	if len(group) == 1 {
		o := group[0]
		if o.err = o.fn(&wtx{ctx: ctx, tx: tx, stmts: b.stmts}); o.err != nil {
			tx.Rollback()
			return
		}
		o.err = tx.Commit()
		return
	}
	for _, o := range group {
		w := &wtx{ctx: ctx, tx: tx, stmts: b.stmts}
		if _, err := w.exec(qSavepoint); err != nil {
			tx.Rollback()
			fail(err)
			return
		}
		if o.err = o.fn(w); o.err != nil {
			if _, err := w.exec(qRollbackSavepoint); err != nil {
				tx.Rollback()
				fail(err)
				return
			}
		}
		if _, err := w.exec(qReleaseSavepoint); err != nil {
			tx.Rollback()
			fail(err)
			return
		}
	}
	if err := tx.Commit(); err != nil {
		fail(err)
	}
}

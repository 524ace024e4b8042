package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"
)

// maxBatch bounds how many writes share one SQLite transaction.
const maxBatch = 128

// Under load (the last group had groupDelayFrom writes or more) a group
// waits groupDelay for more writes before it starts: a group's commit
// costs about the same whatever its size, so fewer, larger groups leave
// more of the machine to the calls themselves. One call at a time never
// waits. (PostgreSQL's commit_delay and commit_siblings do the same.)
const (
	groupDelay     = 400 * time.Microsecond
	groupDelayFrom = 3
)

// batcher is SQLite's group commit for the money path. SQLite has one
// writer at a time, and much of a small transaction's cost is its commit
// (every page it touched is appended to the WAL). So the writes that queue
// up while a transaction runs go into the next one together, and every
// caller returns only once the transaction holding its write has committed
// — exactly as durable as a transaction of its own. A write that refuses
// (a quota, a shortfall) leaves nothing behind, so the others go on; any
// other failure rolls the group back and each write runs again alone, so
// one write's failure is never another's. One waiting caller runs each
// transaction for the group; there is no background goroutine.
type batcher struct {
	db    *sql.DB
	stmts []*sql.Stmt

	mu        sync.Mutex
	queue     []*batchOp
	running   bool // a caller is running a group
	lastGroup int  // size of the group run last
}

type batchOp struct {
	fn   func(*wtx) error
	err  error
	done chan bool // true: "lead the next group"; false: err is set
}

// call runs the write, turning a panic into its error: the group's other
// writes, and every write queued after them, must go on.
func (o *batchOp) call(w *wtx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v", p)
		}
	}()
	return o.fn(w)
}

// refusal is an error after which a write has left nothing behind.
type refusal interface{ refused() }

func (*QuotaError) refused()     {}
func (*ShortfallError) refused() {}

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
	if busy := b.lastGroup >= groupDelayFrom && len(b.queue) < maxBatch; busy {
		b.mu.Unlock()
		time.Sleep(groupDelay)
		b.mu.Lock()
	}
	n := min(len(b.queue), maxBatch)
	b.lastGroup = n
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
	if len(group) > 1 {
		if err := b.runTx(group); err == nil {
			return
		}
	}
	for _, o := range group {
		b.runTx([]*batchOp{o}) // sets o.err
	}
}

// runTx runs writes in one transaction, setting each one's error, and
// commits it, unless one of them fails without being a refusal: then it
// rolls back and returns that error.
func (b *batcher) runTx(group []*batchOp) error {
	// A queued write runs whatever its caller's context says (the caller
	// waits for it regardless), and no statement is cancelled under the
	// others' writes.
	ctx := context.Background()
	tx, err := b.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	w := &wtx{ctx: ctx, tx: tx, stmts: b.stmts}
	for _, o := range group {
		o.err = o.call(w)
		var r refusal
		if o.err != nil && !errors.As(o.err, &r) {
			tx.Rollback()
			return o.err
		}
	}
	if err := tx.Commit(); err != nil {
		for _, o := range group {
			o.err = err
		}
		return err
	}
	return nil
}

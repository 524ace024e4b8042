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
// caller learns its write's fate only once the transaction holding it has
// committed — exactly as durable as a transaction of its own. A write that
// refuses (a quota, a shortfall) leaves nothing behind, so the others go
// on; any other failure rolls the group back and each write runs again
// alone, so one write's failure is never another's.
//
// A caller that arrives when no group runs runs its own; one that arrives
// during a group queues, and the groups after it run on a goroutine that
// ends when the queue is empty.
type batcher struct {
	db    *sql.DB
	stmts []*sql.Stmt

	mu        sync.Mutex
	queue     []*batchOp
	running   bool // a group is running
	lastGroup int  // size of the group run last
}

type batchOp struct {
	fn       func(*wtx) error
	err      error         // final once finished is closed
	finished chan struct{} // closed once the write committed or failed
	early    chan error    // doEarly only: fn's own result, before the commit
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

// do runs fn in a group and returns once its fate is final.
func (b *batcher) do(fn func(*wtx) error) error {
	op := b.enqueue(fn, false)
	<-op.finished
	return op.err
}

// doEarly runs fn in a group and returns as soon as fn has run, before the
// group commits, when fn succeeded; final then says whether it committed.
// An error is returned only once final.
func (b *batcher) doEarly(fn func(*wtx) error) (err error, final func() error) {
	op := b.enqueue(fn, true)
	wait := func() error {
		<-op.finished
		return op.err
	}
	select {
	case err = <-op.early:
		if err == nil {
			return nil, wait
		}
	case <-op.finished:
	}
	err = wait()
	return err, func() error { return err }
}

func (b *batcher) enqueue(fn func(*wtx) error, early bool) *batchOp {
	op := &batchOp{fn: fn, finished: make(chan struct{})}
	if early {
		op.early = make(chan error, 1)
	}
	b.mu.Lock()
	b.queue = append(b.queue, op)
	lead := !b.running
	b.running = true
	b.mu.Unlock()
	switch {
	case !lead: // the running group's leader will take it
	case early:
		go b.lead() // the caller goes on while the group commits
	default:
		if b.runGroup() {
			go b.lead() // the caller's write is done; others queued meanwhile
		}
	}
	return op
}

// lead runs groups until the queue is empty.
func (b *batcher) lead() {
	for b.runGroup() {
	}
}

// runGroup runs the queue's first group and reports whether more writes
// are queued; when none are, the batcher is idle again.
func (b *batcher) runGroup() bool {
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
	for _, o := range group {
		close(o.finished)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.queue) == 0 {
		b.running = false
		return false
	}
	return true
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
		if o.early != nil {
			select {
			case o.early <- o.err: // first attempt only; final says the rest
			default:
			}
		}
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

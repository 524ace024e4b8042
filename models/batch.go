package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
)

// maxBatch bounds how many writes share one SQLite transaction.
const maxBatch = 128

// Under load (the last group had groupDelayFrom writes or more) a group
// stays open for groupDelay: writes that arrive meanwhile run in it at
// once, and it commits when the time is up. A group's commit costs about
// the same whatever its size, so fewer, larger groups leave more of the
// machine to the calls themselves, and the writes' own statements run
// while the group waits, not after it. One call at a time never waits.
// (PostgreSQL's commit_delay and commit_siblings do the same.)
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
	db *sql.DB
	pg bool // PostgreSQL: a group runs on a connection of the pool
	// bulkHolds counts the holds placed together with others (bulk.go).
	bulkHolds atomic.Int64
	wc        *writerConn // SQLite: used by the running group only
	ids       *idSource   // the store's, for the rows a group writes

	mu        sync.Mutex
	queue     []*batchOp
	running   bool          // a group is running
	lastGroup int           // size of the group run last
	waiting   bool          // the running group waits for writes
	arrived   chan struct{} // tells a waiting group that a write arrived
}

type batchOp struct {
	fn   func(*wtx) error
	then func(*wtx) error // doEarly only: runs after fn's result is told, in the same transaction
	// A hold to place, or one to end, with the group's others (see
	// bulk.go); fn and then are the same write on its own, for a group
	// that runs its writes one by one.
	hold     *holdWrite
	settle   *settleWrite
	err      error         // final once finished is closed
	finished chan struct{} // closed once the write committed or failed
	early    chan error    // doEarly only: fn's own result, before the commit
	done     bool          // run by bulk in the current transaction
}

// call runs fn, turning a panic into its error: the group's other
// writes, and every write queued after them, must go on.
func call(fn func(*wtx) error, w *wtx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("write panicked: %v", p)
		}
	}()
	return fn(w)
}

// refusal is an error after which a write has left nothing behind.
type refusal interface{ refused() }

func (*QuotaError) refused()     {}
func (*ShortfallError) refused() {}

// do runs fn in a group and returns once its fate is final.
func (b *batcher) do(fn func(*wtx) error) error {
	return b.wait(b.enqueue(&batchOp{fn: fn}))
}

// wait returns the error of op once its fate is final.
func (b *batcher) wait(op *batchOp) error {
	<-op.finished
	return op.err
}

// doEarly runs decide and then record in a group, and returns as soon as
// decide has run, before record and the commit, when decide succeeded;
// final then says whether the whole write committed. An error is
// returned only once final.
func (b *batcher) doEarly(op *batchOp) (err error, final func() error) {
	op.early = make(chan error, 1)
	b.enqueue(op)
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

func (b *batcher) enqueue(op *batchOp) *batchOp {
	op.finished = make(chan struct{})
	early := op.early != nil
	b.mu.Lock()
	b.queue = append(b.queue, op)
	lead := !b.running
	b.running = true
	if b.waiting {
		b.waiting = false
		b.arrived <- struct{}{} // buffered: the group takes it when it wakes
	}
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

// runGroup runs one group and reports whether more writes are queued;
// when none are, the batcher is idle again.
func (b *batcher) runGroup() bool {
	b.mu.Lock()
	window := b.lastGroup >= groupDelayFrom
	b.mu.Unlock()
	var g []*batchOp
	if err := b.onWriter(func(c groupConn) { g = b.runWindow(c, window) }); err != nil && g == nil {
		g = b.take(maxBatch)
		failAll(g, err)
	}
	for _, o := range g {
		close(o.finished)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	b.lastGroup = len(g)
	if len(b.queue) == 0 {
		b.running = false
		return false
	}
	return true
}

// take removes up to n writes from the queue.
func (b *batcher) take(n int) []*batchOp {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, len(b.queue))
	ops := make([]*batchOp, n)
	copy(ops, b.queue)
	b.queue = append(b.queue[:0], b.queue[n:]...)
	return ops
}

// await waits until a write is queued or the deadline passes, and reports
// whether the group should take more.
func (b *batcher) await(deadline time.Time) bool {
	wait := time.Until(deadline)
	if wait <= 0 {
		return false
	}
	b.mu.Lock()
	if len(b.queue) > 0 {
		b.mu.Unlock()
		return true
	}
	b.waiting = true
	b.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-b.arrived:
		return true
	case <-t.C:
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.waiting { // a write arrived as the time ran out: drain its signal
		<-b.arrived
	}
	b.waiting = false
	return len(b.queue) > 0
}

// runWindow runs the queued writes in one transaction — and, when window
// is set, those that arrive in the next groupDelay — and commits it,
// setting each write's error. A write that fails without being a refusal
// rolls the transaction back, and then every write of the group runs
// again alone, so one write's failure is never another's. It returns the
// group's writes.
func (b *batcher) runWindow(c groupConn, window bool) []*batchOp {
	deadline := time.Now().Add(groupDelay)
	g := b.take(maxBatch)
	w, err := c.tx()
	if w != nil {
		w.ids = b.ids
	}
	if err != nil {
		failAll(g, err)
		return g
	}
	for ops := g; ; {
		if err := b.bulk(w, ops); err != nil {
			c.end(false)
			for _, o := range g {
				b.runAlone(c, o)
			}
			return g
		}
		for _, o := range ops {
			if o.done {
				continue
			}
			if err := b.call(o, w); err != nil {
				c.end(false)
				if len(g) > 1 { // alone, its error is already set
					for _, o := range g {
						b.runAlone(c, o)
					}
				}
				return g
			}
		}
		if !window || len(g) >= maxBatch || !b.await(deadline) {
			break
		}
		ops = b.take(maxBatch - len(g))
		g = append(g, ops...)
	}
	if err := w.flushUsage(); err != nil {
		c.end(false)
		for _, o := range g {
			b.runAlone(c, o)
		}
		return g
	}
	if err := c.end(true); err != nil {
		if !b.pg || !refusedByServer(err) {
			failAll(g, err) // it may have committed: no write runs twice
			return g
		}
		// A statement sent with the COMMIT (w.later) failed, so the
		// server rolled the group back: as for any other failure, each
		// write runs again alone (and a deadlock is tried again).
		for _, o := range g {
			b.runAlone(c, o)
		}
	}
	return g
}

// refusedByServer reports whether err is PostgreSQL's answer to a
// statement of the transaction: then the transaction did not commit.
// Any other error (the connection broke) leaves that unknown.
func refusedByServer(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr)
}

// call runs one write of a group, tells an early caller its decision
// (first attempt only: final says the rest) before the write goes on, and
// returns an error that must roll the group back: a failure other than a
// refusal.
func (b *batcher) call(o *batchOp, w *wtx) error {
	o.err = call(o.fn, w)
	if b.told(o) {
		// The caller is now runnable on this goroutine's P, which the
		// cgo calls below would keep from it until the runtime takes
		// the P back: let it run first, and go on from the run queue.
		runtime.Gosched()
	}
	if o.err == nil && o.then != nil {
		o.err = call(o.then, w)
	}
	var r refusal
	if o.err != nil && !errors.As(o.err, &r) {
		return o.err
	}
	return nil
}

// told tells an early caller its write's decision, o.err, before the
// rest of the write and the group's commit, the first time only, and
// reports whether it did.
func (b *batcher) told(o *batchOp) bool {
	if o.early == nil {
		return false
	}
	select {
	case o.early <- o.err:
		return true
	default:
		return false
	}
}

// runAlone runs one write in a transaction of its own, setting its error,
// and commits it unless the write failed without being a refusal. On
// PostgreSQL a deadlock or serialization failure (nothing was written) is
// tried again, a few times.
func (b *batcher) runAlone(c groupConn, o *batchOp) {
	for attempt := 0; ; attempt++ {
		b.runOnce(c, o)
		if !b.pg || attempt == 4 || !retryable(o.err) {
			return
		}
		time.Sleep(time.Duration(attempt+1) * 5 * time.Millisecond)
	}
}

func (b *batcher) runOnce(c groupConn, o *batchOp) {
	o.done = false
	w, err := c.tx()
	if w != nil {
		w.ids = b.ids
	}
	if err != nil {
		o.err = err
		return
	}
	if b.call(o, w) != nil {
		c.end(false)
		return
	}
	if err := w.flushUsage(); err != nil {
		o.err = err
		c.end(false)
		return
	}
	if err := c.end(true); err != nil {
		o.err = err
	}
}

// onWriter runs fn on the writer connection, holding it until fn returns:
// SQLite's one writer connection, or a connection of PostgreSQL's pool.
// A queued write runs whatever its caller's context says (the caller
// waits for it regardless), and no statement is cancelled under the
// others' writes.
func (b *batcher) onWriter(fn func(groupConn)) error {
	conn, err := b.db.Conn(context.Background())
	if err != nil {
		return err
	}
	defer conn.Close()
	if b.pg {
		return conn.Raw(func(dc any) error {
			sc, ok := dc.(*stdlib.Conn)
			if !ok {
				return fmt.Errorf("write path: %T is not a pgx connection", dc)
			}
			fn(&pgConn{conn: sc.Conn()})
			return nil
		})
	}
	return conn.Raw(func(dc any) error {
		if b.wc == nil || b.wc.dc != dc {
			if b.wc != nil { // database/sql replaced the connection
				b.wc.close()
			}
			b.wc = nil
			d, ok := dc.(driver.Conn)
			if !ok {
				return fmt.Errorf("write path: %T is not a driver connection", dc)
			}
			wc, err := newWriterConn(d)
			if err != nil {
				return err
			}
			b.wc = wc
		}
		fn(b.wc)
		return nil
	})
}

// close finalizes the writer's statements, before its connection closes.
func (b *batcher) close() {
	conn, err := b.db.Conn(context.Background())
	if err != nil {
		return
	}
	defer conn.Close()
	conn.Raw(func(any) error { // no group runs while this holds the connection
		if b.wc != nil {
			b.wc.close()
			b.wc = nil
		}
		return nil
	})
}

// groupConn is the connection a group's transaction runs on.
type groupConn interface {
	tx() (*wtx, error)
	end(commit bool) error
}

// failAll gives every write of a group the same error.
func failAll(g []*batchOp, err error) {
	for _, o := range g {
		o.err = err
	}
}

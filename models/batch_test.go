package models

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// qPutSetting is a write of the tests' own, through the write path.
var qPutSetting = newQuery("INSERT INTO settings (name, value) VALUES (?, 'x')")

// sqliteStore is a Store on a migrated SQLite file of the test's own (the
// group commit exists only on SQLite). The tests here are inside the
// package, so they cannot use testenv.
func sqliteStore(t *testing.T) *Store {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "store.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return NewStore(db)
}

// fundedKey makes an account with micros in its wallet and a key.
func fundedKey(t *testing.T, s *Store, email string, micros int64) (*User, *APIKey) {
	t.Helper()
	ctx := context.Background()
	u, err := s.CreateAccount(ctx, email, "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Credit(ctx, u.AccountID, micros, LedgerAdjustment, "test", LedgerRef{}); err != nil {
		t.Fatal(err)
	}
	k, _, err := s.CreateAPIKey(ctx, u.AccountID, AdminCLI, KeyInput{Name: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return u, k
}

// TestGroupCommitIsolatesWrites queues writes behind a slow one so that
// they share a transaction, and checks that each keeps its own outcome: a
// failing write leaves nothing and takes nothing of the others with it, a
// refusal is returned as it is, and every other write is committed.
func TestGroupCommitIsolatesWrites(t *testing.T) {
	s := sqliteStore(t)
	if s.batch == nil {
		t.Fatal("SQLite store without a group commit")
	}
	ctx := context.Background()
	put := func(name string) func(*wtx) error {
		return func(w *wtx) error {
			_, err := w.exec(qPutSetting, name)
			return err
		}
	}
	boom := errors.New("boom")

	// The first write holds the writer while the others queue.
	started := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.write(ctx, func(w *wtx) error {
			close(started)
			time.Sleep(100 * time.Millisecond)
			return put("first")(w)
		})
	}()
	<-started

	results := map[string]error{}
	var mu sync.Mutex
	run := func(name string, fn func(*wtx) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.write(ctx, fn)
			mu.Lock()
			results[name] = err
			mu.Unlock()
		}()
	}
	run("a", put("a"))
	run("fails", func(w *wtx) error {
		if err := put("fails")(w); err != nil {
			return err
		}
		return boom // after writing: its row must not stay
	})
	run("refused", func(w *wtx) error { return &QuotaError{LimitMicros: 1} })
	run("dup", put("first")) // a constraint failure, after "first" commits
	run("b", put("b"))
	run("panics", func(w *wtx) error {
		put("panics")(w)
		var m map[string]int
		m["x"]++ // a bug in a write must not stall the others
		return nil
	})
	wg.Wait()
	if results["panics"] == nil {
		t.Fatal("a panicking write reported success")
	}
	// The writer still takes writes afterwards.
	if err := s.write(ctx, put("after")); err != nil {
		t.Fatal(err)
	}

	if !errors.Is(results["fails"], boom) {
		t.Fatalf("failing write returned %v", results["fails"])
	}
	var qe *QuotaError
	if !errors.As(results["refused"], &qe) {
		t.Fatalf("refused write returned %v", results["refused"])
	}
	if results["dup"] == nil {
		t.Fatal("a duplicate key was accepted")
	}
	if results["a"] != nil || results["b"] != nil {
		t.Fatalf("good writes failed: a %v, b %v", results["a"], results["b"])
	}
	var names []string
	if err := s.db.r.Table("settings").Where("name IN ?", []string{"first", "a", "b", "fails", "panics"}).
		Order("name").Pluck("name", &names).Error; err != nil {
		t.Fatal(err)
	}
	if len(names) != 3 || names[0] != "a" || names[1] != "b" || names[2] != "first" {
		t.Fatalf("committed %v, want a, b and first", names)
	}
}

// TestEarlyDecisionIsProvisional checks doEarly's contract: a write that
// ran returns at once, and final gives its fate once the group is done —
// here a group rolled back by another write's failure, after which the
// write runs again alone and is refused.
func TestEarlyDecisionIsProvisional(t *testing.T) {
	s := sqliteStore(t)
	ctx := context.Background()

	started := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { // holds the writer while the next two queue into one group
		defer wg.Done()
		s.write(ctx, func(*wtx) error {
			close(started)
			<-release
			return nil
		})
	}()
	<-started
	attempts := 0
	type result struct {
		early error
		final func() error
	}
	got := make(chan result, 1)
	go func() {
		err, final := s.batch.doEarly(&batchOp{fn: func(w *wtx) error {
			attempts++
			if attempts == 1 {
				return nil
			}
			return &ShortfallError{HoldMicros: 1}
		}})
		got <- result{err, final}
	}()
	go func() {
		defer wg.Done()
		waitQueued(s.batch, 1) // queue the failing write behind the early one
		s.write(ctx, func(*wtx) error { return errors.New("boom") })
	}()
	waitQueued(s.batch, 2)
	close(release)
	r := <-got
	wg.Wait()
	if r.early != nil {
		t.Fatalf("early result %v, want the first attempt's success", r.early)
	}
	var se *ShortfallError
	if err := r.final(); !errors.As(err, &se) || attempts != 2 {
		t.Fatalf("final %v after %d attempts, want the second attempt's refusal", err, attempts)
	}
}

// waitQueued waits until n writes wait in b's queue.
func waitQueued(b *batcher, n int) {
	for {
		b.mu.Lock()
		queued := len(b.queue)
		b.mu.Unlock()
		if queued == n {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// TestStartCallEarly places holds the early way: the hold is usable before
// it is durable, committed confirms it, and a refusal is final at once.
func TestStartCallEarly(t *testing.T) {
	s := sqliteStore(t)
	ctx := context.Background()
	u, k := fundedKey(t, s, "early@example.com", 100)
	row := func() *Request {
		return &Request{ID: s.NewRequestID(), AccountID: &u.AccountID, KeyID: &k.ID, Method: "POST",
			Path: "/v1/chat/completions", CreatedAt: time.Now().UTC()}
	}
	r := row()
	h, committed, err := s.StartCallEarly(ctx, r, k.ID, nil, 60, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := committed(); err != nil {
		t.Fatal(err)
	}
	if got, err := s.RequestOf(ctx, u.AccountID, r.ID); err != nil || got.BillingOutcome != OutcomePending || got.HoldMicros != 60 {
		t.Fatalf("row after the early hold: %+v, %v", got, err)
	}
	// 40 left: a hold of 60 is refused at once, and writes nothing.
	r2 := row()
	if _, _, err := s.StartCallEarly(ctx, r2, k.ID, nil, 60, time.Minute); !errors.As(err, new(*ShortfallError)) {
		t.Fatalf("second hold: %v, want a shortfall", err)
	}
	if _, err := s.RequestOf(ctx, u.AccountID, r2.ID); !errors.Is(err, ErrNotFound) || r2.HoldMicros != 0 {
		t.Fatalf("a refused hold left a row (%v) or a hold amount (%d)", err, r2.HoldMicros)
	}
	if err := s.FinishCall(ctx, h, r, 25); err != nil {
		t.Fatal(err)
	}
	if err := s.LedgerInvariant(ctx, u.AccountID); err != nil {
		t.Fatal(err)
	}
}

// TestGroupCommitCannotBegin checks that a write whose transaction could
// not even begin (the database closed, or locked by another process past
// the busy timeout) is told so, never reported as committed.
func TestGroupCommitCannotBegin(t *testing.T) {
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "closed.db"))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	b := &batcher{db: db, arrived: make(chan struct{}, 1)}
	ran := false
	if err := b.do(func(*wtx) error { ran = true; return nil }); err == nil {
		t.Fatal("a write that never began reported success")
	}
	if ran {
		t.Fatal("a write ran without a transaction")
	}
	// The batcher is idle again: the next write is tried, and told too.
	if err := b.do(func(*wtx) error { return nil }); err == nil {
		t.Fatal("the second write reported success")
	}
}

// TestEarlyDecisionThenRecordFails checks the second part of an early
// write: the decision is told before the record runs, and when the record
// then fails, the final result says so and the decision's own changes are
// rolled back with it.
func TestEarlyDecisionThenRecordFails(t *testing.T) {
	s := sqliteStore(t)
	boom := errors.New("boom")
	decide := func(w *wtx) error {
		_, err := w.exec(qPutSetting, "decided")
		return err
	}
	// The record waits until the caller has its decision: doEarly must
	// return before the record has run.
	release := make(chan struct{})
	err, final := s.batch.doEarly(&batchOp{fn: decide, then: func(*wtx) error { <-release; return boom }})
	close(release)
	if err != nil {
		t.Fatalf("early result %v, want the decision's success", err)
	}
	if err := final(); !errors.Is(err, boom) {
		t.Fatalf("final %v, want the record's failure", err)
	}
	var n int64
	if err := s.db.r.Table("settings").Where("name = 'decided'").Count(&n).Error; err != nil || n != 0 {
		t.Fatalf("the decision's row is there %d times (%v) after its write failed", n, err)
	}
	// And a refused decision never records.
	recorded := false
	err, final = s.batch.doEarly(&batchOp{fn: func(*wtx) error { return &QuotaError{LimitMicros: 1} },
		then: func(*wtx) error { recorded = true; return nil }})
	var qe *QuotaError
	if !errors.As(err, &qe) || !errors.As(final(), &qe) || recorded {
		t.Fatalf("refused decision: early %v, final %v, recorded %v", err, final(), recorded)
	}
}

// TestCompletedCallsKeepTheirOutcome completes held calls every way a
// call ends and reads each row back: a success has no error, a failure
// its own, and a row that was written with an error and then completed
// without one no longer shows it.
func TestCompletedCallsKeepTheirOutcome(t *testing.T) {
	s := sqliteStore(t)
	ctx := context.Background()
	u, k := fundedKey(t, s, "outcomes@example.com", 1000)
	start := func(errType string) (*Request, *Hold) {
		r := &Request{ID: s.NewRequestID(), AccountID: &u.AccountID, KeyID: &k.ID, Method: "POST",
			Path: "/v1/chat/completions", Model: "tt-chat-small", CreatedAt: time.Now().UTC(), ErrorType: errType}
		h, err := s.StartCall(ctx, r, k.ID, nil, 100, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return r, h
	}
	check := func(r *Request, status int, errType, outcome string, charged int64) {
		t.Helper()
		got, err := s.RequestOf(ctx, u.AccountID, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != status || got.ErrorType != errType || got.BillingOutcome != outcome ||
			got.ChargedMicros != charged || got.HoldStatus == HoldOpen || got.CompletedAt == nil {
			t.Fatalf("row %+v, want status %d, error %q, outcome %s, charged %d, hold ended, completed",
				got, status, errType, outcome, charged)
		}
	}

	ok, okHold := start("")
	ok.Status, ok.PromptTokens, ok.CompletionTokens = 200, 7, 16
	if err := s.FinishCall(ctx, okHold, ok, 30); err != nil {
		t.Fatal(err)
	}
	check(ok, 200, "", OutcomeCharged, 30)

	failed, h := start("")
	failed.Status, failed.ErrorType, failed.ErrorMessage = 502, "upstream_error", "The model server failed to answer."
	failed.ErrorBody = `{"error":{"type":"upstream_error"}}`
	if err := s.ReleaseCall(ctx, h, failed, OutcomeNotChargedFailed); err != nil {
		t.Fatal(err)
	}
	check(failed, 502, "upstream_error", OutcomeNotChargedFailed, 0)

	cleared, h := start("upstream_error")
	cleared.Status, cleared.ErrorType = 200, ""
	if err := s.FinishCall(ctx, h, cleared, 40); err != nil {
		t.Fatal(err)
	}
	check(cleared, 200, "", OutcomeCharged, 40)

	// A second completion of an ended hold changes nothing.
	ok.Status = 500
	if err := s.FinishCall(ctx, okHold, ok, 50); err != nil {
		t.Fatal(err)
	}
	check(ok, 200, "", OutcomeCharged, 30)
	if err := s.LedgerInvariant(ctx, u.AccountID); err != nil {
		t.Fatal(err)
	}
}

// TestCloseLeavesOneFile writes through the group commit and closes the
// database: every connection, the group commit's included, really
// closes, so the last one folds the log into the file and removes it.
func TestCloseLeavesOneFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "close.db")
	db, err := Open(path, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := NewStore(db)
	if err := s.write(context.Background(), func(w *wtx) error {
		_, err := w.exec(qPutSetting, "closing")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if _, err := os.Stat(path + suffix); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s after Close: %v, want it removed", suffix, err)
		}
	}
}

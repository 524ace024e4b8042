package models

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestGroupCommitIsolatesWrites queues writes behind a slow one so that
// they share a transaction, and checks that each keeps its own outcome: a
// failing write leaves nothing and takes nothing of the others with it, a
// refusal is returned as it is, and every other write is committed.
func TestGroupCommitIsolatesWrites(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "group.db"), "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := NewStore(db)
	if s.batch == nil {
		t.Fatal("SQLite store without a group commit")
	}
	ctx := context.Background()
	put := func(name string) func(*wtx) error {
		return func(w *wtx) error {
			_, err := w.tx.ExecContext(w.ctx, "INSERT INTO settings (name, value) VALUES (?, 'x')", name)
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
	if err := db.R.Table("settings").Where("name IN ?", []string{"first", "a", "b", "fails", "panics"}).
		Order("name").Pluck("name", &names).Error; err != nil {
		t.Fatal(err)
	}
	if len(names) != 3 || names[0] != "a" || names[1] != "b" || names[2] != "first" {
		t.Fatalf("committed %v, want a, b and first", names)
	}
}

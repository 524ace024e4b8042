package models

import (
	"context"
	"path/filepath"
	"testing"
)

func BenchmarkZZSeed(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "store.db"), "")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	s := NewStore(db)
	u, err := s.CreateAccount(context.Background(), "p@example.com", "long enough password")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if _, err := s.SeedRequests(context.Background(), u.AccountID, SeedOptions{Requests: 300000, Seed: 1}); err != nil {
		b.Fatal(err)
	}
}

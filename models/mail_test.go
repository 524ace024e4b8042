package models_test

import (
	"context"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestUsersBeforeMailCountAsConfirmed: migration 17 counts the addresses
// of existing users as confirmed, so their owners see no banner; users
// made afterwards start unconfirmed; and the migration goes back down.
func TestUsersBeforeMailCountAsConfirmed(t *testing.T) {
	db, p := migratedTo(t, 16)
	ctx := context.Background()
	made := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if err := db.Writer().Exec(`INSERT INTO accounts (id, name, created_at) VALUES ('acct_1', 'old', ?)`, made).Error; err != nil {
		t.Fatal(err)
	}
	if err := db.Writer().Exec(`INSERT INTO users (id, account_id, email, password_hash, created_at, password_changed_at)
		VALUES ('user_1', 'acct_1', 'old@example.com', 'x', ?, ?)`, made, made).Error; err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 17); err != nil {
		t.Fatal(err)
	}
	s := models.NewStore(db)
	old, err := s.UserByEmail(ctx, "old@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if old.EmailVerifiedAt == nil || !old.EmailVerifiedAt.Equal(made) {
		t.Errorf("a user from before: confirmed at %v, want at its creation, %v", old.EmailVerifiedAt, made)
	}
	if _, err := p.Down(ctx); err != nil {
		t.Fatalf("down from 17: %v", err)
	}
	if _, err := p.UpTo(ctx, 17); err != nil {
		t.Fatalf("up again: %v", err)
	}
	// Today's store writes the tables of later versions.
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	u, err := s.CreateAccount(ctx, "new@example.com", "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := s.UserByID(ctx, u.ID); again.EmailVerifiedAt != nil {
		t.Errorf("a new user is confirmed at %v before any link", again.EmailVerifiedAt)
	}
}

// TestClaimedMailWaitsOutItsLease: a mail taken for an attempt is out of
// every worker's reach until its lease passes, and is then taken again,
// its attempt counted, as after a worker that stopped mid-attempt.
func TestClaimedMailWaitsOutItsLease(t *testing.T) {
	s := models.NewStore(testenv.DB(t))
	ctx := context.Background()
	id, err := s.EnqueueMail(ctx, "ada@example.com", "Hello", "Text", "<p>Text</p>")
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.ClaimMail(ctx, time.Now(), 200*time.Millisecond, 10)
	if err != nil || len(got) != 1 || got[0].ID != id || got[0].Attempts != 1 || got[0].HTMLBody != "<p>Text</p>" {
		t.Fatalf("first claim: %+v %v", got, err)
	}
	if again, err := s.ClaimMail(ctx, time.Now(), time.Minute, 10); err != nil || len(again) != 0 {
		t.Fatalf("claimed again within its lease: %d %v", len(again), err)
	}
	time.Sleep(250 * time.Millisecond)
	again, err := s.ClaimMail(ctx, time.Now(), time.Minute, 10)
	if err != nil || len(again) != 1 || again[0].Attempts != 2 {
		t.Fatalf("after the lease: %+v %v, want it again at its second attempt", again, err)
	}
	if err := s.MailSent(ctx, id, time.Now()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if more, err := s.ClaimMail(ctx, time.Now().Add(time.Hour), time.Minute, 10); err != nil || len(more) != 0 {
		t.Fatalf("a sent mail was claimed: %d %v", len(more), err)
	}
	// A sent mail's text is forgotten (its links may still work); who was
	// mailed what, and when, stays.
	kept, err := s.MailTo(ctx, "ada@example.com")
	if err != nil || len(kept) != 1 || kept[0].SentAt == nil || kept[0].Subject != "Hello" ||
		kept[0].TextBody != "" || kept[0].HTMLBody != "" {
		t.Fatalf("the sent mail's row: %+v %v", kept, err)
	}
}

package models_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

func newKeyStore(t *testing.T) (*models.Store, *models.DB, string) {
	t.Helper()
	db := testenv.DB(t)
	store := models.NewStore(db)
	u, err := store.CreateAccount(context.Background(), "ada@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	return store, db, u.AccountID
}

var ada = models.Actor{Name: "ada@example.com"}

func TestCatalogueIsSeeded(t *testing.T) {
	store := models.NewStore(testenv.DB(t))
	ms, err := store.Models(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []models.CatalogModel{
		{ID: "tt-chat-small", Kind: "chat", InputMicrosPerMTok: 500_000, OutputMicrosPerMTok: 1_500_000, MaxOutputTokens: 16384, Sort: 10},
		{ID: "tt-chat-large", Kind: "chat", InputMicrosPerMTok: 3_000_000, OutputMicrosPerMTok: 15_000_000, MaxOutputTokens: 16384, Sort: 20},
		{ID: "tt-embed-1", Kind: "embeddings", InputMicrosPerMTok: 100_000, Sort: 30},
		{ID: "tt-video-1", Kind: "task", TaskPriceMicros: 500_000, Sort: 40},
	}
	if len(ms) != len(want) {
		t.Fatalf("%d models, want %d", len(ms), len(want))
	}
	for i := range want {
		if ms[i] != want[i] {
			t.Errorf("model %d = %+v, want %+v", i, ms[i], want[i])
		}
	}
	if m, err := store.ModelByID(context.Background(), "tt-embed-1"); err != nil || m.Kind != "embeddings" {
		t.Fatalf("ModelByID: %+v %v", m, err)
	}
	if _, err := store.ModelByID(context.Background(), "gpt-4"); !errors.Is(err, models.ErrNotFound) {
		t.Fatalf("unknown model: %v", err)
	}
}

func TestAPIKeyBySecret(t *testing.T) {
	store, _, acct := newKeyStore(t)
	ctx := context.Background()
	k, secret, err := store.CreateAPIKey(ctx, acct, ada, models.KeyInput{Name: "prod", Models: []string{"tt-chat-small"},
		AllowedIPs: "203.0.113.7", MonthlyLimitUSD: "25", RPM: "120"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(secret, "sk-tt-") || k.Prefix != secret[:10] || k.Last4 != secret[len(secret)-4:] {
		t.Fatalf("secret %q shown as %q", secret, k.Display())
	}
	keys, err := store.APIKeysOf(ctx, acct)
	if err != nil || len(keys) != 1 {
		t.Fatalf("%d keys (%v), want 1", len(keys), err)
	}
	if stored := keys[0].SecretHash; stored == secret || len(stored) != 64 || strings.Contains(stored, secret[6:]) ||
		strings.Contains(fmt.Sprintf("%+v", keys[0]), secret[6:]) {
		t.Fatalf("stored %+v: want only a SHA-256 of the secret", keys[0])
	}

	got, err := store.APIKeyBySecret(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || got.Status != "active" || got.RPM != 120 || *got.MonthlyLimitMicros != 25_000_000 ||
		!got.AllowsModel("tt-chat-small") || got.AllowsModel("tt-chat-large") ||
		!got.AllowsIP(netip.MustParseAddr("203.0.113.7")) || got.AllowsIP(netip.MustParseAddr("203.0.113.8")) {
		t.Fatalf("looked-up key %+v", got)
	}
	for _, bad := range []string{"", secret + "x", secret[:len(secret)-1], "sk-tt-" + strings.Repeat("a", 43), strings.Repeat("s", 10000)} {
		if _, err := store.APIKeyBySecret(ctx, bad); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("secret %.20q: %v, want ErrNotFound", bad, err)
		}
	}
	// The gateway gets disabled keys too, and decides.
	if _, err := store.SetAPIKeyStatus(ctx, acct, k.ID, ada, "disable"); err != nil {
		t.Fatal(err)
	}
	if got, err := store.APIKeyBySecret(ctx, secret); err != nil || got.Usable(time.Now()) == nil {
		t.Fatalf("disabled key: %+v %v", got, err)
	}
}

func TestTouchAPIKeyWritesAtMostOncePerMinute(t *testing.T) {
	store, _, acct := newKeyStore(t)
	ctx := context.Background()
	k, _, err := store.CreateAPIKey(ctx, acct, ada, models.KeyInput{Name: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	lastUsed := func() time.Time {
		k, err := store.APIKeyOf(ctx, acct, k.ID)
		if err != nil || k.LastUsedAt == nil {
			t.Fatalf("last used: %v %v", k, err)
		}
		return k.LastUsedAt.UTC()
	}
	t0 := time.Now().UTC().Truncate(time.Second)
	steps := []struct {
		at   time.Time
		want time.Time
	}{
		{t0, t0},
		{t0.Add(30 * time.Second), t0},
		{t0.Add(59 * time.Second), t0},
		{t0.Add(61 * time.Second), t0.Add(61 * time.Second)},
		{t0.Add(10 * time.Second), t0.Add(61 * time.Second)}, // never moves back
	}
	for i, s := range steps {
		if err := store.TouchAPIKey(ctx, k.ID, s.at); err != nil {
			t.Fatal(err)
		}
		if got := lastUsed(); !got.Equal(s.want) {
			t.Fatalf("step %d: last used %v, want %v", i, got, s.want)
		}
	}
	if err := store.TouchAPIKey(ctx, "key_missing", t0); err != nil {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestUpdateAPIKeyRecordsEachChange(t *testing.T) {
	store, _, acct := newKeyStore(t)
	ctx := context.Background()
	k, _, err := store.CreateAPIKey(ctx, acct, ada, models.KeyInput{Name: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	_, n, err := store.UpdateAPIKey(ctx, acct, k.ID, ada, models.KeyInput{Name: "prod", Models: []string{"tt-embed-1"},
		AllowedIPs: "10.0.0.0/8\n203.0.113.7", MonthlyLimitUSD: "12.5", RPM: "60"})
	if err != nil || n != 3 {
		t.Fatalf("update: %d changes, %v", n, err)
	}
	evs := keyEvents(t, store, acct, k.ID)
	got := map[string][2]string{}
	for _, e := range evs {
		field := e.Field
		if e.Action == models.AuditKeyCreated {
			field = "created"
		}
		got[field] = [2]string{e.Before, e.After}
		if e.Actor != "ada@example.com" || e.At.IsZero() {
			t.Errorf("event %+v", e)
		}
	}
	want := map[string][2]string{
		"created":       {"", k.Display()},
		"models":        {"all models", "tt-embed-1"},
		"allowed_ips":   {"any source", "10.0.0.0/8, 203.0.113.7/32"},
		"monthly_limit": {"no limit", "$12.50"},
	}
	if len(got) != len(want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	for f, w := range want {
		if got[f] != w {
			t.Errorf("%s: %v, want %v", f, got[f], w)
		}
	}
	// Bad input changes nothing and records nothing.
	before, _ := store.APIKeyOf(ctx, acct, k.ID)
	_, _, err = store.UpdateAPIKey(ctx, acct, k.ID, ada, models.KeyInput{Name: "renamed", AllowedIPs: "nope", RPM: "60"})
	if models.ErrorCode(err) != models.EINVALID {
		t.Fatalf("bad input: %v", err)
	}
	after, _ := store.APIKeyOf(ctx, acct, k.ID)
	if after.Name != before.Name || after.AllowedIPs != before.AllowedIPs {
		t.Fatal("bad input changed the key")
	}
	if evs2 := keyEvents(t, store, acct, k.ID); len(evs2) != len(evs) {
		t.Fatal("bad input recorded events")
	}
	// Clearing the limit writes NULL.
	if _, _, err := store.UpdateAPIKey(ctx, acct, k.ID, ada, models.KeyInput{Name: "prod", RPM: "60"}); err != nil {
		t.Fatal(err)
	}
	if k, _ := store.APIKeyOf(ctx, acct, k.ID); k.MonthlyLimitMicros != nil || k.Models != "" || k.AllowedIPs != "" {
		t.Fatalf("cleared settings: %+v", k)
	}
}

func TestAPIKeyStatusChanges(t *testing.T) {
	store, _, acct := newKeyStore(t)
	ctx := context.Background()
	k, _, err := store.CreateAPIKey(ctx, acct, ada, models.KeyInput{Name: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		action, want, conflict string
	}{
		{"enable", "", "already active"},
		{"disable", "disabled", ""},
		{"disable", "", "already disabled"},
		{"enable", "active", ""},
		{"revoke", "revoked", ""},
		{"enable", "", "revoking is final"},
		{"revoke", "", "revoking is final"},
	}
	for _, s := range steps {
		got, err := store.SetAPIKeyStatus(ctx, acct, k.ID, ada, s.action)
		if s.conflict != "" {
			if models.ErrorCode(err) != models.ECONFLICT || !strings.Contains(err.Error(), s.conflict) {
				t.Fatalf("%s: %v, want conflict %q", s.action, err, s.conflict)
			}
			continue
		}
		if err != nil || got.Status != s.want {
			t.Fatalf("%s: %+v %v", s.action, got, err)
		}
	}
	if _, _, err := store.UpdateAPIKey(ctx, acct, k.ID, ada, models.KeyInput{Name: "again", RPM: "60"}); models.ErrorCode(err) != models.ECONFLICT {
		t.Fatalf("editing a revoked key: %v", err)
	}
	evs := keyEvents(t, store, acct, k.ID)
	if len(evs) != 4 || evs[0].Field != "status" || evs[0].Before != "active" || evs[0].After != "revoked" ||
		evs[0].Action != models.AuditKeyRevoked || evs[1].Action != models.AuditKeyEnabled || evs[2].Action != models.AuditKeyDisabled {
		t.Fatalf("events: %+v", evs)
	}
}

func TestAnotherAccountsKeyIsNotFound(t *testing.T) {
	store, _, acct := newKeyStore(t)
	ctx := context.Background()
	eve, err := store.CreateAccount(ctx, "eve@example.com", "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	k, _, err := store.CreateAPIKey(ctx, acct, ada, models.KeyInput{Name: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	evil := models.Actor{Name: "eve@example.com"}
	if _, err := store.APIKeyOf(ctx, eve.AccountID, k.ID); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("APIKeyOf: %v", err)
	}
	// Not found comes first, even for input that would not validate.
	if _, _, err := store.UpdateAPIKey(ctx, eve.AccountID, k.ID, evil, models.KeyInput{Name: ""}); !errors.Is(err, models.ErrNotFound) {
		t.Errorf("UpdateAPIKey: %v", err)
	}
	for _, action := range []string{"disable", "enable", "revoke"} {
		if _, err := store.SetAPIKeyStatus(ctx, eve.AccountID, k.ID, evil, action); !errors.Is(err, models.ErrNotFound) {
			t.Errorf("%s: %v", action, err)
		}
	}
	if keys, _ := store.APIKeysOf(ctx, eve.AccountID); len(keys) != 0 {
		t.Errorf("eve sees %d keys", len(keys))
	}
	if evs := keyEvents(t, store, eve.AccountID, k.ID); len(evs) != 0 {
		t.Errorf("eve sees %d events", len(evs))
	}
}

func TestCreateAPIKeyOncePerForm(t *testing.T) {
	store, _, acct := newKeyStore(t)
	ctx := context.Background()
	in := models.KeyInput{Name: "prod", Nonce: "form-token-1"}
	k, _, err := store.CreateAPIKey(ctx, acct, ada, in)
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := store.CreateAPIKey(ctx, acct, ada, in)
	var again *models.KeyAlreadyCreatedError
	if !errors.As(err, &again) || again.KeyID != k.ID || secret != "" {
		t.Fatalf("second submit: %v %q", err, secret)
	}
	if keys, _ := store.APIKeysOf(ctx, acct); len(keys) != 1 {
		t.Fatalf("%d keys after a resubmit", len(keys))
	}
}

func TestCreateAPIKeyRateLimitBounds(t *testing.T) {
	store, _, acct := newKeyStore(t)
	ctx := context.Background()
	if _, _, err := store.CreateAPIKey(ctx, acct, ada, models.KeyInput{Name: "fast", RPM: "601"}); models.ErrorCode(err) != models.EINVALID {
		t.Fatalf("601 rpm from the console: %v", err)
	}
	k, _, err := store.CreateAPIKey(ctx, acct, models.AdminCLI, models.KeyInput{Name: "fast", RPM: "5000"})
	if err != nil || k.RPM != 5000 {
		t.Fatalf("5000 rpm from the admin cli: %v", err)
	}
	// The owner can still rename it without lowering the operator's rpm.
	if _, _, err := store.UpdateAPIKey(ctx, acct, k.ID, ada, models.KeyInput{Name: "faster", RPM: "5000"}); err != nil {
		t.Fatalf("rename keeping 5000 rpm: %v", err)
	}
	if keys, _ := store.APIKeysOf(ctx, acct); len(keys) != 1 {
		t.Fatalf("%d keys, want 1", len(keys))
	}
}

func TestKeyMonthUsage(t *testing.T) {
	store, db, acct := newKeyStore(t)
	ctx := context.Background()
	k, _, err := store.CreateAPIKey(ctx, acct, ada, models.KeyInput{Name: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2025, 12, 10, 12, 0, 0, 0, time.UTC)
	if spent, held, err := store.KeyMonthUsage(ctx, k.ID, now); err != nil || spent != 0 || held != 0 {
		t.Fatalf("no row: %d %d %v", spent, held, err)
	}
	for _, row := range []struct {
		month       string
		spent, held int64
	}{{"2025-12", 4_500_000, 250_000}, {"2025-11", 99_000_000, 0}} {
		// Months gone by: calls are only ever held in the current one.
		if err := db.Writer().Exec("INSERT INTO key_month_usage (key_id, month, spent_micros, held_micros) VALUES (?, ?, ?, ?)",
			k.ID, row.month, row.spent, row.held).Error; err != nil {
			t.Fatal(err)
		}
	}
	if spent, held, err := store.KeyMonthUsage(ctx, k.ID, now); err != nil || spent != 4_500_000 || held != 250_000 {
		t.Fatalf("December: %d %d %v", spent, held, err)
	}
	u, err := store.KeyMonthUsages(ctx, []string{k.ID, "key_other"}, now.AddDate(0, -1, 0))
	if err != nil || u[k.ID].SpentMicros != 99_000_000 || len(u) != 1 {
		t.Fatalf("November: %v %v", u, err)
	}
}

// keyEvents returns the audit log's entries about a key of an account,
// newest first.
func keyEvents(t *testing.T, store *models.Store, accountID, keyID string) []models.AuditEntry {
	t.Helper()
	evs, _, err := store.AuditLog(context.Background(), accountID, models.AuditFilter{Target: keyID}, 100)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

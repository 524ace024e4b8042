package models_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"testing"
	"time"

	"ttconsole/internal/seed"
	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// exportTricky are cell values an export must carry exactly: quoting,
// line ends, formula prefixes, leading spaces encoding/csv quotes, HTML,
// non-ASCII text.
var exportTricky = []string{
	"", "plain", "with, comma", `with "quotes"`, "two\nlines", "cr\ronly", "crlf\r\nend", "=1+2", "+1", "-1",
	"@SUM(A1)", "\tTAB", "\rCR first", " leading space", "\u00a0nbsp first", "\u3000ideographic space",
	"\u2028line separator", "\u0085next line", "\v vertical tab", "\f form feed", `\.`, `\.x`,
	`<b>html</b> & <script>alert("x")</script>`, "unicode ✓ 日本語 🙂", "trailing space ", "'already quoted",
}

// exportTrickyBytes are values only SQLite stores: a NUL inside, and bytes
// that are not UTF-8 (one that could pass for a space if misread).
var exportTrickyBytes = []string{"nul\x00inside", "\x85 lone continuation byte", "\xe2\x80\x80\x80 space then junk"}

func exportAccount(t *testing.T, s *models.Store, email string) (acct string, keys []*models.APIKey) {
	t.Helper()
	ctx := context.Background()
	u, err := s.CreateAccount(ctx, email, "long enough password")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"production", `=HYPERLINK("x"), "y"`, "日本 key"} {
		k, _, err := s.CreateAPIKey(ctx, u.AccountID, models.AdminCLI, models.KeyInput{Name: name})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	return u.AccountID, keys
}

// TestExportPackedRowsMatchTheDriver checks, on SQLite, that rows SQLite
// packs come out exactly as rows read through the driver, with quoting
// and formula cells on the packed path, and that rows in shapes only the
// driver reads (a NUL in a field, times written by hand, a flag stored as
// text) are read through it: the chunks holding them, and only those.
func TestExportPackedRowsMatchTheDriver(t *testing.T) {
	db := testenv.SQLiteDB(t) // packed rows are SQLite's path; TestExportTextOnEveryDatabase covers PostgreSQL
	s := models.NewStore(db)
	ctx := context.Background()
	acct, keys := exportAccount(t, s, "export@example.com")
	other, otherKeys := exportAccount(t, s, "other@example.com")
	now := time.Now().UTC()
	keyIDs := []string{keys[0].ID, keys[1].ID, keys[2].ID}
	if _, err := seed.Requests(ctx, s, acct, seed.Options{Requests: 2500, Span: 2 * time.Hour, Now: now, KeyIDs: keyIDs, Seed: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := seed.Requests(ctx, s, other, seed.Options{Requests: 300, Span: 2 * time.Hour, Now: now, KeyIDs: []string{otherKeys[0].ID}, Seed: 4}); err != nil {
		t.Fatal(err)
	}
	// Tricky text in every text column, an hour back: in the middle chunk
	// of three (1000 rows each), which must stay on the packed path.
	vals := append(slices.Clone(exportTricky), exportTrickyBytes[1:]...)
	mid := now.Add(-time.Hour)
	for i := range vals {
		v := func(k int) string { return vals[(i+k)%len(vals)] }
		r := models.Request{
			ID:        models.NewRequestIDAt(mid.Add(time.Duration(i) * time.Millisecond)),
			AccountID: &acct, Method: v(0), Path: v(1), Model: v(2), Status: 400 + i, ErrorType: v(3), ErrorMessage: v(4),
			ClientIP: v(5), BillingOutcome: v(6), ErrorBody: v(7), Stream: i%2 == 0, LatencyMS: int64(i), PromptTokens: i * 7,
			HoldMicros: int64(i) * 1_000_001, ChargedMicros: -int64(i), CreatedAt: mid.Add(time.Duration(i)*time.Millisecond + 123456789),
		}
		switch i % 4 {
		case 0: // no key
		case 1:
			r.KeyID = &keys[1].ID
		case 2:
			r.KeyID = &otherKeys[0].ID // another account's key: its id, no name
		case 3:
			empty := ""
			r.KeyID = &empty
		}
		if err := s.LogRequest(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	// Rows only the driver reads: one newer than every other (the first
	// chunk) and the rest older (the last chunk).
	odd := func(at time.Time, set, value string) {
		t.Helper()
		id := models.NewRequestIDAt(at)
		if err := db.Writer().Exec(`INSERT INTO requests (id, account_id, key_id, method, path, status, billing_outcome, created_at)
			VALUES (?, ?, ?, 'POST', '/v1/odd', 200, 'charged', ?)`, id, acct, keys[0].ID, at).Error; err != nil {
			t.Fatal(err)
		}
		if set != "" {
			if err := db.Writer().Exec("UPDATE requests SET "+set+" = ? WHERE id = ?", value, id).Error; err != nil {
				t.Fatal(err)
			}
		}
	}
	old := now.Add(-3 * time.Hour)
	odd(now.Add(time.Minute), "error_message", exportTrickyBytes[0])
	odd(old, "created_at", old.Format("2006-01-02T15:04:05Z"))
	odd(old.Add(-time.Second), "created_at", old.Add(-time.Second).In(time.FixedZone("", 2*3600)).Format("2006-01-02 15:04:05.999999999-07:00"))
	odd(old.Add(-2*time.Second), "created_at", "2026-11-25 10:00:00.1+00:00")
	odd(old.Add(-3*time.Second), "created_at", "2026-11-25 10:00:07+00:00")
	odd(old.Add(-4*time.Second), "stream", "true")
	if err := db.Writer().Exec("UPDATE requests SET created_at = 1764064800 WHERE id = (SELECT min(id) FROM requests WHERE account_id = ?)", acct).Error; err != nil {
		t.Fatal(err)
	}

	packed, slow, reread, err := s.ExportBothWays(ctx, acct, models.RequestFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if want := 2500 + len(vals) + 6; len(slow) != want {
		t.Fatalf("the driver read %d rows, want %d", len(slow), want)
	}
	if reread != 2 {
		t.Errorf("%d chunks read again through the driver, want 2 (the first and the last)", reread)
	}
	exportSame(t, packed, slow)
	if got := slow[len(slow)-1].CreatedAt; got != "2025-11-25T10:00:00.000Z" {
		t.Errorf("a time stored as a Unix time exports as %q", got)
	}

	// Every filter gives the same rows both ways.
	day := now.Add(-90 * time.Minute)
	for _, q := range []string{
		"status=4xx", "status=429", "status=5xx", "type=rate_limited", "key=" + keys[1].ID, "key=" + otherKeys[0].ID,
		"model=tt-chat-large", "outcome=not_charged_failed", "from=" + day.Format(time.RFC3339) + "&to=" + now.Format(time.RFC3339),
		"from=" + day.Format(time.RFC3339) + "&status=4xx&model=tt-chat-small", "to=" + day.Format(time.RFC3339),
	} {
		f, err := models.ParseRequestFilter(mustValues(q))
		if err != nil {
			t.Fatal(err)
		}
		packed, slow, _, err := s.ExportBothWays(ctx, acct, f)
		if err != nil {
			t.Fatal(err)
		}
		if len(slow) == 0 && q != "key="+otherKeys[0].ID {
			t.Errorf("%s: no rows", q)
		}
		exportSame(t, packed, slow)
	}
}

// TestExportStopsWhenTheWriterDoes stops an export part way, as a client
// that goes away does: the writer's error comes back, and no row after it.
func TestExportStopsWhenTheWriterDoes(t *testing.T) {
	s := models.NewStore(testenv.DB(t))
	ctx := context.Background()
	acct, keys := exportAccount(t, s, "export@example.com")
	if _, err := seed.Requests(ctx, s, acct, seed.Options{Requests: 5000, KeyIDs: []string{keys[0].ID}, Seed: 5}); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("client went away")
	n := 0
	err := s.EachRequestText(ctx, acct, models.RequestFilter{}, func(*models.RequestText) error {
		if n++; n == 1500 {
			return stop
		}
		return nil
	})
	if err != stop || n != 1500 {
		t.Fatalf("export went on to row %d after its writer stopped at 1500 (%v)", n, err)
	}
}

func exportSame(t *testing.T, packed, slow []models.RequestText) {
	t.Helper()
	if len(packed) != len(slow) {
		t.Fatalf("packed %d rows, driver %d", len(packed), len(slow))
	}
	for i := range slow {
		if packed[i] != slow[i] {
			t.Fatalf("row %d differs:\npacked %+q\ndriver %+q", i, packed[i], slow[i])
		}
	}
}

// TestExportTextOnEveryDatabase checks what an export row holds, on SQLite
// and on PostgreSQL alike.
func TestExportTextOnEveryDatabase(t *testing.T) {
	db := testenv.DB(t)
	s := models.NewStore(db)
	ctx := context.Background()
	acct, keys := exportAccount(t, s, "export@example.com")
	base := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	for i, v := range exportTricky {
		r := models.Request{
			ID:        models.NewRequestIDAt(base.Add(time.Duration(i) * time.Second)),
			AccountID: &acct, Method: "POST", Path: "/v1/chat/completions", Model: v, Status: 402, ErrorType: "billing_shortfall",
			ErrorMessage: v, ClientIP: "2001:db8::1", BillingOutcome: models.OutcomeNotChargedRejected, Stream: i%2 == 1,
			LatencyMS: 12, PromptTokens: 3, CompletionTokens: 4, HoldMicros: 24_600, ChargedMicros: 0,
			CreatedAt: base.Add(time.Duration(i)*time.Second + time.Duration(i)*1_001_000), // whole microseconds: PostgreSQL keeps those
		}
		if i%2 == 0 {
			r.KeyID = &keys[1].ID
		}
		if err := s.LogRequest(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	var got []models.RequestText
	if err := s.EachRequestText(ctx, acct, models.RequestFilter{}, func(r *models.RequestText) error {
		got = append(got, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(exportTricky) {
		t.Fatalf("%d rows, want %d", len(got), len(exportTricky))
	}
	for j, r := range got {
		i := len(exportTricky) - 1 - j // newest first
		want := models.RequestText{
			ID: r.ID, CreatedAt: "2026-11-25T10:00:" + twoDigits(i) + "." + threeDigits(i) + "Z", Method: "POST",
			Path: "/v1/chat/completions", Model: exportTricky[i], Status: "402", ErrorType: "billing_shortfall",
			ErrorMessage: exportTricky[i], ClientIP: "2001:db8::1", Stream: strconv.FormatBool(i%2 == 1), LatencyMS: "12",
			PromptTokens: "3", CompletionTokens: "4", HoldMicros: "24600", ChargedMicros: "0",
			BillingOutcome: models.OutcomeNotChargedRejected,
		}
		if i%2 == 0 {
			want.KeyID, want.KeyName = keys[1].ID, `=HYPERLINK("x"), "y"`
		}
		if r != want {
			t.Errorf("row %d:\n got %+q\nwant %+q", i, r, want)
		}
	}
}

func mustValues(q string) url.Values {
	v, _ := url.ParseQuery(q)
	return v
}

func twoDigits(i int) string   { return strconv.Itoa(100 + i)[1:] }
func threeDigits(i int) string { return strconv.Itoa(1000 + i)[1:] }

package models_test

import (
	"context"
	"math/rand"
	"slices"
	"testing"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/pressly/goose/v3"

	"ttconsole/internal/testenv"
	"ttconsole/migrations"
	"ttconsole/models"
)

// TestRequestLogKeepsItsOrderThroughVersion9 migrates a request log
// written with the old ids (random bits where new ids count, several in
// one millisecond, inserted out of order) to version 9, which on SQLite
// orders the log by seq: the Requests page still lists it newest first in
// id order, page after page; new calls come before it; and on SQLite the
// way back restores the table as it was.
func TestRequestLogKeepsItsOrderThroughVersion9(t *testing.T) {
	db, p := migratedTo(t, 8)
	ctx := context.Background()

	rng := rand.New(rand.NewSource(9))
	entropy := ulid.Monotonic(rng, 0)
	base := time.Now().Add(-time.Hour).UTC()
	var ids []string
	for ms := range 12 {
		at := base.Add(time.Duration(ms*ms) * time.Millisecond)
		for range 1 + ms%4 { // up to four in one millisecond
			ids = append(ids, "req_"+ulid.MustNew(ulid.Timestamp(at), entropy).String())
		}
	}
	if err := db.W.Exec(`INSERT INTO accounts (id, name, created_at) VALUES ('acct_1', 'one', ?)`, base).Error; err != nil {
		t.Fatal(err)
	}
	insert := slices.Clone(ids)
	rng.Shuffle(len(insert), func(i, j int) { insert[i], insert[j] = insert[j], insert[i] })
	for _, id := range insert {
		if err := db.W.Exec(`INSERT INTO requests (id, account_id, method, path, model, status, billing_outcome, created_at)
			VALUES (?, 'acct_1', 'POST', '/v1/chat/completions', 'tt-chat-small', 200, 'charged', ?)`, id, base).Error; err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(ids)
	slices.Reverse(ids) // newest first

	if _, err := p.Up(ctx); err != nil { // through 9, and 10, which the Requests page reads with
		t.Fatal(err)
	}
	s := models.NewStore(db)
	pages := func() []string { return listedIDs(t, s, "acct_1", 5) }
	if got := pages(); !slices.Equal(got, ids) {
		t.Fatalf("after version 9 the log lists\n%v\nwant, newest first,\n%v", got, ids)
	}

	acct := "acct_1"
	fresh := &models.Request{ID: models.NewRequestID(), AccountID: &acct, Method: "POST", Path: "/v1/embeddings",
		Status: 200, BillingOutcome: models.OutcomeCharged, CreatedAt: time.Now().UTC()}
	if err := s.LogRequest(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if got := pages(); len(got) != len(ids)+1 || got[0] != fresh.ID || !slices.Equal(got[1:], ids) {
		t.Fatalf("a new call: the log lists %v, want %s first and then the rest as before", got, fresh.ID)
	}

	if db.Postgres {
		return // version 9 changes nothing there
	}
	if _, err := p.DownTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	var back []string
	if err := db.W.Raw("SELECT id FROM requests ORDER BY id DESC").Scan(&back).Error; err != nil {
		t.Fatal(err)
	}
	if want := append([]string{fresh.ID}, ids...); !slices.Equal(back, want) {
		t.Fatalf("after the way back the table holds %v, want %v", back, want)
	}
	var pk int
	if err := db.W.Raw("SELECT pk FROM pragma_table_info('requests') WHERE name = 'id'").Scan(&pk).Error; err != nil || pk != 1 {
		t.Fatalf("after the way back id is not the primary key again (pk %d, %v)", pk, err)
	}
}

// migratedTo opens an empty database with every migration up to version
// applied, and the goose provider that applied them.
func migratedTo(t *testing.T, version int64) (*models.DB, *goose.Provider) {
	t.Helper()
	path, dbURL := testenv.EmptyDB(t)
	db, err := models.Open(path, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	dialect := goose.DialectSQLite3
	if db.Postgres {
		dialect = goose.DialectPostgres
	}
	p, err := goose.NewProvider(dialect, db.SQL(), migrations.FS, goose.WithGoMigrations(migrations.Go(db.Postgres)...))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(context.Background(), version); err != nil {
		t.Fatal(err)
	}
	return db, p
}

// listedIDs follows an account's Requests list, unfiltered, limit a page,
// and returns the ids it shows in order.
func listedIDs(t *testing.T, s *models.Store, accountID string, limit int) []string {
	t.Helper()
	return listedWith(t, s, accountID, models.RequestFilter{}, limit)
}

// listedWith is listedIDs with a filter.
func listedWith(t *testing.T, s *models.Store, accountID string, f models.RequestFilter, limit int) []string {
	t.Helper()
	var ids []string
	cursor := ""
	for {
		page, err := s.ListRequests(context.Background(), accountID, f, cursor, limit)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Rows {
			ids = append(ids, r.ID)
		}
		if cursor = page.Next; cursor == "" {
			return ids
		}
	}
}

// TestRequestsByAccountNumberThroughVersion10 migrates the request log of
// two accounts with a key each, and a call whose caller was never
// identified, to version 10, which on SQLite keys the request indexes by
// numbers for the account and the key: each account's pages, unfiltered
// and by key, list its own requests and no other's, before and after new
// calls; an account or key made afterwards gets a number none carries;
// rows written without numbers are numbered at the next start; and the
// way back restores the indexes by account and key id.
func TestRequestsByAccountNumberThroughVersion10(t *testing.T) {
	db, p := migratedTo(t, 9)
	ctx := context.Background()
	now := time.Now().UTC()
	a, b := "acct_a", "acct_b"
	keyOf := map[string]string{a: "key_a", b: "key_b"}
	for _, acct := range []string{b, a} {
		if err := db.W.Exec(`INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)`, acct, acct, now).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.W.Exec(`INSERT INTO api_keys (id, account_id, name, secret_hash, prefix, last4, created_at)
			VALUES (?, ?, ?, ?, 'sk-tt-', 'abcd', ?)`, keyOf[acct], acct, keyOf[acct], keyOf[acct], now).Error; err != nil {
			t.Fatal(err)
		}
	}
	s := models.NewStore(db)
	want := map[string][]string{} // by account, and by key: newest first
	logged := func(acct, key *string, id string) {
		if acct != nil {
			want[*acct] = append([]string{id}, want[*acct]...)
		}
		if key != nil {
			want[*key] = append([]string{id}, want[*key]...)
		}
	}
	logCall := func(acct, key *string) string {
		t.Helper()
		r := &models.Request{ID: models.NewRequestID(), AccountID: acct, KeyID: key, Method: "POST",
			Path: "/v1/chat/completions", Status: 200, BillingOutcome: models.OutcomeCharged, CreatedAt: time.Now().UTC()}
		if err := s.LogRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		logged(acct, key, r.ID)
		return r.ID
	}
	insertOld := func(acct, key *string) { // as a binary from before version 10 writes it
		t.Helper()
		id := models.NewRequestID()
		if err := db.W.Exec(`INSERT INTO requests (id, account_id, key_id, method, path, status, billing_outcome, created_at)
			VALUES (?, ?, ?, 'POST', '/v1/chat/completions', 401, 'not_charged_rejected', ?)`, id, acct, key, now).Error; err != nil {
			t.Fatal(err)
		}
		logged(acct, key, id)
	}
	ka, kb := keyOf[a], keyOf[b]
	for i := range 9 {
		switch i % 3 {
		case 0:
			insertOld(&a, []*string{&ka, nil}[i%2])
		case 1:
			insertOld(&b, []*string{&kb, nil}[i%2])
		default:
			insertOld(nil, nil)
		}
	}

	if _, err := p.UpTo(ctx, 10); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		for acct, other := range map[string]string{a: b, b: a} {
			if got := listedWith(t, s, acct, models.RequestFilter{}, 2); !slices.Equal(got, want[acct]) {
				t.Fatalf("%s, %s lists %v, want %v", when, acct, got, want[acct])
			}
			key := keyOf[acct]
			if got := listedWith(t, s, acct, models.RequestFilter{KeyID: key}, 2); !slices.Equal(got, want[key]) {
				t.Fatalf("%s, %s lists %v for its key, want %v", when, acct, got, want[key])
			}
			if got := listedWith(t, s, acct, models.RequestFilter{KeyID: keyOf[other]}, 2); len(got) != 0 {
				t.Fatalf("%s, %s lists %v for another account's key, want nothing", when, acct, got)
			}
		}
	}
	check("after version 10")
	logCall(&a, &ka)
	logCall(&b, nil)
	logCall(nil, nil)
	logCall(&a, nil)
	logCall(&b, &kb)
	check("after new calls")

	if db.Postgres {
		return // version 10 changes nothing there
	}
	for _, table := range []string{"accounts", "api_keys"} {
		var nums []int64
		if err := db.W.Raw("SELECT num FROM " + table + " ORDER BY num").Scan(&nums).Error; err != nil ||
			len(nums) != 2 || nums[0] == nums[1] || nums[0] < 1 {
			t.Fatalf("the numbers of %s: %v, %v", table, nums, err)
		}
	}
	// A number a request row carries is never given again, even with its
	// account gone from the accounts table.
	if err := db.W.Exec("UPDATE requests SET account_num = 40 WHERE account_id IS NULL").Error; err != nil {
		t.Fatal(err)
	}
	if _, err := p.Up(ctx); err != nil { // the versions after 10, which today's accounts need
		t.Fatal(err)
	}
	lateAcct := newAccount(t, s, "late@example.com")
	k, _, err := s.CreateAPIKey(ctx, lateAcct, models.AdminCLI, models.KeyInput{Name: "late"})
	if err != nil {
		t.Fatal(err)
	}
	var num, knum int64
	if err := db.W.Raw("SELECT num FROM accounts WHERE id = ?", lateAcct).Scan(&num).Error; err != nil || num != 41 {
		t.Fatalf("an account made after a request row numbered 40: number %d, %v; want 41", num, err)
	}
	if err := db.W.Raw("SELECT num FROM api_keys WHERE id = ?", k.ID).Scan(&knum).Error; err != nil || knum != 3 {
		t.Fatalf("the third key: number %d, %v; want 3", knum, err)
	}
	if got := listedWith(t, s, lateAcct, models.RequestFilter{}, 5); len(got) != 0 {
		t.Fatalf("a new account lists %v, want nothing", got)
	}
	late := logCall(&lateAcct, &k.ID)
	if got := listedWith(t, s, lateAcct, models.RequestFilter{KeyID: k.ID}, 5); !slices.Equal(got, []string{late}) {
		t.Fatalf("a new account's call: its key lists %v, want %s", got, late)
	}

	// Rows written without the numbers are numbered at the next start.
	insertOld(&b, &kb)
	if got := listedWith(t, s, b, models.RequestFilter{}, 5); slices.Equal(got, want[b]) {
		t.Fatal("a row without its account's number is listed before the start that numbers it")
	}
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	check("after a start")

	if _, err := p.DownTo(ctx, 9); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		index string
		seqno int
		want  string
	}{{"requests_account_model", 0, "account_id"}, {"requests_account_key", 1, "key_id"}} {
		var col string
		if err := db.W.Raw("SELECT name FROM pragma_index_info(?) WHERE seqno = ?", c.index, c.seqno).Scan(&col).Error; err != nil ||
			col != c.want {
			t.Fatalf("after the way back column %d of %s is %q (%v), want %s", c.seqno, c.index, col, err, c.want)
		}
	}
	var cols int
	if err := db.W.Raw(`SELECT count(*) FROM pragma_table_info('requests') WHERE name IN ('account_num', 'key_num')`).
		Scan(&cols).Error; err != nil || cols != 0 {
		t.Fatalf("after the way back requests still has %d of its numbers (%v)", cols, err)
	}
}

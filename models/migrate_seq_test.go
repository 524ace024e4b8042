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
	if err := db.Writer().Exec(`INSERT INTO accounts (id, name, created_at) VALUES ('acct_1', 'one', ?)`, base).Error; err != nil {
		t.Fatal(err)
	}
	insert := slices.Clone(ids)
	rng.Shuffle(len(insert), func(i, j int) { insert[i], insert[j] = insert[j], insert[i] })
	for _, id := range insert {
		if err := db.Writer().Exec(`INSERT INTO requests (id, account_id, method, path, model, status, billing_outcome, created_at)
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
	fresh := &models.Request{ID: s.NewRequestID(), AccountID: &acct, Method: "POST", Path: "/v1/embeddings",
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
	if err := db.Writer().Raw("SELECT id FROM requests ORDER BY id DESC").Scan(&back).Error; err != nil {
		t.Fatal(err)
	}
	if want := append([]string{fresh.ID}, ids...); !slices.Equal(back, want) {
		t.Fatalf("after the way back the table holds %v, want %v", back, want)
	}
	var pk int
	if err := db.Writer().Raw("SELECT pk FROM pragma_table_info('requests') WHERE name = 'id'").Scan(&pk).Error; err != nil || pk != 1 {
		t.Fatalf("after the way back id is not the primary key again (pk %d, %v)", pk, err)
	}
}

// migratedTo opens an empty database with every migration up to version
// applied, and the goose provider that applied them.
func migratedTo(t *testing.T, version int64, opts ...goose.ProviderOption) (*models.DB, *goose.Provider) {
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
	p, err := goose.NewProvider(dialect, db.SQL(), migrations.FS, append(opts, goose.WithGoMigrations(migrations.Go(db.Postgres)...))...)
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

// TestRequestLogTakesOneSchemaAtVersion13 writes the request log of two
// accounts with a key each, and calls whose caller was never identified,
// as the binaries before version 13 wrote it (on SQLite: by place, with
// the account's and key's numbers), then migrates: every row is kept; each
// account's pages, unfiltered and by key, list its own requests and no
// other's, before and after new calls; on SQLite the table is keyed by id
// and its indexes end with it, as on PostgreSQL, with no place and no
// numbers left; and the way back restores them.
func TestRequestLogTakesOneSchemaAtVersion13(t *testing.T) {
	db, p := migratedTo(t, 12)
	ctx := context.Background()
	now := time.Now().UTC()
	a, b := "acct_a", "acct_b"
	keyOf := map[string]string{a: "key_a", b: "key_b"}
	for _, acct := range []string{b, a} {
		if err := db.Writer().Exec(`INSERT INTO accounts (id, name, created_at) VALUES (?, ?, ?)`, acct, acct, now).Error; err != nil {
			t.Fatal(err)
		}
		if err := db.Writer().Exec(`INSERT INTO api_keys (id, account_id, name, secret_hash, prefix, last4, created_at)
			VALUES (?, ?, ?, ?, 'sk-tt-', 'abcd', ?)`, keyOf[acct], acct, keyOf[acct], keyOf[acct], now).Error; err != nil {
			t.Fatal(err)
		}
	}
	want := map[string][]string{} // by account, and by key: newest first
	var all []string              // every row, newest first
	logged := func(acct, key *string, id string) {
		all = append([]string{id}, all...)
		if acct != nil {
			want[*acct] = append([]string{id}, want[*acct]...)
		}
		if key != nil {
			want[*key] = append([]string{id}, want[*key]...)
		}
	}
	insertOld := func(acct, key *string, at time.Time) {
		t.Helper()
		id := models.NewRequestIDAt(at)
		insert := `INSERT INTO requests (id, account_id, key_id, method, path, status, billing_outcome, created_at)
			VALUES (?, ?, ?, 'POST', '/v1/chat/completions', 401, 'not_charged_rejected', ?)`
		args := []any{id, acct, key, at}
		if !db.Postgres {
			u := ulid.MustParse(id[len("req_"):])
			seq := int64(u.Time()<<16 | uint64(u[6])<<8 | uint64(u[7]))
			insert = `INSERT INTO requests (seq, id, account_id, key_id, method, path, status, billing_outcome, created_at,
				account_num, key_num) VALUES (?1, ?2, ?3, ?4, 'POST', '/v1/chat/completions', 401, 'not_charged_rejected', ?5,
				(SELECT num FROM accounts WHERE id = ?3), (SELECT num FROM api_keys WHERE id = ?4))`
			args = append([]any{seq}, args...)
		}
		if err := db.Writer().Exec(insert, args...).Error; err != nil {
			t.Fatal(err)
		}
		logged(acct, key, id)
	}
	ka, kb := keyOf[a], keyOf[b]
	for i := range 9 {
		at := now.Add(time.Duration(i-20) * time.Second)
		switch i % 3 {
		case 0:
			insertOld(&a, []*string{&ka, nil}[i%2], at)
		case 1:
			insertOld(&b, []*string{&kb, nil}[i%2], at)
		default:
			insertOld(nil, nil, at)
		}
	}

	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	s := models.NewStore(db)
	check := func(when string) {
		t.Helper()
		var ids []string
		if err := db.Writer().Raw("SELECT id FROM requests ORDER BY id DESC").Scan(&ids).Error; err != nil || !slices.Equal(ids, all) {
			t.Fatalf("%s the log holds %v (%v), want %v", when, ids, err, all)
		}
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
	check("after version 13")
	for _, c := range []struct{ acct, key *string }{{&a, &ka}, {&b, nil}, {nil, nil}, {&a, nil}, {&b, &kb}} {
		r := &models.Request{ID: s.NewRequestID(), AccountID: c.acct, KeyID: c.key, Method: "POST",
			Path: "/v1/chat/completions", Status: 200, BillingOutcome: models.OutcomeCharged, CreatedAt: time.Now().UTC()}
		if err := s.LogRequest(ctx, r); err != nil {
			t.Fatal(err)
		}
		logged(c.acct, c.key, r.ID)
	}
	check("after new calls")

	// The same columns and indexes as on PostgreSQL.
	var cols []string
	if err := db.Writer().Raw(`SELECT column_name FROM information_schema.columns WHERE table_name = 'requests' ORDER BY ordinal_position`).
		Scan(&cols).Error; db.Postgres && err != nil {
		t.Fatal(err)
	}
	if !db.Postgres {
		if err := db.Writer().Raw(`SELECT name FROM pragma_table_info('requests') ORDER BY cid`).Scan(&cols).Error; err != nil {
			t.Fatal(err)
		}
	}
	if slices.Contains(cols, "seq") || slices.Contains(cols, "account_num") || slices.Contains(cols, "key_num") || cols[0] != "id" {
		t.Fatalf("the request log's columns are %v, want id first and no seq, account_num or key_num", cols)
	}
	if db.Postgres {
		return // version 13 changes nothing there
	}
	var pk int
	if err := db.Writer().Raw("SELECT pk FROM pragma_table_info('requests') WHERE name = 'id'").Scan(&pk).Error; err != nil || pk != 1 {
		t.Fatalf("id is not the request log's primary key (pk %d, %v)", pk, err)
	}
	for index, wantCols := range map[string][]string{
		"requests_account": {"account_id", "id"}, "requests_account_model": {"account_id", "model", "id"},
		"requests_account_key": {"account_id", "key_id", "id"}, "requests_account_outcome": {"account_id", "billing_outcome", "id"},
	} {
		var got []string
		if err := db.Writer().Raw("SELECT name FROM pragma_index_info(?) ORDER BY seqno", index).Scan(&got).Error; err != nil ||
			!slices.Equal(got, wantCols) {
			t.Fatalf("index %s is on %v (%v), want %v", index, got, err, wantCols)
		}
	}
	for _, table := range []string{"accounts", "api_keys"} {
		var n int
		if err := db.Writer().Raw("SELECT count(*) FROM pragma_table_info(?) WHERE name = 'num'", table).Scan(&n).Error; err != nil || n != 0 {
			t.Fatalf("%s still has its number (%v)", table, err)
		}
	}

	if _, err := p.DownTo(ctx, 12); err != nil {
		t.Fatal(err)
	}
	var bySeq []string
	if err := db.Writer().Raw("SELECT id FROM requests WHERE account_num = (SELECT num FROM accounts WHERE id = ?) ORDER BY seq DESC", a).
		Scan(&bySeq).Error; err != nil || !slices.Equal(bySeq, want[a]) {
		t.Fatalf("after the way back %s's rows by place are %v (%v), want %v", a, bySeq, err, want[a])
	}
}

// TestRefusedHoldsFilledAtVersion14 writes 402s as the binaries before
// version 14 did, their needed hold stated only in their message, and
// migrates: each refused call's row then holds the amount its message
// states, and every other row none.
func TestRefusedHoldsFilledAtVersion14(t *testing.T) {
	db, p := migratedTo(t, 13)
	ctx := context.Background()
	now := time.Now().UTC()
	if err := db.Writer().Exec(`INSERT INTO accounts (id, name, created_at) VALUES ('acct_1', 'one', ?)`, now).Error; err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{}
	for i, c := range []struct {
		status  int
		typ     string
		message string
		refused int64
	}{
		{402, "billing_shortfall", "This call needs a hold of $0.0246 but the wallet's available balance is $0.01: recharge at least $0.0146.", 24_600},
		{402, "api_key_quota_exceeded", "This key's monthly limit is $2,000; month-to-date spend and open holds are $1,999, and this call needs a hold of $1,234.5.", 1_234_500_000},
		{402, "billing_shortfall", "A message that states no amount.", 0},
		{400, "invalid_request", "max_tokens: this call needs a hold of $3 is not a 402", 0},
		{200, "", "", 0},
	} {
		id := models.NewRequestIDAt(now.Add(time.Duration(i) * time.Second))
		if err := db.Writer().Exec(`INSERT INTO requests (id, account_id, method, path, status, error_type, error_message,
			billing_outcome, created_at) VALUES (?, 'acct_1', 'POST', '/v1/chat/completions', ?, ?, ?, 'not_charged_rejected', ?)`,
			id, c.status, c.typ, c.message, now).Error; err != nil {
			t.Fatal(err)
		}
		want[id] = c.refused
	}
	if _, err := p.Up(ctx); err != nil {
		t.Fatal(err)
	}
	s := models.NewStore(db)
	for id, refused := range want {
		r, err := s.RequestOf(ctx, "acct_1", id)
		if err != nil || r.RefusedHoldMicros != refused {
			t.Fatalf("request %s (%q): refused hold %d, %v; want %d", id, r.ErrorMessage, r.RefusedHoldMicros, err, refused)
		}
	}
}

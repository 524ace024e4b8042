package models_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"ttconsole/internal/seed"
	"ttconsole/internal/testenv"
	"ttconsole/migrations"
	"ttconsole/models"
)

// TestRequestPartitionsAreMadeAheadOnce runs the server's partition upkeep
// from several instances at once, for a month whose calls already arrived
// (they went to the default partition, as does a call dated decades
// ahead): each call stays found, its month's page lists it, every
// instance succeeds, and on PostgreSQL each partition is made once and
// the month's calls move into it.
func TestRequestPartitionsAreMadeAheadOnce(t *testing.T) {
	ctx := context.Background()
	path, dbURL := testenv.EmptyDB(t)
	stores := make([]*models.Store, 3)
	for i := range stores {
		db, err := models.Open(path, dbURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		if _, err := db.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		stores[i] = models.NewStore(db)
	}
	s := stores[0]
	a := testenv.FundedKey(t, s, "ahead@example.com", models.MicrosPerUSD, models.KeyInput{Name: "k"})
	acct, key := a.ID, a.Key.ID
	later := migrations.RequestPartitionOf(time.Now()).Month.AddDate(0, 6, 0) // beyond the months made at start
	early := logAt(t, s, acct, key, later.Add(36*time.Hour))
	far := logAt(t, s, acct, key, time.Now().AddDate(40, 0, 0))

	var wg sync.WaitGroup
	made := make([][]string, 2*len(stores))
	errs := make([]error, len(made))
	for i := range made {
		wg.Add(1)
		go func() {
			defer wg.Done()
			made[i], errs[i] = stores[i%len(stores)].EnsureRequestPartitions(ctx, later)
		}()
	}
	wg.Wait()
	var all []string
	for i := range made {
		if errs[i] != nil {
			t.Fatalf("instance %d: %v", i%len(stores), errs[i])
		}
		all = append(all, made[i]...)
	}
	slices.Sort(all)
	var want []string
	if s.DB().Postgres {
		for _, p := range migrations.AheadMonths(later) {
			want = append(want, p.Name())
		}
	}
	if !slices.Equal(all, want) {
		t.Fatalf("partitions made %v, want each of %v once", all, want)
	}

	month := models.RequestFilter{From: later, To: later.AddDate(0, 1, 0)}
	if got := listedWith(t, s, acct, month, 10); !slices.Equal(got, []string{early}) {
		t.Fatalf("the month's page lists %v, want %s", got, early)
	}
	for _, id := range []string{early, far} {
		if _, err := stores[1].RequestOf(ctx, acct, id); err != nil {
			t.Fatalf("request %s: %v", id, err)
		}
	}
	if s.DB().Postgres {
		if got := partitionOf(t, s.DB(), early); got != migrations.RequestPartitionOf(later).Name() {
			t.Fatalf("the month's call is in %s after its partition was made", got)
		}
		if got := partitionOf(t, s.DB(), far); got != migrations.RequestsDefaultPartition {
			t.Fatalf("the call dated decades ahead is in %s", got)
		}
	}
	// Nothing is left to make.
	if again, err := stores[2].EnsureRequestPartitions(ctx, later); err != nil || len(again) != 0 {
		t.Fatalf("a second round made %v, %v", again, err)
	}
}

// TestRequestsLandInTheirMonth logs calls of the months before this one
// (their partitions made as the server's upkeep makes them), runs one now
// through its hold, and logs one dated decades ahead: on PostgreSQL each
// lives in its month's partition, the far one in the default partition.
// It runs on PostgreSQL whatever the pass: SQLite's log is one table.
func TestRequestsLandInTheirMonth(t *testing.T) {
	ctx := context.Background()
	db := testenv.PostgresDB(t)
	s := models.NewStore(db)
	m0 := migrations.RequestPartitionOf(time.Now()).Month
	if _, err := s.EnsureRequestPartitions(ctx, m0.AddDate(0, -3, 0)); err != nil {
		t.Fatal(err)
	}
	a := testenv.FundedKey(t, s, "months@example.com", models.MicrosPerUSD, models.KeyInput{Name: "k"})
	now, _, _ := callAt(t, s, a.ID, a.Key.ID, time.Now(), false)
	for id, want := range map[string]string{
		logAt(t, s, a.ID, a.Key.ID, m0.AddDate(0, -1, 0)): migrations.RequestPartitionOf(m0.AddDate(0, -1, 0)).Name(),
		logAt(t, s, a.ID, a.Key.ID, m0.AddDate(0, 0, -1)): migrations.RequestPartitionOf(m0.AddDate(0, -1, 0)).Name(),
		logAt(t, s, a.ID, a.Key.ID, m0.AddDate(0, -3, 2)): migrations.RequestPartitionOf(m0.AddDate(0, -3, 0)).Name(),
		now: migrations.RequestPartitionOf(m0).Name(),
		logAt(t, s, a.ID, a.Key.ID, time.Now().AddDate(30, 0, 0)): migrations.RequestsDefaultPartition,
	} {
		if got := partitionOf(t, db, id); got != want {
			t.Errorf("request %s is in %q, want %s", id, got, want)
		}
	}
}

// TestRequestLookupsReadOneMonth checks that each statement that finds a
// request by its id, the money path's among them, reads one partition on
// PostgreSQL: its month's, or the default partition for an id of no
// month. It checks the generic plan, the one a statement gets once it is
// prepared and cached, where the id is known only when it runs. On SQLite
// each is one search of the id's index.
func TestRequestLookupsReadOneMonth(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	s := models.NewStore(db)
	m0 := migrations.RequestPartitionOf(time.Now()).Month
	if _, err := s.EnsureRequestPartitions(ctx, m0.AddDate(0, -3, 0)); err != nil {
		t.Fatal(err)
	}
	stmts := models.RequestByIDStatements()
	stmts["detail"] = [2]string{`SELECT * FROM requests WHERE id = ? AND account_id = ? LIMIT 1`,
		`SELECT * FROM requests WHERE id = $1 AND account_id = $2 LIMIT 1`}
	lastMonth := models.NewRequestIDAt(m0.AddDate(0, -1, 5))
	if !db.Postgres {
		for name, q := range stmts {
			var plan []string
			rows, err := db.SQL().QueryContext(ctx, "EXPLAIN QUERY PLAN "+q[0], make([]any, strings.Count(q[0], "?"))...)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for rows.Next() {
				var id, parent, unused int
				var detail string
				rows.Scan(&id, &parent, &unused, &detail)
				plan = append(plan, detail)
			}
			rows.Close()
			if len(plan) != 1 || !strings.HasPrefix(plan[0], "SEARCH requests USING ") || !strings.Contains(plan[0], "(id=?)") {
				t.Errorf("%s: plan %q, want one search by id", name, plan)
			}
		}
		return
	}
	conn, err := db.SQL().Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET plan_cache_mode = force_generic_plan"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ id, partition string }{
		{lastMonth, migrations.RequestPartitionOf(m0.AddDate(0, -1, 0)).Name()},
		{models.NewRequestIDAt(m0.AddDate(30, 0, 0)), migrations.RequestsDefaultPartition},
	} {
		for name, q := range stmts {
			if _, err := conn.ExecContext(ctx, "PREPARE lookup AS "+q[1]); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var types []string
			if err := conn.QueryRowContext(ctx, `SELECT parameter_types::text[] FROM pg_prepared_statements
				WHERE name = 'lookup'`).Scan(pgTextArray(&types)); err != nil {
				t.Fatal(err)
			}
			args := make([]string, len(types))
			for i, typ := range types {
				switch {
				case typ == "text":
					args[i] = "'" + tc.id + "'"
				case strings.HasPrefix(typ, "timestamp"):
					args[i] = "'2026-01-01'"
				default:
					args[i] = "'0'"
				}
			}
			rows, err := conn.QueryContext(ctx, "EXPLAIN (COSTS OFF) EXECUTE lookup("+strings.Join(args, ", ")+")")
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			var plan, scans []string
			for rows.Next() {
				var line string
				rows.Scan(&line)
				plan = append(plan, line)
				if strings.Contains(line, "Scan") && strings.Contains(line, " on requests") {
					scans = append(scans, line)
				}
			}
			rows.Close()
			conn.ExecContext(ctx, "DEALLOCATE lookup")
			if len(scans) != 1 || !strings.Contains(scans[0], " on "+tc.partition+" ") {
				t.Errorf("%s of %s: want one scan, of %s; plan:\n%s", name, tc.id, tc.partition, strings.Join(plan, "\n"))
			}
		}
	}
}

// pgTextArray scans a PostgreSQL text[] in its text form ({a,b,"c d"}).
func pgTextArray(dst *[]string) any { return &textArray{dst} }

type textArray struct{ dst *[]string }

func (a *textArray) Scan(src any) error {
	var s string
	switch v := src.(type) {
	case string:
		s = v
	case []byte:
		s = string(v)
	}
	s = strings.Trim(s, "{}")
	*a.dst = nil
	if s == "" {
		return nil
	}
	for _, part := range strings.Split(s, ",") {
		*a.dst = append(*a.dst, strings.Trim(part, `"`))
	}
	return nil
}

// TestSeededHistoryFillsItsMonths seeds four months of history: the
// Requests page lists all of it, and on PostgreSQL every row is in its
// month's partition, none in the default one.
func TestSeededHistoryFillsItsMonths(t *testing.T) {
	ctx := context.Background()
	db := testenv.DB(t)
	s := models.NewStore(db)
	a := testenv.FundedKey(t, s, "seeded-months@example.com", models.MicrosPerUSD, models.KeyInput{Name: "k"})
	acct, key := a.ID, a.Key.ID
	const n = 400
	if got, err := seed.Requests(ctx, s, acct, seed.Options{Requests: n, Span: 120 * 24 * time.Hour,
		KeyIDs: []string{key}, Seed: 7}); err != nil || got != n {
		t.Fatalf("seeded %d, %v", got, err)
	}
	if listed := listedIDs(t, s, acct, 100); len(listed) != n {
		t.Fatalf("the page lists %d requests, want %d", len(listed), n)
	}
	if !db.Postgres {
		return
	}
	var inDefault, months int64
	db.Writer().Raw("SELECT count(*) FROM " + migrations.RequestsDefaultPartition).Scan(&inDefault)
	db.Writer().Raw("SELECT count(DISTINCT tableoid) FROM requests").Scan(&months)
	if inDefault != 0 || months < 4 {
		t.Fatalf("%d seeded rows in the default partition, the rest in %d months; want none there and at least 4 months", inDefault, months)
	}
}

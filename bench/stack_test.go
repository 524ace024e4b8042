package bench

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"ttconsole/models"
)

var pgSync = flag.String("gw.pgsync", "", "with DATABASE_URL: synchronous_commit of the benchmark's database, on or off; empty leaves the server's setting")

// stack is the product under load, as deployed: `ttconsole upstream-sim`
// and `ttconsole serve` as processes of their own, serve on a SQLite file
// or, when DATABASE_URL names a PostgreSQL server, on a database of the
// benchmark's own there, and accounts made with the operator's CLI.
type stack struct {
	bin      string
	sim, gw  *proc
	env      []string // serve's and the admin CLI's
	dbPath   string   // SQLite
	dbURL    string   // PostgreSQL: the benchmark's database
	engine   string   // what the data is on, for the report
	postgres bool
	month    time.Month // when the keys were made: their month-to-date is every charge
	accounts []*benchAccount
}

// benchAccount is an account with credit and one key whose rate limit the
// load never reaches.
type benchAccount struct {
	email, secret string
	startBalance  int64 // µ$, read through GET /v1/account before the load
}

// newStack builds the binary and starts the simulator and the server.
func newStack(b *testing.B) *stack {
	b.Helper()
	tmp := b.TempDir()
	s := &stack{bin: goBuild(b, moduleRoot(b), tmp, "ttconsole", "."), month: time.Now().UTC().Month()}
	var where string
	if base := os.Getenv("DATABASE_URL"); base != "" {
		s.postgres = true
		s.dbURL, s.engine = benchDatabase(b, base, *pgSync)
		where = "DATABASE_URL=" + s.dbURL
	} else {
		if *pgSync != "" {
			b.Fatal("-gw.pgsync sets PostgreSQL's synchronous_commit: it needs DATABASE_URL")
		}
		s.dbPath = filepath.Join(tmp, "bench.db")
		s.engine = "SQLite"
		where = "TT_DB=" + s.dbPath
	}
	s.sim = startProc(b, "upstream-sim", cleanEnv(), s.bin, "upstream-sim", "--addr", "127.0.0.1:0")
	s.env = cleanEnv(where, "UPSTREAM_URL="+s.sim.url(), "TT_LOG_FORMAT=json")
	s.gw = startProc(b, "ttconsole serve", s.env, s.bin, "serve", "--addr", "127.0.0.1:0")
	return s
}

// benchDatabase creates a database of the benchmark's own on the
// PostgreSQL server at base, dropped when the benchmark ends, and returns
// its URL and a description of it for the report. sync, when set, is its
// synchronous_commit, which every session the product opens on it takes.
func benchDatabase(b *testing.B, base, sync string) (dbURL, engine string) {
	b.Helper()
	if sync != "" && sync != "on" && sync != "off" {
		b.Fatalf("-gw.pgsync is on or off (or empty for the server's setting), not %q", sync)
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		b.Fatalf("DATABASE_URL must be a postgres:// URL of the server, not %q", base)
	}
	rnd := make([]byte, 6)
	rand.Read(rnd)
	name := "tt_bench_" + hex.EncodeToString(rnd)
	ctx := context.Background()

	admin, err := pgx.Connect(ctx, base)
	if err != nil {
		b.Fatalf("connect to DATABASE_URL: %v", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		b.Fatalf("create the benchmark's database: %v", err)
	}
	// Registered before the server starts, so it runs after it stops.
	b.Cleanup(func() {
		admin, err := pgx.Connect(ctx, base)
		if err == nil {
			_, err = admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
			admin.Close(ctx)
		}
		if err != nil {
			b.Errorf("drop the benchmark's database %s: %v", name, err)
		}
	})
	if sync != "" {
		if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" SET synchronous_commit = "+sync); err != nil {
			b.Fatal(err)
		}
	}

	u.Path = "/" + name
	dbURL = u.String()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	var version, setting string
	if err := conn.QueryRow(ctx, "SHOW server_version").Scan(&version); err != nil {
		b.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SHOW synchronous_commit").Scan(&setting); err != nil {
		b.Fatal(err)
	}
	from := "the server's setting"
	if sync != "" {
		from = "set for the database"
	}
	version, _, _ = strings.Cut(version, " ")
	return dbURL, fmt.Sprintf("PostgreSQL %s, synchronous_commit=%s (%s)", version, setting, from)
}

// addAccount makes an account with credit and a key through the admin
// CLI beside the server, as an operator would.
// With -gw.bodies its key keeps request and response bodies.
func (s *stack) addAccount(b *testing.B, email string) *benchAccount {
	return s.addAccountKeeping(b, email, *keepBodies)
}

// addAccountKeeping is addAccount with the key's body capture on or off.
func (s *stack) addAccountKeeping(b *testing.B, email string, bodies bool) *benchAccount {
	b.Helper()
	runCLI(b, s.env, s.bin, "admin", "account", "create", "--email", email, "--password", "bench-password-0123")
	runCLI(b, s.env, s.bin, "admin", "credit", "--email", email, "--usd", fmt.Sprint(creditUSD), "--memo", "benchmark credit")
	args := []string{"admin", "key", "create", "--email", email, "--name", "bench", "--rpm", "1000000"}
	if bodies {
		args = append(args, "--keep-bodies-days", "1")
	}
	secret := runCLI(b, s.env, s.bin, args...)
	if !strings.HasPrefix(secret, "sk-tt-") {
		b.Fatalf("admin key create printed %q, not a key", secret)
	}
	a := &benchAccount{email: email, secret: secret}
	var acct apiAccount
	s.getJSON(b, "/v1/account", secret, &acct)
	if acct.Balance <= 0 || acct.Held != 0 {
		b.Fatalf("%s starts with balance %d µ$ and %d held", email, acct.Balance, acct.Held)
	}
	a.startBalance = acct.Balance
	s.accounts = append(s.accounts, a)
	return a
}

// apiAccount is what GET /v1/account says of a key's account.
type apiAccount struct {
	Balance int64 `json:"balance_micros"`
	Held    int64 `json:"held_micros"`
	Debt    int64 `json:"debt_micros"`
	Key     struct {
		MonthToDate int64 `json:"month_to_date_micros"`
	} `json:"key"`
}

// apiRequest is what GET /v1/requests/{id} says of a call.
type apiRequest struct {
	Status         int            `json:"status"`
	BillingOutcome string         `json:"billing_outcome"`
	HoldMicros     int64          `json:"hold_micros"`
	ChargedMicros  int64          `json:"charged_micros"`
	Usage          map[string]int `json:"usage"`
	Timeline       []struct {
		Event string `json:"event"`
	} `json:"timeline"`
}

// getJSON reads one of the gateway's own GET endpoints with a key.
func (s *stack) getJSON(b *testing.B, path, secret string, v any) {
	b.Helper()
	req, _ := http.NewRequest(http.MethodGet, s.gw.url()+path, nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	res, err := newClient(1).Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, v) != nil {
		b.Fatalf("GET %s: %d %s", path, res.StatusCode, body)
	}
}

// verify checks that the load really went through billing and the request
// log, on either engine, reading through the product's own API and store
// rather than its tables:
//   - sampled calls read back through GET /v1/requests/{id} as charged,
//     with their timeline;
//   - each account's request log, as its CSV export reads it, holds one
//     charged row with status 200 per call its key had answered 200 (okBy)
//     and no other chat call;
//   - through GET /v1/account, the balance fell by exactly what those
//     rows charged, nothing is held or owed, and the key's month-to-date
//     is that sum;
//   - Store.LedgerInvariant: the balance is the sum of the ledger and
//     held the sum of open holds;
//   - Store.UsageInvariant: the usage roll-up counts every call once and
//     its spend is the ledger's, hour by hour.
func (s *stack) verify(b *testing.B, okBy map[string]int, ids []sampled) {
	b.Helper()
	picked := sample(ids, 20)
	for _, id := range picked {
		var r apiRequest
		s.getJSON(b, "/v1/requests/"+id.id, id.secret, &r)
		events := map[string]bool{}
		for _, ev := range r.Timeline {
			events[ev.Event] = true
		}
		if r.Status != 200 || r.BillingOutcome != models.OutcomeCharged || r.ChargedMicros <= 0 ||
			r.ChargedMicros > r.HoldMicros || r.Usage["completion_tokens"] != 16 || !events["hold_placed"] || !events["captured"] {
			b.Fatalf("request %s is not logged as a charged call: %+v", id.id, r)
		}
	}

	ctx := context.Background()
	db, err := models.Open(s.dbPath, s.dbURL)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	store := models.NewStore(db)
	total := 0
	for _, a := range s.accounts {
		u, err := store.UserByEmail(ctx, a.email)
		if err != nil {
			b.Fatal(err)
		}
		var chat, charged int
		var chargedSum int64
		err = store.EachRequestText(ctx, u.AccountID, models.RequestFilter{}, func(r *models.RequestText) error {
			if r.Method != http.MethodPost || r.Path != "/v1/chat/completions" {
				return nil
			}
			chat++
			micros, err := strconv.ParseInt(r.ChargedMicros, 10, 64)
			if err != nil {
				return fmt.Errorf("request %s: charged %q: %w", r.ID, r.ChargedMicros, err)
			}
			if r.Status == "200" && r.BillingOutcome == models.OutcomeCharged && micros > 0 {
				charged++
			}
			chargedSum += micros
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
		var acct apiAccount
		s.getJSON(b, "/v1/account", a.secret, &acct)
		spent := a.startBalance - acct.Balance
		invariant := store.LedgerInvariant(ctx, u.AccountID)
		usage := store.UsageInvariant(ctx, u.AccountID)
		monthOK := acct.Key.MonthToDate == chargedSum || time.Now().UTC().Month() != s.month
		fmt.Printf("verified %s: %d calls answered 200, %d charged rows in its log (%d chat rows); balance fell %s, the log charged %s, "+
			"key month-to-date %s; held %d, debt %d; ledger invariant: %s; usage roll-up: %s\n",
			a.email, okBy[a.secret], charged, chat, models.FormatUSD(spent), models.FormatUSD(chargedSum),
			models.FormatUSD(acct.Key.MonthToDate), acct.Held, acct.Debt, orOK(invariant), orOK(usage))
		switch {
		case charged != okBy[a.secret] || chat != charged:
			b.Fatalf("%s: %d calls answered 200 but its log has %d charged rows of %d chat calls", a.email, okBy[a.secret], charged, chat)
		case spent != chargedSum || !monthOK:
			b.Fatalf("%s: billing does not add up: balance fell %d µ$, the log charged %d, the key's month-to-date is %d",
				a.email, spent, chargedSum, acct.Key.MonthToDate)
		case acct.Held != 0 || acct.Debt != 0:
			b.Fatalf("%s: %d µ$ still held and %d owed after the load", a.email, acct.Held, acct.Debt)
		case invariant != nil:
			b.Fatalf("%s: ledger invariant: %v", a.email, invariant)
		case usage != nil:
			b.Fatalf("%s: the usage roll-up disagrees with the log and the ledger: %v", a.email, usage)
		}
		total += okBy[a.secret]
	}
	fmt.Printf("verified: all %d calls charged and logged; %d of them read back charged, with their timeline, via GET /v1/requests/{id}\n",
		total, len(picked))
}

func orOK(err error) string {
	if err != nil {
		return err.Error()
	}
	return "holds"
}

// sample picks up to n ids spread over the run.
func sample(ids []sampled, n int) []sampled {
	if len(ids) <= n {
		return ids
	}
	out := make([]sampled, 0, n)
	for i := 0; i < n; i++ {
		out = append(out, ids[i*len(ids)/n])
	}
	return out
}

package models

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/oklog/ulid/v2"
)

// SeedOptions shape a seeded request history.
type SeedOptions struct {
	Requests int           // how many rows
	Span     time.Duration // spread over this much time before Now; default 30 days
	Now      time.Time     // default time.Now()
	KeyIDs   []string      // the account's keys to spread calls over; none = unidentified calls
	Seed     uint64        // for a reproducible history; 0 = random
	Progress func(done int)
}

// seedScenario is one kind of call the history mixes in.
type seedScenario struct {
	weight       int
	status       int
	errType, msg string
	outcome      string
	charged      bool // the call ran and was charged
	partial      bool // a stream cut off
	rateLimited  bool
	noKey        bool
	path         string
}

var seedScenarios = []seedScenario{
	{weight: 820, status: 200, outcome: OutcomeCharged, charged: true},
	{weight: 15, status: 200, outcome: OutcomeChargedPartial, charged: true, partial: true},
	{weight: 40, status: 429, errType: "rate_limited", msg: "This key allows 60 requests per minute; retry after the window resets.", outcome: OutcomeNotChargedRejected, rateLimited: true},
	{weight: 20, status: 400, errType: "invalid_request", msg: "max_tokens must be at most 16384 for tt-chat-small.", outcome: OutcomeNotChargedRejected},
	{weight: 12, status: 401, errType: "unauthorized", msg: "The API key is missing or invalid. Send Authorization: Bearer sk-tt-….", outcome: OutcomeNotChargedRejected, noKey: true},
	{weight: 12, status: 402, errType: "billing_shortfall", msg: "This call needs a hold of $0.0246 but the wallet's available balance is $0.01: recharge at least $0.0146.", outcome: OutcomeNotChargedRejected},
	{weight: 10, status: 402, errType: "api_key_quota_exceeded", msg: "This key's monthly limit is $50; month-to-date spend and open holds are $49.99, and this call needs a hold of $0.0246.", outcome: OutcomeNotChargedRejected},
	{weight: 12, status: 403, errType: "model_not_allowed", msg: "\"tt-chat-large\" is not in the scope of this API key, which allows: tt-chat-small", outcome: OutcomeNotChargedRejected},
	{weight: 12, status: 403, errType: "ip_not_allowed", msg: "Calls from 198.51.100.23 are not allowed with this API key.", outcome: OutcomeNotChargedRejected},
	{weight: 15, status: 404, errType: "not_found", msg: "No route for POST /v1/v1/chat/completions: the base URL has one /v1 too many.", outcome: OutcomeNotChargedRejected, noKey: true, path: "/v1/v1/chat/completions"},
	{weight: 18, status: 502, errType: "upstream_error", msg: "The model server failed to answer. Not charged; retry with backoff.", outcome: OutcomeNotChargedFailed},
	{weight: 8, status: 503, errType: "service_unavailable", msg: "The model server is overloaded. Not charged; retry with backoff.", outcome: OutcomeNotChargedFailed},
	{weight: 6, status: 504, errType: "upstream_timeout", msg: "The model server did not answer in time. Not charged; retry with backoff.", outcome: OutcomeNotChargedFailed},
}

var seedModels = []struct {
	id, path       string
	in, out        int64 // micro-dollars per million tokens
	weight         int
	embed, streamy bool
}{
	{"tt-chat-small", "/v1/chat/completions", 500_000, 1_500_000, 6, false, true},
	{"tt-chat-large", "/v1/chat/completions", 3_000_000, 15_000_000, 3, false, true},
	{"tt-embed-1", "/v1/embeddings", 100_000, 0, 1, true, false},
}

var seedIPs = []string{"203.0.113.7", "203.0.113.8", "198.51.100.23", "2001:db8::17", "192.0.2.44"}

// seedColumns are the columns a seeded row fills.
var seedColumns = []string{
	"id", "account_id", "key_id", "method", "path", "model", "status", "error_type", "error_message", "error_body",
	"client_ip", "stream", "latency_ms", "prompt_tokens", "completion_tokens", "hold_micros", "charged_micros",
	"billing_outcome", "outcome_detail", "ratelimit_limit", "ratelimit_remaining", "ratelimit_reset", "retry_after",
	"created_at", "completed_at",
}

const (
	seedRowsPerInsert = 500    // 12,500 parameters: under SQLite's and PostgreSQL's limits
	seedRowsPerTx     = 50_000 // big transactions: the cost of a commit is paid rarely
)

// SeedRequests writes a realistic request history for an account: a mix
// of successes, each error type, models, keys, billing outcomes and
// stream flags, spread evenly over the span before now, ids made from
// each row's time so the history pages like real traffic. It writes
// request rows only: no money moves, the wallet and the ledger are left
// alone. Rows go in as multi-row INSERTs, many per transaction, in id
// order, which is what makes it fast.
func (s *Store) SeedRequests(ctx context.Context, accountID string, opt SeedOptions) (int, error) {
	if opt.Requests <= 0 {
		return 0, nil
	}
	if opt.Span <= 0 {
		opt.Span = 30 * 24 * time.Hour
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	seed := opt.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	entropy := ulid.Monotonic(rngReader{rng}, 0)

	totalWeight := 0
	for _, sc := range seedScenarios {
		totalWeight += sc.weight
	}
	bodies := make([]string, len(seedScenarios))
	for i, sc := range seedScenarios {
		if sc.errType != "" {
			bodies[i] = `{"error":{"type":"` + sc.errType + `","message":` + strconv.Quote(sc.msg) + `}}`
		}
	}

	db := s.db.SQL()
	if !s.db.Postgres {
		// A multi-row INSERT keeps a statement journal of every page it
		// touches, so it can be undone alone: in memory, not in a temporary
		// file, which saved a quarter of the CPU. (A bigger page cache did
		// not help.) The setting ends with the seed.
		if _, err := db.ExecContext(ctx, "PRAGMA temp_store = MEMORY"); err != nil {
			return 0, err
		}
		defer db.ExecContext(context.WithoutCancel(ctx), "PRAGMA temp_store = DEFAULT")
	}
	stmtText := func(rows int) string {
		var b strings.Builder
		b.WriteString("INSERT INTO requests (" + strings.Join(seedColumns, ", ") + ") VALUES ")
		n := 1
		for r := range rows {
			if r > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('(')
			for c := range seedColumns {
				if c > 0 {
					b.WriteByte(',')
				}
				if s.db.Postgres {
					b.WriteString("$" + strconv.Itoa(n))
				} else {
					b.WriteByte('?')
				}
				n++
			}
			b.WriteByte(')')
		}
		return b.String()
	}

	start := opt.Now.Add(-opt.Span).UTC()
	step := opt.Span / time.Duration(opt.Requests)
	args := make([]any, 0, seedRowsPerInsert*len(seedColumns))
	acct := accountID
	done := 0
	for done < opt.Requests {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		txRows := min(seedRowsPerTx, opt.Requests-done)
		err := func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			var full *sql.Stmt
			for written := 0; written < txRows; {
				n := min(seedRowsPerInsert, txRows-written)
				args = args[:0]
				for i := range n {
					idx := done + written + i
					at := start.Add(time.Duration(idx) * step)
					args = seedRow(args, rng, entropy, at, &acct, opt.KeyIDs, bodies, totalWeight)
				}
				var err error
				if n == seedRowsPerInsert {
					if full == nil {
						if full, err = tx.PrepareContext(ctx, stmtText(n)); err != nil {
							return err
						}
					}
					_, err = full.ExecContext(ctx, args...)
				} else {
					_, err = tx.ExecContext(ctx, stmtText(n), args...)
				}
				if err != nil {
					return fmt.Errorf("seed requests: %w", err)
				}
				written += n
			}
			if full != nil {
				full.Close()
			}
			return tx.Commit()
		}()
		if err != nil {
			return done, err
		}
		done += txRows
		if opt.Progress != nil {
			opt.Progress(done)
		}
	}
	return done, nil
}

// seedRow appends one row's values to args.
func seedRow(args []any, rng *rand.Rand, entropy ulid.MonotonicReader, at time.Time, acct *string,
	keys []string, bodies []string, totalWeight int) []any {
	w := rng.IntN(totalWeight)
	si := 0
	for i, sc := range seedScenarios {
		if w < sc.weight {
			si = i
			break
		}
		w -= sc.weight
	}
	sc := seedScenarios[si]
	mw := rng.IntN(10)
	m := seedModels[0]
	for _, cand := range seedModels {
		if mw < cand.weight {
			m = cand
			break
		}
		mw -= cand.weight
	}
	id := "req_" + ulid.MustNew(ulid.Timestamp(at), entropy).String()
	path := m.path
	if sc.path != "" {
		path = sc.path
	}
	var key any
	if len(keys) > 0 && !sc.noKey {
		key = keys[rng.IntN(len(keys))]
	}
	stream := m.streamy && rng.IntN(3) == 0
	if sc.partial {
		stream = true
	}
	prompt := 20 + rng.IntN(2000)
	maxOut := 1024
	var completion int
	var hold, charged int64
	latency := 5 + rng.IntN(40)
	outcomeDetail := ""
	if sc.charged || sc.outcome == OutcomeNotChargedFailed || sc.errType == "billing_shortfall" || sc.errType == "api_key_quota_exceeded" {
		hold = ceilDiv(int64(prompt)*m.in+int64(maxOut)*m.out, 1_000_000)
	}
	if sc.charged {
		if !m.embed {
			completion = 16 + rng.IntN(900)
		}
		if sc.partial {
			completion /= 3
			outcomeDetail = "client disconnected after " + strconv.Itoa(completion) + " tokens"
		}
		charged = min(hold, ceilDiv(int64(prompt)*m.in+int64(completion)*m.out, 1_000_000))
		latency = 200 + rng.IntN(4000)
	}
	if sc.outcome == OutcomeNotChargedFailed {
		latency = 500 + rng.IntN(30000)
		outcomeDetail = sc.msg
	}
	var rlLimit, rlRemaining, rlReset, retry any
	if key != nil {
		rlLimit = 60
		rlRemaining = rng.IntN(60)
		rlReset = at.Unix() + int64(1+rng.IntN(60))
		if sc.rateLimited {
			rlRemaining = 0
			retry = 1 + rng.IntN(60)
			rlReset = at.Unix() + int64(retry.(int))
		}
	}
	completed := at.Add(time.Duration(latency) * time.Millisecond)
	accountArg := any(*acct)
	return append(args, id, accountArg, key, "POST", path, m.id, sc.status, sc.errType, sc.msg, bodies[si],
		seedIPs[rng.IntN(len(seedIPs))], stream, latency, prompt, completion, hold, charged,
		sc.outcome, outcomeDetail, rlLimit, rlRemaining, rlReset, retry, at, completed)
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// rngReader feeds ULIDs' entropy from a fast seeded generator: seeded ids
// need uniqueness, not secrecy.
type rngReader struct{ r *rand.Rand }

func (r rngReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(r.r.Uint32())
	}
	return len(p), nil
}

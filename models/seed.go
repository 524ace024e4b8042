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

	"ttconsole/migrations"
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
	refusedHold  int64 // a 402's hold, as its message says
}

var seedScenarios = []seedScenario{
	{weight: 820, status: 200, outcome: OutcomeCharged, charged: true},
	{weight: 15, status: 200, outcome: OutcomeChargedPartial, charged: true, partial: true},
	{weight: 40, status: 429, errType: "rate_limited", msg: "This key allows 60 requests per minute; retry after the window resets.", outcome: OutcomeNotChargedRejected, rateLimited: true},
	{weight: 20, status: 400, errType: "invalid_request", msg: "max_tokens must be at most 16384 for tt-chat-small.", outcome: OutcomeNotChargedRejected},
	{weight: 12, status: 401, errType: "unauthorized", msg: "The API key is missing or invalid. Send Authorization: Bearer sk-tt-….", outcome: OutcomeNotChargedRejected, noKey: true},
	{weight: 12, status: 402, errType: "billing_shortfall", msg: "This call needs a hold of $0.0246 but the wallet's available balance is $0.01: recharge at least $0.0146.", outcome: OutcomeNotChargedRejected, refusedHold: 24_600},
	{weight: 10, status: 402, errType: "api_key_quota_exceeded", msg: "This key's monthly limit is $50; month-to-date spend and open holds are $49.99, and this call needs a hold of $0.0246.", outcome: OutcomeNotChargedRejected, refusedHold: 24_600},
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

const (
	seedRowsPerInsert = 500    // PostgreSQL: 12,500 parameters, under its limit
	seedRowsPerTx     = 50_000 // big transactions: the cost of a commit is paid rarely
	seedRPM           = 60     // the seeded keys' rate limit
)

// SeedRequests writes a realistic request history for an account: a mix
// of successes, each error type, models, keys, billing outcomes and
// stream flags, spread evenly over the span before now, ids made from
// each row's time so the history pages like real traffic. It writes
// request rows, and in the same transactions their usage roll-up
// (usage_hourly), only: no money moves, the wallet and the ledger are
// left alone, so the roll-up's spend is the rows' charges. Rows go in as multi-row INSERTs, many per transaction, in id
// order, which is what makes it fast.
func (s *Store) SeedRequests(ctx context.Context, accountID string, opt SeedOptions) (int, error) {
	return s.seedRequests(ctx, accountID, opt, !s.db.Postgres)
}

// seedRequests is SeedRequests; packed writes rows the SQLite way (see
// seedPackedInsert) rather than one parameter per column.
func (s *Store) seedRequests(ctx context.Context, accountID string, opt SeedOptions, packed bool) (int, error) {
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
	gen := &seedGen{rng: rng, keys: opt.KeyIDs}
	for _, sc := range seedScenarios {
		gen.totalWeight += sc.weight
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
	perInsert, stmtText := seedRowsPerInsert, func(n int) string { return seedPlainInsert(n, s.db.Postgres) }
	if packed {
		perInsert, stmtText = seedPackedRowsPerInsert, seedPackedInsert
	}

	start := opt.Now.Add(-opt.Span).UTC()
	step := opt.Span / time.Duration(opt.Requests)
	if s.db.Postgres {
		// A history's months get their partitions, as the months of live
		// traffic do, rather than all going to the default partition.
		var months []migrations.RequestPartition
		for p := migrations.RequestPartitionOf(start); p.Month.Before(opt.Now); p = p.Next() {
			months = append(months, p)
		}
		if _, err := s.makeRequestPartitions(ctx, months); err != nil {
			return 0, err
		}
	}
	var (
		args []any
		rows []seedRequest
	)
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
			usage := seedUsage{}
			for written := 0; written < txRows; {
				n := min(perInsert, txRows-written)
				rows = rows[:0]
				for i := range n {
					rows = append(rows, gen.next(start.Add(time.Duration(done+written+i)*step)))
				}
				args = args[:0]
				if packed {
					args = append(args, accountID)
				}
				for i := range rows {
					usage.add(&rows[i])
					if packed {
						args = rows[i].appendPacked(args)
					} else {
						args = rows[i].appendPlain(args, accountID)
					}
				}
				if n == perInsert && full == nil {
					if full, err = tx.PrepareContext(ctx, stmtText(n)); err != nil {
						return err
					}
				}
				if n == perInsert {
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
			if err := usage.write(ctx, tx, accountID, s.db.Postgres); err != nil {
				return fmt.Errorf("seed usage: %w", err)
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

// seedRequest is one seeded row as drawn, before it is written.
type seedRequest struct {
	id                          string
	key                         string // "" for a call without a key
	scenario, model, ip         int    // indexes into seedScenarios, seedModels, seedIPs
	stream                      bool
	latency, prompt, completion int
	hold, charged               int64
	remaining, retry            int // retry 0: no Retry-After
	reset                       int64
	at, completed               time.Time
}

// seedGen draws seeded rows.
type seedGen struct {
	rng         *rand.Rand
	keys        []string
	totalWeight int
}

// next draws the row of a call made at at.
func (g *seedGen) next(at time.Time) seedRequest {
	rng := g.rng
	var r seedRequest
	w := rng.IntN(g.totalWeight)
	for i, sc := range seedScenarios {
		if w < sc.weight {
			r.scenario = i
			break
		}
		w -= sc.weight
	}
	sc := seedScenarios[r.scenario]
	mw := rng.IntN(10)
	for i, cand := range seedModels {
		if mw < cand.weight {
			r.model = i
			break
		}
		mw -= cand.weight
	}
	m := seedModels[r.model]
	r.id = requestIDFrom(ulid.Timestamp(at), uint16(rng.Uint32()), rng.Uint64())
	if len(g.keys) > 0 && !sc.noKey {
		r.key = g.keys[rng.IntN(len(g.keys))]
	}
	r.stream = m.streamy && rng.IntN(3) == 0
	if sc.partial {
		r.stream = true
	}
	r.prompt = 20 + rng.IntN(2000)
	maxOut := 1024
	r.latency = 5 + rng.IntN(40)
	if sc.charged || sc.outcome == OutcomeNotChargedFailed || sc.errType == "billing_shortfall" || sc.errType == "api_key_quota_exceeded" {
		r.hold = ceilDiv(int64(r.prompt)*m.in+int64(maxOut)*m.out, 1_000_000)
	}
	if sc.charged {
		if !m.embed {
			r.completion = 16 + rng.IntN(900)
		}
		if sc.partial {
			r.completion /= 3
		}
		r.charged = min(r.hold, ceilDiv(int64(r.prompt)*m.in+int64(r.completion)*m.out, 1_000_000))
		r.latency = 200 + rng.IntN(4000)
	}
	if sc.outcome == OutcomeNotChargedFailed {
		r.latency = 500 + rng.IntN(30000)
	}
	if r.key != "" {
		r.remaining = rng.IntN(seedRPM)
		r.reset = at.Unix() + int64(1+rng.IntN(60))
		if sc.rateLimited {
			r.remaining = 0
			r.retry = 1 + rng.IntN(60)
			r.reset = at.Unix() + int64(r.retry)
		}
	}
	r.ip = rng.IntN(len(seedIPs))
	r.at = at
	r.completed = at.Add(time.Duration(r.latency) * time.Millisecond)
	return r
}

// A stream cut off is settled on what was delivered; the row says so.
const (
	seedPartialDetail1 = "client disconnected after "
	seedPartialDetail2 = " tokens"
)

// seedColumns are the columns a seeded row fills.
var seedColumns = []string{
	"id", "account_id", "key_id", "method", "path", "model", "status", "error_type", "error_message", "error_body",
	"client_ip", "stream", "latency_ms", "prompt_tokens", "completion_tokens", "hold_micros", "refused_hold_micros", "charged_micros",
	"billing_outcome", "outcome_detail", "ratelimit_limit", "ratelimit_remaining", "ratelimit_reset", "retry_after",
	"created_at", "completed_at",
}

// seedPlainInsert is a multi-row INSERT with one parameter per column.
func seedPlainInsert(rows int, postgres bool) string {
	var b strings.Builder
	b.WriteString("INSERT INTO requests (" + strings.Join(seedColumns, ", ") + ") VALUES ")
	n, mark := 1, "?"
	if postgres {
		mark = "$"
	}
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range seedColumns {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteString(mark + strconv.Itoa(n))
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// appendPlain appends r's values in the order of seedColumns.
func (r *seedRequest) appendPlain(args []any, accountID string) []any {
	sc, m := seedScenarios[r.scenario], seedModels[r.model]
	path := m.path
	if sc.path != "" {
		path = sc.path
	}
	detail := ""
	switch {
	case sc.partial:
		detail = seedPartialDetail1 + strconv.Itoa(r.completion) + seedPartialDetail2
	case sc.outcome == OutcomeNotChargedFailed:
		detail = sc.msg
	}
	var key, limit, remaining, reset, retry any
	if r.key != "" {
		key, limit, remaining, reset = r.key, seedRPM, r.remaining, r.reset
	}
	if r.retry != 0 {
		retry = r.retry
	}
	return append(args, r.id, accountID, key, "POST", path, m.id, sc.status, sc.errType, sc.msg, sc.body(),
		seedIPs[r.ip], r.stream, r.latency, r.prompt, r.completion, r.hold, sc.refusedHold, r.charged,
		sc.outcome, detail, limit, remaining, reset, retry, r.at, r.completed)
}

// body is the error body the gateway returns for the scenario.
func (sc seedScenario) body() string {
	if sc.errType == "" {
		return ""
	}
	return `{"error":{"type":"` + sc.errType + `","message":` + strconv.Quote(sc.msg) + `}}`
}

// On SQLite most of a seed's time outside SQLite's own work went into
// binding 25 values a row through cgo, 14 of them text. A packed row binds
// 7: the id, the key, the two times, the reset time, and two integers that
// hold the small draws (which scenario, model and IP, the stream flag,
// the rate-limit draws, latency and token counts) and the money (hold and
// charge). The INSERT's SELECT unpacks them with bit operations and turns the
// indexes into the scenario's, model's and IP's text with CASE.
const (
	seedPackedRowsPerInsert = 1000 // 7,001 parameters

	packScenario   = 0  // 4 bits
	packModel      = 4  // 2 bits
	packIP         = 6  // 3 bits
	packStream     = 9  // 1 bit
	packRemaining  = 10 // 6 bits
	packRetry      = 16 // 6 bits
	packLatency    = 22 // 15 bits
	packPrompt     = 37 // 11 bits
	packCompletion = 48 // 10 bits
	packHold       = 32 // in the second integer, above the charge
)

// appendPacked appends r's 7 values in the order seedPackedInsert reads
// them.
func (r *seedRequest) appendPacked(args []any) []any {
	if r.scenario >= 1<<4 || r.model >= 1<<2 || r.ip >= 1<<3 || r.remaining >= 1<<6 || r.retry >= 1<<6 ||
		r.latency >= 1<<15 || r.prompt >= 1<<11 || r.completion >= 1<<10 || r.charged >= 1<<packHold {
		panic("seed: a draw outgrew its packed field")
	}
	var key, reset any
	if r.key != "" {
		key, reset = r.key, r.reset
	}
	stream := 0
	if r.stream {
		stream = 1
	}
	small := int64(r.scenario)<<packScenario | int64(r.model)<<packModel | int64(r.ip)<<packIP |
		int64(stream)<<packStream | int64(r.remaining)<<packRemaining | int64(r.retry)<<packRetry |
		int64(r.latency)<<packLatency | int64(r.prompt)<<packPrompt | int64(r.completion)<<packCompletion
	return append(args, r.id, key, small, r.hold<<packHold|r.charged, reset,
		r.at.Format(sqliteTimeLayout), r.completed.Format(sqliteTimeLayout))
}

// sqliteTimeLayout is how the SQLite driver writes a time.
const sqliteTimeLayout = "2006-01-02 15:04:05.999999999-07:00"

// seedPackedInsert is an INSERT of rows packed by appendPacked: the
// account id, then 7 values a row.
func seedPackedInsert(rows int) string {
	field := func(shift, bits int) string {
		return "((v.column3 >> " + strconv.Itoa(shift) + ") & " + strconv.Itoa(1<<bits-1) + ")"
	}
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	byScenario := func(val func(sc seedScenario) string) string {
		var b strings.Builder
		b.WriteString("CASE " + field(packScenario, 4))
		for i, sc := range seedScenarios {
			b.WriteString(" WHEN " + strconv.Itoa(i) + " THEN " + val(sc))
		}
		b.WriteString(" END")
		return b.String()
	}
	model := func(val func(i int) string) string {
		var b strings.Builder
		b.WriteString("CASE " + field(packModel, 2))
		for i := range seedModels {
			b.WriteString(" WHEN " + strconv.Itoa(i) + " THEN " + val(i))
		}
		b.WriteString(" END")
		return b.String()
	}
	var ip strings.Builder
	ip.WriteString("CASE " + field(packIP, 3))
	for i, a := range seedIPs {
		ip.WriteString(" WHEN " + strconv.Itoa(i) + " THEN " + q(a))
	}
	ip.WriteString(" END")
	completion := field(packCompletion, 10)
	hasKey := func(then string) string { return "CASE WHEN v.column2 IS NULL THEN NULL ELSE " + then + " END" }
	exprs := []string{ // in the order of seedColumns
		"v.column1", "?", "v.column2", "'POST'",
		byScenario(func(sc seedScenario) string {
			if sc.path != "" {
				return q(sc.path)
			}
			return model(func(i int) string { return q(seedModels[i].path) })
		}),
		model(func(i int) string { return q(seedModels[i].id) }),
		byScenario(func(sc seedScenario) string { return strconv.Itoa(sc.status) }),
		byScenario(func(sc seedScenario) string { return q(sc.errType) }),
		byScenario(func(sc seedScenario) string { return q(sc.msg) }),
		byScenario(func(sc seedScenario) string { return q(sc.body()) }),
		ip.String(),
		field(packStream, 1), field(packLatency, 15), field(packPrompt, 11), completion,
		"(v.column4 >> " + strconv.Itoa(packHold) + ")",
		byScenario(func(sc seedScenario) string { return strconv.FormatInt(sc.refusedHold, 10) }),
		"(v.column4 & " + strconv.Itoa(1<<packHold-1) + ")",
		byScenario(func(sc seedScenario) string { return q(sc.outcome) }),
		byScenario(func(sc seedScenario) string {
			switch {
			case sc.partial:
				return q(seedPartialDetail1) + " || " + completion + " || " + q(seedPartialDetail2)
			case sc.outcome == OutcomeNotChargedFailed:
				return q(sc.msg)
			}
			return "''"
		}),
		hasKey(strconv.Itoa(seedRPM)), hasKey(field(packRemaining, 6)), "v.column5",
		"NULLIF(" + field(packRetry, 6) + ", 0)", "v.column6", "v.column7",
	}
	var b strings.Builder
	b.WriteString("INSERT INTO requests (" + strings.Join(seedColumns, ", ") + ") SELECT " +
		strings.Join(exprs, ", ") + " FROM (VALUES ")
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?)")
	}
	b.WriteString(") AS v")
	return b.String()
}

func ceilDiv(a, b int64) int64 { return (a + b - 1) / b }

// seedUsage sums a transaction's seeded rows as the usage roll-up counts
// them (see usage_write.go): by the UTC hour each call completed, its key,
// model and billing outcome.
type seedUsage map[seedUsageKey]*seedUsageSum

type seedUsageKey struct {
	hour, key string
	model     int // index into seedModels
	scenario  int // index into seedScenarios
}

type seedUsageSum struct{ requests, errors, prompt, completion, spend int64 }

func (u seedUsage) add(r *seedRequest) {
	k := seedUsageKey{hour: r.completed.UTC().Format("2006-01-02 15"), key: r.key, model: r.model, scenario: r.scenario}
	sum := u[k]
	if sum == nil {
		sum = &seedUsageSum{}
		u[k] = sum
	}
	sum.requests++
	if seedScenarios[r.scenario].status >= 400 {
		sum.errors++
	}
	sum.prompt += int64(r.prompt)
	sum.completion += int64(r.completion)
	sum.spend += r.charged
}

// write adds the sums to the roll-up: a statement per hour, key, model and
// scenario, a few hundred for a transaction of 50,000 rows.
func (u seedUsage) write(ctx context.Context, tx *sql.Tx, accountID string, postgres bool) error {
	text := `INSERT INTO usage_hourly (account_id, hour_utc, key_id, model, outcome, requests, errors, prompt_tokens,
		completion_tokens, spend_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_id, hour_utc, key_id, model, outcome) DO UPDATE SET
		requests = usage_hourly.requests + excluded.requests, errors = usage_hourly.errors + excluded.errors,
		prompt_tokens = usage_hourly.prompt_tokens + excluded.prompt_tokens,
		completion_tokens = usage_hourly.completion_tokens + excluded.completion_tokens,
		spend_micros = usage_hourly.spend_micros + excluded.spend_micros`
	if postgres {
		text = numbered(text)
	}
	st, err := tx.PrepareContext(ctx, text)
	if err != nil {
		return err
	}
	defer st.Close()
	for k, sum := range u {
		_, err := st.ExecContext(ctx, accountID, k.hour, k.key, seedModels[k.model].id, seedScenarios[k.scenario].outcome,
			sum.requests, sum.errors, sum.prompt, sum.completion, sum.spend)
		if err != nil {
			return err
		}
	}
	return nil
}

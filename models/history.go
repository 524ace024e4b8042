package models

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"ttconsole/migrations"
)

// A History is many finished calls of one account, written at once by
// WriteHistory: a demo history (internal/seed makes one), or one brought
// from elsewhere. Each call is one of a few kinds, made with one of a few
// models from one of a few addresses, which lets SQLite write a row's
// text from those numbers (see packedInsert) instead of binding it column
// by column.
type History struct {
	Kinds  []HistoryKind
	Models []HistoryModel
	IPs    []string
	RPM    int // the rate limit of the keys, on the rows of calls made with one

	Calls    int                // how many calls
	From, To time.Time          // their times fall in [From, To)
	Next     func() HistoryCall // the calls one by one, oldest first
	Progress func(done int)     // told after each transaction; may be nil
}

// HistoryKind is what the calls of one kind share: their answer and its
// billing outcome.
type HistoryKind struct {
	Status                  int
	ErrorType, ErrorMessage string
	ErrorBody               string
	Outcome                 string
	RefusedHoldMicros       int64
	Path                    string // "" = the path of the call's model
	Detail                  string // the outcome detail; a %d in it stands for the call's completion tokens
}

// HistoryModel is a model the calls of a History were made with.
type HistoryModel struct{ ID, Path string }

// HistoryCall is one call of a History: indexes into its kinds, models
// and addresses, and the call's own figures.
type HistoryCall struct {
	ID                        string
	KeyID                     string // "" for a call no key identified
	Kind, Model, IP           int
	Stream                    bool
	LatencyMS                 int
	PromptTokens              int
	CompletionTokens          int
	HoldMicros, ChargedMicros int64
	// A call made with a key carries its rate limit's headers; RetryAfter
	// is 0 when the call was not limited.
	RatelimitRemaining int
	RatelimitReset     int64
	RetryAfter         int
	CreatedAt          time.Time
	CompletedAt        time.Time
}

const (
	historyRowsPerInsert = 500    // PostgreSQL: 500 rows of 28 parameters, under its limit of 65,535
	historyRowsPerTx     = 50_000 // big transactions: the cost of a commit is paid rarely
)

// WriteHistory writes the calls of h as request rows of an account, and
// returns how many it wrote. It writes request rows, and in the same
// transactions their usage roll-up (usage_write.go), only: no money moves,
// the wallet and the ledger are left alone, so there the roll-up's spend
// is the rows' charges. Rows go in as multi-row
// INSERTs, many per transaction, in id order, which is what makes it
// fast.
func (s *Store) WriteHistory(ctx context.Context, accountID string, h History) (int, error) {
	return s.writeHistory(ctx, accountID, h, !s.db.Postgres)
}

// writeHistory is WriteHistory; packed writes rows SQLite's way (see
// packedInsert) rather than one parameter per column.
func (s *Store) writeHistory(ctx context.Context, accountID string, h History, packed bool) (int, error) {
	if h.Calls <= 0 {
		return 0, nil
	}
	db := s.db.sqlDB()
	if !s.db.Postgres {
		// A multi-row INSERT keeps a statement journal of every page it
		// touches, so it can be undone alone: in memory, not in a temporary
		// file, which saved a quarter of the CPU. (A bigger page cache did
		// not help.) The setting ends with the write.
		if _, err := db.ExecContext(ctx, "PRAGMA temp_store = MEMORY"); err != nil {
			return 0, err
		}
		defer db.ExecContext(context.WithoutCancel(ctx), "PRAGMA temp_store = DEFAULT")
	}
	if s.db.Postgres {
		// A history's months get their partitions, as the months of live
		// traffic do, rather than all going to the default partition.
		var months []migrations.RequestPartition
		for p := migrations.RequestPartitionOf(h.From); p.Month.Before(h.To); p = p.Next() {
			months = append(months, p)
		}
		if _, err := s.makeRequestPartitions(ctx, months); err != nil {
			return 0, err
		}
	}
	packed = packed && h.packable()
	perInsert := historyRowsPerInsert
	if packed {
		perInsert = historyPackedRowsPerInsert
	}
	var (
		args  []any
		calls []HistoryCall
	)
	// plain writes calls one parameter per column, a statement at most
	// historyRowsPerInsert rows.
	plain := func(tx *sql.Tx, stmt *sql.Stmt, calls []HistoryCall) error {
		for len(calls) > 0 {
			part := calls[:min(len(calls), historyRowsPerInsert)]
			calls = calls[len(part):]
			args = args[:0]
			for i := range part {
				r := h.request(&part[i], accountID)
				args = append(args, r.values(insertedColumn)...)
			}
			var err error
			if stmt != nil && len(part) == historyRowsPerInsert {
				_, err = stmt.ExecContext(ctx, args...)
			} else {
				_, err = tx.ExecContext(ctx, plainInsert(len(part), s.db.Postgres), args...)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	done := 0
	for done < h.Calls {
		if err := ctx.Err(); err != nil {
			return done, err
		}
		txRows := min(historyRowsPerTx, h.Calls-done)
		err := func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			// The statement of a whole batch, prepared once.
			var full *sql.Stmt
			if txRows >= perInsert {
				text := plainInsert(perInsert, s.db.Postgres)
				if packed {
					text = h.packedInsert(perInsert)
				}
				if full, err = tx.PrepareContext(ctx, text); err != nil {
					return err
				}
				defer full.Close()
			}
			usage := map[usageKey]usageSum{}
			for written := 0; written < txRows; {
				n := min(perInsert, txRows-written)
				calls = calls[:0]
				fits := packed
				for range n {
					c := h.Next()
					fits = fits && h.fits(&c)
					calls = append(calls, c)
					h.count(usage, &c, accountID)
				}
				switch {
				case !packed:
					err = plain(tx, full, calls)
				case !fits: // a call outside the packed fields: this batch goes plain
					err = plain(tx, nil, calls)
				default:
					args = append(args[:0], accountID)
					for i := range calls {
						args = h.appendPacked(args, &calls[i])
					}
					if n == perInsert {
						_, err = full.ExecContext(ctx, args...)
					} else {
						_, err = tx.ExecContext(ctx, h.packedInsert(n), args...)
					}
				}
				if err != nil {
					return fmt.Errorf("write history: %w", err)
				}
				written += n
			}
			if err := writeUsage(ctx, tx, usage, s.db.Postgres); err != nil {
				return fmt.Errorf("write history's usage: %w", err)
			}
			return tx.Commit()
		}()
		if err != nil {
			return done, err
		}
		done += txRows
		if h.Progress != nil {
			h.Progress(done)
		}
	}
	if s.db.Postgres && done >= historyRowsPerTx {
		// What autovacuum does soon after a load this size: statistics
		// for the planner, and the visibility map that lets counts read
		// the index alone.
		if _, err := db.ExecContext(ctx, "VACUUM (ANALYZE) requests"); err != nil {
			return done, err
		}
	}
	return done, nil
}

// count adds call c to the usage roll-up's sums, as the money path would
// have counted it when it completed.
func (h *History) count(usage map[usageKey]usageSum, c *HistoryCall, accountID string) {
	k := &h.Kinds[c.Kind]
	key := usageKey{account: accountID, hour: usageHour(c.CompletedAt), key: c.KeyID, model: h.Models[c.Model].ID}
	t := usage[key]
	t.add(oneRequest(k.Outcome, k.Status, int64(c.PromptTokens), int64(c.CompletionTokens), c.ChargedMicros))
	usage[key] = t
}

// writeUsage adds a transaction's sums to the roll-up: a statement per
// hour, key and model, a few hundred for 50,000 calls.
func writeUsage(ctx context.Context, tx *sql.Tx, usage map[usageKey]usageSum, postgres bool) error {
	text := qUsageAdd.sqlite
	if postgres {
		text = qUsageAdd.pg
	}
	stmt, err := tx.PrepareContext(ctx, text)
	if err != nil {
		return err
	}
	defer stmt.Close()
	for k, t := range usage {
		if _, err := stmt.ExecContext(ctx, t.args(k)...); err != nil {
			return err
		}
	}
	return nil
}

// insertedColumn keeps the columns a new row writes.
func insertedColumn(c requestColumn) bool { return c.insert }

// plainInsert is a multi-row INSERT of whole rows, one parameter per
// column.
func plainInsert(rows int, postgres bool) string {
	cols := requestColumnNames(insertedColumn)
	per := strings.Count(cols, ",") + 1
	var b strings.Builder
	b.WriteString("INSERT INTO requests (" + cols + ") VALUES ")
	n, mark := 1, "?"
	if postgres {
		mark = "$"
	}
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('(')
		for c := range per {
			if c > 0 {
				b.WriteByte(',')
			}
			b.WriteString(mark)
			if postgres {
				b.WriteString(strconv.Itoa(n))
			}
			n++
		}
		b.WriteByte(')')
	}
	return b.String()
}

// request is the row of a call.
func (h *History) request(c *HistoryCall, accountID string) Request {
	k, m := &h.Kinds[c.Kind], &h.Models[c.Model]
	completed := c.CompletedAt
	r := Request{
		ID: c.ID, AccountID: &accountID, Method: "POST", Path: m.Path, Model: m.ID, Status: k.Status,
		ErrorType: k.ErrorType, ErrorMessage: k.ErrorMessage, ErrorBody: k.ErrorBody, ClientIP: h.IPs[c.IP],
		Stream: c.Stream, LatencyMS: int64(c.LatencyMS), PromptTokens: c.PromptTokens, CompletionTokens: c.CompletionTokens,
		HoldMicros: c.HoldMicros, RefusedHoldMicros: k.RefusedHoldMicros, ChargedMicros: c.ChargedMicros,
		BillingOutcome: k.Outcome, OutcomeDetail: k.detail(c.CompletionTokens), CreatedAt: c.CreatedAt, CompletedAt: &completed,
	}
	if k.Path != "" {
		r.Path = k.Path
	}
	if c.KeyID != "" {
		key, limit, remaining, reset := c.KeyID, h.RPM, c.RatelimitRemaining, c.RatelimitReset
		r.KeyID, r.RatelimitLimit, r.RatelimitRemaining, r.RatelimitReset = &key, &limit, &remaining, &reset
	}
	if c.RetryAfter != 0 {
		retry := c.RetryAfter
		r.RetryAfter = &retry
	}
	return r
}

// detail is the kind's outcome detail for a call that delivered
// completion tokens.
func (k *HistoryKind) detail(completion int) string {
	before, after, ok := strings.Cut(k.Detail, "%d")
	if !ok {
		return k.Detail
	}
	return before + strconv.Itoa(completion) + after
}

// On SQLite most of a history's time outside SQLite's own work went into
// binding 28 values a row through cgo, most of them text. A packed row
// binds 7: the id, the key, the two times, the reset time, and two
// integers that hold the small numbers (which kind, model and address, the
// stream flag, the rate-limit headers, latency and token counts) and the
// money (hold and charge). The INSERT's SELECT unpacks them with bit
// operations and turns the indexes into the kind's, model's and address's
// text with CASE.
const (
	historyPackedRowsPerInsert = 1000 // 7,001 parameters

	packKind       = 0  // 4 bits
	packModel      = 4  // 4 bits
	packIP         = 8  // 3 bits
	packStream     = 11 // 1 bit
	packRemaining  = 12 // 6 bits
	packRetry      = 18 // 6 bits
	packLatency    = 24 // 15 bits
	packPrompt     = 39 // 11 bits
	packCompletion = 50 // 10 bits
	packHold       = 32 // in the second integer, above the charge
)

// packable reports whether h's kinds, models and addresses can be packed.
func (h *History) packable() bool {
	return len(h.Kinds) <= 1<<4 && len(h.Models) <= 1<<4 && len(h.IPs) <= 1<<3
}

// fits reports whether a call's figures fit their packed fields.
func (h *History) fits(c *HistoryCall) bool {
	in := func(v, bits int) bool { return v >= 0 && v < 1<<bits }
	return in(c.Kind, 4) && in(c.Model, 4) && in(c.IP, 3) && in(c.RatelimitRemaining, 6) && in(c.RetryAfter, 6) &&
		in(c.LatencyMS, 15) && in(c.PromptTokens, 11) && in(c.CompletionTokens, 10) &&
		c.ChargedMicros >= 0 && c.ChargedMicros < 1<<packHold && c.HoldMicros >= 0 && c.HoldMicros < 1<<(63-packHold)
}

// appendPacked appends c's 7 values in the order packedInsert reads them.
func (h *History) appendPacked(args []any, c *HistoryCall) []any {
	var key, reset any
	if c.KeyID != "" {
		key, reset = c.KeyID, c.RatelimitReset
	}
	stream := 0
	if c.Stream {
		stream = 1
	}
	small := int64(c.Kind)<<packKind | int64(c.Model)<<packModel | int64(c.IP)<<packIP |
		int64(stream)<<packStream | int64(c.RatelimitRemaining)<<packRemaining | int64(c.RetryAfter)<<packRetry |
		int64(c.LatencyMS)<<packLatency | int64(c.PromptTokens)<<packPrompt | int64(c.CompletionTokens)<<packCompletion
	return append(args, c.ID, key, small, c.HoldMicros<<packHold|c.ChargedMicros, reset,
		c.CreatedAt.Format(sqliteTimeLayout), c.CompletedAt.Format(sqliteTimeLayout))
}

// sqliteTimeLayout is how the SQLite driver writes a time.
const sqliteTimeLayout = "2006-01-02 15:04:05.999999999-07:00"

// packedInsert is an INSERT of rows packed by appendPacked: the account
// id, then 7 values a row.
func (h *History) packedInsert(rows int) string {
	field := func(shift, bits int) string {
		return "((v.column3 >> " + strconv.Itoa(shift) + ") & " + strconv.Itoa(1<<bits-1) + ")"
	}
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
	cases := func(on string, n int, val func(i int) string) string {
		var b strings.Builder
		b.WriteString("CASE " + on)
		for i := range n {
			b.WriteString(" WHEN " + strconv.Itoa(i) + " THEN " + val(i))
		}
		b.WriteString(" END")
		return b.String()
	}
	byKind := func(val func(k *HistoryKind) string) string {
		return cases(field(packKind, 4), len(h.Kinds), func(i int) string { return val(&h.Kinds[i]) })
	}
	byModel := func(val func(m *HistoryModel) string) string {
		return cases(field(packModel, 4), len(h.Models), func(i int) string { return val(&h.Models[i]) })
	}
	completion := field(packCompletion, 10)
	hasKey := func(then string) string { return "CASE WHEN v.column2 IS NULL THEN NULL ELSE " + then + " END" }
	exprs := map[string]string{
		"id": "v.column1", "account_id": "?", "key_id": "v.column2", "method": "'POST'",
		"path": byKind(func(k *HistoryKind) string {
			if k.Path != "" {
				return q(k.Path)
			}
			return byModel(func(m *HistoryModel) string { return q(m.Path) })
		}),
		"model":               byModel(func(m *HistoryModel) string { return q(m.ID) }),
		"status":              byKind(func(k *HistoryKind) string { return strconv.Itoa(k.Status) }),
		"error_type":          byKind(func(k *HistoryKind) string { return q(k.ErrorType) }),
		"error_message":       byKind(func(k *HistoryKind) string { return q(k.ErrorMessage) }),
		"error_body":          byKind(func(k *HistoryKind) string { return q(k.ErrorBody) }),
		"client_ip":           cases(field(packIP, 3), len(h.IPs), func(i int) string { return q(h.IPs[i]) }),
		"stream":              field(packStream, 1),
		"latency_ms":          field(packLatency, 15),
		"prompt_tokens":       field(packPrompt, 11),
		"completion_tokens":   completion,
		"hold_micros":         "(v.column4 >> " + strconv.Itoa(packHold) + ")",
		"refused_hold_micros": byKind(func(k *HistoryKind) string { return strconv.FormatInt(k.RefusedHoldMicros, 10) }),
		"charged_micros":      "(v.column4 & " + strconv.Itoa(1<<packHold-1) + ")",
		"billing_outcome":     byKind(func(k *HistoryKind) string { return q(k.Outcome) }),
		"outcome_detail": byKind(func(k *HistoryKind) string {
			if before, after, ok := strings.Cut(k.Detail, "%d"); ok {
				return q(before) + " || " + completion + " || " + q(after)
			}
			return q(k.Detail)
		}),
		"ratelimit_limit":     hasKey(strconv.Itoa(h.RPM)),
		"ratelimit_remaining": hasKey(field(packRemaining, 6)),
		"ratelimit_reset":     "v.column5",
		"retry_after":         "NULLIF(" + field(packRetry, 6) + ", 0)",
		"created_at":          "v.column6",
		"completed_at":        "v.column7",
		// Finished calls, written as they are: no hold of their own to show.
		"hold_status": "''", "held_at": "NULL", "hold_expires_at": "NULL",
	}
	var cols, sel []string
	for _, c := range requestColumns {
		if !c.insert {
			continue
		}
		e, ok := exprs[c.name]
		if !ok {
			panic("history: no packed value for the column " + c.name)
		}
		cols, sel = append(cols, c.name), append(sel, e)
	}
	var b strings.Builder
	b.WriteString("INSERT INTO requests (" + strings.Join(cols, ", ") + ") SELECT " + strings.Join(sel, ", ") + " FROM (VALUES ")
	for r := range rows {
		if r > 0 {
			b.WriteByte(',')
		}
		b.WriteString("(?,?,?,?,?,?,?)")
	}
	b.WriteString(") AS v")
	return b.String()
}

package models

import (
	"context"
	"database/sql"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// RequestText is one request as the CSV export writes it: every field is
// text, the time is UTC in the form 2006-01-02T15:04:05.000Z, a request
// without a key has "" for both key fields, and the key's name is looked
// up. The struct is reused between calls; its strings stay valid.
type RequestText struct {
	ID, CreatedAt, Method, Path, Model, Status, ErrorType, ErrorMessage, KeyID, KeyName, ClientIP string
	Stream, LatencyMS, PromptTokens, CompletionTokens, HoldMicros, ChargedMicros, BillingOutcome  string
}

// set fills t from a request read through the driver: the reference for
// what every field of an export looks like.
func (t *RequestText) set(r *Request, labels map[string]KeyLabel) {
	t.KeyID, t.KeyName = "", ""
	if r.KeyID != nil {
		t.KeyID = *r.KeyID
		t.KeyName = labels[t.KeyID].Name
	}
	t.ID = r.ID
	t.CreatedAt = r.CreatedAt.UTC().Format(exportTimeLayout)
	t.Method, t.Path, t.Model = r.Method, r.Path, r.Model
	t.Status = strconv.Itoa(r.Status)
	t.ErrorType, t.ErrorMessage, t.ClientIP = r.ErrorType, r.ErrorMessage, r.ClientIP
	t.Stream = strconv.FormatBool(r.Stream)
	t.LatencyMS = strconv.FormatInt(r.LatencyMS, 10)
	t.PromptTokens = strconv.Itoa(r.PromptTokens)
	t.CompletionTokens = strconv.Itoa(r.CompletionTokens)
	t.HoldMicros = strconv.FormatInt(r.HoldMicros, 10)
	t.ChargedMicros = strconv.FormatInt(r.ChargedMicros, 10)
	t.BillingOutcome = r.BillingOutcome
}

const exportTimeLayout = "2006-01-02T15:04:05.000Z"

// EachRequestText calls fn for every request of an account that matches
// f, newest first, as the CSV export writes it. Memory stays flat however
// many rows there are, and every row comes from one snapshot.
//
// On PostgreSQL, and for any row SQLite holds in an unusual shape, rows
// are read column by column through the driver. On SQLite that costs a
// dozen cgo calls and a time parse per row, most of an export's time, so
// instead SQLite packs each row's fields into one text value, NUL between
// them, and a chunk of rows into one value with group_concat: reading a
// thousand rows is one column read. Go then checks every field is what
// the driver would have returned and formats it the same way (see
// exportChunk.parse); a chunk that fails the check is read again through
// the driver, so both ways give the same bytes.
func (s *Store) EachRequestText(ctx context.Context, accountID string, f RequestFilter, fn func(*RequestText) error) error {
	labels, err := s.RequestKeyLabels(ctx, accountID)
	if err != nil {
		return err
	}
	if s.db.Postgres {
		return s.eachRequestTextSlow(ctx, accountID, f, labels, fn)
	}
	_, err = s.eachRequestTextPacked(ctx, accountID, f, labels, fn)
	return err
}

// eachRequestTextPacked is EachRequestText on SQLite. A goroutine reads
// the chunks, in one read transaction, while fn writes out the one before:
// reading waits on SQLite and the disk, writing on the client, and each
// can have a core. It returns how many chunks had to be read again
// through the driver.
func (s *Store) eachRequestTextPacked(ctx context.Context, accountID string, f RequestFilter, labels map[string]KeyLabel, fn func(*RequestText) error) (int, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	full, empty := make(chan *exportChunk), make(chan *exportChunk, 2) // one read while one is written
	for range cap(empty) {
		empty <- new(exportChunk)
	}
	reread := 0
	done := make(chan error, 1)
	go func() {
		defer close(full)
		done <- s.db.r.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			below := "" // from the newest
			for {
				var c *exportChunk
				select {
				case c = <-empty:
				case <-ctx.Done():
					return ctx.Err()
				}
				next, again, err := c.read(tx, accountID, f, labels, below)
				if err != nil || next == "" {
					return err
				}
				if again {
					reread++
				}
				select {
				case full <- c:
				case <-ctx.Done():
					return ctx.Err()
				}
				below = next
			}
		})
	}()
	for c := range full {
		for i := range c.rows {
			if err := fn(&c.rows[i]); err != nil {
				cancel()
				for range full {
				}
				<-done
				return reread, err
			}
		}
		empty <- c
	}
	return reread, <-done
}

// eachRequestTextSlow is EachRequestText reading every row through the
// driver.
func (s *Store) eachRequestTextSlow(ctx context.Context, accountID string, f RequestFilter, labels map[string]KeyLabel, fn func(*RequestText) error) error {
	var t RequestText
	return eachRequest(exportQuery(s.db.r.WithContext(ctx), accountID, f), func(r *Request) error {
		t.set(r, labels)
		return fn(&t)
	})
}

// exportQuery is the account's requests that match f.
func exportQuery(db *gorm.DB, accountID string, f RequestFilter) *gorm.DB {
	return between(f.apply(ofAccount(db.Model(&Request{}), accountID)), f.From, f.To)
}

// chunkQuery is exportQuery on SQLite, limited to the ids in [lo, hi)
// ("" for an open end).
func chunkQuery(db *gorm.DB, accountID string, f RequestFilter, lo, hi string) *gorm.DB {
	q := f.apply(ofAccount(db.Model(&Request{}), accountID))
	if from := timeID(f.From); from > lo {
		lo = from
	}
	return idRange(q, lo, earlierID(timeID(f.To), hi))
}

// exportPacked is exportColumns as one text value, NUL between the fields
// (concat() needs SQLite 3.44; the driver bundles a newer one). A NULL
// key_id becomes "", as it does in an export.
var exportPacked = "concat(" + strings.ReplaceAll(exportColumns, ", ", ", char(0), ") + ")"

const (
	exportFields    = 17
	exportChunkRows = 1000 // ~200 kB of text per chunk
)

// eachRequest calls fn for every row of q, newest first, reading the
// export's columns through the driver in one streaming query. fn's
// *Request is reused between calls.
func eachRequest(q *gorm.DB, fn func(*Request) error) error {
	rows, err := newestFirst(q.Select(exportColumns)).Rows()
	if err != nil {
		return err
	}
	defer rows.Close()
	var (
		r                                Request
		key                              sql.NullString
		latency, prompt, completion, sts int64
	)
	for rows.Next() {
		if err := rows.Scan(&r.ID, &key, &r.Method, &r.Path, &r.Model, &sts, &r.ErrorType, &r.ErrorMessage,
			&r.ClientIP, &r.Stream, &latency, &prompt, &completion, &r.HoldMicros, &r.ChargedMicros,
			&r.BillingOutcome, &r.CreatedAt); err != nil {
			return err
		}
		r.KeyID = nil
		if key.Valid {
			r.KeyID = &key.String
		}
		r.Status, r.LatencyMS, r.PromptTokens, r.CompletionTokens = int(sts), latency, int(prompt), int(completion)
		if err := fn(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// exportChunk is a chunk of rows SQLite packed, split into fields.
type exportChunk struct {
	rows     []RequestText
	lastDate string // the last date checked to be a real one
}

// read fills c with the rows matching f older than the request below
// ("" for the newest), at most exportChunkRows of them, newest first, and
// returns the id of the oldest row read ("" when no row is left) and
// whether the rows had to be read again through the driver.
func (c *exportChunk) read(tx *gorm.DB, accountID string, f RequestFilter, labels map[string]KeyLabel, below string) (string, bool, error) {
	var (
		packed sql.NullString
		oldest sql.NullString
		n      int
	)
	q := chunkQuery(tx, accountID, f, "", below).Select("id, " + exportPacked + " AS line").
		Order("id DESC").Limit(exportChunkRows)
	err := tx.Table("(?) AS chunk", q).Select("group_concat(line, char(0)), count(*), min(id)").Row().Scan(&packed, &n, &oldest)
	if err != nil || n == 0 {
		return "", false, err
	}
	if c.parse(packed.String, n, labels) {
		return oldest.String, false, nil
	}
	c.rows = c.rows[:0]
	err = eachRequest(chunkQuery(tx, accountID, f, oldest.String, below), func(r *Request) error {
		var t RequestText
		t.set(r, labels)
		c.rows = append(c.rows, t)
		return nil
	})
	return oldest.String, true, err
}

// parse splits packed, n rows of exportFields fields each, into c.rows. It
// reports false, leaving the rows unspecified, unless every field is
// exactly what the driver's path would have made of the same value: a
// field that holds a NUL, a time not in the driver's UTC form, a stream
// flag or number that the driver would read differently or refuse.
func (c *exportChunk) parse(packed string, n int, labels map[string]KeyLabel) bool {
	if strings.Count(packed, "\x00") != n*exportFields-1 {
		return false // a field holds a NUL: the split would be ambiguous
	}
	c.rows = c.rows[:0]
	var f [exportFields]string
	for range n {
		for i := range f {
			j := strings.IndexByte(packed, 0)
			if j < 0 {
				j = len(packed)
				f[i], packed = packed, ""
			} else {
				f[i], packed = packed[:j], packed[j+1:]
			}
		}
		created, ok := c.exportTime(f[16])
		if !ok || !isDecimal(f[5]) || !isDecimal(f[10]) || !isDecimal(f[11]) || !isDecimal(f[12]) ||
			!isDecimal(f[13]) || !isDecimal(f[14]) {
			return false
		}
		var stream string
		switch f[9] {
		case "0":
			stream = "false"
		case "1":
			stream = "true"
		default:
			return false
		}
		c.rows = append(c.rows, RequestText{
			ID: f[0], CreatedAt: created, Method: f[2], Path: f[3], Model: f[4], Status: f[5],
			ErrorType: f[6], ErrorMessage: f[7], KeyID: f[1], KeyName: labels[f[1]].Name, ClientIP: f[8],
			Stream: stream, LatencyMS: f[10], PromptTokens: f[11], CompletionTokens: f[12],
			HoldMicros: f[13], ChargedMicros: f[14], BillingOutcome: f[15],
		})
	}
	// group_concat takes the rows in the order the subquery gives them,
	// newest first; asking for that order in the aggregate too costs a
	// sort, so the order is checked here instead.
	if !slices.IsSortedFunc(c.rows, exportNewestFirst) {
		slices.SortFunc(c.rows, exportNewestFirst)
	}
	return true
}

func exportNewestFirst(a, b RequestText) int { return strings.Compare(b.ID, a.ID) }

// exportTime formats a stored created_at as the export shows it, without
// parsing it, when it is in the form the driver writes a UTC time
// ("2006-01-02 15:04:05.999999999-07:00" with a +00:00 offset) with at
// least three digits of fraction, which the export keeps. Anything else
// is not ok, for the driver's path to read.
func (c *exportChunk) exportTime(s string) (string, bool) {
	const (
		shortest = len("2006-01-02 15:04:05.000+00:00")
		longest  = len("2006-01-02 15:04:05.999999999+00:00")
	)
	if len(s) < shortest || len(s) > longest || s[len(s)-6:] != "+00:00" || s[10] != ' ' || s[19] != '.' ||
		s[13] != ':' || s[16] != ':' || !isDigits(s[11:13]) || !isDigits(s[14:16]) || !isDigits(s[17:19]) ||
		!isDigits(s[20:len(s)-6]) || s[11:13] > "23" || s[14:16] > "59" || s[17:19] > "59" {
		return "", false
	}
	if date := s[:10]; date != c.lastDate {
		if _, err := time.Parse("2006-01-02", date); err != nil {
			return "", false
		}
		c.lastDate = date
	}
	return s[:10] + "T" + s[11:23] + "Z", true
}

// isDecimal reports whether s is an integer as SQLite writes one.
func isDecimal(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	return s != "" && isDigits(s)
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

package models

import (
	"context"
	"strconv"
	"strings"
)

// The money path of every gateway call (hold, capture, release, the
// request row), a task's end and retention's deletes are plain SQL
// rather than GORM: the same statements on SQLite and PostgreSQL, each
// prepared once on the connection that runs it, and every one of them
// runs through Store.write.

// query is one statement of the write path, written with ? for its
// arguments; PostgreSQL gets the same text numbered $1, $2, ….
type query struct {
	sqlite, pg string
	i          int // index into a connection's prepared statements
}

// queries lists every query, so that a connection can keep each one
// prepared.
var queries []*query

func newQuery(text string) *query {
	q := &query{sqlite: text, pg: numbered(text), i: len(queries)}
	queries = append(queries, q)
	return q
}

// numbered turns each ? into $1, $2, … (no query here has a literal ?).
// A statement that uses an argument twice numbers its marks itself, ?1,
// ?2, … (SQLite reads them so too), and becomes $1, $2, …; one statement
// uses one style or the other.
func numbered(text string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(text); i++ {
		if text[i] != '?' {
			b.WriteByte(text[i])
			continue
		}
		if i+1 < len(text) && text[i+1] >= '0' && text[i+1] <= '9' {
			b.WriteByte('$')
			continue
		}
		n++
		b.WriteString("$" + strconv.Itoa(n))
	}
	return b.String()
}

// wtx is a write transaction of the money path, in a group (batch.go):
// on SQLite's writer connection (own, writer.go), or on a PostgreSQL
// connection, pipelined (pgx, pgconn.go).
type wtx struct {
	own *writerConn
	pgx *pgConn
	ids *idSource // the store's, for the rows the transaction makes

	usage map[usageKey]usageSum // the roll-up's counts, written before the commit (usage_write.go)
}

// exec runs q and returns how many rows it changed.
func (w *wtx) exec(q *query, args ...any) (int64, error) {
	if w.own != nil {
		return w.own.exec(q, args)
	}
	return w.pgx.exec(q, args)
}

// execEach runs q once with each of args, in order, and returns how many
// rows each changed: on PostgreSQL in one round trip.
func (w *wtx) execEach(q *query, args [][]any) ([]int64, error) {
	if w.pgx != nil {
		return w.pgx.execEach(q, args)
	}
	n := make([]int64, len(args))
	for i, a := range args {
		var err error
		if n[i], err = w.own.exec(q, a); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// later runs q, whose result the caller does not need: on PostgreSQL it
// is sent with the next statement that needs an answer, or the commit,
// and its error fails the write then.
func (w *wtx) later(q *query, args ...any) error {
	if w.pgx != nil {
		w.pgx.later(q, args)
		return nil
	}
	_, err := w.exec(q, args...)
	return err
}

// laterInt runs q, whose one row holds an integer, as later does: on
// PostgreSQL the integer reaches *dst when the statement is sent, so the
// caller reads it once the write has committed.
func (w *wtx) laterInt(q *query, dst *int64, args ...any) error {
	if w.pgx != nil {
		w.pgx.laterInt(q, dst, args)
		return nil
	}
	n, err := w.queryInt(q, args...)
	*dst = n
	return err
}

// queryInt runs q for the integer its one row holds.
func (w *wtx) queryInt(q *query, args ...any) (int64, error) {
	if w.own != nil {
		return w.own.queryInt(q, args)
	}
	return w.pgx.queryInt(q, args)
}

// write runs fn in a write transaction of the money path: a group commit
// (see batch.go) on either engine.
func (s *Store) write(ctx context.Context, fn func(*wtx) error) error {
	return s.batch.do(fn)
}

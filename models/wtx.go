package models

import (
	"context"
	"database/sql"
	"errors"
	"strconv"
	"strings"

	"gorm.io/gorm"
)

// The money path of every gateway call (hold, capture, release, the
// request row) is plain SQL rather than GORM: the same statements on
// SQLite and PostgreSQL, prepared once on SQLite's writer connection.

// query is one statement of the write path, written with ? for its
// arguments; PostgreSQL gets the same text numbered $1, $2, ….
type query struct {
	sqlite, pg string
	i          int // index into Store.stmts
}

// queries lists every query, so a Store can prepare them all up front.
var queries []*query

func newQuery(text string) *query {
	q := &query{sqlite: text, pg: numbered(text), i: len(queries)}
	queries = append(queries, q)
	return q
}

// numbered turns each ? into $1, $2, … (no query here has a literal ?).
func numbered(text string) string {
	var b strings.Builder
	n := 0
	for _, r := range text {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// prepare readies every query on SQLite's writer connection. A query that
// fails to prepare (a database not migrated yet) runs as plain text.
func (s *Store) prepare() {
	if s.db.Postgres {
		return // pgx keeps its own per-connection statement cache
	}
	s.stmts = make([]*sql.Stmt, len(queries))
	for _, q := range queries {
		if st, err := s.db.SQL().Prepare(q.sqlite); err == nil {
			s.stmts[q.i] = st
		}
	}
}

// wtx is a write transaction of the money path: SQLite's group commit on
// the writer's own connection (own, writer.go), or a *sql.Tx.
type wtx struct {
	ctx   context.Context
	own   *writerConn
	pgx   *pgConn // PostgreSQL's group commit
	tx    *sql.Tx
	stmts []*sql.Stmt // prepared statements, SQLite only
	pg    bool
	ids   *idSource // the store's, for the ledger rows it writes
}

// wtxOf runs the money path's statements inside a GORM transaction.
func (s *Store) wtxOf(tx *gorm.DB) (*wtx, error) {
	sqlTx, ok := tx.Statement.ConnPool.(*sql.Tx)
	if !ok {
		return nil, errors.New("write path: not inside a transaction")
	}
	return &wtx{ctx: tx.Statement.Context, tx: sqlTx, stmts: s.stmts, pg: s.db.Postgres, ids: s.ids}, nil
}

func (w *wtx) stmt(q *query) *sql.Stmt {
	if w.stmts == nil || w.stmts[q.i] == nil {
		return nil
	}
	return w.tx.StmtContext(w.ctx, w.stmts[q.i])
}

func (w *wtx) text(q *query) string {
	if w.pg {
		return q.pg
	}
	return q.sqlite
}

// exec runs q and returns how many rows it changed.
func (w *wtx) exec(q *query, args ...any) (int64, error) {
	if w.own != nil {
		return w.own.exec(q, args)
	}
	if w.pgx != nil {
		return w.pgx.exec(q, args)
	}
	var res sql.Result
	var err error
	if st := w.stmt(q); st != nil {
		res, err = st.ExecContext(w.ctx, args...)
	} else {
		res, err = w.tx.ExecContext(w.ctx, w.text(q), args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
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

// queryInt runs q for the integer its one row holds.
func (w *wtx) queryInt(q *query, args ...any) (int64, error) {
	if w.own != nil {
		return w.own.queryInt(q, args)
	}
	if w.pgx != nil {
		return w.pgx.queryInt(q, args)
	}
	var row *sql.Row
	if st := w.stmt(q); st != nil {
		row = st.QueryRowContext(w.ctx, args...)
	} else {
		row = w.tx.QueryRowContext(w.ctx, w.text(q), args...)
	}
	var n int64
	err := row.Scan(&n)
	return n, err
}

// write runs fn in a write transaction of the money path: a group commit
// (see batch.go) on either engine.
func (s *Store) write(ctx context.Context, fn func(*wtx) error) error {
	return s.batch.do(fn)
}

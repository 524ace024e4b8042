package models

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"time"
)

// writerConn is SQLite's writer connection as the group commit drives it:
// the driver's connection and its own prepared statements, used below
// database/sql. A group is one transaction of a few to a few hundred
// short statements, and database/sql's bookkeeping around each — a
// goroutine and a context per transaction, a copy of the prepared
// statement bound to the transaction's connection and a check of every
// argument per statement, BEGIN and COMMIT prepared anew every time —
// were about a fifth of the billing transactions' CPU (-bench
// CallBilling in this package) and a third of their time one call at a
// time. The group holds the connection (sql.Conn.Raw) for its whole
// transaction, so nothing else can use it meanwhile, as with a *sql.Tx.
type writerConn struct {
	dc    driver.Conn   // the connection the statements belong to
	stmts []driver.Stmt // by query.i, prepared on first use

	begin, commit, rollback driver.Stmt
	args                    []driver.NamedValue // reused: one statement runs at a time
}

func newWriterConn(dc driver.Conn) (*writerConn, error) {
	c := &writerConn{dc: dc, stmts: make([]driver.Stmt, len(queries))}
	for _, p := range []struct {
		st   *driver.Stmt
		text string
	}{{&c.begin, "BEGIN IMMEDIATE"}, {&c.commit, "COMMIT"}, {&c.rollback, "ROLLBACK"}} {
		st, err := dc.Prepare(p.text)
		if err != nil {
			c.close()
			return nil, err
		}
		*p.st = st
	}
	return c, nil
}

// close finalizes the statements.
func (c *writerConn) close() {
	for _, st := range c.stmts {
		if st != nil {
			st.Close()
		}
	}
	for _, st := range []driver.Stmt{c.begin, c.commit, c.rollback} {
		if st != nil {
			st.Close()
		}
	}
	clear(c.stmts)
	c.begin, c.commit, c.rollback = nil, nil, nil
}

// run executes a statement without arguments.
func (c *writerConn) run(st driver.Stmt) error {
	_, err := st.(driver.StmtExecContext).ExecContext(context.Background(), nil)
	return err
}

// tx begins a transaction (immediate: it takes SQLite's write lock now,
// as the writer's *sql.Tx does) and returns the write transaction on it.
func (c *writerConn) tx() (*wtx, error) {
	if err := c.run(c.begin); err != nil {
		return nil, err
	}
	return &wtx{own: c}, nil
}

// end commits or rolls back the transaction. A failed COMMIT can leave
// SQLite's transaction open, so it is rolled back then too: the
// connection is never handed back inside a transaction.
func (c *writerConn) end(commit bool) error {
	if !commit {
		return c.run(c.rollback)
	}
	err := c.run(c.commit)
	if err != nil {
		c.run(c.rollback)
	}
	return err
}

// stmt returns q's statement, preparing it on first use.
func (c *writerConn) stmt(q *query) (driver.Stmt, error) {
	if q.i >= len(c.stmts) {
		return nil, fmt.Errorf("write path: query %d was declared after the store opened", q.i)
	}
	if c.stmts[q.i] == nil {
		st, err := c.dc.Prepare(q.sqlite)
		if err != nil {
			return nil, err
		}
		c.stmts[q.i] = st
	}
	return c.stmts[q.i], nil
}

// bind returns q's statement and args converted as database/sql would
// for the driver.
func (c *writerConn) bind(q *query, args []any) (driver.Stmt, []driver.NamedValue, error) {
	st, err := c.stmt(q)
	if err != nil {
		return nil, nil, err
	}
	nv := c.args[:0]
	for i, a := range args {
		v, err := driverValue(a)
		if err != nil {
			return nil, nil, fmt.Errorf("write path: argument %d: %w", i+1, err)
		}
		nv = append(nv, driver.NamedValue{Ordinal: i + 1, Value: v})
	}
	c.args = nv
	return st, nv, nil
}

// driverValue is driver.DefaultParameterConverter, without reflection for
// the types the money path binds.
func driverValue(a any) (driver.Value, error) {
	switch v := a.(type) {
	case nil, string, int64, bool, time.Time:
		return v, nil
	case int:
		return int64(v), nil
	case *string:
		if v == nil {
			return nil, nil
		}
		return *v, nil
	case *int:
		if v == nil {
			return nil, nil
		}
		return int64(*v), nil
	case *int64:
		if v == nil {
			return nil, nil
		}
		return *v, nil
	case *time.Time:
		if v == nil {
			return nil, nil
		}
		return *v, nil
	}
	return driver.DefaultParameterConverter.ConvertValue(a)
}

func (c *writerConn) exec(q *query, args []any) (int64, error) {
	st, nv, err := c.bind(q, args)
	if err != nil {
		return 0, err
	}
	res, err := st.(driver.StmtExecContext).ExecContext(context.Background(), nv)
	clear(nv) // keep no argument alive
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// queryInt runs q for the integer in the first column of its one row.
func (c *writerConn) queryInt(q *query, args []any) (int64, error) {
	st, nv, err := c.bind(q, args)
	if err != nil {
		return 0, err
	}
	rows, err := st.(driver.StmtQueryContext).QueryContext(context.Background(), nv)
	clear(nv)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	dest := make([]driver.Value, len(rows.Columns()))
	if err := rows.Next(dest); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, sql.ErrNoRows
		}
		return 0, err
	}
	n, ok := dest[0].(int64)
	if !ok {
		return 0, fmt.Errorf("write path: want an integer, got %T", dest[0])
	}
	return n, nil
}

package models

import (
	"context"
	"database/sql"
	"errors"

	"github.com/jackc/pgx/v5"
)

// pgConn runs a group's transaction on a PostgreSQL connection, through
// pgx directly, pipelined: a statement whose result the write path does
// not need (w.later) is not sent on its own but with the next statement
// that needs an answer, or with the COMMIT; BEGIN goes with the first.
// A statement whose answer is needed only after the commit (w.laterInt)
// goes the same way. Ending one call's hold is then one round trip (its
// statement, settleOne, and the commit) instead of six, and a group's
// statements cost round trips only where a decision waits for them. pgx
// keeps each statement prepared on the connection.
type pgConn struct {
	conn    *pgx.Conn
	pending pgx.Batch
	ints    map[int]*int64 // where the pending statement at an index puts its row's integer (laterInt)
	begun   bool           // BEGIN has reached the server
}

func (c *pgConn) tx() (*wtx, error) {
	c.pending, c.ints = pgx.Batch{}, nil
	c.pending.Queue("BEGIN")
	c.begun = false
	return &wtx{pgx: c}, nil
}

// send sends what is pending and q (when not empty), and returns the
// results of q for read to consume; the pending statements' own results
// are checked.
func (c *pgConn) send(q string, args []any, read func(pgx.BatchResults) error) error {
	if q == "" {
		return c.sendEach("", nil, nil)
	}
	return c.sendEach(q, [][]any{args}, read)
}

// sendEach is send for q run once with each of args, in one round trip;
// read consumes their results in order.
func (c *pgConn) sendEach(q string, args [][]any, read func(pgx.BatchResults) error) error {
	b, ints := c.pending, c.ints
	c.pending, c.ints = pgx.Batch{}, nil
	n := b.Len()
	for _, a := range args {
		b.Queue(q, a...)
	}
	c.begun = true
	br := c.conn.SendBatch(context.Background(), &b)
	var err error
	for i := range n {
		if dst := ints[i]; dst != nil {
			err = br.QueryRow().Scan(dst)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			break
		}
	}
	if err == nil && len(args) > 0 {
		err = read(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

func (c *pgConn) exec(q *query, args []any) (int64, error) {
	var n int64
	err := c.send(q.pg, args, func(br pgx.BatchResults) error {
		tag, err := br.Exec()
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

// execEach runs q with each of args, in one round trip, and returns how
// many rows each changed.
func (c *pgConn) execEach(q *query, args [][]any) ([]int64, error) {
	n := make([]int64, len(args))
	err := c.sendEach(q.pg, args, func(br pgx.BatchResults) error {
		for i := range n {
			tag, err := br.Exec()
			if err != nil {
				return err
			}
			n[i] = tag.RowsAffected()
		}
		return nil
	})
	return n, err
}

func (c *pgConn) queryInt(q *query, args []any) (int64, error) {
	var n int64
	err := c.send(q.pg, args, func(br pgx.BatchResults) error {
		err := br.QueryRow().Scan(&n)
		if errors.Is(err, pgx.ErrNoRows) {
			return sql.ErrNoRows // as database/sql says it
		}
		return err
	})
	return n, err
}

func (c *pgConn) later(q *query, args []any) {
	c.pending.Queue(q.pg, args...)
}

func (c *pgConn) laterInt(q *query, dst *int64, args []any) {
	if c.ints == nil {
		c.ints = map[int]*int64{}
	}
	c.ints[c.pending.Len()] = dst
	c.pending.Queue(q.pg, args...)
}

func (c *pgConn) end(commit bool) error {
	if !commit {
		c.pending, c.ints = pgx.Batch{}, nil
		if !c.begun {
			return nil // nothing reached the server
		}
		_, err := c.conn.Exec(context.Background(), "ROLLBACK")
		return err
	}
	c.pending.Queue("COMMIT")
	if err := c.send("", nil, nil); err != nil {
		c.conn.Exec(context.Background(), "ROLLBACK") // a failed statement left the transaction aborted
		return err
	}
	return nil
}

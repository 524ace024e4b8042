package migrations

import (
	"context"
	"database/sql"
	"strconv"
	"strings"
)

// Version 14, on both engines: a request refused for want of money (a
// 402: the key's monthly limit or the wallet could not take its hold)
// records the hold it needed, refused_hold_micros, for the console's
// fix-it to read. Rows written before it are filled from their message,
// which has always stated the amount ("… needs a hold of $0.0246 …"):
// one pass over the log, done once.
func refusedHoldUp(update string) func(context.Context, *sql.Tx) error {
	return func(ctx context.Context, tx *sql.Tx) error { return fillRefusedHolds(ctx, tx, update) }
}

func fillRefusedHolds(ctx context.Context, tx *sql.Tx, update string) error {
	if _, err := tx.ExecContext(ctx, `ALTER TABLE requests ADD COLUMN refused_hold_micros BIGINT NOT NULL DEFAULT 0`); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, error_message FROM requests
WHERE error_type IN ('billing_shortfall', 'api_key_quota_exceeded') AND hold_micros = 0`)
	if err != nil {
		return err
	}
	refused := map[string]int64{}
	for rows.Next() {
		var id, msg string
		if err := rows.Scan(&id, &msg); err != nil {
			rows.Close()
			return err
		}
		if m := neededHold(msg); m > 0 {
			refused[id] = m
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	st, err := tx.PrepareContext(ctx, update)
	if err != nil {
		return err
	}
	defer st.Close()
	for id, m := range refused {
		if _, err := st.ExecContext(ctx, m, id); err != nil {
			return err
		}
	}
	return nil
}

func refusedHoldDown(ctx context.Context, tx *sql.Tx) error {
	_, err := tx.ExecContext(ctx, `ALTER TABLE requests DROP COLUMN refused_hold_micros`)
	return err
}

// neededHold reads the amount, in micro-dollars, that a 402's message
// says the call needed ("needs a hold of $1,234.5"); 0 when it says none.
func neededHold(msg string) int64 {
	_, rest, ok := strings.Cut(msg, "needs a hold of $")
	if !ok {
		return 0
	}
	end := strings.IndexFunc(rest, func(c rune) bool { return (c < '0' || c > '9') && c != '.' && c != ',' })
	if end >= 0 {
		rest = rest[:end]
	}
	whole, frac, _ := strings.Cut(strings.ReplaceAll(strings.TrimRight(rest, ".,"), ",", ""), ".")
	frac = (frac + "000000")[:6]
	d, err1 := strconv.ParseInt(whole, 10, 64)
	f, err2 := strconv.ParseInt(frac, 10, 64)
	if err1 != nil || err2 != nil || d > 1e9 {
		return 0
	}
	return d*1_000_000 + f
}

package models

import (
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// BodyLimit is how much of each body is kept: the first 64 KiB of the
// original; a longer one is cut there and marked truncated.
const BodyLimit = 64 << 10

// BodyCapture is one call's bodies as the gateway saw them, before they
// are kept: the request as received, the response as returned (a stream
// reassembled into its final message).
type BodyCapture struct {
	RequestID string
	AccountID string
	KeyID     string
	CreatedAt time.Time
	Days      int // the key's retention when the call was made
	Request   []byte
	Response  []byte
	Chunks    int // a stream's chunks; 0 for a plain answer
}

// KeptBodies is what the console shows of a call's kept bodies.
type KeptBodies struct {
	RequestID         string
	CreatedAt         time.Time
	ExpiresAt         time.Time
	Request           string
	RequestTruncated  bool
	Response          string
	ResponseTruncated bool
	Chunks            int
}

// requestBodyRow is a row of request_bodies.
type requestBodyRow struct {
	RequestID         string
	AccountID         string
	KeyID             string
	CreatedAt         time.Time
	ExpiresAt         time.Time
	RequestBody       []byte
	RequestTruncated  bool
	ResponseBody      []byte
	ResponseTruncated bool
	Chunks            int
}

func (requestBodyRow) TableName() string { return "request_bodies" }

// ClipBody returns a copy of as much of b as a kept body can use, so that
// a queued body holds neither a whole 1 MiB request nor the buffer it
// came from. packBody still sees that it was longer than BodyLimit.
func ClipBody(b []byte) []byte {
	return bytes.Clone(b[:min(len(b), BodyLimit+utf8.UTFMax)])
}

// packBody cuts b to BodyLimit (at a character boundary), redacts
// anything shaped like a key secret, and compresses it.
func packBody(b []byte) (packed []byte, truncated bool) {
	if len(b) > BodyLimit {
		cut := BodyLimit
		for cut > BodyLimit-utf8.UTFMax && !utf8.RuneStart(b[cut]) {
			cut--
		}
		b, truncated = b[:cut], true
	}
	s := RedactSecrets(string(b))
	var buf bytes.Buffer
	// A compressor is large to make (about 1 MiB): each is reused.
	w, _ := flateWriters.Get().(*flate.Writer)
	if w == nil {
		w, _ = flate.NewWriter(&buf, flate.BestSpeed)
	} else {
		w.Reset(&buf)
	}
	io.WriteString(w, s)
	w.Close()
	flateWriters.Put(w)
	return buf.Bytes(), truncated
}

var flateWriters sync.Pool

func unpackBody(b []byte) (string, error) {
	out, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(b)), 4*BodyLimit))
	return string(out), err
}

var (
	qKeyKeepsBodies = newQuery(`SELECT count(*) FROM api_keys WHERE id = ? AND keep_bodies = TRUE AND status <> '` + KeyRevoked + `'`)
	qInsertBodies   = newQuery(`INSERT INTO request_bodies (request_id, account_id, key_id, created_at, expires_at,
		request_body, request_truncated, response_body, response_truncated, chunks)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (request_id) DO NOTHING`)
)

// SaveBodies keeps the bodies of calls, in one write. A call whose key no
// longer keeps bodies (turned off or revoked since) is dropped, so nothing
// is kept after its owner said stop. It returns how many were kept.
func (s *Store) SaveBodies(ctx context.Context, caps []BodyCapture) (int, error) {
	type packed struct {
		c          *BodyCapture
		req, res   []byte
		reqT, resT bool
	}
	rows := make([]packed, len(caps))
	for i := range caps {
		c := &caps[i]
		rows[i].c = c
		rows[i].req, rows[i].reqT = packBody(c.Request)
		rows[i].res, rows[i].resT = packBody(c.Response)
	}
	kept := 0
	if s.db.Postgres {
		// On PostgreSQL bodies are written on a connection of their own,
		// beside the money path's group commit rather than in it: each
		// group holds one connection, and a bodies write would make the
		// calls' holds and charges in its group wait for it.
		err := s.db.w.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
			var keeping []string
			keys := map[string]bool{}
			for _, r := range rows {
				keys[r.c.KeyID] = true
			}
			ids := make([]string, 0, len(keys))
			for id := range keys {
				ids = append(ids, id)
			}
			if err := tx.Model(&APIKey{}).Where("id IN ? AND keep_bodies AND status <> ?", ids, KeyRevoked).
				Pluck("id", &keeping).Error; err != nil {
				return err
			}
			var out []requestBodyRow
			for _, r := range rows {
				if !slices.Contains(keeping, r.c.KeyID) {
					continue
				}
				at := r.c.CreatedAt.UTC()
				out = append(out, requestBodyRow{RequestID: r.c.RequestID, AccountID: r.c.AccountID, KeyID: r.c.KeyID,
					CreatedAt: at, ExpiresAt: at.AddDate(0, 0, min(max(r.c.Days, 1), MaxKeepBodiesDays)),
					RequestBody: r.req, RequestTruncated: r.reqT, ResponseBody: r.res, ResponseTruncated: r.resT, Chunks: r.c.Chunks})
			}
			kept = len(out)
			if kept == 0 {
				return nil
			}
			return tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&out).Error
		})
		return kept, err
	}
	err := s.write(ctx, func(w *wtx) error {
		kept = 0
		keeps := map[string]bool{}
		for _, r := range rows {
			ok, seen := keeps[r.c.KeyID]
			if !seen {
				n, err := w.queryInt(qKeyKeepsBodies, r.c.KeyID)
				if err != nil {
					return err
				}
				ok = n > 0
				keeps[r.c.KeyID] = ok
			}
			if !ok {
				continue
			}
			at := r.c.CreatedAt.UTC()
			days := min(max(r.c.Days, 1), MaxKeepBodiesDays)
			if err := w.later(qInsertBodies, r.c.RequestID, r.c.AccountID, r.c.KeyID, at, at.AddDate(0, 0, days),
				r.req, r.reqT, r.res, r.resT, r.c.Chunks); err != nil {
				return err
			}
			kept++
		}
		return nil
	})
	return kept, err
}

// RequestBodiesOf returns the kept bodies of a request of an account;
// another account's, or none kept, is ErrNotFound.
func (s *Store) RequestBodiesOf(ctx context.Context, accountID, requestID string) (*KeptBodies, error) {
	var row requestBodyRow
	err := s.db.r.WithContext(ctx).Where("request_id = ? AND account_id = ?", requestID, accountID).Take(&row).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := &KeptBodies{RequestID: row.RequestID, CreatedAt: row.CreatedAt, ExpiresAt: row.ExpiresAt,
		RequestTruncated: row.RequestTruncated, ResponseTruncated: row.ResponseTruncated, Chunks: row.Chunks}
	if out.Request, err = unpackBody(row.RequestBody); err != nil {
		return nil, err
	}
	if out.Response, err = unpackBody(row.ResponseBody); err != nil {
		return nil, err
	}
	return out, nil
}

// KeptBodiesCount says how many calls' bodies a key of an account keeps.
func (s *Store) KeptBodiesCount(ctx context.Context, accountID, keyID string) (int64, error) {
	var n int64
	err := s.db.r.WithContext(ctx).Model(&requestBodyRow{}).Where("key_id = ? AND account_id = ?", keyID, accountID).Count(&n).Error
	return n, err
}

var (
	qDeleteBodies = newQuery(`DELETE FROM request_bodies WHERE request_id IN (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
		?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	deleteBodiesArgs = 32
)

// PurgeBodies deletes the bodies kept past their retention (expires_at
// before now), in small transactions with a pause between them, so the
// writer is never held for long. It returns how many it deleted; ctx ends
// it between batches.
func (s *Store) PurgeBodies(ctx context.Context, now time.Time, batch int, pause time.Duration) (int, error) {
	return s.deleteBodies(ctx, func(q *gorm.DB) *gorm.DB {
		return q.Where("expires_at < ?", now.UTC()).Order("expires_at")
	}, batch, pause)
}

// DeleteKeyBodies deletes every body a key of an account keeps, in the
// same small batches; its owner asked for it, or revoked the key.
func (s *Store) DeleteKeyBodies(ctx context.Context, accountID, keyID string) (int, error) {
	return s.deleteBodies(ctx, func(q *gorm.DB) *gorm.DB {
		return q.Where("key_id = ? AND account_id = ?", keyID, accountID)
	}, RetentionBatch, 10*time.Millisecond)
}

func (s *Store) deleteBodies(ctx context.Context, which func(*gorm.DB) *gorm.DB, batch int, pause time.Duration) (int, error) {
	if batch <= 0 {
		batch = RetentionBatch
	}
	total := 0
	for {
		var ids []string
		q := which(s.db.w.WithContext(ctx).Model(&requestBodyRow{}))
		if err := q.Limit(batch).Pluck("request_id", &ids).Error; err != nil {
			return total, err
		}
		if len(ids) == 0 {
			return total, nil
		}
		var deleted int64
		err := s.write(ctx, func(w *wtx) error {
			deleted = 0
			for i := 0; i < len(ids); i += deleteBodiesArgs {
				args := make([]any, deleteBodiesArgs)
				for j := range args {
					args[j] = ids[min(i+j, len(ids)-1)] // a short last chunk repeats its last id
				}
				n, err := w.exec(qDeleteBodies, args...)
				if err != nil {
					return err
				}
				deleted += n
			}
			return nil
		})
		if err != nil {
			return total, err
		}
		total += int(deleted)
		if len(ids) < batch {
			return total, nil
		}
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-time.After(pause):
		}
	}
}

// DeleteKeptBodiesNow deletes, at its owner's request, every body a key of
// an account keeps, and records in the audit log how many calls' bodies
// went (after the batches that delete them, even when one fails: what
// went, went). Another account's key is ErrNotFound. It returns how many
// calls' bodies went.
func (s *Store) DeleteKeptBodiesNow(ctx context.Context, accountID, keyID string, by Actor) (int, error) {
	k, err := s.APIKeyOf(ctx, accountID, keyID)
	if err != nil {
		return 0, err
	}
	n, err := s.DeleteKeyBodies(ctx, accountID, keyID)
	if n == 0 {
		return n, err
	}
	e := by.Stamp(keyEntry(k, AuditKeyBodiesDeleted, "kept_bodies", plural(n, "call", "calls"), "deleted"))
	if aerr := s.Audit(context.WithoutCancel(ctx), e); err == nil {
		err = aerr
	}
	return n, err
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

package models

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
)

// Every id is a prefix, "_" and a ULID: 48 bits of milliseconds, then 80
// bits that tell apart the ids of one millisecond. ULIDs sort by when they
// were made, so an id alone orders and pages a table (the request log
// especially, see RequestFilter).

// idSource makes a Store's ids. Within a millisecond its ids count up from
// a random start, so ids made one after another sort in the order they
// were made, and it never goes back in time: a clock that steps back
// keeps the last millisecond until it catches up, and ids made after a
// log whose newest id is ahead of the clock come after it (see after).
type idSource struct {
	mu   sync.Mutex
	last ulid.ULID
}

// newID returns prefix + "_" + a ULID later than every one made before.
func (g *idSource) newID(prefix string) string {
	g.mu.Lock()
	ms := ulid.Timestamp(time.Now())
	if ms > g.last.Time() {
		var u ulid.ULID
		_ = u.SetTime(ms) // every millisecond of a time.Time fits in 48 bits
		_, _ = rand.Read(u[6:])
		u[6] &= 0x7f // half the range is left to count up through
		g.last = u
	} else {
		g.last = successor(g.last)
	}
	u := g.last
	g.mu.Unlock()
	return prefix + "_" + u.String()
}

// after makes the ids made from now on later than id, the newest in the
// request log.
func (g *idSource) after(id string) {
	rest, ok := strings.CutPrefix(id, "req_")
	if !ok {
		return
	}
	u, err := ulid.ParseStrict(rest)
	if err != nil {
		return
	}
	g.mu.Lock()
	if u.Compare(g.last) > 0 {
		g.last = u
	}
	g.mu.Unlock()
}

// successor is the ULID after u: its entropy plus one, or, when that is
// used up, the first of the next millisecond.
func successor(u ulid.ULID) ulid.ULID {
	for i := len(u) - 1; i >= 6; i-- {
		u[i]++
		if u[i] != 0 {
			return u
		}
	}
	_ = u.SetTime(u.Time() + 1)
	return u
}

// NewID returns a new id with prefix, later than every id the store made
// before it.
func (s *Store) NewID(prefix string) string { return s.ids.newID(prefix) }

// NewRequestID returns a new request id, later than every one the store
// made before it and than the newest in the log when it opened.
func (s *Store) NewRequestID() string { return s.ids.newID("req") }

// NewRequestIDAt returns a request id for a call made at at, for a log
// written after the fact (an import, a test's history): at's millisecond
// and 80 random bits.
func NewRequestIDAt(at time.Time) string {
	var b [10]byte
	_, _ = rand.Read(b[:])
	return requestIDFrom(ulid.Timestamp(at), binary.BigEndian.Uint16(b[:2]), binary.BigEndian.Uint64(b[2:]))
}

// NewRequestIDAtWith is NewRequestIDAt with its random bits given, hi
// then lo: a history drawn from a seed gets the same ids every time.
func NewRequestIDAtWith(at time.Time, hi uint16, lo uint64) string {
	return requestIDFrom(ulid.Timestamp(at), hi, lo)
}

// requestIDFrom is "req_" and the ULID of millisecond ms whose entropy is
// hi then lo.
func requestIDFrom(ms uint64, hi uint16, lo uint64) string {
	var u ulid.ULID
	_ = u.SetTime(ms)
	binary.BigEndian.PutUint16(u[6:8], hi)
	binary.BigEndian.PutUint64(u[8:], lo)
	return "req_" + u.String()
}

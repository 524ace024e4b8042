package models

import (
	"crypto/rand"
	"encoding/binary"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/oklog/ulid/v2"
)

var (
	entropyMu sync.Mutex
	entropy   = ulid.Monotonic(rand.Reader, 0)
)

// NewID returns prefix + "_" + a ULID. ULIDs sort by creation time, so an id
// alone orders and pages a table. Monotonic entropy keeps ids made in the
// same millisecond in order.
func NewID(prefix string) string {
	entropyMu.Lock()
	id := ulid.MustNew(ulid.Timestamp(time.Now()), entropy)
	entropyMu.Unlock()
	return prefix + "_" + id.String()
}

// A request id is a ULID too, "req_" + 26 characters, but its first 16
// bits of entropy are a place rather than chance: a count of the ids made
// in the same millisecond (the gateway's, below 0x8000) or a seeded row's
// draw (0x8000 and above, see seed.go), then 64 random bits. So the
// millisecond and those 16 bits, RequestSeq, are unique and order ids as
// their text does, and SQLite keeps the request log in that order by
// them, as an integer, rather than by the 30-character id (see migration
// 9).
const (
	seqCountBits = 16
	seqSeeded    = 1 << 15 // the seeded half of a millisecond's places
)

var requestIDs struct {
	sync.Mutex
	ms    uint64 // the millisecond of the last id made
	count uint64 // how many ids were made in it, less one
}

// NewRequestID returns a new request id, later than every one made before
// it by this process and than the newest in the log at start-up (see
// keepRequestIDsAfter): a clock that steps back keeps the last millisecond
// until it catches up.
func NewRequestID() string {
	g := &requestIDs
	g.Lock()
	ms := ulid.Timestamp(time.Now())
	switch {
	case ms > g.ms:
		g.ms, g.count = ms, 0
	case g.count+1 < seqSeeded:
		g.count++
	default: // a millisecond's places are used up: borrow the next one
		g.ms, g.count = g.ms+1, 0
	}
	ms, count := g.ms, g.count
	g.Unlock()
	id, _ := requestID(ms, uint16(count), randomUint64())
	return id
}

var madeAt atomic.Uint64

// NewRequestIDAt returns a request id for a call made at at, for a log
// written after the fact (an import, a test's history). Its place is in the
// seeded half of at's millisecond, counted across the process, so two ids
// it makes differ unless 32,768 others were made between them.
func NewRequestIDAt(at time.Time) string {
	id, _ := requestID(ulid.Timestamp(at), uint16(seqSeeded|madeAt.Add(1)%seqSeeded), randomUint64())
	return id
}

// requestID is "req_" and the ULID of millisecond ms, then place, then
// random; and the id's place in the log, RequestSeq.
func requestID(ms uint64, place uint16, random uint64) (string, int64) {
	var u ulid.ULID
	_ = u.SetTime(ms) // every millisecond of a time.Time fits in 48 bits
	binary.BigEndian.PutUint16(u[6:8], place)
	binary.BigEndian.PutUint64(u[8:], random)
	return "req_" + u.String(), seqOf(ms, place)
}

// seqOf is the place in the log of millisecond ms's place.
func seqOf(ms uint64, place uint16) int64 { return int64(ms<<seqCountBits | uint64(place)) }

func randomUint64() uint64 {
	var b [8]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint64(b[:])
}

// keepRequestIDsAfter makes the ids this process makes from now on later
// than seq, the newest place in the log.
func keepRequestIDsAfter(seq int64) {
	g := &requestIDs
	g.Lock()
	if ms := uint64(seq) >> seqCountBits; ms >= g.ms {
		g.ms, g.count = ms+1, 0
	}
	g.Unlock()
}

// RequestSeq is a request id's place in the log: its millisecond and the
// first 16 bits of its entropy. A time's smallest id, RequestIDAt, gives
// the first place of that millisecond. Text that is not a request id gives
// 0.
func RequestSeq(id string) int64 {
	rest, ok := strings.CutPrefix(id, "req_")
	if !ok || len(rest) != ulid.EncodedSize {
		return 0
	}
	u, err := ulid.ParseStrict(rest)
	if err != nil {
		return 0
	}
	return seqOf(u.Time(), binary.BigEndian.Uint16(u[6:8]))
}

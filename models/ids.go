package models

import (
	"crypto/rand"
	"sync"
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

package models

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters: OWASP's recommended minimum (19 MiB, 2 passes, one
// lane), which keeps a login well under 100 ms on a small server.
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// Every hash holds argonMemory for its whole run, and anyone may ask for
// one (sign-up, login), so how many run at once is what bounds the memory
// those forms can take: at most 4 slots, 76 MiB. More slots than cores
// would not finish hashes sooner anyway. A request waits this long for a
// slot, then is told to come back.
const (
	maxHashSlots    = 4
	DefaultHashWait = 2 * time.Second
)

// DefaultHashSlots is the number of hashes that may run at once: one per
// core, at least 2 and at most 4.
func DefaultHashSlots() int { return min(max(runtime.NumCPU(), 2), maxHashSlots) }

// ErrBusy is the answer when every hashing slot stayed taken for the whole
// wait: nothing was checked or changed, and trying again shortly works.
var ErrBusy = &Error{Code: EUNAVAILABLE, Message: "The service is busy. Wait a moment and try again."}

// hasher runs argon2id hashes, a bounded number at a time.
type hasher struct {
	slots   chan struct{}
	wait    time.Duration
	running atomic.Int64
	hashed  atomic.Uint64
	refused atomic.Uint64
}

func newHasher(slots int, wait time.Duration) *hasher {
	return &hasher{slots: make(chan struct{}, max(slots, 1)), wait: wait}
}

// run calls f in a free slot, waiting for one at most h.wait.
func (h *hasher) run(ctx context.Context, f func()) error {
	select {
	case h.slots <- struct{}{}:
	default:
		t := time.NewTimer(h.wait)
		defer t.Stop()
		select {
		case h.slots <- struct{}{}:
		case <-t.C:
			h.refused.Add(1)
			return ErrBusy
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h.running.Add(1)
	defer func() {
		h.running.Add(-1)
		<-h.slots
	}()
	f()
	h.hashed.Add(1)
	return nil
}

// hash returns an encoded argon2id hash of password.
func (h *hasher) hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	var key []byte
	if err := h.run(ctx, func() {
		key = argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	}); err != nil {
		return "", err
	}
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// check reports whether password matches the encoded hash. It costs one
// hash whatever it is given: a hash it cannot read, or a password over the
// length limit, is checked against dummyHash and fails.
func (h *hasher) check(ctx context.Context, encoded, password string) (bool, error) {
	p, ok := parseHash(encoded)
	if !ok || len(password) > MaxPasswordLen {
		p, _ = parseHash(dummyHash)
		ok = false
	}
	var got []byte
	if err := h.run(ctx, func() {
		got = argon2.IDKey([]byte(password), p.salt, p.time, p.memory, p.threads, uint32(len(p.key)))
	}); err != nil {
		return false, err
	}
	return ok && subtle.ConstantTimeCompare(got, p.key) == 1, nil
}

type argonHash struct {
	memory, time uint32
	threads      uint8
	salt, key    []byte
}

// parseHash reads an encoded argon2id hash; one whose cost is not ours
// (an edited row) is refused rather than run.
func parseHash(encoded string) (argonHash, bool) {
	var p argonHash
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return p, false
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.memory, &p.time, &p.threads); err != nil {
		return p, false
	}
	if p.memory != argonMemory || p.time != argonTime || p.threads != argonThreads {
		return p, false
	}
	b64 := base64.RawStdEncoding
	var err error
	if p.salt, err = b64.DecodeString(parts[4]); err != nil {
		return p, false
	}
	if p.key, err = b64.DecodeString(parts[5]); err != nil || len(p.key) != argonKeyLen {
		return p, false
	}
	return p, true
}

// dummyHash is checked against when there is no real hash to check, so a
// wrong email takes as long as a wrong password.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$bm90IGEgcmVhbCBzYWx0$" +
	"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY"

// LimitHashing sets how many password hashes may run at once and how long
// a request waits for a free slot before ErrBusy. Call it before serving.
func (s *Store) LimitHashing(slots int, wait time.Duration) {
	s.hashes = newHasher(slots, wait)
}

// HashStats is what the password hasher has done since start.
type HashStats struct {
	Slots   int    // hashes that may run at once
	Running int    // hashes running now
	Hashed  uint64 // hashes computed
	Refused uint64 // requests refused with ErrBusy
}

// HashStats returns the password hasher's counters, for metrics.
func (s *Store) HashStats() HashStats {
	h := s.hashes
	return HashStats{Slots: cap(h.slots), Running: int(h.running.Load()), Hashed: h.hashed.Load(), Refused: h.refused.Load()}
}

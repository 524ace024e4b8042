package models

import (
	"sync"
	"sync/atomic"
	"time"
)

// Cached reads. A key's settings may be read up to keyCacheTTL late on
// another instance; on this instance every write to a key drops the cache
// at once, so a change made in the console applies to the next call.
const (
	keyCacheTTL     = 2 * time.Second
	catalogCacheTTL = time.Minute
)

// ttlCache keeps values for a short time. Dropping the cache bumps a
// generation, so an entry read before a write is never served after it.
type ttlCache[V any] struct {
	gen atomic.Uint64
	m   sync.Map // string -> ttlEntry[V]
}

type ttlEntry[V any] struct {
	v   V
	gen uint64
	at  time.Time
}

func (c *ttlCache[V]) get(k string, ttl time.Duration) (V, bool) {
	var zero V
	e, ok := c.m.Load(k)
	if !ok {
		return zero, false
	}
	en := e.(ttlEntry[V])
	if en.gen != c.gen.Load() || time.Since(en.at) > ttl {
		return zero, false
	}
	return en.v, true
}

// put stores v, read while the generation was gen.
func (c *ttlCache[V]) put(k string, v V, gen uint64) {
	c.m.Store(k, ttlEntry[V]{v: v, gen: gen, at: time.Now()})
}

// drop forgets every entry.
func (c *ttlCache[V]) drop() { c.gen.Add(1) }

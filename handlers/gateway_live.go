package handlers

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Why a stream stopped before its end, as the cause of its context.
var (
	errHoldLost  = errors.New("its hold could not be kept alive")
	errHoldEnded = errors.New("its hold had already ended")
	errStreamMax = errors.New("it reached the maximum stream duration")
)

// liveCalls are the calls of this instance whose holds it keeps alive:
// while an instance serves a call, the reaper must not end its hold, and
// once the hold could end, the call must deliver nothing more.
//
// Every HoldTTL/4 one statement pushes the expiry of all of them a full
// TTL ahead (renewHolds). Each call also has a lease: a timer that stops
// it a quarter TTL before the expiry last written. Should the database be
// out of reach for that long, the call is cut before the reaper of any
// instance can end its hold, so no token is ever delivered without one.
type liveCalls struct {
	mu    sync.Mutex
	calls map[string]*liveCall
}

type liveCall struct {
	stop  context.CancelCauseFunc
	lease *time.Timer
}

// keepAlive registers the call id, whose hold expires at expires, until
// the returned func is called. stop is called, with the reason, when the
// call must end because its hold could not be kept.
func (a *App) keepAlive(id string, expires time.Time, stop context.CancelCauseFunc) (done func()) {
	lc := &liveCall{stop: stop}
	lc.lease = time.AfterFunc(time.Until(expires)-a.holdMargin(), func() { stop(errHoldLost) })
	a.live.mu.Lock()
	a.live.calls[id] = lc
	a.live.mu.Unlock()
	return func() {
		lc.lease.Stop()
		a.live.mu.Lock()
		delete(a.live.calls, id)
		a.live.mu.Unlock()
	}
}

// holdMargin is how long before its hold's expiry a call is cut when the
// hold could not be renewed.
func (a *App) holdMargin() time.Duration { return a.HoldTTL / 4 }

// renewHolds keeps the holds of this instance's live calls open, every
// HoldTTL/4, until the app closes.
func (a *App) renewHolds(ctx context.Context) {
	t := time.NewTicker(a.HoldTTL / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.renewHoldsOnce(ctx)
	}
}

func (a *App) renewHoldsOnce(ctx context.Context) {
	a.live.mu.Lock()
	ids := make([]string, 0, len(a.live.calls))
	for id := range a.live.calls {
		ids = append(ids, id)
	}
	a.live.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	until := time.Now().Add(a.HoldTTL)
	ended, err := a.Store.KeepHoldsAlive(ctx, ids, until)
	if err != nil {
		if ctx.Err() == nil {
			// The leases run on: each call stops before its hold can expire.
			a.Log.Error("keep holds alive", "calls", len(ids), "err", err.Error())
		}
		return
	}
	gone := make(map[string]bool, len(ended))
	for _, id := range ended {
		gone[id] = true
	}
	lease := time.Until(until) - a.holdMargin()
	a.live.mu.Lock()
	defer a.live.mu.Unlock()
	for _, id := range ids {
		lc := a.live.calls[id]
		if lc == nil {
			continue // finished meanwhile
		}
		if gone[id] {
			a.Log.Warn("hold ended while its call was live: stopping the call", "request_id", id)
			lc.stop(errHoldEnded)
			continue
		}
		lc.lease.Reset(lease)
	}
}

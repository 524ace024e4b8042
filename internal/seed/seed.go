// Package seed writes a realistic request history for an account: the
// demo data of `ttconsole admin seed`, the Requests page's benchmark and
// tests. The calls are made with the models of the catalogue, at its
// prices; the store writes them (models.Store.WriteHistory).
package seed

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"ttconsole/models"
)

// Options shape a seeded request history.
type Options struct {
	Requests int           // how many rows
	Span     time.Duration // spread over this much time before Now; default 30 days
	Now      time.Time     // default time.Now()
	KeyIDs   []string      // the account's keys to spread calls over; none = calls no key identified
	Seed     uint64        // for a reproducible history; 0 = random
	Progress func(done int)
}

// scenario is one kind of call the history mixes in.
type scenario struct {
	weight      int
	kind        models.HistoryKind
	charged     bool // the call ran and was charged
	partial     bool // a stream cut off
	held        bool // the call held money (a refused one held nothing: its row says what it was refused)
	rateLimited bool
	noKey       bool
}

// The keys' rate limit, and the addresses calls come from.
const rpm = 60

var ips = []string{"203.0.113.7", "203.0.113.8", "198.51.100.23", "2001:db8::17", "192.0.2.44"}

// scenarios are the calls of a history and how often each comes, their
// messages naming the catalogue's first chat model (small) and its last
// (large).
func scenarios(small, large models.CatalogModel) []scenario {
	rejected := func(status int, typ, msg string) models.HistoryKind {
		return models.HistoryKind{Status: status, ErrorType: typ, ErrorMessage: msg, ErrorBody: body(typ, msg),
			Outcome: models.OutcomeNotChargedRejected}
	}
	failed := func(status int, typ, msg string) models.HistoryKind {
		return models.HistoryKind{Status: status, ErrorType: typ, ErrorMessage: msg, ErrorBody: body(typ, msg),
			Outcome: models.OutcomeNotChargedFailed, Detail: msg}
	}
	refused := func(typ, msg string, hold int64) models.HistoryKind {
		k := rejected(402, typ, msg)
		k.RefusedHoldMicros = hold
		return k
	}
	notFound := rejected(404, "not_found", "No route for POST /v1/v1/chat/completions: the base URL has one /v1 too many.")
	notFound.Path = "/v1/v1/chat/completions"
	return []scenario{
		{weight: 820, kind: models.HistoryKind{Status: 200, Outcome: models.OutcomeCharged}, charged: true, held: true},
		{weight: 15, kind: models.HistoryKind{Status: 200, Outcome: models.OutcomeChargedPartial, Detail: "client disconnected after %d tokens"},
			charged: true, partial: true, held: true},
		{weight: 40, kind: rejected(429, "rate_limited", fmt.Sprintf("This key allows %d requests per minute; retry after the window resets.", rpm)), rateLimited: true},
		{weight: 20, kind: rejected(400, "invalid_request", fmt.Sprintf("max_tokens must be at most %d for %s.", small.MaxOutputTokens, small.ID))},
		{weight: 12, kind: rejected(401, "unauthorized", "The API key is missing or invalid. Send Authorization: Bearer sk-tt-…."), noKey: true},
		// The gateway's own words for a refused hold (handlers.holdError).
		{weight: 12, kind: refused("billing_shortfall", (&models.ShortfallError{AvailableMicros: 10_000, HoldMicros: 24_600}).Error()+
			" Go to Billing in the console to recharge.", 24_600)},
		{weight: 10, kind: refused("api_key_quota_exceeded", (&models.QuotaError{LimitMicros: 50 * models.MicrosPerUSD,
			MonthToDateMicros: 49_990_000, HoldMicros: 24_600}).Error()+" Raise the key's monthly limit in the console, or use another key.", 24_600)},
		{weight: 12, kind: rejected(403, "model_not_allowed", fmt.Sprintf("%q is not in the scope of this API key, which allows: %s", large.ID, small.ID))},
		{weight: 12, kind: rejected(403, "ip_not_allowed", "Calls from "+ips[2]+" are not allowed with this API key.")},
		{weight: 15, kind: notFound, noKey: true},
		{weight: 18, kind: failed(502, "upstream_error", "The model server failed to answer. Not charged; retry with backoff."), held: true},
		{weight: 8, kind: failed(503, "service_unavailable", "The model server is overloaded. Not charged; retry with backoff."), held: true},
		{weight: 6, kind: failed(504, "upstream_timeout", "The model server did not answer in time. Not charged; retry with backoff."), held: true},
	}
}

// body is the error body the gateway answers with.
func body(typ, msg string) string {
	return `{"error":{"type":"` + typ + `","message":` + fmt.Sprintf("%q", msg) + `}}`
}

// Requests writes a seeded request history for an account: a mix of
// successes, each error type, the catalogue's models, the account's keys,
// billing outcomes and stream flags, spread evenly over the span before
// now, ids made from each row's time so the history pages like real
// traffic. Request rows only: no money moves.
func Requests(ctx context.Context, s *models.Store, accountID string, opt Options) (int, error) {
	h, err := History(ctx, s, opt)
	if err != nil {
		return 0, err
	}
	return s.WriteHistory(ctx, accountID, h)
}

// History is the history Requests writes, for a store to write.
func History(ctx context.Context, s *models.Store, opt Options) (models.History, error) {
	if opt.Requests <= 0 {
		return models.History{}, nil
	}
	if opt.Span <= 0 {
		opt.Span = 30 * 24 * time.Hour
	}
	if opt.Now.IsZero() {
		opt.Now = time.Now()
	}
	seed := opt.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	catalogue, err := s.Models(ctx)
	if err != nil {
		return models.History{}, err
	}
	g := &gen{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), keys: opt.KeyIDs}
	var chats []models.CatalogModel
	for _, m := range catalogue {
		// Calls answered at once: the chat models, the first (the small,
		// everyday one) most often, and the embedding models.
		weight := 1
		switch m.Kind {
		case models.KindChat:
			weight = max(1, 6/(len(chats)+1))
			chats = append(chats, m)
		case models.KindEmbeddings:
		default:
			continue
		}
		g.models = append(g.models, m)
		g.modelWeights = append(g.modelWeights, weight)
		g.totalModels += weight
	}
	if len(chats) == 0 {
		return models.History{}, errors.New("seed: the catalogue has no chat model")
	}
	g.scenarios = scenarios(chats[0], chats[len(chats)-1])
	h := models.History{IPs: ips, RPM: rpm, Calls: opt.Requests, Progress: opt.Progress}
	for _, sc := range g.scenarios {
		h.Kinds = append(h.Kinds, sc.kind)
		g.totalScenarios += sc.weight
	}
	for _, m := range g.models {
		h.Models = append(h.Models, models.HistoryModel{ID: m.ID, Path: m.Path()})
	}
	h.From, h.To = opt.Now.Add(-opt.Span).UTC(), opt.Now.UTC()
	step := opt.Span / time.Duration(opt.Requests)
	i := 0
	h.Next = func() models.HistoryCall {
		c := g.next(h.From.Add(time.Duration(i) * step))
		i++
		return c
	}
	return h, nil
}

// gen draws a history's calls.
type gen struct {
	rng            *rand.Rand
	keys           []string
	scenarios      []scenario
	totalScenarios int
	models         []models.CatalogModel
	modelWeights   []int
	totalModels    int
}

// draw picks an index by weight.
func draw(rng *rand.Rand, weights func(i int) int, total int) int {
	w := rng.IntN(total)
	for i := 0; ; i++ {
		if w < weights(i) {
			return i
		}
		w -= weights(i)
	}
}

// next draws the call made at at.
func (g *gen) next(at time.Time) models.HistoryCall {
	rng := g.rng
	var c models.HistoryCall
	c.Kind = draw(rng, func(i int) int { return g.scenarios[i].weight }, g.totalScenarios)
	sc := &g.scenarios[c.Kind]
	c.Model = draw(rng, func(i int) int { return g.modelWeights[i] }, g.totalModels)
	m := &g.models[c.Model]
	c.ID = models.NewRequestIDAtWith(at, uint16(rng.Uint32()), rng.Uint64())
	if len(g.keys) > 0 && !sc.noKey {
		c.KeyID = g.keys[rng.IntN(len(g.keys))]
	}
	c.Stream = m.Kind == models.KindChat && rng.IntN(3) == 0
	if sc.partial {
		c.Stream = true
	}
	c.PromptTokens = 20 + rng.IntN(2000)
	c.LatencyMS = 5 + rng.IntN(40)
	if sc.held {
		c.HoldMicros = models.TokenCost(c.PromptTokens, models.DefaultMaxTokens, m.InputMicrosPerMTok, m.OutputMicrosPerMTok)
	}
	if sc.charged {
		if m.Kind == models.KindChat {
			c.CompletionTokens = 16 + rng.IntN(900)
		}
		if sc.partial {
			c.CompletionTokens /= 3
		}
		c.ChargedMicros = min(c.HoldMicros, models.TokenCost(c.PromptTokens, c.CompletionTokens, m.InputMicrosPerMTok, m.OutputMicrosPerMTok))
		c.LatencyMS = 200 + rng.IntN(4000)
	}
	if sc.kind.Outcome == models.OutcomeNotChargedFailed {
		c.LatencyMS = 500 + rng.IntN(30000)
	}
	if c.KeyID != "" {
		c.RatelimitRemaining = rng.IntN(rpm)
		c.RatelimitReset = at.Unix() + int64(1+rng.IntN(60))
		if sc.rateLimited {
			c.RatelimitRemaining = 0
			c.RetryAfter = 1 + rng.IntN(60)
			c.RatelimitReset = at.Unix() + int64(c.RetryAfter)
		}
	}
	c.IP = rng.IntN(len(ips))
	c.CreatedAt = at
	c.CompletedAt = at.Add(time.Duration(c.LatencyMS) * time.Millisecond)
	return c
}

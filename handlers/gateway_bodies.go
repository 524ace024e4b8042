package handlers

import (
	"bytes"
	"context"
	"encoding/json"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"ttconsole/models"
)

// Bodies of calls whose key keeps them are written after the answer has
// gone, by one goroutine, in batches: a call never waits for its bodies to
// be written. When the queue is full (the database has fallen behind) a
// call's bodies are dropped and counted, never waited for.
const (
	bodyQueueLen   = 256 // at most 256 × 2 × 64 KiB held
	bodyBatchLen   = 64
	bodyBatchWait  = 50 * time.Millisecond // a batch gathers for this long at most
	bodyWriteLimit = 10 * time.Second
)

// bodyQueue holds the captured bodies not written yet.
type bodyQueue struct {
	ch      chan models.BodyCapture
	dropped prometheus.Counter
	kept    prometheus.Counter
	done    chan struct{}
}

func newBodyQueue(reg prometheus.Registerer) *bodyQueue {
	q := &bodyQueue{
		ch:   make(chan models.BodyCapture, bodyQueueLen),
		done: make(chan struct{}),
		dropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tt_gateway_bodies_dropped_total",
			Help: "Calls whose bodies their key keeps but were not kept: the write queue was full, or the write failed.",
		}),
		kept: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tt_gateway_bodies_kept_total",
			Help: "Calls whose request and response bodies were kept.",
		}),
	}
	reg.MustRegister(q.dropped, q.kept)
	return q
}

// add queues a call's bodies, or drops them when the queue is full.
func (q *bodyQueue) add(c models.BodyCapture) {
	select {
	case q.ch <- c:
	default:
		q.dropped.Inc()
	}
}

// run writes queued bodies until ctx ends, then writes what is left.
func (q *bodyQueue) run(ctx context.Context, a *App) {
	defer close(q.done)
	batch := make([]models.BodyCapture, 0, bodyBatchLen)
	for {
		select {
		case c := <-q.ch:
			batch = append(batch[:0], c)
		case <-ctx.Done():
			for {
				batch = batch[:0]
				for len(batch) < bodyBatchLen && len(q.ch) > 0 {
					batch = append(batch, <-q.ch)
				}
				if len(batch) == 0 {
					return
				}
				q.write(a, batch)
			}
		}
		// One write a batch: its cost is mostly per write, not per body.
		gather := time.NewTimer(bodyBatchWait)
	fill:
		for len(batch) < bodyBatchLen {
			select {
			case c := <-q.ch:
				batch = append(batch, c)
			case <-gather.C:
				break fill
			case <-ctx.Done():
				break fill
			}
		}
		gather.Stop()
		q.write(a, batch)
	}
}

func (q *bodyQueue) write(a *App, batch []models.BodyCapture) {
	ctx, cancel := context.WithTimeout(context.Background(), bodyWriteLimit)
	defer cancel()
	kept, err := a.Store.SaveBodies(ctx, batch)
	if err != nil {
		q.dropped.Add(float64(len(batch)))
		a.Log.Error("keep request bodies", "calls", len(batch), "err", err.Error())
		return
	}
	q.kept.Add(float64(kept))
	clear(batch) // keep no body alive
}

// keepBodies queues the bodies of a call whose key keeps them: the request
// as received and the answer as the client got it (an error's JSON when it
// failed). Called once the call's answer is settled.
func (a *App) keepBodies(gc *call) {
	if !gc.keep || gc.row.AccountID == nil || gc.row.KeyID == nil {
		return
	}
	gc.keep = false // once
	res := gc.resp
	if res == nil && gc.row.ErrorBody != "" {
		res = []byte(gc.row.ErrorBody)
	}
	a.bodies.add(models.BodyCapture{
		RequestID: gc.row.ID, AccountID: *gc.row.AccountID, KeyID: *gc.row.KeyID, CreatedAt: gc.row.CreatedAt,
		Days: gc.key.KeepBodiesDays, Request: models.ClipBody(gc.body), Response: models.ClipBody(res), Chunks: gc.chunks,
	})
}

// keptAnswer records v as the answer of a call whose key keeps bodies.
func (gc *call) keptAnswer(v any) {
	if gc.keep {
		gc.resp, _ = json.Marshal(v)
	}
}

// streamAssembly rebuilds a chat stream's final message from its chunks,
// as a non-stream call would have answered: one message per choice, its
// deltas joined. Content past BodyLimit is not gathered: the kept body is
// cut there anyway.
type streamAssembly struct {
	chunks  int
	size    int
	id      string
	model   string
	created int64
	choices map[int]*assembledChoice
	order   []int
	usage   json.RawMessage
}

type assembledChoice struct {
	role    string
	content bytes.Buffer
	finish  *string
}

// add reads one data line of the stream as the client got it.
func (s *streamAssembly) add(line []byte) {
	data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data:"))
	if !ok {
		return
	}
	data = bytes.TrimSpace(data)
	if len(data) == 0 || bytes.Equal(data, []byte("[DONE]")) {
		return
	}
	s.chunks++
	var chunk struct {
		ID      string `json:"id"`
		Model   string `json:"model"`
		Created int64  `json:"created"`
		Choices []struct {
			Index int `json:"index"`
			Delta struct {
				Role    string `json:"role"`
				Content string `json:"content"`
			} `json:"delta"`
			FinishReason *string `json:"finish_reason"`
		} `json:"choices"`
		Usage json.RawMessage `json:"usage"`
	}
	if json.Unmarshal(data, &chunk) != nil {
		return
	}
	if s.id == "" {
		s.id, s.model, s.created = chunk.ID, chunk.Model, chunk.Created
	}
	if len(chunk.Usage) > 0 && !bytes.Equal(chunk.Usage, []byte("null")) {
		s.usage = chunk.Usage
	}
	for _, ch := range chunk.Choices {
		if s.choices == nil {
			s.choices = map[int]*assembledChoice{}
		}
		c := s.choices[ch.Index]
		if c == nil {
			c = &assembledChoice{role: "assistant"}
			s.choices[ch.Index] = c
			s.order = append(s.order, ch.Index)
		}
		if ch.Delta.Role != "" {
			c.role = ch.Delta.Role
		}
		if s.size <= models.BodyLimit {
			c.content.WriteString(ch.Delta.Content)
			s.size += len(ch.Delta.Content)
		}
		if ch.FinishReason != nil {
			c.finish = ch.FinishReason
		}
	}
}

// message is the reassembled answer, in a chat completion's shape.
func (s *streamAssembly) message() []byte {
	type msg struct {
		Role    string `json:"role"`
		Content string `json:"content"`
	}
	type choice struct {
		Index        int     `json:"index"`
		Message      msg     `json:"message"`
		FinishReason *string `json:"finish_reason"`
	}
	out := struct {
		ID      string          `json:"id,omitempty"`
		Object  string          `json:"object"`
		Created int64           `json:"created,omitempty"`
		Model   string          `json:"model,omitempty"`
		Choices []choice        `json:"choices"`
		Usage   json.RawMessage `json:"usage,omitempty"`
	}{ID: s.id, Object: "chat.completion", Created: s.created, Model: s.model, Choices: []choice{}, Usage: s.usage}
	for _, i := range s.order {
		c := s.choices[i]
		out.Choices = append(out.Choices, choice{Index: i, Message: msg{Role: c.role, Content: c.content.String()}, FinishReason: c.finish})
	}
	b, _ := json.Marshal(out)
	return b
}

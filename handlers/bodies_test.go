package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// keptBodies waits for the bodies of a call to be written (they are
// written after the answer, off the call's path) and returns them.
func keptBodies(t *testing.T, srv *testenv.Server, accountID, requestID string) *models.KeptBodies {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		kb, err := srv.Store.RequestBodiesOf(context.Background(), accountID, requestID)
		if err == nil {
			return kb
		}
		if models.ErrorCode(err) != models.ENOTFOUND || time.Now().After(deadline) {
			t.Fatalf("bodies of %s: %v", requestID, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func noKeptBodies(t *testing.T, srv *testenv.Server, accountID, requestID string) {
	t.Helper()
	if _, err := srv.Store.RequestBodiesOf(context.Background(), accountID, requestID); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("bodies of %s are kept (err %v)", requestID, err)
	}
}

// keyEventTexts reads a key page's history as "What: from → to".
func keyEventTexts(t *testing.T, page string) []string {
	var out []string
	testenv.Doc(t, page).Find(`[data-testid=key-events] tbody tr`).Each(func(_ int, s *goquery.Selection) {
		c := s.Find("td").Map(func(_ int, c *goquery.Selection) string { return strings.TrimSpace(c.Text()) })
		out = append(out, c[2]+": "+c[3]+" → "+c[4])
	})
	return out
}

func bodiesPlatform(t *testing.T) (*testenv.Server, *browser, string, *platform) {
	srv := testenv.NewServer(t)
	b, acct := keyOwner(t, srv, "ada@example.com")
	if _, err := srv.Store.Credit(context.Background(), acct, 20*models.MicrosPerUSD, models.LedgerAdjustment, "test funds", models.LedgerRef{}); err != nil {
		t.Fatal(err)
	}
	return srv, b, acct, &platform{t: t, srv: srv, account: acct}
}

func TestKeyKeepsBodiesOnlyWhileOn(t *testing.T) {
	srv, b, acct, p := bodiesPlatform(t)

	// Bad retention: a message beside the field, a 4xx, no key.
	res, page, _ := b.createKey(url.Values{"name": {"capture"}, "keep_bodies": {"on"}, "keep_bodies_days": {"31"}})
	if res.StatusCode != http.StatusUnprocessableEntity && res.StatusCode != http.StatusBadRequest {
		t.Fatalf("31 days: %d", res.StatusCode)
	}
	if msg := testenv.Doc(t, page).Find("#e-keep_bodies_days").Text(); !strings.Contains(msg, "from 1 to 30") {
		t.Fatalf("31 days: message %q", msg)
	}
	if keys, _ := srv.Store.APIKeysOf(context.Background(), acct); len(keys) != 0 {
		t.Fatal("a key was made from bad input")
	}

	res, _, secret := b.createKey(url.Values{"name": {"capture"}, "rpm": {"600"}, "keep_bodies": {"on"}, "keep_bodies_days": {"3"}})
	if res.StatusCode != http.StatusCreated || secret == "" {
		t.Fatalf("create: %d", res.StatusCode)
	}
	k := onlyKey(t, srv, acct)
	path := "/keys/" + k.ID
	_, page = b.get(path)
	doc := testenv.Doc(t, page)
	if s := strings.Join(strings.Fields(doc.Find("[data-testid=key-bodies]").Text()), " "); !strings.Contains(s, "kept for 3 days") {
		t.Fatalf("key page says %q", s)
	}
	if _, ok := doc.Find(`input[name=keep_bodies]`).Attr("checked"); !ok {
		t.Fatal("the edit form does not show the setting on")
	}
	if evs := keyEventTexts(t, page); !strings.Contains(strings.Join(evs, "\n"), "Request and response bodies: not kept → kept 3 days") {
		t.Fatalf("events %q", evs)
	}

	on := p.chat(secret, 8, nil)
	if on.res.StatusCode != http.StatusOK {
		t.Fatalf("chat: %d %s", on.res.StatusCode, on.body)
	}
	kb := keptBodies(t, srv, acct, on.id())
	if !strings.Contains(kb.Request, "Say hello to the platform.") || kb.Response != on.body {
		t.Fatalf("kept %q / %q; answered %q", kb.Request, kb.Response, on.body)
	}
	if d := kb.ExpiresAt.Sub(kb.CreatedAt); d != 72*time.Hour {
		t.Fatalf("kept for %s, want 3 days", d)
	}

	// Turned off: recorded, and calls from now on are not kept.
	res, _ = b.post(path, path, url.Values{"name": {"capture"}, "rpm": {"600"}, "keep_bodies_days": {"3"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("turn off: %d", res.StatusCode)
	}
	_, page = b.get(path)
	if evs := keyEventTexts(t, page); !strings.Contains(strings.Join(evs, "\n"), "Request and response bodies: kept 3 days → not kept") {
		t.Fatalf("events %q", evs)
	}
	off := p.chat(secret, 8, nil)
	if off.res.StatusCode != http.StatusOK {
		t.Fatalf("chat: %d", off.res.StatusCode)
	}
	// Bodies are written in order: once a later call's are, this one's
	// would have been.
	other, otherSecret := p.newKey(acct, models.KeyInput{Name: "other", RPM: "600", KeepBodies: "on"})
	later := p.chat(otherSecret, 8, nil)
	keptBodies(t, srv, acct, later.id())
	noKeptBodies(t, srv, acct, off.id())
	keptBodies(t, srv, acct, on.id()) // turning it off deletes nothing by itself
	if other.KeepBodiesDays != models.DefaultKeepBodiesDays {
		t.Fatalf("default retention %d", other.KeepBodiesDays)
	}
}

func TestKeptBodiesShownOnlyToTheirAccount(t *testing.T) {
	srv, b, acct, p := bodiesPlatform(t)
	_, secret := p.newKey(acct, models.KeyInput{Name: "capture", RPM: "600", KeepBodies: "on", KeepBodiesDays: "2"})

	// A key secret pasted into a prompt is never kept whole.
	pasted := "sk-tt-" + strings.Repeat("Ab3", 14) + "Z"
	body := fmt.Sprintf(`{"model":"tt-chat-small","max_tokens":8,"messages":[{"role":"user","content":"my key is %s"}]}`, pasted)
	r := p.do("POST", "/v1/chat/completions", secret, body)
	if r.res.StatusCode != http.StatusOK {
		t.Fatalf("chat: %d %s", r.res.StatusCode, r.body)
	}
	kb := keptBodies(t, srv, acct, r.id())
	if strings.Contains(kb.Request, pasted) || strings.Contains(kb.Request, secret) || !strings.Contains(kb.Request, "sk-tt-Ab3A…Ab3Z") {
		t.Fatalf("kept request %q", kb.Request)
	}

	_, page := b.get("/requests/" + r.id())
	doc := testenv.Doc(t, page)
	req := doc.Find("[data-testid=request-body]").Text()
	if !strings.Contains(req, "\n  \"model\": \"tt-chat-small\"") || strings.Contains(page, pasted) {
		t.Fatalf("request body on the page: %q", req)
	}
	res := doc.Find("[data-testid=response-body]").Text()
	var answer map[string]any
	if json.Unmarshal([]byte(res), &answer) != nil || answer["object"] != "chat.completion" || !strings.Contains(res, "\n  ") {
		t.Fatalf("response body on the page: %q", res)
	}
	if v, _ := doc.Find("[data-testid=copy-response]").Attr("data-copy"); v != res {
		t.Fatal("the copy button does not copy the response")
	}
	if doc.Find("[data-testid=request-truncated]").Length() != 0 {
		t.Fatal("a small body is marked truncated")
	}
	// Never in the CSV.
	_, csv := b.get("/requests.csv")
	if strings.Contains(csv, "Say hello") || strings.Contains(csv, "my key is") {
		t.Fatal("the CSV holds a body")
	}

	// Another account: the request, and so its bodies, is a 404.
	bob, _ := keyOwner(t, srv, "bob@example.com")
	got, page := bob.get("/requests/" + r.id())
	if got.StatusCode != http.StatusNotFound || strings.Contains(page, "my key is") {
		t.Fatalf("another account: %d", got.StatusCode)
	}
	if _, err := srv.Store.RequestBodiesOf(context.Background(), "acct_other", r.id()); models.ErrorCode(err) != models.ENOTFOUND {
		t.Fatalf("bodies read with another account id: %v", err)
	}
}

func TestKeptBodiesTruncatedAndStreamReassembled(t *testing.T) {
	srv, b, acct, p := bodiesPlatform(t)
	_, secret := p.newKey(acct, models.KeyInput{Name: "capture", RPM: "600", KeepBodies: "on"})

	big := strings.Repeat("é", 40_000) // 80,000 bytes
	r := p.do("POST", "/v1/chat/completions", secret,
		`{"model":"tt-chat-small","max_tokens":8,"messages":[{"role":"user","content":"`+big+`"}]}`)
	if r.res.StatusCode != http.StatusOK {
		t.Fatalf("chat: %d %s", r.res.StatusCode, r.body)
	}
	kb := keptBodies(t, srv, acct, r.id())
	if !kb.RequestTruncated || kb.ResponseTruncated || len(kb.Request) > models.BodyLimit || len(kb.Request) < models.BodyLimit-4 ||
		!strings.HasSuffix(kb.Request, "é") {
		t.Fatalf("kept %d bytes, truncated %v/%v", len(kb.Request), kb.RequestTruncated, kb.ResponseTruncated)
	}
	_, page := b.get("/requests/" + r.id())
	if s := testenv.Doc(t, page).Find("[data-testid=request-truncated]").Text(); !strings.Contains(s, "Truncated at 64 KiB") {
		t.Fatalf("page says %q", s)
	}

	s := p.do("POST", "/v1/chat/completions", secret, strings.TrimSuffix(chatBody("tt-chat-small", 0, map[string]string{"sim_output_tokens": "7"}), "}")+`,"stream":true}`)
	if s.res.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", s.res.StatusCode)
	}
	// What the client read, joined.
	var content strings.Builder
	chunks := 0
	for _, line := range strings.Split(s.body, "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		chunks++
		var c struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		json.Unmarshal([]byte(data), &c)
		for _, ch := range c.Choices {
			content.WriteString(ch.Delta.Content)
		}
	}
	kb = keptBodies(t, srv, acct, s.id())
	var msg struct {
		Object  string
		Choices []struct {
			Message      struct{ Role, Content string }
			FinishReason string `json:"finish_reason"`
		}
	}
	if err := json.Unmarshal([]byte(kb.Response), &msg); err != nil || msg.Object != "chat.completion" || len(msg.Choices) != 1 {
		t.Fatalf("kept stream %q (%v)", kb.Response, err)
	}
	if c := msg.Choices[0]; c.Message.Content != content.String() || content.Len() == 0 || c.Message.Role != "assistant" || c.FinishReason == "" {
		t.Fatalf("reassembled %+v, the client read %q", c, content.String())
	}
	if kb.Chunks != chunks || chunks < 7 {
		t.Fatalf("chunks %d, the client read %d", kb.Chunks, chunks)
	}
	_, page = b.get("/requests/" + s.id())
	if !strings.Contains(page, fmt.Sprintf("the stream&#39;s %d chunks joined", chunks)) && !strings.Contains(page, fmt.Sprintf("the stream's %d chunks joined", chunks)) {
		t.Fatal("the page does not say the stream was reassembled")
	}
}

func TestKeptBodiesDeleted(t *testing.T) {
	srv, b, acct, p := bodiesPlatform(t)
	ctx := context.Background()
	k, secret := p.newKey(acct, models.KeyInput{Name: "capture", RPM: "600", KeepBodies: "on", KeepBodiesDays: "1"})
	var ids []string
	for range 3 {
		ids = append(ids, p.chat(secret, 8, nil).id())
	}
	for _, id := range ids {
		keptBodies(t, srv, acct, id)
	}

	// Retention: nothing before its day, everything after.
	if n, err := srv.Store.PurgeBodies(ctx, time.Now(), 2, time.Millisecond); err != nil || n != 0 {
		t.Fatalf("purged %d (%v) before the retention ended", n, err)
	}
	if n, err := srv.Store.PurgeBodies(ctx, time.Now().Add(25*time.Hour), 2, time.Millisecond); err != nil || n != 3 {
		t.Fatalf("purged %d (%v), want 3 in batches of 2", n, err)
	}
	noKeptBodies(t, srv, acct, ids[0])

	// Delete now, confirmed on the key page; another account cannot.
	id := p.chat(secret, 8, nil).id()
	keptBodies(t, srv, acct, id)
	path := "/keys/" + k.ID
	_, page := b.get(path)
	form := testenv.Doc(t, page).Find(`form[action="` + path + `/bodies/delete"]`)
	if confirm, _ := form.Attr("data-confirm"); !strings.Contains(confirm, "cannot be undone") {
		t.Fatalf("delete-now form asks %q", confirm)
	}
	bob, _ := keyOwner(t, srv, "bob@example.com")
	if res, _ := bob.post("/keys", path+"/bodies/delete", nil); res.StatusCode != http.StatusNotFound {
		t.Fatalf("another account deletes: %d", res.StatusCode)
	}
	keptBodies(t, srv, acct, id)
	res, _ := b.post(path, path+"/bodies/delete", nil)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("delete now: %d", res.StatusCode)
	}
	if log := auditLog(t, srv, acct); log[0].Action != models.AuditKeyBodiesDeleted || log[0].Target != k.ID ||
		log[0].Before != "1 call" || log[0].RequestID != res.Header.Get("X-TT-Request-ID") {
		t.Errorf("the deletion's audit entry: %+v", log[0])
	}
	noKeptBodies(t, srv, acct, id)
	_, page = b.get(path)
	if !strings.Contains(page, "Deleted the kept bodies of 1 call.") {
		t.Fatal("no confirmation")
	}
	if evs := keyEventTexts(t, page); !strings.Contains(strings.Join(evs, "\n"), "Kept bodies: 1 call → deleted") {
		t.Fatalf("events %q", evs)
	}
	if testenv.Doc(t, page).Find(`form[action="`+path+`/bodies/delete"]`).Length() != 0 {
		t.Fatal("delete offered with nothing kept")
	}

	// Revoked: everything kept goes, and nothing more is kept.
	id = p.chat(secret, 8, nil).id()
	keptBodies(t, srv, acct, id)
	if res, _ := b.post(path, path+"/revoke", nil); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", res.StatusCode)
	}
	noKeptBodies(t, srv, acct, id)
	if n, err := srv.Store.KeptBodiesCount(ctx, acct, k.ID); err != nil || n != 0 {
		t.Fatalf("%d kept after revoke (%v)", n, err)
	}
}

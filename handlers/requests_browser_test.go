package handlers_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"ttconsole/internal/testenv"
	"ttconsole/models"
)

// TestBrowserFindAndFixARefusedCall drives real Chromium through the
// Requests page's promise: an API call refused with ip_not_allowed, its
// X-TT-Request-ID pasted into the search box, the detail page, the fix
// clicked and confirmed, the same call retried and succeeding, and the new
// call in the list.
func TestBrowserFindAndFixARefusedCall(t *testing.T) {
	srv := testenv.NewServer(t)
	ctx := testenv.Browser(t)
	acct := testenv.FundedKey(t, srv.Store, "ada@example.com", 5*models.MicrosPerUSD,
		models.KeyInput{Name: "office", AllowedIPs: "203.0.113.7", RPM: "600"})
	call := func() (int, string, string) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"tt-chat-small","messages":[{"role":"user","content":"Hello"}]}`))
		req.Header.Set("Authorization", "Bearer "+acct.Secret)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body := testenv.Body(t, res)
		var e struct{ Error struct{ Type string } }
		json.Unmarshal([]byte(body), &e)
		return res.StatusCode, e.Error.Type, res.Header.Get("X-TT-Request-ID")
	}
	status, typ, failedID := call()
	if status != http.StatusForbidden || typ != "ip_not_allowed" {
		t.Fatalf("call from 127.0.0.1: %d %s, want 403 ip_not_allowed", status, typ)
	}

	// The fix asks for confirmation; the customer says yes.
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()

	err := chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/requests"),
		chromedp.WaitVisible(chromedp.CSS(`#f-email`)),
		chromedp.SendKeys(chromedp.CSS(`#f-email`), "ada@example.com"),
		chromedp.SendKeys(chromedp.CSS(`#f-password`), testenv.Password),
		chromedp.Click(chromedp.CSS(`button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`#f-q`)),
		chromedp.SendKeys(chromedp.CSS(`#f-q`), failedID),
		chromedp.Click(chromedp.CSS(`form.lookup button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=fix-button]`)),
	)
	if err != nil {
		t.Fatalf("look the call up by its id: %v", err)
	}
	errType, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=error-type]`)))
	outcome, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid=outcome-rule]`)))
	if errType != "ip_not_allowed" || !strings.Contains(outcome, "not charged") {
		t.Fatalf("detail shows %q / %q", errType, outcome)
	}

	err = chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`[data-testid=fix-button]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=fix-done]`)),
	)
	if err != nil {
		t.Fatalf("apply the fix: %v", err)
	}
	flash, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`.flash[role=status]`)))
	if !strings.Contains(flash, "Allowed 127.0.0.1") {
		t.Errorf("after the fix the page says %q", flash)
	}

	status, _, okID := call()
	if status != http.StatusOK {
		t.Fatalf("retried call: %d", status)
	}
	err = chromedp.Do(ctx,
		chromedp.Navigate(srv.URL+"/requests"),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-request-id="`+okID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`tr[data-request-id="`+failedID+`"]`)),
	)
	if err != nil {
		t.Fatalf("the retried call in the list: %v", err)
	}
}

package handlers

import (
	"bytes"
	"cmp"
	"encoding/json"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// requestsPerPage is the length of one page of the request log.
const requestsPerPage = 50

// msgNoSuchRequest is the one answer for an unknown request id and for
// another account's: the words must not tell them apart.
const msgNoSuchRequest = "No request with this id in your account."

// requestsPage lists the account's requests, newest first, with the
// filters and cursor of the query string; q holding a request id jumps to
// that request's page.
func (a *App) requestsPage(c echo.Context) error {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	status := http.StatusOK
	lookup := strings.TrimSpace(c.QueryParam("q"))
	lookupErr := ""
	if lookup != "" {
		found, err := a.lookUpRequest(c, lookup)
		if err != nil {
			return err
		}
		if found != "" {
			return c.Redirect(http.StatusSeeOther, "/requests/"+found)
		}
		status, lookupErr = http.StatusNotFound, msgNoSuchRequest
	}

	f, ferr := models.ParseRequestFilter(zonedFilters(c.QueryParams(), zoneOf(c)))
	form := views.Form{Values: map[string]string{}}
	for _, n := range []string{"status", "type", "key", "model", "outcome", "from", "to"} {
		form.Values[n] = c.QueryParam(n)
	}
	form.Values["from"], form.Values["to"] = pickerTime(f.From, zoneOf(c)), pickerTime(f.To, zoneOf(c))
	if fields, msg, ok := fieldErrors(ferr); ok {
		form.Errors, form.Message = fields, msg
		if status == http.StatusOK {
			status = http.StatusBadRequest
		}
	}
	cursor := c.QueryParam("cursor")
	if cursor != "" && !models.LooksLikeRequestID(cursor) {
		cursor = ""
		form.Message = "That page link is not valid; showing the newest requests."
		if status == http.StatusOK {
			status = http.StatusBadRequest
		}
	}

	page, err := a.Store.ListRequests(ctx, acct, f, cursor, requestsPerPage)
	if err != nil {
		return err
	}
	labels, err := a.Store.RequestKeyLabels(ctx, acct)
	if err != nil {
		return err
	}
	catalogue, err := a.Store.Models(ctx)
	if err != nil {
		return err
	}
	var modelIDs []string // the model filter's choices
	for _, m := range catalogue {
		modelIDs = append(modelIDs, m.ID)
	}
	if f.Model != "" && !slices.Contains(modelIDs, f.Model) {
		modelIDs = append(modelIDs, f.Model) // a model the catalogue no longer lists, asked for by a link
	}

	d := views.RequestsData{
		Form: form, Lookup: lookup, LookupError: lookupErr,
		Filtered: !f.Empty(), Cursor: cursor != "",
		Types: contractTypes(), Outcomes: outcomeOptions(), Models: modelIDs,
		BaseURL: baseURL(c),
		Presets: rangePresets(f, time.Now()),
	}
	d.HasAny = len(page.Rows) > 0 || cursor != ""
	if !d.HasAny && d.Filtered {
		if d.HasAny, err = a.Store.HasRequests(ctx, acct); err != nil {
			return err
		}
	}
	d.Rows = requestRows(page.Rows, labels)
	for _, k := range sortedLabels(labels) {
		d.Keys = append(d.Keys, views.Option{Value: k.ID, Label: k.Name + " (" + k.Display + ")"})
	}
	base := f.Values()
	d.CSVURL = "/requests.csv" + encodeQuery(base)
	d.ClearURL = "/requests"
	d.NewestURL = "/requests" + encodeQuery(base)
	if page.Next != "" {
		next := f.Values()
		next.Set("cursor", page.Next)
		d.NextURL = "/requests?" + next.Encode()
	}
	d.ChartURL = "/requests/chart.svg" + encodeQuery(base)
	d.CountURL = "/requests/count" + encodeQuery(base)
	return a.render(c, status, views.Requests(a.page(c, "Requests", "requests"), d))
}

// requestIDFromPaste finds the request or task id in what a customer
// pasted: the id alone, the whole "X-TT-Request-ID: req_…" header line,
// or a task's JSON with its "id": "task_…".
func requestIDFromPaste(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.Index(s, "req_"); i >= 0 {
		s = s[i:]
	} else if i := strings.Index(s, "task_"); i >= 0 {
		s = s[i:]
	}
	if i := strings.IndexAny(s, " \t\r\n\"',;"); i >= 0 {
		s = s[:i]
	}
	return s
}

// requestDetail shows one request of the account with everything stored
// about it, its billing timeline and the fix for its error.
func (a *App) requestDetail(c echo.Context) error {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	r, err := a.Store.RequestOf(ctx, acct, c.Param("id"))
	if models.ErrorCode(err) == models.ENOTFOUND {
		return a.render(c, http.StatusNotFound, views.ErrorPage(a.page(c, "Request not found", "requests"),
			http.StatusNotFound, "Request not found", msgNoSuchRequest))
	}
	if err != nil {
		return err
	}
	return a.renderDetail(c, r, http.StatusOK, nil)
}

// renderDetail renders a request's page; adjust, when set, changes the
// fix-it block (a value typed back with its message).
func (a *App) renderDetail(c echo.Context, r *models.Request, status int, adjust func(*views.Fix)) error {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	events, err := a.Store.Timeline(ctx, r.ID)
	if err != nil {
		return err
	}
	ledger, err := a.Store.RequestLedger(ctx, acct, r.ID)
	if err != nil {
		return err
	}
	labels, err := a.Store.RequestKeyLabels(ctx, acct)
	if err != nil {
		return err
	}
	d := requestDetailData(r, labels, events, ledger)
	if d.Fix, err = a.fixFor(c, r); err != nil {
		return err
	}
	if adjust != nil {
		adjust(&d.Fix)
	}
	if d.Fix.Action != "" {
		need := permFix
		if strings.HasPrefix(d.Fix.Action, "/billing/") {
			need = permBilling
		}
		if !can(c, need) {
			d.Fix.Action, d.Fix.Blocked = "", "Your role, "+currentRole(c)+", cannot apply this fix: it needs the role "+
				orList(rowOf(need).roles)+"."
		}
	}
	// Bodies are read with the account's id, like the request itself, and
	// shown only to the roles that manage keys.
	switch kept, err := a.Store.RequestBodiesOf(ctx, acct, r.ID); {
	case err == nil && !can(c, permKeys):
		d.BodiesHidden = "This call's key keeps its request and response bodies; they are shown to the roles " +
			orList(rowOf(permKeys).roles) + "."
	case err == nil:
		d.Bodies = &views.KeptBodiesView{Request: prettyJSON(kept.Request), RequestTruncated: kept.RequestTruncated,
			Response: prettyJSON(kept.Response), ResponseTruncated: kept.ResponseTruncated, Chunks: kept.Chunks, ExpiresAt: kept.ExpiresAt}
	case models.ErrorCode(err) != models.ENOTFOUND:
		return err
	}
	if d.Fix.Action == "/billing/recharge" {
		a.allowCheckoutFormAction(c) // the recharge fix's form lands on the provider's checkout
	}
	return a.render(c, status, views.RequestDetail(a.page(c, "Request "+r.ID, "requests"), d))
}

// prettyJSON indents a JSON body; anything else (a body cut at the limit)
// is shown as it is.
func prettyJSON(s string) string {
	var b bytes.Buffer
	if json.Indent(&b, []byte(s), "", "  ") != nil {
		return s
	}
	return b.String()
}

// requestRows lays out a page of the request log; its Charge column
// shows every row at one precision.
func requestRows(rs []models.Request, labels map[string]models.KeyLabel) []views.RequestRow {
	charges := make([]int64, len(rs))
	for i, r := range rs {
		charges[i] = r.ChargedMicros
	}
	dec := models.Decimals(charges...)
	rows := make([]views.RequestRow, len(rs))
	for i := range rs {
		rows[i] = requestRow(&rs[i], labels)
		rows[i].Charge = models.FormatUSDAt(rs[i].ChargedMicros, dec)
	}
	return rows
}

func requestRow(r *models.Request, labels map[string]models.KeyLabel) views.RequestRow {
	row := views.RequestRow{
		ID: r.ID, At: r.CreatedAt,
		Status: r.Status, ErrorType: r.ErrorType, ErrorMessage: r.ErrorMessage,
		Model: r.Model, Latency: strconv.FormatInt(r.LatencyMS, 10) + " ms",
		Charge: models.FormatUSD(r.ChargedMicros), Outcome: r.BillingOutcome, OutcomeLabel: models.OutcomeLabel(r.BillingOutcome), OutcomeTone: outcomeTone(r.BillingOutcome),
		Stream: r.Stream,
	}
	if r.PromptTokens+r.CompletionTokens > 0 {
		row.Tokens = strconv.Itoa(r.PromptTokens) + " / " + strconv.Itoa(r.CompletionTokens)
	}
	row.StatusLabel, row.StatusTone = statusBadge(r)
	row.Key, row.KeyTitle = keyName(r.KeyID, labels)
	return row
}

// keyName is a key's name and its display prefix, for a key id that may
// be missing (the call was never identified) or deleted.
func keyName(id *string, labels map[string]models.KeyLabel) (name, display string) {
	if id == nil || *id == "" {
		return "", ""
	}
	if k, ok := labels[*id]; ok {
		return k.Name, k.Display
	}
	return *id, ""
}

func sortedLabels(m map[string]models.KeyLabel) []models.KeyLabel {
	out := slices.Collect(maps.Values(m))
	slices.SortFunc(out, func(a, b models.KeyLabel) int {
		return cmp.Or(strings.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)), strings.Compare(a.ID, b.ID))
	})
	return out
}

// statusBadge is a request's status as its badge shows it: the HTTP
// status, with what became of the call when a success code hides it (a
// stream cut off, a task that failed), and its tone.
func statusBadge(r *models.Request) (label, tone string) {
	label, tone = strconv.Itoa(r.Status), statusTone(r.Status)
	if r.Status < 200 || r.Status >= 300 {
		return label, tone
	}
	switch r.BillingOutcome {
	case models.OutcomeChargedPartial:
		return label + " · cut off", "warn"
	case models.OutcomeNotChargedFailed:
		return label + " · failed", "err"
	case models.OutcomeNotChargedCancel:
		return label + " · cancelled", "warn"
	case models.OutcomeNotChargedExpired:
		return label + " · expired", "warn"
	case models.OutcomePending:
		return label + " · running", ""
	}
	return label, tone
}

func statusTone(status int) string {
	switch {
	case status >= 500:
		return "err"
	case status >= 400:
		return "warn"
	case status >= 200 && status < 300:
		return "ok"
	}
	return ""
}

func outcomeTone(outcome string) string {
	switch outcome {
	case models.OutcomeCharged, models.OutcomeChargedPartial:
		return "charged"
	case models.OutcomePending:
		return "warn"
	}
	return "free"
}

// utcTime is a time as support reads it: exact, in UTC.
func utcTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000 UTC") }

func encodeQuery(v url.Values) string {
	if len(v) == 0 {
		return ""
	}
	return "?" + v.Encode()
}

// baseURL is the console's own address, for the examples it shows.
func baseURL(c echo.Context) string { return scheme(c) + "://" + c.Request().Host }

func requestDetailData(r *models.Request, labels map[string]models.KeyLabel, events []models.BillingEvent, ledger []models.LedgerEntry) views.RequestDetailData {
	d := views.RequestDetailData{
		ID: r.ID, At: r.CreatedAt, CompletedAt: r.CompletedAt,
		Method: r.Method, Path: r.Path, Model: r.Model, Status: r.Status, StatusText: http.StatusText(r.Status),
		ErrorType: r.ErrorType, ErrorMessage: r.ErrorMessage, ErrorBody: r.ErrorBody,
		ClientIP: r.ClientIP, Stream: r.Stream, Latency: strconv.FormatInt(r.LatencyMS, 10) + " ms",
		PromptTokens: r.PromptTokens, CompletionTokens: r.CompletionTokens,
		Outcome: r.BillingOutcome, OutcomeLabel: models.OutcomeLabel(r.BillingOutcome), OutcomeRule: models.OutcomeRule(r.BillingOutcome), OutcomeDetail: r.OutcomeDetail,
		OutcomeTone: outcomeTone(r.BillingOutcome), MovedMoney: r.HoldMicros != 0 || r.ChargedMicros != 0,
	}
	d.StatusLabel, d.StatusTone = statusBadge(r)
	if r.KeyID != nil && *r.KeyID != "" {
		d.KeyID = *r.KeyID
		d.KeyName, d.KeyDisplay = keyName(r.KeyID, labels)
		if _, ok := labels[*r.KeyID]; ok {
			d.KeyURL = "/keys/" + *r.KeyID
		}
	}
	if r.RatelimitLimit != nil || r.RetryAfter != nil {
		rl := &views.RateLimitInfo{}
		if r.RatelimitLimit != nil {
			rl.Limit = views.RequestsPerMinute(*r.RatelimitLimit)
		}
		if r.RatelimitRemaining != nil {
			rl.Remaining = strconv.Itoa(*r.RatelimitRemaining)
		}
		if r.RatelimitReset != nil {
			rl.Reset = strconv.FormatInt(*r.RatelimitReset, 10)
			rl.ResetAt = new(time.Unix(*r.RatelimitReset, 0))
		}
		if r.RetryAfter != nil {
			rl.RetryAfter = strconv.Itoa(*r.RetryAfter) + " s"
		}
		d.RateLimit = rl
	}
	byID := make(map[string]models.LedgerEntry, len(ledger))
	for _, e := range ledger {
		byID[e.ID] = e
	}
	linked := map[string]bool{}
	for _, ev := range events {
		it := views.TimelineItem{
			At:    ev.CreatedAt,
			Event: eventLabel(ev.Event), AmountMicros: ev.AmountMicros, Detail: ev.Detail,
		}
		if ev.LedgerEntryID != nil {
			if e, ok := byID[*ev.LedgerEntryID]; ok {
				it.Ledger = ledgerItem(e)
				linked[e.ID] = true
			}
		}
		d.Timeline = append(d.Timeline, it)
	}
	for _, e := range ledger { // entries the request caused that no event names, such as a refund
		if !linked[e.ID] {
			d.Timeline = append(d.Timeline, views.TimelineItem{
				At:    e.CreatedAt,
				Event: "Ledger: " + strings.ToLower(models.LedgerKindLabel(e.Kind)), AmountMicros: e.AmountMicros, Detail: e.Memo, Ledger: ledgerItem(e),
			})
		}
	}
	dec := timelineMoney(d.Timeline, r.HoldMicros, r.ChargedMicros)
	d.Hold, d.Charge = models.FormatUSDAt(r.HoldMicros, dec), models.FormatUSDAt(r.ChargedMicros, dec)
	d.Support = supportText(r)
	return d
}

// timelineMoney formats a request's billing timeline at one precision
// with the request's other amounts: its hold, charge and the balances
// they left read as one account. It returns that precision.
func timelineMoney(items []views.TimelineItem, other ...int64) int {
	all := other
	for _, it := range items {
		all = append(all, it.AmountMicros)
		if it.Ledger != nil {
			all = append(all, it.Ledger.AmountMicros, it.Ledger.BalanceAfterMicros)
		}
	}
	dec := models.Decimals(all...)
	for i := range items {
		it := &items[i]
		it.Amount = models.FormatUSDAt(it.AmountMicros, dec)
		if it.Ledger != nil {
			it.Ledger.Amount = models.FormatUSDAt(it.Ledger.AmountMicros, dec)
			it.Ledger.BalanceAfter = models.FormatUSDAt(it.Ledger.BalanceAfterMicros, dec)
		}
	}
	return dec
}

func ledgerItem(e models.LedgerEntry) *views.LedgerItem {
	return &views.LedgerItem{ID: e.ID, Kind: e.Kind, KindLabel: models.LedgerKindLabel(e.Kind),
		AmountMicros: e.AmountMicros, BalanceAfterMicros: e.BalanceAfterMicros}
}

func eventLabel(ev string) string {
	switch ev {
	case "hold_placed":
		return "Hold placed"
	case "captured":
		return "Captured"
	case "released":
		return "Released"
	case "expired":
		return "Expired"
	}
	return ev
}

// supportText is what the "For support" block copies: what the platform's
// documentation asks customers to bring, times in UTC.
func supportText(r *models.Request) string {
	var b strings.Builder
	b.WriteString("X-TT-Request-ID: " + r.ID + "\n")
	b.WriteString("Time (UTC): " + utcTime(r.CreatedAt) + "\n")
	model := r.Model
	if model == "" {
		model = "(none)"
	}
	b.WriteString("Model: " + model + "\n")
	b.WriteString("API path: " + r.Method + " " + r.Path + "\n")
	b.WriteString("HTTP status: " + strconv.Itoa(r.Status) + "\n")
	b.WriteString("Billing outcome: " + r.BillingOutcome + "\n")
	body := r.ErrorBody
	if body == "" {
		body = "(none: the call succeeded)"
	}
	b.WriteString("Error body: " + body)
	return b.String()
}

// outcomeOptions are the billing outcome filter's choices, in words.
func outcomeOptions() []views.Option {
	var out []views.Option
	for _, o := range models.Outcomes {
		out = append(out, views.Option{Value: o, Label: models.OutcomeLabel(o)})
	}
	return out
}

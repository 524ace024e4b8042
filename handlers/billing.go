package handlers

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/internal/payments"
	"ttconsole/models"
	"ttconsole/views"
)

// Billing page sizes.
const (
	ledgerPageSize = 25
	paymentsShown  = 10
	spendChartDays = 30
)

// billingPage shows the wallet, spend, recharge, payments and the ledger.
// ?amount_usd= prefills the custom amount (the 402 fix-it link), rounded
// up to a valid recharge; ?return_to= is the page the recharge is for,
// where a paid checkout lands; ?cursor= pages the ledger.
func (a *App) billingPage(c echo.Context) error {
	// Back from a checkout through its cancel link: the customer left it,
	// and the payment says so rather than waiting to expire.
	if id := c.QueryParam("payment"); id != "" && c.QueryParam("checkout") == "cancelled" && can(c, permBilling) {
		if _, err := a.Store.CancelPayment(c.Request().Context(), currentAccount(c), id); err != nil {
			return err
		}
	}
	f := views.Form{Values: map[string]string{"return_to": returnTo(c.QueryParam("return_to"))}}
	if raw := strings.TrimSpace(c.QueryParam("amount_usd")); raw != "" {
		if m, ok := models.ParseUSD(raw, false); ok {
			f.Values["amount_usd"] = plainUSD(models.RechargeFor(m))
		}
	}
	if back := f.Values["return_to"]; back != "" && c.QueryParam("checkout") == "success" {
		p, err := a.Store.PaymentOf(c.Request().Context(), currentAccount(c), c.QueryParam("payment"))
		if err == nil && p.Status == models.PaymentPaid {
			a.flash(c, "Payment received: "+models.FormatUSD(p.AmountMicros)+" has been added to your balance.")
			return c.Redirect(http.StatusSeeOther, back)
		}
	}
	switch c.QueryParam("card") {
	case "saved":
		prof, err := a.Store.BillingProfileOf(c.Request().Context(), currentAccount(c))
		if err != nil {
			return err
		}
		if prof.HasCard() {
			a.flash(c, "Card saved: "+prof.CardLabel()+". Auto top-up can charge it.")
		} else {
			a.flash(c, "Your card is being saved: it shows here as soon as the provider confirms it.")
		}
	case "cancelled":
		a.flash(c, "No card was saved.")
	}
	return a.renderBilling(c, http.StatusOK, billingForms{Recharge: f})
}

// billingForms are the Billing page's forms as typed, with their messages.
type billingForms struct {
	Recharge, LowBalance, Topup views.Form
	Card                        string // a message about saving the card
}

// renderBilling renders the billing page with its forms as typed and
// with their messages.
func (a *App) renderBilling(c echo.Context, status int, forms billingForms) error {
	f, lf := forms.Recharge, forms.LowBalance
	ctx := c.Request().Context()
	acct := currentAccount(c)
	d, err := a.billingData(ctx, acct, c.QueryParam("cursor"), time.Now())
	if err != nil {
		return err
	}
	d.Recharge, d.LowBalanceForm = f, lf
	d.ReturnTo = f.Value("return_to")
	if lf.Values == nil {
		d.LowBalanceForm.Values = map[string]string{"low_balance_usd": d.LowBalanceUSD}
	}
	if err := a.topupData(ctx, acct, &d, forms, time.Now()); err != nil {
		return err
	}
	if id := c.QueryParam("payment"); id != "" {
		if p, err := a.Store.PaymentOf(ctx, acct, id); err == nil {
			pv := paymentView(p)
			d.Returned = &pv
			d.ReturnedFrom = c.QueryParam("checkout")
		}
	}
	a.allowCheckoutFormAction(c)
	return a.render(c, status, views.Billing(a.page(c, "Billing", "billing"), d))
}

func (a *App) billingData(ctx context.Context, acct, cursor string, now time.Time) (views.BillingData, error) {
	var d views.BillingData
	w, err := a.Store.WalletOf(ctx, acct)
	if err != nil {
		return d, err
	}
	threshold, err := a.Store.LowBalanceThreshold(ctx, acct)
	if err != nil {
		return d, err
	}
	mtd, err := a.Store.SpendSince(ctx, acct, models.MonthStart(now))
	if err != nil {
		return d, err
	}
	days, err := a.Store.DailySpend(ctx, acct, spendChartDays, now)
	if err != nil {
		return d, err
	}
	if cursor != "" && !models.LooksLikeLedgerID(cursor) {
		cursor, d.CursorInvalid = "", true
	}
	entries, err := a.Store.LedgerPage(ctx, acct, cursor, ledgerPageSize+1)
	if err != nil {
		return d, err
	}
	recent, err := a.Store.RecentPayments(ctx, acct, paymentsShown)
	if err != nil {
		return d, err
	}

	// The wallet's figures sit side by side: one precision for all.
	m := models.FormatUSDs(w.BalanceMicros, w.Available(), w.HeldMicros, w.DebtMicros, mtd)
	d.Balance, d.Available, d.Held, d.MonthToDate = m[0], m[1], m[2], m[4]
	if w.DebtMicros > 0 {
		d.Debt = m[3]
	}
	d.MonthName = now.UTC().Format("January 2006")
	d.LowBalance = models.IsLowBalance(w, threshold)
	if threshold != nil {
		d.LowBalanceUSD = plainUSD(*threshold)
		d.Threshold = models.FormatUSD(*threshold)
	}
	d.TestMode = a.provider().Name() == payments.ProviderTest
	for _, usd := range []string{"10", "25", "50", "100"} {
		m, _ := models.ParseUSD(usd, false)
		d.Presets = append(d.Presets, views.Preset{Value: usd, Label: models.FormatUSD(m)})
	}
	d.Chart = spendChart(days)
	d.Cursor = cursor
	if len(entries) > ledgerPageSize {
		entries = entries[:ledgerPageSize]
		d.NextCursor = entries[len(entries)-1].ID
	}
	// One precision for the whole ledger page, amounts and balances alike,
	// so that a charge below a cent visibly changes the balance after it.
	var amounts []int64
	for _, e := range entries {
		amounts = append(amounts, e.AmountMicros, e.BalanceAfterMicros)
	}
	dec := models.Decimals(amounts...)
	for _, e := range entries {
		row := views.LedgerRow{
			ID: e.ID, Kind: e.Kind, KindLabel: models.LedgerKindLabel(e.Kind), Amount: models.FormatUSDAt(e.AmountMicros, dec), Credit: e.AmountMicros >= 0,
			BalanceAfter: models.FormatUSDAt(e.BalanceAfterMicros, dec), Memo: e.Memo, At: e.CreatedAt,
		}
		if e.AmountMicros > 0 {
			row.Amount = "+" + row.Amount
		}
		if e.RequestID != nil {
			row.RequestID = *e.RequestID
		}
		if e.PaymentID != nil {
			row.PaymentID = *e.PaymentID
		}
		d.Ledger = append(d.Ledger, row)
	}
	for i := range recent {
		d.Payments = append(d.Payments, paymentView(&recent[i]))
	}
	return d, nil
}

func paymentView(p *models.Payment) views.PaymentRow {
	r := views.PaymentRow{
		ID: p.ID, Amount: models.FormatUSD(p.AmountMicros), Status: p.Status, StatusLabel: models.PaymentStatusLabel(p.Status),
		Detail: p.Detail, Provider: p.Provider, ProviderLabel: providerLabel(p.Provider),
		At: p.CreatedAt, Pending: p.Status == models.PaymentPending && !p.IsAutoTopup(),
		CheckoutURL: p.CheckoutURL, AutoTopup: p.IsAutoTopup(), Card: p.Card(),
		NeedsConfirm: p.IsAutoTopup() && p.Status == models.PaymentActionRequired,
	}
	if p.ReceiptNumber != nil && p.Status == models.PaymentPaid {
		r.Receipt = models.ReceiptLabel(*p.ReceiptNumber)
	}
	if p.SessionID != nil {
		r.SessionID = *p.SessionID
	}
	if p.PaidAt != nil {
		r.PaidAt = *p.PaidAt
	}
	return r
}

// providerLabel names a payment provider.
func providerLabel(name string) string {
	switch name {
	case payments.ProviderStripe:
		return "Stripe"
	case payments.ProviderTest:
		return "Test provider (no real money)"
	}
	return name
}

// spendChart lays out one bar per day, scaled to the busiest day.
func spendChart(days []models.DaySpend) views.SpendChart {
	const barW, gap, height = 16, 4, 100
	ch := views.SpendChart{Width: itoa(len(days) * (barW + gap)), Height: itoa(height + 16)}
	var peak, total int64
	for _, d := range days {
		peak = max(peak, d.Micros)
		total += d.Micros
	}
	m := models.FormatUSDs(total, peak)
	ch.Total, ch.Peak = m[0], m[1]
	for i, d := range days {
		h := 1
		if peak > 0 && d.Micros > 0 {
			h = max(2, int(d.Micros*height/peak))
		}
		ch.Bars = append(ch.Bars, views.Bar{
			X: itoa(i * (barW + gap)), Y: itoa(height - h), W: itoa(barW), H: itoa(h),
			Zero:  d.Micros == 0,
			Title: d.Day.Format("Mon 2 Jan 2006") + ": " + models.FormatUSD(d.Micros),
		})
	}
	if len(days) > 0 {
		ch.First, ch.Last = days[0].Day.Format("2 Jan"), days[len(days)-1].Day.Format("2 Jan")
		ch.LabelY, ch.LastX = itoa(height+13), ch.Width
	}
	return ch
}

// plainUSD shows an amount for an input field: "25", "12.50".
func plainUSD(m int64) string {
	whole, cents := m/models.MicrosPerUSD, (m%models.MicrosPerUSD)/10_000
	if m%models.MicrosPerUSD == 0 {
		return itoa(int(whole))
	}
	s := itoa(int(cents))
	if cents < 10 {
		s = "0" + s
	}
	return itoa(int(whole)) + "." + s
}

// recharge validates the amount, records a pending payment, opens the
// provider's checkout and sends the customer there. Bad input re-renders
// the page with a message beside the field and creates nothing.
func (a *App) recharge(c echo.Context) error {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	vals := formValues(c, "amount_usd", "return_to")
	vals["return_to"] = returnTo(vals["return_to"])
	amount, err := models.ValidateRecharge(vals["amount_usd"])
	if fields, msg, ok := fieldErrors(err); ok {
		return a.renderBilling(c, statusOfFormError(err), billingForms{Recharge: views.Form{Values: vals, Errors: fields, Message: msg}})
	}
	if err != nil {
		return err
	}
	prov := a.provider()
	p, err := a.Store.CreatePayment(ctx, acct, prov.Name(), amount, actor(c))
	if err != nil {
		return err
	}
	base := scheme(c) + "://" + c.Request().Host
	urls := payments.CheckoutURLs{
		Success: base + withReturnTo("/billing?payment="+p.ID+"&checkout=success", vals["return_to"]),
		Cancel:  base + withReturnTo("/billing?payment="+p.ID+"&checkout=cancelled", vals["return_to"]),
		Return:  vals["return_to"],
	}
	co, err := prov.CreateCheckout(ctx, p, urls)
	if err != nil {
		a.Log.Error("open checkout", "request_id", RequestID(c), "payment_id", p.ID, "provider", prov.Name(), "err", err.Error())
		if aerr := a.Store.AbandonPayment(ctx, p.ID, "The checkout could not be opened."); aerr != nil {
			return aerr
		}
		return a.renderBilling(c, http.StatusBadGateway, billingForms{Recharge: views.Form{Values: vals,
			Message: "The payment provider could not open a checkout. Nothing was charged; try again in a minute."}})
	}
	if err := a.Store.AttachCheckout(ctx, p.ID, co.SessionID, co.URL); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, co.URL)
}

// allowCheckoutFormAction lets the recharge form's redirect reach an
// off-site checkout: browsers apply form-action to a form's redirects too.
func (a *App) allowCheckoutFormAction(c echo.Context) {
	origin := a.provider().CheckoutOrigin()
	if origin == "" {
		return
	}
	h := c.Response().Header()
	if csp := h.Get(echo.HeaderContentSecurityPolicy); csp != "" {
		h.Set(echo.HeaderContentSecurityPolicy, strings.Replace(csp, "form-action 'self'", "form-action 'self' "+origin, 1))
	}
}

// setLowBalance stores the low-balance threshold; empty turns it off.
func (a *App) setLowBalance(c echo.Context) error {
	vals := formValues(c, "low_balance_usd")
	v, err := a.Store.SetLowBalanceThreshold(c.Request().Context(), currentAccount(c), strings.TrimSpace(vals["low_balance_usd"]), actor(c))
	if fields, msg, ok := fieldErrors(err); ok {
		return a.renderBilling(c, statusOfFormError(err), billingForms{LowBalance: views.Form{Values: vals, Errors: fields, Message: msg}})
	}
	if err != nil {
		return err
	}
	if v == nil {
		a.flash(c, "Low-balance warning turned off.")
	} else {
		a.flash(c, "You will see a warning on every page when your available balance is below "+models.FormatUSD(*v)+".")
	}
	return c.Redirect(http.StatusSeeOther, "/billing")
}

// lowBalance says whether the header should warn the account.
func (a *App) lowBalance(ctx context.Context, accountID string, w *models.Wallet) bool {
	t, err := a.Store.LowBalanceThreshold(ctx, accountID)
	return err == nil && models.IsLowBalance(w, t)
}

// paymentPage shows one payment, its provider events and, while pending,
// the re-check button. Another account's payment is 404.
func (a *App) paymentPage(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := a.Store.PaymentOf(ctx, currentAccount(c), c.Param("id"))
	if err != nil {
		return err
	}
	evs, err := a.Store.PaymentEvents(ctx, p.ID)
	if err != nil {
		return err
	}
	d := views.PaymentData{Payment: paymentView(p)}
	a.allowCheckoutFormAction(c) // Confirm goes to the provider's checkout
	if p.LedgerEntryID != nil {
		d.LedgerEntryID = *p.LedgerEntryID
	}
	for _, e := range evs {
		d.Events = append(d.Events, views.PaymentEventRow{ID: e.EventID, Type: e.Type, TypeLabel: models.PaymentEventLabel(e.Type),
			Outcome: e.Outcome, OutcomeLabel: models.PaymentEventOutcomeLabel(e.Outcome), At: e.ReceivedAt})
	}
	return a.render(c, http.StatusOK, views.PaymentDetail(a.page(c, "Payment", "billing"), d))
}

// recheckPayment asks the provider where a pending payment's checkout
// stands and applies the answer through the same crediting code as the
// webhook, for when a webhook was lost or is late.
func (a *App) recheckPayment(c echo.Context) error {
	ctx := c.Request().Context()
	p, err := a.Store.PaymentOf(ctx, currentAccount(c), c.Param("id"))
	if err != nil {
		return err
	}
	back := "/billing/payments/" + p.ID
	if p.Status != models.PaymentPending {
		a.flash(c, "This payment is "+strings.ToLower(models.PaymentStatusLabel(p.Status))+"; there is nothing to re-check.")
		return c.Redirect(http.StatusSeeOther, back)
	}
	prov := a.providerNamed(p.Provider)
	if prov == nil || p.SessionID == nil {
		a.flash(c, "This payment cannot be re-checked: its provider is not configured here.")
		return c.Redirect(http.StatusSeeOther, back)
	}
	st, err := prov.Session(ctx, *p.SessionID)
	if err != nil {
		a.Log.Error("re-check payment", "request_id", RequestID(c), "payment_id", p.ID, "err", err.Error())
		a.flash(c, "The payment provider did not answer. Try again in a minute.")
		return c.Redirect(http.StatusSeeOther, back)
	}
	ev := models.PaymentEvent{Provider: p.Provider, SessionID: st.SessionID, ClientReferenceID: st.ClientReferenceID,
		AmountCents: st.AmountCents, Currency: st.Currency, PaymentStatus: st.PaymentStatus}
	// Re-check "events" have ids of their own, one per session and
	// outcome, so they are recorded like any event; the payment's guarded
	// update still decides whether money moves.
	switch {
	case st.Status == models.CheckoutComplete && st.PaymentStatus == models.CheckoutPaymentStatusPaid:
		ev.ID, ev.Type = "recheck:"+st.SessionID+":paid", models.EventCheckoutCompleted
	case st.Status == models.CheckoutExpired:
		ev.ID, ev.Type = "recheck:"+st.SessionID+":expired", models.EventCheckoutExpired
	case st.Status == models.CheckoutComplete:
		a.flash(c, "The checkout is complete and the payment is still clearing at the provider. It is credited as soon as it clears.")
		return c.Redirect(http.StatusSeeOther, back)
	default:
		a.flash(c, "The checkout is still open: nothing has been paid yet.")
		return c.Redirect(http.StatusSeeOther, back)
	}
	res, err := a.Store.ApplyPaymentEvent(ctx, ev, actor(c))
	if err != nil {
		return err
	}
	switch res.Outcome {
	case models.EventCredited:
		a.flash(c, "Paid: "+models.FormatUSD(p.AmountMicros)+" has been added to your balance.")
	case models.EventMarkedExpired:
		a.flash(c, "The checkout expired without a payment. Nothing was charged.")
	default:
		a.flash(c, "Re-checked: nothing changed.")
	}
	return c.Redirect(http.StatusSeeOther, back)
}

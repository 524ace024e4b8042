package handlers

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// fixFor is the remedy for a request's error, as it stands now: a fix
// already applied (by this page or on the key's page) says so instead of
// offering the step again.
func (a *App) fixFor(c echo.Context, r *models.Request) (views.Fix, error) {
	ctx := c.Request().Context()
	acct := currentAccount(c)
	base := "/requests/" + r.ID + "/fix/"
	var key *models.APIKey
	if r.KeyID != nil && *r.KeyID != "" {
		k, err := a.Store.APIKeyOf(ctx, acct, *r.KeyID)
		switch {
		case err == nil:
			key = k
		case models.ErrorCode(err) != models.ENOTFOUND:
			return views.Fix{}, err
		}
	}
	keyBlocked := func() string {
		switch {
		case key == nil:
			return "The key this call used no longer exists. Create a new key on the API keys page."
		case key.Status == models.KeyRevoked:
			return "The key this call used (" + key.Name + ") is revoked and cannot be changed. Create a new key instead."
		}
		return ""
	}
	keyName := func() string {
		if key == nil {
			return "this key"
		}
		return "“" + key.Name + "”"
	}

	switch t := ErrorType(r.ErrorType); {
	case t == TypeIPNotAllowed:
		f := views.Fix{Kind: "allow_ip", Title: "Fix: allow this source IP",
			Text: "The call came from " + r.ClientIP + ", which is not in the key's IP allow list. Allowing it adds exactly this address to " + keyName() + "; other addresses stay refused."}
		ip, err := netip.ParseAddr(r.ClientIP)
		switch {
		case err != nil:
			f.Blocked = "The source IP of this call is not a valid address, so it cannot be allowed."
		case keyBlocked() != "":
			f.Blocked = keyBlocked()
		case key.AllowsIP(ip):
			f.Done = r.ClientIP + " is allowed on key " + keyName() + " now. Retry the call."
		default:
			f.Action, f.Button = base+"allow-ip", "Allow "+r.ClientIP+" on key "+keyName()
			f.Confirm = "Allow calls from " + r.ClientIP + " with key " + keyName() + "?"
		}
		return f, nil

	case t == TypeModelNotAllowed:
		f := views.Fix{Kind: "add_model", Title: "Fix: add this model to the key",
			Text: "The key's scope does not include " + r.Model + ". Adding it lets " + keyName() + " call " + r.Model + " too; its other models stay as they are."}
		switch {
		case r.Model == "":
			f.Blocked = "This call named no model."
		case keyBlocked() != "":
			f.Blocked = keyBlocked()
		case key.AllowsModel(r.Model):
			f.Done = r.Model + " is in the scope of key " + keyName() + " now. Retry the call."
		default:
			f.Action, f.Button = base+"add-model", "Add "+r.Model+" to key "+keyName()
			f.Confirm = "Let key " + keyName() + " call " + r.Model + "?"
		}
		return f, nil

	case t == TypeKeyQuotaExceeded:
		f := views.Fix{Kind: "raise_limit", Title: "Fix: raise this key's monthly limit"}
		if b := keyBlocked(); b != "" {
			f.Blocked = b
			return f, nil
		}
		spent, held, err := a.Store.KeyMonthUsage(ctx, key.ID, time.Now().UTC())
		if err != nil {
			return views.Fix{}, err
		}
		need := spent + held + neededHold(r)
		if key.MonthlyLimitMicros == nil || *key.MonthlyLimitMicros >= need {
			f.Done = "Key " + keyName() + " has room for this call now (limit: " + limitText(key.MonthlyLimitMicros) + "). Retry the call."
			return f, nil
		}
		limit := *key.MonthlyLimitMicros
		m := models.FormatUSDs(spent+held, limit, neededHold(r))
		f.Text = "This month the key has used " + m[0] + " of its " + m[1] +
			" limit (spend and running calls), and this call needed a hold of " + m[2] + "."
		suggest := ceilDollar(max(need, 2*limit))
		f.Action, f.Button, f.Field = base+"raise-limit", "Raise the limit", "monthly_limit_usd"
		f.Value = usdField(suggest)
		f.Confirm = "Raise the monthly limit of key " + keyName() + "?"
		f.Link, f.LinkText = "/keys/"+key.ID, "Edit the key instead"
		return f, nil

	case t == TypeBillingShortfall:
		w, err := a.Store.WalletOf(ctx, acct)
		if err != nil {
			return views.Fix{}, err
		}
		f := views.Fix{Kind: "recharge", Title: "Fix: recharge the wallet"}
		hold := neededHold(r)
		short := hold - w.Available()
		if hold > 0 && short <= 0 {
			m := models.FormatUSDs(w.Available(), hold)
			f.Done = "Your available balance (" + m[0] + ") covers this call's hold of " + m[1] + " now. Retry the call."
			return f, nil
		}
		short = max(short, 0)
		m := models.FormatUSDs(hold, w.Available(), short)
		f.Text = "This call needed a hold of " + m[0] + " and the wallet has " + m[1] + " available: " + m[2] +
			" short. Nothing was charged for the refused call."
		// One click to the checkout for the least that covers the call;
		// once paid, the checkout comes back to this page.
		amount := models.RechargeFor(short)
		back := "/requests/" + r.ID
		f.Action = "/billing/recharge"
		f.Hidden = []views.HiddenField{{Name: "amount_usd", Value: usdField(amount)}, {Name: "return_to", Value: back}}
		f.Button = rechargeButton(amount, short)
		f.Link = withReturnTo("/billing?amount_usd="+usdField(amount), back)
		f.LinkText = "Choose another amount"
		return f, nil

	case t == TypeRateLimited:
		f := views.Fix{Kind: "rate_limited", Title: "Rate limited: retry after the window resets"}
		var parts []string
		if r.RatelimitLimit != nil {
			parts = append(parts, "This key allows "+views.RequestsPerMinute(*r.RatelimitLimit))
		}
		if r.RatelimitReset != nil {
			parts = append(parts, "the window was full until "+showTime(c, time.Unix(*r.RatelimitReset, 0)))
		}
		if r.RetryAfter != nil {
			parts = append(parts, "Retry-After said "+strconv.Itoa(*r.RetryAfter)+" s")
		}
		f.Text = strings.Join(parts, "; ") + ". Not charged. Retry after Retry-After with exponential backoff, or raise the key's rate limit."
		if keyBlocked() == "" {
			// Straight to the rpm field of the key's form, which takes the focus.
			f.Link, f.LinkText = "/keys/"+key.ID+"#f-rpm", "Raise the rate limit of key "+keyName()
		}
		return f, nil

	case t == TypeNotFound || r.Status == http.StatusNotFound:
		f := views.Fix{Kind: "not_found", Title: "Fix: use the right URL"}
		if fixed := correctedAPIPath(r.Path); fixed != "" {
			f.Text = "No route for " + r.Method + " " + r.Path + ". The right URL is " + baseURL(c) + fixed +
				" — set the base URL to " + baseURL(c) + "/v1."
		} else {
			f.Text = "No route for " + r.Method + " " + r.Path + ". Check the path against the API reference; GET /v1/models lists the models. Not charged."
		}
		return f, nil

	case r.Status >= 500:
		return views.Fix{Kind: "retry", Title: "Temporary: retry with backoff",
			Text: "This was a temporary failure on our side or the model server's. Not charged; any hold was released. Retry with exponential backoff; if it persists, contact support with the request id below."}, nil

	case t == TypeUnauthorized:
		return views.Fix{Kind: "auth", Title: "Fix: check the API key",
			Text: "The key was missing, malformed, unknown, disabled, revoked or expired — the message above says which. Check the Authorization header (Bearer sk-tt-…). Not charged.",
			Link: "/keys", LinkText: "Go to API keys"}, nil

	case t == TypeInvalidRequest || t == TypeRequestTooLarge:
		return views.Fix{Kind: "invalid", Title: "Fix: correct the request",
			Text: "The message above names the parameter to fix. Rejected before processing — not charged."}, nil
	}
	return views.Fix{}, nil
}

// rechargeButton says what the recharge fix pays and why: "Recharge
// $5.00 — the minimum — to cover the $0.01 shortfall". Checkouts take
// whole cents, so the shortfall is said rounded up to the cent, at the
// amount's precision (the sentence above the button gives it exactly).
func rechargeButton(amount, short int64) string {
	m := models.FormatUSDs(amount, ceilCent(short))
	switch {
	case short <= 0:
		return "Recharge " + m[0]
	case amount == models.MinRechargeMicros && short < amount:
		return "Recharge " + m[0] + " — the minimum — to cover the " + m[1] + " shortfall"
	}
	return "Recharge " + m[0] + " to cover the " + m[1] + " shortfall"
}

// neededHold is the hold a call needed: the one it held, or, refused, the
// one it was refused.
func neededHold(r *models.Request) int64 {
	if r.HoldMicros > 0 {
		return r.HoldMicros
	}
	return r.RefusedHoldMicros
}

func limitText(m *int64) string {
	if m == nil {
		return "none"
	}
	return models.FormatUSD(*m)
}

// ceilCent and ceilDollar round an amount up.
func ceilCent(m int64) int64   { return (m + 9_999) / 10_000 * 10_000 }
func ceilDollar(m int64) int64 { return (m + 999_999) / 1_000_000 * 1_000_000 }

// fixRequest loads the request a fix-it form is for and checks its error
// is the one the fix addresses; anything else is a 404 in the same words.
func (a *App) fixRequest(c echo.Context, errorType ErrorType) (*models.Request, error) {
	r, err := a.Store.RequestOf(c.Request().Context(), currentAccount(c), c.Param("id"))
	if err == nil && (ErrorType(r.ErrorType) != errorType || r.KeyID == nil || *r.KeyID == "") {
		err = models.ErrNotFound
	}
	if models.ErrorCode(err) == models.ENOTFOUND {
		return nil, &models.Error{Code: models.ENOTFOUND, Message: msgNoSuchRequest}
	}
	return r, err
}

// usdField is an amount as a form field or link holds it: "12.5", no "$",
// no thousands separators.
func usdField(m int64) string {
	return models.LimitInput(&m)
}

// fixAllowIP adds the request's source IP to its key's allow list.
func (a *App) fixAllowIP(c echo.Context) error {
	r, err := a.fixRequest(c, TypeIPNotAllowed)
	if err != nil {
		return err
	}
	ip, err := netip.ParseAddr(r.ClientIP)
	if err != nil {
		return models.Errorf(models.EINVALID, "This request has no valid source IP to allow.")
	}
	k, changed, err := a.Store.AllowIPOnKey(c.Request().Context(), currentAccount(c), *r.KeyID, actor(c), ip)
	if err != nil {
		return err
	}
	if changed {
		a.flash(c, "Allowed "+ip.Unmap().String()+" on key “"+k.Name+"”. Retry the call: this check passes now.")
	}
	return c.Redirect(http.StatusSeeOther, "/requests/"+r.ID)
}

// fixAddModel adds the request's model to its key's scope.
func (a *App) fixAddModel(c echo.Context) error {
	r, err := a.fixRequest(c, TypeModelNotAllowed)
	if err != nil {
		return err
	}
	k, changed, err := a.Store.AddModelToKey(c.Request().Context(), currentAccount(c), *r.KeyID, actor(c), r.Model)
	if err != nil {
		return err
	}
	if changed {
		a.flash(c, "Added "+r.Model+" to the scope of key “"+k.Name+"”. Retry the call: this check passes now.")
	}
	return c.Redirect(http.StatusSeeOther, "/requests/"+r.ID)
}

// fixRaiseLimit sets the request's key's monthly limit to the amount typed.
func (a *App) fixRaiseLimit(c echo.Context) error {
	r, err := a.fixRequest(c, TypeKeyQuotaExceeded)
	if err != nil {
		return err
	}
	raw := c.FormValue("monthly_limit_usd")
	limit, ok := models.ParseUSD(raw, false)
	if !ok || limit <= 0 {
		err = &models.Error{Code: models.EINVALID, Message: "Please correct the highlighted fields.",
			Fields: map[string]string{"monthly_limit_usd": "Enter an amount in USD above zero, like 50 or 12.50."}}
	} else {
		var k *models.APIKey
		var changed bool
		k, changed, err = a.Store.RaiseKeyMonthlyLimit(c.Request().Context(), currentAccount(c), *r.KeyID, actor(c), limit)
		if err == nil {
			if changed {
				a.flash(c, "The monthly limit of key “"+k.Name+"” is "+models.FormatUSD(limit)+" now. Retry the call.")
			}
			return c.Redirect(http.StatusSeeOther, "/requests/"+r.ID)
		}
	}
	fields, _, isForm := fieldErrors(err)
	if !isForm || fields["monthly_limit_usd"] == "" {
		return err
	}
	return a.renderDetail(c, r, http.StatusUnprocessableEntity, func(f *views.Fix) {
		f.Value, f.Error = raw, fields["monthly_limit_usd"]
	})
}

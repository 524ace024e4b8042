package handlers

import (
	"crypto/rand"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"ttconsole/models"
	"ttconsole/views"
)

// keysPage lists the account's keys, with the form that creates one.
func (a *App) keysPage(c echo.Context) error {
	f, err := a.newKeyForm(c, "/keys", nil)
	if err != nil {
		return err
	}
	f.Nonce = rand.Text()
	return a.renderKeys(c, http.StatusOK, f)
}

// renderKeys renders the key list with the create form f.
func (a *App) renderKeys(c echo.Context, status int, f views.KeyForm) error {
	ctx := c.Request().Context()
	keys, err := a.Store.APIKeysOf(ctx, currentAccount(c))
	if err != nil {
		return err
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	now := time.Now().UTC()
	usage, err := a.Store.KeyMonthUsages(ctx, ids, now)
	if err != nil {
		return err
	}
	// The Monthly limit column shows every key at one precision.
	var amounts []int64
	for _, k := range keys {
		u := usage[k.ID]
		amounts = append(amounts, u.Used())
		if k.MonthlyLimitMicros != nil {
			amounts = append(amounts, *k.MonthlyLimitMicros)
		}
	}
	dec := models.Decimals(amounts...)
	rows := make([]views.KeyRow, len(keys))
	for i, k := range keys {
		rows[i] = views.KeyRow{
			ID: k.ID, Name: k.Name, Display: k.Display(), Scope: scopeSummary(&k), IPs: ipSummary(&k),
			State: k.State(now), RPM: k.RPM, LastUsed: k.LastUsedAt, Usage: usageView(&k, usage[k.ID], now, dec),
		}
	}
	return a.render(c, status, views.KeysPage(a.page(c, "API keys", "keys"), rows, f))
}

// newKeyForm returns the key form filled from k, or empty with the
// defaults when k is nil.
func (a *App) newKeyForm(c echo.Context, action string, k *models.APIKey) (views.KeyForm, error) {
	ctx := c.Request().Context()
	acct, err := a.Store.AccountByID(ctx, currentAccount(c))
	if err != nil {
		return views.KeyForm{}, err
	}
	f := views.KeyForm{Action: action, MaxRPM: acct.MaxRPM, RPM: strconv.Itoa(models.DefaultKeyRPM),
		KeepBodiesDays: strconv.Itoa(models.DefaultKeepBodiesDays)}
	var chosen []string
	if k != nil {
		f.Name, f.AllowedIPs, f.RPM = k.Name, k.AllowedIPs, strconv.Itoa(k.RPM)
		f.MonthlyLimitUSD, f.ExpiresAt = models.LimitInput(k.MonthlyLimitMicros), models.ExpiryInput(k.ExpiresAt)
		f.KeepBodies, f.KeepBodiesDays = k.KeepBodies, strconv.Itoa(k.KeepBodiesDays)
		chosen = k.ModelList()
	}
	f.Models, err = a.modelOptions(c, chosen)
	return f, err
}

// formKeyInput reads the key form. models may repeat or be comma
// separated; allowed_ips may repeat too.
func formKeyInput(c echo.Context) (models.KeyInput, error) {
	form, err := c.FormParams()
	if err != nil {
		return models.KeyInput{}, err
	}
	return models.KeyInput{
		Name:            form.Get("name"),
		Models:          form["models"],
		AllowedIPs:      strings.Join(form["allowed_ips"], "\n"),
		MonthlyLimitUSD: form.Get("monthly_limit_usd"),
		RPM:             form.Get("rpm"),
		ExpiresOn:       form.Get("expires_at"),
		Nonce:           form.Get("nonce"),
		KeepBodies:      form.Get("keep_bodies"),
		KeepBodiesDays:  form.Get("keep_bodies_days"),
	}, nil
}

// refillKeyForm puts what was typed back into the form, with messages.
func (a *App) refillKeyForm(c echo.Context, action string, in models.KeyInput, err error) (views.KeyForm, error) {
	f, ferr := a.newKeyForm(c, action, nil)
	if ferr != nil {
		return f, ferr
	}
	f.Name, f.AllowedIPs, f.MonthlyLimitUSD, f.RPM, f.ExpiresAt = in.Name, in.AllowedIPs, in.MonthlyLimitUSD, in.RPM, in.ExpiresOn
	f.KeepBodies, f.KeepBodiesDays = in.KeepBodies == "on", in.KeepBodiesDays
	var chosen []string
	for _, v := range in.Models {
		chosen = append(chosen, strings.Split(v, ",")...)
	}
	if f.Models, ferr = a.modelOptions(c, chosen); ferr != nil {
		return f, ferr
	}
	f.Errors, f.Message, _ = fieldErrors(err)
	return f, nil
}

func (a *App) modelOptions(c echo.Context, chosen []string) ([]views.KeyModelOption, error) {
	catalogue, err := a.Store.Models(c.Request().Context())
	if err != nil {
		return nil, err
	}
	out := make([]views.KeyModelOption, len(catalogue))
	for i, m := range catalogue {
		checked := false
		for _, id := range chosen {
			checked = checked || strings.TrimSpace(id) == m.ID
		}
		out[i] = views.KeyModelOption{ID: m.ID, Kind: m.Kind, Price: m.PriceSummary(), Checked: checked}
	}
	return out, nil
}

func scopeSummary(k *models.APIKey) string {
	list := k.ModelList()
	if list == nil {
		return "All models"
	}
	return strings.Join(list, ", ")
}

func ipSummary(k *models.APIKey) string {
	ps := k.IPPrefixes()
	switch len(ps) {
	case 0:
		return "Any"
	case 1:
		return ps[0].String()
	}
	return fmt.Sprintf("%s and %d more", ps[0], len(ps)-1)
}

// usageView formats a key's month to date against its limit, read as one
// sentence: every amount at one precision, at least dec decimals.
func usageView(k *models.APIKey, u models.KeyUsage, now time.Time, dec int) views.KeyUsageView {
	amounts := []int64{u.SpentMicros, u.HeldMicros, u.Used()}
	if k.MonthlyLimitMicros != nil {
		amounts = append(amounts, *k.MonthlyLimitMicros)
	}
	dec = max(dec, models.Decimals(amounts...))
	v := views.KeyUsageView{
		Spent: models.FormatUSDAt(u.SpentMicros, dec), Held: models.FormatUSDAt(u.HeldMicros, dec), Used: models.FormatUSDAt(u.Used(), dec),
		UsedMicros: u.Used(), ResetsOn: models.MonthlyReset(now).Format("2 Jan 2006, 15:04 UTC"),
	}
	if k.MonthlyLimitMicros == nil {
		return v
	}
	v.Limit, v.LimitMicros = models.FormatUSDAt(*k.MonthlyLimitMicros, dec), *k.MonthlyLimitMicros
	switch at, ok := models.ProjectLimitReached(u.Used(), *k.MonthlyLimitMicros, now); {
	case u.Used() >= *k.MonthlyLimitMicros:
		v.Projection = "The limit is reached: calls with this key are refused until the month resets, or until you raise the limit."
	case ok:
		v.Projection = "At this pace, reached on " + at.Format("2 Jan") + "."
	case u.Used() > 0:
		v.Projection = "At this pace, not reached before the month resets."
	}
	return v
}

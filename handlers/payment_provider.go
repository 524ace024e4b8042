package handlers

import "ttconsole/internal/payments"

// provider is the provider new recharges go through: the configured one,
// or the test provider when Stripe is not configured.
func (a *App) provider() payments.Provider {
	if a.Payments != nil {
		return a.Payments
	}
	return &payments.TestProvider{Store: a.Store}
}

// providerNamed is the provider that handles an existing payment, which
// may predate a configuration change.
func (a *App) providerNamed(name string) payments.Provider {
	if p := a.provider(); p.Name() == name {
		return p
	}
	if name == payments.ProviderTest {
		return &payments.TestProvider{Store: a.Store}
	}
	return nil
}

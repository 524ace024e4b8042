package handlers

import "context"

// SendMail is sendMail, for the tests of the outbox that queue mail of
// their own.
func (a *App) SendMail(ctx context.Context, to, subject, text string) error {
	return a.sendMail(ctx, to, subject, text)
}

// Link is link, for the tests.
func (a *App) Link(path string) string { return a.link(path) }

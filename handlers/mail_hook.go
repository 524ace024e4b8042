package handlers

import (
	"context"
	"os"
	"strings"
)

// sendMail sends one plain-text mail. Until mail delivery is configured
// it only logs the mail.
func (a *App) sendMail(ctx context.Context, to, subject, text string) error {
	a.Log.InfoContext(ctx, "mail", "to", to, "subject", subject, "text", text)
	return nil
}

// link is the public URL of a console path, for mails.
func (a *App) link(path string) string {
	base := strings.TrimSuffix(os.Getenv("TT_BASE_URL"), "/")
	if base == "" {
		base = "http://127.0.0.1:8080"
	}
	return base + path
}

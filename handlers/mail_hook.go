package handlers

import (
	"context"
	"log/slog"
)

// sendMail logs a mail instead of sending it.
func (a *App) sendMail(ctx context.Context, to, subject, text string) error {
	a.Log.LogAttrs(ctx, slog.LevelInfo, "mail", slog.String("to", to), slog.String("subject", subject), slog.String("text", text))
	return nil
}

// link is the absolute address of a console path, on the default listen address.
func (a *App) link(path string) string { return "http://127.0.0.1:8080" + path }

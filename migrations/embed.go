// Package migrations holds the versioned SQL schema, applied by goose at
// start-up. Every file must run on both SQLite and PostgreSQL; what
// differs between them is written in Go (see Go).
package migrations

import "embed"

// FS holds the migration files.
//
//go:embed *.sql
var FS embed.FS

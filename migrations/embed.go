// Package migrations holds the versioned SQL schema, applied by goose at
// start-up. Every file must run on both SQLite and PostgreSQL.
package migrations

import "embed"

// FS holds the migration files.
//
//go:embed *.sql
var FS embed.FS

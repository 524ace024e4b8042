package models

import "database/sql"

// Store reads and writes every table. Methods take ctx first and keep their
// transactions inside; callers never see *gorm.DB.
type Store struct {
	db *DB

	// The gateway reads a key and a model on every call; both change
	// rarely, so they are kept for a moment (see cache.go).
	keys    ttlCache[*APIKey]
	catalog ttlCache[[]CatalogModel]

	// Every write of the money path goes through the group commit (see
	// wtx.go and batch.go).
	batch *batcher

	// hashes runs password hashes, a few at a time (see password.go).
	hashes *hasher

	ids *idSource
}

// NewStore returns a Store on db.
func NewStore(db *DB) *Store {
	s := &Store{db: db, hashes: newHasher(DefaultHashSlots(), DefaultHashWait), ids: &idSource{}}
	// New request ids come after the newest row in the log, whatever the
	// clock says now (a database not migrated yet has none).
	var newest sql.NullString
	if db.sqlDB().QueryRow("SELECT max(id) FROM requests").Scan(&newest) == nil && newest.Valid {
		s.ids.after(newest.String)
	}
	if !db.Postgres {
		s.batch = &batcher{db: db.sqlDB(), ids: s.ids, arrived: make(chan struct{}, 1)}
		db.beforeClose = append(db.beforeClose, s.batch.close)
	} else {
		s.batch = &batcher{db: db.sqlDB(), pg: true, ids: s.ids, arrived: make(chan struct{}, 1)}
	}
	return s
}

// DB returns the database the store uses.
func (s *Store) DB() *DB { return s.db }

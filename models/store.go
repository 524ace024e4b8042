package models

// Store reads and writes every table. Methods take ctx first and keep their
// transactions inside; callers never see *gorm.DB.
type Store struct {
	db *DB

	// The gateway reads a key and a model on every call; both change
	// rarely, so they are kept for a moment (see cache.go).
	keys    ttlCache[*APIKey]
	catalog ttlCache[[]CatalogModel]
}

// NewStore returns a Store on db.
func NewStore(db *DB) *Store { return &Store{db: db} }

// DB returns the database the store uses.
func (s *Store) DB() *DB { return s.db }

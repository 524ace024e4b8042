package models

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Setting is one name/value pair the product keeps for itself, such as the
// keys that sign session cookies when none are configured.
type Setting struct {
	Name  string `gorm:"primaryKey"`
	Value string
}

// SecretSetting returns the hex secret stored under name, generating and
// storing nbytes random bytes the first time. Instances racing to create it
// all end up with the one that was stored first.
func (s *Store) SecretSetting(ctx context.Context, name string, nbytes int) ([]byte, error) {
	b := make([]byte, nbytes)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	err := s.db.w.WithContext(ctx).Clauses(clause.OnConflict{DoNothing: true}).
		Create(&Setting{Name: name, Value: hex.EncodeToString(b)}).Error
	if err != nil {
		return nil, err
	}
	var st Setting
	if err := s.db.w.WithContext(ctx).Where("name = ?", name).Take(&st).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrNotFound
		}
		return nil, err
	}
	return hex.DecodeString(st.Value)
}

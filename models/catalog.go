package models

import (
	"context"
)

// Model kinds in the catalogue.
const (
	KindChat       = "chat"
	KindEmbeddings = "embeddings"
	KindTask       = "task"
)

// CatalogModel is one model customers can call, with its prices. Token
// prices are micro-dollars per million tokens; a task has a fixed price.
type CatalogModel struct {
	ID                  string `gorm:"primaryKey"`
	Kind                string
	InputMicrosPerMTok  int64 `gorm:"column:input_micros_per_mtok"`
	OutputMicrosPerMTok int64 `gorm:"column:output_micros_per_mtok"`
	TaskPriceMicros     int64 `gorm:"column:task_price_micros"`
	MaxOutputTokens     int   `gorm:"column:max_output_tokens"`
	Sort                int
}

// TableName keeps the catalogue in the "models" table.
func (CatalogModel) TableName() string { return "models" }

// Path is the gateway's endpoint for the model's kind.
func (m CatalogModel) Path() string {
	switch m.Kind {
	case KindChat:
		return "/v1/chat/completions"
	case KindEmbeddings:
		return "/v1/embeddings"
	case KindTask:
		return "/v1/tasks"
	}
	return ""
}

// PriceSummary is the model's price the way the console lists it.
func (m CatalogModel) PriceSummary() string {
	switch {
	case m.Kind == KindTask:
		return FormatUSD(m.TaskPriceMicros) + " per task"
	case m.OutputMicrosPerMTok == 0:
		return FormatUSD(m.InputMicrosPerMTok) + " per million input tokens"
	}
	p := FormatUSDs(m.InputMicrosPerMTok, m.OutputMicrosPerMTok)
	return p[0] + " in / " + p[1] + " out per million tokens"
}

// Models returns the catalogue in display order. It changes rarely (a
// migration, an operator adding a model), so it is read at most once a
// minute.
func (s *Store) Models(ctx context.Context) ([]CatalogModel, error) {
	if ms, ok := s.catalog.get("all", catalogCacheTTL); ok {
		return ms, nil
	}
	gen := s.catalog.gen.Load()
	var out []CatalogModel
	if err := s.db.r.WithContext(ctx).Order("sort, id").Find(&out).Error; err != nil {
		return nil, err
	}
	s.catalog.put("all", out, gen)
	return out, nil
}

// ModelByID returns one model of the catalogue, or ErrNotFound.
func (s *Store) ModelByID(ctx context.Context, id string) (*CatalogModel, error) {
	ms, err := s.Models(ctx)
	if err != nil {
		return nil, err
	}
	for i := range ms {
		if ms[i].ID == id {
			m := ms[i]
			return &m, nil
		}
	}
	return nil, ErrNotFound
}

// AddModel adds a model to the catalogue: customers can call it, and the
// console offers it, without a new release. This instance sees it at once;
// others within catalogCacheTTL.
func (s *Store) AddModel(ctx context.Context, m CatalogModel) error {
	if err := s.db.w.WithContext(ctx).Create(&m).Error; err != nil {
		return err
	}
	s.catalog.drop()
	return nil
}

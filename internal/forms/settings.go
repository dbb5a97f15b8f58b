package forms

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/google/uuid"
)

// settings are what processing a form's responses reads besides its
// definition: its business rules and its receipt.
type settings struct {
	rules   []Rule
	receipt *receipt
}

// receipt is a form's enabled receipt SMS (form_receipt).
type receipt struct {
	PhoneField    string   `json:"phone_field"`
	NameField     *string  `json:"name_field"`
	SummaryFields []string `json:"summary_fields"`
	Language      string   `json:"language"`
}

// readSettings reads form formID's settings through q, in one statement.
func readSettings(ctx context.Context, q querier, formID string) (settings, error) {
	var rules, rec []byte
	err := q.QueryRow(ctx, `SELECT
		(SELECT coalesce(json_agg(json_build_object('id', id, 'name', name, 'expression', expression, 'message', message) ORDER BY name), '[]')
		 FROM form_rule WHERE form_id = $1),
		(SELECT row_to_json(r) FROM (SELECT phone_field, name_field, summary_fields, language FROM form_receipt
		 WHERE form_id = $1 AND enabled) r)`, formID).Scan(&rules, &rec)
	if err != nil {
		return settings{}, err
	}
	var s settings
	var stored []struct {
		ID                        uuid.UUID
		Name, Expression, Message string
	}
	if err := json.Unmarshal(rules, &stored); err != nil {
		return settings{}, fmt.Errorf("rules of form %s: %w", formID, err)
	}
	for _, r := range stored {
		s.rules = append(s.rules, Rule{ID: r.ID, Name: r.Name, Expression: r.Expression, Message: r.Message})
	}
	if rec != nil {
		s.receipt = &receipt{}
		if err := json.Unmarshal(rec, s.receipt); err != nil {
			return settings{}, fmt.Errorf("receipt of form %s: %w", formID, err)
		}
	}
	return s, nil
}

// SettingsTTL is how long a process reuses a form's rules and receipt on
// the fast path before reading them again: a rule saved through another
// replica (or a receipt changed through Hasura) applies to submissions
// within this long; one saved through this process applies at once.
const SettingsTTL = 2 * time.Second

// settingsCache keeps forms' settings for SettingsTTL.
type settingsCache struct {
	mu   sync.Mutex
	byID map[string]cachedSettings
	now  func() time.Time
}

type cachedSettings struct {
	settings
	at time.Time
}

// get returns form formID's settings, read through q when not cached or
// older than SettingsTTL.
func (c *settingsCache) get(ctx context.Context, q querier, formID string) (settings, error) {
	now := c.now()
	c.mu.Lock()
	s, ok := c.byID[formID]
	c.mu.Unlock()
	if ok && now.Sub(s.at) < SettingsTTL {
		return s.settings, nil
	}
	fresh, err := readSettings(ctx, q, formID)
	if err != nil {
		return settings{}, err
	}
	c.mu.Lock()
	c.byID[formID] = cachedSettings{settings: fresh, at: now}
	c.mu.Unlock()
	return fresh, nil
}

// forget drops form formID's cached settings (a rule was saved here).
func (c *settingsCache) forget(formID string) {
	c.mu.Lock()
	delete(c.byID, formID)
	c.mu.Unlock()
}

package forms

import "time"

// SetAfterRead makes p call f after a processing read the submission's
// definition, before its transaction: where a registration can race it.
func SetAfterRead(p *Pipeline, f func()) { p.afterRead = f }

// SetRulesClock makes r's settings cache read the time from now.
func SetRulesClock(r *Rules, now func() time.Time) { r.settings.now = now }

// SetOnParse makes p call f whenever it parses a submission's XML.
func SetOnParse(p *Pipeline, f func()) { p.onParse = f }

// SetInDecide makes p call f inside a processing transaction, once it holds
// the instanceIDs' locks and the form's state lock.
func SetInDecide(p *Pipeline, f func()) { p.inDecide = f }

// SetStateWait makes c's SetState wait at most d for processings in flight.
func SetStateWait(c *Catalog, d time.Duration) { c.stateWait = d }

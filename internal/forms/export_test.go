package forms

// SetAfterRead makes p call f after a processing read the submission's
// definition, before its transaction: where a registration can race it.
func SetAfterRead(p *Pipeline, f func()) { p.afterRead = f }

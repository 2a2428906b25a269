package verify

import "time"

// SetRefetchClock replaces the clock that times MinRefetch; call it before
// the Verifier is used.
func SetRefetchClock(v *Verifier, now func() time.Time) { v.clock = now }

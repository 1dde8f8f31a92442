//go:build !go1.25

package agent

// restoreDefaultGOMAXPROCS: before Go 1.25 the start value is restored by
// the caller.
func restoreDefaultGOMAXPROCS() bool { return false }

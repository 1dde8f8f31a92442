//go:build go1.25

package agent

import (
	"os"
	"runtime"
)

// restoreDefaultGOMAXPROCS hands GOMAXPROCS back to the runtime's own
// container-aware default, which keeps following the CPU quota. Not when
// the GOMAXPROCS environment variable set the start value: that one wins.
func restoreDefaultGOMAXPROCS() bool {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return false
	}
	runtime.SetDefaultGOMAXPROCS()
	return true
}

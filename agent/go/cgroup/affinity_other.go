//go:build !linux

package cgroup

import "runtime"

func affinityCount(fallback int) int {
	if n := runtime.NumCPU(); n > 0 {
		return n
	}
	return fallback
}

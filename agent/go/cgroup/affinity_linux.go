package cgroup

import (
	"math/bits"
	"syscall"
	"unsafe"
)

// affinityCount counts the CPUs in this process's affinity mask, growing
// the mask for hosts with many CPUs; fallback when it cannot be read.
func affinityCount(fallback int) int {
	for words := 16; words <= 1<<16; words *= 2 { // 1024 CPUs and up
		mask := make([]uint64, words)
		n, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0,
			uintptr(len(mask)*8), uintptr(unsafe.Pointer(&mask[0])))
		if e == syscall.EINVAL {
			continue
		}
		if e != 0 {
			return fallback
		}
		count := 0
		for i := 0; i < int(n)/8 && i < len(mask); i++ {
			count += bits.OnesCount64(mask[i])
		}
		if count == 0 {
			return fallback
		}
		return count
	}
	return fallback
}

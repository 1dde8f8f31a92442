// cpuload: a CPU load that leaves one P's run queue full while its
// neighbours stay busy with long non-yielding loops.
//
// A few "hog" goroutines spin in tight loops with no function calls, so they
// give up their P only when sysmon preempts them (every 10 ms). One producer
// keeps spawning short tasks; a new goroutine goes to the producer's own P's
// local queue, and because every other P is busy with a hog nobody is idle to
// steal it, so that queue piles up tick after tick.
//
// It exits by itself after -d (default 1.5 s). Standard library only.
package main

import (
	"flag"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

var sink uint64

//go:noinline
func spin(n int) uint64 {
	var x uint64 = 1
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

func main() {
	d := flag.Duration("d", 1500*time.Millisecond, "how long to run")
	flag.Parse()
	procs := runtime.GOMAXPROCS(0)
	hogs := procs - 1
	if hogs < 1 {
		hogs = 1
	}
	deadline := time.Now().Add(*d)
	var stop int32
	for i := 0; i < hogs; i++ {
		go func() {
			// One long loop without calls: only async preemption stops it.
			var x uint64 = 1
			for atomic.LoadInt32(&stop) == 0 {
				for j := 0; j < 50_000_000; j++ {
					x = x*6364136223846793005 + 1442695040888963407
				}
			}
			atomic.AddUint64(&sink, x)
		}()
	}
	// The producer: bursts of short tasks, each burning ~50 us.
	for time.Now().Before(deadline) {
		for i := 0; i < 200; i++ {
			go func() { atomic.AddUint64(&sink, spin(20_000)) }()
		}
		spin(200_000)
	}
	atomic.StoreInt32(&stop, 1)
	os.Exit(0)
}

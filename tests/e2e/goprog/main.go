// goprog is the Go program of the end-to-end schedtrace test: a queue
// consumer with a few long non-yielding workers, so that per-P run queues
// are uneven, and a couple of application lines on stderr around the load.
// Run it with GODEBUG=schedtrace=N; it exits by itself after -ms.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

func spin(n int) uint64 {
	var x uint64 = 1
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

func main() {
	ms := flag.Int("ms", 1200, "how long to run")
	flag.Parse()
	fmt.Fprintf(os.Stderr, "app: start gomaxprocs=%d\n", runtime.GOMAXPROCS(0))

	var sink uint64
	var wg sync.WaitGroup
	deadline := time.Now().Add(time.Duration(*ms) * time.Millisecond)
	// A producer floods short tasks; a few goroutines run long loops.
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				atomic.AddUint64(&sink, spin(20_000_000))
			}
		}()
	}
	for time.Now().Before(deadline) {
		for i := 0; i < 64; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				atomic.AddUint64(&sink, spin(50_000))
			}()
		}
		time.Sleep(2 * time.Millisecond)
	}
	wg.Wait()
	fmt.Fprintf(os.Stderr, "app: done %d\n", atomic.LoadUint64(&sink)%7)
}

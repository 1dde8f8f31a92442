// logheavy: many goroutines log to stderr with the log package while the
// runtime prints GODEBUG=schedtrace lines to the same stderr, so application
// lines really land inside SCHED lines (the runtime writes a SCHED line one
// value at a time).
//
// Flags: -d run time (default 1.5 s), -g logging goroutines (default 16),
// -every pause between two lines of one goroutine (default 2 ms). Standard
// library only; exits by itself.
package main

import (
	"flag"
	"log"
	"os"
	"sync"
	"time"
)

func main() {
	d := flag.Duration("d", 1500*time.Millisecond, "how long to run")
	g := flag.Int("g", 16, "logging goroutines")
	every := flag.Duration("every", 2*time.Millisecond, "pause between two lines of one goroutine")
	flag.Parse()
	log.SetOutput(os.Stderr)
	deadline := time.Now().Add(*d)
	var wg sync.WaitGroup
	for w := 0; w < *g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for n := 0; time.Now().Before(deadline); n++ {
				log.Printf("worker=%d seq=%d msg=\"order validated\"", w, n)
				// A little work between lines keeps the Ps busy.
				x := 0
				for i := 0; i < 20000; i++ {
					x += i * w
				}
				_ = x
				time.Sleep(*every)
			}
		}(w)
	}
	wg.Wait()
}

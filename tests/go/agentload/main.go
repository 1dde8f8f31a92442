// agentload: a Go service stand-in for the sidecar's end-to-end tests. It
// keeps every P busy with short CPU tasks and writes numbered application
// lines to stderr whose content the test can rebuild exactly, so it can
// check that the sidecar passed every byte through, in order:
//
//	app NNNNNN <payload>
//
// The payload is a function of the line number; every -long'th line is
// longer than any pipe buffer (70,000 bytes). The last line, written when
// the program stops, has no newline: "app end after N lines".
//
// It stops after -d (0 = only on SIGTERM/SIGINT) and exits with -code.
// On stdout it prints "gomaxprocs=N" once at start (stdout is its own).
// Standard library only.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Payload returns line i's text after the number; the tests rebuild it.
func payload(i, long int) string {
	if long > 0 && i%long == long-1 {
		return strings.Repeat(fmt.Sprintf("%07d|", i), 10000)
	}
	return fmt.Sprintf("checksum=%d text=%s", i*7919%100003, strings.Repeat("ab", i%13))
}

var sink uint64

func work(stop *int32) {
	var x uint64 = 1
	for atomic.LoadInt32(stop) == 0 {
		for j := 0; j < 200_000; j++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
		runtime.Gosched()
	}
	atomic.AddUint64(&sink, x)
}

func main() {
	d := flag.Duration("d", 0, "how long to run (0 = until SIGTERM)")
	every := flag.Duration("every", 20*time.Millisecond, "pause between application lines")
	long := flag.Int("long", 25, "every n-th line is 70,000 bytes long (0 = never)")
	workers := flag.Int("workers", 0, "CPU-bound goroutines (0 = GOMAXPROCS)")
	code := flag.Int("code", 0, "exit code")
	flag.Parse()

	fmt.Printf("gomaxprocs=%d\n", runtime.GOMAXPROCS(0))
	n := *workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	var stop int32
	for w := 0; w < n; w++ {
		go work(&stop)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	var deadline <-chan time.Time
	if *d > 0 {
		deadline = time.After(*d)
	}
	tick := time.NewTicker(*every)
	defer tick.Stop()
	i := 0
	for {
		select {
		case <-tick.C:
			// One write per line, as the log package does.
			os.Stderr.WriteString(fmt.Sprintf("app %06d %s\n", i, payload(i, *long)))
			i++
			continue
		case s := <-sig:
			fmt.Printf("got %v\n", s)
		case <-deadline:
		}
		break
	}
	atomic.StoreInt32(&stop, 1)
	os.Stderr.WriteString(fmt.Sprintf("app end after %d lines", i))
	os.Exit(*code)
}

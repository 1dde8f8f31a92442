// panicker: does some work on a few goroutines and panics after -after
// (default 1.5 s). With GODEBUG=schedtrace set, the runtime prints a full
// scheddetail dump (header, P, M and G lines) before the panic message and
// the goroutine traces. Standard library only.
package main

import (
	"flag"
	"fmt"
	"os"
	"time"
)

func worker(id int, ch chan int) {
	for v := range ch {
		x := 0
		for i := 0; i < 100000; i++ {
			x += i ^ v
		}
		_ = x
		_ = id
	}
}

func main() {
	after := flag.Duration("after", 1500*time.Millisecond, "when to panic")
	flag.Parse()
	ch := make(chan int, 64)
	for i := 0; i < 6; i++ {
		go worker(i, ch)
	}
	fmt.Fprintln(os.Stderr, "panicker: started")
	deadline := time.Now().Add(*after)
	for n := 0; time.Now().Before(deadline); n++ {
		ch <- n
	}
	panic(fmt.Sprintf("inventory hold %d lost", 42))
}

// imbalance: a workload for the neighbor_steal rule (docs/tuner.md, rule 3).
//
//	-mode imbalanced: long non-yielding loops ("hogs", GOMAXPROCS-1 of them)
//	  beside many short tasks that all queue on one P. That P's local run
//	  queue stays between about 24 and 47 tick after tick while the Ps beside
//	  it, each running a hog, have empty queues:  [0 44] [0 31] [45 0 0 0].
//	-mode balanced: the same hogs and the same kind of short tasks, but
//	  spawned by one producer per P in batches of 3, so no P queues more than
//	  a handful and nothing is hot:  [1 2] [1 0 1 3].
//
// Why the imbalance holds (Go 1.19 runtime):
//   - `go f()` puts the new goroutine in the current P's runnext slot and
//     pushes the previous runnext to the tail of that P's local queue.
//   - A goroutine made ready by a channel send goes to the runnext of the P
//     that sent. The producer sleeps on a channel that its own short tasks
//     signal, so it wakes up on the P where its tasks run and spawns the next
//     batch there: the producer, and with it the backlog, stays on one P.
//   - Only a P with nothing to run steals, and no P is ever without work: a
//     hog gives up its P only when sysmon preempts it (every 10 ms); the
//     preempted hog goes to the global queue and the same P, finding its own
//     queue empty, takes it straight back from there. With GOMAXPROCS-1 hogs
//     there is no spare hog, so the global queue is empty almost always and
//     the hot P (which looks at it every 61st schedule) does not take hogs
//     either.
//   - The short tasks are separate goroutines, each taken from the local
//     queue with a new schedule tick, so sysmon never preempts the hot P and
//     nothing it queued goes to the global queue.
//
// So one P holds the backlog and its neighbours run hogs with empty queues.
// Which P that is depends on where the producer first ran.
//
// Application lines go to stdout; stderr carries only the runtime's
// schedtrace. It exits by itself after -duration. Standard library only.
package main

import (
	"flag"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
)

var sink uint64

// work burns about n multiply-adds; noinline keeps it a real call.
//
//go:noinline
func work(n int) uint64 {
	var x uint64 = 1
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	return x
}

// hog spins in a loop with no calls and no yields: only async preemption
// takes its P away.
func hog(stop *int32) {
	var x uint64 = 1
	for atomic.LoadInt32(stop) == 0 {
		for j := 0; j < 10_000_000; j++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	atomic.AddUint64(&sink, x)
}

// producer keeps between batch/2 and batch short tasks queued: it spawns a
// batch, sleeps until at most batch/2 are left, then tops it up to batch
// again. The task that takes the count down to batch/2 wakes it, on that
// task's P. The wake channel holds one token and every task that leaves the
// count at or below the low mark makes sure one is there, so no wake-up is
// lost however the tasks and the producer interleave.
func producer(stop *int32, batch, taskWork int, done *uint64) {
	low := int64(batch / 2)
	wake := make(chan struct{}, 1)
	var left int64
	task := func() {
		atomic.AddUint64(&sink, work(taskWork))
		atomic.AddUint64(done, 1)
		if atomic.AddInt64(&left, -1) <= low {
			select {
			case wake <- struct{}{}:
			default:
			}
		}
	}
	for atomic.LoadInt32(stop) == 0 {
		k := int64(batch) - atomic.LoadInt64(&left)
		atomic.AddInt64(&left, k)
		for i := int64(0); i < k; i++ {
			go task()
		}
		<-wake
	}
}

func main() {
	mode := flag.String("mode", "imbalanced", "imbalanced or balanced")
	duration := flag.Duration("duration", 4*time.Second, "how long to run")
	procs := flag.Int("procs", 0, "GOMAXPROCS to set (0: leave the runtime's choice)")
	hogs := flag.Int("hogs", 0, "spinning loops (0: GOMAXPROCS-1, at least 1)")
	batch := flag.Int("batch", 0, "short tasks per producer batch (0: 48 imbalanced, 3 balanced)")
	taskWork := flag.Int("task", 50_000, "work per short task in multiply-adds (50000: about 0.1-0.2 ms)")
	flag.Parse()

	if *procs > 0 {
		runtime.GOMAXPROCS(*procs)
	}
	np := runtime.GOMAXPROCS(0)
	if *hogs <= 0 {
		*hogs = np - 1
		if *hogs < 1 {
			*hogs = 1
		}
	}
	producers := 1
	switch *mode {
	case "imbalanced":
		if *batch <= 0 {
			*batch = 48
		}
	case "balanced":
		producers = np
		if *batch <= 0 {
			*batch = 3
		}
	default:
		fmt.Fprintf(os.Stderr, "imbalance: unknown -mode %q\n", *mode)
		os.Exit(2)
	}
	if *batch < 2 {
		*batch = 2
	}
	// Application lines go to stdout: stderr is the schedtrace's.
	fmt.Printf("imbalance: mode=%s gomaxprocs=%d hogs=%d producers=%d batch=%d task=%d duration=%s\n",
		*mode, np, *hogs, producers, *batch, *taskWork, *duration)

	var stop int32
	var done uint64
	for i := 0; i < producers; i++ {
		go producer(&stop, *batch, *taskWork, &done)
	}
	for i := 0; i < *hogs; i++ {
		go hog(&stop)
	}
	time.Sleep(*duration)
	atomic.StoreInt32(&stop, 1)
	fmt.Printf("imbalance: %d short tasks done\n", atomic.LoadUint64(&done))
	os.Exit(0)
}

// libagent: a Go service that embeds gotuned's agent library, for the
// end-to-end tests. It pushes runtime/metrics telemetry to -server (or, with
// -config-file, follows the config a sidecar writes), keeps CPU work flowing
// through a work-stealing pool attached to the agent, and prints one line
// to stdout per applied config version:
//
//	applied version=N gomaxprocs=G steal_threshold=T
//
// Three tasks in four go to worker 0, so its queue builds up and the steal
// threshold decides how soon the others take over. SIGTERM or SIGINT stops
// it cleanly (exit status 0). Standard library and gotuned.dev/agent only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"gotuned.dev/agent"
	"gotuned.dev/agent/pool"
)

var sink uint64

// spin burns CPU for about d.
func spin(d time.Duration) {
	x := sink
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	sink = x
}

func main() {
	server := flag.String("server", "", "gotuned server URL (telemetry mode)")
	service := flag.String("service", "libagent", "service name")
	id := flag.String("id", "", "agent id (default <hostname>-<service>)")
	interval := flag.Duration("interval", 10*time.Second, "push interval")
	sample := flag.Duration("sample", time.Second, "sample interval")
	wait := flag.Duration("wait", 5*time.Minute, "blocking query wait")
	configFile := flag.String("config-file", "", "config file written by a sidecar (file mode)")
	ca := flag.String("ca", "", "PEM bundle that verifies an https -server (token: GOTUNED_TOKEN)")
	task := flag.Duration("task", 200*time.Microsecond, "CPU time of one task")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()

	p := pool.New(pool.Options{Workers: runtime.GOMAXPROCS(0)})
	a, err := agent.Start(ctx, agent.Options{
		Server: *server, Service: *service, ID: *id, ConfigFile: *configFile, CAFile: *ca,
		Interval: *interval, SampleInterval: *sample, Wait: *wait, Pool: p,
		OnConfig: func(c agent.Config) {
			fmt.Printf("applied version=%d gomaxprocs=%d steal_threshold=%d\n",
				c.Version, runtime.GOMAXPROCS(0), p.Settings().StealThreshold)
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "libagent:", err)
		os.Exit(2)
	}
	fmt.Fprintf(os.Stderr, "libagent: agent %s started\n", a.ID())

	for i := 0; ctx.Err() == nil; i++ {
		work := func() { spin(*task) }
		if i%4 != 3 {
			err = p.SubmitTo(ctx, 0, work)
		} else {
			err = p.Submit(ctx, work)
		}
		if err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, "libagent: submit:", err)
		}
	}
	p.Close()
	a.Stop()
	st := p.Stats()
	fmt.Fprintf(os.Stderr, "libagent: stopped after %d tasks, %d steals\n", st.TasksRun, st.Steals)
}

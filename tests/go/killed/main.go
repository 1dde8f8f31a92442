// killed: a busy Go process that is SIGKILLed while the runtime is in the
// middle of printing a SCHED line, so that its stderr ends with a cut line.
//
// Run as `killed [-after 1s] > capture.txt` with GODEBUG=schedtrace=1.
// The program starts itself again as a child whose stderr is a small pipe
// (4 KiB) that the parent drains slowly (64 bytes every 20 ms) into its
// own stdout. The runtime writes a SCHED line one value at a time, so with
// the pipe full it is almost always blocked in the middle of a line; the
// parent then kills the child with SIGKILL, copies what is left in the pipe
// and exits. The parent's own stderr is not part of the capture.
//
// Standard library only; Linux only (the pipe size is set with fcntl).
package main

import (
	"flag"
	"io"
	"log"
	"os"
	"os/exec"
	"syscall"
	"time"
)

const childEnv = "GOTUNED_KILLED_CHILD"

func child() {
	log.SetOutput(os.Stderr)
	log.Printf("killed: child started")
	for w := 0; w < 8; w++ {
		go func(w int) {
			for {
				x := 0
				for i := 0; i < 200000; i++ {
					x += i * w
				}
				_ = x
				time.Sleep(time.Millisecond)
			}
		}(w)
	}
	// Never exits by itself before the parent's deadline; the parent kills it.
	time.Sleep(time.Minute)
}

func main() {
	after := flag.Duration("after", time.Second, "when to kill the child")
	flag.Parse()
	if os.Getenv(childEnv) == "1" {
		child()
		return
	}
	r, w, err := os.Pipe()
	if err != nil {
		log.Fatal(err)
	}
	// F_SETPIPE_SZ: a small pipe fills quickly, so the child blocks in write.
	syscall.Syscall(syscall.SYS_FCNTL, w.Fd(), 1031, 4096)
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		log.Fatal(err)
	}
	w.Close()
	deadline := time.Now().Add(*after)
	buf := make([]byte, 64)
	for time.Now().Before(deadline) {
		n, err := r.Read(buf)
		if n > 0 {
			os.Stdout.Write(buf[:n])
		}
		if err != nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill() // SIGKILL
	cmd.Wait()
	io.Copy(os.Stdout, r)
}

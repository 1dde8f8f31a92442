#!/usr/bin/env bash
# capture-schedtrace.sh — regenerates the real schedtrace captures used as
# test cases by tests/unit/test_schedtrace.c.
#
#   scripts/capture-schedtrace.sh            # all captures
#   scripts/capture-schedtrace.sh cpuload    # only captures whose name matches
#
# It builds the Go programs under tests/go/ (standard library only, Go 1.19+,
# no network: GOFLAGS=-mod=mod GOPROXY=off), runs each with
# GODEBUG=schedtrace=10 (and scheddetail=1 for the -detail captures) at
# GOMAXPROCS=1, 2, 4 and 8, and stores stderr as
# tests/data/schedtrace/captured-<name>-p<N>/input.txt:
#
#   cpuload    long non-yielding loops on N-1 goroutines plus a producer of
#              short tasks: one P's local queue piles up (1.5 s)
#   logheavy   16 goroutines logging to stderr: application lines land
#              inside SCHED lines (1 s)
#   panicker   panics after 1.5 s: the runtime's scheddetail dump, the panic
#              message and the goroutine traces (GOMAXPROCS 2 and 4; and
#              -detail: scheddetail=1 at GOMAXPROCS 2, panicking at 0.4 s)
#   killed     SIGKILLed while the runtime is in the middle of a SCHED line
#              (GOMAXPROCS 8, schedtrace=1; its stderr goes through a slow
#              pipe so that the runtime is blocked inside a line)
#
# Then it writes expected.txt next to each input with
# tests/data/schedtrace/expect.awk, an independent reader of the strict
# formats (see tests/data/schedtrace/README.md). Where a capture holds
# interleaved or cut lines, expect.awk writes "TODO" lines: those events
# are worked out and written by hand, and the test fails until they are.
# Captures are small (about 1-2 s of output, under ~100 KB each).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
data="$root/tests/data/schedtrace"
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
only=${1:-}

for prog in cpuload logheavy panicker killed; do
    (cd "$root/tests/go/$prog" && GOFLAGS=-mod=mod GOPROXY=off go build -o "$bin/$prog" .)
done

want() { [ -z "$only" ] || [[ "$1" == *"$only"* ]]; }

# capture NAME GOMAXPROCS GODEBUG PROGRAM [ARGS...]: stderr only; the exit
# status is ignored (panicker exits 2).
capture() {
    local name=$1 procs=$2 debug=$3
    shift 3
    want "$name" || return 0
    mkdir -p "$data/$name"
    GOMAXPROCS=$procs GODEBUG=$debug "$@" 2>"$data/$name/input.txt" >/dev/null || true
    awk -f "$data/expect.awk" "$data/$name/input.txt" >"$data/$name/expected.txt"
    printf '%-28s %7d bytes  %3d TODO\n' "$name" "$(wc -c <"$data/$name/input.txt")" \
        "$(grep -c '^TODO' "$data/$name/expected.txt" || true)"
}

for n in 1 2 4 8; do
    capture "captured-cpuload-p$n" "$n" schedtrace=10 "$bin/cpuload" -d 1500ms
    capture "captured-logheavy-p$n" "$n" schedtrace=10 "$bin/logheavy" -d 1s -g 8 -every 6ms
done
for n in 2 4; do
    capture "captured-panicker-p$n" "$n" schedtrace=10 "$bin/panicker" -after 1500ms
done
capture "captured-panicker-detail-p2" 2 schedtrace=10,scheddetail=1 "$bin/panicker" -after 400ms

# killed: the program runs itself as a child behind a small, slowly drained
# pipe and SIGKILLs it after 1 s, while the runtime is blocked in the middle
# of a SCHED line (see tests/go/killed/main.go). Retried until the capture
# ends without '\n' inside a SCHED line.
name=captured-killed-p8
if want "$name"; then
    mkdir -p "$data/$name"
    out="$data/$name/input.txt"
    for try in $(seq 1 20); do
        GOMAXPROCS=8 GODEBUG=schedtrace=1 "$bin/killed" -after 1s >"$out" 2>/dev/null || true
        if [ -n "$(tail -c1 "$out")" ] && tail -n1 "$out" | grep -q '^SCHED '; then
            break
        fi
        if [ "$try" = 20 ]; then
            echo "killed: no cut line after 20 tries" >&2
            exit 1
        fi
    done
    awk -f "$data/expect.awk" "$out" >"$data/$name/expected.txt"
    printf '%-28s %7d bytes  %3d TODO\n' "$name" "$(wc -c <"$out")" \
        "$(grep -c '^TODO' "$data/$name/expected.txt" || true)"
fi

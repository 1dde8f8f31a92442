#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup runs from the EXIT trap
# bench/agent.sh — what the gotuned-agent sidecar costs (docs/bench.md):
# a Go program with GOMAXPROCS=64 (64 Ps in every SCHED line) and one busy
# goroutine (about one CPU) runs under the agent beside a gotuned server on
# loopback, at schedtrace=1000 (the default) and at schedtrace=100 (ten
# times the lines). For each it prints
# the agent's CPU time over the measured stretch (after a warm-up) and its
# resident memory, next to the same figures of the Go program it watches,
# which is the reference: the sidecar should cost a small fraction of what
# it watches.
#
# Environment:
#   O                  build folder (default build)
#   AGENT_BENCH_SECS   measured seconds per scenario (default 60)
# Everything started here is stopped by its own PID.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
me=agent.sh

O=${O:-build}
SECS=${AGENT_BENCH_SECS:-60}
WARMUP=5
make --no-print-directory O="$O" "$O/gotuned" "$O/gotuned-agent"
GOTUNED_BIN=$O/gotuned
agent_bin=$O/gotuned-agent

dir=$(mktemp -d "${TMPDIR:-/tmp}/gotuned-bench-agent.XXXXXX")
agent_pid=
cleanup() {
    if [ -n "$agent_pid" ] && alive "$agent_pid"; then
        kill -TERM "$agent_pid" 2>/dev/null || true     # the agent stops its child
        wait "$agent_pid" 2>/dev/null || true
    fi
    stop_server
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

top=$(pwd)
(cd tests/go/agentload && GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$top/$O/go/cache" \
    GOPATH="$top/$O/go/path" go build -o "$dir/agentload" .)

start_server
echo "$me: gotuned (pid $server_pid) on 127.0.0.1:$port; $SECS s per scenario" >&2

ticks=$(getconf CLK_TCK)
# CPU time (utime + stime) of a process, in clock ticks.
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$1/stat")
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo $(( ${12} + ${13} ))
}
# A field of /proc/PID/status in kB.
status_kb() {
    sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"
}

printf '\n%-16s %-10s %12s %12s %12s %12s %10s\n' scenario process "cpu %" "cpu ms/min" \
    "rss kB" "peak rss kB" samples
run_scenario() {
    local trace=$1 id=agent-bench-$1 child a0 c0 a1 c1 total0 total1
    GOMAXPROCS=64 "$agent_bin" --server "http://127.0.0.1:$port" --service bench --id "$id" \
        --apply none --schedtrace "$trace" -- "$dir/agentload" -every 1s -long 0 -workers 1 \
        >/dev/null 2>"$dir/agent-$trace.err" &
    agent_pid=$!
    sleep "$WARMUP"
    child=$(cat "/proc/$agent_pid/task/$agent_pid/children")
    child=${child%% *}
    total0=$(curl -s "http://127.0.0.1:$port/api/v1/agents/$id" | sed -n 's/.*"samples_total":\([0-9]*\).*/\1/p')
    a0=$(cpu_ticks "$agent_pid"); c0=$(cpu_ticks "$child")
    sleep "$SECS"
    a1=$(cpu_ticks "$agent_pid"); c1=$(cpu_ticks "$child")
    total1=$(curl -s "http://127.0.0.1:$port/api/v1/agents/$id" | sed -n 's/.*"samples_total":\([0-9]*\).*/\1/p')
    for who in agent child; do
        local pid d
        if [ $who = agent ]; then pid=$agent_pid; d=$((a1 - a0)); else pid=$child; d=$((c1 - c0)); fi
        awk -v s="schedtrace=$trace" -v w="$who" -v d="$d" -v t="$ticks" -v secs="$SECS" \
            -v rss="$(status_kb "$pid" VmRSS)" -v hwm="$(status_kb "$pid" VmHWM)" \
            -v n="$([ $who = agent ] && echo $((${total1:-0} - ${total0:-0})) || echo -)" \
            'BEGIN { printf "%-16s %-10s %12.3f %12.1f %12d %12d %10s\n", s, w,
                     100 * d / t / secs, 1000 * d / t / secs * 60, rss, hwm, n }'
    done
    kill -TERM "$agent_pid"
    wait "$agent_pid" 2>/dev/null || true
    agent_pid=
}
run_scenario 1000
run_scenario 100
echo
echo "$me: cpu % is of one CPU over $SECS s after a ${WARMUP} s warm-up; samples = pushed to the server in that time" >&2

#!/usr/bin/env bash
# shellcheck disable=SC2317  # stop_server and cleanup run from the EXIT trap
# bench/waiters.sh — the waiters benchmark from end to end (docs/bench.md):
# builds what is missing, starts gotuned on a free loopback port with a fresh
# data directory, runs bench/waiters against it, stops that server (by its
# own PID, nothing else), removes the directory, and exits with the client's
# status.
#
# Environment:
#   O             build folder (default build)
#   GOTUNED_BIN   the server to measure (default $O/gotuned, built when missing)
#   WAITERS_JSON  where the figures go as JSON (default $O/bench/waiters.json)
# Arguments are passed to the client, e.g. `bench/waiters.sh -n 1000`.
#
# The server gets only --listen and --data-dir: the benchmark measures the
# defaults a real deployment runs with.
set -euo pipefail
cd "$(dirname "$0")/.."

O=${O:-build}
START_TRIES=100        # x 0.1 s: how long the server may take to come up
STOP_TRIES=300         # x 0.1 s after SIGTERM (the server's own grace is 10 s)

targets=("$O/bench/waiters")
if [ -z "${GOTUNED_BIN:-}" ]; then
    GOTUNED_BIN=$O/gotuned
    targets+=("$O/gotuned")
fi
make --no-print-directory O="$O" "${targets[@]}"
client=$O/bench/waiters
json=${WAITERS_JSON:-$O/bench/waiters.json}

dir=$(mktemp -d "${TMPDIR:-/tmp}/gotuned-bench.XXXXXX")
log=$dir/server.log
server_pid=
client_pid=

# True while our child runs: a zombie (exited, not yet reaped) does not
# count. Until it is reaped its PID cannot be reused, so signalling it by
# PID only ever reaches the server this script started.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

stop_server() {
    [ -n "$server_pid" ] || return 0
    local pid=$server_pid status=0 i
    server_pid=
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < STOP_TRIES; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            echo "waiters.sh: gotuned (pid $pid) still running $((STOP_TRIES / 10)) s after SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || status=$?
    echo "waiters.sh: gotuned (pid $pid) stopped, exit status $status" >&2
}

# The server's log can hold thousands of lines (one per refused
# connection): show the most frequent messages, timestamps cut off.
show_log() {
    [ -s "$log" ] || return 0
    echo "waiters.sh: server log ($(wc -l <"$log") lines), most frequent messages:" >&2
    cut -d' ' -f2- "$log" | sort | uniq -c | sort -rn | head -n 10 >&2
}

cleanup() {
    if [ -n "$client_pid" ] && alive "$client_pid"; then
        kill -TERM "$client_pid" 2>/dev/null || true
        wait "$client_pid" 2>/dev/null || true
    fi
    stop_server
    rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir "$dir/data"
"$GOTUNED_BIN" --listen 127.0.0.1:0 --data-dir "$dir/data" 2>"$log" &
server_pid=$!

port=
for ((i = 0; i < START_TRIES; i++)); do
    port=$(sed -n 's/.* gotuned: started .*(port \([0-9][0-9]*\)).*/\1/p' "$log")
    [ -n "$port" ] && break
    if ! alive "$server_pid"; then
        echo "waiters.sh: gotuned exited before it started listening" >&2
        cat "$log" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "waiters.sh: gotuned did not report its port within $((START_TRIES / 10)) s" >&2
    cat "$log" >&2
    exit 1
fi
echo "waiters.sh: gotuned $GOTUNED_BIN (pid $server_pid) on 127.0.0.1:$port, data in $dir/data" >&2

mkdir -p "$(dirname "$json")"
# In the background, so that a signal to this script is handled at once
# (the trap stops the client and the server) rather than after the client.
rc=0
"$client" --server "127.0.0.1:$port" --pid "$server_pid" --json "$json" "$@" &
client_pid=$!
wait "$client_pid" || rc=$?
client_pid=

if ! alive "$server_pid"; then
    echo "waiters.sh: gotuned (pid $server_pid) died during the benchmark" >&2
    [ "$rc" -ne 0 ] || rc=1
fi
[ "$rc" -eq 0 ] || show_log
echo "waiters.sh: figures also in $json" >&2
exit "$rc"

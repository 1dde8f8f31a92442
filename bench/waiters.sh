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
# shellcheck source=bench/lib.sh
. bench/lib.sh
me=waiters.sh

O=${O:-build}

targets=("$O/bench/waiters")
if [ -z "${GOTUNED_BIN:-}" ]; then
    GOTUNED_BIN=$O/gotuned
    targets+=("$O/gotuned")
fi
make --no-print-directory O="$O" "${targets[@]}"
client=$O/bench/waiters
json=${WAITERS_JSON:-$O/bench/waiters.json}

dir=$(mktemp -d "${TMPDIR:-/tmp}/gotuned-bench.XXXXXX")
client_pid=

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

start_server
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

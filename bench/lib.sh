# bench/lib.sh — sourced by the benchmark scripts: start a gotuned server on
# a free loopback port with a fresh data directory and stop it again, by its
# own PID only. The caller sets GOTUNED_BIN, dir (a scratch folder) and me
# (its name, for messages); start_server sets server_pid, port and log.

START_TRIES=100        # x 0.1 s: how long the server may take to come up
STOP_TRIES=300         # x 0.1 s after SIGTERM (the server's own grace is 10 s)
server_pid=

# True while our child runs: a zombie (exited, not yet reaped) does not
# count. Until it is reaped its PID cannot be reused, so signalling it by
# PID only ever reaches a process this script started.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

start_server() {
    local i
    log=$dir/server.log
    mkdir "$dir/data"
    # Made here, so that the first read below cannot come before the
    # server's redirection has created it (sed would fail, and set -e end
    # the script).
    : >"$log"
    "$GOTUNED_BIN" --listen 127.0.0.1:0 --data-dir "$dir/data" 2>"$log" &
    server_pid=$!
    port=
    for ((i = 0; i < START_TRIES; i++)); do
        port=$(sed -n 's/.* gotuned: started .*(port \([0-9][0-9]*\)).*/\1/p' "$log")
        [ -n "$port" ] && break
        if ! alive "$server_pid"; then
            echo "$me: gotuned exited before it started listening" >&2
            cat "$log" >&2
            exit 1
        fi
        sleep 0.1
    done
    if [ -z "$port" ]; then
        echo "$me: gotuned did not report its port within $((START_TRIES / 10)) s" >&2
        cat "$log" >&2
        exit 1
    fi
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
            echo "$me: gotuned (pid $pid) still running $((STOP_TRIES / 10)) s after SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || status=$?
    echo "$me: gotuned (pid $pid) stopped, exit status $status" >&2
}

# The micro-benchmarks (tuner.sh, jdoc.sh) count instructions with valgrind,
# which `make bench` installs (scripts/deps.sh --bench).
need_valgrind() {
    if ! command -v valgrind >/dev/null 2>&1; then
        echo "$me: valgrind is needed for the instruction counts; as root, run" \
            "scripts/deps.sh --bench (or make bench), which installs it" >&2
        exit 1
    fi
}

# per_call FN K1 K2 CMD...: the instructions callgrind counts inside
# function FN per call, from two runs of CMD --count K1 and CMD --count K2:
# their difference cancels what happens once (the dynamic linker, first
# touches of memory), so the figure repeats exactly for the same build.
# Each run is limited to STEP_LIMIT seconds; its files go to $dir.
per_call() {
    local fn=$1 k1=$2 k2=$3 k out total a=
    shift 3
    for k in "$k1" "$k2"; do
        out=$dir/callgrind.$fn.$k
        if ! timeout "$STEP_LIMIT" valgrind --tool=callgrind --toggle-collect="$fn" \
                --callgrind-out-file="$out" "$@" --count "$k" 2>"$out.log"; then
            echo "$me: callgrind run ($*, $k calls of $fn) failed:" >&2
            cat "$out.log" >&2
            return 1
        fi
        total=$(sed -n 's/^totals: *\([0-9][0-9]*\).*/\1/p' "$out")
        if [ -z "$total" ]; then
            echo "$me: no totals line in callgrind's output $out" >&2
            return 1
        fi
        [ -z "$a" ] && a=$total
    done
    echo $(( (total - a) / (k2 - k1) ))
}

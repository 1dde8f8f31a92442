#!/usr/bin/env bash
# shellcheck disable=SC2317  # cleanup and its helpers run from the EXIT trap
# bench/http.sh — gotuned's HTTP paths side by side with reference servers,
# in one run (docs/bench.md, "http"):
#
#   telemetry ingest, JSON (1 sample x 16 Ps)   gotuned | nginx 204 on the same
#                                               request | Pushgateway, the same data
#                                               as text | etcd v3 JSON gateway, as a key
#   schedtrace text ingest (100 SCHED lines     gotuned | nginx 204 on the same request
#   of 64 Ps per request)
#   config poll answered 304 (If-None-Match)    gotuned | nginx 204 on the same GET
#   10,000 agents with full windows:            gotuned (load time, RSS) | nginx 204
#   GET /api/v1/agents?limit=100                on the same GET, as the latency floor
#
# Every server is started here on a free 127.0.0.1 port with its own
# configuration and data in a temporary folder, and stopped by its own PID
# (also on failure or Ctrl-C). The load is wrk (bench/http.lua) for a few
# seconds per run; the pairs run alternately, RUNS times, after one
# unmeasured warm-up each, and the report gives medians. The server's CPU
# time is read from /proc (utime + stime, summed over all its processes)
# before and after each run. gotuned's stored samples are counted with the
# sqlite3 CLI after a graceful stop.
#
# Prints one table on stdout and writes it as JSON to $O/bench/results/http.json
# (or $HTTP_BENCH_JSON).
#
# Environment:
#   O                  build folder (default build)
#   GOTUNED_BIN        the server to measure (default $O/gotuned, built when missing)
#   HTTP_BENCH_RUNS    measured runs per subject (default 5)
#   HTTP_BENCH_SECS    seconds per run (default 3)
#   HTTP_BENCH_CONNS   wrk connections for the ingest and poll scenarios (default 16)
#   HTTP_BENCH_FLEET   agents of the list scenario (default 10000)
#   HTTP_BENCH_ONLY    a comma-separated subset of json,text,poll,fleet
#   HTTP_BENCH_JSON    where the JSON goes
#
# The gotuned server gets --listen and --data-dir only: the defaults a real
# deployment runs with (2 worker threads on this 2-CPU machine: the quota
# rule applied to its own CPU probe). nginx gets as many worker processes as
# gotuned has worker threads.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=bench/lib.sh
. bench/lib.sh
me=http.sh

O=${O:-build}
RUNS=${HTTP_BENCH_RUNS:-5}
SECS=${HTTP_BENCH_SECS:-3}
CONNS=${HTTP_BENCH_CONNS:-16}
FLEET=${HTTP_BENCH_FLEET:-10000}
ONLY=${HTTP_BENCH_ONLY:-json,text,poll,fleet}
json_out=${HTTP_BENCH_JSON:-$O/bench/results/http.json}
AGENTS=1000            # distinct agents pushing in the ingest scenarios, polling in the poll one
WINDOW=128             # TUNER_MAX_WINDOW: a full window per agent in the list scenario
SETTLE=1.2             # s after each run before the CPU is read: gotuned flushes samples every 1 s
WARMUP_SECS=1
LINES=100              # SCHED lines per text request
PROCS_TEXT=64

targets=("$O/bench/fleet")
if [ -z "${GOTUNED_BIN:-}" ]; then
    GOTUNED_BIN=$O/gotuned
    targets+=("$O/gotuned")
fi
make --no-print-directory O="$O" "${targets[@]}" >&2      # stdout is the table
fleet_bin=$O/bench/fleet

for cmd in wrk nginx prometheus-pushgateway etcd curl sqlite3 node go; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
        echo "$me: $cmd is missing; scripts/bench-deps.sh installs it (make bench runs it)" >&2
        exit 1
    fi
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gotuned-bench-http.XXXXXX")
chmod 755 "$tmp"       # nginx's workers (user nobody when started as root) use its temp paths
runs=$tmp/runs.jsonl
: >"$runs"
client_pid='' nginx_pid='' nginx_workers='' pgw_pid='' etcd_pid=''
declare -A started     # pid -> its start time (field 22 of /proc/PID/stat)

start_time() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    # shellcheck disable=SC2086
    set -- $stat
    echo "${20}"
}
# Stops one process this script started (or, for nginx workers, that a
# process it started started): SIGTERM, up to 10 s, then SIGKILL. A PID is
# only signalled while it still has the start time recorded for it.
stop_pid() {
    local pid=$1 name=$2 i
    [ -n "$pid" ] || return 0
    if [ -n "${started[$pid]:-}" ] && [ "$(start_time "$pid" 2>/dev/null)" = "${started[$pid]}" ] &&
        alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 100; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid" && [ "$(start_time "$pid" 2>/dev/null)" = "${started[$pid]}" ]; then
            echo "$me: $name (pid $pid) still running 10 s after SIGTERM; sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    unset "started[$pid]"
}
remember() { started[$1]=$(start_time "$1" || echo gone); }

stop_nginx() {
    [ -n "$nginx_pid" ] || return 0
    stop_pid "$nginx_pid" nginx         # the master stops its workers
    local w
    for w in $nginx_workers; do         # only if the master could not
        stop_pid "$w" "nginx worker"
    done
    nginx_pid='' nginx_workers=''
}
stop_pgw() { stop_pid "$pgw_pid" pushgateway; pgw_pid=; }
stop_etcd() { stop_pid "$etcd_pid" etcd; etcd_pid=; }

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$client_pid" ]; then
        stop_pid "$client_pid" "load client"
        client_pid=
    fi
    stop_pgw
    stop_etcd
    stop_nginx
    stop_server
    if [ "$rc" -ne 0 ]; then
        for f in "$tmp"/*/server.log "$tmp"/nginx/error.log "$tmp"/pgw/log "$tmp"/etcd/log; do
            [ -s "$f" ] || continue
            echo "$me: last lines of $f:" >&2
            tail -n 5 "$f" >&2
        done
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A port nobody on this machine listens on or talks from (in /proc/net/tcp
# in any state), and that this script has not handed out yet.
declare -A given
free_port() {
    local p hex
    for ((;;)); do
        p=$((20000 + RANDOM % 40000))
        [ -z "${given[$p]:-}" ] || continue
        printf -v hex ':%04X ' "$p"
        if ! grep -qi "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
            given[$p]=1
            echo "$p"
            return
        fi
    done
}

# wait_up NAME PID URL: until URL answers with any 2xx/3xx status, at most
# 20 s; fails when the process is gone.
wait_up() {
    local name=$1 pid=$2 url=$3 i
    for ((i = 0; i < 200; i++)); do
        if curl -s -o /dev/null -m 1 -f "$url"; then
            return 0
        fi
        if ! alive "$pid"; then
            echo "$me: $name exited before it answered $url" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "$me: $name did not answer $url within 20 s" >&2
    return 1
}

ticks=$(getconf CLK_TCK)
# utime + stime of the given PIDs, summed, in clock ticks (all threads).
cpu_ticks() {
    local total=0 pid stat
    for pid in "$@"; do
        stat=$(cat "/proc/$pid/stat")
        stat=${stat##*) }
        # shellcheck disable=SC2086
        set -- $stat
        total=$((total + ${12} + ${13}))
    done
    echo "$total"
}
# VmRSS of the given PIDs, summed, in kB.
rss_kb() {
    local total=0 pid kb
    for pid in "$@"; do
        kb=$(sed -n 's/^VmRSS:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status")
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

# ------------------------------------------------------------------ servers

# gotuned, fresh, through bench/lib.sh (one at a time): $tmp/NAME/data.
# start_server sets server_pid, port and log.
# shellcheck disable=SC2154
gotuned_threads=
start_gotuned() {
    dir=$tmp/$1
    mkdir -p "$dir"
    start_server
    remember "$server_pid"
    gotuned_threads=$(sed -n 's/.* \([0-9][0-9]*\) worker threads.*/\1/p' "$log" | head -n 1)
    echo "$me: gotuned (pid $server_pid) on 127.0.0.1:$port, $gotuned_threads worker threads, data in $dir/data" >&2
}
# Stops gotuned gracefully (it flushes its pending samples) and sets
# stored to the rows of its samples table, and droplog to what its log
# says about samples it dropped (the store's queue for the database is
# bounded), quotes and backslashes taken out for the JSON.
stored='' droplog=''
stop_gotuned_count() {
    stop_server
    stored=$(sqlite3 "$dir/data/gotuned.db" 'SELECT count(*) FROM samples')
    local n last
    n=$(grep -c 'store: .*dropping the oldest' "$log" || true)
    last=$(grep -E 'store: .*samples dropped since open' "$log" | tail -n 1 |
        sed -E 's/^[0-9][^ ]* //; s/["\\]//g') || true
    droplog=
    [ "$n" = 0 ] || droplog="$n x store: dropping the oldest queued samples|last: $last"
    [ -z "$droplog" ] || echo "$me: gotuned's log: $droplog" >&2
}

start_nginx() {
    local d=$tmp/nginx
    mkdir -p "$d"
    nginx_port=$(free_port)
    # One worker process per gotuned worker thread; no access log; the
    # body is read off the socket and thrown away (return 204 discards
    # it); as many requests per connection as a client sends (gotuned has
    # no such limit; nginx's default of 1000 would add reconnects).
    cat >"$d/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes ${gotuned_threads:-2};
pid $d/nginx.pid;
error_log $d/error.log warn;
events {
    worker_connections 1024;
}
http {
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path $d/body;
    proxy_temp_path $d/proxy;
    fastcgi_temp_path $d/fastcgi;
    uwsgi_temp_path $d/uwsgi;
    scgi_temp_path $d/scgi;
    client_max_body_size 1m;
    keepalive_requests 1000000;
    keepalive_timeout 30s;
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            return 204;
        }
    }
}
EOF
    nginx -p "$d/" -c "$d/nginx.conf" -e "$d/error.log" &
    nginx_pid=$!
    remember "$nginx_pid"
    wait_up nginx "$nginx_pid" "http://127.0.0.1:$nginx_port/"
    local i w
    for ((i = 0; i < 50; i++)); do
        nginx_workers=$(cat "/proc/$nginx_pid/task/$nginx_pid/children" 2>/dev/null || true)
        # shellcheck disable=SC2086
        [ "$(echo $nginx_workers | wc -w)" -ge "${gotuned_threads:-2}" ] && break
        sleep 0.1
    done
    for w in $nginx_workers; do remember "$w"; done
    echo "$me: nginx (master pid $nginx_pid, workers ${nginx_workers//$'\n'/ }) on 127.0.0.1:$nginx_port" >&2
}

start_pgw() {
    local d=$tmp/pgw
    mkdir -p "$d"
    pgw_port=$(free_port)
    # Persistence every second, like gotuned's sample flush (see docs/bench.md).
    prometheus-pushgateway --web.listen-address="127.0.0.1:$pgw_port" \
        --persistence.file="$d/metrics.store" --persistence.interval=1s \
        --log.level=warn >"$d/log" 2>&1 &
    pgw_pid=$!
    remember "$pgw_pid"
    wait_up pushgateway "$pgw_pid" "http://127.0.0.1:$pgw_port/-/ready"
    echo "$me: pushgateway (pid $pgw_pid) on 127.0.0.1:$pgw_port" >&2
}

start_etcd() {
    local d=$tmp/etcd
    mkdir -p "$d"
    etcd_port=$(free_port)
    local peer
    peer=$(free_port)
    etcd --name bench --data-dir "$d/data" \
        --listen-client-urls "http://127.0.0.1:$etcd_port" \
        --advertise-client-urls "http://127.0.0.1:$etcd_port" \
        --listen-peer-urls "http://127.0.0.1:$peer" \
        --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
        --initial-cluster "bench=http://127.0.0.1:$peer" --initial-cluster-state new \
        --logger zap --log-outputs "$d/log" --log-level warn >/dev/null 2>&1 &
    etcd_pid=$!
    remember "$etcd_pid"
    wait_up etcd "$etcd_pid" "http://127.0.0.1:$etcd_port/health"
    echo "$me: etcd (pid $etcd_pid) on 127.0.0.1:$etcd_port (peer $peer)" >&2
}

# ------------------------------------------------------------------ load

# measure SCENARIO SUBJECT REF RUN CONNS "PIDS" URL MODE [key=value...]
# One wrk run of SECS seconds (WARMUP_SECS for run 0, the warm-up); appends
# one JSON line to $runs with wrk's figures, the server's CPU ticks over the
# run (plus SETTLE seconds, for work the server finishes after answering)
# and its RSS after it.
measure() {
    local scenario=$1 subject=$2 ref=$3 run=$4 conns=$5 pids=$6 url=$7
    shift 7
    local secs=$SECS c0 c1 rss line rc=0
    [ "$run" -gt 0 ] || secs=$WARMUP_SECS
    # shellcheck disable=SC2086
    c0=$(cpu_ticks $pids)
    wrk -t1 -c"$conns" -d"${secs}s" --timeout 5s -s bench/http.lua "$url" -- "$@" \
        >"$tmp/wrk.out" 2>&1 &
    client_pid=$!
    remember "$client_pid"
    wait "$client_pid" || rc=$?
    unset "started[$client_pid]"
    client_pid=
    sleep "$SETTLE"
    # shellcheck disable=SC2086
    c1=$(cpu_ticks $pids)
    # shellcheck disable=SC2086
    rss=$(rss_kb $pids)
    line=$(sed -n 's/^HTTPBENCH //p' "$tmp/wrk.out")
    if [ "$rc" -ne 0 ] || [ -z "$line" ]; then
        echo "$me: wrk failed ($subject, $scenario):" >&2
        cat "$tmp/wrk.out" >&2
        return 1
    fi
    printf '{"scenario":"%s","subject":"%s","reference":%s,"run":%d,"conns":%d,"cpu_ticks":%d,"rss_kb":%d,"wrk":%s}\n' \
        "$scenario" "$subject" "$ref" "$run" "$conns" "$((c1 - c0))" "$rss" "$line" >>"$runs"
    # shellcheck disable=SC2016  # JavaScript, not shell
    node -e '
        const r = JSON.parse(process.argv[1]), w = r.wrk, n = w.ok || 1;
        const err = w.bad_status + w.connect + w.read + w.write + w.timeout;
        console.error(`  ${r.run ? "run " + r.run : "warm-up"}  ${r.subject.padEnd(28)} ` +
            `${(n / (w.duration_us / 1e6)).toFixed(0).padStart(7)} req/s  p99 ` +
            `${(w.p99_us / 1000).toFixed(2).padStart(7)} ms  ` +
            `${(r.cpu_ticks * 1e6 / Number(process.argv[2]) / n).toFixed(1).padStart(7)} ` +
            `CPU us/req  ${(r.rss_kb / 1024).toFixed(1)} MB` +
            (w.refused ? `  refused (503) ${w.refused}` : "") + (err ? `  ERRORS ${err}` +
            (w.first_bad ? ` (first status ${w.first_bad})` : "") : ""));
    ' "$(tail -n 1 "$runs")" "$ticks"
}

# alternate SCENARIO CONNS SUBJECT-SPEC...: a warm-up of each subject, then
# RUNS rounds, each subject once per round, the order reversed every other
# round. A spec is "subject|ref|pids|url|mode args..." (args split on
# spaces).
alternate() {
    local scenario=$1 conns=$2
    shift 2
    local specs=("$@") order r i s subject ref pids url args argv
    echo "$me: $scenario — $RUNS runs of ${SECS} s each, $conns connections" >&2
    for ((r = 0; r <= RUNS; r++)); do
        order=()
        for ((i = 0; i < ${#specs[@]}; i++)); do
            if ((r % 2 == 0)); then order+=("${specs[i]}"); else order=("${specs[i]}" "${order[@]}"); fi
        done
        for s in "${order[@]}"; do
            IFS='|' read -r subject ref pids url args <<<"$s"
            read -r -a argv <<<"$args"          # split on spaces, no globbing
            measure "$scenario" "$subject" "$ref" "$r" "$conns" "$pids" "$url" "${argv[@]}"
        done
    done
}

# A check line for the report: what gotuned stored against what it answered.
note_stored() {
    printf '{"check":"stored","scenario":"%s","subject":"gotuned","stored":%d,"samples_per_request":%d,"log":"%s"}\n' \
        "$1" "$2" "$3" "$droplog" >>"$runs"
}

# ------------------------------------------------------------------ scenarios

S_JSON="telemetry ingest, JSON 1 sample x 16 Ps"
S_TEXT="schedtrace text ingest, 100 SCHED lines x 64 Ps"
S_POLL="config poll answered 304 (If-None-Match)"
S_LIST1="10,000 agents: GET /api/v1/agents?limit=100, 1 connection"
S_LIST8="10,000 agents: GET /api/v1/agents?limit=100, 8 connections"
if [ "$FLEET" != 10000 ]; then
    S_LIST1=${S_LIST1/10,000/$FLEET}
    S_LIST8=${S_LIST8/10,000/$FLEET}
fi

# nginx's worker count follows gotuned's thread count (its CPU probe: the
# quota rule of the default policy, which a fresh data directory has).
gotuned_threads=$("$GOTUNED_BIN" --probe-cpu | sed -n 's/^threads=//p')
start_nginx
nginx_pids="$nginx_pid $nginx_workers"
nginx_url=http://127.0.0.1:$nginx_port

if want json; then
    start_gotuned json
    # The fleet is registered first (an empty push each): the runs measure
    # agents that push, not agents that are created.
    "$fleet_bin" --server "127.0.0.1:$port" -n "$AGENTS" -w 0 --prefix bench- --service orders >/dev/null
    start_pgw
    start_etcd
    lua="json expect=200 agents=$AGENTS prefix=bench-"
    alternate "$S_JSON" "$CONNS" \
        "gotuned|false|$server_pid|http://127.0.0.1:$port|$lua" \
        "nginx 204|true|$nginx_pids|$nginx_url|json expect=204 agents=$AGENTS prefix=bench-" \
        "Pushgateway, text format|true|$pgw_pid|http://127.0.0.1:$pgw_port|prom expect=200,202 agents=$AGENTS prefix=bench-" \
        "etcd v3 JSON gateway, a key|true|$etcd_pid|http://127.0.0.1:$etcd_port|etcd expect=200 agents=$AGENTS prefix=bench-"
    stop_pgw
    stop_etcd
    stop_gotuned_count
    note_stored "$S_JSON" "$stored" 1
fi

if want text; then
    # 100 SCHED lines with 64 Ps from a real Go program: tests/go/cpuload
    # (long non-yielding loops on 63 Ps that 2 CPUs cannot all run).
    top=$(pwd)
    (cd tests/go/cpuload && GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$top/$O/go/cache" \
        GOPATH="$top/$O/go/path" go build -o "$tmp/cpuload" .)
    : >"$tmp/sched.txt"
    for ((i = 0; i < 5; i++)); do
        GOMAXPROCS=$PROCS_TEXT GODEBUG=schedtrace=10 "$tmp/cpuload" -d 4s 2>>"$tmp/sched.raw" >/dev/null || true
        grep "^SCHED .*gomaxprocs=$PROCS_TEXT " "$tmp/sched.raw" | grep -E '\]$' | head -n "$LINES" >"$tmp/sched.txt" || true
        [ "$(wc -l <"$tmp/sched.txt")" -lt "$LINES" ] || break
    done
    if [ "$(wc -l <"$tmp/sched.txt")" -lt "$LINES" ]; then
        echo "$me: could not capture $LINES SCHED lines with $PROCS_TEXT Ps" >&2
        exit 1
    fi
    echo "$me: captured $LINES SCHED lines with $PROCS_TEXT Ps ($(wc -c <"$tmp/sched.txt") bytes) from tests/go/cpuload" >&2
    start_gotuned text
    "$fleet_bin" --server "127.0.0.1:$port" -n "$AGENTS" -w 0 --prefix text- --service text >/dev/null
    # The answer must say all 100 lines were accepted.
    got=$(curl -s -H 'Content-Type: text/plain' --data-binary "@$tmp/sched.txt" \
        "http://127.0.0.1:$port/api/v1/telemetry?agent=text-check&service=text")
    if [[ "$got" != *"\"accepted\":$LINES,"* ]] || [[ "$got" != *'"rejected":0,'* ]]; then
        echo "$me: the captured lines were not all accepted: $got" >&2
        exit 1
    fi
    lua="text expect=200 agents=$AGENTS prefix=text- service=text body=$tmp/sched.txt"
    alternate "$S_TEXT" "$CONNS" \
        "gotuned|false|$server_pid|http://127.0.0.1:$port|$lua" \
        "nginx 204|true|$nginx_pids|$nginx_url|${lua/expect=200/expect=204}"
    stop_gotuned_count
    note_stored "$S_TEXT" "$((stored - LINES))" "$LINES"    # less the check push above
fi

if want poll; then
    start_gotuned poll
    # Agents with a config version: the service's policy puts them in auto
    # mode, and their CPU limit (4.2 on 16 CPUs) makes the tuner write
    # version 1 ({"gomaxprocs":4,"pool":{"workers":4}}) for each.
    "$fleet_bin" --server "127.0.0.1:$port" -n "$AGENTS" -w 1 --prefix poll- --service polls >/dev/null
    curl -sf -o /dev/null -X PUT -H 'Content-Type: application/json' \
        -d '{"mode":{"default":"auto"}}' "http://127.0.0.1:$port/api/v1/services/polls/policy"
    # Each agent's ETag, as an agent gets it: from its config answer (one
    # curl, one kept-alive connection).
    for ((i = 0; i < AGENTS; i++)); do
        printf 'url = "http://127.0.0.1:%s/api/v1/agents/poll-%05d/config"\noutput = /dev/null\n' "$port" "$i"
    done >"$tmp/etag-urls"
    curl -s -K "$tmp/etag-urls" -w '%{url} %{http_code} %header{etag}\n' |
        sed -n 's|^.*/agents/\([^/]*\)/config 200 \(".*"\)$|\1 \2|p' >"$tmp/etags"
    if [ "$(wc -l <"$tmp/etags")" -ne "$AGENTS" ] || ! grep -q -- '-v1"$' "$tmp/etags"; then
        echo "$me: expected $AGENTS ETags of version 1, got $(wc -l <"$tmp/etags"):" >&2
        head -n 3 "$tmp/etags" >&2
        exit 1
    fi
    lua="poll expect=304 etags=$tmp/etags"
    alternate "$S_POLL" "$CONNS" \
        "gotuned|false|$server_pid|http://127.0.0.1:$port|$lua" \
        "nginx 204|true|$nginx_pids|$nginx_url|${lua/expect=304/expect=204}"
    stop_server
fi

if want fleet; then
    start_gotuned fleet
    rss0=$(rss_kb "$server_pid")
    echo "$me: loading $FLEET agents with $WINDOW samples of 16 Ps each (one request per agent, 8 connections)" >&2
    "$fleet_bin" --server "127.0.0.1:$port" -n "$FLEET" -w "$WINDOW" -p 16 -c 8 --prefix fl- \
        --service fleet >"$tmp/fleet.json" &
    client_pid=$!
    remember "$client_pid"
    rc=0
    wait "$client_pid" || rc=$?
    unset "started[$client_pid]"
    client_pid=
    cat "$tmp/fleet.json" >&2
    [ "$rc" -eq 0 ] || { echo "$me: loading the fleet failed" >&2; exit 1; }
    # Until the flusher has written the backlog: the server's CPU time stops
    # moving (at most 60 s).
    prev=-1
    for ((i = 0; i < 60; i++)); do
        cur=$(cpu_ticks "$server_pid")
        [ "$cur" -ne "$prev" ] || break
        prev=$cur
        sleep 1
    done
    rss1=$(rss_kb "$server_pid")
    printf '{"check":"fleet","load":%s,"rss_before_kb":%d,"rss_after_kb":%d,"settle_s":%d}\n' \
        "$(cat "$tmp/fleet.json")" "$rss0" "$rss1" "$i" >>"$runs"
    echo "$me: server RSS $((rss0 / 1024)) MB before, $((rss1 / 1024)) MB after loading (settled in $i s)" >&2
    for c in 1 8; do
        if [ "$c" = 1 ]; then s=$S_LIST1; else s=$S_LIST8; fi
        alternate "$s" "$c" \
            "gotuned|false|$server_pid|http://127.0.0.1:$port|get expect=200 path=/api/v1/agents?limit=100" \
            "nginx 204|true|$nginx_pids|$nginx_url|get expect=204 path=/api/v1/agents?limit=100"
    done
    stop_gotuned_count
    note_stored fleet "$stored" "$WINDOW"
fi

stop_nginx

machine="$(nproc) x $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1), Linux $(uname -r)"
mkdir -p "$(dirname "$json_out")"
# The report exits 1 when a row has errors (wrong statuses, socket errors,
# samples lost): the table and the JSON are written all the same.
rc=0
node bench/http-report.js "$runs" "$json_out" "$machine" "$RUNS" "$ticks" "$SECS" "$CONNS" \
    "$gotuned_threads" || rc=$?
echo "$me: figures also in $json_out" >&2
exit "$rc"

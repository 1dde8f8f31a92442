#!/usr/bin/env bash
# Runs libFuzzer targets for a fixed time each and prints one line per
# target: runs, exec/s, coverage, corpus size, new units, and the crash file
# if there is one. Exits 1 when any target found something.
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS TARGET...
#
# BUILD_DIR holds fuzz/fuzz_TARGET. Each target's working corpus is
# BUILD_DIR/corpus/TARGET, topped up from the committed seeds in
# tests/fuzz/corpus/TARGET (which are never written to); logs go to
# BUILD_DIR/logs/TARGET.log, crash files to BUILD_DIR/. FUZZ_JOBS (1) targets
# run at once, at nice 10.
set -uo pipefail

dir=$(cd "$1" && pwd)
secs=$2
shift 2
jobs=${FUZZ_JOBS:-1}
seeds=$(cd "$(dirname "$0")" && pwd)/corpus
mkdir -p "$dir/logs"

run_one() {
    local t=$1 work="$dir/corpus/$1" log="$dir/logs/$1.log"
    mkdir -p "$work"
    cp -n "$seeds/$t"/* "$work"/ 2>/dev/null || true
    # The API targets' store lives under TMPDIR; a crash skips the
    # target's own clean-up, so the folder goes here.
    local tmp="$dir/tmp/$t"
    rm -rf "$tmp" && mkdir -p "$tmp"
    TMPDIR="$tmp" nice -n 10 "$dir/fuzz/fuzz_$t" -max_total_time="$secs" -rss_limit_mb=2048 \
        -timeout=10 -print_final_stats=1 -artifact_prefix="$dir/" "$work" >"$log" 2>&1
    echo $? >"$log.rc"
    rm -rf "$tmp"
}

pids=()
for t in "$@"; do
    run_one "$t" &
    pids+=($!)
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
        wait -n
    done
done
wait

rc=0
for t in "$@"; do
    log="$dir/logs/$t.log"
    status=$(cat "$log.rc" 2>/dev/null || echo 1)
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    newu=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\/[0-9a-zA-Z]*\).*/\1/p' <<<"$last")
    files=$(find "$dir/corpus/$t" -type f | wc -l)
    crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    printf 'fuzz_%-11s runs %s  exec/s %s  cov %s  ft %s  corpus %s (%s files)  new %s  %s\n' \
        "$t" "${runs:-?}" "${speed:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$files" "${newu:-?}" \
        "$( [ "$status" = 0 ] && echo ok || echo "FAILED (exit $status) ${crash:-see $log}")"
    [ "$status" = 0 ] || rc=1
done
exit $rc

#!/usr/bin/env bash
# bench/tuner.sh — the tuner micro-benchmark (docs/bench.md): what one full
# evaluation of tuner_recommend() costs for 16 Ps and for 256 Ps, each over a
# window of 30 samples. For each size it prints, and writes as JSON:
#   - the median and the minimum ns per evaluation over the repetitions of
#     bench/tuner's timed loop (CLOCK_MONOTONIC, after a warm-up);
#   - the instructions per evaluation counted by valgrind's callgrind with
#     --toggle-collect=tuner_recommend, which counts only what runs inside
#     that call. Two runs of exactly K1 and K2 evaluations are subtracted, so
#     what happens once (the dynamic linker resolving a libc symbol on its
#     first call, first touches of memory) drops out: the figure is one
#     steady-state evaluation, the same on every run of the same build, which
#     makes it the figure to compare on a noisy machine.
# The goals (issue: at most 2 µs for 16 Ps, 20 µs for 256 Ps) are judged on
# the median time and reported, never turned into the exit status: the
# script exits non-zero only when something went wrong (a build failure, a
# wrong answer from the tuner, valgrind missing or failing, a step running
# past its time limit).
#
# Environment:
#   O            build folder (default build)
#   TUNER_JSON   where the figures go (default $O/bench/results/tuner.json)
# Everything it starts runs in the foreground under `timeout`; nothing is
# left behind.
set -euo pipefail
cd "$(dirname "$0")/.."
me=tuner.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

O=${O:-build}
make --no-print-directory O="$O" "$O/bench/tuner"
bin=$O/bench/tuner
json=${TUNER_JSON:-$O/bench/results/tuner.json}
STEP_LIMIT=30               # seconds any one step may take
K1=10 K2=110                # evaluations of the two callgrind runs
SIZES=(16 256)
declare -A LIMIT_US=([16]=2 [256]=20)

need_valgrind

dir=$(mktemp -d "${TMPDIR:-/tmp}/gotuned-bench-tuner.XXXXXX")
trap 'rm -rf "$dir"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One "key=value ..." line per size, for the JSON writer below.
results=()
for p in "${SIZES[@]}"; do
    if ! line=$(timeout "$STEP_LIMIT" "$bin" --procs "$p"); then
        echo "$me: the timed run for $p Ps failed" >&2
        exit 1
    fi
    ipe=$(per_call tuner_recommend "$K1" "$K2" "$bin" --procs "$p")
    results+=("$line instructions=$ipe limit_us=${LIMIT_US[$p]}")
done

mkdir -p "$(dirname "$json")"
# Node writes the JSON and prints the table from the same numbers.
node - "$json" "${results[@]}" <<'EOF'
const fs = require('fs');
const [file, ...lines] = process.argv.slice(2);
const rows = [], goals = [];
const table = [['scenario', 'median ns', 'min ns', 'instructions', 'evals x reps', 'goal']];
for (const line of lines) {
  const f = Object.fromEntries(line.split(' ').map((kv) => kv.split('=')));
  const num = (k) => {
    const v = Number(f[k]);
    if (!Number.isFinite(v)) throw new Error(`no figure ${k} in "${line}"`);
    return v;
  };
  const scenario = `tuner evaluation, ${num('procs')} Ps x ${num('samples')} samples`;
  const median = num('ns_median'), limit = num('limit_us');
  const us = Math.round(median) / 1000;
  rows.push({ scenario, subject: 'gotuned tuner', reference: false,
              figures: { ns_per_eval_median: median, ns_per_eval_min: num('ns_min'),
                         instructions_per_eval: num('instructions'), evals: num('evals'),
                         reps: num('reps') } });
  const met = us <= limit;
  goals.push({ scenario, text: `at most ${limit} µs per evaluation`, value: us, limit,
               unit: 'µs', met });
  table.push([scenario, median.toFixed(1), num('ns_min').toFixed(1),
              String(num('instructions')), `${num('evals')} x ${num('reps')}`,
              `${us.toFixed(3)} µs, at most ${limit}: ${met ? 'met' : 'MISSED'}`]);
}
fs.writeFileSync(file, JSON.stringify({ bench: 'tuner', rows, goals }) + '\n');
const width = table[0].map((_, c) => Math.max(...table.map((r) => r[c].length)));
console.log();
for (const r of table)
  console.log(r.map((cell, c) => (c === 5 ? cell : c === 0 ? cell.padEnd(width[c])
                                                     : cell.padStart(width[c]))).join('  '));
console.log('\ntimes: per evaluation, median and minimum over the repetitions of a timed loop;');
console.log('instructions: per evaluation, inside tuner_recommend, counted by callgrind.');
EOF
echo "$me: figures also in $json" >&2

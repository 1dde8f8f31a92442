#!/usr/bin/env bash
# bench/jdoc.sh — the request-body parser micro-benchmark (docs/jdoc.md):
# one ~350-byte telemetry push read by jdoc (api/jdoc.c, what decode_body
# uses) and by jansson's json_loadb (what it used before), each with the
# free that follows. For each parser it prints, and writes as JSON:
#   - the median and the minimum ns per parse and free over the repetitions
#     of bench/jdoc's timed loop (CLOCK_MONOTONIC, after a warm-up);
#   - the instructions per parse and free, and per parse alone, counted by
#     valgrind's callgrind with --toggle-collect; runs of K1 and K2 parses
#     are subtracted, so one-time costs drop out.
# A benchmark: it never passes or fails on a figure; it exits non-zero only
# when something went wrong (a build failure, valgrind missing or failing).
#
# Environment:
#   O            build folder (default build)
#   JDOC_JSON    where the figures go (default $O/bench/results/jdoc.json)
set -euo pipefail
cd "$(dirname "$0")/.."
me=jdoc.sh
# shellcheck source=bench/lib.sh
. bench/lib.sh

O=${O:-build}
make --no-print-directory O="$O" "$O/bench/jdoc"
bin=$O/bench/jdoc
json=${JDOC_JSON:-$O/bench/results/jdoc.json}
STEP_LIMIT=60
K1=100 K2=1100

need_valgrind
dir=$(mktemp -d "${TMPDIR:-/tmp}/gotuned-bench-jdoc.XXXXXX")
trap 'rm -rf "$dir"' EXIT

timeout "$STEP_LIMIT" "$bin" >"$dir/timed"
results=()
for p in jansson jdoc; do
    line=$(grep "^parser=$p " "$dir/timed")
    parse_fn=$([ "$p" = jdoc ] && echo jdoc_parse || echo json_loadb)
    all=$(per_call "one_$p" "$K1" "$K2" "$bin" --parser "$p")
    parse=$(per_call "$parse_fn" "$K1" "$K2" "$bin" --parser "$p")
    results+=("$line instructions=$all parse_instructions=$parse")
done

mkdir -p "$(dirname "$json")"
node - "$json" "${results[@]}" <<'JS'
const fs = require('fs');
const [file, ...lines] = process.argv.slice(2);
const rows = [];
console.log('\nparser   bytes  median ns  min ns  instructions (parse+free)  instructions (parse)');
for (const line of lines) {
  const f = Object.fromEntries(line.split(' ').map((kv) => kv.split('=')));
  rows.push({ scenario: `telemetry body (${f.bytes} bytes), parse and free`,
              subject: f.parser === 'jdoc' ? 'gotuned jdoc' : 'jansson json_loadb',
              reference: f.parser !== 'jdoc',
              figures: { ns_median: +f.ns_median, ns_min: +f.ns_min,
                         instructions: +f.instructions, parse_instructions: +f.parse_instructions } });
  console.log(`${f.parser.padEnd(8)} ${f.bytes.padStart(5)}  ${f.ns_median.padStart(9)}  ` +
              `${f.ns_min.padStart(6)}  ${f.instructions.padStart(25)}  ${f.parse_instructions.padStart(20)}`);
}
fs.writeFileSync(file, JSON.stringify({ bench: 'jdoc', rows, goals: [] }) + '\n');
JS
echo "$me: figures also in $json" >&2

// bench/http-report.js — the report of bench/http.sh: reads the runs it
// recorded (one JSON line per wrk run, plus check lines), prints the table
// and writes the JSON (docs/bench.md, "http").
//
//   node bench/http-report.js RUNS.jsonl OUT.json MACHINE RUNS CLK_TCK SECS CONNS THREADS
//
// Figures are medians over the measured runs (the warm-up, run 0, is left
// out), with the lowest and highest as *_min / *_max. Errors are summed
// over every run, warm-up included: responses with another status than the
// expected one, wrk's socket errors (connect, read, write, timeout), and
// for gotuned's ingest rows the samples answered 200 but not found in the
// database after a graceful stop.
'use strict';
const fs = require('fs');

const [runsFile, outFile, machine, runsArg, tckArg, secsArg, connsArg, threadsArg] =
    process.argv.slice(2);
const CLK_TCK = Number(tckArg);
const lines = fs.readFileSync(runsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));

const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const n = s.length;
    if (!n) return null;
    return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
};
const round = (x, d) => (x == null || !isFinite(x) ? null : Number(x.toFixed(d)));

// The scenario names bench/http.sh uses (the list ones may name another
// fleet size).
const S_JSON = 'telemetry ingest, JSON 1 sample x 16 Ps';
const S_TEXT = 'schedtrace text ingest, 100 SCHED lines x 64 Ps';
const S_POLL = 'config poll answered 304 (If-None-Match)';
const isList = (s) => / agents: GET \/api\/v1\/agents\?limit=100, /.test(s);

// Rows in the order they were first measured.
const rows = [];
const byKey = new Map();
for (const l of lines) {
    if (l.check) continue;
    const key = l.scenario + '\0' + l.subject;
    if (!byKey.has(key)) {
        const row = { scenario: l.scenario, subject: l.subject, reference: l.reference, runs: [] };
        byKey.set(key, row);
        rows.push(row);
    }
    byKey.get(key).runs.push(l);
}
const checks = lines.filter((l) => l.check);
const fleet = checks.find((c) => c.check === 'fleet');

for (const row of rows) {
    const measured = row.runs.filter((r) => r.run > 0);
    const per = measured.map((r) => {
        const w = r.wrk;
        // Requests that did their work: a 503 refusal (gotuned under more
        // load than its database takes) is counted apart, not as done.
        const n = w.ok || 0;
        return {
            rps: n / (w.duration_us / 1e6),
            p50_ms: w.p50_us / 1000,
            p99_ms: w.p99_us / 1000,
            cpu_us_per_req: n ? (r.cpu_ticks * 1e6) / CLK_TCK / n : null,
            rss_mb: r.rss_kb / 1024,
        };
    });
    const f = {};
    for (const k of ['rps', 'p50_ms', 'p99_ms', 'cpu_us_per_req', 'rss_mb']) {
        const xs = per.map((p) => p[k]).filter((x) => x != null);
        const d = k === 'rps' ? 0 : k === 'rss_mb' ? 1 : k === 'cpu_us_per_req' ? 1 : 3;
        f[k] = round(median(xs), d);
        if (k !== 'rss_mb') {
            f[k + '_min'] = round(Math.min(...xs), d);
            f[k + '_max'] = round(Math.max(...xs), d);
        }
    }
    let errors = 0;
    let ok = 0;
    let refused = 0;
    row.firstBad = 0;
    for (const r of row.runs) {
        const w = r.wrk;
        errors += w.bad_status + w.connect + w.read + w.write + w.timeout;
        ok += w.ok;
        refused += w.refused || 0;
        if (!row.firstBad && w.first_bad) row.firstBad = w.first_bad;
    }
    f.errors = errors;
    if (refused) f.refused_503 = refused;
    row.ok = ok;
    row.figures = f;
}

const ref = (scenario) => rows.find((r) => r.scenario === scenario && r.subject === 'nginx 204');
const gotuned = (scenario) => rows.find((r) => r.scenario === scenario && r.subject === 'gotuned');

// Ratios to the scenario's nginx row.
for (const row of rows) {
    const n = ref(row.scenario);
    if (!n || n === row) continue;
    if (n.figures.rps) row.figures.rps_ratio = round(row.figures.rps / n.figures.rps, 3);
    if (n.figures.cpu_us_per_req)
        row.figures.cpu_ratio = round(row.figures.cpu_us_per_req / n.figures.cpu_us_per_req, 2);
}

// Stored samples: gotuned's answered 200 x samples per request against the
// rows in its database. Requests still in flight when wrk stopped counting
// were answered by the server but not counted by wrk, so stored may exceed
// expected by up to connections x runs x samples per request; fewer is a loss.
for (const c of checks.filter((c) => c.check === 'stored')) {
    if (c.scenario === 'fleet') {
        const expected = fleet ? fleet.load.samples : null;
        for (const row of rows.filter((r) => isList(r.scenario) && r.subject === 'gotuned')) {
            row.figures.stored = c.stored;
            row.figures.expected = expected;
            if (expected != null && c.stored < expected) row.figures.errors += expected - c.stored;
            row.log = c.log;
        }
        continue;
    }
    const row = gotuned(c.scenario);
    if (!row) continue;
    const expected = row.ok * c.samples_per_request;
    row.figures.stored = c.stored;
    row.figures.expected = expected;
    if (c.stored < expected) row.figures.errors += expected - c.stored;
    row.log = c.log;
}
// Per-line figures of the text scenario.
for (const row of rows.filter((r) => r.scenario === S_TEXT)) {
    row.figures.lines_per_s = round(row.figures.rps * 100, 0);
    row.figures.cpu_us_per_line = round(row.figures.cpu_us_per_req / 100, 2);
}
// The fleet: load time and memory.
if (fleet) {
    for (const row of rows.filter((r) => isList(r.scenario) && r.subject === 'gotuned')) {
        row.figures.agents = fleet.load.ok;
        row.figures.load_s = round(fleet.load.seconds, 1);
        row.figures.rss_loaded_mb = round(fleet.rss_after_kb / 1024, 1);
        row.figures.rss_empty_mb = round(fleet.rss_before_kb / 1024, 1);
        if (fleet.load.errors) row.figures.errors += fleet.load.errors;
    }
}

// The figures to reach.
const goals = [];
const goal = (scenario, text, value, limit, unit, atLeast) => {
    if (value == null) return;
    goals.push({ scenario, text, value, limit, unit, met: atLeast ? value >= limit : value <= limit });
};
{
    const g = gotuned(S_JSON);
    if (g && ref(S_JSON)) {
        goal(S_JSON, "server CPU per request at most 2x nginx's", g.figures.cpu_ratio, 2, 'x');
        goal(S_JSON, "throughput at least half of nginx's", g.figures.rps_ratio, 0.5, 'x', true);
    }
    if (g && g.figures.expected != null)
        goal(S_JSON, 'nothing lost: samples answered 200 but not stored',
            Math.max(0, g.figures.expected - g.figures.stored), 0, 'samples');
}
{
    const g = gotuned(S_POLL);
    if (g && ref(S_POLL))
        goal(S_POLL, "server CPU per request at most 1.5x nginx's", g.figures.cpu_ratio, 1.5, 'x');
}
const listRows = rows.filter((r) => isList(r.scenario) && r.subject === 'gotuned');
for (const g of listRows)
    goal(g.scenario, 'list p99 at most 10 ms', g.figures.p99_ms, 10, 'ms');
if (listRows.length && fleet) {
    // The highest RSS seen: after loading, or after any list run.
    const peak = Math.max(fleet.rss_after_kb, ...listRows.flatMap((r) => r.runs.map((x) => x.rss_kb)));
    goal(listRows[0].scenario, 'server RSS at most 200 MB (the highest seen after loading and after each list run)',
        round(peak / 1024, 1), 200, 'MB');
}

const out = {
    bench: 'http',
    machine,
    runs: Number(runsArg),
    rows: rows.map((r) => ({ scenario: r.scenario, subject: r.subject, reference: r.reference, figures: r.figures })),
    goals,
};
fs.writeFileSync(outFile, JSON.stringify(out, null, 1) + '\n');

// ------------------------------------------------------------------ table
const fmt = (x, d = 1) => (x == null ? '-' : Number(x).toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d }));
const cols = [
    ['subject', 30, (r) => r.subject],
    ['req/s', 9, (r) => fmt(r.figures.rps, 0)],
    ['p50 ms', 7, (r) => fmt(r.figures.p50_ms, 2)],
    ['p99 ms', 7, (r) => fmt(r.figures.p99_ms, 2)],
    ['CPU us/req', 10, (r) => fmt(r.figures.cpu_us_per_req, 1)],
    ['RSS MB', 7, (r) => fmt(r.figures.rss_mb, 1)],
    ['errors', 6, (r) => String(r.figures.errors)],
    ['req/s vs nginx', 14, (r) => (r.figures.rps_ratio == null ? '' : fmt(r.figures.rps_ratio, 3) + 'x')],
    ['CPU vs nginx', 12, (r) => (r.figures.cpu_ratio == null ? '' : fmt(r.figures.cpu_ratio, 2) + 'x')],
];
const pad = (s, w, left) => (left ? String(s).padEnd(w) : String(s).padStart(w));
const lineOf = (vals) => vals.map((v, i) => pad(v, cols[i][1], i === 0)).join('  ');
const p = (s = '') => process.stdout.write(s + '\n');
p();
p(`HTTP benchmark — ${machine}`);
p(`medians of ${runsArg} alternating runs of ${secsArg} s each (after a 1 s warm-up), wrk -t1; ` +
  `gotuned with ${threadsArg} worker threads, nginx with as many worker processes.`);
p('The machine is shared and noisy: read differences smaller than the min-max spread as noise.');
p('CPU and RSS are summed over all of a server\'s processes (nginx: master + workers).');
let last = null;
for (const r of rows) {
    if (r.scenario !== last) {
        last = r.scenario;
        const c = r.runs[0].conns;
        p();
        p(`${r.scenario}  (${c} connection${c === 1 ? '' : 's'})`);
        p(lineOf(cols.map((c) => c[0])));
    }
    p(lineOf(cols.map((c) => c[2](r))));
    const f = r.figures;
    const extra = [];
    extra.push(`req/s ${fmt(f.rps_min, 0)}..${fmt(f.rps_max, 0)}, p99 ${fmt(f.p99_ms_min, 2)}..${fmt(f.p99_ms_max, 2)} ms, CPU ${fmt(f.cpu_us_per_req_min, 1)}..${fmt(f.cpu_us_per_req_max, 1)} us/req`);
    if (f.lines_per_s != null) extra.push(`${fmt(f.lines_per_s, 0)} lines/s, ${fmt(f.cpu_us_per_line, 2)} CPU us/line`);
    if (f.stored != null) extra.push(`samples stored ${f.stored} of ${f.expected} answered${f.stored < f.expected ? ' — LOST ' + (f.expected - f.stored) : ''}`);
    if (f.load_s != null) extra.push(`${f.agents} agents x ${fleet.load.window} samples loaded in ${fmt(f.load_s, 1)} s; RSS ${fmt(f.rss_empty_mb, 1)} MB empty, ${fmt(f.rss_loaded_mb, 1)} MB loaded`);
    if (r.firstBad) extra.push(`first unexpected status ${r.firstBad}`);
    if (r.log) extra.push(`gotuned's log: ${r.log.split('|').join('; ')}`);
    p('    ' + extra.join('; '));
}
p();
if (goals.length) p('Figures to reach:');
for (const g of goals)
    p(`  ${g.met ? 'met    ' : 'NOT MET'}  ${g.scenario}: ${g.text}: ${fmt(g.value, g.unit === 'x' ? 2 : g.unit === 'samples' ? 0 : 1)} ${g.unit} (limit ${g.limit})`);
p();
const failed = rows.filter((r) => r.figures.errors > 0);
for (const r of failed)
    p(`ERRORS: ${r.scenario}, ${r.subject}: ${r.figures.errors}`);
if (failed.length) process.exitCode = 1;
p('etcd fsyncs every put before answering; gotuned commits a new agent durably (fsync) and writes a known agent\'s samples and last-seen facts in batches, at most a second later (sooner under load), refusing with 503 rather than dropping when 100,000 wait; nginx reads the body and throws it away; the Pushgateway keeps the latest value per series and writes its file every second.');

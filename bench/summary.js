#!/usr/bin/env node
// bench/summary.js — the one table of `make bench` (docs/bench.md,
// docs/performance.md). Every benchmark script writes its figures to
// $O/bench/results/NAME.json as
//   {"bench": NAME, "rows": [{"scenario", "subject", "reference", "figures": {...}}],
//    "goals": [{"scenario", "text", "value", "limit", "unit", "met"}]}
// (bench/waiters.sh's own report is read from $O/bench/waiters.json and
// turned into that shape here). This script prints every row side by side,
// grouped by scenario with the references under the subject, then every
// goal with its verdict, and writes it all to $O/bench/bench.json with the
// machine, the time and the commit, for later comparison.
//
// Usage: node bench/summary.js BUILD_DIR
// Exits 1 only when there is nothing to summarise or a results file does
// not parse; a missed goal is a figure, not a failure.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');

const build = process.argv[2] || 'build';
const dir = path.join(build, 'bench', 'results');

// The waiters client reports its own detailed shape (docs/bench.md); its
// figures for the scenario are the time until the last held query
// was answered and the server memory per waiting agent, at both changes.
function fromWaiters(w) {
    const scenario = `${w.n} blocking queries held, one change that affects all`;
    const second = w.second_change || {};
    const lastMs = [w.answers && w.answers.last_ms, second.answers && second.answers.last_ms]
        .filter((v) => typeof v === 'number');
    const perWaiter = [w.memory && w.memory.rss_bytes_per_waiter,
        second.memory && second.memory.rss_bytes_per_waiter].filter((v) => typeof v === 'number');
    const rows = [{
        scenario, subject: 'gotuned', reference: false,
        figures: {
            held: w.held,
            answered_ok: w.answers && w.answers.ok,
            put_ms: w.put && w.put.latency_ms,
            last_answer_ms: w.answers && w.answers.last_ms,
            p99_answer_ms: w.answers && w.answers.p99_ms,
            bytes_per_waiter: w.memory && w.memory.rss_bytes_per_waiter,
            repoll_last_answer_ms: second.answers && second.answers.last_ms,
            repoll_bytes_per_waiter: second.memory && second.memory.rss_bytes_per_waiter,
            ok: w.ok,
        },
    }];
    const goals = [];
    if (lastMs.length)
        goals.push({ scenario, text: 'every waiting agent answered within 1 s of the change (the slower of the two changes)',
                     value: Math.max(...lastMs) / 1000, limit: 1, unit: 's',
                     met: w.ok === true && Math.max(...lastMs) <= 1000 });
    if (perWaiter.length)
        goals.push({ scenario, text: 'server memory per waiting agent at most 16 KiB (the larger: re-polled, kept-alive connections)',
                     value: Math.max(...perWaiter) / 1024, limit: 16, unit: 'KiB',
                     met: Math.max(...perWaiter) <= 16384 });
    return { bench: 'waiters', rows, goals };
}

function load() {
    const results = [];
    if (fs.existsSync(dir)) {
        for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
            const r = JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8'));
            if (!Array.isArray(r.rows))
                throw new Error(`${path.join(dir, f)}: no "rows" array`);
            results.push(r);
        }
    }
    const waiters = path.join(build, 'bench', 'waiters.json');
    if (fs.existsSync(waiters))
        results.push(fromWaiters(JSON.parse(fs.readFileSync(waiters, 'utf8'))));
    return results;
}

// Columns every HTTP row has, in order; anything else goes to "other".
const COLS = [
    ['rps', 'req/s'], ['p50_ms', 'p50 ms'], ['p99_ms', 'p99 ms'],
    ['cpu_us_per_req', 'CPU µs/req'], ['rss_mb', 'RSS MB'], ['errors', 'errors'],
];

function fmt(v) {
    if (v === undefined || v === null) return '';
    if (typeof v !== 'number') return String(v);
    if (Number.isInteger(v)) return v.toLocaleString('en-US');
    const a = Math.abs(v);
    return a >= 100 ? Math.round(v).toLocaleString('en-US') : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

function table(header, body) {
    const widths = header.map((h, i) => Math.max(h.length, ...body.map((r) => r[i].length)));
    const line = (cells) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
        .join('  ').trimEnd();
    return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

function machine() {
    const cpus = os.cpus();
    let commit = '';
    try {
        commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    } catch (e) { /* not a checkout */ }
    return { cpus: cpus.length, model: cpus.length ? cpus[0].model : '', kernel: os.release(),
             memory_gib: Math.round(os.totalmem() / 2 ** 30), commit };
}

function main() {
    const results = load();
    if (results.length === 0) {
        console.error(`summary.js: no results in ${dir}`);
        process.exit(1);
    }
    // Rows grouped by scenario, in the order scenarios first appear.
    const scenarios = [];
    const byScenario = new Map();
    for (const r of results) {
        for (const row of r.rows) {
            if (!byScenario.has(row.scenario)) {
                byScenario.set(row.scenario, []);
                scenarios.push(row.scenario);
            }
            byScenario.get(row.scenario).push(row);
        }
    }
    const body = [];
    for (const s of scenarios) {
        const rows = byScenario.get(s).slice().sort((a, b) => Number(a.reference) - Number(b.reference));
        rows.forEach((row, i) => {
            const f = row.figures || {};
            const other = Object.keys(f).filter((k) => !COLS.some(([c]) => c === k))
                .map((k) => `${k}=${fmt(f[k])}`).join(' ');
            body.push([i === 0 ? s : '', (row.reference ? 'ref: ' : '') + row.subject,
                       ...COLS.map(([c]) => fmt(f[c])), other]);
        });
    }
    const m = machine();
    console.log(`\ngotuned benchmarks — ${m.cpus} CPUs (${m.model}), kernel ${m.kernel}, ` +
                `commit ${m.commit || 'unknown'}`);
    console.log('Figures are medians over alternating runs on a shared, noisy machine; read ' +
                'the ratios, and distrust differences smaller than the spread between runs.\n');
    console.log(table(['scenario', 'subject', ...COLS.map(([, h]) => h), 'other figures'], body));

    const goals = results.flatMap((r) => r.goals || []);
    if (goals.length) {
        console.log('\n' + table(['scenario', 'goal', 'value', 'limit', 'verdict'],
            goals.map((g) => [g.scenario, g.text, `${fmt(g.value)} ${g.unit || ''}`.trim(),
                              `${fmt(g.limit)} ${g.unit || ''}`.trim(), g.met ? 'met' : 'MISSED'])));
        const missed = goals.filter((g) => !g.met).length;
        console.log(`\n${goals.length - missed} of ${goals.length} goals met` +
                    (missed ? `; ${missed} missed (docs/performance.md says why)` : ''));
    }
    const out = path.join(build, 'bench', 'bench.json');
    fs.writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), machine: m,
                                           results, goals }, null, 1) + '\n');
    console.log(`\nsummary.js: the table as JSON in ${out}`);
}

main();

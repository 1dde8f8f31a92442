'use strict';
/*
 * Seeds a real gotuned server through its real API (docs/api.md) with a
 * small but realistic fleet, and a big one for the paging test.
 *
 * The small fleet (seedFleet):
 *   service    agent        host     CPUs  limit  what it pushes
 *   orders     orders-a     node-1    16    2.5   JSON, 16 Ps, latency    → applied v1, ACKed
 *   orders     orders-b     node-2    16    4     JSON, 16 Ps, latency    (no version: the apply test's)
 *   payments   payments-a   node-3     8    —     JSON, 8 Ps              → override v1 (pool.workers)
 *   search     search-a     node-4     8    4     text: captured schedtrace, 8 Ps (tests/data/schedtrace)
 *   search     search-b     node-5     4    —     text: captured schedtrace, 4 Ps → mode auto
 *   ingest     ingest-a     zone-b-9   8    1.5   JSON runtime/metrics (Go library: no per-P queues)
 *   steal-demo steal-a      node-6     2    —     text: live schedtrace of tests/go/imbalance
 *                                                 (GOMAXPROCS=2, one P hot) → neighbor_steal fires
 * plus a service policy for steal-demo ({"neighbor_steal":{"window":20}}),
 * mode changes, an ACK, so the event log holds every usual kind.
 */
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');

const { assertJson } = require('../http/lib.js');
const { run, goBuild } = require('../e2e/lib.js');

const SCHEDTRACE = path.join(__dirname, '..', 'data', 'schedtrace');
const STEAL_SERVICE = 'steal-demo';
const STEAL_RUN_MS = 3000;
const STEAL_TRIES = 3;

const enc = encodeURIComponent;

/* A JSON sample: P queues from a seed so the numbers look like a real
 * process (small queues, a little global queue, latency in µs). */
function jsonSample(procs, i, ts, opts = {}) {
    const q = [];
    for (let p = 0; p < procs; p++)
        q.push((p * 7 + i * 3) % 5 === 0 ? (i + p) % 4 : 0);
    const s = { ts_ms: ts, gomaxprocs: procs, idle_procs: (i * 5) % Math.max(1, Math.floor(procs / 2)),
                threads: procs + 4, spinning_threads: i % 2, idle_threads: 2,
                global_runq: (i * 11) % 3, local_runq: q, goroutines: 80 + ((i * 37) % 60) };
    if (opts.latency)
        s.sched_latency_us = { p50: 8 + (i % 5), p99: 300 + ((i * 53) % 400) };
    return s;
}

function jsonSamples(procs, n, opts = {}) {
    const now = Date.now();
    const out = [];
    for (let i = 0; i < n; i++)
        out.push(jsonSample(procs, i, now - (n - i) * 1000, opts));
    return out;
}

async function push(srv, body) {
    return assertJson(await srv.post('/api/v1/telemetry', body));
}

/* Pushes text (schedtrace output) as text/plain with the identity in the query. */
async function pushText(srv, query, text) {
    const qs = Object.entries(query).map(([k, v]) => `${k}=${enc(v)}`).join('&');
    const res = await srv.req('POST', `/api/v1/telemetry?${qs}`,
        { body: text, headers: { 'Content-Type': 'text/plain' } });
    const j = assertJson(res);
    assert.ok(j.accepted > 0, `no SCHED line accepted for ${query.agent}: ${res.text}`);
    return j;
}

function captured(name) {
    return fs.readFileSync(path.join(SCHEDTRACE, name, 'input.txt'), 'utf8');
}

/* Runs tests/go/imbalance for a few seconds and returns its stderr (pure
 * schedtrace at 100 ms). */
async function imbalanceTrace(bin) {
    const p = run(bin, ['-mode', 'imbalanced', '-duration', `${STEAL_RUN_MS}ms`], {
        env: { ...process.env, GOMAXPROCS: '2', GODEBUG: 'schedtrace=100' } });
    const timer = setTimeout(() => p.stop('SIGTERM'), STEAL_RUN_MS + 15000);
    const { code, signal } = await p.exited;
    clearTimeout(timer);
    assert.strictEqual(code, 0, `imbalance exited with ${code ?? signal}: ${p.err().toString().slice(-1000)}`);
    return p.err().toString('utf8');
}

async function recommendation(srv, id) {
    return assertJson(await srv.get(`/api/v1/agents/${enc(id)}/recommendation`));
}

function hotPs(rec) {
    const r = (rec.reasons || []).find((x) => x.rule === 'neighbor_steal');
    return r && Array.isArray(r.hot_ps) ? r.hot_ps : null;
}

/*
 * The live steal agent: the real program's schedtrace pushed as text. The
 * program makes one P hot almost always; on a very busy host a run may not,
 * so it is run again (a fresh agent id each time) up to STEAL_TRIES times.
 */
async function seedSteal(srv) {
    const bin = goBuild('imbalance');
    let last = null;
    for (let i = 0; i < STEAL_TRIES; i++) {
        const id = i === 0 ? 'steal-a' : `steal-a${i}`;
        const text = await imbalanceTrace(bin);
        await pushText(srv, { agent: id, service: STEAL_SERVICE, num_cpu: 2, affinity: 2,
                              hostname: 'node-6', pid: 31337, runtime: 'go1.19.8' }, text);
        last = await recommendation(srv, id);
        if (hotPs(last) && hotPs(last).length)
            return { id, hot: hotPs(last) };
        // A run that did not show the imbalance stays in the fleet as an
        // ordinary agent; the next one gets its own id.
    }
    assert.fail(`neighbor_steal did not fire on tests/go/imbalance in ${STEAL_TRIES} runs: ` +
                JSON.stringify(last).slice(0, 1500));
}

async function seedFleet(srv) {
    const facts = (id, service, hostname, num_cpu, extra = {}) =>
        ({ id, service, hostname, num_cpu, affinity: num_cpu, pid: 1000 + hostname.length * 7,
           runtime: 'go1.22.5', ...extra });
    const cg = (limit) => ({ cpu_limit: limit,
        cpu_limit_source: `cgroup v1 /kubepods/pod-${limit} (cpu.cfs_quota_us=${limit * 100000} cpu.cfs_period_us=100000)` });

    assertJson(await srv.put(`/api/v1/services/${STEAL_SERVICE}/policy`, { neighbor_steal: { window: 20 } }));

    await push(srv, { agent: { ...facts('orders-a', 'orders', 'node-1', 16, cg(2.5)),
                               throttling: { periods: 1200, throttled_periods: 150, throttled_us: 2500000 } },
                      samples: jsonSamples(16, 30, { latency: true }) });
    await push(srv, { agent: { ...facts('orders-b', 'orders', 'node-2', 16, cg(4)) },
                      samples: jsonSamples(16, 30, { latency: true }) });
    await push(srv, { agent: facts('payments-a', 'payments', 'node-3', 8), samples: jsonSamples(8, 25) });
    await pushText(srv, { agent: 'search-a', service: 'search', hostname: 'node-4', num_cpu: 8, affinity: 8,
                          cpu_limit: 4, pid: 4242, runtime: 'go1.19.8' }, captured('captured-cpuload-p8'));
    await pushText(srv, { agent: 'search-b', service: 'search', hostname: 'node-5', num_cpu: 4, affinity: 4,
                          pid: 4343, runtime: 'go1.19.8' }, captured('captured-logheavy-p4'));
    const now = Date.now();
    const metrics = [];
    for (let i = 0; i < 20; i++)
        metrics.push({ ts_ms: now - (20 - i) * 1000, gomaxprocs: 8, goroutines: 300 + i * 3,
                       sched_latency_us: { p50: 15 + (i % 4), p99: 900 + (i % 7) * 40 },
                       gc_pause_us: { p99: 250 + i },
                       pool: { steal_threshold: 8, steal_scope: 'neighbors', queues: [3, 0, 1, 0, 2, 0, 0, 1] } });
    await push(srv, { agent: facts('ingest-a', 'ingest', 'zone-b-9', 8, cg(1.5)), samples: metrics });

    const steal = await seedSteal(srv);

    // Versions and events: an operator apply that the agent ACKs, an
    // override, an agent switched to auto (the next push makes a tuner
    // version when the rules want a change).
    assertJson(await srv.post('/api/v1/agents/orders-a/apply', {}), 201);
    assertJson(await srv.post('/api/v1/agents/orders-a/ack', { version: 1, status: 'applied' }));
    await push(srv, { agent: { ...facts('orders-a', 'orders', 'node-1', 16, cg(2.5)), applied_version: 1 },
                      samples: jsonSamples(3, 5, { latency: true }) });
    const ov = await srv.put('/api/v1/agents/payments-a/override', { pool: { workers: 6 } });
    assert.ok(ov.status === 200 || ov.status === 201, `override: ${ov.status} ${ov.text}`);
    assertJson(await srv.put('/api/v1/agents/search-b/mode', { mode: 'auto' }));
    assertJson(await srv.put('/api/v1/agents/ingest-a/mode', { mode: 'auto' }));
    await push(srv, { agent: facts('ingest-a', 'ingest', 'zone-b-9', 8, cg(1.5)), samples: [] });

    const agents = await allAgents(srv);
    return { agents, steal };
}

/* Every agent, following the list's cursor. */
async function allAgents(srv) {
    const out = [];
    let after = null;
    for (let i = 0; i < 1000; i++) {
        const j = assertJson(await srv.get(`/api/v1/agents?limit=1000${after ? `&after=${enc(after)}` : ''}`));
        out.push(...j.agents);
        if (!j.next)
            return out;
        after = j.next;
    }
    assert.fail('the agent list did not end');
}

/*
 * n agents (ids fleet-0000...), each registered by one JSON push of a
 * heartbeat and one sample, `parallel` pushes at a time (the server allows
 * 64 connections per client address; the browser needs some too).
 * Returns the time it took in ms.
 */
async function seedMany(srv, n, parallel = 16) {
    const t0 = Date.now();
    let next = 0;
    const services = ['api', 'billing', 'checkout', 'orders', 'search', 'ingest', 'auth', 'media'];
    async function worker() {
        for (;;) {
            const i = next++;
            if (i >= n)
                return;
            const procs = [2, 4, 8, 16][i % 4];
            const id = `fleet-${String(i).padStart(4, '0')}`;
            const limit = i % 3 === 0 ? null : [1.5, 2, 3.5, 6][i % 4];
            await push(srv, {
                agent: { id, service: services[i % services.length], hostname: `node-${Math.floor(i / 8)}`,
                         pid: 100 + i, runtime: 'go1.22.5', num_cpu: procs, affinity: procs,
                         cpu_limit: limit },
                samples: [jsonSample(procs, i, Date.now(), { latency: i % 2 === 0 })],
            });
        }
    }
    await Promise.all(Array.from({ length: parallel }, worker));
    return Date.now() - t0;
}

module.exports = { seedFleet, seedMany, allAgents, recommendation, hotPs, jsonSamples, push, pushText,
                   STEAL_SERVICE };

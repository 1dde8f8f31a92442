'use strict';
/*
 * GET /api/v1/agents/{id}/recommendation: DESIGN §5's rules seen through
 * HTTP — the worked quota examples on a 16-CPU agent, even-count sizing,
 * neighbour steal, the min_change guard and the effective policy.
 */
const assert = require('node:assert');
const { before, after } = require('node:test');
const {
    startServer, serverTest, assertJson, assertStatus, batch, sample, postTelemetry,
} = require('./lib');

let srv;
const test = serverTest(() => [srv]);

before(async () => {
    srv = await startServer();
});
after(async () => {
    if (srv)
        await srv.stop();
});

async function recommend(id) {
    return assertJson(await srv.get(`/api/v1/agents/${encodeURIComponent(id)}/recommendation`));
}

function reason(rec, rule) {
    return rec.reasons.find((r) => r.rule === rule);
}

function assertRecShape(rec, id) {
    assert.equal(rec.agent, id);
    assert.equal(typeof rec.current_version, 'number');
    assert.equal(typeof rec.current, 'object');
    assert.equal(typeof rec.config, 'object');
    assert.equal(typeof rec.changes, 'boolean');
    assert.ok(Array.isArray(rec.reasons), 'reasons is an array');
    assert.ok(Array.isArray(rec.held), 'held is an array');
    assert.equal(typeof rec.imbalance, 'object');
    assert.ok(rec.imbalance !== null);
    assert.equal(typeof rec.next_change_ms, 'number');
    assert.equal(typeof rec.policy, 'object');
    for (const r of rec.reasons) {
        assert.ok(['quota', 'even', 'neighbor_steal'].includes(r.rule), `unknown rule ${r.rule}`);
        assert.equal(typeof r.text, 'string');
        assert.ok(r.text.length > 10, 'reason text is a sentence');
        assert.equal(typeof r.numbers, 'object');
    }
}

/* One fresh agent per case so nothing carries over. */
let seq = 0;
async function agentWith(facts, samples = [], service = 'svc') {
    const id = `rule-${++seq}`;
    await postTelemetry(srv, { agent: { ...batch(id).agent, service, ...facts }, samples });
    return id;
}

/* ------------------------------------------------------- worked examples */

const ceilCases = [
    // [cpu_limit, gomaxprocs, rules expected to fire]
    [2.5, 3, ['quota']],
    [4.2, 4, ['quota', 'even']],
    [5.5, 6, ['quota']],
    [0.5, 2, ['quota']],
];

for (const [limit, want, rules] of ceilCases) {
    test(`quota (ceil, min 2) on 16 CPUs: cpu_limit ${limit} → gomaxprocs ${want}`, async () => {
        const id = await agentWith({ cpu_limit: limit });
        const rec = await recommend(id);
        assertRecShape(rec, id);
        assert.strictEqual(rec.config.gomaxprocs, want);
        assert.strictEqual(rec.current_version, 0);
        assert.deepStrictEqual(rec.current, {});
        assert.strictEqual(rec.changes, true);
        const q = reason(rec, 'quota');
        assert.ok(q, `a "quota" reason: ${JSON.stringify(rec.reasons)}`);
        assert.strictEqual(q.numbers.limit, limit);
        for (const r of rules)
            assert.ok(reason(rec, r), `a "${r}" reason for limit ${limit}: ${JSON.stringify(rec.reasons)}`);
        if (!rules.includes('even'))
            assert.ok(!reason(rec, 'even'), `no "even" reason for limit ${limit}`);
    });
}

test('quota: the 4.2 case reports the numbers of docs/api.md', async () => {
    const id = await agentWith({ cpu_limit: 4.2 });
    const rec = await recommend(id);
    const q = reason(rec, 'quota');
    assert.strictEqual(q.numbers.limit, 4.2);
    assert.strictEqual(q.numbers.rounding, 'ceil');
    assert.strictEqual(q.numbers.min_procs, 2);
    assert.strictEqual(q.numbers.gomaxprocs, 5);
    assert.strictEqual(q.numbers.cpus, 16, `numbers as in docs/api.md: ${JSON.stringify(q.numbers)}`);
    // reasons come in rule order
    assert.deepStrictEqual(rec.reasons.map((r) => r.rule).filter((r) => r !== 'neighbor_steal'), ['quota', 'even']);
});

test('even: the 4.2 case reports gomaxprocs 5 to 4, even_min 4 as in docs/api.md', async () => {
    const id = await agentWith({ cpu_limit: 4.2 });
    const e = reason(await recommend(id), 'even');
    assert.ok(e, 'an "even" reason');
    assert.strictEqual(e.numbers.even_min, 4);
    assert.deepStrictEqual([e.numbers.gomaxprocs_from, e.numbers.gomaxprocs_to], [5, 4], `numbers as in docs/api.md: ${JSON.stringify(e.numbers)}`);
    assert.deepStrictEqual([e.numbers.workers_from, e.numbers.workers_to], [5, 4]);
});

test('quota: workers follow gomaxprocs with workers_factor 1', async () => {
    const id = await agentWith({ cpu_limit: 2.5 });
    const rec = await recommend(id);
    assert.ok(rec.config.pool, `config has a pool: ${JSON.stringify(rec.config)}`);
    assert.strictEqual(rec.config.pool.workers, 3);
});

test('quota: no limit (absent or null) → the affinity count, 16', async () => {
    const absent = await agentWith({});
    const r1 = await recommend(absent);
    assert.strictEqual(r1.config.gomaxprocs, 16);
    assert.ok(reason(r1, 'quota'), 'a "quota" reason without a limit');
    const nul = await agentWith({ cpu_limit: null });
    const r2 = await recommend(nul);
    assert.strictEqual(r2.config.gomaxprocs, 16);
});

test('quota: never above the affinity count', async () => {
    const id = await agentWith({ cpu_limit: 12, num_cpu: 16, affinity: 6 });
    const rec = await recommend(id);
    assert.strictEqual(rec.config.gomaxprocs, 6);
});

test('quota: global policy rounding floor, min_procs 1 → 2.5 → 2, 0.5 → 1', async () => {
    const put = await srv.put('/api/v1/policy', { quota: { rounding: 'floor', min_procs: 1 } });
    assertStatus(put, 200);
    try {
        const a = await agentWith({ cpu_limit: 2.5 });
        const ra = await recommend(a);
        assert.strictEqual(ra.config.gomaxprocs, 2);
        const qa = reason(ra, 'quota');
        assert.strictEqual(qa.numbers.limit, 2.5);
        assert.strictEqual(qa.numbers.rounding, 'floor');
        assert.strictEqual(ra.policy.quota.rounding, 'floor');
        assert.strictEqual(ra.policy.quota.min_procs, 1);
        const b = await agentWith({ cpu_limit: 0.5 });
        const rb = await recommend(b);
        assert.strictEqual(rb.config.gomaxprocs, 1);
        assert.strictEqual(reason(rb, 'quota').numbers.limit, 0.5);
    } finally {
        assertStatus(await srv.put('/api/v1/policy', {}), 200);
    }
    // back to the defaults: the same agent shape gives 3 again
    const c = await agentWith({ cpu_limit: 2.5 });
    assert.strictEqual((await recommend(c)).config.gomaxprocs, 3);
});

test('quota: a service policy (floor, min 1) applies to that service only', async () => {
    assertStatus(await srv.put('/api/v1/services/floory/policy', { quota: { rounding: 'floor', min_procs: 1 } }), 200);
    const a = await agentWith({ cpu_limit: 2.5 }, [], 'floory');
    const ra = await recommend(a);
    assert.strictEqual(ra.config.gomaxprocs, 2);
    assert.strictEqual(ra.policy.quota.rounding, 'floor');
    // fields the service does not set come from the global policy
    assert.strictEqual(ra.policy.even.min, 4);
    assert.strictEqual(ra.policy.neighbor_steal.window, 30);
    const b = await agentWith({ cpu_limit: 0.5 }, [], 'floory');
    assert.strictEqual((await recommend(b)).config.gomaxprocs, 1);
    const other = await agentWith({ cpu_limit: 2.5 }, [], 'svc');
    const ro = await recommend(other);
    assert.strictEqual(ro.config.gomaxprocs, 3);
    assert.strictEqual(ro.policy.quota.rounding, 'ceil');
});

test('quota: rounding nearest on a service', async () => {
    assertStatus(await srv.put('/api/v1/services/nearest/policy', { quota: { rounding: 'nearest' } }), 200);
    const a = await agentWith({ cpu_limit: 2.4 }, [], 'nearest');
    assert.strictEqual((await recommend(a)).config.gomaxprocs, 2);
    const b = await agentWith({ cpu_limit: 2.6 }, [], 'nearest');
    assert.strictEqual((await recommend(b)).config.gomaxprocs, 3);
});

test('even: switched off per service, 4.2 stays at 5', async () => {
    assertStatus(await srv.put('/api/v1/services/oddok/policy', { even: { enabled: false } }), 200);
    const a = await agentWith({ cpu_limit: 4.2 }, [], 'oddok');
    const rec = await recommend(a);
    assert.strictEqual(rec.config.gomaxprocs, 5);
    assert.ok(!reason(rec, 'even'), 'no "even" reason when the rule is off');
});

/* --------------------------------------------------------- neighbor steal */

test('neighbor_steal: P1 full while P0/P2 are empty for 30 samples → steal threshold 4, hot_ps [1]', async () => {
    const samples = Array.from({ length: 30 }, (_, i) => sample([0, 20, 0, 0], { ts_ms: 1000 * (i + 1), global_runq: 0 }));
    const id = await agentWith({ cpu_limit: 4 }, samples);
    const rec = await recommend(id);
    assertRecShape(rec, id);
    assert.strictEqual(rec.config.gomaxprocs, 4);
    const ns = reason(rec, 'neighbor_steal');
    assert.ok(ns, `a "neighbor_steal" reason: ${JSON.stringify(rec.reasons)}`);
    assert.ok(Array.isArray(ns.hot_ps), 'hot_ps is an array');
    assert.ok(ns.hot_ps.includes(1), `hot_ps contains 1: ${JSON.stringify(ns.hot_ps)}`);
    for (const p of [0, 2, 3])
        assert.ok(!ns.hot_ps.includes(p), `P${p} has an empty queue and cannot be hot: ${JSON.stringify(ns.hot_ps)}`);
    assert.ok(rec.config.pool, `config has a pool: ${JSON.stringify(rec.config)}`);
    assert.strictEqual(rec.config.pool.steal_threshold, 4);
    assert.strictEqual(rec.imbalance.samples, 30);
    assert.strictEqual(rec.imbalance.hot_samples, 30);
    assert.strictEqual(rec.imbalance.local_mean, 5);
    assert.strictEqual(rec.imbalance.global_mean, 0);
    assert.strictEqual(rec.imbalance.global_max, 0);
    assert.strictEqual(rec.imbalance.max_mean, 4);
});

test('neighbor_steal: hot samples under the persistence share do not fire', async () => {
    // 10 of 30 hot (< half the window)
    const samples = Array.from({ length: 30 }, (_, i) =>
        sample(i < 10 ? [0, 20, 0, 0] : [1, 1, 1, 1], { ts_ms: 1000 * (i + 1) }));
    const id = await agentWith({ cpu_limit: 4 }, samples);
    const rec = await recommend(id);
    assert.ok(!reason(rec, 'neighbor_steal'), `no "neighbor_steal" reason: ${JSON.stringify(rec.reasons)}`);
    assert.strictEqual(rec.config.pool?.steal_threshold, undefined);
    assert.strictEqual(rec.imbalance.samples, 30);
    assert.strictEqual(rec.imbalance.hot_samples, 10);
});

test('neighbor_steal: the threshold is halved from the policy threshold', async () => {
    assertStatus(await srv.put('/api/v1/services/steal12/policy', { neighbor_steal: { threshold: 12 } }), 200);
    const samples = Array.from({ length: 30 }, (_, i) => sample([0, 0, 30, 0], { ts_ms: 1000 * (i + 1) }));
    const id = await agentWith({ cpu_limit: 4 }, samples, 'steal12');
    const rec = await recommend(id);
    const ns = reason(rec, 'neighbor_steal');
    assert.ok(ns, 'a "neighbor_steal" reason');
    assert.ok(ns.hot_ps.includes(2));
    assert.strictEqual(rec.config.pool.steal_threshold, 6);
});

test('neighbor_steal: with far more Ps than the quota, the quota change comes first', async () => {
    const q = Array.from({ length: 16 }, (_, i) => (i === 3 || i === 7 ? 20 : 0));
    const samples = Array.from({ length: 30 }, (_, i) => sample(q, { ts_ms: 1000 * (i + 1) }));
    const id = await agentWith({ cpu_limit: 2 }, samples);
    const rec = await recommend(id);
    assert.strictEqual(rec.config.gomaxprocs, 2);
    assert.strictEqual(reason(rec, 'quota').numbers.limit, 2);
    const ns = reason(rec, 'neighbor_steal');
    assert.ok(ns, `a "neighbor_steal" reason is still reported: ${JSON.stringify(rec.reasons)}`);
    assert.ok(ns.hot_ps.includes(3) && ns.hot_ps.includes(7), `hot_ps has 3 and 7: ${JSON.stringify(ns.hot_ps)}`);
    assert.strictEqual(rec.config.pool?.steal_threshold, undefined,
        `no steal_threshold while the quota change is pending: ${JSON.stringify(rec.config)}`);
    assert.match(ns.text, /quota|gomaxprocs/i, `the text says the quota change comes first: ${ns.text}`);
});

/* ------------------------------------------------------------------ guards */

test('guards: a change under min_change_pct is held, not recommended', async () => {
    assertStatus(await srv.put('/api/v1/services/held/policy',
        { even: { enabled: false }, guards: { min_interval_s: 0 } }), 200);
    const id = await agentWith({ cpu_limit: 16 }, [], 'held');
    const r0 = await recommend(id);
    assert.strictEqual(r0.config.gomaxprocs, 16);
    const ap = await srv.post(`/api/v1/agents/${id}/apply`, undefined);
    assertStatus(ap, 201);
    assert.strictEqual(ap.json.config.gomaxprocs, 16);

    await postTelemetry(srv, { agent: { ...batch(id).agent, service: 'held', cpu_limit: 15 }, samples: [] });
    const rec = await recommend(id);
    assert.strictEqual(rec.current_version, 1);
    assert.strictEqual(rec.current.gomaxprocs, 16);
    assert.strictEqual(rec.config.gomaxprocs, 16, 'the held change is not in the config');
    const h = rec.held.find((x) => x.field === 'gomaxprocs');
    assert.deepStrictEqual(h, { field: 'gomaxprocs', current: 16, wanted: 15, guard: 'min_change' });
    assert.strictEqual(rec.changes, false);
    const again = await srv.post(`/api/v1/agents/${id}/apply`, undefined);
    assertStatus(again, 409);
    assert.equal(again.json.error.code, 'no_change');
});

test('guards: next_change_ms is the last change plus min_interval_s', async () => {
    const id = await agentWith({ cpu_limit: 2.5 });
    const r0 = await recommend(id);
    assert.ok(r0.next_change_ms <= Date.now() + 1000, 'a never-changed agent may change now');
    const ap = await srv.post(`/api/v1/agents/${id}/apply`, undefined);
    assertStatus(ap, 201);
    const rec = await recommend(id);
    assert.ok(Math.abs(rec.next_change_ms - (ap.json.created_ms + 60000)) <= 1000,
        `next_change_ms ${rec.next_change_ms} ≈ created_ms ${ap.json.created_ms} + 60 s`);
    assert.strictEqual(rec.changes, false);
    assert.deepStrictEqual(rec.current, ap.json.config);
});

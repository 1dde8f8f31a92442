'use strict';
/*
 * POST /api/v1/telemetry (JSON and text/plain) and GET .../samples:
 * what is accepted, what is stored, and every way a batch is refused —
 * each refusal checked to have changed nothing.
 */
const assert = require('node:assert');
const { before, after } = require('node:test');
const {
    startServer, serverTest, assertError, assertJson, assertStatus, listOf,
    batch, sample, postTelemetry, snapshot, assertUnchanged,
} = require('./lib');

let srv;
let small;      // a second server with --max-body 2048
const test = serverTest(() => [srv, small]);

before(async () => {
    srv = await startServer();
});
after(async () => {
    if (srv)
        await srv.stop();
    if (small)
        await small.stop();
});

const MiB = 1024 * 1024;

async function samplesOf(s, id, query = '') {
    const res = await s.get(`/api/v1/agents/${encodeURIComponent(id)}/samples${query}`);
    return listOf(assertJson(res), 'samples');
}

/* A valid JSON body of exactly n bytes: whitespace before the last brace. */
function paddedBody(id, n) {
    const core = JSON.stringify(batch(id, {}, [sample([0, 1])]));
    assert.ok(core.length < n);
    return core.slice(0, -1) + ' '.repeat(n - core.length) + '}';
}

function chunksOf(str, size) {
    const buf = Buffer.from(str);
    const out = [];
    for (let i = 0; i < buf.length; i += size)
        out.push(buf.subarray(i, i + size));
    return out;
}

/* ------------------------------------------------------------- JSON batch */

test('JSON batch: first contact creates the agent, later ones do not', async () => {
    const body = batch('tele-1', { cpu_limit: 2.5, cpu_limit_source: 'cgroup v2 /a (cpu.max=250000 100000)', parent_tighter: false },
        [sample([0, 3, 0, 1], { ts_ms: 1000 }), sample([1, 0, 0, 0], { ts_ms: 2000 })]);
    const r1 = await postTelemetry(srv, body);
    assert.equal(r1.agent, 'tele-1');
    assert.strictEqual(r1.created, true);
    assert.strictEqual(r1.accepted, 2);
    assert.strictEqual(r1.config_version, 0);

    const r2 = await postTelemetry(srv, batch('tele-1', { cpu_limit: 2.5 }, [sample([2, 2, 2, 2], { ts_ms: 3000 })]));
    assert.strictEqual(r2.created, false);
    assert.strictEqual(r2.accepted, 1);
    assert.strictEqual(r2.config_version, 0);
});

test('JSON batch: the agent appears in the list and in detail with its CPU facts', async () => {
    const list = listOf(assertJson(await srv.get('/api/v1/agents')), 'agents');
    const inList = list.find((a) => a.id === 'tele-1');
    assert.ok(inList, 'tele-1 is in the agent list');

    const a = assertJson(await srv.get('/api/v1/agents/tele-1'));
    assert.equal(a.id, 'tele-1');
    assert.equal(a.service, 'svc');
    assert.equal(a.hostname, 'host-1');
    assert.strictEqual(a.pid, 4242);
    assert.equal(a.runtime, 'go1.22.5');
    assert.deepStrictEqual(a.cpu, {
        num_cpu: 16, affinity: 16, limit: 2.5,
        limit_source: 'cgroup v2 /a (cpu.max=250000 100000)', parent_tighter: false, throttling: null,
    });
    assert.deepStrictEqual(inList.cpu, a.cpu);
    assert.equal(a.mode, 'recommend');
    assert.strictEqual(a.config_version, 0);
    assert.strictEqual(a.last_change_ms, null);
    assert.strictEqual(a.samples_total, 3);
    assert.deepStrictEqual(a.override, {});
    assert.equal(typeof a.first_seen_ms, 'number');
    assert.ok(a.last_seen_ms >= a.first_seen_ms);
    assert.ok(Math.abs(a.last_seen_ms - Date.now()) < 60000, 'last_seen_ms is epoch milliseconds');
    assert.ok(a.latest, 'latest is set after samples');
    assert.strictEqual(a.latest.ts_ms, 3000);
    assert.strictEqual(a.latest.gomaxprocs, 4);
    assert.strictEqual(a.latest.local_runq_total, 8);
    // GET /agents/{id} adds the current config version (version 0: none yet).
    assert.ok(a.config, 'detail carries "config"');
    assert.strictEqual(a.config.version, 0);
    assert.strictEqual(a.config.source, null);
    assert.strictEqual(a.config.created_ms, null);
    assert.deepStrictEqual(a.config.config, {});
    assert.deepStrictEqual(a.config.reasons, []);
});

test('JSON batch: a heartbeat (no samples, no limit) leaves latest null and limit null', async () => {
    const r = await postTelemetry(srv, batch('tele-hb', {}, []));
    assert.strictEqual(r.created, true);
    assert.strictEqual(r.accepted, 0);
    const a = assertJson(await srv.get('/api/v1/agents/tele-hb'));
    assert.strictEqual(a.latest, null);
    assert.strictEqual(a.samples_total, 0);
    assert.strictEqual(a.cpu.limit, null);
    assert.deepStrictEqual(await samplesOf(srv, 'tele-hb'), []);
    // cpu_limit: null means unlimited too
    await postTelemetry(srv, batch('tele-hb', { cpu_limit: null }, []));
    const b = assertJson(await srv.get('/api/v1/agents/tele-hb'));
    assert.strictEqual(b.cpu.limit, null);
    assert.ok(b.last_seen_ms >= a.last_seen_ms);
});

test('JSON batch: a later batch updates the reported facts', async () => {
    await postTelemetry(srv, batch('tele-facts', { cpu_limit: 2, hostname: 'h-a', pid: 10 }, []));
    await postTelemetry(srv, batch('tele-facts', { cpu_limit: 6, hostname: 'h-b', pid: 11, num_cpu: 32, affinity: 8 }, []));
    const a = assertJson(await srv.get('/api/v1/agents/tele-facts'));
    assert.strictEqual(a.cpu.limit, 6);
    assert.strictEqual(a.cpu.num_cpu, 32);
    assert.strictEqual(a.cpu.affinity, 8);
    assert.equal(a.hostname, 'h-b');
    assert.strictEqual(a.pid, 11);
});

test('content type application/json; charset=utf-8 is accepted', async () => {
    const res = await srv.post('/api/v1/telemetry', batch('tele-cs', {}, [sample([1])]),
        { headers: { 'Content-Type': 'application/json; charset=utf-8' } });
    const j = assertJson(res);
    assert.strictEqual(j.accepted, 1);
});

/* ---------------------------------------------------------------- samples */

test('samples: oldest first, local_runq and optional fields intact, recv_ms added', async () => {
    const s1 = { ts_ms: 1733300000000, gomaxprocs: 4, idle_procs: 1, threads: 9, spinning_threads: 0,
                 idle_threads: 3, global_runq: 0, local_runq: [0, 3, 0, 1], goroutines: 120,
                 sched_latency_us: { p50: 12.5, p99: 480 } };
    const s2 = { ts_ms: 1733300001000, gomaxprocs: 4, idle_procs: 0, threads: 10, spinning_threads: 1,
                 idle_threads: 2, global_runq: 7, local_runq: [5, 0, 255, 2], goroutines: 130,
                 sched_latency_us: { p50: 20, p99: 900.5 } };
    const s3 = { ts_ms: 1733300002000, local_runq: [0, 0, 0, 9] };
    const before = Date.now();
    await postTelemetry(srv, batch('samp-1', {}, [s1, s2]));
    await postTelemetry(srv, batch('samp-1', {}, [s3]));
    const got = await samplesOf(srv, 'samp-1');
    assert.equal(got.length, 3);
    assert.deepStrictEqual(got.map((s) => s.ts_ms), [s1.ts_ms, s2.ts_ms, s3.ts_ms]);
    for (const [i, want] of [s1, s2, s3].entries()) {
        for (const [k, v] of Object.entries(want))
            assert.deepStrictEqual(got[i][k], v, `samples[${i}].${k}`);
        assert.equal(typeof got[i].recv_ms, 'number', `samples[${i}].recv_ms`);
        assert.ok(got[i].recv_ms >= before - 5000 && got[i].recv_ms <= Date.now() + 5000,
            `samples[${i}].recv_ms is server time`);
    }
    // latest follows the newest sample
    const a = assertJson(await srv.get('/api/v1/agents/samp-1'));
    assert.strictEqual(a.latest.ts_ms, s3.ts_ms);
    assert.strictEqual(a.latest.local_runq_total, 9);
    assert.strictEqual(a.samples_total, 3);
});

test('samples: a 1024-P sample keeps all 1024 queues', async () => {
    const q = Array.from({ length: 1024 }, (_, i) => i % 7);
    const r = await postTelemetry(srv, batch('samp-wide', {}, [sample(q, { ts_ms: 5 })]));
    assert.strictEqual(r.accepted, 1);
    const got = await samplesOf(srv, 'samp-wide');
    assert.equal(got.length, 1);
    assert.deepStrictEqual(got[0].local_runq, q);
    assert.strictEqual(got[0].gomaxprocs, 1024);
});

test('samples: limit picks the newest N (default 30), still oldest first', async () => {
    const all = Array.from({ length: 40 }, (_, i) => sample([i, 0], { ts_ms: 10000 + i }));
    await postTelemetry(srv, batch('samp-lim', {}, all.slice(0, 25)));
    await postTelemetry(srv, batch('samp-lim', {}, all.slice(25)));
    const def = await samplesOf(srv, 'samp-lim');
    assert.deepStrictEqual(def.map((s) => s.ts_ms), all.slice(10).map((s) => s.ts_ms));
    const five = await samplesOf(srv, 'samp-lim', '?limit=5');
    assert.deepStrictEqual(five.map((s) => s.ts_ms), all.slice(35).map((s) => s.ts_ms));
    assert.deepStrictEqual(five.map((s) => s.local_runq), all.slice(35).map((s) => s.local_runq));
    const one = await samplesOf(srv, 'samp-lim', '?limit=1');
    assert.deepStrictEqual(one.map((s) => s.ts_ms), [10039]);
    const max = await samplesOf(srv, 'samp-lim', '?limit=128');
    assert.deepStrictEqual(max.map((s) => s.ts_ms), all.map((s) => s.ts_ms));
});

test('samples: bad limit → 400 bad_request, field "limit"', async () => {
    for (const v of ['0', '-1', 'abc', '129', '100000', '1.5', '5x'])
        assertError(await srv.get(`/api/v1/agents/samp-lim/samples?limit=${v}`), 400, 'bad_request', 'limit');
});

/* ------------------------------------------------------------- validation */

const LONG_ID = 'a'.repeat(129);
const EXISTING = 'val-1';
const NEW = 'val-new';

test('validation: a 128-character id is accepted', async () => {
    const id = 'b'.repeat(128);
    const r = await postTelemetry(srv, batch(id, {}, []));
    assert.equal(r.agent, id);
    assertJson(await srv.get(`/api/v1/agents/${id}`));
    const r2 = await postTelemetry(srv, batch('Ab.9_-x', {}, []));
    assert.strictEqual(r2.created, true);
});

const invalid = [
    ['missing agent.id', { agent: { service: 'svc' }, samples: [] }, 'agent.id'],
    ['missing agent.service', { agent: { id: NEW }, samples: [] }, 'agent.service'],
    ['missing agent.service on an existing agent', { agent: { id: EXISTING }, samples: [] }, 'agent.service'],
    ['missing agent', { samples: [] }, 'agent'],
    ['agent.id with a slash', batch('bad/id'), 'agent.id'],
    ['agent.id with a space', batch('bad id'), 'agent.id'],
    ['agent.id with a non-ASCII letter', batch('caf\u00e9'), 'agent.id'],
    ['empty agent.id', batch(''), 'agent.id'],
    ['129-character agent.id', batch(LONG_ID), 'agent.id'],
    ['agent.id a number', { agent: { ...batch('x').agent, id: 5 }, samples: [] }, 'agent.id'],
    ['agent.service with bad characters', batch(NEW, { service: 'a:b' }), 'agent.service'],
    ['129-character agent.service', batch(NEW, { service: 's'.repeat(129) }), 'agent.service'],
    ['agent.num_cpu a string', batch(EXISTING, { num_cpu: '16' }), 'agent.num_cpu'],
    ['agent.cpu_limit a string', batch(EXISTING, { cpu_limit: '2.5' }), 'agent.cpu_limit'],
    ['agent.cpu_limit negative', batch(EXISTING, { cpu_limit: -1 }), 'agent.cpu_limit'],
    ['gomaxprocs differs from len(local_runq) in samples[1]',
        batch(EXISTING, {}, [sample([0, 1, 2, 3]), { gomaxprocs: 4, local_runq: [0, 1, 2] }]),
        /^samples\[1\]\.(local_runq|gomaxprocs)$/],
    ['negative local queue', batch(EXISTING, {}, [sample([0, -1, 2, 3])]), /^samples\[0\]\.local_runq(\[1\])?$/],
    ['fractional local queue', batch(EXISTING, {}, [sample([0, 1.5])]), /^samples\[0\]\.local_runq(\[1\])?$/],
    ['string local queue', batch(EXISTING, {}, [sample([0, '1'])]), /^samples\[0\]\.local_runq(\[1\])?$/],
    ['empty local_runq', batch(EXISTING, {}, [{ local_runq: [] }]), /^samples\[0\]\.local_runq$/],
    ['missing local_runq and gomaxprocs', batch(EXISTING, {}, [{ ts_ms: 1, goroutines: 2 }]), 'samples[0].local_runq'],
    ['gc_pause_us not an object', batch(EXISTING, {}, [{ gomaxprocs: 2, gc_pause_us: 5 }]), 'samples[0].gc_pause_us'],
    ['gc_pause_us.p99 negative', batch(EXISTING, {}, [{ gomaxprocs: 2, gc_pause_us: { p99: -1 } }]), 'samples[0].gc_pause_us.p99'],
    ['unknown gc_pause_us key', batch(EXISTING, {}, [{ gomaxprocs: 2, gc_pause_us: { p50: 1 } }]), 'samples[0].gc_pause_us.p50'],
    ['pool without queues', batch(EXISTING, {}, [{ gomaxprocs: 2, pool: { steal_threshold: 4 } }]), 'samples[0].pool.queues'],
    ['pool with empty queues', batch(EXISTING, {}, [{ gomaxprocs: 2, pool: { queues: [] } }]), 'samples[0].pool.queues'],
    ['pool queue negative', batch(EXISTING, {}, [{ gomaxprocs: 2, pool: { queues: [1, -1] } }]), /^samples\[0\]\.pool\.queues(\[1\])?$/],
    ['pool with 1025 queues', batch(EXISTING, {}, [{ gomaxprocs: 2, pool: { queues: new Array(1025).fill(0) } }]), 'samples[0].pool.queues'],
    ['pool steal_threshold 0', batch(EXISTING, {}, [{ gomaxprocs: 2, pool: { steal_threshold: 0, queues: [1] } }]), 'samples[0].pool.steal_threshold'],
    ['pool steal_threshold 257', batch(EXISTING, {}, [{ gomaxprocs: 2, pool: { steal_threshold: 257, queues: [1] } }]), 'samples[0].pool.steal_threshold'],
    ['pool steal_scope unknown', batch(EXISTING, {}, [{ gomaxprocs: 2, pool: { steal_scope: 'some', queues: [1] } }]), /^samples\[0\]\.pool(\.steal_scope)?$/],
    ['unknown pool key', batch(EXISTING, {}, [{ gomaxprocs: 2, pool: { workers: 2, queues: [1] } }]), 'samples[0].pool.workers'],
    ['throttling not an object', batch(EXISTING, { throttling: 3 }), 'agent.throttling'],
    ['throttling without periods', batch(EXISTING, { throttling: { throttled_periods: 1, throttled_us: 5 } }), /^agent\.throttling(\.periods)?$/],
    ['throttling negative', batch(EXISTING, { throttling: { periods: 10, throttled_periods: 1, throttled_us: -5 } }), 'agent.throttling.throttled_us'],
    ['throttled_periods above periods', batch(EXISTING, { throttling: { periods: 10, throttled_periods: 11, throttled_us: 5 } }), 'agent.throttling.throttled_periods'],
    ['unknown throttling key', batch(EXISTING, { throttling: { periods: 10, throttled_periods: 1, throttled_us: 5, nr: 1 } }), 'agent.throttling.nr'],
    ['dropped_samples negative', batch(EXISTING, { dropped_samples: -1 }), 'agent.dropped_samples'],
    ['local_runq not an array', batch(EXISTING, {}, [{ local_runq: 4 }]), 'samples[0].local_runq'],
    ['gomaxprocs a string', batch(EXISTING, {}, [{ gomaxprocs: '4', local_runq: [0, 0, 0, 0] }]), 'samples[0].gomaxprocs'],
    ['negative global_runq', batch(EXISTING, {}, [sample([0], { global_runq: -3 })]), 'samples[0].global_runq'],
    ['unknown top-level key', { ...batch(EXISTING), extra: 1 }, 'extra'],
    ['unknown agent key', batch(EXISTING, { colour: 'red' }), 'agent.colour'],
    ['unknown sample key', batch(EXISTING, {}, [{ gomaxproc: 1, local_runq: [0] }]), 'samples[0].gomaxproc'],
    ['samples not an array', { ...batch(EXISTING), samples: {} }, 'samples'],
    ['a sample that is not an object', batch(EXISTING, {}, [sample([1]), 5]), 'samples[1]'],
    ['a new agent whose second sample is bad', batch(NEW, {}, [sample([1]), sample([-1])]), /^samples\[1\]\.local_runq(\[0\])?$/],
];

test('runtime/metrics samples: no local_runq, with GC pause and the worker pool', async () => {
    const body = batch('lib-1', { runtime: 'go1.19.8' }, [
        { ts_ms: 1000, gomaxprocs: 4, goroutines: 12, sched_latency_us: { p50: 3.5, p99: 120 },
          gc_pause_us: { p99: 310.5 },
          pool: { steal_threshold: 3, steal_scope: 'all', queues: [5, 0, 7] } },
        { ts_ms: 2000, gomaxprocs: 2 },
    ]);
    assert.strictEqual((await postTelemetry(srv, body)).accepted, 2);
    const got = await samplesOf(srv, 'lib-1');
    assert.equal(got.length, 2);
    const { recv_ms: r0, ...s0 } = got[0];
    assert.ok(r0 > 0);
    assert.deepStrictEqual(s0, { ts_ms: 1000, gomaxprocs: 4, goroutines: 12,
        sched_latency_us: { p50: 3.5, p99: 120 }, gc_pause_us: { p99: 310.5 },
        pool: { queues: [5, 0, 7], steal_threshold: 3, steal_scope: 'all' } });
    assert.strictEqual(got[1].local_runq, undefined);
    assert.strictEqual(got[1].pool, undefined);
    const agent = assertJson(await srv.get('/api/v1/agents/lib-1'));
    assert.strictEqual(agent.latest.gomaxprocs, 2);
    assert.strictEqual(agent.latest.nprocs, 0);
    assert.strictEqual(agent.latest.local_runq_total, null);
    // The list keeps the pool small: workers and the total queued.
    await postTelemetry(srv, batch('lib-1', {}, [got[0]].map(({ recv_ms: _, ...x }) => x)));
    const again = assertJson(await srv.get('/api/v1/agents/lib-1'));
    assert.deepStrictEqual(again.latest.pool, { steal_threshold: 3, steal_scope: 'all', workers: 3, queued: 12 });
    // The rules still answer: the quota rule needs no queues.
    const rec = assertJson(await srv.get('/api/v1/agents/lib-1/recommendation'));
    assert.ok(Array.isArray(rec.reasons));
});

test('throttling counters: shown with the share since the previous report; drops kept', async () => {
    const id = 'thr-1';
    await postTelemetry(srv, batch(id, { cpu_limit: 1.5 }));
    let a = assertJson(await srv.get(`/api/v1/agents/${id}`));
    assert.strictEqual(a.cpu.throttling, null);
    assert.strictEqual(a.dropped_samples, 0);

    await postTelemetry(srv, batch(id, { cpu_limit: 1.5, dropped_samples: 7,
        throttling: { periods: 1000, throttled_periods: 100, throttled_us: 2000000 } }));
    a = assertJson(await srv.get(`/api/v1/agents/${id}`));
    assert.strictEqual(a.cpu.throttling.periods, 1000);
    assert.strictEqual(a.cpu.throttling.throttled_periods, 100);
    assert.strictEqual(a.cpu.throttling.throttled_us, 2000000);
    assert.ok(a.cpu.throttling.reported_ms > 0);
    assert.strictEqual(a.cpu.throttling.recent, null);
    assert.strictEqual(a.dropped_samples, 7);

    await postTelemetry(srv, batch(id, { cpu_limit: 1.5,
        throttling: { periods: 1200, throttled_periods: 150, throttled_us: 2500000 } }));
    a = assertJson(await srv.get(`/api/v1/agents/${id}`));
    const r = a.cpu.throttling.recent;
    assert.strictEqual(r.periods, 200);
    assert.strictEqual(r.throttled_periods, 50);
    assert.strictEqual(r.throttled_us, 500000);
    assert.strictEqual(r.throttled_pct, 25);
    assert.ok(r.over_ms >= 0);
    assert.strictEqual(a.dropped_samples, 7, 'a push that does not say keeps the count');

    // A push without throttling keeps the last report; counters that went
    // backwards (a new cgroup) start over.
    await postTelemetry(srv, batch(id, { cpu_limit: 1.5 }));
    a = assertJson(await srv.get(`/api/v1/agents/${id}`));
    assert.strictEqual(a.cpu.throttling.periods, 1200);
    assert.strictEqual(a.cpu.throttling.recent.throttled_pct, 25);
    await postTelemetry(srv, batch(id, { cpu_limit: 1.5,
        throttling: { periods: 10, throttled_periods: 0, throttled_us: 0 } }));
    a = assertJson(await srv.get(`/api/v1/agents/${id}`));
    assert.strictEqual(a.cpu.throttling.periods, 10);
    assert.strictEqual(a.cpu.throttling.recent, null);
});

test('validation: bad values → 422 invalid with the field, nothing changed', async () => {
    await postTelemetry(srv, batch(EXISTING, { cpu_limit: 3 }, [sample([1, 2], { ts_ms: 1 })]));
    const ids = [EXISTING, NEW];
    const snap = await snapshot(srv, ids);
    for (const [what, body, field] of invalid) {
        const res = await srv.post('/api/v1/telemetry', body);
        try {
            assertError(res, 422, 'invalid', field);
        } catch (e) {
            e.message = `${what}: ${e.message}`;
            throw e;
        }
        await assertUnchanged(srv, snap, ids, what);
    }
});

test('validation: 1025 Ps → 422 or 413, nothing changed', async () => {
    const ids = [EXISTING];
    const snap = await snapshot(srv, ids);
    const q = Array.from({ length: 1025 }, () => 0);
    for (const body of [batch(EXISTING, {}, [sample(q)]), batch(EXISTING, {}, [{ local_runq: q }])]) {
        const res = await srv.post('/api/v1/telemetry', body);
        if (res.status === 422)
            assertError(res, 422, 'invalid', /^samples\[0\]\.(local_runq|gomaxprocs)$/);
        else
            assertError(res, 413, 'too_large');
        await assertUnchanged(srv, snap, ids);
    }
});

const malformed = [
    ['unterminated object', '{"agent":{"id":"val-1","service":"svc"},"samples":[]'],
    ['duplicate key in agent', '{"agent":{"id":"val-1","service":"svc","id":"val-2"},"samples":[]}'],
    ['duplicate top-level key', '{"agent":{"id":"val-1","service":"svc"},"samples":[],"samples":[]}'],
    ['trailing garbage', '{"agent":{"id":"val-1","service":"svc"},"samples":[]} x'],
    ['two objects', '{"agent":{"id":"val-1","service":"svc"},"samples":[]}{"agent":{"id":"val-1","service":"svc"}}'],
    ['not JSON', 'hello there'],
    ['top-level array', '[{"agent":{"id":"val-1","service":"svc"},"samples":[]}]'],
    ['top-level string', '"val-1"'],
    ['top-level number', '42'],
    ['top-level null', 'null'],
    ['empty body', ''],
    ['NaN', '{"agent":{"id":"val-1","service":"svc","cpu_limit":NaN},"samples":[]}'],
    ['single quotes', "{'agent':{'id':'val-1','service':'svc'},'samples':[]}"],
    ['invalid UTF-8', Buffer.concat([Buffer.from('{"agent":{"id":"val-1","service":"s'), Buffer.from([0xff, 0xfe]),
        Buffer.from('"},"samples":[]}')])],
];

test('malformed JSON → 400 malformed_json (field null), nothing changed', async () => {
    const ids = [EXISTING, 'val-2'];
    const snap = await snapshot(srv, ids);
    for (const [what, body] of malformed) {
        const res = await srv.req('POST', '/api/v1/telemetry', { body, headers: { 'Content-Type': 'application/json' } });
        try {
            assertError(res, 400, 'malformed_json', null);
        } catch (e) {
            e.message = `${what}: ${e.message}`;
            throw e;
        }
        await assertUnchanged(srv, snap, ids, what);
    }
});

test('a content type the route does not take → 415, nothing changed', async () => {
    const ids = [EXISTING];
    const snap = await snapshot(srv, ids);
    const body = JSON.stringify(batch(EXISTING, {}, [sample([1, 1])]));
    for (const ct of ['application/xml', 'text/html', 'application/x-www-form-urlencoded', 'image/png']) {
        const res = await srv.req('POST', '/api/v1/telemetry', { body, headers: { 'Content-Type': ct } });
        try {
            assertError(res, 415, 'unsupported_media_type');
        } catch (e) {
            e.message = `${ct}: ${e.message}`;
            throw e;
        }
        await assertUnchanged(srv, snap, ids, ct);
    }
});

/* ------------------------------------------------------------------ sizes */

test('size: a body of exactly 1 MiB is accepted', async () => {
    const body = paddedBody('size-ok', MiB);
    assert.equal(Buffer.byteLength(body), MiB);
    const res = await srv.req('POST', '/api/v1/telemetry', { body, headers: { 'Content-Type': 'application/json' } });
    const j = assertJson(res);
    assert.strictEqual(j.accepted, 1);
});

test('size: over 1 MiB with Content-Length → 413 too_large, nothing changed', async () => {
    const ids = ['size-cl'];
    const snap = await snapshot(srv, ids);
    const body = paddedBody('size-cl', MiB + 1);
    const res = await srv.sock({ path: '/api/v1/telemetry', headers: { 'Content-Type': 'application/json' }, body });
    assertError(res, 413, 'too_large');
    await assertUnchanged(srv, snap, ids);
    // the same with Expect: 100-continue, as curl sends large bodies
    const res2 = await srv.raw({
        method: 'POST', path: '/api/v1/telemetry', expectContinue: true,
        headers: { 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(body)) },
        chunks: chunksOf(body, 64 * 1024),
    });
    assertError(res2, 413, 'too_large');
    await assertUnchanged(srv, snap, ids);
    // the server still answers afterwards
    assertStatus(await srv.get('/healthz'), 200);
});

test('size: a chunked body is accepted when small and 413 when over 1 MiB', async () => {
    const okBody = JSON.stringify(batch('size-chunk-ok', {}, [sample([4, 4])]));
    const ok = await srv.raw({
        method: 'POST', path: '/api/v1/telemetry',
        headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' },
        chunks: chunksOf(okBody, 10),
    });
    assertStatus(ok, 200);
    assert.strictEqual(ok.json.accepted, 1);

    const exact = paddedBody('size-chunk-exact', MiB);
    const ex = await srv.sock({ path: '/api/v1/telemetry', headers: { 'Content-Type': 'application/json' },
        body: exact, chunked: true, chunkSize: 60000 });
    assertStatus(ex, 200, 'chunked body of exactly 1 MiB');

    const ids = ['size-chunk'];
    const snap = await snapshot(srv, ids);
    const body = paddedBody('size-chunk', MiB + 4096);
    const res = await srv.sock({ path: '/api/v1/telemetry', headers: { 'Content-Type': 'application/json' },
        body, chunked: true, chunkSize: 60000 });
    assertError(res, 413, 'too_large');
    await assertUnchanged(srv, snap, ids);
    assertStatus(await srv.get('/healthz'), 200);
});

test('size: 1000 samples are accepted, 1001 → 413 too_large', async () => {
    const thousand = Array.from({ length: 1000 }, (_, i) => sample([i % 3], { ts_ms: i }));
    const r = await postTelemetry(srv, batch('size-1000', {}, thousand));
    assert.strictEqual(r.accepted, 1000);

    const ids = ['size-1001', 'size-1000'];
    const snap = await snapshot(srv, ids);
    const res = await srv.post('/api/v1/telemetry', batch('size-1001', {}, [...thousand, sample([1])]));
    assertError(res, 413, 'too_large');
    const res2 = await srv.post('/api/v1/telemetry', batch('size-1000', {}, [...thousand, sample([1])]));
    assertError(res2, 413, 'too_large');
    await assertUnchanged(srv, snap, ids);
});

test('size: --max-body sets the cap', async () => {
    small = await startServer({ args: ['--max-body', '2048'] });
    const ok = await small.req('POST', '/api/v1/telemetry',
        { body: paddedBody('mb-ok', 2048), headers: { 'Content-Type': 'application/json' } });
    assertStatus(ok, 200, 'a 2048-byte body under --max-body 2048');
    const big = await small.req('POST', '/api/v1/telemetry',
        { body: paddedBody('mb-big', 2049), headers: { 'Content-Type': 'application/json' } });
    assertError(big, 413, 'too_large');
    assertError(await small.get('/api/v1/agents/mb-big'), 404, 'not_found');
    const textBig = await small.req('POST', '/api/v1/telemetry?agent=mb-text&service=svc',
        { body: 'x'.repeat(3000), headers: { 'Content-Type': 'text/plain' } });
    assertError(textBig, 413, 'too_large');
    assertError(await small.get('/api/v1/agents/mb-text'), 404, 'not_found');
    const st = await small.stop();
    small = undefined;
    assert.equal(st.forced, false, 'SIGTERM stops the server');
});

/* ------------------------------------------------------------- text/plain */

const TRACE = [
    'app starting up',
    'SCHED 0ms: gomaxprocs=4 idleprocs=4 threads=5 spinningthreads=0 idlethreads=2 runqueue=0 [0 0 0 0]',
    'SCHED 1004ms: gomaxprocs=4 idleprocs=2 threads=12 spinningthreads=1 idlethreads=5 runqueue=3 [0 9 0 1]',
    'handled request id=1 in 3ms',
    'SCHED 2008ms: gomaxprocs=4 idleprocs=1 threads=12 spinningthreads=0 needspinning=0 idlethreads=5 runqueue=2 [1 0 7 0]',
    '2024/12/04 10:00:02 another application line',
    'SCHED 3012ms: gomaxprocs=4 idleprocs=0 threads=13 spinningthreads=0 needspinning=1 idlethreads=4 runqueue=0 [ 2 0 0 5 ] schedticks=[ 101 99 87 120 ]',
    'SCHED 4016ms: gomaxprocs=4 idlepr',
].join('\n');

function postText(s, query, body, ct = 'text/plain') {
    return s.req('POST', `/api/v1/telemetry${query}`, { body, headers: { 'Content-Type': ct } });
}

test('text/plain: schedtrace lines become samples; app lines counted; a cut line rejected', async () => {
    const res = await postText(srv, '?agent=text-1&service=orders&num_cpu=8&affinity=6&cpu_limit=2.5&hostname=node-3&pid=77&runtime=go1.26.0', TRACE);
    const j = assertJson(res);
    assert.equal(j.agent, 'text-1');
    assert.strictEqual(j.created, true);
    assert.strictEqual(j.accepted, 4);
    assert.strictEqual(j.rejected, 1);
    assert.strictEqual(j.other_lines, 3);
    assert.ok(Array.isArray(j.rejections));
    assert.equal(j.rejections.length, 1);
    assert.equal(j.rejections[0].reason, 'truncated');
    assert.equal(j.rejections[0].text, 'SCHED 4016ms: gomaxprocs=4 idlepr');
    assert.strictEqual(j.config_version, 0);

    const got = await samplesOf(srv, 'text-1');
    assert.deepStrictEqual(got.map((s) => s.ts_ms), [0, 1004, 2008, 3012]);
    assert.deepStrictEqual(got.map((s) => s.local_runq), [[0, 0, 0, 0], [0, 9, 0, 1], [1, 0, 7, 0], [2, 0, 0, 5]]);
    assert.deepStrictEqual(got.map((s) => s.gomaxprocs), [4, 4, 4, 4]);
    assert.deepStrictEqual(got.map((s) => s.idle_procs), [4, 2, 1, 0]);
    assert.deepStrictEqual(got.map((s) => s.threads), [5, 12, 12, 13]);
    assert.deepStrictEqual(got.map((s) => s.spinning_threads), [0, 1, 0, 0]);
    assert.deepStrictEqual(got.map((s) => s.idle_threads), [2, 5, 5, 4]);
    assert.deepStrictEqual(got.map((s) => s.global_runq), [0, 3, 2, 0]);
    assert.strictEqual(got[2].needspinning, 0);
    assert.strictEqual(got[3].needspinning, 1);
    assert.ok(got[0].needspinning === undefined || got[0].needspinning === null, 'needspinning only when sent');

    const a = assertJson(await srv.get('/api/v1/agents/text-1'));
    assert.equal(a.service, 'orders');
    assert.equal(a.hostname, 'node-3');
    assert.strictEqual(a.pid, 77);
    assert.equal(a.runtime, 'go1.26.0');
    assert.strictEqual(a.cpu.num_cpu, 8);
    assert.strictEqual(a.cpu.affinity, 6);
    assert.strictEqual(a.cpu.limit, 2.5);
    assert.strictEqual(a.samples_total, 4);
    assert.strictEqual(a.latest.ts_ms, 3012);
    assert.strictEqual(a.latest.local_runq_total, 7);
});

test('text/plain: a second post adds to the same agent; charset parameter accepted', async () => {
    const res = await postText(srv, '?agent=text-1&service=orders',
        'SCHED 5020ms: gomaxprocs=4 idleprocs=3 threads=13 spinningthreads=0 idlethreads=6 runqueue=0 [0 0 1 0]\n',
        'text/plain; charset=utf-8');
    const j = assertJson(res);
    assert.strictEqual(j.created, false);
    assert.strictEqual(j.accepted, 1);
    assert.strictEqual(j.rejected, 0);
    assert.strictEqual(j.other_lines, 0);
    assert.deepStrictEqual(j.rejections, []);
    const got = await samplesOf(srv, 'text-1');
    assert.deepStrictEqual(got.map((s) => s.ts_ms), [0, 1004, 2008, 3012, 5020]);
});

test('text/plain: only application lines is a heartbeat', async () => {
    const j = assertJson(await postText(srv, '?agent=text-quiet&service=orders', 'hello\nworld\nbye\n'));
    assert.strictEqual(j.created, true);
    assert.strictEqual(j.accepted, 0);
    assert.strictEqual(j.rejected, 0);
    assert.strictEqual(j.other_lines, 3);
    assert.deepStrictEqual(await samplesOf(srv, 'text-quiet'), []);
});

test('text/plain: a scheddetail block becomes one sample from its P lines', async () => {
    const block = [
        'SCHED 1009ms: gomaxprocs=2 idleprocs=0 threads=5 spinningthreads=0 needspinning=0 idlethreads=1 runqueue=4 gcwaiting=false nmidlelocked=0 stopwait=0 sysmonwait=false',
        '  P0: status=1 schedtick=10 syscalltick=2 m=3 runqsize=3 gfreecnt=0 timerslen=0',
        '  P1: status=1 schedtick=8 syscalltick=0 m=4 runqsize=1 gfreecnt=0 timerslen=0',
        '  M4: p=1 curg=7 mallocing=0 throwing=0 preemptoff= locks=0 dying=0 spinning=false blocked=false lockedg=nil',
        '  M3: p=0 curg=6 mallocing=0 throwing=0 preemptoff= locks=0 dying=0 spinning=false blocked=false lockedg=nil',
        '  G1: status=4(semacquire) m=nil lockedm=nil',
        'app line after the block',
    ].join('\n') + '\n';
    const j = assertJson(await postText(srv, '?agent=text-detail&service=orders', block));
    assert.strictEqual(j.accepted, 1);
    assert.strictEqual(j.rejected, 0);
    assert.strictEqual(j.other_lines, 1);
    const got = await samplesOf(srv, 'text-detail');
    assert.equal(got.length, 1);
    assert.strictEqual(got[0].ts_ms, 1009);
    assert.deepStrictEqual(got[0].local_runq, [3, 1]);
    assert.strictEqual(got[0].global_runq, 4);
});

test('text/plain: missing or malformed query parameters → 400 bad_request naming the parameter', async () => {
    const line = 'SCHED 1ms: gomaxprocs=1 idleprocs=0 threads=2 spinningthreads=0 idlethreads=0 runqueue=0 [0]\n';
    const ids = ['text-q', 'text-1'];
    const snap = await snapshot(srv, ids);
    const cases = [
        ['', 'agent'],
        ['?service=orders', 'agent'],
        ['?agent=text-q', 'service'],
        ['?agent=&service=orders', 'agent'],
        ['?agent=bad%20id&service=orders', 'agent'],
        [`?agent=${'a'.repeat(129)}&service=orders`, 'agent'],
        ['?agent=text-q&service=a%2Fb', 'service'],
        ['?agent=text-q&service=orders&num_cpu=abc', 'num_cpu'],
        ['?agent=text-q&service=orders&num_cpu=-4', 'num_cpu'],
        ['?agent=text-q&service=orders&affinity=x', 'affinity'],
        ['?agent=text-q&service=orders&cpu_limit=lots', 'cpu_limit'],
        ['?agent=text-q&service=orders&pid=12ab', 'pid'],
        ['?agent=text-1&service=orders&cpu_limit=-2', 'cpu_limit'],
    ];
    for (const [q, field] of cases) {
        const res = await postText(srv, q, line);
        try {
            assertError(res, 400, 'bad_request', field);
        } catch (e) {
            e.message = `query ${JSON.stringify(q)}: ${e.message}`;
            throw e;
        }
        await assertUnchanged(srv, snap, ids, q);
    }
});

test('text/plain: an oversized body → 413 too_large', async () => {
    const ids = ['text-big'];
    const snap = await snapshot(srv, ids);
    const line = 'SCHED 1ms: gomaxprocs=1 idleprocs=0 threads=2 spinningthreads=0 idlethreads=0 runqueue=0 [0]\n';
    const body = line.repeat(Math.ceil((MiB + 10) / line.length));
    const res = await srv.sock({ path: '/api/v1/telemetry?agent=text-big&service=orders',
        headers: { 'Content-Type': 'text/plain' }, body });
    assertError(res, 413, 'too_large');
    await assertUnchanged(srv, snap, ids);
});

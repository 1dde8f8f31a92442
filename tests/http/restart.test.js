'use strict';
/*
 * Durability (DESIGN §7): agents, config versions, events and policies
 * survive a restart — after SIGTERM and after kill -9 right behind an
 * acknowledged change. Samples are batched to disk every second: those
 * pushed well before a kill -9 come back; SIGTERM flushes all of them.
 */
const assert = require('node:assert');
const { after } = require('node:test');
const {
    startServer, freshDataDir, serverTest, assertJson, assertStatus, header, listOf, servicePatch,
    batch, sample, postTelemetry, sleep, timeless,
    OVERRIDE_OK,
} = require('./lib');

let srv;
const dataDir = freshDataDir();
const test = serverTest(() => [srv]);

after(async () => {
    if (srv)
        await srv.stop();
});

const TRACE = [
    'worker started',
    'SCHED 1000ms: gomaxprocs=2 idleprocs=1 threads=6 spinningthreads=0 needspinning=0 idlethreads=3 runqueue=1 [0 4]',
    'SCHED 2000ms: gomaxprocs=2 idleprocs=0 threads=6 spinningthreads=0 needspinning=0 idlethreads=3 runqueue=0 [ 3 1 ] schedticks=[ 10 12 ]',
].join('\n') + '\n';

/* Everything an operator can read back, for comparison across restarts. */
async function state(s, ids, services) {
    const list = assertJson(await s.get('/api/v1/agents?limit=1000'));
    const st = {
        agents: { ...list, agents: list.agents.map(timeless) },
        events: assertJson(await s.get('/api/v1/events?limit=1000')),
        policy: assertJson(await s.get('/api/v1/policy')),
    };
    for (const id of ids) {
        st[`agent ${id}`] = timeless(assertJson(await s.get(`/api/v1/agents/${id}`)));
        st[`samples ${id}`] = assertJson(await s.get(`/api/v1/agents/${id}/samples?limit=128`));
        st[`versions ${id}`] = assertJson(await s.get(`/api/v1/agents/${id}/versions?limit=100`));
        const c = await s.get(`/api/v1/agents/${id}/config`);
        st[`config ${id}`] = { body: assertJson(c), etag: header(c, 'etag') };
    }
    for (const name of services) {
        const r = await s.get(`/api/v1/services/${name}/policy`);
        st[`service ${name}`] = { status: r.status, body: r.json };
    }
    return st;
}

let saved;

test('set up agents, versions, policies and events', async () => {
    srv = await startServer({ dataDir });
    assertStatus(await srv.put('/api/v1/policy', { guards: { min_interval_s: 0 }, even: { min: 6 } }), 200);
    assertStatus(await srv.put('/api/v1/services/rs/policy', { quota: { rounding: 'floor' } }), 200);
    assertStatus(await srv.put('/api/v1/services/gone/policy', { even: { enabled: false } }), 200);
    assertStatus(await srv.del('/api/v1/services/gone/policy'), 204);

    const samples = Array.from({ length: 5 }, (_, i) =>
        sample([i, 0, 2, 1], { ts_ms: 1733300000000 + 1000 * i, global_runq: i, goroutines: 50 + i, sched_latency_us: { p50: 10, p99: 100 + i } }));
    await postTelemetry(srv, { agent: { ...batch('r-1').agent, service: 'rs', cpu_limit: 4.5 }, samples });
    await postTelemetry(srv, { agent: { ...batch('r-2').agent, service: 'other', num_cpu: 4, affinity: 4, cpu_limit: 1.5 },
        samples: [sample([9, 0], { ts_ms: 500 })] });
    // schedtrace text too (what the parser makes of it is telemetry.test.js's business)
    assertJson(await srv.req('POST', '/api/v1/telemetry?agent=r-2&service=other',
        { body: TRACE, headers: { 'Content-Type': 'text/plain' } }));
    await postTelemetry(srv, batch('r-3'));

    const v1 = assertJson(await srv.post('/api/v1/agents/r-1/apply', undefined), 201);
    assert.strictEqual(v1.version, 1);
    assert.strictEqual(v1.config.gomaxprocs, 4);
    const v2 = assertJson(await srv.put('/api/v1/agents/r-1/override', { gomaxprocs: 3, pool: { steal_scope: 'all' } }), OVERRIDE_OK);
    assert.strictEqual(v2.version, 2);
    assertStatus(await srv.put('/api/v1/agents/r-2/mode', { mode: 'pinned' }), 200);
    assertStatus(await srv.del('/api/v1/agents/r-3'), 204);

    saved = await state(srv, ['r-1', 'r-2'], ['rs', 'gone']);
    assert.equal(listOf(saved['samples r-1'], 'samples').length, 5);
    assert.ok(listOf(saved['samples r-2'], 'samples').length >= 1);
    assert.ok(listOf(saved.events, 'events').length >= 8);
});

test('SIGTERM: the server exits cleanly (code 0) and keeps everything', async () => {
    assert.ok(saved, 'the set-up test ran to its end');
    const st = await srv.stop();
    assert.equal(st.forced, false, 'SIGTERM alone stops the server');
    assert.strictEqual(st.code, 0, `exit code after SIGTERM (signal ${st.signal})`);
    srv = await startServer({ dataDir });
    const now = await state(srv, ['r-1', 'r-2'], ['rs', 'gone']);
    assert.deepStrictEqual(now, saved);
    assertStatus(await srv.get('/api/v1/agents/r-3'), 404);
    assertStatus(await srv.get('/api/v1/agents/r-1/config', { headers: { 'If-None-Match': '"r-1-v2"' } }), 304);
});

test('after a restart the agent is known and versions continue', async () => {
    assert.ok(saved, 'the set-up test ran to its end');
    const t = await postTelemetry(srv, { agent: { ...batch('r-1').agent, service: 'rs', cpu_limit: 4.5 }, samples: [] });
    assert.strictEqual(t.created, false);
    assert.strictEqual(t.config_version, 2);
    const v3 = assertJson(await srv.put('/api/v1/agents/r-1/override', { gomaxprocs: 8 }), OVERRIDE_OK);
    assert.strictEqual(v3.version, 3);
    assert.strictEqual(v3.config.gomaxprocs, 8);
    saved.v3 = v3;
});

test('kill -9 right after an acknowledged apply: the version, policy and events survive', async () => {
    assert.ok(saved, 'the set-up test ran to its end');
    // samples that have had time to reach the disk
    const early = Array.from({ length: 4 }, (_, i) => sample([7, i, 7], { ts_ms: 1733400000000 + i }));
    await postTelemetry(srv, { agent: { ...batch('r-4').agent, service: 'rs', cpu_limit: 2.5 }, samples: early });
    await sleep(2500);

    assertStatus(await srv.put('/api/v1/services/late/policy', { neighbor_steal: { window: 12 } }), 200);
    assertStatus(await srv.put('/api/v1/agents/r-2/mode', { mode: 'recommend' }), 200);
    const res = await srv.post('/api/v1/agents/r-4/apply', undefined);
    const v = assertJson(res, 201);
    await srv.kill9();
    assert.strictEqual(v.version, 1);
    assert.strictEqual(v.config.gomaxprocs, 2);

    srv = await startServer({ dataDir });
    const c = await srv.get('/api/v1/agents/r-4/config');
    assert.deepStrictEqual(assertJson(c), v);
    assert.equal(header(c, 'etag'), '"r-4-v1"');
    assert.deepStrictEqual(listOf(assertJson(await srv.get('/api/v1/agents/r-4/versions')), 'versions'), [v]);
    const a4 = assertJson(await srv.get('/api/v1/agents/r-4'));
    assert.strictEqual(a4.config_version, 1);
    const hist1 = listOf(assertJson(await srv.get('/api/v1/agents/r-1/versions')), 'versions');
    assert.deepStrictEqual(hist1, [saved.v3, ...listOf(saved['versions r-1'], 'versions')]);
    assert.deepStrictEqual(servicePatch(assertJson(await srv.get('/api/v1/services/late/policy')), 'late'),
        { neighbor_steal: { window: 12 } });
    assert.deepStrictEqual(servicePatch(assertJson(await srv.get('/api/v1/services/rs/policy')), 'rs'),
        { quota: { rounding: 'floor' } });
    assert.strictEqual(assertJson(await srv.get('/api/v1/policy')).even.min, 6);
    assert.equal(assertJson(await srv.get('/api/v1/agents/r-2')).mode, 'recommend');

    const events = listOf(assertJson(await srv.get('/api/v1/events?limit=1000')), 'events');
    const old = listOf(saved.events, 'events');
    assert.deepStrictEqual(events.slice(0, old.length), old, 'every earlier event is still there');
    assert.ok(events.some((e) => e.agent === 'r-4' && e.ts_ms >= v.created_ms - 1000),
        `the event of the last apply survived: ${JSON.stringify(events.filter((e) => e.agent === 'r-4'))}`);
    assert.ok(events.some((e) => e.service === 'late'), 'the event of the late policy change survived');
    const modeEvents = events.filter((e) => e.agent === 'r-2');
    assert.ok(JSON.stringify(modeEvents[modeEvents.length - 1].after).includes('recommend'),
        'the event of the last mode change survived');

    const got = listOf(assertJson(await srv.get('/api/v1/agents/r-4/samples')), 'samples');
    assert.deepStrictEqual(got.map((s) => s.ts_ms), early.map((s) => s.ts_ms),
        'samples pushed 2.5 s before kill -9 are back');
    assert.deepStrictEqual(got.map((s) => s.local_runq), early.map((s) => s.local_runq));
    // and the older samples of r-1 and r-2 too
    assert.deepStrictEqual(assertJson(await srv.get('/api/v1/agents/r-1/samples?limit=128')), saved['samples r-1']);
    assert.deepStrictEqual(assertJson(await srv.get('/api/v1/agents/r-2/samples?limit=128')), saved['samples r-2']);
});

test('SIGTERM flushes samples pushed just before it', async () => {
    const fresh = Array.from({ length: 3 }, (_, i) => sample([i, 1], { ts_ms: 1733500000000 + i }));
    await postTelemetry(srv, { agent: { ...batch('r-5').agent, service: 'rs' }, samples: fresh });
    const st = await srv.stop();
    assert.equal(st.forced, false);
    srv = await startServer({ dataDir });
    const got = listOf(assertJson(await srv.get('/api/v1/agents/r-5/samples')), 'samples');
    assert.deepStrictEqual(got.map((s) => s.ts_ms), fresh.map((s) => s.ts_ms));
    assert.deepStrictEqual(got.map((s) => s.local_runq), fresh.map((s) => s.local_runq));
    const a = assertJson(await srv.get('/api/v1/agents/r-5'));
    assert.strictEqual(a.samples_total, 3);
});

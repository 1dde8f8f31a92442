'use strict';
/*
 * Config versions: POST apply, PUT override, PUT mode, GET config (ETag,
 * If-None-Match) and GET versions; the guards that refuse an apply (409)
 * and the validation that refuses an override or a mode (422).
 */
const assert = require('node:assert');
const { before, after } = require('node:test');
const {
    startServer, serverTest, assertError, assertJson, assertStatus, header, listOf,
    batch, postTelemetry, snapshot, assertUnchanged, sleep,
    OVERRIDE_OK,
} = require('./lib');

let srv;
const test = serverTest(() => [srv]);

before(async () => {
    srv = await startServer();
    // Services whose agents may change as often as a test likes.
    assertStatus(await srv.put('/api/v1/services/fast/policy', { guards: { min_interval_s: 0 } }), 200);
});
after(async () => {
    if (srv)
        await srv.stop();
});

async function agent(id, facts = {}, service = 'svc') {
    await postTelemetry(srv, { agent: { ...batch(id).agent, service, ...facts }, samples: [] });
}

function versionsOf(json) {
    return listOf(json, 'versions');
}

function assertVersion(v, id, version, source) {
    assert.equal(v.agent, id);
    assert.strictEqual(v.version, version);
    assert.equal(v.source, source);
    assert.equal(typeof v.created_ms, 'number');
    assert.ok(Math.abs(v.created_ms - Date.now()) < 60000, 'created_ms is epoch milliseconds');
    assert.equal(typeof v.config, 'object');
    assert.ok(Array.isArray(v.reasons), 'reasons is an array');
}

/* ------------------------------------------------------------------ apply */

test('apply: 201 with version 1, source operator; config, ETag and 304', async () => {
    await agent('cfg-1', { cpu_limit: 2.5 });
    const v0 = assertJson(await srv.get('/api/v1/agents/cfg-1/config'));
    assert.deepStrictEqual(v0, { agent: 'cfg-1', version: 0, source: null, created_ms: null, config: {}, reasons: [] });

    const res = await srv.post('/api/v1/agents/cfg-1/apply', undefined);
    const v = assertJson(res, 201);
    assertVersion(v, 'cfg-1', 1, 'operator');
    assert.strictEqual(v.config.gomaxprocs, 3);
    assert.ok(v.reasons.some((r) => r.rule === 'quota'), 'the version keeps the reasons');

    const got = await srv.get('/api/v1/agents/cfg-1/config');
    const c = assertJson(got);
    assert.deepStrictEqual(c, v);
    assert.equal(header(got, 'etag'), '"cfg-1-v1"');

    const nm = await srv.get('/api/v1/agents/cfg-1/config', { headers: { 'If-None-Match': '"cfg-1-v1"' } });
    assertStatus(nm, 304);
    assert.equal(nm.text, '');
    const stale = await srv.get('/api/v1/agents/cfg-1/config', { headers: { 'If-None-Match': '"cfg-1-v0"' } });
    assertStatus(stale, 200);
    assert.strictEqual(stale.json.version, 1);

    const a = assertJson(await srv.get('/api/v1/agents/cfg-1'));
    assert.strictEqual(a.config_version, 1);
    assert.deepStrictEqual(a.config, v);
    assert.ok(Math.abs(a.last_change_ms - v.created_ms) <= 1000);

    // the next telemetry answer names the version
    const t = await postTelemetry(srv, batch('cfg-1', { cpu_limit: 2.5 }, []));
    assert.strictEqual(t.config_version, 1);
});

test('config: version 0 has the ETag "<agent>-v0"', async () => {
    await agent('cfg-etag0');
    const r = await srv.get('/api/v1/agents/cfg-etag0/config');
    assertStatus(r, 200);
    assert.equal(header(r, 'etag'), '"cfg-etag0-v0"');
    assertStatus(await srv.get('/api/v1/agents/cfg-etag0/config', { headers: { 'If-None-Match': '"cfg-etag0-v0"' } }), 304);
});

test('apply again at once → 409 (no_change or too_soon), nothing changed', async () => {
    const snap = await snapshot(srv, ['cfg-1']);
    const res = await srv.post('/api/v1/agents/cfg-1/apply', undefined);
    assertError(res, 409, ['no_change', 'too_soon']);
    await assertUnchanged(srv, snap, ['cfg-1']);
});

test('apply within min_interval_s with a change → 409 too_soon; {"force":true} skips it', async () => {
    await agent('cfg-soon', { cpu_limit: 2.5 });
    assertJson(await srv.post('/api/v1/agents/cfg-soon/apply', undefined), 201);
    await agent('cfg-soon', { cpu_limit: 6 });
    const rec = assertJson(await srv.get('/api/v1/agents/cfg-soon/recommendation'));
    assert.strictEqual(rec.config.gomaxprocs, 6);
    assert.strictEqual(rec.changes, true);

    const snap = await snapshot(srv, ['cfg-soon']);
    assertError(await srv.post('/api/v1/agents/cfg-soon/apply', undefined), 409, 'too_soon');
    assertError(await srv.post('/api/v1/agents/cfg-soon/apply', {}), 409, 'too_soon');
    assertError(await srv.post('/api/v1/agents/cfg-soon/apply', { force: false }), 409, 'too_soon');
    await assertUnchanged(srv, snap, ['cfg-soon']);

    const forced = assertJson(await srv.post('/api/v1/agents/cfg-soon/apply', { force: true }), 201);
    assertVersion(forced, 'cfg-soon', 2, 'operator');
    assert.strictEqual(forced.config.gomaxprocs, 6);

    // force does not invent a change
    assertError(await srv.post('/api/v1/agents/cfg-soon/apply', { force: true }), 409, 'no_change');
});

test('apply: bad bodies → 400/422/415, nothing changed', async () => {
    await agent('cfg-bad', { cpu_limit: 2.5 });
    const snap = await snapshot(srv, ['cfg-bad']);
    assertError(await srv.post('/api/v1/agents/cfg-bad/apply', { force: 'yes' }), 422, 'invalid', 'force');
    assertError(await srv.post('/api/v1/agents/cfg-bad/apply', { forse: true }), 422, 'invalid', 'forse');
    assertError(await srv.req('POST', '/api/v1/agents/cfg-bad/apply',
        { body: '{"force":tru', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json', null);
    assertError(await srv.req('POST', '/api/v1/agents/cfg-bad/apply',
        { body: '[]', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json', null);
    assertError(await srv.req('POST', '/api/v1/agents/cfg-bad/apply',
        { body: '<force/>', headers: { 'Content-Type': 'application/xml' } }), 415, 'unsupported_media_type');
    await assertUnchanged(srv, snap, ['cfg-bad']);
});

test('versions: newest first, limit 1..100 (default 20)', async () => {
    await agent('cfg-hist', { cpu_limit: 2 }, 'fast');
    const made = [];
    for (const limit of [2, 4, 6, 8]) {
        await agent('cfg-hist', { cpu_limit: limit }, 'fast');
        made.push(assertJson(await srv.post('/api/v1/agents/cfg-hist/apply', undefined), 201));
    }
    assert.deepStrictEqual(made.map((v) => v.version), [1, 2, 3, 4]);
    assert.deepStrictEqual(made.map((v) => v.config.gomaxprocs), [2, 4, 6, 8]);
    const all = versionsOf(assertJson(await srv.get('/api/v1/agents/cfg-hist/versions')));
    assert.deepStrictEqual(all.map((v) => v.version), [4, 3, 2, 1]);
    assert.deepStrictEqual(all, [...made].reverse());
    const two = versionsOf(assertJson(await srv.get('/api/v1/agents/cfg-hist/versions?limit=2')));
    assert.deepStrictEqual(two.map((v) => v.version), [4, 3]);
    const hundred = versionsOf(assertJson(await srv.get('/api/v1/agents/cfg-hist/versions?limit=100')));
    assert.equal(hundred.length, 4);
    for (const bad of ['0', '-1', 'abc', '101', '100000', '1.5'])
        assertError(await srv.get(`/api/v1/agents/cfg-hist/versions?limit=${bad}`), 400, 'bad_request', 'limit');
    await agent('cfg-nohist');
    assert.deepStrictEqual(versionsOf(assertJson(await srv.get('/api/v1/agents/cfg-nohist/versions'))), []);
});

test('versions: more than 20 → default page is the newest 20', async () => {
    await agent('cfg-many', {}, 'fast');
    for (let i = 1; i <= 22; i++)
        assertJson(await srv.put('/api/v1/agents/cfg-many/override', { gomaxprocs: i }), OVERRIDE_OK);
    const def = versionsOf(assertJson(await srv.get('/api/v1/agents/cfg-many/versions')));
    assert.equal(def.length, 20);
    assert.strictEqual(def[0].version, 22);
    assert.strictEqual(def[19].version, 3);
});

/* --------------------------------------------------------------- override */

test('override: a new version with source override; the agent shows the override', async () => {
    await agent('cfg-ov', { cpu_limit: 2.5 }, 'fast');
    assertJson(await srv.post('/api/v1/agents/cfg-ov/apply', undefined), 201);
    const res = await srv.put('/api/v1/agents/cfg-ov/override', { gomaxprocs: 5 });
    const v = assertJson(res, OVERRIDE_OK);
    assertVersion(v, 'cfg-ov', 2, 'override');
    assert.strictEqual(v.config.gomaxprocs, 5);
    const c = assertJson(await srv.get('/api/v1/agents/cfg-ov/config'));
    assert.deepStrictEqual(c, v);
    const a = assertJson(await srv.get('/api/v1/agents/cfg-ov'));
    assert.strictEqual(a.config_version, 2);
    assert.deepStrictEqual(a.override, { gomaxprocs: 5 });
    const hist = versionsOf(assertJson(await srv.get('/api/v1/agents/cfg-ov/versions')));
    assert.deepStrictEqual(hist.map((x) => [x.version, x.source]), [[2, 'override'], [1, 'operator']]);
});

test('override: every config field in range is kept', async () => {
    await agent('cfg-ov-all', {}, 'fast');
    const cfg = { gomaxprocs: 1024, pool: { workers: 65536, steal_threshold: 256, steal_scope: 'all' },
                  gosched_every: 1e9, chunk_size: 1, task_timeout_ms: 86400000 };
    const v = assertJson(await srv.put('/api/v1/agents/cfg-ov-all/override', cfg), OVERRIDE_OK);
    assert.deepStrictEqual(v.config, cfg);
    const v2 = assertJson(await srv.put('/api/v1/agents/cfg-ov-all/override',
        { gomaxprocs: 1, pool: { workers: 1, steal_threshold: 1, steal_scope: 'neighbors' }, task_timeout_ms: 1 }), OVERRIDE_OK);
    assert.strictEqual(v2.version, 2);
    assert.strictEqual(v2.config.pool.steal_scope, 'neighbors');
    assert.strictEqual(v2.config.gomaxprocs, 1);
});

test('override: invalid values → 422 with the field, nothing changed', async () => {
    await agent('cfg-ov-bad', {}, 'fast');
    assertJson(await srv.put('/api/v1/agents/cfg-ov-bad/override', { gomaxprocs: 4 }), OVERRIDE_OK);
    const ids = ['cfg-ov-bad'];
    const snap = await snapshot(srv, ids);
    const cases = [
        [{ gomaxprocs: 0 }, 'gomaxprocs'],
        [{ gomaxprocs: 2000 }, 'gomaxprocs'],
        [{ gomaxprocs: 1025 }, 'gomaxprocs'],
        [{ gomaxprocs: 'x' }, 'gomaxprocs'],
        [{ gomaxprocs: 2.5 }, 'gomaxprocs'],
        [{ gomaxprocs: 4, colour: 'red' }, 'colour'],
        [{ pool: { steal_scope: 'sideways' } }, 'pool.steal_scope'],
        [{ pool: { workers: 0 } }, 'pool.workers'],
        [{ pool: { workers: 65537 } }, 'pool.workers'],
        [{ pool: { steal_threshold: 257 } }, 'pool.steal_threshold'],
        [{ pool: { steal_threshold: 0 } }, 'pool.steal_threshold'],
        [{ pool: { stealing: true } }, 'pool.stealing'],
        [{ pool: 4 }, 'pool'],
        [{ gosched_every: 0 }, 'gosched_every'],
        [{ gosched_every: 1e9 + 1 }, 'gosched_every'],
        [{ chunk_size: -1 }, 'chunk_size'],
        [{ task_timeout_ms: 86400001 }, 'task_timeout_ms'],
        [{ task_timeout_ms: '5s' }, 'task_timeout_ms'],
    ];
    for (const [body, field] of cases) {
        const res = await srv.put('/api/v1/agents/cfg-ov-bad/override', body);
        try {
            assertError(res, 422, 'invalid', field);
        } catch (e) {
            e.message = `${JSON.stringify(body)}: ${e.message}`;
            throw e;
        }
        await assertUnchanged(srv, snap, ids, JSON.stringify(body));
    }
    assertError(await srv.req('PUT', '/api/v1/agents/cfg-ov-bad/override',
        { body: '{"gomaxprocs":4,"gomaxprocs":5}', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json', null);
    assertError(await srv.req('PUT', '/api/v1/agents/cfg-ov-bad/override',
        { body: '', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json', null);
    assertError(await srv.req('PUT', '/api/v1/agents/cfg-ov-bad/override',
        { body: 'gomaxprocs=4', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    await assertUnchanged(srv, snap, ids, 'malformed override');
});

test('concurrent overrides: every success gets its own version; losers get 409 conflict', async () => {
    await agent('cfg-race', {}, 'fast');
    const n = 12;
    const results = await Promise.all(Array.from({ length: n }, (_, i) =>
        srv.put('/api/v1/agents/cfg-race/override', { gomaxprocs: i + 1 })));
    const won = results.filter((r) => r.status === OVERRIDE_OK);
    for (const r of results) {
        if (r.status !== OVERRIDE_OK)
            assertError(r, 409, 'conflict');
    }
    assert.ok(won.length >= 1, 'at least one override wins');
    const nums = won.map((r) => r.json.version).sort((a, b) => a - b);
    assert.deepStrictEqual(nums, Array.from({ length: won.length }, (_, i) => i + 1),
        'winners hold distinct consecutive versions');
    const hist = versionsOf(assertJson(await srv.get('/api/v1/agents/cfg-race/versions?limit=100')));
    assert.equal(hist.length, won.length, 'one version per success, none for a 409');
    for (const r of won) {
        const h = hist.find((x) => x.version === r.json.version);
        assert.deepStrictEqual(h, r.json);
    }
    const a = assertJson(await srv.get('/api/v1/agents/cfg-race'));
    assert.strictEqual(a.config_version, won.length);
});

/* ------------------------------------------------------------------- mode */

test('mode: PUT pinned → the agent shows it; an event is recorded', async () => {
    await agent('cfg-mode');
    const evBefore = listOf(assertJson(await srv.get('/api/v1/events?agent=cfg-mode&limit=1000')), 'events');
    const res = await srv.put('/api/v1/agents/cfg-mode/mode', { mode: 'pinned' });
    assertStatus(res, 200);
    assert.equal(res.json.mode, 'pinned');
    const a = assertJson(await srv.get('/api/v1/agents/cfg-mode'));
    assert.equal(a.mode, 'pinned');
    const listed = listOf(assertJson(await srv.get('/api/v1/agents?limit=1000')), 'agents').find((x) => x.id === 'cfg-mode');
    assert.equal(listed.mode, 'pinned');
    const evAfter = listOf(assertJson(await srv.get('/api/v1/events?agent=cfg-mode&limit=1000')), 'events');
    assert.equal(evAfter.length, evBefore.length + 1, 'exactly one new event for the mode change');
    const ev = evAfter[evAfter.length - 1];
    assert.match(ev.kind, /mode/, `the event kind names the mode change: ${ev.kind}`);
    assert.equal(ev.agent, 'cfg-mode');
    assert.ok(JSON.stringify(ev.after).includes('pinned'), `the event's after holds the new mode: ${JSON.stringify(ev)}`);
    assert.ok(JSON.stringify(ev.before).includes('recommend'), `the event's before holds the old mode: ${JSON.stringify(ev)}`);

    assertStatus(await srv.put('/api/v1/agents/cfg-mode/mode', { mode: 'recommend' }), 200);
    assert.equal(assertJson(await srv.get('/api/v1/agents/cfg-mode')).mode, 'recommend');
});

test('mode: bad modes → 422 field "mode", nothing changed', async () => {
    const ids = ['cfg-mode'];
    const snap = await snapshot(srv, ids);
    for (const [body, field] of [
        [{ mode: 'manual' }, 'mode'], [{ mode: '' }, 'mode'], [{ mode: 1 }, 'mode'], [{ mode: 'PINNED' }, 'mode'],
        [{}, 'mode'], [{ mode: 'auto', extra: 1 }, 'extra'],
    ]) {
        const res = await srv.put('/api/v1/agents/cfg-mode/mode', body);
        try {
            assertError(res, 422, 'invalid', field);
        } catch (e) {
            e.message = `${JSON.stringify(body)}: ${e.message}`;
            throw e;
        }
    }
    assertError(await srv.req('PUT', '/api/v1/agents/cfg-mode/mode',
        { body: '{"mode":"auto"', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json', null);
    assertError(await srv.req('PUT', '/api/v1/agents/cfg-mode/mode',
        { body: 'auto', headers: { 'Content-Type': 'text/plain' } }), 415, 'unsupported_media_type');
    await assertUnchanged(srv, snap, ids);
});


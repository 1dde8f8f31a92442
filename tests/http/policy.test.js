'use strict';
/*
 * GET/PUT /api/v1/policy and GET/PUT/DELETE /api/v1/services/{name}/policy:
 * the built-in defaults, partial updates, validation, and the field-by-field
 * merge that gives an agent its effective policy.
 */
const assert = require('node:assert');
const { before, after } = require('node:test');
const {
    startServer, serverTest, assertError, assertJson, assertStatus, listOf, servicePatch,
    batch, postTelemetry, snapshot, assertUnchanged,
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

/* docs/api.md's Policy object: the built-in defaults. */
const DEFAULTS = {
    quota: { rounding: 'ceil', min_procs: 2, workers_factor: 1 },
    even: { enabled: true, min: 4 },
    neighbor_steal: { threshold: 8, window: 30, persistence: 0.5, gosched_every: 1000, chunk_size: 64 },
    guards: { min_change_pct: 10, min_interval_s: 60 },
    verify: { tolerance_pct: 10, cooldown_s: 3600, window: 10 },
    mode: { default: 'recommend' },
};

const clone = (x) => JSON.parse(JSON.stringify(x));

/* The service's patch from a service-policy answer; these tests run with the
 * global policy at its defaults whenever they read a service policy. */
const svc = (json, name) => servicePatch(json, name, DEFAULTS);

async function events() {
    return listOf(assertJson(await srv.get('/api/v1/events?limit=1000')), 'events');
}

test('global policy: the defaults of docs/api.md', async () => {
    assert.deepStrictEqual(assertJson(await srv.get('/api/v1/policy')), DEFAULTS);
});

test('global policy: PUT of a partial policy fills in the defaults and records an event', async () => {
    const before = await events();
    const res = await srv.put('/api/v1/policy', { quota: { rounding: 'floor' }, guards: { min_interval_s: 5 } });
    const want = clone(DEFAULTS);
    want.quota.rounding = 'floor';
    want.guards.min_interval_s = 5;
    assert.deepStrictEqual(assertJson(res, 200), want);
    assert.deepStrictEqual(assertJson(await srv.get('/api/v1/policy')), want);
    const afterEv = await events();
    assert.equal(afterEv.length, before.length + 1, 'one event for a policy change');
    const ev = afterEv[afterEv.length - 1];
    assert.match(ev.kind, /policy/, `the event kind names the policy: ${ev.kind}`);
    assert.ok(JSON.stringify(ev.after).includes('floor'), `the event's after holds the new policy: ${JSON.stringify(ev)}`);
});

test('global policy: a PUT replaces the previous one over the defaults', async () => {
    const res = await srv.put('/api/v1/policy', { even: { min: 6 } });
    const want = clone(DEFAULTS);
    want.even.min = 6;
    assert.deepStrictEqual(assertJson(res, 200), want, 'rounding is back to ceil: PUT is over the built-in defaults');
    assert.deepStrictEqual(assertJson(await srv.get('/api/v1/policy')), want);
});

test('global policy: every field at its range limits is accepted', async () => {
    const low = {
        quota: { rounding: 'nearest', min_procs: 1, workers_factor: 0.1 },
        even: { enabled: false, min: 2 },
        neighbor_steal: { threshold: 1, window: 1, persistence: 0.01, gosched_every: 1, chunk_size: 1 },
        guards: { min_change_pct: 0, min_interval_s: 0 },
        verify: { tolerance_pct: 0, cooldown_s: 0, window: 1 },
        mode: { default: 'recommend' },
    };
    assert.deepStrictEqual(assertJson(await srv.put('/api/v1/policy', low)), low);
    const high = {
        quota: { rounding: 'floor', min_procs: 1024, workers_factor: 64 },
        even: { enabled: true, min: 1024 },
        neighbor_steal: { threshold: 256, window: 128, persistence: 1, gosched_every: 1e9, chunk_size: 1e9 },
        guards: { min_change_pct: 100, min_interval_s: 86400 },
        verify: { tolerance_pct: 1000, cooldown_s: 604800, window: 64 },
        mode: { default: 'pinned' },
    };
    assert.deepStrictEqual(assertJson(await srv.put('/api/v1/policy', high)), high);
    assert.deepStrictEqual(assertJson(await srv.put('/api/v1/policy', {})), DEFAULTS, 'an empty PUT restores the defaults');
});

const badPolicies = [
    [{ neighbor_steal: { window: 0 } }, 'neighbor_steal.window'],
    [{ neighbor_steal: { window: 129 } }, 'neighbor_steal.window'],
    [{ neighbor_steal: { window: 2.5 } }, 'neighbor_steal.window'],
    [{ quota: { rounding: 'up' } }, 'quota.rounding'],
    [{ quota: { rounding: 1 } }, 'quota.rounding'],
    [{ neighbor_steal: { persistence: 2 } }, 'neighbor_steal.persistence'],
    [{ neighbor_steal: { persistence: 0 } }, 'neighbor_steal.persistence'],
    [{ neighbor_steal: { threshold: 0 } }, 'neighbor_steal.threshold'],
    [{ neighbor_steal: { threshold: 257 } }, 'neighbor_steal.threshold'],
    [{ neighbor_steal: { gosched_every: 0 } }, 'neighbor_steal.gosched_every'],
    [{ neighbor_steal: { chunk_size: 1e9 + 1 } }, 'neighbor_steal.chunk_size'],
    [{ quota: { min_procs: 0 } }, 'quota.min_procs'],
    [{ quota: { min_procs: 1025 } }, 'quota.min_procs'],
    [{ quota: { workers_factor: 0.05 } }, 'quota.workers_factor'],
    [{ quota: { workers_factor: 65 } }, 'quota.workers_factor'],
    [{ even: { min: 1 } }, 'even.min'],
    [{ even: { min: 1025 } }, 'even.min'],
    [{ even: { enabled: 'yes' } }, 'even.enabled'],
    [{ even: { enabled: 1 } }, 'even.enabled'],
    [{ guards: { min_change_pct: 101 } }, 'guards.min_change_pct'],
    [{ guards: { min_change_pct: -1 } }, 'guards.min_change_pct'],
    [{ guards: { min_interval_s: 86401 } }, 'guards.min_interval_s'],
    [{ guards: { min_interval_s: -1 } }, 'guards.min_interval_s'],
    [{ guards: { min_interval_s: '60' } }, 'guards.min_interval_s'],
    [{ steal: { threshold: 4 } }, 'steal'],
    [{ quota: { rounding: 'ceil', bogus: 1 } }, 'quota.bogus'],
    [{ quota: 5 }, 'quota'],
    [{ guards: null }, 'guards'],
    [{ verify: { tolerance_pct: -1 } }, 'verify.tolerance_pct'],
    [{ verify: { tolerance_pct: 1001 } }, 'verify.tolerance_pct'],
    [{ verify: { cooldown_s: 604801 } }, 'verify.cooldown_s'],
    [{ verify: { cooldown_s: 1.5 } }, 'verify.cooldown_s'],
    [{ verify: { window: 0 } }, 'verify.window'],
    [{ verify: { window: 65 } }, 'verify.window'],
    [{ mode: { default: 'default' } }, 'mode.default'],
    [{ mode: { default: 'manual' } }, 'mode.default'],
    [{ mode: { default: 1 } }, 'mode.default'],
    [{ mode: { fallback: 'auto' } }, 'mode.fallback'],
];

async function checkBad(url, cases, ids = []) {
    const snap = await snapshot(srv, ids);
    const before = await srv.get(url);
    for (const [body, field] of cases) {
        const res = await srv.put(url, body);
        try {
            assertError(res, 422, 'invalid', field);
        } catch (e) {
            e.message = `PUT ${url} ${JSON.stringify(body)}: ${e.message}`;
            throw e;
        }
        await assertUnchanged(srv, snap, ids, JSON.stringify(body));
        const now = await srv.get(url);
        assert.equal(now.status, before.status);
        assert.deepStrictEqual(now.json, before.json);
    }
    for (const [body, ct, status, code] of [
        ['{"quota":{"rounding":"floor"},"quota":{}}', 'application/json', 400, 'malformed_json'],
        ['{"quota":', 'application/json', 400, 'malformed_json'],
        ['[]', 'application/json', 400, 'malformed_json'],
        ['', 'application/json', 400, 'malformed_json'],
        ['quota.rounding=floor', 'application/x-www-form-urlencoded', 415, 'unsupported_media_type'],
    ]) {
        const res = await srv.req('PUT', url, { body, headers: { 'Content-Type': ct } });
        assertError(res, status, code, code === 'malformed_json' ? null : undefined);
        await assertUnchanged(srv, snap, ids, body);
    }
}

test('global policy: invalid values → 422 with the field, nothing changed', async () => {
    assertJson(await srv.put('/api/v1/policy', { guards: { min_interval_s: 7 } }));
    await checkBad('/api/v1/policy', badPolicies);
    assert.strictEqual(assertJson(await srv.get('/api/v1/policy')).guards.min_interval_s, 7);
    assertJson(await srv.put('/api/v1/policy', {}));
});

/* -------------------------------------------------------- service policies */

test('service policy: 404 before any PUT', async () => {
    assertError(await srv.get('/api/v1/services/orders/policy'), 404, 'not_found');
    assertError(await srv.del('/api/v1/services/orders/policy'), 404, 'not_found');
});

test('service policy: PUT / GET / DELETE round trip, events recorded', async () => {
    const before = await events();
    const patch = { quota: { rounding: 'floor', min_procs: 1 }, neighbor_steal: { window: 10 } };
    const put = await srv.put('/api/v1/services/orders/policy', patch);
    assert.deepStrictEqual(svc(assertJson(put, 200), 'orders'), patch, 'a service policy holds only the fields it overrides');
    assert.deepStrictEqual(svc(assertJson(await srv.get('/api/v1/services/orders/policy')), 'orders'), patch);
    // the global policy is untouched
    assert.deepStrictEqual(assertJson(await srv.get('/api/v1/policy')), DEFAULTS);

    const patch2 = { even: { enabled: false } };
    assert.deepStrictEqual(svc(assertJson(await srv.put('/api/v1/services/orders/policy', patch2)), 'orders'), patch2,
        'a PUT replaces the service patch');
    assert.deepStrictEqual(svc(assertJson(await srv.get('/api/v1/services/orders/policy')), 'orders'), patch2);

    const del = await srv.del('/api/v1/services/orders/policy');
    assertStatus(del, 204);
    assert.equal(del.text, '');
    assertError(await srv.get('/api/v1/services/orders/policy'), 404, 'not_found');
    assertError(await srv.del('/api/v1/services/orders/policy'), 404, 'not_found');

    const evs = (await events()).slice(before.length);
    assert.equal(evs.length, 3, `one event per PUT/PUT/DELETE: ${JSON.stringify(evs)}`);
    for (const ev of evs) {
        assert.match(ev.kind, /policy/);
        assert.equal(ev.service, 'orders');
    }
});

test('service policy: an empty PUT overrides nothing and is refused; nothing is stored', async () => {
    const before = assertJson(await srv.get('/api/v1/events?limit=1000')).events.length;
    assertError(await srv.put('/api/v1/services/empty/policy', {}), 422, 'invalid');
    assertError(await srv.get('/api/v1/services/empty/policy'), 404, 'not_found');
    assert.strictEqual(assertJson(await srv.get('/api/v1/events?limit=1000')).events.length, before);
});

test('service policy: invalid values → 422, nothing stored', async () => {
    await checkBad('/api/v1/services/badsvc/policy', badPolicies);
    assertError(await srv.get('/api/v1/services/badsvc/policy'), 404, 'not_found');
    // and over an existing one
    assertJson(await srv.put('/api/v1/services/badsvc/policy', { even: { min: 8 } }));
    await checkBad('/api/v1/services/badsvc/policy', badPolicies.slice(0, 6));
    assert.deepStrictEqual(svc(assertJson(await srv.get('/api/v1/services/badsvc/policy')), 'badsvc'), { even: { min: 8 } });
});

test('service policy: a malformed service name → 400 bad_request', async () => {
    for (const name of ['a%20b', 'a:b', 's'.repeat(129), 'caf%C3%A9']) {
        assertError(await srv.get(`/api/v1/services/${name}/policy`), 400, 'bad_request');
        assertError(await srv.put(`/api/v1/services/${name}/policy`, {}), 400, 'bad_request');
        assertError(await srv.del(`/api/v1/services/${name}/policy`), 400, 'bad_request');
    }
    const longName = 's'.repeat(128);
    assertStatus(await srv.put(`/api/v1/services/${longName}/policy`, { even: { min: 8 } }), 200);
    assertStatus(await srv.get(`/api/v1/services/${longName}/policy`), 200);
    assertStatus(await srv.del(`/api/v1/services/${longName}/policy`), 204);
});

test('effective policy: global and service merged field by field', async () => {
    assertJson(await srv.put('/api/v1/policy', { even: { min: 6 }, quota: { workers_factor: 2 }, guards: { min_interval_s: 30 } }));
    assertJson(await srv.put('/api/v1/services/merge/policy', { quota: { rounding: 'floor' }, guards: { min_change_pct: 20 } }));
    await postTelemetry(srv, { agent: { ...batch('pol-merge').agent, service: 'merge', cpu_limit: 3.5 }, samples: [] });
    const rec = assertJson(await srv.get('/api/v1/agents/pol-merge/recommendation'));
    const want = clone(DEFAULTS);
    want.even.min = 6;
    want.quota.workers_factor = 2;
    want.guards.min_interval_s = 30;
    want.quota.rounding = 'floor';
    want.guards.min_change_pct = 20;
    assert.deepStrictEqual(rec.policy, want);
    // floor(3.5) = 3, odd but under even.min 6; workers = 3 × 2
    assert.strictEqual(rec.config.gomaxprocs, 3);
    assert.strictEqual(rec.config.pool.workers, 6);

    // another service sees only the global policy
    await postTelemetry(srv, { agent: { ...batch('pol-other').agent, service: 'other', cpu_limit: 3.5 }, samples: [] });
    const r2 = assertJson(await srv.get('/api/v1/agents/pol-other/recommendation'));
    const want2 = clone(DEFAULTS);
    want2.even.min = 6;
    want2.quota.workers_factor = 2;
    want2.guards.min_interval_s = 30;
    assert.deepStrictEqual(r2.policy, want2);
    assert.strictEqual(r2.config.gomaxprocs, 4);

    // deleting the service policy falls back to the global one
    assertStatus(await srv.del('/api/v1/services/merge/policy'), 204);
    const r3 = assertJson(await srv.get('/api/v1/agents/pol-merge/recommendation'));
    assert.deepStrictEqual(r3.policy, want2);
    assertJson(await srv.put('/api/v1/policy', {}));
});

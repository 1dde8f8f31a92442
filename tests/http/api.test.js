'use strict';
/*
 * Routing and the cross-cutting parts of docs/api.md: health, the dashboard
 * index, 404 for unknown routes and agents, 405 with Allow, the agent list
 * and its paging, the event log and its filters, DELETE of an agent, bad
 * query parameters and path segments, and the agent cap (503).
 */
const assert = require('node:assert');
const { before, after } = require('node:test');
const {
    startServer, serverTest, assertError, assertJson, assertStatus, contentType, header, listOf,
    batch, sample, postTelemetry, snapshot, assertUnchanged,
} = require('./lib');

let srv;
let capped;
const test = serverTest(() => [srv, capped]);

before(async () => {
    srv = await startServer();
    await postTelemetry(srv, batch('known', { cpu_limit: 2.5 }, [sample([0, 1, 2, 3], { ts_ms: 1 })]));
});
after(async () => {
    if (srv)
        await srv.stop();
    if (capped)
        await capped.stop();
});

const agentsOf = (j) => listOf(j, 'agents');
const eventsOf = (j) => listOf(j, 'events');

/* ------------------------------------------------------ health and static */

test('GET /healthz and /readyz → 200', async () => {
    assertStatus(await srv.get('/healthz'), 200);
    assertStatus(await srv.get('/readyz'), 200);
});

test('GET / serves the dashboard as text/html, the same as /index.html', async () => {
    const root = await srv.get('/');
    assertStatus(root, 200);
    assert.match(contentType(root), /^text\/html\b/i);
    assert.match(root.text, /<html|<!doctype html/i);
    const idx = await srv.get('/index.html');
    assertStatus(idx, 200);
    assert.match(contentType(idx), /^text\/html\b/i);
    assert.equal(idx.text, root.text);
});

test('static files: content types, a CSP without inline script, ETag and 304', async () => {
    const html = await srv.get('/');
    const csp = header(html, 'content-security-policy');
    assert.ok(csp, 'the page carries a Content-Security-Policy');
    const dirs = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
    assert.deepStrictEqual(dirs['script-src'], ["'self'"], csp);
    assert.deepStrictEqual(dirs['default-src'], ["'self'"], csp);
    assert.ok(!csp.includes('unsafe-inline') && !csp.includes('unsafe-eval'), csp);
    assert.deepStrictEqual(dirs['frame-ancestors'], ["'none'"], csp);
    assert.equal(header(html, 'cache-control'), 'no-cache');
    assert.equal(header(html, 'x-content-type-options'), 'nosniff');
    // No inline script in the page itself: every <script> has a src.
    for (const tag of html.text.match(/<script\b[^>]*>/gi) || [])
        assert.match(tag, /\bsrc=/, `inline script in index.html: ${tag}`);
    assert.doesNotMatch(html.text, /\son[a-z]+=/i, 'no inline event handlers');

    const css = await srv.get('/style.css');
    assertStatus(css, 200);
    assert.match(contentType(css), /^text\/css\b/i);
    const etag = header(css, 'etag');
    assert.match(etag, /^"[0-9a-f]{16}"$/);
    assert.notEqual(etag, header(html, 'etag'), 'each file has its own ETag');
    const again = await srv.get('/style.css', { headers: { 'If-None-Match': etag } });
    assertStatus(again, 304);
    assert.equal(again.text, '');
    assert.equal(header(again, 'etag'), etag);
    const other = await srv.get('/style.css', { headers: { 'If-None-Match': '"0000000000000000"' } });
    assertStatus(other, 200);
    assert.equal(other.text, css.text);
    // The API's JSON is not a page: no CSP there, and never cached.
    const api = await srv.get('/api/v1/agents');
    assert.equal(header(api, 'content-security-policy'), null);
    assert.equal(header(api, 'cache-control'), 'no-store');
});

test('static files: unknown names → 404, traversal never escapes web/', async () => {
    assertStatus(await srv.get('/no-such-file.html'), 404);
    for (const p of ['/../../../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc%2fpasswd',
        '/web/../Makefile', '/index.html/../../etc/passwd']) {
        const r = await srv.get(p);
        assert.ok(r.status === 404 || r.status === 400, `${p}: expected 404 or 400, got ${r.status}`);
        assert.ok(!/root:.*:0:0:/.test(r.text), `${p} must not serve /etc/passwd`);
    }
});

/* ------------------------------------------------------------- 404 / 405 */

test('unknown API routes → 404 not_found as JSON', async () => {
    for (const p of ['/api/v1/nope', '/api/v2/agents', '/api/v1/agents/known/bogus', '/api/v1/agents/known/config/extra',
        '/api/v1/services/x', '/api/v1/services/x/policy/extra', '/api/v1/', '/api/v1/agents/known/samples/1']) {
        const r = await srv.get(p);
        try {
            assertError(r, 404, 'not_found');
        } catch (e) {
            e.message = `GET ${p}: ${e.message}`;
            throw e;
        }
    }
});

test('unknown agent → 404 not_found on every agent route, nothing created', async () => {
    const snap = await snapshot(srv, ['ghost']);
    const cases = [
        ['GET', '/api/v1/agents/ghost'],
        ['DELETE', '/api/v1/agents/ghost'],
        ['GET', '/api/v1/agents/ghost/samples'],
        ['GET', '/api/v1/agents/ghost/recommendation'],
        ['GET', '/api/v1/agents/ghost/config'],
        ['GET', '/api/v1/agents/ghost/versions'],
        ['PUT', '/api/v1/agents/ghost/mode', { mode: 'pinned' }],
        ['PUT', '/api/v1/agents/ghost/override', { gomaxprocs: 4 }],
        ['POST', '/api/v1/agents/ghost/apply'],
        ['POST', '/api/v1/agents/ghost/apply', { force: true }],
    ];
    for (const [method, p, json] of cases) {
        const r = await srv.req(method, p, { json });
        try {
            assertError(r, 404, 'not_found');
        } catch (e) {
            e.message = `${method} ${p}: ${e.message}`;
            throw e;
        }
    }
    await assertUnchanged(srv, snap, ['ghost']);
});

test('malformed agent id in the path → 400 bad_request', async () => {
    for (const id of ['a'.repeat(129), 'bad%20id', 'caf%C3%A9', 'a:b']) {
        for (const [method, suffix, json] of [['GET', ''], ['GET', '/samples'], ['GET', '/config'],
            ['PUT', '/mode', { mode: 'pinned' }], ['POST', '/apply'], ['DELETE', '']]) {
            const r = await srv.req(method, `/api/v1/agents/${id}${suffix}`, { json });
            try {
                assertError(r, 400, 'bad_request');
            } catch (e) {
                e.message = `${method} /api/v1/agents/${id.slice(0, 20)}${suffix}: ${e.message}`;
                throw e;
            }
        }
    }
});

function allowSet(r) {
    const h = header(r, 'allow');
    assert.ok(h, `405 must carry an Allow header: ${r.status} ${r.text}`);
    return h.split(',').map((m) => m.trim().toUpperCase()).filter((m) => m && m !== 'HEAD').sort();
}

test('wrong method on a known route → 405 method_not_allowed with Allow', async () => {
    const cases = [
        ['DELETE', '/api/v1/policy', ['GET', 'PUT']],
        ['POST', '/api/v1/policy', ['GET', 'PUT']],
        ['POST', '/api/v1/agents', ['GET']],
        ['DELETE', '/api/v1/agents', ['GET']],
        ['GET', '/api/v1/telemetry', ['POST']],
        ['PUT', '/api/v1/telemetry', ['POST']],
        ['PUT', '/api/v1/agents/known', ['DELETE', 'GET']],
        ['POST', '/api/v1/agents/known', ['DELETE', 'GET']],
        ['POST', '/api/v1/agents/known/samples', ['GET']],
        ['PUT', '/api/v1/agents/known/recommendation', ['GET']],
        ['POST', '/api/v1/agents/known/config', ['GET']],
        ['DELETE', '/api/v1/agents/known/versions', ['GET']],
        ['GET', '/api/v1/agents/known/mode', ['PUT']],
        ['POST', '/api/v1/agents/known/override', ['PUT']],
        ['GET', '/api/v1/agents/known/override', ['PUT']],
        ['GET', '/api/v1/agents/known/apply', ['POST']],
        ['PUT', '/api/v1/agents/known/apply', ['POST']],
        ['PATCH', '/api/v1/services/x/policy', ['DELETE', 'GET', 'PUT']],
        ['POST', '/api/v1/services/x/policy', ['DELETE', 'GET', 'PUT']],
        ['DELETE', '/api/v1/events', ['GET']],
        ['POST', '/healthz', ['GET']],
        ['POST', '/readyz', ['GET']],
        ['POST', '/', ['GET']],
    ];
    const snap = await snapshot(srv, ['known']);
    for (const [method, p, allow] of cases) {
        const json = method === 'GET' || method === 'DELETE' ? undefined : {};
        const r = await srv.req(method, p, { json });
        try {
            assertError(r, 405, 'method_not_allowed');
            assert.deepStrictEqual(allowSet(r), allow);
        } catch (e) {
            e.message = `${method} ${p}: ${e.message}`;
            throw e;
        }
    }
    await assertUnchanged(srv, snap, ['known']);
});

/* ------------------------------------------------------------ agent list */

test('agents: list ordered by id, service filter, limit and after paging', async () => {
    for (let i = 0; i < 7; i++)
        await postTelemetry(srv, { agent: { ...batch(`list-${i}`).agent, service: i % 2 ? 'odd' : 'even' }, samples: [] });
    const all = agentsOf(assertJson(await srv.get('/api/v1/agents?limit=1000')));
    const ids = all.map((a) => a.id);
    assert.deepStrictEqual(ids, [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)), 'ordered by id');
    for (let i = 0; i < 7; i++)
        assert.ok(ids.includes(`list-${i}`));

    const odd = agentsOf(assertJson(await srv.get('/api/v1/agents?service=odd')));
    assert.deepStrictEqual(odd.map((a) => a.id), ['list-1', 'list-3', 'list-5']);
    for (const a of odd)
        assert.equal(a.service, 'odd');
    assert.deepStrictEqual(agentsOf(assertJson(await srv.get('/api/v1/agents?service=nobody'))), []);

    const pages = [];
    let afterId = '';
    for (let guard = 0; guard < 100; guard++) {
        const q = `/api/v1/agents?limit=2${afterId ? `&after=${encodeURIComponent(afterId)}` : ''}`;
        const page = agentsOf(assertJson(await srv.get(q)));
        assert.ok(page.length <= 2, 'a page holds at most limit agents');
        if (page.length === 0)
            break;
        pages.push(...page.map((a) => a.id));
        afterId = page[page.length - 1].id;
    }
    assert.deepStrictEqual(pages, ids, 'paging with after visits every agent once, in order');

    const evenPage = agentsOf(assertJson(await srv.get('/api/v1/agents?service=even&limit=2&after=list-0')));
    assert.deepStrictEqual(evenPage.map((a) => a.id), ['list-2', 'list-4']);
});

test('agents: default limit 100, limit up to 1000', async () => {
    const have = agentsOf(assertJson(await srv.get('/api/v1/agents?limit=1000'))).length;
    for (let i = have; i < 105; i++)
        await postTelemetry(srv, batch(`bulk-${String(i).padStart(3, '0')}`));
    const def = agentsOf(assertJson(await srv.get('/api/v1/agents')));
    assert.equal(def.length, 100);
    const all = agentsOf(assertJson(await srv.get('/api/v1/agents?limit=1000')));
    assert.ok(all.length >= 105);
    assert.deepStrictEqual(def.map((a) => a.id), all.slice(0, 100).map((a) => a.id));
});

test('agents: bad query parameters → 400 bad_request naming the parameter', async () => {
    for (const v of ['0', '-1', 'abc', '1001', '100000', '2.5'])
        assertError(await srv.get(`/api/v1/agents?limit=${v}`), 400, 'bad_request', 'limit');
    assertError(await srv.get('/api/v1/agents?service=bad%20name'), 400, 'bad_request', 'service');
    assertError(await srv.get(`/api/v1/agents?service=${'s'.repeat(129)}`), 400, 'bad_request', 'service');
    assertError(await srv.get('/api/v1/agents?after=bad%2Fid'), 400, 'bad_request', 'after');
});

/* ---------------------------------------------------------------- events */

test('events: filters by agent, kind and since; limit; paging with after', async () => {
    await postTelemetry(srv, batch('ev-1'));
    await postTelemetry(srv, batch('ev-2'));
    for (const m of ['pinned', 'recommend', 'pinned', 'recommend'])
        assertStatus(await srv.put('/api/v1/agents/ev-1/mode', { mode: m }), 200);
    assertStatus(await srv.put('/api/v1/agents/ev-2/mode', { mode: 'pinned' }), 200);

    const all = eventsOf(assertJson(await srv.get('/api/v1/events?limit=1000')));
    assert.ok(all.length >= 5);
    for (const ev of all) {
        assert.equal(typeof ev.id, 'number');
        assert.equal(typeof ev.ts_ms, 'number');
        assert.equal(typeof ev.kind, 'string');
        assert.equal(typeof ev.actor, 'string');
        assert.ok('agent' in ev && 'service' in ev && 'before' in ev && 'after' in ev,
            `event fields: ${JSON.stringify(ev)}`);
    }
    const evIds = all.map((e) => e.id);
    assert.deepStrictEqual(evIds, [...evIds].sort((a, b) => a - b), 'oldest first (ascending id)');
    assert.equal(new Set(evIds).size, evIds.length, 'ids are unique');

    const byAgent = eventsOf(assertJson(await srv.get('/api/v1/events?agent=ev-1&limit=1000')));
    assert.deepStrictEqual(byAgent, all.filter((e) => e.agent === 'ev-1'));
    assert.ok(byAgent.length >= 4, 'four mode changes of ev-1 are logged');

    const modeKind = byAgent[byAgent.length - 1].kind;
    const byKind = eventsOf(assertJson(await srv.get(`/api/v1/events?kind=${encodeURIComponent(modeKind)}&limit=1000`)));
    assert.deepStrictEqual(byKind, all.filter((e) => e.kind === modeKind));
    assert.ok(byKind.length >= 5);
    const both = eventsOf(assertJson(await srv.get(`/api/v1/events?kind=${encodeURIComponent(modeKind)}&agent=ev-2&limit=1000`)));
    assert.deepStrictEqual(both, all.filter((e) => e.kind === modeKind && e.agent === 'ev-2'));
    assert.equal(both.length, 1);
    assert.deepStrictEqual(eventsOf(assertJson(await srv.get('/api/v1/events?kind=no_such_kind'))), []);
    assert.deepStrictEqual(eventsOf(assertJson(await srv.get('/api/v1/events?agent=nobody-here'))), []);

    const since = all[Math.floor(all.length / 2)].ts_ms;
    const bySince = eventsOf(assertJson(await srv.get(`/api/v1/events?since=${since}&limit=1000`)));
    assert.deepStrictEqual(bySince, all.filter((e) => e.ts_ms >= since));
    assert.deepStrictEqual(eventsOf(assertJson(await srv.get(`/api/v1/events?since=${Date.now() + 3600e3}`))), []);

    const two = eventsOf(assertJson(await srv.get('/api/v1/events?limit=2')));
    assert.deepStrictEqual(two, all.slice(0, 2));

    const paged = [];
    let afterId = 0;
    for (let guard = 0; guard < 1000; guard++) {
        const page = eventsOf(assertJson(await srv.get(`/api/v1/events?limit=3&after=${afterId}`)));
        assert.ok(page.length <= 3);
        if (page.length === 0)
            break;
        paged.push(...page);
        afterId = page[page.length - 1].id;
    }
    assert.deepStrictEqual(paged, all, 'paging with after visits every event once');
    const afterMid = eventsOf(assertJson(await srv.get(`/api/v1/events?after=${all[2].id}&limit=1000`)));
    assert.deepStrictEqual(afterMid, all.slice(3));
});

test('events: default limit 100', async () => {
    await postTelemetry(srv, batch('ev-many'));
    const have = eventsOf(assertJson(await srv.get('/api/v1/events?limit=1000'))).length;
    const modes = ['pinned', 'recommend'];
    for (let i = 0; have + i < 110; i++)
        assertStatus(await srv.put('/api/v1/agents/ev-many/mode', { mode: modes[i % 2] }), 200);
    const all = eventsOf(assertJson(await srv.get('/api/v1/events?limit=1000')));
    assert.ok(all.length >= 110);
    const def = eventsOf(assertJson(await srv.get('/api/v1/events')));
    assert.deepStrictEqual(def, all.slice(0, 100));
});

test('events: bad query parameters → 400 bad_request naming the parameter', async () => {
    for (const v of ['0', '-1', 'abc', '1001', '100000', '10x'])
        assertError(await srv.get(`/api/v1/events?limit=${v}`), 400, 'bad_request', 'limit');
    for (const v of ['abc', '1.5e', '12ms'])
        assertError(await srv.get(`/api/v1/events?since=${v}`), 400, 'bad_request', 'since');
    for (const v of ['x', '1.5', '7abc'])
        assertError(await srv.get(`/api/v1/events?after=${v}`), 400, 'bad_request', 'after');
    assertError(await srv.get('/api/v1/events?agent=bad%20id'), 400, 'bad_request', 'agent');
});

/* ---------------------------------------------------------------- delete */

test('DELETE agent → 204, then 404 everywhere; its events stay; a new contact starts afresh', async () => {
    await postTelemetry(srv, batch('doomed', { cpu_limit: 2.5 }, [sample([1, 2], { ts_ms: 5 })]));
    assertJson(await srv.post('/api/v1/agents/doomed/apply', undefined), 201);
    const evBefore = eventsOf(assertJson(await srv.get('/api/v1/events?agent=doomed&limit=1000')));
    assert.ok(evBefore.length >= 1);

    const del = await srv.del('/api/v1/agents/doomed');
    assertStatus(del, 204);
    assert.equal(del.text, '');
    for (const p of ['', '/samples', '/recommendation', '/config', '/versions'])
        assertError(await srv.get(`/api/v1/agents/doomed${p}`), 404, 'not_found');
    assertError(await srv.del('/api/v1/agents/doomed'), 404, 'not_found');
    assert.ok(!agentsOf(assertJson(await srv.get('/api/v1/agents?limit=1000'))).some((a) => a.id === 'doomed'));

    const evAfter = eventsOf(assertJson(await srv.get('/api/v1/events?agent=doomed&limit=1000')));
    assert.deepStrictEqual(evAfter.slice(0, evBefore.length), evBefore, 'the agent\'s events stay');
    assert.equal(evAfter.length, evBefore.length + 1, 'the deletion is logged');

    const again = await postTelemetry(srv, batch('doomed', { cpu_limit: 2.5 }, []));
    assert.strictEqual(again.created, true);
    assert.strictEqual(again.config_version, 0);
    const a = assertJson(await srv.get('/api/v1/agents/doomed'));
    assert.strictEqual(a.config_version, 0);
    assert.strictEqual(a.samples_total, 0);
    assert.strictEqual(a.latest, null);
    assert.deepStrictEqual(listOf(assertJson(await srv.get('/api/v1/agents/doomed/samples')), 'samples'), []);
    assert.deepStrictEqual(listOf(assertJson(await srv.get('/api/v1/agents/doomed/versions')), 'versions'), []);
});

/* ------------------------------------------------------------- agent cap */

test('agent cap reached → 503 unavailable for a new agent; known agents still report', async () => {
    capped = await startServer({ args: ['--max-agents', '2'] });
    await postTelemetry(capped, batch('cap-1'));
    await postTelemetry(capped, batch('cap-2'));
    const snap = await snapshot(capped, ['cap-3']);
    const r = await capped.post('/api/v1/telemetry', batch('cap-3', {}, [sample([1])]));
    assertError(r, 503, 'unavailable');
    const rt = await capped.req('POST', '/api/v1/telemetry?agent=cap-3&service=svc',
        { body: 'hello\n', headers: { 'Content-Type': 'text/plain' } });
    assertError(rt, 503, 'unavailable');
    await assertUnchanged(capped, snap, ['cap-3']);
    const known = await postTelemetry(capped, batch('cap-1', {}, [sample([1])]));
    assert.strictEqual(known.created, false);
    assert.strictEqual(known.accepted, 1);
    // forgetting one makes room again
    assertStatus(await capped.del('/api/v1/agents/cap-2'), 204);
    const now = await postTelemetry(capped, batch('cap-3'));
    assert.strictEqual(now.created, true);
    const st = await capped.stop();
    capped = undefined;
    assert.equal(st.forced, false);
});

'use strict';
/*
 * Delivery (docs/api.md: "Push on contact", "Blocking queries", "ACK and
 * NACK", "Verification and rollback", "Events"): blocking queries on
 * GET .../config with index and wait, the config carried by telemetry
 * answers, ACK/NACK, the modes (auto, default, pinned), verification with
 * its automatic rollback, the manual rollback, and the audit events of all
 * of it.
 *
 * One shared server for most tests; the tests that stop their server or
 * need other flags (--conn-timeout, --per-ip-limit) start their own.
 * Services used on the shared server:
 *   fast    guards.min_interval_s 0 (several changes in a row)
 *   verify  the same, with verify.window 5 (short verification windows)
 */
const assert = require('node:assert');
const net = require('node:net');
const { before, after } = require('node:test');
const {
    startServer, serverTest, rawRequest, assertError, assertJson, assertStatus, header, listOf,
    batch, sample, postTelemetry, snapshot, assertUnchanged, sleep, OVERRIDE_OK,
} = require('./lib');

let srv;
const test = serverTest(() => [srv]);

before(async () => {
    srv = await startServer();
    assertStatus(await srv.put('/api/v1/services/fast/policy', { guards: { min_interval_s: 0 } }), 200);
    assertStatus(await srv.put('/api/v1/services/verify/policy',
        { guards: { min_interval_s: 0 }, verify: { window: 5 } }), 200);
});
after(async () => {
    if (srv)
        await srv.stop();
});

/* Runs fn with a server of its own (args), always stopped afterwards; its
 * stderr is printed when fn fails. */
async function withServer(args, fn) {
    const s = await startServer({ args });
    try {
        return await fn(s);
    } catch (e) {
        s.dumpStderr('failing test (own server)');
        throw e;
    } finally {
        await s.stop();
    }
}

/* ---------------------------------------------------------------- helpers */

const FAST4 = { service: 'fast', cpu_limit: 4 };
const FAST2 = { service: 'fast', cpu_limit: 2 };
const VER4 = { service: 'verify', cpu_limit: 4 };
const VER2 = { service: 'verify', cpu_limit: 2 };
const CFG4 = { gomaxprocs: 4, pool: { workers: 4 } };     // what a CPU limit of 4 gives
const CFG2 = { gomaxprocs: 2, pool: { workers: 2 } };     // ... and of 2

/* A push of the agent's facts (every push states the CPU limit). */
function push(id, facts, list = []) {
    return postTelemetry(srv, batch(id, facts, list));
}

/* n samples of the same local run queues (4 Ps unless said). */
function samples(n, runq = [1, 1, 1, 1], extra = {}) {
    return Array.from({ length: n }, () => sample(runq, extra));
}

const view = async (id) => assertJson(await srv.get(`/api/v1/agents/${id}`));
const index = (res) => header(res, 'x-gotuned-index');

async function apply(id, s = srv) {
    return assertJson(await s.post(`/api/v1/agents/${id}/apply`, undefined), 201);
}

function ack(id, version, status = 'applied', error) {
    const body = { version, status };
    if (error !== undefined)
        body.error = error;
    return srv.post(`/api/v1/agents/${id}/ack`, body);
}

async function versions(id) {
    return listOf(assertJson(await srv.get(`/api/v1/agents/${id}/versions?limit=100`)), 'versions');
}

async function events(id, kind) {
    const q = kind ? `&kind=${kind}` : '';
    return listOf(assertJson(await srv.get(`/api/v1/events?agent=${id}${q}&limit=1000`)), 'events');
}

/*
 * Starts a GET on its own connection and notes when it settles: .at is
 * null while the server holds it. .done resolves with the answer
 * {status, headers, json, text} (rejects after timeoutMs without one).
 */
function hold(s, urlPath, { headers = {}, timeoutMs = 10000 } = {}) {
    const h = { start: Date.now(), at: null, res: null };
    h.done = rawRequest({ port: s.port, method: 'GET', path: urlPath, headers, timeoutMs })
        .then((res) => { h.at = Date.now(); h.res = res; return res; },
            (e) => { h.at = Date.now(); throw e; });
    h.done.catch(() => {});     // awaited later; no unhandled rejection meanwhile
    return h;
}

function assertHeld(h, what) {
    assert.strictEqual(h.at, null, `${what}: answered after ${h.at - h.start} ms, while it should ` +
        `still be held${h.res ? `: ${h.res.status} ${h.res.text.slice(0, 300)}` : ''}`);
}

/* Times one request on its own connection. */
async function timed(s, urlPath, opts = {}) {
    const t0 = Date.now();
    const res = await rawRequest({ port: s.port, method: 'GET', path: urlPath, timeoutMs: 15000, ...opts });
    return { res, ms: Date.now() - t0 };
}

/* --------------------------------------------------- raw connections (7) */

/* An open TCP connection that collects what the server sends. */
function connect(port) {
    return new Promise((resolve, reject) => {
        const c = { buf: Buffer.alloc(0), closed: false };
        c.sock = net.connect(port, '127.0.0.1');
        c.sock.on('data', (d) => { c.buf = Buffer.concat([c.buf, d]); });
        c.sock.on('close', () => { c.closed = true; });
        c.sock.once('connect', () => {
            c.sock.on('error', () => {});
            resolve(c);
        });
        c.sock.once('error', reject);
    });
}

function getText(urlPath, close = false) {
    return `GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\n${close ? 'Connection: close\r\n' : ''}\r\n`;
}

/* Every complete response in buf (bodies by Content-Length). */
function responses(buf) {
    const out = [];
    let rest = buf;
    for (let guard = 0; guard < 100; guard++) {
        const end = rest.indexOf('\r\n\r\n');
        if (end < 0)
            break;
        const lines = rest.subarray(0, end).toString('latin1').split('\r\n');
        const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
        if (!m)
            break;
        const headers = {};
        for (const l of lines.slice(1)) {
            const i = l.indexOf(':');
            if (i > 0)
                headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
        }
        const len = Number(headers['content-length'] || 0);
        if (rest.length < end + 4 + len)
            break;
        const text = rest.subarray(end + 4, end + 4 + len).toString('utf8');
        let json;
        try { json = text.length ? JSON.parse(text) : undefined; } catch (e) { json = undefined; }
        out.push({ status: Number(m[1]), headers, text, json });
        rest = rest.subarray(end + 4 + len);
    }
    return out;
}

async function waitFor(pred, ms) {
    const t0 = Date.now();
    while (!pred() && Date.now() - t0 < ms)
        await sleep(10);
    return pred();
}

/* GET /healthz on a new connection: true when 200 comes within 1 s. */
async function healthzOk(port) {
    let c;
    try {
        c = await connect(port);
    } catch (e) {
        return false;
    }
    c.sock.write(getText('/healthz', true));
    await waitFor(() => responses(c.buf).length > 0 || c.closed, 1000);
    const r = responses(c.buf);
    c.sock.destroy();
    return r.length > 0 && r[0].status === 200;
}

/* A JSON request with Connection: close (no idle keep-alive connection of
 * ours is left counting against --per-ip-limit). */
function closingJson(s, method, urlPath, body) {
    const text = body === undefined ? '' : JSON.stringify(body);
    return rawRequest({ port: s.port, method, path: urlPath, chunks: text ? [text] : [],
        headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) } });
}

/* ===================================================== blocking queries */

test('blocking query: held until a new version exists, then answered at once', async () => {
    await push('bq-1', FAST4);
    const h = hold(srv, '/api/v1/agents/bq-1/config?index=0&wait=30s');
    await sleep(500);
    assertHeld(h, 'index=0&wait=30s at version 0');

    const sentAt = Date.now();
    const v1 = await apply('bq-1');
    assert.strictEqual(v1.version, 1);
    const res = await h.done;
    assert.deepStrictEqual(assertJson(res), v1, 'the answer is the new version');
    assert.equal(index(res), '1', 'X-Gotuned-Index');
    assert.equal(header(res, 'etag'), '"bq-1-v1"');
    assert.ok(h.at >= sentAt, 'not answered before the apply was sent');
    assert.ok(h.at - sentAt < 2000, `answered ${h.at - sentAt} ms after the apply, not at once`);

    // index without wait holds too (default 5m); every waiter on the agent wakes
    const a = hold(srv, '/api/v1/agents/bq-1/config?index=1');
    const b = hold(srv, '/api/v1/agents/bq-1/config?index=1&wait=1m30s');
    await sleep(500);
    assertHeld(a, 'index=1 without wait');
    assertHeld(b, 'index=1&wait=1m30s');
    const t = Date.now();
    const v2 = assertJson(await srv.put('/api/v1/agents/bq-1/override', { gomaxprocs: 3 }), OVERRIDE_OK);
    assert.strictEqual(v2.version, 2);
    for (const x of [a, b]) {
        const r = await x.done;
        assert.deepStrictEqual(assertJson(r), v2);
        assert.equal(index(r), '2');
        assert.ok(x.at - t < 2000, `answered ${x.at - t} ms after the override`);
    }
});

test('blocking query: at the end of the wait, the same version again (1s, 1500ms, 1)', async () => {
    await push('bq-2', FAST4);
    await apply('bq-2');
    for (const [wait, ms] of [['1s', 1000], ['1500ms', 1500], ['1', 1000]]) {
        const { res, ms: took } = await timed(srv, `/api/v1/agents/bq-2/config?index=1&wait=${wait}`);
        const body = assertJson(res);
        assert.strictEqual(body.version, 1, `wait=${wait}: the same version`);
        assert.equal(body.agent, 'bq-2');
        assert.equal(index(res), '1', `wait=${wait}: X-Gotuned-Index`);
        assert.ok(took >= ms - 10, `wait=${wait}: answered after ${took} ms, before the wait ended`);
        assert.ok(took < ms + ms / 16 + 500, `wait=${wait}: answered after ${took} ms, ` +
            `more than wait + wait/16 jitter + 500 ms`);
    }
    // If-None-Match naming the version: 304 at the end of the wait
    const { res: nm, ms: took } = await timed(srv, '/api/v1/agents/bq-2/config?index=1&wait=250ms',
        { headers: { 'If-None-Match': '"bq-2-v1"' } });
    assertStatus(nm, 304);
    assert.equal(nm.text, '');
    assert.equal(index(nm), '1', 'a 304 config answer carries X-Gotuned-Index too');
    assert.ok(took >= 240 && took < 250 + 16 + 500, `wait=250ms answered after ${took} ms`);
});

test('blocking query: another index is answered at once; X-Gotuned-Index everywhere; bad index/wait → 400', async () => {
    await push('bq-3', FAST4);
    const v1 = await apply('bq-3');
    // newer (a reset store) or older than the current version: at once
    for (const q of ['index=0&wait=30s', 'index=2&wait=30s', 'index=1000000&wait=5m', 'index=0',
        'index=0&wait=20m', 'index=0&wait=250ms', 'index=0&wait=1m30s', 'index=7&wait=45']) {
        const { res, ms } = await timed(srv, `/api/v1/agents/bq-3/config?${q}`);
        assert.deepStrictEqual(assertJson(res), v1, q);
        assert.equal(index(res), '1', `${q}: X-Gotuned-Index`);
        assert.ok(ms < 1000, `${q}: answered after ${ms} ms, not at once`);
    }
    const plain = await srv.get('/api/v1/agents/bq-3/config');
    assert.deepStrictEqual(assertJson(plain), v1);
    assert.equal(index(plain), '1', 'a plain GET config carries X-Gotuned-Index');
    const nm = await srv.get('/api/v1/agents/bq-3/config', { headers: { 'If-None-Match': '"bq-3-v1"' } });
    assertStatus(nm, 304);
    assert.equal(index(nm), '1', 'a 304 carries X-Gotuned-Index');
    await push('bq-3v0', FAST4);
    assert.equal(index(await srv.get('/api/v1/agents/bq-3v0/config')), '0', 'version 0 has X-Gotuned-Index: 0');

    // an unknown agent: 404 at once
    const { res: gone, ms } = await timed(srv, '/api/v1/agents/bq-nobody/config?index=0&wait=30s');
    assertError(gone, 404, 'not_found');
    assert.ok(ms < 1000, `404 after ${ms} ms`);

    const bad = [
        ['wait=30s', 'index'],                  // a blocking query needs index
        ['wait=1s', 'index'],
        ['index=-1', 'index'],
        ['index=-1&wait=1s', 'index'],
        ['index=abc&wait=1s', 'index'],
        ['index=1.5&wait=1s', 'index'],
        ['index=&wait=1s', 'index'],
        ['index=1&wait=5x', 'wait'],
        ['index=1&wait=-1s', 'wait'],
        ['index=1&wait=', 'wait'],
        ['index=1&wait=s', 'wait'],
        ['index=1&wait=ms', 'wait'],
        ['index=1&wait=1m30', 'wait'],
        ['index=1&wait=forever', 'wait'],
    ];
    for (const [q, field] of bad) {
        const { res, ms: took } = await timed(srv, `/api/v1/agents/bq-3/config?${q}`);
        try {
            assertError(res, 400, 'bad_request', field);
        } catch (e) {
            e.message = `?${q}: ${e.message}`;
            throw e;
        }
        assert.ok(took < 1000, `?${q}: the 400 came after ${took} ms`);
    }
});

test('blocking query: deleting the agent answers the held query with 404', async () => {
    await push('bq-del', FAST4);
    const h = hold(srv, '/api/v1/agents/bq-del/config?index=0&wait=30s');
    await sleep(400);
    assertHeld(h, 'index=0&wait=30s');
    const t = Date.now();
    assertStatus(await srv.del('/api/v1/agents/bq-del'), 204);
    const res = await h.done;
    assertError(res, 404, 'not_found');
    assert.ok(h.at - t < 2000, `404 came ${h.at - t} ms after the delete`);
});

test('shutdown: every held query is answered with its current version; exit 0 within the grace', async () => {
    await withServer([], async (s) => {
        assertStatus(await s.put('/api/v1/services/fast/policy', { guards: { min_interval_s: 0 } }), 200);
        const current = {};
        for (let i = 0; i < 8; i++) {
            const id = `sd-${i}`;
            await postTelemetry(s, batch(id, FAST4));
            current[id] = 0;
            if (i % 2) {
                await apply(id, s);
                current[id] = 1;
            }
        }
        const ids = Object.keys(current);
        const holds = Array.from({ length: 20 }, (_, k) => {
            const id = ids[k % ids.length];       // some agents get 2 or 3 queries
            return { id, h: hold(s, `/api/v1/agents/${id}/config?index=${current[id]}&wait=60s`, { timeoutMs: 20000 }) };
        });
        await sleep(600);
        for (const { id, h } of holds)
            assertHeld(h, `${id} index=${current[id]}`);

        const t0 = Date.now();
        const stopping = s.stop();                  // SIGTERM, then waits (10 s, then SIGKILL)
        const results = await Promise.allSettled(holds.map((x) => x.h.done));
        const st = await stopping;
        const exitMs = Date.now() - t0;
        results.forEach((r, k) => {
            const { id, h } = holds[k];
            assert.equal(r.status, 'fulfilled', `${id}: no answer on shutdown (${r.reason && r.reason.message})`);
            const body = assertJson(r.value);
            assert.strictEqual(body.version, current[id], `${id}: the current version`);
            assert.equal(index(r.value), String(current[id]), `${id}: X-Gotuned-Index`);
            assert.ok(h.at - t0 < 10000, `${id}: answered ${h.at - t0} ms after SIGTERM`);
        });
        assert.deepStrictEqual(st, { code: 0, signal: null, forced: false },
            `exit after SIGTERM (${exitMs} ms; grace 10 s)`);
    });
});

test('a held query outlives --conn-timeout 1: wait=3s is answered after ~3 s', async () => {
    await withServer(['--conn-timeout', '1'], async (s) => {
        await postTelemetry(s, batch('ct-1', FAST4));
        const { res, ms } = await timed(s, '/api/v1/agents/ct-1/config?index=0&wait=3s');
        const body = assertJson(res);
        assert.strictEqual(body.version, 0);
        assert.equal(index(res), '0');
        assert.ok(ms >= 2990 && ms < 3000 + 3000 / 16 + 1000, `answered after ${ms} ms`);
        assert.ok(s.alive());
        assertStatus(await s.get('/healthz'), 200);
    });
});

test('disconnected held queries do not leak: --per-ip-limit slots come back', async () => {
    const LIMIT = 5;
    const conns = [];
    try {
        await withServer(['--per-ip-limit', String(LIMIT)], async (s) => {
            assertStatus(await closingJson(s, 'POST', '/api/v1/telemetry', batch('dc-1', FAST4)), 200);
            const q = getText('/api/v1/agents/dc-1/config?index=0&wait=60s');
            /* One held query on a new connection. The server frees the slot of
             * a connection we just closed a moment after we close it, so a
             * connection it refuses (closes at once) is tried again, for at
             * most 3 s: a leaked slot never comes back and still fails. */
            const holdOne = async () => {
                const t0 = Date.now();
                for (;;) {
                    const c = await connect(s.port);
                    c.sock.write(q);
                    await waitFor(() => c.closed || c.buf.length > 0, 150);
                    if (!c.closed || Date.now() - t0 > 3000)
                        return c;
                    await sleep(50);
                }
            };

            // fill every slot with a held query
            for (let i = 0; i < LIMIT; i++)
                conns.push(await holdOne());
            await sleep(400);
            conns.forEach((c, i) => assert.ok(c.buf.length === 0 && !c.closed, `held query ${i} answered or closed early: ${c.buf}`));
            // the limit is reached: one more connection gets no answer
            const extra = await connect(s.port);
            conns.push(extra);
            extra.sock.write(getText('/healthz', true));
            await waitFor(() => extra.closed || extra.buf.length > 0, 3000);
            assert.equal(extra.buf.length, 0, `a connection past the limit was served: ${extra.buf}`);

            // the clients go away
            for (const c of conns)
                c.sock.destroy();
            conns.length = 0;
            const t0 = Date.now();
            let ok = false;
            while (!ok && Date.now() - t0 < 5000) {
                ok = await healthzOk(s.port);
                if (!ok)
                    await sleep(100);
            }
            assert.ok(ok, 'GET /healthz still refused 5 s after every held client disconnected');

            // every slot is free again: LIMIT - 1 held queries plus an apply
            for (let i = 0; i < LIMIT - 1; i++)
                conns.push(await holdOne());
            await sleep(400);
            conns.forEach((c, i) => assert.ok(c.buf.length === 0 && !c.closed, `new held query ${i} refused or answered: ${c.buf}`));
            const applied = await closingJson(s, 'POST', '/api/v1/agents/dc-1/apply');
            assertStatus(applied, 201, 'apply on the last free slot');
            for (const [i, c] of conns.entries()) {
                await waitFor(() => responses(c.buf).length > 0, 3000);
                const r = responses(c.buf);
                assert.equal(r.length, 1, `held query ${i} got no answer after the apply: ${c.buf}`);
                assert.equal(r[0].status, 200);
                assert.strictEqual(r[0].json.version, 1);
                assert.equal(r[0].headers['x-gotuned-index'], '1');
            }
        });
    } finally {
        conns.forEach((c) => c.sock.destroy());
    }
});

test('a request pipelined behind a held query waits its turn; neither is answered early', async () => {
    await push('pl-1', FAST4);
    const c = await connect(srv.port);
    try {
        c.sock.write(getText('/api/v1/agents/pl-1/config?index=0&wait=30s') + getText('/healthz', true));
        await sleep(600);
        assert.equal(c.buf.length, 0, `answered while the first request is held: ${c.buf}`);
        assert.ok(!c.closed, 'the connection is still open');
        const v1 = await apply('pl-1');
        await waitFor(() => responses(c.buf).length >= 2 || c.closed, 3000);
        const r = responses(c.buf);
        assert.equal(r.length, 2, `two answers in order, got: ${c.buf}`);
        assert.equal(r[0].status, 200);
        assert.deepStrictEqual(r[0].json, v1, 'first the held query, with the new version');
        assert.equal(r[0].headers['x-gotuned-index'], '1');
        assert.equal(r[1].status, 200);
        assert.deepStrictEqual(r[1].json, { status: 'ok' }, 'then /healthz');
    } finally {
        c.sock.destroy();
    }
});

/* ======================================================== push on contact */

test('push on contact: the answer carries the current version when the agent runs another', async () => {
    let t = await push('pc-1', FAST4);
    assert.ok(!('config' in t), 'version 0 and nothing applied: no config');
    const v1 = await apply('pc-1');

    const same = await srv.post('/api/v1/telemetry', batch('pc-1', { ...FAST4, applied_version: 1 }));
    t = assertJson(same);
    assert.strictEqual(t.config_version, 1);
    assert.ok(!('config' in t), `applied_version = current: no config (${same.text})`);
    assert.equal(index(same), '1', 'telemetry answers carry X-Gotuned-Index');

    const older = await srv.post('/api/v1/telemetry', batch('pc-1', { ...FAST4, applied_version: 0 }));
    t = assertJson(older);
    assert.deepStrictEqual(t.config, v1, 'applied_version 0 ≠ 1: the current version object');
    assert.equal(index(older), '1');
    t = await push('pc-1', { ...FAST4, applied_version: 7 });
    assert.deepStrictEqual(t.config, v1, 'a version from a reset store: the current one');

    // text/plain: ?applied_version=
    const line = 'SCHED 1ms: gomaxprocs=4 idleprocs=0 threads=6 spinningthreads=0 idlethreads=1 runqueue=0 [1 0 1 0]\n';
    const text = (id, q) => srv.req('POST', `/api/v1/telemetry?agent=${id}&service=fast&cpu_limit=4${q}`,
        { body: line, headers: { 'Content-Type': 'text/plain' } });
    let r = await text('pc-1', '&applied_version=1');
    t = assertJson(r);
    assert.strictEqual(t.accepted, 1);
    assert.ok(!('config' in t), `text, applied_version=1: no config (${r.text})`);
    assert.equal(index(r), '1');
    r = await text('pc-1', '&applied_version=0');
    assert.deepStrictEqual(assertJson(r).config, v1, 'text, applied_version=0: config');
    assertError(await text('pc-1', '&applied_version=-1'), 400, 'bad_request', 'applied_version');
    assertError(await text('pc-1', '&applied_version=x'), 400, 'bad_request', 'applied_version');
    assertError(await srv.post('/api/v1/telemetry', batch('pc-1', { ...FAST4, applied_version: -1 })),
        422, 'invalid', 'agent.applied_version');
    assertError(await srv.post('/api/v1/telemetry', batch('pc-1', { ...FAST4, applied_version: '1' })),
        422, 'invalid', 'agent.applied_version');

    // without applied_version the last ACK counts
    await push('pc-2', FAST4);
    const w1 = await apply('pc-2');
    t = await push('pc-2', FAST4);
    assert.deepStrictEqual(t.config, w1, 'never ACKed: config');
    assertJson(await ack('pc-2', 1));
    t = await push('pc-2', FAST4);
    assert.ok(!('config' in t), 'ACKed the current version: no config');
    const w2 = assertJson(await srv.put('/api/v1/agents/pc-2/override', { gomaxprocs: 3 }), OVERRIDE_OK);
    t = await push('pc-2', FAST4);
    assert.deepStrictEqual(t.config, w2, 'last ACK 1, current 2: config');
    r = await text('pc-2', '');
    assert.deepStrictEqual(assertJson(r).config, w2, 'text without applied_version: the last ACK counts');
});

/* ============================================================ ACK / NACK */

test('ACK: the agent view follows; an ack event; repeating it changes nothing', async () => {
    await push('ak-1', FAST4);
    await apply('ak-1');
    let a = await view('ak-1');
    assert.strictEqual(a.desired_version, 1);
    assert.strictEqual(a.applied_version, 0);
    assert.equal(typeof a.out_of_date_since_ms, 'number', 'behind: out_of_date_since_ms');
    assert.ok(typeof a.out_of_date_s === 'number' && a.out_of_date_s >= 0, 'behind: out_of_date_s');
    assert.strictEqual(a.last_nack, null);

    const t0 = Date.now();
    const res = await ack('ak-1', 1);
    a = assertJson(res);
    assert.equal(a.id, 'ak-1', 'the answer is the agent object');
    assert.strictEqual(a.applied_version, 1);
    assert.strictEqual(a.desired_version, 1);
    assert.strictEqual(a.config_version, 1);
    assert.strictEqual(a.out_of_date_since_ms, null);
    assert.strictEqual(a.out_of_date_s, null);
    assert.ok(a.applied_ms >= t0 - 1000 && a.applied_ms <= Date.now() + 1000, 'applied_ms is now');
    assert.deepStrictEqual(timelessView(await view('ak-1')), timelessView(a));

    let acks = await events('ak-1', 'ack');
    assert.equal(acks.length, 1, 'one ack event');
    assert.equal(acks[0].actor, 'agent');
    assert.equal(acks[0].agent, 'ak-1');
    assert.ok(acks[0].before && typeof acks[0].before === 'object', 'ack event: before');
    assert.ok(acks[0].after && typeof acks[0].after === 'object', 'ack event: after');
    assert.strictEqual(acks[0].after.applied_version ?? acks[0].after.version, 1, `ack event after: ${JSON.stringify(acks[0].after)}`);

    const snap = await snapshot(srv, ['ak-1']);
    assert.deepStrictEqual(timelessView(assertJson(await ack('ak-1', 1))), timelessView(a));
    await assertUnchanged(srv, snap, ['ak-1'], 'the same ACK again');
    acks = await events('ak-1', 'ack');
    assert.equal(acks.length, 1, 'repeating the ACK adds no event');
});

/* The agent object as the ACK answers it: without what time changes and
 * without the "config" GET /agents/{id} adds. */
function timelessView(a) {
    const { out_of_date_s: _, config: __, ...rest } = a;
    return rest;
}

test('ACK: unknown versions → 409 unknown_version, bad bodies → 422/400, nothing changes', async () => {
    await push('ak-2', FAST4);
    await apply('ak-2');
    const ids = ['ak-2'];
    const snap = await snapshot(srv, ids);
    for (const body of [{ version: 2, status: 'applied' }, { version: 99, status: 'rejected', error: 'x' }]) {
        const e = assertError(await srv.post('/api/v1/agents/ak-2/ack', body), 409, 'unknown_version');
        assert.ok(e.field === null || e.field === 'version', `field: ${e.field}`);
        await assertUnchanged(srv, snap, ids, JSON.stringify(body));
    }
    const cases = [
        [{ status: 'applied' }, 'version'],
        [{ version: 0, status: 'applied' }, 'version'],
        [{ version: -1, status: 'applied' }, 'version'],
        [{ version: '1', status: 'applied' }, 'version'],
        [{ version: 1.5, status: 'applied' }, 'version'],
        [{ version: 1 }, 'status'],
        [{ version: 1, status: 'ok' }, 'status'],
        [{ version: 1, status: 'APPLIED' }, 'status'],
        [{ version: 1, status: 1 }, 'status'],
        [{ version: 1, status: 'applied', error: 'no' }, 'error'],
        [{ version: 1, status: 'rejected', error: 'e'.repeat(1024) }, 'error'],
        [{ version: 1, status: 'rejected', error: 7 }, 'error'],
        [{ version: 1, status: 'applied', extra: true }, 'extra'],
    ];
    for (const [body, field] of cases) {
        const res = await srv.post('/api/v1/agents/ak-2/ack', body);
        try {
            assertError(res, 422, 'invalid', field);
        } catch (e) {
            e.message = `${JSON.stringify(body).slice(0, 120)}: ${e.message}`;
            throw e;
        }
        await assertUnchanged(srv, snap, ids, JSON.stringify(body).slice(0, 120));
    }
    const json = { 'Content-Type': 'application/json' };
    assertError(await srv.req('POST', '/api/v1/agents/ak-2/ack', { body: '', headers: json }), 400, 'malformed_json');
    assertError(await srv.req('POST', '/api/v1/agents/ak-2/ack', { body: '{"version":1', headers: json }), 400, 'malformed_json');
    assertError(await srv.req('POST', '/api/v1/agents/ak-2/ack',
        { body: 'version=1', headers: { 'Content-Type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported_media_type');
    await assertUnchanged(srv, snap, ids, 'malformed ACKs');
    assertError(await ack('ak-nobody', 1), 404, 'not_found');

    // the longest error allowed (1023 bytes) is kept whole
    const long = 'e'.repeat(1023);
    const a = assertJson(await ack('ak-2', 1, 'rejected', long));
    assert.strictEqual(a.last_nack.error, long);
});

test('NACK: last_nack; the NACKed version is not pushed again, a newer one is', async () => {
    await push('nk-1', FAST4);
    await apply('nk-1');
    assertJson(await ack('nk-1', 1));
    const v2 = assertJson(await srv.put('/api/v1/agents/nk-1/override', { gomaxprocs: 64 }), OVERRIDE_OK);
    assert.strictEqual(v2.version, 2);
    let t = await push('nk-1', { ...FAST4, applied_version: 1 });
    assert.deepStrictEqual(t.config, v2, 'before the NACK, version 2 is pushed');

    const t0 = Date.now();
    const msg = 'GOMAXPROCS=64 exceeds the CPU quota';
    const a = assertJson(await ack('nk-1', 2, 'rejected', msg));
    assert.equal(a.last_nack.version, 2);
    assert.equal(a.last_nack.error, msg);
    assert.ok(a.last_nack.ms >= t0 - 1000 && a.last_nack.ms <= Date.now() + 1000, 'last_nack.ms is now');
    assert.strictEqual(a.applied_version, 1);
    assert.strictEqual(a.desired_version, 2);
    assert.equal(typeof a.out_of_date_since_ms, 'number');
    assert.ok(typeof a.out_of_date_s === 'number' && a.out_of_date_s >= 0, `out_of_date_s: ${a.out_of_date_s}`);
    let nacks = await events('nk-1', 'nack');
    assert.equal(nacks.length, 1);
    assert.equal(nacks[0].actor, 'agent');
    assert.ok(nacks[0].after && typeof nacks[0].after === 'object');
    assert.ok(JSON.stringify(nacks[0].after).includes('exceeds the CPU quota'), `nack event after holds the error: ${JSON.stringify(nacks[0].after)}`);

    t = await push('nk-1', { ...FAST4, applied_version: 1 });
    assert.ok(!('config' in t), 'the NACKed version is not pushed again');
    t = await push('nk-1', FAST4);
    assert.ok(!('config' in t), 'nor without applied_version');

    // the same NACK again: nothing new
    const snap = await snapshot(srv, ['nk-1']);
    assertJson(await ack('nk-1', 2, 'rejected', msg));
    await assertUnchanged(srv, snap, ['nk-1'], 'the same NACK again');
    nacks = await events('nk-1', 'nack');
    assert.equal(nacks.length, 1, 'repeating the NACK adds no event');

    const v3 = assertJson(await srv.put('/api/v1/agents/nk-1/override', { gomaxprocs: 4 }), OVERRIDE_OK);
    t = await push('nk-1', { ...FAST4, applied_version: 1 });
    assert.deepStrictEqual(t.config, v3, 'a newer version is pushed');
});

/* ================================================================= modes */

test('mode auto: a version without any apply, and another when telemetry changes the need', async () => {
    await push('md-auto', FAST4);
    const a = assertJson(await srv.put('/api/v1/agents/md-auto/mode', { mode: 'auto' }));
    assert.equal(a.mode, 'auto');
    assert.equal(a.mode_source, 'agent');
    let vs = await versions('md-auto');
    assert.deepStrictEqual(vs.map((v) => [v.version, v.source]), [[1, 'tuner']], 'switching to auto made a tuner version');
    assert.deepStrictEqual(vs[0].config, CFG4);
    assert.strictEqual((await view('md-auto')).config_version, 1);

    const t = await push('md-auto', FAST2);
    assert.strictEqual(t.config_version, 2, 'the push made version 2');
    assert.strictEqual(t.config.version, 2, 'and carries it');
    vs = await versions('md-auto');
    assert.deepStrictEqual(vs.map((v) => [v.version, v.source]), [[2, 'tuner'], [1, 'tuner']]);
    assert.deepStrictEqual(vs[0].config, CFG2);
    const ev = (await events('md-auto', 'config_version')).find((e) => e.after && e.after.version === 2);
    assert.ok(ev, 'a config_version event for version 2');
    assert.equal(ev.actor, 'tuner');
    assert.equal(ev.after.source, 'tuner');
    assert.deepStrictEqual(ev.after.config, CFG2);
    assert.ok(Array.isArray(ev.after.reasons) && ev.after.reasons.length > 0, 'the event has the reasons');
    assert.deepStrictEqual(ev.after.reasons, vs[0].reasons, 'the same reasons as the version');
    assert.deepStrictEqual(ev.before, { version: 1, config: CFG4 });

    // the guards still hold: min_interval_s 60 in service svc
    await push('md-slow', { cpu_limit: 4 });
    assertJson(await srv.put('/api/v1/agents/md-slow/mode', { mode: 'auto' }));
    assert.strictEqual((await view('md-slow')).config_version, 1);
    const t2 = await push('md-slow', { cpu_limit: 2 });
    assert.strictEqual(t2.config_version, 1, 'within min_interval_s: no tuner version');
});

test('mode default follows the service policy: one PUT gives its auto agents their versions', async () => {
    for (const id of ['md-d1', 'md-d2', 'md-own', 'md-new'])
        await push(id, { service: 'dflt', cpu_limit: 4 });
    // docs/delivery.md: "An agent's own mode is default until set"
    const fresh = await view('md-new');
    assert.equal(fresh.mode, 'recommend', 'a new agent: the global mode.default');
    assert.equal(fresh.mode_source, 'policy', 'a new agent follows its policy');
    for (const id of ['md-d1', 'md-d2']) {
        const a = assertJson(await srv.put(`/api/v1/agents/${id}/mode`, { mode: 'default' }));
        assert.equal(a.mode, 'recommend', 'mode shows the effective mode (global default)');
        assert.equal(a.mode_source, 'policy');
    }
    const own = assertJson(await srv.put('/api/v1/agents/md-own/mode', { mode: 'recommend' }));
    assert.equal(own.mode_source, 'agent');

    assertStatus(await srv.put('/api/v1/services/dflt/policy', { mode: { default: 'auto' } }), 200);
    for (const id of ['md-d1', 'md-d2', 'md-new']) {
        const a = await view(id);
        assert.equal(a.mode, 'auto', `${id}: effective mode`);
        assert.equal(a.mode_source, 'policy', `${id}: mode_source`);
        assert.strictEqual(a.config_version, 1, `${id}: the policy PUT made a version`);
        const vs = await versions(id);
        assert.deepStrictEqual(vs.map((v) => v.source), ['tuner']);
        assert.deepStrictEqual(vs[0].config, CFG4);
    }
    const o = await view('md-own');
    assert.equal(o.mode, 'recommend');
    assert.equal(o.mode_source, 'agent');
    assert.strictEqual(o.config_version, 0, 'an agent with its own mode recommend got nothing');
    const listed = listOf(assertJson(await srv.get('/api/v1/agents?service=dflt')), 'agents');
    assert.deepStrictEqual(listed.map((x) => [x.id, x.mode, x.mode_source]),
        [['md-d1', 'auto', 'policy'], ['md-d2', 'auto', 'policy'], ['md-new', 'auto', 'policy'],
            ['md-own', 'recommend', 'agent']]);
});

test('mode pinned: apply → 409 pinned, telemetry makes no version, override still works', async () => {
    await push('md-pin', FAST4);
    const a = assertJson(await srv.put('/api/v1/agents/md-pin/mode', { mode: 'pinned' }));
    assert.equal(a.mode, 'pinned');
    const snap = await snapshot(srv, ['md-pin']);
    assertError(await srv.post('/api/v1/agents/md-pin/apply', undefined), 409, 'pinned');
    assertError(await srv.post('/api/v1/agents/md-pin/apply', { force: true }), 409, 'pinned');
    await assertUnchanged(srv, snap, ['md-pin'], 'apply on a pinned agent');
    const t = await push('md-pin', FAST2);
    assert.strictEqual(t.config_version, 0, 'no version from telemetry');
    const v = assertJson(await srv.put('/api/v1/agents/md-pin/override', { gomaxprocs: 3 }), OVERRIDE_OK);
    assert.strictEqual(v.version, 1);
    assert.equal(v.source, 'override');

    // pinned through the policy's mode.default
    assertStatus(await srv.put('/api/v1/services/pinsvc/policy', { mode: { default: 'pinned' } }), 200);
    await push('md-pin2', { service: 'pinsvc', cpu_limit: 4 });
    const b = assertJson(await srv.put('/api/v1/agents/md-pin2/mode', { mode: 'default' }));
    assert.equal(b.mode, 'pinned');
    assert.equal(b.mode_source, 'policy');
    assertError(await srv.post('/api/v1/agents/md-pin2/apply', undefined), 409, 'pinned');

    const snap2 = await snapshot(srv, ['md-pin']);
    for (const mode of ['manual', 'Default', '', null, 3])
        assertError(await srv.put('/api/v1/agents/md-pin/mode', { mode }), 422, 'invalid', 'mode');
    await assertUnchanged(srv, snap2, ['md-pin'], 'invalid modes');
});

/* ============================================== verification and rollback */

test('verification (runq): passed records the gain; failed rolls back and cools down', async () => {
    const id = 'vf-1';
    await push(id, VER4, samples(6, [1, 1, 1, 1]));
    const v1 = await apply(id);
    assert.deepStrictEqual(v1.config, CFG4);
    let a = assertJson(await ack(id, 1));
    assert.ok(a.verification, 'the ACK starts a verification');
    assert.strictEqual(a.verification.version, 1);
    assert.strictEqual(a.verification.before.samples, 5, 'the before window is verify.window samples');
    assert.strictEqual(a.verification.before.runq_per_p, 1);
    assert.strictEqual(a.verification.before.sched_latency_p99_us, null);
    assert.strictEqual(a.last_verdict, null);
    await sleep(5);

    await push(id, VER4, samples(4, [1, 1, 0, 0]));
    a = await view(id);
    assert.ok(a.verification, '4 of 5 after-samples: still pending');
    assert.strictEqual(a.last_verdict, null);
    await push(id, VER4, samples(1, [1, 1, 0, 0]));
    a = await view(id);
    assert.strictEqual(a.verification, null, 'the fifth sample finishes it');
    assert.equal(a.last_verdict.version, 1);
    assert.equal(a.last_verdict.verdict, 'passed');
    assert.equal(a.last_verdict.metric, 'runq_per_p');
    assert.strictEqual(a.last_verdict.before, 1);
    assert.strictEqual(a.last_verdict.after, 0.5);
    assert.strictEqual(a.last_verdict.gain_pct, 50, 'the gain is recorded on the agent too');
    assert.strictEqual(a.config_version, 1, 'a pass changes no version');
    let ver = await events(id, 'verification');
    assert.equal(ver.length, 1);
    assert.equal(ver[0].actor, 'verifier');
    assert.equal(ver[0].after.verdict, 'passed');
    assert.equal(ver[0].after.metric, 'runq_per_p');
    assert.strictEqual(ver[0].after.before, 1);
    assert.strictEqual(ver[0].after.after, 0.5);
    assert.ok(Math.abs(ver[0].after.gain_pct - 50) < 1e-6, `gain_pct: ${ver[0].after.gain_pct}`);
    assert.notEqual(ver[0].after.action, 'rollback');

    // version 2 from a tighter CPU limit, and it makes things worse
    await push(id, VER2);
    const v2 = await apply(id);
    assert.strictEqual(v2.version, 2);
    assert.deepStrictEqual(v2.config, CFG2);
    a = assertJson(await ack(id, 2));
    assert.strictEqual(a.verification.version, 2);
    assert.strictEqual(a.verification.before.runq_per_p, 0.5);
    await sleep(5);
    const t0 = Date.now();
    const t = await push(id, VER2, samples(5, [8, 9, 7, 8]));
    assert.strictEqual(t.config_version, 3, 'the push that failed the verification made version 3');
    assert.strictEqual(t.config && t.config.version, 3, 'and carries it to the agent');

    const vs = await versions(id);
    assert.deepStrictEqual(vs.map((v) => [v.version, v.source]), [[3, 'rollback'], [2, 'operator'], [1, 'operator']]);
    assert.deepStrictEqual(vs[0].config, v1.config, 'version 3 has the config of version 1');
    a = await view(id);
    assert.strictEqual(a.config_version, 3);
    assert.equal(a.last_verdict.version, 2);
    assert.equal(a.last_verdict.verdict, 'failed');
    assert.strictEqual(a.last_verdict.before, 0.5);
    assert.strictEqual(a.last_verdict.after, 8);
    assert.strictEqual(a.last_verdict.gain_pct, -1500, 'a loss is a negative gain');
    assert.ok(a.cooldown, 'cooldown after a rollback');
    assert.deepStrictEqual(a.cooldown.rejected, CFG2, 'the values version 2 introduced are rejected');
    assert.ok(a.cooldown.until_ms > Date.now() + 3500 * 1000 && a.cooldown.until_ms <= Date.now() + 3600 * 1000 + 1000,
        `cooldown.until_ms is verify.cooldown_s (3600 s) ahead: ${a.cooldown.until_ms - t0}`);

    ver = await events(id, 'verification');
    assert.equal(ver.length, 2);
    const f = ver[1];
    assert.equal(f.actor, 'verifier');
    assert.equal(f.after.verdict, 'failed');
    assert.equal(f.after.metric, 'runq_per_p');
    assert.strictEqual(f.after.before, 0.5);
    assert.strictEqual(f.after.after, 8);
    assert.equal(typeof f.after.change_pct, 'number');
    assert.equal(f.after.action, 'rollback');
    const rb = (await events(id, 'config_version')).find((e) => e.after && e.after.version === 3);
    assert.ok(rb, 'a config_version event for version 3');
    assert.equal(rb.actor, 'verifier');
    assert.equal(rb.after.source, 'rollback');
    assert.equal(rb.after.rolled_back, 2, 'the rollback\'s own members are there too');
    assert.ok(Array.isArray(rb.after.reasons) && rb.after.reasons.length === 1, 'one reason: the verification');

    const rec = assertJson(await srv.get(`/api/v1/agents/${id}/recommendation`));
    const held = rec.held.filter((h) => h.guard === 'cooldown');
    assert.ok(held.some((h) => h.field === 'gomaxprocs' && h.wanted === 2 && h.current === 4),
        `the rejected GOMAXPROCS is held by the cooldown: ${JSON.stringify(rec.held)}`);
    assert.ok(held.some((h) => h.field === 'pool.workers' && h.wanted === 2),
        `the rejected pool.workers is held by the cooldown: ${JSON.stringify(rec.held)}`);
    assert.strictEqual(rec.changes, false);
    assertError(await srv.post(`/api/v1/agents/${id}/apply`, undefined), 409, 'no_change');

    // the ACK of a rollback version starts no verification
    a = assertJson(await ack(id, 3));
    assert.strictEqual(a.applied_version, 3);
    assert.strictEqual(a.verification, null, 'a rollback version is not verified');
});

test('verification (latency p99): a worse p99 rolls version 1 back to the empty config', async () => {
    const id = 'vf-lat';
    const lat = (p99) => ({ sched_latency_us: { p50: 20, p99 } });
    await push(id, VER4, samples(6, [1, 1, 1, 1], lat(100)));
    await apply(id);
    let a = assertJson(await ack(id, 1));
    assert.strictEqual(a.verification.before.sched_latency_p99_us, 100);
    await sleep(5);
    const t = await push(id, VER4, samples(5, [1, 1, 1, 1], lat(1000)));
    assert.strictEqual(t.config_version, 2);
    const vs = await versions(id);
    assert.deepStrictEqual(vs.map((v) => [v.version, v.source]), [[2, 'rollback'], [1, 'operator']]);
    assert.deepStrictEqual(vs[0].config, {}, 'rolling back version 1 gives the empty config');
    a = await view(id);
    assert.equal(a.last_verdict.verdict, 'failed');
    assert.equal(a.last_verdict.metric, 'sched_latency_p99_us');
    assert.strictEqual(a.last_verdict.before, 100);
    assert.strictEqual(a.last_verdict.after, 1000);
    assert.deepStrictEqual(a.cooldown.rejected, CFG4);
    const ev = (await events(id, 'verification'))[0];
    assert.equal(ev.actor, 'verifier');
    assert.equal(ev.after.verdict, 'failed');
    assert.equal(ev.after.metric, 'sched_latency_p99_us');
    assert.strictEqual(ev.after.before, 100);
    assert.strictEqual(ev.after.after, 1000);
    assert.equal(ev.after.action, 'rollback');
    const rb = (await events(id, 'config_version')).find((e) => e.after && e.after.version === 2);
    assert.equal(rb.actor, 'verifier');
    assert.equal(rb.after.source, 'rollback');
    assertError(await srv.post(`/api/v1/agents/${id}/apply`, undefined), 409, 'no_change');
});

test('verification: a sample without latency falls back to runq; fewer than half a window before → skipped', async () => {
    // one after-sample without sched_latency_us: the run queues decide (equal: passed)
    const id = 'vf-mix';
    const lat = (p99) => ({ sched_latency_us: { p50: 20, p99 } });
    await push(id, VER4, samples(6, [1, 1, 1, 1], lat(100)));
    await apply(id);
    assertJson(await ack(id, 1));
    await sleep(5);
    await push(id, VER4, [...samples(4, [1, 1, 1, 1], lat(5000)), sample([1, 1, 1, 1])]);
    let a = await view(id);
    assert.equal(a.last_verdict.metric, 'runq_per_p');
    assert.equal(a.last_verdict.verdict, 'passed');
    assert.strictEqual(a.config_version, 1);

    // 2 samples before the ACK with a window of 5 (3 needed): skipped, no rollback
    const sk = 'vf-skip';
    await push(sk, VER4, samples(2, [1, 1, 1, 1]));
    await apply(sk);
    a = assertJson(await ack(sk, 1));
    assert.strictEqual(a.verification.before.samples, 2);
    await sleep(5);
    await push(sk, VER4, samples(5, [8, 9, 7, 8]));
    a = await view(sk);
    assert.equal(a.last_verdict.verdict, 'skipped');
    assert.strictEqual(a.config_version, 1, 'a skipped verification rolls nothing back');
    assert.strictEqual(a.verification, null);
    assert.strictEqual(a.cooldown, null);
    const ev = (await events(sk, 'verification'))[0];
    assert.equal(ev.after.verdict, 'skipped');
    assert.notEqual(ev.after.action, 'rollback');
});

test('verification: a new version abandons a pending one; a rollback drops an override of a rejected value', async () => {
    // docs/delivery.md: "A new version before the after window is full
    // abandons the pending verification."
    await push('vf-new', VER4, samples(6));
    await apply('vf-new');
    let a = assertJson(await ack('vf-new', 1));
    assert.strictEqual(a.verification.version, 1);
    assertJson(await srv.put('/api/v1/agents/vf-new/override', { gomaxprocs: 3 }), OVERRIDE_OK);
    a = await view('vf-new');
    assert.strictEqual(a.verification, null, 'version 2 abandoned the verification of version 1');
    await sleep(5);
    await push('vf-new', VER4, samples(5, [8, 9, 7, 8]));
    a = await view('vf-new');
    assert.strictEqual(a.config_version, 2, 'no verdict, no rollback for an abandoned verification');
    assert.strictEqual(a.last_verdict, null);

    // docs/delivery.md: "An override that set a rejected value is dropped
    // with the rollback" (else the override guard would propose it again)
    const id = 'vf-ovr';
    await push(id, VER4, samples(6));
    const v1 = await apply(id);
    const v2 = assertJson(await srv.put(`/api/v1/agents/${id}/override`, { gomaxprocs: 6 }), OVERRIDE_OK);
    assert.strictEqual(v2.config.gomaxprocs, 6);
    assertJson(await ack(id, 2));
    await sleep(5);
    const t = await push(id, VER4, samples(5, [8, 9, 7, 8]));
    assert.strictEqual(t.config_version, 3, 'the failed override version was rolled back');
    a = await view(id);
    assert.deepStrictEqual(a.cooldown.rejected, { gomaxprocs: 6 });
    assert.deepStrictEqual(a.config.config, v1.config);
    assert.deepStrictEqual(a.override, {}, 'the override that set the rejected GOMAXPROCS 6 is dropped');
    const rec = assertJson(await srv.get(`/api/v1/agents/${id}/recommendation`));
    assert.notStrictEqual(rec.config.gomaxprocs, 6, `the rejected value is not recommended again: ${JSON.stringify(rec.config)}`);
    assert.strictEqual(rec.changes, false);
});

test('manual rollback: version v+1 equals v-1; 409 before version 1; 404; 422', async () => {
    await push('rb-1', FAST4);
    const v1 = await apply('rb-1');
    await push('rb-1', FAST2);
    const v2 = await apply('rb-1');
    assert.strictEqual(v2.version, 2);
    const res = await srv.post('/api/v1/agents/rb-1/rollback', undefined);
    const v3 = assertJson(res, 201);
    assert.strictEqual(v3.version, 3);
    assert.equal(v3.source, 'rollback');
    assert.equal(v3.agent, 'rb-1');
    assert.deepStrictEqual(v3.config, v1.config);
    assert.equal(header(res, 'etag'), '"rb-1-v3"');
    assert.deepStrictEqual(assertJson(await srv.get('/api/v1/agents/rb-1/config')), v3);
    const a = await view('rb-1');
    assert.deepStrictEqual(a.cooldown && a.cooldown.rejected, CFG2, 'what version 2 introduced is rejected');
    const ev = (await events('rb-1', 'config_version')).find((e) => e.after && e.after.version === 3);
    assert.equal(ev.actor, 'operator');
    assert.equal(ev.after.source, 'rollback');
    assertError(await srv.post('/api/v1/agents/rb-1/apply', undefined), 409, 'no_change');

    // {} is fine too; rolling back version 1 gives the empty config
    await push('rb-2', FAST4);
    await apply('rb-2');
    const w2 = assertJson(await srv.post('/api/v1/agents/rb-2/rollback', {}), 201);
    assert.strictEqual(w2.version, 2);
    assert.deepStrictEqual(w2.config, {});

    await push('rb-0', FAST4);
    const ids = ['rb-0', 'rb-1'];
    const snap = await snapshot(srv, ids);
    assertError(await srv.post('/api/v1/agents/rb-0/rollback', undefined), 409, 'nothing_to_roll_back');
    assertError(await srv.post('/api/v1/agents/rb-1/rollback', { version: 2 }), 422, 'invalid', 'version');
    assertError(await srv.post('/api/v1/agents/rb-1/rollback', { force: true }), 422, 'invalid', 'force');
    assertError(await srv.req('POST', '/api/v1/agents/rb-1/rollback',
        { body: '{', headers: { 'Content-Type': 'application/json' } }), 400, 'malformed_json');
    await assertUnchanged(srv, snap, ids, 'refused rollbacks');
    assertError(await srv.post('/api/v1/agents/rb-nobody/rollback', undefined), 404, 'not_found');
});

/* ================================================================ events */

test('events: one agent through every kind of change, in order, with actor, ts_ms, before, after', async () => {
    const id = 'ev-1';
    const t0 = Date.now();
    await push(id, VER4, samples(6, [1, 1, 1, 1]));
    assertJson(await srv.put(`/api/v1/agents/${id}/mode`, { mode: 'pinned' }));
    assertJson(await srv.put(`/api/v1/agents/${id}/mode`, { mode: 'recommend' }));
    const v1 = await apply(id);
    const v2 = assertJson(await srv.put(`/api/v1/agents/${id}/override`, { task_timeout_ms: 5000 }), OVERRIDE_OK);
    assertJson(await ack(id, 2, 'rejected', 'task timeout refused'));
    assertJson(await ack(id, 2));
    await sleep(5);
    const t = await push(id, VER4, samples(5, [8, 9, 7, 8]));
    assert.strictEqual(t.config_version, 3, 'the failed verification rolled back');
    const v4 = assertJson(await srv.post(`/api/v1/agents/${id}/rollback`, undefined), 201);
    assert.strictEqual(v4.version, 4);
    assert.deepStrictEqual(v4.config, v2.config, 'rolling back version 3 gives version 2\'s config');
    const t1 = Date.now();

    const evs = await events(id);
    const kinds = evs.map((e) => `${e.kind}/${e.actor}${e.kind === 'config_version' ? '/' + (e.after && e.after.source) : ''}`);
    const expect = ['mode_change/operator', 'mode_change/operator',
        'config_version/operator/operator', 'config_version/operator/override',
        'nack/agent', 'ack/agent', 'verification/verifier', 'config_version/verifier/rollback',
        'config_version/operator/rollback'];
    assert.equal(evs[0].kind, 'agent_registered', `first event: ${kinds[0]}`);
    const rest = kinds.slice(1);
    // the verdict and its rollback are one commit: either order within it
    const pairSorted = (l) => {
        const out = [...l];
        const i = out.indexOf('verification/verifier');
        const j = out.indexOf('config_version/verifier/rollback');
        if (i >= 0 && j >= 0 && Math.abs(i - j) === 1)
            out.splice(Math.min(i, j), 2, 'verification/verifier', 'config_version/verifier/rollback');
        return out;
    };
    assert.deepStrictEqual(pairSorted(kinds.slice(1)), expect, `events in order: ${JSON.stringify(kinds)}`);

    let lastId = -Infinity;
    for (const e of evs) {
        assert.equal(typeof e.id, 'number');
        assert.ok(e.id > lastId, 'ids increase');
        lastId = e.id;
        assert.equal(e.agent, id);
        assert.equal(e.service, 'verify');
        assert.ok(['agent', 'operator', 'tuner', 'verifier'].includes(e.actor), `actor ${e.actor}`);
        assert.equal(typeof e.ts_ms, 'number');
        assert.ok(e.ts_ms >= t0 - 1000 && e.ts_ms <= t1 + 1000, `${e.kind}: ts_ms ${e.ts_ms} within the test`);
        assert.ok('before' in e && 'after' in e, `${e.kind}: before and after`);
    }
    const of = (kind) => evs.filter((e) => e.kind === kind);
    const [m1, m2] = of('mode_change');
    assert.ok(JSON.stringify(m1.before).includes('recommend') && JSON.stringify(m1.after).includes('pinned'), JSON.stringify(m1));
    assert.ok(JSON.stringify(m2.before).includes('pinned') && JSON.stringify(m2.after).includes('recommend'), JSON.stringify(m2));
    const cv = of('config_version');
    assert.deepStrictEqual(cv.map((e) => e.after.version), [1, 2, 3, 4]);
    for (const e of cv)
        assert.ok(e.before && typeof e.before === 'object', `config_version ${e.after.version}: before`);
    assert.deepStrictEqual(cv[0].after.config, v1.config);
    assert.deepStrictEqual(cv[1].after.config, v2.config);
    assert.deepStrictEqual(cv[2].after.config, v1.config);
    assert.deepStrictEqual(cv[3].after.config, v2.config);
    const [nack] = of('nack');
    assert.ok(JSON.stringify(nack.after).includes('task timeout refused'), JSON.stringify(nack));
    const [ackEv] = of('ack');
    assert.ok(ackEv.after && typeof ackEv.after === 'object');
    const [vfy] = of('verification');
    assert.equal(vfy.after.verdict, 'failed');
    assert.equal(vfy.after.metric, 'runq_per_p');
    assert.equal(typeof vfy.after.before, 'number');
    assert.equal(typeof vfy.after.after, 'number');
    assert.equal(typeof vfy.after.change_pct, 'number');
    assert.equal(vfy.after.action, 'rollback');

    // the kind filter
    const onlyNack = await events(id, 'nack');
    assert.deepStrictEqual(onlyNack, [nack]);
});

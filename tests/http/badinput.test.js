'use strict';
/*
 * Bad input, as data (badinput-cases.js): malformed and wrong bodies on
 * every route that takes one, numbers JSON or C cannot hold, bad ids and
 * %-escapes, path traversal on the static files, wrong methods and content
 * types, oversized and lying bodies (raw sockets), bad query parameters,
 * long URLs. Each case checks its status, error code, field and Allow
 * header, and then that nothing changed: the API's view (lib.js snapshot)
 * and a byte-for-byte dump of the SQLite database (sqlite3 .dump).
 *
 * BADINPUT_PROBE=1 prints what the server answers to each case instead of
 * checking it (to write a new case); BADINPUT_ONLY=text runs the cases
 * whose name contains text.
 */
const assert = require('node:assert');
const net = require('node:net');
const { before, after } = require('node:test');
const {
    startServer, serverTest, assertError, assertStatus, assertJson, header, batch, sample,
    postTelemetry, snapshot, sleep, OVERRIDE_OK, parseHttpResponse,
} = require('./lib');
const { dbDump } = require('./db');
const { cases } = require('./badinput-cases');

let srv;
const test = serverTest(() => [srv]);
const IDS = ['bi-1', 'bi-pin', 'bi-new'];
const PROBE = !!process.env.BADINPUT_PROBE;
const ONLY = process.env.BADINPUT_ONLY;
const ANSWER_TIMEOUT_MS = 10000;
const MAY_HANG_MS = 1500;

before(async () => {
    srv = await startServer();
});
after(async () => {
    if (srv)
        await srv.stop();
});

/* The request's bytes: the head, and the body in pieces (chunks when
 * chunked) so that sending stops as soon as an answer arrives. */
function encode(c, port) {
    if (c.raw !== undefined)
        return { head: Buffer.from(c.raw, 'latin1'), pieces: [] };
    const headers = { ...(c.headers || {}) };
    let body = c.body;
    if (body === undefined)
        body = '';
    else if (typeof body !== 'string' && !Buffer.isBuffer(body)) {
        body = JSON.stringify(body);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
            headers['Content-Type'] = 'application/json';
    }
    const data = Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
    let head = `${c.method} ${c.path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`;
    for (const [k, v] of Object.entries(headers))
        head += `${k}: ${v}\r\n`;
    head += c.chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${data.length}\r\n`;
    head += '\r\n';
    const pieces = [];
    const size = 64 * 1024;
    for (let i = 0; i < data.length; i += size) {
        const part = data.subarray(i, i + size);
        pieces.push(c.chunked ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]) : part);
    }
    if (c.chunked)
        pieces.push(Buffer.from('0\r\n\r\n'));
    return { head: Buffer.from(head, 'latin1'), pieces };
}

/* Sends one case on its own connection; resolves with the answer, or null
 * when the server closed the connection without one. Rejects when no
 * answer and no close came in time (a hang). */
function exchange(c, port) {
    const { head, pieces } = encode(c, port);
    return new Promise((resolve, reject) => {
        const recv = [];
        let closed = false;
        let failed = false;
        const sock = net.connect(port, '127.0.0.1');
        const timer = setTimeout(() => {
            sock.destroy();
            if (!c.mayHang && !c.halfClose)
                reject(new Error(`no answer and no close in ${ANSWER_TIMEOUT_MS} ms`));
        }, c.mayHang || c.halfClose ? MAY_HANG_MS : ANSWER_TIMEOUT_MS);
        sock.on('data', (d) => recv.push(d));
        sock.on('error', () => { failed = true; });
        sock.on('close', () => {
            closed = true;
            clearTimeout(timer);
            resolve(parseHttpResponse(Buffer.concat(recv)));
        });
        sock.on('connect', async () => {
            sock.write(head);
            // a server that answers on the head alone (413) gets the chance
            // to, before the body goes out and the close resets it
            for (let i = 0; i < 20 && pieces.length && !recv.length && !closed; i++)
                await new Promise((r) => setTimeout(r, 5));
            for (const p of pieces) {
                if (recv.length || closed || failed)
                    break;
                if (!sock.write(p))
                    await new Promise((r) => {
                        const t = setTimeout(r, 2000);
                        sock.once('drain', () => { clearTimeout(t); r(); });
                    });
            }
            if (c.halfClose && !closed && !failed)
                sock.end();
        });
    });
}

function check(c, res) {
    const want = [].concat(c.status);
    if (res === null) {
        assert.ok(want.includes(null), `expected status ${want.join(' or ')}, the connection closed without an answer`);
        return;
    }
    if (c.code !== undefined)
        assertError(res, want, c.code, c.field);
    else
        assertStatus(res, want);
    if (c.allow !== undefined)
        assert.strictEqual(res.headers.allow, c.allow, `Allow header: ${JSON.stringify(res.headers)}`);
}

/* The lines only one of two dumps has (enough to see what changed). */
function lineDiff(a, b) {
    const la = new Set(a.split('\n'));
    const lb = new Set(b.split('\n'));
    const out = [];
    for (const l of la)
        if (!lb.has(l))
            out.push(`- ${l}`);
    for (const l of lb)
        if (!la.has(l))
            out.push(`+ ${l}`);
    return out.slice(0, 20).join('\n');
}

async function state() {
    return { api: await snapshot(srv, IDS), db: dbDump(srv.dataDir) };
}

test('the fixture: two agents, versions, samples, policies', async () => {
    assertStatus(await srv.put('/api/v1/policy', { guards: { min_interval_s: 0 }, even: { min: 4 } }), 200);
    assertStatus(await srv.put('/api/v1/services/bi-svc/policy', { quota: { rounding: 'floor' } }), 200);
    const samples = Array.from({ length: 6 }, (_, i) => sample([i, 1, 0, 2], { ts_ms: 1733300000000 + 1000 * i }));
    await postTelemetry(srv, { agent: { ...batch('bi-1').agent, service: 'bi-svc', cpu_limit: 3.5 }, samples });
    await postTelemetry(srv, batch('bi-pin', { cpu_limit: 2 }, [sample([3, 0])]));
    const v1 = assertJson(await srv.put('/api/v1/agents/bi-1/override', { gomaxprocs: 3 }), OVERRIDE_OK);
    assert.strictEqual(v1.version, 1);
    assertStatus(await srv.put('/api/v1/agents/bi-pin/mode', { mode: 'pinned' }), 200);
    // Samples reach the database in batches (about once a second): wait
    // until the dump stops changing for longer than that.
    let prev = dbDump(srv.dataDir);
    for (let i = 0; i < 20; i++) {
        await sleep(1500);
        const now = dbDump(srv.dataDir);
        if (now === prev)
            break;
        prev = now;
    }
    assert.match(prev, /INSERT INTO/, 'the dump holds rows');
});

test(`${cases.length} bad inputs: each answered as documented, each leaving the state unchanged`, async () => {
    assert.ok(cases.length >= 100);
    const names = new Set();
    for (const c of cases) {
        assert.ok(!names.has(c.name), `duplicate case name ${c.name}`);
        names.add(c.name);
    }
    const baseline = await state();
    const failures = [];
    let ran = 0;
    for (const c of cases) {
        if (ONLY && !c.name.includes(ONLY))
            continue;
        ran++;
        let res;
        try {
            res = await exchange(c, srv.port);
            if (PROBE)
                process.stdout.write(`${c.name}: ${res ? `${res.status} ${header(res, 'allow') || ''} ${res.text.slice(0, 160)}` : 'closed'}\n`);
            else
                check(c, res);
        } catch (e) {
            failures.push(`${c.name}: ${e.message}`);
        }
        assert.ok(srv.alive(), `the server died on case "${c.name}"`);
        const now = await state();
        try {
            assert.deepStrictEqual(now.api, baseline.api, 'the API view changed');
            assert.ok(now.db === baseline.db, `the database dump changed:\n${lineDiff(baseline.db, now.db)}`);
        } catch (e) {
            // A change would taint every later case: stop here.
            assert.fail(`case "${c.name}" changed state: ${e.message}\n` +
                        `answer: ${res ? res.status + ' ' + res.text.slice(0, 300) : res}`);
        }
    }
    if (failures.length)
        assert.fail(`${failures.length} of ${ran} cases failed:\n  ${failures.join('\n  ')}`);
    process.stdout.write(`${ran} bad-input cases, state unchanged after each\n`);
});

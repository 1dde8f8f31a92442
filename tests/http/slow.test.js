'use strict';
/*
 * Slow clients: 1,000 connections that send part of a request and then
 * nothing (a quarter each: nothing at all, half a request line, half the
 * headers, headers and part of a body). While they are open, a normal
 * client's requests are answered at normal speed; after --conn-timeout
 * (3 s here) the server has closed every one of them.
 *
 * The connections come from 127.0.0.2 to 127.0.0.21, 50 from each, so that
 * the default --per-ip-limit (64) admits them all; that limit is what a
 * single slow host cannot get past (limits.test.js).
 */
const assert = require('node:assert');
const net = require('node:net');
const { after } = require('node:test');
const { startServer, serverTest, assertJson, assertStatus, batch, sample, sleep } = require('./lib');

const IDLE = 1000;
const SOURCES = 20;             // 127.0.0.2 .. 127.0.0.21
const TIMEOUT_S = 3;
const ROUNDS = 20;

let srv;
const test = serverTest(() => [srv]);
const socks = [];
after(async () => {
    for (const s of socks)
        s.sock.destroy();
    if (srv)
        await srv.stop();
});

const PARTIAL = [
    '',
    'GET /api/v1/ag',
    'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Partial: ab',
    'POST /api/v1/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        'Content-Length: 500\r\n\r\n{"agent":{"id":"slow-',
];

function openIdle(port, i) {
    return new Promise((resolve, reject) => {
        const sock = net.connect({ port, host: '127.0.0.1', localAddress: `127.0.0.${2 + (i % SOURCES)}` });
        const entry = { sock, closedAt: null, got: 0 };
        sock.on('data', (d) => { entry.got += d.length; });
        sock.on('error', () => {});
        sock.on('close', () => { entry.closedAt = Date.now(); });
        sock.once('connect', () => {
            const part = PARTIAL[i % PARTIAL.length];
            if (part)
                sock.write(part);
            resolve(entry);
        });
        sock.once('error', reject);
    });
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

test(`${IDLE} slow connections: a normal client is served at normal speed, and they are closed after --conn-timeout`, async () => {
    srv = await startServer({ args: ['--conn-timeout', String(TIMEOUT_S)] });

    // the normal client's latency with nothing else going on
    const timed = async (fn) => {
        const t = process.hrtime.bigint();
        await fn();
        return Number(process.hrtime.bigint() - t) / 1e6;
    };
    const round = async (i) => [
        await timed(async () => assertStatus(await srv.get('/healthz'), 200)),
        await timed(async () => assertJson(await srv.post('/api/v1/telemetry', batch(`normal-${i % 3}`, {}, [sample([i % 5, 1])])))),
        await timed(async () => assertJson(await srv.get('/api/v1/agents'))),
    ];
    const quiet = [];
    for (let i = 0; i < ROUNDS; i++)
        quiet.push(...await round(i));

    const opened = Date.now();
    for (let i = 0; i < IDLE; i += 100)
        socks.push(...await Promise.all(Array.from({ length: Math.min(100, IDLE - i) }, (_, k) => openIdle(srv.port, i + k))));
    const openMs = Date.now() - opened;
    await sleep(200);
    assert.strictEqual(socks.filter((s) => s.closedAt !== null).length, 0, 'no slow connection is refused or closed early');

    const busy = [];
    for (let i = 0; i < ROUNDS; i++)
        busy.push(...await round(i));
    quiet.sort((a, b) => a - b);
    busy.sort((a, b) => a - b);
    const fmt = (a) => `median ${pct(a, 0.5).toFixed(1)} ms, p95 ${pct(a, 0.95).toFixed(1)} ms, max ${a[a.length - 1].toFixed(1)} ms`;
    process.stdout.write(`slow clients: ${IDLE} opened in ${openMs} ms; normal client alone: ${fmt(quiet)}; ` +
                         `with ${IDLE} slow connections open: ${fmt(busy)}\n`);
    assert.ok(pct(busy, 0.95) < 500, `p95 latency with ${IDLE} slow connections: ${fmt(busy)}`);

    // The idle timeout closes every one of them, none much before it.
    const deadline = opened + openMs + (TIMEOUT_S + 5) * 1000;
    while (socks.some((s) => s.closedAt === null) && Date.now() < deadline)
        await sleep(100);
    const open = socks.filter((s) => s.closedAt === null).length;
    assert.strictEqual(open, 0, `${open} slow connections still open ${TIMEOUT_S + 5} s after they went idle`);
    const first = Math.min(...socks.map((s) => s.closedAt)) - opened;
    const last = Math.max(...socks.map((s) => s.closedAt)) - opened;
    process.stdout.write(`slow clients: closed by the server from ${first} to ${last} ms after the first opened\n`);
    assert.ok(first >= (TIMEOUT_S - 1) * 1000, `closed only after the timeout (first after ${first} ms)`);

    // None of the half-sent telemetry made an agent.
    const list = assertJson(await srv.get('/api/v1/agents?limit=1000'));
    assert.deepStrictEqual(list.agents.map((a) => a.id).sort(), ['normal-0', 'normal-1', 'normal-2']);
});

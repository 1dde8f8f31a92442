'use strict';
/*
 * Graceful stop: on SIGTERM the server stops accepting connections, lets a
 * request already in flight finish (here one whose body is still arriving),
 * then exits 0 with the change committed.
 */
const assert = require('node:assert');
const net = require('node:net');
const { test } = require('node:test');

const { startServer, sleep } = require('./lib');

/* Opens a connection and sends the head and the first part of a body. */
function startUpload(port, head, firstPart) {
    return new Promise((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1', () => {
            sock.write(head + firstPart);
            resolve(sock);
        });
        sock.once('error', reject);
    });
}

/* Resolves with everything the server sends until it closes or 10 s pass. */
function readAll(sock) {
    return new Promise((resolve) => {
        const parts = [];
        const timer = setTimeout(() => { sock.destroy(); resolve(Buffer.concat(parts).toString()); }, 10000);
        sock.on('data', (d) => parts.push(d));
        sock.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(parts).toString()); });
        sock.on('error', () => {});
    });
}

function canConnect(port) {
    return new Promise((resolve) => {
        const sock = net.connect(port, '127.0.0.1');
        const timer = setTimeout(() => { sock.destroy(); resolve(false); }, 2000);
        sock.once('connect', () => { clearTimeout(timer); sock.destroy(); resolve(true); });
        sock.once('error', () => { clearTimeout(timer); resolve(false); });
    });
}

test('SIGTERM finishes the request in flight, refuses new connections, exits 0', async () => {
    const srv = await startServer();
    try {
        const body = JSON.stringify({
            agent: { id: 'inflight-1', service: 'orders', num_cpu: 4 },
            samples: [{ gomaxprocs: 4, local_runq: [1, 2, 3, 4] }],
        });
        const half = Math.floor(body.length / 2);
        const head = 'POST /api/v1/telemetry HTTP/1.1\r\nHost: 127.0.0.1\r\n' +
            'Content-Type: application/json\r\nConnection: close\r\n' +
            `Content-Length: ${body.length}\r\n\r\n`;
        const sock = await startUpload(srv.port, head, body.slice(0, half));
        const answer = readAll(sock);
        await sleep(200);

        srv.signal('SIGTERM');
        await sleep(300);
        assert.ok(srv.alive(), 'the server waits for the request in flight');
        assert.strictEqual(await canConnect(srv.port), false, 'no new connections after SIGTERM');

        sock.write(body.slice(half));
        const text = await answer;
        assert.match(text, /^HTTP\/1\.1 200 /, text);
        assert.match(text, /"accepted":1/);

        const { code, signal, forced } = await srv.stop();
        assert.deepStrictEqual({ code, signal, forced }, { code: 0, signal: null, forced: false });
        assert.match(srv.stderr, /stopped/);

        // The agent it registered is there after a restart on the same data.
        const again = await startServer({ dataDir: srv.dataDir });
        try {
            const res = await again.get('/api/v1/agents/inflight-1');
            assert.strictEqual(res.status, 200, res.text);
            assert.strictEqual(res.json.samples_total, 1);
        } finally {
            await again.stop();
        }
    } finally {
        await srv.stop();
    }
});

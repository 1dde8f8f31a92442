'use strict';
/*
 * Connection caps: the per-IP connection limit and the idle connection
 * timeout (--per-ip-limit, --conn-timeout). The per-IP limit holds across
 * the whole worker pool, not per worker thread.
 */
const assert = require('node:assert');
const net = require('node:net');
const { test } = require('node:test');

const { startServer, sleep } = require('./lib');

/* Connects; resolves with the socket and a promise of its close. */
function connect(port) {
    return new Promise((resolve, reject) => {
        const sock = net.connect(port, '127.0.0.1');
        const closed = new Promise((r) => sock.once('close', () => r(Date.now())));
        sock.once('connect', () => resolve({ sock, closed }));
        sock.once('error', reject);
        sock.on('error', () => {});
    });
}

/* Sends a GET on an open socket; resolves with the status line or null if
 * the server closed the connection without answering (bounded: 3 s). */
function statusLine(sock) {
    return new Promise((resolve) => {
        let text = '';
        const timer = setTimeout(() => resolve(null), 3000);
        sock.on('data', (d) => {
            text += d;
            const nl = text.indexOf('\r\n');
            if (nl >= 0) {
                clearTimeout(timer);
                resolve(text.slice(0, nl));
            }
        });
        sock.once('close', () => { clearTimeout(timer); resolve(text ? text.split('\r\n')[0] : null); });
        sock.write('GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    });
}

test('--per-ip-limit: connections past the limit from one address are refused', async () => {
    const srv = await startServer({ args: ['--per-ip-limit', '2', '--threads', '4'] });
    const socks = [];
    try {
        socks.push(await connect(srv.port), await connect(srv.port));
        await sleep(100);
        const third = await connect(srv.port);
        socks.push(third);
        assert.strictEqual(await statusLine(third.sock), null, 'the third connection gets no answer');
        // The two within the limit are served.
        assert.strictEqual(await statusLine(socks[0].sock), 'HTTP/1.1 200 OK');
        assert.strictEqual(await statusLine(socks[1].sock), 'HTTP/1.1 200 OK');
        await socks[0].closed;
        const again = await connect(srv.port);
        socks.push(again);
        assert.strictEqual(await statusLine(again.sock), 'HTTP/1.1 200 OK', 'a slot frees when one closes');
    } finally {
        socks.forEach((s) => s.sock.destroy());
        await srv.stop();
    }
});

test('--conn-timeout: an idle connection is closed by the server', async () => {
    const srv = await startServer({ args: ['--conn-timeout', '1'] });
    try {
        const start = Date.now();
        const { sock, closed } = await connect(srv.port);
        const bounded = await Promise.race([closed, sleep(6000).then(() => null)]);
        sock.destroy();
        assert.notStrictEqual(bounded, null, 'closed within 6 s');
        const after = bounded - start;
        assert.ok(after >= 900, `not before the timeout (${after} ms)`);
    } finally {
        await srv.stop();
    }
});

'use strict';
/*
 * Helpers for the black-box HTTP tests: start the real gotuned binary
 * (process.env.GOTUNED_BIN) on a free loopback port with a fresh data
 * directory, talk to it, and stop it again.
 *
 * Rules kept here: every loop is bounded; the only processes ever signalled
 * are the ones spawned by this file, by their own PID, and only while they
 * have not been reaped yet (so a recycled PID is never hit).
 */
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const nodeTest = require('node:test');

const HEALTH_TRIES = 100;        // × HEALTH_DELAY_MS = 5 s to come up
const HEALTH_DELAY_MS = 50;
const STOP_TIMEOUT_MS = 10000;   // SIGTERM grace before SIGKILL
const KILL_TIMEOUT_MS = 5000;
const STDERR_KEEP = 256 * 1024;  // the tail of the server's stderr we keep

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Servers this process started and has not seen exit: if the test process
 * dies early, they are killed with it (by their own PID, nothing else). */
const live = new Set();
/* Data directories made here; removed at exit unless GOTUNED_KEEP_DATA is
 * set (to look at a failed run's database). */
const madeDirs = new Set();
process.on('exit', () => {
    for (const s of live)
        s.signal('SIGKILL');
    if (!process.env.GOTUNED_KEEP_DATA)
        for (const d of madeDirs)
            fs.rmSync(d, { recursive: true, force: true });
});

/* A free TCP port on 127.0.0.1: bind port 0, read it, close. */
function freePort() {
    return new Promise((resolve, reject) => {
        const srv = net.createServer();
        srv.unref();
        srv.on('error', reject);
        srv.listen(0, '127.0.0.1', () => {
            const { port } = srv.address();
            srv.close(() => resolve(port));
        });
    });
}

function freshDataDir() {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), 'gotuned-http-'));
    madeDirs.add(d);
    return d;
}

/* Resolves when the child has exited (or at once if it already has). */
function waitExit(child, timeoutMs) {
    if (child.exitCode !== null || child.signalCode !== null)
        return Promise.resolve(true);
    return new Promise((resolve) => {
        const timer = setTimeout(() => {
            child.removeListener('exit', onExit);
            resolve(false);
        }, timeoutMs);
        function onExit() {
            clearTimeout(timer);
            resolve(true);
        }
        child.once('exit', onExit);
    });
}

class Server {
    constructor(child, port, dataDir, args, ca) {
        this.child = child;
        this.pid = child.pid;
        this.port = port;
        this.dataDir = dataDir;
        this.args = args;
        this.ca = ca;           // the CA's PEM text when the server speaks HTTPS
        this.base = `${ca ? 'https' : 'http'}://127.0.0.1:${port}`;
        this.stderr = '';
        this.exited = false;
        child.stderr.setEncoding('utf8');
        child.stderr.on('data', (d) => {
            this.stderr += d;
            if (this.stderr.length > STDERR_KEEP)
                this.stderr = this.stderr.slice(-STDERR_KEEP);
        });
        child.stdout.setEncoding('utf8');
        child.stdout.on('data', (d) => {
            this.stderr += d;
            if (this.stderr.length > STDERR_KEEP)
                this.stderr = this.stderr.slice(-STDERR_KEEP);
        });
        live.add(this);
        child.on('exit', () => {
            this.exited = true;
            live.delete(this);
        });
    }

    alive() {
        return this.child.exitCode === null && this.child.signalCode === null;
    }

    /* Sends sig to our own child only, and only while it is unreaped. */
    signal(sig) {
        if (this.pid !== undefined && this.alive())
            process.kill(this.pid, sig);
    }

    /* SIGTERM, wait (bounded), then SIGKILL the same PID. Returns
     * {code, signal, forced}: forced is true when SIGTERM was not enough. */
    async stop() {
        let forced = false;
        if (this.alive()) {
            this.signal('SIGTERM');
            if (!(await waitExit(this.child, STOP_TIMEOUT_MS))) {
                forced = true;
                this.signal('SIGKILL');
                await waitExit(this.child, KILL_TIMEOUT_MS);
            }
        }
        return { code: this.child.exitCode, signal: this.child.signalCode, forced };
    }

    /* kill -9, and wait until it is gone. */
    async kill9() {
        this.signal('SIGKILL');
        await waitExit(this.child, KILL_TIMEOUT_MS);
        return { code: this.child.exitCode, signal: this.child.signalCode };
    }

    dumpStderr(label) {
        const text = this.stderr.length ? this.stderr : '(empty)';
        process.stderr.write(`\n----- gotuned stderr (pid ${this.pid}, ${label}) -----\n` +
                             `${text}\n----- end of gotuned stderr -----\n`);
    }

    /* Request helpers: resolve to {status, headers, json, text}. */
    req(method, urlPath, opts = {}) {
        return request(this.base, method, urlPath, this.ca ? { ca: this.ca, ...opts } : opts);
    }
    get(urlPath, opts) { return this.req('GET', urlPath, opts); }
    del(urlPath, opts) { return this.req('DELETE', urlPath, opts); }
    post(urlPath, json, opts = {}) { return this.req('POST', urlPath, { ...opts, json }); }
    put(urlPath, json, opts = {}) { return this.req('PUT', urlPath, { ...opts, json }); }
    raw(opts) { return rawRequest({ port: this.port, ...opts }); }
    sock(opts) { return socketRequest({ port: this.port, ...opts }); }
}

/* True when GET /healthz answers 200 within a second (over HTTPS verified
 * with ca when ca is set). */
function healthy(port, ca) {
    return new Promise((resolve) => {
        const get = ca ? https.get : http.get;
        const req = get({ host: '127.0.0.1', port, path: '/healthz', agent: false, ca,
                          headers: { Connection: 'close' }, timeout: 1000 }, (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode === 200));
            res.on('error', () => resolve(false));
        });
        req.on('timeout', () => req.destroy());
        req.on('error', () => resolve(false));
    });
}

/*
 * Starts the server binary. opts.dataDir reuses a data directory (restart
 * tests), opts.port a port (a restart where clients wait for the same
 * address); opts.args are extra command-line arguments. opts.tls =
 * { cert, key, ca } (paths) serves HTTPS with --tls-cert/--tls-key: base is
 * https:// and the request helpers verify with the CA.
 */
async function startServer(opts = {}) {
    const bin = process.env.GOTUNED_BIN;
    if (!bin)
        throw new Error('GOTUNED_BIN is not set (use `make http`)');
    if (!fs.existsSync(bin))
        throw new Error(`GOTUNED_BIN ${bin} does not exist`);
    const dataDir = opts.dataDir || freshDataDir();
    const port = opts.port || await freePort();
    const tlsArgs = opts.tls ? ['--tls-cert', opts.tls.cert, '--tls-key', opts.tls.key] : [];
    const ca = opts.tls ? fs.readFileSync(opts.tls.ca, 'utf8') : undefined;
    const args = ['--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, ...tlsArgs,
                  ...(opts.args || [])];
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const srv = new Server(child, port, dataDir, args, ca);
    const spawnError = new Promise((resolve) => child.once('error', resolve));

    for (let i = 0; i < HEALTH_TRIES; i++) {
        if (!srv.alive())
            break;
        // A plain request on its own connection, closed after the answer, so
        // that no idle keep-alive connection of ours is left counting
        // against the server's connection limits.
        if (await healthy(port, ca))
            return srv;
        const err = await Promise.race([spawnError, sleep(HEALTH_DELAY_MS).then(() => null)]);
        if (err)
            throw new Error(`cannot start ${bin}: ${err.message}`);
    }
    const why = srv.alive() ? 'did not answer GET /healthz with 200 in time'
        : `exited early (code ${child.exitCode}, signal ${child.signalCode})`;
    await srv.stop();
    throw new Error(`gotuned ${args.join(' ')} ${why}\n--- stderr ---\n${srv.stderr}`);
}

/* fetch's answer for an HTTPS request verified with opts.ca (PEM text),
 * which fetch cannot take: {status, headers (a Headers), text()}. */
function fetchWithCA(url, { method, headers, body, signal, ca }) {
    return new Promise((resolve, reject) => {
        const req = https.request(url, { method, headers, ca, agent: false, signal }, (res) => {
            const parts = [];
            res.on('data', (d) => parts.push(d));
            res.on('error', reject);
            res.on('end', () => {
                const h = new Headers();
                for (const [k, v] of Object.entries(res.headers))
                    h.set(k, Array.isArray(v) ? v.join(', ') : v);
                const text = Buffer.concat(parts).toString('utf8');
                resolve({ status: res.statusCode, headers: h, text: async () => text });
            });
        });
        req.on('error', reject);
        req.end(body);
    });
}

async function request(base, method, urlPath, opts = {}) {
    const headers = { ...(opts.headers || {}) };
    let body;
    if (opts.json !== undefined) {
        body = JSON.stringify(opts.json);
        if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
            headers['Content-Type'] = 'application/json';
    } else if (opts.body !== undefined) {
        body = opts.body;
    }
    const res = await (opts.ca ? fetchWithCA : fetch)(base + urlPath, {
        ca: opts.ca,
        method, headers, body, redirect: 'manual',
        signal: AbortSignal.timeout(opts.timeoutMs || 15000),
    });
    const text = await res.text();
    let json;
    try {
        json = text.length ? JSON.parse(text) : undefined;
    } catch (e) {
        json = undefined;
    }
    return { status: res.status, headers: res.headers, json, text };
}

/*
 * A request through node:http, for what fetch cannot do: a chunked body,
 * a body larger than the server accepts (the server may answer before it
 * has read it all and close the connection, which is fine once the answer
 * is in). chunks: array of Buffers/strings written one by one.
 * Resolves {status, headers (plain object), json, text}.
 */
function rawRequest({ port, method = 'POST', path: urlPath, headers = {}, chunks = [], timeoutMs = 15000,
    expectContinue = false }) {
    return new Promise((resolve, reject) => {
        let done = false;
        const finish = (fn, v) => {
            if (done)
                return;
            done = true;
            clearTimeout(timer);
            fn(v);
        };
        const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, headers, agent: false });
        const timer = setTimeout(() => {
            req.destroy();
            finish(reject, new Error(`no answer to ${method} ${urlPath} in ${timeoutMs} ms`));
        }, timeoutMs);
        req.on('response', (res) => {
            const parts = [];
            res.on('data', (d) => parts.push(d));
            const end = () => {
                const text = Buffer.concat(parts).toString('utf8');
                let json;
                try { json = text.length ? JSON.parse(text) : undefined; } catch (e) { json = undefined; }
                finish(resolve, { status: res.statusCode, headers: res.headers, json, text });
            };
            res.on('end', end);
            res.on('error', end);   // answer already started: keep what came
            res.on('aborted', end);
        });
        req.on('error', (e) => finish(reject, new Error(`${method} ${urlPath}: ${e.message} before any answer`)));
        const send = async () => {
            for (const c of chunks) {
                if (done || req.destroyed)
                    return;
                if (!req.write(c))
                    await new Promise((r) => {
                        const t = setTimeout(r, 2000);
                        req.once('drain', () => { clearTimeout(t); r(); });
                    });
            }
            if (!done && !req.destroyed)
                req.end();
        };
        if (expectContinue) {
            // Expect: 100-continue — the body goes only after "100 Continue";
            // a final answer instead means the body is never sent.
            req.setHeader('Expect', '100-continue');
            req.flushHeaders();
            req.on('continue', () => send().catch(() => {}));
        } else {
            send().catch(() => {});
        }
    });
}

/*
 * Sends a request over a plain socket and reads while it writes, as curl
 * does: a server may refuse an oversized body as soon as it has seen the
 * headers and close the connection, and a client that only reads after it
 * has written everything (node:http) then loses the answer to EPIPE.
 * This client stops sending once any answer has arrived, and treats a write
 * error after that as the expected end of the exchange.
 *
 * body is a Buffer or string; chunked sends it as chunks of chunkSize with
 * Transfer-Encoding: chunked, otherwise a Content-Length is sent.
 * Resolves {status, headers (lower-case names), json, text}.
 */
function socketRequest({ port, method = 'POST', path: urlPath, headers = {}, body = '', chunked = false,
    chunkSize = 64 * 1024, timeoutMs = 15000 }) {
    const data = Buffer.isBuffer(body) ? body : Buffer.from(body);
    let head = `${method} ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n`;
    for (const [k, v] of Object.entries(headers))
        head += `${k}: ${v}\r\n`;
    head += chunked ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${data.length}\r\n`;
    head += '\r\n';
    const pieces = [];
    for (let i = 0; i < data.length; i += chunkSize) {
        const part = data.subarray(i, i + chunkSize);
        pieces.push(chunked ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]) : part);
    }
    if (chunked)
        pieces.push(Buffer.from('0\r\n\r\n'));

    return new Promise((resolve, reject) => {
        const recv = [];
        let got = 0;
        let sockErr = null;
        let closed = false;
        const sock = net.connect(port, '127.0.0.1');
        const timer = setTimeout(() => {
            sock.destroy();
            reject(new Error(`no complete answer to ${method} ${urlPath} in ${timeoutMs} ms`));
        }, timeoutMs);
        sock.on('data', (d) => { recv.push(d); got += d.length; });
        sock.on('error', (e) => { sockErr = e; });
        sock.on('close', () => {
            closed = true;
            clearTimeout(timer);
            const res = parseHttpResponse(Buffer.concat(recv));
            if (res)
                resolve(res);
            else
                reject(new Error(`${method} ${urlPath}: connection closed without an answer` +
                                 (sockErr ? ` (${sockErr.code || sockErr.message})` : '')));
        });
        const waitFor = (ms, until) => new Promise((r) => {
            const t0 = Date.now();
            const tick = () => (until() || Date.now() - t0 >= ms ? r() : setTimeout(tick, 5));
            tick();
        });
        sock.on('connect', async () => {
            sock.write(head);
            // give a server that answers on the headers alone the chance to
            await waitFor(100, () => got > 0 || closed);
            for (const p of pieces) {
                if (got > 0 || closed || sockErr)
                    break;
                const ok = sock.write(p);
                await new Promise((r) => setImmediate(r));
                if (!ok)
                    await waitFor(2000, () => sock.writableLength === 0 || got > 0 || closed || sockErr);
            }
        });
    });
}

/* Parses one HTTP/1.1 response from raw bytes; null if there is none. */
function parseHttpResponse(buf) {
    const end = buf.indexOf('\r\n\r\n');
    if (end < 0)
        return null;
    const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0]);
    if (!m)
        return null;
    const headers = {};
    for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        if (i > 0)
            headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
    }
    let rest = buf.subarray(end + 4);
    if (/chunked/i.test(headers['transfer-encoding'] || '')) {
        const out = [];
        for (let guard = 0; guard < 100000 && rest.length; guard++) {
            const le = rest.indexOf('\r\n');
            if (le < 0)
                break;
            const n = parseInt(rest.subarray(0, le).toString('latin1'), 16);
            if (!n)
                break;
            out.push(rest.subarray(le + 2, le + 2 + n));
            rest = rest.subarray(le + 2 + n + 2);
        }
        rest = Buffer.concat(out);
    } else if (headers['content-length'] !== undefined) {
        rest = rest.subarray(0, Number(headers['content-length']));
    }
    const text = rest.toString('utf8');
    let json;
    try { json = text.length ? JSON.parse(text) : undefined; } catch (e) { json = undefined; }
    return { status: Number(m[1]), headers, json, text };
}

/*
 * Wraps node:test's test() so that a failing test prints the server's
 * stderr. getServers returns the servers in use (a function, because
 * restart tests replace them).
 */
function serverTest(getServers) {
    const wrap = (name, opts, fn) => {
        if (typeof opts === 'function') {
            fn = opts;
            opts = {};
        }
        return nodeTest.test(name, opts, async (t) => {
            try {
                await fn(t);
            } catch (e) {
                const list = [].concat(getServers() || []).filter(Boolean);
                for (const s of list)
                    s.dumpStderr(`failing test: ${name}`);
                throw e;
            }
        });
    };
    return wrap;
}

/* docs/api.md gives apply's status (201) but not override's. Override is a
 * PUT that replaces the agent's operator values, so it answers 200 with the
 * new version (the openapi file says so too). */
const OVERRIDE_OK = 200;

/* ------------------------------------------------------------ assertions */

function describeRes(res) {
    return `${res.status} ${res.text.length > 600 ? res.text.slice(0, 600) + '…' : res.text}`;
}

function assertStatus(res, status, msg) {
    const want = [].concat(status);
    assert.ok(want.includes(res.status),
        `${msg ? msg + ': ' : ''}expected status ${want.join(' or ')}, got ${describeRes(res)}`);
}

function contentType(res) {
    const h = res.headers;
    return (typeof h.get === 'function' ? h.get('content-type') : h['content-type']) || '';
}

function header(res, name) {
    const h = res.headers;
    return (typeof h.get === 'function' ? h.get(name) : h[name.toLowerCase()]) ?? null;
}

/*
 * An error answer: status, a JSON body {"error":{"code","message","field"}},
 * code (a string or a list of allowed codes), field (a string, null, a
 * RegExp, or undefined to not check it).
 */
function assertError(res, status, code, field) {
    assertStatus(res, status);
    assert.match(contentType(res), /^application\/json\b/i,
        `error answer must be JSON, got content-type ${contentType(res)}`);
    assert.ok(res.json && typeof res.json === 'object' && res.json.error && typeof res.json.error === 'object',
        `error body must be {"error":{...}}, got ${res.text}`);
    const e = res.json.error;
    if (code !== undefined) {
        const codes = [].concat(code);
        assert.ok(codes.includes(e.code), `error.code: expected ${codes.join(' or ')}, got ${JSON.stringify(e.code)} (${res.text})`);
    }
    assert.equal(typeof e.message, 'string', `error.message must be a string: ${res.text}`);
    assert.ok(e.message.length > 0, 'error.message must not be empty');
    assert.ok('field' in e, `error.field must be present (null or a string): ${res.text}`);
    assert.ok(e.field === null || typeof e.field === 'string', `error.field must be null or a string: ${res.text}`);
    if (field instanceof RegExp)
        assert.match(String(e.field), field, `error.field ${JSON.stringify(e.field)} does not match ${field}`);
    else if (field !== undefined)
        assert.equal(e.field, field, `error.field: expected ${JSON.stringify(field)}, got ${JSON.stringify(e.field)} (${res.text})`);
    return e;
}

function assertJson(res, status = 200) {
    assertStatus(res, status);
    assert.match(contentType(res), /^application\/json\b/i, `expected JSON, got content-type ${contentType(res)}`);
    assert.ok(res.json !== undefined, `body is not JSON: ${res.text.slice(0, 300)}`);
    return res.json;
}

/*
 * docs/api.md does not say whether a list answer is a bare array or an
 * object holding the array; accept both, with the array under `key`.
 */
function listOf(json, key) {
    if (Array.isArray(json))
        return json;
    assert.ok(json && Array.isArray(json[key]), `expected an array or an object with an array "${key}", got ${JSON.stringify(json).slice(0, 300)}`);
    return json[key];
}

/* Section-by-section merge of policy patches (later ones win). */
function mergePolicy(...layers) {
    const out = {};
    for (const l of layers)
        for (const [sec, fields] of Object.entries(l || {}))
            out[sec] = { ...(out[sec] || {}), ...fields };
    return out;
}

/*
 * docs/api.md says /api/v1/services/{name}/policy holds "a service's
 * overrides" without fixing the envelope. Accept the bare patch, or
 * {"service","override","effective"}; in the latter case check the name and,
 * when the global policy is given, that effective is global ⊕ override.
 */
function servicePatch(json, name, global) {
    if (json && typeof json === 'object' && 'override' in json && 'service' in json) {
        assert.equal(json.service, name, 'service policy answer names its service');
        if (global)
            assert.deepStrictEqual(json.effective, mergePolicy(global, json.override),
                'effective = global policy merged with the service override');
        return json.override;
    }
    return json;
}

/* --------------------------------------------------------- request data */

/* A telemetry batch for a 16-CPU agent unless facts say otherwise. */
function batch(id, facts = {}, samples = []) {
    return {
        agent: { id, service: 'svc', hostname: 'host-1', pid: 4242, runtime: 'go1.22.5',
                 num_cpu: 16, affinity: 16, ...facts },
        samples,
    };
}

function sample(localRunq, extra = {}) {
    return { gomaxprocs: localRunq.length, local_runq: localRunq, ...extra };
}

async function postTelemetry(srv, body) {
    const res = await srv.post('/api/v1/telemetry', body);
    return assertJson(res, 200);
}

/* An agent object without what changes by itself as time passes. */
function timeless(agent) {
    const { out_of_date_s: _, ...rest } = agent;
    return rest;
}

/* What a rejected request must leave alone: the agent list, the event log,
 * and for each agent id given its detail, samples and versions. */
async function snapshot(srv, ids = []) {
    const snap = {};
    const list = assertJson(await srv.get('/api/v1/agents?limit=1000'));
    snap.agents = { ...list, agents: list.agents.map(timeless) };
    snap.events = assertJson(await srv.get('/api/v1/events?limit=1000'));
    snap.policy = assertJson(await srv.get('/api/v1/policy'));
    for (const id of ids) {
        const e = encodeURIComponent(id);
        const d = await srv.get(`/api/v1/agents/${e}`);
        snap[`agent ${id}`] = d.status === 200 ? timeless(d.json) : d.status;
        const s = await srv.get(`/api/v1/agents/${e}/samples?limit=128`);
        snap[`samples ${id}`] = s.status === 200 ? s.json : s.status;
        const v = await srv.get(`/api/v1/agents/${e}/versions?limit=100`);
        snap[`versions ${id}`] = v.status === 200 ? v.json : v.status;
    }
    return snap;
}

async function assertUnchanged(srv, before, ids = [], what = '') {
    const after = await snapshot(srv, ids);
    assert.deepStrictEqual(after, before, `a rejected request changed state${what ? ' (' + what + ')' : ''}`);
}

module.exports = {
    OVERRIDE_OK, sleep, freePort, freshDataDir, startServer, request, rawRequest, serverTest,
    assertStatus, assertError, assertJson, contentType, header, listOf, mergePolicy, servicePatch,
    batch, sample, postTelemetry, snapshot, assertUnchanged, timeless, parseHttpResponse,
};

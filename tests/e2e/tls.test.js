'use strict';
/*
 * End to end over HTTPS: a throwaway CA and a server certificate for
 * 127.0.0.1 (IP SAN) made with openssl in a temporary folder, the real
 * server started with --tls-cert/--tls-key, and its clients:
 *
 *  - the server's flags: each mistake (one flag alone, a missing file, a
 *    file that is not PEM, a key others can read, a key of another
 *    certificate) stops it with a message that names the problem;
 *  - curl and Node verify the server with the CA and fail without it;
 *  - a blocking config query is held over TLS and answered after a change,
 *    and a stop answers the held ones first;
 *  - gotuned-agent with --ca and GOTUNED_TOKEN runs tests/go/agentload and
 *    its samples arrive; without --ca it logs the certificate problem and
 *    the program runs on, its output passed through;
 *  - gotuned-agent sends "Authorization: Bearer" from --token-file on every
 *    request (seen by a Node HTTPS server with the same certificate), and
 *    refuses a token file others can read;
 *  - tests/go/libagent (the Go library) with -ca and GOTUNED_TOKEN.
 *
 * The server does not check tokens here (that is --auth-file's business);
 * the clients send them anyway. No cgroup is needed.
 */
const assert = require('node:assert');
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { startServer, assertJson, postTelemetry, batch, sample, OVERRIDE_OK } = require('../http/lib.js');
const { sleep, run, waitFor, goBuild, cleanup } = require('./lib');

const BIN = process.env.GOTUNED_BIN;
const AGENT = process.env.GOTUNED_AGENT_BIN;
const TOKEN = 'e2e-tls-token-0123456789';
let dir;          // the temporary folder with the PEM files
let pki;          // { ca, cert, key, otherCa, otherKey }
let load;         // tests/go/agentload
let lib;          // tests/go/libagent
let srv;          // the HTTPS server most tests share

function openssl(...args) {
    execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/* A CA and a server certificate for 127.0.0.1 signed by it (keys 0600),
 * and another CA that signed nothing the server uses. */
function makePki() {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
    openssl('req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2',
            '-subj', '/CN=gotuned e2e CA');
    openssl('req', '-x509', ...ec, '-keyout', 'other-ca.key', '-out', 'other-ca.pem', '-days', '2',
            '-subj', '/CN=another CA');
    openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1');
    fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1\n' +
        'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n');
    openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
            '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf');
    const p = (f) => path.join(dir, f);
    for (const k of ['ca.key', 'other-ca.key', 'server.key'])
        fs.chmodSync(p(k), 0o600);
    return { ca: p('ca.pem'), cert: p('server.pem'), key: p('server.key'),
             otherCa: p('other-ca.pem'), otherKey: p('other-ca.key') };
}

before(async () => {
    assert.ok(BIN && fs.existsSync(BIN), 'GOTUNED_BIN must name the gotuned binary (make e2e sets it)');
    assert.ok(AGENT && fs.existsSync(AGENT), 'GOTUNED_AGENT_BIN must name gotuned-agent (make e2e sets it)');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gotuned-e2e-tls-'));
    pki = makePki();
    load = goBuild('agentload');
    lib = goBuild('libagent');
    srv = await startServer({ tls: { cert: pki.cert, key: pki.key, ca: pki.ca } });
});

after(async () => {
    if (srv)
        await srv.stop();
    await cleanup();
    if (dir)
        fs.rmSync(dir, { recursive: true, force: true });
});

/* Runs gotuned with args that must stop it at start; returns {code, err}.
 * A server that starts after all is killed by spawnSync's timeout. */
function refused(args) {
    const data = fs.mkdtempSync(path.join(dir, 'data-'));
    const r = spawnSync(BIN, ['--listen', '127.0.0.1:0', '--data-dir', data, ...args],
                        { encoding: 'utf8', timeout: 10000, killSignal: 'SIGKILL' });
    return { code: r.status, err: r.stderr };
}

test('the server refuses TLS flags it cannot use, saying why', () => {
    const copy = (from, name, mode) => {
        const p = path.join(dir, name);
        fs.copyFileSync(from, p);
        fs.chmodSync(p, mode);
        return p;
    };
    const openKey = copy(pki.key, 'open.key', 0o644);
    const groupKey = copy(pki.key, 'group.key', 0o640);
    const certAsKey = copy(pki.cert, 'cert-as-key.pem', 0o600);
    const cases = [
        [['--tls-cert', pki.cert], 2, '--tls-cert without --tls-key'],
        [['--tls-key', pki.key], 2, '--tls-key without --tls-cert'],
        [['--tls-cert', path.join(dir, 'none.pem'), '--tls-key', pki.key], 2, 'no such file'],
        [['--tls-cert', pki.key, '--tls-key', pki.key], 2, 'not a PEM certificate'],
        [['--tls-cert', pki.cert, '--tls-key', certAsKey], 2, 'not a PEM private key'],
        [['--tls-cert', pki.cert, '--tls-key', openKey], 2, 'readable by everyone (mode 0644)'],
        [['--tls-cert', pki.cert, '--tls-key', groupKey], 2, 'readable by its group (mode 0640)'],
        [['--tls-cert', pki.cert, '--tls-key', pki.otherKey], 1, 'do not match'],
    ];
    for (const [args, code, want] of cases) {
        const r = refused(args);
        assert.strictEqual(r.code, code, `${args.join(' ')}: exit ${r.code}, stderr:\n${r.err}`);
        assert.ok(r.err.includes(want), `${args.join(' ')}: stderr does not say "${want}":\n${r.err}`);
    }
});

test('HTTPS: verified with the CA, refused without it; the start line says tls on', async () => {
    assert.match(srv.stderr, /started .* tls on/);
    assert.ok(srv.base.startsWith('https://'));
    assertJson(await srv.get('/healthz'));

    const curl = (...args) => spawnSync('curl', ['-sS', '--max-time', '10', ...args],
                                        { encoding: 'utf8', timeout: 15000 });
    let r = curl('--cacert', pki.ca, `${srv.base}/healthz`);
    assert.strictEqual(r.status, 0, r.stderr);
    assert.deepStrictEqual(JSON.parse(r.stdout), { status: 'ok' });
    r = curl(`${srv.base}/healthz`);
    assert.strictEqual(r.status, 60, `curl without the CA: exit ${r.status} (60: peer certificate ` +
        `cannot be authenticated) ${r.stderr}`);
    r = curl('--cacert', pki.otherCa, `${srv.base}/healthz`);
    assert.strictEqual(r.status, 60, r.stderr);
    r = curl(`http://127.0.0.1:${srv.port}/healthz`);
    assert.notStrictEqual(r.status, 0, 'plain HTTP to the HTTPS port must not be answered');

    await assert.rejects(fetch(`${srv.base}/healthz`), 'Node without the CA refuses the server');
    await assert.rejects(new Promise((resolve, reject) => {
        https.get(`${srv.base}/healthz`, { ca: fs.readFileSync(pki.otherCa), agent: false }, resolve)
            .on('error', reject);
    }), /self.signed|unable to verify|certificate/i);
});

test('a blocking config query is held over TLS and answered after a change', async () => {
    await postTelemetry(srv, batch('tls-bq', {}, [sample([0, 0])]));
    let at = null;
    const held = srv.get('/api/v1/agents/tls-bq/config?index=0&wait=30s', { timeoutMs: 20000 })
        .then((res) => { at = Date.now(); return res; });
    await sleep(700);
    assert.strictEqual(at, null, 'answered while it should still be held');
    const t = Date.now();
    const v1 = assertJson(await srv.put('/api/v1/agents/tls-bq/override', { gomaxprocs: 3 }),
                          OVERRIDE_OK);
    const res = await held;
    assert.deepStrictEqual(assertJson(res), v1);
    assert.strictEqual(res.headers.get('x-gotuned-index'), String(v1.version));
    assert.ok(at - t < 2000, `answered ${at - t} ms after the change, not at once`);

    // The wait's own end comes too.
    const t2 = Date.now();
    const same = await srv.get(`/api/v1/agents/tls-bq/config?index=${v1.version}&wait=1s`);
    assert.deepStrictEqual(assertJson(same), v1);
    assert.ok(Date.now() - t2 >= 900, 'index=current&wait=1s was not held');
});

test('stopping an HTTPS server answers its held queries first', async () => {
    const s2 = await startServer({ tls: { cert: pki.cert, key: pki.key, ca: pki.ca } });
    try {
        await postTelemetry(s2, batch('tls-stop', {}, [sample([0, 0])]));
        const held = s2.get('/api/v1/agents/tls-stop/config?index=0&wait=60s', { timeoutMs: 20000 });
        await sleep(500);
        const stopped = await s2.stop();
        assert.deepStrictEqual(stopped, { code: 0, signal: null, forced: false }, s2.stderr);
        const res = await held;
        assert.strictEqual(assertJson(res).version, 0, 'answered with what there was');
        assert.match(s2.stderr, /answered 1 held requests/);
    } finally {
        await s2.stop();
    }
});

function agentArgs(id, extra, progArgs) {
    return ['--server', srv.base, '--service', 'tls', '--id', id, '--apply', 'none', ...extra,
            '--interval', '1', '--schedtrace', '100', '--', load, ...progArgs];
}

const appLines = (err) => err.split('\n').filter((l) => l.startsWith('app ')).length;

/* Waits until the server holds 5 samples of agent id, then stops proc
 * (SIGTERM) and returns {code, err}; on a timeout proc's stderr goes into
 * the failure. */
async function samplesArrive(proc, id) {
    try {
        await waitFor(`samples from ${id}`, async () => {
            const res = await srv.get(`/api/v1/agents/${id}`);
            return res.status === 200 && res.json.samples_total >= 5;
        }, 20000, 200);
    } catch (e) {
        await proc.stop('SIGTERM');
        e.message += `\n--- its stderr ---\n${proc.err().toString().slice(-2000)}`;
        throw e;
    }
    const { code } = await proc.stop('SIGTERM');
    return { code, err: proc.err().toString() };
}

test('gotuned-agent with --ca and GOTUNED_TOKEN: samples arrive over HTTPS', async () => {
    const agent = run(AGENT, agentArgs('tls-agent', ['--ca', pki.ca], ['-d', '0', '-long', '0']),
                      { env: { ...process.env, GOTUNED_TOKEN: TOKEN } });
    const { code, err } = await samplesArrive(agent, 'tls-agent');
    assert.ok(!/certificate|SSL/i.test(err), `the agent complained:\n${err.slice(-2000)}`);
    assert.ok(appLines(err) > 10, 'the program\'s output passed through');
    assert.strictEqual(code, 0, err.slice(-2000));
});

test('gotuned-agent without --ca: logs the certificate problem, the program runs on', async () => {
    const agent = run(AGENT, agentArgs('tls-noca', [], ['-d', '3s', '-long', '0', '-code', '4']),
                      { env: { ...process.env, GOTUNED_TOKEN: TOKEN } });
    const { code, signal } = await waitFor('the agent to exit', () =>
        Promise.race([agent.exited, sleep(100).then(() => null)]), 30000, 0);
    const err = agent.err().toString();
    assert.strictEqual(signal, null);
    assert.strictEqual(code, 4, `the agent exits with the program's status:\n${err.slice(-2000)}`);
    const own = err.split('\n').filter((l) => l.startsWith('gotuned-agent: '));
    assert.ok(own.some((l) => /certificate was not verified.*pass the CA .* with --ca/.test(l)),
              `no log line about the certificate:\n${own.join('\n')}`);
    assert.ok(appLines(err) > 50, `the program's output passed through (${appLines(err)} lines)`);
    assert.match(err, /app end after \d+ lines/);
    assert.strictEqual((await srv.get('/api/v1/agents/tls-noca')).status, 404,
                       'nothing reached the server');
});

test('gotuned-agent sends the --token-file token on every request; refuses an open token file', async () => {
    const tokenFile = path.join(dir, 'token');
    fs.writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    fs.chmodSync(tokenFile, 0o600);
    // A stand-in server with the same certificate that records the header.
    const seen = [];
    const fake = https.createServer({ cert: fs.readFileSync(pki.cert), key: fs.readFileSync(pki.key) },
        (req, res) => {
            seen.push(`${req.method} ${req.url.split('?')[0]} ${req.headers.authorization}`);
            req.resume();
            res.writeHead(503, { 'Content-Type': 'application/json' });
            res.end('{"error":{"code":"unavailable","message":"stand-in"}}');
        });
    await new Promise((r) => fake.listen(0, '127.0.0.1', r));
    const base = `https://127.0.0.1:${fake.address().port}`;
    try {
        const agent = run(AGENT, ['--server', base, '--service', 'tls', '--id', 'tls-tok', '--apply',
            'none', '--ca', pki.ca, '--token-file', tokenFile, '--interval', '1', '--schedtrace', '100',
            '--', load, '-d', '3s', '-long', '0'],
            { env: { ...process.env, GOTUNED_TOKEN: 'the-env-token-is-not-used' } });
        const { code } = await agent.exited;
        assert.strictEqual(code, 0, agent.err().toString().slice(-2000));
        assert.ok(seen.some((s) => s.startsWith('POST /api/v1/telemetry ')), `requests: ${seen}`);
        assert.ok(seen.some((s) => s.startsWith('GET /api/v1/agents/tls-tok/config ')), `requests: ${seen}`);
        for (const s of seen)
            assert.ok(s.endsWith(` Bearer ${TOKEN}`), `without the file's token: ${s}`);
    } finally {
        await new Promise((r) => fake.close(r));
    }

    fs.chmodSync(tokenFile, 0o644);
    const r = spawnSync(AGENT, ['--server', srv.base, '--service', 'tls', '--token-file', tokenFile,
        '--', load, '-d', '1s'], { encoding: 'utf8', timeout: 15000, killSignal: 'SIGKILL' });
    assert.strictEqual(r.status, 2, r.stderr);
    assert.match(r.stderr, /--token-file .*readable by everyone \(mode 0644\).*chmod 600/);
    assert.strictEqual(appLines(r.stderr), 0, 'the program did not start');
});

test('the Go library (libagent) with -ca and GOTUNED_TOKEN reports over HTTPS', async () => {
    const prog = run(lib, ['-server', srv.base, '-ca', pki.ca, '-service', 'tls-lib', '-id', 'tls-lib-1',
        '-interval', '300ms', '-sample', '100ms'], { env: { ...process.env, GOTUNED_TOKEN: TOKEN } });
    const { code, err } = await samplesArrive(prog, 'tls-lib-1');
    assert.ok(!/certificate/i.test(err), `the library complained:\n${err.slice(-2000)}`);
    assert.strictEqual(code, 0, err.slice(-2000));
});

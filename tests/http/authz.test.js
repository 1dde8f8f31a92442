'use strict';
/*
 * Access control (gotuned --auth-file, README "Security"):
 *   - the authorization matrix: every route × every kind of caller, with
 *     the expected statuses kept as data in authz-matrix.txt;
 *   - what the server refuses at start: a non-loopback --listen without
 *     --auth-file, an auth file others may read, a malformed one;
 *   - events name the token that acted;
 *   - service scopes: JSON and text telemetry, config and ACK, and an agent
 *     id that belongs to another service.
 */
const assert = require('node:assert');
const { spawnSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { before, after } = require('node:test');
const {
    startServer, serverTest, freePort, freshDataDir, assertStatus, assertError, assertJson,
    header, batch, sample,
} = require('./lib.js');

let srv;
const test = serverTest(() => [srv]);

const TOKENS = {
    admin: 'admin-token-0123456789abcdef',
    viewer: 'viewer.token~0123456789+/=',
    own: 'alpha-agent-token-0123456789',
    other: 'beta-agent-token-0123456789x',
};
const NAMES = { admin: 'ops-admin', viewer: 'grafana', own: 'alpha-fleet', other: 'beta-fleet' };
const sha = (t) => crypto.createHash('sha256').update(t).digest('hex');

/* Half the tokens are stored as sha256: entries, as the README suggests. */
const TOKEN_FILE = [
    '# gotuned tokens for authz.test.js',
    '',
    `${TOKENS.admin} admin ${NAMES.admin}`,
    `sha256:${sha(TOKENS.viewer)} viewer ${NAMES.viewer}   # read-only`,
    `sha256:${sha(TOKENS.own)} agent ${NAMES.own} alpha`,
    `${TOKENS.other} agent ${NAMES.other} beta`,
    '',
].join('\n');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gotuned-authz-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function writeFile(name, text, mode) {
    const p = path.join(tmp, name);
    fs.writeFileSync(p, text);
    fs.chmodSync(p, mode);
    return p;
}

before(async () => {
    const file = writeFile('tokens', TOKEN_FILE, 0o600);
    srv = await startServer({ args: ['--auth-file', file] });
});
after(async () => { if (srv) await srv.stop(); });

const COLUMNS = ['none', 'unknown', 'viewer', 'other', 'own', 'admin'];

function auth(who) {
    if (who === 'none')
        return {};
    const token = who === 'unknown' ? 'not-a-known-token-0123456789' : TOKENS[who];
    return { Authorization: `Bearer ${token}` };
}

const as = (who, method, urlPath, json) =>
    srv.req(method, urlPath, { headers: auth(who), json });

/* --------------------------------------------------------------- matrix */

function readMatrix() {
    const text = fs.readFileSync(path.join(__dirname, 'authz-matrix.txt'), 'utf8');
    const rows = [];
    text.split('\n').forEach((line, i) => {
        line = line.replace(/#.*/, '').trim();
        if (!line)
            return;
        const f = line.split(/\s+/);
        assert.equal(f.length, 2 + COLUMNS.length, `authz-matrix.txt line ${i + 1}: ${line}`);
        const want = {};
        COLUMNS.forEach((c, k) => { want[c] = Number(f[2 + k]); });
        rows.push({ method: f[0], pattern: f[1], want, line: i + 1 });
    });
    return rows;
}

/* The routes docs/openapi.yaml lists (a unit test checks it against the
 * router): "  /path:" then "    get:" lines. */
function openapiRoutes() {
    const text = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'openapi.yaml'), 'utf8');
    const out = [];
    let cur = null;
    for (const line of text.split('\n')) {
        let m = /^ {2}(\/\S*):\s*$/.exec(line);
        if (m) {
            cur = m[1];
            continue;
        }
        m = /^ {4}(get|put|post|delete):\s*$/.exec(line);
        if (m && cur)
            out.push(`${m[1].toUpperCase()} ${cur}`);
        if (/^\S/.test(line))
            cur = null;
    }
    return out.sort();
}

let seq = 0;
const fresh = (prefix) => `${prefix}-${++seq}`;

/* An agent of service alpha (as the admin: nothing here depends on the
 * cell's caller), with a CPU limit so that apply has a version to make. */
async function newAgent() {
    const id = fresh('az');
    assertJson(await as('admin', 'POST', '/api/v1/telemetry',
        batch(id, { service: 'alpha', cpu_limit: 4 }, [sample([1, 1, 1, 1])])));
    return id;
}

async function newVersion() {
    const id = await newAgent();
    assertJson(await as('admin', 'POST', `/api/v1/agents/${id}/apply`), 201);
    return id;
}

async function newServicePolicy() {
    const name = fresh('svc');
    assertJson(await as('admin', 'PUT', `/api/v1/services/${name}/policy`,
        { guards: { min_interval_s: 30 } }));
    return name;
}

/*
 * What each route needs set up before a cell, and the body it sends: a
 * real one, so an allowed caller gets the route's success status.
 */
const ROUTES = {
    'POST /api/v1/telemetry': {
        body: () => batch(fresh('tm'), { service: 'alpha' }, [sample([0, 2])]),
    },
    'GET /api/v1/agents': {},
    'GET /api/v1/agents/{id}': { id: newAgent },
    'DELETE /api/v1/agents/{id}': { id: newAgent },
    'GET /api/v1/agents/{id}/samples': { id: newAgent },
    'GET /api/v1/agents/{id}/recommendation': { id: newAgent },
    'GET /api/v1/agents/{id}/config': { id: newAgent },
    'GET /api/v1/agents/{id}/versions': { id: newAgent },
    'PUT /api/v1/agents/{id}/mode': { id: newAgent, body: () => ({ mode: 'pinned' }) },
    'PUT /api/v1/agents/{id}/override': { id: newAgent, body: () => ({ gomaxprocs: 3 }) },
    'POST /api/v1/agents/{id}/apply': { id: newAgent },
    'POST /api/v1/agents/{id}/rollback': { id: newVersion },
    'POST /api/v1/agents/{id}/ack': { id: newVersion, body: () => ({ version: 1, status: 'applied' }) },
    'GET /api/v1/policy': {},
    'PUT /api/v1/policy': { body: () => ({ guards: { min_interval_s: 60 } }) },
    'GET /api/v1/services/{name}/policy': { name: newServicePolicy },
    'PUT /api/v1/services/{name}/policy': { name: () => fresh('svc'), body: () => ({ even: { min: 6 } }) },
    'DELETE /api/v1/services/{name}/policy': { name: newServicePolicy },
    'GET /api/v1/events': {},
    'GET /healthz': {},
    'GET /readyz': {},
    'GET /metrics': {},
    'GET /': {},
};

test('the matrix has one row per route of docs/openapi.yaml, and this file knows each', () => {
    const rows = readMatrix().map((r) => `${r.method} ${r.pattern}`);
    assert.deepStrictEqual([...rows].sort(), openapiRoutes());
    assert.equal(new Set(rows).size, rows.length, 'no route twice');
    assert.deepStrictEqual(Object.keys(ROUTES).sort(), [...rows].sort());
});

test('authorization matrix: every route × {none, unknown, viewer, other, own, admin}', async () => {
    const failures = [];
    let cells = 0;
    for (const row of readMatrix()) {
        const r = ROUTES[`${row.method} ${row.pattern}`];
        assert.ok(r, `no setup for ${row.method} ${row.pattern}`);
        for (const who of COLUMNS) {
            let p = row.pattern;
            if (r.id)
                p = p.replace('{id}', await r.id());
            if (r.name)
                p = p.replace('{name}', await r.name());
            const body = r.body ? r.body() : (row.method === 'POST' ? {} : undefined);
            const res = await as(who, row.method, p, body);
            cells++;
            const want = row.want[who];
            const where = `line ${row.line}: ${row.method} ${p} as ${who}`;
            if (res.status !== want) {
                failures.push(`${where}: expected ${want}, got ${res.status} ${res.text.slice(0, 200)}`);
                continue;
            }
            try {
                if (want === 401) {
                    assertError(res, 401, 'unauthorized', null);
                    assert.match(header(res, 'www-authenticate') || '', /^Bearer\b/);
                } else if (want === 403) {
                    const e = assertError(res, 403, 'forbidden', null);
                    assert.ok(e.message.includes(NAMES[who]), `the message names the token: ${e.message}`);
                    assert.match(e.message, who === 'viewer' ? /viewer/ : /agent/);
                }
            } catch (e) {
                failures.push(`${where}: ${e.message}`);
            }
        }
    }
    assert.equal(cells, 23 * COLUMNS.length);
    assert.deepStrictEqual(failures, [], `${failures.length} of ${cells} cells differ`);
});

/* --------------------------------------------------------- scope details */

test('401 for a malformed Authorization header; 404 and 405 only after a known token', async () => {
    for (const h of ['Basic YWRtaW46YWRtaW4=', 'Bearer', 'Bearer ', `Token ${TOKENS.admin}`,
                     `Bearer ${TOKENS.admin}x`, `Bearer ${TOKENS.admin.slice(0, -1)}`,
                     `Bearer sha256:${sha(TOKENS.admin)}`, `Bearer ${'a'.repeat(300)}`]) {
        const res = await srv.get('/api/v1/agents', { headers: { Authorization: h } });
        assertError(res, 401, 'unauthorized', null);
    }
    // The scheme is case-insensitive (RFC 9110); spaces around the token are not part of it.
    assertJson(await srv.get('/api/v1/agents', { headers: { Authorization: `bearer  ${TOKENS.viewer} ` } }));
    assertError(await srv.get('/api/v1/nothing'), 401, 'unauthorized');
    assertError(await as('viewer', 'GET', '/api/v1/nothing'), 404, 'not_found');
    assertError(await srv.req('PATCH', '/api/v1/policy'), 401, 'unauthorized');
    assertError(await as('viewer', 'PATCH', '/api/v1/policy'), 405, 'method_not_allowed');
    // Public: health and the dashboard's files, even with a wrong token.
    assertJson(await srv.get('/healthz', { headers: auth('unknown') }));
    assertStatus(await srv.get('/app.js'), 200);
    assertError(await srv.req('POST', '/healthz'), 405, 'method_not_allowed');
});

test('an agent token: scope from ?service= (text), the agent\'s service (config, ACK), 404 for unknown ids', async () => {
    const text = 'SCHED 0ms: gomaxprocs=2 idleprocs=0 threads=5 spinningthreads=0 idlethreads=1 runqueue=0 [1 0]\n';
    const push = (who, service) => srv.req('POST', `/api/v1/telemetry?agent=${fresh('tx')}&service=${service}`,
        { headers: { ...auth(who), 'Content-Type': 'text/plain' }, body: text });
    assertJson(await push('own', 'alpha'));
    const e = assertError(await push('own', 'beta'), 403, 'forbidden', null);
    assert.match(e.message, /alpha-fleet.*alpha/);
    assertError(await push('other', 'alpha'), 403, 'forbidden');
    assertJson(await push('other', 'beta'));

    assertError(await as('own', 'GET', '/api/v1/agents/no-such-agent/config'), 404, 'not_found');
    assertError(await as('own', 'POST', '/api/v1/agents/no-such-agent/ack', { version: 1, status: 'applied' }),
        404, 'not_found');
});

test('an agent token cannot move another service\'s agent into its own by pushing telemetry', async () => {
    const id = await newAgent();       // service alpha
    const res = await as('other', 'POST', '/api/v1/telemetry', batch(id, { service: 'beta' }));
    assertError(res, 403, 'forbidden');
    const a = assertJson(await as('admin', 'GET', `/api/v1/agents/${id}`));
    assert.equal(a.service, 'alpha', 'the agent stays where it was');
    // The admin may move it (as an unscoped push always could).
    assertJson(await as('admin', 'POST', '/api/v1/telemetry', batch(id, { service: 'beta' })));
});

test('events name the token that acted', async () => {
    const id = fresh('ev');
    assertJson(await as('own', 'POST', '/api/v1/telemetry', batch(id, { service: 'alpha', cpu_limit: 4 })));
    assertJson(await as('admin', 'PUT', `/api/v1/agents/${id}/mode`, { mode: 'recommend' }));
    assertJson(await as('admin', 'POST', `/api/v1/agents/${id}/apply`), 201);
    assertJson(await as('own', 'POST', `/api/v1/agents/${id}/ack`, { version: 1, status: 'applied' }));
    const evs = assertJson(await as('viewer', 'GET', `/api/v1/events?agent=${id}&limit=100`)).events;
    const actors = Object.fromEntries(evs.map((e) => [e.kind, e.actor]));
    assert.deepStrictEqual(actors, {
        agent_registered: `agent:${NAMES.own}`,
        mode_change: `operator:${NAMES.admin}`,
        config_version: `operator:${NAMES.admin}`,
        ack: `agent:${NAMES.own}`,
    }, JSON.stringify(evs, null, 1));
    const svc = fresh('svc');
    assertJson(await as('admin', 'PUT', `/api/v1/services/${svc}/policy`, { even: { min: 6 } }));
    const pe = assertJson(await as('admin', 'GET', '/api/v1/events?kind=policy_change&limit=1000')).events
        .filter((e) => e.service === svc);
    assert.deepStrictEqual(pe.map((e) => e.actor), [`operator:${NAMES.admin}`]);
});

/* ------------------------------------------------------- refusing to start */

/* Runs the binary to its end (it must refuse at once): {status, stderr}. */
function runRefused(args) {
    const r = spawnSync(process.env.GOTUNED_BIN, args, { encoding: 'utf8', timeout: 10000 });
    assert.equal(r.error, undefined, `gotuned ${args.join(' ')}: ${r.error}`);
    return { status: r.status, stderr: r.stderr };
}

test('without --auth-file a non-loopback --listen is refused, and says why', async () => {
    const port = await freePort();
    for (const addr of [`0.0.0.0:${port}`, `[::]:${port}`, `192.0.2.1:${port}`]) {
        const r = runRefused(['--listen', addr, '--data-dir', freshDataDir()]);
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, /without --auth-file gotuned listens on loopback only; see README 'Security'|without --auth-file gotuned listens on loopback only \(127\.0\.0\.0\/8, ::1\); see README 'Security'/);
        assert.ok(r.stderr.includes(addr), r.stderr);
    }
});

test('with --auth-file a non-loopback --listen is allowed', async (t) => {
    const port = await freePort();
    const file = writeFile('any-addr', TOKEN_FILE, 0o600);
    const s = await startServer({ port, args: ['--listen', `0.0.0.0:${port}`, '--auth-file', file] });
    try {
        assertError(await s.get('/api/v1/agents'), 401, 'unauthorized');
        assertJson(await s.get('/api/v1/agents', { headers: auth('viewer') }));
    } finally {
        await s.stop();
    }
});

test('an auth file that group or others may read is refused', async () => {
    for (const mode of [0o644, 0o640, 0o604]) {
        const file = writeFile(`loose-${mode.toString(8)}`, TOKEN_FILE, mode);
        const r = runRefused(['--data-dir', freshDataDir(), '--auth-file', file]);
        assert.equal(r.status, 2, r.stderr);
        assert.ok(r.stderr.includes(`auth file ${file} may be read by group or others (mode 0${mode.toString(8)})`),
            r.stderr);
        assert.match(r.stderr, /chmod 600/);
    }
});

test('a malformed auth file is refused with its line number', async () => {
    const cases = [
        ['# c\n\nshort admin a\n', 3, /16 to 256 characters/],
        [`${TOKENS.admin} root a\n`, 1, /unknown role 'root'/],
        [`${TOKENS.admin} admin a\n${TOKENS.viewer} viewer a\n`, 2, /name 'a' is taken by line 1/],
        [`${TOKENS.admin} viewer v alpha\n`, 1, /only agent tokens take a service scope/],
        [`sha256:${sha('x').slice(1)} admin a\n`, 1, /64 hex digits/],
        ['# nothing\n', 0, /holds no tokens/],
    ];
    for (const [text, line, msg] of cases) {
        const file = writeFile(`bad-${++seq}`, text, 0o600);
        const r = runRefused(['--data-dir', freshDataDir(), '--auth-file', file]);
        assert.equal(r.status, 2, r.stderr);
        const where = line ? `auth file ${file} line ${line}: ` : `auth file ${file} `;
        assert.ok(r.stderr.includes(where), `wanted '${where}' in ${r.stderr}`);
        assert.match(r.stderr, msg);
    }
    const r = runRefused(['--data-dir', freshDataDir(), '--auth-file', path.join(tmp, 'missing')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /auth file .*missing: No such file/);
});

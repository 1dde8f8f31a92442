'use strict';
/*
 * End to end with access control on (gotuned --auth-file): the sidecar and
 * the Go library authenticate with agent tokens scoped to a service.
 *
 *  - gotuned-agent with GOTUNED_TOKEN (scope "alpha") pushes, long-polls,
 *    applies an admin's override by restart and ACKs it; the ACK is
 *    recorded with the token's name.
 *  - gotuned-agent with a --token-file whose token is scoped to "beta"
 *    cannot register an "alpha" agent (403, logged); the program runs on
 *    and its output still passes through.
 *  - tests/go/libagent with GOTUNED_TOKEN pushes its samples.
 */
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { startServer, assertJson } = require('../http/lib.js');
const { run, waitFor, goBuild, cleanup } = require('./lib');

const AGENT = process.env.GOTUNED_AGENT_BIN;
const TOKENS = {
    admin: 'adm-4f9a1c7e2b8d6a3f',
    alpha: 'alpha-8c2e5b1d9f7a4c6e',
    beta: 'beta-1a7d3f9c5e2b8a4d',
};
let dir;
let srv;
let load;
let lib;

before(async () => {
    assert.ok(AGENT && fs.existsSync(AGENT), 'GOTUNED_AGENT_BIN must name the gotuned-agent binary (make e2e sets it)');
    load = goBuild('agentload');
    lib = goBuild('libagent');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gotuned-e2e-auth-'));
    const file = path.join(dir, 'tokens');
    fs.writeFileSync(file, [
        `${TOKENS.admin} admin ops`,
        `${TOKENS.alpha} agent alpha-fleet alpha`,
        `${TOKENS.beta} agent beta-fleet beta`,
    ].join('\n') + '\n', { mode: 0o600 });
    srv = await startServer({ args: ['--auth-file', file] });
});

after(async () => {
    if (srv)
        await srv.stop();
    await cleanup();
    if (dir)
        fs.rmSync(dir, { recursive: true, force: true });
});

const admin = { headers: { Authorization: `Bearer ${TOKENS.admin}` } };

async function agentOf(id) {
    const res = await srv.get(`/api/v1/agents/${id}`, admin);
    return res.status === 200 ? res.json : null;
}

function sidecar(id, service, env, extra = []) {
    return run(AGENT, ['--server', srv.base, '--service', service, '--id', id, '--apply', 'restart',
                       '--interval', '1', '--schedtrace', '100', ...extra, '--', load, '-every', '50ms', '-long', '0'],
               { env: { ...process.env, GOMAXPROCS: '2', ...env } });
}

test('the sidecar with an agent token: pushes, applies an admin override, ACKs as its token', async () => {
    const p = sidecar('alpha-1', 'alpha', { GOTUNED_TOKEN: TOKENS.alpha });
    try {
        await waitFor('the first samples', async () => {
            const a = await agentOf('alpha-1');
            return a && a.samples_total >= 3;
        }, 15000, 100);
        const ov = await srv.put('/api/v1/agents/alpha-1/override', { gomaxprocs: 1 }, admin);
        assert.ok(ov.status === 200 || ov.status === 201, `override: ${ov.status} ${ov.text}`);
        const a = await waitFor('version 1 to be ACKed', async () => {
            const x = await agentOf('alpha-1');
            return x && x.applied_version === 1 ? x : null;
        }, 30000, 200);
        assert.equal(a.config.config.gomaxprocs, 1);
        const acks = assertJson(await srv.get('/api/v1/events?agent=alpha-1&kind=ack', admin)).events;
        assert.equal(acks.length, 1);
        assert.equal(acks[0].actor, 'agent:alpha-fleet', 'the ACK is recorded with the token name');
        const ovEv = assertJson(await srv.get('/api/v1/events?agent=alpha-1&kind=config_version', admin)).events;
        assert.ok(ovEv.some((e) => e.actor === 'operator:ops'), JSON.stringify(ovEv.map((e) => e.actor)));
        // Without a token the same data is refused.
        assert.equal((await srv.get('/api/v1/agents/alpha-1')).status, 401);
    } finally {
        const { code } = await p.stop('SIGTERM');
        assert.strictEqual(code, 0, p.err().toString().slice(-1500));
    }
    assert.doesNotMatch(p.err().toString(), /\b40[13]\b/, 'no request of the sidecar was refused');
});

test('a token scoped to another service is refused; the program runs on regardless', async () => {
    const tokenFile = path.join(dir, 'beta-token');
    fs.writeFileSync(tokenFile, `${TOKENS.beta}\n`, { mode: 0o600 });
    const p = sidecar('alpha-2', 'alpha', {}, ['--token-file', tokenFile]);
    try {
        await waitFor('the agent to log the refusal', () => /403/.test(p.err().toString()), 15000, 100);
        assert.ok(/app 000010 /.test(p.err().toString()) || await waitFor('the program\'s output',
            () => /app 000010 /.test(p.err().toString()), 10000, 100));
        assert.strictEqual(await agentOf('alpha-2'), null, 'no agent was registered');
    } finally {
        const { code } = await p.stop('SIGTERM');
        assert.strictEqual(code, 0, p.err().toString().slice(-1500));
    }
});

test('the Go library with GOTUNED_TOKEN pushes its samples', async () => {
    const p = run(lib, ['-server', srv.base, '-service', 'alpha', '-id', 'alpha-lib', '-interval', '500ms',
                        '-sample', '100ms'], { env: { ...process.env, GOTUNED_TOKEN: TOKENS.alpha } });
    try {
        await waitFor('the library\'s samples', async () => {
            const a = await agentOf('alpha-lib');
            return a && a.samples_total >= 3;
        }, 15000, 100);
    } finally {
        const { code } = await p.stop('SIGTERM');
        assert.strictEqual(code, 0, p.err().toString().slice(-1500));
    }
});

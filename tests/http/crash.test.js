'use strict';
/*
 * Crash safety: a loop of kill -9 at a random moment while config-changing
 * requests are in flight (PUT override with a rising gomaxprocs, POST apply
 * with force, PUT policy). Every change that was answered with success
 * before the kill must be there after the restart, exactly as answered,
 * and PRAGMA integrity_check must say ok.
 *
 * The randomness is seeded; the seed is printed, and CRASH_SEED=N replays
 * a run (CRASH_ITERATIONS=N changes the count).
 */
const assert = require('node:assert');
const { after } = require('node:test');
const {
    startServer, freshDataDir, serverTest, assertJson, assertStatus, listOf, batch, sample,
    postTelemetry, sleep, OVERRIDE_OK,
} = require('./lib');
const { integrityCheck } = require('./db');

const ITERATIONS = Number(process.env.CRASH_ITERATIONS || 50);
const SEED = Number(process.env.CRASH_SEED || (Date.now() % 1000000007));
const MAX_DELAY_MS = 300;
const PER_WORKER = 25;      // requests per worker per round: < 100 versions per agent

/* mulberry32: small, seedable, good enough to pick delays. */
function rng(seed) {
    let a = seed >>> 0;
    return () => {
        a = (a + 0x6D2B79F5) >>> 0;
        let t = a;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}

let srv;
const dataDir = freshDataDir();
const test = serverTest(() => [srv]);
after(async () => {
    if (srv)
        await srv.stop();
});

/* A worker: sends up to PER_WORKER requests one after another until one
 * fails (the kill); calls ack(res) for each success. */
async function worker(send, ack) {
    for (let i = 0; i < PER_WORKER; i++) {
        let res;
        try {
            res = await send(i);
        } catch (e) {
            return;     // the connection died with the server
        }
        ack(res);
    }
}

test(`kill -9 at a random moment, ${ITERATIONS} times: every acknowledged change survives`, async () => {
    process.stdout.write(`crash loop: CRASH_SEED=${SEED} CRASH_ITERATIONS=${ITERATIONS}\n`);
    const rand = rng(SEED);
    const t0 = Date.now();
    let gomaxprocs = 0;
    let policySent = 0;
    let lastPolicyAcked = null;     // the even.min of the last acknowledged PUT policy
    const totals = { versions: 0, policies: 0, killedAfterMs: 0 };

    srv = await startServer({ dataDir });
    assertStatus(await srv.put('/api/v1/policy', { guards: { min_interval_s: 0, min_change_pct: 0 } }), 200);
    await srv.stop();

    for (let it = 0; it < ITERATIONS; it++) {
        const label = `iteration ${it} (CRASH_SEED=${SEED})`;
        srv = await startServer({ dataDir });
        const id = `cr-${it}`;
        await postTelemetry(srv, batch(id, { cpu_limit: 2 }, [sample([1, 0])]));
        const acked = [];           // version objects answered with success
        const policyAcks = [];
        const policySentNow = [];   // every even.min sent this iteration, in order
        const send = {
            override: () => {
                gomaxprocs = gomaxprocs % 1024 + 1;
                return srv.put(`/api/v1/agents/${id}/override`, { gomaxprocs });
            },
            apply: () => srv.post(`/api/v1/agents/${id}/apply`, { force: true }),
            policy: () => {
                // even.min from 2 to 1024, one step per PUT
                policySent = policySent % 1023 + 1;
                const min = policySent + 1;
                policySentNow.push(min);
                return srv.put('/api/v1/policy', { even: { min } }).then((r) => ({ ...r, min }));
            },
        };
        const ackVersion = (want) => (res) => {
            if (res.status === want)
                acked.push(res.json);
        };
        const delay = Math.floor(rand() * (MAX_DELAY_MS + 1));
        const work = Promise.all([
            worker(send.override, ackVersion(OVERRIDE_OK)),
            worker(send.override, ackVersion(OVERRIDE_OK)),
            worker(send.apply, ackVersion(201)),
            worker(send.policy, (res) => {
                if (res.status === 200)
                    policyAcks.push(res.min);
            }),
        ]);
        await sleep(delay);
        await srv.kill9();
        await work;
        totals.killedAfterMs += delay;
        if (policyAcks.length)
            lastPolicyAcked = policyAcks[policyAcks.length - 1];

        srv = await startServer({ dataDir });
        assert.strictEqual(integrityCheck(dataDir), 'ok', `${label}: integrity_check`);
        const stored = listOf(assertJson(await srv.get(`/api/v1/agents/${encodeURIComponent(id)}/versions?limit=100`)), 'versions');
        const byVersion = new Map(stored.map((v) => [v.version, v]));
        for (const v of acked) {
            assert.ok(v && Number.isInteger(v.version), `${label}: a success answer carries a version: ${JSON.stringify(v)}`);
            assert.deepStrictEqual(byVersion.get(v.version), v, `${label}: acknowledged version ${v.version} of ${id} is back as answered`);
        }
        const maxAcked = Math.max(0, ...acked.map((v) => v.version));
        const agent = assertJson(await srv.get(`/api/v1/agents/${encodeURIComponent(id)}`));
        assert.ok(agent.config_version >= maxAcked, `${label}: config_version ${agent.config_version} < acknowledged ${maxAcked}`);
        if (lastPolicyAcked !== null) {
            // The last acknowledged PUT, or one sent after it that may have
            // committed before the kill without its answer getting out (the
            // worker sends one at a time, so at most the next one sent).
            const min = assertJson(await srv.get('/api/v1/policy')).even.min;
            const after = policySentNow.slice(policySentNow.lastIndexOf(lastPolicyAcked) + 1);
            assert.ok(min === lastPolicyAcked || min === after[0],
                `${label}: policy even.min is ${min}, the last acknowledged was ${lastPolicyAcked}` +
                ` and the next sent ${after[0]}`);
            lastPolicyAcked = min;
        }
        totals.versions += acked.length;
        totals.policies += policyAcks.length;
        await srv.kill9();
    }
    const ms = Date.now() - t0;
    process.stdout.write(`crash loop: ${ITERATIONS} kills in ${ms} ms, ${totals.versions} acknowledged versions and ` +
                         `${totals.policies} policy changes checked, mean kill delay ${Math.round(totals.killedAfterMs / ITERATIONS)} ms\n`);
    assert.ok(totals.versions > 0, 'some changes were acknowledged before the kills');
});

'use strict';
/*
 * End to end: a Go program that embeds the agent library (agent/go, run as
 * tests/go/libagent) beside the real server, in a real cgroup v1 group with
 * a 1.5-CPU quota and GOMAXPROCS=8 in its environment.
 *
 * In auto mode the server recommends 2 from the limit the library reports;
 * the library applies it live (same process, next samples say 2) and ACKs.
 * An operator's override of the pool's steal threshold is followed live
 * too, and the pool's state in the telemetry shows it.
 *
 * Needs root and a v1 cpu controller (see tests/e2e/lib.js).
 */
const assert = require('node:assert');
const { after, before, test } = require('node:test');

const { startServer, assertJson } = require('../http/lib.js');
const { waitFor, goBuild, cgroupSetup, makeGroup, setQuota, runInGroup,
        cleanup } = require('./lib');

let bin;
let srv;

before(async () => {
    cgroupSetup('tests/e2e/library.test.js');
    bin = goBuild('libagent');
    srv = await startServer();
});

after(async () => {
    if (srv)
        await srv.stop();
    await cleanup();
});

async function agentOf(id) {
    const res = await srv.get(`/api/v1/agents/${id}`);
    return res.status === 200 ? res.json : null;
}

async function samplesAfter(id, ms) {
    const s = assertJson(await srv.get(`/api/v1/agents/${id}/samples?limit=128`)).samples;
    return s.filter((x) => x.recv_ms > ms);
}

/* Waits until version v is ACKed; returns the agent view. */
function acked(id, v) {
    return waitFor(`version ${v} to be ACKed`, async () => {
        const a = await agentOf(id);
        return a && a.applied_version === v ? a : null;
    }, 30000, 100);
}

test('the library applies GOMAXPROCS live and its pool follows a pushed steal threshold', async () => {
    const grp = `gotuned-lib-${process.pid}`;
    makeGroup(grp);
    setQuota(grp, 150000);
    assertJson(await srv.put('/api/v1/services/lib/policy', { mode: { default: 'auto' } }));
    const prog = runInGroup(grp, bin, ['-server', srv.base, '-service', 'lib', '-id', 'lib-1',
        '-interval', '500ms', '-sample', '100ms'], { env: { ...process.env, GOMAXPROCS: '8' } });
    try {
        const first = await waitFor('the first samples', async () => {
            const a = await agentOf('lib-1');
            return a && a.samples_total > 0 ? a : null;
        }, 20000, 100);
        const pid = first.pid;
        assert.strictEqual(pid, prog.pid, 'the library reports its own pid');

        // Auto mode: version 1 is the quota rule's 2, applied in place.
        let a = await acked('lib-1', 1);
        assert.deepStrictEqual(a.config.config.gomaxprocs, 2);
        assert.ok(Math.abs(a.cpu.limit - 1.5) < 1e-9, `cpu.limit ${a.cpu.limit}`);
        assert.ok(a.cpu.throttling && a.cpu.throttling.periods >= 0, JSON.stringify(a.cpu.throttling));
        assert.strictEqual(a.pid, pid, 'the same process: nothing restarted');
        let later = await waitFor('samples after the ACK', async () => {
            const s = await samplesAfter('lib-1', a.applied_ms);
            return s.length >= 3 ? s : null;
        }, 10000, 100);
        assert.deepStrictEqual([...new Set(later.map((x) => x.gomaxprocs))], [2]);
        for (const x of later) {
            assert.strictEqual(x.local_runq, undefined, 'runtime/metrics samples have no per-P queues');
            assert.ok(x.sched_latency_us && x.sched_latency_us.p99 >= x.sched_latency_us.p50,
                JSON.stringify(x));
            assert.ok(x.goroutines > 0);
            assert.ok(x.pool && x.pool.queues.length >= 1, JSON.stringify(x));
            assert.strictEqual(x.pool.steal_threshold, 8, 'the pool default before any change');
        }

        // The operator lowers the pool's steal threshold: followed live.
        const ov = await srv.put('/api/v1/agents/lib-1/override', { pool: { steal_threshold: 3 } });
        assert.ok(ov.status === 200 || ov.status === 201, `override: ${ov.status} ${ov.text}`);
        a = await acked('lib-1', 2);
        assert.strictEqual(a.pid, pid);
        later = await waitFor('samples after the second ACK', async () => {
            const s = await samplesAfter('lib-1', a.applied_ms);
            return s.length >= 3 ? s : null;
        }, 10000, 100);
        for (const x of later) {
            assert.strictEqual(x.pool.steal_threshold, 3, JSON.stringify(x.pool));
            assert.strictEqual(x.gomaxprocs, 2);
        }
        const nacks = assertJson(await srv.get('/api/v1/events?agent=lib-1&kind=nack')).events;
        assert.deepStrictEqual(nacks, []);
    } finally {
        const { code, signal } = await prog.stop('SIGTERM');
        assert.strictEqual(signal, null, `libagent died of ${signal}:\n${prog.err().toString().slice(-1500)}`);
        assert.strictEqual(code, 0, `libagent exit ${code}:\n${prog.err().toString().slice(-1500)}`);
    }
    assert.deepStrictEqual(prog.out().toString().split('\n').filter(Boolean), [
        'applied version=1 gomaxprocs=2 steal_threshold=8',
        'applied version=2 gomaxprocs=2 steal_threshold=3',
    ]);
});

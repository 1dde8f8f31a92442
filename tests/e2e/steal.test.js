'use strict';
/*
 * End to end, rule 3 (neighbor_steal) on a real Go program: tests/go/imbalance
 * runs under the gotuned-agent sidecar (--apply none), which takes the
 * runtime's GODEBUG=schedtrace lines out of its stderr and pushes them, with
 * the CPU facts it reads itself, to the real server.
 *
 *   -mode imbalanced: long non-yielding loops beside many short tasks that all
 *     queue on one P; that P's local queue stays at 16..48 while its
 *     neighbours (running the loops) have empty queues. The rule must fire and
 *     name the hot Ps, and the Ps it names must be ones this test finds hot in
 *     the samples on its own (queue >= threshold beside an empty neighbour
 *     ±1, wrapping).
 *   -mode balanced: the same loops, the short tasks spread over one producer
 *     per P in batches of 3; the rule must not fire.
 *
 * Both run at GOMAXPROCS=2 (<= the CPUs of the CI host and ceil of the 1.5-CPU
 * quota), so the reason is the plain one, not "the GOMAXPROCS change comes
 * first"; and both again inside a cgroup v1 group with a 1.5-CPU quota (root
 * and a v1 cpu controller are required: see tests/e2e/lib.js).
 */
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const { after, before, test } = require('node:test');

const { startServer } = require('../http/lib.js');
const { run, goBuild, cgroupSetup, makeGroup, setQuota, runInGroup, cleanup } = require('./lib');

const AGENT = process.env.GOTUNED_AGENT_BIN;
const SERVICE = 'steal-e2e';
const POLICY = { window: 20, threshold: 8, persistence: 0.5 };
const NEEDED = Math.ceil(POLICY.persistence * POLICY.window);
const PROCS = 2;
const RUN_MS = 3000;               // ~29 SCHED lines at 100 ms, the window is the last 20
const RUN_TIMEOUT_MS = 20000;      // the agent and program are stopped if still running then
const QUOTA_US = 150000;

let bin;
let srv;
let group = null;                  // the 1.5-CPU group, made by the first test that needs it

before(async () => {
    assert.ok(AGENT && fs.existsSync(AGENT), 'GOTUNED_AGENT_BIN must name the gotuned-agent binary (make e2e sets it)');
    bin = goBuild('imbalance');
    srv = await startServer();
    const res = await srv.put(`/api/v1/services/${SERVICE}/policy`, { neighbor_steal: POLICY });
    assert.strictEqual(res.status, 200, res.text);
});

after(async () => {
    if (srv)
        await srv.stop();
    await cleanup();
});

/*
 * Runs the workload under the sidecar until it stops by itself (after
 * RUN_MS); the agent pushes what it read before it exits with the program's
 * status. opts.group: a cgroup to start both in.
 */
async function runProgram(agentId, mode, opts = {}) {
    const args = ['--server', srv.base, '--service', SERVICE, '--id', agentId, '--apply', 'none',
                  '--interval', '1', '--schedtrace', '100', '--',
                  bin, '-mode', mode, '-duration', `${RUN_MS}ms`];
    const env = { ...process.env, GOMAXPROCS: String(PROCS) };
    const p = opts.group ? runInGroup(opts.group, AGENT, args, { env }) : run(AGENT, args, { env });
    const timer = setTimeout(() => p.stop('SIGTERM'), RUN_TIMEOUT_MS);
    const { code, signal } = await p.exited;
    clearTimeout(timer);
    assert.strictEqual(code, 0, `the agent running imbalance -mode ${mode} exited with ${code ?? signal}:\n` +
                       p.err().toString('utf8').slice(-2000));
}

/* Indices i with q[i] >= threshold while q[i-1] or q[i+1] (wrapping) is 0. */
function hotPs(q, threshold) {
    const n = q.length;
    const out = [];
    if (n < 2)
        return out;
    for (let i = 0; i < n; i++)
        if (q[i] >= threshold && (q[(i + n - 1) % n] === 0 || q[(i + 1) % n] === 0))
            out.push(i);
    return out;
}

/* Runs one workload under the agent; returns what the test checks. */
async function runAndPush(agent, mode, opts = {}) {
    await runProgram(agent, mode, opts);
    const a = await srv.get(`/api/v1/agents/${agent}`);
    assert.strictEqual(a.status, 200, a.text);
    assert.ok(a.json.samples_total >= POLICY.window, `only ${a.json.samples_total} samples arrived ` +
        `(need ${POLICY.window})`);
    const rec = await srv.get(`/api/v1/agents/${agent}/recommendation`);
    assert.strictEqual(rec.status, 200, rec.text);
    const got = await srv.get(`/api/v1/agents/${agent}/samples?limit=${POLICY.window}`);
    assert.strictEqual(got.status, 200, got.text);
    const samples = got.json.samples;
    assert.strictEqual(samples.length, POLICY.window);
    const hotBySample = samples.map((s) => hotPs(s.local_runq, POLICY.threshold));
    return {
        rec: rec.json, samples, hotBySample, accepted: a.json.samples_total, agent: a.json,
        hotSamples: hotBySample.filter((h) => h.length).length,
        hotSet: [...new Set(hotBySample.flat())].sort((a, b) => a - b),
        steal: rec.json.reasons.filter((r) => r.rule === 'neighbor_steal'),
    };
}

function show(r) {
    return `queues (last ${POLICY.window}): ${JSON.stringify(r.samples.map((s) => s.local_runq))}\n` +
           `reasons: ${JSON.stringify(r.rec.reasons)}\nimbalance: ${JSON.stringify(r.rec.imbalance)}`;
}

/* What a passing run saw, for the log. */
function note(t, r) {
    const last = r.samples.slice(-5).map((s) => JSON.stringify(s.local_runq)).join(' ');
    t.diagnostic(`${r.accepted} samples; hot ${r.hotSamples}/${POLICY.window}; ` +
                 `last queues ${last}`);
    for (const x of r.steal)
        t.diagnostic(`neighbor_steal: ${x.text} hot_ps=${JSON.stringify(x.hot_ps)}`);
}

function checkImbalanced(r, quotaProcs) {
    assert.strictEqual(r.steal.length, 1, `neighbor_steal did not fire\n${show(r)}`);
    const reason = r.steal[0];
    // The test's own reading of the same samples: persistent, and these Ps.
    assert.ok(r.hotSamples >= NEEDED, `only ${r.hotSamples} hot samples of ${POLICY.window}\n${show(r)}`);
    assert.strictEqual(reason.numbers.hot_samples, r.hotSamples, show(r));
    assert.strictEqual(reason.numbers.needed, NEEDED);
    const named = [...reason.hot_ps].sort((a, b) => a - b);
    assert.ok(named.length >= 1);
    assert.deepStrictEqual(named, r.hotSet, `hot_ps vs the Ps hot in the samples\n${show(r)}`);
    // ... and the reason's text names exactly those Ps.
    const m = /^Ps ([\d, ]+) held (\d+)\+ queued goroutines beside an idle neighbour in (\d+) of (\d+) samples/
        .exec(reason.text);
    assert.ok(m, reason.text);
    assert.deepStrictEqual(m[1].split(', ').map(Number), named, reason.text);
    assert.strictEqual(+m[2], POLICY.threshold);
    assert.strictEqual(+m[3], r.hotSamples);
    if (quotaProcs >= PROCS) {
        assert.doesNotMatch(reason.text, /GOMAXPROCS change comes first/, reason.text);
        assert.match(reason.text, /lower the pool steal threshold 8 to 4, steal from all workers/, reason.text);
        assert.strictEqual(r.rec.config.pool.steal_scope, 'all', JSON.stringify(r.rec.config));
    } else {
        assert.match(reason.text, /GOMAXPROCS change comes first/, reason.text);
    }
}

function checkBalanced(r) {
    assert.strictEqual(r.steal.length, 0, `neighbor_steal fired on the balanced workload\n${show(r)}`);
    assert.ok(r.hotSamples < NEEDED, show(r));
    assert.ok(r.rec.imbalance.hot_samples < NEEDED, show(r));
}

/* The GOMAXPROCS the quota and even rules choose for these facts with the
 * default policy (ceil, min 2, clamped by the CPUs; odd values from 4 up
 * rounded down): the steal reason is the plain one when the program runs no
 * more Ps than that. */
function quotaProcs(cpuLimit) {
    const cpus = os.cpus().length;
    let n = Math.min(cpuLimit ? Math.max(2, Math.ceil(cpuLimit)) : cpus, cpus);
    if (n >= 4 && n % 2)
        n--;
    return n;
}

test('imbalanced workload: neighbor_steal fires and names the hot Ps', async (t) => {
    const r = await runAndPush('steal-imb', 'imbalanced');
    note(t, r);
    checkImbalanced(r, quotaProcs(null));
});

test('balanced workload: neighbor_steal does not fire', async (t) => {
    const r = await runAndPush('steal-bal', 'balanced');
    note(t, r);
    checkBalanced(r);
});

/* The 1.5-CPU group, made once. */
function quotaGroup() {
    if (!group) {
        cgroupSetup('tests/e2e/steal.test.js');
        group = `gotuned-steal-${process.pid}`;
        makeGroup(group);
        setQuota(group, QUOTA_US);
    }
    return group;
}

test('imbalanced workload in a 1.5-CPU cgroup: neighbor_steal fires and names the hot Ps', async (t) => {
    const r = await runAndPush('steal-imb-cg', 'imbalanced', { group: quotaGroup() });
    note(t, r);
    assert.ok(Math.abs(r.agent.cpu.limit - 1.5) < 1e-9, `the agent read the quota: ${JSON.stringify(r.agent.cpu)}`);
    checkImbalanced(r, quotaProcs(1.5));
});

test('balanced workload in a 1.5-CPU cgroup: neighbor_steal does not fire', async (t) => {
    const r = await runAndPush('steal-bal-cg', 'balanced', { group: quotaGroup() });
    note(t, r);
    checkBalanced(r);
});

'use strict';
/*
 * The CPU probe in a real cgroup v1 hierarchy: create groups under the cpu
 * controller's mount, set CFS quotas, start `gotuned --probe-cpu` inside
 * them and check the limit it reports, where it says the limit came from,
 * and the thread count it would use.
 *
 * Needs root and a cgroup v1 cpu controller (the CI host is hybrid: v1
 * controllers under /sys/fs/cgroup/<ctrl>). Without either the tests FAIL:
 * a silent skip would hide that the probe was never checked.
 *
 * Rules kept here: every wait is bounded; the only process ever signalled
 * is the probe this file spawned, by its own handle, before it is reaped;
 * the groups created here are removed (child first) once their processes
 * have exited.
 */
const assert = require('node:assert');
const fs = require('node:fs');
const path = require('node:path');
const { test, after } = require('node:test');

const { PERIOD_US, cgroupSetup, groupDir, groupPath, makeGroup, setQuota, runInGroup,
        cleanup } = require('./lib');

const PROBE_TIMEOUT_MS = 20000;

let env = null;           // set by setup(): { bin, name }

/* Checks the preconditions (root, binary, v1 cpu mount) once. */
function setup() {
    if (env)
        return env;
    cgroupSetup('tests/e2e/cgroup.test.js');
    const bin = process.env.GOTUNED_BIN;
    assert.ok(bin, 'GOTUNED_BIN must name the gotuned binary (make e2e sets it)');
    assert.ok(fs.existsSync(bin), `GOTUNED_BIN=${bin} does not exist`);
    env = { bin, name: `gotuned-test-${process.pid}` };
    return env;
}

/* Runs `gotuned --probe-cpu` inside the group and resolves once it has
 * exited and been reaped. */
async function probeIn(rel) {
    const p = runInGroup(rel, env.bin, ['--probe-cpu']);
    let timedOut = false;
    const timer = setTimeout(() => {
        timedOut = true;
        p.stop('SIGKILL');
    }, PROBE_TIMEOUT_MS);
    const { code, signal, error } = await p.exited;
    clearTimeout(timer);
    if (error)
        throw error;
    return { code, signal, stdout: p.out().toString(), stderr: p.err().toString(), timedOut };
}

/* Parses the key=value lines and checks that all of them are there. */
function parseProbe(res) {
    assert.ok(!res.timedOut, `--probe-cpu did not exit within ${PROBE_TIMEOUT_MS} ms`);
    assert.strictEqual(res.code, 0,
        `--probe-cpu exited with ${res.code ?? res.signal}; stderr:\n${res.stderr}`);
    const kv = {};
    for (const line of res.stdout.split('\n')) {
        const eq = line.indexOf('=');
        if (eq > 0)
            kv[line.slice(0, eq)] = line.slice(eq + 1);
    }
    for (const k of ['limit', 'leaf_limit', 'parent_tighter', 'source', 'num_cpu',
        'affinity', 'threads'])
        assert.ok(k in kv, `--probe-cpu printed no ${k}=; stdout:\n${res.stdout}`);
    const num = (k) => {
        const v = Number(kv[k]);
        assert.ok(Number.isFinite(v), `${k}=${kv[k]} is not a number`);
        return v;
    };
    const out = {
        limit: num('limit'), leafLimit: num('leaf_limit'),
        parentTighter: kv.parent_tighter, source: kv.source,
        numCpu: num('num_cpu'), affinity: num('affinity'), threads: num('threads'),
        raw: res.stdout,
    };
    assert.ok(out.numCpu >= 1, `num_cpu=${out.numCpu}`);
    assert.ok(out.affinity >= 1 && out.affinity <= out.numCpu,
        `affinity=${out.affinity} with num_cpu=${out.numCpu}`);
    return out;
}

/* The server's default quota rule (DESIGN §5 rule 1): ceil, at least 2,
 * clamped to the CPUs it may run on. */
function quotaThreads(limit, affinity) {
    return Math.min(affinity, Math.max(2, Math.ceil(limit)));
}

function approx(got, want, what, raw) {
    assert.ok(Math.abs(got - want) < 1e-6, `${what}=${got}, want ${want}; output:\n${raw}`);
}

function v1Source(rel, quota) {
    return `cgroup v1 ${groupPath(rel)} (cpu.cfs_quota_us=${quota} cpu.cfs_period_us=${PERIOD_US})`;
}

after(cleanup);

test('a v1 group with quota 150000/100000 gives limit 1.5 and 2 threads', async () => {
    setup();
    const grp = env.name;
    makeGroup(grp);
    setQuota(grp, 150000);

    const p = parseProbe(await probeIn(grp));
    approx(p.limit, 1.5, 'limit', p.raw);
    approx(p.leafLimit, 1.5, 'leaf_limit', p.raw);
    assert.strictEqual(p.parentTighter, '0', p.raw);
    assert.strictEqual(p.source, v1Source(grp, 150000));
    assert.strictEqual(p.threads, quotaThreads(1.5, p.affinity), p.raw);
    if (p.affinity >= 2)
        assert.strictEqual(p.threads, 2, p.raw);
});

test('an unlimited child of a 1-CPU parent: limit 1, parent_tighter=1', async () => {
    setup();
    const parent = env.name;
    const child = `${env.name}/child`;
    if (!fs.existsSync(groupDir(parent)))
        makeGroup(parent);
    setQuota(parent, 100000);
    makeGroup(child);
    assert.strictEqual(fs.readFileSync(path.join(groupDir(child), 'cpu.cfs_quota_us'),
        'utf8').trim(), '-1', 'a new v1 group starts without a quota');

    const p = parseProbe(await probeIn(child));
    approx(p.limit, 1, 'limit', p.raw);
    approx(p.leafLimit, 0, 'leaf_limit', p.raw);
    assert.strictEqual(p.parentTighter, '1', p.raw);
    assert.strictEqual(p.source, v1Source(parent, 100000));
    assert.strictEqual(p.threads, quotaThreads(1, p.affinity), p.raw);
});

test('a child tighter than its parent: the leaf limit wins', async () => {
    setup();
    const parent = env.name;
    const child = `${env.name}/child`;
    if (!fs.existsSync(groupDir(parent)))
        makeGroup(parent);
    setQuota(parent, 100000);
    if (!fs.existsSync(groupDir(child)))
        makeGroup(child);
    setQuota(child, 50000);

    const p = parseProbe(await probeIn(child));
    approx(p.limit, 0.5, 'limit', p.raw);
    approx(p.leafLimit, 0.5, 'leaf_limit', p.raw);
    assert.strictEqual(p.parentTighter, '0', p.raw);
    assert.strictEqual(p.source, v1Source(child, 50000));
    assert.strictEqual(p.threads, quotaThreads(0.5, p.affinity), p.raw);
});

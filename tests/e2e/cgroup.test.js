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
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { test, after } = require('node:test');

const PROBE_TIMEOUT_MS = 20000;
const RMDIR_TRIES = 50;          // × RMDIR_DELAY_MS = 2.5 s for exit to settle
const RMDIR_DELAY_MS = 50;
const PERIOD_US = 100000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* Undoes mountinfo's octal escapes (\040 for a space). */
function unescapeMountinfo(s) {
    return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

/* The cgroup v1 mount that carries the cpu controller: its mount point and
 * its root inside the hierarchy ("/" outside containers). */
function cpuMount() {
    const lines = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    let found = null;
    for (const line of lines) {
        const sep = line.indexOf(' - ');
        if (sep < 0)
            continue;
        const left = line.slice(0, sep).split(' ');
        const right = line.slice(sep + 3).split(' ');
        if (right[0] !== 'cgroup' || left.length < 5)
            continue;
        const superOpts = (right[2] || '').split(',');
        if (superOpts.includes('cpu'))
            found = { mnt: unescapeMountinfo(left[4]), root: unescapeMountinfo(left[3]) };
    }
    return found;
}

let env = null;           // set by setup(): { bin, mnt, root, name }
const created = [];       // directories we made, in creation order

/* Checks the preconditions (root, binary, v1 cpu mount) with messages a
 * person can act on, once. */
function setup() {
    if (env)
        return env;
    assert.ok(typeof process.getuid === 'function' && process.getuid() === 0,
        'tests/e2e/cgroup.test.js must run as root: it creates cgroups under ' +
        'the cpu controller (CI runs as root; locally use sudo)');
    const bin = process.env.GOTUNED_BIN;
    assert.ok(bin, 'GOTUNED_BIN must name the gotuned binary (make e2e sets it)');
    assert.ok(fs.existsSync(bin), `GOTUNED_BIN=${bin} does not exist`);
    const m = cpuMount();
    assert.ok(m, 'no cgroup v1 mount with the cpu controller in /proc/self/mountinfo; ' +
        'this test needs a v1 or hybrid host (v2-only hosts are covered by the ' +
        'unit fixtures)');
    env = { bin, mnt: m.mnt, root: m.root, name: `gotuned-test-${process.pid}` };
    return env;
}

/* The directory of a group (relative name like "a/b") and its path in the
 * hierarchy as /proc/<pid>/cgroup and the probe's source show it. */
function dirOf(rel) {
    return path.join(env.mnt, rel);
}
function hierPathOf(rel) {
    return (env.root === '/' ? '' : env.root) + '/' + rel;
}

function makeGroup(rel) {
    const dir = dirOf(rel);
    fs.mkdirSync(dir);
    created.push(dir);
    return dir;
}

function setQuota(rel, quotaUs) {
    const dir = dirOf(rel);
    fs.writeFileSync(path.join(dir, 'cpu.cfs_period_us'), `${PERIOD_US}\n`);
    fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), `${quotaUs}\n`);
    assert.strictEqual(fs.readFileSync(path.join(dir, 'cpu.cfs_quota_us'), 'utf8').trim(),
        String(quotaUs), `the kernel did not take cpu.cfs_quota_us=${quotaUs} in ${dir}`);
}

/* Runs `gotuned --probe-cpu` inside the group: the shell moves itself into
 * the group, then execs the binary, so the probe starts there. Resolves
 * once the process has exited and been reaped. */
function probeIn(rel) {
    const dir = dirOf(rel);
    return new Promise((resolve, reject) => {
        const child = spawn('sh', ['-c',
            'echo $$ > "$GOTUNED_GROUP/cgroup.procs" && exec "$GOTUNED_BIN" --probe-cpu'], {
            env: { ...process.env, GOTUNED_BIN: env.bin, GOTUNED_GROUP: dir },
            stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stdout = '', stderr = '', timedOut = false;
        child.stdout.on('data', (d) => { stdout += d; });
        child.stderr.on('data', (d) => { stderr += d; });
        const timer = setTimeout(() => {
            timedOut = true;
            child.kill('SIGKILL');
        }, PROBE_TIMEOUT_MS);
        child.on('error', (e) => { clearTimeout(timer); reject(e); });
        child.on('close', (code, signal) => {
            clearTimeout(timer);
            resolve({ code, signal, stdout, stderr, timedOut });
        });
    });
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
    return `cgroup v1 ${hierPathOf(rel)} (cpu.cfs_quota_us=${quota} cpu.cfs_period_us=${PERIOD_US})`;
}

after(async () => {
    // Children first: a v1 group with subgroups cannot be removed. The
    // probes have exited (each test awaits its probe), but the kernel may
    // take a moment to drop an exited task from the group.
    const problems = [];
    for (const dir of created.slice().reverse()) {
        for (let i = 0; ; i++) {
            try {
                fs.rmdirSync(dir);
                break;
            } catch (e) {
                if (e.code === 'ENOENT')
                    break;
                if (e.code !== 'EBUSY' || i + 1 >= RMDIR_TRIES) {
                    problems.push(`${dir}: ${e.message}`);
                    break;
                }
                await sleep(RMDIR_DELAY_MS);
            }
        }
    }
    assert.deepStrictEqual(problems, [], 'could not remove the test cgroups');
});

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
    if (!fs.existsSync(dirOf(parent)))
        makeGroup(parent);
    setQuota(parent, 100000);
    makeGroup(child);
    assert.strictEqual(fs.readFileSync(path.join(dirOf(child), 'cpu.cfs_quota_us'),
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
    if (!fs.existsSync(dirOf(parent)))
        makeGroup(parent);
    setQuota(parent, 100000);
    if (!fs.existsSync(dirOf(child)))
        makeGroup(child);
    setQuota(child, 50000);

    const p = parseProbe(await probeIn(child));
    approx(p.limit, 0.5, 'limit', p.raw);
    approx(p.leafLimit, 0.5, 'leaf_limit', p.raw);
    assert.strictEqual(p.parentTighter, '0', p.raw);
    assert.strictEqual(p.source, v1Source(child, 50000));
    assert.strictEqual(p.threads, quotaThreads(0.5, p.affinity), p.raw);
});

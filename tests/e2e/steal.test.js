'use strict';
/*
 * End to end, rule 3 (neighbor_steal) on a real Go program: tests/go/imbalance
 * run with GODEBUG=schedtrace, its stderr pushed as text/plain to the real
 * server while it runs.
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
 * first". When run as root on a host with a cgroup v1 cpu controller, both are
 * repeated inside a group with cpu.cfs_quota_us=150000 / period 100000; the
 * group is removed afterwards.
 *
 * Rules kept here: every wait is bounded; the only processes signalled are the
 * ones spawned here, by their own handle, before they are reaped.
 */
const assert = require('node:assert');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { startServer, sleep } = require('../http/lib.js');

const PROG_DIR = path.join(__dirname, '..', 'go', 'imbalance');
const SERVICE = 'steal-e2e';
const POLICY = { window: 20, threshold: 8, persistence: 0.5 };
const NEEDED = Math.ceil(POLICY.persistence * POLICY.window);
const PROCS = 2;
const SCHEDTRACE_MS = 100;
const RUN_MS = 3000;               // ~29 SCHED lines, the window is the last 20
const RUN_TIMEOUT_MS = 15000;      // SIGKILL if the program has not exited by then
const PUSH_EVERY_MS = 700;
const QUOTA_US = 150000;
const PERIOD_US = 100000;

let bin;
let srv;
let dir;
let cgroupDir = null;              // made by the cgroup tests, removed in after()

before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gotuned-steal-'));
    bin = path.join(dir, 'imbalance');
    execFileSync('go', ['build', '-o', bin, '.'], {
        cwd: PROG_DIR,
        env: { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off', GOCACHE: path.join(dir, 'cache'),
               GOPATH: path.join(dir, 'gopath') },
        stdio: ['ignore', 'inherit', 'inherit'],
    });
    srv = await startServer();
    const res = await srv.put(`/api/v1/services/${SERVICE}/policy`, { neighbor_steal: POLICY });
    assert.strictEqual(res.status, 200, res.text);
});

after(async () => {
    if (srv)
        await srv.stop();
    if (cgroupDir) {
        // The programs have exited (runProgram waits for that); the kernel may
        // take a moment to empty the group.
        for (let i = 0; i < 50; i++) {
            try {
                fs.rmdirSync(cgroupDir);
                break;
            } catch (e) {
                if (e.code === 'ENOENT')
                    break;
                await sleep(50);
            }
        }
    }
    if (dir)
        fs.rmSync(dir, { recursive: true, force: true });
});

/*
 * Runs the workload to completion (it stops by itself after RUN_MS) and calls
 * onStderr with each piece of its stderr as it comes. opts.cgroup: a cgroup v1
 * directory to start it in. Resolves with the whole stderr.
 *
 * This is the one place that knows how the program is run; running it under
 * the sidecar agent instead replaces this function.
 */
function runProgram(mode, opts = {}) {
    const args = ['-mode', mode, '-duration', `${RUN_MS}ms`];
    const env = { ...process.env, GOMAXPROCS: String(PROCS), GODEBUG: `schedtrace=${SCHEDTRACE_MS}` };
    let cmd = bin;
    let argv = args;
    if (opts.cgroup) {
        // Join the group first, then exec: the Go runtime starts inside it.
        cmd = '/bin/sh';
        argv = ['-c', 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"', 'sh', opts.cgroup, bin, ...args];
    }
    return new Promise((resolve, reject) => {
        const child = spawn(cmd, argv, { env, stdio: ['ignore', 'ignore', 'pipe'] });
        const parts = [];
        child.stderr.on('data', (d) => {
            parts.push(d);
            if (opts.onStderr)
                opts.onStderr(d.toString('utf8'));
        });
        const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
        child.on('error', (e) => { clearTimeout(timer); reject(e); });
        child.on('close', (code, signal) => {
            clearTimeout(timer);
            if (code !== 0)
                reject(new Error(`imbalance -mode ${mode} exited with ${code ?? signal}:\n` +
                                 Buffer.concat(parts).toString('utf8').slice(-2000)));
            else
                resolve(Buffer.concat(parts).toString('utf8'));
        });
    });
}

/*
 * Pushes text/plain telemetry as it arrives: whole lines only (a SCHED line
 * is never cut between two pushes), at most one request in flight, one every
 * PUSH_EVERY_MS, and the rest on finish().
 */
function pusher(agent, query) {
    let buf = '';
    let chain = Promise.resolve();
    let failed = null;             // the first push that went wrong, thrown by finish()
    let last = 0;
    const results = [];
    const post = (text) => {
        chain = chain.then(async () => {
            if (failed)
                return;
            try {
                const res = await srv.req('POST', `/api/v1/telemetry?agent=${agent}&service=${SERVICE}&${query}`, {
                    body: text, headers: { 'Content-Type': 'text/plain' },
                });
                assert.strictEqual(res.status, 200, res.text);
                results.push(res.json);
            } catch (e) {
                failed = e;
            }
        });
    };
    return {
        write(chunk) {
            buf += chunk;
            const cut = buf.lastIndexOf('\n');
            if (cut < 0 || Date.now() - last < PUSH_EVERY_MS)
                return;
            post(buf.slice(0, cut + 1));
            buf = buf.slice(cut + 1);
            last = Date.now();
        },
        async finish() {
            if (buf.length)
                post(buf);
            buf = '';
            await chain;
            if (failed)
                throw failed;
            return results;
        },
    };
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

const SCHED = /^SCHED (\d+)ms: gomaxprocs=(\d+) .*\[([\d ]*)\]$/;

/* Per-P queues of the SCHED lines in the raw text, read independently. */
function rawQueues(text) {
    const out = [];
    for (const line of text.split('\n')) {
        const m = SCHED.exec(line);
        if (m && m[3].trim().length)
            out.push(m[3].trim().split(/ +/).map(Number));
    }
    return out;
}

/* Runs one workload, pushing as it goes; returns what the test checks. */
async function runAndPush(agent, mode, opts = {}) {
    const q = `num_cpu=${os.cpus().length}` + (opts.cpuLimit ? `&cpu_limit=${opts.cpuLimit}` : '');
    const push = pusher(agent, q);
    const text = await runProgram(mode, { cgroup: opts.cgroup, onStderr: (c) => push.write(c) });
    const pushed = await push.finish();
    assert.ok(pushed.length >= 2, `pushed in ${pushed.length} request(s), expected several while it ran`);
    const accepted = pushed.reduce((s, r) => s + r.accepted, 0);
    assert.ok(accepted >= POLICY.window, `only ${accepted} samples accepted (need ${POLICY.window}); ` +
        `stderr tail:\n${text.slice(-1500)}`);

    const rec = await srv.get(`/api/v1/agents/${agent}/recommendation`);
    assert.strictEqual(rec.status, 200, rec.text);
    const got = await srv.get(`/api/v1/agents/${agent}/samples?limit=${POLICY.window}`);
    assert.strictEqual(got.status, 200, got.text);
    const samples = got.json.samples;
    assert.strictEqual(samples.length, POLICY.window);
    const hotBySample = samples.map((s) => hotPs(s.local_runq, POLICY.threshold));
    return {
        text, rec: rec.json, samples, hotBySample, pushes: pushed.length, accepted,
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
    t.diagnostic(`${r.accepted} samples in ${r.pushes} pushes; hot ${r.hotSamples}/${POLICY.window}; ` +
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
    // Every named P was also hot in the raw stderr the program wrote.
    const rawHot = new Set(rawQueues(r.text).flatMap((qs) => hotPs(qs, POLICY.threshold)));
    for (const p of named)
        assert.ok(rawHot.has(p), `P${p} named but never hot in the raw SCHED lines`);
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

/* The cgroup v1 cpu controller's mount point, or null. */
function cpuMount() {
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
        const sep = line.indexOf(' - ');
        if (sep < 0)
            continue;
        const left = line.slice(0, sep).split(' ');
        const right = line.slice(sep + 3).split(' ');
        if (right[0] === 'cgroup' && (right[2] || '').split(',').includes('cpu'))
            return left[4].replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    }
    return null;
}

function quotaGroup(t) {
    if (cgroupDir)
        return cgroupDir;
    if (typeof process.getuid !== 'function' || process.getuid() !== 0) {
        t.skip('not root: cannot create a cgroup');
        return null;
    }
    const mnt = cpuMount();
    if (!mnt) {
        t.skip('no cgroup v1 cpu controller');
        return null;
    }
    const d = path.join(mnt, `gotuned-steal-${process.pid}`);
    fs.mkdirSync(d);
    cgroupDir = d;
    fs.writeFileSync(path.join(d, 'cpu.cfs_period_us'), String(PERIOD_US));
    fs.writeFileSync(path.join(d, 'cpu.cfs_quota_us'), String(QUOTA_US));
    return d;
}

test('imbalanced workload in a 1.5-CPU cgroup: neighbor_steal fires and names the hot Ps', async (t) => {
    const cg = quotaGroup(t);
    if (!cg)
        return;
    const r = await runAndPush('steal-imb-cg', 'imbalanced', { cgroup: cg, cpuLimit: 1.5 });
    note(t, r);
    checkImbalanced(r, quotaProcs(1.5));
});

test('balanced workload in a 1.5-CPU cgroup: neighbor_steal does not fire', async (t) => {
    const cg = quotaGroup(t);
    if (!cg)
        return;
    const r = await runAndPush('steal-bal-cg', 'balanced', { cgroup: cg, cpuLimit: 1.5 });
    note(t, r);
    checkBalanced(r);
});

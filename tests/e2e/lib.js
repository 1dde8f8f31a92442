'use strict';
/*
 * Helpers shared by the end-to-end tests: real cgroup v1 groups with a CPU
 * quota, Go programs built offline, processes this file started (and only
 * those) stopped by their own handle, and bounded waits.
 *
 * Rules kept here: every wait is bounded; the only processes ever signalled
 * are the ones spawned through run(), by their own handle, before they are
 * reaped; the groups made here are removed (children first) at cleanup(),
 * after their processes were stopped, also when a test failed.
 */
const assert = require('node:assert');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const PERIOD_US = 100000;
const RMDIR_TRIES = 100;         // × 50 ms = 5 s for exits to settle
const STOP_GRACE_MS = 10000;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/* ------------------------------------------------------------- processes */

const live = new Set();          // children spawned by run() and not yet exited
process.on('exit', () => {
    for (const c of live)
        c.kill('SIGKILL');
});

/*
 * Spawns cmd with args. Collects stdout and stderr as Buffers (up to
 * opts.keep bytes each, default 64 MiB). Returns
 * { child, pid, out(), err(), exited: Promise<{code, signal}>, stop(sig) }.
 */
function run(cmd, args, opts = {}) {
    const keep = opts.keep || 64 * 1024 * 1024;
    const child = spawn(cmd, args, { env: opts.env || process.env, cwd: opts.cwd,
                                     stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(child);
    const bufs = { out: [], err: [] };
    const sizes = { out: 0, err: 0 };
    const take = (k) => (d) => {
        if (sizes[k] + d.length <= keep) {
            bufs[k].push(d);
            sizes[k] += d.length;
        }
    };
    child.stdout.on('data', take('out'));
    child.stderr.on('data', take('err'));
    const exited = new Promise((resolve) => {
        child.on('error', (e) => {
            live.delete(child);
            resolve({ code: null, signal: null, error: e });
        });
        // 'close': the process exited and its pipes are drained.
        child.on('close', (code, signal) => {
            live.delete(child);
            resolve({ code, signal });
        });
    });
    const p = {
        child, pid: child.pid, exited,
        out: () => Buffer.concat(bufs.out),
        err: () => Buffer.concat(bufs.err),
        /* Signals the process unless it is gone; resolves with its exit,
         * escalating to SIGKILL after the grace period. */
        async stop(sig = 'SIGTERM', graceMs = STOP_GRACE_MS) {
            if (live.has(child))
                child.kill(sig);
            const t = await Promise.race([exited, sleep(graceMs).then(() => null)]);
            if (t)
                return t;
            if (live.has(child))
                child.kill('SIGKILL');
            return exited;
        },
    };
    return p;
}

/* Polls fn (may be async) every intervalMs until it returns a truthy value;
 * fails with what and the last value after timeoutMs. */
async function waitFor(what, fn, timeoutMs, intervalMs = 100) {
    const end = Date.now() + timeoutMs;
    let last;
    for (;;) {
        last = await fn();
        if (last)
            return last;
        if (Date.now() >= end)
            assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}` +
                        (last !== undefined ? ` (last: ${JSON.stringify(last)})` : ''));
        await sleep(intervalMs);
    }
}

/* ------------------------------------------------------------------- Go */

const GO_DIR = path.join(__dirname, '..', 'go');
let goTmp = null;

/* Builds tests/go/<name> offline (no module proxy) and returns the binary. */
function goBuild(name) {
    if (!goTmp)
        goTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gotuned-e2e-go-'));
    const bin = path.join(goTmp, name);
    if (fs.existsSync(bin))
        return bin;
    execFileSync('go', ['build', '-o', bin, '.'], {
        cwd: path.join(GO_DIR, name),
        env: { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off',
               GOCACHE: process.env.GOCACHE || path.join(goTmp, 'cache'),
               GOPATH: path.join(goTmp, 'gopath') },
        stdio: ['ignore', 'inherit', 'inherit'],
    });
    return bin;
}

/* --------------------------------------------------------------- cgroups */

/* Undoes mountinfo's octal escapes (\040 for a space). */
function unescapeMountinfo(s) {
    return s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
}

/* The cgroup v1 mount that carries the cpu controller: its mount point and
 * its root inside the hierarchy ("/" outside containers). */
function cpuMount() {
    let found = null;
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
        const sep = line.indexOf(' - ');
        if (sep < 0)
            continue;
        const left = line.slice(0, sep).split(' ');
        const right = line.slice(sep + 3).split(' ');
        if (right[0] !== 'cgroup' || left.length < 5)
            continue;
        if ((right[2] || '').split(',').includes('cpu'))
            found = { mnt: unescapeMountinfo(left[4]), root: unescapeMountinfo(left[3]) };
    }
    return found;
}

let cg = null;                   // { mnt, root }
const groups = [];               // directories made here, in creation order

/* Checks root and a v1 cpu controller with messages a person can act on.
 * Without either the tests FAIL: a silent skip would hide what was never
 * checked. */
function cgroupSetup(file) {
    if (cg)
        return cg;
    assert.ok(typeof process.getuid === 'function' && process.getuid() === 0,
        `${file} must run as root: it creates cgroups under the cpu controller ` +
        '(CI runs as root; locally use sudo)');
    const m = cpuMount();
    assert.ok(m, 'no cgroup v1 mount with the cpu controller in /proc/self/mountinfo; ' +
        'this test needs a v1 or hybrid host (v2-only hosts are covered by the unit fixtures)');
    cg = m;
    return cg;
}

/* The directory of a group (relative name like "a/b") and its path in the
 * hierarchy as /proc/<pid>/cgroup and the probes show it. */
function groupDir(rel) {
    return path.join(cg.mnt, rel);
}
function groupPath(rel) {
    return (cg.root === '/' ? '' : cg.root) + '/' + rel;
}

function makeGroup(rel) {
    const dir = groupDir(rel);
    fs.mkdirSync(dir);
    groups.push(dir);
    return dir;
}

function setQuota(rel, quotaUs) {
    const dir = groupDir(rel);
    fs.writeFileSync(path.join(dir, 'cpu.cfs_period_us'), `${PERIOD_US}\n`);
    fs.writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), `${quotaUs}\n`);
    assert.strictEqual(fs.readFileSync(path.join(dir, 'cpu.cfs_quota_us'), 'utf8').trim(),
        String(quotaUs), `the kernel did not take cpu.cfs_quota_us=${quotaUs} in ${dir}`);
}

/* Runs cmd inside group rel: a shell moves itself into the group, then
 * execs cmd, so the process starts there (and its children stay there). */
function runInGroup(rel, cmd, args, opts = {}) {
    return run('sh', ['-c', 'echo $$ > "$E2E_GROUP/cgroup.procs" && exec "$@"', 'sh', cmd, ...args],
               { ...opts, env: { ...(opts.env || process.env), E2E_GROUP: groupDir(rel) } });
}

/* Stops every process still running, then removes the groups (children
 * first) and the Go build folder. Call from after(). */
async function cleanup() {
    for (const c of live)
        c.kill('SIGKILL');
    const problems = [];
    for (const dir of groups.splice(0).reverse()) {
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
                await sleep(50);
            }
        }
    }
    if (goTmp) {
        fs.rmSync(goTmp, { recursive: true, force: true });
        goTmp = null;
    }
    assert.deepStrictEqual(problems, [], 'could not remove the test cgroups');
}

module.exports = {
    PERIOD_US, sleep, run, waitFor, goBuild, cgroupSetup, groupDir, groupPath, makeGroup,
    setQuota, runInGroup, cleanup,
};

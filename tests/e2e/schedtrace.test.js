'use strict';
/*
 * End to end: a real Go program (Debian's golang-go) run with
 * GODEBUG=schedtrace, its stderr posted as text/plain to the real server.
 * Every SCHED line must become one sample with the same per-P run queues,
 * which this test reads from the raw text on its own (a strict regular
 * expression, independent of the server's parser).
 */
const assert = require('node:assert');
const { execFileSync, spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { startServer } = require('../http/lib.js');

const PROG_DIR = path.join(__dirname, 'goprog');
let bin;
let srv;
let dir;

before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gotuned-e2e-'));
    bin = path.join(dir, 'goprog');
    execFileSync('go', ['build', '-o', bin, '.'], {
        cwd: PROG_DIR,
        env: { ...process.env, GOFLAGS: '-mod=mod', GOPROXY: 'off', GOCACHE: path.join(dir, 'cache'),
               GOPATH: path.join(dir, 'gopath') },
        stdio: ['ignore', 'inherit', 'inherit'],
    });
    srv = await startServer();
});

after(async () => {
    if (srv)
        await srv.stop();
    if (dir)
        fs.rmSync(dir, { recursive: true, force: true });
});

/* Runs the program to completion (it stops by itself) and returns stderr. */
function runGo(env, args) {
    return new Promise((resolve, reject) => {
        const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
        const parts = [];
        child.stderr.on('data', (d) => parts.push(d));
        const timer = setTimeout(() => child.kill('SIGKILL'), 30000);
        child.on('error', reject);
        child.on('exit', (code) => {
            clearTimeout(timer);
            if (code !== 0)
                reject(new Error(`goprog exited with ${code}`));
            else
                resolve(Buffer.concat(parts).toString('utf8'));
        });
    });
}

const SUMMARY = /^SCHED (\d+)ms: gomaxprocs=(\d+) idleprocs=\d+ threads=\d+ spinningthreads=\d+ (?:needspinning=\d+ )?idlethreads=\d+ runqueue=(\d+) \[([\d ]*)\]$/;
const DETAIL = /^SCHED (\d+)ms: gomaxprocs=(\d+) .* gcwaiting=\S+ nmidlelocked=\d+ stopwait=\d+ sysmonwait=\S+$/;
const PLINE = /^  P(\d+): .* runqsize=(\d+) /;

function strictSummary(text) {
    const out = [];
    for (const line of text.split('\n')) {
        const m = SUMMARY.exec(line);
        if (m)
            out.push({ ts: +m[1], gomaxprocs: +m[2], global: +m[3], local: m[4].split(' ').map(Number) });
    }
    return out;
}

function strictDetail(text) {
    const out = [];
    let cur = null;
    for (const line of text.split('\n')) {
        const h = DETAIL.exec(line);
        if (h) {
            cur = { ts: +h[1], gomaxprocs: +h[2], local: [] };
            out.push(cur);
            continue;
        }
        const p = PLINE.exec(line);
        if (p && cur) {
            assert.strictEqual(+p[1], cur.local.length, 'P lines come in order');
            cur.local.push(+p[2]);
        } else if (!/^  [MG]\d+: /.test(line)) {
            cur = null;
        }
    }
    return out;
}

async function postAndCompare(agent, text, expected) {
    const q = `agent=${agent}&service=e2e&num_cpu=${os.cpus().length}`;
    const res = await srv.req('POST', `/api/v1/telemetry?${q}`, {
        body: text, headers: { 'Content-Type': 'text/plain' },
    });
    assert.strictEqual(res.status, 200, res.text);
    const schedLines = text.split('\n').filter((l) => l.startsWith('SCHED')).length;
    assert.ok(expected.length >= 5, `only ${expected.length} SCHED lines captured`);
    // Lines the strict expression cannot read (an application line landed
    // inside them) are the parser's to reassemble or refuse; all the others
    // must come out exactly.
    const clean = schedLines === expected.length;
    if (clean)
        assert.strictEqual(res.json.accepted, expected.length, res.text);
    else
        assert.ok(res.json.accepted >= expected.length, res.text);
    const got = await srv.get(`/api/v1/agents/${agent}/samples?limit=128`);
    assert.strictEqual(got.status, 200);
    const samples = got.json.samples;
    let j = 0;
    for (const want of expected) {
        while (j < samples.length && samples[j].ts_ms !== want.ts)
            j++;
        assert.ok(j < samples.length, `no sample for SCHED ${want.ts}ms`);
        assert.deepStrictEqual(samples[j].local_runq, want.local, `per-P queues at ${want.ts}ms`);
        assert.strictEqual(samples[j].gomaxprocs, want.gomaxprocs);
        if (want.global !== undefined)
            assert.strictEqual(samples[j].global_runq, want.global);
        j++;
    }
    return res.json;
}

for (const procs of [1, 2, 4, 8]) {
    test(`schedtrace from a real Go program at GOMAXPROCS=${procs}`, async () => {
        const text = await runGo({ GODEBUG: 'schedtrace=50', GOMAXPROCS: String(procs) }, ['-ms', '900']);
        const expected = strictSummary(text);
        assert.ok(expected.every((e) => e.local.length === procs));
        const res = await postAndCompare(`e2e-p${procs}`, text, expected);
        // The program's own lines are counted, not turned into samples.
        assert.ok(res.other_lines >= 2, res.other_lines);
    });
}

test('scheddetail=1 from a real Go program: per-P queues from the P lines', async () => {
    const text = await runGo({ GODEBUG: 'schedtrace=100,scheddetail=1', GOMAXPROCS: '4' }, ['-ms', '700']);
    const expected = strictDetail(text);
    assert.ok(expected.every((e) => e.local.length === 4));
    await postAndCompare('e2e-detail', text, expected);
});

test('a real trace gives a quota recommendation through the API', async () => {
    const text = await runGo({ GODEBUG: 'schedtrace=50', GOMAXPROCS: '8' }, ['-ms', '500']);
    const res = await srv.req('POST', '/api/v1/telemetry?agent=e2e-quota&service=e2e&num_cpu=16&cpu_limit=2.5', {
        body: text, headers: { 'Content-Type': 'text/plain' },
    });
    assert.strictEqual(res.status, 200, res.text);
    const rec = await srv.get('/api/v1/agents/e2e-quota/recommendation');
    assert.strictEqual(rec.status, 200);
    assert.strictEqual(rec.json.config.gomaxprocs, 3);
    assert.strictEqual(rec.json.reasons[0].rule, 'quota');
    assert.strictEqual(rec.json.imbalance.samples > 0, true);
});

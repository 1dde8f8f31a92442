'use strict';
/*
 * End to end: the gotuned-agent sidecar (GOTUNED_AGENT_BIN) runs real Go
 * programs beside the real server, in a real cgroup v1 group with a CPU
 * quota.
 *
 *  - quota: GOMAXPROCS=8 in a 1.5-CPU group, service in auto mode: the
 *    server recommends 2, the agent restarts the child with GOMAXPROCS=2,
 *    the samples that follow say gomaxprocs=2, and version 1 is ACKed.
 *  - server down: the server stops for a few seconds mid-run; the child's
 *    stderr comes through complete and unchanged, the samples taken while
 *    it was down arrive after it returns, and the child's exit status is
 *    the agent's.
 *  - a crashing child: its panic output passes through, the agent exits
 *    with the child's status.
 *
 * Needs root and a v1 cpu controller (see tests/e2e/lib.js); without them
 * these tests FAIL rather than skip.
 */
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { startServer, assertJson } = require('../http/lib.js');
const { sleep, run, waitFor, goBuild, cgroupSetup, groupDir, groupPath, makeGroup, setQuota,
        runInGroup, cleanup } = require('./lib');

const AGENT = process.env.GOTUNED_AGENT_BIN;
let load;         // tests/go/agentload
let panicker;     // tests/go/panicker
const servers = [];

before(() => {
    assert.ok(AGENT, 'GOTUNED_AGENT_BIN must name the gotuned-agent binary (make e2e sets it)');
    assert.ok(fs.existsSync(AGENT), `GOTUNED_AGENT_BIN=${AGENT} does not exist`);
    load = goBuild('agentload');
    panicker = goBuild('panicker');
});

after(async () => {
    for (const s of servers)
        await s.stop();
    await cleanup();
});

async function server(opts) {
    const s = await startServer(opts);
    servers.push(s);
    return s;
}

function agentArgs(srv, service, id, apply, prog, progArgs, extra = []) {
    return ['--server', srv.base, '--service', service, '--id', id, '--apply', apply, ...extra,
            '--interval', '1', '--schedtrace', '100', '--', prog, ...progArgs];
}

/* The group's cpu.stat counters, throttled time in microseconds. */
function cpuStat(rel) {
    const kv = {};
    for (const line of fs.readFileSync(`${groupDir(rel)}/cpu.stat`, 'utf8').split('\n')) {
        const [k, v] = line.split(' ');
        if (k)
            kv[k] = Number(v);
    }
    kv.throttled_us = Math.floor(kv.throttled_time / 1000);
    return kv;
}

async function agentOf(srv, id) {
    const res = await srv.get(`/api/v1/agents/${id}`);
    return res.status === 200 ? res.json : null;
}

async function samplesOf(srv, id) {
    return assertJson(await srv.get(`/api/v1/agents/${id}/samples?limit=128`)).samples;
}

/* The application records of agentload's stderr, as the program wrote them
 * (see tests/go/agentload/main.go); the tests rebuild them to compare. */
function payload(i, long) {
    if (long > 0 && i % long === long - 1)
        return `${String(i).padStart(7, '0')}|`.repeat(10000);
    return `checksum=${i * 7919 % 100003} text=${'ab'.repeat(i % 13)}`;
}

/* Checks one run's part of stderr: agentload's lines 0..n-1, each exactly
 * as written and in order; other lines may be only the agent's own. */
function assertRun(part, n, long, run) {
    const lines = part.split('\n');
    assert.strictEqual(lines.pop(), '', `run ${run}: the line before the end line is terminated`);
    let i = 0;
    const foreign = [];
    for (const line of lines) {
        if (line.startsWith('app ')) {
            const want = `app ${String(i).padStart(6, '0')} ${payload(i, long)}`;
            if (line !== want) {
                let k = 0;
                while (k < line.length && line[k] === want[k])
                    k++;
                assert.fail(`run ${run}: application line ${i} differs at byte ${k} ` +
                    `(${line.length} bytes, want ${want.length}): ...${line.slice(Math.max(0, k - 20), k + 60)}...`);
            }
            i++;
        } else if (!line.startsWith('gotuned-agent: ')) {
            foreign.push(line);
        }
    }
    assert.strictEqual(i, n, `run ${run}: ${n} application lines were written, ${i} came through`);
    assert.deepStrictEqual(foreign, [], `run ${run}: stderr holds lines that are neither the application's nor the agent's`);
}

/* Checks that stderr holds, for each run of agentload (a restart starts
 * another), its lines and then its unterminated last line "app end after
 * N lines", byte for byte; the next run's output follows that directly.
 * Returns the line counts of the runs. */
function assertAppOutput(stderr, long) {
    // A 70,000-byte line is written with one write(2), but a pipe takes at
    // most PIPE_BUF bytes atomically: a SCHED line the runtime prints at the
    // same moment can land inside it, in the child's own stderr. Such a
    // SCHED line is left where the kernel put it; take it out here.
    let text = stderr.toString('utf8').replace(/(?<=\|)SCHED \d+ms: [^\n]*\n/g, '');
    // After the child's unterminated last line the agent may log (its own
    // lines start on a line of their own).
    const tail = /\n(?:gotuned-agent: [^\n]*\n)+$/.exec(text);
    if (tail)
        text = text.slice(0, tail.index);
    assert.match(text, /app end after \d+ lines$/,
        `stderr does not end with agentload's unterminated last line; tail:\n${text.slice(-300)}`);
    const counts = [];
    const re = /app end after (\d+) lines/g;
    let from = 0;
    for (let m; (m = re.exec(text)) !== null; from = re.lastIndex) {
        counts.push(Number(m[1]));
        assertRun(text.slice(from, m.index), counts.at(-1), long, counts.length);
    }
    return counts;
}

test('quota: GOMAXPROCS=8 in a 1.5-CPU group becomes 2 by restart, and is ACKed', async () => {
    const cg = cgroupSetup('tests/e2e/agent.test.js');
    assert.ok(cg);
    const grp = `gotuned-agent-${process.pid}`;
    makeGroup(grp);
    setQuota(grp, 150000);
    const srv = await server();
    assertJson(await srv.put('/api/v1/services/quota/policy', { mode: { default: 'auto' } }));

    const agent = runInGroup(grp, AGENT, agentArgs(srv, 'quota', 'quota-1', 'restart', load,
        ['-every', '50ms', '-long', '0']), { env: { ...process.env, GOMAXPROCS: '8' } });
    try {
        const a = await waitFor('version 1 to be applied and ACKed', async () => {
            const x = await agentOf(srv, 'quota-1');
            return x && x.config_version >= 1 && x.applied_version === x.config_version ? x : null;
        }, 40000, 200);
        assert.strictEqual(a.config_version, 1, 'one version: the quota change');
        assert.deepStrictEqual(a.config.config.gomaxprocs, 2);
        assert.equal(a.config.source, 'tuner');
        assert.ok(a.config.reasons.some((r) => r.rule === 'quota'), JSON.stringify(a.config.reasons));
        assert.strictEqual(a.mode, 'auto');
        assert.ok(Math.abs(a.cpu.limit - 1.5) < 1e-9, `cpu.limit ${a.cpu.limit}`);
        assert.ok(a.cpu.limit_source.includes(groupPath(grp)), a.cpu.limit_source);
        assert.ok(a.cpu.throttling && a.cpu.throttling.periods > 0,
            `throttling reported: ${JSON.stringify(a.cpu.throttling)}`);

        const acks = assertJson(await srv.get('/api/v1/events?agent=quota-1&kind=ack')).events;
        assert.equal(acks.length, 1, 'one ACK');
        assert.equal(acks[0].actor, 'agent');
        const nacks = assertJson(await srv.get('/api/v1/events?agent=quota-1&kind=nack')).events;
        assert.deepStrictEqual(nacks, [], 'no NACK');

        // Before the restart the child ran 8 Ps; every sample received after
        // the ACK says 2 (the agent ACKs only once a SCHED line shows it).
        const acked = a.applied_ms;
        const after2 = await waitFor('three samples after the ACK', async () => {
            const s = (await samplesOf(srv, 'quota-1')).filter((x) => x.recv_ms > acked);
            return s.length >= 3 ? s : null;
        }, 15000, 200);
        assert.deepStrictEqual([...new Set(after2.map((x) => x.gomaxprocs))], [2]);
        assert.ok(after2.every((x) => x.local_runq.length === 2));
        const all = await samplesOf(srv, 'quota-1');
        assert.ok(all.some((x) => x.gomaxprocs === 8), 'samples from the first child (8 Ps) were pushed');

        // Throttling: the counters the agent sends are the group's own
        // cpu.stat. Sandwiched between two reads of the file: a report
        // taken after the first read is at least that, and at most the
        // second read.
        const f1 = cpuStat(grp);
        const t1 = Date.now();
        const thr = await waitFor('a throttling report taken after reading cpu.stat', async () => {
            const x = (await agentOf(srv, 'quota-1')).cpu.throttling;
            return x.reported_ms > t1 + 1500 ? x : null;
        }, 15000, 200);
        const f2 = cpuStat(grp);
        for (const [k, file] of [['periods', 'nr_periods'], ['throttled_periods', 'nr_throttled'],
                                 ['throttled_us', 'throttled_us']])
            assert.ok(thr[k] >= f1[file] && thr[k] <= f2[file],
                `${k}: reported ${thr[k]}, cpu.stat said ${f1[file]} before and ${f2[file]} after`);
        // Two reports may fall in the same 100 ms period (the push before an
        // ACK right after a timed one), so only the total must have grown.
        assert.ok(thr.periods > 0 && thr.recent && thr.recent.periods >= 0, JSON.stringify(thr));
    } finally {
        const { code, signal } = await agent.stop('SIGTERM');
        const out = agent.out().toString();
        assert.strictEqual(signal, null, `the agent died of ${signal}; stderr tail:\n${agent.err().toString().slice(-2000)}`);
        assert.strictEqual(code, 0, `agent exit ${code}; stderr tail:\n${agent.err().toString().slice(-2000)}`);
        // stdout is the child's own: both children printed their GOMAXPROCS.
        assert.match(out, /^gomaxprocs=8\n(got terminated\n)?gomaxprocs=2\ngot terminated\n$/, out);
    }
    const runs = assertAppOutput(agent.err(), 0);
    assert.strictEqual(runs.length, 2, 'two runs: before and after the restart');
});

test('server down mid-run: output complete and unchanged, samples caught up', async () => {
    let srv = await server();
    const agent = run(AGENT, agentArgs(srv, 'down', 'down-1', 'none', load,
        ['-d', '9s', '-every', '20ms', '-long', '25', '-code', '3']));
    await waitFor('the first samples', async () => {
        const a = await agentOf(srv, 'down-1');
        return a && a.samples_total >= 5;
    }, 15000, 100);
    const { port, dataDir } = srv;
    await srv.stop();
    servers.splice(servers.indexOf(srv), 1);
    const downFrom = Date.now();
    await sleep(3000);
    const downTo = Date.now();
    srv = await server({ port, dataDir });

    const { code, signal } = await waitFor('the agent to exit', () =>
        Promise.race([agent.exited, sleep(100).then(() => null)]), 30000, 0);
    assert.strictEqual(signal, null);
    assert.strictEqual(code, 3, `the agent exits with the child's status; stderr tail:\n${agent.err().toString().slice(-1500)}`);
    const runs = assertAppOutput(agent.err(), 25);
    assert.strictEqual(runs.length, 1);
    assert.ok(runs[0] > 200, `agentload wrote ${runs[0]} lines in 9 s`);

    // The samples read while the server was down arrived after it came back.
    const a = await agentOf(srv, 'down-1');
    assert.strictEqual(a.dropped_samples, 0);
    const s = await samplesOf(srv, 'down-1');
    const gap = s.filter((x) => x.ts_ms > downFrom + 300 && x.ts_ms < downTo - 300);
    assert.ok(gap.length >= 15, `${gap.length} samples taken while the server was down reached it`);
    assert.ok(gap.every((x) => x.recv_ms >= downTo), 'they were received after the restart');
});

test('a crashing child: the panic passes through whole, the agent exits with its status', async () => {
    const srv = await server();
    const agent = run(AGENT, agentArgs(srv, 'crash', 'crash-1', 'none', panicker, ['-after', '1s']));
    const { code, signal } = await waitFor('the agent to exit', () =>
        Promise.race([agent.exited, sleep(100).then(() => null)]), 30000, 0);
    const err = agent.err().toString();
    assert.strictEqual(signal, null);
    assert.strictEqual(code, 2, `a Go panic exits 2; stderr:\n${err.slice(-2000)}`);
    assert.match(err, /^panicker: started$/m);
    assert.match(err, /^panic: inventory hold 42 lost$/m);
    assert.match(err, /^goroutine \d+ \[running\]:$/m);
    assert.match(err, /^main\.main\(\)$/m);
    assert.doesNotMatch(err, /^SCHED /m, 'SCHED output is taken out of the stream');
    const a = await waitFor('the crash-time samples', async () => {
        const x = await agentOf(srv, 'crash-1');
        return x && x.samples_total >= 3 ? x : null;
    }, 10000, 100);
    assert.ok(a.samples_total >= 3);
});

test('--apply file: the Go library in the child applies the config live and its ACK is forwarded', async () => {
    const srv = await server();
    const lib = goBuild('libagent');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gotuned-file-'));
    const cfg = path.join(dir, 'gotuned.json');
    const agent = run(AGENT, agentArgs(srv, 'filemode', 'file-1', 'file', lib,
        ['-service', 'filemode', '-config-file', cfg], ['--config-file', cfg]));
    try {
        const first = await waitFor('the first samples', async () => {
            const a = await agentOf(srv, 'file-1');
            return a && a.samples_total >= 3 ? a : null;
        }, 15000, 100);
        const ov = await srv.put('/api/v1/agents/file-1/override', { gomaxprocs: 1, pool: { steal_threshold: 3 } });
        assert.ok(ov.status === 200 || ov.status === 201, `override: ${ov.status} ${ov.text}`);
        const a = await waitFor('version 1 to be ACKed', async () => {
            const x = await agentOf(srv, 'file-1');
            return x && x.applied_version === 1 ? x : null;
        }, 20000, 100);
        assert.strictEqual(a.pid, first.pid, 'applied in place: the same process');
        assert.strictEqual(JSON.parse(fs.readFileSync(cfg, 'utf8')).version, 1);
        assert.deepStrictEqual(JSON.parse(fs.readFileSync(`${cfg}.ack`, 'utf8')), { version: 1, status: 'applied' });
        // The runtime's own SCHED lines, pushed by the sidecar, show 1 P now.
        const later = await waitFor('SCHED samples after the ACK', async () => {
            const s = (await samplesOf(srv, 'file-1')).filter((x) => x.recv_ms > a.applied_ms);
            return s.length >= 3 ? s : null;
        }, 10000, 100);
        assert.deepStrictEqual([...new Set(later.map((x) => x.gomaxprocs))], [1]);
    } finally {
        const { code } = await agent.stop('SIGTERM');
        assert.strictEqual(code, 0, `agent exit ${code}:\n${agent.err().toString().slice(-1500)}`);
        fs.rmSync(dir, { recursive: true, force: true });
    }
    assert.match(agent.out().toString(), /^applied version=1 gomaxprocs=1 steal_threshold=3$/m);
});

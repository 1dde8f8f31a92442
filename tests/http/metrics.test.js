'use strict';
/*
 * GET /metrics (README "Metrics"): the Prometheus text exposition format,
 * version 0.0.4, read with a strict parser written here against the
 * format's grammar, and the values checked to move by exactly what each
 * test did: requests by route template and status, request and blocking
 * query durations, the held-query gauge, telemetry samples by format and
 * result, config versions by source, rollbacks by trigger, agents by mode,
 * the agents' reported drops, and the store's batches and commits.
 *
 * One server for the file; every test reads the metrics before and after
 * what it does and compares the two, so the tests do not depend on each
 * other's counts.
 */
const assert = require('node:assert');
const { before, after } = require('node:test');
const {
    startServer, serverTest, assertError, assertJson, assertStatus, contentType, header,
    batch, sample, postTelemetry, sleep,
} = require('./lib');

let srv;
const test = serverTest(() => [srv]);

before(async () => {
    srv = await startServer();
    // Changes as often as a test likes, and short verification windows.
    assertStatus(await srv.put('/api/v1/services/mx/policy',
        { guards: { min_interval_s: 0 }, verify: { window: 5 } }), 200);
});
after(async () => {
    if (srv)
        await srv.stop();
});

/* ============================================================ the parser */

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const FLOAT = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?Inf|NaN)$/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

function parseFloatStrict(s, where) {
    if (!FLOAT.test(s))
        throw new Error(`${where}: "${s}" is not a float`);
    if (/Inf$/.test(s))
        return s.startsWith('-') ? -Infinity : Infinity;
    return s === 'NaN' ? NaN : Number(s);
}

/* A HELP text: only \\ and \n may follow a backslash. */
function unescapeHelp(s, where) {
    return s.replace(/\\(.?)/g, (_, c) => {
        if (c === '\\')
            return '\\';
        if (c === 'n')
            return '\n';
        throw new Error(`${where}: bad escape "\\${c}" in HELP`);
    });
}

/* Reads one sample line: name, optional {labels}, value, optional
 * timestamp. Returns {name, labels (object), value}. */
function parseSampleLine(line, where) {
    let i = 0;
    const m = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
    if (!m)
        throw new Error(`${where}: no metric name: ${line}`);
    const name = m[0];
    i = name.length;
    const labels = {};
    if (line[i] === '{') {
        i++;
        for (;;) {
            if (line[i] === '}') {
                i++;
                break;
            }
            const ln = /^[a-zA-Z_][a-zA-Z0-9_]*/.exec(line.slice(i));
            if (!ln)
                throw new Error(`${where}: bad label name at ${i}: ${line}`);
            const key = ln[0];
            if (key.startsWith('__'))
                throw new Error(`${where}: reserved label name ${key}`);
            if (key in labels)
                throw new Error(`${where}: label ${key} twice`);
            i += key.length;
            if (line[i] !== '=' || line[i + 1] !== '"')
                throw new Error(`${where}: expected =" after ${key}: ${line}`);
            i += 2;
            let v = '';
            for (;;) {
                if (i >= line.length)
                    throw new Error(`${where}: unterminated label value: ${line}`);
                const c = line[i++];
                if (c === '"')
                    break;
                if (c === '\\') {
                    const e = line[i++];
                    if (e === '\\')
                        v += '\\';
                    else if (e === '"')
                        v += '"';
                    else if (e === 'n')
                        v += '\n';
                    else
                        throw new Error(`${where}: bad escape "\\${e}" in a label value`);
                } else {
                    v += c;
                }
            }
            labels[key] = v;
            if (line[i] === ',') {
                i++;
                continue;
            }
            if (line[i] !== '}')
                throw new Error(`${where}: expected , or } at ${i}: ${line}`);
        }
    }
    if (line[i] !== ' ')
        throw new Error(`${where}: expected a space before the value: ${line}`);
    const rest = line.slice(i + 1).split(' ');
    if (rest.length < 1 || rest.length > 2 || rest.some((x) => x === ''))
        throw new Error(`${where}: expected a value and an optional timestamp: ${line}`);
    const value = parseFloatStrict(rest[0], where);
    if (rest.length === 2 && !/^-?\d+$/.test(rest[1]))
        throw new Error(`${where}: bad timestamp ${rest[1]}`);
    return { name, labels, value };
}

const seriesKey = (name, labels) =>
    name + '{' + Object.keys(labels).sort().map((k) => `${k}=${JSON.stringify(labels[k])}`).join(',') + '}';

/* The family a sample name belongs to, given the TYPEs seen so far. */
function familyOf(name, families) {
    if (families.has(name) && families.get(name).type !== 'histogram')
        return name;
    for (const suffix of ['_bucket', '_sum', '_count']) {
        if (name.endsWith(suffix)) {
            const base = name.slice(0, -suffix.length);
            const f = families.get(base);
            if (f && (f.type === 'histogram' || (f.type === 'summary' && suffix !== '_bucket')))
                return base;
        }
    }
    return null;
}

/* Checks one histogram family's series: per label set (without le),
 * buckets in increasing le, cumulative counts that never fall, a +Inf
 * bucket equal to _count, and a _sum. */
function checkHistogram(fam) {
    const groups = new Map();
    const group = (labels) => {
        const { le, ...rest } = labels;
        const k = seriesKey('', rest);
        if (!groups.has(k))
            groups.set(k, { buckets: [], sum: undefined, count: undefined });
        return groups.get(k);
    };
    for (const s of fam.samples) {
        if (s.name === `${fam.name}_bucket`) {
            assert.ok('le' in s.labels, `${fam.name}_bucket without le`);
            group(s.labels).buckets.push({ le: parseFloatStrict(s.labels.le, `${fam.name} le`), v: s.value });
        } else {
            assert.ok(!('le' in s.labels), `${s.name} must not have an le label`);
            const g = group(s.labels);
            if (s.name === `${fam.name}_sum`)
                g.sum = s.value;
            else if (s.name === `${fam.name}_count`)
                g.count = s.value;
            else
                throw new Error(`${s.name} does not belong to histogram ${fam.name}`);
        }
    }
    assert.ok(groups.size > 0 || fam.samples.length === 0);
    for (const [k, g] of groups) {
        const what = `${fam.name}${k}`;
        assert.ok(g.buckets.length > 0, `${what}: no buckets`);
        for (let i = 1; i < g.buckets.length; i++) {
            assert.ok(g.buckets[i].le > g.buckets[i - 1].le, `${what}: le not increasing`);
            assert.ok(g.buckets[i].v >= g.buckets[i - 1].v, `${what}: buckets not cumulative at le=${g.buckets[i].le}`);
        }
        const last = g.buckets[g.buckets.length - 1];
        assert.strictEqual(last.le, Infinity, `${what}: the last bucket must be le="+Inf"`);
        assert.ok(g.buckets.every((b) => Number.isInteger(b.v) && b.v >= 0), `${what}: bucket counts are whole and non-negative`);
        assert.notStrictEqual(g.count, undefined, `${what}: no _count`);
        assert.notStrictEqual(g.sum, undefined, `${what}: no _sum`);
        assert.strictEqual(last.v, g.count, `${what}: le="+Inf" (${last.v}) must equal _count (${g.count})`);
        assert.ok(!Number.isNaN(g.sum), `${what}: _sum is NaN`);
    }
}

/*
 * Parses exposition text strictly. Returns {families: Map name →
 * {name, type, help, samples}, get(name, labels), series: Map key → value}.
 */
function parseExposition(text) {
    assert.ok(text.length > 0, 'empty exposition');
    assert.ok(text.endsWith('\n'), 'the exposition must end with a newline');
    const families = new Map();
    const series = new Map();
    const closed = new Set();       // families whose lines have ended
    let current = null;             // the family whose lines come now
    const enter = (name, where) => {
        if (current === name)
            return;
        if (closed.has(name))
            throw new Error(`${where}: the lines of ${name} are not together`);
        if (current)
            closed.add(current);
        current = name;
    };
    const lines = text.slice(0, -1).split('\n');
    lines.forEach((line, n) => {
        const where = `line ${n + 1}`;
        if (line === '')
            return;     // the format ignores empty lines
        if (line.startsWith('#')) {
            const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
            if (!m)
                return; // another comment
            const [, kind, name, rest] = m;
            if (!METRIC_NAME.test(name))
                throw new Error(`${where}: bad metric name ${name}`);
            enter(name, where);
            if (!families.has(name))
                families.set(name, { name, type: undefined, help: undefined, samples: [] });
            const f = families.get(name);
            if (kind === 'HELP') {
                if (f.help !== undefined)
                    throw new Error(`${where}: a second HELP for ${name}`);
                f.help = unescapeHelp(rest, where);
            } else {
                if (f.type !== undefined)
                    throw new Error(`${where}: a second TYPE for ${name}`);
                if (f.samples.length)
                    throw new Error(`${where}: TYPE of ${name} after its samples`);
                if (!TYPES.has(rest))
                    throw new Error(`${where}: unknown type ${rest}`);
                f.type = rest;
            }
            return;
        }
        const s = parseSampleLine(line, where);
        const fam = familyOf(s.name, families);
        if (!fam || families.get(fam).type === undefined)
            throw new Error(`${where}: sample ${s.name} before (or without) the TYPE of its family`);
        enter(fam, where);
        const key = seriesKey(s.name, s.labels);
        if (series.has(key))
            throw new Error(`${where}: series ${key} twice`);
        series.set(key, s.value);
        families.get(fam).samples.push(s);
    });
    for (const f of families.values()) {
        assert.ok(f.type, `${f.name} has no TYPE`);
        if (f.type === 'counter')
            for (const s of f.samples)
                assert.ok(s.value >= 0 && !Number.isNaN(s.value), `counter ${s.name} is ${s.value}`);
        if (f.type === 'histogram')
            checkHistogram(f);
    }
    return {
        families,
        series,
        /* The value of one series; undefined when it is not there. */
        get: (name, labels = {}) => series.get(seriesKey(name, labels)),
    };
}

/* ============================================================== helpers */

const CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

async function scrape() {
    const res = await srv.get('/metrics');
    assertStatus(res, 200);
    assert.strictEqual(contentType(res), CONTENT_TYPE);
    return parseExposition(res.text);
}

/* The change of one series between two scrapes (absent counts as 0). */
function delta(a, b, name, labels = {}) {
    return (b.get(name, labels) || 0) - (a.get(name, labels) || 0);
}

const req = (route, method, code) => ['gotuned_http_requests_total', { route, method, code: String(code) }];
const dur = (route, method) => ['gotuned_http_request_duration_seconds_count', { route, method }];
const samplesOf = (format, result) => ['gotuned_telemetry_samples_total', { format, result }];

/* Polls until pred(scrape) holds, at most ms; returns the last scrape. */
async function scrapeUntil(pred, ms, what) {
    const t0 = Date.now();
    for (;;) {
        const m = await scrape();
        if (pred(m))
            return m;
        if (Date.now() - t0 > ms)
            throw new Error(`${what}: not within ${ms} ms`);
        await sleep(50);
    }
}

const SCHED = (ms, runq) => `SCHED ${ms}ms: gomaxprocs=${runq.length} idleprocs=0 threads=5 ` +
    `spinningthreads=0 idlethreads=1 runqueue=0 [${runq.join(' ')}]\n`;

/* ================================================================ tests */

test('the parser is strict: it refuses what the format does not allow', () => {
    const ok = '# HELP a_total A.\n# TYPE a_total counter\na_total{x="1"} 2\n';
    assert.strictEqual(parseExposition(ok).get('a_total', { x: '1' }), 2);
    const esc = '# TYPE g gauge\ng{v="a\\\\b\\"c\\nd"} -1.5e3\n';
    assert.strictEqual(parseExposition(esc).get('g', { v: 'a\\b"c\nd' }), -1500);
    const bad = {
        'no TYPE': 'x 1\n',
        'TYPE twice': '# TYPE x gauge\n# TYPE x gauge\nx 1\n',
        'TYPE after samples': '# TYPE x gauge\nx 1\n# TYPE x gauge\n',
        'unknown type': '# TYPE x meter\nx 1\n',
        'bad name': '# TYPE 1x gauge\n1x 1\n',
        'bad label name': '# TYPE x gauge\nx{1a="b"} 1\n',
        'bad escape': '# TYPE x gauge\nx{a="\\t"} 1\n',
        'unterminated value': '# TYPE x gauge\nx{a="b} 1\n',
        'duplicate series': '# TYPE x gauge\nx{a="b"} 1\nx{a="b"} 2\n',
        'duplicate label': '# TYPE x gauge\nx{a="b",a="c"} 1\n',
        'bad value': '# TYPE x gauge\nx 1,5\n',
        'no newline at the end': '# TYPE x gauge\nx 1',
        'negative counter': '# TYPE x_total counter\nx_total -1\n',
        'family split': '# TYPE x gauge\nx{a="1"} 1\n# TYPE y gauge\ny 1\nx{a="2"} 1\n',
        'buckets not cumulative': '# TYPE h histogram\nh_bucket{le="1"} 3\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 2\n',
        'no +Inf bucket': '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
        '+Inf is not _count': '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 2\nh_sum 1\nh_count 3\n',
        'no _sum': '# TYPE h histogram\nh_bucket{le="+Inf"} 2\nh_count 2\n',
        'le not increasing': '# TYPE h histogram\nh_bucket{le="2"} 1\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
    };
    for (const [why, text] of Object.entries(bad))
        assert.throws(() => parseExposition(text), undefined, `the parser accepted: ${why}`);
});

test('GET /metrics: the content type, HELP and TYPE for every family, the families README lists', async () => {
    const res = await srv.get('/metrics');
    assertStatus(res, 200);
    assert.strictEqual(contentType(res), CONTENT_TYPE);
    assert.strictEqual(header(res, 'cache-control'), 'no-store');
    const m = parseExposition(res.text);
    const want = {
        gotuned_build_info: 'gauge',
        gotuned_http_requests_total: 'counter',
        gotuned_http_request_duration_seconds: 'histogram',
        gotuned_blocking_query_duration_seconds: 'histogram',
        gotuned_blocking_queries_waiting: 'gauge',
        gotuned_blocking_queries_resumed_total: 'counter',
        gotuned_telemetry_samples_total: 'counter',
        gotuned_rollbacks_total: 'counter',
        gotuned_config_versions_total: 'counter',
        gotuned_store_commit_duration_seconds: 'histogram',
        gotuned_store_batch_samples: 'histogram',
        gotuned_store_samples_persisted_total: 'counter',
        gotuned_store_samples_pending: 'gauge',
        gotuned_store_samples_dropped_total: 'counter',
        gotuned_store_up: 'gauge',
        gotuned_agents: 'gauge',
        gotuned_agent_dropped_samples: 'gauge',
        process_start_time_seconds: 'gauge',
        process_cpu_seconds_total: 'counter',
        process_resident_memory_bytes: 'gauge',
    };
    for (const [name, type] of Object.entries(want)) {
        const f = m.families.get(name);
        assert.ok(f, `family ${name} is missing`);
        assert.strictEqual(f.type, type, `${name} is a ${type}`);
        assert.ok(f.help && f.help.length > 10, `${name} has a HELP text`);
    }
    assert.deepStrictEqual([...m.families.keys()].sort(), Object.keys(want).sort(),
        'every family is known to this test (and to README "Metrics")');
    assert.strictEqual(m.get('gotuned_build_info', { version: '0.1.0' }), 1);
    assert.strictEqual(m.get('gotuned_store_up'), 1);
    const start = m.get('process_start_time_seconds');
    assert.ok(start > Date.now() / 1000 - 600 && start <= Date.now() / 1000 + 1, `start time ${start}`);
    assert.ok(m.get('process_resident_memory_bytes') > 1e6, 'resident memory in bytes');
    // The histogram buckets run from 0.5 ms to 10 s.
    const les = m.families.get('gotuned_http_request_duration_seconds').samples
        .filter((s) => s.name.endsWith('_bucket') && s.labels.route === '/healthz')
        .map((s) => s.labels.le);
    assert.deepStrictEqual(les, ['0.0005', '0.001', '0.0025', '0.005', '0.01', '0.025', '0.05',
        '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']);

    const head = await srv.req('HEAD', '/metrics');
    assertStatus(head, 200);
    assert.strictEqual(head.text, '', 'HEAD has no body');
    const post = await srv.req('POST', '/metrics', { body: '' });
    assertError(post, 405, 'method_not_allowed', null);
    assert.strictEqual(header(post, 'allow'), 'GET');
});

test('requests are counted by route template and status, never by raw path', async () => {
    const m0 = await scrape();
    for (let i = 0; i < 3; i++)
        assertStatus(await srv.get('/healthz'), 200);
    for (const id of ['nope-1', 'nope-2'])
        assertError(await srv.get(`/api/v1/agents/${id}/config`), 404, 'not_found');
    assertError(await srv.get('/api/v1/no-such-route-x7'), 404, 'not_found');
    assertError(await srv.get('/no-such-file-x7.js'), 404, 'not_found');
    assertStatus(await srv.get('/app.js'), 200);
    assertStatus(await srv.get('/'), 200);
    assertError(await srv.req('DELETE', '/healthz'), 405, 'method_not_allowed');
    assertError(await srv.post('/api/v1/telemetry', { agent: { id: 'bad id', service: 's' } }), 422, 'invalid');
    const m1 = await scrape();

    const expect = [
        [req('/healthz', 'GET', 200), 3],
        [req('/api/v1/agents/{id}/config', 'GET', 404), 2],
        [req('other', 'GET', 404), 2],
        [req('static', 'GET', 200), 2],
        [req('/healthz', 'DELETE', 405), 1],
        [req('/api/v1/telemetry', 'POST', 422), 1],
        [req('/metrics', 'GET', 200), 1],    // the first scrape, counted once answered
        [dur('/healthz', 'GET'), 3],
        [dur('/api/v1/agents/{id}/config', 'GET'), 2],
        [dur('static', 'GET'), 2],
        [dur('other', 'GET'), 2],
    ];
    for (const [[name, labels], n] of expect)
        assert.strictEqual(delta(m0, m1, name, labels), n, `${name} ${JSON.stringify(labels)} moved by ${n}`);
    // Nothing else moved.
    const total = (m) => m.families.get('gotuned_http_requests_total').samples.reduce((a, s) => a + s.value, 0);
    assert.strictEqual(total(m1) - total(m0), 12, 'the requests counter moved by the 11 requests and one scrape');

    const routes = new Set(m1.families.get('gotuned_http_requests_total').samples.map((s) => s.labels.route));
    for (const r of routes)
        assert.ok(r === 'static' || r === 'other' || /^\/[a-z0-9/{}]*$/.test(r), `route label ${r} is a template`);
    assert.ok(![...m1.series.keys()].some((k) => /nope|x7/.test(k)), 'no raw path in any label');
    const sumDur = m1.get('gotuned_http_request_duration_seconds_sum', { route: '/healthz', method: 'GET' }) -
        m0.get('gotuned_http_request_duration_seconds_sum', { route: '/healthz', method: 'GET' });
    assert.ok(sumDur > 0 && sumDur < 3, `three health checks took ${sumDur} s`);
});

test('telemetry samples: accepted and rejected, by format', async () => {
    const m0 = await scrape();
    // JSON: 3 samples stored, then a push of 4 refused whole (one bad sample).
    assertJson(await srv.post('/api/v1/telemetry', batch('mx-tel', { service: 'mx' },
        [sample([0, 1]), sample([1, 1]), sample([2, 0])])));
    assertError(await srv.post('/api/v1/telemetry', batch('mx-tel', { service: 'mx' },
        [sample([0, 1]), sample([1, 1]), { gomaxprocs: 'x' }, sample([2, 0])])), 422, 'invalid');
    // Text: 2 good SCHED lines and one cut short, plus a line that is not SCHED.
    const text = SCHED(0, [1, 0]) + 'hello from the program\n' + SCHED(1000, [0, 2]) +
        'SCHED 2000ms: gomaxprocs=2 idlepr\n';
    const t = await srv.req('POST', '/api/v1/telemetry?agent=mx-tel-text&service=mx',
        { headers: { 'Content-Type': 'text/plain' }, body: text });
    const tj = assertJson(t);
    assert.strictEqual(tj.accepted, 2);
    assert.strictEqual(tj.rejected, 1);
    const m1 = await scrape();
    assert.strictEqual(delta(m0, m1, ...samplesOf('json', 'accepted')), 3);
    assert.strictEqual(delta(m0, m1, ...samplesOf('json', 'rejected')), 4);
    assert.strictEqual(delta(m0, m1, ...samplesOf('text', 'accepted')), 2);
    assert.strictEqual(delta(m0, m1, ...samplesOf('text', 'rejected')), 1);
    assert.strictEqual(delta(m0, m1, ...req('/api/v1/telemetry', 'POST', 200)), 2);

    // The flusher writes the 5 accepted samples within its interval (1 s).
    const m2 = await scrapeUntil((m) => delta(m0, m, 'gotuned_store_samples_persisted_total') >= 5, 5000,
        'the accepted samples reach the database');
    assert.strictEqual(delta(m0, m2, 'gotuned_store_samples_persisted_total'), 5);
    assert.ok(delta(m0, m2, 'gotuned_store_batch_samples_count') >= 1, 'at least one batch');
    assert.strictEqual(delta(m0, m2, 'gotuned_store_batch_samples_sum'), 5, 'the batches hold the 5 samples');
    assert.ok(delta(m0, m2, 'gotuned_store_commit_duration_seconds_count', { kind: 'batch' }) >= 1);
    assert.ok(delta(m0, m2, 'gotuned_store_commit_duration_seconds_count', { kind: 'durable' }) >= 2,
        'the two new agents were committed durably');
    assert.strictEqual(m2.get('gotuned_store_samples_dropped_total'), 0);
    assert.strictEqual(m2.get('gotuned_store_samples_pending'), 0);
});

test('agents by mode, and the drops they report', async () => {
    const m0 = await scrape();
    const live = (mode) => ['gotuned_agents', { mode, state: 'live' }];
    await postTelemetry(srv, batch('mx-mode-r', { service: 'mx', dropped_samples: 5 }));
    await postTelemetry(srv, batch('mx-mode-a', { service: 'mx' }));
    await postTelemetry(srv, batch('mx-mode-p', { service: 'mx', dropped_samples: 2 }));
    assertJson(await srv.put('/api/v1/agents/mx-mode-a/mode', { mode: 'auto' }));
    assertJson(await srv.put('/api/v1/agents/mx-mode-p/mode', { mode: 'pinned' }));
    // An agent that follows its policy: the service's mode.default decides.
    assertStatus(await srv.put('/api/v1/services/mx-auto/policy', { mode: { default: 'auto' } }), 200);
    await postTelemetry(srv, batch('mx-mode-d', { service: 'mx-auto' }));
    const m1 = await scrape();
    assert.strictEqual(delta(m0, m1, ...live('recommend')), 1);
    assert.strictEqual(delta(m0, m1, ...live('auto')), 2);
    assert.strictEqual(delta(m0, m1, ...live('pinned')), 1);
    for (const mode of ['recommend', 'auto', 'pinned'])
        assert.strictEqual(delta(m0, m1, 'gotuned_agents', { mode, state: 'stale' }), 0);
    assert.strictEqual(delta(m0, m1, 'gotuned_agent_dropped_samples'), 7);

    const list = assertJson(await srv.get('/api/v1/agents?limit=1000'));
    const all = m1.families.get('gotuned_agents').samples.reduce((a, s) => a + s.value, 0);
    assert.strictEqual(all, list.agents.length, 'every agent is counted once');

    // A later report replaces the earlier one; a deleted agent leaves the sum.
    await postTelemetry(srv, batch('mx-mode-r', { service: 'mx', dropped_samples: 6 }));
    assertStatus(await srv.del('/api/v1/agents/mx-mode-p'), 204);
    const m2 = await scrape();
    assert.strictEqual(delta(m1, m2, 'gotuned_agent_dropped_samples'), 1 - 2);
    assert.strictEqual(delta(m1, m2, ...live('pinned')), -1);
});

test('config versions by source, and rollbacks by trigger', async () => {
    const id = 'mx-ver';
    const m0 = await scrape();
    await postTelemetry(srv, batch(id, { service: 'mx', cpu_limit: 4 }, [sample([1, 1, 1, 1])]));
    assertJson(await srv.post(`/api/v1/agents/${id}/apply`, undefined), 201);             // v1 operator
    assertJson(await srv.put(`/api/v1/agents/${id}/override`, { gomaxprocs: 3 }));        // v2 override
    assertJson(await srv.post(`/api/v1/agents/${id}/rollback`, undefined), 201);          // v3 rollback
    assertError(await srv.post(`/api/v1/agents/${id}/apply`, { bogus: 1 }), 422, 'invalid');
    const m1 = await scrape();
    const ver = (source) => ['gotuned_config_versions_total', { source }];
    assert.strictEqual(delta(m0, m1, ...ver('operator')), 1);
    assert.strictEqual(delta(m0, m1, ...ver('override')), 1);
    assert.strictEqual(delta(m0, m1, ...ver('rollback')), 1);
    assert.strictEqual(delta(m0, m1, ...ver('tuner')), 0);
    assert.strictEqual(delta(m0, m1, 'gotuned_rollbacks_total', { trigger: 'operator' }), 1);
    assert.strictEqual(delta(m0, m1, 'gotuned_rollbacks_total', { trigger: 'verifier' }), 0);

    // A failed verification rolls back by itself: the verifier's rollback.
    const vid = 'mx-verify';
    await postTelemetry(srv, batch(vid, { service: 'mx', cpu_limit: 4 },
        Array.from({ length: 6 }, () => sample([1, 1, 1, 1]))));
    assertJson(await srv.post(`/api/v1/agents/${vid}/apply`, undefined), 201);
    assertJson(await srv.post(`/api/v1/agents/${vid}/ack`, { version: 1, status: 'applied' }));
    await sleep(5);
    const t = await postTelemetry(srv, batch(vid, { service: 'mx', cpu_limit: 4 },
        Array.from({ length: 5 }, () => sample([8, 9, 7, 8]))));
    assert.strictEqual(t.config_version, 2, 'the verification failed and rolled back');
    const m2 = await scrape();
    assert.strictEqual(delta(m1, m2, 'gotuned_rollbacks_total', { trigger: 'verifier' }), 1);
    assert.strictEqual(delta(m1, m2, 'gotuned_rollbacks_total', { trigger: 'operator' }), 0);
    assert.strictEqual(delta(m1, m2, ...ver('rollback')), 1);
    assert.strictEqual(delta(m1, m2, ...ver('operator')), 1);
});

test('a held blocking query: the gauge is 1 while it waits, 0 after; its own histogram', async () => {
    const id = 'mx-hold';
    await postTelemetry(srv, batch(id, { service: 'mx', cpu_limit: 4 }, [sample([1, 1, 1, 1])]));
    const m0 = await scrape();
    assert.strictEqual(m0.get('gotuned_blocking_queries_waiting'), 0);
    const route = '/api/v1/agents/{id}/config';
    const held = srv.get(`/api/v1/agents/${id}/config?index=0&wait=30s`);
    const m1 = await scrapeUntil((m) => m.get('gotuned_blocking_queries_waiting') === 1, 5000,
        'the blocking query is held');
    assert.strictEqual(delta(m0, m1, ...req(route, 'GET', 200)), 0, 'not counted before its answer');
    await sleep(100);
    assertJson(await srv.post(`/api/v1/agents/${id}/apply`, undefined), 201);
    const res = await held;
    assert.strictEqual(assertJson(res).version, 1);
    const m2 = await scrape();
    assert.strictEqual(m2.get('gotuned_blocking_queries_waiting'), 0);
    assert.strictEqual(delta(m0, m2, 'gotuned_blocking_queries_resumed_total', { cause: 'notified' }), 1);
    assert.strictEqual(delta(m0, m2, ...req(route, 'GET', 200)), 1, 'the held request is counted once');
    assert.strictEqual(delta(m0, m2, ...dur(route, 'GET')), 0, 'and not in the request duration histogram');
    assert.strictEqual(delta(m0, m2, 'gotuned_blocking_query_duration_seconds_count'), 1);
    const waited = delta(m0, m2, 'gotuned_blocking_query_duration_seconds_sum');
    assert.ok(waited >= 0.1 && waited < 30, `held for ${waited} s`);
    assert.strictEqual(delta(m0, m2, 'gotuned_blocking_query_duration_seconds_bucket', { le: '0.01' }), 0);

    // A blocking query answered at once is an ordinary request.
    assertJson(await srv.get(`/api/v1/agents/${id}/config?index=0&wait=30s`));
    const m3 = await scrape();
    assert.strictEqual(delta(m2, m3, ...dur(route, 'GET')), 1);
    assert.strictEqual(delta(m2, m3, 'gotuned_blocking_query_duration_seconds_count'), 0);
});

test('errors the server answers before the API (400, 413, 414) count once, under their route', async () => {
    const m0 = await scrape();
    const big = await srv.sock({ path: '/api/v1/telemetry', headers: { 'Content-Type': 'application/json' },
        body: 'x'.repeat(1024 * 1024 + 10) });
    assertError(big, 413, 'too_large');
    const chunkedBig = await srv.sock({ method: 'PUT', path: '/api/v1/policy', chunked: true,
        headers: { 'Content-Type': 'application/json' }, body: 'x'.repeat(1024 * 1024 + 10) });
    assertError(chunkedBig, 413, 'too_large');
    assertError(await srv.get(`/api/v1/agents?service=${'a'.repeat(5000)}`), 414, 'too_large');
    // Both framings: 400 at the headers; the body that follows is dropped.
    const both = await srv.sock({ method: 'PUT', path: '/api/v1/policy', chunked: true,
        headers: { 'Content-Type': 'application/json', 'Content-Length': '2' }, body: '{}' });
    assertError(both, 400, 'bad_request');
    const m1 = await scrape();
    assert.strictEqual(delta(m0, m1, ...req('/api/v1/telemetry', 'POST', 413)), 1);
    assert.strictEqual(delta(m0, m1, ...req('/api/v1/policy', 'PUT', 413)), 1);
    assert.strictEqual(delta(m0, m1, ...req('/api/v1/agents', 'GET', 414)), 1);
    assert.strictEqual(delta(m0, m1, ...req('/api/v1/policy', 'PUT', 400)), 1);
    const total = (m) => m.families.get('gotuned_http_requests_total').samples.reduce((a, s) => a + s.value, 0);
    assert.strictEqual(total(m1) - total(m0), 5, 'four answers and one scrape');
});

'use strict';
/*
 * The bad-input cases of badinput.test.js, as data. Each case:
 *   name     unique, printed on failure
 *   method, path          the request line (path sent byte for byte)
 *   headers  extra headers (Host and Connection: close are always sent)
 *   body     a string, a Buffer, or a value sent as JSON (Content-Type is
 *            then application/json unless headers say otherwise)
 *   chunked  send the body with Transfer-Encoding: chunked (no length)
 *   raw      instead of all the above: the exact bytes to send
 *   halfClose  after raw, shut down the sending side (a client that gives up)
 *   mayHang  (implied by halfClose) the server may neither answer nor close (libmicrohttpd 0.9.75
 *            does not always notice a half-close in the middle of a body;
 *            --conn-timeout ends it): after 1.5 s the client gives up, and
 *            that counts as no answer (null)
 *   status   the expected status; null = the connection closes without an
 *            answer; a list = any of them
 *   code, field, allow    the expected error code, error field (a string,
 *            null, or omitted to not check it) and Allow header
 * The fixture (badinput.test.js) has agents bi-1 (service bi-svc, samples,
 * config version 1) and bi-pin (pinned), a policy for service bi-svc and a
 * global policy; no case may change any of it.
 */

const MiB = 1024 * 1024;
const JSON_CT = { 'Content-Type': 'application/json' };

const bad = (status, code, field) => ({ status, code, field });
const E400 = (field) => bad(400, 'bad_request', field);
const MALFORMED = bad(400, 'malformed_json', null);
const INVALID = (field) => bad(422, 'invalid', field);
const NOT_FOUND = bad(404, 'not_found', null);
const TOO_LARGE = bad(413, 'too_large', null);
const UNSUPPORTED = bad(415, 'unsupported_media_type', null);
const METHOD = (allow) => ({ status: 405, code: 'method_not_allowed', field: null, allow });

const cases = [];
const add = (name, req, want) => cases.push({ name, ...req, ...want });

/* ------------------------------------------------ malformed JSON bodies */

/* Routes that take a JSON body, with what the body must not do to them. */
const bodyRoutes = [
    ['override', 'PUT', '/api/v1/agents/bi-1/override'],
    ['mode', 'PUT', '/api/v1/agents/bi-1/mode'],
    ['apply', 'POST', '/api/v1/agents/bi-1/apply'],
    ['ack', 'POST', '/api/v1/agents/bi-1/ack'],
    ['policy', 'PUT', '/api/v1/policy'],
    ['service policy', 'PUT', '/api/v1/services/bi-svc/policy'],
    ['telemetry', 'POST', '/api/v1/telemetry'],
];
const deep = (n) => '{"a":' + '['.repeat(n) + ']'.repeat(n) + '}';
const malformedBodies = [
    ['truncated', '{"gomaxprocs":4,"pool":{"workers":'],
    ['trailing garbage', '{"mode":"auto"} trailing'],
    ['duplicate keys', '{"mode":"auto","mode":"pinned"}'],
    ['a byte-order mark', '\ufeff{"mode":"auto"}'],
    ['a raw NUL byte', Buffer.from('{"mode":"auto"}\0', 'latin1')],
    ['an escaped NUL in a string', '{"mode":"auto\\u0000"}'],
    ['nesting 100,000 deep', deep(100000)],
    ['NaN', '{"gomaxprocs":NaN}'],
    ['Infinity', '{"gomaxprocs":Infinity}'],
    ['1e400', '{"gomaxprocs":1e400}'],
    ['2^63', '{"gomaxprocs":9223372036854775808}'],
    ['2^64', '{"gomaxprocs":18446744073709551616}'],
    ['a top-level array', '[{"mode":"auto"}]'],
    ['a lone surrogate', '{"mode":"\\ud800"}'],
];
for (const [rname, method, path] of bodyRoutes)
    for (const [bname, body] of malformedBodies) {
        // every route gets the syntax errors; the numeric ones once each
        if (['NaN', 'Infinity', 'a lone surrogate'].includes(bname) && rname !== 'override' && rname !== 'policy')
            continue;
        add(`${rname}: ${bname}`, { method, path, headers: JSON_CT, body }, MALFORMED);
    }

/* --------------------------------------------------- well-formed, wrong */

const ovr = (body) => ({ method: 'PUT', path: '/api/v1/agents/bi-1/override', headers: JSON_CT, body });
add('override: gomaxprocs a string', ovr({ gomaxprocs: '4' }), INVALID('gomaxprocs'));
add('override: gomaxprocs 0', ovr({ gomaxprocs: 0 }), INVALID('gomaxprocs'));
add('override: gomaxprocs -0', ovr('{"gomaxprocs":-0}'), INVALID('gomaxprocs'));
add('override: gomaxprocs -0.0', ovr('{"gomaxprocs":-0.0}'), INVALID('gomaxprocs'));
add('override: gomaxprocs 1025', ovr({ gomaxprocs: 1025 }), INVALID('gomaxprocs'));
add('override: gomaxprocs -1', ovr({ gomaxprocs: -1 }), INVALID('gomaxprocs'));
add('override: gomaxprocs 4.5', ovr({ gomaxprocs: 4.5 }), INVALID('gomaxprocs'));
add('override: gomaxprocs 2^63-1', ovr('{"gomaxprocs":9223372036854775807}'), INVALID('gomaxprocs'));
add('override: gomaxprocs -2^63', ovr('{"gomaxprocs":-9223372036854775808}'), INVALID('gomaxprocs'));
add('override: gomaxprocs true', ovr({ gomaxprocs: true }), INVALID('gomaxprocs'));
add('override: gomaxprocs an array', ovr({ gomaxprocs: [4] }), INVALID('gomaxprocs'));
add('override: pool.workers 0', ovr({ pool: { workers: 0 } }), INVALID('pool.workers'));
add('override: pool.workers 65537', ovr({ pool: { workers: 65537 } }), INVALID('pool.workers'));
add('override: pool.steal_scope unknown', ovr({ pool: { steal_scope: 'everywhere' } }), INVALID('pool.steal_scope'));
add('override: pool an array', ovr({ pool: [] }), INVALID('pool'));
add('override: unknown key', ovr({ gomaxprocs: 4, turbo: true }), INVALID('turbo'));
add('override: task_timeout_ms 86400001', ovr({ task_timeout_ms: 86400001 }), INVALID('task_timeout_ms'));
add('override: gosched_every 1e9+1', ovr({ gosched_every: 1000000001 }), INVALID('gosched_every'));

const mode = (body) => ({ method: 'PUT', path: '/api/v1/agents/bi-1/mode', body });
add('mode: unknown mode', mode({ mode: 'turbo' }), INVALID('mode'));
add('mode: a number', mode({ mode: 1 }), INVALID('mode'));
add('mode: missing', mode({}), INVALID('mode'));
add('mode: upper case', mode({ mode: 'AUTO' }), INVALID('mode'));
add('mode: unknown extra key', mode({ mode: 'auto', why: 'x' }), INVALID('why'));

const apply = (body) => ({ method: 'POST', path: '/api/v1/agents/bi-1/apply', body });
add('apply: force a string', apply({ force: 'yes' }), INVALID('force'));
add('apply: unknown key', apply({ forse: true }), INVALID('forse'));
add('apply: on a pinned agent', { method: 'POST', path: '/api/v1/agents/bi-pin/apply', body: { force: true } },
    bad(409, 'pinned', 'mode'));
add('rollback: a body with a key', { method: 'POST', path: '/api/v1/agents/bi-1/rollback', body: { to: 0 } }, INVALID('to'));

const ack = (body) => ({ method: 'POST', path: '/api/v1/agents/bi-1/ack', headers: JSON_CT, body });
add('ack: version -1', ack({ version: -1, status: 'applied' }), INVALID('version'));
add('ack: version a string', ack({ version: '1', status: 'applied' }), INVALID('version'));
add('ack: version 2^63-1 does not exist', ack('{"version":9223372036854775807,"status":"applied"}'), bad(409, 'unknown_version', 'version'));
add('ack: version 99 does not exist', ack({ version: 99, status: 'applied' }), bad(409, 'unknown_version', 'version'));
add('ack: unknown status', ack({ version: 1, status: 'maybe' }), INVALID('status'));
add('ack: error with applied', ack({ version: 1, status: 'applied', error: 'x' }), INVALID('error'));
add('ack: error of 1024 bytes', ack({ version: 1, status: 'rejected', error: 'e'.repeat(1024) }), INVALID('error'));
add('ack: missing version', ack({ status: 'applied' }), INVALID('version'));

const pol = (body) => ({ method: 'PUT', path: '/api/v1/policy', body });
add('policy: rounding unknown', pol({ quota: { rounding: 'up' } }), INVALID('quota.rounding'));
add('policy: min_procs 0', pol({ quota: { min_procs: 0 } }), INVALID('quota.min_procs'));
add('policy: workers_factor 0.05', pol({ quota: { workers_factor: 0.05 } }), INVALID('quota.workers_factor'));
add('policy: workers_factor a string', pol({ quota: { workers_factor: '1' } }), INVALID('quota.workers_factor'));
add('policy: even.min 1', pol({ even: { min: 1 } }), INVALID('even.min'));
add('policy: even.enabled 1', pol({ even: { enabled: 1 } }), INVALID('even.enabled'));
add('policy: persistence 0', pol({ neighbor_steal: { persistence: 0 } }), INVALID('neighbor_steal.persistence'));
add('policy: window 129', pol({ neighbor_steal: { window: 129 } }), INVALID('neighbor_steal.window'));
add('policy: min_change_pct 101', pol({ guards: { min_change_pct: 101 } }), INVALID('guards.min_change_pct'));
add('policy: min_interval_s -1', pol({ guards: { min_interval_s: -1 } }), INVALID('guards.min_interval_s'));
add('policy: verify.window 65', pol({ verify: { window: 65 } }), INVALID('verify.window'));
add('policy: cooldown_s 604801', pol({ verify: { cooldown_s: 604801 } }), INVALID('verify.cooldown_s'));
add('policy: mode.default unknown', pol({ mode: { default: 'yolo' } }), INVALID('mode.default'));
add('policy: unknown section', pol({ turbo: {} }), INVALID('turbo'));
add('policy: unknown key in a section', pol({ quota: { rounding: 'ceil', extra: 1 } }), INVALID('quota.extra'));
add('policy: a section that is a number', pol({ quota: 5 }), INVALID('quota'));
add('policy: a good field then a bad one', pol({ quota: { min_procs: 3 }, even: { min: 0 } }), INVALID('even.min'));

const spol = (name, body) => ({ method: 'PUT', path: `/api/v1/services/${name}/policy`, body });
add('service policy: empty', spol('bi-svc', {}), INVALID(undefined));
add('service policy: bad value', spol('bi-svc', { even: { min: 1025 } }), INVALID('even.min'));
add('service policy: name with a space', spol('a%20b', { even: { min: 4 } }), E400(undefined));
add('service policy: name of 129 bytes', spol('s'.repeat(129), { even: { min: 4 } }), E400(undefined));
add('service policy: name with %00', spol('bi-svc%00x', { even: { min: 4 } }), E400(undefined));

const tele = (body) => ({ method: 'POST', path: '/api/v1/telemetry', headers: JSON_CT, body });
const agentOf = (extra = {}) => ({ id: 'bi-new', service: 'svc', ...extra });
add('telemetry: num_cpu 2^63 (literal)', tele('{"agent":{"id":"bi-new","service":"svc","num_cpu":9223372036854775808},"samples":[]}'), MALFORMED);
add('telemetry: num_cpu -1', tele({ agent: agentOf({ num_cpu: -1 }), samples: [] }), INVALID('agent.num_cpu'));
add('telemetry: cpu_limit 1e400', tele('{"agent":{"id":"bi-new","service":"svc","cpu_limit":1e400},"samples":[]}'), MALFORMED);
add('telemetry: cpu_limit 1e308', tele('{"agent":{"id":"bi-new","service":"svc","cpu_limit":1e308},"samples":[]}'), INVALID('agent.cpu_limit'));
add('telemetry: pid 2^64', tele('{"agent":{"id":"bi-new","service":"svc","pid":18446744073709551616},"samples":[]}'), MALFORMED);
add('telemetry: ts_ms -1', tele({ agent: agentOf(), samples: [{ ts_ms: -1, local_runq: [0] }] }), INVALID('samples[0].ts_ms'));
add('telemetry: goroutines -0.5', tele({ agent: agentOf(), samples: [{ local_runq: [0], goroutines: -0.5 }] }), INVALID('samples[0].goroutines'));
add('telemetry: sched_latency_us.p99 a string', tele({ agent: agentOf(), samples: [{ local_runq: [0], sched_latency_us: { p99: 'x' } }] }),
    INVALID('samples[0].sched_latency_us.p99'));
add('telemetry: 1025 Ps on an agent id of 129 bytes', tele({ agent: agentOf({ id: 'i'.repeat(129) }), samples: [{ local_runq: new Array(1025).fill(0) }] }),
    INVALID(undefined));
add('telemetry: 1001 samples, the last one bad', tele({ agent: agentOf(), samples: [...new Array(1000).fill({ local_runq: [1] }), { local_runq: [-1] }] }),
    bad(413, 'too_large', 'samples'));
add('telemetry: 10,001 SCHED lines', { method: 'POST', path: '/api/v1/telemetry?agent=bi-new&service=svc', headers: { 'Content-Type': 'text/plain' },
    body: 'SCHED 1ms: gomaxprocs=1 idleprocs=0 threads=2 spinningthreads=0 idlethreads=0 runqueue=0 [0]\n'.repeat(10001) }, TOO_LARGE);

/* ----------------------------------------------------- content types */

const ctCase = (name, method, path, ct, body) => add(name,
    { method, path, headers: ct === null ? {} : { 'Content-Type': ct }, body }, UNSUPPORTED);
ctCase('override: text/plain', 'PUT', '/api/v1/agents/bi-1/override', 'text/plain', '{"gomaxprocs":4}');
ctCase('override: no content type', 'PUT', '/api/v1/agents/bi-1/override', null, '{"gomaxprocs":4}');
ctCase('mode: application/json-patch+json', 'PUT', '/api/v1/agents/bi-1/mode', 'application/json-patch+json', '{"mode":"auto"}');
ctCase('policy: application/xml', 'PUT', '/api/v1/policy', 'application/xml', '{"even":{"min":4}}');
ctCase('service policy: form', 'PUT', '/api/v1/services/bi-svc/policy', 'application/x-www-form-urlencoded', '{"even":{"min":4}}');
ctCase('ack: applicationjson', 'POST', '/api/v1/agents/bi-1/ack', 'applicationjson', '{"version":1,"status":"applied"}');
ctCase('apply: text/json', 'POST', '/api/v1/agents/bi-1/apply', 'text/json', '{"force":true}');
ctCase('telemetry: no content type', 'POST', '/api/v1/telemetry', null, '{"agent":{"id":"bi-new","service":"svc"},"samples":[]}');
ctCase('telemetry: application/jsonx', 'POST', '/api/v1/telemetry', 'application/jsonx', '{"agent":{"id":"bi-new","service":"svc"},"samples":[]}');
ctCase('telemetry: text/plainx', 'POST', '/api/v1/telemetry?agent=bi-new&service=svc', 'text/plainx', 'SCHED 1ms: gomaxprocs=1 idleprocs=0 threads=2 spinningthreads=0 idlethreads=0 runqueue=0 [0]\n');

/* ------------------------------------------------------- body sizes */

const big = (n) => '{"even":{"min":4}' + ' '.repeat(n) + '}';
add('policy: over --max-body with Content-Length', { method: 'PUT', path: '/api/v1/policy', headers: JSON_CT, body: big(MiB) }, TOO_LARGE);
add('policy: over --max-body, chunked', { method: 'PUT', path: '/api/v1/policy', headers: JSON_CT, body: big(MiB), chunked: true }, TOO_LARGE);
add('override: over --max-body, chunked', { method: 'PUT', path: '/api/v1/agents/bi-1/override', headers: JSON_CT, body: big(2 * MiB), chunked: true }, TOO_LARGE);
add('telemetry text: over --max-body, chunked', { method: 'POST', path: '/api/v1/telemetry?agent=bi-new&service=svc',
    headers: { 'Content-Type': 'text/plain' }, body: 'x'.repeat(MiB + 1), chunked: true }, TOO_LARGE);
const head = (method, path, extra) =>
    `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${extra}\r\n`;
add('policy: Content-Length 2^64', { raw: head('PUT', '/api/v1/policy', 'Content-Type: application/json\r\nContent-Length: 18446744073709551616\r\n') + '{}' },
    { status: [400, 413] });
add('policy: Content-Length 99999999999', { raw: head('PUT', '/api/v1/policy', 'Content-Type: application/json\r\nContent-Length: 99999999999\r\n') + '{}' },
    TOO_LARGE);

/* ------------------------------------------------ chunked bodies that lie */

const chunkedHead = (method, path) => head(method, path, 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n');
add('chunked: a chunk declared larger than its data, then the client gives up',
    { raw: chunkedHead('PUT', '/api/v1/policy') + '40\r\n{"even":{"min":4}}\r\n0\r\n\r\n', halfClose: true }, { status: [null, 400] });
add('chunked: a chunk declared smaller than its data',
    { raw: chunkedHead('PUT', '/api/v1/policy') + '5\r\n{"even":{"min":4}}\r\n0\r\n\r\n' }, { status: [null, 400] });
add('chunked: a size that is not hex',
    { raw: chunkedHead('PUT', '/api/v1/policy') + 'zz\r\n{"even":{"min":4}}\r\n0\r\n\r\n' }, { status: [null, 400] });
add('chunked: a size past 2^64',
    { raw: chunkedHead('PUT', '/api/v1/policy') + 'FFFFFFFFFFFFFFFFFF\r\n{"even":{"min":4}}\r\n0\r\n\r\n' }, { status: [null, 400, 413] });
add('chunked: a chunk declared 2 MiB, past the cap',
    { raw: chunkedHead('PUT', '/api/v1/policy') + '200000\r\n' + ' '.repeat(1100 * 1024), halfClose: true, mayHang: true },
    { status: [null, 400, 413] });
add('chunked: no terminating chunk, the client gives up',
    { raw: chunkedHead('PUT', '/api/v1/policy') + '12\r\n{"even":{"min":4}}\r\n', halfClose: true }, { status: [null, 400] });
add('chunked and Content-Length both',
    { raw: head('PUT', '/api/v1/policy', 'Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nContent-Length: 18\r\n') +
        '12\r\n{"even":{"min":4}}\r\n0\r\n\r\n' }, E400(null));
add('Content-Length longer than the body, the client gives up',
    { raw: head('PUT', '/api/v1/policy', 'Content-Type: application/json\r\nContent-Length: 100\r\n') + '{"even":{"min":4}}', halfClose: true, mayHang: true },
    { status: [null, 400] });
add('Content-Length not a number',
    { raw: head('PUT', '/api/v1/policy', 'Content-Type: application/json\r\nContent-Length: 1x\r\n') + '{"even":{"min":4}}' }, { status: [null, 400, 413] });

/* ----------------------------------------------------------- bad ids */

const get = (path) => ({ method: 'GET', path });
const del = (path) => ({ method: 'DELETE', path });
const A129 = 'a'.repeat(129);
add('id: 129 bytes', get(`/api/v1/agents/${A129}`), E400('id'));
add('id: 129 bytes, on samples', get(`/api/v1/agents/${A129}/samples`), E400('id'));
add('id: 129 bytes, on mode', { method: 'PUT', path: `/api/v1/agents/${A129}/mode`, body: { mode: 'auto' } }, E400('id'));
add('id: unicode', get('/api/v1/agents/caf%C3%A9'), E400('id'));
add('id: raw UTF-8 bytes', { raw: Buffer.concat([Buffer.from('GET /api/v1/agents/caf'), Buffer.from([0xc3, 0xa9]),
    Buffer.from(' HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n')]) }, { status: [400], code: 'bad_request' });
add('id: percent-encoded space', del('/api/v1/agents/bi%201'), E400('id'));
add('id: %00 after a real id (delete)', del('/api/v1/agents/bi-1%00'), E400('id'));
add('id: %00 then junk after a real id (delete)', del('/api/v1/agents/bi-1%00junk'), E400('id'));
add('id: %00 in an override', { method: 'PUT', path: '/api/v1/agents/bi-1%00/override', body: { gomaxprocs: 2 } }, E400('id'));
add('id: %2F (an encoded slash)', del('/api/v1/agents/bi-1%2Fx'), NOT_FOUND);
add('id: %2F at the end', del('/api/v1/agents/bi-1%2F'), NOT_FOUND);
add('id: dot-dot', del('/api/v1/agents/..'), NOT_FOUND);
add('id: encoded dot-dot', del('/api/v1/agents/%2E%2E'), NOT_FOUND);
add('id: dot-dot in the path', del('/api/v1/agents/../agents/bi-1'), NOT_FOUND);
add('id: empty', del('/api/v1/agents/'), NOT_FOUND);
add('id: empty, on mode', { method: 'PUT', path: '/api/v1/agents//mode', body: { mode: 'auto' } }, NOT_FOUND);
add('id: trailing slash', del('/api/v1/agents/bi-1/'), NOT_FOUND);
add('id: a bad %-escape', del('/api/v1/agents/bi-1%zz'), E400('id'));
add('id: a cut %-escape', del('/api/v1/agents/bi-1%4'), E400('id'));
add('id: upper-case route', del('/API/V1/agents/bi-1'), NOT_FOUND);
add('id: unknown agent', del('/api/v1/agents/bi-nobody'), NOT_FOUND);
add('service: %00 after a real name (delete)', del('/api/v1/services/bi-svc%00/policy'), E400(undefined));

/* --------------------------------------------------- static files */

for (const p of ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc%2fpasswd', '/index.html%00.js',
    '/web/index.html', '/./index.html', '/index.html/', '//etc/passwd', '/%5c..%5cMakefile', '/.git/config'])
    add(`static: ${p}`, get(p), NOT_FOUND);

/* ------------------------------------------------------ wrong methods */

for (const [method, path, allow] of [
    ['PATCH', '/api/v1/agents/bi-1', 'GET, DELETE'],
    ['POST', '/api/v1/agents', 'GET'],
    ['DELETE', '/api/v1/agents', 'GET'],
    ['DELETE', '/api/v1/policy', 'GET, PUT'],
    ['GET', '/api/v1/telemetry', 'POST'],
    ['PUT', '/api/v1/telemetry', 'POST'],
    ['GET', '/api/v1/agents/bi-1/apply', 'POST'],
    ['PUT', '/api/v1/agents/bi-1/rollback', 'POST'],
    ['DELETE', '/api/v1/agents/bi-1/versions', 'GET'],
    ['POST', '/api/v1/services/bi-svc/policy', 'GET, PUT, DELETE'],
    ['POST', '/healthz', 'GET'],
    ['PUT', '/index.html', 'GET'],
    ['OPTIONS', '/api/v1/events', 'GET'],
    ['BREW', '/api/v1/agents', 'GET'],
])
    add(`method: ${method} ${path}`, { method, path, headers: JSON_CT, body: '{}' }, METHOD(allow));

/* ---------------------------------------------------- query parameters */

for (const [path, field] of [
    ['/api/v1/agents?limit=0', 'limit'],
    ['/api/v1/agents?limit=abc', 'limit'],
    ['/api/v1/agents?limit=1001', 'limit'],
    ['/api/v1/agents?limit=', 'limit'],
    ['/api/v1/agents?limit=%2B5', 'limit'],
    ['/api/v1/agents?limit=0x10', 'limit'],
    ['/api/v1/agents?limit=1e3', 'limit'],
    ['/api/v1/agents?limit=5%00', 'limit'],
    ['/api/v1/agents?limit=99999999999999999999', 'limit'],
    ['/api/v1/agents?after=a%2Fb', 'after'],
    ['/api/v1/agents?after=bi-1%00', 'after'],
    ['/api/v1/agents?after=%E2%82%AC', 'after'],
    ['/api/v1/agents?after=', 'after'],
    ['/api/v1/agents?service=a+b', 'service'],
    ['/api/v1/agents/bi-1/samples?limit=129', 'limit'],
    ['/api/v1/agents/bi-1/samples?limit=-1', 'limit'],
    ['/api/v1/agents/bi-1/versions?limit=101', 'limit'],
    ['/api/v1/events?limit=1001', 'limit'],
    ['/api/v1/events?since=-5', 'since'],
    ['/api/v1/events?after=abc', 'after'],
    ['/api/v1/events?agent=a%2Fb', 'agent'],
    ['/api/v1/events?kind=bad%20kind', 'kind'],
    ['/api/v1/agents/bi-1/config?index=0&wait=-1', 'wait'],
    ['/api/v1/agents/bi-1/config?index=0&wait=10000000000s', 'wait'],
    ['/api/v1/agents/bi-1/config?index=0&wait=1x', 'wait'],
    ['/api/v1/agents/bi-1/config?index=0&wait=', 'wait'],
    ['/api/v1/agents/bi-1/config?wait=5m', 'index'],
    ['/api/v1/agents/bi-1/config?index=-1', 'index'],
    ['/api/v1/agents/bi-1/config?index=abc', 'index'],
    ['/api/v1/agents/bi-1/config?index=99999999999999999999', 'index'],
    ['/api/v1/telemetry?agent=bi-new%00&service=svc', 'agent'],
    ['/api/v1/telemetry?agent=bi-new&service=svc&num_cpu=99999999999999999999', 'num_cpu'],
])
    add(`query: ${path.slice(path.indexOf('?'))} on ${path.slice(0, path.indexOf('?'))}`,
        path.startsWith('/api/v1/telemetry')
            ? { method: 'POST', path, headers: { 'Content-Type': 'text/plain' }, body: 'hello\n' }
            : get(path),
        E400(field));
/* A wait past the cap is cut to 10m, not refused: with an index that
 * differs from the current version the answer comes at once. */
add('query: wait=99999h with an old index answers at once', get('/api/v1/agents/bi-1/config?index=7&wait=99999h'), { status: 200 });

/* --------------------------------------------------------- URL length */

add('URL: a path of 4,100 bytes', get(`/api/v1/agents/${'a'.repeat(4100)}`), bad(414, 'too_large', null));
add('URL: a query of 5,000 bytes', get(`/api/v1/agents?service=${'s'.repeat(5000)}`), bad(414, 'too_large', null));
add('URL: a delete with a path of 6,000 bytes', del(`/api/v1/agents/${'a'.repeat(6000)}`), bad(414, 'too_large', null));
add('URL: 10 KB', get(`/api/v1/agents?x=${'q'.repeat(10240)}`), { status: 414 });
add('URL: a 10 KB header', { method: 'GET', path: '/api/v1/agents', headers: { 'X-Big': 'h'.repeat(10240) } }, { status: 431 });

module.exports = { cases };

// Fetch helpers for the gotuned REST API (docs/api.md), and the live status:
// any HTTP answer means the server is reachable, a network failure means not.
//
// Access control (README "Security"): every call carries the bearer token
// kept in sessionStorage (this tab only, gone when it closes). A 401 asks the
// handler set with onAuthNeeded for a token (one question however many calls
// were refused), then retries; a 403 is returned like any other error.

const listeners = new Set();
export const conn = { online: true, lastOk: 0, lastError: '' };

export function onStatus(fn) { listeners.add(fn); }

const TOKEN_KEY = 'gotuned.token';
let token = readToken();
let authHandler = null;
let asking = null;          // the open question for a token, shared by every refused call

function readToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch { return ''; }
}

function keepToken(t) {
    token = t;
    try {
        if (t) sessionStorage.setItem(TOKEN_KEY, t);
        else sessionStorage.removeItem(TOKEN_KEY);
    } catch { /* storage refused: the token lasts as long as the page */ }
}

// fn(message) → Promise of the token the user entered; message says why the
// last one was refused ('' when none was sent).
export function onAuthNeeded(fn) { authHandler = fn; }

function setOnline(online, err) {
    const changed = conn.online !== online;
    conn.online = online;
    if (online) conn.lastOk = Date.now();
    else conn.lastError = err || '';
    if (changed || online) for (const fn of listeners) fn(conn);
}

// request returns { ok, status, data, error } and never throws: error is the
// API's {code, message, field} or a made-up one for a network failure.
export async function request(method, path, body) {
    for (;;) {
        const sent = token;
        const r = await send(method, path, body, sent);
        if (r.status !== 401 || !authHandler) return r;
        // Ask once for everyone: a call refused with the token in use opens
        // the question unless it is open already; a call refused with an
        // older token just retries with the new one.
        if (token === sent && !asking) {
            keepToken('');
            const why = sent ? `The server did not accept this token: ${r.error.message}` : '';
            asking = authHandler(why).then((t) => { keepToken(t); asking = null; });
        }
        if (asking) await asking;
    }
}

async function send(method, path, body, bearer) {
    const init = { method, headers: { Accept: 'application/json' } };
    if (bearer) init.headers.Authorization = 'Bearer ' + bearer;
    if (body !== undefined) {
        init.headers['Content-Type'] = 'application/json';
        init.body = JSON.stringify(body);
    }
    let res;
    try {
        res = await fetch(path, init);
    } catch (e) {
        setOnline(false, String(e && e.message || e));
        return { ok: false, status: 0, data: null,
            error: { code: 'unreachable', message: 'Server unreachable', field: null } };
    }
    setOnline(true);
    let data = null;
    if (res.status !== 204) {
        const text = await res.text().catch(() => '');
        if (text) {
            try { data = JSON.parse(text); } catch { data = null; }
        }
    }
    if (res.ok) return { ok: true, status: res.status, data, error: null };
    const error = (data && data.error) ||
        { code: 'http_' + res.status, message: `HTTP ${res.status} ${res.statusText}`, field: null };
    return { ok: false, status: res.status, data, error };
}

export const get = (path) => request('GET', path);

export const enc = encodeURIComponent;
export const agentPath = (id) => '/api/v1/agents/' + enc(id);

// Every agent, paged by 1000 with the `after` cursor. Returns null when a
// page failed (the caller keeps what it had).
export async function listAgents(service) {
    const all = [];
    let after = null;
    for (let guard = 0; guard < 1000; guard++) {
        let q = '/api/v1/agents?limit=1000';
        if (service) q += '&service=' + enc(service);
        if (after !== null) q += '&after=' + enc(after);
        const r = await get(q);
        if (!r.ok) return null;
        all.push(...(r.data.agents || []));
        after = r.data.next;
        if (after === null || after === undefined) break;
    }
    return all;
}

// Events after the id `after` (ascending, as the API pages them), walking
// every page. Returns { events, next } or null on failure.
export async function eventsAfter(params, after, cap = 20000) {
    const out = [];
    let cur = after || 0;
    for (;;) {
        let q = '/api/v1/events?limit=1000&after=' + cur;
        for (const [k, v] of Object.entries(params)) if (v) q += '&' + k + '=' + enc(v);
        const r = await get(q);
        if (!r.ok) return out.length ? { events: out, last: cur, error: r.error } : null;
        const evs = r.data.events || [];
        out.push(...evs);
        if (out.length > cap) out.splice(0, out.length - cap);
        if (evs.length) cur = evs[evs.length - 1].id;
        if (r.data.next === null || r.data.next === undefined || !evs.length) break;
        cur = r.data.next;
    }
    return { events: out, last: cur };
}

// Runs fn over items with at most `limit` calls in flight.
export async function pool(items, limit, fn) {
    let i = 0;
    const worker = async () => {
        while (i < items.length) await fn(items[i++]);
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

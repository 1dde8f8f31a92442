// Fetch helpers for the gotuned REST API (docs/api.md), and the live status:
// any HTTP answer means the server is reachable, a network failure means not.

const listeners = new Set();
export const conn = { online: true, lastOk: 0, lastError: '' };

export function onStatus(fn) { listeners.add(fn); }

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
    const init = { method, headers: { Accept: 'application/json' } };
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

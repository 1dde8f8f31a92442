// Events page: the audit log, newest first, filtered by agent and kind.
//
// The API pages events by ascending id (`after` cursor) and has no "before",
// so the page walks the log once per filter and then asks only for what came
// after the newest id it has; the newest 20,000 are kept and shown 100 at a
// time ("Older").

import { eventsAfter } from './api.js';
import { el, clear, setText, fmtInt, fmtNum, fmtUs, timeEl, emptyState, configSummary, flatten, DASH } from './ui.js';

export const KINDS = ['agent_registered', 'agent_deleted', 'config_version', 'ack', 'nack', 'mode_change',
    'verification', 'policy_change'];
const STEP = 100, KEEP = 20000;
const ID_RE = /^[A-Za-z0-9._-]{1,128}$/;

// A one-line plain-words summary of an event's before/after.
export function summary(e) {
    const a = e.after || {}, b = e.before || {};
    switch (e.kind) {
    case 'agent_registered': return 'first push';
    case 'agent_deleted': return 'forgotten';
    case 'config_version':
        return `v${a.version ?? '?'} (${a.source || 'unknown'}): ${configSummary(a.config)}` +
            (b.config ? ` — was ${configSummary(b.config)}` : '');
    case 'ack': return `runs v${a.applied_version ?? '?'}` + (a.verification ? `; verification ${a.verification}` : '');
    case 'nack': return `rejected v${a.version ?? a.applied_version ?? '?'}: ${a.error || ''}`;
    case 'mode_change':
        return `${b.effective ?? b.mode ?? '?'} → ${a.effective ?? a.mode ?? '?'}` +
            (a.mode === 'default' ? ' (follows the policy)' : '');
    case 'verification': {
        const m = a.metric, f = (v) => v === null || v === undefined ? DASH :
            String(m).includes('latency') ? fmtUs(v) : fmtNum(v, 2);
        let s = `${a.verdict || '?'} v${a.version ?? '?'}`;
        if (m) s += `: ${m} ${f(a.before)} → ${f(a.after)}`;
        if (a.gain_pct !== null && a.gain_pct !== undefined) s += ` (gain ${fmtNum(a.gain_pct, 1)}%)`;
        if (a.action === 'rollback') s += ' — rolled back';
        return s;
    }
    case 'policy_change':
        return (e.service ? `service ${e.service}: ` : 'global: ') +
            (a === null || !Object.keys(a).length ? 'reset to the global policy' : policySummary(a));
    default: return compactJSON(a);
    }
}

function policySummary(p) {
    const s = Object.entries(flatten(p)).map(([k, v]) => k + ' ' + v).join(', ');
    return s.length > 200 ? s.slice(0, 197) + '…' : s;
}

function compactJSON(o) {
    const s = JSON.stringify(o);
    return s.length > 160 ? s.slice(0, 157) + '…' : s;
}

export function eventsHead(withAgent) {
    return el('thead', null, el('tr', null,
        ['when', 'kind', withAgent ? 'agent' : null, 'actor', 'what'].filter(Boolean)
            .map((h) => el('th', { scope: 'col', text: h }))));
}

export function eventRow(e, withAgent) {
    const tr = el('tr', { 'data-testid': 'event-row', 'data-kind': e.kind, 'data-agent': e.agent || '',
        'data-id': e.id });
    tr.append(el('td', { class: 'nowrap' }, timeEl(e.ts_ms)),
        el('td', null, el('span', { class: 'kind k-' + e.kind, text: e.kind.replace(/_/g, ' ') })));
    if (withAgent)
        tr.append(el('td', null, e.agent ? el('a', { href: '#/agent/' + encodeURIComponent(e.agent), text: e.agent }) :
            el('span', { class: 'muted', text: e.service ? 'service ' + e.service : 'global' })));
    tr.append(el('td', { text: e.actor || DASH }), el('td', { class: 'what', text: summary(e) }));
    return tr;
}

const state = { agent: '', kind: '' };

export function mount(root) {
    let alive = true;
    const agentIn = el('input', { type: 'search', id: 'events-agent', 'data-testid': 'events-agent',
        placeholder: 'agent id', value: state.agent, autocomplete: 'off', spellcheck: 'false' });
    const kindSel = el('select', { id: 'events-kind', 'data-testid': 'events-kind' },
        el('option', { value: '', text: 'All kinds' }), KINDS.map((k) => el('option', { value: k, text: k })));
    kindSel.value = state.kind;
    const msg = el('span', { class: 'field-error', role: 'alert' });
    const count = el('span', { class: 'count' });
    const tbody = el('tbody');
    const table = el('table', { 'data-testid': 'events-table', class: 'list events' }, eventsHead(true), tbody);
    const more = el('button', { type: 'button', 'data-testid': 'events-more', text: 'Older' });
    const emptyBox = el('div');
    root.append(el('div', { class: 'page-head' }, el('h1', { text: 'Events' }), count),
        el('div', { class: 'toolbar' },
            el('label', { for: 'events-agent' }, 'Agent ', agentIn), msg,
            el('label', { for: 'events-kind' }, 'Kind ', kindSel)),
        el('div', { class: 'table-wrap' }, table), emptyBox, el('div', { class: 'pager' }, more));

    let data = { key: null, events: [], last: 0, shown: STEP };

    function key() { return state.agent + '\n' + state.kind; }

    function render() {
        const evs = data.events;
        const n = Math.min(data.shown, evs.length);
        setText(count, data.key === null ? 'loading…' : `${fmtInt(evs.length)} event${evs.length === 1 ? '' : 's'}` +
            (evs.length >= KEEP ? ' (newest kept)' : ''));
        // Newest first; rows are keyed by id so polling only adds new ones on top.
        const want = evs.slice(evs.length - n).reverse();
        const have = new Map([...tbody.children].map((tr) => [tr.dataset.id, tr]));
        const wantIds = new Set(want.map((e) => String(e.id)));
        for (const [idv, tr] of have) if (!wantIds.has(idv)) tr.remove();
        want.forEach((e, i) => {
            let tr = have.get(String(e.id));
            if (!tr) tr = eventRow(e, true);
            if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
        });
        more.hidden = n >= evs.length;
        more.textContent = `Older (${fmtInt(evs.length - n)} more)`;
        clear(emptyBox);
        table.hidden = !evs.length;
        if (data.key !== null && !evs.length)
            emptyBox.append(emptyState(state.agent || state.kind ? 'No event matches the filter.' : 'No events yet.'));
    }

    async function refresh() {
        if (state.agent && !ID_RE.test(state.agent)) {
            msg.textContent = 'An agent id is 1–128 of A–Z a–z 0–9 . _ -';
            return;
        }
        msg.textContent = '';
        const k = key();
        if (data.key !== k) { data = { key: null, events: [], last: 0, shown: STEP }; tbody.replaceChildren(); }
        const r = await eventsAfter({ agent: state.agent, kind: state.kind }, data.last, KEEP);
        if (!alive || key() !== k) return;
        if (r) {
            data.key = k;
            data.events.push(...r.events);
            if (data.events.length > KEEP) data.events.splice(0, data.events.length - KEEP);
            data.last = r.last;
            if (r.error) msg.textContent = r.error.message;
        } else if (data.key === null) {
            return;
        }
        render();
    }

    let debounce = null;
    agentIn.addEventListener('input', () => {
        clearTimeout(debounce);
        debounce = setTimeout(() => { state.agent = agentIn.value.trim(); page.refreshNow(); }, 250);
    });
    kindSel.addEventListener('change', () => { state.kind = kindSel.value; page.refreshNow(); });
    more.addEventListener('click', () => { data.shown += STEP; render(); });

    const page = {
        refresh,
        // A filter change refreshes at once unless a refresh is in flight;
        // then that one's answer is dropped (the key changed) and this runs after it.
        async refreshNow() {
            while (page.busy) await new Promise((r) => setTimeout(r, 30));
            page.busy = true;
            try { await refresh(); } finally { page.busy = false; }
        },
        unmount() { alive = false; },
    };
    return page;
}

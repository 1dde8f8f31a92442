// Fleet page: one row per agent, filtered, sorted and paged (50 a page).
//
// The agent list is fetched whole (pages of 1000). The recommendation and the
// 30 newest samples of an agent are separate requests, so they are fetched
// only for the rows on the visible page, six at a time, and kept for one
// refresh interval. Sorting by recommended GOMAXPROCS or imbalance uses the
// values known so far: agents never shown yet sort as unknown (last).

import { listAgents, get, agentPath, pool } from './api.js';
import { el, clear, setText, fmtInt, fmtNum, fmtUs, fmtRel, fmtAbs, DASH, emptyState } from './ui.js';
import { sparkline, runqTotal } from './charts.js';

const PAGE = 50, CACHE_MS = 5000, CONCURRENCY = 6, STALE_MS = 60000;

const COLS = [
    ['service', 'Service'], ['agent', 'Agent'], ['host', 'Host'], ['mode', 'Mode'],
    ['gomaxprocs', 'GOMAXPROCS'], ['latency', 'Sched p99'], ['imbalance', 'Imbalance'],
    ['runq', 'Run queue'], ['version', 'Version'], ['last-seen', 'Last seen'],
];
const COL_TITLES = {
    gomaxprocs: 'applied → recommended',
    latency: 'scheduling latency p99 of the newest sample',
    imbalance: 'largest mean per-P run queue over the mean (recommendation.imbalance.max_mean)',
    runq: 'total local run queue over the last 30 samples',
    version: 'applied / desired config version',
};

// Kept across visits to the page.
const state = { text: '', service: '', sort: 'agent', dir: 1, page: 0, agents: null, loaded: false };
const details = new Map(); // id → { rec, runq, at, loading }

function recGomaxprocs(d) {
    return d && d.rec && d.rec.config ? d.rec.config.gomaxprocs : undefined;
}

function sortValue(a, col) {
    const d = details.get(a.id);
    switch (col) {
    case 'service': return a.service;
    case 'agent': return a.id;
    case 'host': return a.hostname || '';
    case 'mode': return a.mode;
    case 'gomaxprocs': {
        const r = recGomaxprocs(d);
        const cur = a.latest ? a.latest.gomaxprocs : null;
        // recommended first, applied breaks ties
        return r === undefined ? null : r * 10000 + (cur || 0);
    }
    case 'latency': return a.latest && a.latest.sched_latency_us ? a.latest.sched_latency_us.p99 : null;
    case 'imbalance': return d && d.rec && d.rec.imbalance ? d.rec.imbalance.max_mean : null;
    case 'runq': return a.latest ? a.latest.local_runq_total : null;
    case 'version': return (a.desired_version || 0) - (a.applied_version || 0);
    case 'last-seen': return a.last_seen_ms;
    default: return null;
    }
}

function compare(a, b) {
    const va = sortValue(a, state.sort), vb = sortValue(b, state.sort);
    // unknown values last whatever the direction
    const na = va === null || va === undefined, nb = vb === null || vb === undefined;
    if (na || nb) return na && nb ? a.id.localeCompare(b.id) : na ? 1 : -1;
    const c = typeof va === 'string' ? va.localeCompare(vb) : va - vb;
    return c !== 0 ? c * state.dir : a.id.localeCompare(b.id);
}

export function mount(root) {
    const filter = el('input', { type: 'search', 'data-testid': 'fleet-filter', id: 'fleet-filter',
        placeholder: 'agent, service or host', value: state.text, autocomplete: 'off' });
    const serviceSel = el('select', { 'data-testid': 'fleet-service', id: 'fleet-service' },
        el('option', { value: '', text: 'All services' }));
    const count = el('span', { 'data-testid': 'fleet-count', class: 'count' });
    const prev = el('button', { type: 'button', 'data-testid': 'fleet-prev', text: '← Previous', 'aria-label': 'Previous page' });
    const next = el('button', { type: 'button', 'data-testid': 'fleet-next', text: 'Next →', 'aria-label': 'Next page' });
    const pageLbl = el('span', { 'data-testid': 'fleet-page', class: 'page-no', 'aria-live': 'polite' });
    const headRow = el('tr');
    for (const [key, label] of COLS) {
        const btn = el('button', { type: 'button', 'data-sort': key, class: 'sort', title: COL_TITLES[key] || null },
            label, el('span', { class: 'arrow', 'aria-hidden': 'true' }));
        btn.addEventListener('click', () => {
            if (state.sort === key) state.dir = -state.dir;
            else { state.sort = key; state.dir = key === 'last-seen' || key === 'latency' || key === 'imbalance' ? -1 : 1; }
            state.page = 0;
            render();
        });
        headRow.append(el('th', { scope: 'col', 'data-col': key }, btn));
    }
    const tbody = el('tbody');
    const table = el('table', { 'data-testid': 'fleet-table', class: 'fleet' },
        el('caption', { class: 'sr-only', text: 'Agents; sort with the column buttons' }),
        el('thead', null, headRow), tbody);
    const emptyBox = el('div', { class: 'empty-box' });

    root.append(
        el('div', { class: 'page-head' }, el('h1', { text: 'Fleet' }), count),
        el('div', { class: 'toolbar' },
            el('label', { for: 'fleet-filter' }, 'Filter ', filter),
            el('label', { for: 'fleet-service' }, 'Service ', serviceSel),
            el('div', { class: 'pager' }, prev, pageLbl, next)),
        el('div', { class: 'table-wrap' }, table),
        emptyBox);

    let debounce = null;
    filter.addEventListener('input', () => {
        clearTimeout(debounce);
        debounce = setTimeout(() => { state.text = filter.value; state.page = 0; render(); }, 120);
    });
    serviceSel.addEventListener('change', () => { state.service = serviceSel.value; state.page = 0; render(); });
    prev.addEventListener('click', () => { if (state.page > 0) { state.page--; render(); } });
    next.addEventListener('click', () => { state.page++; render(); });

    const rows = new Map(); // id → tr (rows of the page shown)
    let alive = true;

    function filtered() {
        const t = state.text.trim().toLowerCase();
        return (state.agents || []).filter((a) => (!state.service || a.service === state.service) &&
            (!t || a.id.toLowerCase().includes(t) || a.service.toLowerCase().includes(t) ||
             (a.hostname || '').toLowerCase().includes(t)));
    }

    function renderServices() {
        const names = [...new Set((state.agents || []).map((a) => a.service))].sort();
        if (state.service && !names.includes(state.service)) names.push(state.service);
        const have = [...serviceSel.options].slice(1).map((o) => o.value);
        if (have.join('\n') !== names.join('\n')) {
            while (serviceSel.options.length > 1) serviceSel.remove(1);
            for (const n of names) serviceSel.append(el('option', { value: n, text: n }));
        }
        serviceSel.value = state.service;
    }

    function render() {
        if (!alive) return;
        renderServices();
        for (const th of headRow.children) {
            const key = th.dataset.col;
            if (key === state.sort) th.setAttribute('aria-sort', state.dir > 0 ? 'ascending' : 'descending');
            else th.removeAttribute('aria-sort');
            th.querySelector('.arrow').textContent = key === state.sort ? (state.dir > 0 ? ' ▲' : ' ▼') : '';
        }
        const list = filtered().sort(compare);
        const pages = Math.max(1, Math.ceil(list.length / PAGE));
        if (state.page >= pages) state.page = pages - 1;
        setText(count, state.agents === null ? 'loading…' : `${fmtInt(list.length)} agent${list.length === 1 ? '' : 's'}`);
        setText(pageLbl, `${state.page + 1} / ${pages}`);
        prev.disabled = state.page === 0;
        next.disabled = state.page >= pages - 1;
        const shown = list.slice(state.page * PAGE, (state.page + 1) * PAGE);

        clear(emptyBox);
        if (state.agents !== null && !state.agents.length)
            emptyBox.append(emptyState('No agents yet. Agents appear here after their first push to POST /api/v1/telemetry.'));
        else if (state.agents !== null && !list.length)
            emptyBox.append(emptyState('No agent matches the filter.'));
        table.hidden = !list.length;

        const want = new Set(shown.map((a) => a.id));
        for (const [id, tr] of rows) if (!want.has(id)) { tr.remove(); rows.delete(id); }
        shown.forEach((a, i) => {
            let tr = rows.get(a.id);
            if (!tr) { tr = newRow(a); rows.set(a.id, tr); }
            updateRow(tr, a);
            if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
        });
        loadDetails(shown);
    }

    function newRow(a) {
        const tr = el('tr', { 'data-testid': 'fleet-row', 'data-agent': a.id });
        for (const [key, label] of COLS) tr.append(el('td', { 'data-col': key, 'data-label': label }));
        const link = el('a', { href: '#/agent/' + encodeURIComponent(a.id), text: a.id });
        tr.querySelector('[data-col=agent]').append(link);
        tr.querySelector('[data-col=last-seen]').append(el('time'));
        return tr;
    }

    function updateRow(tr, a) {
        const d = details.get(a.id);
        const c = (k) => tr.querySelector(`[data-col="${k}"]`);
        const now = Date.now();
        tr.classList.toggle('stale', now - a.last_seen_ms > STALE_MS);
        setText(c('service'), a.service);
        setText(c('host'), a.hostname || DASH);
        const mode = c('mode');
        setText(mode, a.mode);
        mode.title = a.mode_source === 'policy' ? 'from the policy’s mode.default' : 'set on the agent';
        mode.className = 'mode-' + a.mode;

        const cur = a.latest ? a.latest.gomaxprocs : null;
        const rec = recGomaxprocs(d);
        const g = c('gomaxprocs');
        let gt;
        if (!d || !d.rec) gt = `${fmtInt(cur)} → …`;
        else gt = `${fmtInt(cur)} → ${rec === undefined ? DASH : fmtInt(rec)}`;
        setText(g, gt);
        g.classList.toggle('differs', rec !== undefined && cur !== null && rec !== cur);
        g.title = !d || !d.rec ? 'applied (newest sample); recommendation loading' :
            rec === undefined ? 'no GOMAXPROCS recommendation (left to the runtime)' :
                `applied ${cur ?? DASH} (newest sample), recommended ${rec}`;

        const lat = a.latest && a.latest.sched_latency_us ? a.latest.sched_latency_us.p99 : null;
        setText(c('latency'), lat === null || lat === undefined ? DASH : fmtUs(lat));

        const imb = d && d.rec ? d.rec.imbalance : null;
        const ic = c('imbalance');
        setText(ic, imb && imb.max_mean !== null && imb.max_mean !== undefined ? fmtNum(imb.max_mean, 2) :
            d && d.rec ? DASH : '…');
        ic.title = imb ? `max/mean ${fmtNum(imb.max_mean, 2)}; ${imb.hot_samples} of ${imb.samples} samples hot` : '';
        ic.classList.toggle('hot', !!(imb && imb.hot_samples > 0));

        const rq = c('runq');
        const key = d && d.runq ? d.runq.join(',') : '';
        if (rq.dataset.key !== key || !rq.firstChild) {
            rq.dataset.key = key;
            rq.replaceChildren(sparkline(d && d.runq ? d.runq : []));
        }

        const v = c('version');
        setText(v, `${a.applied_version ?? 0}/${a.desired_version ?? 0}`);
        v.classList.toggle('behind', (a.applied_version ?? 0) !== (a.desired_version ?? 0));
        v.title = a.last_nack ? `NACK of v${a.last_nack.version}: ${a.last_nack.error || ''}` :
            (a.applied_version ?? 0) !== (a.desired_version ?? 0) ? 'the agent does not run the desired version yet' :
                'the agent runs the desired version';
        v.classList.toggle('nack', !!a.last_nack);

        const t = c('last-seen').firstChild;
        setText(t, fmtRel(a.last_seen_ms, now) + (now - a.last_seen_ms > STALE_MS ? ' (stale)' : ''));
        t.title = fmtAbs(a.last_seen_ms);
    }

    async function loadDetails(shown) {
        const now = Date.now();
        const todo = shown.filter((a) => {
            const d = details.get(a.id);
            return !d || (!d.loading && now - d.at >= CACHE_MS);
        });
        if (!todo.length) return;
        for (const a of todo) {
            const d = details.get(a.id) || {};
            d.loading = true;
            details.set(a.id, d);
        }
        await pool(todo, CONCURRENCY, async (a) => {
            if (!alive) return;
            const [rec, smp] = await Promise.all([
                get(agentPath(a.id) + '/recommendation'),
                get(agentPath(a.id) + '/samples?limit=30'),
            ]);
            const d = details.get(a.id);
            d.loading = false;
            d.at = Date.now();
            if (rec.ok) d.rec = rec.data;
            if (smp.ok) d.runq = (smp.data.samples || []).map(runqTotal);
            const tr = rows.get(a.id);
            if (tr && alive) updateRow(tr, a);
        });
    }

    async function refresh() {
        const list = await listAgents();
        if (list) {
            state.agents = list;
            const ids = new Set(list.map((a) => a.id));
            for (const id of details.keys()) if (!ids.has(id)) details.delete(id);
        }
        render();
    }

    if (state.agents) render();
    return { refresh, unmount() { alive = false; } };
}

// Agent page: heatmap, charts, config vs recommendation, verdicts, history,
// and the actions (apply, roll back, mode, override). The action forms are
// built once; polling only replaces the data panels, so what the operator
// types is never lost.

import { get, request, agentPath, eventsAfter } from './api.js';
import {
    el, clear, fmtInt, fmtNum, fmtUs, timeEl, emptyState, section, confirmAction, resultBox,
    showResult, fieldError, showFieldErrors, flatten, configSummary, parseValue, setPath,
    RULE_NAMES, CONFIG_FIELDS, DASH,
} from './ui.js';
import { heatmap, lineChart } from './charts.js';
import { eventRow, eventsHead } from './events.js';

const MODES = ['recommend', 'auto', 'pinned', 'default'];

export function mount(root, { id }) {
    let alive = true;
    const page = el('div', { 'data-testid': 'agent-page', 'data-agent': id, class: 'agent-page' });
    root.append(page);

    const heading = el('h1', null, el('span', { class: 'muted', text: 'Agent ' }), id);
    const facts = el('dl', { class: 'facts' });
    const notFound = el('div', { class: 'notfound' });
    const result = resultBox();

    // ---------------------------------------------------------- actions
    const btnApply = el('button', { type: 'button', class: 'primary', 'data-testid': 'action-apply',
        text: 'Apply recommendation' });
    const btnRollback = el('button', { type: 'button', 'data-testid': 'action-rollback', text: 'Roll back' });
    const modeSel = el('select', { 'data-testid': 'mode-select', id: 'mode-select' },
        MODES.map((m) => el('option', { value: m, text: m === 'default' ? 'default (policy)' : m })));
    const btnMode = el('button', { type: 'button', 'data-testid': 'action-mode', text: 'Set mode' });
    const form = overrideForm();
    const actions = section('Actions',
        el('div', { class: 'action-row' }, btnApply, btnRollback,
            el('span', { class: 'mode-group' },
                el('label', { for: 'mode-select', text: 'Mode ' }), modeSel, btnMode)),
        result,
        el('details', { class: 'override' }, el('summary', { text: 'Pin override values' }),
            el('p', { class: 'hint', text: 'The operator’s values win over the rules. Empty = not set. ' +
                'Saving makes a new version (source "override").' }), form));
    actions.querySelector('details').open = true;

    // ------------------------------------------------------- data panels
    const heatBox = el('div', { class: 'chart-box' });
    const latBox = el('div', { class: 'chart-box' });
    const gmpBox = el('div', { class: 'chart-box' });
    const diffBox = el('div', { 'data-testid': 'config-diff', class: 'config-diff' });
    const reasonsBox = el('div', { 'data-testid': 'reasons', class: 'reasons' });
    const heldBox = el('div', { class: 'held' });
    const verdictBox = el('div', { 'data-testid': 'verdicts', class: 'verdicts' });
    const versionsBox = el('div', { 'data-testid': 'versions', class: 'versions' });
    const eventsBox = el('div', { 'data-testid': 'agent-events', class: 'agent-events' });

    page.append(
        el('div', { class: 'page-head' }, heading, el('a', { href: '#/', class: 'back', text: '← Fleet' })),
        notFound, facts,
        el('div', { class: 'grid-2' },
            section('Run queue per P', heatBox),
            el('div', null, section('Scheduling latency', latBox), section('GOMAXPROCS', gmpBox))),
        el('div', { class: 'grid-2' },
            section('Config: current vs recommended', diffBox, heldBox, el('h3', { text: 'Why' }), reasonsBox),
            el('div', null, actions, section('Verification', verdictBox))),
        section('Versions', versionsBox),
        section('Events', eventsBox));

    let modeSet = false, formFilled = false;
    const evState = { events: [], last: 0 };
    let agent = null, rec = null;

    // -------------------------------------------------------- the actions
    async function act(title, text, method, path, body, okText) {
        if (!(await confirmAction(title, text, body))) return null;
        const r = await request(method, agentPath(id) + path, body);
        showResult(result, title, r, okText && r.ok ? okText(r.data) : undefined);
        refresh();
        return r;
    }

    btnApply.addEventListener('click', () => {
        const changes = rec ? configSummary(rec.config) : 'the current recommendation';
        act('Apply recommendation', `Make the recommendation (${changes}) version ${(agent?.config_version ?? 0) + 1} of ${id}?`,
            'POST', '/apply', undefined, (d) => `version ${d.version} (${configSummary(d.config)})`);
    });
    btnRollback.addEventListener('click', () => {
        const v = agent?.config_version ?? 0;
        act('Roll back', `Make version ${v + 1} of ${id} equal to version ${Math.max(0, v - 1)}?`,
            'POST', '/rollback', {}, (d) => `version ${d.version} (${configSummary(d.config)})`);
    });
    btnMode.addEventListener('click', async () => {
        const mode = modeSel.value;
        const r = await act('Switch mode', `Set the mode of ${id} to "${mode}"?`, 'PUT', '/mode', { mode },
            (d) => `mode ${d.mode} (${d.mode_source === 'policy' ? 'from the policy' : 'set on the agent'})`);
        if (r && r.ok) modeSet = false;
    });
    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const body = {};
        for (const f of CONFIG_FIELDS) {
            const v = f === 'pool.steal_scope' ? (form.elements.namedItem(f).value || undefined) :
                parseValue(form.elements.namedItem(f).value);
            if (v !== undefined) setPath(body, f, v);
        }
        const r = await act('Pin override', `Pin these values on ${id}? Fields left empty are not set.`,
            'PUT', '/override', body, (d) => `version ${d.version} (${configSummary(d.config)})`);
        if (r) showFieldErrors(form, r);
    });

    function overrideForm() {
        const f = el('form', { 'data-testid': 'override-form', class: 'form-grid', novalidate: true });
        const hints = {
            gomaxprocs: '1–1024', 'pool.workers': '1–65536', 'pool.steal_threshold': '1–256',
            gosched_every: '1–1e9', chunk_size: '1–1e9', task_timeout_ms: '1–86400000 ms',
        };
        for (const name of CONFIG_FIELDS) {
            const fid = 'ov-' + name.replace('.', '-');
            let input;
            if (name === 'pool.steal_scope') {
                input = el('select', { name, id: fid },
                    el('option', { value: '', text: 'not set' }),
                    el('option', { value: 'neighbors', text: 'neighbors' }),
                    el('option', { value: 'all', text: 'all' }));
            } else {
                input = el('input', { name, id: fid, type: 'text', inputmode: 'numeric', autocomplete: 'off',
                    placeholder: hints[name] });
            }
            input.setAttribute('aria-describedby', fid + '-err');
            const fe = fieldError(name);
            fe.id = fid + '-err';
            f.append(el('div', { class: 'field' }, el('label', { for: fid, text: name }), input, fe));
        }
        f.append(el('div', { class: 'buttons' },
            el('button', { type: 'submit', class: 'primary', 'data-testid': 'action-override', text: 'Pin override' })));
        return f;
    }

    // ------------------------------------------------------------ render
    function renderFacts(a) {
        clear(facts);
        const cpu = a.cpu || {};
        const item = (k, v, title) => facts.append(el('div', null, el('dt', { text: k }),
            el('dd', { title: title || null }, v)));
        item('Service', el('a', { href: '#/policy/' + encodeURIComponent(a.service), text: a.service,
            title: 'policy of ' + a.service }));
        item('Host', a.hostname || DASH);
        item('Runtime', a.runtime || DASH);
        item('Mode', el('span', { class: 'badge mode-' + a.mode, text: a.mode }),
            a.mode_source === 'policy' ? 'from the policy’s mode.default' : 'set on the agent');
        item('CPU limit', cpu.limit === null || cpu.limit === undefined ? 'unlimited' : fmtNum(cpu.limit, 2) + ' CPUs',
            cpu.limit_source || '');
        item('CPUs', `${fmtInt(cpu.num_cpu)}${cpu.affinity ? ' (affinity ' + cpu.affinity + ')' : ''}`);
        const thr = cpu.throttling && cpu.throttling.recent;
        if (thr) item('Throttled', fmtNum(thr.throttled_pct, 1) + '% of periods');
        item('Version', `applied ${a.applied_version ?? 0} / desired ${a.desired_version ?? 0}`,
            a.out_of_date_s ? `out of date for ${fmtNum(a.out_of_date_s, 1)} s` : '');
        item('Samples', fmtInt(a.samples_total));
        const ls = el('span', null, timeEl(a.last_seen_ms));
        if (Date.now() - a.last_seen_ms > 60000) ls.append(el('span', { class: 'badge stale-badge', text: 'stale' }));
        item('Last seen', ls);
    }

    function renderCharts(samples, hotPs) {
        heatBox.replaceChildren(heatmap(samples, hotPs));
        if (samples.length && !samples.some((s) => Array.isArray(s.local_runq)))
            heatBox.append(el('p', { class: 'hint', text: 'This agent sends runtime/metrics samples, which have no per-P queues.' }));
        const lat = (k) => samples.map((s) => (s.sched_latency_us ? s.sched_latency_us[k] ?? null : null));
        latBox.replaceChildren(lineChart({ testid: 'latency-chart', label: 'scheduling latency p50 and p99',
            empty: samples.length ? 'no latency data (schedtrace samples carry none)' : 'no samples yet',
            format: fmtUs, series: [{ name: 'p50', cls: 's-p50', values: lat('p50') },
                { name: 'p99', cls: 's-p99', values: lat('p99') }] }));
        const recG = rec && rec.config ? rec.config.gomaxprocs : undefined;
        const series = [{ name: 'gomaxprocs', cls: 's-gmp', step: true, values: samples.map((s) => s.gomaxprocs ?? null) }];
        if (recG !== undefined && samples.length)
            series.push({ name: 'recommended', cls: 's-rec', dash: true, values: samples.map(() => recG) });
        gmpBox.replaceChildren(lineChart({ testid: 'gomaxprocs-chart', label: 'GOMAXPROCS over the samples',
            empty: 'no samples yet', integer: true, format: (v) => fmtInt(v), series }));
    }

    function renderDiff() {
        clear(diffBox);
        clear(heldBox);
        if (!rec) { diffBox.append(emptyState('No recommendation yet.')); return; }
        const cur = flatten(rec.current), want = flatten(rec.config);
        const fields = CONFIG_FIELDS.filter((f) => f in cur || f in want);
        for (const f of Object.keys({ ...cur, ...want })) if (!fields.includes(f)) fields.push(f);
        if (!fields.length) {
            diffBox.append(emptyState('Nothing set and nothing to recommend: the runtime defaults stay.'));
        } else {
            const tbody = el('tbody');
            for (const f of fields) {
                const a = cur[f], b = want[f];
                const changed = a !== b;
                tbody.append(el('tr', { 'data-field': f, class: changed ? 'changed' : null },
                    el('th', { scope: 'row', text: f }),
                    el('td', { class: 'cur', text: a === undefined ? 'not set' : String(a) }),
                    el('td', { class: 'arrow', 'aria-hidden': 'true', text: changed ? '→' : '=' }),
                    el('td', { class: 'rec', text: b === undefined ? 'not set' : String(b) })));
            }
            diffBox.append(el('table', { class: 'diff' },
                el('thead', null, el('tr', null, el('th', { scope: 'col', text: 'field' }),
                    el('th', { scope: 'col', text: `current (v${rec.current_version})` }),
                    el('th', { scope: 'col', 'aria-hidden': 'true' }),
                    el('th', { scope: 'col', text: 'recommended' }))), tbody));
        }
        diffBox.append(el('p', { class: 'hint', text: rec.changes ?
            'Applying would change the config.' : 'The current config already matches the recommendation.' }));
        if (rec.held && rec.held.length) {
            const GUARDS = { min_change: 'too small a step (guards.min_change_pct)',
                override: 'the operator’s override sets it', cooldown: 'a rollback rejected this value (cool-down)' };
            heldBox.append(el('h3', { text: 'Held back by the guards' }),
                el('ul', null, rec.held.map((h) => el('li', { 'data-field': h.field },
                    `${h.field}: would be ${h.wanted}, stays ${h.current ?? 'not set'} — ${GUARDS[h.guard] || h.guard}`))));
        }
        if (rec.next_change_ms && rec.next_change_ms > Date.now())
            heldBox.append(el('p', { class: 'hint' }, 'Next change allowed ', timeEl(rec.next_change_ms), '.'));
    }

    function renderReasons() {
        clear(reasonsBox);
        if (!rec || !rec.reasons || !rec.reasons.length) {
            reasonsBox.append(emptyState('No rule has anything to say yet.'));
            return;
        }
        for (const r of rec.reasons) {
            const div = el('div', { 'data-testid': 'reason', 'data-rule': r.rule, class: 'reason' },
                el('strong', { text: RULE_NAMES[r.rule] || r.rule }), el('p', { text: r.text }));
            if (r.hot_ps && r.hot_ps.length) div.append(el('p', { class: 'hint', text: 'Hot Ps: ' + r.hot_ps.join(', ') }));
            reasonsBox.append(div);
        }
    }

    function renderVerdicts(a) {
        clear(verdictBox);
        let any = false;
        const row = (cls, ...c) => { any = true; verdictBox.append(el('div', { class: 'verdict ' + cls }, ...c)); };
        const metric = (m, v) => v === null || v === undefined ? DASH :
            m === 'sched_latency_p99_us' || m === 'latency' ? fmtUs(v) : fmtNum(v, 2) + ' per P';
        if (a.last_verdict) {
            const v = a.last_verdict;
            const gain = v.gain_pct === null || v.gain_pct === undefined ? '' :
                v.gain_pct >= 0 ? ` (${fmtNum(v.gain_pct, 1)}% lower)` : ` (${fmtNum(-v.gain_pct, 1)}% higher)`;
            row('v-' + v.verdict, el('span', { class: 'badge v-' + v.verdict, text: v.verdict }),
                ` version ${v.version}: ${v.metric} ${metric(v.metric, v.before)} → ${metric(v.metric, v.after)}${gain}, decided `,
                timeEl(v.decided_ms));
        }
        if (a.verification) {
            const v = a.verification, b = v.before || {};
            row('pending', el('span', { class: 'badge pending', text: 'pending' }),
                ` version ${v.version}, ACKed `, timeEl(v.acked_ms),
                `; before: ${fmtInt(b.samples)} samples, p99 ${fmtUs(b.sched_latency_p99_us)}, run queue ${fmtNum(b.runq_per_p, 2)} per P`);
        }
        if (a.last_nack)
            row('nack', el('span', { class: 'badge nack', text: 'NACK' }),
                ` version ${a.last_nack.version}: ${a.last_nack.error || 'rejected'} `, timeEl(a.last_nack.ms));
        if (a.cooldown && a.cooldown.until_ms > Date.now())
            row('cooldown', el('span', { class: 'badge', text: 'cool-down' }),
                ` not proposing ${configSummary(a.cooldown.rejected)} again until `, timeEl(a.cooldown.until_ms));
        if (!any) verdictBox.append(emptyState('No verification yet: a version is verified after the agent ACKs it.'));
    }

    function renderVersions(versions, a) {
        clear(versionsBox);
        if (!versions.length) { versionsBox.append(emptyState('No versions yet: the agent runs its defaults.')); return; }
        const tbody = el('tbody');
        for (const v of versions) {
            const tags = [];
            if (v.version === a.desired_version) tags.push(el('span', { class: 'badge', text: 'desired' }));
            if (v.version === a.applied_version) tags.push(el('span', { class: 'badge ok', text: 'applied' }));
            tbody.append(el('tr', { 'data-version': v.version },
                el('td', { class: 'num', text: 'v' + v.version }), el('td', { text: v.source || DASH }),
                el('td', null, timeEl(v.created_ms)), el('td', { text: configSummary(v.config) }),
                el('td', null, tags)));
        }
        versionsBox.append(el('div', { class: 'table-wrap' }, el('table', { class: 'list' },
            el('thead', null, el('tr', null, ['version', 'source', 'created', 'config', ''].map((h) =>
                el('th', { scope: 'col', text: h })))), tbody)));
    }

    function renderEvents() {
        clear(eventsBox);
        if (!evState.events.length) { eventsBox.append(emptyState('No events yet.')); return; }
        const tbody = el('tbody');
        for (const e of evState.events.slice(-200).reverse()) tbody.append(eventRow(e, false));
        eventsBox.append(el('div', { class: 'table-wrap' }, el('table', { class: 'list events' },
            eventsHead(false), tbody)));
        if (evState.events.length > 200)
            eventsBox.append(el('p', { class: 'hint' }, 'The 200 newest; the rest is in ',
                el('a', { href: '#/events', text: 'the event log' }), '.'));
    }

    function fillForm(a) {
        if (formFilled) return;
        formFilled = true;
        const ov = flatten(a.override || {});
        for (const f of CONFIG_FIELDS) {
            const input = form.elements.namedItem(f);
            input.value = ov[f] === undefined ? '' : String(ov[f]);
        }
    }

    async function refresh() {
        const base = agentPath(id);
        const [ra, rs, rr, rv, re] = await Promise.all([
            get(base), get(base + '/samples?limit=128'), get(base + '/recommendation'),
            get(base + '/versions?limit=100'), eventsAfter({ agent: id }, evState.last, 2000),
        ]);
        if (!alive) return;
        if (!ra.ok) {
            clear(notFound);
            if (ra.status === 404) {
                notFound.append(emptyState(`No agent "${id}": it never pushed, or it was deleted.`));
                page.classList.add('missing');
            }
            return;
        }
        clear(notFound);
        page.classList.remove('missing');
        agent = ra.data;
        if (rr.ok) rec = rr.data;
        if (re) { evState.events.push(...re.events); evState.last = re.last; }
        renderFacts(agent);
        if (!modeSet && document.activeElement !== modeSel) {
            modeSel.value = agent.mode_source === 'policy' ? 'default' : agent.mode;
            modeSet = true;
        }
        btnApply.title = agent.mode === 'pinned' ? 'the agent is pinned: switch its mode first' : '';
        fillForm(agent);
        const hot = rec ? (rec.reasons || []).filter((r) => r.rule === 'neighbor_steal').flatMap((r) => r.hot_ps || []) : [];
        if (rs.ok) renderCharts(rs.data.samples || [], hot);
        renderDiff();
        renderReasons();
        renderVerdicts(agent);
        if (rv.ok) renderVersions(rv.data.versions || [], agent);
        renderEvents();
    }

    return { refresh, unmount() { alive = false; } };
}

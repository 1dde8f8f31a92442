// Policy page: the global policy (#/policy) and a service's overrides
// (#/policy/<service>). For a service an empty input inherits the global
// value, shown as the placeholder. A checkbox cannot be empty, so for a
// service even.enabled is sent only when the service already sets it or the
// operator touched it.

import { get, request, listAgents, enc } from './api.js';
import {
    el, clear, emptyState, confirmAction, resultBox, showResult, fieldError, showFieldErrors,
    parseValue, setPath, getPath,
} from './ui.js';

const FIELDS = [
    ['quota', 'Quota: GOMAXPROCS from the CPU limit', [
        ['rounding', 'select', 'rounding of the CPU limit', ['ceil', 'floor', 'nearest']],
        ['min_procs', 'num', 'fewest Ps (1–1024)'],
        ['workers_factor', 'num', 'pool workers per P (0.1–64)'],
    ]],
    ['even', 'Even: an even number of Ps', [
        ['enabled', 'check', 'round odd GOMAXPROCS down to even'],
        ['min', 'num', 'only from this many Ps (2–1024)'],
    ]],
    ['neighbor_steal', 'Neighbour stealing', [
        ['threshold', 'num', 'queued goroutines that make a P hot (1–256)'],
        ['window', 'num', 'samples looked at (1–128)'],
        ['persistence', 'num', 'share of samples that must be hot (0.01–1)'],
        ['gosched_every', 'num', 'Gosched every N tasks (1–1e9)'],
        ['chunk_size', 'num', 'tasks per chunk (1–1e9)'],
    ]],
    ['guards', 'Guards', [
        ['min_change_pct', 'num', 'smallest change worth making, % (0–100)'],
        ['min_interval_s', 'num', 'seconds between changes (0–86400)'],
    ]],
    ['verify', 'Verification', [
        ['tolerance_pct', 'num', 'worse by more than this % fails (0–1000)'],
        ['cooldown_s', 'num', 'seconds a rejected value is held back (0–604800)'],
        ['window', 'num', 'samples before and after (1–64)'],
    ]],
    ['mode', 'Mode', [
        ['default', 'select', 'mode of agents set to "default"', ['recommend', 'auto', 'pinned']],
    ]],
];

export function mount(root, { service }) {
    let alive = true;
    const isService = !!service;
    const scope = el('select', { 'data-testid': 'policy-scope', id: 'policy-scope' },
        el('option', { value: '', text: 'Global' }));
    if (service) scope.append(el('option', { value: service, text: service }));
    scope.value = service;
    scope.addEventListener('change', () => {
        location.hash = scope.value ? '#/policy/' + encodeURIComponent(scope.value) : '#/policy';
    });
    const result = resultBox();
    const note = el('p', { class: 'hint' });
    const form = el('form', { class: 'policy-form', novalidate: true });
    const save = el('button', { type: 'submit', class: 'primary', 'data-testid': 'policy-save', text: 'Save policy' });
    const reset = isService ? el('button', { type: 'button', 'data-testid': 'policy-reset',
        text: 'Reset to global' }) : null;
    let enabledTouched = false;

    for (const [sec, title, fields] of FIELDS) {
        const fs = el('fieldset', null, el('legend', { text: title }));
        for (const [key, type, help, opts] of fields) {
            const name = sec + '.' + key, fid = 'pol-' + sec + '-' + key;
            let input;
            if (type === 'select') {
                input = el('select', { name, id: fid },
                    isService ? el('option', { value: '', text: 'inherit' }) : null,
                    opts.map((o) => el('option', { value: o, text: o })));
            } else if (type === 'check') {
                input = el('input', { type: 'checkbox', name, id: fid });
                input.addEventListener('change', () => { enabledTouched = true; });
            } else {
                input = el('input', { type: 'text', inputmode: 'decimal', name, id: fid, autocomplete: 'off' });
            }
            const fe = fieldError(name);
            fe.id = fid + '-err';
            input.setAttribute('aria-describedby', fid + '-help ' + fid + '-err');
            fs.append(el('div', { class: 'field' + (type === 'check' ? ' check' : '') },
                el('label', { for: fid, text: name }), input,
                el('small', { id: fid + '-help', class: 'help', text: help }), fe));
        }
        form.append(fs);
    }
    form.append(el('div', { class: 'buttons' }, save, reset));

    root.append(el('div', { 'data-testid': 'policy-page', class: 'policy-page' },
        el('div', { class: 'page-head' }, el('h1', { text: isService ? 'Policy of ' + service : 'Global policy' })),
        el('div', { class: 'toolbar' }, el('label', { for: 'policy-scope' }, 'Scope ', scope)),
        note, result, form));

    let global = null, own = null, loaded = false, polls = 0;

    function fill() {
        for (const [sec, , fields] of FIELDS) {
            for (const [key, type] of fields) {
                const name = sec + '.' + key;
                const input = form.elements.namedItem(name);
                const g = getPath(global, name);
                const v = isService ? getPath(own, name) : g;
                if (type === 'check') {
                    input.checked = !!(v === undefined ? g : v);
                } else if (type === 'select') {
                    input.value = v === undefined ? '' : v;
                    if (isService) input.options[0].textContent = `inherit (${g})`;
                } else {
                    input.value = v === undefined ? '' : String(v);
                    input.placeholder = isService && g !== undefined ? `inherit: ${g}` : '';
                }
            }
        }
        enabledTouched = false;
        clear(note);
        note.textContent = isService ? (own && Object.keys(own).length ?
            `${service} overrides ${Object.keys(own).length} section(s); empty fields inherit the global policy.` :
            `${service} has no overrides: it follows the global policy. Fill in a field to override it.`) :
            'The global policy applies to every service that does not override a field.';
        if (reset) reset.disabled = !own || !Object.keys(own).length;
    }

    function body() {
        const out = {};
        for (const [sec, , fields] of FIELDS) {
            for (const [key, type] of fields) {
                const name = sec + '.' + key;
                const input = form.elements.namedItem(name);
                let v;
                if (type === 'check') {
                    if (isService && !enabledTouched && getPath(own, name) === undefined) continue;
                    v = input.checked;
                } else if (type === 'select') {
                    v = input.value || undefined;
                } else {
                    v = parseValue(input.value);
                }
                if (v !== undefined) setPath(out, name, v);
            }
        }
        return out;
    }

    form.addEventListener('submit', async (ev) => {
        ev.preventDefault();
        const b = body();
        const where = isService ? `the policy of ${service}` : 'the global policy';
        if (!(await confirmAction('Save policy', `Replace ${where} with these values? ` +
            'Agents in auto mode are re-evaluated at once.', b))) return;
        const r = await request('PUT', isService ? `/api/v1/services/${enc(service)}/policy` : '/api/v1/policy', b);
        showResult(result, 'Save policy', r, r.ok ? 'saved' : undefined);
        showFieldErrors(form, r);
        if (r.ok) await load();
    });
    if (reset) reset.addEventListener('click', async () => {
        if (!(await confirmAction('Reset policy', `Delete the overrides of ${service}? It will follow the global policy.`))) return;
        const r = await request('DELETE', `/api/v1/services/${enc(service)}/policy`);
        showResult(result, 'Reset policy', r, r.ok ? `${service} follows the global policy` : undefined);
        showFieldErrors(form, r);
        if (r.ok) await load();
    });

    async function load() {
        const rg = await get('/api/v1/policy');
        if (!rg.ok) return false;
        global = rg.data;
        if (isService) {
            const rs = await get(`/api/v1/services/${enc(service)}/policy`);
            if (rs.ok) own = rs.data.override || {};
            else if (rs.status === 404) own = {};
            else return false;
        }
        if (!alive) return false;
        fill();
        return true;
    }

    async function refresh() {
        // The form is filled once (and after a save); polling only keeps
        // the list of services current, so edits in progress stay.
        if (!loaded) loaded = await load();
        if (polls++ % 6) return; // the service list every 30 s is plenty
        const agents = await listAgents();
        if (!agents || !alive) return;
        const names = [...new Set(agents.map((a) => a.service))];
        if (service && !names.includes(service)) names.push(service);
        names.sort();
        const have = [...scope.options].slice(1).map((o) => o.value);
        if (have.join('\n') !== names.join('\n')) {
            while (scope.options.length > 1) scope.remove(1);
            for (const n of names) scope.append(el('option', { value: n, text: n }));
            scope.value = service;
        }
        if (!loaded) { clear(note); note.append(emptyState('Could not load the policy.')); }
    }

    return { refresh, unmount() { alive = false; } };
}

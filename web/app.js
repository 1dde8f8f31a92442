// gotuned dashboard: hash router, the 5 s polling loop and the live status.
// Pages are modules exporting mount(root, params) → { refresh(), unmount() }.

import { conn, onStatus, onAuthNeeded } from './api.js';
import { askToken } from './auth.js';
import { fmtRel, fmtAbs } from './ui.js';
import * as fleet from './fleet.js';
import * as agent from './agent.js';
import * as policy from './policy.js';
import * as events from './events.js';

const POLL_MS = 5000;
let page = null, timer = null;

function parseRoute(hash) {
    const parts = hash.replace(/^#\/?/, '').split('/').map((p) => {
        try { return decodeURIComponent(p); } catch { return p; }
    });
    switch (parts[0]) {
    case '': return { mod: fleet, name: 'fleet', params: {} };
    case 'agent': return { mod: agent, name: 'agent', params: { id: parts[1] || '' } };
    case 'policy': return { mod: policy, name: 'policy', params: { service: parts[1] || '' } };
    case 'events': return { mod: events, name: 'events', params: {} };
    default: return { mod: null, name: 'notfound', params: {} };
    }
}

function markNav(name) {
    for (const a of document.querySelectorAll('[data-testid=nav] a')) {
        const href = a.getAttribute('href');
        const cur = (href === '#/' && (name === 'fleet' || name === 'agent')) ||
            (href === '#/policy' && name === 'policy') || (href === '#/events' && name === 'events');
        if (cur) a.setAttribute('aria-current', 'page');
        else a.removeAttribute('aria-current');
    }
}

async function route() {
    if (page && page.unmount) page.unmount();
    page = null;
    const view = document.getElementById('view');
    view.replaceChildren();
    const r = parseRoute(location.hash || '#/');
    markNav(r.name);
    if (!r.mod) {
        const p = document.createElement('p');
        p.className = 'empty';
        p.textContent = 'No such page. ';
        const a = document.createElement('a');
        a.href = '#/';
        a.textContent = 'Back to the fleet';
        p.append(a);
        view.append(p);
        return;
    }
    page = r.mod.mount(view, r.params);
    await tick();
}

// One refresh of the current page; a page never has two in flight.
async function tick() {
    const p = page;
    if (!p || p.busy) return;
    p.busy = true;
    try {
        await p.refresh();
    } catch (e) {
        console.error(e);
    } finally {
        p.busy = false;
    }
}

function renderStatus() {
    const st = document.querySelector('[data-testid=status]');
    st.classList.toggle('online', conn.online);
    st.classList.toggle('offline', !conn.online);
    if (conn.online) {
        st.textContent = 'Live';
        st.title = conn.lastOk ? 'last answer ' + fmtAbs(conn.lastOk) : '';
    } else {
        st.textContent = 'Server unreachable' + (conn.lastOk ? ' — last answer ' + fmtRel(conn.lastOk) : '') +
            '; retrying';
        st.title = conn.lastError;
    }
}

onStatus(renderStatus);
onAuthNeeded(askToken);
window.addEventListener('hashchange', route);
document.addEventListener('visibilitychange', () => { if (!document.hidden) tick(); });

function start() {
    route();
    timer = setInterval(() => { tick(); if (!conn.online) renderStatus(); }, POLL_MS);
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();

export { timer };

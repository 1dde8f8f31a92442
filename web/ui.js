// DOM helpers, number and time formatting, the confirmation dialog and the
// result box. API data only ever reaches the page through textContent.

export function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) {
        for (const [k, v] of Object.entries(attrs)) {
            if (v === null || v === undefined || v === false) continue;
            if (k === 'text') e.textContent = v;
            else if (k === 'class') e.className = v;
            else if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
            else if (k === 'value') e.value = v;
            else e.setAttribute(k, v === true ? '' : v);
        }
    }
    append(e, children);
    return e;
}

function append(parent, children) {
    for (const c of children) {
        if (c === null || c === undefined || c === false) continue;
        if (Array.isArray(c)) append(parent, c);
        else parent.append(c instanceof Node ? c : String(c));
    }
}

export function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
}

export function setText(node, text) {
    if (node.textContent !== text) node.textContent = text;
}

const nf0 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const nf1 = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
const nf2 = new Intl.NumberFormat('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 });

export const DASH = '—';

export function fmtInt(n) {
    return n === null || n === undefined || Number.isNaN(n) ? DASH : nf0.format(n);
}

export function fmtNum(n, digits = 1) {
    if (n === null || n === undefined || Number.isNaN(n)) return DASH;
    return digits === 2 ? nf2.format(n) : digits === 0 ? nf0.format(n) : nf1.format(n);
}

// Microseconds: "480 µs", "12.5 µs", "1.2 ms", "3.40 s".
export function fmtUs(us) {
    if (us === null || us === undefined || Number.isNaN(us)) return DASH;
    if (us >= 1e6) return nf2.format(us / 1e6) + ' s';
    if (us >= 1e4) return nf1.format(us / 1e3) + ' ms';
    if (us >= 100) return nf0.format(us) + ' µs';
    return nf1.format(us) + ' µs';
}

export function fmtAbs(ms) {
    if (!ms) return '';
    const d = new Date(ms);
    return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' }) +
        ' (' + d.toISOString() + ')';
}

export function fmtRel(ms, now = Date.now()) {
    if (!ms) return DASH;
    const s = Math.round((now - ms) / 1000);
    const a = Math.abs(s);
    const sfx = s >= 0 ? ' ago' : ' from now';
    if (a < 5) return s >= 0 ? 'just now' : 'in a moment';
    if (a < 60) return a + ' s' + sfx;
    if (a < 3600) return Math.floor(a / 60) + ' min' + sfx;
    if (a < 86400) return Math.floor(a / 3600) + ' h' + sfx;
    return Math.floor(a / 86400) + ' d' + sfx;
}

// A <time> element: relative text, absolute time in the title.
export function timeEl(ms) {
    const t = el('time', { text: fmtRel(ms) });
    if (ms) {
        t.dateTime = new Date(ms).toISOString();
        t.title = fmtAbs(ms);
    }
    return t;
}

export function updateTime(t, ms) {
    setText(t, fmtRel(ms));
    const title = ms ? fmtAbs(ms) : '';
    if (t.title !== title) t.title = title;
}

// Flattens a config object to "gomaxprocs", "pool.workers", ... → value.
export function flatten(obj, prefix = '', out = {}) {
    for (const [k, v] of Object.entries(obj || {})) {
        if (v && typeof v === 'object' && !Array.isArray(v)) flatten(v, prefix + k + '.', out);
        else out[prefix + k] = v;
    }
    return out;
}

export function configSummary(cfg) {
    const f = flatten(cfg);
    const parts = Object.entries(f).map(([k, v]) => k + ' ' + v);
    return parts.length ? parts.join(', ') : 'defaults (nothing set)';
}

// Parses a form value: '' → undefined (not set), a number when it looks like
// one, else the text itself so that the API names what is wrong with it.
export function parseValue(s) {
    const t = String(s).trim();
    if (t === '') return undefined;
    if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number(t);
    return t;
}

// Sets a dotted path ("pool.workers") in an object.
export function setPath(obj, path, value) {
    const keys = path.split('.');
    let o = obj;
    for (const k of keys.slice(0, -1)) o = o[k] = o[k] || {};
    o[keys[keys.length - 1]] = value;
}

export function getPath(obj, path) {
    let o = obj;
    for (const k of path.split('.')) {
        if (o === null || o === undefined) return undefined;
        o = o[k];
    }
    return o;
}

// ---------------------------------------------------------------- confirm

// confirmAction(title, text, body) opens dialog[data-testid=confirm] and
// resolves true when the operator confirms.
export function confirmAction(title, text, body) {
    const dlg = document.querySelector('dialog[data-testid=confirm]');
    dlg.querySelector('#confirm-title').textContent = title;
    dlg.querySelector('.confirm-text').textContent = text;
    const pre = dlg.querySelector('.confirm-body');
    pre.hidden = body === undefined;
    pre.textContent = body === undefined ? '' : JSON.stringify(body, null, 2);
    return new Promise((resolve) => {
        dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
        dlg.returnValue = 'cancel';
        dlg.showModal();
        dlg.querySelector('[data-testid=confirm-cancel]').focus();
    });
}

// ----------------------------------------------------------------- result

export function resultBox() {
    return el('div', { 'data-testid': 'result', class: 'result', role: 'status', 'aria-live': 'polite', hidden: true });
}

// showResult(box, title, r): r is a request() answer.
export function showResult(box, what, r, okText) {
    box.hidden = false;
    box.classList.toggle('ok', r.ok);
    box.classList.toggle('error', !r.ok);
    clear(box);
    if (r.ok) {
        box.append(el('strong', { text: what + ': done' }), ' ', okText || `HTTP ${r.status}`);
    } else {
        const e = r.error;
        box.append(el('strong', { text: what + ' failed' }), ' ',
            `(${r.status ? 'HTTP ' + r.status + ', ' : ''}${e.code}): ${e.message}`);
        if (e.field) box.append(el('span', { class: 'field', text: ' — field ' + e.field }));
    }
    if (r.data && r.ok) {
        const d = el('details', null, el('summary', { text: 'API answer' }),
            el('pre', { text: JSON.stringify(r.data, null, 2) }));
        box.append(d);
    }
}

// Field errors: [data-testid=field-error][data-field=X] elements inside form.
export function fieldError(name) {
    return el('span', { 'data-testid': 'field-error', 'data-field': name, class: 'field-error', role: 'alert' });
}

export function showFieldErrors(form, r) {
    for (const fe of form.querySelectorAll('[data-testid=field-error]')) fe.textContent = '';
    for (const inp of form.querySelectorAll('[aria-invalid]')) inp.removeAttribute('aria-invalid');
    if (r.ok || !r.error || !r.error.field) return;
    const fe = form.querySelector(`[data-testid=field-error][data-field="${CSS.escape(r.error.field)}"]`);
    if (fe) {
        fe.textContent = r.error.message;
        const inp = form.elements.namedItem(r.error.field);
        if (inp && inp.setAttribute) {
            inp.setAttribute('aria-invalid', 'true');
            inp.focus();
        }
    }
}

export function emptyState(text) {
    return el('p', { class: 'empty', text });
}

export function section(title, ...children) {
    return el('section', { class: 'card' }, el('h2', { text: title }), ...children);
}

export const RULE_NAMES = {
    quota: 'CPU quota',
    even: 'Even number of Ps',
    neighbor_steal: 'Neighbour stealing',
    operator: 'Operator',
    verifier: 'Verifier',
};

export const CONFIG_FIELDS = ['gomaxprocs', 'pool.workers', 'pool.steal_threshold', 'pool.steal_scope',
    'gosched_every', 'chunk_size', 'task_timeout_ms'];

// SVG charts: the fleet's run-queue sparkline, the agent's per-P heatmap and
// its line charts. Styling is by class (style.css) and presentation
// attributes only: the CSP forbids style="" in markup.

import { fmtInt, fmtNum } from './ui.js';

const NS = 'http://www.w3.org/2000/svg';

export function svg(tag, attrs, ...children) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
        if (v === null || v === undefined) continue;
        if (k === 'text') e.textContent = v;
        else e.setAttribute(k, v);
    }
    for (const c of children) if (c) e.append(c);
    return e;
}

const title = (text) => svg('title', { text });

// Total local run queue of a sample, or null for a runtime/metrics sample.
export function runqTotal(s) {
    return Array.isArray(s.local_runq) ? s.local_runq.reduce((a, b) => a + b, 0) : null;
}

// ------------------------------------------------------------- sparkline

export function sparkline(values, w = 96, h = 22) {
    const el = svg('svg', { 'data-testid': 'sparkline', class: 'sparkline', width: w, height: h,
        viewBox: `0 0 ${w} ${h}`, role: 'img' });
    const vs = values.filter((v) => v !== null && v !== undefined);
    if (vs.length < 2) {
        el.setAttribute('aria-label', 'no run-queue samples');
        return el;
    }
    const max = Math.max(1, ...vs), min = 0;
    const pts = [];
    values.forEach((v, i) => {
        if (v === null || v === undefined) return;
        const x = 1 + (i * (w - 2)) / (values.length - 1);
        const y = h - 2 - ((v - min) * (h - 4)) / (max - min);
        pts.push(x.toFixed(1) + ',' + y.toFixed(1));
    });
    const last = vs[vs.length - 1];
    el.setAttribute('aria-label', `run queue over ${vs.length} samples, last ${fmtInt(last)}, max ${fmtInt(max)}`);
    el.append(title(`total local run queue: last ${fmtInt(last)}, max ${fmtInt(Math.max(...vs))}`));
    el.append(svg('polyline', { points: pts.join(' '), class: 'spark-line', fill: 'none' }));
    return el;
}

// --------------------------------------------------------------- heatmap

// Sequential palette from calm to hot (light grey-blue → deep amber/red).
const PALETTE = ['#eef2f7', '#d6e4f0', '#aecde3', '#f5d48a', '#f0a35e', '#e0683f', '#b9352b', '#7f1d1d'];

function colourFor(v, max) {
    if (v === null || v === undefined) return 'none';
    if (v <= 0) return PALETTE[0];
    const t = Math.sqrt(v / Math.max(1, max)); // sqrt: small queues stay visible
    return PALETTE[Math.min(PALETTE.length - 1, 1 + Math.floor(t * (PALETTE.length - 1)))];
}

// heatmap(samples, hotPs): rows = Ps of the newest sample with local_runq,
// columns = those samples, oldest left.
export function heatmap(samples, hotPs) {
    const rows = samples.filter((s) => Array.isArray(s.local_runq));
    const root = svg('svg', { 'data-testid': 'heatmap', class: 'heatmap', role: 'img' });
    if (!rows.length) {
        root.setAttribute('viewBox', '0 0 400 60');
        root.setAttribute('aria-label', 'no per-P run-queue samples');
        root.append(svg('text', { x: 200, y: 34, 'text-anchor': 'middle', class: 'chart-empty',
            text: 'no per-P run-queue samples yet' }));
        return root;
    }
    const nP = rows[rows.length - 1].local_runq.length;
    const hot = new Set(hotPs || []);
    let max = 0;
    for (const s of rows) for (const v of s.local_runq) if (v > max) max = v;
    const left = 34, top = 6, legendH = 34;
    const cellW = Math.max(2, Math.min(16, Math.floor(720 / rows.length)));
    const cellH = nP > 64 ? 4 : nP > 32 ? 8 : nP > 16 ? 12 : nP > 8 ? 18 : 28;
    const W = left + cellW * rows.length + 8;
    const H = top + cellH * nP + 16 + legendH;
    root.setAttribute('viewBox', `0 0 ${W} ${H}`);
    root.setAttribute('width', W);
    root.setAttribute('aria-label', `run queue per P: ${nP} Ps × ${rows.length} samples, max ${max}` +
        (hot.size ? `; hot Ps ${[...hot].join(', ')}` : ''));
    const labelEvery = nP > 32 ? 8 : nP > 16 ? 4 : 1;
    for (let p = 0; p < nP; p++) {
        const y = top + p * cellH;
        const g = svg('g', { 'data-testid': 'heatmap-row', 'data-p': p, class: hot.has(p) ? 'hot' : null });
        if (p % labelEvery === 0 || hot.has(p))
            g.append(svg('text', { x: left - 4, y: y + cellH / 2 + 4, 'text-anchor': 'end',
                class: 'axis-label' + (hot.has(p) ? ' hot-label' : ''), text: 'P' + p }));
        rows.forEach((s, i) => {
            const v = s.local_runq[p];
            if (v === undefined) return;
            const r = svg('rect', { x: left + i * cellW, y, width: cellW, height: cellH,
                fill: colourFor(v, max) });
            r.append(title(`P${p}, sample ${i + 1}: ${v} queued`));
            g.append(r);
        });
        if (hot.has(p))
            g.append(svg('rect', { class: 'hot-outline', x: left - 0.5, y: y + 0.5, width: cellW * rows.length + 1,
                height: cellH - 1, fill: 'none', stroke: '#b91c1c', 'stroke-width': 1.5 }));
        root.append(g);
    }
    // x axis note and legend
    const ly = top + cellH * nP + 14;
    root.append(svg('text', { x: left, y: ly, class: 'axis-label', text: 'oldest' }));
    root.append(svg('text', { x: left + cellW * rows.length, y: ly, 'text-anchor': 'end', class: 'axis-label',
        text: `newest (${rows.length} samples)` }));
    const legend = svg('g', { class: 'legend', 'data-testid': 'heatmap-legend' });
    const steps = [0, ...Array.from({ length: PALETTE.length - 1 }, (_, k) =>
        Math.max(1, Math.round(max * ((k + 1) / (PALETTE.length - 1)) ** 2)))];
    const uniq = [...new Set(steps)];
    legend.append(svg('text', { x: left, y: ly + 22, class: 'axis-label', text: 'queued:' }));
    uniq.forEach((v, k) => {
        const x = left + 52 + k * 46;
        legend.append(svg('rect', { x, y: ly + 12, width: 14, height: 12, fill: colourFor(v, max), stroke: '#c5ccd6' }));
        legend.append(svg('text', { x: x + 17, y: ly + 22, class: 'axis-label', text: fmtInt(v) }));
    });
    if (hot.size) {
        const x = left + 52 + uniq.length * 46 + 8;
        legend.append(svg('rect', { x, y: ly + 12, width: 14, height: 12, fill: 'none', stroke: '#b91c1c', 'stroke-width': 1.5 }));
        legend.append(svg('text', { x: x + 18, y: ly + 22, class: 'axis-label', text: 'hot P (neighbour steal)' }));
    }
    root.append(legend);
    // The legend may be wider than the samples: widen the drawing to hold it.
    const legendW = left + 52 + uniq.length * 46 + (hot.size ? 8 + 18 + 150 : 0);
    if (legendW > W) {
        root.setAttribute('viewBox', `0 0 ${legendW} ${H}`);
        root.setAttribute('width', legendW);
    }
    return root;
}

// ------------------------------------------------------------ line chart

// lineChart({testid, series:[{name, cls, values:[number|null], step, dash}],
//            format, empty, label})
export function lineChart(o) {
    const W = 640, H = 190, left = 56, right = 12, top = 28, bottom = 26;
    const root = svg('svg', { 'data-testid': o.testid, class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img',
        'aria-label': o.label });
    const n = Math.max(0, ...o.series.map((s) => s.values.length));
    const all = o.series.flatMap((s) => s.values).filter((v) => v !== null && v !== undefined);
    if (!all.length) {
        root.append(svg('text', { x: W / 2, y: H / 2, 'text-anchor': 'middle', class: 'chart-empty', text: o.empty }));
        return root;
    }
    let max = Math.max(...all), min = Math.min(0, ...all);
    if (max === min) max = min + 1;
    let ticks = [0, 1, 2, 3, 4].map((k) => min + ((max - min) * k) / 4);
    if (o.integer) {
        const step = Math.max(1, Math.ceil((max - min) / 4));
        max = min + step * 4;
        ticks = [0, 1, 2, 3, 4].map((k) => min + step * k);
    }
    const x = (i) => left + (n <= 1 ? 0 : (i * (W - left - right)) / (n - 1));
    const y = (v) => top + (H - top - bottom) * (1 - (v - min) / (max - min));
    // grid: 4 lines
    for (const v of ticks) {
        const yy = y(v);
        root.append(svg('line', { x1: left, x2: W - right, y1: yy, y2: yy, class: 'grid' }));
        root.append(svg('text', { x: left - 6, y: yy + 4, 'text-anchor': 'end', class: 'axis-label', text: o.format(v) }));
    }
    root.append(svg('text', { x: left, y: H - 6, class: 'axis-label', text: 'oldest' }));
    root.append(svg('text', { x: W - right, y: H - 6, 'text-anchor': 'end', class: 'axis-label',
        text: `newest (${n} samples)` }));
    o.series.forEach((s, si) => {
        let d = '', pen = false, prevY = null;
        s.values.forEach((v, i) => {
            if (v === null || v === undefined) { pen = false; return; }
            const xx = x(i).toFixed(1), yy = y(v).toFixed(1);
            if (!pen) d += `M${xx},${yy}`;
            else if (s.step) d += `H${xx}V${yy}`;
            else d += `L${xx},${yy}`;
            pen = true; prevY = yy;
        });
        if (n === 1 && prevY !== null) d += `H${W - right}`;
        const path = svg('path', { d, class: 'series ' + s.cls, fill: 'none',
            'stroke-dasharray': s.dash ? '5 4' : null });
        const last = [...s.values].reverse().find((v) => v !== null && v !== undefined);
        path.append(title(`${s.name}: last ${last === undefined ? '—' : o.format(last)}`));
        root.append(path);
        // legend
        const lx = left + 10 + si * 150;
        root.append(svg('line', { x1: lx, x2: lx + 18, y1: 10, y2: 10, class: 'series ' + s.cls,
            'stroke-dasharray': s.dash ? '5 4' : null }));
        root.append(svg('text', { x: lx + 22, y: 14, class: 'axis-label legend-text', text: s.name }));
    });
    return root;
}

export { fmtNum };

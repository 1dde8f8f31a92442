'use strict';
/*
 * The agent page (#/agent/<id>): the P × time heatmap with the hot Ps of a
 * real imbalanced Go program, the config diff and reasons, and the actions
 * (apply, mode, override) checked through the API.
 */
const assert = require('node:assert');
const { after, before, test } = require('node:test');

const { startServer, assertJson, assertError } = require('../http/lib.js');
const { cleanup } = require('../e2e/lib.js');
const { seedFleet, recommendation, hotPs } = require('./seed.js');
const { withBrowser, open, until, waitAttrs, confirmAndResult, httpStatusError } = require('./lib.js');

const ROWS = 'svg[data-testid=heatmap] g[data-testid=heatmap-row]';
const FIELDS = ['gomaxprocs', 'pool.workers', 'pool.steal_threshold', 'pool.steal_scope', 'gosched_every',
                'chunk_size', 'task_timeout_ms'];

let srv;
let fleet;

before(async () => {
    srv = await startServer();
    fleet = await seedFleet(srv);
});

after(async () => {
    if (srv)
        await srv.stop();
    await cleanup();
});

const enc = encodeURIComponent;

async function newestSample(id) {
    const j = assertJson(await srv.get(`/api/v1/agents/${enc(id)}/samples?limit=1`));
    assert.strictEqual(j.samples.length, 1, `${id} has samples`);
    return j.samples[0];
}

async function versions(id) {
    return assertJson(await srv.get(`/api/v1/agents/${enc(id)}/versions?limit=100`)).versions;
}

async function agent(id) {
    return assertJson(await srv.get(`/api/v1/agents/${enc(id)}`));
}

/* The config fields set in a config object, by the names the page uses. */
function fieldsOf(cfg) {
    const out = {};
    for (const f of FIELDS) {
        const [a, b] = f.split('.');
        const v = b ? (cfg[a] || {})[b] : cfg[a];
        if (v !== undefined)
            out[f] = v;
    }
    return out;
}

async function openAgent(page, id) {
    await open(page, srv, `#/agent/${id}`);
    await page.locator(`[data-testid=agent-page][data-agent="${id}"]`).waitFor();
}

/* Checks the heatmap of agent id: one row per P of the newest sample, the
 * hot Ps (neighbor_steal's hot_ps) and only they with class hot. */
async function checkHeatmap(page, id) {
    const procs = (await newestSample(id)).local_runq.length;
    const want = Array.from({ length: procs }, (_, i) => String(i));
    await waitAttrs(page, ROWS, 'data-p', want, `${id}: one heatmap row per P (${procs})`, { sorted: true });
    const hot = (hotPs(await recommendation(srv, id)) || []).map(String).sort();
    const marked = await page.locator(ROWS).evaluateAll((gs) =>
        gs.filter((g) => g.classList.contains('hot')).map((g) => g.getAttribute('data-p')).sort());
    assert.deepStrictEqual(marked, hot, `${id}: heatmap rows with class hot = neighbor_steal hot_ps`);
    assert.ok(await page.locator(`${ROWS} rect`).count() >= procs, `${id}: the rows hold rects`);
    return { procs, hot };
}

test('the heatmap draws one row per P and marks the hot Ps', async () => {
    await withBrowser('agent', async ({ page, shot }) => {
        // The live imbalance program: 2 Ps, the rule named its hot P(s).
        const id = fleet.steal.id;
        await openAgent(page, id);
        assert.match(await page.locator('[data-testid=agent-page]').innerText(), new RegExp(`\\b${id}\\b`));
        const { procs, hot } = await checkHeatmap(page, id);
        assert.strictEqual(procs, 2);
        assert.ok(hot.length > 0, 'neighbor_steal named hot Ps');

        // Reasons: one per rule that fired.
        const rec = await recommendation(srv, id);
        await waitAttrs(page, '[data-testid=reasons] [data-testid=reason]', 'data-rule',
            rec.reasons.map((r) => r.rule), `${id}: one reason per rule`, { sorted: true });
        for (const r of rec.reasons)
            assert.ok((await page.locator(`[data-testid=reason][data-rule="${r.rule}"]`).innerText()).trim().length > 0,
                `${id}: reason ${r.rule} has text`);

        // The config diff: one row per field in current or recommended,
        // class changed where they differ.
        const cur = fieldsOf(rec.current || {});
        const want = fieldsOf(rec.config || {});
        const names = [...new Set([...Object.keys(cur), ...Object.keys(want)])].sort();
        await waitAttrs(page, '[data-testid=config-diff] [data-field]', 'data-field', names,
            `${id}: config-diff rows`, { sorted: true });
        for (const f of names) {
            const changed = await page.locator(`[data-testid=config-diff] [data-field="${f}"]`)
                .evaluate((el) => el.classList.contains('changed'));
            assert.strictEqual(changed, cur[f] !== want[f], `${id}: config-diff ${f} changed class`);
        }
        await page.locator('svg[data-testid=latency-chart]').waitFor();
        await page.locator('svg[data-testid=gomaxprocs-chart]').waitFor();
        await page.locator('[data-testid=verdicts]').waitFor({ state: 'attached' });
        await page.locator('[data-testid=versions]').waitFor({ state: 'attached' });
        await page.locator('[data-testid=agent-events]').waitFor({ state: 'attached' });
        await shot('agent.png');

        // A captured 8-P schedtrace (tests/data/schedtrace), no latency data.
        await openAgent(page, 'search-a');
        const r8 = await checkHeatmap(page, 'search-a');
        assert.strictEqual(r8.procs, 8);
        await until('"no latency data" in the latency chart', async () =>
            /no latency data/i.test(await page.locator('svg[data-testid=latency-chart]').textContent()));
        await shot('agent-8p.png');
    });
});

test('applying the recommendation from the page makes the next version', async () => {
    const id = 'orders-b';
    await withBrowser('agent-apply', async ({ page, shot }) => {
        const before = await versions(id);
        const rec = await recommendation(srv, id);
        assert.ok(rec.changes, `${id} has something to apply: ${JSON.stringify(rec)}`);
        await openAgent(page, id);

        // Cancel first: nothing happens.
        await page.locator('button[data-testid=action-apply]').click();
        const dialog = page.locator('dialog[data-testid=confirm]');
        await dialog.waitFor({ state: 'visible' });
        await dialog.locator('button[data-testid=confirm-cancel]').click();
        await dialog.waitFor({ state: 'hidden' });
        assert.deepStrictEqual(await versions(id), before, 'cancel changes nothing');

        await page.locator('button[data-testid=action-apply]').click();
        const res = await confirmAndResult(page);
        assert.strictEqual(res.cls, 'ok', `result: ${res.text}`);
        const afterApply = await versions(id);
        assert.strictEqual(afterApply.length, before.length + 1, 'one new version');
        const v = afterApply[0];
        assert.strictEqual(v.version, (before[0] ? before[0].version : 0) + 1);
        assert.strictEqual(v.source, 'operator');
        assert.deepStrictEqual(v.config, rec.config, 'the new version is the recommendation');
        await page.locator(`[data-testid=versions] [data-version="${v.version}"]`).waitFor();
        await shot('agent-apply.png');
    });
});

test('switching mode works; an invalid override shows the 422 and changes nothing', async () => {
    const id = 'search-a';
    await withBrowser('agent-mode', async ({ page, shot, allow }) => {
        assert.strictEqual((await agent(id)).mode, 'recommend');
        await openAgent(page, id);
        await page.locator('select[data-testid=mode-select]').selectOption('pinned');
        await page.locator('button[data-testid=action-mode]').click();
        const res = await confirmAndResult(page);
        assert.strictEqual(res.cls, 'ok', `result: ${res.text}`);
        const a = await agent(id);
        assert.strictEqual(a.mode, 'pinned');
        assert.strictEqual(a.mode_source, 'agent');

        // The same request through the API gives the message the page must
        // show; a rejected request changes nothing, so asking is harmless.
        const before = await versions(id);
        const api = assertError(await srv.put(`/api/v1/agents/${id}/override`, { gomaxprocs: 5000 }),
            422, 'invalid', 'gomaxprocs');
        allow(httpStatusError(422));

        const form = page.locator('form[data-testid=override-form]');
        await form.locator('[name="gomaxprocs"]').fill('5000');
        await form.locator('button[data-testid=action-override]').click();
        const bad = await confirmAndResult(page);
        assert.strictEqual(bad.cls, 'error', `result: ${bad.text}`);
        assert.ok(bad.text.includes(api.message), `result "${bad.text}" includes "${api.message}"`);
        const fe = page.locator('[data-testid=field-error][data-field=gomaxprocs]');
        await fe.waitFor();
        assert.ok((await fe.innerText()).includes(api.message),
            `field-error for gomaxprocs "${await fe.innerText()}" includes "${api.message}"`);
        assert.deepStrictEqual(await versions(id), before, 'the rejected override made no version');
        assert.strictEqual((await agent(id)).mode, 'pinned');
        await shot('agent-override-error.png');
    });
});

test('every control on the agent page has a label', async () => {
    await withBrowser('agent-labels', async ({ page }) => {
        await openAgent(page, 'orders-a');
        await page.locator('form[data-testid=override-form]').waitFor();
        const unlabeled = await page.locator('[data-testid=agent-page]').evaluate((root) =>
            [...root.querySelectorAll('input, select, textarea, button')]
                .filter((el) => el.type !== 'hidden')
                .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') &&
                    !el.getAttribute('aria-labelledby') && !(el.tagName === 'BUTTON' && el.textContent.trim()))
                .map((el) => el.outerHTML.slice(0, 120)));
        assert.deepStrictEqual(unlabeled, [], 'controls without a label');
    });
});

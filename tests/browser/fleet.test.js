'use strict';
/*
 * The fleet page (#/): one row per agent with the right cells, text and
 * service filters, sorting, and paging through 2,000 agents.
 */
const assert = require('node:assert');
const { after, before, test } = require('node:test');

const { startServer, assertJson } = require('../http/lib.js');
const { cleanup } = require('../e2e/lib.js');
const { seedFleet, seedMany, recommendation } = require('./seed.js');
const { PHONE, DESKTOP, withBrowser, open, until, attrs, waitAttrs } = require('./lib.js');

const ROWS = 'tr[data-testid=fleet-row]';
const MANY = 2000;
const FIRST_RENDER_BOUND_MS = 15000;

let srv;
let fleet;          // { agents (API objects), steal }
const expected = {};  // id → { service, host, mode, applied, recommended, differs, latency, desired, appliedVersion }

before(async () => {
    srv = await startServer();
    fleet = await seedFleet(srv);
    for (const a of fleet.agents) {
        const rec = await recommendation(srv, a.id);
        const applied = a.latest ? a.latest.gomaxprocs : null;
        const recommended = rec.config.gomaxprocs ?? applied;
        const p99 = a.latest && a.latest.sched_latency_us ? a.latest.sched_latency_us.p99 : null;
        expected[a.id] = { service: a.service, host: a.hostname, mode: a.mode, applied, recommended,
                           differs: applied !== recommended, latency: p99 != null,
                           hasRunq: a.latest && a.latest.local_runq_total != null,
                           desired: a.desired_version, appliedVersion: a.applied_version };
    }
    // The seed must give both kinds of gomaxprocs cell, or the test would
    // check less than it says.
    const kinds = new Set(Object.values(expected).map((e) => e.differs));
    assert.deepStrictEqual([...kinds].sort(), [false, true], `seeded agents: ${JSON.stringify(expected)}`);
});

after(async () => {
    if (srv)
        await srv.stop();
    await cleanup();
});

function ids(filter = () => true) {
    return Object.keys(expected).filter((id) => filter(expected[id])).sort();
}

/* The text of td[data-col=col] of the row of agent id. */
function cell(page, id, col) {
    return page.locator(`${ROWS}[data-agent="${id}"] td[data-col=${col}]`);
}

test('the fleet lists every seeded agent with the right cells', async () => {
    await withBrowser('fleet', async ({ page, shot }) => {
        await open(page, srv, '#/');
        await page.locator('table[data-testid=fleet-table]').waitFor();
        await waitAttrs(page, ROWS, 'data-agent', ids(), 'one fleet-row per agent', { sorted: true });
        await page.locator('[data-testid=status].online').waitFor();
        for (const href of ['#/', '#/policy', '#/events'])
            assert.strictEqual(await page.locator(`nav[data-testid=nav] a[href="${href}"]`).count(), 1,
                `nav link ${href}`);
        assert.match(await page.locator('[data-testid=fleet-count]').innerText(),
            new RegExp(`\\b${ids().length} agents?\\b`), 'fleet-count');

        for (const id of ids()) {
            const e = expected[id];
            const row = page.locator(`${ROWS}[data-agent="${id}"]`);
            assert.strictEqual((await cell(page, id, 'service').innerText()).trim(), e.service, `${id}: service`);
            assert.strictEqual((await cell(page, id, 'host').innerText()).trim(), e.host, `${id}: host`);
            assert.match(await cell(page, id, 'agent').innerText(), new RegExp(`\\b${id}\\b`), `${id}: agent cell`);
            assert.strictEqual(await cell(page, id, 'agent').locator(`a[href="#/agent/${id}"]`).count(), 1,
                `${id}: the agent cell links to #/agent/${id}`);
            assert.match(await cell(page, id, 'mode').innerText(), new RegExp(`\\b${e.mode}\\b`), `${id}: mode`);

            const g = cell(page, id, 'gomaxprocs');
            const gText = (await g.innerText()).trim();
            const differs = await g.evaluate((el) => el.classList.contains('differs'));
            assert.strictEqual(differs, e.differs,
                `${id}: gomaxprocs cell "${gText}" class differs (runs ${e.applied}, recommended ${e.recommended})`);
            if (e.differs)
                assert.match(gText, new RegExp(`^\\D*${e.applied}\\D+${e.recommended}\\D*$`),
                    `${id}: gomaxprocs shows applied → recommended`);
            else
                assert.match(gText, new RegExp(`\\b${e.applied}\\b`), `${id}: gomaxprocs shows ${e.applied}`);

            const lat = (await cell(page, id, 'latency').innerText()).trim();
            if (e.latency)
                assert.match(lat, /\d/, `${id}: latency p99 is a number`);
            else
                assert.strictEqual(lat, '—', `${id}: no latency data`);
            assert.match(await cell(page, id, 'imbalance').innerText(), /\d/, `${id}: imbalance is a number`);
            if (e.hasRunq)
                assert.strictEqual(await cell(page, id, 'runq').locator('svg[data-testid=sparkline]').count(), 1,
                    `${id}: run-queue sparkline`);
            assert.match((await cell(page, id, 'version').innerText()).trim(),
                new RegExp(`^${e.appliedVersion}\\s*/\\s*${e.desired}$`), `${id}: version applied/desired`);
            assert.ok((await cell(page, id, 'last-seen').innerText()).trim().length > 0, `${id}: last-seen`);
            assert.strictEqual(await row.evaluate((el) => el.classList.contains('stale')), false,
                `${id}: a fresh agent is not stale`);
        }
        await shot('fleet.png');
        await page.setViewportSize(PHONE);
        await shot('fleet-phone.png');
        await page.setViewportSize(DESKTOP);
    });
});

test('the fleet filters by text and by service', async () => {
    await withBrowser('fleet-filter', async ({ page, shot }) => {
        await open(page, srv, '#/');
        await waitAttrs(page, ROWS, 'data-agent', ids(), 'every agent before filtering', { sorted: true });
        const filter = page.locator('input[data-testid=fleet-filter]');
        const service = page.locator('select[data-testid=fleet-service]');

        // By host, by id/service, by a part of an id.
        await filter.fill('zone-b');
        await waitAttrs(page, ROWS, 'data-agent', ids((e) => e.host.includes('zone-b')),
            'filter "zone-b" (a host)', { sorted: true });
        await filter.fill('orders');
        await waitAttrs(page, ROWS, 'data-agent', ids((e) => e.service === 'orders'),
            'filter "orders" (service and ids)', { sorted: true });
        await shot('fleet-filter.png');
        await filter.fill('steal');
        await waitAttrs(page, ROWS, 'data-agent', ids().filter((id) => id.includes('steal')),
            'filter "steal" (ids and service)', { sorted: true });
        await filter.fill('');
        await waitAttrs(page, ROWS, 'data-agent', ids(), 'every agent after clearing the filter', { sorted: true });

        // The service select: "" is all, then one service.
        const options = await attrs(page, 'select[data-testid=fleet-service] option', 'value');
        assert.ok(options.includes(''), `fleet-service has an "all" option: ${JSON.stringify(options)}`);
        assert.ok(options.includes('search'), `fleet-service offers the seeded services: ${JSON.stringify(options)}`);
        await service.selectOption('search');
        await waitAttrs(page, ROWS, 'data-agent', ids((e) => e.service === 'search'),
            'service "search"', { sorted: true });
        assert.match(await page.locator('[data-testid=fleet-count]').innerText(), /\b2 agents\b/);
        // Both filters at once.
        await filter.fill('node-5');
        await waitAttrs(page, ROWS, 'data-agent', ids((e) => e.service === 'search' && e.host === 'node-5'),
            'service "search" and text "node-5"', { sorted: true });
        await filter.fill('');
        await service.selectOption('');
        await waitAttrs(page, ROWS, 'data-agent', ids(), 'every agent again', { sorted: true });
    });
});

test('sorting by a column reorders the rows', async () => {
    await withBrowser('fleet-sort', async ({ page, shot }) => {
        await open(page, srv, '#/');
        await waitAttrs(page, ROWS, 'data-agent', ids(), 'every agent', { sorted: true });
        const asc = ids();
        const desc = [...asc].reverse();
        const th = page.locator('th:has(button[data-sort=agent])');

        await page.locator('th button[data-sort=agent]').click();
        let dir = await until('th[aria-sort] on the agent column', () => th.getAttribute('aria-sort'));
        assert.ok(['ascending', 'descending'].includes(dir), `aria-sort=${dir}`);
        await waitAttrs(page, ROWS, 'data-agent', dir === 'ascending' ? asc : desc, `rows by agent, ${dir}`);
        await page.locator('th button[data-sort=agent]').click();
        const flipped = dir === 'ascending' ? 'descending' : 'ascending';
        await until(`aria-sort=${flipped} after a second click`, async () => (await th.getAttribute('aria-sort')) === flipped);
        await waitAttrs(page, ROWS, 'data-agent', flipped === 'ascending' ? asc : desc, `rows by agent, ${flipped}`);

        // Another column: by service (ties in any order, so compare the services).
        const sth = page.locator('th:has(button[data-sort=service])');
        await page.locator('th button[data-sort=service]').click();
        dir = await until('th[aria-sort] on the service column', () => sth.getAttribute('aria-sort'));
        assert.ok(['ascending', 'descending'].includes(dir), `aria-sort=${dir}`);
        const services = Object.values(expected).map((e) => e.service).sort();
        if (dir === 'descending')
            services.reverse();
        await until(`services ${dir}: ${services}`, async () => {
            const order = await attrs(page, ROWS, 'data-agent');
            return JSON.stringify(order.map((id) => expected[id].service)) === JSON.stringify(services);
        });
        await shot('fleet-sorted.png');
    });
});

test(`the fleet pages through ${MANY.toLocaleString('en-US')} agents`, async () => {
    const big = await startServer();
    try {
        const seedMs = await seedMany(big, MANY);
        const list = assertJson(await big.get('/api/v1/agents?limit=1000'));
        assert.strictEqual(list.agents.length, 1000);
        process.stdout.write(`seeded ${MANY} agents in ${seedMs} ms\n`);
        await withBrowser('fleet-2000', async ({ page, shot }) => {
            const t0 = Date.now();
            await open(page, big, '#/');
            await page.locator(`${ROWS}`).nth(49).waitFor({ timeout: FIRST_RENDER_BOUND_MS });
            const firstRows = Date.now() - t0;
            await until('fleet-count "2,000 agents"', async () =>
                /\b2,000 agents\b/.test(await page.locator('[data-testid=fleet-count]').innerText()),
                FIRST_RENDER_BOUND_MS);
            const counted = Date.now() - t0;
            process.stdout.write(`${MANY} agents: first 50 rows after ${firstRows} ms, ` +
                                 `count "2,000 agents" after ${counted} ms (bound ${FIRST_RENDER_BOUND_MS} ms)\n`);
            assert.ok(counted < FIRST_RENDER_BOUND_MS);
            assert.strictEqual(await page.locator(ROWS).count(), 50, '50 rows per page');
            assert.match(await page.locator('[data-testid=fleet-page]').innerText(), /^\s*1\s*\/\s*40\s*$/);
            await shot('fleet-2000.png');

            const page1 = await attrs(page, ROWS, 'data-agent');
            await page.locator('button[data-testid=fleet-next]').click();
            await until('page 2 / 40', async () =>
                /^\s*2\s*\/\s*40\s*$/.test(await page.locator('[data-testid=fleet-page]').innerText()));
            await until('50 other rows on page 2', async () => {
                const p2 = await attrs(page, ROWS, 'data-agent');
                return p2.length === 50 && p2.every((id) => !page1.includes(id));
            });
            await page.locator('button[data-testid=fleet-prev]').click();
            await until('page 1 / 40 again', async () =>
                /^\s*1\s*\/\s*40\s*$/.test(await page.locator('[data-testid=fleet-page]').innerText()));

            // The filter counts what it matches across all pages.
            await page.locator('input[data-testid=fleet-filter]').fill('fleet-19');
            await until('fleet-count "100 agents" for fleet-19', async () =>
                /\b100 agents\b/.test(await page.locator('[data-testid=fleet-count]').innerText()));
            await until('fleet-page 1 / 2', async () =>
                /^\s*1\s*\/\s*2\s*$/.test(await page.locator('[data-testid=fleet-page]').innerText()));
            const rows = await attrs(page, ROWS, 'data-agent');
            assert.strictEqual(rows.length, 50);
            assert.ok(rows.every((id) => id.startsWith('fleet-19')), `rows: ${rows}`);
        });
    } finally {
        await big.stop();
    }
});

test('the dashboard loads with no console error at all, favicon included', async () => {
    await withBrowser('favicon', async ({ page }) => {
        await open(page, srv, '#/');
        await page.locator('tr[data-testid=fleet-row]').first().waitFor();
        // Let the browser's own favicon request finish.
        await page.waitForLoadState('networkidle').catch(() => {});
    }, { strictFavicon: true });
});

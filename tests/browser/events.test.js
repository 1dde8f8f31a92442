'use strict';
/*
 * The events page (#/events): the audit log, newest first, filtered by
 * kind and by agent.
 */
const assert = require('node:assert');
const { after, before, test } = require('node:test');

const { startServer, assertJson } = require('../http/lib.js');
const { cleanup } = require('../e2e/lib.js');
const { seedFleet } = require('./seed.js');
const { withBrowser, open, until, attrs } = require('./lib.js');

const ROWS = 'table[data-testid=events-table] tr[data-testid=event-row]';

let srv;
let events;        // the API's, newest first

before(async () => {
    srv = await startServer();
    await seedFleet(srv);
    events = assertJson(await srv.get('/api/v1/events?limit=1000')).events.reverse();
    assert.ok(events.length > 5 && events.length < 100, `seeded events: ${events.length}`);
});

after(async () => {
    if (srv)
        await srv.stop();
    await cleanup();
});

/* [kind, agent] of every row, in order. */
async function rows(page) {
    const kinds = await attrs(page, ROWS, 'data-kind');
    const agents = await attrs(page, ROWS, 'data-agent');
    return kinds.map((k, i) => [k, agents[i]]);
}

/* Waits until the rows are exactly the API events that pass keep, newest first. */
async function waitRows(page, keep, what) {
    const want = events.filter(keep).map((e) => [e.kind, e.agent]);
    let got;
    try {
        await until(what, async () => {
            got = await rows(page);
            return got.length === want.length &&
                got.every(([k, a], i) => k === want[i][0] && (want[i][1] == null || a === want[i][1]));
        });
    } catch (e) {
        assert.deepStrictEqual(got, want, `${what}: rows [kind, agent], newest first`);
        throw e;
    }
}

test('the events page lists the log newest first and filters by kind and agent', async () => {
    await withBrowser('events', async ({ page, shot }) => {
        await open(page, srv, '#/events');
        await page.locator('table[data-testid=events-table]').waitFor();
        await waitRows(page, () => true, 'every event, newest first');
        await shot('events.png');

        const kinds = await attrs(page, 'select[data-testid=events-kind] option', 'value');
        assert.ok(kinds.includes(''), `events-kind has an "all" option: ${JSON.stringify(kinds)}`);
        const kind = page.locator('select[data-testid=events-kind]');
        await kind.selectOption('mode_change');
        await waitRows(page, (e) => e.kind === 'mode_change', 'kind mode_change');
        await kind.selectOption('config_version');
        await waitRows(page, (e) => e.kind === 'config_version', 'kind config_version');
        await shot('events-kind.png');

        const agent = page.locator('input[data-testid=events-agent]');
        await agent.fill('orders-a');
        await waitRows(page, (e) => e.kind === 'config_version' && e.agent === 'orders-a',
            'kind config_version, agent orders-a');
        await kind.selectOption('');
        await waitRows(page, (e) => e.agent === 'orders-a', 'agent orders-a, every kind');
        await agent.fill('');
        await waitRows(page, () => true, 'every event again');
    });
});

'use strict';
/*
 * Keyboard only: from the fleet to an agent and an action without the
 * mouse. Tab reaches the filter, the filter narrows the rows, Tab reaches
 * the agent's link and Enter opens its page; there Tab reaches "Apply",
 * Enter opens the confirmation with the focus inside it, Escape cancels
 * (nothing changes), and Enter on the confirm button applies (checked
 * through the API).
 */
const assert = require('node:assert');
const { after, before, test } = require('node:test');

const { startServer, assertJson } = require('../http/lib.js');
const { cleanup } = require('../e2e/lib.js');
const { seedFleet } = require('./seed.js');
const { withBrowser, open, until } = require('./lib.js');

const MAX_TABS = 60;

let srv;

before(async () => {
    srv = await startServer();
    await seedFleet(srv);
});

after(async () => {
    if (srv)
        await srv.stop();
    await cleanup();
});

/* Presses Tab until the focused element matches selector; fails after
 * MAX_TABS presses. */
async function tabTo(page, selector) {
    for (let i = 0; i < MAX_TABS; i++) {
        await page.keyboard.press('Tab');
        if (await page.evaluate((s) => document.activeElement && document.activeElement.matches(s), selector))
            return i + 1;
    }
    const at = await page.evaluate(() => document.activeElement && document.activeElement.outerHTML.slice(0, 120));
    assert.fail(`${MAX_TABS} Tab presses never reached ${selector} (focus ends on ${at})`);
}

async function versions(id) {
    return assertJson(await srv.get(`/api/v1/agents/${id}/versions?limit=100`)).versions;
}

test('keyboard only: filter, open an agent, cancel and confirm an action', async () => {
    await withBrowser('keyboard', async ({ page }) => {
        await open(page, srv, '#/');
        await page.locator('tr[data-testid=fleet-row]').first().waitFor();
        await tabTo(page, 'input[data-testid=fleet-filter]');
        await page.keyboard.type('search-a');
        await until('the filter to leave one row', async () =>
            (await page.locator('tr[data-testid=fleet-row]').count()) === 1);
        await tabTo(page, 'a[href="#/agent/search-a"]');
        await page.keyboard.press('Enter');
        await page.locator('[data-testid=agent-page][data-agent="search-a"]').waitFor();
        assert.equal(new URL(page.url()).hash, '#/agent/search-a');

        const before = await versions('search-a');
        await tabTo(page, 'button[data-testid=action-apply]');
        await page.keyboard.press('Enter');
        const dialog = page.locator('dialog[data-testid=confirm]');
        await dialog.waitFor({ state: 'visible' });
        assert.ok(await dialog.evaluate((d) => d.contains(document.activeElement)),
            'the focus moves into the confirmation');
        await page.keyboard.press('Escape');
        await dialog.waitFor({ state: 'hidden' });
        assert.deepStrictEqual(await versions('search-a'), before, 'Escape changed nothing');

        await tabTo(page, 'button[data-testid=action-apply]');
        await page.keyboard.press('Enter');
        await dialog.waitFor({ state: 'visible' });
        for (let i = 0; i < 5 && !(await page.evaluate(() => document.activeElement.matches('[data-testid=confirm-ok]'))); i++)
            await page.keyboard.press('Tab');
        assert.ok(await page.evaluate(() => document.activeElement.matches('[data-testid=confirm-ok]')),
            'Tab reaches the confirm button inside the dialog');
        await page.keyboard.press('Enter');
        await page.locator('[data-testid=result].ok').waitFor();
        const after = await versions('search-a');
        assert.equal(after.length, before.length + 1, 'Enter on confirm applied a new version');
        assert.equal(after[0].source, 'operator');
    });
});

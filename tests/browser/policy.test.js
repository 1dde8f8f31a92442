'use strict';
/*
 * The policy page (#/policy, #/policy/<service>): the form shows the stored
 * policy, a save goes through the API and survives a reload; a service
 * form leaves what it does not set to the global policy.
 */
const assert = require('node:assert');
const { after, before, test } = require('node:test');

const { startServer, assertJson, mergePolicy, servicePatch } = require('../http/lib.js');
const { cleanup } = require('../e2e/lib.js');
const { seedFleet } = require('./seed.js');
const { withBrowser, open, until, confirmAndResult, httpStatusError } = require('./lib.js');

/* A service without a policy of its own is a 404 by the API's design
 * (docs/api.md), and the browser logs every 404 it fetches as a console
 * error: the page cannot avoid that one, so the tests that open such a
 * service allow exactly it. */
const NO_SERVICE_POLICY = /status of 404\b.*\/api\/v1\/services\/[^/]+\/policy:/;

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

async function globalPolicy() {
    return assertJson(await srv.get('/api/v1/policy'));
}

async function openPolicy(page, service) {
    await open(page, srv, service ? `#/policy/${service}` : '#/policy');
    await page.locator('[data-testid=policy-page]').waitFor();
    await until(`policy-scope = "${service || ''}"`, async () =>
        (await page.locator('select[data-testid=policy-scope]').inputValue()) === (service || ''));
}

function input(page, name) {
    return page.locator(`[data-testid=policy-page] [name="${name}"]`);
}

/* Waits until the form's input name shows value (the form fills itself
 * from the API after the page appears). */
async function waitValue(page, name, value) {
    let last;
    await until(`input ${name} = "${value}" (last "${last}")`, async () => {
        last = await input(page, name).inputValue();
        return last === value;
    });
}

test('a service policy edit round-trips through the API and a reload', async () => {
    await withBrowser('policy-service', async ({ page, shot, allow }) => {
        allow(NO_SERVICE_POLICY);
        const global = await globalPolicy();

        // What the seed stored for steal-demo shows; the rest is empty
        // (= inherit the global value).
        await openPolicy(page, 'steal-demo');
        await waitValue(page, 'neighbor_steal.window', '20');
        assert.strictEqual(await input(page, 'quota.min_procs').inputValue(), '',
            'a field the service does not set is empty');

        await openPolicy(page, 'orders');
        await waitValue(page, 'quota.min_procs', '');
        await input(page, 'quota.min_procs').fill('3');
        await page.locator('button[data-testid=policy-save]').click();
        const res = await confirmAndResult(page);
        assert.strictEqual(res.cls, 'ok', `result: ${res.text}`);
        const saved = servicePatch(assertJson(await srv.get('/api/v1/services/orders/policy')), 'orders');
        assert.strictEqual(saved.quota && saved.quota.min_procs, 3, `saved: ${JSON.stringify(saved)}`);
        // Nothing else changed in effect: every other field the form may
        // have sent equals the global value.
        assert.deepStrictEqual(mergePolicy(global, saved), mergePolicy(global, { quota: { min_procs: 3 } }),
            `the service policy overrides only quota.min_procs in effect: ${JSON.stringify(saved)}`);

        await page.reload({ waitUntil: 'load' });
        await page.locator('[data-testid=policy-page]').waitFor();
        await waitValue(page, 'quota.min_procs', '3');
        await shot('policy-service.png');
    });
});

test('the global policy edit round-trips through the API and a reload', async () => {
    await withBrowser('policy', async ({ page, shot, allow }) => {
        allow(NO_SERVICE_POLICY);
        const before = await globalPolicy();
        const want = before.quota.min_procs === 4 ? 5 : 4;
        await openPolicy(page, '');
        await waitValue(page, 'quota.min_procs', String(before.quota.min_procs));
        await waitValue(page, 'neighbor_steal.window', String(before.neighbor_steal.window));
        assert.strictEqual(await input(page, 'even.enabled').isChecked(), before.even.enabled);
        assert.strictEqual(await input(page, 'mode.default').inputValue(), before.mode.default);

        await input(page, 'quota.min_procs').fill(String(want));
        await page.locator('button[data-testid=policy-save]').click();
        const res = await confirmAndResult(page);
        assert.strictEqual(res.cls, 'ok', `result: ${res.text}`);
        const afterSave = await globalPolicy();
        assert.deepStrictEqual(afterSave, mergePolicy(before, { quota: { min_procs: want } }),
            'only quota.min_procs changed');

        await page.reload({ waitUntil: 'load' });
        await page.locator('[data-testid=policy-page]').waitFor();
        await waitValue(page, 'quota.min_procs', String(want));
        await shot('policy.png');

        // The service's own value still shows on its page.
        await openPolicy(page, 'orders');
        await waitValue(page, 'quota.min_procs', '3');
    });
});

test('an invalid policy value shows the API error; reset removes a service policy', async () => {
    await withBrowser('policy-reset', async ({ page, allow }) => {
        const before = await globalPolicy();
        allow(httpStatusError(422));
        allow(NO_SERVICE_POLICY);
        await openPolicy(page, '');
        await waitValue(page, 'verify.window', String(before.verify.window));
        await input(page, 'verify.window').fill('500');
        await page.locator('button[data-testid=policy-save]').click();
        const bad = await confirmAndResult(page);
        assert.strictEqual(bad.cls, 'error', `result: ${bad.text}`);
        assert.deepStrictEqual(await globalPolicy(), before, 'a rejected save changes nothing');

        assertJson(await srv.get('/api/v1/services/orders/policy'));
        await openPolicy(page, 'orders');
        await waitValue(page, 'quota.min_procs', '3');
        await page.locator('button[data-testid=policy-reset]').click();
        const res = await confirmAndResult(page);
        assert.strictEqual(res.cls, 'ok', `result: ${res.text}`);
        assert.strictEqual((await srv.get('/api/v1/services/orders/policy')).status, 404,
            'after reset the service has no policy of its own');
        await waitValue(page, 'quota.min_procs', '');
    });
});

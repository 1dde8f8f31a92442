'use strict';
/*
 * The dashboard with access control on (gotuned --auth-file): a 401 shows
 * the token form, a wrong token says so, the viewer's token shows the fleet
 * (kept in sessionStorage only), and an action the viewer may not take
 * shows the API's 403 message.
 */
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, test } = require('node:test');

const { startServer, assertJson, batch, sample } = require('../http/lib.js');
const { withBrowser, open, until, confirmAndResult, httpStatusError } = require('./lib.js');

const ADMIN = 'admin-token-browser-0123456789';
const VIEWER = 'viewer-token-browser-0123456789';
const IDS = ['auth-web-1', 'auth-web-2'];

let srv;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gotuned-browser-auth-'));

before(async () => {
    const file = path.join(tmp, 'tokens');
    fs.writeFileSync(file, `${ADMIN} admin ops\n${VIEWER} viewer grafana\n`, { mode: 0o600 });
    fs.chmodSync(file, 0o600);
    srv = await startServer({ args: ['--auth-file', file] });
    for (const id of IDS) {
        const res = await srv.post('/api/v1/telemetry',
            batch(id, { service: 'web', cpu_limit: 4 }, [sample([1, 0, 2, 1])]),
            { headers: { Authorization: `Bearer ${ADMIN}` } });
        assertJson(res);
    }
});

after(async () => {
    if (srv)
        await srv.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
});

test('auth: token form on 401, a wrong token is refused, the viewer sees the fleet and gets 403 on apply',
    async () => {
        await withBrowser('auth', async ({ page, allow }) => {
            allow(httpStatusError(401));
            allow(httpStatusError(403));
            await open(page, srv, '#/');
            const form = page.locator('form[data-testid=token-form]');
            await form.waitFor({ state: 'visible' });
            const input = form.locator('[data-testid=token-input]');
            // Labelled, and focused: the keyboard alone gets through.
            assert.equal(await page.locator('label[for=token-input]').innerText(), 'Access token');
            await until('the token input has the focus',
                () => page.evaluate(() => document.activeElement?.dataset.testid === 'token-input'));

            await page.keyboard.type('not-the-right-token-0123456789');
            await page.keyboard.press('Enter');
            const error = form.locator('[data-testid=token-error]');
            await until('the token error names the refusal', async () =>
                /did not accept this token/.test(await error.innerText()));
            assert.match(await error.innerText(), /not known/);
            assert.equal(await input.getAttribute('aria-invalid'), 'true');
            assert.ok(await form.isVisible(), 'the form stays up after a wrong token');

            await input.fill(VIEWER);
            await form.locator('[data-testid=token-submit]').click();
            await form.waitFor({ state: 'hidden' });
            for (const id of IDS)
                await page.locator(`[data-testid=fleet-row][data-agent="${id}"]`).waitFor();
            const stored = await page.evaluate(() => ({
                session: sessionStorage.getItem('gotuned.token'), local: localStorage.length,
            }));
            assert.deepStrictEqual(stored, { session: VIEWER, local: 0 }, 'the token lives in sessionStorage only');

            await open(page, srv, `#/agent/${IDS[0]}`);
            await page.locator(`[data-testid=agent-page][data-agent="${IDS[0]}"]`).waitFor();
            assert.ok(!(await form.isVisible()), 'a reload in the same tab keeps the token');
            await page.locator('[data-testid=action-apply]').click();
            const r = await confirmAndResult(page);
            assert.equal(r.cls, 'error', r.text);
            assert.match(r.text, /HTTP 403, forbidden/);
            assert.match(r.text, /viewer token 'grafana' may only read/);
        });
    });

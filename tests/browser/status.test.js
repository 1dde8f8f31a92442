'use strict';
/*
 * The live status: online while the API answers, "Server unreachable"
 * (class offline) within ~15 s of the server going away.
 */
const assert = require('node:assert');
const { after, before, test } = require('node:test');

const { startServer } = require('../http/lib.js');
const { push, jsonSamples } = require('./seed.js');
const { NET_REFUSED, withBrowser, open, until } = require('./lib.js');

const OFFLINE_WITHIN_MS = 15000;
let srv;

before(async () => {
    srv = await startServer();
    for (const [id, service] of [['api-1', 'api'], ['api-2', 'api'], ['media-1', 'media']])
        await push(srv, { agent: { id, service, hostname: `host-${id}`, num_cpu: 4, affinity: 4, cpu_limit: 2 },
                          samples: jsonSamples(4, 10, { latency: true }) });
});

after(async () => {
    if (srv)
        await srv.stop();
});

test('the status turns offline with "Server unreachable" when the server stops', async () => {
    await withBrowser('offline', async ({ page, shot, allow }) => {
        await open(page, srv, '#/');
        const status = page.locator('[data-testid=status]');
        await page.locator('[data-testid=status].online').waitFor();
        await page.locator('tr[data-testid=fleet-row]').first().waitFor();

        // From here on, refused connections are what the test wants.
        allow(NET_REFUSED);
        const t0 = Date.now();
        const stopped = await srv.stop();
        assert.strictEqual(stopped.forced, false, 'the server stopped on SIGTERM');
        await until('[data-testid=status] offline with "Server unreachable"', async () =>
            (await status.evaluate((el) => el.classList.contains('offline') && !el.classList.contains('online'))) &&
            /Server unreachable/.test(await status.innerText()), OFFLINE_WITHIN_MS, 250);
        process.stdout.write(`status offline ${Date.now() - t0} ms after the server stopped\n`);
        await shot('offline.png');
    });
});

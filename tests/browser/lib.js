'use strict';
/*
 * Helpers for the browser tests of the dashboard (web/, served by the real
 * gotuned binary) written against its DOM contract. Debian's Chromium
 * (/usr/bin/chromium, or GOTUNED_CHROMIUM) is driven by playwright-core;
 * no browser is ever downloaded. Each test launches its own browser with a
 * fresh user-data-dir, which is removed again afterwards.
 *
 * Rules kept here: every wait is bounded (playwright's timeouts are set to
 * WAIT_MS); the only processes signalled are the ones started here (the
 * browser, by playwright, through its own handle) or by tests/http/lib.js;
 * a failing test prints the browser's console errors and the page's text.
 *
 * Elements are selected only through what the DOM contract names:
 * data-testid, data-* attributes, classes it lists, form field names.
 */
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { chromium } = require('playwright-core');
const { waitFor } = require('../e2e/lib.js');

const WAIT_MS = 10000;           // every playwright wait (locators, navigation)
const CHROMIUM = process.env.GOTUNED_CHROMIUM || '/usr/bin/chromium';
const SHOTS = process.env.GOTUNED_SCREENSHOTS ||
    path.join(__dirname, '..', '..', 'build', 'screenshots');
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
              '--disable-component-update', '--disable-sync', '--no-first-run'];
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/*
 * Console messages that are not the page's fault when a test expects them:
 * the browser logs every 4xx/5xx answer and every refused connection as a
 * console error ("Failed to load resource: ..."). A test that provokes one
 * (a 422, the server being stopped) lists it; anything else fails the test.
 * CSP violations ("Refused to ...") are never allowed.
 */
const NET_REFUSED = /^Failed to load resource: net::ERR_(CONNECTION_REFUSED|CONNECTION_RESET|EMPTY_RESPONSE|CONNECTION_CLOSED)|^TypeError: Failed to fetch|Failed to fetch/;
/* The browser asks for /favicon.ico by itself; a missing one is reported by
 * the test that looks for it (fleet.test.js), not by every test. */
const FAVICON_404 = /favicon\.ico/;
function isFavicon404(m) {
    const loc = m.location();
    return /status of 404/.test(m.text()) && FAVICON_404.test(loc && loc.url || '');
}
function httpStatusError(status) {
    return new RegExp(`^Failed to load resource: the server responded with a status of ${status}\\b`);
}

/*
 * Runs fn({ page, ctx, problems, allow, shot }) in a fresh browser.
 *   name:   base name for the screenshot on failure (name-failed.png)
 *   opts.viewport: defaults to 1280×800.
 *   opts.strictFavicon: a 404 for /favicon.ico counts as an error too
 *     (otherwise only the test that asks for this checks it).
 * After fn, asserts there were no page errors, no console errors and no
 * CSP violations except the ones allowed by a regexp passed to allow()
 * (matched against the message followed by " (<url>:<line>)").
 * On failure prints the console errors, page errors and the page's text.
 */
async function withBrowser(name, fn, opts = {}) {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (make deps)`);
    const userDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gotuned-chromium-'));
    let ctx;
    const problems = { console: [], pageErrors: [], allowed: [] };
    const allowList = [];
    let page;
    try {
        ctx = await chromium.launchPersistentContext(userDir, {
            executablePath: CHROMIUM, headless: true, args: ARGS,
            viewport: opts.viewport || DESKTOP, timeout: 30000,
            // The tests talk to 127.0.0.1 only; nothing may go elsewhere.
            offline: false,
        });
        ctx.setDefaultTimeout(WAIT_MS);
        ctx.setDefaultNavigationTimeout(WAIT_MS);
        // Records CSP violations in the page too (scripts added this way
        // run before the page's own and are not subject to its CSP).
        await ctx.addInitScript(() => {
            window.__cspViolations = [];
            document.addEventListener('securitypolicyviolation', (e) => {
                window.__cspViolations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile || ''}:${e.lineNumber || ''}`);
            });
        });
        page = ctx.pages()[0] || await ctx.newPage();
        page.setDefaultTimeout(WAIT_MS);
        page.on('console', (m) => {
            if (m.type() !== 'error')
                return;
            const loc = m.location();
            const text = `${m.text()}${loc && loc.url ? ` (${loc.url}:${loc.lineNumber})` : ''}`;
            if (!opts.strictFavicon && isFavicon404(m))
                problems.allowed.push(text);
            else if (allowList.some((re) => re.test(text)))
                problems.allowed.push(text);
            else
                problems.console.push(text);
        });
        page.on('pageerror', (e) => problems.pageErrors.push(String(e && e.stack || e)));

        const helpers = {
            page, ctx, problems,
            allow: (re) => allowList.push(re),
            shot: (file, o) => screenshot(page, file, o),
        };
        await fn(helpers);

        const csp = await page.evaluate(() => window.__cspViolations || []).catch(() => []);
        assert.deepStrictEqual(csp, [], 'the page caused CSP violations');
        assert.deepStrictEqual(problems.pageErrors, [], 'the page threw uncaught errors');
        assert.deepStrictEqual(problems.console, [], 'the page logged console errors');
    } catch (e) {
        await report(name, page, problems);
        throw e;
    } finally {
        if (ctx)
            await ctx.close().catch(() => {});
        fs.rmSync(userDir, { recursive: true, force: true });
    }
}

/* What a failed test prints: console errors, page errors, CSP violations,
 * the URL and the page's text; and a screenshot <name>-failed.png. */
async function report(name, page, problems) {
    let text = '(no page)';
    let url = '';
    let csp = [];
    if (page && !page.isClosed()) {
        url = page.url();
        text = await page.evaluate(() => document.body ? document.body.innerText : '(no body)')
            .catch((e) => `(could not read the page: ${e.message})`);
        csp = await page.evaluate(() => window.__cspViolations || []).catch(() => []);
        await screenshot(page, `${name}-failed.png`).catch(() => {});
    }
    const list = (a) => (a.length ? a.map((x) => `  ${x}`).join('\n') : '  (none)');
    process.stderr.write(`\n----- browser state after the failure of ${name} -----\n` +
        `url: ${url}\n` +
        `console errors:\n${list(problems.console)}\n` +
        `console errors that were expected:\n${list(problems.allowed)}\n` +
        `page errors:\n${list(problems.pageErrors)}\n` +
        `CSP violations:\n${list(csp)}\n` +
        `page text:\n${String(text).slice(0, 6000)}\n` +
        '----- end of browser state -----\n');
}

async function screenshot(page, file, o = {}) {
    fs.mkdirSync(SHOTS, { recursive: true });
    const p = path.join(SHOTS, file);
    await page.screenshot({ path: p, fullPage: o.fullPage !== false, timeout: WAIT_MS });
    return p;
}

/* Opens the dashboard at a hash route ("#/", "#/agent/x", ...). */
async function open(page, srv, hash = '#/') {
    await page.goto(`${srv.base}/${hash}`, { waitUntil: 'load' });
}

/* Polls fn (async) until it returns a truthy value (tests/e2e/lib.js's
 * waitFor, with the browser tests' default timeout). */
function until(what, fn, timeoutMs = WAIT_MS, intervalMs = 100) {
    return waitFor(what, fn, timeoutMs, intervalMs);
}

/* The values of attribute attr of every element matching selector, in
 * document order. */
function attrs(page, selector, attr) {
    return page.locator(selector).evaluateAll((els, a) => els.map((e) => e.getAttribute(a)), attr);
}

/* Waits until the attribute values of selector equal want (an array; order
 * matters unless opts.sorted). Returns them. */
async function waitAttrs(page, selector, attr, want, what, opts = {}) {
    let got;
    const norm = (a) => (opts.sorted ? [...a].sort() : a);
    try {
        await until(what || `${selector} [${attr}] = ${JSON.stringify(want)}`, async () => {
            got = await attrs(page, selector, attr);
            return JSON.stringify(norm(got)) === JSON.stringify(norm(want));
        }, opts.timeoutMs || WAIT_MS);
    } catch (e) {
        assert.deepStrictEqual(norm(got), norm(want), `${what || selector}: ${attr} values`);
        throw e;
    }
    return got;
}

/* Confirms the open dialog[data-testid=confirm] and waits for the result;
 * returns { cls, text } of [data-testid=result] once it has class ok or
 * error. */
async function confirmAndResult(page) {
    const dialog = page.locator('dialog[data-testid=confirm]');
    await dialog.waitFor({ state: 'visible' });
    // A result left from an earlier action must not be taken for this one.
    const state = () => page.evaluate(() => [...document.querySelectorAll('[data-testid=result]')]
        .filter((e) => e.classList.contains('ok') || e.classList.contains('error'))
        .map((e) => `${e.className}|${e.textContent}`).join('\n'));
    const before = await state();
    await dialog.locator('button[data-testid=confirm-ok]').click();
    await until('[data-testid=result] with class ok or error (a new one)', async () => {
        const now = await state();
        return now !== '' && now !== before;
    });
    const result = page.locator('[data-testid=result].ok, [data-testid=result].error').first();
    await result.waitFor({ state: 'visible' });
    const cls = await result.evaluate((e) => (e.classList.contains('ok') ? 'ok' : 'error'));
    return { cls, text: (await result.innerText()).trim() };
}

module.exports = {
    WAIT_MS, DESKTOP, PHONE, SHOTS, NET_REFUSED, httpStatusError, sleep, withBrowser, screenshot,
    open, until, attrs, waitAttrs, confirmAndResult,
};

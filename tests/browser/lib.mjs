// What every browser test shares: failing and checking, Debian's headless Chromium, a page
// whose script errors and Content-Security-Policy refusals fail the test, and the login (the
// browser tests act as people do: with a session, not an API key).
import { chromium } from "playwright-core";

export const fail = (message) => { console.error(`FAIL: ${message}`); process.exit(1); };
export const check = (ok, message) => { if (!ok) fail(message); console.log(`ok: ${message}`); };

// Debian's Chromium (CHROMIUM names another), headless.
export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
}

// `page`, on which a script error or anything the CSP refuses (an inline style or script, a
// foreign source) is now a failure.
export function watch(page) {
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (/Content.Security.Policy/i.test(m.text())) fail(`CSP violation: ${m.text()}`);
  });
  return page;
}

// A new watched page of `browser` (see `watch`).
export async function watchedPage(browser, viewport) {
  return watch(await browser.newPage({ viewport }));
}

// Logs `page` in through the login page as USER with PASSWORD and waits for the dashboard to be
// ready.
export async function login(page, base, user, password) {
  await page.goto(`${base}/login`);
  await page.fill("#login-user", user);
  await page.fill("#login-password", password);
  await page.click("#login-submit");
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
}

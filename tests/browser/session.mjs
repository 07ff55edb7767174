// Logging in, CSRF, logout and session expiry in Debian's headless Chromium, against a server
// with private reads and a 3-second idle session (`serve --session-idle 3`).
// Usage: node session.mjs BASE_URL USER PASSWORD
import { check, launch, watchedPage } from "./lib.mjs";

const [base, user, password] = process.argv.slice(2);

const browser = await launch();
try {
  const page = await watchedPage(browser, { width: 1400, height: 900 });
  const login = async () => {
    await page.waitForURL(/\/login/, { timeout: 15000 });
    await page.fill("#login-user", user);
    await page.fill("#login-password", "wrong password!");
    await page.click("#login-submit");
    await page.waitForFunction(() => document.getElementById("login-status").textContent !== "");
    check(page.url().includes("/login"), "a wrong password stays on the login page");
    await page.fill("#login-password", password);
    await page.click("#login-submit");
    await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  };
  // Without a session the dashboard sends people to the login page.
  await page.goto(`${base}/`);
  await login();
  check((await page.textContent("#who")).includes(user), `the bar names ${user}`);
  check(await page.isVisible("#logout"), "a logout button");
  // A write with the session but without its CSRF token is refused; with it, it is done.
  const put = (csrf) => page.evaluate(async (csrf) => {
    const headers = { "Content-Type": "application/json", "Idempotency-Key": crypto.randomUUID() };
    if (csrf) headers["X-CSRF-Token"] = csrf;
    const r = await fetch("/api/v1/dashboards/csrf", { method: "PUT", headers, body: JSON.stringify({ widgets: [] }) });
    return r.status;
  }, csrf);
  check((await put(null)) === 403, "a session write without the CSRF token: 403");
  const csrf = await page.evaluate(async () => (await (await fetch("/api/v1/session")).json()).csrf);
  check((await put(csrf)) === 200, "the same write with the token: 200");
  // Logout ends the session.
  await page.click("#logout");
  await page.waitForURL(/\/login/, { timeout: 15000 });
  const after = await page.evaluate(async () => (await fetch("/api/v1/session")).status);
  check(after === 401, "after logout the cookie is refused");
  // Expiry: idle past --session-idle, the next page load goes back to the login.
  await page.goto(`${base}/`);
  await login();
  await page.waitForTimeout(4500);
  await page.goto(`${base}/`);
  await page.waitForURL(/\/login/, { timeout: 15000 });
  check(true, "an idle session expired and the page asks to log in again");
  console.log("session: all checks passed");
} finally {
  await browser.close();
}

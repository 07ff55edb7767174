// The users page in Debian's headless Chromium, against a server with private reads: an admin
// adds a viewer, changes their role, disables them and sets a new password (which enables
// them); the viewer then logs in, is not shown the page and is refused its endpoints (403).
// No password is ever shown on the page.
// Usage: node admin.mjs BASE_URL ADMIN PASSWORD
import { check, fail, launch, watchedPage, login } from "./lib.mjs";

const [base, admin, password] = process.argv.slice(2);
const first = "the viewer's first password";
const second = "the viewer's second password";

const browser = await launch();
try {
  const page = await watchedPage(browser, { width: 1400, height: 900 });
  const noPassword = async (when) => {
    const text = await page.evaluate(() => document.body.innerText);
    check(!text.includes(first) && !text.includes(second) && !text.includes(password), `no password on the page ${when}`);
  };
  const status = async () => {
    await page.waitForFunction(() => document.getElementById("admin-status").className !== "", null, { timeout: 15000 });
    return page.evaluate(() => { const el = document.getElementById("admin-status"); return [el.className, el.textContent]; });
  };
  const act = async (what, action) => {
    await page.evaluate(() => { document.getElementById("admin-status").className = ""; });
    await action();
    const [kind, text] = await status();
    check(kind === "done", `${what}: ${text}`);
  };
  const row = (user) => `#admin-users tr[data-user="${user}"]`;
  const roleOf = (user) => page.evaluate(async (user) => {
    const users = await (await fetch("/api/v1/users")).json();
    const found = users.find((u) => u.name === user);
    return found ? [found.role, found.disabled_at] : null;
  }, user);

  // The admin sees the users page and adds a viewer.
  await login(page, base, admin, password);
  check(await page.isVisible("#tab-admin"), "an admin sees the users tab");
  await page.click("#tab-admin");
  await page.waitForSelector("body[data-admin-ready=true]", { timeout: 15000 });
  check(await page.isVisible("#admin-page"), "the users page shows");
  check(!(await page.isVisible("#grid")), "the dashboard's grid is hidden on it");
  check(await page.isVisible(row(admin)), `${admin} is listed`);
  check(await page.isDisabled(`${row(admin)} .user-disable`), "an admin cannot disable themselves");
  await act("a viewer added", async () => {
    await page.fill("#admin-name", "vitor");
    await page.selectOption("#admin-role", "viewer");
    await page.fill("#admin-password", first);
    await page.click("#admin-create");
  });
  await page.waitForSelector(row("vitor"));
  check((await page.inputValue("#admin-password")) === "", "the password field is cleared");
  check(JSON.stringify(await roleOf("vitor")) === JSON.stringify(["viewer", null]), "vitor is a viewer");
  await noPassword("after adding a user");
  // A refused addition says why (too short), naming no password.
  await page.evaluate(() => { document.getElementById("admin-status").className = ""; });
  await page.fill("#admin-name", "rui");
  await page.fill("#admin-password", "short");
  // (past the browser's own minlength check, to reach the server's)
  await page.evaluate(() => document.getElementById("admin-password").removeAttribute("minlength"));
  await page.click("#admin-create");
  const [kind, text] = await status();
  check(kind === "failed" && text.includes("12") && !text.includes("short\""), `a short password is refused: ${text}`);
  // Role, disable, new password.
  await act("vitor made analyst", () => page.selectOption(`${row("vitor")} .user-role`, "analyst"));
  check((await roleOf("vitor"))[0] === "analyst", "vitor is an analyst");
  await act("vitor made viewer again", () => page.selectOption(`${row("vitor")} .user-role`, "viewer"));
  await act("vitor disabled", () => page.click(`${row("vitor")} .user-disable`));
  check((await roleOf("vitor"))[1] !== null, "vitor is disabled");
  check(await page.isDisabled(`${row("vitor")} .user-disable`), "a disabled user's button is off");
  await act("vitor's new password", async () => {
    await page.fill(`${row("vitor")} .user-password`, second);
    await page.click(`${row("vitor")} .user-reset`);
  });
  check((await roleOf("vitor"))[1] === null, "a new password enabled vitor");
  await noPassword("after setting a password");
  // Switching the language relabels the page.
  await page.selectOption("#lang", "en");
  check((await page.textContent("#admin-create")) === "Add user", "the page in English");
  await page.selectOption("#lang", "pt-BR");
  await page.click("#logout");
  await page.waitForURL(/\/login/, { timeout: 15000 });

  // The viewer: no users page, and its endpoints refused.
  await login(page, base, "vitor", second);
  check((await page.textContent("#who")).includes("vitor"), "vitor is logged in");
  check(!(await page.isVisible("#tab-admin")), "a viewer is not shown the users tab");
  await page.goto(`${base}/#admin`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  check(!(await page.isVisible("#admin-page")), "a viewer sent to #admin does not see the users page");
  const refused = await page.evaluate(async () => {
    const { csrf } = await (await fetch("/api/v1/session")).json();
    const list = (await fetch("/api/v1/users")).status;
    const add = (await fetch("/api/v1/users", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ name: "mallory", role: "admin", password: "a long enough password" }),
    })).status;
    const promote = (await fetch("/api/v1/users/vitor", {
      method: "PUT",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify({ role: "admin" }),
    })).status;
    const audit = (await fetch("/api/v1/audit")).status;
    return [list, add, promote, audit];
  });
  check(JSON.stringify(refused) === "[403,403,403,403]", `the viewer is refused the users and audit endpoints: ${refused}`);
  console.log("admin: all checks passed");
} finally {
  await browser.close();
}

// Drives the customer portal in Debian's headless Chromium on a phone's screen: the link opens
// the customer's page (no login); 2 more licences of SEAT and the recommended PAYROLL add-on
// are priced live by the server, and the page shows exactly `expansa quote amend --format json`
// (passed in as EXPECTED); a quantity below the one held shows the refusal on the page.
// Usage: node portal.mjs BASE_URL TOKEN EXPECTED_JSON SHOTS_DIR STORE
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, token, expectedText, shots, store] = process.argv.slice(2);
const expected = JSON.parse(expectedText);
mkdirSync(shots, { recursive: true });
const fail = (message) => { console.error(`FAIL: ${message}`); process.exit(1); };
const check = (ok, message) => { if (!ok) fail(message); console.log(`ok: ${message}`); };
const brl = (s) => { const [i, f] = s.split("."); return `BRL ${i.replace(/\B(?=(\d{3})+(?!\d))/g, ".")},${f}`; };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: "pt-BR" });
  const page = await context.newPage();
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  page.on("console", (m) => {
    if (/Content.Security.Policy/i.test(m.text())) fail(`CSP violation: ${m.text()}`);
  });
  page.on("dialog", (d) => fail(`a dialog opened: ${d.message()}`));

  const answer = await page.goto(`${base}/portal/${token}/`);
  check(answer.status() === 200, "the link opens the page");
  check((await page.locator("h1").textContent()) === "Sua assinatura", "in pt-BR");
  check((await page.locator(".customer").textContent()) === "Alfa Contabilidade", "the customer's own page");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 390, `no sideways scrolling on a phone (${width}px)`);

  const form = page.locator('form.amend[data-contract="KA"]');
  await form.locator('input[name="SEAT"]').fill("7");
  await form.locator('input[name="PAYROLL"]').fill("1");
  await page.waitForSelector('form.amend[data-contract="KA"] .quote p.total', { timeout: 15000 });
  const total = form.locator(".quote p.total");
  check((await total.count()) === expected.totals.length, "one total per currency");
  check((await total.first().getAttribute("data-amount")) === expected.totals[0].total,
    `the total is quote amend's ${expected.totals[0].total}`);
  check((await total.first().textContent()).includes(brl(expected.totals[0].total)), `shown as ${brl(expected.totals[0].total)}`);
  for (const line of expected.lines) {
    const row = form.locator(`.quote tr[data-product="${line.product_id}"]`);
    check((await row.count()) === 1, `a line for ${line.product_id}`);
    check((await row.locator("td.net").textContent()) === brl(line.net_total), `${line.product_id}: ${brl(line.net_total)}`);
  }
  await page.screenshot({ path: `${shots}/portal-${store}.png`, fullPage: true });

  // Below what is held: the page says so.
  await form.locator('input[name="SEAT"]').fill("3");
  await page.waitForSelector('form.amend[data-contract="KA"] .quote p.error', { timeout: 15000 });
  const error = await form.locator(".quote p.error").textContent();
  check(error.includes("below the 5 you hold"), `a quantity below the held one is refused: ${error}`);

  // English by ?lang=en.
  await page.goto(`${base}/portal/${token}/?lang=en`);
  check((await page.locator("h1").textContent()) === "Your subscription", "in English");

  // A forged token shows nothing.
  const forged = await page.goto(`${base}/portal/${token.split(".")[0]}.${"0".repeat(52)}/`);
  check(forged.status() === 401, "a forged token is refused");
  check(!(await page.content()).includes("Alfa"), "and shows nothing");
  console.log("portal: all checks passed");
} finally {
  await browser.close();
}

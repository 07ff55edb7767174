// Drives the dashboard in Debian's headless Chromium: the Cross-sell widget shows what the API
// returns (formatted R$ 1.234,56), its trail lists the lines, a widget is added, the page is
// reloaded and the widget is still there; en/pt-BR switch. Screenshots go to SHOTS.
// Usage: node dashboard.mjs BASE_URL API_KEY SHOTS_DIR
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, key, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const fail = (message) => { console.error(`FAIL: ${message}`); process.exit(1); };
const check = (ok, message) => { if (!ok) fail(message); console.log(`ok: ${message}`); };

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1100 } });
  page.on("pageerror", (e) => fail(`page error: ${e.message}`));
  await page.goto(`${base}/?dashboard=e2e&from=2024-01&to=2024-03`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  await page.screenshot({ path: `${shots}/dashboard-pt-BR.png`, fullPage: true });

  // The Cross-sell widget shows the API's March 2024 cross-sell, formatted as pt-BR money.
  const api = await (await page.request.get(`${base}/api/v1/movements?from=2024-03&to=2024-03`)).json();
  const expected = api.months[0].cross_sell;
  const value = page.locator('[data-widget="cross_sell"] .value');
  check((await value.getAttribute("data-raw")) === expected, `cross-sell widget holds the API's ${expected}`);
  const [int, frac] = expected.split(".");
  const shown = `R$ ${int.replace(/\B(?=(\d{3})+(?!\d))/g, ".")},${frac}`;
  check((await value.textContent()) === shown, `cross-sell widget shows ${shown}`);

  // Its trail: the customers and lines behind the figure.
  await value.click();
  await page.waitForSelector("#trail[open] table", { timeout: 10000 });
  const detail = await (await page.request.get(`${base}/api/v1/movements/detail?from=2024-03&to=2024-03&kind=cross_sell`)).json();
  const trailText = await page.locator("#trail-body").textContent();
  for (const m of detail.movements) check(trailText.includes(m.customer) && trailText.includes(m.lines[0]), `trail lists ${m.customer} ${m.lines[0]}`);
  await page.screenshot({ path: `${shots}/dashboard-trail.png` });
  await page.keyboard.press("Escape");

  // Top opportunities: how many the API found at the month's end, and the change.
  const opp = await (await page.request.get(`${base}/api/v1/opportunities?at=2024-03-31&top=10`)).json();
  check((await page.locator('[data-widget="opportunities"] .found').getAttribute("data-raw")) === String(opp.found),
    `opportunities widget counts the API's ${opp.found}`);
  check((await page.locator('[data-widget="opportunities"] .delta').textContent()).includes("vs. mês anterior"),
    "opportunities widget shows the change");

  // Add the offer-conversion widget: March's rate from the API, the change, and its trail.
  await page.selectOption("#add-widget", "offers");
  await page.click("#add");
  await page.waitForSelector('[data-widget="offers"] .value');
  const offers = await (await page.request.get(`${base}/api/v1/offers?from=2024-02&to=2024-03`)).json();
  const march = offers.by_month.find((m) => m.key === "2024-03");
  const rate = page.locator('[data-widget="offers"] .value');
  check((await rate.getAttribute("data-raw")) === (march.conversion_rate ?? ""), `offers widget holds the API's ${march.conversion_rate}`);
  check((await page.locator('[data-widget="offers"] .delta').textContent()).includes("p.p."), "offers widget shows the change in points");
  await rate.click();
  await page.waitForSelector("#trail[open] table", { timeout: 10000 });
  const offerTrail = await page.locator("#trail-body").textContent();
  const marchOffers = offers.offers.filter((o) => o.offered_on.startsWith("2024-03"));
  check(marchOffers.length > 0, "March has offers");
  for (const o of marchOffers) check(offerTrail.includes(o.customer_id) && offerTrail.includes(o.product_id), `offer trail lists ${o.customer_id} ${o.product_id}`);
  await page.screenshot({ path: `${shots}/dashboard-offers.png` });
  await page.keyboard.press("Escape");
  await page.click('[data-widget="offers"] .remove');

  // Add a widget (LTV), with the API key so the layout is saved; reload; it is still there.
  check((await page.locator('[data-widget="ltv"]').count()) === 0, "no LTV widget yet");
  await page.fill("#api-key", key);
  await page.dispatchEvent("#api-key", "change");
  await page.selectOption("#add-widget", "ltv");
  const saved = page.waitForResponse((r) => r.url().includes("/api/v1/dashboards/e2e") && r.request().method() === "PUT");
  await page.click("#add");
  check((await saved).status() === 200, "layout saved");
  await page.waitForSelector('[data-widget="ltv"] .value');
  await page.reload();
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  check((await page.locator('[data-widget="ltv"]').count()) === 1, "LTV widget still there after reload");
  const stored = await (await page.request.get(`${base}/api/v1/dashboards/e2e`)).json();
  check(stored.saved && stored.layout.widgets.some((w) => w.id === "ltv"), "layout stored in the server");

  // Remove it again (also saved), and switch to English.
  await page.click('[data-widget="ltv"] .remove');
  await page.waitForResponse((r) => r.url().includes("/api/v1/dashboards/e2e") && r.request().method() === "PUT");
  await page.selectOption("#lang", "en");
  const english = await page.locator('[data-widget="cross_sell"] .value').textContent();
  check(english === `R$${int.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${frac}`, `English money ${english}`);
  check((await page.locator('[data-widget="mrr"] .delta').textContent()).includes("previous month"), "English labels");
  await page.screenshot({ path: `${shots}/dashboard-en.png`, fullPage: true });
  await page.reload();
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  check((await page.locator('[data-widget="ltv"]').count()) === 0, "removed widget stays removed");
  console.log("dashboard: all checks passed");
} finally {
  await browser.close();
}

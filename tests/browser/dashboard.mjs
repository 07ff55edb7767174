// Drives the dashboard in Debian's headless Chromium: the Cross-sell widget shows what the API
// returns (formatted R$ 1.234,56), its trail lists the lines, a widget is added, the page is
// reloaded and the widget is still there; en/pt-BR switch. Screenshots go to SHOTS.
// The page runs under the server's Content-Security-Policy (checked sent, and nothing refused
// by it). Dashboard `hostile` holds a layout stored past the server's checks (by the harness,
// crates/cli/tests/dashboard.rs): ids like `constructor` and `__proto__`, markup, odd places;
// the page must still render its real widgets. The page is used logged in as an admin (USER,
// PASSWORD); API_KEY is a program's, for a request made outside the page.
// Usage: node dashboard.mjs BASE_URL USER PASSWORD API_KEY SHOTS_DIR
import { check, fail, launch, watchedPage, login } from "./lib.mjs";
import { mkdirSync } from "node:fs";

const [base, user, password, key, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });

const browser = await launch();
try {
  const page = await watchedPage(browser, { width: 1400, height: 1100 });
  page.on("dialog", (d) => fail(`a dialog opened: ${d.message()}`));
  check((await page.goto(`${base}/`)) && (await page.locator("#api-key").count()) === 0, "no API key box on the page");
  await login(page, base, user, password);
  const first = await page.goto(`${base}/?dashboard=e2e&from=2024-01&to=2024-03`);
  const csp = first.headers()["content-security-policy"] || "";
  check(csp.includes("frame-ancestors 'none'") && csp.includes("script-src 'self'") && !csp.includes("unsafe-inline"),
    `the page is sent with a strict CSP: ${csp}`);
  check(first.headers()["x-content-type-options"] === "nosniff", "the page is sent with nosniff");
  check(Boolean(first.headers()["referrer-policy"]), "the page is sent with a Referrer-Policy");
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

  // Add a widget (LTV), saved with the session; reload; it is still there.
  check((await page.locator('[data-widget="ltv"]').count()) === 0, "no LTV widget yet");
  await page.selectOption("#add-widget", "ltv");
  // The save that holds the new widget (an earlier one may still be on its way).
  const putOf = (r) => r.url().includes("/api/v1/dashboards/e2e") && r.request().method() === "PUT";
  const saved = page.waitForResponse((r) => putOf(r) && r.request().postData().includes('"ltv"'));
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
  await page.waitForResponse((r) => putOf(r) && !r.request().postData().includes('"ltv"'));
  await page.selectOption("#lang", "en");
  const english = await page.locator('[data-widget="cross_sell"] .value').textContent();
  check(english === `R$${int.replace(/\B(?=(\d{3})+(?!\d))/g, ",")}.${frac}`, `English money ${english}`);
  check((await page.locator('[data-widget="mrr"] .delta').textContent()).includes("previous month"), "English labels");
  await page.screenshot({ path: `${shots}/dashboard-en.png`, fullPage: true });
  await page.reload();
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  check((await page.locator('[data-widget="ltv"]').count()) === 0, "removed widget stays removed");

  // The cohort heat map colours its cells under the CSP (no style attribute in markup).
  await page.selectOption("#add-widget", "cohorts");
  await page.click("#add");
  await page.waitForSelector('[data-widget="cohorts"] td[data-shade]');
  const shade = await page.locator('[data-widget="cohorts"] td[data-shade]').first().evaluate((td) => td.style.background);
  check(shade.length > 0, `cohort cells are coloured (${shade})`);

  // The server refuses a layout with an unknown widget id (422) ...
  const refused = await page.request.put(`${base}/api/v1/dashboards/e2e`, {
    headers: { Authorization: `bearer ${key}`, "Idempotency-Key": "hostile-put", "Content-Type": "application/json" },
    data: JSON.stringify({ widgets: [{ id: "constructor", x: 0, y: 0, w: 3, h: 2 }] }),
  });
  check(refused.status() === 422 && (await refused.json()).error.code === "invalid_layout", "the server refuses an unknown widget id");
  // ... and a hostile layout already in the store does not break the page.
  const hostile = await (await page.request.get(`${base}/api/v1/dashboards/hostile`)).json();
  check(hostile.saved && hostile.layout.widgets.some((w) => w && w.id === "constructor"), "the hostile layout is in the store");
  await page.goto(`${base}/?dashboard=hostile&from=2024-01&to=2024-03`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  const mrrApi = await (await page.request.get(`${base}/api/v1/kpis?from=2024-03&to=2024-03`)).json();
  check((await page.locator('[data-widget="mrr"] .value').getAttribute("data-raw")) === mrrApi.months[0].mrr,
    "the hostile dashboard still shows MRR");
  check((await page.locator('[data-widget="cross_sell"] .value').getAttribute("data-raw")) === expected,
    "the hostile dashboard still shows cross-sell");
  const shownIds = await page.locator(".grid-stack-item").evaluateAll((els) => els.map((e) => e.getAttribute("gs-id")));
  check(JSON.stringify(shownIds.sort()) === JSON.stringify(["cross_sell", "mrr"]), `only the known widgets are shown: ${shownIds}`);
  check((await page.locator("img").count()) === 0, "no markup from a stored id");
  check(!(await page.locator("#add-widget").innerHTML()).includes("constructor"), "the add menu lists known widgets only");
  await page.screenshot({ path: `${shots}/dashboard-hostile.png`, fullPage: true });
  console.log("dashboard: all checks passed");
} finally {
  await browser.close();
}

// Live updates in Debian's headless Chromium: an open dashboard shows a write made by another
// client (a program with an API key) within seconds, without a reload (GET
// /api/v1/events/stream, server-sent events), and says when in the bar; then a subscription
// Stripe sends by webhook (signed with STRIPE_SECRET as Stripe signs) the same way. The page
// runs under the server's Content-Security-Policy (connect-src 'self' lets the stream through).
// Usage: node live.mjs BASE_URL USER PASSWORD API_KEY SHOTS_DIR STRIPE_SECRET
import { check, fail, launch, watchedPage, login } from "./lib.mjs";
import { createHmac } from "node:crypto";
import { mkdirSync } from "node:fs";

const [base, user, password, key, shots, secret] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });

const browser = await launch();
try {
  const page = await watchedPage(browser, { width: 1400, height: 1100 });
  let loads = 0;
  page.on("load", () => { loads += 1; });
  await login(page, base, user, password);
  await page.goto(`${base}/?dashboard=live&from=2024-01&to=2024-03`);
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  const loaded = loads;
  // A mark that a reload would wipe.
  await page.evaluate(() => { window.stillTheSamePage = true; });
  const mrr = page.locator('[data-widget="mrr"] .value');
  const before = await mrr.getAttribute("data-raw");
  check(Boolean(before), `the MRR widget shows March's MRR (${before})`);
  check(await page.locator("#live").isHidden(), "no update said yet");

  // Another client adds a line in March: a copy of a line of the book, 100 units of its price.
  const headers = { Authorization: `Bearer ${key}`, "Content-Type": "application/json" };
  const lines = await (await fetch(`${base}/api/v1/lines?limit=1`, { headers })).json();
  const line = Object.assign({}, lines.rows[0], {
    id: "live-line", quantity: "100", start_date: "2024-03-01", end_date: null, revises: null, sold_on: null,
  });
  const written = await fetch(`${base}/api/v1/lines`, {
    method: "POST", headers: Object.assign({ "Idempotency-Key": "live-1" }, headers), body: JSON.stringify(line),
  });
  check(written.status === 201, `the other client's write is recorded (${written.status})`);
  const kpis = await (await fetch(`${base}/api/v1/kpis?from=2024-03&to=2024-03`, { headers })).json();
  const after = kpis.months[kpis.months.length - 1].mrr;
  check(after !== before, `the API's MRR moved from ${before} to ${after}`);

  // The open page follows, without a reload.
  await page.waitForFunction((want) => {
    const el = document.querySelector('[data-widget="mrr"] .value');
    return el && el.dataset.raw === want;
  }, after, { timeout: 15000 });
  check(true, `the MRR widget now shows ${after}`);
  check(await page.evaluate(() => window.stillTheSamePage === true) && loads === loaded, "the page was not reloaded");
  check(await page.locator("#live").isVisible(), `the bar says it was updated: ${await page.locator("#live").textContent()}`);

  // Stripe sends a new subscription starting in March (BRL 1,000.00 a month), signed as
  // https://docs.stripe.com/webhooks#verify-manually says; the page follows again.
  const march = Date.UTC(2024, 2, 1, 12) / 1000;
  const price = { id: "price_live", object: "price", currency: "brl", product: "prod_live", type: "recurring",
    billing_scheme: "per_unit", unit_amount: 100000, unit_amount_decimal: "100000",
    recurring: { interval: "month", interval_count: 1, usage_type: "licensed" } };
  const subscription = { id: "sub_live", object: "subscription", customer: "cus_live", status: "active",
    created: march, start_date: march, cancel_at: null, cancel_at_period_end: false, canceled_at: null, ended_at: null,
    trial_end: null, items: { object: "list", data: [{ id: "si_live", object: "subscription_item", created: march,
      current_period_start: march, current_period_end: march + 31 * 86400, price, quantity: 1 }] } };
  const event = JSON.stringify({ id: "evt_live", object: "event", api_version: "2025-03-31.basil", created: march,
    type: "customer.subscription.created", data: { object: subscription }, livemode: false, pending_webhooks: 1 });
  const t = Math.floor(Date.now() / 1000);
  const signature = createHmac("sha256", secret).update(`${t}.${event}`).digest("hex");
  const forged = await fetch(`${base}/api/v1/webhooks/stripe`, {
    method: "POST", headers: { "Content-Type": "application/json", "Stripe-Signature": `t=${t},v1=${"0".repeat(64)}` }, body: event,
  });
  check(forged.status === 400, `a forged signature is refused (${forged.status})`);
  const sent = await fetch(`${base}/api/v1/webhooks/stripe`, {
    method: "POST", headers: { "Content-Type": "application/json", "Stripe-Signature": `t=${t},v1=${signature}` }, body: event,
  });
  check(sent.status === 200, `Stripe's signed event is received (${sent.status})`);
  const plus = (a, b) => {
    const cents = (s) => BigInt(s.replace(".", ""));
    const sum = (cents(a) + cents(b)).toString().padStart(3, "0");
    return `${sum.slice(0, -2)}.${sum.slice(-2)}`;
  };
  const withStripe = plus(after, "1000.00");
  await page.waitForFunction((want) => {
    const el = document.querySelector('[data-widget="mrr"] .value');
    return el && el.dataset.raw === want;
  }, withStripe, { timeout: 20000 });
  check(true, `the MRR widget now shows ${withStripe}, with Stripe's subscription`);
  check(await page.evaluate(() => window.stillTheSamePage === true) && loads === loaded, "still the same page, never reloaded");
  await page.screenshot({ path: `${shots}/dashboard-live.png`, fullPage: true });
  console.log("live: all checks passed");
} finally {
  await browser.close();
}

// Drives the dashboard's Import page in Debian's headless Chromium, against a server over the
// demo book: a flat kind fills the mapping with its preset; a user's export (assinaturas.csv)
// is uploaded with a mapping naming a wrong column, the preview is refused and the problem is
// listed as the API answered it; the mapping is fixed in the textarea, the preview shows the
// API's report and first rows; the commit records one event and the dashboard's New MRR of
// March grows by the new lines (A-2 R$ 1.499,00 from 2024-03-15 and A-3 R$ 199,90 from
// 2024-03-01: R$ 1.698,90; A-1 starts in February). No CSP violation. Screenshots to SHOTS.
// The page is used logged in as an admin (USER, PASSWORD).
// Usage: node import.mjs BASE_URL USER PASSWORD SHOTS_DIR FIXTURES_DIR
import { check, fail, launch, watchedPage, login } from "./lib.mjs";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

const [base, user, password, shots, fixtures] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

// Exact decimal strings as whole cents (the figures here have at most two places).
const cents = (s) => {
  const [int, frac = ""] = s.replace("-", "").split(".");
  const n = BigInt(int) * 100n + BigInt((frac + "00").slice(0, 2));
  return s.startsWith("-") ? -n : n;
};

const browser = await launch();
try {
  const page = await watchedPage(browser, { width: 1400, height: 1100 });
  page.on("dialog", (d) => fail(`a dialog opened: ${d.message()}`));
  const events = async () => (await page.request.get(`${base}/api/v1/events`)).json();
  const marchNew = async () => (await (await page.request.get(`${base}/api/v1/movements?from=2024-03&to=2024-03`)).json()).months[0].new;
  const eventsBefore = await events();
  const newBefore = await marchNew();

  await login(page, base, user, password);
  await page.goto(`${base}/?dashboard=import-e2e&from=2024-01&to=2024-03#import`);
  await page.waitForSelector("body[data-ready=true][data-import-ready=true]", { timeout: 30000 });
  check(await page.locator("#import-page").isVisible(), "the Import page shows at #import");
  check(!(await page.locator("#grid").isVisible()), "the dashboard's grid is hidden on it");
  check((await page.locator("#tab-import").getAttribute("aria-current")) === "page", "the Import tab is current");

  // The source kinds: the server's ten and a mapping file; a flat kind shows its preset.
  const sources = await (await page.request.get(`${base}/api/v1/imports/sources`)).json();
  const kinds = await page.locator("#import-kind option").evaluateAll((os) => os.map((o) => o.value));
  check(same(kinds, [...sources.sources.map((s) => s.kind), "mapping"]), `the kinds offered: ${kinds}`);
  await page.selectOption("#import-kind", "baremetrics");
  const preset = sources.sources.find((s) => s.kind === "baremetrics").preset;
  check((await page.inputValue("#import-mapping")) === preset, "Baremetrics fills the mapping with its preset");
  await page.selectOption("#import-kind", "stripe");
  check(await page.locator("#import-mapping").isDisabled(), "Stripe (converted by code) has no mapping to edit");

  // A user's export with a mapping that names a wrong column: refused, problem listed.
  await page.selectOption("#import-kind", "mapping");
  await page.setInputFiles("#import-files", join(fixtures, "assinaturas.csv"));
  await page.fill("#import-mapping", readFileSync(join(fixtures, "mapping-wrong-column.toml"), "utf8"));
  const isPreview = (r) => r.url().endsWith("/api/v1/imports/preview") && r.request().method() === "POST";
  let answer = page.waitForResponse(isPreview);
  await page.click("#import-preview");
  const refused = await answer;
  check(refused.status() === 422, "the first preview is refused (422)");
  const refusal = await refused.json();
  await page.waitForSelector("#import-problems li");
  const listed = await page.locator("#import-problems li").allTextContents();
  const expected = refusal.error.problems.map((p) => `${p.file}:${p.line}: ${p.column}: ${p.value}: ${p.reason}`);
  check(same(listed, expected), `the page lists the API's problems: ${listed}`);
  check(listed.length === 1 && listed[0].startsWith("assinaturas.csv:1: valor: "), "the problem names the file, the header line and the column");
  check((await page.locator("#import-commit").isDisabled()), "nothing to commit after a refusal");
  await page.screenshot({ path: `${shots}/import-refused.png`, fullPage: true });

  // Fixed in the textarea: the preview shows the API's report and first rows.
  const wrong = await page.inputValue("#import-mapping");
  await page.fill("#import-mapping", wrong.replace('unit_price = "valor"', 'unit_price = "valor_mensal"'));
  await page.fill("#import-mrr-at", "2024-03");
  answer = page.waitForResponse(isPreview);
  await page.click("#import-preview");
  const previewed = await answer;
  check(previewed.status() === 200, "the fixed mapping previews (200)");
  const preview = await previewed.json();
  await page.waitForSelector(`body[data-previewed="${preview.token}"]`);
  check((await page.locator("#import-problems li").count()) === 0, "no problem listed any more");
  for (const [outcome, n] of Object.entries(preview.report.rows)) {
    const raw = await page.locator(`#import-report [data-outcome="${outcome}"] .value`).getAttribute("data-raw");
    check(raw === String(n), `${outcome}: the page shows the API's ${n}`);
  }
  check(same(preview.report.rows, { mapped: 3 }), "3 source rows mapped");
  const mrr = page.locator("#import-report .figure.mrr .value");
  check((await mrr.getAttribute("data-raw")) === preview.report.mrr && preview.report.mrr === "1898.80", `MRR at ${preview.report.mrr_at}: ${preview.report.mrr}`);
  check((await mrr.textContent()) === "R$ 1.898,80", "shown as pt-BR money");
  const firstRow = await page.locator('#import-rows table[data-file="subscriptions"] tbody tr').first().locator("td").allTextContents();
  check(same(firstRow, preview.preview.subscriptions.rows[0]), `first row shown as the API's: ${firstRow}`);
  const headers = await page.locator('#import-rows table[data-file="subscriptions"] thead th').allTextContents();
  check(same(headers, preview.preview.subscriptions.columns), "the book's columns shown");
  const shownRows = await page.locator('#import-rows table[data-file="subscriptions"] tbody tr').count();
  check(shownRows === preview.preview.subscriptions.rows.length, `${shownRows} rows shown`);
  await page.screenshot({ path: `${shots}/import-preview.png`, fullPage: true });

  // Commit: one event, the figures refreshed.
  const isCommit = (r) => r.url().includes(`/api/v1/imports/${preview.token}/commit`);
  answer = page.waitForResponse(isCommit);
  await page.click("#import-commit");
  const committed = await (await answer).json();
  await page.waitForSelector(`body[data-refreshed="${committed.event}"]`, { timeout: 30000 });
  check((await page.locator("#import-status").textContent()).includes(String(committed.event)), `the event id ${committed.event} is shown`);
  const eventsAfter = await events();
  check(eventsAfter.length === eventsBefore.length + 1, "one event more");
  const last = eventsAfter[eventsAfter.length - 1];
  check(last.id === committed.event && last.kind === "import", `event ${last.id} is the import`);
  const newAfter = await marchNew();
  check(cents(newAfter) - cents(newBefore) === 169890n, `March's new MRR grew by R$ 1.698,90 (${newBefore} -> ${newAfter})`);
  await page.screenshot({ path: `${shots}/import-committed.png`, fullPage: true });

  // The dashboard shows the new figure.
  await page.click("#tab-dashboard");
  await page.waitForSelector("#grid:visible");
  const widget = page.locator('[data-widget="new"] .value');
  check((await widget.getAttribute("data-raw")) === newAfter, `the New MRR widget shows the API's ${newAfter}`);
  check(await page.locator("#import-page").isHidden(), "the Import page is hidden on the dashboard");
  await page.screenshot({ path: `${shots}/import-dashboard.png`, fullPage: true });

  // English.
  await page.click("#tab-import");
  await page.selectOption("#lang", "en");
  check((await page.locator("#import-preview").textContent()) === "Preview", "English labels");
  check((await mrr.textContent()) === "R$1,898.80", "English money");
  console.log("import: all checks passed");
} finally {
  await browser.close();
}

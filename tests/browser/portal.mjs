// Drives the customer portal in Debian's headless Chromium on a phone's screen: the link opens
// the customer's page (no login); 2 more licences of SEAT and the recommended PAYROLL add-on
// are priced live by the server, and the page shows exactly `expansa quote amend --format json`
// (passed in as EXPECTED); a quantity below the one held shows the refusal on the page; the
// amendment's PDF is made and signed (name, e-mail, acceptance box), which applies it and makes
// its invoice; the page read again holds the new quantities.
// Then staff (an admin, USER and PASSWORD) see it in the dashboard's "Portal amendments" widget.
// Usage: node portal.mjs BASE_URL TOKEN EXPECTED_JSON SHOTS_DIR STORE USER PASSWORD
import { check, fail, launch, login, watch, watchedPage } from "./lib.mjs";
import { mkdirSync } from "node:fs";

const [base, token, expectedText, shots, store, user, password] = process.argv.slice(2);
const expected = JSON.parse(expectedText);
mkdirSync(shots, { recursive: true });
const brl = (s) => { const [i, f] = s.split("."); return `BRL ${i.replace(/\B(?=(\d{3})+(?!\d))/g, ".")},${f}`; };

const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, locale: "pt-BR" });
  const page = watch(await context.newPage());
  page.on("dialog", (d) => fail(`a dialog opened: ${d.message()}`));

  const answer = await page.goto(`${base}/portal/${token}/`);
  check(answer.status() === 200, "the link opens the page");
  check((await page.locator("h1").textContent()) === "Sua assinatura", "in pt-BR");
  check((await page.locator(".customer").textContent()) === "Alfa Contabilidade", "the customer's own page");
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  check(width <= 390, `no sideways scrolling on a phone (${width}px)`);

  const form = page.locator('form.amend[data-contract="KA"]');
  // Below what is held: the page says so.
  await form.locator('input[name="SEAT"]').fill("3");
  await page.waitForSelector('form.amend[data-contract="KA"] .quote p.error', { timeout: 15000 });
  const error = await form.locator(".quote p.error").textContent();
  check(error.includes("below the 5 you hold"), `a quantity below the held one is refused: ${error}`);

  // 2 more licences and the recommended add-on, priced live.
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

  // The amendment's PDF, then the signature.
  await form.locator("button.prepare").click();
  await page.waitForSelector('form.amend[data-contract="KA"] div.sign:not([hidden])', { timeout: 15000 });
  const href = await form.locator("a.pdf").getAttribute("href");
  const pdf = await page.request.get(`${base}${href}`);
  check(pdf.status() === 200 && pdf.headers()["content-type"] === "application/pdf", `the amendment's PDF at ${href}`);
  const bytes = await pdf.body();
  check(bytes.subarray(0, 5).toString() === "%PDF-", "a real PDF");
  const { createHash } = await import("node:crypto");
  check(createHash("sha256").update(bytes).digest("hex") === await form.getAttribute("data-sha256"), "the hash signed is the PDF's");
  // Signing without the box ticked is refused on the page.
  await form.locator('input[name="signer_name"]').fill("Maria Silva");
  await form.locator('input[name="signer_email"]').fill("maria@alfa.example");
  await form.locator("button.sign").click();
  await page.waitForSelector('form.amend[data-contract="KA"] .result p.error', { timeout: 15000 });
  check((await form.locator(".result p.error").textContent()).includes("tick the box"), "the acceptance box is required");
  await form.locator('input[name="accept"]').check();
  await form.locator("button.sign").click();
  await page.waitForSelector('form.amend[data-contract="KA"][data-signed]', { timeout: 20000 });
  const applied = await form.locator(".result p.applied").textContent();
  check(applied.includes("Aditivo assinado e aplicado") && applied.includes("Fatura nº 1"), `applied: ${applied}`);
  const invoice = await page.request.get(`${base}${await form.locator("a.invoice").getAttribute("href")}`);
  check(invoice.status() === 200 && (await invoice.body()).subarray(0, 5).toString() === "%PDF-", "the invoice's PDF");
  await page.screenshot({ path: `${shots}/portal-signed-${store}.png`, fullPage: true });
  // The page read again holds the new quantities.
  await page.reload();
  check((await page.locator('form.amend[data-contract="KA"] input[name="SEAT"]').getAttribute("data-held")) === "7", "7 SEAT held now");
  check((await page.locator('form.amend[data-contract="KA"] input[name="PAYROLL"]').getAttribute("data-held")) === "1", "1 PAYROLL held now");

  // English by ?lang=en.
  await page.goto(`${base}/portal/${token}/?lang=en`);
  check((await page.locator("h1").textContent()) === "Your subscription", "in English");

  // A forged token shows nothing.
  const forged = await page.goto(`${base}/portal/${token.split(".")[0]}.${"0".repeat(52)}/`);
  check(forged.status() === 401, "a forged token is refused");
  check(!(await page.content()).includes("Alfa"), "and shows nothing");

  // Staff see it: the dashboard's widget of recent self-service amendments.
  const staff = await watchedPage(browser, { width: 1400, height: 1000 });
  await login(staff, base, user, password);
  await staff.goto(`${base}/?dashboard=portal`);
  await staff.waitForSelector("body[data-ready=true]", { timeout: 30000 });
  await staff.selectOption("#add-widget", "portal");
  await staff.click("#add");
  await staff.waitForSelector('[data-widget="portal"] tr[data-amendment]', { timeout: 15000 });
  const row = await staff.locator('[data-widget="portal"] tr[data-amendment]').first().textContent();
  check(row.includes("Maria Silva <maria@alfa.example>") && row.includes("c1 · KA") && row.includes(brl(expected.totals[0].total).replace("BRL ", "R$ ")),
    `the widget lists the signed amendment: ${row}`);
  // A link made from the widget opens Gama's page.
  await staff.fill('[data-widget="portal"] form.portal-link input[name="customer"]', "c3");
  await staff.click('[data-widget="portal"] form.portal-link button');
  await staff.waitForSelector('[data-widget="portal"] output.link[data-path]', { timeout: 15000 });
  const made = await staff.locator('[data-widget="portal"] output.link').getAttribute("data-path");
  const gama = await page.goto(`${base}${made}`);
  check(gama.status() === 200 && (await page.locator(".customer").textContent()) === "Gama SaaS", `the widget's link ${made.slice(0, 24)}… opens the customer's page`);
  await staff.fill('[data-widget="portal"] form.portal-link input[name="customer"]', "NOBODY");
  await staff.click('[data-widget="portal"] form.portal-link button');
  await staff.waitForFunction(() => document.querySelector('[data-widget="portal"] output.link').textContent.includes("NOBODY"), null, { timeout: 15000 });
  check(!(await staff.locator('[data-widget="portal"] output.link').getAttribute("data-path")), "an unknown customer gets no link");
  await staff.screenshot({ path: `${shots}/portal-widget-${store}.png` });
  console.log("portal: all checks passed");
} finally {
  await browser.close();
}

// Drives the Renewals widget in Debian's headless Chromium over the hand-checked book of
// testdata/renewals (NOTES.md): the month's gross renewal rate is the API's, with its change and
// the trail behind it (the contracts whose term ends in the month, with their outcome); the next
// renewals are listed with their value; `quote renew --apply` from a row is refused without a
// login (public reads) and recorded when logged in as an admin (USER, PASSWORD), and the desk
// then shows the contract renewed.
// Usage: node renewals.mjs BASE_URL USER PASSWORD SHOTS_DIR
import { check, fail, launch, watchedPage, login } from "./lib.mjs";
import { mkdirSync } from "node:fs";

const [base, user, password, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
const brl = (s) => { const [i, f] = s.split("."); return `R$ ${i.replace(/\B(?=(\d{3})+(?!\d))/g, ".")},${f}`; };

const browser = await launch();
try {
  const page = await watchedPage(browser, { width: 1400, height: 1100 });
  page.on("dialog", (d) => fail(`a dialog opened: ${d.message()}`));
  const widget = '[data-widget="renewals"]';
  const openDesk = async () => {
    await page.goto(`${base}/?dashboard=renewals&from=2024-09&to=2024-11`);
    await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
    await page.selectOption("#add-widget", "renewals");
    await page.click("#add");
    await page.waitForSelector(`${widget} .value`);
  };
  await openDesk();

  // The month's gross renewal rate, as the API's kpis give it, and its change.
  const kpis = await (await page.request.get(`${base}/api/v1/kpis?from=2024-10&to=2024-11`)).json();
  const [oct, nov] = kpis.months;
  check(nov.gross_renewal_rate === "0.0000" && oct.gross_renewal_rate === "1.0000", "the book's rates are the hand-checked ones");
  const value = page.locator(`${widget} .value`);
  check((await value.getAttribute("data-raw")) === nov.gross_renewal_rate, `the widget holds the API's rate ${nov.gross_renewal_rate}`);
  check((await value.textContent()) === "0,00%", "the rate is shown as 0,00%");
  const delta = await page.locator(`${widget} .delta`).textContent();
  check(delta.includes("-100,00 p.p.") && delta.includes("vs. mês anterior"), `the change from October: ${delta}`);
  const counts = await page.locator(`${widget} .counts`).textContent();
  check(counts.includes(brl(nov.renewal_arr)), `the month's ARR up for renewal ${counts}`);

  // The next renewals from the month's end, with their value.
  const desk = await (await page.request.get(`${base}/api/v1/renewals?at=2024-11-30&within=90`)).json();
  const next = desk.renewals.filter((r) => r.days_left >= 0);
  check(JSON.stringify(next.map((r) => r.contract)) === JSON.stringify(["R7", "R3", "R5"]), "the next renewals are R7, R3, R5");
  for (const r of next) {
    const row = page.locator(`${widget} tr[data-contract="${r.contract}"]`);
    check((await row.count()) === 1, `row of ${r.contract}`);
    const arr = row.locator("td[data-raw]");
    check((await arr.getAttribute("data-raw")) === r.arr && (await arr.textContent()) === brl(r.arr), `${r.contract} is worth ${brl(r.arr)}`);
  }
  check((await page.locator(`${widget} tr[data-contract="R7"] button.renew`).count()) === 0, "R7 (not priced) has no renew button");
  check((await page.locator(`${widget} tr[data-contract="R7"]`).textContent()).includes("sem cotação"), "R7 says it is not priced");
  check((await page.locator(`${widget} tr[data-contract="R3"] button.renew`).count()) === 1, "R3 (open) can be renewed");

  // The trail behind the rate: November's contracts and their outcome.
  await value.click();
  await page.waitForSelector("#trail[open] table", { timeout: 10000 });
  const trail = await page.locator("#trail-body").textContent();
  check(trail.includes("R7") && trail.includes("perdido") && trail.includes(brl("600.00")), `the trail lists R7, lost: ${trail}`);
  await page.screenshot({ path: `${shots}/renewals-trail.png` });
  await page.keyboard.press("Escape");
  await page.screenshot({ path: `${shots}/renewals-pt-BR.png`, fullPage: true });

  // Renewing R3 from its row without a login: the server refuses it, nothing changes.
  check(await page.isVisible("#login-link"), "not logged in: the bar offers to log in");
  await page.click(`${widget} tr[data-contract="R3"] button.renew`);
  await page.waitForSelector("body[data-renew-refused=R3]", { timeout: 10000 });
  const refused = page.locator(`${widget} .desk-status`);
  check((await refused.getAttribute("class")).includes("failed") && (await refused.textContent()).includes("log in"),
    `refused without a login: ${await refused.textContent()}`);
  const still = await (await page.request.get(`${base}/api/v1/renewals?at=2024-11-30&within=90`)).json();
  check(still.renewals.find((r) => r.contract === "R3").status === "open", "R3 is still open");

  // Logged in as an admin: recorded, and the desk shows R3 renewed.
  await login(page, base, user, password);
  await openDesk();
  await page.click(`${widget} tr[data-contract="R3"] button.renew`);
  await page.waitForSelector("body[data-renewed=R3]", { timeout: 20000 });
  await page.waitForSelector(`${widget} tr[data-contract="R3"][data-status="renewed"]`, { timeout: 10000 });
  check((await page.locator(`${widget} tr[data-contract="R3"] button.renew`).count()) === 0, "R3 has no renew button any more");
  check((await page.locator(`${widget} .desk-status`).textContent()).startsWith("Renovado: evento "), "the widget says the event");
  // The live update the renewal sets off re-renders the widgets: the message stays.
  await page.waitForSelector("#live[data-event]", { timeout: 15000 });
  check((await page.locator(`${widget} .desk-status`).textContent()).startsWith("Renovado: evento "), "the message outlives the live update");
  const after = await (await page.request.get(`${base}/api/v1/renewals?at=2024-11-30&within=90`)).json();
  const r3 = after.renewals.find((r) => r.contract === "R3");
  check(r3.status === "renewed" && r3.renewed_arr === "2100.00" && r3.renewal_contracts[0] === "R3-R20241216",
    `the API has R3 renewed by R3-R20241216 at ${r3.renewed_arr}`);
  const events = await (await page.request.get(`${base}/api/v1/events`)).json();
  check(events.some((e) => JSON.stringify(e).includes("renew contract R3")), "the renewal is an event of the log");

  // English.
  await page.selectOption("#lang", "en");
  check((await page.locator(`${widget} .month`).textContent()).includes("Gross renewal rate"), "English labels");
  check((await page.locator(`${widget} tr[data-contract="R3"]`).textContent()).includes("renewed"), "English status");
  await page.screenshot({ path: `${shots}/renewals-en.png`, fullPage: true });
  console.log("renewals: all checks passed");
} finally {
  await browser.close();
}

// Logs `page` in through the login page as USER with PASSWORD and waits for the dashboard to be
// ready (the browser tests act as people do: with a session, not an API key).
export async function login(page, base, user, password) {
  await page.goto(`${base}/login`);
  await page.fill("#login-user", user);
  await page.fill("#login-password", password);
  await page.click("#login-submit");
  await page.waitForSelector("body[data-ready=true]", { timeout: 30000 });
}

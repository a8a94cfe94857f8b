// Keeps the admin dashboard open in Debian's headless Chromium for a while, as an operator
// would while load runs (used by bench/dashboard-load). Prints one JSON line: how many times
// the page refreshed, the highest and last requests/s it showed, and any console errors.
// Usage: node watch-dashboard.mjs ADMIN_URL SECONDS [TOKEN]
import { chromium } from "playwright-core";

const [admin, seconds, token] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"],
});
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors = [];
page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
let refreshes = 0;
page.on("response", (r) => r.url().includes("/admin/history") && refreshes++);
await page.goto(admin + "/");
if (token) {
  await page.fill("#token", token);
  await page.click("#token-form button[type=submit]");
}
let highest = 0;
let last = 0;
const until = Date.now() + Number(seconds) * 1000;
while (Date.now() < until) {
  await page.waitForTimeout(1000);
  const text = (await page.locator("#rps").textContent()) || "0";
  last = parseFloat(text) * (text.endsWith("k") ? 1000 : 1);
  highest = Math.max(highest, last);
}
await browser.close();
console.log(JSON.stringify({ refreshes, highest_rps_shown: highest, last_rps_shown: last, console_errors: errors }));

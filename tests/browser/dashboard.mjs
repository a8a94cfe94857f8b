// Drives Debian's headless Chromium through the admin dashboard of a running gateway while
// load runs through its public listener. Called by tests/e2e/gateway/dashboard.rs, which
// starts the gateway (admin token set, Redis unreachable) and reads this script's exit code
// and its last line (JSON). Every check that fails is listed; the exit code is 1 then.
//
// Environment: SLUICE_ADMIN and SLUICE_PUBLIC (http://host:port), SLUICE_TOKEN (the admin
// token), SLUICE_API_KEY (a key the auth route accepts), SCREENSHOT_DIR, CHROMIUM (the
// browser binary).
import { chromium } from "playwright-core";

const admin = process.env.SLUICE_ADMIN;
const pub = process.env.SLUICE_PUBLIC;
const token = process.env.SLUICE_TOKEN;
const apiKey = process.env.SLUICE_API_KEY;
const shots = process.env.SCREENSHOT_DIR;
const failures = [];
const facts = {};

function check(ok, what) {
  if (!ok) failures.push(what);
  return ok;
}

// Keeps `concurrency` requests going through the gateway until `stop.done` is set.
async function load(stop, concurrency) {
  let sent = 0;
  const one = async (i) => {
    while (!stop.done) {
      const path = i % 4 === 0 ? "/private/echo" : i % 4 === 1 ? "/nofresh" : `/fresh/item-${sent % 50}`;
      // The private route's caller presents the key three times in four (the rest are denied).
      const headers = path.startsWith("/private") && sent % 4 !== 0 ? { "x-api-key": apiKey } : {};
      try {
        const r = await fetch(pub + path, { headers });
        await r.arrayBuffer();
      } catch {
        // A refused request counts as sent; the gateway's own answer is what is measured.
      }
      sent++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, i) => one(i)));
  return sent;
}

async function figure(page, id) {
  const text = await page.locator("#" + id).textContent();
  const n = parseFloat(text);
  return text.endsWith("k") ? n * 1000 : n;
}

async function cacheStatus(path) {
  const r = await fetch(pub + path);
  await r.arrayBuffer();
  return r.headers.get("cache-status") || "";
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-dev-shm-usage"],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  const tokenLeaks = [];
  const unauthenticated = [];
  page.on("request", (r) => {
    if (token && r.url().includes(token)) tokenLeaks.push(r.url());
    const path = new URL(r.url()).pathname;
    if (path.startsWith("/admin/") && r.headers().authorization !== "Bearer " + token) unauthenticated.push(path);
  });

  await page.goto(admin + "/");
  await page.locator("#token-form").waitFor({ state: "visible", timeout: 10000 });
  await page.fill("#token", token);
  await page.click("#token-form button[type=submit]");
  await page.locator("#dashboard").waitFor({ state: "visible", timeout: 10000 });
  check(!page.url().includes(token), "the token never appears in the page's URL");
  check(!(await page.locator("#token-form").isVisible()), "the token form is gone once the token is taken");

  await page.waitForFunction(() => document.querySelector("#updated").textContent !== "", null, { timeout: 10000 });
  facts.rps_before = await figure(page, "rps");

  const stop = { done: false };
  const running = load(stop, 4);
  const rose = await page
    .waitForFunction(() => parseFloat(document.querySelector("#rps").textContent) >= 20, null, { timeout: 20000 })
    .then(() => true, () => false);
  facts.rps_under_load = await figure(page, "rps");
  check(rose && facts.rps_under_load > facts.rps_before, `the request rate rises under load (${facts.rps_before} → ${facts.rps_under_load})`);
  await page.waitForFunction(() => document.querySelectorAll("#hooks-table tbody tr td.num").length > 0, null, { timeout: 10000 })
    .catch(() => check(false, "the hooks table lists the plugins' hooks under load"));
  await page.waitForFunction(() => /[1-9]/.test(document.querySelector("#auth-table tbody").textContent), null, { timeout: 10000 })
    .catch(() => check(false, "the auth table counts decisions"));
  facts.auth_table = await page.locator("#auth-table tbody").innerText();
  check(facts.auth_table.includes("missing_credentials") && /allow\s+ok/.test(facts.auth_table), `auth decisions are listed by reason (${facts.auth_table})`);
  await page.waitForFunction(() => /[1-9]/.test(document.querySelector("#cache-ratio").textContent), null, { timeout: 10000 })
    .catch(() => {});
  facts.cache_hit_ratio = await page.locator("#cache-ratio").textContent();
  check(/^[1-9]\d*%$/.test(facts.cache_hit_ratio), `the cache hit ratio shows the hits (${facts.cache_hit_ratio})`);
  await page.waitForFunction(() => /gpu-a/.test(document.querySelector("#gpu-table tbody").textContent), null, { timeout: 15000 })
    .catch(() => {});
  facts.gpu_shown = await page.locator("#gpu").isVisible();
  facts.gpu_table = await page.locator("#gpu-table tbody").innerText();
  facts.gpu_loads = await page.locator("#gpu-loads").textContent();
  check(facts.gpu_shown && facts.gpu_table.includes("gpu-a") && facts.gpu_table.includes("m-cold"), `the GPU fleet is shown (${facts.gpu_table})`);
  check(Number(facts.gpu_loads) >= 1, `the cold load is counted (${facts.gpu_loads})`);
  facts.reloads_table = await page.locator("#reloads-table tbody").innerText();
  check(facts.reloads_table.includes("startup"), `the reloads are listed (${facts.reloads_table})`);
  await page.screenshot({ path: `${shots}/dashboard.png`, fullPage: true });
  stop.done = true;
  facts.requests_sent = await running;

  facts.status = await page.locator("#status").textContent();
  facts.redis = await page.locator("#dep-redis .badge").textContent();
  check(facts.status === "degraded", `the gateway shows as degraded (shown: ${facts.status})`);
  check(facts.redis === "down", `Redis shows as down (shown: ${facts.redis})`);

  await cacheStatus("/fresh/dashboard-page");
  const before = await cacheStatus("/fresh/dashboard-page");
  check(before.includes("hit"), `the second fetch is a cache hit (${before})`);
  await page.fill("#invalidate-target", "/fresh/dashboard-page");
  await page.click("#invalidate-form button[type=submit]");
  await page.waitForFunction(() => /dropped/.test(document.querySelector("#invalidate-result").textContent), null, { timeout: 10000 })
    .catch(() => {});
  facts.invalidate_result = await page.locator("#invalidate-result").textContent();
  check(/: 1 entry dropped/.test(facts.invalidate_result), `the form drops the entry (${facts.invalidate_result})`);
  const after = await cacheStatus("/fresh/dashboard-page");
  check(!after.includes("hit") && after.includes("fwd="), `after the form, the next fetch goes upstream (${after})`);

  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(2500);
  facts.narrow_overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(facts.narrow_overflow <= 0, `nothing overflows a 390 px screen (by ${facts.narrow_overflow} px)`);
  await page.screenshot({ path: `${shots}/dashboard-narrow.png`, fullPage: true });

  check(consoleErrors.length === 0, `no console errors: ${JSON.stringify(consoleErrors)}`);
  check(tokenLeaks.length === 0, `the token is never in a URL: ${JSON.stringify(tokenLeaks)}`);
  check(unauthenticated.length === 0, `every admin call carries the token: ${JSON.stringify(unauthenticated)}`);
  await browser.close();
}

main()
  .catch((e) => failures.push("the script failed: " + (e && e.stack ? e.stack : e)))
  .finally(() => {
    console.log(JSON.stringify({ failures, facts }));
    process.exit(failures.length ? 1 : 0);
  });

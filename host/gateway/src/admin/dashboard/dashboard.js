// The Sluice dashboard: reads the admin API every few seconds and draws what it says.
// Data: /admin/history (per-second samples, 15 minutes, fetched incrementally), /admin/ready,
// /admin/stats, /admin/gpu, /admin/reloads, /admin/config. With an admin token configured the
// page asks for it once, keeps it in this tab's sessionStorage and sends it as a header.
"use strict";

const REFRESH_MS = 2000;
const SLOW_EVERY = 5; // reloads, config and GPU every fifth refresh
const TOKEN_KEY = "sluice-admin-token";
const $ = (id) => document.getElementById(id);
const samples = [];
let lastT = 0;
let round = 0;
let timer = null;

class Unauthorized extends Error {}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

async function api(path, init = {}) {
  const headers = Object.assign({ accept: "application/json" }, init.headers || {});
  if (token()) headers.authorization = "Bearer " + token();
  const resp = await fetch(path, Object.assign({}, init, { headers, cache: "no-store" }));
  if (resp.status === 401) throw new Unauthorized("the admin token was refused");
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(`${path}: ${resp.status} ${body.message || body.error || ""}`);
  return body;
}

function cell(row, text, numeric) {
  const td = document.createElement("td");
  td.textContent = text === undefined || text === null ? "-" : String(text);
  if (numeric) td.className = "num";
  row.append(td);
  return td;
}

function badge(text) {
  const span = document.createElement("span");
  span.className = "badge " + String(text).replace(/[^a-z-]/g, "");
  span.textContent = text;
  return span;
}

function fillTable(id, rows, render) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  for (const r of rows) {
    const tr = document.createElement("tr");
    render(tr, r);
    body.append(tr);
  }
  if (rows.length === 0) {
    const tr = document.createElement("tr");
    cell(tr, "none yet").colSpan = $(id).tHead.rows[0].cells.length;
    body.append(tr);
  }
}

const ms = (v) => (v === null || v === undefined ? "-" : v < 10 ? v.toFixed(2) : v.toFixed(0));
// The gateway's clock, not the browser's: the last sample's time.
const now = () => (samples.length ? samples[samples.length - 1].t : Date.now() / 1000);
const since = (secs) => samples.filter((s) => s.t > now() - secs);

function drawOverview() {
  const last = samples[samples.length - 1];
  if (!last) return;
  const sum = (a) => a.reduce((x, y) => x + y, 0);
  $("rps").textContent = SluiceCharts.format(sum(last.status));
  $("p99").textContent = ms(last.latency_ms && last.latency_ms.p99);
  $("in-flight").textContent = last.in_flight;
  $("errors").textContent = last.status[4];
  const classes = [["2xx", "#1a7f37"], ["3xx", "#2457c5"], ["4xx", "#b35900"], ["5xx", "#c62828"], ["1xx", "#6b4fbb"]];
  const status = classes.map(([name, color]) => ({
    name, color, points: samples.map((s) => [s.t, s.status[Number(name[0]) - 1]]),
  }));
  SluiceCharts.line($("chart-status"), { now: now(), series: status, unit: "/s" });
  SluiceCharts.legend($("legend-status"), status);
  const latency = [["p50", "#2457c5"], ["p95", "#b35900"], ["p99", "#c62828"]].map(([name, color]) => ({
    name, color, points: samples.filter((s) => s.latency_ms).map((s) => [s.t, s.latency_ms[name]]),
  }));
  SluiceCharts.line($("chart-latency"), { now: now(), series: latency, unit: "ms" });
  SluiceCharts.legend($("legend-latency"), latency);
  const flight = [{ name: "in flight", color: "#14213d", points: samples.map((s) => [s.t, s.in_flight]) }];
  SluiceCharts.line($("chart-in-flight"), { now: now(), series: flight });
  SluiceCharts.legend($("legend-in-flight"), flight);
}

function drawCacheAndDecisions(history) {
  const minute = since(60);
  const hits = minute.reduce((n, s) => n + s.cache_hits, 0);
  const misses = minute.reduce((n, s) => n + s.cache_misses, 0);
  const last = samples[samples.length - 1] || {};
  $("cache-ratio").textContent = hits + misses ? (100 * hits / (hits + misses)).toFixed(0) + "%" : "-";
  $("cache-bytes").textContent = SluiceCharts.bytes(last.cache_bytes || 0);
  $("cache-entries").textContent = last.cache_entries || 0;
  $("cache-evictions").textContent = samples.reduce((n, s) => n + s.cache_evictions, 0);
  const ratio = samples.filter((s) => s.cache_hits + s.cache_misses > 0)
    .map((s) => [s.t, 100 * s.cache_hits / (s.cache_hits + s.cache_misses)]);
  SluiceCharts.line($("chart-cache"), { now: now(), series: [{ name: "hit %", color: "#1a7f37", points: ratio }], max: 100, unit: "%" });
  const decisions = [
    ["limits allowed", "#1a7f37", "limits_allowed"], ["limits denied", "#c62828", "limits_denied"],
    ["auth allowed", "#2457c5", "auth_allowed"], ["auth denied", "#b35900", "auth_denied"],
  ].map(([name, color, key]) => ({ name, color, points: samples.map((s) => [s.t, s[key]]) }));
  SluiceCharts.line($("chart-decisions"), { now: now(), series: decisions, unit: "/s" });
  SluiceCharts.legend($("legend-decisions"), decisions);
  const totals = history.totals || {};
  fillTable("limits-table", totals.sluice_ratelimit_decisions_total || [], (tr, r) => {
    cell(tr, r.labels.plugin); cell(tr, r.labels.mode); cell(tr, r.labels.result); cell(tr, r.value, true);
  });
  fillTable("auth-table", totals.sluice_audit_events_total || [], (tr, r) => {
    cell(tr, r.labels.plugin); cell(tr, r.labels.outcome); cell(tr, r.labels.reason); cell(tr, r.value, true);
  });
  fillTable("failures-table", totals.sluice_plugin_failures_total || [], (tr, r) => {
    cell(tr, r.labels.plugin); cell(tr, r.labels.kind); cell(tr, r.labels.policy); cell(tr, r.value, true);
  });
  const loads = (totals.sluice_gpu_model_loads_total || []).reduce((n, r) => n + r.value, 0);
  $("gpu-loads").textContent = loads;
}

function drawRoutes(stats) {
  const minute = since(60);
  const perRoute = {};
  const perHook = {};
  for (const s of minute) {
    for (const r of s.routes) {
      const e = perRoute[r.route] || (perRoute[r.route] = { requests: 0, p99: null });
      e.requests += r.requests;
      if (r.latency_ms) e.p99 = Math.max(e.p99 || 0, r.latency_ms.p99);
    }
    for (const h of s.hooks) {
      const key = h.plugin + " " + h.hook;
      const e = perHook[key] || (perHook[key] = { plugin: h.plugin, hook: h.hook, calls: 0, p99: null });
      e.calls += h.calls;
      if (h.p99_ms !== null) e.p99 = Math.max(e.p99 || 0, h.p99_ms);
    }
  }
  const seconds = Math.max(minute.length, 1);
  fillTable("routes-table", stats.routes, (tr, r) => {
    const e = perRoute[r.name] || { requests: 0, p99: null };
    cell(tr, r.name); cell(tr, r.upstream);
    cell(tr, r.plugins.map((p) => p.plugin).join(" → ") || "(none)");
    cell(tr, (e.requests / seconds).toFixed(1), true); cell(tr, ms(e.p99), true);
  });
  const plugins = stats.routes.flatMap((r) => r.plugins.map((p) => Object.assign({ route: r.name }, p)));
  fillTable("plugins-table", plugins, (tr, p) => {
    cell(tr, p.route); cell(tr, p.plugin);
    cell(tr, `${p.idle_instances} / ${p.busy_instances} / ${p.max_instances}`, true); cell(tr, p.fail);
  });
  const hooks = Object.values(perHook).sort((a, b) => b.calls - a.calls);
  fillTable("hooks-table", hooks, (tr, h) => {
    cell(tr, h.plugin); cell(tr, h.hook); cell(tr, (h.calls / seconds).toFixed(1), true); cell(tr, ms(h.p99), true);
  });
  const targets = stats.upstreams.flatMap((u) => u.targets.map((t) => Object.assign({ upstream: u.name }, t)));
  fillTable("upstreams-table", targets, (tr, t) => {
    cell(tr, t.upstream); cell(tr, t.target);
    cell(tr, "").append(badge(t.healthy ? "up" : "down"));
    cell(tr, "").append(badge(t.breaker_open ? "open" : "closed"));
    cell(tr, t.in_flight, true); cell(tr, (100 * t.connection_reuse_rate).toFixed(0) + "%", true);
  });
}

function drawReadiness(ready) {
  const status = $("status");
  status.textContent = ready.status;
  status.className = "badge " + ready.status;
  const deps = ready.dependencies;
  const list = $("dependency-list");
  list.replaceChildren();
  const add = (name, dep, detail) => {
    const li = document.createElement("li");
    li.id = "dep-" + name.replace(/[^a-z0-9]+/gi, "-");
    const left = document.createElement("span");
    left.textContent = name + " ";
    const extra = document.createElement("span");
    extra.className = "detail";
    extra.textContent = detail || dep.error || "";
    left.append(extra);
    li.append(left, badge(dep.state));
    list.append(li);
  };
  add("postgres", deps.postgres, deps.postgres.pool && `pool ${deps.postgres.pool.in_use}/${deps.postgres.pool.max} in use`);
  add("redis", deps.redis, deps.redis.breaker_open ? "breaker open" : "");
  add("sinks", deps.sinks, deps.sinks.queued !== undefined && `${deps.sinks.queued} queued, ${SluiceCharts.bytes(deps.sinks.spilled_bytes || 0)} spilled`);
  add("kv", deps.kv, deps.kv.backend);
  add("cache", deps.cache, deps.cache.backend);
  add("ratelimit", deps.ratelimit, deps.ratelimit.backend || "");
  for (const [name, u] of Object.entries(deps.upstreams)) {
    add("upstream " + name, u, `${u.available_targets}/${u.targets} targets available`);
  }
  const mode = $("limit-mode");
  mode.textContent = deps.ratelimit.state;
  mode.className = "badge " + deps.ratelimit.state;
}

// The fleet card's figures and table (from /admin/gpu, read every fifth refresh).
function drawGpu(gpu) {
  if (gpu.state === "not-configured") return;
  $("gpu").hidden = false;
  $("gpu-waiting").textContent = gpu.queue.waiting;
  $("gpu-leases").textContent = gpu.leases.filter((l) => l.state === "granted").length;
  const waiting = Object.entries(gpu.queue.by_priority).sort((a, b) => Number(a[0]) - Number(b[0]));
  $("gpu-queue").textContent = "Waiting by priority: " +
    (waiting.map(([p, n]) => `P${p} ${n}`).join(", ") || "none") + ` (capacity ${gpu.queue.capacity})`;
  fillTable("gpu-table", gpu.backends.filter((b) => !b.retired), (tr, b) => {
    cell(tr, b.name); cell(tr, "").append(badge(b.healthy ? "up" : "down"));
    cell(tr, `${b.gpus_taken}/${b.gpus}`, true); cell(tr, `${b.memory_taken_mb}/${b.memory_mb}`, true);
    cell(tr, b.in_flight, true); cell(tr, b.resident.join(", ") || "none");
  });
}

function drawReloads(reloads, config) {
  fillTable("reloads-table", reloads.reloads, (tr, r) => {
    cell(tr, new Date(r.at_unix * 1000).toLocaleString()); cell(tr, r.trigger);
    cell(tr, "").append(badge(r.ok ? "ok" : "error")); cell(tr, r.error || "");
  });
  $("config-origin").textContent = config.origin;
  $("config-text").textContent = config.toml;
}

async function refresh() {
  const history = await api("/admin/history?since=" + lastT);
  for (const s of history.samples) samples.push(s);
  if (samples.length) lastT = samples[samples.length - 1].t;
  while (samples.length > history.capacity) samples.shift();
  const [ready, stats] = await Promise.all([api("/admin/ready"), api("/admin/stats")]);
  $("dashboard").hidden = false; // before drawing: charts take their size from the layout
  drawOverview();
  drawCacheAndDecisions(history);
  drawRoutes(stats);
  drawReadiness(ready);
  if (round++ % SLOW_EVERY === 0) {
    const [gpu, reloads, config] = await Promise.all([api("/admin/gpu"), api("/admin/reloads"), api("/admin/config")]);
    drawGpu(gpu);
    drawReloads(reloads, config);
  }
  if (!$("gpu").hidden) {
    const queued = samples.map((s) => [s.t, s.gpu_waiting]);
    SluiceCharts.line($("chart-gpu"), { now: now(), series: [{ name: "queued", color: "#6b4fbb", points: queued }] });
  }
  $("updated").textContent = "updated " + new Date().toLocaleTimeString();
}

async function loop() {
  try {
    await refresh();
    $("banner").hidden = true;
  } catch (e) {
    if (e instanceof Unauthorized) return askForToken(token() ? "That token was refused." : "");
    $("banner").textContent = "Cannot read the admin API: " + e.message + " (retrying)";
    $("banner").hidden = false;
  }
  timer = setTimeout(loop, REFRESH_MS);
}

function askForToken(message) {
  clearTimeout(timer);
  sessionStorage.removeItem(TOKEN_KEY);
  $("dashboard").hidden = true;
  $("token-form").hidden = false;
  $("banner").textContent = message;
  $("banner").hidden = !message;
  $("token").focus();
}

function start() {
  $("token-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value);
    $("token").value = "";
    $("token-form").hidden = true;
    $("forget-token").hidden = false;
    round = 0;
    loop();
  });
  $("forget-token").addEventListener("click", () => askForToken(""));
  $("invalidate-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const target = $("invalidate-target").value.trim();
    try {
      const r = await api("/admin/cache/invalidate", {
        method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ target }),
      });
      $("invalidate-result").textContent = `${target}: ${r.dropped} entr${r.dropped === 1 ? "y" : "ies"} dropped`;
    } catch (e) {
      $("invalidate-result").textContent = `${target}: ${e.message}`;
    }
  });
  const required = document.querySelector('meta[name="sluice-token-required"]').content === "true";
  if (required && !token()) return askForToken("");
  $("forget-token").hidden = !required;
  loop();
}

document.addEventListener("DOMContentLoaded", start);

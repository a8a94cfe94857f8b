// Small hand-written SVG time-series charts for the Sluice dashboard (no library).
// SluiceCharts.line(svg, options) draws lines over the last `span` seconds ending at `now`
// (by default the data's own age, at least a minute and at most the 15 minutes kept):
//   options.series: [{ name, color, points: [[unixSeconds, value], ...] }]
//   options.unit: appended to the axis labels; options.max: a fixed top (else the data's).
"use strict";

const SluiceCharts = (() => {
  const NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  // A round number at or above `v`, so the axis reads 1, 2, 5, 10, 20, 50...
  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  function format(v, unit) {
    const text = v >= 1e9 ? (v / 1e9).toFixed(1) + "G" : v >= 1e6 ? (v / 1e6).toFixed(1) + "M"
      : v >= 1e4 ? (v / 1e3).toFixed(0) + "k" : v >= 10 ? v.toFixed(0) : v >= 1 ? v.toFixed(1) : v.toPrecision(2);
    return unit ? text + " " + unit : text;
  }

  function line(svg, options) {
    const width = Math.max(svg.clientWidth, 200);
    const height = Math.max(svg.clientHeight, 80);
    const pad = { left: 44, right: 6, top: 8, bottom: 16 };
    svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
    svg.replaceChildren();
    const now = options.now || Date.now() / 1000;
    let oldest = now;
    for (const s of options.series) if (s.points.length) oldest = Math.min(oldest, s.points[0][0]);
    const span = options.span || Math.min(900, Math.max(60, now - oldest));
    let top = options.max || 0;
    if (!options.max) {
      for (const s of options.series) for (const [, v] of s.points) if (v > top) top = v;
      top = niceCeil(top);
    }
    const x = (t) => pad.left + (width - pad.left - pad.right) * (1 - (now - t) / span);
    const y = (v) => pad.top + (height - pad.top - pad.bottom) * (1 - Math.min(v, top) / top);
    for (const frac of [0, 0.5, 1]) {
      const gy = y(top * frac);
      svg.append(el("line", { x1: pad.left, x2: width - pad.right, y1: gy, y2: gy, class: "grid" }));
      svg.append(el("text", { x: pad.left - 4, y: gy + 3, "text-anchor": "end" }, format(top * frac, options.unit)));
    }
    const ago = span >= 120 ? `-${Math.round(span / 60)} min` : `-${Math.round(span)} s`;
    svg.append(el("text", { x: pad.left, y: height - 3 }, ago));
    svg.append(el("text", { x: width - pad.right, y: height - 3, "text-anchor": "end" }, "now"));
    for (const s of options.series) {
      const points = s.points.filter(([t]) => now - t <= span);
      if (points.length === 0) continue;
      const d = points.map(([t, v], i) => `${i ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`).join("");
      svg.append(el("path", { d, class: "series", stroke: s.color }));
    }
  }

  // Fills `container` with one swatch and name per series.
  function legend(container, series) {
    container.replaceChildren();
    for (const s of series) {
      const item = document.createElement("span");
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = s.color;
      item.append(swatch, s.name);
      container.append(item);
    }
  }

  // A byte count in B, kB, MB or GB.
  function bytes(n) {
    const units = ["B", "kB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
    return (i === 0 || n >= 100 ? n.toFixed(0) : n.toFixed(1)) + " " + units[i];
  }

  return { line, legend, format, bytes };
})();

// Small SVG line charts for the sweep page: per-epoch curves with integer epoch ticks, a legend, and a
// marked (selected) epoch per series. No library: the UI ships every asset and works offline.
"use strict";
window.serCharts = (function () {
  const SVG = "http://www.w3.org/2000/svg";
  const PALETTE = ["#3056d3", "#e0602b", "#2e9d5b", "#c43d7b", "#8a5cd1", "#c99a06", "#1a9bb0", "#6b7385",
    "#a0522d", "#5f8f00"];

  function el(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceStep(raw) {
    const base = 10 ** Math.floor(Math.log10(raw || 1));
    for (const m of [1, 2, 5, 10]) if (m * base >= raw) return m * base;
    return 10 * base;
  }

  // series: [{name, colour, dash, points: [[epoch, value], ...], mark: epoch | null}]
  function lineChart({ series, title, xLabel = "epoch", yLabel = "", yRange = null, width = 560 }) {
    const W = width, H = 300, L = 56, R = 14, T = 28, B = 44;
    const longest = Math.max(0, ...series.map((s) => s.name.length));
    const cols = longest > 34 ? 1 : longest > 16 ? 2 : 3;
    const legendRows = Math.ceil(series.length / cols);
    const height = H + 18 * legendRows;
    const svg = el("svg", { viewBox: `0 0 ${W} ${height}`, role: "img", "aria-label": title || yLabel,
      class: "line-chart" });
    const all = series.flatMap((s) => s.points);
    const xs = all.map((p) => p[0]), ys = all.map((p) => p[1]);
    const x0 = Math.min(1, ...xs), x1 = Math.max(x0 + 1, ...xs);
    let [y0, y1] = yRange || [Math.min(...ys), Math.max(...ys)];
    if (!Number.isFinite(y0) || !Number.isFinite(y1)) [y0, y1] = [0, 1];
    if (y1 - y0 < 1e-9) { y0 -= 0.5; y1 += 0.5; }
    const pad = yRange ? 0 : 0.06 * (y1 - y0);
    y0 -= pad; y1 += pad;
    const x = (v) => L + (W - L - R) * ((v - x0) / (x1 - x0));
    const y = (v) => T + (H - T - B) * (1 - (v - y0) / (y1 - y0));
    if (title) svg.appendChild(el("text", { x: L, y: 16, class: "chart-title" }, title));
    const yStep = niceStep((y1 - y0) / 5);
    for (let v = Math.ceil(y0 / yStep) * yStep; v <= y1 + 1e-12; v += yStep) {
      svg.appendChild(el("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e2e5eb" }));
      svg.appendChild(el("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "tick" },
        +v.toFixed(6) + ""));
    }
    const xStep = Math.max(1, Math.ceil(niceStep((x1 - x0) / 10))); // epochs are whole numbers
    for (let v = Math.ceil(x0); v <= x1; v += xStep) {
      svg.appendChild(el("line", { x1: x(v), x2: x(v), y1: H - B, y2: H - B + 4, stroke: "#9aa1b0" }));
      svg.appendChild(el("text", { x: x(v), y: H - B + 16, "text-anchor": "middle", class: "tick xtick" }, `${v}`));
    }
    svg.appendChild(el("line", { x1: L, x2: W - R, y1: H - B, y2: H - B, stroke: "#9aa1b0" }));
    svg.appendChild(el("text", { x: (L + W - R) / 2, y: H - 6, "text-anchor": "middle", class: "axis-title" }, xLabel));
    svg.appendChild(el("text", { x: 12, y: (T + H - B) / 2, "text-anchor": "middle", class: "axis-title",
      transform: `rotate(-90 12 ${(T + H - B) / 2})` }, yLabel));
    series.forEach((s, i) => {
      const colour = s.colour || PALETTE[i % PALETTE.length];
      const pts = s.points.map(([a, b]) => `${x(a).toFixed(1)},${y(b).toFixed(1)}`).join(" ");
      const line = el("polyline", { points: pts, fill: "none", stroke: colour, "stroke-width": 2,
        "stroke-dasharray": s.dash ? "6 4" : "none", class: "series", "data-name": s.name });
      line.appendChild(el("title", {}, s.name));
      svg.appendChild(line);
      for (const [a, b] of s.points) {
        const dot = el("circle", { cx: x(a), cy: y(b), r: 2.6, fill: colour });
        dot.appendChild(el("title", {}, `${s.name}, epoch ${a}: ${(+b).toPrecision(4)}`));
        svg.appendChild(dot);
      }
      const marked = s.mark != null ? s.points.find((p) => p[0] === s.mark) : null;
      if (marked) {
        svg.appendChild(el("line", { x1: x(marked[0]), x2: x(marked[0]), y1: T, y2: H - B, stroke: colour,
          "stroke-dasharray": "2 3", class: "selected-epoch" }));
        const ring = el("circle", { cx: x(marked[0]), cy: y(marked[1]), r: 6.5, fill: "none", stroke: colour,
          "stroke-width": 2, class: "selected-epoch-ring" });
        ring.appendChild(el("title", {}, `${s.name}: selected epoch ${marked[0]} (${(+marked[1]).toPrecision(4)})`));
        svg.appendChild(ring);
      }
      const lx = L + (i % cols) * ((W - L) / cols), ly = H + 4 + 18 * Math.floor(i / cols);
      svg.appendChild(el("line", { x1: lx, x2: lx + 22, y1: ly, y2: ly, stroke: colour, "stroke-width": 2.5,
        "stroke-dasharray": s.dash ? "6 4" : "none" }));
      svg.appendChild(el("text", { x: lx + 28, y: ly + 4, class: "legend-label" }, s.name));
    });
    return svg;
  }

  return { lineChart, PALETTE };
})();

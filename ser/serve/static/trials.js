// Sweep page: a leaderboard row opens its trial (train/val curves per epoch with the selected epoch
// marked, searched values, what differs from the base recipe, the full config); ticked rows are compared
// on one plot. Each trial's data is trials/<id>.json, written by the sweep's summary.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const table = $("leaderboard");
  if (!table || !$("trial-view") || !window.serCharts) return;
  const { lineChart, PALETTE } = window.serCharts;
  const cache = new Map();
  const compared = []; // trial ids, in the order they were ticked
  let open = null;

  function load(url) {
    if (!cache.has(url)) {
      cache.set(url, fetch(url).then((r) => {
        if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
        return r.json();
      }));
    }
    return cache.get(url);
  }

  const fmt = (v) => (typeof v === "number" && !Number.isInteger(v) ? (+v.toPrecision(4)).toString()
    : v === null || v === undefined ? "—" : typeof v === "object" ? JSON.stringify(v) : String(v));
  const points = (t, key) => t.history.filter((h) => typeof h[key] === "number").map((h) => [h.epoch, h[key]]);
  const searchedText = (t) => Object.entries(t.searched || {})
    .map(([k, v]) => `${k.split(".").pop()}=${fmt(v)}`).join(", ");

  function rows(tableNode, entries) {
    tableNode.replaceChildren(...entries.map((cells) => {
      const tr = document.createElement("tr");
      cells.forEach((c, i) => {
        const cell = document.createElement(i === 0 ? "th" : "td");
        if (i === 0) {
          const code = document.createElement("code");
          code.textContent = c;
          cell.appendChild(code);
        } else {
          cell.textContent = fmt(c);
        }
        tr.appendChild(cell);
      });
      return tr;
    }));
  }

  // ----------------------------------------------------------------------------------- one trial
  function pair(t, name, colour) {
    return [["train", true], ["val", false]].map(([split, dash]) => ({
      name: `${split}/${name}`, colour: dash ? "#9aa1b0" : colour, dash, points: points(t, `${split}/${name}`),
      mark: split === "val" ? t.best_epoch : null,
    })).filter((s) => s.points.length);
  }

  async function show(tr) {
    const view = $("trial-view");
    if (open === tr) { close(); return; }
    let t;
    try {
      t = await load(tr.dataset.trialUrl);
    } catch (err) {
      view.hidden = false;
      $("trial-summary").textContent = `could not load: ${err.message}`;
      return;
    }
    if (open) open.classList.remove("open");
    open = tr;
    tr.classList.add("open");
    view.hidden = false;
    $("trial-id").textContent = t.trial_id;
    const best = t.best === null || t.best === undefined ? "no score" : `best ${t.metric} ${fmt(t.best)}`;
    $("trial-summary").textContent =
      `${t.status} · ${t.epochs} epoch${t.epochs === 1 ? "" : "s"} · ${best}` +
      (t.best_epoch ? ` at epoch ${t.best_epoch} (marked)` : "");
    const name = String(t.metric || "val/uar").split("/").pop();
    const other = name === "loss" ? "uar" : name;
    $("trial-loss").replaceChildren(lineChart({ series: pair(t, "loss", PALETTE[1]), title: "loss", yLabel: "loss" }));
    $("trial-metric").replaceChildren(lineChart({ series: pair(t, other, PALETTE[0]), title: other,
      yLabel: other, yRange: ["uar", "wa", "f1"].includes(other) ? [0, 1] : null }));
    const searched = t.searched || {};
    rows($("trial-searched"), Object.entries(searched));
    const others = (t.changes || []).filter((c) => !(c.key in searched));
    if (others.length) {
      rows($("trial-changes"), others.map((c) => [c.key, c.base, c.value]));
      const head = document.createElement("tr");
      head.innerHTML = '<th></th><th class="muted">base</th><th class="muted">this trial</th>';
      $("trial-changes").prepend(head);
    } else {
      const none = document.createElement("tr");
      none.innerHTML = '<td class="muted small">none: only the searched values differ</td>';
      $("trial-changes").replaceChildren(none);
    }
    $("trial-config").textContent = t.config || "(no config: the trial's parameters did not build one)";
    view.scrollIntoView({ block: "nearest" });
  }

  function close() {
    if (open) open.classList.remove("open");
    open = null;
    $("trial-view").hidden = true;
  }

  // --------------------------------------------------------------------------------- comparison
  async function drawComparison() {
    const card = $("compare-view");
    card.hidden = compared.length === 0;
    if (!compared.length) return;
    const trials = await Promise.all(compared.map((id) => load(urlOf(id))));
    const select = $("compare-metric");
    const keys = [...new Set(trials.flatMap((t) => t.history.flatMap((h) => Object.keys(h))))]
      .filter((k) => k !== "epoch").sort();
    const wanted = select.value || trials[0].metric;
    select.replaceChildren(...keys.map((k) => new Option(k, k, false, k === wanted)));
    const metric = keys.includes(wanted) ? wanted : keys[0];
    const series = trials.map((t, i) => ({
      name: `${t.trial_id}${searchedText(t) ? ` (${searchedText(t)})` : ""}`,
      colour: PALETTE[i % PALETTE.length],
      points: points(t, metric),
      mark: metric === t.metric ? t.best_epoch : null,
    }));
    const unit = metric.split("/").pop();
    $("compare-chart").replaceChildren(lineChart({ series, title: `${metric} per epoch`, yLabel: metric, width: 900,
      yRange: ["uar", "wa", "f1"].includes(unit) ? [0, 1] : null }));
    $("compare-count").textContent = `${compared.length} trial${compared.length === 1 ? "" : "s"}` +
      (metric === trials[0].metric ? "; ringed: each trial's selected epoch" : "");
  }

  const urlOf = (id) => table.querySelector(`tr[data-trial="${CSS.escape(id)}"]`).dataset.trialUrl;

  for (const tr of table.tBodies[0].rows) {
    if (!tr.dataset.trialUrl) continue;
    tr.classList.add("clickable");
    const box = document.createElement("input");
    box.type = "checkbox";
    box.className = "compare";
    box.title = "compare this trial with other ticked ones";
    box.setAttribute("aria-label", `compare ${tr.dataset.trial}`);
    box.addEventListener("click", (e) => e.stopPropagation());
    box.addEventListener("change", () => {
      const id = tr.dataset.trial;
      const at = compared.indexOf(id);
      if (box.checked && at < 0) compared.push(id);
      if (!box.checked && at >= 0) compared.splice(at, 1);
      drawComparison();
    });
    tr.cells[0].prepend(box);
    tr.addEventListener("click", (e) => {
      if (e.target.closest("a, input, button")) return;
      show(tr);
    });
  }
  $("trial-close").addEventListener("click", close);
  $("compare-metric").addEventListener("change", drawComparison);
  $("compare-clear").addEventListener("click", () => {
    compared.length = 0;
    table.querySelectorAll("input.compare").forEach((b) => { b.checked = false; });
    drawComparison();
  });
})();

// Client-side sorting of the leaderboard: click a header to sort, click again to reverse.
"use strict";
(function () {
  const table = document.getElementById("leaderboard");
  if (!table) return;
  const body = table.tBodies[0];
  const headers = Array.from(table.tHead.rows[0].cells);

  function key(row, col) {
    const raw = row.cells[col].dataset.value;
    if (raw === "") return null; // empty cells sort last either way
    const num = Number(raw);
    return Number.isNaN(num) ? raw.toLowerCase() : num;
  }

  function sortBy(col, descending) {
    const rows = Array.from(body.rows);
    rows.sort((a, b) => {
      const x = key(a, col), y = key(b, col);
      if (x === null || y === null) return (x === null) - (y === null);
      if (typeof x !== typeof y) return typeof x === "number" ? -1 : 1;
      const order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    });
    rows.forEach((r) => body.appendChild(r));
    headers.forEach((h) => h.removeAttribute("aria-sort"));
    headers[col].setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  headers.forEach((th, col) => {
    th.addEventListener("click", () => sortBy(col, th.getAttribute("aria-sort") === "ascending"));
  });
})();

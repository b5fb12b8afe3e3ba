// Tonevakt dashboard, corrected shares (issue 15): a self-contained block fed by its own key of the page's
// JSON ("shares": rows of the weekly_shares view). No network, no libraries.
(function () {
  "use strict";
  const box = document.getElementById("shares-table");
  const S = JSON.parse(document.getElementById("tonevakt-data").textContent).shares;
  if (!box || !S) return;
  const pct = (v) => (v === null || v === undefined ? "–" : Math.round(v * 100) + "\u00a0%");
  const span = (lo, hi) => Math.round(lo * 100) + "–" + pct(hi);
  const weekNo = (w) => String(parseInt(w.split("-W")[1], 10));
  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  const cells = {};
  for (const r of S.rows) cells[r.week + "|" + r.voice] = r;
  const table = el("table", { id: "shares" });
  const thead = el("thead");
  const hr = el("tr");
  hr.appendChild(el("th", {}, "Uke"));
  for (const v of S.voices) hr.appendChild(el("th", {}, v.label));
  thead.appendChild(hr);
  table.appendChild(thead);
  const tbody = el("tbody");
  for (const w of S.weeks.slice().reverse()) {
    const tr = el("tr", { "data-share-week": w });
    tr.appendChild(el("td", {}, `uke ${weekNo(w)}, ${w.slice(0, 4)}`));
    for (const v of S.voices) {
      const c = cells[w + "|" + v.id];
      const td = el("td", c ? { "data-share-voice": v.id, "data-negative": c.share_negative.toFixed(6),
        "data-positive": c.share_positive.toFixed(6) } : {});
      if (c) {
        const neg = td.appendChild(el("div"));
        neg.appendChild(el("span", { class: "neg" }, "neg. " + pct(c.share_negative)));
        neg.appendChild(el("span", { class: "muted" }, ` (${span(c.share_negative_ci_low, c.share_negative_ci_high)})`));
        const pos = td.appendChild(el("div"));
        pos.appendChild(el("span", { class: "pos" }, "pos. " + pct(c.share_positive)));
        pos.appendChild(el("span", { class: "muted" }, ` (${span(c.share_positive_ci_low, c.share_positive_ci_high)})`));
        td.appendChild(el("div", { class: c.n < S.min_n || c.misfit ? "muted thin" : "muted" }, `n\u00a0=\u00a0${c.n}` +
          (c.n < S.min_n ? " (tynt)" : "") + (c.misfit ? " (passer dårlig)" : "")));
      } else {
        td.textContent = "–";
      }
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  }
  table.appendChild(tbody);
  box.textContent = "";
  box.appendChild(table);
})();

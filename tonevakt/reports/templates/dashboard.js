// Tonevakt dashboard: filters, charts (SVG) and tables from the embedded per-week cells. No network, no libraries.
// A cell is one (week, voice, topic or all, region or all) with n, the sum and the sum of squares of the tones;
// a week's tone is computed as the weekly_tone view does: the mean, and mean ± 1.96·sd/√n (sample sd).
"use strict";
(function () {
  const DATA = JSON.parse(document.getElementById("tonevakt-data").textContent);
  const COLORS = { media: "#1f5fa8", union: "#b5402a", patient: "#2a7d4f", official: "#7a5aa6" };
  const SVG = "http://www.w3.org/2000/svg";
  const state = { voices: new Set(DATA.voices.map((v) => v.id)), topic: "", region: "", range: DATA.default_weeks,
    week: null };

  function num(v, dec) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    let s = Math.abs(v).toFixed(dec);
    if (Number(s) === 0) return s.replace(".", ",");
    const [whole, frac] = s.split(".");
    const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, "\u202f");
    s = frac ? grouped + "," + frac : grouped;
    return v < 0 ? "\u2212" + s : s;
  }
  const tone = (v) => num(v, 2);
  const weekNo = (w) => String(parseInt(w.split("-W")[1], 10));
  const weekLabel = (w) => `uke ${weekNo(w)}, ${w.slice(0, 4)}`;
  const voiceLabel = (id) => (DATA.voices.find((v) => v.id === id) || { label: id }).label;

  function el(tag, attrs, text) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function svg(tag, attrs, parent) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (parent) parent.appendChild(e);
    return e;
  }

  function windowWeeks() {
    const w = DATA.weeks;
    return state.range > 0 ? w.slice(Math.max(0, w.length - state.range)) : w.slice();
  }
  const weekIndex = new Map(DATA.weeks.map((w, i) => [w, i]));
  const topicIndex = (id) => (id ? DATA.topics.findIndex((t) => t.id === id) : -1);
  const regionIndex = (id) => (id ? DATA.regions.findIndex((t) => t.id === id) : -1);
  const voiceIndex = (id) => DATA.voices.findIndex((v) => v.id === id);
  function indexed(table) {
    const m = new Map();
    table.week.forEach((w, i) => m.set(`${w}|${table.voice[i]}|${table.topic[i]}|${table.region[i]}`, i));
    return m;
  }
  const CELLS = indexed(DATA.cells);
  const LISTS = indexed(DATA.lists);
  const storyWeeks = new Set(DATA.story_weeks);

  // The figures of one week and voice under a topic and region filter ("" = all): n, tone, interval, or null.
  function cellFor(week, voice, topic, region) {
    const i = CELLS.get(`${weekIndex.get(week)}|${voiceIndex(voice)}|${topicIndex(topic)}|${regionIndex(region)}`);
    if (i === undefined) return null;
    const c = DATA.cells, n = c.n[i], mean = c.tone_sum[i] / n;
    let lo = null, hi = null;
    if (n > 1) {
      const sd = Math.sqrt(Math.max(0, (c.tone_squares[i] - c.tone_sum[i] * mean) / (n - 1)));
      lo = mean - 1.96 * sd / Math.sqrt(n);
      hi = mean + 1.96 * sd / Math.sqrt(n);
    }
    return { n: n, tone: mean, lo: lo, hi: hi, thin: n < DATA.min_n, negative: c.negative[i], positive: c.positive[i] };
  }
  function aggregate(weeks, voices) {
    const out = {};
    for (const w of weeks) {
      for (const v of voices) {
        const c = cellFor(w, v, state.topic, state.region);
        if (c) out[w + "|" + v] = c;
      }
    }
    return out;
  }
  // The week's five most negative and five most positive stories of the chosen voices: each cell carries its
  // own five of each, in the page's order (tone, then publication), so the five of any voices are among them.
  // null: the page carries no stories for this week (older than the story weeks).
  function storiesFor(week, voices, topic, region) {
    if (!storyWeeks.has(week)) return null;
    const worst = [], best = [];
    for (const v of voices) {
      const i = LISTS.get(`${weekIndex.get(week)}|${voiceIndex(v)}|${topicIndex(topic)}|${regionIndex(region)}`);
      if (i === undefined) continue;
      worst.push(...DATA.lists.worst[i]);
      best.push(...DATA.lists.best[i]);
    }
    const S = DATA.stories;
    worst.sort((a, b) => S[a].tone - S[b].tone || a - b);
    best.sort((a, b) => S[b].tone - S[a].tone || a - b);
    return { negative: worst.slice(0, 5).map((i) => S[i]), positive: best.slice(0, 5).map((i) => S[i]) };
  }
  window.tonevakt = { cellFor: cellFor, storiesFor: storiesFor };

  function toneChart(weeks, cells, voices) {
    const box = document.getElementById("tone-chart");
    box.textContent = "";
    const W = 900, H = 300, L = 52, R = 12, T = 14, B = 40, pw = W - L - R, ph = H - T - B;
    let top = 0;
    for (const c of Object.values(cells)) top = Math.max(top, Math.abs(c.tone), Math.abs(c.lo || 0), Math.abs(c.hi || 0));
    const r = top <= 0.5 ? 0.5 : top <= 0.75 ? 0.75 : 1;
    const step = pw / Math.max(weeks.length - 1, 1);
    const x = (i) => L + i * step;
    const y = (v) => T + (r - Math.max(-r, Math.min(r, v))) / (2 * r) * ph;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, "font-size": 11 }, box);
    for (let k = -2; k <= 2; k++) {
      const v = k * r / 2;
      svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: k === 0 ? "#888" : "#ddd",
        "stroke-dasharray": k === 0 ? "" : "3,3" }, root);
      svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", fill: "#555" }, root).textContent = tone(v);
    }
    const every = Math.ceil(weeks.length / 26);
    weeks.forEach((w, i) => {
      if (i % every === 0 || i === weeks.length - 1) {
        svg("text", { x: x(i), y: H - B + 16, "text-anchor": "middle", fill: "#555" }, root).textContent = weekNo(w);
      }
    });
    svg("text", { x: L + pw / 2, y: H - 4, "text-anchor": "middle", fill: "#555" }, root).textContent = "uke";
    for (const v of voices) {
      const color = COLORS[v] || "#444";
      let run = [];
      const runs = [];
      weeks.forEach((w, i) => {
        const c = cells[w + "|" + v];
        if (c && c.lo !== null) run.push([i, c]); else if (run.length) { runs.push(run); run = []; }
      });
      if (run.length) runs.push(run);
      for (const rr of runs) {
        const pts = rr.map(([i, c]) => `${x(i)},${y(c.hi)}`).concat(rr.slice().reverse().map(([i, c]) => `${x(i)},${y(c.lo)}`));
        svg("polygon", { points: pts.join(" "), fill: color, "fill-opacity": 0.13 }, root);
      }
      let seg = [];
      const flush = () => { if (seg.length > 1) svg("polyline", { points: seg.join(" "), fill: "none", stroke: color, "stroke-width": 2 }, root); seg = []; };
      weeks.forEach((w, i) => { const c = cells[w + "|" + v]; if (c) seg.push(`${x(i)},${y(c.tone)}`); else flush(); });
      flush();
      weeks.forEach((w, i) => {
        const c = cells[w + "|" + v];
        if (!c) return;
        const dot = svg("circle", { cx: x(i), cy: y(c.tone), r: 3.5, fill: c.thin ? "#fff" : color, stroke: color,
          "stroke-width": 1.5 }, root);
        svg("title", {}, dot).textContent = `${voiceLabel(v)} uke ${weekNo(w)}: ${tone(c.tone)} (n = ${c.n})`;
      });
    }
  }

  function volumeChart(weeks, cells, voices) {
    const box = document.getElementById("volume-chart");
    box.textContent = "";
    const W = 900, H = 220, L = 44, R = 12, T = 12, B = 36, pw = W - L - R, ph = H - T - B;
    let max = 1;
    for (const c of Object.values(cells)) max = Math.max(max, c.n);
    const nice = max <= 4 ? 4 : Math.ceil(max / 4) * 4;
    const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, "font-size": 11 }, box);
    const y = (v) => T + ph - v / nice * ph;
    for (let k = 0; k <= 4; k++) {
      const v = nice * k / 4;
      svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#e3e3e3" }, root);
      svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", fill: "#555" }, root).textContent = num(v, 0);
    }
    const group = pw / Math.max(weeks.length, 1);
    const bar = Math.max((group - 2) / Math.max(voices.length, 1), 0.5);
    const every = Math.ceil(weeks.length / 26);
    weeks.forEach((w, i) => {
      voices.forEach((v, j) => {
        const c = cells[w + "|" + v];
        if (!c) return;
        const rect = svg("rect", { x: L + i * group + 1 + j * bar, y: y(c.n), width: Math.max(bar - 0.5, 0.5),
          height: T + ph - y(c.n), fill: COLORS[v] || "#444" }, root);
        svg("title", {}, rect).textContent = `${voiceLabel(v)} uke ${weekNo(w)}: ${c.n} saker`;
      });
      if (i % every === 0 || i === weeks.length - 1) {
        svg("text", { x: L + i * group + group / 2, y: H - B + 16, "text-anchor": "middle", fill: "#555" }, root).textContent = weekNo(w);
      }
    });
  }

  function table(weeks, cells, voices) {
    const thead = document.querySelector("#numbers thead");
    const tbody = document.querySelector("#numbers tbody");
    thead.textContent = "";
    tbody.textContent = "";
    const hr = el("tr");
    hr.appendChild(el("th", {}, "Uke"));
    for (const v of voices) { hr.appendChild(el("th", {}, voiceLabel(v) + " tone")); hr.appendChild(el("th", {}, "n")); }
    thead.appendChild(hr);
    for (const w of weeks.slice().reverse()) {
      const tr = el("tr", { "data-week": w });
      if (w === state.week) tr.className = "selected";
      tr.appendChild(el("td", {}, weekLabel(w)));
      for (const v of voices) {
        const c = cells[w + "|" + v];
        const td = el("td", { "data-voice": v, "data-n": c ? c.n : 0, "data-tone": c ? c.tone.toFixed(6) : "" },
          c ? tone(c.tone) : "–");
        if (c) td.className = c.tone <= -0.05 ? "neg" : c.tone >= 0.05 ? "pos" : "";
        tr.appendChild(td);
        tr.appendChild(el("td", { class: c && c.thin ? "thin" : "" }, c ? num(c.n, 0) + (c.thin ? " (tynt)" : "") : "0"));
      }
      tr.addEventListener("click", () => { state.week = w; update(); });
      tbody.appendChild(tr);
    }
  }

  function storyItem(s) {
    const li = el("li");
    const head = s.url ? el("a", { href: s.url }, s.title) : el("strong", {}, s.title);
    li.appendChild(head);
    li.appendChild(el("div", { class: "meta" }, `${DATA.voices[s.voice].label} · ${s.outlet} · ${s.date} · tone ${tone(s.tone)}`));
    return li;
  }
  function stories(voices) {
    const week = state.week;
    document.getElementById("stories-title").textContent = week ? `Saker i ${weekLabel(week)}` : "Ukens saker";
    const lists = week ? storiesFor(week, voices, state.topic, state.region) : null;
    for (const [id, key] of [["stories-negative", "negative"], ["stories-positive", "positive"]]) {
      const ol = document.getElementById(id);
      ol.textContent = "";
      if (!lists) {
        ol.appendChild(el("li", { class: "muted" }, `Siden viser sakene for de siste ${DATA.story_weeks.length} ukene; for eldre uker, se ukerapporten.`));
        continue;
      }
      if (!lists[key].length) ol.appendChild(el("li", { class: "muted" }, "Ingen saker med dette utvalget."));
      lists[key].forEach((s) => ol.appendChild(storyItem(s)));
    }
  }

  // The corrected shares (issue 15): the table of DATA.shares (rows of the weekly_shares view), drawn once.
  function sharesTable() {
    const box = document.getElementById("shares-table");
    const S = DATA.shares;
    if (!box || !S) return;
    const pct = (v) => (v === null || v === undefined ? "–" : Math.round(v * 100) + "\u00a0%");
    const span = (lo, hi) => Math.round(lo * 100) + "–" + pct(hi);
    const cells = {};
    for (const r of S.rows) cells[r.week + "|" + r.voice] = r;
    const tbl = el("table", { id: "shares" });
    const thead = el("thead");
    const hr = el("tr");
    hr.appendChild(el("th", {}, "Uke"));
    for (const v of S.voices) hr.appendChild(el("th", {}, v.label));
    thead.appendChild(hr);
    tbl.appendChild(thead);
    const tbody = el("tbody");
    for (const w of S.weeks.slice().reverse()) {
      const tr = el("tr", { "data-share-week": w });
      tr.appendChild(el("td", {}, weekLabel(w)));
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
    tbl.appendChild(tbody);
    box.textContent = "";
    box.appendChild(tbl);
  }

  function update() {
    const weeks = windowWeeks();
    const voices = DATA.voices.map((v) => v.id).filter((v) => state.voices.has(v));
    const cells = aggregate(weeks, voices);
    if (!state.week || !weeks.includes(state.week)) {
      state.week = weeks.includes(DATA.last_complete) ? DATA.last_complete : weeks[weeks.length - 1];
    }
    const parts = [];
    if (state.topic) parts.push((DATA.topics.find((t) => t.id === state.topic) || {}).label);
    if (state.region) parts.push((DATA.regions.find((t) => t.id === state.region) || {}).label);
    document.getElementById("tone-title").textContent = "Tone per uke" + (parts.length ? " – " + parts.join(", ") : "");
    toneChart(weeks, cells, voices);
    volumeChart(weeks, cells, voices);
    table(weeks, cells, voices);
    stories(voices);
  }

  // A link can carry the filters: index.html#topic=costs&region=trondelag&voice=media,patient&weeks=26
  function fromHash() {
    const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
    const topic = params.get("topic"), region = params.get("region"), voice = params.get("voice");
    if (topic && DATA.topics.some((t) => t.id === topic)) state.topic = topic;
    if (region && DATA.regions.some((t) => t.id === region)) state.region = region;
    if (voice) {
      const wanted = voice.split(",").filter((v) => DATA.voices.some((x) => x.id === v));
      if (wanted.length) state.voices = new Set(wanted);
    }
    const weeks = parseInt(params.get("weeks") || "", 10);
    if (!Number.isNaN(weeks) && weeks >= 0) state.range = weeks;
  }

  function setup() {
    fromHash();
    document.getElementById("min-n").textContent = String(DATA.min_n);
    const vf = document.getElementById("voice-filters");
    for (const v of DATA.voices) {
      const label = el("label", { class: "voice-option" });
      const box = el("input", { type: "checkbox", value: v.id, id: "voice-" + v.id });
      box.checked = state.voices.has(v.id);
      box.addEventListener("change", () => { if (box.checked) state.voices.add(v.id); else state.voices.delete(v.id); update(); });
      label.appendChild(box);
      const sw = el("span", { class: "swatch" });
      sw.style.background = COLORS[v.id] || "#444";
      label.appendChild(sw);
      label.appendChild(document.createTextNode(v.label));
      vf.appendChild(label);
    }
    for (const [id, items, key] of [["topic-filter", DATA.topics, "topic"], ["region-filter", DATA.regions, "region"]]) {
      const sel = document.getElementById(id);
      for (const t of items) sel.appendChild(el("option", { value: t.id }, t.label));
      sel.value = state[key];
      sel.addEventListener("change", () => { state[key] = sel.value; update(); });
    }
    const rf = document.getElementById("range-filter");
    for (const [n, label] of [[DATA.default_weeks, `Siste ${DATA.default_weeks} uker`], [26, "Siste 26 uker"], [52, "Siste 52 uker"], [0, "Alle uker"]]) {
      if (n !== DATA.default_weeks || label.startsWith("Siste " + DATA.default_weeks)) {
        if (rf.querySelector(`option[value="${n}"]`)) continue;
        rf.appendChild(el("option", { value: String(n) }, label));
      }
    }
    if (!rf.querySelector(`option[value="${state.range}"]`)) rf.appendChild(el("option", { value: String(state.range) }, `Siste ${state.range} uker`));
    rf.value = String(state.range);
    rf.addEventListener("change", () => { state.range = parseInt(rf.value, 10); update(); });
    update();
    sharesTable();
    document.body.setAttribute("data-ready", "1");
  }
  setup();
})();

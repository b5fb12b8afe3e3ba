"""The dashboard: a static page with inline data and JS; in headless Chromium it renders, logs no console
errors, shows the same numbers as weekly_tone, escapes untrusted titles, and its screenshot is not blank."""

from __future__ import annotations

import html
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.support.browser import CHROMIUM, NOT_INSTALLED, run_chromium
from tests.support.config import settings_in
from tests.support.seed import NOW, SOURCES, WEEK, XSS_TITLE, seed
from tonevakt.config import Settings
from tonevakt.reports import dashboard as dashboard_module
from tonevakt.reports import write_report
from tonevakt.reports.dashboard import json_for_script, write_dashboard
from tonevakt.stats import mean_interval
from tonevakt.storage.db import open_for_reading


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    tmp = tmp_path_factory.mktemp("dashboard")
    settings = settings_in(tmp, sources=SOURCES)
    seed(settings)
    write_report(settings, WEEK, now=NOW, pdf=False)
    return settings, write_dashboard(settings, now=NOW)


class _Cells(HTMLParser):
    """Collect the numbers table the page's script built: (week, voice) -> (n, tone)."""

    def __init__(self) -> None:
        super().__init__()
        self.week: str | None = None
        self.cells: dict[tuple[str, str], tuple[int, str]] = {}
        self.anchors: list[str] = []
        self._in_a = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr" and a.get("data-week"):
            self.week = a["data-week"]
        if tag == "td" and a.get("data-voice") and self.week:
            self.cells[(self.week, a["data-voice"] or "")] = (
                int(a.get("data-n") or 0),
                a.get("data-tone") or "",
            )
        self._in_a = tag == "a"

    def handle_data(self, data: str) -> None:
        if self._in_a:
            self.anchors.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._in_a = False


def test_page_is_self_contained(dashboard: Any) -> None:
    _, path = dashboard
    html = path.read_text(encoding="utf-8")
    assert not re.search(
        r"<(link|img|iframe)\b|\bsrc\s*=|@import|url\(|https?://(?!127\.0\.0\.1|www\.w3\.org/2000/svg)",
        html,
        re.I,
    )
    # untrusted titles travel only inside the JSON, with '<' escaped: no way to close the script element
    assert XSS_TITLE not in html
    assert json_for_script({"t": XSS_TITLE}) == '{"t":"\\u003cscript\\u003ealert(1)\\u003c/script\\u003e"}'
    assert "tonevakt-2026-W47.html" in html  # the report list links into report.out_dir
    # one script, which parses the data block once (the shares table included)
    assert html.count("<script>") == 1 and html.count("JSON.parse(") == 1


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason=NOT_INSTALLED)
def test_renders_in_headless_chromium(dashboard: Any, tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    settings, path = dashboard
    url = path.resolve().as_uri()
    dom = run_chromium(["--virtual-time-budget=5000", "--dump-dom", url], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-ready="1"' in dom.stdout, "the script did not finish"
    errors = [
        line
        for line in dom.stderr.splitlines()
        if "Uncaught" in line or ("CONSOLE" in line and ("ERROR" in line or "error" in line.lower()))
    ]
    assert not errors, errors
    parsed = _Cells()
    parsed.feed(dom.stdout)
    # the numbers the script computed are weekly_tone's
    db = open_for_reading(settings.db_path)
    try:
        rows = db.rows(
            "SELECT week, voice, n, tone FROM weekly_tone WHERE week BETWEEN '2026-W36' AND ?", [WEEK]
        )
    finally:
        db.close()
    assert len(rows) == 48
    for r in rows:
        n, tone = parsed.cells[(r["week"], r["voice"])]
        assert n == r["n"]
        assert float(tone) == pytest.approx(r["tone"], abs=1e-6)
    # the hostile title was rendered as text (an <a> whose text is the markup), not run
    assert XSS_TITLE in parsed.anchors
    assert "alert(1)" not in dom.stderr

    shot = tmp_path / "dashboard.png"
    res = run_chromium(
        ["--window-size=1200,1600", "--virtual-time-budget=5000", f"--screenshot={shot}", url], tmp_path
    )
    assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
    image = Image.open(shot).convert("L")
    assert ImageStat.Stat(image).var[0] > 200, "the screenshot looks blank"
    # charts drew something in their colours (media blue) somewhere on the page
    rgb = np.asarray(Image.open(shot).convert("RGB"), dtype=int)
    blue = (np.abs(rgb - np.array([0x1F, 0x5F, 0xA8])) < 20).all(axis=2)
    assert blue.sum() > 500


def test_dashboard_cli(dashboard: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tonevakt.cli import main

    settings, _ = dashboard
    res = CliRunner().invoke(main, ["--config", settings.file, "dashboard", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    data = json.loads(
        re.search(r'<script id="tonevakt-data" type="application/json">(.*?)</script>', page, re.S)[1]
    )  # type: ignore[index]
    assert data["weeks"][-1] == max(data["weeks"])
    # aggregates, not stories: one cell per week, voice, topic or all, region or all that has stories
    assert set(data["cells"]) == {
        "week",
        "voice",
        "topic",
        "region",
        "n",
        "tone_sum",
        "tone_squares",
        "negative",
        "positive",
    }
    assert len({len(col) for col in data["cells"].values()}) == 1
    assert data["story_weeks"] == data["weeks"][-len(data["story_weeks"]) :]
    assert {r["week"] for r in data["reports"]} == {WEEK}
    assert not data["synthetic"]


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason=NOT_INSTALLED)
def test_topic_filter_matches_weekly_topic_tone(dashboard: Any, tmp_path: Path) -> None:
    settings, path = dashboard
    dom = run_chromium(
        ["--virtual-time-budget=5000", "--dump-dom", path.resolve().as_uri() + "#topic=costs&weeks=4"],
        tmp_path,
    )
    assert 'data-ready="1"' in dom.stdout and "Uncaught" not in dom.stderr
    parsed = _Cells()
    parsed.feed(dom.stdout)
    assert {w for w, _ in parsed.cells} == {"2026-W44", "2026-W45", "2026-W46", WEEK}
    db = open_for_reading(settings.db_path)
    try:
        rows = db.rows(
            "SELECT week, voice, n, tone FROM weekly_topic_tone WHERE topic = 'costs' AND voice <> 'all' "
            "AND week >= '2026-W44' AND week <= ?",
            [WEEK],
        )
    finally:
        db.close()
    assert rows
    for r in rows:
        n, tone = parsed.cells[(r["week"], r["voice"])]
        assert n == r["n"] and float(tone) == pytest.approx(r["tone"], abs=1e-6)


# Run in the page after its own script: every figure and story list the page can show, through the functions the
# page draws with, for every topic and region filter (and all) and every choice of voices.
_HARNESS = """<script>
(function () {
  const D = JSON.parse(document.getElementById("tonevakt-data").textContent);
  const topics = ["", ...D.topics.map((t) => t.id)], regions = ["", ...D.regions.map((r) => r.id)];
  const voices = D.voices.map((v) => v.id);
  const out = { cells: [], lists: [] };
  for (const tp of topics) for (const rg of regions) {
    for (const w of D.weeks) for (const v of voices) {
      const c = window.tonevakt.cellFor(w, v, tp, rg);
      if (c) out.cells.push([w, v, tp, rg, c.n, c.tone, c.lo, c.hi, c.negative, c.positive]);
    }
    for (let mask = 1; mask < (1 << voices.length); mask++) {
      const vs = voices.filter((_, i) => mask & (1 << i));
      for (const w of D.story_weeks) {
        const l = window.tonevakt.storiesFor(w, vs, tp, rg);
        out.lists.push([w, vs.join(","), tp, rg, l.negative.map((s) => s.title), l.positive.map((s) => s.title)]);
      }
    }
  }
  const pre = document.createElement("pre");
  pre.id = "results";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def _full_computation(
    settings: Settings,
) -> tuple[dict[tuple[str, ...], tuple[Any, ...]], list[dict[str, Any]]]:
    """What the page showed when it carried every story (story_tone, tones rounded to 6 decimals), per cell."""
    db = open_for_reading(settings.db_path)
    try:
        rows = db.rows(
            """SELECT week, voice, round(tone, 6) AS t, label, title, coalesce(topics, []) AS tp,
                      list_distinct(list_concat(coalesce(regions, []),
                                                CASE WHEN region IS NULL THEN [] ELSE [region] END)) AS rg
               FROM story_tone ORDER BY published_at, document_id"""
        )
    finally:
        db.close()
    cells = {}
    for tp in ["", *settings.topics]:
        for rg in ["", *settings.regions]:
            groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
            for r in rows:
                if (not tp or tp in r["tp"]) and (not rg or rg in r["rg"]):
                    groups.setdefault((r["week"], r["voice"]), []).append(r)
            for (w, v), items in groups.items():
                tones = [r["t"] for r in items]
                n = len(tones)
                mean, lo, hi = mean_interval(tones)  # the one reference formula (tonevakt/stats.py)
                labels = [r["label"] for r in items]
                cells[(w, v, tp, rg)] = (n, mean, lo, hi, labels.count("negative"), labels.count("positive"))
    return cells, rows


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason=NOT_INSTALLED)
def test_every_filter_shows_the_figures_and_stories_of_the_full_computation(
    dashboard: Any, tmp_path: Path
) -> None:
    settings, path = dashboard
    page = tmp_path / "harness.html"
    page.write_text(
        path.read_text(encoding="utf-8").replace("</body>", _HARNESS + "</body>"), encoding="utf-8"
    )
    dom = run_chromium(["--virtual-time-budget=10000", "--dump-dom", page.resolve().as_uri()], tmp_path)
    assert 'data-ready="1"' in dom.stdout and "Uncaught" not in dom.stderr, dom.stderr[-2000:]
    found = re.search(r'<pre id="results">(.*?)</pre>', dom.stdout, re.S)
    assert found, "the harness wrote no results"
    shown = json.loads(html.unescape(found[1]))
    expected, rows = _full_computation(settings)

    got = {tuple(c[:4]): tuple(c[4:]) for c in shown["cells"]}
    assert set(got) == set(expected)
    assert len(expected) > 300 and {k[2] for k in expected} == {"", *settings.topics}
    for key, (n, mean, lo, hi, neg, pos) in expected.items():
        g = got[key]
        assert (g[0], g[4], g[5]) == (n, neg, pos), key
        assert g[1] == pytest.approx(mean, abs=1e-9), key
        for a, b in ((g[2], lo), (g[3], hi)):
            assert (a is None) == (b is None) and (b is None or a == pytest.approx(b, abs=1e-9)), key

    lists = shown["lists"]
    assert len(lists) == 15 * 12 * (1 + len(settings.topics)) * (1 + len(settings.regions))
    for w, voices, tp, rg, negative, positive in lists:
        chosen = [
            r
            for r in rows
            if r["week"] == w
            and r["voice"] in voices.split(",")
            and (not tp or tp in r["tp"])
            and (not rg or rg in r["rg"])
        ]
        worst = sorted((r for r in chosen if r["t"] < 0), key=lambda r: r["t"])[:5]
        best = sorted((r for r in chosen if r["t"] > 0), key=lambda r: -r["t"])[:5]
        assert negative == [r["title"] for r in worst], (w, voices, tp, rg)
        assert positive == [r["title"] for r in best], (w, voices, tp, rg)
    assert any(len(neg) == 5 for *_, neg, _ in lists)


def test_the_page_carries_cells_and_listed_stories_not_every_story(
    dashboard: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, _ = dashboard
    monkeypatch.setattr(dashboard_module, "STORY_WEEKS", 4)
    db = open_for_reading(settings.db_path)
    try:
        data = dashboard_module.dashboard_data(db, settings, now=NOW)
        total = db.scalar("SELECT count(*) FROM story_tone")
    finally:
        db.close()
    assert data["story_weeks"] == data["weeks"][-4:]
    assert {data["weeks"][s["week"]] for s in data["stories"]} <= set(data["story_weeks"])
    assert 0 < len(data["stories"]) < total / 2
    # each listed story is in some list, and each list holds at most five of each
    listed = {i for col in ("worst", "best") for lst in data["lists"][col] for i in lst}
    assert listed == set(range(len(data["stories"])))
    assert max(len(lst) for col in ("worst", "best") for lst in data["lists"][col]) == 5
    assert (
        sum(
            data["cells"]["n"][i]
            for i in range(len(data["cells"]["n"]))
            if data["cells"]["topic"][i] == -1 and data["cells"]["region"][i] == -1
        )
        == total
    )
    # an archive longer than the page's span keeps its newest weeks
    monkeypatch.setattr(dashboard_module, "MAX_WEEKS", 5)
    db = open_for_reading(settings.db_path)
    try:
        short = dashboard_module.dashboard_data(db, settings, now=NOW)
    finally:
        db.close()
    assert short["weeks"] == data["weeks"][-5:] and short["weeks"][-1] == WEEK
    assert set(short["cells"]["week"]) == set(range(5))

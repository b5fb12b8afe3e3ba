"""The dashboard: a static page with inline data and JS; in headless Chromium it renders, logs no console
errors, shows the same numbers as weekly_tone, escapes untrusted titles, and its screenshot is not blank."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from tests.conftest import BASE_CONFIG, _merge
from tests.test_report_seed import NOW, SOURCES, WEEK, XSS_TITLE, seed
from tonevakt.config import Settings, load_config
from tonevakt.reports import write_report
from tonevakt.reports.dashboard import json_for_script, write_dashboard
from tonevakt.storage.db import open_for_reading

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, Path]:
    tmp = tmp_path_factory.mktemp("dashboard")
    cfg = _merge(BASE_CONFIG, {"sources": SOURCES})
    (tmp / "config.yaml").write_text(yaml.safe_dump(cfg, allow_unicode=True), encoding="utf-8")
    settings = load_config(tmp / "config.yaml")
    seed(settings)
    write_report(settings, WEEK, now=NOW, pdf=False)
    return settings, write_dashboard(settings, now=NOW)


def _chromium(args: list[str], tmp: Path, timeout: int = 90) -> subprocess.CompletedProcess[str]:
    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)  # type: ignore[arg-type]


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


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (bash tools/ensure-debian-packages.sh)"
)
def test_renders_in_headless_chromium(dashboard: Any, tmp_path: Path) -> None:
    from PIL import Image, ImageStat

    settings, path = dashboard
    url = path.resolve().as_uri()
    dom = _chromium(["--virtual-time-budget=5000", "--dump-dom", url], tmp_path)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert 'data-ready="1"' in dom.stdout, "the script did not finish"
    errors = [line for line in dom.stderr.splitlines()
              if "Uncaught" in line or ("CONSOLE" in line and ("ERROR" in line or "error" in line.lower()))]  # fmt: skip
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
    res = _chromium(
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
    assert data["weeks"][-1] == max(data["weeks"]) and len(data["stories"]) > 200
    assert {r["week"] for r in data["reports"]} == {WEEK}
    assert not data["synthetic"]


@pytest.mark.browser
@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (bash tools/ensure-debian-packages.sh)"
)
def test_topic_filter_matches_weekly_topic_tone(dashboard: Any, tmp_path: Path) -> None:
    settings, path = dashboard
    dom = _chromium(["--virtual-time-budget=5000", "--dump-dom", path.resolve().as_uri() + "#topic=costs&weeks=4"],
                    tmp_path)  # fmt: skip
    assert 'data-ready="1"' in dom.stdout and "Uncaught" not in dom.stderr
    parsed = _Cells()
    parsed.feed(dom.stdout)
    assert {w for w, _ in parsed.cells} == {"2026-W44", "2026-W45", "2026-W46", WEEK}
    db = open_for_reading(settings.db_path)
    try:
        rows = db.rows("SELECT week, voice, n, tone FROM weekly_topic_tone WHERE topic = 'costs' AND voice <> 'all' "
                       "AND week >= '2026-W44' AND week <= ?", [WEEK])  # fmt: skip
    finally:
        db.close()
    assert rows
    for r in rows:
        n, tone = parsed.cells[(r["week"], r["voice"])]
        assert n == r["n"] and float(tone) == pytest.approx(r["tone"], abs=1e-6)

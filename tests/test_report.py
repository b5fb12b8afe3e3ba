"""The weekly report from a seeded database: figures checked against an independent computation, the
PDF rendered and looked at, escaping, CSV formula injection, Norwegian formats, no external requests."""

from __future__ import annotations

import csv
import json
import math
import re
import statistics
from collections import defaultdict
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from PIL import ImageStat

from tests.support.config import settings_in
from tests.support.seed import FORMULA_TITLE, MODEL, NOW, SOURCES, WEEK, XSS_TITLE, seed
from tonevakt import dates
from tonevakt.config import Settings
from tonevakt.dates import OSLO
from tonevakt.nlp.sentiment.base import INDOMAIN_DEV, NOREC_DEV
from tonevakt.reports import ReportPaths, fmt, write_report
from tonevakt.storage import repository as repo
from tonevakt.storage.db import database


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Settings, dict[str, Any], ReportPaths]:
    tmp = tmp_path_factory.mktemp("report")
    settings = settings_in(tmp, sources=SOURCES)
    written = seed(settings)
    paths = write_report(settings, WEEK, now=NOW)
    return settings, written, paths


# -- an independent computation, in plain Python, of what the report must say ---------------------


def _oslo_week(dt: datetime) -> str:
    y, w, _ = dt.astimezone(OSLO).isocalendar()
    return f"{y}-W{w:02d}"


def _stories(written: dict[str, Any]) -> dict[tuple[str, str], list[float]]:
    """(week, voice) -> tones of stories: relevant, scored by the active model, copies once, labels win."""
    score = {s.document_id: s.tone for s in written["scores"] if s.model == MODEL}
    label_tone = {written["labelled"]: 1.0}
    first: dict[tuple[str, str], Any] = {}
    for d in written["docs"]:
        if not d.relevant or d.id not in score:
            continue
        key = (d.voice, d.story_id or d.id)
        if key not in first or (d.published_at, d.id) < (first[key].published_at, first[key].id):
            first[key] = d
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for d in first.values():
        out[(_oslo_week(d.published_at), d.voice)].append(label_tone.get(d.id, score[d.id]))
    return out


def _mean_ci(tones: list[float]) -> tuple[float, float, float]:
    m = statistics.fmean(tones)
    h = 1.96 * statistics.stdev(tones) / math.sqrt(len(tones))
    return m, m - h, m + h


def _no(v: float) -> str:
    """Norwegian two-decimal format, written independently of tonevakt.reports.fmt."""
    s = f"{v:.2f}".replace(".", ",")
    return s.replace("-", "\u2212") if v < 0 and s != "-0,00" else s.lstrip("-")


def test_headline_figures_match_an_independent_computation(seeded: Any) -> None:
    settings, written, paths = seeded
    data = json.loads(paths.json.read_text(encoding="utf-8"))
    stories = _stories(written)
    prev = dates.shift_week(WEEK, -1)
    four = [dates.shift_week(WEEK, -i) for i in range(1, 5)]
    for voice in ("media", "union", "patient", "official"):
        tones = stories[(WEEK, voice)]
        m, lo, hi = _mean_ci(tones)
        h = data["headline"][voice]
        assert h["now"]["n"] == len(tones)
        assert h["now"]["tone"] == pytest.approx(m, abs=1e-9)
        assert h["now"]["ci_low"] == pytest.approx(lo, abs=1e-9)
        assert h["now"]["ci_high"] == pytest.approx(hi, abs=1e-9)
        assert h["now"]["thin"] == (len(tones) < settings.report.min_n)
        assert h["change_previous"] == pytest.approx(m - statistics.fmean(stories[(prev, voice)]), abs=1e-9)
        pooled = [t for w in four for t in stories[(w, voice)]]
        assert h["avg4"] == pytest.approx(statistics.fmean(pooled), abs=1e-9)
        assert h["avg4_n"] == len(pooled)
        assert h["change_avg4"] == pytest.approx(m - statistics.fmean(pooled), abs=1e-9)
    media, patient = statistics.fmean(stories[(WEEK, "media")]), statistics.fmean(stories[(WEEK, "patient")])
    assert data["gap"] == pytest.approx(media - patient, abs=1e-9)
    # the human label (positive = +1) replaced the model on the first union statement
    assert 1.0 in stories[(WEEK, "union")]
    html = paths.html.read_text(encoding="utf-8")
    for v in (media, patient, media - patient):
        assert _no(v) in html


def test_twelve_weeks_series_and_volume_count_copies_once(seeded: Any) -> None:
    _, written, paths = seeded
    data = json.loads(paths.json.read_text(encoding="utf-8"))
    stories = _stories(written)
    window = dates.weeks_ending(WEEK, 12)
    assert data["weeks"] == window
    for voice, cells in data["series"].items():
        for w, c in zip(window, cells, strict=True):
            tones = stories.get((w, voice), [])
            assert c is not None and c["n"] == len(tones)
            assert c["tone"] == pytest.approx(statistics.fmean(tones), abs=1e-9)
    vol = data["volume"]["media"][-1]
    assert vol["stories"] == len(stories[(WEEK, "media")]) == 16  # the 2 syndicated copies are not stories
    assert vol["documents"] == 18
    # copies scored +0.9 would lift the media tone if they counted
    assert data["headline"]["media"]["now"]["tone"] < 0


def test_topics_regions_ratings_alerts_health_method(seeded: Any) -> None:
    settings, written, paths = seeded
    data = json.loads(paths.json.read_text(encoding="utf-8"))
    score = {s.document_id: s.tone for s in written["scores"] if s.model == MODEL}
    stories_now = [
        d
        for d in written["docs"]
        if d.relevant
        and d.id in score
        and _oslo_week(d.published_at) == WEEK
        and not (d.story_id and "kopi" in d.title)
    ]
    costs = [d for d in stories_now if "costs" in d.topics]
    row = next(g for g in data["topics"] if g["key"] == "costs")
    assert row["label"] == "Kostnader og budsjett"
    assert row["all"]["n"] == len(costs)
    tone = {d.id: (1.0 if d.id == written["labelled"] else score[d.id]) for d in costs}
    assert row["all"]["tone"] == pytest.approx(statistics.fmean(tone.values()), abs=1e-9)
    trond = [d for d in stories_now if "trondelag" in d.regions or d.region == "trondelag"]
    reg = next(g for g in data["regions"] if g["key"] == "trondelag")
    assert reg["all"]["n"] == len(trond)
    ratings = [d.rating for d in stories_now if d.voice == "patient"]
    (rating,) = data["ratings"]
    assert rating["n"] == len(ratings) and rating["mean_rating"] == pytest.approx(statistics.fmean(ratings))
    kinds = {(a["kind"], a["voice"]) for a in data["alerts"]}
    assert ("volume", "media") in kinds  # 16 stories against 6 a week before
    assert ("tone", "media") in kinds  # the seed shifts media tone by −0.35 in WEEK
    assert all(v == "media" for _, v in kinds)
    (failing,) = data["failing"]
    assert failing["id"] == "hmn" and failing["consecutive_failures"] == 3
    assert datetime.fromisoformat(failing["failing_since"]) == written["failing_at"]
    assert data["method"]["model_id"] == MODEL and data["method"]["dev_macro_f1"] == pytest.approx(0.6432)
    assert data["method"]["labels_total"] == 1 and data["method"]["paywalled_week"] > 0
    # the one human label (positive) against the active model's label of the same document
    (model_label,) = [
        s.label for s in written["scores"] if s.model == MODEL and s.document_id == written["labelled"]
    ]
    agreed = int(model_label == "positive")
    assert data["method"]["agreement_n"] == data["method"]["human_n"] == 1
    assert data["method"]["human_agreed"] == agreed and data["method"]["agreement"] == agreed
    html = paths.html.read_text(encoding="utf-8")
    assert f"er den enig med {agreed} av 1 manuelle merkinger ({fmt.percent(agreed)})" in html
    order = [
        html.index(f'id="{s}"')
        for s in (
            "varsler",
            "hovedtall",
            "tone-over-tid",
            "volum",
            "saker",
            "fagforeninger",
            "pasienter",
            "tema-og-regioner",
            "kilder",
            "metode",
        )
    ]
    assert order == sorted(order)
    assert "19. november 2026 kl.\u00a007.30" in html  # failing since, Oslo time
    assert "makro-F1 0,64" in html
    assert f"WHERE week = '{WEEK}'" in html


def test_untrusted_text_is_escaped_in_html_and_shown_as_text_in_pdf(seeded: Any) -> None:
    import pypdfium2 as pdfium

    _, _, paths = seeded
    html = paths.html.read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script" not in html.lower()  # the report has no scripts at all
    assert "HTTP 404 &lt;b&gt;" in html  # an error message from a source is untrusted too
    pdf = pdfium.PdfDocument(str(paths.pdf))
    text = "".join(pdf[i].get_textpage().get_text_range() for i in range(len(pdf)))
    assert XSS_TITLE in text


def test_no_request_to_any_other_host(seeded: Any) -> None:
    _, _, paths = seeded
    html = paths.html.read_text(encoding="utf-8")
    assert not re.search(r"<(link|img|iframe|script|object|embed)\b", html, re.I)
    assert not re.search(r"\bsrc\s*=|@import|url\(", html, re.I)
    # links are only the stories' own (http/https), never a fetch
    for href in re.findall(r'href="([^"]*)"', html):
        assert href.startswith("http://127.0.0.1:9/")


def test_pdf_pages_render_and_are_not_blank(seeded: Any) -> None:
    import pypdfium2 as pdfium

    _, _, paths = seeded
    pdf = pdfium.PdfDocument(str(paths.pdf))
    assert 3 <= len(pdf) <= 12
    for i in range(len(pdf)):
        image = pdf[i].render(scale=0.6).to_pil().convert("L")
        stat = ImageStat.Stat(image)
        assert stat.var[0] > 50, f"page {i + 1} looks blank"
    first = pdf[0].get_textpage().get_text_range()
    assert "ukerapport uke 47" in first and "Hovedtall" in first and "Varsler" in first


def test_csv_figures_and_formula_injection(seeded: Any) -> None:
    _, written, paths = seeded
    with open(paths.stories_csv, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    titles = [r["title"] for r in rows]
    assert "'" + FORMULA_TITLE in titles
    assert XSS_TITLE in titles
    for r in rows:
        for v in r.values():
            assert not (v or "").startswith(("=", "+", "@", "\t", "\r")), v
            assert not (v or "").startswith("-") or re.fullmatch(r"-\d+(\.\d+)?(e-?\d+)?", v), v
    with open(paths.figures_csv, encoding="utf-8-sig", newline="") as f:
        figures = list(csv.DictReader(f))
    media = next(
        r for r in figures if r["section"] == "weekly_tone" and r["week"] == WEEK and r["voice"] == "media"
    )
    stories = _stories(written)
    assert float(media["tone"]) == pytest.approx(statistics.fmean(stories[(WEEK, "media")]), abs=1e-9)
    assert int(media["n"]) == 16


def test_report_figures_reproduce_with_sql_on_weekly_tone(seeded: Any) -> None:
    """The acceptance check: the numbers the report prints come out of `tonevakt sql` on weekly_tone."""
    from click.testing import CliRunner

    from tonevakt.cli import main

    settings, _, paths = seeded
    res = CliRunner().invoke(
        main,
        [
            "--config",
            settings.file,
            "sql",
            "--json",
            f"SELECT voice, n, tone FROM weekly_tone WHERE week = '{WEEK}'",
        ],
    )
    assert res.exit_code == 0, res.output
    rows = {r["voice"]: r for r in json.loads(res.output)}
    html = paths.html.read_text(encoding="utf-8")
    for voice, r in rows.items():
        assert f"{fmt.voice_label(voice)}</td>" in html
        assert _no(r["tone"]) in html
    four = [dates.shift_week(WEEK, -i) for i in range(4, 0, -1)]
    res = CliRunner().invoke(
        main,
        [
            "--config",
            settings.file,
            "sql",
            "--json",
            "SELECT voice, sum(n * tone) / sum(n) AS avg4 FROM weekly_tone "
            f"WHERE week BETWEEN '{four[0]}' AND '{four[-1]}' GROUP BY voice",
        ],
    )
    data = json.loads(paths.json.read_text(encoding="utf-8"))
    for r in json.loads(res.output):
        assert data["headline"][r["voice"]]["avg4"] == pytest.approx(r["avg4"], abs=1e-12)


# -- formats and weeks -------------------------------------------------------------------------------


def test_norwegian_number_and_date_formats() -> None:
    from datetime import date

    assert fmt.number(1234567.891, 2) == "1\u202f234\u202f567,89"
    assert fmt.tone(-0.1234) == "\u22120,12"
    assert fmt.tone(-0.001) == "0,00"  # no negative zero
    assert fmt.change(0.05) == "+0,05" and fmt.change(-0.05) == "\u22120,05" and fmt.change(None) == "–"
    assert fmt.percent(0.253) == "25\u00a0%"
    assert fmt.long_date(date(2026, 11, 23)) == "23. november 2026"
    assert fmt.week_label("2026-W47") == "uke 47"
    assert fmt.interval(-0.31, -0.05) == "\u22120,31 til \u22120,05"
    assert fmt.interval(None, None) == "–"


def test_weeks_default_is_the_last_complete_oslo_week() -> None:
    from datetime import UTC

    from tonevakt.errors import ReportError

    assert dates.last_complete_week(NOW) == WEEK
    # Sunday 23:30 in Oslo is still in week 47 (22:30 UTC): the last complete week is 46
    assert dates.last_complete_week(datetime(2026, 11, 22, 22, 30, tzinfo=UTC)) == "2026-W46"
    # Monday 00:30 in Oslo (Sunday 23:30 UTC): week 47 has ended
    assert dates.last_complete_week(datetime(2026, 11, 22, 23, 30, tzinfo=UTC)) == "2026-W47"
    assert dates.weeks_ending("2027-W02", 4) == ["2026-W52", "2026-W53", "2027-W01", "2027-W02"]
    with pytest.raises(ReportError, match="2026-W47"):
        dates.parse_week("2026-47")


def test_report_cli_writes_the_folder(seeded: Any, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tonevakt.cli import main

    settings, _, _ = seeded
    res = CliRunner().invoke(
        main, ["--config", settings.file, "report", "--week", "2026-W46", "--out", str(tmp_path), "--no-pdf"]
    )
    assert res.exit_code == 0, res.output
    folder = tmp_path / "2026-W46"
    assert (folder / "tonevakt-2026-W46.html").exists() and (folder / "tonevakt-2026-W46.json").exists()
    assert not (folder / "tonevakt-2026-W46.pdf").exists()
    assert str(folder) in res.output
    res = CliRunner().invoke(main, ["--config", settings.file, "report", "--week", "47"])
    assert res.exit_code == 1 and "2026-W47" in res.output


def test_an_empty_week_still_gives_a_readable_report(make_settings: Any, tmp_path: Path) -> None:
    from tonevakt import pipeline

    settings = make_settings(sources=SOURCES)
    pipeline.init(settings)
    paths = write_report(settings, "2026-W01", out_dir=tmp_path, now=NOW)
    html = paths.html.read_text(encoding="utf-8")
    assert "ingen data" in html and "Ingen varsler" in html and "Ingen aktiv modell" in html
    assert "Alle 5 aktive kilder svarte" not in html  # never fetched is not "answered"
    data = json.loads(paths.json.read_text(encoding="utf-8"))
    assert data["gap"] is None and all(c is None for c in data["series"]["media"])
    assert paths.pdf is not None and paths.pdf.stat().st_size > 1000


@pytest.mark.parametrize(
    ("dev_set", "named", "not_named"),
    [
        (INDOMAIN_DEV, "de merkede tekstene om Helseplattformen", "NoReC_sentence"),
        (NOREC_DEV, "NoReC_sentence", "merkede tekstene om Helseplattformen"),
        (None, "det er ikke registrert hvilke tekster", "NoReC_sentence"),
    ],
)
def test_method_names_the_data_set_the_model_was_measured_on(
    tmp_path: Path, dev_set: str | None, named: str, not_named: str
) -> None:
    """The tone model's figure is on the texts about Helseplattformen, a NoReC model's on NoReC: the report says
    which (before, every figure was called a NoReC figure, the tone model's 0.69 included)."""
    settings = settings_in(tmp_path, sources=SOURCES)
    seed(settings, history_weeks=2)
    with database(settings.db_path) as db:
        repo.register_model(db, MODEL, "e5-torch", "testmodell", 0.6876, dev_set=dev_set)
        assert db.scalar("SELECT dev_set FROM models WHERE id = ?", [MODEL]) == dev_set
    method = write_report(settings, WEEK, now=NOW).html.read_text(encoding="utf-8")
    method = method[method.index('id="metode"') :]
    assert "makro-F1 0,69" in method
    assert named in method and not_named not in method

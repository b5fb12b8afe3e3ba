"""`tonevakt trend`: the terminal table with sparklines and week-over-week change, from weekly_tone."""

from __future__ import annotations

import statistics
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.seed import WEEK, seed, seed_settings
from tonevakt import dates
from tonevakt.cli import main
from tonevakt.dates import iso_week
from tonevakt.reports.data import ToneCell
from tonevakt.reports.trend import sparkline, trend_rows
from tonevakt.storage.db import open_for_reading


def test_sparkline_scale_and_gaps() -> None:
    cells = [
        ToneCell("w", "media", 5, t, None, None) if t is not None else None for t in (-1.0, 0.0, None, 1.0)
    ]
    assert sparkline(cells) == "▁▅·█"


def test_trend_rows_follow_weekly_tone(make_settings: Any) -> None:
    settings = seed_settings(make_settings)
    written = seed(settings, history_weeks=4)
    db = open_for_reading(settings.db_path)
    try:
        rows = trend_rows(db, WEEK, 4, ["patient"])
    finally:
        db.close()
    (row,) = rows
    assert [c.week for c in row.cells if c] == dates.weeks_ending(WEEK, 4)
    # independent: mean patient tone of the last two weeks from the seeded scores
    by_week: dict[str, list[float]] = {}
    score = {s.document_id: s.tone for s in written["scores"] if s.model == "test-model"}
    for d in written["docs"]:
        if d.voice == "patient":
            by_week.setdefault(iso_week(d.published_at), []).append(score[d.id])
    last, before = statistics.fmean(by_week[WEEK]), statistics.fmean(by_week[dates.shift_week(WEEK, -1)])
    assert row.cells[-1].tone == pytest.approx(last)  # type: ignore[union-attr]
    # the cell as the report builds it (reports/data.tone_cell): n, and thin below min_n
    assert row.cells[-1].n == len(by_week[WEEK])  # type: ignore[union-attr]
    assert row.cells[-1].thin == (len(by_week[WEEK]) < 5)  # type: ignore[union-attr]
    assert row.change == pytest.approx(last - before)


def test_trend_cli_prints_table(make_settings: Any) -> None:
    settings = seed_settings(make_settings)
    seed(settings, history_weeks=3)
    res = CliRunner().invoke(
        main,
        [
            "--config",
            settings.file,
            "trend",
            "--week",
            WEEK,
            "--weeks",
            "5",
            "--voice",
            "media",
            "--voice",
            "patient",
        ],
    )
    assert res.exit_code == 0, res.output
    assert "media" in res.output and "patient" in res.output and "union" not in res.output
    media_line = next(line for line in res.output.splitlines() if "media" in line)
    assert "··" in media_line  # two weeks before the seeded history: gaps, not zeros
    assert "+" in media_line or "-" in media_line
    res = CliRunner().invoke(main, ["--config", settings.file, "trend", "--week", WEEK, "--topic", "costs"])
    assert res.exit_code == 0 and "topic costs" in res.output
    res = CliRunner().invoke(main, ["--config", settings.file, "trend", "--week", WEEK, "--topic", "nope"])
    assert res.exit_code == 1 and "nope" in res.output

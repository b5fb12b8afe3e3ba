"""`tonevakt label --queue` and `--undo` (issue 15) end to end on a real database file: the queue's order, its
keys driven through the CLI (in-process and as a real subprocess with stdin), and undo."""

from __future__ import annotations

import math
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.support.config import settings_in
from tests.support.paths import tonevakt_command
from tests.support.seed import SOURCES, seed
from tonevakt.cli import main
from tonevakt.config import Settings
from tonevakt.storage.db import database, open_for_reading
from tonevakt.storage.labels import label_queue, uncertainty

ALL_WEEKS = "520"  # the seed's weeks lie in 2026: take every one of them whatever today's date


@pytest.fixture
def seeded(tmp_path: Path) -> tuple[Settings, dict[str, Any]]:
    settings = settings_in(tmp_path, sources=SOURCES)
    return settings, seed(settings)


def _queue(settings: Settings, limit: int) -> list[Any]:
    db = open_for_reading(settings.db_path)
    try:
        return label_queue(db, datetime.now(UTC) - timedelta(weeks=int(ALL_WEEKS)), limit)
    finally:
        db.close()


def _labels(settings: Settings) -> dict[str, str]:
    db = open_for_reading(settings.db_path)
    try:
        return dict(db.fetchall("SELECT document_id, label FROM labels"))
    finally:
        db.close()


def test_uncertainty_is_normalised_entropy() -> None:
    assert uncertainty((1 / 3, 1 / 3, 1 / 3)) == pytest.approx(1.0)
    assert uncertainty((1.0, 0.0, 0.0)) == 0.0
    assert uncertainty((0.5, 0.5, 0.0)) == pytest.approx(math.log(2) / math.log(3))


def test_queue_takes_uncertain_and_widely_read_stories_from_every_voice(
    seeded: tuple[Settings, dict[str, Any]],
) -> None:
    settings, written = seeded
    items = _queue(settings, 12)
    assert len(items) == 12
    # spread: the first four come from four different voices
    assert len({it.voice for it in items[:4]}) == 4
    # within a voice, the most worthwhile first; a story a human labelled is never offered
    for voice in {it.voice for it in items}:
        worth = [it.worth for it in items if it.voice == voice]
        assert worth == sorted(worth, reverse=True)
    assert written["labelled"] not in {it.document_id for it in items}
    # the syndicated story (3 copies) carries its reach: worth = uncertainty + 0.5 · log(1 + 3) / log(1 + 3)
    everything = _queue(settings, 10_000)
    syndicated = next(it for it in everything if it.copies == 3)
    assert syndicated.worth == pytest.approx(syndicated.uncertainty + 0.5)
    media = [it for it in everything if it.voice == "media"]
    assert media[0].document_id == syndicated.document_id  # the widely read story leads its voice
    # every offered item shows what the officer needs
    for it in items:
        assert it.title and it.outlet and it.passage and it.model_label in ("negative", "neutral", "positive")


def test_queue_keys_end_to_end_in_process(seeded: tuple[Settings, dict[str, Any]]) -> None:
    settings, written = seeded
    first, second, third = _queue(settings, 3)
    # n: first negative; u: second neutral; s: skip third... then z takes back the second's label and
    # shows it again; p: second positive; x: an unknown key is explained; q: quit.
    res = CliRunner().invoke(
        main,
        [
            "--config",
            str(settings.file),
            "label",
            "--queue",
            "--limit",
            "3",
            "--weeks",
            ALL_WEEKS,
            "--by",
            "KO",
        ],
        input="n\nu\nz\np\nx\ns\nq\n",
    )
    assert res.exit_code == 0, res.output
    out = res.output
    assert first.title in out and first.outlet in out and first.passage[:40] in out
    assert "[2/3]" in out and "undid neutral for" in out and "unknown key 'x'" in out
    assert out.count(f"[2/3] {second.voice}") == 2  # shown again after the undo
    assert "labelled 2, skipped 1, undone 1" in out
    labels = _labels(settings)
    assert labels[first.document_id] == "negative"
    assert labels[second.document_id] == "positive"
    assert third.document_id not in labels
    assert labels[written["labelled"]] == "positive"  # the label from before is untouched
    with database(settings.db_path) as db:
        history = db.fetchall(
            "SELECT document_id, label, labelled_by, undone_at IS NOT NULL FROM label_history ORDER BY id"
        )
    assert history[-3:] == [
        (first.document_id, "negative", "KO", False),
        (second.document_id, "neutral", "KO", True),
        (second.document_id, "positive", "KO", False),
    ]
    # the next queue leaves out what was just labelled
    assert {first.document_id, second.document_id}.isdisjoint({it.document_id for it in _queue(settings, 50)})


def test_undo_from_the_command_line_restores_the_label_it_replaced(
    seeded: tuple[Settings, dict[str, Any]],
) -> None:
    settings, written = seeded
    doc = written["labelled"]  # labelled positive by the seed
    cfg = str(settings.file)
    assert CliRunner().invoke(main, ["--config", cfg, "label", doc, "negative"]).exit_code == 0
    assert _labels(settings)[doc] == "negative"
    res = CliRunner().invoke(main, ["--config", cfg, "label", "--undo"])
    assert (
        res.exit_code == 0 and f"undid the label negative of {doc}; its label is positive again" in res.output
    )
    assert _labels(settings)[doc] == "positive"
    res = CliRunner().invoke(main, ["--config", cfg, "label", "--undo"])
    assert res.exit_code == 0 and "it has no label now" in res.output
    assert doc not in _labels(settings)
    res = CliRunner().invoke(main, ["--config", cfg, "label", "--undo"])
    assert res.exit_code == 1 and "no label to undo" in res.output
    res = CliRunner().invoke(main, ["--config", cfg, "label"])
    assert res.exit_code == 2 and "give DOCUMENT_ID and LABEL, or --queue, or --undo" in res.output
    res = CliRunner().invoke(main, ["--config", cfg, "label", "--queue", doc, "negative"])
    assert res.exit_code == 2


def test_queue_as_a_real_subprocess_reading_stdin(seeded: tuple[Settings, dict[str, Any]]) -> None:
    settings, _ = seeded
    first, second = _queue(settings, 2)
    exe = tonevakt_command()
    run = subprocess.run(
        [exe, "--config", str(settings.file), "label", "--queue", "--limit", "2", "--weeks", ALL_WEEKS],
        input="p\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    # one label, then the end of input reads as q
    assert run.returncode == 0, run.stderr
    assert "stored: positive" in run.stdout and "labelled 1, skipped 0, undone 0" in run.stdout
    assert _labels(settings)[first.document_id] == "positive" and second.document_id not in _labels(settings)


def test_empty_queue_says_so(make_settings: Any) -> None:
    settings = make_settings()
    assert CliRunner().invoke(main, ["--config", str(settings.file), "init"]).exit_code == 0
    res = CliRunner().invoke(main, ["--config", str(settings.file), "label", "--queue"])
    assert (
        res.exit_code == 0
        and "nothing to label: every scored story of the last 12 weeks has a human label" in res.output
    )

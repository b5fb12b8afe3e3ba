"""The demo: a synthetic archive, labelled as such, served on 127.0.0.1 and collected by the real pipeline
into its own database; with a sentiment model present, the whole `make demo` run down to the dashboard."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from tests.support.paths import REPO

sys.path.insert(0, str(REPO / "demo"))

from serve import ARCHIVE, OSLO, DemoServer, fill_dates  # noqa: E402

from tonevakt import pipeline  # noqa: E402
from tonevakt.config import load_config  # noqa: E402
from tonevakt.reports.data import is_synthetic  # noqa: E402
from tonevakt.storage.db import open_for_reading  # noqa: E402

TODAY = date(2026, 11, 25)  # a Wednesday in 2026-W48


def _model_available() -> str | None:
    from tonevakt.config import SentimentSettings
    from tonevakt.errors import ModelError
    from tonevakt.nlp.sentiment import load_scorer

    try:
        load_scorer(SentimentSettings())
    except ModelError as e:
        return str(e)
    return None


def test_every_archive_file_says_it_is_synthetic() -> None:
    files = [p for p in ARCHIVE.rglob("*") if p.is_file()]
    assert len(files) > 50
    for p in files:
        text = p.read_text(encoding="utf-8")
        assert "SYNTETISK" in text.upper() or "syntetisk" in p.name, p


def test_date_placeholders_fill_relative_to_the_current_week() -> None:
    text = "@@DATE:1:2:0930:rfc822@@ | @@DATE:14:0:0005:iso@@ | @@BASE@@/x"
    rfc, iso, base = fill_dates(text, TODAY, "http://127.0.0.1:1").split(" | ")
    assert parsedate_to_datetime(rfc) == datetime(2026, 11, 18, 9, 30, tzinfo=OSLO)  # Wednesday of W47
    assert datetime.fromisoformat(iso) == datetime(2026, 8, 17, 0, 5, tzinfo=OSLO)  # Monday, 14 weeks back
    assert base == "http://127.0.0.1:1/x"


def test_server_binds_loopback_and_stays_inside_the_archive() -> None:
    with DemoServer(today=TODAY) as srv:
        assert srv.base.startswith("http://127.0.0.1:")
        body = urllib.request.urlopen(f"{srv.base}/feeds/nrk-trondelag.xml", timeout=5).read().decode()
        assert "@@" not in body and "SYNTETISK DEMO" in body and srv.base in body
        for bad in ("/../Makefile", "/%2e%2e/config.yaml", "/nope.xml"):
            with pytest.raises(urllib.error.HTTPError) as e:
                urllib.request.urlopen(srv.base + bad, timeout=5)
            assert e.value.code == 404


def test_real_pipeline_collects_the_archive_into_its_own_database(tmp_path: Path) -> None:
    import yaml
    from run import demo_config

    (tmp_path / "inbox").mkdir()
    for f in (ARCHIVE / "inbox").iterdir():
        (tmp_path / "inbox" / f.name).write_text(
            fill_dates(f.read_text(encoding="utf-8"), TODAY), encoding="utf-8"
        )
    with DemoServer(today=TODAY) as srv:
        (tmp_path / "config.yaml").write_text(
            yaml.safe_dump(demo_config(srv.base, REPO / "config.yaml"), allow_unicode=True), encoding="utf-8"
        )
        settings = load_config(tmp_path / "config.yaml")
        assert is_synthetic(settings) and settings.http.allow_private_addresses
        summary = pipeline.collect(settings)
    assert summary.sources_failed == 1 and summary.failures[0][0] == "syntetisk-fagforbundet"
    db = open_for_reading(settings.db_path)
    try:
        counts = dict(db.fetchall("SELECT voice, count(*) FROM documents WHERE relevant GROUP BY voice"))
        weeks = db.scalar(
            "SELECT count(DISTINCT strftime(timezone('Europe/Oslo', published_at), '%G-W%V')) FROM documents"
        )
        copies = db.scalar(
            "SELECT count(*) - count(DISTINCT coalesce(story_id, id)) FROM documents "
            "WHERE source_id IN ('syntetisk-nrk-more-og-romsdal', 'syntetisk-sunnmorsposten')"
        )
        irrelevant = db.scalar("SELECT count(*) FROM documents WHERE NOT relevant")
    finally:
        db.close()
    assert settings.db_path.parent == tmp_path
    assert (
        counts["media"] > 80
        and counts["union"] >= 20
        and counts["official"] >= 12
        and counts["patient"] >= 100
    )
    assert weeks == 14  # twelve weeks and more of history
    assert copies >= 10  # Sunnmørsposten runs NRK Møre og Romsdal's stories: syndicated copies
    assert irrelevant >= 14  # the weekly football story is not about Helseplattformen


@pytest.mark.slow
def test_make_demo_end_to_end(tmp_path: Path) -> None:
    reason = _model_available()
    if reason:
        pytest.skip(f"no sentiment model here: {reason}")
    from run import main

    assert main(["--out", str(tmp_path / "out"), "--reports", "2"]) == 0
    html = next((tmp_path / "out" / "reports").glob("*/tonevakt-*.html")).read_text(encoding="utf-8")
    assert "SYNTETISKE DEMODATA" in html
    board = (tmp_path / "out" / "reports" / "dashboard" / "index.html").read_text(encoding="utf-8")
    assert "SYNTETISKE DEMODATA" in board

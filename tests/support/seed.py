"""A seeded database for the report, dashboard and trend tests: known documents, scores, labels, models
and source health, written through tonevakt.storage.repository into a real DuckDB file.

Imported by tests/test_report*.py, test_dashboard.py, test_trend.py.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from tonevakt import dates
from tonevakt.config import Settings
from tonevakt.dates import OSLO
from tonevakt.models import Document, FetchLogEntry, FetchStatus, Score
from tonevakt.storage import repository as repo
from tonevakt.storage.db import database

WEEK = "2026-W47"  # Monday 16 November – Sunday 22 November 2026
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=OSLO)  # the Monday 07:00 job after WEEK
XSS_TITLE = "<script>alert(1)</script>"
FORMULA_TITLE = '=HYPERLINK("http://127.0.0.1/x","klikk")'
MODEL = "test-model"
OTHER_MODEL = "old-model"

SOURCES: list[dict[str, Any]] = [
    {
        "id": "nrk",
        "name": "NRK Trøndelag",
        "kind": "rss",
        "voice": "media",
        "region": "trondelag",
        "url": "http://127.0.0.1:9/nrk.rss",
    },
    {
        "id": "smp",
        "name": "Sunnmørsposten",
        "kind": "rss",
        "voice": "media",
        "region": "more_og_romsdal",
        "url": "http://127.0.0.1:9/smp.rss",
        "paywalled": True,
    },
    {
        "id": "legeforeningen",
        "name": "Legeforeningen",
        "kind": "web",
        "voice": "union",
        "url": "http://127.0.0.1:9/lege/",
    },
    {"id": "helsami", "name": "HelsaMi (App Store)", "kind": "appstore", "voice": "patient", "app_id": "1"},
    {
        "id": "hmn",
        "name": "Helse Midt-Norge",
        "kind": "web",
        "voice": "official",
        "url": "http://127.0.0.1:9/hmn/",
    },
]

TOPICS = ["costs", "faults", "patient_access"]
REGIONS = ["trondelag", "more_og_romsdal"]


def seed_settings(make_settings: Any, **over: Any) -> Settings:
    return make_settings(sources=SOURCES, **over)


def _score(doc_id: str, tone: float, model: str = MODEL) -> Score:
    # p_pos - p_neg = tone with p_neutral = 0.2 (or what is left)
    neutral = max(0.0, min(0.2, 1 - abs(tone)))
    p_pos = (1 - neutral + tone) / 2
    p_neg = (1 - neutral - tone) / 2
    label = "positive" if tone > 0.15 else "negative" if tone < -0.15 else "neutral"
    return Score(doc_id, model, tone, label, p_neg, neutral, p_pos, passage=f"Passasje for {doc_id}.")


def seed(settings: Settings, history_weeks: int = 12) -> dict[str, Any]:
    """Write the seeded archive; returns what was written (for tests that check one detail)."""
    rng = random.Random(47)
    docs: list[Document] = []
    scores: list[Score] = []
    weeks = dates.weeks_ending(WEEK, history_weeks)
    per_voice = {
        "media": ("nrk", "smp"),
        "union": ("legeforeningen",),
        "patient": ("helsami",),
        "official": ("hmn",),
    }
    # counts per week: media busier in WEEK (a spike), official thin
    for wi, week in enumerate(weeks):
        monday = datetime.combine(dates.week_monday(week), datetime.min.time(), tzinfo=OSLO)
        for voice, srcs in per_voice.items():
            n = {"media": 6, "union": 3, "patient": 7, "official": 2}[voice]
            if week == WEEK and voice == "media":
                n = 16
            for i in range(n):
                src = srcs[i % len(srcs)]
                shift = -0.35 if voice == "media" and week == WEEK else 0.0
                base = {"media": -0.1, "union": -0.3, "patient": 0.25, "official": 0.3}[voice] + shift
                tone = max(-0.98, min(0.98, round(base + rng.uniform(-0.5, 0.5), 4)))
                when = monday + timedelta(days=i % 7, hours=8 + i % 10, minutes=wi)
                title = f"{voice} sak {week} nr {i}"
                if week == WEEK and voice == "media" and i == 0:
                    title = XSS_TITLE
                    tone = -0.97  # the most negative story: every report and page shows it
                if week == WEEK and voice == "media" and i == 1:
                    title = FORMULA_TITLE
                d = Document(
                    source_id=src,
                    voice=voice,
                    title=title,
                    text=f"Helseplattformen {title}. " * 3,
                    url=f"http://127.0.0.1:9/{src}/{week}/{i}",
                    published_at=when.astimezone(UTC),
                    collected_at=when.astimezone(UTC),
                    language="nb",
                    relevant=True,
                    matched=["helseplattform*"],
                    topics=[TOPICS[i % 3]] + (["costs"] if i % 5 == 4 and TOPICS[i % 3] != "costs" else []),
                    regions=[REGIONS[i % 2]] if voice != "official" else [],
                    region={"nrk": "trondelag", "smp": "more_og_romsdal"}.get(src),
                    paywalled=src == "smp",
                    kind="review" if voice == "patient" else "article",
                    rating=(1 + (i * 3 + wi) % 5) if voice == "patient" else None,
                    outlet={"nrk": "NRK Trøndelag", "smp": "Sunnmørsposten"}.get(src),
                )
                docs.append(d)
                scores.append(_score(d.id, tone))
    # syndicated copies: two extra media copies of WEEK's story 3 (same story_id), a day later
    target = next(d for d in docs if d.title == f"media sak {WEEK} nr 3")
    target.story_id = "story-syndicated"
    for k in range(2):
        copy = Document(
            source_id="smp",
            voice="media",
            title=target.title + f" (kopi {k})",
            text=target.text,
            url=f"http://127.0.0.1:9/smp/copy/{k}",
            published_at=target.published_at + timedelta(days=1),
            collected_at=target.published_at + timedelta(days=1),
            relevant=True,
            topics=list(target.topics),
            regions=list(target.regions),
            region="more_og_romsdal",
            paywalled=True,
            story_id="story-syndicated",
        )
        docs.append(copy)
        scores.append(_score(copy.id, 0.9))  # copies must not count: a very different tone shows if they do
    # irrelevant document (excluded), and a document scored only by a non-active model (excluded)
    monday = datetime.combine(dates.week_monday(WEEK), datetime.min.time(), tzinfo=OSLO).astimezone(UTC)
    irrelevant = Document(
        source_id="nrk",
        voice="media",
        title="Fotball",
        text="Rosenborg vant.",
        url="http://127.0.0.1:9/nrk/fotball",
        published_at=monday + timedelta(hours=30),
        relevant=False,
    )
    docs.append(irrelevant)
    scores.append(_score(irrelevant.id, -0.9))
    old_only = Document(
        source_id="nrk",
        voice="media",
        title="Gammel modell",
        text="Helseplattformen.",
        url="http://127.0.0.1:9/nrk/old",
        published_at=monday + timedelta(hours=31),
        relevant=True,
    )
    docs.append(old_only)
    scores.append(_score(old_only.id, -0.9, model=OTHER_MODEL))
    # a human label overriding the model on one union statement of WEEK
    labelled = next(d for d in docs if d.title == f"union sak {WEEK} nr 0")

    with database(settings.db_path) as db:
        repo.sync_sources(db, settings.source_records())
        with db.transaction():
            repo.insert_documents(db, docs)
        repo.register_model(db, OTHER_MODEL, "embedded", "old", 0.5, active=False)
        repo.register_model(db, MODEL, "embedded", "testmodell", 0.6432, active=True)
        repo.save_scores(db, scores)
        repo.set_label(db, labelled.id, "positive", "TV", "test")
        failing_at = datetime(2026, 11, 19, 6, 30, tzinfo=UTC)
        with db.transaction():
            for k in range(3):
                repo.record_fetch(
                    db,
                    FetchLogEntry(
                        source_id="hmn",
                        url="http://127.0.0.1:9/hmn/",
                        status=FetchStatus.HARD_ERROR,
                        started_at=failing_at + timedelta(hours=k),
                        http_status=404,
                        reason="HTTP 404 <b>",
                    ),
                    240,
                )
            repo.record_fetch(
                db,
                FetchLogEntry(
                    source_id="nrk",
                    url="http://127.0.0.1:9/nrk.rss",
                    status=FetchStatus.OK,
                    started_at=failing_at,
                ),
                30,
            )
    return {"docs": docs, "scores": scores, "labelled": labelled.id, "failing_at": failing_at}

"""storage/kept_tone.py and migration 0008: the kept story tone gives exactly the rows of the views as migrations
0002 and 0003 defined them (recomputed from every document), after scoring, rescoring, human labels that
override the model, a change of active model, a document that changes story, an earlier copy scored late, and
when 0008 is applied to a database that already holds an archive."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tonevakt.models import Document, Score
from tonevakt.storage import repository as repo
from tonevakt.storage.db import Database, migrations, open_database
from tonevakt.storage.kept_tone import REBUILD_ABOVE, refresh_tone

VIEWS = (
    "document_tone",
    "story_tone",
    "weekly_tone",
    "weekly_topic_tone",
    "weekly_region_tone",
    "weekly_volume",
    "weekly_rating",
)
T0 = datetime(2026, 10, 5, 8, tzinfo=UTC)  # a Monday


def _old_views(db: Database) -> None:
    """The views of migrations 0002 and 0003, as they were, under the name old_<view> (temporary)."""
    folder = resources.files("tonevakt.storage") / "migrations"
    names = re.compile(r"\b(" + "|".join(VIEWS) + r")\b")
    for name in ("0002_views.sql", "0003_report_views.sql"):
        sql = (folder / name).read_text(encoding="utf-8")
        sql = names.sub(lambda m: "old_" + m[1], sql).replace("CREATE VIEW", "CREATE OR REPLACE TEMP VIEW")
        db.con.execute(sql)


def _norm(v: Any) -> Any:
    # The same values aggregated in another order may differ in the last bits of a double.
    if isinstance(v, float):
        return None if math.isnan(v) else float(f"{v:.12g}")
    if isinstance(v, list):
        return tuple(_norm(x) for x in v)
    return v


def _rows(db: Database, sql: str) -> list[tuple[Any, ...]]:
    return sorted((tuple(_norm(v) for v in r) for r in db.fetchall(sql)), key=repr)


def assert_same_as_old(db: Database) -> None:
    _old_views(db)
    for view in VIEWS:
        old = _rows(db, f"SELECT * FROM old_{view}")
        new = _rows(db, f"SELECT * FROM {view}")
        assert new == old, view
        cols_old = [d[0] for d in db.execute(f"SELECT * FROM old_{view} LIMIT 0").description]
        assert [d[0] for d in db.execute(f"SELECT * FROM {view} LIMIT 0").description] == cols_old, view


def _doc(i: int, voice: str = "media", story: str | None = None, hours: float = 0, **kw: Any) -> Document:
    src = {"media": "nrk", "patient": "app", "union": "lege"}[voice]
    return Document(
        source_id=src,
        voice=voice,
        title=f"Helseplattformen sak {i}",
        text=f"Tekst {i}.",
        url=f"https://{src}.example.no/sak-{i}",
        relevant=kw.pop("relevant", True),
        published_at=T0 + timedelta(hours=hours if hours else 13 * i),
        topics=kw.pop("topics", ["costs", "faults"][: 1 + i % 2]),
        regions=kw.pop("regions", ["trondelag"] if i % 3 else []),
        region=kw.pop("region", "more_og_romsdal" if i % 4 == 0 else None),
        rating=(1 + i % 5) if voice == "patient" else None,
        story_id=story,
        paywalled=i % 5 == 0,
        **kw,
    )


def _score(d: Document, tone: float, model: str = "m1") -> Score:
    label = "positive" if tone > 0.2 else "negative" if tone < -0.2 else "neutral"
    return Score(d.id, model, tone, label, 0.2, 0.3, 0.5, passage=f"Passasje {d.title}", n_passages=1)


@pytest.fixture
def archive(tmp_path: Path) -> tuple[Database, list[Document]]:
    db = open_database(tmp_path / "t.duckdb")
    db.execute(
        "INSERT INTO sources (id, kind, voice, name) VALUES ('nrk', 'rss', 'media', 'NRK'), "
        "('app', 'appstore', 'patient', 'HelsaMi'), ('lege', 'web', 'union', 'Legeforeningen')"
    )
    docs = [_doc(i, voice=("media", "patient", "union")[i % 3]) for i in range(40)]
    docs += [_doc(100 + k, story="story-a", hours=30 + k) for k in range(3)]  # three copies of one story
    docs += [_doc(200, relevant=False)]
    repo.insert_documents(db, docs)
    repo.register_model(db, "m1", "embedded")
    repo.save_scores(db, [_score(d, math.sin(i * 1.7)) for i, d in enumerate(docs)])
    yield db, docs
    db.close()


def test_kept_tone_equals_the_old_definition_through_every_write(
    archive: tuple[Database, list[Document]],
) -> None:
    db, docs = archive
    assert db.scalar("SELECT count(*) FROM document_tone_kept") == 43  # relevant and scored
    assert db.scalar("SELECT copies FROM document_tone_kept WHERE story = 'story-a' AND first_copy") == 3
    assert_same_as_old(db)

    # rescoring with the active model changes the kept tone
    repo.save_scores(db, [_score(d, -0.9) for d in docs[:6]])
    assert db.scalar("SELECT tone FROM document_tone_kept WHERE document_id = ?", [docs[0].id]) == -0.9
    assert_same_as_old(db)

    # a human label overrides the model, on a scored document and on a copy of a story
    repo.set_label(db, docs[1].id, "positive")
    repo.set_label(db, docs[41].id, "negative")
    assert db.scalar("SELECT tone FROM story_tone WHERE document_id = ?", [docs[1].id]) == 1.0
    assert_same_as_old(db)

    # a document that was not scored enters with its label alone, and an earlier copy scored late takes
    # over its story (the story moves to the earlier week)
    late = [_doc(300), _doc(301, story="story-a", hours=-100)]
    repo.insert_documents(db, late)
    repo.set_label(db, late[0].id, "neutral")
    assert db.scalar("SELECT count(*) FROM document_tone WHERE document_id = ?", [late[1].id]) == 0
    repo.save_scores(db, [_score(late[1], 0.5)])
    assert db.scalar("SELECT document_id FROM story_tone WHERE story_id = 'story-a'") == late[1].id
    assert_same_as_old(db)

    # a document changes story (a later near-copy grouping): it leaves its story and joins another
    moved = docs[3]
    with db.transaction():
        db.execute("UPDATE documents SET story_id = 'story-a' WHERE id = ?", [moved.id])
        refresh_tone(db, [moved.id])
    assert db.scalar("SELECT copies FROM document_tone_kept WHERE story = 'story-a' AND first_copy") == 5
    assert_same_as_old(db)

    # another active model: only its scores count, labels still win; then back again
    repo.register_model(db, "m2", "transformers")
    repo.save_scores(db, [_score(d, 0.3, model="m2") for d in docs[10:20]])
    assert db.scalar("SELECT count(*) FROM document_tone_kept WHERE model = 'm2'") == 10
    assert_same_as_old(db)
    repo.register_model(db, "m1", "embedded")
    assert db.scalar("SELECT count(*) FROM document_tone_kept WHERE model = 'm2'") == 0
    assert_same_as_old(db)


def test_a_write_that_fails_leaves_the_kept_tone_as_it_was(archive: tuple[Database, list[Document]]) -> None:
    db, docs = archive
    before = _rows(db, "SELECT * FROM document_tone_kept")
    with pytest.raises(RuntimeError), db.transaction():
        db.execute("UPDATE documents SET story_id = 'elsewhere' WHERE id = ?", [docs[5].id])
        refresh_tone(db, [docs[5].id])
        raise RuntimeError("the batch failed after the refresh")
    assert _rows(db, "SELECT * FROM document_tone_kept") == before


def test_a_rescore_of_many_stories_recomputes_everything_once(
    archive: tuple[Database, list[Document]], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, docs = archive
    monkeypatch.setattr("tonevakt.storage.kept_tone.REBUILD_ABOVE", 5)
    assert REBUILD_ABOVE > 1000  # the real threshold: only an archive-wide rescore takes this path
    repo.save_scores(db, [_score(d, -0.4) for d in docs])
    assert db.scalar("SELECT count(*) FROM document_tone_kept WHERE tone = -0.4") == 43
    assert_same_as_old(db)


def test_migration_0008_keeps_the_tone_of_an_existing_archive(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    db = open_database(path, migrate=False)
    db.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
        "applied_at TIMESTAMPTZ NOT NULL)"
    )
    for m in migrations():
        if m.version < 8:
            db.con.execute(m.sql)
            db.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [m.version, m.name])
    # an archive written before 0008, by the writes of that time (plain SQL: no kept table yet)
    db.execute("INSERT INTO models VALUES ('m1', 'embedded', '', NULL, TRUE, now())")
    for i in range(30):
        story = "story-x" if i % 7 == 0 else f"doc-{i}"
        db.execute(
            """INSERT INTO documents (id, source_id, voice, kind, title, text, published_at, collected_at, relevant,
                                      topics, regions, region, rating, story_id)
               VALUES (?, 'nrk', ?, 'article', ?, 'Helseplattformen.', ?, ?, TRUE, ['costs'], ['trondelag'], NULL, ?, ?)""",
            [
                f"doc-{i}",
                ("media", "patient")[i % 2],
                f"Sak {i}",
                T0 + timedelta(hours=17 * i),
                T0 + timedelta(hours=17 * i),
                1 + i % 5,
                story,
            ],
        )
        db.execute(
            "INSERT INTO scores VALUES (?, 'm1', ?, 'neutral', 0.3, 0.4, 0.3, 'x', 1, now())",
            [f"doc-{i}", math.cos(i)],
        )
    db.execute("INSERT INTO labels VALUES ('doc-4', 'negative', 'test', NULL, now())")
    assert 8 not in db.applied_migrations()
    db.migrate()
    assert 8 in db.applied_migrations()
    assert db.scalar("SELECT count(*) FROM document_tone_kept") == 30
    assert_same_as_old(db)
    db.close()


def _parquet(db: Database, pattern: Path) -> list[tuple[Any, ...]]:
    return sorted(
        (tuple(_norm(v) for v in r) for r in db.fetchall(f"SELECT * FROM read_parquet('{pattern}')")),
        key=repr,
    )


def test_exports_rewrite_only_the_weeks_that_changed(
    archive: tuple[Database, list[Document]], tmp_path: Path
) -> None:
    from tonevakt.storage.snapshot import PARTITIONED, publish_exports

    db, docs = archive
    folder = tmp_path / "exports"
    first = publish_exports(db, folder)
    assert first["documents"] >= 1 and first["document_tone"] >= 3  # the archive spans several weeks

    def same_as_tables() -> None:
        for name, *_ in PARTITIONED:
            assert _parquet(db, folder / name / "*.parquet") == _rows(db, f"SELECT * FROM {name}"), name
        assert _parquet(db, folder / "weekly_tone.parquet") == _rows(db, "SELECT * FROM weekly_tone")

    same_as_tables()
    # nothing changed: no weekly file is written again
    again = publish_exports(db, folder)
    assert {k: again[k] for k, *_ in PARTITIONED} == {k: 0 for k, *_ in PARTITIONED}
    # a label changes one week of document_tone (and no document or score)
    repo.set_label(db, docs[7].id, "negative")
    after_label = publish_exports(db, folder)
    assert after_label["document_tone"] == 1 and after_label["documents"] == 0 and after_label["scores"] == 0
    same_as_tables()
    # a document that leaves the archive's views (here: deleted) removes rows from its week's files
    with db.transaction():
        db.execute("DELETE FROM scores WHERE document_id = ?", [docs[8].id])
        refresh_tone(db, [docs[8].id])
    assert publish_exports(db, folder)["document_tone"] == 1
    same_as_tables()
    manifest = (folder / "manifest.json").read_text(encoding="utf-8")
    assert '"document_tone"' in manifest and "W4" in manifest


def test_weekly_views_interval_is_the_reference_formula(make_settings) -> None:  # noqa: ANN001
    """weekly_tone's mean and 95 % interval equal `stats.mean_interval` over the week's story tones (the same
    reference the dashboard's script is held to in test_dashboard.py)."""
    from tests.support.seed import seed, seed_settings
    from tonevakt.stats import mean_interval
    from tonevakt.storage.db import database

    settings = seed_settings(make_settings)
    seed(settings)
    with database(settings.db_path, 5) as db:
        stories: dict[tuple[str, str], list[float]] = {}
        for week, voice, tone in db.fetchall("SELECT week, voice, tone FROM story_tone"):
            stories.setdefault((week, voice), []).append(tone)
        rows = db.fetchall("SELECT week, voice, n, tone, ci_low, ci_high FROM weekly_tone")
    assert rows and len(rows) == len(stories)
    for week, voice, n, tone, lo, hi in rows:
        mean, ref_lo, ref_hi = mean_interval(stories[(week, voice)])
        assert n == len(stories[(week, voice)]) and tone == pytest.approx(mean)
        assert (lo is None) == (ref_lo is None)
        if lo is not None:
            assert lo == pytest.approx(ref_lo) and hi == pytest.approx(ref_hi)

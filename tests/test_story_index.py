"""The stored side of near-copy grouping (storage/story_index.py): signatures stored once with their documents,
looked up by LSH bucket in SQL, pruned when they leave the window, and backfilled for documents stored before."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from tests.support.paths import REPO, tonevakt_command
from tonevakt.config import Settings
from tonevakt.models import Document, StoryMember
from tonevakt.storage import repository as repo
from tonevakt.storage import story_index
from tonevakt.storage.batch import store_outcomes
from tonevakt.storage.db import Database
from tonevakt.storage.stories import (
    BANDS,
    MAX_BUCKET_STORIES,
    STORY_WINDOW,
    assign_stories,
    sign_documents,
    text_signature,
    to_bytes,
    wanted_keys,
)

WORDS = [f"ord{i}" for i in range(3000)]


def _doc(n: int, text: str, *, days_ago: float = 1.0, source: str = "nrk") -> Document:
    return Document(
        source_id=source,
        voice="media",
        title=f"Sak {n}",
        text=text,
        url=f"https://example.no/sak/{n}",
        published_at=datetime.now(UTC) - timedelta(days=days_ago),
    )


def _store(db: Database, docs: list[Document]) -> list[str]:
    return store_outcomes(db, docs, [], max_item_attempts=3)


def _edited(text: str, rng: random.Random) -> str:
    words = text.split()
    for j in rng.sample(range(len(words)), 5):
        words[j] = rng.choice(WORDS)
    return "Ny ingress i dag. " + " ".join(words)


def test_signatures_are_the_same_in_every_process() -> None:
    text = (
        "Helseplattformen får kritikk fra Riksrevisjonen etter innføringen ved St. Olavs hospital i mai 2022."
    )
    code = (
        "import sys; from tonevakt.storage.stories import text_signature, to_bytes; "
        "sys.stdout.write(to_bytes(text_signature(sys.argv[1])).hex())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code, text],
            env={**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(REPO)},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert outputs == {to_bytes(text_signature(text)).hex()}


def test_a_stored_document_keeps_its_signature_and_band_keys(fresh_db: Database) -> None:
    rng = random.Random(3)
    doc = _doc(1, " ".join(rng.choices(WORDS, k=120)))
    short = _doc(2, "Nede igjen.")
    old = _doc(3, " ".join(rng.choices(WORDS, k=120)), days_ago=40)
    _store(fresh_db, [doc, short, old])
    rows = dict(fresh_db.fetchall("SELECT document_id, signature FROM story_signatures"))
    assert rows == {doc.id: to_bytes(text_signature(f"{doc.title} {doc.text}")), short.id: None}
    bands = fresh_db.fetchall(
        """SELECT s.document_id, count(DISTINCT b.band) FROM story_bands b JOIN story_signatures s USING (seq)
           GROUP BY ALL"""
    )
    assert bands == [
        (doc.id, BANDS)
    ]  # the short text has no bands; the 40-day-old one never entered the window


def test_a_copy_joins_a_story_stored_in_an_earlier_pass_through_sql(fresh_db: Database) -> None:
    rng = random.Random(5)
    original = _doc(1, " ".join(rng.choices(WORDS, k=150)))
    _store(fresh_db, [original])
    copy = _doc(2, _edited(original.text, rng), source="adressa")
    _store(fresh_db, [copy])
    stories = dict(fresh_db.fetchall("SELECT id, story_id FROM documents"))
    assert stories == {original.id: original.id, copy.id: original.id}


def test_documents_stored_before_the_index_are_signed_on_the_next_pass(fresh_db: Database) -> None:
    rng = random.Random(11)
    stored = [_doc(i, " ".join(rng.choices(WORDS, k=150))) for i in range(30)]
    repo.store_batch(fresh_db, stored)  # as before migration 0010 (or by another path): no signatures
    assert fresh_db.scalar("SELECT count(*) FROM story_signatures") == 0
    copy = _doc(99, _edited(stored[7].text, rng), source="adressa")
    _store(fresh_db, [copy])
    assert fresh_db.scalar("SELECT story_id FROM documents WHERE id = ?", [copy.id]) == stored[7].id
    assert fresh_db.scalar("SELECT count(*) FROM story_signatures") == 31
    assert fresh_db.scalar("SELECT count(*) FROM story_bands") == 31 * BANDS
    assert story_index.refresh(fresh_db, datetime.now(UTC) - STORY_WINDOW) == 0  # nothing left to sign


def test_rows_that_leave_the_window_are_pruned(fresh_db: Database) -> None:
    rng = random.Random(13)
    doc = _doc(1, " ".join(rng.choices(WORDS, k=150)), days_ago=13)
    _store(fresh_db, [doc])
    assert fresh_db.scalar("SELECT count(*) FROM story_bands") == BANDS
    # A day later (the window moved past it): its rows go, the document stays.
    later = datetime.now(UTC) + timedelta(days=2) - STORY_WINDOW
    assert story_index.refresh(fresh_db, later) == 0
    assert fresh_db.scalar("SELECT count(*) FROM story_signatures") == 0
    assert fresh_db.scalar("SELECT count(*) FROM story_bands") == 0
    assert fresh_db.scalar("SELECT count(*) FROM documents") == 1
    copy = _doc(2, _edited(doc.text, rng))
    story_index.add(fresh_db, [], {}, later)  # nothing to add is fine
    assign_stories(
        [copy], story_index.candidates(fresh_db, later, wanted_keys(sign_documents([copy]).values()))
    )
    assert copy.story_id == copy.id  # outside the window: a new story


def test_a_batch_with_one_id_twice_stores_the_signature_of_the_stored_copy(fresh_db: Database) -> None:
    """A feed entry and a search hit of the same article (one canonical URL) in one batch: the first copy is
    stored, so its text is the one signed, and a later copy of that text finds the story."""
    rng = random.Random(29)
    full = _doc(1, " ".join(rng.choices(WORDS, k=150)))
    full.url = "https://example.no/sak/1?utm_source=rss"
    teaser = _doc(1, "Les mer.")
    assert teaser.id == full.id
    _store(fresh_db, [full, teaser])
    stored = fresh_db.fetchone("SELECT title || ' ' || text FROM documents")[0]
    assert stored == f"{full.title} {full.text}"
    assert fresh_db.scalar("SELECT signature FROM story_signatures") == to_bytes(text_signature(stored))
    copy = _doc(2, _edited(full.text, rng), source="adressa")
    _store(fresh_db, [copy])
    assert fresh_db.scalar("SELECT story_id FROM documents WHERE id = ?", [copy.id]) == full.id


def test_over_full_buckets_keep_their_earliest_stories(fresh_db: Database) -> None:
    """100 stored documents with one text and 91 story ids (stored before the index: signed by the backfill in
    stored order) fill every bucket of that text past the cap: the lookup keeps the earliest 64 stories, one
    member each (the first), as the in-memory index does, and a copy joins the earliest story."""
    text = " ".join(random.Random(31).choices(WORDS, k=150))
    now = datetime.now(UTC)
    stored = []
    for i in range(100):
        d = _doc(i, text)
        d.title = "Sak"  # one text: one signature, the same 32 buckets
        d.story_id = "old-0" if i < 10 else f"old-{i}"  # the first story has ten members
        d.collected_at = now - timedelta(minutes=100 - i)
        stored.append(d)
    repo.store_batch(fresh_db, stored)
    since = now - STORY_WINDOW
    story_index.refresh(fresh_db, since)
    assert fresh_db.scalar("SELECT count(DISTINCT bucket) FROM story_bands") == BANDS
    copy = _doc(200, text, source="copy")
    found = story_index.candidates(fresh_db, since, wanted_keys(sign_documents([copy]).values()))
    first_member_of_each = ["old-0"] + [f"old-{i}" for i in range(10, 10 + MAX_BUCKET_STORIES - 1)]
    assert [m.story_id for m in found] == first_member_of_each
    whole = [StoryMember(*r) for r in fresh_db.fetchall(SIGNED_IN_ORDER, [since])]
    a, b = _doc(200, text, source="copy"), copy
    assign_stories([a], whole)
    assign_stories([b], found)
    assert a.story_id == b.story_id == "old-0"


SIGNED_IN_ORDER = (
    "SELECT document_id, story_id, signature FROM story_signatures WHERE published_at >= ? ORDER BY seq"
)


def test_bucket_lookup_groups_exactly_as_the_whole_window_does(fresh_db: Database) -> None:
    """The SQL lookup keeps what the in-memory index keeps in the buckets a batch looks into, including the
    cap on stories per bucket (boilerplate), so grouping against it gives the same stories as against the
    whole window."""
    rng = random.Random(17)
    texts = [" ".join(rng.choices(WORDS, k=150)) for _ in range(600)]
    boiler = " ".join(rng.choices(WORDS, k=60))
    # 400 stored documents that share two thirds of their text (similar, yet mostly below the threshold):
    # the buckets of their shared part fill past the cap on stories per bucket.
    texts += [boiler + " " + " ".join(rng.choices(WORDS, k=30)) for _ in range(400)]
    stored = [_doc(i, t, days_ago=rng.uniform(0.1, 10)) for i, t in enumerate(texts)]
    for i in range(0, len(stored), 100):
        _store(fresh_db, stored[i : i + 100])
    batch_texts = [_edited(texts[i], rng) for i in range(0, 600, 40)]
    batch_texts += [boiler + " " + " ".join(rng.choices(WORDS, k=30)) for _ in range(10)]
    batch_texts += [" ".join(rng.choices(WORDS, k=150)) for _ in range(20)]

    def batch() -> list[Document]:
        return [_doc(1000 + i, t, source="copy") for i, t in enumerate(batch_texts)]

    fullest = fresh_db.scalar(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM story_bands GROUP BY band, bucket)"
    )
    assert fullest > MAX_BUCKET_STORIES
    since = datetime.now(UTC) - STORY_WINDOW
    whole = fresh_db.fetchall(SIGNED_IN_ORDER, [since])
    a, b = batch(), batch()
    assign_stories(a, [StoryMember(*r) for r in whole])
    looked_up = story_index.candidates(fresh_db, since, wanted_keys(sign_documents(b).values()))
    assign_stories(b, looked_up)
    assert [d.story_id for d in a] == [d.story_id for d in b]
    assert len(looked_up) < len(whole)
    assert all(d.story_id != d.id for d in a[:15])  # the edited copies found their stories
    assert not any(d.story_id != d.id for d in a[-20:])  # fresh random texts stay alone
    # The pass through store_outcomes gives the same stories.
    c = batch()
    _store(fresh_db, c)
    stored_story = dict(fresh_db.fetchall("SELECT id, story_id FROM documents"))
    assert [stored_story[d.id] for d in c] == [d.story_id for d in a]


def test_store_outcomes_with_nothing_new_reads_no_text(fresh_db: Database) -> None:
    rng = random.Random(19)
    doc = _doc(1, " ".join(rng.choices(WORDS, k=150)))
    _store(fresh_db, [doc])
    fresh_db.execute("DELETE FROM story_signatures")  # a pass with only known documents does not backfill
    assert _store(fresh_db, [doc]) == []
    assert fresh_db.scalar("SELECT count(*) FROM story_signatures") == 0


def test_a_copy_imported_by_another_process_joins_the_story(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    """Two `tonevakt import` processes with different string-hash seeds: the second one's copy finds the story
    through the signature the first one stored."""
    settings = make_settings()
    exe = tonevakt_command()
    rng = random.Random(23)
    original = " ".join(rng.choices(WORDS, k=120))
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text(json.dumps({"Kommentar": original}) + "\n", encoding="utf-8")
    second.write_text(json.dumps({"Kommentar": _edited(original, rng)}) + "\n", encoding="utf-8")
    for seed, path, source in (("1", first, "skjema-a"), ("2", second, "skjema-b")):
        run = subprocess.run(
            [exe, "--config", settings.file, "import", str(path), "--source", source, "--voice", "patient"],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stderr
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        rows = con.execute("SELECT source_id, id, story_id FROM documents ORDER BY source_id").fetchall()
        signed = con.execute("SELECT count(*) FROM story_signatures").fetchone()[0]
    finally:
        con.close()
    assert [r[0] for r in rows] == ["skjema-a", "skjema-b"]
    assert rows[1][2] == rows[0][1] != rows[1][1]
    assert signed == 2

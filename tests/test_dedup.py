"""Near-copy story grouping (MinHash LSH), and one document for one story whatever feed it came through."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import duckdb

from tests.support.localserver import FEED_TYPE, LocalServer, Route
from tonevakt import pipeline
from tonevakt.config import Settings
from tonevakt.models import Document, StoryMember
from tonevakt.storage.stories import (
    MAX_CANDIDATE_STORIES,
    MEMBERS_PER_STORY,
    THRESHOLD,
    assign_stories,
    shingles,
    signature,
    similarity,
    text_signature,
    to_bytes,
)

NTB_BODY = (
    "Riksrevisjonen mener styringen av innføringen av Helseplattformen i Midt-Norge har vært alvorlig "
    "kritikkverdig. I rapporten som ble lagt fram tirsdag, går det fram at risikoen for pasientsikkerheten "
    "var kjent før systemet ble tatt i bruk ved St. Olavs hospital i mai 2022. Helse Midt-Norge og "
    "Trondheim kommune fikk gjentatte advarsler fra egne ansatte, men valgte likevel å gå videre med "
    "planen. Ifølge revisjonen har feil i journalsystemet ført til at prøvesvar ikke er blitt fulgt opp, "
    "at legemiddellister har vært mangelfulle og at ansatte har brukt langt mer tid på dokumentasjon enn "
    "før. Kostnadene har økt med flere milliarder kroner siden kontrakten med leverandøren Epic ble "
    "inngått. Helseministeren sier i en kommentar at regjeringen tar rapporten svært alvorlig og vil be om "
    "en plan for hvordan sykehusene i Møre og Romsdal skal kunne ta systemet i bruk uten de samme "
    "problemene. Administrerende direktør i Helse Midt-Norge sier at foretaket har lært mye, og at "
    "løsningen i dag fungerer langt bedre enn da den ble innført. Tillitsvalgte for legene og "
    "sykepleierne er uenige og mener arbeidsbelastningen fortsatt er for høy på mange avdelinger."
)


def _doc(source: str, title: str, text: str, url: str | None = None) -> Document:
    return Document(
        source_id=source, voice="media", title=title, text=text, url=url, published_at=datetime.now(UTC)
    )


def _member(doc_id: str, story_id: str, text: str) -> StoryMember:
    """A stored document as the story index hands it over: its signature, not its text."""
    return StoryMember(doc_id, story_id, to_bytes(text_signature(text)))


def _copies() -> list[Document]:
    return [
        _doc(
            "adressa",
            "Riksrevisjonen slakter Helseplattformen",
            "Kritikken er den sterkeste et sykehusprosjekt har fått. " + NTB_BODY,
            "https://adressa.no/a/1",
        ),
        _doc(
            "smp",
            "– Alvorlig kritikkverdig",
            "Også Møre og Romsdal berøres av rapporten (NTB). " + NTB_BODY,
            "https://smp.no/b/2",
        ),
        # Edited copy: the last sentence cut and a word changed.
        _doc(
            "rbnett",
            "Rapport om journalsystemet: hard kritikk",
            NTB_BODY.rsplit(" Tillitsvalgte", 1)[0].replace("tirsdag", "onsdag"),
            "https://rbnett.no/c/3",
        ),
    ]


def test_syndicated_copies_are_one_story_and_other_news_is_not() -> None:
    docs = _copies()
    other = _doc(
        "nrk",
        "HelsaMi får ny versjon",
        "Appen HelsaMi får en ny versjon med bedre oversikt over timer og prøvesvar. Pasienter i "
        "Trøndelag har etterlyst endringene lenge, sier prosjektlederen til NRK.",
        "https://nrk.no/d/4",
    )
    follow_up = _doc(
        "adressa",
        "Slik svarer Helse Midt-Norge",
        NTB_BODY.split(". ")[0] + ". Direktøren "
        "avviser at pasienter har fått dårligere behandling, og viser til at antall avvik har gått "
        "ned hver måned siden sommeren. Han mener kritikken fra Riksrevisjonen gjelder en periode "
        "som er over, og at de ansatte nå er trygge på systemet.",
        "https://adressa.no/e/5",
    )
    batch = [*docs, other, follow_up]
    assign_stories(batch, [])
    assert docs[0].story_id == docs[0].id
    assert docs[1].story_id == docs[2].story_id == docs[0].id
    assert other.story_id == other.id
    assert follow_up.story_id == follow_up.id  # shares one sentence: a new story


def test_copies_join_a_stored_story_and_stored_documents_keep_theirs() -> None:
    first, second, third = _copies()
    recent = [_member("u-stored", "story-of-last-week", f"{first.title} {first.text}")]
    assign_stories([second, third], recent)
    assert second.story_id == third.story_id == "story-of-last-week"
    again = _doc("adressa", "x", "y")
    again.id = "u-stored"
    assign_stories([again], recent)
    assert again.story_id == "story-of-last-week"


def test_short_texts_are_never_grouped() -> None:
    a = _doc("nrk", "Helseplattformen nede", "")
    b = _doc("adressa", "Helseplattformen nede", "")
    assign_stories([a, b], [])
    assert a.story_id == a.id and b.story_id == b.id


def test_minhash_estimate_is_close_to_jaccard() -> None:
    a, b = shingles(f"x {NTB_BODY}"), shingles(NTB_BODY.replace("tirsdag", "onsdag"))
    exact = len(a & b) / len(a | b)
    assert abs(similarity(signature(a), signature(b)) - exact) < 0.12
    assert exact > THRESHOLD


def test_thousands_of_documents_cost_bounded_work() -> None:
    rng = random.Random(7)
    vocabulary = [f"ord{i}" for i in range(3000)]
    texts = [" ".join(rng.choices(vocabulary, k=150)) for i in range(4000)]
    recent = [_member(f"r{i}", f"r{i}", text) for i, text in enumerate(texts)]
    docs = [_doc("s", f"sak {i}", " ".join(rng.choices(vocabulary, k=150))) for i in range(1000)]
    # 30 planted copies of stored documents, each with a new first sentence and a few words changed.
    planted = []
    for i in range(30):
        words = texts[i * 100].split()
        for j in rng.sample(range(len(words)), 5):
            words[j] = rng.choice(vocabulary)
        d = _doc("copy", f"kopi {i}", "Ny ingress her i dag. " + " ".join(words))
        planted.append((d, recent[i * 100].story_id))
    batch = docs + [d for d, _ in planted]
    stats = assign_stories(batch, recent)
    # Bounded work: each document is compared with at most MEMBERS_PER_STORY members of MAX_CANDIDATE_STORIES
    # stories, not with every one of the 4,000 stored documents.
    assert stats.comparisons <= MAX_CANDIDATE_STORIES * MEMBERS_PER_STORY * len(batch), stats
    assert all(d.story_id == story for d, story in planted)
    assert all(d.story_id == d.id for d in docs)  # random texts: nothing grouped by mistake


def test_stored_story_is_found_by_the_next_pass(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    first, second, _ = _copies()
    pipeline.store_documents(settings, [first])
    pipeline.store_documents(settings, [second])
    old = _doc(
        "gammel", "Riksrevisjonen slakter Helseplattformen", "Eldre kopi. " + NTB_BODY, "https://x.no/old"
    )
    old.published_at = datetime.now(UTC) - timedelta(days=30)  # outside the 14-day window
    pipeline.store_documents(settings, [old])
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        stories = dict(con.execute("SELECT id, story_id FROM documents").fetchall())
    finally:
        con.close()
    assert stories[second.id] == stories[first.id] == first.id
    assert stories[old.id] == first.id  # an older copy collected now joins the stored story


RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Adresseavisen</title><link>{base}/</link><description>Nyheter</description>
<item><title>Helseplattformen får kritikk fra Riksrevisjonen</title>
<link>{base}/nyheter/i/abc123/helseplattformen-far-kritikk?utm_source=rss&amp;utm_medium=feed</link>
<guid isPermaLink="false">adressa-abc123</guid><pubDate>Tue, 24 Nov 2026 08:00:00 +0100</pubDate>
<description>Riksrevisjonen mener styringen har vært alvorlig kritikkverdig.</description></item>
</channel></rss>"""

SEARCH = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>"Helseplattformen" - nyhetssøk</title><link>{base}/search</link>
<description>Søk</description>
<item><title>Helseplattformen får kritikk fra Riksrevisjonen - Adresseavisen</title>
<link>{base}/nyheter/i/abc123/helseplattformen-far-kritikk/?fbclid=IwAR0</link>
<guid isPermaLink="false">search-1</guid><pubDate>Tue, 24 Nov 2026 07:10:00 GMT</pubDate>
<description>Riksrevisjonen mener styringen har vært alvorlig kritikkverdig. Adresseavisen</description>
<source url="{base}/">Adresseavisen</source></item>
<item><title>HelsaMi får ny versjon - NRK</title><link>{base}/nrk/helsami</link>
<guid isPermaLink="false">search-2</guid><pubDate>Tue, 24 Nov 2026 06:00:00 GMT</pubDate>
<description>Appen får bedre oversikt.</description><source url="https://nrk.no">NRK</source></item>
</channel></rss>"""


def test_story_from_feed_and_news_search_is_one_document(
    local_server: LocalServer, make_settings: Callable[..., Settings]
) -> None:
    base = local_server.url("").rstrip("/")
    local_server.add("/rss.xml", Route(body=RSS.format(base=base), content_type=FEED_TYPE))
    local_server.add("/search.xml", Route(body=SEARCH.format(base=base), content_type=FEED_TYPE))
    local_server.add(
        "/nrk/helsami",
        Route(body="<html><body><p>HelsaMi</p></body></html>", content_type="text/html; charset=utf-8"),
    )
    local_server.add(
        "/nyheter/i/abc123/helseplattformen-far-kritikk/",
        Route(body="<html><body><p>Artikkel</p></body></html>", content_type="text/html"),
    )
    settings = make_settings(
        sources=[
            {
                "id": "adressa",
                "kind": "rss",
                "voice": "media",
                "url": local_server.url("/rss.xml"),
                "full_text": "never",
            },
            {
                "id": "nyhetssok",
                "kind": "news_search",
                "voice": "media",
                "url": local_server.url("/search.xml"),
                "full_text": "never",
            },
        ]
    )
    summary = pipeline.collect(settings)
    assert summary.sources_ok == 2, summary.failures
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        rows = con.execute("SELECT canonical_url, source_id FROM documents ORDER BY canonical_url").fetchall()
    finally:
        con.close()
    urls = [r[0] for r in rows]
    assert urls.count(f"https://{base.split('//', 1)[1]}/nyheter/i/abc123/helseplattformen-far-kritikk") == 1
    assert len(rows) == 2  # the Riksrevisjonen story once, the HelsaMi story once
    assert pipeline.collect(settings, force=True).documents_new == 0

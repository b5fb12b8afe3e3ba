"""Per-document cost of the CPU stages a pass runs on each new document, for the capacity model (docs/scaling.md):
feed parsing (feedparser, per entry), full-text extraction (trafilatura, per ~600-word article page),
enrichment (personal data, language, relevance, topics and regions, per article), and storing (as a pass
stores: storage/batch.store_outcomes, the near-copy grouping against the last 14 days and one all-or-nothing
batch, per document) into a database that already holds an archive. Scoring is measured by
bench_scoring.py; fetching is waiting on the network (bench_collection.py).

    python benchmarks/bench_stages.py [--quick] [--docs 200] [--archive 100000] [--json]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from common import (
    ROOT,
    banner,
    emit_json,
    footer,
    parser,
    peak_rss_mb,
    settings_from,
    sign_window,
    store_as_a_pass,
)
from corpus import corpus

BOILERPLATE = "".join(
    f"<li><a href='/sak/{i}'>Andre saker fra regionen, nummer {i}</a></li>" for i in range(120)
)  # a news page's menus and link lists around the article


def page(title: str, text: str) -> bytes:
    paras = "".join(f"<p>{p}</p>" for p in text.split("\n\n"))
    return (
        f"<html><head><title>{title}</title><meta property='article:published_time' content='2026-11-20T08:00:00Z'>"
        f"</head><body><nav><ul>{BOILERPLATE}</ul></nav><article><h1>{title}</h1>{paras}</article>"
        f"<aside><ul>{BOILERPLATE}</ul></aside><footer>Kontakt redaksjonen</footer></body></html>"
    ).encode()


def feed(items: list[tuple[str, str]]) -> bytes:
    entries = "".join(
        f"<item><title>{t}</title><link>https://avis.example.no/sak/{i}</link><guid>sak-{i}</guid>"
        f"<pubDate>Fri, 20 Nov 2026 08:{i % 60:02d}:00 +0000</pubDate><description>{x[:300]}</description></item>"
        for i, (t, x) in enumerate(items)
    )
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>Avis</title>{entries}</channel></rss>".encode()


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--docs", type=int, default=None, help="articles (default 200; 40 with --quick)")
    p.add_argument(
        "--archive", type=int, default=None, help="documents already stored (default 100k; 10k quick)"
    )
    args = p.parse_args()
    t_all = banner("per-document stage costs", args.quick)
    n = args.docs or (40 if args.quick else 200)
    archive = args.archive or (10_000 if args.quick else 100_000)
    import feedparser

    from tonevakt.collectors.fulltext import extract_article
    from tonevakt.models import Document, Score
    from tonevakt.nlp.enrich import Enricher
    from tonevakt.storage import repository as repo
    from tonevakt.storage.db import open_database
    from tonevakt.storage.stories import STORY_WINDOW

    arts = corpus(n)
    figures: dict[str, float] = {"documents": n}
    body = feed(arts)
    t0 = time.perf_counter()
    parsed = feedparser.parse(body)
    figures["parse_feed_ms_per_entry"] = (time.perf_counter() - t0) / len(parsed.entries) * 1000
    pages = [page(t, x) for t, x in arts]
    figures["page_kb"] = sum(len(p_) for p_ in pages) / len(pages) / 1024
    t0 = time.perf_counter()
    got = [extract_article(p_, f"https://avis.example.no/sak/{i}") for i, p_ in enumerate(pages)]
    figures["extract_ms_per_page"] = (time.perf_counter() - t0) / n * 1000
    assert all(a is not None and len(a.text) > 1000 for a in got), "extraction lost the article text"
    work = Path(tempfile.mkdtemp(prefix="tonevakt-bench-stages-"))
    settings = settings_from({"database": {"path": str(work / "t.duckdb")}}, work)
    now = datetime.now(UTC)
    docs = [
        Document(
            source_id="avis",
            voice="media",
            title=t,
            text=x,
            url=f"https://avis.example.no/sak/{i}",
            published_at=now - timedelta(minutes=i),
            collected_at=now,
        )
        for i, (t, x) in enumerate(arts)
    ]
    enricher = Enricher(settings)
    enricher.enrich(docs[:2])  # warm-up: matchers compiled
    t0 = time.perf_counter()
    enricher.enrich(docs)
    figures["enrich_ms_per_doc"] = (time.perf_counter() - t0) / n * 1000
    db = open_database(work / "t.duckdb")
    try:
        db.execute(
            "INSERT INTO models (id, backend, description, dev_macro_f1, active, registered_at) "
            "VALUES ('m', 'embedded', '', NULL, TRUE, now())"
        )
        db.execute(
            f"""INSERT INTO documents (id, source_id, voice, kind, title, text, published_at, collected_at, relevant,
                                       story_id)
                SELECT 'old-' || i, 'avis', 'media', 'article', 'Sak ' || i, repeat('Helseplattformen. ', 200),
                       now() - INTERVAL 1 MINUTE * i, now() - INTERVAL 1 MINUTE * i, TRUE, 'old-' || i
                FROM range({archive}) t(i) ORDER BY i DESC"""
        )
        # The documents of the last 14 days are signed once (the first pass after migration 0010; a real
        # archive signs each document as it is stored); a pass then looks up only the buckets of its new
        # documents, so its cost follows the batch, not the window.
        figures["story_window_documents"] = db.scalar(
            "SELECT count(*) FROM documents WHERE published_at >= ?", [now - STORY_WINDOW]
        )
        _, figures["story_backfill_s"] = sign_window(db)
        t0 = time.perf_counter()
        store_as_a_pass(db, docs, settings.collect.max_item_attempts)
        figures["store_ms_per_doc"] = (time.perf_counter() - t0) / n * 1000
        t0 = time.perf_counter()
        repo.save_scores(db, [Score(d.id, "m", 0.1, "neutral", 0.3, 0.4, 0.3, passage="x") for d in docs])
        figures["save_score_ms_per_doc"] = (time.perf_counter() - t0) / n * 1000
        db.execute("CHECKPOINT")
        stored = sum(len(d.text) + len(d.title) for d in docs)
        figures["archive"] = archive
        figures["text_kb_per_doc"] = stored / n / 1024
    finally:
        db.close()
    figures["peak_rss_mb"] = peak_rss_mb()
    for k, v in figures.items():
        print(f"{k}: {v:,.2f}" if isinstance(v, float) else f"{k}: {v:,}", flush=True)
    import shutil

    shutil.rmtree(work, ignore_errors=True)
    footer(t_all)
    emit_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

"""Storage and reports at 10k, 100k and 1M documents: `SELECT * FROM weekly_tone`, the weekly report
(HTML + CSV + JSON; the PDF timed on its own) and the dashboard, and how each grows with the database.

The databases are generated with DuckDB SQL (range() and a seeded random(), no Python loops): 4 voices,
20 sources, 60 weeks of documents ending now, topics, regions, a share of syndicated copies (stories),
star ratings on patient feedback, one score per document from the active model, a few human labels.
Each size is measured in a fresh child process (its peak memory is the child's ru_maxrss).

    python benchmarks/bench_storage_reports.py            # 10k, 100k, 1M
    python benchmarks/bench_storage_reports.py --quick    # 10k, 100k
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (
    ROOT,
    banner,
    emit_json,
    footer,
    parser,
    peak_rss_mb,
    run_child,
    settings_from,
    sign_window,
    store_as_a_pass,
    timed,
    verdict,
)

WEEKS = 60

SOURCES = [  # (id, kind, voice, region)
    *[(f"media-{i}", "rss", "media", ("trondelag", "more_og_romsdal", None)[i % 3]) for i in range(8)],
    *[(f"union-{i}", "web", "union", None) for i in range(4)],
    ("helsami-appstore", "appstore", "patient", None),
    *[(f"patient-{i}", "files", "patient", None) for i in range(3)],
    *[
        (f"official-{i}", "web", "official", ("trondelag", "more_og_romsdal", None, None)[i])
        for i in range(4)
    ],
]


def generate(path: Path, n: int, seed: float = 0.42) -> tuple[float, float]:
    """Create the database with the real migrations, then fill it with `n` documents. Returns (seconds, of which the kept tone)."""
    from tonevakt.storage.db import open_database
    from tonevakt.storage.kept_tone import rebuild_tone

    t0 = time.perf_counter()
    db = open_database(path)
    con = db.con
    con.execute("SELECT setseed(?)", [seed])
    con.executemany(
        "INSERT INTO sources (id, kind, voice, name, region, url, enabled, interval_minutes) "
        "VALUES (?, ?, ?, ?, ?, ?, TRUE, 60)",
        [
            [sid, kind, voice, f"Kilde {sid}", region, f"https://{sid}.example.no/"]
            for sid, kind, voice, region in SOURCES
        ],
    )
    con.execute(
        "INSERT INTO models (id, backend, description, dev_macro_f1, active, registered_at) "
        "VALUES ('bench-model', 'embedded', 'benchmark model', 0.62, TRUE, now())"
    )
    n_sources = len(SOURCES)
    # Bounded memory at 10M documents: chunks of at most a million, each a slice of the 60 weeks, oldest first,
    # so that the file is in publication order without one big sort.
    con.execute("SET memory_limit = '3GB'")
    chunks = max(1, -(-n // 1_000_000))
    for c in range(chunks):
        lo, hi = n * c // chunks, n * (c + 1) // chunks
        oldest = (chunks - c) / chunks  # r1: how far back in the 60 weeks, 1 = the oldest
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE gen AS
            SELECT i, {oldest} - random() / {chunks} AS r1, random() AS r2, random() AS r3, random() AS r4,
                   random() AS r5
            FROM range({lo}, {hi}) t(i)
            """
        )
        _insert_chunk(con, n, n_sources)
    con.execute(
        """
        INSERT INTO scores
        SELECT d.id, 'bench-model', t.tone,
               CASE WHEN t.tone < -0.2 THEN 'negative' WHEN t.tone > 0.2 THEN 'positive' ELSE 'neutral' END,
               greatest(0.0, -t.tone) * 0.9 + 0.05, 1.0 - abs(t.tone) * 0.9 - 0.1, greatest(0.0, t.tone) * 0.9 + 0.05,
               'Helseplattformen ved St. Olavs hospital ga ansatte merarbeid denne uken.', 2,
               d.collected_at + INTERVAL 10 MINUTE  -- scored in the pass that collected it
        FROM documents d, LATERAL (SELECT (random() * 2 - 1) * (CASE d.voice WHEN 'patient' THEN 0.8 ELSE 1.0 END)
                                          + (CASE d.voice WHEN 'patient' THEN 0.2 WHEN 'media' THEN -0.2 ELSE 0 END)
                                          AS tone) t
        WHERE d.relevant
        """
    )
    con.execute(
        "INSERT INTO labels SELECT id, 'negative', 'bench', NULL, now() FROM documents WHERE relevant "
        "AND hash(id) % 1000 = 0"
    )
    con.execute("DROP TABLE gen")
    # Scores and labels went in by SQL, past the repository: compute the kept tone once, as
    # register_model does when the active model changes (timed on its own: the cost of a model switch).
    t1 = time.perf_counter()
    with db.transaction():
        rebuild_tone(db)
    rebuild_s = time.perf_counter() - t1
    con.execute("CHECKPOINT")
    db.close()
    return time.perf_counter() - t0, rebuild_s


def _insert_chunk(con: Any, n: int, n_sources: int) -> None:
    """The documents of the rows in the temporary table `gen`, in publication order."""
    con.execute(
        f"""        INSERT INTO documents (id, source_id, voice, kind, url, canonical_url, title, lead, text, outlet,
                               published_at, published_estimated, collected_at, language, relevant, matched,
                               topics, regions, region, paywalled, rating, story_id, redactions)
        SELECT
            'doc-' || g.i,
            s.id,
            s.voice,
            CASE s.voice WHEN 'media' THEN 'article' WHEN 'patient' THEN 'review' ELSE 'statement' END,
            'https://' || s.id || '.example.no/sak/' || g.i,
            'https://' || s.id || '.example.no/sak/' || g.i,
            'Helseplattformen: sak ' || g.i || (['', ' om ventetider', ' ved St. Olavs hospital', ' i Ålesund'])[1 + (g.i % 4)],
            'Ingress om Helseplattformen og sak ' || g.i,
            repeat('Helseplattformen ved St. Olavs hospital ga ansatte merarbeid denne uken, sier tillitsvalgte. '
                   || 'Pasientene melder om bedre innsyn i HelsaMi. ', 3 + (g.i % 5)),
            'Kilde ' || s.id,
            now() - INTERVAL 1 SECOND * CAST(g.r1 * {WEEKS} * 7 * 86400 AS BIGINT),
            FALSE,
            -- collected a few hours after publication, as a pass every 15 minutes does (rows arrive by week)
            now() - INTERVAL 1 SECOND * CAST(g.r1 * {WEEKS} * 7 * 86400 AS BIGINT)
                  + INTERVAL 1 SECOND * CAST(g.r3 * 6 * 3600 AS BIGINT),
            CASE WHEN g.r5 < 0.9 THEN 'nb' ELSE 'nn' END,
            g.r2 < 0.85,
            ['helseplattform*'],
            list_filter(['costs', 'rollout', 'patient_safety', 'faults', 'patient_access', 'staff', 'municipalities'],
                        lambda x, k: ((g.i // k) + k) % 4 = 0),
            list_filter(['trondelag', 'more_og_romsdal', 'national'], lambda x, k: ((g.i // 7) + k) % 3 = 0),
            s.region,
            s.voice = 'media' AND g.i % 5 = 0,
            CASE WHEN s.voice = 'patient' THEN 1 + CAST(floor(g.r3 * 5) AS INTEGER) END,
            -- as storage/stories.py does: a document's own id, or the story of a near-copy (20 % of the
            -- documents; copies within the same 3 days, as dedup links copies only within 14 days)
            CASE WHEN g.r4 < 0.2 THEN 'story-' || s.voice || '-' || CAST(floor(g.r1 * {WEEKS * 7 / 3}) AS BIGINT)
                                      || '-' || CAST(floor(g.r4 * 5 * {max(1, n // 2100)}) AS BIGINT)
                 ELSE 'doc-' || g.i END,
            0
        FROM gen g JOIN (SELECT *, row_number() OVER (ORDER BY id) - 1 AS k FROM sources) s
          ON s.k = g.i % {n_sources}
        ORDER BY 11  -- stored in publication order, as a collecting pipeline appends them
        """
    )


def measure(db_path: Path, out: Path, pdf: bool) -> dict[str, float]:
    """Child process: time weekly_tone, the report, the dashboard and the publish on one generated database."""
    from datetime import UTC, datetime, timedelta

    import duckdb

    from tonevakt import dates
    from tonevakt.models import Document, Score
    from tonevakt.reports import render
    from tonevakt.reports.dashboard import write_dashboard
    from tonevakt.reports.weekly import read_data, write_report
    from tonevakt.storage import repository as repo
    from tonevakt.storage.db import open_database
    from tonevakt.storage.snapshot import publish_exports, publish_snapshot

    settings = settings_from(
        {
            "database": {
                "path": str(db_path),
                "snapshot": str(out / "analyst.duckdb"),
                "exports": str(out / "exports"),
            },
            "report": {"out_dir": str(out / "reports"), "dashboard_dir": str(out / "dashboard")},
        },
        out,
    )
    week = dates.last_complete_week()
    res: dict[str, float] = {}
    con = duckdb.connect(str(db_path), read_only=True)
    with timed() as t:
        rows = con.execute("SELECT * FROM weekly_tone").fetchall()
    res["weekly_tone_s"], res["weekly_tone_rows"] = t[0], len(rows)
    with timed() as t:
        con.execute("SELECT * FROM weekly_tone").fetchall()
    res["weekly_tone_warm_s"] = t[0]
    res["documents"] = con.execute("SELECT count(*) FROM documents").fetchone()[0]
    res["stories"] = con.execute("SELECT count(*) FROM document_tone_kept WHERE first_copy").fetchone()[0]
    con.close()
    with timed() as t:
        paths = write_report(settings, week=week, pdf=False)
    res["report_html_s"] = t[0]
    res["report_html_kb"] = paths.html.stat().st_size / 1024
    if pdf:
        html = render.render_html(read_data(settings, week))
        with timed() as t:
            render.write_pdf(html, out / "report.pdf")
        res["report_pdf_s"] = t[0]
    with timed() as t:
        dash = write_dashboard(settings)
    res["dashboard_s"] = t[0]
    res["dashboard_bytes"] = dash.stat().st_size
    res["peak_rss_read_mb"] = peak_rss_mb()
    # The publish after a pass: the first one writes every week of the exports; the next, after a pass that
    # stored and scored a batch of new documents, only what changed (plus the copy of the database file).
    db = open_database(db_path)
    try:
        with timed() as t:
            publish_snapshot(db, settings.snapshot_path)
            publish_exports(db, settings.exports_path)
        res["snapshot_first_s"] = t[0]
        now = datetime.now(UTC)
        docs = [
            Document(
                source_id="media-1",
                voice="media",
                title=f"Helseplattformen: ny sak {i}",
                text="Helseplattformen ved St. Olavs hospital.",
                url=f"https://media-1.example.no/ny/{i}",
                published_at=now - timedelta(hours=i % 48),
                collected_at=now,
                relevant=True,
                topics=["costs"],
                regions=["trondelag"],
            )
            for i in range(PASS_BATCH)
        ]
        res["story_backfill_documents"], res["story_backfill_s"] = sign_window(db)
        res["peak_rss_backfill_mb"] = peak_rss_mb()
        with timed() as t:
            store_as_a_pass(db, docs, settings.collect.max_item_attempts)
            repo.save_scores(db, [Score(d.id, "bench-model", -0.3, "negative", 0.6, 0.3, 0.1) for d in docs])
        res["pass_store_s"] = t[0]
        with timed() as t:
            publish_snapshot(db, settings.snapshot_path)
        res["snapshot_copy_s"] = t[0]
        with timed() as t:
            written = publish_exports(db, settings.exports_path)
        res["snapshot_exports_s"] = t[0]
        res["snapshot_s"] = res["snapshot_copy_s"] + res["snapshot_exports_s"]
        res["snapshot_files_written"] = sum(written.values())
    finally:
        db.close()
    res["peak_rss_mb"] = peak_rss_mb()
    return res


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--child", nargs=3, metavar=("DB", "OUT", "PDF"), help=argparse.SUPPRESS)
    p.add_argument(
        "--sizes",
        default=None,
        help="comma-separated document counts (default 10k,100k,1M; 10000000 is opt-in: ~6-10 min, 3.3 GB of disk)",
    )
    args = p.parse_args()
    if args.child:
        db, out, pdf = args.child
        print(json.dumps(measure(Path(db), Path(out), pdf == "1")))
        return 0
    t_all = banner("storage and reports", args.quick)
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    )
    work = Path(tempfile.mkdtemp(prefix="tonevakt-bench-storage-"))
    results = []
    try:
        for i, n in enumerate(sizes):
            db_path = work / f"db-{n}.duckdb"
            gen_s, rebuild_s = generate(db_path, n)
            size = db_path.stat().st_size
            out = work / f"out-{n}"
            out.mkdir()
            r = run_child(
                Path(__file__),
                ["--child", str(db_path), str(out), "1" if i == 0 or not args.quick else "0"],
                timeout=3600,
            )
            r.update(n=n, generate_s=gen_s, kept_tone_rebuild_s=rebuild_s, file_bytes=size)
            results.append(r)
            print(
                f"{n:>10,} documents ({r['stories']:,} scored stories, file {size / 1e6:,.0f} MB, generated in "
                f"{gen_s:.1f}s, of which the kept tone {rebuild_s:.1f}s): weekly_tone {r['weekly_tone_s']:.3f}s "
                f"({r['weekly_tone_rows']} rows; warm {r['weekly_tone_warm_s']:.3f}s), report {r['report_html_s']:.2f}s, "
                + (f"PDF {r['report_pdf_s']:.2f}s, " if "report_pdf_s" in r else "")
                + f"dashboard {r['dashboard_s']:.2f}s ({r['dashboard_bytes'] / 1e6:.2f} MB), "
                f"publish {r['snapshot_s']:.2f}s (copy {r['snapshot_copy_s']:.2f}s + exports "
                f"{r['snapshot_exports_s']:.2f}s, {r['snapshot_files_written']} files; the first publish "
                f"{r['snapshot_first_s']:.1f}s), a pass storing and scoring {PASS_BATCH} documents "
                f"{r['pass_store_s']:.2f}s (after signing the {r['story_backfill_documents']:,} documents of the "
                f"14-day window once, as the first pass after migration 0010 does: {r['story_backfill_s']:.1f}s, "
                f"peak {r['peak_rss_backfill_mb']:,.0f} MB), peak {r['peak_rss_mb']:,.0f} MB",
                flush=True,
            )
            shutil.rmtree(out, ignore_errors=True)
            db_path.unlink()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("growth (time at this size / time at the previous size; documents grew by the factor in brackets):")
    for prev, cur in zip(results, results[1:], strict=False):
        f = cur["n"] / prev["n"]
        parts = [f"{k} ×{cur[k] / prev[k]:.1f}" for k in GROWTH if prev.get(k) and k in cur]
        print(f"  {prev['n']:,} → {cur['n']:,} (×{f:.0f}): " + ", ".join(parts))
    for r in results:
        for key, limit, at in TARGETS:
            if r["n"] == at and key in r:
                print(
                    f"target: {key} ≤ {limit:g} at {at:,} documents: {r[key]:.3g} — {verdict(r[key] <= limit)}"
                )
    footer(t_all)
    emit_json(args.json, {"sizes": {str(r["n"]): {"documents": r["documents"], **r} for r in results}})
    return 0


# (figure, limit, at how many documents): issue 18's targets
TARGETS = (
    ("dashboard_s", 5.0, 1_000_000),
    ("dashboard_bytes", 5e6, 1_000_000),
    ("weekly_tone_s", 0.2, 1_000_000),
    ("weekly_tone_s", 1.0, 10_000_000),
    ("report_html_s", 2.0, 1_000_000),
    ("report_html_s", 5.0, 10_000_000),
    ("peak_rss_mb", 1500, 10_000_000),
)
GROWTH = ("weekly_tone_s", "report_html_s", "dashboard_s", "dashboard_bytes", "snapshot_s", "file_bytes")
PASS_BATCH = 200  # documents a pass stores and scores before the publish that is timed


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

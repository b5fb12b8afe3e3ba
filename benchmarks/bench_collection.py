"""Collection: 200 RSS feeds on 127.0.0.1 (one port per feed, so 200 hosts for per-host spacing), every
response after 100 ms (benchmarks/feedserver.py, in its own process).

Side by side, in one run:
1. the naive way: a sequential loop, `httpx.get` then `feedparser.parse`, one feed at a time;
2. the real collector (`tonevakt.collectors.collect.collect_sources`: the HTTP client, per-host spacing,
   conditional GET, parsing into records), at the configured `http.max_concurrency` and at higher ones;
   once with robots.txt honoured as configured, once with sources that opt out of robots.txt;
3. a full pass (`pipeline.collect`: state from the database, enrich, store), then a second pass over the
   unchanged feeds, which must parse, store and leave to score nothing (asserted and printed).
The ideal time of a pass is latency × requests per host × hosts / concurrency.

    python benchmarks/bench_collection.py [--quick] [--feeds 200] [--delay 0.1]
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from common import ROOT, banner, emit_json, footer, parser, ratio, settings_from, timed, verdict

SPEEDUP_TARGET = 10.0
IDEAL_FACTOR = 2.0


class FeedServer:
    def __init__(self, n: int, delay_s: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("feedserver.py")), str(n), str(delay_s)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.ports: list[int] = json.loads(self.proc.stdout.readline())["ports"]

    def urls(self) -> list[str]:
        return [f"http://127.0.0.1:{p}/feed.xml" for p in self.ports]

    def stats(self) -> dict[str, int]:
        import httpx

        return httpx.get(f"http://127.0.0.1:{self.ports[0]}/__stats", trust_env=False).json()

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def sequential(urls: list[str]) -> tuple[float, int]:
    """The naive way: one feed after another, fetch then parse. One httpx.Client for all of them (a fresh
    `httpx.get` per feed would cost another ~0.1 s each for its TLS context: a weaker baseline)."""
    import feedparser
    import httpx

    entries = 0
    with timed() as t, httpx.Client(trust_env=False, timeout=30) as client:
        for url in urls:
            r = client.get(url)
            entries += len(feedparser.parse(r.content).entries)
    return t[0], entries


def make_settings(urls: list[str], work: Path, concurrency: int, robots: bool):  # noqa: ANN201
    sources = [
        {
            "id": f"kilde-{i}",
            "name": f"Kilde {i}",
            "kind": "rss",
            "voice": "media",
            "url": u,
            "full_text": "never",
            "interval_minutes": 30,
            "respect_robots": robots,
        }
        for i, u in enumerate(urls)
    ]
    return settings_from(
        {
            "database": {
                "path": str(work / "tonevakt.duckdb"),
                "snapshot": str(work / "analyst.duckdb"),
                "exports": str(work / "exports"),
            },
            "http": {"allow_private_addresses": True, "max_concurrency": concurrency},
            "sources": sources,
        },
        work,
    )


def real_collector(settings) -> tuple[float, int, int]:  # noqa: ANN001
    """One pass of collect_sources (fetch + parse into documents, no database). Returns (s, docs, failed)."""
    from tonevakt.collectors.collect import collect_sources
    from tonevakt.nlp.enrich import Enricher

    enricher = Enricher(settings)
    with timed() as t:
        outcomes = collect_sources(
            settings.source_records(),
            {},
            settings,
            is_candidate=enricher.is_candidate,
            known_files=set(),
            force=True,
        )
    return t[0], sum(len(o.documents) for o in outcomes), sum(o.failed for o in outcomes)


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--feeds", type=int, default=None, help="number of feeds (default 200; 40 with --quick)")
    p.add_argument("--delay", type=float, default=0.1, help="server latency per response in seconds")
    args = p.parse_args()
    t_all = banner("collection", args.quick)
    n = args.feeds or (40 if args.quick else 200)
    delay = args.delay
    from tonevakt.config import load_config

    configured = load_config(ROOT / "config.yaml").http
    levels = sorted({configured.max_concurrency, 16, 32})
    print(
        f"{n} feeds on {n} local hosts (ports), {delay * 1000:.0f} ms per response; configured "
        f"http.max_concurrency {configured.max_concurrency}, per_host_interval_s {configured.per_host_interval_s}, "
        f"respect_robots {configured.respect_robots}",
        flush=True,
    )
    server = FeedServer(n, delay)
    work = Path(tempfile.mkdtemp(prefix="tonevakt-bench-collect-"))
    rows = []
    try:
        urls = server.urls()
        sequential(urls[:3])  # warm-up: imports, first connections (not timed)
        real_collector(make_settings(urls[:3], work, configured.max_concurrency, False))
        seq_s, seq_entries = sequential(urls)
        print(
            f"sequential loop (httpx GET, then feedparser.parse): {seq_s:.2f}s for {n} feeds ({seq_entries} entries), "
            f"{n / seq_s:.1f} feeds/s",
            flush=True,
        )
        for robots in (False, True):
            for conc in levels if not robots else [configured.max_concurrency]:
                settings = make_settings(urls, work, conc, robots)
                s, docs, failed = real_collector(settings)
                per_host = 2 if robots else 1  # robots.txt, then the feed
                spacing = settings.http.per_host_interval_s if robots else 0.0
                ideal = (delay * per_host + spacing) * n / min(conc, n)
                rows.append((robots, conc, s, ideal))
                print(
                    f"collect_sources, concurrency {conc:>2}, robots.txt {'honoured' if robots else 'not asked'}: "
                    f"{s:.2f}s ({docs} documents, {failed} failed) = {ratio(seq_s, s)} the sequential loop; "
                    f"ideal {ideal:.2f}s → {s / ideal:.2f}× the ideal",
                    flush=True,
                )

        from tonevakt import pipeline
        from tonevakt.storage import repository as repo
        from tonevakt.storage.db import database

        settings = make_settings(urls, work, configured.max_concurrency, False)
        pipeline.init(settings)
        first = pipeline.collect(settings, force=True)
        with database(settings.db_path) as db:
            todo1 = len(repo.documents_to_score(db, "any-model"))
            docs1 = db.scalar("SELECT count(*) FROM documents")
        before = server.stats()
        second = pipeline.collect(settings, force=True)
        after = server.stats()
        with database(settings.db_path) as db:
            todo2 = len(repo.documents_to_score(db, "any-model"))
            docs2 = db.scalar("SELECT count(*) FROM documents")
            statuses = dict(
                db.fetchall(
                    "SELECT status, count(*) FROM (SELECT status FROM fetch_log ORDER BY id DESC "
                    "LIMIT ?) GROUP BY status",
                    [n],
                )
            )
        got_304 = after["feed_304"] - before["feed_304"]
        got_200 = after["feed_200"] - before["feed_200"]
        print(
            f"pipeline.collect pass 1: {first.duration_s:.2f}s (fetch, parse, enrich, store): {first.documents_seen} "
            f"documents seen, {first.documents_new} new, {todo1} relevant to score",
            flush=True,
        )
        print(
            f"pipeline.collect pass 2 (unchanged feeds): {second.duration_s:.2f}s; server answered {got_304} × 304 "
            f"(ETag) and {got_200} × 200 (no validators: caught by the body hash); fetch log {statuses}; "
            f"documents seen {second.documents_seen}, new {second.documents_new}, stored {docs2 - docs1}, "
            f"new to score {todo2 - todo1}",
            flush=True,
        )
        assert second.documents_seen == 0 and second.documents_new == 0, "second pass parsed entries"
        assert docs2 == docs1 and todo2 == todo1, "second pass stored or queued documents"
        print("second pass extracts, stores and scores nothing: OK")
        figures = {
            "feeds": n,
            "delay_s": delay,
            "sequential_s": seq_s,
            "sequential_entries": seq_entries,
            "collect": [
                {"robots": r[0], "concurrency": r[1], "seconds": r[2], "ideal_s": r[3]} for r in rows
            ],
            "pass1_s": first.duration_s,
            "pass2_s": second.duration_s,
            "pass2_304": got_304,
            "pass2_200": got_200,
            "pass2_new": second.documents_new,
        }

        best = min((r for r in rows if not r[0]), key=lambda r: r[2])
        conf = next(r for r in rows if not r[0] and r[1] == configured.max_concurrency)
        for label, r in (("configured concurrency", conf), ("best concurrency", best)):
            speed, vs_ideal = seq_s / r[2], r[2] / r[3]
            print(
                f"target ({label} {r[1]}, robots.txt not asked): ≥ {SPEEDUP_TARGET:.0f}× the sequential loop: "
                f"{speed:.1f}× — {verdict(speed >= SPEEDUP_TARGET)}; within {IDEAL_FACTOR:.0f}× of the ideal: "
                f"{vs_ideal:.2f}× — {verdict(vs_ideal <= IDEAL_FACTOR)}"
            )
            figures[f"{label.split()[0]}_speedup"], figures[f"{label.split()[0]}_vs_ideal"] = speed, vs_ideal
    finally:
        server.close()
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    footer(t_all)
    emit_json(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())

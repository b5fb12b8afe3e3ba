"""Freshness: how long after an entry is published in a feed does it show up in the analyst snapshot?

The daemon (`tonevakt --config X run`) runs as a subprocess against a feed on a local server (127.0.0.1)
with a schedule shaped like config.yaml's, scaled down to minutes: collect every 2 minutes ("*/2"), the
snapshot job a minute after each collect ("1-59/2", as "10,40" after the collects), the sources polled on the
collect job's own interval (interval_minutes: 2). With --quick: collect and snapshot every 60 s
(interval_seconds) and interval_minutes: 1 (the smallest allowed). The new entry is published right after
a scheduled fetch of the feed (the worst phase: it waits a whole collection interval); the snapshot
(data/analyst.duckdb) is polled read-only until the entry is in it.

Target: latency ≤ one collection interval + 60 s.

    python benchmarks/bench_freshness.py [--quick]
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from common import ROOT, banner, emit_json, footer, parser, verdict, write_config

TONEVAKT = str(Path(sys.executable).with_name("tonevakt"))
SLACK_S = 60.0


def feed_xml(entries: list[tuple[str, str]]) -> str:
    items = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{format_datetime(datetime.now(UTC))}</pubDate>"
        f"<description>{title}. Mer om Helseplattformen ved St. Olavs hospital.</description></item>"
        for title, link in reversed(entries)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Lokal kilde</title>'
        f"<link>https://kilde.example.no/</link><description>Nyheter</description>{items}</channel></rss>"
    )


def in_snapshot(snapshot: Path, url: str) -> bool:
    """Read-only look into the analyst snapshot (a missing or half-swapped file reads as 'not yet')."""
    import duckdb

    if not snapshot.exists():
        return False
    try:
        con = duckdb.connect(str(snapshot), read_only=True)
    except duckdb.Error:
        return False
    try:
        return bool(con.execute("SELECT count(*) FROM documents WHERE url = ?", [url]).fetchone()[0])
    except duckdb.Error:
        return False
    finally:
        con.close()


class Feed:
    """One feed on the server. A busy feed gains an unrelated entry after every fetch (a news feed that changes
    at every poll); a quiet one changes only when we publish. Adaptive polling (migration 0004) treats the two
    differently, so both are measured."""

    def __init__(self, srv: Any, name: str, busy: bool) -> None:
        self.srv, self.path, self.busy = srv, f"/{name}.xml", busy
        self.base = f"https://{name}.example.no/sak"
        self.entries = [
            (f"Helseplattformen: sak {k} fra St. Olavs hospital", f"{self.base}/{k}") for k in range(3)
        ]
        self.seen_hits = 0
        self.serve()

    def serve(self) -> None:
        from tests.support.localserver import FEED_TYPE, Route

        self.srv.add(self.path, Route(body=feed_xml(self.entries), content_type=FEED_TYPE))

    def hits(self) -> int:
        return self.srv.hits(self.path)

    def tick(self) -> None:
        """Called often: a busy feed changes after each fetch."""
        h = self.hits()
        if self.busy and h > self.seen_hits:
            self.entries.append((f"Trafikkmelding nummer {h}", f"{self.base}/trafikk-{h}"))
            self.serve()
        self.seen_hits = h

    def publish(self) -> str:
        url = f"{self.base}/ny"
        self.entries.append(("Helseplattformen: ny sak om ventetider i HelsaMi", url))
        self.serve()
        return url


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args()
    t_all = banner("freshness", args.quick)
    from tests.support.localserver import LocalServer

    if args.quick:
        collection_interval, minutes = 60, 1
        schedule = {"collect": {"interval_seconds": 60}, "snapshot": {"interval_seconds": 60}}
    else:
        collection_interval, minutes = 120, 2
        schedule = {"collect": {"cron": "*/2 * * * *"}, "snapshot": {"cron": "1-59/2 * * * *"}}
    # The daemon's first pass runs at start; with cron schedules it is off the schedule's phase, so the
    # entry is published after the first fetch made on the schedule (the second), as in a running daemon.
    fetches = 1 if args.quick else 2
    work = Path(tempfile.mkdtemp(prefix="tonevakt-bench-fresh-"))
    daemon = None
    results: dict[str, tuple[float, bool]] = {}
    with LocalServer(max_lifetime_s=1200) as srv:
        feeds = [Feed(srv, "travel", True)] + ([] if args.quick else [Feed(srv, "stille", False)])
        config = write_config(
            {
                "database": {
                    "path": "data/tonevakt.duckdb",
                    "snapshot": "data/analyst.duckdb",
                    "exports": "data/exports",
                    "lock_timeout_s": 30,
                },
                "http": {"allow_private_addresses": True},
                "sources": [
                    {
                        "id": f"kilde-{f.path.strip('/').removesuffix('.xml')}",
                        "kind": "rss",
                        "voice": "media",
                        "url": srv.url(f.path),
                        "full_text": "never",
                        "interval_minutes": minutes,
                    }
                    for f in feeds
                ],
                "schedule": {**schedule, "score": {"cron": "0 3 * * *"}, "report": {"cron": "0 7 1 1 *"}},
                "report": {"pdf": False},
            },
            work,
        )
        log = (work / "daemon.log").open("w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        snapshot = work / "data" / "analyst.duckdb"
        try:
            started = time.monotonic()
            daemon = subprocess.Popen(
                [TONEVAKT, "--config", str(config), "run"],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=work,
                env=env,
            )
            waiting: dict[str, tuple[Feed, float]] = {}
            deadline = started + 60 + (fetches + 5) * collection_interval
            while time.monotonic() < deadline and daemon.poll() is None:
                for f in feeds:
                    if f.path in results:
                        continue
                    if f.path not in waiting:
                        f.tick()
                        if f.hits() >= fetches:
                            url = f.publish()
                            waiting[f.path] = (f, time.monotonic())
                            print(
                                f"{'busy' if f.busy else 'quiet'} feed: fetch {fetches} at "
                                f"{time.monotonic() - started:.1f}s after start; new entry published right after it",
                                flush=True,
                            )
                            f.url = url  # type: ignore[attr-defined]
                    else:
                        f.tick()
                        if in_snapshot(snapshot, f.url):  # type: ignore[attr-defined]
                            results[f.path] = (time.monotonic() - waiting[f.path][1], True)
                if len(results) == len(feeds):
                    break
                time.sleep(0.05)
            for f in feeds:
                if f.path not in results and f.path in waiting:
                    results[f.path] = (time.monotonic() - waiting[f.path][1], False)
        finally:
            if daemon is not None and daemon.poll() is None:
                daemon.terminate()
                try:
                    daemon.wait(30)
                except subprocess.TimeoutExpired:
                    daemon.kill()
            log.close()
    target = collection_interval + SLACK_S
    print(f"collection interval {collection_interval}s (schedule {schedule}, interval_minutes {minutes})")
    for f in feeds:
        latency, seen = results.get(f.path, (float("nan"), False))
        kind = (
            "busy feed (new entries at every poll)" if f.busy else "quiet feed (unchanged at its last poll)"
        )
        state = f"{latency:.1f}s" if seen else f"NOT in the snapshot after {latency:.1f}s"
        print(
            f"{kind}: publication → analyst snapshot {state}; target ≤ {target:.0f}s (interval + {SLACK_S:.0f}s): "
            f"{verdict(seen and latency <= target)}",
            flush=True,
        )
    shutil.rmtree(work, ignore_errors=True)
    footer(t_all)
    emit_json(
        args.json,
        {
            "interval_s": collection_interval,
            "target_s": target,
            "feeds": [
                {
                    "busy": f.busy,
                    "latency_s": results.get(f.path, (None, False))[0],
                    "seen": results.get(f.path, (None, False))[1],
                }
                for f in feeds
            ],
        },
    )
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

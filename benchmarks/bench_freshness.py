"""Freshness: how long after an entry is published in a feed does it show up in the analyst snapshot?

The daemon (`tonevakt --config X run`) runs as a subprocess against a feed on a local server (127.0.0.1)
with config.yaml's schedule shape scaled down from 30 minutes to 2: collect every 2 minutes ("*/2", as
"*/30"), the snapshot job a minute after each collect ("1-59/2", as "10,40"), the source polled on the same
interval as the collect job (interval_minutes: 2, as NRK's 30). With --quick: collect and snapshot every 60 s
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

from common import ROOT, banner, footer, parser, verdict, write_config

TONEVAKT = str(Path(sys.executable).with_name("tonevakt"))
SLACK_S = 60.0


def feed_xml(entries: list[tuple[str, str]]) -> str:
    items = "".join(
        f"<item><title>{title}</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{format_datetime(datetime.now(UTC))}</pubDate>"
        f"<description>{title}. Mer om Helseplattformen ved St. Olavs hospital.</description></item>"
        for title, link in reversed(entries)
    )
    return ('<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Lokal kilde</title>'
            f"<link>https://kilde.example.no/</link><description>Nyheter</description>{items}</channel></rss>")  # fmt: skip


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


def main() -> int:
    p = parser(__doc__.splitlines()[0])
    args = p.parse_args()
    t_all = banner("freshness", args.quick)
    from tests.localserver import FEED_TYPE, LocalServer, Route

    if args.quick:
        collection_interval, minutes = 60, 1
        schedule = {"collect": {"interval_seconds": 60}, "snapshot": {"interval_seconds": 60}}
    else:
        collection_interval, minutes = 120, 2
        schedule = {"collect": {"cron": "*/2 * * * *"}, "snapshot": {"cron": "1-59/2 * * * *"}}
    work = Path(tempfile.mkdtemp(prefix="tonevakt-bench-fresh-"))
    entries = [
        (f"Helseplattformen: sak {k} fra St. Olavs hospital", f"https://kilde.example.no/sak/{k}")
        for k in range(3)
    ]
    daemon = None
    with LocalServer(max_lifetime_s=900) as srv:
        srv.add("/feed.xml", Route(body=feed_xml(entries), content_type=FEED_TYPE))
        config = write_config({
            "database": {"path": "data/tonevakt.duckdb", "snapshot": "data/analyst.duckdb", "exports": "data/exports",
                         "lock_timeout_s": 30},
            "http": {"allow_private_addresses": True},
            "sources": [{"id": "lokal-kilde", "name": "Lokal kilde", "kind": "rss", "voice": "media",
                         "url": srv.url("/feed.xml"), "full_text": "never", "interval_minutes": minutes}],
            "schedule": {**schedule, "score": {"cron": "0 3 * * *"}, "report": {"cron": "0 7 1 1 *"}},
            "report": {"pdf": False},
        }, work)  # fmt: skip
        log = (work / "daemon.log").open("w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        try:
            started = time.monotonic()
            daemon = subprocess.Popen([TONEVAKT, "--config", str(config), "run"], stdout=log, stderr=subprocess.STDOUT,
                                      cwd=work, env=env)  # fmt: skip
            snapshot = work / "data" / "analyst.duckdb"
            # The daemon's first pass runs at start; with cron schedules it is off the schedule's phase, so the
            # entry is published after the first fetch made on the schedule (the second), as in a running daemon.
            fetches = 1 if args.quick else 2
            deadline = started + 60 + fetches * collection_interval
            while srv.hits("/feed.xml") < fetches:
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit(
                        f"the daemon never fetched the feed:\n{(work / 'daemon.log').read_text()}"
                    )
                time.sleep(0.05)
            new = ("Helseplattformen: ny sak om ventetider i HelsaMi", "https://kilde.example.no/sak/ny")
            entries.append(new)
            srv.add("/feed.xml", Route(body=feed_xml(entries), content_type=FEED_TYPE))
            published = time.monotonic()
            print(f"daemon started; feed fetch {fetches} at {published - started:.1f}s after start; the new entry "
                  "published right after that fetch", flush=True)  # fmt: skip
            limit = published + collection_interval + SLACK_S + 120
            while not in_snapshot(snapshot, new[1]):
                if time.monotonic() > limit or daemon.poll() is not None:
                    break
                time.sleep(0.25)
            latency = time.monotonic() - published
            seen = in_snapshot(snapshot, new[1])
        finally:
            if daemon is not None and daemon.poll() is None:
                daemon.terminate()
                try:
                    daemon.wait(30)
                except subprocess.TimeoutExpired:
                    daemon.kill()
            log.close()
    target = collection_interval + SLACK_S
    if seen:
        print(f"latency from publication to the analyst snapshot: {latency:.1f}s (collection interval "
              f"{collection_interval}s; schedule {schedule}; feed fetched {srv.hits('/feed.xml')} times)")  # fmt: skip
    else:
        print(f"the entry was NOT in the snapshot after {latency:.1f}s")
    print(f"target: ≤ collection interval + {SLACK_S:.0f}s = {target:.0f}s: "
          f"{verdict(seen and latency <= target)}")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)
    footer(t_all)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())

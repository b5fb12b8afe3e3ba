"""Freshness: how long after an entry is published in a feed does it show up in the analyst snapshot?

The daemon (`tonevakt --config X run`) runs as a subprocess against feeds on a local server (127.0.0.1),
with the schedule of config.yaml scaled down: collect and snapshot every `--interval` seconds (config.yaml
runs both every 30 minutes) and sources polled every minute (interval_minutes: 1, the smallest allowed).
After the daemon's first pass has stored the feed's entries, a new entry is published, and the snapshot
(data/analyst.duckdb) is polled read-only until the entry is in it. The worst phase is measured: the entry
appears right after a pass has fetched the feed, so it waits a whole collection interval.

Target: latency ≤ one collection interval + 60 s.

    python benchmarks/bench_freshness.py [--quick] [--interval 60]
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
    p.add_argument("--interval", type=int, default=60, help="collect and snapshot interval in seconds")
    args = p.parse_args()
    t_all = banner("freshness", args.quick)
    from tests.localserver import FEED_TYPE, LocalServer, Route

    interval = args.interval
    # Sources are due at most once a minute (interval_minutes ≥ 1): the collection interval is the larger of both.
    collection_interval = max(interval, 60)
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
                         "url": srv.url("/feed.xml"), "full_text": "never", "interval_minutes": 1}],
            "schedule": {"collect": {"interval_seconds": interval}, "snapshot": {"interval_seconds": interval},
                         "score": {"cron": "0 3 * * *"}, "report": {"cron": "0 7 1 1 *"}},
            "report": {"pdf": False},
        }, work)  # fmt: skip
        log = (work / "daemon.log").open("w")
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
        try:
            started = time.monotonic()
            daemon = subprocess.Popen([TONEVAKT, "--config", str(config), "run"], stdout=log, stderr=subprocess.STDOUT,
                                      cwd=work, env=env)  # fmt: skip
            snapshot = work / "data" / "analyst.duckdb"
            deadline = started + collection_interval + 120
            while not in_snapshot(snapshot, entries[0][1]):  # the first pass has stored the feed
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit(
                        f"the first pass never reached the snapshot:\n{(work / 'daemon.log').read_text()}"
                    )
                time.sleep(0.5)
            first_s = time.monotonic() - started
            new = ("Helseplattformen: ny sak om ventetider i HelsaMi", "https://kilde.example.no/sak/ny")
            entries.append(new)
            srv.add("/feed.xml", Route(body=feed_xml(entries), content_type=FEED_TYPE))
            published = time.monotonic()
            print(f"daemon started; first pass in the snapshot after {first_s:.1f}s; new entry published "
                  f"{published - started:.1f}s after start, right after the feed was fetched", flush=True)  # fmt: skip
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
        print(f"latency from publication to the analyst snapshot: {latency:.1f}s "
              f"(collection interval {collection_interval}s, snapshot every {interval}s)")  # fmt: skip
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

"""`tonevakt run` as a real process against changing feeds on a local HTTP server: SIGTERM in the middle of
a pass exits 0 in time, kill -9 then restart stores every published entry exactly once.

The helpers (changing feeds, the daemon process, log waits) are in tests/support/daemon.py.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.support.daemon import (
    READER,
    ChangingFeeds,
    DaemonProcess,
    assert_exactly_once,
    daemon_config,
    document_urls,
)
from tests.support.localserver import LocalServer
from tests.support.randomness import SeededRandom
from tonevakt import pipeline
from tonevakt.config import load_config

# -- tests ---------------------------------------------------------------------------------------


def test_sigterm_mid_pass_exits_0_and_kill_9_then_restart_keeps_every_entry_once(
    tmp_path: Path, server: LocalServer, daemons: list[DaemonProcess], rng: SeededRandom
) -> None:
    feeds = ChangingFeeds(server, n=3, every_s=0.4, delay_s=2.0)
    config = daemon_config(tmp_path, feeds)
    log = tmp_path / "daemon.log"
    db_path = tmp_path / "data" / "tonevakt.duckdb"
    first = feeds.paths[0]
    try:
        # 1. kill -9 at a random moment while the first pass waits for the (slow) feeds.
        n_req = len(feeds.request_times(first))
        a = DaemonProcess(config, log)
        daemons.append(a)
        deadline = time.monotonic() + 30
        while len(feeds.request_times(first)) == n_req and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(feeds.request_times(first)) > n_req, a.text()
        time.sleep(rng.uniform(0.0, 1.5))
        a.kill()
        assert a.proc.returncode == -signal.SIGKILL

        # 2. Restart; SIGTERM while its first pass is in flight: it finishes the pass and exits 0 in time.
        n_req = {p: len(feeds.request_times(p)) for p in feeds.paths}
        b = DaemonProcess(config, log)
        daemons.append(b)
        deadline = time.monotonic() + 30
        while (
            any(len(feeds.request_times(p)) == n_req[p] for p in feeds.paths) and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        fetched_at = {p: feeds.request_times(p)[-1] for p in feeds.paths}
        assert all(len(feeds.request_times(p)) > n_req[p] for p in feeds.paths), b.text()
        time.sleep(rng.uniform(0.0, 1.0))
        t0 = time.monotonic()
        b.signal(signal.SIGTERM)
        code = b.wait(35)
        elapsed = time.monotonic() - t0
        assert code == 0, (rng, b.text())
        # A timeout: the daemon finishes the pass within its stop grace (30 s by default), or gives up then.
        assert elapsed < 30, f"took {elapsed:.1f}s to stop ({rng})"
        assert "collect: sources ok 3" in b.text(), b.text()  # the interrupted pass was finished, not lost

        # Everything published before the restarted pass fetched each feed is stored, once.
        urls = document_urls(db_path)
        expected = set().union(*(feeds.urls_before(p, fetched_at[p]) for p in feeds.paths))
        assert_exactly_once(urls, expected, context=repr(rng))
        # The killed pass left no trace: no fetch log rows without their documents.
        con = duckdb.connect(str(db_path), read_only=True)
        rows = con.execute(
            "SELECT source_id, count(*), sum(new_documents) FROM fetch_log GROUP BY 1"
        ).fetchall()
        con.close()
        assert sorted(r[0] for r in rows) == ["kilde-0", "kilde-1", "kilde-2"]
        assert sum(r[2] for r in rows) == len(urls)
    finally:
        feeds.stop()


STUCK_DAEMON = """
import logging, sys
from tonevakt.config import load_config
from tonevakt.scheduler import Daemon
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
logging.getLogger("apscheduler").setLevel(logging.ERROR)
sys.exit(Daemon(load_config(sys.argv[1]), stop_grace_s=1.0).run())
"""


def test_sigterm_while_a_pass_is_stuck_exits_0_after_the_grace_and_keeps_nothing_half_done(
    tmp_path: Path, server: LocalServer
) -> None:
    feeds = ChangingFeeds(server, n=2, every_s=60, delay_s=30.0)  # answers after the client's 6 s timeout
    config = daemon_config(tmp_path, feeds)
    db_path = tmp_path / "data" / "tonevakt.duckdb"
    proc = subprocess.Popen(
        [sys.executable, "-c", STUCK_DAEMON, str(config)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not all(feeds.request_times(p) for p in feeds.paths) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(feeds.request_times(p) for p in feeds.paths)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        elapsed = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        feeds.stop()
    assert proc.returncode == 0, out
    assert "the collect job did not finish" in out  # it gave up after the grace, not waiting for the pass
    # A timeout: the 1 s stop grace, not the pass (6 s per fetch, the feeds answer after 30 s); 30 s is a
    # generous margin for a busy machine.
    assert elapsed < 30, f"{elapsed:.1f}s"
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM fetch_log").fetchall() == [(0,)]
        assert con.execute("SELECT count(*) FROM documents").fetchall() == [(0,)]
        # The sources did not advance: the next start fetches them again.
        assert con.execute("SELECT count(*) FROM sources WHERE next_due_at IS NULL").fetchall() == [(2,)]
    finally:
        con.close()


@pytest.mark.slow
def test_acceptance_random_stops_and_kills_keep_every_entry_once_and_readers_never_fail(
    tmp_path: Path, server: LocalServer, daemons: list[DaemonProcess], rng: SeededRandom
) -> None:
    """Issue 5's acceptance: left running against changing feeds, stopped and killed at random points and
    restarted, the database holds every published entry exactly once, and readers never saw an error."""
    feeds = ChangingFeeds(server, n=3, every_s=0.3, delay_s=1.0)
    config = daemon_config(tmp_path, feeds)
    log = tmp_path / "daemon.log"
    db_path = tmp_path / "data" / "tonevakt.duckdb"
    pipeline.init(load_config(config))  # `tonevakt init`: the database and the first snapshot
    stop_reading = tmp_path / "stop-reading"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(tmp_path / "data" / "analyst.duckdb"), str(stop_reading)],
        stdout=subprocess.PIPE,
        text=True,
    )
    actions = []
    try:
        for cycle in range(3):
            d = DaemonProcess(config, log)
            daemons.append(d)
            d.wait_for(r"daemon started", timeout=30)
            wait = rng.uniform(0.0, 2.5)
            time.sleep(wait)
            if cycle % 2 == 0:
                d.kill()
                actions.append(f"kill -9 after {wait:.1f}s")
            else:
                t0 = time.monotonic()
                d.signal(signal.SIGTERM)
                assert d.wait(35) == 0, (rng, d.text())
                assert time.monotonic() - t0 < 30, rng  # a timeout: the stop grace (30 s by default)
                actions.append(f"SIGTERM after {wait:.1f}s")
        last = DaemonProcess(config, log)
        daemons.append(last)
        last.wait_for(r"^INFO tonevakt.scheduler: collect: ", timeout=30)
        last.wait_for(r"^INFO tonevakt.scheduler: snapshot: published", timeout=30)
        last.signal(signal.SIGTERM)
        assert last.wait(35) == 0, last.text()
    finally:
        feeds.stop()
        stop_reading.touch()
        out, _ = reader.communicate(timeout=60)
    context = f"{rng}: {'; '.join(actions)}"
    result = json.loads(out)
    assert result["n_errors"] == 0, (context, result["errors"])
    assert result["ok"] > 0, context

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        fetches = con.execute(
            "SELECT source_id, url, epoch(max(started_at)), count(*), count(DISTINCT started_at) "
            "FROM fetch_log GROUP BY 1, 2"
        ).fetchall()
    finally:
        con.close()
    assert len(fetches) == 3, context
    expected: set[str] = set()
    for _, url, last_fetch, n, distinct in fetches:
        assert n == distinct, context  # no fetch recorded twice
        path = "/" + url.rsplit("/", 1)[1]
        expected |= feeds.urls_before_wall(path, last_fetch)
    assert expected, context
    assert_exactly_once(document_urls(db_path), expected, context=context)

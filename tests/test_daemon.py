"""`tonevakt run` as a real process against changing feeds on a local HTTP server: SIGTERM in the middle of
a pass exits 0 in time, kill -9 then restart stores every published entry exactly once.

The helpers here (changing feeds, the daemon process, log waits) are shared with test_concurrency.py.
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml

from tests.conftest import BASE_CONFIG, _merge
from tests.localserver import FEED_TYPE, LocalServer, Route
from tonevakt import pipeline
from tonevakt.config import load_config

TONEVAKT = str(Path(sys.executable).with_name("tonevakt"))


# -- changing feeds ------------------------------------------------------------------------------


class ChangingFeeds:
    """`n` RSS feeds on a LocalServer; a thread publishes one new entry in each every `every_s` seconds.
    A feed keeps every entry it ever published, newest first. Each response waits `delay_s` (a slow server
    keeps a pass in flight long enough to interrupt it)."""

    def __init__(self, srv: LocalServer, n: int = 3, every_s: float = 0.5, delay_s: float = 0.0,
                 initial: int = 3) -> None:  # fmt: skip
        self.srv = srv
        self.paths = [f"/feed-{i}.xml" for i in range(n)]
        self.every_s = every_s
        self.delay_s = delay_s
        # (url, monotonic time, wall-clock time) of every entry, per feed
        self.published: dict[str, list[tuple[str, float, float]]] = {p: [] for p in self.paths}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        for _ in range(initial):
            self.publish()
        self._thread = threading.Thread(target=self._run, daemon=True, name="changing-feeds")
        self._thread.start()

    def url(self, path: str) -> str:
        return self.srv.url(path)

    def publish(self) -> None:
        with self._lock:
            for i, path in enumerate(self.paths):
                k = len(self.published[path])
                link = self.srv.url(f"/sak/{i}-{k}")
                self.published[path].append((link, time.monotonic(), time.time()))
                self.srv.add(
                    path, Route(body=self._xml(i, path), content_type=FEED_TYPE, delay_s=self.delay_s)
                )

    def _xml(self, i: int, path: str) -> str:
        items = []
        for k, (link, _, _) in reversed(list(enumerate(self.published[path]))):
            items.append(
                f"<item><title>Helseplattformen: sak {k} i kilde {i}</title><link>{link}</link>"
                f"<guid>{link}</guid><pubDate>{format_datetime(datetime.now(UTC))}</pubDate>"
                f"<description>Sak {k} om Helseplattformen ved St. Olavs hospital.</description></item>"
            )
        return (
            '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
            f"<title>Kilde {i}</title><link>{self.srv.url('/')}</link><description>test</description>"
            + "".join(items)
            + "</channel></rss>"
        )

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            self.publish()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def all_urls(self) -> set[str]:
        with self._lock:
            return {u for entries in self.published.values() for u, _, _ in entries}

    def urls_before(self, path: str, t: float) -> set[str]:
        """Entries of `path` published before monotonic time `t` (a fetch arriving at `t` saw all of them)."""
        with self._lock:
            return {u for u, at, _ in self.published[path] if at < t}

    def urls_before_wall(self, path: str, t: float) -> set[str]:
        """Entries of `path` published before wall-clock time `t` (seconds since the epoch)."""
        with self._lock:
            return {u for u, _, wall in self.published[path] if wall < t}

    def request_times(self, path: str) -> list[float]:
        return [r.at for r in list(self.srv.requests) if r.path == path]


# -- the daemon process --------------------------------------------------------------------------


def write_config(tmp_path: Path, feeds: ChangingFeeds, **overrides: Any) -> Path:
    cfg = _merge(BASE_CONFIG, {
        "database": {"lock_timeout_s": 1.5},
        "sources": [
            {"id": f"kilde-{i}", "kind": "rss", "voice": "media", "url": feeds.url(p), "full_text": "never",
             "interval_minutes": 1}
            for i, p in enumerate(feeds.paths)
        ],
        "schedule": {"collect": {"interval_seconds": 1}, "score": {"interval_seconds": 3600},
                     "snapshot": {"interval_seconds": 1}, "report": {"cron": "0 7 1 1 *"}, "misfire_grace_s": 5},
        "report": {"pdf": False},
    })  # fmt: skip
    # (The weekly report is left to test_scheduler.py: a Monday cron would make each fresh daemon write last
    # week's overdue report first.)
    cfg = _merge(cfg, overrides)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


class DaemonProcess:
    """`tonevakt --config X run` as a subprocess; its log (stderr) goes to a file we can wait on."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "JOURNAL_STREAM": "8:1"}
        self._out = open(log, "a", encoding="utf-8")  # noqa: SIM115 (closed in wait())
        self._start_at = log.stat().st_size if log.exists() else 0
        self.proc = subprocess.Popen([TONEVAKT, "--config", str(config), "run"], stdout=self._out,
                                     stderr=subprocess.STDOUT, env=env, cwd=config.parent)  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8")[self._start_at :]

    def wait_for(self, pattern: str, timeout: float = 30.0, count: int = 1) -> str:
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern, re.M)
        while time.monotonic() < deadline:
            found = rx.findall(self.text())
            if len(found) >= count:
                return self.text()
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"no {count}× /{pattern}/ in the daemon log within {timeout}s:\n{self.text()}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 40.0) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            self._out.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._out.close()


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer(max_lifetime_s=300) as srv:
        yield srv


@pytest.fixture
def daemons() -> Iterator[list[DaemonProcess]]:
    """Every daemon a test starts is killed at the end, whatever happens."""
    started: list[DaemonProcess] = []
    yield started
    for d in started:
        d.kill()


def document_urls(db_path: Path) -> list[str]:
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT url FROM documents").fetchall()]
    finally:
        con.close()


def assert_exactly_once(urls: list[str], expected: set[str]) -> None:
    dupes = {u for u in urls if urls.count(u) > 1}
    assert not dupes, f"stored twice: {sorted(dupes)[:5]}"
    missing = expected - set(urls)
    assert not missing, f"{len(missing)} published entries missing, e.g. {sorted(missing)[:5]}"


# -- tests ---------------------------------------------------------------------------------------


def test_sigterm_mid_pass_exits_0_and_kill_9_then_restart_keeps_every_entry_once(
    tmp_path: Path, server: LocalServer, daemons: list[DaemonProcess]
) -> None:
    feeds = ChangingFeeds(server, n=3, every_s=0.4, delay_s=2.0)
    config = write_config(tmp_path, feeds)
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
        time.sleep(random.uniform(0.0, 1.5))
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
        time.sleep(random.uniform(0.0, 1.0))
        t0 = time.monotonic()
        b.signal(signal.SIGTERM)
        code = b.wait(35)
        elapsed = time.monotonic() - t0
        assert code == 0, b.text()
        assert elapsed < 30, f"took {elapsed:.1f}s to stop"
        assert "collect: sources ok 3" in b.text(), b.text()  # the interrupted pass was finished, not lost

        # Everything published before the restarted pass fetched each feed is stored, once.
        urls = document_urls(db_path)
        expected = set().union(*(feeds.urls_before(p, fetched_at[p]) for p in feeds.paths))
        assert_exactly_once(urls, expected)
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
    config = write_config(tmp_path, feeds)
    db_path = tmp_path / "data" / "tonevakt.duckdb"
    proc = subprocess.Popen([sys.executable, "-c", STUCK_DAEMON, str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
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
    assert elapsed < 5, f"{elapsed:.1f}s"
    assert "the collect job did not finish" in out
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
    tmp_path: Path, server: LocalServer, daemons: list[DaemonProcess]
) -> None:
    """Issue 5's acceptance: left running against changing feeds, stopped and killed at random points and
    restarted, the database holds every published entry exactly once, and readers never saw an error."""
    from tests.test_concurrency import READER

    seed = int(time.time())
    rng = random.Random(seed)
    feeds = ChangingFeeds(server, n=3, every_s=0.3, delay_s=1.0)
    config = write_config(tmp_path, feeds)
    log = tmp_path / "daemon.log"
    db_path = tmp_path / "data" / "tonevakt.duckdb"
    pipeline.init(load_config(config))  # `tonevakt init`: the database and the first snapshot
    stop_reading = tmp_path / "stop-reading"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(tmp_path / "data" / "analyst.duckdb"),
                               str(stop_reading)], stdout=subprocess.PIPE, text=True)  # fmt: skip
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
                assert d.wait(35) == 0, d.text()
                assert time.monotonic() - t0 < 30
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
    context = f"seed {seed}: {'; '.join(actions)}"
    result = json.loads(out)
    assert result["n_errors"] == 0, (context, result["errors"])
    assert result["ok"] > 0, context

    con = duckdb.connect(str(db_path), read_only=True)
    try:
        fetches = con.execute("SELECT source_id, url, epoch(max(started_at)), count(*), count(DISTINCT started_at) "
                              "FROM fetch_log GROUP BY 1, 2").fetchall()  # fmt: skip
    finally:
        con.close()
    assert len(fetches) == 3, context
    expected: set[str] = set()
    for _, url, last_fetch, n, distinct in fetches:
        assert n == distinct, context  # no fetch recorded twice
        path = "/" + url.rsplit("/", 1)[1]
        expected |= feeds.urls_before_wall(path, last_fetch)
    assert expected, context
    assert_exactly_once(document_urls(db_path), expected)

"""Shared by the daemon and concurrency tests: changing feeds on a local server, the daemon as a real process
with log waits, a snapshot reader, and checks that every entry is stored once (the process that holds the
database is tests/support/lock.py). The fixtures `server` and `daemons` are registered for every test module
by tests/conftest.py."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.support.config import merge_config, write_config
from tests.support.localserver import FEED_TYPE, LocalServer, Route
from tests.support.paths import tonevakt_command

# -- changing feeds ------------------------------------------------------------------------------


class ChangingFeeds:
    """`n` RSS feeds on a LocalServer; a thread publishes one new entry in each every `every_s` seconds.
    A feed keeps every entry it ever published, newest first. Each response waits `delay_s` (a slow server
    keeps a pass in flight long enough to interrupt it)."""

    def __init__(
        self, srv: LocalServer, n: int = 3, every_s: float = 0.5, delay_s: float = 0.0, initial: int = 3
    ) -> None:
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


def daemon_config(tmp_path: Path, feeds: ChangingFeeds, **overrides: Any) -> Path:
    """`tmp_path/config.yaml` for a daemon collecting `feeds` every second, with `overrides` on top."""
    cfg = merge_config(
        {
            "database": {"lock_timeout_s": 1.5},
            "sources": [
                {
                    "id": f"kilde-{i}",
                    "kind": "rss",
                    "voice": "media",
                    "url": feeds.url(p),
                    "full_text": "never",
                    "interval_minutes": 1,
                }
                for i, p in enumerate(feeds.paths)
            ],
            "schedule": {
                "collect": {"interval_seconds": 1},
                "score": {"interval_seconds": 3600},
                "snapshot": {"interval_seconds": 1},
                "report": {"cron": "0 7 1 1 *"},
                "misfire_grace_s": 5,
            },
            "report": {"pdf": False},
        },
        overrides,
    )
    # (The weekly report is left to test_scheduler.py: a Monday cron would make each fresh daemon write last
    # week's overdue report first.)
    return write_config(tmp_path, **cfg)


class DaemonProcess:
    """`tonevakt --config X run` as a subprocess; its log (stderr) goes to a file we can wait on."""

    def __init__(self, config: Path, log: Path) -> None:
        self.log = log
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", "JOURNAL_STREAM": "8:1"}
        self._out = open(log, "a", encoding="utf-8")  # noqa: SIM115 (closed in wait())
        self._start_at = log.stat().st_size if log.exists() else 0
        self.proc = subprocess.Popen(
            [tonevakt_command(), "--config", str(config), "run"],
            stdout=self._out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=config.parent,
        )

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


def assert_exactly_once(urls: list[str], expected: set[str], context: str = "") -> None:
    """Every URL of `expected` is among `urls`, and none is there twice (`context`: e.g. the random seed)."""
    dupes = {u for u in urls if urls.count(u) > 1}
    assert not dupes, f"stored twice: {sorted(dupes)[:5]} {context}"
    missing = expected - set(urls)
    assert not missing, f"{len(missing)} published entries missing, e.g. {sorted(missing)[:5]} {context}"


READER = """
import json, os, sys, time, duckdb
path, stop_file = sys.argv[1], sys.argv[2]
ok, errors, counts = 0, [], []
end = time.monotonic() + 120
while time.monotonic() < end and not os.path.exists(stop_file):
    try:
        con = duckdb.connect(path, read_only=True)
        try:
            counts.append(con.execute("SELECT count(*) FROM documents").fetchall()[0][0])
            con.execute("SELECT * FROM weekly_tone").fetchall()
        finally:
            con.close()
        ok += 1
    except Exception as e:
        errors.append(f"{type(e).__name__}: {e}")
    time.sleep(0.02)
print(json.dumps({"ok": ok, "errors": errors[:10], "n_errors": len(errors), "counts": counts}))
"""

"""Analysts and the daemon at the same time, as real processes: readers opening the snapshot in a loop never
see an error, and another process holding the main database for seconds costs no document."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.daemon import (
    READER,
    ChangingFeeds,
    DaemonProcess,
    assert_exactly_once,
    daemon_config,
    document_urls,
)
from tests.support.localserver import LocalServer
from tests.support.lock import hold_database
from tests.support.paths import tonevakt_command
from tonevakt import pipeline
from tonevakt.config import load_config


def test_busy_database_costs_no_document_and_snapshot_readers_never_fail(
    tmp_path: Path, server: LocalServer, daemons: list[DaemonProcess]
) -> None:
    feeds = ChangingFeeds(server, n=3, every_s=0.3)
    config = daemon_config(tmp_path, feeds)
    settings = load_config(config)
    pipeline.init(settings)  # database + first snapshot, as `tonevakt init` does
    db_path, snapshot = settings.db_path, settings.snapshot_path
    stop_reading = tmp_path / "stop-reading"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(snapshot), str(stop_reading)], stdout=subprocess.PIPE, text=True
    )
    holder = hold_database(db_path)
    try:
        d = DaemonProcess(config, tmp_path / "daemon.log")
        daemons.append(d)
        # The first pass cannot get in: it reads state from the snapshot, fetches, and buffers the batch.
        d.wait_for(r"database busy: buffered \d+ documents", timeout=30)
        fetched_at = {p: feeds.request_times(p)[-1] for p in feeds.paths}
        spool_files = list((db_path.parent / "spool").glob("*.jsonl"))
        assert spool_files
        # An analyst's `tonevakt sql` still answers (from the snapshot) while the database is held.
        sql = subprocess.run(
            [
                tonevakt_command(),
                "--config",
                str(config),
                "sql",
                "--csv",
                "SELECT count(*) AS n FROM sources",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert sql.returncode == 0, sql.stderr
        assert sql.stdout.splitlines() == ["n", "3"]
        time.sleep(1.5)  # more collect jobs run while the database stays busy
        # Buffered sources are not due again: the busy database does not make the daemon hammer the feeds.
        assert all(len(feeds.request_times(p)) == 1 for p in feeds.paths)
    finally:
        holder.release()
    d.wait_for(r"database free again: wrote \d+ buffered batches", timeout=30)
    d.wait_for(r"snapshot: published", timeout=30)
    d.signal(signal.SIGTERM)
    assert d.wait(35) == 0, d.text()
    feeds.stop()
    stop_reading.touch()
    out, _ = reader.communicate(timeout=40)
    result = json.loads(out)

    assert result["n_errors"] == 0, result["errors"]
    assert result["ok"] > 30
    assert result["counts"] == sorted(result["counts"])  # readers only ever see the data grow
    assert list((db_path.parent / "spool").glob("*.jsonl")) == []
    urls = document_urls(db_path)
    assert_exactly_once(urls, set().union(*(feeds.urls_before(p, fetched_at[p]) for p in feeds.paths)))


def test_kill_9_with_a_buffered_batch_then_restart_stores_it_once(
    tmp_path: Path, server: LocalServer, daemons: list[DaemonProcess]
) -> None:
    feeds = ChangingFeeds(server, n=2, every_s=0.3)
    config = daemon_config(tmp_path, feeds)
    settings = load_config(config)
    pipeline.init(settings)
    db_path = settings.db_path
    log = tmp_path / "daemon.log"
    holder = hold_database(db_path)
    try:
        a = DaemonProcess(config, log)
        daemons.append(a)
        # Documents are stored source by source (one batch or several): wait for the end of the pass.
        a.wait_for(r"database busy: buffered \d+ documents", timeout=30)
        a.wait_for(r"^INFO tonevakt.scheduler: collect: ", timeout=30)
        fetched_at = {p: feeds.request_times(p)[-1] for p in feeds.paths}
        a.kill()  # the batches exist only in the spool now
    finally:
        holder.release()
    assert 1 <= len(list((db_path.parent / "spool").glob("*.jsonl"))) <= len(feeds.paths)
    b = DaemonProcess(config, log)
    daemons.append(b)
    b.wait_for(r"database free again: wrote \d+ buffered batches", timeout=30)
    b.wait_for(r"^INFO tonevakt.scheduler: collect: ", timeout=30)
    b.signal(signal.SIGTERM)
    assert b.wait(35) == 0, b.text()
    feeds.stop()
    assert list((db_path.parent / "spool").glob("*.jsonl")) == []
    urls = document_urls(db_path)
    assert_exactly_once(urls, set().union(*(feeds.urls_before(p, fetched_at[p]) for p in feeds.paths)))
    # The replayed fetches made the sources not due: the restart did not fetch them again.
    assert all(len(feeds.request_times(p)) == 1 for p in feeds.paths)


def test_sigterm_while_waiting_for_a_busy_database_buffers_and_exits_0(
    tmp_path: Path, server: LocalServer, daemons: list[DaemonProcess]
) -> None:
    feeds = ChangingFeeds(server, n=2, every_s=0.3)
    config = daemon_config(tmp_path, feeds, database={"lock_timeout_s": 120})  # would wait two minutes
    settings = load_config(config)
    pipeline.init(settings)
    db_path = settings.db_path
    holder = hold_database(db_path)
    try:
        d = DaemonProcess(config, tmp_path / "daemon.log")
        daemons.append(d)
        d.wait_for(r"daemon started", timeout=30)
        time.sleep(1.0)  # the first pass is waiting for the database
        assert not any(feeds.request_times(p) for p in feeds.paths)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        assert d.wait(35) == 0, d.text()
        elapsed = time.monotonic() - t0
        fetched_at = {p: feeds.request_times(p)[-1] for p in feeds.paths}
    finally:
        holder.release()
    # A timeout: the stop cancels the wait for the database (lock_timeout_s 120) at once; 60 s is a generous
    # margin for a busy machine and still half of that wait.
    assert elapsed < 60, f"{elapsed:.1f}s"
    assert "database busy: buffered" in d.text()
    # Documents are stored source by source: one buffered batch per source that finished before the stop.
    assert 1 <= len(list((db_path.parent / "spool").glob("*.jsonl"))) <= len(feeds.paths)
    summary = pipeline.collect(settings)  # the next pass, once the database is free: the batch is written
    feeds.stop()
    assert summary.sources_skipped == 2  # the buffered fetches count: the sources are not due again
    assert list((db_path.parent / "spool").glob("*.jsonl")) == []
    urls = document_urls(db_path)
    assert_exactly_once(urls, set().union(*(feeds.urls_before(p, fetched_at[p]) for p in feeds.paths)))

"""One collection pass over the configured sources: due sources fetched concurrently, politely per host.

Concurrency is bounded by `http.max_concurrency` (a thread pool over sources); politeness per host is the
HTTP client's job (a lock and a minimum spacing per host). A source that is not due (its interval, or the
backoff after failures) is skipped unless forced. A collector that raises never aborts the pass: the
source gets a failed outcome with the reason.

Time bounds (`collect` in config): each source's fetches run under a deadline, its start plus
`collect.source_budget_s`, never later than the pass deadline (`collect.pass_deadline_s` after the pass began).
A fetch still running at the deadline is cut, no fetch starts after it, and a source not started by the pass
deadline is left for the next pass. Collectors report the items (article pages, feed pages) they did not
finish; the pass stores them as pending items and hands the due ones back in a later pass. Each outcome is
handed to `on_outcome` as soon as its source is done, so a slow source does not hold the others' documents.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tonevakt.collectors.http import HttpClient
from tonevakt.config import Settings
from tonevakt.errors import TonevaktError
from tonevakt.models import FetchLogEntry, FetchStatus, PendingItem, Source, SourceOutcome

logger = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]


def is_due(state_row: dict[str, Any] | None, now: datetime) -> bool:
    """Is the source due? (never fetched, or its next_due_at has passed, give or take `due_grace`)"""
    due = (state_row or {}).get("next_due_at")
    if due is None:
        return True
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    return due - due_grace(state_row) <= now


def due_grace(state_row: dict[str, Any] | None) -> timedelta:
    """Freshness (benchmarks/bench_freshness.py): next_due_at is counted from when the last fetch started, a
    few seconds after its pass began, so a source polled on the collect job's own interval (NRK every 30
    minutes, collect */30) would be a few seconds short of due at every other pass and wait a whole extra
    interval. A source due within 5 % of its interval (at most a minute) is fetched in this pass."""
    minutes = (state_row or {}).get("interval_minutes") or 0
    return min(timedelta(minutes=minutes) * 0.05, timedelta(seconds=60))


def collect_sources(
    sources: list[Source],
    state: dict[str, dict[str, Any]],
    settings: Settings,
    *,
    is_candidate: Callable[[str], bool],
    known_files: set[str],
    progress: Progress | None = None,
    force: bool = False,
    base_dir: Path = Path("."),
    known_urls: set[str] | None = None,
    pending: dict[str, list[PendingItem]] | None = None,
    on_outcome: Callable[[list[SourceOutcome]], None] | None = None,
) -> list[SourceOutcome]:
    """Collect every due source; returns one outcome per source, in the order given.

    `pending`: per source, items left by earlier passes (those due are handed to the collector).
    `on_outcome`: called in this thread with the outcomes of the sources that finished since the last call
    (the pass stores them at once); skipped sources are not passed."""
    now = datetime.now(UTC)
    pass_deadline = time.monotonic() + settings.collect.pass_deadline_s
    outcomes: dict[str, SourceOutcome] = {}
    due: list[Source] = []
    for s in sources:
        if force or is_due(state.get(s.id), now):
            due.append(s)
        else:
            outcomes[s.id] = SourceOutcome(source=s, skipped=True)
            logger.debug("%s: not due until %s", s.id, state[s.id].get("next_due_at"))
    total = len(due)
    known = set(known_urls or ())
    if progress:
        progress("collect", 0, total)
    if due:
        client = HttpClient(settings.http)
        try:
            workers = min(settings.http.max_concurrency, total)
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="collect") as pool:
                futures: dict[Future[SourceOutcome], Source] = {
                    pool.submit(
                        _bounded_one,
                        s,
                        client,
                        state.get(s.id),
                        settings,
                        pass_deadline,
                        items=due_items((pending or {}).get(s.id, []), s, now, force),
                        is_candidate=is_candidate,
                        known_files=known_files,
                        known_urls=known,
                        base_dir=base_dir,
                    ): s
                    for s in due
                }
                left = set(futures)
                done_count = 0
                while left:
                    finished, left = wait(left, return_when=FIRST_COMPLETED)
                    batch = []
                    for fut in finished:
                        s = futures[fut]
                        outcomes[s.id] = fut.result()  # collect_one never raises
                        _log_outcome(outcomes[s.id])
                        if not outcomes[s.id].skipped:
                            batch.append(outcomes[s.id])
                        done_count += 1
                        if progress:
                            progress("collect", done_count, total)
                    if on_outcome and batch:
                        on_outcome(batch)
        finally:
            client.close()
    return [outcomes[s.id] for s in sources]


def due_items(items: list[PendingItem], source: Source, now: datetime, force: bool) -> list[PendingItem]:
    """The pending items of a source to try in this pass: those due (same grace as sources), all when forced."""
    row = {"interval_minutes": source.interval_minutes}
    return [i for i in items if force or is_due({**row, "next_due_at": i.next_due_at}, now)]


def _bounded_one(
    source: Source,
    client: HttpClient,
    state_row: dict[str, Any] | None,
    settings: Settings,
    pass_deadline: float,
    **kwargs: Any,
) -> SourceOutcome:
    """collect_one under the source's deadline: its budget from now, never past the pass deadline."""
    start = time.monotonic()
    if start >= pass_deadline:
        logger.info(
            "%s: not started, the pass deadline of %gs came first; it is first in the next pass",
            source.id,
            settings.collect.pass_deadline_s,
        )
        return SourceOutcome(
            source=source, skipped=True, deferred=True, warnings=["not started: the pass deadline came first"]
        )
    budget = settings.collect.source_budget_s
    if start + budget <= pass_deadline:
        bounded = client.with_deadline(start + budget, f"the source's time budget of {budget:g}s")
    else:
        bounded = client.with_deadline(
            pass_deadline, f"the pass deadline of {settings.collect.pass_deadline_s:g}s"
        )
    return collect_one(source, bounded, state_row, **kwargs)


def collect_one(
    source: Source,
    client: HttpClient,
    state_row: dict[str, Any] | None,
    *,
    is_candidate: Callable[[str], bool],
    known_files: set[str],
    known_urls: set[str],
    base_dir: Path = Path("."),
    items: list[PendingItem] | None = None,
) -> SourceOutcome:
    """Dispatch one source to its collector; never raises."""
    started = datetime.now(UTC)
    try:
        outcome = _dispatch(
            source, client, state_row, is_candidate, known_files, known_urls, base_dir, items or []
        )
    except TonevaktError as e:
        outcome = _failed(source, started, f"{e}")
    except Exception as e:  # a collector bug must not abort the pass; it is recorded for the source
        logger.exception("collector for %s crashed", source.id)
        outcome = _failed(source, started, f"collector crashed: {type(e).__name__}: {e}")
    return outcome


def _dispatch(
    source: Source,
    client: HttpClient,
    state_row: dict[str, Any] | None,
    is_candidate: Callable[[str], bool],
    known_files: set[str],
    known_urls: set[str],
    base_dir: Path,
    items: list[PendingItem],
) -> SourceOutcome:
    kind = source.kind
    if kind == "rss":
        from tonevakt.collectors.rss import collect_rss

        return collect_rss(source, client, state_row, is_candidate=is_candidate, known_urls=known_urls)
    if kind == "news_search":
        from tonevakt.collectors.news_search import collect_news_search

        return collect_news_search(
            source, client, state_row, is_candidate=is_candidate, known_urls=known_urls
        )
    if kind == "web":
        from tonevakt.collectors.web import collect_web

        return collect_web(source, client, state_row, known_urls=known_urls, pending=items)
    if kind == "appstore":
        from tonevakt.collectors.appstore import collect_appstore

        return collect_appstore(source, client, state_row, pending=items)
    if kind == "files":
        from tonevakt.collectors.inbox import collect_inbox

        return collect_inbox(source, known_files, base_dir)
    return _failed(source, datetime.now(UTC), f"unknown source kind {kind!r}")


def _failed(source: Source, started: datetime, reason: str) -> SourceOutcome:
    entry = FetchLogEntry(
        source_id=source.id,
        url=source.url or source.path or source.app_id or "",
        status=FetchStatus.SOFT_ERROR,
        started_at=started,
        reason=reason,
        primary=True,
    )
    return SourceOutcome(source=source, fetches=[entry])


def _log_outcome(o: SourceOutcome) -> None:
    if o.skipped:
        return
    if o.failed:
        logger.info("source %s failed: %s", o.source.id, o.reason)  # the pass summary lists failures
    else:
        left = f", {o.items_left} items left for a later pass" if o.items_left else ""
        logger.info(
            "source %s: %d documents, %d fetches%s%s",
            o.source.id,
            len(o.documents),
            len(o.fetches),
            left,
            f" ({'; '.join(o.warnings)})" if o.warnings else "",
        )

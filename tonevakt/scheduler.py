"""`tonevakt run`: the long-running daemon (APScheduler 3.x) that runs collection, scoring, the weekly
report and snapshot publishing on the schedule of `config.yaml`, in `schedule.timezone`.

- Jobs never overlap: one instance per job, missed runs coalesced, a misfire grace; and one process-wide
  lock around every job, because every job opens the database and DuckDB allows one writer per file.
- SIGTERM/SIGINT: no new job starts; the running one finishes (its writes are one transaction) within a
  grace period, or the process leaves it and exits 0 — an unfinished transaction is rolled back by DuckDB,
  and what it had fetched is fetched again at the next pass (sources advance only with their documents).
- One log line per job saying what it did; journald adds the timestamps (see `cli._setup_logging`).
- Each source's own polling interval and failure backoff live in the database (`sources.next_due_at`);
  the collect job runs often and the collectors skip the sources that are not due.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tonevakt import dates
from tonevakt.config import IntervalOrCron, Settings
from tonevakt.errors import ConfigError, DatabaseLockedError, TonevaktError
from tonevakt.storage import spool

if TYPE_CHECKING:
    from tonevakt.reports.weekly import ReportPaths

logger = logging.getLogger(__name__)

JOBS = ("collect", "score", "report", "snapshot")
STOP_GRACE_S = 25.0  # systemd's TimeoutStopSec is 30 s: leave a margin

# crontab weekdays are 0-7 with 0 and 7 = Sunday; APScheduler's numbers start at Monday = 0, so numbers are
# translated into names, which mean the same in both.
_DOW_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMERIC_DOW = re.compile(r"^(\d)(?:-(\d))?(?:/(\d+))?$")


def _crontab_weekdays(field: str) -> str:
    if field in ("*", "?"):
        return "*"
    names: list[str] = []
    for part in field.split(","):
        m = _NUMERIC_DOW.match(part)
        if not m:
            names.append(part.lower())  # names (mon-fri) and '*/2' mean the same in APScheduler
            continue
        lo = int(m.group(1))
        hi = int(m.group(2)) if m.group(2) is not None else lo
        step = int(m.group(3) or 1)
        if lo > 7 or hi > 7 or lo > hi or step < 1:
            raise ConfigError(f"bad weekday field in cron expression: {field!r}")
        for n in range(lo, hi + 1, step):
            if _DOW_NAMES[n] not in names:
                names.append(_DOW_NAMES[n])
    return ",".join(names)


def cron_trigger(expr: str, timezone: str) -> CronTrigger:
    """A crontab expression (minute hour day month weekday) with crontab's weekday numbering."""
    parts = expr.split()
    if len(parts) != 5:
        raise ConfigError(f"cron expression needs five fields (minute hour day month weekday): {expr!r}")
    minute, hour, day, month, dow = parts
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=_crontab_weekdays(dow),
            timezone=ZoneInfo(timezone),
        )
    except ValueError as e:
        raise ConfigError(f"bad cron expression {expr!r}: {e}") from e


def build_trigger(spec: IntervalOrCron, timezone: str) -> BaseTrigger:
    """The trigger of one job from its `schedule` entry (a crontab line or an interval in seconds)."""
    if spec.cron is not None:
        return cron_trigger(spec.cron, timezone)
    assert spec.interval_seconds is not None
    return IntervalTrigger(seconds=spec.interval_seconds, timezone=ZoneInfo(timezone))


# -- the jobs ------------------------------------------------------------------------------------


class Daemon:
    """The scheduler, its jobs and the shutdown logic. `run()` blocks until SIGTERM/SIGINT."""

    def __init__(self, settings: Settings, stop_grace_s: float = STOP_GRACE_S) -> None:
        self.settings = settings
        self.tz = settings.schedule.timezone
        self.stop_grace_s = stop_grace_s
        # The one stop signal: no job starts once it is set, and a collect job waiting for a busy database
        # stops waiting and buffers its batch in the spool (`pipeline.collect(stop=...)`).
        self.stopping = threading.Event()
        self._db_lock = threading.Lock()  # one job at a time touches the database
        self._idle = threading.Event()
        self._idle.set()
        self._running: str | None = None
        self._signals = 0
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=len(JOBS))},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": settings.schedule.misfire_grace_s,
            },
            timezone=ZoneInfo(self.tz),
        )
        self.scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES)

    # -- scheduling ------------------------------------------------------------------------------
    def add_jobs(self) -> None:
        sched = self.settings.schedule
        jobs: dict[str, Callable[[], None]] = {
            "collect": self.collect,
            "score": self.score,
            "report": self.report,
            "snapshot": self.snapshot,
        }
        for name, fn in jobs.items():
            spec: IntervalOrCron = getattr(sched, name)
            trigger = build_trigger(spec, self.tz)
            kwargs: dict[str, Any] = {}
            if name == "collect" or (name == "snapshot" and not self.settings.snapshot_path.exists()):
                # Pick up where the last run stopped: one pass (and the spool) right away; and analysts
                # need a snapshot to open.
                kwargs["next_run_time"] = datetime.now(ZoneInfo(self.tz))
            self.scheduler.add_job(self.guarded(name, fn), trigger, id=name, name=name, **kwargs)
            if spec.cron is not None and _touches_dst_hour(spec.cron):
                logger.warning(
                    "schedule.%s (%r) runs between 02:00 and 03:00, which DST skips or repeats",
                    name,
                    spec.cron,
                )
        if self.report_overdue():
            self.scheduler.add_job(self.guarded("report", self.report), id="report-catch-up", name="report")

    def _on_event(self, event: JobExecutionEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            logger.warning(
                "%s: missed its run at %s by more than the misfire grace (the process was busy or "
                "down); the next run catches up",
                event.job_id,
                event.scheduled_run_time,
            )
        else:
            logger.debug("%s: still running (or waiting for another job), this run is skipped", event.job_id)

    @property
    def running(self) -> str | None:
        """The job running now (its name), or None when the daemon is idle."""
        return None if self._idle.is_set() else self._running

    def guarded(self, name: str, fn: Callable[[], None]) -> Callable[[], None]:
        """`fn` as the job `name`: one job at a time touches the database, none starts once a stop is asked
        for, and a failure is one log line (the daemon goes on)."""

        def job() -> None:
            if self.stopping.is_set():
                return
            waited = time.monotonic()
            with self._db_lock:
                if self.stopping.is_set():
                    return
                waited = time.monotonic() - waited
                if waited > 1.0:
                    logger.debug("%s: waited %.1fs for the %s job", name, waited, self._running)
                self._running = name
                self._idle.clear()
                try:
                    fn()
                except DatabaseLockedError as e:
                    logger.warning("%s: database busy, will retry at the next run: %s", name, e)
                except TonevaktError as e:
                    logger.error("%s: failed: %s", name, e)
                except Exception:
                    logger.exception("%s: failed with an unexpected error", name)
                finally:
                    self._running = None
                    self._idle.set()

        job.__name__ = f"tonevakt_{name}"
        return job

    def collect(self) -> None:
        from tonevakt import pipeline

        t0 = time.monotonic()
        # Once stopping, a busy database is not waited for: the batch goes to the spool.
        s = pipeline.collect(self.settings, stop=self.stopping)
        failed = f" ({', '.join(sid for sid, _ in s.failures)})" if s.failures else ""
        buffered = len(spool.pending(spool.spool_dir(self.settings.db_path)))
        tail = f"; {buffered} batches buffered until the database is free" if buffered else ""
        late = f", not started before the pass deadline {s.sources_deferred}" if s.sources_deferred else ""
        late += f"; items pending {s.items_pending}" if s.items_pending else ""
        logger.info(
            "collect: sources ok %d, failed %d%s, not due %d%s; documents seen %d, new %d%s; %.1fs",
            s.sources_ok,
            s.sources_failed,
            failed,
            s.sources_skipped,
            late,
            s.documents_seen,
            s.documents_new,
            tail,
            time.monotonic() - t0,
        )
        if s.documents_new:
            # Freshness (benchmarks/bench_freshness.py): new documents reach the analyst snapshot with this
            # pass, not only at the next snapshot job (config.yaml runs it 10 minutes after each collect).
            t1 = time.monotonic()
            try:
                pipeline.publish(self.settings)
            except DatabaseLockedError as e:
                logger.info("collect: the snapshot is left to the snapshot job (database busy: %s)", e)
            else:
                logger.info(
                    "collect: published the analyst snapshot with the %d new documents; %.1fs",
                    s.documents_new,
                    time.monotonic() - t1,
                )

    def score(self) -> None:
        from tonevakt import pipeline

        t0 = time.monotonic()
        n = pipeline.score(self.settings)
        logger.info("score: scored %d documents; %.1fs", n, time.monotonic() - t0)

    def snapshot(self) -> None:
        from tonevakt import pipeline

        t0 = time.monotonic()
        path = pipeline.publish(self.settings)
        logger.info("snapshot: published %s and the Parquet exports; %.1fs", path, time.monotonic() - t0)

    def report(self) -> None:
        t0 = time.monotonic()
        week = dates.last_complete_week(datetime.now(ZoneInfo(self.tz)), self.tz)
        if report_done(self.settings, week):
            sent = " and sent" if self.settings.report.smtp else ""
            logger.info("report: week %s was already written%s; nothing to do", week, sent)
            return
        from tonevakt import pipeline
        from tonevakt.reports.weekly import write_weekly

        pipeline.refresh_shares_if_free(self.settings)  # new human labels count in the report
        result = write_weekly(self.settings, week=week)
        logger.info("report: week %s: %s; %.1fs", week, _describe(result), time.monotonic() - t0)

    def report_overdue(self, now: datetime | None = None) -> bool:
        """Was last week's report due while the daemon was down (and not written)? Then write it now."""
        spec = self.settings.schedule.report
        if spec.cron is None:
            return False
        now = (now or datetime.now(ZoneInfo(self.tz))).astimezone(ZoneInfo(self.tz))
        week = dates.last_complete_week(now, self.tz)
        trigger = cron_trigger(spec.cron, self.tz)
        start = datetime.combine(
            dates.week_monday(week) + timedelta(days=7), datetime.min.time(), ZoneInfo(self.tz)
        )
        due = trigger.get_next_fire_time(None, start)
        if due is None or due > now or now - due < timedelta(seconds=self.settings.schedule.misfire_grace_s):
            return False  # not due yet, or the scheduler's misfire grace still covers it
        try:
            done = report_done(self.settings, week)
        except TonevaktError as e:
            logger.warning(
                "report: cannot tell whether week %s was written (%s); leaving it to schedule", week, e
            )
            return False
        if not done:
            logger.info("report: week %s was due at %s and is not done: doing it now", week, due)
        return not done

    # -- running and stopping --------------------------------------------------------------------
    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals += 1
        if self._signals > 1:
            logger.warning("second %s: stopping now", signal.Signals(signum).name)
            _hard_exit(0)
        logger.info("%s: stopping (the running job may finish first)", signal.Signals(signum).name)
        self.stopping.set()  # also ends a job's wait for a busy database: it buffers its batch instead

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        self.add_jobs()
        self.scheduler.start()
        jobs = ", ".join(
            f"{j.id} next {j.next_run_time:%Y-%m-%d %H:%M:%S %Z}" for j in self.scheduler.get_jobs()
        )
        logger.info("daemon started (pid %d, time zone %s): %s", os.getpid(), self.tz, jobs)
        while not self.stopping.wait(1.0):
            pass
        return self.stop()

    def stop(self) -> int:
        self.stopping.set()
        t0 = time.monotonic()
        self.scheduler.shutdown(wait=False)
        running = self._running
        if not self._idle.wait(self.stop_grace_s):
            logger.warning(
                "stopped after %.0fs: the %s job did not finish; its unfinished writes are rolled "
                "back and its sources fetched again at the next start",
                self.stop_grace_s,
                running,
            )
            _hard_exit(0)
        logger.info(
            "stopped%s in %.1fs",
            f" after the {running} job finished" if running else "",
            time.monotonic() - t0,
        )
        return 0


def _hard_exit(code: int) -> None:
    """Leave without waiting for a worker thread stuck in the network: like a crash, DuckDB discards the
    unfinished transaction; logs are flushed first."""
    logging.shutdown()
    os._exit(code)


def _touches_dst_hour(expr: str) -> bool:
    hour = expr.split()[1]
    if hour == "*" or "/" in hour:
        return False  # hourly jobs simply run once less/more on the DST night: harmless
    for part in hour.split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and int(lo) <= 2 <= int(hi or lo):
            return True
    return False


def _describe(result: ReportPaths) -> str:
    sent = result.sent_to
    return f"wrote {result.folder}" + (f", e-mailed to {len(sent)} recipients" if sent else "")


def report_done(settings: Settings, week: str) -> bool:
    """Is the weekly report of `week` recorded as written (and sent, when e-mail is configured)? Reads the
    snapshot when the database is busy."""
    from tonevakt.storage.db import open_for_reading

    if not settings.db_path.exists():
        return False
    db = open_for_reading(settings.db_path, settings.snapshot_path)
    try:
        kinds = {r[0] for r in db.fetchall("SELECT kind FROM reports WHERE week = ?", [week])}
    finally:
        db.close()
    return "written" in kinds and (settings.report.smtp is None or "sent" in kinds)


def run_daemon(settings: Settings) -> int:
    """Run until SIGTERM/SIGINT; returns the exit code (0 after a clean stop)."""
    return Daemon(settings).run()

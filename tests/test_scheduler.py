"""Scheduler core: triggers from config, the weekly report across DST, no overlapping jobs, catch-up."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from tonevakt import pipeline
from tonevakt.config import IntervalOrCron, Settings
from tonevakt.dates import last_complete_week
from tonevakt.errors import ConfigError
from tonevakt.scheduler import Daemon, _touches_dst_hour, build_trigger, cron_trigger
from tonevakt.storage.db import database

OSLO = ZoneInfo("Europe/Oslo")

# Europe/Oslo's DST changes in 2026 and 2027 (last Sunday of March / October, at 01:00 UTC).
DST_CHANGES = [
    datetime(2026, 3, 29, 1, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 0, tzinfo=UTC),
    datetime(2027, 3, 28, 1, 0, tzinfo=UTC),
    datetime(2027, 10, 31, 1, 0, tzinfo=UTC),
]


def _fire_times(trigger: CronTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Fire times as the scheduler computes them: each from the previous one, `now` just after it."""
    out: list[datetime] = []
    prev = None
    now = start
    while True:
        nxt = trigger.get_next_fire_time(prev, now)
        if nxt is None or nxt > end:
            return out
        out.append(nxt)
        prev, now = nxt, nxt + timedelta(microseconds=1)


def test_weekly_report_neither_doubles_nor_skips_across_dst() -> None:
    trigger = build_trigger(IntervalOrCron(cron="0 7 * * mon"), "Europe/Oslo")
    start = datetime(2026, 1, 1, tzinfo=OSLO)
    end = datetime(2027, 12, 31, 23, 59, tzinfo=OSLO)
    fires = _fire_times(trigger, start, end)

    mondays = [start.date() + timedelta(days=i) for i in range((end.date() - start.date()).days + 1)]
    mondays = [d for d in mondays if d.weekday() == 0]
    assert [f.astimezone(OSLO).date() for f in fires] == mondays  # every Monday, once
    assert all(f.astimezone(OSLO).hour == 7 and f.astimezone(OSLO).minute == 0 for f in fires)

    gaps = {}
    for a, b in zip(fires, fires[1:], strict=False):
        gap = (b.astimezone(UTC) - a.astimezone(UTC)) / timedelta(hours=1)  # real elapsed hours
        gaps[b.astimezone(OSLO).date()] = gap
        assert gap in (167, 168, 169)
    # The week holding a DST change is one hour shorter (spring) or longer (autumn), and only that week.
    assert {d: g for d, g in gaps.items() if g != 168} == {
        date(2026, 3, 30): 167,
        date(2026, 10, 26): 169,
        date(2027, 3, 29): 167,
        date(2027, 11, 1): 169,
    }
    for change in DST_CHANGES:
        before = max(f for f in fires if f < change)
        after = min(f for f in fires if f > change)
        assert before.utcoffset() != after.utcoffset()
        assert (after.astimezone(OSLO).date() - before.astimezone(OSLO).date()).days == 7

    # The week each report is about, computed at fire time: the ISO week that just ended, each once.
    weeks = [last_complete_week(f, "Europe/Oslo") for f in fires]
    assert len(set(weeks)) == len(weeks)
    for f, w in zip(fires, weeks, strict=True):
        sunday = f.astimezone(OSLO).date() - timedelta(days=1)
        assert w == f"{sunday.isocalendar()[0]}-W{sunday.isocalendar()[1]:02d}"
    by_day = dict(zip([f.astimezone(OSLO).date() for f in fires], weeks, strict=True))
    assert by_day[date(2026, 3, 30)] == "2026-W13"  # the week of the spring change
    assert by_day[date(2026, 10, 26)] == "2026-W43"  # the week of the autumn change
    assert by_day[date(2027, 1, 4)] == "2026-W53"  # 2026 has 53 ISO weeks
    assert by_day[date(2027, 3, 29)] == "2027-W12"
    assert by_day[date(2027, 11, 1)] == "2027-W43"


def test_report_week_is_in_local_time() -> None:
    # Monday 00:30 in Oslo is still Sunday in UTC: the week that ended is the one before.
    assert last_complete_week(datetime(2026, 11, 22, 23, 30, tzinfo=UTC), "Europe/Oslo") == "2026-W47"
    assert last_complete_week(datetime(2026, 11, 23, 6, 0, tzinfo=UTC), "Europe/Oslo") == "2026-W47"
    assert last_complete_week(datetime(2026, 11, 25, 12, 0, tzinfo=OSLO), "Europe/Oslo") == "2026-W47"
    assert last_complete_week(datetime(2026, 11, 29, 23, 59, tzinfo=OSLO), "Europe/Oslo") == "2026-W47"


def test_crontab_weekday_numbers_mean_what_crontab_means() -> None:
    monday = datetime(2026, 11, 23, 0, 0, tzinfo=OSLO)  # a Monday
    for expr, weekday in [
        ("0 7 * * 1", 0),
        ("0 7 * * mon", 0),
        ("0 7 * * 0", 6),
        ("0 7 * * 7", 6),
        ("0 7 * * 5", 4),
    ]:
        nxt = cron_trigger(expr, "Europe/Oslo").get_next_fire_time(None, monday)
        assert nxt is not None and nxt.weekday() == weekday, expr
    weekdays = cron_trigger("30 6 * * 1-5", "Europe/Oslo")
    fires = _fire_times(weekdays, monday, monday + timedelta(days=7))
    assert [f.weekday() for f in fires] == [0, 1, 2, 3, 4]
    sun_to_tue = _fire_times(cron_trigger("0 8 * * 0-2", "Europe/Oslo"), monday, monday + timedelta(days=7))
    assert sorted(f.weekday() for f in sun_to_tue) == [0, 1, 6]
    with pytest.raises(ConfigError):
        cron_trigger("0 7 * * 9", "Europe/Oslo")


def test_interval_and_dst_hour_warning() -> None:
    t = build_trigger(IntervalOrCron(interval_seconds=2), "Europe/Oslo")
    assert isinstance(t, IntervalTrigger) and t.interval == timedelta(seconds=2)
    assert _touches_dst_hour("30 2 * * *") and _touches_dst_hour("0 1-3 * * *")
    assert not _touches_dst_hour("*/30 6-23,0-1 * * *") and not _touches_dst_hour("0 7 * * mon")


def test_jobs_never_run_at_the_same_time(settings: Settings) -> None:
    daemon = Daemon(settings)
    spans: list[tuple[str, float, float]] = []

    def work(name: str) -> Callable[[], None]:
        def fn() -> None:
            t0 = time.monotonic()
            time.sleep(0.15)
            spans.append((name, t0, time.monotonic()))

        return fn

    threads = [
        threading.Thread(target=daemon.guarded(n, work(n))) for n in ("collect", "score", "snapshot") * 2
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(spans) == 6
    spans.sort(key=lambda s: s[1])
    for a, b in zip(spans, spans[1:], strict=False):
        assert a[2] <= b[1], f"{a[0]} and {b[0]} overlapped"
    daemon.stopping.set()
    skipped: list[str] = []
    daemon.guarded("collect", lambda: skipped.append("ran"))()
    assert skipped == []  # no job starts once a stop is requested


def test_scheduler_jobs_from_config(make_settings: Callable[..., Settings]) -> None:
    s = make_settings(
        schedule={
            "collect": {"interval_seconds": 2},
            "score": {"interval_seconds": 3600},
            "snapshot": {"cron": "10,40 * * * *"},
            "misfire_grace_s": 30,
        }
    )
    daemon = Daemon(s)
    daemon.add_jobs()
    daemon.scheduler.start(paused=True)  # job defaults are applied when the scheduler starts
    jobs = {j.id: j for j in daemon.scheduler.get_jobs()}
    daemon.scheduler.shutdown(wait=False)
    assert set(jobs) >= {"collect", "score", "report", "snapshot"}
    for j in jobs.values():
        assert j.max_instances == 1 and j.coalesce is True and j.misfire_grace_time == 30
    assert isinstance(jobs["collect"].trigger, IntervalTrigger)
    assert str(jobs["report"].trigger.timezone) == "Europe/Oslo"


def test_a_missed_weekly_report_is_written_after_a_restart(settings: Settings) -> None:
    pipeline.init(settings)
    daemon = Daemon(settings)
    monday_0700 = datetime(2026, 11, 23, 7, 0, tzinfo=OSLO)
    assert not daemon.report_overdue(monday_0700 - timedelta(minutes=1))  # not due yet
    assert not daemon.report_overdue(monday_0700 + timedelta(minutes=5))  # the misfire grace covers it
    assert daemon.report_overdue(monday_0700 + timedelta(minutes=15))  # down at 07:00: write it now
    assert daemon.report_overdue(monday_0700 + timedelta(days=2))
    with database(settings.db_path) as db:
        db.execute("INSERT INTO reports VALUES ('2026-W47', 'written', 'reports/2026-W47', NULL, now())")
    assert not daemon.report_overdue(monday_0700 + timedelta(days=2))  # already written: never twice


def test_report_job_writes_a_week_once(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    s = make_settings(report={"pdf": False, "out_dir": "reports"})
    pipeline.init(s)
    daemon = Daemon(s)
    week = last_complete_week(datetime.now(OSLO))
    with caplog.at_level("INFO", logger="tonevakt.scheduler"):
        daemon.report()
        daemon.report()
    with database(s.db_path) as db:
        rows = db.fetchall("SELECT week, kind FROM reports")
    assert rows == [(week, "written")]
    lines = [r.getMessage() for r in caplog.records if r.name == "tonevakt.scheduler"]
    assert lines[0].startswith(f"report: week {week}: wrote ")
    assert lines[1] == f"report: week {week} was already written; nothing to do"


def test_a_failing_job_logs_one_error_line_and_the_daemon_goes_on(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    s = make_settings(sentiment={"backend": "embedded", "model": "no-such-head"})
    pipeline.init(s)
    daemon = Daemon(s)
    with caplog.at_level("INFO", logger="tonevakt.scheduler"):
        daemon.guarded("score", daemon.score)()
        daemon.guarded("snapshot", daemon.snapshot)()
    lines = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "tonevakt.scheduler"]
    assert (
        lines[0][0] == "ERROR" and lines[0][1].startswith("score: failed: ") and "no-such-head" in lines[0][1]
    )
    assert lines[1][0] == "INFO" and lines[1][1].startswith("snapshot: published ")
    assert daemon.running is None


def test_the_shipped_config_schedule_builds_and_avoids_the_dst_hour() -> None:
    from tests.support.paths import REPO
    from tonevakt.config import load_config

    s = load_config(REPO / "config.yaml")
    for name in ("collect", "score", "report", "snapshot"):
        spec = getattr(s.schedule, name)
        trigger = build_trigger(spec, s.schedule.timezone)
        assert trigger.get_next_fire_time(None, datetime(2026, 10, 25, 0, 0, tzinfo=OSLO)) is not None
        assert spec.cron is None or not _touches_dst_hour(spec.cron), name
    report = build_trigger(s.schedule.report, s.schedule.timezone)
    first = report.get_next_fire_time(None, datetime(2026, 10, 24, tzinfo=OSLO))
    assert first == datetime(2026, 10, 26, 7, 0, tzinfo=OSLO)

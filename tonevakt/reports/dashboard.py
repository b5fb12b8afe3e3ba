"""`tonevakt dashboard`: one static page (inline JS and data, no network, works from file://) listing every
weekly report, with trend charts filtered by voice, topic and region.

The page carries per-week aggregates, not stories: one cell per (week, voice, topic or all, region or all)
with the number of stories, the sum and the sum of squares of their tone (for the mean and the interval,
computed as weekly_tone does: mean ± 1.96 · sample standard deviation / √n) and the label counts. It lists
stories only where it shows them: for the last STORY_WEEKS weeks, each cell's five most negative and five
most positive, from which the page picks the five of any choice of voices. So its size grows with weeks, not
documents (benchmarks/bench_storage_reports.py). Every figure comes from the kept story tone
(`document_tone_kept`, first copies: the rows of story_tone).

The page's data (JSON in <script id="tonevakt-data">): `generated, synthetic, min_n, default_weeks, weeks,
last_complete, voices, topics, regions, reports` as before, and
- `cells`: columns of equal length, one entry per cell: `week` (index into weeks), `voice` (into voices),
  `topic` (into topics, -1 = all), `region` (into regions, -1 = all), `n`, `tone_sum` (sum of tones),
  `tone_squares` (sum of squared tones), `negative`, `positive` (stories labelled negative / positive);
- `story_weeks`: the weeks with story lists (the newest STORY_WEEKS);
- `lists`: columns `week, voice, topic, region` as in cells, `worst` and `best` (indexes into stories, most
  negative / most positive first, at most LIST_LENGTH);
- `stories`: `{week, voice, tone, title, outlet, url, date}` in publication order (`week` and `voice` indexes
  as in cells, `tone` rounded to 6 decimals, `date` the publication date as the page shows it);
- `shares`: the corrected shares (`shares_block`), rows named as the columns of weekly_shares.
The script (templates/dashboard.js) exposes `window.tonevakt.cellFor(week, voice, topic, region)` and
`storiesFor(week, voices, topic, region)`, which draw the page and which the browser test calls."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from markupsafe import Markup

from tonevakt import dates
from tonevakt.config import Settings
from tonevakt.dates import MAX_WEEKS, OSLO  # MAX_WEEKS: the charts' "Alle uker", ten years at most
from tonevakt.errors import ReportError
from tonevakt.models import VOICES
from tonevakt.reports import fmt, render
from tonevakt.reports.data import is_synthetic
from tonevakt.storage.db import Database, open_for_reading

logger = logging.getLogger(__name__)

_WEEK_DIR = re.compile(r"^\d{4}-W\d{2}$")


@dataclass
class ReportLink:
    week: str
    label: str
    html: str | None  # relative to the dashboard's folder
    pdf: str | None


def json_for_script(value: Any) -> str:
    """JSON safe inside <script type="application/json">: '<', '>' and '&' as \\u escapes."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def report_links(reports_dir: Path, dashboard_dir: Path) -> list[ReportLink]:
    """Every week folder in report.out_dir with a report in it, newest first."""
    if not reports_dir.is_dir():
        return []
    out = []
    for folder in sorted(reports_dir.iterdir(), reverse=True):
        if not (folder.is_dir() and _WEEK_DIR.match(folder.name)):
            continue
        html = folder / f"tonevakt-{folder.name}.html"
        pdf = folder / f"tonevakt-{folder.name}.pdf"
        if not html.exists() and not pdf.exists():
            continue

        def rel(p: Path) -> str | None:
            return Path(os.path.relpath(p, dashboard_dir)).as_posix() if p.exists() else None

        out.append(ReportLink(folder.name, fmt.week_label_year(folder.name), rel(html), rel(pdf)))
    return out


STORY_WEEKS = 26  # weeks (the newest) whose story lists the page carries; older weeks link to their reports
LIST_LENGTH = 5  # stories per list, as the page shows them

# Two steps, both in DuckDB: the stories are first grouped by week, voice and their exact topic and region
# lists (sums and top lists compose), then each group is spread over the cells of its topics and regions
# (and "" for all). Spreading every story instead took three times as long at 1M documents.


def _spread(columns: str) -> str:
    """The second step, shared by both queries: the CTEs that spread each row of `g` (its `columns` carried
    along) over its cells, `spread`: one row per (group, topic, region), the configured topics and regions
    and "" for all."""
    return f"""
    by_topic AS (
        SELECT week, voice, {columns}, unnest(list_concat([''], list_distinct(coalesce(topics, [])))) AS topic,
               list_concat([''], list_distinct(list_concat(coalesce(regions, []),
                                                           CASE WHEN region IS NULL THEN [] ELSE [region] END))) AS rgs
        FROM g
    ),
    tagged AS (
        SELECT week, voice, {columns}, topic, unnest(rgs) AS region
        FROM by_topic WHERE topic = '' OR list_contains($topics, topic)
    ),
    spread AS (
        SELECT * FROM tagged WHERE region = '' OR list_contains($regions, region)
    )"""


_CELLS_SQL = f"""
    WITH g AS (
        SELECT week, voice, topics, regions, region, count(*) AS n, sum(round(tone, 6)) AS s,
               sum(round(tone, 6) * round(tone, 6)) AS q, count(*) FILTER (WHERE label = 'negative') AS neg,
               count(*) FILTER (WHERE label = 'positive') AS pos
        FROM document_tone_kept WHERE first_copy AND list_contains($weeks, week)
        GROUP BY week, voice, topics, regions, region
    ),{_spread("n, s, q, neg, pos")}
    SELECT week, voice, topic, region, sum(n)::BIGINT, sum(s), sum(q), sum(neg)::BIGINT, sum(pos)::BIGINT
    FROM spread
    GROUP BY week, voice, topic, region
    ORDER BY week, voice, topic, region
"""
# The same cells, for the story weeks only: each cell's most negative and most positive stories, in the order
# the page sorts them (tone rounded as the page carries it, then publication, then id).
_LISTS_SQL = (
    """
    WITH k AS (
        SELECT document_id, published_at, week, voice, round(tone, 6) AS t, topics, regions, region
        FROM document_tone_kept WHERE first_copy AND list_contains($weeks, week) AND round(tone, 6) <> 0
    ),
    g AS (
        SELECT week, voice, topics, regions, region,
               min_by({'t': t, 'p': published_at, 'id': document_id}, (t, published_at, document_id), $n)
                   FILTER (WHERE t < 0) AS worst,
               min_by({'t': -t, 'p': published_at, 'id': document_id}, (-t, published_at, document_id), $n)
                   FILTER (WHERE t > 0) AS best
        FROM k GROUP BY week, voice, topics, regions, region
    ),"""
    + _spread("worst, best")
    + """,
    flat AS (
        SELECT week, voice, topic, region, unnest(worst) AS w, NULL AS b FROM spread
        UNION ALL
        SELECT week, voice, topic, region, NULL, unnest(best) FROM spread
    )
    SELECT week, voice, topic, region, min_by(w.id, w, $n) FILTER (WHERE w IS NOT NULL),
           min_by(b.id, b, $n) FILTER (WHERE b IS NOT NULL)
    FROM flat GROUP BY week, voice, topic, region
"""
)
_STORY_SQL = """
    SELECT k.document_id, k.week, k.voice, round(k.tone, 6), d.title, coalesce(d.outlet, s.name, k.source_id), d.url,
           k.published_at
    FROM (SELECT * FROM document_tone_kept
          WHERE first_copy AND published_at >= $since AND list_contains($ids, document_id)) k
    JOIN (SELECT id, title, outlet, url FROM documents WHERE published_at >= $since AND list_contains($ids, id)) d
      ON d.id = k.document_id
    LEFT JOIN sources s ON s.id = k.source_id
    ORDER BY k.published_at, k.document_id
"""


def _index(items: list[str]) -> dict[str, int]:
    return {x: i for i, x in enumerate(items)}


def dashboard_data(db: Database, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    last = dates.last_complete_week(now)
    first_week, last_week = db.fetchone(
        "SELECT min(week), max(week) FROM document_tone_kept WHERE first_copy"
    ) or (None, None)
    if first_week:  # every week from the first with data, the newest MAX_WEEKS of them
        weeks = [max(last, last_week)]
        while weeks[-1] > first_week and len(weeks) < MAX_WEEKS:
            weeks.append(dates.shift_week(weeks[-1], -1))
        weeks.reverse()
    else:
        weeks = dates.weeks_ending(last, settings.report.weeks)
    topics, regions = list(settings.topics), list(settings.regions)
    week_i, voice_i = _index(weeks), _index(list(VOICES))
    topic_i, region_i = {"": -1, **_index(topics)}, {"": -1, **_index(regions)}
    cells: dict[str, list[Any]] = {
        k: []
        for k in ("week", "voice", "topic", "region", "n", "tone_sum", "tone_squares", "negative", "positive")
    }
    params = {"weeks": weeks, "topics": topics, "regions": regions}
    for w, v, tp, rg, n, s_, q, neg, pos in db.fetchall(_CELLS_SQL, params):
        if v not in voice_i:
            continue
        # the sums unrounded: the interval is a difference of them
        for key, value in zip(
            cells, (week_i[w], voice_i[v], topic_i[tp], region_i[rg], n, s_, q, neg, pos), strict=True
        ):
            cells[key].append(value)

    story_weeks = weeks[-STORY_WEEKS:]
    raw_lists = db.fetchall(_LISTS_SQL, {**params, "weeks": story_weeks, "n": LIST_LENGTH})
    ids = sorted({i for r in raw_lists for col in (r[4], r[5]) for i in (col or [])})
    stories: list[dict[str, Any]] = []
    order: dict[str, int] = {}
    if ids:
        since = datetime.combine(
            dates.week_monday(story_weeks[0]), datetime.min.time(), tzinfo=OSLO
        ) - timedelta(days=1)
        for doc_id, w, v, t, title, outlet, url, published in db.fetchall(
            _STORY_SQL, {"ids": ids, "since": since}
        ):
            order[doc_id] = len(stories)
            stories.append(
                {
                    "week": week_i[w],
                    "voice": voice_i[v],
                    "tone": float(t),
                    "title": title,
                    "outlet": outlet or "",
                    "url": render.safe_url(url),
                    "date": fmt.long_date(published),
                }
            )
    lists: dict[str, list[Any]] = {k: [] for k in ("week", "voice", "topic", "region", "worst", "best")}
    for w, v, tp, rg, worst, best in raw_lists:
        if v not in voice_i:
            continue
        lists["week"].append(week_i[w])
        lists["voice"].append(voice_i[v])
        lists["topic"].append(topic_i[tp])
        lists["region"].append(region_i[rg])
        lists["worst"].append([order[i] for i in worst or []])
        lists["best"].append([order[i] for i in best or []])
    return {
        "generated": fmt.date_time(now or datetime.now(UTC)),
        "synthetic": is_synthetic(settings),
        "min_n": settings.report.min_n,
        "default_weeks": settings.report.weeks,
        "weeks": weeks,
        "last_complete": last,
        "voices": [{"id": v, "label": fmt.voice_label(v)} for v in VOICES],
        "topics": [{"id": k, "label": t.label} for k, t in settings.topics.items()],
        "regions": [{"id": k, "label": t.label} for k, t in settings.regions.items()],
        "cells": cells,
        "story_weeks": story_weeks,
        "lists": lists,
        "stories": stories,
    }


def shares_block(db: Database, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """The corrected shares (weekly_shares) of the last report.weeks complete weeks: its own key ("shares")
    of the page's JSON, drawn by dashboard.js from the one parsed data block."""
    weeks = dates.weeks_ending(dates.last_complete_week(now), settings.report.weeks)
    rows = db.rows(
        "SELECT * FROM weekly_shares WHERE week IN (SELECT unnest(?)) ORDER BY week, voice", [weeks]
    )
    return {
        "weeks": weeks,
        "min_n": settings.report.min_n,
        "voices": [{"id": v, "label": fmt.voice_label(v)} for v in VOICES],
        "rows": [
            {
                "week": r["week"],
                "voice": r["voice"],
                "n": int(r["n"]),
                "share_negative": r["share_negative"],
                "share_negative_ci_low": r["share_negative_ci_low"],
                "share_negative_ci_high": r["share_negative_ci_high"],
                "share_positive": r["share_positive"],
                "share_positive_ci_low": r["share_positive_ci_low"],
                "share_positive_ci_high": r["share_positive_ci_high"],
                "misfit": bool(r["misfit"]),
            }
            for r in rows
        ],
        "labelled_n": max((int(r["labelled_n"]) for r in rows), default=0),
        "corrected": any(r["corrected"] for r in rows),
    }


def shares_note(block: dict[str, Any]) -> str:
    """The sentence under the dashboard's table of corrected shares (Norwegian)."""
    if not block["rows"]:
        return "Ingen korrigerte andeler er beregnet for disse ukene ennå."
    if not block["corrected"]:
        return (
            "Ikke korrigert ennå: ingen dokumenter med kjent tone å måle modellens feil på. Andelene er "
            "modellens egen telling; i parentes 95 %-intervallet for usikkerheten fra ukas antall saker."
        )
    return (
        f"Korrigert for hvor ofte modellen tar feil, målt på {fmt.number(block['labelled_n'])} dokumenter med "
        "kjent tone. I parentes: 95 %-intervall, som tar med både ukas antall saker og usikkerheten i "
        "modellens målte feil."
    )


def write_dashboard(settings: Settings, out_dir: Path | None = None, now: datetime | None = None) -> Path:
    """Write `<dashboard_dir>/index.html` (default report.dashboard_dir); returns its path."""
    folder = Path(out_dir) if out_dir is not None else settings.path(settings.report.dashboard_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(f"cannot create the dashboard folder {folder}: {e}") from e
    db = open_for_reading(settings.db_path, settings.snapshot_path)
    try:
        data = dashboard_data(db, settings, now)
        data["shares"] = shares_block(db, settings, now)  # the corrected shares (issue 15)
    finally:
        db.close()
    links = report_links(settings.path(settings.report.out_dir), folder.resolve())
    data["reports"] = [link.__dict__ for link in links]
    html = fmt.printable(
        render.environment()
        .get_template("dashboard.html")
        .render(
            data_json=Markup(json_for_script(data)),
            script=Markup(render.asset("dashboard.js")),
            css=Markup(render.asset("dashboard.css")),
            shares_note=shares_note(data["shares"]),
            synthetic=data["synthetic"],
            generated=data["generated"],
            reports=links,
        )
    )
    target = folder / "index.html"
    tmp = folder / ".index.html.tmp"
    try:
        tmp.write_text(html, encoding="utf-8")
        tmp.replace(target)
    except OSError as e:
        raise ReportError(f"cannot write the dashboard {target}: {e}") from e
    logger.info(
        "wrote the dashboard %s (%d cells, %d listed stories, %d reports)",
        target,
        len(data["cells"]["n"]),
        len(data["stories"]),
        len(links),
    )
    return target

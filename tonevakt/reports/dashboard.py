"""`tonevakt dashboard`: one static page (inline JS and data, no network, works from file://) listing every
weekly report, with trend charts filtered by voice, topic and region.

The page carries one row per story (from story_tone: copies once, human labels win) and computes a week's
tone exactly as weekly_tone does: the mean, and mean ± 1.96 · sample standard deviation / √n."""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup

from tonevakt.config import Settings
from tonevakt.errors import ReportError
from tonevakt.models import VOICES
from tonevakt.reports import fmt, render
from tonevakt.reports import weeks as wk
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


def dashboard_data(db: Database, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    rows = db.fetchall(
        """SELECT st.week, st.voice, st.tone, st.label, st.topics,
                  list_distinct(list_concat(coalesce(st.regions, []),
                                            CASE WHEN st.region IS NULL THEN [] ELSE [st.region] END)),
                  st.title, coalesce(st.outlet, s.name, st.source_id), st.url, st.published_at
           FROM story_tone st LEFT JOIN sources s ON s.id = st.source_id
           ORDER BY st.published_at, st.document_id"""
    )
    last = wk.last_complete_week(now)
    weeks_with_data = sorted({r[0] for r in rows})
    if weeks_with_data:
        first = weeks_with_data[0]
        end = max(last, weeks_with_data[-1])
        weeks = [first]
        while weeks[-1] < end and len(weeks) < 520:
            weeks.append(wk.shift(weeks[-1], 1))
    else:
        weeks = wk.weeks_ending(last, settings.report.weeks)
    stories = [
        {"w": r[0], "v": r[1], "t": round(float(r[2]), 6), "l": r[3], "tp": list(r[4] or []), "rg": list(r[5] or []),
         "title": r[6], "outlet": r[7] or "", "url": render.safe_url(r[8]), "d": fmt.long_date(r[9])}
        for r in rows
    ]  # fmt: skip
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
        "stories": stories,
    }


def shares_block(db: Database, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """The corrected shares (weekly_shares) of the last report.weeks complete weeks: the dashboard's own block,
    fed by its own key ("shares") of the page's JSON."""
    weeks = wk.weeks_ending(wk.last_complete_week(now), settings.report.weeks)
    rows = db.rows(
        "SELECT * FROM weekly_shares WHERE week IN (SELECT unnest(?)) ORDER BY week, voice", [weeks]
    )
    return {
        "weeks": weeks,
        "min_n": settings.report.min_n,
        "voices": [{"id": v, "label": fmt.voice_label(v)} for v in VOICES],
        "rows": [
            {"w": r["week"], "v": r["voice"], "n": int(r["n"]), "neg": r["share_negative"],
             "neg_lo": r["share_negative_ci_low"], "neg_hi": r["share_negative_ci_high"], "pos": r["share_positive"],
             "pos_lo": r["share_positive_ci_low"], "pos_hi": r["share_positive_ci_high"], "misfit": bool(r["misfit"])}
            for r in rows
        ],
        "labelled_n": max((int(r["labelled_n"]) for r in rows), default=0),
        "corrected": any(r["corrected"] for r in rows),
    }  # fmt: skip


def shares_note(block: dict[str, Any]) -> str:
    """The sentence under the dashboard's table of corrected shares (Norwegian)."""
    if not block["rows"]:
        return "Ingen korrigerte andeler er beregnet for disse ukene ennå."
    if not block["corrected"]:
        return ("Ikke korrigert ennå: ingen dokumenter med kjent tone å måle modellens feil på. Andelene er "
                "modellens egen telling; i parentes 95 %-intervallet for usikkerheten fra ukas antall saker.")  # fmt: skip
    return (f"Korrigert for hvor ofte modellen tar feil, målt på {fmt.number(block['labelled_n'])} dokumenter med "
            "kjent tone. I parentes: 95 %-intervall, som tar med både ukas antall saker og usikkerheten i "
            "modellens målte feil.")  # fmt: skip


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
        data["shares"] = shares_block(db, settings, now)  # the corrected shares' own block (issue 15)
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
            shares_script=Markup(render.asset("dashboard_shares.js")),
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
    logger.info("wrote the dashboard %s (%d stories, %d reports)", target, len(data["stories"]), len(links))
    return target

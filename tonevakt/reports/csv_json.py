"""The weekly report's CSV and JSON files (the week's figures and stories). CSV cells that a spreadsheet would run as a
formula are neutralised. ("Export" in Tonevakt means the Parquet files of `storage/snapshot.py`.)"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from tonevakt.reports import fmt
from tonevakt.reports.data import ReportData

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

FIGURE_COLUMNS = (
    "section",
    "week",
    "voice",
    "group",
    "n",
    "tone",
    "ci_low",
    "ci_high",
    "share_negative",
    "share_positive",
    "thin",
    "documents",
)
STORY_COLUMNS = (
    "section",
    "week",
    "voice",
    "document_id",
    "published_at",
    "outlet",
    "title",
    "url",
    "tone",
    "label",
    "human_label",
    "copies",
    "rating",
    "passage",
)


def neutralise(value: Any) -> Any:
    """A text cell loses its control characters (a NUL, ESC, …) and, starting with = + - @ (or tab/CR), gets a
    leading apostrophe: shown, never evaluated."""
    if isinstance(value, str):
        value = fmt.printable(value)
        if value.startswith(FORMULA_START):
            return "'" + value
    return value


def _iso(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    return v


def figure_rows(data: ReportData) -> list[dict[str, Any]]:
    """Every number the report shows, as long-format rows (one per section, week, voice and group)."""
    rows: list[dict[str, Any]] = []
    for voice, cells in data.series.items():
        for c in cells:
            if c is not None:
                rows.append(
                    {
                        "section": "weekly_tone",
                        "week": c.week,
                        "voice": voice,
                        "group": "",
                        "n": c.n,
                        "tone": c.tone,
                        "ci_low": c.ci_low,
                        "ci_high": c.ci_high,
                        "share_negative": c.share_negative,
                        "share_positive": c.share_positive,
                        "thin": c.thin,
                    }
                )
    for voice, vols in data.volume.items():
        for v in vols:
            if v is not None:
                rows.append(
                    {
                        "section": "weekly_volume",
                        "week": v.week,
                        "voice": voice,
                        "group": "",
                        "n": v.stories,
                        "documents": v.documents,
                    }
                )
    for section, groups in (("weekly_topic_tone", data.topics), ("weekly_region_tone", data.regions)):
        for g in groups:
            cells = ([("all", g.all)] if g.all else []) + list(g.voices.items())
            for voice, c in cells:
                rows.append(
                    {
                        "section": section,
                        "week": c.week,
                        "voice": voice,
                        "group": g.key,
                        "n": c.n,
                        "tone": c.tone,
                        "ci_low": c.ci_low,
                        "ci_high": c.ci_high,
                        "thin": c.thin,
                    }
                )
    for r in data.ratings:
        rows.append(
            {
                "section": "weekly_rating",
                "week": data.week,
                "voice": "patient",
                "group": r.source_id,
                "n": r.n,
                "tone": r.tone,
                "rating_mean": r.mean_rating,
            }
        )
    for voice, sh in data.shares.items():
        if sh is not None:
            rows.append(
                {
                    "section": "weekly_shares",
                    "week": sh.week,
                    "voice": voice,
                    "group": "",
                    "n": sh.n,
                    "tone": sh.tone,
                    "ci_low": sh.tone_low,
                    "ci_high": sh.tone_high,
                    "share_negative": sh.negative,
                    "share_negative_ci_low": sh.negative_low,
                    "share_negative_ci_high": sh.negative_high,
                    "share_positive": sh.positive,
                    "share_positive_ci_low": sh.positive_low,
                    "share_positive_ci_high": sh.positive_high,
                    "labelled_n": sh.labelled_n,
                    "corrected": sh.corrected,
                    "misfit": sh.misfit,
                    "thin": sh.thin,
                }
            )
    for voice, h in data.headline.items():
        if h.avg4 is not None:
            rows.append(
                {
                    "section": "four_week_average",
                    "week": data.week,
                    "voice": voice,
                    "group": "",
                    "n": h.avg4_n,
                    "tone": h.avg4,
                }
            )
    return rows


def story_rows(data: ReportData) -> list[dict[str, Any]]:
    out = []
    for section, stories in (
        ("most_negative", data.negative),
        ("most_positive", data.positive),
        ("union", data.union),
        ("patient_excerpt", data.excerpts),
    ):
        for s in stories:
            out.append(
                {
                    "section": section,
                    "week": data.week,
                    "voice": s.voice,
                    "document_id": s.document_id,
                    "published_at": s.published_at.isoformat(),
                    "outlet": s.outlet,
                    "title": s.title,
                    "url": s.url,
                    "tone": s.tone,
                    "label": s.label,
                    "human_label": s.human_label,
                    "copies": s.copies,
                    "rating": s.rating,
                    "passage": s.passage,
                }
            )
    return out


def write_csv(rows: list[dict[str, Any]], columns: tuple[str, ...], target: Path) -> Path:
    """UTF-8 with BOM (Excel reads æøå right), '.' decimals for analysts' tools, CRLF rows."""
    extra = sorted({k for r in rows for k in r} - set(columns))
    with open(target, "w", encoding="utf-8-sig", newline="") as f:
        # CRLF rows (RFC 4180): with a bare "\n" terminator the csv module leaves a lone "\r" inside a cell
        # unquoted, which a spreadsheet reads as a new row, whose first cell can then be a formula.
        w = csv.DictWriter(f, fieldnames=[*columns, *extra], lineterminator="\r\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: neutralise(_iso(v)) for k, v in r.items()})
    return target


def report_json(data: ReportData) -> dict[str, Any]:
    raw = asdict(data)
    raw["gap"] = data.gap
    raw["gap_previous"] = data.gap_previous
    for v, h in data.headline.items():
        raw["headline"][v]["change_previous"] = h.change_previous
        raw["headline"][v]["change_avg4"] = h.change_avg4
    return raw


def write_json(data: ReportData, target: Path) -> Path:
    target.write_text(
        json.dumps(report_json(data), ensure_ascii=False, indent=2, default=_iso) + "\n", encoding="utf-8"
    )
    return target

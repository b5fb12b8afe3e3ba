"""HTML (Jinja2, autoescaped, self-contained) and PDF (WeasyPrint, no network) from ReportData."""

from __future__ import annotations

import logging
from datetime import datetime
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from markupsafe import Markup

from tonevakt import dates
from tonevakt.errors import ReportError
from tonevakt.models import VOICES
from tonevakt.reports import charts, fmt
from tonevakt.reports.data import ReportData

logger = logging.getLogger(__name__)


def safe_url(url: str | None) -> str | None:
    """Only http(s) links are shown as links: a 'javascript:' URL from a feed must not become one."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def asset(name: str) -> str:
    return (resources.files("tonevakt.reports") / "templates" / name).read_text(encoding="utf-8")


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("tonevakt.reports", "templates"),
        autoescape=True,  # every template, whatever its suffix: titles and excerpts are untrusted
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        num=fmt.number,
        tone=fmt.tone,
        change=fmt.change,
        pct=fmt.percent,
        long_date=fmt.long_date,
        short_date=fmt.short_date,
        date_time=fmt.date_time,
        week_label=fmt.week_label,
        voice=fmt.voice_label,
        safe_url=safe_url,
    )
    env.globals.update(
        week_span=week_span,
        fmt=fmt,
        VOICES=VOICES,
        interval=fmt.interval,
        plural=fmt.plural,
        pct_interval=fmt.percent_interval,
    )
    return env


def week_span(weeks: list[str]) -> str:
    """['2026-W43', …, '2026-W46'] → 'uke 43–46' (with the years when they differ)."""
    first, last = weeks[0], weeks[-1]
    if first[:4] == last[:4]:
        return f"uke {int(first[6:])}–{int(last[6:])}"
    return f"{fmt.week_label_year(first)} – {fmt.week_label_year(last)}"


def report_context(data: ReportData) -> dict[str, Any]:
    return {
        "d": data,
        "css": Markup(asset("report.css")),  # our own file, not user input
        "tone_svg": Markup(charts.tone_chart(data.weeks, data.series)),
        "volume_svg": Markup(charts.volume_chart(data.weeks, data.volume)),
        "legend": Markup(charts.legend(list(data.series))),
        "monday": dates.week_monday(data.week),
        "sunday": dates.week_sunday(data.week),
        "previous_week": dates.shift_week(data.week, -1),
        "four_weeks": data.four_weeks,
        "baseline": data.baseline,
    }


def render_html(data: ReportData) -> str:
    try:
        return fmt.printable(environment().get_template("report.html").render(**report_context(data)))
    except jinja2.TemplateError as e:
        raise ReportError(f"cannot render the report for {data.week}: {e}") from e


def _no_fetch(url: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """WeasyPrint's URL fetcher: the report is self-contained, so nothing is ever fetched."""
    raise ValueError(f"the report fetches nothing (refused {url[:80]!r})")


def write_pdf(html: str, target: Path, generated_at: datetime | None = None) -> Path:
    """Render the report's HTML to PDF with WeasyPrint (fonts from the system, no network)."""
    try:
        import weasyprint
    except (ImportError, OSError) as e:
        raise ReportError(f"WeasyPrint is not usable here (PDF): {e}") from e
    try:
        doc = weasyprint.HTML(string=html, url_fetcher=_no_fetch, base_url=str(target.parent))
        doc.write_pdf(str(target))
    except Exception as e:  # WeasyPrint raises many kinds; the reason is kept
        raise ReportError(f"cannot write the PDF {target}: {e}") from e
    return target

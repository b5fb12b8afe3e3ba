"""Writing a week's report folder (HTML, PDF, CSV, JSON) and the weekly run that e-mails it once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tonevakt import dates
from tonevakt.config import Settings
from tonevakt.errors import ReportError
from tonevakt.reports import csv_json, fmt, mail, render
from tonevakt.reports.data import ReportData, gather
from tonevakt.storage.db import database, open_for_reading

logger = logging.getLogger(__name__)


@dataclass
class ReportPaths:
    week: str
    folder: Path
    html: Path
    pdf: Path | None
    figures_csv: Path
    stories_csv: Path
    json: Path
    sent_to: list[str] | None = None  # recipients, when this call e-mailed the report

    def files(self) -> list[Path]:
        return [
            p for p in (self.html, self.pdf, self.figures_csv, self.stories_csv, self.json) if p is not None
        ]


def read_data(settings: Settings, week: str | None = None, now: datetime | None = None) -> ReportData:
    """Gather the week's figures (default: the last complete ISO week in Europe/Oslo), reading only."""
    week = week or dates.last_complete_week(now)
    dates.parse_week(week)  # the one check of the week: a clear error before the database is opened
    db = open_for_reading(settings.db_path, settings.snapshot_path)
    try:
        return gather(db, settings, week, now=now)
    finally:
        db.close()


def write_report(
    settings: Settings,
    week: str | None = None,
    out_dir: Path | None = None,
    now: datetime | None = None,
    pdf: bool | None = None,
) -> ReportPaths:
    """Write `<out_dir>/<week>/`: tonevakt-<week>.html, .pdf, -tall.csv, -saker.csv and .json."""
    data = read_data(settings, week, now)
    base = Path(out_dir) if out_dir is not None else settings.path(settings.report.out_dir)
    folder = base / data.week
    html = render.render_html(data)  # before the folder exists: a failure here leaves nothing behind
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(f"cannot create the report folder {folder}: {e}") from e
    stem = f"tonevakt-{data.week}"
    paths = ReportPaths(
        week=data.week,
        folder=folder,
        html=folder / f"{stem}.html",
        pdf=None,
        figures_csv=folder / f"{stem}-tall.csv",
        stories_csv=folder / f"{stem}-saker.csv",
        json=folder / f"{stem}.json",
    )
    # Every file is written under a temporary name first and renamed in only when all of them are whole: a
    # full disk leaves the week's earlier files as they were, and no empty week folder behind.
    writers: list[tuple[Path, Callable[[Path], object]]] = [
        (paths.html, lambda t: t.write_text(html, encoding="utf-8")),
        (
            paths.figures_csv,
            lambda t: csv_json.write_csv(csv_json.figure_rows(data), csv_json.FIGURE_COLUMNS, t),
        ),
        (
            paths.stories_csv,
            lambda t: csv_json.write_csv(csv_json.story_rows(data), csv_json.STORY_COLUMNS, t),
        ),
        (paths.json, lambda t: csv_json.write_json(data, t)),
    ]
    staged: list[tuple[Path, Path]] = []
    try:
        for target, write in writers:
            staged.append((_temporary(target), target))
            write(staged[-1][0])
        for tmp, target in staged:
            tmp.replace(target)
    except OSError as e:
        _discard([tmp for tmp, _ in staged], folder if created else None)
        raise ReportError(
            f"cannot write the report into {folder}: {e} (nothing of this report was written)"
        ) from e
    if settings.report.pdf if pdf is None else pdf:
        tmp = _temporary(folder / f"{stem}.pdf")
        try:
            render.write_pdf(html, tmp)
            paths.pdf = tmp.replace(folder / f"{stem}.pdf")
        except (OSError, ReportError) as e:
            _discard([tmp], None)
            if isinstance(e, ReportError):
                raise
            raise ReportError(f"cannot write the PDF into {folder}: {e}") from e
    logger.info("wrote the report for %s into %s", data.week, folder)
    return paths


def _temporary(target: Path) -> Path:
    return target.with_name(f".{target.name}.tmp")


def _discard(files: list[Path], folder: Path | None) -> None:
    """Remove what a failed write left: its temporary files, and the week folder when this call created it."""
    for f in files:
        try:
            f.unlink(missing_ok=True)
        except OSError:
            logger.warning("could not remove the temporary file %s", f)
    if folder is not None:
        try:
            folder.rmdir()  # only if empty: nothing but ours is ever removed
        except OSError:
            logger.warning("could not remove the report folder %s after a failed write", folder)


def summary_text(data: ReportData) -> str:
    """The plain-text part of the e-mail: the headline in a few lines."""
    lines = [f"Tonevakt – ukerapport {fmt.week_label_year(data.week)}", ""]
    if data.synthetic:
        lines += ["SYNTETISKE DEMODATA – ikke virkelige hendelser.", ""]
    for v in ("media", "patient", "union", "official"):
        c = data.headline[v].now
        if c is None:
            lines.append(f"{fmt.voice_label(v)}: ingen saker")
        else:
            lines.append(
                f"{fmt.voice_label(v)}: tone {fmt.tone(c.tone)} (95 % {fmt.interval(c.ci_low, c.ci_high)}, "
                f"n = {c.n}), endring fra forrige uke {fmt.change(data.headline[v].change_previous)}"
            )
    if data.gap is not None:
        lines.append(f"Avstand medier minus pasienter: {fmt.change(data.gap)}")
    lines.append(f"Varsler: {len(data.alerts)}")
    lines += ["", "Hele rapporten ligger ved som PDF."]
    return "\n".join(lines) + "\n"


def write_weekly(settings: Settings, week: str | None = None, now: datetime | None = None) -> ReportPaths:
    """The Monday job: write the report folder, record it, and e-mail it once when report.smtp is set.

    The `reports` table holds ('<week>', 'written') and ('<week>', 'sent'): a week already sent is never
    sent again, even if the job runs twice."""
    paths = write_report(settings, week, now=now)
    done = datetime.now(UTC)
    with database(settings.db_path, settings.database.lock_timeout_s) as db:
        db.execute(
            "INSERT OR REPLACE INTO reports VALUES (?, 'written', ?, NULL, ?)",
            [paths.week, str(paths.folder), done],
        )
        already = db.scalar("SELECT count(*) FROM reports WHERE week = ? AND kind = 'sent'", [paths.week])
    smtp = settings.report.smtp
    if smtp is None:
        return paths
    if already:
        logger.info("the report for %s was e-mailed before; not sending it again", paths.week)
        return paths
    data = read_data(settings, paths.week, now)
    subject = f"Tonevakt: ukerapport {fmt.week_label_year(paths.week)}"
    if data.synthetic:
        subject += " (syntetiske demodata)"
    msg = mail.build_message(
        smtp, subject, paths.html.read_text(encoding="utf-8"), summary_text(data), paths.pdf
    )
    mail.send(smtp, msg)
    with database(settings.db_path, settings.database.lock_timeout_s) as db:
        db.execute(
            "INSERT OR REPLACE INTO reports VALUES (?, 'sent', ?, ?, ?)",
            [paths.week, str(paths.folder), ", ".join(smtp.recipients), datetime.now(UTC)],
        )
    paths.sent_to = list(smtp.recipients)
    return paths

"""`tonevakt trend`: tone per voice over the last weeks as a terminal table with sparklines."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich.table import Table
from rich.text import Text

from tonevakt import dates
from tonevakt.dates import MAX_WEEKS  # ten years: a longer window is no trend line a terminal can show
from tonevakt.errors import ReportError
from tonevakt.models import VOICES
from tonevakt.reports.data import ToneCell, tone_cell
from tonevakt.storage.db import Database

BLOCKS = "▁▂▃▄▅▆▇█"
GAP = "·"


@dataclass
class TrendRow:
    voice: str
    cells: list[ToneCell | None]  # one per week, oldest first

    @property
    def last(self) -> ToneCell | None:
        return self.cells[-1]

    @property
    def change(self) -> float | None:
        """Week-over-week change of the last week (None when either week has no stories)."""
        if len(self.cells) < 2 or self.cells[-1] is None or self.cells[-2] is None:
            return None
        return self.cells[-1].tone - self.cells[-2].tone


def sparkline(cells: Sequence[ToneCell | None]) -> str:
    """One block per week on the fixed tone scale −1…+1 (so voices compare); '·' for a week without stories."""
    out = []
    for c in cells:
        if c is None:
            out.append(GAP)
        else:
            out.append(BLOCKS[min(len(BLOCKS) - 1, max(0, round((c.tone + 1) / 2 * (len(BLOCKS) - 1))))])
    return "".join(out)


def trend_rows(
    db: Database, until: str, weeks: int, voices: Sequence[str] = (), topic: str | None = None, min_n: int = 5
) -> list[TrendRow]:
    """Rows from weekly_tone, or from weekly_topic_tone when a topic is given."""
    if not 2 <= weeks <= MAX_WEEKS:
        raise ReportError(f"--weeks must be from 2 to {MAX_WEEKS} (ten years), not {weeks}")
    unknown = [v for v in voices if v not in VOICES]
    if unknown:
        raise ReportError(f"unknown voice {unknown[0]!r}: choose from {', '.join(VOICES)}")
    window = dates.weeks_ending(until, weeks)
    if topic:
        known = {r[0] for r in db.fetchall("SELECT DISTINCT topic FROM weekly_topic_tone")}
        if topic not in known:
            raise ReportError(
                f"no stories with topic {topic!r} (topics with stories: {', '.join(sorted(known)) or 'none'})"
            )
        rows = db.rows(
            "SELECT * FROM weekly_topic_tone WHERE topic = ? AND voice <> 'all' AND list_contains(?, week)",
            [topic, window],
        )
    else:
        rows = db.rows("SELECT * FROM weekly_tone WHERE list_contains(?, week)", [window])
    cells = {(r["week"], r["voice"]): tone_cell(r, min_n) for r in rows}
    return [TrendRow(v, [cells.get((w, v)) for w in window]) for v in (voices or VOICES)]


def _num(v: float | None, sign: bool = False) -> str:
    if v is None:
        return "–"
    if round(v, 2) == 0:
        v = 0.0  # no '-0.00'
    return f"{v:+.2f}" if sign else f"{v:.2f}"


def trend_table(
    rows: Sequence[TrendRow], window: Sequence[str], topic: str | None = None, min_n: int = 5
) -> Table:
    """A rich Table: voice, sparkline, last week's tone with its interval and n, change from the week before."""
    title = f"Tone {window[0]} … {window[-1]}" + (f", topic {topic}" if topic else "")
    t = Table(title=title, caption=f"tone −1…+1; · = no stories; * = thin week (n < {min_n})")
    for col, just in (
        ("voice", "left"),
        ("trend", "left"),
        ("week", "left"),
        ("tone", "right"),
        ("95% CI", "right"),
        ("n", "right"),
        ("change", "right"),
    ):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for r in rows:
        last = r.last
        ci = f"{_num(last.ci_low)} … {_num(last.ci_high)}" if last and last.ci_low is not None else "–"
        n = (str(last.n) + ("*" if last.thin else "")) if last else "0"
        change = r.change
        style = (
            "red"
            if change is not None and change < 0
            else "green"
            if change is not None and change > 0
            else ""
        )
        t.add_row(
            r.voice,
            sparkline(r.cells),
            window[-1],
            _num(last.tone) if last else "–",
            ci,
            n,
            Text(_num(change, sign=True), style=style),
        )
    return t

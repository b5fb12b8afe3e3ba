"""Inline SVG charts for the report (no scripts, no external requests): tone with 95 % bands, and volume."""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from tonevakt.reports import fmt
from tonevakt.reports.data import ToneCell, Volume

VOICE_COLORS = {"media": "#1f5fa8", "union": "#b5402a", "patient": "#2a7d4f", "official": "#7a5aa6"}
FONT = "DejaVu Sans, Verdana, sans-serif"


def _axis_range(series: dict[str, list[ToneCell | None]]) -> float:
    """A symmetric y-range that holds every interval: 0.5, 0.75 or 1.0."""
    top = 0.0
    for cells in series.values():
        for c in cells:
            if c is not None:
                top = max(top, abs(c.tone), abs(c.ci_low or 0), abs(c.ci_high or 0))
    for r in (0.5, 0.75, 1.0):
        if top <= r:
            return r
    return 1.0


def tone_chart(
    weeks: Sequence[str], series: dict[str, list[ToneCell | None]], width: int = 720, height: int = 300
) -> str:
    """Lines per voice with their 95 % interval as a band; thin weeks drawn as hollow points."""
    left, right, top, bottom = 52, 12, 14, 44
    pw, ph = width - left - right, height - top - bottom
    r = _axis_range(series)
    step = pw / max(len(weeks) - 1, 1)

    def x(i: int) -> float:
        return left + i * step

    def y(v: float) -> float:
        v = max(-r, min(r, v))
        return top + (r - v) / (2 * r) * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="Tone per uke og stemme" font-family="{FONT}" font-size="11">'
    ]
    ticks = [i * r / 2 for i in range(-2, 3)]
    for t in ticks:
        yy = y(t)
        dash = "" if t == 0 else ' stroke-dasharray="3,3"'
        color = "#888" if t == 0 else "#ddd"
        out.append(
            f'<line x1="{left}" y1="{yy:.1f}" x2="{width - right}" y2="{yy:.1f}" stroke="{color}"{dash}/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{yy + 4:.1f}" text-anchor="end" fill="#555">{fmt.tone(t)}</text>'
        )
    for i, w in enumerate(weeks):
        out.append(
            f'<text x="{x(i):.1f}" y="{height - bottom + 16}" text-anchor="middle" fill="#555">'
            f"{int(w.split('-W')[1])}</text>"
        )
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle" fill="#555">uke</text>')
    for voice, cells in series.items():
        color = VOICE_COLORS.get(voice, "#444")
        # bands: one polygon per run of weeks with an interval
        run: list[tuple[int, ToneCell]] = []
        runs = []
        for i, c in enumerate(cells):
            if c is not None and c.ci_low is not None and c.ci_high is not None:
                run.append((i, c))
            elif run:
                runs.append(run)
                run = []
        if run:
            runs.append(run)
        for run in runs:
            if len(run) == 1:
                i, c = run[0]
                out.append(
                    f'<rect x="{x(i) - 4:.1f}" y="{y(c.ci_high):.1f}" width="8" '  # type: ignore[arg-type]
                    f'height="{max(y(c.ci_low) - y(c.ci_high), 1):.1f}" fill="{color}" fill-opacity="0.15"/>'
                )  # type: ignore[arg-type]
                continue
            upper = " ".join(f"{x(i):.1f},{y(c.ci_high):.1f}" for i, c in run)  # type: ignore[arg-type]
            lower = " ".join(f"{x(i):.1f},{y(c.ci_low):.1f}" for i, c in reversed(run))  # type: ignore[arg-type]
            out.append(
                f'<polygon points="{upper} {lower}" fill="{color}" fill-opacity="0.13" stroke="none"/>'
            )
        # line segments between consecutive weeks with data
        seg: list[str] = []
        for i, c in enumerate(cells):
            if c is None:
                if len(seg) > 1:
                    out.append(
                        f'<polyline points="{" ".join(seg)}" fill="none" stroke="{color}" stroke-width="2"/>'
                    )
                seg = []
                continue
            seg.append(f"{x(i):.1f},{y(c.tone):.1f}")
        if len(seg) > 1:
            out.append(f'<polyline points="{" ".join(seg)}" fill="none" stroke="{color}" stroke-width="2"/>')
        for i, c in enumerate(cells):
            if c is None:
                continue
            fill = "#fff" if c.thin else color
            title = escape(
                f"{fmt.voice_label(voice)} {fmt.week_label(c.week)}: {fmt.tone(c.tone)} (n = {c.n})"
            )
            out.append(
                f'<circle cx="{x(i):.1f}" cy="{y(c.tone):.1f}" r="3.5" fill="{fill}" stroke="{color}" '
                f'stroke-width="1.5"><title>{title}</title></circle>'
            )
    out.append("</svg>")
    return "".join(out)


def volume_chart(
    weeks: Sequence[str], volume: dict[str, list[Volume | None]], width: int = 720, height: int = 240
) -> str:
    """Grouped bars: stories per voice and week (syndicated copies counted once)."""
    left, right, top, bottom = 44, 12, 14, 44
    pw, ph = width - left - right, height - top - bottom
    top_n = max([v.stories for vs in volume.values() for v in vs if v is not None] or [1])
    nice = _nice_max(top_n)
    group = pw / max(len(weeks), 1)
    voices = list(volume)
    bar = max((group - 6) / max(len(voices), 1), 1)

    def y(v: float) -> float:
        return top + ph - v / nice * ph

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="Antall saker per uke og stemme" font-family="{FONT}" font-size="11">'
    ]
    for k in range(5):
        v = nice * k / 4
        out.append(
            f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" stroke="#e3e3e3"/>'
        )
        out.append(
            f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end" fill="#555">{fmt.number(v)}</text>'
        )
    for i, w in enumerate(weeks):
        gx = left + i * group + 3
        for j, voice in enumerate(voices):
            v = volume[voice][i]
            if v is None or v.stories == 0:
                continue
            title = escape(
                f"{fmt.voice_label(voice)} {fmt.week_label(w)}: {v.stories} saker, {v.documents} dokumenter"
            )
            out.append(
                f'<rect x="{gx + j * bar:.1f}" y="{y(v.stories):.1f}" width="{bar - 1:.1f}" '
                f'height="{ph + top - y(v.stories):.1f}" fill="{VOICE_COLORS.get(voice, "#444")}">'
                f"<title>{title}</title></rect>"
            )
        out.append(
            f'<text x="{gx + group / 2 - 3:.1f}" y="{height - bottom + 16}" text-anchor="middle" '
            f'fill="#555">{int(w.split("-W")[1])}</text>'
        )
    out.append(f'<text x="{left + pw / 2:.1f}" y="{height - 6}" text-anchor="middle" fill="#555">uke</text>')
    out.append("</svg>")
    return "".join(out)


def _nice_max(v: float) -> float:
    if v <= 4:
        return 4
    mag = 10 ** math.floor(math.log10(v))
    for m in (1, 2, 2.5, 5, 10):
        if v <= m * mag:
            return m * mag
    return 10 * mag


def legend(voices: Sequence[str]) -> str:
    """A small HTML legend (colour swatch + Norwegian voice name)."""
    items = "".join(
        f'<span class="legend-item"><span class="swatch" style="background:{VOICE_COLORS.get(v, "#444")}"></span>'
        f"{escape(fmt.voice_label(v))}</span>"
        for v in voices
    )
    return f'<div class="legend">{items}</div>'

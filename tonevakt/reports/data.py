"""Gathering one week's figures through storage into typed records. Reports never score: every tone here is
a row of `weekly_tone` or of the views in migration 0003 (or, for single stories, of `story_tone`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tonevakt import dates
from tonevakt.config import Settings
from tonevakt.models import VOICES
from tonevakt.stats import Correlation, spearman
from tonevakt.storage import share_store
from tonevakt.storage.db import Database
from tonevakt.storage.kept_tone import active_model

logger = logging.getLogger(__name__)

SYNTHETIC_PREFIX = "syntetisk-"  # the demo's sources: every report and dashboard says the data is synthetic
EXCERPT_CHARS = 240
AVG_WEEKS = 4  # the headline's "4-ukerssnitt": tone pooled over the weeks before


def weeks_before(week: str, count: int) -> list[str]:
    """The `count` weeks before `week` (not including it), oldest first: the 4-week average's and the alert
    baseline's windows."""
    return dates.weeks_ending(dates.shift_week(week, -1), count)


@dataclass
class ToneCell:
    """One row of weekly_tone (or of a per-topic/per-region view)."""

    week: str
    voice: str
    n: int
    tone: float
    ci_low: float | None
    ci_high: float | None
    share_negative: float | None = None
    share_positive: float | None = None
    thin: bool = False


@dataclass
class Headline:
    voice: str
    now: ToneCell | None
    previous: ToneCell | None
    avg4: float | None  # pooled over the 4 weeks before: sum(n*tone)/sum(n)
    avg4_n: int

    @property
    def change_previous(self) -> float | None:
        return None if self.now is None or self.previous is None else self.now.tone - self.previous.tone

    @property
    def change_avg4(self) -> float | None:
        return None if self.now is None or self.avg4 is None else self.now.tone - self.avg4


@dataclass
class Story:
    document_id: str
    voice: str
    title: str
    outlet: str
    url: str | None
    published_at: datetime
    tone: float
    label: str
    passage: str
    human_label: bool = False
    paywalled: bool = False
    copies: int = 1
    rating: int | None = None


@dataclass
class Volume:
    week: str
    voice: str
    stories: int
    documents: int


@dataclass
class GroupRow:
    """Tone and volume of one topic or region this week: pooled ('all') and per voice."""

    key: str
    label: str
    all: ToneCell | None
    voices: dict[str, ToneCell] = field(default_factory=dict)


@dataclass
class Rating:
    source_id: str
    source_name: str
    source_kind: str | None
    n: int
    mean_rating: float
    tone: float


@dataclass
class Alert:
    kind: str  # 'volume' | 'tone'
    voice: str
    value: float
    baseline: float
    n: int


@dataclass
class SourceProblem:
    id: str
    name: str
    voice: str
    status: str | None
    failing_since: datetime | None
    consecutive_failures: int
    last_error: str | None
    last_success_at: datetime | None


@dataclass
class Share:
    """One row of weekly_shares: a voice's shares this week, corrected for the model's known errors."""

    week: str
    voice: str
    n: int
    negative: float
    negative_low: float
    negative_high: float
    positive: float
    positive_low: float
    positive_high: float
    tone: float
    tone_low: float
    tone_high: float
    counted_negative: float  # counting the labels, as weekly_tone.share_negative
    counted_positive: float
    labelled_n: int
    corrected: bool
    misfit: bool = False  # the week's model labels contradict the measured confusion
    thin: bool = False


@dataclass
class LabelWeek:
    """Human labels given in one week (weekly_labels) and the active model's agreement with them."""

    week: str
    labelled: int
    compared: int
    agreement: float | None


@dataclass
class Method:
    model_id: str | None
    model_description: str | None
    backend: str | None
    dev_macro_f1: float | None
    dev_set: str | None  # the data set of dev_macro_f1 (`nlp/sentiment/base.NOREC_DEV` / `INDOMAIN_DEV`)
    labels_total: int
    labels_week: int
    # The human labels of documents the active model scored (share_store.human_confusion): its agreement.
    agreement: float | None  # human_agreed / human_n; None without such labels
    agreement_n: int  # = human_n (kept in the report's JSON)
    paywalled_week: int
    documents_week: int
    # The correction of the shares (issue 15): the labelled documents it rests on and the model's agreement.
    labelled_n: int = 0  # labelled documents behind the correction (in-domain set + human labels here)
    labelled_agreed: int = 0  # of which the model labelled as the truth
    indomain_n: int = 0  # from the model's own in-domain evaluation
    indomain_source: str = ""
    human_n: int = 0  # human labels here paired with the model's label
    human_agreed: int = 0  # of which the model gave the human's label
    stars: Correlation | None = (
        None  # Spearman: App Store stars against the model's tone, over the chart window
    )


@dataclass
class ReportData:
    week: str
    weeks: list[str]  # the chart window, oldest first, ending with `week`
    generated_at: datetime
    min_n: int
    baseline_weeks: int
    spike_factor: float
    tone_drop: float
    synthetic: bool
    series: dict[str, list[ToneCell | None]]
    volume: dict[str, list[Volume | None]]
    headline: dict[str, Headline]
    negative: list[Story]
    positive: list[Story]
    union: list[Story]
    patient_n: int
    patient_documents: int
    ratings: list[Rating]
    excerpts: list[Story]
    topics: list[GroupRow]
    regions: list[GroupRow]
    alerts: list[Alert]
    failing: list[SourceProblem]
    never_fetched: list[str]
    sources_enabled: int
    method: Method
    shares: dict[str, Share | None] = field(default_factory=dict)  # this week, per voice (weekly_shares)
    label_weeks: list[LabelWeek] = field(default_factory=list)  # the last 12 weeks, oldest first

    @property
    def four_weeks(self) -> list[str]:
        """The weeks the headline's 4-week average pools."""
        return weeks_before(self.week, AVG_WEEKS)

    @property
    def baseline(self) -> list[str]:
        """The weeks the alerts compare with (report.baseline_weeks of them)."""
        return weeks_before(self.week, self.baseline_weeks)

    @property
    def gap(self) -> float | None:
        """Media tone minus patient tone this week."""
        m, p = self.headline["media"].now, self.headline["patient"].now
        return None if m is None or p is None else m.tone - p.tone

    @property
    def gap_previous(self) -> float | None:
        m, p = self.headline["media"].previous, self.headline["patient"].previous
        return None if m is None or p is None else m.tone - p.tone


def tone_cell(r: dict[str, Any], min_n: int) -> ToneCell:
    """A row of weekly_tone (or of a per-topic/per-region view) as a ToneCell; thin below `min_n` stories."""
    return ToneCell(
        week=r["week"],
        voice=r["voice"],
        n=int(r["n"]),
        tone=float(r["tone"]),
        ci_low=r["ci_low"],
        ci_high=r["ci_high"],
        share_negative=r.get("share_negative"),
        share_positive=r.get("share_positive"),
        thin=int(r["n"]) < min_n,
    )


def is_synthetic(settings: Settings) -> bool:
    """The demo configuration: every source id starts with 'syntetisk-'."""
    return bool(settings.sources) and all(s.id.startswith(SYNTHETIC_PREFIX) for s in settings.sources)


def _excerpt(text: str | None, limit: int = EXCERPT_CHARS) -> str:
    text = " ".join((text or "").split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0]
    return cut + " …"


# A week's stories are chosen on the kept story tone (storage/kept_tone.py: first copies only, as story_tone); only
# the few chosen are then read with their text, by id (an index lookup, not a join over the archive).
_TOP_SQL = """
    SELECT st.document_id, st.voice, st.published_at, st.tone, st.label, st.human_label, st.paywalled, st.rating,
           st.copies
    FROM document_tone_kept st
    WHERE st.first_copy AND st.week = ? AND st.voice = ? {where} ORDER BY {order} LIMIT {limit}
"""
_DETAIL_SQL = """
    SELECT d.id, d.title,
           CASE WHEN d.voice = 'patient' THEN coalesce(nullif(s.name, ''), d.outlet, d.source_id)
                ELSE coalesce(d.outlet, s.name, d.source_id) END AS outlet, d.url,
           coalesce(sc.passage, d.lead, d.text) AS passage
    FROM (SELECT * FROM documents WHERE id IN ({marks})) d
    LEFT JOIN (SELECT document_id, passage FROM scores
               WHERE document_id IN ({marks}) AND model = ?) sc
           ON sc.document_id = d.id
    LEFT JOIN sources s ON s.id = d.source_id
"""


def _stories(db: Database, week: str, voice: str, order: str, limit: int, where: str = "") -> list[Story]:
    top = db.rows(_TOP_SQL.format(where=where, order=order, limit=int(limit)), [week, voice])
    if not top:
        return []
    ids = [r["document_id"] for r in top]
    marks = ", ".join("?" * len(ids))
    # the active model as a constant: a subquery there would turn the index lookup into a scan
    detail = {r["id"]: r for r in db.rows(_DETAIL_SQL.format(marks=marks), [*ids, *ids, active_model(db)])}
    return [
        Story(
            document_id=r["document_id"],
            voice=r["voice"],
            title=detail[r["document_id"]]["title"],
            outlet=detail[r["document_id"]]["outlet"] or "",
            url=detail[r["document_id"]]["url"],
            published_at=r["published_at"],
            tone=float(r["tone"]),
            label=r["label"],
            passage=_excerpt(detail[r["document_id"]]["passage"]),
            human_label=bool(r["human_label"]),
            paywalled=bool(r["paywalled"]),
            copies=int(r["copies"]),
            rating=r["rating"],
        )
        for r in top
    ]


def _groups(
    db: Database, view: str, key: str, week: str, labels: dict[str, str], min_n: int
) -> list[GroupRow]:
    rows = db.rows(f"SELECT * FROM {view} WHERE week = ? ORDER BY {key}, voice", [week])
    out: dict[str, GroupRow] = {}
    for r in rows:
        k = r[key]
        g = out.setdefault(k, GroupRow(key=k, label=labels.get(k, k), all=None))
        cell = tone_cell(r, min_n)
        if r["voice"] == "all":
            g.all = cell
        else:
            g.voices[r["voice"]] = cell
    order = list(labels)
    return sorted(out.values(), key=lambda g: (order.index(g.key) if g.key in order else len(order), g.key))


def _pooled(db: Database, voice: str, weeks: list[str]) -> tuple[float | None, int]:
    """Tone pooled over weeks (every story weighs the same): sum(n*tone)/sum(n), and sum(n)."""
    row = db.fetchone(
        "SELECT sum(n * tone) / sum(n), coalesce(sum(n), 0) FROM weekly_tone WHERE voice = ? AND list_contains(?, week)",
        [voice, weeks],
    )
    return (row[0], int(row[1])) if row else (None, 0)


def _alerts(db: Database, data_week: str, settings: Settings, cells: dict[str, ToneCell]) -> list[Alert]:
    cfg = settings.report
    base_weeks = weeks_before(data_week, cfg.baseline_weeks)
    alerts = []
    for voice in VOICES:
        cell = cells.get(voice)
        n = cell.n if cell else 0
        total = db.scalar(
            "SELECT coalesce(sum(n), 0) FROM weekly_tone WHERE voice = ? AND list_contains(?, week)",
            [voice, base_weeks],
        )
        mean_n = float(total) / cfg.baseline_weeks
        if n >= cfg.min_n and n >= cfg.spike_factor * mean_n:
            alerts.append(Alert("volume", voice, float(n), mean_n, n))
        base_tone, base_n = _pooled(db, voice, base_weeks)
        thin = n < cfg.min_n or base_n < cfg.min_n
        if cell and not thin and base_tone is not None and cell.tone <= base_tone - cfg.tone_drop:
            alerts.append(Alert("tone", voice, cell.tone, base_tone, n))
    return alerts


LABEL_WEEKS = 12  # weeks of labelling activity the report shows


def _shares(db: Database, week: str, min_n: int) -> dict[str, Share | None]:
    rows = {r["voice"]: r for r in db.rows("SELECT * FROM weekly_shares WHERE week = ?", [week])}
    out: dict[str, Share | None] = {}
    for v in VOICES:
        r = rows.get(v)
        out[v] = (
            None
            if r is None
            else Share(
                week=week,
                voice=v,
                n=int(r["n"]),
                negative=r["share_negative"],
                negative_low=r["share_negative_ci_low"],
                negative_high=r["share_negative_ci_high"],
                positive=r["share_positive"],
                positive_low=r["share_positive_ci_low"],
                positive_high=r["share_positive_ci_high"],
                tone=r["tone"],
                tone_low=r["tone_ci_low"],
                tone_high=r["tone_ci_high"],
                counted_negative=r["counted_negative"],
                counted_positive=r["counted_positive"],
                labelled_n=int(r["labelled_n"]),
                corrected=bool(r["corrected"]),
                misfit=bool(r["misfit"]),
                thin=int(r["n"]) < min_n,
            )
        )
    return out


def _label_weeks(db: Database, week: str) -> list[LabelWeek]:
    window = dates.weeks_ending(week, LABEL_WEEKS)
    rows = {
        r["week"]: r
        for r in db.rows("SELECT * FROM weekly_labels WHERE week IN (SELECT unnest(?))", [window])
    }
    return [
        LabelWeek(w, int(rows[w]["labelled"]), int(rows[w]["compared"]), rows[w]["agreement"])
        if w in rows
        else LabelWeek(w, 0, 0, None)
        for w in window
    ]


def _method(db: Database, week: str, window: list[str]) -> Method:
    model = db.rows("SELECT * FROM models WHERE active LIMIT 1")
    m = model[0] if model else {}
    model_id = m.get("id")
    base = share_store.load_confusion(db, model_id) if model_id else None
    human = share_store.human_confusion(db, model_id) if model_id else None
    behind = [c for c in (base, human) if c is not None and c.n]
    rated = share_store.rated_tones(db, model_id, window) if model_id else None
    stars = spearman(rated.stars, rated.tones) if rated and rated.stars else None
    # story_tone's rows of the week, counted on the kept table (storage/kept_tone.py) without reading the documents
    week_counts = db.fetchone(
        """SELECT count(*), count(*) FILTER (WHERE human_label), count(*) FILTER (WHERE paywalled)
           FROM document_tone_kept WHERE first_copy AND week = ?""",
        [week],
    ) or (0, 0, 0)
    return Method(
        model_id=m.get("id"),
        model_description=m.get("description"),
        backend=m.get("backend"),
        dev_macro_f1=m.get("dev_macro_f1"),
        dev_set=m.get("dev_set"),
        labels_total=int(db.scalar("SELECT count(*) FROM labels")),
        labels_week=int(week_counts[1]),
        agreement=human.agreed / human.n if human and human.n else None,
        agreement_n=human.n if human else 0,
        paywalled_week=int(week_counts[2]),
        documents_week=int(week_counts[0]),
        labelled_n=sum(c.n for c in behind),
        labelled_agreed=sum(c.agreed for c in behind),
        indomain_n=base.n if base else 0,
        indomain_source=base.source if base else "",
        human_n=human.n if human else 0,
        human_agreed=human.agreed if human else 0,
        stars=stars,
    )


def _never_fetched(db: Database) -> list[str]:
    return [
        r[0]
        for r in db.fetchall(
            "SELECT coalesce(nullif(name, ''), id) FROM sources WHERE enabled AND last_attempt_at IS NULL ORDER BY id"
        )
    ]


def _failing(db: Database) -> tuple[list[SourceProblem], int]:
    rows = db.rows(
        """SELECT id, coalesce(nullif(name, ''), id) AS name, voice, last_status, failing_since,
                  consecutive_failures, last_error, last_success_at
           FROM sources WHERE enabled AND consecutive_failures > 0 ORDER BY failing_since NULLS LAST, id"""
    )
    enabled = int(db.scalar("SELECT count(*) FROM sources WHERE enabled"))
    return [
        SourceProblem(
            id=r["id"],
            name=r["name"],
            voice=r["voice"],
            status=r["last_status"],
            failing_since=r["failing_since"],
            consecutive_failures=int(r["consecutive_failures"]),
            last_error=r["last_error"],
            last_success_at=r["last_success_at"],
        )
        for r in rows
    ], enabled


def gather(db: Database, settings: Settings, week: str, now: datetime | None = None) -> ReportData:
    """Everything the report shows for `week`, read from the views. `week` is checked by the caller
    (weekly.read_data, before the database is opened)."""
    cfg = settings.report
    window = dates.weeks_ending(week, cfg.weeks)
    rows = db.rows("SELECT * FROM weekly_tone WHERE list_contains(?, week)", [window])
    by = {(r["week"], r["voice"]): tone_cell(r, cfg.min_n) for r in rows}
    series = {v: [by.get((w, v)) for w in window] for v in VOICES}
    vol_rows = db.rows("SELECT * FROM weekly_volume WHERE list_contains(?, week)", [window])
    vols = {
        (r["week"], r["voice"]): Volume(r["week"], r["voice"], int(r["stories"]), int(r["documents"]))
        for r in vol_rows
    }
    volume = {v: [vols.get((w, v)) for w in window] for v in VOICES}

    prev = dates.shift_week(week, -1)
    prev_rows = db.rows("SELECT * FROM weekly_tone WHERE week = ?", [prev])
    prev_cells = {r["voice"]: tone_cell(r, cfg.min_n) for r in prev_rows}
    now_cells = {v: by[(week, v)] for v in VOICES if (week, v) in by}
    four = weeks_before(week, AVG_WEEKS)
    headline = {}
    for v in VOICES:
        avg4, avg4_n = _pooled(db, v, four)
        headline[v] = Headline(v, now_cells.get(v), prev_cells.get(v), avg4, avg4_n)

    patient_now = now_cells.get("patient")
    patient_docs = db.scalar(
        "SELECT coalesce(sum(documents), 0) FROM weekly_volume WHERE week = ? AND voice = 'patient'", [week]
    )
    rating_rows = db.rows(
        """SELECT r.*, coalesce(nullif(s.name, ''), r.source_id) AS source_name FROM weekly_rating r
           LEFT JOIN sources s ON s.id = r.source_id WHERE r.week = ? ORDER BY r.source_id""",
        [week],
    )
    ratings = [
        Rating(
            r["source_id"],
            r["source_name"],
            r["source_kind"],
            int(r["n"]),
            float(r["mean_rating"]),
            float(r["tone"]),
        )
        for r in rating_rows
    ]
    low = _stories(db, week, "patient", "st.tone, st.published_at", 3)
    high = _stories(db, week, "patient", "st.tone DESC, st.published_at", 3)
    seen: set[str] = set()
    excerpts = []
    for s in sorted(low + high, key=lambda s: s.tone):
        if s.document_id not in seen:
            seen.add(s.document_id)
            excerpts.append(s)

    failing, enabled = _failing(db)
    return ReportData(
        week=week,
        weeks=window,
        generated_at=now or datetime.now(UTC),
        min_n=cfg.min_n,
        baseline_weeks=cfg.baseline_weeks,
        spike_factor=cfg.spike_factor,
        tone_drop=cfg.tone_drop,
        synthetic=is_synthetic(settings),
        series=series,
        volume=volume,
        headline=headline,
        negative=_stories(db, week, "media", "st.tone, st.published_at", 5, "AND st.tone < 0"),
        positive=_stories(db, week, "media", "st.tone DESC, st.published_at", 5, "AND st.tone > 0"),
        union=_stories(db, week, "union", "st.published_at, st.document_id", 10),
        patient_n=patient_now.n if patient_now else 0,
        patient_documents=int(patient_docs),
        ratings=ratings,
        excerpts=excerpts,
        topics=_groups(
            db,
            "weekly_topic_tone",
            "topic",
            week,
            {k: t.label for k, t in settings.topics.items()},
            cfg.min_n,
        ),
        regions=_groups(
            db,
            "weekly_region_tone",
            "region",
            week,
            {k: t.label for k, t in settings.regions.items()},
            cfg.min_n,
        ),
        alerts=_alerts(db, week, settings, now_cells),
        failing=failing,
        never_fetched=_never_fetched(db),
        sources_enabled=enabled,
        method=_method(db, week, window),
        shares=_shares(db, week, cfg.min_n),
        label_weeks=_label_weeks(db, week),
    )

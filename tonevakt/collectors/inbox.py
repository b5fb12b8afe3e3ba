"""The patient-feedback inbox: a folder of CSV / XLSX / JSONL (and JSON) exports, each file imported once.

A `files` source names a folder (`path`, relative to the config file's folder) and a column mapping
(`columns: {text: Kommentar, published_at: Dato, ...}`). Every pass reads the files in that folder (not
its subfolders) whose content hash is not yet in `imported_files`, and hands back their rows as documents
together with the (hash, source, path, rows) records, which the pass stores in the same transaction as the
documents: a file is either fully imported and recorded, or not at all.

Refused, with a warning that names the file: a relative inbox `path` that climbs out of the configuration
folder with `..` (the whole source fails; an absolute path is accepted), names that are not plain file names
(path separators, control characters), symlinks or anything else that resolves outside the folder, files over
`MAX_INBOX_BYTES`, and unreadable files (which are tried again next pass, so a fixed file gets in).
Hidden files, Office lock files (`~$...`) and unsupported extensions are passed over quietly.

One file at a time: whatever goes wrong in one file (too many rows, JSON nested 100,000 levels deep, a bug
in a reader) refuses that file alone, named with its reason in the warning log and in the source's fetch-log
reason; the folder's other files and every other source still land. Rows with a rating outside 1–5 keep their
text and lose the rating, with the rows named (`files.py`).

Personal data is not handled here: the pass redacts every document before it is stored (`nlp/enrich.py`).
"""

from __future__ import annotations

import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

from tonevakt.collectors.files import FORMATS, file_hash, load_documents
from tonevakt.errors import ImportFileError
from tonevakt.models import FetchLogEntry, FetchStatus, Source, SourceOutcome

logger = logging.getLogger(__name__)

MAX_INBOX_BYTES = 50_000_000
MAX_FILES_PER_PASS = 200
MAX_REASON_CHARS = 2_000  # of the refusals named in the fetch-log reason


def inbox_folder(source: Source, base_dir: Path) -> Path:
    folder = Path(source.path or "").expanduser()
    return folder if folder.is_absolute() else Path(base_dir) / folder


def _name_problem(name: str) -> str | None:
    if name in (".", "..") or "/" in name or "\\" in name:
        return "the name is not a plain file name"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "the name holds control characters"
    return None


def collect_inbox(source: Source, known_files: set[str], base_dir: Path) -> SourceOutcome:
    """Read the new files of the source's inbox folder; never raises for file problems."""
    outcome = SourceOutcome(source=source)
    started = datetime.now(UTC)
    folder = inbox_folder(source, base_dir)
    entry = FetchLogEntry(source_id=source.id, url=str(folder), status=FetchStatus.OK, started_at=started)
    outcome.fetches.append(entry)
    if not Path(source.path or "").expanduser().is_absolute() and ".." in Path(source.path or "").parts:
        entry.status = FetchStatus.HARD_ERROR
        entry.reason = (
            f"inbox path {source.path!r} leaves the configuration folder with '..': refused "
            "(give an absolute path if that folder is really meant)"
        )
        return outcome
    try:
        root = folder.resolve(strict=True)
        if not root.is_dir():
            raise NotADirectoryError(str(folder))
        names = sorted(os.listdir(root))
    except (FileNotFoundError, NotADirectoryError):
        entry.status, entry.reason = (
            FetchStatus.HARD_ERROR,
            f"inbox folder {folder} does not exist or is not a folder",
        )
        return outcome
    except OSError as e:
        entry.status, entry.reason = FetchStatus.TEMPORARY, f"cannot read inbox folder {folder}: {e}"
        return outcome

    seen_now: set[str] = set()
    refused: list[str] = []
    imported = failed = 0
    for name in names:
        if imported + failed >= MAX_FILES_PER_PASS:
            outcome.warnings.append(
                f"more than {MAX_FILES_PER_PASS} new files: the rest waits for the next pass"
            )
            break
        if name.startswith((".", "~$")) or Path(name).suffix.lower() not in FORMATS:
            logger.debug("%s: passing over %s", source.id, name)
            continue
        path = root / name
        problem = _name_problem(name) or _location_problem(path, root)
        data: bytes | None = None
        if problem is None:
            try:
                data, problem = _read_limited(path)
            except OSError as e:
                problem = f"cannot read it: {e}"
        if problem is not None or data is None:
            refused.append(f"{name!r} refused: {problem}")
            failed += 1
            continue
        digest = file_hash(data)
        if digest in known_files or digest in seen_now:
            continue  # imported before (perhaps under another name)
        try:
            loaded = load_documents(data, path, source)
        except ImportFileError as e:
            refused.append(f"{name!r} not imported: {e}")
            failed += 1
            continue
        seen_now.add(digest)
        rows = loaded.rows
        for w in rows.warnings:
            logger.warning("%s: %s", source.id, w)
        outcome.warnings.extend(rows.warnings)
        outcome.documents.extend(loaded.documents)
        outcome.imported_files.append((digest, source.id, str(path), len(rows.rows)))
        entry.items += len(rows.rows)
        entry.bytes += len(data)
        imported += 1
        logger.info(
            "%s: %s has %d rows, %d with text", source.id, name, len(rows.rows), len(loaded.documents)
        )
    for r in refused:
        logger.warning("%s: %s", source.id, r)
    outcome.warnings.extend(refused)
    if imported or failed:
        entry.reason = f"{imported} new file(s) read" + (
            f", {failed} refused or unreadable: " + "; ".join(refused)[:MAX_REASON_CHARS] if failed else ""
        )
    if failed and not imported:
        entry.status = FetchStatus.SOFT_ERROR
        entry.reason = "; ".join(refused[-3:])[:MAX_REASON_CHARS]
    return outcome


def _location_problem(path: Path, root: Path) -> str | None:
    """Symlinks (or anything) that resolve outside the folder, and things that are not regular files."""
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError) as e:  # a dangling or looping symlink
        return f"it cannot be resolved ({e.__class__.__name__})"
    if real.parent != root and root not in real.parents:
        return f"it points outside the inbox folder (to {real})"
    try:
        mode = real.stat().st_mode
    except OSError as e:
        return f"cannot read it: {e}"
    if not stat.S_ISREG(mode):
        return "it is not a regular file"
    return None


def _read_limited(path: Path) -> tuple[bytes | None, str | None]:
    size = path.stat().st_size
    if size > MAX_INBOX_BYTES:
        return None, f"{size:,} bytes is over the inbox limit of {MAX_INBOX_BYTES:,}"
    with path.open("rb") as f:
        data = f.read(MAX_INBOX_BYTES + 1)
    if len(data) > MAX_INBOX_BYTES:  # it grew while we looked
        return None, f"over the inbox limit of {MAX_INBOX_BYTES:,} bytes"
    return data, None

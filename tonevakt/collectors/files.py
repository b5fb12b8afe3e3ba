"""Reading feedback files (CSV, JSONL, a JSON list, XLSX) into Documents.

Used by `tonevakt import` and by the `files` collector (a patient-feedback inbox folder).
Unknown columns are kept in `Document.extra`, never silently lost.

Files are untrusted: a file is read row by row up to `max_rows` (a source's `max_rows`, default
`limits.MAX_FILE_ROWS`) and refused beyond it; JSON nested deeper than `MAX_NESTING` levels is refused; a
rating that is not a number from 1 to 5 is dropped from its row (the row is kept) with the row named in a
warning. Whatever goes wrong inside one file is an `ImportFileError` naming that file (`load_documents`),
never an exception that takes other files, sources or the pass with it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import math
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tonevakt.collectors.encoding import decode_unlabelled
from tonevakt.dates import parse_date
from tonevakt.errors import ImportFileError
from tonevakt.limits import MAX_FILE_ROWS
from tonevakt.models import Document, Source

logger = logging.getLogger(__name__)

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".xlsx": "xlsx",
}
KNOWN_FIELDS = ("text", "title", "url", "published_at", "date", "rating", "author")
# Column names recognised without a mapping (Norwegian and English exports), in order of preference.
# Deliberately no "navn"/"name": a person's name is not an author field we want to fill by guessing.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "text": (
        "tekst",
        "kommentar",
        "kommentarer",
        "tilbakemelding",
        "fritekst",
        "svar",
        "comment",
        "content",
        "body",
        "melding",
    ),
    "title": ("tittel", "overskrift", "emne", "subject", "headline"),
    "url": ("lenke", "link", "adresse_url"),
    "published_at": (
        "dato",
        "tidspunkt",
        "publisert",
        "opprettet",
        "published",
        "created",
        "timestamp",
        "datetime",
    ),
    "rating": ("vurdering", "karakter", "score", "stjerner", "stars", "terningkast"),
    "author": ("forfatter", "innsender"),
}
# Columns that can only hold personal data are not kept in `extra` (data minimisation; the values of the
# columns that are kept are redacted like the text). Compared case-insensitively, without spaces, '-', '_', '.'.
_PERSONAL_COLUMN_NAMES = """
    fødselsnummer fodselsnummer foedselsnummer personnummer fnr fødselsnr fodselsnr dnummer dnr hnummer
    telefon telefonnummer telefonnr tlf tlfnr mobil mobilnummer mobilnr phone epost epostadresse email
    emailadresse mail navn fornavn etternavn mellomnavn name firstname lastname fullname adresse
    gateadresse address"""
PERSONAL_COLUMNS = frozenset(_PERSONAL_COLUMN_NAMES.split())
MAX_FILE_BYTES = 200_000_000
MAX_XLSX_UNPACKED_BYTES = 500_000_000  # an XLSX is a zip: its parts together may not inflate past this
MAX_COLUMNS = 1_000  # columns of an XLSX header (a sheet can claim 16,384 columns on every row)
MAX_NESTING = 20  # levels of lists/objects in a JSON row (100,000 levels crashed a pass: RecursionError)
RATING_RANGE = (1, 5)  # star ratings; anything else in a rating column is dropped from its row
WARNED_ROWS = 10  # row numbers listed in one warning, then "and N more"


@dataclass
class FileRows:
    path: Path
    content_hash: str
    columns: list[str]
    rows: list[dict[str, Any]]
    warnings: list[str] = field(default_factory=list)


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _decode(data: bytes, path: Path) -> str:
    decoded = decode_unlabelled(data)
    if decoded.guessed:
        logger.info("%s is not UTF-8; read as %s", path, decoded.encoding)
    return decoded.text


def _too_many_rows(path: Path, max_rows: int) -> ImportFileError:
    return ImportFileError(
        f"{path}: more than {max_rows:,} rows; the limit is {max_rows:,} per file (refused, nothing of it "
        "imported; split the file, or raise the source's 'max_rows')"
    )


def _read_csv(
    text: str, path: Path, max_rows: int = MAX_FILE_ROWS
) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    sample = text[:20000]
    warnings = []
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    header_line = sample.split("\n", 1)[0]
    if delimiter not in header_line:  # the sniffer guesses from the rows; commas in comments mislead it
        in_header = max(",;\t|", key=header_line.count)
        if header_line.count(in_header):
            delimiter = in_header
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFileError(f"{path}: the file is empty") from None
    except csv.Error as e:
        raise ImportFileError(f"{path}: broken CSV header: {e}") from e
    header = [h.strip() for h in header]
    rows = []
    last_short = False
    records = enumerate(reader, start=2)
    while True:
        try:
            lineno, rec = next(records)
        except StopIteration:
            break
        except csv.Error as e:
            raise ImportFileError(f"{path}: broken CSV after line {reader.line_num}: {e}") from e
        if not any(c.strip() for c in rec):
            continue
        if len(rows) >= max_rows:
            raise _too_many_rows(path, max_rows)
        last_short = len(rec) < len(header)
        if len(rec) != len(header):
            warnings.append(f"{path}: line {lineno} has {len(rec)} fields, the header has {len(header)}")
            if len(rec) < len(header):
                rec = rec + [""] * (len(header) - len(rec))
            else:
                rec = rec[: len(header) - 1] + [delimiter.join(rec[len(header) - 1 :])]
        rows.append(dict(zip(header, rec, strict=True)))
    if rows and not text.endswith(("\n", "\r")) and (last_short or text.rsplit("\n", 1)[-1].count('"') % 2):
        # A file cut off mid-row (a copy still being written, a full disk): the last row is kept as far as it
        # goes, and said so (the complete file, imported later, adds the complete row beside it).
        warnings.append(
            f"{path}: the file ends in the middle of a row (cut off?): its last row may be incomplete"
        )
    return header, rows, warnings


def _too_deep(value: Any, limit: int) -> bool:
    """Does a parsed JSON value nest lists/objects more than `limit` levels deep? (no recursion)"""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict | list):
            if depth > limit:
                return True
            stack.extend((x, depth + 1) for x in (v.values() if isinstance(v, dict) else v))
    return False


def _too_deep_error(path: Path, where: str) -> ImportFileError:
    return ImportFileError(f"{path}: {where} nests lists or objects more than {MAX_NESTING} levels deep")


def _read_jsonl(text: str, path: Path, max_rows: int = MAX_FILE_ROWS) -> list[dict[str, Any]]:
    rows = []
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise ImportFileError(f"{path}: line {lineno} is not valid JSON: {e.msg}") from e
        except RecursionError:  # 100,000 '[': the decoder gives up before we can count
            raise _too_deep_error(path, f"line {lineno}") from None
        except ValueError as e:  # e.g. an integer of more than 4,300 digits
            raise ImportFileError(f"{path}: line {lineno} cannot be read: {e}") from e
        if not isinstance(obj, dict):
            raise ImportFileError(f"{path}: line {lineno} is not a JSON object")
        if _too_deep(obj, MAX_NESTING):
            raise _too_deep_error(path, f"line {lineno}")
        if len(rows) >= max_rows:
            raise _too_many_rows(path, max_rows)
        rows.append(obj)
    return rows


def _read_json(text: str, path: Path, max_rows: int = MAX_FILE_ROWS) -> list[dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ImportFileError(f"{path}: not valid JSON (line {e.lineno}): {e.msg}") from e
    except RecursionError:
        raise _too_deep_error(path, "the file") from None
    except ValueError as e:
        raise ImportFileError(f"{path}: cannot be read: {e}") from e
    if isinstance(data, dict):
        for key in ("documents", "items", "rows", "data"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
    if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
        raise ImportFileError(f"{path}: expected a JSON list of objects")
    for i, row in enumerate(data, start=1):
        if _too_deep(row, MAX_NESTING):
            raise _too_deep_error(path, f"row {i}")
    if len(data) > max_rows:
        raise _too_many_rows(path, max_rows)
    return data


def _check_xlsx_size(data: bytes, path: Path) -> None:
    """Refuse a workbook whose parts would inflate past MAX_XLSX_UNPACKED_BYTES (a zip bomb)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            unpacked = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ImportFileError(f"{path}: not a readable XLSX workbook: {e}") from e
    if unpacked > MAX_XLSX_UNPACKED_BYTES:
        raise ImportFileError(
            f"{path}: the workbook unpacks to {unpacked:,} bytes; the limit is {MAX_XLSX_UNPACKED_BYTES:,}"
        )


def _read_xlsx(
    data: bytes, path: Path, max_rows: int = MAX_FILE_ROWS
) -> tuple[list[str], list[dict[str, Any]]]:
    """The first sheet, streamed (openpyxl's read-only mode parses the sheet's XML as it goes), stopping at
    `max_rows`: memory and time are bounded by the limit, not by what the file claims."""
    import openpyxl

    _check_xlsx_size(data, path)
    try:
        wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as e:  # openpyxl raises many kinds (zipfile, KeyError, InvalidFileException)
        raise ImportFileError(f"{path}: not a readable XLSX workbook: {e}") from e
    try:
        ws = wb.worksheets[0]
        first = next(ws.iter_rows(max_row=1, max_col=MAX_COLUMNS + 1, values_only=True), None)
        if first is None:
            raise ImportFileError(f"{path}: the first sheet is empty")
        header = [str(h).strip() if h is not None else "" for h in first]
        while header and not header[-1]:
            header.pop()
        if len(header) > MAX_COLUMNS:
            raise ImportFileError(f"{path}: the header has more than {MAX_COLUMNS:,} columns")
        rows = []
        scan_limit = 2 * max_rows + 1_000  # blank rows cost reading too (a sheet can jump to row 1,048,576)
        for scanned, rec in enumerate(ws.iter_rows(min_row=2, max_col=max(1, len(header)), values_only=True)):
            if scanned >= scan_limit:
                raise ImportFileError(
                    f"{path}: more than {scan_limit:,} rows, blank ones included; the limit is {max_rows:,} rows "
                    "per file (refused, nothing of it imported)"
                )
            if rec is None or all(v is None or str(v).strip() == "" for v in rec):
                continue
            if len(rows) >= max_rows:
                raise _too_many_rows(path, max_rows)
            rows.append({h: v for h, v in zip(header, rec, strict=False) if h})
    finally:
        wb.close()
    return [h for h in header if h], rows


def read_rows(path: Path, max_bytes: int = MAX_FILE_BYTES, max_rows: int = MAX_FILE_ROWS) -> FileRows:
    """Read a feedback file into rows of column → value."""
    return parse_rows(read_file(path, max_bytes), Path(path), max_rows)


def read_file(path: Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a feedback file of a supported type, refused by size before reading."""
    path = Path(path)
    _format_of(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise ImportFileError(f"{path}: the file is {size:,} bytes; the limit is {max_bytes:,}")
        return path.read_bytes()
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path}: is a folder, not a file") from None
    except OSError as e:
        raise ImportFileError(f"{path}: cannot read: {e}") from e


def _format_of(path: Path) -> str:
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ImportFileError(f"{path}: unsupported file type '{path.suffix}' (use CSV, JSONL, JSON or XLSX)")
    return fmt


def parse_rows(data: bytes, path: Path, max_rows: int = MAX_FILE_ROWS) -> FileRows:
    """Parse the bytes of a feedback file (format from the file name's extension), at most `max_rows` rows."""
    fmt = _format_of(path)
    warnings: list[str] = []
    if fmt == "xlsx":
        columns, rows = _read_xlsx(data, path, max_rows)
    else:
        text = _decode(data, path)
        if fmt == "csv":
            columns, rows, warnings = _read_csv(text, path, max_rows)
        else:
            reader = _read_jsonl if fmt == "jsonl" else _read_json
            rows = reader(text, path, max_rows)
            columns = list(dict.fromkeys(k for r in rows for k in r))
    return FileRows(path=path, content_hash=file_hash(data), columns=columns, rows=rows, warnings=warnings)


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return str(v).strip()


def _rating(value: Any) -> tuple[int | None, bool]:
    """(rating, acceptable): a whole star rating from 1 to 5, or None; `acceptable` is False for a value
    that is there but is no such rating (99999999999, 1e400, inf, 0, "fem"), which is dropped."""
    raw = _text(value)
    if not raw:
        return None, True
    try:
        number = float(raw.replace(",", "."))
    except ValueError:
        return None, False
    if not math.isfinite(number) or not RATING_RANGE[0] <= number <= RATING_RANGE[1]:
        return None, False
    return int(number), True


def _rows_warning(path: Path, what: str, rows: list[tuple[int, str]]) -> str:
    shown = ", ".join(f"row {n} ({v if len(v) <= 20 else v[:19] + '…'!r})" for n, v in rows[:WARNED_ROWS])
    more = f" and {len(rows) - WARNED_ROWS} more" if len(rows) > WARNED_ROWS else ""
    return f"{path}: {what} in {len(rows)} row(s), kept without it: {shown}{more}"


def _column_key(name: str) -> str:
    return "".join(ch for ch in name.casefold() if ch not in " -_.")


def rows_to_documents(
    fr: FileRows, source: Source, voice: str | None = None, columns: dict[str, str] | None = None
) -> list[Document]:
    """Turn rows into Documents. `columns` maps our field names to the file's column names."""
    mapping = {k: k for k in KNOWN_FIELDS}
    explicit = dict(columns or source.columns or {})
    mapping.update(explicit)
    lower = {c.lower().strip(): c for c in fr.columns}

    def col(fieldname: str) -> str | None:
        name = mapping.get(fieldname, fieldname)
        found = name if name in fr.columns else lower.get(name.lower())
        if found is None and explicit.get(fieldname, fieldname) == fieldname:  # not mapped to another name
            found = next((lower[s] for s in SYNONYMS.get(fieldname, ()) if s in lower), None)
        return found

    text_col = col("text")
    if text_col is None:
        raise ImportFileError(
            f"{fr.path}: no '{mapping['text']}' column (found: {', '.join(fr.columns) or 'none'}); "
            "map one with the source's 'columns: {text: <column>}'"
        )
    used = {c for c in (col(f) for f in KNOWN_FIELDS) if c}
    personal = {c for c in fr.columns if _column_key(c) in PERSONAL_COLUMNS and c not in used}
    if personal:
        fr.warnings.append(f"{fr.path}: columns with personal data not kept: {', '.join(sorted(personal))}")
    used |= personal
    now = datetime.now(UTC)
    docs = []
    rating_col = col("rating")
    bad_ratings: list[tuple[int, str]] = []
    for i, row in enumerate(fr.rows):
        text = _text(row.get(text_col))
        if not text:
            continue
        title = _text(row.get(col("title"))) if col("title") else ""
        raw_date = row.get(col("published_at")) if col("published_at") else None
        if raw_date in (None, "") and col("date"):
            raw_date = row.get(col("date"))
        published = parse_date(raw_date)
        rating = None
        if rating_col:
            rating, acceptable = _rating(row.get(rating_col))
            if not acceptable:
                bad_ratings.append((i + 1, _text(row.get(rating_col))))
        extra = {k: v for k, v in row.items() if k not in used and v not in (None, "")}
        if raw_date not in (None, "") and published is None:
            extra["unparsed_date"] = str(raw_date)
        url = _text(row.get(col("url"))) if col("url") else ""
        docs.append(
            Document(
                source_id=source.id,
                voice=voice or source.voice,
                title=title or text[:80],
                text=text,
                url=url or None,
                author=_text(row.get(col("author"))) or None if col("author") else None,
                published_at=published,
                published_estimated=published is None,
                collected_at=now,
                rating=rating,
                region=source.region,
                kind="feedback" if (voice or source.voice) == "patient" else "article",
                extra={**extra, "file": fr.path.name, "row": i + 1},
            )
        )
    if bad_ratings:
        lo, hi = RATING_RANGE
        fr.warnings.append(
            _rows_warning(fr.path, f"a rating that is not a number from {lo} to {hi}", bad_ratings)
        )
    return docs


@dataclass(frozen=True)
class LoadedFile:
    """One feedback file read: its rows (with what was refused and why) and the documents made of them."""

    rows: FileRows
    documents: list[Document]


def load_documents(
    data: bytes,
    path: Path,
    source: Source,
    voice: str | None = None,
    max_rows: int | None = None,
) -> LoadedFile:
    """Parse one file's bytes and turn its rows into Documents: the one place where a file's problems become
    an `ImportFileError` naming it (also the unexpected ones), so that one bad file never takes other files,
    other sources or the whole pass with it."""
    try:
        fr = parse_rows(data, path, max_rows or source.max_rows)
        return LoadedFile(fr, rows_to_documents(fr, source, voice=voice))
    except ImportFileError:
        raise
    except Exception as e:  # a reader's unexpected failure (a bug, MemoryError) stays this file's problem
        logger.debug("reading %s failed", path, exc_info=True)
        raise ImportFileError(f"{path}: cannot be read ({type(e).__name__}: {e})") from e

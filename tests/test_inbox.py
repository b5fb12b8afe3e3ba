"""The patient-feedback inbox: new files read once, hostile files refused, personal data never stored."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import duckdb
import openpyxl
import pytest
from click.testing import CliRunner

from tests.support.paths import FIXTURES
from tonevakt import pipeline
from tonevakt.cli import main
from tonevakt.collectors import inbox
from tonevakt.collectors.files import file_hash
from tonevakt.collectors.inbox import collect_inbox
from tonevakt.config import Settings
from tonevakt.models import FetchStatus, Source

COLUMNS = {"text": "Kommentar", "published_at": "Dato", "rating": "Score"}
INBOX_FIXTURES = FIXTURES / "inbox"
# Planted in tests/fixtures/inbox/*: must never reach the database, the snapshot or the exports.
PERSONAL = [
    "15099947613",
    "150975 19444",
    "54114911987",
    "922 33 444",
    "73 86 80 00",
    "+47 415 55 123",
    "kari.nordmann@example.no",
    "per.olsen@example.com",
    "48 12 34 56",
    "98 76 54 32",
]  # the last two: unmapped columns of skjema.jsonl
KEPT = ["Ordrenummer 92622439332", "12 500 kr", "7030 Trondheim", "Pårørende ba om å bli ringt på [telefon]"]


def _source(path: str = "inbox") -> Source:
    return Source(id="feedback", kind="files", voice="patient", path=path, columns=dict(COLUMNS))


def _inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    return folder


def _xlsx(path: Path, rows: list[list[object]]) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    wb.save(path)


def test_reads_new_files_of_every_format(tmp_path: Path) -> None:
    folder = _inbox(tmp_path)
    (folder / "uke47.csv").write_bytes(
        "Dato;Kommentar;Score;Avdeling\n20.11.2026;Sjukepleiarane var fantastiske;5;Ortopedi\n"
        "21.11.2026;Lang ventetid på røntgen;2;Røntgen\n".encode("cp1252")
    )
    (folder / "skjema.jsonl").write_text(
        json.dumps({"Dato": "2026-11-22", "Kommentar": "Fikk god hjelp på legevakten", "Score": 4}) + "\n",
        encoding="utf-8",
    )
    _xlsx(
        folder / "undersokelse.xlsx", [["Dato", "Kommentar", "Score"], ["2026-11-23", "HelsaMi er grei", 4]]
    )
    (folder / ".skjult.csv").write_text("Kommentar\nhidden\n", encoding="utf-8")
    (folder / "~$undersokelse.xlsx").write_bytes(b"lock")
    (folder / "notat.docx").write_bytes(b"not a feedback file")
    (folder / "gammel").mkdir()
    out = collect_inbox(_source(), set(), tmp_path)
    assert not out.failed and out.warnings == []
    texts = sorted(d.text for d in out.documents)
    assert texts == [
        "Fikk god hjelp på legevakten",
        "HelsaMi er grei",
        "Lang ventetid på røntgen",
        "Sjukepleiarane var fantastiske",
    ]
    by_text = {d.text: d for d in out.documents}
    ortho = by_text["Sjukepleiarane var fantastiske"]
    assert ortho.rating == 5 and ortho.kind == "feedback" and ortho.voice == "patient"
    assert ortho.published_at is not None and ortho.published_at.date().isoformat() == "2026-11-20"
    assert ortho.extra["Avdeling"] == "Ortopedi" and ortho.extra["file"] == "uke47.csv"
    assert sorted(Path(p).name for _, _, p, _ in out.imported_files) == [
        "skjema.jsonl",
        "uke47.csv",
        "undersokelse.xlsx",
    ]
    assert {f[1] for f in out.imported_files} == {"feedback"}
    assert sum(f[3] for f in out.imported_files) == 4
    primary = out.fetches[0]
    assert primary.status is FetchStatus.OK and primary.items == 4

    # Known content is not read again, whatever the file is called now.
    known = {h for h, *_ in out.imported_files}
    (folder / "kopi-av-uke47.csv").write_bytes((folder / "uke47.csv").read_bytes())
    again = collect_inbox(_source(), known, tmp_path)
    assert again.documents == [] and again.imported_files == [] and not again.failed


def test_refuses_symlinks_out_of_the_folder_huge_files_and_climbing_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _inbox(tmp_path)
    secret = tmp_path / "secret.csv"
    secret.write_text("Kommentar\nhemmelig\n", encoding="utf-8")
    os.symlink(secret, folder / "lenke.csv")
    os.symlink(tmp_path / "missing.csv", folder / "brutt.csv")
    (folder / "stor.csv").write_text("Kommentar\n" + "x" * 2000 + "\n", encoding="utf-8")
    (folder / "ok.csv").write_text("Kommentar\nGod behandling\n", encoding="utf-8")
    monkeypatch.setattr(inbox, "MAX_INBOX_BYTES", 1000)
    out = collect_inbox(_source(), set(), tmp_path)
    assert [d.text for d in out.documents] == ["God behandling"]
    warnings = " | ".join(out.warnings)
    assert "'lenke.csv' refused: it points outside the inbox folder" in warnings
    assert "'brutt.csv' refused: it cannot be resolved" in warnings
    assert "'stor.csv' refused:" in warnings and "over the inbox limit" in warnings
    assert not out.failed  # one good file: the source works, the refusals are warnings

    climbing = collect_inbox(_source("../inbox"), set(), tmp_path / "inbox")
    assert climbing.failed and "leaves the configuration folder" in climbing.reason
    assert climbing.documents == []
    missing = collect_inbox(_source("finnes-ikke"), set(), tmp_path)
    assert missing.failed and missing.fetches[0].status is FetchStatus.HARD_ERROR
    assert "does not exist" in missing.reason


def test_broken_files_are_reported_and_tried_again(tmp_path: Path) -> None:
    folder = _inbox(tmp_path)
    (folder / "feil.jsonl").write_text('{"Kommentar": "ok"}\n{"Kommentar": \n', encoding="utf-8")
    (folder / "uten-tekst.csv").write_text("Navn;Alder\nKari;40\n", encoding="utf-8")
    (folder / "bok.xlsx").write_bytes(b"PK\x03\x04 not really a workbook")
    out = collect_inbox(_source(), set(), tmp_path)
    assert out.failed and out.fetches[0].status is FetchStatus.SOFT_ERROR
    warnings = " | ".join(out.warnings)
    assert "'feil.jsonl' not imported" in warnings and "line 2 is not valid JSON" in warnings
    assert "'uten-tekst.csv' not imported" in warnings and "no 'Kommentar' column" in warnings
    assert "'bok.xlsx' not imported" in warnings
    assert out.imported_files == []  # so a fixed file is read next pass
    (folder / "feil.jsonl").write_text('{"Kommentar": "ok nå"}\n', encoding="utf-8")
    fixed = collect_inbox(_source(), set(), tmp_path)
    assert [d.text for d in fixed.documents] == ["ok nå"]


def _copy_fixtures(folder: Path) -> None:
    for f in INBOX_FIXTURES.iterdir():
        if f.suffix in (".csv", ".jsonl"):
            (folder / f.name).write_bytes(f.read_bytes())


def _all_strings(db_file: Path) -> str:
    """Every VARCHAR value of every table of a DuckDB file, joined."""
    con = duckdb.connect(str(db_file), read_only=True)
    try:
        parts = []
        tables = con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        for (table,) in tables:
            for row in con.execute(f'SELECT * FROM "{table}"').fetchall():
                parts.extend(str(v) for v in row if v is not None)
        return "\n".join(parts)
    finally:
        con.close()


def test_personal_data_never_reaches_the_database(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    _copy_fixtures(_inbox(tmp_path))
    settings = make_settings(
        sources=[
            {
                "id": "feedback",
                "kind": "files",
                "voice": "patient",
                "path": "inbox",
                "columns": COLUMNS,
                "relevance": "always",
            }
        ]
    )
    summary = pipeline.collect(settings)
    assert summary.sources_ok == 1 and summary.documents_new == 6
    pipeline.publish(settings)
    stored = _all_strings(settings.db_path)
    for item in PERSONAL:
        assert item not in stored, item
    for item in KEPT:
        assert item in stored, item
    assert "[fødselsnummer]" in stored and "[d-nummer]" in stored and "[telefon]" in stored
    assert "[e-post]" in stored
    snapshot = _all_strings(settings.snapshot_path)
    exports = b"".join(p.read_bytes() for p in settings.exports_path.rglob("*") if p.is_file())
    raw = settings.db_path.read_bytes() + settings.snapshot_path.read_bytes() + exports
    for item in PERSONAL:
        assert item not in snapshot
        assert item.encode("utf-8") not in raw, item
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        redactions = con.execute("SELECT sum(redactions) FROM documents").fetchone()[0]
        files = con.execute("SELECT count(*), sum(rows) FROM imported_files").fetchone()
    finally:
        con.close()
    # Counted per field: a title made from the start of the comment is redacted (and counted) too.
    assert redactions >= len(PERSONAL)
    assert files == (2, 6)
    # A second pass adds nothing and records no file twice.
    again = pipeline.collect(settings, force=True)
    assert again.documents_new == 0 and again.sources_ok == 1


def test_cli_collect_reads_the_inbox_once(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    _copy_fixtures(_inbox(tmp_path))
    settings = make_settings(
        sources=[{"id": "feedback", "kind": "files", "voice": "patient", "path": "inbox", "columns": COLUMNS}]
    )
    runner = CliRunner()
    first = runner.invoke(main, ["--config", settings.file, "collect"])
    assert first.exit_code == 0, first.output
    assert "new 6" in first.output
    second = runner.invoke(main, ["--config", settings.file, "collect", "--force"])
    assert second.exit_code == 0 and "new 0" in second.output
    assert file_hash((INBOX_FIXTURES / "tilbakemeldinger.csv").read_bytes()) in _all_strings(settings.db_path)

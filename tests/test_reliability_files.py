"""Reliability catalogue, file rows (docs/reliability.md): broken and hostile feedback files through the real
`tonevakt import` path (pipeline.import_file → DuckDB file) and the report writer's paths."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import duckdb
import openpyxl
import pytest

from tests.support.localserver import LocalServer, Route
from tonevakt import pipeline
from tonevakt.collectors import files
from tonevakt.config import Settings
from tonevakt.errors import ImportFileError, ReportError
from tonevakt.reports import write_report


def texts(settings: Settings) -> list[str]:
    if not Path(settings.db_path).exists():
        return []
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        return [r[0] for r in con.execute("SELECT text FROM documents ORDER BY text").fetchall()]
    finally:
        con.close()


def imported(settings: Settings, path: Path) -> tuple[int, int, list[str]]:
    s = pipeline.import_file(settings, path, "skjema", voice="patient")
    return s.rows, s.new, s.warnings


# -- truncated CSV --------------------------------------------------------------------------------------------

QUOTED = (
    "Kommentar;Dato\n"
    '"God behandling, takk";12.03.2024\n'
    '"HelsaMi viste feil time; ringte sykehuset";13.03.2024\n'
    '"Helseplattformen var treg på legevakten i natt";14.03.2024\n'
)
PLAIN = QUOTED.replace('"', "").replace("takk;", "takk;").replace("time; ringte", "time, ringte")


@pytest.mark.parametrize(
    ("complete", "cut_at"),
    [(QUOTED, "på legevakten"), (PLAIN, "på legevakten")],
    ids=["inside-a-quoted-field", "short-row"],
)
def test_truncated_csv_keeps_every_row_says_the_last_is_cut_and_reimport_adds_only_the_rest(
    tmp_path: Path, make_settings: Callable[..., Settings], complete: str, cut_at: str
) -> None:
    settings = make_settings()
    path = tmp_path / "uke11.csv"
    path.write_text(complete[: complete.index(cut_at)], encoding="utf-8")  # a copy still being written
    rows, new, warnings = imported(settings, path)
    assert (rows, new) == (3, 3)  # tests/test_files.py: the cut row is kept as far as it goes ...
    assert any("ends in the middle of a row (cut off?)" in w for w in warnings), warnings  # ... and said so
    assert texts(settings)[0] == "God behandling, takk"
    assert "Helseplattformen var treg" in texts(settings)
    path.write_text(complete, encoding="utf-8")  # the complete file arrives later
    rows, new, warnings = imported(settings, path)
    assert (rows, new) == (3, 1) and warnings == []  # the complete rows are not stored twice
    assert "Helseplattformen var treg på legevakten i natt" in texts(settings)
    assert len(texts(settings)) == 4  # known limit: the cut copy stays beside the complete one


def test_file_without_final_newline_keeps_its_last_complete_row(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    path = tmp_path / "uten-linjeskift.csv"
    path.write_text(QUOTED.rstrip("\n"), encoding="utf-8")
    assert imported(settings, path) == (3, 3, [])


# -- wrong delimiter ------------------------------------------------------------------------------------------


def test_delimiter_is_detected_and_commas_inside_comments_survive(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    path = tmp_path / "semikolon.csv"
    path.write_text(
        "Kommentar;Dato\nBra, men treg, og litt dyr;12.03.2024\nGreit, takk;13.03.2024\n", encoding="utf-8"
    )
    assert imported(settings, path)[:2] == (2, 2)
    assert texts(settings) == ["Bra, men treg, og litt dyr", "Greit, takk"]


def test_unknown_delimiter_is_a_clear_error_and_nothing_is_stored(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    path = tmp_path / "kolon.csv"
    path.write_text("Kommentar:Dato\nLang ventetid:12.03.2024\nFin app:13.03.2024\n", encoding="utf-8")
    with pytest.raises(ImportFileError) as err:
        imported(settings, path)
    assert "no 'text' column (found: Kommentar:Dato)" in str(err.value)
    assert "columns: {text: <column>}" in str(err.value)
    assert texts(settings) == []


# -- Excel with formulas --------------------------------------------------------------------------------------


def workbook_with_formulas(target: Path, leak_url: str) -> None:
    """An XLSX whose cells hold formulas with cached values, as Excel saves them (openpyxl writes the formulas,
    the cached <v> values are put in as Excel would), plus a text cell that merely starts with '='."""
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["Kommentar", "Dato"])
    ws.append(["=1+1", "12.03.2024"])
    ws.append([f'=WEBSERVICE("{leak_url}")', "13.03.2024"])
    ws.append([f'=HYPERLINK("{leak_url}","klikk her")', "14.03.2024"])
    ws.append(['=IMPORTXML("http://127.0.0.1:9/x","//a")', "15.03.2024"])  # no cached value at all
    ws["A6"] = "=cmd|' /C calc'!A0"
    ws["A6"].data_type = "s"  # typed text that looks like a formula
    ws["B6"] = "16.03.2024"
    buf = io.BytesIO()
    wb.save(buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                xml = data.decode()
                xml = xml.replace('<c r="A2"><f>1+1</f><v></v></c>', '<c r="A2"><f>1+1</f><v>2</v></c>')
                xml = xml.replace('<c r="A3"><f>', '<c r="A3" t="str"><f>', 1).replace(
                    ')</f><v></v></c><c r="B3"',
                    ')</f><v>Helseplattformen fungerer bra nå</v></c><c r="B3"',
                    1,
                )
                xml = xml.replace('<c r="A4"><f>', '<c r="A4" t="str"><f>', 1).replace(
                    ')</f><v></v></c><c r="B4"', ')</f><v>klikk her</v></c><c r="B4"', 1
                )
                assert xml.count("<v></v>") == 1, (
                    xml
                )  # only the IMPORTXML cell is left without a cached value
                data = xml.encode()
            out.writestr(info, data)


def test_excel_formulas_give_cached_values_only_and_are_never_evaluated(
    tmp_path: Path, make_settings: Callable[..., Settings], local_server: LocalServer
) -> None:
    leak = local_server.add("/lekk", Route(body="LEKKET"))
    settings = make_settings()
    path = tmp_path / "skjema.xlsx"
    workbook_with_formulas(path, leak)
    rows, new, _ = imported(settings, path)
    assert rows == 5 and new == 4  # the formula without a cached value is an empty cell: that row has no text
    stored = texts(settings)
    assert stored == sorted(["2", "Helseplattformen fungerer bra nå", "klikk her", "=cmd|' /C calc'!A0"])
    assert not any(f in t for t in stored for f in ("WEBSERVICE", "HYPERLINK", "IMPORTXML", "1+1"))
    assert local_server.hits("/lekk") == 0  # nothing was evaluated, nothing fetched
    # (the typed text "=cmd|…" is data, kept as written; every CSV export neutralises it: reports rows)


# -- huge files -----------------------------------------------------------------------------------------------


def test_huge_file_is_refused_before_it_is_read(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    path = tmp_path / "enorm.csv"
    with open(path, "wb") as f:  # sparse: 200 MB + 1 byte on paper, no disk used
        f.write(b"Kommentar\nhei\n")
        f.truncate(files.MAX_FILE_BYTES + 1)
    with pytest.raises(ImportFileError, match=r"the file is 200,000,001 bytes; the limit is 200,000,000"):
        imported(settings, path)
    assert texts(settings) == []


def test_workbook_that_inflates_past_the_limit_is_refused(
    tmp_path: Path, make_settings: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(files, "MAX_XLSX_UNPACKED_BYTES", 2_000_000)  # 500 MB in production
    settings = make_settings()
    wb = openpyxl.Workbook()
    wb.active.append(["Kommentar"])
    wb.active.append(["Helseplattformen"])
    buf = io.BytesIO()
    wb.save(buf)
    path = tmp_path / "bombe.xlsx"
    with zipfile.ZipFile(buf, "a", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/media/fyll.bin", b"\0" * 3_000_000)  # compresses to a few kilobytes
    path.write_bytes(buf.getvalue())
    assert path.stat().st_size < 50_000
    with pytest.raises(ImportFileError, match=r"unpacks to 3,0\d\d,\d{3} bytes; the limit is 2,000,000"):
        imported(settings, path)
    assert texts(settings) == []


# -- names with ../ -------------------------------------------------------------------------------------------


def test_zip_member_names_with_dotdot_are_never_written(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    wb = openpyxl.Workbook()
    wb.active.append(["Kommentar"])
    wb.active.append(["HelsaMi virker"])
    buf = io.BytesIO()
    wb.save(buf)
    with zipfile.ZipFile(buf, "a") as z:
        z.writestr("../../../utenfor.txt", b"zip slip")
        z.writestr("xl/../../../../tmp/utenfor2.txt", b"zip slip")
    work = tmp_path / "arbeid"
    work.mkdir()
    path = work / "skli.xlsx"
    path.write_bytes(buf.getvalue())
    before = {p for p in tmp_path.rglob("*")}
    assert imported(settings, path)[:2] == (1, 1)
    after = {p for p in tmp_path.rglob("*")}
    assert {p.name for p in after - before} <= {"tonevakt.duckdb", "tonevakt.duckdb.wal", "data"}
    assert not (tmp_path / "utenfor.txt").exists() and not Path("/tmp/utenfor2.txt").exists()


def test_report_week_with_dotdot_is_refused_and_nothing_is_written(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    pipeline.init(settings)
    out = tmp_path / "rapporter"
    for week in ("../../etc", "2026-W47/../../x", "..", "2026-W47\x00"):
        with pytest.raises(ReportError, match="week must look like 2026-W47"):
            write_report(settings, week, out_dir=out, pdf=False)
    assert not out.exists()


def test_inbox_names_and_paths_that_climb_are_refused(tmp_path: Path) -> None:
    # The inbox rules in one place (tests/test_inbox.py tries symlinks, dangling links and '../inbox').
    from tonevakt.collectors.inbox import _name_problem, collect_inbox
    from tonevakt.models import FetchStatus, Source

    assert _name_problem("..") and _name_problem("a/../b.csv") and _name_problem("..\\b.csv")
    assert _name_problem("uke47\n.csv") and _name_problem("..csv") is None  # a plain (odd) name is fine
    (tmp_path / "config").mkdir()
    (tmp_path / "hemmelig").mkdir()
    (tmp_path / "hemmelig" / "x.csv").write_text("Kommentar\nhemmelig\n", encoding="utf-8")
    out = collect_inbox(
        Source(id="i", kind="files", voice="patient", path="innboks/../../hemmelig"),
        set(),
        tmp_path / "config",
    )
    assert out.failed and out.fetches[0].status is FetchStatus.HARD_ERROR and out.documents == []
    assert "leaves the configuration folder" in out.reason
    assert os.listdir(tmp_path / "hemmelig") == ["x.csv"]


# -- text a database cannot store -----------------------------------------------------------------------------


def test_lone_surrogates_from_json_escapes_do_not_break_the_batch(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    # JSON may escape half of an emoji ("\ud83d" without its pair: a cut-off export, a broken app review);
    # Python keeps it as a lone surrogate, which no UTF-8 database can store.
    settings = make_settings()
    path = tmp_path / "skjema.jsonl"
    path.write_text(
        '{"Kommentar": "Helseplattformen er treg \\ud83d", "Tittel": "halv \\udE00 emoji"}\n'
        '{"Kommentar": "HelsaMi fungerer fint \\ud83d\\ude00"}\n',
        encoding="utf-8",
    )
    rows, new, _ = imported(settings, path)
    assert (rows, new) == (2, 2)
    stored = texts(settings)
    assert "Helseplattformen er treg \ufffd" in stored and "HelsaMi fungerer fint \U0001f600" in stored

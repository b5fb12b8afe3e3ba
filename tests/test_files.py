"""`tonevakt import` and the feedback-file reader: CSV (UTF-8, UTF-16, Windows-1252, ISO-8859-1, `;`), JSONL,
JSON, XLSX."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import duckdb
import openpyxl
import pytest
from click.testing import CliRunner

from tonevakt.cli import main
from tonevakt.collectors.encoding import Decoded, decode_unlabelled
from tonevakt.collectors.files import read_rows, rows_to_documents
from tonevakt.config import Settings
from tonevakt.errors import ImportFileError
from tonevakt.models import Source

HEADER = "dato;tekst;vurdering;avdeling"
ROWS = [
    "01.11.2026;Sykepleierne på Øya var fantastiske, tusen takk!;5;Ortopedi",
    "02.11.2026;Måtte vente i tre timer før noen så på meg. Ærlig talt for dårlig.;2;Akutten",
    "03.11.2026;Legen forklarte alt om prøvesvarene i HelsaMi på en grei måte.;4;Medisinsk",
]


def _import(settings: Settings, path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["--config", settings.file, "import", str(path), "--source", "skjema", "--voice", "patient", *extra],
    )
    return result.exit_code, result.output


def _stored(settings: Settings) -> list[tuple]:
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        return con.execute(
            "SELECT text, rating, published_at, extra, voice, kind FROM documents ORDER BY published_at"
        ).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize(
    "encoding",
    # UTF-16 without a byte-order mark (utf-16-le/-be) was read as UTF-8 full of NULs before charset-normalizer
    ["utf-8", "utf-8-sig", "iso-8859-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be"],
)
def test_import_csv_semicolon(tmp_path: Path, settings: Settings, encoding: str) -> None:
    path = tmp_path / "skjema.csv"
    path.write_bytes(("\n".join([HEADER, *ROWS]) + "\n").encode(encoding))
    code, out = _import(settings, path)
    assert code == 0, out
    assert "3 rows read, 3 new documents" in out
    assert "kept unknown columns in documents.extra: avdeling" in out
    rows = _stored(settings)
    assert [r[0] for r in rows] == [line.split(";")[1] for line in ROWS]  # æøå intact
    assert [r[1] for r in rows] == [5, 2, 4]
    assert rows[0][2].day == 1 and rows[0][2].month == 11
    assert json.loads(rows[0][3])["avdeling"] == "Ortopedi"
    assert {r[4] for r in rows} == {"patient"} and {r[5] for r in rows} == {"feedback"}
    code, out = _import(settings, path)
    assert code == 0 and "0 new documents" in out
    assert len(_stored(settings)) == 3


@pytest.mark.parametrize(
    "text",
    [
        "Dårlig",  # six bytes in Windows-1252: charset-normalizer alone reads them as UTF-16
        "Svært fornøyd – «bra» oppfølging på Øya, 50 € spart på parkering",  # – « » € exist in cp1252 only
        "Ærlig talt: får ikke logget inn på HelsaMi, og ventetiden på å få svar er altfor lang.",
    ],
)
@pytest.mark.parametrize("encoding", ["utf-8", "cp1252", "utf-16-le", "utf-16-be"])
def test_decode_unlabelled_norwegian(text: str, encoding: str) -> None:
    decoded = decode_unlabelled(text.encode(encoding))
    assert decoded.text == text
    assert decoded.guessed is (encoding != "utf-8")


def test_decode_unlabelled_byte_order_mark_and_undefined_bytes() -> None:
    assert decode_unlabelled("Å gå".encode("utf-16")) == Decoded("Å gå", "utf-16", False)
    assert decode_unlabelled(b"\xef\xbb\xbfbl\xc3\xa5") == Decoded("blå", "utf-8-sig", False)
    # 0x81 and 0x8D are undefined in Windows-1252: read as ISO-8859-1, every byte kept.
    assert decode_unlabelled(b"\x81 bl\xe5 \x8d").text == "\x81 blå \x8d"


def test_import_jsonl_json_and_xlsx(tmp_path: Path, settings: Settings) -> None:
    records = [dict(zip(HEADER.split(";"), line.split(";"), strict=True)) for line in ROWS]
    jsonl = tmp_path / "a.jsonl"
    jsonl.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in records[:1]) + "\n\n", encoding="utf-8"
    )
    as_list = tmp_path / "b.json"
    as_list.write_text(json.dumps(records[1:2], ensure_ascii=False), encoding="utf-8")
    xlsx = tmp_path / "c.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(HEADER.split(";"))
    day, text, rating, dept = ROWS[2].split(";")
    ws.append([day, text, int(rating), dept])
    ws.append([None, None, None, None])  # an empty row is skipped
    ws.append(["04.11.2026", '=HYPERLINK("http://example.com")', 1, "Formel"])  # a formula without a value
    wb.save(xlsx)
    for path, expected_new in ((jsonl, 1), (as_list, 1), (xlsx, 1)):
        code, out = _import(settings, path)
        assert code == 0, out
        assert f"{expected_new} new documents" in out
    rows = _stored(settings)
    assert [r[0] for r in rows] == [line.split(";")[1] for line in ROWS]
    assert [r[1] for r in rows] == [5, 2, 4]
    assert all(json.loads(r[3])["avdeling"] for r in rows)
    for path in (jsonl, as_list, xlsx):
        assert "0 new documents" in _import(settings, path)[1]


def test_import_errors_are_clear(tmp_path: Path, settings: Settings) -> None:
    no_text = tmp_path / "feil.csv"
    no_text.write_text("navn;alder\nKari;40\n", encoding="utf-8")
    code, out = _import(settings, no_text)
    assert code != 0 and "no 'text' column" in out and "navn, alder" in out
    code, out = _import(settings, tmp_path / "finnes-ikke.csv")
    assert code != 0 and "no such file" in out
    odd = tmp_path / "notat.docx"
    odd.write_bytes(b"x")
    code, out = _import(settings, odd)
    assert code != 0 and "unsupported file type" in out
    broken = tmp_path / "brutt.json"
    broken.write_text('[{"text": "a"}', encoding="utf-8")
    code, out = _import(settings, broken)
    assert code != 0 and "not valid JSON" in out


def test_reader_details(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text(
        'Kommentar,Dato,Score,Ekstra\n"Bra, men treg",2026-11-01,"4,0",ja\n'
        "Kort linje\nFor mange,2026-11-02,3,a,b\n,2026-11-03,1,\nUkjent dato,i fjor,2,\n",
        encoding="utf-8",
    )
    fr = read_rows(path)
    assert fr.columns == ["Kommentar", "Dato", "Score", "Ekstra"]
    assert any("line 3 has 1 fields" in w for w in fr.warnings)
    src = Source(
        id="s",
        kind="files",
        voice="patient",
        columns={"text": "Kommentar", "date": "Dato", "rating": "Score"},
    )
    docs = rows_to_documents(fr, src)
    assert [d.text for d in docs] == ["Bra, men treg", "Kort linje", "For mange", "Ukjent dato"]
    assert docs[0].rating == 4 and docs[0].extra["Ekstra"] == "ja"
    assert docs[1].published_estimated and docs[1].published_at is None
    assert docs[2].extra["Ekstra"] == "a,b"  # surplus fields kept, joined
    assert docs[3].extra["unparsed_date"] == "i fjor"
    with pytest.raises(ImportFileError, match="empty"):
        empty = tmp_path / "tom.csv"
        empty.write_text("", encoding="utf-8")
        read_rows(empty)
    with pytest.raises(ImportFileError, match="limit"):
        read_rows(path, max_bytes=10)


def test_import_into_configured_source(tmp_path: Path, make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        sources=[
            {
                "id": "skjema",
                "kind": "files",
                "voice": "patient",
                "path": "inbox",
                "columns": {"text": "tekst", "rating": "vurdering"},
            }
        ]
    )
    path = tmp_path / "s.csv"
    path.write_text("\n".join([HEADER, *ROWS]) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", settings.file, "import", str(path), "--source", "skjema"])
    assert result.exit_code == 0, result.output
    assert [r[1] for r in _stored(settings)] == [5, 2, 4]


def test_identity_mapping_still_finds_norwegian_columns(tmp_path: Path) -> None:
    path = tmp_path / "eksport.csv"
    path.write_text("Dato;Kommentar;Karakter\n05.11.2026;Grei app;4\n", encoding="utf-8")
    src = Source(id="s", kind="files", voice="patient", columns={"text": "text", "rating": "rating"})
    (doc,) = rows_to_documents(read_rows(path), src)
    assert doc.text == "Grei app" and doc.rating == 4 and doc.published_at is not None
    mapped_elsewhere = Source(id="s", kind="files", voice="patient", columns={"text": "Fritekst"})
    with pytest.raises(ImportFileError, match="no 'Fritekst' column"):
        rows_to_documents(read_rows(path), mapped_elsewhere)


def test_xlsx_zip_bomb_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tonevakt.collectors import files

    path = tmp_path / "bombe.xlsx"
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["text"])
    for i in range(2000):
        ws.append([f"kommentar {i} " + "x" * 200])
    wb.save(path)
    assert len(read_rows(path).rows) == 2000
    monkeypatch.setattr(files, "MAX_XLSX_UNPACKED_BYTES", path.stat().st_size * 2)  # it packs far better
    with pytest.raises(ImportFileError, match="unpacks to"):
        read_rows(path)


def test_columns_that_only_hold_personal_data_are_not_kept(tmp_path: Path) -> None:
    path = tmp_path / "skjema.csv"
    path.write_text(
        "Kommentar;Fødselsnummer;Tlf.;E-post;Navn;Avdeling\n"
        "Bra;15099947613;922 33 444;kari@example.no;Kari Nordmann;Ortopedi\n",
        encoding="utf-8",
    )
    fr = read_rows(path)
    (doc,) = rows_to_documents(fr, Source(id="s", kind="files", voice="patient"))
    assert doc.extra["Avdeling"] == "Ortopedi"
    assert not {"Fødselsnummer", "Tlf.", "E-post", "Navn"} & set(doc.extra)
    assert any(
        "columns with personal data not kept: E-post, Fødselsnummer, Navn, Tlf." in w for w in fr.warnings
    )
    # A column mapped on purpose is used, not dropped.
    (named,) = rows_to_documents(
        read_rows(path), Source(id="s", kind="files", voice="patient", columns={"author": "Navn"})
    )
    assert named.author == "Kari Nordmann" and "Navn" not in named.extra


def test_truncated_csv_keeps_what_was_written(tmp_path: Path) -> None:
    path = tmp_path / "avbrutt.csv"
    full = 'tekst;dato\n"Første kommentar, med komma";01.11.2026\nAndre kommentar;02.11.2026\n"Tredje kommentar som ble kut'
    path.write_text(full, encoding="utf-8")
    fr = read_rows(path)
    docs = rows_to_documents(fr, Source(id="s", kind="files", voice="patient"))
    assert [d.text for d in docs][:2] == ["Første kommentar, med komma", "Andre kommentar"]
    assert docs[2].text.startswith("Tredje kommentar")  # the cut row is kept as far as it goes
    # Cut in the middle of the header: no text column, a clear error (nothing half-imported).
    head_only = tmp_path / "bare-hode.csv"
    head_only.write_text("tek", encoding="utf-8")
    with pytest.raises(ImportFileError, match="no 'text' column"):
        rows_to_documents(read_rows(head_only), Source(id="s", kind="files", voice="patient"))


@pytest.mark.parametrize("delimiter", [";", ",", "\t", "|"])
def test_delimiter_is_detected_even_with_commas_in_comments(tmp_path: Path, delimiter: str) -> None:
    rows = [
        ["tekst", "vurdering"],
        ["Bra, men treg", "4"],
        ["Helt greit; ingen klager", "5"],
        ["Dårlig", "1"],
    ]
    quote = lambda v: f'"{v}"' if delimiter in v else v  # noqa: E731
    path = tmp_path / "x.csv"
    path.write_text("\n".join(delimiter.join(quote(v) for v in r) for r in rows) + "\n", encoding="utf-8")
    docs = rows_to_documents(read_rows(path), Source(id="s", kind="files", voice="patient"))
    assert [(d.text, d.rating) for d in docs] == [
        ("Bra, men treg", 4),
        ("Helt greit; ingen klager", 5),
        ("Dårlig", 1),
    ]

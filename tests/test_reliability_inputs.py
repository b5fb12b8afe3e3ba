"""Reliability catalogue, round two (docs/reliability.md, "Round two: feedback files and imports"): hostile and
messy feedback files through the real pass (`tonevakt collect` with an inbox beside a feed on the local server)
and the real `tonevakt import`, into real DuckDB files."""

from __future__ import annotations

import json
import subprocess
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import duckdb
import openpyxl
from click.testing import CliRunner, Result

from tests.support.localserver import LocalServer, Route
from tests.support.paths import tonevakt_command
from tonevakt import pipeline
from tonevakt.cli import main
from tonevakt.collectors import files
from tonevakt.config import Settings
from tonevakt.errors import ImportFileError

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Nyheter</title><link>http://127.0.0.1/</link>
<item><title>Helseplattformen får kritikk fra legene</title><link>http://127.0.0.1/sak/1</link>
<guid>http://127.0.0.1/sak/1</guid><pubDate>Mon, 23 Nov 2026 08:00:00 +0100</pubDate>
<description>Legene ved St. Olavs hospital sier Helseplattformen fortsatt er treg.</description></item>
<item><title>HelsaMi har fått ny versjon</title><link>http://127.0.0.1/sak/2</link>
<guid>http://127.0.0.1/sak/2</guid><pubDate>Tue, 24 Nov 2026 08:00:00 +0100</pubDate>
<description>Pasientene kan nå se prøvesvar raskere i HelsaMi.</description></item>
</channel></rss>"""
INBOX_COLUMNS = {"text": "Kommentar", "published_at": "Dato", "rating": "Score"}


def cli(settings: Settings, *args: str) -> Result:
    return CliRunner().invoke(main, ["--config", settings.file, *args])


def query(settings: Settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.db_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def inbox_and_feed(make_settings: Callable[..., Settings], server: LocalServer, **inbox: object) -> Settings:
    url = server.add("/nyheter.xml", Route(body=FEED, content_type="application/rss+xml; charset=utf-8"))
    return make_settings(
        sources=[
            {"id": "nyheter", "kind": "rss", "voice": "media", "url": url, "full_text": "never"},
            {
                "id": "skjema",
                "kind": "files",
                "voice": "patient",
                "path": "innboks",
                "columns": INBOX_COLUMNS,
                "relevance": "always",
                **inbox,
            },
        ]
    )


# -- ratings no database column can hold; JSON nested 100,000 levels deep ------------------------------------


def test_absurd_ratings_and_a_deeply_nested_file_cost_no_other_file_or_source(
    tmp_path: Path, make_settings: Callable[..., Settings], local_server: LocalServer
) -> None:
    settings = inbox_and_feed(make_settings, local_server)
    inbox = tmp_path / "innboks"
    inbox.mkdir()
    (inbox / "a-karakterer.csv").write_text(
        "Dato;Kommentar;Score\n20.11.2026;Helseplattformen virket fint i dag;99999999999\n"
        "21.11.2026;HelsaMi var grei å bruke;1e400\n22.11.2026;Lang kø i skranken;inf\n"
        "23.11.2026;Fikk time raskt;4\n24.11.2026;Legen hørte ikke etter;0\n",
        encoding="utf-8",
    )
    (inbox / "b-dyp.jsonl").write_text("[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    (inbox / "c-dypt-felt.jsonl").write_text(
        json.dumps({"Kommentar": "Bra", "meta": json.loads("[" * 900 + "]" * 900)}) + "\n", encoding="utf-8"
    )  # parses, but 900 levels would break redaction and storage of the whole batch later
    (inbox / "d-god.csv").write_text(
        "Dato;Kommentar;Score\n25.11.2026;Fin behandling på Øya;5\n", encoding="utf-8"
    )

    first = cli(settings, "collect")
    assert first.exit_code == 0, first.output
    assert "Traceback" not in first.output and "sources ok 2, failed 0" in first.output
    assert "new 8" in first.output  # 2 news items + 5 rated rows + the good file's row
    stored = dict(query(settings, "SELECT text, rating FROM documents WHERE source_id = 'skjema'"))
    assert stored == {
        "Helseplattformen virket fint i dag": None,
        "HelsaMi var grei å bruke": None,
        "Lang kø i skranken": None,
        "Fikk time raskt": 4,
        "Legen hørte ikke etter": None,
        "Fin behandling på Øya": 5,
    }
    assert query(settings, "SELECT count(*) FROM documents WHERE source_id = 'nyheter'") == [(2,)]
    # Each problem is named where the user looks: the log (stderr) and the source's fetch-log reason.
    assert (
        "kept without it: row 1 ('99999999999'), row 2 ('1e400'), row 3 ('inf'), row 5 ('0')" in first.output
    )
    assert (
        "'b-dyp.jsonl' not imported" in first.output
        and "line 1 nests lists or objects more than 20" in first.output
    )
    (reason,) = query(settings, "SELECT reason FROM fetch_log WHERE source_id = 'skjema'")[0]
    assert reason.startswith("2 new file(s) read, 2 refused or unreadable: 'b-dyp.jsonl' not imported:")
    assert "'c-dypt-felt.jsonl' not imported" in reason
    files_in = sorted(Path(p).name for (p,) in query(settings, "SELECT path FROM imported_files"))
    assert files_in == ["a-karakterer.csv", "d-god.csv"]

    second = cli(settings, "collect", "--force")  # the next pass neither crashes nor stores anything twice
    assert second.exit_code == 0 and "new 0" in second.output
    # Still named, never silently dropped:
    assert "failed: skjema: 'b-dyp.jsonl' not imported" in second.output
    assert query(settings, "SELECT count(*) FROM documents") == [(8,)]


def test_import_of_a_deeply_nested_file_is_a_clear_message_in_a_real_process(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    exe = tonevakt_command()
    deep = tmp_path / "dyp.jsonl"
    deep.write_text('{"Kommentar": "ok"}\n' + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    run = subprocess.run(
        [exe, "--config", settings.file, "import", str(deep), "--source", "skjema", "--voice", "patient"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert f"Error: {deep}: line 2 nests lists or objects more than 20 levels deep" in run.stderr
    assert not settings.db_path.exists()  # a refused file never opens the database

    rated = tmp_path / "karakterer.jsonl"
    rated.write_text(
        json.dumps({"Kommentar": "Helseplattformen er treg", "Score": 1e300})
        + "\n"
        + json.dumps({"Kommentar": "HelsaMi er fin", "Score": "5"})
        + "\n",
        encoding="utf-8",
    )
    res = cli(settings, "import", str(rated), "--source", "skjema", "--voice", "patient")
    assert res.exit_code == 0, res.output
    assert (
        "a rating that is not a number from 1 to 5 in 1 row(s), kept without it: row 1 ('1000000000000000052…')"
        in res.output
    )
    assert "2 rows read, 2 new documents" in res.output
    assert dict(query(settings, "SELECT text, rating FROM documents")) == {
        "Helseplattformen er treg": None,
        "HelsaMi er fin": 5,
    }


# -- XLSX: a row limit, streamed reads -----------------------------------------------------------------------


def big_workbook(path: Path, rows: int) -> None:
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet()
    ws.append(["Dato", "Kommentar", "Score"])
    for i in range(rows):
        ws.append(["23.11.2026", f"Kommentar nummer {i} om HelsaMi", 3])
    wb.save(path)


def test_workbook_over_the_row_limit_is_refused_by_name_and_the_rest_still_lands(
    tmp_path: Path, make_settings: Callable[..., Settings], local_server: LocalServer
) -> None:
    settings = inbox_and_feed(make_settings, local_server, max_rows=50)
    inbox = tmp_path / "innboks"
    inbox.mkdir()
    big_workbook(inbox / "eksport.xlsx", 51)
    big_workbook(inbox / "liten.xlsx", 50)  # exactly at the limit: imported
    res = cli(settings, "collect")
    assert res.exit_code == 0, res.output
    assert "'eksport.xlsx' not imported" in res.output
    assert "eksport.xlsx: more than 50 rows; the limit is 50 per file" in res.output
    assert query(settings, "SELECT source_id, count(*) FROM documents GROUP BY 1 ORDER BY 1") == [
        ("nyheter", 2),
        ("skjema", 50),
    ]
    # `tonevakt import` follows the source's limit, and --max-rows overrides it.
    big = tmp_path / "stor.xlsx"
    big_workbook(big, 120)
    refused = cli(settings, "import", str(big), "--source", "skjema")
    assert refused.exit_code == 1 and "more than 50 rows; the limit is 50 per file" in refused.output
    ok = cli(settings, "import", str(big), "--source", "skjema", "--max-rows", "120")
    assert ok.exit_code == 0, ok.output
    assert "120 rows read, 70 new documents" in ok.output  # 50 were stored from liten.xlsx


def test_workbook_far_over_the_limit_stops_early_in_bounded_time_and_memory(tmp_path: Path) -> None:
    path = tmp_path / "stor.xlsx"
    big_workbook(path, 20_000)
    data = path.read_bytes()

    def measure(max_rows: int) -> tuple[float, int, int | None]:
        t0 = time.monotonic()
        try:
            rows: int | None = len(files.parse_rows(data, path, max_rows=max_rows).rows)
        except ImportFileError as e:
            assert f"more than {max_rows:,} rows; the limit is {max_rows:,} per file" in str(e)
            rows = None
        seconds = time.monotonic() - t0
        tracemalloc.start()
        try:
            files.parse_rows(data, path, max_rows=max_rows)
        except ImportFileError:
            pass
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return seconds, peak, rows

    limited_s, limited_peak, limited_rows = measure(1_000)
    full_s, full_peak, full_rows = measure(20_000)
    assert limited_rows is None and full_rows == 20_000  # refused at the limit; read whole under it
    # Streamed and stopped at the limit: a fraction of the full read's memory (what remains is opening the
    # workbook and its table of shared strings). The times are printed, not asserted: on a busy machine a
    # wall-clock ratio says little (the memory, traced by Python, does not depend on the load).
    print(
        f"row limit 1,000: {limited_s:.2f}s, peak {limited_peak:,} B; whole 20,000 rows: {full_s:.2f}s, peak {full_peak:,} B"
    )
    assert limited_peak < full_peak / 3, (limited_peak, full_peak)


# -- the same file under a second source ---------------------------------------------------------------------


def test_same_file_under_a_second_source_is_refused_then_counted_once_with_again(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    path = tmp_path / "uke48.csv"
    path.write_text(
        "Dato;Kommentar\n23.11.2026;Bra app\n24.11.2026;Treg innlogging i dag\n25.11.2026;Fikk svar fort\n",
        encoding="utf-8",
    )
    assert cli(settings, "import", str(path), "--source", "skjema-a", "--voice", "patient").exit_code == 0
    copy = tmp_path / "kopi.csv"
    copy.write_bytes(path.read_bytes())
    refused = cli(settings, "import", str(copy), "--source", "skjema-b", "--voice", "patient")
    assert refused.exit_code == 1
    assert "already imported into source 'skjema-a'" in refused.output and "Give --again" in refused.output
    assert query(settings, "SELECT count(*) FROM documents") == [(3,)]

    again = cli(settings, "import", str(copy), "--source", "skjema-b", "--voice", "patient", "--again")
    assert again.exit_code == 0, again.output
    assert "3 new documents" in again.output and "identical texts of one voice share a story" in again.output
    assert query(settings, "SELECT count(*), count(DISTINCT story_id) FROM documents") == [(6, 3)]
    for (doc_id,) in query(settings, "SELECT id FROM documents"):  # human labels put them in weekly_tone
        assert cli(settings, "label", doc_id, "positive").exit_code == 0
    assert query(settings, "SELECT sum(n) FROM weekly_tone WHERE voice = 'patient'") == [(3,)]
    # Another voice is another count: the same texts as union statements are stories of their own.
    union = cli(settings, "import", str(path), "--source", "forbund", "--voice", "union", "--again")
    assert union.exit_code == 0, union.output
    assert query(settings, "SELECT voice, count(DISTINCT story_id) FROM documents GROUP BY 1 ORDER BY 1") == [
        ("patient", 3),
        ("union", 3),
    ]
    assert not query(
        settings,
        """SELECT story_id FROM documents GROUP BY 1
                                  HAVING count(DISTINCT voice) > 1""",
    )


# -- relevance of ad-hoc imports -----------------------------------------------------------------------------

ARCHIVE = (
    "tittel;tekst;dato\n"
    "Helseplattformen koster mer;Helse Midt-Norge må bruke mer penger på Helseplattformen.;20.11.2026\n"
    "Nytt i HelsaMi;Pasienter kan se journalen i HelsaMi.;21.11.2026\n"
    "Ny bybro i Trondheim;Kommunen åpner en ny bro over Nidelva.;22.11.2026\n"
    "Rosenborg vant;Rosenborg vant 3-1 på Lerkendal.;23.11.2026\n"
    "Journalsystemet feiler;Helseplattforma var nede i to timer i natt.;24.11.2026\n"
)


def test_ad_hoc_news_import_applies_the_relevance_query_and_says_how_many(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings()
    path = tmp_path / "arkiv.csv"
    path.write_text(ARCHIVE, encoding="utf-8")
    res = cli(settings, "import", str(path), "--source", "arkiv", "--voice", "media")
    assert res.exit_code == 0, res.output
    assert (
        "5 rows read, 5 new documents, 0 already stored or empty; 3 of 5 judged relevant by the relevance "
        "query" in res.output
    )
    assert query(settings, "SELECT title FROM documents WHERE NOT relevant ORDER BY 1") == [
        ("Ny bybro i Trondheim",),
        ("Rosenborg vant",),
    ]

    patient = tmp_path / "skjema.csv"
    patient.write_text("tekst\nVenterommet var kaldt\nHelsaMi hjalp meg\n", encoding="utf-8")
    res = cli(settings, "import", str(patient), "--source", "skjema", "--voice", "patient")
    assert "2 of 2 judged relevant (always relevant)" in res.output  # patient feedback keeps "always"
    res = cli(
        settings,
        "import",
        str(patient),
        "--source",
        "skjema2",
        "--voice",
        "patient",
        "--relevance",
        "query",
        "--again",
    )
    assert res.exit_code == 0 and "1 of 2 judged relevant by the relevance query" in res.output

    union = tmp_path / "forbund.csv"
    union.write_text("tekst\nLønnsoppgjøret er i havn\nHelseplattformen stjeler tid\n", encoding="utf-8")
    res = cli(
        settings, "import", str(union), "--source", "forbund", "--voice", "union", "--relevance", "always"
    )
    assert res.exit_code == 0 and "2 of 2 judged relevant (always relevant)" in res.output
    relevant = query(settings, "SELECT count(*) FROM documents WHERE source_id = 'forbund' AND relevant")
    assert relevant == [(2,)]


def test_import_summary_counts_relevant_rows_for_a_configured_source(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(sources=[{"id": "arkiv", "kind": "files", "voice": "media", "path": "arkiv"}])
    path = tmp_path / "arkiv.csv"
    path.write_text(ARCHIVE, encoding="utf-8")
    summary = pipeline.import_file(settings, path, "arkiv")
    assert (summary.rows, summary.new, summary.documents, summary.relevant) == (5, 5, 5, 3)
    assert summary.relevance == "query"

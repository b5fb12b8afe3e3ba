"""`tonevakt sql` is read-only for real (issue 16, critical): every attempt to write a file, replace the database,
attach, import, install or load an extension, reach the network or change the connection's settings is refused
with a clear message, and leaves every file (the database, the snapshot, the exports, the config, the user's
DuckDB home) byte-identical. Through the CLI, against a real DuckDB file and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.localserver import LocalServer, Route
from tests.support.lock import hold_database
from tests.support.paths import tonevakt_command
from tonevakt import pipeline
from tonevakt.cli import main
from tonevakt.config import Settings
from tonevakt.models import Document
from tonevakt.storage import repository as repo
from tonevakt.storage.db import database


@pytest.fixture
def analyst(
    make_settings: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """A database file with 12 documents, its published snapshot and exports, and a folder laid out for
    `PRAGMA import_database` whose SQL would write a file. DuckDB's home (extensions) is inside tmp_path."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    settings = make_settings(sources=[{"id": "s", "kind": "files", "voice": "patient", "path": "innboks"}])
    pipeline.init(settings)
    with database(settings.db_path) as db:
        repo.store_batch(
            db,
            [
                Document(
                    source_id="s",
                    voice="patient",
                    title=f"Sak {i}",
                    text=f"Helseplattformen sak {i}",
                    url=f"http://127.0.0.1/sak/{i}",
                )
                for i in range(12)
            ],
        )
        db.execute("CHECKPOINT")
    pipeline.publish(settings)
    dump = tmp_path / "dump"
    dump.mkdir()
    (dump / "schema.sql").write_text(f"COPY (SELECT 'pwned' AS x) TO '{tmp_path / 'pwned.csv'}';\n")
    (dump / "load.sql").write_text(f"COPY (SELECT 'pwned' AS x) TO '{tmp_path / 'pwned2.csv'}';\n")
    return settings


def hashes(root: Path) -> dict[str, str]:
    """Every file under root (and the folders, as entries), with the SHA-256 of its bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        key = str(p.relative_to(root))
        out[key] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


def sql(settings: Settings, query: str, *flags: str) -> tuple[int, str]:
    res = CliRunner().invoke(main, ["--config", settings.file, "sql", *flags, query])
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    return res.exit_code, res.output


def attempts(settings: Settings, tmp: Path, server: LocalServer) -> list[tuple[str, str]]:
    """(statement, what the message says): the issue's reproductions first, then the other attempts."""
    db, snap, out = settings.db_path, settings.snapshot_path, tmp / "out"
    csv_url = server.add("/x.csv", Route(body="a,b\n1,2\n", content_type="text/csv"))
    return [
        # the issue's reproductions
        (f"EXPLAIN ANALYZE COPY (SELECT 42 AS a) TO '{tmp / 'x.csv'}'", "EXPLAIN ANALYZE runs the statement"),
        (
            f"EXPLAIN ANALYZE COPY (SELECT 1 AS gone) TO '{db}' (FORMAT csv)",
            "EXPLAIN ANALYZE runs the statement",
        ),
        (
            f"EXPLAIN ANALYZE COPY (SELECT 1 AS gone) TO '{snap}' (FORMAT csv)",
            "EXPLAIN ANALYZE runs the statement",
        ),
        (f"PRAGMA import_database('{tmp / 'dump'}')", "PRAGMA statement"),
        ("EXPLAIN ANALYZE INSTALL httpfs", "EXPLAIN ANALYZE runs the statement"),
        (f"SELECT * FROM read_csv('{csv_url}')", "refused by the database's sandbox"),
        # other spellings of EXPLAIN ANALYZE
        (f"EXPLAIN (ANALYZE) COPY documents TO '{tmp / 'x.csv'}'", "EXPLAIN ANALYZE runs the statement"),
        (
            f"EXPLAIN (ANALYZE false) COPY documents TO '{tmp / 'x.csv'}'",
            "EXPLAIN ANALYZE runs the statement",
        ),
        (f"explain (format json, analyze) copy documents to '{tmp / 'x.csv'}'", "EXPLAIN ANALYZE runs"),
        (
            f"explain /* x */ analyse copy documents to '{tmp / 'x.csv'}'",
            "EXPLAIN ANALYZE runs the statement",
        ),
        (f"EXPLAIN COPY documents TO '{tmp / 'x.csv'}'", "EXPLAIN is allowed for a read only, not for COPY"),
        # writing files
        (f"COPY documents TO '{tmp / 'x.csv'}'", "COPY statement"),
        (f"COPY (SELECT 1) TO '{db}' (FORMAT csv)", "COPY statement"),
        (f"EXPORT DATABASE '{out}'", "EXPORT statement"),
        (f"SELECT 1; COPY documents TO '{tmp / 'x.csv'}'", "give one statement, not 2"),
        (
            f"SELECT * FROM query('COPY documents TO ''{tmp / 'x.csv'}''')",
            "Expected a single SELECT statement",
        ),
        # importing and attaching
        (f"IMPORT DATABASE '{tmp / 'dump'}'", "PRAGMA statement"),
        (f"ATTACH '{tmp / 'new.duckdb'}' AS n", "ATTACH statement"),
        (f"ATTACH '{db}' AS w", "ATTACH statement"),
        ("DETACH tonevakt", "DETACH statement"),
        # extensions and the network
        ("INSTALL httpfs", "LOAD statement"),
        ("LOAD httpfs", "LOAD statement"),
        ("FORCE INSTALL httpfs FROM core_nightly", "LOAD statement"),
        (f"SELECT * FROM read_parquet('{server.url('/x.parquet')}')", "refused by the database's sandbox"),
        (
            f"SUMMARIZE SELECT * FROM read_json('{server.url('/x.json')}')",
            "refused by the database's sandbox",
        ),
        # reading other files
        (f"SELECT * FROM read_text('{settings.file}')", "refused by the database's sandbox"),
        (f"SELECT * FROM glob('{tmp}/*')", "refused by the database's sandbox"),
        # settings: the sandbox cannot be switched off from inside
        ("SET enable_external_access = true", "SET statement"),
        ("SET lock_configuration = false", "SET statement"),
        ("RESET autoload_known_extensions", "SET statement"),
        (f"SET profiling_output = '{tmp / 'p.json'}'", "SET statement"),
        ("PRAGMA enable_profiling", "PRAGMA statement"),
        (
            f"SELECT * FROM enable_logging(storage = 'file', storage_path = '{tmp / 'log'}')",
            "has been locked",
        ),
        ("CALL enable_logging()", "CALL statement"),
        # writing the database
        ("DELETE FROM documents", "DELETE statement"),
        ("WITH d AS (DELETE FROM documents RETURNING *) SELECT count(*) FROM d", "holds a DELETE"),
        ("CREATE TABLE t AS SELECT 1", "CREATE statement"),
        ("CREATE SECRET s (TYPE http, BEARER_TOKEN 'x')", "CREATE statement"),
        ("CHECKPOINT", "CALL statement"),
        ("VACUUM", "VACUUM statement"),
    ]


def test_every_write_attempt_is_refused_and_every_file_stays_byte_identical(
    analyst: Settings, tmp_path: Path, local_server: LocalServer
) -> None:
    before = hashes(tmp_path)
    assert {"data/tonevakt.duckdb", "data/analyst.duckdb", "config.yaml"} <= set(before)
    tried = attempts(analyst, tmp_path, local_server)
    assert len(tried) >= 16
    wrong = []
    for query, message in tried:
        for flags in ((), ("--snapshot",)):
            code, output = sql(analyst, query, *flags)
            if code != 1 or message not in output or "Traceback" in output:
                wrong.append(f"{flags} {query!r}: exit {code}: {output.strip()[:300]}")
            after = hashes(tmp_path)
            if after != before:
                changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
                wrong.append(f"{flags} {query!r} changed {changed}")
                before = after
    assert not wrong, "\n".join(wrong)
    assert local_server.requests == []  # no request reached the (local) network
    # The database and its snapshot are still whole and readable.
    code, output = sql(analyst, "SELECT count(*) AS n FROM documents", "--csv")
    assert (code, output.splitlines()) == (0, ["n", "12"])


def test_reads_keep_working_on_the_database_and_the_snapshot(analyst: Settings, tmp_path: Path) -> None:
    before = hashes(tmp_path)
    reads = {
        "SELECT count(*) AS n FROM documents": "12",
        "WITH t AS (SELECT title FROM documents) SELECT count(*) AS n FROM t": "12",
        "FROM documents SELECT count(*) AS n": "12",
        "SELECT count FROM (SUMMARIZE documents) WHERE column_name = 'id'": "12",
        "SUMMARIZE documents": "id",
        "DESCRIBE documents": "source_id",
        "SHOW TABLES": "weekly_tone",
        "EXPLAIN SELECT count(*) FROM documents": "physical_plan",
        "EXPLAIN (FORMAT json) SELECT title FROM documents": "physical_plan",
        "explain -- the plan\n select 1": "physical_plan",
        "SELECT voice, count(*) AS n FROM documents GROUP BY voice;": "patient,12",
        "SELECT 1 AS a UNION ALL SELECT 2": "2",
    }
    for flags in ((), ("--snapshot",)):
        for query, expected in reads.items():
            code, output = sql(analyst, query, "--csv", *flags)
            assert code == 0, (flags, query, output)
            assert expected in output, (flags, query, output)
    assert hashes(tmp_path) == before


def test_busy_database_falls_back_to_the_snapshot_inside_the_sandbox(
    analyst: Settings, tmp_path: Path
) -> None:
    """While another process holds the main file, `sql` reads the snapshot, still in the sandbox: the issue's
    `EXPLAIN ANALYZE COPY … TO '<database.path>'` is refused and the snapshot and the database stay whole."""
    with hold_database(analyst.db_path):
        before = hashes(tmp_path / "data")
        code, output = sql(analyst, "SELECT count(*) AS n FROM documents", "--csv")
        assert (code, output.splitlines()[-2:]) == (0, ["n", "12"]), output
        for target in (analyst.db_path, analyst.snapshot_path):
            code, output = sql(analyst, f"EXPLAIN ANALYZE COPY (SELECT 1 AS gone) TO '{target}' (FORMAT csv)")
            assert code == 1 and "EXPLAIN ANALYZE runs the statement" in output
        code, output = sql(analyst, f"SELECT * FROM read_text('{analyst.file}')")
        assert code == 1 and "refused by the database's sandbox" in output
        assert hashes(tmp_path / "data") == before


def test_installed_command_refuses_the_issues_copy_and_leaves_the_database(
    analyst: Settings, tmp_path: Path
) -> None:
    exe = tonevakt_command()
    before = hashes(tmp_path)
    for flags in ([], ["--snapshot"]):
        run = subprocess.run(
            [
                exe,
                "--config",
                analyst.file,
                "sql",
                *flags,
                f"EXPLAIN ANALYZE COPY (SELECT 1 AS gone) TO '{analyst.db_path}' (FORMAT csv)",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 1 and "refused: EXPLAIN ANALYZE runs the statement" in run.stderr, run.stderr
    run = subprocess.run(
        [exe, "--config", analyst.file, "sql", "--json", "SELECT count(*) AS n FROM documents"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0 and '"n": 12' in run.stdout
    assert hashes(tmp_path) == before


def test_a_query_nested_too_deeply_is_a_clear_error_not_a_traceback(analyst: Settings) -> None:
    for depth, message in ((400, "nested too deeply to check"), (2000, "Max expression depth")):
        query = "SELECT " + "(SELECT " * depth + "1" + ")" * depth
        code, output = sql(analyst, query)
        assert code == 1 and "refused" in output and message in output and "Traceback" not in output, output[
            :300
        ]

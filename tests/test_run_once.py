"""`tonevakt run --once` without reachable sources: the pass finishes, failures are recorded with reasons."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import duckdb
from click.testing import CliRunner

from tonevakt.cli import main
from tonevakt.config import Settings


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_once_offline_finishes_and_records_each_failure(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    port = _closed_port()
    make_settings(
        sources=[
            {
                "id": "nrk-trondelag",
                "kind": "rss",
                "voice": "media",
                "url": f"http://127.0.0.1:{port}/toppsaker.rss",
            },
            {
                "id": "legeforeningen",
                "kind": "web",
                "voice": "union",
                "url": f"http://127.0.0.1:{port}/nyheter/",
            },
            {
                "id": "helsami",
                "kind": "appstore",
                "voice": "patient",
                "app_id": "1",
                "relevance": "always",
                "url": f"http://127.0.0.1:{port}/{{country}}/page={{page}}/id={{app_id}}/json",
            },
            {"id": "inbox", "kind": "files", "voice": "patient", "path": "inbox", "relevance": "always"},
        ]
    )
    (tmp_path / "inbox").mkdir()
    (tmp_path / "inbox" / "uke47.csv").write_text(
        "text;date;rating\nHelsaMi er blitt mye bedre, enkelt å bestille time.;18.11.2026;5\n"
        "Helseplattformen gjorde at jeg måtte vente i to timer på medisinene.;19.11.2026;1\n",
        encoding="utf-8",
    )
    res = CliRunner().invoke(main, ["--config", str(tmp_path / "config.yaml"), "run", "--once"])
    assert res.exit_code == 0, res.output
    assert "sources ok 1, failed 3" in res.output
    assert "new 2" in res.output and "scored 2" in res.output
    for sid in ("nrk-trondelag", "legeforeningen", "helsami"):
        assert f"failed: {sid}: " in res.output
    assert (tmp_path / "data" / "analyst.duckdb").exists()
    assert (tmp_path / "data" / "exports" / "weekly_tone.parquet").exists()

    con = duckdb.connect(str(tmp_path / "data" / "analyst.duckdb"), read_only=True)
    health = dict(con.execute("SELECT id, last_error FROM sources WHERE consecutive_failures > 0").fetchall())
    assert set(health) == {"nrk-trondelag", "legeforeningen", "helsami"}
    assert all("refused" in reason.lower() for reason in health.values()), health
    assert con.execute("SELECT count(*) FROM scores").fetchone() == (2,)
    con.close()

    res = CliRunner().invoke(main, ["--config", str(tmp_path / "config.yaml"), "sources", "--json"])
    rows = {r["id"]: r for r in json.loads(res.output)}
    assert rows["inbox"]["last_status"] == "ok" and rows["nrk-trondelag"]["last_status"] == "temporary"


def test_run_once_with_unwritable_database_fails(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x", encoding="utf-8")
    make_settings(database={"path": str(blocker / "tonevakt.duckdb")})
    res = CliRunner().invoke(main, ["--config", str(tmp_path / "config.yaml"), "run", "--once"])
    assert res.exit_code == 1
    assert "cannot create the database folder" in res.output

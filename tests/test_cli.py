"""The CLI in-process (click's CliRunner) and once as a real subprocess of the installed command."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.support.paths import tonevakt_command
from tonevakt.cli import main
from tonevakt.config import Settings

JSONL = [
    {
        "text": "HelsaMi fungerer fint, jeg fikk time på en dag.",
        "title": "Fornøyd",
        "date": "2026-11-18",
        "rating": 5,
        "ward": "Kirurgen",
    },
    {
        "text": "Helseplattformen gjør at legen bruker mer tid på skjermen enn på meg.",
        "published_at": "2026-11-19T08:30:00+01:00",
        "rating": "2",
    },
    {"text": "Æ e fornøgd med oppfølginga på St. Olavs, men appen krasjer.", "author": "Pasient i Trondheim"},
]


@pytest.fixture
def cfg(make_settings: Callable[..., Settings], tmp_path: Path) -> Path:
    make_settings(
        sources=[{"id": "inbox", "kind": "files", "voice": "patient", "path": "inbox", "relevance": "always"}]
    )
    return tmp_path / "config.yaml"


def invoke(cfg: Path, *args: str) -> object:
    return CliRunner().invoke(main, ["--config", str(cfg), *args], catch_exceptions=False)


def test_every_command_has_help() -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["--help"])
    assert res.exit_code == 0
    commands = [
        "init",
        "collect",
        "score",
        "report",
        "run",
        "trend",
        "sql",
        "export",
        "import",
        "evaluate",
        "label",
        "sources",
        "dashboard",
    ]
    for c in commands:
        assert c in res.output, c
        sub = runner.invoke(main, [c, "--help"])
        assert sub.exit_code == 0, (c, sub.output)
        assert "Usage:" in sub.output


def test_sql_refuses_json_and_csv_together(cfg: Path) -> None:
    res = CliRunner().invoke(main, ["--config", str(cfg), "sql", "SELECT 42 AS answer", "--json", "--csv"])
    assert res.exit_code == 2 and "give --json or --csv, not both" in res.output
    assert "answer" not in res.output and "42" not in res.output  # nothing printed as JSON (or CSV)


def test_model_help_lists_each_command_once_and_the_old_fine_tune_name_still_runs() -> None:
    runner = CliRunner()
    res = runner.invoke(main, ["model", "--help"])
    assert res.exit_code == 0
    listed = [line.split()[0] for line in res.output.split("Commands:")[1].splitlines() if line.strip()]
    assert sorted(listed) == sorted(set(listed)) and "train" in listed and "fine-tune" not in listed
    old = runner.invoke(main, ["model", "fine-tune", "--help"])
    assert old.exit_code == 0 and "Reproduce the NoReC ensemble" in old.output


def test_import_jsonl_twice_same_count(cfg: Path, tmp_path: Path) -> None:
    f = tmp_path / "feedback.jsonl"
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in JSONL), encoding="utf-8")
    res = invoke(cfg, "import", str(f), "--source", "inbox")
    assert res.exit_code == 0, res.output
    assert "3 rows read, 3 new documents" in res.output
    assert "ward" in res.output  # unknown columns are reported, and kept
    res = invoke(cfg, "import", str(f), "--source", "inbox")
    assert "0 new documents" in res.output
    res = invoke(cfg, "sql", "select count(*) as n, count(rating) as rated from documents", "--json")
    assert json.loads(res.output) == [{"n": 3, "rated": 2}]
    res = invoke(
        cfg,
        "sql",
        "select json_extract_string(extra, '$.ward') as ward from documents where rating = 5",
        "--csv",
    )
    assert res.output.splitlines() == ["ward", "Kirurgen"]


def test_import_new_source_needs_voice(cfg: Path, tmp_path: Path) -> None:
    f = tmp_path / "f.csv"
    f.write_text("text;dato\nBra app;01.11.2026\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["--config", str(cfg), "import", str(f), "--source", "survey"])
    assert res.exit_code == 1 and "give --voice" in res.output
    res = invoke(cfg, "import", str(f), "--source", "survey", "--voice", "patient")
    assert res.exit_code == 0 and "1 new documents" in res.output


def test_sql_refuses_delete_with_clear_message(cfg: Path) -> None:
    assert invoke(cfg, "init").exit_code == 0
    res = CliRunner().invoke(main, ["--config", str(cfg), "sql", "delete from documents"])
    assert res.exit_code == 1
    assert "refused" in res.output and "DELETE" in res.output


def test_bad_config_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("relevance:\n  query: x\nhttp:\n  timeout: 3\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["--config", str(bad), "init"])
    assert res.exit_code == 1
    assert f"{bad}:4: unknown key 'http.timeout'" in res.output


def test_sources_and_export(cfg: Path, tmp_path: Path) -> None:
    assert invoke(cfg, "init").exit_code == 0
    assert (tmp_path / "inbox").is_dir()  # a fresh install starts with an empty inbox, not an error
    res = invoke(cfg, "sources")
    assert res.exit_code == 0 and "inbox" in res.output and "never fetched" in res.output
    res = invoke(cfg, "export", "--parquet", str(tmp_path / "pq"))
    assert res.exit_code == 0 and (tmp_path / "pq" / "weekly_tone.parquet").exists()


def test_label_command(cfg: Path, tmp_path: Path) -> None:
    f = tmp_path / "f.jsonl"
    f.write_text(json.dumps(JSONL[0], ensure_ascii=False), encoding="utf-8")
    invoke(cfg, "import", str(f), "--source", "inbox")
    doc_id = json.loads(invoke(cfg, "sql", "select id from documents", "--json").output)[0]["id"]
    res = invoke(cfg, "label", doc_id, "Positive", "--by", "RBU")
    assert res.exit_code == 0
    res = invoke(cfg, "sql", "select label, labelled_by from labels", "--json")
    assert json.loads(res.output) == [{"label": "positive", "labelled_by": "RBU"}]
    res = CliRunner().invoke(main, ["--config", str(cfg), "label", "nope", "negative"])
    assert res.exit_code == 1 and "no document with id 'nope'" in res.output


def test_installed_command_as_subprocess(cfg: Path, tmp_path: Path) -> None:
    exe = tonevakt_command()
    f = tmp_path / "f.jsonl"
    f.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in JSONL), encoding="utf-8")
    run = subprocess.run(
        [exe, "--config", str(cfg), "import", str(f), "--source", "inbox"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    run = subprocess.run(
        [exe, "--config", str(cfg), "sql", "select count(*) n from documents", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert json.loads(run.stdout) == [{"n": 3}]
    run = subprocess.run(
        [exe, "--config", str(cfg), "sql", "drop table documents"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1 and "refused" in run.stderr

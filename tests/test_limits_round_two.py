"""Issue 16, the low items, each through the CLI: a YAML alias bomb in config.yaml, infinite and huge numbers in
the config, unbounded numeric options, the snapshot configured as the database itself, terminal escape
sequences in a file name, control characters (NUL) in the report's HTML and CSV, and the report folder a full
disk used to leave behind."""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.support.paths import tonevakt_command
from tonevakt import dates, pipeline
from tonevakt.cli import main
from tonevakt.config import Settings
from tonevakt.dates import OSLO
from tonevakt.models import Document, Score
from tonevakt.storage import repository as repo
from tonevakt.storage.db import database

WEEK = "2026-W47"


def cli(config: Path | str, *args: str) -> Any:
    res = CliRunner().invoke(main, ["--config", str(config), *args])
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    return res


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# -- YAML alias bomb -------------------------------------------------------------------------------------------


def alias_bomb(levels: int, extra: str = "") -> str:
    names = "abcdefghij"
    lines = ["relevance:", "  query: helseplattform*", "a: &a [" + ", ".join(['"lol"'] * 9) + "]"]
    for i in range(1, levels):
        lines.append(f"{names[i]}: &{names[i]} [" + ", ".join([f"*{names[i - 1]}"] * 9) + "]")
    return "\n".join(lines) + "\n" + extra


def _limit_memory() -> None:  # the old line lookup took 4.6 GB; stop well before
    resource.setrlimit(resource.RLIMIT_AS, (2 * 1024**3, 2 * 1024**3))


def test_yaml_alias_bomb_is_refused_at_once_with_a_clear_error(tmp_path: Path) -> None:
    config = write_config(tmp_path, alias_bomb(8))  # 43 million values when expanded, and unknown keys
    run = subprocess.run(
        [tonevakt_command(), "--config", str(config), "sources"],
        capture_output=True,
        text=True,
        timeout=60,  # a hang guard: expanding the bomb would run out of the 2 GB limit or take minutes
        preexec_fn=_limit_memory,
    )
    assert run.returncode == 1, run.stderr[-2000:]
    assert "YAML aliases (*name) expand the configuration by" in run.stderr and "alias bomb" in run.stderr
    assert "Traceback" not in run.stderr
    # Smaller bombs too, and inside a known key (validation would walk every copy).
    for text in (alias_bomb(5), alias_bomb(5).replace("e: &e", "topics: &e")):
        res = cli(write_config(tmp_path, text), "sources")
        assert res.exit_code == 1 and "more than the 10,000 allowed" in res.output, res.output


def test_alias_that_contains_itself_is_a_clear_error(tmp_path: Path) -> None:
    res = cli(write_config(tmp_path, "relevance:\n  query: x\nloop: &l [1, *l]\n"), "sources")
    assert (
        res.exit_code == 1
        and "config.yaml:3: a YAML alias refers to the value that contains it" in res.output
    )


def test_ordinary_aliases_still_work_and_errors_still_name_their_line(tmp_path: Path) -> None:
    text = (
        "relevance:\n  query: helseplattform*\n"
        "sources:\n"
        "  - &web {kind: web, voice: union, url: 'http://127.0.0.1:9/a', interval_minutes: 60, id: a}\n"
        "  - {<<: *web, id: b}\n"
        "  - {<<: *web, id: c, interval_minutes: .inf}\n"
    )
    res = cli(write_config(tmp_path, text), "sources")
    assert res.exit_code == 1
    assert "config.yaml:6: bad value for 'sources.2.interval_minutes'" in res.output, res.output
    res = cli(write_config(tmp_path, text.replace(", interval_minutes: .inf", "")), "init")
    assert res.exit_code == 0, res.output


# -- numbers in the config ---------------------------------------------------------------------------------------

BASE = {
    "relevance": {"query": "helseplattform*"},
    "sources": [{"id": "s", "kind": "rss", "voice": "media", "url": "http://127.0.0.1:9/feed"}],
}


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        ("http", "connect_timeout_s", ".inf"),
        ("http", "read_timeout_s", ".nan"),
        ("http", "total_timeout_s", "1e300"),
        ("http", "per_host_interval_s", ".inf"),
        ("http", "max_retry_after_s", "1e12"),
        ("http", "max_body_bytes", "100000000000000000000"),
        ("database", "lock_timeout_s", ".inf"),
        ("report", "spike_factor", ".inf"),
        ("report", "tone_drop", ".nan"),
        ("report", "min_n", "1000000000000"),
        ("schedule", "misfire_grace_s", "1000000000000000"),
        ("relevance", "min_score", "1000000000"),
        ("sources.0", "interval_minutes", "1000000000000"),
    ],
)
def test_infinite_and_huge_numbers_are_refused_naming_key_and_line(
    tmp_path: Path, section: str, key: str, value: str
) -> None:
    data: dict[str, Any] = yaml.safe_load(yaml.safe_dump(BASE))
    target = data["sources"][0] if section == "sources.0" else data.setdefault(section, {})
    target[key] = "VALUE"
    text = yaml.safe_dump(data, sort_keys=False).replace("'VALUE'", value).replace("VALUE", value)
    line = next(i for i, s in enumerate(text.splitlines(), 1) if value in s)
    res = cli(write_config(tmp_path, text), "init")
    assert res.exit_code == 1, res.output
    assert f"config.yaml:{line}: bad value for '{section}.{key}'" in res.output, res.output
    assert not (tmp_path / "data").exists()  # nothing was created from a refused config


# -- the snapshot is not the database ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "snapshot", ["data/tonevakt.duckdb", "./data/../data/tonevakt.duckdb", "ABSOLUTE", "LINK"]
)
def test_snapshot_equal_to_the_database_is_refused(tmp_path: Path, snapshot: str) -> None:
    (tmp_path / "data").mkdir()
    if snapshot == "ABSOLUTE":
        snapshot = str(tmp_path / "data" / "tonevakt.duckdb")
    elif snapshot == "LINK":  # a symbolic link to the database file
        (tmp_path / "data" / "analyst.duckdb").symlink_to(tmp_path / "data" / "tonevakt.duckdb")
        snapshot = "data/analyst.duckdb"
    text = yaml.safe_dump({**BASE, "database": {"path": "data/tonevakt.duckdb", "snapshot": snapshot}})
    line = next(i for i, s in enumerate(text.splitlines(), 1) if s.strip().startswith("snapshot:"))
    res = cli(write_config(tmp_path, text), "init")
    assert res.exit_code == 1
    assert f"config.yaml:{line}: bad value for 'database.snapshot': it is the database itself" in res.output
    assert not (tmp_path / "data" / "tonevakt.duckdb").exists()


# -- numeric options ----------------------------------------------------------------------------------------------


@pytest.fixture
def seeded(make_settings: Callable[..., Settings]) -> Settings:
    """Eight scored documents in WEEK (media and patient), whose text holds NUL, ESC and other controls."""
    settings = make_settings(
        sources=[
            {
                "id": "nrk",
                "kind": "rss",
                "voice": "media",
                "url": "http://127.0.0.1:9/nrk",
                "name": "NRK\x00",
            },
            {"id": "helsami", "kind": "appstore", "voice": "patient", "app_id": "1"},
        ]
    )
    pipeline.init(settings)
    monday = datetime.combine(dates.week_monday(WEEK), datetime.min.time(), tzinfo=OSLO).astimezone(UTC)
    docs, scores = [], []
    for i in range(8):
        voice, src = ("media", "nrk") if i % 2 else ("patient", "helsami")
        d = Document(
            source_id=src,
            voice=voice,
            title=f"Helseplattformen\x00 sak\x1b[2J {i}\x07",
            text=f"Helseplattformen\x00 virker\x0b ikke {i}",
            url=f"http://127.0.0.1:9/{src}/{i}",
            outlet="Avis\x00\x1b]0;x\x07",
            published_at=monday + timedelta(days=i % 7, hours=9),
            language="nb",
            relevant=True,
            matched=["helseplattform*"],
            rating=1 + i % 5 if voice == "patient" else None,
        )
        tone = -0.8 + 0.2 * i
        scores.append(
            Score(
                d.id,
                "m",
                tone,
                "negative" if tone < 0 else "positive",
                (1 - tone) / 2 - 0.05,
                0.1,
                (1 + tone) / 2 - 0.05,
                passage=f"Utdrag\x00 med\x1b[31m farge {i}",
            )
        )
        docs.append(d)
    with database(settings.db_path) as db:
        repo.store_batch(db, docs)
        repo.register_model(db, "m", "embedded", "testmodell", 0.6, active=True)
        repo.save_scores(db, scores)
    return settings


def test_numeric_options_out_of_range_are_clear_errors_not_tracebacks(seeded: Settings) -> None:
    cases = [
        (["trend", "--weeks", "100000000"], 1, "--weeks must be from 2 to 520 (ten years), not 100000000"),
        (["trend", "--weeks", "-3"], 1, "--weeks must be from 2 to 520"),
        (
            ["trend", "--week", "9999-W52"],
            1,
            "week '9999-W52' is out of range: give a week from 1900-W01 to 2999-W52",
        ),
        (["trend", "--week", "0001-W01", "--weeks", "4"], 1, "is out of range"),
        (["report", "--week", "9999-W52", "--no-pdf"], 1, "week '9999-W52' is out of range"),
        (["report", "--week", "1899-W52", "--no-pdf"], 1, "week '1899-W52' is out of range"),
        (["score", "--limit", "-5"], 2, "Invalid value for '--limit'"),
        (["score", "--limit", "100000000000000000000000"], 2, "Invalid value for '--limit'"),
        (["model", "train", "--lr", "nan"], 2, "'nan' is not a finite number"),
        (["model", "train", "--rdrop", "inf"], 2, "Invalid value for '--rdrop'"),
        (["model", "train", "--layer-decay", "nan"], 2, "'nan' is not a finite number"),
        (["model", "train", "--epochs", "0"], 2, "Invalid value for '--epochs'"),
        (["model", "train", "--threads", "0"], 2, "Invalid value for '--threads'"),
        (["model", "train", "--domain-lr", "-1"], 2, "Invalid value for '--domain-lr'"),
    ]
    for args, code, message in cases:
        res = cli(seeded.file, *args)
        assert (res.exit_code, message in res.output) == (code, True), (args, res.output)
        assert "Traceback" not in res.output
    # In range, they work.
    res = cli(seeded.file, "trend", "--weeks", "520", "--week", WEEK)
    assert res.exit_code == 0 and "media" in res.output and WEEK in res.output, res.output


# -- terminal escape sequences in a file name -------------------------------------------------------------------


def test_import_prints_a_file_name_without_its_escape_sequences(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_settings()
    evil = tmp_path / "svar\x1b]0;pwned\x07\x1b[2J\r.jsonl"
    evil.write_text('{"text": "Helseplattformen virker fint"}\n', encoding="utf-8")
    res = cli(settings.file, "import", str(evil), "--source", "skjema", "--voice", "patient")
    assert res.exit_code == 0, res.output
    assert "1 new documents" in res.output
    assert not any(ch in res.output for ch in "\x1b\x07\r"), repr(res.output)
    assert "svar\ufffd]0;pwned\ufffd\ufffd[2J\ufffd.jsonl" in res.output
    # The same file name in an error message (a folder, not a file).
    bad = tmp_path / "mappe\x1b[2J"
    bad.mkdir()
    res = cli(settings.file, "import", str(bad), "--source", "skjema", "--voice", "patient")
    assert res.exit_code == 1 and "\x1b" not in res.output and "mappe\ufffd[2J" in res.output, repr(
        res.output
    )


# -- control characters in the report ---------------------------------------------------------------------------

CONTROLS = [chr(c) for c in range(0x20) if chr(c) not in "\t\n\r"] + [chr(c) for c in range(0x7F, 0xA0)]


def test_nul_and_control_characters_never_reach_the_report_html_csv_or_dashboard(
    seeded: Settings, tmp_path: Path
) -> None:
    res = cli(seeded.file, "report", "--week", WEEK, "--no-pdf", "--out", str(tmp_path / "rapporter"))
    assert res.exit_code == 0, res.output
    folder = tmp_path / "rapporter" / WEEK
    html = (folder / f"tonevakt-{WEEK}.html").read_text(encoding="utf-8")
    csvs = [(folder / f"tonevakt-{WEEK}-{n}.csv").read_text(encoding="utf-8-sig") for n in ("tall", "saker")]
    res = cli(seeded.file, "dashboard", "--out", str(tmp_path / "tavle"))
    assert res.exit_code == 0, res.output
    board = (tmp_path / "tavle" / "index.html").read_text(encoding="utf-8")
    for name, text in [("html", html), ("tall.csv", csvs[0]), ("saker.csv", csvs[1]), ("dashboard", board)]:
        found = sorted({hex(ord(ch)) for ch in text if ch in CONTROLS})
        assert not found, f"{name}: {found}"
    # The text around the control characters is kept.
    assert "Helseplattformen sak[2J" in html and "Utdrag med[31m farge" in csvs[1]


# -- a full disk while writing the report ------------------------------------------------------------------------


def _full_disk(limit: int) -> Callable[[], None]:
    def apply() -> None:
        signal.signal(
            signal.SIGXFSZ, signal.SIG_IGN
        )  # a write past the limit fails with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


def tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
        for p in sorted(root.rglob("*"))
    }


def test_disk_full_while_writing_the_report_leaves_no_week_folder_and_keeps_an_earlier_report(
    seeded: Settings, tmp_path: Path
) -> None:
    out = tmp_path / "rapporter"
    out.mkdir()
    args = [
        tonevakt_command(),
        "--config",
        seeded.file,
        "report",
        "--week",
        WEEK,
        "--no-pdf",
        "--out",
        str(out),
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    run = subprocess.run(
        args, capture_output=True, text=True, timeout=120, env=env, preexec_fn=_full_disk(4096)
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert (
        f"cannot write the report into {out / WEEK}" in run.stderr
        and "nothing of this report was written" in (run.stderr)
    )
    assert "Traceback" not in run.stderr
    assert list(out.iterdir()) == []  # no empty week folder, no temporary file
    # A week written before keeps its files, byte for byte, when a rewrite fails.
    assert subprocess.run(args, capture_output=True, timeout=120, env=env).returncode == 0
    before = tree(out)
    assert len(before) == 5  # the folder and four files
    run = subprocess.run(
        args, capture_output=True, text=True, timeout=120, env=env, preexec_fn=_full_disk(4096)
    )
    assert run.returncode == 1 and "cannot write the report" in run.stderr
    assert tree(out) == before


# -- the catalogue ------------------------------------------------------------------------------------------------

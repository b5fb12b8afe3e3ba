"""Config: the shipped file is valid; errors name the key, the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.paths import REPO
from tonevakt.config import load_config, parse_config
from tonevakt.errors import ConfigError

MINIMAL = "relevance:\n  query: helseplattform*\n"


def test_shipped_config_is_valid_and_real() -> None:
    s = load_config(REPO / "config.yaml")
    kinds = {src.kind for src in s.sources}
    voices = {src.voice for src in s.sources}
    assert {"rss", "news_search", "web", "appstore", "files"} <= kinds
    assert {"media", "union", "patient", "official"} <= voices
    ids = {src.id for src in s.sources}
    assert {"nrk-trondelag", "nrk-more-og-romsdal", "helsami-appstore", "patient-feedback-inbox"} <= ids
    assert s.schedule.timezone == "Europe/Oslo"
    assert s.db_path == REPO / "data" / "tonevakt.duckdb"
    assert {"trondelag", "more_og_romsdal", "national"} <= set(s.regions)
    assert len(s.topics) >= 7


def test_unknown_key_names_key_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text(MINIMAL + "http:\n  connect_timeout_s: 5\n  max_body: 10\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    msg = str(e.value)
    assert "unknown key 'http.max_body'" in msg
    assert f"{p}:5" in msg


def test_bad_value_in_a_source_is_located(tmp_path: Path) -> None:
    text = MINIMAL + (
        "sources:\n"
        "  - id: nrk\n    kind: rss\n    voice: media\n    url: https://www.nrk.no/toppsaker.rss\n"
        "  - id: bad\n    kind: rss\n    voice: journalists\n    url: https://example.invalid/rss\n"
    )
    with pytest.raises(ConfigError) as e:
        parse_config(text, file="cfg.yaml")
    msg = str(e.value)
    assert "sources.1.voice" in msg and "cfg.yaml:10" in msg and "journalists" in msg


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("sources:\n  - id: x\n    kind: rss\n    voice: media\n", "needs 'url'"),
        ("sources:\n  - id: x\n    kind: appstore\n    voice: patient\n", "needs 'app_id'"),
        ("sources:\n  - id: Bad Id\n    kind: files\n    voice: patient\n    path: inbox\n", "sources.0.id"),
        ("http:\n  max_concurrency: 0\n", "http.max_concurrency"),
        ("schedule:\n  timezone: Europe/Trondheim\n", "unknown time zone"),
        ("schedule:\n  collect: {cron: '* *'}\n", "five fields"),
        ("schedule:\n  collect: {}\n", "exactly one of"),
        ("sources:\n  - id: x\n    kind: web\n    voice: union\n    url: ftp://x/\n", "http:// or https://"),
        (
            "sources:\n  - id: x\n    kind: web\n    voice: union\n    url: https://x/\n    include: '(['\n",
            "regular",
        ),
        ("sentiment:\n  backend: openai\n", "sentiment.backend"),
    ],
)
def test_bad_values_are_refused(snippet: str, expected: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(MINIMAL + snippet, file="c.yaml")
    assert expected in str(e.value)


def test_duplicate_source_ids_refused() -> None:
    src = "  - id: a\n    kind: files\n    voice: patient\n    path: inbox\n"
    with pytest.raises(ConfigError, match="appears twice"):
        parse_config(MINIMAL + "sources:\n" + src + src)


def test_missing_relevance_and_yaml_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="missing key 'relevance'"):
        parse_config("database: {}\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_config("relevance: [\n")
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_env_var_selects_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "other.yaml"
    p.write_text(MINIMAL + "database:\n  path: x/db.duckdb\n", encoding="utf-8")
    monkeypatch.setenv("TONEVAKT_CONFIG", str(p))
    s = load_config()
    assert s.db_path == tmp_path / "x" / "db.duckdb"

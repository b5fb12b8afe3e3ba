"""Shared fixtures: a fresh config + database per test (after sqlite-utils' fresh_db)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tonevakt.collectors.http import HttpClient  # noqa: E402
from tonevakt.config import HttpSettings, Settings, load_config  # noqa: E402
from tonevakt.storage.db import Database, memory_database  # noqa: E402

# `local_server`: a real HTTP server on 127.0.0.1 (tests/localserver.py), for every test module.
pytest_plugins = ["tests.localserver", "tests.support.daemon", "tests.support.network"]

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
NOREC = REPO.parent / "shared" / "data" / "norec_sentence"

BASE_CONFIG: dict[str, Any] = {
    "database": {
        "path": "data/tonevakt.duckdb",
        "snapshot": "data/analyst.duckdb",
        "exports": "data/exports",
        "lock_timeout_s": 20,
    },
    "http": {
        "allow_private_addresses": True,
        "per_host_interval_s": 0,
        "connect_timeout_s": 2,
        "read_timeout_s": 3,
        "total_timeout_s": 6,
        "respect_robots": False,
    },
    "relevance": {"query": 'helseplattform* OR helseplattforma* OR helsami* OR "en innbygger en journal"'},
    "topics": {
        "costs": {
            "label": "Kostnader og budsjett",
            "terms": ["kostnad*", "budsjett*", "milliard*", "million*"],
        },
        "faults": {"label": "Feil og driftsproblemer", "terms": ["feil*", "nedetid*", "problem*"]},
        "patient_access": {"label": "HelsaMi og pasienttilgang", "terms": ["helsami*", "innsyn*"]},
    },
    "regions": {
        "trondelag": {"label": "Trøndelag", "terms": ["trøndelag*", "st. olav*", "trondheim*"]},
        "more_og_romsdal": {"label": "Møre og Romsdal", "terms": ["ålesund*", "molde*", "møre og romsdal"]},
    },
    "sources": [],
    # The lighter frozen-head model keeps the suite quick; the default tone model has its own tests.
    "sentiment": {"backend": "embedded", "model": "tonevakt-e5-small-norec"},
}


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Write a config.yaml into tmp_path (BASE_CONFIG merged with overrides) and load it."""

    def make(**overrides: Any) -> Settings:
        cfg = _merge(BASE_CONFIG, overrides)
        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
        return load_config(path)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def client() -> Iterator[HttpClient]:
    """The real HTTP client, allowed to reach the local test server on 127.0.0.1, quick timeouts."""
    c = HttpClient(
        HttpSettings(
            allow_private_addresses=True,
            per_host_interval_s=0,
            read_timeout_s=2,
            total_timeout_s=3,
            respect_robots=False,
        )
    )
    yield c
    c.close()


@pytest.fixture
def fresh_db() -> Database:
    db = memory_database()
    yield db
    db.close()

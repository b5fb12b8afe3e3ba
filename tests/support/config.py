"""The test configuration: `BASE_CONFIG` (a local-only config.yaml as a dict), `merge_config` to override
parts of it, and `settings_in` to write it into a folder and load it as the CLI would. The fixtures
`make_settings` and `settings` in tests/conftest.py use these; module-scoped fixtures call `settings_in`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tonevakt.collectors.http import HttpClient
from tonevakt.config import HttpSettings, Settings, load_config
from tonevakt.nlp.sentiment import FROZEN_HEAD_MODEL

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
    "sentiment": {"backend": "embedded", "model": FROZEN_HEAD_MODEL},
}


def merge_config(
    base: dict[str, Any], over: dict[str, Any], replace_if: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """`base` with `over` laid on top, nested dicts merged key by key (neither argument is changed). A dict in
    `over` that holds a key of `replace_if` replaces the dict it lies on instead (the benchmarks pass the
    schedule keys: a job's cron line and its interval exclude each other)."""
    out = dict(base)
    for k, v in over.items():
        merged = isinstance(v, dict) and isinstance(out.get(k), dict) and not replace_if & set(v)
        out[k] = merge_config(out[k], v, replace_if) if merged else v
    return out


def write_config(folder: Path, **overrides: Any) -> Path:
    """Write `folder/config.yaml`: BASE_CONFIG with `overrides` merged in. Returns its path."""
    path = folder / "config.yaml"
    cfg = merge_config(BASE_CONFIG, overrides)
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def settings_in(folder: Path, **overrides: Any) -> Settings:
    """Write `folder/config.yaml` (see `write_config`) and load it; relative paths resolve inside `folder`."""
    return load_config(write_config(folder, **overrides))


def local_client(**overrides: object) -> HttpClient:
    """The real HTTP client as the tests use it against the local server on 127.0.0.1: private addresses
    allowed, no politeness wait, no robots.txt, quick timeouts; `overrides` are other `HttpSettings` fields."""
    base: dict[str, object] = dict(
        allow_private_addresses=True,
        per_host_interval_s=0,
        connect_timeout_s=2,
        read_timeout_s=2,
        total_timeout_s=3,
        respect_robots=False,
    )
    base.update(overrides)
    return HttpClient(HttpSettings(**base))

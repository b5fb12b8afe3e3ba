"""Shared fixtures: a fresh config + database per test (after sqlite-utils' fresh_db)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from tests.support.config import local_client, settings_in  # noqa: E402
from tonevakt.collectors.http import HttpClient  # noqa: E402
from tonevakt.config import Settings  # noqa: E402
from tonevakt.storage.db import Database, memory_database  # noqa: E402

# Shared fixtures live in tests/support/ and are registered here for every test module: `local_server` (a real
# HTTP server on 127.0.0.1), `server` and `daemons` (the daemon tests), `no_outside_traffic` (the network guard),
# `rng` (seeded randomness, the seed printed).
# Helpers (paths, the test config, the seeded archive, a process holding the database, ...) are imported from
# tests/support/; no test module imports another.
pytest_plugins = [
    "tests.support.localserver",
    "tests.support.daemon",
    "tests.support.network",
    "tests.support.randomness",
]


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Write a config.yaml into tmp_path (BASE_CONFIG merged with overrides) and load it."""

    def make(**overrides: Any) -> Settings:
        return settings_in(tmp_path, **overrides)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def client() -> Iterator[HttpClient]:
    """The real HTTP client, allowed to reach the local test server on 127.0.0.1, quick timeouts."""
    c = local_client()
    yield c
    c.close()


@pytest.fixture
def fresh_db() -> Database:
    db = memory_database()
    yield db
    db.close()

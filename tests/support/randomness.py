"""Seeded randomness for tests that pick random moments (when to kill or stop the daemon).

The fixture `rng` (registered for every test module by tests/conftest.py) is a `random.Random` seeded from
the environment variable TONEVAKT_TEST_SEED when it is set, else from the clock, so that each run tries other
moments. The seed is printed (pytest shows it with a failure) and recorded in the test report; rerun a failure
with the same moments by `TONEVAKT_TEST_SEED=<seed> pytest <test id>`."""

from __future__ import annotations

import os
import random
import time

import pytest

SEED_VARIABLE = "TONEVAKT_TEST_SEED"


class SeededRandom(random.Random):
    """A `random.Random` that remembers its seed (for assertion messages)."""

    def __init__(self, seed: int) -> None:
        super().__init__(seed)
        self.seed_value = seed

    def __repr__(self) -> str:
        return f"SeededRandom(seed={self.seed_value}; rerun with {SEED_VARIABLE}={self.seed_value})"


def seed_for_run() -> int:
    """The seed for this run: TONEVAKT_TEST_SEED if set, else one from the clock."""
    value = os.environ.get(SEED_VARIABLE, "").strip()
    return int(value) if value else time.time_ns() % 2**32


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> SeededRandom:
    seed = seed_for_run()
    print(f"random seed {seed} (rerun with {SEED_VARIABLE}={seed})")
    request.node.user_properties.append(("random_seed", seed))
    return SeededRandom(seed)

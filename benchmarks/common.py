"""Shared helpers of the benchmark scripts: machine description, timing, peak memory, settings, printing.

Every script prints the machine (cores, CPU model, RAM) and the load average before and after its run,
because figures taken on a busy machine are noisy: read them beside the load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python benchmarks/x.py` from the repository root: import tonevakt and tests
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CONFIG = ROOT / "config.yaml"
SCHEDULE_KEYS = frozenset({"cron", "interval_seconds"})  # an override of a job's schedule replaces it whole


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def ram_gb() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return float("nan")


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def load() -> str:
    a, b, c = os.getloadavg()
    return f"{a:.2f} {b:.2f} {c:.2f}"


def machine_line() -> str:
    return (
        f"machine: {cores()} cores (nproc), {cpu_model()}, {ram_gb():.1f} GB RAM, Python "
        f"{platform.python_version()}, load average (1/5/15 min) {load()}"
    )


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="smaller sizes (make bench-quick)")
    p.add_argument(
        "--json", action="store_true", help="print one JSON object with the figures as the last line"
    )
    return p


def emit_json(enabled: bool, figures: dict[str, Any]) -> None:
    """`--json`: the figures as one JSON object on the last line of the output."""
    if enabled:
        print(json.dumps(_finite(figures), default=str), flush=True)


def _finite(value: Any) -> Any:
    """NaN (a figure that could not be measured) as null: JSON has no NaN."""
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def banner(title: str, quick: bool) -> float:
    print(f"== {title}{' (--quick)' if quick else ''}", flush=True)
    print(machine_line(), flush=True)
    return time.monotonic()


def footer(t0: float) -> None:
    print(f"done in {time.monotonic() - t0:.1f}s; load average now {load()}", flush=True)


@contextmanager
def timed() -> Iterator[list[float]]:
    """`with timed() as t: ...` then t[0] is the wall-clock seconds."""
    box: list[float] = []
    t0 = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - t0)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far: VmHWM of /proc/self/status on Linux. Not ru_maxrss: Linux
    keeps that across execve, so a child started by a parent that had grown (the benchmark that generated a
    1M-document database, 1.8 GB) reported the parent's peak as its own."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_child(
    script: Path, args: list[str], env: dict[str, str] | None = None, timeout: float = 3600
) -> dict[str, Any]:
    """Run `python script args` in a fresh process; its last stdout line is JSON. Adds the child's peak RSS."""
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"{script.name} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        raise RuntimeError(f"{script.name} {' '.join(args)} printed no JSON:\n{proc.stdout[-2000:]}")
    return json.loads(lines[-1])


def ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×" if b else "n/a"


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"


def settings_from(overrides: dict[str, Any], base_dir: Path) -> Any:
    """The real config.yaml with `overrides` merged in (dicts merged, other values replaced), rooted at
    `base_dir` (so that database, snapshot, reports land there)."""
    import yaml

    from tests.support.config import merge_config
    from tonevakt.config import parse_config

    data = yaml.safe_load(CONFIG.read_text(encoding="utf-8"))
    merged = merge_config(data, overrides, SCHEDULE_KEYS)
    return parse_config(
        yaml.safe_dump(merged, allow_unicode=True, sort_keys=False),
        file=str(base_dir / "config.yaml"),
        base_dir=str(base_dir),
    )


def write_config(overrides: dict[str, Any], base_dir: Path) -> Path:
    """Like `settings_from`, but written to `base_dir/config.yaml` (for the `tonevakt` command)."""
    import yaml

    from tests.support.config import merge_config

    data = merge_config(yaml.safe_load(CONFIG.read_text(encoding="utf-8")), overrides, SCHEDULE_KEYS)
    path = base_dir / "config.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def sign_window(db: Any) -> tuple[int, float]:
    """Sign the documents of the near-copy window that a generated archive holds without signatures (what the
    first pass after migration 0010 does once, `storage/story_index.refresh`), so that the pass timed next is
    a steady-state one. Returns (documents signed, seconds)."""
    from datetime import UTC, datetime

    from tonevakt.storage import story_index
    from tonevakt.storage.stories import STORY_WINDOW

    t0 = time.perf_counter()
    signed = story_index.refresh(db, datetime.now(UTC) - STORY_WINDOW)
    return signed, time.perf_counter() - t0


def store_as_a_pass(db: Any, docs: list[Any], max_item_attempts: int = 6) -> list[str]:
    """Store `docs` as a collect pass, an import and the spool replay do: `storage/batch.store_outcomes`, which
    groups the new documents into stories (near-copies of the last 14 days, identical texts) and stores them
    with the fetch log rows in one all-or-nothing batch. One `SourceOutcome` per source, each with the fetch
    of its feed, as a collector hands it back. Returns the ids of the new documents."""
    from datetime import UTC, datetime

    from tonevakt.models import FetchLogEntry, FetchStatus, Source, SourceOutcome
    from tonevakt.storage.batch import store_outcomes

    by_source: dict[tuple[str, str], list[Any]] = {}
    for d in docs:
        by_source.setdefault((d.source_id, d.voice), []).append(d)
    now = datetime.now(UTC)
    outcomes = [
        SourceOutcome(
            source=Source(id=sid, kind="rss", voice=voice, url=f"https://{sid}.example.no/rss"),  # type: ignore[arg-type]
            documents=ds,
            fetches=[
                FetchLogEntry(
                    sid, f"https://{sid}.example.no/rss", FetchStatus.OK, now, http_status=200, items=len(ds)
                )
            ],
        )
        for (sid, voice), ds in by_source.items()
    ]
    return store_outcomes(db, docs, outcomes, max_item_attempts=max_item_attempts)

"""Run every benchmark (`make bench`), or each with --quick (`make bench-quick`, under 3 minutes on 2 cores).

With --quick the freshness benchmark, which mostly waits for the daemon's next pass (a minute at least),
runs alongside the others and prints at the end; without it every benchmark runs alone, one after another.
With --json the last line is one JSON object: each benchmark's own --json figures under its name.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = [
    "bench_scoring.py",
    "bench_collection.py",
    "bench_storage_reports.py",
    "bench_stages.py",
    "bench_libraries.py",
]


def _run(script: str, flags: list[str], figures: dict[str, object]) -> int:
    """Run one benchmark, its output passed through; with --json its last line is kept as its figures."""
    if "--json" not in flags:
        return subprocess.call([sys.executable, str(HERE / script), *flags])
    proc = subprocess.run([sys.executable, str(HERE / script), *flags], stdout=subprocess.PIPE, text=True)
    lines = proc.stdout.rstrip("\n").split("\n")
    print("\n".join(lines[:-1]), flush=True)
    figures[script.removesuffix(".py")] = _last_json(lines)
    return proc.returncode


def _last_json(lines: list[str]) -> object:
    try:
        return json.loads(lines[-1])
    except (ValueError, IndexError):
        return None


def main() -> int:
    if {"-h", "--help"} & set(sys.argv[1:]):
        print(__doc__.strip() + "\n\nusage: run_all.py [--quick] [--json]")
        return 0
    quick = "--quick" in sys.argv[1:]
    as_json = "--json" in sys.argv[1:]
    flags = (["--quick"] if quick else []) + (["--json"] if as_json else [])
    t0 = time.monotonic()
    failed: list[str] = []
    figures: dict[str, object] = {}
    fresh = None
    if quick:
        fresh = subprocess.Popen(
            [sys.executable, str(HERE / "bench_freshness.py"), *flags],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    for script in SCRIPTS + ([] if quick else ["bench_freshness.py"]):
        rc = _run(script, flags, figures)
        if rc:
            failed.append(script)
        print(flush=True)
    if fresh is not None:
        out, _ = fresh.communicate()
        print("(ran alongside the other benchmarks)")
        lines = out.rstrip("\n").split("\n")
        if as_json:
            figures["bench_freshness"] = _last_json(lines)
            lines = lines[:-1]
        print("\n".join(lines), flush=True)
        if fresh.returncode:
            failed.append("bench_freshness.py")
    print(
        f"all benchmarks in {time.monotonic() - t0:.0f}s"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    if as_json:
        print(json.dumps(figures))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

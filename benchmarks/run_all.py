"""Run every benchmark (`make bench`), or each with --quick (`make bench-quick`, under 3 minutes on 2 cores).

With --quick the freshness benchmark, which mostly waits for the daemon's next pass (a minute at least),
runs alongside the others and prints at the end; without it every benchmark runs alone, one after another.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["bench_scoring.py", "bench_collection.py", "bench_storage_reports.py"]


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    flags = ["--quick"] if quick else []
    t0 = time.monotonic()
    failed: list[str] = []
    fresh = None
    if quick:
        fresh = subprocess.Popen([sys.executable, str(HERE / "bench_freshness.py"), *flags],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    for script in SCRIPTS + ([] if quick else ["bench_freshness.py"]):
        rc = subprocess.call([sys.executable, str(HERE / script), *flags])
        if rc:
            failed.append(script)
        print(flush=True)
    if fresh is not None:
        out, _ = fresh.communicate()
        print("(ran alongside the other benchmarks)")
        print(out, end="", flush=True)
        if fresh.returncode:
            failed.append("bench_freshness.py")
    print(
        f"all benchmarks in {time.monotonic() - t0:.0f}s"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

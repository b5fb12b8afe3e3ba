"""Another process holding the main database: DuckDB allows one writing process per file, and a writer blocks
every other process, readers included. The lock, spool, snapshot and daemon tests use this one helper.

    with hold_database(settings.db_path):
        ...  # every open of the file by another process meets the lock here
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

# Opening a write connection takes DuckDB's file lock; the process keeps it until a line arrives on its stdin
# (or its stdin closes), then closes the connection and exits.
HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
con.execute("SELECT 1").fetchall()
print("locked", flush=True)
sys.stdin.readline()
con.close()
"""


class DatabaseHolder:
    """A subprocess with a write connection to `path`; the lock is held once the constructor returns and until
    `release()` (also on leaving a `with` block)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.released = threading.Event()  # set before the holder is told to let go
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "locked":
            self.proc.kill()
            _, err = self.proc.communicate(timeout=30)
            raise AssertionError(f"the holder process could not lock {path}: {line!r} {err}")

    def release(self, timeout: float = 30.0) -> None:
        """Tell the holder to close its connection and wait for it to exit (a second call does nothing)."""
        if self.released.is_set():
            return
        self.released.set()
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write("\n")
            self.proc.stdin.close()
        except BrokenPipeError:  # it has gone already
            pass
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise
        finally:
            for stream in (self.proc.stdout, self.proc.stderr):
                if stream is not None:
                    stream.close()

    def __enter__(self) -> DatabaseHolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def hold_database(path: Path) -> DatabaseHolder:
    """Start a process that holds `path` (a write connection) until `release()` or the end of a `with` block."""
    return DatabaseHolder(path)

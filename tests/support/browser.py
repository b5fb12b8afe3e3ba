"""Headless Chromium for the browser tests: the binary (None when not installed) and one way to run it, with the
flags this machine needs (no sandbox as root, no background networking) and a fresh profile per call."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
NOT_INSTALLED = "chromium is not installed (bash tools/ensure-debian-packages.sh)"


def run_chromium(args: list[str], tmp: Path, timeout: int = 90) -> subprocess.CompletedProcess[str]:
    """Run headless Chromium with `args` (e.g. `--dump-dom URL`), its profile in a new folder under `tmp`."""
    assert CHROMIUM is not None, NOT_INSTALLED
    profile = tempfile.mkdtemp(prefix="profile-", dir=tmp)
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)

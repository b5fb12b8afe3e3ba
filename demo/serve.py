"""Serve demo/archive/ on 127.0.0.1 with its date placeholders filled in relative to the current week.

    @@DATE:<weeks back>:<weekday 0-6>:<HHMM>:<rfc822|iso>@@   e.g. @@DATE:1:2:0930:rfc822@@ = last week's
    Wednesday 09:30, Europe/Oslo;  @@BASE@@ = this server's address (http://127.0.0.1:PORT).

Only 127.0.0.1 is ever bound. `python demo/serve.py` serves until Ctrl-C (to browse the archive by hand).
"""

from __future__ import annotations

import re
import threading
from datetime import date, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ARCHIVE = Path(__file__).resolve().parent / "archive"
OSLO = ZoneInfo("Europe/Oslo")
_DATE = re.compile(r"@@DATE:(\d+):(\d):(\d{2})(\d{2}):(rfc822|iso)@@")
TYPES = {
    ".xml": "application/rss+xml; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}


def fill_dates(text: str, today: date, base: str = "") -> str:
    """Replace the placeholders; weeks back count from the Monday of `today`'s ISO week."""
    monday = today - timedelta(days=today.weekday())

    def one(m: re.Match[str]) -> str:
        weeks, weekday, hh, mm, form = int(m[1]), int(m[2]), int(m[3]), int(m[4]), m[5]
        day = monday - timedelta(weeks=weeks) + timedelta(days=weekday)
        dt = datetime(day.year, day.month, day.day, hh, mm, tzinfo=OSLO)
        return format_datetime(dt) if form == "rfc822" else dt.isoformat()

    return _DATE.sub(one, text).replace("@@BASE@@", base)


class DemoServer:
    """A threaded HTTP server for the archive, bound to 127.0.0.1 on a free port."""

    def __init__(self, today: date | None = None, port: int = 0) -> None:
        self.today = today or datetime.now(OSLO).date()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                path = self.path.split("?", 1)[0]
                if path.endswith("/"):
                    path += "index.html"
                target = (ARCHIVE / path.lstrip("/")).resolve()
                if ARCHIVE not in target.parents or not target.is_file():
                    self.send_error(404, "not in the demo archive")
                    return
                body = fill_dates(target.read_text(encoding="utf-8"), outer.today, outer.base).encode("utf-8")
                self.send_response(200)
                self.send_header("Content-Type", TYPES.get(target.suffix, "application/octet-stream"))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> DemoServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


if __name__ == "__main__":
    with DemoServer(port=8765) as srv:
        print(f"serving the SYNTHETIC demo archive on {srv.base}/ (Ctrl-C stops)")
        try:
            srv.thread.join()
        except KeyboardInterrupt:
            pass

"""The weekly run e-mails the report once: a real SMTP conversation with a small server on 127.0.0.1."""

from __future__ import annotations

import base64
import email
import socketserver
import threading
from collections.abc import Iterator
from email import policy
from typing import Any

import pytest

from tests.support.seed import NOW, WEEK, XSS_TITLE, seed, seed_settings
from tonevakt.errors import ReportError
from tonevakt.reports import write_weekly
from tonevakt.storage.db import open_for_reading

USER, PASSWORD = "tonevakt", "s3cret-from-env"


class _SMTPHandler(socketserver.StreamRequestHandler):
    """Enough of RFC 5321 for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def reply(self, line: str) -> None:
        self.wfile.write((line + "\r\n").encode())

    def handle(self) -> None:
        server: Any = self.server
        self.reply("220 127.0.0.1 test ESMTP")
        sender, rcpts, authed = None, [], False
        while True:
            raw = self.rfile.readline()
            if not raw:
                return
            line = raw.decode().rstrip("\r\n")
            verb = line.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                self.wfile.write(b"250-127.0.0.1\r\n250-AUTH PLAIN\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif verb == "AUTH":
                _, mech, blob = line.split(" ", 2)
                parts = base64.b64decode(blob).split(b"\0")
                authed = mech.upper() == "PLAIN" and parts[1:] == [USER.encode(), PASSWORD.encode()]
                self.reply("235 ok" if authed else "535 bad credentials")
            elif verb == "MAIL":
                if not authed:
                    self.reply("530 authentication required")
                    continue
                sender = line.split(":", 1)[1].strip().split()[0].strip("<>")
                self.reply("250 ok")
            elif verb == "RCPT":
                rcpts.append(line.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 ok")
            elif verb == "DATA":
                self.reply("354 end with .")
                chunks = []
                while True:
                    chunk = self.rfile.readline()
                    if chunk in (b".\r\n", b""):
                        break
                    chunks.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                server.messages.append((sender, list(rcpts), b"".join(chunks)))
                self.reply("250 queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 ok")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _SMTPHandler)
    server.daemon_threads = True
    server.messages = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _smtp(server: Any) -> dict[str, Any]:
    return {
        "smtp": {
            "host": "127.0.0.1",
            "port": server.server_address[1],
            "starttls": False,
            "username": USER,
            "password_env": "TONEVAKT_TEST_SMTP_PASSWORD",
            "sender": "tonevakt@example.org",
            "recipients": ["kommunikasjon@example.org", "leder@example.org"],
        }
    }


def test_weekly_run_sends_html_and_pdf_once(make_settings: Any, smtp_server: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("TONEVAKT_TEST_SMTP_PASSWORD", PASSWORD)
    settings = seed_settings(make_settings, report=_smtp(smtp_server))
    seed(settings, history_weeks=3)
    paths = write_weekly(settings, now=NOW)  # default week: the last complete one
    assert paths.week == WEEK and paths.sent_to == ["kommunikasjon@example.org", "leder@example.org"]
    ((sender, rcpts, raw),) = smtp_server.messages
    assert sender == "tonevakt@example.org" and rcpts == paths.sent_to
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == "Tonevakt: ukerapport uke 47, 2026"
    html = msg.get_body(("html",)).get_content()
    assert html.replace("\r\n", "\n").rstrip() == paths.html.read_text(encoding="utf-8").rstrip()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and XSS_TITLE not in html
    text = msg.get_body(("plain",)).get_content()
    assert "Medier: tone" in text
    (pdf,) = [p for p in msg.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert pdf.get_filename() == "tonevakt-2026-W47.pdf"
    assert pdf.get_content() == paths.pdf.read_bytes()  # type: ignore[union-attr]

    again = write_weekly(settings, now=NOW)  # the job runs twice: no second e-mail
    assert again.sent_to is None and len(smtp_server.messages) == 1
    db = open_for_reading(settings.db_path)
    try:
        rows = {r["kind"]: r for r in db.rows("SELECT * FROM reports WHERE week = ?", [WEEK])}
    finally:
        db.close()
    assert set(rows) == {"written", "sent"}
    assert rows["sent"]["recipients"] == "kommunikasjon@example.org, leder@example.org"
    assert rows["written"]["path"] == str(paths.folder)


def test_missing_password_is_a_clear_error_and_nothing_is_recorded_as_sent(
    make_settings: Any, smtp_server: Any, monkeypatch: Any
) -> None:
    monkeypatch.delenv("TONEVAKT_TEST_SMTP_PASSWORD", raising=False)
    settings = seed_settings(make_settings, report={**_smtp(smtp_server), "pdf": False})
    seed(settings, history_weeks=2)
    with pytest.raises(ReportError, match="TONEVAKT_TEST_SMTP_PASSWORD"):
        write_weekly(settings, WEEK)
    db = open_for_reading(settings.db_path)
    try:
        kinds = [r[0] for r in db.fetchall("SELECT kind FROM reports WHERE week = ?", [WEEK])]
    finally:
        db.close()
    assert kinds == ["written"] and smtp_server.messages == []


def test_wrong_password_keeps_the_servers_reason(
    make_settings: Any, smtp_server: Any, monkeypatch: Any
) -> None:
    monkeypatch.setenv("TONEVAKT_TEST_SMTP_PASSWORD", "wrong")
    settings = seed_settings(make_settings, report={**_smtp(smtp_server), "pdf": False})
    seed(settings, history_weeks=2)
    with pytest.raises(ReportError, match="535"):
        write_weekly(settings, WEEK)


def test_without_smtp_the_weekly_run_only_writes(make_settings: Any) -> None:
    settings = seed_settings(make_settings, report={"pdf": False})
    seed(settings, history_weeks=2)
    paths = write_weekly(settings, WEEK)
    assert paths.sent_to is None and paths.html.exists() and paths.pdf is None

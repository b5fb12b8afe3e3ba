"""E-mailing the weekly report: the HTML as the body, the PDF attached; the password from the environment."""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path

from tonevakt.config import SmtpSettings
from tonevakt.errors import ReportError

logger = logging.getLogger(__name__)


def build_message(smtp: SmtpSettings, subject: str, html: str, text: str, pdf: Path | None) -> EmailMessage:
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = smtp.sender
    msg["To"] = ", ".join(smtp.recipients)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=smtp.sender.rpartition("@")[2] or None)
    msg.set_content(text)
    msg.add_alternative(html, subtype="html")
    if pdf is not None:
        msg.add_attachment(pdf.read_bytes(), maintype="application", subtype="pdf", filename=pdf.name)
    return msg


def send(smtp: SmtpSettings, msg: EmailMessage, timeout_s: float = 30.0) -> None:
    """Deliver `msg` to the configured recipients. Raises ReportError with the server's reason."""
    password = None
    if smtp.password_env:
        password = os.environ.get(smtp.password_env)
        if password is None:
            raise ReportError(f"report.smtp.password_env names {smtp.password_env}, which is not set")
    try:
        if smtp.ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                smtp.host, smtp.port, timeout=timeout_s, context=ssl.create_default_context()
            )
        else:
            client = smtplib.SMTP(smtp.host, smtp.port, timeout=timeout_s)
        with client:
            client.ehlo()
            if smtp.starttls and not smtp.ssl:
                client.starttls(context=ssl.create_default_context())
                client.ehlo()
            if smtp.username:
                client.login(smtp.username, password or "")
            refused = client.send_message(msg, from_addr=smtp.sender, to_addrs=list(smtp.recipients))
    except (smtplib.SMTPException, OSError) as e:
        raise ReportError(f"cannot send the report via {smtp.host}:{smtp.port}: {e}") from e
    if refused:
        logger.warning("the SMTP server refused some recipients: %s", refused)
    logger.info("report e-mailed to %d recipients via %s:%d", len(smtp.recipients), smtp.host, smtp.port)

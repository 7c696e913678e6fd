"""Notification e-mails of jobs that ended, sent through ``--smtp-url``.

A job that ends in ``error`` (or ``finished``, with ``settings.notify_on_finished``) is mailed to the
workspace's ``settings.notification_emails``.

``smtp://[USER:PASSWORD@]HOST[:PORT]`` (STARTTLS when the server offers it), ``smtps://...`` (TLS from the
start). The password never appears in logs or errors.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

from ..settings import check_smtp_url

__all__ = ["Mailer", "job_message"]


@dataclass(frozen=True)
class Mailer:
    """Sends mail through one SMTP server.

    Attributes:
        url: ``smtp://`` or ``smtps://`` URL (checked).
        sender: The ``From`` address.
        timeout: Seconds to wait for the server.
    """

    url: str
    sender: str = "brokers@localhost"
    timeout: float = 10.0

    def __post_init__(self) -> None:
        check_smtp_url(self.url)

    def __repr__(self) -> str:
        parts = urlsplit(self.url)
        return f"Mailer({parts.scheme}://{parts.hostname}:{parts.port or ''}, sender={self.sender!r})"

    def send(self, to: list[str], subject: str, body: str) -> None:
        """Send one message.

        Raises:
            OSError: The server could not be reached or refused the message (``smtplib`` errors are OSErrors);
                the message never holds the password.
        """
        parts = urlsplit(self.url)
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message.set_content(body)
        host = parts.hostname or "localhost"
        smtp: smtplib.SMTP
        if parts.scheme == "smtps":
            smtp = smtplib.SMTP_SSL(host, parts.port or 465, timeout=self.timeout,
                                    context=ssl.create_default_context())
        else:
            smtp = smtplib.SMTP(host, parts.port or 25, timeout=self.timeout)
        with smtp:
            smtp.ehlo()  # the server's extensions: has_extn knows none before
            if parts.scheme == "smtp" and smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()  # again, over TLS (what the server offers may change)
            if parts.username:
                smtp.login(unquote(parts.username), unquote(parts.password or ""))
            smtp.send_message(message)


def job_message(workspace: str, job_id: int, kind: str, status: str, stats: dict[str, object],
                lines: list[tuple[str, str]]) -> tuple[str, str]:
    """The subject and body of a job's notification (the subject on one line: a name may hold line breaks)."""
    subject = f"[brokers] {kind} of {' '.join(workspace.split())}: {status}"
    body = [f"Job {job_id} ({kind}) of workspace {workspace!r} ended: {status}.", ""]
    history = stats.get("statuses_history")
    if isinstance(history, dict):
        body += [f"  {name}: {when}" for name, when in history.items()]
    if "error" in stats:
        body += ["", f"Error: {stats['error']}"]
    if lines:
        body += ["", "Log:"] + [f"  [{level}] {text}" for level, text in lines]
    return subject, "\n".join(body) + "\n"

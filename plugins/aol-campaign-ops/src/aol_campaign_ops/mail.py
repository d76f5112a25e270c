"""E-mail to a campaign's owner over SMTP (stdlib ``smtplib``), configured by ``AOL_SMTP_URL``
and ``AOL_SMTP_FROM``.

``smtp://user:pass@host:587`` upgrades with STARTTLS when the server offers it and refuses to
send a password over a connection that was not upgraded; ``smtps://`` is TLS from the start.
The password is only ever handed to ``login``: settings print without it, and errors name
the server as ``host:port``. Failures are classified as for HTTP: a 4xx reply or a dropped
connection retries, a 5xx reply fails permanently naming the reply.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from urllib.parse import unquote, urlsplit

from aol_core import PermanentError, RetryableError

URL_VARIABLE = "AOL_SMTP_URL"
FROM_VARIABLE = "AOL_SMTP_FROM"
#: the sender proof mode shows when ``AOL_SMTP_FROM`` is not set
PROOF_SENDER = "aol-campaign-ops@localhost"
TIMEOUT_SECONDS = 30
DEFAULT_PORTS = {"smtp": 587, "smtps": 465}


@dataclass(frozen=True)
class SmtpSettings:
    scheme: str
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @property
    def server(self) -> str:
        return f"{self.host}:{self.port}"


def smtp_settings(environ: Mapping[str, str] | None = None) -> SmtpSettings | None:
    """The configured server, or None when ``AOL_SMTP_URL`` is not set (mail is off)."""
    environ = os.environ if environ is None else environ
    url = environ.get(URL_VARIABLE, "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname or port == -1:
        raise PermanentError(f"{URL_VARIABLE} is not smtp://[user:password@]host[:port] or "
                             "smtps://...; fix it and release the action")
    sender = environ.get(FROM_VARIABLE, "").strip()
    if "@" not in sender:
        raise PermanentError(f"{FROM_VARIABLE} must be the sender's address when "
                             f"{URL_VARIABLE} is set")
    return SmtpSettings(
        scheme=parts.scheme, host=parts.hostname, port=port or DEFAULT_PORTS[parts.scheme],
        sender=sender, username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password else None,
    )


def proof_sender(environ: Mapping[str, str] | None = None) -> str:
    """The sender a proof-mode message shows: ``AOL_SMTP_FROM`` when set."""
    environ = os.environ if environ is None else environ
    return environ.get(FROM_VARIABLE, "").strip() or PROOF_SENDER


def compose(
    *, sender: str, to: str, subject: str, text: str, message_id: str, date: datetime,
    html: str | None = None,
) -> EmailMessage:
    """A message whose ``Message-ID`` the caller derives from the action, so a message sent
    again (a retry after the server took it) threads as the same one."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(date)
    message["Message-ID"] = message_id
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message


def message_id(kind: str, action_id: int, sender: str) -> str:
    return f"<campaign-ops.{kind}.{action_id}@{sender.rpartition('@')[2]}>"


def send(settings: SmtpSettings, message: EmailMessage) -> None:
    try:
        with _connect(settings) as smtp:
            if settings.username is not None:
                smtp.login(settings.username, settings.password or "")
            smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        code, reply = next(iter(exc.recipients.values()))
        raise _classified(settings, code, reply) from None
    except smtplib.SMTPResponseException as exc:
        raise _classified(settings, exc.smtp_code, exc.smtp_error) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise RetryableError(f"SMTP server {settings.server}: {type(exc).__name__}: "
                             f"{exc}") from None


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    tls = ssl.create_default_context()
    if settings.scheme == "smtps":
        return smtplib.SMTP_SSL(settings.host, settings.port, timeout=TIMEOUT_SECONDS,
                                context=tls)
    smtp = smtplib.SMTP(settings.host, settings.port, timeout=TIMEOUT_SECONDS)
    try:
        smtp.ehlo()
        if smtp.has_extn("starttls"):
            smtp.starttls(context=tls)
            smtp.ehlo()
        elif settings.username is not None:
            raise PermanentError(f"SMTP server {settings.server} offers no STARTTLS: the "
                                 "password is not sent in clear (use smtps://)")
    except BaseException:
        smtp.close()
        raise
    return smtp


def _classified(settings: SmtpSettings, code: int, reply: bytes | str) -> Exception:
    text = reply.decode(errors="replace") if isinstance(reply, bytes) else reply
    error = f"SMTP server {settings.server} replied {code} {text}"
    return RetryableError(error) if 400 <= code < 500 else PermanentError(error)

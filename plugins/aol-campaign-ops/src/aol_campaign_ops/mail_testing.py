"""A real SMTP server for tests of aol-campaign-ops and of applications built on it: aiosmtpd
on loopback (install the plugin's ``test`` extra). Never used by the plugin at run time."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope


@contextmanager
def smtp_inbox() -> Iterator[tuple[Inbox, int]]:
    """An SMTP server on 127.0.0.1 (no TLS, no AUTH) for the block: its inbox and port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


class Inbox:
    """An aiosmtpd handler keeping what it accepts; ``refuse_next(reply)`` answers the next
    RCPT TO with that reply instead (``451 ...`` or ``550 ...``)."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.refusals: list[str] = []

    def refuse_next(self, *replies: str) -> None:
        self.refusals += replies

    async def handle_RCPT(
        self, server: object, session: object, envelope: Envelope, address: str,
        rcpt_options: list[str],
    ) -> str:
        if self.refusals:
            return self.refusals.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(message_from_bytes(content, policy=default))
        return "250 Message accepted for delivery"

"""A real server's start and its checkers, end to end: real checker, nats-server, notifier, FIFO, SMTP.

What keepalived 2.2.7 did with the same virtual server (observed with real
IPVS, docs/keepalived.md#real-server-notifies): a server whose check passes at
start is not notified, unless ``rs_init_notifies`` (``notify_up`` and its
``RS ... UP`` line, no mail); a server failing at start is notified DOWN (after
that UP with ``rs_init_notifies``); a server with two failing checkers gets a
mail per checker, or one with ``no_checker_emails``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import Envelope, Session

from services.notifier.service import NotifierOptions, NotifierService
from shared.config.load import load
from shared.lab.nats import NatsServer, free_port
from shared.lab.wait import await_until
from shared.settings import Settings
from tests.checker.service_support import start_service
from tests.notifier.test_delivery_support import FAST, lines, recorder, start

pytestmark = pytest.mark.nats

NODE = "n1"
CHECK = "TCP_CHECK {{ connect_port {port} connect_timeout 0.3 retry 0 warmup 0 delay_loop 0.3 }}"


class Mailbox:
    """aiosmtpd handler keeping each message's text."""

    def __init__(self) -> None:
        self.messages: list[str] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(content.decode())
        return "250 OK"

    def subjects_and_bodies(self) -> list[tuple[str, str]]:
        out = []
        for text in self.messages:
            subject = next(line for line in text.splitlines() if line.startswith("Subject: "))
            body = next(line for line in text.splitlines() if line.startswith("=> "))
            out.append((subject.removeprefix("Subject: "), body))
        return out


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler, port = Mailbox(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


class Run:
    """What the notifier did: script lines, FIFO lines, mails."""

    def __init__(self, out: Path, fifo: Path, mail: Mailbox) -> None:
        self.out, self.fifo_path, self.mail = out, fifo, mail
        self.fifo_text = ""
        self._fd: int | None = None
        self.closed = False

    def scripts(self) -> list[str]:
        return [" ".join(line.split()[:2]) for line in lines(self.out)]

    def fifo(self) -> list[str]:
        """The lines read so far (read while the notifier runs: its end keeps the pipe's content)."""
        if self._fd is None and not self.closed and self.fifo_path.exists():
            self._fd = os.open(self.fifo_path, os.O_RDONLY | os.O_NONBLOCK)
        if self._fd is not None:
            with contextlib.suppress(BlockingIOError):
                self.fifo_text += os.read(self._fd, 65536).decode()
        return self.fifo_text.splitlines()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self.closed = None, True


async def run_start(
    tmp_path: Path, server: NatsServer, mail: tuple[Mailbox, int], global_extra: str
) -> tuple[Run, int, int]:
    """A passing server (``up_port``) and one with two failing checkers, until every verdict is notified."""
    mailbox, smtp_port = mail
    up_port, down_a, down_b = free_port(), free_port(), free_port()
    out, fifo = tmp_path / "out", tmp_path / "fifo"
    rec = recorder(tmp_path / "rec.sh", out)
    conf = tmp_path / "k.conf"
    conf.write_text(f"""
global_defs {{
  router_id lab1
  notification_email {{ ops@example.net }}
  notification_email_from ka@example.net
  smtp_server 127.0.0.1 {smtp_port}
  smtp_alert
  notify_fifo {fifo}
  {global_extra}
}}
virtual_server 127.0.0.1 80 {{
  delay_loop 0.3
  protocol TCP
  lb_algo rr
  lb_kind NAT
  real_server 127.0.0.1 {up_port} {{
    notify_up "{rec} up passing"
    notify_down "{rec} down passing"
    {CHECK.format(port=up_port)}
  }}
  real_server 127.0.0.1 {down_a} {{
    notify_up "{rec} up failing"
    notify_down "{rec} down failing"
    {CHECK.format(port=down_a)}
    {CHECK.format(port=down_b)}
  }}
}}
""")
    listener = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", up_port)
    opts = NotifierOptions(health=True, lease_ttl=1.5, delivery=dict(FAST))
    config = load(conf).config
    svc = NotifierService(config, Settings(node=NODE), node=NODE, nats_url=server.url, options=opts)
    await start(svc)
    run = Run(out, fifo, mailbox)
    run.fifo()  # the notifier made the FIFO: read it from now on
    checker = await start_service(conf, NODE, server.url)
    try:
        # three durable events: the passing server's first verdict, the failing one's DOWN, its second checker
        seen: dict[str, object] = {}

        async def all_delivered() -> bool:
            sinks = (await svc.status())["sinks"]
            assert isinstance(sinks, dict)
            seen.update(sinks)
            return all(s["delivered"] >= 3 and s["held"] == 0 for s in sinks.values())

        await await_until("every sink had the three events", all_delivered, 15, explain=lambda: str(seen))
        run.fifo()
        return run, up_port, down_a
    finally:
        await checker.stop()
        await svc.stop()
        listener.close()
        run.close()


@pytest.mark.parametrize("init", [False, True], ids=["default", "rs_init_notifies"])
async def test_rs_init_notifies_notifies_each_servers_start_by_script_and_fifo(
    tmp_path: Path,
    nats_server_factory: Callable[[], NatsServer],
    mailbox: tuple[Mailbox, int],
    init: bool,
) -> None:
    run, up_port, down_port = await run_start(
        tmp_path, nats_server_factory(), mailbox, "rs_init_notifies" if init else ""
    )
    passing = f"RS [127.0.0.1]:tcp:{up_port} [127.0.0.1]:tcp:80"
    failing = f"RS [127.0.0.1]:tcp:{down_port} [127.0.0.1]:tcp:80"
    scripts, fifo = run.scripts(), run.fifo()
    if init:
        assert sorted(scripts) == ["down failing", "up failing", "up passing"]
        assert scripts.index("up failing") < scripts.index("down failing")
        assert sorted(fifo) == sorted([f"{passing} UP", f"{failing} UP", f"{failing} DOWN"])
        assert fifo.index(f"{failing} UP") < fifo.index(f"{failing} DOWN")
    else:
        assert scripts == ["down failing"]
        assert fifo == [f"{failing} DOWN"]
    # the start is never mailed: the passing server has no mail either way
    assert all(str(up_port) not in subject for subject, _ in run.mail.subjects_and_bodies())


@pytest.mark.parametrize("quiet", [False, True], ids=["default", "no_checker_emails"])
async def test_no_checker_emails_mails_only_what_changes_the_servers_state(
    tmp_path: Path,
    nats_server_factory: Callable[[], NatsServer],
    mailbox: tuple[Mailbox, int],
    quiet: bool,
) -> None:
    run, _up, down_port = await run_start(
        tmp_path, nats_server_factory(), mailbox, "no_checker_emails" if quiet else ""
    )
    subject = f"[lab1] Realserver [127.0.0.1]:tcp:{down_port} of virtual server [127.0.0.1]:tcp:80 - DOWN"
    mail = (subject, "=> TCP CHECK failed on service <=")
    # keepalived: one mail per failing checker (the second while the server is already down), or one
    assert run.mail.subjects_and_bodies() == [mail] if quiet else [mail, mail]

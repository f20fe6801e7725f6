"""A webhook's credentials never leave the notifier: not in its log, its ``status``, nor the dead letter.

The notifier runs as a real process (``python -m services.notifier``, the
runner's logging) on a real nats-server, with a webhook sink from
lifeline.toml whose URL carries a password and a ``?token=`` and whose headers
carry a bearer token.  The receiver is a real local HTTP server that answers
500, so the sink fails, retries and dead-letters; the receiver proves the
credentials were still sent.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from shared.events import DEAD_LETTER_STREAM, VrrpState, decode_dead_letter, status_subject
from shared.lab.daemon import Daemon
from shared.lab.nats import NatsServer
from shared.lab.wait import await_until
from tests.notifier.test_delivery_support import publisher, transition, write_config

pytestmark = pytest.mark.nats

R = "<redacted>"
PASSWORD, TOKEN, BEARER = "Hook-Pass-91x", "Hook-Tok-92x", "Hook-Bearer-93x"
SECRETS = (PASSWORD, TOKEN, BEARER)


class Refusing:
    """An HTTP/1.1 server answering every request with 500; it keeps what it received."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.port = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            ),
            0,
        )
        await reader.readexactly(length)
        self.requests.append(head)
        writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.fixture
async def receiver() -> AsyncIterator[Refusing]:
    refusing = Refusing()
    server = await asyncio.start_server(refusing.handle, "127.0.0.1", 0)
    refusing.port = server.sockets[0].getsockname()[1]
    try:
        yield refusing
    finally:
        server.close()
        await server.wait_closed()


def notifier(tmp_path: Path, url: str, hook_port: int) -> Daemon:
    settings = tmp_path / "lifeline.toml"
    settings.write_text(
        "[[sinks]]\n"
        'name = "hook"\n'
        'kind = "webhook"\n'
        "[sinks.options]\n"
        f'url = "http://hookuser:{PASSWORD}@127.0.0.1:{hook_port}/hook?token={TOKEN}&x=1"\n'
        f'headers = {{Authorization = "Bearer {BEARER}"}}\n'
        "delivery = {max_attempts = 2, initial_delay = 0.05, max_delay = 0.1}\n"
    )
    conf = write_config(tmp_path / "keepalived.conf")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_") or k == "LIFELINE_STATE_DIR"}
    provision = [  # what the admin runs first: the sink's consumer, from the same two files
        sys.executable, "-m", "shared.cli.main", "bus", "provision", "--config", str(conf), "--node", "n1",
        "--nats", url, "--settings", str(settings), "--no-health", "--ack-wait", "5",
    ]  # fmt: skip
    done = subprocess.run(provision, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "n1: consumer notifier_hook: created" in done.stdout, done.stderr
    argv = [
        sys.executable, "-m", "services.notifier", "--config", str(conf), "--node", "n1", "--nats", url,
        "--settings", str(settings), "--no-health", "--ack-wait", "5",
    ]  # fmt: skip
    return Daemon(argv, tmp_path / "notifier.log", env=env).start()


async def test_a_failing_webhook_shows_no_credential_anywhere(
    tmp_path: Path, server: NatsServer, nc: Any, receiver: Refusing
) -> None:
    daemon = notifier(tmp_path, server.url, receiver.port)
    try:
        await await_until("the notifier's ready line", lambda: "notifier ready" in daemon.output(), 30)
        pub = await publisher(nc, "n1")
        pub.publish(transition("VI_1", VrrpState.MASTER))
        js = nc.jetstream()
        await await_until("the dead letter stream", lambda: _stream_exists(js), 10)
        sub = await js.pull_subscribe("lifeline.n1.notify.dead.hook", stream=DEAD_LETTER_STREAM)
        [msg] = await sub.fetch(1, timeout=30)
        letter = decode_dead_letter(msg.data)
        reply = await nc.request(status_subject("n1", "notifier"), b"", timeout=5)
        await pub.close()
    finally:
        daemon.stop()
    # the receiver got the credentials: the sink still sends them
    assert len(receiver.requests) == 2
    sent = receiver.requests[0].decode()
    assert f"POST /hook?token={TOKEN}&x=1 HTTP/1.1" in sent and f"Bearer {BEARER}" in sent
    # ... and nothing the notifier wrote or answered shows them
    shown_url = f"http://hookuser:{R}@127.0.0.1:{receiver.port}/hook?token={R}&x=1"
    assert letter.sink == "hook" and letter.attempts == 2
    assert letter.reason == f"POST {shown_url} answered 500"
    hook = msgspec.json.decode(reply.data)["detail"]["sinks"]["hook"]
    assert hook["dead_lettered"] == 1 and hook["last_error"] == f"POST {shown_url} answered 500"
    log = daemon.output()
    assert "gave up on" in log and shown_url in log  # it did log the failure, redacted
    for secret in SECRETS:
        assert secret not in log, log
        assert secret not in reply.data.decode()
        assert secret not in msg.data.decode()


async def _stream_exists(js: Any) -> bool:
    try:
        await js.stream_info(DEAD_LETTER_STREAM)
    except Exception:
        return False
    return True

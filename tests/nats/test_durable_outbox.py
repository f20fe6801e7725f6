"""The durable outbox against a real nats-server and real processes killed with SIGKILL.

What an operator saw on a bad day: vrrp killed while the node's nats-server was
down lost the transitions it had not handed over.  Here the transitions of a
killed process reach the stream after the next start, exactly once and in
order, before the new process's own.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import nats
from nats.js import JetStreamContext

from shared.bus.core.outbox_log import parse
from shared.events import EVENT_STREAM, MSG_ID_HEADER, InstanceState, decode, instance_subject
from shared.lab.daemon import Daemon
from shared.lab.nats import NatsServer
from shared.lab.wait import await_until, wait_until

NODE = "outbox-node"


def probe(server: NatsServer, outbox: Path, log: Path, tag: str, count: int) -> Daemon:
    argv = [sys.executable, "-m", "tests.support.outbox_probe", "--nats", server.url, "--node", NODE]
    argv += ["--outbox", str(outbox), "--count", str(count), "--tag", tag]
    return Daemon(argv, log).start()


def lines(log: Path, prefix: str) -> list[str]:
    text = log.read_text() if log.exists() else ""
    return [line.split()[1] for line in text.splitlines() if line.startswith(prefix)]


async def stream_events(js: JetStreamContext) -> list[tuple[str, InstanceState]]:
    """(Nats-Msg-Id, event) of every message on the node's instance subject, in stream order."""
    info = await js.stream_info(EVENT_STREAM)
    found: list[tuple[str, InstanceState]] = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(EVENT_STREAM, seq, direct=True)
        if msg.subject == instance_subject(NODE, "VI_1"):
            found.append(((msg.headers or {})[MSG_ID_HEADER], decode(msg.data or b"", InstanceState)))
    return found


async def test_transitions_of_a_killed_process_reach_the_stream_once_in_order(
    nats_server_factory: object, tmp_path: Path
) -> None:
    server: NatsServer = nats_server_factory()  # type: ignore[operator]
    outbox = tmp_path / "state" / NODE / "outbox" / "vrrp.log"
    server.stop()

    first = probe(server, outbox, tmp_path / "first.log", "first", 3)
    wait_until("3 transitions published", lambda: len(lines(tmp_path / "first.log", "published")) == 3, 20)
    first.send(signal.SIGKILL)
    first.wait()
    assert len(parse(outbox.read_bytes()).records) == 3  # what the dead process left behind

    second = probe(server, outbox, tmp_path / "second.log", "second", 2)
    try:
        wait_until("2 more published", lambda: len(lines(tmp_path / "second.log", "published")) == 2, 20)
        server.start()
        wait_until("delivered", lambda: lines(tmp_path / "second.log", "flushed") == ["0"], 30)
        nc = await nats.connect(server.url)
        try:
            stored = await stream_events(nc.jetstream())
        finally:
            await nc.close()
    finally:
        second.stop()
    expected = lines(tmp_path / "first.log", "published") + lines(tmp_path / "second.log", "published")
    assert [mid for mid, _ in stored] == expected  # each once, the dead process's first, in order
    details = [event.detail for _, event in stored]
    assert details == ["first-0", "first-1", "first-2", "second-0", "second-1"]
    assert outbox.stat().st_size == 0  # everything acknowledged: compacted away


async def test_a_replay_after_the_stream_already_stored_adds_nothing(
    nats_server_factory: object, tmp_path: Path
) -> None:
    """Killed after the stream stored its events but before it noted the acks: the next start re-sends,
    and the stream (Nats-Msg-Id) keeps one copy."""
    server: NatsServer = nats_server_factory()  # type: ignore[operator]
    outbox = tmp_path / "vrrp.log"
    server.stop()
    first = probe(server, outbox, tmp_path / "first.log", "first", 3)
    wait_until("3 transitions published", lambda: len(lines(tmp_path / "first.log", "published")) == 3, 20)
    first.send(signal.SIGSTOP)  # frozen with its file full of unacknowledged events
    saved = outbox.read_bytes()
    first.send(signal.SIGCONT)
    server.start()
    wait_until("delivered", lambda: lines(tmp_path / "first.log", "flushed") == ["0"], 30)
    first.send(signal.SIGKILL)
    first.wait()
    outbox.write_bytes(saved)  # as if it died between the stream's ack and its own ack record

    second = probe(server, outbox, tmp_path / "second.log", "second", 1)
    try:
        await await_until("delivered", lambda: lines(tmp_path / "second.log", "flushed") == ["0"], 30)
        nc = await nats.connect(server.url)
        try:
            stored = await stream_events(nc.jetstream())
        finally:
            await nc.close()
    finally:
        second.stop()
    assert [event.detail for _, event in stored] == ["first-0", "first-1", "first-2", "second-0"]

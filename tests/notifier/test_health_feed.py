"""Real-server up/down reaches the notifier durably: the real checker, the ``health`` subject, scripts.

The checker publishes every transition on ``lifeline.<node>.health.<virtual>.<real>``
(captured by ``LIFELINE_EVENTS``) as well as on the core ``check`` subject; the
notifier reads only the stream.  A notifier that is stopped while a real server
goes down and up again runs ``notify_down`` then ``notify_up`` when it is back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from services.notifier.service import NotifierOptions, NotifierService
from shared.bus import connect
from shared.config.load import load
from shared.events import EVENT_STREAM, RealServerHealth, decode
from shared.lab.nats import NatsServer, free_port
from shared.lab.wait import await_until
from shared.settings import Settings
from tests.checker.service_support import start_service
from tests.notifier.test_delivery_support import FAST, lines, recorder, start

pytestmark = pytest.mark.nats


def notifier(conf: Path, node: str, url: str) -> NotifierService:
    opts = NotifierOptions(health=True, lease_ttl=1.5, delivery=dict(FAST))
    return NotifierService(load(conf).config, Settings(node=node), node=node, nats_url=url, options=opts)


async def test_real_server_down_and_up_while_the_notifier_is_stopped_run_the_scripts_after(
    tmp_path: Path, nats_server_factory: Callable[[], NatsServer]
) -> None:
    server = nats_server_factory()
    port = free_port()
    out = tmp_path / "out"
    rec = recorder(tmp_path / "rec.sh", out)
    conf = tmp_path / "k.conf"
    conf.write_text(f"""
global_defs {{
  rs_init_notifies
}}
virtual_server 127.0.0.1 80 {{
  delay_loop 0.3
  protocol TCP
  lb_algo rr
  lb_kind NAT
  real_server 127.0.0.1 {port} {{
    notify_up "{rec} up"
    notify_down "{rec} down"
    TCP_CHECK {{
      connect_timeout 0.3
      retry 0
      warmup 0
      delay_loop 0.3
    }}
  }}
}}
""")
    listener = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", port)
    svc = notifier(conf, "n1", server.url)
    await start(svc)
    checker = await start_service(conf, "n1", server.url)
    try:
        # the first verdict confirms the start: notified because of rs_init_notifies (keepalived's rule)
        await await_until("notify_up at the first verdict", lambda: len(lines(out)) >= 1, 10)
        await svc.stop()  # the notifier is away while the real server goes down and comes back
        listener.close()
        await listener.wait_closed()
        await asyncio.sleep(1.5)  # several delay_loops: the checker sees it down
        listener = await asyncio.start_server(lambda _r, w: w.close(), "127.0.0.1", port)
        await asyncio.sleep(1.5)
        assert len(lines(out)) == 1

        svc = notifier(conf, "n1", server.url)
        await start(svc)
        await await_until("notify_down and notify_up after the restart", lambda: len(lines(out)) >= 3, 10)
        await asyncio.sleep(0.5)
        assert [line.split()[0] for line in lines(out)] == ["up", "down", "up"]

        # the stream holds the transitions only: the heartbeats stayed on core NATS
        nc = await connect(server.url, "test")
        try:
            js = nc.jetstream()
            sub = await js.pull_subscribe("lifeline.n1.health.>", stream=EVENT_STREAM)
            msgs = await sub.fetch(10, timeout=2)
            stored = [decode(m.data, RealServerHealth) for m in msgs]
            assert [(e.up, e.changed) for e in stored] == [(True, True), (False, True), (True, True)]
        finally:
            await nc.close()
    finally:
        await checker.stop()
        await svc.stop()
        listener.close()

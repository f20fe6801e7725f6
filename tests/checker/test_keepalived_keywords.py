"""``checker_log_all_failures``, ``fast_recovery`` and ``SSL { ca }`` on the real checker, as in 2.2.7.

* ``checker_log_all_failures``: every failed attempt of an up checker is logged
  (the retries too), not only the transition; a down checker's failures are not.
* ``fast_recovery``: without it an HTTP_GET that went down needs a second
  passing round before it is up (keepalived re-checks every url, one per
  ``delay_loop``, after the failed one passes); with it the first one is enough.
  The server counts the requests, so nothing here depends on timing.
* ``SSL { ca }``: loaded, but the real server's certificate is not verified
  (keepalived 2.2.7 never asks for it: a server whose certificate another CA
  signed passes there and here); a ``ca`` that cannot be loaded stops the start
  and refuses a reload.  The CAs and the certificate are made in the test.
"""

from __future__ import annotations

import logging
import shutil
import ssl
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from services.checker.scheduler import RealServerUnit
from services.checker.service import CheckerService
from shared.config.load import load_strict
from shared.config.model import Config
from shared.events import Event, RealServerHealth
from shared.lab.nats import NatsServer, free_port
from shared.lab.wait import await_until
from shared.runner.run import ReloadRefused, StartFailed
from tests.checker.servers import HttpServer
from tests.checker.service_support import Recorder, start_service

LOGGER = "lifeline.checker.scheduler"


def node_name() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def vs(rs: str) -> str:
    return f"virtual_server 127.0.0.1 80 {{\n  protocol TCP\n  lb_algo rr\n  lb_kind NAT\n{rs}\n}}\n"


def up_event(real: str, up: bool) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, RealServerHealth) and e.real == real and e.up is up and e.changed


def probes(svc: CheckerService, real: str) -> int:
    """Probes of ``real`` so far (the service's own counters)."""
    units = [u for u in svc.units.values() if isinstance(u, RealServerUnit)]
    total = 0
    for row in (row for u in units for row in u.status() if row["real"] == real):
        counters = row["counters"]
        assert isinstance(counters, dict)
        total += int(counters["probes"])
    return total


WHERE = ["global_defs", "checker", None]


@pytest.mark.parametrize("where", WHERE, ids=["checker_log_all_failures", "log_all_failures", "default"])
async def test_log_all_failures_logs_each_failed_attempt_while_up(
    tmp_path: Path, nats_server: NatsServer, caplog: pytest.LogCaptureFixture, where: str | None
) -> None:
    http = await HttpServer().start()
    port = http.port
    own = " log_all_failures\n" if where == "checker" else ""
    check = f"TCP_CHECK {{\n connect_timeout 0.3\n retry 2\n delay_before_retry 0.1\n delay_loop 0.2\n{own}}}"
    conf = tmp_path / "k.conf"
    glob = "global_defs {\n  checker_log_all_failures\n}\n" if where == "global_defs" else ""
    conf.write_text(glob + vs(f"  real_server 127.0.0.1 {port} {{\n    {check}\n    warmup 0\n  }}"))
    log_all = where is not None
    node, real = node_name(), f"127.0.0.1:{port}"
    rec = await Recorder().start(nats_server.url, node)
    caplog.set_level(logging.INFO, logger=LOGGER)
    svc = await start_service(conf, node, nats_server.url)
    try:
        await rec.arrival(up_event(real, True))
        await http.stop()  # refused from now on
        await rec.arrival(up_event(real, False), since=len(rec.events))
        more = probes(svc, real) + 3  # three more probes of the down checker: not logged
        await await_until("three more probes", lambda: probes(svc, real) >= more, 10, 0.02)
        lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
        failures = [m for m in lines if m.startswith(f"TCP_CHECK {real} of ") and "failed: ECONNREFUSED" in m]
        transitions = [
            m for m in lines if m.startswith(f"TCP_CHECK on {real} of ") and "failed after 2 retries" in m
        ]
        assert len(transitions) == 1, lines
        assert len(failures) == (3 if log_all else 0), (
            "the first failure and its 2 retries, not the later ones"
        )
    finally:
        await svc.stop()
        await rec.close()


class Switchable(HttpServer):
    """An HTTP server whose ``/ok`` can be made to answer 503; it counts the requests after a mark."""

    broken = False

    async def _handle(self, reader, writer) -> None:  # type: ignore[no-untyped-def]
        if not self.broken:
            await super()._handle(reader, writer)
            return
        await reader.readuntil(b"\r\n\r\n")
        self.requests.append(b"503")
        writer.write(b"HTTP/1.0 503 X\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()


@pytest.mark.parametrize(("fast", "passes"), [(False, 2), (True, 1)], ids=["default", "fast_recovery"])
async def test_fast_recovery_decides_how_many_passing_rounds_bring_a_server_back(
    tmp_path: Path, nats_server: NatsServer, fast: bool, passes: int
) -> None:
    server = Switchable()
    await server.start()
    real = f"127.0.0.1:{server.port}"
    check = "HTTP_GET {\n url {\n  path /ok\n }\n connect_timeout 0.5\n retry 0\n delay_loop 0.3\n warmup 0\n"
    check += " fast_recovery\n}" if fast else "}"
    conf = tmp_path / "k.conf"
    conf.write_text(vs(f"  real_server 127.0.0.1 {server.port} {{\n    {check}\n  }}"))
    node = node_name()
    rec = await Recorder().start(nats_server.url, node)
    svc = await start_service(conf, node, nats_server.url)
    try:
        await rec.arrival(up_event(real, True))
        server.broken = True
        await rec.arrival(up_event(real, False), since=len(rec.events))
        mark, seen = len(server.requests), len(rec.events)
        server.broken = False
        await rec.arrival(up_event(real, True), timeout=10, since=seen)
        answered_ok = [r for r in server.requests[mark:] if r != b"503"]
        assert len(answered_ok) == passes, f"{len(answered_ok)} passing rounds before up"
    finally:
        await svc.stop()
        await rec.close()
        await server.stop()


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=60)


@pytest.fixture
def two_cas(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """CA ``mine`` (the configured ``ca``); the server's context, its certificate signed by CA ``other``."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl CLI")
    for ca in ("mine", "other"):
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={ca} CA",
                "-keyout", tmp_path / f"{ca}.key", "-out", tmp_path / f"{ca}.pem")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
            "-keyout", tmp_path / "server.key", "-out", tmp_path / "server.csr")  # fmt: skip
    openssl("x509", "-req", "-in", tmp_path / "server.csr", "-CA", tmp_path / "other.pem",
            "-CAkey", tmp_path / "other.key", "-CAcreateserial", "-days", "1",
            "-out", tmp_path / "server.pem")  # fmt: skip
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    return tmp_path / "mine.pem", ctx


def ssl_conf(ca: Path, port: int) -> str:
    check = "SSL_GET {\n url {\n  path /ok\n }\n connect_timeout 1\n retry 0\n delay_loop 0.3\n warmup 0\n}"
    return f"SSL {{\n  ca {ca}\n}}\n" + vs(f"  real_server 127.0.0.1 {port} {{\n    {check}\n  }}")


async def test_ssl_ca_is_loaded_but_the_server_certificate_is_not_verified(
    tmp_path: Path, nats_server: NatsServer, two_cas: tuple[Path, ssl.SSLContext]
) -> None:
    ca, server_tls = two_cas
    server = await HttpServer().start(tls=server_tls)
    conf = tmp_path / "k.conf"
    conf.write_text(ssl_conf(ca, server.port))
    node = node_name()
    rec = await Recorder().start(nats_server.url, node)
    svc = await start_service(conf, node, nats_server.url)
    try:
        _, event = await rec.arrival(up_event(f"127.0.0.1:{server.port}", True))
        assert isinstance(event, RealServerHealth) and event.up, (
            "another CA's certificate passes, as in 2.2.7"
        )
        missing = tmp_path / "missing-ca.pem"
        with pytest.raises(ReloadRefused, match=f"cannot load.*{missing.name}|{missing}"):
            await svc.apply(_load(tmp_path, ssl_conf(missing, server.port)))
    finally:
        await svc.stop()
        await rec.close()
        await server.stop()


def _load(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "next.conf"
    path.write_text(text)
    return load_strict(path)


async def test_a_ca_that_cannot_be_loaded_stops_the_start(tmp_path: Path, nats_server: NatsServer) -> None:
    conf = tmp_path / "k.conf"
    conf.write_text(ssl_conf(tmp_path / "nowhere.pem", free_port()))
    with pytest.raises(StartFailed, match=r"SSL .*nowhere\.pem.*cannot load"):
        await start_service(conf, node_name(), nats_server.url)

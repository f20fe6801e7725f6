"""The one service runner (``shared/runner``), through a real process and a real nats-server.

The service under test is ``tests/support/runner_probe.py``: a minimal service
the runner cannot tell from the real four, so these tests pin what the runner
promises every service: signals held from the first instruction (a SIGHUP or
SIGTERM during start-up is never fatal), one config policy (exit 78 with
``file:line`` at start; a refused reload keeps the old configuration and is
published with its errors), the ready line, ``sd_notify`` for ``Type=notify``
units, and the ``ExecReload=`` line of every systemd unit.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
import nats
import pytest

from shared.events import (
    ReloadReply,
    ReloadTrigger,
    ServiceReload,
    decode,
    reload_subject,
    service_reload_subject,
)
from shared.exit_codes import Exit
from shared.runner.signals import blocked_for_child
from tests.support.nats import NatsServer

pytestmark = pytest.mark.nats

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "deploy" / "systemd"
LAUNCH = "import sys; from shared.runner import launch; sys.exit(launch('tests.support.runner_probe:SPEC'))"

CONF = """\
vrrp_instance {name} {{
    interface lo
    virtual_router_id 51
    priority 100
    virtual_ipaddress {{
        192.0.2.1/32
    }}
}}
"""
BROKEN = "vrrp_instance VI_1 {\n    priority 300\n}\n"


class Probe:
    """``python -c LAUNCH`` as a child: stdout lines collected in a thread, so waiting never blocks."""

    def __init__(self, conf: Path, *args: str, env: dict[str, str] | None = None, held: bool = False) -> None:
        argv = [sys.executable, "-c", LAUNCH, "--config", str(conf), "--node", "rt", *args]
        settings = conf.parent / "empty.toml"
        settings.write_text("")
        argv += ["--settings", str(settings)]
        blocked = blocked_for_child() if held else _nothing()
        with blocked:
            self.proc = subprocess.Popen(
                argv,
                cwd=REPO,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, **(env or {})},
            )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_line(self, pattern: str, timeout: float = 15.0, count: int = 1) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if sum(bool(re.search(pattern, line)) for line in self.lines) >= count:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.01)
        stderr = self.proc.stderr.read() if self.proc.poll() is not None and self.proc.stderr else ""
        raise AssertionError(f"no {count}x {pattern!r} in {self.lines}; exit {self.proc.poll()} {stderr}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(15)


class _nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None


@pytest.fixture
def conf(tmp_path: Path) -> Path:
    path = tmp_path / "keepalived.conf"
    path.write_text(CONF.format(name="VI_1"))
    return path


@pytest.fixture
def probes() -> Iterator[list[Probe]]:
    started: list[Probe] = []
    yield started
    for p in started:
        if p.proc.poll() is None:
            p.proc.kill()
            p.proc.wait()


def test_errors_at_start_exit_78_with_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.conf"
    bad.write_text(BROKEN)
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, "--config", str(bad), "--node", "rt", "--no-bus"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == Exit.CONFIG
    assert re.search(rf"{re.escape(str(bad))}:2: error: ", done.stderr), done.stderr
    assert "not starting" in done.stderr and "Traceback" not in done.stderr
    assert "ready" not in done.stdout


def test_instance_names_the_log_ident(tmp_path: Path) -> None:
    """``instance NAME``: every log line after the file is read says ``lifeline-<service>_NAME``."""
    named = tmp_path / "named.conf"
    named.write_text("instance blue\n" + CONF.format(name="VI_1"))
    probe = Probe(named, "--no-bus")
    try:
        probe.wait_line("ready")
    finally:
        assert probe.stop() == 0
    assert probe.proc.stderr is not None
    err = probe.proc.stderr.read()
    assert re.search(r"lifeline-probe_blue\[\d+\]: INFO Changing syslog ident to lifeline-probe_blue", err), (
        err
    )
    assert re.search(r"lifeline-probe_blue\[\d+\]: INFO signal 15: stopping", err), err


def test_a_missing_settings_file_is_an_error(conf: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, "--config", str(conf), "--settings", str(tmp_path / "nope.toml")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == Exit.CONFIG
    assert "nope.toml: no such settings file" in done.stderr


def test_a_bad_log_facility_is_a_usage_error(conf: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, "--config", str(conf), "--log-facility", "local9"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == Exit.USAGE
    assert "local0-local7" in done.stderr


def test_sighup_at_the_first_instruction_is_applied_after_ready(conf: Path, probes: list[Probe]) -> None:
    """Blocked across exec (what ``lifeline up`` does), a HUP sent at once waits for the handlers."""
    probe = Probe(conf, "--no-bus", "--start-delay", "0.5", held=True)
    probes.append(probe)
    probe.signal(signal.SIGHUP)
    probe.wait_line(r"^lifeline-probe ready$")
    probe.wait_line(r"^lifeline-probe reloaded: instances VI_1$")
    lines = probe.lines
    assert lines.index("lifeline-probe ready") < lines.index("lifeline-probe reloaded: instances VI_1")
    assert probe.proc.poll() is None
    assert probe.stop() == Exit.OK


def test_sighup_during_start_up_is_applied_once_after_ready(conf: Path, probes: list[Probe]) -> None:
    probe = Probe(conf, "--no-bus", "--start-delay", "1.0")
    probes.append(probe)
    probe.wait_line("probe starting")
    conf.write_text(CONF.format(name="VI_2"))
    for _ in range(3):  # several HUPs while starting: one reload of the newest file
        probe.signal(signal.SIGHUP)
    probe.wait_line(r"^lifeline-probe reloaded: instances VI_2$")
    time.sleep(0.3)
    assert sum("reloaded" in line for line in probe.lines) == 1, probe.lines
    assert probe.stop() == Exit.OK


def test_sigterm_during_start_up_stops_cleanly(conf: Path, probes: list[Probe]) -> None:
    probe = Probe(conf, "--no-bus", "--start-delay", "30")
    probes.append(probe)
    probe.wait_line("probe starting")
    began = time.monotonic()
    assert probe.stop() == Exit.OK
    assert time.monotonic() - began < 10
    assert "probe stopping" in probe.lines and "lifeline-probe ready" not in probe.lines


def test_a_failed_start_exits_1_and_stops_what_started(conf: Path, probes: list[Probe]) -> None:
    probe = Probe(conf, "--no-bus", "--fail-start")
    probes.append(probe)
    assert probe.proc.wait(15) == Exit.PROBLEMS
    assert probe.proc.stderr is not None
    assert "cannot start: the probe was told to fail its start" in probe.proc.stderr.read()
    assert "probe stopping" in probe.lines and "lifeline-probe ready" not in probe.lines


def unit_lines(unit: Path, key: str) -> list[list[str]]:
    """Every ``key=`` command of a unit, split as systemd does (continuations joined, prefixes apart)."""
    text = unit.read_text().replace("\\\n", " ")
    commands = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(f"{key}=")]
    return [shlex.split(command) for command in commands]


def start_unit(name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """What ``systemctl start NAME`` runs for a oneshot unit: its ``ExecStart=``, with this interpreter."""
    ((binary, *args),) = unit_lines(UNITS / name, "ExecStart")
    assert binary == "/opt/lifeline/bin/python", binary
    argv = [sys.executable, *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_every_unit_reload_command_reloads(
    conf: Path, tmp_path: Path, nats_server: NatsServer, probes: list[Probe]
) -> None:
    """The exact ``ExecReload=`` lines of each service unit, in order, with systemd's ``$MAINPID`` filled in.

    A line that starts another unit (the notifier provisions the bus before its
    HUP) runs that unit's ``ExecStart=`` as systemd would, here against a real
    nats-server, for a file whose notify script the provisioning must find.
    """
    probe = Probe(conf, "--no-bus")
    probes.append(probe)
    probe.wait_line("ready")
    units = sorted(UNITS.glob("lifeline-*.service"))
    services = [u for u in units if u.name not in ("lifeline-nats.service", "lifeline-provision.service")]
    assert {u.name for u in services} == {
        f"lifeline-{s}.service" for s in ("vrrp", "checker", "lvs", "notifier", "http", "bfd")
    }
    keepalived = tmp_path / "keepalived.conf"
    keepalived.write_text(
        CONF.format(name="VI_1").replace("priority 100\n", "priority 100\n    notify /bin/true\n")
    )
    (tmp_path / "empty.toml").write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFELINE_") or k == "LIFELINE_STATE_DIR"}
    env |= {
        "LIFELINE_NODE": "unit-reload",
        "LIFELINE_CONFIG": str(keepalived),
        "LIFELINE_NATS_URL": nats_server.url,
        "LIFELINE_SETTINGS": str(tmp_path / "empty.toml"),
    }
    provisioned: list[str] = []
    for n, unit in enumerate(services, start=1):
        hup_sent = False
        for argv in unit_lines(unit, "ExecReload"):
            command = [argv[0].lstrip("-+@:!"), *argv[1:]]
            if command[:2] == ["/bin/systemctl", "start"]:
                assert not hup_sent, f"{unit.name}: the bus is provisioned after the HUP"
                done = start_unit(command[2], env)
                assert done.returncode == 0, done.stdout + done.stderr
                provisioned.append(unit.name)
                assert "unit-reload: consumer notifier_script: created" in done.stdout, done.stdout
                continue
            hup = [w.replace("$MAINPID", str(probe.proc.pid)) for w in command]
            subprocess.run(hup, check=True, timeout=10)
            hup_sent = hup_sent or "-HUP" in hup
        probe.wait_line("lifeline-probe reloaded", count=n)
        assert "Type=notify" in unit.read_text()
    assert provisioned == ["lifeline-notifier.service"]
    assert probe.stop() == Exit.OK


def test_sd_notify_ready_reloading_ready_stopping(conf: Path, tmp_path: Path, probes: list[Probe]) -> None:
    address = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(15)
    try:
        probe = Probe(conf, "--no-bus", env={"NOTIFY_SOCKET": address})
        probes.append(probe)
        assert sock.recv(4096).decode().startswith("READY=1")
        probe.signal(signal.SIGHUP)
        assert sock.recv(4096).decode().startswith("RELOADING=1\nMONOTONIC_USEC=")
        assert sock.recv(4096).decode() == "READY=1"
        probe.signal(signal.SIGTERM)
        assert sock.recv(4096).decode() == "STOPPING=1"
        assert probe.proc.wait(15) == Exit.OK
    finally:
        sock.close()


async def test_refused_reloads_keep_the_old_file_and_are_published(
    conf: Path, nats_server: NatsServer, probes: list[Probe]
) -> None:
    nc = await nats.connect(nats_server.url)
    got: list[ServiceReload] = []
    try:
        sub = await nc.subscribe(service_reload_subject("rt", "probe"))
        probe = Probe(conf, "--nats", nats_server.url)
        probes.append(probe)
        await asyncio.to_thread(probe.wait_line, "ready")

        conf.write_text(BROKEN)
        probe.signal(signal.SIGHUP)
        got.append(decode((await sub.next_msg(timeout=10)).data, ServiceReload))
        await asyncio.to_thread(probe.wait_line, r"^lifeline-probe reload refused: [1-9][0-9]* error\(s\)$")
        kept = await nc.request("lifeline.rt.ctl.probe.status", b"", timeout=5)

        conf.write_text(CONF.format(name="REFUSE_ME"))  # valid, but the service refuses it
        refusal = msgspec.json.decode(
            (await nc.request(reload_subject("rt", "probe"), b"", timeout=10)).data, type=ReloadReply
        )
        got.append(decode((await sub.next_msg(timeout=10)).data, ServiceReload))

        conf.write_text(CONF.format(name="VI_9"))
        reply = msgspec.json.decode(
            (await nc.request(reload_subject("rt", "probe"), b"", timeout=10)).data, type=ReloadReply
        )
        got.append(decode((await sub.next_msg(timeout=10)).data, ServiceReload))
        status = await nc.request("lifeline.rt.ctl.probe.status", b"", timeout=5)
    finally:
        await nc.close()
    assert b'"VI_1"' in kept.data  # the refused file changed nothing
    assert not refusal.ok and refusal.errors == ["the probe refuses an instance named REFUSE_ME"]
    assert reply.ok and reply.detail == "instances VI_9"
    broken, refused_event, applied = got
    assert not broken.ok and broken.trigger is ReloadTrigger.SIGNAL and broken.config == str(conf)
    assert broken.errors and all(e.startswith(f"{conf}:") for e in broken.errors)
    assert any(e.startswith(f"{conf}:2: error: ") for e in broken.errors), broken.errors
    assert not refused_event.ok and refused_event.trigger is ReloadTrigger.REQUEST
    assert refused_event.errors == ("the probe refuses an instance named REFUSE_ME",)
    assert applied.ok and applied.detail == "instances VI_9"
    assert b'"VI_9"' in status.data  # the applied file is the one running
    assert probe.stop() == Exit.OK

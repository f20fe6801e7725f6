"""keepalived-compat mode: keepalived's pid files and its dump signals, for tools written against keepalived.

Why: an exporter or agent plugin reads the pid in ``/run/keepalived.pid``,
sends it SIGUSR1, SIGUSR2 or the JSON signal (``keepalived --signum=JSON``,
SIGRTMIN+2) and reads ``/tmp/keepalived.data``, ``.stats`` or ``.json``.
With ``[keepalived_compat] enabled = true`` in lifeline.toml the vrrp
service answers exactly that (the formats are ``core/keepalived_dumps.py``).

Order matters: those signals kill a process that has no handler, so the
handlers are installed before the pid files name this process, and at stop
the pid files go first and the signals are then ignored, never reset.  A pid file naming a live process
other than this one (a keepalived still running) is never overwritten: the
service refuses to start, saying whose it is.  Dumps are rendered on the
loop (one consistent view of the instances) and written from a thread
(``shared.safe_files.write_atomic``: a temporary file, then a rename, never
through a symlink planted in the world-writable ``/tmp``), so a slow disk
never delays an advert.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable, Mapping
from pathlib import Path

import msgspec

from services.vrrp.core.keepalived_dumps import (
    DumpInstance,
    DumpScript,
    render_data,
    render_json,
    render_stats,
    stats_from_counters,
    vip_text,
)
from services.vrrp.core.machine_types import State
from services.vrrp.core.trackers import TrackerBook
from services.vrrp.instance import InstanceRunner
from services.vrrp.kernel.addresses import Vip
from shared.config.model import Config
from shared.runner.run import StartFailed
from shared.safe_files import read_regular, write_atomic
from shared.settings import KeepalivedCompatSettings

log = logging.getLogger("lifeline.vrrp.compat")

SIGJSON = int(signal.SIGRTMIN) + 2
"""``keepalived --signum=JSON`` on Linux with glibc (36); DATA is SIGUSR1, STATS SIGUSR2 everywhere."""

DUMP_FILES = {
    int(signal.SIGUSR1): "keepalived.data",
    int(signal.SIGUSR2): "keepalived.stats",
    SIGJSON: "keepalived.json",
}
"""Signal number → the file keepalived 2.2.7 writes for it (in ``dump_dir``)."""


class PidFileTaken(StartFailed):
    """A live process other than this one owns a keepalived pid file."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def _pid_in(path: Path) -> int | None:
    try:
        raw = read_regular(path, limit=64)
    except FileNotFoundError:
        return None
    try:
        return int(raw.decode().strip())
    except ValueError:
        return None


def claim_pid_file(path: Path, pid: int) -> None:
    """Write ``pid`` to ``path`` unless a live process other than ``pid`` is named there."""
    owner = _pid_in(path)
    if owner is not None and owner != pid and _alive(owner):
        raise PidFileTaken(
            f"{path} names running process {owner} ({_command(owner)}): keepalived-compat mode never takes"
            " a live keepalived's pid file; stop and disable keepalived first, or point"
            " [keepalived_compat] pid_file/vrrp_pid_file elsewhere"
        )
    write_atomic(path, f"{pid}\n".encode(), mode=0o644, dir_mode=None)


def release_pid_file(path: Path, pid: int) -> None:
    """Remove ``path`` if it still names ``pid`` (a successor's file is left alone)."""
    with contextlib.suppress(OSError):
        if _pid_in(path) == pid:
            path.unlink()


# --------------------------------------------------------------------------- snapshot


def _vip_texts(vips: tuple[Vip, ...], interface: str, installed: bool) -> tuple[str, ...]:
    out = []
    for v in vips:
        scope = v.scope if v.scope is not None else ("link" if v.address.ip.is_link_local else "global")
        brd = str(v.brd) if v.brd is not None else None
        dev = v.dev or interface
        text = vip_text(str(v.address), dev, scope=str(scope), brd=brd, label=v.label, installed=installed)
        out.append(text)
    return tuple(out)


def _state_name(state: State) -> str:
    return "INIT" if state is State.STOPPED else state.value


def dump_instance(runner: InstanceRunner, commands: Mapping[str, str]) -> DumpInstance:
    """What keepalived's dumps would say about this running instance."""
    plan, m, p = runner.plan, runner.machine, runner.plan.params
    t, garp = plan.transport, p.garp
    state = _state_name(m.state)
    vip_dev = plan.vmac.name if plan.vmac is not None else p.interface
    scripts = tuple((s.name, s.weight) for s in p.trackers if s.kind == "script")
    return DumpInstance(
        iname=runner.name,
        interface=p.interface,
        vmac_ifname=plan.vmac.name if plan.vmac is not None else "",
        vrid=p.vrid,
        version=p.version,
        state=state,
        wantstate="MASTER" if m.wants_master or m.state is State.MASTER else state,
        base_priority=m.base_priority,
        effective_priority=m.effective_priority,
        adver_int=p.advert_int_cs / 100,
        master_adver_int=m.master_adver_int_cs / 100,
        last_transition=runner.counters.last_transition,
        src_ip=str(t.src),
        vips=_vip_texts(plan.vips, vip_dev, m.state is State.MASTER),
        evips=_vip_texts(plan.excluded_vips, vip_dev, m.state is State.MASTER),
        master_router=str(m.master_address) if m.master_address is not None else None,
        master_priority=runner.master_priority,
        multicast_group=None if t.unicast else str(t.group),
        unicast_peers=tuple(str(d) for d in t.dsts) if t.unicast else (),
        accept=p.effective_accept,
        nopreempt=p.nopreempt,
        preempt_delay=p.preempt_delay,
        dont_track_primary=p.dont_track_primary,
        skip_check_adv_addr=plan.rx.skip_check_adv_addr,
        down_timer_adverts=p.down_timer_adverts,
        garp_delay=garp.master_delay,
        garp_rep=garp.master_repeat,
        garp_refresh=garp.master_refresh,
        garp_refresh_rep=garp.master_refresh_repeat,
        garp_lower_prio_delay=garp.lower_prio_delay,
        garp_lower_prio_rep=garp.lower_prio_repeat,
        lower_prio_no_advert=p.lower_prio_no_advert,
        higher_prio_send_advert=p.higher_prio_send_advert,
        auth_type=int(plan.rx.auth_type),
        track_scripts=scripts,
        track_script_commands=tuple(commands[name] for name, _ in scripts if name in commands),
        stats=stats_from_counters(msgspec.to_builtins(runner.counters)),
    )


def _quoted(argv: list[str]) -> str:
    return " ".join(f"'{arg}'" for arg in argv)


def dump_scripts(
    runners: Mapping[str, InstanceRunner], config: Config, book: TrackerBook
) -> list[DumpScript]:
    """The ``vrrp_script``s the instances track, with the last result the bus gave."""
    users: dict[str, list[tuple[str, int]]] = {}
    for runner in runners.values():
        for spec in runner.plan.params.trackers:
            if spec.kind == "script":
                users.setdefault(spec.name, []).append((runner.name, spec.weight))
    out = []
    for name, instances in users.items():
        script = config.vrrp.scripts.get(name)
        if script is None:
            continue
        view = book.view(name, "script", None)
        out.append(
            DumpScript(
                name=name,
                command=_quoted(script.script.argv) if script.script is not None else "",
                interval=script.interval,
                timeout=script.timeout or 0.0,  # keepalived shows 0 for "not set"
                weight=script.weight,
                rise=script.rise,
                fall=script.fall,
                ok=view.ok if view.known else None,
                instances=tuple(instances),
            )
        )
    return out


# --------------------------------------------------------------------------- shell


class KeepalivedCompat:
    """Pid files and dump signals of one vrrp process; ``start`` after the instances, ``stop`` before them."""

    def __init__(
        self,
        settings: KeepalivedCompatSettings,
        runners: Mapping[str, InstanceRunner],
        config: Callable[[], Config],
        book: TrackerBook,
    ) -> None:
        self.settings = settings
        self._runners = runners
        self._config = config
        self._book = book
        self._pid = os.getpid()
        self._claimed: list[Path] = []
        self._writes: set[asyncio.Future[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def pid_files(self) -> list[Path]:
        return [Path(self.settings.pid_file), Path(self.settings.vrrp_pid_file)]

    def start(self) -> None:
        """Handlers first (an unhandled SIGUSR1 or real-time signal kills), then the pid files.

        Raises :class:`PidFileTaken` (nothing claimed, handlers removed) when
        a live keepalived owns one of them.
        """
        self._loop = asyncio.get_running_loop()
        for sig in DUMP_FILES:
            self._loop.add_signal_handler(sig, self.dump, sig)
        try:
            for path in self.pid_files:
                claim_pid_file(path, self._pid)
                self._claimed.append(path)
        except BaseException:
            self.stop()
            raise
        log.info(
            "keepalived-compat: pid files %s; dumps to %s on signals %s",
            ", ".join(map(str, self._claimed)),
            self.settings.dump_dir,
            ", ".join(f"{num} ({name})" for num, name in DUMP_FILES.items()),
        )

    def stop(self) -> None:
        """Pid files out, then the signals ignored until exit (not reset: their default is death).

        A tool that read the pid just before the file went may still signal
        us while the instances hand over; that must not kill the hand-over.
        """
        for path in self._claimed:
            release_pid_file(path, self._pid)
        self._claimed.clear()
        if self._loop is not None:
            for sig in DUMP_FILES:
                self._loop.remove_signal_handler(sig)
                signal.signal(sig, signal.SIG_IGN)

    def render(self, sig: int) -> bytes:
        """The bytes keepalived would write for ``sig``, from the instances as they are now."""
        config = self._config()
        live = [r for r in self._runners.values() if r.machine.state is not State.STOPPED]
        commands = {
            name: _quoted(s.script.argv) for name, s in config.vrrp.scripts.items() if s.script is not None
        }
        instances = [dump_instance(r, commands) for r in live]
        if sig == signal.SIGUSR2:
            return render_stats(instances)
        if sig == SIGJSON:
            return render_json(instances)
        g = config.global_defs
        scripts = dump_scripts(self._runners, config, self._book)
        return render_data(instances, scripts, router_id=g.effective_router_id(), namespace=g.net_namespace)

    def dump(self, sig: int) -> None:
        """Signal handler: render now, write from a thread."""
        assert self._loop is not None
        try:
            data = self.render(sig)
        except Exception:  # a dump must never take the service down
            log.exception("keepalived-compat: cannot render %s", DUMP_FILES[sig])
            return
        path = Path(self.settings.dump_dir) / DUMP_FILES[sig]
        write = self._loop.run_in_executor(None, self._write, path, data)
        self._writes.add(write)
        write.add_done_callback(self._writes.discard)

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        try:
            write_atomic(path, data, mode=0o600, dir_mode=None)
        except OSError as exc:
            log.warning("keepalived-compat: cannot write %s: %s", path, exc)

"""The notify FIFO scripts through a real notifier, a real nats-server and real scripts reading real FIFOs.

keepalived 2.2.7 (docs/keepalived.md, "Notify FIFO"): ``notify_fifo_script``
(``vrrp_``, ``lvs_``) starts with the FIFO's path as its last argument and
reads the FIFO; at a reload it gets SIGTERM and a new one starts, and with
``fifo_write_vrrp_states_on_reload`` the new one reads every group's line and
every BACKUP or FAULT instance's (not a MASTER's); at the end it gets SIGTERM.

- ``python -m services.notifier`` as root in a private user database, with its
  NATS password in its environment: the script runs as ``script_user`` with
  the clean environment (the one launcher), reads the lines of the bus events
  in order, is replaced at SIGHUP, gets the reload lines, and gets SIGTERM
  when the notifier stops.
- In process, for each keyword: the script of ``vrrp_notify_fifo`` reads VRRP
  lines only, ``lvs_notify_fifo``'s LVS lines only, ``notify_fifo``'s both.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

from shared.bus import connect
from shared.config.load import load
from shared.events import GroupState, PoolEvent, PoolEventKind, VrrpState
from shared.lab.nats import NatsServer
from shared.lab.wait import await_until
from shared.settings import Settings
from tests.notifier.test_delivery_support import (
    instance_block,
    provision_for,
    publisher,
    service,
    start,
    transition,
    write_config,
)
from tests.scripts.support import (
    NATS_PASSWORD,
    NATS_USER,
    SU,
    ScriptTree,
    ServiceProcess,
    in_user_db,
    nats_with_password,
    script_tree,
    service_argv,
    service_env,
    user_db,
)

READER = """#!/bin/bash
# A notify FIFO reader: $1 out dir, $2 label, the FIFO last; each run logs to $1/$2.<pid>.
log="$1/$2.$$"
fifo="${@: -1}"
env > "$1/env.$$"
echo "start $(id -un) $*" >> "$log"
trap 'echo TERM >> "$log"; exit 0' TERM
exec 3< "$fifo"
while IFS= read -r line <&3; do echo "line $line" >> "$log"; done
echo EOF >> "$log"
"""


def reader_script(directory: Path) -> Path:
    path = directory / "fifo-reader.sh"
    path.write_text(READER)
    path.chmod(0o755)
    return path


def runs(out: Path, label: str) -> dict[int, list[str]]:
    """pid → what that run of the reader logged."""
    return {int(p.name.rsplit(".", 1)[1]): p.read_text().splitlines() for p in out.glob(f"{label}.*")}


def read(run: list[str]) -> list[str]:
    return [line.removeprefix("line ") for line in run if line.startswith("line ")]


def gone(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


@pytest.mark.root
@pytest.mark.nats
async def test_notify_fifo_script_reads_is_restarted_at_reload_with_the_states_and_terminated_at_stop(
    tmp_path: Path,
) -> None:
    with script_tree() as tree:
        server = nats_with_password(tmp_path / "nats")
        try:
            await _reload_and_stop(tmp_path, server, tree)
        finally:
            server.kill()


async def _reload_and_stop(tmp_path: Path, server: NatsServer, tree: ScriptTree) -> None:
    run_dir = tree.top / "run"
    run_dir.mkdir(mode=0o755)
    fifo = run_dir / "notify.fifo"
    reader = reader_script(tree.top / "bin")
    group = "vrrp_sync_group G1 {\n  group {\n    VI_1\n    VI_2\n  }\n}\n"
    conf = write_config(
        tmp_path / "keepalived.conf",
        global_defs=(
            f"  script_user {SU}\n  enable_script_security\n  notify_fifo {fifo}\n"
            f'  notify_fifo_script "{reader} {tree.out} reader"\n  fifo_write_vrrp_states_on_reload\n'
        ),
        instances=[group, *(instance_block(f"VI_{n}", 50 + n) for n in (1, 2, 3))],
    )
    (tmp_path / "lifeline.toml").write_text("")
    node = f"fifo-{tmp_path.name}"[-40:]
    db = user_db(tmp_path / "db", with_default=False)
    argv = in_user_db(db, [*service_argv("notifier", conf, node), "--no-health"])
    url = f"nats://{NATS_USER}:{NATS_PASSWORD}@127.0.0.1:{server.port}"
    await provision_for(url, load(conf).config, Settings(node=node), node, health=False)  # as the admin would
    proc = ServiceProcess(argv, service_env(server, tmp_path / "lifeline.toml"), tmp_path / "notifier.log")
    await proc.start("lifeline-notifier ready")
    nc = await connect(server.url, "test", user=NATS_USER, password=NATS_PASSWORD)
    try:
        await await_until("the FIFO script", lambda: len(runs(tree.out, "reader")) == 1, 20, 0.05)
        [(first, log)] = runs(tree.out, "reader").items()
        assert log[0] == f"start {SU} {tree.out} reader {fifo}"  # its user, the FIFO's path last
        env = (tree.out / f"env.{first}").read_text()
        assert "LIFELINE_NATS" not in env and NATS_PASSWORD not in env  # the launcher's clean environment

        pub = await publisher(nc, node)
        pub.publish(GroupState(group="G1", state=VrrpState.MASTER, members=("VI_1", "VI_2")))
        pub.publish(transition("VI_1", VrrpState.MASTER, 100))
        pub.publish(transition("VI_2", VrrpState.BACKUP, 90))
        pub.publish(transition("VI_3", VrrpState.FAULT, 80))
        events = ['GROUP "G1" MASTER 0', 'INSTANCE "VI_1" MASTER 100', 'INSTANCE "VI_2" BACKUP 90']
        events.append('INSTANCE "VI_3" FAULT 80')
        await await_until("the lines read", lambda: read(runs(tree.out, "reader")[first]) == events, 20, 0.05)

        assert proc.proc is not None
        proc.proc.send_signal(signal.SIGHUP)  # reload: SIGTERM to the script, a new one, the states
        await await_until("a new FIFO script", lambda: len(runs(tree.out, "reader")) == 2, 20, 0.05)
        await await_until("the old one ended", lambda: gone(first), 20, 0.05)
        assert runs(tree.out, "reader")[first][-1] == "TERM"
        second = next(pid for pid in runs(tree.out, "reader") if pid != first)
        reload_lines = ['GROUP "G1" MASTER 0', 'INSTANCE "VI_2" BACKUP 90', 'INSTANCE "VI_3" FAULT 80']
        await await_until(
            "the reload lines", lambda: len(read(runs(tree.out, "reader")[second])) >= 3, 20, 0.05
        )
        assert read(runs(tree.out, "reader")[second]) == reload_lines  # no line for VI_1: it is MASTER
        pub.publish(transition("VI_2", VrrpState.MASTER, 100))  # later events follow the reload lines
        after = [*reload_lines, 'INSTANCE "VI_2" MASTER 100']
        await await_until("the next event", lambda: read(runs(tree.out, "reader")[second]) == after, 20, 0.05)
        await pub.close()
    finally:
        await nc.close()
        proc.stop()
    assert gone(second)
    assert runs(tree.out, "reader")[second][-1] == "TERM"  # keepalived's SIGTERM at the end


@pytest.mark.nats
@pytest.mark.parametrize(
    ("keyword", "expected"),
    [
        (
            "notify_fifo",
            ["VS [10.0.0.1]:tcp:80 UP", 'INSTANCE "VI_1" MASTER 100', "VS [10.0.0.1]:tcp:80 DOWN"],
        ),
        ("vrrp_notify_fifo", ['INSTANCE "VI_1" MASTER 100']),
        ("lvs_notify_fifo", ["VS [10.0.0.1]:tcp:80 UP", "VS [10.0.0.1]:tcp:80 DOWN"]),
    ],
)
async def test_each_fifo_script_reads_the_lines_of_its_fifo(
    tmp_path: Path, server: NatsServer, nc: Any, keyword: str, expected: list[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    fifo = tmp_path / f"{keyword}.fifo"
    reader = reader_script(tmp_path)
    conf = write_config(
        tmp_path / "keepalived.conf",
        global_defs=f'  script_user root\n  {keyword} {fifo}\n  {keyword}_script "{reader} {out} r"\n',
        instances=[instance_block("VI_1", 51)],
    )
    svc = service(conf, "fifo1", server.url)
    await start(svc)
    try:
        await await_until("the FIFO script", lambda: len(runs(out, "r")) == 1, 20, 0.05)
        [(pid, log)] = runs(out, "r").items()
        assert log[0] == f"start root {out} r {fifo}"
        assert svc.readers.pids() == {keyword: pid}
        pub = await publisher(nc, "fifo1")
        pub.publish(PoolEvent(virtual="10.0.0.1:80/tcp", kind=PoolEventKind.QUORUM_UP))
        pub.publish(transition("VI_1", VrrpState.MASTER, 100))
        pub.publish(PoolEvent(virtual="10.0.0.1:80/tcp", kind=PoolEventKind.QUORUM_DOWN))
        pub.publish(transition("VI_1", VrrpState.BACKUP, 100))  # the end marker of every FIFO that reads VRRP
        pub.publish(PoolEvent(virtual="10.0.0.2:80/tcp", kind=PoolEventKind.QUORUM_UP))  # and of LVS ones
        marks = {'INSTANCE "VI_1" BACKUP 100', "VS [10.0.0.2]:tcp:80 UP"}
        await await_until("the end marker", lambda: bool(marks & set(read(runs(out, "r")[pid]))), 20, 0.05)
        await pub.close()
    finally:
        await svc.stop()
    assert [line for line in read(runs(out, "r")[pid]) if line not in marks] == expected
    assert runs(out, "r")[pid][-1] == "TERM"
    assert gone(pid)

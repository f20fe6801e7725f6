"""The FIFO sink against a real FIFO: created 0644, ordered, nothing lost or doubled with a slow reader."""

from __future__ import annotations

import fcntl
import os
import stat
import threading
import time
from pathlib import Path

import pytest

from services.notifier.sinks.base import DeliveryContext, DeliveryError
from services.notifier.sinks.fifo import FifoSink
from services.notifier.wiring import fifo_sink
from shared.config.model_global import NotifyFifo
from shared.events import InstanceState, PoolEvent, PoolEventKind, VrrpState

F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def event(seq: int, state: VrrpState = VrrpState.MASTER) -> InstanceState:
    return InstanceState(
        instance=f"VI_{seq}", vrid=1, interface="eth0", state=state, base_priority=100,
        effective_priority=100, seq=seq, boot_id="b",
    )  # fmt: skip


class SlowReader(threading.Thread):
    """Reads the FIFO in small bites with pauses, like a busy consumer script."""

    def __init__(self, path: Path, expected: int, delay: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.path, self.expected, self.delay = path, expected, delay
        self.data = bytearray()

    def run(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            while self.data.count(b"\n") < self.expected:
                chunk = os.read(fd, 512)
                if not chunk:
                    break
                self.data += chunk
                time.sleep(self.delay)
        finally:
            os.close(fd)


async def test_creates_fifo_0644_and_writes_keepalived_lines(tmp_path: Path) -> None:
    path = tmp_path / "notify.fifo"
    old = os.umask(0o077)
    try:
        sink = FifoSink(path)
        reader = SlowReader(path, 2)
        await sink.deliver(event(1), DeliveryContext())
    finally:
        os.umask(old)
    reader.start()
    await sink.deliver(
        PoolEvent(virtual="10.0.0.1:80/tcp", kind=PoolEventKind.QUORUM_UP, seq=2), DeliveryContext()
    )
    reader.join(5)
    await sink.close()
    mode = os.stat(path).st_mode
    assert stat.S_ISFIFO(mode) and stat.S_IMODE(mode) == 0o644
    assert bytes(reader.data) == b'INSTANCE "VI_1" MASTER 100\nVS [10.0.0.1]:tcp:80 UP\n'


async def test_slow_reader_loses_no_line(tmp_path: Path) -> None:
    path = tmp_path / "slow.fifo"
    sink = FifoSink(path, write_timeout=10.0)
    fcntl.fcntl(sink.open(), F_SETPIPE_SZ, 4096)  # one page: the writer must wait many times
    count = 2000
    reader = SlowReader(path, count, delay=0.001)
    reader.start()
    for seq in range(1, count + 1):
        await sink.deliver(event(seq), DeliveryContext())
    reader.join(20)
    await sink.close()
    lines = bytes(reader.data).decode().splitlines()
    assert lines == [f'INSTANCE "VI_{i}" MASTER 100' for i in range(1, count + 1)]
    assert sink.stats.lines == count
    assert sink.stats.waits > 0  # the buffer really was full


async def test_full_fifo_is_a_reported_retryable_failure_then_exactly_once(tmp_path: Path) -> None:
    path = tmp_path / "full.fifo"
    sink = FifoSink(path, write_timeout=0.2)
    fcntl.fcntl(sink.open(), F_SETPIPE_SZ, 4096)
    delivered, seq = 0, 0
    with pytest.raises(DeliveryError) as err:
        while True:  # nobody reads: fill the pipe until the bound trips
            seq += 1
            await sink.deliver(event(seq), DeliveryContext())
            delivered += 1
    assert err.value.retryable and "too slow" in str(err.value)
    assert sink.stats.timeouts == 1
    reader = SlowReader(path, seq)
    reader.start()
    await sink.deliver(event(seq), DeliveryContext(attempt=2))  # the core retries the same event
    await sink.deliver(event(seq), DeliveryContext(attempt=3))  # an extra re-delivery is not written twice
    reader.join(5)
    await sink.close()
    lines = bytes(reader.data).decode().splitlines()
    assert lines == [f'INSTANCE "VI_{i}" MASTER 100' for i in range(1, seq + 1)]
    assert delivered == seq - 1


async def test_scopes_split_vrrp_and_lvs(tmp_path: Path) -> None:
    vrrp, lvs = FifoSink(tmp_path / "v", scope="vrrp"), FifoSink(tmp_path / "l", scope="lvs")
    for sink in (vrrp, lvs):
        await sink.deliver(event(1), DeliveryContext())
        await sink.deliver(
            PoolEvent(virtual="fwmark:3", kind=PoolEventKind.QUORUM_DOWN, seq=2), DeliveryContext()
        )
    assert os.read(vrrp.open(), 4096) == b'INSTANCE "VI_1" MASTER 100\n'
    assert os.read(lvs.open(), 4096) == b"VS FWM 3 DOWN\n"
    await vrrp.close()
    await lvs.close()


async def test_refuses_a_regular_file(tmp_path: Path) -> None:
    path = tmp_path / "notafifo"
    path.write_text("")
    with pytest.raises(DeliveryError) as err:
        await FifoSink(path).deliver(event(1), DeliveryContext())
    assert not err.value.retryable


@pytest.mark.skipif(os.geteuid() != 0, reason="the attack is on root: the notifier gives the FIFO away")
async def test_a_symlink_planted_where_the_fifo_belongs_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """``notify_fifo /tmp/x/notify.fifo nobody``, and someone planted notify.fifo -> a root FIFO elsewhere.

    Going by path, the notifier used to open the target and chown it to
    nobody.  Now the target keeps its owner and mode, nothing is created
    there, and the sink refuses with the reason, for good (not retryable).
    """
    public = tmp_path / "tmp"
    public.mkdir()
    public.chmod(0o1777)  # world-writable and sticky, like /tmp
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    target = private / "root-only.fifo"
    os.mkfifo(target, 0o600)
    planted = public / "notify.fifo"
    planted.symlink_to(target)

    sink = fifo_sink(NotifyFifo(path=str(planted), user="nobody"), "all", "fifo")
    with pytest.raises(DeliveryError, match="symbolic link") as err:
        await sink.deliver(event(1), DeliveryContext())
    assert not err.value.retryable
    st = target.stat()
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (0, 0, 0o600)
    assert planted.is_symlink() and sorted(p.name for p in private.iterdir()) == ["root-only.fifo"]
    assert any("refused" in r.getMessage() and "symbolic link" in r.getMessage() for r in caplog.records)
    await sink.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="giving the FIFO to its user needs root")
async def test_the_fifo_is_given_to_its_user(tmp_path: Path) -> None:
    path = tmp_path / "notify.fifo"
    sink = fifo_sink(NotifyFifo(path=str(path), user="nobody"), "all", "fifo")
    st = path.stat()
    assert stat.S_ISFIFO(st.st_mode) and st.st_uid == 65534 and stat.S_IMODE(st.st_mode) == 0o644
    await sink.close()


async def test_lines_of_a_reload_go_between_deliveries_and_a_redelivery_is_still_recognised(
    tmp_path: Path,
) -> None:
    """``write_lines`` (fifo_write_vrrp_states_on_reload) does not make the sink forget its last event."""
    path = tmp_path / "notify.fifo"
    sink = FifoSink(path)
    reader = SlowReader(path, 3)
    await sink.deliver(event(1), DeliveryContext())
    await sink.write_lines(['GROUP "G1" MASTER 0\n'])
    await sink.deliver(event(1), DeliveryContext(attempt=2))  # the same event again: not written twice
    await sink.deliver(event(2, VrrpState.BACKUP), DeliveryContext())
    reader.start()
    reader.join(5)
    await sink.close()
    assert reader.data.decode().splitlines() == [
        'INSTANCE "VI_1" MASTER 100',
        'GROUP "G1" MASTER 0',
        'INSTANCE "VI_2" BACKUP 100',
    ]

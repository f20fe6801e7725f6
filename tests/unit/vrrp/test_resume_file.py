"""The resume records on disk (``resume_file.py``): what one process stamps, the next one reads."""

from __future__ import annotations

from ipaddress import IPv4Address, ip_interface
from pathlib import Path

import pytest

from services.vrrp.core.params import InstancePlan, build_plan
from services.vrrp.resume_file import SIZE, ResumeFiles, fingerprint
from shared.config.model_global import GlobalDefs
from shared.config.model_vrrp import VirtualAddress, VrrpConfig, VrrpInstance

SRC = IPv4Address("10.0.0.1")


def plan(priority: int = 100, name: str = "VI_1") -> InstancePlan:
    inst = VrrpInstance(
        name=name,
        interface="eth0",
        vrid=51,
        family=4,
        priority=priority,
        vips=[VirtualAddress(address=ip_interface("192.0.2.100/32"))],
    )
    return build_plan(inst, GlobalDefs(), VrrpConfig(), SRC)


def test_a_fresh_record_is_not_master_and_a_stamp_makes_it_one(tmp_path: Path) -> None:
    files = ResumeFiles(tmp_path)
    slot = files.open(plan())
    assert slot is not None
    got = files.read("VI_1")
    assert got is not None and not got.master and got.boot_id == files.boot
    slot.stamp(123_456_789, master=True)
    got = files.read("VI_1")  # what a process started now would read (the page cache, no flush)
    assert got is not None and got.master and got.last_advert_ns == 123_456_789
    assert got.fingerprint == fingerprint(plan())
    slot.clear()
    got = files.read("VI_1")
    assert got is not None and not got.master
    slot.stamp(200, master=True)
    slot.stamp(300, master=False)  # a goodbye (priority 0) or a BACKUP's advert
    got = files.read("VI_1")
    assert got is not None and not got.master
    slot.close()


def test_a_reload_in_place_names_the_new_plan(tmp_path: Path) -> None:
    files = ResumeFiles(tmp_path)
    slot = files.open(plan())
    assert slot is not None
    slot.stamp(5, master=True)
    slot.describe(plan(priority=120))
    got = files.read("VI_1")
    assert got is not None and got.master and got.fingerprint == fingerprint(plan(priority=120))
    slot.close()


def test_the_fingerprint_follows_the_plan() -> None:
    assert fingerprint(plan()) == fingerprint(plan())
    assert fingerprint(plan(priority=101)) != fingerprint(plan())


@pytest.mark.parametrize("damage", ["torn", "short", "magic", "flag"])
def test_a_damaged_record_reads_as_none(tmp_path: Path, damage: str) -> None:
    """A process killed between the two timestamp stores, or a foreign file: no record, start as today."""
    files = ResumeFiles(tmp_path)
    slot = files.open(plan())
    assert slot is not None
    slot.stamp(1_000, master=True)
    slot.close()
    (path,) = tmp_path.glob("*.rec")
    raw = bytearray(path.read_bytes())
    if damage == "torn":
        raw[56:64] = (999).to_bytes(8, "little")
    elif damage == "short":
        raw = raw[: SIZE - 8]
    elif damage == "magic":
        raw[0] ^= 0xFF
    else:
        raw[40:48] = (7).to_bytes(8, "little")
    path.write_bytes(bytes(raw))
    assert files.read("VI_1") is None


def test_prune_and_forget_remove_the_records_of_instances_gone(tmp_path: Path) -> None:
    files = ResumeFiles(tmp_path)
    for name in ("VI_1", "VI_2", "VI_3"):
        slot = files.open(plan(name=name))
        assert slot is not None
        slot.close()
    files.prune({"VI_1", "VI_2"})
    files.forget("VI_2")
    assert files.read("VI_1") is not None
    assert files.read("VI_2") is None and files.read("VI_3") is None


def test_an_unusable_directory_means_no_records_not_a_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    files = ResumeFiles(blocker / "sub")
    assert files.open(plan()) is None
    assert files.read("VI_1") is None

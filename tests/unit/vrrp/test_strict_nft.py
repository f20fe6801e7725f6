"""The no_accept nftables batches (services/vrrp/kernel/nft.py), no root; the lab test runs them."""

from __future__ import annotations

from ipaddress import ip_interface

from services.vrrp.kernel.addresses import Vip
from services.vrrp.kernel.nft import (
    create_table_batch,
    drop_table_batch,
    elements_batch,
    entries,
)


def test_entries_per_family_and_link_local_per_interface() -> None:
    vips = [
        Vip(address=ip_interface("192.0.2.1/24")),
        Vip(address=ip_interface("2001:db8::1/64")),
        Vip(address=ip_interface("fe80::1/64")),
        Vip(address=ip_interface("fe80::2/64"), dev="eth1"),
    ]
    assert entries(vips, "eth0") == {
        ("vips4", "192.0.2.1"),
        ("vips6", "2001:db8::1"),
        ("vips6_ll", 'fe80::1 . "eth0"'),
        ("vips6_ll", 'fe80::2 . "eth1"'),
    }


def test_batches() -> None:
    assert drop_table_batch() == "add table inet lifeline\ndelete table inet lifeline\n"
    created = create_table_batch()
    assert created.startswith(drop_table_batch())  # a fresh table, never rules appended twice
    assert "type filter hook input priority -1; policy accept;" in created
    assert "add rule inet lifeline in ip daddr @vips4 drop" in created
    assert "add rule inet lifeline out ip6 saddr . oif @vips6_ll drop" in created
    assert created.index("nd-neighbor-solicit") < created.index("@vips6 drop")  # ND still answered
    batch = elements_batch(
        "delete", [("vips4", "192.0.2.2"), ("vips4", "192.0.2.1"), ("vips6", "2001:db8::1")]
    )
    assert batch == (
        "delete element inet lifeline vips4 { 192.0.2.1, 192.0.2.2 }\n"
        "delete element inet lifeline vips6 { 2001:db8::1 }\n"
    )
    assert elements_batch("add", []) == ""

"""Our struct codec produces the bytes pyroute2's message classes produce, and decodes them back."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from services.lvs.core.desired import DestAttrs, DestKey, ServiceAttrs, ServiceKey
from services.lvs.kernel import ipvs_codec as codec
from services.lvs.kernel.ipvs_reference import IpvsMsg, dest_nla, service_nla

SERVICES = [
    (ServiceKey(socket.AF_INET, 6, "172.16.0.100", 80, 0), ServiceAttrs("rr")),
    (ServiceKey(socket.AF_INET, 17, "10.0.0.1", 53, 0), ServiceAttrs("sh", 0x19, 360, 0x00FFFFFF)),
    (ServiceKey(socket.AF_INET, 0, None, 0, 7), ServiceAttrs("wrr", 0, 0, 0xFFFFFFFF, "sip")),
    (ServiceKey(socket.AF_INET6, 132, "2001:db8::1", 443, 0), ServiceAttrs("lc", 1, 600, 64)),
]
DESTS = [
    (DestKey("172.16.1.20", 80), DestAttrs()),
    (DestKey("10.9.0.1", 8080), DestAttrs(fwd=2, weight=4, tun_type=1, tun_port=6080, tun_flags=2)),
    (DestKey("2001:db8::2", 443), DestAttrs(fwd=3, weight=7, u_thresh=100, l_thresh=10)),
]


def reference(cmd: int, attrs: list[tuple[str, Any]]) -> bytes:
    msg = IpvsMsg()
    msg["cmd"] = cmd
    msg["version"] = 1
    msg["attrs"] = attrs
    msg["header"]["type"] = 0x20
    msg["header"]["flags"] = 5
    msg["header"]["sequence_number"] = 9
    msg["header"]["pid"] = 0
    msg.encode()
    return bytes(msg.data)


@pytest.mark.parametrize(("key", "attrs"), SERVICES)
def test_service_bytes_match_pyroute2_and_round_trip(key: ServiceKey, attrs: ServiceAttrs) -> None:
    ours = codec.message(
        0x20, 5, 9, 1, codec.nla(codec.CMD_ATTR_SERVICE, codec.service_attrs_bytes(key, attrs))
    )
    assert ours == reference(1, [("IPVS_CMD_ATTR_SERVICE", {"attrs": service_nla(key, attrs)})])
    payload = codec.parse_attrs(ours, 20)[codec.CMD_ATTR_SERVICE]
    assert codec.decode_service(payload) == (key, attrs)


@pytest.mark.parametrize(("dest", "attrs"), DESTS)
def test_dest_bytes_match_pyroute2_and_round_trip(dest: DestKey, attrs: DestAttrs) -> None:
    key = SERVICES[0][0]
    body = codec.nla(codec.CMD_ATTR_SERVICE, codec.service_attrs_bytes(key, None))
    body += codec.nla(codec.CMD_ATTR_DEST, codec.dest_attrs_bytes(dest, attrs))
    ours = codec.message(0x20, 5, 9, 5, body)
    assert ours == reference(
        5,
        [
            ("IPVS_CMD_ATTR_SERVICE", {"attrs": service_nla(key, None)}),
            ("IPVS_CMD_ATTR_DEST", {"attrs": dest_nla(dest, attrs)}),
        ],
    )
    payload = codec.parse_attrs(ours, 20)[codec.CMD_ATTR_DEST]
    assert codec.decode_dest(payload, key.af) == (dest, attrs)

"""DNS_CHECK: one UDP query (recursion desired, class IN) for ``name``/``type``.

Pass, as in keepalived: a reply with our ID and the response bit, RCODE NOERROR,
the question echoed back (same name, case-insensitively, and type), and at least
one answer record.  A reply with another ID is ignored (a late answer to an
earlier probe), so only a matching reply or the timeout ends the wait.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import struct

from services.checker.probes.base import ProbeFailure, ProbeResult, Success, Target, measure, timeout_of
from services.checker.probes.sockets import family_of, make_socket, sockaddr
from shared.config.model_lvs import Checker, DnsCheck

QTYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}
CLASS_IN = 1
FLAG_QR = 0x8000
FLAG_RD = 0x0100
HEADER = struct.Struct("!HHHHHH")
RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


def encode_name(name: str) -> bytes:
    """Wire form of a domain name; ``.`` (the default) is the root, one zero byte."""
    labels = [label for label in name.rstrip(".").split(".") if label] if name != "." else []
    out = bytearray()
    for label in labels:
        raw = label.encode("idna") if not label.isascii() else label.encode("ascii")
        if len(raw) > 63:
            raise ValueError(f"DNS label too long: {label!r}")
        out += bytes([len(raw)]) + raw
    return bytes(out) + b"\x00"


def build_query(qid: int, name: str, qtype: str) -> bytes:
    question = encode_name(name) + struct.pack("!HH", QTYPES[qtype], CLASS_IN)
    return HEADER.pack(qid, FLAG_RD, 1, 0, 0, 0) + question


def check_reply(reply: bytes, query: bytes) -> str:
    """Validate a reply carrying our ID; return a success detail or raise ``ProbeFailure``."""
    if len(reply) < HEADER.size:
        raise ProbeFailure(f"reply too short ({len(reply)} bytes)")
    _, flags, qdcount, ancount, _, _ = HEADER.unpack_from(reply)
    if not flags & FLAG_QR:
        raise ProbeFailure("reply is not a response")
    rcode = flags & 0x000F
    if rcode:
        raise ProbeFailure(f"RCODE {RCODES.get(rcode, rcode)}")
    question = query[HEADER.size :]
    if qdcount != 1 or reply[HEADER.size : HEADER.size + len(question)].lower() != question.lower():
        raise ProbeFailure("question section does not match the query")
    if ancount == 0:
        raise ProbeFailure("no answer records")
    return f"NOERROR, {ancount} answer(s)"


async def probe(check: Checker, target: Target) -> ProbeResult:
    return await measure(_query(check, target))


async def _query(check: Checker, target: Target) -> Success:
    if not isinstance(check, DnsCheck):
        raise ProbeFailure(f"not a DNS checker: {type(check).__name__}")
    port = target.port or 53
    qid = secrets.randbits(16)
    query = build_query(qid, check.name, check.type)
    loop = asyncio.get_running_loop()
    with make_socket(family_of(target.host), socket.SOCK_DGRAM, check) as sock:
        async with asyncio.timeout(timeout_of(check)):
            await loop.sock_connect(sock, sockaddr(target.host, port, check))
            await loop.sock_sendall(sock, query)
            while True:
                reply = await loop.sock_recv(sock, 65535)
                if len(reply) >= 2 and struct.unpack_from("!H", reply)[0] == qid:
                    return Success(check_reply(reply, query))

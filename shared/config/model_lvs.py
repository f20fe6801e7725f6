"""virtual_server, virtual_server_group, real_server and every checker, with keepalived's defaults.

Inheritance (virtual_server -> real_server -> checker) is resolved by
``parse_lvs.finish``: while parsing, an inheritable field is ``None`` when the
file did not set it; after a load every checker's timing fields hold the value
that applies.  Checkers are a tagged union (``kind``) so the checker service can
iterate them uniformly, and ``probe_key()`` lets it run one probe for identical
checks of the same target.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from shared.addresses import IPAddress
from shared.config.script import Script
from shared.redact import SECRET

SCHEDULERS = ("rr", "wrr", "lc", "wlc", "lblc", "sh", "mh", "dh", "fo", "ovf", "lblcr", "sed", "nq", "twos")
SCHED_FLAGS = ("flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback", "hashed")
Protocol = Literal["TCP", "UDP", "SCTP"]
DEFAULT_PROTOCOL: Protocol = "UDP"
"""What an address or group service without ``protocol`` is (keepalived warns): ``lvs_keys.protocol_of``."""

DEFAULT_DELAY_LOOP = 60.0
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_RETRY = 1
DEFAULT_DELAY_BEFORE_RETRY = 1.0
DEFAULT_PERSISTENCE_TIMEOUT = 360
DEFAULT_STATUS_CODES = ((200, 299),)


class Where(msgspec.Struct, frozen=True):
    """Where a block came from, so whole-file checks and services can point at the line."""

    file: str = ""
    line: int = 0


class LvsMethod(msgspec.Struct, frozen=True):
    """``lvs_method NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]``."""

    kind: Literal["NAT", "DR", "TUN"] = "NAT"
    tunnel_type: Literal["ipip", "gue", "gre"] | None = None
    tunnel_port: int | None = None
    checksum: Literal["nocsum", "csum", "remcsum"] | None = None


class VsgEntry(msgspec.Struct, frozen=True):
    """One line of a virtual_server_group: an address range (first == last for one address) or a fwmark."""

    first: IPAddress | None = None
    last: IPAddress | None = None
    port: int = 0
    fwmark: int | None = None
    family: Literal["inet", "inet6"] | None = None
    where: Where = Where()


class VirtualServerGroup(msgspec.Struct, kw_only=True):
    name: str
    entries: list[VsgEntry] = msgspec.field(default_factory=list)
    where: Where = Where()
    end_line: int = 0

    @property
    def has_addresses(self) -> bool:
        return any(e.fwmark is None for e in self.entries)


# ---------------------------------------------------------------- checkers


class CheckBase(msgspec.Struct, kw_only=True, tag_field="kind"):
    """Keywords every checker may carry; ``None`` means inherited from the real server."""

    connect_ip: IPAddress | None = None
    connect_port: int | None = None
    bindto: IPAddress | None = None
    bind_port: int | None = None
    bind_if: str | None = None
    fwmark: int | None = None
    connect_timeout: float | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    delay_loop: float | None = None
    alpha: bool | None = None
    log_all_failures: bool = False
    where: Where = Where()

    def _specific(self) -> tuple[object, ...]:
        return ()

    def probe_key(self) -> tuple[object, ...]:
        """What the probe sends where: two checks with equal keys can share one probe.

        Meaningful after ``finish`` has filled ``connect_ip``/``connect_port`` from the real server.
        """
        return (
            self.__struct_config__.tag,
            self.connect_ip,
            self.connect_port,
            self.bindto,
            self.bind_port,
            self.bind_if,
            self.fwmark,
            self.connect_timeout,
            *self._specific(),
        )


class TcpCheck(CheckBase, tag="TCP_CHECK"):
    pass


class HttpUrl(msgspec.Struct, kw_only=True):
    path: str | None = None
    digest: str | None = None
    status_codes: tuple[tuple[int, int], ...] = DEFAULT_STATUS_CODES
    virtualhost: str | None = None
    regex: str | None = None
    regex_no_match: bool = False
    regex_options: tuple[str, ...] = ()
    regex_stack: tuple[int, ...] = ()
    regex_min_offset: int | None = None
    regex_max_offset: int | None = None
    where: Where = Where()


class HttpGetCheck(CheckBase, tag="HTTP_GET"):
    urls: list[HttpUrl] = msgspec.field(default_factory=list)
    http_protocol: Literal["1.0", "1.0C", "1.1"] = "1.0"
    virtualhost: str | None = None
    fast_recovery: bool = False
    enable_sni: bool = False
    sni_name: str | None = None
    tls_compliant: bool = False

    def _specific(self) -> tuple[object, ...]:
        urls = tuple(
            (u.path, u.digest, u.status_codes, u.virtualhost, u.regex, u.regex_no_match) for u in self.urls
        )
        return (urls, self.http_protocol, self.virtualhost, self.enable_sni, self.sni_name)


class SslGetCheck(HttpGetCheck, tag="SSL_GET"):
    pass


class SmtpCheck(CheckBase, tag="SMTP_CHECK"):
    helo_name: str = "smtpchecker.keepalived.org"
    hosts: list[SmtpCheck] = msgspec.field(default_factory=list)
    """Deprecated ``host {}`` blocks; ``finish`` turns each into an SmtpCheck of its own."""

    def _specific(self) -> tuple[object, ...]:
        return (self.helo_name,)


class DnsCheck(CheckBase, tag="DNS_CHECK"):
    type: Literal["A", "NS", "CNAME", "SOA", "MX", "TXT", "AAAA"] = "SOA"
    name: str = "."

    def _specific(self) -> tuple[object, ...]:
        return (self.type, self.name)


class UdpCheck(CheckBase, tag="UDP_CHECK"):
    payload: bytes | None = None
    require_reply: bool = False
    reply_pattern: str | None = None
    """Hex digits of the expected reply; ``X`` nibbles match anything."""
    min_reply_length: int = 0
    max_reply_length: int = 255

    def _specific(self) -> tuple[object, ...]:
        return (
            self.payload,
            self.require_reply,
            self.reply_pattern,
            self.min_reply_length,
            self.max_reply_length,
        )


class PingCheck(CheckBase, tag="PING_CHECK"):
    pass


class MiscCheck(CheckBase, tag="MISC_CHECK"):
    misc_path: Script | None = None
    misc_timeout: float | None = None
    """``None`` until resolved; then the checker's delay_loop, as keepalived does."""
    misc_dynamic: bool = False
    user: str | None = None
    group: str | None = None
    where_user: Where | None = None

    def _specific(self) -> tuple[object, ...]:
        path = self.misc_path.command if self.misc_path else None
        return (path, self.misc_timeout, self.misc_dynamic, self.user, self.group)


class FileCheck(CheckBase, tag="FILE_CHECK"):
    track_file: str | None = None
    weight: int = 1
    reverse: bool = False
    where_ref: Where | None = None
    where_end: Where | None = None

    def _specific(self) -> tuple[object, ...]:
        return (self.track_file, self.weight, self.reverse)


class BfdCheck(CheckBase, tag="BFD_CHECK"):
    name: str | None = None
    where_ref: Where | None = None

    def _specific(self) -> tuple[object, ...]:
        return (self.name,)


Checker = (
    TcpCheck
    | HttpGetCheck
    | SslGetCheck
    | SmtpCheck
    | DnsCheck
    | UdpCheck
    | PingCheck
    | MiscCheck
    | FileCheck
    | BfdCheck
)

# ---------------------------------------------------------------- servers


class RealServer(msgspec.Struct, kw_only=True):
    address: IPAddress
    port: int | None = None
    """``None`` in the file means the virtual server's port; resolved by ``finish``."""
    weight: int | None = None
    inhibit_on_failure: bool | None = None
    notify_up: Script | None = None
    notify_down: Script | None = None
    lvs_method: LvsMethod | None = None
    uthreshold: int | None = None
    lthreshold: int | None = None
    alpha: bool | None = None
    connect_timeout: float | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    delay_loop: float | None = None
    smtp_alert: bool | None = None
    virtualhost: str | None = None
    snmp_name: str | None = None
    checkers: list[Checker] = msgspec.field(default_factory=list)
    where: Where = Where()
    where_end: Where | None = None


class SorryServer(msgspec.Struct, kw_only=True):
    address: IPAddress
    port: int | None = None
    where: Where = Where()


class VirtualServer(msgspec.Struct, kw_only=True):
    """One ``virtual_server`` block; exactly one of address, fwmark, group names the service."""

    address: IPAddress | None = None
    port: int = 0
    fwmark: int | None = None
    group: str | None = None
    lb_algo: str | None = None
    """``None`` in the file means ``wlc`` (keepalived warns)."""
    sched_flags: list[str] = msgspec.field(default_factory=list)
    ops: bool = False
    lvs_method: LvsMethod | None = None
    """``None`` in the file means NAT (keepalived warns)."""
    protocol: Protocol | None = None
    """``None`` means UDP for address services (keepalived warns); fwmark services ignore it."""
    persistence_timeout: int | None = None
    persistence_granularity: str | None = None
    persistence_engine: str | None = None
    delay_loop: float = DEFAULT_DELAY_LOOP
    connect_timeout: float | None = None
    retry: int | None = None
    delay_before_retry: float | None = None
    warmup: float | None = None
    inhibit_on_failure: bool = False
    alpha: bool = False
    omega: bool = False
    quorum: int = 1
    hysteresis: int = 0
    quorum_up: Script | None = None
    quorum_down: Script | None = None
    sorry_server: SorryServer | None = None
    sorry_server_inhibit: bool = False
    sorry_server_lvs_method: LvsMethod | None = None
    ha_suspend: bool = False
    virtualhost: str | None = None
    smtp_alert: bool | None = None
    snmp_name: str | None = None
    ip_family: Literal["inet", "inet6"] | None = None
    weight: int = 1
    """Default weight of this service's real servers."""
    real_servers: list[RealServer] = msgspec.field(default_factory=list)
    where: Where = Where()
    lines: dict[str, int] = msgspec.field(default_factory=dict)
    """Line of each keyword last set, for whole-file diagnostics (``quorum``, ``protocol``...)."""

    @property
    def name(self) -> str:
        """keepalived's way of naming a service in logs: ``[IP]:proto:port``, ``FWM N`` or ``[group]``."""
        if self.fwmark is not None:
            return f"FWM {self.fwmark}"
        if self.group is not None:
            return f"[{self.group}]:{self.port}"
        proto = (self.protocol or "none").lower()
        return f"[{self.address}]:{proto}:{self.port}"


class SslConfig(msgspec.Struct, kw_only=True):
    """The root ``SSL`` block used by SSL_GET; absent means an auto-generated context."""

    password: Annotated[str | None, SECRET] = None  # the key's passphrase
    ca: str | None = None
    certificate: str | None = None
    key: str | None = None


class LvsConfig(msgspec.Struct, kw_only=True):
    virtual_server_groups: dict[str, VirtualServerGroup] = msgspec.field(default_factory=dict)
    virtual_servers: list[VirtualServer] = msgspec.field(default_factory=list)
    ssl: SslConfig | None = None

    def checks(self) -> list[tuple[VirtualServer, RealServer, Checker]]:
        """Every checker with its servers, for services that iterate them uniformly."""
        return [(vs, rs, c) for vs in self.virtual_servers for rs in vs.real_servers for c in rs.checkers]

"""The IP address type every layer speaks of: config model, VRRP codec, state machine, kernel code.

Why one definition: a VIP parsed from keepalived.conf, the source of an advert
and a peer in the machine are the same kind of value, and one alias keeps them
one type for mypy and for the reader.  It lives outside ``shared.config`` so
the codec and the machine can name it without importing the parser.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address
from typing import TypeAlias

IPAddress: TypeAlias = IPv4Address | IPv6Address

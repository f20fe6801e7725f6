"""What a configuration is checked against on the machine it will run on.

keepalived's ``-t`` looks at the host: interfaces must exist, ``smtp_server``
names must resolve, script users must exist.  These questions are behind one
small interface so a config meant for another machine can be checked with
``--no-host-checks`` (``NoHost``), and unit tests can describe a host in a line.
"""

from __future__ import annotations

import os
import pwd
import socket
from typing import Protocol


class Host(Protocol):
    def has_interface(self, name: str) -> bool: ...

    def resolves(self, name: str) -> bool: ...

    def has_user(self, name: str) -> bool: ...


class LocalHost:
    """The machine (and network namespace) this process runs in."""

    def __init__(self) -> None:
        self._interfaces: set[str] | None = None

    def has_interface(self, name: str) -> bool:
        """Asked over netlink first: ``/sys/class/net`` shows the namespace sysfs was mounted in, which
        is not the calling thread's after ``net_namespace`` moved it (the runner reads the file there)."""
        if self._interfaces is None:
            try:
                self._interfaces = {n for _, n in socket.if_nameindex()}
            except OSError:
                self._interfaces = set(os.listdir("/sys/class/net"))
        return name in self._interfaces

    def resolves(self, name: str) -> bool:
        try:
            socket.getaddrinfo(name, None)
        except (OSError, UnicodeError):
            return False
        return True

    def has_user(self, name: str) -> bool:
        try:
            pwd.getpwnam(name)
        except KeyError:
            return False
        return True


class NoHost:
    """Accepts every interface, name and user: for configs written for another machine."""

    def has_interface(self, name: str) -> bool:
        return True

    def resolves(self, name: str) -> bool:
        return True

    def has_user(self, name: str) -> bool:
        return True


class FakeHost:
    """A host described in a line, for tests: ``FakeHost(interfaces={"eth0"})``."""

    def __init__(
        self,
        interfaces: set[str] | None = None,
        names: set[str] | None = None,
        users: set[str] | None = None,
    ) -> None:
        self.interfaces = interfaces if interfaces is not None else {"lo", "eth0"}
        self.names = names if names is not None else {"localhost"}
        self.users = users if users is not None else {"root"}

    def has_interface(self, name: str) -> bool:
        return name in self.interfaces

    def resolves(self, name: str) -> bool:
        return name in self.names

    def has_user(self, name: str) -> bool:
        return name in self.users

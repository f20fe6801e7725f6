"""Does a process match a ``vrrp_track_process``?  Pure functions, testable without processes.

keepalived's rules (man keepalived.conf, "VRRP track processes"):

* the name is matched *exactly* (``sshd`` never matches ``ssh``) against the
  process name, ``/proc/PID/comm`` (15 characters at most, so the configured
  name is cut to 15 too); with ``full_command``, or when parameters are given,
  against ``argv[0]`` of ``/proc/PID/cmdline`` instead (the name may then also
  equal the comm, which tolerates interpreters that rewrite argv[0]);
* parameters: without ``param_match`` they must equal ``argv[1:]`` exactly;
  ``partial``: the first n parameters match exactly (more may follow);
  ``initial``: as partial, but the last configured one need only be a prefix;
  ``param_match`` with no parameters means "the command has no parameters".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from shared.config.model_vrrp import TrackProcess

COMM_LEN = 15


@dataclass(frozen=True, slots=True)
class ProcessPattern:
    name: str
    params: tuple[str, ...]
    param_match: str | None
    full_command: bool

    @classmethod
    def of(cls, spec: TrackProcess) -> ProcessPattern:
        if not spec.process:
            raise ValueError(f"vrrp_track_process {spec.name}: no process")
        return cls(spec.process[0], tuple(spec.process[1:]), spec.param_match, spec.full_command)

    @property
    def needs_cmdline(self) -> bool:
        """Reading cmdline costs more than comm (and may touch swapped memory): only when needed."""
        return self.full_command or bool(self.params) or self.param_match is not None

    def matches(self, comm: str, cmdline: Sequence[str] | None) -> bool:
        if not self.needs_cmdline:
            return comm == self.name[:COMM_LEN]
        if not cmdline:
            return False
        if cmdline[0] != self.name and comm != self.name[:COMM_LEN]:
            return False
        if not self.params and self.param_match is None:
            return True
        return self._params_match(tuple(cmdline[1:]))

    def _params_match(self, args: tuple[str, ...]) -> bool:
        want = self.params
        if self.param_match is None:
            return args == want
        if not want:
            return not args
        if len(args) < len(want):
            return False
        if self.param_match == "partial":
            return args[: len(want)] == want
        # initial
        return args[: len(want) - 1] == want[:-1] and args[len(want) - 1].startswith(want[-1])

"""The lab's one error type, in a module of its own so that importing it costs nothing.

Why not in ``netns``: the in-VM tests wait with :mod:`shared.lab.wait` under
emulation, where every import is slow; they must not pull in pyroute2 just to
be able to raise.
"""

from __future__ import annotations


class LabError(RuntimeError):
    """A lab step failed (an ``ip`` command, a daemon that would not start); the message says which."""

"""The one service runner: every ``services/*/__main__.py`` hands its service to ``launch``.

It owns what the four services have in common, so they cannot drift apart:
flags and settings, logging, signals (TERM/INT graceful, HUP reload, held from
the first instruction), the configuration policy (a broken file at start: exit
78 with ``file:line``; at reload: keep the running configuration and publish
the errors), the ready line, the exit codes (``shared.exit_codes``) and the NATS
client name ``lifeline-<service>-<node>[-<replica>]``.  See docs/operations.md.

This package's ``__init__`` imports almost nothing, so ``launch`` can hold the
signals before the service's heavy imports run.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.runner import signals


def launch(spec_ref: str, argv: Sequence[str] | None = None) -> int:
    """Hold signals, then import ``module:SPEC`` and run it; returns the exit status."""
    signals.hold()
    import importlib

    from shared.runner.run import run_service

    module, _, attr = spec_ref.partition(":")
    try:
        spec = getattr(importlib.import_module(module), attr or "SPEC")
        return run_service(spec, argv)
    finally:
        signals.restore()

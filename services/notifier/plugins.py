"""Sinks by name, from the ``lifeline.sinks`` entry point group, so third parties add sinks without us.

Why entry points: an operator installs ``pip install lifeline-sink-pagerduty``
and names ``pagerduty`` in lifeline.toml; nothing in lifeline changes.  An
entry point names a *factory*: any callable taking keyword options and
returning a ``Sink`` (usually the sink class itself).

lifeline's own sinks are also listed here, so they load by name even from a
source tree whose package metadata is older than this module; an installed
entry point with the same name wins, which lets an operator replace a built-in.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Final

from services.notifier.sinks.base import Sink

ENTRY_POINT_GROUP: Final = "lifeline.sinks"

BUILTIN_SINKS: Final[dict[str, str]] = {
    "script": "services.notifier.sinks.script:ScriptSink",
    "smtp": "services.notifier.sinks.smtp:SmtpSink",
    "fifo": "services.notifier.sinks.fifo:FifoSink",
    "webhook": "services.notifier.sinks.webhook:WebhookSink",
    "republish": "services.notifier.sinks.republish:RepublishSink",
}
"""Name → ``module:attribute`` of the sinks shipped with lifeline (mirrors pyproject's entry points)."""

SinkFactory = Callable[..., Sink]


class SinkPluginError(LookupError):
    """A sink name that cannot be loaded, or a plugin that does not build a ``Sink``."""


def _installed() -> dict[str, EntryPoint]:
    """Entry points other than lifeline's own registrations of its built-ins, so a plugin can replace one."""
    return {
        ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if BUILTIN_SINKS.get(ep.name) != ep.value
    }


def available_sinks() -> dict[str, str]:
    """Every loadable sink name → where it comes from (``module:attr``), installed plugins included."""
    found = dict(BUILTIN_SINKS)
    found.update({name: ep.value for name, ep in _installed().items()})
    return dict(sorted(found.items()))


def _load_reference(value: str) -> object:
    module_name, _, attr = value.partition(":")
    obj: object = importlib.import_module(module_name)
    for part in attr.split(".") if attr else []:
        obj = getattr(obj, part)
    return obj


def load_sink_factory(name: str) -> SinkFactory:
    """The factory registered as ``name``; ``SinkPluginError`` if unknown or not callable."""
    installed = _installed()
    try:
        if name in installed:
            factory: object = installed[name].load()
        elif name in BUILTIN_SINKS:
            factory = _load_reference(BUILTIN_SINKS[name])
        else:
            known = ", ".join(available_sinks()) or "none"
            raise SinkPluginError(f"no sink named {name!r} (known: {known})")
    except (ImportError, AttributeError) as exc:
        raise SinkPluginError(f"sink {name!r} cannot be loaded: {exc}") from exc
    if not callable(factory):
        raise SinkPluginError(f"sink {name!r} is not a factory: {factory!r}")
    return factory


def create_sink(name: str, /, **options: Any) -> Sink:
    """Build the sink registered as ``name`` with ``options`` and check it honours the interface."""
    factory = load_sink_factory(name)
    try:
        sink = factory(**options)
    except TypeError as exc:
        raise SinkPluginError(f"sink {name!r} rejected its options: {exc}") from exc
    if not isinstance(sink, Sink) or not inspect.iscoroutinefunction(sink.deliver):
        raise SinkPluginError(f"sink {name!r} built {sink!r}, which has no name or no async deliver()")
    return sink

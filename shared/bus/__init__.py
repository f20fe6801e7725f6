"""The bus API every service imports: connect, publish with an outbox, set-up, micro endpoints.

The implementation lives in small modules (``connect``, ``outbox``,
``publisher``, ``setup``, ``micro``), each with one job; this package
is the stable import path.  The contract itself (subjects, payloads) is in
``shared.events``.
"""

from shared.bus.connect import connect
from shared.bus.micro import ReloadHandler, StatusHandler, micro_name, register_service
from shared.bus.outbox import Outbox
from shared.bus.publisher import Publisher
from shared.bus.setup import ensure_event_stream, ensure_state_bucket, event_stream_config

__all__ = [
    "Outbox",
    "Publisher",
    "ReloadHandler",
    "StatusHandler",
    "connect",
    "ensure_event_stream",
    "ensure_state_bucket",
    "event_stream_config",
    "micro_name",
    "register_service",
]

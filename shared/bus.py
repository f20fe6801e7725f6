"""The bus API every service imports: connect, publish with an outbox, set-up, micro endpoints.

The implementation lives in small modules (``bus_connect``, ``bus_outbox``,
``bus_publisher``, ``bus_setup``, ``bus_micro``), each with one job; this module
is the stable import path.  The contract itself (subjects, payloads) is in
``shared.events``.
"""

from shared.bus_connect import connect
from shared.bus_micro import ReloadHandler, StatusHandler, micro_name, register_service
from shared.bus_outbox import Outbox
from shared.bus_publisher import Publisher
from shared.bus_setup import ensure_event_stream, ensure_state_bucket, event_stream_config

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

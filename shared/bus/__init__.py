"""The bus API every service imports: connect, publish with an outbox, micro endpoints, provisioning.

The implementation lives in small modules (``connect``, ``outbox``,
``publisher``, ``provision``, ``direct_get``, ``trust``, ``micro``), each with
one job; this package is the stable import path.  The contract itself
(subjects, payloads) is in ``shared.events``.
"""

from shared.bus.connect import connect
from shared.bus.micro import ReloadHandler, StatusHandler, micro_name, register_service
from shared.bus.outbox import Outbox
from shared.bus.provision import NotProvisioned, event_stream_config, node_plan, provision
from shared.bus.publisher import Publisher

__all__ = [
    "NotProvisioned",
    "Outbox",
    "Publisher",
    "ReloadHandler",
    "StatusHandler",
    "connect",
    "event_stream_config",
    "micro_name",
    "node_plan",
    "provision",
    "register_service",
]

"""Our checker with event delivery cut off, for bench/checks_vm.py's cost split.

Same entry point as ``python -m services.checker`` (same NATS connection,
membership, KV watch, scheduler, probes), but ``Publisher.publish`` stamps and
encodes each event and drops it instead of queueing it for the core publish
and the KV put.  The difference from the real checker is what delivering one
``RealServerHealth`` per real server per ``delay_loop`` costs.
"""

from __future__ import annotations

import sys

import msgspec

from shared.bus import publisher as bus_publisher
from shared.events import Event, encode


def _publish(self: bus_publisher.Publisher, event: Event) -> Event:
    stamped = msgspec.structs.replace(
        event, node=self.node, ts=event.ts or self._clock(), seq=next(self._seq), boot_id=self.boot_id
    )
    encode(stamped)
    return stamped


bus_publisher.Publisher.publish = _publish  # type: ignore[method-assign,assignment]

if __name__ == "__main__":
    from services.checker.__main__ import main

    sys.exit(main())

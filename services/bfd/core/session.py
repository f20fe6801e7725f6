"""The sans-IO BFD session (RFC 5880 asynchronous mode, as keepalived 2.2.7 runs it).

h11-style like the VRRP machine: no socket, no clock.  The shell calls
``handle(now, input)`` with its monotonic time, performs the returned
actions in order, sleeps until ``next_deadline()`` and calls
``handle(now, Tick())``.  Every ``handle`` first fires the deadlines already
due, so a late shell still sees them in time order.

Rules (docs/bfd.md has the prose):

* states Down, Init, Up, AdminDown and the three-way handshake of 6.8.6;
* the transmit interval is max(our Desired Min TX, the peer's Required Min
  RX) and the detection time the peer's Detect Mult x max(our Required Min
  RX, the peer's Desired Min TX): the slower side wins (6.8.2, 6.8.4);
* while not Up we advertise ``idle_tx`` as Desired Min TX (6.8.3 wants at
  least a second; keepalived's ``idle_tx`` defaults to one);
* every change of the advertised timers while Up runs a Poll Sequence, and a
  slower transmit rate or a faster receive rate waits for its Final (6.8.3);
* each transmission is jittered to 75-100 % of the interval, 75-90 % with
  Detect Mult 1 (6.8.7);
* a passive session sends nothing until it has heard its peer (6.1);
* no demand mode, echo or authentication (keepalived has none either).
"""

from __future__ import annotations

import enum
import random
from collections.abc import Callable

import msgspec

from services.bfd.core.packet import ControlPacket, Diag, SessionState

US = 1_000_000.0
"""Microseconds per second: the wire unit of the intervals."""


class SessionParams(msgspec.Struct, frozen=True, kw_only=True):
    """One ``bfd_instance``'s timers, in microseconds as on the wire."""

    name: str
    local_discr: int
    min_tx_us: int = 10_000
    min_rx_us: int = 10_000
    idle_tx_us: int = 1_000_000
    detect_mult: int = 5
    passive: bool = False


# --------------------------------------------------------------------------- inputs


class Start(msgspec.Struct, frozen=True, tag="start"):
    """The socket is ready: start in Down (an active session sends at once)."""


class Tick(msgspec.Struct, frozen=True, tag="tick"):
    """Nothing but the passage of time."""


class Received(msgspec.Struct, frozen=True, tag="received"):
    """A packet the codec accepted and the shell demultiplexed to this session."""

    packet: ControlPacket


class AdminDown(msgspec.Struct, frozen=True, tag="admin_down"):
    """Take the session out of service (6.8.16): the peer sees AdminDown, not a failure."""


class AdminUp(msgspec.Struct, frozen=True, tag="admin_up"):
    """Put an AdminDown session back in service: it restarts in Down."""


class Reconfigure(msgspec.Struct, frozen=True, tag="reconfigure"):
    """New timers from a reload; the discriminator stays."""

    params: SessionParams


Input = Start | Tick | Received | AdminDown | AdminUp | Reconfigure

# --------------------------------------------------------------------------- actions


class Send(msgspec.Struct, frozen=True, tag="send"):
    """Transmit this packet to the peer."""

    packet: ControlPacket


class StateChanged(msgspec.Struct, frozen=True, tag="state"):
    """bfd.SessionState changed; ``diag`` is bfd.LocalDiag after the change."""

    old: SessionState
    new: SessionState
    diag: Diag


class Dropped(msgspec.Struct, frozen=True, tag="dropped"):
    """A decoded packet this session discarded (6.8.6); ``reason`` is a counter label."""

    reason: str


Action = Send | StateChanged | Dropped


class _Timer(enum.Enum):
    DETECT = "detect"
    TRANSMIT = "transmit"


Jitter = Callable[[float, float], float]
"""``uniform(low, high)``: the shell's random source, a fixed one in replays."""


class BfdSession:
    """One BFD session: feed it inputs, perform its actions."""

    def __init__(self, params: SessionParams, *, jitter: Jitter | None = None) -> None:
        self._p = params
        self._jitter = jitter or random.Random().uniform
        self._state = SessionState.DOWN
        self._diag = Diag.NONE
        self._remote_discr = 0
        self._remote_state = SessionState.DOWN
        self._remote_min_rx_us = 1
        """bfd.RemoteMinRxInterval: 1 until the peer tells us (6.8.1)."""
        self._remote_min_tx_us = 0
        self._remote_mult = 0
        self._tx_in_force_us = params.idle_tx_us
        """The Desired Min TX the transmit interval uses (an increase waits for the Final)."""
        self._rx_in_force_us = params.min_rx_us
        """The Required Min RX the detection time uses (a decrease waits for the Final)."""
        self._polling = False
        self._timers: dict[_Timer, float] = {}
        self._started = False

    # ------------------------------------------------------------------ public API

    @property
    def params(self) -> SessionParams:
        """The parameters in force."""
        return self._p

    @property
    def state(self) -> SessionState:
        """bfd.SessionState."""
        return self._state

    @property
    def diag(self) -> Diag:
        """bfd.LocalDiag."""
        return self._diag

    @property
    def remote_discr(self) -> int:
        """bfd.RemoteDiscr: zero until the peer is heard, and again after a detection timeout."""
        return self._remote_discr

    @property
    def polling(self) -> bool:
        """A Poll Sequence is in progress."""
        return self._polling

    def transmit_interval(self) -> float:
        """Seconds between packets before jitter: the slower of our TX and the peer's RX."""
        return max(self._tx_in_force_us, self._remote_min_rx_us) / US

    def detection_time(self) -> float:
        """Seconds without a packet before the session fails: the peer's mult x the slower of the two."""
        return self._remote_mult * max(self._rx_in_force_us, self._remote_min_tx_us) / US

    def next_deadline(self) -> float | None:
        """When the shell must call ``handle(now, Tick())`` next; None when idle."""
        return min(self._timers.values(), default=None)

    def handle(self, now: float, event: Input) -> list[Action]:
        """Fire the due deadlines, then take ``event``; return the actions in order."""
        actions = self._fire_due(now)
        if isinstance(event, Start):
            actions += self._start(now)
        elif isinstance(event, Received):
            actions += self._receive(now, event.packet)
        elif isinstance(event, AdminDown):
            actions += self._admin_down(now)
        elif isinstance(event, AdminUp):
            actions += self._admin_up(now)
        elif isinstance(event, Reconfigure):
            actions += self._reconfigure(now, event.params)
        return actions

    # ------------------------------------------------------------------ inputs

    def _start(self, now: float) -> list[Action]:
        self._started = True
        return self._send_periodic(now) if self._may_transmit() else []

    def _receive(self, now: float, packet: ControlPacket) -> list[Action]:
        if packet.your_discr not in (0, self._p.local_discr):
            return [Dropped("your_discr")]
        if self._state is SessionState.ADMIN_DOWN:
            return [Dropped("admin_down")]
        actions: list[Action] = []
        was_silent = not self._may_transmit()
        self._remote_discr = packet.my_discr
        self._remote_state = packet.state
        self._remote_min_rx_us = packet.required_min_rx_us
        self._remote_min_tx_us = packet.desired_min_tx_us
        self._remote_mult = packet.detect_mult
        if packet.final and self._polling:
            self._end_poll()
        self._timers[_Timer.DETECT] = now + self.detection_time()
        actions += self._handshake(now, packet.state)
        changed = bool(actions)
        if packet.poll:
            actions.append(Send(self._packet(final=True)))
        if was_silent and not changed and self._may_transmit():
            actions += self._send_periodic(now)
        else:
            self._pull_in_transmit(now)
        return actions

    def _handshake(self, now: float, remote: SessionState) -> list[Action]:
        """The state table of 6.8.6."""
        if remote is SessionState.ADMIN_DOWN:
            if self._state is not SessionState.DOWN:
                return self._become(now, SessionState.DOWN, Diag.NEIGHBOR_DOWN)
            return []
        if self._state is SessionState.DOWN:
            if remote is SessionState.DOWN:
                return self._become(now, SessionState.INIT, self._diag)
            if remote is SessionState.INIT:
                return self._become(now, SessionState.UP, Diag.NONE)
        elif self._state is SessionState.INIT:
            if remote in (SessionState.INIT, SessionState.UP):
                return self._become(now, SessionState.UP, Diag.NONE)
        elif remote is SessionState.DOWN:
            return self._become(now, SessionState.DOWN, Diag.NEIGHBOR_DOWN)
        return []

    def _admin_down(self, now: float) -> list[Action]:
        if self._state is SessionState.ADMIN_DOWN:
            return []
        self._timers.pop(_Timer.DETECT, None)
        return self._become(now, SessionState.ADMIN_DOWN, Diag.ADMIN_DOWN)

    def _admin_up(self, now: float) -> list[Action]:
        if self._state is not SessionState.ADMIN_DOWN:
            return []
        return self._become(now, SessionState.DOWN, Diag.NONE)

    def _reconfigure(self, now: float, params: SessionParams) -> list[Action]:
        old = self._p
        self._p = msgspec.structs.replace(params, local_discr=old.local_discr)
        if self._state is SessionState.UP and (old.min_tx_us, old.min_rx_us) != (
            params.min_tx_us,
            params.min_rx_us,
        ):
            self._apply_timers(now, poll=True)
        else:
            self._tx_in_force_us = self._advertised_tx()
            self._rx_in_force_us = params.min_rx_us
        if not self._may_transmit():
            self._timers.pop(_Timer.TRANSMIT, None)
        elif self._started and _Timer.TRANSMIT not in self._timers:
            return self._send_periodic(now)
        return []

    # ------------------------------------------------------------------ timers

    def _fire_due(self, now: float) -> list[Action]:
        actions: list[Action] = []
        while True:
            due = [(at, kind.value, kind) for kind, at in self._timers.items() if at <= now]
            if not due:
                return actions
            at, _, kind = min(due)
            del self._timers[kind]
            if kind is _Timer.DETECT:
                actions += self._detection_expired(at)
            else:
                actions += self._send_periodic(at)

    def _detection_expired(self, at: float) -> list[Action]:
        """6.8.4: Init or Up goes Down with diag 1; the peer is forgotten in any state (6.8.1)."""
        self._remote_discr = 0
        self._remote_state = SessionState.DOWN
        self._remote_min_rx_us = 1
        self._remote_min_tx_us = 0
        if not self._may_transmit():
            self._timers.pop(_Timer.TRANSMIT, None)
        if self._state in (SessionState.INIT, SessionState.UP):
            return self._become(at, SessionState.DOWN, Diag.DETECTION_TIME_EXPIRED)
        return []

    def _may_transmit(self) -> bool:
        """6.8.7: a passive session waits for the peer; RemoteMinRx 0 asks us to stop."""
        if not self._started:
            return False
        if self._p.passive and self._remote_discr == 0:
            return False
        return self._remote_min_rx_us != 0

    def _send_periodic(self, now: float) -> list[Action]:
        self._timers[_Timer.TRANSMIT] = now + self._jittered()
        return [Send(self._packet(poll=self._polling))]

    def _pull_in_transmit(self, now: float) -> None:
        """A faster interval takes effect now, not after the slow one already scheduled."""
        at = self._timers.get(_Timer.TRANSMIT)
        if at is not None and at > now + self.transmit_interval():
            self._timers[_Timer.TRANSMIT] = now + self._jittered()

    def _jittered(self) -> float:
        """6.8.7: 75-100 % of the interval, 75-90 % when Detect Mult is 1."""
        high = 0.9 if self._p.detect_mult == 1 else 1.0
        return self.transmit_interval() * self._jitter(0.75, high)

    # ------------------------------------------------------------------ state and polls

    def _become(self, now: float, new: SessionState, diag: Diag) -> list[Action]:
        """Change state and tell the peer at once, as keepalived and FRR do.

        Why at once: the peer learns Init/Up without waiting out an idle
        interval (up to a second), a Down (diag 3 for it) or an AdminDown
        before a stopping service goes quiet.  The periodic schedule restarts
        from this packet.
        """
        old = self._state
        self._state = new
        self._diag = diag
        self._apply_timers(now, poll=new is SessionState.UP)
        actions: list[Action] = [StateChanged(old, new, diag)]
        if self._may_transmit():
            actions += self._send_periodic(now)
        return actions

    def _advertised_tx(self) -> int:
        """Desired Min TX: ``min_tx`` once Up, ``idle_tx`` before (6.8.3)."""
        return self._p.min_tx_us if self._state is SessionState.UP else self._p.idle_tx_us

    def _apply_timers(self, now: float, *, poll: bool) -> None:
        """Advertise the timers for the current state; while Up, a poll guards the slower half."""
        tx, rx = self._advertised_tx(), self._p.min_rx_us
        if not poll:
            self._polling = False
            self._tx_in_force_us, self._rx_in_force_us = tx, rx
            return
        self._polling = True
        self._tx_in_force_us = min(self._tx_in_force_us, tx)
        self._rx_in_force_us = max(self._rx_in_force_us, rx)
        self._pull_in_transmit(now)

    def _end_poll(self) -> None:
        self._polling = False
        self._tx_in_force_us = self._advertised_tx()
        self._rx_in_force_us = self._p.min_rx_us

    def _packet(self, *, poll: bool = False, final: bool = False) -> ControlPacket:
        return ControlPacket(
            state=self._state,
            diag=self._diag,
            poll=poll and not final,
            final=final,
            detect_mult=self._p.detect_mult,
            my_discr=self._p.local_discr,
            your_discr=self._remote_discr,
            desired_min_tx_us=self._advertised_tx(),
            required_min_rx_us=self._p.min_rx_us,
        )

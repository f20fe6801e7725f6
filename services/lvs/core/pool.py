"""A virtual server's pool: real-server health in, kernel membership and PoolEvents out (sans-IO).

Why sans-IO: quorum, hysteresis, sorry server, inhibit_on_failure and alpha
interact in ways that deserve exhaustive tests; here they are plain state
transitions, tested without a bus or a kernel.  The service feeds
``RealServerHealth`` facts in and writes ``members()`` to the kernel.

keepalived semantics (docs/keepalived.md#ipvs):

* a real server is alive iff none of its checkers has failed; with ``alpha``
  every checker starts failed, so the server waits for its first success;
* down removes it from IPVS, or sets weight 0 under ``inhibit_on_failure``;
* weight_sum = Σ effective weights of alive servers; quorum is gained when
  weight_sum ≥ quorum + hysteresis and lost when weight_sum < quorum -
  hysteresis or weight_sum = 0;
* on quorum loss with a sorry server, the alive servers leave the table and the
  sorry server enters (``sorry_server_inhibit`` keeps it at weight 0 while idle);
  without a sorry server quorum loss is only reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.lvs.core.desired import RealPlan, VirtualPlan
from shared.events import OMEGA_DETAIL, PoolEvent, PoolEventKind

ALPHA_CHECKER = "alpha"
"""Pseudo checker that holds an ``alpha`` server down until its first success."""
"""``PoolEvent.detail`` of the shutdown events: tells the notifier they come from a stop, not a failure."""
STOP_CHECKER = "stop"
"""Pseudo checker that takes every server down when the service releases the pool at stop."""


@dataclass
class RealState:
    plan: RealPlan
    failed: set[str] = field(default_factory=set)
    dynamic_weight: int | None = None

    @property
    def alive(self) -> bool:
        return not self.failed

    @property
    def weight(self) -> int:
        return self.plan.attrs.weight if self.dynamic_weight is None else self.dynamic_weight


class Pool:
    """One virtual server's membership; ``previous`` carries health across a reload."""

    def __init__(self, plan: VirtualPlan, previous: Pool | None = None) -> None:
        self.plan = plan
        self.reals: dict[str, RealState] = {}
        self.released = False
        for name, real in plan.reals.items():
            old = previous.reals.get(name) if previous is not None else None
            if old is not None:
                self.reals[name] = RealState(real, set(old.failed), old.dynamic_weight)
            else:
                self.reals[name] = RealState(real, {ALPHA_CHECKER} if real.alpha else set())
        self.quorum_up = self.weight_sum() >= plan.quorum and self.weight_sum() > 0
        if previous is not None and previous.plan.quorum == plan.quorum:
            self.quorum_up = previous.quorum_up
            self._update_quorum()

    # ------------------------------------------------------------------ facts in

    def health(
        self, real: str, up: bool, checker: str = "check", weight: int | None = None
    ) -> list[PoolEvent]:
        """One checker's verdict on one real server; returns what changed (empty when nothing did)."""
        state = self.reals.get(real)
        if state is None:
            return []
        was_alive, old_weight, was_quorum = state.alive, state.weight, self.quorum_up
        was_sorry = self.sorry_active
        if up:
            state.failed.discard(checker)
            state.failed.discard(ALPHA_CHECKER)
        else:
            state.failed.add(checker)
        if weight is not None:
            state.dynamic_weight = weight
        self._update_quorum()
        events: list[PoolEvent] = []
        if state.alive != was_alive:
            kind = PoolEventKind.RS_ADDED if state.alive else PoolEventKind.RS_REMOVED
            events.append(self._event(kind, state))
        elif state.alive and state.weight != old_weight:
            events.append(self._event(PoolEventKind.WEIGHT_CHANGED, state))
        if self.quorum_up != was_quorum:
            kind = PoolEventKind.QUORUM_UP if self.quorum_up else PoolEventKind.QUORUM_DOWN
            events.append(self._event(kind))
        if self.sorry_active != was_sorry:
            kind = PoolEventKind.SORRY_IN if self.sorry_active else PoolEventKind.SORRY_OUT
            events.append(self._event(kind, detail=self.plan.sorry.name if self.plan.sorry else ""))
        return events

    def startup_events(self) -> list[PoolEvent]:
        """What an operator must hear at start: a pool that begins without quorum."""
        if self.quorum_up:
            return []
        events = [self._event(PoolEventKind.QUORUM_DOWN)]
        if self.sorry_active:
            events.append(self._event(PoolEventKind.SORRY_IN))
        return events

    def release(self, *, per_server: bool = True) -> list[PoolEvent]:
        """The service stops and deletes this pool from the kernel: what ``omega`` must announce.

        keepalived's ``omega`` runs the down notifiers at shutdown: each real
        server still alive leaves (``notify_down``, in configuration order), and
        quorum is reported lost at the point the shrinking weight sum crosses
        the threshold, as if they had failed one by one.  Servers already down
        were announced when they failed.  The sorry server gets no event (it
        has no notifier of its own).  Without ``omega`` nothing is announced.
        After this the pool wants nothing in the kernel.

        ``per_server=False`` is ``lvs_flush_on_stop``: keepalived then deletes
        no real server one by one (it flushes, or deletes the virtual server),
        so it runs no real server's ``notify_down``, only the virtual server's
        quorum-down notifiers (``clear_services``, ``clear_service_vs``).
        """
        events: list[PoolEvent] = []
        was_quorum, self.released = self.quorum_up, True
        for state in self.reals.values():
            if not state.alive:
                continue
            state.failed.add(STOP_CHECKER)
            self._update_quorum()
            if per_server:
                events.append(self._event(PoolEventKind.RS_REMOVED, state, detail=OMEGA_DETAIL))
            if was_quorum and not self.quorum_up:
                events.append(self._event(PoolEventKind.QUORUM_DOWN, detail=OMEGA_DETAIL))
                was_quorum = False
        return events if self.plan.omega else []

    # ------------------------------------------------------------------ state out

    def weight_sum(self) -> int:
        return sum(s.weight for s in self.reals.values() if s.alive)

    @property
    def sorry_active(self) -> bool:
        return self.plan.sorry is not None and not self.quorum_up and not self.released

    def members(self) -> dict[str, int]:
        """Name -> kernel weight of everything that belongs in the table now."""
        out: dict[str, int] = {}
        if self.released:
            return out
        hide_reals = self.sorry_active
        for name, state in self.reals.items():
            if state.alive and not hide_reals:
                out[name] = state.weight
            elif state.plan.inhibit_on_failure:
                out[name] = 0
        sorry = self.plan.sorry
        if sorry is not None:
            if self.sorry_active:
                out[sorry.name] = sorry.attrs.weight
            elif sorry.inhibit_on_failure:
                out[sorry.name] = 0
        return out

    def status(self) -> dict[str, object]:
        return {
            "quorum": self.plan.quorum,
            "hysteresis": self.plan.hysteresis,
            "quorum_up": self.quorum_up,
            "weight_sum": self.weight_sum(),
            "sorry_active": self.sorry_active,
            "reals": {
                n: {"alive": s.alive, "weight": s.weight, "failed": sorted(s.failed)}
                for n, s in self.reals.items()
            },
        }

    # ------------------------------------------------------------------ internals

    def _update_quorum(self) -> None:
        total = self.weight_sum()
        quorum, hyst = self.plan.quorum, self.plan.hysteresis
        if not self.quorum_up and total >= quorum + hyst and total > 0:
            self.quorum_up = True
        elif self.quorum_up and (total < quorum - hyst or total == 0):
            self.quorum_up = False

    def _event(self, kind: PoolEventKind, state: RealState | None = None, detail: str = "") -> PoolEvent:
        return PoolEvent(
            virtual=self.plan.name,
            kind=kind,
            real=state.plan.name if state is not None else None,
            weight=state.weight if state is not None else None,
            weight_sum=self.weight_sum(),
            quorum=self.plan.quorum,
            hysteresis=self.plan.hysteresis,
            quorum_up=self.quorum_up,
            sorry_active=self.sorry_active,
            detail=detail,
        )

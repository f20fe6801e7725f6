"""What a real server's event is worth notifying: keepalived's start and per-checker rules.

keepalived 2.2.7 (observed with real IPVS, docs/keepalived.md#real-server-notifies):

* At start it puts every real server in the pool (unless ``alpha``) without a
  word.  A first success that confirms that is no transition: no
  ``notify_up``, no ``RS ... UP`` line, no mail.  A first failure is one.
* An ``alpha`` server starts out of the pool, and its first verdict is always
  notified: a success as a transition, a failure (which changes nothing) by
  ``notify_down`` and ``RS ... DOWN`` all the same, but without a mail.
* ``rs_init_notifies``: the start itself is notified too, by script and FIFO
  (``notify_up``, ``RS ... UP``), never by mail.  The checker tells the start
  state with the first transition (``RealServerHealth.initial_up``), so the
  notifier sends it then, before that verdict's own transition if any.
* Mail follows the checkers: each checker that goes up or down mails
  ("=> TCP CHECK failed on service <="), even when the server stays as it was,
  with the server's state in the subject.  ``no_checker_emails``: only the
  mails of checkers that changed the server's state.

Scripts and FIFO lines follow the server alone (``changed``), never a checker.
"""

from __future__ import annotations

from shared.events import RealServerHealth


def server_changed(event: RealServerHealth) -> bool:
    """The server's own state (or weight) changed, the start state counting as the state before."""
    if event.initial_up is not None:
        return event.up != event.initial_up
    return event.changed


def notified_states(event: RealServerHealth, *, rs_init_notifies: bool) -> list[bool]:
    """The states to notify by script and FIFO line, in order (True: UP)."""
    if not event.changed:
        return []
    if event.initial_up is False:  # alpha: the first verdict, whatever it is
        return [event.up]
    states: list[bool] = []
    if event.initial_up and rs_init_notifies:
        states.append(True)  # keepalived's start: only a server it put in the pool is notified
    if server_changed(event):
        states.append(event.up)
    return states


def mailed(event: RealServerHealth, *, no_checker_emails: bool) -> bool:
    """keepalived mails this event (before ``smtp_alert`` and the repeat rule)."""
    if server_changed(event):
        return True
    return event.checker_up is not None and not no_checker_emails


def checker_mail(event: RealServerHealth) -> bool:
    """A mail for one checker while the server's state stays: never a repeat to suppress."""
    return not server_changed(event) and event.checker_up is not None


def mailed_verdict(event: RealServerHealth) -> bool:
    """What the mail's body says the checker found (the subject says the server's state)."""
    return event.up if event.checker_up is None else event.checker_up

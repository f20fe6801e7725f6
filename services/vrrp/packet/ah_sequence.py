"""AH anti-replay: keepalived 2.2.7's one sequence counter per instance (docs/keepalived.md#authentication).

Why one counter for sending *and* receiving: that is what keepalived keeps
(``ipsecah_counter``), and interoperating depends on it.  A receiver admits
an authenticated advert only if its sequence number is above the counter and
then takes that number; a sender adds one and sends the result.  So every
router of a virtual router follows the sequence of whoever is master, and a
backup that takes over continues above the last number it heard: the group
shares one rising sequence, and a captured advert (however valid its ICV)
is never accepted again.

A router that restarts starts again from 0.  If it comes up as BACKUP it
simply takes the group's number from the first advert it hears.  If it
comes up as MASTER (an address owner), the others drop its adverts as
replays until one of them takes over and advertises; the restarted master
admits that higher number and (keepalived's "Syncing seq_num" for a
lower-priority advert) sets its counter to it + 1, so its next advert is
above everyone's and is accepted again: one down interval of two masters,
as with keepalived (``tests/lab/test_vrrp_ah_replay.py`` shows both
directions against the real keepalived).

Sans-IO: numbers in, verdicts out.  keepalived's wrap-around handling
(``cycle``, reached after 2^32 - 3 adverts, 136 years at VRRPv2's one-second
minimum) is not reproduced; the counter stops at its top instead of
wrapping, so it never leaves 32 bits.
"""

from __future__ import annotations

from services.vrrp.packet.model import Drop, DropReason

SEQ_MAX = 0xFFFFFFFF
SEND_LIMIT = 0xFFFFFFFD
"""keepalived stops counting up past this number (its ``cycle`` limit)."""


class AhSequence:
    """The counter of one instance: the last sequence number sent or accepted."""

    def __init__(self, last: int = 0) -> None:
        self.last = last

    def admit(self, seq: int) -> Drop | None:
        """Receive side, after SPI and ICV passed: above the counter (and taken), or a replay.

        keepalived checks this in every state that reads adverts and before
        the interval and address checks, so an authenticated advert moves the
        counter even when a later check drops it.
        """
        if seq > self.last:
            self.last = seq
            return None
        return Drop(DropReason.AH_REPLAY, f"AH sequence {seq}, last {self.last}")

    def next(self) -> int:
        """Send side: one more than the last number sent or accepted."""
        if self.last <= SEND_LIMIT:
            self.last += 1
        return self.last

    def resync(self, seq: int) -> None:
        """A MASTER heard a lower-priority advert: continue above it (keepalived: its seq + 1).

        This is what ends the replay drops after a restart: the restarted
        master's next advert carries a number above the one its peers hold.
        """
        self.last = (seq + 1) & SEQ_MAX

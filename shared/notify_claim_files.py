"""The claim files of ``shared.notify_claims`` and ``settle``, the one loop both sides run.

Why plain files: the claims must work while NATS is stopped, which is the
case they exist for; a local directory both services see (the node's
``state_dir``, mounted into both containers under compose) needs nothing else.
``O_CREAT|O_EXCL`` decides who claims, ``os.replace`` makes ``done`` appear
whole, ``os.rename`` of an abandoned claim to a unique name lets exactly one
of two takers win.  The files are tiny and local: the calls are made from the
event loop directly.

The folders are created ``0775`` and the claims ``0644``: both sides must read
every claim and both must be able to create them (``ClaimDir.prepare``;
docs/notifier.md, "Claims").  A notifier that cannot create a claim raises,
and the vrrp service runs that event's scripts after its bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from shared.events import Event
from shared.notify_claims import (
    HEARTBEAT,
    RETENTION,
    STALE_AFTER,
    Claim,
    Owner,
    Step,
    claim_key,
    claim_name,
    decode_claim,
    encode_claim,
    expired,
    next_step,
)
from shared.state_dirs import make_shared_dirs

log = logging.getLogger("lifeline.notify_claims")

CLAIMS_DIR_MODE = 0o775
"""The claims folder: the notifier and vrrp (group ``lifeline``) both create and rename claims in it."""

RunScripts = Callable[[int], Awaitable[str]]
"""Runs one event's scripts as attempt N; returns ``ok`` or the first failure."""


@dataclass(frozen=True)
class Settled:
    """How ``settle`` ended: ``ran`` by us (with ``outcome``), or by the claim's owner."""

    ran: bool
    claim: Claim | None


class ClaimDir:
    """One node's claims folder, seen by one side (``owner``)."""

    def __init__(
        self,
        path: Path,
        owner: Owner,
        *,
        heartbeat: float = HEARTBEAT,
        stale_after: float = STALE_AFTER,
        retention: float = RETENTION,
        poll: float = 0.05,
    ) -> None:
        self.path = path
        self.owner: Owner = owner
        self.heartbeat = heartbeat
        self.stale_after = stale_after
        self.retention = retention
        self.poll = poll
        self.taken_over = 0
        """Claims this side found abandoned and took over."""

    def prepare(self) -> None:
        """Create the folder (and its parents) if needed; ``OSError`` when it cannot.

        Created folders are group-writable (``0775``) and given to the owner and
        group of the nearest one that existed (``state_dir``: the notifier's user's
        in the image and under systemd), so whichever side starts first, the other
        can claim too.  The vrrp service is root without ``CAP_DAC_OVERRIDE`` or
        ``CAP_CHOWN`` under compose and systemd, but in the ``lifeline`` group, which
        lets it write there and give its folders that group.
        """
        if not self.path.is_dir():
            make_shared_dirs(self.path, CLAIMS_DIR_MODE)

    # ------------------------------------------------------------------ files

    def _create(self, name: str, claim: Claim) -> bool:
        """True when this call created the claim (we run the scripts)."""
        self.prepare()
        try:
            fd = os.open(self.path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, encode_claim(claim))
        finally:
            os.close(fd)
        return True

    def read(self, name: str) -> tuple[bool, Claim | None, float]:
        """(exists, record, seconds since its last write)."""
        try:
            with open(self.path / name, "rb") as f:
                untouched = time.time() - os.fstat(f.fileno()).st_mtime
                return True, decode_claim(f.read()), max(0.0, untouched)
        except FileNotFoundError:
            return False, None, 0.0

    def _finish(self, name: str, claim: Claim) -> None:
        tmp = self.path / f".{name}.{self.owner}.{os.getpid()}"
        tmp.write_bytes(encode_claim(claim))
        tmp.chmod(0o644)
        os.replace(tmp, self.path / name)

    def _abandon(self, name: str) -> bool:
        """Move an abandoned claim out of the way; True for the one taker whose rename won."""
        grave = self.path / f".{name}.abandoned.{uuid.uuid4().hex}"
        try:
            os.rename(self.path / name, grave)
        except FileNotFoundError:
            return False
        grave.unlink(missing_ok=True)
        return True

    async def _beat(self, name: str) -> None:
        while True:
            await asyncio.sleep(self.heartbeat)
            with contextlib.suppress(OSError):
                os.utime(self.path / name)

    def sweep(self) -> int:
        """Remove claims (and leftovers) older than ``retention``; how many went."""
        removed = 0
        now = time.time()
        with contextlib.suppress(FileNotFoundError), os.scandir(self.path) as entries:
            for entry in entries:
                with contextlib.suppress(FileNotFoundError):
                    if expired(now - entry.stat().st_mtime, self.retention):
                        os.unlink(entry.path)
                        removed += 1
        return removed

    # ------------------------------------------------------------------ the loop

    async def settle(self, event: Event, run: RunScripts) -> Settled:
        """Return once ``event``'s scripts have run: by us (we claimed) or by the claim's owner.

        Waits while someone else runs them; takes over a claim whose owner
        stopped beating.  Cancelled while our scripts run, the claim stays
        ``running`` and untouched: the other side takes it over.
        """
        name = claim_name(event)
        attempt = 1
        while True:
            exists, claim, untouched = self.read(name)
            step = next_step(exists, claim, untouched, self.stale_after)
            if step is Step.DONE:
                return Settled(False, claim)
            if step is Step.WAIT:
                await asyncio.sleep(self.poll)
                continue
            if step is Step.TAKE_OVER:
                attempt = (claim.attempt if claim is not None else 1) + 1
                if self._abandon(name):
                    self.taken_over += 1
                    log.warning("%s: claim abandoned by its owner: run again (attempt %d)", name, attempt)
                continue
            mine = Claim(owner=self.owner, state="running", key=claim_key(event), attempt=attempt)
            if self._create(name, mine):
                return Settled(True, await self._run(name, mine, run))

    async def _run(self, name: str, claim: Claim, run: RunScripts) -> Claim:
        beat = asyncio.create_task(self._beat(name), name=f"claim-{name}")
        try:
            outcome = await run(claim.attempt)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat
        done = Claim(owner=self.owner, state="done", key=claim.key, attempt=claim.attempt, outcome=outcome)
        self._finish(name, done)
        return done

"""``track_file``: the integer in a file, times the weight, as a priority delta.

man keepalived.conf: with weight 0 a non-zero value is a failure (FAULT) and 0
is OK; otherwise the delta is ``value * weight`` (negated by ``reverse``), and
a delta below -253 puts dependent instances in FAULT.  Text that is not a
number reads as 0 (C ``strtol``); so does a missing or unreadable file (the
detail says why).

Change detection is inotify on the parent directory (``inotify.DirWatch``,
ctypes, no polling) so a change is published within milliseconds; if inotify
cannot be set up (no such directory yet, fd limits) the tracker falls back to
re-reading every ``poll_interval`` (0.5 s), and ``status`` says which mode runs.
A periodic re-read every heartbeat interval also guards against a missed event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from pathlib import Path

from services.checker.probes.file import MAX_READ, parse_value
from services.checker.trackers.base import Counters, Report, TrackerOutcome
from services.checker.trackers.inotify import DirWatch
from shared.config.model_vrrp import TrackFile
from shared.events import TrackerKind
from shared.safe_files import rewrite_in_place
from shared.tracker_weights import faults

log = logging.getLogger("lifeline.checker.file")

FAULT_BELOW = -253


def init_file(spec: TrackFile, *, reload: bool = False) -> None:
    """``init_file [VALUE] [overwrite]``: write VALUE if the file is missing (or always with overwrite).

    At a ``reload`` an existing file is never overwritten (as keepalived): it
    holds the value someone set since the start, which a reload must not undo.
    """
    if not spec.init_file or spec.file is None:
        return
    path = Path(spec.file)
    if os.path.lexists(path) and (reload or not spec.init_overwrite):
        return
    try:  # in place (writers keep their file), never through a symlink or into a hard link
        rewrite_in_place(path, f"{spec.init_value}\n".encode(), mode=0o644)
    except OSError as exc:
        log.warning("track_file %s: cannot initialise %s: %s", spec.name, path, exc)


def read_value(path: str) -> tuple[int, str]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_READ)
    except OSError as exc:
        return 0, f"unreadable ({exc.strerror}): value 0"
    value = parse_value(raw)
    return value, f"value {value}"


def outcome(spec: TrackFile, value: int, detail: str) -> TrackerOutcome:
    if spec.weight == 0:
        ok = value == 0
        return TrackerOutcome(
            ok=ok, detail=detail, value=value, contribution=0, faults=faults(0, spec.weight_reverse, ok)
        )
    delta = value * spec.weight * (-1 if spec.weight_reverse else 1)
    fault = delta < FAULT_BELOW
    return TrackerOutcome(ok=not fault, detail=detail, value=value, contribution=delta, faults=fault)


class FileTracker:
    kind = TrackerKind.FILE

    def __init__(
        self, spec: TrackFile, report: Report, *, refresh: float = 1.0, poll_interval: float = 0.5
    ) -> None:
        if spec.file is None:
            raise ValueError(f"track_file {spec.name}: no file")
        self.name = spec.name
        self.spec = spec
        self.path = spec.file
        self.weight = spec.weight
        self.reverse = spec.weight_reverse
        self.refresh = refresh
        self.poll_interval = poll_interval
        self.counters = Counters()
        self.mode = "starting"
        self._report = report
        self._last: int | None = None
        self._changed = asyncio.Event()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        directory, base = os.path.split(os.path.abspath(self.path))
        watch: DirWatch | None = None
        try:
            watch = DirWatch(directory)
        except OSError as exc:
            log.warning(
                "track_file %s: no inotify (%s); polling every %gs", self.name, exc, self.poll_interval
            )
        if watch is not None:
            self.mode = "inotify"
            loop.add_reader(watch.fd, self._on_events, watch, base)
        else:
            self.mode = "poll"
        wait = self.refresh if watch is not None else min(self.refresh, self.poll_interval)
        try:
            while True:
                self._read(force=self._last is None)
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), wait)
        finally:
            if watch is not None:
                loop.remove_reader(watch.fd)
                watch.close()

    def _on_events(self, watch: DirWatch, base: str) -> None:
        if base in watch.names():
            self._changed.set()

    def _read(self, *, force: bool) -> None:
        value, detail = read_value(self.path)
        result = outcome(self.spec, value, detail)
        self.counters.record(result.ok, detail, None)
        if force or value != self._last:
            if self._last is not None:
                self.counters.changes += 1
            self._last = value
            self._report(result)

    def state(self) -> dict[str, object]:
        return {"path": self.path, "mode": self.mode, "value": self._last}

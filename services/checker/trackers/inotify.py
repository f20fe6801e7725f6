"""A minimal inotify watch on one directory via ctypes (no third-party package).

Why the directory and not the file: writers often replace a file by rename
(``echo 1 > f.tmp && mv f.tmp f``), which an inode watch on the old file never
sees.  Watching the parent and filtering on the file name catches writes,
replacements, creation and deletion alike.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct

IN_MODIFY = 0x002
IN_CLOSE_WRITE = 0x008
IN_MOVED_FROM = 0x040
IN_MOVED_TO = 0x080
IN_CREATE = 0x100
IN_DELETE = 0x200
IN_NONBLOCK = os.O_NONBLOCK
IN_CLOEXEC = os.O_CLOEXEC
MASK = IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_HEADER = struct.Struct("iIII")

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class DirWatch:
    """A non-blocking inotify fd watching one directory; ``names()`` drains pending events."""

    def __init__(self, directory: str) -> None:
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err))
        wd = _libc.inotify_add_watch(fd, os.fsencode(directory), MASK)
        if wd < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise OSError(err, f"inotify on {directory}: {os.strerror(err)}")
        self.fd = fd

    def names(self) -> set[str]:
        """File names touched since the last call (empty when nothing is pending)."""
        out: set[str] = set()
        while True:
            try:
                buf = os.read(self.fd, 64 * 1024)
            except BlockingIOError:
                return out
            pos = 0
            while pos + _HEADER.size <= len(buf):
                _wd, _mask, _cookie, length = _HEADER.unpack_from(buf, pos)
                raw = buf[pos + _HEADER.size : pos + _HEADER.size + length]
                out.add(os.fsdecode(raw.rstrip(b"\0")))
                pos += _HEADER.size + length

    def close(self) -> None:
        os.close(self.fd)

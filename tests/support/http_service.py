"""``python -m services.http`` as a process for the lab tests, a plain HTTP client, an SSE reader.

The service runs in the root namespace (the lab's nats-server is there) on a
free port of 127.0.0.1; the client is ``http.client``, and the event-stream
reader is a thread reading the raw stream line by line, so what is tested is
the bytes on the wire, not a library's reading of them.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.lab.nats import free_port
from shared.lab.wait import wait_until

REPO = Path(__file__).resolve().parents[2]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HttpProc:
    """One http service for ``node`` on 127.0.0.1:<free port>; its log in ``workdir``."""

    def __init__(self, workdir: Path, node: str, conf: str, nats_url: str) -> None:
        self.node = node
        self.port = free_port()
        self.conf = workdir / f"http-{node}.conf"
        self.conf.write_text(conf)
        self.log_path = workdir / f"http-{node}.log"
        argv = [sys.executable, "-m", "services.http", "--config", str(self.conf), "--node", node]
        argv += ["--nats", nats_url, "--listen", "127.0.0.1", "--port", str(self.port)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(argv, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        wait_until(f"http service {node} to listen", self._listening, 15, explain=self.log)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _listening(self) -> bool:
        if self.proc.poll() is not None:
            raise AssertionError(f"http service exited {self.proc.returncode}:\n{self.log()}")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
            return True
        return False

    def get(self, path: str, method: str = "GET") -> Reply:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return Reply(resp.status, dict(resp.getheaders()), resp.read())
        finally:
            conn.close()

    def health(self, instance: str, backup: bool = False) -> int:
        return self.get(f"/health/{instance}" + ("/backup" if backup else "")).status

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class SseEvent:
    event: str
    data: str
    at: float
    """``time.monotonic()`` when its blank line arrived."""

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class SseReader:
    """Reads ``/events`` of a service in a thread; ``events`` grows as frames arrive."""

    port: int
    events: list[SseEvent] = field(default_factory=list)
    head: bytes = b""

    def __post_init__(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.sock.sendall(b"GET /events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        reader = self.sock.makefile("rb")
        with contextlib.suppress(OSError, ValueError):
            while (head := reader.readline()) not in (b"\r\n", b""):
                self.head += head
            event, data = "message", list[str]()
            for raw in reader:
                line = raw.decode().rstrip("\n")
                if line == "":
                    if data:
                        self.events.append(SseEvent(event, "\n".join(data), time.monotonic()))
                    event, data = "message", list[str]()
                elif line.startswith("event: "):
                    event = line[len("event: ") :]
                elif line.startswith("data: "):
                    data.append(line[len("data: ") :])

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)

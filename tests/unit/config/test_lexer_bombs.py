"""Include bombs: every one ends quickly, in little memory, with a diagnostic at the include line.

Before the read budget (``shared/config/lexer_files.py``): files that include
the next one twice took 22 s at 18 levels and never ended at 40;
``include /dev/zero`` read until MemoryError; a FIFO hung the reader.  Bounds
here are generous (the machine is shared): seconds, not the milliseconds
these take, and tens of MiB more resident memory at most (the process's
peak RSS, ``resource``; tracemalloc where the exact allocation matters), not
the gigabytes they took.  What keepalived 2.2.7 does with the same files is in
docs/config-grammar.md ("include").
"""

from __future__ import annotations

import os
import resource
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from shared.cli.main import main
from shared.config.context import Context
from shared.config.diagnostics import ConfigError, Diagnostic, Severity
from shared.config.lexer import read_tree
from shared.config.lexer_files import MAX_FILE_BYTES, MAX_FILE_READS, MAX_TOTAL_BYTES

pytestmark = pytest.mark.timeout(60)  # a regression hangs no worker: it fails

SECONDS = 15.0
MIB = 1 << 20


@dataclass
class Cost:
    seconds: float = 0.0
    peak: int = 0


@contextmanager
def measured() -> Iterator[Cost]:
    """Wall time, and how far the process's peak RSS rose (0 when it stayed under an earlier peak)."""
    cost = Cost()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.monotonic()
    try:
        yield cost
    finally:
        cost.seconds = time.monotonic() - start
        cost.peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024  # Linux: KiB


@contextmanager
def allocated() -> Iterator[Cost]:
    """Wall time and the peak of Python's own allocations (tracemalloc: exact, but slow on many objects)."""
    cost = Cost()
    tracemalloc.start()
    start = time.monotonic()
    try:
        yield cost
    finally:
        cost.seconds = time.monotonic() - start
        cost.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def lex(top: Path) -> tuple[list[Diagnostic], Cost]:
    ctx = Context()
    with measured() as cost:
        read_tree(top, ctx, opens_block=None)
    return list(ctx.diagnostics), cost


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def assert_cheap(cost: Cost, mib: int = 32) -> None:
    assert cost.seconds < SECONDS, f"took {cost.seconds:.1f} s"
    assert cost.peak < mib * MIB, f"peak {cost.peak / MIB:.1f} MiB"


def only(diagnostics: list[Diagnostic], severity: Severity) -> Diagnostic:
    found = [d for d in diagnostics if d.severity is severity]
    assert len(found) == 1, diagnostics
    return found[0]


def test_a_doubling_chain_of_40_levels_stops_at_the_read_budget(tmp_path: Path) -> None:
    """2^40 reads asked for; MAX_FILE_READS done, one error at the include line that hit the limit."""
    for level in range(40):
        write(tmp_path / f"f{level}.conf", f"include f{level + 1}.conf\ninclude f{level + 1}.conf\n")
    write(tmp_path / "f40.conf", "leaf\n")
    top = write(tmp_path / "keepalived.conf", "include f0.conf\n")
    diagnostics, cost = lex(top)
    assert_cheap(cost)
    error = only(diagnostics, Severity.ERROR)
    assert f"more than {MAX_FILE_READS} files" in error.message
    assert error.file.startswith(str(tmp_path)) and error.line in (1, 2)  # an include line of some f<N>
    print(f"\ndoubling chain: {cost.seconds:.2f} s, peak RSS +{cost.peak / MIB:.1f} MiB: {error}")


@pytest.mark.parametrize(
    "files",
    [
        {"keepalived.conf": "include keepalived.conf\n"},
        {"keepalived.conf": "include a.conf\n", "a.conf": "include b.conf\n", "b.conf": "include a.conf\n"},
        {
            "keepalived.conf": "include d/*.conf\n",
            "d/a.conf": "include *.conf\n",
            "d/b.conf": "include *.conf\n",
        },
    ],
    ids=["self", "mutual", "glob"],
)
def test_include_loops_are_reported_not_followed(tmp_path: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write(tmp_path / name, text)
    diagnostics, cost = lex(tmp_path / "keepalived.conf")
    assert_cheap(cost)
    assert diagnostics and all(d.severity is Severity.ERROR for d in diagnostics)
    assert all("include loop" in d.message and d.line == 1 for d in diagnostics)


@pytest.mark.parametrize(("variant", "severity"), [("include", Severity.NOTE), ("includer", Severity.ERROR)])
def test_dev_zero_is_never_read(tmp_path: Path, variant: str, severity: Severity) -> None:
    """keepalived skips it ("not a regular non-executable file"): plain include passes -t, includer fails."""
    top = write(tmp_path / "keepalived.conf", f"x\n{variant} /dev/zero\ny\n")
    diagnostics, cost = lex(top)
    assert_cheap(cost)
    found = only(diagnostics, severity)
    assert (found.file, found.line) == (str(top), 2)
    assert "'/dev/zero' is a character device, not a regular non-executable file" in found.message


def test_a_fifo_is_never_opened(tmp_path: Path) -> None:
    """Opening a FIFO waits for a writer: it is refused on stat, so nothing blocks."""
    os.mkfifo(tmp_path / "pipe.conf")
    top = write(tmp_path / "keepalived.conf", "includea pipe.conf\n")
    diagnostics, cost = lex(top)
    assert_cheap(cost)
    error = only(diagnostics, Severity.ERROR)
    assert error.line == 1 and "is a FIFO" in error.message


def test_a_socket_is_never_opened(tmp_path: Path) -> None:
    import socket

    server = socket.socket(socket.AF_UNIX)
    path = tmp_path / "s.conf"
    server.bind(str(path))
    try:
        diagnostics, cost = lex(write(tmp_path / "keepalived.conf", "include s.conf\n"))
    finally:
        server.close()
    assert_cheap(cost)
    assert "is a socket" in only(diagnostics, Severity.NOTE).message


def test_an_executable_file_is_skipped_as_keepalived_does(tmp_path: Path) -> None:
    """keepalived -t: "'x.conf' is not a regular non-executable file - skipping", exit 0."""
    script = write(tmp_path / "x.conf", "should_not_be_read\n")
    script.chmod(0o755)
    ctx = Context()
    nodes = read_tree(write(tmp_path / "keepalived.conf", "include x.conf\n"), ctx, opens_block=None)
    assert nodes == []
    assert "is executable" in only(list(ctx.diagnostics), Severity.NOTE).message


def test_a_huge_regular_file_is_refused_unread(tmp_path: Path) -> None:
    """A sparse 4 GiB file: refused on its size, not a byte read."""
    huge = tmp_path / "huge.conf"
    with huge.open("wb") as f:
        f.truncate(4 << 30)
    diagnostics, cost = lex(write(tmp_path / "keepalived.conf", "include huge.conf\n"))
    assert_cheap(cost, mib=8)
    error = only(diagnostics, Severity.ERROR)
    assert error.line == 1 and f"larger than {MAX_FILE_BYTES >> 20} MiB" in error.message


def test_the_total_byte_budget_counts_every_include(tmp_path: Path) -> None:
    """Files under the cap, included until they would pass the total: an error, nothing more read."""
    chunk = MAX_FILE_BYTES - 1024
    write(tmp_path / "big.conf", "#" * chunk + "\nbig\n")
    times = MAX_TOTAL_BYTES // chunk + 1
    top = write(tmp_path / "keepalived.conf", "include big.conf\n" * times + "after\n")
    ctx = Context()
    with allocated() as cost:
        nodes = read_tree(top, ctx, opens_block=None)
    assert cost.seconds < SECONDS * 2
    assert cost.peak < 4 * MAX_FILE_BYTES  # one file at a time (its bytes and its text), not all of them
    error = only(list(ctx.diagnostics), Severity.ERROR)
    assert error.line == times and f"exceed {MAX_TOTAL_BYTES >> 20} MiB" in error.message
    assert [n.keyword for n in nodes] == ["big"] * (times - 1) + ["after"]


def test_a_top_level_device_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        read_tree(Path("/dev/zero"), Context())
    [diagnostic] = err.value.diagnostics
    assert "is a character device" in diagnostic.message


@pytest.mark.parametrize(
    ("make", "status"),
    [
        (
            lambda d: write(d / "keepalived.conf", "include /dev/zero\n"),
            0,
        ),  # skipped: keepalived -t passes too
        (lambda d: write(d / "keepalived.conf", "includer /dev/zero\n"), 1),
        (lambda d: Path("/dev/zero"), 2),
    ],
    ids=["include", "includer", "top-level"],
)
def test_config_check_answers_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], make: Callable[[Path], Path], status: int
) -> None:
    assert main(["config", "check", "--no-host-checks", str(make(tmp_path))]) == status
    err = capsys.readouterr().err
    assert "Traceback" not in err and "/dev/zero" in err

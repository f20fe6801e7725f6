"""How the launcher starts a process: nothing of ours between fork and exec, the parent-death wrapper first.

Python code in a forked child (``preexec_fn``) can deadlock a service that
has threads, freezing its event loop inside ``Popen``; the launcher must hand
the child to CPython's C code and ``setpriv`` only.  The real effect (a
killed service takes its scripts with it) is shown by
``tests/scripts/test_parent_death.py``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.scripts import ScriptPolicy, ScriptRequest, runner
from shared.scripts.parent_death import pdeathsig_prefix


def test_the_wrapper_is_util_linux_setpriv_with_sigterm() -> None:
    prefix = pdeathsig_prefix()
    assert prefix[0].endswith("/setpriv") and prefix[1:] == ("--pdeathsig", "TERM", "--")


async def test_no_preexec_fn_and_the_script_after_the_wrapper(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    async def fake_exec(*argv: str, **kwargs: Any) -> asyncio.subprocess.Process:
        seen["argv"], seen["kwargs"] = argv, kwargs
        raise OSError("not started: the test only looks at the call")

    monkeypatch.setattr(runner.asyncio, "create_subprocess_exec", fake_exec)
    request = ScriptRequest(argv=("/usr/bin/echo", "a", "b"), policy=ScriptPolicy(), label="probe")
    with pytest.raises(OSError, match="not started"):
        await runner.run_script(request, timeout=1)
    assert "preexec_fn" not in seen["kwargs"]
    assert seen["kwargs"]["start_new_session"] is True
    assert list(seen["argv"]) == [*pdeathsig_prefix(), "/usr/bin/echo", "a", "b"]

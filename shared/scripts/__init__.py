"""Scripts, run exactly as keepalived runs them, through one launcher.

Every script lifeline runs (``vrrp_script`` trackers, ``MISC_CHECK``, notify
scripts, the notify FIFO scripts, ``startup_script`` and ``shutdown_script``) is a
``ScriptRequest`` handed to ``runner.run_script``.  Nothing else starts one,
so who runs a script, whether it may run and what it inherits cannot drift
apart between services (docs/security.md, "Scripts").

- ``policy``: who runs it, by name (keepalived's order);
- ``accounts``, ``files``: the user database and the file system, behind seams;
- ``resolve``: request → ``Launch`` (identity, executable) or ``Refusal``;
- ``environment``: the allow-listed environment;
- ``parent_death``: the exec wrapper that gives a script the parent-death signal;
- ``runner``: the asyncio part (start, deadline, group kill, reap).

Adding a kind of script is building its ``ScriptRequest`` (argv, its own
user and group if the keyword has them, ``script_policy(global_defs)``) and
deciding what an ``Outcome``, a ``ScriptRefused`` or an ``OSError`` means for it.
"""

from shared.scripts.accounts import Identity
from shared.scripts.policy import DEFAULT_SCRIPT_USER, ROOT_USER, Refusal, RefusalKind, ScriptPolicy, Source
from shared.scripts.resolve import Launch, ScriptRequest, resolve

__all__ = [
    "DEFAULT_SCRIPT_USER",
    "ROOT_USER",
    "Identity",
    "Launch",
    "Refusal",
    "RefusalKind",
    "ScriptPolicy",
    "ScriptRequest",
    "Source",
    "resolve",
]

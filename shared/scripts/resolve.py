"""A script request → who runs it, what is executed, and whether it may run at all (pure).

One function, ``resolve``, answers for every caller: ``lifeline config check``
(as root, the way keepalived runs), the load-time checks that disable a
script, and the runner right before each start (so a file made unsafe after
the configuration was read is refused too).

- **Who**: ``policy.choose`` (keepalived's order), then the user database:
  uid, the named group or the user's primary group, and the user's own
  supplementary groups (``os.getgrouplist``), never the service's.  keepalived
  itself sets only the primary group; the user's other groups are what a login
  as that user would have.
- **Can we**: a service that is not root cannot switch users; the script then
  runs as the service's own user and ``Launch.wanted`` says who it should have
  been (the caller logs it).
- **May it**: with ``enable_script_security``, a script that runs with uid 0
  or gid 0 (or is set-id root) from a path any non-root user can change is
  refused ("Unsafe permissions found for script '...' - disabling.").
- **What**: the script's real path (PATH search for a bare name, symlinks
  resolved), executed instead of argv[0] as keepalived does, so the checked
  file is the executed one.  None when it does not exist: the start then fails
  as usual and each caller reports it its own way.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from shared.scripts.accounts import Accounts, Identity
from shared.scripts.files import ScriptFiles, needs_protection, path_is_unsafe
from shared.scripts.policy import Choice, Refusal, RefusalKind, ScriptPolicy, Source, choose


@dataclass(frozen=True)
class ScriptRequest:
    """What a caller wants run: argv, the script's own user/group, and ``global_defs``' policy.

    ``label`` names the script in logs and diagnostics (``vrrp_script chk``,
    ``notify_master``); it is a plain value, so a reload compares requests with ``==``.
    """

    argv: tuple[str, ...]
    user: str | None = None
    group: str | None = None
    policy: ScriptPolicy = field(default_factory=ScriptPolicy)
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or (self.argv[0] if self.argv else "script")


@dataclass(frozen=True)
class Launch:
    """A request resolved: everything the runner needs to start it."""

    request: ScriptRequest
    identity: Identity
    """Who the script runs as."""
    source: Source
    executable: str | None
    switch: bool
    """True when the child changes user, group and supplementary groups before ``exec``."""
    wanted: Identity | None = None
    """Who keepalived would run it as, when this service (not root) cannot switch to them."""


def resolve(
    request: ScriptRequest, accounts: Accounts, files: ScriptFiles | None, own: Identity
) -> Launch | Refusal:
    """Resolve ``request`` for a service running as ``own``; ``files`` None skips the file checks."""
    choice = choose(request.user, request.group, request.policy, lambda name: accounts.user(name) is not None)
    if isinstance(choice, Refusal):
        return choice
    wanted = identify(choice, accounts)
    if isinstance(wanted, Refusal):
        return wanted
    runs_as, switch = _runs_as(wanted, own)
    executable = files.resolve_script(request.argv[0]) if files is not None and request.argv else None
    if request.policy.security and executable is not None and files is not None:
        unsafe = needs_protection(runs_as.uid, runs_as.gid, files.file_info(executable))
        if unsafe and path_is_unsafe(executable, files):
            reason = f"Unsafe permissions found for script '{executable}' - disabling."
            return Refusal(RefusalKind.UNSAFE, reason, executable)
    cannot = runs_as is own and not _same(wanted, own)
    return Launch(request, runs_as, choice.source, executable, switch, wanted if cannot else None)


def identify(choice: Choice, accounts: Accounts) -> Identity | Refusal:
    """Names → ids: the named group or the primary one, and the user's supplementary groups."""
    entry = accounts.user(choice.user)
    if entry is None:
        return Refusal(RefusalKind.USER_MISSING, f"Script user '{choice.user}' does not exist", choice.user)
    if choice.group is None:
        gid, group = entry.gid, accounts.group_name(entry.gid)
    else:
        found = accounts.group_id(choice.group)
        if found is None:
            global_user = choice.source is Source.SCRIPT_USER
            kind = RefusalKind.SCRIPT_USER_MISSING if global_user else RefusalKind.GROUP_MISSING
            return Refusal(kind, f"Script group '{choice.group}' does not exist", choice.group)
        gid, group = found, choice.group
    groups = accounts.supplementary(entry.name, gid)
    return Identity(entry.name, entry.uid, gid, group, groups, entry.home, entry.shell)


def _runs_as(wanted: Identity, own: Identity) -> tuple[Identity, bool]:
    """(who actually runs it, whether the child switches).

    Root running a script as root:root keeps its own groups (keepalived does the
    same); root switches to anyone else; a non-root service cannot switch at all.
    """
    if _same(wanted, own):
        return own, False
    if own.uid == 0:
        return wanted, True
    return own, False


def _same(a: Identity, b: Identity) -> bool:
    return (a.uid, a.gid) == (b.uid, b.gid)

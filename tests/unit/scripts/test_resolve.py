"""Who runs a script and whether it may run: keepalived 2.2.7's rules, on a described user database.

The cases are the ones verified against keepalived's own runs (each script
printing ``id``): docs/keepalived.md "Script users and script security".
"""

from __future__ import annotations

import stat

import pytest

from shared.scripts import Launch, Refusal, RefusalKind, ScriptPolicy, ScriptRequest, Source, resolve
from shared.scripts.accounts import ROOT, FakeAccounts, Identity, NamesOnlyAccounts, UserEntry
from shared.scripts.files import FakeScriptFiles, FileInfo

SCRIPT = "/etc/keepalived/check.sh"
SAFE = FileInfo(0, 0, stat.S_IFREG | 0o755)
WORLD_WRITABLE_DIR = FileInfo(0, 0, stat.S_IFDIR | 0o777)

USERS = FakeAccounts(
    [
        UserEntry("root", 0, 0, "/root", "/bin/bash"),
        UserEntry("nobody", 65534, 65534, "/nonexistent", "/usr/sbin/nologin"),
        UserEntry("postgres", 101, 104, "/var/lib/postgresql", "/bin/bash"),
        UserEntry("keepalived_script", 990, 990),
    ],
    {"root": 0, "daemon": 1, "ssl-cert": 103, "postgres": 104, "keepalived_script": 990, "nogroup": 65534},
    members={"ssl-cert": {"postgres"}},
)
NO_DEFAULT = FakeAccounts([u for u in USERS.users.values() if u.name != "keepalived_script"], USERS.groups)
FILES = FakeScriptFiles({SCRIPT: SAFE})


def launch(request: ScriptRequest, accounts: FakeAccounts = USERS, own: Identity = ROOT) -> Launch:
    result = resolve(request, accounts, FILES, own)
    assert isinstance(result, Launch), result
    return result


def refusal(
    request: ScriptRequest, accounts: FakeAccounts = USERS, files: FakeScriptFiles = FILES
) -> Refusal:
    result = resolve(request, accounts, files, ROOT)
    assert isinstance(result, Refusal), result
    return result


def req(user: str | None = None, group: str | None = None, **policy: object) -> ScriptRequest:
    return ScriptRequest((SCRIPT, "arg"), user, group, ScriptPolicy(**policy))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("request_", "accounts", "who", "source"),
    [
        (req("postgres", script_user="nobody"), USERS, ("postgres", 101, 104, "postgres"), Source.OWN),
        (req("postgres", "daemon"), USERS, ("postgres", 101, 1, "daemon"), Source.OWN),
        (req(script_user="nobody"), USERS, ("nobody", 65534, 65534, "nogroup"), Source.SCRIPT_USER),
        (
            req(script_user="nobody", script_group="daemon"),
            USERS,
            ("nobody", 65534, 1, "daemon"),
            Source.SCRIPT_USER,
        ),
        (req(), USERS, ("keepalived_script", 990, 990, "keepalived_script"), Source.DEFAULT),
        (req(), NO_DEFAULT, ("root", 0, 0, "root"), Source.ROOT_FALLBACK),
    ],
    ids=[
        "own user",
        "own user and group",
        "script_user",
        "script_user and group",
        "keepalived_script",
        "root",
    ],
)
def test_keepalived_order(
    request_: ScriptRequest, accounts: FakeAccounts, who: tuple[str, int, int, str], source: Source
) -> None:
    result = launch(request_, accounts)
    ident = result.identity
    assert (ident.user, ident.uid, ident.gid, ident.group) == who
    assert result.source is source
    assert result.executable == SCRIPT


def test_supplementary_groups_are_the_users_own_never_roots() -> None:
    """keepalived sets only the primary group; lifeline adds the user's own (a login's), never root's."""
    ident = launch(req("postgres")).identity
    assert ident.groups == (104, 103)
    assert launch(req("postgres", "daemon")).identity.groups == (1, 103)
    assert 0 not in launch(req(script_user="nobody")).identity.groups
    assert launch(req(script_user="nobody")).switch


def test_root_as_root_keeps_the_service_and_does_not_switch() -> None:
    result = launch(req("root"))
    assert result.identity is ROOT and not result.switch


@pytest.mark.parametrize(
    ("request_", "accounts", "kind", "reason"),
    [
        (req("ghost"), USERS, RefusalKind.USER_MISSING, "Script user 'ghost' does not exist"),
        (req("nobody", "ghosts"), USERS, RefusalKind.GROUP_MISSING, "Script group 'ghosts' does not exist"),
        (
            req(script_user="ghost"),
            USERS,
            RefusalKind.SCRIPT_USER_MISSING,
            "script_user 'ghost' does not exist",
        ),
        (
            req(script_user="nobody", script_group="x"),
            USERS,
            RefusalKind.SCRIPT_USER_MISSING,
            "Script group 'x'",
        ),
        (
            req(security=True),
            NO_DEFAULT,
            RefusalKind.NO_DEFAULT_USER,
            "Unable to set default user keepalived_script",
        ),
    ],
    ids=["own user missing", "own group missing", "script_user missing", "script_user group", "root refused"],
)
def test_refusals(request_: ScriptRequest, accounts: FakeAccounts, kind: RefusalKind, reason: str) -> None:
    result = refusal(request_, accounts)
    assert result.kind is kind and result.reason.startswith(reason)


UNSAFE_FILES = FakeScriptFiles({SCRIPT: SAFE, "/etc/keepalived": WORLD_WRITABLE_DIR})


@pytest.mark.parametrize(
    ("request_", "refused"),
    [
        (req(script_user="root", security=True), True),
        (req(script_user="nobody", script_group="root", security=True), True),  # gid 0 counts (verified)
        (req("root"), False),  # no enable_script_security: keepalived warns and runs it
        (req(script_user="nobody", security=True), False),  # a non-root user is not path-checked
        (req("nobody", security=True), False),
    ],
    ids=["root", "nobody:root", "no security", "script_user nobody", "own user nobody"],
)
def test_unsafe_path(request_: ScriptRequest, refused: bool) -> None:
    result = resolve(request_, USERS, UNSAFE_FILES, ROOT)
    assert isinstance(result, Refusal) is refused
    if refused:
        assert isinstance(result, Refusal) and result.kind is RefusalKind.UNSAFE
        assert result.reason == f"Unsafe permissions found for script '{SCRIPT}' - disabling."


def test_set_id_root_file_is_checked_even_for_another_user() -> None:
    files = FakeScriptFiles(
        {SCRIPT: FileInfo(0, 0, stat.S_IFREG | stat.S_ISUID | 0o755), "/etc/keepalived": WORLD_WRITABLE_DIR}
    )
    assert isinstance(resolve(req("nobody", security=True), USERS, files, ROOT), Refusal)


def test_missing_script_is_not_refused_but_has_no_executable() -> None:
    """keepalived -t is silent about a missing notify script; the start fails, as each caller reports."""
    result = resolve(req(script_user="root", security=True), USERS, FakeScriptFiles({}), ROOT)
    assert isinstance(result, Launch) and result.executable is None


def test_a_service_that_is_not_root_runs_scripts_as_itself_and_says_who_it_should_be() -> None:
    me = Identity("lifeline", 999, 999, "lifeline", (999,), "/var/lib/lifeline")
    result = launch(req(script_user="nobody"), own=me)
    assert result.identity is me and not result.switch
    assert result.wanted is not None and result.wanted.user == "nobody"
    same = launch(req(script_user="nobody"), own=Identity("nobody", 65534, 65534, "nogroup", ()))
    assert same.wanted is None


def test_names_only_accounts_for_a_config_meant_for_another_host() -> None:
    accounts = NamesOnlyAccounts(lambda name: name in {"root", "nobody"})
    result = resolve(req(script_user="nobody", security=True), accounts, None, ROOT)
    assert isinstance(result, Launch) and result.identity.label == "nobody" and not result.identity.privileged
    assert isinstance(resolve(req(script_user="ghost"), accounts, None, ROOT), Refusal)

"""A script's environment is an allow-list: the service's NATS credentials and settings never reach it."""

from __future__ import annotations

import pytest

from shared.scripts.accounts import Identity
from shared.scripts.environment import DEFAULT_PATH, script_env

NOBODY = Identity("nobody", 65534, 65534, "nogroup", (65534,), "/nonexistent", "/usr/sbin/nologin")

SERVICE = {
    "PATH": "/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "LC_TIME": "en_GB.UTF-8",
    "TZ": "Europe/Paris",
    "HOME": "/root",
    "USER": "root",
    "LIFELINE_NATS_URL": "nats://checker:s3cret@127.0.0.1:4222",
    "LIFELINE_NATS_PASSWORD": "s3cret",
    "LIFELINE_SETTINGS": "/etc/lifeline/lifeline.toml",
    "LIFELINE_NODE": "lb1",
    "LIFELINE_CONFIG": "/etc/keepalived/keepalived.conf",
    "NOTIFY_SOCKET": "/run/systemd/notify",
    "AWS_SECRET_ACCESS_KEY": "x",
}


def test_only_the_allow_list_and_the_script_users_identity() -> None:
    assert script_env(SERVICE, NOBODY) == {
        "PATH": "/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "LC_TIME": "en_GB.UTF-8",
        "TZ": "Europe/Paris",
        "HOME": "/nonexistent",
        "USER": "nobody",
        "LOGNAME": "nobody",
        "SHELL": "/usr/sbin/nologin",
    }


def test_a_standard_path_when_the_service_has_none() -> None:
    assert script_env({}, NOBODY)["PATH"] == DEFAULT_PATH


def test_event_variables_are_added_but_never_a_nats_setting() -> None:
    env = script_env(SERVICE, NOBODY, {"LIFELINE_NODE": "lb1", "LIFELINE_SEQ": "7"})
    assert (env["LIFELINE_NODE"], env["LIFELINE_SEQ"]) == ("lb1", "7")
    for name in ("LIFELINE_NATS_PASSWORD", "LIFELINE_NATS_URL", "LIFELINE_SETTINGS"):
        with pytest.raises(ValueError, match=name):
            script_env(SERVICE, NOBODY, {name: "x"})

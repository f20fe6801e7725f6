"""The redaction rules (``shared.redact``): URLs, parameters, headers, registered secrets, structs, logs."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config.model import Config
from shared.config.model_lvs import SslConfig
from shared.config.model_vrrp import Authentication, VrrpInstance
from shared.events import DeadLetter, InstanceState, TrackerKind, TrackerResult, VrrpState
from shared.redact import (
    REDACTED,
    RedactingFilter,
    Redactor,
    hide_secret_fields,
    is_secret_name,
    redact_headers,
    secrets_in,
)
from shared.runner import logs
from shared.settings import load_settings

R = "<redacted>"


@pytest.fixture
def redactor() -> Redactor:
    return Redactor()  # a private one: these tests register nothing in the process's


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "cannot reach NATS at nats://admin:hunter2@127.0.0.1:4222: refused",
            f"cannot reach NATS at nats://admin:{R}@127.0.0.1:4222: refused",
        ),
        ("nats://s3cr3t-token@nats.example:4222", f"nats://{R}@nats.example:4222"),
        ("tls://u:p@[fd00::1]:4222", f"tls://u:{R}@[fd00::1]:4222"),
        ("nats://u:p@ss@host:4222/x", f"nats://u:{R}@host:4222/x"),  # an unencoded @ in the password
        ("https://ops:pw@hooks.example/x?token=abc&x=1", f"https://ops:{R}@hooks.example/x?token={R}&x=1"),
        ("POST 'http://u:pw@h/' failed", f"POST 'http://u:{R}@h/' failed"),
        ("nats://127.0.0.1:4222 and mail to a@b.example", "nats://127.0.0.1:4222 and mail to a@b.example"),
        ("http://h/path@x", "http://h/path@x"),  # an @ in the path is no userinfo
    ],
)
def test_url_userinfo(redactor: Redactor, text: str, expected: str) -> None:
    assert redactor.text(text) == expected
    assert redactor.text(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "name",
    [
        *("token", "key", "secret", "password", "passwd", "pass", "auth", "signature", "sig"),
        *("access_token", "api_key", "apikey", "TOKEN", "Api_Key", "X-Amz-Signature", "client_secret"),
        "refresh-token",
    ],
)
def test_secret_parameters_are_redacted_case_insensitively(redactor: Redactor, name: str) -> None:
    url = f"https://h.example/hook?a=1&{name}=v4lue&b=2#frag"
    assert redactor.text(url) == f"https://h.example/hook?a=1&{name}={R}&b=2#frag"
    assert redactor.text(f"/health?{name}=v4lue") == f"/health?{name}={R}"


@pytest.mark.parametrize("name", ["monkey", "bypass", "auth_type", "keyword", "passage", "token_count"])
def test_other_parameters_are_kept(redactor: Redactor, name: str) -> None:
    url = f"https://h.example/x?{name}=v4lue"
    assert redactor.text(url) == url


def test_parameters_in_fragments_and_free_text(redactor: Redactor) -> None:
    assert redactor.text("https://h/cb#access_token=abc&state=1") == f"https://h/cb#access_token={R}&state=1"
    assert redactor.text("curl --password=hunter2 x") == f"curl --password={R} x"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Authorization: Bearer abc.def", f"Authorization: Bearer {R}"),
        ("proxy-authorization: Basic dXNlcjpwdw==", f"proxy-authorization: Basic {R}"),
        ("Cookie: session=abc; theme=dark", f"Cookie: {R}"),
        (
            "{'Authorization': 'Bearer abc', 'Accept': 'x'}",
            f"{{'Authorization': 'Bearer {R}', 'Accept': 'x'}}",
        ),
        ('{"X-Api-Key": "k-123"}', f'{{"X-Api-Key": "{R}"}}'),
        ("nats: 'Authorization Violation'", "nats: 'Authorization Violation'"),
    ],
)
def test_credential_headers_in_text(redactor: Redactor, text: str, expected: str) -> None:
    assert redactor.text(text) == expected
    assert redactor.text(expected) == expected


def test_header_mappings() -> None:
    headers = {"Authorization": "Bearer t0k", "X-Auth-Token": "t1", "Content-Type": "application/json"}
    assert redact_headers(headers) == {
        "Authorization": f"Bearer {R}",
        "X-Auth-Token": R,
        "Content-Type": "application/json",
    }
    assert is_secret_name("Proxy-Authorization") and not is_secret_name("Content-Type")


def test_registered_secrets_are_scrubbed_verbatim_and_percent_encoded(redactor: Redactor) -> None:
    redactor.register("p@ss w/rd!", b"bytes-secret", None, "abc")  # "abc": too short to scrub verbatim
    text = "login p@ss w/rd! url p%40ss%20w%2Frd%21 form p%40ss+w%2Frd%21 raw bytes-secret abc"
    assert redactor.text(text) == f"login {R} url {R} form {R} raw {R} abc"
    assert redactor.registered == 4  # the raw value and its two URL encodings, once each


def test_tree_redacts_strings_secret_keys_and_headers(redactor: Redactor) -> None:
    detail = {
        "sinks": {"hook": {"last_error": "POST http://u:pw@h/?token=t failed", "delivered": 3}},
        "password": "pw",
        "headers": {"Authorization": "Bearer zz", "Accept": "*/*"},
        "key": "n1.vrrp.state.VI_1",  # a KV key, not a secret
        "list": ["nats://u:pw@h:1", 7],
    }
    assert redactor.tree(detail) == {
        "sinks": {"hook": {"last_error": f"POST http://u:{R}@h/?token={R} failed", "delivered": 3}},
        "password": R,
        "headers": {"Authorization": f"Bearer {R}", "Accept": "*/*"},
        "key": "n1.vrrp.state.VI_1",
        "list": [f"nats://u:{R}@h:1", 7],
    }


def test_struct_redacts_text_fields_and_keeps_clean_ones_as_they_are(redactor: Redactor) -> None:
    clean = InstanceState(
        instance="VI_1",
        vrid=1,
        interface="eth0",
        state=VrrpState.MASTER,
        base_priority=1,
        effective_priority=1,
    )
    assert redactor.struct(clean) is clean  # nothing to redact: the same object, enums untouched
    track = TrackerResult(tracker="t", kind=TrackerKind.SCRIPT, ok=False, detail="GET http://u:pw@h/ 500")
    letter = DeadLetter(
        node="n1", ts=1, sink="hook", reason="POST http://h/?key=k failed", retryable=True, attempts=2,
        subject="s", stream="S", stream_seq=1, event_id="b:1", event=track,
    )  # fmt: skip
    shown = redactor.struct(letter)
    assert shown.reason == f"POST http://h/?key={R} failed"
    assert isinstance(shown.event, TrackerResult) and shown.event.detail == f"GET http://u:{R}@h/ 500"


def test_hide_secret_fields_of_the_config_model() -> None:
    config = Config()
    config.vrrp.instances["VI_1"] = VrrpInstance(
        name="VI_1", authentication=Authentication(type="PASS", password=b"s3cr3tpw")
    )
    config.vrrp.instances["VI_2"] = VrrpInstance(name="VI_2", authentication=Authentication(type="PASS"))
    config.lvs.ssl = SslConfig(password="keypass", key="/etc/ssl/k.pem")
    shown = hide_secret_fields(config)
    auth = shown.vrrp.instances["VI_1"].authentication
    assert auth is not None and auth.password == REDACTED and auth.type == "PASS"
    unset = shown.vrrp.instances["VI_2"].authentication
    assert unset is not None and unset.password == b""  # nothing configured: nothing to hide
    assert shown.lvs.ssl is not None and shown.lvs.ssl.password == REDACTED
    assert shown.lvs.ssl.key == "/etc/ssl/k.pem"  # a path, not a secret
    original = config.vrrp.instances["VI_1"].authentication
    assert original is not None and original.password == b"s3cr3tpw"  # the model itself is untouched


def test_secrets_in_settings(tmp_path: Path) -> None:
    toml = tmp_path / "lifeline.toml"
    toml.write_text(
        'nats_url = "nats://svc:url-pw-1@127.0.0.1:4222"\n'
        'nats_password = "nats-pw-2"\n'
        "[smtp]\n"
        'password = "smtp-pw-3"\n'
        "[nats_server]\n"
        'leaf_password = "leaf-pw-4"\n'
        'cluster_routes = ["nats-route://r:route-pw-5@10.0.0.2:6222"]\n'
        "[[sinks]]\n"
        'name = "hook"\n'
        'kind = "webhook"\n'
        "[sinks.options]\n"
        'url = "https://u:hook-pw-6@h.example/x?token=hook-tok-7&x=1"\n'
        'headers = {Authorization = "Bearer hook-bearer-8", Accept = "json"}\n'
        'api_token = "plugin-tok-9"\n'
    )
    found = secrets_in(load_settings(toml, env={}))
    words = ["url-pw", "nats-pw", "smtp-pw", "leaf-pw", "route-pw", "hook-pw", "hook-tok", "hook-bearer"]
    assert found == {f"{w}-{n}" for n, w in enumerate([*words, "plugin-tok"], start=1)}


@pytest.fixture
def root_logging() -> Iterator[io.StringIO]:
    """``logs.setup`` as a service runs it, writing into a buffer; the root logger restored after."""
    root = logging.getLogger()
    saved, level = list(root.handlers), root.level
    stream = io.StringIO()
    try:
        yield stream
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in saved:
            root.addHandler(handler)
        root.setLevel(level)


def test_a_log_record_with_the_nats_password_is_scrubbed(
    tmp_path: Path, root_logging: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.redact import register_secrets_of

    toml = tmp_path / "lifeline.toml"
    toml.write_text('nats_user = "vrrp"\nnats_password = "Nats-Pw-0f3a9c"\n')
    monkeypatch.setattr("sys.stderr", root_logging)
    logs.setup("test")  # what every service's runner installs
    register_secrets_of(load_settings(toml, env={}))  # what the runner does with its settings
    log = logging.getLogger("lifeline.test.child")
    log.warning("connect with %s failed", "Nats-Pw-0f3a9c")
    log.warning("url nats://vrrp:Nats-Pw-0f3a9c@h:4222 and https://h/x?token=abc")
    try:
        raise ValueError("bad password Nats-Pw-0f3a9c")
    except ValueError:
        log.exception("crashed")
    out = root_logging.getvalue()
    assert "Nats-Pw-0f3a9c" not in out and "token=abc" not in out
    assert f"connect with {R} failed" in out
    assert f"url nats://vrrp:{R}@h:4222 and https://h/x?token={R}" in out
    assert f"ValueError: bad password {R}" in out  # the traceback too


def test_the_filter_copes_with_arguments_that_do_not_fit(redactor: Redactor) -> None:
    redactor.register("Secret-Arg-77")
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "%d items", ("Secret-Arg-77",), None)
    assert RedactingFilter(redactor).filter(record)
    assert "Secret-Arg-77" not in record.getMessage() and R in record.getMessage()

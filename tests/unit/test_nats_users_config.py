"""Generated nats-server configs with every optional part, checked by the real ``nats-server -t``.

Why the real binary: the config language has quirks (a leaf remote takes no
``user``/``password`` field, only credentials in its URL; TLS files are loaded
at parse time) that only nats-server itself judges.  ``-t`` parses, loads the
certificates and exits, so these run fast and without ports.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from shared.events import encode_token
from shared.lab.nats import nats_server_binary
from shared.nats_users import generate_passwords, main, render_config, render_hub_config, with_credentials
from shared.settings import NatsServerSettings, load_settings

PASSWORDS = generate_passwords()


def check(conf: Path) -> str:
    """``nats-server -t -c conf``: the config is valid, or the test fails with nats-server's words."""
    done = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(conf)], check=False, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return conf.read_text()


def write(tmp_path: Path, text: str, name: str = "nats-server.conf") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def make_certs(tmp_path: Path) -> dict[str, Path]:
    """A CA, a server certificate for 127.0.0.1/localhost and a client certificate (openssl)."""

    def ssl(*argv: str) -> None:
        subprocess.run(["openssl", *argv], check=True, capture_output=True, cwd=tmp_path, timeout=60)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem",
        "-days", "2", "-subj", "/CN=lifeline-test-ca")  # fmt: skip
    (tmp_path / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for name in ("server", "client"):
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
            "-subj", f"/CN={name}")  # fmt: skip
        ssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
            "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    return {n: tmp_path / f"{n}.pem" for n in ("ca", "server", "server-key", "client", "client-key")}


def test_plain_config_is_valid_and_has_no_optional_part(tmp_path: Path) -> None:
    text = check(write(tmp_path, render_config("lb1", PASSWORDS, store_dir=str(tmp_path / "js"))))
    for block in ("tls {", "leafnodes {", "cluster {", "domain:"):
        assert block not in text


def test_tls_with_client_verification(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    opts = NatsServerSettings(
        tls_cert=str(certs["server"]),
        tls_key=str(certs["server-key"]),
        tls_ca=str(certs["ca"]),
        tls_verify=True,
    )
    text = check(write(tmp_path, render_config("lb1", PASSWORDS, store_dir=str(tmp_path), server=opts)))
    assert "verify: true" in text and f'cert_file: "{certs["server"]}"' in text


def test_a_missing_certificate_is_refused_by_nats_server(tmp_path: Path) -> None:
    """The check above can fail: nats-server loads the files named in the tls block."""
    opts = NatsServerSettings(tls_cert=str(tmp_path / "none.pem"), tls_key=str(tmp_path / "none-key.pem"))
    conf = write(tmp_path, render_config("lb1", PASSWORDS, store_dir=str(tmp_path), server=opts))
    done = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(conf)], check=False, capture_output=True, timeout=30
    )
    assert done.returncode != 0


def test_leaf_remote_with_password_gets_a_domain_per_node(tmp_path: Path) -> None:
    opts = NatsServerSettings(
        leaf_url="nats-leaf://hub.example.net:7422", leaf_user="leaf", leaf_password="p/w@"
    )
    text = check(write(tmp_path, render_config("lb.1", PASSWORDS, store_dir=str(tmp_path), server=opts)))
    assert '"nats-leaf://leaf:p%2Fw%40@hub.example.net:7422"' in text
    assert 'account: "LIFELINE"' in text
    assert f'domain: "{encode_token("lb.1")}"' in text  # the node name, as a subject token


def test_leaf_remote_with_creds_file_tls_ca_and_explicit_domain(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    creds = tmp_path / "hub.creds"
    creds.write_text("")  # nats-server -t reads the path only when it connects
    opts = NatsServerSettings(
        leaf_url="tls://hub.example.net:7422", leaf_creds=str(creds), leaf_ca=str(certs["ca"]), domain="site1"
    )
    text = check(write(tmp_path, render_config("lb1", PASSWORDS, store_dir=str(tmp_path), server=opts)))
    assert 'domain: "site1"' in text and f'credentials: "{creds}"' in text and "ca_file" in text


def test_cluster_routes_with_authentication(tmp_path: Path) -> None:
    opts = NatsServerSettings(
        cluster_name="lifeline",
        cluster_listen="127.0.0.1:6222",
        cluster_routes=["nats-route://10.0.0.1:6222", "nats-route://10.0.0.2:6222"],
        cluster_user="route",
        cluster_password="secret",
    )
    text = check(write(tmp_path, render_config("lb1", PASSWORDS, store_dir=str(tmp_path), server=opts)))
    assert '"nats-route://route:secret@10.0.0.2:6222"' in text
    assert 'authorization { user: "route", password: "secret" }' in text


def test_every_option_at_once_in_the_env_passwords_form(tmp_path: Path) -> None:
    """What compose renders: passwords as ``$VARS`` nats-server resolves from its environment."""
    certs = make_certs(tmp_path)
    opts = NatsServerSettings(
        tls_cert=str(certs["server"]),
        tls_key=str(certs["server-key"]),
        leaf_url="nats-leaf://hub:7422",
        leaf_user="leaf",
        leaf_password="x",
        cluster_name="c",
        cluster_routes=["nats-route://10.0.0.1:6222"],
    )
    conf = write(tmp_path, render_config("lb1", None, store_dir=str(tmp_path), server=opts))
    env = {f"LIFELINE_NATS_PASSWORD_{u.upper()}": pw for u, pw in PASSWORDS.items()}
    done = subprocess.run(
        [nats_server_binary(), "-t", "-c", str(conf)],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr


def test_hub_config(tmp_path: Path) -> None:
    text = check(write(tmp_path, render_hub_config("leafpw", "adminpw", store_dir=str(tmp_path))))
    assert 'user: "leaf", password: "leafpw", account: "LIFELINE"' in text
    assert 'domain: "hub"' in text


@pytest.mark.parametrize(
    ("opts", "error"),
    [
        (NatsServerSettings(tls_cert="c.pem"), "tls_key"),
        (NatsServerSettings(tls_cert="c.pem", tls_key="k.pem", tls_verify=True), "tls_ca"),
        (NatsServerSettings(cluster_routes=["nats-route://a:6222"]), "cluster_name"),
    ],
)
def test_incomplete_options_are_refused_before_nats_server_sees_them(
    opts: NatsServerSettings, error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        render_config("lb1", PASSWORDS, server=opts)


def test_with_credentials_replaces_what_the_url_had() -> None:
    assert with_credentials("nats-leaf://old:x@hub:7422", "leaf", "a b") == "nats-leaf://leaf:a%20b@hub:7422"
    assert with_credentials("nats-leaf://hub:7422", None, "ignored") == "nats-leaf://hub:7422"


def test_settings_from_toml_and_environment(tmp_path: Path) -> None:
    toml = write(
        tmp_path,
        '[nats_server]\nleaf_url = "nats-leaf://hub:7422"\ncluster_routes = ["nats-route://a:6222"]\n',
        "lifeline.toml",
    )
    env = {
        "LIFELINE_NATS_LEAF_USER": "leaf",
        "LIFELINE_NATS_CLUSTER_ROUTES": "nats-route://b:6222, nats-route://c:6222",
    }
    server = load_settings(toml, env=env).nats_server
    assert server.leaf_url == "nats-leaf://hub:7422" and server.leaf_user == "leaf"
    assert server.cluster_routes == ["nats-route://b:6222", "nats-route://c:6222"]  # the environment wins


def test_command_line_renders_from_settings_and_writes_private_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIFELINE_SETTINGS", str(tmp_path / "absent.toml"))
    monkeypatch.setenv("LIFELINE_NATS_LEAF_URL", "nats-leaf://hub:7422")
    monkeypatch.setenv("LIFELINE_NATS_LEAF_USER", "leaf")
    monkeypatch.setenv("LIFELINE_NATS_LEAF_PASSWORD", "pw")
    out, pw = tmp_path / "n.conf", tmp_path / "pw.env"
    args = ["--node", "lb2", "--store-dir", str(tmp_path / "js"), "--new-passwords", str(pw), "-o", str(out)]
    assert main(args) == 0
    assert out.stat().st_mode & 0o077 == 0 and pw.stat().st_mode & 0o077 == 0
    text = check(out)
    assert '"nats-leaf://leaf:pw@hub:7422"' in text and 'domain: "lb2"' in text
    hub_pw = tmp_path / "hub.env"
    assert (
        main(["--hub", "--store-dir", str(tmp_path / "h"), "--new-passwords", str(hub_pw), "-o", str(out)])
        == 0
    )
    check(out)
    assert "LIFELINE_NATS_LEAF_PASSWORD=" in hub_pw.read_text()

"""Generated nats-server configs with every optional part, checked by the real ``nats-server -t``.

Why the real binary: the config language has quirks (a leaf remote takes no
``user``/``password`` field, only credentials in its URL; TLS files are loaded
at parse time) that only nats-server itself judges.  ``-t`` parses, loads the
certificates and exits, so these run fast and without ports.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from shared.events import encode_token
from shared.lab.nats import nats_server_binary
from shared.nats_hub import FLEET_ADMIN, READER, FleetNode, HubTls, parse_nodes, render_hub_config
from shared.nats_passwords import generate_password
from shared.nats_users import generate_passwords, main, render_config, with_credentials
from shared.settings import NatsServerSettings, load_settings

PASSWORDS = generate_passwords()
SECRET = generate_password()
"""A leaf or route password: long enough, not an example."""

ROUTES = {
    "cluster_name": "lifeline",
    "cluster_listen": "127.0.0.1:6222",
    "cluster_routes": ["nats-route://10.0.0.1:6222"],
    "cluster_user": "route",
    "cluster_password": SECRET,
}
"""Every setting cluster routes require."""


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
    """The hub's user for the node is ``leaf-<node>`` unless ``leaf_user`` says otherwise."""
    opts = NatsServerSettings(leaf_url="nats-leaf://hub.example.net:7422", leaf_password=SECRET + "/w@")
    text = check(write(tmp_path, render_config("lb.1", PASSWORDS, store_dir=str(tmp_path), server=opts)))
    token = encode_token("lb.1")
    assert f'"nats-leaf://leaf-lb%3D2E1:{SECRET}%2Fw%40@hub.example.net:7422"' in text  # percent-encoded
    assert 'account: "LIFELINE"' in text
    assert f'domain: "{token}"' in text  # the node name, as a subject token
    assert f'"$JS.{token}.API.>"' in text  # the admin's own domain, nobody else's
    opts = NatsServerSettings(leaf_url="nats-leaf://hub:7422", leaf_user="custom", leaf_password=SECRET)
    assert f'"nats-leaf://custom:{SECRET}@hub:7422"' in render_config("lb1", PASSWORDS, server=opts)


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
    opts = NatsServerSettings(**ROUTES | {"cluster_routes": ["nats-route://a:6222", "nats-route://b:6222"]})
    text = check(write(tmp_path, render_config("lb1", PASSWORDS, store_dir=str(tmp_path), server=opts)))
    assert f'"nats-route://route:{SECRET}@b:6222"' in text
    assert f'authorization {{ user: "route", password: "{SECRET}" }}' in text
    assert 'listen: "127.0.0.1:6222"' in text


def test_route_and_leaf_tls_with_client_certificates(tmp_path: Path) -> None:
    """Mutual TLS on routes (verify), a client certificate for a hub that verifies leaf nodes."""
    certs = make_certs(tmp_path)
    opts = NatsServerSettings(
        **ROUTES,
        cluster_tls_cert=str(certs["server"]),
        cluster_tls_key=str(certs["server-key"]),
        cluster_tls_ca=str(certs["ca"]),
        leaf_url="tls://127.0.0.1:7422",
        leaf_password=SECRET,
        leaf_ca=str(certs["ca"]),
        leaf_cert=str(certs["client"]),
        leaf_key=str(certs["client-key"]),
    )
    text = check(write(tmp_path, render_config("lb1", PASSWORDS, store_dir=str(tmp_path), server=opts)))
    assert f'tls {{ cert_file: "{certs["server"]}"' in text and "verify: true }" in text
    assert f'cert_file: "{certs["client"]}"' in text


def test_every_option_at_once_in_the_env_passwords_form(tmp_path: Path) -> None:
    """What compose renders: passwords as ``$VARS`` nats-server resolves from its environment."""
    certs = make_certs(tmp_path)
    opts = NatsServerSettings(
        tls_cert=str(certs["server"]),
        tls_key=str(certs["server-key"]),
        leaf_url="nats-leaf://hub:7422",
        leaf_password=SECRET,
        **ROUTES,
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


def hub_passwords(nodes: list[FleetNode]) -> dict[str, str]:
    return {FLEET_ADMIN: generate_password(), READER: generate_password()} | {
        n.user: generate_password() for n in nodes
    }


def test_hub_config_has_a_leaf_user_per_node(tmp_path: Path) -> None:
    nodes = parse_nodes(["lb1,lb.2", "lb3=site3"])
    assert [(n.name, n.domain, n.user) for n in nodes] == [
        ("lb1", "lb1", "leaf-lb1"),
        ("lb.2", "lb=2E2", "leaf-lb=2E2"),
        ("lb3", "site3", "leaf-lb3"),
    ]
    pw = hub_passwords(nodes)
    text = check(write(tmp_path, render_hub_config(pw, nodes, store_dir=str(tmp_path))))
    assert 'domain: "hub"' in text
    assert text.count('allowed_connection_types: ["LEAFNODE"]') == 3
    assert '"$JS.site3.API.>"' in text and '"lifeline.lb=2E2.ctl.>"' in text
    assert "authorization {" not in text  # leaf connections log in as the account's users


def test_hub_tls_for_clients_and_leaf_nodes(tmp_path: Path) -> None:
    certs = make_certs(tmp_path)
    nodes = parse_nodes(["lb1"])
    tls = HubTls(str(certs["server"]), str(certs["server-key"]), str(certs["ca"]), verify=True)
    text = check(write(tmp_path, render_hub_config(hub_passwords(nodes), nodes, store_dir="/x", tls=tls)))
    assert text.count("verify: true") == 2


@pytest.mark.parametrize(
    ("nodes", "error"),
    [
        ([], "--nodes"),
        (["a", "a"], "same leaf user"),
        (["a-b", "a_b"], "same password variable"),
        (["a=x", "b=x"], "same domain"),
        (["hub"], "hub's own"),
    ],
)
def test_a_fleet_with_colliding_names_is_refused(nodes: list[str], error: str) -> None:
    fleet = parse_nodes(nodes)
    with pytest.raises(ValueError, match=error):
        render_hub_config(hub_passwords(fleet), fleet)


def test_hub_refuses_a_missing_or_weak_password() -> None:
    nodes = parse_nodes(["lb1"])
    pw = hub_passwords(nodes)
    with pytest.raises(ValueError, match="LIFELINE_NATS_LEAF_PASSWORD_LB1 is empty"):
        render_hub_config(pw | {"leaf-lb1": ""}, nodes)
    with pytest.raises(ValueError, match="LIFELINE_NATS_PASSWORD_FLEET_ADMIN is the example"):
        render_hub_config(pw | {FLEET_ADMIN: "change-me-fleet-admin"}, nodes)


@pytest.mark.parametrize(
    ("opts", "error"),
    [
        (NatsServerSettings(tls_cert="c.pem"), "tls_key"),
        (NatsServerSettings(tls_cert="c.pem", tls_key="k.pem", tls_verify=True), "tls_ca"),
        (NatsServerSettings(cluster_routes=["nats-route://a:6222"]), "cluster_name"),
        (NatsServerSettings(**ROUTES | {"cluster_user": None}), "cluster_user and cluster_password"),
        (NatsServerSettings(**ROUTES | {"cluster_password": None}), "cluster_user and cluster_password"),
        (NatsServerSettings(**ROUTES | {"cluster_routes": [], "cluster_user": None}), "cluster_user"),
        (NatsServerSettings(**ROUTES | {"cluster_listen": None}), "cluster_listen"),
        (NatsServerSettings(**ROUTES | {"cluster_password": "short"}), "CLUSTER_PASSWORD.* too short"),
        (NatsServerSettings(**ROUTES | {"cluster_tls_cert": "c.pem"}), "cluster_tls_key"),
        (NatsServerSettings(leaf_url="nats-leaf://hub:7422"), "leaf_password"),
        (NatsServerSettings(leaf_url="nats-leaf://hub:7422"), "password for user 'leaf-lb1'"),
        (NatsServerSettings(leaf_url="nats-leaf://hub:7422", leaf_user="mine"), "password for user 'mine'"),
        (NatsServerSettings(leaf_url="nats-leaf://h:7422", leaf_password="change-me"), "PASSWORD.* example"),
        (NatsServerSettings(leaf_url="nats-leaf://h:7422", leaf_password=SECRET, leaf_cert="c"), "leaf_key"),
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
    monkeypatch.setenv("LIFELINE_NATS_LEAF_PASSWORD", SECRET)
    out, pw = tmp_path / "n.conf", tmp_path / "pw.env"
    args = ["--node", "lb2", "--store-dir", str(tmp_path / "js"), "--new-passwords", str(pw), "-o", str(out)]
    assert main(args) == 0
    assert out.stat().st_mode & 0o077 == 0 and pw.stat().st_mode & 0o077 == 0
    text = check(out)
    assert f'"nats-leaf://leaf-lb2:{SECRET}@hub:7422"' in text and 'domain: "lb2"' in text
    hub_pw = tmp_path / "hub.env"
    hub = ["--hub", "--host", "127.0.0.1", "--store-dir", str(tmp_path / "h"), "--new-passwords", str(hub_pw)]
    assert main([*hub, "--nodes", "lb1,lb2", "-o", str(out)]) == 0
    check(out)
    first = hub_pw.read_text()
    assert "LIFELINE_NATS_LEAF_PASSWORD_LB2=" in first and "LIFELINE_NATS_PASSWORD_FLEET_ADMIN=" in first
    assert hub_pw.stat().st_mode & 0o077 == 0
    # a node added later: the others' passwords are kept, the new one added
    assert main([*hub, "--nodes", "lb1,lb2,lb3", "-o", str(out)]) == 0
    again = hub_pw.read_text()
    assert again.startswith(first) and "LIFELINE_NATS_LEAF_PASSWORD_LB3=" in again
    assert '"leaf-lb3"' in check(out)


def test_command_line_refuses_bad_env_passwords_and_open_routes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit status 1 and one line naming the variable or setting; nothing written."""
    monkeypatch.setenv("LIFELINE_SETTINGS", str(tmp_path / "absent.toml"))
    for user, pw in PASSWORDS.items():
        monkeypatch.setenv(f"LIFELINE_NATS_PASSWORD_{user.upper()}", pw)
    out = tmp_path / "n.conf"
    assert main(["--node", "lb1", "-o", str(out)]) == 0
    out.unlink()
    for value, why in (("", "is empty"), ("change-me-vrrp", "example"), ("-" + SECRET, "starts with '-'")):
        monkeypatch.setenv("LIFELINE_NATS_PASSWORD_VRRP", value)
        assert main(["--node", "lb1", "-o", str(out)]) == 1
        err = capsys.readouterr().err
        assert err.startswith("nats_users: LIFELINE_NATS_PASSWORD_VRRP") and why in err, err
        assert not out.exists()
    monkeypatch.setenv("LIFELINE_NATS_PASSWORD_VRRP", PASSWORDS["vrrp"])
    monkeypatch.setenv("LIFELINE_NATS_CLUSTER_NAME", "lifeline")
    monkeypatch.setenv("LIFELINE_NATS_CLUSTER_LISTEN", "10.0.0.1:6222")
    monkeypatch.setenv("LIFELINE_NATS_CLUSTER_ROUTES", "nats-route://10.0.0.2:6222")
    assert main(["--node", "lb1", "-o", str(out)]) == 1
    assert "cluster_user and cluster_password" in capsys.readouterr().err and not out.exists()
    monkeypatch.setenv("LIFELINE_NATS_PASSWORD_FLEET_ADMIN", "change-me-fleet")
    assert main(["--hub", "--nodes", "lb1", "-o", str(out)]) == 1
    err = capsys.readouterr().err
    assert "LIFELINE_NATS_PASSWORD_FLEET_ADMIN is the example" in err
    assert "warning: the hub listens on 0.0.0.0 without TLS" in err  # every interface, passwords in clear


def test_output_is_never_written_through_a_planted_symlink(tmp_path: Path) -> None:
    target = tmp_path / "victim"
    target.write_text("untouched")
    out = tmp_path / "n.conf"
    out.symlink_to(target)
    args = ["--node", "lb1", "--new-passwords", str(tmp_path / "pw.env"), "-o", str(out)]
    assert main(args) == 1
    assert target.read_text() == "untouched" and out.is_symlink()
    assert not (tmp_path / "pw.env").exists()  # refused before anything was generated
    fifo = tmp_path / "fifo"  # what -o /dev/null is: a device would be replaced by a rename
    os.mkfifo(fifo)
    assert main([*args[:-1], str(fifo)]) == 1
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)

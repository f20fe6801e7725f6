"""``lifeline config dump`` hides every secret the model holds unless ``--show-secrets``."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from shared.cli.main import main

R = "<redacted>"

CONF = """\
global_defs {
  router_id lab1
}
SSL {
  password Ssl-Key-Pass-1
  key /etc/ssl/private/checker.pem
}
vrrp_instance VI_1 {
  state MASTER
  interface lo
  virtual_router_id 51
  priority 100
  authentication {
    auth_type PASS
    auth_pass Vr-Pw-22
  }
  virtual_ipaddress {
    10.0.0.1
  }
  notify "/usr/bin/curl -s https://ops:Notify-Pw-3@hooks.example/x?token=Notify-Tok-4"
}
virtual_server 10.0.0.1 80 {
  protocol TCP
  real_server 10.0.0.2 80 {
    HTTP_GET {
      url {
        path /health?api_key=Check-Key-5
        status_code 200
      }
    }
  }
}
"""

SECRETS = ("Ssl-Key-Pass-1", "Vr-Pw-22", "Notify-Pw-3", "Notify-Tok-4", "Check-Key-5")


def dump(tmp_path: Path, capsys: pytest.CaptureFixture[str], *flags: str) -> tuple[str, dict[str, object]]:
    conf = tmp_path / "keepalived.conf"
    conf.write_text(CONF)
    assert main(["config", "dump", "--no-host-checks", *flags, str(conf)]) == 0
    out = capsys.readouterr().out
    return out, json.loads(out)


def test_dump_shows_no_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, model = dump(tmp_path, capsys)
    for secret in (*SECRETS, base64.b64encode(b"Vr-Pw-22").decode()):
        assert secret not in out
    vrrp = model["vrrp"]
    assert isinstance(vrrp, dict)
    instance = vrrp["instances"]["VI_1"]
    assert instance["authentication"] == {"type": "PASS", "password": R}
    assert instance["notify"]["command"] == f"/usr/bin/curl -s https://ops:{R}@hooks.example/x?token={R}"
    lvs = model["lvs"]
    assert isinstance(lvs, dict)
    assert lvs["ssl"]["password"] == R and lvs["ssl"]["key"] == "/etc/ssl/private/checker.pem"
    [url] = lvs["virtual_servers"][0]["real_servers"][0]["checkers"][0]["urls"]
    assert url["path"] == f"/health?api_key={R}"


def test_show_secrets_prints_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, model = dump(tmp_path, capsys, "--show-secrets")
    assert R not in out
    vrrp = model["vrrp"]
    assert isinstance(vrrp, dict)
    password = vrrp["instances"]["VI_1"]["authentication"]["password"]
    assert base64.b64decode(password) == b"Vr-Pw-22"  # bytes, as JSON carries them
    for secret in SECRETS[:1] + SECRETS[2:]:
        assert secret in out

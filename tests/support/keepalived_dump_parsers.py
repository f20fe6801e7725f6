"""Readers of keepalived's dump files that follow mehdy/keepalived-exporter's parsing rules.

Why here: the unit tests (lifeline's formatter) and the lab test (keepalived
2.2.7 beside lifeline) must judge both files by the same rules a real
exporter applies, so a dump that reads right here reads right there.  The
rules, restated (the exporter is Go; this is an independent reading of its
behaviour, not its code):

* ``.stats``: ``VRRP Instance: NAME`` starts an instance; a two-space line
  ending in ``:`` opens a section (Advertisements, Packet Errors,
  Authentication Errors, Priority Zero); four-space ``Key: N`` lines are
  that section's counters; two-space ``Became master: N`` / ``Released
  master: N`` stand alone.  A value that is not an integer fails the scrape.
* ``.data``: `` VRRP Instance = NAME`` starts an instance; three-space
  ``Key = value`` (or ``Key: value``) lines are its fields, five-space lines
  the items of the list opened before (``Virtual IP (N):``, ``Virtual IP
  Excluded :``); any line indented less than three spaces ends the instance.
  State names must be INIT, BACKUP, MASTER or FAULT.  `` VRRP Script =
  NAME`` starts a script, whose ``Status`` (GOOD/BAD) and ``State``
  (idle, running, ...) are read; it does not end an instance, so a script
  right after an instance block (no section line between) has its ``State =
  idle`` read as the instance's state, which fails the scrape.
* ``.json``: an array of ``{"data": {...}, "stats": {...}}``.
"""

from __future__ import annotations

import json
from typing import Any

STATES = ("INIT", "BACKUP", "MASTER", "FAULT")

_STATS_KEYS = {
    ("Advertisements", "Received"): "advert_rcvd",
    ("Advertisements", "Sent"): "advert_sent",
    ("", "Became master"): "become_master",
    ("", "Released master"): "release_master",
    ("Packet Errors", "Length"): "packet_len_err",
    ("Packet Errors", "TTL"): "ip_ttl_err",
    ("Packet Errors", "Invalid Type"): "invalid_type_rcvd",
    ("Packet Errors", "Advertisement Interval"): "advert_interval_err",
    ("Packet Errors", "Address List"): "addr_list_err",
    ("Authentication Errors", "Invalid Type"): "invalid_authtype",
    ("Authentication Errors", "Type Mismatch"): "authtype_mismatch",
    ("Authentication Errors", "Failure"): "auth_failure",
    ("Priority Zero", "Received"): "pri_zero_rcvd",
    ("Priority Zero", "Sent"): "pri_zero_sent",
}


def parse_stats(text: str) -> dict[str, dict[str, int]]:
    """``.stats`` → {instance: {json stats key: value}}; raises ValueError where the exporter fails."""
    out: dict[str, dict[str, int]] = {}
    instance, section = "", ""
    for line in text.splitlines():
        if line.startswith("VRRP Instance") and ":" in line:
            instance, section = line.split(":", 1)[1].strip(), ""
            out[instance] = {}
        elif line.startswith("  ") and not line.startswith("    ") and line.endswith(":"):
            section = line.strip().rstrip(":").strip()
        elif line.startswith("    ") and section:
            key, value = (part.strip() for part in line.split(":", 1))
            out[instance][_STATS_KEYS[(section, key)]] = int(value)
        elif line.startswith("  ") and not line.startswith("    "):
            key, value = (part.strip() for part in line.split(":", 1))
            section = ""
            out[instance][_STATS_KEYS[("", key)]] = int(value)
    return out


def parse_data(text: str) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, str]]]:
    """``.data`` → ({instance: fields the exporter reads}, {script: {"status", "state"}})."""
    instances: dict[str, dict[str, Any]] = {}
    scripts: dict[str, dict[str, str]] = {}
    instance = script = key = ""
    for line in text.splitlines():
        if line.startswith(" VRRP Instance") and "=" in line:
            instance, script = line.split("=", 1)[1].strip(), ""
            instances[instance] = {"vips": [], "evips": []}
        elif line.startswith(" VRRP Script") and "=" in line:
            script = line.split("=", 1)[1].strip()  # the exporter does not end an instance here
            scripts[script] = {}
        elif line.startswith("   ") and instance:
            if line.startswith("     "):
                target = "evips" if key.startswith("Virtual IP Excluded") else "vips"
                if key.startswith("Virtual IP"):
                    instances[instance][target].append(line.strip())
                continue
            sep = "=" if "=" in line else ":" if ":" in line else None
            if sep is None:
                continue
            key, value = (part.strip() for part in line.split(sep, 1))
            fields = instances[instance]
            if key in ("State", "Wantstate"):
                if value not in STATES:
                    raise ValueError(f"{instance}: unknown state {value!r}")
                fields[key.lower()] = STATES.index(value)
            elif key in ("Interface", "Listening device"):
                fields["intf"] = value
            elif key in ("Gratuitous ARP delay", "Virtual Router ID"):
                fields[key] = int(value)
        elif line.startswith("   ") and script and "=" in line:
            key, value = (part.strip() for part in line.split("=", 1))
            if key in ("Status", "State"):
                scripts[script][key.lower()] = value
        elif not line.startswith("   "):
            instance = script = ""
    return instances, scripts


def parse_json(text: str) -> list[dict[str, Any]]:
    rows = json.loads(text)
    assert isinstance(rows, list)
    return rows

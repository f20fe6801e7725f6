"""deploy/grafana-dashboard.json: valid JSON, and it only queries metrics ``lifeline metrics`` exports.

Why: a renamed metric would leave a panel silently empty; this ties the
dashboard to the family list in shared/cli/metrics_collect.py (the same names
docs/operations.md documents).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from shared.cli.metrics_collect import _families

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana-dashboard.json"
METRIC = re.compile(r"\b(?:keepalived|lifeline)_[a-z0-9_]+")
DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"


def exprs(dashboard: dict[str, object]) -> list[str]:
    panels = dashboard["panels"]
    assert isinstance(panels, list) and panels
    out = [str(t["expr"]) for p in panels for t in p["targets"]]
    templating = dashboard["templating"]
    assert isinstance(templating, dict)
    out += [str(v["definition"]) for v in templating["list"]]
    return out


def test_dashboard_parses_and_has_the_promised_panels() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"] == "lifeline"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for p in dashboard["panels"]:
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["targets"]
    used = {m for e in exprs(dashboard) for m in METRIC.findall(e)}
    for promised in (
        "keepalived_vrrp_state",
        "keepalived_vrrp_effective_priority",
        "keepalived_vrrp_transitions_total",
        "keepalived_advertisements_sent_total",
        "keepalived_vrrp_drops_total",
        "keepalived_script_status",
        "keepalived_lvs_rs_up",
        "lifeline_notifier_backlog",
    ):
        assert promised in used


def test_every_metric_in_the_dashboard_is_exported_and_documented() -> None:
    exported = set(_families())
    used = {m for e in exprs(json.loads(DASHBOARD.read_text())) for m in METRIC.findall(e)}
    assert used and used <= exported, f"not exported: {sorted(used - exported)}"
    documented = documented_metrics()
    assert used <= documented, f"not in docs/operations.md: {sorted(used - documented)}"


def documented_metrics() -> set[str]:
    """Names in the metric table of docs/operations.md; ```a_b_total`, `_c` `` abbreviates ``a_b_c``."""
    names: set[str] = set()
    for line in DOCS.read_text().splitlines():
        if not line.startswith("| `"):
            continue
        cell = line.split("|")[1]
        tokens = re.findall(r"`([a-z0-9_]+)`", cell)
        if not tokens or not METRIC.fullmatch(tokens[0]):
            continue  # another table (units, drop reasons)
        first = tokens[0]
        names.add(first)
        parts = first.split("_")
        for suffix in tokens[1:]:
            names.update("_".join(parts[:i]) + suffix for i in range(1, len(parts)))
    return names

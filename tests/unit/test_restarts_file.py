"""What ``lifeline up`` says of its restarts reaches ``lifeline status`` and the metrics."""

from __future__ import annotations

from pathlib import Path

from shared.cli.metrics_collect import build
from shared.cli.restarts_file import ServiceRestarts, read_restarts, write_restarts
from shared.cli.status import render_table


def test_the_file_round_trips_and_a_missing_one_reads_as_nothing(tmp_path: Path) -> None:
    path = tmp_path / "n1" / "supervisor.json"
    assert read_restarts(path) == {}
    rows = {"services.notifier": ServiceRestarts(True, 3, 0.8, -9)}
    write_restarts(path, rows)
    assert read_restarts(path) == rows


def test_metrics_and_the_status_table_show_restarts_backoff_and_last_exit() -> None:
    rows = {"services.notifier": ServiceRestarts(False, 7, 2.0, -9)}
    text = build([], {}, 0.0, bus_up=False, restarts=rows)
    assert 'lifeline_service_restarts_total{service="services.notifier"} 7' in text
    assert 'lifeline_service_restart_backoff_seconds{service="services.notifier"} 2' in text
    assert 'lifeline_service_last_exit_status{service="services.notifier"} -9' in text
    view = {"nodes": [], "replicas": [], "entries": []}
    view["supervised"] = {
        "services.notifier": {"node": "n1", "running": False, "restarts": 7, "backoff": 2.0, "last_exit": -9}
    }
    table = render_table(view)
    assert "supervised  services.notifier  down, 7 restarts, backoff 2 s, last exit -9" in table, table

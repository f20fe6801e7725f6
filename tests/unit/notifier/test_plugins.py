"""Sinks load by entry point name; the example plugin in docs/notifier.md works as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from services.notifier import plugins
from services.notifier.plugins import SinkPluginError, available_sinks, create_sink, load_sink_factory
from services.notifier.sinks.base import DeliveryContext, Sink
from services.notifier.sinks.fifo import FifoSink
from shared.events import InstanceState, VrrpState, decode

DOC = Path(__file__).parents[3] / "docs" / "notifier.md"


def example_plugin() -> tuple[str, str]:
    """(python source, entry point line) of the example plugin in docs/notifier.md."""
    text = DOC.read_text().split("### A complete example plugin", 1)[1]
    source = re.search(r"```python\n(.*?)```", text, re.S)
    entry = re.search(r'\[project\.entry-points\."lifeline\.sinks"\]\n(.*?)\n```', text, re.S)
    assert source is not None and entry is not None
    assert len(source.group(1).splitlines()) < 40
    name, _, value = entry.group(1).partition("=")
    target = value.strip().strip('"')
    return source.group(1), f"{name.strip()} = {target}"  # TOML line → entry_points.txt line


def install(site: Path, name: str, module: str, source: str, entry_points: str) -> None:
    """A minimal installed distribution: a module plus a dist-info with entry_points.txt."""
    (site / f"{module}.py").write_text(source)
    info = site / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{plugins.ENTRY_POINT_GROUP}]\n{entry_points}\n")


async def test_docs_example_plugin_loads_by_entry_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, entry = example_plugin()
    site = tmp_path / "site"
    site.mkdir()
    module = entry.split("=", 1)[1].strip().split(":")[0]
    install(site, "lifeline-jsonl", module, source, entry)
    monkeypatch.syspath_prepend(str(site))
    assert "jsonl" in available_sinks()
    out = tmp_path / "events.jsonl"
    sink = create_sink("jsonl", path=str(out))
    assert isinstance(sink, Sink) and sink.name == "jsonl"
    event = InstanceState(instance="VI_1", vrid=1, interface="eth0", state=VrrpState.MASTER,
                          base_priority=100, effective_priority=100, seq=1, boot_id="b")  # fmt: skip
    await sink.deliver(event, DeliveryContext())
    await sink.deliver(event, DeliveryContext(attempt=2))
    assert [decode(line) for line in out.read_bytes().splitlines()] == [event]


def test_builtins_load_without_package_metadata(tmp_path: Path) -> None:
    assert set(plugins.BUILTIN_SINKS) <= set(available_sinks())
    assert load_sink_factory("fifo") is FifoSink
    assert isinstance(create_sink("fifo", path=str(tmp_path / "f")), FifoSink)


def test_installed_entry_point_replaces_a_builtin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = "class MyFifo:\n    name = 'fifo'\n    def __init__(self, **kw):\n        pass\n" \
             "    async def deliver(self, event, context):\n        pass\n"  # fmt: skip
    install(tmp_path, "my-fifo", "my_fifo", source, "fifo = my_fifo:MyFifo")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert type(create_sink("fifo", path="x")).__name__ == "MyFifo"


def test_errors_name_the_problem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SinkPluginError, match="no sink named 'nope'"):
        create_sink("nope")
    install(tmp_path, "bad-sinks", "bad_sinks", "class NotASink:\n    pass\n",
            "notasink = bad_sinks:NotASink\nbroken = bad_sinks:Missing")  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(SinkPluginError, match="no name or no async deliver"):
        create_sink("notasink")
    with pytest.raises(SinkPluginError, match="cannot be loaded"):
        create_sink("broken")
    with pytest.raises(SinkPluginError, match="rejected its options"):
        create_sink("fifo", nonsense=1)

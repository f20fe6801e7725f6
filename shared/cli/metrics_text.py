"""Prometheus text exposition format 0.0.4: metric families and their rendering.

Why its own module: the collector builds families and the HTTP endpoint renders
them; both depend on this, and this depends on nothing but ``shared.redact`` (no
import cycle): label values come from names and details on the bus, and are
redacted like any other text leaving the process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from shared.redact import redact

Labels = dict[str, str]


@dataclass
class Family:
    """One metric family: name, type, help, and its samples (labels, value)."""

    name: str
    type: str  # "gauge" | "counter"
    help: str
    samples: list[tuple[Labels, float]] = field(default_factory=list)

    def add(self, value: float, **labels: str) -> None:
        self.samples.append((labels, value))


def _escape_label(value: str) -> str:
    value = redact(value)
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render(families: list[Family]) -> str:
    """The text exposition format 0.0.4 (families without samples are left out)."""
    out: list[str] = []
    for fam in families:
        if not fam.samples:
            continue
        out.append(f"# HELP {fam.name} {_escape_help(fam.help)}")
        out.append(f"# TYPE {fam.name} {fam.type}")
        for labels, value in fam.samples:
            if labels:
                inner = ",".join(f'{k}="{_escape_label(v)}"' for k, v in sorted(labels.items()))
                out.append(f"{fam.name}{{{inner}}} {_number(value)}")
            else:
                out.append(f"{fam.name} {_number(value)}")
    return "\n".join(out) + "\n"

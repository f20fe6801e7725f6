"""The ``lifeline`` subcommands: name, the module that implements it, one line of help.

Why a table apart from the modules: ``lifeline --help`` and every command
would otherwise import all subcommands (NATS client, the parser, the lab),
about 0.2 s of imports before anything happens.  ``shared.cli.main`` lists
the commands from this table and imports only the module of the one asked
for.  This module imports nothing.
"""

from __future__ import annotations

COMMANDS: dict[str, tuple[str, str]] = {
    "config": ("shared.cli.config", "check or dump a keepalived.conf"),
    "up": ("shared.cli.up", "run this node: embedded nats-server and the services"),
    "bus": ("shared.cli.bus", "the node's bus: provision its streams, buckets and consumers"),
    "status": ("shared.cli.status", "every node, instance, tracker, real server and replica on the bus"),
    "events": ("shared.cli.events", "live tail of the event stream"),
    "reload": ("shared.cli.ctl", "ask services to re-read their configuration"),
    "health": ("shared.cli.ctl", "exit 0 if SERVICE's status endpoint answers (healthchecks)"),
    "instance": ("shared.cli.instance", "runtime control of a VRRP instance (priority, maintenance)"),
    "metrics": ("shared.cli.metrics", "serve Prometheus metrics for this node on /metrics"),
    "demo": ("shared.cli.demo", "two nodes in namespaces: election, failover on a cut cable, preempt"),
    "completion": ("shared.cli.completion", "print a shell completion script: lifeline completion bash"),
}


def help_of(name: str) -> str:
    """The help line of ``name`` (the modules register their parser with it)."""
    return COMMANDS[name][1]

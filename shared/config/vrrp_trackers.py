"""``vrrp_script``, ``vrrp_track_process``, ``track_file`` and ``bfd_instance`` blocks.

These define trackers that instances and sync groups reference by name; the
checker runs them, vrrp consumes their results.  A tracker keepalived would
remove (a script with no ``script``, a process with no ``process``) is not
stored, so references to it are reported as not found, as keepalived does.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from shared.config.context import (
    Context,
    Handler,
    dispatch,
    require_block,
    set_flag,
    set_int,
    set_timer,
    set_with,
)
from shared.config.model import Config
from shared.config.model_vrrp import BfdInstance, TrackFile, TrackProcess, VrrpScript
from shared.config.node import Node
from shared.config.script import parse_script
from shared.config.values import BadValue, to_int, to_ip, to_timer
from shared.config.vrrp_blocks import block_end, origin

T = TypeVar("T")


def _name(ctx: Context, node: Node) -> str | None:
    if not node.args:
        ctx.error(node, f"'{node.keyword}' needs a name")
        return None
    return node.args[0]


def _read_block(ctx: Context, node: Node, make: Callable[..., T], table: dict[str, Handler]) -> T | None:
    """The part every tracker block shares: a name, a ``{``, then its keywords; None if either is missing."""
    name = _name(ctx, node)
    if name is None or not require_block(ctx, node):
        return None
    tracker = make(name=name, origin=origin(node))
    dispatch(ctx, node, table, tracker)
    return tracker


def _weight(limit: int) -> Handler:
    """``weight N [reverse]`` on a tracker definition; out of range keeps the default."""

    def handle(ctx: Context, node: Node, target: Any) -> None:
        if not node.args:
            ctx.error(node, "'weight' needs a number")
            return
        try:
            value = to_int(node.args[0], -limit, limit)
        except BadValue as exc:
            ctx.error(node, f"invalid weight: expected {exc} (ignored)")
            return
        target.weight = value
        reverse = len(node.args) > 1 and node.args[1] == "reverse"
        target.weight_reverse = reverse
        if len(node.args) > 1 and not reverse:
            ctx.error(node, f"unknown word '{node.args[1]}' after weight: expected 'reverse'")

    return handle


def _positive_timer(attr: str, fallback: float) -> Handler:
    def handle(ctx: Context, node: Node, target: object) -> None:
        value = ctx.value(node, lambda w: to_timer(w, 0))
        if value is None:
            return
        if value <= 0:
            ctx.error(node, f"'{node.keyword}' must be greater than 0: using {fallback:g}")
            value = fallback
        setattr(target, attr, value)

    return handle


def _positive_int(attr: str) -> Handler:
    def handle(ctx: Context, node: Node, target: object) -> None:
        value = ctx.value(node, lambda w: to_int(w, 1, 2**31 - 1))
        setattr(target, attr, 1 if value is None else value)

    return handle


def _script_script(ctx: Context, node: Node, target: VrrpScript) -> None:
    target.script = parse_script(ctx, node, takes_user=False)


def _script_user(ctx: Context, node: Node, target: VrrpScript) -> None:
    if not node.args:
        ctx.error(node, "'user' needs a user name")
        return
    target.user = node.args[0]
    if len(node.args) > 1:
        target.group = node.args[1].lstrip(":")
    if not ctx.host.has_user(target.user):
        ctx.error(node, f"cannot run script as '{target.user}': no such user (the vrrp_script is removed)")
        target.user_invalid = True


SCRIPT_KEYWORDS: dict[str, Handler] = {
    "script": _script_script,
    "interval": _positive_timer("interval", 1.0),
    "timeout": _positive_timer("timeout", 1.0),
    "weight": _weight(253),
    "rise": _positive_int("rise"),
    "fall": _positive_int("fall"),
    "user": _script_user,
    "init_fail": set_flag("init_fail"),
}


def parse_vrrp_script(ctx: Context, node: Node, config: Config) -> None:
    script = _read_block(ctx, node, VrrpScript, SCRIPT_KEYWORDS)
    if script is None:
        return
    name = script.name
    if script.script is None:
        ctx.diagnostics.error(block_end(node), f"vrrp_script {name} has no 'script': it is removed")
        return
    if script.user_invalid:
        return
    if script.user is not None:  # the block's 'user' keyword names who runs the script
        script.script = msgspec.structs.replace(script.script, user=script.user, group=script.group)
    if name in config.vrrp.scripts:
        ctx.error(node, f"vrrp_script {name} is already defined (the later definition wins)")
    config.vrrp.scripts[name] = script


def _process_process(ctx: Context, node: Node, target: TrackProcess) -> None:
    if not node.args:
        ctx.error(node, "'process' needs a process name")
        return
    target.process = list(node.args)


def _process_param_match(ctx: Context, node: Node, target: TrackProcess) -> None:
    if not node.args or node.args[0] not in ("initial", "partial"):
        ctx.error(node, "'param_match' expects 'initial' or 'partial'")
        return
    target.param_match = node.args[0]


def _process_delay(ctx: Context, node: Node, target: TrackProcess) -> None:
    value = ctx.value(node, lambda w: to_timer(w, 0))
    if value is not None:
        target.fork_delay = target.terminate_delay = value


PROCESS_KEYWORDS: dict[str, Handler] = {
    "process": _process_process,
    "param_match": _process_param_match,
    "weight": _weight(254),
    "quorum": set_int("quorum", 0, 2**31 - 1),
    "quorum_max": set_int("quorum_max", 0, 2**31 - 1),
    "fork_delay": _positive_timer("fork_delay", 0.0),
    "terminate_delay": _positive_timer("terminate_delay", 0.0),
    "delay": _process_delay,
    "full_command": set_flag("full_command"),
}


def parse_track_process(ctx: Context, node: Node, config: Config) -> None:
    proc = _read_block(ctx, node, TrackProcess, PROCESS_KEYWORDS)
    if proc is None:
        return
    name = proc.name
    if proc.quorum_max is not None and proc.quorum_max < proc.quorum:
        where = next((c for c in node.children or () if c.keyword == "quorum_max"), node)
        ctx.error(where, "quorum_max is less than quorum: quorum_max ignored")
        proc.quorum_max = None
    if not proc.process:
        ctx.diagnostics.error(block_end(node), f"vrrp_track_process {name} has no 'process': it is removed")
        return
    config.vrrp.track_processes[name] = proc


def _file_file(ctx: Context, node: Node, target: TrackFile) -> None:
    if not node.args:
        ctx.error(node, "'file' needs a path")
        return
    target.file = node.args[0]


def _file_init(ctx: Context, node: Node, target: TrackFile) -> None:
    target.init_file = True
    for word in node.args:
        if word == "overwrite":
            target.init_overwrite = True
            continue
        try:
            target.init_value = to_int(word)
        except BadValue as exc:
            ctx.error(node, f"invalid init_file value: expected {exc}")


FILE_KEYWORDS: dict[str, Handler] = {
    "file": _file_file,
    "weight": _weight(254),
    "init_file": _file_init,
}


def parse_track_file(ctx: Context, node: Node, config: Config) -> None:
    tracked = _read_block(ctx, node, TrackFile, FILE_KEYWORDS)
    if tracked is None:
        return
    name = tracked.name
    if tracked.file is None:
        ctx.diagnostics.error(block_end(node), f"track_file {name} has no 'file': it is ignored")
        return
    config.vrrp.track_files[name] = tracked


BFD_KEYWORDS: dict[str, Handler] = {
    "neighbor_ip": set_with("neighbor_ip", to_ip),
    "neighbour_ip": set_with("neighbor_ip", to_ip),
    "source_ip": set_with("source_ip", to_ip),
    "min_rx": set_timer("min_rx", 0),
    "min_tx": set_timer("min_tx", 0),
    "idle_tx": set_timer("idle_tx", 0),
    "multiplier": set_int("multiplier", 1, 255),
    "passive": set_flag("passive"),
    "ttl": set_int("ttl", 1, 255),
    "hoplimit": set_int("hoplimit", 1, 255),
    "max_hops": set_int("max_hops", 0, 255),
    "weight": _weight(253),
    "vrrp": set_flag("vrrp"),
    "checker": set_flag("checker"),
}


def parse_bfd_instance(ctx: Context, node: Node, config: Config) -> None:
    bfd = _read_block(ctx, node, BfdInstance, BFD_KEYWORDS)
    if bfd is None:
        return
    name = bfd.name
    if bfd.neighbor_ip is None:
        ctx.diagnostics.error(block_end(node), f"bfd_instance {name} has no neighbor_ip: it is removed")
        return
    config.vrrp.bfd_instances[name] = bfd

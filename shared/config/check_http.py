"""HTTP_GET and SSL_GET: url blocks, status code lists, digests, and the end-of-block rules.

keepalived drops a url without ``path`` and a checker without urls, reporting
both at the block's closing brace.  Its regex keywords are not validated by
``keepalived -t`` (the pattern is compiled at run time), so neither do we.
"""

from __future__ import annotations

import re

from shared.config.check_common import COMMON_HANDLERS, CheckerKind, register
from shared.config.context import (
    Context,
    Handler,
    dispatch,
    require_block,
    set_flag,
    set_str,
)
from shared.config.lvs_common import end_of, where
from shared.config.model_lvs import Checker, HttpGetCheck, HttpUrl, SslGetCheck
from shared.config.node import Node
from shared.config.values import BadValue, to_int

HTTP_PROTOCOLS = ("1.0", "1.0C", "1.1")
DIGEST_RE = re.compile(r"[0-9a-fA-F]{32}")


def to_status_range(word: str) -> tuple[int, int]:
    """``200`` or ``200-299``; keepalived accepts codes 100..599."""
    lo_word, sep, hi_word = word.partition("-")
    try:
        lo = to_int(lo_word, 100, 599)
        hi = to_int(hi_word, 100, 599) if sep else lo
    except BadValue:
        raise BadValue(f"a status code or range within 100-599, got '{word}'") from None
    if hi < lo:
        raise BadValue(f"a range whose end is not below its start, got '{word}'")
    return lo, hi


def _status_code(ctx: Context, node: Node, url: object) -> None:
    assert isinstance(url, HttpUrl)
    codes: list[tuple[int, int]] = []
    for word in node.args:
        try:
            codes.append(to_status_range(word))
        except BadValue as exc:
            ctx.error(node, f"invalid HTTP status code: expected {exc}")
    if codes:
        url.status_codes = tuple(codes)


def _digest(ctx: Context, node: Node, url: object) -> None:
    assert isinstance(url, HttpUrl)
    if not node.args:
        ctx.error(node, "'digest' needs an MD5 hex digest")
    elif not DIGEST_RE.fullmatch(node.args[0]):
        ctx.error(node, f"invalid digest '{node.args[0]}': expected 32 hex digits (genhash output)")
    else:
        url.digest = node.args[0].lower()


def _words(attr: str) -> Handler:
    def handle(ctx: Context, node: Node, target: object) -> None:
        setattr(target, attr, node.args)

    return handle


def _lenient_int(attr: str) -> Handler:
    """keepalived -t accepts anything here; keep a number when there is one."""

    def handle(ctx: Context, node: Node, target: object) -> None:
        if node.args and node.args[0].isdigit():
            setattr(target, attr, int(node.args[0]))

    return handle


def _regex_stack(ctx: Context, node: Node, url: object) -> None:
    assert isinstance(url, HttpUrl)
    url.regex_stack = tuple(int(w) for w in node.args if w.isdigit())


URL_TABLE: dict[str, Handler] = {
    "path": set_str("path"),
    "digest": _digest,
    "status_code": _status_code,
    "virtualhost": set_str("virtualhost"),
    "regex": set_str("regex"),
    "regex_no_match": set_flag("regex_no_match"),
    "regex_options": _words("regex_options"),
    "regex_stack": _regex_stack,
    "regex_min_offset": _lenient_int("regex_min_offset"),
    "regex_max_offset": _lenient_int("regex_max_offset"),
}


def _url(ctx: Context, node: Node, check: object) -> None:
    assert isinstance(check, HttpGetCheck)
    if not require_block(ctx, node):
        return
    url = HttpUrl(where=where(node))
    dispatch(ctx, node, URL_TABLE, url)
    if url.path is None:
        ctx.diagnostics.warning(end_of(node), "url has no 'path' - ignoring this url")
        return
    check.urls.append(url)


def _http_protocol(ctx: Context, node: Node, check: object) -> None:
    assert isinstance(check, HttpGetCheck)
    word = node.args[0] if node.args else ""
    for choice in HTTP_PROTOCOLS:
        if word.upper() == choice:
            check.http_protocol = choice  # type: ignore[assignment]
            return
    ctx.error(node, f"invalid http_protocol '{word}': expected one of {', '.join(HTTP_PROTOCOLS)}")


def _nb_get_retry(ctx: Context, node: Node, check: object) -> None:
    ctx.warning(node, "'nb_get_retry' is deprecated: use 'retry'")
    COMMON_HANDLERS["retry"](ctx, node, check)


def _newer(attr: str, handler: Handler) -> Handler:
    """Keywords keepalived added after 2.2.7: kept, but flagged so the file stays portable."""

    def handle(ctx: Context, node: Node, target: object) -> None:
        ctx.warning(node, f"'{node.keyword}' is not known to keepalived 2.2.7 (parsed, but 2.2.7 rejects it)")
        handler(ctx, node, target)

    return handle


HTTP_TABLE: dict[str, Handler] = {
    **COMMON_HANDLERS,
    "url": _url,
    "http_protocol": _http_protocol,
    "virtualhost": set_str("virtualhost"),
    "fast_recovery": set_flag("fast_recovery"),
    "enable_sni": set_flag("enable_sni"),
    "sni_name": _newer("sni_name", set_str("sni_name")),
    "tls_compliant": _newer("tls_compliant", set_flag("tls_compliant")),
    "nb_get_retry": _nb_get_retry,
}


def _finish(ctx: Context, node: Node, check: Checker) -> bool:
    assert isinstance(check, HttpGetCheck)
    if not check.urls:
        ctx.diagnostics.warning(end_of(node), f"{node.keyword} has no url - ignoring this checker")
        return False
    return True


register("HTTP_GET", CheckerKind(HttpGetCheck, HTTP_TABLE, _finish))
register("SSL_GET", CheckerKind(SslGetCheck, HTTP_TABLE, _finish))

"""The live page in a real headless browser (Debian's chromium, driven by playwright) on the two-node lab.

The page is loaded from node b's http service at a phone's size and must show,
without a reload, node a as the holder of the VIP, then node b within a second
of b's transition when a's link goes down: the time is the browser's own clock
when the VIP row changed (a ``MutationObserver``) against the transition's
timestamp, both this host's wall clock.  The lab's nats-server is shared by the
tests of a session, so other tests' nodes (same instance, same VIP) may be on
the page too: the rows are matched by this test's node names.  A screenshot of the page after the
failover is saved under the test's tmp dir, and its path printed.
Playwright's own browser download is not used: ``executable_path`` is the
distribution's chromium (the ``task`` script installs it).
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ViewportSize, sync_playwright

from shared.lab.wait import wait_until
from tests.lab.test_http_service import https, start_pair
from tests.lab.test_vrrp_service import VIP4, Lab
from tests.support.http_service import HttpProc

__all__ = ["https"]

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

CHROMIUM = "/usr/bin/chromium"
PHONE = ViewportSize(width=390, height=844)
SHOWN_WITHIN = 1.0
"""Seconds from the transition to the page showing it (the brief's bound: a push, not a poll)."""

WATCH = """holder => {
  window.__shown = null;
  const seen = () => document.querySelector(`#vips tr[data-holder~="${holder}"]`);
  new MutationObserver(() => { if (window.__shown === null && seen()) window.__shown = Date.now(); })
    .observe(document.body, {subtree: true, childList: true, attributes: true});
}"""


@contextlib.contextmanager
def chromium() -> Iterator[Browser]:
    """Headless chromium; entered only once the lab runs (playwright's loop would hide the lab's)."""
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} not found: `apt-get install chromium` (./task setup installs it)")
    with sync_playwright() as p:
        # --no-sandbox: the tests run as root, where chromium refuses its sandbox
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield chromium
        finally:
            chromium.close()


def test_page_shows_the_failover_live(lab: Lab, https: list[HttpProc], tmp_path: Path) -> None:
    a = lab.hosts[0]
    ha, hb = start_pair(lab, https, tmp_path)
    wait_until(f"{a.name}'s /health to say master", lambda: ha.health("VI_1"), 10, expect=200, explain=ha.log)
    with chromium() as browser:
        watch_failover(browser, lab, hb)


def watch_failover(browser: Browser, lab: Lab, hb: HttpProc) -> None:
    """Open b's page, cut a's link, time the page's change; the screenshot beside b's log."""
    a, b = lab.hosts
    node_a, node_b = lab.node(a), lab.node(b)
    page = browser.new_page(viewport=PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(hb.url + "/")
    vip = f'#vips tr[data-vip="{VIP4}/32"]'
    try:
        page.wait_for_selector(f'{vip}[data-holder~="{node_a}"]', timeout=10_000)
    except Exception:
        print(f"--- the page:\n{page.inner_text('body')}\n--- /status:\n{hb.get('/status').body.decode()}")
        raise
    assert page.inner_text("#link") == "live"
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "wider than a phone"
    page.evaluate(WATCH, node_b)

    cut = time.time()
    a.ip("link", "set", "eth0", "down")
    page.wait_for_selector(f'{vip}[data-holder~="{node_b}"]:not([data-holder~="{node_a}"])', timeout=10_000)
    shown_ms = page.evaluate("window.__shown")
    wait_until("b's /health to say master", lambda: hb.health("VI_1"), 10, expect=200)
    master = next(
        r["event"]
        for r in hb.get("/status").json()["entries"]
        if r["node"] == node_b and r["kind"] == "instance" and r["event"]["state"] == "MASTER"
    )
    lag = shown_ms / 1000 - master["ts"] / 1e9
    shot = hb.log_path.parent / "live-page-after-failover.png"
    page.screenshot(path=str(shot), full_page=True)
    print(
        f"\npage: {node_b} shown as the VIP's holder {lag:.3f} s after its transition "
        f"({shown_ms / 1000 - cut:.3f} s after the link cut); screenshot: {shot}"
    )
    newest = page.locator("#transitions tbody tr").first.inner_text()
    assert node_b in newest and "MASTER" in newest, newest
    assert "MASTER" in page.locator(f'#instances tr[data-node="{node_b}"][data-instance="VI_1"]').inner_text()
    assert not errors, errors
    assert 0 <= lag < SHOWN_WITHIN

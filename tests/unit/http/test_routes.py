"""Routing of the http service: every path an operator or a health checker may type."""

from __future__ import annotations

import pytest

from services.http.core.routes import Kind, Route, route


@pytest.mark.parametrize(
    ("method", "target", "want"),
    [
        ("GET", "/status", Route(Kind.STATUS)),
        ("GET", "/status?pretty=1", Route(Kind.STATUS)),
        ("HEAD", "/metrics", Route(Kind.METRICS)),
        ("GET", "/events", Route(Kind.EVENTS)),
        ("GET", "/health/VI_1", Route(Kind.HEALTH, instance="VI_1")),
        ("GET", "/health/VI_1/backup", Route(Kind.HEALTH, instance="VI_1", backup=True)),
        ("GET", "/health/web%20front", Route(Kind.HEALTH, instance="web front")),
        ("GET", "/health/VI_1/master", Route(Kind.NOT_FOUND)),
        ("GET", "/health/", Route(Kind.NOT_FOUND)),
        ("GET", "/health", Route(Kind.NOT_FOUND)),
        ("GET", "/health/VI_1/backup/x", Route(Kind.NOT_FOUND)),
        ("GET", "/static/../../etc/passwd", Route(Kind.NOT_FOUND)),
        ("GET", "/index.html", Route(Kind.NOT_FOUND)),
        ("POST", "/status", Route(Kind.NOT_ALLOWED)),
        ("DELETE", "/health/VI_1", Route(Kind.NOT_ALLOWED)),
    ],
)
def test_route(method: str, target: str, want: Route) -> None:
    assert route(method, target) == want


def test_page_files_are_a_closed_list() -> None:
    assert route("GET", "/").asset == "index.html"
    assert route("GET", "/app.js").content_type.startswith("text/javascript")
    assert route("GET", "/style.css").content_type.startswith("text/css")

"""Root conftest: register shared fixture modules (add one line per module)."""

pytest_plugins = ["tests.support.nats", "tests.chaos.report"]

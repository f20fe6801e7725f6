"""The lab: network namespaces, real daemons and the wire, for tests, benchmarks and ``lifeline demo``."""
